//! The proptest twin of the `quote_line` fuzz target (`fuzz/`): any input line gets one JSON
//! line back, a price or an error, and never a panic.

#[allow(dead_code)]
#[path = "../src/quote.rs"]
mod quote;

use proptest::prelude::*;

/// Lines that look like the input format, with fields of any type.
fn line() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|n| format!("{n:?}")),
        Just("null".to_owned()),
        Just("true".to_owned()),
        "\"[a-z0-9.-]{0,16}\"",
        Just("\"gpt-4o\"".to_owned()),
        Just("\"batch\"".to_owned()),
        Just("[]".to_owned()),
    ];
    let key = prop_oneof![
        Just("id"),
        Just("model"),
        Just("input_tokens"),
        Just("output_tokens"),
        Just("cache_read_tokens"),
        Just("cache_write_tokens"),
        Just("cache_write_1h_tokens"),
        Just("reasoning_tokens"),
        Just("audio_input_tokens"),
        Just("audio_output_tokens"),
        Just("cache_read_audio_tokens"),
        Just("image_output_tokens"),
        Just("web_search_requests"),
        Just("image_input_tokens"),
        Just("cache_read_image_tokens"),
        Just("file_search_calls"),
        Just("service_tier"),
        Just("other"),
    ];
    proptest::collection::vec((key, value), 0..10).prop_map(|fields| {
        let body: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("\"{k}\": {v}"))
            .collect();
        format!("{{{}}}", body.join(", "))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_line_gets_one_json_answer(line in prop_oneof![line(), "\\PC{0,200}"]) {
        let table = cost_core::PriceTable::default();
        // 2033: every embedded price (all dated) is stale by then.
        let pricing = quote::Pricing { table: &table, now: 2_000_000_000, age_limit: 180 };
        if let Some(outcome) = quote::quote_line(&pricing, line.as_bytes()) {
            let answer: serde_json::Value = serde_json::from_str(&outcome.json)
                .map_err(|e| TestCaseError::fail(format!("{e}: {}", outcome.json)))?;
            // A price, or an error: never both, never neither.
            prop_assert_eq!(answer.get("error").is_some(), !outcome.priced);
            prop_assert_eq!(answer.get("cost_usd").is_some(), outcome.priced);
            prop_assert_eq!(outcome.stale.is_some(), outcome.priced);
        }
    }
}
