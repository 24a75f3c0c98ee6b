//! A runaway agent loop stopped by its session budget before it spends past it.
//!
//! `cargo run --example budget_guard`
//!
//! The "agent" keeps asking the model for another step (a canned response, no network). Each
//! call reserves its worst case (estimated input + `max_output_tokens`) against the session's
//! $0.25 budget before it runs; the alerts at 50 % and 80 % are printed as they fire, and the
//! call that would cross the limit is refused and never runs.

use std::sync::{Arc, Mutex};

use cost_layer::cost_core::Usage;
use cost_layer::cost_core::budget::{BudgetAlert, BudgetBook, BudgetConfig, BudgetExceeded};
use cost_layer::{CostLayer, Ledger, llm_call, session};
use tracing_subscriber::prelude::*;

/// The budgets, as a team would keep them in a file.
const BUDGETS: &str = r#"
per_call_max = 1.00
per_session_max = 0.25
per_user_daily = 50.00

[[budget]]
name = "monthly"
scope = "global"
window = "month"
limit = 5000
thresholds = [0.8]
policy = "alert"
"#;

#[derive(Debug)]
enum AgentError {
    Budget(BudgetExceeded),
}

impl From<BudgetExceeded> for AgentError {
    fn from(e: BudgetExceeded) -> Self {
        AgentError::Budget(e)
    }
}

/// One step of the agent: worst case 4 000 × 2.5e-6 + 2 000 × 1e-5 = $0.03, actual $0.025.
#[llm_call(
    model = "gpt-4o",
    feature = "research",
    max_output_tokens = 2_000,
    estimate_input = 4_000
)]
fn next_step(step: u32) -> Result<Usage, AgentError> {
    let _ = step; // … the real program calls its client here …
    Ok(Usage::new(4_000, 1_500))
}

/// The session: an agent that loops until something stops it. Returns the steps that ran and
/// the refusal that stopped it.
#[session(id = "runaway-1", user = "dana")]
fn runaway_session() -> (u32, Option<BudgetExceeded>) {
    let mut steps = 0;
    // Without a budget this loop would run a thousand steps.
    for step in 1..=1_000 {
        match next_step(step) {
            Ok(_) => {
                steps += 1;
                println!("step {step:>2} ran");
            }
            Err(AgentError::Budget(refused)) => {
                println!("step {step:>2} refused before it ran: {refused}");
                return (steps, Some(refused));
            }
        }
    }
    (steps, None)
}

/// Runs the loop; returns the steps that ran, the refusal, the alerts and the ledger.
pub(crate) fn run() -> (u32, Option<BudgetExceeded>, Vec<String>, Ledger) {
    let config = match BudgetConfig::from_toml(BUDGETS) {
        Ok(config) => config,
        Err(e) => panic!("the example's budgets are valid: {e}"),
    };
    let book = match BudgetBook::new(config) {
        Ok(book) => book,
        Err(e) => panic!("{e}"),
    };
    let alerts = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&alerts);
    let (cost, ledger) = CostLayer::builder()
        .budgets(book)
        .on_budget_alert(move |alert: &BudgetAlert| {
            println!("  alert: {alert}");
            if let Ok(mut alerts) = sink.lock() {
                alerts.push(alert.to_string());
            }
        })
        .build();
    let subscriber = tracing_subscriber::registry().with(cost);
    let (steps, refused) = tracing::subscriber::with_default(subscriber, runaway_session);
    let alerts = alerts.lock().map(|a| a.clone()).unwrap_or_default();
    (steps, refused, alerts, ledger)
}

fn main() {
    let (steps, refused, _alerts, ledger) = run();
    let spent = ledger
        .session("runaway-1")
        .map(|t| t.total_usd())
        .unwrap_or_default();
    println!(
        "\nthe agent ran {steps} steps for ${spent} and was {}",
        if refused.is_some() {
            "stopped by its session budget"
        } else {
            "never stopped"
        }
    );
}
