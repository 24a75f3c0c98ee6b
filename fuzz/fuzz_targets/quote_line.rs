//! `llm-cost quote` on an arbitrary input line, read as a line of usage and as a provider's
//! response in each format (`--from`), with and without `--charge-reported-cost-when-unpriced`: one
//! JSON answer each time, a price or an error.
#![no_main]

#[allow(dead_code)]
#[path = "../../cost-cli/src/quote.rs"]
mod quote;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|line: &[u8]| {
    let table = cost_core::PriceTable::default();
    let check = |outcome: quote::LineOutcome| {
        let answer: serde_json::Value =
            serde_json::from_str(&outcome.json).unwrap_or_else(|e| panic!("{e}: {}", outcome.json));
        assert_eq!(answer.get("error").is_some(), !outcome.priced);
    };
    // As by default, and charging unpriced calls their reported cost with unknown keys ignored.
    for (charge_reported, allow_unknown_keys) in [(false, false), (true, true)] {
        let pricing = quote::Pricing {
            table: &table,
            now: 2_000_000_000,
            age_limit: 180,
            charge_reported,
            allow_unknown_keys,
        };
        if let Some(outcome) = quote::quote_line(&pricing, line) {
            check(outcome);
        }
        use quote::ResponseFormat::*;
        for format in [OpenaiChat, OpenaiResponses, OpenaiRealtime, OpenaiImages, Anthropic, Gemini, Bedrock] {
            if let Some(outcome) = quote::quote_response_line(&pricing, format, Some("gpt-4o"), line) {
                check(outcome);
            }
        }
    }
});
