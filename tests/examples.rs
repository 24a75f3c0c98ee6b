//! The examples run as tests: their figures are checked, not just printed.

#[allow(dead_code)]
#[path = "../examples/openai_chat.rs"]
mod openai_chat;

use cost_core::Money;

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
