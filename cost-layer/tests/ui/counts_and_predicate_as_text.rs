use cost_layer::llm_call;

// A token count and a predicate written as text: each is refused where it is written.
#[llm_call(model = "gpt-4o", max_output_tokens = "1024", billed_on_err = "timeout")]
fn call() -> Result<cost_layer::cost_core::Usage, std::io::Error> {
    Ok(cost_layer::cost_core::Usage::new(1, 1))
}

fn main() {
    let _ = call();
}
