//! The examples run as tests: their figures are checked, not just printed.

#[allow(dead_code)]
#[path = "../examples/openai_chat.rs"]
mod openai_chat;

#[allow(dead_code)]
#[path = "../examples/anthropic_json.rs"]
mod anthropic_json;

#[allow(dead_code)]
#[path = "../examples/budget_guard.rs"]
mod budget_guard;

#[allow(dead_code)]
#[path = "../examples/otlp.rs"]
mod otlp;

#[allow(dead_code)]
#[path = "../examples/quickstart.rs"]
mod quickstart;

#[allow(dead_code)]
#[path = "../examples/openrouter_json.rs"]
mod openrouter_json;

use cost_core::Money;

fn usd(text: &str) -> Money {
    Money::from_decimal(text).unwrap_or_default()
}

#[test]
fn anthropic_json_prices_cache_writes_and_gemini_thoughts() {
    let ledger = anthropic_json::run();
    // Claude Sonnet 4.5: 50 × 3e-6 + 6 000 × 0.3e-6 + 2 000 × 3.75e-6 + 1 000 × 6e-6 + 700 × 15e-6
    //                  = 0.00015 + 0.0018 + 0.0075 + 0.006 + 0.0105 = 0.02595
    let claude = ledger.model("claude-sonnet-4-5").unwrap_or_default();
    assert_eq!(claude.total_usd(), usd("0.02595"));
    assert_eq!(
        (claude.usage.input, claude.usage.cache_write_1h),
        (9_050, 1_000)
    );
    // Gemini 2.5 Pro (≤ 200k): 4 000 × 1.25e-6 + 8 000 × 0.125e-6 + 500 × 10e-6 = 0.011
    let gemini = ledger.model("gemini-2.5-pro").unwrap_or_default();
    assert_eq!(gemini.total_usd(), usd("0.011"));
    assert_eq!((gemini.usage.output, gemini.usage.reasoning), (500, 200));
    assert_eq!(
        ledger.session("pr-1234").map(|t| t.total_usd()),
        Some(usd("0.03695"))
    );
}

#[test]
fn openrouter_json_charges_unknown_models_what_openrouter_reported() {
    let ledger = openrouter_json::run();
    let [claude, mini, llama, qwen] =
        openrouter_json::MODELS.map(|model| ledger.model(model).unwrap_or_default());
    // Known models at the table's prices, OpenRouter's spelling resolved.
    assert_eq!(claude.total_usd(), usd("0.0105"));
    assert_eq!(mini.total_usd(), usd("0.00027"));
    // An unknown one at OpenRouter's figure; one without a figure unpriced.
    assert_eq!(
        (llama.total_usd(), llama.provider_reported_calls),
        (usd("0.000395"), 1)
    );
    assert_eq!((qwen.unpriced_calls, qwen.unpriced_tokens), (1, 1_600));
    let session = ledger.session("ticket-981").unwrap_or_default();
    assert_eq!(
        (
            session.llm_calls,
            session.total_usd(),
            session.is_complete()
        ),
        (4, usd("0.011165"), false)
    );
    assert_eq!(ledger.diagnostics().reported_cost_mismatches, 0);
}

#[tokio::test(flavor = "current_thread")]
async fn openai_chat_prices_the_real_clients_responses() {
    let totals = openai_chat::run().await;
    // Per call (gpt-4o-mini): 176 × 0.15e-6 + 1 024 × 0.075e-6 + 300 × 0.6e-6 = 0.0002832;
    // three answered at once, the fourth streamed and priced from its last chunk.
    assert_eq!(totals.llm_calls, 4);
    assert_eq!(
        totals.total_usd(),
        Money::from_decimal("0.0011328").unwrap_or_default()
    );
    assert_eq!(totals.usage.cache_read, 4 * 1024);
    assert!(totals.is_complete());
}

#[test]
fn budget_guard_stops_the_runaway_loop_at_its_session_budget() {
    let (steps, refused, alerts, ledger) = budget_guard::run();
    // Admitted while spent + 0.03 ≤ 0.25 at 0.025 per step: 9 steps ($0.225); the 10th refused.
    assert_eq!(steps, 9);
    let refused = refused.unwrap_or_else(|| panic!("never refused"));
    assert_eq!(refused.spent, usd("0.225"));
    assert_eq!(
        ledger.session("runaway-1").map(|t| t.total_usd()),
        Some(usd("0.225"))
    );
    // 50 % and 80 % of the session budget, each once (the others are far from their limits).
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert!(
        alerts[0].contains("crossed 50%") && alerts[1].contains("crossed 80%"),
        "{alerts:?}"
    );
}

/// The requests a collector received: path and body.
type Received = std::sync::Arc<std::sync::Mutex<Vec<(String, Vec<u8>)>>>;

/// A stand-in OTLP/HTTP collector on loopback: answers `200 OK` to every request and keeps each
/// request's path and body.
fn fake_collector() -> (String, Received) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = std::sync::Arc::clone(&received);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let path = request_line
                .split_whitespace()
                .nth(1)
                .unwrap_or_default()
                .to_owned();
            let mut length = 0;
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                    break;
                }
                if let Some((name, value)) = header.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_ok()
                && let Ok(mut received) = sink.lock()
            {
                received.push((path, body));
            }
            let _ = reader.get_mut().write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            );
        }
    });
    (format!("http://{addr}"), received)
}

#[test]
fn otlp_exports_costed_spans_and_metrics_over_http() {
    let (endpoint, received) = fake_collector();
    let exported = otlp::run(&endpoint).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(exported.traces_error, None);
    assert_eq!(exported.metrics_error, None);
    // gpt-4o-mini: 1 200 × 0.15e-6 + 40 × 0.6e-6 = 0.000204;
    // Claude Sonnet 4.5, twice: 2 × (6 000 × 3e-6 + 900 × 15e-6) = 0.063
    assert_eq!(
        exported
            .ledger
            .session("ticket-4711")
            .map(|t| t.total_usd()),
        Some(usd("0.063204"))
    );
    let received = received.lock().map(|r| r.clone()).unwrap_or_default();
    let body = |path: &str| -> Vec<u8> {
        received
            .iter()
            .filter(|(p, _)| p == path)
            .flat_map(|(_, body)| body.clone())
            .collect()
    };
    let contains = |haystack: &[u8], needle: &str| {
        haystack
            .windows(needle.len())
            .any(|window| window == needle.as_bytes())
    };
    let traces = body("/v1/traces");
    for name in [
        "gen_ai.usage.cost.amount",
        "gen_ai.usage.cost.currency",
        "llm_cost.total_cost_usd",
        "support session",
        // A call's span, named `{operation} {model}` as the GenAI conventions name it.
        "chat claude-sonnet-4-5",
    ] {
        assert!(contains(&traces, name), "{name} not exported");
    }
    let metrics = body("/v1/metrics");
    for name in [
        "gen_ai.client.token.usage",
        "llm_cost.cost",
        "gen_ai.token.type",
    ] {
        assert!(contains(&metrics, name), "{name} not exported");
    }
}

#[test]
fn quickstart_prices_the_session_it_prints() {
    use tracing_subscriber::prelude::*;
    let (cost, ledger, tree) = quickstart::cost_layer();
    tracing::subscriber::with_default(
        tracing_subscriber::registry().with(cost),
        quickstart::support_session,
    );
    // gpt-6-luna: 1 800 × 0.1e-6 + 350 × 0.5e-6 = 0.000355
    // claude-sonnet-5-5: 12 000 × 2e-6 + 30 000 × 2.5e-6 + 1 500 × 10e-6 + 3 × $0.01
    //   + 12 000 × 2e-6 + 30 000 × 0.1e-6 + 1 500 × 10e-6 = 0.186
    // gpt-6.1-sol: 12 000 × 2e-6 + 6 000 × 10e-6 = 0.084 (reasoning at the output price);
    // gpt-6.1-terra: 9 000 × 1e-6 + 2 400 × 5e-6 = 0.021
    // acme-house-style-v2: no price (3 200 tokens, cost unknown); the cache hit: nothing, and
    // 42 000 × 2e-6 + 1 500 × 10e-6 = 0.099 saved.
    let session = ledger.session("s-42").unwrap_or_default();
    assert_eq!(session.total_usd(), usd("0.291355"));
    assert_eq!(
        (
            session.llm_calls,
            session.unpriced_calls,
            session.unpriced_tokens
        ),
        (6, 1, 3_200)
    );
    assert_eq!(
        (session.cache_hits, session.cache_hit_savings),
        (1, usd("0.099"))
    );
    assert_eq!(session.usage.web_search_requests, 3);
    let claude = ledger.model("claude-sonnet-5-5").unwrap_or_default();
    assert_eq!(claude.total_usd(), usd("0.186"));
    // Each `#[agent]` run is a key of its own.
    let agent = |name: &str| ledger.agent(name).map(|t| t.total_usd());
    assert_eq!(agent("researcher"), Some(usd("0.27")));
    assert_eq!(agent("planner"), Some(usd("0.000355")));
    assert_eq!(ledger.user("alice@example.com"), Some(session.clone()));
    // The tree it prints says the session's cost is a lower bound, and where the money went.
    let tree = tree.lock().map(|t| t.clone()).unwrap_or_default();
    assert!(
        tree.starts_with("session support_session [s-42]  ≥ $0.291355"),
        "{tree}"
    );
    assert!(tree.contains("agent researcher  $0.27"), "{tree}");
    assert!(tree.contains("[acme-house-style-v2]  $?"), "{tree}");
}
