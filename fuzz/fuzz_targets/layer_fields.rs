//! The layer on arbitrary span trees, field values and close orders (the steps of
//! `cost-layer/tests/support/field_ops.rs`): no panic, no number wrong on its face, and two
//! layers in one subscriber (one with every observer on) each keep the ledger of a layer alone.
#![no_main]

#[path = "../../cost-layer/tests/support/field_ops.rs"]
mod field_ops;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let (ledger, calls) = field_ops::run(bytes);
    if let Err(problem) = field_ops::check(&ledger, calls) {
        panic!("{problem}");
    }
    let expected = ledger.snapshot();
    let two = field_ops::run_with_two_layers(bytes);
    for (which, ledger) in [("inner", &two.inner), ("outer", &two.outer)] {
        let got = ledger.snapshot();
        assert_eq!(got.global, expected.global, "{which} layer's global totals");
        assert_eq!(got.keys, expected.keys, "{which} layer's keys");
        assert_eq!(got.diagnostics, expected.diagnostics, "{which} layer's diagnostics");
    }
    let global = &expected.global;
    let (sunk, sunk_totals) = &two.sunk;
    assert_eq!(*sunk, global.llm_calls + global.rejected_calls + global.cache_hits);
    assert_eq!(sunk_totals, global, "the sink's calls");
    assert!(two.tree_problems.is_empty(), "{:?}", two.tree_problems);
});
