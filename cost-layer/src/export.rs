//! What the metric exporters publish per LLM call: instrument names, bucket boundaries and
//! attributes, shared by the OpenTelemetry metrics exporter (feature `otel`) and the `metrics`
//! facade exporter (feature `metrics`).
//!
//! Per call that closes, up to four instruments:
//!
//! | instrument | kind | unit | attributes |
//! |---|---|---|---|
//! | [`TOKEN_USAGE`] | histogram of tokens, one point per token type | `{token}` | `gen_ai.operation.name`, `gen_ai.provider.name`, `gen_ai.token.type` (`input`, `output`), `gen_ai.request.model` |
//! | [`COST`] | running total of the priced calls' cost | `USD` | `gen_ai.request.model`, `gen_ai.provider.name`, `gen_ai.agent.name`, `cost.feature` |
//! | [`UNPRICED_CALLS`] | counter of calls whose model has no price | `{call}` | as [`COST`] |
//! | [`REJECTED_CALLS`] | counter of calls rejected for invalid usage | `{call}` | as [`COST`] |
//!
//! And, read from the ledger rather than per call, [`DIAGNOSTICS`]: the counts of
//! [`Diagnostics`](crate::Diagnostics) (bad field values, calls hidden by a filter, calls
//! without usage, evictions, …), a counter with the attribute `kind` naming each, so a
//! dashboard can alert on what the layer could not price. With OpenTelemetry,
//! [`Ledger::observe_diagnostics`](crate::Ledger) registers it as an observable counter, read
//! at each collection; through the `metrics` facade, `Ledger::publish_diagnostics` sets it
//! (call it before each scrape, or on a timer).
//!
//! An unpriced call adds nothing to [`COST`] (its cost is unknown, not zero) and counts in
//! [`UNPRICED_CALLS`]; a call rejected for invalid usage (negative or inconsistent counts) adds
//! nothing to [`COST`] nor to [`TOKEN_USAGE`] and counts in [`REJECTED_CALLS`]: while either
//! counter grows, [`COST`] is a lower bound. Application cache hits record no tokens.
//! Attributes with unbounded values (session ids, user ids) and org ids are off by default:
//! every distinct value is a new time series. Turn them on with [`MetricOptions`].

#[cfg(any(feature = "otel", feature = "metrics"))]
use {crate::layer::SpanClose, std::sync::Arc};

/// `gen_ai.client.token.usage`: the OpenTelemetry GenAI token histogram.
pub const TOKEN_USAGE: &str = "gen_ai.client.token.usage";
/// `llm_cost.cost`: the cost of priced calls, USD.
pub const COST: &str = "llm_cost.cost";
/// `llm_cost.unpriced_calls`: calls whose model has no price.
pub const UNPRICED_CALLS: &str = "llm_cost.unpriced_calls";
/// `llm_cost.rejected_calls`: calls rejected for invalid usage, not charged.
pub const REJECTED_CALLS: &str = "llm_cost.rejected_calls";
/// `llm_cost.diagnostics`: the layer's [`Diagnostics`](crate::Diagnostics), by `kind`.
pub const DIAGNOSTICS: &str = "llm_cost.diagnostics";
/// The attribute of [`DIAGNOSTICS`] that names the count (the names of
/// [`Diagnostics::counts`](crate::Diagnostics::counts)).
pub const DIAGNOSTIC_KIND: &str = "kind";

/// The bucket boundaries the OpenTelemetry GenAI conventions give for [`TOKEN_USAGE`]:
/// 1, 4, 16, … 67 108 864 (powers of 4).
pub const TOKEN_USAGE_BUCKETS: [f64; 14] = [
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0,
    16777216.0, 67108864.0,
];

/// Which attribution keys the metric exporters attach besides model, provider, agent and
/// feature. All off by default: session and user ids are unbounded (one time series per
/// value), and org ids often are too.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetricOptions {
    /// Attach `session.id`.
    pub session: bool,
    /// Attach `cost.user_id` (the keyed hash, unless the layer keeps raw ids).
    pub user: bool,
    /// Attach `cost.org_id`.
    pub org: bool,
}

/// The points one closing call contributes.
#[cfg(any(feature = "otel", feature = "metrics"))]
pub(crate) struct CallPoints {
    /// Attributes of [`TOKEN_USAGE`], without `gen_ai.token.type`.
    pub(crate) token_attributes: Vec<(&'static str, Arc<str>)>,
    /// Attributes of [`COST`], [`UNPRICED_CALLS`] and [`REJECTED_CALLS`].
    pub(crate) cost_attributes: Vec<(&'static str, Arc<str>)>,
    /// Input and output tokens; `None` for a call that was not charged (rejected, cache hit).
    pub(crate) tokens: Option<(u64, u64)>,
    /// Cost in USD, `None` when unpriced or not charged.
    pub(crate) cost_usd: Option<f64>,
    pub(crate) unpriced: bool,
    pub(crate) rejected: bool,
}

#[cfg(any(feature = "otel", feature = "metrics"))]
impl CallPoints {
    /// The points of `close`, when it is an LLM call.
    pub(crate) fn of(close: &SpanClose<'_>, options: &MetricOptions) -> Option<CallPoints> {
        // Only LLM-call spans carry call details.
        let call = close.call?;
        let totals = call.own.as_ref()?;
        let request_model = call
            .request_model
            .as_ref()
            .or(call.response_model.as_ref())
            .cloned();
        let mut token_attributes = Vec::with_capacity(3);
        if let Some(operation) = &call.operation {
            token_attributes.push(("gen_ai.operation.name", Arc::clone(operation)));
        }
        if let Some(provider) = &call.provider {
            token_attributes.push(("gen_ai.provider.name", Arc::clone(provider)));
        }
        if let Some(model) = &request_model {
            token_attributes.push(("gen_ai.request.model", Arc::clone(model)));
        }
        let attribution = close.attribution;
        let mut cost_attributes = Vec::with_capacity(4);
        if let Some(model) = &request_model {
            cost_attributes.push(("gen_ai.request.model", Arc::clone(model)));
        }
        let optional = [
            ("gen_ai.provider.name", call.provider.as_ref(), true),
            ("gen_ai.agent.name", attribution.agent.as_ref(), true),
            ("cost.feature", attribution.feature.as_ref(), true),
            ("session.id", attribution.session.as_ref(), options.session),
            ("cost.user_id", attribution.user.as_ref(), options.user),
            ("cost.org_id", attribution.org.as_ref(), options.org),
        ];
        for (name, value, on) in optional {
            if let (true, Some(value)) = (on, value) {
                cost_attributes.push((name, Arc::clone(value)));
            }
        }
        let charged = totals.llm_calls > 0;
        let unpriced = totals.unpriced_calls > 0;
        Some(CallPoints {
            token_attributes,
            cost_attributes,
            tokens: charged.then_some((totals.usage.input, totals.usage.output)),
            cost_usd: (charged && !unpriced).then(|| totals.total_usd().to_f64()),
            unpriced,
            rejected: totals.rejected_calls > 0,
        })
    }
}
