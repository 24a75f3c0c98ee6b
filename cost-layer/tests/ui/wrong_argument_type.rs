use cost_layer::llm_call;

#[llm_call(name = 5, provider(openai), fields = 3)]
fn call() -> cost_layer::cost_core::Usage {
    cost_layer::cost_core::Usage::new(1, 1)
}

fn main() {
    let _ = call();
}
