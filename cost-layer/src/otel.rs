//! OpenTelemetry export (feature `otel`).
//!
//! **Spans.** With [`CostLayerBuilder::otel_span_attributes`](crate::CostLayerBuilder::otel_span_attributes),
//! the spans `tracing-opentelemetry` exports carry what this layer computed:
//!
//! - LLM-call spans (inference spans): the cost as the GenAI conventions propose it,
//!   [`COST_AMOUNT`] (USD), [`COST_CURRENCY`] = `USD`, [`COST_SOURCE`] = `local` (`provider`
//!   for a call charged the cost its provider reported), and the
//!   `gen_ai.usage.*` token counts in the inclusive convention when the span's own fields do not
//!   already carry them under those names (`tracing-opentelemetry` exports fields as they are).
//!   An unpriced call gets no amount (its cost is unknown, not zero) but [`UNPRICED`] = `true`;
//!   a call with invalid usage gets [`REJECTED`] = `true`; an application cache hit costs `0`
//!   and carries [`CACHE_HIT_SAVINGS`] when its model has a price (what a hit on a model
//!   without one saved is unknown: no attribute). A call whose answer said what it cost also
//!   carries that figure as a number, [`REPORTED_COST_USD`].
//! - Agent and session spans: their subtree totals under this project's namespace
//!   ([`TOTAL_COST_USD`], [`TOTAL_TOKENS`], …), never under `gen_ai.usage.*`, so a backend that
//!   sums cost over a trace counts each call once.
//!
//! Both layer orders work for calls. With `tracing-opentelemetry` closing spans after this
//! layer (`registry().with(cost).with(otel)`), a call's attributes are set once, when it closes,
//! with their final values; the layer learns that order from the first call that closes, whose
//! attributes are set as in the other order. With `tracing-opentelemetry` inside, a span is
//! exported before this layer sees it close, so a call's attributes are set as soon as every
//! usage field the span declares has a value (as `#[llm_call]` records them, in one record), and
//! again whenever its price changes (its usage, or a model, service tier or cache hit recorded
//! after it): an OpenTelemetry span cannot replace an attribute, so a stream's running totals
//! repeat it (the latest last, as `tracing-opentelemetry` does for any field recorded twice). A
//! span given a call's attributes this way that turns out to be the aggregate of calls under it
//! (a workflow span whose usage was recorded before they ran) has them withdrawn when the first
//! of those calls closes: its amount, cache saving and the token counts this layer added are set
//! again to `0` and [`UNPRICED`] to `false`, so a backend reading the last value counts each
//! call once. Agent
//! and session totals are only final when the span closes, so they reach the exported span only
//! in the first order; in the other, read them from the ledger or the close callbacks.
//!
//! **Metrics.** [`CostLayerBuilder::otel_metrics`](crate::CostLayerBuilder::otel_metrics)
//! records the instruments of [`crate::export`] on an OpenTelemetry [`Meter`].
//!
//! **Budget alerts** are `WARN` events (target `cost_layer::budget`): `tracing-opentelemetry`
//! attaches them as events to the span that is current when they fire (the agent or session
//! around the call).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter};
use opentelemetry::trace::TraceContextExt;
use tracing::Dispatch;
use tracing::dispatcher::WeakDispatch;
use tracing_core::span::Id;

use crate::export::{COST, CallPoints, MetricOptions, TOKEN_USAGE, TOKEN_USAGE_BUCKETS};
use crate::fields::otel_usage_name;
use crate::layer::SpanClose;
use crate::record::{CallsiteInfo, bit};
use crate::totals::Totals;

/// `gen_ai.usage.cost.amount`: the call's cost, USD.
pub const COST_AMOUNT: &str = "gen_ai.usage.cost.amount";
/// `gen_ai.usage.cost.currency`: always `USD`.
pub const COST_CURRENCY: &str = "gen_ai.usage.cost.currency";
/// `gen_ai.usage.cost.source`: `local` (computed in the process from the price table, not
/// billed), or `provider` on a call charged the cost its provider reported
/// ([`CostLayerBuilder::charge_reported_cost_when_unpriced`](crate::CostLayerBuilder::charge_reported_cost_when_unpriced)).
pub const COST_SOURCE: &str = "gen_ai.usage.cost.source";
/// `llm_cost.price_table`: the version of the price table that priced the call.
pub const PRICE_TABLE: &str = "llm_cost.price_table";
/// `llm_cost.unpriced`: `true` on a call whose model has no price.
pub const UNPRICED: &str = "llm_cost.unpriced";
/// `llm_cost.rejected`: `true` on a call whose usage was invalid (not charged).
pub const REJECTED: &str = "llm_cost.rejected";
/// `llm_cost.web_search_requests`: the web searches a call ran (billed per search, in its
/// cost), on calls that ran any.
pub const WEB_SEARCH_REQUESTS: &str = "llm_cost.web_search_requests";
/// `llm_cost.file_search_calls`: the file search tool calls a call ran (billed per call, in its
/// cost), on calls that ran any.
pub const FILE_SEARCH_CALLS: &str = "llm_cost.file_search_calls";
/// `llm_cost.image_generation_calls`: the images the image generation tool made for a call
/// (billed per image, in its cost), on calls that made any.
pub const IMAGE_GENERATION_CALLS: &str = "llm_cost.image_generation_calls";
/// `llm_cost.code_interpreter_sessions`: the code interpreter sessions a call ran code in
/// (billed per session, in its cost), on calls that ran any.
pub const CODE_INTERPRETER_SESSIONS: &str = "llm_cost.code_interpreter_sessions";
/// `llm_cost.reported_cost_usd`: what the call's provider said it cost (USD, a number), on
/// calls whose answer said (`cost.reported_cost_usd`): set beside [`COST_AMOUNT`] to compare
/// them in the backend. `tracing-opentelemetry` exports the span field itself as it was
/// recorded (the text `#[llm_call]` records it as).
pub const REPORTED_COST_USD: &str = "llm_cost.reported_cost_usd";
/// `llm_cost.cache_hit_savings_usd`: what an application cache hit saved.
pub const CACHE_HIT_SAVINGS: &str = "llm_cost.cache_hit_savings_usd";
/// `llm_cost.total_cost_usd`: an agent's or session's subtree cost (priced calls: a lower bound
/// when [`UNPRICED_CALLS`] or [`REJECTED_CALLS`] is above zero).
pub const TOTAL_COST_USD: &str = "llm_cost.total_cost_usd";
/// `llm_cost.total_tokens`: an agent's or session's subtree tokens.
pub const TOTAL_TOKENS: &str = "llm_cost.total_tokens";
/// `llm_cost.input_tokens`: an agent's or session's subtree input tokens (inclusive).
pub const TOTAL_INPUT_TOKENS: &str = "llm_cost.input_tokens";
/// `llm_cost.output_tokens`: an agent's or session's subtree output tokens (inclusive).
pub const TOTAL_OUTPUT_TOKENS: &str = "llm_cost.output_tokens";
/// `llm_cost.llm_calls`: LLM calls in an agent's or session's subtree.
pub const LLM_CALLS: &str = "llm_cost.llm_calls";
/// `llm_cost.agent_runs`: agent runs in a span's subtree.
pub const AGENT_RUNS: &str = "llm_cost.agent_runs";
/// `llm_cost.unpriced_calls`: unpriced calls in a subtree (the total cost is then a lower bound).
pub const UNPRICED_CALLS: &str = "llm_cost.unpriced_calls";
/// `llm_cost.rejected_calls`: calls rejected for invalid usage in a subtree (not charged: the
/// total cost is then a lower bound).
pub const REJECTED_CALLS: &str = "llm_cost.rejected_calls";

/// Sets attributes on the OpenTelemetry spans of the subscriber the layer is part of.
#[derive(Default)]
pub(crate) struct SpanExport {
    dispatch: OnceLock<WeakDispatch>,
    /// Where `tracing-opentelemetry` closes spans relative to this layer, learnt from the
    /// first call that closes: [`ORDER_UNKNOWN`], [`OTEL_CLOSES_AFTER`] or
    /// [`OTEL_CLOSES_BEFORE`].
    order: AtomicU8,
}

const ORDER_UNKNOWN: u8 = 0;
/// `tracing-opentelemetry` ends a span after this layer has seen it close (it is outside this
/// layer): a call's attributes are set once, at its close, with their final values.
const OTEL_CLOSES_AFTER: u8 = 1;
/// `tracing-opentelemetry` ends a span before this layer sees it close (or is not there): a
/// call's attributes are set as soon as its usage is complete, and again when it changes (an
/// OpenTelemetry span cannot replace an attribute, so a stream's running totals repeat it).
const OTEL_CLOSES_BEFORE: u8 = 2;

impl SpanExport {
    pub(crate) fn register(&self, dispatch: &Dispatch) {
        let _ = self.dispatch.set(dispatch.downgrade());
    }

    /// Whether a call's attributes are set before it closes: unless `tracing-opentelemetry` is
    /// known to end spans after this layer sees them close, which then sets them once.
    pub(crate) fn sets_before_close(&self) -> bool {
        self.order.load(Ordering::Relaxed) != OTEL_CLOSES_AFTER
    }

    /// Learns the order from a call closing in this layer, once: `open`, its OpenTelemetry span
    /// is still open (see [`SpanExport::is_open`]).
    pub(crate) fn learn_order(&self, open: bool) {
        let order = if open {
            OTEL_CLOSES_AFTER
        } else {
            OTEL_CLOSES_BEFORE
        };
        let _ =
            self.order
                .compare_exchange(ORDER_UNKNOWN, order, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// The order is not known yet.
    pub(crate) fn order_unknown(&self) -> bool {
        self.order.load(Ordering::Relaxed) == ORDER_UNKNOWN
    }

    /// Whether `tracing-opentelemetry` has the span `id` open. Must be called without holding
    /// the span's extensions.
    pub(crate) fn is_open(&self, id: &Id) -> bool {
        self.with_context(id, |_| ()).is_some()
    }

    /// Sets `attributes` on the OpenTelemetry span of `id`, if `tracing-opentelemetry` has one
    /// open. Must be called without holding the span's extensions.
    pub(crate) fn set(&self, id: &Id, attributes: Vec<KeyValue>) -> bool {
        self.with_context(id, |cx| cx.span().set_attributes(attributes))
            .is_some()
    }

    /// Runs `f` on the OpenTelemetry context of the span `id`, if `tracing-opentelemetry` has it
    /// open. Must be called without holding the span's extensions.
    fn with_context<R>(&self, id: &Id, f: impl FnOnce(&opentelemetry::Context) -> R) -> Option<R> {
        let dispatch = self.dispatch.get().and_then(WeakDispatch::upgrade)?;
        // Another crate's code: whatever it does, it must not unwind into the host program.
        catch_unwind(AssertUnwindSafe(|| {
            tracing_opentelemetry::get_otel_context(id, &dispatch).map(|cx| f(&cx))
        }))
        .ok()
        .flatten()
    }
}

fn usd(money: cost_core::Money) -> f64 {
    money.to_f64()
}

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// What replaces the attributes set on a span whose usage turned out to be the aggregate of the
/// calls under it (an OpenTelemetry span cannot drop an attribute: set again, the last value
/// stands). `exported` are the attributes its own usage gave it: each figure is set again to
/// zero (amounts and token counts, which a backend summing the trace would count twice) and
/// the unpriced flag to `false`; what only describes the call (currency, source, price table,
/// [`REJECTED`]) is left as it is.
pub(crate) fn withdrawn_call_attributes(exported: Vec<KeyValue>) -> Vec<KeyValue> {
    exported
        .into_iter()
        .filter_map(|attribute| {
            let neutral = match attribute.value {
                opentelemetry::Value::F64(_) => opentelemetry::Value::F64(0.0),
                opentelemetry::Value::I64(_) => opentelemetry::Value::I64(0),
                opentelemetry::Value::Bool(_) if attribute.key.as_str() == UNPRICED => {
                    opentelemetry::Value::Bool(false)
                }
                _ => return None,
            };
            Some(KeyValue::new(attribute.key, neutral))
        })
        .collect()
}

/// The attributes of an LLM-call span, from its own totals and the cost its provider reported.
pub(crate) fn call_attributes(
    own: &Totals,
    info: &CallsiteInfo,
    reported_cost: Option<cost_core::Money>,
) -> Vec<KeyValue> {
    let mut attributes = Vec::with_capacity(8);
    if let Some(reported) = reported_cost {
        attributes.push(KeyValue::new(REPORTED_COST_USD, usd(reported)));
    }
    if own.rejected_calls > 0 {
        attributes.push(KeyValue::new(REJECTED, true));
        return attributes;
    }
    if own.cache_hits > 0 {
        attributes.extend([
            KeyValue::new(COST_AMOUNT, 0.0),
            KeyValue::new(COST_CURRENCY, "USD"),
            KeyValue::new(COST_SOURCE, "local"),
        ]);
        // What a hit on a model without a price saved is unknown: no attribute, not zero.
        if own.unpriced_cache_hits == 0 {
            attributes.push(KeyValue::new(CACHE_HIT_SAVINGS, usd(own.cache_hit_savings)));
        }
        return attributes;
    }
    let usage = &own.usage;
    for kind in cost_core::TokenKind::ALL {
        let value = match kind {
            // The conventions have one cache-creation count: both write durations.
            cost_core::TokenKind::CacheWrite => {
                usage.cache_write.saturating_add(usage.cache_write_1h)
            }
            cost_core::TokenKind::CacheWrite1h => continue,
            other => usage.get(other),
        };
        let exported_as_field = info.declared_otel_tokens & bit(kind) != 0;
        let always = matches!(
            kind,
            cost_core::TokenKind::Input | cost_core::TokenKind::Output
        );
        if let Some(name) = otel_usage_name(kind)
            && !exported_as_field
            && (always || value > 0)
        {
            attributes.push(KeyValue::new(name, count(value)));
        }
    }
    for (name, calls) in [
        (WEB_SEARCH_REQUESTS, usage.web_search_requests),
        (FILE_SEARCH_CALLS, usage.file_search_calls),
        (IMAGE_GENERATION_CALLS, usage.image_generation_calls),
        (CODE_INTERPRETER_SESSIONS, usage.code_interpreter_sessions),
    ] {
        if calls > 0 {
            attributes.push(KeyValue::new(name, count(calls)));
        }
    }
    if own.unpriced_calls > 0 {
        attributes.push(KeyValue::new(UNPRICED, true));
    } else {
        let source = if own.provider_reported_calls > 0 {
            "provider"
        } else {
            "local"
        };
        attributes.extend([
            KeyValue::new(COST_AMOUNT, usd(own.total_usd())),
            KeyValue::new(COST_CURRENCY, "USD"),
            KeyValue::new(COST_SOURCE, source),
        ]);
        if let Some(version) = &own.price_table {
            attributes.push(KeyValue::new(
                PRICE_TABLE,
                opentelemetry::StringValue::from(Arc::clone(version)),
            ));
        }
    }
    attributes
}

/// The attributes of an agent or session span: its subtree totals.
pub(crate) fn totals_attributes(totals: &Totals) -> Vec<KeyValue> {
    vec![
        KeyValue::new(TOTAL_COST_USD, usd(totals.total_usd())),
        KeyValue::new(TOTAL_TOKENS, count(totals.total_tokens())),
        KeyValue::new(TOTAL_INPUT_TOKENS, count(totals.usage.input)),
        KeyValue::new(TOTAL_OUTPUT_TOKENS, count(totals.usage.output)),
        KeyValue::new(LLM_CALLS, count(totals.llm_calls)),
        KeyValue::new(AGENT_RUNS, count(totals.agent_runs)),
        KeyValue::new(UNPRICED_CALLS, count(totals.unpriced_calls)),
        KeyValue::new(REJECTED_CALLS, count(totals.rejected_calls)),
    ]
}

impl crate::Ledger {
    /// Registers [`DIAGNOSTICS`](crate::export::DIAGNOSTICS) on `meter`: an observable counter
    /// of this ledger's [`Diagnostics`](crate::Diagnostics) by `kind`, read at each
    /// collection. Feature `otel`.
    pub fn observe_diagnostics(&self, meter: &Meter) {
        let ledger = self.clone();
        // The instrument lives with the meter; its handle is not needed to keep it.
        let _ = meter
            .u64_observable_counter(crate::export::DIAGNOSTICS)
            .with_unit("{event}")
            .with_description(
                "Problems the cost layer counted (values rejected, calls it could not price or see), by kind.",
            )
            .with_callback(move |observer| {
                for (kind, value) in ledger.diagnostics().counts() {
                    observer.observe(value, &[KeyValue::new(crate::export::DIAGNOSTIC_KIND, kind)]);
                }
            })
            .build();
    }
}

/// The instruments of [`crate::export`] on an OpenTelemetry meter.
pub(crate) struct OtelMetrics {
    token_usage: Histogram<u64>,
    cost: Counter<f64>,
    unpriced: Counter<u64>,
    rejected: Counter<u64>,
    options: MetricOptions,
}

impl OtelMetrics {
    pub(crate) fn new(meter: &Meter, options: MetricOptions) -> Self {
        OtelMetrics {
            token_usage: meter
                .u64_histogram(TOKEN_USAGE)
                .with_unit("{token}")
                .with_description("Number of input and output tokens used.")
                .with_boundaries(TOKEN_USAGE_BUCKETS.to_vec())
                .build(),
            cost: meter
                .f64_counter(COST)
                .with_unit("USD")
                .with_description("Cost of the priced LLM calls, computed locally.")
                .build(),
            unpriced: meter
                .u64_counter(crate::export::UNPRICED_CALLS)
                .with_unit("{call}")
                .with_description("LLM calls whose model has no price (their cost is unknown).")
                .build(),
            rejected: meter
                .u64_counter(crate::export::REJECTED_CALLS)
                .with_unit("{call}")
                .with_description("LLM calls rejected for invalid usage (not charged).")
                .build(),
            options,
        }
    }

    pub(crate) fn record(&self, close: &SpanClose<'_>) {
        let Some(points) = CallPoints::of(close, &self.options) else {
            return;
        };
        let key_values = |attributes: &[(&'static str, Arc<str>)]| -> Vec<KeyValue> {
            attributes
                .iter()
                .map(|(name, value)| {
                    KeyValue::new(*name, opentelemetry::StringValue::from(Arc::clone(value)))
                })
                .collect()
        };
        if let Some((input, output)) = points.tokens {
            let mut attributes = key_values(&points.token_attributes);
            for (token_type, value) in [("input", input), ("output", output)] {
                attributes.push(KeyValue::new("gen_ai.token.type", token_type));
                self.token_usage.record(value, &attributes);
                attributes.pop();
            }
        }
        let attributes = key_values(&points.cost_attributes);
        if let Some(cost) = points.cost_usd {
            self.cost.add(cost, &attributes);
        }
        if points.unpriced {
            self.unpriced.add(1, &attributes);
        }
        if points.rejected {
            self.rejected.add(1, &attributes);
        }
    }
}
