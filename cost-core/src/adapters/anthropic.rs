//! Anthropic Messages usage: `input_tokens` excludes cache reads and writes, so the inclusive
//! input is the sum of the three. The web search tool's searches
//! (`server_tool_use.web_search_requests`, billed per search) are read too, and the typed
//! responses give the service tier (fast mode, `speed: "fast"`, as the `fast_mode` tier: the
//! model's fast-mode prices, 2× or 6× its standard ones) and where inference ran (`inference_geo`: a call kept in
//! the US costs the model's data-residency factor, 1.1×).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    AdapterError, checked, count, count_if_present, usage_object,
    with_cache_outside_input as convert,
};
use crate::token_usage::TokenUsage;
use crate::usage::Usage;

/// `usage` of a Messages response.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MessagesUsage {
    /// Prompt tokens after the last cache breakpoint (neither read nor written).
    #[serde(deserialize_with = "super::null_as_default")]
    pub input_tokens: u64,
    /// Prompt tokens written to the cache (5-minute and 1-hour together).
    #[serde(deserialize_with = "super::null_as_default")]
    pub cache_creation_input_tokens: u64,
    /// Prompt tokens read from the cache.
    #[serde(deserialize_with = "super::null_as_default")]
    pub cache_read_input_tokens: u64,
    /// Completion tokens (thinking included).
    #[serde(deserialize_with = "super::null_as_default")]
    pub output_tokens: u64,
    /// The split of the cache writes by lifetime, when the API gives it.
    pub cache_creation: Option<CacheCreation>,
    /// The service tier that served the call (`standard`, `priority`, `batch`), when given.
    pub service_tier: Option<String>,
    /// The speed the call ran at (`standard`, `fast`), when given: fast mode is priced as the
    /// `fast_mode` service tier (see [`MessagesUsage::tier_name`]).
    pub speed: Option<String>,
    /// Server-side tools the call ran, when any.
    pub server_tool_use: Option<ServerToolUse>,
    /// Where inference ran (`global`, `us`), when given: see [`inference_geo_residency`].
    pub inference_geo: Option<String>,
}

/// Whether a call whose usage reports `inference_geo = geo` ran on a data-residency endpoint:
/// `global` (any letter case) is not; any named geography is (`us`, the one Anthropic offers
/// today, is billed at 1.1× the list prices on the models that accept it, and a geography added
/// later is taken the same way: priced at the model's data-residency factor, or unpriced where
/// the price table gives none, never silently at the list price). An empty value says nothing.
pub fn inference_geo_residency(geo: &str) -> Option<bool> {
    let geo = geo.trim();
    if geo.is_empty() {
        None
    } else {
        Some(!geo.eq_ignore_ascii_case("global"))
    }
}

/// `usage.server_tool_use`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerToolUse {
    /// Web searches run (billed per search).
    #[serde(deserialize_with = "super::null_as_default")]
    pub web_search_requests: u64,
}

/// `usage.cache_creation`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CacheCreation {
    /// Written with the 5-minute lifetime.
    #[serde(deserialize_with = "super::null_as_default")]
    pub ephemeral_5m_input_tokens: u64,
    /// Written with the 1-hour lifetime.
    #[serde(deserialize_with = "super::null_as_default")]
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

impl MessagesUsage {
    /// The service tier the call is priced at, as [`ServiceTier::parse`](crate::ServiceTier::parse)
    /// reads it: `fast_mode` when it ran in fast mode (`speed: "fast"`, any letter case),
    /// else the reported `service_tier`, else `standard` when the usage gives a speed (a
    /// request for fast mode that ran at standard speed is billed at standard rates).
    pub fn tier_name(&self) -> Option<&str> {
        match self.speed.as_deref().map(str::trim) {
            Some(speed) if speed.eq_ignore_ascii_case("fast") => Some("fast_mode"),
            Some(_) => self.service_tier.as_deref().or(Some("standard")),
            None => self.service_tier.as_deref(),
        }
    }

    /// The inclusive usage.
    pub fn to_usage(&self) -> Usage {
        Usage {
            output: self.output_tokens,
            web_search_requests: self
                .server_tool_use
                .as_ref()
                .map_or(0, |tools| tools.web_search_requests),
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
        self.tier_name()
    }

    fn data_residency(&self) -> Option<bool> {
        self.inference_geo
            .as_deref()
            .and_then(inference_geo_residency)
    }
}

impl TokenUsage for Message {
    fn token_usage(&self) -> Option<Usage> {
        Some(self.usage.to_usage())
    }

    fn response_model(&self) -> Option<&str> {
        super::non_empty(&self.model)
    }

    fn service_tier(&self) -> Option<&str> {
        self.usage.tier_name()
    }

    fn data_residency(&self) -> Option<bool> {
        self.usage.data_residency()
    }
}

/// Reads a Messages response or its `usage` object. A streamed response's events each carry
/// part of the usage (a `message_delta` may give only the output): combine them with
/// [`StreamUsage`]. The usage alone does not say the service tier, the speed or where
/// inference ran; deserialize the response into a [`Message`] to read those too.
pub fn from_json(value: &Value) -> Result<Usage, AdapterError> {
    // Every usage gives the output (a stream's `message_delta` gives only that).
    let usage = usage_object(value, "usage", "output_tokens")?;
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
        web_search_requests: count(usage, WEB_SEARCHES)?,
        ..convert(
            count(usage, &["input_tokens"])?,
            count(usage, &["cache_read_input_tokens"])?,
            count(usage, &["cache_creation_input_tokens"])?,
            split,
        )
    })
}

/// Where a usage object counts the web searches.
const WEB_SEARCHES: &[&str] = &["server_tool_use", "web_search_requests"];

/// The usage of a streamed Messages response, from its events: `message_start` gives the input
/// counts (and a first output count) and the model, each `message_delta` the output so far (and, in newer
/// API versions, the input counts again). A count an event leaves out keeps its latest value,
/// so the input of `message_start` is not lost when the deltas give only the output. Record
/// [`StreamUsage::update`]'s result as the call's running usage, or return the `StreamUsage`
/// from an `#[llm_call]` function (it implements [`TokenUsage`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamUsage {
    /// The latest value of each count.
    latest: MessagesUsage,
    /// An event with usage was seen.
    seen: bool,
    /// The model `message_start` names.
    model: Option<String>,
}

impl StreamUsage {
    /// Takes one event (`message_start` and `message_delta` carry usage; other events change
    /// nothing) and returns the usage so far. A bad count is an error and changes nothing.
    pub fn update(&mut self, event: &Value) -> Result<Usage, AdapterError> {
        let usage = match event.get("type").and_then(Value::as_str) {
            Some("message_start") => {
                let message = event.get("message");
                if let Some(model) = message.and_then(|m| m.get("model")).and_then(Value::as_str) {
                    self.model = Some(model.to_owned());
                }
                message.and_then(|m| m.get("usage"))
            }
            _ => event.get("usage"),
        };
        if let Some(usage) = usage.filter(|u| u.is_object()) {
            // Every count is read before any is kept: a bad one leaves the others as they were.
            let input = count_if_present(usage, &["input_tokens"])?;
            let written = count_if_present(usage, &["cache_creation_input_tokens"])?;
            let read = count_if_present(usage, &["cache_read_input_tokens"])?;
            let output = count_if_present(usage, &["output_tokens"])?;
            let searches = count_if_present(usage, WEB_SEARCHES)?;
            let split = match usage.get("cache_creation").filter(|c| c.is_object()) {
                Some(_) => Some(CacheCreation {
                    ephemeral_5m_input_tokens: count(
                        usage,
                        &["cache_creation", "ephemeral_5m_input_tokens"],
                    )?,
                    ephemeral_1h_input_tokens: count(
                        usage,
                        &["cache_creation", "ephemeral_1h_input_tokens"],
                    )?,
                }),
                None => None,
            };
            let latest = &mut self.latest;
            for (slot, value) in [
                (&mut latest.input_tokens, input),
                (&mut latest.cache_creation_input_tokens, written),
                (&mut latest.cache_read_input_tokens, read),
                (&mut latest.output_tokens, output),
            ] {
                if let Some(value) = value {
                    *slot = value;
                }
            }
            if split.is_some() {
                latest.cache_creation = split;
            }
            if let Some(web_search_requests) = searches {
                latest.server_tool_use = Some(ServerToolUse {
                    web_search_requests,
                });
            }
            if let Some(tier) = usage.get("service_tier").and_then(Value::as_str) {
                latest.service_tier = Some(tier.to_owned());
            }
            if let Some(geo) = usage.get("inference_geo").and_then(Value::as_str) {
                latest.inference_geo = Some(geo.to_owned());
            }
            if let Some(speed) = usage.get("speed").and_then(Value::as_str) {
                latest.speed = Some(speed.to_owned());
            }
            self.seen = true;
        }
        checked(self.latest.to_usage())
    }
}

impl TokenUsage for StreamUsage {
    /// The usage so far; `None` before any event with usage.
    fn token_usage(&self) -> Option<Usage> {
        self.seen.then(|| self.latest.to_usage())
    }

    fn response_model(&self) -> Option<&str> {
        self.model.as_deref().and_then(super::non_empty)
    }

    fn service_tier(&self) -> Option<&str> {
        self.latest.tier_name()
    }

    fn data_residency(&self) -> Option<bool> {
        self.latest.data_residency()
    }
}
