//! Prices calls against `tests/data/litellm_sample.json`, a LiteLLM-format table written for
//! these tests, and compares with costs computed by hand (shown in each test).

use cost_core::{MatchRule, Money, PriceTable, ServiceTier, Usage};

fn sample() -> PriceTable {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/litellm_sample.json"
    );
    PriceTable::from_path(path).unwrap_or_else(|e| panic!("{e}"))
}

fn usd(text: &str) -> Money {
    Money::from_decimal(text).unwrap_or_else(|e| panic!("{e}"))
}

fn total(model: &str, usage: Usage, tier: ServiceTier) -> Money {
    sample()
        .quote(model, &usage, tier)
        .unwrap_or_else(|e| panic!("{e}"))
        .total()
}

#[test]
fn gemini_2_5_pro_above_200k_prices_the_whole_request_at_the_tier() {
    // 250 000 input > 200 000: every component at the tier's price.
    //   uncached 200 000 × 2.5e-6  = 0.5
    //   cache read 50 000 × 2.5e-7 = 0.0125
    //   output 1 000 × 1.5e-5      = 0.015
    //   reasoning 1 000 × 1.5e-5   = 0.015   (no reasoning price: the tier's output price)
    let usage = Usage {
        input: 250_000,
        cache_read: 50_000,
        output: 2_000,
        reasoning: 1_000,
        ..Usage::default()
    };
    let table = sample();
    let quote = table
        .quote("gemini/gemini-2.5-pro", &usage, ServiceTier::Standard)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(quote.total(), usd("0.5425"));
    assert_eq!(quote.priced.context_tier, Some(200_000));
    assert_eq!(quote.priced.breakdown.cache_read, usd("0.0125"));
    // Saved by the cache: 50 000 × (2.5e-6 − 2.5e-7) = 0.1125
    assert_eq!(quote.priced.breakdown.cache_savings, usd("0.1125"));
}

#[test]
fn gemini_at_exactly_200k_stays_at_base_prices() {
    // 200 000 × 1.25e-6 + 1 000 × 1e-5 = 0.25 + 0.01
    let usage = Usage::new(200_000, 1_000);
    assert_eq!(
        total("gemini/gemini-2.5-pro", usage, ServiceTier::Standard),
        usd("0.26")
    );
    // One more token crosses: 200 001 × 2.5e-6 + 1 000 × 1.5e-5 = 0.5000025 + 0.015
    let usage = Usage::new(200_001, 1_000);
    assert_eq!(
        total("gemini/gemini-2.5-pro", usage, ServiceTier::Standard),
        usd("0.5150025")
    );
}

#[test]
fn claude_with_cache_read_and_both_cache_writes() {
    //   uncached 1 000 × 3e-6     = 0.003
    //   cache read 6 000 × 3e-7   = 0.0018
    //   write 5m 2 000 × 3.75e-6  = 0.0075
    //   write 1h 1 000 × 6e-6     = 0.006
    //   output 500 × 1.5e-5       = 0.0075
    let usage = Usage {
        input: 10_000,
        cache_read: 6_000,
        cache_write: 2_000,
        cache_write_1h: 1_000,
        output: 500,
        ..Usage::default()
    };
    assert_eq!(
        total("claude-sonnet-4-5-20250929", usage, ServiceTier::Standard),
        usd("0.0258")
    );
    // Through the alias declared with {"alias_of": …}.
    let table = sample();
    let quote = table
        .quote("claude-sonnet-4-5", &usage, ServiceTier::Standard)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (quote.entry.key.as_str(), quote.rule),
        ("claude-sonnet-4-5-20250929", MatchRule::Alias)
    );
}

#[test]
fn claude_above_200k_with_1h_writes_uses_the_tiered_1h_price() {
    //   uncached 100 000 × 6e-6    = 0.6
    //   cache read 100 000 × 6e-7  = 0.06
    //   write 1h 100 000 × 1.2e-5  = 1.2
    //   output 1 000 × 2.25e-5     = 0.0225
    let usage = Usage {
        input: 300_000,
        cache_read: 100_000,
        cache_write_1h: 100_000,
        output: 1_000,
        ..Usage::default()
    };
    assert_eq!(
        total("claude-sonnet-4-5-20250929", usage, ServiceTier::Standard),
        usd("1.8825")
    );
}

#[test]
fn service_tiers_from_litellm_suffixes() {
    let usage = Usage::new(1_000, 1_000);
    // batch: 1 000 × 1.25e-6 + 1 000 × 5e-6
    assert_eq!(total("gpt-4o", usage, ServiceTier::Batch), usd("0.00625"));
    // priority: 1 000 × 4.25e-6 + 1 000 × 1.7e-5
    assert_eq!(
        total("gpt-4o", usage, ServiceTier::Priority),
        usd("0.02125")
    );
    // flex: 1 000 × 1e-6 + 1 000 × 4e-6
    assert_eq!(total("o3", usage, ServiceTier::Flex), usd("0.005"));
    // o3 has no batch prices: standard prices, and the quote says so.
    let table = sample();
    let quote = table
        .quote("o3", &usage, ServiceTier::Batch)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (quote.total(), quote.priced.service_tier),
        (usd("0.01"), ServiceTier::Standard)
    );
}

#[test]
fn regional_processing_prices_a_data_residency_call() {
    // gpt-4o's EU and US regional processing both cost 10% more: 10 000 × 2.5e-6 × 1.1.
    let terms = cost_core::CallTerms {
        service_tier: ServiceTier::Standard,
        data_residency: true,
        search_context_size: None,
    };
    let table = sample();
    let quote = table
        .quote("gpt-4o", &Usage::new(10_000, 0), terms)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(quote.total(), usd("0.0275"));
}

#[test]
fn reasoning_price_string_prices_and_null_prices() {
    // Reasoning at its own price: output 1 000 × 6e-7 + reasoning 2 000 × 3.5e-6.
    let usage = Usage {
        input: 1_000,
        cache_read: 1_000,
        output: 3_000,
        reasoning: 2_000,
        ..Usage::default()
    };
    // cache read with a null price falls back to the input price: 1 000 × 1.5e-7
    assert_eq!(
        total(
            "gemini-2.5-flash-preview-04-17",
            usage,
            ServiceTier::Standard
        ),
        usd("0.00775")
    );
    // "2.8e-07" given as a string: 10⁶ × 2.8e-7 + 10⁶ × 4.2e-7
    assert_eq!(
        total(
            "deepseek/deepseek-chat",
            Usage::new(1_000_000, 1_000_000),
            ServiceTier::Standard
        ),
        usd("0.7")
    );
    // Embedding with an explicit zero output price.
    assert_eq!(
        total(
            "text-embedding-3-small",
            Usage::new(1_000_000, 0),
            ServiceTier::Standard
        ),
        usd("0.02")
    );
}

#[test]
fn xai_tier_above_128k() {
    // 128 001 × 6e-6 + 10 × 3e-5
    assert_eq!(
        total("xai/grok-4", Usage::new(128_001, 10), ServiceTier::Standard),
        usd("0.768306")
    );
    // The provider prefix is stripped only when absent: "grok-4" is not a key, so unknown.
    assert!(
        sample()
            .quote("grok-4", &Usage::new(1, 1), ServiceTier::Standard)
            .is_err()
    );
    // "openai/gpt-4o" is absent, so the prefix is stripped.
    let table = sample();
    let quote = table
        .quote("openai/gpt-4o", &Usage::new(1, 1), ServiceTier::Standard)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (quote.entry.key.as_str(), quote.rule),
        ("gpt-4o", MatchRule::ProviderPrefix)
    );
}

#[test]
fn load_report_counts_what_was_left_out() {
    let table = sample();
    let report = table.report();
    assert_eq!(report.entries, 9);
    assert_eq!(report.aliases, 1);
    assert_eq!(
        report.skipped_entries.keys().collect::<Vec<_>>(),
        ["dall-e-3", "whisper-1"]
    );
    // Each with the keys that price it instead.
    assert!(
        report.skipped_entries["whisper-1"].ends_with(
            "entry `whisper-1`: no per-token input price (priced by `input_cost_per_second`, `output_cost_per_second`)"
        ),
        "{:?}",
        report.skipped_entries
    );
    // DeepSeek's cache hit price is its cache read price, read, not skipped.
    assert_eq!(
        report.skipped_keys.get("input_cost_per_token_cache_hit"),
        None
    );
    assert!(report.skipped_keys.is_empty(), "{:?}", report.skipped_keys);
    // Search prices are read, not skipped: Claude's $0.01 per search (batch discounts the
    // tokens only).
    assert_eq!(
        report.skipped_keys.get("search_context_cost_per_query"),
        None
    );
    let searched = Usage {
        web_search_requests: 2,
        ..Usage::new(1_000, 0)
    };
    assert_eq!(
        total("claude-sonnet-4-5-20250929", searched, ServiceTier::Batch),
        usd("0.0215")
    );
    // Audio prices are read, not skipped.
    assert_eq!(report.skipped_keys.get("input_cost_per_audio_token"), None);
    assert!(table.get("sample_spec").is_none());
    assert!(table.info().version.starts_with("litellm@"));
    let quote = table
        .quote("gpt-4o", &Usage::new(1, 1), ServiceTier::Standard)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(*quote.provenance().table_version, *table.info().version);
}

#[test]
fn audio_prompt_tokens_are_priced_at_the_audio_price() {
    // gemini-2.5-flash-preview-04-17: text input 1.5e-07, audio input 1e-06, output 6e-07,
    // reasoning 3.5e-06. 10 000 prompt tokens of which 4 000 audio; 1 000 output of which 200
    // reasoning: 6 000 × 1.5e-7 + 4 000 × 1e-6 + 800 × 6e-7 + 200 × 3.5e-6 = 0.00608.
    let usage = Usage {
        input: 10_000,
        audio_input: 4_000,
        output: 1_000,
        reasoning: 200,
        ..Usage::default()
    };
    let table = sample();
    let quote = table
        .quote(
            "gemini-2.5-flash-preview-04-17",
            &usage,
            ServiceTier::Standard,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(quote.total().to_string(), "0.00608");
    assert_eq!(quote.priced.breakdown.audio_input.to_string(), "0.004");
    assert_eq!(quote.priced.breakdown.uncached_input.to_string(), "0.0009");
    // A model without an audio price bills audio tokens as text (as the provider does).
    let text_priced = table
        .quote("gpt-4o", &usage, ServiceTier::Standard)
        .unwrap_or_else(|e| panic!("{e}"));
    let as_text = table
        .quote(
            "gpt-4o",
            &Usage {
                audio_input: 0,
                ..usage
            },
            ServiceTier::Standard,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(text_priced.total(), as_text.total());
}

#[test]
fn range_tiers_of_tiered_pricing_price_the_whole_request() {
    // 256 000 is inside the first range (lo < input <= hi): 256 000 × 4e-7 + 1 000 × 1.2e-6
    let usage = Usage::new(256_000, 1_000);
    assert_eq!(
        total("dashscope/qwen-plus", usage, ServiceTier::Standard),
        usd("0.1036")
    );
    // One token more: the second range for every token; its absent cache-read price is the
    // tier's input price.
    //   uncached 255 000 × 1.2e-6 = 0.306, cache read 1 001 × 1.2e-6 = 0.0012012,
    //   output 1 000 × 3.6e-6 = 0.0036
    let usage = Usage {
        input: 256_001,
        cache_read: 1_001,
        output: 1_000,
        ..Usage::default()
    };
    assert_eq!(
        total("dashscope/qwen-plus", usage, ServiceTier::Standard),
        usd("0.3108012")
    );
    // Above the last range, the last tier.
    let usage = Usage::new(2_000_000, 0);
    assert_eq!(
        total("dashscope/qwen-plus", usage, ServiceTier::Standard),
        usd("2.4")
    );
}
