//! The provider usage adapters on arbitrary JSON: usage or a typed error.
#![no_main]

use cost_core::adapters::{anthropic, gemini, openai};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return;
    };
    for usage in [
        openai::chat_from_json(&value),
        openai::responses_from_json(&value),
        anthropic::from_json(&value),
        gemini::from_json(&value),
    ]
    .into_iter()
    .flatten()
    {
        let _ = usage.validate();
    }
});
