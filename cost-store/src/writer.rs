//! The background writer: bounded queues fed by the layer, a thread that writes batches to a
//! store, retries with backoff while the store is down, and a guard that flushes on shutdown.
//!
//! The layer never waits: [`WriterSink::submit`] copies the call into its thread's lane (a
//! queue of its own, under a lock only the writer also takes, once per pass) or, when the lane
//! is full, refuses it; the layer counts refused calls in
//! [`Diagnostics::records_dropped`](cost_layer::Diagnostics::records_dropped) and warns once.
//! The lanes share [`WriterOptions::capacity`] evenly. The writer thread wakes every
//! [`WriterOptions::poll`] (or at once for a flush), takes what every lane holds and writes it
//! in batches. While the store fails, it keeps what it took and retries (backoff from
//! [`WriterOptions::retry_min`] doubling to [`WriterOptions::retry_max`]); the lanes fill
//! meanwhile, so what the lanes and the writer hold is kept, and what comes beyond it is dropped
//! and counted. Nothing is lost silently.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cost_layer::{CallSink, ClosedCall};

use crate::lane::{Lane, Queued};
use crate::lock;
use crate::record::CallRecord;
use crate::store::{Store, StoreError};

/// How the writer queues, batches and retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriterOptions {
    /// Calls the lanes hold, together, before the layer's calls are dropped (default 65 536):
    /// each producing thread's lane holds an even share.
    pub capacity: usize,
    /// Records written per store transaction at most (default 1 024).
    pub batch: usize,
    /// How long the writer sleeps between passes over the lanes (default 20 ms): the most a
    /// record waits before the writer takes it (a flush wakes it at once).
    pub poll: Duration,
    /// First retry delay after a failed write (default 50 ms).
    pub retry_min: Duration,
    /// Longest retry delay (default 5 s).
    pub retry_max: Duration,
    /// How long the [`FlushGuard`] waits for the store on shutdown before giving up on what is
    /// still queued, counting it (default 10 s); and the longest a [`FlushGuard::flush`] waits
    /// ([`FlushGuard::flush_within`] is told its own).
    pub shutdown_timeout: Duration,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            capacity: 65_536,
            batch: 1_024,
            poll: Duration::from_millis(20),
            retry_min: Duration::from_millis(50),
            retry_max: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

/// What the guard asks of the writer thread.
enum Control {
    Flush(SyncSender<bool>),
    Shutdown,
}

/// What the sinks and the writer thread share: the lanes.
struct Lanes {
    /// Unique per writer (names its lanes in the threads' lists).
    id: u64,
    /// Every lane, for the writer to take from.
    all: Mutex<Vec<Arc<Mutex<Lane>>>>,
    /// Calls one lane may hold: the capacity shared by the lanes.
    quota: AtomicUsize,
    capacity: usize,
    /// The lane of calls submitted where a thread's own cannot be used (while the thread
    /// exits); not counted among the lanes that share the capacity.
    shared: Mutex<Lane>,
    /// The writer has stopped: calls are refused (and counted by the layer), not queued where
    /// nothing would take them. Read under a lane's lock, so a call is either refused or
    /// queued before the writer's last pass takes that lane.
    stopped: AtomicBool,
}

impl Lanes {
    fn new(capacity: usize) -> Self {
        static NEXT_WRITER: AtomicU64 = AtomicU64::new(1);
        Lanes {
            id: NEXT_WRITER.fetch_add(1, Ordering::Relaxed),
            all: Mutex::new(Vec::new()),
            quota: AtomicUsize::new(capacity),
            capacity,
            shared: Mutex::new(Lane::default()),
            stopped: AtomicBool::new(false),
        }
    }

    /// Adds a lane; the lanes' quota shrinks to share the capacity.
    fn register(&self, lane: Arc<Mutex<Lane>>) {
        let mut all = lock(&self.all);
        all.push(lane);
        self.set_quota(all.len());
    }

    fn set_quota(&self, lanes: usize) {
        self.quota
            .store((self.capacity / lanes.max(1)).max(1), Ordering::Relaxed);
    }

    /// Queues `call` in this thread's lane (made on its first call); `false` when the lane is
    /// full.
    fn submit(self: &Arc<Self>, call: &ClosedCall<'_>) -> bool {
        thread_local! {
            /// This thread's lanes, one per writer it fed (a dead writer's goes when the thread
            /// makes its next lane).
            static LANES: RefCell<Vec<ThreadLane>> = const { RefCell::new(Vec::new()) };
        }
        let quota = self.quota.load(Ordering::Relaxed);
        let queue = |lane: &Mutex<Lane>| {
            let mut lane = lock(lane);
            if lane.len() >= quota || self.stopped.load(Ordering::Relaxed) {
                return false;
            }
            lane.push(call);
            true
        };
        let own = LANES.try_with(|lanes| {
            let mut lanes = lanes.try_borrow_mut().ok()?;
            if let Some((_, _, lane)) = lanes.iter().find(|(id, _, _)| *id == self.id) {
                return Some(queue(lane));
            }
            lanes.retain(|(_, writer, _)| writer.strong_count() > 0);
            let lane = Arc::new(Mutex::new(Lane::default()));
            self.register(Arc::clone(&lane));
            let queued = queue(&lane);
            lanes.push((self.id, Arc::downgrade(self), lane));
            Some(queued)
        });
        match own {
            Ok(Some(queued)) => queued,
            _ => queue(&self.shared),
        }
    }

    /// Refuses calls from now on and frees every lane's buffers (the threads' lists keep only
    /// empty lanes). Call after the last [`Lanes::take_all`] that follows [`Lanes::stop`].
    fn release(&self) {
        for lane in lock(&self.all).iter() {
            *lock(lane) = Lane::default();
        }
        *lock(&self.shared) = Lane::default();
    }

    /// Refuses calls from now on: a call queued before is taken by the next
    /// [`Lanes::take_all`] (the flag is read under each lane's lock, which that pass takes).
    fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
    }

    /// Takes every lane's calls into `records` (swapping each lane's buffers with `spare`, so
    /// the producing thread's lock is held only for the swap); drops the lanes of threads that
    /// are gone once they are empty. Returns how many calls could not be read back.
    fn take_all(&self, spare: &mut Queued, records: &mut Vec<CallRecord>) -> u64 {
        let mut unreadable = 0;
        let lanes: Vec<Arc<Mutex<Lane>>> = lock(&self.all).clone();
        for lane in std::iter::once(&self.shared).chain(lanes.iter().map(|lane| &**lane)) {
            {
                let mut lane = lock(lane);
                if lane.len() == 0 {
                    continue;
                }
                std::mem::swap(&mut lane.queued, spare);
            }
            unreadable += spare.drain_into(records);
        }
        drop(lanes);
        let mut all = lock(&self.all);
        let before = all.len();
        // Only this list holds a lane whose thread is gone.
        all.retain(|lane| Arc::strong_count(lane) > 1 || lock(lane).len() > 0);
        if all.len() != before {
            self.set_quota(all.len());
        }
        unreadable
    }
}

/// A thread's lane to one writer: the writer's id, the writer (to forget the lane once the
/// writer is gone), the lane.
type ThreadLane = (u64, std::sync::Weak<Lanes>, Arc<Mutex<Lane>>);

/// What the writer has done, readable at any time.
#[derive(Debug, Default)]
pub struct WriterStats {
    written: AtomicU64,
    failed_writes: AtomicU64,
    abandoned: AtomicU64,
    last_error: Mutex<Option<String>>,
    /// Set by the guard when it shuts the writer down: retries then stop at the timeout.
    closing: std::sync::atomic::AtomicBool,
}

impl WriterStats {
    /// Records written to the store.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Failed write attempts (each retried).
    pub fn failed_writes(&self) -> u64 {
        self.failed_writes.load(Ordering::Relaxed)
    }

    /// Records given up on: at shutdown, because the store stayed down past the timeout; or
    /// refused by the store for good (a value it cannot hold) or panicked on by it, each after
    /// being tried alone; or queued calls that could not be read back from their lane (which
    /// would be a bug), named in [`WriterStats::last_error`].
    pub fn abandoned(&self) -> u64 {
        self.abandoned.load(Ordering::Relaxed)
    }

    /// The latest write error, if any.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }

    fn set_last_error(&self, message: String) {
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(message);
        }
    }
}

/// The writer's end the layer holds: give it to
/// [`CostLayerBuilder::call_sink`](cost_layer::CostLayerBuilder::call_sink).
#[derive(Clone)]
pub struct WriterSink {
    lanes: Arc<Lanes>,
}

impl CallSink for WriterSink {
    fn submit(&self, call: &ClosedCall<'_>) -> bool {
        self.lanes.submit(call)
    }
}

/// Flushes the writer when dropped (or with [`FlushGuard::flush`]), so a clean exit loses
/// nothing; then stops its thread. Keep it alive as long as the layer runs (in `main`).
pub struct FlushGuard {
    control: SyncSender<Control>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<WriterStats>,
    timeout: Duration,
}

impl FlushGuard {
    /// What the writer has done so far (shared: still readable after the guard is dropped).
    pub fn stats(&self) -> Arc<WriterStats> {
        Arc::clone(&self.stats)
    }

    /// Waits until every call queued before this one is written, at most
    /// [`WriterOptions::shutdown_timeout`]; `true` when all were written. When the store stays
    /// down past it, `false`: the writer keeps those calls and keeps retrying (only dropping the
    /// guard gives up on them, counted in [`WriterStats::abandoned`]).
    pub fn flush(&self) -> bool {
        self.flush_within(self.timeout)
    }

    /// [`flush`](Self::flush), waiting at most `timeout` instead (a program that flushes at
    /// the end of each request may not wait as long as its shutdown does). A flush that times
    /// out gives up on nothing either.
    pub fn flush_within(&self, timeout: Duration) -> bool {
        crate::flush_through(&self.control, Control::Flush, timeout)
    }
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        self.stats.closing.store(true, Ordering::SeqCst);
        self.flush();
        let _ = self.control.try_send(Control::Shutdown);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts a writer thread over `store`: the sink to give the layer and the guard that flushes
/// it.
pub fn spawn(store: Box<dyn Store>, options: WriterOptions) -> (WriterSink, FlushGuard) {
    let lanes = Arc::new(Lanes::new(options.capacity.max(1)));
    let (control, requests) = sync_channel(16);
    let stats = Arc::new(WriterStats::default());
    let thread_stats = Arc::clone(&stats);
    let thread_lanes = Arc::clone(&lanes);
    let thread = std::thread::Builder::new()
        .name("llm-cost-writer".into())
        .spawn(move || write_loop(store, &thread_lanes, requests, options, &thread_stats))
        .map_err(|error| {
            // Calls then fill the lanes and the rest are dropped, counted by the layer.
            stats.set_last_error(format!("the writer thread could not start: {error}"));
        })
        .ok();
    (
        WriterSink { lanes },
        FlushGuard {
            control,
            thread,
            stats,
            timeout: options.shutdown_timeout,
        },
    )
}

fn write_loop(
    mut store: Box<dyn Store>,
    lanes: &Lanes,
    requests: Receiver<Control>,
    options: WriterOptions,
    stats: &WriterStats,
) {
    let mut taken: Vec<CallRecord> = Vec::new();
    let mut batch: Vec<CallRecord> = Vec::with_capacity(options.batch);
    let mut spare = Queued::default();
    let mut acks: Vec<SyncSender<bool>> = Vec::new();
    let mut stop = false;
    while !stop {
        // Sleep until the next pass or a request: the instrumented program never wakes this
        // thread (a waiting receiver would make every submit a system call).
        let mut next = match requests.recv_timeout(options.poll) {
            Ok(request) => Some(request),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => {
                stop = true; // the guard is gone
                None
            }
        };
        while let Some(request) = next.take() {
            match request {
                Control::Flush(ack) => acks.push(ack),
                Control::Shutdown => stop = true,
            }
            next = requests.try_recv().ok();
        }
        if stop {
            lanes.stop();
        }
        let unreadable = lanes.take_all(&mut spare, &mut taken);
        if unreadable > 0 {
            stats.abandoned.fetch_add(unreadable, Ordering::Relaxed);
            stats.set_last_error(format!(
                "{unreadable} queued calls could not be read back from their lane (a bug: please report it)"
            ));
        }
        // Only the shutdown gives up on what the store will not take: a flush waits for it at
        // most its timeout, and the calls stay for the next retry.
        let deadline = stop.then(|| Instant::now() + options.shutdown_timeout);
        let mut written = true;
        let mut records = taken.drain(..);
        loop {
            batch.extend(records.by_ref().take(options.batch.max(1)));
            if batch.is_empty() {
                break;
            }
            if !write_with_retry(store.as_mut(), &mut batch, &options, stats, deadline) {
                written = false;
            }
        }
        drop(records);
        for ack in acks.drain(..) {
            let _ = ack.try_send(written);
        }
    }
    lanes.release();
}

fn write_with_retry(
    store: &mut dyn Store,
    batch: &mut Vec<CallRecord>,
    options: &WriterOptions,
    stats: &WriterStats,
    deadline: Option<Instant>,
) -> bool {
    let mut delay = options.retry_min;
    let mut deadline = deadline;
    loop {
        if deadline.is_none() && stats.closing.load(Ordering::SeqCst) {
            deadline = Some(Instant::now() + options.shutdown_timeout);
        }
        match append_contained(store, batch) {
            Ok(()) => {
                stats
                    .written
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                batch.clear();
                return true;
            }
            Err(error) => {
                stats.failed_writes.fetch_add(1, Ordering::Relaxed);
                stats.set_last_error(error.to_string());
                if error.is_permanent() {
                    // Retrying the batch cannot help: write its records one by one and give up
                    // (counted) only on those the store refuses.
                    return write_one_by_one(store, batch, stats);
                }
                if deadline.is_some_and(|d| Instant::now() + delay > d) {
                    stats
                        .abandoned
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    batch.clear();
                    return false;
                }
                std::thread::sleep(delay);
                delay = (delay * 2).min(options.retry_max);
            }
        }
    }
}

/// [`Store::append`], a panic in it caught and returned as [`StoreError::Panicked`] (permanent:
/// the records are then tried one by one), so a store of the program's own that panics never
/// stops the writer.
fn append_contained(store: &mut dyn Store, records: &[CallRecord]) -> Result<(), StoreError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| store.append(records))).unwrap_or_else(
        |panic| {
            let message = panic
                .downcast_ref::<&str>()
                .map(|text| (*text).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            let location =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| store.describe()))
                    .unwrap_or_default();
            Err(StoreError::Panicked { location, message })
        },
    )
}

/// Writes each record of `batch` alone; a record the store refuses for good is abandoned and
/// counted, one that fails otherwise stays in the batch for the next retry.
fn write_one_by_one(
    store: &mut dyn Store,
    batch: &mut Vec<CallRecord>,
    stats: &WriterStats,
) -> bool {
    let mut all = true;
    let mut kept = Vec::new();
    for record in batch.drain(..) {
        match append_contained(store, std::slice::from_ref(&record)) {
            Ok(()) => {
                stats.written.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) if error.is_permanent() => {
                stats.abandoned.fetch_add(1, Ordering::Relaxed);
                all = false;
            }
            Err(_) => {
                kept.push(record);
                all = false;
            }
        }
    }
    *batch = kept;
    all
}
