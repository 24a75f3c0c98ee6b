//! A book with shared accounts: calendar-window deny budgets reserve there, settle there, and
//! follow the book's policy when the store is unavailable.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cost_core::Money;
use cost_core::budget::{
    Budget, BudgetBook, BudgetConfig, BudgetScope, CallKeys, ManualClock, SharedAccounts,
    SharedKey, SharedRefusal, Unavailable, Window,
};

fn usd(text: &str) -> Money {
    Money::from_decimal(text).unwrap_or_else(|e| panic!("{e}"))
}

/// (budget, key, window) → (spent, reserved).
type Figures = HashMap<(String, String, i64), (Money, Money)>;

/// Accounts in memory, as a store would keep them.
#[derive(Default)]
struct Memory {
    accounts: Mutex<Figures>,
    down: Mutex<bool>,
    /// Every `forget_before` asked: (budget, window).
    forgets: Mutex<Vec<(String, i64)>>,
}

impl SharedAccounts for Memory {
    fn try_reserve(
        &self,
        a: SharedKey<'_>,
        amount: Money,
        limit: Money,
    ) -> Result<(), SharedRefusal> {
        if *self.down.lock().unwrap_or_else(|e| e.into_inner()) {
            return Err(SharedRefusal::Unavailable("connection refused".into()));
        }
        let mut accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        let entry = accounts
            .entry((a.budget.into(), a.key.into(), a.window))
            .or_insert((Money::ZERO, Money::ZERO));
        if entry.0 + entry.1 + amount > limit {
            return Err(SharedRefusal::Over {
                spent: entry.0,
                reserved: entry.1,
            });
        }
        entry.1 += amount;
        Ok(())
    }

    fn settle(&self, a: SharedKey<'_>, reserved: Money, cost: Money) {
        let mut accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        let entry = accounts
            .entry((a.budget.into(), a.key.into(), a.window))
            .or_insert((Money::ZERO, Money::ZERO));
        entry.1 -= reserved;
        entry.0 += cost;
    }

    fn forget_before(&self, budget: &str, window: i64) {
        self.forgets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((budget.to_owned(), window));
        let mut accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        accounts.retain(|(b, _, w), _| b != budget || *w >= window);
    }
}

impl Memory {
    fn figures(&self, budget: &str, key: &str) -> Option<(Money, Money)> {
        let accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        accounts
            .iter()
            .find(|((b, k, _), _)| b == budget && k == key)
            .map(|(_, f)| *f)
    }
}

fn keys(user: &str) -> CallKeys {
    CallKeys {
        call: Arc::from("call"),
        session: Some(Arc::from("s-1")),
        user: Some(Arc::from(user)),
        ..CallKeys::default()
    }
}

/// The windows of `budget`'s accounts kept in `memory`, in order.
fn windows_kept(memory: &Memory, budget: &str) -> Vec<i64> {
    let accounts = memory.accounts.lock().unwrap_or_else(|e| e.into_inner());
    let mut windows: Vec<i64> = accounts
        .keys()
        .filter(|(b, _, _)| b == budget)
        .map(|(_, _, w)| *w)
        .collect();
    windows.sort_unstable();
    windows.dedup();
    windows
}

#[test]
fn the_store_keeps_the_accounts_of_two_windows_not_of_every_day() {
    let memory = Arc::new(Memory::default());
    let start = 1_764_417_600; // 2025-11-29 12:00 UTC, day 20 421
    let clock = Arc::new(ManualClock::new(start));
    let config = BudgetConfig {
        budgets: vec![
            Budget::deny("per_user_daily", BudgetScope::User, Window::Day, usd("1")),
            Budget::deny(
                "per_user_monthly",
                BudgetScope::User,
                Window::Month,
                usd("20"),
            ),
        ],
        ..BudgetConfig::default()
    };
    let accounts: Arc<dyn SharedAccounts> = memory.clone();
    let book = BudgetBook::with_shared(config, clock.clone(), accounts, Unavailable::FailOpen)
        .unwrap_or_else(|e| panic!("{e}"));
    let day = 20_421;
    for offset in 0..5 {
        clock.set(start + offset * 86_400);
        for user in ["alice", "bob"] {
            let reservation = book
                .reserve(&keys(user), usd("0.1"))
                .unwrap_or_else(|e| panic!("{e}"));
            reservation.settle(usd("0.1"));
        }
        // The new day and the one before it; every older day forgotten.
        let expected: Vec<i64> = ((day + offset - 1).max(day)..=day + offset).collect();
        assert_eq!(
            windows_kept(&memory, "per_user_daily"),
            expected,
            "day {offset}"
        );
    }
    // November's and, from the 1st, December's: the month before the current one is kept.
    assert_eq!(windows_kept(&memory, "per_user_monthly").len(), 2);
    // Asked once per budget and new window (at its first reservation), not at every call.
    let forgets = memory
        .forgets
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let asked = |budget: &str| -> Vec<i64> {
        forgets
            .iter()
            .filter(|(b, _)| b == budget)
            .map(|(_, w)| *w)
            .collect()
    };
    assert_eq!(
        asked("per_user_daily"),
        (day - 1..day + 4).collect::<Vec<i64>>()
    );
    assert_eq!(asked("per_user_monthly").len(), 2);
    assert_eq!(
        memory.figures("per_user_daily", "alice").map(|f| f.1),
        Some(Money::ZERO)
    );
}

fn book(memory: &Arc<Memory>, unavailable: Unavailable) -> BudgetBook {
    let config = BudgetConfig {
        budgets: vec![
            Budget::deny("per_user_daily", BudgetScope::User, Window::Day, usd("1")),
            Budget::deny(
                "per_session_max",
                BudgetScope::Session,
                Window::Lifetime,
                usd("10"),
            ),
        ],
        ..BudgetConfig::default()
    };
    let accounts: Arc<dyn SharedAccounts> = memory.clone();
    BudgetBook::with_shared(
        config,
        Arc::new(ManualClock::new(1_764_072_000)),
        accounts,
        unavailable,
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn calendar_budgets_reserve_and_settle_in_the_shared_accounts() {
    let memory = Arc::new(Memory::default());
    let book = book(&memory, Unavailable::FailOpen);
    let reservation = book
        .reserve(&keys("alice"), usd("0.4"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        memory.figures("per_user_daily", "alice"),
        Some((Money::ZERO, usd("0.4")))
    );
    // The lifetime budget stays in the process.
    assert_eq!(memory.figures("per_session_max", "s-1"), None);
    assert_eq!(
        book.account("per_session_max", "s-1"),
        Some((Money::ZERO, usd("0.4")))
    );
    reservation.settle(usd("0.25"));
    assert_eq!(
        memory.figures("per_user_daily", "alice"),
        Some((usd("0.25"), Money::ZERO))
    );
}

#[test]
fn spend_booked_by_another_process_refuses_the_call() {
    let memory = Arc::new(Memory::default());
    // Another process (or this one before a restart) spent $0.9 of alice's day.
    let other = book(&memory, Unavailable::FailOpen);
    other
        .reserve(&keys("alice"), usd("0.9"))
        .unwrap_or_else(|e| panic!("{e}"))
        .settle(usd("0.9"));
    let this = book(&memory, Unavailable::FailOpen);
    let refused = this
        .reserve(&keys("alice"), usd("0.2"))
        .err()
        .unwrap_or_else(|| panic!("admitted over the shared limit"));
    assert_eq!((refused.spent, refused.limit), (usd("0.9"), usd("1")));
    assert_eq!(refused.unavailable(), None);
    // Nothing stays booked by the refused call, here or there.
    assert_eq!(
        this.account("per_session_max", "s-1"),
        Some((Money::ZERO, Money::ZERO))
    );
    assert_eq!(
        memory.figures("per_user_daily", "alice"),
        Some((usd("0.9"), Money::ZERO))
    );
    // Equal to the limit is within.
    assert!(this.reserve(&keys("alice"), usd("0.1")).is_ok());
}

#[test]
fn a_dropped_reservation_is_released_in_the_shared_accounts() {
    let memory = Arc::new(Memory::default());
    let book = book(&memory, Unavailable::FailOpen);
    drop(book.reserve(&keys("bob"), usd("0.5")));
    assert_eq!(
        memory.figures("per_user_daily", "bob"),
        Some((Money::ZERO, Money::ZERO))
    );
}

#[test]
fn an_unavailable_store_fails_open_or_closed_as_configured() {
    let memory = Arc::new(Memory::default());
    *memory.down.lock().unwrap_or_else(|e| e.into_inner()) = true;
    let open = book(&memory, Unavailable::FailOpen);
    let admitted = open.reserve(&keys("carol"), usd("0.5"));
    assert!(admitted.is_ok(), "fail open admits");
    // … on the process's own accounts, which still enforce the limit.
    assert!(open.reserve(&keys("carol"), usd("0.6")).is_err());
    drop(admitted);
    let closed = book(&memory, Unavailable::FailClosed);
    let refused = closed
        .reserve(&keys("carol"), usd("0.01"))
        .err()
        .unwrap_or_else(|| panic!("fail closed admitted"));
    assert_eq!(refused.unavailable(), Some("connection refused"));
    assert!(refused.to_string().contains("fails closed"), "{refused}");
}

/// Accounts in memory whose async reservations wait until the gate is opened, as a store slow
/// to answer.
#[derive(Default)]
struct Gated {
    memory: Memory,
    open: Mutex<bool>,
    /// The wakers of the reservations waiting.
    waiting: Mutex<Vec<std::task::Waker>>,
}

impl Gated {
    fn open(&self) {
        *self.open.lock().unwrap_or_else(|e| e.into_inner()) = true;
        for waker in self
            .waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            waker.wake();
        }
    }
}

impl SharedAccounts for Gated {
    fn try_reserve(
        &self,
        account: SharedKey<'_>,
        amount: Money,
        limit: Money,
    ) -> Result<(), SharedRefusal> {
        self.memory.try_reserve(account, amount, limit)
    }

    fn try_reserve_async<'a>(
        &'a self,
        account: SharedKey<'a>,
        amount: Money,
        limit: Money,
    ) -> cost_core::budget::SharedReservation<'a> {
        Box::pin(std::future::poll_fn(move |context| {
            if *self.open.lock().unwrap_or_else(|e| e.into_inner()) {
                return std::task::Poll::Ready(self.memory.try_reserve(account, amount, limit));
            }
            let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
            waiting.push(context.waker().clone());
            std::task::Poll::Pending
        }))
    }

    fn settle(&self, account: SharedKey<'_>, reserved: Money, cost: Money) {
        self.memory.settle(account, reserved, cost);
    }
}

/// A book over `gated` with a lifetime budget per session (kept in the process) before a daily
/// budget per user (in the shared accounts).
fn gated_book(gated: &Arc<Gated>) -> BudgetBook {
    let config = BudgetConfig {
        budgets: vec![
            Budget::deny(
                "per_session_max",
                BudgetScope::Session,
                Window::Lifetime,
                usd("10"),
            ),
            Budget::deny("per_user_daily", BudgetScope::User, Window::Day, usd("1")),
        ],
        ..BudgetConfig::default()
    };
    let accounts: Arc<dyn SharedAccounts> = gated.clone();
    BudgetBook::with_shared(
        config,
        Arc::new(ManualClock::new(1_764_072_000)),
        accounts,
        Unavailable::FailClosed,
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Counts its wakes.
struct CountingWaker(std::sync::atomic::AtomicU32);

impl std::task::Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

fn is_send<T: Send>(_: &T) {}

#[test]
fn an_async_reservation_waits_for_the_store_as_a_future_and_books_when_it_answers() {
    use std::future::Future;
    let gated = Arc::new(Gated::default());
    let book = gated_book(&gated);
    let keys = keys("dana");
    let reserving = book.reserve_async(&keys, usd("0.4"));
    is_send(&reserving);
    let mut reserving = std::pin::pin!(reserving);
    let wakes = Arc::new(CountingWaker(Default::default()));
    let waker = std::task::Waker::from(Arc::clone(&wakes));
    let mut context = std::task::Context::from_waker(&waker);
    // The store has not answered: the caller's thread is handed back, not held.
    assert!(reserving.as_mut().poll(&mut context).is_pending());
    assert_eq!(
        book.account("per_session_max", "s-1"),
        Some((Money::ZERO, usd("0.4")))
    );
    assert_eq!(gated.memory.figures("per_user_daily", "dana"), None);
    // It answers: the task is woken and the reservation made.
    gated.open();
    assert_eq!(wakes.0.load(std::sync::atomic::Ordering::SeqCst), 1);
    let reservation = match reserving.as_mut().poll(&mut context) {
        std::task::Poll::Ready(reservation) => reservation.unwrap_or_else(|e| panic!("{e}")),
        std::task::Poll::Pending => panic!("still waiting once the store answered"),
    };
    assert_eq!(
        gated.memory.figures("per_user_daily", "dana"),
        Some((Money::ZERO, usd("0.4")))
    );
    reservation.settle(usd("0.1"));
    assert_eq!(
        gated.memory.figures("per_user_daily", "dana"),
        Some((usd("0.1"), Money::ZERO))
    );
    assert_eq!(
        book.account("per_session_max", "s-1"),
        Some((usd("0.1"), Money::ZERO))
    );
}

#[test]
fn an_async_reservation_dropped_while_it_waits_releases_what_it_had_booked() {
    use std::future::Future;
    let gated = Arc::new(Gated::default());
    let book = gated_book(&gated);
    let keys = keys("eli");
    {
        let mut reserving = std::pin::pin!(book.reserve_async(&keys, usd("0.4")));
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(reserving.as_mut().poll(&mut context).is_pending());
        assert_eq!(
            book.account("per_session_max", "s-1"),
            Some((Money::ZERO, usd("0.4")))
        );
        // Dropped here, as by a timeout around the call.
    }
    assert_eq!(
        book.account("per_session_max", "s-1"),
        Some((Money::ZERO, Money::ZERO))
    );
    gated.open();
    assert_eq!(gated.memory.figures("per_user_daily", "eli"), None);
    // The blocking path is unchanged: it books in both.
    let reservation = book
        .reserve(&keys, usd("0.3"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        gated.memory.figures("per_user_daily", "eli"),
        Some((Money::ZERO, usd("0.3")))
    );
    drop(reservation);
}

#[test]
fn a_call_refused_by_a_later_budget_leaves_nothing_booked_by_an_earlier_one() {
    let gated = Arc::new(Gated::default());
    gated.open();
    let book = gated_book(&gated);
    // $0.90 of fay's day spent in another session.
    book.reserve(&keys_in("fay", "s-0"), usd("0.9"))
        .unwrap_or_else(|e| panic!("{e}"))
        .settle(usd("0.9"));
    // The session's budget books $0.20, then the day's refuses it: released.
    let refused = book
        .reserve(&keys_in("fay", "s-1"), usd("0.2"))
        .err()
        .unwrap_or_else(|| panic!("admitted over the day's limit"));
    assert_eq!(&*refused.budget, "per_user_daily");
    assert_eq!(
        book.account("per_session_max", "s-1"),
        Some((Money::ZERO, Money::ZERO))
    );
}

fn keys_in(user: &str, session: &str) -> CallKeys {
    CallKeys {
        session: Some(Arc::from(session)),
        ..keys(user)
    }
}
