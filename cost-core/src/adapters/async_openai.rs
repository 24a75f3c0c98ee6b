//! `TokenUsage` for the response types of the `async-openai` crate (feature `async-openai`):
//! Chat Completions (`CreateChatCompletionResponse`, `CompletionUsage`, and a stream's chunks,
//! `CreateChatCompletionStreamResponse`, the last of which carries the usage when the request
//! set `stream_options.include_usage`) and Responses (`Response`, `ResponseUsage`, and a
//! stream's events, `ResponseStreamEvent`: the `response.completed`, `response.incomplete` and
//! `response.failed` events carry the response and its usage). Their usage is OpenAI's, read as the [`openai`]
//! adapter reads it (a Responses response's web searches, file search calls, generated images and
//! code interpreter sessions counted from its output items, cache writes read from `cache_write_tokens`); both responses say the service
//! tier that served them.
//!
//! The crate's image types are not adapted: enabling them beside its client features fails to
//! compile in `async-openai` 0.43 (its `image-types` feature needs its `image` feature there);
//! read an Images response's JSON with [`openai::images_from_json`].

use async_openai::types::chat::{
    CompletionTokensDetails, CompletionUsage, CreateChatCompletionResponse,
    CreateChatCompletionStreamResponse, PromptTokensDetails, ServiceTier,
};
use async_openai::types::responses::{
    ImageGenToolCallStatus, OutputItem, Response, ResponseStreamEvent, ResponseUsage,
    ServiceTierResponses, Tool, WebSearchToolCallAction, WebSearchToolSearchContextSize,
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
            cache_write_tokens: self
                .prompt_tokens_details
                .as_ref()
                .and_then(|d| d.cache_write_tokens)
                .map_or(0, non_negative),
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

/// The usage of a Chat Completions response or chunk of `model`: its counts, and the search a
/// search model ran.
fn chat_usage(usage: Option<&CompletionUsage>, model: &str) -> Option<Usage> {
    let usage = usage.and_then(TokenUsage::token_usage)?;
    Some(Usage {
        web_search_requests: openai::chat_searches(model, None, false),
        ..usage
    })
}

/// `TokenUsage` for the Chat Completions types that carry `usage`, `model` and
/// `service_tier`: a response, and a streamed chunk (the last one carries the call's usage,
/// with `stream_options.include_usage`; the others none).
macro_rules! chat_token_usage {
    ($($response:ty),*) => {$(
        impl TokenUsage for $response {
            fn token_usage(&self) -> Option<Usage> {
                chat_usage(self.usage.as_ref(), &self.model)
            }

            fn response_model(&self) -> Option<&str> {
                super::non_empty(&self.model)
            }

            fn service_tier(&self) -> Option<&str> {
                self.service_tier.as_ref().map(chat_tier)
            }
        }
    )*};
}

chat_token_usage!(
    CreateChatCompletionResponse,
    CreateChatCompletionStreamResponse
);

/// A chat service tier as the API spells it (the enum's serde names).
fn chat_tier(tier: &ServiceTier) -> &'static str {
    match tier {
        ServiceTier::Auto => "auto",
        ServiceTier::Default => "default",
        ServiceTier::Flex => "flex",
        ServiceTier::Scale => "scale",
        ServiceTier::Priority => "priority",
        ServiceTier::Fast => "fast",
    }
}

/// A streamed Responses event: the events that end a response (completed, incomplete, failed)
/// carry it, and with it the call's usage; the others carry none.
impl TokenUsage for ResponseStreamEvent {
    fn token_usage(&self) -> Option<Usage> {
        ended_response(self).and_then(TokenUsage::token_usage)
    }

    fn response_model(&self) -> Option<&str> {
        ended_response(self).and_then(TokenUsage::response_model)
    }

    fn service_tier(&self) -> Option<&str> {
        ended_response(self).and_then(TokenUsage::service_tier)
    }

    fn search_context_size(&self) -> Option<&str> {
        ended_response(self).and_then(TokenUsage::search_context_size)
    }
}

/// The response an event that ends one carries.
fn ended_response(event: &ResponseStreamEvent) -> Option<&Response> {
    match event {
        ResponseStreamEvent::ResponseCompleted(event) => Some(&event.response),
        ResponseStreamEvent::ResponseIncomplete(event) => Some(&event.response),
        ResponseStreamEvent::ResponseFailed(event) => Some(&event.response),
        _ => None,
    }
}

/// A count the crate types as signed; a negative one (never sent) is none.
fn non_negative(count: i64) -> u64 {
    u64::try_from(count).unwrap_or(0)
}

/// The Responses API's counts in the `openai` adapter's shape.
fn responses_usage(usage: &ResponseUsage) -> openai::ResponsesUsage {
    openai::ResponsesUsage {
        input_tokens: u64::from(usage.input_tokens),
        output_tokens: u64::from(usage.output_tokens),
        total_tokens: u64::from(usage.total_tokens),
        input_tokens_details: Some(openai::PromptTokensDetails {
            cached_tokens: u64::from(usage.input_tokens_details.cached_tokens),
            cache_write_tokens: usage
                .input_tokens_details
                .cache_write_tokens
                .map_or(0, non_negative),
            ..openai::PromptTokensDetails::default()
        }),
        output_tokens_details: Some(openai::CompletionTokensDetails {
            reasoning_tokens: u64::from(usage.output_tokens_details.reasoning_tokens),
            ..openai::CompletionTokensDetails::default()
        }),
        // `async-openai`'s types have no provider cost.
        provider_cost: openai::ProviderCost::default(),
    }
}

impl TokenUsage for ResponseUsage {
    fn token_usage(&self) -> Option<Usage> {
        Some(responses_usage(self).to_usage())
    }
}

impl TokenUsage for Response {
    fn token_usage(&self) -> Option<Usage> {
        let usage = self.usage.as_ref().and_then(TokenUsage::token_usage)?;
        let tools = openai::count_tool_uses(self.output.iter().filter_map(tool_use));
        Some(openai::with_tool_uses(usage, tools))
    }

    fn response_model(&self) -> Option<&str> {
        super::non_empty(&self.model)
    }

    fn service_tier(&self) -> Option<&str> {
        self.service_tier.as_ref().map(|tier| match tier {
            ServiceTierResponses::Auto => "auto",
            ServiceTierResponses::Default => "default",
            ServiceTierResponses::Flex => "flex",
            ServiceTierResponses::Scale => "scale",
            ServiceTierResponses::Priority => "priority",
            ServiceTierResponses::Fast => "fast",
            ServiceTierResponses::Ultrafast => "ultrafast",
        })
    }

    /// The search context size of the web search tool the response echoes, when one states it.
    fn search_context_size(&self) -> Option<&str> {
        self.tools.iter().flatten().find_map(|tool| match tool {
            Tool::WebSearch(search)
            | Tool::WebSearch20250826(search)
            | Tool::WebSearchPreview(search)
            | Tool::WebSearchPreview20250311(search) => {
                search.search_context_size.map(|size| match size {
                    WebSearchToolSearchContextSize::Low => "low",
                    WebSearchToolSearchContextSize::Medium => "medium",
                    WebSearchToolSearchContextSize::High => "high",
                })
            }
            _ => None,
        })
    }
}

/// The billed use of a hosted tool an item records, read as [`openai::OutputItem`] reads one:
/// a web search call whose action is a search or names none yet, a file search call, an image
/// generation call that did not fail, a code interpreter call in its container.
fn tool_use(item: &OutputItem) -> Option<openai::ToolUse<'_>> {
    match item {
        OutputItem::WebSearchCall(call) => {
            matches!(call.action, None | Some(WebSearchToolCallAction::Search(_)))
                .then_some(openai::ToolUse::WebSearch)
        }
        OutputItem::FileSearchCall(_) => Some(openai::ToolUse::FileSearch),
        OutputItem::ImageGenerationCall(call) => (call.status != ImageGenToolCallStatus::Failed)
            .then_some(openai::ToolUse::GeneratedImage),
        OutputItem::CodeInterpreterCall(call) => {
            Some(openai::ToolUse::CodeInterpreter(&call.container_id))
        }
        _ => None,
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

    /// Reads `json` as the `async-openai` type and with the JSON reader of the `openai`
    /// adapter: the same usage.
    fn same_as_json<T: serde::de::DeserializeOwned + TokenUsage>(
        json: serde_json::Value,
        from_json: fn(&serde_json::Value) -> Result<Usage, super::super::AdapterError>,
    ) -> Usage {
        let typed = serde_json::from_value::<T>(json.clone())
            .unwrap_or_else(|e| panic!("{e}"))
            .token_usage();
        let read = from_json(&json).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(typed, Some(read));
        read
    }

    #[test]
    fn a_response_with_hosted_tools_reads_as_the_openai_adapter_reads_it() {
        let json = serde_json::json!({
            "id": "resp_1", "object": "response", "created_at": 1_764_000_000,
            "status": "completed", "model": "gpt-5-2025-08-07", "service_tier": "flex",
            "tools": [{"type": "web_search", "search_context_size": "low"}],
            "output": [
                {"type": "web_search_call", "id": "ws_1", "status": "completed",
                 "action": {"type": "search", "query": "rust tracing"}},
                {"type": "web_search_call", "id": "ws_2", "status": "completed",
                 "action": {"type": "open_page", "url": "https://docs.rs"}},
                {"type": "file_search_call", "id": "fs_1", "status": "completed",
                 "queries": ["budget"], "results": null},
                {"type": "code_interpreter_call", "id": "ci_1", "status": "completed",
                 "container_id": "cntr_a", "code": "print(1)", "outputs": null},
                {"type": "code_interpreter_call", "id": "ci_2", "status": "completed",
                 "container_id": "cntr_a", "code": "print(2)", "outputs": null},
                {"type": "image_generation_call", "id": "ig_1", "status": "completed",
                 "result": "aGk="},
                {"type": "image_generation_call", "id": "ig_2", "status": "failed",
                 "result": null},
                {"type": "image_generation_call", "id": "ig_3", "status": "completed",
                 "result": "aGk="},
                {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                 "content": [{"type": "output_text", "text": "…", "annotations": []}]}
            ],
            "usage": {"input_tokens": 3000, "output_tokens": 800, "total_tokens": 3800,
                      "input_tokens_details": {"cached_tokens": 1000, "cache_write_tokens": 1500},
                      "output_tokens_details": {"reasoning_tokens": 500}}
        });
        let usage = same_as_json::<Response>(json.clone(), openai::responses_from_json);
        assert_eq!(
            usage,
            Usage {
                input: 3000,
                cache_read: 1000,
                cache_write: 1500,
                output: 800,
                reasoning: 500,
                web_search_requests: 1,
                file_search_calls: 1,
                image_generation_calls: 2,
                code_interpreter_sessions: 1,
                ..Usage::default()
            }
        );
        let typed: Response =
            serde_json::from_value(json.clone()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(typed.service_tier(), Some("flex"));
        assert_eq!(typed.response_model(), Some("gpt-5-2025-08-07"));
        // The web search tool's size, as the JSON adapter's typed response reads it.
        assert_eq!(typed.search_context_size(), Some("low"));
        let reduced: openai::Response =
            serde_json::from_value(json).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(reduced.search_context_size(), Some("low"));
    }

    #[test]
    fn a_chat_stream_carries_its_usage_in_its_last_chunk() {
        let chunk = |usage: serde_json::Value| {
            serde_json::from_value::<CreateChatCompletionStreamResponse>(serde_json::json!({
                "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1_764_000_000,
                "model": "gpt-4o-2024-08-06", "service_tier": "priority",
                "choices": [], "usage": usage
            }))
            .unwrap_or_else(|e| panic!("{e}"))
        };
        let delta = chunk(serde_json::Value::Null);
        assert_eq!(delta.token_usage(), None);
        let last = chunk(serde_json::json!({
            "prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500,
            "prompt_tokens_details": {"cached_tokens": 200}
        }));
        assert_eq!(
            last.token_usage(),
            Some(Usage {
                input: 1200,
                cache_read: 200,
                output: 300,
                ..Usage::default()
            })
        );
        assert_eq!(last.response_model(), Some("gpt-4o-2024-08-06"));
        assert_eq!(last.service_tier(), Some("priority"));
    }

    #[test]
    fn a_responses_stream_carries_its_usage_in_the_event_that_ends_it() {
        let response = serde_json::json!({
            "id": "resp_1", "object": "response", "created_at": 1_764_000_000,
            "status": "incomplete", "model": "gpt-5-2025-08-07", "output": [],
            "service_tier": "flex",
            "tools": [{"type": "web_search", "search_context_size": "high"}],
            "usage": {"input_tokens": 2000, "output_tokens": 4096, "total_tokens": 6096,
                      "input_tokens_details": {"cached_tokens": 0},
                      "output_tokens_details": {"reasoning_tokens": 4096}}
        });
        let event = |kind: &str| {
            serde_json::from_value::<ResponseStreamEvent>(serde_json::json!({
                "type": kind, "sequence_number": 7, "response": response.clone()
            }))
            .unwrap_or_else(|e| panic!("{kind}: {e}"))
        };
        let expected = Usage {
            input: 2000,
            output: 4096,
            reasoning: 4096,
            ..Usage::default()
        };
        // A response cut short by its output limit is billed all the same.
        for ended in [
            "response.completed",
            "response.incomplete",
            "response.failed",
        ] {
            assert_eq!(event(ended).token_usage(), Some(expected), "{ended}");
            assert_eq!(event(ended).response_model(), Some("gpt-5-2025-08-07"));
            assert_eq!(event(ended).service_tier(), Some("flex"), "{ended}");
            assert_eq!(event(ended).search_context_size(), Some("high"), "{ended}");
        }
        for going_on in ["response.created", "response.in_progress"] {
            let event = event(going_on);
            assert_eq!(event.token_usage(), None, "{going_on}");
            assert_eq!(
                (event.service_tier(), event.search_context_size()),
                (None, None),
                "{going_on}"
            );
        }
    }
}
