//! Anthropic Messages usage: `input_tokens` excludes cache reads and writes, so the inclusive
//! input is the sum of the three.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{AdapterError, checked, count, usage_object};
use crate::token_usage::TokenUsage;
use crate::usage::Usage;

/// `usage` of a Messages response.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MessagesUsage {
    /// Prompt tokens after the last cache breakpoint (neither read nor written).
    pub input_tokens: u64,
    /// Prompt tokens written to the cache (5-minute and 1-hour together).
    pub cache_creation_input_tokens: u64,
    /// Prompt tokens read from the cache.
    pub cache_read_input_tokens: u64,
    /// Completion tokens (thinking included).
    pub output_tokens: u64,
    /// The split of the cache writes by lifetime, when the API gives it.
    pub cache_creation: Option<CacheCreation>,
    /// The service tier that served the call (`standard`, `priority`, `batch`), when given.
    pub service_tier: Option<String>,
}

/// `usage.cache_creation`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CacheCreation {
    /// Written with the 5-minute lifetime.
    pub ephemeral_5m_input_tokens: u64,
    /// Written with the 1-hour lifetime.
    pub ephemeral_1h_input_tokens: u64,
}

/// A Messages response, reduced to what pricing needs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Message {
    /// The model that answered.
    pub model: String,
    /// Its usage.
    pub usage: MessagesUsage,
}

/// Converts the exclusive counts; a split that does not cover every write leaves the rest at
/// the 5-minute lifetime (the default). Sums saturate: counts that large are absurd, and
/// validation refuses them, where a wrapped sum would pass for a real count.
fn convert(input: u64, read: u64, written: u64, split: Option<(u64, u64)>) -> Usage {
    let (write_5m, write_1h) = match split {
        Some((five, hour)) if five.saturating_add(hour) > 0 => (
            written.max(five.saturating_add(hour)).saturating_sub(hour),
            hour,
        ),
        _ => (written, 0),
    };
    Usage {
        input: input
            .saturating_add(read)
            .saturating_add(write_5m)
            .saturating_add(write_1h),
        cache_read: read,
        cache_write: write_5m,
        cache_write_1h: write_1h,
        ..Usage::default()
    }
}

impl MessagesUsage {
    /// The inclusive usage.
    pub fn to_usage(&self) -> Usage {
        Usage {
            output: self.output_tokens,
            ..convert(
                self.input_tokens,
                self.cache_read_input_tokens,
                self.cache_creation_input_tokens,
                self.cache_creation
                    .as_ref()
                    .map(|c| (c.ephemeral_5m_input_tokens, c.ephemeral_1h_input_tokens)),
            )
        }
    }
}

impl TokenUsage for MessagesUsage {
    fn token_usage(&self) -> Option<Usage> {
        Some(self.to_usage())
    }

    fn service_tier(&self) -> Option<&str> {
        self.service_tier.as_deref()
    }
}

impl TokenUsage for Message {
    fn token_usage(&self) -> Option<Usage> {
        Some(self.usage.to_usage())
    }

    fn response_model(&self) -> Option<&str> {
        Some(self.model.as_str()).filter(|m| !m.is_empty())
    }

    fn service_tier(&self) -> Option<&str> {
        self.usage.service_tier.as_deref()
    }
}

/// Reads a Messages response (or a `message_delta` event) or its `usage` object.
pub fn from_json(value: &Value) -> Result<Usage, AdapterError> {
    let usage = usage_object(value, "usage", "input_tokens")?;
    let split = usage.get("cache_creation").filter(|c| c.is_object());
    let split = match split {
        Some(_) => Some((
            count(usage, &["cache_creation", "ephemeral_5m_input_tokens"])?,
            count(usage, &["cache_creation", "ephemeral_1h_input_tokens"])?,
        )),
        None => None,
    };
    checked(Usage {
        output: count(usage, &["output_tokens"])?,
        ..convert(
            count(usage, &["input_tokens"])?,
            count(usage, &["cache_read_input_tokens"])?,
            count(usage, &["cache_creation_input_tokens"])?,
            split,
        )
    })
}
