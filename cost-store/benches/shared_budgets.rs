//! Figures of the shared budget accounts: what a reservation in the store costs the calling
//! thread (its round trips, made before the call runs), and how fast the background thread
//! applies the settlements, for SQLite, PostgreSQL and Redis on loopback.
//!
//! `cargo bench -p cost-store --bench shared_budgets` prints one JSON object per line,
//! `{"scenario": …, "value": …, "unit": …}`: `reserve_{store}` (µs per reservation, one user's
//! daily budget, each reservation settled at once; its round trips wait for the settling
//! thread's batches, which hold the account's pending figures) and `settle_backlog_{store}`
//! (ms from the last reservation until every settlement is applied). The servers are those of the tests
//! (`LLM_COST_TEST_POSTGRES`, `LLM_COST_TEST_REDIS`); a store whose server does not answer is
//! skipped, and says so.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use cost_core::Money;
use cost_core::budget::{
    BudgetBook, BudgetConfig, CallKeys, ManualClock, SharedAccounts, Unavailable,
};

const RESERVATIONS: usize = 5_000;

fn report(scenario: &str, value: f64, unit: &str) {
    println!("{{\"scenario\": \"{scenario}\", \"value\": {value:.1}, \"unit\": \"{unit}\"}}");
}

/// Reserves and settles `RESERVATIONS` calls of $0.0001 on one user's $1 000 daily budget.
fn measure(store: &str, address: &str, options: cost_store::BudgetOptions) {
    let accounts = cost_store::budgets_with(address, options).unwrap_or_else(|e| panic!("{e}"));
    let shared: Arc<dyn SharedAccounts> = accounts.clone();
    let config =
        BudgetConfig::from_toml("per_user_daily = 1000.00").unwrap_or_else(|e| panic!("{e}"));
    let book = BudgetBook::with_shared(
        config,
        Arc::new(ManualClock::new(1_764_072_000)),
        shared,
        Unavailable::FailClosed,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let amount = Money::from_decimal("0.0001").unwrap_or_else(|e| panic!("{e}"));
    let keys: Vec<CallKeys> = (0..RESERVATIONS)
        .map(|call| CallKeys {
            call: Arc::from(format!("call-{call}")),
            user: Some(Arc::from("bench")),
            ..CallKeys::default()
        })
        .collect();
    let started = Instant::now();
    for call in &keys {
        book.reserve(call, amount)
            .unwrap_or_else(|e| panic!("{e}"))
            .settle(amount);
    }
    let reserved = started.elapsed();
    let draining = Instant::now();
    assert!(accounts.flush(Duration::from_secs(120)));
    let drained = draining.elapsed();
    report(
        &format!("reserve_{store}"),
        reserved.as_secs_f64() * 1e6 / RESERVATIONS as f64,
        "µs/op",
    );
    report(
        &format!("settle_backlog_{store}"),
        drained.as_secs_f64() * 1e3,
        "ms",
    );
}

fn main() {
    let (_dir, sqlite) = common::temp_address("budgets.sqlite");
    measure("sqlite", &sqlite, cost_store::BudgetOptions::default());
    if let Some(schema) = common::PostgresSchema::create("bench_budgets") {
        measure(
            "postgres",
            &schema.url,
            cost_store::BudgetOptions::default(),
        );
    }
    if let Some(redis) = common::RedisPrefix::create("bench_budgets") {
        measure("redis", &redis.url, redis.options());
    }
}
