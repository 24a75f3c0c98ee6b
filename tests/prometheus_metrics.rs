//! The layer's metrics through the `metrics` facade, served by `metrics-exporter-prometheus` on
//! loopback and scraped over HTTP.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use cost_layer::CostLayer;
use cost_layer::export::{MetricOptions, TOKEN_USAGE_BUCKETS};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use tracing::field::Empty;
use tracing_subscriber::prelude::*;

fn free_loopback_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap_or_else(|e| panic!("no free loopback port: {e}"))
}

/// `GET /metrics`, retried while the exporter's listener starts.
fn scrape(addr: SocketAddr) -> String {
    let mut last_error = None;
    for _ in 0..100 {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            Ok(mut stream) => {
                let request =
                    format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
                stream
                    .write_all(request.as_bytes())
                    .unwrap_or_else(|e| panic!("{e}"));
                let mut response = String::new();
                stream
                    .read_to_string(&mut response)
                    .unwrap_or_else(|e| panic!("{e}"));
                assert!(response.starts_with("HTTP/1.1 200"), "{response}");
                return response;
            }
            Err(e) => last_error = Some(e),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the exporter did not listen on {addr}: {last_error:?}");
}

fn call(model: &str, input: i64, output: i64) {
    let span = tracing::info_span!(
        "chat",
        gen_ai.operation.name = "chat",
        gen_ai.provider.name = "openai",
        gen_ai.request.model = model,
        gen_ai.usage.input_tokens = Empty,
        gen_ai.usage.output_tokens = Empty,
    );
    span.record("gen_ai.usage.input_tokens", input);
    span.record("gen_ai.usage.output_tokens", output);
}

/// The line of `metric` whose labels contain every one of `labels`, and its value.
fn value(text: &str, metric: &str, labels: &[&str]) -> f64 {
    let line = text
        .lines()
        .find(|line| {
            line.starts_with(&format!("{metric}{{")) && labels.iter().all(|l| line.contains(l))
        })
        .unwrap_or_else(|| panic!("no {metric} with {labels:?} in\n{text}"));
    line.rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no value in {line}"))
}

#[test]
fn prometheus_serves_token_usage_and_cost() {
    let addr = free_loopback_port();
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets_for_metric(
            Matcher::Full("gen_ai_client_token_usage".into()),
            &TOKEN_USAGE_BUCKETS,
        )
        .and_then(PrometheusBuilder::install)
        .unwrap_or_else(|e| panic!("{e}"));

    let (cost, ledger) = CostLayer::builder()
        .metrics(MetricOptions::default())
        .build();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(cost), || {
        let session = tracing::info_span!("s", session.id = "s-1", cost.feature = "search");
        let _s = session.enter();
        call("gpt-4o", 1_000, 100); // $0.0035
        call("gpt-4o", 3_000, 200); // $0.0095
        call("gpt-4o-mini", 2_000, 500); // $0.0006
        call("acme-llm-9000", 10, 10); // unpriced
        call("gpt-4o", -1, 10); // rejected
    });
    ledger.publish_diagnostics();

    let text = scrape(addr);
    let gpt4o_input = [
        "gen_ai_request_model=\"gpt-4o\"",
        "gen_ai_token_type=\"input\"",
        "gen_ai_operation_name=\"chat\"",
        "gen_ai_provider_name=\"openai\"",
    ];
    assert_eq!(
        value(&text, "gen_ai_client_token_usage_sum", &gpt4o_input),
        4_000.0
    );
    assert_eq!(
        value(&text, "gen_ai_client_token_usage_count", &gpt4o_input),
        2.0
    );
    // The GenAI bucket boundaries: 1 000 falls in `le="1024"`, 3 000 in `le="4096"`.
    let bucket = |le: &str| {
        let mut labels = gpt4o_input.to_vec();
        let le = format!("le=\"{le}\"");
        labels.push(&le);
        value(&text, "gen_ai_client_token_usage_bucket", &labels)
    };
    assert_eq!(bucket("256"), 0.0);
    assert_eq!(bucket("1024"), 1.0);
    assert_eq!(bucket("4096"), 2.0);
    assert_eq!(bucket("67108864"), 2.0);

    let cost = |model: &str| {
        value(
            &text,
            "llm_cost_cost",
            &[
                &format!("gen_ai_request_model=\"{model}\""),
                "cost_feature=\"search\"",
            ],
        )
    };
    assert_eq!(cost("gpt-4o"), 0.013);
    assert_eq!(cost("gpt-4o-mini"), 0.0006);
    assert!(
        !text.contains("llm_cost_cost{gen_ai_request_model=\"acme-llm-9000\""),
        "an unpriced call has no cost, not a zero one:\n{text}"
    );
    assert_eq!(
        value(
            &text,
            "llm_cost_unpriced_calls",
            &["gen_ai_request_model=\"acme-llm-9000\""]
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            "llm_cost_rejected_calls",
            &["gen_ai_request_model=\"gpt-4o\"", "cost_feature=\"search\""]
        ),
        1.0
    );
    assert!(
        !text.contains("llm_cost_rejected_calls{gen_ai_request_model=\"gpt-4o-mini\""),
        "only the rejected call's model counts one:\n{text}"
    );
    assert!(
        !text.contains("session_id"),
        "session ids are off by default"
    );
    // The ledger's diagnostics, every kind, zero or not.
    let diagnostic = |kind: &str| {
        value(
            &text,
            "llm_cost_diagnostics",
            &[&format!("kind=\"{kind}\"")],
        )
    };
    assert_eq!(diagnostic("unpriced_calls"), 1.0);
    assert_eq!(diagnostic("bad_field_values"), 1.0);
    assert_eq!(diagnostic("rejected_calls"), 1.0);
    assert_eq!(diagnostic("calls_hidden_by_filter"), 0.0);
}
