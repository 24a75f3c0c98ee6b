//! Budget accounts in the store ([`cost_core::budget::SharedAccounts`]): a per-user daily
//! budget then holds across restarts (SQLite) and across every process sharing a PostgreSQL
//! database or a Redis server.
//!
//! ```no_run
//! use std::sync::Arc;
//! use cost_layer::cost_core::budget::{BudgetBook, BudgetConfig, SystemClock, Unavailable};
//!
//! let accounts = cost_store::budgets("postgres://app@db/llm")?;
//! let config = BudgetConfig::from_toml("per_user_daily = 50.00")?;
//! let book = BudgetBook::with_shared(config, Arc::new(SystemClock), accounts, Unavailable::FailClosed)?;
//! // then: CostLayer::builder().budgets(book)
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A reservation is one atomic conditional update in the store (PostgreSQL: `INSERT … ON
//! CONFLICT DO UPDATE … WHERE spent + reserved + amount <= limit`, under the row's lock;
//! SQLite: read and write inside an immediate transaction, which holds the database's write
//! lock; Redis: `WATCH`, read, and `MULTI`/`EXEC`, which Redis refuses if another client wrote
//! the account in between, then read and checked again, with money kept as exact decimal text,
//! never a Redis float), made before the call runs. The caller waits for it at most
//! [`BudgetOptions::reservation_timeout`] (10 s by default): the round trip is made on a thread
//! of the accounts' own, and a store that has not answered by then (a server that took the
//! request and hangs, a connection pooler holding requests while its database is down) counts
//! as unavailable for that call; what the round trip books after its caller stopped waiting is
//! released. Settlements come
//! from the layer's `on_close`, where nothing may block: they are queued to a background thread
//! that applies them in batches and retries while the store is down. A reservation counts this
//! process's queued settlements as applied (what they will take off the account is passed into
//! the conditional update), so a call is admitted exactly as it would be once they land. A
//! settlement that cannot be queued (the queue is full), or that dies with its process, leaves
//! its reservation booked, which can only refuse more, never admit more; the first is counted
//! in [`BudgetStats::settles_dropped`]. A settlement the store refuses for good (an account
//! holding what is not an amount) is abandoned alone, its reservation left booked, and counted
//! in [`BudgetStats::settles_abandoned`]; the rest of its batch is applied. When the accounts
//! are dropped, the thread applies what was queued before (retrying while the store is down),
//! then ends; [`StoreBudgets::flush`] waits for it.
//!
//! Accounts of past windows are deleted: at a book's first reservation in a new day or month of
//! a budget, the same background thread deletes that budget's accounts of the windows before
//! the previous one ([`SharedAccounts::forget_before`]; counted in
//! [`BudgetStats::accounts_forgotten`]). The store holds two windows of accounts per budget.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use cost_core::Money;
use cost_core::budget::{SharedAccounts, SharedKey, SharedRefusal, SharedReservation};

use crate::lock;
use crate::store::{Creating, StoreError, is_redis_url};

/// A store that keeps budget accounts.
pub(crate) trait BudgetBackend: Send + 'static {
    /// Books `amount` if `spent + reserved − pending + amount ≤ limit`, where `pending` is what
    /// this process's queued settlements will take off the account once applied:
    /// `Ok(Err((spent, reserved)))` when it does not fit.
    fn try_reserve(
        &mut self,
        account: SharedKey<'_>,
        amount: Money,
        limit: Money,
        pending: Money,
    ) -> Result<Result<(), (Money, Money)>, StoreError>;

    /// Applies settlements, all or none.
    fn settle(&mut self, settles: &[Settle]) -> Result<(), StoreError>;

    /// Deletes the accounts of `budget` in windows before `window`; returns how many.
    fn forget_before(&mut self, budget: &str, window: i64) -> Result<u64, StoreError>;

    /// The accounts of `budget` in `window`, in the order of their keys.
    fn accounts(&mut self, budget: &str, window: i64) -> Result<Vec<BudgetAccount>, StoreError>;
}

/// One shared budget account as the store holds it: spend settled, and reservations of calls
/// in flight (or of calls whose settlement was lost, which stay booked).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BudgetAccount {
    /// The key: a user, org, feature or model, or `*` for a global budget.
    pub key: String,
    /// Spent in the window.
    pub spent: Money,
    /// Reserved by calls not settled.
    pub reserved: Money,
}

/// One queued settlement.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Settle {
    pub(crate) budget: String,
    pub(crate) account: String,
    pub(crate) window: i64,
    pub(crate) reserved: Money,
    pub(crate) cost: Money,
}

/// One of an account's figures (spent or reserved), read from the decimal text of the table
/// `llm_cost_budget_accounts` in `store`: what is not an amount is `Corrupt`, naming the
/// account by its budget, key and window.
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
pub(crate) fn account_figure(
    text: &str,
    store: &str,
    account: &SharedKey<'_>,
) -> Result<Money, StoreError> {
    Money::from_decimal(text).map_err(|e| StoreError::Corrupt {
        location: format!(
            "{store} llm_cost_budget_accounts (budget {}, key {}, window {})",
            account.budget, account.key, account.window
        ),
        message: e.to_string(),
    })
}

/// What a batch of settlements changes, one entry per account in the order each first comes:
/// what the batch takes off its reservations, and what it adds to its spend.
#[cfg_attr(not(any(feature = "postgres", feature = "redis")), allow(dead_code))]
pub(crate) fn changes_per_account(settles: &[Settle]) -> Vec<(SharedKey<'_>, Money, Money)> {
    let mut changes: Vec<(SharedKey<'_>, Money, Money)> = Vec::new();
    let mut index: std::collections::HashMap<SharedKey<'_>, usize> =
        std::collections::HashMap::new();
    for settle in settles {
        let at = *index.entry(settle.key()).or_insert_with(|| {
            changes.push((settle.key(), Money::ZERO, Money::ZERO));
            changes.len() - 1
        });
        changes[at].1 += settle.reserved;
        changes[at].2 += settle.cost;
    }
    changes
}

impl Settle {
    /// The settlement of `account` releasing `reserved` and charging `cost`.
    pub(crate) fn of(account: SharedKey<'_>, reserved: Money, cost: Money) -> Settle {
        Settle {
            budget: account.budget.to_owned(),
            account: account.key.to_owned(),
            window: account.window,
            reserved,
            cost,
        }
    }

    pub(crate) fn key(&self) -> SharedKey<'_> {
        SharedKey {
            budget: &self.budget,
            key: &self.account,
            window: self.window,
        }
    }
}

enum Message {
    Settle(Settle),
    /// Forget a budget's accounts in windows before this one.
    Forget(String, i64),
    Flush(SyncSender<bool>),
}

/// What the budget accounts have done, readable at any time.
#[derive(Debug, Default)]
pub struct BudgetStats {
    settled: AtomicU64,
    settles_dropped: AtomicU64,
    failed_writes: AtomicU64,
    settles_abandoned: AtomicU64,
    unavailable: AtomicU64,
    accounts_forgotten: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl BudgetStats {
    /// Settlements applied in the store.
    pub fn settled(&self) -> u64 {
        self.settled.load(Ordering::Relaxed)
    }

    /// Settlements that could not be queued (their reservations stay booked).
    pub fn settles_dropped(&self) -> u64 {
        self.settles_dropped.load(Ordering::Relaxed)
    }

    /// Failed attempts to apply settlements or to forget past windows' accounts.
    pub fn failed_writes(&self) -> u64 {
        self.failed_writes.load(Ordering::Relaxed)
    }

    /// Settlements the store refused for good (an account holding what is not an amount, a
    /// figure its column cannot hold): their reservations stay booked, as for a settlement that
    /// could not be queued, and [`last_error`](Self::last_error) says why. The other
    /// settlements of their batch are applied.
    pub fn settles_abandoned(&self) -> u64 {
        self.settles_abandoned.load(Ordering::Relaxed)
    }

    /// The latest error the store gave the settlement thread (a settlement or a forget), if
    /// any.
    pub fn last_error(&self) -> Option<String> {
        lock(&self.last_error).clone()
    }

    /// Counts a failed attempt and keeps its error.
    fn failed(&self, error: &StoreError) {
        self.failed_writes.fetch_add(1, Ordering::Relaxed);
        *lock(&self.last_error) = Some(error.to_string());
    }

    /// Reservations that found the store unavailable.
    pub fn unavailable(&self) -> u64 {
        self.unavailable.load(Ordering::Relaxed)
    }

    /// Accounts of past windows deleted from the store (see
    /// [`SharedAccounts::forget_before`]).
    pub fn accounts_forgotten(&self) -> u64 {
        self.accounts_forgotten.load(Ordering::Relaxed)
    }
}

/// Budget accounts in a store, shared by every process that opens the same one.
pub struct StoreBudgets {
    /// To the thread that makes the reservations, so a caller waits for the store only as long
    /// as [`BudgetOptions::reservation_timeout`].
    reservations: SyncSender<ReservationRequest>,
    /// When the reservation thread's current round trip began.
    round_trip: Arc<RoundTripClock>,
    reservation_timeout: Duration,
    /// To the thread that applies the settlements.
    queue: SettleQueue,
    /// The thread that ends async reservations' waits at their deadlines, started by the
    /// first (tried again by the next when the system refused it a thread).
    deadlines: std::sync::OnceLock<DeadlineTimer>,
    /// Test hook: the next this many starts of the deadlines' thread fail, as when the system
    /// refuses a thread.
    #[cfg(test)]
    refused_deadline_threads: std::sync::atomic::AtomicU32,
}

/// Reservations that may wait for the reservation thread; beyond, a reservation counts as
/// unavailable at once.
const WAITING_RESERVATIONS: usize = 256;

/// One reservation for the reservation thread to make.
struct ReservationRequest {
    /// Its account and amount, as the settlement that releases it (at no cost) when it is
    /// booked after its caller stopped waiting.
    release: Settle,
    limit: Money,
    /// When its caller stops waiting: a request still queued then is not sent to the store.
    deadline: Instant,
    answer: Arc<Handoff>,
}

/// What the store answered a reservation: `Ok(Err((spent, reserved)))` when it does not fit,
/// `Err` (the error's text) when the store could not be asked.
type ReservationAnswer = Result<Result<(), (Money, Money)>, String>;

/// Where the reservation thread leaves its answer and its caller waits for it. Whichever comes
/// first, the answer or the caller giving up, decides: an answer that comes after is the
/// thread's to undo.
#[derive(Default)]
struct Handoff {
    state: Mutex<HandoffState>,
    ready: Condvar,
}

#[derive(Default)]
enum HandoffState {
    /// No answer yet; a blocking caller waits on the condition variable.
    #[default]
    Waiting,
    /// No answer yet; the waker of the async caller's task, to wake when it comes.
    WaitingAsync(Waker),
    Answered(ReservationAnswer),
    /// The caller stopped waiting (and was told the store is unavailable), or took the answer.
    Abandoned,
}

impl Handoff {
    /// Waits up to `timeout` for the answer; `None` when it did not come (the caller's
    /// request is then abandoned).
    fn wait(&self, timeout: Duration) -> Option<ReservationAnswer> {
        let state = lock(&self.state);
        let (mut state, _) = self
            .ready
            .wait_timeout_while(state, timeout, |state| {
                matches!(state, HandoffState::Waiting)
            })
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Self::take(&mut state)
    }

    /// The answer, when it came (the request is then done with); `Pending` while it has not
    /// and the caller has not given up, to be woken through `context` when it comes.
    fn poll_answer(&self, context: &mut Context<'_>) -> Poll<Option<ReservationAnswer>> {
        let mut state = lock(&self.state);
        if matches!(
            *state,
            HandoffState::Waiting | HandoffState::WaitingAsync(_)
        ) {
            *state = HandoffState::WaitingAsync(context.waker().clone());
            return Poll::Pending;
        }
        Poll::Ready(Self::take(&mut state))
    }

    /// The answer, if it came; the request abandoned either way.
    fn take(state: &mut HandoffState) -> Option<ReservationAnswer> {
        match std::mem::replace(state, HandoffState::Abandoned) {
            HandoffState::Answered(answer) => Some(answer),
            HandoffState::Waiting | HandoffState::WaitingAsync(_) | HandoffState::Abandoned => None,
        }
    }

    /// Stops waiting, unless the answer came: an answer that comes after is undone. Wakes an
    /// async caller, to learn it.
    fn give_up(&self) {
        let mut state = lock(&self.state);
        let waker = match std::mem::replace(&mut *state, HandoffState::Abandoned) {
            HandoffState::WaitingAsync(waker) => Some(waker),
            HandoffState::Answered(answer) => {
                *state = HandoffState::Answered(answer);
                None
            }
            HandoffState::Waiting | HandoffState::Abandoned => None,
        };
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Hands `answer` to the caller; `false` when the caller had already given up.
    fn answer(&self, answer: ReservationAnswer) -> bool {
        let mut state = lock(&self.state);
        let waker = match std::mem::replace(&mut *state, HandoffState::Answered(answer)) {
            HandoffState::Abandoned => {
                *state = HandoffState::Abandoned;
                return false;
            }
            HandoffState::WaitingAsync(waker) => Some(waker),
            HandoffState::Waiting | HandoffState::Answered(_) => None,
        };
        self.ready.notify_one();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
        true
    }
}

/// The deadlines of the async reservations waiting: each is given up at its deadline (its
/// caller told the store did not answer in time), as a blocking caller stops waiting.
#[derive(Default)]
struct Deadlines {
    state: Mutex<DeadlineState>,
    changed: Condvar,
}

#[derive(Default)]
struct DeadlineState {
    /// By deadline, then by a number of its own (two may share one).
    waiting: std::collections::BTreeMap<(Instant, u64), Arc<Handoff>>,
    numbered: u64,
    /// The accounts are dropped: the thread ends.
    closed: bool,
}

impl Deadlines {
    /// Gives `handoff` up at `deadline`; the key to [`Deadlines::remove`] it with.
    fn add(&self, deadline: Instant, handoff: &Arc<Handoff>) -> (Instant, u64) {
        let mut state = lock(&self.state);
        state.numbered += 1;
        let key = (deadline, state.numbered);
        state.waiting.insert(key, Arc::clone(handoff));
        drop(state);
        self.changed.notify_one();
        key
    }

    /// Forgets the deadline of a reservation that is done with.
    fn remove(&self, key: (Instant, u64)) {
        lock(&self.state).waiting.remove(&key);
    }
}

/// Gives up each async reservation at its deadline, until the accounts are dropped.
fn deadline_loop(deadlines: &Deadlines) {
    let mut state = lock(&deadlines.state);
    let mut due = Vec::new();
    while !state.closed {
        let now = Instant::now();
        while let Some(entry) = state.waiting.first_entry() {
            if entry.key().0 > now {
                break;
            }
            due.push(entry.remove());
        }
        if !due.is_empty() {
            // Given up without the lock: a woken task may forget its deadline at once.
            drop(state);
            for handoff in due.drain(..) {
                handoff.give_up();
            }
            state = lock(&deadlines.state);
            continue;
        }
        let next = state.waiting.first_key_value().map(|((at, _), _)| *at);
        state = match next {
            Some(at) => {
                deadlines
                    .changed
                    .wait_timeout(state, at.saturating_duration_since(now))
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .0
            }
            None => deadlines
                .changed
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        };
    }
}

/// The thread of [`deadline_loop`], ended when this is dropped (with the accounts).
struct DeadlineTimer(Arc<Deadlines>);

impl DeadlineTimer {
    fn start() -> Result<Self, StoreError> {
        let deadlines = Arc::new(Deadlines::default());
        let thread_deadlines = Arc::clone(&deadlines);
        spawn("llm-cost-reserve-deadlines", move || {
            deadline_loop(&thread_deadlines);
        })?;
        Ok(DeadlineTimer(deadlines))
    }
}

impl Drop for DeadlineTimer {
    fn drop(&mut self) {
        lock(&self.0.state).closed = true;
        self.0.changed.notify_one();
    }
}

/// An async reservation's wait: when it ends before the answer (its future dropped, the
/// deadline thread missing), the request is given up, so what the store books for it is
/// released; its deadline is forgotten.
struct AsyncWait<'a> {
    handoff: Arc<Handoff>,
    deadline: Option<(&'a Deadlines, (Instant, u64))>,
}

impl Drop for AsyncWait<'_> {
    fn drop(&mut self) {
        self.handoff.give_up();
        if let Some((deadlines, key)) = self.deadline {
            deadlines.remove(key);
        }
    }
}

/// When the reservation thread's current round trip to the store began, if it is in one.
struct RoundTripClock {
    origin: Instant,
    /// Nanoseconds from `origin` to the round trip's start, plus one; 0 between round trips.
    started: AtomicU64,
}

impl RoundTripClock {
    fn new() -> Self {
        RoundTripClock {
            origin: Instant::now(),
            started: AtomicU64::new(0),
        }
    }

    fn begin(&self) {
        let since = u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX - 1);
        self.started.store(since + 1, Ordering::Relaxed);
    }

    fn end(&self) {
        self.started.store(0, Ordering::Relaxed);
    }

    /// How long the current round trip has lasted at `now`; `None` between round trips.
    fn lasted(&self, now: Instant) -> Option<Duration> {
        let started = self.started.load(Ordering::Relaxed).checked_sub(1)?;
        let started = self.origin + Duration::from_nanos(started);
        Some(now.saturating_duration_since(started))
    }
}

/// What this process's queued settlements will take off each account (`reserved − cost`),
/// so a reservation counts them as applied: the check is then the one the account will pass
/// once they are.
#[derive(Default)]
struct Pending {
    /// The figures. Locked only to read or change them, never across a round trip to the
    /// store: a call's close, which queues its settlement, never waits for the store.
    releases: Mutex<PendingReleases>,
    /// Held across a reservation's round trip, and across applying a batch until what it
    /// released is taken off `releases`: a settlement is never counted both in the store and
    /// in `releases`.
    store_turn: Mutex<()>,
}

/// What queued settlements will take off each account, by budget, key and window.
type PendingReleases = std::collections::HashMap<(String, String, i64), Money>;

/// `account`'s place in [`PendingReleases`].
fn pending_key(account: SharedKey<'_>) -> (String, String, i64) {
    (
        account.budget.to_owned(),
        account.key.to_owned(),
        account.window,
    )
}

/// How the budget accounts queue settlements, and where in Redis they are kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BudgetOptions {
    /// Settlements the queue holds (default 65 536); beyond, they are dropped and counted, and
    /// their reservations stay booked.
    pub settle_queue: usize,
    /// In Redis, the prefix of every key the accounts use (default `llm-cost`): programs
    /// that must not share budgets on one server use different prefixes. SQLite and PostgreSQL
    /// keep the accounts in the table `llm_cost_budget_accounts` and ignore it.
    pub key_prefix: String,
    /// For a Redis server over TLS (`rediss://`, feature `redis-tls`): a PEM file of the
    /// certificate authorities its certificate is checked against (a private CA, a managed
    /// service's bundle), instead of the system's (the default, `None`); given with a plain
    /// `redis://` address, opening is refused. Other stores ignore it.
    pub tls_root_certificates: Option<std::path::PathBuf>,
    /// For a Redis server over TLS that asks clients for a certificate (mutual TLS,
    /// `tls-auth-clients yes`): the certificate and key this program presents; `None` (the
    /// default) presents none. Given with a plain `redis://` address, opening is refused. Other
    /// stores ignore it (PostgreSQL takes its own in the URL: `sslcert`, `sslkey`).
    pub tls_client_identity: Option<TlsClientIdentity>,
    /// How long a reservation waits for the store (default 10 s, which a reconnection, 5 s at
    /// most to connect, and a wait for an account another program keeps locked, 5 s at most in
    /// PostgreSQL, fit in). Past it the store counts as unavailable for that call, and the
    /// book's [`Unavailable`](cost_core::budget::Unavailable) policy decides; the round trip
    /// goes on in the background, and what it booked is released. While one round trip has
    /// lasted that long (a server that accepted the request and never answers, a connection
    /// pooler holding requests while its database is down), the next reservations count as
    /// unavailable without waiting. Zero makes every reservation count as unavailable.
    pub reservation_timeout: Duration,
}

/// A client certificate and its private key, PEM files, which a program presents to a server
/// that asks for one (mutual TLS).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsClientIdentity {
    /// The certificate (its chain, leaf first), PEM.
    pub certificate: std::path::PathBuf,
    /// Its private key (PKCS #8, PKCS #1 or SEC1), PEM.
    pub key: std::path::PathBuf,
}

/// The files a TLS connection to a store reads: the certificate authorities its server's
/// certificate is checked against, and the client's own certificate and key (Redis: from
/// [`BudgetOptions`]; PostgreSQL: from the URL).
#[cfg(any(feature = "redis", feature = "postgres"))]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct TlsFiles {
    /// A PEM file of certificate authorities; `None`: the system's.
    pub(crate) roots: Option<std::path::PathBuf>,
    /// The certificate and key presented to a server that asks for one.
    pub(crate) identity: Option<TlsClientIdentity>,
}

impl Default for BudgetOptions {
    fn default() -> Self {
        BudgetOptions {
            settle_queue: 65_536,
            key_prefix: "llm-cost".to_owned(),
            tls_root_certificates: None,
            tls_client_identity: None,
            reservation_timeout: DEFAULT_RESERVATION_TIMEOUT,
        }
    }
}

/// [`BudgetOptions::reservation_timeout`]'s default.
const DEFAULT_RESERVATION_TIMEOUT: Duration = Duration::from_secs(10);

/// The accounts of `budget` in `window` (a day or month number, as
/// [`utc_day`](cost_core::budget::utc_day) and [`utc_month`](cost_core::budget::utc_month) give
/// them) in the store at `address`, read once, without the background threads of [`budgets()`]
/// (`options` gives the Redis key prefix). A SQLite file that does not exist, or a PostgreSQL
/// database that holds no ledger, is [`StoreError::NoLedger`] and is left as it was.
pub fn budget_accounts(
    address: &str,
    options: &BudgetOptions,
    budget: &str,
    window: i64,
) -> Result<Vec<BudgetAccount>, StoreError> {
    open_backend(address, options, Creating::Never)?.accounts(budget, window)
}

/// Opens the budget accounts at `address` (a SQLite file, a `postgres://` URL or a `redis://`
/// URL; JSON lines cannot hold them), with two background threads, each with its connection:
/// one makes the reservations (their callers wait for it), one applies the settlements.
pub fn budgets(address: &str) -> Result<Arc<StoreBudgets>, StoreError> {
    budgets_with(address, BudgetOptions::default())
}

/// [`budgets()`] with options.
pub fn budgets_with(
    address: &str,
    options: BudgetOptions,
) -> Result<Arc<StoreBudgets>, StoreError> {
    let reserve = open_backend(address, &options, Creating::IfMissing)?;
    let settle = open_backend(address, &options, Creating::IfMissing)?;
    StoreBudgets::over(reserve, settle, &options).map(Arc::new)
}

/// Starts a thread named `name` running `work`.
fn spawn(name: &str, work: impl FnOnce() + Send + 'static) -> Result<(), StoreError> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(work)
        .map(drop)
        .map_err(|source| StoreError::Io {
            path: format!("{name} thread"),
            source,
        })
}

/// Opens the budget accounts of the store at `address` (a SQLite or PostgreSQL one created
/// when missing, or not, as `creating` says).
fn open_backend(
    address: &str,
    options: &BudgetOptions,
    creating: Creating,
) -> Result<Box<dyn BudgetBackend>, StoreError> {
    if is_redis_url(address) {
        #[cfg(feature = "redis")]
        return Ok(Box::new(
            crate::redis_budgets::RedisBudgetAccounts::connect(
                address,
                &options.key_prefix,
                &TlsFiles {
                    roots: options.tls_root_certificates.clone(),
                    identity: options.tls_client_identity.clone(),
                },
            )?,
        ));
    }
    let _ = (options, creating);
    #[cfg(feature = "postgres")]
    if crate::store::is_postgres_url(address) {
        return Ok(Box::new(crate::postgres::PostgresStore::connect_creating(
            address, creating,
        )?));
    }
    #[cfg(feature = "sqlite")]
    if !address.ends_with(".jsonl")
        && !is_redis_url(address)
        && !crate::store::is_postgres_url(address)
    {
        crate::store::file_must_exist(address, creating)?;
        return Ok(Box::new(crate::sqlite::SqliteStore::open(address)?));
    }
    Err(StoreError::UnknownAddress(
        crate::store::address_without_secrets(address),
    ))
}

impl StoreBudgets {
    /// The accounts of two connections to one store: `reserve`'s for reservations, on a thread
    /// of their own, and `settle`'s for settlements, on another.
    fn over(
        reserve: Box<dyn BudgetBackend>,
        settle: Box<dyn BudgetBackend>,
        options: &BudgetOptions,
    ) -> Result<Self, StoreError> {
        let (settles, incoming) = sync_channel(options.settle_queue.max(1));
        let stats = Arc::new(BudgetStats::default());
        let pending = Arc::new(Pending::default());
        let (thread_stats, thread_pending) = (Arc::clone(&stats), Arc::clone(&pending));
        spawn("llm-cost-budgets", move || {
            settle_loop(settle, incoming, &thread_stats, &thread_pending);
        })?;
        let (reservations, requests) = sync_channel(WAITING_RESERVATIONS);
        let round_trip = Arc::new(RoundTripClock::new());
        let queue = SettleQueue {
            settles,
            stats,
            pending,
        };
        let (releases, thread_round_trip) = (queue.clone(), Arc::clone(&round_trip));
        spawn("llm-cost-reserve", move || {
            reserve_loop(reserve, &requests, &releases, &thread_round_trip);
        })?;
        Ok(StoreBudgets {
            reservations,
            round_trip,
            reservation_timeout: options.reservation_timeout,
            queue,
            deadlines: std::sync::OnceLock::new(),
            #[cfg(test)]
            refused_deadline_threads: std::sync::atomic::AtomicU32::new(0),
        })
    }

    /// The deadlines' thread, started by the first async reservation. When the system refuses
    /// a thread, that reservation fails and the next tries again.
    fn deadline_timer(&self) -> Result<&DeadlineTimer, StoreError> {
        if let Some(timer) = self.deadlines.get() {
            return Ok(timer);
        }
        #[cfg(test)]
        if self
            .refused_deadline_threads
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(StoreError::Io {
                path: "llm-cost-reserve-deadlines thread".to_owned(),
                source: std::io::Error::from(std::io::ErrorKind::OutOfMemory),
            });
        }
        let started = DeadlineTimer::start()?;
        // Another reservation may have started one meanwhile: that one is kept, and this one's
        // thread ends as it is dropped.
        Ok(self.deadlines.get_or_init(move || started))
    }

    /// Asks the reservation thread for a reservation of `amount` on `account`, whose caller
    /// waits until `deadline`: the hand-off its answer comes in, or why none will (the store
    /// stuck on a round trip past the timeout, too many waiting, the thread gone).
    fn request_reservation(
        &self,
        account: SharedKey<'_>,
        amount: Money,
        limit: Money,
        now: Instant,
    ) -> Result<Arc<Handoff>, String> {
        let timeout = self.reservation_timeout;
        if let Some(lasted) = self.round_trip.lasted(now)
            && lasted >= timeout
        {
            return Err(format!(
                "the store has not answered a reservation for {} ms (the reservation timeout is {} ms)",
                lasted.as_millis(),
                timeout.as_millis()
            ));
        }
        let handoff = Arc::new(Handoff::default());
        let request = ReservationRequest {
            release: Settle::of(account, amount, Money::ZERO),
            limit,
            deadline: now + timeout,
            answer: Arc::clone(&handoff),
        };
        match self.reservations.try_send(request) {
            Ok(()) => Ok(handoff),
            Err(TrySendError::Full(_)) => Err(format!(
                "{WAITING_RESERVATIONS} reservations already wait for the store"
            )),
            Err(TrySendError::Disconnected(_)) => {
                Err("the accounts' reservation thread has stopped".to_owned())
            }
        }
    }

    /// Why a caller that waited the whole timeout got no answer.
    fn no_answer(&self) -> String {
        format!(
            "the store did not answer the reservation within {} ms",
            self.reservation_timeout.as_millis()
        )
    }

    /// A reservation's outcome from the store's answer, counting it when the store was
    /// unavailable.
    fn outcome(&self, answer: ReservationAnswer) -> Result<(), SharedRefusal> {
        match answer {
            Ok(Ok(())) => Ok(()),
            Ok(Err((spent, reserved))) => Err(SharedRefusal::Over { spent, reserved }),
            Err(error) => {
                self.queue.stats.unavailable.fetch_add(1, Ordering::Relaxed);
                Err(SharedRefusal::Unavailable(error))
            }
        }
    }

    /// What the accounts have done so far.
    pub fn stats(&self) -> &BudgetStats {
        &self.queue.stats
    }

    /// Waits (up to `timeout`) until every settlement queued before is applied; `true` when
    /// they were.
    pub fn flush(&self, timeout: Duration) -> bool {
        // The queue may be full while the store is slow: the request waits for room.
        crate::flush_through(&self.queue.settles, Message::Flush, timeout)
    }
}

impl SharedAccounts for StoreBudgets {
    fn try_reserve(
        &self,
        account: SharedKey<'_>,
        amount: Money,
        limit: Money,
    ) -> Result<(), SharedRefusal> {
        let answer = self
            .request_reservation(account, amount, limit, Instant::now())
            .and_then(|handoff| {
                handoff
                    .wait(self.reservation_timeout)
                    .unwrap_or_else(|| Err(self.no_answer()))
            });
        self.outcome(answer)
    }

    /// Asks the reservation thread at once (not at the future's first poll), then waits for its
    /// answer without holding the caller's thread, at most the reservation timeout (a thread of
    /// the accounts' own, started by the first async reservation, ends the waits that reach
    /// their deadline). Dropped before the answer, the request is given up: what the store
    /// books for it is released.
    fn try_reserve_async<'a>(
        &'a self,
        account: SharedKey<'a>,
        amount: Money,
        limit: Money,
    ) -> SharedReservation<'a> {
        let now = Instant::now();
        // Given up when dropped, even before the future's first poll.
        let requested = self
            .request_reservation(account, amount, limit, now)
            .map(|handoff| AsyncWait {
                handoff,
                deadline: None,
            });
        Box::pin(async move {
            let answer = match requested {
                Ok(mut wait) => match self.deadline_timer() {
                    Ok(timer) => {
                        let deadline = now + self.reservation_timeout;
                        let key = timer.0.add(deadline, &wait.handoff);
                        wait.deadline = Some((&timer.0, key));
                        std::future::poll_fn(|context| wait.handoff.poll_answer(context))
                            .await
                            .unwrap_or_else(|| Err(self.no_answer()))
                    }
                    Err(error) => Err(format!(
                        "cannot wait for the store without blocking: {error}"
                    )),
                },
                Err(error) => Err(error),
            };
            self.outcome(answer)
        })
    }

    fn settle(&self, account: SharedKey<'_>, reserved: Money, cost: Money) {
        self.queue.push(Settle::of(account, reserved, cost));
    }

    fn forget_before(&self, budget: &str, window: i64) {
        // A full queue drops it: the next window's forgets these accounts with its own.
        let _ = self
            .queue
            .settles
            .try_send(Message::Forget(budget.to_owned(), window));
    }
}

/// The settlement thread's queue, with what it shares with those who queue: the stats, and
/// what the settlements queued will release.
#[derive(Clone)]
struct SettleQueue {
    settles: SyncSender<Message>,
    stats: Arc<BudgetStats>,
    pending: Arc<Pending>,
}

impl SettleQueue {
    /// Queues `settle` and counts what it will release as pending; a full queue drops it
    /// (counted; its reservation stays booked).
    fn push(&self, settle: Settle) {
        let key = pending_key(settle.key());
        let release = settle.reserved - settle.cost;
        // Counted before the thread can take it off (it takes this lock to do so).
        let mut releases = lock(&self.pending.releases);
        match self.settles.try_send(Message::Settle(settle)) {
            Ok(()) => *releases.entry(key).or_insert(Money::ZERO) += release,
            Err(_) => {
                self.stats.settles_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Makes the reservations `requests` bring, one at a time, until the accounts are dropped. A
/// request whose caller stopped waiting before its turn is not sent to the store; one booked
/// after its caller stopped waiting is released (settled at no cost), since that caller was
/// told the store is unavailable.
fn reserve_loop(
    mut backend: Box<dyn BudgetBackend>,
    requests: &Receiver<ReservationRequest>,
    releases: &SettleQueue,
    round_trip: &RoundTripClock,
) {
    let pending = &*releases.pending;
    for request in requests {
        if Instant::now() >= request.deadline {
            continue;
        }
        let (account, amount) = (request.release.key(), request.release.reserved);
        round_trip.begin();
        let answer = {
            let _turn = lock(&pending.store_turn);
            let queued = lock(&pending.releases)
                .get(&pending_key(account))
                .copied()
                .unwrap_or(Money::ZERO);
            // A client library's panic fails this reservation, not the thread and every later one.
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                backend.try_reserve(account, amount, request.limit, queued)
            }))
        };
        round_trip.end();
        let booked = matches!(answer, Ok(Ok(Ok(()))));
        let answer = match answer {
            Ok(answer) => answer.map_err(|error| error.to_string()),
            Err(_) => Err("the store's client panicked while reserving".to_owned()),
        };
        if !request.answer.answer(answer) && booked {
            releases.push(request.release);
        }
    }
}

fn settle_loop(
    mut backend: Box<dyn BudgetBackend>,
    incoming: Receiver<Message>,
    stats: &BudgetStats,
    pending: &Pending,
) {
    let mut batch: Vec<Settle> = Vec::new();
    let mut forgets: Vec<(String, i64)> = Vec::new();
    let mut acks: Vec<SyncSender<bool>> = Vec::new();
    // The accounts were dropped: what was queued before is still applied, then the thread ends.
    let mut closed = false;
    while !closed {
        loop {
            match incoming.try_recv() {
                Ok(Message::Settle(settle)) => batch.push(settle),
                Ok(Message::Forget(budget, window)) => forgets.push((budget, window)),
                Ok(Message::Flush(ack)) => {
                    acks.push(ack);
                    break;
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
            if batch.len() >= 1_024 {
                break;
            }
        }
        if batch.is_empty() && acks.is_empty() && forgets.is_empty() && !closed {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        // Retried until applied: a settlement is never lost while the process runs, unless
        // the store refuses it for good.
        let mut delay = Duration::from_millis(20);
        while !batch.is_empty() {
            let turn = lock(&pending.store_turn);
            match backend.settle(&batch) {
                Ok(()) => {
                    stats
                        .settled
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    let mut releases = lock(&pending.releases);
                    for settle in batch.drain(..) {
                        no_longer_pending(&mut releases, &settle);
                    }
                }
                Err(error) => {
                    stats.failed(&error);
                    if error.is_permanent() {
                        // Applied one by one: only those the store refuses for good are
                        // abandoned; one that meets a passing failure is kept and retried.
                        batch = settle_one_by_one(&mut *backend, batch, stats, pending);
                    }
                    if !batch.is_empty() {
                        drop(turn);
                        std::thread::sleep(delay);
                        delay = (delay * 2).min(Duration::from_secs(5));
                    }
                }
            }
        }
        // After the settlements queued before: tried once; the accounts of a forget that
        // fails are forgotten with the next window's.
        for (budget, window) in forgets.drain(..) {
            match backend.forget_before(&budget, window) {
                Ok(deleted) => {
                    stats
                        .accounts_forgotten
                        .fetch_add(deleted, Ordering::Relaxed);
                }
                Err(error) => stats.failed(&error),
            }
        }
        for ack in acks.drain(..) {
            let _ = ack.try_send(true);
        }
    }
}

/// Applies each of `batch` alone (its caller holding the store's turn), after the store
/// refused the batch for good; returns those that met a passing failure, to be retried. Those
/// refused for good are abandoned: counted, and no longer pending, so their reservations count
/// as booked, as the store holds them.
fn settle_one_by_one(
    backend: &mut dyn BudgetBackend,
    batch: Vec<Settle>,
    stats: &BudgetStats,
    pending: &Pending,
) -> Vec<Settle> {
    let mut retried = Vec::new();
    for settle in batch {
        match backend.settle(std::slice::from_ref(&settle)) {
            Ok(()) => {
                stats.settled.fetch_add(1, Ordering::Relaxed);
                no_longer_pending(&mut lock(&pending.releases), &settle);
            }
            Err(error) if error.is_permanent() => {
                stats.failed(&error);
                stats.settles_abandoned.fetch_add(1, Ordering::Relaxed);
                no_longer_pending(&mut lock(&pending.releases), &settle);
            }
            Err(error) => {
                stats.failed(&error);
                retried.push(settle);
            }
        }
    }
    retried
}

/// Takes what `settle` will release off its account's pending figure: it was applied, or it
/// never will be.
fn no_longer_pending(pending: &mut PendingReleases, settle: &Settle) {
    let key = pending_key(settle.key());
    if let Some(left) = pending.get_mut(&key) {
        *left -= settle.reserved - settle.cost;
        if left.is_zero() {
            pending.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Budget accounts for tests: reservations and settlements as the two closures make
    /// them; no windows to forget, no accounts to list.
    struct TestBackend<R, S> {
        reserve: R,
        settle: S,
    }

    /// What a test backend's reservation answers.
    type Reserved = Result<Result<(), (Money, Money)>, StoreError>;

    impl<R, S> BudgetBackend for TestBackend<R, S>
    where
        R: FnMut(SharedKey<'_>) -> Reserved + Send + 'static,
        S: FnMut(&[Settle]) -> Result<(), StoreError> + Send + 'static,
    {
        fn try_reserve(
            &mut self,
            account: SharedKey<'_>,
            _: Money,
            _: Money,
            _: Money,
        ) -> Reserved {
            (self.reserve)(account)
        }

        fn settle(&mut self, settles: &[Settle]) -> Result<(), StoreError> {
            (self.settle)(settles)
        }

        fn forget_before(&mut self, _: &str, _: i64) -> Result<u64, StoreError> {
            Ok(0)
        }

        fn accounts(&mut self, _: &str, _: i64) -> Result<Vec<BudgetAccount>, StoreError> {
            Ok(Vec::new())
        }
    }

    /// Budget accounts that book every reservation, refuse every batch holding account
    /// `refused` for good, fail each batch holding account `flaky` the first `flaky_failures`
    /// times (a passing failure), and apply the others, noting each applied account.
    fn choosy(mut flaky_failures: u32, applied: Arc<Mutex<Vec<String>>>) -> Box<dyn BudgetBackend> {
        Box::new(TestBackend {
            reserve: |_: SharedKey<'_>| Ok(Ok(())),
            settle: move |settles: &[Settle]| {
                let holds = |account: &str| settles.iter().any(|settle| settle.account == account);
                if holds("refused") {
                    return Err(StoreError::Corrupt {
                        location: "account refused".into(),
                        message: "not an amount".into(),
                    });
                }
                if holds("flaky") && flaky_failures > 0 {
                    flaky_failures -= 1;
                    return Err(StoreError::Io {
                        path: "account flaky".into(),
                        source: std::io::Error::other("connection reset"),
                    });
                }
                let mut applied = lock(&applied);
                applied.extend(settles.iter().map(|settle| settle.account.clone()));
                Ok(())
            },
        })
    }

    fn settle(account: &str) -> Settle {
        Settle {
            budget: "per_user_daily".into(),
            account: account.into(),
            window: 20_417,
            reserved: Money::from_decimal("0.5").unwrap_or(Money::ZERO),
            cost: Money::from_decimal("0.2").unwrap_or(Money::ZERO),
        }
    }

    /// A settlement as a test backend notes it: account, reserved, cost.
    type Settled = (String, Money, Money);

    /// Budget accounts whose reservations each wait until the test lets one through (a token
    /// on `gate`), then book; what they booked and what they settled is noted.
    fn gated(
        gate: &Arc<Mutex<Receiver<()>>>,
        booked: &Arc<Mutex<Vec<String>>>,
        settled: &Arc<Mutex<Vec<Settled>>>,
    ) -> Box<dyn BudgetBackend> {
        let (gate, booked, settled) = (Arc::clone(gate), Arc::clone(booked), Arc::clone(settled));
        Box::new(TestBackend {
            reserve: move |account: SharedKey<'_>| {
                let _ = lock(&gate).recv();
                lock(&booked).push(account.key.to_owned());
                Ok(Ok(()))
            },
            settle: move |settles: &[Settle]| {
                lock(&settled).extend(
                    settles
                        .iter()
                        .map(|settle| (settle.account.clone(), settle.reserved, settle.cost)),
                );
                Ok(())
            },
        })
    }

    fn account(key: &str) -> SharedKey<'_> {
        SharedKey {
            budget: "per_user_daily",
            key,
            window: 20_417,
        }
    }

    fn usd(text: &str) -> Money {
        Money::from_decimal(text).unwrap_or(Money::ZERO)
    }

    fn unavailable(refusal: Result<(), SharedRefusal>) -> String {
        match refusal {
            Err(SharedRefusal::Unavailable(reason)) => reason,
            other => panic!("not refused as unavailable: {other:?}"),
        }
    }

    /// Budget accounts over [`gated`] backends, with a reservation timeout of 500 ms.
    struct Gated {
        /// Lets the store answer one reservation.
        open_gate: std::sync::mpsc::Sender<()>,
        /// The accounts booked, in order.
        booked: Arc<Mutex<Vec<String>>>,
        /// The settlements applied.
        settled: Arc<Mutex<Vec<Settled>>>,
        budgets: StoreBudgets,
    }

    fn gated_budgets() -> Gated {
        let (open_gate, gate) = std::sync::mpsc::channel();
        let gate = Arc::new(Mutex::new(gate));
        let booked = Arc::new(Mutex::new(Vec::new()));
        let settled = Arc::new(Mutex::new(Vec::new()));
        let backend = || gated(&gate, &booked, &settled);
        let options = BudgetOptions {
            reservation_timeout: Duration::from_millis(500),
            ..BudgetOptions::default()
        };
        let budgets =
            StoreBudgets::over(backend(), backend(), &options).unwrap_or_else(|e| panic!("{e}"));
        Gated {
            open_gate,
            booked,
            settled,
            budgets,
        }
    }

    #[test]
    fn a_reservation_the_store_does_not_answer_in_time_is_unavailable_and_undone_once_booked() {
        let Gated {
            open_gate,
            booked,
            settled,
            budgets,
        } = gated_budgets();
        // The store takes ana's request and does not answer: she is told it is unavailable.
        let late = unavailable(budgets.try_reserve(account("ana"), usd("1.5"), usd("10")));
        assert!(late.contains("did not answer"), "{late}");
        // Still no answer, the round trip past the timeout (ana's wait began when she asked,
        // the round trip a little later): bob is told at once, and his request never reaches
        // the store.
        until(|| {
            budgets
                .round_trip
                .lasted(Instant::now())
                .is_some_and(|lasted| lasted >= budgets.reservation_timeout)
        });
        let stuck = unavailable(budgets.try_reserve(account("bob"), usd("2"), usd("10")));
        assert!(stuck.contains("has not answered"), "{stuck}");
        // The store answers ana's at last: what it booked for her is released, at no cost.
        assert!(open_gate.send(()).is_ok());
        until(|| budgets.round_trip.lasted(Instant::now()).is_none());
        // And answers the next in time.
        assert!(open_gate.send(()).is_ok());
        assert_eq!(
            budgets.try_reserve(account("carl"), usd("1"), usd("10")),
            Ok(())
        );
        assert!(budgets.flush(Duration::from_secs(30)));
        assert_eq!(*lock(&booked), ["ana", "carl"]);
        assert_eq!(
            *lock(&settled),
            [("ana".to_owned(), usd("1.5"), Money::ZERO)]
        );
        assert_eq!(budgets.stats().unavailable(), 2);
        let left = lock(&budgets.queue.pending.releases);
        assert!(left.is_empty(), "{left:?}");
    }

    /// Counts its wakes.
    struct CountingWaker(AtomicU64);

    impl std::task::Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A waker counting its wakes, and how many so far.
    fn counting_waker() -> (Waker, impl Fn() -> u64) {
        let wakes = Arc::new(CountingWaker(AtomicU64::new(0)));
        let waker = Waker::from(Arc::clone(&wakes));
        (waker, move || wakes.0.load(Ordering::SeqCst))
    }

    /// Waits (at most 30 s) until `done`.
    fn until(done: impl Fn() -> bool) {
        let waiting_since = Instant::now();
        while !done() {
            assert!(waiting_since.elapsed() < Duration::from_secs(30));
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn an_async_reservation_waits_without_its_thread_and_ends_at_its_deadline() {
        let Gated {
            open_gate,
            booked,
            settled,
            budgets,
        } = gated_budgets();
        let (waker, wakes) = counting_waker();
        let mut context = Context::from_waker(&waker);
        // The store takes ana's request and does not answer: her task is handed back at once,
        // then woken at the deadline and told the store is unavailable.
        let mut late = budgets.try_reserve_async(account("ana"), usd("1.5"), usd("10"));
        let asked = Instant::now();
        assert!(late.as_mut().poll(&mut context).is_pending());
        until(|| wakes() > 0);
        assert!(asked.elapsed() >= Duration::from_millis(500));
        let Poll::Ready(refusal) = late.as_mut().poll(&mut context) else {
            panic!("woken, and still waiting");
        };
        let reason = unavailable(refusal);
        assert!(reason.contains("did not answer"), "{reason}");
        // The store answers at last: what it booked for her is released, at no cost.
        assert!(open_gate.send(()).is_ok());
        until(|| budgets.round_trip.lasted(Instant::now()).is_none());
        // Bob's answer comes in time: his task is woken with it.
        let mut in_time = budgets.try_reserve_async(account("bob"), usd("1"), usd("10"));
        assert!(in_time.as_mut().poll(&mut context).is_pending());
        assert!(open_gate.send(()).is_ok());
        until(|| wakes() > 1);
        assert_eq!(in_time.as_mut().poll(&mut context), Poll::Ready(Ok(())));
        // Carl's future is dropped before the answer (a timeout around the call): undone too.
        let mut dropped = budgets.try_reserve_async(account("carl"), usd("2"), usd("10"));
        assert!(dropped.as_mut().poll(&mut context).is_pending());
        drop(dropped);
        assert!(open_gate.send(()).is_ok());
        until(|| lock(&booked).len() == 3);
        // Dan's is dropped before it was ever polled: undone as well.
        drop(budgets.try_reserve_async(account("dan"), usd("3"), usd("10")));
        assert!(open_gate.send(()).is_ok());
        // (Released after the answer is handed over: waited for as applied.)
        until(|| lock(&settled).len() == 3);
        assert_eq!(*lock(&booked), ["ana", "bob", "carl", "dan"]);
        assert_eq!(
            *lock(&settled),
            [
                ("ana".to_owned(), usd("1.5"), Money::ZERO),
                ("carl".to_owned(), usd("2"), Money::ZERO),
                ("dan".to_owned(), usd("3"), Money::ZERO)
            ]
        );
        assert_eq!(budgets.stats().unavailable(), 1);
        // No deadline is left behind.
        let deadlines = budgets.deadlines.get();
        let left = deadlines.map(|timer| lock(&timer.0.state).waiting.len());
        assert_eq!(left, Some(0));
        // The deadlines' thread ends with the accounts (it holds the other reference).
        let deadlines = deadlines.map(|timer| Arc::downgrade(&timer.0));
        drop((late, in_time));
        drop(budgets);
        until(|| deadlines.as_ref().is_some_and(|d| d.upgrade().is_none()));
    }

    #[test]
    fn an_async_reservation_refused_a_deadline_thread_fails_and_the_next_starts_one() {
        let applied = Arc::new(Mutex::new(Vec::new()));
        let budgets = StoreBudgets::over(
            choosy(0, Arc::clone(&applied)),
            choosy(0, Arc::clone(&applied)),
            &BudgetOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        budgets.refused_deadline_threads.store(1, Ordering::Relaxed);
        let (waker, wakes) = counting_waker();
        let mut context = Context::from_waker(&waker);
        // The system refuses the first reservation the thread its wait needs: it fails (it may
        // not block its task's thread instead), and what the store booked for it is released.
        let mut refused = budgets.try_reserve_async(account("ana"), usd("1"), usd("10"));
        let Poll::Ready(refusal) = refused.as_mut().poll(&mut context) else {
            panic!("waiting with no thread to end the wait");
        };
        let reason = unavailable(refusal);
        assert!(reason.contains("without blocking"), "{reason}");
        drop(refused);
        // The next starts the thread, and waits for its answer.
        let mut next = budgets.try_reserve_async(account("bob"), usd("1"), usd("10"));
        let mut answer = next.as_mut().poll(&mut context);
        if answer.is_pending() {
            until(|| wakes() > 0);
            answer = next.as_mut().poll(&mut context);
        }
        assert_eq!(answer, Poll::Ready(Ok(())));
        assert!(budgets.deadlines.get().is_some());
        assert!(budgets.flush(Duration::from_secs(30)));
        // Ana's request was given up: the store never booked it (given up before its turn) or
        // released what it booked; bob's stays reserved.
        let applied = lock(&applied).clone();
        assert!(applied == ["ana"] || applied.is_empty(), "{applied:?}");
        assert_eq!(budgets.stats().unavailable(), 1);
    }

    /// Budget accounts whose first reservation panics; the next are booked.
    fn panicky() -> Box<dyn BudgetBackend> {
        let mut reservations = 0;
        Box::new(TestBackend {
            reserve: move |_: SharedKey<'_>| {
                reservations += 1;
                assert!(reservations > 1, "a client library's bug");
                Ok(Ok(()))
            },
            settle: |_: &[Settle]| Ok(()),
        })
    }

    #[test]
    fn a_round_trip_lasts_from_its_beginning_not_from_the_clocks_making() {
        let clock = RoundTripClock::new();
        assert_eq!(clock.lasted(Instant::now()), None);
        std::thread::sleep(Duration::from_millis(500));
        clock.begin();
        let lasted = clock.lasted(Instant::now());
        assert!(
            lasted.is_some_and(|lasted| lasted < Duration::from_millis(250)),
            "{lasted:?}"
        );
        clock.end();
        assert_eq!(clock.lasted(Instant::now()), None);
    }

    #[test]
    fn a_reservation_whose_store_client_panics_is_unavailable_and_the_next_are_made() {
        let budgets = StoreBudgets::over(panicky(), panicky(), &BudgetOptions::default())
            .unwrap_or_else(|e| panic!("{e}"));
        let reason = unavailable(budgets.try_reserve(account("ana"), usd("1"), usd("10")));
        assert!(reason.contains("panicked"), "{reason}");
        assert_eq!(
            budgets.try_reserve(account("ana"), usd("1"), usd("10")),
            Ok(())
        );
    }

    #[test]
    fn a_batch_refused_for_good_is_applied_one_by_one_keeping_what_met_a_passing_failure() {
        let applied = Arc::new(Mutex::new(Vec::new()));
        let backend = choosy(1, Arc::clone(&applied));
        let (queue, incoming) = sync_channel(8);
        let pending = Pending::default();
        for account in ["refused", "flaky", "fine"] {
            let settle = settle(account);
            lock(&pending.releases)
                .insert(pending_key(settle.key()), settle.reserved - settle.cost);
            assert!(queue.try_send(Message::Settle(settle)).is_ok());
        }
        drop(queue);
        let stats = BudgetStats::default();
        // One batch: the queue is read whole before anything is written; the loop returns
        // once the queue is empty and closed.
        settle_loop(backend, incoming, &stats, &pending);
        assert_eq!(*lock(&applied), ["fine", "flaky"]);
        assert_eq!((stats.settled(), stats.settles_abandoned()), (2, 1));
        // The batch, `refused` alone, `flaky` alone the first time.
        assert_eq!(stats.failed_writes(), 3);
        let left = lock(&pending.releases);
        assert!(left.is_empty(), "{left:?}");
    }
}
