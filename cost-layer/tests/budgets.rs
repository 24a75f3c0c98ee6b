//! Budgets through the layer and the macro: calls refused before they run, reservations settled
//! at close, alerts delivered.

#[path = "support/common.rs"]
mod common;
use common::{GatewayReply, block_on, usd};

use std::sync::{Arc, Mutex};

use cost_layer::cost_core::budget::{
    Budget, BudgetAlert, BudgetBook, BudgetConfig, BudgetExceeded, BudgetScope, CancelledCalls,
    ManualClock, UnpricedCalls, Window,
};
use cost_layer::cost_core::{Money, PriceTable, Usage};
use cost_layer::{CostLayer, Ledger, llm_call};
use tracing_subscriber::prelude::*;

#[path = "support/warnings.rs"]
mod warnings;
use warnings::Warnings;

#[derive(Debug)]
enum AgentError {
    OverBudget(BudgetExceeded),
}

impl From<BudgetExceeded> for AgentError {
    fn from(e: BudgetExceeded) -> Self {
        AgentError::OverBudget(e)
    }
}

/// Worst case 2 000 × 2.5e-6 + 1 000 × 1e-5 = $0.015; actual 2 000 in, 500 out = $0.01.
#[llm_call(model = "gpt-4o", max_output_tokens = 1_000, estimate_input = prompt.len() * 100)]
fn step(prompt: &str, ran: &Mutex<u32>) -> Result<Usage, AgentError> {
    if let Ok(mut ran) = ran.lock() {
        *ran += 1;
    }
    Ok(Usage::new(2_000, 500))
}

type Alerts = Arc<Mutex<Vec<BudgetAlert>>>;

/// A book of `config` on a clock that stays at 2025-11-25 12:00 UTC.
fn book_on_a_fixed_clock(config: BudgetConfig) -> BudgetBook {
    BudgetBook::with_clock(config, Arc::new(ManualClock::new(1_764_072_000)))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `step` in the session `id` until it is refused, at most 100 times: how many times it ran,
/// and whether it was refused.
fn run_until_refused(dispatch: &tracing::Dispatch, id: &str) -> (u32, bool) {
    let ran = Mutex::new(0);
    let mut refused = false;
    tracing::dispatcher::with_default(dispatch, || {
        let session = tracing::info_span!("agent_loop", session.id = id);
        let _s = session.enter();
        for _ in 0..100 {
            if step("summarise the thread", &ran).is_err() {
                refused = true;
                break;
            }
        }
    });
    (ran.lock().map(|r| *r).unwrap_or_default(), refused)
}

fn setup(config: BudgetConfig) -> (tracing::Dispatch, Ledger, BudgetBook, Alerts) {
    let book = book_on_a_fixed_clock(config);
    let alerts: Alerts = Arc::default();
    let sink = Arc::clone(&alerts);
    let (layer, ledger) = CostLayer::builder()
        .budgets(book.clone())
        .on_budget_alert(move |alert| {
            if let Ok(mut alerts) = sink.lock() {
                alerts.push(alert.clone());
            }
        })
        .build();
    (
        tracing::Dispatch::new(tracing_subscriber::registry().with(layer)),
        ledger,
        book,
        alerts,
    )
}

fn session_budget(limit: &str) -> BudgetConfig {
    BudgetConfig {
        budgets: vec![Budget::deny(
            "per_session_max",
            BudgetScope::Session,
            Window::Lifetime,
            usd(limit),
        )],
        ..BudgetConfig::default()
    }
}

#[test]
fn a_runaway_loop_is_stopped_by_its_session_budget_before_the_call_runs() {
    let (dispatch, ledger, _book, alerts) = setup(session_budget("0.1"));
    let ran = Mutex::new(0);
    let mut refused = None;
    tracing::dispatcher::with_default(&dispatch, || {
        let session = tracing::info_span!("agent_loop", session.id = "runaway");
        let _s = session.enter();
        for _ in 0..100 {
            // 20 characters × 100 = an estimated 2 000 input tokens.
            match step("summarise the thread", &ran) {
                Ok(_) => {}
                Err(AgentError::OverBudget(e)) => {
                    refused = Some(e);
                    break;
                }
            }
        }
    });
    // Admitted while spent + 0.015 ≤ 0.1: nine calls (spent 0.09); the tenth never ran.
    assert_eq!(ran.lock().map(|r| *r).unwrap_or_default(), 9);
    let refused = refused.unwrap_or_else(|| panic!("never refused"));
    assert_eq!(
        (refused.spent, refused.requested, refused.limit),
        (usd("0.09"), usd("0.015"), usd("0.1"))
    );
    assert_eq!(
        ledger.session("runaway").map(|t| t.total_usd()),
        Some(usd("0.09"))
    );
    // Alerts at 50 % and 80 %, once each.
    let alerts = alerts.lock().map(|a| a.clone()).unwrap_or_default();
    let crossed: Vec<u32> = alerts
        .iter()
        .filter_map(|a| match a {
            BudgetAlert::Threshold { threshold, .. } => Some(*threshold),
            _ => None,
        })
        .collect();
    assert_eq!(crossed, [500_000, 800_000]);
}

#[test]
fn the_lifetime_accounts_of_calls_agent_runs_and_sessions_go_when_each_closes() {
    let lifetime = |name: &str, scope| Budget::deny(name, scope, Window::Lifetime, usd("1"));
    let (dispatch, _ledger, book, _alerts) = setup(BudgetConfig {
        budgets: vec![
            lifetime("per_call", BudgetScope::Call),
            lifetime("per_run", BudgetScope::Agent),
            lifetime("per_session", BudgetScope::Session),
        ],
        ..BudgetConfig::default()
    });
    let ran = Mutex::new(0);
    let mut held = Vec::new();
    tracing::dispatcher::with_default(&dispatch, || {
        let session = tracing::info_span!("chat", session.id = "s");
        let _s = session.enter();
        for agent in ["planner", "writer"] {
            let run = tracing::info_span!("run", gen_ai.agent.name = agent);
            let _r = run.enter();
            for _ in 0..2 {
                assert!(step("summarise the thread", &ran).is_ok());
                // The call's account went at its close; the run's and the session's stay.
                held.push(book.accounts());
            }
        }
        // Both runs' accounts went with them.
        held.push(book.accounts());
    });
    held.push(book.accounts());
    assert_eq!(held, [2, 2, 2, 2, 1, 0]);
}

#[test]
fn an_agent_run_budget_holds_the_calls_of_one_run_and_the_next_run_starts_afresh() {
    let (dispatch, _ledger, _book, _alerts) = setup(BudgetConfig {
        budgets: vec![Budget::deny(
            "per_run",
            BudgetScope::Agent,
            Window::Lifetime,
            usd("0.04"),
        )],
        ..BudgetConfig::default()
    });
    let mut ran_per_run = Vec::new();
    let mut refusals = Vec::new();
    tracing::dispatcher::with_default(&dispatch, || {
        let session = tracing::info_span!("chat", session.id = "s");
        let _s = session.enter();
        // Two runs of the same agent: each run has an account of its own.
        for _ in 0..2 {
            let run = tracing::info_span!("run", gen_ai.agent.name = "planner");
            let _r = run.enter();
            let ran = Mutex::new(0);
            for _ in 0..10 {
                // A tool span between the run and its calls changes nothing.
                let tool = tracing::info_span!("tool");
                let _t = tool.enter();
                if let Err(AgentError::OverBudget(e)) = step("summarise the thread", &ran) {
                    refusals.push((e.spent, e.requested, e.limit));
                    break;
                }
            }
            ran_per_run.push(ran.lock().map(|r| *r).unwrap_or_default());
        }
    });
    // Admitted while spent + 0.015 ≤ 0.04: three calls of $0.01 each run; the fourth refused.
    assert_eq!(ran_per_run, [3, 3]);
    let refusal = (usd("0.03"), usd("0.015"), usd("0.04"));
    assert_eq!(refusals, [refusal, refusal]);
}

/// Reserves for one call of `model` in a session of its own (budget `per_session_max`):
/// the session's account (spent, reserved) while the call is open.
fn reserved_in_one_call(
    dispatch: &tracing::Dispatch,
    book: &BudgetBook,
    model: &str,
    input: u64,
    max_output: u64,
) -> Option<(Money, Money)> {
    tracing::dispatcher::with_default(dispatch, || {
        let session = tracing::info_span!("s", session.id = "one_call");
        let _s = session.enter();
        let call = tracing::info_span!(
            "call",
            gen_ai.request.model = model,
            gen_ai.usage.input_tokens = tracing::field::Empty,
        );
        call.in_scope(|| {
            assert!(cost_layer::budget::reserve(model, input, max_output).is_ok());
            book.account("per_session_max", "one_call")
        })
    })
}

/// What one call of `model` reserves against a session budget of $1 under the prices of
/// `price_file` (native format).
fn reserved_under(
    price_file: &str,
    model: &str,
    input: u64,
    max_output: u64,
) -> Option<(Money, Money)> {
    let table = PriceTable::from_text(price_file, "inline.toml").unwrap_or_else(|e| panic!("{e}"));
    let book = book_on_a_fixed_clock(session_budget("1"));
    let (layer, _ledger) = CostLayer::builder()
        .prices(table)
        .budgets(book.clone())
        .build();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    reserved_in_one_call(&dispatch, &book, model, input, max_output)
}

#[test]
fn the_worst_case_of_a_model_that_prices_audio_apart_is_its_audio_price() {
    // gemini-2.5-flash: text input 0.30, audio input 1.00, output 2.50 per million. Whether the
    // 100 000 prompt tokens are audio is known only from the answer: reserved as audio,
    // 100 000 × 1e-6 + 1 000 × 2.5e-6 = $0.1025 (as text it would be $0.0325).
    let (dispatch, _ledger, book, _alerts) = setup(session_budget("1"));
    assert_eq!(
        reserved_in_one_call(&dispatch, &book, "gemini-2.5-flash", 100_000, 1_000),
        Some((usd("0"), usd("0.1025")))
    );
}

#[test]
fn the_worst_case_of_a_model_that_prices_reasoning_above_output_is_its_reasoning_price() {
    // Output at $0.60 and reasoning at $3.50 per million (LiteLLM's Gemini 2.5 Flash preview):
    // the 1 000 output tokens may all be reasoning, so 1 000 × 0.15e-6 + 1 000 × 3.5e-6.
    let thinker = r#"
version = "reasoning-test"

[models."thinker"]
input = "0.15"
output = "0.60"
reasoning = "3.50"
"#;
    assert_eq!(
        reserved_under(thinker, "thinker", 1_000, 1_000),
        Some((usd("0"), usd("0.00365")))
    );
}

#[test]
fn a_reservation_is_made_at_the_prices_in_force_now() {
    // Prices changed in 2000 and change again in 2999: the worst case of a call now is at the
    // change of 2000, 1 000 × $2 + 1 000 × $4 per million.
    let changing = r#"
version = "changing"

[models."changing"]
input = "1"
output = "2"

[[models."changing".changes]]
on = "2000-01-01"
input = "2"
output = "4"

[[models."changing".changes]]
on = "2999-01-01"
input = "3"
output = "6"
"#;
    assert_eq!(
        reserved_under(changing, "changing", 1_000, 1_000),
        Some((usd("0"), usd("0.006")))
    );
}

#[test]
fn the_guard_api_without_the_macro_and_release_on_panic() {
    let (dispatch, _ledger, book, _alerts) = setup(session_budget("1"));
    tracing::dispatcher::with_default(&dispatch, || {
        let session = tracing::info_span!("s", session.id = "guarded");
        let _s = session.enter();
        // A hand-written call span: reserve inside it before calling the model.
        let call = tracing::info_span!(
            "call",
            gen_ai.request.model = "gpt-4o",
            gen_ai.usage.input_tokens = tracing::field::Empty,
            gen_ai.usage.output_tokens = tracing::field::Empty,
        );
        call.in_scope(|| {
            assert!(cost_layer::budget::reserve("gpt-4o", 100_000, 10_000).is_ok()); // $0.35
            assert_eq!(
                book.account("per_session_max", "guarded"),
                Some((usd("0"), usd("0.35")))
            );
        });
        call.record("gen_ai.usage.input_tokens", 100_000);
        call.record("gen_ai.usage.output_tokens", 1_000);
        drop(call);
        // Settled at the actual $0.26.
        assert_eq!(
            book.account("per_session_max", "guarded"),
            Some((usd("0.26"), usd("0")))
        );
        // A call that panics: its reservation is released when its span closes.
        let outcome = std::panic::catch_unwind(|| {
            let call = tracing::info_span!(
                "call",
                gen_ai.request.model = "gpt-4o",
                gen_ai.usage.input_tokens = tracing::field::Empty
            );
            let _c = call.enter();
            let _ = cost_layer::budget::reserve("gpt-4o", 100_000, 10_000);
            panic!("the client crashed");
        });
        assert!(outcome.is_err());
        assert_eq!(
            book.account("per_session_max", "guarded"),
            Some((usd("0.26"), usd("0")))
        );
        // From a span inside the call (its HTTP client's, say): reserved for the call, settled
        // when the call closes ($0.35 reserved, $0.26 spent).
        let call = tracing::info_span!(
            "call",
            gen_ai.request.model = "gpt-4o",
            gen_ai.usage.input_tokens = 100_000,
            gen_ai.usage.output_tokens = 1_000
        );
        call.in_scope(|| {
            tracing::info_span!("http_request").in_scope(|| {
                assert!(cost_layer::budget::reserve("gpt-4o", 100_000, 10_000).is_ok());
            });
            assert_eq!(
                book.account("per_session_max", "guarded"),
                Some((usd("0.26"), usd("0.35")))
            );
        });
        drop(call);
        assert_eq!(
            book.account("per_session_max", "guarded"),
            Some((usd("0.52"), usd("0")))
        );
        // Too big for what is left: refused.
        let call = tracing::info_span!(
            "call",
            gen_ai.request.model = "gpt-4o",
            gen_ai.usage.input_tokens = tracing::field::Empty
        );
        let refused = call.in_scope(|| cost_layer::budget::reserve("gpt-4o", 300_000, 0));
        assert!(refused.is_err());
    });
}

#[llm_call(model = "gpt-4o", max_output_tokens = 10)]
fn under_estimated() -> Result<Usage, AgentError> {
    // Asked for at most 10 output tokens, the model answered with 100 000.
    Ok(Usage::new(0, 100_000))
}

#[test]
fn cost_above_the_reservation_is_charged_and_alerted_never_lost() {
    let (dispatch, ledger, book, alerts) = setup(session_budget("0.5"));
    tracing::dispatcher::with_default(&dispatch, || {
        let session = tracing::info_span!("s", session.id = "over");
        let _s = session.enter();
        assert!(under_estimated().is_ok());
        assert_eq!(
            book.account("per_session_max", "over"),
            Some((usd("1"), usd("0")))
        );
    });
    assert_eq!(
        ledger.session("over").map(|t| t.total_usd()),
        Some(usd("1"))
    );
    assert_eq!(alerts.lock().map(|a| a.len()).unwrap_or_default(), 3);
}

#[test]
fn alerts_are_warn_events_with_key_spend_limit_and_threshold() {
    let book = book_on_a_fixed_clock(session_budget("0.02"));
    let (layer, _ledger) = CostLayer::builder().budgets(book).build();
    let (dispatch, warnings) = Warnings::beside(layer, &["cost_layer::budget"]);
    tracing::dispatcher::with_default(&dispatch, || {
        let session = tracing::info_span!("s", session.id = "warned");
        let _s = session.enter();
        let ran = Mutex::new(0);
        let _ = step("summarise the thread", &ran); // $0.01 of $0.02: 50 %
    });
    let seen = warnings.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    for fragment in [
        "key=\"warned\"",
        "spent_usd=0.01",
        "limit_usd=0.02",
        "threshold=0.5",
        "budget=\"per_session_max\"",
    ] {
        assert!(seen[0].contains(fragment), "{fragment} not in {}", seen[0]);
    }
}

#[test]
fn a_panicking_alert_handler_is_contained_and_counted() {
    let book = book_on_a_fixed_clock(session_budget("0.02"));
    let (layer, ledger) = CostLayer::builder()
        .budgets(book)
        .on_budget_alert(|_| panic!("an alert handler that panics"))
        .build();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let session = tracing::info_span!("s", session.id = "handled");
        let _s = session.enter();
        let ran = Mutex::new(0);
        let _ = step("summarise the thread", &ran); // $0.01 of $0.02: 50 % crossed
    });
    assert_eq!(ledger.diagnostics().callback_panics, 1);
    assert_eq!(
        ledger.session("handled").map(|t| t.total_usd()),
        Some(usd("0.01"))
    );
}

#[test]
fn the_budgeted_layer_reserves_when_another_cost_layer_without_budgets_is_outside_it() {
    let book = book_on_a_fixed_clock(session_budget("0.1"));
    let (budgeted, ledger) = CostLayer::builder().budgets(book).build();
    let (outer, outer_ledger) = CostLayer::builder().build();
    // The layer without budgets is outermost: a reservation must still reach the inner one.
    let dispatch =
        tracing::Dispatch::new(tracing_subscriber::registry().with(budgeted).with(outer));
    // Admitted while spent + 0.015 ≤ 0.1: nine calls.
    assert_eq!(run_until_refused(&dispatch, "two-layers"), (9, true));
    for ledger in [&ledger, &outer_ledger] {
        assert_eq!(
            ledger.session("two-layers").map(|t| t.total_usd()),
            Some(usd("0.09"))
        );
    }
}

#[test]
fn a_reservation_outside_a_call_span_admits_and_books_nothing() {
    let (dispatch, _ledger, book, _alerts) = setup(session_budget("0.1"));
    tracing::dispatcher::with_default(&dispatch, || {
        let session = tracing::info_span!("s", session.id = "outside");
        let _s = session.enter();
        let agent = tracing::info_span!("agent", gen_ai.agent.name = "planner");
        let _a = agent.enter();
        // A worst case of $3.50 against $0.10, asked from an agent span: no call to bind it to.
        assert!(cost_layer::budget::reserve("gpt-4o", 1_000_000, 100_000).is_ok());
        assert_eq!(
            book.account("per_session_max", "outside")
                .map_or(Money::ZERO, |(_, reserved)| reserved),
            Money::ZERO
        );
    });
}

#[test]
fn calls_a_global_filter_hides_are_counted_and_warned_about_once() {
    // The whole subscriber filtered at `warn`: the calls' `info` spans never reach the layer,
    // so it can neither charge them nor hold them to a budget. It counts them and says why.
    let book = book_on_a_fixed_clock(session_budget("0.1"));
    let (layer, ledger) = CostLayer::builder().budgets(book).build();
    let warnings = Warnings::of(&["cost_layer"]);
    let dispatch = tracing::Dispatch::new(
        tracing_subscriber::registry()
            .with(tracing_subscriber::EnvFilter::new("warn"))
            .with(layer)
            .with(warnings.clone()),
    );
    let ran = Mutex::new(0);
    tracing::dispatcher::with_default(&dispatch, || {
        let session = tracing::info_span!("agent_loop", session.id = "hidden");
        let _s = session.enter();
        for _ in 0..20 {
            assert!(step("summarise the thread", &ran).is_ok());
        }
    });
    assert_eq!(ran.lock().map(|r| *r).unwrap_or_default(), 20);
    assert_eq!(ledger.session("hidden"), None);
    assert_eq!(ledger.diagnostics().calls_hidden_by_filter, 20);
    assert_eq!(
        warnings.containing("calls_hidden_by_filter"),
        1,
        "{:?}",
        warnings.seen()
    );

    // The same filter on the printing layer only: every call is seen, the budget holds.
    let book = book_on_a_fixed_clock(session_budget("0.1"));
    let (layer, ledger) = CostLayer::builder().budgets(book).build();
    let dispatch = tracing::Dispatch::new(
        tracing_subscriber::registry().with(layer).with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::sink)
                .with_filter(tracing_subscriber::EnvFilter::new("warn")),
        ),
    );
    assert_eq!(run_until_refused(&dispatch, "seen"), (9, true));
    assert_eq!(
        ledger.session("seen").map(|t| t.total_usd()),
        Some(usd("0.09"))
    );
    assert_eq!(ledger.diagnostics().calls_hidden_by_filter, 0);
}

#[test]
fn calls_hidden_from_a_layer_inside_a_reload_layer_are_counted_too() {
    // `reload::Layer` hides the layer it wraps from downcasts: the hidden call still reaches
    // its ledger, and only its own (another dispatcher's layer counts nothing).
    let (layer, ledger) = CostLayer::builder().build();
    let (reloadable, _handle) = tracing_subscriber::reload::Layer::new(layer);
    let dispatch = tracing::Dispatch::new(
        tracing_subscriber::registry()
            .with(tracing_subscriber::EnvFilter::new("warn"))
            .with(reloadable),
    );
    let (other_layer, other_ledger) = CostLayer::builder().build();
    let (other_reloadable, _other_handle) = tracing_subscriber::reload::Layer::new(other_layer);
    let _other = tracing::Dispatch::new(
        tracing_subscriber::registry()
            .with(tracing_subscriber::EnvFilter::new("warn"))
            .with(other_reloadable),
    );
    let ran = Mutex::new(0);
    tracing::dispatcher::with_default(&dispatch, || {
        for _ in 0..3 {
            assert!(step("summarise the thread", &ran).is_ok());
        }
    });
    assert_eq!(ledger.diagnostics().calls_hidden_by_filter, 3);
    assert_eq!(other_ledger.diagnostics().calls_hidden_by_filter, 0);
}

/// Worst case at the priority tier: 2 000 × 4.25e-6 + 1 000 × 1.7e-5 = $0.0255 (at standard:
/// $0.015). Actual, at priority: 2 000 × 4.25e-6 + 500 × 1.7e-5 = $0.017.
#[llm_call(
    model = "gpt-4o",
    service_tier = "priority",
    max_output_tokens = 1_000,
    estimate_input = 2_000
)]
fn priority_step() -> Result<Usage, AgentError> {
    Ok(Usage::new(2_000, 500))
}

#[llm_call(model = "gpt-4o", max_output_tokens = 1_000, estimate_input = 2_000)]
fn standard_step() -> Result<Usage, AgentError> {
    Ok(Usage::new(2_000, 500))
}

#[test]
fn a_call_at_the_priority_tier_reserves_and_is_charged_at_its_prices() {
    let (dispatch, ledger, _book, _alerts) = setup(session_budget("0.02"));
    tracing::dispatcher::with_default(&dispatch, || {
        let session = tracing::info_span!("s", session.id = "tiers");
        let _s = session.enter();
        // $0.0255 does not fit in $0.02; the same call at standard ($0.015) does.
        assert!(
            matches!(priority_step(), Err(AgentError::OverBudget(e)) if e.requested == usd("0.0255"))
        );
        assert!(standard_step().is_ok());
    });
    assert_eq!(
        ledger.session("tiers").map(|t| t.total_usd()),
        Some(usd("0.01"))
    );

    let (dispatch, ledger, _book, _alerts) = setup(session_budget("0.03"));
    tracing::dispatcher::with_default(&dispatch, || {
        let session = tracing::info_span!("s", session.id = "tiers");
        let _s = session.enter();
        assert!(priority_step().is_ok());
    });
    assert_eq!(
        ledger.session("tiers").map(|t| t.total_usd()),
        Some(usd("0.017"))
    );
}

#[test]
fn a_budgeted_layer_inside_a_reload_layer_still_refuses() {
    // `reload::Layer` hides the layer it wraps from downcasts: reservations find it anyway.
    let book = book_on_a_fixed_clock(session_budget("0.1"));
    let (layer, ledger) = CostLayer::builder().budgets(book).build();
    let (reloadable, _handle) = tracing_subscriber::reload::Layer::new(layer);
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(reloadable));
    // Admitted while spent + 0.015 ≤ 0.1: nine calls.
    assert_eq!(run_until_refused(&dispatch, "reloaded"), (9, true));
    assert_eq!(
        ledger.session("reloaded").map(|t| t.total_usd()),
        Some(usd("0.09"))
    );
}

/// Claude with the web search tool (`max_uses: 5`): worst case 1 000 × 3e-6 + 1 000 × 15e-6 +
/// 5 × $0.01 = $0.068; it runs three searches, $0.048.
#[llm_call(
    model = "claude-sonnet-4-5",
    max_output_tokens = 1_000,
    estimate_input = 1_000,
    max_web_searches = 5
)]
fn research(ran: &Mutex<u32>) -> Result<Usage, AgentError> {
    if let Ok(mut ran) = ran.lock() {
        *ran += 1;
    }
    Ok(Usage {
        web_search_requests: 3,
        ..Usage::new(1_000, 1_000)
    })
}

#[test]
fn the_searches_a_call_may_run_are_reserved_with_its_tokens() {
    // $0.15: two calls fit ($0.068 reserved, $0.048 spent each), a third's worst case does not
    // ($0.096 + $0.068 > $0.15); reserving the tokens alone ($0.018) would have let it run.
    let (dispatch, ledger, _book, _alerts) = setup(session_budget("0.15"));
    let ran = Mutex::new(0);
    let refused = tracing::dispatcher::with_default(&dispatch, || {
        let session = tracing::info_span!("agent_loop", session.id = "searching");
        let _s = session.enter();
        (0..5).find_map(|_| research(&ran).err())
    });
    assert_eq!(ran.lock().map(|r| *r).unwrap_or_default(), 2);
    let Some(AgentError::OverBudget(refused)) = refused else {
        panic!("not refused");
    };
    assert_eq!(
        (refused.spent, refused.requested),
        (usd("0.096"), usd("0.068"))
    );
    assert_eq!(
        ledger.session("searching").map(|t| t.total_usd()),
        Some(usd("0.096"))
    );
}

/// Worst case on a regional endpoint of Claude Sonnet 4.5: 2 000 × 3.3e-6 + 1 000 × 16.5e-6 =
/// $0.0231 (at the global endpoint: $0.021). Actual: 2 000 × 3.3e-6 + 500 × 16.5e-6 = $0.01485.
#[llm_call(
    model = "claude-sonnet-4-5",
    data_residency = true,
    max_output_tokens = 1_000,
    estimate_input = 2_000
)]
fn regional_step() -> Result<Usage, AgentError> {
    Ok(Usage::new(2_000, 500))
}

/// The same call on a model whose price at such an endpoint the embedded table does not give.
#[llm_call(
    model = "gpt-4o",
    data_residency = true,
    max_output_tokens = 1_000,
    estimate_input = 2_000
)]
fn regional_step_without_a_factor() -> Result<Usage, AgentError> {
    Ok(Usage::new(2_000, 500))
}

#[test]
fn a_data_residency_call_reserves_and_is_charged_at_its_factor() {
    let (dispatch, ledger, _book, _alerts) = setup(session_budget("0.022"));
    tracing::dispatcher::with_default(&dispatch, || {
        let session = tracing::info_span!("s", session.id = "regional");
        let _s = session.enter();
        // $0.0231 does not fit in $0.022, though the list price ($0.021) would.
        assert!(
            matches!(regional_step(), Err(AgentError::OverBudget(e)) if e.requested == usd("0.0231"))
        );
    });
    let (dispatch, ledger_wide, _book, _alerts) = setup(session_budget("0.03"));
    tracing::dispatcher::with_default(&dispatch, || {
        let session = tracing::info_span!("s", session.id = "regional");
        let _s = session.enter();
        assert!(regional_step().is_ok());
        // Without a factor the call cannot be bounded: reserved at zero, charged as unpriced.
        assert!(regional_step_without_a_factor().is_ok());
    });
    assert_eq!(ledger.session("regional").map(|t| t.llm_calls), Some(0));
    let totals = ledger_wide.session("regional").unwrap_or_default();
    assert_eq!(
        (totals.total_usd(), totals.llm_calls, totals.unpriced_calls),
        (usd("0.01485"), 2, 1)
    );
}

/// A Sonar call (embedded table: $1 per million in and out; request fee $5, $8, $12 per 1 000
/// at low, medium, high). Worst case at low: 2 000 + 1 000 tokens ($0.003) and one search
/// ($0.005): $0.008; at the dearest size, $0.015. Actual: 2 000 + 500 tokens and the fee at low,
/// $0.0075.
#[llm_call(
    model = "sonar",
    search_context_size = "low",
    max_output_tokens = 1_000,
    estimate_input = 2_000,
    max_web_searches = 1
)]
fn sonar_low_step() -> Result<Usage, AgentError> {
    Ok(sonar_answer())
}

/// A Sonar answer's usage: 2 000 tokens in, 500 out, the request's one search.
fn sonar_answer() -> Usage {
    Usage {
        web_search_requests: 1,
        ..Usage::new(2_000, 500)
    }
}

/// The same call stating no size: it may learn it from the answer, so it is bounded at the
/// dearest.
#[llm_call(
    model = "sonar",
    max_output_tokens = 1_000,
    estimate_input = 2_000,
    max_web_searches = 1
)]
fn sonar_unstated_step() -> Result<Usage, AgentError> {
    Ok(sonar_answer())
}

#[test]
fn a_search_reserves_at_the_context_size_the_call_declares_or_the_dearest() {
    let (dispatch, ledger, _book, _alerts) = setup(session_budget("0.01"));
    tracing::dispatcher::with_default(&dispatch, || {
        let session = tracing::info_span!("s", session.id = "searching-sizes");
        let _s = session.enter();
        // $0.008 fits in $0.01; the same call stating no size ($0.015) does not.
        assert!(sonar_low_step().is_ok());
        assert!(matches!(
            sonar_unstated_step(),
            Err(AgentError::OverBudget(e)) if e.requested == usd("0.015")
        ));
    });
    let totals = ledger.session("searching-sizes").unwrap_or_default();
    assert_eq!((totals.total_usd(), totals.llm_calls), (usd("0.0075"), 1));
}

/// A call of a model the table has no price for: its worst case cannot be bounded.
#[llm_call(
    model = "acme-house-style-v2",
    max_output_tokens = 1_000,
    estimate_input = 2_000
)]
fn house_style_step(ran: &Mutex<u32>) -> Result<Usage, AgentError> {
    if let Ok(mut ran) = ran.lock() {
        *ran += 1;
    }
    Ok(Usage::new(2_000, 500))
}

#[test]
fn a_call_no_price_bounds_is_refused_where_unpriced_calls_are_denied() {
    let ran = Mutex::new(0);
    let denying = BudgetConfig {
        unpriced_calls: UnpricedCalls::Deny,
        ..session_budget("1")
    };
    let (dispatch, ledger, _book, _alerts) = setup(denying);
    let outcome = tracing::dispatcher::with_default(&dispatch, || {
        let session = tracing::info_span!("s", session.id = "strict");
        let _s = session.enter();
        house_style_step(&ran)
    });
    // Refused before the body ran, naming the budget and the model.
    match outcome {
        Err(AgentError::OverBudget(e)) => assert_eq!(
            (e.budget.as_ref(), e.unpriced()),
            ("per_session_max", Some("acme-house-style-v2"))
        ),
        Ok(_) => panic!("admitted"),
    }
    assert_eq!(ran.lock().map(|r| *r).ok(), Some(0));
    assert_eq!(ledger.session("strict").map(|t| t.llm_calls), Some(0));
    // By default it is admitted, and its cost, unknown, is counted as unpriced.
    let (dispatch, ledger, book, _alerts) = setup(session_budget("1"));
    tracing::dispatcher::with_default(&dispatch, || {
        let session = tracing::info_span!("s", session.id = "lenient");
        let _s = session.enter();
        assert!(house_style_step(&ran).is_ok());
    });
    assert_eq!(ran.lock().map(|r| *r).ok(), Some(1));
    let totals = ledger.session("lenient").unwrap_or_default();
    assert_eq!((totals.llm_calls, totals.unpriced_calls), (1, 1));
    assert_eq!(book.account("per_session_max", "lenient"), None);
}

/// A call of a model the table has no price for, through a gateway that reports $0.006.
#[llm_call(
    model = "acme-house-style-v2",
    max_output_tokens = 1_000,
    estimate_input = 2_000
)]
fn house_style_via_gateway() -> Result<GatewayReply, AgentError> {
    Ok(GatewayReply {
        input: 2_000,
        output: 500,
        cost: Some("0.006".to_owned()),
    })
}

#[test]
fn a_call_charged_its_reported_cost_spends_its_budget_at_close() {
    let book = book_on_a_fixed_clock(session_budget("0.01"));
    let (layer, ledger) = CostLayer::builder()
        .budgets(book.clone())
        .charge_reported_cost_when_unpriced(true)
        .build();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let (outcomes, account) = tracing::dispatcher::with_default(&dispatch, || {
        let session = tracing::info_span!("s", session.id = "gateway");
        let _s = session.enter();
        let outcomes: Vec<bool> = (0..3).map(|_| house_style_via_gateway().is_ok()).collect();
        (outcomes, book.account("per_session_max", "gateway"))
    });
    // No price bounds the call before it runs (reserved at zero), but what it cost is spent
    // when it closes: the second call crosses the limit and the third is refused.
    assert_eq!(outcomes, [true, true, false]);
    assert_eq!(account, Some((usd("0.012"), Money::ZERO)));
    let totals = ledger.session("gateway").unwrap_or_default();
    assert_eq!(
        (
            totals.llm_calls,
            totals.provider_reported_calls,
            totals.unpriced_calls,
            totals.total_usd()
        ),
        (2, 2, 0, usd("0.012"))
    );
}

/// A streamed call waiting for a first chunk that never comes: a timeout drops its future.
/// Worst case 2 000 × $2.50 + 1 000 × $10 per million = $0.015.
#[llm_call(model = "gpt-4o", max_output_tokens = 1_000, estimate_input = 2_000)]
async fn stalled_stream() -> Result<Usage, AgentError> {
    std::future::pending::<()>().await;
    Ok(Usage::new(2_000, 500))
}

/// The same call, answered without usage (a provider error it maps to no usage).
#[llm_call(model = "gpt-4o", max_output_tokens = 1_000, estimate_input = 2_000)]
async fn answered_without_usage() -> Result<Option<Usage>, AgentError> {
    Ok(None)
}

/// Polls `future` once and drops it: a timeout firing mid-call.
fn poll_once_then_drop<F: Future>(future: F) {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    assert!(future.as_mut().poll(&mut cx).is_pending());
}

#[test]
fn a_call_cancelled_in_flight_keeps_its_reservation_as_spent_unless_released() {
    for (policy, spent) in [
        (CancelledCalls::Hold, "0.015"),
        (CancelledCalls::Release, "0"),
    ] {
        let config = BudgetConfig {
            cancelled_calls: policy,
            ..session_budget("1")
        };
        let (dispatch, ledger, book, _alerts) = setup(config);
        tracing::dispatcher::with_default(&dispatch, || {
            let session = tracing::info_span!("s", session.id = "timeouts");
            let _s = session.enter();
            poll_once_then_drop(stalled_stream());
            assert_eq!(
                book.account("per_session_max", "timeouts"),
                Some((usd(spent), usd("0"))),
                "{policy:?}"
            );
            // A call that returned, without usage, is released whatever the policy.
            assert!(matches!(block_on(answered_without_usage()), Ok(None)));
            assert_eq!(
                book.account("per_session_max", "timeouts"),
                Some((usd(spent), usd("0"))),
                "{policy:?}"
            );
        });
        // Neither reported usage: both are counted, their cost unknown to the ledger.
        assert_eq!(ledger.diagnostics().calls_without_usage, 2, "{policy:?}");
        assert_eq!(
            ledger.session("timeouts").map(|t| t.total_usd()),
            Some(usd("0"))
        );
    }
}

/// How a call failed.
#[derive(Debug, PartialEq)]
enum CallError {
    OverBudget,
    /// The provider refused it before doing any work.
    Refused,
    /// The client gave up waiting: the provider may have billed the answer it never sent.
    TimedOut,
}

impl From<BudgetExceeded> for CallError {
    fn from(_: BudgetExceeded) -> Self {
        CallError::OverBudget
    }
}

/// A call failing with `error`, its body saying which errors may have been billed.
#[llm_call(model = "gpt-4o", max_output_tokens = 1_000, estimate_input = 2_000)]
fn failed_by_hand(error: CallError) -> Result<Usage, CallError> {
    if error == CallError::TimedOut {
        cost_layer::budget::treat_as_cancelled();
    }
    Err(error)
}

/// The same, the macro told which errors may have been billed.
#[llm_call(
    model = "gpt-4o",
    max_output_tokens = 1_000,
    estimate_input = 2_000,
    billed_on_err = |e| *e == CallError::TimedOut
)]
fn failed_as_declared(error: CallError) -> Result<Usage, CallError> {
    Err(error)
}

/// The same as an async fn.
#[llm_call(
    model = "gpt-4o",
    max_output_tokens = 1_000,
    estimate_input = 2_000,
    billed_on_err = |e| *e == CallError::TimedOut
)]
async fn failed_as_declared_async(error: CallError) -> Result<Usage, CallError> {
    Err(error)
}

#[test]
fn a_call_that_fails_after_the_provider_may_have_billed_it_is_settled_as_cancelled() {
    let calls: [fn(CallError) -> Result<Usage, CallError>; 3] =
        [failed_by_hand, failed_as_declared, |error| {
            block_on(failed_as_declared_async(error))
        }];
    for (policy, spent) in [
        (CancelledCalls::Hold, "0.015"),
        (CancelledCalls::Release, "0"),
    ] {
        for call in calls {
            let config = BudgetConfig {
                cancelled_calls: policy,
                ..session_budget("1")
            };
            let (dispatch, ledger, book, _alerts) = setup(config);
            tracing::dispatcher::with_default(&dispatch, || {
                let session = tracing::info_span!("s", session.id = "retries");
                let _s = session.enter();
                // Refused by the provider: released whatever the policy.
                assert_eq!(call(CallError::Refused).err(), Some(CallError::Refused));
                assert_eq!(
                    book.account("per_session_max", "retries"),
                    Some((usd("0"), usd("0"))),
                    "{policy:?}"
                );
                // Timed out: kept as spent, an upper bound, unless released.
                assert_eq!(call(CallError::TimedOut).err(), Some(CallError::TimedOut));
                assert_eq!(
                    book.account("per_session_max", "retries"),
                    Some((usd(spent), usd("0"))),
                    "{policy:?}"
                );
            });
            assert_eq!(ledger.diagnostics().calls_without_usage, 2, "{policy:?}");
        }
    }
    // Outside a call it does nothing (and does not panic).
    let (dispatch, _ledger, _book, _alerts) = setup(session_budget("1"));
    tracing::dispatcher::with_default(&dispatch, cost_layer::budget::treat_as_cancelled);
    cost_layer::budget::treat_as_cancelled();
}

/// A call made without the macro: reserved, its answer awaited with a `CallInFlight` held, its
/// input tokens recorded once it returned.
async fn hand_written_call(answer: impl Future<Output = u64>) {
    let call = tracing::info_span!(
        "chat",
        gen_ai.request.model = "gpt-4o",
        gen_ai.usage.input_tokens = tracing::field::Empty
    );
    let reserved = call.in_scope(|| cost_layer::budget::reserve("gpt-4o", 2_000, 1_000));
    assert!(reserved.is_ok());
    let in_flight = cost_layer::budget::CallInFlight::new(&call);
    let input_tokens = answer.await;
    in_flight.finish();
    call.record("gen_ai.usage.input_tokens", input_tokens);
}

#[test]
fn a_hand_written_call_marks_its_cancellation_with_a_call_in_flight() {
    let (dispatch, _ledger, book, _alerts) = setup(session_budget("1"));
    tracing::dispatcher::with_default(&dispatch, || {
        let session = tracing::info_span!("s", session.id = "by-hand");
        let _s = session.enter();
        // Dropped while awaiting its answer: kept as spent ($0.015).
        poll_once_then_drop(hand_written_call(std::future::pending()));
        assert_eq!(
            book.account("per_session_max", "by-hand"),
            Some((usd("0.015"), usd("0")))
        );
        // Answered: settled at its cost, 1 000 × $2.50 per million.
        block_on(hand_written_call(std::future::ready(1_000)));
        assert_eq!(
            book.account("per_session_max", "by-hand"),
            Some((usd("0.0175"), usd("0")))
        );
    });
}

/// $0.01 a call (2 000 in, 500 out), with no bound to reserve: no budget checks it first.
#[llm_call(model = "gpt-4o")]
fn unbounded_step() -> Usage {
    Usage::new(2_000, 500)
}

#[test]
fn calls_that_reserve_nothing_under_a_deny_budget_are_counted_and_warned_about_once() {
    let book = book_on_a_fixed_clock(session_budget("0.02"));
    let (layer, ledger) = CostLayer::builder().budgets(book).build();
    let (dispatch, warnings) = Warnings::beside(layer, &["cost_layer::budget"]);
    tracing::dispatcher::with_default(&dispatch, || {
        let session = tracing::info_span!("s", session.id = "unbounded");
        let _s = session.enter();
        // Five calls run, $0.05 under a $0.02 limit: nothing checked them before they ran.
        for _ in 0..5 {
            unbounded_step();
        }
        // A call that reserves is refused, and one outside any session has no deny budget.
        let ran = Mutex::new(0);
        assert!(step("summarise the thread", &ran).is_err());
    });
    tracing::dispatcher::with_default(&dispatch, unbounded_step);
    assert_eq!(
        ledger.session("unbounded").map(|t| t.total_usd()),
        Some(usd("0.05"))
    );
    assert_eq!(ledger.diagnostics().calls_unchecked_by_budgets, 5);
    let unchecked = warnings.containing("Diagnostics::calls_unchecked_by_budgets");
    assert_eq!(unchecked, 1);
    assert_eq!(warnings.containing("max_output_tokens"), 1);
    let seen = warnings.seen();
    assert!(
        seen.iter()
            .any(|w| w.contains("call=\"unbounded_step\"")
                && w.contains("budget=\"per_session_max\"")),
        "{seen:?}"
    );
}

#[test]
fn calls_under_alert_budgets_only_are_not_counted_as_unchecked() {
    let mut config = session_budget("0.02");
    config.budgets[0].policy = cost_layer::cost_core::budget::Policy::Alert;
    let (dispatch, ledger, _book, _alerts) = setup(config);
    tracing::dispatcher::with_default(&dispatch, || {
        let session = tracing::info_span!("s", session.id = "alerted");
        let _s = session.enter();
        unbounded_step();
    });
    assert_eq!(ledger.diagnostics().calls_unchecked_by_budgets, 0);
}

/// Shared accounts that admit every reservation (a store that always answers yes).
struct AdmittingStore;

impl cost_layer::cost_core::budget::SharedAccounts for AdmittingStore {
    fn try_reserve(
        &self,
        _: cost_layer::cost_core::budget::SharedKey<'_>,
        _: Money,
        _: Money,
    ) -> Result<(), cost_layer::cost_core::budget::SharedRefusal> {
        Ok(())
    }

    fn settle(&self, _: cost_layer::cost_core::budget::SharedKey<'_>, _: Money, _: Money) {}
}

/// A call sink that takes every call and keeps none.
struct Discarding;

impl cost_layer::CallSink for Discarding {
    fn submit(&self, _: &cost_layer::ClosedCall<'_>) -> bool {
        true
    }
}

/// The warnings about a random user-id key given by a layer of `builder` over calls of two
/// users.
fn random_key_warnings(builder: cost_layer::CostLayerBuilder) -> usize {
    let (layer, _ledger) = builder.build();
    let (dispatch, warnings) = Warnings::beside(layer, &["cost_layer"]);
    tracing::dispatcher::with_default(&dispatch, || {
        for user in ["alice", "bob"] {
            let session = tracing::info_span!("s", session.id = user, cost.user_id = user);
            let _s = session.enter();
            unbounded_step();
        }
    });
    warnings.containing("random key of this process")
}

#[test]
fn a_random_user_id_key_is_warned_about_where_keys_must_match_across_processes() {
    let per_user_daily = || BudgetConfig {
        budgets: vec![Budget::deny(
            "per_user_daily",
            BudgetScope::User,
            Window::Day,
            usd("50"),
        )],
        ..BudgetConfig::default()
    };
    let shared = || {
        BudgetBook::with_shared(
            per_user_daily(),
            Arc::new(ManualClock::new(1_764_072_000)),
            Arc::new(AdmittingStore),
            Default::default(),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    };
    // A per-user budget shared with other processes, or calls stored: once, whatever the users.
    assert_eq!(
        random_key_warnings(CostLayer::builder().budgets(shared())),
        1
    );
    assert_eq!(
        random_key_warnings(CostLayer::builder().call_sink(Discarding)),
        1
    );
    // A key of the program's own, raw ids, or nothing that outlives the process: none.
    assert_eq!(
        random_key_warnings(
            CostLayer::builder()
                .budgets(shared())
                .user_id_key(b"one secret for every process")
        ),
        0
    );
    assert_eq!(
        random_key_warnings(CostLayer::builder().call_sink(Discarding).raw_user_ids()),
        0
    );
    assert_eq!(
        random_key_warnings(CostLayer::builder().budgets(book_on_a_fixed_clock(per_user_daily()))),
        0
    );
    assert_eq!(random_key_warnings(CostLayer::builder()), 0);
}
