//! The `tracing_subscriber::Layer` that prices LLM calls and rolls their cost up the span tree.

use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use cost_core::{PriceTable, SharedPriceTable, TokenKind};
use tracing_core::span::{Attributes, Id, Record};
use tracing_core::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::{LookupSpan, SpanRef};

use crate::attribution::UserIds;
use crate::budget::{WithBudget, next_id};
use crate::builder::{AlertHandler, CloseCallback, CostLayerBuilder, TreeSink};
use crate::call::CallLocator;
use crate::fields::{FieldNames, FieldRole};
use crate::ledger::{AttributionCells, DiagnosticCounters, Ledger, LedgerInner};
use crate::live_records::{LiveRecords, Removed};
use crate::pricing::{ModelSlot, with_model_slot};
use crate::record::{
    CallsiteInfo, CostRecord, FieldReader, Observed, PlainCallsites, RecordExtras, callsite_info,
};
use crate::totals::{Attribution, Scope, Totals};
use crate::tree::{CostTree, CostTreeNode};

/// The closing span's totals, given to the callbacks registered on the builder.
#[derive(Debug)]
pub struct SpanClose<'a> {
    /// The span's id (valid only during the callback: the registry recycles ids).
    pub id: &'a Id,
    /// The span's name.
    pub name: &'static str,
    /// The span's target.
    pub target: &'static str,
    /// The span's scope.
    pub scope: Scope,
    /// Its attribution.
    pub attribution: &'a Attribution,
    /// Totals of its whole subtree.
    pub totals: &'a Totals,
    /// What an LLM-call span named (model, provider, operation); `None` for other scopes.
    pub call: Option<&'a CallDetails>,
}

/// What a closing LLM-call span named, for callbacks and metric exporters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallDetails {
    /// `gen_ai.request.model` (or `llm.model`), as recorded.
    pub request_model: Option<Arc<str>>,
    /// `gen_ai.response.model`, as recorded.
    pub response_model: Option<Arc<str>>,
    /// The model's ledger key: the price table's entry when priced, else the name as recorded
    /// (`unknown` when none was).
    pub model: Arc<str>,
    /// `gen_ai.provider.name`, as recorded.
    pub provider: Option<Arc<str>>,
    /// `gen_ai.operation.name`, as recorded.
    pub operation: Option<Arc<str>>,
    /// The service tier it ran at (`cost.service_tier`).
    pub service_tier: cost_core::ServiceTier,
    /// The search context size of its web searches (`cost.search_context_size`), when stated.
    pub search_context_size: Option<cost_core::SearchContextSize>,
    /// What its provider said it cost (`cost.reported_cost_usd`), when the answer said: compare
    /// with [`own`](Self::own)'s cost ([`cost_core::Money::agrees_with_reported`]).
    pub reported_cost: Option<cost_core::Money>,
    /// What this call itself was charged; `None` when it charged nothing (no usage, or usage
    /// ignored because calls under it were charged already). [`SpanClose::totals`] also
    /// covers calls nested under it.
    pub own: Option<Totals>,
}

/// The layer. Build it with [`CostLayer::builder`]; it comes with the [`Ledger`] handle that
/// reads its totals.
///
/// ```
/// use cost_layer::{CostLayer, cost_core::PriceTable};
/// use tracing_subscriber::prelude::*;
///
/// let (cost, ledger) = CostLayer::builder().prices(PriceTable::default()).build();
/// let subscriber = tracing_subscriber::registry().with(cost);
/// tracing::subscriber::with_default(subscriber, || {
///     let session = tracing::info_span!("chat", session.id = "s-42");
///     let _in = session.enter();
///     tracing::info_span!(
///         "llm",
///         gen_ai.request.model = "gpt-4o",
///         gen_ai.usage.input_tokens = 1000,
///         gen_ai.usage.output_tokens = 100,
///     )
///     .in_scope(|| {});
/// });
/// assert_eq!(ledger.session("s-42").map(|t| t.total_usd().to_string()), Some("0.0035".into()));
/// ```
pub struct CostLayer {
    pub(crate) id: u64,
    pub(crate) names: FieldNames,
    pub(crate) prices: Arc<SharedPriceTable>,
    pub(crate) ledger: Arc<LedgerInner>,
    pub(crate) user_ids: Arc<UserIds>,
    pub(crate) callbacks: Vec<CloseCallback>,
    pub(crate) close_events: bool,
    pub(crate) tree_sink: Option<TreeSink>,
    pub(crate) empty: Arc<AttributionCells>,
    pub(crate) budgets: Option<cost_core::budget::BudgetBook>,
    pub(crate) alert_handlers: Vec<AlertHandler>,
    budget_hook: Option<Arc<WithBudget>>,
    /// Finds the call span above a span the body of a call entered (see [`crate::record_usage`]).
    call_locator: Option<CallLocator>,
    /// Causes warned about per callsite (its metadata's address): fields given bad values,
    /// calls rejected for invalid usage (each once).
    warned: Mutex<HashSet<(usize, &'static str)>>,
    /// Callbacks receive each call's details.
    reports_calls: bool,
    /// Budgets or call reports need each call's model key (a call sink borrows it).
    keep_model_key: bool,
    call_sink: Option<Box<dyn crate::CallSink>>,
    /// A drop by the sink was warned about.
    warned_drop: std::sync::atomic::AtomicBool,
    /// Days after which a price is reported as stale; `None`: never.
    price_age_limit: Option<u32>,
    /// A call the table cannot price is charged the cost its provider reported, when it did.
    charge_reported_cost: bool,
    /// Callsites whose spans get no record.
    plain_callsites: PlainCallsites,
    /// The open spans holding a record of this layer: every other span's records and close
    /// return without looking the span up.
    live_records: LiveRecords,
    /// Stale prices seen already: entry keys with their dates (each counted once), and the
    /// dates (each warned about once).
    stale_reported: Mutex<StaleSeen>,
    /// Models a disagreeing reported cost was warned about (each once).
    reported_mismatch_warned: Mutex<HashSet<Arc<str>>>,
    /// Models an unpriced call was warned about, with its cause's bit (each once).
    unpriced_warned: Mutex<HashSet<(Arc<str>, u32)>>,
    /// User ids hashed with this process's random key where that splits a user apart: what
    /// it breaks, and the warning given at the first user id.
    random_user_key: Option<RandomUserKey>,
    /// Cost attributes on the spans `tracing-opentelemetry` exports.
    #[cfg(feature = "otel")]
    pub(crate) otel_spans: Option<crate::otel::SpanExport>,
}

/// User ids hashed with a random key of the process's own, where a user's key must mean the
/// same in every process: a shared per-user budget, or stored calls.
struct RandomUserKey {
    /// What a key that changes with the process breaks.
    consequence: String,
    /// Due at the first user id, given at the next close.
    warning: crate::ledger::OnceWarning,
}

impl RandomUserKey {
    /// `None` unless the user-id key is random (`given` is `None`) and keys must match across
    /// processes.
    fn of(
        given: Option<&UserIds>,
        budgets: Option<&cost_core::budget::BudgetBook>,
        stores_calls: bool,
    ) -> Option<Self> {
        if given.is_some() {
            return None;
        }
        let shared_user_budget = budgets
            .filter(|book| book.shares_accounts())
            .and_then(|book| {
                book.config().budgets.iter().find(|budget| {
                    budget.scope == cost_core::budget::BudgetScope::User
                        && budget.uses_shared_accounts()
                })
            });
        let consequence = match (shared_user_budget, stores_calls) {
            (Some(budget), _) => format!(
                "the shared budget `{}` keeps each process's spend per user apart, so its limit is not enforced across processes, nor across a restart",
                budget.name
            ),
            (None, true) => "the stored calls of one user do not group together in reports across processes and restarts".to_owned(),
            (None, false) => return None,
        };
        Some(RandomUserKey {
            consequence,
            warning: crate::ledger::OnceWarning::default(),
        })
    }
}

static NEXT_LAYER_ID: AtomicU64 = AtomicU64::new(1);

/// Stale prices a layer has charged calls at.
#[derive(Default)]
struct StaleSeen {
    /// Entry keys with their dates: each counted once.
    prices: HashSet<(String, String)>,
    /// Their dates: each warned about once.
    dates: HashSet<String>,
}

/// What a call sink is handed of a closing call's record (borrowed field by field: its totals
/// may be borrowed apart).
struct ClosingCall<'a> {
    id: &'a Id,
    name: &'static str,
    started: Option<u64>,
    parent: Option<&'a Id>,
    observed: &'a Observed,
    attribution: &'a Attribution,
}

/// What charging a closing call gave.
struct Charged {
    /// Its model's ledger key, when budgets or reports need it.
    model: Option<Arc<str>>,
    /// Its own totals when they differ from its record's (spans nested under it) or reports
    /// need a copy; else they are its record's totals. (Boxed: this is moved on every close,
    /// and is `None` on the common path.)
    own: Option<Box<Totals>>,
    /// What it was the first of, to be warned about (`None` on the common path).
    warnings: Option<Box<FirstWarnings>>,
}

/// What a charged call was the first of, to be warned about once it closed.
#[derive(Default)]
struct FirstWarnings {
    /// The price it was charged at, when that price is stale and this is the first call the
    /// layer charged at it.
    stale: Option<Box<cost_core::StalePrice>>,
    /// The call sink refused it, the first time one did.
    call_dropped: bool,
    /// Its cost disagreed with the one its provider reported, the first time a call of its
    /// model's did.
    reported_mismatch: Option<Box<ReportedMismatch>>,
    /// What pricing it found wrong with it.
    pricing: Option<Box<PricingWarning>>,
}

/// What pricing a call found wrong with it, to be warned about.
enum PricingWarning {
    /// It was unpriced, the first call of its model's that was.
    Unpriced(UnpricedCall),
    /// It was rejected for usage whose counts contradict each other or are absurd (values
    /// that were not counts at all are warned about as they are recorded): warned about when
    /// it is the first such call of its callsite.
    InvalidUsage(cost_core::UsageError),
}

impl FirstWarnings {
    /// Warns about each (`metadata`: the call's callsite).
    #[cold]
    fn emit(&self, layer: &CostLayer, metadata: &'static tracing_core::Metadata<'static>) {
        if let Some(PricingWarning::InvalidUsage(error)) = self.pricing.as_deref()
            && layer.first_at_callsite(metadata, INVALID_USAGE_KEY)
        {
            let span = metadata.name();
            tracing::warn!(
                target: "cost_layer",
                span,
                "a call on span `{span}` was not charged, its usage is invalid: {error}. Its tokens are in no total (Totals::rejected_calls counts it); further calls of this callsite with invalid usage are only counted in Diagnostics::rejected_calls"
            );
        }
        if let Some(stale) = &self.stale {
            CostLayer::warn_stale_price(stale);
        }
        if let Some(mismatch) = &self.reported_mismatch {
            tracing::warn!(
                target: "cost_layer::prices",
                model = %mismatch.model,
                cost_usd = %mismatch.computed,
                reported_cost_usd = %mismatch.reported,
                "a call of {} cost ${} by the price table but ${} by its provider's own figure: the table's price for the model is likely out of date (or the provider charges a fee on top). The call is charged at the table's price; further disagreements of this model are only counted in Diagnostics::reported_cost_mismatches",
                mismatch.model,
                mismatch.computed,
                mismatch.reported
            );
        }
        if let Some(PricingWarning::Unpriced(unpriced)) = self.pricing.as_deref() {
            CostLayer::warn_unpriced_call(unpriced);
        }
        if self.call_dropped {
            tracing::warn!(
                target: "cost_layer",
                "the call sink refused a call (its queue is full, or its writer has stopped): closed calls are dropped from the durable ledger (they are still in the in-process ledger); further drops are only counted in Diagnostics::records_dropped"
            );
        }
    }

    /// Any of them, boxed; `None` when there is none.
    fn any(self) -> Option<Box<Self>> {
        (self.stale.is_some()
            || self.pricing.is_some()
            || self.call_dropped
            || self.reported_mismatch.is_some())
        .then(|| Box::new(self))
    }
}

/// The first unpriced call of a model.
struct UnpricedCall {
    /// The model's ledger key.
    model: Arc<str>,
    /// Why the table could not price it ([`cost_core::QuoteError`]'s text).
    reason: String,
    /// The cost its provider reported, which the layer was not told to charge.
    reported: Option<cost_core::Money>,
}

/// A call whose price-table cost disagrees with the cost its provider reported.
struct ReportedMismatch {
    /// The model's ledger key.
    model: Arc<str>,
    /// The price table's cost.
    computed: cost_core::Money,
    /// The provider's.
    reported: cost_core::Money,
}

/// The cause a callsite's calls rejected for invalid usage are warned about under (beside its
/// fields' names: no field is named so).
const INVALID_USAGE_KEY: &str = "(invalid usage)";

/// Models whose disagreeing reported costs, or models and causes of unpriced calls, warned
/// about, at most (each): further ones are only counted.
const MODEL_WARNINGS: usize = 1024;

/// Adds `key` (a model, with the cause where it has one) to those `warned` about; true when it
/// was not among them yet and the set was not full.
fn first_warning_of<K: std::hash::Hash + Eq>(warned: &Mutex<HashSet<K>>, key: K) -> bool {
    warned
        .lock()
        .is_ok_and(|mut warned| warned.len() < MODEL_WARNINGS && warned.insert(key))
}

/// Why a call was unpriced, as a bit of a thread's [`ModelSlot::unpriced_reported`]: each
/// cause of each model is warned about once. `refusal`: `None` when the table has no entry for
/// the name; else why the entry refused the call (`None` if it did not).
fn unpriced_cause_bit(refusal: Option<Option<&cost_core::QuoteError>>) -> u32 {
    use cost_core::{CostError, QuoteError};
    const _: () = assert!(cost_core::TokenKind::ALL.len() <= 16);
    let Some(refusal) = refusal else {
        return 1 << 16;
    };
    let position = match refusal {
        // A kind of token, search or tool use the model has no price for: one bit per kind.
        Some(QuoteError::Cost {
            source: CostError::MissingPrice { kind, .. },
            ..
        }) => *kind as u32,
        Some(QuoteError::Cost {
            source: CostError::NoDataResidencyPrice,
            ..
        }) => 17,
        Some(QuoteError::Cost {
            source: CostError::NoFastModePrice,
            ..
        }) => 18,
        _ => 19,
    };
    1 << position
}

impl CostLayer {
    /// A builder with the embedded price table and default settings.
    pub fn builder() -> CostLayerBuilder {
        CostLayerBuilder::default()
    }

    /// This layer's id, unique in the process: it names the layer's records when several
    /// `CostLayer`s share a subscriber ([`CostRecord::of_layer`]); its ledger has it too
    /// ([`Ledger::layer_id`]).
    pub fn id(&self) -> u64 {
        self.id
    }

    pub(crate) fn from_parts(builder: CostLayerBuilder) -> (CostLayer, Ledger) {
        let CostLayerBuilder {
            names,
            prices,
            callbacks,
            retention,
            user_ids,
            combinations,
            close_events,
            tree_sink,
            clock,
            budgets,
            alert_handlers,
            call_sink,
            price_age_limit,
            charge_reported_cost,
            live_record_bits,
            #[cfg(feature = "otel")]
            otel_spans,
        } = builder;
        let reports_calls = !callbacks.is_empty();
        let keep_model_key = budgets.is_some() || reports_calls;
        if call_sink.is_some() {
            // The monotonic clock calibrates on its first read: here, not in a span's callback.
            std::sync::LazyLock::force(&crate::sink::CALL_CLOCK);
        }
        let ledger = Arc::new(LedgerInner::new(combinations, retention, clock));
        let random_user_key =
            RandomUserKey::of(user_ids.as_ref(), budgets.as_ref(), call_sink.is_some());
        let user_ids = Arc::new(user_ids.unwrap_or_else(UserIds::random));
        let empty = Arc::new(ledger.cells_for(Attribution::default()));
        let layer_id = NEXT_LAYER_ID.fetch_add(1, Ordering::Relaxed);
        let layer = CostLayer {
            id: layer_id,
            names,
            prices,
            ledger: Arc::clone(&ledger),
            user_ids: Arc::clone(&user_ids),
            callbacks,
            close_events,
            tree_sink,
            empty,
            budgets,
            alert_handlers,
            budget_hook: None,
            call_locator: None,
            warned: Mutex::new(HashSet::new()),
            reports_calls,
            keep_model_key,
            call_sink,
            warned_drop: std::sync::atomic::AtomicBool::new(false),
            price_age_limit,
            charge_reported_cost,
            stale_reported: Mutex::default(),
            reported_mismatch_warned: Mutex::default(),
            unpriced_warned: Mutex::default(),
            plain_callsites: PlainCallsites::new(),
            live_records: LiveRecords::with_bits(live_record_bits),
            random_user_key,
            #[cfg(feature = "otel")]
            otel_spans: otel_spans.then(crate::otel::SpanExport::default),
        };
        (
            layer,
            Ledger {
                inner: ledger,
                user_ids,
                layer_id,
            },
        )
    }

    /// What `span` inherits from its ancestors (excluding it): the id of the nearest one with
    /// a record (its totals roll up there), and the attribution cells of the nearest one that
    /// reads fields. Plain spans have records only when a cost tree is drawn; skipping them for
    /// the attribution gives every span the same attribution either way (a plain span's copy
    /// of its parent's cells misses a `follows_from` link made on the parent after it opened).
    fn inherited<S>(&self, span: &SpanRef<'_, S>) -> Option<(Id, Arc<AttributionCells>)>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        // `parent()` looks each ancestor up once (`scope()` would look `span` up again).
        let mut next = span.parent();
        let mut nearest = None;
        while let Some(ancestor) = next {
            if let Some(record) = CostRecord::in_span(&ancestor.extensions(), self.id) {
                let nearest = nearest.get_or_insert_with(|| ancestor.id());
                if record.info.relevant {
                    return Some((nearest.clone(), Arc::clone(&record.cells)));
                }
            }
            next = ancestor.parent();
        }
        // Plain spans get a record only under one that reads fields, so this is not reached
        // with a record found; were it, the span would still roll up, unattributed.
        nearest.map(|id| (id, Arc::clone(&self.empty)))
    }

    /// The attribution a span following `cause` takes: `cause`'s own, or when this layer keeps
    /// no record of it that reads fields (a plain span), its ancestors'.
    fn attribution_of<S>(&self, cause: &SpanRef<'_, S>) -> Option<Arc<AttributionCells>>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let own = CostRecord::in_span(&cause.extensions(), self.id)
            .filter(|record| record.info.relevant)
            .map(|record| Arc::clone(&record.cells));
        own.or_else(|| self.inherited(cause).map(|(_, cells)| cells))
    }

    /// The attribution of a span: its own keys over the inherited ones.
    fn attribute(
        &self,
        inherited: &Arc<AttributionCells>,
        observed: &Observed,
    ) -> Arc<AttributionCells> {
        let own = &observed.attribution;
        if !own.any() {
            return Arc::clone(inherited);
        }
        let base = &inherited.attribution;
        let attribution = Attribution {
            session: own.session.clone().or_else(|| base.session.clone()),
            agent: own.agent.clone().or_else(|| base.agent.clone()),
            user: own
                .raw_user
                .as_deref()
                .map(|raw| {
                    if let Some(random) = &self.random_user_key {
                        random.warning.make_due();
                    }
                    self.user_ids.key_of(raw)
                })
                .or_else(|| base.user.clone()),
            org: own.org.clone().or_else(|| base.org.clone()),
            feature: own.feature.clone().or_else(|| base.feature.clone()),
        };
        Arc::new(self.ledger.cells_for(attribution))
    }

    fn scope_of(info: &CallsiteInfo, observed: &Observed) -> Scope {
        if let Some(scope) = observed.scope {
            scope
        } else if observed.invoke_agent {
            Scope::Agent
        } else if info.declares_usage {
            Scope::Call
        } else if info.declares_session {
            Scope::Session
        } else if info.declares_agent {
            Scope::Agent
        } else {
            Scope::Span
        }
    }

    /// Counts rejected values; returns the fields not yet warned about at this callsite.
    fn count_rejected(
        &self,
        metadata: &'static tracing_core::Metadata<'static>,
        rejected: &mut Vec<&'static str>,
    ) -> Vec<&'static str> {
        let mut first = Vec::new();
        if rejected.is_empty() {
            return first;
        }
        for field in rejected.drain(..) {
            DiagnosticCounters::bump(&self.ledger.diagnostics.bad_field_values);
            if self.first_at_callsite(metadata, field) {
                first.push(field);
            }
        }
        first
    }

    /// Adds the callsite's `cause` (a field's name, or [`INVALID_USAGE_KEY`]) to those warned
    /// about; true when it was not among them yet.
    fn first_at_callsite(
        &self,
        metadata: &'static tracing_core::Metadata<'static>,
        cause: &'static str,
    ) -> bool {
        let key = (metadata as *const _ as usize, cause);
        self.warned
            .lock()
            .map(|mut warned| warned.insert(key))
            .unwrap_or(false)
    }

    /// Warns about rejected values, saying what each field expects and what became of the
    /// call. Called where an event can be dispatched: not from `on_new_span`, which runs while
    /// the dispatcher is busy creating the span (an event sent from there would be dropped), so
    /// warnings found there wait for `on_record` or `on_close`.
    fn warn_rejected(
        &self,
        metadata: &'static tracing_core::Metadata<'static>,
        fields: &[&'static str],
    ) {
        for field in fields {
            let (expected, outcome) = match self.names.role(field) {
                Some(FieldRole::Tokens(kind)) if kind.is_per_use() => (
                    match kind {
                        TokenKind::WebSearchRequests => {
                            "search counts must be non-negative integers (u64, i64 or numeric strings)"
                        }
                        TokenKind::FileSearchCalls => {
                            "file search call counts must be non-negative integers (u64, i64 or numeric strings)"
                        }
                        TokenKind::ImageGenerationCalls => {
                            "generated image counts must be non-negative integers (u64, i64 or numeric strings)"
                        }
                        _ => {
                            "code interpreter session counts must be non-negative integers (u64, i64 or numeric strings)"
                        }
                    },
                    "the call will not be charged unless a valid value overwrites it",
                ),
                Some(FieldRole::Tokens(_)) => (
                    "token counts must be non-negative integers (u64, i64 or numeric strings)",
                    "the call will not be charged unless a valid value overwrites it",
                ),
                Some(FieldRole::ServiceTier) => (
                    &*format!("a service tier is {}", cost_core::ServiceTier::NAMES),
                    "the value is ignored: the call is priced at the tier recorded before it (standard when none was)",
                ),
                Some(FieldRole::DataResidency) => (
                    "data residency is `true` or `false`",
                    "the value is ignored: the call is priced as the value before it said (not on a data-residency endpoint when none did)",
                ),
                Some(FieldRole::SearchContextSize) => (
                    "a search context size is `low`, `medium` or `high`",
                    "the value is ignored: the call's searches are priced at the size recorded before it (medium when none was)",
                ),
                Some(FieldRole::CacheHit) => (
                    "a cache hit is `true` or `false`",
                    "the value is ignored: the call is charged as the value before it said (not a cache hit when none did)",
                ),
                Some(FieldRole::Scope) => (
                    "a scope is `session`, `agent` or `call`",
                    "the value is ignored",
                ),
                Some(FieldRole::ReportedCost) => (
                    "a reported cost is a non-negative amount of US dollars (a decimal string, an integer or a float)",
                    "the value is ignored: the call's cost is compared with the value before it (with none when none was)",
                ),
                _ => ("ids and names are text", "the value is ignored"),
            };
            tracing::warn!(
                target: "cost_layer",
                span = metadata.name(),
                field,
                "rejected a value of `{field}` on span `{}`: {expected}; {outcome}. Further rejections at this callsite are only counted.",
                metadata.name()
            );
        }
    }

    /// Prices a closing call, posts it to the ledger, adds it to the record's totals and hands
    /// it to the call sink (borrowing the model's key from this thread's cache: no reference
    /// count is touched); `None` when it charged nothing. A call with no calls under it is
    /// priced straight into its record (no copy of its totals).
    #[inline(always)]
    fn charge(&self, record: &mut CostRecord, id: &Id, span_name: &'static str) -> Option<Charged> {
        let observed = &record.observed;
        let subtree_charged = record.totals.calls_closed();
        if !observed.has_usage() && !observed.cache_hit {
            if subtree_charged == 0 {
                DiagnosticCounters::bump(&self.ledger.diagnostics.calls_without_usage);
            }
            return None;
        }
        if subtree_charged > 0 {
            // Aggregate usage recorded on a span whose calls were charged already.
            DiagnosticCounters::bump(&self.ledger.diagnostics.aggregate_usage_ignored);
            return None;
        }
        let table = self.prices.current();
        let name = observed.model_or_unknown();
        let leaf = record.children == 0;
        let mut nested: Option<Box<Totals>> = None;
        let mut warnings = FirstWarnings::default();
        let model = with_model_slot(self.id, self.price_age_limit, &table, name, |slot| {
            // A call with spans under it that charged nothing (tools, say): its totals hold
            // their agent runs, so its own are priced apart and added.
            let own = if leaf {
                &mut record.totals
            } else {
                nested.insert(Box::default())
            };
            warnings.pricing = self.price_call(&record.observed, &table, slot, true, own);
            self.ledger
                .post(&record.cells, &slot.key, slot.cell(&self.ledger), own);
            let priced = own.rejected_calls == 0;
            if let Some(reported) = record.observed.reported_cost {
                warnings.reported_mismatch = self.compare_reported_cost(own, reported, &slot.key);
            }
            if let Some(sink) = &self.call_sink {
                let closing = ClosingCall {
                    id,
                    name: span_name,
                    started: record.started,
                    parent: record.parent.as_ref(),
                    observed: &record.observed,
                    attribution: &record.cells.attribution,
                };
                let own = nested.as_deref().unwrap_or(&record.totals);
                warnings.call_dropped = self.submit_call(sink.as_ref(), &closing, &slot.key, own);
            }
            if priced {
                warnings.stale = self.first_charge_at_stale_price(slot);
            }
            self.keep_model_key.then(|| Arc::clone(&slot.key))
        });
        let own = match nested {
            Some(own) => {
                record.totals.add(&own);
                Some(own)
            }
            None => self.reports_calls.then(|| Box::new(record.totals.clone())),
        };
        Some(Charged {
            model,
            own,
            warnings: warnings.any(),
        })
    }

    /// Rejects a call whose usage is invalid (see [`CostLayer::price_call`]); returns why, to be
    /// warned about, when its counts were counts.
    #[cold]
    fn reject_call(
        &self,
        observed: &Observed,
        count: bool,
        own: &mut Totals,
    ) -> Option<Box<PricingWarning>> {
        own.rejected_calls = 1;
        if !count {
            return None;
        }
        DiagnosticCounters::bump(&self.ledger.diagnostics.rejected_calls);
        if observed.usage_invalid != 0 {
            // Values that were not counts: warned about as they were recorded.
            return None;
        }
        let error = observed.usage.validate().err()?;
        Some(Box::new(PricingWarning::InvalidUsage(error)))
    }

    /// An unpriced call, when it is the first this layer charged (from any thread) of the slot's
    /// model unpriced for its cause: to be warned about, with why the table could not price it.
    /// Each thread asks the layer once per model and cause.
    #[cold]
    fn first_unpriced_call(
        &self,
        observed: &Observed,
        table: &PriceTable,
        slot: &ModelSlot,
    ) -> Option<Box<PricingWarning>> {
        // Why the model's entry refused the call; `None` when the table has no entry for it.
        let refusal = slot.resolution.map(|resolution| {
            table
                .quote_resolved(resolution, &observed.usage, observed.call_terms())
                .err()
        });
        let cause = unpriced_cause_bit(refusal.as_ref().map(Option::as_ref));
        let seen = slot.unpriced_reported.get();
        if seen & cause != 0 {
            return None;
        }
        slot.unpriced_reported.set(seen | cause);
        if !first_warning_of(&self.unpriced_warned, (Arc::clone(&slot.key), cause)) {
            return None;
        }
        let reason = match (observed.model(), refusal) {
            (None, _) => {
                "the call recorded no model (`cost_layer::fields` lists the names read as one)"
                    .to_owned()
            }
            (Some(_), Some(Some(refusal))) => refusal.to_string(),
            (Some(_), Some(None)) => {
                "the table had no price for it when the call closed".to_owned()
            }
            // Resolved again by name: the error then names the known models near it.
            (Some(name), None) => table
                .resolve(name)
                .err()
                .map_or_else(|| "its model has no price".to_owned(), |e| e.to_string()),
        };
        Some(Box::new(PricingWarning::Unpriced(UnpricedCall {
            model: Arc::clone(&slot.key),
            reason,
            reported: observed.reported_cost,
        })))
    }

    /// Compares a priced call's cost (`own`) with the one its provider reported: a
    /// disagreement beyond rounding ([`cost_core::Money::agrees_with_reported`]) is counted,
    /// and returned to be warned about when it is the first of its model's. An unpriced or
    /// rejected call has no cost to compare, and one charged at the reported cost no other.
    #[cold]
    fn compare_reported_cost(
        &self,
        own: &Totals,
        reported: cost_core::Money,
        model: &Arc<str>,
    ) -> Option<Box<ReportedMismatch>> {
        if own.llm_calls != 1
            || own.unpriced_calls != 0
            || own.rejected_calls != 0
            || own.provider_reported_calls != 0
        {
            return None;
        }
        let computed = own.total_usd();
        if computed.agrees_with_reported(reported) {
            return None;
        }
        DiagnosticCounters::bump(&self.ledger.diagnostics.reported_cost_mismatches);
        first_warning_of(&self.reported_mismatch_warned, Arc::clone(model)).then(|| {
            Box::new(ReportedMismatch {
                model: Arc::clone(model),
                computed,
                reported,
            })
        })
    }

    /// Counts the slot's stale price the first time the layer charges a call at it; returns
    /// it to be warned about when it is also the first of its date. `None` otherwise, or when
    /// the price is not stale. Each thread asks once per slot.
    #[inline]
    fn first_charge_at_stale_price(&self, slot: &ModelSlot) -> Option<Box<cost_core::StalePrice>> {
        let stale = slot.stale.as_deref()?;
        if slot.stale_reported.replace(true) {
            return None;
        }
        self.count_stale_price(stale)
    }

    /// Counts a stale price the first time this layer charges at it (from any thread); returns
    /// it when it is also the first of its date.
    #[cold]
    fn count_stale_price(
        &self,
        stale: &cost_core::StalePrice,
    ) -> Option<Box<cost_core::StalePrice>> {
        let Ok(mut seen) = self.stale_reported.lock() else {
            return None;
        };
        if !seen
            .prices
            .insert((stale.entry.clone(), stale.as_of.clone()))
        {
            return None;
        }
        DiagnosticCounters::bump(&self.ledger.diagnostics.stale_prices);
        seen.dates
            .insert(stale.as_of.clone())
            .then(|| Box::new(stale.clone()))
    }

    /// Prices one call into `own` (zero on entry): priced, unpriced, rejected or answered from
    /// the cache. `count`: count rejected and unpriced calls in the diagnostics (once per call,
    /// when it is charged); it then returns what to warn about: the call was the first unpriced
    /// one of its model, or its usage is invalid.
    fn price_call(
        &self,
        observed: &Observed,
        table: &PriceTable,
        slot: &ModelSlot,
        count: bool,
        own: &mut Totals,
    ) -> Option<Box<PricingWarning>> {
        if observed.usage_invalid != 0 || observed.usage.validate().is_err() {
            return self.reject_call(observed, count, own);
        }
        let quote = slot.resolution.and_then(|r| {
            table
                .quote_resolved(r, &observed.usage, observed.call_terms())
                .ok()
        });
        // Where the table has no price, the provider's own figure, if the layer may charge it.
        let reported = match &quote {
            None if self.charge_reported_cost => observed.reported_cost,
            _ => None,
        };
        if observed.cache_hit {
            own.cache_hits = 1;
            match (&quote, reported) {
                (Some(q), _) => own.cache_hit_savings = q.total(),
                (None, Some(reported)) => own.cache_hit_savings = reported,
                (None, None) => own.unpriced_cache_hits = 1,
            }
            return None;
        }
        own.llm_calls = 1;
        own.usage = observed.usage;
        match (quote, reported) {
            (Some(q), _) => {
                if count && q.priced.service_tier != observed.service_tier {
                    self.ledger.diagnostics.fell_back_to_standard();
                }
                own.cost = q.priced.breakdown;
                own.price_table = Some(Arc::clone(&slot.version));
            }
            (None, Some(reported)) => {
                own.cost.provider_reported = reported;
                own.provider_reported_calls = 1;
            }
            (None, None) => {
                own.unpriced_calls = 1;
                own.unpriced_tokens = observed.usage.total_tokens();
                if count {
                    DiagnosticCounters::bump(&self.ledger.diagnostics.unpriced_calls);
                    return self.first_unpriced_call(observed, table, slot);
                }
            }
        }
        None
    }

    /// The cost attributes of a call whose usage just became complete, or whose price changed
    /// after (`before`: what it depended on before the record; `None` when the span was just
    /// created), for its OpenTelemetry span.
    #[cfg(feature = "otel")]
    fn otel_call_update(
        &self,
        record: &CostRecord,
        before: Option<crate::record::PricingInputs>,
    ) -> Option<Vec<opentelemetry::KeyValue>> {
        let observed = &record.observed;
        // Usage, model, tier or cache hit: whatever changes the price sets the attributes again.
        let changed = before.is_none_or(|before| observed.pricing_inputs() != before);
        if self
            .otel_spans
            .as_ref()
            .is_none_or(|export| !export.sets_before_close())
            || record.scope != Scope::Call
            || record.children != 0
            || !changed
            || !observed.usage_complete(&record.info)
        {
            return None;
        }
        Some(self.otel_own_call_attributes(record))
    }

    /// The cost attributes a call's own usage gives its OpenTelemetry span, priced now.
    #[cfg(feature = "otel")]
    fn otel_own_call_attributes(&self, record: &CostRecord) -> Vec<opentelemetry::KeyValue> {
        let observed = &record.observed;
        let table = self.prices.current();
        let name = observed.model_or_unknown();
        let mut own = Totals::default();
        with_model_slot(self.id, self.price_age_limit, &table, name, |slot| {
            self.price_call(observed, &table, slot, false, &mut own);
        });
        crate::otel::call_attributes(&own, &record.info, observed.reported_cost)
    }

    /// Sets a call's cost attributes on its OpenTelemetry span before it closes; when they
    /// landed, the close does not set them again.
    #[cfg(feature = "otel")]
    fn otel_set_call<S>(
        &self,
        span: &SpanRef<'_, S>,
        export: &crate::otel::SpanExport,
        attributes: Vec<opentelemetry::KeyValue>,
    ) where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        if export.set(&span.id(), attributes)
            && let Some(record) = CostRecord::in_span_mut(&mut span.extensions_mut(), self.id)
        {
            record.otel_exported = true;
        }
    }

    /// Hands a closed call to the sink, which borrows it (it copies what it keeps; it must not
    /// block). Counts a call the sink dropped; `true` for the first drop, to warn about once the
    /// span's data is released. Not inlined: the layer without a sink does not carry it.
    #[inline(never)]
    fn submit_call(
        &self,
        sink: &dyn crate::CallSink,
        closing: &ClosingCall<'_>,
        model: &Arc<str>,
        own: &Totals,
    ) -> bool {
        let observed = closing.observed;
        // One monotonic reading ends the call's duration and dates it (both worked out only when
        // the sink asks: a sink that queues calls asks on its own thread).
        let clock = &*crate::sink::CALL_CLOCK;
        let now = clock.raw();
        let call = crate::ClosedCall {
            times: crate::CallTimes::from_clock(closing.started, now),
            name: closing.name,
            span_id: closing.id.into_u64(),
            parent_span_id: closing.parent.map(Id::into_u64),
            request_model: observed.request_model.as_ref(),
            response_model: observed.response_model.as_ref(),
            model,
            provider: observed.provider.as_ref(),
            operation: observed.operation.as_ref(),
            service_tier: observed.service_tier,
            data_residency: observed.data_residency,
            search_context_size: observed.search_context_size,
            reported_cost: observed.reported_cost,
            attribution: closing.attribution,
            totals: own,
        };
        match catch_unwind(AssertUnwindSafe(|| sink.submit(&call))) {
            Ok(true) => false,
            Ok(false) => {
                DiagnosticCounters::bump(&self.ledger.diagnostics.records_dropped);
                !self.warned_drop.swap(true, Ordering::Relaxed)
            }
            Err(_) => {
                DiagnosticCounters::bump(&self.ledger.diagnostics.callback_panics);
                false
            }
        }
    }

    #[cold]
    fn warn_unpriced_call(unpriced: &UnpricedCall) {
        let model = &unpriced.model;
        let reason = &unpriced.reason;
        let give_it_a_price = "give the model a price in the layer's table (`CostLayerBuilder::prices` with a price file merged over the embedded one)";
        match unpriced.reported {
            Some(reported) => tracing::warn!(
                target: "cost_layer::prices",
                model = %model,
                reported_cost_usd = %reported,
                "a call of {model} is unpriced: {reason}. Its tokens are counted, its cost is unknown and the totals holding it are lower bounds. Its provider reported ${reported} for it: `CostLayerBuilder::charge_reported_cost_when_unpriced(true)` charges such calls that figure; or {give_it_a_price}. Further unpriced calls of this model for this reason are only counted in Diagnostics::unpriced_calls"
            ),
            None => tracing::warn!(
                target: "cost_layer::prices",
                model = %model,
                "a call of {model} is unpriced: {reason}. Its tokens are counted, its cost is unknown and the totals holding it are lower bounds; {give_it_a_price}. Further unpriced calls of this model for this reason are only counted in Diagnostics::unpriced_calls"
            ),
        }
    }

    #[cold]
    fn warn_random_user_key(consequence: &str) {
        tracing::warn!(
            target: "cost_layer",
            "user ids are hashed with a random key of this process (the layer was given no `CostLayerBuilder::user_id_key`), so one user gets another key in every process and after every restart: {consequence}. Give every process the same secret with `.user_id_key(…)` (or keep raw ids with `.raw_user_ids()`)"
        );
    }

    #[cold]
    fn warn_stale_price(stale: &cost_core::StalePrice) {
        tracing::warn!(
            target: "cost_layer::prices",
            model = %stale.entry,
            as_of = %stale.as_of,
            age_days = stale.age_days,
            "{stale}. Calls are still charged at them; further prices of that date are not warned about (Diagnostics::stale_prices counts them)"
        );
    }

    /// The warning about the first call hidden by the filter.
    pub(crate) fn warn_hidden_call(span_name: &'static str) {
        tracing::warn!(
            target: "cost_layer",
            span = span_name,
            "the subscriber's filter disables the span of the LLM call `{span_name}`, so the cost layer never sees it: its cost is in no total and no budget applies to it. Filter the layers that print instead of the whole subscriber (`fmt::layer().with_filter(EnvFilter::from_default_env())`), or give `#[llm_call(level = …)]` a level the filter enables. Further hidden calls are only counted in Diagnostics::calls_hidden_by_filter"
        );
    }

    fn run_callbacks(&self, close: &SpanClose<'_>) {
        for callback in &self.callbacks {
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                if callback.filter.as_ref().is_none_or(|filter| filter(close)) {
                    (callback.run)(close);
                }
            }));
            if outcome.is_err() {
                DiagnosticCounters::bump(&self.ledger.diagnostics.callback_panics);
            }
        }
    }
}

impl<S> tracing_subscriber::Layer<S> for CostLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    #[inline]
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        // A callsite known to carry nothing the layer reads returns here, without the
        // accounting's stack frame.
        if !self.plain_callsites.contains(attrs.metadata()) {
            self.open_span(attrs, id, ctx);
        }
    }

    #[inline]
    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if self.live_records.may_hold(id.into_u64()) {
            self.record_values(id, values, ctx);
        }
    }

    fn on_follows_from(&self, id: &Id, follows: &Id, ctx: Context<'_, S>) {
        // A span with no accounted ancestor that follows from an accounted one (a task spawned
        // off a session, say) is charged to the attribution of the span it follows.
        let (Some(span), Some(cause)) = (ctx.span(id), ctx.span(follows)) else {
            return;
        };
        if self.inherited(&span).is_some() {
            return;
        }
        let Some(cells) = self.attribution_of(&cause) else {
            return;
        };
        let mut extensions = span.extensions_mut();
        if let Some(record) = CostRecord::in_span_mut(&mut extensions, self.id) {
            // The ledger gets its cost under the followed span's attribution; the span tree of
            // the followed span does not (it may have closed long before).
            if !record.observed.attribution.any() {
                record.cells = cells;
            } else {
                record.inherited = Some(Arc::clone(&cells));
                record.cells = self.attribute(&cells, &record.observed);
            }
        }
    }

    fn on_event(&self, _event: &Event<'_>, _ctx: Context<'_, S>) {}

    fn on_register_dispatch(&self, dispatch: &tracing::Dispatch) {
        crate::registered::register::<S>(dispatch, &self.ledger, self.budget_hook.as_ref());
        #[cfg(feature = "otel")]
        if let Some(export) = &self.otel_spans {
            export.register(dispatch);
        }
    }

    fn on_layer(&mut self, _subscriber: &mut S) {
        self.budget_hook = WithBudget::of::<S>(self);
        self.call_locator = Some(CallLocator::of::<S>(self.id));
    }

    // The trait's signature is `unsafe`; this body does nothing unsafe: it hands out pointers to
    // `self` and to its own field, for the types they are.
    #[allow(unsafe_code)]
    unsafe fn downcast_raw(&self, id: std::any::TypeId) -> Option<*const ()> {
        if id == std::any::TypeId::of::<Self>() {
            Some(self as *const Self as *const ())
        } else if id == std::any::TypeId::of::<WithBudget>() {
            self.budget_hook
                .as_deref()
                .map(|hook| hook as *const WithBudget as *const ())
        } else if id == std::any::TypeId::of::<CallLocator>() {
            self.call_locator
                .as_ref()
                .map(|locator| locator as *const CallLocator as *const ())
        } else {
            None
        }
    }

    #[inline]
    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        // The common case, a span without a record (tools, HTTP clients, …), returns here
        // without the accounting's stack frame.
        let kept = self.live_records.remove(id.into_u64());
        if kept != Removed::NoRecord {
            self.close_recorded(id, kept, ctx);
        }
    }
}

/// The layer's callbacks past their early returns (kept out of line: a span the layer keeps
/// nothing for pays only the check).
impl CostLayer {
    /// `on_new_span` of a span whose callsite is not known to be plain.
    #[inline(never)]
    fn open_span<S>(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let metadata = attrs.metadata();
        let Some(info) = callsite_info(self.id, metadata, &self.names, self.tree_sink.is_some())
        else {
            // No field the layer reads, and no cost tree to draw it in.
            self.plain_callsites.insert(metadata);
            return;
        };
        let Some(span) = ctx.span(id) else { return };
        let mut observed = Observed::default();
        attrs.record(&mut FieldReader {
            info: &info,
            observed: &mut observed,
        });
        let inherited = self.inherited(&span);
        if !info.relevant && inherited.is_none() {
            // A plain span outside any accounted span: nothing to draw in a tree.
            return;
        }
        let (parent, inherited) = match inherited {
            Some((parent, cells)) => (Some(parent), Some(cells)),
            None => (None, None),
        };
        let pending_warnings = self.count_rejected(metadata, &mut observed.rejected);
        let scope = Self::scope_of(&info, &observed);
        let base = inherited.unwrap_or_else(|| Arc::clone(&self.empty));
        // Counted open before its cell is looked up: retention never evicts an open session, so
        // the cell this span posts to stays the one the ledger shows.
        let mut session_counted = false;
        if scope == Scope::Session
            && let Some(session) = &observed.attribution.session
        {
            self.ledger.session_opened(session);
            session_counted = true;
        }
        // A span that sets no keys of its own shares its ancestors' cells.
        let (mut cells, inherited) = if observed.attribution.any() {
            (self.attribute(&base, &observed), Some(base))
        } else {
            (base, None)
        };
        if scope == Scope::Agent && self.budgets.is_some() {
            let mut with_run = AttributionCells::clone(&cells);
            with_run.agent_run = Some(next_id("run"));
            cells = Arc::new(with_run);
        }
        let call_id = (scope == Scope::Call && self.budgets.is_some()).then(|| next_id("call"));
        observed.attribution.changed = false;
        // Worked out before the record: a call among its fields makes the ones before it
        // temporaries, copied into place after.
        let started = (scope == Scope::Call && self.call_sink.is_some())
            .then(|| crate::sink::CALL_CLOCK.raw());
        let extras = (self.tree_sink.is_some()
            || !pending_warnings.is_empty()
            || call_id.is_some())
        .then(|| {
            Box::new(RecordExtras {
                tree: self.tree_sink.as_ref().map(|_| Vec::new()),
                pending_warnings,
                call_id,
                ..RecordExtras::default()
            })
        });
        self.live_records.insert(id.into_u64());
        let mut extensions = span.extensions_mut();
        // Built in place as the argument: a record made first and moved in is copied once more.
        CostRecord {
            layer: self.id,
            scope,
            info,
            parent,
            cells,
            inherited,
            observed,
            totals: Totals::default(),
            children: 0,
            closed: false,
            session_counted,
            otel_exported: false,
            started,
            extras,
        }
        .store_in(&mut extensions);
        // Usage given when the span was created: with `tracing-opentelemetry` inside this
        // layer, its span exists now and may be gone before this layer sees the close. Priced
        // from the stored record under the span's lock: pricing reads no span and emits no
        // event (what it would warn about is returned), so nothing can wait on that lock here.
        #[cfg(feature = "otel")]
        let otel_attributes = self.otel_spans.as_ref().and_then(|_| {
            let record = CostRecord::in_span_mut(&mut extensions, self.id)?;
            self.otel_call_update(record, None)
        });
        drop(extensions);
        #[cfg(feature = "otel")]
        if let (Some(export), Some(attributes)) = (&self.otel_spans, otel_attributes) {
            self.otel_set_call(&span, export, attributes);
        }
    }

    /// `on_record` of a span that may hold a record.
    #[inline(never)]
    fn record_values<S>(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let Some(span) = ctx.span(id) else { return };
        let mut rejected = Vec::new();
        let mut pending = Vec::new();
        // A session id the span no longer has, to count closed once the span's data is released.
        let mut session_left = None;
        #[cfg(feature = "otel")]
        let mut otel_attributes = None;
        {
            let mut extensions = span.extensions_mut();
            let Some(record) = CostRecord::in_span_mut(&mut extensions, self.id) else {
                return;
            };
            if record.closed || !record.info.relevant {
                return;
            }
            let session_before = match record.scope {
                Scope::Session if record.session_counted => {
                    record.observed.attribution.session.clone()
                }
                _ => None,
            };
            #[cfg(feature = "otel")]
            let before = self
                .otel_spans
                .as_ref()
                .map(|_| record.observed.pricing_inputs());
            values.record(&mut FieldReader {
                info: &record.info,
                observed: &mut record.observed,
            });
            #[cfg(feature = "otel")]
            if let Some(before) = before {
                otel_attributes = self.otel_call_update(record, Some(before));
            }
            if !record.observed.rejected.is_empty()
                || record
                    .extras
                    .as_ref()
                    .is_some_and(|extras| !extras.pending_warnings.is_empty())
                || record.observed.attribution.changed
            {
                std::mem::swap(&mut rejected, &mut record.observed.rejected);
                if let Some(extras) = record.extras.as_mut() {
                    std::mem::swap(&mut pending, &mut extras.pending_warnings);
                }
                if record.observed.attribution.changed {
                    record.observed.attribution.changed = false;
                    // A session id recorded after creation, or a new one: counted open before
                    // its cell is looked up, as at creation; the id it replaces is closed (what
                    // was spent under it stays there).
                    if record.scope == Scope::Session
                        && let Some(session) = &record.observed.attribution.session
                        && session_before.as_ref() != Some(session)
                    {
                        self.ledger.session_opened(session);
                        record.session_counted = true;
                        session_left = session_before;
                    }
                    let base = record
                        .inherited
                        .get_or_insert_with(|| Arc::clone(&record.cells))
                        .clone();
                    record.cells = self.attribute(&base, &record.observed);
                }
            }
        }
        if let Some(session) = &session_left {
            self.ledger.session_closed(session);
        }
        #[cfg(feature = "otel")]
        if let (Some(export), Some(attributes)) = (&self.otel_spans, otel_attributes) {
            self.otel_set_call(&span, export, attributes);
        }
        if !rejected.is_empty() || !pending.is_empty() {
            let metadata = span.metadata();
            pending.extend(self.count_rejected(metadata, &mut rejected));
            self.warn_rejected(metadata, &pending);
        }
    }

    /// `on_close` of a span that holds (or, with spans in overflow, may hold) a record.
    #[inline(never)]
    fn close_recorded<S>(&self, id: Id, kept: Removed, ctx: Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let Some(span) = ctx.span(&id) else { return };
        let mut extensions = span.extensions_mut();
        let Some(record) = CostRecord::in_span_mut(&mut extensions, self.id) else {
            return;
        };
        if record.closed {
            return;
        }
        record.closed = true;
        if kept == Removed::MaybeOverflow {
            self.live_records.overflow_closed();
        }
        #[cfg(feature = "otel")]
        let mut otel_call = None;
        let mut charged = None;
        let mut first_warnings = None;
        // A deny budget the call escaped, reserving nothing: the first such call is warned about.
        let mut unchecked_budget = None;
        if record.scope == Scope::Call {
            charged = self.charge(record, &id, span.name());
            first_warnings = charged.as_mut().and_then(|c| c.warnings.take());
            if self.budgets.is_some() {
                let (model, cost) = match &charged {
                    Some(Charged {
                        model: Some(model),
                        own,
                        ..
                    }) => (
                        Arc::clone(model),
                        Some(own.as_deref().unwrap_or(&record.totals).total_usd()),
                    ),
                    _ => (Arc::clone(record.observed.model_or_unknown()), None),
                };
                unchecked_budget = self.settle_budget(record, &model, cost);
            }
            #[cfg(feature = "otel")]
            if let Some(Charged { own, .. }) = &charged
                && self.otel_spans.is_some()
                && !record.otel_exported
            {
                let own = own.as_deref().unwrap_or(&record.totals);
                otel_call = Some(crate::otel::call_attributes(
                    own,
                    &record.info,
                    record.observed.reported_cost,
                ));
            }
        }
        if record.scope == Scope::Agent {
            record.totals.agent_runs += 1;
            self.ledger.post_agent_run(&record.cells);
        }
        if self.budgets.is_some() {
            self.close_budget_span(record.scope, record);
        }
        // Boxed: this path is taken by every close, and an empty node moved around is as
        // large as a full one.
        let node = record
            .extras
            .as_mut()
            .and_then(|e| e.tree.take())
            .map(|children| {
                Box::new(CostTreeNode {
                    name: span.name(),
                    scope: record.scope,
                    label: match record.scope {
                        Scope::Session => record
                            .observed
                            .attribution
                            .session
                            .as_deref()
                            .map(str::to_owned),
                        Scope::Agent => record
                            .observed
                            .attribution
                            .agent
                            .as_deref()
                            .map(str::to_owned),
                        Scope::Call => record.observed.model().map(|m| m.to_string()),
                        Scope::Span => None,
                    },
                    count: 1,
                    totals: record.totals.clone(),
                    children,
                })
            });
        // Roll up into the nearest accounted ancestor while holding this span's record (locks
        // are always taken child first, then parent). The ancestor is still open: the registry
        // closes children first.
        let mut node_for_sink = None;
        #[cfg(feature = "otel")]
        let mut withdraw_otel_cost_of = None;
        match record.parent.as_ref().and_then(|parent| ctx.span(parent)) {
            Some(parent) => {
                let mut parent_extensions = parent.extensions_mut();
                if let Some(parent_record) =
                    CostRecord::in_span_mut(&mut parent_extensions, self.id)
                {
                    parent_record.totals.add(&record.totals);
                    parent_record.children += 1;
                    // A call span whose cost was exported before a call under it was charged:
                    // its usage is their aggregate, charged nothing at its close, and what its
                    // usage set on its OpenTelemetry span is withdrawn (the figures set again
                    // to 0, the unpriced flag to false).
                    #[cfg(feature = "otel")]
                    if parent_record.otel_exported
                        && parent_record.scope == Scope::Call
                        && record.totals.calls_closed() > 0
                    {
                        parent_record.otel_exported = false;
                        withdraw_otel_cost_of = Some((
                            parent.id(),
                            crate::otel::withdrawn_call_attributes(
                                self.otel_own_call_attributes(parent_record),
                            ),
                        ));
                    }
                    if let (Some(children), Some(node)) = (
                        parent_record.extras.as_mut().and_then(|e| e.tree.as_mut()),
                        node,
                    ) {
                        CostTreeNode::push_child(children, *node);
                    }
                }
            }
            None => node_for_sink = node,
        }
        let scope = record.scope;
        let session_closed = match scope {
            Scope::Session => record.observed.attribution.session.clone(),
            _ => None,
        };
        let (pending_warnings, pending_alerts) = match record.extras.as_mut() {
            Some(extras) => (
                std::mem::take(&mut extras.pending_warnings),
                std::mem::take(&mut extras.pending_alerts),
            ),
            None => Default::default(),
        };
        // Boxed: `None` on the common path, and moved below.
        let call_details = (scope == Scope::Call && self.reports_calls).then(|| {
            let (model, own) = match charged {
                Some(Charged { model, own, .. }) => (model, own),
                None => (None, None),
            };
            Box::new(CallDetails {
                request_model: record.observed.request_model.clone(),
                response_model: record.observed.response_model.clone(),
                model: model.unwrap_or_else(|| Arc::clone(record.observed.model_or_unknown())),
                provider: record.observed.provider.clone(),
                operation: record.observed.operation.clone(),
                service_tier: record.observed.service_tier,
                search_context_size: record.observed.search_context_size,
                reported_cost: record.observed.reported_cost,
                own: own.map(|own| *own),
            })
        });
        let reported = (scope != Scope::Span && (!self.callbacks.is_empty() || self.close_events))
            .then(|| (record.totals.clone(), Arc::clone(&record.cells)));
        #[cfg(feature = "otel")]
        let otel_set_early = record.otel_exported;
        #[cfg(feature = "otel")]
        let otel_attributes = match scope {
            Scope::Call => otel_call,
            Scope::Agent | Scope::Session if self.otel_spans.is_some() => {
                Some(crate::otel::totals_attributes(&record.totals))
            }
            _ => None,
        };
        drop(extensions);

        #[cfg(feature = "otel")]
        if let Some(export) = &self.otel_spans {
            if let Some((parent, withdrawn)) = withdraw_otel_cost_of {
                export.set(&parent, withdrawn);
            }
            match otel_attributes {
                Some(attributes) => {
                    let landed = export.set(&id, attributes);
                    if scope == Scope::Call {
                        export.learn_order(landed);
                    }
                }
                // Set before the close: whether its OpenTelemetry span is still open says
                // whether later calls can wait for their close.
                None if scope == Scope::Call && otel_set_early && export.order_unknown() => {
                    export.learn_order(export.is_open(&id));
                }
                None => {}
            }
        }

        if !pending_warnings.is_empty() {
            self.warn_rejected(span.metadata(), &pending_warnings);
        }
        if !pending_alerts.is_empty() {
            self.report_alerts(&pending_alerts);
        }
        if let Some(budget) = &unchecked_budget {
            Self::warn_unchecked_call(span.name(), budget);
        }
        if let Some(session) = &session_closed {
            self.ledger.session_closed(session);
        }
        if let Some(warnings) = first_warnings {
            warnings.emit(self, span.metadata());
        }
        if let Some(random) = &self.random_user_key
            && random.warning.take()
        {
            Self::warn_random_user_key(&random.consequence);
        }
        if scope == Scope::Call && self.ledger.diagnostics.tier_fallback_warning.take() {
            tracing::warn!(
                target: "cost_layer::prices",
                "a call ran at a service tier its model's price has no prices for: it is priced at the standard prices (too much for batch or flex, possibly too little for a premium tier such as priority); give the model that tier's prices in the price table to price such calls at them. Further ones are only counted in Diagnostics::tier_fallbacks"
            );
        }
        if scope == Scope::Call && self.ledger.diagnostics.evicted_post_warning.take() {
            tracing::warn!(
                target: "cost_layer",
                "a call was charged under a session the ledger had already evicted (a span following from it closed after its eviction): its cost is in every other key's totals but not in that session's; further ones are only counted in Diagnostics::posts_to_evicted_sessions"
            );
        }
        if let Some((totals, cells)) = reported {
            let close = SpanClose {
                id: &id,
                name: span.name(),
                target: span.metadata().target(),
                scope,
                attribution: &cells.attribution,
                totals: &totals,
                call: call_details.as_deref(),
            };
            self.run_callbacks(&close);
            if self.close_events {
                crate::fields::emit_close_event(&id, scope, &totals, &cells.attribution);
            }
        }
        if scope == Scope::Session
            && let (Some(sink), Some(root)) = (&self.tree_sink, node_for_sink)
        {
            let tree = CostTree { root: *root };
            if catch_unwind(AssertUnwindSafe(|| sink(&tree))).is_err() {
                DiagnosticCounters::bump(&self.ledger.diagnostics.callback_panics);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Mutex;

    use cost_core::{CostError, QuoteError, TokenKind};

    use super::{MODEL_WARNINGS, first_warning_of, unpriced_cause_bit};

    #[test]
    fn every_cause_of_an_unpriced_call_has_a_bit_of_its_own() {
        let refused = |source| QuoteError::Cost {
            model: "m".to_owned(),
            source,
        };
        let mut refusals: Vec<QuoteError> = TokenKind::ALL
            .iter()
            .map(|&kind| refused(CostError::MissingPrice { kind, tokens: 1 }))
            .collect();
        refusals.push(refused(CostError::NoDataResidencyPrice));
        refusals.push(refused(CostError::NoFastModePrice));
        refusals.push(refused(CostError::Overflow));
        let mut bits: Vec<u32> = refusals
            .iter()
            .map(|refusal| unpriced_cause_bit(Some(Some(refusal))))
            .collect();
        // No entry for the model; an entry that priced the call after all (the table changed).
        bits.push(unpriced_cause_bit(None));
        bits.push(unpriced_cause_bit(Some(None)));
        assert!(bits.iter().all(|bit| bit.count_ones() == 1), "{bits:?}");
        let distinct: HashSet<u32> = bits[..bits.len() - 1].iter().copied().collect();
        assert_eq!(distinct.len(), bits.len() - 1, "{bits:?}");
        // Overflow and a call priced after all share the bit of other causes.
        assert_eq!(bits[bits.len() - 1], bits[bits.len() - 3]);
    }

    #[test]
    fn warnings_stop_at_their_limit_and_never_repeat() {
        let warned = Mutex::new(HashSet::new());
        assert!(first_warning_of(&warned, 0));
        assert!(!first_warning_of(&warned, 0), "a repeat");
        for key in 1..MODEL_WARNINGS {
            assert!(first_warning_of(&warned, key), "{key}");
        }
        assert!(!first_warning_of(&warned, MODEL_WARNINGS), "past the limit");
        assert_eq!(
            warned.lock().map(|w| w.len()).unwrap_or_default(),
            MODEL_WARNINGS
        );
    }
}
