//! The proptest twin of the `quote_line` fuzz target (`fuzz/`): any input line gets one JSON
//! line back, a price or an error, and never a panic; so does any line read as a provider's
//! response (`quote --from`).

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
        Just("data_residency"),
        Just("search_context_size"),
        Just("reported_cost_usd"),
        Just("date"),
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
    fn any_line_gets_one_json_answer(
        line in prop_oneof![line(), "\\PC{0,200}"],
        charge_reported in any::<bool>(),
        allow_unknown_keys in any::<bool>(),
    ) {
        let table = cost_core::PriceTable::default();
        // 2033: every embedded price (all dated) is stale by then.
        let pricing = quote::Pricing { table: &table, now: 2_000_000_000, age_limit: 180, charge_reported, allow_unknown_keys };
        if let Some(outcome) = quote::quote_line(&pricing, line.as_bytes()) {
            let answer: serde_json::Value = serde_json::from_str(&outcome.json)
                .map_err(|e| TestCaseError::fail(format!("{e}: {}", outcome.json)))?;
            // A key the format does not know is never priced as if absent, unless allowed.
            if line.contains("\"other\":") && !allow_unknown_keys {
                prop_assert!(!outcome.priced, "{}", outcome.json);
            }
            // A price, or an error: never both, never neither.
            prop_assert_eq!(answer.get("error").is_some(), !outcome.priced);
            prop_assert_eq!(answer.get("cost_usd").is_some(), outcome.priced);
            // The table's price is stale; a provider's figure has no date, and is only
            // charged when asked to.
            let by_provider = answer.get("cost_source").is_some();
            prop_assert!(!by_provider || charge_reported);
            prop_assert_eq!(outcome.stale.is_some(), outcome.priced && !by_provider);
            if by_provider {
                prop_assert_eq!(answer.get("cost_usd"), answer.get("reported_cost_usd"));
            }
        }
    }

    #[test]
    fn any_response_line_gets_one_json_answer(
        line in prop_oneof![response_line(), "\\PC{0,200}"],
        format in 0..7_usize,
        fallback in proptest::option::of(Just("gpt-4o")),
        charge_reported in any::<bool>(),
    ) {
        use quote::ResponseFormat::*;
        let format = [OpenaiChat, OpenaiResponses, OpenaiRealtime, OpenaiImages, Anthropic, Gemini, Bedrock][format];
        let table = cost_core::PriceTable::default();
        let pricing = quote::Pricing { table: &table, now: 2_000_000_000, age_limit: 180, charge_reported, allow_unknown_keys: false };
        if let Some(outcome) = quote::quote_response_line(&pricing, format, fallback, line.as_bytes()) {
            let answer: serde_json::Value = serde_json::from_str(&outcome.json)
                .map_err(|e| TestCaseError::fail(format!("{e}: {}", outcome.json)))?;
            prop_assert_eq!(answer.get("error").is_some(), !outcome.priced);
            prop_assert_eq!(answer.get("cost_usd").is_some(), outcome.priced);
        }
    }
}

/// Lines shaped like the providers' responses, with counts of any type.
fn response_line() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        Just("null".to_owned()),
        Just("\"x\"".to_owned()),
        (0..5000_u64).prop_map(|n| n.to_string()),
    ];
    let count = prop_oneof![
        Just("prompt_tokens"),
        Just("completion_tokens"),
        Just("total_tokens"),
        Just("input_tokens"),
        Just("output_tokens"),
        Just("cache_read_input_tokens"),
        Just("promptTokenCount"),
        Just("candidatesTokenCount"),
        Just("thoughtsTokenCount"),
        Just("inputTokens"),
        Just("outputTokens"),
        Just("totalTokens"),
        Just("inference_geo"),
    ];
    let model = prop_oneof![
        Just("\"gpt-4o\""),
        Just("\"claude-sonnet-4-5\""),
        Just("\"gemini-2.5-flash\""),
        Just("\"nope\""),
        Just("7"),
    ];
    let tier = prop_oneof![Just("\"flex\""), Just("\"scale\""), Just("null"), Just("3")];
    let created = prop_oneof![
        Just("1764000000"),
        Just("-5"),
        Just("\"soon\""),
        Just("99999999999999")
    ];
    (proptest::collection::vec((count, value), 0..8), model, tier, created).prop_map(
        |(counts, model, tier, created)| {
            let usage: Vec<String> = counts.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
            let usage = format!("{{{}}}", usage.join(", "));
            format!(
                "{{\"id\": 1, \"model\": {model}, \"modelVersion\": {model}, \"service_tier\": {tier}, \"created\": {created}, \"usage\": {usage}, \"usageMetadata\": {usage}, \"response\": {{\"model\": {model}, \"usage\": {usage}}}}}"
            )
        },
    )
}
