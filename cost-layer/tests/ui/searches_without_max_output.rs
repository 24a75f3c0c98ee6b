use cost_layer::llm_call;

#[derive(Debug)]
struct Error;

impl From<cost_layer::cost_core::budget::BudgetExceeded> for Error {
    fn from(_: cost_layer::cost_core::budget::BudgetExceeded) -> Self {
        Error
    }
}

#[llm_call(model = "claude-sonnet-4-5", max_web_searches = 5)]
fn call() -> Result<cost_layer::cost_core::Usage, Error> {
    Ok(cost_layer::cost_core::Usage::new(1, 1))
}

fn main() {
    let _ = call();
}
