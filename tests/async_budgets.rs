//! `#[llm_call]` on an async fn with a shared budget: the reservation's round trip to the
//! store is awaited, so the executor's thread runs other tasks while the store has not answered.

use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::Duration;

use cost_core::Money;
use cost_core::Usage;
use cost_core::budget::{
    Budget, BudgetBook, BudgetConfig, BudgetExceeded, BudgetScope, ManualClock, SharedAccounts,
    SharedKey, SharedRefusal, SharedReservation, Unavailable, Window,
};
use cost_layer::{CostLayer, llm_call};
use tracing::Instrument;
use tracing_subscriber::prelude::*;

fn usd(text: &str) -> Money {
    Money::from_decimal(text).unwrap_or_else(|e| panic!("{e}"))
}

/// Shared accounts in memory whose async reservations wait until the store "answers" (the
/// gate is opened). A reservation made the blocking way is refused: this program must never
/// make one.
#[derive(Default)]
struct SlowStore {
    state: Mutex<StoreState>,
}

#[derive(Default)]
struct StoreState {
    answering: bool,
    /// The tasks waiting for an answer.
    waiting: Vec<Waker>,
    /// Reserved and spent, all accounts together.
    reserved: Money,
    spent: Money,
    blocking_reservations: u32,
}

impl SlowStore {
    fn state(&self) -> std::sync::MutexGuard<'_, StoreState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn answer(&self) {
        let mut state = self.state();
        state.answering = true;
        for waker in state.waiting.drain(..) {
            waker.wake();
        }
    }
}

impl SharedAccounts for SlowStore {
    fn try_reserve(&self, _: SharedKey<'_>, _: Money, _: Money) -> Result<(), SharedRefusal> {
        self.state().blocking_reservations += 1;
        Err(SharedRefusal::Unavailable(
            "reserved on the executor's thread".into(),
        ))
    }

    fn try_reserve_async<'a>(
        &'a self,
        _: SharedKey<'a>,
        amount: Money,
        _: Money,
    ) -> SharedReservation<'a> {
        Box::pin(std::future::poll_fn(move |context| {
            let mut state = self.state();
            if !state.answering {
                state.waiting.push(context.waker().clone());
                return Poll::Pending;
            }
            state.reserved += amount;
            Poll::Ready(Ok(()))
        }))
    }

    fn settle(&self, _: SharedKey<'_>, reserved: Money, cost: Money) {
        let mut state = self.state();
        state.reserved -= reserved;
        state.spent += cost;
    }
}

#[derive(Debug)]
enum CallError {
    // Shown by the failure messages, through `Debug`.
    #[allow(dead_code)]
    OverBudget(BudgetExceeded),
}

impl From<BudgetExceeded> for CallError {
    fn from(refused: BudgetExceeded) -> Self {
        CallError::OverBudget(refused)
    }
}

#[llm_call(
    model = "gpt-4o-mini",
    max_output_tokens = 1_000,
    estimate_input = 2_000
)]
async fn chat() -> Result<Usage, CallError> {
    Ok(Usage::new(2_000, 500))
}

/// A layer whose book keeps a daily budget per user in `store` (failing closed), and a lifetime
/// budget per session in the process; and the book.
fn dispatch_over(store: &Arc<SlowStore>) -> (tracing::Dispatch, BudgetBook) {
    let config = BudgetConfig {
        budgets: vec![
            Budget::deny(
                "per_session_max",
                BudgetScope::Session,
                Window::Lifetime,
                usd("10"),
            ),
            Budget::deny("per_user_daily", BudgetScope::User, Window::Day, usd("5")),
        ],
        ..BudgetConfig::default()
    };
    let accounts: Arc<dyn SharedAccounts> = store.clone();
    let book = BudgetBook::with_shared(
        config,
        Arc::new(ManualClock::new(1_764_072_000)),
        accounts,
        Unavailable::FailClosed,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (cost, _ledger) = CostLayer::builder().budgets(book.clone()).build();
    (
        tracing::Dispatch::new(tracing_subscriber::registry().with(cost)),
        book,
    )
}

fn session(id: &str) -> tracing::Span {
    tracing::info_span!("session", session.id = id, cost.user_id = "uma")
}

#[test]
fn an_async_call_awaits_its_shared_reservation_while_other_tasks_run() {
    let store = Arc::new(SlowStore::default());
    let (dispatch, _book) = dispatch_over(&store);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let answer = tracing::dispatcher::with_default(&dispatch, || {
        runtime.block_on(async {
            // One thread: the call's task and the store's answer take turns on it.
            let call = tokio::spawn(chat().instrument(session("s-1")));
            let other_ran = tokio::spawn({
                let store = Arc::clone(&store);
                async move {
                    // (Bounded: a call that does not wait for the store never shows here.)
                    for _ in 0..100_000 {
                        if !store.state().waiting.is_empty() {
                            break;
                        }
                        tokio::task::yield_now().await;
                    }
                    // The call waits for the store, and this task runs meanwhile.
                    store.answer();
                }
            });
            let _ = other_ran.await;
            call.await
        })
    });
    let usage = match answer {
        Ok(Ok(usage)) => usage,
        other => panic!("the call did not run: {other:?}"),
    };
    assert_eq!(usage.input, 2_000);
    let state = store.state();
    assert_eq!(state.blocking_reservations, 0);
    // Reserved, then settled at the call's cost: nothing left reserved.
    assert_eq!(state.reserved, Money::ZERO);
    assert!(state.spent > Money::ZERO);
}

#[test]
fn an_async_call_dropped_while_its_reservation_waits_leaves_nothing_booked() {
    let store = Arc::new(SlowStore::default());
    let (dispatch, book) = dispatch_over(&store);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    // Kept open: a closed session's lifetime accounts are forgotten.
    let session = tracing::dispatcher::with_default(&dispatch, || session("s-2"));
    let timed_out = tracing::dispatcher::with_default(&dispatch, || {
        runtime.block_on(async {
            let call = chat().instrument(session.clone());
            tokio::time::timeout(Duration::from_millis(50), call).await
        })
    });
    assert!(timed_out.is_err(), "the store never answered");
    assert_eq!(store.state().reserved, Money::ZERO);
    // The session's budget, booked in the process before the store was asked, was released.
    assert_eq!(
        book.account("per_session_max", "s-2"),
        Some((Money::ZERO, Money::ZERO))
    );
    store.answer();
    let next = tracing::dispatcher::with_default(&dispatch, || {
        runtime.block_on(chat().instrument(session.clone()))
    });
    assert!(next.is_ok(), "{next:?}");
    drop(session);
    assert_eq!(store.state().blocking_reservations, 0);
}
