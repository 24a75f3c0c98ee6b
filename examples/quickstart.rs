//! A simulated multi-agent session, priced exactly as it runs.
//!
//! `cargo run --example quickstart`
//!
//! A planner, a researcher and a writer answer one user request with canned responses (no
//! network): several models, prompt-cache reads and writes, reasoning tokens, one answer served
//! from the application's own cache, and one call to a model that has no price. At the end it
//! prints the session's cost tree and the spend by model and by feature.

use std::sync::{Arc, Mutex};

use cost_layer::cost_core::{Money, PriceTable};
use cost_layer::{CostLayer, Dimension, Ledger, Totals};
use tracing::field::Empty;
use tracing::info_span;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

/// What a provider would answer: a model name and token usage (inclusive convention).
struct Response {
    model: &'static str,
    input: u64,
    cache_read: u64,
    cache_write: u64,
    output: u64,
    reasoning: u64,
}

/// One LLM call: a span with the usage fields declared empty, recorded from the response.
fn llm_call(name: &'static str, model: &'static str, feature: &'static str, canned: Response) {
    let span = info_span!(
        "llm_call",
        otel.name = name,
        gen_ai.operation.name = "chat",
        gen_ai.request.model = model,
        gen_ai.response.model = Empty,
        gen_ai.usage.input_tokens = Empty,
        gen_ai.usage.cache_read.input_tokens = Empty,
        gen_ai.usage.cache_creation.input_tokens = Empty,
        gen_ai.usage.output_tokens = Empty,
        gen_ai.usage.reasoning.output_tokens = Empty,
        cost.feature = feature,
    );
    let _entered = span.enter();
    // … here the real program would call the provider …
    span.record("gen_ai.response.model", canned.model);
    span.record("gen_ai.usage.input_tokens", canned.input);
    span.record("gen_ai.usage.cache_read.input_tokens", canned.cache_read);
    span.record(
        "gen_ai.usage.cache_creation.input_tokens",
        canned.cache_write,
    );
    span.record("gen_ai.usage.output_tokens", canned.output);
    span.record("gen_ai.usage.reasoning.output_tokens", canned.reasoning);
}

fn planner() {
    let agent = info_span!("agent", gen_ai.agent.name = "planner");
    let _a = agent.enter();
    llm_call(
        "plan",
        "gpt-4o-mini",
        "planning",
        Response {
            model: "gpt-4o-mini-2024-07-18",
            input: 1_800,
            cache_read: 0,
            cache_write: 0,
            output: 350,
            reasoning: 0,
        },
    );
}

fn researcher() {
    let agent = info_span!("agent", gen_ai.agent.name = "researcher");
    let _a = agent.enter();
    for (i, query) in ["pricing history", "competitor features"]
        .into_iter()
        .enumerate()
    {
        let tool = info_span!("tool", tool.name = "web_search", query);
        let _t = tool.enter();
        llm_call(
            "read_sources",
            "claude-sonnet-4-5",
            "research",
            Response {
                model: "claude-sonnet-4-5-20250929",
                input: 42_000,
                cache_read: if i == 0 { 0 } else { 30_000 },
                cache_write: if i == 0 { 30_000 } else { 0 },
                output: 1_500,
                reasoning: 0,
            },
        );
    }
    // The same question again: answered from the application's cache, charged nothing.
    info_span!(
        "llm_call",
        gen_ai.request.model = "claude-sonnet-4-5",
        gen_ai.usage.input_tokens = 42_000,
        gen_ai.usage.output_tokens = 1_500,
        llm.cache.hit = true,
    )
    .in_scope(|| {});
    llm_call(
        "deep_analysis",
        "o3",
        "research",
        Response {
            model: "o3-2025-04-16",
            input: 12_000,
            cache_read: 0,
            cache_write: 0,
            output: 6_000,
            reasoning: 4_800,
        },
    );
}

fn writer() {
    let agent = info_span!("agent", gen_ai.agent.name = "writer");
    let _a = agent.enter();
    llm_call(
        "draft",
        "gpt-4.1",
        "writing",
        Response {
            model: "gpt-4.1-2025-04-14",
            input: 9_000,
            cache_read: 0,
            cache_write: 0,
            output: 2_400,
            reasoning: 0,
        },
    );
    // An in-house model the price table does not know: its tokens count, its cost is unknown.
    llm_call(
        "style_check",
        "acme-house-style-v2",
        "writing",
        Response {
            model: "acme-house-style-v2",
            input: 3_000,
            cache_read: 0,
            cache_write: 0,
            output: 200,
            reasoning: 0,
        },
    );
}

fn print_summary(ledger: &Ledger, dimension: Dimension) {
    println!("\nspend by {}:", dimension.as_str());
    let snapshot = ledger.snapshot();
    let mut rows: Vec<(&str, &Totals)> = snapshot.by(dimension).collect();
    rows.sort_by(|a, b| b.1.total_usd().cmp(&a.1.total_usd()).then(a.0.cmp(b.0)));
    for (key, totals) in rows {
        println!("  {key:<22} {totals}");
    }
}

fn main() {
    let tree = Arc::new(Mutex::new(String::new()));
    let tree_sink = Arc::clone(&tree);
    let (cost, ledger) = CostLayer::builder()
        .prices(PriceTable::default())
        .close_events(true)
        .cost_tree(move |t| {
            if let Ok(mut out) = tree_sink.lock() {
                *out = t.to_string();
            }
        })
        .build();
    tracing_subscriber::registry()
        .with(cost)
        // fmt prints the layer's close events: one line per agent run and per session.
        .with(
            tracing_subscriber::fmt::layer()
                .with_target(false)
                .without_time()
                .with_filter(Targets::new().with_target("cost_layer", tracing::Level::INFO)),
        )
        .init();

    {
        let session = info_span!(
            "support_session",
            session.id = "s-42",
            cost.user_id = "alice@example.com",
            cost.org_id = "acme",
        );
        let _s = session.enter();
        planner();
        researcher();
        writer();
    }

    println!("\ncost tree of session s-42:");
    print!("{}", tree.lock().map(|t| t.clone()).unwrap_or_default());
    print_summary(&ledger, Dimension::Model);
    print_summary(&ledger, Dimension::Feature);
    let session = ledger.session("s-42").unwrap_or_default();
    println!(
        "\nsession s-42: ${} for {} calls ({} unpriced, so the cost is a lower bound: {}), price table {}",
        session.total_usd(),
        session.llm_calls,
        session.unpriced_calls,
        !session.is_complete(),
        session.price_table.as_deref().unwrap_or("?"),
    );
    println!(
        "user alice@example.com is filed as {}; spent ${}",
        ledger.user_key("alice@example.com"),
        ledger
            .user("alice@example.com")
            .map_or(Money::ZERO, |t| t.total_usd())
    );
}
