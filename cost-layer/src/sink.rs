//! Every closed LLM call, handed to a [`CallSink`]: the feed of durable ledgers (the
//! `cost-store` crate's writer) and of anything else that keeps one record per call.
//!
//! The layer calls [`CallSink::submit`] from `on_close`, while it holds the closing span's data
//! (so the call is lent, not copied, to the sink), once per call span that carried usage (priced, unpriced, rejected or answered from the
//! application cache). A sink must not block: it queues the call and returns. When it cannot
//! (its queue is full, or whatever drains it has stopped), it returns `false`; the layer counts the drop in
//! [`Diagnostics::records_dropped`](crate::Diagnostics::records_dropped) and warns once. A
//! panicking sink is caught and counted like a panicking callback.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::totals::{Attribution, Totals};

/// One closed LLM call, borrowed for the time of [`CallSink::submit`].
#[derive(Debug)]
pub struct ClosedCall<'a> {
    /// When the call's span closed, read from the coarse real-time clock on Linux
    /// (`CLOCK_REALTIME_COARSE`: a few milliseconds' resolution, several times cheaper to read
    /// than the precise clock).
    pub at: SystemTime,
    /// From the span's creation to its close, on a monotonic clock (TSC-based where the CPU's is
    /// reliable, through `quanta`): never negative, unaffected by wall-clock steps.
    pub duration: Duration,
    /// The span's name.
    pub name: &'static str,
    /// The `tracing` id of the call's span (process-local, recycled after close).
    pub span_id: u64,
    /// The `tracing` id of its nearest accounted ancestor (agent or session), if any.
    pub parent_span_id: Option<u64>,
    /// `gen_ai.request.model` (or `llm.model`), as recorded.
    pub request_model: Option<&'a Arc<str>>,
    /// `gen_ai.response.model`, as recorded.
    pub response_model: Option<&'a Arc<str>>,
    /// The model's ledger key: the price table's entry when priced, else the name as recorded
    /// (`unknown` when none was).
    pub model: &'a Arc<str>,
    /// `gen_ai.provider.name`, as recorded.
    pub provider: Option<&'a Arc<str>>,
    /// `gen_ai.operation.name`, as recorded.
    pub operation: Option<&'a Arc<str>>,
    /// The service tier it ran at (`cost.service_tier`), which its price depends on.
    pub service_tier: cost_core::ServiceTier,
    /// Session, agent, user (hashed unless configured otherwise), org and feature.
    pub attribution: &'a Attribution,
    /// What the call was charged: one of `llm_calls`, `rejected_calls` or `cache_hits` is 1;
    /// `unpriced_calls` is 1 when its model has no price; `price_table` names the table.
    pub totals: &'a Totals,
}

/// The coarse real-time clock (see [`ClosedCall::at`]).
#[cfg(target_os = "linux")]
pub(crate) fn coarse_now() -> SystemTime {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::RealtimeCoarse);
    match (u64::try_from(now.tv_sec), u32::try_from(now.tv_nsec)) {
        (Ok(seconds), Ok(nanos)) => SystemTime::UNIX_EPOCH + Duration::new(seconds, nanos),
        _ => SystemTime::now(),
    }
}

/// The real-time clock (see [`ClosedCall::at`]).
#[cfg(not(target_os = "linux"))]
pub(crate) fn coarse_now() -> SystemTime {
    SystemTime::now()
}

/// Receives every closed LLM call (see the [module docs](self)).
pub trait CallSink: Send + Sync + 'static {
    /// Takes the call (copying what it keeps); `false` when it had to drop it.
    fn submit(&self, call: &ClosedCall<'_>) -> bool;
}
