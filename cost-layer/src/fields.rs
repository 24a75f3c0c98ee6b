//! The span field names the layer reads, and what each means. This module owns the list:
//! nothing else in the workspace spells a field name.
//!
//! OpenTelemetry GenAI names first, then the names in common use before them, then the
//! project's attribution names:
//!
//! | role | field names |
//! |---|---|
//! | input tokens (inclusive) | `gen_ai.usage.input_tokens`, `gen_ai.usage.prompt_tokens`, `llm.tokens.input` |
//! | output tokens (inclusive) | `gen_ai.usage.output_tokens`, `gen_ai.usage.completion_tokens`, `llm.tokens.output` |
//! | cache reads (part of the input tokens) | `gen_ai.usage.cache_read.input_tokens`, `gen_ai.usage.cache_read_input_tokens` |
//! | cache writes (5 min; part of the input tokens) | `gen_ai.usage.cache_creation.input_tokens`, `gen_ai.usage.cache_creation_input_tokens` |
//! | cache writes (1 h) | `cost.usage.cache_write_1h_tokens` |
//! | reasoning | `gen_ai.usage.reasoning.output_tokens` |
//! | audio input (not read from the cache) | `cost.usage.audio_input_tokens` |
//! | audio output | `cost.usage.audio_output_tokens` |
//! | audio cache reads (part of the cache reads) | `cost.usage.cache_read_audio_tokens` |
//! | image output (generated images) | `cost.usage.image_output_tokens` |
//! | image input (not read from the cache) | `cost.usage.image_input_tokens` |
//! | image cache reads (part of the cache reads) | `cost.usage.cache_read_image_tokens` |
//! | web searches (a count of searches, not tokens) | `cost.usage.web_search_requests` |
//! | file search tool calls (a count of calls) | `cost.usage.file_search_calls` |
//! | images of the image generation tool (a count of images) | `cost.usage.image_generation_calls` |
//! | code interpreter sessions (a count of sessions) | `cost.usage.code_interpreter_sessions` |
//! | request model | `gen_ai.request.model`, `llm.model` |
//! | response model (wins when recorded) | `gen_ai.response.model` |
//! | operation | `gen_ai.operation.name` (`invoke_agent` makes an agent) |
//! | provider | `gen_ai.provider.name` |
//! | session | `session.id`, `gen_ai.conversation.id` |
//! | agent | `gen_ai.agent.name`, `cost.agent` |
//! | user, org, feature | `cost.user_id`, `cost.org_id`, `cost.feature` |
//! | explicit scope | `cost.scope` = `session`, `agent` or `call` |
//! | application cache hit | `llm.cache.hit` = `true` |
//! | data residency: the call ran on a regional endpoint, billed above the list price on some models (an unpriced call where the price table has no factor for the model) | `cost.data_residency` = `true` |
//! | search context size of the call's web searches, which some models price a search by (a call stating none is priced as medium) | `cost.search_context_size` = `low`, `medium` or `high` |
//! | the cost the provider reported for the call, US dollars (compared with the price table's; charged only for a call the table has no price for, where [`CostLayerBuilder::charge_reported_cost_when_unpriced`](crate::CostLayerBuilder::charge_reported_cost_when_unpriced) says so) | `cost.reported_cost_usd` = a decimal string such as `"0.0057"`, an integer, or a float read by its shortest decimal text |
//! | service tier (the last recorded wins) | `cost.service_tier`, `openai.response.service_tier`, `openai.request.service_tier`, `gen_ai.openai.response.service_tier`, `gen_ai.openai.request.service_tier` (`standard`/`default`/`auto`, `batch`, `flex`, `priority`) |
//!
//! More names can be mapped to a role with
//! [`CostLayerBuilder::field`](crate::CostLayerBuilder::field).

use std::collections::HashMap;

use cost_core::TokenKind;

/// What a span field means to the layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldRole {
    /// A count of one kind of usage: tokens, or web searches.
    Tokens(TokenKind),
    /// The model the request asked for.
    RequestModel,
    /// The model that answered; wins over the request model when recorded.
    ResponseModel,
    /// `gen_ai.operation.name`.
    Operation,
    /// `gen_ai.provider.name`.
    Provider,
    /// A session (conversation) id.
    Session,
    /// An agent name.
    Agent,
    /// An end-user id (kept only as a keyed hash unless configured otherwise).
    User,
    /// An organisation (tenant) id.
    Org,
    /// The feature (query type) the spend belongs to.
    Feature,
    /// Explicit scope: `session`, `agent` or `call`.
    Scope,
    /// `true` when the response came from the application's own cache.
    CacheHit,
    /// The provider service tier the call ran at.
    ServiceTier,
    /// `true` when the call ran on a data-residency endpoint (a regional one), which some
    /// providers bill above the list price.
    DataResidency,
    /// The search context size of the call's web searches (`low`, `medium`, `high`), which some
    /// providers price a search by.
    SearchContextSize,
    /// What the provider says the call cost, in US dollars (OpenRouter's and Perplexity's
    /// `usage.cost`): compared with the price table's cost, never charged in its place.
    ReportedCost,
}

/// The default field names and their roles.
pub const DEFAULT_FIELDS: &[(&str, FieldRole)] = &[
    (
        "gen_ai.usage.input_tokens",
        FieldRole::Tokens(TokenKind::Input),
    ),
    (
        "gen_ai.usage.prompt_tokens",
        FieldRole::Tokens(TokenKind::Input),
    ),
    ("llm.tokens.input", FieldRole::Tokens(TokenKind::Input)),
    (
        "gen_ai.usage.output_tokens",
        FieldRole::Tokens(TokenKind::Output),
    ),
    (
        "gen_ai.usage.completion_tokens",
        FieldRole::Tokens(TokenKind::Output),
    ),
    ("llm.tokens.output", FieldRole::Tokens(TokenKind::Output)),
    (
        "gen_ai.usage.cache_read.input_tokens",
        FieldRole::Tokens(TokenKind::CacheRead),
    ),
    (
        "gen_ai.usage.cache_creation.input_tokens",
        FieldRole::Tokens(TokenKind::CacheWrite),
    ),
    // Their names before OpenTelemetry settled them (OpenLLMetry's, Sentry's): the same counts,
    // part of the input tokens. Unread, a call's cache reads would be charged as uncached input.
    (
        "gen_ai.usage.cache_read_input_tokens",
        FieldRole::Tokens(TokenKind::CacheRead),
    ),
    (
        "gen_ai.usage.cache_creation_input_tokens",
        FieldRole::Tokens(TokenKind::CacheWrite),
    ),
    (
        "cost.usage.cache_write_1h_tokens",
        FieldRole::Tokens(TokenKind::CacheWrite1h),
    ),
    (
        "gen_ai.usage.reasoning.output_tokens",
        FieldRole::Tokens(TokenKind::Reasoning),
    ),
    (
        "cost.usage.audio_input_tokens",
        FieldRole::Tokens(TokenKind::AudioInput),
    ),
    (
        "cost.usage.audio_output_tokens",
        FieldRole::Tokens(TokenKind::AudioOutput),
    ),
    (
        "cost.usage.cache_read_audio_tokens",
        FieldRole::Tokens(TokenKind::CacheReadAudio),
    ),
    (
        "cost.usage.image_output_tokens",
        FieldRole::Tokens(TokenKind::ImageOutput),
    ),
    (
        "cost.usage.web_search_requests",
        FieldRole::Tokens(TokenKind::WebSearchRequests),
    ),
    (
        "cost.usage.image_input_tokens",
        FieldRole::Tokens(TokenKind::ImageInput),
    ),
    (
        "cost.usage.cache_read_image_tokens",
        FieldRole::Tokens(TokenKind::CacheReadImage),
    ),
    (
        "cost.usage.file_search_calls",
        FieldRole::Tokens(TokenKind::FileSearchCalls),
    ),
    (
        "cost.usage.image_generation_calls",
        FieldRole::Tokens(TokenKind::ImageGenerationCalls),
    ),
    (
        "cost.usage.code_interpreter_sessions",
        FieldRole::Tokens(TokenKind::CodeInterpreterSessions),
    ),
    ("gen_ai.request.model", FieldRole::RequestModel),
    ("llm.model", FieldRole::RequestModel),
    ("gen_ai.response.model", FieldRole::ResponseModel),
    ("gen_ai.operation.name", FieldRole::Operation),
    ("gen_ai.provider.name", FieldRole::Provider),
    ("session.id", FieldRole::Session),
    ("gen_ai.conversation.id", FieldRole::Session),
    ("gen_ai.agent.name", FieldRole::Agent),
    ("cost.agent", FieldRole::Agent),
    ("cost.user_id", FieldRole::User),
    ("cost.org_id", FieldRole::Org),
    ("cost.feature", FieldRole::Feature),
    ("cost.scope", FieldRole::Scope),
    ("llm.cache.hit", FieldRole::CacheHit),
    (SERVICE_TIER_FIELD, FieldRole::ServiceTier),
    (DATA_RESIDENCY_FIELD, FieldRole::DataResidency),
    (SEARCH_CONTEXT_SIZE_FIELD, FieldRole::SearchContextSize),
    (REPORTED_COST_FIELD, FieldRole::ReportedCost),
    // OpenTelemetry's OpenAI conventions, current and older names. The response's value,
    // recorded after the request's, is the tier that served the call.
    ("openai.request.service_tier", FieldRole::ServiceTier),
    ("openai.response.service_tier", FieldRole::ServiceTier),
    ("gen_ai.openai.request.service_tier", FieldRole::ServiceTier),
    (
        "gen_ai.openai.response.service_tier",
        FieldRole::ServiceTier,
    ),
];

/// The service-tier field `#[llm_call]` records a response's tier in.
pub(crate) const SERVICE_TIER_FIELD: &str = "cost.service_tier";

/// The data-residency field `#[llm_call]` declares.
pub(crate) const DATA_RESIDENCY_FIELD: &str = "cost.data_residency";

/// The search-context-size field `#[llm_call]` declares.
pub(crate) const SEARCH_CONTEXT_SIZE_FIELD: &str = "cost.search_context_size";

/// The field `#[llm_call]` records the cost a provider reported in.
pub(crate) const REPORTED_COST_FIELD: &str = "cost.reported_cost_usd";

/// Names of the attributes of the optional close events.
///
/// The cost is the priced calls' cost, a number: when the same event counts unpriced or rejected
/// calls (`…unpriced_calls`, `…rejected_calls` above zero), the span's true cost is higher and
/// unknown, and the cost given is a lower bound.
pub mod close_event {
    /// Tokens of an agent run's subtree.
    pub const AGENT_TOTAL_TOKENS: &str = "agent.total_tokens";
    /// Cost of an agent run's subtree, USD (a lower bound when it has unpriced or rejected
    /// calls).
    pub const AGENT_TOTAL_COST_USD: &str = "agent.total_cost_usd";
    /// LLM calls of an agent run's subtree.
    pub const AGENT_LLM_CALLS: &str = "agent.llm_calls";
    /// Unpriced calls of an agent run's subtree (no price known for their model).
    pub const AGENT_UNPRICED_CALLS: &str = "agent.unpriced_calls";
    /// Rejected calls of an agent run's subtree (invalid usage, not charged).
    pub const AGENT_REJECTED_CALLS: &str = "agent.rejected_calls";
    /// Tokens of a session.
    pub const SESSION_TOTAL_TOKENS: &str = "session.total_tokens";
    /// Cost of a session, USD (a lower bound when it has unpriced or rejected calls).
    pub const SESSION_TOTAL_COST_USD: &str = "session.total_cost_usd";
    /// Agent runs of a session.
    pub const SESSION_AGENT_RUNS: &str = "session.agent_runs";
    /// LLM calls of a session.
    pub const SESSION_LLM_CALLS: &str = "session.llm_calls";
    /// Unpriced calls of a session (no price known for their model).
    pub const SESSION_UNPRICED_CALLS: &str = "session.unpriced_calls";
    /// Rejected calls of a session (invalid usage, not charged).
    pub const SESSION_REJECTED_CALLS: &str = "session.rejected_calls";
    /// The session id, on both events (when the span has one): a line names what it totals even
    /// where the span itself is not printed.
    pub const SESSION_ID: &str = "session.id";
    /// The agent's name, on an agent run's event.
    pub const AGENT_NAME: &str = "gen_ai.agent.name";
    /// The feature, on both events (when the span has one).
    pub const FEATURE: &str = "cost.feature";
}

/// Values of `gen_ai.operation.name` and `cost.scope` the layer acts on.
pub(crate) mod values {
    pub(crate) const INVOKE_AGENT: &str = "invoke_agent";
    pub(crate) const SCOPE_SESSION: &str = "session";
    pub(crate) const SCOPE_AGENT: &str = "agent";
    pub(crate) const SCOPE_CALL: &str = "call";
}

/// The field-name table of one layer: the defaults plus the builder's overrides.
#[derive(Clone, Debug)]
pub(crate) struct FieldNames {
    roles: HashMap<String, FieldRole>,
}

impl Default for FieldNames {
    fn default() -> Self {
        FieldNames {
            roles: DEFAULT_FIELDS
                .iter()
                .map(|(name, role)| ((*name).to_owned(), *role))
                .collect(),
        }
    }
}

impl FieldNames {
    pub(crate) fn set(&mut self, name: &str, role: FieldRole) {
        self.roles.insert(name.to_owned(), role);
    }

    pub(crate) fn role(&self, name: &str) -> Option<FieldRole> {
        self.roles.get(name).copied()
    }
}

/// Names of the fields `#[llm_call]` records on return, in the order of
/// [`CALL_FIELD_NAMES`]: the sixteen kinds of [`cost_core::Usage`] (in the order of
/// [`TokenKind::ALL`]), then the response model.
pub(crate) const CALL_FIELD_NAMES: [&str; 17] = [
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_creation.input_tokens",
    "cost.usage.cache_write_1h_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.reasoning.output_tokens",
    "cost.usage.audio_input_tokens",
    "cost.usage.audio_output_tokens",
    "cost.usage.cache_read_audio_tokens",
    "cost.usage.image_output_tokens",
    "cost.usage.web_search_requests",
    "cost.usage.image_input_tokens",
    "cost.usage.cache_read_image_tokens",
    "cost.usage.file_search_calls",
    "cost.usage.image_generation_calls",
    "cost.usage.code_interpreter_sessions",
    "gen_ai.response.model",
];

/// The index of the response model in [`CALL_FIELD_NAMES`], after the token kinds.
pub(crate) const RESPONSE_MODEL_AT: usize = TokenKind::ALL.len();

/// The OpenTelemetry GenAI attribute name of a token kind, where the conventions have one.
pub(crate) fn otel_usage_name(kind: TokenKind) -> Option<&'static str> {
    match kind {
        TokenKind::Input => Some(CALL_FIELD_NAMES[0]),
        TokenKind::CacheRead => Some(CALL_FIELD_NAMES[1]),
        TokenKind::CacheWrite => Some(CALL_FIELD_NAMES[2]),
        TokenKind::Output => Some(CALL_FIELD_NAMES[4]),
        TokenKind::Reasoning => Some(CALL_FIELD_NAMES[5]),
        TokenKind::CacheWrite1h
        | TokenKind::AudioInput
        | TokenKind::AudioOutput
        | TokenKind::CacheReadAudio
        | TokenKind::ImageOutput
        | TokenKind::WebSearchRequests
        | TokenKind::ImageInput
        | TokenKind::CacheReadImage
        | TokenKind::FileSearchCalls
        | TokenKind::ImageGenerationCalls
        | TokenKind::CodeInterpreterSessions => None,
    }
}

/// The field `#[llm_call(err)]` records an error's `Display` in.
pub(crate) const ERROR_FIELD: &str = "error.message";

/// The span `#[llm_call]` opens: every field the layer reads on a call, declared up front
/// (usage `Empty`, recorded on return). Used by the macro's expansion only; kept here so this
/// module stays the one place that spells field names.
#[doc(hidden)]
#[macro_export]
macro_rules! __llm_call_span {
    (
        krate = [$($krate:tt)*],
        level = $level:expr,
        name = $name:expr,
        model = [$($model:tt)*],
        provider = [$($provider:tt)*],
        operation = [$($operation:tt)*],
        otel_name = [$($otel_name:tt)*],
        feature = [$($feature:tt)*],
        agent = [$($agent:tt)*],
        service_tier = [$($service_tier:tt)*],
        data_residency = [$($data_residency:tt)*],
        search_context_size = [$($search_context_size:tt)*],
        fields = [$($fields:tt)*]
    ) => {
        $($krate)*::__private::tracing::span!(
            target: module_path!(),
            $level,
            $name,
            gen_ai.operation.name = $($operation)*,
            otel.name = $($otel_name)*,
            otel.kind = "client",
            gen_ai.request.model = $($model)*,
            gen_ai.response.model = $($krate)*::__private::tracing::field::Empty,
            gen_ai.provider.name = $($provider)*,
            gen_ai.usage.input_tokens = $($krate)*::__private::tracing::field::Empty,
            gen_ai.usage.cache_read.input_tokens = $($krate)*::__private::tracing::field::Empty,
            gen_ai.usage.cache_creation.input_tokens = $($krate)*::__private::tracing::field::Empty,
            cost.usage.cache_write_1h_tokens = $($krate)*::__private::tracing::field::Empty,
            gen_ai.usage.output_tokens = $($krate)*::__private::tracing::field::Empty,
            gen_ai.usage.reasoning.output_tokens = $($krate)*::__private::tracing::field::Empty,
            cost.usage.audio_input_tokens = $($krate)*::__private::tracing::field::Empty,
            cost.usage.audio_output_tokens = $($krate)*::__private::tracing::field::Empty,
            cost.usage.cache_read_audio_tokens = $($krate)*::__private::tracing::field::Empty,
            cost.usage.image_output_tokens = $($krate)*::__private::tracing::field::Empty,
            cost.usage.web_search_requests = $($krate)*::__private::tracing::field::Empty,
            cost.usage.image_input_tokens = $($krate)*::__private::tracing::field::Empty,
            cost.usage.cache_read_image_tokens = $($krate)*::__private::tracing::field::Empty,
            cost.usage.file_search_calls = $($krate)*::__private::tracing::field::Empty,
            cost.usage.image_generation_calls = $($krate)*::__private::tracing::field::Empty,
            cost.usage.code_interpreter_sessions = $($krate)*::__private::tracing::field::Empty,
            cost.feature = $($feature)*,
            cost.agent = $($agent)*,
            cost.service_tier = $($service_tier)*,
            cost.data_residency = $($data_residency)*,
            cost.search_context_size = $($search_context_size)*,
            cost.reported_cost_usd = $($krate)*::__private::tracing::field::Empty,
            error.message = $($krate)*::__private::tracing::field::Empty,
            $($fields)*
        )
    };
}

/// The span `#[agent]` or `#[session]` opens: its scope named (`cost.scope`), the agent's name
/// or the session's id, and the attribution given (`Empty` where not). Used by the macros'
/// expansion only; kept here so this module stays the one place that spells field names.
#[doc(hidden)]
#[macro_export]
macro_rules! __scope_span {
    (
        krate = [$($krate:tt)*],
        level = $level:expr,
        name = $name:expr,
        scope = agent,
        key = [$($agent:tt)*],
        otel_name = [$($otel_name:tt)*],
        feature = [$($feature:tt)*],
        user = [$($user:tt)*],
        org = [$($org:tt)*],
        fields = [$($fields:tt)*]
    ) => {
        $($krate)*::__private::tracing::span!(
            target: module_path!(),
            $level,
            $name,
            cost.scope = "agent",
            gen_ai.operation.name = "invoke_agent",
            gen_ai.agent.name = $($agent)*,
            otel.name = $($otel_name)*,
            cost.feature = $($feature)*,
            cost.user_id = $($user)*,
            cost.org_id = $($org)*,
            $($fields)*
        )
    };
    (
        krate = [$($krate:tt)*],
        level = $level:expr,
        name = $name:expr,
        scope = session,
        key = [$($id:tt)*],
        otel_name = [$($otel_name:tt)*],
        feature = [$($feature:tt)*],
        user = [$($user:tt)*],
        org = [$($org:tt)*],
        fields = [$($fields:tt)*]
    ) => {
        $($krate)*::__private::tracing::span!(
            target: module_path!(),
            $level,
            $name,
            cost.scope = "session",
            session.id = $($id)*,
            cost.feature = $($feature)*,
            cost.user_id = $($user)*,
            cost.org_id = $($org)*,
            $($fields)*
        )
    };
}

/// Emits the close event of a session or agent span (`CostLayerBuilder::close_events`), with the
/// attribute names of [`close_event`]; keys the span does not have are left out.
pub(crate) fn emit_close_event(
    id: &tracing_core::span::Id,
    scope: crate::Scope,
    totals: &crate::Totals,
    attribution: &crate::Attribution,
) {
    let session = attribution.session.as_deref();
    let feature = attribution.feature.as_deref();
    match scope {
        crate::Scope::Agent => tracing::event!(
            target: "cost_layer",
            parent: id,
            tracing::Level::INFO,
            {
            gen_ai.agent.name = attribution.agent.as_deref(),
            session.id = session,
            cost.feature = feature,
            agent.total_tokens = totals.total_tokens(),
            agent.total_cost_usd = totals.total_usd().to_f64(),
            agent.llm_calls = totals.llm_calls,
            agent.unpriced_calls = totals.unpriced_calls,
            agent.rejected_calls = totals.rejected_calls,
            },
            "agent run cost"
        ),
        crate::Scope::Session => tracing::event!(
            target: "cost_layer",
            parent: id,
            tracing::Level::INFO,
            {
            session.id = session,
            cost.feature = feature,
            session.total_tokens = totals.total_tokens(),
            session.total_cost_usd = totals.total_usd().to_f64(),
            session.agent_runs = totals.agent_runs,
            session.llm_calls = totals.llm_calls,
            session.unpriced_calls = totals.unpriced_calls,
            session.rejected_calls = totals.rejected_calls,
            },
            "session cost"
        ),
        _ => {}
    }
}
