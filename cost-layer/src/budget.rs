//! Budgets in the layer: spend posted to the budget book at every call's close, alerts sent to
//! handlers and as `WARN` events, and calls refused before they run.
//!
//! Configure them with [`CostLayerBuilder::budgets`](crate::CostLayerBuilder::budgets) (see
//! [`cost_core::budget`] for budgets, windows, thresholds and the TOML format). Reserve before a
//! call with `#[llm_call(model = …, max_output_tokens = N, estimate_input = expr,
//! max_web_searches = S)]`, or without the macro with [`reserve`] (or [`reserve_within`]) from
//! inside the call's span.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cost_core::budget::{
    BudgetAlert, BudgetBook, BudgetExceeded, BudgetScope, CallKeys, CancelledCalls, Reservation,
};
use cost_core::{CallBound, Money, SharedPriceTable};
use tracing::{Dispatch, Span};
use tracing_core::Subscriber;
use tracing_core::span::Id;
use tracing_subscriber::registry::LookupSpan;

use crate::layer::CostLayer;
use crate::record::CostRecord;
use crate::totals::Scope;

/// Per-call budget state kept in the call's record.
#[derive(Default)]
pub(crate) struct CallBudget {
    pub(crate) reservation: Option<Reservation>,
    /// The call's future was dropped before it returned (`#[llm_call]` on an async fn).
    pub(crate) cancelled: bool,
}

/// Marks the call span `id` of the hook's layer cancelled in flight.
type CancelFn = fn(&WithBudget, &Dispatch, &Id);

/// What to reserve for the call span `id` (its keys and worst case), from its model and what
/// it may use at most, or its refusal (an unpriced call where the budgets deny those). `None`
/// when the span holds no call record of the hook's layer.
type PrepareFn = fn(
    &WithBudget,
    &Dispatch,
    &Id,
    &str,
    &CallBound,
) -> Option<Result<(CallKeys, Money), BudgetExceeded>>;

/// Keeps a reservation made for the call span `id` in its record, for its close to settle (a
/// span already closed drops it, which releases it).
type KeepFn = fn(&WithBudget, &Dispatch, &Id, Reservation);

/// What a reservation needs from a layer with budgets, reached from the current dispatcher
/// (`tracing-error`'s `WithContext` pattern): made in `on_layer`, found through
/// `Dispatch::downcast_ref`. Only a layer with budgets answers, so with several `CostLayer`s in
/// one subscriber the outermost one that has budgets reserves. A layer that downcasts cannot
/// reach (one inside `reload::Layer`) is found among the layers registered with the dispatcher
/// (`crate::registered`).
pub(crate) struct WithBudget {
    /// [`prepare_in`] for the subscriber's type.
    prepare: PrepareFn,
    /// [`keep_in`] for the subscriber's type.
    keep: KeepFn,
    /// [`cancel_in`] for the subscriber's type.
    cancel: CancelFn,
    /// The layer's id: its records in the spans.
    layer: u64,
    book: BudgetBook,
    prices: Arc<SharedPriceTable>,
}

impl WithBudget {
    /// The hook of `layer` in a subscriber of type `S`; `None` when it has no budgets.
    pub(crate) fn of<S>(layer: &CostLayer) -> Option<Arc<WithBudget>>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        Some(Arc::new(WithBudget {
            prepare: prepare_in::<S>,
            keep: keep_in::<S>,
            cancel: cancel_in::<S>,
            layer: layer.id,
            book: layer.budgets.clone()?,
            prices: Arc::clone(&layer.prices),
        }))
    }

    /// Reserves for the call span `id` on the caller's thread (a shared budget's round trip
    /// blocking it); `None` when the span holds no call record of this hook's layer.
    fn reserve(
        &self,
        dispatch: &Dispatch,
        id: &Id,
        model: &str,
        bound: &CallBound,
    ) -> Option<Result<(), BudgetExceeded>> {
        let prepared = (self.prepare)(self, dispatch, id, model, bound)?;
        Some(
            prepared
                .and_then(|(keys, worst)| self.book.reserve(&keys, worst))
                .map(|reservation| (self.keep)(self, dispatch, id, reservation)),
        )
    }

    /// [`WithBudget::reserve`], awaiting a shared budget's round trip.
    async fn reserve_async(
        &self,
        dispatch: &Dispatch,
        id: &Id,
        model: &str,
        bound: &CallBound,
    ) -> Option<Result<(), BudgetExceeded>> {
        let (keys, worst) = match (self.prepare)(self, dispatch, id, model, bound)? {
            Ok(prepared) => prepared,
            Err(refused) => return Some(Err(refused)),
        };
        Some(
            self.book
                .reserve_async(&keys, worst)
                .await
                .map(|reservation| (self.keep)(self, dispatch, id, reservation)),
        )
    }
}

fn prepare_in<S>(
    hook: &WithBudget,
    dispatch: &Dispatch,
    id: &Id,
    model: &str,
    bound: &CallBound,
) -> Option<Result<(CallKeys, Money), BudgetExceeded>>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    // Only a call's span holds a reservation (its close settles it).
    let span = crate::call::nearest_call::<S>(dispatch, id, hook.layer)?;
    let (keys, worst) = {
        let extensions = span.extensions();
        let record = CostRecord::in_span(&extensions, hook.layer)?;
        // Worst case: the estimated input, the maximum output and searches of the model the
        // call names, at the service tier (and data residency) the span asks for, each token at
        // the dearest price it could have (`PriceTable::worst_case`: the answer says whether
        // they were text, audio, reasoning or images). A model without a price there cannot be
        // bounded: the book's `unpriced_calls` decides (admitted and reserved at zero, its
        // spend counted as unpriced, or refused).
        let table = hook.prices.current();
        let worst = table.worst_case(model, bound, record.observed.call_terms());
        // Model budgets are kept under the price table's key, as the ledger's model keys are.
        let model_key = worst
            .as_ref()
            .map_or(model, |(entry, _)| entry.key.as_str());
        (
            call_keys(record, Some(&crate::record::intern(model_key))),
            worst.map(|(_, worst)| worst),
        )
    };
    let worst = match worst {
        Ok(worst) => worst,
        Err(_) => {
            if let Err(refused) = hook.book.refuse_unpriced(&keys, model) {
                return Some(Err(refused));
            }
            Money::ZERO
        }
    };
    // Reserved after, without holding the span's data: with shared accounts that is a round
    // trip to the store.
    Some(Ok((keys, worst)))
}

fn keep_in<S>(hook: &WithBudget, dispatch: &Dispatch, id: &Id, reservation: Reservation)
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let Some(span) = crate::call::nearest_call::<S>(dispatch, id, hook.layer) else {
        return;
    };
    if let Some(record) = CostRecord::in_span_mut(&mut span.extensions_mut(), hook.layer) {
        record.extras_mut().budget.reservation = Some(reservation);
    }
}

/// Marks cancelled the call of the span `id`: the span itself, or the nearest call above it
/// (a span the call's body entered, where a returned stream may have been made).
fn cancel_in<S>(hook: &WithBudget, dispatch: &Dispatch, id: &Id)
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let Some(span) = crate::call::nearest_call::<S>(dispatch, id, hook.layer) else {
        return;
    };
    if let Some(record) = CostRecord::in_span_mut(&mut span.extensions_mut(), hook.layer)
        && let Some(extras) = record.extras.as_mut()
        && extras.budget.reservation.is_some()
    {
        extras.budget.cancelled = true;
    }
}

/// A call in flight, for telling a cancelled call from one that returned. `#[llm_call]` makes one
/// for an async fn that reserves; without the macro, make it after [`reserve`] and keep it
/// across the awaits of the request, calling [`CallInFlight::finish`] once the call returned.
/// Dropped without `finish` (the future holding it dropped mid-call: a timeout, an abandoned
/// stream), it marks the call of `span` cancelled, and the call's close settles its reservation
/// as [`CancelledCalls`] says (kept as spent by default).
///
/// ```no_run
/// # async fn send() -> u64 { 0 }
/// async fn chat() -> Result<(), cost_layer::cost_core::budget::BudgetExceeded> {
///     let span = tracing::info_span!("chat", gen_ai.request.model = "gpt-4o",
///         gen_ai.usage.input_tokens = tracing::field::Empty);
///     // Awaited: a shared budget's round trip to its store does not hold the thread.
///     let bound = cost_layer::cost_core::CallBound::tokens(2_000, 1_000);
///     cost_layer::budget::reserve_within_async(&span, "gpt-4o", &bound).await?;
///     let in_flight = cost_layer::budget::CallInFlight::new(&span);
///     let input_tokens = tracing::Instrument::instrument(send(), span.clone()).await;
///     in_flight.finish();
///     span.record("gen_ai.usage.input_tokens", input_tokens);
///     Ok(())
/// }
/// ```
pub struct CallInFlight<'a> {
    span: &'a Span,
    finished: bool,
}

impl<'a> CallInFlight<'a> {
    /// The call of `span` (or, for a span its body entered, the nearest call above it),
    /// started.
    pub fn new(span: &'a Span) -> Self {
        CallInFlight {
            span,
            finished: false,
        }
    }

    /// The call returned.
    pub fn finish(mut self) {
        self.finished = true;
    }
}

impl Drop for CallInFlight<'_> {
    fn drop(&mut self) {
        if !self.finished {
            mark_cancelled(self.span);
        }
    }
}

/// Settles the current call's reservation as that of a call cancelled in flight: for a call
/// that fails after the provider may have done (and billed) its work, such as a client-side
/// timeout or a connection cut mid-answer, which the call's fn returns as an error rather than
/// by being dropped. Call it on that error path of the call's body (an `#[llm_call]` fn, or a
/// span its body entered); at close the reservation is then kept as spent, an upper bound,
/// unless the budgets say `cancelled_calls = "release"`, so a loop that retries timeouts still
/// meets its limit. An error the provider does not bill (a refusal, a rate limit, a bad
/// request) needs nothing: a call that reports no usage is released. A call that reports usage
/// is settled at its cost all the same. Outside a call span, or without budgets, it does
/// nothing.
///
/// ```no_run
/// # #[derive(Debug)] struct Timeout;
/// # impl From<cost_layer::cost_core::budget::BudgetExceeded> for Timeout {
/// #     fn from(_: cost_layer::cost_core::budget::BudgetExceeded) -> Self { Timeout }
/// # }
/// # async fn send() -> Result<cost_layer::cost_core::Usage, Timeout> { Err(Timeout) }
/// #[cost_layer::llm_call(model = "gpt-4o", max_output_tokens = 1_000)]
/// async fn chat() -> Result<cost_layer::cost_core::Usage, Timeout> {
///     send().await.inspect_err(|Timeout| cost_layer::budget::treat_as_cancelled())
/// }
/// ```
pub fn treat_as_cancelled() {
    mark_cancelled(&Span::current());
}

/// A call's return value that may be an error (`#[llm_call(billed_on_err = …)]`).
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`billed_on_err` needs a function that returns `Result<_, E>`, not `{Self}`",
    label = "the predicate is asked about the call's error, and this return type has none"
)]
pub trait CallOutcome {
    /// The error type.
    type Error;
    /// The error, if the call failed.
    fn call_error(&self) -> Option<&Self::Error>;
}

impl<T, E> CallOutcome for Result<T, E> {
    type Error = E;
    fn call_error(&self) -> Option<&E> {
        self.as_ref().err()
    }
}

/// [`treat_as_cancelled`] for the call of `span` when it failed with an error that `billed`
/// says the provider may have billed (`#[llm_call(billed_on_err = …)]`).
#[doc(hidden)]
pub fn settle_err_as_cancelled<R: CallOutcome>(
    span: &Span,
    result: &R,
    billed: impl FnOnce(&R::Error) -> bool,
) {
    if let Some(error) = result.call_error()
        && billed(error)
    {
        mark_cancelled(span);
    }
}

/// Marks the call of `span` cancelled in flight, for its budget settlement at close.
pub(crate) fn mark_cancelled(span: &Span) {
    span.with_subscriber(|(id, dispatch)| {
        if let Some(hook) = dispatch.downcast_ref::<WithBudget>() {
            (hook.cancel)(hook, dispatch, id);
            return;
        }
        for hook in crate::registered::budget_hooks_in(dispatch) {
            (hook.cancel)(&hook, dispatch, id);
        }
    });
}

/// The budget keys of a call. Its strings are the ones the span's attribution and the model's
/// interned name already hold (a thread's budget cache knows the keys of its latest call by
/// their addresses).
fn call_keys(record: &CostRecord, model: Option<&Arc<str>>) -> CallKeys {
    let a = &record.cells.attribution;
    CallKeys {
        call: record
            .call_id()
            .cloned()
            .unwrap_or_else(|| Arc::from("call")),
        agent_run: record.cells.agent_run.clone(),
        session: a.session.clone(),
        user: a.user.clone(),
        org: a.org.clone(),
        feature: a.feature.clone(),
        model: model.cloned(),
    }
}

/// Reserves the worst-case cost of the call whose span is current (estimated input at the
/// input price, or at the audio or image input price when higher, `max_output` at the output price of `model`, or at its audio, reasoning or image
/// prices when those cost more, at the service tier the span has
/// so far: `cost.service_tier`, `#[llm_call(service_tier = …)]`) against every deny budget
/// that applies to it, or refuses it. A call no price bounds (a model the table does not know)
/// is admitted and reserved at zero, or refused where the budgets say `unpriced_calls = "deny"`
/// ([`UnpricedCalls`](cost_core::budget::UnpricedCalls)). The layer settles the reservation at the actual cost when the
/// span closes (or releases it, if the call reported no usage; `#[llm_call]` on an async fn
/// marks a call whose future was dropped mid-call, whose reservation is then kept as spent
/// unless the budgets say `cancelled_calls = "release"`). From a span inside the call's
/// (one its body entered), it reserves for the call. Without budgets configured, or outside a
/// call span, it admits everything. With several `CostLayer`s in the subscriber, the
/// outermost one that has budgets reserves; a layer inside `reload::Layer` reserves too.
pub fn reserve(model: &str, estimated_input: u64, max_output: u64) -> Result<(), BudgetExceeded> {
    reserve_within(model, &CallBound::tokens(estimated_input, max_output))
}

/// [`reserve`] for a call that may also run web searches (`bound.max_web_searches`, Anthropic's
/// `max_uses`): they are reserved at the model's search price on top of the tokens (a model
/// without a search price cannot bound them: they are left out).
pub fn reserve_within(model: &str, bound: &CallBound) -> Result<(), BudgetExceeded> {
    let span = Span::current();
    let Some(id) = span.id() else { return Ok(()) };
    tracing::dispatcher::get_default(|dispatch| {
        let reserve = |hook: &WithBudget| hook.reserve(dispatch, &id, model, bound);
        if let Some(hook) = dispatch.downcast_ref::<WithBudget>() {
            return reserve(hook).unwrap_or(Ok(()));
        }
        // No layer with budgets reachable by downcast: one inside `reload::Layer`, if any, is
        // registered with the dispatcher.
        crate::registered::budget_hooks_in(dispatch)
            .iter()
            .find_map(|hook| reserve(hook))
            .unwrap_or(Ok(()))
    })
}

/// [`reserve_within`] for the call of `span` (or, for a span its body entered, the nearest call
/// above it) from an async fn: a shared budget's round trip to its store is awaited, so the
/// executor's thread runs other tasks meanwhile instead of waiting with it (still at most the
/// store's reservation timeout). `#[llm_call]` on an async fn reserves this way. Dropped
/// before it is ready (a timeout around the call), what it booked is released.
pub async fn reserve_within_async(
    span: &Span,
    model: &str,
    bound: &CallBound,
) -> Result<(), BudgetExceeded> {
    let Some((id, dispatch)) =
        span.with_subscriber(|(id, dispatch)| (id.clone(), dispatch.clone()))
    else {
        return Ok(());
    };
    if let Some(hook) = dispatch.downcast_ref::<WithBudget>() {
        return hook
            .reserve_async(&dispatch, &id, model, bound)
            .await
            .unwrap_or(Ok(()));
    }
    // As `reserve_within`: a layer inside `reload::Layer`, found among those registered.
    for hook in crate::registered::budget_hooks_in(&dispatch) {
        if let Some(answer) = hook.reserve_async(&dispatch, &id, model, bound).await {
            return answer;
        }
    }
    Ok(())
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A process-unique id for a call or an agent run (lifetime budget accounts).
pub(crate) fn next_id(prefix: &str) -> Arc<str> {
    Arc::from(format!(
        "{prefix}-{}",
        NEXT_ID.fetch_add(1, Ordering::Relaxed)
    ))
}

impl CostLayer {
    /// Posts a closed call to the budgets and reports the alerts. `cost` is `None` for a call
    /// that reported no usage: its reservation is released, or kept as spent when the call was
    /// cancelled in flight and the book holds such calls. A call that reserved nothing is
    /// charged: when it spent under a deny budget and is the first such call, that budget's
    /// name is returned, to be warned about once the span's data is released.
    pub(crate) fn settle_budget(
        &self,
        record: &mut CostRecord,
        model: &Arc<str>,
        cost: Option<Money>,
    ) -> Option<String> {
        let Some(book) = &self.budgets else {
            return None;
        };
        let mut unchecked = None;
        let (reservation, cancelled) = match record.extras.as_mut() {
            Some(extras) => (extras.budget.reservation.take(), extras.budget.cancelled),
            None => (None, false),
        };
        let alerts = match reservation {
            Some(reservation) => {
                let kept_as_spent = cost.is_none()
                    && cancelled
                    && book.config().cancelled_calls == CancelledCalls::Hold;
                let cost = match cost {
                    Some(cost) => cost,
                    None if kept_as_spent => reservation.amount(),
                    None => Money::ZERO,
                };
                reservation.settle(cost)
            }
            None => {
                let keys = call_keys(record, Some(model));
                let spent = cost.unwrap_or(Money::ZERO);
                if spent > Money::ZERO
                    && let Some(budget) = book.deny_budget_for(&keys)
                    && self.ledger.diagnostics.count_unchecked_call()
                {
                    unchecked = Some(budget.name.clone());
                }
                book.charge(&keys, spent)
            }
        };
        if let Some(call) = record.call_id() {
            book.close_span(BudgetScope::Call, call);
        }
        if !alerts.is_empty() {
            record.extras_mut().pending_alerts.extend(alerts);
        }
        unchecked
    }

    /// The warning about the first call that spent under a deny budget without reserving.
    #[cold]
    pub(crate) fn warn_unchecked_call(span_name: &'static str, budget: &str) {
        tracing::warn!(
            target: "cost_layer::budget",
            call = span_name,
            budget = budget,
            "the LLM call `{span_name}` reserved nothing before it ran, so the deny budget `{budget}` (and any other that applies) could not stop it, even over its limit: its cost was counted after it ran. Give its `#[llm_call]` `max_output_tokens = …` (and `estimate_input = …`), or call `cost_layer::budget::reserve` in its span, so its worst case is checked first. Further such calls are only counted in Diagnostics::calls_unchecked_by_budgets"
        );
    }

    /// Frees the lifetime accounts of a closing agent run or session.
    pub(crate) fn close_budget_span(&self, scope: Scope, record: &CostRecord) {
        let Some(book) = &self.budgets else { return };
        match scope {
            Scope::Agent => {
                if let Some(run) = &record.cells.agent_run {
                    book.close_span(BudgetScope::Agent, run);
                }
            }
            Scope::Session => {
                if let Some(session) = &record.observed.attribution.session {
                    book.close_span(BudgetScope::Session, session);
                }
            }
            _ => {}
        }
    }

    /// Sends alerts to the handlers (panics contained) and as `WARN` events.
    pub(crate) fn report_alerts(&self, alerts: &[BudgetAlert]) {
        for alert in alerts {
            for handler in &self.alert_handlers {
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(alert)))
                    .is_err()
                {
                    crate::ledger::DiagnosticCounters::bump(
                        &self.ledger.diagnostics.callback_panics,
                    );
                }
            }
            match alert {
                BudgetAlert::Threshold {
                    budget,
                    scope,
                    key,
                    threshold,
                    spent,
                    limit,
                } => tracing::warn!(
                    target: "cost_layer::budget",
                    budget = budget.as_str(),
                    scope,
                    key = key.as_str(),
                    threshold = f64::from(*threshold) / 1e6,
                    spent_usd = spent.to_f64(),
                    limit_usd = limit.to_f64(),
                    "{alert}"
                ),
                other => tracing::warn!(target: "cost_layer::budget", "{other}"),
            }
        }
    }
}
