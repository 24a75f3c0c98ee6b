//! A simulated multi-agent session, priced exactly as it runs.
//!
//! `cargo run --example quickstart`
//!
//! A planner, a researcher and a writer answer one user request with canned responses (no
//! network): several models, prompt-cache reads and writes, reasoning tokens, web searches the
//! provider ran (billed per search), one answer served from the application's own cache, and one
//! call to a model that has no price. At the end it
//! prints the session's cost tree and the spend by model, by feature and by agent.

use std::sync::{Arc, Mutex};

use cost_layer::cost_core::PriceTable;
use cost_layer::{CostLayer, Dimension, Ledger, TokenUsage, Totals, agent, llm_call, session};
use tracing::info_span;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

/// What a provider would answer: the model that answered and its token usage (inclusive
/// convention), read by `#[llm_call]` through the derived `TokenUsage`.
#[derive(TokenUsage)]
struct Response {
    #[usage(model)]
    model: &'static str,
    #[usage(input)]
    input: u64,
    #[usage(cache_read)]
    cache_read: u64,
    #[usage(cache_write)]
    cache_write: u64,
    #[usage(output)]
    output: u64,
    #[usage(reasoning)]
    reasoning: u64,
    /// Web searches the provider ran for the call (billed per search).
    #[usage(web_search_requests)]
    web_searches: u64,
}

/// One LLM call. Here the "provider" returns a canned response; a real program calls its
/// client in the body, and the usage of whatever it returns is recorded when it returns.
#[llm_call(model = model, feature = feature)]
fn llm_call(model: &str, feature: &str, canned: Response) -> Response {
    canned
}

/// The same question again, answered from the application's own cache: charged nothing.
#[llm_call(model = "claude-sonnet-5-5", feature = "research", fields(llm.cache.hit = true))]
fn cached_answer() -> Response {
    Response {
        model: "claude-sonnet-5-5",
        input: 42_000,
        cache_read: 0,
        cache_write: 0,
        output: 1_500,
        reasoning: 0,
        web_searches: 0,
    }
}

#[agent]
fn planner() {
    llm_call(
        "gpt-6-luna",
        "planning",
        Response {
            model: "gpt-6-luna",
            input: 1_800,
            cache_read: 0,
            cache_write: 0,
            output: 350,
            reasoning: 0,
            web_searches: 0,
        },
    );
}

#[agent]
fn researcher() {
    for (i, query) in ["pricing history", "competitor features"]
        .into_iter()
        .enumerate()
    {
        let tool = info_span!("tool", tool.name = "vector_search", query);
        let _t = tool.enter();
        llm_call(
            "claude-sonnet-5-5",
            "research",
            Response {
                model: "claude-sonnet-5-5",
                input: 42_000,
                cache_read: if i == 0 { 0 } else { 30_000 },
                cache_write: if i == 0 { 30_000 } else { 0 },
                output: 1_500,
                reasoning: 0,
                // Claude's own web search tool, billed per search on top of the tokens.
                web_searches: if i == 0 { 3 } else { 0 },
            },
        );
    }
    cached_answer();
    llm_call(
        "gpt-6.1-sol",
        "research",
        Response {
            model: "gpt-6.1-sol-2026-09-29",
            input: 12_000,
            cache_read: 0,
            cache_write: 0,
            output: 6_000,
            reasoning: 4_800,
            web_searches: 0,
        },
    );
}

#[agent]
fn writer() {
    llm_call(
        "gpt-6.1-terra",
        "writing",
        Response {
            model: "gpt-6.1-terra",
            input: 9_000,
            cache_read: 0,
            cache_write: 0,
            output: 2_400,
            reasoning: 0,
            web_searches: 0,
        },
    );
    // An in-house model the price table does not know: its tokens count, its cost is unknown.
    llm_call(
        "acme-house-style-v2",
        "writing",
        Response {
            model: "acme-house-style-v2",
            input: 3_000,
            cache_read: 0,
            cache_write: 0,
            output: 200,
            reasoning: 0,
            web_searches: 0,
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

/// The layer with the embedded prices, its close events on, and the session's cost tree kept in
/// the returned text once the session closes.
pub(crate) fn cost_layer() -> (CostLayer, Ledger, Arc<Mutex<String>>) {
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
    (cost, ledger, tree)
}

/// The session: a user's request answered by the three agents.
#[session(id = "s-42", user = "alice@example.com", org = "acme")]
pub(crate) fn support_session() {
    planner();
    researcher();
    writer();
}

fn main() {
    let (cost, ledger, tree) = cost_layer();
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
    support_session();

    println!("\ncost tree of session s-42:");
    print!("{}", tree.lock().map(|t| t.clone()).unwrap_or_default());
    print_summary(&ledger, Dimension::Model);
    print_summary(&ledger, Dimension::Feature);
    print_summary(&ledger, Dimension::Agent);
    let Some(session) = ledger.session("s-42") else {
        println!("\nsession s-42: nothing charged");
        return;
    };
    println!(
        "\nsession s-42: {}${} for {} calls ({} unpriced, so the cost is a lower bound: {}), price table {}",
        if session.is_complete() { "" } else { "≥ " },
        session.total_usd(),
        session.llm_calls,
        session.unpriced_calls,
        !session.is_complete(),
        session.price_table.as_deref().unwrap_or("?"),
    );
    // A user's totals print as the ledger keeps them: a lower bound (≥) when a call had no price.
    match ledger.user("alice@example.com") {
        Some(totals) => println!(
            "user alice@example.com is filed as {}: {totals}",
            ledger.user_key("alice@example.com")
        ),
        None => println!("user alice@example.com: nothing charged"),
    }
}
