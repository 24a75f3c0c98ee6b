use cost_layer::llm_call;

#[llm_call(model = "gpt-4o")]
fn call() -> String {
    "no usage here".to_owned()
}

fn main() {
    let _ = call();
}
