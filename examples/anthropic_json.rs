//! Pricing raw JSON responses of Anthropic's Messages API and Gemini's `generateContent`.
//!
//! `cargo run --example anthropic_json`
//!
//! Two ways to hand a response to `#[llm_call]`: deserialize it into the typed adapter structs
//! (`cost_core::adapters::{anthropic, gemini}`), which implement `TokenUsage`; or read the
//! `serde_json::Value` with the adapter's `from_json` and return the `Usage`.

use cost_layer::cost_core::adapters::{anthropic, gemini};
use cost_layer::cost_core::{Usage, adapters::AdapterError};
use cost_layer::{CostLayer, Ledger, llm_call};
use serde_json::json;
use tracing_subscriber::prelude::*;

/// An Anthropic answer: 50 uncached input tokens, 6 000 read from the cache, 3 000 written
/// (2 000 for 5 minutes, 1 000 for an hour), 700 output.
fn anthropic_body() -> serde_json::Value {
    json!({
        "id": "msg_01", "type": "message", "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [{"type": "text", "text": "…"}],
        "stop_reason": "end_turn",
        "usage": {
            "input_tokens": 50,
            "cache_creation_input_tokens": 3000,
            "cache_read_input_tokens": 6000,
            "cache_creation": {"ephemeral_5m_input_tokens": 2000, "ephemeral_1h_input_tokens": 1000},
            "output_tokens": 700
        }
    })
}

/// A Gemini answer: 12 000 prompt tokens (8 000 from cached content), 300 candidate tokens and
/// 200 thinking tokens.
fn gemini_body() -> serde_json::Value {
    json!({
        "candidates": [{"content": {"parts": [{"text": "…"}], "role": "model"}, "finishReason": "STOP"}],
        "modelVersion": "gemini-2.5-pro",
        "usageMetadata": {
            "promptTokenCount": 12000, "cachedContentTokenCount": 8000,
            "candidatesTokenCount": 300, "thoughtsTokenCount": 200, "totalTokenCount": 12500
        }
    })
}

/// Typed: the response deserializes into the adapter struct, which carries usage and model.
#[llm_call(provider = "anthropic", feature = "review")]
fn ask_claude(body: serde_json::Value) -> Result<anthropic::Message, serde_json::Error> {
    serde_json::from_value(body)
}

/// Untyped: read the usage out of the JSON value; the model is given to the macro.
#[llm_call(model = "gemini-2.5-pro", provider = "gcp.gemini", feature = "review")]
fn ask_gemini(body: &serde_json::Value) -> Result<Usage, AdapterError> {
    gemini::from_json(body)
}

/// Runs both calls in one session and returns the ledger.
pub(crate) fn run() -> Ledger {
    let (cost, ledger) = CostLayer::builder().build();
    let subscriber = tracing_subscriber::registry().with(cost);
    tracing::subscriber::with_default(subscriber, || {
        let session = tracing::info_span!("review_session", session.id = "pr-1234");
        let _entered = session.enter();
        if let Err(e) = ask_claude(anthropic_body()) {
            eprintln!("bad Anthropic response: {e}");
        }
        if let Err(e) = ask_gemini(&gemini_body()) {
            eprintln!("bad Gemini response: {e}");
        }
    });
    ledger
}

fn main() {
    let ledger = run();
    for model in ["claude-sonnet-4-5", "gemini-2.5-pro"] {
        if let Some(totals) = ledger.model(model) {
            println!("{model:<18} {totals}");
            println!(
                "{:<18} input {} (cache read {}, written {} + {} for 1 h), output {} (reasoning {})",
                "",
                totals.usage.input,
                totals.usage.cache_read,
                totals.usage.cache_write,
                totals.usage.cache_write_1h,
                totals.usage.output,
                totals.usage.reasoning
            );
        }
    }
    if let Some(session) = ledger.session("pr-1234") {
        println!("session pr-1234    {session}");
    }
}
