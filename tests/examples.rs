//! The examples run as tests: their figures are checked, not just printed.

#[allow(dead_code)]
#[path = "../examples/openai_chat.rs"]
mod openai_chat;

#[allow(dead_code)]
#[path = "../examples/anthropic_json.rs"]
mod anthropic_json;

#[allow(dead_code)]
#[path = "../examples/budget_guard.rs"]
mod budget_guard;

use cost_core::Money;

fn usd(text: &str) -> Money {
    Money::from_decimal(text).unwrap_or_default()
}

#[test]
fn anthropic_json_prices_cache_writes_and_gemini_thoughts() {
    let ledger = anthropic_json::run();
    // Claude Sonnet 4.5: 50 × 3e-6 + 6 000 × 0.3e-6 + 2 000 × 3.75e-6 + 1 000 × 6e-6 + 700 × 15e-6
    //                  = 0.00015 + 0.0018 + 0.0075 + 0.006 + 0.0105 = 0.02595
    let claude = ledger.model("claude-sonnet-4-5").unwrap_or_default();
    assert_eq!(claude.total_usd(), usd("0.02595"));
    assert_eq!(
        (claude.usage.input, claude.usage.cache_write_1h),
        (9_050, 1_000)
    );
    // Gemini 2.5 Pro (≤ 200k): 4 000 × 1.25e-6 + 8 000 × 0.125e-6 + 500 × 10e-6 = 0.011
    let gemini = ledger.model("gemini-2.5-pro").unwrap_or_default();
    assert_eq!(gemini.total_usd(), usd("0.011"));
    assert_eq!((gemini.usage.output, gemini.usage.reasoning), (500, 200));
    assert_eq!(
        ledger.session("pr-1234").map(|t| t.total_usd()),
        Some(usd("0.03695"))
    );
}

#[tokio::test(flavor = "current_thread")]
async fn openai_chat_prices_the_real_clients_responses() {
    let totals = openai_chat::run().await;
    // Per call (gpt-4o-mini): 176 × 0.15e-6 + 1 024 × 0.075e-6 + 300 × 0.6e-6 = 0.0002832
    assert_eq!(totals.llm_calls, 3);
    assert_eq!(
        totals.total_usd(),
        Money::from_decimal("0.0008496").unwrap_or_default()
    );
    assert_eq!(totals.usage.cache_read, 3 * 1024);
    assert!(totals.is_complete());
}

#[test]
fn budget_guard_stops_the_runaway_loop_at_its_session_budget() {
    let (steps, refused, alerts, ledger) = budget_guard::run();
    // Admitted while spent + 0.03 ≤ 0.25 at 0.025 per step: 9 steps ($0.225); the 10th refused.
    assert_eq!(steps, 9);
    let refused = refused.unwrap_or_else(|| panic!("never refused"));
    assert_eq!(refused.spent, usd("0.225"));
    assert_eq!(
        ledger.session("runaway-1").map(|t| t.total_usd()),
        Some(usd("0.225"))
    );
    // 50 % and 80 % of the session budget, each once (the others are far from their limits).
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert!(
        alerts[0].contains("crossed 50%") && alerts[1].contains("crossed 80%"),
        "{alerts:?}"
    );
}
