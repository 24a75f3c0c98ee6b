use cost_layer::llm_call;

#[llm_call(err = true, skip_all(x))]
fn call() -> Result<cost_layer::cost_core::Usage, String> {
    Ok(cost_layer::cost_core::Usage::new(1, 1))
}

fn main() {
    let _ = call();
}
