//! Provider usage shapes, converted to the inclusive [`Usage`].
//!
//! Each adapter has typed serde structs (deserialize a response into them, or embed them in
//! your own response types) that implement [`TokenUsage`](crate::TokenUsage), and a
//! `from_json` that reads a `serde_json::Value`: either a whole response or its usage object.
//!
//! | provider | native shape | conversion |
//! |---|---|---|
//! | [`openai`] Chat Completions | `prompt_tokens` ⊇ `prompt_tokens_details.cached_tokens`; `completion_tokens` ⊇ `completion_tokens_details.reasoning_tokens` | already inclusive |
//! | [`openai`] Chat Completions from Perplexity's Sonar API | as OpenAI, plus `citation_tokens` and `reasoning_tokens` outside `prompt_tokens` and `completion_tokens`, `num_search_queries`, `search_context_size` | input + citations, output + reasoning; one search per answer (its request fee) unless `num_search_queries` counts them; `cost.total_cost` is the reported cost ([`TokenUsage::reported_cost`](crate::TokenUsage::reported_cost)) |
//! | [`openai`] Chat Completions through OpenRouter | as OpenAI, plus `cost` (credits, US dollars), `is_byok` and `cost_details.upstream_inference_cost` | the reported cost: `cost`, or on the user's own key `upstream_inference_cost` |
//! | [`openai`] Responses ([`openai::Response`]) | `input_tokens` ⊇ `input_tokens_details.cached_tokens`; `output_tokens` ⊇ `output_tokens_details.reasoning_tokens` | already inclusive |
//! | [`anthropic`] Messages | `input_tokens` excludes `cache_read_input_tokens` and `cache_creation_input_tokens` (split in `cache_creation.ephemeral_5m/1h_input_tokens`) | input = sum of the three |
//! | [`anthropic`] streamed Messages | `message_start` gives the input counts, `message_delta` the output so far (and, in newer versions, the input again) | [`anthropic::StreamUsage`] keeps each count's latest value |
//! | `async_openai` (feature `async-openai`) | `CreateChatCompletionResponse`, `CompletionUsage`, `Response`, `ResponseUsage` of the `async-openai` crate | as OpenAI (Chat Completions, Responses) |
//! | [`bedrock`] Converse (and `ConverseStream`'s `metadata`) | `inputTokens` excludes `cacheReadInputTokens` and `cacheWriteInputTokens` (split by lifetime in `cacheDetails`) | input = sum of the three |
//! | [`gemini`] `usageMetadata` | `promptTokenCount` ⊇ `cachedContentTokenCount`; `candidatesTokenCount` excludes `thoughtsTokenCount` | output = candidates + thoughts |

pub mod anthropic;
#[cfg(feature = "async-openai")]
pub mod async_openai;
pub mod bedrock;
pub mod gemini;
pub mod openai;

use serde_json::Value;
use thiserror::Error;

use crate::usage::{Usage, UsageError};

/// A provider payload that does not give a usable usage.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum AdapterError {
    /// No usage object where the provider puts it.
    #[error("no `{0}` object in the response")]
    NoUsage(&'static str),
    /// A usage object without the count every usage of the format gives: another format's
    /// (its counts would all read as 0), or one whose counts are missing.
    #[error(
        "the `{key}` object has no `{marker}`: it is not in this format (another provider's or API's response?) or its counts are missing"
    )]
    NotThisFormat {
        /// The usage object's key.
        key: &'static str,
        /// The count it lacks.
        marker: &'static str,
    },
    /// A count that is not a non-negative integer.
    #[error("`{field}` must be a non-negative integer, got {value}")]
    BadCount {
        /// The field's path.
        field: String,
        /// What it held.
        value: String,
    },
    /// A value the adapter does not know, such as a cache lifetime it has no price for.
    #[error("`{field}` holds {value}, which this version does not know")]
    UnknownValue {
        /// The field's path.
        field: String,
        /// What it held.
        value: String,
    },
    /// The counts contradict each other.
    #[error(transparent)]
    Inconsistent(#[from] UsageError),
}

/// Reads `object[path…]` as a count: absent or null is 0.
pub(crate) fn count(object: &Value, path: &[&str]) -> Result<u64, AdapterError> {
    Ok(count_if_present(object, path)?.unwrap_or(0))
}

/// Reads `object[path…]` as a count: `None` when absent or null.
pub(crate) fn count_if_present(object: &Value, path: &[&str]) -> Result<Option<u64>, AdapterError> {
    let mut value = object;
    for key in path {
        match value.get(key) {
            Some(inner) => value = inner,
            None => return Ok(None),
        }
    }
    match value {
        Value::Null => Ok(None),
        Value::Number(n) => n.as_u64().map(Some).ok_or_else(|| AdapterError::BadCount {
            field: path.join("."),
            value: n.to_string(),
        }),
        other => Err(AdapterError::BadCount {
            field: path.join("."),
            value: other.to_string(),
        }),
    }
}

/// The usage object: `value[key]` when the value is a whole response, else the value itself.
/// Either must hold `marker`, the count every usage of the format gives: one without it is
/// another format's (Responses API counts read as a Chat Completion's, say), whose counts
/// would all read as 0.
pub(crate) fn usage_object<'v>(
    value: &'v Value,
    key: &'static str,
    marker: &'static str,
) -> Result<&'v Value, AdapterError> {
    match value.get(key) {
        Some(usage) if usage.is_object() && usage.get(marker).is_none() => {
            Err(AdapterError::NotThisFormat { key, marker })
        }
        Some(usage) if usage.is_object() => Ok(usage),
        _ if value.get(marker).is_some() => Ok(value),
        _ => Err(AdapterError::NoUsage(key)),
    }
}

/// `usage` with its prompt's `audio` tokens (cached ones included) split into
/// [`Usage::audio_input`] and [`Usage::cache_read_audio`]: exactly when the response says how
/// many cached tokens were audio (`cached_audio`); else taking the cached tokens as text first
/// (the uncached audio at most the uncached prompt), which bounds the cost from above wherever
/// caching saves more on an audio token than on a text one (every model known: audio costs
/// several times text, and its cache reads are discounted alike).
pub(crate) fn with_prompt_audio(mut usage: Usage, audio: u64, cached_audio: Option<u64>) -> Usage {
    let room = usage.input.saturating_sub(usage.cache_read);
    (usage.audio_input, usage.cache_read_audio) = split_by_cache(audio, cached_audio, room);
    usage
}

/// `(uncached, cached)` of `tokens` of one modality: exactly when `cached` is given; else as
/// many uncached as the uncached prompt left for them (`room`) holds, the rest cached.
fn split_by_cache(tokens: u64, cached: Option<u64>, room: u64) -> (u64, u64) {
    let uncached = match cached {
        Some(cached) => tokens.saturating_sub(cached),
        None => tokens.min(room),
    };
    (uncached, cached.unwrap_or(tokens - uncached))
}

/// `usage` with its prompt's `images` tokens (cached ones included) split into
/// [`Usage::image_input`] and [`Usage::cache_read_image`], as [`with_prompt_audio`] splits the
/// audio (after it: without the cached split, the uncached images are at most the uncached
/// prompt the audio left). Taking the cached tokens as text first bounds the cost from above
/// here too: where images are priced apart, a cache read saves more on an image token than on
/// a text one (`gpt-image-2`: $6 against $3.75 per million).
pub(crate) fn with_prompt_images(
    mut usage: Usage,
    images: u64,
    cached_images: Option<u64>,
) -> Usage {
    let room = usage
        .input
        .saturating_sub(usage.cache_read)
        .saturating_sub(usage.audio_input);
    (usage.image_input, usage.cache_read_image) = split_by_cache(images, cached_images, room);
    usage
}

/// The inclusive usage of counts that give the prompt's uncached tokens (`input`) apart from its
/// cache reads and writes, as Anthropic's and Bedrock's do; a split of the writes by lifetime
/// (`(5-minute, 1-hour)`) that does not cover every write leaves the rest at the 5-minute
/// lifetime (the default), and one that covers more than the writes counts them all. Sums
/// saturate: counts that large are absurd, and validation refuses them, where a wrapped sum
/// would pass for a real count.
pub(crate) fn with_cache_outside_input(
    input: u64,
    read: u64,
    written: u64,
    split: Option<(u64, u64)>,
) -> Usage {
    let (write_5m, write_1h) = match split {
        Some((five, hour)) if five.saturating_add(hour) > 0 => (
            written.max(five.saturating_add(hour)).saturating_sub(hour),
            hour,
        ),
        _ => (written, 0),
    };
    Usage {
        input: input
            .saturating_add(read)
            .saturating_add(write_5m)
            .saturating_add(write_1h),
        cache_read: read,
        cache_write: write_5m,
        cache_write_1h: write_1h,
        ..Usage::default()
    }
}

/// The model a response names: `None` when the field is empty (a response that left it out).
pub(crate) fn non_empty(model: &str) -> Option<&str> {
    Some(model).filter(|model| !model.is_empty())
}

/// A value in a typed response: `null` reads as its default, as absent does: a count as 0 (some
/// OpenAI-compatible servers send `null` for counts they do not keep), like the JSON readers'
/// [`count`], and a list or text as empty (a response read for its usage must not fail on a
/// part it only looks into).
pub(crate) fn null_as_default<'de, D, T>(value: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + serde::Deserialize<'de>,
{
    Ok(<Option<T> as serde::Deserialize>::deserialize(value)?.unwrap_or_default())
}

/// Checks the converted usage.
pub(crate) fn checked(usage: Usage) -> Result<Usage, AdapterError> {
    usage.validate()?;
    Ok(usage)
}
