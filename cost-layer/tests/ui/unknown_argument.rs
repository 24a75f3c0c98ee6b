use cost_layer::llm_call;

#[llm_call(modle = "gpt-4o")]
fn call() -> cost_layer::cost_core::Usage {
    cost_layer::cost_core::Usage::new(1, 1)
}

fn main() {
    // The function is still emitted: this call compiles, only the argument is reported.
    let _ = call();
}
