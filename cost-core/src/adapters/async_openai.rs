//! `TokenUsage` for the Chat Completions response types of the `async-openai` crate
//! (feature `async-openai`). Its usage is OpenAI's, already inclusive; the response says the
//! service tier that served it.

use async_openai::types::chat::{CompletionUsage, CreateChatCompletionResponse, ServiceTier};

use crate::token_usage::TokenUsage;
use crate::usage::Usage;

impl TokenUsage for CompletionUsage {
    fn token_usage(&self) -> Option<Usage> {
        Some(Usage {
            input: u64::from(self.prompt_tokens),
            cache_read: self
                .prompt_tokens_details
                .as_ref()
                .and_then(|d| d.cached_tokens)
                .map_or(0, u64::from),
            output: u64::from(self.completion_tokens),
            reasoning: self
                .completion_tokens_details
                .as_ref()
                .and_then(|d| d.reasoning_tokens)
                .map_or(0, u64::from),
            ..Usage::default()
        })
    }
}

impl TokenUsage for CreateChatCompletionResponse {
    fn token_usage(&self) -> Option<Usage> {
        self.usage.as_ref().and_then(TokenUsage::token_usage)
    }

    fn response_model(&self) -> Option<&str> {
        super::non_empty(&self.model)
    }

    fn service_tier(&self) -> Option<&str> {
        // As the API spells them (the enum's serde names).
        self.service_tier.as_ref().map(|tier| match tier {
            ServiceTier::Auto => "auto",
            ServiceTier::Default => "default",
            ServiceTier::Flex => "flex",
            ServiceTier::Scale => "scale",
            ServiceTier::Priority => "priority",
            ServiceTier::Fast => "fast",
        })
    }
}
