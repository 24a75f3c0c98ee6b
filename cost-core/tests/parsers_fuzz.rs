//! The proptest twins of the fuzz targets `price_native`, `price_litellm` and `adapters`
//! (`fuzz/`): price files and provider payloads, random or mutated from real ones, give a
//! table or a typed error, never a panic; a table that loads prices every entry without one.

#[path = "support/fuzz_bodies.rs"]
mod fuzz_bodies;

use cost_core::PriceTable;
use proptest::prelude::*;
use serde_json::Value;

const LITELLM_SAMPLE: &str = include_str!("../../tests/data/litellm_sample.json");

/// `text` with bytes overwritten, inserted or removed at the given places.
fn mutate(text: &str, edits: &[(usize, u8, u8)]) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for &(at, op, byte) in edits {
        if bytes.is_empty() {
            bytes.push(byte);
            continue;
        }
        let at = at % bytes.len();
        match op % 3 {
            0 => bytes[at] = byte,
            1 => bytes.insert(at, byte),
            _ => {
                bytes.remove(at);
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Whatever loads must price its entries without panicking.
fn exercise(text: &str) {
    if let Ok(table) = PriceTable::from_text(text, "fuzz") {
        fuzz_bodies::exercise_table(&table);
    }
}

fn edits() -> impl Strategy<Value = Vec<(usize, u8, u8)>> {
    proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..12)
}

/// JSON values of any shape, numbers of every kind included.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[a-z_]{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("usage".to_owned()),
                    Just("input_tokens".to_owned()),
                    Just("output_tokens".to_owned()),
                    Just("prompt_tokens".to_owned()),
                    Just("completion_tokens".to_owned()),
                    Just("cache_read_input_tokens".to_owned()),
                    Just("cache_creation_input_tokens".to_owned()),
                    Just("prompt_tokens_details".to_owned()),
                    Just("cached_tokens".to_owned()),
                    Just("usageMetadata".to_owned()),
                    Just("promptTokenCount".to_owned()),
                    Just("candidatesTokenCount".to_owned()),
                    Just("thoughtsTokenCount".to_owned()),
                    "[a-z_]{1,10}",
                ],
                inner,
                0..6
            )
            .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn native_price_files_mutated_never_panic(edits in edits()) {
        exercise(&mutate(cost_core::EMBEDDED_PRICES, &edits));
    }

    #[test]
    fn litellm_price_files_mutated_never_panic(edits in edits()) {
        exercise(&mutate(LITELLM_SAMPLE, &edits));
    }

    #[test]
    fn random_text_as_a_price_file_never_panics(text in "\\PC{0,400}") {
        exercise(&text);
    }

    #[test]
    fn provider_payloads_of_any_shape_give_usage_or_an_error(value in json()) {
        fuzz_bodies::exercise_adapters(&value);
    }
}

/// Found by `provider_payloads_of_any_shape_give_usage_or_an_error`: the Anthropic adapter
/// added exclusive counts with `+`, which overflowed (a panic in debug builds, a wrapped and
/// plausible-looking count in release). Sums now saturate and validation refuses the result.
#[test]
fn overflowing_counts_are_refused_not_wrapped() {
    let value: Value = serde_json::from_str(
        r#"{"input_tokens": 10840158053902636432, "cache_read_input_tokens": 7606586019806915184}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let usage = cost_core::adapters::anthropic::from_json(&value);
    assert!(
        usage.is_err() || usage.is_ok_and(|u| u.validate().is_err()),
        "an overflowing count passed"
    );
    let gemini: Value = serde_json::from_str(
        r#"{"usageMetadata": {"promptTokenCount": 18446744073709551615, "toolUsePromptTokenCount": 2}}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let usage = cost_core::adapters::gemini::from_json(&gemini);
    assert!(usage.is_err() || usage.is_ok_and(|u| u.validate().is_err()));
}
