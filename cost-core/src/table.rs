//! Price tables: entries by model name, their provenance, merging, and live replacement.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock};

use arc_swap::ArcSwap;
use serde::Serialize;
use thiserror::Error;

use crate::price::{CallTerms, CostError, ModelPrice, Priced};
use crate::resolve::{self, MatchRule, Unpriced};
use crate::usage::Usage;

/// One model's entry in a table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelEntry {
    /// The model name this entry is listed under (`gpt-4o`, `anthropic/claude-sonnet-4-5`).
    pub key: String,
    /// The provider (`openai`, `anthropic`, …), where the table says.
    pub provider: Option<String>,
    /// Where the prices come from (a pricing page), where the table says.
    pub source: Option<String>,
    /// The date the prices were read from the source, where the table says (`YYYY-MM-DD`).
    pub as_of: Option<String>,
    /// The prices: until the first of `changes`, or always when there is none.
    pub price: ModelPrice,
    /// Prices that replace `price` from a known date on (an introductory price that ends, a
    /// published price cut), in date order: a call is priced at the prices in force on the day
    /// it was made ([`ModelEntry::price_at`]).
    pub changes: Vec<PriceChange>,
}

impl ModelEntry {
    /// An entry with prices only.
    pub fn new(key: impl Into<String>, price: ModelPrice) -> Self {
        ModelEntry {
            key: key.into(),
            provider: None,
            source: None,
            as_of: None,
            price,
            changes: Vec::new(),
        }
    }

    /// The prices in force at `unix_seconds`, with the change that set them (`None`: the
    /// entry's first prices).
    #[inline]
    pub fn price_at(&self, unix_seconds: i64) -> (&ModelPrice, Option<&PriceChange>) {
        match self
            .changes
            .iter()
            .rev()
            .find(|change| change.starts_at <= unix_seconds)
        {
            Some(change) => (&change.price, Some(change)),
            None => (&self.price, None),
        }
    }

    /// The prices in force now: `price_at` the system clock, read only when the entry has
    /// changes.
    #[inline]
    pub fn price_now(&self) -> (&ModelPrice, Option<&PriceChange>) {
        if self.changes.is_empty() {
            (&self.price, None)
        } else {
            use crate::budget::Clock;
            self.price_at(crate::budget::SystemClock.unix_seconds())
        }
    }
}

/// A change of a model's prices on a known date: from 00:00 UTC that day on, `price` replaces
/// the prices before it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PriceChange {
    on: String,
    starts_at: i64,
    /// The prices from that day on.
    pub price: ModelPrice,
}

impl PriceChange {
    /// The change to `price` on the day `on` (`YYYY-MM-DD`, UTC); `None` when `on` is not a
    /// calendar date in that form.
    pub fn new(on: &str, price: ModelPrice) -> Option<PriceChange> {
        let day = crate::budget::parse_utc_date(on)?;
        Some(PriceChange {
            on: on.to_owned(),
            starts_at: day.checked_mul(86_400)?,
            price,
        })
    }

    /// The day the change takes effect (`YYYY-MM-DD`).
    pub fn on(&self) -> &str {
        &self.on
    }

    /// When the change takes effect, in seconds since the Unix epoch (00:00 UTC on its day).
    pub fn starts_at(&self) -> i64 {
        self.starts_at
    }
}

impl ModelEntry {
    /// Whole days from the entry's `as_of` date to `now_unix_seconds` (UTC); `None` when the
    /// entry has no date (LiteLLM's file carries none; nor do programmatic entries unless set).
    pub fn age_days(&self, now_unix_seconds: i64) -> Option<i64> {
        let as_of = crate::budget::parse_utc_date(self.as_of.as_deref()?)?;
        Some(crate::budget::utc_day(now_unix_seconds) - as_of)
    }

    /// The entry's price, when it was read more than `limit_days` before `now_unix_seconds`.
    pub fn stale_price(&self, now_unix_seconds: i64, limit_days: u32) -> Option<StalePrice> {
        let age_days = self.age_days(now_unix_seconds)?;
        (age_days > i64::from(limit_days)).then(|| StalePrice {
            entry: self.key.clone(),
            as_of: self.as_of.clone().unwrap_or_default(),
            age_days,
        })
    }
}

/// Days after an entry's `as_of` date past which its price is reported as possibly out of date
/// (by the layer's warning and by `llm-cost`): providers change prices and release models
/// several times a year.
pub const DEFAULT_PRICE_AGE_LIMIT_DAYS: u32 = 180;

/// A price read longer ago than the age limit: it may no longer be what the provider charges.
/// Its `Display` is the warning the layer and `llm-cost` give (once per date: prices are read
/// a table at a time).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StalePrice {
    /// The entry's key.
    pub entry: String,
    /// The date the price was read (`YYYY-MM-DD`).
    pub as_of: String,
    /// Days from then to now.
    pub age_days: i64,
}

impl std::fmt::Display for StalePrice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "prices read on {} ({} days ago) may be out of date, `{}`'s among them; load a current price file (LiteLLM's or your own) over the table",
            self.as_of, self.age_days, self.entry
        )
    }
}

/// Identity of a table: what a quote's provenance names.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TableInfo {
    /// Version string: the table's own, or derived from its content (`litellm@1a2b3c4d5e6f`);
    /// merged tables join their versions with `+`. Shared, so totals can name it cheaply.
    pub version: Arc<str>,
    /// The date the table's prices were valid, where known (`YYYY-MM-DD`).
    pub as_of: Option<String>,
    /// Where the table was loaded from (`embedded`, a file path, `programmatic`).
    pub origin: String,
}

/// What loading a price file kept and what it left out.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LoadReport {
    /// Model entries loaded.
    pub entries: usize,
    /// Aliases loaded.
    pub aliases: usize,
    /// Entries left out because they have no per-token input price (image, audio, per-second
    /// models): by name, each with why (the file, and the keys that price it instead). A name
    /// the table resolves to one of them is unpriced with that reason, as for
    /// [`left_out`](LoadReport::left_out): a call with token usage under a name the file
    /// prices per image or per second is not priced at another entry a resolution rule would
    /// reach past it. Not a problem of the file: no warning is due.
    pub skipped_entries: BTreeMap<String, String>,
    /// Price keys that were not understood (per-image, per-second, …) and so not applied, with
    /// the number of entries that had each.
    pub skipped_keys: BTreeMap<String, usize>,
    /// Entries left out because a price in them is not a valid price, or because the file gives
    /// them (or a key of theirs) twice with different prices: by name, each with the file,
    /// line, column and reason (LiteLLM files; the native format rejects a file with an invalid
    /// price, and its `[left_out]` table lists names a LiteLLM file's table left out, with
    /// their reasons). A name the table resolves to one of them is unpriced, with that reason:
    /// never priced at another entry a resolution rule would reach past it (a dated snapshot
    /// at its family's price, a provider's name at another provider's).
    pub left_out: BTreeMap<String, String>,
}

/// Handle of an entry inside one [`PriceTable`]; cheap to keep and to price with
/// ([`PriceTable::entry`]). Only meaningful for the table that returned it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryId(u32);

impl EntryId {
    /// Position of the entry in [`PriceTable::entries`].
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// How a model name was resolved to an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resolution {
    /// The entry.
    pub id: EntryId,
    /// The rule that found it.
    pub rule: MatchRule,
}

/// A table that cannot be built.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum TableError {
    /// An alias names a model the table does not have.
    #[error("alias `{alias}` points to `{target}`, which is not in the table")]
    UnknownAliasTarget {
        /// The alias.
        alias: String,
        /// What it points to.
        target: String,
    },
    /// Aliases that point to each other in a circle.
    #[error("alias `{0}` points back to itself through other aliases")]
    AliasCycle(String),
    /// An alias with the same name as a model entry.
    #[error("`{0}` is both a model entry and an alias")]
    AliasShadowsEntry(String),
    /// An entry's price changes are not in strictly increasing date order.
    #[error("model `{model}`: the price change on {on} is not after the one before it")]
    PriceChangesOutOfOrder {
        /// The entry's key.
        model: String,
        /// The date of the change out of order.
        on: String,
    },
}

/// Collects entries and aliases, then builds a [`PriceTable`]. A later entry or alias with the
/// same name replaces the earlier one (that is how tables merge).
#[derive(Clone, Debug, Default)]
pub struct PriceTableBuilder {
    info: TableInfo,
    entries: Vec<ModelEntry>,
    positions: HashMap<String, usize>,
    aliases: BTreeMap<String, String>,
    report: LoadReport,
}

impl PriceTableBuilder {
    /// An empty builder for a table with this identity.
    pub fn new(info: TableInfo) -> Self {
        PriceTableBuilder {
            info,
            ..Default::default()
        }
    }

    /// Adds an entry, replacing any entry or alias with the same key.
    pub fn model(&mut self, entry: ModelEntry) -> &mut Self {
        self.aliases.remove(&entry.key);
        match self.positions.get(&entry.key) {
            Some(&at) => self.entries[at] = entry,
            None => {
                self.positions.insert(entry.key.clone(), self.entries.len());
                self.entries.push(entry);
            }
        }
        self
    }

    /// Declares `alias` as another name of the entry `target`, replacing any entry named `alias`.
    pub fn alias(&mut self, alias: impl Into<String>, target: impl Into<String>) -> &mut Self {
        let alias = alias.into();
        if let Some(at) = self.positions.remove(&alias) {
            self.entries.remove(at);
            for position in self.positions.values_mut() {
                if *position > at {
                    *position -= 1;
                }
            }
        }
        self.aliases.insert(alias, target.into());
        self
    }

    /// The load report the table will carry.
    pub fn report_mut(&mut self) -> &mut LoadReport {
        &mut self.report
    }

    /// Records that the file's entry `name` was left out, and why (`message`, with the file's
    /// position), in the report's `left_out`: resolving `name` then says why it is unpriced
    /// instead of finding another entry.
    pub fn left_out(&mut self, name: impl Into<String>, message: impl Into<String>) -> &mut Self {
        self.report.left_out.insert(name.into(), message.into());
        self
    }

    /// Records that the file's entry `name` has no per-token price, and why (`message`: the
    /// file and the keys that price it instead), in the report's `skipped_entries`: resolving
    /// `name` then says why it is unpriced instead of finding another entry.
    pub fn skipped_entry(
        &mut self,
        name: impl Into<String>,
        message: impl Into<String>,
    ) -> &mut Self {
        self.report
            .skipped_entries
            .insert(name.into(), message.into());
        self
    }

    /// Builds the table: sorts entries by key, resolves aliases, and indexes names.
    pub fn build(self) -> Result<PriceTable, TableError> {
        let PriceTableBuilder {
            info,
            mut entries,
            aliases,
            mut report,
            ..
        } = self;
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        for entry in &entries {
            if let Some(pair) = entry
                .changes
                .windows(2)
                .find(|w| w[1].starts_at <= w[0].starts_at)
            {
                return Err(TableError::PriceChangesOutOfOrder {
                    model: entry.key.clone(),
                    on: pair[1].on.clone(),
                });
            }
        }
        let mut exact = NameMap::with_capacity_and_hasher(entries.len(), Default::default());
        for (at, entry) in entries.iter().enumerate() {
            let id = EntryId(u32::try_from(at).unwrap_or(u32::MAX));
            exact.insert(entry.key.as_str().into(), Target { id, alias: false });
        }
        for alias in aliases.keys() {
            if exact.contains_key(alias.as_str()) {
                return Err(TableError::AliasShadowsEntry(alias.clone()));
            }
            let mut target = &aliases[alias];
            let mut hops = 0;
            while let Some(next) = aliases.get(target) {
                hops += 1;
                if hops > aliases.len() {
                    return Err(TableError::AliasCycle(alias.clone()));
                }
                target = next;
            }
            let Some(found) = exact.get(target.as_str()).copied() else {
                return Err(TableError::UnknownAliasTarget {
                    alias: alias.clone(),
                    target: target.clone(),
                });
            };
            exact.insert(
                alias.as_str().into(),
                Target {
                    id: found.id,
                    alias: true,
                },
            );
        }
        // Case-insensitive index: on a collision the entry whose name sorts first wins, so the
        // outcome does not depend on file order.
        let mut names: Vec<(&str, Target)> = exact.iter().map(|(k, t)| (&**k, *t)).collect();
        names.sort_by(|a, b| a.0.cmp(b.0));
        let mut folded = NameMap::with_capacity_and_hasher(names.len(), Default::default());
        for (name, target) in names {
            folded.entry(name.to_lowercase().into()).or_insert(target);
        }
        report.entries = entries.len();
        report.aliases = aliases.len();
        let left_out = report
            .skipped_entries
            .keys()
            .chain(report.left_out.keys())
            .map(|name| (name.to_lowercase().into(), name.as_str().into()))
            .collect();
        Ok(PriceTable {
            info,
            entries,
            exact,
            folded,
            aliases,
            left_out,
            report,
        })
    }
}

/// Names to entries. Model names come from the application, not from an adversary, so a fast
/// non-cryptographic hasher is used.
type NameMap = HashMap<Box<str>, Target, foldhash::fast::RandomState>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Target {
    id: EntryId,
    alias: bool,
}

/// Prices of many models, with the rules to find a model by name.
///
/// Build one with [`PriceTable::default`] (the embedded, dated table), from a file
/// ([`PriceTable::from_path`], either format), or with a [`PriceTableBuilder`]; combine them
/// with [`PriceTable::merged`]; share a replaceable one with [`SharedPriceTable`].
#[derive(Clone, Debug)]
pub struct PriceTable {
    info: TableInfo,
    entries: Vec<ModelEntry>,
    exact: NameMap,
    folded: NameMap,
    aliases: BTreeMap<String, String>,
    /// The report's `left_out` and `skipped_entries` names, by their lowercase form: to the
    /// name.
    left_out: HashMap<Box<str>, Box<str>, foldhash::fast::RandomState>,
    report: LoadReport,
}

/// A price quote for one call: its cost and where the price came from.
#[derive(Clone, Copy, Debug)]
pub struct Quote<'t> {
    /// The entry that priced the call.
    pub entry: &'t ModelEntry,
    /// The entry's price change in force when the call was made, if any (`None`: its first
    /// prices).
    pub change: Option<&'t PriceChange>,
    /// How the model name was resolved to that entry.
    pub rule: MatchRule,
    /// The cost and the tiers applied.
    pub priced: Priced,
    /// The table the entry belongs to.
    pub table: &'t TableInfo,
}

impl Quote<'_> {
    /// Total cost of the call.
    pub fn total(&self) -> crate::Money {
        self.priced.total()
    }

    /// Where the price came from, as an owned value.
    pub fn provenance(&self) -> Provenance {
        Provenance {
            entry: self.entry.key.clone(),
            rule: self.rule,
            table_version: self.table.version.to_string(),
            table_as_of: self.table.as_of.clone(),
            entry_as_of: self.entry.as_of.clone(),
            source: self.entry.source.clone(),
        }
    }
}

/// Where a price came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Provenance {
    /// The entry's key.
    pub entry: String,
    /// How the name was resolved.
    pub rule: MatchRule,
    /// The table's version.
    pub table_version: String,
    /// The table's date.
    pub table_as_of: Option<String>,
    /// The entry's date.
    pub entry_as_of: Option<String>,
    /// The entry's source.
    pub source: Option<String>,
}

/// Why a call could not be quoted.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum QuoteError {
    /// The model has no price in the table.
    #[error(transparent)]
    Unpriced(#[from] Unpriced),
    /// The model was found but the call cannot be priced.
    #[error("cannot price `{model}`: {source}")]
    Cost {
        /// The entry's key.
        model: String,
        /// The reason.
        source: CostError,
    },
}

static EMBEDDED: LazyLock<Arc<PriceTable>> = LazyLock::new(|| {
    // The embedded file is checked by the test `embedded_table_loads`, so this cannot fail in
    // a released build.
    #[allow(clippy::expect_used)]
    let table = crate::format::native::parse(crate::EMBEDDED_PRICES, "embedded")
        .expect("the embedded price table is valid");
    Arc::new(table)
});

impl Default for PriceTable {
    /// The embedded, dated table (`cost-core/prices/default.toml`).
    fn default() -> Self {
        PriceTable::embedded().as_ref().clone()
    }
}

impl PriceTable {
    /// The embedded, dated table, parsed once per process and shared.
    pub fn embedded() -> Arc<PriceTable> {
        Arc::clone(&EMBEDDED)
    }

    /// The table's identity.
    pub fn info(&self) -> &TableInfo {
        &self.info
    }

    /// What loading kept and left out.
    pub fn report(&self) -> &LoadReport {
        &self.report
    }

    /// Every entry, sorted by key.
    pub fn entries(&self) -> &[ModelEntry] {
        &self.entries
    }

    /// Aliases and the names they point to.
    pub fn aliases(&self) -> &BTreeMap<String, String> {
        &self.aliases
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// `true` when the table has no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry behind a handle.
    ///
    /// # Panics
    /// When `id` comes from another table with fewer entries.
    #[inline]
    pub fn entry(&self, id: EntryId) -> &ModelEntry {
        &self.entries[id.index()]
    }

    /// The entry listed under exactly this name (no resolution rules).
    pub fn get(&self, key: &str) -> Option<&ModelEntry> {
        self.exact.get(key).map(|t| self.entry(t.id))
    }

    /// Finds the entry for a model name, by the rules of [`crate::resolve`].
    pub fn resolve(&self, model: &str) -> Result<Resolution, Unpriced> {
        resolve::resolve(self, model)
    }

    pub(crate) fn lookup_exact(&self, name: &str) -> Option<Resolution> {
        self.exact.get(name).map(|t| Resolution {
            id: t.id,
            rule: if t.alias {
                MatchRule::Alias
            } else {
                MatchRule::Exact
            },
        })
    }

    pub(crate) fn lookup_folded(&self, lowercase: &str) -> Option<Resolution> {
        self.folded.get(lowercase).map(|t| Resolution {
            id: t.id,
            rule: if t.alias {
                MatchRule::Alias
            } else {
                MatchRule::CaseInsensitive
            },
        })
    }

    /// Why the entry named `lowercase` (a name in lowercase, whatever the file's case) was left
    /// out of the table (its report's `left_out`, else its `skipped_entries`), when it was.
    pub(crate) fn lookup_left_out(&self, lowercase: &str) -> Option<&str> {
        let name = self.left_out.get(lowercase)?;
        let report = &self.report;
        (report.left_out.get(&**name))
            .or_else(|| report.skipped_entries.get(&**name))
            .map(String::as_str)
    }

    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.exact.keys().map(|k| &**k)
    }

    /// Prices one call of `model` made now: resolves the name, then
    /// [`PriceTable::quote_resolved`].
    pub fn quote(
        &self,
        model: &str,
        usage: &Usage,
        terms: impl Into<CallTerms>,
    ) -> Result<Quote<'_>, QuoteError> {
        let resolution = self.resolve(model)?;
        self.quote_resolved(resolution, usage, terms)
    }

    /// Prices one call of `model` made at `unix_seconds`, at the prices in force then
    /// ([`ModelEntry::price_at`]): to price calls on record.
    pub fn quote_at(
        &self,
        model: &str,
        usage: &Usage,
        terms: impl Into<CallTerms>,
        unix_seconds: i64,
    ) -> Result<Quote<'_>, QuoteError> {
        let resolution = self.resolve(model)?;
        self.quote_resolved_at(resolution, usage, terms, unix_seconds)
    }

    /// The most a call of `model` made now can cost before its answer is known
    /// ([`ModelPrice::worst_case`]), with the entry that prices it: what a budget reserves.
    pub fn worst_case(
        &self,
        model: &str,
        bound: &crate::price::CallBound,
        terms: impl Into<CallTerms>,
    ) -> Result<(&ModelEntry, crate::Money), QuoteError> {
        let entry = self.entry(self.resolve(model)?.id);
        let worst = entry
            .price_now()
            .0
            .worst_case(bound, terms)
            .map_err(|source| QuoteError::Cost {
                model: entry.key.clone(),
                source,
            })?;
        Ok((entry, worst))
    }

    /// Prices one call, made now, of an already resolved model; the fast path for callers that
    /// cache [`Resolution`]s. The clock is read only for an entry with price changes.
    #[inline]
    pub fn quote_resolved(
        &self,
        resolution: Resolution,
        usage: &Usage,
        terms: impl Into<CallTerms>,
    ) -> Result<Quote<'_>, QuoteError> {
        let entry = self.entry(resolution.id);
        let (price, change) = entry.price_now();
        self.quote_with(entry, price, change, resolution.rule, usage, terms.into())
    }

    /// Prices one call, made at `unix_seconds`, of an already resolved model.
    pub fn quote_resolved_at(
        &self,
        resolution: Resolution,
        usage: &Usage,
        terms: impl Into<CallTerms>,
        unix_seconds: i64,
    ) -> Result<Quote<'_>, QuoteError> {
        let entry = self.entry(resolution.id);
        let (price, change) = entry.price_at(unix_seconds);
        self.quote_with(entry, price, change, resolution.rule, usage, terms.into())
    }

    #[inline]
    fn quote_with<'t>(
        &'t self,
        entry: &'t ModelEntry,
        price: &ModelPrice,
        change: Option<&'t PriceChange>,
        rule: MatchRule,
        usage: &Usage,
        terms: CallTerms,
    ) -> Result<Quote<'t>, QuoteError> {
        let priced = price
            .cost(usage, terms)
            .map_err(|source| QuoteError::Cost {
                model: entry.key.clone(),
                source,
            })?;
        Ok(Quote {
            entry,
            change,
            rule,
            priced,
            table: &self.info,
        })
    }

    /// The entries whose price was read more than `limit_days` before `now_unix_seconds`, in
    /// table order: to check a table when it is loaded, before any call is charged at it.
    pub fn stale_prices(&self, now_unix_seconds: i64, limit_days: u32) -> Vec<StalePrice> {
        self.entries
            .iter()
            .filter_map(|entry| entry.stale_price(now_unix_seconds, limit_days))
            .collect()
    }

    /// A builder holding this table's entries and aliases, to extend or override.
    pub fn to_builder(&self) -> PriceTableBuilder {
        let mut builder = PriceTableBuilder::new(self.info.clone());
        for entry in &self.entries {
            builder.model(entry.clone());
        }
        for (alias, target) in &self.aliases {
            builder.alias(alias.clone(), target.clone());
        }
        builder.report = self.report.clone();
        builder
    }

    /// This table with `overlay`'s entries and aliases on top: an overlay entry replaces the
    /// entry with the same key. The version is `self.version + "+" + overlay.version`; the
    /// date is the overlay's when it has one. The load report holds what either table's
    /// loading left out; a name either one left out is unpriced in the merged table unless the
    /// other has an entry or alias of that name, which then prices it.
    ///
    /// An overlay entry that gives no data-residency factor takes the factor of the entry its
    /// name resolves to in this table, when that one has a factor and the overlay's prices
    /// scale by it exactly; so for the fast-mode factor, where the overlay entry has no
    /// fast-mode price. A factor is the provider's markup on whatever its list price is, and
    /// LiteLLM's file gives it only on some entries: merged over the embedded table, its
    /// Claude 4.5 entries (`claude-sonnet-4-5`, `claude-sonnet-4-5-20250929`,
    /// `vertex_ai/claude-sonnet-4-5@20250929`) keep pricing data-residency calls instead of
    /// leaving them unpriced. Give the overlay entry a factor of its own to replace it.
    ///
    /// Use it for default ← file ← programmatic overrides.
    pub fn merged(&self, overlay: &PriceTable) -> Result<PriceTable, TableError> {
        let mut builder = self.to_builder();
        for entry in &overlay.entries {
            builder.model(self.with_inherited_factors(entry));
        }
        for (alias, target) in &overlay.aliases {
            builder.alias(alias.clone(), target.clone());
        }
        // What either file left out stays on record.
        let left_out = &overlay.report;
        let report = builder.report_mut();
        report
            .skipped_entries
            .extend(left_out.skipped_entries.clone());
        report.left_out.extend(left_out.left_out.clone());
        for (key, count) in &left_out.skipped_keys {
            *report.skipped_keys.entry(key.clone()).or_default() += count;
        }
        builder.info = TableInfo {
            version: format!("{}+{}", self.info.version, overlay.info.version).into(),
            as_of: overlay
                .info
                .as_of
                .clone()
                .or_else(|| self.info.as_of.clone()),
            origin: format!("{}+{}", self.info.origin, overlay.info.origin),
        };
        builder.build()
    }

    /// `entry`, with the fast-mode and data-residency factors of the entry its name resolves to
    /// here where it has none of its own (see [`PriceTable::merged`]).
    fn with_inherited_factors(&self, entry: &ModelEntry) -> ModelEntry {
        let mut entry = entry.clone();
        let Some(below) = resolve::find(self, &entry.key).map(|found| &self.entry(found.id).price)
        else {
            return entry;
        };
        let inherit = |price: &mut ModelPrice| {
            if !price.has_fast_mode_price()
                && let Some(factor) = below.fast_mode()
                && let Ok(with) = price.clone().with_fast_mode(factor)
            {
                *price = with;
            }
            if price.data_residency().is_none()
                && let Some(factor) = below.data_residency()
                && let Ok(with) = price.clone().with_data_residency(factor)
            {
                *price = with;
            }
        };
        inherit(&mut entry.price);
        for change in &mut entry.changes {
            inherit(&mut change.price);
        }
        entry
    }

    /// This table with one entry added or replaced: a programmatic override.
    pub fn with_model(&self, entry: ModelEntry) -> Result<PriceTable, TableError> {
        let mut builder = self.to_builder();
        builder.model(entry);
        builder.build()
    }
}

/// A price table that can be replaced while readers keep using it.
///
/// Readers call [`SharedPriceTable::load`] and get the table current at that moment; a writer
/// calls [`SharedPriceTable::store`] (for instance after re-reading a price file) and later
/// readers see the new table. No reader ever blocks or sees a half-built table.
#[derive(Debug)]
pub struct SharedPriceTable {
    current: ArcSwap<PriceTable>,
}

impl SharedPriceTable {
    /// Shares `table`.
    pub fn new(table: PriceTable) -> Self {
        SharedPriceTable {
            current: ArcSwap::from_pointee(table),
        }
    }

    /// The current table, as an owned `Arc`.
    pub fn load(&self) -> Arc<PriceTable> {
        self.current.load_full()
    }

    /// The current table, borrowed for a short while: cheaper than [`SharedPriceTable::load`]
    /// on hot paths (no shared reference count is touched).
    pub fn current(&self) -> impl std::ops::Deref<Target = Arc<PriceTable>> + '_ {
        self.current.load()
    }

    /// Replaces the table; readers holding the old one keep it until they drop it.
    pub fn store(&self, table: PriceTable) {
        self.current.store(Arc::new(table));
    }
}

impl Default for SharedPriceTable {
    fn default() -> Self {
        SharedPriceTable {
            current: ArcSwap::new(PriceTable::embedded()),
        }
    }
}
