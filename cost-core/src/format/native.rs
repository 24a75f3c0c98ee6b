//! The project's own price-file format: TOML, prices as decimal strings per million tokens.
//!
//! ```toml
//! version = "2025.11"          # required: names the table in every quote's provenance
//! as_of = "2025-11-20"         # the date the prices were read (YYYY-MM-DD)
//! unit = "usd_per_million_tokens"   # default; or "usd_per_token"
//!
//! [models."gpt-4o"]
//! provider = "openai"
//! source = "https://openai.com/api/pricing/"
//! as_of = "2025-11-20"
//! aliases = ["gpt-4o-latest"]
//! input = "2.50"               # required
//! output = "10.00"
//! cache_read = "1.25"          # optional: cache_read, cache_write, cache_write_1h, reasoning,
//!                              # audio_input, audio_output, cache_read_audio, image_output,
//!                              # image_input, cache_read_image
//! web_search_requests = "0.01" # optional: USD per web search (per search, whatever the unit)
//! file_search_calls = "0.0025" # optional: USD per file search call (per call, whatever the unit)
//! image_generation_calls = "0.042"  # optional: USD per image of the image generation tool
//! code_interpreter_sessions = "0.03" # optional: USD per code interpreter session (container)
//! web_search_by_context_size = { low = "0.005", high = "0.012" }   # optional: USD per web
//!                              # search at a search context size the call states (low, medium,
//!                              # high); a size not given, or none stated, as medium, else
//!                              # web_search_requests
//! batch = { input = "1.25", output = "5.00" }   # optional service tiers: batch, flex, priority
//! data_residency = "1.1"       # optional: the factor on the token prices of a call on a
//!                              # data-residency endpoint; without it such a call is unpriced
//! fast_mode = "6"              # optional: the factor on the standard token prices of a call
//!                              # in fast mode (Anthropic's, OpenAI's Ultrafast); without it,
//!                              # or fast_mode_prices = { input = "60", … } (prices of its own,
//!                              # as batch's), such a call is unpriced
//!
//! [[models."gemini-2.5-pro".tiers]]   # context tier: applies when input tokens > above
//! above = 200000
//! input = "2.50"
//! output = "15.00"
//!
//! [[models."gemini-3.8-flash".changes]]   # a price change: from 00:00 UTC on `on`, these
//! on = "2027-01-01"                       # prices (given in full, as a model's: tiers,
//! input = "1.50"                          # batch, factors…) replace the ones before
//! output = "7.50"
//!
//! [aliases]                    # more aliases, name = target
//! "gpt-4o-2024-08-06" = "gpt-4o"
//!
//! [left_out]                   # names without a price on purpose, name = why: each is
//! "gpt-4o-2024-05-13" = "…"    # unpriced with that reason, and the resolution rules stop
//!                              # there (not priced as gpt-4o); `write` lists the entries a
//!                              # LiteLLM file had that its table left out
//!
//! [skipped]                    # the same, for names priced other than per token (per
//! "dall-e-3" = "…"             # image, per second): `write` lists a LiteLLM file's entries
//!                              # without a per-token price; loading them warns of nothing
//! ```
//!
//! Prices are strings (or integers) because a TOML float is binary and loses digits; a float is
//! rejected with a message saying so. Unknown fields are rejected, so a typo is an error that
//! names its line and column, not a silently missing price. The rules that fill in absent prices
//! are those of [`crate::price`].

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::{PriceFileError, PriceFileErrorKind};
use crate::money::{PriceMultiplier, TokenPrice};
use crate::price::{ComponentPrices, ModelPrice, PriceSchedule};
use crate::table::{ModelEntry, PriceTable, PriceTableBuilder, TableInfo};

/// Parses a native price file. `origin` names it in errors and in the table's info.
pub fn parse(text: &str, origin: &str) -> Result<PriceTable, PriceFileError> {
    let file: FileSpec = toml::from_str(text).map_err(|e| {
        let kind = if e.message().starts_with("invalid")
            || e.message().contains("unknown field")
            || e.message().contains("missing field")
            || e.message().contains("quoted string")
        {
            PriceFileErrorKind::Invalid
        } else {
            PriceFileErrorKind::Syntax
        };
        PriceFileError::at_offset(
            origin,
            text,
            e.span().map(|s| s.start),
            kind,
            e.message().trim().to_owned(),
        )
    })?;
    let invalid = |span: std::ops::Range<usize>, message: String| {
        PriceFileError::at_offset(
            origin,
            text,
            Some(span.start),
            PriceFileErrorKind::Invalid,
            message,
        )
    };
    let per_token = match file.unit.as_ref().map(|u| u.get_ref().as_str()) {
        None | Some("usd_per_million_tokens") => false,
        Some("usd_per_token") => true,
        Some(other) => {
            return Err(invalid(
                file.unit.as_ref().map_or(0..0, Spanned::span),
                format!("unknown unit `{other}`; expected usd_per_million_tokens or usd_per_token"),
            ));
        }
    };
    for date in [&file.as_of].into_iter().flatten() {
        check_date(date).map_err(|m| invalid(date.span(), m))?;
    }
    let mut builder = PriceTableBuilder::new(TableInfo {
        version: file.version.as_str().into(),
        as_of: file.as_of.as_ref().map(|d| d.get_ref().clone()),
        origin: origin.to_owned(),
    });
    let price = |value: &Spanned<PriceText>| {
        let text = &value.get_ref().0;
        let parsed = if per_token {
            TokenPrice::per_token(text)
        } else {
            TokenPrice::per_million(text)
        };
        parsed.map_err(|e| invalid(value.span(), e.to_string()))
    };
    let per_call = |slot: &Option<Spanned<PriceText>>| {
        slot.as_ref()
            .map(|value| {
                TokenPrice::per_token(&value.get_ref().0)
                    .map_err(|e| invalid(value.span(), e.to_string()))
            })
            .transpose()
    };
    let components = |spec: &PricesSpec| -> Result<ComponentPrices, PriceFileError> {
        let read = |slot: &Option<Spanned<PriceText>>| slot.as_ref().map(price).transpose();
        Ok(ComponentPrices {
            input: read(&spec.input)?,
            output: read(&spec.output)?,
            cache_read: read(&spec.cache_read)?,
            cache_write: read(&spec.cache_write)?,
            cache_write_1h: read(&spec.cache_write_1h)?,
            reasoning: read(&spec.reasoning)?,
            audio_input: read(&spec.audio_input)?,
            audio_output: read(&spec.audio_output)?,
            cache_read_audio: read(&spec.cache_read_audio)?,
            image_output: read(&spec.image_output)?,
            image_input: read(&spec.image_input)?,
            cache_read_image: read(&spec.cache_read_image)?,
            // Searches and other hosted tools' uses are priced each, not per token or million.
            web_search_requests: per_call(&spec.web_search_requests)?,
            file_search_calls: per_call(&spec.file_search_calls)?,
            image_generation_calls: per_call(&spec.image_generation_calls)?,
            code_interpreter_sessions: per_call(&spec.code_interpreter_sessions)?,
        })
    };
    let schedule = |spec: &PricesSpec| -> Result<PriceSchedule, PriceFileError> {
        let mut schedule = PriceSchedule::flat(components(spec)?);
        for tier in &spec.tiers {
            *schedule.tier_mut(tier.above) = components(&tier.prices_with(Vec::new()))?;
        }
        Ok(schedule)
    };
    // A model's prices, or a price change's: standard prices and context tiers, service tiers,
    // fast mode's own prices or factor, and the data-residency factor.
    let model_price = |key: &Spanned<String>, terms: PriceTerms<'_>| {
        let invalid_price = |e: crate::price::PriceError| {
            invalid(key.span(), format!("model `{}`: {e}", key.get_ref()))
        };
        let variants = [terms.batch, terms.flex, terms.priority]
            .map(|v| v.as_ref().map(&schedule).transpose());
        let [batch, flex, priority] = variants;
        let mut price = ModelPrice::new(schedule(&terms.prices)?, [batch?, flex?, priority?])
            .map_err(invalid_price)?;
        if let Some(sizes) = terms.web_search_by_context_size {
            price = price.with_web_search_by_context_size([
                per_call(&sizes.low)?,
                per_call(&sizes.medium)?,
                per_call(&sizes.high)?,
            ]);
        }
        // Fast mode's own prices, or its factor (below), first: the data-residency prices
        // scale it too.
        if let Some(spec) = terms.fast_mode_prices {
            if let Some(factor) = terms.fast_mode {
                return Err(invalid(
                    factor.span(),
                    format!(
                        "model `{}`: give fast_mode (a factor) or fast_mode_prices, not both",
                        key.get_ref()
                    ),
                ));
            }
            price = price
                .with_fast_mode_prices(schedule(spec)?)
                .map_err(invalid_price)?;
        }
        for (name, factor, apply) in [
            (
                "fast_mode",
                terms.fast_mode,
                ModelPrice::with_fast_mode as fn(ModelPrice, PriceMultiplier) -> _,
            ),
            (
                "data_residency",
                terms.data_residency,
                ModelPrice::with_data_residency,
            ),
        ] {
            let Some(factor) = factor else {
                continue;
            };
            let invalid_factor = |e: String| {
                invalid(
                    factor.span(),
                    format!("model `{}`: {name}: {e}", key.get_ref()),
                )
            };
            let parsed = PriceMultiplier::parse(&factor.get_ref().0)
                .map_err(|e| invalid_factor(e.to_string()))?;
            price = apply(price, parsed).map_err(|e| invalid_factor(e.to_string()))?;
        }
        Ok(price)
    };
    for (key, model) in &file.models {
        if let Some(date) = &model.as_of {
            check_date(date).map_err(|m| invalid(date.span(), m))?;
        }
        let price = model_price(key, model.terms())?;
        let changes = model
            .changes
            .iter()
            .map(|change| {
                let price = model_price(key, change.terms())?;
                crate::table::PriceChange::new(change.on.get_ref(), price).ok_or_else(|| {
                    invalid(
                        change.on.span(),
                        format!(
                            "`{}` is not a calendar date in the form YYYY-MM-DD",
                            change.on.get_ref()
                        ),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        builder.model(ModelEntry {
            key: key.get_ref().clone(),
            provider: model.provider.clone(),
            source: model.source.clone(),
            as_of: model
                .as_of
                .as_ref()
                .map(|d| d.get_ref().clone())
                .or_else(|| file.as_of.as_ref().map(|d| d.get_ref().clone())),
            price,
            changes,
        });
        for alias in &model.aliases {
            builder.alias(alias.clone(), key.get_ref().clone());
        }
    }
    for (alias, target) in &file.aliases {
        builder.alias(alias.clone(), target.clone());
    }
    for (skipped, names) in [(false, &file.left_out), (true, &file.skipped)] {
        let listed = if skipped { "skipped" } else { "left out" };
        for (name, why) in names {
            let priced = file.models.contains_key(name.get_ref().as_str())
                || file.aliases.contains_key(name.get_ref());
            if priced {
                return Err(invalid(
                    name.span(),
                    format!(
                        "`{}` is both priced and {listed}; remove one of them",
                        name.get_ref()
                    ),
                ));
            }
            let (name, why) = (name.get_ref().clone(), why.clone());
            if skipped {
                builder.skipped_entry(name, why);
            } else {
                builder.left_out(name, why);
            }
        }
    }
    super::build_table(builder, origin)
}

fn check_date(date: &Spanned<String>) -> Result<(), String> {
    match crate::budget::parse_utc_date(date.get_ref()) {
        Some(_) => Ok(()),
        None => Err(format!(
            "`{}` is not a calendar date in the form YYYY-MM-DD",
            date.get_ref()
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    version: String,
    #[serde(default)]
    as_of: Option<Spanned<String>>,
    #[serde(default)]
    unit: Option<Spanned<String>>,
    #[serde(default)]
    models: BTreeMap<Spanned<String>, ModelSpec>,
    #[serde(default)]
    aliases: BTreeMap<String, String>,
    #[serde(default)]
    left_out: BTreeMap<Spanned<String>, String>,
    #[serde(default)]
    skipped: BTreeMap<Spanned<String>, String>,
}

/// The price fields of every table that holds prices (a model, a service tier, a context
/// tier), listed once: `price_fields!(then! { … })` calls `then!` with the list in brackets
/// before its own input. `web_search_requests`, `file_search_calls`, `image_generation_calls`
/// and `code_interpreter_sessions` are USD per use whatever the file's unit; the others are per
/// token in the file's unit.
macro_rules! price_fields {
    ($then:ident! { $($input:tt)* }) => {
        $then! {
            [
                input output cache_read cache_write cache_write_1h reasoning audio_input
                audio_output cache_read_audio image_output image_input cache_read_image
                web_search_requests file_search_calls image_generation_calls
                code_interpreter_sessions
            ]
            $($input)*
        }
    };
}

/// A table of the file that holds prices: its own fields, then the price fields (serde cannot
/// combine `flatten` with `deny_unknown_fields`, so each table holds them itself). With
/// `copies`, it also gets `prices_with`, its prices as a [`PricesSpec`] with the given context
/// tiers.
macro_rules! price_table {
    (
        [$($price:ident)*] copies $copies:ident
        $(#[$attr:meta])* struct $name:ident { $($fields:tt)* }
    ) => {
        price_table! { [$($price)*] $(#[$attr])* struct $name { $($fields)* } }

        impl $name {
            fn $copies(&self, tiers: Vec<TierSpec>) -> PricesSpec {
                PricesSpec { $( $price: self.$price.clone(), )* tiers }
            }
        }
    };
    (
        [$($price:ident)*]
        $(#[$attr:meta])* struct $name:ident { $( $(#[$fattr:meta])* $field:ident : $ty:ty, )* }
    ) => {
        $(#[$attr])*
        #[serde(deny_unknown_fields)]
        struct $name {
            $( $(#[$fattr])* $field: $ty, )*
            $( #[serde(default)] $price: Option<Spanned<PriceText>>, )*
        }
    };
}

/// A table of the file that holds a model's prices (a model, or one of its price changes): its
/// own fields, then the price-bearing ones, listed once: the standard prices (through
/// [`price_table!`]) and context tiers, the service tiers, fast mode's prices or factor and the
/// data-residency factor; with `terms`, borrowed for building its [`ModelPrice`].
macro_rules! model_price_table {
    ($(#[$attr:meta])* struct $name:ident { $($own:tt)* }) => {
        price_fields!(price_table! {
            copies prices_with
            $(#[$attr])*
            struct $name {
                $($own)*
                #[serde(default)]
                tiers: Vec<TierSpec>,
                #[serde(default)]
                batch: Option<PricesSpec>,
                #[serde(default)]
                flex: Option<PricesSpec>,
                #[serde(default)]
                priority: Option<PricesSpec>,
                #[serde(default)]
                data_residency: Option<Spanned<PriceText>>,
                #[serde(default)]
                fast_mode: Option<Spanned<PriceText>>,
                #[serde(default)]
                fast_mode_prices: Option<PricesSpec>,
                #[serde(default)]
                web_search_by_context_size: Option<SearchSizesSpec>,
            }
        });

        impl $name {
            fn terms(&self) -> PriceTerms<'_> {
                PriceTerms {
                    prices: self.prices_with(self.tiers.clone()),
                    batch: &self.batch,
                    flex: &self.flex,
                    priority: &self.priority,
                    fast_mode: &self.fast_mode,
                    fast_mode_prices: &self.fast_mode_prices,
                    data_residency: &self.data_residency,
                    web_search_by_context_size: &self.web_search_by_context_size,
                }
            }
        }
    };
}

/// `web_search_by_context_size`: USD per web search at each search context size.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchSizesSpec {
    #[serde(default)]
    low: Option<Spanned<PriceText>>,
    #[serde(default)]
    medium: Option<Spanned<PriceText>>,
    #[serde(default)]
    high: Option<Spanned<PriceText>>,
}

model_price_table! {
    #[derive(Deserialize)]
    struct ModelSpec {
        #[serde(default)]
        provider: Option<String>,
        #[serde(default)]
        source: Option<String>,
        #[serde(default)]
        as_of: Option<Spanned<String>>,
        #[serde(default)]
        aliases: Vec<String>,
        #[serde(default)]
        changes: Vec<ChangeSpec>,
    }
}

model_price_table! {
    /// A price change: the prices of a model from the day `on` (UTC) on, given in full as a
    /// model's are.
    #[derive(Deserialize)]
    struct ChangeSpec {
        on: Spanned<String>,
    }
}

/// The price-bearing parts of a model or of a price change, borrowed for building its
/// [`ModelPrice`].
struct PriceTerms<'a> {
    prices: PricesSpec,
    batch: &'a Option<PricesSpec>,
    flex: &'a Option<PricesSpec>,
    priority: &'a Option<PricesSpec>,
    fast_mode: &'a Option<Spanned<PriceText>>,
    fast_mode_prices: &'a Option<PricesSpec>,
    data_residency: &'a Option<Spanned<PriceText>>,
    web_search_by_context_size: &'a Option<SearchSizesSpec>,
}

price_fields!(price_table! {
    /// Prices of a schedule (the model's own or a service tier's): components and context tiers.
    #[derive(Deserialize, Default)]
    struct PricesSpec {
        #[serde(default)]
        tiers: Vec<TierSpec>,
    }
});

price_fields!(price_table! {
    copies prices_with
    /// A context tier: prices that apply when a request's input tokens exceed `above`.
    #[derive(Deserialize, Clone)]
    struct TierSpec {
        above: u64,
    }
});

/// The decimal text of a price: a TOML string or integer, never a float.
#[derive(Clone, Debug)]
struct PriceText(String);

impl<'de> Deserialize<'de> for PriceText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = PriceText;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a price as a quoted decimal string, e.g. \"2.50\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<PriceText, E> {
                Ok(PriceText(v.to_owned()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<PriceText, E> {
                Ok(PriceText(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<PriceText, E> {
                Ok(PriceText(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<PriceText, E> {
                Err(E::custom(format!(
                    "invalid price {v}: write prices as quoted strings, e.g. \"{v}\"; a TOML float is binary and loses digits"
                )))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// A table that cannot be written in this format.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// A context tier's threshold is beyond what a TOML integer holds.
    #[error("model `{model}`: a context tier above {above} tokens is beyond what TOML can write")]
    ThresholdTooLarge {
        /// The model's key.
        model: String,
        /// The threshold.
        above: u64,
    },
    /// The TOML writer refused the document.
    #[error("the table cannot be written as TOML: {0}")]
    Toml(String),
}

/// Writes `table` in this format, so that [`parse`] reads back the same prices (per million
/// tokens; searches and file search calls per call), service and context tiers, fast-mode and
/// data-residency factors, price changes, providers, sources, dates and aliases: a snapshot of
/// a table read from LiteLLM's file, or merged from several, to keep, review and diff. The table's own date
/// is written only when every entry written has a date of its own: a file's date is the date
/// of its undated entries when read, and an undated entry (LiteLLM's) must stay undated.
pub fn write(table: &PriceTable) -> Result<String, WriteError> {
    write_table(
        table,
        table.entries().iter().map(|entry| entry.key.as_str()),
        true,
    )
}

/// Writes the entries of `table` listed under `keys` (exactly, no resolution rules; a key the
/// table does not have is left out), with the aliases that point to them, as [`write()`] does.
pub fn write_models<'a>(
    table: &PriceTable,
    keys: impl IntoIterator<Item = &'a str>,
) -> Result<String, WriteError> {
    write_table(table, keys, false)
}

/// Writes the entries of `table` listed under `keys`, with their aliases, and, with
/// `left_out`, the names the table left out or skipped that it has no entry or alias for.
fn write_table<'a>(
    table: &PriceTable,
    keys: impl IntoIterator<Item = &'a str>,
    left_out: bool,
) -> Result<String, WriteError> {
    use toml::{Table, Value};
    let info = table.info();
    let mut root = Table::new();
    root.insert("version".into(), Value::String(info.version.to_string()));
    root.insert(
        "unit".into(),
        Value::String("usd_per_million_tokens".into()),
    );
    let mut models = Table::new();
    let mut all_dated = true;
    for key in keys {
        let Some(entry) = table.get(key) else {
            continue;
        };
        all_dated &= entry.as_of.is_some();
        models.insert(entry.key.clone(), Value::Table(model_table(entry)?));
    }
    if let Some(as_of) = info.as_of.as_ref().filter(|_| all_dated) {
        root.insert("as_of".into(), Value::String(as_of.clone()));
    }
    let aliases: Table = table
        .aliases()
        .iter()
        .filter(|(_, target)| models.contains_key(target.as_str()))
        .map(|(alias, target)| (alias.clone(), Value::String(target.clone())))
        .collect();
    root.insert("models".into(), Value::Table(models));
    if !aliases.is_empty() {
        root.insert("aliases".into(), Value::Table(aliases));
    }
    let report = table.report();
    for (key, names) in [
        ("left_out", &report.left_out),
        ("skipped", &report.skipped_entries),
    ] {
        let names: Table = names
            .iter()
            .filter(|(name, _)| left_out && table.get(name).is_none())
            .map(|(name, why)| (name.clone(), Value::String(why.clone())))
            .collect();
        if !names.is_empty() {
            root.insert(key.into(), Value::Table(names));
        }
    }
    toml::to_string(&root).map_err(|e| WriteError::Toml(e.to_string()))
}

/// One model's table: its texts, its prices (see [`price_table()`]) and its price changes.
fn model_table(entry: &ModelEntry) -> Result<toml::Table, WriteError> {
    use toml::Value;
    let mut model = price_table(&entry.key, &entry.price)?;
    for (field, text) in [
        ("provider", &entry.provider),
        ("source", &entry.source),
        ("as_of", &entry.as_of),
    ] {
        if let Some(text) = text {
            model.insert(field.into(), Value::String(text.clone()));
        }
    }
    if !entry.changes.is_empty() {
        let changes = entry
            .changes
            .iter()
            .map(|change| {
                let mut table = price_table(&entry.key, &change.price)?;
                table.insert("on".into(), Value::String(change.on().to_owned()));
                Ok(Value::Table(table))
            })
            .collect::<Result<Vec<_>, WriteError>>()?;
        model.insert("changes".into(), Value::Array(changes));
    }
    Ok(model)
}

/// One price's table: standard prices and context tiers, service tiers and factors.
fn price_table(model: &str, price: &ModelPrice) -> Result<toml::Table, WriteError> {
    use crate::price::ServiceTier;
    use toml::Value;
    let mut table = schedule_table(model, price.standard())?;
    for (field, tier) in [
        ("batch", ServiceTier::Batch),
        ("flex", ServiceTier::Flex),
        ("priority", ServiceTier::Priority),
        ("fast_mode_prices", ServiceTier::FastMode),
    ] {
        if let Some(schedule) = price.schedule(tier) {
            let variant = schedule_table(model, schedule)?;
            table.insert(field.into(), Value::Table(variant));
        }
    }
    for (field, factor) in [
        ("fast_mode", price.fast_mode()),
        ("data_residency", price.data_residency()),
    ] {
        if let Some(factor) = factor {
            table.insert(field.into(), Value::String(factor.to_string()));
        }
    }
    let sizes: toml::Table = crate::price::SearchContextSize::ALL
        .into_iter()
        .zip(price.web_search_by_context_size())
        .filter_map(|(size, price)| {
            Some((size.as_str().to_owned(), Value::String(price?.to_string())))
        })
        .collect();
    if !sizes.is_empty() {
        table.insert("web_search_by_context_size".into(), Value::Table(sizes));
    }
    Ok(table)
}

/// The prices of one schedule, with its context tiers.
fn schedule_table(model: &str, schedule: &PriceSchedule) -> Result<toml::Table, WriteError> {
    use toml::Value;
    let mut table = prices_table(&schedule.base);
    if !schedule.tiers.is_empty() {
        let tiers = schedule
            .tiers
            .iter()
            .map(|tier| {
                let above = i64::try_from(tier.above_input_tokens).map_err(|_| {
                    WriteError::ThresholdTooLarge {
                        model: model.to_owned(),
                        above: tier.above_input_tokens,
                    }
                })?;
                let mut prices = prices_table(&tier.prices);
                prices.insert("above".into(), Value::Integer(above));
                Ok(Value::Table(prices))
            })
            .collect::<Result<Vec<_>, WriteError>>()?;
        table.insert("tiers".into(), Value::Array(tiers));
    }
    Ok(table)
}

/// The declared prices, per million tokens (per search or call for the per-call fees).
fn prices_table(prices: &ComponentPrices) -> toml::Table {
    use crate::usage::TokenKind;
    TokenKind::ALL
        .into_iter()
        .filter_map(|kind| {
            let price = prices.get(kind)?;
            let text = match kind {
                kind if kind.is_per_use() => price.to_string(),
                _ => price.per_million_text(),
            };
            Some((kind.as_str().to_owned(), toml::Value::String(text)))
        })
        .collect()
}
