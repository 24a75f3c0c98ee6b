//! `TokenUsage` for the Chat Completions response types of the `async-openai` crate
//! (feature `async-openai`). Its usage is OpenAI's, read as the `openai` adapter reads it; the
//! response says the service tier that served it.

use async_openai::types::chat::{
    CompletionTokensDetails, CompletionUsage, CreateChatCompletionResponse, PromptTokensDetails,
    ServiceTier,
};

use super::openai;

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
        let prompt_details = openai::PromptTokensDetails {
            cached_tokens: prompt(|d| d.cached_tokens),
            audio_tokens: prompt(|d| d.audio_tokens),
            // Chat Completions does not count image prompt tokens apart.
            image_tokens: 0,
            // Not split by modality in this crate's type.
            cached_tokens_details: None,
        };
        let completion_details = openai::CompletionTokensDetails {
            reasoning_tokens: completion(|d| d.reasoning_tokens),
            audio_tokens: completion(|d| d.audio_tokens),
            image_tokens: None,
        };
        Some(
            openai::Reported {
                input: u64::from(self.prompt_tokens),
                output: u64::from(self.completion_tokens),
                total: u64::from(self.total_tokens),
                prompt: Some(&prompt_details),
                completion: Some(&completion_details),
                cache_hits: 0,
            }
            .usage(),
        )
    }
}

impl TokenUsage for CreateChatCompletionResponse {
    fn token_usage(&self) -> Option<Usage> {
        let usage = self.usage.as_ref().and_then(TokenUsage::token_usage)?;
        Some(Usage {
            web_search_requests: openai::chat_searches(&self.model),
            ..usage
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(json: serde_json::Value) -> Option<Usage> {
        serde_json::from_value::<CompletionUsage>(json)
            .ok()
            .and_then(|u| u.token_usage())
    }

    #[test]
    fn read_as_the_openai_adapter_reads_them() {
        // Audio (cached tokens taken as text first) and OpenAI's inclusive reasoning.
        let openai = usage(serde_json::json!({
            "prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500,
            "prompt_tokens_details": {"cached_tokens": 400, "audio_tokens": 700},
            "completion_tokens_details": {"reasoning_tokens": 20, "audio_tokens": 450}
        }));
        assert_eq!(
            openai,
            Some(Usage {
                input: 1000,
                cache_read: 400,
                audio_input: 600,
                cache_read_audio: 100,
                output: 500,
                reasoning: 20,
                audio_output: 450,
                ..Usage::default()
            })
        );
        // xAI's reasoning outside the completion tokens, as its total says.
        let xai = usage(serde_json::json!({
            "prompt_tokens": 12, "completion_tokens": 2, "total_tokens": 331,
            "completion_tokens_details": {"reasoning_tokens": 317}
        }));
        assert_eq!(
            xai,
            Some(Usage {
                input: 12,
                output: 319,
                reasoning: 317,
                ..Usage::default()
            })
        );
    }

    #[test]
    fn a_search_model_searched_once() {
        let response = |model: &str| {
            serde_json::from_value::<CreateChatCompletionResponse>(serde_json::json!({
                "id": "chatcmpl-1", "object": "chat.completion", "created": 1_764_000_000,
                "model": model,
                "choices": [{"index": 0, "finish_reason": "stop", "logprobs": null,
                    "message": {"role": "assistant", "content": "…"}}],
                "usage": {"prompt_tokens": 500, "completion_tokens": 200, "total_tokens": 700}
            }))
            .ok()
            .and_then(|r| r.token_usage())
            .map(|u| u.web_search_requests)
        };
        assert_eq!(response("gpt-4o-search-preview"), Some(1));
        assert_eq!(response("gpt-4o-mini"), Some(0));
    }
}
