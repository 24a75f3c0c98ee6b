//! Helpers every test file of `cost-layer` uses.

use std::future::Future;
use std::task::{Context, Poll, Waker};

use cost_layer::cost_core::Money;

/// A response type of the application's own, with the cost its gateway reported.
#[allow(dead_code)]
#[derive(cost_layer::TokenUsage)]
pub(crate) struct GatewayReply {
    #[usage(input)]
    pub(crate) input: u64,
    #[usage(output)]
    pub(crate) output: u64,
    #[usage(reported_cost)]
    pub(crate) cost: Option<String>,
}

/// Exact money from its decimal text.
pub(crate) fn usd(text: &str) -> Money {
    Money::from_decimal(text).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs a future that never waits on anything but itself (a pending poll is polled again).
#[allow(dead_code)]
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

/// A `chat` call of gpt-4o-mini under the current span whose usage contradicts itself (more
/// input tokens read from the cache than sent): rejected, never charged, its cost unknown.
#[allow(dead_code)]
pub(crate) fn rejected_call() {
    tracing::info_span!(
        "chat",
        gen_ai.request.model = "gpt-4o-mini",
        gen_ai.usage.input_tokens = 10,
        gen_ai.usage.cache_read.input_tokens = 20,
        gen_ai.usage.output_tokens = 1
    )
    .in_scope(|| {});
}
