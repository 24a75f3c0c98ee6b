//! Amazon Bedrock Converse usage (the `usage` of a `Converse` response, and of the `metadata`
//! event that ends a `ConverseStream`): `inputTokens` counts the prompt's tokens outside the
//! cache, as Anthropic's `input_tokens` does, and `cacheReadInputTokens` and
//! `cacheWriteInputTokens` come on top of it (`totalTokens` is the sum of all four counts);
//! `cacheDetails` splits the writes by lifetime (`5m`, `1h`). The inclusive input is the sum of
//! the three. Where `totalTokens` says otherwise (it equals `inputTokens + outputTokens` while
//! the cache counts fit inside `inputTokens`), the cache counts are read as parts of
//! `inputTokens` instead; a total that fits neither reading is left aside, and the sum taken
//! (an input never counted short).
//!
//! Bedrock does not report reasoning tokens apart from the output; they are priced as output,
//! which is what Bedrock bills them at. The typed [`ConverseResponse`] also gives the service
//! tier that served the call (`serviceTier.type`: `priority` costs more, `flex` less).
//!
//! **Model names.** Bedrock's model ids (`anthropic.claude-sonnet-4-5-20250929-v1:0`, or with
//! an inference profile's prefix: `us.`, `eu.`, `apac.`, `global.`, …) are not resolved to the
//! model provider's own price: Bedrock prices a model by endpoint (the geographic and in-Region
//! endpoints of the newer Claude models cost 10% more than the global one) and by Region.
//! LiteLLM's price file lists Bedrock's ids with their prices; with a price table of your own,
//! give the ids you call as aliases of entries at Bedrock's price.
//!
//! With the AWS SDK (`aws-sdk-bedrockruntime`), copy its `TokenUsage` into a [`ConverseUsage`]
//! (a negative count converted with `u64::try_from(…).unwrap_or(u64::MAX)` is then refused as
//! absurd, never priced).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    AdapterError, checked, count, count_if_present, usage_object, with_cache_outside_input,
};
use crate::token_usage::TokenUsage;
use crate::usage::Usage;

/// `usage` of a Converse response (`TokenUsage` in Bedrock's API reference).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ConverseUsage {
    /// Prompt tokens neither read from nor written to the cache.
    #[serde(deserialize_with = "super::null_as_default")]
    pub input_tokens: u64,
    /// Completion tokens (reasoning included).
    #[serde(deserialize_with = "super::null_as_default")]
    pub output_tokens: u64,
    /// Every token of the call, when given: tells which reading of the cache counts holds.
    #[serde(deserialize_with = "super::null_as_default")]
    pub total_tokens: Option<u64>,
    /// Prompt tokens read from the cache.
    #[serde(deserialize_with = "super::null_as_default")]
    pub cache_read_input_tokens: u64,
    /// Prompt tokens written to the cache (every lifetime).
    #[serde(deserialize_with = "super::null_as_default")]
    pub cache_write_input_tokens: u64,
    /// The cache writes by lifetime, when the API gives them.
    #[serde(deserialize_with = "super::null_as_default")]
    pub cache_details: Vec<CacheDetail>,
}

/// One element of `usage.cacheDetails`: the cache writes of one lifetime.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheDetail {
    /// Tokens written with this lifetime.
    pub input_tokens: u64,
    /// The lifetime.
    pub ttl: CacheTtl,
}

/// A cache write's lifetime. Another value fails to deserialize (its price is not known).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CacheTtl {
    /// `5m`, the default.
    #[serde(rename = "5m")]
    FiveMinutes,
    /// `1h`.
    #[serde(rename = "1h")]
    OneHour,
}

impl CacheTtl {
    fn parse(text: &str) -> Option<CacheTtl> {
        match text {
            "5m" => Some(CacheTtl::FiveMinutes),
            "1h" => Some(CacheTtl::OneHour),
            _ => None,
        }
    }
}

/// A Converse response, or the body of a `ConverseStream` `metadata` event, reduced to what
/// pricing needs (Converse does not name the model: record the id you called).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConverseResponse {
    /// Its usage.
    pub usage: ConverseUsage,
    /// The service tier that served it (`default`, `priority`, `flex`, `reserved`), when the
    /// request chose one.
    #[serde(rename = "serviceTier")]
    pub service_tier: Option<ServiceTier>,
}

/// Bedrock's `ServiceTier` object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceTier {
    /// `default` (standard), `priority`, `flex` or `reserved` (capacity reserved and paid for
    /// by the month: read as a tier no table prices, so priced at standard and counted).
    #[serde(rename = "type")]
    pub kind: String,
}

/// The written tokens of each lifetime, `(5-minute, 1-hour)`; `None` without details.
fn lifetimes(details: impl Iterator<Item = (CacheTtl, u64)>) -> Option<(u64, u64)> {
    let mut split = None;
    for (ttl, tokens) in details {
        let (five, hour) = split.get_or_insert((0_u64, 0_u64));
        match ttl {
            CacheTtl::FiveMinutes => *five = five.saturating_add(tokens),
            CacheTtl::OneHour => *hour = hour.saturating_add(tokens),
        }
    }
    split
}

/// The inclusive usage of the counts (see the module's docs for the two readings).
fn convert(
    input: u64,
    output: u64,
    total: Option<u64>,
    read: u64,
    written: u64,
    split: Option<(u64, u64)>,
) -> Usage {
    let cached = read.saturating_add(written);
    let cache_inside_input =
        cached > 0 && input >= cached && total == Some(input.saturating_add(output));
    let uncached = if cache_inside_input {
        input - cached
    } else {
        input
    };
    Usage {
        output,
        ..with_cache_outside_input(uncached, read, written, split)
    }
}

impl ConverseUsage {
    /// The inclusive usage.
    pub fn to_usage(&self) -> Usage {
        convert(
            self.input_tokens,
            self.output_tokens,
            self.total_tokens,
            self.cache_read_input_tokens,
            self.cache_write_input_tokens,
            lifetimes(
                self.cache_details
                    .iter()
                    .map(|detail| (detail.ttl, detail.input_tokens)),
            ),
        )
    }
}

impl TokenUsage for ConverseUsage {
    fn token_usage(&self) -> Option<Usage> {
        Some(self.to_usage())
    }
}

impl TokenUsage for ConverseResponse {
    fn token_usage(&self) -> Option<Usage> {
        Some(self.usage.to_usage())
    }

    fn service_tier(&self) -> Option<&str> {
        self.service_tier
            .as_ref()
            .map(|tier| tier.kind.as_str())
            .filter(|kind| !kind.is_empty())
    }
}

/// Reads a Converse response, a `ConverseStream` `metadata` event (with or without its
/// `{"metadata": …}` wrapper) or a `usage` object.
pub fn from_json(value: &Value) -> Result<Usage, AdapterError> {
    let value = value
        .get("metadata")
        .filter(|m| m.is_object())
        .unwrap_or(value);
    let usage = usage_object(value, "usage", "inputTokens")?;
    let split = match usage.get("cacheDetails") {
        Some(Value::Array(details)) => {
            let mut read = Vec::with_capacity(details.len());
            for detail in details {
                let ttl = detail.get("ttl").and_then(Value::as_str);
                let ttl =
                    ttl.and_then(CacheTtl::parse)
                        .ok_or_else(|| AdapterError::UnknownValue {
                            field: "cacheDetails.ttl".into(),
                            value: detail.get("ttl").map_or("none".into(), Value::to_string),
                        })?;
                let tokens = count_if_present(detail, &["inputTokens"]).map_err(|e| match e {
                    AdapterError::BadCount { value, .. } => AdapterError::BadCount {
                        field: "cacheDetails.inputTokens".into(),
                        value,
                    },
                    other => other,
                })?;
                read.push((ttl, tokens.unwrap_or(0)));
            }
            lifetimes(read.into_iter())
        }
        _ => None,
    };
    checked(convert(
        count(usage, &["inputTokens"])?,
        count(usage, &["outputTokens"])?,
        count_if_present(usage, &["totalTokens"])?,
        count(usage, &["cacheReadInputTokens"])?,
        count(usage, &["cacheWriteInputTokens"])?,
        split,
    ))
}
