//! OpenAI: Chat Completions, Responses and Realtime usage, all already inclusive. Chat
//! Completions and Responses also say the service tier that served them (`service_tier`).
//! OpenAI-compatible APIs read the same way; DeepSeek's cache reads
//! (`prompt_cache_hit_tokens`, billed at a tenth of a miss) are read too, and reasoning tokens
//! counted outside the completion tokens (xAI's Grok, some gateways translating Gemini: their
//! `total_tokens` says so) are added to the output.
//!
//! Prompt tokens written to the cache (`cache_write_tokens` in the prompt's details, reported by
//! the models that bill cache writes, GPT-5.6 and later) are [`Usage::cache_write`], priced at
//! the model's cache-write price (its input price where the table gives none); OpenAI's only
//! cache lifetime, 30 minutes, is the 5-minute write's slot.
//!
//! Audio tokens (`gpt-4o-audio-preview`, `gpt-realtime` and the like) are reported in the
//! details (`prompt_tokens_details.audio_tokens` and `completion_tokens_details.audio_tokens` in
//! Chat Completions, `input_token_details`/`output_token_details` in Realtime); they become
//! [`Usage::audio_input`], [`Usage::cache_read_audio`] and [`Usage::audio_output`]. Where the
//! response does not say how many cached tokens were audio (`cached_tokens_details.audio_tokens`,
//! given by Realtime), the cached tokens are taken as text first, which bounds the cost from
//! above.
//!
//! The Responses API's web searches, billed per search call, are its `output` items of type
//! `web_search_call` whose action is a search (those naming no action too, as older responses
//! do; opening or searching inside a page is not a search): read from a whole response, not
//! from its `usage` alone, which does not count them. OpenAI may also bill searches a call ran
//! internally without an output item of its own: the count is what the response shows. The
//! hosted file search tool's calls, billed per call as well, are its `file_search_call` items.
//! The hosted image generation tool's images, billed per image apart from the response's tokens
//! (its `usage` does not hold the image model's), are its `image_generation_call` items that did
//! not fail; the code interpreter's sessions, billed per container, are the distinct containers
//! its `code_interpreter_call` items ran in. The embedded price table prices neither (the price
//! of an image depends on the image model, size and quality the tool was given; a session's on
//! the container's memory and on whether this call created it): a call that used them is
//! unpriced unless your table gives `image_generation_calls` or `code_interpreter_sessions`.
//! In Chat Completions, the search models (`gpt-4o-search-preview`,
//! `gpt-4o-mini-search-preview`, `gpt-5-search-api`, …) search the web before every answer: a
//! response of one counts one search. Their search context size is chosen in the request
//! (`web_search_options.search_context_size`) and not echoed: give it to
//! `#[llm_call(search_context_size = …)]`. A Responses API answer echoes its web search tool's
//! (`tools[].search_context_size`), read as the call's
//! ([`TokenUsage::search_context_size`]).
//!
//! Perplexity's Sonar API answers in this format, with counts of its own in `usage`, read here:
//! `search_context_size` (the call's, which Sonar's request fee depends on), `citation_tokens`
//! (Sonar Deep Research's, billed at its input price: counted as prompt tokens),
//! `reasoning_tokens` at the top of `usage` (Deep Research's, billed apart from and outside the
//! completion tokens: added to the output as reasoning) and `num_search_queries` (Deep
//! Research's searches, billed per search: the web searches). A Sonar answer that gives no
//! `num_search_queries` (Sonar, Sonar Pro, Sonar Reasoning Pro: billed a request fee by search
//! context size instead) counts one web search, as does any answer stating a search context
//! size or of a model named `sonar…`: a price table gives that search the request fee
//! (`web_search_by_context_size`).
//!
//! The cost a provider reports in `usage` (Perplexity's `cost.total_cost`, OpenRouter's `cost`,
//! or on the user's own key its `cost_details.upstream_inference_cost`) is read as
//! [`TokenUsage::reported_cost`]: the call is still priced from the table, as every call is,
//! and the layer compares the two.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    AdapterError, checked, count, count_if_present, usage_object, with_prompt_audio,
    with_prompt_images,
};
use crate::token_usage::TokenUsage;
use crate::usage::Usage;

/// `usage` of a Chat Completions response.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChatUsage {
    /// Every prompt token, cached ones included.
    #[serde(deserialize_with = "super::null_as_default")]
    pub prompt_tokens: u64,
    /// Every completion token, reasoning included.
    #[serde(deserialize_with = "super::null_as_default")]
    pub completion_tokens: u64,
    /// `prompt_tokens + completion_tokens`.
    #[serde(deserialize_with = "super::null_as_default")]
    pub total_tokens: u64,
    /// Breakdown of the prompt.
    pub prompt_tokens_details: Option<PromptTokensDetails>,
    /// Breakdown of the completion.
    pub completion_tokens_details: Option<CompletionTokensDetails>,
    /// Prompt tokens read from the cache, as DeepSeek's OpenAI-compatible API reports them
    /// (instead of `prompt_tokens_details.cached_tokens`).
    #[serde(deserialize_with = "super::null_as_default")]
    pub prompt_cache_hit_tokens: u64,
    /// Perplexity: citation tokens (Sonar Deep Research), billed as prompt tokens apart from
    /// `prompt_tokens`.
    #[serde(deserialize_with = "super::null_as_default")]
    pub citation_tokens: u64,
    /// Perplexity: reasoning tokens (Sonar Deep Research), billed apart from and outside
    /// `completion_tokens` (OpenAI's are in `completion_tokens_details`).
    #[serde(deserialize_with = "super::null_as_default")]
    pub reasoning_tokens: u64,
    /// Perplexity: the searches Sonar Deep Research ran, billed per search.
    pub num_search_queries: Option<u64>,
    /// Perplexity: the search context size of the call (`low`, `medium`, `high`).
    pub search_context_size: Option<String>,
    /// What the provider says the call cost (OpenRouter's, Perplexity's).
    #[serde(flatten)]
    pub provider_cost: ProviderCost,
}

/// The fields in which a provider says what a call cost, beside its usage: OpenRouter's (Chat
/// Completions and Responses) and Perplexity's. Read by [`ProviderCost::reported_cost`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProviderCost {
    /// OpenRouter's number of dollars (credits), Perplexity's breakdown with its `total_cost`;
    /// kept as it came, so that a shape not known here never stops the usage from being read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<Value>,
    /// OpenRouter: the call ran on the user's own provider key, so `cost` is OpenRouter's fee
    /// and the provider's charge is `cost_details.upstream_inference_cost`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_byok: Option<bool>,
    /// OpenRouter: `upstream_inference_cost`, what the upstream provider charged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_details: Option<Value>,
}

impl ProviderCost {
    /// What the provider says the call cost, in US dollars: OpenRouter's `cost` (on the user's
    /// own key, `is_byok`, the upstream provider's `cost_details.upstream_inference_cost`),
    /// Perplexity's `cost.total_cost`. `None` when none is given, or one that is not a
    /// non-negative number.
    pub fn reported_cost(&self) -> Option<crate::Money> {
        let amount = if self.is_byok == Some(true) {
            self.cost_details.as_ref()?.get("upstream_inference_cost")?
        } else {
            match self.cost.as_ref()? {
                Value::Object(breakdown) => breakdown.get("total_cost")?,
                amount => amount,
            }
        };
        reported_amount(amount)
    }
}

/// `prompt_tokens_details`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PromptTokensDetails {
    /// Prompt tokens read from the cache.
    #[serde(deserialize_with = "super::null_as_default")]
    pub cached_tokens: u64,
    /// Prompt tokens of audio, cached ones included.
    #[serde(deserialize_with = "super::null_as_default")]
    pub audio_tokens: u64,
    /// Prompt tokens of images, cached ones included (Realtime, the Images API, some
    /// OpenAI-compatible APIs).
    #[serde(deserialize_with = "super::null_as_default")]
    pub image_tokens: u64,
    /// The cached tokens by modality, when given.
    pub cached_tokens_details: Option<CachedTokensDetails>,
    /// Prompt tokens written to the cache (part of the prompt), when the model bills writes.
    #[serde(deserialize_with = "super::null_as_default")]
    pub cache_write_tokens: u64,
}

/// `prompt_tokens_details.cached_tokens_details`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CachedTokensDetails {
    /// Cached prompt tokens of audio.
    pub audio_tokens: Option<u64>,
    /// Cached prompt tokens of images.
    pub image_tokens: Option<u64>,
}

/// `completion_tokens_details`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CompletionTokensDetails {
    /// Completion tokens spent reasoning.
    #[serde(deserialize_with = "super::null_as_default")]
    pub reasoning_tokens: u64,
    /// Completion tokens of audio.
    #[serde(deserialize_with = "super::null_as_default")]
    pub audio_tokens: u64,
    /// Completion tokens of images (the Images API's newer models), when given.
    pub image_tokens: Option<u64>,
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

/// The counts every OpenAI API reports, under names of its own.
pub(crate) struct Reported<'a> {
    pub(crate) input: u64,
    pub(crate) output: u64,
    /// `total_tokens`, which says whether `output` counts the reasoning (see [`Reported::usage`]).
    pub(crate) total: u64,
    pub(crate) prompt: Option<&'a PromptTokensDetails>,
    pub(crate) completion: Option<&'a CompletionTokensDetails>,
    /// Cache reads reported outside the details (DeepSeek's `prompt_cache_hit_tokens`),
    /// counted when the details give none.
    pub(crate) cache_hits: u64,
}

impl Reported<'_> {
    /// The inclusive usage. OpenAI counts reasoning inside the completion tokens; xAI (Grok),
    /// through the same API, outside them, its total being prompt + completion + reasoning:
    /// a total that says so makes the reasoning part of the output.
    pub(crate) fn usage(&self) -> Usage {
        let prompt = self.prompt.cloned().unwrap_or_default();
        let completion = self.completion.cloned().unwrap_or_default();
        let reasoning = completion.reasoning_tokens;
        let reasoning_apart = reasoning > 0
            && self.total
                == self
                    .input
                    .saturating_add(self.output)
                    .saturating_add(reasoning);
        let cache_read = match prompt.cached_tokens {
            0 => self.cache_hits,
            cached => cached,
        };
        let usage = Usage {
            input: self.input,
            cache_read,
            // Part of the prompt: never more than it leaves beside the cache reads.
            cache_write: prompt
                .cache_write_tokens
                .min(self.input.saturating_sub(cache_read)),
            output: if reasoning_apart {
                self.output.saturating_add(reasoning)
            } else {
                self.output
            },
            reasoning,
            audio_output: completion.audio_tokens,
            image_output: completion.image_tokens.unwrap_or(0),
            ..Usage::default()
        };
        let cached = prompt.cached_tokens_details.unwrap_or_default();
        let usage = with_prompt_audio(usage, prompt.audio_tokens, cached.audio_tokens);
        with_prompt_images(usage, prompt.image_tokens, cached.image_tokens)
    }
}

impl ChatUsage {
    /// Whether the counts were read: `false` when `total_tokens` says tokens were used and
    /// neither `prompt_tokens` nor `completion_tokens` holds any (another format's usage, such
    /// as `input_tokens`/`output_tokens`, deserialized into this type, whose fields default to
    /// 0). Such a usage is no usage ([`TokenUsage::token_usage`] is `None`): a call is then
    /// counted as one without usage, never priced as 0 tokens.
    pub fn counts_read(&self) -> bool {
        self.prompt_tokens > 0 || self.completion_tokens > 0 || self.total_tokens == 0
    }

    /// The inclusive usage (Perplexity's citation and reasoning tokens included; the searches
    /// are counted from a whole response, [`ChatCompletion`], which names the model).
    pub fn to_usage(&self) -> Usage {
        let usage = Reported {
            input: self.prompt_tokens,
            output: self.completion_tokens,
            total: self.total_tokens,
            prompt: self.prompt_tokens_details.as_ref(),
            completion: self.completion_tokens_details.as_ref(),
            cache_hits: self.prompt_cache_hit_tokens,
        }
        .usage();
        with_sonar_tokens(usage, self.citation_tokens, self.reasoning_tokens)
    }
}

/// `usage` with Perplexity's citation tokens (billed as prompt tokens) and its reasoning tokens
/// reported apart from the completion tokens (billed as reasoning) added. Where the
/// completion's details count reasoning already (OpenAI's place for it), a top-level count is
/// taken for the same tokens and not added.
fn with_sonar_tokens(usage: Usage, citation: u64, reasoning_apart: u64) -> Usage {
    let reasoning_apart = if usage.reasoning == 0 {
        reasoning_apart
    } else {
        0
    };
    Usage {
        input: usage.input.saturating_add(citation),
        output: usage.output.saturating_add(reasoning_apart),
        reasoning: usage.reasoning.saturating_add(reasoning_apart),
        ..usage
    }
}

/// A cost a provider reported as a JSON number of dollars, read from its decimal text (never
/// through `f64` arithmetic); `None` for anything else, or a negative amount.
fn reported_amount(amount: &Value) -> Option<crate::Money> {
    let Value::Number(number) = amount else {
        return None;
    };
    crate::Money::from_non_negative_decimal(&number.to_string()).ok()
}

impl TokenUsage for ChatUsage {
    fn token_usage(&self) -> Option<Usage> {
        self.counts_read().then(|| self.to_usage())
    }

    fn reported_cost(&self) -> Option<crate::Money> {
        self.provider_cost.reported_cost()
    }
}

/// The searches a Chat Completions response of `model` ran: those the response counts
/// (Perplexity's `num_search_queries`); else one for the models that search before every
/// answer (OpenAI's search models, Perplexity's Sonar models, and an answer stating a search
/// context size, as Sonar's do: their request fee is priced as that search); none for the
/// others (Chat Completions has no search tool).
pub(crate) fn chat_searches(model: &str, reported: Option<u64>, size_stated: bool) -> u64 {
    let name = model.rsplit('/').next().unwrap_or(model);
    reported.unwrap_or_else(|| {
        u64::from(
            model.contains("-search-preview")
                || model.contains("-search-api")
                || name.starts_with("sonar")
                || size_stated,
        )
    })
}

impl TokenUsage for ChatCompletion {
    fn token_usage(&self) -> Option<Usage> {
        let usage = self.usage.as_ref()?;
        Some(Usage {
            web_search_requests: chat_searches(
                &self.model,
                usage.num_search_queries,
                usage.search_context_size.is_some(),
            ),
            ..usage.token_usage()?
        })
    }

    fn search_context_size(&self) -> Option<&str> {
        self.usage.as_ref()?.search_context_size.as_deref()
    }

    fn reported_cost(&self) -> Option<crate::Money> {
        self.usage.as_ref()?.provider_cost.reported_cost()
    }

    fn response_model(&self) -> Option<&str> {
        super::non_empty(&self.model)
    }

    fn service_tier(&self) -> Option<&str> {
        self.service_tier.as_deref()
    }
}

/// `usage` of a Responses API response, or of a Realtime one ([`RealtimeUsage`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ResponsesUsage {
    /// Every input token, cached ones included.
    #[serde(deserialize_with = "super::null_as_default")]
    pub input_tokens: u64,
    /// Every output token, reasoning included.
    #[serde(deserialize_with = "super::null_as_default")]
    pub output_tokens: u64,
    /// `input_tokens + output_tokens`.
    #[serde(deserialize_with = "super::null_as_default")]
    pub total_tokens: u64,
    /// Breakdown of the input (`input_token_details` in the Realtime API).
    #[serde(alias = "input_token_details")]
    pub input_tokens_details: Option<PromptTokensDetails>,
    /// Breakdown of the output (`output_token_details` in the Realtime API).
    #[serde(alias = "output_token_details")]
    pub output_tokens_details: Option<CompletionTokensDetails>,
    /// What the provider says the call cost (OpenRouter's).
    #[serde(flatten)]
    pub provider_cost: ProviderCost,
}

impl ResponsesUsage {
    /// Whether the counts were read: `false` when `total_tokens` says tokens were used and
    /// neither `input_tokens` nor `output_tokens` holds any (another format's usage, such as
    /// Chat Completions' `prompt_tokens`, deserialized into this type). Such a usage is no
    /// usage ([`TokenUsage::token_usage`] is `None`), never priced as 0 tokens.
    pub fn counts_read(&self) -> bool {
        self.input_tokens > 0 || self.output_tokens > 0 || self.total_tokens == 0
    }

    /// The inclusive usage.
    pub fn to_usage(&self) -> Usage {
        Reported {
            input: self.input_tokens,
            output: self.output_tokens,
            total: self.total_tokens,
            prompt: self.input_tokens_details.as_ref(),
            completion: self.output_tokens_details.as_ref(),
            cache_hits: 0,
        }
        .usage()
    }
}

impl TokenUsage for ResponsesUsage {
    fn token_usage(&self) -> Option<Usage> {
        self.counts_read().then(|| self.to_usage())
    }

    fn reported_cost(&self) -> Option<crate::Money> {
        self.provider_cost.reported_cost()
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
    /// Its output items, read for the web searches they record.
    #[serde(deserialize_with = "super::null_as_default")]
    pub output: Vec<OutputItem>,
    /// The tools the request gave, as the response echoes them: read for the web search tool's
    /// search context size.
    #[serde(deserialize_with = "super::null_as_default")]
    pub tools: Vec<ToolSpec>,
}

/// One of `tools` a Responses API answer echoes, reduced to what pricing needs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ToolSpec {
    /// `web_search`, `web_search_preview`, `file_search`, `function`, …
    #[serde(rename = "type", deserialize_with = "super::null_as_default")]
    pub kind: String,
    /// A web search tool's search context size (`low`, `medium`, `high`).
    pub search_context_size: Option<String>,
}

/// The search context size of the web search tool among `tools`, when one states it.
pub fn web_search_context_size(tools: &[ToolSpec]) -> Option<&str> {
    tools
        .iter()
        .filter(|tool| tool.kind.starts_with("web_search"))
        .find_map(|tool| tool.search_context_size.as_deref())
}

/// One item of a Responses API response's `output`, reduced to what pricing needs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OutputItem {
    /// `message`, `reasoning`, `web_search_call`, `function_call`, …
    #[serde(rename = "type", deserialize_with = "super::null_as_default")]
    pub kind: String,
    /// What a tool call did (`{"type": "search", …}` for a web search).
    pub action: Option<ItemAction>,
    /// The item's status (`completed`, `failed`, …), when given.
    pub status: Option<String>,
    /// The container a code interpreter call ran in.
    pub container_id: Option<String>,
}

/// `output[].action`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ItemAction {
    /// `search`, `open_page`, `find`, …
    #[serde(rename = "type", deserialize_with = "super::null_as_default")]
    pub kind: String,
}

impl OutputItem {
    /// The billed use of a hosted tool the item records, if any.
    fn tool_use(&self) -> Option<ToolUse<'_>> {
        if self.is_web_search() {
            Some(ToolUse::WebSearch)
        } else if self.is_file_search() {
            Some(ToolUse::FileSearch)
        } else if self.is_generated_image() {
            Some(ToolUse::GeneratedImage)
        } else {
            self.code_interpreter_container()
                .map(ToolUse::CodeInterpreter)
        }
    }

    /// The item is an image the hosted image generation tool made (an `image_generation_call`
    /// that did not fail), billed per image.
    pub fn is_generated_image(&self) -> bool {
        self.kind == "image_generation_call" && self.status.as_deref() != Some("failed")
    }

    /// The container a code interpreter call ran in: `Some` for a `code_interpreter_call` (an
    /// empty id when the item names none).
    pub fn code_interpreter_container(&self) -> Option<&str> {
        (self.kind == "code_interpreter_call").then(|| self.container_id.as_deref().unwrap_or(""))
    }

    /// The item is a call of the hosted file search tool, billed per call.
    pub fn is_file_search(&self) -> bool {
        self.kind == "file_search_call"
    }

    /// The item is a web search, billed per search: a `web_search_call` whose action is a
    /// search, or that names no action (as older responses do).
    pub fn is_web_search(&self) -> bool {
        self.kind == "web_search_call"
            && self
                .action
                .as_ref()
                .is_none_or(|action| action.kind == "search")
    }
}

/// `usage` of a Realtime API response (the `response.done` event's `response.usage`): the
/// Responses API's counts, its details spelled `input_token_details`/`output_token_details`
/// (read by [`ResponsesUsage`]), with audio and cached audio apart.
pub type RealtimeUsage = ResponsesUsage;

/// One use of a hosted tool billed per use, as a response's output item records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ToolUse<'a> {
    /// A web search.
    WebSearch,
    /// A file search call.
    FileSearch,
    /// An image the image generation tool made.
    GeneratedImage,
    /// A code interpreter call, in the container it names (empty when it names none).
    CodeInterpreter(&'a str),
}

/// The counts of hosted tools' uses: web searches, file search calls, generated images and code
/// interpreter sessions (distinct containers; a call naming no container counts as one of its
/// own), every other count zero.
pub(crate) fn count_tool_uses<'a>(uses: impl IntoIterator<Item = ToolUse<'a>>) -> Usage {
    let mut usage = Usage::default();
    let mut containers: Vec<&str> = Vec::new();
    for tool_use in uses {
        match tool_use {
            ToolUse::WebSearch => usage.web_search_requests += 1,
            ToolUse::FileSearch => usage.file_search_calls += 1,
            ToolUse::GeneratedImage => usage.image_generation_calls += 1,
            ToolUse::CodeInterpreter("") => usage.code_interpreter_sessions += 1,
            ToolUse::CodeInterpreter(container) => {
                if !containers.contains(&container) {
                    containers.push(container);
                    usage.code_interpreter_sessions += 1;
                }
            }
        }
    }
    usage
}

/// The hosted tools' uses a response's output items record: web searches, file search calls,
/// generated images and code interpreter sessions (distinct containers; a call naming no
/// container counts as one of its own), every other count zero.
pub fn hosted_tool_uses(items: &[OutputItem]) -> Usage {
    count_tool_uses(items.iter().filter_map(OutputItem::tool_use))
}

/// `usage` with the hosted tools' uses counted in `tools`.
pub(crate) fn with_tool_uses(usage: Usage, tools: Usage) -> Usage {
    Usage {
        web_search_requests: tools.web_search_requests,
        file_search_calls: tools.file_search_calls,
        image_generation_calls: tools.image_generation_calls,
        code_interpreter_sessions: tools.code_interpreter_sessions,
        ..usage
    }
}

impl TokenUsage for Response {
    fn token_usage(&self) -> Option<Usage> {
        let usage = self.usage.as_ref()?.token_usage()?;
        Some(with_tool_uses(usage, hosted_tool_uses(&self.output)))
    }

    fn search_context_size(&self) -> Option<&str> {
        web_search_context_size(&self.tools)
    }

    fn reported_cost(&self) -> Option<crate::Money> {
        self.usage.as_ref()?.provider_cost.reported_cost()
    }

    fn response_model(&self) -> Option<&str> {
        super::non_empty(&self.model)
    }

    fn service_tier(&self) -> Option<&str> {
        self.service_tier.as_deref()
    }
}

/// `usage` of an Images API response (`/v1/images/generations` and `/v1/images/edits`, the GPT
/// Image models; also their streams' `*.completed` events): the Responses API's counts, the
/// prompt's image tokens in `input_tokens_details.image_tokens`. Every output token is an image
/// token unless `output_tokens_details` says how many are.
pub type ImagesUsage = ResponsesUsage;

impl ResponsesUsage {
    /// The inclusive usage of an Images API response: as [`ResponsesUsage::to_usage`], its
    /// output tokens image tokens unless `output_tokens_details.image_tokens` says how many are.
    pub fn to_images_usage(&self) -> Usage {
        let split = self
            .output_tokens_details
            .as_ref()
            .and_then(|details| details.image_tokens);
        images_usage(self.to_usage(), split)
    }
}

/// `usage` of an Images API response, its output tokens images unless `split` (the response's
/// `output_tokens_details.image_tokens`) says how many are.
fn images_usage(usage: Usage, split: Option<u64>) -> Usage {
    match split {
        Some(_) => usage,
        None => Usage {
            image_output: usage.visible_output(),
            ..usage
        },
    }
}

/// An Images API response, reduced to what pricing needs. It does not name the model: give it
/// to `#[llm_call(model = …)]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImagesResponse {
    /// Its usage (the GPT Image models report one; DALL·E's responses have none).
    pub usage: Option<ImagesUsage>,
}

impl TokenUsage for ImagesResponse {
    fn token_usage(&self) -> Option<Usage> {
        self.usage
            .as_ref()
            .filter(|usage| usage.counts_read())
            .map(ResponsesUsage::to_images_usage)
    }
}

/// Reads an Images API response, a stream's `image_generation.completed` or
/// `image_edit.completed` event, or their `usage` object ([`ImagesUsage`]).
pub fn images_from_json(value: &Value) -> Result<Usage, AdapterError> {
    let usage = usage_object(value, "usage", "input_tokens")?;
    let split = count_if_present(usage, &["output_tokens_details", "image_tokens"])?;
    let read = inclusive_from_json(
        usage,
        ["input_tokens", "output_tokens"],
        ["input_tokens_details", "output_tokens_details"],
    )?;
    checked(images_usage(read, split))
}

/// Reads a Chat Completions response or its `usage` object (which does not say the model: a
/// search model's search is counted from a whole response), Perplexity's counts included.
pub fn chat_from_json(value: &Value) -> Result<Usage, AdapterError> {
    let object = usage_object(value, "usage", "prompt_tokens")?;
    let usage = inclusive_from_json(
        object,
        ["prompt_tokens", "completion_tokens"],
        ["prompt_tokens_details", "completion_tokens_details"],
    )?;
    let usage = with_sonar_tokens(
        usage,
        count(object, &["citation_tokens"])?,
        count(object, &["reasoning_tokens"])?,
    );
    let model = value
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or_default();
    checked(Usage {
        web_search_requests: chat_searches(
            model,
            count_if_present(object, &["num_search_queries"])?,
            object
                .get("search_context_size")
                .is_some_and(Value::is_string),
        ),
        ..usage
    })
}

/// Reads a Responses API response, a stream's `response.completed` event (which holds it), or
/// its `usage` object (which does not count the web searches: the response's `output` does).
pub fn responses_from_json(value: &Value) -> Result<Usage, AdapterError> {
    let response = in_response(value);
    let usage = usage_object(response, "usage", "input_tokens")?;
    let usage = inclusive_from_json(
        usage,
        ["input_tokens", "output_tokens"],
        ["input_tokens_details", "output_tokens_details"],
    )?;
    // Each item read as the typed response reads it; one that does not read is no tool call.
    let items: Vec<OutputItem> = response
        .get("output")
        .and_then(Value::as_array)
        .map_or_else(Vec::new, |items| {
            items
                .iter()
                .filter_map(|item| OutputItem::deserialize(item).ok())
                .collect()
        });
    checked(with_tool_uses(usage, hosted_tool_uses(&items)))
}

/// Reads a Realtime API `response.done` event, its `response`, or the response's `usage`.
pub fn realtime_from_json(value: &Value) -> Result<Usage, AdapterError> {
    let usage = usage_object(in_response(value), "usage", "input_tokens")?;
    inclusive_from_json(
        usage,
        ["input_tokens", "output_tokens"],
        ["input_token_details", "output_token_details"],
    )
}

/// The `response` an event holds, else the value itself.
fn in_response(value: &Value) -> &Value {
    value
        .get("response")
        .filter(|response| response.is_object())
        .unwrap_or(value)
}

/// [`Reported::usage`] from JSON: `counts` names the input and output counts, `details` their
/// breakdowns.
fn inclusive_from_json(
    usage: &Value,
    [input, output]: [&str; 2],
    [prompt, completion]: [&str; 2],
) -> Result<Usage, AdapterError> {
    let prompt_details = PromptTokensDetails {
        cached_tokens: count(usage, &[prompt, "cached_tokens"])?,
        audio_tokens: count(usage, &[prompt, "audio_tokens"])?,
        image_tokens: count(usage, &[prompt, "image_tokens"])?,
        cache_write_tokens: count(usage, &[prompt, "cache_write_tokens"])?,
        cached_tokens_details: Some(CachedTokensDetails {
            audio_tokens: count_if_present(
                usage,
                &[prompt, "cached_tokens_details", "audio_tokens"],
            )?,
            image_tokens: count_if_present(
                usage,
                &[prompt, "cached_tokens_details", "image_tokens"],
            )?,
        }),
    };
    let completion_details = CompletionTokensDetails {
        reasoning_tokens: count(usage, &[completion, "reasoning_tokens"])?,
        audio_tokens: count(usage, &[completion, "audio_tokens"])?,
        image_tokens: count_if_present(usage, &[completion, "image_tokens"])?,
    };
    checked(
        Reported {
            input: count(usage, &[input])?,
            output: count(usage, &[output])?,
            total: count(usage, &["total_tokens"])?,
            prompt: Some(&prompt_details),
            completion: Some(&completion_details),
            cache_hits: count(usage, &["prompt_cache_hit_tokens"])?,
        }
        .usage(),
    )
}
