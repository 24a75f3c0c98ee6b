//! `#[llm_call]` on every function shape, and `#[derive(TokenUsage)]`, end to end through the
//! layer.

#[path = "support/common.rs"]
mod common;
use common::{GatewayReply, block_on, usd};

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use cost_layer::cost_core::adapters::{anthropic, bedrock, gemini, openai};
use cost_layer::cost_core::{Money, PriceTable, Usage};
use cost_layer::{CostLayer, Ledger, Scope, TokenUsage, llm_call, record_usage};
use tracing_subscriber::prelude::*;

/// A response in a provider's shape.
#[derive(TokenUsage, Clone, Debug)]
struct Reply {
    #[usage(input)]
    prompt_tokens: u32,
    #[usage(output)]
    completion_tokens: Option<u64>,
    #[usage(model)]
    model: String,
}

fn reply(input: u32, output: u64) -> Reply {
    Reply {
        prompt_tokens: input,
        completion_tokens: Some(output),
        model: "gpt-4o-2024-08-06".into(),
    }
}

type Calls = Arc<Mutex<Vec<(String, Scope, Money, u64)>>>;

fn run<R>(f: impl FnOnce() -> R) -> (R, Calls, Ledger) {
    let calls: Calls = Arc::default();
    let sink = Arc::clone(&calls);
    let (layer, ledger) = CostLayer::builder()
        .on_close(move |c| {
            if let Ok(mut calls) = sink.lock() {
                calls.push((
                    c.name.to_owned(),
                    c.scope,
                    c.totals.total_usd(),
                    c.totals.llm_calls,
                ));
            }
        })
        .build();
    let out = tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), f);
    (out, calls, ledger)
}

/// A price table in the native format, from its text.
fn native_table(text: &str) -> PriceTable {
    PriceTable::from_text(text, "inline.toml").unwrap_or_else(|e| panic!("{e}"))
}

/// The ledger of `work` run under a layer that prices at `table`.
fn ledger_at<R>(table: PriceTable, work: impl FnOnce() -> R) -> Ledger {
    let (layer, ledger) = CostLayer::builder().prices(table).build();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), work);
    ledger
}

fn charged(calls: &Calls, name: &str) -> Money {
    calls
        .lock()
        .ok()
        .and_then(|c| {
            c.iter()
                .find(|(n, s, ..)| n == name && *s == Scope::Call)
                .map(|c| c.2)
        })
        .unwrap_or_else(|| panic!("no call span {name}"))
}

#[llm_call]
fn sync_call(input: u32) -> Reply {
    assert_eq!(
        tracing::Span::current().metadata().map(|m| m.name()),
        Some("sync_call")
    );
    reply(input, 100)
}

#[test]
fn sync_fn_reads_usage_and_model_from_the_return_value() {
    let (out, calls, ledger) = run(|| sync_call(1_000));
    assert_eq!(out.prompt_tokens, 1_000);
    // The response model (gpt-4o-2024-08-06 → gpt-4o) prices it: 0.0025 + 0.001.
    assert_eq!(charged(&calls, "sync_call"), usd("0.0035"));
    assert!(ledger.model("gpt-4o").is_some());
}

#[derive(Debug)]
struct ApiError(String);

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "api error: {}", self.0)
    }
}

impl From<std::num::ParseIntError> for ApiError {
    fn from(e: std::num::ParseIntError) -> Self {
        ApiError(e.to_string())
    }
}

#[llm_call(model = "gpt-4o-mini", provider = "openai", feature = "parse", err)]
async fn async_call(tokens: &str) -> Result<Reply, ApiError> {
    let input: u32 = tokens.parse()?;
    Ok(Reply {
        prompt_tokens: input,
        completion_tokens: None,
        model: String::new(),
    })
}

#[test]
fn async_fn_with_question_mark_and_err() {
    let (out, calls, ledger) = run(|| {
        let ok = block_on(async_call("1000000"));
        let err = block_on(async_call("lots"));
        (ok.is_ok(), err.is_err())
    });
    assert_eq!(out, (true, true));
    // No response model: the requested gpt-4o-mini prices 10⁶ input tokens at 0.15e-6.
    assert_eq!(charged(&calls, "async_call"), usd("0.15"));
    assert_eq!(ledger.feature("parse").map(|t| t.llm_calls), Some(1));
}

struct Client {
    model: &'static str,
    calls: u32,
}

impl Client {
    #[llm_call(model = self.model, name = "client.ask")]
    fn ask(&self, input: u32) -> Reply {
        reply(input, 0)
    }

    #[llm_call(model = self.model)]
    fn ask_mut(&mut self) -> Reply {
        self.calls += 1;
        reply(1, 1)
    }

    #[llm_call]
    fn into_reply(self) -> Reply {
        reply(self.calls, 0)
    }

    #[llm_call(level = "debug")]
    async fn ask_async(&self) -> Reply {
        reply(2_000, 0)
    }
}

#[test]
fn methods_by_ref_mut_and_value() {
    let (_, calls, _) = run(|| {
        let mut client = Client {
            model: "gpt-4o",
            calls: 0,
        };
        client.ask(1_000);
        client.ask_mut();
        block_on(client.ask_async());
        client.into_reply()
    });
    assert_eq!(charged(&calls, "client.ask"), usd("0.0025"));
    assert_eq!(charged(&calls, "ask_mut"), usd("0.0000125"));
    assert_eq!(charged(&calls, "ask_async"), usd("0.005"));
    assert_eq!(charged(&calls, "into_reply"), usd("0.0000025"));
}

/// Calls that name their span and their agent, at each level (spelt in any case).
#[llm_call(
    model = "gpt-4o",
    name = "named.trace",
    agent = "helper",
    level = "trace"
)]
fn at_trace() -> Usage {
    Usage::new(1_000, 0)
}

#[llm_call(model = "gpt-4o", level = "INFO")]
fn at_info() -> Usage {
    Usage::new(1_000, 0)
}

#[llm_call(model = "gpt-4o", level = "warn")]
fn at_warn() -> Usage {
    Usage::new(1_000, 0)
}

#[llm_call(model = "gpt-4o", level = "Error")]
fn at_error() -> Usage {
    Usage::new(1_000, 0)
}

/// Keeps the name and level of every span created.
struct SpanLevels(Arc<Mutex<Vec<(&'static str, tracing::Level)>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for SpanLevels {
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        _: &tracing::span::Id,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if let Ok(mut seen) = self.0.lock() {
            seen.push((attrs.metadata().name(), *attrs.metadata().level()));
        }
    }
}

#[test]
fn a_call_takes_its_level_span_name_and_agent_from_the_attribute() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (layer, ledger) = CostLayer::builder().build();
    let subscriber = tracing_subscriber::registry()
        .with(layer)
        .with(SpanLevels(Arc::clone(&seen)));
    tracing::subscriber::with_default(subscriber, || {
        at_trace();
        at_info();
        at_warn();
        at_error();
    });
    let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
    assert_eq!(
        seen,
        [
            ("named.trace", tracing::Level::TRACE),
            ("at_info", tracing::Level::INFO),
            ("at_warn", tracing::Level::WARN),
            ("at_error", tracing::Level::ERROR),
        ]
    );
    // `agent` attributes the call; `name` names its span and nothing else.
    assert_eq!(ledger.agent("helper").map(|t| t.llm_calls), Some(1));
    assert_eq!(ledger.agent("named.trace"), None);
    assert_eq!(ledger.model("gpt-4o").map(|t| t.llm_calls), Some(4));
}

/// A blocking call whose body drives an async client: the call is the function, not a future
/// it returns (only `Box::pin(async …)`, what `#[async_trait]` writes, is read as one).
#[llm_call(model = "gpt-4o")]
fn blocking_over_async() -> Usage {
    block_on(async { Usage::new(1_000, 100) })
}

#[test]
fn a_blocking_body_over_an_async_block_is_one_call() {
    let (_, calls, ledger) = run(|| {
        assert_eq!(blocking_over_async(), Usage::new(1_000, 100));
    });
    assert_eq!(charged(&calls, "blocking_over_async"), usd("0.0035"));
    assert_eq!(ledger.global().llm_calls, 1);
}

trait Model {
    fn complete(&self, input: u32) -> Reply;
    fn complete_async(&self) -> impl Future<Output = Reply> + Send;
}

struct Fake;

impl Model for Fake {
    #[llm_call]
    fn complete(&self, input: u32) -> Reply {
        reply(input, 0)
    }

    #[llm_call]
    async fn complete_async(&self) -> Reply {
        reply(4_000, 0)
    }
}

#[llm_call]
fn generic<M: Model>(model: &M, input: u32) -> impl TokenUsage + use<M> {
    let _ = model;
    reply(input, 0)
}

#[test]
fn trait_impls_generics_and_impl_trait() {
    let (_, calls, _) = run(|| {
        Fake.complete(400);
        block_on(Fake.complete_async());
        generic(&Fake, 800);
    });
    assert_eq!(charged(&calls, "complete"), usd("0.001"));
    assert_eq!(charged(&calls, "complete_async"), usd("0.01"));
    assert_eq!(charged(&calls, "generic"), usd("0.002"));
}

/// What `#[async_trait]` turns an `async fn` into.
trait Boxed {
    fn ask(&self, input: u32) -> Pin<Box<dyn Future<Output = Reply> + Send + '_>>;
}

impl Boxed for Fake {
    #[llm_call(feature = "boxed")]
    fn ask(&self, input: u32) -> Pin<Box<dyn Future<Output = Reply> + Send + '_>> {
        Box::pin(async move {
            assert_eq!(
                tracing::Span::current().metadata().map(|m| m.name()),
                Some("ask")
            );
            reply(input, 0)
        })
    }
}

#[test]
fn async_trait_style_bodies() {
    let (_, calls, ledger) = run(|| {
        let future = Fake.ask(1_200);
        block_on(future)
    });
    assert_eq!(charged(&calls, "ask"), usd("0.003"));
    assert_eq!(ledger.feature("boxed").map(|t| t.llm_calls), Some(1));
}

#[llm_call(model = "gpt-4o", fields(prompt_len = prompt.len()))]
fn streaming(prompt: &str) {
    // A client that learns usage chunk by chunk records running totals.
    record_usage(&Usage::new(prompt.len() as u64, 10));
    record_usage(&Usage::new(1_000, 100));
}

#[test]
fn streaming_records_running_usage_and_the_last_one_counts() {
    let (_, calls, _) = run(|| streaming("hello"));
    assert_eq!(charged(&calls, "streaming"), usd("0.0035"));
}

/// A Gemini 2.5 Flash answer to a voice prompt: 10 000 prompt tokens, 8 000 of them audio.
#[llm_call(model = "gemini-2.5-flash")]
fn voice_prompt() -> gemini::GenerateContentResponse {
    serde_json::from_value(serde_json::json!({
        "modelVersion": "gemini-2.5-flash",
        "usageMetadata": {
            "promptTokenCount": 10000, "candidatesTokenCount": 200, "totalTokenCount": 10200,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 2000},
                                    {"modality": "AUDIO", "tokenCount": 8000}]
        }
    }))
    .unwrap_or_default()
}

/// A Gemini answer served at the tier the response names.
fn gemini_at(tier: &'static str) -> gemini::GenerateContentResponse {
    serde_json::from_value(serde_json::json!({
        "modelVersion": "gemini-2.5-flash",
        "usageMetadata": {"promptTokenCount": 10000, "candidatesTokenCount": 1000,
                          "totalTokenCount": 11000, "serviceTier": tier}
    }))
    .unwrap_or_default()
}

#[llm_call(model = "gemini-2.5-flash")]
fn gemini_priority() -> gemini::GenerateContentResponse {
    gemini_at("priority")
}

#[llm_call(model = "gemini-2.5-flash")]
fn gemini_flex() -> gemini::GenerateContentResponse {
    gemini_at("flex")
}

#[test]
fn a_gemini_call_is_priced_at_the_tier_that_served_it() {
    let table = native_table(
        "version = \"own\"\n[models.\"gemini-2.5-flash\"]\ninput = \"0.30\"\noutput = \"2.50\"\n\
         flex = { input = \"0.15\", output = \"1.25\" }\npriority = { input = \"0.54\", output = \"4.50\" }\n",
    );
    let ledger = ledger_at(table, || {
        gemini_priority();
        gemini_flex();
    });
    // 10 000 × 0.54e-6 + 1 000 × 4.5e-6 (priority) + 10 000 × 0.15e-6 + 1 000 × 1.25e-6 (flex).
    let totals = ledger.model("gemini-2.5-flash").unwrap_or_default();
    assert_eq!(totals.total_usd(), usd("0.01265"));
    assert_eq!(ledger.diagnostics().tier_fallbacks, 0);
    // A table without the tier's prices: the standard ones, counted, never silently.
    let (_, _, ledger) = run(gemini_priority);
    assert_eq!(ledger.diagnostics().tier_fallbacks, 1);
}

/// The same with 3 000 prompt tokens from the context cache, 2 500 of them audio.
#[llm_call(model = "gemini-2.5-flash")]
fn cached_voice_prompt() -> gemini::GenerateContentResponse {
    serde_json::from_value(serde_json::json!({
        "modelVersion": "gemini-2.5-flash",
        "usageMetadata": {
            "promptTokenCount": 10000, "cachedContentTokenCount": 3000,
            "candidatesTokenCount": 200, "totalTokenCount": 10200,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 2000},
                                    {"modality": "AUDIO", "tokenCount": 8000}],
            "cacheTokensDetails": [{"modality": "TEXT", "tokenCount": 500},
                                   {"modality": "AUDIO", "tokenCount": 2500}]
        }
    }))
    .unwrap_or_default()
}

#[llm_call(model = "gemini-2.5-flash")]
fn voice_stream() {
    record_usage(&Usage {
        input: 10_000,
        audio_input: 8_000,
        output: 200,
        ..Usage::default()
    });
}

/// A response type of one's own with audio counts.
#[derive(TokenUsage)]
struct VoiceReply {
    #[usage(input)]
    input: u32,
    #[usage(audio_input)]
    audio_in: Option<u32>,
    #[usage(output)]
    output: u32,
}

#[llm_call(model = "gemini-2.5-flash")]
fn voice_derived() -> VoiceReply {
    VoiceReply {
        input: 10_000,
        audio_in: Some(8_000),
        output: 200,
    }
}

#[test]
fn audio_tokens_are_charged_at_the_audio_price() {
    // 2 000 × 0.30e-6 + 8 000 × 1.00e-6 + 200 × 2.50e-6 = 0.0091 (as text: 0.0035).
    let (_, calls, ledger) = run(voice_prompt);
    assert_eq!(charged(&calls, "voice_prompt"), usd("0.0091"));
    let totals = ledger.model("gemini-2.5-flash").unwrap_or_default();
    assert_eq!(
        (totals.usage.audio_input, totals.cost.audio_input),
        (8_000, usd("0.008"))
    );
    let (_, calls, _) = run(voice_stream);
    assert_eq!(charged(&calls, "voice_stream"), usd("0.0091"));
    let (_, calls, _) = run(voice_derived);
    assert_eq!(charged(&calls, "voice_derived"), usd("0.0091"));
    // 1 500 uncached text tokens × 0.30e-6, 500 cached text × 0.03e-6, 2 500 cached audio ×
    // 0.10e-6, 5 500 uncached audio × 1.00e-6, 200 output × 2.50e-6.
    let (_, calls, ledger) = run(cached_voice_prompt);
    assert_eq!(charged(&calls, "cached_voice_prompt"), usd("0.006715"));
    let totals = ledger.model("gemini-2.5-flash").unwrap_or_default();
    assert_eq!(
        (totals.usage.cache_read_audio, totals.cost.cache_read),
        (2_500, usd("0.000265"))
    );
}

/// An image generated by Gemini 2.5 Flash Image: 1 290 image tokens and 10 of text.
#[llm_call(model = "gemini-2.5-flash-image")]
fn draw() -> gemini::GenerateContentResponse {
    serde_json::from_value(serde_json::json!({
        "modelVersion": "gemini-2.5-flash-image",
        "usageMetadata": {
            "promptTokenCount": 100, "candidatesTokenCount": 1300, "totalTokenCount": 1400,
            "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": 1290},
                                        {"modality": "TEXT", "tokenCount": 10}]
        }
    }))
    .unwrap_or_default()
}

#[test]
fn generated_images_are_charged_at_the_image_price_or_not_at_all() {
    let table = |image_price: &str| {
        native_table(&format!(
            "version = \"images\"\n[models.\"gemini-2.5-flash-image\"]\ninput = \"0.30\"\noutput = \"2.50\"\n{image_price}"
        ))
    };
    let run_with = |table| ledger_at(table, draw);
    // 100 × 0.3e-6 + 10 × 2.5e-6 + 1 290 × 30e-6 (as text it would be 0.00328).
    let ledger = run_with(table("image_output = \"30\""));
    let totals = ledger.model("gemini-2.5-flash-image").unwrap_or_default();
    assert_eq!(totals.total_usd(), usd("0.038755"));
    assert_eq!(totals.usage.image_output, 1_290);
    // A table without the image price: the call is unpriced (its cost unknown), not charged
    // at the text price.
    let ledger = run_with(table(""));
    let totals = ledger.model("gemini-2.5-flash-image").unwrap_or_default();
    assert_eq!((totals.unpriced_calls, totals.total_usd()), (1, usd("0")));
    assert_eq!(ledger.diagnostics().unpriced_calls, 1);
}

#[llm_call(model = "gpt-4o")]
fn streaming_under_a_span_of_its_own() {
    // The body enters a span of its own (a parser's, an HTTP client's): what it records still
    // reaches the call.
    let chunk = tracing::info_span!("parse_chunk", bytes = 512);
    let _c = chunk.enter();
    record_usage(&Usage::new(1_000, 100));
    cost_layer::record_service_tier("priority");
    cost_layer::record_response_model("gpt-4o-2024-08-06");
}

#[llm_call(model = "claude-sonnet-4-5")]
fn falling_back_to_a_regional_endpoint() {
    let chunk = tracing::info_span!("http_request", attempt = 2);
    let _c = chunk.enter();
    cost_layer::record_data_residency(true);
    record_usage(&Usage::new(10_000, 1_000));
}

#[test]
fn data_residency_recorded_from_inside_the_body_reaches_the_call() {
    let (_, calls, _) = run(falling_back_to_a_regional_endpoint);
    // 10 000 × $3.30 + 1 000 × $16.50 per million.
    assert_eq!(
        charged(&calls, "falling_back_to_a_regional_endpoint"),
        usd("0.0495")
    );
}

#[test]
fn streaming_records_reach_the_call_from_a_span_inside_it() {
    let (_, calls, ledger) = run(streaming_under_a_span_of_its_own);
    // gpt-4o at the priority tier: 1 000 × 4.25e-6 + 100 × 1.7e-5.
    assert_eq!(
        charged(&calls, "streaming_under_a_span_of_its_own"),
        usd("0.00595")
    );
    assert_eq!(ledger.diagnostics().calls_without_usage, 0);
    assert_eq!(ledger.model("gpt-4o").map(|t| t.llm_calls), Some(1));
}

/// Anthropic counts input without the cache: the derive converts.
#[derive(TokenUsage)]
#[usage(convention = "anthropic")]
struct AnthropicUsage {
    #[usage(input)]
    input_tokens: u64,
    #[usage(cache_read)]
    cache_read_input_tokens: u64,
    #[usage(cache_write)]
    cache_creation_input_tokens: u64,
    #[usage(output)]
    output_tokens: u64,
}

#[derive(TokenUsage)]
struct AnthropicReply {
    #[usage(model)]
    model: &'static str,
    #[usage(flatten)]
    usage: AnthropicUsage,
}

#[derive(TokenUsage)]
#[usage(convention = "gemini")]
struct GeminiUsage(
    #[usage(input)] i64,
    #[usage(output)] i64,
    #[usage(reasoning)] i64,
);

#[test]
fn derive_conventions_flatten_and_models() {
    let reply = AnthropicReply {
        model: "claude-sonnet-4-5",
        usage: AnthropicUsage {
            input_tokens: 50,
            cache_read_input_tokens: 6_000,
            cache_creation_input_tokens: 2_000,
            output_tokens: 10,
        },
    };
    assert_eq!(
        reply.token_usage(),
        Some(Usage {
            input: 8_050,
            cache_read: 6_000,
            cache_write: 2_000,
            output: 10,
            ..Usage::default()
        })
    );
    assert_eq!(reply.response_model(), Some("claude-sonnet-4-5"));
    assert_eq!(
        GeminiUsage(100, 30, 20).token_usage(),
        Some(Usage {
            input: 100,
            output: 50,
            reasoning: 20,
            ..Usage::default()
        })
    );
    // A negative count is not a real count: it becomes absurd, and the layer rejects the call.
    let bad = GeminiUsage(-1, 0, 0).token_usage().unwrap_or_default();
    assert!(bad.validate().is_err());
}

/// A response that says its tier, one level down.
#[derive(TokenUsage)]
struct TieredReply {
    #[usage(flatten)]
    inner: TieredUsage,
}

#[derive(TokenUsage)]
struct TieredUsage {
    #[usage(input)]
    input: u64,
    #[usage(output)]
    output: u64,
    #[usage(service_tier)]
    tier: Option<String>,
}

/// gpt-4o at the priority tier: 1 000 × 4.25e-6 + 100 × 1.7e-5 = $0.00595 (standard: $0.0035).
#[llm_call(model = "gpt-4o")]
fn priority_chat() -> openai::ChatCompletion {
    openai::ChatCompletion {
        model: "gpt-4o-2024-08-06".into(),
        usage: Some(openai::ChatUsage {
            prompt_tokens: 1_000,
            completion_tokens: 100,
            total_tokens: 1_100,
            ..openai::ChatUsage::default()
        }),
        service_tier: Some("priority".into()),
    }
}

/// gpt-5 at the flex tier: 1 000 × 6.25e-7 + 100 × 5e-6 = $0.001125 (standard: $0.00225).
#[llm_call(model = "gpt-5")]
fn flex_derived() -> TieredReply {
    TieredReply {
        inner: TieredUsage {
            input: 1_000,
            output: 100,
            tier: Some("flex".into()),
        },
    }
}

#[llm_call(model = "gpt-5")]
fn flex_stream() {
    cost_layer::record_service_tier("flex");
    record_usage(&Usage::new(1_000, 100));
}

/// A tier no price table has: priced at the standard tier, counted and warned about.
#[llm_call(model = "gpt-5")]
fn scale_tier() -> TieredUsage {
    TieredUsage {
        input: 1_000,
        output: 100,
        tier: Some("scale".into()),
    }
}

#[test]
fn the_service_tier_a_response_reports_prices_the_call() {
    let (_, calls, ledger) = run(|| {
        priority_chat();
        flex_derived();
        flex_stream();
    });
    assert_eq!(charged(&calls, "priority_chat"), usd("0.00595"));
    assert_eq!(charged(&calls, "flex_derived"), usd("0.001125"));
    assert_eq!(charged(&calls, "flex_stream"), usd("0.001125"));
    assert_eq!(ledger.diagnostics().bad_field_values, 0);

    let (_, calls, ledger) = run(scale_tier);
    assert_eq!(charged(&calls, "scale_tier"), usd("0.00225"));
    assert_eq!(ledger.diagnostics().bad_field_values, 1);
}

/// One `#[llm_call]` per spelling of a service tier the macro takes as a literal.
macro_rules! tier_spellings {
    ($($call:ident => $tier:literal),* $(,)?) => {
        $(
            #[llm_call(model = "gpt-5", service_tier = $tier)]
            fn $call() -> Usage {
                Usage::new(1_000, 100)
            }
        )*
        const TIER_SPELLINGS: &[(&str, fn() -> Usage)] = &[$(($tier, $call)),*];
    };
}

tier_spellings! {
    tier_empty => "",
    tier_standard => "standard",
    tier_default => "default",
    tier_auto => "auto",
    tier_on_demand => "on_demand",
    tier_unspecified => "unspecified",
    tier_standard_only => "standard_only",
    tier_batch => "batch",
    tier_batches => "Batches",
    tier_flex => "flex",
    tier_priority => "priority",
    tier_fast => "fast",
    tier_fast_mode => "fast_mode",
    tier_ultrafast => "ultrafast",
    tier_gemini_flex => "SERVICE_TIER_FLEX",
}

/// Every literal the macro lets compile is a tier the layer reads (none is a bad value), and
/// the call is priced at that tier as `cost_core` reads the name.
#[test]
fn every_service_tier_literal_that_compiles_prices_the_call_at_its_tier() {
    let table = PriceTable::embedded();
    for &(tier, call) in TIER_SPELLINGS {
        let parsed = cost_layer::cost_core::ServiceTier::parse(tier)
            .unwrap_or_else(|e| panic!("{tier:?}: {e}"));
        let (_, calls, ledger) = run(call);
        let expected = table
            .quote("gpt-5", &Usage::new(1_000, 100), parsed)
            .map(|quote| quote.total());
        assert_eq!(ledger.diagnostics().bad_field_values, 0, "{tier:?}");
        match expected {
            Ok(expected) => assert_eq!(
                calls.lock().map(|c| c[0].2).ok(),
                Some(expected),
                "{tier:?}"
            ),
            // A tier the model has no price at leaves the call unpriced, never at another
            // tier's price.
            Err(_) => assert_eq!(ledger.diagnostics().unpriced_calls, 1, "{tier:?}"),
        }
    }
}

mod reexport {
    pub(crate) use cost_layer as costs;
}

#[llm_call(crate = reexport::costs, model = "gpt-4o")]
fn through_a_reexport() -> Usage {
    Usage::new(1_000, 0)
}

#[test]
fn crate_argument_for_reexports() {
    let (_, calls, _) = run(through_a_reexport);
    assert_eq!(charged(&calls, "through_a_reexport"), usd("0.0025"));
}

/// Collects `field=value` of every `on_record`.
#[derive(Clone, Default)]
struct Records(Arc<Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Records {
    fn on_record(
        &self,
        _: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) {
        struct Visit<'a>(&'a mut Vec<String>);
        impl tracing::field::Visit for Visit<'_> {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.0.push(format!("{}={value:?}", field.name()));
            }
        }
        if let Ok(mut seen) = self.0.lock() {
            values.record(&mut Visit(&mut seen));
        }
    }
}

#[test]
fn err_records_the_display_of_the_error_and_usage_is_recorded_in_one_go() {
    let records = Records::default();
    let (layer, ledger) = CostLayer::builder().build();
    let subscriber = tracing_subscriber::registry()
        .with(layer)
        .with(records.clone());
    tracing::subscriber::with_default(subscriber, || {
        let _ = block_on(async_call("lots"));
        let _ = sync_call(7);
    });
    // The failed call returned no usage: counted, not charged.
    assert_eq!(ledger.diagnostics().calls_without_usage, 1);
    assert_eq!(ledger.global().llm_calls, 1);
    let seen = records.0.lock().map(|s| s.clone()).unwrap_or_default();
    assert!(
        seen.iter()
            .any(|r| r == "error.message=api error: invalid digit found in string"),
        "{seen:?}"
    );
    // sync_call's return: input, output and response model in one record (6 usage fields + model).
    assert!(
        seen.iter().any(|r| r == "gen_ai.usage.input_tokens=7"),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|r| r == "gen_ai.response.model=\"gpt-4o-2024-08-06\""),
        "{seen:?}"
    );
}

/// Claude answering after three web searches.
#[llm_call(model = "claude-sonnet-4-5")]
fn search_and_answer() -> anthropic::Message {
    serde_json::from_value(serde_json::json!({
        "model": "claude-sonnet-4-5-20250929",
        "usage": {"input_tokens": 1000, "output_tokens": 100,
                  "server_tool_use": {"web_search_requests": 3}}
    }))
    .unwrap_or_default()
}

/// A response type of one's own with a search count.
#[derive(TokenUsage)]
struct SearchedReply {
    #[usage(input)]
    input: u32,
    #[usage(output)]
    output: u32,
    #[usage(web_search_requests)]
    searches: Option<u8>,
}

#[llm_call(model = "claude-sonnet-4-5")]
fn searched_derived() -> SearchedReply {
    SearchedReply {
        input: 1_000,
        output: 100,
        searches: Some(3),
    }
}

#[test]
fn web_searches_are_charged_per_search_on_top_of_the_tokens() {
    // 1 000 × 3e-6 + 100 × 15e-6 + 3 × $0.01 (the tokens alone: 0.0045).
    let (_, calls, ledger) = run(search_and_answer);
    assert_eq!(charged(&calls, "search_and_answer"), usd("0.0345"));
    let totals = ledger.model("claude-sonnet-4-5").unwrap_or_default();
    assert_eq!(
        (totals.usage.web_search_requests, totals.cost.web_search),
        (3, usd("0.03"))
    );
    // Searches are not tokens, and the totals say them apart.
    assert_eq!(totals.total_tokens(), 1_100);
    assert_eq!(
        totals.to_string(),
        "$0.0345 · 1100 tokens · 1 call · 3 web searches"
    );
    let (_, calls, _) = run(searched_derived);
    assert_eq!(charged(&calls, "searched_derived"), usd("0.0345"));
    // By hand, under the field's name; a count past any real call's is rejected, not charged.
    let by_hand = |searches: u64| {
        let (_, calls, ledger) = run(|| {
            let span = tracing::info_span!(
                "claude",
                gen_ai.request.model = "claude-sonnet-4-5",
                gen_ai.usage.input_tokens = 1_000,
                gen_ai.usage.output_tokens = 100,
                cost.usage.web_search_requests = tracing::field::Empty,
            );
            span.record("cost.usage.web_search_requests", searches);
        });
        (
            charged(&calls, "claude"),
            ledger.diagnostics().rejected_calls,
        )
    };
    assert_eq!(by_hand(3), (usd("0.0345"), 0));
    assert_eq!(by_hand(20_000), (usd("0"), 1));
}

/// Gemini 2.5 Flash grounded by Google Search (two queries: one grounded prompt, as billed).
#[llm_call(model = "gemini-2.5-flash")]
fn grounded_answer() -> gemini::GenerateContentResponse {
    serde_json::from_value(serde_json::json!({
        "modelVersion": "gemini-2.5-flash",
        "candidates": [{"groundingMetadata": {"webSearchQueries": ["a", "b"]}}],
        "usageMetadata": {"promptTokenCount": 1000, "candidatesTokenCount": 100}
    }))
    .unwrap_or_default()
}

#[test]
fn grounded_gemini_calls_are_unpriced_unless_the_table_prices_the_search() {
    // The embedded table cannot know whether the call was within Google's free quota: the
    // call's cost is unknown, never its tokens alone.
    let (_, _, ledger) = run(grounded_answer);
    let totals = ledger.model("gemini-2.5-flash").unwrap_or_default();
    assert_eq!(
        (totals.unpriced_calls, totals.usage.web_search_requests),
        (1, 1)
    );
    // A table that prices it ($35 per 1 000 grounded prompts): 1 000 × 0.30e-6 + 100 × 2.50e-6
    // + 0.035.
    let table = native_table(
        "version = \"grounding\"\n[models.\"gemini-2.5-flash\"]\ninput = \"0.30\"\noutput = \"2.50\"\nweb_search_requests = \"0.035\"\n",
    );
    let ledger = ledger_at(table, grounded_answer);
    let totals = ledger.model("gemini-2.5-flash").unwrap_or_default();
    assert_eq!(totals.total_usd(), usd("0.03555"));
}

/// gpt-image-1 editing a picture: 10 text and 40 image prompt tokens, 50 image tokens out.
#[llm_call(model = "gpt-image-1")]
fn edit_picture() -> openai::ImagesResponse {
    serde_json::from_value(serde_json::json!({
        "data": [{"b64_json": "…"}],
        "usage": {"total_tokens": 100, "input_tokens": 50, "output_tokens": 50,
                  "input_tokens_details": {"text_tokens": 10, "image_tokens": 40}}
    }))
    .unwrap_or_default()
}

/// A response type of one's own with its image prompt tokens apart.
#[derive(TokenUsage)]
struct PictureReply {
    #[usage(input)]
    input: u32,
    #[usage(image_input)]
    image_input: u32,
    #[usage(cache_read)]
    cached: u32,
    #[usage(cache_read_image)]
    cached_images: u32,
    #[usage(output)]
    output: u32,
    #[usage(image_output)]
    image_output: u32,
}

#[llm_call(model = "gpt-image-1")]
fn edit_picture_derived() -> PictureReply {
    PictureReply {
        input: 50,
        image_input: 20,
        cached: 20,
        cached_images: 20,
        output: 50,
        image_output: 50,
    }
}

#[test]
fn image_prompt_tokens_are_charged_at_the_image_price() {
    // 10 × 5e-6 + 40 × 10e-6 + 50 × 40e-6 (the prompt as text: 0.00225).
    let (_, calls, ledger) = run(edit_picture);
    assert_eq!(charged(&calls, "edit_picture"), usd("0.00245"));
    let totals = ledger.model("gpt-image-1").unwrap_or_default();
    assert_eq!(
        (totals.usage.image_input, totals.cost.image_input),
        (40, usd("0.0004"))
    );
    // 10 × 5e-6 + 20 × 10e-6 + 20 × 2.5e-6 (cached images) + 50 × 40e-6.
    let (_, calls, _) = run(edit_picture_derived);
    assert_eq!(charged(&calls, "edit_picture_derived"), usd("0.0023"));
    // By hand, under the fields' names; more image tokens than the prompt has are rejected.
    let by_hand = |images: u64| {
        let (_, calls, ledger) = run(|| {
            let span = tracing::info_span!(
                "image_edit",
                gen_ai.request.model = "gpt-image-1",
                gen_ai.usage.input_tokens = 50,
                gen_ai.usage.output_tokens = 50,
                cost.usage.image_output_tokens = 50,
                cost.usage.image_input_tokens = tracing::field::Empty,
            );
            span.record("cost.usage.image_input_tokens", images);
        });
        (
            charged(&calls, "image_edit"),
            ledger.diagnostics().rejected_calls,
        )
    };
    assert_eq!(by_hand(40), (usd("0.00245"), 0));
    assert_eq!(by_hand(51), (Money::ZERO, 1));
}

/// A Responses API answer after two calls of the hosted file search tool.
#[llm_call(model = "gpt-4.1-mini")]
fn answer_from_files() -> openai::Response {
    serde_json::from_value(serde_json::json!({
        "model": "gpt-4.1-mini-2025-04-14",
        "output": [
            {"type": "file_search_call", "id": "fs_1", "status": "completed",
             "queries": ["refund policy"]},
            {"type": "file_search_call", "id": "fs_2", "status": "completed",
             "queries": ["refund window"]},
            {"type": "message", "id": "msg_1", "content": []}
        ],
        "usage": {"input_tokens": 12000, "output_tokens": 300, "total_tokens": 12300}
    }))
    .unwrap_or_default()
}

#[test]
fn file_search_calls_are_charged_per_call_on_top_of_the_tokens() {
    // 12 000 × 0.4e-6 + 300 × 1.6e-6 + 2 × $0.0025 (the tokens alone: 0.00528).
    let (_, calls, ledger) = run(answer_from_files);
    assert_eq!(charged(&calls, "answer_from_files"), usd("0.01028"));
    let totals = ledger.model("gpt-4.1-mini").unwrap_or_default();
    assert_eq!(
        (totals.usage.file_search_calls, totals.cost.file_search),
        (2, usd("0.005"))
    );
    assert_eq!(totals.total_tokens(), 12_300);
    // By hand, under the field's name; a count past any real call's is rejected, not charged.
    let by_hand = |file_searches: u64| {
        let (_, calls, ledger) = run(|| {
            let span = tracing::info_span!(
                "rag",
                gen_ai.request.model = "gpt-4.1-mini",
                gen_ai.usage.input_tokens = 12_000,
                gen_ai.usage.output_tokens = 300,
                cost.usage.file_search_calls = tracing::field::Empty,
            );
            span.record("cost.usage.file_search_calls", file_searches);
        });
        (charged(&calls, "rag"), ledger.diagnostics().rejected_calls)
    };
    assert_eq!(by_hand(2), (usd("0.01028"), 0));
    assert_eq!(by_hand(10_001), (Money::ZERO, 1));
}

/// A Responses API answer that drew two images with the hosted image generation tool and ran
/// code three times in two containers.
#[llm_call(model = "gpt-5")]
fn chart_and_draw() -> openai::Response {
    serde_json::from_value(serde_json::json!({
        "model": "gpt-5-2025-08-07",
        "output": [
            {"type": "code_interpreter_call", "id": "ci_1", "status": "completed",
             "container_id": "cntr_a"},
            {"type": "code_interpreter_call", "id": "ci_2", "status": "completed",
             "container_id": "cntr_a"},
            {"type": "code_interpreter_call", "id": "ci_3", "status": "completed",
             "container_id": "cntr_b"},
            {"type": "image_generation_call", "id": "ig_1", "status": "completed"},
            {"type": "image_generation_call", "id": "ig_2", "status": "completed"},
            {"type": "message", "id": "msg_1", "content": []}
        ],
        "usage": {"input_tokens": 2000, "output_tokens": 500, "total_tokens": 2500}
    }))
    .unwrap_or_default()
}

#[test]
fn hosted_image_generation_and_code_interpreter_are_charged_per_use_or_leave_the_call_unpriced() {
    // The embedded table prices neither: the call is unpriced (its cost unknown), its tokens
    // and uses counted, never charged as its tokens alone.
    let (_, calls, ledger) = run(chart_and_draw);
    let totals = ledger.model("gpt-5").unwrap_or_default();
    assert_eq!(
        (
            totals.unpriced_calls,
            totals.total_usd(),
            totals.total_tokens()
        ),
        (1, Money::ZERO, 2_500)
    );
    assert_eq!(
        (
            totals.usage.image_generation_calls,
            totals.usage.code_interpreter_sessions
        ),
        (2, 2)
    );
    assert_eq!(charged(&calls, "chart_and_draw"), Money::ZERO);
    assert_eq!(
        totals.to_string(),
        "$? · 2500 tokens · 1 call · 2 generated images · 2 code interpreter sessions · 1 unpriced (2500 tokens, cost unknown)"
    );
    // A table that gives both prices charges them on top of the tokens.
    let table = native_table(
        "version = \"own\"\n[models.\"gpt-5\"]\ninput = \"1.25\"\noutput = \"10\"\n\
         image_generation_calls = \"0.042\"\ncode_interpreter_sessions = \"0.03\"\n",
    );
    let ledger = ledger_at(table, chart_and_draw);
    let totals = ledger.model("gpt-5").unwrap_or_default();
    // 2 000 × 1.25e-6 + 500 × 10e-6 + 2 × $0.042 + 2 × $0.03.
    assert_eq!(
        (
            totals.unpriced_calls,
            totals.cost.image_generation,
            totals.cost.code_interpreter,
            totals.total_usd()
        ),
        (0, usd("0.084"), usd("0.06"), usd("0.1515"))
    );
    // By hand, under the fields' names; a count past any real call's is rejected.
    for (field, count, rejected) in [
        ("cost.usage.image_generation_calls", 10_001, 1),
        ("cost.usage.code_interpreter_sessions", 10_001, 1),
        ("cost.usage.code_interpreter_sessions", 1, 0),
    ] {
        let (_, _, ledger) = run(|| {
            let span = tracing::info_span!(
                "tools",
                gen_ai.request.model = "gpt-5",
                gen_ai.usage.input_tokens = 100,
                gen_ai.usage.output_tokens = 10,
                cost.usage.image_generation_calls = tracing::field::Empty,
                cost.usage.code_interpreter_sessions = tracing::field::Empty,
            );
            span.record(field, count);
        });
        let diagnostics = ledger.diagnostics();
        let totals = ledger.model("gpt-5").unwrap_or_default();
        assert_eq!(diagnostics.rejected_calls, rejected, "{field} = {count}");
        // A valid count leaves the call unpriced under the embedded table.
        assert_eq!(totals.unpriced_calls, 1 - rejected, "{field} = {count}");
    }
}

/// A Bedrock Converse call: 200 uncached prompt tokens, 4 000 read from the cache and 1 000
/// written to it for an hour, 300 output tokens.
#[llm_call(model = "global.anthropic.claude-sonnet-4-5-20250929-v1:0")]
fn converse() -> bedrock::ConverseResponse {
    serde_json::from_value(serde_json::json!({
        "usage": {"inputTokens": 200, "outputTokens": 300, "totalTokens": 5500,
                  "cacheReadInputTokens": 4000, "cacheWriteInputTokens": 1000,
                  "cacheDetails": [{"ttl": "1h", "inputTokens": 1000}]}
    }))
    .unwrap_or_default()
}

#[test]
fn a_bedrock_call_is_charged_under_the_id_a_table_names_and_unpriced_elsewhere() {
    let id = "global.anthropic.claude-sonnet-4-5-20250929-v1:0";
    let run_with = |table| ledger_at(table, converse);
    let table = native_table(&format!(
        "version = \"bedrock\"\n[models.\"{id}\"]\ninput = \"3\"\ncache_read = \"0.30\"\ncache_write = \"3.75\"\ncache_write_1h = \"6\"\noutput = \"15\"\n"
    ));
    // 200 × 3e-6 + 4 000 × 0.3e-6 + 1 000 × 6e-6 + 300 × 15e-6.
    let totals = run_with(table).model(id).unwrap_or_default();
    assert_eq!(totals.total_usd(), usd("0.0123"));
    assert_eq!(
        (totals.usage.input, totals.usage.cache_write_1h),
        (5_200, 1_000)
    );
    // The embedded table has no price for a Bedrock id: unpriced, its tokens counted.
    let embedded = cost_layer::cost_core::PriceTable::embedded();
    let totals = run_with((*embedded).clone()).model(id).unwrap_or_default();
    assert_eq!((totals.unpriced_calls, totals.unpriced_tokens), (1, 5_500));
}

/// A Claude call on Vertex AI's regional endpoint: 10 000 input tokens, 1 000 output.
#[llm_call(model = "claude-sonnet-4-5@20250929", data_residency = true)]
fn regional_claude() -> Usage {
    Usage::new(10_000, 1_000)
}

#[test]
fn data_residency_calls_are_charged_at_the_factor_or_unpriced() {
    let (layer, ledger) = CostLayer::builder().build();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        regional_claude();
        // By hand: the field recorded on a span that declares it; a model the table gives no
        // factor for is unpriced; a value that is not a boolean is ignored, counted and warned.
        for (model, residency) in [
            ("claude-sonnet-4-5", "true"),
            ("gpt-4o", "true"),
            ("claude-sonnet-4-5", "regional"),
        ] {
            let span = tracing::info_span!(
                "chat",
                gen_ai.request.model = model,
                gen_ai.usage.input_tokens = 10_000_u64,
                gen_ai.usage.output_tokens = 1_000_u64,
                cost.data_residency = tracing::field::Empty,
            );
            span.record("cost.data_residency", residency);
        }
    });
    // 10 000 × $3.30 + 1 000 × $16.50 per million, twice; the third at the list price.
    let claude = ledger.model("claude-sonnet-4-5").unwrap_or_default();
    assert_eq!(claude.llm_calls, 3);
    assert_eq!(claude.total_usd(), usd("0.144"));
    let gpt = ledger.model("gpt-4o").unwrap_or_default();
    assert_eq!((gpt.unpriced_calls, gpt.total_usd()), (1, usd("0")));
    assert_eq!(ledger.diagnostics().bad_field_values, 1);
}

/// A Messages response from Claude Opus 4.6 (2 000 input tokens, 400 output) that says where
/// inference ran.
fn opus_message(inference_geo: &str) -> anthropic::Message {
    serde_json::from_value(serde_json::json!({
        "model": "claude-opus-4-6",
        "usage": {"input_tokens": 2_000, "output_tokens": 400, "inference_geo": inference_geo}
    }))
    .unwrap_or_default()
}

/// The request asked for US-only inference (or the workspace's default did, unseen here).
#[llm_call(model = "claude-opus-4-6")]
fn us_only_opus() -> anthropic::Message {
    opus_message("us")
}

/// Declared on a residency endpoint, but the response says inference ran globally.
#[llm_call(model = "claude-opus-4-6", data_residency = true)]
fn declared_regional_ran_global() -> anthropic::Message {
    opus_message("global")
}

/// A response type of one's own that says it, one level down.
#[derive(TokenUsage)]
struct GeoReply {
    #[usage(flatten)]
    usage: GeoUsage,
}

#[derive(TokenUsage)]
struct GeoUsage {
    #[usage(input)]
    input: u64,
    #[usage(output)]
    output: u64,
    #[usage(data_residency)]
    kept_in_region: Option<bool>,
}

#[llm_call(model = "claude-opus-4-6")]
fn derived_regional() -> GeoReply {
    GeoReply {
        usage: GeoUsage {
            input: 2_000,
            output: 400,
            kept_in_region: Some(true),
        },
    }
}

#[llm_call(model = "gpt-4o")]
fn derived_regional_without_factor() -> GeoUsage {
    GeoUsage {
        input: 2_000,
        output: 400,
        kept_in_region: Some(true),
    }
}

/// A response type that borrows its fields: each is read through the reference.
#[derive(TokenUsage)]
struct BorrowedUsage<'a> {
    #[usage(input)]
    input: &'a u64,
    #[usage(output)]
    output: Option<&'a u32>,
    #[usage(model)]
    model: &'a str,
    #[usage(data_residency)]
    regional: &'a bool,
    #[usage(reported_cost)]
    cost: &'a str,
}

/// A data-residency flag as a plain `bool`.
#[derive(TokenUsage)]
struct PlainFlag {
    #[usage(input)]
    input: u64,
    #[usage(data_residency)]
    regional: bool,
}

/// A data-residency flag as an `Option`: `None` does not say.
#[derive(TokenUsage)]
struct MaybeFlag {
    #[usage(input)]
    input: u64,
    #[usage(data_residency)]
    regional: Option<bool>,
}

#[test]
fn a_derived_usage_reads_borrowed_fields_and_says_a_flag_only_as_given() {
    let (input, output) = (1_000_u64, 100_u32);
    for regional in [true, false] {
        let borrowed = BorrowedUsage {
            input: &input,
            output: Some(&output),
            model: "gpt-4o",
            regional: &regional,
            cost: "0.0035",
        };
        assert_eq!(borrowed.token_usage(), Some(Usage::new(1_000, 100)));
        assert_eq!(borrowed.response_model(), Some("gpt-4o"));
        assert_eq!(borrowed.data_residency(), Some(regional));
        assert_eq!(borrowed.reported_cost(), Some(usd("0.0035")));
    }
    for regional in [true, false] {
        let plain = PlainFlag {
            input: 10,
            regional,
        };
        assert_eq!(plain.data_residency(), Some(regional));
        let maybe = MaybeFlag {
            input: 10,
            regional: Some(regional),
        };
        assert_eq!(maybe.data_residency(), Some(regional));
    }
    let unsaid = MaybeFlag {
        input: 10,
        regional: None,
    };
    assert_eq!(unsaid.data_residency(), None);
    assert_eq!(unsaid.token_usage(), Some(Usage::new(10, 0)));
}

#[test]
fn the_data_residency_a_response_reports_prices_the_call() {
    // Claude Opus 4.6 at $5 / $25 per million, 1.1× with US-only inference.
    let table = native_table(
        "version = \"geo\"\n[models.\"claude-opus-4-6\"]\ninput = \"5\"\noutput = \"25\"\ndata_residency = \"1.1\"\n[models.\"gpt-4o\"]\ninput = \"2.50\"\noutput = \"10\"\n",
    );
    let ledger = ledger_at(table, || {
        us_only_opus();
        derived_regional();
        declared_regional_ran_global();
        derived_regional_without_factor();
    });
    // Twice 2 000 × $5.50 + 400 × $27.50 per million ($0.022 each), once at the list price
    // (2 000 × $5 + 400 × $25: $0.02).
    let opus = ledger.model("claude-opus-4-6").unwrap_or_default();
    assert_eq!((opus.llm_calls, opus.unpriced_calls), (3, 0));
    assert_eq!(opus.total_usd(), usd("0.064"));
    // A model the table gives no factor: unpriced, not charged the list price.
    let gpt = ledger.model("gpt-4o").unwrap_or_default();
    assert_eq!((gpt.unpriced_calls, gpt.total_usd()), (1, usd("0")));
    assert_eq!(ledger.diagnostics().bad_field_values, 0);
}

/// Claude Opus 4.6 in fast mode (2 000 input tokens, 400 output), as its response says.
#[llm_call(model = "claude-opus-4-6")]
fn fast_opus() -> anthropic::Message {
    serde_json::from_value(serde_json::json!({
        "model": "claude-opus-4-6",
        "usage": {"input_tokens": 2_000, "output_tokens": 400, "speed": "fast",
                  "service_tier": "standard"}
    }))
    .unwrap_or_default()
}

/// Asked for fast mode, ran at standard speed: the response's word prices it.
#[llm_call(model = "claude-opus-4-6", service_tier = "fast_mode")]
fn asked_fast_ran_standard() -> anthropic::Message {
    serde_json::from_value(serde_json::json!({
        "model": "claude-opus-4-6",
        "usage": {"input_tokens": 2_000, "output_tokens": 400, "speed": "standard"}
    }))
    .unwrap_or_default()
}

/// GPT-6 Astra at OpenAI's Ultrafast tier (2 000 input tokens, 400 output).
#[llm_call(model = "gpt-6-astra")]
fn ultrafast_astra() -> openai::Response {
    serde_json::from_value(serde_json::json!({
        "model": "gpt-6-astra", "service_tier": "ultrafast",
        "usage": {"input_tokens": 2_000, "output_tokens": 400, "total_tokens": 2_400}
    }))
    .unwrap_or_default()
}

#[test]
fn fast_mode_is_priced_at_the_models_factor_or_left_unpriced() {
    let table = |fast_mode: &str| {
        native_table(&format!(
            "version = \"fast\"\n[models.\"gpt-6-astra\"]\ninput = \"10\"\noutput = \"50\"\n{fast_mode}[models.\"claude-opus-4-6\"]\ninput = \"5\"\noutput = \"25\"\n{fast_mode}"
        ))
    };
    let ledger = ledger_at(table("fast_mode = \"6\"\n"), || {
        fast_opus();
        asked_fast_ran_standard();
        ultrafast_astra();
    });
    // 2 000 × $60 + 400 × $300 per million.
    let astra = ledger.model("gpt-6-astra").unwrap_or_default();
    assert_eq!(astra.total_usd(), usd("0.24"));
    // 2 000 × $30 + 400 × $150 per million ($0.12), and the standard call: 2 000 × $5 + 400 ×
    // $25 ($0.02).
    let opus = ledger.model("claude-opus-4-6").unwrap_or_default();
    assert_eq!((opus.llm_calls, opus.unpriced_calls), (2, 0));
    assert_eq!(opus.total_usd(), usd("0.14"));

    // A table without the factor: the fast call is unpriced, never charged the standard price.
    let ledger = ledger_at(table(""), fast_opus);
    let opus = ledger.model("claude-opus-4-6").unwrap_or_default();
    assert_eq!((opus.unpriced_calls, opus.total_usd()), (1, usd("0")));
    assert_eq!(ledger.diagnostics().bad_field_values, 0);
}

#[llm_call(model = "text-embedding-3-small", operation = "embeddings")]
fn embed(texts: &[&str]) -> Usage {
    Usage::new(texts.iter().map(|t| t.len() as u64).sum(), 0)
}

#[llm_call(model = "gpt-4o", operation = kind)]
fn complete_as(kind: &str) -> Usage {
    let _ = kind;
    Usage::new(1_000, 100)
}

/// The closed spans: name, scope and, for calls, `gen_ai.operation.name`.
type Operations = Arc<Mutex<Vec<(String, Scope, Option<String>)>>>;

#[test]
fn the_operation_is_the_one_given_and_chat_by_default() {
    let seen: Operations = Arc::default();
    let sink = Arc::clone(&seen);
    let (layer, ledger) = CostLayer::builder()
        .on_close(move |c| {
            if let (Ok(mut seen), Some(call)) = (sink.lock(), c.call) {
                let operation = call.operation.as_deref().map(str::to_owned);
                seen.push((c.name.to_owned(), c.scope, operation));
            }
        })
        .build();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        embed(&["a".repeat(600).as_str(), "b".repeat(400).as_str()]);
        complete_as("text_completion");
        streaming("hi");
    });
    let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
    let operation = |name: &str| {
        seen.iter()
            .find(|(n, scope, _)| n == name && *scope == Scope::Call)
            .unwrap_or_else(|| panic!("no call {name}: {seen:?}"))
            .2
            .clone()
    };
    assert_eq!(operation("embed").as_deref(), Some("embeddings"));
    assert_eq!(operation("complete_as").as_deref(), Some("text_completion"));
    assert_eq!(operation("streaming").as_deref(), Some("chat"));
    // Still calls, priced: 1 000 tokens of text-embedding-3-small at $0.02 per million.
    assert_eq!(
        ledger
            .model("text-embedding-3-small")
            .map(|t| t.total_usd()),
        Some(usd("0.00002"))
    );
}

/// Perplexity's Sonar at its prices: $1 per million in and out, a request fee of $5, $8 and
/// $12 per 1 000 requests at low, medium and high search context size.
const SONAR_PRICES: &str = "version = \"sonar\"\n[models.\"sonar\"]\ninput = \"1\"\noutput = \"1\"\nweb_search_by_context_size = { low = \"0.005\", medium = \"0.008\", high = \"0.012\" }\n";

/// A Sonar answer (500 prompt tokens, 200 completion tokens) as Perplexity sends it, at `size`.
fn sonar_answer(size: &str) -> openai::ChatCompletion {
    serde_json::from_value(serde_json::json!({
        "model": "sonar",
        "usage": {"prompt_tokens": 500, "completion_tokens": 200, "total_tokens": 700,
                  "search_context_size": size}
    }))
    .unwrap_or_default()
}

/// Asked for high context; the answer says what it ran at.
#[llm_call(model = "sonar", search_context_size = "high")]
fn sonar_asked_high_answered_low() -> openai::ChatCompletion {
    sonar_answer("low")
}

/// The size declared by the call site, for an answer that does not say it.
#[llm_call(model = "sonar", search_context_size = size)]
fn sonar_declared(size: &str) -> Usage {
    sonar_usage()
}

/// The size recorded from inside the body.
#[llm_call(model = "sonar")]
fn sonar_recorded_in_body() -> Usage {
    cost_layer::record_search_context_size("medium");
    sonar_usage()
}

/// A Sonar call's usage that says no size: 500 tokens in, 200 out, the request's one search.
fn sonar_usage() -> Usage {
    Usage {
        web_search_requests: 1,
        ..Usage::new(500, 200)
    }
}

/// A response type of one's own that says it.
#[derive(TokenUsage)]
struct SizedSearchReply {
    #[usage(input)]
    input: u64,
    #[usage(output)]
    output: u64,
    #[usage(web_search_requests)]
    searches: u32,
    #[usage(search_context_size)]
    context: Option<String>,
}

#[llm_call(model = "sonar")]
fn sonar_derived() -> SizedSearchReply {
    SizedSearchReply {
        input: 500,
        output: 200,
        searches: 1,
        context: Some("high".into()),
    }
}

#[test]
fn a_search_is_charged_at_the_context_size_the_call_ran_at() {
    let ledger = ledger_at(native_table(SONAR_PRICES), || {
        sonar_asked_high_answered_low();
        sonar_declared("high");
        sonar_recorded_in_body();
        sonar_derived();
        // By hand: a size that is not one is ignored (priced as medium), counted and warned.
        let span = tracing::info_span!(
            "chat",
            gen_ai.request.model = "sonar",
            gen_ai.usage.input_tokens = 500_u64,
            gen_ai.usage.output_tokens = 200_u64,
            cost.usage.web_search_requests = 1_u64,
            cost.search_context_size = tracing::field::Empty,
        );
        span.record("cost.search_context_size", "enormous");
    });
    // Tokens: 5 × (500 + 200) × $1 per million = $0.0035; fees: low 0.005 (the answer's word
    // over the call site's), high 0.012 twice, medium 0.008 twice (recorded in the body; the
    // bad value).
    let sonar = ledger.model("sonar").unwrap_or_default();
    assert_eq!((sonar.llm_calls, sonar.unpriced_calls), (5, 0));
    assert_eq!(sonar.cost.web_search, usd("0.045"));
    assert_eq!(sonar.total_usd(), usd("0.0485"));
    assert_eq!(ledger.diagnostics().bad_field_values, 1);
}

/// A Sonar answer with Perplexity's own cost: 500 in, 200 out at low context, $0.0057 by the
/// embedded table and by Perplexity.
#[llm_call(model = "sonar")]
fn sonar_with_its_cost(total_cost: f64) -> openai::ChatCompletion {
    serde_json::from_value(serde_json::json!({
        "model": "sonar",
        "usage": {"prompt_tokens": 500, "completion_tokens": 200, "total_tokens": 700,
                  "search_context_size": "low",
                  "cost": {"request_cost": 0.005, "total_cost": total_cost}}
    }))
    .unwrap_or_default()
}

/// The other types a `#[usage(reported_cost)]` field may have.
#[derive(TokenUsage)]
struct FloatCost {
    #[usage(input)]
    input: u64,
    #[usage(reported_cost)]
    cost: f64,
}

#[derive(TokenUsage)]
struct MoneyCost {
    #[usage(input)]
    input: u64,
    #[usage(reported_cost)]
    cost: Option<Money>,
}

#[test]
fn a_derived_reported_cost_is_read_from_each_type_it_may_have() {
    use cost_layer::TokenUsage as _;
    let float = |cost: f64| FloatCost { input: 1, cost }.reported_cost();
    assert_eq!(float(0.004375), Some(usd("0.004375")));
    assert_eq!(float(-0.01), None);
    assert_eq!(float(f64::NAN), None);
    assert_eq!(float(f64::INFINITY), None);
    let money = |cost: Option<Money>| MoneyCost { input: 1, cost }.reported_cost();
    assert_eq!(money(Some(usd("0.5"))), Some(usd("0.5")));
    assert_eq!(money(Some(Money::from_usd(-1))), None);
    assert_eq!(money(None), None);
    let text = |cost: &str| {
        GatewayReply {
            input: 1,
            output: 0,
            cost: Some(cost.to_owned()),
        }
        .reported_cost()
    };
    assert_eq!(text("1e-3"), Some(usd("0.001")));
    assert_eq!(text("-0.001"), None);
    assert_eq!(text("a lot"), None);
}

#[llm_call(model = "gpt-4o")]
fn through_a_gateway(cost: Option<&str>) -> GatewayReply {
    GatewayReply {
        input: 1_000,
        output: 100,
        cost: cost.map(str::to_owned),
    }
}

#[test]
fn the_cost_a_response_reports_reaches_the_call_and_is_compared() {
    let details: Arc<Mutex<Vec<Option<Money>>>> = Arc::default();
    let sink = Arc::clone(&details);
    let (layer, ledger) = CostLayer::builder()
        .on_close(move |close| {
            if let (Some(call), Ok(mut details)) = (close.call, sink.lock()) {
                details.push(call.reported_cost);
            }
        })
        .build();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        sonar_with_its_cost(0.0057);
        sonar_with_its_cost(0.0127); // the high context size's fee: not this call's
        through_a_gateway(Some("0.0035"));
        through_a_gateway(Some("0.0050"));
        through_a_gateway(None);
    });
    assert_eq!(
        details.lock().map(|d| d.clone()).ok(),
        Some(vec![
            Some(usd("0.0057")),
            Some(usd("0.0127")),
            Some(usd("0.0035")),
            Some(usd("0.005")),
            None,
        ])
    );
    let diagnostics = ledger.diagnostics();
    assert_eq!(diagnostics.reported_cost_mismatches, 2);
    assert_eq!(diagnostics.bad_field_values, 0);
    // Charged at the table's prices all the same.
    assert_eq!(
        ledger.model("sonar").map(|t| t.total_usd()),
        Some(usd("0.0114"))
    );
}
