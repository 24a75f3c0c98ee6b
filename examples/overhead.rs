//! What the layer costs the instrumented program, in figures.
//!
//! `cargo run --release --example overhead` (about 15 s on 2 cores)
//!
//! Prints one JSON object per line: `{"scenario": …, "value": …, "unit": …}`.
//!
//! The subscribers compared with each other (the call shape's six, enter/exit's two, plain
//! spans' four) take turns: short bursts of the same work run under each in turn, and each
//! one's figure is the median of its bursts (`support/interleaved.rs`). Timed apart, the same
//! subscriber's figure moves by tens of percent from one run to the next on a shared machine;
//! taking turns, the differences between subscribers hold to about ten percent (a small
//! difference, such as a plain span's few nanoseconds, moves more).
//!
//! `overhead --only SCENARIO CALLS` runs one scenario's work `CALLS` times, untimed, for
//! `scripts/instructions` to count its instructions under callgrind (figures that do not move
//! with the machine's load).
//!
//! - `registry`, `registry+cost`, `registry+otel`: one LLM call inside an open session → agent:
//!   a span with the usage fields declared `Empty`, the usage recorded, the span closed.
//!   `registry+otel` runs `tracing-opentelemetry` with a tracer provider that exports nothing.
//! - `registry+noop_layer`: the registry under a layer that does nothing. A bare registry never
//!   frees a closed span's slot (the layer stack drives that), so it skips work any real
//!   subscriber does; `cost_added_over_noop_layer` and `plain_span_cost_over_noop_layer` are
//!   what this layer's own callbacks cost.
//! - `registry+record_layer`: the registry under the least a layer keeping per-span state does:
//!   a small record in each span's extensions, found again on every record and at close, and
//!   rolled up into its parent's. `record_layer_added` is the floor of any layer built that way
//!   (this one included), whatever it computes. `registry+side_table_layer`: the same state in
//!   a concurrent map beside the registry, keyed by span id; `side_table_layer_added` is the
//!   floor of a layer built that way. `registry+side_table_publishing_layer`: the same, also
//!   putting each span's totals (a `Totals`) in its extensions at close, where other layers
//!   read them: the floor of such a layer that keeps that promise.
//! - `cost_added`, `otel_added`: the two layers' cost over the registry alone, per call;
//!   `cost_cheaper_than_otel`: the second over the first.
//! - `registry+cost+otel`: both layers, this one inside, its cost attributes on the exported
//!   spans (`otel_span_attributes`); `cost_added_to_otel`: what it adds to `registry+otel`.
//! - `enter_exit`, `enter_exit+cost`: entering and exiting an existing span.
//! - `plain_span`, `plain_span+cost`: a span with no usage fields, created and closed.
//!   `plain_span+close_lookup_layer`: under a layer that only looks each closing span up (what
//!   a layer reading the closing span's callsite pays; this one keeps the ids of its own open
//!   spans and does not look others up).
//! - `one_thread`, `two_threads_distinct`: the call shape with the layer; wall time divided by
//!   all calls of all threads, each thread on its own sessions; under the global default
//!   dispatcher, as programs install theirs. `…_scoped`: the same under a scoped dispatcher
//!   (`with_default`), where every span also writes the dispatcher's shared reference count.
//!   `…_noop_layer`: the same under the no-op layer (from a second run of this program, the
//!   global default being set once a process): how far the registry itself scales on this
//!   machine, the ceiling of `two_threads_speedup`.
//! - `rss_after_1m_calls`, `rss_after_10m_calls` (MiB): resident memory after that many calls
//!   spread over 100 000 sessions, retention 10 000 closed sessions.

#[path = "support/interleaved.rs"]
mod interleaved;
#[path = "support/memory.rs"]
mod memory;
#[path = "support/only.rs"]
mod only;

use std::hint::black_box;
use std::time::{Duration, Instant};

use cost_layer::{CostLayer, Retention};
use opentelemetry::trace::TracerProvider as _;
use tracing::field::Empty;
use tracing::{Dispatch, info_span};
use tracing_subscriber::prelude::*;

const CALLS: u64 = 500_000;
const CALLS_PER_SESSION: u64 = 100;

fn report(scenario: &str, value: f64, unit: &str) {
    println!("{{\"scenario\": \"{scenario}\", \"value\": {value:.1}, \"unit\": \"{unit}\"}}");
}

/// One LLM call, the shape `#[llm_call]` produces.
#[inline(never)]
fn one_call(i: u64) {
    let span = info_span!(
        "chat",
        gen_ai.request.model = "gpt-4o-mini",
        gen_ai.usage.input_tokens = Empty,
        gen_ai.usage.output_tokens = Empty,
    );
    span.record("gen_ai.usage.input_tokens", 1_000 + (i & 7));
    span.record("gen_ai.usage.output_tokens", 100);
}

/// `calls` calls in sessions of `CALLS_PER_SESSION`, each session with one agent; ns per call.
fn calls_in_sessions(dispatch: &Dispatch, thread: u64, calls: u64) -> f64 {
    tracing::dispatcher::with_default(dispatch, || calls_in_sessions_here(thread, calls))
}

/// The same under the dispatcher in effect (the global default, for the thread scenarios).
fn calls_in_sessions_here(thread: u64, calls: u64) -> f64 {
    {
        let start = Instant::now();
        let mut done = 0;
        let mut session_index = 0;
        while done < calls {
            let id = format!("t{thread}-s{session_index}");
            session_index += 1;
            let session = info_span!("session", session.id = id.as_str());
            let _s = session.enter();
            let agent = info_span!("agent", gen_ai.agent.name = "worker");
            let _a = agent.enter();
            for _ in 0..CALLS_PER_SESSION.min(calls - done) {
                one_call(done);
                done += 1;
            }
        }
        start.elapsed().as_nanos() as f64 / calls as f64
    }
}

fn registry() -> Dispatch {
    Dispatch::new(tracing_subscriber::registry())
}

/// A layer that does nothing.
struct NoopLayer;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for NoopLayer {}

/// The registry under a layer that does nothing. A bare registry never frees a closed span's
/// slot (freeing is driven by the layer stack), so it skips work every real subscriber does;
/// this baseline does it, and what a layer adds over it is that layer's own work.
fn registry_noop() -> Dispatch {
    Dispatch::new(tracing_subscriber::registry().with(NoopLayer))
}

/// The least a layer keeping per-span state does: a record per span in its extensions (the
/// nearest recorded ancestor found at creation), looked up on every record, and rolled up into
/// the parent's at close.
struct RecordLayer;

struct SpanState {
    parent: Option<tracing::span::Id>,
    records: u64,
}

impl<S> tracing_subscriber::Layer<S> for RecordLayer
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        _: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let Some(span) = ctx.span(id) else { return };
        let parent = span
            .parent()
            .filter(|p| p.extensions().get::<SpanState>().is_some())
            .map(|p| p.id());
        span.extensions_mut()
            .insert(SpanState { parent, records: 0 });
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        _: &tracing::span::Record<'_>,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if let Some(span) = ctx.span(id)
            && let Some(state) = span.extensions_mut().get_mut::<SpanState>()
        {
            state.records += 1;
        }
    }

    fn on_close(&self, id: tracing::span::Id, ctx: tracing_subscriber::layer::Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let extensions = span.extensions();
        let Some(state) = extensions.get::<SpanState>() else {
            return;
        };
        if let Some(parent) = state.parent.as_ref().and_then(|p| ctx.span(p))
            && let Some(parent_state) = parent.extensions_mut().get_mut::<SpanState>()
        {
            parent_state.records += state.records;
        }
    }
}

fn registry_record_layer() -> Dispatch {
    Dispatch::new(tracing_subscriber::registry().with(RecordLayer))
}

/// The same state kept beside the registry instead of in its extensions: a concurrent map from
/// span id to record (a `DashMap` hashing the id with one multiplication), with the nearest
/// recorded ancestor taken from the span's explicit parent or the current span, as the registry
/// does. Its floor is what a layer built that way could spare of `record_layer_added`.
struct SideTableLayer {
    records: dashmap::DashMap<u64, SpanState, std::hash::BuildHasherDefault<IdHasher>>,
    /// At close, also put the span's totals (a [`cost_layer::Totals`]) in its extensions, where
    /// other layers read them.
    publish_at_close: bool,
}

/// Hashes a span id (a `u64`) with one multiplication.
#[derive(Default)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(byte)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

impl<S> tracing_subscriber::Layer<S> for SideTableLayer
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let parent = if attrs.is_contextual() {
            ctx.current_span().id().cloned()
        } else {
            attrs.parent().cloned()
        }
        .filter(|p| self.records.contains_key(&p.into_u64()));
        self.records
            .insert(id.into_u64(), SpanState { parent, records: 0 });
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        _: &tracing::span::Record<'_>,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if let Some(mut state) = self.records.get_mut(&id.into_u64()) {
            state.records += 1;
        }
    }

    fn on_close(&self, id: tracing::span::Id, ctx: tracing_subscriber::layer::Context<'_, S>) {
        let Some((_, state)) = self.records.remove(&id.into_u64()) else {
            return;
        };
        if let Some(parent) = state.parent
            && let Some(mut parent_state) = self.records.get_mut(&parent.into_u64())
        {
            parent_state.records += state.records;
        }
        if self.publish_at_close
            && let Some(span) = ctx.span(&id)
        {
            let totals = cost_layer::Totals {
                llm_calls: state.records,
                ..Default::default()
            };
            span.extensions_mut().replace(totals);
        }
    }
}

fn registry_side_table_layer(publish_at_close: bool) -> Dispatch {
    Dispatch::new(tracing_subscriber::registry().with(SideTableLayer {
        records: dashmap::DashMap::default(),
        publish_at_close,
    }))
}

/// The least a layer that acts on closes does to a span it keeps nothing for: look it up in
/// `on_close` to read its callsite.
struct CloseLookupLayer;

impl<S> tracing_subscriber::Layer<S> for CloseLookupLayer
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_close(&self, id: tracing::span::Id, ctx: tracing_subscriber::layer::Context<'_, S>) {
        if let Some(span) = ctx.span(&id) {
            black_box(span.metadata());
        }
    }
}

fn with_cost() -> Dispatch {
    let (cost, _ledger) = CostLayer::builder().build();
    Dispatch::new(tracing_subscriber::registry().with(cost))
}

fn with_otel() -> Dispatch {
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer("overhead"));
    Dispatch::new(tracing_subscriber::registry().with(otel))
}

/// This layer (with its cost attributes on the OpenTelemetry spans) inside
/// `tracing-opentelemetry`, whose tracer provider exports nothing.
fn with_cost_and_otel() -> Dispatch {
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let (cost, _ledger) = CostLayer::builder().otel_span_attributes(true).build();
    let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer("overhead"));
    Dispatch::new(tracing_subscriber::registry().with(cost).with(otel))
}

/// The best of `runs` runs, to keep a noisy neighbour out of the figure (for the thread
/// scenarios, which measure one subscriber at a time: they cannot take turns).
fn best_of(runs: usize, mut f: impl FnMut() -> f64) -> f64 {
    (0..runs).map(|_| f()).fold(f64::INFINITY, f64::min)
}

/// `calls` enters and exits of an existing call span, in a session.
fn enter_exit(calls: u64) {
    let session = info_span!("session", session.id = "s");
    let _s = session.enter();
    let span = info_span!(
        "chat",
        gen_ai.request.model = "gpt-4o",
        gen_ai.usage.input_tokens = Empty
    );
    for _ in 0..calls {
        let _entered = black_box(span.enter());
    }
}

/// `calls` spans with no usage field, created and closed, in a session.
fn plain_span(calls: u64) {
    let session = info_span!("session", session.id = "s");
    let _s = session.enter();
    for i in 0..calls {
        black_box(info_span!("tool", index = i));
    }
}

/// Runs one scenario's work once, `calls` times, untimed: what `scripts/instructions` counts
/// under callgrind. `false` for an unknown scenario.
fn run_only(scenario: &str, calls: u64) -> bool {
    let dispatch = match scenario {
        "registry" | "plain_span" | "enter_exit" => registry(),
        "registry+noop_layer" | "plain_span+noop_layer" => registry_noop(),
        "plain_span+close_lookup_layer" => {
            Dispatch::new(tracing_subscriber::registry().with(CloseLookupLayer))
        }
        "registry+record_layer" => registry_record_layer(),
        "registry+side_table_layer" => registry_side_table_layer(false),
        "registry+side_table_publishing_layer" => registry_side_table_layer(true),
        "registry+cost" | "plain_span+cost" | "enter_exit+cost" => with_cost(),
        "registry+otel" => with_otel(),
        "registry+cost+otel" => with_cost_and_otel(),
        _ => return false,
    };
    counted_work(scenario, &dispatch, calls);
    true
}

/// The work `scripts/instructions` counts (callgrind's `--toggle-collect`): building the
/// subscriber, and a clock's calibration there, are left out.
#[inline(never)]
fn counted_work(scenario: &str, dispatch: &Dispatch, calls: u64) {
    if scenario.starts_with("plain_span") {
        tracing::dispatcher::with_default(dispatch, || plain_span(calls));
    } else if scenario.starts_with("enter_exit") {
        tracing::dispatcher::with_default(dispatch, || enter_exit(calls));
    } else {
        calls_in_sessions(dispatch, 0, calls);
    }
}

/// `CALLS` calls on each of two threads, each on its own sessions, under `scoped` (else the
/// global default dispatcher); ns per call of either thread.
fn two_threads(scoped: Option<&Dispatch>) -> f64 {
    let start = Instant::now();
    std::thread::scope(|scope| {
        for thread in 0..2 {
            let dispatch = scoped.cloned();
            scope.spawn(move || match dispatch {
                Some(dispatch) => calls_in_sessions(&dispatch, thread, CALLS),
                None => calls_in_sessions_here(thread, CALLS),
            });
        }
    });
    start.elapsed().as_nanos() as f64 / (2 * CALLS) as f64
}

/// Installs `dispatch` as the global default and reports `one_thread{suffix}`,
/// `two_threads_distinct{suffix}` and `two_threads_speedup{suffix}` under it (nothing when a
/// global default was already set).
fn report_threads(suffix: &str, dispatch: Dispatch) {
    if tracing::dispatcher::set_global_default(dispatch).is_err() {
        eprintln!("a global default dispatcher was already set: no thread figures{suffix}");
        return;
    }
    let one = best_of(2, || calls_in_sessions_here(0, CALLS));
    let two = best_of(2, || two_threads(None));
    report(&format!("one_thread{suffix}"), one, "ns/op");
    report(&format!("two_threads_distinct{suffix}"), two, "ns/op");
    report(&format!("two_threads_speedup{suffix}"), one / two, "x");
}

/// The argument under which this program only reports the thread figures under the no-op layer.
const THREADS_UNDER_NOOP_LAYER: &str = "--threads-under-noop-layer";

/// Runs this program again with [`THREADS_UNDER_NOOP_LAYER`]; its lines go to this one's output.
fn threads_under_noop_layer_in_child() {
    let status = std::env::current_exe().and_then(|exe| {
        std::process::Command::new(exe)
            .arg(THREADS_UNDER_NOOP_LAYER)
            .status()
    });
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => {
            eprintln!("the run for the thread figures under the no-op layer failed: {status}")
        }
        Err(error) => eprintln!(
            "could not run this program again for the thread figures under the no-op layer: {error}"
        ),
    }
}

fn main() {
    if only::run_only_if_asked(run_only) {
        return;
    }
    if std::env::args().any(|arg| arg == THREADS_UNDER_NOOP_LAYER) {
        calls_in_sessions(&registry_noop(), 0, 100_000);
        report_threads("_noop_layer", registry_noop());
        return;
    }
    // Warm up allocator, caches and the price table.
    calls_in_sessions(&with_cost(), 0, 100_000);

    // The call shape: bursts of a session with an agent and 100 calls, under each subscriber in
    // turn.
    let call_shape = [
        registry(),
        registry_noop(),
        registry_record_layer(),
        registry_side_table_layer(false),
        registry_side_table_layer(true),
        with_cost(),
        with_otel(),
        with_cost_and_otel(),
    ];
    let [
        registry_ns,
        noop_ns,
        record_ns,
        side_table_ns,
        publishing_ns,
        cost_ns,
        otel_ns,
        cost_otel_ns,
    ] = interleaved::medians(
        call_shape,
        3_000,
        CALLS_PER_SESSION,
        Duration::ZERO,
        |turn| {
            calls_in_sessions_here(turn, CALLS_PER_SESSION);
        },
    );
    report("registry", registry_ns, "ns/op");
    report("registry+noop_layer", noop_ns, "ns/op");
    report("registry+record_layer", record_ns, "ns/op");
    report("record_layer_added", record_ns - registry_ns, "ns/op");
    report("registry+side_table_layer", side_table_ns, "ns/op");
    report(
        "side_table_layer_added",
        side_table_ns - registry_ns,
        "ns/op",
    );
    report(
        "registry+side_table_publishing_layer",
        publishing_ns,
        "ns/op",
    );
    report(
        "side_table_publishing_layer_added",
        publishing_ns - registry_ns,
        "ns/op",
    );
    report("registry+cost", cost_ns, "ns/op");
    report("registry+otel", otel_ns, "ns/op");
    report("cost_added", cost_ns - registry_ns, "ns/op");
    report("cost_added_over_noop_layer", cost_ns - noop_ns, "ns/op");
    report("otel_added", otel_ns - registry_ns, "ns/op");
    report(
        "cost_cheaper_than_otel",
        (otel_ns - registry_ns) / (cost_ns - registry_ns),
        "x",
    );
    report("registry+cost+otel", cost_otel_ns, "ns/op");
    report("cost_added_to_otel", cost_otel_ns - otel_ns, "ns/op");

    // Enter and exit: bursts of 10 000 under each in turn (the span's creation, once per
    // burst, adds under 0.1 ns per operation).
    const ENTERS: u64 = 10_000;
    let enter_exit_pair = [registry(), with_cost()];
    let [enter_exit_ns, enter_exit_cost_ns] =
        interleaved::medians(enter_exit_pair, 300, ENTERS, Duration::ZERO, |_| {
            enter_exit(ENTERS)
        });
    report("enter_exit", enter_exit_ns, "ns/op");
    report("enter_exit+cost", enter_exit_cost_ns, "ns/op");

    // Plain spans: bursts of 10 000 in a session (its creation and close, a few µs under this
    // layer with the caches cold, add well under 1 ns per span).
    const PLAIN: u64 = 10_000;
    let plain = [
        registry(),
        registry_noop(),
        Dispatch::new(tracing_subscriber::registry().with(CloseLookupLayer)),
        with_cost(),
    ];
    let [plain_ns, plain_noop, plain_lookup, plain_cost] =
        interleaved::medians(plain, 300, PLAIN, Duration::ZERO, |_| plain_span(PLAIN));
    report("plain_span", plain_ns, "ns/op");
    report("plain_span+noop_layer", plain_noop, "ns/op");
    report("plain_span+close_lookup_layer", plain_lookup, "ns/op");
    report("plain_span+cost", plain_cost, "ns/op");
    report(
        "plain_span_close_lookup_over_noop_layer",
        plain_lookup - plain_noop,
        "ns/op",
    );
    report(
        "plain_span_cost_over_noop_layer",
        plain_cost - plain_noop,
        "ns/op",
    );

    // Threads: under the global default dispatcher, as programs install their subscriber
    // (`.init()`), and under a scoped one (`with_default`), where every span also clones and
    // drops the dispatcher's shared `Arc`, a reference count both threads write: `_scoped`
    // shows it. The global default can be set once a process: the same figures under the no-op
    // layer, the scaling the registry itself allows on this machine, come from a second run of
    // this program.
    let one_scoped = best_of(2, || calls_in_sessions(&with_cost(), 0, CALLS));
    let two_scoped = best_of(2, || two_threads(Some(&with_cost())));
    report_threads("", with_cost());
    report("one_thread_scoped", one_scoped, "ns/op");
    report("two_threads_distinct_scoped", two_scoped, "ns/op");
    report("two_threads_speedup_scoped", one_scoped / two_scoped, "x");
    threads_under_noop_layer_in_child();

    // Memory: 10 calls per session, 100 000 sessions per million calls, 10 000 kept.
    let (cost, ledger) = CostLayer::builder()
        .retention(Retention {
            max_closed_sessions: Some(10_000),
            ttl: None,
            ..Retention::default()
        })
        .build();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(cost));
    tracing::dispatcher::with_default(&dispatch, || {
        for round in 0..10_u64 {
            for s in 0..100_000_u64 {
                let id = format!("s{}", s + round * 100_000);
                let session = info_span!("session", session.id = id.as_str());
                let _s = session.enter();
                for i in 0..10 {
                    one_call(i);
                }
            }
            if round == 0 {
                report("rss_after_1m_calls", memory::resident_mib(), "MiB");
            }
        }
    });
    report("rss_after_10m_calls", memory::resident_mib(), "MiB");
    eprintln!(
        "ledger: {} keys, {} calls, {} evictions",
        ledger.len(),
        ledger.global().llm_calls,
        ledger.diagnostics().evictions
    );
}
