//! Every store keeps records exactly, returns them in order with their ids (all at once, or a
//! record at a time by `scan`), filters by time, migrates its schema once, and reprices keeping
//! the previous cost.

mod common;

use common::{PostgresSchema, record, usd};
use cost_store::{CallStatus, Repriced, Store, TimeRange};

fn exercise(store: &mut dyn Store) {
    let mut cheap = record(1_000, "search");
    cheap.cost.output = usd("0.000000000000000000000001"); // 10⁻²⁴: the last digit survives
    let batch = vec![
        record(0, "support"),
        cheap.clone(),
        record(2_000, "support"),
    ];
    store.append(&batch).unwrap_or_else(|e| panic!("{e}"));
    store
        .append(&[record(3_000, "search")])
        .unwrap_or_else(|e| panic!("{e}"));

    let all = store
        .load(&TimeRange::ALL)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(all.len(), 4);
    let ids: Vec<i64> = all.iter().filter_map(|r| r.id).collect();
    assert_eq!(ids.len(), 4);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in order: {ids:?}");
    let mut expected = batch[1].clone();
    expected.id = all[1].id;
    assert_eq!(all[1], expected, "a record reads back as written");
    assert_eq!(all[1].total(), usd("0.002500000000000000000001"));

    let middle = store
        .load(&TimeRange {
            since_ms: Some(1_000),
            until_ms: Some(3_000),
        })
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        middle.iter().map(|r| r.at_ms).collect::<Vec<_>>(),
        vec![1_000, 2_000]
    );

    // A scan hands the same records, in the same order, one at a time, and counts them.
    let mut scanned = Vec::new();
    let handed = store
        .scan(&TimeRange::ALL, &mut |record| scanned.push(record))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((handed, &scanned), (4, &all));
    let mut times = Vec::new();
    let handed = store
        .scan(
            &TimeRange {
                since_ms: Some(2_000),
                until_ms: None,
            },
            &mut |record| times.push(record.at_ms),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((handed, times), (2, vec![2_000, 3_000]));

    // Reprice twice: the first total before any reprice is kept.
    let first = all[0].id.unwrap_or_default();
    for cost in ["0.005", "0.006"] {
        let mut new = all[0].cost;
        new.output = usd(cost) - new.uncached_input;
        store
            .reprice(&[Repriced {
                id: first,
                status: CallStatus::Priced,
                cost: new,
                model: "gpt-4o".into(),
                price_table: format!("fixed-{cost}"),
            }])
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let repriced = store
        .load(&TimeRange::ALL)
        .unwrap_or_else(|e| panic!("{e}"));
    let row = repriced
        .iter()
        .find(|r| r.id == Some(first))
        .unwrap_or_else(|| panic!("record {first} gone"));
    assert_eq!(row.total(), usd("0.006"));
    assert_eq!(row.previous_cost, Some(usd("0.0035")));
    assert_eq!(row.repriced_with.as_deref(), Some("fixed-0.006"));
    assert_eq!(repriced.len(), 4);

    // A reprice writes the cost a provider reported as a component of its own, and a later
    // one by the table clears it.
    let second = all[1].id.unwrap_or_default();
    let reported = cost_core::CostBreakdown {
        provider_reported: usd("0.007"),
        ..cost_core::CostBreakdown::default()
    };
    for (status, cost) in [
        (CallStatus::ProviderReported, reported),
        (CallStatus::Priced, all[1].cost),
    ] {
        store
            .reprice(&[Repriced {
                id: second,
                status,
                cost,
                model: "gpt-4o".into(),
                price_table: "fixed".into(),
            }])
            .unwrap_or_else(|e| panic!("{e}"));
        let row = store
            .load(&TimeRange::ALL)
            .unwrap_or_else(|e| panic!("{e}"))
            .into_iter()
            .find(|r| r.id == Some(second))
            .unwrap_or_else(|| panic!("record {second} gone"));
        assert_eq!((row.status, row.cost), (status, cost));
    }
}

#[test]
fn json_lines() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("calls.jsonl");
    let mut store =
        cost_store::open(path.to_str().unwrap_or_default()).unwrap_or_else(|e| panic!("{e}"));
    exercise(store.as_mut());
    assert_eq!(store.describe(), path.display().to_string());
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        text.contains("\"output\":\"0.000000000000000000000001\""),
        "money is decimal text: {text}"
    );
}

/// A reprice of the record with `id` to a total of `total` (its output cost made up the rest).
fn repriced_to(record: &cost_store::CallRecord, id: i64, total: &str) -> Repriced {
    let mut cost = record.cost;
    cost.output = usd(total) - cost.uncached_input;
    Repriced {
        id,
        status: CallStatus::Priced,
        cost,
        model: "gpt-4o".into(),
        price_table: "fixed".into(),
    }
}

#[test]
fn a_json_lines_reprice_copies_the_lines_it_does_not_touch_as_written() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("calls.jsonl");
    let address = path.to_str().unwrap_or_default().to_owned();
    let calls: Vec<_> = (0..3).map(|i| record(i, "support")).collect();
    cost_store::open(&address)
        .and_then(|mut store| store.append(&calls))
        .unwrap_or_else(|e| panic!("{e}"));
    // The first line as another program wrote it: its keys in another order, spaced out.
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let first: serde_json::Value =
        serde_json::from_str(text.lines().next().unwrap_or_default()).unwrap_or_default();
    let mut entries: Vec<_> = first.as_object().into_iter().flatten().collect();
    entries.reverse();
    let respaced = entries
        .iter()
        .map(|(key, value)| format!("{key:?} : {value}"))
        .collect::<Vec<_>>()
        .join(" , ");
    let respaced = format!("{{ {respaced} }}");
    let rest: Vec<&str> = text.lines().skip(1).collect();
    std::fs::write(&path, format!("{respaced}\n{}\n", rest.join("\n")))
        .unwrap_or_else(|e| panic!("{e}"));

    let mut store = cost_store::open(&address).unwrap_or_else(|e| panic!("{e}"));
    store
        .reprice(&[repriced_to(&calls[2], 3, "0.01")])
        .unwrap_or_else(|e| panic!("{e}"));
    let after = std::fs::read_to_string(&path).unwrap_or_default();
    let lines: Vec<&str> = after.lines().collect();
    assert_eq!(
        (lines.len(), lines[0], lines[1]),
        (3, respaced.as_str(), rest[0])
    );
    let back = store
        .load(&TimeRange::ALL)
        .unwrap_or_else(|e| panic!("{e}"));
    let totals: Vec<_> = back.iter().map(|r| r.total()).collect();
    assert_eq!(totals, [usd("0.0035"), usd("0.0035"), usd("0.01")]);
    assert_eq!(back[2].previous_cost, Some(usd("0.0035")));
}

#[test]
fn a_json_lines_reprice_that_meets_a_corrupt_line_leaves_the_file_as_it_was() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("calls.jsonl");
    let address = path.to_str().unwrap_or_default().to_owned();
    let calls: Vec<_> = (0..2).map(|i| record(i, "support")).collect();
    let mut store = cost_store::open(&address).unwrap_or_else(|e| panic!("{e}"));
    store.append(&calls).unwrap_or_else(|e| panic!("{e}"));
    let mut text = std::fs::read_to_string(&path).unwrap_or_default();
    text.push_str("{\"at_ms\": \n");
    std::fs::write(&path, &text).unwrap_or_else(|e| panic!("{e}"));
    let refused = store.reprice(&[repriced_to(&calls[0], 1, "0.01")]);
    assert!(
        matches!(refused, Err(cost_store::StoreError::Corrupt { ref location, .. }) if location.ends_with(":3")),
        "{refused:?}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap_or_default(), text);
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.file_name())
        .collect();
    assert_eq!(left, ["calls.jsonl"], "nothing left beside the ledger");
}

/// Records in the large ledger below.
const LARGE_LEDGER: i64 = 5_000;

#[test]
fn a_json_lines_reprice_of_every_record_of_a_large_ledger_is_exact() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("calls.jsonl");
    let mut store =
        cost_store::open(path.to_str().unwrap_or_default()).unwrap_or_else(|e| panic!("{e}"));
    let n = LARGE_LEDGER;
    let calls: Vec<_> = (0..n).map(|i| record(i, "support")).collect();
    store.append(&calls).unwrap_or_else(|e| panic!("{e}"));
    // Each record i to $0.003 + i × 10⁻²⁴, in reverse order of the file.
    let updates: Vec<Repriced> = (1..=n)
        .rev()
        .map(|id| repriced_to(&calls[0], id, &format!("0.003{:021}", id - 1)))
        .collect();
    store.reprice(&updates).unwrap_or_else(|e| panic!("{e}"));
    let back = store
        .load(&TimeRange::ALL)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back.len() as i64, n);
    // n × $0.003 + (0 + 1 + … + n − 1) × 10⁻²⁴.
    let sum: cost_layer::cost_core::Money = back.iter().map(|r| r.total()).sum();
    let base: cost_layer::cost_core::Money = (0..n).map(|_| usd("0.003")).sum();
    assert_eq!(sum, base + usd(&format!("0.{:024}", n * (n - 1) / 2)));
    assert!(back.iter().all(|r| r.previous_cost == Some(usd("0.0035"))));
}

#[test]
fn json_lines_written_before_audio_images_and_hosted_tools_were_counted_read_back() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("calls.jsonl");
    let address = path.to_str().unwrap_or_default().to_owned();
    let call = record(5, "old");
    cost_store::open(&address)
        .and_then(|mut store| store.append(std::slice::from_ref(&call)))
        .unwrap_or_else(|e| panic!("{e}"));
    // The line as the store wrote it before the audio, image, search, image prompt, file search,
    // image generation and code interpreter counts existed.
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let mut line: serde_json::Value = serde_json::from_str(text.trim()).unwrap_or_default();
    for (part, keys) in [
        (
            "usage",
            &[
                "audio_input",
                "audio_output",
                "cache_read_audio",
                "image_output",
                "web_search_requests",
                "image_input",
                "cache_read_image",
                "file_search_calls",
                "image_generation_calls",
                "code_interpreter_sessions",
            ][..],
        ),
        (
            "cost",
            &[
                "audio_input",
                "audio_output",
                "image_output",
                "web_search",
                "image_input",
                "file_search",
                "image_generation",
                "code_interpreter",
                "provider_reported",
            ][..],
        ),
    ] {
        for key in keys {
            let removed = line[part].as_object_mut().and_then(|o| o.remove(*key));
            assert!(removed.is_some(), "{part}.{key} in {text}");
        }
    }
    std::fs::write(&path, format!("{line}\n")).unwrap_or_else(|e| panic!("{e}"));
    let back = cost_store::open(&address)
        .and_then(|mut store| store.load(&TimeRange::ALL))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back.len(), 1);
    assert_eq!((back[0].usage, back[0].cost), (call.usage, call.cost));
}

/// A reading command's store must exist: a misspelt path gives an error, never the empty
/// totals of a ledger made for it on the spot.
#[test]
fn a_store_that_does_not_exist_is_no_ledger_and_is_not_created_when_only_read() {
    for file in ["calls.jsonl", "calls.sqlite"] {
        let (_dir, address) = common::temp_address(file);
        let refused = cost_store::open_existing(&address).map(|store| store.describe());
        assert!(
            matches!(&refused, Err(cost_store::StoreError::NoLedger(at)) if *at == address),
            "{refused:?}"
        );
        assert!(!std::path::Path::new(&address).exists());
        // Once a program has written one, it is read.
        drop(cost_store::open(&address).unwrap_or_else(|e| panic!("{e}")));
        let mut store = cost_store::open_existing(&address).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(store.load(&TimeRange::ALL).map(|r| r.len()).ok(), Some(0));
    }
    // Budget accounts read once, the same.
    let (_dir, address) = common::temp_address("budgets.sqlite");
    let options = cost_store::BudgetOptions::default();
    let refused = cost_store::budget_accounts(&address, &options, "daily", 1);
    assert!(
        matches!(refused, Err(cost_store::StoreError::NoLedger(_))),
        "{refused:?}"
    );
    assert!(!std::path::Path::new(&address).exists());
}

#[test]
fn a_postgres_database_without_a_ledger_is_no_ledger_and_is_given_no_tables_when_only_read() {
    let Some(mut schema) = PostgresSchema::create("no_ledger") else {
        return;
    };
    let refused = cost_store::open_existing(&schema.url).map(|store| store.describe());
    assert!(
        matches!(refused, Err(cost_store::StoreError::NoLedger(_))),
        "{refused:?}"
    );
    #[cfg(feature = "postgres")]
    {
        let refused = cost_store::PostgresStore::connect_existing(&schema.url).map(|_| ());
        assert!(
            matches!(refused, Err(cost_store::StoreError::NoLedger(_))),
            "{refused:?}"
        );
    }
    let options = cost_store::BudgetOptions::default();
    let refused = cost_store::budget_accounts(&schema.url, &options, "daily", 1);
    assert!(
        matches!(refused, Err(cost_store::StoreError::NoLedger(_))),
        "{refused:?}"
    );
    assert_eq!(schema.tables(), 0);
    drop(cost_store::open(&schema.url).unwrap_or_else(|e| panic!("{e}")));
    assert!(schema.tables() > 0);
    let mut store = cost_store::open_existing(&schema.url).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(store.load(&TimeRange::ALL).map(|r| r.len()).ok(), Some(0));
}

#[test]
fn sqlite() {
    let (_dir, address) = common::temp_address("calls.sqlite");
    let mut store = cost_store::open(&address).unwrap_or_else(|e| panic!("{e}"));
    exercise(store.as_mut());
    assert_eq!(store.describe(), address);
    drop(store);
    // Reopening does not migrate again, and the data is there.
    let mut again = cost_store::open(&address).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        again
            .load(&TimeRange::ALL)
            .map(|r| r.len())
            .unwrap_or_default(),
        4
    );
}

#[test]
fn postgres() {
    let Some(schema) = PostgresSchema::create("stores") else {
        return;
    };
    let mut store = cost_store::open(&schema.url).unwrap_or_else(|e| panic!("{e}"));
    exercise(store.as_mut());
    // The server and database of the URL, without its query.
    let shown = store.describe();
    let (scheme, server) = shown.split_once("://").unwrap_or_default();
    assert!(
        schema.url.starts_with(&format!("{scheme}://"))
            && schema.url.contains(&format!("{server}?"))
            && !server.is_empty()
            && !server.contains('?'),
        "{shown} for {}",
        schema.url
    );
    let mut again = cost_store::open(&schema.url).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        again
            .load(&TimeRange::ALL)
            .map(|r| r.len())
            .unwrap_or_default(),
        4
    );
}

#[cfg(feature = "postgres")]
#[test]
fn a_postgres_server_that_does_not_answer_is_named_without_its_password() {
    // Nothing listens on port 1: the connection is refused at once.
    let refused = cost_store::open(
        "postgres://app:hunter2@127.0.0.1:1/ledger?password=hunter3&connect_timeout=5",
    )
    .err();
    assert!(
        matches!(refused, Some(cost_store::StoreError::Postgres { .. })),
        "{refused:?}"
    );
    let message = refused.map(|e| e.to_string()).unwrap_or_default();
    assert!(
        message.starts_with("PostgreSQL postgres://127.0.0.1:1/ledger: ")
            && !message.contains("hunter"),
        "{message}"
    );
}

#[cfg(feature = "postgres")]
#[test]
fn a_postgres_server_that_never_accepts_fails_after_seconds_not_minutes() {
    // A listener whose queue of connections is full: the system leaves further connection
    // requests unanswered, as a firewall or a cut network does.
    let listener = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
        .unwrap_or_else(|e| panic!("{e}"));
    let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    listener
        .bind(&loopback.into())
        .and_then(|()| listener.listen(0))
        .unwrap_or_else(|e| panic!("{e}"));
    let port = listener
        .local_addr()
        .ok()
        .and_then(|address| address.as_socket())
        .map(|address| address.port())
        .unwrap_or_else(|| panic!("no port"));
    let _queued =
        std::net::TcpStream::connect(("127.0.0.1", port)).unwrap_or_else(|e| panic!("{e}"));
    let asked = std::time::Instant::now();
    let refused = cost_store::open(&format!("postgres://app@127.0.0.1:{port}/ledger")).err();
    assert!(
        matches!(refused, Some(cost_store::StoreError::Postgres { .. })),
        "{refused:?}"
    );
    // The system's own retries would take some two minutes.
    assert!(
        asked.elapsed() < std::time::Duration::from_secs(60),
        "gave up after {:?}",
        asked.elapsed()
    );
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("future.sqlite");
    {
        let connection = rusqlite::Connection::open(&path).unwrap_or_else(|e| panic!("{e}"));
        connection
            .pragma_update(None, "user_version", 99)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let error = cost_store::open(path.to_str().unwrap_or_default())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(error.contains("schema version 99 is newer"), "{error}");
}

#[test]
fn a_sqlite_ledger_of_the_previous_schema_is_migrated_and_reads_back() {
    let (_dir, address) = common::temp_address("calls.sqlite");
    let call = record(7, "old");
    cost_store::open(&address)
        .and_then(|mut store| store.append(std::slice::from_ref(&call)))
        .unwrap_or_else(|e| panic!("{e}"));
    // The file as schema 5 left it: without the image prompt counts, the file search calls, the
    // data-residency flag, the image generation tool's images, code interpreter sessions and
    // their costs, the search context size, the reported cost and the reported cost charged.
    {
        let connection = rusqlite::Connection::open(&address).unwrap_or_else(|e| panic!("{e}"));
        for column in [
            "image_input_tokens",
            "cache_read_image_tokens",
            "cost_image_input",
            "file_search_calls",
            "cost_file_search",
            "data_residency",
            "image_generation_calls",
            "cost_image_generation",
            "code_interpreter_sessions",
            "cost_code_interpreter",
            "search_context_size",
            "reported_cost",
            "cost_provider_reported",
        ] {
            connection
                .execute(&format!("ALTER TABLE llm_calls DROP COLUMN {column}"), [])
                .unwrap_or_else(|e| panic!("{e}"));
        }
        connection
            .pragma_update(None, "user_version", 5)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let mut store = cost_store::open(&address).unwrap_or_else(|e| panic!("{e}"));
    let back = store
        .load(&TimeRange::ALL)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].usage.image_input, 0);
    assert_eq!((back[0].usage, back[0].cost), (call.usage, call.cost));
    assert!(!back[0].data_residency);
    assert_eq!(back[0].search_context_size, None);
    assert_eq!(back[0].reported_cost, None);
    // And it takes new records with image prompt tokens, hosted tools' uses, data residency, a
    // search context size and a reported cost.
    let mut edit = record(8, "new");
    edit.reported_cost = Some(usd("0.004375"));
    edit.data_residency = true;
    edit.search_context_size = Some(cost_core::SearchContextSize::High);
    edit.usage.file_search_calls = 2;
    edit.cost.file_search = cost_core::Money::from_units(9);
    edit.usage.image_generation_calls = 3;
    edit.cost.image_generation = cost_core::Money::from_units(11);
    edit.usage.code_interpreter_sessions = 1;
    edit.cost.code_interpreter = cost_core::Money::from_units(13);
    edit.usage.image_input = 40;
    edit.usage.cache_read_image = 10;
    edit.usage.cache_read = 10;
    edit.cost.image_input = cost_core::Money::from_units(7);
    store
        .append(std::slice::from_ref(&edit))
        .unwrap_or_else(|e| panic!("{e}"));
    let back = store
        .load(&TimeRange::ALL)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        back.last()
            .map(|r| (r.usage, r.cost, r.data_residency, r.search_context_size)),
        Some((
            edit.usage,
            edit.cost,
            true,
            Some(cost_core::SearchContextSize::High)
        ))
    );
    assert_eq!(
        back.last().and_then(|r| r.reported_cost),
        Some(usd("0.004375"))
    );
    // And a call of a model without a price, charged the cost its provider reported.
    takes_a_call_charged_its_reported_cost(store.as_mut(), 9);
}

/// Appends to `store` a call (at `at_ms`) of a model without a price, charged the $0.006 its
/// provider reported, and checks it reads back so.
fn takes_a_call_charged_its_reported_cost(store: &mut dyn Store, at_ms: i64) {
    let mut charged = record(at_ms, "gateway");
    charged.status = CallStatus::ProviderReported;
    charged.cost = cost_core::CostBreakdown {
        provider_reported: usd("0.006"),
        ..cost_core::CostBreakdown::default()
    };
    charged.reported_cost = Some(usd("0.006"));
    store
        .append(std::slice::from_ref(&charged))
        .unwrap_or_else(|e| panic!("{e}"));
    let back = store
        .load(&TimeRange::ALL)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        back.last().map(|r| (r.status, r.total(), r.cost)),
        Some((charged.status, usd("0.006"), charged.cost))
    );
}

#[test]
fn a_postgres_ledger_of_the_previous_schema_is_migrated_and_reads_back() {
    let Some(mut schema) = PostgresSchema::create("migrate") else {
        return;
    };
    let call = record(7, "old");
    cost_store::open(&schema.url)
        .and_then(|mut store| store.append(std::slice::from_ref(&call)))
        .unwrap_or_else(|e| panic!("{e}"));
    // The database as schema 11 left it: without the reported cost charged to unpriced calls.
    schema.execute(
        "ALTER TABLE llm_calls DROP COLUMN cost_provider_reported;
         UPDATE llm_cost_schema SET version = 11;",
    );
    let mut store = cost_store::open(&schema.url).unwrap_or_else(|e| panic!("{e}"));
    let back = store
        .load(&TimeRange::ALL)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back.len(), 1);
    assert_eq!((back[0].status, back[0].cost), (call.status, call.cost));
    // And it takes a call charged its provider's reported cost.
    takes_a_call_charged_its_reported_cost(store.as_mut(), 8);
}

#[test]
fn a_postgres_store_over_tls_checks_the_servers_certificate_and_name() {
    let Some(mut schema) = PostgresSchema::over_tls("tls") else {
        return;
    };
    // Over TLS, verified: records go in and read back, and the server says so of the connection.
    let mut store = cost_store::open(&schema.url).unwrap_or_else(|e| panic!("{e}"));
    let call = common::record(1, "tls");
    store
        .append(std::slice::from_ref(&call))
        .unwrap_or_else(|e| panic!("{e}"));
    let back = store
        .load(&TimeRange::ALL)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back.len(), 1);
    assert_eq!(schema.connections_over_tls(), Some(true));
    drop(store);
    let refused = |url: &str| {
        cost_store::open(url)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_else(|| panic!("{url} opened"))
    };
    // Another authority than the one that signed the server's certificate: refused, never
    // connected unchecked.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let other = common::write_certificates(dir.path()).ca;
    let error = refused(&format!(
        "{}&sslrootcert={}",
        common::url_without(&schema.url, &["sslrootcert"]),
        other.display()
    ));
    assert!(error.contains("UnknownIssuer"), "{error}");
    // The right authority but a name the certificate does not give (the server's address where
    // it names `localhost`): refused.
    let by_address = schema.url.replacen("@localhost:", "@127.0.0.1:", 1);
    assert_ne!(
        by_address, schema.url,
        "the TLS URL names the server localhost"
    );
    let error = refused(&by_address);
    assert!(error.contains("certificate not valid for name"), "{error}");
    // A file of authorities that cannot be read is named.
    let error = refused(&format!(
        "{}&sslrootcert=/nonexistent/ca.pem",
        common::url_without(&schema.url, &["sslrootcert"])
    ));
    assert!(error.contains("/nonexistent/ca.pem"), "{error}");
    // Authorities with a mode that does not require TLS: refused, not a connection in the clear.
    let prefer = schema.url.replace("sslmode=verify-full", "sslmode=prefer");
    assert_ne!(prefer, schema.url, "the TLS URL sets sslmode=verify-full");
    let error = refused(&prefer);
    assert!(error.contains("does not require TLS"), "{error}");
    // A client certificate and key (libpq's `sslcert`, `sslkey`) are read before connecting,
    // and presented when the server asks for one: this one does not, and connects.
    let client = common::write_certificates(dir.path());
    let with_identity = format!(
        "{}&sslcert={}&sslkey={}",
        schema.url,
        client.client_cert.display(),
        client.client_key.display()
    );
    cost_store::open(&with_identity)
        .and_then(|mut store| store.load(&TimeRange::ALL))
        .unwrap_or_else(|e| panic!("{e}"));
    let error = refused(&format!(
        "{}&sslcert={}&sslkey=/nonexistent/client.key",
        schema.url,
        client.client_cert.display()
    ));
    assert!(error.contains("/nonexistent/client.key"), "{error}");
}

#[test]
fn a_sqlite_row_that_cannot_be_a_record_is_refused_naming_its_column() {
    // A ledger of one call, one of its columns then changed by hand: `None` when it reads.
    let refusal = |change: &str| {
        let (_dir, address) = common::temp_address("calls.sqlite");
        cost_store::open(&address)
            .and_then(|mut store| store.append(&[record(7, "support")]))
            .unwrap_or_else(|e| panic!("{e}"));
        let connection = rusqlite::Connection::open(&address).unwrap_or_else(|e| panic!("{e}"));
        connection
            .execute_batch(&format!("UPDATE llm_calls SET {change}"))
            .unwrap_or_else(|e| panic!("{e}"));
        match cost_store::open(&address).and_then(|mut store| store.load(&TimeRange::ALL)) {
            Err(error @ cost_store::StoreError::Corrupt { .. }) => Some(error.to_string()),
            Err(other) => panic!("{change}: {other}"),
            Ok(_) => None,
        }
    };
    for (change, named) in [
        ("output_tokens = -5", "output_tokens is negative"),
        ("cache_read_tokens = -1", "cache_read_tokens is negative"),
        ("cost_output = '1.2.3'", "cost_output: "),
        ("cost_cache_read = 'abc'", "cost_cache_read: "),
    ] {
        let error = refusal(change).unwrap_or_else(|| panic!("{change}: read as a record"));
        assert!(error.contains(named), "{change}: {error}");
    }
    assert_eq!(
        refusal("output_tokens = 5"),
        None,
        "a change that fits reads"
    );
}
