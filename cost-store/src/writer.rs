//! The background writer: a bounded queue fed by the layer, a thread that writes batches to a
//! store, retries with backoff while the store is down, and a guard that flushes on shutdown.
//!
//! The layer never waits: [`WriterSink::submit`] puts the call in the queue or, when the queue
//! is full, refuses it; the layer counts refused calls in
//! [`Diagnostics::records_dropped`](cost_layer::Diagnostics::records_dropped) and warns once.
//! While the store fails, the thread keeps the batch it holds and retries it (backoff from
//! [`WriterOptions::retry_min`] doubling to [`WriterOptions::retry_max`]); the queue fills
//! meanwhile, so what the queue and the batch hold (the bound) is kept, and what comes beyond it
//! is dropped and counted. Nothing is lost silently.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cost_layer::{CallSink, ClosedCall};

use crate::record::{CallRecord, QueuedCall};
use crate::store::Store;

/// How the writer queues, batches and retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriterOptions {
    /// Calls the queue holds before the layer's calls are dropped (default 65 536).
    pub capacity: usize,
    /// Records written per store transaction at most (default 1 024).
    pub batch: usize,
    /// How long the writer sleeps when its queue is empty (default 20 ms): the most a record
    /// or a flush waits before the writer looks again.
    pub poll: Duration,
    /// First retry delay after a failed write (default 50 ms).
    pub retry_min: Duration,
    /// Longest retry delay (default 5 s).
    pub retry_max: Duration,
    /// How long the [`FlushGuard`] waits for the store on shutdown before giving up on what is
    /// still queued, counting it (default 10 s).
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

enum Message {
    Call(Box<QueuedCall>),
    Flush(SyncSender<bool>),
    Shutdown,
}

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
    /// refused by the store for good (a value it cannot hold), each after being tried alone.
    pub fn abandoned(&self) -> u64 {
        self.abandoned.load(Ordering::Relaxed)
    }

    /// The latest write error, if any.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }
}

/// The writer's end the layer holds: give it to
/// [`CostLayerBuilder::call_sink`](cost_layer::CostLayerBuilder::call_sink).
#[derive(Clone)]
pub struct WriterSink {
    queue: SyncSender<Message>,
}

impl CallSink for WriterSink {
    fn submit(&self, call: &ClosedCall<'_>) -> bool {
        match self
            .queue
            .try_send(Message::Call(QueuedCall::from_closed(call)))
        {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        }
    }
}

/// Flushes the writer when dropped (or with [`FlushGuard::flush`]), so a clean exit loses
/// nothing; then stops its thread. Keep it alive as long as the layer runs (in `main`).
pub struct FlushGuard {
    queue: SyncSender<Message>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<WriterStats>,
    timeout: Duration,
}

impl FlushGuard {
    /// What the writer has done so far (shared: still readable after the guard is dropped).
    pub fn stats(&self) -> Arc<WriterStats> {
        Arc::clone(&self.stats)
    }

    /// Waits until every call queued before this one is written (or the store stayed down
    /// past [`WriterOptions::shutdown_timeout`]); `true` when all were written.
    pub fn flush(&self) -> bool {
        let (done, wait) = sync_channel(1);
        let deadline = Instant::now() + self.timeout;
        let mut message = Message::Flush(done);
        loop {
            match self.queue.try_send(message) {
                Ok(()) => break,
                Err(TrySendError::Full(back)) if Instant::now() < deadline => {
                    message = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(_) => return false,
            }
        }
        wait.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or(false)
    }
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        self.stats.closing.store(true, Ordering::SeqCst);
        self.flush();
        let _ = self.queue.try_send(Message::Shutdown);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts a writer thread over `store`: the sink to give the layer and the guard that flushes
/// it.
pub fn spawn(store: Box<dyn Store>, options: WriterOptions) -> (WriterSink, FlushGuard) {
    let (queue, incoming) = sync_channel(options.capacity.max(1));
    let stats = Arc::new(WriterStats::default());
    let thread_stats = Arc::clone(&stats);
    let thread = std::thread::Builder::new()
        .name("llm-cost-writer".into())
        .spawn(move || write_loop(store, incoming, options, &thread_stats))
        .ok();
    (
        WriterSink {
            queue: queue.clone(),
        },
        FlushGuard {
            queue,
            thread,
            stats,
            timeout: options.shutdown_timeout,
        },
    )
}

fn write_loop(
    mut store: Box<dyn Store>,
    incoming: Receiver<Message>,
    options: WriterOptions,
    stats: &WriterStats,
) {
    let mut batch: Vec<CallRecord> = Vec::with_capacity(options.batch);
    let mut acks: Vec<SyncSender<bool>> = Vec::new();
    let mut stop = false;
    while !stop {
        // Take what is queued, up to a batch; when nothing is, sleep a moment rather than wait
        // on the queue: a waiting receiver would make every submit wake it (a system call on
        // the instrumented program's path), a sleeping one costs the submitter nothing.
        let mut next = match incoming.try_recv() {
            Ok(message) => Some(message),
            Err(TryRecvError::Empty) => {
                std::thread::sleep(options.poll);
                continue;
            }
            Err(TryRecvError::Disconnected) => {
                stop = true; // every sender is gone
                None
            }
        };
        while let Some(message) = next.take() {
            match message {
                Message::Call(call) => batch.push(call.into_record()),
                Message::Flush(ack) => acks.push(ack),
                Message::Shutdown => stop = true,
            }
            if batch.len() < options.batch && !stop {
                next = incoming.try_recv().ok();
            }
        }
        let mut written = true;
        if !batch.is_empty() {
            let urgent = !acks.is_empty() || stop;
            let deadline = urgent.then(|| Instant::now() + options.shutdown_timeout);
            written = write_with_retry(store.as_mut(), &mut batch, &options, stats, deadline);
        }
        for ack in acks.drain(..) {
            let _ = ack.try_send(written);
        }
    }
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
        match store.append(batch) {
            Ok(()) => {
                stats
                    .written
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                batch.clear();
                return true;
            }
            Err(error) => {
                stats.failed_writes.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut last) = stats.last_error.lock() {
                    *last = Some(error.to_string());
                }
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
        match store.append(std::slice::from_ref(&record)) {
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
