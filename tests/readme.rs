//! The README's Rust snippets compile against the current API.
//!
//! Each ```` ```rust ```` block of the README is copied here, in a region opened by
//! `// README snippet N` (N counting the README's Rust blocks from 1) and closed by
//! `// end of README snippet N`, with whatever it needs around it (imports, a function returning
//! a `Result` for its `?`, stand-ins for the reader's own types). `readme_snippets_are_here`
//! checks that every block's lines stand in its region, in order and one after another, so a
//! README snippet that no longer compiles fails the build of this file, and one edited without
//! this file fails the test. A line whose code holds `…` is the reader's own code: what stands
//! between its neighbours here is free. Blank lines and indentation are not compared.
//!
//! The snippets install global subscribers and open files and servers, so most are only
//! compiled; the pricing snippet runs, and its comment's figure is checked.

#![allow(dead_code, unused_imports, unused_variables, clippy::unnecessary_wraps)]

type Outcome = Result<(), Box<dyn std::error::Error>>;

use cost_layer::cost_core::adapters::openai::ChatCompletion;

/// A stand-in for an HTTP client of the reader's.
struct Client;

impl Client {
    async fn chat(&self, _doc: &str) -> Result<ChatCompletion, Error> {
        Err(Error)
    }
}

/// A stand-in for the reader's error type.
#[derive(Debug)]
struct Error;

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("request failed")
    }
}

impl std::error::Error for Error {}

// README snippet 1
#[rustfmt::skip]
mod snippet_1 {
    use super::{Client, Error};
use cost_layer::{llm_call, cost_core::adapters::openai::ChatCompletion};

#[llm_call(model = "gpt-4o", provider = "openai", feature = "summarise", err)]
async fn summarise(client: &Client, doc: &str) -> Result<ChatCompletion, Error> {
    client.chat(doc).await          // usage and model are read from the returned value
}
}
// end of README snippet 1

// README snippet 2
#[rustfmt::skip]
mod snippet_2 {
    use cost_layer::TokenUsage;

    #[derive(TokenUsage)]
    struct MoreUsage {
        #[usage(reasoning)]
        reasoning_tokens: u32,
    }

  #[derive(TokenUsage)]
  #[usage(convention = "anthropic")]          // input excludes cache reads/writes: converted
  struct Reply {
      #[usage(model)] model: String,
      #[usage(input)] input_tokens: u32,
      #[usage(cache_read)] cache_read_input_tokens: Option<u32>,
      #[usage(output)] output_tokens: u32,
      #[usage(flatten)] extra: MoreUsage,     // any field whose type implements TokenUsage
      #[usage(service_tier)] tier: Option<String>,   // "priority", "flex", "batch", …
      #[usage(data_residency)] regional: Option<bool>, // ran on a data-residency endpoint
      #[usage(search_context_size)] context: Option<String>, // "low", "medium", "high"
      #[usage(reported_cost)] cost: Option<f64>,  // what the provider says it cost, USD
  }
}
// end of README snippet 2

// README snippet 3
#[rustfmt::skip]
mod snippet_3 {
    use super::Error;

    struct Request { conversation_id: String, user_id: String, question: String }
    struct Notes;
    struct Answer;
    async fn write_answer(notes: &Notes) -> Result<Answer, Error> { Ok(Answer) }

use cost_layer::{agent, session};

#[session(id = request.conversation_id, user = request.user_id, feature = "support")]
async fn handle(request: Request) -> Result<Answer, Error> {
    let notes = research(&request.question).await?;
    write_answer(&notes).await
}

#[agent(name = "researcher")]
async fn research(question: &str) -> Result<Notes, Error> {
    Ok(Notes)
}
}
// end of README snippet 3

// README snippet 4
#[rustfmt::skip]
mod snippet_4 {
    fn main() {
use cost_layer::{CostLayer, Scope};
use tracing_subscriber::prelude::*;

let (cost, ledger) = CostLayer::builder()
    .prices(cost_layer::cost_core::PriceTable::default())
    .on_close_filtered(|c| c.scope == Scope::Session, |c| println!("{} {}", c.name, c.totals))
    .build();
tracing_subscriber::registry().with(tracing_subscriber::fmt::layer()).with(cost).init();

// (the reader's code)
let session = tracing::info_span!("chat", session.id = "s-42", cost.user_id = "alice", cost.feature = "support");
let _s = session.enter();
let call = tracing::info_span!("llm", gen_ai.request.model = "gpt-4o",
    gen_ai.usage.input_tokens = tracing::field::Empty, gen_ai.usage.output_tokens = tracing::field::Empty);
call.record("gen_ai.usage.input_tokens", 1200);
call.record("gen_ai.usage.output_tokens", 300);
drop(call);

ledger.session("s-42").map(|t| t.total_usd());   // exact Money, readable at any time
    }
}
// end of README snippet 4

// README snippet 5
#[rustfmt::skip]
mod snippet_5 {
    use cost_layer::CostLayer;
    use tracing_subscriber::prelude::*;

    fn main() -> super::Outcome {
let store = cost_store::open("llm-costs.sqlite")?;            // or "calls.jsonl", or "postgres://…"
let (sink, _flush) = cost_store::spawn(store, cost_store::WriterOptions::default());
let (cost, ledger) = CostLayer::builder().call_sink(sink).build();
tracing_subscriber::registry().with(cost).init();
// keep `_flush` alive in main: dropping it writes what is still queued
        Ok(())
    }
}
// end of README snippet 5

// README snippet 6
#[rustfmt::skip]
mod snippet_6 {
    use cost_layer::CostLayer;
    use cost_layer::cost_core::budget::{BudgetBook, BudgetConfig, SystemClock, Unavailable};
    use std::sync::Arc;

    fn main() -> super::Outcome {
let accounts = cost_store::budgets("postgres://app@db/llm")?;   // or redis://cache:6379/, or a SQLite file
let config = BudgetConfig::from_toml("per_user_daily = 50.00")?;
let book = BudgetBook::with_shared(config, Arc::new(SystemClock), accounts, Unavailable::FailClosed)?;
let (cost, ledger) = CostLayer::builder().budgets(book).build();
        Ok(())
    }
}
// end of README snippet 6

// README snippet 7
#[rustfmt::skip]
mod snippet_7 {
    use cost_layer::CostLayer;
    use cost_layer::export::MetricOptions;
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::prelude::*;

    fn main() {
        let tracer = opentelemetry_sdk::trace::SdkTracerProvider::builder().build().tracer("app");
        let meter = opentelemetry::global::meter("app");
let (cost, ledger) = CostLayer::builder()
    .otel_span_attributes(true)                       // cost on the exported spans
    .otel_metrics(&meter, MetricOptions::default())   // token histogram + cost counter
    .build();
tracing_subscriber::registry()
    .with(cost)                                        // inside tracing-opentelemetry: see below
    .with(tracing_opentelemetry::layer().with_tracer(tracer))
    .init();
    }
}
// end of README snippet 7

// README snippet 8
#[rustfmt::skip]
mod snippet_8 {
    pub(super) fn main() -> super::Outcome {
use cost_core::{PriceTable, ServiceTier, Usage};

let table = PriceTable::default();                       // embedded, dated table
let usage = Usage { input: 12_000, cache_read: 8_000, output: 900, ..Usage::default() };
let quote = table.quote("openai/gpt-4o-2024-08-06", &usage, ServiceTier::Standard)?;
println!("{} via {} → ${}", quote.entry.key, quote.table.version, quote.total()); // $0.029
        assert_eq!(quote.total().to_string(), "0.029");
        Ok(())
    }
}
// end of README snippet 8

// README snippet 9
#[rustfmt::skip]
mod snippet_9 {
    use cost_layer::cost_core::budget::BudgetExceeded;
    use cost_layer::{CostLayer, TokenUsage, llm_call};

    #[derive(TokenUsage)]
    struct Reply {
        #[usage(input)]
        input_tokens: u32,
        #[usage(output)]
        output_tokens: u32,
    }

    #[derive(Debug)]
    enum AgentError {
        Budget(BudgetExceeded),
    }

    impl From<BudgetExceeded> for AgentError {
        fn from(refusal: BudgetExceeded) -> Self {
            AgentError::Budget(refusal)
        }
    }

    fn main() -> super::Outcome {
use cost_layer::cost_core::budget::{BudgetBook, BudgetConfig, BudgetExceeded};

let config = BudgetConfig::from_toml(r#"
    per_call_max = 1.00
    per_session_max = 10.00
    per_user_daily = 50.00
    org_daily = 1000.00
    unpriced_calls = "deny"    # refuse a call no price can bound (default: "admit")
    cancelled_calls = "hold"   # a call cancelled in flight keeps its reservation as spent (default)

    [[budget]]                 # alert at 80 % of a $5,000 monthly budget
    name = "monthly"
    scope = "global"
    window = "month"
    limit = 5000
    thresholds = [0.8]
    policy = "alert"
"#)?;
let (cost, ledger) = CostLayer::builder()
    .budgets(BudgetBook::new(config)?)
    .on_budget_alert(|alert| eprintln!("{alert}"))
    .build();

#[llm_call(model = "gpt-4o", max_output_tokens = 2_000, estimate_input = prompt.len() / 4)]
fn step(prompt: &str) -> Result<Reply, AgentError> {
    Ok(Reply { input_tokens: 100, output_tokens: 10 })
}
        Ok(())
    }
}
// end of README snippet 9

/// The README's Rust blocks, in order: each a list of its lines, trimmed, blank ones left out.
fn readme_rust_blocks(readme: &str) -> Vec<Vec<&str>> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in readme.lines().map(str::trim) {
        match current.as_mut() {
            None if line == "```rust" => current = Some(Vec::new()),
            None => {}
            Some(_) if line == "```" => blocks.extend(current.take()),
            Some(block) if !line.is_empty() => block.push(line),
            Some(_) => {}
        }
    }
    blocks
}

/// Whether a README line stands for the reader's own code: `…` in its code, or a comment that
/// holds one.
fn is_placeholder(line: &str) -> bool {
    let code = line.split("// ").next().unwrap_or(line);
    line.contains('…') && (code.contains('…') || code.trim().is_empty())
}

/// The lines of this file between `// README snippet {n}` and its end, trimmed, blank ones left
/// out.
fn region(source: &str, n: usize) -> Vec<&str> {
    let open = format!("// README snippet {n}");
    let close = format!("// end of README snippet {n}");
    source
        .lines()
        .map(str::trim)
        .skip_while(|line| *line != open)
        .skip(1)
        .take_while(|line| *line != close)
        .filter(|line| !line.is_empty())
        .collect()
}

/// Whether `segments` stand in `region` in order, each one's lines one after another.
fn stands_in(segments: &[Vec<&str>], region: &[&str]) -> Result<(), String> {
    let mut from = 0;
    for segment in segments.iter().filter(|segment| !segment.is_empty()) {
        let found = (from..=region.len().saturating_sub(segment.len()))
            .find(|&start| region[start..].starts_with(segment));
        match found {
            Some(start) => from = start + segment.len(),
            None => return Err(format!("not found here, in order:\n{}", segment.join("\n"))),
        }
    }
    Ok(())
}

#[test]
fn readme_snippets_are_here() {
    let readme = include_str!("../README.md");
    let source = include_str!("readme.rs");
    let blocks = readme_rust_blocks(readme);
    assert_eq!(
        blocks.len(),
        9,
        "a README Rust block added or removed: give it a region here"
    );
    for (index, block) in blocks.iter().enumerate() {
        let n = index + 1;
        let segments: Vec<Vec<&str>> = block
            .split(|line| is_placeholder(line))
            .map(<[&str]>::to_vec)
            .collect();
        let region = region(source, n);
        assert!(!region.is_empty(), "no region for README snippet {n}");
        if let Err(why) = stands_in(&segments, &region) {
            panic!("README snippet {n}: {why}");
        }
    }
}

#[test]
fn a_changed_readme_line_is_caught() {
    let source = include_str!("readme.rs");
    let region = region(source, 8);
    let edited = vec![vec!["let table = PriceTable::embedded();"]];
    assert!(stands_in(&edited, &region).is_err());
    let reordered = vec![
        vec!["let table = PriceTable::default();                       // embedded, dated table"],
        vec!["use cost_core::{PriceTable, ServiceTier, Usage};"],
    ];
    assert!(stands_in(&reordered, &region).is_err());
    assert!(is_placeholder(
        "fn step() -> Result<Reply, AgentError> { … }"
    ));
    assert!(is_placeholder("// … your code"));
    assert!(!is_placeholder(
        r#"let s = open("a")?; // or "postgres://…""#
    ));
}

#[test]
fn the_pricing_snippet_prices_as_its_comment_says() -> Outcome {
    snippet_8::main()
}
