//! The native TOML price-file parser on arbitrary text: a table or a typed error, and a table
//! that loads prices every entry.
#![no_main]

use cost_core::{ServiceTier, Usage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(table) = cost_core::format::native::parse(text, "fuzz") {
        for entry in table.entries() {
            for tier in ServiceTier::ALL {
                let _ = table.quote(&entry.key, &Usage::new(1_000, 100), tier);
            }
        }
    }
});
