use cost_layer::llm_call;

#[llm_call]
const fn call() -> u32 {
    1
}

fn main() {
    let _ = call();
}
