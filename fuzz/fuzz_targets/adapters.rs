//! The provider usage adapters on arbitrary JSON: usage or a typed error.
#![no_main]

#[allow(dead_code)]
#[path = "../../cost-core/tests/support/fuzz_bodies.rs"]
mod fuzz_bodies;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) {
        fuzz_bodies::exercise_adapters(&value);
    }
});
