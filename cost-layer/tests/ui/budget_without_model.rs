use cost_layer::llm_call;

#[derive(Debug)]
struct Error;

impl From<cost_layer::cost_core::budget::BudgetExceeded> for Error {
    fn from(_: cost_layer::cost_core::budget::BudgetExceeded) -> Self {
        Error
    }
}

#[llm_call(max_output_tokens = 1000, estimate_input = 10)]
fn call() -> Result<cost_layer::cost_core::Usage, Error> {
    Ok(cost_layer::cost_core::Usage::new(1, 1))
}

fn main() {
    let _ = call();
}
