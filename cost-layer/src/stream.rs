//! A response stream handed back to the caller: the call lasts as long as the stream.
//!
//! An `#[llm_call]` function that returns its provider's stream (a server passing the model's
//! chunks on as they come) returns before any chunk has arrived, and its span would close with
//! no usage. Wrap the stream with [`track_stream`] inside the function instead: the wrapper
//! keeps the call's span open until the stream ends or is dropped, records the usage the chunks
//! carry as they pass (each chunk's usage is the call's running total, as OpenAI's last chunk
//! and Gemini's chunks give it), and the call is priced when the stream is done. For streams
//! whose chunks each carry part of the usage (Anthropic's events), [`track_stream_with`] reads
//! them through an accumulator such as
//! [`anthropic::StreamUsage`](cost_core::adapters::anthropic::StreamUsage).
//!
//! ```
//! use cost_layer::stream::{Stream, UsageStream, track_stream};
//! use cost_layer::{CostLayer, cost_core::Usage, llm_call};
//! use tracing_subscriber::prelude::*;
//! # fn chunks() -> impl Stream<Item = Usage> {
//! #     struct Two(u8);
//! #     impl Stream for Two {
//! #         type Item = Usage;
//! #         fn poll_next(mut self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>)
//! #             -> std::task::Poll<Option<Usage>> {
//! #             self.0 += 1;
//! #             std::task::Poll::Ready(match self.0 { 1 => Some(Usage::new(2000, 100)),
//! #                 2 => Some(Usage::new(2000, 500)), _ => None })
//! #         }
//! #     }
//! #     Two(0)
//! # }
//!
//! // The provider's chunks; their last one carries the call's usage.
//! #[llm_call(model = "gpt-4o")]
//! fn chat_stream() -> UsageStream<impl Stream<Item = Usage>> {
//!     track_stream(chunks())
//! }
//!
//! let (cost, ledger) = CostLayer::builder().build();
//! tracing::subscriber::with_default(tracing_subscriber::registry().with(cost), || {
//!     let mut stream = std::pin::pin!(chat_stream());
//!     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
//!     while let std::task::Poll::Ready(Some(_chunk)) = stream.as_mut().poll_next(&mut cx) {}
//! });
//! // 2 000 input tokens at $2.50 and 500 output tokens at $10 per million.
//! let spent = ledger.model("gpt-4o").map(|t| t.total_usd().to_string());
//! assert_eq!(spent.as_deref(), Some("0.01"));
//! ```
//!
//! A stream dropped before its end is a call cancelled in flight: with budgets, its
//! reservation is kept as spent unless they say `cancelled_calls = "release"` (see
//! [`CallInFlight`](crate::budget::CallInFlight)).

use std::pin::Pin;
use std::task::{Context, Poll};

use cost_core::{TokenUsage, Usage};
use tracing::Span;

/// The `Stream` trait of `futures-core`, which [`UsageStream`] implements, for naming streams
/// (`impl Stream<Item = …>`) without a dependency of one's own.
pub use futures_core::Stream;

/// How a [`UsageStream`] reads the usage of its chunks.
pub trait ChunkUsage<Item> {
    /// Reads `chunk`, and hands what it says of the call (usage, model, terms) to `found`,
    /// when it says anything.
    fn read(&mut self, chunk: &Item, found: &mut dyn FnMut(&dyn TokenUsage));
}

/// Chunks that carry the call's running usage themselves (`TokenUsage`): each chunk with
/// usage replaces what the call had, as OpenAI's final chunk and Gemini's chunks give it. The
/// first chunk that names the model is read too, so a stream cut before its usage still says
/// which model answered.
#[derive(Clone, Copy, Debug, Default)]
pub struct EachChunk {
    model_read: bool,
}

impl<Item: TokenUsage> ChunkUsage<Item> for EachChunk {
    fn read(&mut self, chunk: &Item, found: &mut dyn FnMut(&dyn TokenUsage)) {
        let names_model = chunk.response_model().is_some();
        if chunk.token_usage().is_some() || (names_model && !self.model_read) {
            self.model_read |= names_model;
            found(chunk);
        }
    }
}

/// A function from a chunk to the call's usage so far, or `None` when the chunk changes
/// nothing.
impl<Item, U, F> ChunkUsage<Item> for F
where
    F: FnMut(&Item) -> Option<U>,
    U: TokenUsage,
{
    fn read(&mut self, chunk: &Item, found: &mut dyn FnMut(&dyn TokenUsage)) {
        if let Some(usage) = self(chunk) {
            found(&usage);
        }
    }
}

/// The call a stream belongs to, open while the stream is.
struct OpenCall {
    span: Span,
    ended: bool,
    /// A chunk carried usage.
    usage_seen: bool,
}

impl Drop for OpenCall {
    fn drop(&mut self) {
        if !self.ended {
            crate::budget::mark_cancelled(&self.span);
        }
    }
}

pin_project_lite::pin_project! {
    /// A provider's response stream, tracked as the LLM call it belongs to ([`track_stream`]).
    /// It yields the chunks unchanged. As a return value it carries no usage of its own
    /// (`TokenUsage`), so `#[llm_call]` records nothing on return: the chunks do.
    pub struct UsageStream<S, R = EachChunk> {
        #[pin]
        inner: S,
        reader: R,
        call: Option<OpenCall>,
    }
}

/// Tracks `stream` as the current LLM call's response (call it inside the `#[llm_call]`
/// function, or inside a span with the call's fields): the call stays open until the stream
/// ends or is dropped, and the usage, model, service tier and data residency its chunks carry
/// are recorded on it as they pass, each replacing the previous (running totals). Polling the
/// stream enters the call's span.
pub fn track_stream<S>(stream: S) -> UsageStream<S>
where
    S: Stream,
    S::Item: TokenUsage,
{
    tracked(stream, EachChunk::default())
}

/// [`track_stream`] for chunks read by `reader`: a function from a chunk to the call's usage
/// so far (`Option<U>`, `U: TokenUsage`), for streams that spread the usage over their events.
///
/// ```
/// use cost_layer::cost_core::adapters::anthropic::StreamUsage;
/// use cost_layer::stream::{Stream, UsageStream, track_stream_with};
/// # fn events() -> impl Stream<Item = serde_json::Value> { NoEvents }
/// # struct NoEvents;
/// # impl Stream for NoEvents {
/// #     type Item = serde_json::Value;
/// #     fn poll_next(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>)
/// #         -> std::task::Poll<Option<serde_json::Value>> { std::task::Poll::Ready(None) }
/// # }
///
/// #[cost_layer::llm_call(model = "claude-sonnet-4-5")]
/// fn messages_stream() -> UsageStream<
///     impl Stream<Item = serde_json::Value>,
///     impl FnMut(&serde_json::Value) -> Option<StreamUsage>,
/// > {
///     let mut usage = StreamUsage::default();
///     // `message_start` gives the input, each `message_delta` the output so far.
///     track_stream_with(events(), move |event| {
///         usage.update(event).ok()?;
///         Some(usage.clone())
///     })
/// }
/// ```
pub fn track_stream_with<S, U, F>(stream: S, reader: F) -> UsageStream<S, F>
where
    S: Stream,
    F: FnMut(&S::Item) -> Option<U>,
    U: TokenUsage,
{
    tracked(stream, reader)
}

fn tracked<S, R>(stream: S, reader: R) -> UsageStream<S, R> {
    UsageStream {
        inner: stream,
        reader,
        call: Some(OpenCall {
            span: Span::current(),
            ended: false,
            usage_seen: false,
        }),
    }
}

impl<S, R> Stream for UsageStream<S, R>
where
    S: Stream,
    R: ChunkUsage<S::Item>,
{
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let this = self.project();
        let Some(call) = this.call.as_mut() else {
            // Ended before: the call is closed.
            return this.inner.poll_next(cx);
        };
        let _entered = call.span.enter();
        let polled = this.inner.poll_next(cx);
        match &polled {
            Poll::Ready(Some(chunk)) => {
                let usage_seen = &mut call.usage_seen;
                this.reader
                    .read(chunk, &mut |found| *usage_seen |= record(found));
            }
            Poll::Ready(None) => {
                call.ended = true;
                if !call.usage_seen && !call.span.is_disabled() {
                    crate::call::count_stream_without_usage(
                        call.span.metadata().map_or("?", |m| m.name()),
                    );
                }
                drop(_entered);
                // The call's span is released: it closes now, unless other handles hold it.
                *this.call = None;
            }
            Poll::Pending => {}
        }
        polled
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

/// A stream carries no usage as a value: its chunks record it.
impl<S, R> TokenUsage for UsageStream<S, R> {
    fn token_usage(&self) -> Option<Usage> {
        None
    }
}

/// Records what a chunk says on the call span that is current; `true` when it carried usage.
fn record(found: &dyn TokenUsage) -> bool {
    let usage = found.token_usage();
    if let Some(usage) = &usage {
        crate::record_usage(usage);
    }
    if let Some(model) = found.response_model() {
        crate::record_response_model(model);
    }
    if let Some(tier) = found.service_tier() {
        crate::record_service_tier(tier);
    }
    if let Some(residency) = found.data_residency() {
        crate::record_data_residency(residency);
    }
    if let Some(size) = found.search_context_size() {
        crate::record_search_context_size(size);
    }
    if let Some(cost) = found.reported_cost() {
        crate::record_reported_cost(cost);
    }
    usage.is_some()
}
