//! Workspace package of the llm-cost project.
//!
//! It holds no library code of its own: its `examples/` are the runnable examples users copy
//! from, and its `tests/` are the integration tests that span several crates. The library lives
//! in `cost-core` (pricing), `cost-layer` (the tracing layer), `cost-macros` and `cost-cli`.
