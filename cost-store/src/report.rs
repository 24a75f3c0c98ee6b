//! Reports over stored records: exact totals grouped by day, month, feature, user, org, model,
//! provider, operation, service tier, session or agent, over the records a filter keeps; the
//! same usage priced on another model (what-if); and repricing after a price
//! correction. Money is summed exactly in Rust, the same way for every store.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use cost_core::budget::{civil_from_days, days_from_civil};
use cost_core::{Money, PriceTable};

use crate::record::{CallRecord, CallStatus};
use crate::store::Repriced;

/// What a report groups calls by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GroupBy {
    /// UTC calendar day (`2026-11-25`).
    Day,
    /// UTC calendar month (`2026-11`): what a provider's invoice covers.
    Month,
    /// Feature.
    Feature,
    /// User (as stored: hashed unless raw ids were kept).
    User,
    /// Organisation.
    Org,
    /// Model, as resolved in the price table.
    Model,
    /// Provider (`gen_ai.provider.name`).
    Provider,
    /// Operation (`gen_ai.operation.name`: `chat`, `embeddings`, …).
    Operation,
    /// The service tier the call was priced at (`standard`, `batch`, `flex`, `priority`, …).
    Tier,
    /// Session.
    Session,
    /// Agent.
    Agent,
    /// How the call was charged ([`CallStatus::as_str`]: `priced`, `unpriced`,
    /// `provider_reported`, `rejected`, `cache_hit`, `unpriced_cache_hit`): `--by model --where
    /// status=unpriced` lists the models a price table lacks.
    Status,
}

impl GroupBy {
    /// Every grouping, by name.
    pub const ALL: [(&'static str, GroupBy); 12] = [
        ("day", GroupBy::Day),
        ("month", GroupBy::Month),
        ("feature", GroupBy::Feature),
        ("user", GroupBy::User),
        ("org", GroupBy::Org),
        ("model", GroupBy::Model),
        ("provider", GroupBy::Provider),
        ("operation", GroupBy::Operation),
        ("tier", GroupBy::Tier),
        ("session", GroupBy::Session),
        ("agent", GroupBy::Agent),
        ("status", GroupBy::Status),
    ];

    /// The grouping called `name`.
    pub fn parse(name: &str) -> Option<GroupBy> {
        GroupBy::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, g)| *g)
    }

    /// The key of a record; `(none)` where the record has none.
    pub fn key(self, record: &CallRecord) -> String {
        let text = |v: &Option<std::sync::Arc<str>>| v.as_deref().unwrap_or(NONE).to_owned();
        match self {
            GroupBy::Day => day_of(record.at_ms),
            GroupBy::Month => {
                let mut day = day_of(record.at_ms);
                day.truncate(day.len() - 3);
                day
            }
            GroupBy::Feature => text(&record.feature),
            GroupBy::User => text(&record.user),
            GroupBy::Org => text(&record.org),
            GroupBy::Model => record.model.to_string(),
            GroupBy::Provider => text(&record.provider),
            GroupBy::Operation => text(&record.operation),
            GroupBy::Tier => record.service_tier.to_string(),
            GroupBy::Session => text(&record.session),
            GroupBy::Agent => text(&record.agent),
            GroupBy::Status => record.status.as_str().to_owned(),
        }
    }
}

/// Which records a report covers: those whose key under each grouping named is the value
/// given (`feature=support`, `org=acme`, `user=(none)` for calls without a user); all of them
/// when it names none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    conditions: Vec<(GroupBy, String)>,
}

impl Filter {
    /// The filter of `conditions`, each `GROUPING=VALUE` (the value as the report shows it:
    /// users as stored, days as `YYYY-MM-DD`); the error names the condition it cannot read.
    pub fn parse<'a>(conditions: impl IntoIterator<Item = &'a str>) -> Result<Filter, String> {
        let mut filter = Filter::default();
        for condition in conditions {
            let Some((name, value)) = condition.split_once('=') else {
                return Err(format!("`{condition}`: expected GROUPING=VALUE"));
            };
            let Some(by) = GroupBy::parse(name.trim()) else {
                let names: Vec<&str> = GroupBy::ALL.iter().map(|(n, _)| *n).collect();
                return Err(format!(
                    "`{condition}`: `{}` is none of {}",
                    name.trim(),
                    names.join(", ")
                ));
            };
            filter.conditions.push((by, value.to_owned()));
        }
        Ok(filter)
    }

    /// Whether `record` meets every condition.
    pub fn keeps(&self, record: &CallRecord) -> bool {
        self.conditions
            .iter()
            .all(|(by, value)| by.key(record) == *value)
    }

    /// The records of `records` it keeps.
    pub fn apply(&self, records: Vec<CallRecord>) -> Vec<CallRecord> {
        if self.conditions.is_empty() {
            return records;
        }
        records.into_iter().filter(|r| self.keeps(r)).collect()
    }
}

/// The key of records without a value for the grouping.
pub const NONE: &str = "(none)";

/// `YYYY-MM-DD` (UTC) of a time in milliseconds since the epoch.
pub fn day_of(at_ms: i64) -> String {
    let (year, month, day) = civil_from_days(at_ms.div_euclid(86_400_000));
    format!("{year:04}-{month:02}-{day:02}")
}

/// Milliseconds since the epoch of `YYYY-MM-DD` (midnight UTC) or of an RFC 3339 UTC time
/// `YYYY-MM-DDTHH:MM:SSZ`.
pub fn parse_time(text: &str) -> Option<i64> {
    let (date, time) = match text.split_once('T') {
        Some((date, time)) => (date, Some(time.strip_suffix('Z')?)),
        None => (text, None),
    };
    let mut parts = date.splitn(3, '-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: u32 = parts.next()?.parse().ok()?;
    let day: u32 = parts.next()?.parse().ok()?;
    let days = days_from_civil(year, month, day)?;
    let seconds = match time {
        None => 0,
        Some(time) => {
            let mut hms = time.splitn(3, ':');
            let h: i64 = hms.next()?.parse().ok()?;
            let m: i64 = hms.next()?.parse().ok()?;
            let s: i64 = hms.next()?.parse().ok()?;
            if !(0..24).contains(&h) || !(0..60).contains(&m) || !(0..61).contains(&s) {
                return None;
            }
            h * 3600 + m * 60 + s
        }
    };
    Some((days * 86_400 + seconds) * 1_000)
}

/// Totals of one group.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Row {
    /// The group's key.
    pub key: String,
    /// Calls charged (priced, charged their provider's reported cost, and unpriced).
    pub calls: u64,
    /// Calls whose model had no price: their cost is unknown, so `cost` is a lower bound.
    pub unpriced_calls: u64,
    /// Calls whose model had no price, charged the cost their provider reported (in `cost`;
    /// [`CallStatus::ProviderReported`]).
    pub provider_reported_calls: u64,
    /// Calls rejected for invalid usage.
    pub rejected_calls: u64,
    /// Calls answered from the application's cache.
    pub cache_hits: u64,
    /// Input tokens (inclusive).
    pub input_tokens: u64,
    /// Output tokens (inclusive).
    pub output_tokens: u64,
    /// Exact cost of the priced calls and of those charged their provider's reported cost.
    pub cost: Money,
    /// Priced calls whose provider reported what they cost ([`CallRecord::reported_cost`]).
    pub reported_calls: u64,
    /// What their providers reported, summed.
    pub reported_cost: Money,
    /// What the price table charged the same calls: set beside `reported_cost`, the drift
    /// of the table's prices from the providers' bills.
    pub cost_of_reported: Money,
    /// Unpriced calls whose provider reported what they cost, the figure kept in the record but
    /// not charged (stored by a layer without `charge_reported_cost_when_unpriced`;
    /// `llm-cost reprice --charge-reported-cost-when-unpriced` charges them).
    pub unpriced_reported_calls: u64,
    /// What their providers reported, summed: not in `cost`, which stays a lower bound.
    pub unpriced_reported_cost: Money,
}

impl Row {
    fn add(&mut self, record: &CallRecord) {
        match record.status {
            CallStatus::Priced => self.calls += 1,
            CallStatus::Unpriced => {
                self.calls += 1;
                self.unpriced_calls += 1;
            }
            CallStatus::ProviderReported => {
                self.calls += 1;
                self.provider_reported_calls += 1;
            }
            CallStatus::Rejected => self.rejected_calls += 1,
            CallStatus::CacheHit | CallStatus::UnpricedCacheHit => self.cache_hits += 1,
        }
        self.input_tokens = self.input_tokens.saturating_add(record.usage.input);
        self.output_tokens = self.output_tokens.saturating_add(record.usage.output);
        self.cost += record.total();
        match (record.status, record.reported_cost) {
            (CallStatus::Priced, Some(reported)) => {
                self.reported_calls += 1;
                self.reported_cost += reported;
                self.cost_of_reported += record.total();
            }
            (CallStatus::Unpriced, Some(reported)) => {
                self.unpriced_reported_calls += 1;
                self.unpriced_reported_cost += reported;
            }
            _ => {}
        }
    }
}

/// Totals grouped by one key, gathered a record at a time ([`Store::scan`](crate::Store::scan)):
/// memory grows with the groups, not with the records.
#[derive(Debug)]
pub struct GroupTotals {
    by: GroupBy,
    groups: HashMap<String, Row>,
    total: Row,
}

impl GroupTotals {
    /// No records yet, grouped `by`.
    pub fn new(by: GroupBy) -> Self {
        GroupTotals {
            by,
            groups: HashMap::new(),
            total: Row {
                key: "total".into(),
                ..Row::default()
            },
        }
    }

    /// Counts one record.
    pub fn add(&mut self, record: &CallRecord) {
        let key = self.by.key(record);
        match self.groups.get_mut(&key) {
            Some(row) => row.add(record),
            None => {
                let mut row = Row {
                    key: key.clone(),
                    ..Row::default()
                };
                row.add(record);
                self.groups.insert(key, row);
            }
        }
        self.total.add(record);
    }

    /// The groups and their grand total (key `total`). Days and months come in date order;
    /// other groups by cost, highest first (ties by key). `top` keeps the first `n` groups.
    pub fn finish(self, top: Option<usize>) -> (Vec<Row>, Row) {
        let mut rows: Vec<Row> = self.groups.into_values().collect();
        match self.by {
            GroupBy::Day | GroupBy::Month => rows.sort_by(|a, b| a.key.cmp(&b.key)),
            _ => rows.sort_by(|a, b| b.cost.cmp(&a.cost).then_with(|| a.key.cmp(&b.key))),
        }
        if let Some(n) = top {
            rows.truncate(n);
        }
        (rows, self.total)
    }
}

/// Totals of `records` grouped `by`, and their grand total: [`GroupTotals`] over a slice.
pub fn totals(records: &[CallRecord], by: GroupBy, top: Option<usize>) -> (Vec<Row>, Row) {
    let mut totals = GroupTotals::new(by);
    records.iter().for_each(|record| totals.add(record));
    totals.finish(top)
}

/// Spend of priced calls per UTC day, split `by` another key, gathered a record at a time:
/// what the chart stacks.
#[derive(Debug)]
pub struct DailySpend {
    by: GroupBy,
    days: BTreeMap<String, BTreeMap<String, Money>>,
}

impl DailySpend {
    /// No records yet, each day split `by`.
    pub fn new(by: GroupBy) -> Self {
        DailySpend {
            by,
            days: BTreeMap::new(),
        }
    }

    /// Counts one record (a call whose cost is known: priced, or charged its provider's
    /// reported cost; others cost nothing known).
    pub fn add(&mut self, record: &CallRecord) {
        if !record.status.has_known_cost() {
            return;
        }
        let cost = self
            .days
            .entry(day_of(record.at_ms))
            .or_default()
            .entry(self.by.key(record))
            .or_insert(Money::ZERO);
        *cost += record.total();
    }

    /// Day → key → spend.
    pub fn finish(self) -> BTreeMap<String, BTreeMap<String, Money>> {
        self.days
    }
}

/// Spend per day, split `by`: [`DailySpend`] over a slice.
pub fn daily(records: &[CallRecord], by: GroupBy) -> BTreeMap<String, BTreeMap<String, Money>> {
    let mut daily = DailySpend::new(by);
    records.iter().for_each(|record| daily.add(record));
    daily.finish()
}

/// One feature's spend as it was and as it would have been on another model.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct WhatIfRow {
    /// The feature.
    pub key: String,
    /// Calls compared (their cost known as they ran: priced, or charged their provider's
    /// reported cost).
    pub calls: u64,
    /// What they cost.
    pub actual: Money,
    /// What the same usage would cost on the other model.
    pub what_if: Money,
    /// Calls left out: unpriced as they ran, rejected, cache hits, run at a service tier the
    /// other model has no price for, or with usage it has no price for (generated images, web
    /// searches, other hosted tools' uses).
    pub skipped: u64,
}

impl WhatIfRow {
    /// `what_if − actual`: negative when the other model is cheaper.
    pub fn difference(&self) -> Money {
        self.what_if - self.actual
    }
}

/// Why a what-if comparison cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum WhatIfError {
    /// The other model has no price.
    #[error(transparent)]
    Unpriced(#[from] cost_core::Unpriced),
}

/// The usage of every priced call priced on another model instead, per feature, gathered a
/// record at a time; each call at the prices in force on the day it was made.
#[derive(Debug)]
pub struct WhatIf<'a> {
    table: &'a PriceTable,
    resolution: cost_core::Resolution,
    groups: HashMap<String, WhatIfRow>,
    total: WhatIfRow,
}

fn blank_what_if(key: &str) -> WhatIfRow {
    WhatIfRow {
        key: key.to_owned(),
        calls: 0,
        actual: Money::ZERO,
        what_if: Money::ZERO,
        skipped: 0,
    }
}

impl<'a> WhatIf<'a> {
    /// The comparison with `model` of `table`; an error when the table has no price for it.
    pub fn new(table: &'a PriceTable, model: &str) -> Result<Self, WhatIfError> {
        Ok(WhatIf {
            table,
            resolution: table.resolve(model)?,
            groups: HashMap::new(),
            total: blank_what_if("total"),
        })
    }

    /// Compares one record.
    pub fn add(&mut self, record: &CallRecord) {
        let key = GroupBy::Feature.key(record);
        let row = self
            .groups
            .entry(key)
            .or_insert_with_key(|key| blank_what_if(key));
        let total = &mut self.total;
        if !record.status.has_known_cost() {
            row.skipped += 1;
            total.skipped += 1;
            return;
        }
        // At the tier the call ran at (and on a data-residency endpoint if it ran on one). A
        // tier the other model has no price for is skipped: its quote falls back to the
        // standard tier, which would compare unlike with unlike; so is a data-residency call
        // where the other model has no price there.
        let Some(other) = self
            .table
            .quote_resolved_at(
                self.resolution,
                &record.usage,
                record.call_terms(),
                record.at_ms.div_euclid(1_000),
            )
            .ok()
            .filter(|quote| quote.priced.service_tier == record.service_tier)
        else {
            row.skipped += 1;
            total.skipped += 1;
            return;
        };
        let other = other.total();
        for row in [row, total] {
            row.calls += 1;
            row.actual += record.total();
            row.what_if += other;
        }
    }

    /// Per feature (ordered by actual cost, highest first), and the grand total (key `total`).
    pub fn finish(self) -> (Vec<WhatIfRow>, WhatIfRow) {
        let mut rows: Vec<WhatIfRow> = self.groups.into_values().collect();
        rows.sort_by(|a, b| b.actual.cmp(&a.actual).then_with(|| a.key.cmp(&b.key)));
        (rows, self.total)
    }
}

/// Prices the usage of every priced call on `model` instead: [`WhatIf`] over a slice.
pub fn what_if(
    records: &[CallRecord],
    table: &PriceTable,
    model: &str,
) -> Result<(Vec<WhatIfRow>, WhatIfRow), WhatIfError> {
    let mut what_if = WhatIf::new(table, model)?;
    records.iter().for_each(|record| what_if.add(record));
    Ok(what_if.finish())
}

/// What repricing found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RepriceSummary {
    /// Records whose cost or status changes.
    pub changed: usize,
    /// Records unchanged.
    pub unchanged: usize,
    /// Records left alone: rejected calls and cache hits (nothing was charged).
    pub skipped: usize,
    /// Total before and after, over the changed records (priced records only: with
    /// `newly_priced` or `newly_unpriced` non-zero, one side is a lower bound).
    pub before: Money,
    /// See `before`.
    pub after: Money,
    /// Changed records that had no price and now have one, or are charged their provider's
    /// reported cost (their cost before was unknown).
    pub newly_priced: usize,
    /// Changed records that had a price and now have none (the table used does not know their
    /// model): their cost is now unknown, not zero.
    pub newly_unpriced: usize,
}

impl fmt::Display for RepriceSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A side with records of unknown cost is a lower bound, never shown as exact.
        let bound = |unknown: usize| if unknown > 0 { "≥ " } else { "" };
        write!(
            f,
            "{} record{} repriced ({}${} → {}${}), {} unchanged, {} skipped",
            self.changed,
            if self.changed == 1 { "" } else { "s" },
            bound(self.newly_priced),
            self.before,
            bound(self.newly_unpriced),
            self.after,
            self.unchanged,
            self.skipped
        )?;
        if self.newly_priced > 0 {
            write!(f, ", {} newly priced", self.newly_priced)?;
        }
        if self.newly_unpriced > 0 {
            write!(
                f,
                ", {} now without a price (their cost unknown)",
                self.newly_unpriced
            )?;
        }
        Ok(())
    }
}

/// The new costs of records under a table (by the model as called, as the layer resolved it,
/// at the prices in force on the day each call was made), gathered a record at a time, for
/// [`Store::reprice`](crate::Store::reprice): only the records that change are kept. A call
/// charged its provider's reported cost ([`CallStatus::ProviderReported`]) is priced by the
/// table where it now has a price (the reported figure stays in
/// [`CallRecord::reported_cost`]) and keeps its charge where it still has none; an unpriced
/// call is charged its reported cost only with
/// [`charge_reported_cost_when_unpriced`](Repricing::charge_reported_cost_when_unpriced).
#[derive(Debug)]
pub struct Repricing<'a> {
    table: &'a PriceTable,
    version: String,
    charge_reported: bool,
    changes: Vec<Repriced>,
    summary: RepriceSummary,
}

impl<'a> Repricing<'a> {
    /// Repricing with `table`.
    pub fn new(table: &'a PriceTable) -> Self {
        Repricing {
            table,
            version: table.info().version.to_string(),
            charge_reported: false,
            changes: Vec::new(),
            summary: RepriceSummary::default(),
        }
    }

    /// Also charges a call the table has no price for the cost its provider reported, when
    /// its record kept one (status [`CallStatus::ProviderReported`]), as the layer's
    /// `charge_reported_cost_when_unpriced` does as calls close: for records stored before it
    /// was turned on.
    pub fn charge_reported_cost_when_unpriced(mut self, on: bool) -> Self {
        self.charge_reported = on;
        self
    }

    /// Reprices one record (one without an id, which cannot be updated, is passed over).
    pub fn add(&mut self, record: &CallRecord) {
        let summary = &mut self.summary;
        let Some(id) = record.id else { return };
        if matches!(
            record.status,
            CallStatus::Rejected | CallStatus::CacheHit | CallStatus::UnpricedCacheHit
        ) {
            summary.skipped += 1;
            return;
        }
        let called = record.model_as_called();
        // At the prices in force when the call was made.
        let priced = self.table.quote_at(
            called,
            &record.usage,
            record.call_terms(),
            record.at_ms.div_euclid(1_000),
        );
        let (status, cost, model) = match priced {
            Ok(quote) => (
                CallStatus::Priced,
                quote.priced.breakdown,
                quote.entry.key.clone(),
            ),
            // Still no price: a call charged its provider's reported cost keeps that charge;
            // an unpriced one whose provider reported its cost is charged it where asked to.
            Err(_) => match (record.status, record.reported_cost) {
                (CallStatus::ProviderReported, _) => {
                    (record.status, record.cost, record.model.to_string())
                }
                (_, Some(reported)) if self.charge_reported => (
                    CallStatus::ProviderReported,
                    cost_core::CostBreakdown {
                        provider_reported: reported,
                        ..cost_core::CostBreakdown::default()
                    },
                    called.to_string(),
                ),
                _ => (
                    CallStatus::Unpriced,
                    cost_core::CostBreakdown::default(),
                    called.to_string(),
                ),
            },
        };
        if status == record.status && cost == record.cost {
            summary.unchanged += 1;
            return;
        }
        summary.changed += 1;
        summary.before += record.total();
        summary.after += cost.total();
        match (record.status, status) {
            (CallStatus::Unpriced, CallStatus::Priced | CallStatus::ProviderReported) => {
                summary.newly_priced += 1
            }
            (CallStatus::Priced, CallStatus::Unpriced) => summary.newly_unpriced += 1,
            _ => {}
        }
        self.changes.push(Repriced {
            id,
            status,
            cost,
            model,
            price_table: self.version.clone(),
        });
    }

    /// The records that change, and what repricing found.
    pub fn finish(self) -> (Vec<Repriced>, RepriceSummary) {
        (self.changes, self.summary)
    }
}

/// The new costs of `records` under `table`: [`Repricing`] over a slice.
pub fn reprice(records: &[CallRecord], table: &PriceTable) -> (Vec<Repriced>, RepriceSummary) {
    let mut repricing = Repricing::new(table);
    records.iter().for_each(|record| repricing.add(record));
    repricing.finish()
}
