//! LiteLLM's JSON price-file parser on arbitrary text: a table or a typed error, and a table
//! that loads prices every entry.
#![no_main]

#[allow(dead_code)]
#[path = "../../cost-core/tests/support/fuzz_bodies.rs"]
mod fuzz_bodies;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(table) = cost_core::format::litellm::parse(text, "fuzz") {
        fuzz_bodies::exercise_table(&table);
    }
});
