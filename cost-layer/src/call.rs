//! Recording usage on an LLM-call span: what `#[llm_call]` does on return, and the streaming
//! API for code that learns its usage piece by piece.

use std::fmt::Display;
use std::sync::OnceLock;

use cost_core::{TokenKind, TokenUsage, Usage};
use tracing::field::{Field, FieldSet, Value};
use tracing::{Metadata, Span};
use tracing_core::Subscriber;
use tracing_core::span::Id;
use tracing_subscriber::registry::{LookupSpan, SpanRef};

use crate::fields::{
    CALL_FIELD_NAMES, DATA_RESIDENCY_FIELD, ERROR_FIELD, REPORTED_COST_FIELD, RESPONSE_MODEL_AT,
    SEARCH_CONTEXT_SIZE_FIELD, SERVICE_TIER_FIELD,
};
use crate::layer::CostLayer;
use crate::record::CostRecord;
use crate::totals::Scope;

/// How many token kinds a call records: every kind of [`Usage`].
const KINDS: usize = TokenKind::ALL.len();

/// The fields of one `#[llm_call]` span, looked up once.
struct SpanFields {
    /// The token counts, in the order of [`CALL_FIELD_NAMES`] (and of [`TokenKind::ALL`]).
    usage: [Field; KINDS],
    response_model: Field,
    service_tier: Field,
    data_residency: Field,
    search_context_size: Field,
    reported_cost: Field,
    error: Field,
}

/// The fields of the token counts, when the span declares them all.
fn token_fields(fieldset: &FieldSet) -> Option<[Field; KINDS]> {
    let found: Vec<Field> = CALL_FIELD_NAMES[..RESPONSE_MODEL_AT]
        .iter()
        .map(|name| fieldset.field(name))
        .collect::<Option<_>>()?;
    found.try_into().ok()
}

/// The span name and fields of one `#[llm_call]` callsite, looked up once.
#[doc(hidden)]
pub struct CallFields {
    /// The span's name (a disabled span may not know it).
    name: &'static str,
    fields: OnceLock<Option<SpanFields>>,
}

impl CallFields {
    /// The fields of the span `name`; filled on first use.
    pub const fn new(name: &'static str) -> Self {
        CallFields {
            name,
            fields: OnceLock::new(),
        }
    }

    fn get(&self, fieldset: &FieldSet) -> Option<&SpanFields> {
        self.fields
            .get_or_init(|| {
                Some(SpanFields {
                    usage: token_fields(fieldset)?,
                    response_model: fieldset.field(CALL_FIELD_NAMES[RESPONSE_MODEL_AT])?,
                    service_tier: fieldset.field(SERVICE_TIER_FIELD)?,
                    data_residency: fieldset.field(DATA_RESIDENCY_FIELD)?,
                    search_context_size: fieldset.field(SEARCH_CONTEXT_SIZE_FIELD)?,
                    reported_cost: fieldset.field(REPORTED_COST_FIELD)?,
                    error: fieldset.field(ERROR_FIELD)?,
                })
            })
            .as_ref()
    }
}

/// The counts of `usage` in field order, as `i64`: `tracing-opentelemetry` exports `i64`
/// fields as integers but `u64` ones as text. A count beyond `i64::MAX` is absurd either way
/// (the layer rejects it) and stays absurd.
fn signed_counts(usage: &Usage) -> [i64; KINDS] {
    TokenKind::ALL.map(|kind| i64::try_from(usage.get(kind)).unwrap_or(i64::MAX))
}

/// Records the usage, response model, service tier, data residency and search context size
/// `value` carries on `span`, in one record.
#[doc(hidden)]
pub fn record_return<T: TokenUsage + ?Sized>(span: &Span, fields: &CallFields, value: &T) {
    if span.is_disabled() {
        count_hidden_call(fields.name);
        return;
    }
    let Some(metadata) = span.metadata() else {
        return;
    };
    let Some(span_fields) = fields.get(metadata.fields()) else {
        return;
    };
    let usage = value.token_usage();
    let model = value.response_model();
    let tier = value.service_tier();
    let residency = value.data_residency();
    let search_size = value.search_context_size();
    let reported_cost = value.reported_cost().map(tracing::field::display);
    if usage.is_none()
        && model.is_none()
        && tier.is_none()
        && residency.is_none()
        && search_size.is_none()
        && reported_cost.is_none()
    {
        return;
    }
    let counts = usage.map(|u| signed_counts(&u));
    // The counts, then the model, the tier, the residency, the search context size and the
    // reported cost.
    let values: [(&Field, Option<&dyn Value>); KINDS + 5] = std::array::from_fn(|i| match i {
        _ if i < KINDS => (
            &span_fields.usage[i],
            counts.as_ref().map(|c| &c[i] as &dyn Value),
        ),
        KINDS => (
            &span_fields.response_model,
            model.as_ref().map(|m| m as &dyn Value),
        ),
        _ if i == KINDS + 1 => (
            &span_fields.service_tier,
            tier.as_ref().map(|t| t as &dyn Value),
        ),
        _ if i == KINDS + 2 => (
            &span_fields.data_residency,
            residency.as_ref().map(|r| r as &dyn Value),
        ),
        _ if i == KINDS + 3 => (
            &span_fields.search_context_size,
            search_size.as_ref().map(|s| s as &dyn Value),
        ),
        _ => (
            &span_fields.reported_cost,
            reported_cost.as_ref().map(|c| c as &dyn Value),
        ),
    });
    span.record_all(&metadata.fields().value_set(&values));
}

/// Counts something no span can show with `count` on the diagnostics of the outermost
/// `CostLayer` of the current dispatcher, if any (a program without one has nothing to miss),
/// or, where downcasts reach none (inside `reload::Layer`), of one registered with the
/// dispatcher; `true` when `count` says it is the first, to be warned about after the
/// dispatcher is released (an event sent while it is borrowed would be dropped).
fn count_in_layer(count: fn(&crate::ledger::DiagnosticCounters) -> bool) -> bool {
    tracing::dispatcher::get_default(|dispatch| match dispatch.downcast_ref::<CostLayer>() {
        Some(layer) => count(&layer.ledger.diagnostics),
        None => {
            crate::registered::ledger_in(dispatch).is_some_and(|ledger| count(&ledger.diagnostics))
        }
    })
}

/// A call whose span the subscriber's filter disabled: no layer saw it. Counted, and the first
/// warned about.
#[cold]
fn count_hidden_call(span_name: &'static str) {
    if count_in_layer(crate::ledger::DiagnosticCounters::count_hidden_call) {
        CostLayer::warn_hidden_call(span_name);
    }
}

/// Usage recorded with no call span to take it. Counted, and the first warned about.
#[cold]
fn count_usage_outside_call() {
    if count_in_layer(crate::ledger::DiagnosticCounters::count_usage_outside_call) {
        tracing::warn!(
            target: "cost_layer",
            "usage was recorded with no LLM call span current or above the current span, so it reached no call and is in no total: record it inside the `#[llm_call]` function (or a span with the call's usage fields), and make a returned stream's `track_stream` there; inside such a function, the subscriber's filter may have disabled the call's span (see Diagnostics::calls_hidden_by_filter). Further such usage is only counted in Diagnostics::usage_outside_calls"
        );
    }
}

/// A tracked response stream of the call `span_name` that ended with no chunk carrying usage.
/// Counted, and the first warned about.
#[cold]
pub(crate) fn count_stream_without_usage(span_name: &str) {
    if count_in_layer(crate::ledger::DiagnosticCounters::count_stream_without_usage) {
        tracing::warn!(
            target: "cost_layer",
            call = span_name,
            "the response stream of the LLM call `{span_name}` ended without any chunk carrying usage, so the call's cost is unknown and in no total, though the provider billed it. OpenAI's Chat Completions streams report usage only when the request sets `stream_options: {{\"include_usage\": true}}`; streams that spread it over their events need a reader that reads them (`track_stream_with`). Further such streams are only counted in Diagnostics::streams_ended_without_usage"
        );
    }
}

/// A return value whose error `#[llm_call(err)]` can record.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`#[llm_call(err)]` needs a function that returns `Result<_, E>` with `E: Display`, not `{Self}`",
    label = "`err` records the `Display` of the error this function returns"
)]
pub trait ErrorResult {
    /// The error, if the value is one.
    fn error(&self) -> Option<&dyn Display>;
}

impl<T, E: Display> ErrorResult for Result<T, E> {
    fn error(&self) -> Option<&dyn Display> {
        self.as_ref().err().map(|e| e as &dyn Display)
    }
}

/// Records the error of an `Err` on `span` (`#[llm_call(err)]`).
#[doc(hidden)]
pub fn record_error<R: ErrorResult>(span: &Span, fields: &CallFields, result: &R) {
    let (Some(error), Some(metadata)) = (result.error(), span.metadata()) else {
        return;
    };
    if let Some(span_fields) = fields.get(metadata.fields()) {
        let message = tracing::field::display(error);
        span.record_all(
            &metadata
                .fields()
                .value_set(&[(&span_fields.error, Some(&message as &dyn Value))]),
        );
    }
}

/// Records running usage on the current LLM-call span, from inside an `#[llm_call]` function
/// (or any span that declares the usage fields): for streaming clients that learn their usage
/// chunk by chunk or only in the last chunk. Later records overwrite earlier ones. Return `()`
/// (or any value without usage) from the function so its return does not overwrite it. When
/// the current span is one the body entered inside the call (a parser's, an HTTP client's),
/// the usage goes to the nearest call span above it.
pub fn record_usage(usage: &Usage) {
    let Some(target) = CallTarget::find(&CALL_FIELD_NAMES[..RESPONSE_MODEL_AT]) else {
        count_usage_outside_call();
        return;
    };
    let counts = signed_counts(usage);
    let fields = target.metadata().fields();
    if let Some(kinds) = token_fields(fields) {
        // One record for every kind (the span `#[llm_call]` opens), so readers see the usage
        // change at once rather than kind by kind.
        let values: [(&Field, Option<&dyn Value>); KINDS] =
            std::array::from_fn(|i| (&kinds[i], Some(&counts[i] as &dyn Value)));
        target.record(&fields.value_set(&values));
    } else {
        for (name, count) in CALL_FIELD_NAMES.iter().zip(counts) {
            target.record_one(name, &count);
        }
    }
}

/// Records the model that answered on the current LLM-call span (see [`record_usage`]).
pub fn record_response_model(model: &str) {
    if let Some(target) = CallTarget::find(&CALL_FIELD_NAMES[RESPONSE_MODEL_AT..]) {
        target.record_one(CALL_FIELD_NAMES[RESPONSE_MODEL_AT], &model);
    }
}

/// Records the service tier that served the call (`"flex"`, `"priority"`, …, as the provider
/// spells it) on the current LLM-call span (see [`record_usage`]): for streams, whose chunks say
/// it. The call is priced at that tier's prices.
pub fn record_service_tier(tier: &str) {
    if let Some(target) = CallTarget::find(&[SERVICE_TIER_FIELD]) {
        target.record_one(SERVICE_TIER_FIELD, &tier);
    }
}

/// Records the search context size of the call's web searches (`"low"`, `"medium"`, `"high"`)
/// on the current LLM-call span (see [`record_usage`]): for a body that knows the size its
/// request chose (OpenAI's chat search models take it in the request and do not echo it). The
/// call's searches are priced at that size's price where the model has one.
pub fn record_search_context_size(size: &str) {
    if let Some(target) = CallTarget::find(&[SEARCH_CONTEXT_SIZE_FIELD]) {
        target.record_one(SEARCH_CONTEXT_SIZE_FIELD, &size);
    }
}

/// Records the cost the provider reported for the call on the current LLM-call span (see
/// [`record_usage`]): for streams, whose last chunk says it (OpenRouter's), and for a figure the
/// body reads outside the response's body (a gateway's header: LiteLLM's proxy sends
/// `x-litellm-response-cost`, in US dollars, as decimal text). The layer compares
/// it with the price table's cost of the call and counts a disagreement
/// ([`Diagnostics::reported_cost_mismatches`](crate::Diagnostics::reported_cost_mismatches));
/// the call is still charged at the table's price.
pub fn record_reported_cost(cost: cost_core::Money) {
    if let Some(target) = CallTarget::find(&[REPORTED_COST_FIELD]) {
        target.record_one(REPORTED_COST_FIELD, &tracing::field::display(cost));
    }
}

/// Records on the current LLM-call span (see [`record_usage`]) whether the call runs on a
/// data-residency endpoint: for a body that decides the endpoint itself (a client falling back
/// from the global endpoint to a regional one). The call is priced at the model's factor there,
/// or left unpriced where the price table gives none.
pub fn record_data_residency(data_residency: bool) {
    if let Some(target) = CallTarget::find(&[DATA_RESIDENCY_FIELD]) {
        target.record_one(DATA_RESIDENCY_FIELD, &data_residency);
    }
}

/// The span the streaming functions record on: the current span when it declares the fields,
/// else the nearest LLM-call span above it, which the layer finds.
enum CallTarget {
    Current(Span, &'static Metadata<'static>),
    Enclosing {
        dispatch: tracing::Dispatch,
        id: Id,
        metadata: &'static Metadata<'static>,
    },
}

impl CallTarget {
    /// The target of values of the fields `names`.
    fn find(names: &[&str]) -> Option<CallTarget> {
        let span = Span::current();
        let metadata = span.metadata()?;
        if names
            .iter()
            .any(|name| metadata.fields().field(name).is_some())
        {
            return Some(CallTarget::Current(span, metadata));
        }
        let id = span.id()?;
        // The dispatcher is released before anything is recorded: the layer's warnings about
        // a rejected value would be dropped while it is borrowed.
        tracing::dispatcher::get_default(|dispatch| {
            let locator = dispatch.downcast_ref::<CallLocator>()?;
            let (id, metadata) = (locator.find)(locator, dispatch, &id)?;
            Some(CallTarget::Enclosing {
                dispatch: dispatch.clone(),
                id,
                metadata,
            })
        })
    }

    fn metadata(&self) -> &'static Metadata<'static> {
        match self {
            CallTarget::Current(_, metadata) | CallTarget::Enclosing { metadata, .. } => metadata,
        }
    }

    fn record(&self, values: &tracing::field::ValueSet<'_>) {
        match self {
            CallTarget::Current(span, _) => {
                span.record_all(values);
            }
            CallTarget::Enclosing { dispatch, id, .. } => {
                dispatch.record(id, &tracing::span::Record::new(values));
            }
        }
    }

    /// Records one field, when the span declares it.
    fn record_one(&self, name: &str, value: &dyn Value) {
        let fields = self.metadata().fields();
        if let Some(field) = fields.field(name) {
            self.record(&fields.value_set(&[(&field, Some(value))]));
        }
    }
}

/// Finds the nearest LLM-call span at or above a span, in a subscriber of type `S`: made in
/// `on_layer`, reached through `Dispatch::downcast_ref` (as the budget hook is).
pub(crate) struct CallLocator {
    find: FindCall,
    /// The layer's id: its records in the spans.
    layer: u64,
}

/// Finds the call span at or above the span `id`: its id and metadata.
type FindCall =
    fn(&CallLocator, &tracing::Dispatch, &Id) -> Option<(Id, &'static Metadata<'static>)>;

impl CallLocator {
    /// The locator of the layer `layer` in a subscriber of type `S`.
    pub(crate) fn of<S>(layer: u64) -> CallLocator
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        CallLocator {
            find: find_call_in::<S>,
            layer,
        }
    }
}

fn find_call_in<S>(
    locator: &CallLocator,
    dispatch: &tracing::Dispatch,
    id: &Id,
) -> Option<(Id, &'static Metadata<'static>)>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let call = nearest_call::<S>(dispatch, id, locator.layer)?;
    Some((call.id(), call.metadata()))
}

/// The LLM-call span of the layer `layer` at or above the span `id`, in the subscriber of type
/// `S` that `dispatch` holds: the span itself when it is a call, else the nearest call above it
/// (a span the call's body entered).
pub(crate) fn nearest_call<'a, S>(
    dispatch: &'a tracing::Dispatch,
    id: &Id,
    layer: u64,
) -> Option<SpanRef<'a, S>>
where
    S: Subscriber + for<'b> LookupSpan<'b>,
{
    dispatch
        .downcast_ref::<S>()?
        .span(id)?
        .scope()
        .find(|span| {
            CostRecord::in_span(&span.extensions(), layer)
                .is_some_and(|record| record.scope == Scope::Call)
        })
}
