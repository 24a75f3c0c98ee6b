//! `stream::track_stream`: an `#[llm_call]` function that returns its provider's stream is
//! priced when the stream ends, from the usage its chunks carry, in the session and agent it
//! was made in; a stream dropped before its end is a call cancelled in flight.

#[path = "support/common.rs"]
mod common;
use common::{block_on, usd};

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use cost_layer::cost_core::Money;
#[path = "support/warnings.rs"]
mod warnings;

use cost_layer::cost_core::adapters::anthropic::StreamUsage;
use cost_layer::cost_core::adapters::openai::ChatCompletion;
use cost_layer::cost_core::budget::{
    Budget, BudgetBook, BudgetConfig, BudgetScope, ManualClock, Window,
};
use cost_layer::stream::{ChunkUsage, EachChunk, Stream};
use cost_layer::stream::{UsageStream, track_stream, track_stream_with};
use cost_layer::{CostLayer, Ledger, Scope, agent, llm_call, session};
use serde_json::{Value, json};
use tracing_subscriber::prelude::*;

/// A provider's stream: its chunks, each ready after one pending poll (a network read).
struct Chunks<T> {
    left: VecDeque<T>,
    waited: bool,
}

impl<T: Unpin> Stream for Chunks<T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        if !std::mem::replace(&mut self.waited, true) {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.waited = false;
        Poll::Ready(self.left.pop_front())
    }
}

fn chunks<T>(items: impl IntoIterator<Item = T>) -> Chunks<T> {
    Chunks {
        left: items.into_iter().collect(),
        waited: false,
    }
}

/// Polls `stream` to its end; returns how many chunks it gave.
fn drain<S: Stream>(stream: S) -> usize {
    let mut stream = std::pin::pin!(stream);
    let mut cx = Context::from_waker(Waker::noop());
    let mut count = 0;
    loop {
        match stream.as_mut().poll_next(&mut cx) {
            Poll::Ready(Some(_)) => count += 1,
            Poll::Ready(None) => return count,
            Poll::Pending => {}
        }
    }
}

/// OpenAI's chunks with `stream_options.include_usage`: text deltas, then a last chunk with
/// the usage and no choices.
fn openai_chunks(input: u64, output: u64) -> Vec<ChatCompletion> {
    let chunk = |usage: Value| -> ChatCompletion {
        serde_json::from_value(json!({
            "object": "chat.completion.chunk",
            "model": "gpt-4o-2024-08-06",
            "choices": [],
            "usage": usage,
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    };
    vec![
        chunk(Value::Null),
        chunk(Value::Null),
        chunk(json!({
            "prompt_tokens": input,
            "completion_tokens": output,
            "total_tokens": input + output,
        })),
    ]
}

#[llm_call(model = "gpt-4o", provider = "openai")]
fn chat_stream(input: u64, output: u64) -> UsageStream<Chunks<ChatCompletion>> {
    track_stream(chunks(openai_chunks(input, output)))
}

type Closed = Arc<Mutex<Vec<(&'static str, Scope, Money)>>>;

fn layer() -> (CostLayer, Ledger, Closed) {
    let closed: Closed = Arc::default();
    let sink = Arc::clone(&closed);
    let (layer, ledger) = CostLayer::builder()
        .on_close(move |c| {
            if let Ok(mut closed) = sink.lock() {
                closed.push((c.name, c.scope, c.totals.total_usd()));
            }
        })
        .build();
    (layer, ledger, closed)
}

#[test]
fn a_returned_stream_is_priced_when_it_ends_from_its_last_chunk() {
    let (layer, ledger, closed) = layer();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let stream = chat_stream(1_000, 100);
        // The function has returned; the call is still open, nothing charged.
        assert_eq!(ledger.model("gpt-4o"), None);
        assert!(closed.lock().map(|c| c.is_empty()).unwrap_or(false));
        assert_eq!(drain(stream), 3, "every chunk passes through");
    });
    // 1 000 input tokens at $2.50 and 100 output tokens at $10 per million.
    let totals = ledger.model("gpt-4o").unwrap_or_default();
    assert_eq!((totals.total_usd(), totals.llm_calls), (usd("0.0035"), 1));
    assert_eq!(ledger.diagnostics().calls_without_usage, 0);
}

/// Perplexity's Sonar streamed: its last chunk gives the usage and the search context size.
#[llm_call(model = "sonar", provider = "perplexity")]
fn sonar_stream() -> UsageStream<Chunks<ChatCompletion>> {
    let chunk = |usage: Value| -> ChatCompletion {
        serde_json::from_value(json!({
            "object": "chat.completion.chunk",
            "model": "sonar",
            "choices": [],
            "usage": usage,
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    };
    track_stream(chunks([
        chunk(Value::Null),
        chunk(json!({
            "prompt_tokens": 500, "completion_tokens": 200, "total_tokens": 700,
            "search_context_size": "high",
            "cost": {"request_cost": 0.012, "total_cost": 0.0127},
        })),
    ]))
}

#[test]
fn a_streamed_answer_is_charged_at_the_search_context_size_its_last_chunk_states() {
    let (layer, ledger, _closed) = layer();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        drain(sonar_stream());
    });
    // 700 tokens at $1 per million, and Sonar's request fee at high context: $0.012.
    let totals = ledger.model("sonar").unwrap_or_default();
    assert_eq!(totals.cost.web_search, usd("0.012"));
    assert_eq!(totals.total_usd(), usd("0.0127"));
    // The cost Perplexity reported in the chunk reached the call, and agrees.
    assert_eq!(ledger.diagnostics().bad_field_values, 0);
    assert_eq!(ledger.diagnostics().reported_cost_mismatches, 0);
}

/// The same stream whose last chunk reports another cost than the table's.
#[llm_call(model = "sonar", provider = "perplexity")]
fn sonar_stream_reporting(total_cost: f64) -> UsageStream<Chunks<ChatCompletion>> {
    let chunk: ChatCompletion = serde_json::from_value(json!({
        "object": "chat.completion.chunk",
        "model": "sonar",
        "choices": [],
        "usage": {"prompt_tokens": 500, "completion_tokens": 200, "total_tokens": 700,
                  "search_context_size": "high", "cost": {"total_cost": total_cost}},
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    track_stream(chunks([chunk]))
}

#[test]
fn a_streamed_answer_reporting_another_cost_is_counted() {
    let (layer, ledger, _closed) = layer();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        drain(sonar_stream_reporting(0.0127));
        drain(sonar_stream_reporting(0.0057));
    });
    assert_eq!(ledger.diagnostics().reported_cost_mismatches, 1);
}

/// A stream through OpenRouter of a model the table has no price for, whose last chunk says
/// what the call cost.
#[llm_call(model = "qwen/qwen-2.5-72b-instruct", provider = "openrouter")]
fn unknown_model_stream() -> UsageStream<Chunks<ChatCompletion>> {
    let chunk: ChatCompletion = serde_json::from_value(json!({
        "object": "chat.completion.chunk",
        "model": "qwen/qwen-2.5-72b-instruct",
        "choices": [],
        "usage": {"prompt_tokens": 1500, "completion_tokens": 100, "total_tokens": 1600,
                  "cost": 0.00029},
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    track_stream(chunks([chunk]))
}

#[test]
fn a_streamed_answer_of_an_unknown_model_is_charged_the_cost_its_last_chunk_reports() {
    let (layer, ledger) = CostLayer::builder()
        .charge_reported_cost_when_unpriced(true)
        .build();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        drain(unknown_model_stream());
    });
    let model = ledger
        .model("qwen/qwen-2.5-72b-instruct")
        .unwrap_or_default();
    assert_eq!(
        (
            model.llm_calls,
            model.provider_reported_calls,
            model.unpriced_calls,
            model.total_usd()
        ),
        (1, 1, 0, usd("0.00029"))
    );
}

#[test]
fn a_stream_ended_closes_its_call_though_it_is_kept() {
    let (layer, ledger, _closed) = layer();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let mut stream = Box::pin(chat_stream(2_000, 0));
        let mut cx = Context::from_waker(Waker::noop());
        while !matches!(stream.as_mut().poll_next(&mut cx), Poll::Ready(None)) {}
        // Still held, but ended: charged ($0.005).
        assert_eq!(
            ledger.model("gpt-4o").map(|t| t.total_usd()),
            Some(usd("0.005"))
        );
        // Polled again after its end, it adds nothing.
        while !matches!(stream.as_mut().poll_next(&mut cx), Poll::Ready(None)) {}
        drop(stream);
    });
    assert_eq!(ledger.model("gpt-4o").map(|t| t.llm_calls), Some(1));
}

/// An async call returning its stream, made by an agent inside a session; the stream is read
/// after both have returned.
#[llm_call(model = "gpt-4o")]
async fn chat_stream_async(input: u64) -> Result<UsageStream<Chunks<ChatCompletion>>, String> {
    std::future::ready(()).await; // the request
    Ok(track_stream(chunks(openai_chunks(input, 0))))
}

#[agent(name = "writer")]
async fn writer() -> Result<UsageStream<Chunks<ChatCompletion>>, String> {
    chat_stream_async(4_000).await
}

#[session(id = "streamed", feature = "answers")]
fn answer() -> UsageStream<Chunks<ChatCompletion>> {
    block_on(writer()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_stream_read_after_its_call_returned_is_charged_where_the_call_was_made() {
    let (layer, ledger, closed) = layer();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let stream = answer();
        drain(stream);
    });
    // 4 000 input tokens at $2.50 per million, to the session, its agent and its feature.
    for totals in [
        ledger.session("streamed"),
        ledger.agent("writer"),
        ledger.feature("answers"),
    ] {
        assert_eq!(totals.map(|t| t.total_usd()), Some(usd("0.01")));
    }
    // The call's span holds its parents open: the agent run and the session close after it,
    // once the stream has ended, and their totals hold it.
    let closed = closed.lock().map(|c| c.clone()).unwrap_or_default();
    assert_eq!(
        closed,
        [
            ("chat_stream_async", Scope::Call, usd("0.01")),
            ("writer", Scope::Agent, usd("0.01")),
            ("answer", Scope::Session, usd("0.01")),
        ]
    );
}

/// Anthropic's events: `message_start` with the input, `message_delta`s with the output so far.
fn anthropic_events() -> Vec<Value> {
    vec![
        json!({"type": "message_start", "message": {"model": "claude-sonnet-4-5-20250929",
            "usage": {"input_tokens": 3000, "cache_read_input_tokens": 0, "output_tokens": 1}}}),
        json!({"type": "content_block_delta", "delta": {"type": "text_delta", "text": "Hi"}}),
        json!({"type": "message_delta", "usage": {"output_tokens": 200}}),
        json!({"type": "message_delta", "usage": {"output_tokens": 400}}),
        json!({"type": "message_stop"}),
    ]
}

#[llm_call(model = "claude-sonnet-4-5")]
fn messages_stream() -> UsageStream<Chunks<Value>, impl FnMut(&Value) -> Option<StreamUsage>> {
    let mut usage = StreamUsage::default();
    track_stream_with(chunks(anthropic_events()), move |event| {
        usage.update(event).ok()?;
        Some(usage.clone())
    })
}

#[test]
fn events_that_spread_the_usage_are_read_through_an_accumulator() {
    let (layer, ledger, _closed) = layer();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        assert_eq!(drain(messages_stream()), 5);
    });
    // Claude Sonnet 4.5: 3 000 input tokens at $3 and 400 output tokens at $15 per million;
    // the deltas' output counts did not erase the input.
    let totals = ledger.model("claude-sonnet-4-5").unwrap_or_default();
    assert_eq!(totals.total_usd(), usd("0.015"));
    assert_eq!((totals.usage.input, totals.usage.output), (3_000, 400));
}

/// A session budget of $1, on a clock that does not move.
fn budgeted() -> (CostLayer, Ledger, BudgetBook) {
    let config = BudgetConfig {
        budgets: vec![Budget::deny(
            "per_session_max",
            BudgetScope::Session,
            Window::Lifetime,
            usd("1"),
        )],
        ..BudgetConfig::default()
    };
    let clock = Arc::new(ManualClock::new(1_790_000_000));
    let book = BudgetBook::with_clock(config, clock).unwrap_or_else(|e| panic!("{e}"));
    let (layer, ledger) = CostLayer::builder().budgets(book.clone()).build();
    (layer, ledger, book)
}

/// Reserves 1 000 input and 1 000 output tokens of gpt-4o ($0.0125) before it streams.
#[llm_call(model = "gpt-4o", max_output_tokens = 1_000, estimate_input = 1_000)]
fn budgeted_stream(input: u64) -> Result<UsageStream<Chunks<ChatCompletion>>, BudgetError> {
    Ok(track_stream(chunks(openai_chunks(input, 0))))
}

/// The same, with the stream made inside a span of the client's within the call.
#[llm_call(model = "gpt-4o", max_output_tokens = 1_000, estimate_input = 1_000)]
fn budgeted_stream_from_a_client_span(
    input: u64,
) -> Result<UsageStream<Chunks<ChatCompletion>>, BudgetError> {
    let client = tracing::info_span!("http_request", http.method = "POST");
    Ok(client.in_scope(|| track_stream(chunks(openai_chunks(input, 0)))))
}

#[derive(Debug)]
struct BudgetError;

impl From<cost_layer::cost_core::budget::BudgetExceeded> for BudgetError {
    fn from(_: cost_layer::cost_core::budget::BudgetExceeded) -> Self {
        BudgetError
    }
}

#[test]
fn a_stream_dropped_before_its_end_keeps_its_reservation_as_spent() {
    let (layer, ledger, book) = budgeted();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let session = tracing::info_span!("s", session.id = "abandoned");
        let _s = session.enter();
        // Read to its end: settled at its cost, 2 000 × $2.50 per million.
        let stream = budgeted_stream(2_000).unwrap_or_else(|e| panic!("{e:?}"));
        drain(stream);
        assert_eq!(
            book.account("per_session_max", "abandoned"),
            Some((usd("0.005"), usd("0")))
        );
        // The client went away after the first chunk, before the usage came: the provider
        // may have billed what it generated, so the reservation stays spent.
        let mut stream = Box::pin(budgeted_stream(2_000).unwrap_or_else(|e| panic!("{e:?}")));
        let mut cx = Context::from_waker(Waker::noop());
        while !matches!(stream.as_mut().poll_next(&mut cx), Poll::Ready(Some(_))) {}
        assert_eq!(
            book.account("per_session_max", "abandoned"),
            Some((usd("0.005"), usd("0.0125")))
        );
        drop(stream);
        assert_eq!(
            book.account("per_session_max", "abandoned"),
            Some((usd("0.0175"), usd("0")))
        );
    });
    assert_eq!(ledger.diagnostics().calls_without_usage, 1);
}

#[test]
fn a_tracked_stream_can_be_handed_to_another_task() {
    // What servers hand their framework: a `Send + 'static` stream.
    fn handed_on<T: Stream + Send + 'static>(_: &T) {}
    let stream = track_stream(chunks(openai_chunks(1, 1)));
    handed_on(&stream);
    let events = chunks(anthropic_events());
    let mut usage = StreamUsage::default();
    handed_on(&track_stream_with(events, move |event: &Value| {
        usage.update(event).ok()?;
        Some(usage.clone())
    }));
}

#[test]
fn a_stream_made_in_a_span_inside_its_call_records_and_cancels_on_the_call() {
    let (layer, ledger, book) = budgeted();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let session = tracing::info_span!("s", session.id = "inner");
        let _s = session.enter();
        let make = || budgeted_stream_from_a_client_span(2_000).unwrap_or_else(|e| panic!("{e:?}"));
        drain(make());
        assert_eq!(
            book.account("per_session_max", "inner"),
            Some((usd("0.005"), usd("0")))
        );
        drop(make());
        assert_eq!(
            book.account("per_session_max", "inner"),
            Some((usd("0.0175"), usd("0"))),
            "dropped unread: its reservation kept as spent"
        );
    });
    assert_eq!(
        ledger.model("gpt-4o").map(|t| (t.total_usd(), t.llm_calls)),
        Some((usd("0.005"), 1))
    );
    assert_eq!(ledger.diagnostics().calls_without_usage, 1);
}

#[test]
fn a_stream_cut_before_its_usage_still_says_which_model_answered() {
    let models: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let sink = Arc::clone(&models);
    let (layer, ledger) = CostLayer::builder()
        .on_close(move |c| {
            if let (Some(call), Ok(mut models)) = (c.call, sink.lock()) {
                models.push(call.response_model.as_deref().map(str::to_owned));
            }
        })
        .build();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let mut stream = Box::pin(chat_stream(1_000, 100));
        let mut cx = Context::from_waker(Waker::noop());
        while !matches!(stream.as_mut().poll_next(&mut cx), Poll::Ready(Some(_))) {}
        drop(stream);
    });
    let models = models.lock().map(|m| m.clone()).unwrap_or_default();
    assert_eq!(models, [Some("gpt-4o-2024-08-06".to_owned())]);
    // No usage came: nothing charged, the call counted without usage; cut, not ended.
    assert_eq!(ledger.diagnostics().calls_without_usage, 1);
    assert_eq!(ledger.diagnostics().streams_ended_without_usage, 0);
    assert_eq!(ledger.model("gpt-4o").map(|t| t.llm_calls).unwrap_or(0), 0);
}

/// OpenAI's chunks without `stream_options.include_usage`: none carries usage.
fn openai_chunks_without_usage() -> Vec<ChatCompletion> {
    openai_chunks(1_000, 100)
        .into_iter()
        .map(|mut chunk| {
            chunk.usage = None;
            chunk
        })
        .collect()
}

#[llm_call(model = "gpt-4o")]
fn chat_stream_without_usage() -> UsageStream<Chunks<ChatCompletion>> {
    track_stream(chunks(openai_chunks_without_usage()))
}

#[test]
fn a_stream_that_ends_without_usage_is_counted_and_warned_about_once() {
    let (layer, ledger) = CostLayer::builder().build();
    let (dispatch, warnings) = warnings::Warnings::beside(layer, &["cost_layer"]);
    tracing::dispatcher::with_default(&dispatch, || {
        assert_eq!(drain(chat_stream_without_usage()), 3);
        assert_eq!(drain(chat_stream_without_usage()), 3);
        // One with usage, and one cut before its end, are neither.
        drain(chat_stream(1_000, 100));
        let mut cut = Box::pin(chat_stream_without_usage());
        let mut cx = Context::from_waker(Waker::noop());
        while !matches!(cut.as_mut().poll_next(&mut cx), Poll::Ready(Some(_))) {}
        drop(cut);
    });
    let diagnostics = ledger.diagnostics();
    assert_eq!(diagnostics.streams_ended_without_usage, 2);
    assert_eq!(diagnostics.calls_without_usage, 3);
    assert_eq!(
        warnings.containing("Diagnostics::streams_ended_without_usage"),
        1
    );
    assert_eq!(warnings.containing("include_usage"), 1);
    assert_eq!(ledger.model("gpt-4o").map(|t| t.llm_calls), Some(1));
}

#[test]
fn each_chunk_reads_the_chunks_with_usage_and_only_the_first_that_names_the_model() {
    let chunk = |model: &str, usage: Value| -> ChatCompletion {
        serde_json::from_value(json!({ "model": model, "usage": usage }))
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let usage = json!({ "prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11 });
    let stream = [
        chunk("", Value::Null),
        chunk("gpt-4o-2024-08-06", Value::Null),
        // Naming another model, without usage: read no more (the first named one stands).
        chunk("gpt-4o-2024-11-20", Value::Null),
        chunk("", usage.clone()),
        chunk("gpt-4o-2024-08-06", usage),
    ];
    let mut reader = EachChunk::default();
    let mut read = Vec::new();
    for (index, chunk) in stream.iter().enumerate() {
        reader.read(chunk, &mut |found| {
            read.push((index, found.response_model().map(str::to_owned)));
        });
    }
    let named = |model: &str| Some(model.to_owned());
    assert_eq!(
        read,
        [
            (1, named("gpt-4o-2024-08-06")),
            (3, None),
            (4, named("gpt-4o-2024-08-06"))
        ]
    );
}

#[test]
fn a_tracked_stream_hints_the_size_of_the_stream_it_wraps() {
    let stream = track_stream(exact_chunks(openai_chunks(1, 1)));
    assert_eq!(stream.size_hint(), (3, Some(3)));
    let unknown = track_stream(chunks(openai_chunks(1, 1)));
    assert_eq!(unknown.size_hint(), (0, None));
}

/// A ready stream of `items` that knows how many are left.
fn exact_chunks<T: Unpin>(items: Vec<T>) -> ExactChunks<T> {
    ExactChunks(items.into_iter().collect())
}

struct ExactChunks<T>(VecDeque<T>);

impl<T: Unpin> Stream for ExactChunks<T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<T>> {
        Poll::Ready(self.0.pop_front())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.0.len(), Some(self.0.len()))
    }
}

#[test]
fn usage_that_reaches_no_call_is_counted_and_warned_about_once() {
    let (layer, ledger) = CostLayer::builder().build();
    let (dispatch, warnings) = warnings::Warnings::beside(layer, &["cost_layer"]);
    tracing::dispatcher::with_default(&dispatch, || {
        // A stream tracked outside any call (a handler without `#[llm_call]`), read to its end.
        drain(track_stream(chunks(openai_chunks(1_000, 100))));
        // Usage recorded outside any call.
        cost_layer::record_usage(&cost_layer::cost_core::Usage::new(1, 1));
        let plain = tracing::info_span!("plain");
        plain.in_scope(|| cost_layer::record_usage(&cost_layer::cost_core::Usage::new(1, 1)));
    });
    assert_eq!(ledger.diagnostics().usage_outside_calls, 3);
    assert_eq!(ledger.snapshot().global.llm_calls, 0);
    assert_eq!(warnings.containing("Diagnostics::usage_outside_calls"), 1);
}

#[llm_call(model = "gpt-4o", level = "debug")]
fn debug_level_streaming_call() {
    cost_layer::record_usage(&cost_layer::cost_core::Usage::new(1_000, 100));
}

#[test]
fn usage_in_a_call_a_filter_hid_is_counted_both_ways() {
    let (layer, ledger) = CostLayer::builder().build();
    let subscriber = tracing_subscriber::registry()
        .with(layer)
        .with(tracing_subscriber::filter::LevelFilter::INFO);
    tracing::subscriber::with_default(subscriber, debug_level_streaming_call);
    let diagnostics = ledger.diagnostics();
    assert_eq!(
        (
            diagnostics.calls_hidden_by_filter,
            diagnostics.usage_outside_calls
        ),
        (1, 1)
    );
    assert_eq!(ledger.snapshot().global.llm_calls, 0);
}
