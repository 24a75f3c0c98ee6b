//! One line of `llm-cost quote`: parse, price, and render.

use cost_core::{CostBreakdown, Money, PriceTable, ServiceTier, StalePrice, TokenKind, Usage};
use std::fmt;

use serde::Serialize;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::map::Entry;

/// The rendered answer to one input line.
pub(crate) struct LineOutcome {
    /// One JSON object, without the newline.
    pub json: String,
    /// `false` when the line got an error object.
    pub priced: bool,
    /// The price it was quoted at, when that was read more than the age limit before `now`.
    pub stale: Option<StalePrice>,
}

/// What a line is priced against: the table, the time and the age limit of prices.
pub(crate) struct Pricing<'a> {
    pub table: &'a PriceTable,
    /// Seconds since the epoch (UTC).
    pub now: i64,
    /// Days after which a price is reported as stale.
    pub age_limit: u32,
    /// A call the table cannot price is charged the cost its provider reported, when the line
    /// (or the answer) gives one (`--charge-reported-cost-when-unpriced`).
    pub charge_reported: bool,
    /// A line of usage may give keys the format does not know, ignored
    /// (`--allow-unknown-keys`); otherwise such a line gets an error.
    pub allow_unknown_keys: bool,
}

/// Token fields of an input line and the [`Usage`] field each fills.
const TOKEN_FIELDS: [(&str, TokenKind); 16] = [
    ("input_tokens", TokenKind::Input),
    ("output_tokens", TokenKind::Output),
    ("cache_read_tokens", TokenKind::CacheRead),
    ("cache_write_tokens", TokenKind::CacheWrite),
    ("cache_write_1h_tokens", TokenKind::CacheWrite1h),
    ("reasoning_tokens", TokenKind::Reasoning),
    ("audio_input_tokens", TokenKind::AudioInput),
    ("audio_output_tokens", TokenKind::AudioOutput),
    ("cache_read_audio_tokens", TokenKind::CacheReadAudio),
    ("image_output_tokens", TokenKind::ImageOutput),
    ("web_search_requests", TokenKind::WebSearchRequests),
    ("image_input_tokens", TokenKind::ImageInput),
    ("cache_read_image_tokens", TokenKind::CacheReadImage),
    ("file_search_calls", TokenKind::FileSearchCalls),
    ("image_generation_calls", TokenKind::ImageGenerationCalls),
    (
        "code_interpreter_sessions",
        TokenKind::CodeInterpreterSessions,
    ),
];

/// The keys of a line of usage besides its counts ([`TOKEN_FIELDS`]).
const OTHER_KEYS: [&str; 7] = [
    "id",
    "model",
    "service_tier",
    "data_residency",
    "search_context_size",
    "date",
    "reported_cost_usd",
];

/// Keys of the providers' responses (and of their usage objects): a line giving one is a
/// response, to be read with `--from`.
const RESPONSE_KEYS: [&str; 16] = [
    "usage",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "promptTokenCount",
    "candidatesTokenCount",
    "choices",
    "object",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "prompt_tokens_details",
    "completion_tokens_details",
    "usageMetadata",
    "stop_reason",
    "content",
    "output",
];

/// Every key a line of usage may give.
fn known_keys() -> impl Iterator<Item = &'static str> {
    TOKEN_FIELDS.iter().map(|(name, _)| *name).chain(OTHER_KEYS)
}

/// Why a line giving `key`, which the format does not know, gets an error: a misspelt count
/// would otherwise be priced as 0, a wrong cost that looks right.
fn unknown_key_error(key: &str) -> String {
    // Near enough to be a slip of the keyboard (`input_token`, `reasoning_tokes`).
    let nearest = known_keys()
        .map(|name| (strsim::levenshtein(key, name), name))
        .filter(|(distance, name)| *distance * 4 <= name.len())
        .min();
    let hint = if RESPONSE_KEYS.contains(&key) {
        "; a provider's response is read with `--from FORMAT`".to_owned()
    } else if let Some((_, name)) = nearest {
        format!("; did you mean `{name}`?")
    } else {
        "; `llm-cost quote --help` lists the keys a line gives".to_owned()
    };
    format!(
        "unknown key `{key}` (a misspelt count would be priced as 0){hint}; `--allow-unknown-keys` ignores keys the format does not know"
    )
}

#[derive(Serialize)]
struct Priced<'a> {
    id: &'a Value,
    model: &'a str,
    resolved: &'a str,
    #[serde(rename = "match")]
    rule: cost_core::MatchRule,
    cost_usd: Money,
    breakdown: Breakdown,
    cache_savings_usd: Money,
    service_tier: ServiceTier,
    data_residency: bool,
    /// The search context size the call stated, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    search_context_size: Option<cost_core::SearchContextSize>,
    context_tier_above: Option<u64>,
    table_version: &'a str,
    as_of: Option<&'a str>,
    /// The date of the entry's price change that priced the call, when one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    prices_from: Option<&'a str>,
    /// What the provider said the call cost, when its answer said (`--from`).
    #[serde(skip_serializing_if = "Option::is_none")]
    reported_cost_usd: Option<Money>,
    /// Whether `cost_usd` agrees with it, to the provider's rounding
    /// ([`Money::agrees_with_reported`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    agrees_with_reported: Option<bool>,
}

#[derive(Serialize)]
struct Breakdown {
    uncached_input_usd: Money,
    cache_read_usd: Money,
    cache_write_usd: Money,
    cache_write_1h_usd: Money,
    output_usd: Money,
    reasoning_usd: Money,
    audio_input_usd: Money,
    audio_output_usd: Money,
    image_output_usd: Money,
    web_search_usd: Money,
    image_input_usd: Money,
    file_search_usd: Money,
    image_generation_usd: Money,
    code_interpreter_usd: Money,
}

impl From<CostBreakdown> for Breakdown {
    fn from(b: CostBreakdown) -> Self {
        Breakdown {
            uncached_input_usd: b.uncached_input,
            cache_read_usd: b.cache_read,
            cache_write_usd: b.cache_write,
            cache_write_1h_usd: b.cache_write_1h,
            output_usd: b.output,
            reasoning_usd: b.reasoning,
            audio_input_usd: b.audio_input,
            audio_output_usd: b.audio_output,
            image_output_usd: b.image_output,
            web_search_usd: b.web_search,
            image_input_usd: b.image_input,
            file_search_usd: b.file_search,
            image_generation_usd: b.image_generation,
            code_interpreter_usd: b.code_interpreter,
        }
    }
}

/// A call the table cannot price, charged the cost its provider reported
/// (`--charge-reported-cost-when-unpriced`).
#[derive(Serialize)]
struct ChargedAsReported<'a> {
    id: &'a Value,
    model: &'a str,
    cost_usd: Money,
    /// Always `provider`: the cost is the provider's figure, not the table's.
    cost_source: &'static str,
    reported_cost_usd: Money,
    /// Why the table could not price the call.
    no_table_price: String,
}

#[derive(Serialize)]
struct Failed<'a> {
    id: &'a Value,
    error: String,
}

/// Prices one input line; `None` for a blank line, which is skipped.
pub(crate) fn quote_line(pricing: &Pricing<'_>, line: &[u8]) -> Option<LineOutcome> {
    answer_line(line, &["id"], |value, _| price(pricing, value))
}

/// The answer to one line: `None` when it is blank; an error for bad JSON; else what `price`
/// makes of its JSON value and its id (the first of `id_keys` it has), or an error naming that
/// id.
fn answer_line(
    line: &[u8],
    id_keys: &[&str],
    price: impl FnOnce(&Value, &Value) -> Result<(String, Option<StalePrice>), String>,
) -> Option<LineOutcome> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    let not_json = |e: serde_json::Error| failed(&Value::Null, format!("invalid JSON: {e}"));
    let value = match serde_json::from_slice::<KeysOnce>(line) {
        Ok(KeysOnce(value)) => value,
        // A key given twice: the value read as JSON (where a later syntax error says the line
        // is not JSON, as it would without the repeated key) gives the line's id.
        Err(twice) if twice.is_data() => {
            let value = match serde_json::from_slice::<Value>(line) {
                Ok(value) => value,
                Err(e) => return Some(not_json(e)),
            };
            // Where the reader stood when it gave up, past the key: no help in finding it.
            let said = twice.to_string();
            let position = format!(" at line {} column {}", twice.line(), twice.column());
            let said = said.strip_suffix(&position).unwrap_or(&said);
            return Some(failed(line_id(&value, id_keys), said.to_owned()));
        }
        Err(e) => return Some(not_json(e)),
    };
    let id = line_id(&value, id_keys);
    Some(match price(&value, id) {
        Ok((json, stale)) => LineOutcome {
            json,
            priced: true,
            stale,
        },
        Err(error) => failed(id, error),
    })
}

/// The line's id: its first of `id_keys`.
fn line_id<'v>(value: &'v Value, id_keys: &[&str]) -> &'v Value {
    id_keys
        .iter()
        .find_map(|key| value.get(*key))
        .unwrap_or(&Value::Null)
}

/// A JSON value whose objects give each key once: reading one where an object gives a key
/// twice fails, naming the key and where (a [`Value`] keeps one of the two silently, and
/// which one the line meant is unknown).
struct KeysOnce(Value);

impl<'de> Deserialize<'de> for KeysOnce {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(KeysOnceVisitor)
    }
}

struct KeysOnceVisitor;

impl<'de> Visitor<'de> for KeysOnceVisitor {
    type Value = KeysOnce;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<KeysOnce, E> {
        Ok(KeysOnce(Value::Bool(b)))
    }

    fn visit_i64<E>(self, n: i64) -> Result<KeysOnce, E> {
        Ok(KeysOnce(Value::Number(n.into())))
    }

    fn visit_u64<E>(self, n: u64) -> Result<KeysOnce, E> {
        Ok(KeysOnce(Value::Number(n.into())))
    }

    fn visit_f64<E>(self, n: f64) -> Result<KeysOnce, E> {
        Ok(KeysOnce(
            serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number),
        ))
    }

    fn visit_str<E>(self, text: &str) -> Result<KeysOnce, E> {
        Ok(KeysOnce(Value::String(text.to_owned())))
    }

    fn visit_string<E>(self, text: String) -> Result<KeysOnce, E> {
        Ok(KeysOnce(Value::String(text)))
    }

    fn visit_unit<E>(self) -> Result<KeysOnce, E> {
        Ok(KeysOnce(Value::Null))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<KeysOnce, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(KeysOnce(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(KeysOnce(Value::Array(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeysOnce, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let KeysOnce(value) = map.next_value()?;
            match object.entry(key) {
                Entry::Vacant(slot) => {
                    slot.insert(value);
                }
                Entry::Occupied(given) => {
                    return Err(de::Error::custom(format_args!(
                        "key `{}` is given twice",
                        given.key()
                    )));
                }
            }
        }
        Ok(KeysOnce(Value::Object(object)))
    }
}

fn failed(id: &Value, error: String) -> LineOutcome {
    let json = serde_json::to_string(&Failed { id, error })
        .unwrap_or_else(|_| r#"{"id":null,"error":"unprintable error"}"#.to_owned());
    LineOutcome {
        json,
        priced: false,
        stale: None,
    }
}

fn price(pricing: &Pricing<'_>, value: &Value) -> Result<(String, Option<StalePrice>), String> {
    let object = value
        .as_object()
        .ok_or_else(|| "expected a JSON object".to_owned())?;
    if !pricing.allow_unknown_keys
        && let Some(unknown) = object
            .keys()
            .find(|key| !known_keys().any(|name| name == key.as_str()))
    {
        return Err(unknown_key_error(unknown));
    }
    let id = object.get("id").unwrap_or(&Value::Null);
    let model = match object.get("model") {
        Some(Value::String(model)) => model.as_str(),
        Some(_) => return Err("`model` must be a string".to_owned()),
        None => return Err("missing `model`".to_owned()),
    };
    let mut usage = Usage::default();
    for (field, kind) in TOKEN_FIELDS {
        match object.get(field) {
            None | Some(Value::Null) => {}
            Some(Value::Number(n)) if n.as_u64().is_some() => {
                usage.set(kind, n.as_u64().unwrap_or_default());
            }
            Some(other) => {
                return Err(format!(
                    "`{field}` must be a non-negative integer, got {other}"
                ));
            }
        }
    }
    let service_tier = match object.get("service_tier") {
        None | Some(Value::Null) => ServiceTier::Standard,
        Some(Value::String(name)) => ServiceTier::parse(name).map_err(|e| e.to_string())?,
        Some(other) => return Err(format!("`service_tier` must be a string, got {other}")),
    };
    let data_residency = match object.get("data_residency") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(on)) => *on,
        Some(other) => {
            return Err(format!(
                "`data_residency` must be true or false, got {other}"
            ));
        }
    };
    // The day the call was made, priced at the prices in force then; today when not given.
    let at = match object.get("date") {
        None | Some(Value::Null) => pricing.now,
        Some(Value::String(date)) => cost_core::budget::parse_utc_date(date)
            .and_then(|day| day.checked_mul(86_400))
            .ok_or_else(|| format!("`date` must be a date in the form YYYY-MM-DD, got `{date}`"))?,
        Some(other) => return Err(format!("`date` must be a string, got {other}")),
    };
    let search_context_size = match object.get("search_context_size") {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) => {
            Some(cost_core::SearchContextSize::parse(name).map_err(|e| e.to_string())?)
        }
        Some(other) => {
            return Err(format!(
                "`search_context_size` must be a string, got {other}"
            ));
        }
    };
    // What the provider said the call cost, to set beside the table's: decimal text, or a
    // JSON number read by its digits.
    let reported_cost = match object.get("reported_cost_usd") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(text.clone()),
        Some(Value::Number(number)) => Some(number.to_string()),
        Some(other) => {
            return Err(format!(
                "`reported_cost_usd` must be an amount of US dollars, got {other}"
            ));
        }
    }
    .map(|text| {
        Money::from_non_negative_decimal(&text).map_err(|e| {
            format!("`reported_cost_usd` must be a non-negative amount of US dollars: {e}")
        })
    })
    .transpose()?;
    let terms = cost_core::CallTerms {
        service_tier,
        data_residency,
        search_context_size,
    };
    price_call(pricing, id, model, &usage, terms, at, reported_cost)
}

/// Prices one call of `model` and renders it.
fn price_call(
    pricing: &Pricing<'_>,
    id: &Value,
    model: &str,
    usage: &Usage,
    terms: cost_core::CallTerms,
    at: i64,
    reported_cost: Option<Money>,
) -> Result<(String, Option<StalePrice>), String> {
    let quote = match pricing.table.quote_at(model, usage, terms, at) {
        Ok(quote) => quote,
        // No price for the call (an invalid usage is no reason to charge what the provider
        // said): its provider's figure, where asked to.
        Err(no_price) if pricing.charge_reported && usage.validate().is_ok() => {
            let Some(reported) = reported_cost else {
                return Err(no_price.to_string());
            };
            let out = ChargedAsReported {
                id,
                model,
                cost_usd: reported,
                cost_source: "provider",
                reported_cost_usd: reported,
                no_table_price: no_price.to_string(),
            };
            return Ok((
                serde_json::to_string(&out).map_err(|e| e.to_string())?,
                None,
            ));
        }
        Err(e) => return Err(e.to_string()),
    };
    let out = Priced {
        id,
        model,
        resolved: &quote.entry.key,
        rule: quote.rule,
        cost_usd: quote.total(),
        breakdown: quote.priced.breakdown.into(),
        cache_savings_usd: quote.priced.breakdown.cache_savings,
        service_tier: quote.priced.service_tier,
        data_residency: quote.priced.data_residency,
        search_context_size: terms.search_context_size,
        context_tier_above: quote.priced.context_tier,
        table_version: &quote.table.version,
        as_of: quote
            .entry
            .as_of
            .as_deref()
            .or(quote.table.as_of.as_deref()),
        prices_from: quote.change.map(cost_core::PriceChange::on),
        reported_cost_usd: reported_cost,
        agrees_with_reported: reported_cost
            .map(|reported| quote.total().agrees_with_reported(reported)),
    };
    let stale = quote.entry.stale_price(pricing.now, pricing.age_limit);
    Ok((
        serde_json::to_string(&out).map_err(|e| e.to_string())?,
        stale,
    ))
}

/// A provider's response format `quote --from` reads: each line one response (or the stream
/// event that ends one) as the provider sent it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ResponseFormat {
    /// OpenAI Chat Completions (`chat.completion`).
    OpenaiChat,
    /// OpenAI Responses (a response, or the `response.completed` event holding it).
    OpenaiResponses,
    /// OpenAI Realtime (`response.done`); it does not name the model: give `--model`.
    OpenaiRealtime,
    /// OpenAI Images (`/v1/images/generations`, `/edits`); it does not name the model: give
    /// `--model`.
    OpenaiImages,
    /// Anthropic Messages.
    Anthropic,
    /// Gemini `generateContent`.
    Gemini,
    /// Amazon Bedrock Converse; it does not name the model: give `--model`.
    Bedrock,
}

/// What a response says of its call beyond the usage.
#[derive(Default)]
struct Described {
    model: Option<String>,
    service_tier: Option<String>,
    data_residency: Option<bool>,
    search_context_size: Option<String>,
    reported_cost: Option<Money>,
}

/// What the typed response `T` reads from `value`; nothing when it does not read as one.
fn described<T: serde::de::DeserializeOwned + cost_core::TokenUsage>(value: &Value) -> Described {
    match T::deserialize(value) {
        Ok(typed) => Described {
            model: typed.response_model().map(str::to_owned),
            service_tier: typed.service_tier().map(str::to_owned),
            data_residency: typed.data_residency(),
            search_context_size: typed.search_context_size().map(str::to_owned),
            reported_cost: typed.reported_cost(),
        },
        Err(_) => Described::default(),
    }
}

impl ResponseFormat {
    /// The usage of a response, and what it says of its call.
    fn read(self, value: &Value) -> Result<(Usage, Described), String> {
        use cost_core::adapters::{AdapterError, anthropic, bedrock, gemini, openai};
        type FromJson = fn(&Value) -> Result<Usage, AdapterError>;
        type Describe = fn(&Value) -> Described;
        let nothing: Describe = |_| Described::default();
        let (from_json, describe): (FromJson, Describe) = match self {
            ResponseFormat::OpenaiChat => {
                (openai::chat_from_json, described::<openai::ChatCompletion>)
            }
            // A response, or the stream event that holds it (`response.completed`).
            ResponseFormat::OpenaiResponses => (openai::responses_from_json, |value| {
                described::<openai::Response>(in_response(value))
            }),
            ResponseFormat::OpenaiRealtime => (openai::realtime_from_json, nothing),
            ResponseFormat::OpenaiImages => (openai::images_from_json, nothing),
            ResponseFormat::Anthropic => (anthropic::from_json, described::<anthropic::Message>),
            ResponseFormat::Gemini => (
                gemini::from_json,
                described::<gemini::GenerateContentResponse>,
            ),
            ResponseFormat::Bedrock => (bedrock::from_json, described::<bedrock::ConverseResponse>),
        };
        let usage = from_json(value).map_err(|e| e.to_string())?;
        Ok((usage, describe(value)))
    }
}

/// The response a stream event holds (`response.completed`, `response.done`), else the value.
fn in_response(value: &Value) -> &Value {
    value
        .get("response")
        .filter(|response| response.is_object())
        .unwrap_or(value)
}

/// When a response was created, in seconds since the epoch: OpenAI's `created` (Chat
/// Completions) or `created_at` (Responses, also inside the event that holds one); `now` where
/// it does not say.
fn created_at(value: &Value, now: i64) -> i64 {
    [value, in_response(value)]
        .into_iter()
        .flat_map(|v| [v.get("created"), v.get("created_at")])
        .flatten()
        .find_map(Value::as_i64)
        .filter(|seconds| *seconds > 0)
        .unwrap_or(now)
}

/// Prices one line of provider responses in `format` (`quote --from`): the model the response
/// names, else `fallback_model` (`--model`); the service tier and data residency it says; the
/// prices in force when it was created ([`created_at`]). `None` for a blank line, which is
/// skipped.
pub(crate) fn quote_response_line(
    pricing: &Pricing<'_>,
    format: ResponseFormat,
    fallback_model: Option<&str>,
    line: &[u8],
) -> Option<LineOutcome> {
    // The response's own id (Gemini's `responseId`; a Realtime event's `event_id`).
    answer_line(line, &["id", "responseId", "event_id"], |value, id| {
        let (usage, said) = format.read(value)?;
        let model = said.model.as_deref().or(fallback_model).ok_or_else(|| {
            "the response does not name its model: give `--model MODEL`".to_owned()
        })?;
        let service_tier = match said.service_tier.as_deref() {
            Some(tier) => ServiceTier::parse(tier).map_err(|e| e.to_string())?,
            None => ServiceTier::Standard,
        };
        let search_context_size = said
            .search_context_size
            .as_deref()
            .map(cost_core::SearchContextSize::parse)
            .transpose()
            .map_err(|e| e.to_string())?;
        let terms = cost_core::CallTerms {
            service_tier,
            data_residency: said.data_residency.unwrap_or(false),
            search_context_size,
        };
        price_call(
            pricing,
            id,
            model,
            &usage,
            terms,
            created_at(value, pricing.now),
            said.reported_cost,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(line: &str) -> (Value, bool) {
        run_with(&PriceTable::default(), line)
    }

    /// Pricing at `table`, at the epoch, with the default age limit.
    fn pricing_at(table: &PriceTable) -> Pricing<'_> {
        Pricing {
            table,
            now: 0,
            age_limit: cost_core::DEFAULT_PRICE_AGE_LIMIT_DAYS,
            charge_reported: false,
            allow_unknown_keys: false,
        }
    }

    fn run_with(table: &PriceTable, line: &str) -> (Value, bool) {
        let pricing = pricing_at(table);
        let outcome = quote_line(&pricing, line.as_bytes()).unwrap_or(LineOutcome {
            json: "null".to_owned(),
            priced: false,
            stale: None,
        });
        (
            serde_json::from_str(&outcome.json).unwrap_or(Value::Null),
            outcome.priced,
        )
    }

    #[test]
    fn prices_a_line_and_echoes_the_id() {
        let (out, ok) = run(
            r#"{"id": {"k": [1]}, "model": "gpt-4o", "input_tokens": 1000, "output_tokens": 100}"#,
        );
        assert!(ok);
        assert_eq!(out["id"], serde_json::json!({"k": [1]}));
        assert_eq!(out["cost_usd"], "0.0035");
        assert_eq!(out["resolved"], "gpt-4o");
        assert_eq!(out["breakdown"]["output_usd"], "0.001");
    }

    #[test]
    fn image_prompt_tokens_are_priced_at_the_image_price_or_as_text() {
        let prices = r#"
version = "test-images"

[models."gpt-image-2"]
input = "5"
image_input = "8"
output = "10"
image_output = "30"

[models."vision-as-text"]
input = "5"
output = "10"
"#;
        let table = PriceTable::from_text(prices, "prices.toml").unwrap_or_else(|e| panic!("{e}"));
        for (model, image_usd, total) in [
            ("gpt-image-2", "0.0032", "0.0037"),
            ("vision-as-text", "0.002", "0.0025"),
        ] {
            let line = format!(
                r#"{{"id": 1, "model": "{model}", "input_tokens": 500, "image_input_tokens": 400}}"#
            );
            let (out, ok) = run_with(&table, &line);
            assert!(ok, "{model}: {out}");
            assert_eq!(out["breakdown"]["image_input_usd"], image_usd, "{model}");
            assert_eq!(out["cost_usd"], total, "{model}");
        }
    }

    #[test]
    fn file_search_calls_are_priced_per_call() {
        let (out, ok) = run(
            r#"{"id": 3, "model": "gpt-4.1-mini", "input_tokens": 12000, "output_tokens": 300, "file_search_calls": 2}"#,
        );
        assert!(ok, "{out}");
        assert_eq!(out["breakdown"]["file_search_usd"], "0.005");
        assert_eq!(out["cost_usd"], "0.01028");
    }

    #[test]
    fn image_generation_and_code_interpreter_are_priced_per_use_where_the_table_prices_them() {
        let table = PriceTable::from_text(
            "version = \"1\"\n[models.m]\ninput = \"0.4\"\noutput = \"1.6\"\n\
             image_generation_calls = \"0.042\"\ncode_interpreter_sessions = \"0.03\"\n",
            "prices.toml",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let (out, ok) = run_with(
            &table,
            r#"{"id": 4, "model": "m", "input_tokens": 2000, "output_tokens": 500, "image_generation_calls": 2, "code_interpreter_sessions": 1}"#,
        );
        assert!(ok, "{out}");
        assert_eq!(out["breakdown"]["image_generation_usd"], "0.084");
        assert_eq!(out["breakdown"]["code_interpreter_usd"], "0.03");
        // 2 000 × 0.4e-6 + 500 × 1.6e-6 + 2 × $0.042 + $0.03.
        assert_eq!(out["cost_usd"], "0.1156");
        // The embedded table does not price them: an error, never a cost without them.
        let (out, ok) = run(
            r#"{"id": 5, "model": "gpt-5", "input_tokens": 2000, "output_tokens": 500, "image_generation_calls": 1}"#,
        );
        assert!(!ok, "{out}");
        let error = out["error"].as_str().unwrap_or_default();
        assert!(error.contains("image_generation_calls"), "{error}");
    }

    #[test]
    fn web_searches_are_priced_per_search() {
        let line = r#"{"id": 2, "model": "claude-sonnet-4-5", "input_tokens": 1000, "output_tokens": 100, "web_search_requests": 3}"#;
        let (out, ok) = run(line);
        assert!(ok);
        assert_eq!(out["cost_usd"], "0.0345");
        assert_eq!(out["breakdown"]["web_search_usd"], "0.03");
        // A model without a search price cannot price searches: an error, not the tokens alone.
        let (out, ok) = run(&line.replace("claude-sonnet-4-5", "gpt-4o"));
        assert!(!ok);
        let error = out["error"].as_str().unwrap_or_default();
        assert!(error.contains("no web_search_requests price"), "{error}");
    }

    #[test]
    fn each_bad_line_gets_its_own_error() {
        for (line, needle) in [
            ("{not json", "invalid JSON"),
            ("[1,2]", "expected a JSON object"),
            (r#"{"id": 1}"#, "missing `model`"),
            (r#"{"id": 1, "model": 5}"#, "must be a string"),
            (
                r#"{"id": 1, "model": "gpt-4o", "input_tokens": -5}"#,
                "non-negative integer",
            ),
            (
                r#"{"id": 1, "model": "gpt-4o", "input_tokens": 1.5}"#,
                "non-negative integer",
            ),
            (
                r#"{"id": 1, "model": "gpt-4o", "input_tokens": "10"}"#,
                "non-negative integer",
            ),
            (
                r#"{"id": 1, "model": "no-such-model"}"#,
                "unknown model `no-such-model`",
            ),
            (
                r#"{"id": 1, "model": "gpt-4o", "input_tokens": 5, "cache_read_tokens": 6}"#,
                "inconsistent usage",
            ),
            (
                r#"{"id": 1, "model": "gpt-4o", "service_tier": "turbo"}"#,
                "unknown service tier",
            ),
        ] {
            let (out, ok) = run(line);
            assert!(!ok, "{line}");
            let error = out["error"].as_str().unwrap_or_default();
            assert!(error.contains(needle), "{line}: {error}");
        }
    }

    #[test]
    fn a_response_is_priced_at_the_prices_of_the_day_it_was_created() {
        use serde_json::json;
        assert_eq!(
            created_at(&json!({"created": 1_800_000_000}), 7),
            1_800_000_000
        );
        let event = json!({"type": "response.completed",
            "response": {"created_at": 1_790_000_000}});
        assert_eq!(created_at(&event, 7), 1_790_000_000);
        assert_eq!(created_at(&json!({"id": "msg_1"}), 7), 7);
        assert_eq!(created_at(&json!({"created": "yesterday"}), 7), 7);
        // Gateways that do not know the time send 0 (or less): not a day of 1970.
        assert_eq!(created_at(&json!({"created": 0}), 7), 7);
        assert_eq!(created_at(&json!({"created_at": -1}), 7), 7);
        // Gemini 3.8 Flash, through OpenAI's API shape, before and after its price of 2027.
        let table = PriceTable::default();
        let pricing = pricing_at(&table);
        let cost_on = |created: i64| {
            let line = json!({"id": 1, "model": "gemini-3.8-flash", "created": created,
                "usage": {"prompt_tokens": 1_000_000, "completion_tokens": 0, "total_tokens": 1_000_000}});
            let outcome = quote_response_line(
                &pricing,
                ResponseFormat::OpenaiChat,
                None,
                line.to_string().as_bytes(),
            );
            let json: Value = outcome
                .map(|o| serde_json::from_str(&o.json).unwrap_or(Value::Null))
                .unwrap_or(Value::Null);
            (json["cost_usd"].clone(), json["prices_from"].clone())
        };
        let (before, from_before) = cost_on(1_795_000_000); // 2026-11-18
        let (after, from_after) = cost_on(1_800_000_000); // 2027-01-15
        assert_ne!(before, after, "{before} {after}");
        assert_eq!(from_before, Value::Null);
        assert_eq!(from_after, "2027-01-01");
    }

    #[test]
    fn a_key_given_twice_is_an_error_of_its_line() {
        // A map would keep one of the two counts silently: which one was meant is unknown.
        let (out, ok) =
            run(r#"{"id": 4, "model": "gpt-4o", "input_tokens": 1000, "input_tokens": 10}"#);
        assert!(!ok);
        assert_eq!(out["id"], 4);
        assert_eq!(out["error"], "key `input_tokens` is given twice");
        let (out, ok) =
            run(r#"{"model": "gpt-4o", "input_tokens": 1, "id": {"a": [{"b": 1, "b": 1}]}}"#);
        assert!(!ok);
        assert_eq!(out["error"], "key `b` is given twice");
        // The same key in objects of their own is no repetition.
        let (out, ok) =
            run(r#"{"model": "gpt-4o", "input_tokens": 1000, "id": [{"b": 1}, {"b": 2}]}"#);
        assert!(ok, "{out}");
        assert_eq!(out["cost_usd"], "0.0025");
        // A line that is not JSON further on says so, repeated key or not; every kind of
        // value is read.
        let (out, ok) = run(r#"{"id": 5, "model": "gpt-4o", "model": "x", "input_tokens": }"#);
        assert!(!ok);
        assert_eq!(out["id"], Value::Null);
        assert!(
            out["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("invalid JSON: expected value")),
            "{out}"
        );
        let (out, ok) = run(
            r#"{"id": [1, -2, 0.5, true, null, "s"], "model": "gpt-4o", "input_tokens": 2000}"#,
        );
        assert!(ok, "{out}");
        assert_eq!(out["id"], serde_json::json!([1, -2, 0.5, true, null, "s"]));
        // A provider's answer too: its usage read once.
        let table = PriceTable::default();
        let pricing = pricing_at(&table);
        let answer = r#"{"id": "r", "model": "gpt-4o", "usage": {"prompt_tokens": 10, "completion_tokens": 5, "completion_tokens": 500}}"#;
        let outcome = quote_response_line(
            &pricing,
            ResponseFormat::OpenaiChat,
            None,
            answer.as_bytes(),
        )
        .map(|o| serde_json::from_str::<Value>(&o.json).unwrap_or(Value::Null));
        assert_eq!(
            outcome,
            Some(serde_json::json!({
                "id": "r",
                "error": "key `completion_tokens` is given twice"
            }))
        );
    }

    #[test]
    fn a_key_the_format_does_not_know_is_an_error_unless_allowed() {
        // A misspelt count would otherwise be priced as 0.
        let (out, priced) =
            run(r#"{"id": 1, "model": "gpt-4o", "input_token": 1000, "output_tokens": 100}"#);
        assert!(!priced);
        assert_eq!(out["id"], 1);
        let error = out["error"].as_str().unwrap_or_default();
        assert!(error.starts_with("unknown key `input_token`"), "{error}");
        assert!(error.contains("did you mean `input_tokens`?"), "{error}");
        // A provider's response, or its usage object, is read with `--from`.
        for line in [
            r#"{"model": "gpt-4o", "usage": {"prompt_tokens": 10, "completion_tokens": 5}}"#,
            r#"{"model": "gpt-4o", "prompt_tokens": 10, "completion_tokens": 5}"#,
        ] {
            let (out, priced) = run(line);
            assert!(!priced);
            let error = out["error"].as_str().unwrap_or_default();
            assert!(error.contains("read with `--from FORMAT`"), "{error}");
        }
        let (out, _) = run(r#"{"model": "gpt-4o", "input_tokens": 10, "team": "search"}"#);
        let error = out["error"].as_str().unwrap_or_default();
        assert!(error.starts_with("unknown key `team`"), "{error}");
        assert!(error.contains("`llm-cost quote --help` lists"), "{error}");
        // Allowed, other keys are ignored: the line is priced as without them.
        let table = PriceTable::default();
        let allowing = Pricing {
            allow_unknown_keys: true,
            ..pricing_at(&table)
        };
        let answer = |pricing: &Pricing<'_>, line: &str| {
            quote_line(pricing, line.as_bytes()).map(|outcome| (outcome.json, outcome.priced))
        };
        let with_context = answer(
            &allowing,
            r#"{"id": 2, "model": "gpt-4o", "input_tokens": 1000, "team": "search", "usage": 1}"#,
        );
        let without = answer(
            &pricing_at(&table),
            r#"{"id": 2, "model": "gpt-4o", "input_tokens": 1000}"#,
        );
        assert_eq!(with_context, without);
        assert_eq!(without.map(|(_, priced)| priced), Some(true));
    }

    #[test]
    fn blank_lines_are_skipped() {
        let table = PriceTable::default();
        let pricing = Pricing {
            table: &table,
            now: 0,
            age_limit: 0,
            charge_reported: false,
            allow_unknown_keys: false,
        };
        assert!(quote_line(&pricing, b"  \r").is_none());
    }
}
