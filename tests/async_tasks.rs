//! Async tasks on a multi-threaded runtime: calls spawned as tasks, moved between worker
//! threads while they wait, land their cost in the session and agent that spawned them.

use cost_core::{Money, Usage};
use cost_layer::{CostLayer, llm_call};
use tracing::Instrument;
use tracing_subscriber::prelude::*;

#[derive(Debug)]
struct Error;

#[llm_call(model = "gpt-4o-mini", feature = "fan_out")]
async fn call(input: u64) -> Result<Usage, Error> {
    // Yield so the task can resume on another worker thread.
    for _ in 0..3 {
        tokio::task::yield_now().await;
    }
    Ok(Usage::new(input, 100))
}

#[test]
fn tasks_across_worker_threads_charge_their_session() {
    let (cost, ledger) = CostLayer::builder().build();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(cost));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .on_thread_start({
            let dispatch = dispatch.clone();
            move || {
                // Each worker runs with the same subscriber.
                let guard = tracing::dispatcher::set_default(&dispatch);
                std::mem::forget(guard);
            }
        })
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    tracing::dispatcher::with_default(&dispatch, || {
        runtime.block_on(async {
            let mut sessions = Vec::new();
            for s in 0..4 {
                let id = format!("async-{s}");
                let session = tracing::info_span!("session", session.id = id.as_str());
                let agent =
                    tracing::info_span!(parent: &session, "agent", gen_ai.agent.name = "fan_out");
                let work = async move {
                    let tasks: Vec<_> = (0..25)
                        .map(|i| tokio::spawn(call(1_000 + i).in_current_span()))
                        .collect();
                    for task in tasks {
                        let _ = task.await;
                    }
                }
                .instrument(agent);
                sessions.push(tokio::spawn(work.instrument(session)));
            }
            for session in sessions {
                let _ = session.await;
            }
        });
    });
    drop(runtime);
    // Per session: Σ_{i<25} (1000 + i) × 0.15e-6 + 25 × 100 × 0.6e-6 = 0.00379500 + 0.0015
    let expected = Money::from_decimal("0.005295").unwrap_or_default();
    for s in 0..4 {
        let totals = ledger
            .session(&format!("async-{s}"))
            .unwrap_or_else(|| panic!("session {s}"));
        assert_eq!((totals.llm_calls, totals.total_usd()), (25, expected));
    }
    assert_eq!(ledger.agent("fan_out").map(|t| t.llm_calls), Some(100));
    assert_eq!(ledger.feature("fan_out").map(|t| t.llm_calls), Some(100));
}
