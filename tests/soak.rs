//! The soak run, short: random span trees with bad values, cache hits, unknown models and
//! panicking callbacks on two threads under retention; the ledger matches an independent
//! computation exactly. (The long run: `cargo run --release --example soak`.)

#[allow(dead_code)]
#[path = "../examples/soak.rs"]
mod soak;

#[test]
fn a_short_soak_matches_the_reference_exactly() {
    let shape = soak::Shape {
        calls: 200_000,
        sessions: 20_000,
        threads: 2,
        reports: 0,
    };
    let (expected, ledger) = soak::run(shape);
    assert_eq!(soak::check(&expected, &ledger), Vec::<String>::new());
    // Every kind of event happened, so the comparison compared something.
    assert!(expected.rejected_calls > 0 && expected.cache_hits > 0);
    assert!(expected.unpriced_calls > 0 && expected.panicking_sessions > 0);
    assert_eq!(
        expected.llm_calls + expected.rejected_calls + expected.cache_hits,
        200_000
    );
    // Retention held the closed sessions to its bound.
    assert!(ledger.diagnostics().evictions >= 20_000 - 10_000);
}
