//! OpenAI: Chat Completions and Responses usage. Both are already inclusive. Both responses
//! also say the service tier that served them (`service_tier`).
//!
//! Chat Completions reports audio tokens (`gpt-4o-audio-preview`, `gpt-realtime` and the like)
//! in `prompt_tokens_details.audio_tokens` and `completion_tokens_details.audio_tokens`; they
//! become [`Usage::audio_input`] and [`Usage::audio_output`]. Cached audio is priced as cache
//! reads: where the response does not say how many cached tokens were audio
//! (`cached_tokens_details.audio_tokens`), the uncached audio is taken as at most the uncached
//! prompt, which bounds the cost from above.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{AdapterError, checked, count, count_if_present, uncached_audio, usage_object};
use crate::token_usage::TokenUsage;
use crate::usage::Usage;

/// `usage` of a Chat Completions response.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChatUsage {
    /// Every prompt token, cached ones included.
    pub prompt_tokens: u64,
    /// Every completion token, reasoning included.
    pub completion_tokens: u64,
    /// `prompt_tokens + completion_tokens`.
    pub total_tokens: u64,
    /// Breakdown of the prompt.
    pub prompt_tokens_details: Option<PromptTokensDetails>,
    /// Breakdown of the completion.
    pub completion_tokens_details: Option<CompletionTokensDetails>,
}

/// `prompt_tokens_details`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PromptTokensDetails {
    /// Prompt tokens read from the cache.
    pub cached_tokens: u64,
    /// Prompt tokens of audio, cached ones included.
    pub audio_tokens: u64,
    /// The cached tokens by modality, when given.
    pub cached_tokens_details: Option<CachedTokensDetails>,
}

/// `prompt_tokens_details.cached_tokens_details`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CachedTokensDetails {
    /// Cached prompt tokens of audio.
    pub audio_tokens: Option<u64>,
}

/// `completion_tokens_details`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CompletionTokensDetails {
    /// Completion tokens spent reasoning.
    pub reasoning_tokens: u64,
    /// Completion tokens of audio.
    pub audio_tokens: u64,
}

/// A Chat Completions response, reduced to what pricing needs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChatCompletion {
    /// The model that answered.
    pub model: String,
    /// Its usage (absent in some streamed chunks).
    pub usage: Option<ChatUsage>,
    /// The service tier that served it (`default`, `flex`, `priority`, …), when given.
    pub service_tier: Option<String>,
}

impl ChatUsage {
    /// The inclusive usage.
    pub fn to_usage(&self) -> Usage {
        let prompt = self.prompt_tokens_details.clone().unwrap_or_default();
        let completion = self.completion_tokens_details.clone().unwrap_or_default();
        Usage {
            input: self.prompt_tokens,
            cache_read: prompt.cached_tokens,
            output: self.completion_tokens,
            reasoning: completion.reasoning_tokens,
            audio_input: uncached_audio(
                prompt.audio_tokens,
                prompt.cached_tokens_details.and_then(|d| d.audio_tokens),
                self.prompt_tokens,
                prompt.cached_tokens,
            ),
            audio_output: completion.audio_tokens,
            ..Usage::default()
        }
    }
}

impl TokenUsage for ChatUsage {
    fn token_usage(&self) -> Option<Usage> {
        Some(self.to_usage())
    }
}

impl TokenUsage for ChatCompletion {
    fn token_usage(&self) -> Option<Usage> {
        self.usage.as_ref().map(ChatUsage::to_usage)
    }

    fn response_model(&self) -> Option<&str> {
        super::non_empty(&self.model)
    }

    fn service_tier(&self) -> Option<&str> {
        self.service_tier.as_deref()
    }
}

/// `usage` of a Responses API response.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ResponsesUsage {
    /// Every input token, cached ones included.
    pub input_tokens: u64,
    /// Every output token, reasoning included.
    pub output_tokens: u64,
    /// `input_tokens + output_tokens`.
    pub total_tokens: u64,
    /// Breakdown of the input.
    pub input_tokens_details: Option<PromptTokensDetails>,
    /// Breakdown of the output.
    pub output_tokens_details: Option<CompletionTokensDetails>,
}

impl ResponsesUsage {
    /// The inclusive usage.
    pub fn to_usage(&self) -> Usage {
        Usage {
            input: self.input_tokens,
            cache_read: self
                .input_tokens_details
                .as_ref()
                .map_or(0, |d| d.cached_tokens),
            output: self.output_tokens,
            reasoning: self
                .output_tokens_details
                .as_ref()
                .map_or(0, |d| d.reasoning_tokens),
            ..Usage::default()
        }
    }
}

impl TokenUsage for ResponsesUsage {
    fn token_usage(&self) -> Option<Usage> {
        Some(self.to_usage())
    }
}

/// A Responses API response, reduced to what pricing needs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Response {
    /// The model that answered.
    pub model: String,
    /// Its usage (absent while the response is in progress).
    pub usage: Option<ResponsesUsage>,
    /// The service tier that served it (`default`, `flex`, `priority`, …), when given.
    pub service_tier: Option<String>,
}

impl TokenUsage for Response {
    fn token_usage(&self) -> Option<Usage> {
        self.usage.as_ref().map(ResponsesUsage::to_usage)
    }

    fn response_model(&self) -> Option<&str> {
        super::non_empty(&self.model)
    }

    fn service_tier(&self) -> Option<&str> {
        self.service_tier.as_deref()
    }
}

/// Reads a Chat Completions response or its `usage` object.
pub fn chat_from_json(value: &Value) -> Result<Usage, AdapterError> {
    let usage = usage_object(value, "usage", "prompt_tokens")?;
    let input = count(usage, &["prompt_tokens"])?;
    let cache_read = count(usage, &["prompt_tokens_details", "cached_tokens"])?;
    let cached_audio = count_if_present(
        usage,
        &[
            "prompt_tokens_details",
            "cached_tokens_details",
            "audio_tokens",
        ],
    )?;
    checked(Usage {
        input,
        cache_read,
        output: count(usage, &["completion_tokens"])?,
        reasoning: count(usage, &["completion_tokens_details", "reasoning_tokens"])?,
        audio_input: uncached_audio(
            count(usage, &["prompt_tokens_details", "audio_tokens"])?,
            cached_audio,
            input,
            cache_read,
        ),
        audio_output: count(usage, &["completion_tokens_details", "audio_tokens"])?,
        ..Usage::default()
    })
}

/// Reads a Responses API response or its `usage` object.
pub fn responses_from_json(value: &Value) -> Result<Usage, AdapterError> {
    let usage = usage_object(value, "usage", "input_tokens")?;
    checked(Usage {
        input: count(usage, &["input_tokens"])?,
        cache_read: count(usage, &["input_tokens_details", "cached_tokens"])?,
        output: count(usage, &["output_tokens"])?,
        reasoning: count(usage, &["output_tokens_details", "reasoning_tokens"])?,
        ..Usage::default()
    })
}
