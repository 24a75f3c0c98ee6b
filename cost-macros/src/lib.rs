//! Procedural macros of the llm-cost workspace. Use them through `cost-layer`, which re-exports
//! them and provides everything their expansions call (`cost_layer::__private`).
//!
//! - [`llm_call`]: instruments a function that calls a model.
//! - [`agent`](macro@agent) and [`session`](macro@session): instrument a function as an agent
//!   run or a session, the scopes calls roll up into.
//! - [`TokenUsage`](derive@TokenUsage): reads token usage out of a response type.

#![deny(missing_docs)]

mod args;
mod derive;
mod expand;

use proc_macro::TokenStream;

/// Instruments a function that calls an LLM: opens a span the cost layer recognises as a call,
/// runs the body inside it, and records the token usage (and the answering model) that the
/// return value carries through `TokenUsage`. Exported through `tracing-opentelemetry`, the
/// span is a client span named `{operation} {model}` (`chat gpt-4o`, the operation alone when
/// no model is given), as the OpenTelemetry GenAI conventions name an inference span (its
/// `otel.name` and `otel.kind` fields); unless `name = "…"` names it. An expression given for
/// `model` or `operation` is evaluated once, before the body runs.
///
/// ```text
/// #[llm_call(model = "gpt-4o", feature = "summarise")]
/// async fn summarise(client: &Client, doc: &str) -> Result<ChatCompletion, Error> { … }
/// ```
///
/// Arguments (all optional):
///
/// | argument | meaning |
/// |---|---|
/// | `model = "gpt-4o"` or `model = expr` | the requested model; an expression may use the arguments |
/// | `provider = "openai"` | `gen_ai.provider.name` (a literal or an expression, as are the next three) |
/// | `operation = "embeddings"` | `gen_ai.operation.name` (default `chat`): `embeddings`, `text_completion`, `generate_content`, … as the OpenTelemetry GenAI conventions name them; the token-usage metric and the exported spans carry it. An agent's (`invoke_agent`) is refused: use [`agent`](macro@agent) |
/// | `feature = "…"`, `agent = "…"` | attribution of the call |
/// | `service_tier = "priority"` | the service tier the request asks for (`flex`, `priority`, `batch`, `fast_mode` for Anthropic's fast mode, and the other spellings `cost_core::ServiceTier::parse` reads; a literal, checked when compiling, or an expression, read when the call runs): budgets reserve at its prices, and the tier the response reports replaces it |
/// | `data_residency = true` | the call runs on a data-residency (regional) endpoint: priced at the factor the price table gives the model there (Claude Sonnet 4.5 and later: 10% more), unpriced where it gives none; `true`, `false` or an expression; where the response says where the call ran (Anthropic's `usage.inference_geo`), that replaces it |
/// | `search_context_size = "low"` | the search context size the request chose for its web searches (`low`, `medium`, `high`; a literal, checked when compiling, or an expression): a search is priced at that size's price where the price table gives one (OpenAI's search models through LiteLLM's file, Perplexity's request fees); where the response says the size (Perplexity's usage, an OpenAI Responses answer's web search tool), that replaces it. Without either a search is priced as medium, OpenAI's default |
/// | `name = "…"` | the span name (default: the function's name); given, it names the exported OpenTelemetry span too |
/// | `level = "debug"` | the span level (default `info`); a filter on the whole subscriber that disables it hides the call from the cost layer, which counts it in `Diagnostics::calls_hidden_by_filter` and warns once |
/// | `fields(key = value, …)` | more span fields, as in `#[instrument]` |
/// | `skip(a, b)`, `skip_all` | accepted as in `#[instrument]`; arguments are never recorded unless named in `fields` (prompts can hold personal data) |
/// | `err` | record the `Display` of an `Err` return in `error.message` |
/// | `crate = path` | where `cost_layer` is, for crates that re-export it |
/// | `max_output_tokens = N`, `estimate_input = expr`, `max_web_searches = S` | before the body runs, reserve the worst case (estimated input at the dearest of the model's text, audio and image input prices + `N` output tokens at the output price of `model`, or at its audio, reasoning or image prices when higher, + `S` web searches at its search price) against the deny budgets that apply; if one would be exceeded the body does not run and the function returns the refusal (`Result<_, E>` with `E: From<BudgetExceeded>`); an async fn awaits the reservation (a shared budget's round trip to its store does not hold the executor's thread; dropped while it waits, it books nothing); an async fn's future dropped after it reserved, before it returns (a timeout) keeps its reservation as spent unless the budgets say `cancelled_calls = "release"`. Without `max_output_tokens` no budget checks the call before it runs (under a deny budget it is counted in `Diagnostics::calls_unchecked_by_budgets`, the first warned about) |
/// | `billed_on_err = predicate` | a closure or fn over `&E` of a `Result<_, E>` return: an error it holds for (`\|e\| e.is_timeout()`: the provider may have billed an answer the client never received) settles the call's reservation as a cancelled call's, as `cost_layer::budget::treat_as_cancelled` does; other errors release it |
#[proc_macro_attribute]
pub fn llm_call(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::instrument(args::Kind::Call, args.into(), item.into()).into()
}

/// Instruments a function as an agent run: opens a span the cost layer counts as an agent
/// (`cost.scope = "agent"`, `gen_ai.operation.name = "invoke_agent"`, `gen_ai.agent.name`) and
/// runs the body inside it (an async fn's future is instrumented, so the span is entered only
/// while it is polled). The calls it makes roll up into the run's totals and are attributed to
/// the agent. Exported through `tracing-opentelemetry`, the span is named `invoke_agent {name}`
/// as the OpenTelemetry GenAI conventions name an agent run (its `otel.name` field).
///
/// ```text
/// #[agent(name = "researcher", feature = "support")]
/// async fn research(question: &str) -> Result<Notes, Error> { … }
/// ```
///
/// Arguments (all optional):
///
/// | argument | meaning |
/// |---|---|
/// | `name = "…"` or `name = expr` | the agent's name (default: the function's name); a literal names the span too |
/// | `feature`, `user`, `org` | attribution of the calls inside (`cost.feature`, `cost.user_id`, `cost.org_id`: a literal or an expression over the arguments, recorded with `Display`); absent, they are inherited from the spans around, and declared empty so the body can record them once known (`Span::current().record("cost.user_id", user)`: the calls after it are the user's) |
/// | `level = "debug"` | the span level (default `info`) |
/// | `fields(key = value, …)` | more span fields, as in `#[instrument]` |
/// | `skip(a, b)`, `skip_all` | accepted as in `#[instrument]`; arguments are never recorded unless named in `fields` |
/// | `crate = path` | where `cost_layer` is, for crates that re-export it |
#[proc_macro_attribute]
pub fn agent(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::instrument(args::Kind::Agent, args.into(), item.into()).into()
}

/// Instruments a function as a session: opens a span the cost layer counts as a session
/// (`cost.scope = "session"`, `session.id`) and runs the body inside it. Every call inside is
/// charged to the session, readable with `Ledger::session(id)`.
///
/// ```text
/// #[session(id = request.conversation_id, user = request.user_id, feature = "support")]
/// async fn handle(request: Request) -> Response { … }
/// ```
///
/// Arguments:
///
/// | argument | meaning |
/// |---|---|
/// | `id = expr` | the session's id (required; a literal or an expression over the arguments, recorded with `Display`) |
/// | `name = "…"` | the span name (default: the function's name) |
/// | `feature`, `user`, `org` | attribution of the calls inside, as for [`agent`](macro@agent) |
/// | `level`, `fields(…)`, `skip(…)`, `skip_all`, `crate` | as for [`agent`](macro@agent) |
#[proc_macro_attribute]
pub fn session(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::instrument(args::Kind::Session, args.into(), item.into()).into()
}

/// Implements `TokenUsage` for a struct from its field attributes:
/// `#[usage(input)]`, `#[usage(output)]`, `#[usage(cache_read)]`, `#[usage(cache_write)]`,
/// `#[usage(cache_write_1h)]`, `#[usage(reasoning)]`, `#[usage(audio_input)]` (audio prompt
/// tokens not read from the cache), `#[usage(cache_read_audio)]` (audio prompt tokens read from
/// it, part of `cache_read`), `#[usage(audio_output)]`, `#[usage(image_output)]` (generated
/// images), `#[usage(image_input)]` and `#[usage(cache_read_image)]` (image prompt tokens, not
/// read from the cache and read from it, as `audio_input` and `cache_read_audio`),
/// `#[usage(web_search_requests)]` (web searches the provider ran, billed per search),
/// `#[usage(file_search_calls)]` (hosted file search tool calls, billed per call),
/// `#[usage(image_generation_calls)]` (images of the hosted image generation tool, billed per
/// image) and `#[usage(code_interpreter_sessions)]` (code interpreter sessions, billed per
/// session)
/// on integer or `Option<integer>` fields,
/// `#[usage(model)]` and `#[usage(service_tier)]` (the tier that served the call, as the provider
/// spells it: its price depends on it) on a `String`/`&str`/`Option` field,
/// `#[usage(data_residency)]` (the call ran on a data-residency endpoint, priced at the model's
/// factor there) on a `bool` or `Option<bool>` field, `#[usage(search_context_size)]` (the
/// search context size of the call's web searches, `low`/`medium`/`high`) on a
/// `String`/`&str`/`Option` field, and
/// `#[usage(flatten)]` on a field whose type implements `TokenUsage`. The container attribute `#[usage(convention = "…")]` says how
/// the counts are meant: `inclusive` (default; OpenAI), `anthropic` (input excludes cache reads
/// and writes), `gemini` (output excludes reasoning). `#[usage(crate = path)]` as for `llm_call`.
#[proc_macro_derive(TokenUsage, attributes(usage))]
pub fn derive_token_usage(input: TokenStream) -> TokenStream {
    derive::token_usage(input.into()).into()
}
