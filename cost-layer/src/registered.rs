//! The `CostLayer`s of each dispatcher, for what must reach a layer that
//! `Dispatch::downcast_ref` cannot: `reload::Layer` hides the layer it wraps (its lock could be
//! replaced under a pointer), while the subscriber under it stays reachable. Each layer
//! registers with the dispatcher it joins (`on_register_dispatch`) and is found again by the
//! address of that subscriber: budget reservations and the count of calls a filter hid.

use std::sync::{Arc, RwLock, Weak};

use tracing::Dispatch;
use tracing::dispatcher::WeakDispatch;
use tracing_core::Subscriber;

use crate::budget::WithBudget;
use crate::ledger::LedgerInner;

/// One layer, registered with one dispatcher.
struct RegisteredLayer {
    ledger: Weak<LedgerInner>,
    /// The layer's budget hook, when it has budgets.
    budget: Option<Weak<WithBudget>>,
    /// Kept weak, it keeps the dispatcher's memory, so no other subscriber takes the address
    /// while the registration lasts.
    dispatch: WeakDispatch,
    /// The address of the subscriber under the layer, in that dispatcher.
    subscriber: usize,
    /// The same address in any dispatcher, found by downcast.
    locate: fn(&Dispatch) -> Option<usize>,
}

impl RegisteredLayer {
    /// Registered with `dispatch`: a registration whose subscriber is at the address of
    /// `dispatch`'s is `dispatch`'s (no other subscriber can take that address meanwhile).
    fn is_in(&self, dispatch: &Dispatch) -> bool {
        (self.locate)(dispatch) == Some(self.subscriber)
    }
}

static REGISTERED: RwLock<Vec<RegisteredLayer>> = RwLock::new(Vec::new());

fn address_of<S: Subscriber>(dispatch: &Dispatch) -> Option<usize> {
    dispatch.downcast_ref::<S>().map(|s| s as *const S as usize)
}

/// Registers a layer (its ledger and budget hook) with the dispatcher it joins, where `S` is
/// the subscriber under it. Layers and dispatchers gone are dropped from the list as new ones
/// come: it holds the live ones and at most as many gone.
pub(crate) fn register<S: Subscriber>(
    dispatch: &Dispatch,
    ledger: &Arc<LedgerInner>,
    budget: Option<&Arc<WithBudget>>,
) {
    let Some(subscriber) = address_of::<S>(dispatch) else {
        return;
    };
    // Dispatchers found alive while pruning, released after the list's lock: one whose last
    // handle went meanwhile is dropped (its layers and sinks with it) outside the lock.
    let mut alive = Vec::new();
    if let Ok(mut registered) = REGISTERED.write() {
        registered.retain(|r| {
            let dispatch = r.dispatch.upgrade();
            let keep = r.ledger.strong_count() > 0 && dispatch.is_some();
            alive.extend(dispatch);
            keep
        });
        registered.push(RegisteredLayer {
            ledger: Arc::downgrade(ledger),
            budget: budget.map(Arc::downgrade),
            dispatch: dispatch.downgrade(),
            subscriber,
            locate: address_of::<S>,
        });
    }
}

/// The ledger of a layer registered with `dispatch` (the first registered).
pub(crate) fn ledger_in(dispatch: &Dispatch) -> Option<Arc<LedgerInner>> {
    let registered = REGISTERED.read().ok()?;
    registered
        .iter()
        .filter(|r| r.is_in(dispatch))
        .find_map(|r| r.ledger.upgrade())
}

/// The budget hooks of the layers registered with `dispatch`, in the order they registered
/// (taken out of the list's lock: reserving may wait on a shared store).
pub(crate) fn budget_hooks_in(dispatch: &Dispatch) -> Vec<Arc<WithBudget>> {
    let Ok(registered) = REGISTERED.read() else {
        return Vec::new();
    };
    registered
        .iter()
        .filter(|r| r.is_in(dispatch))
        .filter_map(|r| r.budget.as_ref()?.upgrade())
        .collect()
}
