//! Compile errors of `#[llm_call]`, `#[agent]`, `#[session]` and `#[derive(TokenUsage)]`,
//! checked against the `.stderr` files in `tests/ui/` (regenerate with `TRYBUILD=overwrite`
//! after an intended change).

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
