//! LiteLLM's community price table, `model_prices_and_context_window.json`.
//!
//! Every entry with an `input_cost_per_token` loads. Keys read (USD per token; JSON numbers or
//! numeric strings such as `"3e-7"`, parsed from their text, never through `f64`):
//!
//! | LiteLLM key | meaning |
//! |---|---|
//! | `input_cost_per_token` | input |
//! | `output_cost_per_token` | output |
//! | `cache_read_input_token_cost` | cache read |
//! | `input_cost_per_token_cache_hit` | cache read, where `cache_read_input_token_cost` gives none (DeepSeek's entries) |
//! | `cache_creation_input_token_cost` | cache write (5 minutes) |
//! | `cache_creation_input_token_cost_above_1hr` | cache write (1 hour): *not* a context tier |
//! | `output_cost_per_reasoning_token` | reasoning |
//! | `input_cost_per_audio_token` | audio input (uncached) |
//! | `output_cost_per_audio_token` | audio output |
//! | `cache_read_input_audio_token_cost` | cache read of audio |
//! | `output_cost_per_image_token` | image output |
//! | `input_cost_per_image_token` | image input (uncached) |
//! | `cache_read_input_image_token_cost` | cache read of images |
//! | `search_context_cost_per_query.search_context_size_{low,medium,high}` | one web search at that search context size (USD per search; a call stating no size: medium) |
//! | `citation_cost_per_token` | Perplexity's citation tokens, which the adapters count as prompt tokens: read where it equals the input price, else counted as a skipped key |
//! | `file_search_cost_per_1k_calls` | one file search call (the price of 1 000, divided exactly) |
//! | `code_interpreter_cost_per_session` | one code interpreter session (USD per session) |
//! | any of these + `_above_{N}k_tokens` / `_above_{N}_tokens` | context tier above N (×1000 with `k`) |
//! | any of these + `_batches`, `_flex`, `_priority` | service tier (before or after the tier part) |
//! | any of these + `_ultrafast` | fast mode's own prices (OpenAI's Ultrafast), over the `fast` multiplier |
//!
//! `tiered_pricing` (a list of `{"range": [lo, hi], …prices}`, Alibaba's models) is read as
//! LiteLLM reads it: the range holding the request's input tokens (`lo < input <= hi`; above
//! the last range, the last tier) prices the whole request; inside it an absent cache price is
//! the tier's input price, an absent output price the model's. It replaces `_above_` keys.
//!
//! `search_context_cost_per_query` gives a web search's price per search context size (`low`,
//! `medium`, `high`; Anthropic's and Google's entries give one price for all three, Perplexity's
//! Sonar models their request fee per size): all three are read
//! ([`ModelPrice::with_web_search_by_context_size`]), and a call whose terms state no size is
//! priced at the medium one, OpenAI's default.
//!
//! `provider_specific_entry` holds LiteLLM's multipliers: `us` is the model's data-residency
//! factor (Anthropic's US-only inference, `1.1`: see [`ModelPrice::with_data_residency`]) and
//! `fast` its fast-mode factor ([`ModelPrice::with_fast_mode`]), except on OpenAI's entries
//! (`litellm_provider` `openai` or `azure`), where `fast` names Priority processing, which the
//! `*_priority` keys price: there it is counted as a skipped key, and an Ultrafast call is
//! priced by `*_ultrafast` keys or left unpriced, never at Priority's factor. Other keys there
//! are counted as skipped keys (`provider_specific_entry.KEY`). The entry's own
//! `regional_processing_uplift_multiplier_eu` and `_us` (OpenAI's data residency, `1.1`) and
//! `regional_endpoint_uplift_multiplier` (a regional endpoint over the global one) are
//! data-residency factors too. A call's usage says it ran on a data-residency endpoint, not
//! where, so the factors an entry gives must agree: where they differ (the EU dearer than the
//! US), the model has no factor, its data-residency calls are unpriced (never priced at the
//! wrong region's factor), and those keys are counted as skipped keys. Other keys naming a
//! multiplier are counted as skipped keys too.
//!
//! An entry `{"alias_of": "KEY"}` makes its name an alias of `KEY`. `sample_spec` and
//! `fallback_generalizations` (LiteLLM's rules for its own name matching) are not models and
//! are ignored.
//! Entries without a per-token input price (images, audio, per-second models) are skipped, and
//! so are price keys of other units (per image, per second, per query, `tiered_pricing`, …):
//! both are counted in the table's [`LoadReport`](crate::LoadReport), not fatal. A skipped
//! entry is listed with the keys that price it (`skipped_entries`), and a name that resolves
//! to it is unpriced with that reason: a token call under `vertex_ai/x`, which the file prices
//! per image, is not priced as `x` per token. Keys that are not prices (`max_tokens`,
//! `supports_*`, …) are ignored.
//!
//! A syntax error is an error naming the file, line and column. A known price key whose value is
//! not a non-negative decimal of at most 24 places leaves *that entry* out: its model is then
//! unpriced (never mispriced), and the report's `left_out` names the entry, the key, and
//! its line and column. One odd entry does not make a file of thousands unusable.
//!
//! A model the file gives more than once (LiteLLM's file has had some), or a key an entry (or
//! its `provider_specific_entry`, `search_context_cost_per_query` or a `tiered_pricing` range)
//! gives more than once, is read once when the occurrences price alike. When they differ,
//! which one is meant is unknown: the entry is left out and the report's `left_out` names it
//! with the lines (LiteLLM's own loader keeps the last occurrence, silently).
//!
//! The table's version is `litellm@` and the first 12 hex digits of the file's SHA-256; the
//! file carries no date, so `as_of` is unset.

use std::collections::{BTreeMap, btree_map};
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::{PriceFileError, PriceFileErrorKind, content_digest};
use crate::money::{PriceMultiplier, TokenPrice};
use crate::price::{ComponentPrices, ModelPrice, PriceSchedule, SearchContextSize, ServiceTier};
use crate::table::{ModelEntry, PriceTable, PriceTableBuilder, TableInfo};
use crate::usage::TokenKind;

/// Parses LiteLLM's JSON price table. `origin` names it in errors and in the table's info.
pub fn parse(text: &str, origin: &str) -> Result<PriceTable, PriceFileError> {
    let syntax = |e: serde_json::Error| PriceFileError {
        origin: origin.to_owned(),
        line: Some(e.line()),
        column: Some(e.column()),
        kind: PriceFileErrorKind::Syntax,
        message: e.to_string(),
    };
    // A bad value inside one entry of a community file of thousands leaves that entry out (its
    // model is then unpriced, never mispriced) and is reported with its position.
    let invalid = |raw: &RawValue, message: String| {
        PriceFileError::at_offset(
            origin,
            text,
            offset_in(text, raw.get()),
            PriceFileErrorKind::Invalid,
            message,
        )
        .to_string()
    };
    let top: Members<'_> = serde_json::from_str(text).map_err(syntax)?;
    let mut builder = PriceTableBuilder::new(TableInfo {
        version: format!("litellm@{}", content_digest(text)).into(),
        as_of: None,
        origin: origin.to_owned(),
    });
    for (name, occurrences) in group_by_name(&top) {
        if NOT_MODELS.contains(&name) {
            continue;
        }
        match read_entries(name, &occurrences, text, &invalid) {
            EntryRead::Alias(target) => {
                builder.alias(name, target);
            }
            EntryRead::Model(entry, skipped_keys) => {
                for key in skipped_keys {
                    *builder.report_mut().skipped_keys.entry(key).or_default() += 1;
                }
                builder.model(*entry);
            }
            EntryRead::NotPriced(why) => {
                builder.skipped_entry(name, format!("{origin}: entry `{name}`: {why}"));
            }
            EntryRead::Invalid(message) => {
                builder.left_out(name, message);
            }
        }
    }
    super::build_table(builder, origin)
}

/// What one entry of the file gives.
#[derive(Debug)]
enum EntryRead {
    /// An alias of the entry named.
    Alias(String),
    /// A model's prices, with the price keys not read.
    Model(Box<ModelEntry>, Vec<String>),
    /// No per-token input price (not an object, or an image, audio or per-second model): why.
    NotPriced(String),
    /// Left out: why, with the file, line and column.
    Invalid(String),
}

impl EntryRead {
    /// Whether two readings of the same name price every call alike (an entry the file gives
    /// twice, the same prices in both).
    fn prices_alike(&self, other: &EntryRead) -> bool {
        match (self, other) {
            (EntryRead::Alias(a), EntryRead::Alias(b)) => a == b,
            (EntryRead::Model(a, _), EntryRead::Model(b, _)) => a.price == b.price,
            (EntryRead::NotPriced(_), EntryRead::NotPriced(_)) => true,
            _ => false,
        }
    }
}

/// Reads the entry `name`, which the file gives at `occurrences` (its JSON texts in `text`):
/// once, or more than once alike. Occurrences whose prices differ leave it out: LiteLLM's own
/// loader keeps the last silently, and which one is right is unknown.
fn read_entries(
    name: &str,
    occurrences: &[&RawValue],
    text: &str,
    invalid: &dyn Fn(&RawValue, String) -> String,
) -> EntryRead {
    let mut readings: Vec<EntryRead> = occurrences
        .iter()
        .map(|raw_entry| read_entry(name, raw_entry, invalid))
        .collect();
    // An occurrence that cannot be read says why the entry is left out.
    if let Some(at) = readings
        .iter()
        .position(|reading| matches!(reading, EntryRead::Invalid(_)))
    {
        return readings.swap_remove(at);
    }
    let (Some(last), Some(&last_text)) = (readings.pop(), occurrences.last()) else {
        return EntryRead::NotPriced("not given".to_owned());
    };
    if readings.iter().all(|reading| reading.prices_alike(&last)) {
        return last;
    }
    let lines: Vec<String> = occurrences
        .iter()
        .filter_map(|raw| offset_in(text, raw.get()))
        .map(|offset| super::line_column(text, offset).0.to_string())
        .collect();
    EntryRead::Invalid(invalid(
        last_text,
        format!(
            "entry `{name}` is given {} times (lines {}) with different prices: left out",
            occurrences.len(),
            lines.join(", ")
        ),
    ))
}

/// Reads the entry `name` (its JSON text `raw_entry`); `invalid` makes an error message with
/// its position.
fn read_entry(
    name: &str,
    raw_entry: &RawValue,
    invalid: &dyn Fn(&RawValue, String) -> String,
) -> EntryRead {
    // Entries are objects; anything else is not a model and is skipped.
    let fields = match unique_members(raw_entry.get()) {
        Ok(Some(fields)) => fields,
        Ok(None) => return EntryRead::NotPriced("not an object".to_owned()),
        Err(DuplicateKey { key, second }) => {
            return EntryRead::Invalid(invalid(
                second,
                format!("entry `{name}`: key `{key}` is given twice with different values"),
            ));
        }
    };
    if let Some(target) = fields.get("alias_of") {
        return match serde_json::from_str::<String>(target.get()) {
            Ok(target) => EntryRead::Alias(target),
            Err(_) => EntryRead::Invalid(invalid(
                target,
                format!("entry `{name}`: alias_of must be a string"),
            )),
        };
    }
    // Standard, batch, flex, priority and fast mode, in the order of `ServiceTier::ALL`.
    let mut schedules: [PriceSchedule; ServiceTier::ALL.len()] = Default::default();
    let mut skipped_keys: Vec<String> = Vec::new();
    let mut problem = None;
    let mut multipliers = Multipliers::default();
    // `search_context_cost_per_query`, per search context size.
    let mut search_sizes: [Option<TokenPrice>; 3] = [None; 3];
    let mut citation_price = None;
    // `input_cost_per_token_cache_hit` (DeepSeek's entries): the cache read price where
    // `cache_read_input_token_cost` gives none.
    let mut cache_hit_prices: Vec<(PriceKey, TokenPrice)> = Vec::new();
    let bad_key = |raw: &RawValue, key: &str, message: String| {
        invalid(raw, format!("entry `{name}`, key `{key}`: {message}"))
    };
    for (key, raw) in &fields {
        let key = key.as_str();
        if key == TIERED_PRICING {
            continue; // read below, over the flat keys
        }
        if key == PROVIDER_SPECIFIC {
            match read_multipliers(raw.get(), &mut multipliers, &mut skipped_keys) {
                Ok(()) => {}
                Err(message) => {
                    problem = Some(bad_key(raw, key, message));
                    break;
                }
            }
            continue;
        }
        if let Some(&regional) = REGIONAL_FACTORS.iter().find(|name| **name == key) {
            match read_multiplier(raw.get()) {
                Ok(factor) => multipliers.regional.push((regional, factor)),
                Err(message) => {
                    problem = Some(bad_key(raw, key, message));
                    break;
                }
            }
            continue;
        }
        if let Some(price_key) = key
            .strip_prefix(CACHE_HIT_PRICE)
            .and_then(PriceKey::modifiers)
            .map(|(service_tier, above)| PriceKey {
                kind: TokenKind::CacheRead,
                service_tier,
                above,
            })
        {
            match read_price(raw.get()) {
                Ok(Some(price)) => cache_hit_prices.push((price_key, price)),
                Ok(None) => {}
                Err(message) => {
                    problem = Some(bad_key(raw, key, message));
                    break;
                }
            }
            continue;
        }
        if key == SEARCH_PRICES {
            match read_search_prices(raw.get()) {
                Ok(Some(sizes)) => search_sizes = sizes,
                Ok(None) => skipped_keys.push(key.to_owned()),
                Err(message) => {
                    problem = Some(bad_key(raw, key, message));
                    break;
                }
            }
            continue;
        }
        if key == CITATION_PRICE {
            citation_price = Some(read_price(raw.get()));
            continue;
        }
        if let Some((kind, read)) = per_call_price(key) {
            match read(raw.get()) {
                Ok(Some(price)) => schedules[0].base.set(kind, price),
                Ok(None) => skipped_keys.push(key.to_owned()),
                Err(message) => {
                    problem = Some(bad_key(raw, key, message));
                    break;
                }
            }
            continue;
        }
        let Some(price_key) = PriceKey::parse(key) else {
            if is_price_like(key) {
                skipped_keys.push(key.to_owned());
            }
            continue;
        };
        let price = match read_price(raw.get()) {
            Ok(Some(price)) => price,
            Ok(None) => continue, // null: not declared
            Err(message) => {
                problem = Some(bad_key(raw, key, message));
                break;
            }
        };
        price_key
            .prices_in(&mut schedules)
            .set(price_key.kind, price);
    }
    for (price_key, price) in cache_hit_prices {
        let prices = price_key.prices_in(&mut schedules);
        if prices.cache_read.is_none() {
            prices.set(TokenKind::CacheRead, price);
        }
    }
    if problem.is_none()
        && let Some(raw) = fields.get(TIERED_PRICING)
    {
        match read_tiered_pricing(raw.get()) {
            Ok(Some(tiers)) => apply_tiered_pricing(&mut schedules[0], tiers),
            Ok(None) => skipped_keys.push(TIERED_PRICING.to_owned()),
            Err(message) => {
                problem = Some(bad_key(raw, TIERED_PRICING, message));
            }
        }
    }
    if let Some(message) = problem {
        return EntryRead::Invalid(message);
    }
    only_input_thresholds(&mut schedules);
    // A search that states no size is priced as medium, OpenAI's default.
    if let Some(medium) = search_sizes[SearchContextSize::Medium.index()] {
        schedules[0].base.set(TokenKind::WebSearchRequests, medium);
    }
    let [standard, batch, flex, priority, fast] = schedules;
    if standard.base.input.is_none() {
        return EntryRead::NotPriced(match skipped_keys.as_slice() {
            [] => "no per-token input price".to_owned(),
            keys => format!(
                "no per-token input price (priced by `{}`)",
                keys.join("`, `")
            ),
        });
    }
    if citation_price.is_some_and(|price| price != Ok(standard.base.input)) {
        skipped_keys.push(CITATION_PRICE.to_owned());
    }
    let residency_factor = multipliers.data_residency(&mut skipped_keys);
    let text_field = |field: &str| {
        fields
            .get(field)
            .and_then(|raw| serde_json::from_str::<String>(raw.get()).ok())
    };
    let provider = text_field("litellm_provider");
    if multipliers.fast.is_some() && provider.as_deref().is_some_and(names_priority_fast) {
        // OpenAI's "fast" is its Priority processing, priced by the `*_priority` keys; read
        // as the fast-mode factor it would price an Ultrafast call (several times dearer)
        // at Priority's factor.
        multipliers.fast = None;
        skipped_keys.push(format!("{PROVIDER_SPECIFIC}.fast"));
    }
    let variants = [batch, flex, priority].map(|s| Some(s).filter(has_prices));
    // Fast mode's own prices (`*_ultrafast`) before its multiplier.
    let price = ModelPrice::new(standard, variants)
        .and_then(|price| match (has_prices(&fast), multipliers.fast) {
            (true, _) => price.with_fast_mode_prices(fast),
            (false, Some(factor)) => price.with_fast_mode(factor),
            (false, None) => Ok(price),
        })
        .and_then(|price| match residency_factor {
            Some(factor) => price.with_data_residency(factor),
            None => Ok(price),
        })
        .map(|price| price.with_web_search_by_context_size(search_sizes));
    let price = match price {
        Ok(price) => price,
        Err(e) => return EntryRead::Invalid(invalid(raw_entry, format!("entry `{name}`: {e}"))),
    };
    EntryRead::Model(
        Box::new(ModelEntry {
            key: name.to_owned(),
            provider,
            source: text_field("source"),
            as_of: None,
            price,
            changes: Vec::new(),
        }),
        skipped_keys,
    )
}

/// LiteLLM's range-based tiers (Alibaba's Dashscope models).
const TIERED_PRICING: &str = "tiered_pricing";

/// LiteLLM's per-model price multipliers (`{"us": 1.1, "fast": 6.0}` on Anthropic's models).
const PROVIDER_SPECIFIC: &str = "provider_specific_entry";

/// Top-level keys that are not models.
const NOT_MODELS: [&str; 2] = ["sample_spec", "fallback_generalizations"];

/// Top-level keys of an entry giving a data-residency factor: regional processing in the EU or
/// the US (OpenAI's data residency) and a regional endpoint (over the global one).
const REGIONAL_FACTORS: [&str; 3] = [
    "regional_processing_uplift_multiplier_eu",
    "regional_processing_uplift_multiplier_us",
    "regional_endpoint_uplift_multiplier",
];

/// DeepSeek's name for the cache read price.
const CACHE_HIT_PRICE: &str = "input_cost_per_token_cache_hit";

/// The multipliers of one entry that the loader reads.
#[derive(Default)]
struct Multipliers {
    /// US-only inference (`provider_specific_entry.us`): a data-residency factor.
    us: Option<PriceMultiplier>,
    /// Fast mode.
    fast: Option<PriceMultiplier>,
    /// The [`REGIONAL_FACTORS`] the entry gives.
    regional: Vec<(&'static str, PriceMultiplier)>,
}

impl Multipliers {
    /// The model's data-residency factor: the one value its residency keys agree on. A call's
    /// usage says it ran on a data-residency endpoint, not where, so keys that differ (EU
    /// dearer than US, say) give no factor: such a call stays unpriced, and the keys are
    /// counted in `skipped`.
    fn data_residency(&self, skipped: &mut Vec<String>) -> Option<PriceMultiplier> {
        let mut factors = self
            .us
            .iter()
            .chain(self.regional.iter().map(|(_, factor)| factor));
        let first = *factors.next()?;
        if factors.all(|factor| *factor == first) {
            return Some(first);
        }
        if self.us.is_some() {
            skipped.push(format!("{PROVIDER_SPECIFIC}.us"));
        }
        skipped.extend(self.regional.iter().map(|(key, _)| (*key).to_owned()));
        None
    }
}

/// Providers whose service tier `fast` is Priority processing (OpenAI's name for it since July
/// 2026), not a fast mode of its own: their `provider_specific_entry.fast` is not read.
fn names_priority_fast(litellm_provider: &str) -> bool {
    matches!(litellm_provider, "openai" | "azure")
}

/// Reads one multiplier: a JSON number or a numeric string.
fn read_multiplier(raw: &str) -> Result<PriceMultiplier, String> {
    PriceMultiplier::parse(raw.trim().trim_matches('"')).map_err(|e| e.to_string())
}

/// Reads `provider_specific_entry` into `read`; its other keys go to `skipped` as
/// `provider_specific_entry.KEY`. Anything but an object of numbers is an error.
fn read_multipliers(
    raw: &str,
    read: &mut Multipliers,
    skipped: &mut Vec<String>,
) -> Result<(), String> {
    let entries = unique_members(raw)
        .map_err(|DuplicateKey { key, .. }| {
            format!("`{key}` is given twice with different values")
        })?
        .ok_or_else(|| "expected an object of multipliers".to_owned())?;
    for (key, value) in entries {
        let slot = match key.as_str() {
            "us" => &mut read.us,
            "fast" => &mut read.fast,
            _ => {
                skipped.push(format!("{PROVIDER_SPECIFIC}.{key}"));
                continue;
            }
        };
        *slot = Some(read_multiplier(value.get()).map_err(|e| format!("`{key}`: {e}"))?);
    }
    Ok(())
}

/// The file search tool's price per 1 000 calls.
const FILE_SEARCH_PRICE: &str = "file_search_cost_per_1k_calls";

/// The code interpreter tool's price per session (container).
const CODE_INTERPRETER_PRICE: &str = "code_interpreter_cost_per_session";

/// Reads a price value: `Ok(None)` when it is not one the loader understands (then it is
/// counted as a skipped key).
type ReadPrice = fn(&str) -> Result<Option<TokenPrice>, String>;

/// The kind a key prices per use (a web search, a file search call, a code interpreter session)
/// and how its value reads.
fn per_call_price(key: &str) -> Option<(TokenKind, ReadPrice)> {
    match key {
        FILE_SEARCH_PRICE => Some((TokenKind::FileSearchCalls, |raw| {
            read_price_as(raw, TokenPrice::per_thousand)
        })),
        CODE_INTERPRETER_PRICE => Some((TokenKind::CodeInterpreterSessions, read_price)),
        _ => None,
    }
}

/// Web search prices per search context size.
const SEARCH_PRICES: &str = "search_context_cost_per_query";

/// Reads the search prices of `search_context_cost_per_query` per search context size
/// (`search_context_size_low`, `_medium`, `_high`), in the order of [`SearchContextSize::ALL`];
/// `Ok(None)` when the value is not an object holding one of them (then it is counted as a
/// skipped key).
fn read_search_prices(raw: &str) -> Result<Option<[Option<TokenPrice>; 3]>, String> {
    let given = match unique_members(raw) {
        Ok(Some(given)) => given,
        Ok(None) => return Ok(None),
        Err(DuplicateKey { key, .. }) => {
            return Err(format!("`{key}` is given twice with different values"));
        }
    };
    let mut sizes = [None; 3];
    for (slot, size) in sizes.iter_mut().zip(SearchContextSize::ALL) {
        let key = format!("search_context_size_{size}");
        if let Some(price) = given.get(&key) {
            *slot = read_price(price.get()).map_err(|e| format!("{key}: {e}"))?;
        }
    }
    Ok(sizes.iter().any(Option::is_some).then_some(sizes))
}

/// Perplexity's price of citation tokens (Sonar Deep Research's), which the adapters count as
/// prompt tokens: read where it is the input price, counted as a skipped key where not.
const CITATION_PRICE: &str = "citation_cost_per_token";

/// One `tiered_pricing` element: `{"range": [lo, hi], "input_cost_per_token": …, …}`.
struct RangeTier {
    above: u64,
    prices: ComponentPrices,
}

/// Reads `tiered_pricing`; `Ok(None)` when it is not a list of ranges with per-token prices
/// (then it is counted as a skipped key).
fn read_tiered_pricing(raw: &str) -> Result<Option<Vec<RangeTier>>, String> {
    let Ok(tiers) = serde_json::from_str::<Vec<&RawValue>>(raw) else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for tier in tiers {
        let tier = match unique_members(tier.get()) {
            Ok(Some(tier)) => tier,
            Ok(None) => return Ok(None),
            Err(DuplicateKey { key, .. }) => {
                return Err(format!(
                    "a range's `{key}` is given twice with different values"
                ));
            }
        };
        let Some(range) = tier
            .get("range")
            .and_then(|r| serde_json::from_str::<Vec<serde_json::Value>>(r.get()).ok())
        else {
            return Ok(None);
        };
        let Some(above) = range.first().and_then(|lo| lo.as_u64()).or_else(|| {
            range
                .first()
                .and_then(|lo| lo.as_f64())
                .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                .map(|f| f as u64)
        }) else {
            return Ok(None);
        };
        let mut prices = ComponentPrices::default();
        for (key, raw) in &tier {
            let key = key.as_str();
            let Some(price_key) = PriceKey::parse(key) else {
                continue;
            };
            if price_key.above.is_some() || price_key.service_tier != ServiceTier::Standard {
                continue;
            }
            if let Some(price) = read_price(raw.get())? {
                prices.set(price_key.kind, price);
            }
        }
        if prices.input.is_none() {
            return Ok(None);
        }
        out.push(RangeTier { above, prices });
    }
    Ok((!out.is_empty()).then_some(out))
}

/// Applies range tiers the way LiteLLM does: the tier whose range holds the request's input
/// tokens (`lo < input <= hi`, the last tier above the highest range) prices the whole request;
/// inside it, absent cache prices are the tier's input price, an absent output price is the
/// model's, an absent reasoning price the tier's output price. They replace `_above_` keys.
fn apply_tiered_pricing(schedule: &mut PriceSchedule, mut tiers: Vec<RangeTier>) {
    tiers.sort_by_key(|t| t.above);
    let flat = schedule.base;
    schedule.tiers.clear();
    for RangeTier { above, prices } in tiers {
        let input = prices.input;
        let cache_write = prices.cache_write.or(input);
        let output = prices.output.or(flat.output);
        let explicit = ComponentPrices {
            input,
            output,
            cache_read: prices.cache_read.or(input),
            cache_write,
            cache_write_1h: prices.cache_write_1h.or(cache_write),
            reasoning: prices
                .reasoning
                .or(prices.output)
                .or(flat.reasoning)
                .or(flat.output),
            // Absent, the model's audio and image prices apply (the base row's, through the lookup).
            audio_input: prices.audio_input,
            audio_output: prices.audio_output,
            cache_read_audio: prices.cache_read_audio,
            image_output: prices.image_output,
            web_search_requests: prices.web_search_requests,
            file_search_calls: prices.file_search_calls,
            image_generation_calls: prices.image_generation_calls,
            code_interpreter_sessions: prices.code_interpreter_sessions,
            image_input: prices.image_input,
            cache_read_image: prices.cache_read_image,
        };
        if schedule.base.input.is_none() {
            // No flat prices: a request without input tokens uses the first tier's.
            schedule.base = explicit;
        }
        *schedule.tier_mut(above) = explicit;
    }
}

/// As in LiteLLM, a context tier exists where the standard prices have an
/// `input_cost_per_token_above_…` key: tiers of other components alone, or of a service tier
/// at a threshold the standard prices do not have, are not applied.
fn only_input_thresholds(schedules: &mut [PriceSchedule]) {
    let Some((standard, variants)) = schedules.split_first_mut() else {
        return;
    };
    standard.tiers.retain(|t| t.prices.input.is_some());
    let thresholds: Vec<u64> = standard
        .tiers
        .iter()
        .map(|t| t.above_input_tokens)
        .collect();
    for variant in variants {
        variant
            .tiers
            .retain(|t| thresholds.contains(&t.above_input_tokens));
    }
}

fn has_prices(schedule: &PriceSchedule) -> bool {
    !schedule.base.is_empty() || !schedule.tiers.is_empty()
}

/// A JSON object's members in the file's order, a key given twice kept twice (a map would
/// keep one of them silently, and LiteLLM's file has had models given twice with different
/// prices).
struct Members<'a>(Vec<(String, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;
        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'de>, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(member) = map.next_entry::<String, &'de RawValue>()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(MembersVisitor)
    }
}

/// The top-level members by name, in name order, each with its values in the file's order.
fn group_by_name<'m, 'a>(members: &'m Members<'a>) -> BTreeMap<&'m str, Vec<&'a RawValue>> {
    let mut by_name: BTreeMap<&str, Vec<&RawValue>> = BTreeMap::new();
    for (name, raw) in &members.0 {
        by_name.entry(name.as_str()).or_default().push(*raw);
    }
    by_name
}

/// A key an object gives twice with different values: `second` is the second value.
struct DuplicateKey<'a> {
    key: String,
    second: &'a RawValue,
}

/// The members of the JSON object `raw` by key; `Ok(None)` when it is not an object. A key
/// given twice with the same text is read once; with different values, which one is meant is
/// unknown, and that is an error.
fn unique_members(raw: &str) -> Result<Option<BTreeMap<String, &RawValue>>, DuplicateKey<'_>> {
    let Ok(Members(members)) = serde_json::from_str::<Members<'_>>(raw) else {
        return Ok(None);
    };
    let mut unique: BTreeMap<String, &RawValue> = BTreeMap::new();
    for (key, value) in members {
        match unique.entry(key) {
            btree_map::Entry::Vacant(slot) => {
                slot.insert(value);
            }
            btree_map::Entry::Occupied(slot) if slot.get().get() != value.get() => {
                return Err(DuplicateKey {
                    key: slot.key().clone(),
                    second: value,
                });
            }
            btree_map::Entry::Occupied(_) => {}
        }
    }
    Ok(Some(unique))
}

/// Byte offset of `part` inside `whole`, when `part` is a slice of it.
fn offset_in(whole: &str, part: &str) -> Option<usize> {
    let start = whole.as_ptr() as usize;
    let at = part.as_ptr() as usize;
    (at >= start && at <= start + whole.len()).then(|| at - start)
}

/// Reads a price value: a JSON number or numeric string; `Ok(None)` for `null`.
fn read_price(raw: &str) -> Result<Option<TokenPrice>, String> {
    read_price_as(raw, TokenPrice::per_token)
}

/// Reads a price value as [`read_price`] does, parsing its text with `parse` (the unit).
fn read_price_as(
    raw: &str,
    parse: fn(&str) -> Result<TokenPrice, crate::money::DecimalError>,
) -> Result<Option<TokenPrice>, String> {
    let raw = raw.trim();
    if raw == "null" {
        return Ok(None);
    }
    let text = if raw.starts_with('"') {
        serde_json::from_str::<String>(raw).map_err(|e| e.to_string())?
    } else {
        raw.to_owned()
    };
    parse(&text).map(Some).map_err(|e| e.to_string())
}

/// Keys that look like prices of some unit: counted when not understood.
fn is_price_like(key: &str) -> bool {
    ["cost", "pricing", "price", "multiplier"]
        .iter()
        .any(|word| key.contains(word))
}

/// A LiteLLM price key this loader understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PriceKey {
    kind: TokenKind,
    service_tier: ServiceTier,
    above: Option<u64>,
}

impl PriceKey {
    /// Longest prefixes first: `..._above_1hr` is a component of its own, not a tier.
    const COMPONENTS: [(&'static str, TokenKind); 12] = [
        (
            "cache_creation_input_token_cost_above_1hr",
            TokenKind::CacheWrite1h,
        ),
        ("cache_creation_input_token_cost", TokenKind::CacheWrite),
        ("cache_read_input_token_cost", TokenKind::CacheRead),
        ("input_cost_per_token", TokenKind::Input),
        ("output_cost_per_reasoning_token", TokenKind::Reasoning),
        ("output_cost_per_token", TokenKind::Output),
        ("input_cost_per_audio_token", TokenKind::AudioInput),
        ("output_cost_per_audio_token", TokenKind::AudioOutput),
        (
            "cache_read_input_audio_token_cost",
            TokenKind::CacheReadAudio,
        ),
        ("output_cost_per_image_token", TokenKind::ImageOutput),
        ("input_cost_per_image_token", TokenKind::ImageInput),
        (
            "cache_read_input_image_token_cost",
            TokenKind::CacheReadImage,
        ),
    ];

    /// The prices this key sets: its service tier's schedule, its context tier or the base.
    fn prices_in<'a>(
        &self,
        schedules: &'a mut [PriceSchedule; ServiceTier::ALL.len()],
    ) -> &'a mut ComponentPrices {
        let schedule = &mut schedules[self.service_tier as usize];
        match self.above {
            Some(n) => schedule.tier_mut(n),
            None => &mut schedule.base,
        }
    }

    fn parse(key: &str) -> Option<PriceKey> {
        Self::COMPONENTS.iter().find_map(|(prefix, kind)| {
            let rest = key.strip_prefix(prefix)?;
            Self::modifiers(rest).map(|(service_tier, above)| PriceKey {
                kind: *kind,
                service_tier,
                above,
            })
        })
    }

    /// Reads `_above_{N}[k]_tokens` and one service-tier suffix, in either order.
    fn modifiers(mut rest: &str) -> Option<(ServiceTier, Option<u64>)> {
        let mut service_tier = None;
        let mut above = None;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("_above_") {
                let (number, after) = after.split_once("_tokens")?;
                let value = match number.strip_suffix(['k', 'K']) {
                    Some(thousands) => thousands.parse::<u64>().ok()?.checked_mul(1000)?,
                    None => number.parse::<u64>().ok()?,
                };
                if above.replace(value).is_some() {
                    return None;
                }
                rest = after;
                continue;
            }
            let (tier, after) = [
                ("_batches", ServiceTier::Batch),
                ("_flex", ServiceTier::Flex),
                ("_priority", ServiceTier::Priority),
                ("_ultrafast", ServiceTier::FastMode),
            ]
            .iter()
            .find_map(|(suffix, tier)| rest.strip_prefix(suffix).map(|after| (*tier, after)))?;
            if service_tier.replace(tier).is_some() {
                return None;
            }
            rest = after;
        }
        Some((service_tier.unwrap_or(ServiceTier::Standard), above))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> Option<(TokenKind, ServiceTier, Option<u64>)> {
        PriceKey::parse(k).map(|p| (p.kind, p.service_tier, p.above))
    }

    #[test]
    fn price_keys() {
        use ServiceTier::*;
        use TokenKind::*;
        assert_eq!(key("input_cost_per_token"), Some((Input, Standard, None)));
        assert_eq!(
            key("input_cost_per_token_above_200k_tokens"),
            Some((Input, Standard, Some(200_000)))
        );
        assert_eq!(
            key("output_cost_per_token_above_128000_tokens"),
            Some((Output, Standard, Some(128_000)))
        );
        assert_eq!(
            key("cache_creation_input_token_cost_above_1hr"),
            Some((CacheWrite1h, Standard, None))
        );
        assert_eq!(
            key("cache_creation_input_token_cost_above_1hr_above_200k_tokens"),
            Some((CacheWrite1h, Standard, Some(200_000)))
        );
        assert_eq!(
            key("cache_creation_input_token_cost_above_200k_tokens"),
            Some((CacheWrite, Standard, Some(200_000)))
        );
        assert_eq!(
            key("input_cost_per_token_batches"),
            Some((Input, Batch, None))
        );
        assert_eq!(
            key("input_cost_per_token_above_200k_tokens_priority"),
            Some((Input, Priority, Some(200_000)))
        );
        assert_eq!(
            key("input_cost_per_token_priority_above_200k_tokens"),
            Some((Input, Priority, Some(200_000)))
        );
        assert_eq!(
            key("cache_read_input_token_cost_flex"),
            Some((CacheRead, Flex, None))
        );
        assert_eq!(
            key("output_cost_per_reasoning_token"),
            Some((Reasoning, Standard, None))
        );
        assert_eq!(
            key("input_cost_per_audio_token"),
            Some((AudioInput, Standard, None))
        );
        assert_eq!(
            key("output_cost_per_image_token"),
            Some((ImageOutput, Standard, None))
        );
        assert_eq!(
            key("cache_read_input_audio_token_cost"),
            Some((CacheReadAudio, Standard, None))
        );
        assert_eq!(
            key("input_cost_per_image_token"),
            Some((ImageInput, Standard, None))
        );
        assert_eq!(
            key("cache_read_input_image_token_cost"),
            Some((CacheReadImage, Standard, None))
        );
        assert_eq!(
            key("output_cost_per_audio_token_above_200k_tokens"),
            Some((AudioOutput, Standard, Some(200_000)))
        );
        for unknown in [
            "input_cost_per_token_cache_hit",
            "input_cost_per_image",
            "output_cost_per_second",
            "input_cost_per_token_above_k_tokens",
            "input_cost_per_token_flex_flex",
            "input_cost_per_audio_per_second",
            "cache_creation_input_audio_token_cost",
        ] {
            assert_eq!(key(unknown), None, "{unknown}");
        }
    }

    #[test]
    fn price_values() {
        assert_eq!(read_price("null"), Ok(None));
        assert_eq!(
            read_price("3e-07"),
            Ok(TokenPrice::per_token("0.0000003").ok())
        );
        assert_eq!(
            read_price("\"3e-7\""),
            Ok(TokenPrice::per_token("0.0000003").ok())
        );
        assert!(read_price("true").is_err());
        assert!(read_price("-1e-6").is_err());
        assert!(read_price("\"cheap\"").is_err());
    }

    #[test]
    fn an_offset_is_found_only_for_a_slice_of_the_text() {
        let text = String::from("{\"m\": 1}");
        assert_eq!(offset_in(&text, &text[2..3]), Some(2));
        assert_eq!(offset_in(&text, &text[text.len()..]), Some(text.len()));
        let elsewhere = String::from("m");
        assert_eq!(offset_in(&text, &elsewhere), None);
        let before = &text[..1];
        assert_eq!(offset_in(&text[1..], before), None);
        let after = &text[5..6];
        assert_eq!(offset_in(&text[..2], after), None);
    }
}
