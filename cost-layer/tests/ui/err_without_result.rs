use cost_layer::llm_call;

#[llm_call(err)]
fn call() -> cost_layer::cost_core::Usage {
    cost_layer::cost_core::Usage::new(1, 1)
}

fn main() {
    let _ = call();
}
