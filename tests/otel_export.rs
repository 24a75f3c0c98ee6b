//! Costs on the spans `tracing-opentelemetry` exports, in both layer orders, and the metrics
//! of `cost_layer::export` through the OpenTelemetry metrics API, checked with the SDK's
//! in-memory exporters.

use std::sync::Arc;

use cost_layer::cost_core::Usage;
use cost_layer::cost_core::budget::{
    Budget, BudgetBook, BudgetConfig, BudgetScope, DEFAULT_THRESHOLDS, ManualClock, Window,
};
use cost_layer::export::{MetricOptions, TOKEN_USAGE_BUCKETS};
use cost_layer::{CostLayer, llm_call, otel};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, SdkMeterProvider};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing::field::Empty;
use tracing_subscriber::prelude::*;

/// Which layer `tracing_subscriber` closes first: the inner one.
#[derive(Clone, Copy, Debug)]
enum Order {
    /// `registry().with(cost).with(otel)`: the cost layer sees a close first.
    CostInside,
    /// `registry().with(otel).with(cost)`: `tracing-opentelemetry` exports first.
    OtelInside,
}

/// Runs `work` under the cost layer (built by `builder`) and `tracing-opentelemetry` with an
/// in-memory exporter, in `order`; returns the exported spans.
fn export_spans(
    order: Order,
    builder: cost_layer::CostLayerBuilder,
    work: impl FnOnce(),
) -> Vec<SpanData> {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let (cost, _ledger) = builder.otel_span_attributes(true).build();
    match order {
        Order::CostInside => {
            let subscriber = tracing_subscriber::registry()
                .with(cost)
                .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
            tracing::subscriber::with_default(subscriber, work);
        }
        Order::OtelInside => {
            let subscriber = tracing_subscriber::registry()
                .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")))
                .with(cost);
            tracing::subscriber::with_default(subscriber, work);
        }
    }
    let _ = provider.force_flush();
    exporter
        .get_finished_spans()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn span<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    spans
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no span {name} in {:?}", names(spans)))
}

fn names(spans: &[SpanData]) -> Vec<&str> {
    spans.iter().map(|s| &*s.name).collect()
}

/// The values of attribute `key` on `span`, in order (more than one means a duplicate).
fn values(span: &SpanData, key: &str) -> Vec<Value> {
    span.attributes
        .iter()
        .filter(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
        .collect()
}

fn one(span: &SpanData, key: &str) -> Value {
    let found = values(span, key);
    assert_eq!(found.len(), 1, "{key} on {}: {found:?}", span.name);
    found[0].clone()
}

fn f64_of(value: Value) -> f64 {
    match value {
        Value::F64(v) => v,
        other => panic!("not an f64: {other:?}"),
    }
}

fn i64_of(value: Value) -> i64 {
    match value {
        Value::I64(v) => v,
        other => panic!("not an i64: {other:?}"),
    }
}

/// What `#[llm_call]` instruments: usage read from the return value.
#[llm_call(model = "gpt-4o")]
fn ask_gpt4o(_prompt: &str) -> Usage {
    Usage::new(1_000, 100) // $0.0025 + $0.001
}

/// A session with an agent and four calls: by the macro, by hand with usage recorded later,
/// by hand with usage known at creation (older field names), and one with an unknown model.
fn session() {
    let session = tracing::info_span!("session", session.id = "s-1", cost.feature = "support");
    let _s = session.enter();
    let agent = tracing::info_span!("agent", gen_ai.agent.name = "planner");
    let _a = agent.enter();
    ask_gpt4o("plan");
    let by_hand = tracing::info_span!(
        "by_hand",
        gen_ai.request.model = "gpt-4o-mini",
        gen_ai.usage.input_tokens = Empty,
        gen_ai.usage.output_tokens = Empty,
    );
    by_hand.record("gen_ai.usage.input_tokens", 2_000); // $0.0003
    by_hand.record("gen_ai.usage.output_tokens", 500); // $0.0003
    drop(by_hand);
    tracing::info_span!(
        "at_creation",
        llm.model = "gpt-4o",
        llm.tokens.input = 4_000,  // $0.01
        llm.tokens.output = 1_000, // $0.01
    )
    .in_scope(|| {});
    tracing::info_span!(
        "unknown_model",
        gen_ai.request.model = "acme-llm-9000",
        gen_ai.usage.input_tokens = 10,
        gen_ai.usage.output_tokens = 10,
    )
    .in_scope(|| {});
}

fn assert_call_attributes(spans: &[SpanData]) {
    // Named as the GenAI conventions name an inference span, `{operation} {model}`.
    let macro_call = span(spans, "chat gpt-4o");
    assert_eq!(macro_call.span_kind, opentelemetry::trace::SpanKind::Client);
    assert_eq!(f64_of(one(macro_call, otel::COST_AMOUNT)), 0.0035);
    assert_eq!(one(macro_call, otel::COST_CURRENCY), Value::from("USD"));
    assert_eq!(one(macro_call, otel::COST_SOURCE), Value::from("local"));
    // The macro's span fields carry the usage under the GenAI names: exported once, as fields.
    assert_eq!(i64_of(one(macro_call, "gen_ai.usage.input_tokens")), 1_000);
    assert_eq!(i64_of(one(macro_call, "gen_ai.usage.output_tokens")), 100);

    let by_hand = span(spans, "by_hand");
    assert_eq!(f64_of(one(by_hand, otel::COST_AMOUNT)), 0.0006);

    // Older field names: the GenAI names are added.
    let at_creation = span(spans, "at_creation");
    assert_eq!(f64_of(one(at_creation, otel::COST_AMOUNT)), 0.02);
    assert_eq!(i64_of(one(at_creation, "gen_ai.usage.input_tokens")), 4_000);
    assert_eq!(
        i64_of(one(at_creation, "gen_ai.usage.output_tokens")),
        1_000
    );

    // An unknown price is not a zero price.
    let unknown = span(spans, "unknown_model");
    assert!(values(unknown, otel::COST_AMOUNT).is_empty());
    assert_eq!(one(unknown, otel::UNPRICED), Value::Bool(true));
}

fn assert_no_cost_on_aggregates(spans: &[SpanData]) {
    for name in ["agent", "session"] {
        let aggregate = span(spans, name);
        for key in [otel::COST_AMOUNT, "gen_ai.usage.input_tokens"] {
            assert!(
                values(aggregate, key).is_empty(),
                "{key} on {name}: a backend summing a trace would count it twice"
            );
        }
    }
}

#[test]
fn calls_carry_their_cost_with_the_cost_layer_inside() {
    let spans = export_spans(Order::CostInside, CostLayer::builder(), session);
    assert_call_attributes(&spans);
    assert_no_cost_on_aggregates(&spans);
    let agent = span(&spans, "agent");
    assert_eq!(f64_of(one(agent, otel::TOTAL_COST_USD)), 0.0241);
    assert_eq!(i64_of(one(agent, otel::LLM_CALLS)), 4);
    assert_eq!(i64_of(one(agent, otel::UNPRICED_CALLS)), 1);
    assert_eq!(
        i64_of(one(agent, otel::TOTAL_TOKENS)),
        1_100 + 2_500 + 5_000 + 20
    );
    let session = span(&spans, "session");
    assert_eq!(f64_of(one(session, otel::TOTAL_COST_USD)), 0.0241);
    assert_eq!(i64_of(one(session, otel::AGENT_RUNS)), 1);
    assert_eq!(i64_of(one(session, otel::REJECTED_CALLS)), 0);
}

#[test]
fn agent_and_session_spans_count_the_rejected_calls_their_cost_leaves_out() {
    let spans = export_spans(Order::CostInside, CostLayer::builder(), || {
        let session = tracing::info_span!("session", session.id = "s-2");
        let _s = session.enter();
        let agent = tracing::info_span!("agent", gen_ai.agent.name = "planner");
        let _a = agent.enter();
        ask_gpt4o("plan");
        // More input read from the cache than sent: rejected, not charged.
        tracing::info_span!(
            "contradictory",
            gen_ai.request.model = "gpt-4o",
            gen_ai.usage.input_tokens = 10,
            gen_ai.usage.cache_read.input_tokens = 20,
            gen_ai.usage.output_tokens = 1,
        )
        .in_scope(|| {});
    });
    for name in ["agent", "session"] {
        let aggregate = span(&spans, name);
        assert_eq!(f64_of(one(aggregate, otel::TOTAL_COST_USD)), 0.0035);
        assert_eq!(i64_of(one(aggregate, otel::LLM_CALLS)), 1);
        assert_eq!(i64_of(one(aggregate, otel::REJECTED_CALLS)), 1, "{name}");
    }
    assert_eq!(
        one(span(&spans, "contradictory"), otel::REJECTED),
        Value::Bool(true)
    );
}

#[test]
fn calls_carry_their_cost_with_tracing_opentelemetry_inside() {
    let spans = export_spans(Order::OtelInside, CostLayer::builder(), session);
    assert_call_attributes(&spans);
    assert_no_cost_on_aggregates(&spans);
}

#[test]
fn a_cache_hit_carries_its_saving_only_when_its_model_has_a_price() {
    for order in [Order::CostInside, Order::OtelInside] {
        let spans = export_spans(order, CostLayer::builder(), || {
            for (name, model) in [("priced_hit", "gpt-4o"), ("unpriced_hit", "acme-llm-9000")] {
                tracing::info_span!(
                    "cached",
                    otel.name = name,
                    gen_ai.request.model = model,
                    gen_ai.usage.input_tokens = 1_000,
                    gen_ai.usage.output_tokens = 100,
                    llm.cache.hit = true,
                )
                .in_scope(|| {});
            }
        });
        let priced = span(&spans, "priced_hit");
        assert_eq!(f64_of(one(priced, otel::COST_AMOUNT)), 0.0, "{order:?}");
        assert_eq!(
            f64_of(one(priced, otel::CACHE_HIT_SAVINGS)),
            0.0035,
            "{order:?}"
        );
        // Unknown, so absent: never a saving of zero.
        let unpriced = span(&spans, "unpriced_hit");
        assert_eq!(f64_of(one(unpriced, otel::COST_AMOUNT)), 0.0, "{order:?}");
        assert!(
            values(unpriced, otel::CACHE_HIT_SAVINGS).is_empty(),
            "{order:?}"
        );
    }
}

/// Calls of `model` with 1 000 input and 100 output tokens, each named as given (`otel.name`)
/// and recording the cost its provider reported, if any, after the tokens (as a gateway's
/// header is read after the body).
fn calls_reporting_their_cost(model: &str, calls: &[(&str, Option<&dyn tracing::Value>)]) {
    for (name, reported) in calls {
        let call = tracing::info_span!(
            "chat",
            otel.name = name,
            gen_ai.request.model = model,
            gen_ai.usage.input_tokens = 1_000,
            gen_ai.usage.output_tokens = 100,
            cost.reported_cost_usd = tracing::field::Empty,
        );
        if let Some(reported) = reported {
            call.record("cost.reported_cost_usd", *reported);
        }
        call.in_scope(|| {});
    }
}

/// The last value of attribute `key` on `span`, a number.
fn last_f64(span: &SpanData, key: &str) -> Option<f64> {
    values(span, key).last().cloned().map(f64_of)
}

#[test]
fn a_call_charged_its_reported_cost_says_the_provider_is_its_source() {
    for order in [Order::CostInside, Order::OtelInside] {
        let builder = CostLayer::builder().charge_reported_cost_when_unpriced(true);
        let spans = export_spans(order, builder, || {
            calls_reporting_their_cost(
                "acme-llm-9000",
                &[("reported", Some(&"0.0042")), ("unreported", None)],
            );
        });
        let reported = span(&spans, "reported");
        assert_eq!(
            last_f64(reported, otel::COST_AMOUNT),
            Some(0.0042),
            "{order:?}"
        );
        assert_eq!(
            values(reported, otel::COST_SOURCE).last(),
            Some(&Value::from("provider")),
            "{order:?}"
        );
        assert_eq!(
            last_f64(reported, otel::REPORTED_COST_USD),
            Some(0.0042),
            "{order:?}"
        );
        // With the cost layer inside, set once at the close; the other way, its attributes as
        // it was before its reported cost came (unpriced) stay, the later ones after them.
        if matches!(order, Order::CostInside) {
            assert!(values(reported, otel::UNPRICED).is_empty());
        }
        let unreported = span(&spans, "unreported");
        assert_eq!(
            one(unreported, otel::UNPRICED),
            Value::Bool(true),
            "{order:?}"
        );
        assert!(
            values(unreported, otel::COST_AMOUNT).is_empty(),
            "{order:?}"
        );
    }
}

#[test]
fn the_cost_a_provider_reported_is_exported_as_a_number_beside_the_tables() {
    for order in [Order::CostInside, Order::OtelInside] {
        let spans = export_spans(order, CostLayer::builder(), || {
            calls_reporting_their_cost(
                "gpt-4o",
                &[
                    ("as_text", Some(&"0.004375")),
                    ("as_float", Some(&0.0035_f64)),
                    ("none", None),
                ],
            );
        });
        for (name, figure) in [("as_text", 0.004375), ("as_float", 0.0035)] {
            let call = span(&spans, name);
            assert_eq!(
                last_f64(call, otel::REPORTED_COST_USD),
                Some(figure),
                "{name} {order:?}"
            );
            // Beside the table's own, which is what the call is charged.
            assert_eq!(
                last_f64(call, otel::COST_AMOUNT),
                Some(0.0035),
                "{name} {order:?}"
            );
        }
        assert!(
            values(span(&spans, "none"), otel::REPORTED_COST_USD).is_empty(),
            "{order:?}"
        );
    }
}

#[test]
fn without_the_option_no_attribute_is_added() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let (cost, _ledger) = CostLayer::builder().build();
    let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer("test"));
    tracing::subscriber::with_default(
        tracing_subscriber::registry().with(cost).with(otel),
        session,
    );
    let spans = exporter
        .get_finished_spans()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(values(span(&spans, "chat gpt-4o"), otel::COST_AMOUNT).is_empty());
    assert!(values(span(&spans, "agent"), otel::TOTAL_COST_USD).is_empty());
}

#[test]
fn budget_alerts_reach_the_exported_spans_as_events() {
    for order in [Order::CostInside, Order::OtelInside] {
        let config = BudgetConfig {
            budgets: vec![Budget::alert(
                "session",
                BudgetScope::Session,
                Window::Lifetime,
                cost_layer::cost_core::Money::from_decimal("0.005")
                    .unwrap_or_else(|e| panic!("{e}")),
                &DEFAULT_THRESHOLDS,
            )],
            ..BudgetConfig::default()
        };
        let book = BudgetBook::with_clock(config, Arc::new(ManualClock::new(1_764_072_000)))
            .unwrap_or_else(|e| panic!("{e}"));
        let spans = export_spans(order, CostLayer::builder().budgets(book), || {
            let session = tracing::info_span!("session", session.id = "alerted");
            let _s = session.enter();
            ask_gpt4o("one"); // $0.0035 of $0.005: 50 % crossed
        });
        let session = span(&spans, "session");
        let alert = session
            .events
            .iter()
            .find(|e| {
                e.attributes
                    .iter()
                    .any(|kv| kv.key.as_str() == "budget" && kv.value == Value::from("session"))
            })
            .unwrap_or_else(|| panic!("{order:?}: no alert event in {:?}", session.events));
        let attribute = |key: &str| {
            alert
                .attributes
                .iter()
                .find(|kv| kv.key.as_str() == key)
                .map(|kv| kv.value.clone())
        };
        assert_eq!(attribute("threshold"), Some(Value::F64(0.5)), "{order:?}");
        assert_eq!(
            attribute("spent_usd"),
            Some(Value::F64(0.0035)),
            "{order:?}"
        );
        assert_eq!(attribute("limit_usd"), Some(Value::F64(0.005)), "{order:?}");
    }
}

/// Runs `session` with the OpenTelemetry metrics of the layer; returns what was exported.
fn export_metrics(options: MetricOptions) -> Vec<ResourceMetrics> {
    export_metrics_of(options, session)
}

/// Runs `work` with the OpenTelemetry metrics of the layer, under a request span of user
/// `alice`; returns what was exported.
fn export_metrics_of(options: MetricOptions, work: impl FnOnce()) -> Vec<ResourceMetrics> {
    let exporter = InMemoryMetricExporter::default();
    let provider = SdkMeterProvider::builder()
        .with_periodic_exporter(exporter.clone())
        .build();
    let meter = opentelemetry::metrics::MeterProvider::meter(&provider, "test");
    let (cost, ledger) = CostLayer::builder()
        .raw_user_ids()
        .otel_metrics(&meter, options)
        .build();
    ledger.observe_diagnostics(&meter);
    tracing::subscriber::with_default(tracing_subscriber::registry().with(cost), || {
        let user = tracing::info_span!("request", cost.user_id = "alice");
        let _u = user.enter();
        work();
    });
    provider.force_flush().unwrap_or_else(|e| panic!("{e}"));
    exporter
        .get_finished_metrics()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn metric<'a>(
    exported: &'a [ResourceMetrics],
    name: &str,
) -> &'a opentelemetry_sdk::metrics::data::Metric {
    exported
        .iter()
        .rev()
        .flat_map(|r| r.scope_metrics())
        .flat_map(|s| s.metrics())
        .find(|m| m.name() == name)
        .unwrap_or_else(|| panic!("no metric {name}"))
}

fn attribute<'a>(attributes: impl Iterator<Item = &'a KeyValue>, key: &str) -> Option<String> {
    attributes
        .into_iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

#[test]
fn token_usage_histogram_follows_the_genai_conventions() {
    let exported = export_metrics(MetricOptions::default());
    let usage = metric(&exported, "gen_ai.client.token.usage");
    assert_eq!(usage.unit(), "{token}");
    let AggregatedMetrics::U64(MetricData::Histogram(histogram)) = usage.data() else {
        panic!("not a u64 histogram: {:?}", usage.data());
    };
    type Point = (Option<String>, Option<String>, Option<String>, u64, u64);
    let mut points: Vec<Point> = histogram
        .data_points()
        .map(|p| {
            assert_eq!(p.bounds().collect::<Vec<_>>(), TOKEN_USAGE_BUCKETS.to_vec());
            (
                attribute(p.attributes(), "gen_ai.request.model"),
                attribute(p.attributes(), "gen_ai.token.type"),
                attribute(p.attributes(), "gen_ai.operation.name"),
                p.count(),
                p.sum(),
            )
        })
        .collect();
    points.sort();
    let some = |s: &str| Some(s.to_owned());
    assert_eq!(
        points,
        vec![
            (some("acme-llm-9000"), some("input"), None, 1, 10),
            (some("acme-llm-9000"), some("output"), None, 1, 10),
            // The macro's call names its operation; the hand-made spans do not.
            (some("gpt-4o"), some("input"), None, 1, 4_000),
            (some("gpt-4o"), some("input"), some("chat"), 1, 1_000),
            (some("gpt-4o"), some("output"), None, 1, 1_000),
            (some("gpt-4o"), some("output"), some("chat"), 1, 100),
            (some("gpt-4o-mini"), some("input"), None, 1, 2_000),
            (some("gpt-4o-mini"), some("output"), None, 1, 500),
        ]
    );
}

#[test]
fn cost_counter_is_in_usd_by_model_agent_and_feature_and_skips_unpriced_calls() {
    let exported = export_metrics(MetricOptions::default());
    let cost = metric(&exported, "llm_cost.cost");
    assert_eq!(cost.unit(), "USD");
    let AggregatedMetrics::F64(MetricData::Sum(sum)) = cost.data() else {
        panic!("not an f64 sum: {:?}", cost.data());
    };
    assert!(sum.is_monotonic());
    let mut points: Vec<(String, f64)> = sum
        .data_points()
        .map(|p| {
            assert_eq!(
                attribute(p.attributes(), "cost.feature").as_deref(),
                Some("support")
            );
            assert_eq!(
                attribute(p.attributes(), "gen_ai.agent.name").as_deref(),
                Some("planner")
            );
            // Unbounded keys are off unless asked for.
            assert_eq!(attribute(p.attributes(), "session.id"), None);
            assert_eq!(attribute(p.attributes(), "cost.user_id"), None);
            (
                attribute(p.attributes(), "gen_ai.request.model").unwrap_or_default(),
                p.value(),
            )
        })
        .collect();
    points.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        points,
        vec![
            ("gpt-4o".to_owned(), 0.0235),
            ("gpt-4o-mini".to_owned(), 0.0006)
        ]
    );
    let unpriced = metric(&exported, "llm_cost.unpriced_calls");
    let AggregatedMetrics::U64(MetricData::Sum(unpriced)) = unpriced.data() else {
        panic!("not a u64 sum");
    };
    let counts: Vec<(Option<String>, u64)> = unpriced
        .data_points()
        .map(|p| (attribute(p.attributes(), "gen_ai.request.model"), p.value()))
        .collect();
    assert_eq!(counts, vec![(Some("acme-llm-9000".to_owned()), 1)]);
}

#[test]
fn rejected_calls_are_counted_by_model_apart_from_unpriced_ones() {
    let exported = export_metrics_of(MetricOptions::default(), || {
        let agent = tracing::info_span!("agent", gen_ai.agent.name = "planner");
        let _a = agent.enter();
        ask_gpt4o("priced");
        for (model, input) in [
            ("gpt-4o", -1_i64),
            ("gpt-4o-mini", -5),
            ("acme-llm-9000", 10),
        ] {
            tracing::info_span!(
                "chat",
                gen_ai.request.model = model,
                gen_ai.usage.input_tokens = input,
                gen_ai.usage.output_tokens = 10,
            )
            .in_scope(|| {});
        }
    });
    let counts = |name: &str| {
        let AggregatedMetrics::U64(MetricData::Sum(sum)) = metric(&exported, name).data() else {
            panic!("{name} is not a u64 sum");
        };
        assert!(sum.is_monotonic(), "{name}");
        let mut counts: Vec<(String, Option<String>, u64)> = sum
            .data_points()
            .map(|p| {
                (
                    attribute(p.attributes(), "gen_ai.request.model").unwrap_or_default(),
                    attribute(p.attributes(), "gen_ai.agent.name"),
                    p.value(),
                )
            })
            .collect();
        counts.sort();
        counts
    };
    let planner = Some("planner".to_owned());
    assert_eq!(
        counts("llm_cost.rejected_calls"),
        vec![
            ("gpt-4o".to_owned(), planner.clone(), 1),
            ("gpt-4o-mini".to_owned(), planner.clone(), 1)
        ]
    );
    assert_eq!(
        counts("llm_cost.unpriced_calls"),
        vec![("acme-llm-9000".to_owned(), planner, 1)]
    );
    assert_eq!(
        metric(&exported, "llm_cost.rejected_calls").unit(),
        "{call}"
    );
}

#[test]
fn the_ledgers_diagnostics_are_an_observable_counter_by_kind() {
    let exported = export_metrics(MetricOptions::default());
    let diagnostics = metric(&exported, "llm_cost.diagnostics");
    assert_eq!(diagnostics.unit(), "{event}");
    let AggregatedMetrics::U64(MetricData::Sum(sum)) = diagnostics.data() else {
        panic!("not a u64 sum: {:?}", diagnostics.data());
    };
    assert!(sum.is_monotonic());
    let mut counts: Vec<(String, u64)> = sum
        .data_points()
        .map(|p| {
            (
                attribute(p.attributes(), "kind").unwrap_or_default(),
                p.value(),
            )
        })
        .collect();
    counts.sort();
    let kinds: Vec<&str> = counts.iter().map(|(kind, _)| kind.as_str()).collect();
    let mut expected: Vec<&str> = cost_layer::Diagnostics::default()
        .counts()
        .iter()
        .map(|(kind, _)| *kind)
        .collect();
    expected.sort();
    assert_eq!(kinds, expected);
    // The session has one call whose model has no price.
    let count = |kind: &str| counts.iter().find(|(k, _)| k == kind).map(|(_, v)| *v);
    assert_eq!(count("unpriced_calls"), Some(1));
    assert_eq!(count("bad_field_values"), Some(0));
}

#[test]
fn session_and_user_attributes_are_explicit() {
    let exported = export_metrics(MetricOptions {
        session: true,
        user: true,
        org: false,
    });
    let cost = metric(&exported, "llm_cost.cost");
    let AggregatedMetrics::F64(MetricData::Sum(sum)) = cost.data() else {
        panic!("not an f64 sum");
    };
    for point in sum.data_points() {
        assert_eq!(
            attribute(point.attributes(), "session.id").as_deref(),
            Some("s-1")
        );
        assert_eq!(
            attribute(point.attributes(), "cost.user_id").as_deref(),
            Some("alice")
        );
    }
}

#[test]
fn without_tracing_opentelemetry_the_option_changes_nothing() {
    let (cost, ledger) = CostLayer::builder().otel_span_attributes(true).build();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(cost), session);
    let totals = ledger.session("s-1").unwrap_or_default();
    assert_eq!(
        totals.total_usd(),
        cost_layer::cost_core::Money::from_decimal("0.0241").unwrap_or_else(|e| panic!("{e}"))
    );
    assert_eq!((totals.llm_calls, totals.unpriced_calls), (4, 1));
}

/// A stream: running usage, then the final one ($0.0025 + $0.001).
#[llm_call(model = "gpt-4o")]
fn streamed() {
    cost_layer::record_usage(&Usage::new(500, 10));
    cost_layer::record_usage(&Usage::new(1_000, 100));
}

#[test]
fn a_streamed_call_carries_its_final_cost_once_with_the_cost_layer_inside() {
    let spans = export_spans(Order::CostInside, CostLayer::builder(), || {
        streamed();
        streamed();
    });
    let streams: Vec<&SpanData> = spans.iter().filter(|s| s.name == "chat gpt-4o").collect();
    assert_eq!(streams.len(), 2);
    // Once the first call's close has shown that `tracing-opentelemetry` ends spans after this
    // layer, a call's attributes wait for its close: one value, the final one (an attribute
    // set again would be repeated, not replaced, and a backend may read the first).
    assert_eq!(f64_of(one(streams[1], otel::COST_AMOUNT)), 0.0035);
    // Before that, the first call's are set as its usage arrives: its last value is final.
    let first = values(streams[0], otel::COST_AMOUNT);
    assert_eq!(first.last().cloned().map(f64_of), Some(0.0035));

    // With `tracing-opentelemetry` inside, a span ends before this layer sees it close: the
    // attributes are set as the usage arrives, every time, the last one final.
    let spans = export_spans(Order::OtelInside, CostLayer::builder(), || {
        streamed();
        streamed();
    });
    for stream in spans.iter().filter(|s| s.name == "chat gpt-4o") {
        let amounts = values(stream, otel::COST_AMOUNT);
        assert_eq!(
            amounts.last().cloned().map(f64_of),
            Some(0.0035),
            "{amounts:?}"
        );
    }
}

#[test]
fn a_call_recorded_again_unchanged_carries_its_cost_once() {
    for order in [Order::CostInside, Order::OtelInside] {
        let spans = export_spans(order, CostLayer::builder(), || {
            let call = tracing::info_span!(
                "chat",
                gen_ai.request.model = "gpt-4o",
                gen_ai.response.id = Empty,
                gen_ai.usage.input_tokens = Empty,
                gen_ai.usage.output_tokens = Empty,
            );
            call.record("gen_ai.usage.input_tokens", 1_000);
            call.record("gen_ai.usage.output_tokens", 100);
            // Neither changes the price: the attributes set as the usage arrived stand.
            call.record("gen_ai.usage.output_tokens", 100);
            call.record("gen_ai.response.id", "resp-1");
        });
        assert_eq!(
            f64_of(one(span(&spans, "chat"), otel::COST_AMOUNT)),
            0.0035,
            "{order:?}"
        );
    }
}

#[test]
fn aggregate_usage_on_a_workflow_span_is_not_exported_as_its_cost() {
    for order in [Order::CostInside, Order::OtelInside] {
        let spans = export_spans(order, CostLayer::builder(), || {
            // A Vercel-AI-SDK-style workflow span records the usage of the calls under it
            // once they are done.
            let workflow = tracing::info_span!(
                "ai.generateText",
                gen_ai.request.model = "gpt-4o",
                gen_ai.usage.input_tokens = Empty,
                gen_ai.usage.output_tokens = Empty,
            );
            workflow.in_scope(|| {
                ask_gpt4o("first");
                ask_gpt4o("second");
            });
            workflow.record("gen_ai.usage.input_tokens", 2_000);
            workflow.record("gen_ai.usage.output_tokens", 200);
        });
        let calls: Vec<&SpanData> = spans.iter().filter(|s| s.name == "chat gpt-4o").collect();
        assert_eq!(calls.len(), 2, "{order:?}");
        for call in calls {
            assert_eq!(f64_of(one(call, otel::COST_AMOUNT)), 0.0035, "{order:?}");
        }
        let workflow = span(&spans, "ai.generateText");
        assert!(
            values(workflow, otel::COST_AMOUNT).is_empty(),
            "{order:?}: a backend summing the trace would count the calls twice"
        );
    }
}

/// A workflow span of `model` with usage under older names (the layer adds the GenAI token
/// counts), recorded before the two calls under it run.
fn workflow_with_early_usage(model: &str, cache_hit: bool) {
    let workflow = tracing::info_span!(
        "ai.generateText",
        llm.model = model,
        llm.tokens.input = Empty,
        llm.tokens.output = Empty,
        llm.cache.hit = cache_hit,
    );
    workflow.record("llm.tokens.input", 2_000);
    workflow.record("llm.tokens.output", 200);
    workflow.in_scope(|| {
        ask_gpt4o("first");
        ask_gpt4o("second");
    });
}

#[test]
fn every_figure_an_aggregate_span_was_given_early_is_withdrawn_not_only_its_amount() {
    for order in [Order::CostInside, Order::OtelInside] {
        let last = |spans: &[SpanData], key: &str| {
            values(span(spans, "ai.generateText"), key).last().cloned()
        };
        // A priced model: its cost set as a call's would be, before the calls under it show it
        // is their aggregate, then set again to 0 (a backend reading the last value would
        // count the calls twice).
        let spans = export_spans(order, CostLayer::builder(), || {
            workflow_with_early_usage("gpt-4o", false);
        });
        let amounts = values(span(&spans, "ai.generateText"), otel::COST_AMOUNT);
        assert_eq!(
            amounts.first().cloned().map(f64_of),
            Some(0.007),
            "{order:?}: set early"
        );
        assert_eq!(
            last(&spans, otel::COST_AMOUNT).map(f64_of),
            Some(0.0),
            "{order:?}"
        );
        // Calls under it: each keeps its own figures.
        for call in spans.iter().filter(|s| s.name == "chat gpt-4o") {
            assert_eq!(f64_of(one(call, otel::COST_AMOUNT)), 0.0035, "{order:?}");
        }
        // An unknown model: flagged unpriced, with the token counts the layer added.
        let spans = export_spans(order, CostLayer::builder(), || {
            workflow_with_early_usage("acme-llm-9000", false);
        });
        assert_eq!(
            values(span(&spans, "ai.generateText"), otel::UNPRICED).first(),
            Some(&Value::Bool(true)),
            "{order:?}: set early"
        );
        assert_eq!(
            last(&spans, otel::UNPRICED),
            Some(Value::Bool(false)),
            "{order:?}"
        );
        for tokens in ["gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"] {
            assert_eq!(
                last(&spans, tokens).map(i64_of),
                Some(0),
                "{order:?} {tokens}"
            );
        }
        // An application cache hit: its saving set early, then withdrawn.
        let spans = export_spans(order, CostLayer::builder(), || {
            workflow_with_early_usage("gpt-4o", true);
        });
        assert_eq!(
            values(span(&spans, "ai.generateText"), otel::CACHE_HIT_SAVINGS)
                .first()
                .cloned()
                .map(f64_of),
            Some(0.007),
            "{order:?}: set early"
        );
        assert_eq!(
            last(&spans, otel::CACHE_HIT_SAVINGS).map(f64_of),
            Some(0.0),
            "{order:?}"
        );
        assert_eq!(
            last(&spans, otel::COST_AMOUNT).map(f64_of),
            Some(0.0),
            "{order:?}"
        );
    }
}

#[test]
fn a_call_whose_usage_stays_incomplete_teaches_the_order_at_its_close() {
    let spans = export_spans(Order::CostInside, CostLayer::builder(), || {
        // Declares a cache-read count it never records: its attributes wait for its close,
        // which shows that `tracing-opentelemetry` ends spans after this layer.
        let partial = tracing::info_span!(
            "partial",
            gen_ai.request.model = "gpt-4o",
            gen_ai.usage.input_tokens = Empty,
            gen_ai.usage.cache_read.input_tokens = Empty,
            gen_ai.usage.output_tokens = Empty,
        );
        partial.record("gen_ai.usage.input_tokens", 1_000);
        partial.record("gen_ai.usage.output_tokens", 100);
        drop(partial);
        streamed();
    });
    assert_eq!(
        f64_of(one(span(&spans, "partial"), otel::COST_AMOUNT)),
        0.0035
    );
    // So the stream after it carries one value, its final one, not each running total.
    assert_eq!(
        f64_of(one(span(&spans, "chat gpt-4o"), otel::COST_AMOUNT)),
        0.0035
    );
}

#[test]
fn token_counts_read_under_other_names_are_added_under_the_genai_names_when_not_zero() {
    for order in [Order::CostInside, Order::OtelInside] {
        let builder = CostLayer::builder().field(
            "anthropic.cache_read_input_tokens",
            cost_layer::FieldRole::Tokens(cost_layer::cost_core::TokenKind::CacheRead),
        );
        let spans = export_spans(order, builder, || {
            tracing::info_span!(
                "claude",
                llm.model = "claude-sonnet-4-5",
                llm.tokens.input = 1_000,
                llm.tokens.output = 100,
                anthropic.cache_read_input_tokens = 600,
                cost.usage.cache_write_1h_tokens = 200,
                gen_ai.usage.reasoning.output_tokens = 0,
            )
            .in_scope(|| {});
            tracing::info_span!(
                "plain",
                llm.model = "gpt-4o",
                llm.tokens.input = 0,
                llm.tokens.output = 100,
            )
            .in_scope(|| {});
        });
        // Input and output always; the other counts only when above zero.
        let plain = span(&spans, "plain");
        assert_eq!(i64_of(one(plain, "gen_ai.usage.input_tokens")), 0);
        for name in [
            "gen_ai.usage.cache_read.input_tokens",
            "gen_ai.usage.cache_creation.input_tokens",
            "gen_ai.usage.reasoning.output_tokens",
        ] {
            assert!(values(plain, name).is_empty(), "{name} {order:?}");
        }
        let call = span(&spans, "claude");
        for (name, expected) in [
            ("gen_ai.usage.input_tokens", 1_000),
            ("gen_ai.usage.output_tokens", 100),
            ("gen_ai.usage.cache_read.input_tokens", 600),
            // The conventions' one cache-creation count holds both write durations.
            ("gen_ai.usage.cache_creation.input_tokens", 200),
            // Exported as the span's own field, zero included; never added twice.
            ("gen_ai.usage.reasoning.output_tokens", 0),
        ] {
            assert_eq!(i64_of(one(call, name)), expected, "{name} {order:?}");
        }
    }
}

#[test]
fn a_call_that_searched_says_how_many_searches_its_cost_holds() {
    for order in [Order::CostInside, Order::OtelInside] {
        let spans = export_spans(order, CostLayer::builder(), || {
            for (name, searches) in [("searched", 3_u64), ("no_search", 0)] {
                tracing::info_span!(
                    "claude",
                    otel.name = name,
                    gen_ai.request.model = "claude-sonnet-4-5",
                    gen_ai.usage.input_tokens = 1_000,
                    gen_ai.usage.output_tokens = 100,
                    cost.usage.web_search_requests = searches,
                )
                .in_scope(|| {});
            }
        });
        // 1 000 × 3e-6 + 100 × 15e-6 + 3 × $0.01.
        let searched = span(&spans, "searched");
        assert_eq!(
            f64_of(one(searched, otel::COST_AMOUNT)),
            0.0345,
            "{order:?}"
        );
        assert_eq!(
            i64_of(one(searched, otel::WEB_SEARCH_REQUESTS)),
            3,
            "{order:?}"
        );
        let plain = span(&spans, "no_search");
        assert!(
            values(plain, otel::WEB_SEARCH_REQUESTS).is_empty(),
            "{order:?}"
        );
    }
}

#[test]
fn a_model_or_tier_recorded_after_the_usage_reprices_the_exported_call() {
    for order in [Order::CostInside, Order::OtelInside] {
        let spans = export_spans(order, CostLayer::builder(), || {
            let fields = |name: &'static str| {
                tracing::info_span!(
                    "chat",
                    otel.name = name,
                    gen_ai.request.model = "gpt-4o",
                    gen_ai.response.model = tracing::field::Empty,
                    gen_ai.openai.response.service_tier = tracing::field::Empty,
                    gen_ai.usage.input_tokens = tracing::field::Empty,
                    gen_ai.usage.output_tokens = tracing::field::Empty,
                )
            };
            let answered_by_mini = fields("answered_by_mini");
            answered_by_mini.record("gen_ai.usage.input_tokens", 1_000);
            answered_by_mini.record("gen_ai.usage.output_tokens", 100);
            answered_by_mini.record("gen_ai.response.model", "gpt-4o-mini-2024-07-18");
            drop(answered_by_mini);
            let batched = fields("batched");
            batched.record("gen_ai.usage.input_tokens", 1_000);
            batched.record("gen_ai.usage.output_tokens", 100);
            batched.record("gen_ai.openai.response.service_tier", "batch");
            drop(batched);
        });
        // What the call is priced at once closed (the last value is final when the attribute
        // repeats): gpt-4o-mini's 1 000 × 0.15e-6 + 100 × 0.6e-6, never the requested gpt-4o's
        // $0.0035; gpt-4o's batch 1 000 × 1.25e-6 + 100 × 5e-6, never its standard $0.0035.
        for (name, amount) in [("answered_by_mini", 0.00021), ("batched", 0.00175)] {
            let amounts = values(span(&spans, name), otel::COST_AMOUNT);
            assert_eq!(
                amounts.last().cloned().map(f64_of),
                Some(amount),
                "{name} {order:?}: {amounts:?}"
            );
        }
    }
}

#[test]
fn a_call_that_searched_files_says_how_many_calls_its_cost_holds() {
    for order in [Order::CostInside, Order::OtelInside] {
        let spans = export_spans(order, CostLayer::builder(), || {
            tracing::info_span!(
                "rag",
                gen_ai.request.model = "gpt-4.1-mini",
                gen_ai.usage.input_tokens = 12_000,
                gen_ai.usage.output_tokens = 300,
                cost.usage.file_search_calls = 2,
            )
            .in_scope(|| {});
        });
        let rag = span(&spans, "rag");
        // 12 000 × 0.4e-6 + 300 × 1.6e-6 + 2 × $0.0025.
        assert_eq!(f64_of(one(rag, otel::COST_AMOUNT)), 0.01028, "{order:?}");
        assert_eq!(i64_of(one(rag, otel::FILE_SEARCH_CALLS)), 2, "{order:?}");
    }
}

#[test]
fn a_call_whose_hosted_tools_have_no_price_says_so_and_how_many_uses_it_had() {
    for order in [Order::CostInside, Order::OtelInside] {
        let spans = export_spans(order, CostLayer::builder(), || {
            tracing::info_span!(
                "draw",
                gen_ai.request.model = "gpt-5",
                gen_ai.usage.input_tokens = 2_000,
                gen_ai.usage.output_tokens = 500,
                cost.usage.image_generation_calls = 2,
                cost.usage.code_interpreter_sessions = 1,
            )
            .in_scope(|| {});
        });
        let draw = span(&spans, "draw");
        // The embedded table prices neither use: no cost at all rather than the tokens' alone.
        assert_eq!(one(draw, otel::UNPRICED), Value::Bool(true), "{order:?}");
        assert!(values(draw, otel::COST_AMOUNT).is_empty(), "{order:?}");
        assert_eq!(
            i64_of(one(draw, otel::IMAGE_GENERATION_CALLS)),
            2,
            "{order:?}"
        );
        assert_eq!(
            i64_of(one(draw, otel::CODE_INTERPRETER_SESSIONS)),
            1,
            "{order:?}"
        );
    }
}

/// An agent run named after its function.
#[cost_layer::agent]
fn planner() {
    answer_once();
}

/// An agent run with a literal name, and one whose name is computed (evaluated once).
#[cost_layer::agent(name = "researcher")]
fn research() {
    answer_once();
}

#[cost_layer::agent(name = format!("worker-{}", next_worker()))]
fn worker() {
    answer_once();
}

fn next_worker() -> u32 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(7);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

#[llm_call(model = "gpt-4o")]
fn answer_once() -> Usage {
    Usage::new(1_000, 100)
}

#[test]
fn agent_runs_are_exported_as_invoke_agent_spans_named_after_the_agent() {
    for order in [Order::CostInside, Order::OtelInside] {
        let spans = export_spans(order, CostLayer::builder(), || {
            tracing::info_span!("session", session.id = "s").in_scope(|| {
                planner();
                research();
                worker();
            });
        });
        let mut agents: Vec<(&str, String)> = spans
            .iter()
            .filter(|s| s.name.starts_with("invoke_agent"))
            .map(|s| {
                let agent = match one(s, "gen_ai.agent.name") {
                    Value::String(name) => name.to_string(),
                    other => panic!("not a string: {other:?}"),
                };
                (&*s.name, agent)
            })
            .collect();
        agents.sort();
        // The computed name is evaluated once per run (twice would skip a number).
        let worker = if matches!(order, Order::CostInside) {
            7
        } else {
            8
        };
        assert_eq!(
            agents,
            [
                ("invoke_agent planner", "planner".to_owned()),
                ("invoke_agent researcher", "researcher".to_owned()),
                (
                    &*format!("invoke_agent worker-{worker}"),
                    format!("worker-{worker}")
                ),
            ],
            "{order:?}"
        );
        // `otel.name` names the span; it is not exported as an attribute.
        for (name, _) in &agents {
            assert!(values(span(&spans, name), "otel.name").is_empty(), "{name}");
        }
    }
}

/// A call whose model is computed (evaluated once: the span's field, its name and the budget
/// reservation read the same value).
#[llm_call(model = next_model(), max_output_tokens = 100)]
fn computed_model() -> Result<Usage, cost_layer::cost_core::budget::BudgetExceeded> {
    Ok(Usage::new(1_000, 100))
}

fn next_model() -> String {
    static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    match CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) {
        0 | 2 => "gpt-4o-mini".to_owned(),
        _ => "gpt-4o".to_owned(),
    }
}

#[llm_call(model = "text-embedding-3-small", operation = "embeddings")]
fn embed() -> Usage {
    Usage::new(1_000, 0)
}

#[llm_call(model = "gpt-4o", operation = String::from("text_completion"))]
fn computed_operation() -> Usage {
    Usage::new(1_000, 100)
}

/// No model at the call site: the response names it.
#[llm_call]
fn model_from_the_response() -> Usage {
    Usage::new(1_000, 100)
}

/// Named for OpenTelemetry by the call site's own `otel.name` field.
#[llm_call(model = "gpt-4o", fields(otel.name = "custom name"))]
fn named_for_otel() -> Usage {
    Usage::new(1_000, 100)
}

/// Named by the call site: that name, in both worlds.
#[llm_call(model = "gpt-4o", name = "triage")]
fn named() -> Usage {
    Usage::new(1_000, 100)
}

#[test]
fn llm_call_spans_are_named_as_the_genai_conventions_name_inference_spans() {
    for order in [Order::CostInside, Order::OtelInside] {
        let spans = export_spans(order, CostLayer::builder(), || {
            computed_model().unwrap_or_else(|e| panic!("{e}"));
            embed();
            computed_operation();
            model_from_the_response();
            named();
            named_for_otel();
        });
        let mut names: Vec<&str> = spans.iter().map(|s| &*s.name).collect();
        names.sort_unstable();
        // The first run's model is gpt-4o-mini, the second's gpt-4o: a second evaluation for
        // the name would have named the span after another model than its field's.
        let computed = if matches!(order, Order::CostInside) {
            "chat gpt-4o-mini"
        } else {
            "chat gpt-4o"
        };
        let mut expected = vec![
            computed,
            "chat",
            "embeddings text-embedding-3-small",
            "text_completion gpt-4o",
            "triage",
            "custom name",
        ];
        expected.sort_unstable();
        assert_eq!(names, expected, "{order:?}");
        let model = match one(span(&spans, computed), "gen_ai.request.model") {
            Value::String(model) => model.to_string(),
            other => panic!("not a string: {other:?}"),
        };
        assert_eq!(format!("chat {model}"), computed, "{order:?}");
        for span in &spans {
            assert_eq!(
                span.span_kind,
                opentelemetry::trace::SpanKind::Client,
                "{}",
                span.name
            );
            // `otel.name` and `otel.kind` shape the span; they are not exported as attributes.
            assert!(values(span, "otel.name").is_empty(), "{}", span.name);
            assert!(values(span, "otel.kind").is_empty(), "{}", span.name);
        }
    }
}
