//! The ledger: totals by attribution key in a concurrent map, readable at any time.
//!
//! Each key's totals live in a cell; a call is added to a cell under one lock, so the tokens and
//! the cost of a key are never torn. Keys shared by many threads (model, feature, agent, org,
//! user) are striped: each thread adds to its own stripe and a read sums
//! the stripes, so threads on distinct sessions do not contend.
//!
//! Memory is bounded by the retention policy: closed sessions beyond
//! [`Retention::max_closed_sessions`] are evicted oldest first, and closed sessions older than
//! [`Retention::ttl`] are evicted, each with the declared combinations that include it (session
//! × model, …); evictions are counted. Keys of the agent, user, org and feature dimensions and
//! combinations without the session are held up to [`Retention::max_keys`]: past it (and a
//! sixteenth more, so a sweep is not run for every new key), the least recently charged are
//! evicted in one sweep, down to the limit (each counted in [`Diagnostics::key_evictions`]). A
//! cell records, at each charge, how many such keys had been made: the sweep evicts the keys
//! charged longest ago in that count; a span that still holds an evicted key's cell charges the
//! key's new cell. Model keys are never evicted: the global total is their sum (agent runs,
//! which have no one model, are counted apart), and there are as many as distinct model names.
//! Retention is lock-based: a session's open count changes (span opened, span closed) and is
//! read for eviction only under its map entry's lock, and a session is counted open before its
//! cell is handed to a span, so an open session's cell is never evicted from under it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use serde::Serialize;

use crate::totals::{Attribution, Totals};

/// One attribution dimension.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    /// Session id.
    Session,
    /// Agent name.
    Agent,
    /// User (hashed).
    User,
    /// Organisation.
    Org,
    /// Feature.
    Feature,
    /// Model, as resolved in the price table (or as reported when unpriced).
    Model,
}

impl Dimension {
    /// Lower-case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Dimension::Session => "session",
            Dimension::Agent => "agent",
            Dimension::User => "user",
            Dimension::Org => "org",
            Dimension::Feature => "feature",
            Dimension::Model => "model",
        }
    }
}

/// A ledger key: one dimension's value, or a declared combination of two.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum LedgerKey {
    /// One dimension.
    One(Dimension, Arc<str>),
    /// A combination declared with
    /// [`CostLayerBuilder::combination`](crate::CostLayerBuilder::combination).
    Two((Dimension, Arc<str>), (Dimension, Arc<str>)),
}

impl LedgerKey {
    /// A one-dimension key.
    pub fn one(dimension: Dimension, value: &str) -> Self {
        LedgerKey::One(dimension, Arc::from(value))
    }

    /// A combination key (order as declared).
    pub fn two(a: (Dimension, &str), b: (Dimension, &str)) -> Self {
        LedgerKey::Two((a.0, Arc::from(a.1)), (b.0, Arc::from(b.1)))
    }
}

/// How long closed sessions stay in the ledger, and how many keys of the other dimensions it
/// holds:
///
/// ```
/// # use cost_layer::Retention;
/// let retention = Retention {
///     max_closed_sessions: Some(10_000),
///     ..Retention::default()
/// };
/// # let _ = retention;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Closed sessions kept; the oldest beyond it are evicted. `None`: no limit.
    pub max_closed_sessions: Option<usize>,
    /// Closed sessions older than this are evicted. `None`: no limit.
    pub ttl: Option<Duration>,
    /// Keys of the agent, user, org and feature dimensions and combinations without the session
    /// kept; beyond it the least recently charged are evicted (model keys never are). `None`: no
    /// limit, for a program whose users, orgs and features are few: each distinct value then
    /// stays for the ledger's life.
    pub max_keys: Option<usize>,
}

impl Default for Retention {
    /// 100 000 closed sessions, no TTL, 100 000 other keys.
    fn default() -> Self {
        Retention {
            max_closed_sessions: Some(100_000),
            ttl: None,
            max_keys: Some(100_000),
        }
    }
}

/// Counted problems and events of the layer. Each cause also logs one warning (per callsite
/// where it applies), except calls without usage, which are only counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Diagnostics {
    /// Field values rejected: negative, non-numeric, or of the wrong type.
    pub bad_field_values: u64,
    /// Calls not charged because their usage was invalid.
    pub rejected_calls: u64,
    /// Calls the price table could not price (their model has no price, or none for the
    /// call's tier, tools or endpoint). The first of each model for each reason is warned about
    /// (target `cost_layer::prices`) with that reason, and with the cost its provider reported
    /// if any.
    pub unpriced_calls: u64,
    /// Usage on a span whose subtree already charged its calls (aggregate usage recorded by
    /// agent or workflow spans), ignored so it is not counted twice.
    pub aggregate_usage_ignored: u64,
    /// Close callbacks that panicked (caught).
    pub callback_panics: u64,
    /// Sessions evicted by retention (each with its combinations, not counted apart).
    pub evictions: u64,
    /// Closed calls a [`CallSink`](crate::CallSink) could not take (its queue was full, or its
    /// writer had stopped): they are in the ledger but not in the sink's store.
    pub records_dropped: u64,
    /// Calls charged under a session the ledger had already evicted (a span that follows from
    /// the session, through `follows_from`, and closes after its eviction): they are in the
    /// model's and every other key's totals, but the evicted session cannot show them.
    pub posts_to_evicted_sessions: u64,
    /// Prices that charged calls although they were read longer ago than the age limit
    /// ([`CostLayerBuilder::price_age_limit`](crate::CostLayerBuilder::price_age_limit)), each
    /// counted once (and warned about once per date, target `cost_layer::prices`).
    pub stale_prices: u64,
    /// Call spans that closed with no usage recorded and nothing charged under them: a request
    /// that failed, or one whose usage never arrived (a stream dropped before its last chunk, a
    /// timeout, a cancelled task). Nothing is charged; what the provider billed for them, if
    /// anything, is unknown. Only counted: failed requests end this way too.
    pub calls_without_usage: u64,
    /// `#[llm_call]` calls whose span the subscriber's filter disabled (a global `EnvFilter` at
    /// `warn` hides `info` spans from every layer): the layer never saw them, so they are in no
    /// total and no budget applied to them. Counted by the outermost `CostLayer` (or, when
    /// downcasts reach none, one registered with the dispatcher: inside `reload::Layer`), and
    /// warned about once. Spans made by hand that a filter disables cannot be counted: nothing reaches
    /// any layer.
    pub calls_hidden_by_filter: u64,
    /// Keys other than sessions and models evicted by [`Retention::max_keys`], least recently
    /// charged first: their totals are gone from the ledger (a later call starts them anew).
    pub key_evictions: u64,
    /// Calls that ran at a service tier their model's price has no prices for (OpenAI's `flex`
    /// on a model the table prices at standard only, Anthropic's `priority`), priced at the
    /// standard prices instead: too much for a discount tier, possibly too little for a premium
    /// one. Counted, and warned about once (target `cost_layer::prices`); give the model the
    /// tier's prices in the table to price them at it.
    pub tier_fallbacks: u64,
    /// Usage recorded with no LLM-call span current or above the current span
    /// (`record_usage`, a `stream::track_stream` made outside the call, or either inside an
    /// `#[llm_call]` whose span the subscriber's filter disabled, which
    /// [`calls_hidden_by_filter`](Self::calls_hidden_by_filter) counts too): it reached no
    /// call, so it is in no total. Each record is counted, by the outermost `CostLayer` of the
    /// dispatcher, and the first warned about.
    pub usage_outside_calls: u64,
    /// Priced calls whose cost by the price table disagreed, beyond rounding
    /// ([`Money::agrees_with_reported`](cost_core::Money::agrees_with_reported)), with the cost
    /// their provider reported (`cost.reported_cost_usd`: OpenRouter's and Perplexity's
    /// `usage.cost`, read by the adapters): the table's price for the model is likely out of
    /// date. The call is charged at the table's price; the first of each model is warned about
    /// (target `cost_layer::prices`).
    pub reported_cost_mismatches: u64,
    /// Response streams tracked as calls ([`stream::track_stream`](crate::stream::track_stream))
    /// that ended without any chunk carrying usage: OpenAI's Chat Completions streams without
    /// `stream_options: {"include_usage": true}`, or a reader that misses the events holding
    /// it. The provider billed the call; its cost is unknown and in no total (the call is in
    /// [`calls_without_usage`](Self::calls_without_usage) too). Counted by the outermost
    /// `CostLayer` of the dispatcher, and the first warned about.
    pub streams_ended_without_usage: u64,
    /// Calls that spent under a deny budget that applies to them without reserving before they
    /// ran (an `#[llm_call]` without `max_output_tokens`, a span no `budget::reserve` reached):
    /// no budget could stop them, even one already over its limit; their cost was counted
    /// after they ran. The first is warned about (target `cost_layer::budget`), naming the
    /// budget.
    pub calls_unchecked_by_budgets: u64,
}

impl Diagnostics {
    /// Every count with its name (the field's), in the order of the fields: what the metric
    /// exporters publish as [`DIAGNOSTICS`](crate::export::DIAGNOSTICS) by `kind`.
    pub fn counts(&self) -> [(&'static str, u64); 17] {
        // Destructured: a new count cannot be left out.
        let Diagnostics {
            bad_field_values,
            rejected_calls,
            unpriced_calls,
            aggregate_usage_ignored,
            callback_panics,
            evictions,
            records_dropped,
            posts_to_evicted_sessions,
            stale_prices,
            calls_without_usage,
            calls_hidden_by_filter,
            key_evictions,
            tier_fallbacks,
            usage_outside_calls,
            reported_cost_mismatches,
            streams_ended_without_usage,
            calls_unchecked_by_budgets,
        } = *self;
        [
            ("bad_field_values", bad_field_values),
            ("rejected_calls", rejected_calls),
            ("unpriced_calls", unpriced_calls),
            ("aggregate_usage_ignored", aggregate_usage_ignored),
            ("callback_panics", callback_panics),
            ("evictions", evictions),
            ("records_dropped", records_dropped),
            ("posts_to_evicted_sessions", posts_to_evicted_sessions),
            ("stale_prices", stale_prices),
            ("calls_without_usage", calls_without_usage),
            ("calls_hidden_by_filter", calls_hidden_by_filter),
            ("key_evictions", key_evictions),
            ("tier_fallbacks", tier_fallbacks),
            ("usage_outside_calls", usage_outside_calls),
            ("reported_cost_mismatches", reported_cost_mismatches),
            ("streams_ended_without_usage", streams_ended_without_usage),
            ("calls_unchecked_by_budgets", calls_unchecked_by_budgets),
        ]
    }
}

#[derive(Default)]
pub(crate) struct DiagnosticCounters {
    pub(crate) bad_field_values: AtomicU64,
    pub(crate) rejected_calls: AtomicU64,
    pub(crate) unpriced_calls: AtomicU64,
    pub(crate) aggregate_usage_ignored: AtomicU64,
    pub(crate) callback_panics: AtomicU64,
    pub(crate) evictions: AtomicU64,
    pub(crate) records_dropped: AtomicU64,
    pub(crate) posts_to_evicted_sessions: AtomicU64,
    pub(crate) stale_prices: AtomicU64,
    pub(crate) calls_without_usage: AtomicU64,
    pub(crate) calls_hidden_by_filter: AtomicU64,
    pub(crate) key_evictions: AtomicU64,
    pub(crate) tier_fallbacks: AtomicU64,
    pub(crate) usage_outside_calls: AtomicU64,
    pub(crate) reported_cost_mismatches: AtomicU64,
    pub(crate) streams_ended_without_usage: AtomicU64,
    pub(crate) calls_unchecked_by_budgets: AtomicU64,
    /// The warning about posts to evicted sessions.
    pub(crate) evicted_post_warning: OnceWarning,
    /// The warning about calls priced at standard for want of their tier's prices.
    pub(crate) tier_fallback_warning: OnceWarning,
    /// A call hidden by the subscriber's filter was warned about.
    hidden_call_warned: std::sync::atomic::AtomicBool,
    /// Usage recorded outside any call was warned about.
    usage_outside_warned: std::sync::atomic::AtomicBool,
    /// A stream that ended without usage was warned about.
    stream_without_usage_warned: std::sync::atomic::AtomicBool,
    /// A call no deny budget could check was warned about.
    unchecked_call_warned: std::sync::atomic::AtomicBool,
}

impl DiagnosticCounters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Bumps `counter`; `true` the first time `warned` is asked, for a warning given once.
    fn bump_first(counter: &AtomicU64, warned: &std::sync::atomic::AtomicBool) -> bool {
        Self::bump(counter);
        !warned.swap(true, Ordering::Relaxed)
    }

    /// Counts an `#[llm_call]` call whose span the subscriber's filter disabled; `true` for the
    /// first, to be warned about.
    pub(crate) fn count_hidden_call(&self) -> bool {
        Self::bump_first(&self.calls_hidden_by_filter, &self.hidden_call_warned)
    }

    /// Counts usage recorded with no call span to take it; `true` for the first, to be warned
    /// about.
    pub(crate) fn count_usage_outside_call(&self) -> bool {
        Self::bump_first(&self.usage_outside_calls, &self.usage_outside_warned)
    }

    /// Counts a tracked stream that ended without usage; `true` for the first, to be warned
    /// about.
    pub(crate) fn count_stream_without_usage(&self) -> bool {
        Self::bump_first(
            &self.streams_ended_without_usage,
            &self.stream_without_usage_warned,
        )
    }

    /// Counts a call that spent under a deny budget without reserving first; `true` for the
    /// first, to be warned about.
    pub(crate) fn count_unchecked_call(&self) -> bool {
        Self::bump_first(
            &self.calls_unchecked_by_budgets,
            &self.unchecked_call_warned,
        )
    }

    fn posted_to_evicted_session(&self) {
        Self::bump(&self.posts_to_evicted_sessions);
        self.evicted_post_warning.make_due();
    }

    /// Counts a call priced at standard because its model has no prices for its tier.
    #[cold]
    pub(crate) fn fell_back_to_standard(&self) {
        Self::bump(&self.tier_fallbacks);
        self.tier_fallback_warning.make_due();
    }

    fn snapshot(&self) -> Diagnostics {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Diagnostics {
            bad_field_values: read(&self.bad_field_values),
            rejected_calls: read(&self.rejected_calls),
            unpriced_calls: read(&self.unpriced_calls),
            aggregate_usage_ignored: read(&self.aggregate_usage_ignored),
            callback_panics: read(&self.callback_panics),
            evictions: read(&self.evictions),
            records_dropped: read(&self.records_dropped),
            posts_to_evicted_sessions: read(&self.posts_to_evicted_sessions),
            stale_prices: read(&self.stale_prices),
            calls_without_usage: read(&self.calls_without_usage),
            calls_hidden_by_filter: read(&self.calls_hidden_by_filter),
            key_evictions: read(&self.key_evictions),
            tier_fallbacks: read(&self.tier_fallbacks),
            usage_outside_calls: read(&self.usage_outside_calls),
            reported_cost_mismatches: read(&self.reported_cost_mismatches),
            streams_ended_without_usage: read(&self.streams_ended_without_usage),
            calls_unchecked_by_budgets: read(&self.calls_unchecked_by_budgets),
        }
    }
}

/// A warning given once, by the first caller that takes it after something made it due (made
/// due where no event may be sent, given where one may).
#[derive(Default)]
pub(crate) struct OnceWarning(std::sync::atomic::AtomicU8);

impl OnceWarning {
    const NOT_DUE: u8 = 0;
    const DUE: u8 = 1;
    const GIVEN: u8 = 2;

    /// The warning is due, unless given already.
    pub(crate) fn make_due(&self) {
        let _ = self.0.compare_exchange(
            Self::NOT_DUE,
            Self::DUE,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    /// `true` once, for the caller that gives the warning (after it was made due).
    pub(crate) fn take(&self) -> bool {
        self.0.load(Ordering::Relaxed) == Self::DUE
            && self
                .0
                .compare_exchange(Self::DUE, Self::GIVEN, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

/// A stripe on its own cache line, so neighbouring stripes do not share one.
#[repr(align(128))]
#[derive(Default)]
struct Stripe(Mutex<Totals>);

/// Totals of one key.
pub(crate) struct Cell {
    stripes: Box<[Stripe]>,
    /// Open session spans with this key (sessions only): an open session is never evicted.
    open: AtomicU32,
    /// The sequence number of the session's latest close (sessions only): only the retention
    /// queue's entry for that close may evict it.
    last_close: AtomicU64,
    /// Removed from the ledger by retention: spans still holding it post to no visible key.
    evicted: AtomicBool,
    /// The key, when retention may evict it for being charged least recently (not sessions,
    /// their combinations, or models): a span holding the cell after its eviction charges the
    /// key's cell anew.
    evictable: Option<LedgerKey>,
    /// The ledger's key clock at the latest charge (evictable keys only).
    last_charged: AtomicU64,
    /// Of a session's cell: the cells of the combinations with the session, found here (not in
    /// the map) by the session's spans, and evicted with it. A combination is made, and put in
    /// the map, under this lock with `evicted` read; eviction sets `evicted` under it: so each
    /// one belongs to one session cell and none is kept after that cell's eviction. Lock order:
    /// this lock, then a map shard's; never this one while a map reference is held.
    combinations: Mutex<Vec<(LedgerKey, Arc<Cell>)>>,
}

impl Cell {
    fn new(stripes: usize, evictable: Option<LedgerKey>) -> Self {
        Cell {
            stripes: (0..stripes.max(1)).map(|_| Stripe::default()).collect(),
            open: AtomicU32::new(0),
            last_close: AtomicU64::new(0),
            evicted: AtomicBool::new(false),
            evictable,
            last_charged: AtomicU64::new(0),
            combinations: Mutex::new(Vec::new()),
        }
    }

    /// Adds to the stripe of the calling thread (`stripe` from [`stripe_index`]).
    #[inline]
    pub(crate) fn add(&self, stripe: usize, totals: &Totals) {
        self.update(stripe, |sum| sum.add(totals));
    }

    /// Changes the stripe of the calling thread (`stripe` from [`stripe_index`]) under its lock.
    #[inline]
    fn update(&self, stripe: usize, change: impl FnOnce(&mut Totals)) {
        let stripe = &self.stripes[stripe & (self.stripes.len() - 1)];
        change(&mut lock(&stripe.0));
    }

    pub(crate) fn read(&self) -> Totals {
        let mut sum = Totals::default();
        for stripe in self.stripes.iter() {
            sum.add(&lock(&stripe.0));
        }
        sum
    }
}

/// Marks `cell` charged at `now` (a reading of the ledger's key clock). Never backwards: a
/// thread that read the clock, then stalled while other threads charged the key at later
/// readings, leaves their reading, or a key charged on every call could look the least recently
/// charged and be evicted with its totals. Read first: a key charged from many threads keeps its
/// cache line shared.
#[inline]
fn mark_charged(cell: &Cell, now: u64) {
    if cell.last_charged.load(Ordering::Relaxed) < now {
        cell.last_charged.fetch_max(now, Ordering::Relaxed);
    }
}

/// Locks a mutex, recovering from poisoning: totals are plain counters and stay meaningful.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A small number per thread, to spread threads over stripes.
pub(crate) fn stripe_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    INDEX.with(|i| *i)
}

/// Cells of one attribution, looked up once when the attribution is made, so a call adds to
/// them without hashing a key.
#[derive(Clone)]
pub(crate) struct AttributionCells {
    pub(crate) attribution: Attribution,
    pub(crate) cells: Vec<Arc<Cell>>,
    /// Combinations with the model, completed per call.
    pub(crate) model_combinations: Vec<ModelCombination>,
    /// The session's cell (also in `cells`), which holds the combinations with the session.
    pub(crate) session: Option<Arc<Cell>>,
    /// The agent run the span belongs to (for agent budgets), when budgets are on.
    pub(crate) agent_run: Option<Arc<str>>,
}

/// A declared combination of the model with another dimension, that dimension's value known:
/// its key is made per call, with the call's model.
#[derive(Clone)]
pub(crate) struct ModelCombination {
    other: (Dimension, Arc<str>),
    /// Declared with the model first.
    model_first: bool,
}

impl ModelCombination {
    fn key(&self, model: &Arc<str>) -> LedgerKey {
        let model = (Dimension::Model, Arc::clone(model));
        let other = (self.other.0, Arc::clone(&self.other.1));
        if self.model_first {
            LedgerKey::Two(model, other)
        } else {
            LedgerKey::Two(other, model)
        }
    }
}

type Map = DashMap<LedgerKey, Arc<Cell>, foldhash::fast::RandomState>;

/// Closed sessions, oldest first, for retention.
#[derive(Default)]
struct ClosedSessions {
    queue: VecDeque<ClosedSession>,
    /// The sequence number of the latest close.
    last: u64,
}

/// One close of a session.
struct ClosedSession {
    session: Arc<str>,
    at: Instant,
    /// Matches the cell's `last_close` while this is the session's latest close.
    seq: u64,
}

pub(crate) struct LedgerInner {
    cells: Map,
    combinations: Vec<(Dimension, Dimension)>,
    retention: Retention,
    closed_sessions: Mutex<ClosedSessions>,
    pub(crate) diagnostics: DiagnosticCounters,
    stripes: usize,
    clock: Arc<dyn Fn() -> Instant + Send + Sync>,
    /// Keys retention may evict for being charged least recently ([`Cell::evictable`]), held.
    evictable_keys: AtomicUsize,
    /// Evictable keys made so far: a cell records its value at each charge, so a sweep finds
    /// the keys charged longest ago, counted in keys made since (a clock only the making of a
    /// key moves: charges only read it).
    key_clock: AtomicU64,
    /// Held by the one thread sweeping.
    sweeping: Mutex<()>,
    /// Agent runs closed: the global total's (a run has no one model, and the global total is
    /// otherwise the model cells' sum).
    agent_runs: AtomicU64,
}

/// A cloneable handle to the ledger: totals by attribution key, readable at any time from any
/// thread.
#[derive(Clone)]
pub struct Ledger {
    pub(crate) inner: Arc<LedgerInner>,
    pub(crate) user_ids: Arc<crate::attribution::UserIds>,
    pub(crate) layer_id: u64,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("keys", &self.inner.cells.len())
            .finish_non_exhaustive()
    }
}

/// Every key's totals at one moment.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LedgerSnapshot {
    /// Totals of every call the layer charged.
    pub global: Totals,
    /// Totals by key, sorted.
    pub keys: Vec<(LedgerKey, Totals)>,
    /// The diagnostics counters.
    pub diagnostics: Diagnostics,
}

impl LedgerSnapshot {
    /// Keys of one dimension, with their totals.
    pub fn by(&self, dimension: Dimension) -> impl Iterator<Item = (&str, &Totals)> {
        self.keys.iter().filter_map(move |(key, totals)| match key {
            LedgerKey::One(d, value) if *d == dimension => Some((&**value, totals)),
            _ => None,
        })
    }
}

impl LedgerInner {
    pub(crate) fn new(
        combinations: Vec<(Dimension, Dimension)>,
        retention: Retention,
        clock: Arc<dyn Fn() -> Instant + Send + Sync>,
    ) -> Self {
        let parallelism = std::thread::available_parallelism().map_or(4, |n| n.get());
        let stripes = parallelism.next_power_of_two().clamp(2, 16);
        // Each pair once (declared twice, a call would be added to its cell twice), and none of
        // a dimension with itself (no key of its own to keep apart).
        let mut distinct = Vec::with_capacity(combinations.len());
        for pair in combinations {
            if pair.0 != pair.1 && !distinct.contains(&pair) {
                distinct.push(pair);
            }
        }
        LedgerInner {
            cells: Map::with_hasher(foldhash::fast::RandomState::default()),
            combinations: distinct,
            retention,
            closed_sessions: Mutex::new(ClosedSessions::default()),
            diagnostics: DiagnosticCounters::default(),
            stripes,
            clock,
            evictable_keys: AtomicUsize::new(0),
            key_clock: AtomicU64::new(0),
            sweeping: Mutex::new(()),
            agent_runs: AtomicU64::new(0),
        }
    }

    pub(crate) fn now(&self) -> Instant {
        (self.clock)()
    }

    /// The cell of a key, created when absent (for a combination with a session, see
    /// [`LedgerInner::session_combination`]).
    pub(crate) fn cell(&self, key: LedgerKey) -> Arc<Cell> {
        if let Some(cell) = self.cells.get(&key) {
            return Arc::clone(cell.value());
        }
        // Keys many threads charge at once are striped; a session, a user, an org or a
        // combination is charged by few at a time, and there can be many of them.
        let stripes = match key {
            LedgerKey::One(Dimension::Agent | Dimension::Feature | Dimension::Model, _) => {
                self.stripes
            }
            _ => 1,
        };
        let evictable = match &key {
            LedgerKey::One(Dimension::Session | Dimension::Model, _) => false,
            LedgerKey::One(..) => true,
            LedgerKey::Two((a, _), (b, _)) => *a != Dimension::Session && *b != Dimension::Session,
        };
        let (cell, made) = match self.cells.entry(key) {
            dashmap::Entry::Occupied(entry) => (Arc::clone(entry.get()), false),
            dashmap::Entry::Vacant(entry) => {
                let kept = evictable.then(|| entry.key().clone());
                let cell = Arc::new(Cell::new(stripes, kept));
                if evictable {
                    let now = self.key_clock.fetch_add(1, Ordering::Relaxed) + 1;
                    cell.last_charged.store(now, Ordering::Relaxed);
                }
                entry.insert(Arc::clone(&cell));
                (cell, true)
            }
        };
        if made && evictable {
            let held = self.evictable_keys.fetch_add(1, Ordering::Relaxed) + 1;
            if let Some(max) = self.retention.max_keys
                && held > max.saturating_add(max / 16).saturating_add(1)
            {
                self.evict_least_recently_charged(max);
            }
        }
        cell
    }

    /// `cell`, marked charged now (by the key clock); or, when retention evicted its key while
    /// a span held it, the key's cell now.
    #[inline]
    fn charged<'c>(&self, cell: &'c Arc<Cell>) -> std::borrow::Cow<'c, Arc<Cell>> {
        let Some(key) = &cell.evictable else {
            return std::borrow::Cow::Borrowed(cell);
        };
        if cell.evicted.load(Ordering::Relaxed) {
            return self.charged_anew(key);
        }
        mark_charged(cell, self.key_clock.load(Ordering::Relaxed));
        std::borrow::Cow::Borrowed(cell)
    }

    /// Adds a call's totals to `cell`, which [`LedgerInner::charged`] returned. When retention
    /// evicted the cell's key in between (this thread stalled past the charges of a whole
    /// sweep's worth of other keys), the call goes to the key's cell now instead: an addition
    /// made to a cell already out of the map would be in no total the ledger shows. (When the
    /// eviction comes after this check, the call leaves with the key's other totals, as
    /// eviction forgets a key.)
    #[inline]
    fn add_charged(&self, cell: &Cell, stripe: usize, totals: &Totals) {
        self.change_charged(cell, stripe, |sum| sum.add(totals));
    }

    /// [`LedgerInner::add_charged`] for any change of the totals.
    #[inline]
    fn change_charged(&self, cell: &Cell, stripe: usize, change: impl Fn(&mut Totals)) {
        cell.update(stripe, &change);
        if let Some(key) = &cell.evictable
            && cell.evicted.load(Ordering::Acquire)
        {
            self.charged_anew(key).update(stripe, change);
        }
    }

    #[cold]
    #[inline(never)]
    fn charged_anew(&self, key: &LedgerKey) -> std::borrow::Cow<'static, Arc<Cell>> {
        std::borrow::Cow::Owned(self.cell(key.clone()))
    }

    /// Evicts the keys charged least recently, down to `max` (one thread at a time; another
    /// finding a sweep under way leaves it the work). O(keys held).
    #[cold]
    #[inline(never)]
    fn evict_least_recently_charged(&self, max: usize) {
        let Ok(_sweeping) = self.sweeping.try_lock() else {
            return;
        };
        let held: Vec<(u64, LedgerKey, Arc<Cell>)> = self
            .cells
            .iter()
            .filter(|entry| entry.value().evictable.is_some())
            .map(|entry| {
                let cell = entry.value();
                (
                    cell.last_charged.load(Ordering::Relaxed),
                    entry.key().clone(),
                    Arc::clone(cell),
                )
            })
            .collect();
        self.evict_oldest_read(held, max);
    }

    /// Evicts the keys of `held` (each with its last-charged mark as read) charged least
    /// recently, down to `max` of them, but for those charged since they were read.
    fn evict_oldest_read(&self, mut held: Vec<(u64, LedgerKey, Arc<Cell>)>, max: usize) {
        if held.len() > max {
            let excess = held.len() - max;
            held.select_nth_unstable_by_key(excess - 1, |(charged, ..)| *charged);
            for (charged, key, cell) in held.drain(..excess) {
                // Not a key charged since it was read: the map is read shard by shard, and a
                // sweep stalled on the way reads the keys of later shards newer than the marks
                // it read before (a key charged on every call would look the oldest).
                if self
                    .cells
                    .remove_if(&key, |_, kept| {
                        Arc::ptr_eq(kept, &cell)
                            && kept.last_charged.load(Ordering::Relaxed) == charged
                    })
                    .is_some()
                {
                    // Released after the removal: a thread that reads it set (acquiring it)
                    // finds the key gone from the map.
                    cell.evicted.store(true, Ordering::Release);
                    self.evictable_keys.fetch_sub(1, Ordering::Relaxed);
                    DiagnosticCounters::bump(&self.diagnostics.key_evictions);
                }
            }
        }
    }

    /// The cell of the combination `key` for a span whose session's cell is `session`: one that
    /// session cell holds when `key` includes the session, else the map's.
    fn combination_cell(&self, session: Option<&Arc<Cell>>, key: LedgerKey) -> Arc<Cell> {
        match (session, &key) {
            (
                Some(session),
                LedgerKey::Two((Dimension::Session, _), _)
                | LedgerKey::Two(_, (Dimension::Session, _)),
            ) => self.session_combination(session, key),
            _ => self.cell(key),
        }
    }

    /// The cell of `key`, a combination with the session whose cell is `session`: the one that
    /// session cell holds, made when absent. Each cell a session id gets in turn (it is evicted,
    /// then seen again) has combinations of its own, so they add up to what it shows. Made for a
    /// session cell already evicted (a span following from a session evicted before it closed),
    /// it is kept nowhere: its calls count as posted to an evicted session.
    fn session_combination(&self, session: &Cell, key: LedgerKey) -> Arc<Cell> {
        let mut combinations = lock(&session.combinations);
        if let Some((_, cell)) = combinations.iter().find(|(k, _)| *k == key) {
            return Arc::clone(cell);
        }
        // One stripe, as the session's own cell: a session's calls are seldom on many threads.
        let cell = Arc::new(Cell::new(1, None));
        if session.evicted.load(Ordering::Relaxed) {
            cell.evicted.store(true, Ordering::Relaxed);
        } else {
            combinations.push((key.clone(), Arc::clone(&cell)));
            // Replaces the cell of an earlier session cell of the same id, on its way out.
            self.cells.insert(key, Arc::clone(&cell));
        }
        cell
    }

    /// Looks up the cells of an attribution, once per attribution.
    pub(crate) fn cells_for(&self, attribution: Attribution) -> AttributionCells {
        let value = |d: Dimension| -> Option<&Arc<str>> {
            match d {
                Dimension::Session => attribution.session.as_ref(),
                Dimension::Agent => attribution.agent.as_ref(),
                Dimension::User => attribution.user.as_ref(),
                Dimension::Org => attribution.org.as_ref(),
                Dimension::Feature => attribution.feature.as_ref(),
                Dimension::Model => None,
            }
        };
        let mut cells = Vec::with_capacity(5);
        let session = attribution
            .session
            .as_ref()
            .map(|s| self.cell(LedgerKey::One(Dimension::Session, Arc::clone(s))));
        cells.extend(session.clone());
        for d in [
            Dimension::Agent,
            Dimension::User,
            Dimension::Org,
            Dimension::Feature,
        ] {
            if let Some(v) = value(d) {
                cells.push(self.cell(LedgerKey::One(d, Arc::clone(v))));
            }
        }
        let mut model_combinations = Vec::new();
        for &(a, b) in &self.combinations {
            match (a, b) {
                (other, Dimension::Model) | (Dimension::Model, other) => {
                    if let Some(v) = value(other) {
                        model_combinations.push(ModelCombination {
                            other: (other, Arc::clone(v)),
                            model_first: a == Dimension::Model,
                        });
                    }
                }
                _ => {
                    if let (Some(va), Some(vb)) = (value(a), value(b)) {
                        let key = LedgerKey::Two((a, Arc::clone(va)), (b, Arc::clone(vb)));
                        cells.push(self.combination_cell(session.as_ref(), key));
                    }
                }
            }
        }
        AttributionCells {
            attribution,
            cells,
            model_combinations,
            session,
            agent_run: None,
        }
    }

    /// Adds one call's totals to its attribution's cells and its model's.
    /// `model_cell` is the cell of `model` (callers cache it).
    pub(crate) fn post(
        &self,
        cells: &AttributionCells,
        model: &Arc<str>,
        model_cell: &Cell,
        totals: &Totals,
    ) {
        // Every call is posted to exactly one model cell (unpriced ones under their name, calls
        // without a model under `unknown`), so the global total is the sum of the model cells.
        let stripe = stripe_index();
        // Cells retention took out with their session (its own, and its combinations'): counted
        // once a call. Other keys' evicted cells are charged anew (`charged`).
        let mut to_evicted = false;
        let session_gone =
            |cell: &Cell| cell.evictable.is_none() && cell.evicted.load(Ordering::Relaxed);
        for cell in &cells.cells {
            let cell = self.charged(cell);
            self.add_charged(&cell, stripe, totals);
            to_evicted |= session_gone(&cell);
        }
        model_cell.add(stripe, totals);
        for combination in &cells.model_combinations {
            let cell = self.combination_cell(cells.session.as_ref(), combination.key(model));
            let cell = self.charged(&cell);
            self.add_charged(&cell, stripe, totals);
            to_evicted |= session_gone(&cell);
        }
        if to_evicted {
            self.diagnostics.posted_to_evicted_session();
        }
    }

    /// Counts a closed agent run in its attribution's cells (session, agent, user, org, feature
    /// and their combinations; not in a model's: a run has no one model) and in the global
    /// total.
    pub(crate) fn post_agent_run(&self, cells: &AttributionCells) {
        self.agent_runs.fetch_add(1, Ordering::Relaxed);
        let stripe = stripe_index();
        for cell in &cells.cells {
            let cell = self.charged(cell);
            self.change_charged(&cell, stripe, |sum| {
                sum.agent_runs = sum.agent_runs.saturating_add(1);
            });
        }
    }

    /// Counts a session span open. Under the map's entry lock, which eviction's `remove_if`
    /// also takes: a session is never evicted between its cell being found and counted open.
    pub(crate) fn session_opened(&self, session: &Arc<str>) {
        let key = LedgerKey::One(Dimension::Session, Arc::clone(session));
        let entry = self
            .cells
            .entry(key)
            .or_insert_with(|| Arc::new(Cell::new(1, None)));
        entry.open.fetch_add(1, Ordering::Relaxed);
    }

    /// Records a session close and applies the retention policy.
    pub(crate) fn session_closed(&self, session: &Arc<str>) {
        let key = LedgerKey::One(Dimension::Session, Arc::clone(session));
        let now = self.now();
        let mut closed = lock(&self.closed_sessions);
        closed.last += 1;
        let seq = closed.last;
        // Under the entry's write lock, as opening and eviction: the open count only changes,
        // and is only read for eviction, under that lock.
        if let Some(cell) = self.cells.get_mut(&key) {
            let _ = cell
                .open
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
            cell.last_close.store(seq, Ordering::Relaxed);
        }
        closed.queue.push_back(ClosedSession {
            session: Arc::clone(session),
            at: now,
            seq,
        });
        self.evict(&mut closed, now);
    }

    /// Evicts closed sessions beyond the maximum or past the TTL, oldest first. O(1) per
    /// eviction: a session closed again later carries a newer sequence number in its cell, so
    /// its older queue entries pass without a search.
    fn evict(&self, closed: &mut ClosedSessions, now: Instant) {
        let max = self.retention.max_closed_sessions.unwrap_or(usize::MAX);
        while let Some(oldest) = closed.queue.front() {
            let expired = self
                .retention
                .ttl
                .is_some_and(|ttl| now.saturating_duration_since(oldest.at) >= ttl);
            if closed.queue.len() <= max && !expired {
                break;
            }
            let key = LedgerKey::One(Dimension::Session, Arc::clone(&oldest.session));
            let seq = oldest.seq;
            let removed = self.cells.remove_if(&key, |_, cell| {
                cell.open.load(Ordering::Relaxed) == 0
                    && cell.last_close.load(Ordering::Relaxed) == seq
            });
            if let Some((_, cell)) = removed {
                // Its combinations go with it (evictions count sessions).
                let combinations = {
                    let mut combinations = lock(&cell.combinations);
                    cell.evicted.store(true, Ordering::Relaxed);
                    std::mem::take(&mut *combinations)
                };
                for (key, combination) in combinations {
                    combination.evicted.store(true, Ordering::Relaxed);
                    // Unless a later cell of the same session id has replaced it.
                    self.cells
                        .remove_if(&key, |_, kept| Arc::ptr_eq(kept, &combination));
                }
                DiagnosticCounters::bump(&self.diagnostics.evictions);
            }
            closed.queue.pop_front();
        }
    }

    fn evict_expired(&self) {
        let now = self.now();
        let mut closed = lock(&self.closed_sessions);
        self.evict(&mut closed, now);
    }
}

impl Ledger {
    /// The id of the layer this ledger belongs to ([`CostLayer::id`](crate::CostLayer::id)).
    pub fn layer_id(&self) -> u64 {
        self.layer_id
    }

    /// Totals of a key, or `None` when the ledger has none (never seen, or evicted).
    pub fn get(&self, key: &LedgerKey) -> Option<Totals> {
        self.inner.cells.get(key).map(|cell| cell.read())
    }

    fn one(&self, dimension: Dimension, value: &str) -> Option<Totals> {
        self.get(&LedgerKey::one(dimension, value))
    }

    /// Totals of a session.
    pub fn session(&self, id: &str) -> Option<Totals> {
        self.one(Dimension::Session, id)
    }

    /// Totals of an agent (all its runs).
    pub fn agent(&self, name: &str) -> Option<Totals> {
        self.one(Dimension::Agent, name)
    }

    /// Totals of a user, by the raw id (hashed here the way the layer hashes it).
    pub fn user(&self, raw_id: &str) -> Option<Totals> {
        let key = self.user_ids.key_of(raw_id);
        self.one(Dimension::User, &key)
    }

    /// Totals of an organisation.
    pub fn org(&self, id: &str) -> Option<Totals> {
        self.one(Dimension::Org, id)
    }

    /// Totals of a feature.
    pub fn feature(&self, name: &str) -> Option<Totals> {
        self.one(Dimension::Feature, name)
    }

    /// Totals of a model (its key in the price table, or the reported name when unpriced).
    pub fn model(&self, name: &str) -> Option<Totals> {
        self.one(Dimension::Model, name)
    }

    /// Totals of every call the layer charged (the sum of the model keys, which models are
    /// never evicted), and every agent run closed.
    pub fn global(&self) -> Totals {
        let mut sum = Totals::default();
        for entry in self.inner.cells.iter() {
            if let LedgerKey::One(Dimension::Model, _) = entry.key() {
                sum.add(&entry.value().read());
            }
        }
        sum.agent_runs = self.inner.agent_runs.load(Ordering::Relaxed);
        sum
    }

    /// The diagnostics counters.
    pub fn diagnostics(&self) -> Diagnostics {
        self.inner.diagnostics.snapshot()
    }

    /// The key under which the layer files a raw user id (`u:` + keyed hash, or the raw id).
    pub fn user_key(&self, raw_id: &str) -> String {
        self.user_ids.key_of(raw_id).to_string()
    }

    /// Number of keys held.
    pub fn len(&self) -> usize {
        self.inner.cells.len()
    }

    /// `true` when no key is held.
    pub fn is_empty(&self) -> bool {
        self.inner.cells.is_empty()
    }

    /// Evicts closed sessions past their TTL now (it also happens at every session close).
    pub fn evict_expired(&self) {
        self.inner.evict_expired();
    }

    /// Every key's totals, sorted by key.
    pub fn snapshot(&self) -> LedgerSnapshot {
        let mut keys: Vec<(LedgerKey, Totals)> = self
            .inner
            .cells
            .iter()
            .map(|entry| (entry.key().clone(), entry.value().read()))
            .collect();
        keys.sort_by(|a, b| a.0.cmp(&b.0));
        LedgerSnapshot {
            global: self.global(),
            keys,
            diagnostics: self.diagnostics(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ledger keeping at most `max_keys` evictable keys.
    fn ledger(max_keys: usize) -> LedgerInner {
        LedgerInner::new(
            Vec::new(),
            Retention {
                max_keys: Some(max_keys),
                ..Retention::default()
            },
            Arc::new(Instant::now),
        )
    }

    fn user(name: &str) -> LedgerKey {
        LedgerKey::One(Dimension::User, name.into())
    }

    /// What the map shows under `key`.
    fn shown(ledger: &LedgerInner, key: &LedgerKey) -> Option<Totals> {
        ledger.cells.get(key).map(|cell| cell.read())
    }

    fn one_call() -> Totals {
        Totals {
            llm_calls: 1,
            ..Totals::default()
        }
    }

    /// Makes `keys` one after the other; returns what the map holds of them, in order.
    fn make_all(ledger: &LedgerInner, keys: &[LedgerKey]) -> Vec<bool> {
        for key in keys {
            ledger.cell(key.clone());
        }
        keys.iter()
            .map(|key| ledger.cells.contains_key(key))
            .collect()
    }

    #[test]
    fn a_sweep_leaves_exactly_the_limit_evicting_the_keys_made_first() {
        // Up to 16 + 16 / 16 + 1 = 18 keys are held; the 19th sweeps back down to 16.
        let ledger = ledger(16);
        let users: Vec<LedgerKey> = (0..19).map(|i| user(&format!("u{i}"))).collect();
        let held = make_all(&ledger, &users);
        assert_eq!(held.iter().filter(|held| !**held).count(), 3);
        assert!(!held[0] && !held[1] && !held[2] && held[3..].iter().all(|held| *held));
        assert_eq!(ledger.evictable_keys.load(Ordering::Relaxed), 16);
        assert_eq!(ledger.diagnostics.key_evictions.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn a_sweep_never_evicts_a_key_charged_since_it_read_the_keys_mark() {
        let ledger = ledger(1_000);
        let (hot, cold) = (user("hot"), user("cold"));
        let (hot_cell, cold_cell) = (ledger.cell(hot.clone()), ledger.cell(cold.clone()));
        // Read as a sweep reads the map: the hot key's mark first, then, after a stall, the
        // newer keys made meanwhile.
        let read = |key: &LedgerKey, cell: &Arc<Cell>| {
            (
                cell.last_charged.load(Ordering::Relaxed),
                key.clone(),
                Arc::clone(cell),
            )
        };
        let mut held = vec![read(&hot, &hot_cell), read(&cold, &cold_cell)];
        let newer: Vec<LedgerKey> = (0..3).map(|i| user(&format!("new{i}"))).collect();
        for key in &newer {
            let cell = ledger.cell(key.clone());
            held.push(read(key, &cell));
        }
        // The hot key is charged before the sweep goes on.
        let charged = ledger.charged(&hot_cell);
        ledger.add_charged(&charged, stripe_index(), &one_call());
        ledger.evict_oldest_read(held, 3);
        assert!(ledger.cells.contains_key(&hot), "charged since it was read");
        assert!(!ledger.cells.contains_key(&cold));
        assert_eq!(shown(&ledger, &hot).map(|t| t.llm_calls), Some(1));
    }

    #[test]
    fn combinations_without_the_session_are_evicted_as_keys_are_and_models_never() {
        let ledger = ledger(16);
        let pairs: Vec<LedgerKey> = (0..19)
            .map(|i| {
                LedgerKey::Two(
                    (Dimension::Feature, format!("f{i}").into()),
                    (Dimension::Model, "gpt-4o".into()),
                )
            })
            .collect();
        let held = make_all(&ledger, &pairs);
        assert_eq!(held.iter().filter(|held| !**held).count(), 3);
        let models: Vec<LedgerKey> = (0..40)
            .map(|i| LedgerKey::One(Dimension::Model, format!("m{i}").into()))
            .collect();
        assert!(make_all(&ledger, &models).iter().all(|held| *held));
        assert_eq!(ledger.diagnostics.key_evictions.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn a_stalled_thread_never_makes_a_key_charged_on_every_call_look_cold() {
        let ledger = ledger(4);
        let chat = ledger.cell(LedgerKey::One(Dimension::Feature, "chat".into()));
        // A thread reads the key clock, then stalls before marking the key charged...
        let stalled_reading = ledger.key_clock.load(Ordering::Relaxed);
        // ...while other threads charge it after each new key.
        for i in 0..4 {
            ledger.cell(user(&format!("u{i}")));
            let _ = ledger.charged(&chat);
        }
        mark_charged(&chat, stalled_reading);
        // More keys, `chat` charged after each: the first one's sweep evicts the keys charged
        // least recently, which `chat` is not.
        for i in 4..8 {
            ledger.cell(user(&format!("u{i}")));
            let _ = ledger.charged(&chat);
        }
        assert!(ledger.diagnostics.key_evictions.load(Ordering::Relaxed) > 0);
        assert!(!chat.evicted.load(Ordering::Relaxed));
        assert!(shown(&ledger, &LedgerKey::One(Dimension::Feature, "chat".into())).is_some());
    }

    #[test]
    fn a_call_added_after_its_key_was_evicted_lands_in_the_key_anew() {
        let ledger = ledger(1);
        let held = ledger.cell(user("a"));
        // A call's close finds the key's cell kept, then its thread stalls...
        let charged = ledger.charged(&held);
        assert!(!charged.evicted.load(Ordering::Relaxed));
        // ...while new keys sweep it out of the map.
        for name in ["b", "c", "d"] {
            ledger.cell(user(name));
        }
        assert!(held.evicted.load(Ordering::Relaxed));
        assert_eq!(shown(&ledger, &user("a")), None);
        ledger.add_charged(&charged, stripe_index(), &one_call());
        assert_eq!(shown(&ledger, &user("a")).map(|t| t.llm_calls), Some(1));
        // A cell still kept takes the call once.
        let kept = ledger.cell(user("e"));
        ledger.add_charged(&ledger.charged(&kept), stripe_index(), &one_call());
        assert_eq!(shown(&ledger, &user("e")).map(|t| t.llm_calls), Some(1));
    }
}
