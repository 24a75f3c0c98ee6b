//! The proptest twin of the `layer_fields` fuzz target: arbitrary span trees, field values of
//! every type, closes in any order and `follows_from` links never panic the layer nor give a
//! number that is wrong on its face; and two layers in one subscriber each give what one alone
//! gives.

#[path = "support/field_ops.rs"]
mod field_ops;

use proptest::prelude::*;
use tracing_subscriber::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_span_trees_and_values_never_give_a_wrong_number(
        bytes in proptest::collection::vec(any::<u8>(), 0..768)
    ) {
        let (ledger, calls) = field_ops::run(&bytes);
        prop_assert_eq!(field_ops::check(&ledger, calls), Ok(()));
    }

    /// Two `CostLayer`s in one subscriber (one with every observer on: a cost tree, so it keeps
    /// records of plain spans, callbacks, events, budgets, a call sink; one as built by
    /// default) each keep exactly the ledger a layer alone keeps; the sink's calls add up to
    /// it, and so do the cost trees' nodes to their parents'.
    #[test]
    fn two_layers_in_one_subscriber_each_keep_the_ledger_of_a_layer_alone(
        bytes in proptest::collection::vec(any::<u8>(), 0..768)
    ) {
        prop_assert_eq!(field_ops::check_two_layers(&bytes), Ok(()));
    }

    /// More spans with a record open than the layer's table of them holds (it then looks
    /// spans up in the registry): the same ledger as with the default table.
    #[test]
    fn a_full_table_of_open_spans_changes_nothing(
        bytes in proptest::collection::vec(any::<u8>(), 0..768)
    ) {
        prop_assert_eq!(field_ops::check_small_live_table(&bytes), Ok(()));
    }

    /// Charging unpriced calls their provider's reported cost changes only those calls (random
    /// bytes seldom make a valid call with a reported cost: see the known tree below).
    #[test]
    fn charging_reported_costs_changes_only_the_unpriced_calls_that_have_one(
        bytes in proptest::collection::vec(any::<u8>(), 0..768)
    ) {
        prop_assert_eq!(field_ops::check_reported_cost_charge(&bytes), Ok(()));
    }

    /// Retention evicts closed sessions' keys, and nothing else: every other key, the global
    /// totals and the diagnostics but the eviction counts are those of a ledger keeping all.
    #[test]
    fn retention_changes_only_session_keys(
        bytes in proptest::collection::vec(any::<u8>(), 0..768)
    ) {
        use cost_layer::{Dimension, LedgerKey};
        let (all, _) = field_ops::run(&bytes);
        let one = field_ops::run_keeping_one_closed_session(&bytes);
        let (all, one) = (all.snapshot(), one.snapshot());
        prop_assert_eq!(&one.global, &all.global);
        let not_sessions = |keys: &[(LedgerKey, cost_layer::Totals)]| -> Vec<(LedgerKey, cost_layer::Totals)> {
            keys.iter()
                .filter(|(key, _)| !matches!(key, LedgerKey::One(Dimension::Session, _)))
                .cloned()
                .collect()
        };
        prop_assert_eq!(not_sessions(&one.keys), not_sessions(&all.keys));
        let (mut one_d, mut all_d) = (one.diagnostics, all.diagnostics);
        prop_assert_eq!(all_d.evictions, 0);
        one_d.evictions = 0;
        one_d.posts_to_evicted_sessions = 0;
        all_d.posts_to_evicted_sessions = 0;
        prop_assert_eq!(one_d, all_d);
    }
}

#[test]
fn a_known_tree_is_checked_for_real() {
    // Open a call (step 0, kind 2, no parent, model 0), record 1 000 input tokens as u64
    // (step 1, span 0, field 0, type 0), then 100 output tokens, then close it.
    let mut bytes = vec![0, 2, 0, 0];
    bytes.extend([1, 0, 0, 0]);
    bytes.extend(1_000_u64.to_be_bytes());
    bytes.extend([1, 0, 1, 0]);
    bytes.extend(100_u64.to_be_bytes());
    bytes.extend([2, 0]);
    let (ledger, calls) = field_ops::run(&bytes);
    assert_eq!(calls, 1);
    let global = ledger.global();
    assert_eq!(global.llm_calls, 1);
    assert_eq!(global.total_usd().to_string(), "0.0035");
    assert_eq!(field_ops::check(&ledger, calls), Ok(()));
}

#[test]
fn a_known_tree_records_the_other_kinds_for_real() {
    // A call (as above) with 1 000 input tokens, 400 of them image tokens (field byte 0xFC,
    // kind 6), and two file search calls (kind 8): gpt-4o prices image prompt tokens as text,
    // and a file search call at $0.0025.
    let mut bytes = vec![0, 2, 0, 0];
    bytes.extend([1, 0, 0, 0]);
    bytes.extend(1_000_u64.to_be_bytes());
    bytes.extend([1, 0, 0xFC, 6, 0]);
    bytes.extend(400_u64.to_be_bytes());
    bytes.extend([1, 0, 0xFC, 8, 0]);
    bytes.extend(2_u64.to_be_bytes());
    bytes.extend([2, 0]);
    let (ledger, calls) = field_ops::run(&bytes);
    let global = ledger.global();
    assert_eq!(global.llm_calls, 1);
    assert_eq!(global.usage.image_input, 400);
    assert_eq!(global.usage.file_search_calls, 2);
    assert_eq!(global.cost.file_search.to_string(), "0.005");
    assert_eq!(global.total_usd().to_string(), "0.0075");
    assert_eq!(field_ops::check(&ledger, calls), Ok(()));
    // The same call on a data-residency endpoint (kind 9, a boolean `true`): gpt-4o has no
    // factor in the embedded table, so it is unpriced.
    let mut residency = bytes[..bytes.len() - 2].to_vec();
    residency.extend([1, 0, 0xFC, 9, 4, 0, 2, 0]);
    let (ledger, calls) = field_ops::run(&residency);
    let global = ledger.global();
    assert_eq!((global.llm_calls, global.unpriced_calls), (1, 1));
    assert_eq!(field_ops::check(&ledger, calls), Ok(()));
}

#[test]
fn a_known_tree_charges_an_unpriced_call_its_reported_cost_for_real() {
    // A call of the model without a price (model byte 3) with 1 000 input and 100 output
    // tokens, and a reported cost (field byte 0xFC, field 13) of 2 US dollars as an integer;
    // then a cache hit of the same (field 6, a boolean `true`) reporting 3.
    let call = |reported: u64, hit: bool| {
        let mut bytes = vec![0, 2, 0, 3];
        bytes.extend([1, 0, 0, 0]);
        bytes.extend(1_000_u64.to_be_bytes());
        bytes.extend([1, 0, 1, 0]);
        bytes.extend(100_u64.to_be_bytes());
        bytes.extend([1, 0, 0xFC, 13, 0]);
        bytes.extend(reported.to_be_bytes());
        if hit {
            bytes.extend([1, 0, 6, 4, 0]);
        }
        bytes.extend([2, 0]);
        bytes
    };
    let mut bytes = call(2, false);
    bytes.extend(call(3, true));
    let (ledger, calls) = field_ops::run(&bytes);
    let off = ledger.global();
    assert_eq!(
        (calls, off.unpriced_calls, off.unpriced_cache_hits),
        (2, 1, 1)
    );
    assert_eq!(field_ops::check_reported_cost_charge(&bytes), Ok(()));
    let (layer, ledger) = cost_layer::CostLayer::builder()
        .charge_reported_cost_when_unpriced(true)
        .build();
    field_ops::drive(
        &bytes,
        tracing::Dispatch::new(tracing_subscriber::registry().with(layer)),
    );
    let on = ledger.global();
    assert_eq!((on.provider_reported_calls, on.unpriced_calls), (1, 0));
    assert_eq!(
        (on.total_usd().to_string(), on.cache_hit_savings.to_string()),
        ("2".to_owned(), "3".to_owned())
    );
}

/// Found by the fuzz target: 137 billion output tokens recorded as a float were accepted and
/// priced at $1.37 million; counts above 10⁹ per call are now rejected as absurd.
#[test]
fn fuzz_crash_an_absurd_count_is_rejected_not_priced() {
    let bytes = [
        0x8b, 0x16, 0x00, 0x72, 0x61, 0x00, 0x2d, 0x6e, 0x61, 0x01, 0x00, 0x00, 0x00, 0x20, 0x00,
        0x00, 0x00, 0x69,
    ];
    let (ledger, calls) = field_ops::run(&bytes);
    assert_eq!(field_ops::check(&ledger, calls), Ok(()));
    assert_eq!(ledger.global().rejected_calls, 1);
}

#[test]
fn a_known_tree_records_the_hosted_tools_and_the_search_context_size_for_real() {
    // A call of gpt-4o with 1 000 input tokens (as above), one code interpreter session
    // (field byte 0xFC, kind 11) and a search context size (kind 12, recorded as text, type 6).
    let call_with_size = |size: u8| {
        let mut bytes = vec![0, 2, 0, 0];
        bytes.extend([1, 0, 0, 0]);
        bytes.extend(1_000_u64.to_be_bytes());
        bytes.extend([1, 0, 0xFC, 11, 0]);
        bytes.extend(1_u64.to_be_bytes());
        bytes.extend([1, 0, 0xFC, 12, 6, size]);
        bytes.extend([2, 0]);
        field_ops::run(&bytes)
    };
    // "high" (text 2) is a size; "huge" (text 5) is not, and is counted.
    for (size, bad_values) in [(2, 0), (5, 1)] {
        let (ledger, calls) = call_with_size(size);
        let global = ledger.global();
        assert_eq!(global.llm_calls, 1);
        assert_eq!(global.usage.code_interpreter_sessions, 1);
        // The embedded table gives gpt-4o no price for a code interpreter session: the call is
        // unpriced, its tokens counted as such, never charged as if the session were free.
        assert_eq!((global.unpriced_calls, global.unpriced_tokens), (1, 1_000));
        assert_eq!(global.total_usd(), cost_layer::cost_core::Money::ZERO);
        assert_eq!(ledger.diagnostics().bad_field_values, bad_values);
        assert_eq!(field_ops::check(&ledger, calls), Ok(()));
    }
}
