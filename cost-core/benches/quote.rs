//! Cost of pricing one call, in ns per quote.
//!
//! `cargo bench -p cost-core --bench quote`
//!
//! - `quote/resolved`: a model already resolved to its entry (the layer's hot path: it caches
//!   the resolution per model name); usage with cache reads and reasoning.
//! - `quote/exact_name`: resolution of an exact key, then pricing.
//! - `quote/dated_prefixed_name`: `openai/gpt-4o-2024-08-06`, resolved through the provider
//!   prefix and date rules, then pricing.
//! - `quote/tiered`: a resolved model whose request crosses a context tier.

use std::hint::black_box;

use cost_core::{PriceTable, ServiceTier, Usage};
use criterion::{Criterion, criterion_group, criterion_main};

fn quote(c: &mut Criterion) {
    let table = PriceTable::default();
    let usage = Usage {
        input: 12_000,
        cache_read: 8_000,
        output: 900,
        reasoning: 300,
        ..Usage::default()
    };
    let mut group = c.benchmark_group("quote");
    let resolved = table.resolve("gpt-4o").unwrap_or_else(|e| panic!("{e}"));
    group.bench_function("resolved", |b| {
        b.iter(|| {
            table
                .quote_resolved(
                    black_box(resolved),
                    black_box(&usage),
                    ServiceTier::Standard,
                )
                .map(|q| q.total())
        })
    });
    group.bench_function("exact_name", |b| {
        b.iter(|| {
            table
                .quote(
                    black_box("gpt-4o"),
                    black_box(&usage),
                    ServiceTier::Standard,
                )
                .map(|q| q.total())
        })
    });
    group.bench_function("dated_prefixed_name", |b| {
        b.iter(|| {
            table
                .quote(
                    black_box("openai/gpt-4o-2024-08-06"),
                    black_box(&usage),
                    ServiceTier::Standard,
                )
                .map(|q| q.total())
        })
    });
    let gemini = table
        .resolve("gemini-2.5-pro")
        .unwrap_or_else(|e| panic!("{e}"));
    let long = Usage {
        input: 300_000,
        ..usage
    };
    group.bench_function("tiered", |b| {
        b.iter(|| {
            table
                .quote_resolved(black_box(gemini), black_box(&long), ServiceTier::Standard)
                .map(|q| q.total())
        })
    });
    group.finish();
}

criterion_group!(benches, quote);
criterion_main!(benches);
