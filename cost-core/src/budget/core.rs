//! The reservation core: booking an amount against several accounts without ever admitting
//! more than a limit, under any interleaving. Kept apart so a `loom` model
//! (`cost-core/tests/loom_reservation.rs`, run with `RUSTFLAGS="--cfg cost_loom"`) checks the
//! same code the book runs.

#[cfg(cost_loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};
#[cfg(not(cost_loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

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
