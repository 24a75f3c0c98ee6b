//! The instruments of [`crate::export`] through the [`metrics`] crate facade (feature
//! `metrics`), so any `metrics` exporter serves them, `metrics-exporter-prometheus` among
//! them.
//!
//! Names as in [`crate::export`]; exporters adapt them (Prometheus: `gen_ai_client_token_usage`,
//! `llm_cost_cost`, `llm_cost_unpriced_calls`, `llm_cost_rejected_calls`). The token
//! histogram's buckets are the exporter's to set: with `metrics-exporter-prometheus`,
//! `set_buckets_for_metric(Matcher::Full("gen_ai_client_token_usage".into()),
//! &TOKEN_USAGE_BUCKETS)`.
//!
//! [`COST`](crate::export::COST) is a gauge that only ever increases: the facade's counters
//! count integers, and a cost in USD is fractional. Read it as a counter (`increase()` and
//! `rate()` over it give the spend of a period).

use metrics::{Label, Unit};

use crate::export::{COST, CallPoints, MetricOptions, REJECTED_CALLS, TOKEN_USAGE, UNPRICED_CALLS};
use crate::layer::SpanClose;

impl crate::Ledger {
    /// Sets [`DIAGNOSTICS`](crate::export::DIAGNOSTICS) on the installed `metrics` recorder to
    /// this ledger's [`Diagnostics`](crate::Diagnostics), by `kind`. The facade has no
    /// callback read at scrape time: call this before each scrape, or on a timer. Feature
    /// `metrics`.
    pub fn publish_diagnostics(&self) {
        metrics::describe_counter!(
            crate::export::DIAGNOSTICS,
            "Problems the cost layer counted (values rejected, calls it could not price or see), by kind."
        );
        for (kind, value) in self.diagnostics().counts() {
            metrics::counter!(crate::export::DIAGNOSTICS, crate::export::DIAGNOSTIC_KIND => kind)
                .absolute(value);
        }
    }
}

/// Records per-call points on the installed `metrics` recorder.
pub(crate) struct MetricsFacade {
    options: MetricOptions,
}

impl MetricsFacade {
    pub(crate) fn new(options: MetricOptions) -> Self {
        metrics::describe_histogram!(
            TOKEN_USAGE,
            Unit::Count,
            "Number of input and output tokens used."
        );
        metrics::describe_gauge!(
            COST,
            "Cost of the priced LLM calls, computed locally, USD (a running total)."
        );
        metrics::describe_counter!(
            UNPRICED_CALLS,
            Unit::Count,
            "LLM calls whose model has no price (their cost is unknown)."
        );
        metrics::describe_counter!(
            REJECTED_CALLS,
            Unit::Count,
            "LLM calls rejected for invalid usage (not charged)."
        );
        MetricsFacade { options }
    }

    pub(crate) fn record(&self, close: &SpanClose<'_>) {
        let Some(points) = CallPoints::of(close, &self.options) else {
            return;
        };
        let labels = |attributes: &[(&'static str, std::sync::Arc<str>)]| -> Vec<Label> {
            attributes
                .iter()
                .map(|(name, value)| Label::new(*name, value.to_string()))
                .collect()
        };
        if let Some((input, output)) = points.tokens {
            for (token_type, value) in [("input", input), ("output", output)] {
                let mut labels = labels(&points.token_attributes);
                labels.push(Label::new("gen_ai.token.type", token_type));
                metrics::histogram!(TOKEN_USAGE, labels).record(value as f64);
            }
        }
        let labels = labels(&points.cost_attributes);
        if let Some(cost) = points.cost_usd {
            metrics::gauge!(COST, labels.clone()).increment(cost);
        }
        if points.unpriced {
            metrics::counter!(UNPRICED_CALLS, labels.clone()).increment(1);
        }
        if points.rejected {
            metrics::counter!(REJECTED_CALLS, labels).increment(1);
        }
    }
}
