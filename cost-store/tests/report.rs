//! Reports price stored usage at the service tier each call ran at, and old databases migrate.

mod common;

use common::{record, usd};
use cost_layer::cost_core::{
    CostBreakdown, Money, PriceTable, SearchContextSize, ServiceTier, Usage,
};
use cost_store::TimeRange;
use cost_store::report;

/// gpt-4o at the batch tier: 1 000 × 1.25e-6 + 100 × 5e-6 = $0.00175.
fn batch_call() -> cost_store::CallRecord {
    let mut call = record(0, "nightly");
    call.id = Some(1);
    call.service_tier = ServiceTier::Batch;
    call.cost = CostBreakdown {
        uncached_input: usd("0.00125"),
        output: usd("0.0005"),
        ..CostBreakdown::default()
    };
    call
}

#[test]
fn reprice_keeps_each_calls_service_tier() {
    let (changes, summary) = report::reprice(&[batch_call()], &PriceTable::default());
    assert!(changes.is_empty(), "{changes:?}");
    assert_eq!(summary.unchanged, 1);
}

#[test]
fn a_reprice_that_loses_or_finds_a_price_says_its_totals_are_lower_bounds() {
    // A table that knows only a house model: the gpt-4o call loses its price, the house
    // model's call finds one.
    let table = PriceTable::from_text(
        "version = \"house\"\n[models.acme-house]\ninput = \"1\"\noutput = \"2\"\n",
        "house.toml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let priced = batch_call();
    let mut unpriced = record(0, "house");
    unpriced.id = Some(2);
    unpriced.request_model = Some("acme-house".into());
    unpriced.response_model = None;
    unpriced.model = "acme-house".into();
    unpriced.status = cost_store::CallStatus::Unpriced;
    unpriced.cost = CostBreakdown::default();
    let (changes, summary) = report::reprice(&[priced, unpriced], &table);
    assert_eq!(changes.len(), 2);
    assert_eq!((summary.newly_priced, summary.newly_unpriced), (1, 1));
    // 1 000 × 1e-6 + 100 × 2e-6 = $0.0012 for the house call; gpt-4o's cost is now unknown.
    assert_eq!(
        (summary.before, summary.after),
        (usd("0.00175"), usd("0.0012"))
    );
    assert_eq!(
        summary.to_string(),
        "2 records repriced (≥ $0.00175 → ≥ $0.0012), 0 unchanged, 0 skipped, 1 newly priced, \
         1 now without a price (their cost unknown)"
    );
}

#[test]
fn what_if_prices_at_the_tier_the_call_ran_at() {
    let (_, total) = report::what_if(&[batch_call()], &PriceTable::default(), "gpt-4o-mini")
        .unwrap_or_else(|e| panic!("{e}"));
    // gpt-4o-mini batch: 1 000 × 0.075e-6 + 100 × 0.3e-6 = $0.000105.
    assert_eq!(
        (total.actual, total.what_if),
        (usd("0.00175"), usd("0.000105"))
    );
}

#[test]
fn a_call_charged_its_reported_cost_counts_in_daily_spend_and_what_if_and_an_unpriced_one_not() {
    // 1 000 in, 100 out of a model without a price, charged $0.002 as its provider reported;
    // the same call unpriced.
    let mut charged = record(0, "gateway");
    charged.model = "acme-llm-9000".into();
    charged.status = cost_store::CallStatus::ProviderReported;
    charged.cost = CostBreakdown {
        provider_reported: usd("0.002"),
        ..CostBreakdown::default()
    };
    charged.reported_cost = Some(usd("0.002"));
    let mut unpriced = charged.clone();
    unpriced.status = cost_store::CallStatus::Unpriced;
    unpriced.cost = CostBreakdown::default();
    let records = [charged, unpriced];
    let daily = report::daily(&records, report::GroupBy::Feature);
    let spent: Vec<Money> = daily
        .values()
        .flat_map(|day| day.values().copied())
        .collect();
    assert_eq!(spent, [usd("0.002")]);
    let (_, total) = report::what_if(&records, &PriceTable::default(), "gpt-4o")
        .unwrap_or_else(|e| panic!("{e}"));
    // On gpt-4o the same usage costs $0.0035.
    assert_eq!(
        (total.calls, total.skipped, total.actual, total.what_if),
        (1, 1, usd("0.002"), usd("0.0035"))
    );
}

#[test]
fn totals_count_the_reported_cost_an_unpriced_call_kept_apart_from_the_cost() {
    // The same gateway call four ways: unpriced with its provider's figure kept, unpriced
    // without one, charged the figure, priced with it beside the table's.
    let mut kept = record(0, "gateway");
    kept.model = "acme-llm-9000".into();
    kept.status = cost_store::CallStatus::Unpriced;
    kept.cost = CostBreakdown::default();
    kept.reported_cost = Some(usd("0.002"));
    let mut without = kept.clone();
    without.reported_cost = None;
    let mut charged = kept.clone();
    charged.status = cost_store::CallStatus::ProviderReported;
    charged.cost.provider_reported = usd("0.002");
    let mut priced = record(0, "gateway");
    priced.reported_cost = Some(usd("0.003"));
    let (_, total) = report::totals(
        &[kept, without, charged, priced.clone()],
        report::GroupBy::Feature,
        None,
    );
    assert_eq!(
        (
            total.unpriced_calls,
            total.unpriced_reported_calls,
            total.unpriced_reported_cost,
            total.provider_reported_calls,
            total.reported_calls,
            total.cost,
        ),
        (2, 1, usd("0.002"), 1, 1, usd("0.002") + priced.total())
    );
}

#[test]
fn what_if_skips_a_call_with_images_the_other_model_has_no_price_for() {
    // A generated image (1 290 image tokens) priced as it ran; gpt-4o-mini has no image price.
    let mut image = record(0, "thumbnails");
    image.id = Some(3);
    image.usage.output = 1_290;
    image.usage.image_output = 1_290;
    image.cost = CostBreakdown {
        image_output: usd("0.0387"),
        ..CostBreakdown::default()
    };
    let (_, total) = report::what_if(&[image], &PriceTable::default(), "gpt-4o-mini")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((total.calls, total.skipped), (0, 1));
}

#[test]
fn what_if_skips_a_call_whose_tier_the_other_model_has_no_price_for() {
    // mistral-large-latest has no batch prices: its standard ones would compare a batch call
    // with a standard one.
    let (_, total) = report::what_if(
        &[batch_call()],
        &PriceTable::default(),
        "mistral-large-latest",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((total.calls, total.skipped), (0, 1));
    assert_eq!((total.actual, total.what_if), (usd("0"), usd("0")));
}

#[test]
fn reprice_and_what_if_keep_each_calls_data_residency() {
    // Claude Sonnet 4.5 on a regional endpoint: 10 000 × $3.30 + 1 000 × $16.50 per million,
    // stored at the list price by mistake.
    let mut regional = record(0, "residency");
    regional.id = Some(4);
    regional.model = "claude-sonnet-4-5".into();
    regional.request_model = Some("claude-sonnet-4-5@20250929".into());
    regional.response_model = None;
    regional.data_residency = true;
    regional.usage.input = 10_000;
    regional.usage.output = 1_000;
    regional.cost = CostBreakdown {
        uncached_input: usd("0.03"),
        output: usd("0.015"),
        ..CostBreakdown::default()
    };
    let (changes, summary) =
        report::reprice(std::slice::from_ref(&regional), &PriceTable::default());
    assert_eq!(summary.changed, 1, "{changes:?}");
    assert_eq!(
        (summary.before, summary.after),
        (usd("0.045"), usd("0.0495"))
    );
    // gpt-4o has no price on such an endpoint: the what-if skips the call.
    let (_, total) = report::what_if(&[regional], &PriceTable::default(), "gpt-4o")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((total.calls, total.skipped), (0, 1));
}

#[test]
fn reprice_keeps_each_calls_search_context_size() {
    // A Sonar call at high search context size (a $12 per 1 000 request fee), stored with the
    // fee at low by mistake; repriced, at high again.
    let table = PriceTable::from_text(
        "version = \"sonar\"\n[models.sonar]\ninput = \"1\"\noutput = \"1\"\nweb_search_by_context_size = { low = \"0.005\", medium = \"0.008\", high = \"0.012\" }\n",
        "sonar.toml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut searched = record(0, "search");
    searched.id = Some(5);
    searched.model = "sonar".into();
    searched.request_model = Some("sonar".into());
    searched.response_model = None;
    searched.search_context_size = Some(SearchContextSize::High);
    searched.usage = Usage {
        web_search_requests: 1,
        ..Usage::new(500, 200)
    };
    searched.cost = CostBreakdown {
        uncached_input: usd("0.0005"),
        output: usd("0.0002"),
        web_search: usd("0.005"),
        ..CostBreakdown::default()
    };
    let (changes, summary) = report::reprice(std::slice::from_ref(&searched), &table);
    assert_eq!(summary.changed, 1, "{changes:?}");
    assert_eq!(
        (summary.before, summary.after),
        (usd("0.0057"), usd("0.0127"))
    );
    // The same call stating no size: medium.
    searched.search_context_size = None;
    let (_, summary) = report::reprice(std::slice::from_ref(&searched), &table);
    assert_eq!(summary.after, usd("0.0087"));
}

#[test]
fn reprice_and_what_if_price_each_call_at_the_prices_of_its_day() {
    // gpt-4o at $2.50 / $10 per million until 2026-01-01, then at $2 / $8; another model at
    // $1 / $4 until then and $0.50 / $2 after.
    let table = PriceTable::from_text(
        r#"version = "dated"
[models.gpt-4o]
input = "2.50"
output = "10.00"
[[models.gpt-4o.changes]]
on = "2026-01-01"
input = "2.00"
output = "8.00"
[models.other]
input = "1"
output = "4"
[[models.other.changes]]
on = "2026-01-01"
input = "0.50"
output = "2"
"#,
        "dated.toml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let new_year_ms = 1_767_225_600_000; // 2026-01-01T00:00:00Z
    let mut before = record(new_year_ms - 1, "chat");
    before.id = Some(1);
    let mut after = record(new_year_ms, "chat");
    after.id = Some(2);
    let records = [before, after];
    // Both were charged 1 000 × $2.50 + 100 × $10 = $0.0035; the later one now costs
    // 1 000 × $2 + 100 × $8 = $0.0028, the earlier one is unchanged.
    let (changes, summary) = report::reprice(&records, &table);
    assert_eq!(
        changes
            .iter()
            .map(|c| (c.id, c.cost.total()))
            .collect::<Vec<_>>(),
        [(2, usd("0.0028"))]
    );
    assert_eq!(summary.unchanged, 1);
    // On the other model: 1 000 × $1 + 100 × $4 = $0.0014, then 1 000 × $0.50 + 100 × $2.
    let (_, total) = report::what_if(&records, &table, "other").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((total.calls, total.what_if), (2, usd("0.0021")));
}

#[test]
fn a_version_1_sqlite_database_is_migrated_and_its_calls_read_as_standard_without_audio() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("old.sqlite");
    {
        // The calls table as version 1 of the schema made it, with one call.
        let connection = rusqlite::Connection::open(&path).unwrap_or_else(|e| panic!("{e}"));
        let text_columns = [
            "name",
            "request_model",
            "response_model",
            "model",
            "status",
            "price_table",
            "provider",
            "operation",
            "session",
            "agent",
            "user_key",
            "org",
            "feature",
        ];
        let money = [
            "cost",
            "cost_uncached_input",
            "cost_cache_read",
            "cost_cache_write",
            "cost_cache_write_1h",
            "cost_output",
            "cost_reasoning",
            "cache_savings",
            "cache_hit_savings",
            "previous_cost",
        ];
        let integers = [
            "at_ms",
            "duration_us",
            "span_id",
            "parent_span_id",
            "input_tokens",
            "cache_read_tokens",
            "cache_write_tokens",
            "cache_write_1h_tokens",
            "output_tokens",
            "reasoning_tokens",
        ];
        let columns: Vec<String> = integers
            .iter()
            .map(|c| format!("{c} INTEGER"))
            .chain(
                text_columns
                    .iter()
                    .chain(&money)
                    .map(|c| format!("{c} TEXT")),
            )
            .chain(["repriced_with TEXT".to_owned()])
            .collect();
        connection
            .execute_batch(&format!(
                "CREATE TABLE llm_calls (id INTEGER PRIMARY KEY AUTOINCREMENT, {});
                 INSERT INTO llm_calls (at_ms, duration_us, name, span_id, model, status,
                    input_tokens, cache_read_tokens, cache_write_tokens, cache_write_1h_tokens,
                    output_tokens, reasoning_tokens, cost, cost_uncached_input, cost_cache_read,
                    cost_cache_write, cost_cache_write_1h, cost_output, cost_reasoning,
                    cache_savings, cache_hit_savings)
                 VALUES (5, 1, 'chat', 1, 'gpt-4o', 'priced', 1000, 0, 0, 0, 100, 0,
                    '0.0035', '0.0025', '0', '0', '0', '0.001', '0', '0', '0');
                 PRAGMA user_version = 1;",
                columns.join(", ")
            ))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let mut store =
        cost_store::open(path.to_str().unwrap_or_default()).unwrap_or_else(|e| panic!("{e}"));
    let calls = store
        .load(&TimeRange::ALL)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].service_tier, ServiceTier::Standard);
    assert_eq!(calls[0].total(), usd("0.0035"));
    // Calls stored before audio was kept apart had none.
    assert_eq!(
        (calls[0].usage.audio_input, calls[0].usage.audio_output),
        (0, 0)
    );
    assert_eq!(
        (calls[0].cost.audio_input, calls[0].cost.audio_output),
        (usd("0"), usd("0"))
    );
    // Nor image prompt tokens, searches, file searches (schemas 5 to 7), generated images or
    // code interpreter sessions (schema 9).
    assert_eq!(
        (
            calls[0].usage.image_input,
            calls[0].usage.cache_read_image,
            calls[0].usage.web_search_requests,
            calls[0].usage.file_search_calls,
            calls[0].usage.image_generation_calls,
            calls[0].usage.code_interpreter_sessions
        ),
        (0, 0, 0, 0, 0, 0)
    );
    assert_eq!(calls[0].cost.image_input, usd("0"));
    // And it takes new calls with their tier.
    store
        .append(&[batch_call()])
        .unwrap_or_else(|e| panic!("{e}"));
    let calls = store
        .load(&TimeRange::ALL)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(calls[1].service_tier, ServiceTier::Batch);
}

/// 2025-11-25 12:00:00 UTC, in milliseconds.
const NOON_MS: i64 = 1_764_072_000_000;

#[test]
fn every_grouping_is_read_by_its_name_and_keys_a_record_as_reports_show_it() {
    for (name, by) in report::GroupBy::ALL {
        assert_eq!(report::GroupBy::parse(name), Some(by), "{name}");
    }
    assert_eq!(report::GroupBy::parse("Day"), None);
    assert_eq!(report::GroupBy::parse("colour"), None);
    let mut call = record(NOON_MS, "support");
    call.status = cost_store::CallStatus::Unpriced;
    call.service_tier = ServiceTier::Flex;
    let keys: Vec<(&str, String)> = report::GroupBy::ALL
        .iter()
        .map(|(name, by)| (*name, by.key(&call)))
        .collect();
    assert_eq!(
        keys,
        [
            ("day", "2025-11-25"),
            ("month", "2025-11"),
            ("feature", "support"),
            ("user", "u:0123456789abcdef0123456789abcdef"),
            ("org", report::NONE),
            ("model", "gpt-4o"),
            ("provider", "openai"),
            ("operation", "chat"),
            ("tier", "flex"),
            ("session", "s-1"),
            ("agent", "planner"),
            ("status", "unpriced"),
        ]
        .map(|(name, key)| (name, key.to_owned()))
    );
}

#[test]
fn a_filter_keeps_the_records_that_meet_every_condition() {
    let mut acme = record(NOON_MS, "support");
    acme.org = Some("acme".into());
    let calls = vec![
        acme.clone(),
        record(NOON_MS, "support"),
        record(NOON_MS, "search"),
    ];
    let kept = |conditions: &[&str]| {
        let filter =
            report::Filter::parse(conditions.iter().copied()).unwrap_or_else(|e| panic!("{e}"));
        let by_apply: Vec<(String, String)> = filter
            .apply(calls.clone())
            .iter()
            .map(|c| (report::GroupBy::Feature.key(c), report::GroupBy::Org.key(c)))
            .collect();
        let by_keeps = calls.iter().filter(|c| filter.keeps(c)).count();
        assert_eq!(by_keeps, by_apply.len(), "{conditions:?}");
        by_apply
    };
    let pair = |feature: &str, org: &str| (feature.to_owned(), org.to_owned());
    assert_eq!(kept(&[]).len(), 3, "no condition keeps every record");
    assert_eq!(
        kept(&["feature=support"]),
        [pair("support", "acme"), pair("support", "(none)")]
    );
    assert_eq!(
        kept(&["feature=support", "org=(none)"]),
        [pair("support", "(none)")]
    );
    assert_eq!(kept(&["day=2025-11-25", "feature=search"]).len(), 1);
    assert_eq!(kept(&["day=2025-11-26"]), []);
    // A condition it cannot read is named, with what it could have been.
    let refused = |condition: &str| report::Filter::parse([condition]).err().unwrap_or_default();
    assert_eq!(refused("feature"), "`feature`: expected GROUPING=VALUE");
    let error = refused("colour=red");
    assert!(
        error.starts_with("`colour=red`: `colour` is none of day, month, feature,"),
        "{error}"
    );
}

#[test]
fn times_are_read_as_utc_days_or_instants_and_days_written_back() {
    let midnight = NOON_MS - 12 * 3_600_000;
    assert_eq!(report::parse_time("2025-11-25"), Some(midnight));
    assert_eq!(report::parse_time("2025-11-25T12:00:00Z"), Some(NOON_MS));
    assert_eq!(
        report::parse_time("2025-11-25T23:59:60Z"),
        Some(midnight + 86_400_000),
        "a leap second is the next day's first"
    );
    assert_eq!(
        report::parse_time("2025-11-25T01:02:03Z"),
        Some(midnight + 3_723_000)
    );
    assert_eq!(report::parse_time("1970-01-01"), Some(0));
    assert_eq!(report::parse_time("1969-12-31"), Some(-86_400_000));
    for refused in [
        "2025-11-25T12:00:00",
        "2025-11-25T24:00:00Z",
        "2025-11-25T-1:00:00Z",
        "2025-11-25T12:60:00Z",
        "2025-11-25T12:-1:00Z",
        "2025-11-25T12:00:61Z",
        "2025-11-25T12:00:-1Z",
        "2025-11-25T12:00Z",
        "2025-13-01",
        "2025-11",
        "yesterday",
    ] {
        assert_eq!(report::parse_time(refused), None, "{refused}");
    }
    assert_eq!(report::day_of(NOON_MS), "2025-11-25");
    assert_eq!(report::day_of(midnight - 1), "2025-11-24");
    assert_eq!(report::day_of(-1), "1969-12-31");
    assert_eq!(report::day_of(0), "1970-01-01");
}

#[test]
fn totals_count_each_kind_of_call_in_its_group_most_costly_first_and_days_in_date_order() {
    // Each call costs $0.0035 priced (1 000 input and 100 output tokens of gpt-4o).
    let mut with_bill = record(NOON_MS, "support");
    with_bill.reported_cost = Some(usd("0.004"));
    let mut unpriced = record(NOON_MS, "search");
    unpriced.status = cost_store::CallStatus::Unpriced;
    unpriced.cost = CostBreakdown::default();
    unpriced.reported_cost = Some(usd("0.01"));
    let mut charged = unpriced.clone();
    charged.status = cost_store::CallStatus::ProviderReported;
    charged.cost.provider_reported = usd("0.01");
    let mut rejected = record(NOON_MS, "support");
    rejected.status = cost_store::CallStatus::Rejected;
    rejected.cost = CostBreakdown::default();
    rejected.usage = Usage::default();
    let mut hit = record(NOON_MS, "other");
    hit.status = cost_store::CallStatus::CacheHit;
    hit.cost = CostBreakdown::default();
    let next_day = record(NOON_MS + 86_400_000, "support");
    let calls = [with_bill, unpriced, charged, rejected, hit, next_day];

    let (rows, total) = report::totals(&calls, report::GroupBy::Feature, None);
    let search = report::Row {
        key: "search".into(),
        calls: 2,
        unpriced_calls: 1,
        provider_reported_calls: 1,
        input_tokens: 2_000,
        output_tokens: 200,
        cost: usd("0.01"),
        unpriced_reported_calls: 1,
        unpriced_reported_cost: usd("0.01"),
        ..report::Row::default()
    };
    let support = report::Row {
        key: "support".into(),
        calls: 2,
        rejected_calls: 1,
        input_tokens: 2_000,
        output_tokens: 200,
        cost: usd("0.007"),
        reported_calls: 1,
        reported_cost: usd("0.004"),
        cost_of_reported: usd("0.0035"),
        ..report::Row::default()
    };
    let other = report::Row {
        key: "other".into(),
        cache_hits: 1,
        input_tokens: 1_000,
        output_tokens: 100,
        ..report::Row::default()
    };
    assert_eq!(rows, [search.clone(), support.clone(), other]);
    let all = report::Row {
        key: "total".into(),
        calls: 4,
        unpriced_calls: 1,
        provider_reported_calls: 1,
        rejected_calls: 1,
        cache_hits: 1,
        input_tokens: 5_000,
        output_tokens: 500,
        cost: usd("0.017"),
        reported_calls: 1,
        reported_cost: usd("0.004"),
        cost_of_reported: usd("0.0035"),
        unpriced_reported_calls: 1,
        unpriced_reported_cost: usd("0.01"),
    };
    assert_eq!(total, all);
    // The first groups only; the total still covers every call.
    assert_eq!(
        report::totals(&calls, report::GroupBy::Feature, Some(2)),
        (vec![search, support], all.clone())
    );
    // Days and months in date order, though the later ones cost more.
    let later = |days: i64| record(NOON_MS + days * 86_400_000, "support");
    let spread = [later(-30), later(0), later(0), later(1), later(1), later(1)];
    let keys = |by: report::GroupBy| -> Vec<String> {
        let (rows, _) = report::totals(&spread, by, None);
        rows.into_iter().map(|row| row.key).collect()
    };
    assert_eq!(
        keys(report::GroupBy::Day),
        ["2025-10-26", "2025-11-25", "2025-11-26"]
    );
    assert_eq!(keys(report::GroupBy::Month), ["2025-10", "2025-11"]);
    let (days, _) = report::totals(&calls, report::GroupBy::Day, None);
    let days: Vec<(&str, String)> = days
        .iter()
        .map(|row| (row.key.as_str(), row.cost.to_string()))
        .collect();
    assert_eq!(
        days,
        [
            ("2025-11-25", "0.0135".to_owned()),
            ("2025-11-26", "0.0035".to_owned())
        ]
    );
    let (first_day, total) = report::totals(&calls, report::GroupBy::Day, Some(1));
    assert_eq!((first_day.len(), total), (1, all));
}

#[test]
fn what_if_compares_each_feature_apart_most_costly_first_with_what_it_left_out() {
    let table = PriceTable::default();
    let mut unpriced = record(NOON_MS, "support");
    unpriced.status = cost_store::CallStatus::Unpriced;
    unpriced.cost = CostBreakdown::default();
    let mut batch = batch_call();
    batch.feature = Some("support".into());
    let calls = [
        record(NOON_MS, "support"),
        record(NOON_MS, "support"),
        unpriced.clone(),
        unpriced,
        batch,
        record(NOON_MS, "search"),
    ];
    // What one call's usage (1 000 input, 100 output tokens) costs on mistral-large-latest.
    let one = table
        .quote(
            "mistral-large-latest",
            &Usage::new(1_000, 100),
            ServiceTier::Standard,
        )
        .unwrap_or_else(|e| panic!("{e}"))
        .total();
    let (rows, total) =
        report::what_if(&calls, &table, "mistral-large-latest").unwrap_or_else(|e| panic!("{e}"));
    let row = |key: &str, calls: u64, skipped: u64| report::WhatIfRow {
        key: key.to_owned(),
        calls,
        actual: std::iter::repeat_n(usd("0.0035"), calls as usize).sum(),
        what_if: std::iter::repeat_n(one, calls as usize).sum(),
        skipped,
    };
    // Support: two calls compared; the unpriced ones and the batch one (no batch price on
    // the other model) left out.
    assert_eq!(rows, [row("support", 2, 3), row("search", 1, 0)]);
    assert_eq!(total, row("total", 3, 3));
    assert_eq!(total.difference(), one + one + one - usd("0.0105"));
    assert_ne!(one, usd("0.0035"), "the models' prices differ");
}

#[test]
fn a_reprice_where_every_record_kept_a_known_cost_states_exact_totals() {
    let summary = report::RepriceSummary {
        changed: 3,
        unchanged: 1,
        skipped: 2,
        before: usd("0.01"),
        after: usd("0.008"),
        newly_priced: 0,
        newly_unpriced: 0,
    };
    assert_eq!(
        summary.to_string(),
        "3 records repriced ($0.01 → $0.008), 1 unchanged, 2 skipped"
    );
    let found = report::RepriceSummary {
        newly_priced: 1,
        ..summary
    };
    assert_eq!(
        found.to_string(),
        "3 records repriced (≥ $0.01 → $0.008), 1 unchanged, 2 skipped, 1 newly priced"
    );
}

#[test]
fn a_reprice_keeps_a_charge_the_provider_reported_and_charges_one_only_where_asked() {
    let table = PriceTable::default();
    let house = |id: i64, status: cost_store::CallStatus| {
        let mut call = record(NOON_MS, "gateway");
        call.id = Some(id);
        call.request_model = Some("acme-llm-9000".into());
        call.response_model = None;
        call.model = "acme-llm-9000".into();
        call.status = status;
        call.cost = CostBreakdown::default();
        call
    };
    let mut charged = house(1, cost_store::CallStatus::ProviderReported);
    charged.reported_cost = Some(usd("0.01"));
    charged.cost.provider_reported = usd("0.01");
    let mut kept = house(2, cost_store::CallStatus::Unpriced);
    kept.reported_cost = Some(usd("0.02"));
    let mut rejected = record(NOON_MS, "gateway");
    rejected.id = Some(3);
    rejected.status = cost_store::CallStatus::Rejected;
    let mut hit = rejected.clone();
    hit.id = Some(4);
    hit.status = cost_store::CallStatus::CacheHit;
    let mut without_id = kept.clone();
    without_id.id = None;
    let calls = [charged, kept, rejected, hit, without_id];

    // Neither call found a price: the charge stands, the unpriced call stays unpriced, the
    // rejected call and the cache hit are left alone, the record without an id passed over.
    let (changes, summary) = report::reprice(&calls, &table);
    assert_eq!(changes, []);
    assert_eq!(
        summary,
        report::RepriceSummary {
            unchanged: 2,
            skipped: 2,
            ..report::RepriceSummary::default()
        }
    );

    let mut repricing = report::Repricing::new(&table).charge_reported_cost_when_unpriced(true);
    calls.iter().for_each(|call| repricing.add(call));
    let (changes, summary) = repricing.finish();
    let charged_now: Vec<(i64, cost_store::CallStatus, Money, &str)> = changes
        .iter()
        .map(|c| (c.id, c.status, c.cost.provider_reported, &*c.model))
        .collect();
    assert_eq!(
        charged_now,
        [(
            2,
            cost_store::CallStatus::ProviderReported,
            usd("0.02"),
            "acme-llm-9000"
        )]
    );
    assert_eq!(changes[0].cost.total(), usd("0.02"));
    assert_eq!(
        summary,
        report::RepriceSummary {
            changed: 1,
            unchanged: 1,
            skipped: 2,
            before: Money::ZERO,
            after: usd("0.02"),
            newly_priced: 1,
            newly_unpriced: 0,
        }
    );
    assert_eq!(
        summary.to_string(),
        "1 record repriced (≥ $0 → $0.02), 1 unchanged, 2 skipped, 1 newly priced"
    );
}
