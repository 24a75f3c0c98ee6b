//! Budget accounts kept outside the process, in a store every process shares (the
//! `cost-store` crate implements them for SQLite and PostgreSQL): calendar-window budgets
//! then hold across restarts and across processes.
//!
//! With [`BudgetBook::with_shared`](super::BudgetBook::with_shared), every *deny* budget with a
//! day or month window reserves in the shared accounts, with one atomic conditional update per
//! budget (`spent + reserved + amount ≤ limit`, the book's one comparison), so processes racing
//! on one budget never admit more than its limit. Settlement is queued by the implementation
//! (it runs when a call's span closes, where nothing may block) and applied in the store in
//! the background; until then the reservation stays booked, which can only refuse more, never
//! admit more. Lifetime and rolling windows, alert-only budgets, and threshold alerts stay in
//! the process.
//!
//! When the store cannot be reached, [`Unavailable`] decides: fail open (admit on the
//! process's own accounts, as without a store; the spend of calls admitted so still goes to the
//! shared accounts when they settle, so the store catches up once it answers) or fail closed
//! (refuse the call).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::money::Money;

/// The answer to [`SharedAccounts::try_reserve_async`], to await.
pub type SharedReservation<'a> =
    Pin<Box<dyn Future<Output = Result<(), SharedRefusal>> + Send + 'a>>;

/// One shared account: a budget, a key, and the calendar window it counts (a day or month
/// number, as [`super::utc_day`] and [`super::utc_month`] give them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SharedKey<'a> {
    /// The budget's name.
    pub budget: &'a str,
    /// The key (user, org, feature, model, `*` for global, …).
    pub key: &'a str,
    /// The window's number.
    pub window: i64,
}

/// Why a shared reservation was not booked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SharedRefusal {
    /// The limit would be exceeded: the account's figures when it was checked.
    Over {
        /// Spent in the window.
        spent: Money,
        /// Reserved by calls in flight.
        reserved: Money,
    },
    /// The store could not be reached or failed.
    Unavailable(String),
}

/// What a book does when its shared accounts cannot be reached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Unavailable {
    /// Admit calls against the process's own accounts (as if there were no store); their spend
    /// is settled into the shared accounts all the same.
    #[default]
    FailOpen,
    /// Refuse calls that a shared budget applies to.
    FailClosed,
}

/// Budget accounts in a store shared by processes.
pub trait SharedAccounts: Send + Sync + 'static {
    /// Books `amount` on `account` if `spent + reserved + amount ≤ limit`, atomically against
    /// every other process. May block (it runs before a call, on the caller's thread): an
    /// implementation over a network bounds how long (`cost_store`'s waits at most its
    /// `reservation_timeout`, then refuses as [`SharedRefusal::Unavailable`]).
    fn try_reserve(
        &self,
        account: SharedKey<'_>,
        amount: Money,
        limit: Money,
    ) -> Result<(), SharedRefusal>;

    /// [`SharedAccounts::try_reserve`] for an async caller: a future that waits for the store
    /// without blocking the executor's thread (an async fn's reservation,
    /// [`BudgetBook::reserve_async`](super::BudgetBook::reserve_async)). Dropped before it
    /// is ready, the reservation is given up: what the store books for it is released. The
    /// default runs [`SharedAccounts::try_reserve`] on the caller's thread, blocking it, for
    /// accounts that never wait long (in memory, a local file).
    fn try_reserve_async<'a>(
        &'a self,
        account: SharedKey<'a>,
        amount: Money,
        limit: Money,
    ) -> SharedReservation<'a> {
        Box::pin(std::future::ready(self.try_reserve(account, amount, limit)))
    }

    /// Turns `reserved` of the account's reservations into `cost` of spend (`cost` zero
    /// releases them). Must not block: queue the update.
    fn settle(&self, account: SharedKey<'_>, reserved: Money, cost: Money);

    /// Forgets the accounts of `budget` in windows before `window`: past days or months, which
    /// no reservation is booked in any more. A book calls it at its first reservation in each
    /// new window of a budget, with the window before the new one, which stays for the
    /// settlements of calls still in flight; the store then holds two windows of accounts per
    /// budget, not every window ever. Must not block: queue it. The default keeps them all.
    fn forget_before(&self, budget: &str, window: i64) {
        let _ = (budget, window);
    }
}

/// The shared accounts of a book and its policy when they cannot be reached.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) accounts: Arc<dyn SharedAccounts>,
    pub(crate) unavailable: Unavailable,
}
