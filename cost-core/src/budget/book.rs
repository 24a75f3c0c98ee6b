//! The budget book: spend and reservations per budget, key and window; reservation before a
//! call, settlement after it, threshold, spike and per-call alerts.
//!
//! Every account is guarded by its own lock ([`super::core`]). A reservation takes the
//! accounts of the deny budgets that apply to the call one at a time, in a fixed order, and
//! checks and books under each lock (reservation, not check-then-act); if one would go over,
//! the ones already booked are released and the call is refused. So no number of racing
//! threads can admit more than a limit. (A refused call's transient booking may make a concurrent call see less room than
//! there is for an instant; it never lets one see more.)

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use dashmap::DashMap;

use super::clock::{Clock, SystemClock, utc_day, utc_month};
use super::config::{Budget, BudgetConfig, BudgetScope, Policy, Window};
use super::core;
use crate::money::Money;

/// The keys of one call, one per scope (`None` where the call has none). Shared strings:
/// cloning keys costs no allocation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallKeys {
    /// A unique id of the call.
    pub call: Arc<str>,
    /// A unique id of the agent run it belongs to.
    pub agent_run: Option<Arc<str>>,
    /// Its session.
    pub session: Option<Arc<str>>,
    /// Its user (as filed: hashed unless configured otherwise).
    pub user: Option<Arc<str>>,
    /// Its organisation.
    pub org: Option<Arc<str>>,
    /// Its feature.
    pub feature: Option<Arc<str>>,
    /// Its model (as resolved in the price table).
    pub model: Option<Arc<str>>,
}

static GLOBAL_KEY: std::sync::LazyLock<Arc<str>> = std::sync::LazyLock::new(|| Arc::from("*"));

impl CallKeys {
    #[inline]
    fn key(&self, scope: BudgetScope) -> Option<&Arc<str>> {
        match scope {
            BudgetScope::Call => Some(&self.call),
            BudgetScope::Agent => self.agent_run.as_ref(),
            BudgetScope::Session => self.session.as_ref(),
            BudgetScope::User => self.user.as_ref(),
            BudgetScope::Org => self.org.as_ref(),
            BudgetScope::Feature => self.feature.as_ref(),
            BudgetScope::Model => self.model.as_ref(),
            BudgetScope::Global => Some(&GLOBAL_KEY),
        }
    }
}

/// A call refused because a deny budget would be exceeded (or, with shared accounts that
/// fail closed, because they could not be reached; or, with
/// [`UnpricedCalls::Deny`](super::UnpricedCalls::Deny), because no price bounds it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BudgetExceeded {
    /// The budget's name.
    pub budget: Arc<str>,
    /// Its scope.
    pub scope: BudgetScope,
    /// The key.
    pub key: Arc<str>,
    /// Spent in the window.
    pub spent: Money,
    /// Reserved by calls in flight.
    pub reserved: Money,
    /// The worst case of the refused call.
    pub requested: Money,
    /// The limit.
    pub limit: Money,
    /// Why the call was refused when the figures do not say; `None` for a refusal on them
    /// (spent + reserved + requested > limit).
    pub cause: Option<Arc<RefusalCause>>,
}

/// Why a call was refused other than by its budget's figures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefusalCause {
    /// The budget's shared accounts could not be reached and the book fails closed: why. The
    /// figures are then unknown (zero).
    Unavailable(String),
    /// No price bounds the call's cost (its model has none at the terms the call asks for) and
    /// the book denies such calls: the model it named. `requested` is then zero.
    Unpriced(String),
}

impl BudgetExceeded {
    /// Why the budget's shared accounts could not be checked, when that refused the call.
    pub fn unavailable(&self) -> Option<&str> {
        match self.cause.as_deref() {
            Some(RefusalCause::Unavailable(why)) => Some(why),
            _ => None,
        }
    }

    /// The model no price bounds, when that refused the call.
    pub fn unpriced(&self) -> Option<&str> {
        match self.cause.as_deref() {
            Some(RefusalCause::Unpriced(model)) => Some(model),
            _ => None,
        }
    }
}

impl std::fmt::Display for BudgetExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let BudgetExceeded {
            budget,
            scope,
            key,
            spent,
            reserved,
            requested,
            limit,
            cause,
        } = self;
        let scope = scope.as_str();
        match cause.as_deref() {
            Some(RefusalCause::Unavailable(why)) => write!(
                f,
                "budget `{budget}` for {scope} `{key}` cannot be checked (its shared accounts are unavailable: {why}) and fails closed: call refused"
            ),
            Some(RefusalCause::Unpriced(model)) => write!(
                f,
                "budget `{budget}` for {scope} `{key}` cannot bound a call of `{model}`, which has no price at the terms it asks for, and unpriced calls are denied: call refused"
            ),
            None => write!(
                f,
                "budget `{budget}` for {scope} `{key}` would be exceeded: spent ${spent} + reserved ${reserved} + this call's worst case ${requested} > limit ${limit}"
            ),
        }
    }
}

impl std::error::Error for BudgetExceeded {}

/// Something the budgets noticed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BudgetAlert {
    /// A budget's spend crossed one of its thresholds (once per key and window; over a rolling
    /// window, again after the spend fell back below it).
    Threshold {
        /// The budget.
        budget: String,
        /// Its scope.
        scope: &'static str,
        /// The key.
        key: String,
        /// The threshold, ppm of the limit.
        threshold: u32,
        /// Spend in the window after the call.
        spent: Money,
        /// The limit.
        limit: Money,
    },
    /// Today's projected spend is above the configured multiple of the previous days' average.
    Spike {
        /// Spend so far today.
        today: Money,
        /// Today's spend projected to a whole day.
        projected: Money,
        /// Average daily spend of the previous days.
        average: Money,
    },
    /// One call cost more than the configured maximum.
    ExpensiveCall {
        /// The call.
        call: String,
        /// What it cost.
        cost: Money,
        /// The maximum.
        max: Money,
    },
}

impl std::fmt::Display for BudgetAlert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BudgetAlert::Threshold {
                budget,
                scope,
                key,
                threshold,
                spent,
                limit,
            } => write!(
                f,
                "budget `{budget}` ({scope} `{key}`) crossed {}%: spent ${spent} of ${limit}",
                threshold / 10_000
            ),
            BudgetAlert::Spike {
                today,
                projected,
                average,
            } => write!(
                f,
                "spend spike: ${today} today, projected ${projected} for the day against an average of ${average}"
            ),
            BudgetAlert::ExpensiveCall { call, cost, max } => {
                write!(
                    f,
                    "call `{call}` cost ${cost}, above the per-call maximum ${max}"
                )
            }
        }
    }
}

/// One account: spend and reservations in the reservation core's account; the thresholds
/// already fired (each claimed once with an atomic `fetch_or`); and, for rolling windows only,
/// the buckets under a second lock, always taken after the first is released.
struct Account {
    figures: core::Account,
    fired: core::Fired,
    extra: Mutex<Extra>,
    /// The key the account belongs to (a reservation names it from here, without a clone of
    /// its own).
    key: Arc<str>,
    /// Removed from the book (its span closed): a thread's cache of recent accounts drops it.
    retired: std::sync::atomic::AtomicBool,
}

impl Account {
    fn new(key: &Arc<str>) -> Self {
        Account {
            figures: core::Account::default(),
            fired: core::Fired::default(),
            extra: Mutex::default(),
            key: Arc::clone(key),
            retired: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

/// What a thread's reservations against one book held last, to take again without hashing a
/// key, taking a map's lock or changing a reference count (everything is moved out and back):
/// the whole set of budgets (and the book's handle) the latest reservation held, for the next
/// call with the same keys, as calls in a row usually have; and, per budget, the account used
/// last, for calls whose keys differ only in part.
mod recent {
    use std::cell::RefCell;
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    use super::Account;

    /// One thread's accounts of one book.
    pub(super) struct Recent {
        book: u64,
        /// Per budget: the window and the account.
        slots: Vec<Option<(i64, Arc<Account>)>>,
        /// The keys of this thread's latest reservation, one per scope the book's budgets use
        /// (held, so their addresses name them while here), their addresses, and their number,
        /// unique in the process.
        last_keys: [Option<Arc<str>>; 7],
        last_addresses: [usize; 7],
        generation: u64,
        /// The budgets the latest settled reservation for those keys held, and the time it
        /// was admitted at: the next reservation for the same keys takes them whole.
        last_held: Option<(i64, super::HeldBudgets)>,
        /// The book, for the next reservation to hold (moved in and out: no reference count
        /// changes).
        pub(super) handle: Option<Arc<super::BookInner>>,
    }

    thread_local! {
        static RECENT: RefCell<Recent> = const {
            RefCell::new(Recent {
                book: 0,
                slots: Vec::new(),
                last_keys: [None, None, None, None, None, None, None],
                last_addresses: [0; 7],
                generation: 0,
                last_held: None,
                handle: None,
            })
        };
    }

    /// The address of a key (0 for none): equal addresses of strings kept alive are the same
    /// strings.
    fn address(key: Option<&Arc<str>>) -> usize {
        key.map_or(0, |key| Arc::as_ptr(key) as *const u8 as usize)
    }

    /// Runs `f` with this thread's accounts of `book` (`None` when they are in use further up
    /// this thread's stack, or the thread is exiting).
    pub(super) fn with(book: u64, budgets: usize, mut f: impl FnMut(Option<&mut Recent>)) {
        let ran = RECENT.try_with(|recent| match recent.try_borrow_mut() {
            Ok(mut recent) => {
                if recent.book != book || recent.slots.len() != budgets {
                    recent.book = book;
                    recent.slots.clear();
                    recent.slots.resize(budgets, None);
                    recent.last_keys = Default::default();
                    recent.last_addresses = [0; 7];
                    recent.generation = 0;
                    recent.last_held = None;
                    recent.handle = None;
                }
                f(Some(&mut recent));
            }
            Err(_) => f(None),
        });
        if ran.is_err() {
            f(None);
        }
    }

    impl Recent {
        /// The number of `keys` (the latest keys' when they are the same strings, else a new
        /// one); the budgets held for the previous keys go back to the slots.
        pub(super) fn generation_for(
            &mut self,
            keys: &super::CallKeys,
            used: &[super::BudgetScope],
        ) -> u64 {
            static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
            let differ = used
                .iter()
                .zip(&self.last_addresses)
                .fold(0, |differ, (scope, last)| {
                    differ | (address(keys.key(*scope)) ^ last)
                });
            if self.generation == 0 || differ != 0 {
                if let Some((_, mut held)) = self.last_held.take() {
                    self.give_back_each(&mut held);
                }
                for ((scope, last), address_of_last) in used
                    .iter()
                    .zip(&mut self.last_keys)
                    .zip(&mut self.last_addresses)
                {
                    *last = keys.key(*scope).cloned();
                    *address_of_last = address(last.as_ref());
                }
                self.generation = NEXT.fetch_add(1, Ordering::Relaxed);
            }
            self.generation
        }

        /// The budgets held last for the keys numbered `generation`, if kept, and the time
        /// they were admitted at.
        pub(super) fn take_last(&mut self, generation: u64) -> Option<(i64, super::HeldBudgets)> {
            if self.generation == generation {
                self.last_held.take()
            } else {
                None
            }
        }

        /// Keeps the budgets a settled reservation for the keys numbered `generation` held:
        /// whole when they are this thread's latest keys, else account by account.
        pub(super) fn give_back_all(
            &mut self,
            generation: u64,
            now: i64,
            mut held: super::HeldBudgets,
        ) {
            if self.generation == generation && self.last_held.is_none() {
                self.last_held = Some((now, held));
                return;
            }
            self.give_back_each(&mut held);
        }

        /// Keeps each of the accounts `held` held as this thread's account of its budget,
        /// leaving `held` empty.
        pub(super) fn give_back_each(&mut self, held: &mut super::HeldBudgets) {
            for held in held.drain(..) {
                self.give_back(held.budget as usize, held.window, held.account);
            }
        }

        /// Takes the account of `budget` for `key` in `window` if this thread holds it and it
        /// is still in the book.
        pub(super) fn take(
            &mut self,
            budget: usize,
            key: &Arc<str>,
            window: i64,
        ) -> Option<Arc<Account>> {
            let slot = self.slots.get_mut(budget)?;
            let (seen, account) = slot.as_ref()?;
            let same_key = Arc::ptr_eq(&account.key, key) || *account.key == **key;
            if *seen == window && same_key && !account.retired.load(Ordering::Relaxed) {
                slot.take().map(|(_, account)| account)
            } else {
                None
            }
        }

        /// Keeps `account` as this thread's account of `budget` (in `window`).
        fn give_back(&mut self, budget: usize, window: i64, account: Arc<Account>) {
            if account.retired.load(Ordering::Relaxed) {
                return;
            }
            if let Some(slot) = self.slots.get_mut(budget) {
                *slot = Some((window, account));
            }
        }
    }
}

#[derive(Default)]
struct Extra {
    /// Rolling windows: (bucket number, spend).
    buckets: VecDeque<(i64, i128)>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// An account of one budget for one key, tagged with the window it counts.
type Slot = (i64, Arc<Account>);

/// Accounts of one budget, by key.
type Accounts = DashMap<Arc<str>, Slot, foldhash::fast::RandomState>;

/// One budget's account held by a reservation.
struct Held {
    /// The account (its key included).
    account: Arc<Account>,
    /// The window the account counts.
    window: i64,
    budget: u32,
    /// Whether the reservation booked on it (deny budgets) or only settles spend (alert ones).
    reserved: bool,
    /// The reservation is booked in the shared accounts, in `window` (not in `account`).
    shared: bool,
    /// The shared accounts were unavailable and the book failed open: the reservation is in
    /// `account`, and the spend still goes to the shared accounts (in `window`) at settlement,
    /// so they catch up once reachable.
    fell_back: bool,
}

/// The budgets one call holds. (On the heap: measured, an inline array makes reserve + settle
/// slower, as the reservation it makes larger is moved from call to call.)
type HeldBudgets = Vec<Held>;

/// Budgets reserved for one call, to settle when it ends. Dropping it unsettled releases the
/// reservation (a call that failed or panicked costs nothing it did not report).
pub struct Reservation {
    /// The book (`None` once settled or released).
    book: Option<Arc<BookInner>>,
    held: HeldBudgets,
    /// The number of the call's keys in the reserving thread's cache.
    generation: u64,
    amount: i128,
    /// The call's id, kept when an expensive-call alert may name it.
    call: Option<Arc<str>>,
    /// When the call was admitted: its spend counts in the windows of that moment.
    now: i64,
    settled: bool,
}

impl std::fmt::Debug for Reservation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reservation")
            .field("amount", &Money::from_units(self.amount))
            .field("budgets", &self.held.len())
            .finish()
    }
}

struct BookInner {
    /// Unique per book (names it in the threads' caches of recent accounts).
    id: u64,
    /// The scopes the budgets use that have a key per call (all but global; at most 7, each
    /// once): only their keys name a call's accounts.
    scopes_used: Vec<BudgetScope>,
    config: BudgetConfig,
    /// Per budget, its accounts by key.
    accounts: Vec<Accounts>,
    /// Per budget, the spend at which each threshold fires: the least at or above its share
    /// of the limit (computed once).
    lines: Vec<Vec<i128>>,
    /// Per budget, the lowest of its lines (below it, a settlement checks no threshold).
    lowest_lines: Vec<i128>,
    clock: Arc<dyn Clock>,
    latest: core::Latest,
    /// Per budget, the newest calendar window seen (past windows' accounts are dropped when
    /// it advances).
    windows: Vec<AtomicI64>,
    days: Mutex<DailyHistory>,
    shared: Option<super::shared::Shared>,
    /// Per budget, the newest calendar window reserved in the shared accounts (their accounts
    /// of older windows are forgotten when it advances).
    shared_windows: Vec<AtomicI64>,
    /// Per budget with a rolling window, the number of accounts at which the idle ones are
    /// pruned next (twice those left after the latest pruning, at least [`PRUNE_AT_LEAST`]).
    prune_at: Vec<std::sync::atomic::AtomicUsize>,
    /// Held by the one thread pruning.
    pruning: Mutex<()>,
}

/// The fewest accounts of a rolling budget at which its idle ones are pruned.
const PRUNE_AT_LEAST: usize = 1024;

#[derive(Default)]
struct DailyHistory {
    spend: BTreeMap<i64, i128>,
    spike_fired: Option<i64>,
}

/// The budgets of a program and their accounts. Cheap to clone; share it between threads.
#[derive(Clone)]
pub struct BudgetBook {
    inner: Arc<BookInner>,
}

impl std::fmt::Debug for BudgetBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BudgetBook")
            .field("budgets", &self.inner.config.budgets.len())
            .field("accounts", &self.accounts())
            .finish()
    }
}

impl BudgetBook {
    /// A book for `config` on the system clock. The config is validated here too.
    pub fn new(config: BudgetConfig) -> Result<Self, super::BudgetConfigError> {
        BudgetBook::with_clock(config, Arc::new(SystemClock))
    }

    /// A book on an injected clock.
    pub fn with_clock(
        config: BudgetConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, super::BudgetConfigError> {
        BudgetBook::build(config, clock, None)
    }

    fn build(
        config: BudgetConfig,
        clock: Arc<dyn Clock>,
        shared: Option<super::shared::Shared>,
    ) -> Result<Self, super::BudgetConfigError> {
        config.validate()?;
        let lines: Vec<Vec<i128>> = config
            .budgets
            .iter()
            .map(|b| {
                let limit = b.limit.units();
                b.thresholds
                    .iter()
                    .map(|t| {
                        // `limit × t / 10⁶` rounded up, without overflow: the least spend that
                        // is at or above the threshold's share of the limit.
                        let t = i128::from(*t);
                        let part = limit % 1_000_000 * t;
                        limit / 1_000_000 * t + part / 1_000_000 + i128::from(part % 1_000_000 != 0)
                    })
                    .collect()
            })
            .collect();
        Ok(BudgetBook {
            inner: Arc::new(BookInner {
                id: {
                    static NEXT_BOOK: std::sync::atomic::AtomicU64 =
                        std::sync::atomic::AtomicU64::new(1);
                    NEXT_BOOK.fetch_add(1, Ordering::Relaxed)
                },
                scopes_used: [
                    BudgetScope::Call,
                    BudgetScope::Agent,
                    BudgetScope::Session,
                    BudgetScope::User,
                    BudgetScope::Org,
                    BudgetScope::Feature,
                    BudgetScope::Model,
                ]
                .into_iter()
                .filter(|scope| config.budgets.iter().any(|b| b.scope == *scope))
                .collect(),
                lowest_lines: lines
                    .iter()
                    .map(|l| l.iter().copied().min().unwrap_or(i128::MAX))
                    .collect(),
                lines,
                accounts: (0..config.budgets.len())
                    .map(|_| Accounts::with_hasher(foldhash::fast::RandomState::default()))
                    .collect(),
                clock,
                latest: core::Latest::new(),
                windows: (0..config.budgets.len())
                    .map(|_| AtomicI64::new(i64::MIN))
                    .collect(),
                days: Mutex::new(DailyHistory::default()),
                shared,
                shared_windows: (0..config.budgets.len())
                    .map(|_| AtomicI64::new(i64::MIN))
                    .collect(),
                prune_at: (0..config.budgets.len())
                    .map(|_| std::sync::atomic::AtomicUsize::new(PRUNE_AT_LEAST))
                    .collect(),
                pruning: Mutex::new(()),
                config,
            }),
        })
    }

    /// A book whose deny budgets with a day or month window reserve in `accounts`, shared with
    /// other processes (see [`super::shared`]); `unavailable` decides what happens when they
    /// cannot be reached.
    pub fn with_shared(
        config: BudgetConfig,
        clock: Arc<dyn Clock>,
        accounts: Arc<dyn super::SharedAccounts>,
        unavailable: super::Unavailable,
    ) -> Result<Self, super::BudgetConfigError> {
        let shared = super::shared::Shared {
            accounts,
            unavailable,
        };
        BudgetBook::build(config, clock, Some(shared))
    }

    /// The configuration.
    pub fn config(&self) -> &BudgetConfig {
        &self.inner.config
    }

    /// Reserves `worst_case` against every deny budget that applies to the call, atomically
    /// per budget, or refuses the call. Settle the reservation when the call ends.
    pub fn reserve(
        &self,
        keys: &CallKeys,
        worst_case: Money,
    ) -> Result<Reservation, BudgetExceeded> {
        self.inner.reserve(&self.inner, keys, worst_case.units())
    }

    /// [`BudgetBook::reserve`] for an async caller: the shared accounts' round trips are
    /// awaited ([`SharedAccounts::try_reserve_async`](super::SharedAccounts::try_reserve_async)),
    /// so a store that is slow to answer holds the call's task, not the executor's thread.
    /// Dropped before it is ready, the reservation is given up: what it booked is released.
    pub async fn reserve_async(
        &self,
        keys: &CallKeys,
        worst_case: Money,
    ) -> Result<Reservation, BudgetExceeded> {
        let inner = &self.inner;
        inner
            .reserve_waiting(inner, keys, worst_case.units(), Waiting::Await)
            .await
    }

    /// Decides on a call whose worst case no price bounds (its model has no price at the terms
    /// it asks for): with [`UnpricedCalls::Admit`](super::UnpricedCalls::Admit) it is
    /// admitted; with [`UnpricedCalls::Deny`](super::UnpricedCalls::Deny), the first deny
    /// budget that applies to it refuses it, naming `model`. Nothing is booked either way.
    pub fn refuse_unpriced(&self, keys: &CallKeys, model: &str) -> Result<(), BudgetExceeded> {
        let inner = &self.inner;
        if inner.config.unpriced_calls != super::UnpricedCalls::Deny {
            return Ok(());
        }
        let now = inner.now();
        let (held, generation, handle) = inner.hold_all(keys, now);
        let refusal = held.iter().find_map(|held| {
            let budget = &inner.config.budgets[held.budget as usize];
            (budget.policy == Policy::Deny).then(|| {
                let (spent, reserved) = held.account.figures.figures();
                BudgetExceeded {
                    budget: Arc::from(budget.name.as_str()),
                    scope: budget.scope,
                    key: Arc::clone(&held.account.key),
                    spent: Money::from_units(spent),
                    reserved: Money::from_units(reserved),
                    requested: Money::ZERO,
                    limit: budget.limit,
                    cause: Some(Arc::new(RefusalCause::Unpriced(model.to_owned()))),
                }
            })
        });
        // Nothing was booked: the accounts only go back to this thread's cache.
        BookInner::give_back(
            handle.unwrap_or_else(|| Arc::clone(inner)),
            generation,
            now,
            held,
        );
        refusal.map_or(Ok(()), Err)
    }

    /// Whether this book keeps its day and month deny budgets in accounts shared with other
    /// processes ([`BudgetBook::with_shared`]): their keys must then mean the same in every
    /// process.
    pub fn shares_accounts(&self) -> bool {
        self.inner.shared.is_some()
    }

    /// The first deny budget that applies to the call of `keys`: one its reservation would
    /// have been checked against. A call that reserved nothing before it ran was checked by
    /// none ([`BudgetBook::charge`] counts it after the fact); `None` when no deny budget
    /// applies, so nothing was missed.
    pub fn deny_budget_for(&self, keys: &CallKeys) -> Option<&Budget> {
        self.inner.config.budgets.iter().find(|budget| {
            budget.policy == Policy::Deny
                && keys
                    .key(budget.scope)
                    .is_some_and(|key| budget.key.as_deref().is_none_or(|only| only == &**key))
        })
    }

    /// Charges a call that reserved nothing; returns the alerts it caused.
    pub fn charge(&self, keys: &CallKeys, cost: Money) -> Vec<BudgetAlert> {
        let now = self.inner.now();
        let (held, generation, handle) = self.inner.hold_all(keys, now);
        Reservation {
            book: Some(handle.unwrap_or_else(|| Arc::clone(&self.inner))),
            held,
            generation,
            amount: 0,
            call: self.inner.call_id(keys),
            now,
            settled: false,
        }
        .settle(cost)
    }

    /// Spend and reservations of a budget for a key in the current window:
    /// `(spent, reserved)`, or `None` when nothing was booked.
    pub fn account(&self, budget: &str, key: &str) -> Option<(Money, Money)> {
        let inner = &self.inner;
        let (index, budget) = inner
            .config
            .budgets
            .iter()
            .enumerate()
            .find(|(_, b)| b.name == budget)?;
        let now = inner.now();
        let account = {
            let slot = inner.accounts[index].get(key)?;
            if slot.0 != window_id(budget.window, now) {
                return None;
            }
            Arc::clone(&slot.1)
        };
        roll(&account, budget.window, now, &inner.lines[index]);
        let (spent, reserved) = account.figures.figures();
        Some((Money::from_units(spent), Money::from_units(reserved)))
    }

    /// Forgets the accounts of a closed call, agent run or session (lifetime windows).
    pub fn close_span(&self, scope: BudgetScope, key: &str) {
        for (budget, accounts) in self.inner.config.budgets.iter().zip(&self.inner.accounts) {
            if budget.scope == scope
                && budget.window == Window::Lifetime
                && let Some((_, (_, account))) = accounts.remove(key)
            {
                account.retired.store(true, Ordering::Relaxed);
            }
        }
    }

    /// Number of accounts held (bounded: lifetime accounts go at close, past windows at
    /// rollover, rolling windows' idle ones, whose spend left the window, when a budget's
    /// accounts have doubled since they were last pruned).
    pub fn accounts(&self) -> usize {
        self.inner.accounts.iter().map(DashMap::len).sum()
    }
}

fn window_id(window: Window, now: i64) -> i64 {
    match window {
        Window::Lifetime | Window::Rolling(_) => 0,
        Window::Day => utc_day(now),
        Window::Month => month_of(now),
    }
}

/// [`utc_month`], remembered per thread for the day last asked (the calendar arithmetic is the
/// costliest part of finding a month budget's account).
fn month_of(now: i64) -> i64 {
    thread_local! {
        static LAST: std::cell::Cell<(i64, i64)> = const { std::cell::Cell::new((i64::MIN, 0)) };
    }
    let day = utc_day(now);
    LAST.with(|last| {
        let (seen, month) = last.get();
        if seen == day {
            month
        } else {
            let month = utc_month(now);
            last.set((day, month));
            month
        }
    })
}

/// Drops the buckets of a rolling window that fell out of it (their spend leaves the window),
/// and re-arms the thresholds (`lines`, the budget's) the spend fell back below.
#[inline]
fn roll(account: &Account, window: Window, now: i64, lines: &[i128]) {
    if let Window::Rolling(duration) = window {
        roll_buckets(account, duration, now, lines);
    }
}

fn roll_buckets(account: &Account, duration: std::time::Duration, now: i64, lines: &[i128]) {
    let width = (duration.as_secs() / 60).max(1) as i64;
    let oldest = now.div_euclid(width) - 59;
    let mut expired = 0;
    {
        let mut extra = lock(&account.extra);
        while let Some(&(bucket, amount)) = extra.buckets.front() {
            if bucket >= oldest {
                break;
            }
            expired += amount;
            extra.buckets.pop_front();
        }
    }
    if expired != 0 {
        let spent = account.figures.settle(0, -expired);
        account.fired.rearm_above(spent, lines);
    }
}

/// Records spend in a rolling window's current bucket.
fn bucket_spend(extra: &mut Extra, window: Window, now: i64, amount: i128) {
    if let Window::Rolling(duration) = window {
        let width = (duration.as_secs() / 60).max(1) as i64;
        let bucket = now.div_euclid(width);
        match extra.buckets.back_mut() {
            Some((b, total)) if *b == bucket => *total += amount,
            _ => extra.buckets.push_back((bucket, amount)),
        }
    }
}

impl BookInner {
    /// The call's id, when an expensive-call alert may need it.
    fn call_id(&self, keys: &CallKeys) -> Option<Arc<str>> {
        self.config
            .per_call_alert
            .is_some()
            .then(|| Arc::clone(&keys.call))
    }

    /// The time: the clock, never earlier than a time already seen (a clock that jumps back
    /// does not reopen a closed window).
    fn now(&self) -> i64 {
        self.latest.advance(self.clock.unix_seconds())
    }

    /// Puts the accounts a reservation held back in this thread's cache.
    #[inline]
    fn give_back(this: Arc<BookInner>, generation: u64, now: i64, held: HeldBudgets) {
        let mut held = Some(held);
        let (id, budgets) = (this.id, this.accounts.len());
        let mut handle = Some(this);
        recent::with(id, budgets, |recent| {
            if let (Some(recent), Some(held)) = (recent, held.take()) {
                recent.give_back_all(generation, now, held);
                if recent.handle.is_none() {
                    recent.handle = handle.take();
                }
            }
        });
    }

    /// A budget held last for the same keys, made ready for a reservation at `now` (`then`:
    /// when it was held last): `false` when its window has passed or its account left the
    /// book. Within the same second no window can have moved.
    #[inline]
    fn still_held(&self, held: &mut Held, then: i64, now: i64) -> bool {
        if held.account.retired.load(Ordering::Relaxed) {
            return false;
        }
        if then != now {
            let window = self.config.budgets[held.budget as usize].window;
            if held.window != window_id(window, now) {
                return false;
            }
            roll(
                &held.account,
                window,
                now,
                &self.lines[held.budget as usize],
            );
        }
        held.reserved = false;
        held.shared = false;
        held.fell_back = false;
        true
    }

    /// Replaces a held account found retired with the one the book holds now for its key,
    /// rolled to `now`.
    #[cold]
    fn renew(&self, held: &mut Held, now: i64) {
        let budget = held.budget as usize;
        let window = self.config.budgets[budget].window;
        let key = Arc::clone(&held.account.key);
        held.account = self.account_in_map(budget, window, &key, window_id(window, now));
        roll(&held.account, window, now, &self.lines[budget]);
    }

    /// The account of `budget` for `key` in window `current`, created when absent.
    fn account_in_map(
        &self,
        budget: usize,
        window: Window,
        key: &Arc<str>,
        current: i64,
    ) -> Arc<Account> {
        let accounts = &self.accounts[budget];
        if let Some(slot) = accounts.get(&**key)
            && slot.0 == current
            && !slot.1.figures.is_retired()
        {
            return Arc::clone(&slot.1);
        }
        if matches!(window, Window::Day | Window::Month) {
            // A new window opens: the accounts of this budget's past windows are done.
            let previous = self.windows[budget].fetch_max(current, Ordering::Relaxed);
            if previous < current {
                accounts.retain(|_, slot| slot.0 >= current);
            }
        }
        let mut made = false;
        let account = {
            let mut slot = accounts.entry(Arc::clone(key)).or_insert_with(|| {
                made = true;
                (current, Arc::new(Account::new(key)))
            });
            // A past window's account, or one retired while idle (its pruning takes it out of
            // the map next, unless it finds this one in its place).
            if slot.0 < current || slot.1.figures.is_retired() {
                *slot = (current, Arc::new(Account::new(key)));
            }
            Arc::clone(&slot.1)
        };
        if made
            && matches!(window, Window::Rolling(_))
            && accounts.len() >= self.prune_at[budget].load(Ordering::Relaxed)
        {
            self.prune_idle(budget);
        }
        account
    }

    /// Takes the accounts of a rolling budget that hold nothing any more (their spend left the
    /// window, and nothing is reserved) out of the book: per key budgets over rolling windows
    /// would otherwise keep an account for every key ever charged. Each is retired under its
    /// lock first ([`core::Account::retire_if_idle`]): a call that still holds it and books or
    /// charges on it afterwards finds it retired and uses the key's account in the book.
    /// Amortised: it runs when the accounts double since the last pruning.
    #[cold]
    #[inline(never)]
    fn prune_idle(&self, budget: usize) {
        let Ok(_pruning) = self.pruning.try_lock() else {
            return;
        };
        let window = self.config.budgets[budget].window;
        let now = self.now();
        let accounts = &self.accounts[budget];
        let held: Vec<Arc<Account>> = accounts
            .iter()
            .map(|entry| Arc::clone(&entry.value().1))
            .collect();
        for account in held {
            roll(&account, window, now, &self.lines[budget]);
            if account.figures.retire_if_idle() {
                account.retired.store(true, Ordering::Relaxed);
                accounts.remove_if(&*account.key, |_, slot| Arc::ptr_eq(&slot.1, &account));
            }
        }
        self.prune_at[budget].store(
            accounts.len().saturating_mul(2).max(PRUNE_AT_LEAST),
            Ordering::Relaxed,
        );
    }

    /// The accounts of every budget that applies to the call, in budget order, and the number
    /// of its keys in this thread's cache (to give them back to).
    #[inline]
    fn hold_all(&self, keys: &CallKeys, now: i64) -> (HeldBudgets, u64, Option<Arc<BookInner>>) {
        let mut out = None;
        let mut generation = 0;
        let mut handle = None;
        recent::with(self.id, self.accounts.len(), |mut recent| {
            // The same keys as this thread's latest reservation: its budgets, whole.
            let mut held = None;
            if let Some(recent) = recent.as_mut() {
                handle = recent.handle.take();
                generation = recent.generation_for(keys, &self.scopes_used);
                if let Some((then, mut last)) = recent.take_last(generation) {
                    if last.iter_mut().all(|h| self.still_held(h, then, now)) {
                        out = Some(last);
                        return;
                    }
                    recent.give_back_each(&mut last);
                    held = Some(last);
                }
            }
            let mut held =
                held.unwrap_or_else(|| HeldBudgets::with_capacity(self.config.budgets.len()));
            self.hold_each(&mut held, keys, now, recent);
            out = Some(held);
        });
        // (`with` runs its closure once, so `out` is set; this is only its type's due.)
        let held = out.unwrap_or_else(|| {
            let mut held = HeldBudgets::with_capacity(self.config.budgets.len());
            self.hold_each(&mut held, keys, now, None);
            held
        });
        (held, generation, handle)
    }

    /// Adds the account of every budget that applies to the call to `held`, from this
    /// thread's cache where it has them.
    fn hold_each(
        &self,
        held: &mut HeldBudgets,
        keys: &CallKeys,
        now: i64,
        mut recent: Option<&mut recent::Recent>,
    ) {
        for (index, budget) in self.config.budgets.iter().enumerate() {
            let Some(key) = keys.key(budget.scope) else {
                continue;
            };
            if budget.key.as_deref().is_some_and(|only| only != &**key) {
                continue;
            }
            let window = window_id(budget.window, now);
            let account = recent
                .as_mut()
                .and_then(|recent| recent.take(index, key, window))
                .unwrap_or_else(|| self.account_in_map(index, budget.window, key, window));
            roll(&account, budget.window, now, &self.lines[index]);
            held.push(Held {
                budget: index as u32,
                window,
                account,
                reserved: false,
                shared: false,
                fell_back: false,
            });
        }
    }

    /// [`BookInner::reserve_waiting`] on the caller's thread, the shared accounts' round trips
    /// blocking it.
    fn reserve(
        &self,
        this: &Arc<BookInner>,
        keys: &CallKeys,
        amount: i128,
    ) -> Result<Reservation, BudgetExceeded> {
        let reserving = std::pin::pin!(self.reserve_waiting(this, keys, amount, Waiting::Block));
        // Blocking, it awaits nothing: ready when first polled.
        wait_for(reserving)
    }

    /// Reserves `amount` for the call of `keys` against every deny budget that applies, waiting
    /// for the shared accounts as `waiting` says.
    async fn reserve_waiting(
        &self,
        this: &Arc<BookInner>,
        keys: &CallKeys,
        amount: i128,
        waiting: Waiting,
    ) -> Result<Reservation, BudgetExceeded> {
        let now = self.now();
        let (held, generation, handle) = self.hold_all(keys, now);
        // Released when the reservation stops before its end: refused, or its future dropped
        // while it awaits the shared accounts.
        let mut booking = Booking {
            book: self,
            held,
            amount,
            now,
        };
        for held in booking.held.iter_mut() {
            let budget = &self.config.budgets[held.budget as usize];
            if budget.policy != Policy::Deny {
                continue;
            }
            let refusal =
                |key: &Arc<str>, spent: i128, reserved: i128, unavailable: Option<String>| {
                    BudgetExceeded {
                        budget: Arc::from(budget.name.as_str()),
                        scope: budget.scope,
                        key: Arc::clone(key),
                        spent: Money::from_units(spent),
                        reserved: Money::from_units(reserved),
                        requested: Money::from_units(amount),
                        limit: budget.limit,
                        cause: unavailable.map(|why| Arc::new(RefusalCause::Unavailable(why))),
                    }
                };
            // Calendar windows reserve in the shared accounts, when the book has them.
            if let Some(shared) = &self.shared
                && budget.uses_shared_accounts()
            {
                let window = held.window;
                // The first reservation of this process in a new window: the store's accounts
                // of this budget from before the previous window are done (the previous one is
                // kept for the settlements of calls still in flight).
                let budget_index = held.budget as usize;
                if self.shared_windows[budget_index].fetch_max(window, Ordering::Relaxed) < window {
                    shared.accounts.forget_before(&budget.name, window - 1);
                }
                let account = super::SharedKey {
                    budget: &budget.name,
                    key: &held.account.key,
                    window,
                };
                let (requested, limit) = (Money::from_units(amount), budget.limit);
                let answer = match waiting {
                    Waiting::Block => shared.accounts.try_reserve(account, requested, limit),
                    Waiting::Await => {
                        shared
                            .accounts
                            .try_reserve_async(account, requested, limit)
                            .await
                    }
                };
                match answer {
                    Ok(()) => {
                        held.reserved = true;
                        held.shared = true;
                        continue;
                    }
                    Err(super::SharedRefusal::Over { spent, reserved }) => {
                        let error =
                            refusal(&held.account.key, spent.units(), reserved.units(), None);
                        return Err(error);
                    }
                    Err(super::SharedRefusal::Unavailable(why)) => {
                        if shared.unavailable == super::Unavailable::FailClosed {
                            let error = refusal(&held.account.key, 0, 0, Some(why));
                            return Err(error);
                        }
                        // Fail open: this process's own account decides, below.
                        held.fell_back = true;
                    }
                }
            }
            // The reservation core: book under the account's lock, or refuse and release what
            // was booked (one comparison everywhere: over is `>`, equal is within). An account
            // retired since it was held (an idle rolling one) is the key's account no more:
            // book on the one the book holds now.
            loop {
                match held
                    .account
                    .figures
                    .try_reserve(amount, budget.limit.units())
                {
                    Ok(()) => break,
                    Err(core::Refused::Retired) => self.renew(held, now),
                    Err(core::Refused::Over { spent, reserved }) => {
                        let error = refusal(&held.account.key, spent, reserved, None);
                        return Err(error);
                    }
                }
            }
            held.reserved = true;
        }
        Ok(Reservation {
            book: Some(handle.unwrap_or_else(|| Arc::clone(this))),
            held: booking.done(),
            generation,
            amount,
            call: this.call_id(keys),
            now,
            settled: false,
        })
    }

    /// Releases what `held` booked, in the process or in the shared accounts.
    fn release(&self, held: &[Held], amount: i128, _now: i64) {
        for booked in held.iter().filter(|h| h.reserved) {
            match (booked.shared, &self.shared) {
                (true, Some(shared)) => shared.accounts.settle(
                    super::SharedKey {
                        budget: &self.config.budgets[booked.budget as usize].name,
                        key: &booked.account.key,
                        window: booked.window,
                    },
                    Money::from_units(amount),
                    Money::ZERO,
                ),
                _ => booked.account.figures.release(amount),
            }
        }
    }
}

/// What a reservation has booked so far: released when dropped before [`Booking::done`] (the
/// reservation refused, or its future dropped while it awaited the shared accounts).
struct Booking<'a> {
    book: &'a BookInner,
    held: HeldBudgets,
    amount: i128,
    now: i64,
}

impl Booking<'_> {
    /// The budgets held, all booked: nothing is released any more.
    fn done(mut self) -> HeldBudgets {
        std::mem::take(&mut self.held)
    }
}

impl Drop for Booking<'_> {
    fn drop(&mut self) {
        // Done (its budgets taken) on the way of every call admitted: tested first, that way
        // costs nothing more (~10 ns a reservation otherwise).
        if !self.held.is_empty() {
            self.book.release(&self.held, self.amount, self.now);
        }
    }
}

/// How a reservation waits for the shared accounts' round trips.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Waiting {
    /// On the caller's thread ([`SharedAccounts::try_reserve`](super::SharedAccounts::try_reserve)).
    Block,
    /// As a future ([`SharedAccounts::try_reserve_async`](super::SharedAccounts::try_reserve_async)).
    Await,
}

/// Runs `future` to its end on this thread, parked while it is pending (a future that awaits
/// nothing is done at its first poll, with nothing to wake).
fn wait_for<T>(mut future: std::pin::Pin<&mut impl std::future::Future<Output = T>>) -> T {
    use std::task::{Context, Poll, Wake, Waker};
    /// Wakes the thread that waits.
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    if let Poll::Ready(answer) = future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        return answer;
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut context = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(answer) = future.as_mut().poll(&mut context) {
            return answer;
        }
        std::thread::park();
    }
}

impl Reservation {
    /// The worst case reserved.
    pub fn amount(&self) -> Money {
        Money::from_units(self.amount)
    }

    /// Settles the call at its actual `cost` (above the reservation too: it is charged, never
    /// lost) against every budget that applies to it; returns the alerts it caused.
    pub fn settle(mut self, cost: Money) -> Vec<BudgetAlert> {
        self.settled = true;
        let mut held_budgets = std::mem::take(&mut self.held);
        // Always there: only settling and dropping take it.
        let Some(this) = self.book.take() else {
            return Vec::new();
        };
        let book = &*this;
        let now = self.now;
        let cost = cost.units();
        let mut alerts = Vec::new();
        for held in &mut held_budgets {
            let budget = &book.config.budgets[held.budget as usize];
            roll(
                &held.account,
                budget.window,
                now,
                &book.lines[held.budget as usize],
            );
            let booked_here = held.reserved && !held.shared;
            if let Some(shared) = &book.shared {
                let booked = match (held.shared, held.fell_back) {
                    (true, _) => Some(self.amount),
                    (false, true) => Some(0),
                    (false, false) => None,
                };
                if let Some(reserved) = booked {
                    shared.accounts.settle(
                        super::SharedKey {
                            budget: &budget.name,
                            key: &held.account.key,
                            window: held.window,
                        },
                        Money::from_units(reserved),
                        Money::from_units(cost),
                    );
                }
            }
            // The process's own account counts the spend it saw, for its alerts. One that holds
            // this call's reservation cannot have been retired; one that holds none may have
            // (an idle rolling account): the spend then goes to the key's account now.
            let spent = if booked_here {
                held.account.figures.settle(self.amount, cost)
            } else {
                loop {
                    if let Some(spent) = held.account.figures.try_charge(cost) {
                        break spent;
                    }
                    book.renew(held, now);
                }
            };
            let account = &held.account;
            let key = &account.key;
            if matches!(budget.window, Window::Rolling(_)) {
                bucket_spend(&mut lock(&account.extra), budget.window, now, cost);
            }
            let limit = budget.limit.units();
            let lines = &book.lines[held.budget as usize];
            if spent < book.lowest_lines[held.budget as usize] {
                continue;
            }
            for (bit, (threshold, line)) in budget.thresholds.iter().zip(lines).enumerate() {
                if spent >= *line && limit > 0 && account.fired.claim(bit as u32) {
                    alerts.push(BudgetAlert::Threshold {
                        budget: budget.name.clone(),
                        scope: budget.scope.as_str(),
                        key: key.to_string(),
                        threshold: *threshold,
                        spent: Money::from_units(spent),
                        limit: budget.limit,
                    });
                }
            }
        }
        if let Some(max) = book.config.per_call_alert
            && cost > max.units()
        {
            alerts.push(BudgetAlert::ExpensiveCall {
                call: self.call.as_deref().unwrap_or_default().to_string(),
                cost: Money::from_units(cost),
                max,
            });
        }
        if let Some(spike) = book.config.spike {
            let mut days = lock(&book.days);
            let today = utc_day(now);
            *days.spend.entry(today).or_default() += cost;
            while days.spend.len() > 31 {
                days.spend.pop_first();
            }
            let previous: Vec<i128> = days.spend.range(..today).map(|(_, s)| *s).collect();
            if previous.len() >= spike.min_history_days as usize && days.spike_fired != Some(today)
            {
                let average = previous.iter().sum::<i128>() / previous.len() as i128;
                let spent = days.spend.get(&today).copied().unwrap_or(0);
                // Project today's spend to a day, counting at least an hour elapsed.
                let elapsed = now.rem_euclid(86_400).max(3_600);
                let projected = spent * 86_400 / i128::from(elapsed);
                if projected * 1_000_000 > average * i128::from(spike.factor) {
                    days.spike_fired = Some(today);
                    alerts.push(BudgetAlert::Spike {
                        today: Money::from_units(spent),
                        projected: Money::from_units(projected),
                        average: Money::from_units(average),
                    });
                }
            }
        }
        BookInner::give_back(this, self.generation, now, held_budgets);
        alerts
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.settled
            && let Some(book) = self.book.take()
        {
            book.release(&self.held, self.amount, self.now);
            let held = std::mem::take(&mut self.held);
            BookInner::give_back(book, self.generation, self.now, held);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::budget::{Budget, ManualClock};

    /// 2026-11-25T12:00:00Z, the start of a minute.
    const NOON: i64 = 1_764_072_000;

    fn book_of(budget: Budget) -> (BudgetBook, Arc<ManualClock>) {
        let config = BudgetConfig {
            budgets: vec![budget],
            ..BudgetConfig::default()
        };
        let clock = Arc::new(ManualClock::new(NOON));
        let book = BudgetBook::with_clock(config, clock.clone()).unwrap_or_else(|e| panic!("{e}"));
        (book, clock)
    }

    fn usd(text: &str) -> Money {
        Money::from_decimal(text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn user(name: &str) -> CallKeys {
        CallKeys {
            call: "c".into(),
            user: Some(name.into()),
            ..CallKeys::default()
        }
    }

    /// The account the book's map holds for `key` in its first budget, with its window.
    fn in_map(book: &BudgetBook, key: &str) -> Option<(i64, Arc<Account>)> {
        book.inner.accounts[0]
            .get(key)
            .map(|slot| (slot.0, Arc::clone(&slot.1)))
    }

    #[test]
    fn an_account_retired_while_still_in_the_map_gives_way_to_a_fresh_one() {
        let hourly = Window::Rolling(Duration::from_secs(3_600));
        let (book, _) = book_of(Budget::deny("user", BudgetScope::User, hourly, usd("10")));
        let key: Arc<str> = Arc::from("u1");
        let first = book.inner.account_in_map(0, hourly, &key, 0);
        // Retired as pruning retires an idle account, and not yet taken out of the map.
        assert!(first.figures.retire_if_idle());
        first.retired.store(true, Ordering::Relaxed);
        let second = book.inner.account_in_map(0, hourly, &key, 0);
        assert!(
            !Arc::ptr_eq(&first, &second),
            "the retired account came back"
        );
        assert!(!second.figures.is_retired());
        assert!(in_map(&book, "u1").is_some_and(|(_, held)| Arc::ptr_eq(&held, &second)));
        // Calls book on the fresh account.
        let reservation = book.reserve(&user("u1"), usd("1"));
        assert!(reservation.is_ok(), "{reservation:?}");
        assert_eq!(second.figures.figures(), (0, usd("1").units()));
    }

    #[test]
    fn a_past_windows_account_left_in_the_map_gives_way_to_the_current_windows() {
        let (book, _) = book_of(Budget::deny(
            "user",
            BudgetScope::User,
            Window::Day,
            usd("10"),
        ));
        let today = window_id(Window::Day, NOON);
        // The budget is in today's window already (another key's account opened it) when an
        // account of yesterday's lands in the map, as a call that read the clock before
        // midnight may leave it.
        book.inner
            .account_in_map(0, Window::Day, &Arc::from("other"), today);
        let key: Arc<str> = Arc::from("u1");
        let yesterdays = Arc::new(Account::new(&key));
        assert_eq!(
            yesterdays.figures.try_charge(usd("7").units()),
            Some(usd("7").units())
        );
        book.inner.accounts[0].insert(Arc::clone(&key), (today - 1, Arc::clone(&yesterdays)));
        let account = book.inner.account_in_map(0, Window::Day, &key, today);
        assert!(!Arc::ptr_eq(&account, &yesterdays));
        assert_eq!(account.figures.figures(), (0, 0));
        assert!(
            in_map(&book, "u1")
                .is_some_and(|(window, held)| window == today && Arc::ptr_eq(&held, &account))
        );
    }

    #[test]
    fn a_rolling_window_keeps_one_bucket_per_minute_of_spend() {
        let hourly = Window::Rolling(Duration::from_secs(3_600));
        let (book, clock) = book_of(Budget::deny("user", BudgetScope::User, hourly, usd("10")));
        let buckets = |book: &BudgetBook| {
            in_map(book, "u1").map(|(_, account)| lock(&account.extra).buckets.clone())
        };
        book.charge(&user("u1"), usd("1"));
        clock.set(NOON + 59);
        book.charge(&user("u1"), usd("2"));
        let minute = NOON / 60;
        assert_eq!(
            buckets(&book),
            Some(VecDeque::from([(minute, usd("3").units())]))
        );
        clock.set(NOON + 60);
        book.charge(&user("u1"), usd("4"));
        assert_eq!(
            buckets(&book),
            Some(VecDeque::from([
                (minute, usd("3").units()),
                (minute + 1, usd("4").units())
            ]))
        );
    }
}
