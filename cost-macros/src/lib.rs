//! Procedural macros of the llm-cost workspace.
//!
//! `#[llm_call]` and `#[derive(TokenUsage)]` are expanded into calls of `cost-layer`'s hidden
//! re-exports; use them through `cost-layer`, which re-exports this crate.
