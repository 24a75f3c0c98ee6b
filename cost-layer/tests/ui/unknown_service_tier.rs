use cost_layer::llm_call;

#[llm_call(model = "gpt-5", service_tier = "scale")]
fn call() -> cost_layer::cost_core::Usage {
    cost_layer::cost_core::Usage::new(1, 1)
}

fn main() {
    let _ = call();
}
