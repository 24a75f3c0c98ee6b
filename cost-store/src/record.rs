//! One stored record per LLM call.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use cost_core::{CostBreakdown, Money, SearchContextSize, ServiceTier, Usage};
use cost_layer::ClosedCall;
use serde::{Deserialize, Serialize};

/// How a call was charged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallStatus {
    /// Priced: `cost` is exact.
    Priced,
    /// Its model has no price: tokens count, the cost is unknown (and `cost` is zero, meaning
    /// nothing known, never to be read as free).
    Unpriced,
    /// Its usage was invalid: not charged.
    Rejected,
    /// Answered from the application's own cache: nothing charged; `cache_hit_savings` is what
    /// it would have cost.
    CacheHit,
    /// Answered from the application's own cache, for a model without a price: nothing charged,
    /// and what it saved is unknown (`cache_hit_savings` is zero and means nothing).
    UnpricedCacheHit,
    /// Its model has no price, and it was charged the cost its provider reported
    /// (`CostLayerBuilder::charge_reported_cost_when_unpriced`): `cost` is exact, all of it in
    /// `cost.provider_reported` (equal to `reported_cost`).
    ProviderReported,
}

impl CallStatus {
    /// Every status.
    pub const ALL: [CallStatus; 6] = [
        CallStatus::Priced,
        CallStatus::Unpriced,
        CallStatus::Rejected,
        CallStatus::CacheHit,
        CallStatus::UnpricedCacheHit,
        CallStatus::ProviderReported,
    ];

    /// Lower-case name, as stored.
    pub const fn as_str(self) -> &'static str {
        match self {
            CallStatus::Priced => "priced",
            CallStatus::Unpriced => "unpriced",
            CallStatus::Rejected => "rejected",
            CallStatus::CacheHit => "cache_hit",
            CallStatus::UnpricedCacheHit => "unpriced_cache_hit",
            CallStatus::ProviderReported => "provider_reported",
        }
    }

    /// The call was charged a known cost: priced by the table, or at its provider's reported
    /// cost. Not a cache hit (charged nothing), an unpriced call (its cost unknown) or a
    /// rejected one (not charged).
    pub const fn has_known_cost(self) -> bool {
        matches!(self, CallStatus::Priced | CallStatus::ProviderReported)
    }

    /// The status stored as `text`.
    pub fn parse(text: &str) -> Option<CallStatus> {
        CallStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// One LLM call as stored: when, which model (as called and as resolved), which price table,
/// attribution (user hashed unless the layer keeps raw ids), every token kind, the exact cost
/// and its breakdown, latency, and the call's span ids.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRecord {
    /// The store's id of the record (`None` before it is stored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    /// When the call's span closed: milliseconds since the Unix epoch, UTC.
    pub at_ms: i64,
    /// From the span's creation to its close, microseconds.
    pub duration_us: u64,
    /// The span's name.
    pub name: Cow<'static, str>,
    /// The `tracing` id of the call's span (process-local).
    pub span_id: u64,
    /// The `tracing` id of its nearest accounted ancestor.
    pub parent_span_id: Option<u64>,
    /// The model the request named.
    pub request_model: Option<Arc<str>>,
    /// The model that answered.
    pub response_model: Option<Arc<str>>,
    /// The model as resolved: the price table's entry when priced, else the name as called.
    pub model: Arc<str>,
    /// How the call was charged.
    pub status: CallStatus,
    /// The version of the price table that priced it.
    pub price_table: Option<Arc<str>>,
    /// `gen_ai.provider.name`.
    pub provider: Option<Arc<str>>,
    /// `gen_ai.operation.name`.
    pub operation: Option<Arc<str>>,
    /// The service tier the call ran at (its price depends on it).
    #[serde(default)]
    pub service_tier: ServiceTier,
    /// The call ran on a data-residency endpoint (its price depends on it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub data_residency: bool,
    /// The search context size of the call's web searches, when stated (a search's price
    /// depends on it on some models).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search_context_size: Option<SearchContextSize>,
    /// What the call's provider said it cost, when its answer said (OpenRouter's and
    /// Perplexity's `usage.cost`): beside [`cost`](Self::cost), the price table's, for audit;
    /// or the cost itself when `status` is `provider_reported`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_cost: Option<Money>,
    /// Session id.
    pub session: Option<Arc<str>>,
    /// Agent name.
    pub agent: Option<Arc<str>>,
    /// User, as the layer keeps it (a keyed hash unless configured otherwise).
    pub user: Option<Arc<str>>,
    /// Organisation.
    pub org: Option<Arc<str>>,
    /// Feature.
    pub feature: Option<Arc<str>>,
    /// Every token kind, inclusive convention.
    pub usage: Usage,
    /// The exact cost, by component (zero unless `status` is `priced` or `provider_reported`).
    pub cost: CostBreakdown,
    /// What an application cache hit saved.
    pub cache_hit_savings: Money,
    /// The total before the latest reprice, kept for audit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_cost: Option<Money>,
    /// The price-table version of the latest reprice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repriced_with: Option<Arc<str>>,
}

impl CallRecord {
    /// The call's total cost (zero unless priced or charged its provider's reported cost).
    pub fn total(&self) -> Money {
        self.cost.total()
    }

    /// The terms the call was priced on: its service tier, whether it ran on a data-residency
    /// endpoint, and the search context size of its searches.
    pub fn call_terms(&self) -> cost_core::CallTerms {
        cost_core::CallTerms {
            service_tier: self.service_tier,
            data_residency: self.data_residency,
            search_context_size: self.search_context_size,
        }
    }

    /// The model as called: the response model, else the request model, else the resolved one.
    pub fn model_as_called(&self) -> &Arc<str> {
        self.response_model
            .as_ref()
            .or(self.request_model.as_ref())
            .unwrap_or(&self.model)
    }

    /// The record of a call the layer closed.
    pub fn from_closed(call: &ClosedCall<'_>) -> CallRecord {
        let totals = call.totals;
        let status = status_of(totals);
        let attribution = call.attribution;
        CallRecord {
            id: None,
            at_ms: unix_ms(call.times.at()),
            duration_us: micros(call.times.duration()),
            name: Cow::Borrowed(call.name),
            span_id: call.span_id,
            parent_span_id: call.parent_span_id,
            request_model: call.request_model.cloned(),
            response_model: call.response_model.cloned(),
            model: Arc::clone(call.model),
            status,
            price_table: totals.price_table.clone(),
            provider: call.provider.cloned(),
            operation: call.operation.cloned(),
            service_tier: call.service_tier,
            data_residency: call.data_residency,
            search_context_size: call.search_context_size,
            reported_cost: call.reported_cost,
            session: attribution.session.clone(),
            agent: attribution.agent.clone(),
            user: attribution.user.clone(),
            org: attribution.org.clone(),
            feature: attribution.feature.clone(),
            usage: totals.usage,
            cost: totals.cost,
            cache_hit_savings: totals.cache_hit_savings,
            previous_cost: None,
            repriced_with: None,
        }
    }
}

/// Milliseconds since the Unix epoch (0 before it).
pub(crate) fn unix_ms(at: std::time::SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

pub(crate) fn micros(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

pub(crate) fn status_of(totals: &cost_layer::Totals) -> CallStatus {
    if totals.rejected_calls > 0 {
        CallStatus::Rejected
    } else if totals.unpriced_cache_hits > 0 {
        CallStatus::UnpricedCacheHit
    } else if totals.cache_hits > 0 {
        CallStatus::CacheHit
    } else if totals.unpriced_calls > 0 {
        CallStatus::Unpriced
    } else if totals.provider_reported_calls > 0 {
        CallStatus::ProviderReported
    } else {
        CallStatus::Priced
    }
}
