//! `llm-cost report` and `llm-cost reprice` end to end over a SQLite ledger.

use std::borrow::Cow;
use std::process::{Command, Output};
use std::sync::Arc;

use cost_core::{Money, PriceTable, ServiceTier, Usage};
use cost_store::{CallRecord, CallStatus, TimeRange};

fn usd(text: &str) -> Money {
    Money::from_decimal(text).unwrap_or_else(|e| panic!("{e}"))
}

fn at(time: &str) -> i64 {
    cost_store::report::parse_time(time).unwrap_or_else(|| panic!("bad time {time}"))
}

/// A call priced with the embedded table (or unpriced, for a model it does not know).
fn call(time: &str, feature: &str, model: &str, input: u64, output: u64) -> CallRecord {
    let usage = Usage::new(input, output);
    let table = PriceTable::default();
    let quote = table.quote(model, &usage, ServiceTier::Standard).ok();
    CallRecord {
        id: None,
        at_ms: at(time),
        duration_us: 900_000,
        name: Cow::Borrowed("chat"),
        span_id: 1,
        parent_span_id: None,
        request_model: Some(Arc::from(model)),
        response_model: None,
        model: Arc::from(model),
        status: if quote.is_some() {
            CallStatus::Priced
        } else {
            CallStatus::Unpriced
        },
        price_table: quote.as_ref().map(|q| Arc::clone(&q.table.version)),
        provider: None,
        operation: Some(Arc::from("chat")),
        service_tier: ServiceTier::Standard,
        data_residency: false,
        search_context_size: None,
        reported_cost: None,
        session: Some(Arc::from(format!("s-{time}"))),
        agent: None,
        user: Some(Arc::from("u:alice")),
        org: None,
        feature: Some(Arc::from(feature)),
        usage,
        cost: quote.map(|q| q.priced.breakdown).unwrap_or_default(),
        cache_hit_savings: Money::ZERO,
        previous_cost: None,
        repriced_with: None,
    }
}

/// `record` with the cost its provider reported.
fn reported(mut record: CallRecord, cost: &str) -> CallRecord {
    record.reported_cost = Some(Money::from_decimal(cost).unwrap_or_else(|e| panic!("{e}")));
    record
}

/// `records` in the SQLite file `name` in `dir`; its address.
fn sqlite_ledger(dir: &tempfile::TempDir, name: &str, records: &[CallRecord]) -> String {
    let path = dir.path().join(name);
    let address = path.to_str().unwrap_or_default().to_owned();
    let mut store = cost_store::open(&address).unwrap_or_else(|e| panic!("{e}"));
    store.append(records).unwrap_or_else(|e| panic!("{e}"));
    address
}

/// Three days of calls in a SQLite file.
fn ledger(dir: &tempfile::TempDir) -> String {
    sqlite_ledger(
        dir,
        "ledger.sqlite",
        &[
            // 0.0035, and its provider said so.
            reported(
                call("2026-11-01T09:00:00Z", "support", "gpt-4o", 1_000, 100),
                "0.0035",
            ),
            call("2026-11-01T10:00:00Z", "support", "gpt-4o", 1_000, 100), // 0.0035
            call("2026-11-01T11:00:00Z", "search", "gpt-4o-mini", 2_000, 500), // 0.0006
            call("2026-11-02T09:00:00Z", "support", "gpt-4o", 1_000, 100), // 0.0035
            // Unpriced: a reported cost has no table cost to set beside.
            reported(
                call("2026-11-02T10:00:00Z", "search", "acme-llm-9000", 10, 10),
                "0.001",
            ),
            // 0.02, where its provider said 0.025.
            reported(
                call("2026-11-03T23:59:59Z", "search", "gpt-4o", 4_000, 1_000),
                "0.025",
            ),
        ],
    )
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_llm-cost"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A native price file `NAME.toml` in `dir` (version `NAME`) pricing `model` at `input` and
/// $10 output per million tokens, read on `as_of`; its path.
fn price_file(
    dir: &tempfile::TempDir,
    name: &str,
    model: &str,
    as_of: &str,
    input: &str,
) -> String {
    let path = dir.path().join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            r#"version = "{name}"
as_of = "{as_of}"
unit = "usd_per_million_tokens"

[models."{model}"]
provider = "test"
source = "https://example.invalid/pricing"
as_of = "{as_of}"
input = "{input}"
output = "10.00"
"#
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    path.to_str().unwrap_or_default().to_owned()
}

#[test]
fn totals_by_feature_as_csv_are_exact() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let db = ledger(&dir);
    let text = stdout(&run(&[
        "report", "--db", &db, "--by", "feature", "--format", "csv",
    ]));
    assert_eq!(
        text,
        "feature,calls,unpriced_calls,rejected_calls,cache_hits,input_tokens,output_tokens,cost_usd,reported_calls,reported_cost_usd,cost_of_reported_usd,provider_reported_calls,unpriced_reported_calls,unpriced_reported_cost_usd\n\
         search,3,1,0,0,6010,1510,0.0206,1,0.025,0.02,0,1,0.001\n\
         support,3,0,0,0,3000,300,0.0105,1,0.0035,0.0035,0,0,0\n\
         total,6,1,0,0,9010,1810,0.0311,2,0.0285,0.0235,0,1,0.001\n"
    );
}

#[test]
fn days_in_order_as_a_table_with_the_unpriced_marked() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let db = ledger(&dir);
    let text = stdout(&run(&["report", "--db", &db]));
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("day"), "{text}");
    assert!(
        lines[1].starts_with("2026-11-01") && lines[1].ends_with("0.0076"),
        "{text}"
    );
    assert!(
        lines[2].starts_with("2026-11-02") && lines[2].ends_with("≥ 0.0035"),
        "{text}"
    );
    assert!(
        lines[3].starts_with("2026-11-03") && lines[3].ends_with("0.02"),
        "{text}"
    );
    assert!(
        lines[5].starts_with("total") && lines[5].ends_with("≥ 0.0311"),
        "{text}"
    );
    assert!(
        text.contains("≥: 1 call had no price; its tokens are counted, its cost is unknown\n   1 of them kept the cost its provider reported, $0.001 in all, not in the cost above"),
        "{text}"
    );
    assert!(
        text.contains("reported by their providers: 2 priced calls cost $0.0285 by the providers' figures and $0.0235 by the price table (the providers' +$0.005)"),
        "{text}"
    );
}

#[test]
fn a_group_with_a_rejected_call_shows_its_cost_as_a_lower_bound() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("ledger.sqlite");
    let db = path.to_str().unwrap_or_default().to_owned();
    let mut rejected = call("2026-11-01T10:00:00Z", "search", "gpt-4o", 0, 0);
    rejected.status = CallStatus::Rejected;
    rejected.cost = Default::default();
    let mut store = cost_store::open(&db).unwrap_or_else(|e| panic!("{e}"));
    store
        .append(&[
            call("2026-11-01T09:00:00Z", "support", "gpt-4o", 1_000, 100), // 0.0035
            call("2026-11-01T09:30:00Z", "search", "gpt-4o", 1_000, 100),  // 0.0035
            rejected,
        ])
        .unwrap_or_else(|e| panic!("{e}"));
    let text = stdout(&run(&["report", "--db", &db, "--by", "feature"]));
    let ends = |key: &str| {
        text.lines()
            .find(|line| line.starts_with(key))
            .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
    };
    assert!(
        ends("search").is_some_and(|l| l.ends_with("≥ 0.0035")),
        "{text}"
    );
    assert!(
        ends("support").is_some_and(|l| l.ends_with(" 0.0035") && !l.contains('≥')),
        "{text}"
    );
    assert!(
        ends("total").is_some_and(|l| l.ends_with("≥ 0.007")),
        "{text}"
    );
    assert!(
        text.contains("≥: 1 call was rejected for invalid usage; its cost is unknown and not in the cost above"),
        "{text}"
    );
}

/// Two gpt-4o calls, both priced, in a SQLite file.
fn priced_ledger(dir: &tempfile::TempDir) -> String {
    sqlite_ledger(
        dir,
        "priced.sqlite",
        &[
            call("2026-11-01T09:00:00Z", "support", "gpt-4o", 1_000, 100), // 0.0035
            call(
                "2026-11-01T10:00:00Z",
                "a-much-longer-feature",
                "gpt-4o",
                4_000,
                1_000,
            ), // 0.02
        ],
    )
}

/// The lines of `llm-cost report ARGS…` over the two priced calls of [`priced_ledger`], checked
/// to be a table of them: the header, two rows, the rule, the total, every line as wide as the
/// rule (the first column to the left, the numbers to the right), and nothing under it.
fn priced_table(args: &[&str]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let db = priced_ledger(&dir);
    let text = stdout(&run(&[&["report", "--db", &db], args].concat()));
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 5, "{text}");
    let width = lines[3].chars().count();
    assert!(lines[3].chars().all(|c| c == '─'), "{text}");
    for line in [&lines[0], &lines[1], &lines[2], &lines[4]] {
        assert_eq!(line.chars().count(), width, "{line:?} in\n{text}");
    }
    assert!(!text.contains('≥') && !text.contains("skipped:"), "{text}");
    lines
}

#[test]
fn a_report_of_priced_calls_is_an_aligned_table_without_footnotes() {
    let lines = priced_table(&["--by", "feature"]);
    assert!(lines[1].starts_with("a-much-longer-feature  "), "{lines:?}");
    assert!(lines[2].starts_with("support  "), "{lines:?}");
    assert!(lines[2].ends_with("  0.0035"), "{lines:?}");
    assert!(
        lines[4].starts_with("total  ") && lines[4].ends_with("  0.0235"),
        "{lines:?}"
    );
}

#[test]
fn what_if_on_the_same_model_shows_no_difference_and_nothing_skipped() {
    // A zero difference has no sign.
    let lines = priced_table(&["--what-if", "gpt-4o"]);
    for line in [&lines[1], &lines[2], &lines[4]] {
        assert!(line.ends_with("  0") && !line.contains('+'), "{lines:?}");
    }
    // A call unpriced as it ran is left out of both sides, and said so under the table.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let db = ledger(&dir);
    let text = stdout(&run(&["report", "--db", &db, "--what-if", "gpt-4o"]));
    assert!(
        text.contains("\nskipped: 1 calls unpriced as they ran"),
        "{text}"
    );
}

#[test]
fn since_until_and_top_narrow_the_report() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let db = ledger(&dir);
    let json = stdout(&run(&[
        "report",
        "--db",
        &db,
        "--since",
        "2026-11-02",
        "--until",
        "2026-11-04",
        "--by",
        "model",
        "--top",
        "1",
        "--format",
        "json",
    ]));
    let document: serde_json::Value =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    let rows = document["rows"].as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["key"], "gpt-4o");
    assert_eq!(rows[0]["cost"], "0.0235");
    assert_eq!(document["total"]["cost"], "0.0235");
    assert_eq!(document["total"]["calls"], 3);
    // Of them, the one whose provider reported its cost.
    assert_eq!(
        (
            &document["total"]["reported_calls"],
            &document["total"]["reported_cost"],
            &document["total"]["cost_of_reported"]
        ),
        (
            &serde_json::json!(1),
            &serde_json::json!("0.025"),
            &serde_json::json!("0.02")
        )
    );
}

#[test]
fn what_if_prices_the_same_usage_on_another_model_per_feature() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let db = ledger(&dir);
    let output = run(&[
        "report",
        "--db",
        &db,
        "--what-if",
        "gpt-4o-mini",
        "--format",
        "csv",
    ]);
    let text = stdout(&output);
    // The embedded price was read on 2025-11-24, more than 180 days before any day this runs.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("llm-cost: warning: prices read on 2025-11-24 (")
            && stderr.contains("`gpt-4o-mini`'s among them"),
        "{stderr}"
    );
    // support: 3 × (1 000 × 0.15e-6 + 100 × 0.6e-6) = 0.00063;
    // search: 0.0006 as it ran on gpt-4o-mini, 4 000 × 0.15e-6 + 1 000 × 0.6e-6 = 0.0012.
    assert_eq!(
        text,
        "feature,calls,actual_usd,what_if_usd,difference_usd,skipped\n\
         search,2,0.0206,0.0018,-0.0188,1\n\
         support,3,0.0105,0.00063,-0.00987,0\n\
         total,5,0.0311,0.00243,-0.02867,1\n"
    );
}

#[test]
fn the_chart_is_an_svg_of_stacked_days_with_a_legend() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let db = ledger(&dir);
    let chart = dir.path().join("spend.svg");
    let chart_path = chart.to_str().unwrap_or_default();
    stdout(&run(&["report", "--db", &db, "--chart", chart_path]));
    let svg = std::fs::read_to_string(&chart).unwrap_or_default();
    assert!(svg.starts_with("<svg"), "{svg}");
    assert!(svg.trim_end().ends_with("</svg>"));
    // Legend: each model with its total, largest first.
    let gpt4o = svg.find("gpt-4o ($0.03").unwrap_or(usize::MAX);
    let mini = svg.find("gpt-4o-mini ($0.0006").unwrap_or(usize::MAX);
    assert!(gpt4o < mini && mini < usize::MAX, "{svg}");
    // One segment per day and model: 2026-11-01 has two.
    assert_eq!(svg.matches("<title>2026-11-01").count(), 2);
    assert!(svg.contains("<title>2026-11-03 gpt-4o: $0.02</title>"));
}

#[test]
fn a_call_charged_its_reported_cost_counts_and_is_repriced_once_its_model_has_a_price() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let db = dir.path().join("gateway.sqlite");
    let db = db.to_str().unwrap_or_default().to_owned();
    let mut charged = call(
        "2026-11-01T09:00:00Z",
        "gateway",
        "acme-llm-9000",
        1_000,
        100,
    );
    charged.status = CallStatus::ProviderReported;
    charged.cost.provider_reported = usd("0.002");
    cost_store::open(&db)
        .and_then(|mut store| {
            store.append(&[
                reported(charged, "0.002"),
                call("2026-11-01T10:00:00Z", "gateway", "gpt-4o", 1_000, 100), // 0.0035
            ])
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let csv = |db: &str| {
        stdout(&run(&[
            "report", "--db", db, "--by", "feature", "--format", "csv",
        ]))
    };
    // Its cost is known: in the total, and counted apart.
    assert!(
        csv(&db).ends_with("total,2,0,0,0,2000,200,0.0055,0,0,0,1,0,0\n"),
        "{}",
        csv(&db)
    );
    let table = stdout(&run(&["report", "--db", &db, "--by", "feature"]));
    assert!(
        table.contains(
            "1 call had no price and was charged the cost its provider reported (in the cost above)"
        ),
        "{table}"
    );
    // A table that still has no price for it leaves its charge as it is.
    let same = price_file(&dir, "same", "gpt-4o", "2026-11-01", "2.50");
    let unchanged = stdout(&run(&["reprice", "--db", &db, "--prices", &same]));
    assert!(unchanged.starts_with("0 records repriced"), "{unchanged}");
    // One that has a price reprices it: priced now, its provider's figure kept beside.
    let acme = price_file(&dir, "acme", "acme-llm-9000", "2026-11-01", "2.00");
    let done = stdout(&run(&["reprice", "--db", &db, "--prices", &acme]));
    assert!(
        done.starts_with("1 record repriced ($0.002 → $0.003)"),
        "{done}"
    );
    let records = cost_store::open(&db)
        .and_then(|mut s| s.load(&TimeRange::ALL))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (
            records[0].status,
            records[0].total(),
            records[0].previous_cost,
            records[0].reported_cost
        ),
        (
            CallStatus::Priced,
            usd("0.003"),
            Some(usd("0.002")),
            Some(usd("0.002"))
        )
    );
    assert!(
        csv(&db).ends_with("total,2,0,0,0,2000,200,0.0065,1,0.002,0.003,0,0,0\n"),
        "{}",
        csv(&db)
    );
}

#[test]
fn reprice_charges_unpriced_calls_their_reported_cost_only_when_asked() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let db = dir.path().join("older.sqlite");
    let db = db.to_str().unwrap_or_default().to_owned();
    // Stored by a layer that did not charge reported costs: unpriced, the figure kept beside.
    cost_store::open(&db)
        .and_then(|mut store| {
            store.append(&[
                reported(
                    call(
                        "2026-11-01T09:00:00Z",
                        "gateway",
                        "acme-llm-9000",
                        1_000,
                        100,
                    ),
                    "0.002",
                ),
                call(
                    "2026-11-01T10:00:00Z",
                    "gateway",
                    "acme-llm-9000",
                    1_000,
                    100,
                ),
            ])
        })
        .unwrap_or_else(|e| panic!("{e}"));
    // The report counts the figure the unpriced call kept, apart from the cost.
    let report = || stdout(&run(&["report", "--db", &db, "--by", "feature"]));
    let before = report();
    assert!(
        before.contains(
            "≥: 2 calls had no price; their tokens are counted, their cost is unknown\n   \
             1 of them kept the cost its provider reported, $0.002 in all, not in the cost above \
             (`llm-cost reprice --charge-reported-cost-when-unpriced` charges it)\n"
        ),
        "{before}"
    );
    let prices = &price_file(&dir, "same", "gpt-4o", "2026-11-01", "2.50");
    let plain = stdout(&run(&["reprice", "--db", &db, "--prices", prices]));
    assert!(plain.starts_with("0 records repriced"), "{plain}");
    let asked = stdout(&run(&[
        "reprice",
        "--db",
        &db,
        "--prices",
        prices,
        "--charge-reported-cost-when-unpriced",
    ]));
    assert!(
        asked.starts_with(
            "1 record repriced (≥ $0 → $0.002), 1 unchanged, 0 skipped, 1 newly priced"
        ),
        "{asked}"
    );
    let after = report();
    assert!(
        after.contains("≥: 1 call had no price") && !after.contains("kept the cost"),
        "{after}"
    );
    let records = cost_store::open(&db)
        .and_then(|mut s| s.load(&TimeRange::ALL))
        .unwrap_or_else(|e| panic!("{e}"));
    let statuses: Vec<_> = records.iter().map(|r| (r.status, r.total())).collect();
    assert_eq!(
        statuses,
        [
            (CallStatus::ProviderReported, usd("0.002")),
            (CallStatus::Unpriced, Money::ZERO)
        ]
    );
}

#[test]
fn reprice_recomputes_costs_and_keeps_the_previous_ones() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let db = ledger(&dir);
    let prices = &price_file(&dir, "fix-1", "gpt-4o", "2025-12-01", "5.00");
    let dry = stdout(&run(&[
        "reprice",
        "--db",
        &db,
        "--prices",
        prices,
        "--dry-run",
    ]));
    assert!(
        dry.starts_with("would be: 4 records repriced ($0.0305 → $0.048)"),
        "{dry}"
    );
    let output = run(&["reprice", "--db", &db, "--prices", prices]);
    let done = stdout(&output);
    assert!(done.starts_with("4 records repriced"), "{done}");
    // Both dates priced at are more than 180 days before any day this runs: one warning each.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 2, "{stderr}");
    for date in ["2025-12-01", "2025-11-24"] {
        assert!(
            stderr.contains(&format!("prices read on {date} (")),
            "{stderr}"
        );
    }
    let records = cost_store::open(&db)
        .and_then(|mut s| s.load(&TimeRange::ALL))
        .unwrap_or_else(|e| panic!("{e}"));
    let first = &records[0];
    assert_eq!(first.total(), usd("0.006"));
    assert_eq!(first.previous_cost, Some(usd("0.0035")));
    assert_eq!(first.repriced_with.as_deref(), Some("2026.11.27+fix-1"));
    // gpt-4o-mini kept its price from the embedded table; the unknown model stays unpriced.
    assert_eq!(records[2].total(), usd("0.0006"));
    assert_eq!(records[2].previous_cost, None);
    assert_eq!(records[4].status, CallStatus::Unpriced);
    let again = stdout(&run(&[
        "report", "--db", &db, "--by", "feature", "--format", "csv",
    ]));
    // Repriced, the calls whose providers reported their cost are set beside the new prices.
    assert!(
        again.contains("total,6,1,0,0,9010,1810,0.0486,2,0.0285,0.036,0,1,0.001\n"),
        "{again}"
    );
}

#[test]
fn a_bad_grouping_or_date_exits_2_with_a_message() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let db = ledger(&dir);
    for args in [
        vec!["report", "--db", db.as_str(), "--by", "colour"],
        vec!["report", "--db", db.as_str(), "--since", "yesterday"],
    ] {
        let output = run(&args);
        assert_eq!(output.status.code(), Some(2));
        let message = String::from_utf8_lossy(&output.stderr);
        assert!(message.starts_with("llm-cost: "), "{message}");
    }
}

/// Calls of two orgs, one of them at the batch tier through another provider.
fn ledger_of_orgs(dir: &tempfile::TempDir) -> String {
    let path = dir.path().join("orgs.sqlite");
    let address = path.to_str().unwrap_or_default().to_owned();
    let mut store = cost_store::open(&address).unwrap_or_else(|e| panic!("{e}"));
    let of = |org: Option<&str>, mut record: CallRecord| {
        record.org = org.map(Arc::from);
        record.provider = Some(Arc::from("openai"));
        record
    };
    let mut batch = call("2026-11-02T09:00:00Z", "search", "gpt-4o", 1_000, 100);
    batch.service_tier = ServiceTier::Batch;
    batch.provider = Some(Arc::from("azure"));
    batch.org = Some(Arc::from("acme"));
    store
        .append(&[
            of(
                Some("acme"),
                call("2026-11-01T09:00:00Z", "support", "gpt-4o", 1_000, 100),
            ), // 0.0035
            of(
                Some("acme"),
                call("2026-11-01T10:00:00Z", "search", "gpt-4o", 2_000, 200),
            ), // 0.007
            of(
                Some("globex"),
                call("2026-11-01T11:00:00Z", "support", "gpt-4o", 4_000, 400),
            ), // 0.014
            of(
                None,
                call("2026-11-02T10:00:00Z", "support", "gpt-4o", 1_000, 100),
            ), // 0.0035
            batch, // priced as recorded: 0.0035
        ])
        .unwrap_or_else(|e| panic!("{e}"));
    address
}

/// Each row's key and `cost_usd`.
fn csv_rows(text: &str) -> Vec<(String, String)> {
    let cost = text
        .lines()
        .next()
        .and_then(|header| header.split(',').position(|name| name == "cost_usd"))
        .unwrap_or_else(|| panic!("no cost_usd column in {text}"));
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let cells: Vec<&str> = line.split(',').collect();
            Some((cells.first()?.to_string(), cells.get(cost)?.to_string()))
        })
        .collect()
}

#[test]
fn totals_by_org_provider_and_tier() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let db = ledger_of_orgs(&dir);
    let by = |grouping: &str| {
        csv_rows(&stdout(&run(&[
            "report", "--db", &db, "--by", grouping, "--format", "csv",
        ])))
    };
    let pairs = |rows: &[(&str, &str)]| -> Vec<(String, String)> {
        rows.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    assert_eq!(
        by("org"),
        pairs(&[
            ("acme", "0.014"), // ties in cost: by key
            ("globex", "0.014"),
            ("(none)", "0.0035"),
            ("total", "0.0315")
        ])
    );
    assert_eq!(
        by("provider"),
        pairs(&[
            ("openai", "0.028"),
            ("azure", "0.0035"),
            ("total", "0.0315")
        ])
    );
    assert_eq!(
        by("tier"),
        pairs(&[
            ("standard", "0.028"),
            ("batch", "0.0035"),
            ("total", "0.0315")
        ])
    );
    assert_eq!(
        by("operation"),
        pairs(&[("chat", "0.0315"), ("total", "0.0315")])
    );
}

#[test]
fn calls_grouped_by_how_they_were_charged_and_the_models_a_table_lacks() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let db = ledger(&dir);
    let by_status = stdout(&run(&[
        "report", "--db", &db, "--by", "status", "--format", "csv",
    ]));
    assert!(
        by_status.contains("\npriced,5,0,0,0,9000,1800,0.0311,2,0.0285,0.0235,0,0,0\n")
            && by_status.contains("\nunpriced,1,1,0,0,10,10,0,0,0,0,0,1,0.001\n"),
        "{by_status}"
    );
    let lacking = stdout(&run(&[
        "report",
        "--db",
        &db,
        "--by",
        "model",
        "--where",
        "status=unpriced",
        "--format",
        "csv",
    ]));
    let models: Vec<&str> = lacking
        .lines()
        .skip(1)
        .filter_map(|line| line.split(',').next())
        .collect();
    assert_eq!(models, ["acme-llm-9000", "total"]);
}

#[test]
fn where_keeps_the_calls_that_meet_every_condition() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let db = ledger_of_orgs(&dir);
    let report = |conditions: &[&str]| {
        let mut args = vec![
            "report",
            "--db",
            db.as_str(),
            "--by",
            "feature",
            "--format",
            "csv",
        ];
        for condition in conditions {
            args.extend(["--where", condition]);
        }
        csv_rows(&stdout(&run(&args)))
    };
    let pairs = |rows: &[(&str, &str)]| -> Vec<(String, String)> {
        rows.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    assert_eq!(
        report(&["org=acme"]),
        pairs(&[
            ("search", "0.0105"),
            ("support", "0.0035"),
            ("total", "0.014")
        ])
    );
    assert_eq!(
        report(&["org=acme", "tier=standard"]),
        pairs(&[
            ("search", "0.007"),
            ("support", "0.0035"),
            ("total", "0.0105")
        ])
    );
    assert_eq!(
        report(&["org=(none)"]),
        pairs(&[("support", "0.0035"), ("total", "0.0035")])
    );
    assert_eq!(
        report(&["day=2026-11-02", "feature=support"]),
        pairs(&[("support", "0.0035"), ("total", "0.0035")])
    );
    assert_eq!(report(&["org=initech"]), pairs(&[("total", "0")]));

    // A condition it cannot read is a usage error that names it.
    for bad in ["org", "colour=red"] {
        let output = run(&["report", "--db", &db, "--where", bad]);
        assert_eq!(output.status.code(), Some(2), "{bad}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(&format!("`{bad}`")), "{bad}: {stderr}");
    }
}

#[test]
fn totals_by_month_split_at_midnight_utc_on_the_first() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("months.sqlite");
    let db = path.to_str().unwrap_or_default().to_owned();
    let mut store = cost_store::open(&db).unwrap_or_else(|e| panic!("{e}"));
    store
        .append(&[
            call("2026-10-31T23:59:59Z", "support", "gpt-4o", 1_000, 100), // 0.0035
            call("2026-11-01T00:00:00Z", "support", "gpt-4o", 1_000, 100), // 0.0035
            call("2026-11-30T12:00:00Z", "search", "gpt-4o", 4_000, 1_000), // 0.02
            call("2026-12-01T00:00:01Z", "search", "gpt-4o-mini", 2_000, 500), // 0.0006
        ])
        .unwrap_or_else(|e| panic!("{e}"));
    drop(store);
    let text = stdout(&run(&[
        "report", "--db", &db, "--by", "month", "--format", "csv",
    ]));
    assert_eq!(
        csv_rows(&text),
        [
            ("2026-10", "0.0035"),
            ("2026-11", "0.0235"),
            ("2026-12", "0.0006"),
            ("total", "0.0276")
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
    );
    // Months are listed in order, whatever they cost; `--where month=…` keeps one.
    let text = stdout(&run(&[
        "report",
        "--db",
        &db,
        "--by",
        "feature",
        "--where",
        "month=2026-11",
        "--format",
        "csv",
    ]));
    assert_eq!(
        csv_rows(&text),
        [
            ("search", "0.02"),
            ("support", "0.0035"),
            ("total", "0.0235")
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
    );
}

#[test]
fn a_ledger_path_that_does_not_exist_is_an_error_and_is_not_created() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let prices = price_file(&dir, "prices", "gpt-4o", "2026-11-01", "2.50");
    for file in ["ledgr.sqlite", "calls.jsonl"] {
        let path = dir.path().join(file);
        let address = path.to_str().unwrap_or_default();
        for args in [
            vec!["report", "--db", address],
            vec!["reprice", "--db", address, "--prices", &prices],
        ] {
            let output = run(&args);
            assert_eq!(output.status.code(), Some(2), "{args:?}: {output:?}");
            let said = String::from_utf8_lossy(&output.stderr);
            assert!(
                said.contains(&format!("no ledger at `{address}`")),
                "{said}"
            );
            assert!(!path.exists(), "{args:?} created {address}");
        }
    }
}

#[test]
fn a_range_that_ends_before_it_starts_is_an_error_not_an_empty_report() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let db = ledger(&dir);
    for (since, until) in [("2026-11-03", "2026-11-01"), ("2026-11-02", "2026-11-02")] {
        let output = run(&["report", "--db", &db, "--since", since, "--until", until]);
        assert_eq!(output.status.code(), Some(2), "{output:?}");
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(said.contains("is not before --until"), "{said}");
    }
    // A one-day range is one.
    let text = stdout(&run(&[
        "report",
        "--db",
        &db,
        "--since",
        "2026-11-02",
        "--until",
        "2026-11-03",
    ]));
    assert!(text.contains("2026-11-02"), "{text}");
}

#[test]
fn a_where_that_keeps_no_call_is_warned_about_not_just_reported_as_nothing() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let db = ledger(&dir);
    let warned = |filter: &str| {
        let output = run(&["report", "--db", &db, "--where", filter]);
        assert_eq!(output.status.code(), Some(0), "{output:?}");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    // A user given raw, where the ledger keeps keyed hashes.
    let said = warned("user=alice@example.com");
    assert!(
        said.contains("no call matches --where user=alice@example.com (6 calls in the range)"),
        "{said}"
    );
    assert!(said.contains("keyed hashes"), "{said}");
    // A misspelt feature.
    let said = warned("feature=serch");
    assert!(
        said.contains("no call matches --where feature=serch"),
        "{said}"
    );
    assert!(said.contains("`--by` the same grouping"), "{said}");
    // One that keeps calls says nothing.
    assert_eq!(warned("feature=search"), "");
}
