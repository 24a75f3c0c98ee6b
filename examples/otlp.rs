//! Costs exported over OTLP/HTTP: spans with `gen_ai.usage.cost.*` attributes and the token and
//! cost metrics, to any OpenTelemetry backend (Langfuse, Grafana, Datadog, Honeycomb, a
//! collector).
//!
//! `cargo run --example otlp` sends to `OTEL_EXPORTER_OTLP_ENDPOINT` (default
//! `http://127.0.0.1:4318`, a local collector); `OTEL_EXPORTER_OTLP_HEADERS` adds headers
//! (authentication). Without a collector listening, the export fails, the example says so and
//! still prints the costs it computed. The README shows how to look at the result in Langfuse
//! and in Grafana.

use cost_layer::export::MetricOptions;
use cost_layer::{CostLayer, Ledger, TokenUsage, llm_call};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{MetricExporter, Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::prelude::*;

/// The default OTLP/HTTP endpoint: a collector on this machine.
const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:4318";

/// A canned chat completion (no network to any model provider).
#[derive(TokenUsage)]
struct Completion {
    #[usage(input)]
    prompt_tokens: u64,
    #[usage(output)]
    completion_tokens: u64,
    #[usage(model)]
    model: &'static str,
}

#[llm_call(model = "gpt-4o-mini", provider = "openai")]
fn classify(_ticket: &str) -> Completion {
    Completion {
        prompt_tokens: 1_200,
        completion_tokens: 40,
        model: "gpt-4o-mini-2024-07-18",
    }
}

#[llm_call(model = "claude-sonnet-4-5", provider = "anthropic")]
fn draft_reply(_ticket: &str) -> Completion {
    Completion {
        prompt_tokens: 6_000,
        completion_tokens: 900,
        model: "claude-sonnet-4-5",
    }
}

/// What one run exported.
pub(crate) struct Exported {
    pub(crate) ledger: Ledger,
    /// Why the spans could not be exported, if they could not.
    pub(crate) traces_error: Option<String>,
    /// Why the metrics could not be exported (Langfuse, say, takes traces only).
    pub(crate) metrics_error: Option<String>,
}

/// Runs a support session and exports its spans and metrics to the OTLP/HTTP endpoint
/// `endpoint` (`/v1/traces` and `/v1/metrics` under it).
pub(crate) fn run(endpoint: &str) -> Result<Exported, Box<dyn std::error::Error>> {
    let resource = Resource::builder()
        .with_service_name("llm-cost-otlp-example")
        .build();
    let spans = SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{endpoint}/v1/traces"))
        .build()?;
    let tracer_provider = SdkTracerProvider::builder()
        .with_resource(resource.clone())
        .with_batch_exporter(spans)
        .build();
    let metrics = MetricExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{endpoint}/v1/metrics"))
        .build()?;
    let meter_provider = SdkMeterProvider::builder()
        .with_resource(resource)
        .with_periodic_exporter(metrics)
        .build();

    let (cost, ledger) = CostLayer::builder()
        .otel_span_attributes(true)
        .otel_metrics(&meter_provider.meter("llm-cost"), MetricOptions::default())
        .build();
    // The cost layer inside `tracing-opentelemetry`: agent and session totals reach their spans.
    let subscriber = tracing_subscriber::registry().with(cost).with(
        tracing_opentelemetry::layer().with_tracer(tracer_provider.tracer("llm-cost-example")),
    );
    tracing::subscriber::with_default(subscriber, || {
        let session = tracing::info_span!(
            "support session",
            session.id = "ticket-4711",
            cost.feature = "support"
        );
        let _session = session.enter();
        {
            let triage = tracing::info_span!("triage", gen_ai.agent.name = "triage");
            let _triage = triage.enter();
            classify("My invoice is wrong");
        }
        let writer = tracing::info_span!("writer", gen_ai.agent.name = "writer");
        let _writer = writer.enter();
        draft_reply("My invoice is wrong");
        draft_reply("My invoice is wrong (second draft)");
    });

    Ok(Exported {
        ledger,
        traces_error: tracer_provider.shutdown().err().map(|e| e.to_string()),
        metrics_error: meter_provider.shutdown().err().map(|e| e.to_string()),
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
        .unwrap_or_else(|_| DEFAULT_ENDPOINT.to_owned());
    let exported = run(endpoint.trim_end_matches('/'))?;
    let snapshot = exported.ledger.snapshot();
    println!("session ticket-4711: {}", snapshot.global);
    for (signal, error) in [
        ("spans", exported.traces_error),
        ("metrics", exported.metrics_error),
    ] {
        match error {
            None => println!("exported {signal} to {endpoint}"),
            Some(error) => println!(
                "could not export {signal} to {endpoint} ({error}); start a collector there or set OTEL_EXPORTER_OTLP_ENDPOINT"
            ),
        }
    }
    Ok(())
}
