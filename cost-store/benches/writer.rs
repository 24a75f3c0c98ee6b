//! Figures of the durable ledger: records per second through the writer into SQLite and into
//! PostgreSQL, and what attaching the writer adds to the layer's cost per call:
//!
//! - `writer_added_interleaved`: the steady state, lanes warm and drained as they fill. Bursts
//!   of 100 calls (a session each) run in turn under the layer alone, the layer with a sink that
//!   keeps nothing, and the layer with the writer into SQLite, each burst followed by a pause
//!   (about 90 000 calls a second reach the writer, a rate it keeps up with, far above any real
//!   program's LLM call rate). Each configuration's figure is the median of its bursts: taking
//!   turns, the three see the same machine, and the median leaves out the bursts a busy
//!   neighbour or a preemption slowed. On machines whose plain timings swing by tens of percent
//!   the difference still moves by some ten nanoseconds from run to run (24–39 over eight runs
//!   on one, 52–75 before the writer dated calls on its own thread, where timing the
//!   configurations one after the other read from −27 to 455), and more in a slow spell of the
//!   machine, which the layer-alone figure shows.
//! - `writer_added`: calls as fast as the thread can make them (1.5 million a second, faster
//!   than the store takes them): the backlog grows, and its fresh memory is part of the figure.
//! - `writer_added_enqueue_only`: the same with the writer asleep through the timed run.
//!
//! `cargo bench -p cost-store --bench writer` prints one JSON object per line,
//! `{"scenario": …, "value": …, "unit": …}`. PostgreSQL is the server of
//! `LLM_COST_TEST_POSTGRES` (default: loopback, database `test`); without one its figure is
//! skipped, and says so.
//!
//! `writer --only SCENARIO CALLS` (`layer`, `layer+empty_sink`, `layer+writer`) runs one
//! scenario's calls once, untimed, for `scripts/instructions` to count under callgrind.

#[path = "../../examples/support/interleaved.rs"]
mod interleaved;
#[path = "../../examples/support/only.rs"]
mod only;

use std::hint::black_box;
use std::time::Instant;

use cost_layer::CostLayer;
use cost_store::{WriterOptions, WriterSink};
use tracing::Dispatch;
use tracing::field::Empty;
use tracing_subscriber::prelude::*;

const CALLS: u64 = 200_000;

fn report(scenario: &str, value: f64, unit: &str) {
    println!("{{\"scenario\": \"{scenario}\", \"value\": {value:.1}, \"unit\": \"{unit}\"}}");
}

#[inline(never)]
fn one_call(i: u64) {
    let span = tracing::info_span!(
        "chat",
        gen_ai.request.model = "gpt-4o-mini",
        gen_ai.usage.input_tokens = Empty,
        gen_ai.usage.output_tokens = Empty,
    );
    span.record("gen_ai.usage.input_tokens", 1_000 + (i & 7));
    span.record("gen_ai.usage.output_tokens", 100);
}

/// ns per call of `calls` calls in sessions of 100 under `dispatch`.
fn calls(dispatch: &Dispatch, calls: u64) -> f64 {
    tracing::dispatcher::with_default(dispatch, || {
        let start = Instant::now();
        for s in 0..calls / 100 {
            let id = format!("s{s}");
            let session = tracing::info_span!("session", session.id = id.as_str());
            let _s = session.enter();
            for i in 0..100 {
                one_call(black_box(i));
            }
        }
        start.elapsed().as_nanos() as f64 / calls as f64
    })
}

fn with_sink(sink: Option<WriterSink>) -> Dispatch {
    let builder = CostLayer::builder();
    let builder = match sink {
        Some(sink) => builder.call_sink(sink),
        None => builder,
    };
    let (cost, _ledger) = builder.build();
    Dispatch::new(tracing_subscriber::registry().with(cost))
}

/// Records per second from the first call to the flush, through the writer into `store`.
fn throughput(address: &str) -> Result<f64, cost_store::StoreError> {
    let store = cost_store::open(address)?;
    let options = WriterOptions {
        capacity: CALLS as usize,
        ..WriterOptions::default()
    };
    let (sink, guard) = cost_store::spawn(store, options);
    let dispatch = with_sink(Some(sink));
    let start = Instant::now();
    calls(&dispatch, CALLS);
    guard.flush();
    let seconds = start.elapsed().as_secs_f64();
    Ok(guard.stats().written() as f64 / seconds)
}

/// Runs one scenario's calls once, untimed, for `scripts/instructions` to count under
/// callgrind: `layer`, `layer+empty_sink`, or `layer+writer` (the writer asleep and never
/// flushed, so that only the instrumented thread's side is counted). `false` when unknown.
fn run_only(scenario: &str, count: u64) -> bool {
    let dir = std::env::temp_dir().join(format!("llm-cost-only-{}", std::process::id()));
    let dispatch = match scenario {
        "layer" => with_sink(None),
        "layer+empty_sink" => {
            let (cost, _ledger) = CostLayer::builder().call_sink(Discard).build();
            Dispatch::new(tracing_subscriber::registry().with(cost))
        }
        "layer+writer" => {
            let _ = std::fs::create_dir_all(&dir);
            let path = dir.join("calls.jsonl");
            let store = cost_store::open(path.to_str().unwrap_or("calls.jsonl"))
                .unwrap_or_else(|e| panic!("{e}"));
            let options = WriterOptions {
                capacity: usize::try_from(count).unwrap_or(usize::MAX).max(1),
                poll: std::time::Duration::from_secs(3_600),
                ..WriterOptions::default()
            };
            let (sink, guard) = cost_store::spawn(store, options);
            // Never flushed: the writer's work is not the instrumented thread's.
            std::mem::forget(guard);
            with_sink(Some(sink))
        }
        _ => return false,
    };
    counted_work(&dispatch, count);
    let _ = std::fs::remove_dir_all(&dir);
    true
}

/// The work `scripts/instructions` counts (callgrind's `--toggle-collect`): building the layer
/// and the writer, and the monotonic clock's calibration there, are left out.
#[inline(never)]
fn counted_work(dispatch: &Dispatch, count: u64) {
    calls(dispatch, count);
}

/// A sink that takes nothing: what handing calls to a sink costs the layer itself.
struct Discard;

impl cost_layer::CallSink for Discard {
    fn submit(&self, call: &cost_layer::ClosedCall<'_>) -> bool {
        black_box(call.span_id);
        true
    }
}

fn main() {
    if only::run_only_if_asked(run_only) {
        return;
    }
    let dir = std::env::temp_dir().join(format!("llm-cost-bench-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let sqlite = dir.join("bench.sqlite");
    let sqlite = sqlite.to_str().unwrap_or("bench.sqlite");

    // The layer alone, then with the writer attached (its thread on the other core).
    calls(&with_sink(None), 100_000);
    let alone = (0..3)
        .map(|_| calls(&with_sink(None), CALLS))
        .fold(f64::INFINITY, f64::min);
    let attached = (0..3)
        .map(|_| {
            let store = cost_store::open(sqlite).unwrap_or_else(|e| panic!("{e}"));
            let (sink, guard) = cost_store::spawn(
                store,
                WriterOptions {
                    capacity: CALLS as usize,
                    ..WriterOptions::default()
                },
            );
            let ns = calls(&with_sink(Some(sink)), CALLS);
            guard.flush();
            ns
        })
        .fold(f64::INFINITY, f64::min);
    let discard = (0..3)
        .map(|_| {
            let (cost, _ledger) = CostLayer::builder().call_sink(Discard).build();
            calls(
                &Dispatch::new(tracing_subscriber::registry().with(cost)),
                CALLS,
            )
        })
        .fold(f64::INFINITY, f64::min);
    report("layer+empty_sink", discard, "ns/op");
    // Interleaved: bursts of 100 calls (a session each), each followed by a pause.
    const TURNS: u64 = 3_000;
    const BURST: u64 = 100;
    const PAUSE: std::time::Duration = std::time::Duration::from_micros(300);
    // The layer alone, with a sink that keeps nothing, with the writer into SQLite.
    {
        let store = cost_store::open(sqlite).unwrap_or_else(|e| panic!("{e}"));
        let (sink, guard) = cost_store::spawn(store, WriterOptions::default());
        let (cost, _ledger) = CostLayer::builder().call_sink(Discard).build();
        let empty_sink = Dispatch::new(tracing_subscriber::registry().with(cost));
        let configurations = [with_sink(None), empty_sink, with_sink(Some(sink))];
        let medians = interleaved::medians(configurations, TURNS, BURST, PAUSE, |turn| {
            let id = format!("s{turn}");
            let session = tracing::info_span!("session", session.id = id.as_str());
            let _entered = session.enter();
            for i in 0..BURST {
                one_call(black_box(i));
            }
        });
        guard.flush();
        let written = guard.stats().written();
        if written != 2 * TURNS * BURST {
            eprintln!(
                "the writer kept {written} of {} calls: it did not keep up",
                2 * TURNS * BURST
            );
        }
        report("layer_interleaved", medians[0], "ns/op");
        report("layer+empty_sink_interleaved", medians[1], "ns/op");
        report("layer+writer_interleaved", medians[2], "ns/op");
        report(
            "empty_sink_added_interleaved",
            medians[1] - medians[0],
            "ns/op",
        );
        report("writer_added_interleaved", medians[2] - medians[0], "ns/op");
    }
    // The writer asleep through the timed run (it drains afterwards): what handing a call to
    // it costs the instrumented thread, without its own work competing for the other core.
    let enqueue_only = (0..3)
        .map(|_| {
            let store = cost_store::open(sqlite).unwrap_or_else(|e| panic!("{e}"));
            let options = WriterOptions {
                capacity: CALLS as usize,
                poll: std::time::Duration::from_secs(2),
                ..WriterOptions::default()
            };
            let (sink, guard) = cost_store::spawn(store, options);
            let ns = calls(&with_sink(Some(sink)), CALLS);
            guard.flush();
            ns
        })
        .fold(f64::INFINITY, f64::min);
    report("layer", alone, "ns/op");
    report("layer+writer", attached, "ns/op");
    report("writer_added", attached - alone, "ns/op");
    report("layer+writer_enqueue_only", enqueue_only, "ns/op");
    report("writer_added_enqueue_only", enqueue_only - alone, "ns/op");

    match throughput(sqlite) {
        Ok(rate) => report("sqlite_records_per_second", rate, "records/s"),
        Err(e) => eprintln!("sqlite: {e}"),
    }
    let postgres = std::env::var("LLM_COST_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    // A schema of its own, dropped afterwards.
    let schema = format!("llm_cost_bench_{}", std::process::id());
    match postgres::Client::connect(&postgres, postgres::NoTls) {
        Ok(mut admin) => {
            let _ = admin.batch_execute(&format!("CREATE SCHEMA {schema}"));
            let separator = if postgres.contains('?') { '&' } else { '?' };
            let url = format!("{postgres}{separator}options=-c%20search_path%3D{schema}");
            match throughput(&url) {
                Ok(rate) => report("postgres_records_per_second", rate, "records/s"),
                Err(e) => eprintln!("postgres: {e}"),
            }
            let _ = admin.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"));
        }
        Err(e) => eprintln!("SKIPPED postgres_records_per_second: {e}"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}
