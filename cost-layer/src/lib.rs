//! Cost accounting for LLM calls in `tracing` spans.
//!
//! Install [`CostLayer`] beside the layers you already have; every span that carries token
//! fields is priced when it closes, its cost rolls up the span tree (call → agent → session),
//! and the [`Ledger`] keeps totals by session, agent, user, org, feature and model.
//!
//! ```
//! use cost_layer::{CostLayer, Scope};
//! use tracing_subscriber::prelude::*;
//!
//! let (cost, ledger) = CostLayer::builder()
//!     .on_close_filtered(|c| c.scope == Scope::Session, |c| println!("{}: {}", c.name, c.totals))
//!     .build();
//! let subscriber = tracing_subscriber::registry().with(cost);
//! tracing::subscriber::with_default(subscriber, || {
//!     let session = tracing::info_span!("chat", session.id = "s-1", cost.feature = "support");
//!     let _session = session.enter();
//!     let agent = tracing::info_span!("planner", gen_ai.agent.name = "planner");
//!     let _agent = agent.enter();
//!     let call = tracing::info_span!(
//!         "chat gpt-4o",
//!         gen_ai.request.model = "gpt-4o",
//!         gen_ai.usage.input_tokens = tracing::field::Empty,
//!         gen_ai.usage.output_tokens = tracing::field::Empty,
//!     );
//!     call.record("gen_ai.usage.input_tokens", 2000);
//!     call.record("gen_ai.usage.output_tokens", 500);
//! });
//! let session = ledger.session("s-1").expect("charged");
//! assert_eq!(session.total_usd().to_string(), "0.01");
//! assert_eq!(ledger.feature("support").map(|t| t.llm_calls), Some(1));
//! ```
//!
//! # How spans are read
//!
//! - **Fields**: the names of [`fields`] (OpenTelemetry GenAI first). Token values may be `u64`,
//!   `i64`, integral non-negative `f64` or numeric strings; anything else (negative, fractional,
//!   text) is rejected: counted in [`Diagnostics::bad_field_values`], warned once per callsite
//!   and field, and the call is not charged ([`Totals::rejected_calls`]). A call whose counts
//!   contradict each other or are absurd ([`cost_core::UsageError`]) is rejected too, counted
//!   in [`Diagnostics::rejected_calls`] and warned once per callsite with the reason. A field
//!   recorded twice overwrites: streaming clients record running totals. A session span's id
//!   recorded again with another value moves later spend to the new id and counts the old one
//!   closed.
//! - **Model**: `gen_ai.response.model` when recorded, else `gen_ai.request.model` / `llm.model`,
//!   resolved by the price table's rules. A call without a price is *unpriced*: its tokens count,
//!   its cost is unknown ([`Totals::unpriced_calls`]), never zero; unless its provider said what
//!   it cost and the layer was built with
//!   [`CostLayerBuilder::charge_reported_cost_when_unpriced`], which charges that figure
//!   ([`Totals::provider_reported_calls`]). The first unpriced call of each model for each
//!   reason gives one warning (target `cost_layer::prices`) saying why the table could not
//!   price it, and the cost its provider reported if any; all are counted in
//!   [`Diagnostics::unpriced_calls`]. A price read longer ago than
//!   [`CostLayerBuilder::price_age_limit`] (180 days by default) still charges the call, and the
//!   first call at a price of each such date gives one warning (target `cost_layer::prices`),
//!   counted in [`Diagnostics::stale_prices`]. Web searches the provider ran
//!   (`cost.usage.web_search_requests`), file search tool calls
//!   (`cost.usage.file_search_calls`), images of the image generation tool
//!   (`cost.usage.image_generation_calls`) and code interpreter sessions
//!   (`cost.usage.code_interpreter_sessions`) are priced each on top of the tokens; a model
//!   without that price makes a call that ran them unpriced (the embedded table prices neither
//!   generated images nor code interpreter sessions: what one cost is not in the response). Audio and image tokens
//!   (`cost.usage.audio_input_tokens`, `cost.usage.image_input_tokens`, …) are priced at the
//!   model's audio and image prices, as text where it has none (but generated images: a model
//!   without an image output price makes such a call unpriced).
//! - **Scope**, decided when the span is created: `cost.scope` if given; else
//!   `gen_ai.operation.name = "invoke_agent"` → agent; else declared usage fields → call; else a
//!   session field → session; else an agent field → agent; else a plain span.
//! - **Attribution** (session, agent, user, org, feature) is inherited from the ancestors, the
//!   closest overriding. User ids are kept as a keyed hash (`u:` + hex) unless
//!   [`CostLayerBuilder::raw_user_ids`]. A span with no accounted ancestor that
//!   `follows_from` another span takes that span's attribution (a plain span's ancestors'),
//!   and passes it to every span under it.
//! - **Counted once**: only call spans charge. Usage recorded on agent or session spans is never
//!   charged, and usage on a call span whose subtree already charged calls (aggregate usage, as
//!   some frameworks record on workflow spans) is ignored and counted in
//!   [`Diagnostics::aggregate_usage_ignored`].
//! - **Application cache**: `llm.cache.hit = true` charges nothing; the avoided cost is counted in
//!   [`Totals::cache_hit_savings`], or, when the model has no price, is unknown and the hit is
//!   counted in [`Totals::unpriced_cache_hits`] (never as a saving of zero).
//! - **Filters**: a span the subscriber's filter disables reaches no layer. Filter the layers
//!   that print (`fmt::layer().with_filter(…)`), not the whole subscriber; an `#[llm_call]` call
//!   whose span a filter disabled is counted in [`Diagnostics::calls_hidden_by_filter`] and
//!   warned about once.
//!
//! # Reading totals
//!
//! 1. Callbacks: [`CostLayerBuilder::on_close`] / [`CostLayerBuilder::on_close_filtered`]
//!    receive a [`SpanClose`] (name, scope, attribution, subtree totals). A panicking callback is
//!    caught and counted.
//! 2. Other layers: the span's extensions hold a [`CostRecord`].
//! 3. Events: [`CostLayerBuilder::close_events`] emits the totals of sessions and agents as
//!    events, which `fmt` prints.
//! 4. The [`Ledger`], at any time; [`CostLayerBuilder::cost_tree`] draws a session's tree. Its
//!    memory is bounded by [`Retention`]: closed sessions beyond a count or age, and keys of
//!    the other dimensions (but models) beyond [`Retention::max_keys`], least recently charged
//!    first, are evicted and counted.
//! 5. Every closed call, one by one, to a [`CallSink`] ([`CostLayerBuilder::call_sink`]): the
//!    `cost-store` crate's writer keeps them in a durable ledger.
//!
//! # Export
//!
//! Feature `otel`: `CostLayerBuilder::otel_span_attributes` puts each call's cost on the spans
//! `tracing-opentelemetry` exports (and agent and session totals on theirs), and
//! `CostLayerBuilder::otel_metrics` records the GenAI token histogram and a USD cost counter on
//! an OpenTelemetry meter (module `otel`; instruments in [`export`]). Feature `metrics`:
//! `CostLayerBuilder::metrics` records the same instruments through the `metrics` facade.
//!
//! # Instrumenting and budgets
//!
//! [`llm_call`] turns a function into an LLM call whose usage is read from its return value
//! ([`TokenUsage`]); [`agent`](macro@agent) and [`session`](macro@session) turn one into an
//! agent run or a session, with its attribution:
//!
//! ```
//! use cost_layer::{CostLayer, agent, cost_core::Usage, llm_call, session};
//! use tracing_subscriber::prelude::*;
//!
//! #[llm_call(model = "gpt-4o")]
//! fn ask(question: &str) -> Usage {
//!     Usage::new(2000, 500) // the response's usage
//! }
//!
//! #[agent(name = "planner")]
//! fn plan(goal: &str) {
//!     ask(goal);
//! }
//!
//! #[session(id = id, user = user, feature = "support")]
//! fn handle(id: &str, user: &str, goal: &str) {
//!     plan(goal);
//! }
//!
//! let (cost, ledger) = CostLayer::builder().build();
//! let subscriber = tracing_subscriber::registry().with(cost);
//! tracing::subscriber::with_default(subscriber, || handle("s-1", "alice", "refund"));
//! assert_eq!(ledger.session("s-1").map(|t| t.total_usd().to_string()), Some("0.01".into()));
//! assert_eq!(ledger.agent("planner").map(|t| t.llm_calls), Some(1));
//! ```
//!
//! A function that returns its provider's stream wraps it with [`stream::track_stream`]: the
//! call lasts as long as the stream and is priced from the usage its chunks carry.
//!
//! [`budget`] wires [`cost_core::budget`] in: alerts, and calls refused
//! before they run (`#[llm_call(model = …, max_output_tokens = …)]`, [`budget::reserve`]).

#![deny(missing_docs)]

mod attribution;
pub mod budget;
mod builder;
mod call;
pub mod export;
pub mod fields;
mod layer;
mod ledger;
mod live_records;
#[cfg(feature = "metrics")]
mod metrics_facade;
#[cfg(feature = "otel")]
pub mod otel;
mod pricing;
mod record;
mod registered;
pub mod sink;
pub mod stream;
mod totals;
mod tree;

pub use builder::CostLayerBuilder;
pub use call::{
    record_data_residency, record_reported_cost, record_response_model, record_search_context_size,
    record_service_tier, record_usage,
};
pub use cost_core;
pub use cost_core::TokenUsage;
pub use cost_macros::{TokenUsage, agent, llm_call, session};
pub use fields::FieldRole;
pub use layer::{CallDetails, CostLayer, SpanClose};
pub use ledger::{Diagnostics, Dimension, Ledger, LedgerKey, LedgerSnapshot, Retention};
pub use record::CostRecord;
pub use sink::{CallSink, CallTimes, ClosedCall};
pub use totals::{Attribution, Scope, Totals};
pub use tree::{CostTree, CostTreeNode};

/// What `#[llm_call]` and `#[derive(TokenUsage)]` expand to. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::budget::{
        CallInFlight, reserve_within, reserve_within_async, settle_err_as_cancelled,
    };
    pub use crate::call::{CallFields, record_error, record_return};
    pub use cost_core::CallBound;
    pub use cost_core::budget::BudgetExceeded;

    /// A return type that can carry a budget refusal.
    #[diagnostic::on_unimplemented(
        message = "a deny budget on `#[llm_call]` needs a function that returns `Result<_, E>` with `E: From<BudgetExceeded>`, not `{Self}`",
        label = "the call can be refused before it runs, and this return type cannot say so",
        note = "return `Result<_, E>` and implement `From<cost_layer::cost_core::budget::BudgetExceeded>` for `E`"
    )]
    pub trait BudgetReturn {
        /// The refusal as this return value.
        fn refused(error: BudgetExceeded) -> Self;
    }

    impl<T, E: From<BudgetExceeded>> BudgetReturn for Result<T, E> {
        fn refused(error: BudgetExceeded) -> Self {
            Err(E::from(error))
        }
    }
    pub use cost_core::{Money, TokenUsage, Usage};
    pub use tracing;
    pub use tracing::Instrument;

    /// A token count field of a `#[derive(TokenUsage)]` struct.
    #[diagnostic::on_unimplemented(
        message = "a `#[usage(…)]` token count must be an integer or an `Option` of one, not `{Self}`",
        label = "not a token count"
    )]
    pub trait TokenCount {
        /// The count; a negative one becomes `u64::MAX`, which the layer rejects as absurd.
        fn token_count(&self) -> u64;
    }

    macro_rules! unsigned {
        ($($t:ty),*) => {$(
            impl TokenCount for $t {
                fn token_count(&self) -> u64 {
                    u64::try_from(*self).unwrap_or(u64::MAX)
                }
            }
        )*};
    }
    unsigned!(
        u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize
    );

    impl<T: TokenCount> TokenCount for Option<T> {
        fn token_count(&self) -> u64 {
            self.as_ref().map_or(0, T::token_count)
        }
    }

    impl<T: TokenCount + ?Sized> TokenCount for &T {
        fn token_count(&self) -> u64 {
            T::token_count(self)
        }
    }

    /// A text field of a `#[derive(TokenUsage)]` struct: the model, the service tier.
    #[diagnostic::on_unimplemented(
        message = "a `#[usage(model)]` or `#[usage(service_tier)]` field must be a `String`, a `&str` or an `Option` of one, not `{Self}`",
        label = "not text"
    )]
    pub trait UsageText {
        /// The text, if any (an empty one is none).
        fn usage_text(&self) -> Option<&str>;
    }

    impl UsageText for String {
        fn usage_text(&self) -> Option<&str> {
            Some(self.as_str()).filter(|s| !s.is_empty())
        }
    }

    impl UsageText for str {
        fn usage_text(&self) -> Option<&str> {
            Some(self).filter(|s| !s.is_empty())
        }
    }

    impl<T: UsageText + ?Sized> UsageText for &T {
        fn usage_text(&self) -> Option<&str> {
            T::usage_text(self)
        }
    }

    impl<T: UsageText> UsageText for Option<T> {
        fn usage_text(&self) -> Option<&str> {
            self.as_ref().and_then(T::usage_text)
        }
    }

    /// The reported-cost field of a `#[derive(TokenUsage)]` struct: an amount of US dollars.
    #[diagnostic::on_unimplemented(
        message = "`#[usage(reported_cost)]` needs an amount of US dollars, not `{Self}`",
        note = "use `Money`, a decimal `String` or `&str`, an `f64` (read by its shortest decimal text), or an `Option` of one"
    )]
    pub trait UsageCost {
        /// The amount, if the value gives a non-negative one.
        fn usage_cost(&self) -> Option<Money>;
    }

    impl UsageCost for Money {
        fn usage_cost(&self) -> Option<Money> {
            Some(*self).filter(|cost| !cost.is_negative())
        }
    }

    impl UsageCost for str {
        fn usage_cost(&self) -> Option<Money> {
            Money::from_non_negative_decimal(self).ok()
        }
    }

    impl UsageCost for String {
        fn usage_cost(&self) -> Option<Money> {
            self.as_str().usage_cost()
        }
    }

    impl UsageCost for f64 {
        fn usage_cost(&self) -> Option<Money> {
            self.is_finite()
                .then(|| self.to_string().usage_cost())
                .flatten()
        }
    }

    impl<T: UsageCost> UsageCost for Option<T> {
        fn usage_cost(&self) -> Option<Money> {
            self.as_ref().and_then(T::usage_cost)
        }
    }

    impl<T: UsageCost + ?Sized> UsageCost for &T {
        fn usage_cost(&self) -> Option<Money> {
            T::usage_cost(self)
        }
    }

    /// The data-residency field of a `#[derive(TokenUsage)]` struct.
    #[diagnostic::on_unimplemented(
        message = "a `#[usage(data_residency)]` field must be a `bool` or an `Option<bool>`, not `{Self}`",
        label = "not a flag"
    )]
    pub trait UsageFlag {
        /// The flag, if the value says.
        fn usage_flag(&self) -> Option<bool>;
    }

    impl UsageFlag for bool {
        fn usage_flag(&self) -> Option<bool> {
            Some(*self)
        }
    }

    impl<T: UsageFlag> UsageFlag for Option<T> {
        fn usage_flag(&self) -> Option<bool> {
            self.as_ref().and_then(T::usage_flag)
        }
    }

    impl<T: UsageFlag + ?Sized> UsageFlag for &T {
        fn usage_flag(&self) -> Option<bool> {
            T::usage_flag(self)
        }
    }

    /// Converts usage counted in a provider's exclusive convention to the inclusive one.
    pub fn from_convention(
        mut usage: Usage,
        input_excludes_cache: bool,
        output_excludes_reasoning: bool,
    ) -> Usage {
        if input_excludes_cache {
            usage.input = usage
                .input
                .saturating_add(usage.cache_read)
                .saturating_add(usage.cache_write)
                .saturating_add(usage.cache_write_1h);
        }
        if output_excludes_reasoning {
            usage.output = usage.output.saturating_add(usage.reasoning);
        }
        usage
    }
}
