//! `llm-cost budgets`: a budget file checked and described, and the shared accounts of a
//! SQLite store listed for the window of a given day, most used first.

use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use cost_core::Money;
use cost_core::budget::{
    BudgetBook, BudgetConfig, CallKeys, ManualClock, SharedAccounts, Unavailable,
};

fn usd(text: &str) -> Money {
    Money::from_decimal(text).unwrap_or_else(|e| panic!("{e}"))
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_llm-cost"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{e}"))
}

const BUDGETS: &str = r#"
per_call_max = 1.00
per_user_daily = 1.00
org_monthly = 200

[[budget]]
name = "monthly"
scope = "global"
window = "month"
limit = 5000
thresholds = [0.8, 0.95]
policy = "alert"
"#;

/// 2025-11-25 12:00 UTC.
const NOW: i64 = 1_764_072_000;

#[test]
fn a_budget_file_is_described_with_where_each_budget_is_kept() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("budgets.toml");
    std::fs::write(&file, BUDGETS).unwrap_or_else(|e| panic!("{e}"));
    let output = run(&["budgets", file.to_str().unwrap_or_default()]);
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8_lossy(&output.stdout);
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip(1)
        .take(4)
        .map(|line| line.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        [
            vec![
                "org_monthly",
                "org",
                "each",
                "month",
                "$200",
                "deny",
                "50%",
                "80%",
                "100%",
                "shared"
            ],
            vec![
                "per_call_max",
                "call",
                "each",
                "lifetime",
                "$1",
                "deny",
                "50%",
                "80%",
                "100%",
                "process"
            ],
            vec![
                "per_user_daily",
                "user",
                "each",
                "day",
                "$1",
                "deny",
                "50%",
                "80%",
                "100%",
                "shared"
            ],
            vec![
                "monthly", "global", "all", "month", "$5000", "alert", "80%", "95%", "process"
            ],
        ],
        "{text}"
    );
    assert!(
        text.contains("unpriced calls: admit; cancelled calls: hold"),
        "{text}"
    );
}

#[test]
fn a_budget_file_that_cannot_be_loaded_is_refused_naming_the_entry() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("budgets.toml");
    std::fs::write(&file, "per_user_daily = -5").unwrap_or_else(|e| panic!("{e}"));
    let output = run(&["budgets", file.to_str().unwrap_or_default()]);
    assert_eq!(output.status.code(), Some(2));
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(error.contains("per_user_daily"), "{error}");
    assert!(output.stdout.is_empty());
}

#[test]
fn the_shared_accounts_of_a_day_are_listed_most_used_first() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("budgets.toml");
    std::fs::write(&file, BUDGETS).unwrap_or_else(|e| panic!("{e}"));
    let store = dir.path().join("budgets.sqlite");
    let address = store.to_str().unwrap_or_default();
    // A program's day: alice spends $0.25 and has $0.5 in flight, bob spends $0.9 (org acme).
    let accounts = cost_store::budgets(address).unwrap_or_else(|e| panic!("{e}"));
    let shared: Arc<dyn SharedAccounts> = accounts.clone();
    let config = BudgetConfig::from_toml(BUDGETS).unwrap_or_else(|e| panic!("{e}"));
    let book = BudgetBook::with_shared(
        config,
        Arc::new(ManualClock::new(NOW)),
        shared,
        Unavailable::FailClosed,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let keys = |call: &str, user: &str| CallKeys {
        call: Arc::from(call),
        user: Some(Arc::from(user)),
        org: Some(Arc::from("acme")),
        ..CallKeys::default()
    };
    book.reserve(&keys("1", "alice"), usd("0.3"))
        .unwrap_or_else(|e| panic!("{e}"))
        .settle(usd("0.25"));
    let _in_flight = book
        .reserve(&keys("2", "alice"), usd("0.5"))
        .unwrap_or_else(|e| panic!("{e}"));
    book.reserve(&keys("3", "bob"), usd("0.9"))
        .unwrap_or_else(|e| panic!("{e}"))
        .settle(usd("0.9"));
    assert!(accounts.flush(Duration::from_secs(10)));

    let listed = |at: &str| {
        let output = run(&[
            "budgets",
            file.to_str().unwrap_or_default(),
            "--db",
            address,
            "--at",
            at,
        ]);
        assert!(output.status.success(), "{output:?}");
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        text.split("\n\n")
            .skip(1)
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let sections = listed("2025-11-25");
    let lines = |section: &str| -> Vec<Vec<String>> {
        section
            .lines()
            .skip(2)
            .map(|line| line.split_whitespace().map(str::to_owned).collect())
            .collect()
    };
    assert_eq!(sections.len(), 2, "{sections:?}");
    assert!(
        sections[0].starts_with("org_monthly (2025-11, limit $200): 1 account\n"),
        "{}",
        sections[0]
    );
    assert_eq!(lines(&sections[0]), [["acme", "$1.15", "$0.5", "0.8%"]]);
    assert!(
        sections[1].starts_with("per_user_daily (2025-11-25, limit $1): 2 accounts\n"),
        "{}",
        sections[1]
    );
    assert_eq!(
        lines(&sections[1]),
        [
            ["bob", "$0.9", "$0", "90.0%"],
            ["alice", "$0.25", "$0.5", "75.0%"]
        ]
    );
    // The next day has no accounts yet; the month's are the same.
    let next = listed("2025-11-26");
    assert!(
        next[1].starts_with("per_user_daily (2025-11-26, limit $1): 0 accounts"),
        "{next:?}"
    );
    assert_eq!(lines(&next[0]), lines(&sections[0]));
}
