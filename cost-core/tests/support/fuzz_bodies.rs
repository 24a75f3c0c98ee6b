//! What the fuzz targets (`fuzz/`) and their proptest twins (`cost-core/tests/parsers_fuzz.rs`)
//! do with each input, shared so both check the same thing.

use cost_core::adapters::{anthropic, bedrock, gemini, openai};
use cost_core::{PriceTable, ServiceTier, Usage};
use serde_json::Value;

/// Prices every entry of a table that loaded, at every tier, below and above the usual context
/// tiers: whatever loads must price without panicking.
pub(crate) fn exercise_table(table: &PriceTable) {
    for entry in table.entries() {
        for tier in ServiceTier::ALL {
            let audio = Usage {
                audio_input: 500,
                audio_output: 50,
                ..Usage::new(1_000, 100)
            };
            let images_and_tools = Usage {
                cache_read: 200,
                cache_read_image: 100,
                image_input: 300,
                image_output: 50,
                web_search_requests: 2,
                file_search_calls: 2,
                ..Usage::new(1_000, 100)
            };
            for usage in [
                Usage::new(1_000, 100),
                Usage::new(300_000, 100),
                audio,
                images_and_tools,
            ] {
                let _ = table.quote(&entry.key, &usage, tier);
                // At every price the entry has had, and at the ends of time.
                let days = entry.changes.iter().map(|change| change.starts_at());
                for at in days.chain([i64::MIN, i64::MAX]) {
                    let _ = table.quote_at(&entry.key, &usage, tier, at);
                }
            }
        }
    }
}

/// Reads a payload with every provider adapter: usage or a typed error; usage that comes back
/// is validated (refused when inconsistent or absurd), never priced as it is.
pub(crate) fn exercise_adapters(value: &Value) {
    for usage in [
        openai::chat_from_json(value),
        openai::responses_from_json(value),
        openai::realtime_from_json(value),
        openai::images_from_json(value),
        anthropic::from_json(value),
        bedrock::from_json(value),
        gemini::from_json(value),
    ]
    .into_iter()
    .flatten()
    {
        let _ = usage.validate();
    }
    // A stream fed the value as its start and as a delta: a usage it returns is a valid one.
    let mut stream = anthropic::StreamUsage::default();
    let start = serde_json::json!({"type": "message_start", "message": value});
    for event in [&start, value, value] {
        if let Ok(usage) = stream.update(event) {
            assert!(usage.validate().is_ok(), "{usage:?} from {event}");
        }
    }
}
