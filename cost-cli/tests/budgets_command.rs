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
    // Each row's columns, one space apart.
    let rows: Vec<String> = text
        .lines()
        .skip(1)
        .take(4)
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        rows,
        [
            "org_monthly org each month $200 deny 50% 80% 100% shared",
            "per_call_max call each lifetime $1 deny 50% 80% 100% process",
            "per_user_daily user each day $1 deny 50% 80% 100% shared",
            "monthly global all month $5000 alert 80% 95% process",
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
    let accounts = cost_store::budgets(address).unwrap_or_else(|e| panic!("{e}"));
    let _in_flight = a_day_of_calls(&accounts);
    let sections = listed(&file, &[address, "--at", "2025-11-25"]);
    assert_the_day_is_listed(&sections);
    // The next day has no accounts yet; the month's are the same.
    let next = listed(&file, &[address, "--at", "2025-11-26"]);
    assert!(
        next[1].starts_with("per_user_daily (2025-11-26, limit $1): 0 accounts"),
        "{next:?}"
    );
    assert_eq!(lines(&next[0]), lines(&sections[0]));
}

#[test]
fn the_shared_accounts_of_a_day_in_redis_are_listed_under_their_prefix() {
    let url = std::env::var("LLM_COST_TEST_REDIS")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned());
    let admin = redis::Client::open(url.as_str()).and_then(|client| client.get_connection());
    let mut admin = match admin {
        Ok(admin) => admin,
        Err(error) if std::env::var("LLM_COST_REQUIRE_REDIS").as_deref() == Ok("1") => {
            panic!("Redis required but not reachable at {url}: {error}")
        }
        Err(error) => {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED the_shared_accounts_of_a_day_in_redis_are_listed_under_their_prefix: Redis not reachable at {url} ({error})"
            );
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("budgets.toml");
    std::fs::write(&file, BUDGETS).unwrap_or_else(|e| panic!("{e}"));
    let prefix = format!("llm-cost-test-cli-{}", std::process::id());
    let options = cost_store::BudgetOptions {
        key_prefix: prefix.clone(),
        ..cost_store::BudgetOptions::default()
    };
    let accounts = cost_store::budgets_with(&url, options).unwrap_or_else(|e| panic!("{e}"));
    let in_flight = a_day_of_calls(&accounts);
    let sections = listed(
        &file,
        &[&url, "--key-prefix", &prefix, "--at", "2025-11-25"],
    );
    // Under another prefix, another program's accounts (none).
    let other = format!("{prefix}-other");
    let elsewhere = listed(&file, &[&url, "--key-prefix", &other, "--at", "2025-11-25"]);
    drop(in_flight);
    assert!(accounts.flush(Duration::from_secs(10)));
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query(&mut admin)
        .unwrap_or_default();
    let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query(&mut admin);
    assert_the_day_is_listed(&sections);
    assert!(
        elsewhere[1].starts_with("per_user_daily (2025-11-25, limit $1): 0 accounts"),
        "{elsewhere:?}"
    );
}

/// A program's day in `accounts`: alice spends $0.25 and has $0.7 in flight (the reservation
/// returned), bob spends $0.9; both of org acme.
fn a_day_of_calls(accounts: &Arc<cost_store::StoreBudgets>) -> cost_core::budget::Reservation {
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
    let in_flight = book
        .reserve(&keys("2", "alice"), usd("0.7"))
        .unwrap_or_else(|e| panic!("{e}"));
    book.reserve(&keys("3", "bob"), usd("0.9"))
        .unwrap_or_else(|e| panic!("{e}"))
        .settle(usd("0.9"));
    assert!(accounts.flush(Duration::from_secs(10)));
    in_flight
}

/// `llm-cost budgets FILE --db ARGS…`: the sections after the description, one per shared
/// budget.
fn listed(file: &std::path::Path, args: &[&str]) -> Vec<String> {
    let output = Command::new(env!("CARGO_BIN_EXE_llm-cost"))
        .arg("budgets")
        .arg(file)
        .arg("--db")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.split("\n\n").skip(1).map(str::to_owned).collect()
}

/// The rows of a section: each account's key, spent, reserved and share of the limit.
fn lines(section: &str) -> Vec<Vec<String>> {
    section
        .lines()
        .skip(2)
        .map(|line| line.split_whitespace().map(str::to_owned).collect())
        .collect()
}

/// The sections of 2025-11-25 after [`a_day_of_calls`].
fn assert_the_day_is_listed(sections: &[String]) {
    assert_eq!(sections.len(), 2, "{sections:?}");
    assert!(
        sections[0].starts_with("org_monthly (2025-11, limit $200): 1 account\n"),
        "{}",
        sections[0]
    );
    assert_eq!(lines(&sections[0]), [["acme", "$1.15", "$0.7", "0.9%"]]);
    assert!(
        sections[1].starts_with("per_user_daily (2025-11-25, limit $1): 2 accounts\n"),
        "{}",
        sections[1]
    );
    assert_eq!(
        lines(&sections[1]),
        [
            // Most used first, what is in flight counted: alice's $0.95 before bob's $0.9.
            ["alice", "$0.25", "$0.7", "95.0%"],
            ["bob", "$0.9", "$0", "90.0%"]
        ]
    );
}

#[test]
fn the_certificate_authorities_of_a_tls_redis_are_read_from_the_file_given() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("budgets.toml");
    std::fs::write(&file, BUDGETS).unwrap_or_else(|e| panic!("{e}"));
    let ca = dir.path().join("private-ca.pem");
    // Read before any connection: a file that is not there is named, whatever the server.
    let output = run(&[
        "budgets",
        file.to_str().unwrap_or_default(),
        "--db",
        "rediss://127.0.0.1:1/",
        "--tls-ca",
        ca.to_str().unwrap_or_default(),
    ]);
    assert!(!output.status.success(), "{output:?}");
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(
        error.contains("private-ca.pem") && error.contains("certificate authorities"),
        "{error}"
    );
}

#[test]
fn a_client_certificate_for_a_tls_redis_is_read_from_the_files_given() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("budgets.toml");
    std::fs::write(&file, BUDGETS).unwrap_or_else(|e| panic!("{e}"));
    let cert = dir.path().join("client.pem");
    std::fs::write(&cert, "not read before the key").unwrap_or_else(|e| panic!("{e}"));
    let key = dir.path().join("client-key.pem");
    let args = |extra: &[&str]| {
        let mut all = vec![
            "budgets",
            file.to_str().unwrap_or_default(),
            "--db",
            "rediss://127.0.0.1:1/",
        ];
        all.extend(extra);
        run(&all)
    };
    // Read before any connection: a key that is not there is named, whatever the server.
    let output = args(&[
        "--tls-cert",
        cert.to_str().unwrap_or_default(),
        "--tls-key",
        key.to_str().unwrap_or_default(),
    ]);
    assert!(!output.status.success(), "{output:?}");
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(
        error.contains("client-key.pem") && error.contains("client key"),
        "{error}"
    );
    // A certificate without its key is a usage error.
    let output = args(&["--tls-cert", cert.to_str().unwrap_or_default()]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
}

#[test]
fn a_budget_kept_for_one_key_lists_only_that_keys_account() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store = dir.path().join("budgets.sqlite");
    let address = store.to_str().unwrap_or_default();
    let accounts = cost_store::budgets(address).unwrap_or_else(|e| panic!("{e}"));
    // Yesterday's program kept the budget for every org: acme's and globex's accounts.
    let every_org = r#"
[[budget]]
name = "org_day"
scope = "org"
window = "day"
limit = 10
"#;
    let shared: Arc<dyn SharedAccounts> = accounts.clone();
    let book = BudgetBook::with_shared(
        BudgetConfig::from_toml(every_org).unwrap_or_else(|e| panic!("{e}")),
        Arc::new(ManualClock::new(NOW)),
        shared,
        Unavailable::FailClosed,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    for (call, org, cost) in [("1", "acme", "2"), ("2", "globex", "3")] {
        let keys = CallKeys {
            call: Arc::from(call),
            org: Some(Arc::from(org)),
            ..CallKeys::default()
        };
        book.reserve(&keys, usd(cost))
            .unwrap_or_else(|e| panic!("{e}"))
            .settle(usd(cost));
    }
    assert!(accounts.flush(Duration::from_secs(10)));
    // Today's file keeps it for acme alone: globex's account is not this budget's.
    let file = dir.path().join("budgets.toml");
    std::fs::write(&file, format!("{every_org}key = \"acme\"\n")).unwrap_or_else(|e| panic!("{e}"));
    let sections = listed(&file, &[address, "--at", "2025-11-25"]);
    assert_eq!(sections.len(), 1, "{sections:?}");
    assert!(
        sections[0].starts_with("org_day (2025-11-25, limit $10): 1 account\n"),
        "{}",
        sections[0]
    );
    assert_eq!(lines(&sections[0]), [["acme", "$2", "$0", "20.0%"]]);
    // The file without the key lists both, most used first.
    std::fs::write(&file, every_org).unwrap_or_else(|e| panic!("{e}"));
    let sections = listed(&file, &[address, "--at", "2025-11-25"]);
    assert_eq!(
        lines(&sections[0]),
        [
            ["globex", "$3", "$0", "30.0%"],
            ["acme", "$2", "$0", "20.0%"]
        ]
    );
}

#[test]
fn accounts_of_a_store_that_does_not_exist_are_an_error_and_it_is_not_created() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("budgets.toml");
    std::fs::write(&file, BUDGETS).unwrap_or_else(|e| panic!("{e}"));
    let missing = dir.path().join("acounts.sqlite");
    let output = run(&[
        "budgets",
        file.to_str().unwrap_or_default(),
        "--db",
        missing.to_str().unwrap_or_default(),
    ]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("no ledger at"), "{said}");
    assert!(!missing.exists());
}
