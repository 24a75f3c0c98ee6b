//! Day-to-day benchmarks of the layer's hot paths (the overhead example prints the figures
//! the targets are stated in). `cargo bench -p cost-layer --bench layer`
//!
//! - `call/registry`, `call/registry+cost`: one LLM call span (usage fields declared `Empty`,
//!   recorded, closed) inside an open session → agent.
//! - `plain_span/…`: a span without usage fields, created and closed, inside a session.
//! - `enter_exit/…`: entering and exiting an existing call span.
//! - `macro/…`: `#[llm_call]` on a trivial sync fn against the same fn with a hand-written span
//!   (fields declared `Empty`, entered, usage recorded), all under the layer: `hand_written`
//!   declares the two token counts it records, `hand_written_same_fields` opens the macro's own
//!   span and records every token kind as the macro does, but one record per kind.

use std::hint::black_box;

use cost_layer::cost_core::Usage;
use cost_layer::{CostLayer, llm_call};
use criterion::{Criterion, criterion_group, criterion_main};
use tracing::field::Empty;
use tracing::{Dispatch, info_span};
use tracing_subscriber::prelude::*;

fn dispatches() -> [(&'static str, Dispatch); 2] {
    let (cost, _ledger) = CostLayer::builder().build();
    [
        ("registry", Dispatch::new(tracing_subscriber::registry())),
        (
            "registry+cost",
            Dispatch::new(tracing_subscriber::registry().with(cost)),
        ),
    ]
}

fn call(c: &mut Criterion) {
    let mut group = c.benchmark_group("call");
    for (name, dispatch) in dispatches() {
        tracing::dispatcher::with_default(&dispatch, || {
            let session = info_span!("session", session.id = "bench");
            let _s = session.enter();
            let agent = info_span!("agent", gen_ai.agent.name = "bench");
            let _a = agent.enter();
            group.bench_function(name, |b| {
                b.iter(|| {
                    let span = info_span!(
                        "chat",
                        gen_ai.request.model = "gpt-4o-mini",
                        gen_ai.usage.input_tokens = Empty,
                        gen_ai.usage.output_tokens = Empty,
                    );
                    span.record("gen_ai.usage.input_tokens", black_box(1_000));
                    span.record("gen_ai.usage.output_tokens", black_box(100));
                })
            });
        });
    }
    group.finish();
}

fn plain_span(c: &mut Criterion) {
    let mut group = c.benchmark_group("plain_span");
    for (name, dispatch) in dispatches() {
        tracing::dispatcher::with_default(&dispatch, || {
            let session = info_span!("session", session.id = "bench");
            let _s = session.enter();
            group.bench_function(name, |b| {
                b.iter(|| black_box(info_span!("tool", index = 1)))
            });
        });
    }
    group.finish();
}

fn enter_exit(c: &mut Criterion) {
    let mut group = c.benchmark_group("enter_exit");
    for (name, dispatch) in dispatches() {
        tracing::dispatcher::with_default(&dispatch, || {
            let span = info_span!(
                "chat",
                gen_ai.request.model = "gpt-4o",
                gen_ai.usage.input_tokens = Empty
            );
            group.bench_function(name, |b| {
                b.iter(|| {
                    let _entered = black_box(span.enter());
                })
            });
        });
    }
    group.finish();
}

#[llm_call(model = "gpt-4o-mini")]
fn with_macro(input: u64) -> Usage {
    Usage::new(input, 100)
}

fn hand_written(input: u64) -> Usage {
    let span = info_span!(
        "hand_written",
        gen_ai.request.model = "gpt-4o-mini",
        gen_ai.usage.input_tokens = Empty,
        gen_ai.usage.output_tokens = Empty,
    );
    let _entered = span.enter();
    let usage = Usage::new(input, 100);
    span.record("gen_ai.usage.input_tokens", usage.input);
    span.record("gen_ai.usage.output_tokens", usage.output);
    usage
}

/// The span `#[llm_call]` opens (the macro's own span definition, so the two stay the same
/// span), with each token kind recorded in turn on return as hand-written code would (the macro
/// records them in one record).
fn hand_written_same_fields(input: u64) -> Usage {
    let span = cost_layer::__llm_call_span!(
        krate = [cost_layer],
        level = tracing::Level::INFO,
        name = "hand_written_same_fields",
        model = ["gpt-4o-mini"],
        provider = [Empty],
        operation = ["chat"],
        otel_name = ["chat gpt-4o-mini"],
        feature = [Empty],
        agent = [Empty],
        service_tier = [Empty],
        data_residency = [Empty],
        search_context_size = [Empty],
        fields = []
    );
    let usage = span.in_scope(|| Usage::new(input, 100));
    span.record("gen_ai.usage.input_tokens", usage.input);
    span.record("gen_ai.usage.cache_read.input_tokens", usage.cache_read);
    span.record(
        "gen_ai.usage.cache_creation.input_tokens",
        usage.cache_write,
    );
    span.record("cost.usage.cache_write_1h_tokens", usage.cache_write_1h);
    span.record("gen_ai.usage.output_tokens", usage.output);
    span.record("gen_ai.usage.reasoning.output_tokens", usage.reasoning);
    span.record("cost.usage.audio_input_tokens", usage.audio_input);
    span.record("cost.usage.audio_output_tokens", usage.audio_output);
    span.record("cost.usage.cache_read_audio_tokens", usage.cache_read_audio);
    span.record("cost.usage.image_output_tokens", usage.image_output);
    span.record("cost.usage.web_search_requests", usage.web_search_requests);
    span.record("cost.usage.image_input_tokens", usage.image_input);
    span.record("cost.usage.cache_read_image_tokens", usage.cache_read_image);
    span.record("cost.usage.file_search_calls", usage.file_search_calls);
    span.record(
        "cost.usage.image_generation_calls",
        usage.image_generation_calls,
    );
    span.record(
        "cost.usage.code_interpreter_sessions",
        usage.code_interpreter_sessions,
    );
    usage
}

fn macro_vs_hand_written(c: &mut Criterion) {
    let mut group = c.benchmark_group("macro");
    let (cost, _ledger) = CostLayer::builder().build();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(cost));
    tracing::dispatcher::with_default(&dispatch, || {
        let session = info_span!("session", session.id = "bench");
        let _s = session.enter();
        group.bench_function("llm_call", |b| b.iter(|| with_macro(black_box(1_000))));
        group.bench_function("hand_written", |b| {
            b.iter(|| hand_written(black_box(1_000)))
        });
        group.bench_function("hand_written_same_fields", |b| {
            b.iter(|| hand_written_same_fields(black_box(1_000)))
        });
    });
    group.finish();
}

criterion_group!(benches, call, plain_span, enter_exit, macro_vs_hand_written);
criterion_main!(benches);
