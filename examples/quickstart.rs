//! Prices a handful of LLM calls exactly with the embedded price table.
//!
//! `cargo run --example quickstart`

use cost_core::{Money, PriceTable, ServiceTier, Usage};

fn main() {
    let table = PriceTable::default();
    println!(
        "price table {} (as of {}), {} models\n",
        table.info().version,
        table.info().as_of.as_deref().unwrap_or("unknown"),
        table.len()
    );
    let calls = [
        (
            "gpt-4o-2024-08-06",
            Usage::new(12_000, 800),
            ServiceTier::Standard,
        ),
        (
            "claude-sonnet-4-5-20250929",
            Usage {
                input: 40_000,
                cache_read: 30_000,
                cache_write: 8_000,
                output: 1_200,
                ..Usage::default()
            },
            ServiceTier::Standard,
        ),
        (
            "gemini-2.5-pro",
            Usage {
                input: 250_000,
                output: 4_000,
                reasoning: 2_500,
                ..Usage::default()
            },
            ServiceTier::Standard,
        ),
        ("o4-mini", Usage::new(5_000, 20_000), ServiceTier::Flex),
        (
            "my-finetuned-model",
            Usage::new(1_000, 100),
            ServiceTier::Standard,
        ),
    ];
    let mut total = Money::ZERO;
    for (model, usage, tier) in calls {
        match table.quote(model, &usage, tier) {
            Ok(quote) => {
                total += quote.total();
                println!(
                    "{model:<28} → {:<20} ${:<12} (cache saved ${}, {} tier{})",
                    quote.entry.key,
                    quote.total(),
                    quote.priced.breakdown.cache_savings,
                    quote.priced.service_tier,
                    quote
                        .priced
                        .context_tier
                        .map(|n| format!(", above {n} tokens"))
                        .unwrap_or_default()
                );
            }
            Err(e) => println!("{model:<28} → unpriced: {e}"),
        }
    }
    println!("\ntotal of the priced calls: ${total}");
}
