//! Pricing OpenRouter's answers, including models the price table does not know.
//!
//! `cargo run --example openrouter_json`
//!
//! OpenRouter answers in OpenAI's Chat Completions shape and says what each call cost in
//! `usage.cost`; `cost_core::adapters::openai::ChatCompletion` reads both. Its model ids carry
//! the provider (`openai/gpt-4o-mini`) and spell Anthropic's versions with dots
//! (`anthropic/claude-sonnet-4.5`): both resolve to the table's entries. The layer is built
//! with `charge_reported_cost_when_unpriced(true)`:
//!
//! - a model the table prices is charged the table's price (OpenRouter's figure is compared
//!   with it, and a disagreement counted in `Diagnostics::reported_cost_mismatches`);
//! - a model it does not (OpenRouter routes to hundreds) is charged OpenRouter's figure,
//!   instead of being left unpriced;
//! - an answer without a figure, of such a model, stays unpriced: its cost unknown, never zero.

use cost_layer::cost_core::adapters::openai;
use cost_layer::{CostLayer, Ledger, llm_call};
use serde_json::json;
use tracing_subscriber::prelude::*;

/// An OpenRouter answer of `model`: `prompt` and `completion` tokens, and what OpenRouter
/// charged, when given.
fn answer(model: &str, prompt: u64, completion: u64, cost: Option<f64>) -> serde_json::Value {
    let mut usage = json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    });
    if let (Some(cost), Some(usage)) = (cost, usage.as_object_mut()) {
        usage.insert("cost".to_owned(), json!(cost));
    }
    json!({
        "id": "gen-1764300000-abc", "object": "chat.completion", "provider": "OpenRouter",
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "…"}, "finish_reason": "stop"}],
        "usage": usage,
    })
}

/// One call through OpenRouter; usage, model and cost are read from the answer.
#[llm_call(provider = "openrouter", feature = "triage")]
fn ask(body: serde_json::Value) -> Result<openai::ChatCompletion, serde_json::Error> {
    serde_json::from_value(body)
}

/// The models of [`run`], as the ledger keys them: the table's entry, or the name as called.
pub(crate) const MODELS: [&str; 4] = [
    "claude-sonnet-4-5",
    "gpt-4o-mini",
    "meta-llama/llama-3.3-70b-instruct",
    "qwen/qwen-2.5-72b-instruct",
];

/// Four calls in one session; returns the ledger.
pub(crate) fn run() -> Ledger {
    let (cost, ledger) = CostLayer::builder()
        .charge_reported_cost_when_unpriced(true)
        .build();
    let subscriber = tracing_subscriber::registry().with(cost);
    tracing::subscriber::with_default(subscriber, || {
        let session = tracing::info_span!("triage_session", session.id = "ticket-981");
        let _entered = session.enter();
        let answers = [
            // $3 and $15 per million tokens by the table: 0.006 + 0.0045; OpenRouter agrees.
            answer("anthropic/claude-sonnet-4.5", 2_000, 300, Some(0.0105)),
            // $0.15 and $0.60 per million: 0.00015 + 0.00012.
            answer("openai/gpt-4o-mini", 1_000, 200, Some(0.00027)),
            // Not in the table: charged what OpenRouter says.
            answer(
                "meta-llama/llama-3.3-70b-instruct",
                3_000,
                500,
                Some(0.000395),
            ),
            // Not in the table, and no figure: unpriced.
            answer("qwen/qwen-2.5-72b-instruct", 1_500, 100, None),
        ];
        for body in answers {
            if let Err(e) = ask(body) {
                eprintln!("bad OpenRouter answer: {e}");
            }
        }
    });
    ledger
}

fn main() {
    let ledger = run();
    for model in MODELS {
        if let Some(totals) = ledger.model(model) {
            println!("{model:<36} {totals}");
        }
    }
    if let Some(session) = ledger.session("ticket-981") {
        println!("{:<36} {session}", "session ticket-981");
    }
    println!(
        "reported costs that disagree with the table: {}",
        ledger.diagnostics().reported_cost_mismatches
    );
}
