//! Soak: many calls on random span trees, with bad values, cache hits, unknown models and
//! panicking callbacks, on several threads, under retention; the ledger's totals (global, by
//! model, by agent × model) are checked against an independent computation at the end, with
//! the number of its keys, and resident memory is printed as it goes.
//!
//! `cargo run --release --example soak` runs 50 million calls over 1 million sessions on 2
//! threads (several minutes); `-- --calls N --sessions S --threads T` changes the shape. A
//! short run is part of the test suite (`tests/soak.rs`).

#[path = "support/memory.rs"]
mod memory;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cost_core::Money;
use cost_layer::{CostLayer, Dimension, Ledger, LedgerKey, Retention, Scope};
use tracing::field::Empty;
use tracing::info_span;
use tracing_subscriber::prelude::*;

/// The shape of a run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shape {
    pub(crate) calls: u64,
    pub(crate) sessions: u64,
    pub(crate) threads: u64,
    /// Print resident memory this many times during the run (0: never).
    pub(crate) reports: u64,
}

/// The models calls name, with their prices in USD per million tokens (input, output) as the
/// reference knows them; `None` for a model the price table does not know.
const MODELS: [(&str, Option<(&str, &str)>); 4] = [
    ("gpt-4o", Some(("2.50", "10.00"))),
    ("gpt-4o-mini", Some(("0.15", "0.60"))),
    ("claude-sonnet-4-5", Some(("3.00", "15.00"))),
    ("acme-llm-9000", None),
];

/// Closed sessions the ledger keeps.
const KEPT_SESSIONS: usize = 10_000;

/// The one agent name calls run under (when they run under an agent).
const AGENT: &str = "worker";

/// What the reference expects of one model's calls (priced or not).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ModelExpected {
    pub(crate) llm_calls: u64,
    pub(crate) cost_units: i128,
    /// Of those, the calls under the agent, and their cost.
    pub(crate) agent_calls: u64,
    pub(crate) agent_cost_units: i128,
}

/// What the reference computation expects, summed without the layer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Expected {
    pub(crate) cost_units: i128,
    pub(crate) llm_calls: u64,
    pub(crate) unpriced_calls: u64,
    pub(crate) rejected_calls: u64,
    pub(crate) cache_hits: u64,
    pub(crate) input_tokens: u64,
    pub(crate) output_tokens: u64,
    pub(crate) panicking_sessions: u64,
    /// By model, in the order of [`MODELS`].
    pub(crate) by_model: [ModelExpected; MODELS.len()],
}

impl Expected {
    fn add(&mut self, other: &Expected) {
        self.cost_units += other.cost_units;
        self.llm_calls += other.llm_calls;
        self.unpriced_calls += other.unpriced_calls;
        self.rejected_calls += other.rejected_calls;
        self.cache_hits += other.cache_hits;
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.panicking_sessions += other.panicking_sessions;
        for (mine, theirs) in self.by_model.iter_mut().zip(&other.by_model) {
            mine.llm_calls += theirs.llm_calls;
            mine.cost_units += theirs.cost_units;
            mine.agent_calls += theirs.agent_calls;
            mine.agent_cost_units += theirs.agent_cost_units;
        }
    }
}

/// SplitMix64: a small, fast, deterministic generator (the run repeats exactly).
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Price per token in units of 10⁻²⁴ USD, from a per-million price.
fn per_token(per_million: &str) -> i128 {
    Money::from_decimal(per_million).map_or(0, |m| m.units()) / 1_000_000
}

/// One call under the current span (`under_agent`: inside the agent); returns what the
/// reference expects of it.
fn call(random: &mut Random, under_agent: bool) -> Expected {
    let which = random.below(MODELS.len() as u64) as usize;
    let (model, prices) = MODELS[which];
    let input = 1 + random.below(20_000);
    let output = 1 + random.below(2_000);
    let span = info_span!(
        "chat",
        gen_ai.request.model = model,
        gen_ai.usage.input_tokens = Empty,
        gen_ai.usage.output_tokens = Empty,
        llm.cache.hit = Empty,
    );
    let mut expected = Expected::default();
    match random.below(100) {
        // A bad value: a negative count, or text.
        0 => {
            span.record("gen_ai.usage.input_tokens", -5_i64);
            span.record("gen_ai.usage.output_tokens", output);
            expected.rejected_calls = 1;
        }
        1 => {
            span.record("gen_ai.usage.input_tokens", "many");
            span.record("gen_ai.usage.output_tokens", output);
            expected.rejected_calls = 1;
        }
        // Answered from the application's cache.
        2 | 3 => {
            span.record("llm.cache.hit", true);
            span.record("gen_ai.usage.input_tokens", input);
            span.record("gen_ai.usage.output_tokens", output);
            expected.cache_hits = 1;
        }
        _ => {
            // Streaming clients record running totals: a first, smaller value is overwritten.
            if random.below(4) == 0 {
                span.record("gen_ai.usage.output_tokens", output / 2);
            }
            span.record("gen_ai.usage.input_tokens", input);
            span.record("gen_ai.usage.output_tokens", output);
            expected.llm_calls = 1;
            expected.input_tokens = input;
            expected.output_tokens = output;
            match prices {
                Some((i, o)) => {
                    expected.cost_units =
                        i128::from(input) * per_token(i) + i128::from(output) * per_token(o);
                }
                None => expected.unpriced_calls = 1,
            }
            let by_model = &mut expected.by_model[which];
            by_model.llm_calls = 1;
            by_model.cost_units = expected.cost_units;
            if under_agent {
                by_model.agent_calls = 1;
                by_model.agent_cost_units = expected.cost_units;
            }
        }
    }
    expected
}

/// One thread's sessions: random trees of agents and tool spans around the calls.
fn sessions(thread: u64, sessions: u64, calls: u64, progress: &AtomicU64) -> Expected {
    let mut random = Random(0x5EED ^ thread);
    let mut expected = Expected::default();
    let per_session = (calls / sessions.max(1)).max(1);
    for index in 0..sessions {
        let id = format!("t{thread}-s{index}");
        // The callback registered by `run` panics on these sessions.
        let panics = index % 1_000 == 7;
        let session = info_span!("session", session.id = id.as_str());
        let _session = session.enter();
        expected.panicking_sessions += u64::from(panics);
        let mut done = 0;
        while done < per_session {
            let agent =
                (random.below(2) == 0).then(|| info_span!("agent", gen_ai.agent.name = AGENT));
            let _agent = agent.as_ref().map(|a| a.enter());
            let tool = (random.below(3) == 0).then(|| info_span!("tool", step = done));
            let _tool = tool.as_ref().map(|t| t.enter());
            for _ in 0..(1 + random.below(4)).min(per_session - done) {
                expected.add(&call(&mut random, agent.is_some()));
                done += 1;
            }
        }
        progress.fetch_add(done, Ordering::Relaxed);
    }
    expected
}

/// Runs `shape`; returns the reference's expectation and the ledger.
pub(crate) fn run(shape: Shape) -> (Expected, Ledger) {
    let (cost, ledger) = CostLayer::builder()
        .retention(Retention {
            max_closed_sessions: Some(KEPT_SESSIONS),
            ttl: None,
            ..Retention::default()
        })
        // Kept with each session and evicted with it; the agent's kept (a few keys, far below
        // `Retention::max_keys`).
        .combination(Dimension::Session, Dimension::Model)
        .combination(Dimension::Agent, Dimension::Model)
        .on_close_filtered(
            |close| close.scope == Scope::Session,
            |close| {
                // A user callback that panics on some sessions: caught and counted.
                if close.name == "session"
                    && close.attribution.session.as_deref().is_some_and(|s| {
                        s.rsplit_once("-s")
                            .and_then(|(_, i)| i.parse::<u64>().ok())
                            .is_some_and(|i| i % 1_000 == 7)
                    })
                {
                    panic!("a callback that panics on this session");
                }
            },
        )
        .build();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(cost));
    let progress = Arc::new(AtomicU64::new(0));
    let per_thread_sessions = shape.sessions / shape.threads.max(1);
    let per_thread_calls = shape.calls / shape.threads.max(1);
    let expected = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..shape.threads)
            .map(|thread| {
                let dispatch = dispatch.clone();
                let progress = Arc::clone(&progress);
                scope.spawn(move || {
                    tracing::dispatcher::with_default(&dispatch, || {
                        sessions(thread, per_thread_sessions, per_thread_calls, &progress)
                    })
                })
            })
            .collect();
        if let Some(step) = shape.calls.checked_div(shape.reports) {
            let step = step.max(1);
            let mut next = step;
            while workers.iter().any(|w| !w.is_finished()) {
                let done = progress.load(Ordering::Relaxed);
                if done >= next {
                    println!(
                        "{{\"calls\": {done}, \"rss_mib\": {:.1}, \"ledger_keys\": {}}}",
                        memory::resident_mib(),
                        ledger.len()
                    );
                    next += step;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
        let mut expected = Expected::default();
        for worker in workers {
            match worker.join() {
                Ok(part) => expected.add(&part),
                Err(_) => panic!("a soak thread panicked"),
            }
        }
        expected
    });
    (expected, ledger)
}

/// Compares the ledger with the reference; the differences, if any.
pub(crate) fn check(expected: &Expected, ledger: &Ledger) -> Vec<String> {
    let global = ledger.global();
    let diagnostics = ledger.diagnostics();
    let counts: [(&str, u64, u64); 8] = [
        ("llm calls", global.llm_calls, expected.llm_calls),
        (
            "unpriced calls",
            global.unpriced_calls,
            expected.unpriced_calls,
        ),
        (
            "rejected calls",
            global.rejected_calls,
            expected.rejected_calls,
        ),
        ("cache hits", global.cache_hits, expected.cache_hits),
        ("input tokens", global.usage.input, expected.input_tokens),
        ("output tokens", global.usage.output, expected.output_tokens),
        (
            "callback panics",
            diagnostics.callback_panics,
            expected.panicking_sessions,
        ),
        (
            "rejected calls counted",
            diagnostics.rejected_calls,
            expected.rejected_calls,
        ),
    ];
    let cost = (
        "cost (10⁻²⁴ USD)",
        global.total_usd().units(),
        expected.cost_units,
    );
    let mut problems: Vec<String> = counts
        .iter()
        .map(|&(what, got, want)| (what.to_owned(), i128::from(got), i128::from(want)))
        .chain([(cost.0.to_owned(), cost.1, cost.2)])
        .filter(|(_, got, want)| got != want)
        .map(|(what, got, want)| format!("{what}: ledger {got}, reference {want}"))
        .collect();
    for ((model, _), want) in MODELS.iter().zip(&expected.by_model) {
        let of = |key: LedgerKey| {
            ledger
                .get(&key)
                .map_or((0, 0), |t| (t.llm_calls, t.total_usd().units()))
        };
        let by_model = of(LedgerKey::one(Dimension::Model, model));
        let by_agent = of(LedgerKey::two(
            (Dimension::Agent, AGENT),
            (Dimension::Model, model),
        ));
        if by_model != (want.llm_calls, want.cost_units) {
            problems.push(format!(
                "model {model} (calls, cost units): ledger {by_model:?}, reference {:?}",
                (want.llm_calls, want.cost_units)
            ));
        }
        if by_agent != (want.agent_calls, want.agent_cost_units) {
            problems.push(format!(
                "agent × model {model} (calls, cost units): ledger {by_agent:?}, reference {:?}",
                (want.agent_calls, want.agent_cost_units)
            ));
        }
    }
    // Kept sessions, each with at most one key per model (session × model), and the keys of
    // the models, the agent and agent × model.
    let most = KEPT_SESSIONS * (1 + MODELS.len()) + 1 + 2 * MODELS.len();
    if ledger.len() > most {
        problems.push(format!(
            "ledger keys: {}, more than the {most} retention allows",
            ledger.len()
        ));
    }
    problems
}

fn main() {
    let mut shape = Shape {
        calls: 50_000_000,
        sessions: 1_000_000,
        threads: 2,
        reports: 10,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).and_then(|v| v.parse().ok());
        match (pair[0].as_str(), value) {
            ("--calls", Some(v)) => shape.calls = v,
            ("--sessions", Some(v)) => shape.sessions = v,
            ("--threads", Some(v)) => shape.threads = v,
            _ => {
                eprintln!("usage: soak [--calls N] [--sessions S] [--threads T]");
                std::process::exit(2);
            }
        }
    }
    // The panicking callback would print each panic; the count is what matters.
    std::panic::set_hook(Box::new(|_| {}));
    let start = std::time::Instant::now();
    let (expected, ledger) = run(shape);
    let problems = check(&expected, &ledger);
    println!(
        "{{\"calls\": {}, \"seconds\": {:.1}, \"rss_mib\": {:.1}, \"total_usd\": \"{}\", \"evictions\": {}, \"exact\": {}}}",
        shape.calls,
        start.elapsed().as_secs_f64(),
        memory::resident_mib(),
        ledger.global().total_usd(),
        ledger.diagnostics().evictions,
        problems.is_empty()
    );
    for problem in &problems {
        eprintln!("mismatch: {problem}");
    }
    if !problems.is_empty() {
        std::process::exit(1);
    }
}
