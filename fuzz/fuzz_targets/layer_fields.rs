//! The layer on arbitrary span trees, field values and close orders (the steps of
//! `cost-layer/tests/support/field_ops.rs`): no panic, no number wrong on its face, and two
//! layers in one subscriber (one with every observer on) each keep the ledger of a layer alone,
//! and so does a layer whose table of open spans with a record is a single bucket; charging
//! unpriced calls their provider's reported cost changes only those calls.
#![no_main]

#[path = "../../cost-layer/tests/support/field_ops.rs"]
mod field_ops;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let (ledger, calls) = field_ops::run(bytes);
    if let Err(problem) = field_ops::check(&ledger, calls) {
        panic!("{problem}");
    }
    if let Err(problem) = field_ops::check_two_layers(bytes) {
        panic!("{problem}");
    }
    if let Err(problem) = field_ops::check_small_live_table(bytes) {
        panic!("{problem}");
    }
    if let Err(problem) = field_ops::check_reported_cost_charge(bytes) {
        panic!("{problem}");
    }
});
