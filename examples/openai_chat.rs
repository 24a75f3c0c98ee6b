//! The whole path with a real client: `async-openai` → `#[llm_call]` → `CostLayer` → totals.
//!
//! `cargo run --example openai_chat`
//!
//! The client talks to a loopback HTTP server started here that answers like OpenAI's Chat
//! Completions API (with cached and reasoning tokens in its usage), so it runs without a network
//! or an API key. The last answer is streamed: the function returns the stream, the caller reads
//! it, and the call is priced from its last chunk once it ends. Point `with_api_base` at `https://api.openai.com/v1` and set a key to run it
//! for real.

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::types::chat::{
    ChatCompletionRequestUserMessageArgs, ChatCompletionResponseStream,
    ChatCompletionStreamOptions, CreateChatCompletionRequest, CreateChatCompletionRequestArgs,
    CreateChatCompletionResponse,
};
use cost_layer::stream::Stream;
use cost_layer::stream::{UsageStream, track_stream};
use cost_layer::{CostLayer, Totals, llm_call};
use tracing_subscriber::prelude::*;
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// One call to the model; its cost is read from the response's `usage` when it returns.
#[llm_call(
    model = "gpt-4o-mini",
    provider = "openai",
    feature = "support_answer",
    err
)]
async fn answer(
    client: &Client<OpenAIConfig>,
    question: &str,
) -> Result<CreateChatCompletionResponse, OpenAIError> {
    client.chat().create(request(question, false)?).await
}

/// The same call, streamed: the function returns the stream as soon as the response starts;
/// the call lasts until the stream ends, and is priced from the usage of its last chunk.
#[llm_call(
    model = "gpt-4o-mini",
    provider = "openai",
    feature = "support_answer",
    err
)]
async fn answer_streamed(
    client: &Client<OpenAIConfig>,
    question: &str,
) -> Result<UsageStream<ChatCompletionResponseStream>, OpenAIError> {
    let chunks = client
        .chat()
        .create_stream(request(question, true)?)
        .await?;
    Ok(track_stream(chunks))
}

/// A question to gpt-4o-mini; a streamed one asks for the usage in its last chunk.
fn request(question: &str, stream: bool) -> Result<CreateChatCompletionRequest, OpenAIError> {
    let mut request = CreateChatCompletionRequestArgs::default();
    request
        .model("gpt-4o-mini")
        .messages([ChatCompletionRequestUserMessageArgs::default()
            .content(question)
            .build()?
            .into()]);
    if stream {
        request.stream_options(ChatCompletionStreamOptions {
            include_usage: Some(true),
            include_obfuscation: None,
        });
    }
    request.build()
}

/// What the loopback server answers: OpenAI's shape, 1 200 prompt tokens of which 1 024
/// cached, 300 completion tokens.
fn canned_completion() -> serde_json::Value {
    serde_json::json!({
        "id": "chatcmpl-loopback",
        "object": "chat.completion",
        "created": 1_764_000_000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": "Restart the router, then …"},
            "finish_reason": "stop",
            "logprobs": null
        }],
        "usage": {
            "prompt_tokens": 1200,
            "completion_tokens": 300,
            "total_tokens": 1500,
            "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0}
        },
        "service_tier": "default",
        "system_fingerprint": "fp_loopback"
    })
}

/// The same answer streamed as server-sent events: two text chunks, then the usage chunk
/// (`stream_options.include_usage`) with no choices.
fn canned_stream() -> String {
    let chunk = |choices: serde_json::Value, usage: serde_json::Value| {
        serde_json::json!({
            "id": "chatcmpl-loopback", "object": "chat.completion.chunk",
            "created": 1_764_000_000, "model": "gpt-4o-mini-2024-07-18",
            "choices": choices, "usage": usage
        })
    };
    let text = |content: &str| serde_json::json!([{"index": 0, "delta": {"content": content}, "finish_reason": null}]);
    let usage = canned_completion()["usage"].clone();
    [
        chunk(text("Restart the router, "), serde_json::Value::Null),
        chunk(text("then …"), serde_json::Value::Null),
        chunk(serde_json::json!([]), usage),
    ]
    .iter()
    .map(|event| format!("data: {event}\n\n"))
    .chain(["data: [DONE]\n\n".to_owned()])
    .collect()
}

/// Reads a stream to its end; returns the text it brought.
async fn read(stream: UsageStream<ChatCompletionResponseStream>) -> String {
    let mut stream = std::pin::pin!(stream);
    let mut text = String::new();
    while let Some(chunk) = std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
        for choice in chunk.iter().flat_map(|chunk| &chunk.choices) {
            text.push_str(choice.delta.content.as_deref().unwrap_or_default());
        }
    }
    text
}

/// Starts the server, answers three questions and streams a fourth in one session, and returns
/// the session's totals.
pub(crate) async fn run() -> Totals {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_partial_json(serde_json::json!({"stream": true})))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/event-stream")
                .set_body_string(canned_stream()),
        )
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(canned_completion()))
        .mount(&server)
        .await;
    let client = Client::with_config(
        OpenAIConfig::new()
            .with_api_base(format!("{}/v1", server.uri()))
            .with_api_key("sk-loopback"),
    );

    let (cost, ledger) = CostLayer::builder().build();
    let _subscriber = tracing::subscriber::set_default(tracing_subscriber::registry().with(cost));
    {
        let session = tracing::info_span!("support_session", session.id = "ticket-7");
        let _entered = session.enter();
        for question in ["my router blinks red", "still blinking", "thanks!"] {
            if let Err(e) = answer(&client, question).await {
                eprintln!("call failed: {e}");
            }
        }
        match answer_streamed(&client, "and the blue light?").await {
            Ok(stream) => println!("streamed: {}", read(stream).await),
            Err(e) => eprintln!("call failed: {e}"),
        }
    }
    ledger.session("ticket-7").unwrap_or_default()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let totals = run().await;
    println!("session ticket-7: {totals}");
    println!(
        "  input {} tokens ({} cached), output {} tokens; cache saved ${}",
        totals.usage.input, totals.usage.cache_read, totals.usage.output, totals.cost.cache_savings
    );
}
