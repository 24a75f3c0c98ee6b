//! `TokenUsage` for the Chat Completions response types of the `async-openai` crate
//! (feature `async-openai`). Its usage is OpenAI's, already inclusive; the response says the
//! service tier that served it.

use async_openai::types::chat::{
    CompletionTokensDetails, CompletionUsage, CreateChatCompletionResponse, PromptTokensDetails,
    ServiceTier,
};

use super::with_prompt_audio;

use crate::token_usage::TokenUsage;
use crate::usage::Usage;

impl TokenUsage for CompletionUsage {
    fn token_usage(&self) -> Option<Usage> {
        let prompt = |field: fn(&PromptTokensDetails) -> Option<u32>| {
            self.prompt_tokens_details
                .as_ref()
                .and_then(field)
                .map_or(0, u64::from)
        };
        let completion = |field: fn(&CompletionTokensDetails) -> Option<u32>| {
            self.completion_tokens_details
                .as_ref()
                .and_then(field)
                .map_or(0, u64::from)
        };
        let usage = Usage {
            input: u64::from(self.prompt_tokens),
            cache_read: prompt(|d| d.cached_tokens),
            output: u64::from(self.completion_tokens),
            reasoning: completion(|d| d.reasoning_tokens),
            audio_output: completion(|d| d.audio_tokens),
            ..Usage::default()
        };
        // The cached tokens are not split by modality here (see the `openai` adapter).
        Some(with_prompt_audio(usage, prompt(|d| d.audio_tokens), None))
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
