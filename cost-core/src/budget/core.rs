//! The concurrent core of the budget book: booking an amount against several accounts without
//! ever admitting more than a limit, claiming each threshold alert once, and a clock that never
//! goes back, under any interleaving. Kept apart so `loom` models
//! (`cost-core/tests/loom_reservation.rs`, run with `RUSTFLAGS="--cfg cost_loom"`) check the
//! same code the book runs.

#[cfg(cost_loom)]
pub(crate) use loom::sync::atomic::{AtomicI64, AtomicU32};
#[cfg(cost_loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};
#[cfg(not(cost_loom))]
pub(crate) use std::sync::atomic::{AtomicI64, AtomicU32};
#[cfg(not(cost_loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

use std::sync::atomic::Ordering;

/// Spend and reservations of one account.
#[derive(Default, Debug)]
pub struct Ledger {
    /// Spent in the window.
    pub spent: i128,
    /// Reserved by calls in flight.
    pub reserved: i128,
}

/// One account: its figures behind its own lock.
#[derive(Default, Debug)]
pub struct Account {
    pub(crate) ledger: Mutex<Ledger>,
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Account {
    /// A fresh account.
    pub fn new() -> Self {
        Account::default()
    }

    /// Books `amount` if `spent + reserved + amount <= limit` (over is `>`; equal is within).
    pub fn try_reserve(&self, amount: i128, limit: i128) -> Result<(), (i128, i128)> {
        let mut ledger = lock(&self.ledger);
        if ledger.spent + ledger.reserved + amount > limit {
            return Err((ledger.spent, ledger.reserved));
        }
        ledger.reserved += amount;
        Ok(())
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
/// account and its figures.
pub fn reserve_all(accounts: &[(&Account, i128)], amount: i128) -> Result<(), (usize, i128, i128)> {
    for (i, (account, limit)) in accounts.iter().enumerate() {
        if let Err((spent, reserved)) = account.try_reserve(amount, *limit) {
            for (booked, _) in &accounts[..i] {
                booked.release(amount);
            }
            return Err((i, spent, reserved));
        }
    }
    Ok(())
}
