//! Gemini `usageMetadata`: the prompt count includes cached content; the candidates count
//! excludes thoughts, which bill as output. Its `serviceTier` says the tier that served the call
//! (`flex` at half price, `priority` above the standard price; a request may be served at
//! another tier than it asked for): the call is priced at that tier's prices, or, where the
//! table has none for the model, at the standard ones, counted and warned as any tier without
//! prices is.
//!
//! Audio, which some models price above text (Gemini 2.5 Flash: input audio at 3⅓ times
//! text), is read from the counts by modality: the cached content's `AUDIO` count becomes
//! [`Usage::cache_read_audio`], the rest of the prompt's [`Usage::audio_input`] (where the
//! cached content is not split by modality, it is taken as text first: an upper bound of the
//! cost), the candidates' `AUDIO` count [`Usage::audio_output`] and their `IMAGE` count (image
//! models: Gemini 2.5 Flash Image bills an image token at 12 times a text one)
//! [`Usage::image_output`]. The prompt's `IMAGE` count becomes [`Usage::image_input`] and
//! [`Usage::cache_read_image`] the same way; Gemini bills an image prompt as text (the
//! embedded table declares no image input price, so the text one applies).
//!
//! Grounding with Google Search is billed apart from the tokens, and Google bills it two ways:
//! Gemini 3 and later per search query the model ran, earlier models per grounded prompt. The
//! searches a response records (`candidates[].groundingMetadata.webSearchQueries`) become
//! [`Usage::web_search_requests`] the way the answering model is billed: every query from
//! Gemini 3 on (and from a model the response does not name), one for a grounded prompt before
//! it. Both come with a free quota (per day or per month), so whether one call is billed is not
//! known to the program: the embedded price table declares no search price for Gemini, and a
//! grounded call is unpriced unless the table gives one (`web_search_requests`, per query or
//! per prompt as the model is billed).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{AdapterError, checked, count, usage_object, with_prompt_audio, with_prompt_images};
use crate::token_usage::TokenUsage;
use crate::usage::Usage;

/// `usageMetadata` of a `generateContent` response.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct UsageMetadata {
    /// Every prompt token, cached content included.
    #[serde(deserialize_with = "super::null_as_default")]
    pub prompt_token_count: u64,
    /// Prompt tokens served from cached content.
    #[serde(deserialize_with = "super::null_as_default")]
    pub cached_content_token_count: u64,
    /// Output tokens of the candidates (thoughts excluded).
    #[serde(deserialize_with = "super::null_as_default")]
    pub candidates_token_count: u64,
    /// Thinking tokens (billed as output).
    #[serde(deserialize_with = "super::null_as_default")]
    pub thoughts_token_count: u64,
    /// Tokens of tool-use prompts (billed as input).
    #[serde(deserialize_with = "super::null_as_default")]
    pub tool_use_prompt_token_count: u64,
    /// The total.
    #[serde(deserialize_with = "super::null_as_default")]
    pub total_token_count: u64,
    /// The prompt's tokens by modality.
    pub prompt_tokens_details: Vec<ModalityTokenCount>,
    /// The cached content's tokens by modality.
    pub cache_tokens_details: Vec<ModalityTokenCount>,
    /// The candidates' tokens by modality.
    pub candidates_tokens_details: Vec<ModalityTokenCount>,
    /// The service tier that served the request (`standard`, `flex`, `priority`; the Gemini
    /// API's, not Vertex AI's, says it), empty when not given.
    #[serde(deserialize_with = "super::null_as_default")]
    pub service_tier: String,
}

/// One element of the `…TokensDetails` lists.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ModalityTokenCount {
    /// `TEXT`, `IMAGE`, `VIDEO`, `AUDIO` or `DOCUMENT`.
    pub modality: String,
    /// Its tokens.
    #[serde(deserialize_with = "super::null_as_default")]
    pub token_count: u64,
}

/// The count of `modality` in a list by modality; `None` when the list is empty (not given).
fn count_of(details: &[ModalityTokenCount], modality: &str) -> Option<u64> {
    (!details.is_empty()).then(|| {
        details
            .iter()
            .filter(|d| d.modality == modality)
            .fold(0u64, |sum, d| sum.saturating_add(d.token_count))
    })
}

const AUDIO: &str = "AUDIO";
const IMAGE: &str = "IMAGE";

/// A `generateContent` response, reduced to what pricing needs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct GenerateContentResponse {
    /// The model version that answered.
    pub model_version: String,
    /// Its usage.
    pub usage_metadata: Option<UsageMetadata>,
    /// Its candidates, read for the searches that grounded them.
    #[serde(deserialize_with = "super::null_as_default")]
    pub candidates: Vec<Candidate>,
}

/// One candidate of a response, reduced to what pricing needs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Candidate {
    /// How Google Search grounded it, when it did.
    pub grounding_metadata: Option<GroundingMetadata>,
}

impl Candidate {
    /// The search queries that grounded it.
    pub fn search_queries(&self) -> u64 {
        self.grounding_metadata
            .as_ref()
            .map_or(0, |g| g.web_search_queries.len() as u64)
    }
}

/// `candidates[].groundingMetadata`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct GroundingMetadata {
    /// The search queries the model ran.
    #[serde(deserialize_with = "super::null_as_default")]
    pub web_search_queries: Vec<String>,
}

/// The searches billed for a response of `model` that ran `queries` search queries: each
/// query from Gemini 3 on (and for a model not named), one grounded prompt before it.
fn billed_searches(model: &str, queries: u64) -> u64 {
    let major = model
        .strip_prefix("models/")
        .unwrap_or(model)
        .strip_prefix("gemini-")
        .map(|rest| {
            rest.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        })
        .and_then(|digits| digits.parse::<u32>().ok());
    match major {
        Some(major) if major < 3 => queries.min(1),
        _ => queries,
    }
}

impl UsageMetadata {
    /// The inclusive usage.
    pub fn to_usage(&self) -> Usage {
        let usage = Usage {
            // Sums saturate: an overflowing count is absurd and validation refuses it.
            input: self
                .prompt_token_count
                .saturating_add(self.tool_use_prompt_token_count),
            cache_read: self.cached_content_token_count,
            output: self
                .candidates_token_count
                .saturating_add(self.thoughts_token_count),
            reasoning: self.thoughts_token_count,
            audio_output: count_of(&self.candidates_tokens_details, AUDIO).unwrap_or(0),
            image_output: count_of(&self.candidates_tokens_details, IMAGE).unwrap_or(0),
            ..Usage::default()
        };
        let usage = with_prompt_audio(
            usage,
            count_of(&self.prompt_tokens_details, AUDIO).unwrap_or(0),
            count_of(&self.cache_tokens_details, AUDIO),
        );
        with_prompt_images(
            usage,
            count_of(&self.prompt_tokens_details, IMAGE).unwrap_or(0),
            count_of(&self.cache_tokens_details, IMAGE),
        )
    }
}

impl TokenUsage for UsageMetadata {
    fn token_usage(&self) -> Option<Usage> {
        Some(self.to_usage())
    }

    fn service_tier(&self) -> Option<&str> {
        super::non_empty(&self.service_tier)
    }
}

impl TokenUsage for GenerateContentResponse {
    fn token_usage(&self) -> Option<Usage> {
        let queries = self.candidates.iter().map(Candidate::search_queries).sum();
        self.usage_metadata.as_ref().map(|usage| Usage {
            web_search_requests: billed_searches(&self.model_version, queries),
            ..usage.to_usage()
        })
    }

    fn response_model(&self) -> Option<&str> {
        super::non_empty(&self.model_version)
    }

    fn service_tier(&self) -> Option<&str> {
        self.usage_metadata
            .as_ref()
            .and_then(TokenUsage::service_tier)
    }
}

/// Reads a `generateContent` response or its `usageMetadata` object (which does not count the
/// grounding searches: the response's candidates do).
pub fn from_json(value: &Value) -> Result<Usage, AdapterError> {
    // Each candidate read as the typed response reads it.
    let queries = value
        .get("candidates")
        .and_then(Value::as_array)
        .map_or(0, |candidates| {
            candidates
                .iter()
                .filter_map(|c| Candidate::deserialize(c).ok())
                .map(|c| c.search_queries())
                .sum()
        });
    let model = value
        .get("modelVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    checked(Usage {
        web_search_requests: billed_searches(model, queries),
        ..tokens_from_json(value)?
    })
}

/// The token counts of a response or its `usageMetadata` object.
fn tokens_from_json(value: &Value) -> Result<Usage, AdapterError> {
    let usage = usage_object(value, "usageMetadata", "promptTokenCount")?;
    let thoughts = count(usage, &["thoughtsTokenCount"])?;
    let counts = Usage {
        input: count(usage, &["promptTokenCount"])?
            .saturating_add(count(usage, &["toolUsePromptTokenCount"])?),
        cache_read: count(usage, &["cachedContentTokenCount"])?,
        output: count(usage, &["candidatesTokenCount"])?.saturating_add(thoughts),
        reasoning: thoughts,
        audio_output: count_in(usage, "candidatesTokensDetails", AUDIO)?.unwrap_or(0),
        image_output: count_in(usage, "candidatesTokensDetails", IMAGE)?.unwrap_or(0),
        ..Usage::default()
    };
    let counts = with_prompt_audio(
        counts,
        count_in(usage, "promptTokensDetails", AUDIO)?.unwrap_or(0),
        count_in(usage, "cacheTokensDetails", AUDIO)?,
    );
    checked(with_prompt_images(
        counts,
        count_in(usage, "promptTokensDetails", IMAGE)?.unwrap_or(0),
        count_in(usage, "cacheTokensDetails", IMAGE)?,
    ))
}

/// The count of `modality` in the list `usage[key]`; `None` when the list is absent or empty.
fn count_in(usage: &Value, key: &str, modality: &str) -> Result<Option<u64>, AdapterError> {
    let Some(details) = usage.get(key).and_then(Value::as_array) else {
        return Ok(None);
    };
    let mut audio = None;
    for detail in details {
        let sum = audio.get_or_insert(0u64);
        if detail.get("modality").and_then(Value::as_str) == Some(modality) {
            *sum = sum.saturating_add(count(detail, &["tokenCount"])?);
        }
    }
    Ok(audio)
}
