//! Cost accounting for LLM calls in `tracing` spans.
//!
//! Re-exports [`cost_core`] so an application depends on this crate only.

#![deny(missing_docs)]

pub use cost_core;
