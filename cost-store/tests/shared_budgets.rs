//! Budget accounts in the store: two real processes racing on one user's daily budget in
//! PostgreSQL or Redis never admit more than its limit; a budget survives a restart; a cut
//! connection fails closed, then reconnects; past days' accounts are forgotten.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::{FreezingProxy, PostgresSchema, RedisPrefix, usd};
use cost_layer::cost_core::Money;
use cost_layer::cost_core::budget::{
    BudgetBook, BudgetConfig, BudgetExceeded, CallKeys, ManualClock, Reservation, SharedAccounts,
    Unavailable,
};

/// 2025-11-25 12:00 UTC: every process counts in the same day.
const NOW: i64 = 1_764_072_000;

fn book(accounts: Arc<cost_store::StoreBudgets>, unavailable: Unavailable) -> BudgetBook {
    let config = BudgetConfig::from_toml("per_user_daily = 1.00").unwrap_or_else(|e| panic!("{e}"));
    let accounts: Arc<dyn SharedAccounts> = accounts;
    BudgetBook::with_shared(
        config,
        Arc::new(ManualClock::new(NOW)),
        accounts,
        unavailable,
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn keys(user: &str, call: usize) -> CallKeys {
    CallKeys {
        call: Arc::from(format!("call-{call}")),
        user: Some(Arc::from(user)),
        ..CallKeys::default()
    }
}

/// The `per_user_daily` accounts of `day` in the store at `address`, in the order of their keys:
/// each key with what it spent and what it holds reserved.
fn figures(
    address: &str,
    options: &cost_store::BudgetOptions,
    day: i64,
) -> Vec<(String, Money, Money)> {
    cost_store::budget_accounts(address, options, "per_user_daily", day)
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|account| (account.key, account.spent, account.reserved))
        .collect()
}

/// The budget accounts at `address`, opened with `options`, and a book over them that fails
/// closed.
fn accounts_and_book(
    address: &str,
    options: cost_store::BudgetOptions,
) -> (Arc<cost_store::StoreBudgets>, BudgetBook) {
    let accounts = cost_store::budgets_with(address, options).unwrap_or_else(|e| panic!("{e}"));
    let book = book(Arc::clone(&accounts), Unavailable::FailClosed);
    (accounts, book)
}

/// `user`'s call number `call`, of worst case `amount` dollars, admitted (the test fails if it
/// is refused).
fn admitted(book: &BudgetBook, user: &str, call: usize, amount: &str) -> Reservation {
    book.reserve(&keys(user, call), usd(amount))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The same call refused: why (the test fails if it is admitted).
fn refusal(book: &BudgetBook, user: &str, call: usize, amount: &str) -> BudgetExceeded {
    book.reserve(&keys(user, call), usd(amount))
        .err()
        .unwrap_or_else(|| panic!("{user}'s call {call} of ${amount} admitted beyond the limit"))
}

/// One racing process: `LLM_COST_RACE_ROUNDS` calls of $0.01 worst case for user `racer`,
/// each settled at $0.01, against the accounts at `LLM_COST_RACE_URL` (in Redis, under
/// `LLM_COST_RACE_PREFIX`); prints how many were admitted.
#[test]
#[ignore = "run as a child process by two_processes_racing_on_one_user_budget_never_over_admit"]
fn racer_child() {
    let url = std::env::var("LLM_COST_RACE_URL").unwrap_or_else(|e| panic!("{e}"));
    let rounds: usize = std::env::var("LLM_COST_RACE_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(80);
    let options = cost_store::BudgetOptions {
        key_prefix: std::env::var("LLM_COST_RACE_PREFIX").unwrap_or_else(|_| "llm-cost".into()),
        ..cost_store::BudgetOptions::default()
    };
    let (accounts, book) = accounts_and_book(&url, options);
    let mut admitted = 0;
    for call in 0..rounds {
        if let Ok(reservation) = book.reserve(&keys("racer", call), usd("0.01")) {
            admitted += 1;
            reservation.settle(usd("0.01"));
        }
    }
    assert!(accounts.flush(Duration::from_secs(30)));
    println!("admitted={admitted}");
}

/// Races two processes of 80 calls each on user `racer`'s $1.00 budget at `url` (under
/// `prefix` in Redis): how many each admitted.
fn race(url: &str, prefix: &str) -> Vec<u32> {
    let racers: Vec<_> = (0..2)
        .map(|_| {
            Command::new(std::env::current_exe().unwrap_or_else(|e| panic!("{e}")))
                .args(["--ignored", "--exact", "racer_child", "--nocapture"])
                .env("LLM_COST_RACE_URL", url)
                .env("LLM_COST_RACE_PREFIX", prefix)
                .env("LLM_COST_RACE_ROUNDS", "80")
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    let mut admitted = Vec::new();
    for racer in racers {
        let output = racer.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
        assert!(output.status.success(), "a racer failed");
        let text = String::from_utf8_lossy(&output.stdout);
        let count: u32 = text
            .lines()
            .find_map(|line| line.strip_prefix("admitted="))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no count in {text}"));
        admitted.push(count);
    }
    admitted
}

#[test]
fn two_processes_racing_on_one_user_budget_never_over_admit() {
    let Some(schema) = PostgresSchema::create("race") else {
        return;
    };
    // Create the schema's tables before the race, so both racers find them.
    drop(cost_store::budgets(&schema.url).unwrap_or_else(|e| panic!("{e}")));
    let admitted = race(&schema.url, "");
    // 160 attempts of $0.01 against $1.00: exactly 100 admitted, never one more.
    assert_eq!(admitted.iter().sum::<u32>(), 100, "{admitted:?}");
    let mut client =
        postgres::Client::connect(&schema.url, postgres::NoTls).unwrap_or_else(|e| panic!("{e}"));
    let row = client
        .query_one(
            "SELECT spent::text, reserved::text FROM llm_cost_budget_accounts WHERE key = 'racer'",
            &[],
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let spent: String = row.get(0);
    let reserved: String = row.get(1);
    assert_eq!(usd(&spent), usd("1.00"), "{admitted:?}");
    assert_eq!(usd(&reserved), usd("0"));
}

/// Four threads of one process, 150 calls each, on user `racer`'s $1.00 budget in the store at
/// `address`, each reserving $0.02 and settled at once at $0.01 (so what each releases is
/// pending until the store has it): how many were admitted, and the account's figures once
/// every settlement is applied.
fn threads_racing(
    address: &str,
    options: &cost_store::BudgetOptions,
) -> (u32, Vec<(String, Money, Money)>) {
    let (accounts, book) = accounts_and_book(address, options.clone());
    let admitted = std::thread::scope(|scope| {
        let racers: Vec<_> = (0..4)
            .map(|thread| {
                let book = &book;
                scope.spawn(move || {
                    (0..150)
                        .filter_map(|call| {
                            book.reserve(&keys("racer", thread * 1_000 + call), usd("0.02"))
                                .ok()
                        })
                        .map(|reservation| drop(reservation.settle(usd("0.01"))))
                        .count()
                })
            })
            .collect();
        racers
            .into_iter()
            .map(|racer| racer.join().unwrap_or_else(|_| panic!("a racer panicked")))
            .sum::<usize>()
    });
    assert!(accounts.flush(Duration::from_secs(30)));
    let admitted = u32::try_from(admitted).unwrap_or(u32::MAX);
    (admitted, figures(address, options, NOW / 86_400))
}

#[test]
fn threads_racing_on_one_user_budget_never_over_admit_in_any_store() {
    let (_dir, sqlite) = common::temp_address("budgets.sqlite");
    let postgres = PostgresSchema::create("threads_race");
    let redis = RedisPrefix::create("threads_race");
    let stores = [(sqlite, cost_store::BudgetOptions::default())]
        .into_iter()
        .chain(
            postgres
                .as_ref()
                .map(|schema| (schema.url.clone(), Default::default())),
        )
        .chain(
            redis
                .as_ref()
                .map(|redis| (redis.url.clone(), redis.options())),
        );
    for (address, options) in stores {
        let address = address.as_str();
        // 600 attempts against $1.00: admitted while what was spent leaves room for $0.02,
        // the last at $0.98 spent; 99 in all, never one more, each thread's reservations made
        // by the accounts' one thread in turn.
        let (admitted, accounts) = threads_racing(address, &options);
        assert_eq!(admitted, 99, "{address}");
        assert_eq!(
            accounts,
            [("racer".to_owned(), usd("0.99"), Money::ZERO)],
            "{address}"
        );
    }
}

#[test]
fn a_sqlite_budget_survives_a_restart() {
    let (_dir, address) = common::temp_address("budgets.sqlite");
    {
        let accounts = cost_store::budgets(&address).unwrap_or_else(|e| panic!("{e}"));
        let before = book(Arc::clone(&accounts), Unavailable::FailClosed);
        before
            .reserve(&keys("alice", 1), usd("0.9"))
            .unwrap_or_else(|e| panic!("{e}"))
            .settle(usd("0.9"));
        assert!(accounts.flush(Duration::from_secs(10)));
    }
    // A new process, as far as the budget can tell.
    let accounts = cost_store::budgets(&address).unwrap_or_else(|e| panic!("{e}"));
    let after = book(accounts, Unavailable::FailClosed);
    let refused = after
        .reserve(&keys("alice", 2), usd("0.2"))
        .err()
        .unwrap_or_else(|| panic!("the restart forgot alice's spend"));
    assert_eq!(refused.spent, usd("0.9"));
    assert!(after.reserve(&keys("alice", 3), usd("0.1")).is_ok());
}

/// Fail closed: with the store's connections cut (`cut` cuts them) a reservation is refused as
/// unavailable, and the next one reconnects and finds the account as it was.
fn a_cut_connection_fails_closed_then_reconnects_to(
    accounts: &Arc<cost_store::StoreBudgets>,
    cut: impl FnOnce(),
) {
    let book = book(Arc::clone(accounts), Unavailable::FailClosed);
    let _in_flight = admitted(&book, "dora", 1, "0.1");
    assert_eq!(accounts.stats().unavailable(), 0);
    cut();
    let refused = book
        .reserve(&keys("dora", 2), usd("0.1"))
        .err()
        .unwrap_or_else(|| panic!("admitted without its store"));
    assert!(refused.unavailable().is_some(), "{refused}");
    assert_eq!(accounts.stats().unavailable(), 1);
    // The next reservation opens a new connection, and finds the account as it was.
    let refused = book
        .reserve(&keys("dora", 3), usd("0.95"))
        .err()
        .unwrap_or_else(|| panic!("the reservation before the cut was lost"));
    assert_eq!(
        (refused.reserved, refused.unavailable()),
        (usd("0.1"), None)
    );
    assert!(book.reserve(&keys("dora", 4), usd("0.9")).is_ok());
}

/// Fail open: with the store's connections cut (`cut` cuts them) a reservation is admitted on
/// the process's own account, and its spend reaches the store once it answers again.
fn a_cut_connection_fails_open_and_the_store_catches_up_on(
    accounts: &Arc<cost_store::StoreBudgets>,
    cut: impl FnOnce(),
) {
    let book = book(Arc::clone(accounts), Unavailable::FailOpen);
    assert!(book.reserve(&keys("fred", 1), usd("0.1")).is_ok());
    assert!(accounts.flush(Duration::from_secs(10)));
    assert_eq!(accounts.stats().unavailable(), 0);
    cut();
    let admitted = book
        .reserve(&keys("fred", 2), usd("0.6"))
        .unwrap_or_else(|e| panic!("fail open refused: {e}"));
    assert_eq!(accounts.stats().unavailable(), 1);
    admitted.settle(usd("0.6"));
    assert!(accounts.flush(Duration::from_secs(30)));
    // Both settlements applied (the first call's, dropped unsettled, held as spent), the one
    // the cut connection refused after at least one failed write, retried.
    assert_eq!(accounts.stats().settled(), 2);
    assert!(accounts.stats().failed_writes() >= 1);
    let refused = book
        .reserve(&keys("fred", 3), usd("0.5"))
        .err()
        .unwrap_or_else(|| panic!("the store forgot the spend made during the outage"));
    assert_eq!((refused.spent, refused.unavailable()), (usd("0.6"), None));
}

#[test]
fn a_cut_connection_fails_closed_then_reconnects() {
    let Some(mut schema) = PostgresSchema::create("cut") else {
        return;
    };
    let accounts = cost_store::budgets(&schema.url).unwrap_or_else(|e| panic!("{e}"));
    a_cut_connection_fails_closed_then_reconnects_to(&accounts, || {
        assert!(schema.cut_connections() >= 1);
    });
}

#[test]
fn a_cut_connection_fails_open_and_the_store_catches_up_on_the_spend() {
    let Some(mut schema) = PostgresSchema::create("cut_open") else {
        return;
    };
    let accounts = cost_store::budgets(&schema.url).unwrap_or_else(|e| panic!("{e}"));
    a_cut_connection_fails_open_and_the_store_catches_up_on(&accounts, || {
        assert!(schema.cut_connections() >= 1);
    });
}

#[test]
fn a_cut_redis_connection_fails_closed_then_reconnects() {
    let Some(mut redis) = RedisPrefix::create("cut") else {
        return;
    };
    let accounts =
        cost_store::budgets_with(&redis.url, redis.options()).unwrap_or_else(|e| panic!("{e}"));
    // The connection that reserves and the one that settles.
    a_cut_connection_fails_closed_then_reconnects_to(&accounts, || {
        assert_eq!(redis.cut_connections(), 2);
    });
}

#[test]
fn a_cut_redis_connection_fails_open_and_redis_catches_up_on_the_spend() {
    let Some(mut redis) = RedisPrefix::create("cut_open") else {
        return;
    };
    let accounts =
        cost_store::budgets_with(&redis.url, redis.options()).unwrap_or_else(|e| panic!("{e}"));
    a_cut_connection_fails_open_and_the_store_catches_up_on(&accounts, || {
        assert_eq!(redis.cut_connections(), 2);
    });
    let account = format!("{}:budget:14:per_user_daily:{FIRST_DAY}:fred", redis.prefix);
    assert_eq!(
        redis.figures(&account),
        (Some("0.6".to_owned()), Some("0".to_owned()))
    );
}

#[derive(Debug)]
enum AgentError {
    OverBudget(cost_layer::cost_core::budget::BudgetExceeded),
}

impl From<cost_layer::cost_core::budget::BudgetExceeded> for AgentError {
    fn from(e: cost_layer::cost_core::budget::BudgetExceeded) -> Self {
        AgentError::OverBudget(e)
    }
}

/// Worst case 2 000 × 2.5e-6 + 1 000 × 1e-5 = $0.015; actual 2 000 in, 500 out = $0.01.
#[cost_layer::llm_call(model = "gpt-4o", max_output_tokens = 1_000, estimate_input = 2_000)]
fn step() -> Result<cost_layer::cost_core::Usage, AgentError> {
    Ok(cost_layer::cost_core::Usage::new(2_000, 500))
}

/// Runs `step` for user `erin` until refused, in a program whose budgets live at `address`;
/// returns how many calls ran.
fn program(address: &str) -> u32 {
    program_with(address, cost_store::BudgetOptions::default())
}

/// [`program`] with the accounts' options.
fn program_with(address: &str, options: cost_store::BudgetOptions) -> u32 {
    use tracing_subscriber::prelude::*;
    let accounts = cost_store::budgets_with(address, options).unwrap_or_else(|e| panic!("{e}"));
    let config = BudgetConfig::from_toml("per_user_daily = 0.05").unwrap_or_else(|e| panic!("{e}"));
    let shared: Arc<dyn SharedAccounts> = accounts.clone();
    let book = BudgetBook::with_shared(
        config,
        Arc::new(ManualClock::new(NOW)),
        shared,
        Unavailable::FailClosed,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (cost, _ledger) = cost_layer::CostLayer::builder()
        .raw_user_ids()
        .budgets(book)
        .build();
    let mut ran = 0;
    tracing::subscriber::with_default(tracing_subscriber::registry().with(cost), || {
        let session = tracing::info_span!("s", session.id = "s", cost.user_id = "erin");
        let _s = session.enter();
        loop {
            match step() {
                Ok(_) => ran += 1,
                Err(AgentError::OverBudget(refused)) => {
                    assert_eq!(refused.unavailable(), None, "{refused}");
                    break;
                }
            }
        }
    });
    assert!(accounts.flush(Duration::from_secs(10)));
    ran
}

#[test]
fn through_the_layer_a_daily_budget_holds_across_a_restart() {
    let (_dir, address) = common::temp_address("budgets.sqlite");
    // Admitted while spent + 0.015 ≤ 0.05, settled at 0.01 each: four calls (0.04).
    assert_eq!(program(&address), 4);
    // Restarted, the same day: the store remembers $0.04; 0.04 + 0.015 > 0.05.
    assert_eq!(program(&address), 0);
}

#[test]
fn settlements_beyond_the_queue_are_counted_and_their_reservations_stay_booked() {
    let (_dir, address) = common::temp_address("budgets.sqlite");
    let options = cost_store::BudgetOptions {
        settle_queue: 4,
        ..cost_store::BudgetOptions::default()
    };
    let (accounts, book) = accounts_and_book(&address, options);
    let reservations: Vec<_> = (0..20)
        .map(|call| {
            book.reserve(&keys("gina", call), usd("0.01"))
                .unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    // Nothing queued (the first reservation queued the day's forget).
    assert!(accounts.flush(Duration::from_secs(10)));
    // Another process holds the database: the settle thread cannot write meanwhile.
    let blocker = rusqlite::Connection::open(&address).unwrap_or_else(|e| panic!("{e}"));
    blocker
        .execute_batch("BEGIN EXCLUSIVE")
        .unwrap_or_else(|e| panic!("{e}"));
    let mut reservations = reservations.into_iter();
    // The first settlement is taken and its write fails (after the busy timeout): the thread
    // retries it and takes nothing more from the queue until it is written.
    if let Some(first) = reservations.next() {
        first.settle(usd("0.01"));
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while accounts.stats().failed_writes() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the write never failed"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    for reservation in reservations {
        reservation.settle(usd("0.01"));
    }
    // Of the other 19, four fit in the queue.
    assert_eq!(accounts.stats().settles_dropped(), 15);
    blocker
        .execute_batch("COMMIT")
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(accounts.flush(Duration::from_secs(30)));
    // The dropped ones stay reserved in the store: they can only refuse more. With 20 × $0.01
    // booked against $1.00, exactly 80 more calls of $0.01 fit, whatever was settled.
    let admitted: Vec<_> = (100..200)
        .filter_map(|call| book.reserve(&keys("gina", call), usd("0.01")).ok())
        .collect();
    assert_eq!(admitted.len(), 80);
}

/// Five days of calls by three users on a daily budget, the clock moving a day at a time:
/// returns how many accounts the store forgot.
fn five_days_of_calls(address: &str) -> u64 {
    five_days_of_calls_with(address, cost_store::BudgetOptions::default())
}

/// [`five_days_of_calls`] with the accounts' options.
fn five_days_of_calls_with(address: &str, options: cost_store::BudgetOptions) -> u64 {
    let accounts = cost_store::budgets_with(address, options).unwrap_or_else(|e| panic!("{e}"));
    let clock = Arc::new(ManualClock::new(NOW));
    let config = BudgetConfig::from_toml("per_user_daily = 1.00").unwrap_or_else(|e| panic!("{e}"));
    let shared: Arc<dyn SharedAccounts> = accounts.clone();
    let book = BudgetBook::with_shared(config, clock.clone(), shared, Unavailable::FailClosed)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut settled = 0;
    for day in 0..5 {
        clock.set(NOW + day * 86_400);
        for (call, user) in ["alice", "bob", "carol"].into_iter().enumerate() {
            book.reserve(&keys(user, call), usd("0.1"))
                .unwrap_or_else(|e| panic!("{e}"))
                .settle(usd("0.1"));
        }
        assert!(accounts.flush(Duration::from_secs(10)));
        settled += 3;
        assert_eq!(accounts.stats().settled(), settled);
    }
    assert_eq!(accounts.stats().failed_writes(), 0);
    accounts.stats().accounts_forgotten()
}

/// The accounts of the last of the five days, as `budget_accounts` reads them back, and of the
/// first (forgotten).
fn assert_the_accounts_of_the_last_day(address: &str, options: &cost_store::BudgetOptions) {
    let accounts = figures(address, options, FIRST_DAY + 4);
    let expected: Vec<_> = ["alice", "bob", "carol"]
        .into_iter()
        .map(|user| (user.to_owned(), usd("0.1"), usd("0")))
        .collect();
    assert_eq!(accounts, expected);
    assert_eq!(figures(address, options, FIRST_DAY), []);
}

/// The days of `per_user_daily` accounts in a SQLite file, in order, once each.
fn sqlite_windows(path: &std::path::Path) -> Vec<i64> {
    let connection = rusqlite::Connection::open(path).unwrap_or_else(|e| panic!("{e}"));
    let mut statement = connection
        .prepare("SELECT DISTINCT window_id FROM llm_cost_budget_accounts WHERE budget = 'per_user_daily' ORDER BY window_id")
        .unwrap_or_else(|e| panic!("{e}"));
    statement
        .query_map([], |row| row.get(0))
        .and_then(|rows| rows.collect())
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Day 20 417 (2025-11-25) and the four after it.
const FIRST_DAY: i64 = NOW / 86_400;

#[test]
fn the_store_forgets_the_accounts_of_days_past_in_sqlite() {
    let (dir, address) = common::temp_address("budgets.sqlite");
    let forgotten = five_days_of_calls(&address);
    // The last day and the one before it are kept; three days of three users forgotten.
    assert_eq!(
        sqlite_windows(&dir.path().join("budgets.sqlite")),
        [FIRST_DAY + 3, FIRST_DAY + 4]
    );
    assert_eq!(forgotten, 9);
    assert_the_accounts_of_the_last_day(&address, &cost_store::BudgetOptions::default());
}

#[test]
fn the_store_forgets_the_accounts_of_days_past_in_postgres() {
    let Some(schema) = PostgresSchema::create("forget") else {
        return;
    };
    let forgotten = five_days_of_calls(&schema.url);
    let mut client =
        postgres::Client::connect(&schema.url, postgres::NoTls).unwrap_or_else(|e| panic!("{e}"));
    let windows: Vec<i64> = client
        .query(
            "SELECT DISTINCT window_id FROM llm_cost_budget_accounts ORDER BY window_id",
            &[],
        )
        .unwrap_or_else(|e| panic!("{e}"))
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(windows, [FIRST_DAY + 3, FIRST_DAY + 4]);
    assert_eq!(forgotten, 9);
    assert_the_accounts_of_the_last_day(&schema.url, &cost_store::BudgetOptions::default());
}

#[test]
fn two_processes_racing_on_one_user_budget_in_redis_never_over_admit() {
    let Some(mut redis) = RedisPrefix::create("race") else {
        return;
    };
    let admitted = race(&redis.url, &redis.prefix);
    // 160 attempts of $0.01 against $1.00: exactly 100 admitted, never one more.
    assert_eq!(admitted.iter().sum::<u32>(), 100, "{admitted:?}");
    let account = format!(
        "{}:budget:14:per_user_daily:{FIRST_DAY}:racer",
        redis.prefix
    );
    let (spent, reserved) = redis.figures(&account);
    assert_eq!(
        (spent.as_deref(), reserved.as_deref()),
        (Some("1"), Some("0")),
        "{admitted:?}"
    );
}

#[test]
fn through_the_layer_a_daily_budget_in_redis_holds_across_a_restart() {
    let Some(redis) = RedisPrefix::create("restart") else {
        return;
    };
    // Admitted while spent + 0.015 ≤ 0.05, settled at 0.01 each: four calls (0.04).
    assert_eq!(program_with(&redis.url, redis.options()), 4);
    // Restarted, the same day: Redis remembers $0.04; 0.04 + 0.015 > 0.05.
    assert_eq!(program_with(&redis.url, redis.options()), 0);
    // Another program, under another prefix, has budgets of its own.
    let other = RedisPrefix::create("restart_other").unwrap_or_else(|| panic!("Redis went away"));
    assert_eq!(program_with(&other.url, other.options()), 4);
}

#[test]
fn a_redis_account_that_is_not_exact_decimal_text_is_never_read_as_zero() {
    let Some(mut redis) = RedisPrefix::create("corrupt") else {
        return;
    };
    let (_accounts, book) = accounts_and_book(&redis.url, redis.options());
    let account = format!("{}:budget:14:per_user_daily:{FIRST_DAY}:hana", redis.prefix);
    let _: () = redis::cmd("HSET")
        .arg(&account)
        .arg("spent")
        .arg("0.5e")
        .query(&mut redis.admin)
        .unwrap_or_else(|e| panic!("{e}"));
    let refused = book
        .reserve(&keys("hana", 1), usd("0.1"))
        .err()
        .unwrap_or_else(|| panic!("a corrupt account was read as zero"));
    let why = refused.unavailable().unwrap_or_default().to_owned();
    assert!(why.contains(&account), "{why}");
}

#[test]
fn redis_accounts_of_budgets_whose_names_hold_colons_stay_apart() {
    let Some(mut redis) = RedisPrefix::create("colons") else {
        return;
    };
    let accounts =
        cost_store::budgets_with(&redis.url, redis.options()).unwrap_or_else(|e| panic!("{e}"));
    // Joined by `:` alone, both would be `a:1:2:k`.
    let first = cost_layer::cost_core::budget::SharedKey {
        budget: "a",
        key: "2:k",
        window: 1,
    };
    let second = cost_layer::cost_core::budget::SharedKey {
        budget: "a:1",
        key: "k",
        window: 2,
    };
    let limit = usd("1");
    assert_eq!(accounts.try_reserve(first, limit, limit), Ok(()));
    assert_eq!(accounts.try_reserve(second, limit, limit), Ok(()));
    assert_eq!(
        redis
            .figures(&format!("{}:budget:1:a:1:2:k", redis.prefix))
            .1
            .as_deref(),
        Some("1")
    );
    assert_eq!(
        redis
            .figures(&format!("{}:budget:3:a:1:2:k", redis.prefix))
            .1
            .as_deref(),
        Some("1")
    );
}

#[test]
fn redis_forgets_the_accounts_of_days_past() {
    let Some(mut redis) = RedisPrefix::create("forget") else {
        return;
    };
    let forgotten = five_days_of_calls_with(&redis.url, redis.options());
    assert_eq!(forgotten, 9);
    // Left: the last two days' accounts of three users and their indexes.
    let p = redis.prefix.clone();
    let mut expected = vec![format!("{p}:budget-windows:14:per_user_daily")];
    for day in [FIRST_DAY + 3, FIRST_DAY + 4] {
        expected.push(format!("{p}:budget-accounts:14:per_user_daily:{day}"));
        for user in ["alice", "bob", "carol"] {
            expected.push(format!("{p}:budget:14:per_user_daily:{day}:{user}"));
        }
    }
    expected.sort();
    // And the number of the last transaction the accounts applied, a key for each of their
    // two connections (reservations, settlements).
    let transaction_key = format!("{p}:last-transaction:");
    let (transactions, accounts): (Vec<String>, Vec<String>) = redis
        .keys()
        .into_iter()
        .partition(|key| key.starts_with(&transaction_key));
    assert_eq!(accounts, expected);
    assert_eq!(transactions.len(), 2, "{transactions:?}");
    assert_the_accounts_of_the_last_day(&redis.url, &redis.options());
}

#[test]
fn budgets_in_redis_over_tls_hold_and_trust_only_the_certificate_authorities_given() {
    let Some(tls) = common::TlsRedis::start(
        "budgets_in_redis_over_tls_hold_and_trust_only_the_certificate_authorities_given",
    ) else {
        return;
    };
    let options = cost_store::BudgetOptions {
        tls_root_certificates: Some(tls.ca_file.clone()),
        ..cost_store::BudgetOptions::default()
    };
    // Admitted while spent + 0.015 ≤ 0.05, settled at 0.01 each: four calls (0.04); restarted,
    // the server remembers them.
    assert_eq!(program_with(&tls.url, options.clone()), 4);
    assert_eq!(program_with(&tls.url, options.clone()), 0);
    let read = figures(&tls.url, &options, FIRST_DAY);
    assert_eq!(read, [("erin".to_owned(), usd("0.04"), usd("0"))]);
    // The system's authorities do not know this server's: refused, never connected unchecked.
    let unknown = cost_store::budgets(&tls.url).err().map(|e| e.to_string());
    assert!(
        unknown.as_deref().is_some_and(
            |e| e.starts_with("Redis rediss://127.0.0.1:") && e.contains("UnknownIssuer")
        ),
        "{unknown:?}"
    );
    // A file of authorities that cannot be read is named.
    let missing = cost_store::BudgetOptions {
        tls_root_certificates: Some(tls.ca_file.with_file_name("no-such-ca.pem")),
        ..cost_store::BudgetOptions::default()
    };
    let refused = cost_store::budgets_with(&tls.url, missing).err();
    assert!(
        matches!(&refused, Some(cost_store::StoreError::Tls { message, .. }) if message.contains("no-such-ca.pem")),
        "{refused:?}"
    );
    // Authorities given with a plain redis:// address: refused, never connected in the clear.
    let plain = tls.url.replacen("rediss://", "redis://", 1);
    let refused = cost_store::budgets_with(&plain, options).err();
    assert!(
        matches!(&refused, Some(cost_store::StoreError::Tls { message, .. }) if message.contains("address without TLS (use rediss://)")),
        "{refused:?}"
    );
}

#[test]
fn budgets_in_redis_over_mutual_tls_present_the_client_certificate_given() {
    let Some(tls) = common::TlsRedis::start_requiring_client_certificates(
        "budgets_in_redis_over_mutual_tls_present_the_client_certificate_given",
    ) else {
        return;
    };
    let options = cost_store::BudgetOptions {
        tls_root_certificates: Some(tls.ca_file.clone()),
        tls_client_identity: Some(tls.client.clone()),
        ..cost_store::BudgetOptions::default()
    };
    // With the certificate the server's authority signed: admitted and remembered.
    assert_eq!(program_with(&tls.url, options.clone()), 4);
    let accounts = cost_store::budget_accounts(&tls.url, &options, "per_user_daily", NOW / 86_400)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(accounts.len(), 1);
    // Without one, or with one another authority signed, the server refuses the connection.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let stranger = common::write_certificates(dir.path());
    for identity in [
        None,
        Some(cost_store::TlsClientIdentity {
            certificate: stranger.client_cert.clone(),
            key: stranger.client_key.clone(),
        }),
    ] {
        let refused = cost_store::budget_accounts(
            &tls.url,
            &cost_store::BudgetOptions {
                tls_client_identity: identity.clone(),
                ..options.clone()
            },
            "per_user_daily",
            NOW / 86_400,
        );
        assert!(
            matches!(&refused, Err(cost_store::StoreError::Redis { .. })),
            "{identity:?}: {refused:?}"
        );
    }
    // A key that cannot be read is named; a certificate given with a plain redis:// address
    // is refused, never connected in the clear.
    let unreadable = cost_store::BudgetOptions {
        tls_client_identity: Some(cost_store::TlsClientIdentity {
            certificate: tls.client.certificate.clone(),
            key: tls.client.key.with_file_name("no-such.key"),
        }),
        ..options.clone()
    };
    let refused = cost_store::budgets_with(&tls.url, unreadable).err();
    assert!(
        matches!(&refused, Some(cost_store::StoreError::Tls { message, .. }) if message.contains("client key") && message.contains("no-such.key")),
        "{refused:?}"
    );
    let plain = tls.url.replacen("rediss://", "redis://", 1);
    let refused = cost_store::budgets_with(
        &plain,
        cost_store::BudgetOptions {
            tls_root_certificates: None,
            ..options
        },
    )
    .err();
    assert!(
        matches!(&refused, Some(cost_store::StoreError::Tls { message, .. }) if message.contains("a client certificate is given for an address without TLS")),
        "{refused:?}"
    );
}

#[test]
fn a_rediss_url_to_a_server_without_tls_fails_naming_redis_not_taken_for_a_file() {
    let refused = cost_store::budgets("rediss://127.0.0.1:6379/").err();
    assert!(
        matches!(refused, Some(cost_store::StoreError::Redis { .. })),
        "{refused:?}"
    );
    // No SQLite file was made under the URL's name.
    let here = std::env::current_dir().unwrap_or_else(|e| panic!("{e}"));
    assert!(!here.join("rediss:").exists());
}

#[test]
fn a_redis_url_is_refused_as_a_ledger_named_without_its_password() {
    let refused = cost_store::open("redis://:hunter2@127.0.0.1:6379/0?pass=hunter3").err();
    assert!(
        matches!(refused, Some(cost_store::StoreError::UnknownAddress(_))),
        "{refused:?}"
    );
    let message = refused.map(|e| e.to_string()).unwrap_or_default();
    assert!(
        message.contains("`redis://127.0.0.1:6379/0`") && !message.contains("hunter"),
        "{message}"
    );
}

#[test]
fn a_json_lines_file_is_refused_as_budget_accounts() {
    let (_dir, address) = common::temp_address("budgets.jsonl");
    let refused = cost_store::budgets(&address).err();
    assert!(
        matches!(refused, Some(cost_store::StoreError::UnknownAddress(_))),
        "{refused:?}"
    );
    assert!(!std::path::Path::new(&address).exists(), "no file made");
}

#[test]
fn what_a_settlement_released_is_counted_once_after_the_store_has_it() {
    let (_dir, address) = common::temp_address("budgets.sqlite");
    let (accounts, book) = accounts_and_book(&address, cost_store::BudgetOptions::default());
    // All of the day's $1.00 reserved, then settled at $0.20: once the store has the
    // settlement, exactly $0.80 is free again.
    admitted(&book, "hana", 1, "1").settle(usd("0.2"));
    assert!(accounts.flush(Duration::from_secs(10)));
    let held = admitted(&book, "hana", 2, "0.8");
    let refused = book
        .reserve(&keys("hana", 3), usd("0.01"))
        .err()
        .unwrap_or_else(|| panic!("admitted beyond the limit: the release was counted twice"));
    assert_eq!((refused.spent, refused.reserved), (usd("0.2"), usd("0.8")));
    drop(held);
    // A clean run gives up on nothing and has no error to tell.
    let stats = accounts.stats();
    assert_eq!((stats.settles_abandoned(), stats.last_error()), (0, None));
}

#[test]
fn a_settlement_the_store_refuses_for_good_holds_up_no_other() {
    let (_dir, address) = common::temp_address("budgets.sqlite");
    let (accounts, book) = accounts_and_book(&address, cost_store::BudgetOptions::default());
    let hana = admitted(&book, "hana", 1, "0.5");
    let ida = admitted(&book, "ida", 2, "0.5");
    // Another program writes what is not an amount into hana's account.
    let database = rusqlite::Connection::open(&address).unwrap_or_else(|e| panic!("{e}"));
    database
        .execute(
            "UPDATE llm_cost_budget_accounts SET spent = 'lots' WHERE key = 'hana'",
            [],
        )
        .unwrap_or_else(|e| panic!("{e}"));
    hana.settle(usd("0.3"));
    ida.settle(usd("0.2"));
    assert!(
        accounts.flush(Duration::from_secs(10)),
        "a settlement the store cannot apply held up the others"
    );
    let stats = accounts.stats();
    assert_eq!((stats.settled(), stats.settles_abandoned()), (1, 1));
    let error = stats.last_error().unwrap_or_default();
    assert!(error.contains("hana") && error.contains("lots"), "{error}");
    // ida's settlement landed: $0.20 spent, so exactly $0.80 is free again.
    let held = admitted(&book, "ida", 3, "0.8");
    let refused = refusal(&book, "ida", 4, "0.01");
    assert_eq!((refused.spent, refused.reserved), (usd("0.2"), usd("0.8")));
    drop(held);
    // hana's reservation stays booked, as for a settlement that could not be queued.
    let reserved: String = database
        .query_row(
            "SELECT reserved FROM llm_cost_budget_accounts WHERE key = 'hana'",
            [],
            |row| row.get(0),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(reserved, "0.5");
}

#[test]
fn settlements_queued_before_the_accounts_are_dropped_are_still_applied() {
    let (_dir, address) = common::temp_address("budgets.sqlite");
    let accounts = cost_store::budgets(&address).unwrap_or_else(|e| panic!("{e}"));
    // On a thread of its own, which keeps the book's handle of its latest reservation until
    // it ends: once joined, nothing holds the accounts.
    std::thread::spawn(move || {
        let book = book(accounts, Unavailable::FailClosed);
        admitted(&book, "hana", 1, "0.5").settle(usd("0.3"));
    })
    .join()
    .unwrap_or_else(|_| panic!("the calls' thread panicked"));
    // The background thread applies what was queued, then ends.
    let options = cost_store::BudgetOptions::default();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let figures = loop {
        let figures = figures(&address, &options, FIRST_DAY);
        if figures.iter().all(|(.., reserved)| reserved.is_zero())
            || std::time::Instant::now() > deadline
        {
            break figures;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(figures, [("hana".to_owned(), usd("0.3"), usd("0"))]);
}

#[test]
fn a_call_closing_never_waits_for_the_store_while_settlements_are_written() {
    let Some(mut schema) = PostgresSchema::create("close_waits") else {
        return;
    };
    let (accounts, book) = accounts_and_book(&schema.url, cost_store::BudgetOptions::default());
    let hana = admitted(&book, "hana", 1, "0.5");
    // Another program holds hana's account: the settlement's write waits for it.
    let mut other = schema.hold_budget_account("hana");
    hana.settle(usd("0.3"));
    schema.until_a_write_waits_for_a_lock();
    // Meanwhile a call closes (the layer's `on_close` settles it) on a thread of its own.
    let (closed, done) = std::sync::mpsc::channel();
    let closing = Arc::clone(&accounts);
    std::thread::spawn(move || {
        let account = cost_layer::cost_core::budget::SharedKey {
            budget: "per_user_daily",
            key: "ida",
            window: FIRST_DAY,
        };
        closing.settle(account, usd("0"), usd("0"));
        let _ = closed.send(());
    });
    let waited = done.recv_timeout(Duration::from_secs(20)).is_err();
    other
        .batch_execute("COMMIT")
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!waited, "the call's close waited for the store's write");
    assert!(accounts.flush(Duration::from_secs(30)));
    assert_eq!(accounts.stats().settled(), 2);
}

#[test]
fn a_flush_behind_a_full_queue_and_a_stuck_store_gives_up_after_its_timeout() {
    let Some(mut schema) = PostgresSchema::create("flush_full") else {
        return;
    };
    let options = cost_store::BudgetOptions {
        settle_queue: 1,
        ..cost_store::BudgetOptions::default()
    };
    let (accounts, book) = accounts_and_book(&schema.url, options);
    let hana = admitted(&book, "hana", 1, "0.5");
    let ida = admitted(&book, "ida", 2, "0.5");
    // The queue of one is empty (the first reservation queued the day's forget).
    assert!(accounts.flush(Duration::from_secs(10)));
    let mut other = schema.hold_budget_account("hana");
    // hana's settlement waits for the account; ida's fills the queue behind it.
    hana.settle(usd("0.3"));
    schema.until_a_write_waits_for_a_lock();
    ida.settle(usd("0.2"));
    let (flushed, answer) = std::sync::mpsc::channel();
    let flushing = Arc::clone(&accounts);
    std::thread::spawn(move || {
        let _ = flushed.send(flushing.flush(Duration::from_millis(100)));
    });
    let answered = answer.recv_timeout(Duration::from_secs(20));
    other
        .batch_execute("COMMIT")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        answered,
        Ok(false),
        "the flush did not give up after its timeout"
    );
    assert!(accounts.flush(Duration::from_secs(30)));
    assert_eq!(accounts.stats().settled(), 2);
}

#[test]
fn a_reservation_on_an_account_another_program_keeps_locked_fails_as_unavailable() {
    let Some(schema) = PostgresSchema::create("locked_account") else {
        return;
    };
    let (accounts, book) = accounts_and_book(&schema.url, cost_store::BudgetOptions::default());
    let book = Arc::new(book);
    drop(admitted(&book, "hana", 1, "0.1"));
    // Its release applied first: the settlement thread, which takes turns with the reservations,
    // is not itself waiting for the lock below (the reservation would then wait for its turn
    // too, and run past its timeout instead of meeting the lock's).
    assert!(accounts.flush(Duration::from_secs(30)));
    let mut other = schema.hold_budget_account("hana");
    let (answered, answer) = std::sync::mpsc::channel();
    let reserving = Arc::clone(&book);
    std::thread::spawn(move || {
        let refused = reserving
            .reserve(&keys("hana", 2), usd("0.1"))
            .err()
            .map(|refused| refused.unavailable().map(str::to_owned));
        let _ = answered.send(refused);
    });
    let refused = answer.recv_timeout(Duration::from_secs(60));
    other
        .batch_execute("ROLLBACK")
        .unwrap_or_else(|e| panic!("{e}"));
    let why = refused
        .unwrap_or_else(|_| panic!("the reservation waited for the other program's transaction"))
        .unwrap_or_else(|| panic!("admitted on a locked account"))
        .unwrap_or_else(|| panic!("refused, but not as unavailable"));
    assert!(why.contains("lock timeout"), "{why}");
    // Once the account is free again, reservations go through.
    assert!(book.reserve(&keys("hana", 3), usd("0.1")).is_ok());
}

#[test]
fn a_batch_settling_one_account_twice_and_one_without_a_row_is_applied_whole_in_postgres() {
    let Some(schema) = PostgresSchema::create("batch") else {
        return;
    };
    let (accounts, book) = accounts_and_book(&schema.url, cost_store::BudgetOptions::default());
    let first = admitted(&book, "hana", 1, "0.3");
    let second = admitted(&book, "hana", 2, "0.3");
    let ida = admitted(&book, "ida", 3, "0.5");
    assert!(accounts.flush(Duration::from_secs(10)));
    // Queued together, so the background thread most likely takes them as one batch: hana
    // twice, ida once, and an account no reservation made a row for (its window forgotten
    // while the call ran, say).
    first.settle(usd("0.1"));
    second.settle(usd("0.25"));
    ida.settle(usd("0.000000000000000000000001"));
    let lost = cost_layer::cost_core::budget::SharedKey {
        budget: "per_user_daily",
        key: "jo",
        window: FIRST_DAY,
    };
    accounts.settle(lost, usd("0.2"), usd("0.2"));
    assert!(accounts.flush(Duration::from_secs(10)));
    assert_eq!(accounts.stats().settled(), 4);
    assert_eq!(
        figures(
            &schema.url,
            &cost_store::BudgetOptions::default(),
            FIRST_DAY
        ),
        [
            ("hana".to_owned(), usd("0.35"), usd("0")),
            (
                "ida".to_owned(),
                usd("0.000000000000000000000001"),
                usd("0")
            ),
            ("jo".to_owned(), usd("0.2"), usd("0")),
        ]
    );
}

#[test]
fn a_postgres_account_is_made_by_the_first_reservation_that_fits_and_by_no_other() {
    let Some(schema) = PostgresSchema::create("first_fit") else {
        return;
    };
    let (accounts, book) = accounts_and_book(&schema.url, cost_store::BudgetOptions::default());
    let read = || {
        figures(
            &schema.url,
            &cost_store::BudgetOptions::default(),
            FIRST_DAY,
        )
    };
    // Above the limit on an account that does not exist yet: refused, and no account made.
    let refused = refusal(&book, "kai", 1, "1.01");
    assert_eq!((refused.spent, refused.reserved), (usd("0"), usd("0")));
    assert_eq!(read(), []);
    // Exactly the limit fits, and makes the account; a cent more does not.
    let whole = admitted(&book, "kai", 2, "1");
    assert_eq!(read(), [("kai".to_owned(), usd("0"), usd("1"))]);
    let refused = refusal(&book, "kai", 3, "0.01");
    assert_eq!((refused.spent, refused.reserved), (usd("0"), usd("1")));
    whole.settle(usd("0.4"));
    assert!(accounts.flush(Duration::from_secs(10)));
    let held = admitted(&book, "kai", 4, "0.6");
    assert_eq!(read(), [("kai".to_owned(), usd("0.4"), usd("0.6"))]);
    drop(held);
}

#[test]
fn a_postgres_server_that_stops_answering_holds_a_reservation_no_longer_than_its_timeout() {
    let Some(schema) = PostgresSchema::create("stops_answering") else {
        return;
    };
    let proxy = FreezingProxy::to(&schema.url);
    let options = cost_store::BudgetOptions {
        reservation_timeout: Duration::from_secs(2),
        ..cost_store::BudgetOptions::default()
    };
    let (accounts, book) = accounts_and_book(&proxy.url, options.clone());
    let first = admitted(&book, "ana", 1, "0.25");
    // The server takes the next reservation and never answers: refused as unavailable once
    // the timeout is over, where the caller waited for as long as the server was stuck.
    proxy.freeze();
    let late = refusal(&book, "ana", 2, "0.50");
    let reason = late.unavailable().unwrap_or_else(|| panic!("{late}"));
    assert!(reason.contains("did not answer"), "{reason}");
    // While it stays stuck, the next are refused without waiting. (The first caller's wait
    // began a little before the round trip did: a call right after it may still wait for its
    // own timeout, and is never sent to the store.)
    let mut refused_after = 0;
    loop {
        let next = refusal(&book, "ana", 3, "0.10");
        refused_after += 1;
        let reason = next.unavailable().unwrap_or_else(|| panic!("{next}"));
        if reason.contains("has not answered") {
            break;
        }
        assert!(reason.contains("did not answer"), "{reason}");
        assert!(refused_after < 5, "never refused without waiting: {reason}");
    }
    // Answering at last, the server books the late reservation, which is released: only the
    // first stays reserved.
    proxy.thaw();
    let waiting_since = std::time::Instant::now();
    while accounts.stats().settled() < 1 {
        assert!(
            waiting_since.elapsed() < Duration::from_secs(30),
            "the late reservation was not released"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(accounts.flush(Duration::from_secs(30)));
    let day = NOW / 86_400;
    assert_eq!(
        figures(&schema.url, &options, day),
        [("ana".to_owned(), Money::ZERO, usd("0.25"))]
    );
    // And it is asked again.
    let after = admitted(&book, "ana", 4, "0.50");
    assert_eq!(
        figures(&schema.url, &options, day),
        [("ana".to_owned(), Money::ZERO, usd("0.75"))]
    );
    assert_eq!(accounts.stats().unavailable(), 1 + refused_after);
    drop((first, after));
}

/// A first call settled, then a second whose settlement batch reaches the store, lands, and has
/// its answer lost (`lose_answer` arms the proxy at `proxy`): the settlement thread sees the
/// connection cut and retries the batch; asked whether it landed, the store says it did. The
/// figures of the account after both, read at `address` with `options`.
fn settle_across_a_lost_answer(
    proxy: &FreezingProxy,
    lose_answer: fn(&FreezingProxy),
    address: &str,
    options: &cost_store::BudgetOptions,
) -> Vec<(String, Money, Money)> {
    let (accounts, book) = accounts_and_book(&proxy.url, options.clone());
    // The day's first reservation also has past days' accounts forgotten (in a transaction of
    // its own, in PostgreSQL): done before the cut.
    admitted(&book, "ana", 1, "0.30").settle(usd("0.20"));
    assert!(accounts.flush(Duration::from_secs(30)));
    let second = admitted(&book, "ana", 2, "0.30");
    // Armed after the reservation (in Redis, a transaction too).
    lose_answer(proxy);
    second.settle(usd("0.10"));
    assert!(accounts.flush(Duration::from_secs(30)));
    assert!(
        accounts.stats().failed_writes() >= 1,
        "the lost answer was noticed"
    );
    figures(address, options, NOW / 86_400)
}

#[test]
fn a_settlement_batch_whose_commit_answer_is_lost_is_applied_once_in_postgres() {
    let Some(schema) = PostgresSchema::create("lost_settle_commit") else {
        return;
    };
    let proxy = FreezingProxy::to(&schema.url);
    let options = cost_store::BudgetOptions::default();
    assert_eq!(
        settle_across_a_lost_answer(
            &proxy,
            FreezingProxy::lose_the_answer_to_the_next_commit,
            &schema.url,
            &options
        ),
        [("ana".to_owned(), usd("0.30"), Money::ZERO)]
    );
}

#[test]
fn a_reservation_whose_exec_answer_is_lost_is_released_by_the_next_in_redis() {
    let Some(redis) = RedisPrefix::create("lost_reserve_exec") else {
        return;
    };
    let proxy = FreezingProxy::to(&redis.url);
    let options = redis.options();
    let (accounts, book) = accounts_and_book(&proxy.url, options.clone());
    let first = admitted(&book, "ana", 1, "0.25");
    // The day's forgetting of past days done before the cut.
    assert!(accounts.flush(Duration::from_secs(30)));
    // The next reservation lands, its answer lost: refused as unavailable (the book fails
    // closed), and released by the reservation after it, which finds it landed.
    proxy.lose_the_answer_to_the_next_exec();
    let lost = refusal(&book, "ana", 2, "0.50");
    let reason = lost.unavailable().unwrap_or_else(|| panic!("{lost}"));
    assert!(reason.contains("Redis"), "{reason}");
    let next = admitted(&book, "ana", 3, "0.10");
    // Left booked, its $0.50 would read 0.85 reserved.
    assert_eq!(
        figures(&redis.url, &options, NOW / 86_400),
        [("ana".to_owned(), Money::ZERO, usd("0.35"))]
    );
    drop((first, next));
}

#[test]
fn a_settlement_batch_whose_exec_answer_is_lost_is_applied_once_in_redis() {
    let Some(redis) = RedisPrefix::create("lost_settle_exec") else {
        return;
    };
    let proxy = FreezingProxy::to(&redis.url);
    assert_eq!(
        settle_across_a_lost_answer(
            &proxy,
            FreezingProxy::lose_the_answer_to_the_next_exec,
            &redis.url,
            &redis.options()
        ),
        [("ana".to_owned(), usd("0.30"), Money::ZERO)]
    );
}
