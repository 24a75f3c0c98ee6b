use cost_layer::llm_call;

#[llm_call(model = "gpt-4o", billed_on_err = true)]
fn call() -> Result<cost_layer::cost_core::Usage, std::io::Error> {
    Ok(cost_layer::cost_core::Usage::new(1, 1))
}

fn main() {
    let _ = call();
}
