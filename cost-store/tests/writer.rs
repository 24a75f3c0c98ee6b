//! The writer behind the layer: every closed call on record, exactly; a full queue drops and
//! counts; a store that fails is retried and loses nothing within the bound; a cut database
//! connection is reopened.

mod common;
#[path = "../../cost-layer/tests/support/warnings.rs"]
mod warnings;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use common::{FreezingProxy, PostgresSchema};
use cost_layer::{CostLayer, Ledger};
use cost_store::{CallRecord, CallStatus, Repriced, Store, StoreError, TimeRange, WriterOptions};
use tracing::field::Empty;
use tracing_subscriber::prelude::*;
use warnings::Warnings;

/// Every record the store at `address` holds.
fn load_all(address: &str) -> Vec<CallRecord> {
    cost_store::open(address)
        .and_then(|mut store| store.load(&TimeRange::ALL))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn call(model: &str, input: u64, output: u64) {
    let span = tracing::info_span!(
        "chat",
        gen_ai.request.model = model,
        gen_ai.usage.input_tokens = Empty,
        gen_ai.usage.output_tokens = Empty,
    );
    span.record("gen_ai.usage.input_tokens", input);
    span.record("gen_ai.usage.output_tokens", output);
}

/// `sessions` sessions of `calls` calls each (and one unpriced call per session) under a layer
/// feeding `sink`.
fn run_calls(sink: cost_store::WriterSink, sessions: u64, calls: u64) -> Ledger {
    run_calls_warned(sink, sessions, calls, Warnings::of(&["cost_layer"]))
}

fn run_calls_warned(
    sink: cost_store::WriterSink,
    sessions: u64,
    calls: u64,
    warnings: Warnings,
) -> Ledger {
    let (cost, ledger) = CostLayer::builder().raw_user_ids().call_sink(sink).build();
    let subscriber = tracing_subscriber::registry().with(cost).with(warnings);
    tracing::subscriber::with_default(subscriber, || {
        for s in 0..sessions {
            let id = format!("s-{s}");
            let session = tracing::info_span!(
                "session",
                session.id = id.as_str(),
                cost.user_id = "alice",
                cost.feature = "search"
            );
            let _s = session.enter();
            let agent = tracing::info_span!("agent", gen_ai.agent.name = "planner");
            let _a = agent.enter();
            for i in 0..calls {
                call("gpt-4o-mini", 1_000 + i, 100);
            }
            call("acme-llm-9000", 10, 10);
        }
    });
    ledger
}

#[test]
fn a_cache_hit_is_on_record_with_its_saving_or_as_unpriced_when_its_model_has_no_price() {
    let (_dir, address) = common::temp_address("hits.jsonl");
    let store = cost_store::open(&address).unwrap_or_else(|e| panic!("{e}"));
    let (sink, guard) = cost_store::spawn(store, WriterOptions::default());
    let (cost, _ledger) = CostLayer::builder().call_sink(sink).build();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(cost), || {
        for model in ["gpt-4o", "acme-llm-9000"] {
            tracing::info_span!(
                "cached",
                gen_ai.request.model = model,
                gen_ai.usage.input_tokens = 1_000,
                gen_ai.usage.output_tokens = 100,
                llm.cache.hit = true,
            )
            .in_scope(|| {});
        }
    });
    drop(guard); // flushes
    let records = load_all(&address);
    let seen: Vec<(&str, CallStatus, String)> = records
        .iter()
        .map(|r| (&*r.model, r.status, r.cache_hit_savings.to_string()))
        .collect();
    assert_eq!(
        seen,
        [
            ("gpt-4o", CallStatus::CacheHit, "0.0035".to_owned()),
            (
                "acme-llm-9000",
                CallStatus::UnpricedCacheHit,
                "0".to_owned()
            ),
        ]
    );
    assert!(
        records
            .iter()
            .all(|r| r.total() == cost_layer::cost_core::Money::ZERO)
    );
}

#[test]
fn the_cost_a_provider_reported_is_on_record_beside_the_tables() {
    let (_dir, address) = common::temp_address("reported.sqlite");
    let store = cost_store::open(&address).unwrap_or_else(|e| panic!("{e}"));
    let (sink, guard) = cost_store::spawn(store, WriterOptions::default());
    let (cost, ledger) = CostLayer::builder().call_sink(sink).build();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(cost), || {
        for reported in [Some("0.004375"), None] {
            let span = tracing::info_span!(
                "chat",
                gen_ai.request.model = "gpt-4o",
                gen_ai.usage.input_tokens = 1_000,
                gen_ai.usage.output_tokens = 100,
                cost.reported_cost_usd = Empty,
            );
            if let Some(reported) = reported {
                span.record("cost.reported_cost_usd", reported);
            }
        }
    });
    drop(guard); // flushes
    let records = load_all(&address);
    let seen: Vec<(String, Option<String>)> = records
        .iter()
        .map(|r| {
            (
                r.total().to_string(),
                r.reported_cost.map(|c| c.to_string()),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("0.0035".to_owned(), Some("0.004375".to_owned())),
            ("0.0035".to_owned(), None),
        ]
    );
    assert_eq!(ledger.diagnostics().reported_cost_mismatches, 1);
}

fn sum(records: &[CallRecord]) -> cost_layer::cost_core::Money {
    records
        .iter()
        .fold(cost_layer::cost_core::Money::ZERO, |a, r| a + r.total())
}

#[test]
fn every_call_is_on_record_with_the_ledgers_exact_total() {
    let (_dir, address) = common::temp_address("calls.sqlite");
    let store = cost_store::open(&address).unwrap_or_else(|e| panic!("{e}"));
    let (sink, guard) = cost_store::spawn(store, WriterOptions::default());
    let ledger = run_calls(sink, 50, 20);
    let stats = guard.stats();
    drop(guard); // flushes
    let records = load_all(&address);
    assert_eq!(records.len(), 50 * 21);
    assert_eq!(ledger.diagnostics().records_dropped, 0);
    assert_eq!(
        (stats.written(), stats.failed_writes(), stats.abandoned()),
        (50 * 21, 0, 0)
    );
    assert_eq!(stats.last_error(), None);
    assert_eq!(sum(&records), ledger.global().total_usd());
    let unpriced: Vec<&CallRecord> = records
        .iter()
        .filter(|r| r.status == CallStatus::Unpriced)
        .collect();
    assert_eq!(unpriced.len(), 50);
    assert!(
        unpriced
            .iter()
            .all(|r| r.total().is_zero() && &*r.model == "acme-llm-9000")
    );
    let first = &records[0];
    assert_eq!(first.session.as_deref(), Some("s-0"));
    assert_eq!(first.agent.as_deref(), Some("planner"));
    assert_eq!(first.user.as_deref(), Some("alice"));
    assert_eq!(first.feature.as_deref(), Some("search"));
    assert_eq!(first.model_as_called().as_ref(), "gpt-4o-mini");
    let embedded = cost_layer::cost_core::PriceTable::default();
    assert_eq!(
        first.price_table.as_deref(),
        Some(embedded.info().version.as_ref())
    );
    assert_eq!((first.usage.input, first.usage.output), (1_000, 100));
    assert!(first.parent_span_id.is_some());
    let now_ms = unix_ms(std::time::SystemTime::now());
    assert!((now_ms - 60_000..=now_ms).contains(&first.at_ms));
}

fn unix_ms(at: std::time::SystemTime) -> i64 {
    at.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[test]
fn the_writer_dates_each_call_when_its_span_closed_even_when_it_takes_it_later() {
    use std::time::{Duration, SystemTime};
    let (_dir, address) = common::temp_address("calls.jsonl");
    let store = cost_store::open(&address).unwrap_or_else(|e| panic!("{e}"));
    // The writer takes the calls only when flushed: the first is dated over a second after
    // its span closed, from the writer's own reading of the real-time clock.
    let options = WriterOptions {
        poll: Duration::from_secs(3_600),
        ..WriterOptions::default()
    };
    let (sink, guard) = cost_store::spawn(store, options);
    let (cost, _ledger) = CostLayer::builder().call_sink(sink).build();
    let mut closed = Vec::new();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(cost), || {
        for pause in [Duration::from_millis(1_300), Duration::ZERO] {
            let span = tracing::info_span!(
                "chat",
                gen_ai.request.model = "gpt-4o-mini",
                gen_ai.usage.input_tokens = 10,
                gen_ai.usage.output_tokens = 10,
            );
            std::thread::sleep(Duration::from_millis(20));
            let before = SystemTime::now();
            drop(span);
            closed.push((before, SystemTime::now()));
            std::thread::sleep(pause);
        }
    });
    assert!(guard.flush());
    let records = load_all(&address);
    assert_eq!(records.len(), 2);
    for (record, (before, after)) in records.iter().zip(&closed) {
        // Within a millisecond of the close (the record keeps milliseconds, truncated).
        let range = unix_ms(*before) - 1..=unix_ms(*after) + 1;
        assert!(
            range.contains(&record.at_ms),
            "{} not in {range:?}",
            record.at_ms
        );
        assert!(
            (20_000..10_000_000).contains(&record.duration_us),
            "{}",
            record.duration_us
        );
    }
}

/// A store that blocks until released, then works; or fails a number of times first; or, when
/// flaky, fails every third write.
#[derive(Clone, Default)]
struct TestStore {
    gate: Arc<Mutex<()>>,
    failures_left: Arc<AtomicU32>,
    flaky: bool,
    appends: Arc<AtomicU32>,
    written: Arc<Mutex<Vec<CallRecord>>>,
}

impl TestStore {
    /// The records written so far.
    fn records(&self) -> Vec<CallRecord> {
        self.written.lock().map(|w| w.clone()).unwrap_or_default()
    }

    /// How many records were written so far.
    fn count(&self) -> usize {
        self.written.lock().map(|w| w.len()).unwrap_or_default()
    }
}

/// Options under which the writer passes over its lanes only when flushed: each flush's calls
/// in one batch.
fn passes_only_at_flush() -> WriterOptions {
    WriterOptions {
        poll: std::time::Duration::from_secs(600),
        ..WriterOptions::default()
    }
}

impl Store for TestStore {
    fn append(&mut self, records: &[CallRecord]) -> Result<(), StoreError> {
        let _open = self.gate.lock();
        if records
            .iter()
            .any(|r| r.session.as_deref() == Some("s-panic"))
        {
            panic!("a store of the program's own panicked");
        }
        if records
            .iter()
            .any(|r| r.session.as_deref() == Some("s-poison"))
        {
            return Err(StoreError::Corrupt {
                location: "test".into(),
                message: "a value this store cannot hold".into(),
            });
        }
        if self
            .failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(StoreError::UnknownAddress("down for the test".into()));
        }
        if self.flaky && self.appends.fetch_add(1, Ordering::SeqCst) % 3 == 2 {
            return Err(StoreError::UnknownAddress("flaky for the test".into()));
        }
        if let Ok(mut written) = self.written.lock() {
            written.extend_from_slice(records);
        }
        Ok(())
    }

    fn scan(&mut self, _: &TimeRange, each: &mut dyn FnMut(CallRecord)) -> Result<u64, StoreError> {
        let written = self.records();
        let handed = written.len() as u64;
        written.into_iter().for_each(each);
        Ok(handed)
    }

    fn reprice(&mut self, _: &[Repriced]) -> Result<(), StoreError> {
        Ok(())
    }

    fn describe(&self) -> String {
        "test".into()
    }
}

#[test]
fn a_full_queue_drops_calls_and_counts_every_one() {
    let store = TestStore::default();
    let blocked = store.gate.lock().unwrap_or_else(|e| e.into_inner());
    let options = WriterOptions {
        capacity: 8,
        ..WriterOptions::default()
    };
    let (sink, guard) = cost_store::spawn(Box::new(store.clone()), options);
    let warnings = Warnings::of(&["cost_layer"]);
    // 100 calls against a queue of 8, the store stuck.
    let ledger = run_calls_warned(sink, 10, 9, warnings.clone());
    drop(blocked);
    assert!(guard.flush());
    let written = store.count() as u64;
    let dropped = ledger.diagnostics().records_dropped;
    assert!(dropped > 0, "nothing dropped");
    assert!(written >= 8, "the queue's bound was kept: {written}");
    assert_eq!(written + dropped, 100, "every call is written or counted");
    assert_eq!(guard.stats().written(), written);
    let seen = warnings.seen();
    let drops: Vec<&String> = seen
        .iter()
        .filter(|m| m.contains("queue is full"))
        .collect();
    assert_eq!(drops.len(), 1, "one warning, then only counted: {seen:?}");
}

#[test]
fn calls_after_the_writer_stopped_are_refused_and_counted() {
    let store = TestStore::default();
    let (sink, guard) = cost_store::spawn(Box::new(store.clone()), WriterOptions::default());
    let (cost, ledger) = CostLayer::builder().call_sink(sink).build();
    let (dispatch, warnings) = Warnings::beside(cost, &["cost_layer"]);
    tracing::dispatcher::with_default(&dispatch, || {
        call("gpt-4o-mini", 1_000, 100);
        // The guard goes first (the program's shutdown), the layer keeps running.
        drop(guard);
        for _ in 0..3 {
            call("gpt-4o-mini", 1_000, 100);
        }
    });
    let written = store.count();
    assert_eq!(written, 1, "the call before the shutdown is written");
    assert_eq!(
        ledger.diagnostics().records_dropped,
        3,
        "the calls after it are counted, not queued where nothing takes them"
    );
    assert_eq!(
        warnings.containing("writer has stopped"),
        1,
        "{:?}",
        warnings.seen()
    );
}

/// A writer over `store` and a layer feeding it: the dispatch to run calls under, the layer's
/// ledger, the writer's guard.
fn layer_over(
    store: &TestStore,
    options: WriterOptions,
) -> (tracing::Dispatch, Ledger, cost_store::FlushGuard) {
    let (sink, guard) = cost_store::spawn(Box::new(store.clone()), options);
    let (cost, ledger) = CostLayer::builder().call_sink(sink).build();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(cost));
    (dispatch, ledger, guard)
}

#[test]
fn calls_from_many_threads_some_gone_before_the_flush_are_all_written() {
    let store = TestStore::default();
    let (dispatch, ledger, guard) = layer_over(&store, WriterOptions::default());
    // Four threads, each with its own lane, all finished (their lanes orphaned) before the
    // flush; then the main thread.
    let workers: Vec<_> = (0..4)
        .map(|t| {
            let dispatch = dispatch.clone();
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    let id = format!("t-{t}");
                    let session = tracing::info_span!("session", session.id = id.as_str());
                    let _s = session.enter();
                    for i in 0..250 {
                        call("gpt-4o-mini", 1_000 + i, 100);
                    }
                });
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap_or_else(|_| panic!("worker panicked"));
    }
    tracing::dispatcher::with_default(&dispatch, || call("gpt-4o", 10, 10));
    assert!(guard.flush());
    let written = store.records();
    assert_eq!(written.len(), 1_001);
    assert_eq!(ledger.diagnostics().records_dropped, 0);
    assert_eq!(sum(&written), ledger.global().total_usd());
    for t in 0..4 {
        let id = format!("t-{t}");
        let mine: Vec<u64> = written
            .iter()
            .filter(|r| r.session.as_deref() == Some(id.as_str()))
            .map(|r| r.usage.input)
            .collect();
        // A thread's calls arrive complete and in order.
        assert_eq!(mine, (0..250).map(|i| 1_000 + i).collect::<Vec<_>>());
    }
}

#[test]
fn threads_share_the_capacity() {
    let store = TestStore::default();
    let blocked = store.gate.lock().unwrap_or_else(|e| e.into_inner());
    let options = WriterOptions {
        capacity: 40,
        ..WriterOptions::default()
    };
    let (dispatch, ledger, guard) = layer_over(&store, options);
    // The store is stuck: two live threads, each with 100 calls, fill their lanes. Each lane
    // holds half the capacity; the writer holds at most what it took before the store stuck.
    let (go, wait) = std::sync::mpsc::channel::<()>();
    let wait = Arc::new(Mutex::new(wait));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let dispatch = dispatch.clone();
            let wait = Arc::clone(&wait);
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    // Both lanes exist before either fills.
                    call("gpt-4o-mini", 1, 1);
                    let _ = wait.lock().map(|w| w.recv());
                    for _ in 0..99 {
                        call("gpt-4o-mini", 1_000, 100);
                    }
                });
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(100));
    let _ = go.send(());
    let _ = go.send(());
    for worker in workers {
        worker.join().unwrap_or_else(|_| panic!("worker panicked"));
    }
    drop(blocked);
    assert!(guard.flush());
    let written = store.count() as u64;
    let dropped = ledger.diagnostics().records_dropped;
    assert_eq!(written + dropped, 200, "every call is written or counted");
    // 20 per lane, plus the first call of each the writer may have taken before it stuck.
    assert!((40..=42).contains(&written), "written {written}");
}

#[test]
fn the_share_of_a_thread_that_is_gone_goes_back_to_the_threads_that_remain() {
    let store = TestStore::default();
    let options = WriterOptions {
        capacity: 40,
        ..passes_only_at_flush()
    };
    let (dispatch, ledger, guard) = layer_over(&store, options);
    // The main thread and another make their lanes, each holding half the capacity; the other
    // exits, and the flush takes both calls and frees the lane of the thread that is gone.
    tracing::dispatcher::with_default(&dispatch, || call("gpt-4o-mini", 1, 1));
    let worker = {
        let dispatch = dispatch.clone();
        std::thread::spawn(move || {
            tracing::dispatcher::with_default(&dispatch, || call("gpt-4o-mini", 1, 1));
        })
    };
    worker.join().unwrap_or_else(|_| panic!("worker panicked"));
    assert!(guard.flush());
    // The main thread alone fills its lane before the next pass: the whole capacity, not half.
    tracing::dispatcher::with_default(&dispatch, || {
        for _ in 0..100 {
            call("gpt-4o-mini", 1_000, 100);
        }
    });
    assert!(guard.flush());
    let written = store.count() as u64;
    assert_eq!(written, 2 + 40);
    assert_eq!(ledger.diagnostics().records_dropped, 60);
}

#[test]
fn a_thread_feeding_two_writers_keeps_one_lane_to_each() {
    let options = WriterOptions {
        capacity: 40,
        ..passes_only_at_flush()
    };
    let (first, second) = (TestStore::default(), TestStore::default());
    let (to_first, first_ledger, first_guard) = layer_over(&first, options);
    let (to_second, _, second_guard) = layer_over(&second, options);
    // Calls to one writer, then the other, ten times over: still one lane to each, holding the
    // whole capacity.
    for _ in 0..10 {
        tracing::dispatcher::with_default(&to_first, || call("gpt-4o-mini", 1, 1));
        tracing::dispatcher::with_default(&to_second, || call("gpt-4o-mini", 1, 1));
    }
    tracing::dispatcher::with_default(&to_first, || {
        for _ in 0..100 {
            call("gpt-4o-mini", 1_000, 100);
        }
    });
    assert!(first_guard.flush() && second_guard.flush());
    assert_eq!((first.count(), second.count()), (40, 10));
    assert_eq!(first_ledger.diagnostics().records_dropped, 70);
}

#[test]
fn a_failing_store_is_retried_and_loses_nothing_within_the_bound() {
    let store = TestStore::default();
    store.failures_left.store(3, Ordering::SeqCst);
    let options = WriterOptions {
        retry_min: std::time::Duration::from_millis(1),
        ..WriterOptions::default()
    };
    let (sink, guard) = cost_store::spawn(Box::new(store.clone()), options);
    let ledger = run_calls(sink, 5, 9);
    assert!(guard.flush());
    assert_eq!(guard.stats().failed_writes(), 3);
    assert!(
        guard
            .stats()
            .last_error()
            .unwrap_or_default()
            .contains("down for the test")
    );
    let written = store.records();
    assert_eq!(written.len(), 50);
    assert_eq!(ledger.diagnostics().records_dropped, 0);
    assert_eq!(sum(&written), ledger.global().total_usd());
}

/// A store that is down until its `failures_left` is reset, and a writer over it that retries
/// every few milliseconds and waits 200 ms for it at a flush or at shutdown.
fn writer_over_a_dead_store() -> (TestStore, cost_store::WriterSink, cost_store::FlushGuard) {
    writer_over_a_dead_store_giving_up_after(std::time::Duration::from_millis(200))
}

/// A writer over a store that fails every write until told otherwise, retrying fast, its
/// shutdown giving up after `shutdown_timeout`.
fn writer_over_a_dead_store_giving_up_after(
    shutdown_timeout: std::time::Duration,
) -> (TestStore, cost_store::WriterSink, cost_store::FlushGuard) {
    let store = TestStore::default();
    store.failures_left.store(u32::MAX, Ordering::SeqCst);
    let options = WriterOptions {
        retry_min: std::time::Duration::from_millis(1),
        retry_max: std::time::Duration::from_millis(5),
        shutdown_timeout,
        ..WriterOptions::default()
    };
    let (sink, guard) = cost_store::spawn(Box::new(store.clone()), options);
    (store, sink, guard)
}

#[test]
fn shutdown_gives_up_on_a_dead_store_after_its_timeout_and_counts_it() {
    let (store, sink, guard) = writer_over_a_dead_store();
    let _ledger = run_calls(sink, 1, 9);
    assert!(!guard.flush(), "the store never took them");
    let stats = guard.stats();
    drop(guard);
    assert_eq!(stats.abandoned(), 10, "given up on and counted");
    assert_eq!(store.written.lock().map(|w| w.len()).unwrap_or(1), 0);
}

#[test]
fn a_flush_that_times_out_gives_up_on_nothing() {
    let (store, sink, guard) = writer_over_a_dead_store();
    let ledger = run_calls(sink, 1, 9);
    assert!(!guard.flush(), "the store is down");
    // The store comes back: the writer still holds the calls and writes them.
    store.failures_left.store(0, Ordering::SeqCst);
    assert!(guard.flush());
    let stats = guard.stats();
    assert_eq!((stats.written(), stats.abandoned()), (10, 0));
    assert!(
        stats
            .last_error()
            .is_some_and(|e| e.contains("down for the test"))
    );
    let written = store.records();
    assert_eq!(sum(&written), ledger.global().total_usd());
}

#[test]
fn a_flush_waits_as_long_as_it_is_told_not_as_long_as_a_shutdown() {
    let (store, sink, guard) =
        writer_over_a_dead_store_giving_up_after(std::time::Duration::from_secs(3_600));
    let _ledger = run_calls(sink, 1, 9);
    let asked = std::time::Instant::now();
    assert!(
        !guard.flush_within(std::time::Duration::from_millis(50)),
        "the store is down"
    );
    assert!(
        asked.elapsed() < std::time::Duration::from_secs(600),
        "waited for the shutdown's timeout"
    );
    store.failures_left.store(0, Ordering::SeqCst);
    assert!(guard.flush_within(std::time::Duration::from_secs(60)));
    assert_eq!(store.count(), 10, "nothing given up on");
}

/// The layer, its ledger, and the writer it feeds into the store at `address`, retrying after
/// 10 ms.
fn layer_writing_to(address: &str) -> (CostLayer, Ledger, cost_store::FlushGuard) {
    let store = cost_store::open(address).unwrap_or_else(|e| panic!("{e}"));
    let options = WriterOptions {
        retry_min: std::time::Duration::from_millis(10),
        ..WriterOptions::default()
    };
    let (sink, guard) = cost_store::spawn(store, options);
    let (cost, ledger) = CostLayer::builder().call_sink(sink).build();
    (cost, ledger, guard)
}

#[test]
fn a_cut_postgres_connection_is_reopened_and_nothing_is_lost() {
    let Some(mut schema) = PostgresSchema::create("writer") else {
        return;
    };
    let (cost, ledger, guard) = layer_writing_to(&schema.url);
    tracing::subscriber::with_default(tracing_subscriber::registry().with(cost), || {
        for _ in 0..20 {
            call("gpt-4o", 1_000, 100);
        }
        assert!(guard.flush());
        assert!(schema.cut_connections() >= 1, "no connection to cut");
        for _ in 0..30 {
            call("gpt-4o", 1_000, 100);
        }
        assert!(guard.flush());
    });
    assert!(guard.stats().failed_writes() >= 1, "the cut was noticed");
    let records = load_all(&schema.url);
    assert_eq!(records.len(), 50);
    assert_eq!(sum(&records), ledger.global().total_usd());
    assert_eq!(sum(&records), common::usd("0.175"));
}

/// Three gpt-4o calls in each of `sessions`.
fn three_calls_in_each(sessions: &[&str]) {
    for session in sessions {
        let span = tracing::info_span!("session", session.id = session);
        let _s = span.enter();
        for _ in 0..3 {
            call("gpt-4o", 1_000, 100);
        }
    }
}

#[test]
fn a_store_that_panics_loses_only_what_it_panics_on_and_the_writer_goes_on() {
    let store = TestStore::default();
    let (dispatch, _ledger, guard) = layer_over(&store, passes_only_at_flush());
    tracing::dispatcher::with_default(&dispatch, || {
        three_calls_in_each(&["s-a", "s-panic", "s-b"]);
    });
    assert!(!guard.flush(), "three calls were given up on");
    let stats = guard.stats();
    assert_eq!((stats.written(), stats.abandoned()), (6, 3));
    assert_eq!(
        stats.last_error().as_deref(),
        Some("test: the store panicked: a store of the program's own panicked")
    );
    // The writer is still there.
    tracing::dispatcher::with_default(&dispatch, || three_calls_in_each(&["s-c"]));
    assert!(guard.flush());
    let sessions: Vec<String> = store
        .records()
        .into_iter()
        .filter_map(|r| r.session.as_deref().map(str::to_owned))
        .collect();
    assert_eq!(
        sessions,
        [
            "s-a", "s-a", "s-a", "s-b", "s-b", "s-b", "s-c", "s-c", "s-c"
        ]
    );
}

#[test]
fn a_record_the_store_refuses_for_good_is_abandoned_alone() {
    let store = TestStore::default();
    // Written one by one once the batch is refused, the first record meets a passing failure:
    // it is kept and retried, not abandoned with the refused ones.
    store.failures_left.store(1, Ordering::SeqCst);
    let options = WriterOptions {
        // The nine calls in one batch.
        retry_min: std::time::Duration::from_millis(1),
        ..passes_only_at_flush()
    };
    let (dispatch, _ledger, guard) = layer_over(&store, options);
    tracing::dispatcher::with_default(&dispatch, || {
        three_calls_in_each(&["s-a", "s-poison", "s-b"]);
    });
    guard.flush();
    let stats = guard.stats();
    assert_eq!((stats.written(), stats.abandoned()), (6, 3));
    assert_eq!(store.failures_left.load(Ordering::SeqCst), 0);
    let written = store.records();
    assert!(
        written
            .iter()
            .all(|r| r.session.as_deref() != Some("s-poison"))
    );
}

/// The model, agent and feature of a thread's `i`-th call: each repeats in its own period, so
/// calls in a row share some texts and not others, in every combination.
fn texts_of(i: u64) -> (&'static str, &'static str, Option<&'static str>) {
    let model = ["gpt-4o-mini", "gpt-4o", "acme-llm-9000"][(i % 3) as usize];
    let agent = ["planner", "writer"][(i / 2 % 2) as usize];
    let feature = [Some("search"), None, Some("chat"), Some("chat"), None][(i % 5) as usize];
    (model, agent, feature)
}

#[test]
fn threads_coming_and_going_a_flaky_store_and_a_small_queue_lose_or_garble_no_call() {
    const WAVES: u64 = 3;
    const THREADS: u64 = 3;
    const CALLS: u64 = 400;
    let store = TestStore {
        flaky: true,
        ..TestStore::default()
    };
    let options = WriterOptions {
        capacity: 96,
        batch: 7,
        poll: std::time::Duration::from_millis(1),
        retry_min: std::time::Duration::from_millis(1),
        retry_max: std::time::Duration::from_millis(2),
        ..WriterOptions::default()
    };
    let (sink, guard) = cost_store::spawn(Box::new(store.clone()), options);
    let guard = Arc::new(guard);
    let (cost, ledger) = CostLayer::builder().raw_user_ids().call_sink(sink).build();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(cost));
    for wave in 0..WAVES {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let dispatch = dispatch.clone();
                let guard = Arc::clone(&guard);
                std::thread::spawn(move || {
                    tracing::dispatcher::with_default(&dispatch, || {
                        let id = format!("w{wave}-t{t}");
                        let session = tracing::info_span!(
                            "session",
                            session.id = id.as_str(),
                            cost.user_id = id.as_str()
                        );
                        let _s = session.enter();
                        for i in 0..CALLS {
                            let (model, agent, feature) = texts_of(i);
                            let agent = tracing::info_span!(
                                "agent",
                                gen_ai.agent.name = agent,
                                cost.feature = feature
                            );
                            let _a = agent.enter();
                            call(model, i, 10 + t);
                            if t == 0 && i % 97 == 0 {
                                // Flushes racing the other threads' calls.
                                guard.flush();
                            }
                        }
                    });
                })
            })
            .collect();
        for worker in workers {
            worker.join().unwrap_or_else(|_| panic!("worker panicked"));
        }
    }
    assert!(guard.flush());
    let stats = guard.stats();
    let written = store.records();
    let dropped = ledger.diagnostics().records_dropped;
    assert_eq!(stats.abandoned(), 0, "{:?}", stats.last_error());
    assert!(stats.failed_writes() > 0, "the store never failed");
    assert_eq!(
        written.len() as u64 + dropped,
        WAVES * THREADS * CALLS,
        "every call is written or counted as dropped"
    );
    assert!(
        written.len() as u64 > WAVES * THREADS * CALLS / 10,
        "{} written",
        written.len()
    );
    for wave in 0..WAVES {
        for t in 0..THREADS {
            let id = format!("w{wave}-t{t}");
            let mine: Vec<&CallRecord> = written
                .iter()
                .filter(|r| r.session.as_deref() == Some(id.as_str()))
                .collect();
            let order: Vec<u64> = mine.iter().map(|r| r.usage.input).collect();
            assert!(
                order.windows(2).all(|w| w[0] < w[1]),
                "{id}: calls out of order or repeated: {order:?}"
            );
            for record in mine {
                let i = record.usage.input;
                let (model, agent, feature) = texts_of(i);
                assert_eq!(
                    (
                        record.model_as_called().as_ref(),
                        record.agent.as_deref(),
                        record.feature.as_deref(),
                        record.user.as_deref(),
                        record.usage.output,
                    ),
                    (model, Some(agent), feature, Some(id.as_str()), 10 + t),
                    "{id}, call {i}"
                );
            }
        }
    }
}

#[test]
fn every_kind_of_call_is_on_record_with_its_status() {
    let (_dir, address) = common::temp_address("statuses.jsonl");
    let store = cost_store::open(&address).unwrap_or_else(|e| panic!("{e}"));
    let (sink, guard) = cost_store::spawn(store, WriterOptions::default());
    // An unpriced call the provider said the cost of is charged that cost.
    let (cost, _ledger) = CostLayer::builder()
        .charge_reported_cost_when_unpriced(true)
        .call_sink(sink)
        .build();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(cost), || {
        let chat = |model: &str, input: i64, reported: Option<&str>| {
            let span = tracing::info_span!(
                "chat",
                gen_ai.request.model = model,
                gen_ai.usage.input_tokens = input,
                gen_ai.usage.output_tokens = 100,
                cost.reported_cost_usd = Empty,
            );
            if let Some(reported) = reported {
                span.record("cost.reported_cost_usd", reported);
            }
        };
        chat("gpt-4o", 1_000, None);
        chat("acme-llm-9000", 1_000, None);
        chat("acme-llm-9000", 1_000, Some("0.01"));
        chat("gpt-4o", -5, None);
    });
    drop(guard); // flushes
    let records = load_all(&address);
    let seen: Vec<(&str, CallStatus, String)> = records
        .iter()
        .map(|r| (&*r.model, r.status, r.total().to_string()))
        .collect();
    assert_eq!(
        seen,
        [
            ("gpt-4o", CallStatus::Priced, "0.0035".to_owned()),
            ("acme-llm-9000", CallStatus::Unpriced, "0".to_owned()),
            (
                "acme-llm-9000",
                CallStatus::ProviderReported,
                "0.01".to_owned()
            ),
            ("gpt-4o", CallStatus::Rejected, "0".to_owned()),
        ]
    );
}

#[test]
fn dropping_the_guard_returns_once_every_queued_call_is_written() {
    let store = TestStore::default();
    let blocked = store.gate.lock().unwrap_or_else(|e| e.into_inner());
    let (sink, guard) = cost_store::spawn(Box::new(store.clone()), WriterOptions::default());
    // 20 calls queued while the store is stuck; it answers again a little later.
    run_calls(sink, 2, 9);
    let watched = store.clone();
    let count = move || watched.count();
    assert_eq!(count(), 0);
    let dropper = std::thread::spawn(move || {
        let stats = guard.stats();
        drop(guard);
        // Not a moment later: the drop itself waited for the store.
        (count(), stats.written())
    });
    std::thread::sleep(std::time::Duration::from_millis(200));
    drop(blocked);
    let seen = dropper
        .join()
        .unwrap_or_else(|_| panic!("the dropping thread panicked"));
    assert_eq!(seen, (20, 20));
}

/// Ten calls written to the PostgreSQL store at `url` through a proxy that loses the answer to
/// the first batch's `COMMIT`, flushed, then five more, flushed: the ledger and the writer.
fn calls_across_a_lost_commit_answer(url: &str) -> (Ledger, cost_store::FlushGuard) {
    let proxy = FreezingProxy::to(url);
    let (cost, ledger, guard) = layer_writing_to(&proxy.url);
    proxy.lose_the_answer_to_the_next_commit();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(cost), || {
        for _ in 0..10 {
            call("gpt-4o", 1_000, 100);
        }
        assert!(guard.flush());
        for _ in 0..5 {
            call("gpt-4o", 1_000, 100);
        }
        assert!(guard.flush());
    });
    (ledger, guard)
}

#[test]
fn a_batch_whose_commit_answer_is_lost_is_written_once() {
    let Some(schema) = PostgresSchema::create("lost_commit") else {
        return;
    };
    // The first batch's COMMIT lands, but its answer never reaches the writer, which sees the
    // connection cut and retries the batch: asked whether it landed, the server says it did.
    let (ledger, guard) = calls_across_a_lost_commit_answer(&schema.url);
    assert!(
        guard.stats().failed_writes() >= 1,
        "the lost answer was noticed"
    );
    let records = load_all(&schema.url);
    assert_eq!(records.len(), 15);
    assert_eq!(sum(&records), ledger.global().total_usd());
    assert_eq!(guard.stats().written(), 15);
}

#[test]
fn a_server_that_cannot_say_whether_a_lost_commit_landed_stops_no_later_batch() {
    let Some(mut schema) = PostgresSchema::create("no_txid_status") else {
        return;
    };
    // A server without `txid_status` (before PostgreSQL 10), as this schema's connections see
    // it: a function of that name, found before the catalog's, that does not exist.
    schema.execute(
        "CREATE FUNCTION txid_status(bigint) RETURNS text LANGUAGE plpgsql AS $$
         BEGIN RAISE EXCEPTION 'function txid_status(bigint) does not exist'
             USING ERRCODE = 'undefined_function'; END $$",
    );
    let path_end = schema
        .url
        .find("search_path%3D")
        .and_then(|at| schema.url[at..].find('&').map(|end| at + end))
        .unwrap_or_else(|| panic!("no search path in {}", schema.url));
    let (before, after) = schema.url.split_at(path_end);
    let url = format!("{before}%2Cpg_catalog{after}");
    let (_ledger, guard) = calls_across_a_lost_commit_answer(&url);
    // Unable to tell, the writer writes the batch again (twice, as before the check existed,
    // when the first commit landed before the cut), and every later call is still written:
    // none abandoned.
    assert_eq!(guard.stats().abandoned(), 0);
    let written = load_all(&schema.url).len();
    assert!(
        written == 25 || written == 15,
        "{written} records of 15 calls"
    );
}
