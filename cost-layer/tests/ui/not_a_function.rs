use cost_layer::llm_call;

#[llm_call(model = "gpt-4o")]
struct Reply {
    tokens: u32,
}

fn main() {
    let _ = Reply { tokens: 1 }.tokens;
}
