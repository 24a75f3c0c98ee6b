//! Durable ledgers: one record per LLM call, kept in a JSON-lines file, a SQLite database (the
//! embedded default) or PostgreSQL (for many processes and machines), written by a background
//! thread that never blocks the instrumented program.
//!
//! ```no_run
//! use cost_layer::CostLayer;
//! use tracing_subscriber::prelude::*;
//!
//! let store = cost_store::open("llm-costs.sqlite")?;
//! let (sink, _flush) = cost_store::spawn(store, cost_store::WriterOptions::default());
//! let (cost, ledger) = CostLayer::builder().call_sink(sink).build();
//! tracing_subscriber::registry().with(cost).init();
//! // … every LLM call is now on record; `_flush` writes what is queued when main returns.
//! # Ok::<(), cost_store::StoreError>(())
//! ```
//!
//! - [`CallRecord`]: what is kept per call (time, models as called and as resolved, price table,
//!   attribution, every token kind, exact cost and breakdown, latency, span ids).
//! - [`Store`]: the stores ([`JsonLinesStore`], [`SqliteStore`], [`PostgresStore`]), opened by
//!   address with [`open`]. Each creates and migrates its schema, versioned; money is stored as
//!   exact decimals (`NUMERIC` in PostgreSQL, decimal text in SQLite and JSON), never floats.
//! - [`spawn`]: the background writer, its bounded per-thread queues (lanes), retries and
//!   [`FlushGuard`].
//! - [`budgets()`]: budget accounts in the store (SQLite, PostgreSQL, or Redis, which keeps
//!   budget accounts only, over TCP, a Unix socket or TLS), so calendar-window budgets hold across restarts and processes
//!   ([`cost_core::budget::SharedAccounts`]).
//! - [`report`]: totals by day, feature, user, model, session or agent; what-if pricing on
//!   another model; repricing after a price correction.
//!
//! PostgreSQL goes through the synchronous `postgres` client (the blocking wrapper of
//! `tokio-postgres`): the writer is a plain thread and reports are batch jobs, so no async
//! runtime is imposed on programs that have none, and none is nested in programs that do.

#![deny(missing_docs)]

pub mod budgets;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod columns;
mod jsonl;
mod lane;
#[cfg(feature = "postgres")]
mod postgres;
mod record;
#[cfg(feature = "redis")]
mod redis_budgets;
pub mod report;
#[cfg(feature = "sqlite")]
mod sqlite;
mod store;
mod unconfirmed;
mod writer;

pub use budgets::{
    BudgetAccount, BudgetOptions, BudgetStats, StoreBudgets, TlsClientIdentity, budget_accounts,
    budgets, budgets_with,
};
pub use jsonl::JsonLinesStore;
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
pub use record::{CallRecord, CallStatus};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;
pub use store::{Repriced, Store, StoreError, TimeRange, open, open_existing};
pub use writer::{FlushGuard, WriterOptions, WriterSink, WriterStats, spawn};

/// Applies a reprice to a record in memory (the JSON-lines store, and the stores' tests).
pub(crate) fn apply_reprice(record: &mut CallRecord, update: &Repriced) {
    if record.previous_cost.is_none() {
        record.previous_cost = Some(record.total());
    }
    record.cost = update.cost;
    record.status = update.status;
    record.model = std::sync::Arc::from(update.model.as_str());
    record.repriced_with = Some(std::sync::Arc::from(update.price_table.as_str()));
}

/// Asks a background thread to flush and waits for its answer, at most `timeout`: the request
/// (made by `request` around the channel the answer comes back on) waits for room while the
/// thread's queue is full. `true` when the thread answered `true` in time.
pub(crate) fn flush_through<T>(
    queue: &std::sync::mpsc::SyncSender<T>,
    request: impl FnOnce(std::sync::mpsc::SyncSender<bool>) -> T,
    timeout: std::time::Duration,
) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    let (done, answer) = std::sync::mpsc::sync_channel(1);
    let mut message = request(done);
    loop {
        match queue.try_send(message) {
            Ok(()) => break,
            Err(std::sync::mpsc::TrySendError::Full(back))
                if std::time::Instant::now() < deadline =>
            {
                message = back;
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(_) => return false,
        }
    }
    answer
        .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
        .unwrap_or(false)
}

/// Locks a mutex, recovering from poisoning: what the crate keeps behind its locks (queued
/// calls, pending settlements, counters) stays meaningful after a panic elsewhere.
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
