//! Price tables: the embedded default, the native format and its errors, name resolution,
//! merging and live replacement.

use std::sync::Arc;

use cost_core::{
    CallTerms, ComponentPrices, CostError, MatchRule, ModelEntry, ModelPrice, Money,
    PriceFileErrorKind, PriceTable, QuoteError, SearchContextSize, ServiceTier, SharedPriceTable,
    TokenKind, TokenPrice, Usage,
};

fn usd(text: &str) -> Money {
    Money::from_decimal(text).unwrap_or_else(|e| panic!("{e}"))
}

/// 00:00 UTC on `date` (`YYYY-MM-DD`), in seconds since the Unix epoch.
fn day_start(date: &str) -> i64 {
    cost_core::budget::parse_utc_date(date).unwrap_or_else(|| panic!("{date}")) * 86_400
}

/// A call's prompt (cache reads included) and completion tokens.
fn prompt(input: u64, cache_read: u64, output: u64) -> Usage {
    Usage {
        input,
        cache_read,
        output,
        ..Usage::default()
    }
}

/// A table from a price file's text; panics naming the error.
fn loaded(text: &str, origin: &str) -> PriceTable {
    PriceTable::from_text(text, origin).unwrap_or_else(|e| panic!("{e}"))
}

/// A native table pricing the dated snapshot the LiteLLM texts of the tests of left-out names
/// leave out.
const SNAPSHOT_PRICED_BELOW: &str =
    "version = \"below\"\n[models.\"snap-2024-05-13\"]\ninput = \"5\"\noutput = \"15\"\n";

/// What one call of `name` with `usage` costs at standard prices in `table`.
fn standard_total(table: &PriceTable, name: &str, usage: &Usage) -> Result<Money, QuoteError> {
    table
        .quote(name, usage, ServiceTier::Standard)
        .map(|q| q.total())
}

/// Why `name` is unpriced in `table` when a rule found an entry the table left out or
/// skipped; `None` when it is priced or unknown.
fn why_left_out(table: &PriceTable, name: &str) -> Option<String> {
    table
        .resolve(name)
        .err()
        .and_then(|unpriced| unpriced.left_out)
}

fn resolve(table: &PriceTable, name: &str) -> Option<(String, MatchRule)> {
    table
        .resolve(name)
        .ok()
        .map(|r| (table.entry(r.id).key.clone(), r.rule))
}

#[test]
fn embedded_table_loads_and_is_dated_and_sourced() {
    let table = PriceTable::default();
    assert!(table.len() >= 60, "only {} models", table.len());
    assert_eq!(table.info().origin, "embedded");
    assert!(table.info().as_of.is_some());
    for entry in table.entries() {
        assert!(
            entry
                .source
                .as_deref()
                .is_some_and(|s| s.starts_with("https://")),
            "{}",
            entry.key
        );
        assert!(entry.as_of.is_some(), "{}", entry.key);
    }
    for provider in [
        "openai",
        "anthropic",
        "google",
        "mistral",
        "deepseek",
        "xai",
    ] {
        let count = table
            .entries()
            .iter()
            .filter(|e| e.provider.as_deref() == Some(provider))
            .count();
        assert!(count >= 2, "{provider}: {count}");
    }
    let embeddings = table
        .entries()
        .iter()
        .filter(|e| e.key.contains("embed"))
        .count();
    assert!(embeddings >= 5, "{embeddings} embedding models");
}

#[test]
fn the_embedded_table_prices_the_claude_models_of_2026_as_their_pricing_page_says() {
    let table = PriceTable::default();
    let quote = |model: &str, usage: Usage, terms: CallTerms| {
        table
            .quote(model, &usage, terms)
            .map(|q| (q.total(), q.priced.context_tier))
    };
    let standard: CallTerms = ServiceTier::Standard.into();
    // Claude Haiku 5.5 bills the whole request at five times its prices once the prompt, cache
    // reads included, is over 100 000 tokens: 60 000 × $0.10 + 40 000 × $0.01 + 1 000 × $0.50
    // per million at the threshold; 60 000 × $0.50 + 40 001 × $0.05 + 1 000 × $2.50 past it.
    assert_eq!(
        quote("claude-haiku-5-5", prompt(100_000, 40_000, 1_000), standard),
        Ok((usd("0.0069"), None))
    );
    assert_eq!(
        quote("claude-haiku-5-5", prompt(100_001, 40_001, 1_000), standard),
        Ok((usd("0.03450005"), Some(100_000)))
    );
    // In batch, half of each: 100 001 × $0.25 + 1 000 × $1.25 per million.
    assert_eq!(
        quote(
            "claude-haiku-5-5",
            prompt(100_001, 0, 1_000),
            ServiceTier::Batch.into()
        ),
        Ok((usd("0.02625025"), Some(100_000)))
    );
    // The Batch API halves every price, cache reads and writes included, above a context tier
    // too: 20 000 × $1.50 + 30 000 × $0.15 + 10 000 × $1.875 + 1 000 × $7.50 per million on
    // Sonnet 4.5, and past 200 000 input tokens 210 001 × $3 + 1 000 × $11.25.
    let cached = Usage {
        input: 60_000,
        cache_read: 30_000,
        cache_write: 10_000,
        output: 1_000,
        ..Usage::default()
    };
    assert_eq!(
        quote("claude-sonnet-4-5", cached, ServiceTier::Batch.into()),
        Ok((usd("0.06075"), None))
    );
    assert_eq!(
        quote(
            "claude-sonnet-4-5",
            prompt(210_001, 0, 1_000),
            ServiceTier::Batch.into()
        ),
        Ok((usd("0.641253"), Some(200_000)))
    );
    // Claude 4.6 and later have no long-context price: 900 000 × $3 + 1 000 × $15 per million
    // on Sonnet 4.6, where Sonnet 4.5 bills the same request at $6 and $22.50.
    assert_eq!(
        quote("claude-sonnet-4-6", prompt(900_000, 0, 1_000), standard),
        Ok((usd("2.715"), None))
    );
    assert_eq!(
        quote("claude-sonnet-4-5", prompt(900_000, 0, 1_000), standard),
        Ok((usd("5.4225"), Some(200_000)))
    );
    // Cache reads below a tenth of the input price: Sonnet 5.5 at $0.10 (10 000 × $2 +
    // 10 000 × $0.10 per million), Fable 5.1 at $0.25 (10 000 × $0.25).
    assert_eq!(
        quote("claude-sonnet-5-5", prompt(20_000, 10_000, 0), standard),
        Ok((usd("0.021"), None))
    );
    // …since 2026-10-07: a call on record from the day before is priced at $0.20.
    let on = |date: &str| {
        table
            .quote_at(
                "claude-sonnet-5-5",
                &prompt(20_000, 10_000, 0),
                standard,
                day_start(date),
            )
            .map(|q| (q.total(), q.change.map(|c| c.on().to_owned())))
    };
    assert_eq!(on("2026-10-06"), Ok((usd("0.022"), None)));
    assert_eq!(
        on("2026-10-07"),
        Ok((usd("0.021"), Some("2026-10-07".to_owned())))
    );
    assert_eq!(
        quote("claude-fable-5-1", prompt(10_000, 10_000, 0), standard),
        Ok((usd("0.0025"), None))
    );
    // Fast mode at twice the standard prices where it is offered (10 000 × $8 + 1 000 × $40
    // per million on Opus 5.5), 1.1 times that with US-only inference; unpriced where the
    // table has no fast-mode price (Fable 5.2's was not published, Opus 4.6's is withdrawn).
    let fast = CallTerms {
        service_tier: ServiceTier::FastMode,
        data_residency: false,
        search_context_size: None,
    };
    assert_eq!(
        quote("claude-opus-5-5", prompt(10_000, 0, 1_000), fast),
        Ok((usd("0.12"), None))
    );
    assert_eq!(
        quote(
            "claude-opus-5-5",
            prompt(10_000, 0, 1_000),
            CallTerms {
                data_residency: true,
                search_context_size: None,
                ..fast
            }
        ),
        Ok((usd("0.132"), None))
    );
    for model in ["claude-fable-5-2", "claude-opus-4-6"] {
        assert!(
            matches!(
                table.quote(model, &prompt(10_000, 0, 1_000), fast),
                Err(QuoteError::Cost {
                    source: CostError::NoFastModePrice,
                    ..
                })
            ),
            "{model}"
        );
    }
}

/// A service tier's variant falls back to the standard price for what it leaves out, which
/// for a cache write is wrong wherever the tier discounts or marks up every price (Batch and
/// Flex halving a GPT-6 write, Priority doubling it): every embedded variant says its cache
/// write prices itself, in its base and in each context tier the standard one prices them in.
#[test]
fn every_embedded_service_tier_states_its_cache_write_prices() {
    use cost_core::TokenKind;
    let table = PriceTable::default();
    let writes = [TokenKind::CacheWrite, TokenKind::CacheWrite1h];
    let mut checked = 0;
    for entry in table.entries() {
        let standard = entry.price.standard();
        for tier in [ServiceTier::Batch, ServiceTier::Flex, ServiceTier::Priority] {
            let Some(variant) = entry.price.schedule(tier) else {
                continue;
            };
            for kind in writes {
                if standard.base.get(kind).is_some() {
                    checked += 1;
                    assert!(
                        variant.base.get(kind).is_some(),
                        "{} {tier:?} leaves out {kind:?}",
                        entry.key
                    );
                }
                for context in &standard.tiers {
                    if context.prices.get(kind).is_none() {
                        continue;
                    }
                    let stated = variant.tiers.iter().any(|t| {
                        t.above_input_tokens == context.above_input_tokens
                            && t.prices.get(kind).is_some()
                    });
                    assert!(
                        stated,
                        "{} {tier:?} above {} leaves out {kind:?}",
                        entry.key, context.above_input_tokens
                    );
                }
            }
        }
    }
    // The GPT-6 models' three variants at least.
    assert!(checked >= 15, "{checked}");
}

#[test]
fn the_embedded_table_prices_the_gpt_6_models_as_their_pages_say() {
    let table = PriceTable::default();
    let quote = |model: &str, usage: Usage, tier: ServiceTier| {
        table
            .quote(model, &usage, tier)
            .map(|q| (q.total(), q.priced.context_tier))
    };
    // GPT-6.1 Sol up to 272 000 input tokens, cache reads included: 172 000 × $2 + 100 000 ×
    // $0.10 + 1 000 × $10 per million (the dated snapshot name resolves to it).
    assert_eq!(
        quote(
            "gpt-6.1-sol-2026-09-29",
            prompt(272_000, 100_000, 1_000),
            ServiceTier::Standard
        ),
        Ok((usd("0.364"), None))
    );
    // One token more and the whole request is billed at twice the input and cache prices and
    // one and a half times the output price: 172 000 × $4 + 100 001 × $0.20 + 1 000 × $15.
    assert_eq!(
        quote(
            "gpt-6.1-sol",
            prompt(272_001, 100_001, 1_000),
            ServiceTier::Standard
        ),
        Ok((usd("0.7230002"), Some(272_000)))
    );
    // Priority ("fast") doubles whichever price applies, Flex and Batch halve it:
    // 272 001 × $8 + 1 000 × $30, and 200 000 × $0.10 + 100 000 × $0.01 + 1 000 × $0.375 on
    // GPT-6 Luna in Flex.
    assert_eq!(
        quote(
            "gpt-6.1-sol",
            prompt(272_001, 0, 1_000),
            ServiceTier::Priority
        ),
        Ok((usd("2.206008"), Some(272_000)))
    );
    assert_eq!(
        quote(
            "gpt-6-luna",
            prompt(300_000, 100_000, 1_000),
            ServiceTier::Flex
        ),
        Ok((usd("0.021375"), Some(272_000)))
    );
    // Cache writes are billed at 1.25 times input: 10 000 × $1 + 40 000 × $1.25 on GPT-6.1
    // Terra's 30-minute cache.
    let written = Usage {
        input: 50_000,
        cache_write: 40_000,
        ..Usage::default()
    };
    assert_eq!(
        quote("gpt-6.1-terra", written, ServiceTier::Standard),
        Ok((usd("0.06"), None))
    );
    // Batch and Flex halve the cache write price too, Priority doubles it: 10 000 × $0.50 +
    // 40 000 × $0.625, and 10 000 × $2 + 40 000 × $2.50 (never the standard $1.25).
    assert_eq!(
        quote("gpt-6.1-terra", written, ServiceTier::Batch),
        Ok((usd("0.03"), None))
    );
    assert_eq!(
        quote("gpt-6.1-terra", written, ServiceTier::Flex),
        Ok((usd("0.03"), None))
    );
    assert_eq!(
        quote("gpt-6.1-terra", written, ServiceTier::Priority),
        Ok((usd("0.12"), None))
    );
    // Past the 272 000-token tier, Batch halves the tier's write price: 100 000 × $2 +
    // 200 000 × $2.50 on GPT-6.1 Sol.
    let written_long = Usage {
        input: 300_000,
        cache_write: 200_000,
        ..Usage::default()
    };
    assert_eq!(
        quote("gpt-6.1-sol", written_long, ServiceTier::Batch),
        Ok((usd("0.7"), Some(272_000)))
    );
    // GPT-5.5's Priority costs 2.5 times whichever price applies: 300 000 × $25 + 1 000 ×
    // $112.50 per million past its 272 000-token tier.
    assert_eq!(
        quote("gpt-5.5", prompt(300_000, 0, 1_000), ServiceTier::Priority),
        Ok((usd("7.6125"), Some(272_000)))
    );
    // GPT-5.6 Terra was cut on 2026-07-30: a call of 2026-07-29 on record is priced at its
    // launch price (100 000 × $2.50 + 10 000 × $15 per million), one of that day at the cut
    // one ($2, $12).
    let terra = |date: &str| {
        table
            .quote_at(
                "gpt-5.6-terra",
                &prompt(100_000, 0, 10_000),
                ServiceTier::Standard,
                day_start(date),
            )
            .map(|q| q.total())
    };
    assert_eq!(
        (terra("2026-07-29"), terra("2026-07-30")),
        (Ok(usd("0.4")), Ok(usd("0.32")))
    );
    // Their web search price is not in the table: a call that searched is unpriced.
    let searched = Usage {
        web_search_requests: 1,
        ..prompt(1_000, 0, 100)
    };
    assert!(matches!(
        table.quote("gpt-6-astra", &searched, ServiceTier::Standard),
        Err(QuoteError::Cost {
            source: CostError::MissingPrice { .. },
            ..
        })
    ));
}

#[test]
fn the_embedded_table_prices_the_realtime_and_image_models_as_their_pages_say() {
    let table = PriceTable::default();
    // A voice turn as `response.done` reports it: 5 000 input tokens (1 000 text, 4 000 audio),
    // 3 500 of them cached (500 text, 3 000 audio); 800 output tokens, 700 of them audio.
    let voice = cost_core::adapters::openai::realtime_from_json(&serde_json::json!({
        "total_tokens": 5800, "input_tokens": 5000, "output_tokens": 800,
        "input_token_details": {
            "cached_tokens": 3500, "text_tokens": 1000, "audio_tokens": 4000,
            "cached_tokens_details": {"text_tokens": 500, "audio_tokens": 3000}
        },
        "output_token_details": {"text_tokens": 100, "audio_tokens": 700}
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    let total = |model: &str, usage: &Usage| {
        standard_total(&table, model, usage).unwrap_or_else(|e| panic!("{model}: {e}"))
    };
    // 500 text × $4 + 1 000 audio × $32 + 500 cached text × $0.40 + 3 000 cached audio × $0.40
    // + 100 text out × $24 + 700 audio out × $64, per million.
    assert_eq!(total("gpt-realtime-2.1", &voice), usd("0.0826"));
    assert_eq!(total("gpt-realtime-2", &voice), usd("0.0826"));
    // GPT-Realtime-1.5's text output is $16.
    assert_eq!(total("gpt-realtime-1.5", &voice), usd("0.0818"));
    // 500 × $0.60 + 1 000 × $10 + 500 × $0.06 + 3 000 × $0.30 + 100 × $2.40 + 700 × $20.
    assert_eq!(total("gpt-realtime-2.1-mini", &voice), usd("0.02547"));
    // A turn with a picture: 3 000 input tokens (1 000 text, 1 200 audio, 800 image), 1 500
    // cached (400 text, 700 audio, 400 image); 100 text out. 600 × $4 + 500 × $32 + 400 × $5
    // + 400 × $0.40 + 700 × $0.40 + 400 × $0.50 + 100 × $24.
    let picture = cost_core::adapters::openai::realtime_from_json(&serde_json::json!({
        "total_tokens": 3100, "input_tokens": 3000, "output_tokens": 100,
        "input_token_details": {
            "cached_tokens": 1500, "text_tokens": 1000, "audio_tokens": 1200, "image_tokens": 800,
            "cached_tokens_details": {"text_tokens": 400, "audio_tokens": 700, "image_tokens": 400}
        },
        "output_token_details": {"text_tokens": 100, "audio_tokens": 0}
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(total("gpt-realtime-2.1", &picture), usd("0.02344"));
    // GPT Image 1 mini editing a picture: 10 text and 40 image prompt tokens, 50 image tokens
    // out: 10 × $2 + 40 × $2.50 + 50 × $8 per million (GPT Image 1: $5, $10 and $40).
    let edit = cost_core::adapters::openai::images_from_json(&serde_json::json!({
        "total_tokens": 100, "input_tokens": 50, "output_tokens": 50,
        "input_tokens_details": {"text_tokens": 10, "image_tokens": 40}
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(total("gpt-image-1-mini", &edit), usd("0.00052"));
    assert_eq!(total("gpt-image-1", &edit), usd("0.00245"));
    // GPT-Image-2.6 Sunburst: 10 × $5 + 40 × $8 + 50 × $30.
    assert_eq!(total("gpt-image-2.6-sunburst", &edit), usd("0.00187"));
}

#[test]
fn the_embedded_table_prices_gemini_3_8_flash_at_its_introductory_price_until_2027() {
    let table = PriceTable::default();
    let usage = Usage {
        input: 100_000,
        cache_read: 40_000,
        audio_input: 10_000,
        output: 10_000,
        ..Usage::default()
    };
    let on = |date: &str, tier: ServiceTier| {
        table
            .quote_at("gemini-3.8-flash", &usage, tier, day_start(date))
            .map(|q| (q.total(), q.change.map(|c| c.on().to_owned())))
    };
    // 60 000 × $0.75 (audio as text) + 40 000 × $0.075 + 10 000 × $3.75 per million through
    // 2026; twice that from 2027-01-01; half either in Flex.
    assert_eq!(
        on("2026-12-31", ServiceTier::Standard),
        Ok((usd("0.0855"), None))
    );
    assert_eq!(
        on("2027-01-01", ServiceTier::Standard),
        Ok((usd("0.171"), Some("2027-01-01".to_owned())))
    );
    assert_eq!(
        on("2027-01-01", ServiceTier::Flex).map(|(total, _)| total),
        Ok(usd("0.0855"))
    );
}

#[test]
fn resolution_rules_in_order() {
    let table = PriceTable::default();
    let cases = [
        ("gpt-4o", "gpt-4o", MatchRule::Exact),
        ("GPT-4o", "gpt-4o", MatchRule::CaseInsensitive),
        ("gpt-4o-latest-typo", "", MatchRule::Exact),
        ("openai/gpt-4o", "gpt-4o", MatchRule::ProviderPrefix),
        (
            "openrouter/openai/gpt-4o",
            "gpt-4o",
            MatchRule::ProviderPrefix,
        ),
        (
            "azure/GPT-4o-mini",
            "gpt-4o-mini",
            MatchRule::ProviderPrefix,
        ),
        // A dated snapshot with its own entry keeps it; others fall back to their family.
        ("gpt-4o-2024-05-13", "gpt-4o-2024-05-13", MatchRule::Exact),
        ("gpt-4o-2024-08-06", "gpt-4o", MatchRule::DateSuffix),
        (
            "claude-sonnet-4-5-20250929",
            "claude-sonnet-4-5",
            MatchRule::DateSuffix,
        ),
        (
            "claude-sonnet-4-5@20250929",
            "claude-sonnet-4-5",
            MatchRule::DateSuffix,
        ),
        (
            "anthropic/claude-haiku-4-5-20251001",
            "claude-haiku-4-5",
            MatchRule::DateSuffix,
        ),
        ("claude-opus-4-0", "claude-opus-4", MatchRule::Alias),
        (
            "mistral-large-2411",
            "mistral-large-latest",
            MatchRule::Alias,
        ),
        // Versions as OpenRouter spells Anthropic's models; a dotted name the table has is
        // its own entry, and a version the table lacks stays unpriced.
        (
            "anthropic/claude-sonnet-4.5",
            "claude-sonnet-4-5",
            MatchRule::VersionDots,
        ),
        (
            "openrouter/anthropic/claude-3.5-sonnet",
            "claude-3-5-sonnet",
            MatchRule::VersionDots,
        ),
        (
            "claude-3.5-sonnet-20241022",
            "claude-3-5-sonnet",
            MatchRule::VersionDots,
        ),
        ("gpt-4.1", "gpt-4.1", MatchRule::Exact),
        (
            "openai/gpt-4.1-mini",
            "gpt-4.1-mini",
            MatchRule::ProviderPrefix,
        ),
        ("anthropic/claude-sonnet-4.9", "", MatchRule::Exact),
        // A gateway's variant may be billed otherwise: not the model's entry.
        ("anthropic/claude-sonnet-4.5:free", "", MatchRule::Exact),
    ];
    for (name, key, rule) in cases {
        let got = resolve(&table, name);
        if key.is_empty() {
            assert_eq!(got, None, "{name}");
        } else {
            assert_eq!(got, Some((key.to_owned(), rule)), "{name}");
        }
    }
}

#[test]
fn no_fuzzy_matching_and_unpriced_names_the_nearest() {
    let table = PriceTable::default();
    let err = table
        .resolve("gpt-4o-mini-turbo")
        .err()
        .unwrap_or_else(|| panic!("resolved"));
    assert_eq!(err.model, "gpt-4o-mini-turbo");
    assert_eq!(err.nearest.len(), 3);
    assert!(
        err.nearest.contains(&"gpt-4o-mini".to_owned()),
        "{:?}",
        err.nearest
    );
    assert!(err.to_string().contains("nearest known: "));
    // A variant's name is near the one it begins with; an unrelated name is near nothing, and
    // the message lists none rather than the least far of unrelated names.
    let near = |name: &str| table.resolve(name).err().map(|e| e.nearest);
    assert!(
        near("gpt-4o-mini-search-preview-2099")
            .is_some_and(|n| n.contains(&"gpt-4o-mini".to_owned())),
        "{:?}",
        near("gpt-4o-mini-search-preview-2099")
    );
    assert_eq!(
        near("gpt4o").and_then(|n| n.first().cloned()).as_deref(),
        Some("gpt-4o")
    );
    let unrelated = table
        .resolve("acme-house-style-v2")
        .err()
        .unwrap_or_else(|| panic!("resolved"));
    assert_eq!(unrelated.nearest, Vec::<String>::new());
    assert_eq!(
        unrelated.to_string(),
        "unknown model `acme-house-style-v2`: no price in the table"
    );
    assert!(table.resolve("claude").is_err());
    assert!(table.resolve("4o").is_err());
    match table.quote("my-finetune", &Usage::new(1, 1), ServiceTier::Standard) {
        Err(QuoteError::Unpriced(u)) => assert_eq!(u.model, "my-finetune"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn native_format_round_trip_with_tiers_and_variants() {
    let text = r#"
version = "test-1"
as_of = "2025-01-01"

[models."m"]
input = "1"
output = "4"
cache_write = "1.25"
batch = { input = "0.5", tiers = [{ above = 10, input = "0.75" }] }
aliases = ["m-alias"]

[[models."m".tiers]]
above = 10
input = "2"

[aliases]
"other-name" = "m"
"#;
    let table = PriceTable::from_text(text, "inline.toml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(&*table.info().version, "test-1");
    assert_eq!(
        table.get("m").and_then(|e| e.as_of.clone()).as_deref(),
        Some("2025-01-01")
    );
    let quote = |name: &str, usage: Usage, tier| {
        table
            .quote(name, &usage, tier)
            .map(|q| q.total())
            .unwrap_or_else(|e| panic!("{e}"))
    };
    // 11 > 10: tier input 2e-6; the 5-minute write keeps its base price 1.25e-6.
    let usage = Usage {
        input: 11,
        cache_write: 1,
        output: 1,
        ..Usage::default()
    };
    assert_eq!(quote("m", usage, ServiceTier::Standard), usd("0.00002525"));
    // batch tier above 10: uncached 10 × 0.75e-6, write 1.25e-6 (standard base), output 4e-6
    assert_eq!(
        quote("m-alias", usage, ServiceTier::Batch),
        usd("0.00001275")
    );
    assert_eq!(
        quote("other-name", Usage::new(10, 0), ServiceTier::Batch),
        usd("0.000005")
    );
}

#[test]
fn audio_prices_in_the_native_format_and_the_embedded_table() {
    let text = r#"
version = "test-audio"

[models."voice"]
input = "2.5"
output = "10"
audio_input = "40"
audio_output = "80"
batch = { audio_input = "20" }
"#;
    let table = PriceTable::from_text(text, "inline.toml").unwrap_or_else(|e| panic!("{e}"));
    let usage = Usage {
        input: 1_000,
        audio_input: 600,
        output: 100,
        audio_output: 50,
        ..Usage::default()
    };
    // 400 × 2.5e-6 + 600 × 40e-6 + 50 × 10e-6 + 50 × 80e-6
    let standard = table.quote("voice", &usage, ServiceTier::Standard);
    assert_eq!(standard.map(|q| q.total()), Ok(usd("0.0295")));
    // The batch variant halves the audio input only: 600 × 20e-6 instead of 600 × 40e-6.
    let batch = table.quote("voice", &usage, ServiceTier::Batch);
    assert_eq!(batch.map(|q| q.total()), Ok(usd("0.0175")));
    // Gemini 2.5 Flash prices audio input at $1.00 per million against $0.30 for text.
    let embedded = PriceTable::default();
    let flash = embedded.quote(
        "gemini-2.5-flash",
        &Usage {
            input: 1_000_000,
            audio_input: 1_000_000,
            ..Usage::default()
        },
        ServiceTier::Standard,
    );
    assert_eq!(flash.map(|q| q.total()), Ok(usd("1")));
}

#[test]
fn image_input_prices_in_both_formats() {
    // gpt-image-2's prices, as LiteLLM spells them and in the native format.
    let litellm = r#"{
        "gpt-image-2": {
            "input_cost_per_token": 5e-06,
            "input_cost_per_image_token": 8e-06,
            "cache_read_input_token_cost": 1.25e-06,
            "cache_read_input_image_token_cost": 2e-06,
            "output_cost_per_token": 1e-05,
            "output_cost_per_image_token": 3e-05,
            "mode": "image_generation"
        }
    }"#;
    let native = r#"
version = "test-images"

[models."gpt-image-2"]
input = "5"
image_input = "8"
cache_read = "1.25"
cache_read_image = "2"
output = "10"
image_output = "30"
"#;
    // An edit: 1 000 prompt tokens (300 text, 700 image, 200 of the image ones cached), 1 056
    // image tokens out.
    let usage = Usage {
        input: 1_000,
        cache_read: 200,
        cache_read_image: 200,
        image_input: 500,
        output: 1_056,
        image_output: 1_056,
        ..Usage::default()
    };
    for (text, origin) in [(litellm, "prices.json"), (native, "prices.toml")] {
        let table = PriceTable::from_text(text, origin).unwrap_or_else(|e| panic!("{e}"));
        let quote = table
            .quote("gpt-image-2", &usage, ServiceTier::Standard)
            .unwrap_or_else(|e| panic!("{origin}: {e}"));
        // 300 × 5e-6 + 500 × 8e-6 + 200 × 2e-6 + 1 056 × 30e-6.
        assert_eq!(quote.total(), usd("0.03758"), "{origin}");
        assert_eq!(quote.priced.breakdown.image_input, usd("0.004"), "{origin}");
    }
}

#[test]
fn file_search_prices_in_both_formats() {
    let litellm = r#"{"m": {"input_cost_per_token": 4e-07, "output_cost_per_token": 1.6e-06,
                            "file_search_cost_per_1k_calls": 2.5}}"#;
    let native = "version = \"1\"\n[models.m]\ninput = \"0.4\"\noutput = \"1.6\"\n\
                  file_search_calls = \"0.0025\"\n";
    let usage = Usage {
        input: 12_000,
        output: 300,
        file_search_calls: 2,
        ..Usage::default()
    };
    for (text, origin) in [(litellm, "prices.json"), (native, "prices.toml")] {
        let table = PriceTable::from_text(text, origin).unwrap_or_else(|e| panic!("{e}"));
        let quote = table
            .quote("m", &usage, ServiceTier::Standard)
            .unwrap_or_else(|e| panic!("{origin}: {e}"));
        assert_eq!(quote.priced.breakdown.file_search, usd("0.005"), "{origin}");
    }
    // The embedded table prices OpenAI's file search tool.
    let embedded = PriceTable::default()
        .quote("gpt-4.1-mini", &usage, ServiceTier::Standard)
        .map(|q| q.priced.breakdown.file_search);
    assert_eq!(embedded, Ok(usd("0.005")));
}

#[test]
fn hosted_image_generation_and_code_interpreter_prices_read_and_write_back() {
    let litellm = r#"{"m": {"input_cost_per_token": 4e-07, "output_cost_per_token": 1.6e-06,
                            "code_interpreter_cost_per_session": 0.03}}"#;
    let native = "version = \"1\"\n[models.m]\ninput = \"0.4\"\noutput = \"1.6\"\n\
                  code_interpreter_sessions = \"0.03\"\nimage_generation_calls = \"0.042\"\n";
    let sessions = Usage {
        input: 2_000,
        output: 500,
        code_interpreter_sessions: 2,
        ..Usage::default()
    };
    let images = Usage {
        image_generation_calls: 3,
        ..sessions
    };
    for (text, origin) in [(litellm, "prices.json"), (native, "prices.toml")] {
        let table = PriceTable::from_text(text, origin).unwrap_or_else(|e| panic!("{e}"));
        let quote = table
            .quote("m", &sessions, ServiceTier::Standard)
            .unwrap_or_else(|e| panic!("{origin}: {e}"));
        assert_eq!(
            quote.priced.breakdown.code_interpreter,
            usd("0.06"),
            "{origin}"
        );
        // 2 000 × 0.4e-6 + 500 × 1.6e-6 + 2 × $0.03.
        assert_eq!(quote.total(), usd("0.0616"), "{origin}");
    }
    // LiteLLM's file has no price for the image generation tool: such a call is unpriced.
    let from_litellm =
        PriceTable::from_text(litellm, "prices.json").unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        from_litellm.quote("m", &images, ServiceTier::Standard),
        Err(QuoteError::Cost {
            source: CostError::MissingPrice {
                kind: TokenKind::ImageGenerationCalls,
                tokens: 3
            },
            ..
        })
    ));
    let native_table =
        PriceTable::from_text(native, "prices.toml").unwrap_or_else(|e| panic!("{e}"));
    let quote = native_table
        .quote("m", &images, ServiceTier::Standard)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(quote.priced.breakdown.image_generation, usd("0.126"));
    // Written back in the native format, the prices stay per use.
    let written = cost_core::format::native::write(&native_table).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        written.contains("image_generation_calls = \"0.042\""),
        "{written}"
    );
    assert!(
        written.contains("code_interpreter_sessions = \"0.03\""),
        "{written}"
    );
    // The embedded table prices neither (what a use costs is not in the response): unpriced,
    // never charged at zero.
    for (usage, kind, uses) in [
        (sessions, TokenKind::CodeInterpreterSessions, 2),
        (
            Usage {
                code_interpreter_sessions: 0,
                ..images
            },
            TokenKind::ImageGenerationCalls,
            3,
        ),
    ] {
        assert!(matches!(
            PriceTable::default().quote("gpt-5", &usage, ServiceTier::Standard),
            Err(QuoteError::Cost {
                source: CostError::MissingPrice { kind: k, tokens },
                ..
            }) if k == kind && tokens == uses
        ));
    }
}

#[test]
fn data_residency_calls_are_priced_at_the_factor_a_table_gives_and_unpriced_without_one() {
    let usage = Usage {
        input: 10_000,
        output: 1_000,
        ..Usage::default()
    };
    let residency = CallTerms {
        service_tier: ServiceTier::Standard,
        data_residency: true,
        search_context_size: None,
    };
    let embedded = PriceTable::default();
    let total = |model: &str, terms: CallTerms| {
        embedded
            .quote(model, &usage, terms)
            .map(|q| (q.total(), q.priced.data_residency))
    };
    // Claude Sonnet 4.5 on Vertex AI: 10 000 × $3 + 1 000 × $15 per million at the global
    // endpoint, 10% more at a regional one; Claude Sonnet 4 has one price.
    let vertex = "claude-sonnet-4-5@20250929";
    assert_eq!(
        total(vertex, ServiceTier::Standard.into()),
        Ok((usd("0.045"), false))
    );
    assert_eq!(total(vertex, residency), Ok((usd("0.0495"), true)));
    assert_eq!(
        total("claude-sonnet-4@20250514", residency),
        Ok((usd("0.045"), true))
    );
    // A model whose price at such an endpoint the table does not give: unpriced.
    assert!(matches!(
        embedded.quote("gpt-4o", &usage, residency),
        Err(QuoteError::Cost {
            source: CostError::NoDataResidencyPrice,
            ..
        })
    ));
    // The native format's key, and its errors with their line.
    let table = |factor: &str| {
        PriceTable::from_text(
            &format!(
                "version = \"1\"\n[models.m]\ninput = \"2\"\noutput = \"8\"\ndata_residency = {factor}\n"
            ),
            "prices.toml",
        )
    };
    let own = table("\"1.25\"").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        own.quote("m", &usage, residency).map(|q| q.total()),
        Ok(usd("0.035"))
    );
    // Fast mode's factor, in the same format.
    let fast = PriceTable::from_text(
        "version = \"1\"\n[models.m]\ninput = \"2\"\noutput = \"8\"\nfast_mode = \"2\"\ndata_residency = \"1.25\"\n",
        "prices.toml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let fast_residency = CallTerms {
        service_tier: ServiceTier::FastMode,
        data_residency: true,
        search_context_size: None,
    };
    assert_eq!(
        fast.quote("m", &usage, fast_residency).map(|q| q.total()),
        Ok(usd("0.07"))
    );
    let bad_fast = PriceTable::from_text(
        "version = \"1\"\n[models.m]\ninput = \"2\"\noutput = \"8\"\nfast_mode = \"none\"\n",
        "prices.toml",
    )
    .err()
    .unwrap_or_else(|| panic!("a bad fast-mode factor loaded"));
    assert_eq!(bad_fast.line, Some(5));
    assert!(bad_fast.message.contains("fast_mode"), "{bad_fast}");
    for bad in ["\"0\"", "\"-1\"", "\"many\"", "1.1"] {
        let error = table(bad).err().unwrap_or_else(|| panic!("{bad} loaded"));
        assert_eq!(
            (error.line, error.kind),
            (Some(5), PriceFileErrorKind::Invalid),
            "{bad}"
        );
        // A float is refused as every float price is; the others name the key.
        assert!(
            bad == "1.1" || error.message.contains("data_residency"),
            "{error}"
        );
    }
}

#[test]
fn merged_over_a_table_with_factors_an_overlay_without_them_keeps_them() {
    let usage = Usage::new(10_000, 1_000);
    let residency = CallTerms {
        service_tier: ServiceTier::Standard,
        data_residency: true,
        search_context_size: None,
    };
    // LiteLLM's file has no data-residency factor; say it lists Claude Sonnet 4.5 at $4 / $20
    // under three names, and gpt-4o.
    let litellm = r#"{
        "claude-sonnet-4-5": {"input_cost_per_token": 4e-06, "output_cost_per_token": 2e-05},
        "claude-sonnet-4-5-20250929": {"input_cost_per_token": 4e-06, "output_cost_per_token": 2e-05},
        "vertex_ai/claude-sonnet-4-5@20250929": {"input_cost_per_token": 4e-06, "output_cost_per_token": 2e-05},
        "gpt-4o": {"input_cost_per_token": 2.5e-06, "output_cost_per_token": 1e-05}
    }"#;
    let file = PriceTable::from_text(litellm, "prices.json").unwrap_or_else(|e| panic!("{e}"));
    let merged = PriceTable::default()
        .merged(&file)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(merged.report().entries, merged.len());
    // 10 000 × $4.40 + 1 000 × $22 per million: the overlay's prices at the embedded factor.
    for name in [
        "claude-sonnet-4-5",
        "claude-sonnet-4-5-20250929",
        "vertex_ai/claude-sonnet-4-5@20250929",
    ] {
        let quote = merged.quote(name, &usage, residency);
        assert_eq!(quote.map(|q| q.total()), Ok(usd("0.066")), "{name}");
        assert_eq!(
            standard_total(&merged, name, &usage),
            Ok(usd("0.06")),
            "{name}"
        );
    }
    // The file alone has no factor, nor does gpt-4o in either: unpriced, not the list price.
    for (table, name) in [(&file, "claude-sonnet-4-5"), (&merged, "gpt-4o")] {
        assert!(matches!(
            table.quote(name, &usage, residency),
            Err(QuoteError::Cost {
                source: CostError::NoDataResidencyPrice,
                ..
            })
        ));
    }
    // An overlay's own factor wins.
    let own = PriceTable::from_text(
        "version = \"own\"\n[models.\"claude-sonnet-4-5\"]\ninput = \"4\"\noutput = \"20\"\ndata_residency = \"1\"\n",
        "own.toml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let merged = PriceTable::default()
        .merged(&own)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        merged
            .quote("claude-sonnet-4-5", &usage, residency)
            .map(|q| q.total()),
        Ok(usd("0.06"))
    );
    // The fast-mode factor is kept the same way: 10 000 × $24 + 1 000 × $120 per million at
    // the overlay's $4 / $20.
    let base = PriceTable::from_text(
        "version = \"base\"\n[models.\"claude-opus-4-6\"]\ninput = \"5\"\noutput = \"25\"\nfast_mode = \"6\"\n",
        "base.toml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let overlay = PriceTable::from_text(
        r#"{"claude-opus-4-6-20260205": {"input_cost_per_token": 4e-06, "output_cost_per_token": 2e-05}}"#,
        "prices.json",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let merged = base.merged(&overlay).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        merged
            .quote("claude-opus-4-6-20260205", &usage, ServiceTier::FastMode)
            .map(|q| q.total()),
        Ok(usd("0.36"))
    );
}

#[test]
fn litellm_multipliers_give_the_data_residency_and_fast_mode_factors() {
    let usage = Usage::new(10_000, 1_000);
    let residency = CallTerms {
        service_tier: ServiceTier::Standard,
        data_residency: true,
        search_context_size: None,
    };
    let litellm = r#"{
        "claude-opus-4-6": {"input_cost_per_token": 5e-06, "output_cost_per_token": 2.5e-05,
            "provider_specific_entry": {"us": 1.1, "fast": 6.0}},
        "claude-haiku-4-5": {"input_cost_per_token": 1e-06, "output_cost_per_token": 5e-06},
        "odd-model": {"input_cost_per_token": 1e-06, "output_cost_per_token": 5e-06,
            "provider_specific_entry": {"us": "lots"}}
    }"#;
    let table = PriceTable::from_text(litellm, "prices.json").unwrap_or_else(|e| panic!("{e}"));
    // 10 000 × $5.50 + 1 000 × $27.50 per million.
    assert_eq!(
        table
            .quote("claude-opus-4-6", &usage, residency)
            .map(|q| q.total()),
        Ok(usd("0.0825"))
    );
    assert!(matches!(
        table.quote("claude-haiku-4-5", &usage, residency),
        Err(QuoteError::Cost {
            source: CostError::NoDataResidencyPrice,
            ..
        })
    ));
    // Fast mode at 6×: 10 000 × $30 + 1 000 × $150 per million; with US-only inference too,
    // 1.1 times that.
    for (terms, total) in [
        (ServiceTier::FastMode.into(), "0.45"),
        (
            CallTerms {
                service_tier: ServiceTier::FastMode,
                data_residency: true,
                search_context_size: None,
            },
            "0.495",
        ),
    ] {
        assert_eq!(
            table
                .quote("claude-opus-4-6", &usage, terms)
                .map(|q| q.total()),
            Ok(usd(total))
        );
    }
    assert!(matches!(
        table.quote("claude-haiku-4-5", &usage, ServiceTier::FastMode),
        Err(QuoteError::Cost {
            source: CostError::NoFastModePrice,
            ..
        })
    ));
    let report = table.report();
    assert!(report.skipped_keys.is_empty(), "{:?}", report.skipped_keys);
    // Merged over another table, what this file left out stays on record.
    let merged = PriceTable::default()
        .merged(&table)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(merged.report().left_out, report.left_out);
    // A factor that is not one leaves its entry out (unpriced, never mispriced), with its line.
    assert!(table.get("odd-model").is_none());
    assert_eq!(report.left_out.len(), 1, "{:?}", report.left_out);
    assert!(
        report
            .left_out
            .get("odd-model")
            .is_some_and(|why| why.contains(":6:")),
        "{:?}",
        report.left_out
    );
}

#[test]
fn litellm_regional_factors_price_data_residency_only_where_they_agree() {
    let usage = Usage::new(10_000, 1_000);
    let residency = CallTerms {
        service_tier: ServiceTier::Standard,
        data_residency: true,
        search_context_size: None,
    };
    let litellm = r#"{
        "fallback_generalizations": {"rules": [{"name": "gpt", "pattern": "^gpt-"}]},
        "gpt-4o": {"input_cost_per_token": 2.5e-06, "output_cost_per_token": 1e-05,
            "regional_processing_uplift_multiplier_eu": 1.1,
            "regional_processing_uplift_multiplier_us": 1.1},
        "regional-endpoint": {"input_cost_per_token": 2.5e-06, "output_cost_per_token": 1e-05,
            "regional_endpoint_uplift_multiplier": "1.1",
            "provider_specific_entry": {"us": 1.1}},
        "eu-dearer": {"input_cost_per_token": 2.5e-06, "output_cost_per_token": 1e-05,
            "regional_processing_uplift_multiplier_eu": 1.2,
            "regional_processing_uplift_multiplier_us": 1.1},
        "us-disagrees": {"input_cost_per_token": 2.5e-06, "output_cost_per_token": 1e-05,
            "regional_processing_uplift_multiplier_us": 1.2,
            "provider_specific_entry": {"us": 1.1}},
        "odd-uplift": {"input_cost_per_token": 2.5e-06, "output_cost_per_token": 1e-05,
            "regional_processing_uplift_multiplier_eu": "lots"},
        "other-multiplier": {"input_cost_per_token": 2.5e-06, "output_cost_per_token": 1e-05,
            "night_discount_multiplier": 0.5}
    }"#;
    let table = PriceTable::from_text(litellm, "prices.json").unwrap_or_else(|e| panic!("{e}"));
    // 10 000 × $2.50 + 1 000 × $10 per million, and 1.1 times that on a regional endpoint.
    for model in ["gpt-4o", "regional-endpoint", "eu-dearer", "us-disagrees"] {
        assert_eq!(
            standard_total(&table, model, &usage),
            Ok(usd("0.035")),
            "{model}"
        );
    }
    for model in ["gpt-4o", "regional-endpoint"] {
        assert_eq!(
            table.quote(model, &usage, residency).map(|q| q.total()),
            Ok(usd("0.0385")),
            "{model}"
        );
    }
    // Which region served the call is not in its usage: factors that differ give none.
    for model in ["eu-dearer", "us-disagrees"] {
        assert!(
            matches!(
                table.quote(model, &usage, residency),
                Err(QuoteError::Cost {
                    source: CostError::NoDataResidencyPrice,
                    ..
                })
            ),
            "{model}"
        );
    }
    let report = table.report();
    let skipped = |key: &str| report.skipped_keys.get(key).copied();
    assert_eq!(skipped("regional_processing_uplift_multiplier_eu"), Some(1));
    assert_eq!(skipped("regional_processing_uplift_multiplier_us"), Some(2));
    assert_eq!(skipped("provider_specific_entry.us"), Some(1));
    assert_eq!(skipped("night_discount_multiplier"), Some(1));
    assert_eq!(report.skipped_keys.len(), 4, "{:?}", report.skipped_keys);
    // LiteLLM's matching rules are not a model, and a factor that is not one leaves its
    // entry out (unpriced, never mispriced).
    assert!(
        report.skipped_entries.is_empty(),
        "{:?}",
        report.skipped_entries
    );
    assert!(table.get("odd-uplift").is_none());
    assert_eq!(
        report.left_out.keys().collect::<Vec<_>>(),
        ["odd-uplift"],
        "{:?}",
        report.left_out
    );
}

#[test]
fn litellm_fast_on_an_openai_entry_is_priority_not_fast_mode() {
    // OpenAI calls Priority processing "fast" (2×, `*_priority` prices); its fast mode,
    // Ultrafast, costs several times more. Anthropic's `fast` is fast mode's factor.
    let litellm = r#"{
        "gpt-6-astra": {"litellm_provider": "openai",
            "input_cost_per_token": 1e-05, "output_cost_per_token": 5e-05,
            "input_cost_per_token_priority": 2e-05, "output_cost_per_token_priority": 1e-04,
            "provider_specific_entry": {"fast": 2.0}},
        "claude-opus-4-6": {"litellm_provider": "anthropic",
            "input_cost_per_token": 5e-06, "output_cost_per_token": 2.5e-05,
            "provider_specific_entry": {"fast": 6.0}}
    }"#;
    let table = PriceTable::from_text(litellm, "prices.json").unwrap_or_else(|e| panic!("{e}"));
    let usage = Usage::new(10_000, 1_000);
    let total =
        |model: &str, tier: ServiceTier| table.quote(model, &usage, tier).map(|q| q.total());
    // 10 000 × $20 + 1 000 × $100 per million.
    assert_eq!(total("gpt-6-astra", ServiceTier::Priority), Ok(usd("0.3")));
    assert!(matches!(
        table.quote("gpt-6-astra", &usage, ServiceTier::FastMode),
        Err(QuoteError::Cost {
            source: CostError::NoFastModePrice,
            ..
        })
    ));
    // 6 × (10 000 × $5 + 1 000 × $25) per million.
    assert_eq!(
        total("claude-opus-4-6", ServiceTier::FastMode),
        Ok(usd("0.45"))
    );
    let report = table.report();
    assert_eq!(
        report.skipped_keys.get("provider_specific_entry.fast"),
        Some(&1)
    );
}

#[test]
fn litellm_cache_hit_prices_are_cache_read_prices() {
    // DeepSeek's entries give the cache read price as `input_cost_per_token_cache_hit`; read
    // as the input price instead, 100 000 cache hits would cost ten times what they do.
    let litellm = r#"{
        "deepseek-chat": {"input_cost_per_token": 2.8e-07, "output_cost_per_token": 4.2e-07,
            "input_cost_per_token_cache_hit": 2.8e-08},
        "both-given": {"input_cost_per_token": 2.8e-07, "output_cost_per_token": 4.2e-07,
            "input_cost_per_token_cache_hit": 5e-08, "cache_read_input_token_cost": 1e-08},
        "cache-hit-batches": {"input_cost_per_token": 2.8e-07, "output_cost_per_token": 4.2e-07,
            "input_cost_per_token_batches": 1.4e-07, "output_cost_per_token_batches": 2.1e-07,
            "input_cost_per_token_cache_hit_batches": 1.4e-08}
    }"#;
    let table = PriceTable::from_text(litellm, "prices.json").unwrap_or_else(|e| panic!("{e}"));
    // 110 000 prompt tokens, 100 000 of them read from the cache.
    let usage = prompt(110_000, 100_000, 1_000);
    let total = |model: &str, tier: ServiceTier| {
        table
            .quote(model, &usage, tier)
            .map(|q| q.total())
            .unwrap_or_else(|e| panic!("{model}: {e}"))
    };
    // 10 000 × $0.28 + 100 000 × $0.028 + 1 000 × $0.42 per million.
    assert_eq!(
        total("deepseek-chat", ServiceTier::Standard),
        usd("0.00602")
    );
    // `cache_read_input_token_cost` wins: 100 000 × $0.01 per million.
    assert_eq!(total("both-given", ServiceTier::Standard), usd("0.00422"));
    // Half of each price in a batch: 10 000 × $0.14 + 100 000 × $0.014 + 1 000 × $0.21.
    assert_eq!(
        total("cache-hit-batches", ServiceTier::Batch),
        usd("0.00301")
    );
    assert!(
        table.report().skipped_keys.is_empty(),
        "{:?}",
        table.report().skipped_keys
    );
}

#[test]
fn fast_mode_prices_of_their_own_in_both_formats() {
    // GPT-6 Astra's Ultrafast prices as LiteLLM gives them (`*_ultrafast`, context tier
    // included), and in the native format.
    let litellm = r#"{"gpt-6-astra": {
        "input_cost_per_token": 1e-05, "output_cost_per_token": 5e-05,
        "cache_read_input_token_cost": 1e-06,
        "input_cost_per_token_above_272k_tokens": 2e-05,
        "output_cost_per_token_above_272k_tokens": 7.5e-05,
        "input_cost_per_token_ultrafast": 6e-05, "output_cost_per_token_ultrafast": 3e-04,
        "cache_read_input_token_cost_ultrafast": 6e-06,
        "input_cost_per_token_above_272k_tokens_ultrafast": 1.2e-04,
        "output_cost_per_token_above_272k_tokens_ultrafast": 4.5e-04,
        "provider_specific_entry": {"fast": 2.0}}}"#;
    let native = r#"
version = "ultrafast"

[models."gpt-6-astra"]
input = "10"
output = "50"
cache_read = "1"
fast_mode_prices = { input = "60", output = "300", cache_read = "6", tiers = [{ above = 272000, input = "120", output = "450" }] }

[[models."gpt-6-astra".tiers]]
above = 272000
input = "20"
output = "75"
"#;
    for (text, origin) in [(litellm, "prices.json"), (native, "prices.toml")] {
        let table = PriceTable::from_text(text, origin).unwrap_or_else(|e| panic!("{e}"));
        let quote = |usage: &Usage| {
            table
                .quote("gpt-6-astra", usage, ServiceTier::FastMode)
                .map(|q| (q.total(), q.priced.service_tier))
        };
        // Its own prices, not the multiplier: 8 000 × 60e-6 + 2 000 × 6e-6 + 1 000 × 300e-6;
        // above 272 000 input tokens, 120e-6 and 450e-6.
        let usage = Usage {
            input: 10_000,
            cache_read: 2_000,
            output: 1_000,
            ..Usage::default()
        };
        assert_eq!(
            quote(&usage),
            Ok((usd("0.792"), ServiceTier::FastMode)),
            "{origin}"
        );
        assert_eq!(
            quote(&Usage::new(300_000, 1_000)),
            Ok((usd("36.45"), ServiceTier::FastMode)),
            "{origin}"
        );
        let entry = table
            .get("gpt-6-astra")
            .unwrap_or_else(|| panic!("{origin}"));
        assert!(
            entry.price.schedule(ServiceTier::FastMode).is_some(),
            "{origin}"
        );
        assert_eq!(entry.price.fast_mode(), None, "{origin}");
    }
    // A factor and prices of its own in one entry of the native format: refused, with the line.
    let both = PriceTable::from_text(
        "version = \"1\"\n[models.m]\ninput = \"1\"\noutput = \"2\"\nfast_mode = \"2\"\nfast_mode_prices = { input = \"3\" }\n",
        "both.toml",
    )
    .err()
    .unwrap_or_else(|| panic!("both loaded"));
    assert_eq!(both.line, Some(5));
    assert!(both.message.contains("not both"), "{both}");
}

#[test]
fn a_price_change_prices_calls_from_its_day_on() {
    let text = r#"
version = "t"
as_of = "2026-11-27"

[models.intro]
input = "0.75"
output = "3.75"
batch = { input = "0.375", output = "1.875" }
data_residency = "1.1"

[[models.intro.changes]]
on = "2027-01-01"
input = "1.50"
output = "7.50"
batch = { input = "0.75", output = "3.75" }
data_residency = "1.1"

[[models.intro.changes]]
on = "2027-07-01"
input = "1.00"
output = "5.00"

[models.plain]
input = "1"
output = "2"
"#;
    let table = PriceTable::from_text(text, "prices.toml").unwrap_or_else(|e| panic!("{e}"));
    let usage = Usage::new(100_000, 10_000);
    let at = |terms: CallTerms, when: i64| {
        table
            .quote_at("intro", &usage, terms, when)
            .map(|q| (q.total(), q.change.map(|c| c.on().to_owned())))
    };
    let standard: CallTerms = ServiceTier::Standard.into();
    // The last second of 2026 at the introductory price (100 000 × $0.75 + 10 000 × $3.75
    // per million), the first second of 2027 at the next (× $1.50, × $7.50), and from July on
    // the one after.
    assert_eq!(
        at(standard, day_start("2027-01-01") - 1),
        Ok((usd("0.1125"), None))
    );
    assert_eq!(
        at(standard, day_start("2027-01-01")),
        Ok((usd("0.225"), Some("2027-01-01".to_owned())))
    );
    assert_eq!(
        at(standard, day_start("2030-01-01")),
        Ok((usd("0.15"), Some("2027-07-01".to_owned())))
    );
    // A change gives its prices in full: its batch prices and factors are its own, and one
    // without a data-residency factor leaves such a call unpriced.
    assert_eq!(
        at(ServiceTier::Batch.into(), day_start("2027-02-01")).map(|(total, _)| total),
        Ok(usd("0.1125"))
    );
    let residency = CallTerms {
        service_tier: ServiceTier::Standard,
        data_residency: true,
        search_context_size: None,
    };
    assert_eq!(
        at(residency, day_start("2027-02-01")).map(|(total, _)| total),
        Ok(usd("0.2475"))
    );
    assert!(matches!(
        at(residency, day_start("2027-08-01")),
        Err(QuoteError::Cost {
            source: CostError::NoDataResidencyPrice,
            ..
        })
    ));
    // A call made now is priced at today's prices; an entry without changes at its own.
    let now = table
        .quote("intro", &usage, standard)
        .unwrap_or_else(|e| panic!("{e}"));
    let expected = table
        .quote_at("intro", &usage, standard, {
            use cost_core::budget::Clock;
            cost_core::budget::SystemClock.unix_seconds()
        })
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (now.total(), now.change.map(|c| c.on())),
        (expected.total(), expected.change.map(|c| c.on()))
    );
    // With a change in the past and one in the future, a call made now is priced at the
    // past one's prices (1 000 × $2 + 100 × $4 per million), not the entry's first or the
    // future's.
    let changing = PriceTable::from_text(
        "version = \"c\"\n[models.m]\ninput = \"1\"\noutput = \"2\"\n\
         [[models.m.changes]]\non = \"2000-01-01\"\ninput = \"2\"\noutput = \"4\"\n\
         [[models.m.changes]]\non = \"2999-01-01\"\ninput = \"3\"\noutput = \"6\"\n",
        "c.toml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        changing
            .quote("m", &Usage::new(1_000, 100), standard)
            .map(|q| (q.total(), q.change.map(|c| c.on().to_owned()))),
        Ok((usd("0.0024"), Some("2000-01-01".to_owned())))
    );
    assert_eq!(
        table
            .quote_at("plain", &usage, standard, 0)
            .map(|q| (q.total(), q.change.is_none())),
        Ok((usd("0.12"), true))
    );
    round_trips(&table);
    // Changes out of date order, or on no calendar day, are errors that say so.
    let unordered = text.replace("2027-07-01", "2026-12-01");
    let Err(err) = PriceTable::from_text(&unordered, "prices.toml") else {
        panic!("changes out of order loaded")
    };
    assert!(
        err.to_string().contains(
            "model `intro`: the price change on 2026-12-01 is not after the one before it"
        ),
        "{err}"
    );
    let undated = text.replace("2027-07-01", "2027-13-01");
    let Err(err) = PriceTable::from_text(&undated, "prices.toml") else {
        panic!("a change on no calendar day loaded")
    };
    assert_eq!(
        (err.line, err.kind),
        (Some(19), PriceFileErrorKind::Invalid),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("`2027-13-01` is not a calendar date"),
        "{err}"
    );
    // Merged over it, a file's entry replaces the entry and its changes.
    let overlay = PriceTable::from_text(
        "version = \"o\"\n[models.intro]\ninput = \"2\"\noutput = \"4\"\n",
        "o.toml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let merged = table.merged(&overlay).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        merged
            .quote_at("intro", &usage, standard, day_start("2028-01-01"))
            .map(|q| (q.total(), q.change.is_none())),
        Ok((usd("0.24"), true))
    );
}

#[test]
fn native_format_errors_name_file_line_and_column() {
    let cases = [
        // (text, line, kind, message fragment)
        (
            "version = \"1\"\n[models.m]\ninput = 2.5\n",
            3,
            PriceFileErrorKind::Invalid,
            "quoted strings",
        ),
        (
            "version = \"1\"\n[models.m]\ninput = \"2,5\"\n",
            3,
            PriceFileErrorKind::Invalid,
            "not a decimal",
        ),
        (
            "version = \"1\"\n[models.m]\ninput = \"-1\"\n",
            3,
            PriceFileErrorKind::Invalid,
            "negative",
        ),
        (
            "version = \"1\"\n[models.m]\ninput = \"1\"\noutptu = \"2\"\n",
            4,
            PriceFileErrorKind::Invalid,
            "unknown field",
        ),
        (
            "version = \"1\"\n[models.m]\noutput = \"1\"\n",
            2,
            PriceFileErrorKind::Invalid,
            "no input price",
        ),
        (
            "version = \"1\"\n[models.m\ninput = \"1\"\n",
            2,
            PriceFileErrorKind::Syntax,
            "",
        ),
        (
            "version = \"1\"\nas_of = \"yesterday\"\n",
            2,
            PriceFileErrorKind::Invalid,
            "YYYY-MM-DD",
        ),
        (
            "version = \"1\"\n[models.m]\ninput = \"1\"\nas_of = \"2025-02-29\"\n",
            4,
            PriceFileErrorKind::Invalid,
            "not a calendar date",
        ),
        (
            "version = \"1\"\nunit = \"eur\"\n",
            2,
            PriceFileErrorKind::Invalid,
            "unknown unit",
        ),
    ];
    for (text, line, kind, fragment) in cases {
        let err = PriceTable::from_text(text, "prices.toml")
            .err()
            .unwrap_or_else(|| panic!("{text}"));
        assert_eq!((err.line, err.kind), (Some(line), kind), "{text}: {err}");
        assert!(err.column.is_some());
        let shown = err.to_string();
        assert!(
            shown.starts_with(&format!("prices.toml:{line}:")),
            "{shown}"
        );
        assert!(shown.contains(fragment), "{shown}");
    }
    let err = PriceTable::from_text("version = \"1\"\n[aliases]\na = \"missing\"\n", "p.toml")
        .err()
        .unwrap_or_else(|| panic!("loaded"));
    assert!(
        err.to_string()
            .contains("`missing`, which is not in the table"),
        "{err}"
    );
}

#[test]
fn litellm_errors_name_entry_key_line_and_column() {
    // A bad value leaves its entry out (unpriced, never mispriced) and is reported with its
    // position; the other entries load.
    let text = "{\n  \"m\": {\n    \"input_cost_per_token\": \"cheap\"\n  },\n  \"ok\": {\"input_cost_per_token\": 1e-6, \"output_cost_per_token\": 1e-24}\n}\n";
    let table = PriceTable::from_text(text, "prices.json").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(table.len(), 1);
    assert!(table.resolve("m").is_err());
    let left_out = &table.report().left_out;
    assert_eq!(left_out.len(), 1);
    assert!(
        left_out["m"].starts_with("prices.json:3:29: entry `m`, key `input_cost_per_token`"),
        "{left_out:?}"
    );
    for bad in ["-1e-6", "1e-25", "true", "{}"] {
        let text = format!("{{\"m\": {{\"input_cost_per_token\": {bad}}}}}");
        let table = PriceTable::from_text(&text, "p.json").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (table.len(), table.report().left_out.len()),
            (0, 1),
            "{bad}"
        );
    }
    let err = PriceTable::from_text("{\n  \"m\": {,}\n}", "prices.json")
        .err()
        .unwrap_or_else(|| panic!("loaded"));
    assert_eq!((err.line, err.kind), (Some(2), PriceFileErrorKind::Syntax));
    assert!(err.to_string().starts_with("prices.json:2:"), "{err}");
    let err = PriceTable::from_path("/nonexistent/prices.json")
        .err()
        .unwrap_or_else(|| panic!("loaded"));
    assert_eq!(err.kind, PriceFileErrorKind::Io);
    assert!(
        err.to_string().starts_with("/nonexistent/prices.json: "),
        "{err}"
    );
}

#[test]
fn litellm_a_model_given_twice_loads_only_when_both_price_alike() {
    // The file has given models twice (LiteLLM keeps the last silently). Alike, the model
    // loads; with different prices, which is meant is unknown: the model is left out
    // (unpriced, never mispriced), reported with both lines.
    let text = r#"{
  "twice-alike": {"input_cost_per_token": 1e-6, "output_cost_per_token": "2e-6"},
  "twice-apart": {"input_cost_per_token": 2e-7, "output_cost_per_token": 0},
  "once": {"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-6},
  "twice-alike": {"output_cost_per_token": 0.000002, "input_cost_per_token": "0.000001", "source": "b"},
  "twice-apart": {"input_cost_per_token": 1.5e-7, "output_cost_per_token": 0},
  "key-twice": {"input_cost_per_token": 1e-6, "input_cost_per_token": 2e-6},
  "key-twice-alike": {"input_cost_per_token": 1e-6, "input_cost_per_token": 1e-6, "output_cost_per_token": 0},
  "alias-twice": {"alias_of": "once"},
  "alias-twice": {"alias_of": "once"},
  "range-key-twice": {"tiered_pricing": [{"range": [0, 10], "input_cost_per_token": 1e-6, "input_cost_per_token": 2e-6}]},
  "factor-twice": {"input_cost_per_token": 1e-6, "provider_specific_entry": {"us": 1.1, "us": 1.2}}
}"#;
    let table = loaded(text, "prices.json");
    let total = |name: &str| {
        table
            .quote(
                name,
                &Usage::new(1_000_000, 1_000_000),
                ServiceTier::Standard,
            )
            .map(|q| q.total())
    };
    assert_eq!(total("twice-alike"), Ok(usd("3")));
    assert_eq!(total("key-twice-alike"), Ok(usd("1")));
    assert_eq!(total("alias-twice"), Ok(usd("2")));
    for left_out in [
        "twice-apart",
        "key-twice",
        "range-key-twice",
        "factor-twice",
    ] {
        assert!(table.resolve(left_out).is_err(), "{left_out}");
    }
    let left_out = &table.report().left_out;
    assert_eq!(left_out.len(), 4, "{left_out:?}");
    for (entry, said) in [
        (
            "prices.json:6:18: entry `twice-apart`",
            " is given 2 times (lines 3, 6) with different prices: left out",
        ),
        (
            "prices.json:7:71: entry `key-twice`",
            ": key `input_cost_per_token` is given twice with different values",
        ),
        (
            "prices.json:11:41: entry `range-key-twice`",
            ", key `tiered_pricing`: a range's `input_cost_per_token` is given twice",
        ),
        (
            "prices.json:12:77: entry `factor-twice`",
            ", key `provider_specific_entry`: `us` is given twice with different values",
        ),
    ] {
        assert!(
            left_out
                .values()
                .any(|message| message.starts_with(&format!("{entry}{said}"))),
            "{entry}: {left_out:?}"
        );
    }
}

#[test]
fn a_name_whose_entry_was_left_out_is_unpriced_not_priced_by_another_rule() {
    // The file prices the dated snapshot, the Vertex name and the dotted name apart from the
    // names the rules would reach past them; their entries are left out, so they are unpriced.
    let text = r#"{
  "snap": {"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-6},
  "snap-2024-05-13": {"input_cost_per_token": "dear", "output_cost_per_token": 1e-6},
  "vertex_ai/foo": {"input_cost_per_token": 2e-6, "output_cost_per_token": 0},
  "foo": {"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-6},
  "vertex_ai/foo": {"input_cost_per_token": 3e-6, "output_cost_per_token": 0},
  "Model-3-5": {"input_cost_per_token": -1},
  "model-3-5-mini": {"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-6}
}"#;
    let table = loaded(text, "prices.json");
    let usage = Usage::new(1_000_000, 0);
    for (name, left_out) in [
        ("snap-2024-05-13", "snap-2024-05-13"),
        ("openrouter/snap-2024-05-13", "snap-2024-05-13"),
        ("SNAP-2024-05-13", "snap-2024-05-13"),
        ("vertex_ai/foo", "vertex_ai/foo"),
        ("model-3-5", "Model-3-5"),
        ("model-3.5", "Model-3-5"),
        ("anthropic/model-3.5-20250101", "Model-3-5"),
    ] {
        match table.quote(name, &usage, ServiceTier::Standard) {
            Err(QuoteError::Unpriced(unpriced)) => {
                let why = unpriced.left_out.clone().unwrap_or_default();
                assert!(
                    why.starts_with("prices.json:") && why.contains(&format!("entry `{left_out}`")),
                    "{name}: {why}"
                );
                assert!(
                    unpriced.to_string().starts_with(&format!(
                        "model `{name}` has no price: its entry was left out of the table (prices.json:"
                    )),
                    "{unpriced}"
                );
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    // The names the rules would have reached keep their own prices, and the rules still work
    // where no entry was left out.
    for (name, total) in [
        ("snap", "1"),
        ("snap-2099-01-01", "1"),
        ("foo", "1"),
        ("google/foo", "1"),
        ("model-3.5-mini", "1"),
    ] {
        assert_eq!(
            standard_total(&table, name, &usage),
            Ok(usd(total)),
            "{name}"
        );
    }
    assert_eq!(
        table.report().left_out.keys().collect::<Vec<_>>(),
        ["Model-3-5", "snap-2024-05-13", "vertex_ai/foo"]
    );
    // Merged over a table that prices the name, that price stands; over one that does not,
    // the name stays unpriced, and the reason stays on record.
    let below = loaded(SNAPSHOT_PRICED_BELOW, "below.toml");
    let merged = below.merged(&table).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        standard_total(&merged, "snap-2024-05-13", &usage),
        Ok(usd("5"))
    );
    assert!(why_left_out(&merged, "vertex_ai/foo").is_some());
    assert_eq!(merged.report().left_out, table.report().left_out);
    // The other way round, the overlay's entry prices the name the table below left out.
    let over = table.merged(&below).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        standard_total(&over, "snap-2024-05-13", &usage),
        Ok(usd("5"))
    );
    // An unknown name is still unknown, with the names near it.
    let unknown = table
        .resolve("snapp")
        .err()
        .unwrap_or_else(|| panic!("found"));
    assert_eq!(unknown.left_out, None);
    assert_eq!(
        unknown.to_string(),
        "unknown model `snapp`: no price in the table (nearest known: snap)"
    );
}

#[test]
fn a_name_the_file_prices_other_than_per_token_is_unpriced_not_priced_by_another_rule() {
    // The file prices the Vertex name per image and the dated one per character, apart from
    // the per-token names the rules would reach past them.
    let text = r#"{
  "imagen": {"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-6},
  "vertex_ai/imagen": {"output_cost_per_image": 0.04},
  "speech": {"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-6},
  "speech-2026-01-01": {"input_cost_per_character": 1.5e-5, "mode": "audio_speech"},
  "odd": "not an object"
}"#;
    let table = loaded(text, "prices.json");
    assert!(table.report().left_out.is_empty(), "{:?}", table.report());
    assert_eq!(
        table.report().skipped_entries.keys().collect::<Vec<_>>(),
        ["odd", "speech-2026-01-01", "vertex_ai/imagen"]
    );
    let usage = Usage::new(1_000_000, 0);
    for (name, why) in [
        (
            "vertex_ai/imagen",
            "prices.json: entry `vertex_ai/imagen`: no per-token input price (priced by `output_cost_per_image`)",
        ),
        (
            "openrouter/vertex_ai/imagen",
            "prices.json: entry `vertex_ai/imagen`: no per-token input price (priced by `output_cost_per_image`)",
        ),
        (
            "Speech-2026-01-01",
            "prices.json: entry `speech-2026-01-01`: no per-token input price (priced by `input_cost_per_character`)",
        ),
        ("odd", "prices.json: entry `odd`: not an object"),
    ] {
        match table.quote(name, &usage, ServiceTier::Standard) {
            Err(QuoteError::Unpriced(unpriced)) => {
                assert_eq!(unpriced.left_out.as_deref(), Some(why), "{name}");
                assert_eq!(
                    unpriced.to_string(),
                    format!(
                        "model `{name}` has no price: its entry was left out of the table ({why})"
                    )
                );
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    // The per-token names keep their prices, and the rules still reach them from other names.
    for name in ["imagen", "google/imagen", "speech", "speech-2026-02-01"] {
        assert_eq!(standard_total(&table, name, &usage), Ok(usd("1")), "{name}");
    }
    // A table over it with a per-token entry of the name prices it; under it, the name stays
    // unpriced and on record.
    let priced_over = loaded(
        "version = \"over\"\n[models.\"vertex_ai/imagen\"]\ninput = \"2\"\noutput = \"2\"\n",
        "over.toml",
    );
    let over = table.merged(&priced_over).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        standard_total(&over, "vertex_ai/imagen", &usage),
        Ok(usd("2"))
    );
    let under = priced_over.merged(&table).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        standard_total(&under, "vertex_ai/imagen", &usage),
        Ok(usd("2"))
    );
    let plain = loaded(SNAPSHOT_PRICED_BELOW, "below.toml").merged(&table);
    let plain = plain.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        plain.report().skipped_entries,
        table.report().skipped_entries
    );
    assert!(why_left_out(&plain, "speech-2026-01-01").is_some());
    // A snapshot in the native format keeps them, apart from the entries left out.
    let written = cost_core::format::native::write(&table).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        written.contains("[skipped]") && !written.contains("[left_out]"),
        "{written}"
    );
    let back = loaded(&written, "snapshot.toml");
    assert_eq!(
        back.report().skipped_entries,
        table.report().skipped_entries
    );
    assert!(back.report().left_out.is_empty());
    assert!(why_left_out(&back, "vertex_ai/imagen").is_some());
    let both = "version = \"x\"\n[models.m]\ninput = \"1\"\n[skipped]\nm = \"why\"\n";
    let err = PriceTable::from_text(both, "both.toml")
        .err()
        .unwrap_or_else(|| panic!("loaded"));
    assert!(
        err.to_string()
            .starts_with("both.toml:5:1: `m` is both priced and skipped"),
        "{err}"
    );
}

#[test]
fn names_left_out_are_written_and_read_back_in_the_native_format() {
    let litellm = r#"{
  "snap": {"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-6},
  "snap-2024-05-13": {"input_cost_per_token": "dear"}
}"#;
    let table = loaded(litellm, "prices.json");
    let written = cost_core::format::native::write(&table).unwrap_or_else(|e| panic!("{e}"));
    assert!(written.contains("[left_out]"), "{written}");
    let back = loaded(&written, "snapshot.toml");
    assert_eq!(back.report().left_out, table.report().left_out);
    let usage = Usage::new(1_000, 0);
    assert!(why_left_out(&back, "snap-2024-05-13").is_some());
    assert_eq!(
        standard_total(&back, "snap-2099-01-01", &usage),
        Ok(usd("0.001"))
    );
    // Merged under a table that prices the name, the name is priced: nothing left out is
    // written.
    let below = loaded(SNAPSHOT_PRICED_BELOW, "below.toml");
    let merged = below.merged(&table).unwrap_or_else(|e| panic!("{e}"));
    let written = cost_core::format::native::write(&merged).unwrap_or_else(|e| panic!("{e}"));
    assert!(!written.contains("left_out"), "{written}");
    // A name both priced and left out is an error naming it.
    let both = "version = \"x\"\n[models.m]\ninput = \"1\"\n[left_out]\nm = \"why\"\n";
    let err = PriceTable::from_text(both, "both.toml")
        .err()
        .unwrap_or_else(|| panic!("loaded"));
    assert_eq!(err.kind, PriceFileErrorKind::Invalid);
    assert!(
        err.to_string()
            .starts_with("both.toml:5:1: `m` is both priced and left out"),
        "{err}"
    );
}

fn flat(input: &str, output: &str) -> ModelPrice {
    ModelPrice::flat(ComponentPrices {
        input: TokenPrice::per_million(input).ok(),
        output: TokenPrice::per_million(output).ok(),
        ..ComponentPrices::default()
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn merge_default_then_file_then_programmatic() {
    let default = PriceTable::default();
    let file = PriceTable::from_text(
        "version = \"file-1\"\n[models.\"gpt-4o\"]\ninput = \"2\"\noutput = \"8\"\n[models.\"my-model\"]\ninput = \"1\"\noutput = \"1\"\n",
        "file.toml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let merged = default.merged(&file).unwrap_or_else(|e| panic!("{e}"));
    let merged = merged
        .with_model(ModelEntry::new("my-model", flat("3", "3")))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(merged.len(), default.len() + 1);
    assert!(merged.info().version.ends_with("+file-1"));
    let total = |name: &str| {
        merged
            .quote(
                name,
                &Usage::new(1_000_000, 1_000_000),
                ServiceTier::Standard,
            )
            .map(|q| q.total())
            .unwrap_or_else(|e| panic!("{e}"))
    };
    assert_eq!(total("gpt-4o"), usd("10"));
    assert_eq!(total("my-model"), usd("6"));
    assert_eq!(total("gpt-4o-mini"), usd("0.75"));
    // The overlay replaced gpt-4o whole: its batch variant is gone, so batch is standard.
    let q = merged
        .quote("gpt-4o", &Usage::new(1, 1), ServiceTier::Batch)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(q.priced.service_tier, ServiceTier::Standard);
}

#[test]
fn a_shared_table_is_replaced_while_readers_keep_theirs() {
    let shared = Arc::new(SharedPriceTable::new(
        PriceTable::from_text(
            "version = \"a\"\n[models.m]\ninput = \"1\"\noutput = \"1\"\n",
            "a",
        )
        .unwrap_or_else(|e| panic!("{e}")),
    ));
    let before = shared.load();
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                for _ in 0..10_000 {
                    let table = shared.load();
                    let total = table
                        .quote("m", &Usage::new(1_000_000, 0), ServiceTier::Standard)
                        .map(|q| q.total().to_string())
                        .unwrap_or_else(|e| panic!("{e}"));
                    // Each table is consistent with its own version.
                    match (&*table.info().version, total.as_str()) {
                        ("a", "1") | ("b", "2") => {}
                        other => panic!("{other:?}"),
                    }
                    seen.push(table.info().version.clone());
                }
                seen
            })
        })
        .collect();
    shared.store(
        PriceTable::from_text(
            "version = \"b\"\n[models.m]\ninput = \"2\"\noutput = \"2\"\n",
            "b",
        )
        .unwrap_or_else(|e| panic!("{e}")),
    );
    for reader in readers {
        let seen = reader.join().unwrap_or_else(|_| panic!("reader panicked"));
        // Once a reader sees the new table it never sees the old one again.
        let first_b = seen.iter().position(|v| &**v == "b").unwrap_or(seen.len());
        assert!(seen[first_b..].iter().all(|v| &**v == "b"));
    }
    assert_eq!(&*before.info().version, "a");
    assert_eq!(&*shared.load().info().version, "b");
}

#[test]
fn litellm_tiers_exist_where_the_input_price_has_a_threshold() {
    // As in LiteLLM: an `_above_` key of another component alone creates no tier, and a
    // service-tier price at a threshold the standard prices lack is not applied.
    let text = r#"{
        "m": {
            "input_cost_per_token": 1e-6,
            "output_cost_per_token": 2e-6,
            "output_cost_per_token_above_100_tokens": 9e-6,
            "input_cost_per_token_batches": 5e-7,
            "input_cost_per_token_above_100_tokens_batches": 9e-6
        }
    }"#;
    let table = PriceTable::from_text(text, "m.json").unwrap_or_else(|e| panic!("{e}"));
    let total = |tier| {
        table
            .quote("m", &Usage::new(1_000, 1_000), tier)
            .map(|q| q.total())
            .unwrap_or_else(|e| panic!("{e}"))
    };
    assert_eq!(total(ServiceTier::Standard), usd("0.003"));
    assert_eq!(total(ServiceTier::Batch), usd("0.0025"));
}

#[test]
fn a_price_is_stale_once_older_than_the_age_limit() {
    let table = PriceTable::from_text(
        "version = \"1\"\nas_of = \"2025-11-24\"\n[models.old]\ninput = \"1\"\noutput = \"2\"\n\
         [models.new]\ninput = \"1\"\noutput = \"2\"\nas_of = \"2026-11-01\"\n",
        "prices.toml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let old = table.get("old").unwrap_or_else(|| panic!("old"));
    let new = table.get("new").unwrap_or_else(|| panic!("new"));
    // The entry without a date of its own has the file's.
    assert_eq!(old.age_days(day_start("2026-11-26") + 3_599), Some(367));
    assert_eq!(new.age_days(day_start("2026-11-26")), Some(25));
    // Exactly the limit is not stale; a day more is.
    let limit = cost_core::DEFAULT_PRICE_AGE_LIMIT_DAYS;
    let at_limit = day_start("2025-11-24") + i64::from(limit) * 86_400;
    assert_eq!(old.stale_price(at_limit, limit), None);
    let stale = old
        .stale_price(at_limit + 86_400, limit)
        .unwrap_or_else(|| panic!("not stale"));
    assert_eq!(
        (stale.entry.as_str(), stale.as_of.as_str(), stale.age_days),
        ("old", "2025-11-24", i64::from(limit) + 1)
    );
    assert!(
        stale
            .to_string()
            .starts_with("prices read on 2025-11-24 (181 days ago) may be out of date, `old`'s"),
        "{stale}"
    );
    assert_eq!(new.stale_price(day_start("2026-11-26"), limit), None);
    // The table lists its stale prices up front.
    let listed: Vec<String> = table
        .stale_prices(day_start("2026-11-26"), limit)
        .into_iter()
        .map(|stale| stale.entry)
        .collect();
    assert_eq!(listed, ["old"]);
    assert_eq!(table.stale_prices(day_start("2026-11-26"), 10).len(), 2);
    // Entries without a date (LiteLLM's, programmatic) are never reported.
    let undated = cost_core::ModelEntry::new("x", old.price.clone());
    assert_eq!(undated.age_days(day_start("2030-01-01")), None);
    assert_eq!(undated.stale_price(day_start("2030-01-01"), 0), None);
}

#[test]
fn web_searches_are_priced_per_search_in_every_format() {
    let searched = Usage {
        web_search_requests: 3,
        ..Usage::new(1_000, 100)
    };
    let quote = |table: &PriceTable, model: &str, tier| {
        table
            .quote(model, &searched, tier)
            .map(|q| (q.total(), q.priced.breakdown.web_search))
    };
    // Native: per search whatever the unit (here per million tokens), and batch discounts
    // the tokens only.
    let native = r#"
version = "test-search"

[models."searcher"]
input = "3"
output = "15"
web_search_requests = "0.01"
batch = { input = "1.5", output = "7.5" }

[models."no-search-price"]
input = "3"
output = "15"
"#;
    let table = PriceTable::from_text(native, "inline.toml").unwrap_or_else(|e| panic!("{e}"));
    // 1 000 × 3e-6 + 100 × 15e-6 + 3 × 0.01
    assert_eq!(
        quote(&table, "searcher", ServiceTier::Standard),
        Ok((usd("0.0345"), usd("0.03")))
    );
    assert_eq!(
        quote(&table, "searcher", ServiceTier::Batch),
        Ok((usd("0.03225"), usd("0.03")))
    );
    // Searches without a price: the call is unpriced, never charged its tokens alone.
    let unpriced = table.quote("no-search-price", &searched, ServiceTier::Standard);
    assert_eq!(
        unpriced.map(|q| q.total()).map_err(|e| e.to_string()),
        Err("cannot price `no-search-price`: the model has no web_search_requests price, and the call has 3 searches of that kind".to_owned())
    );
    // LiteLLM: the medium search context size.
    let litellm = r#"{
        "searcher": {
            "input_cost_per_token": 3e-6,
            "output_cost_per_token": 1.5e-5,
            "search_context_cost_per_query": {
                "search_context_size_low": 0.005,
                "search_context_size_medium": 0.01,
                "search_context_size_high": 0.02
            }
        },
        "odd": {
            "input_cost_per_token": 3e-6,
            "search_context_cost_per_query": {"search_context_size_medium": "ten cents"}
        }
    }"#;
    let table = PriceTable::from_text(litellm, "m.json").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        quote(&table, "searcher", ServiceTier::Standard),
        Ok((usd("0.0345"), usd("0.03")))
    );
    // A bad search price leaves its entry out, as any bad price does.
    assert!(table.get("odd").is_none());
    assert_eq!(table.report().left_out.len(), 1);
    // The embedded table has Anthropic's $10 per 1 000 searches, and OpenAI's for its
    // reasoning models; gpt-4o's depends on the tool version, which no response says.
    let embedded = PriceTable::default();
    assert_eq!(
        quote(&embedded, "claude-sonnet-4-5", ServiceTier::Standard),
        Ok((usd("0.0345"), usd("0.03")))
    );
    // 1 000 × 1.25e-6 + 100 × 10e-6 + 3 × $0.01
    assert_eq!(
        quote(&embedded, "gpt-5", ServiceTier::Standard),
        Ok((usd("0.03225"), usd("0.03")))
    );
    assert!(quote(&embedded, "gpt-4o", ServiceTier::Standard).is_err());
}

#[test]
fn a_search_is_priced_at_its_context_size_in_both_formats() {
    let searched = Usage {
        input: 1_000,
        output: 100,
        web_search_requests: 3,
        ..Usage::default()
    };
    let search_cost = |table: &PriceTable, model: &str, size: Option<SearchContextSize>| {
        let terms = CallTerms {
            search_context_size: size,
            ..CallTerms::default()
        };
        table
            .quote(model, &searched, terms)
            .map(|q| q.priced.breakdown.web_search)
            .map_err(|e| e.to_string())
    };
    let native = r#"
version = "t"
[models."searcher"]
input = "3"
output = "15"
web_search_requests = "0.01"
web_search_by_context_size = { low = "0.005", high = "0.02" }

[models."sizes-only"]
input = "3"
output = "15"
web_search_by_context_size = { low = "0.005", medium = "0.008", high = "0.012" }
"#;
    let table = PriceTable::from_text(native, "inline.toml").unwrap_or_else(|e| panic!("{e}"));
    for (size, expected) in [
        (Some(SearchContextSize::Low), "0.015"),
        (Some(SearchContextSize::Medium), "0.03"),
        (Some(SearchContextSize::High), "0.06"),
        (None, "0.03"),
    ] {
        assert_eq!(
            search_cost(&table, "searcher", size),
            Ok(usd(expected)),
            "{size:?}"
        );
    }
    assert_eq!(search_cost(&table, "sizes-only", None), Ok(usd("0.024")));
    assert_eq!(
        search_cost(&table, "sizes-only", Some(SearchContextSize::High)),
        Ok(usd("0.036"))
    );
    // Written and read back the same; an unknown size is an error naming its line.
    round_trips(&table);
    let typo = "version = \"t\"\n[models.m]\ninput = \"1\"\nweb_search_by_context_size = { huge = \"1\" }\n";
    let line = PriceTable::from_text(typo, "typo.toml").map_err(|e| e.line);
    assert!(matches!(line, Err(Some(4))), "{line:?}");

    // LiteLLM: every size of `search_context_cost_per_query` (Perplexity's Sonar request fees).
    let litellm = r#"{
        "perplexity/sonar": {
            "input_cost_per_token": 1e-6,
            "output_cost_per_token": 1e-6,
            "search_context_cost_per_query": {
                "search_context_size_low": 0.005,
                "search_context_size_medium": 0.008,
                "search_context_size_high": 0.012
            },
            "litellm_provider": "perplexity"
        },
        "perplexity/sonar-deep-research": {
            "input_cost_per_token": 2e-6,
            "output_cost_per_token": 8e-6,
            "output_cost_per_reasoning_token": 3e-6,
            "citation_cost_per_token": 2e-6,
            "search_context_cost_per_query": {
                "search_context_size_low": 0.005,
                "search_context_size_medium": 0.005,
                "search_context_size_high": 0.005
            }
        },
        "odd-citations": {
            "input_cost_per_token": 2e-6,
            "citation_cost_per_token": 3e-6
        }
    }"#;
    let table = PriceTable::from_text(litellm, "m.json").unwrap_or_else(|e| panic!("{e}"));
    for (size, expected) in [
        (Some(SearchContextSize::Low), "0.015"),
        (Some(SearchContextSize::High), "0.036"),
        (None, "0.024"),
    ] {
        assert_eq!(
            search_cost(&table, "perplexity/sonar", size),
            Ok(usd(expected)),
            "{size:?}"
        );
        assert_eq!(
            search_cost(&table, "perplexity/sonar-deep-research", size),
            Ok(usd("0.015"))
        );
    }
    // A citation price other than the input price cannot be honoured (citation tokens are
    // counted as prompt tokens): counted as skipped; the input price's is read.
    assert_eq!(
        table.report().skipped_keys.get("citation_cost_per_token"),
        Some(&1)
    );
    round_trips(&table);
}

/// `table` written in the native format and read back: the same entries, prices, factors,
/// texts and aliases.
fn round_trips(table: &PriceTable) {
    let text = cost_core::format::native::write(table).unwrap_or_else(|e| panic!("{e}"));
    let back =
        PriceTable::from_text(&text, "written.toml").unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(back.info().version, table.info().version);
    // The table's date stays where every entry has one (an undated entry stays undated).
    let dated = table.entries().iter().all(|entry| entry.as_of.is_some());
    let as_of = table.info().as_of.clone().filter(|_| dated);
    assert_eq!(back.info().as_of, as_of);
    assert_eq!(back.len(), table.len());
    for entry in table.entries() {
        let read = back
            .get(&entry.key)
            .unwrap_or_else(|| panic!("`{}` was not written", entry.key));
        assert_eq!(read, entry, "{}", entry.key);
    }
    assert_eq!(back.aliases(), table.aliases());
}

#[test]
fn tables_written_in_the_native_format_read_back_the_same() {
    round_trips(&PriceTable::default());
    // LiteLLM's shapes: context and service tiers, range tiers, per-call fees, multipliers.
    let litellm = r#"{
        "gemini-2.5-pro": {"input_cost_per_token": 1.25e-06, "output_cost_per_token": 1e-05,
            "input_cost_per_token_above_200k_tokens": 2.5e-06,
            "output_cost_per_token_above_200k_tokens": 1.5e-05,
            "input_cost_per_token_batches": 6.25e-07, "output_cost_per_token_batches": 5e-06,
            "litellm_provider": "gemini"},
        "claude-opus-4-6": {"input_cost_per_token": 5e-06, "output_cost_per_token": 2.5e-05,
            "cache_creation_input_token_cost": 6.25e-06,
            "cache_creation_input_token_cost_above_1hr": 1e-05,
            "cache_read_input_token_cost": 5e-07,
            "search_context_cost_per_query": {"search_context_size_medium": 0.01},
            "provider_specific_entry": {"us": 1.1, "fast": 6.0}},
        "gpt-4o": {"input_cost_per_token": 2.5e-06, "output_cost_per_token": 1e-05,
            "file_search_cost_per_1k_calls": 2.5, "input_cost_per_token_priority": 4.25e-06},
        "qwen-plus": {"input_cost_per_token": 4e-07, "output_cost_per_token": 1.2e-06,
            "tiered_pricing": [
                {"range": [0, 256000], "input_cost_per_token": 4e-07, "output_cost_per_token": 1.2e-06},
                {"range": [256000, 1000000], "input_cost_per_token": 1.2e-06, "output_cost_per_token": 3.6e-06}]},
        "odd.name/with \"quotes\"": {"input_cost_per_token": 1e-24, "output_cost_per_token": 0},
        "gpt-6-astra": {"input_cost_per_token": 1e-05, "output_cost_per_token": 5e-05,
            "input_cost_per_token_above_272k_tokens": 2e-05,
            "input_cost_per_token_ultrafast": 6e-05, "output_cost_per_token_ultrafast": 3e-04,
            "input_cost_per_token_above_272k_tokens_ultrafast": 1.2e-04},
        "gpt-4o-latest": {"alias_of": "gpt-4o"}
    }"#;
    let table = PriceTable::from_text(litellm, "prices.json").unwrap_or_else(|e| panic!("{e}"));
    round_trips(&table);
    round_trips(
        &PriceTable::default()
            .merged(&table)
            .unwrap_or_else(|e| panic!("{e}")),
    );
    // Some entries only, with the aliases that point to them.
    let some = cost_core::format::native::write_models(&table, ["gpt-4o", "not-there"])
        .unwrap_or_else(|e| panic!("{e}"));
    let back = PriceTable::from_text(&some, "some.toml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back.len(), 1);
    assert_eq!(
        back.resolve("gpt-4o-latest")
            .map(|r| back.entry(r.id).key.clone()),
        Ok("gpt-4o".to_owned())
    );
}

fn programmatic() -> cost_core::PriceTableBuilder {
    cost_core::PriceTableBuilder::new(cost_core::TableInfo {
        version: Arc::from("test"),
        as_of: None,
        origin: "programmatic".into(),
    })
}

#[test]
fn an_alias_replacing_an_entry_leaves_the_others_in_their_places() {
    let mut builder = programmatic();
    builder
        .model(ModelEntry::new("a", flat("1", "2")))
        .model(ModelEntry::new("b", flat("3", "4")))
        .model(ModelEntry::new("c", flat("5", "6")))
        // `a` becomes another name of `b`; then `c` is given again, replacing `c`.
        .alias("a", "b")
        .model(ModelEntry::new("c", flat("7", "8")));
    let table = builder.build().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(table.len(), 2);
    let one_million_each = prompt(1_000_000, 0, 1_000_000);
    assert_eq!(standard_total(&table, "a", &one_million_each), Ok(usd("7")));
    assert_eq!(standard_total(&table, "b", &one_million_each), Ok(usd("7")));
    assert_eq!(
        standard_total(&table, "c", &one_million_each),
        Ok(usd("15"))
    );
}

#[test]
fn aliases_may_chain_but_not_circle() {
    let mut chained = programmatic();
    chained
        .model(ModelEntry::new("model", flat("1", "2")))
        .alias("first", "second")
        .alias("second", "third")
        .alias("third", "model");
    let table = chained.build().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        resolve(&table, "first").map(|(key, _)| key),
        Some("model".to_owned())
    );
    let mut circle = programmatic();
    circle
        .model(ModelEntry::new("model", flat("1", "2")))
        .alias("here", "there")
        .alias("there", "here");
    assert!(
        matches!(circle.build(), Err(cost_core::TableError::AliasCycle(_))),
        "a circle of aliases built"
    );
}

#[test]
fn a_price_change_starts_at_midnight_utc_of_its_day() {
    let change = cost_core::PriceChange::new("2026-01-01", flat("1", "2"))
        .unwrap_or_else(|| panic!("a date"));
    assert_eq!(change.on(), "2026-01-01");
    assert_eq!(change.starts_at(), 1_767_225_600);
    assert_eq!(change.starts_at(), day_start("2026-01-01"));
}

#[test]
fn a_litellm_table_without_a_version_is_named_by_its_content() {
    let text = |input: &str| {
        format!(
            "{{\"m\": {{\"input_cost_per_token\": {input}, \"output_cost_per_token\": 0.000002, \"litellm_provider\": \"openai\", \"mode\": \"chat\"}}}}"
        )
    };
    let version = |text: &str| loaded(text, "prices.json").info().version.to_string();
    let first = version(&text("0.000001"));
    assert_eq!(
        first,
        version(&text("0.000001")),
        "the same content, the same name"
    );
    assert_ne!(
        first,
        version(&text("0.000003")),
        "another content, another name"
    );
    let digest = first
        .strip_prefix("litellm@")
        .unwrap_or_else(|| panic!("{first}"));
    assert_eq!(digest.len(), 12, "{first}");
    assert!(digest.chars().all(|c| c.is_ascii_hexdigit()), "{first}");
}

#[test]
fn litellm_citation_prices_are_read_where_they_equal_the_input_price() {
    let entry = |citation: &str| {
        format!(
            r#"{{"sonar-x": {{"input_cost_per_token": 2e-06, "output_cost_per_token": 8e-06,
                "citation_cost_per_token": {citation}, "litellm_provider": "perplexity", "mode": "chat"}}}}"#
        )
    };
    let usage = prompt(1_000_000, 0, 0);
    // Equal to the input price: read (citation tokens count as prompt tokens).
    let same = loaded(&entry("2e-06"), "prices.json");
    assert!(
        same.report().skipped_keys.is_empty(),
        "{:?}",
        same.report().skipped_keys
    );
    assert_eq!(standard_total(&same, "sonar-x", &usage), Ok(usd("2")));
    // Different: counted as a skipped key; the input price still prices the prompt.
    let other = loaded(&entry("3e-06"), "prices.json");
    assert_eq!(
        other.report().skipped_keys.get("citation_cost_per_token"),
        Some(&1),
        "{:?}",
        other.report().skipped_keys
    );
    assert_eq!(standard_total(&other, "sonar-x", &usage), Ok(usd("2")));
}

#[test]
fn litellm_a_model_given_twice_without_token_prices_both_times_is_skipped_as_such() {
    let image = r#"{"input_cost_per_image": 0.04, "litellm_provider": "openai", "mode": "image_generation"}"#;
    let text = format!(r#"{{"dall-e-9": {image}, "dall-e-9": {image}}}"#);
    let table = loaded(&text, "prices.json");
    let report = table.report();
    assert!(
        report
            .skipped_entries
            .get("dall-e-9")
            .is_some_and(|why| why.contains("no per-token input price")),
        "{report:?}"
    );
    assert!(report.left_out.is_empty(), "{report:?}");
}

#[test]
fn litellm_range_tiers_price_the_whole_request_at_the_range_of_its_input() {
    let text = r#"{
        "qwen-x": {"input_cost_per_token": 4e-07, "output_cost_per_token": 1.2e-06,
            "litellm_provider": "dashscope",
            "tiered_pricing": [
                {"range": [0, 256000], "input_cost_per_token": 4e-07, "output_cost_per_token": 1.2e-06},
                {"range": [256000.0, 1000000], "input_cost_per_token": 1.2e-06,
                 "output_cost_per_token": 3.6e-06, "input_cost_per_token_batches": 9e-06,
                 "input_cost_per_token_above_500k_tokens": 9e-06}]},
        "half-a-token": {"input_cost_per_token": 1e-06, "output_cost_per_token": 1e-06,
            "tiered_pricing": [{"range": [0.5, 10], "input_cost_per_token": 2e-06}]},
        "no-input-in-range": {"input_cost_per_token": 1e-06, "output_cost_per_token": 1e-06,
            "tiered_pricing": [{"range": [0, 10], "output_cost_per_token": 2e-06}]}
    }"#;
    let table = loaded(text, "prices.json");
    // Up to 256 000 input tokens, the first range; from 256 001, the second, for the whole
    // request (its keys of other service tiers and of context tiers are not its prices).
    assert_eq!(
        standard_total(&table, "qwen-x", &prompt(256_000, 0, 1_000_000)),
        Ok(usd("1.3024"))
    );
    assert_eq!(
        standard_total(&table, "qwen-x", &prompt(256_001, 0, 1_000_000)),
        Ok(usd("3.9072012"))
    );
    assert_eq!(
        standard_total(&table, "qwen-x", &prompt(600_000, 0, 0)),
        Ok(usd("0.72"))
    );
    // Ranges that are not whole token counts, or without an input price: not applied (the
    // flat prices apply), and counted as skipped.
    assert_eq!(
        table.report().skipped_keys.get("tiered_pricing"),
        Some(&2),
        "{:?}",
        table.report().skipped_keys
    );
    for name in ["half-a-token", "no-input-in-range"] {
        assert_eq!(
            standard_total(&table, name, &prompt(1_000_000, 0, 1_000_000)),
            Ok(usd("2")),
            "{name}"
        );
    }
}

#[test]
fn litellm_a_file_that_is_not_an_object_says_what_it_expected() {
    let refused = cost_core::format::litellm::parse("[1, 2]", "prices.json");
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.to_string().contains("expected a JSON object")),
        "{refused:?}"
    );
}
