//! Gemini `usageMetadata`: the prompt count includes cached content; the candidates count
//! excludes thoughts, which bill as output.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{AdapterError, checked, count, usage_object};
use crate::token_usage::TokenUsage;
use crate::usage::Usage;

/// `usageMetadata` of a `generateContent` response.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct UsageMetadata {
    /// Every prompt token, cached content included.
    pub prompt_token_count: u64,
    /// Prompt tokens served from cached content.
    pub cached_content_token_count: u64,
    /// Output tokens of the candidates (thoughts excluded).
    pub candidates_token_count: u64,
    /// Thinking tokens (billed as output).
    pub thoughts_token_count: u64,
    /// Tokens of tool-use prompts (billed as input).
    pub tool_use_prompt_token_count: u64,
    /// The total.
    pub total_token_count: u64,
}

/// A `generateContent` response, reduced to what pricing needs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct GenerateContentResponse {
    /// The model version that answered.
    pub model_version: String,
    /// Its usage.
    pub usage_metadata: Option<UsageMetadata>,
}

impl UsageMetadata {
    /// The inclusive usage.
    pub fn to_usage(&self) -> Usage {
        Usage {
            // Sums saturate: an overflowing count is absurd and validation refuses it.
            input: self
                .prompt_token_count
                .saturating_add(self.tool_use_prompt_token_count),
            cache_read: self.cached_content_token_count,
            output: self
                .candidates_token_count
                .saturating_add(self.thoughts_token_count),
            reasoning: self.thoughts_token_count,
            ..Usage::default()
        }
    }
}

impl TokenUsage for UsageMetadata {
    fn token_usage(&self) -> Option<Usage> {
        Some(self.to_usage())
    }
}

impl TokenUsage for GenerateContentResponse {
    fn token_usage(&self) -> Option<Usage> {
        self.usage_metadata.as_ref().map(UsageMetadata::to_usage)
    }

    fn response_model(&self) -> Option<&str> {
        super::non_empty(&self.model_version)
    }
}

/// Reads a `generateContent` response or its `usageMetadata` object.
pub fn from_json(value: &Value) -> Result<Usage, AdapterError> {
    let usage = usage_object(value, "usageMetadata", "promptTokenCount")?;
    let thoughts = count(usage, &["thoughtsTokenCount"])?;
    checked(Usage {
        input: count(usage, &["promptTokenCount"])?
            .saturating_add(count(usage, &["toolUsePromptTokenCount"])?),
        cache_read: count(usage, &["cachedContentTokenCount"])?,
        output: count(usage, &["candidatesTokenCount"])?.saturating_add(thoughts),
        reasoning: thoughts,
        ..Usage::default()
    })
}
