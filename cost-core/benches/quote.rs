//! Benchmarks of pricing one call. Run with `cargo bench -p cost-core --bench quote`.
fn main() {}
