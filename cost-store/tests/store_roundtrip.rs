//! Any record reads back exactly from every store: texts of any characters (control characters
//! included; PostgreSQL, whose text cannot hold NUL, keeps U+FFFD in its place), span ids of all
//! 64 bits, money of any size. A count or duration above 2⁶³ − 1 fits no SQL integer column: the
//! SQL stores refuse its batch whole, with a typed error, and the JSON lines store keeps it.

mod common;

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::sync::Arc;

use common::PostgresSchema;
use cost_layer::cost_core::{
    CostBreakdown, Money, SearchContextSize, ServiceTier, TokenKind, Usage,
};
use cost_store::{CallRecord, CallStatus, Store, StoreError, TimeRange};
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..12).prop_map(|chars| chars.into_iter().collect())
}

fn shared_text() -> impl Strategy<Value = Arc<str>> {
    text().prop_map(Arc::from)
}

fn money() -> impl Strategy<Value = Money> {
    any::<i128>().prop_map(Money::from_units)
}

/// A count: mostly one a 64-bit integer column holds, sometimes any.
fn count() -> impl Strategy<Value = u64> {
    prop_oneof![15 => 0..=i64::MAX as u64, 1 => any::<u64>()]
}

fn usage() -> BoxedStrategy<Usage> {
    prop::array::uniform16(count())
        .prop_map(|n| Usage {
            input: n[0],
            cache_read: n[1],
            cache_write: n[2],
            cache_write_1h: n[3],
            output: n[4],
            reasoning: n[5],
            audio_input: n[6],
            audio_output: n[7],
            cache_read_audio: n[8],
            image_output: n[9],
            web_search_requests: n[10],
            image_input: n[11],
            cache_read_image: n[12],
            file_search_calls: n[13],
            image_generation_calls: n[14],
            code_interpreter_sessions: n[15],
        })
        // Boxed: the record's strategy, inlined whole, overflows a test thread's stack unoptimized.
        .boxed()
}

fn cost() -> BoxedStrategy<CostBreakdown> {
    prop::array::uniform16(money())
        .prop_map(|m| CostBreakdown {
            uncached_input: m[0],
            cache_read: m[1],
            cache_write: m[2],
            cache_write_1h: m[3],
            output: m[4],
            reasoning: m[5],
            cache_savings: m[6],
            audio_input: m[7],
            audio_output: m[8],
            image_output: m[9],
            web_search: m[10],
            image_input: m[11],
            file_search: m[12],
            image_generation: m[13],
            code_interpreter: m[14],
            provider_reported: m[15],
        })
        .boxed()
}

prop_compose! {
    fn call_record()(
        at_ms in 0..4_102_444_800_000_i64,
        duration_us in count(),
        name in text(),
        span_id in any::<u64>(),
        parent_span_id in any::<Option<u64>>(),
        request_model in prop::option::of(shared_text()),
        response_model in prop::option::of(shared_text()),
        model in shared_text(),
        status in prop::sample::select(CallStatus::ALL.to_vec()),
        price_table in prop::option::of(shared_text()),
        provider in prop::option::of(shared_text()),
        operation in prop::option::of(shared_text()),
        service_tier in prop::sample::select(ServiceTier::ALL.to_vec()),
        data_residency in any::<bool>(),
        search_context_size in prop::option::of(prop::sample::select(SearchContextSize::ALL.to_vec())),
        reported_cost in prop::option::of(money()),
        keys in prop::array::uniform5(prop::option::of(shared_text())),
        usage in usage(),
        cost in cost(),
        cache_hit_savings in money(),
    ) -> CallRecord {
        let [session, agent, user, org, feature] = keys;
        CallRecord {
            id: None,
            at_ms,
            duration_us,
            name: Cow::Owned(name),
            span_id,
            parent_span_id,
            request_model,
            response_model,
            model,
            status,
            price_table,
            provider,
            operation,
            service_tier,
            data_residency,
            search_context_size,
            reported_cost,
            session,
            agent,
            user,
            org,
            feature,
            usage,
            cost,
            cache_hit_savings,
            previous_cost: None,
            repriced_with: None,
        }
    }
}

/// Whether a SQL store can hold every count of `record`.
fn fits_sql(record: &CallRecord) -> bool {
    std::iter::once(record.duration_us)
        .chain(TokenKind::ALL.map(|kind| record.usage.get(kind)))
        .all(|n| i64::try_from(n).is_ok())
}

/// What PostgreSQL keeps of a text: NUL becomes U+FFFD.
fn in_postgres(record: &CallRecord) -> CallRecord {
    let swap = |text: &str| text.replace('\0', "\u{FFFD}");
    let swap_shared = |text: &Option<Arc<str>>| text.as_deref().map(|t| Arc::from(swap(t)));
    CallRecord {
        name: Cow::Owned(swap(&record.name)),
        request_model: swap_shared(&record.request_model),
        response_model: swap_shared(&record.response_model),
        model: Arc::from(swap(&record.model)),
        price_table: swap_shared(&record.price_table),
        provider: swap_shared(&record.provider),
        operation: swap_shared(&record.operation),
        session: swap_shared(&record.session),
        agent: swap_shared(&record.agent),
        user: swap_shared(&record.user),
        org: swap_shared(&record.org),
        feature: swap_shared(&record.feature),
        ..record.clone()
    }
}

/// Appends `records`, then reads back what the store holds after its first `before` records:
/// `None` when the append was refused as unstorable.
fn round_trip(
    store: &mut dyn Store,
    before: usize,
    records: &[CallRecord],
) -> Option<Vec<CallRecord>> {
    match store.append(records) {
        Ok(()) => {}
        Err(StoreError::Unstorable { .. }) => return None,
        Err(e) => panic!("{e}"),
    }
    let mut all = store
        .load(&TimeRange::ALL)
        .unwrap_or_else(|e| panic!("{e}"));
    for record in &mut all {
        record.id = None;
    }
    Some(all.split_off(before.min(all.len())))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_record_reads_back_exactly_from_json_lines_and_sqlite(
        records in prop::collection::vec(call_record(), 1..8)
    ) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("calls.jsonl");
        let mut jsonl = cost_store::open(path.to_str().unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"));
        prop_assert_eq!(round_trip(jsonl.as_mut(), 0, &records), Some(records.clone()));

        let path = dir.path().join("calls.sqlite");
        let mut sqlite = cost_store::open(path.to_str().unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"));
        let fits = records.iter().all(fits_sql);
        let back = round_trip(sqlite.as_mut(), 0, &records);
        prop_assert_eq!(back, fits.then(|| records.clone()));
        // A refused batch left nothing behind.
        let left = sqlite.load(&TimeRange::ALL).map(|r| r.len()).unwrap_or_default();
        prop_assert_eq!(left, if fits { records.len() } else { 0 });
    }
}

#[test]
fn any_record_reads_back_exactly_from_postgres() {
    let Some(schema) = PostgresSchema::create("roundtrip") else {
        return;
    };
    // One schema for every case (making one per case is slow): each case reads back what it
    // appended after what the earlier ones left.
    let store = RefCell::new(cost_store::open(&schema.url).unwrap_or_else(|e| panic!("{e}")));
    let stored = Cell::new(0);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(64));
    let outcome = runner.run(&prop::collection::vec(call_record(), 1..8), |records| {
        let back = round_trip(store.borrow_mut().as_mut(), stored.get(), &records);
        let fits = records.iter().all(fits_sql);
        if fits {
            stored.set(stored.get() + records.len());
        }
        let kept: Vec<CallRecord> = records.iter().map(in_postgres).collect();
        prop_assert_eq!(back, fits.then_some(kept));
        Ok(())
    });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}
