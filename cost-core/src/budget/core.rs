//! The concurrent core of the budget book: booking an amount against several accounts without
//! ever admitting more than a limit, claiming each threshold alert once, and a clock that never
//! goes back, under any interleaving. Kept apart so `loom` models
//! (`cost-core/tests/loom_reservation.rs`, run with `RUSTFLAGS="--cfg cost_loom"`) check the
//! same code the book runs: the reservation logic over a mutex, and the lock the book puts that
//! logic behind ([`SpinThenYield`]) on its own.

#[cfg(cost_loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicI64, AtomicU32};
#[cfg(not(cost_loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32};

use std::sync::atomic::Ordering;

/// The lock of an account's figures: `lock_api`'s mutex over [`SpinThenYield`]. Under loom
/// the figures sit behind loom's own mutex (a `lock_api` raw mutex must be built in a
/// constant, which loom's atomics cannot be), and `SpinThenYield` is modelled on its own.
#[cfg(not(cost_loom))]
pub(crate) type FiguresLock<T> = lock_api::Mutex<SpinThenYield, T>;
#[cfg(cost_loom)]
pub(crate) type FiguresLock<T> = loom::sync::Mutex<T>;

#[cfg(not(cost_loom))]
type FiguresGuard<'a, T> = lock_api::MutexGuard<'a, SpinThenYield, T>;
#[cfg(cost_loom)]
type FiguresGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

#[cfg(not(cost_loom))]
fn lock<T>(mutex: &FiguresLock<T>) -> FiguresGuard<'_, T> {
    mutex.lock()
}

#[cfg(cost_loom)]
fn lock<T>(mutex: &FiguresLock<T>) -> FiguresGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A test-and-test-and-set lock for critical sections of a few instructions (an account's
/// comparison and two additions). A waiter spins briefly, then yields its time slice
/// (`crossbeam_utils::Backoff`); the holder releases it with a plain store: one atomic
/// read-modify-write per lock round trip, where `std::sync::Mutex` takes two (its release must
/// learn whether a waiter sleeps). Through `lock_api`, its guard releases it on unwinding too,
/// and there is no poisoning. The loom model `the_figures_lock_excludes_and_publishes` checks
/// that it excludes and that a holder's writes are seen by the next.
#[derive(Debug)]
pub struct SpinThenYield(AtomicBool);

/// A free lock (under loom, whose atomics cannot be built in a constant).
#[cfg(cost_loom)]
impl Default for SpinThenYield {
    fn default() -> Self {
        SpinThenYield(AtomicBool::new(false))
    }
}

impl SpinThenYield {
    /// A free lock.
    #[cfg(cost_loom)]
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the lock if it is free: `true` when taken.
    #[inline]
    pub fn try_acquire(&self) -> bool {
        self.0
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Takes the lock, waiting for it.
    #[inline]
    pub fn acquire(&self) {
        if !self.try_acquire() {
            self.acquire_contended();
        }
    }

    /// Frees the lock; only its holder may call it.
    #[inline]
    pub fn release(&self) {
        self.0.store(false, Ordering::Release);
    }

    #[cold]
    fn acquire_contended(&self) {
        #[cfg(not(cost_loom))]
        let backoff = crossbeam_utils::Backoff::new();
        loop {
            // Read until it looks free (reads keep the line shared), then try to take it.
            while self.0.load(Ordering::Relaxed) {
                #[cfg(not(cost_loom))]
                backoff.snooze();
                #[cfg(cost_loom)]
                loom::thread::yield_now();
            }
            if self.try_acquire() {
                return;
            }
        }
    }
}

// SAFETY: `lock` returns only once this thread turned the flag from free to held with an
// acquiring exchange, so there is one holder at a time; `unlock` (which `lock_api` calls only
// for the holder) frees it with a releasing store, which publishes the holder's writes to the
// next holder.
#[cfg(not(cost_loom))]
#[allow(unsafe_code)]
unsafe impl lock_api::RawMutex for SpinThenYield {
    const INIT: Self = SpinThenYield(AtomicBool::new(false));
    type GuardMarker = lock_api::GuardSend;

    #[inline]
    fn lock(&self) {
        self.acquire();
    }

    #[inline]
    fn try_lock(&self) -> bool {
        self.try_acquire()
    }

    #[inline]
    unsafe fn unlock(&self) {
        self.release();
    }
}

/// Spend and reservations of one account.
#[derive(Default, Debug)]
pub struct Ledger {
    /// Spent in the window.
    pub spent: i128,
    /// Reserved by calls in flight.
    pub reserved: i128,
    /// Taken out of the book while it held nothing ([`Account::retire_if_idle`]): it books
    /// nothing more, and whoever still holds it books on the key's account in the book.
    pub retired: bool,
}

/// Why [`Account::try_reserve`] booked nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// `spent + reserved + amount` would be over the limit: the figures it saw.
    Over {
        /// Spent in the window.
        spent: i128,
        /// Reserved by calls in flight.
        reserved: i128,
    },
    /// The account was retired: book on the key's account in the book instead.
    Retired,
}

/// One account: its figures behind its own lock.
#[derive(Default, Debug)]
pub struct Account {
    pub(crate) ledger: FiguresLock<Ledger>,
}

impl Account {
    /// A fresh account.
    pub fn new() -> Self {
        Account::default()
    }

    /// Books `amount` if `spent + reserved + amount <= limit` (over is `>`; equal is within)
    /// and the account is not retired.
    pub fn try_reserve(&self, amount: i128, limit: i128) -> Result<(), Refused> {
        let mut ledger = lock(&self.ledger);
        if ledger.retired {
            return Err(Refused::Retired);
        }
        if ledger.spent + ledger.reserved + amount > limit {
            return Err(Refused::Over {
                spent: ledger.spent,
                reserved: ledger.reserved,
            });
        }
        ledger.reserved += amount;
        Ok(())
    }

    /// Adds `cost` to the spend of an account on which nothing was reserved; returns the
    /// spend after it, or `None` when the account is retired (nothing is added: charge the
    /// key's account in the book).
    pub fn try_charge(&self, cost: i128) -> Option<i128> {
        let mut ledger = lock(&self.ledger);
        if ledger.retired {
            return None;
        }
        ledger.spent += cost;
        Some(ledger.spent)
    }

    /// `true` once the account is retired.
    pub fn is_retired(&self) -> bool {
        lock(&self.ledger).retired
    }

    /// Retires the account if it holds nothing (no spend, no reservation): `true` when it did.
    /// Under the account's lock, as booking: a reservation or a charge either comes first (the
    /// account then holds it and is not retired) or finds it retired.
    pub fn retire_if_idle(&self) -> bool {
        let mut ledger = lock(&self.ledger);
        if ledger.retired || ledger.spent != 0 || ledger.reserved != 0 {
            return false;
        }
        ledger.retired = true;
        true
    }

    /// Gives back a reservation.
    pub fn release(&self, amount: i128) {
        lock(&self.ledger).reserved -= amount;
    }

    /// Turns a reservation of `reserved` into a spend of `cost`; returns the spend after it.
    pub fn settle(&self, reserved: i128, cost: i128) -> i128 {
        let mut ledger = lock(&self.ledger);
        ledger.reserved -= reserved;
        ledger.spent += cost;
        ledger.spent
    }

    /// `(spent, reserved)`.
    pub fn figures(&self) -> (i128, i128) {
        let ledger = lock(&self.ledger);
        (ledger.spent, ledger.reserved)
    }
}

/// The thresholds of one account already alerted, one bit each: each is claimed by exactly one
/// caller, however many cross it at once.
#[derive(Default, Debug)]
pub struct Fired(AtomicU32);

impl Fired {
    /// No threshold claimed.
    pub fn new() -> Self {
        Fired::default()
    }

    /// Claims threshold `bit` (0 to 31): `true` for the one caller that claims it first.
    pub fn claim(&self, bit: u32) -> bool {
        let mask = 1_u32 << bit.min(31);
        // A cheap read first: once claimed, later callers do not write the shared line.
        self.0.load(Ordering::Relaxed) & mask == 0
            && self.0.fetch_or(mask, Ordering::Relaxed) & mask == 0
    }

    /// Releases the claimed thresholds whose line (`lines[bit]`, the spend at which threshold
    /// `bit` fires) is above `spent`: the spend fell back below them, so the next crossing
    /// alerts again. For rolling windows, whose spend falls as it leaves the window.
    pub fn rearm_above(&self, spent: i128, lines: &[i128]) {
        let claimed = self.0.load(Ordering::Relaxed);
        if claimed == 0 {
            return;
        }
        let above = lines
            .iter()
            .take(32)
            .enumerate()
            .filter(|(_, line)| spent < **line)
            .fold(0_u32, |mask, (bit, _)| mask | 1 << bit);
        if claimed & above != 0 {
            self.0.fetch_and(!above, Ordering::Relaxed);
        }
    }
}

/// The latest time seen: a clock read through it never goes back.
#[derive(Debug)]
pub struct Latest(AtomicI64);

impl Default for Latest {
    fn default() -> Self {
        Latest(AtomicI64::new(i64::MIN))
    }
}

impl Latest {
    /// Nothing seen yet.
    pub fn new() -> Self {
        Latest::default()
    }

    /// `now`, or the latest time seen before if that is later.
    pub fn advance(&self, now: i64) -> i64 {
        // A cheap read first: the time moves on once a second, so most calls write nothing
        // to the shared line.
        let latest = self.0.load(Ordering::Relaxed);
        if latest >= now {
            return latest;
        }
        self.0.fetch_max(now, Ordering::Relaxed).max(now)
    }
}

/// Books `amount` on every account (each with its limit) or on none: on the first account that
/// would go over, the ones already booked are released. Returns the index of the refusing
/// account and its figures (zeros for a retired one).
///
/// This is the book's all-or-none booking reduced to accounts of this process, through the same
/// [`Account::try_reserve`] and [`Account::release`]; the book's own loop adds what this one
/// leaves out (the accounts shared between processes, and booking on the key's new account when
/// the one it held was retired). The `loom` models drive racing reservations through it.
pub fn reserve_all(accounts: &[(&Account, i128)], amount: i128) -> Result<(), (usize, i128, i128)> {
    for (i, (account, limit)) in accounts.iter().enumerate() {
        if let Err(refused) = account.try_reserve(amount, *limit) {
            for (booked, _) in &accounts[..i] {
                booked.release(amount);
            }
            let (spent, reserved) = match refused {
                Refused::Over { spent, reserved } => (spent, reserved),
                Refused::Retired => (0, 0),
            };
            return Err((i, spent, reserved));
        }
    }
    Ok(())
}

#[cfg(all(test, not(cost_loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_panic_while_the_figures_are_locked_releases_the_lock() {
        let account = Account::new();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _held = lock(&account.ledger);
            panic!("inside the lock");
        }));
        assert!(outcome.is_err());
        assert!(account.ledger.try_lock().is_some(), "the lock stayed held");
        assert_eq!(account.try_reserve(5, 10), Ok(()));
        assert_eq!(account.figures(), (0, 5));
    }

    #[test]
    fn the_figures_lock_is_not_taken_while_held() {
        let account = Account::new();
        let held = lock(&account.ledger);
        assert!(account.ledger.try_lock().is_none());
        drop(held);
        assert!(account.ledger.try_lock().is_some());
    }

    #[test]
    fn a_reservation_is_booked_on_every_account_or_on_none() {
        let (a, b) = (Account::new(), Account::new());
        assert_eq!(reserve_all(&[(&a, 20), (&b, 10)], 10), Ok(()));
        assert_eq!((a.figures(), b.figures()), ((0, 10), (0, 10)));
        // B is full: refused there, with B's figures, and A's booking given back.
        assert_eq!(reserve_all(&[(&a, 20), (&b, 10)], 1), Err((1, 0, 10)));
        assert_eq!((a.figures(), b.figures()), ((0, 10), (0, 10)));
        b.settle(10, 4);
        assert_eq!(reserve_all(&[(&a, 20), (&b, 10)], 6), Ok(()));
        assert_eq!((a.figures(), b.figures()), ((0, 16), (4, 6)));
        // A retired account refuses with zeros.
        let idle = Account::new();
        assert!(idle.retire_if_idle());
        assert!(idle.is_retired() && !a.is_retired());
        assert_eq!(reserve_all(&[(&a, 100), (&idle, 100)], 1), Err((1, 0, 0)));
        assert_eq!(a.figures(), (0, 16));
    }

    #[test]
    fn a_threshold_is_rearmed_only_when_the_spend_falls_below_its_line() {
        let fired = Fired::new();
        let lines = [50, 80];
        assert!(fired.claim(0) && fired.claim(1));
        // At a line the threshold is still crossed: both stay claimed.
        fired.rearm_above(80, &lines);
        assert!(!fired.claim(0) && !fired.claim(1));
        // Below the second line, only it is rearmed.
        fired.rearm_above(79, &lines);
        assert!(!fired.claim(0));
        assert!(fired.claim(1));
        fired.rearm_above(10, &lines);
        assert!(fired.claim(0) && fired.claim(1));
    }

    #[test]
    fn threads_racing_on_one_account_lose_no_update() {
        let account = Account::new();
        std::thread::scope(|scope| {
            for _ in 0..2 {
                scope.spawn(|| {
                    for _ in 0..50_000 {
                        if account.try_reserve(3, i128::MAX).is_ok() {
                            account.settle(3, 2);
                        }
                    }
                });
            }
        });
        assert_eq!(account.figures(), (200_000, 0));
    }
}
