use cost_layer::llm_call;

#[llm_call(bogus, name = "x", name = "y", skip(nope), level = 3, search_context_size = "huge")]
fn call() -> cost_layer::cost_core::Usage {
    cost_layer::cost_core::Usage::new(1, 1)
}

fn main() {
    let _ = call();
}
