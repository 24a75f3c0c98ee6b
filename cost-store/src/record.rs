//! One stored record per LLM call.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use cost_core::{CostBreakdown, Money, ServiceTier, Usage};
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
}

impl CallStatus {
    /// Lower-case name, as stored.
    pub const fn as_str(self) -> &'static str {
        match self {
            CallStatus::Priced => "priced",
            CallStatus::Unpriced => "unpriced",
            CallStatus::Rejected => "rejected",
            CallStatus::CacheHit => "cache_hit",
        }
    }

    /// The status stored as `text`.
    pub fn parse(text: &str) -> Option<CallStatus> {
        [
            CallStatus::Priced,
            CallStatus::Unpriced,
            CallStatus::Rejected,
            CallStatus::CacheHit,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
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
    /// The exact cost, by component (zero unless `status` is `priced`).
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
    /// The call's total cost (zero unless priced).
    pub fn total(&self) -> Money {
        self.cost.total()
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
            at_ms: unix_ms(call.at),
            duration_us: micros(call.duration),
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

/// Closed calls on their way to the writer thread, queued by one producing thread: fixed-size
/// entries, and every string copied into one text buffer. Queuing a call allocates nothing once
/// the buffers have grown (the writer hands them back emptied), and the writer never touches
/// the reference counts of the strings the instrumented program shares (a count bounced between
/// two cores costs more than the copy).
#[derive(Default)]
pub(crate) struct Lane {
    calls: Vec<QueuedCall>,
    text: String,
}

/// One queued call; its texts are in its lane's buffer.
struct QueuedCall {
    at_ms: i64,
    duration_us: u64,
    name: &'static str,
    span_id: u64,
    parent_span_id: Option<u64>,
    status: CallStatus,
    service_tier: ServiceTier,
    usage: Usage,
    cost: CostBreakdown,
    cache_hit_savings: Money,
    /// Where its texts start in the lane's buffer.
    start: usize,
    /// End of each text, from `start`; `u32::MAX` for an absent one.
    ends: [u32; 11],
}

impl Lane {
    /// Calls queued.
    pub(crate) fn len(&self) -> usize {
        self.calls.len()
    }

    /// Queues a closed call.
    pub(crate) fn push(&mut self, call: &ClosedCall<'_>) {
        let a = call.attribution;
        let texts: [Option<&str>; 11] = [
            call.request_model.map(|s| &**s),
            call.response_model.map(|s| &**s),
            Some(&**call.model),
            call.totals.price_table.as_deref(),
            call.provider.map(|s| &**s),
            call.operation.map(|s| &**s),
            a.session.as_deref(),
            a.agent.as_deref(),
            a.user.as_deref(),
            a.org.as_deref(),
            a.feature.as_deref(),
        ];
        let start = self.text.len();
        let mut ends = [u32::MAX; 11];
        for (end, piece) in ends.iter_mut().zip(texts) {
            if let Some(piece) = piece {
                self.text.push_str(piece);
                *end = u32::try_from(self.text.len() - start).unwrap_or(u32::MAX - 1);
            }
        }
        let totals = call.totals;
        self.calls.push(QueuedCall {
            at_ms: unix_ms(call.at),
            duration_us: micros(call.duration),
            name: call.name,
            span_id: call.span_id,
            parent_span_id: call.parent_span_id,
            status: status_of(totals),
            service_tier: call.service_tier,
            usage: totals.usage,
            cost: totals.cost,
            cache_hit_savings: totals.cache_hit_savings,
            start,
            ends,
        });
    }

    /// The records of the queued calls, in order, built on the writer's thread; the lane is
    /// left empty, its buffers kept for reuse.
    pub(crate) fn drain_into(&mut self, records: &mut Vec<CallRecord>) {
        records.reserve(self.calls.len());
        for call in self.calls.drain(..) {
            records.push(call.into_record(&self.text));
        }
        self.text.clear();
    }
}

impl QueuedCall {
    fn into_record(self, text: &str) -> CallRecord {
        let mut start = self.start;
        let mut texts: [Option<Arc<str>>; 11] = Default::default();
        for (slot, end) in texts.iter_mut().zip(self.ends) {
            if end != u32::MAX {
                let end = self.start + end as usize;
                *slot = text.get(start..end).map(Arc::from);
                start = end;
            }
        }
        let [
            request_model,
            response_model,
            model,
            price_table,
            provider,
            operation,
            session,
            agent,
            user,
            org,
            feature,
        ] = texts;
        CallRecord {
            id: None,
            at_ms: self.at_ms,
            duration_us: self.duration_us,
            name: Cow::Borrowed(self.name),
            span_id: self.span_id,
            parent_span_id: self.parent_span_id,
            request_model,
            response_model,
            model: model.unwrap_or_else(|| Arc::from("unknown")),
            status: self.status,
            price_table,
            provider,
            operation,
            service_tier: self.service_tier,
            session,
            agent,
            user,
            org,
            feature,
            usage: self.usage,
            cost: self.cost,
            cache_hit_savings: self.cache_hit_savings,
            previous_cost: None,
            repriced_with: None,
        }
    }
}

/// Milliseconds since the Unix epoch (0 before it).
fn unix_ms(at: std::time::SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn micros(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

fn status_of(totals: &cost_layer::Totals) -> CallStatus {
    if totals.rejected_calls > 0 {
        CallStatus::Rejected
    } else if totals.cache_hits > 0 {
        CallStatus::CacheHit
    } else if totals.unpriced_calls > 0 {
        CallStatus::Unpriced
    } else {
        CallStatus::Priced
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use cost_layer::{Attribution, ClosedCall, Totals};

    use super::*;

    #[test]
    fn a_queued_call_becomes_the_same_record() {
        let shared = |s: &str| Arc::<str>::from(s);
        let (request, model, provider) = (shared("gpt-4o"), shared("gpt-4o"), shared("openai"));
        let attribution = Attribution {
            session: Some(shared("s-1")),
            agent: None,
            user: Some(shared("u:ab")),
            org: Some(shared("")),
            feature: Some(shared("search")),
        };
        let mut totals = Totals {
            llm_calls: 1,
            usage: Usage::new(1_000, 100),
            price_table: Some(shared("2025.11.24")),
            ..Totals::default()
        };
        totals.cost.output = Money::from_units(7);
        let call = ClosedCall {
            at: SystemTime::UNIX_EPOCH + Duration::from_millis(1_764_072_000_123),
            duration: Duration::from_micros(1_500),
            name: "chat",
            span_id: 42,
            parent_span_id: Some(7),
            request_model: Some(&request),
            response_model: None,
            model: &model,
            provider: Some(&provider),
            operation: None,
            service_tier: ServiceTier::Batch,
            attribution: &attribution,
            totals: &totals,
        };
        // Twice in one lane: the second call's texts follow the first's in the buffer.
        let mut lane = Lane::default();
        lane.push(&call);
        lane.push(&call);
        let mut records = Vec::new();
        lane.drain_into(&mut records);
        assert_eq!(lane.len(), 0);
        assert_eq!(records.len(), 2);
        for queued in &records {
            assert_eq!(*queued, CallRecord::from_closed(&call));
            assert_eq!(
                queued.org.as_deref(),
                Some(""),
                "an empty text is not an absent one"
            );
            assert_eq!(queued.at_ms, 1_764_072_000_123);
        }
    }
}
