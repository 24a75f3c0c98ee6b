use cost_layer::llm_call;

#[llm_call(model = "gpt-4o", feature = "a", model = "gpt-4.1")]
fn call() -> cost_layer::cost_core::Usage {
    cost_layer::cost_core::Usage::new(1, 1)
}

fn main() {
    let _ = call();
}
