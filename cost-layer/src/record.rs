//! What the layer keeps per span, and how field values are read into it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use cost_core::{Money, SearchContextSize, ServiceTier, TokenKind, Usage};
use tracing_core::Metadata;
use tracing_core::field::{Field, Visit};
use tracing_subscriber::registry::{Extensions, ExtensionsMut};

use crate::fields::{FieldNames, FieldRole, values};
use crate::ledger::AttributionCells;
use crate::totals::{Attribution, Scope, Totals};
use crate::tree::CostTreeNode;

/// The layer's record of one span, kept in the span's extensions while it is open and after
/// the layer's `on_close`, so other layers can read it:
///
/// ```
/// # use tracing_subscriber::registry::LookupSpan;
/// # fn read<S: tracing::Subscriber + for<'a> LookupSpan<'a>>(span: tracing_subscriber::registry::SpanRef<'_, S>) {
/// if let Some(record) = span.extensions().get::<cost_layer::CostRecord>() {
///     println!("{} {}: {}", record.scope(), span.name(), record.totals());
/// }
/// # }
/// ```
///
/// While the span is open, [`CostRecord::totals`] covers the calls of its subtree closed so far;
/// from the layer's `on_close` on (layers added after `CostLayer` see it in their own
/// `on_close`), it covers the whole subtree.
///
/// With several `CostLayer`s in one subscriber, each keeps its own record of a span: the
/// extension is the record of the first that made one, and [`CostRecord::of_layer`] finds the
/// record of another (by [`CostLayer::id`](crate::CostLayer::id)).
pub struct CostRecord {
    /// The layer whose record this is ([`crate::CostLayer::id`]).
    pub(crate) layer: u64,
    pub(crate) scope: Scope,
    pub(crate) info: Arc<CallsiteInfo>,
    /// The nearest ancestor with a record. It stays open while this span is open (the registry
    /// keeps a parent until its children close), so its id cannot be recycled meanwhile.
    pub(crate) parent: Option<tracing_core::span::Id>,
    pub(crate) cells: Arc<AttributionCells>,
    /// The attribution inherited from the ancestors, kept when this span sets keys of its own
    /// (so a key recorded later can be applied on top of it).
    pub(crate) inherited: Option<Arc<AttributionCells>>,
    pub(crate) observed: Observed,
    pub(crate) totals: Totals,
    /// Children whose totals were rolled up into `totals`.
    pub(crate) children: u32,
    pub(crate) closed: bool,
    /// A session span counted open in the ledger (so retention keeps its cell).
    pub(crate) session_counted: bool,
    /// The call's cost attributes are on its OpenTelemetry span already (feature `otel`).
    #[cfg_attr(not(feature = "otel"), allow(dead_code))]
    pub(crate) otel_exported: bool,
    /// When a call span was created (a raw reading of [`crate::sink::CALL_CLOCK`]), when a
    /// [`crate::CallSink`] needs its duration.
    pub(crate) started: Option<u64>,
    /// What only some spans need; `None` for the others.
    pub(crate) extras: Option<Box<RecordExtras>>,
}

/// The parts of a record only some spans need (the cost tree, budgets, warnings and alerts
/// waiting for a moment they can be reported), boxed apart: a record is moved into the
/// registry's extensions whenever an accounted span is created, and the smaller it is, the
/// less that costs.
#[derive(Default)]
pub(crate) struct RecordExtras {
    /// The span's children in the cost tree, when a tree is drawn.
    pub(crate) tree: Option<Vec<CostTreeNode>>,
    /// Fields rejected at creation, warned about at the next `on_record` or at close.
    pub(crate) pending_warnings: Vec<&'static str>,
    /// A unique id of the call, when budgets are on.
    pub(crate) call_id: Option<Arc<str>>,
    /// The call's budget reservation.
    pub(crate) budget: crate::budget::CallBudget,
    /// Budget alerts to report once the record is released.
    pub(crate) pending_alerts: Vec<cost_core::budget::BudgetAlert>,
    /// The records other `CostLayer`s of the same subscriber keep for this span (this record
    /// being the extension: the first made).
    pub(crate) other_layers: Vec<CostRecord>,
}

impl CostRecord {
    /// The span's scope.
    pub fn scope(&self) -> Scope {
        self.scope
    }

    /// The span's attribution (its own keys over its ancestors').
    pub fn attribution(&self) -> &Attribution {
        &self.cells.attribution
    }

    /// The totals of the span's subtree (see the type's docs for when they are final).
    pub fn totals(&self) -> &Totals {
        &self.totals
    }

    /// `true` once the layer has closed the span: the totals are then final.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The record the layer `layer` (a [`CostLayer::id`](crate::CostLayer::id)) keeps of the
    /// same span: this one, or one kept beside it by another `CostLayer` of the subscriber.
    #[inline]
    pub fn of_layer(&self, layer: u64) -> Option<&CostRecord> {
        if self.layer == layer {
            Some(self)
        } else {
            self.beside(layer)
        }
    }

    #[inline]
    fn of_layer_mut(&mut self, layer: u64) -> Option<&mut CostRecord> {
        if self.layer == layer {
            Some(self)
        } else {
            self.beside_mut(layer)
        }
    }

    /// The record another `CostLayer` keeps beside this one (rare: out of the hot path).
    #[cold]
    #[inline(never)]
    fn beside(&self, layer: u64) -> Option<&CostRecord> {
        self.extras
            .as_deref()?
            .other_layers
            .iter()
            .find(|record| record.layer == layer)
    }

    #[cold]
    #[inline(never)]
    fn beside_mut(&mut self, layer: u64) -> Option<&mut CostRecord> {
        self.extras
            .as_deref_mut()?
            .other_layers
            .iter_mut()
            .find(|record| record.layer == layer)
    }

    /// The record `layer` keeps in a span's extensions.
    #[inline]
    pub(crate) fn in_span<'a>(
        extensions: &'a Extensions<'_>,
        layer: u64,
    ) -> Option<&'a CostRecord> {
        extensions.get::<CostRecord>()?.of_layer(layer)
    }

    /// The record `layer` keeps in a span's extensions, to change.
    #[inline]
    pub(crate) fn in_span_mut<'a>(
        extensions: &'a mut ExtensionsMut<'_>,
        layer: u64,
    ) -> Option<&'a mut CostRecord> {
        extensions.get_mut::<CostRecord>()?.of_layer_mut(layer)
    }

    /// Keeps `self` in a span's extensions: as the extension, or beside the record another
    /// layer keeps there; it replaces a record of its own layer.
    pub(crate) fn store_in(self, extensions: &mut ExtensionsMut<'_>) {
        let layer = self.layer;
        // The common case, a span no other `CostLayer` keeps a record of, in one map operation.
        let Some(mut previous) = extensions.replace(self) else {
            return;
        };
        let mut others = previous
            .extras
            .as_mut()
            .map(|extras| std::mem::take(&mut extras.other_layers))
            .unwrap_or_default();
        if previous.layer != layer {
            // Another layer's record stays the extension; this one goes beside it.
            others.retain(|record| record.layer != layer);
            others.extend(extensions.replace(previous));
        }
        if !others.is_empty()
            && let Some(record) = extensions.get_mut::<CostRecord>()
        {
            record.extras_mut().other_layers = others;
        }
    }

    /// The record's extras, made when first needed.
    pub(crate) fn extras_mut(&mut self) -> &mut RecordExtras {
        self.extras.get_or_insert_with(Box::default)
    }

    /// The call's id for budgets, if it has one.
    pub(crate) fn call_id(&self) -> Option<&Arc<str>> {
        self.extras
            .as_ref()
            .and_then(|extras| extras.call_id.as_ref())
    }
}

impl fmt::Debug for CostRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CostRecord")
            .field("scope", &self.scope)
            .field("attribution", self.attribution())
            .field("totals", &self.totals)
            .finish_non_exhaustive()
    }
}

/// Field values seen on one span.
#[derive(Default)]
pub(crate) struct Observed {
    pub(crate) usage: Usage,
    /// Bit per [`TokenKind`]: a value was recorded.
    pub(crate) usage_seen: KindBits,
    /// Bit per [`TokenKind`]: the latest value was invalid.
    pub(crate) usage_invalid: KindBits,
    pub(crate) request_model: Option<Arc<str>>,
    pub(crate) response_model: Option<Arc<str>>,
    /// `gen_ai.provider.name`.
    pub(crate) provider: Option<Arc<str>>,
    /// `gen_ai.operation.name`.
    pub(crate) operation: Option<Arc<str>>,
    pub(crate) scope: Option<Scope>,
    pub(crate) invoke_agent: bool,
    pub(crate) cache_hit: bool,
    pub(crate) service_tier: ServiceTier,
    /// The call ran on a data-residency endpoint (`cost.data_residency`).
    pub(crate) data_residency: bool,
    /// The search context size of its web searches (`cost.search_context_size`).
    pub(crate) search_context_size: Option<SearchContextSize>,
    /// What the provider said the call cost (`cost.reported_cost_usd`).
    pub(crate) reported_cost: Option<Money>,
    pub(crate) attribution: PendingAttribution,
    /// Names of fields whose value was rejected, for one warning per callsite.
    pub(crate) rejected: Vec<&'static str>,
}

/// Attribution keys a span sets itself.
#[derive(Default)]
pub(crate) struct PendingAttribution {
    pub(crate) session: Option<Arc<str>>,
    pub(crate) agent: Option<Arc<str>>,
    pub(crate) raw_user: Option<Arc<str>>,
    pub(crate) org: Option<Arc<str>>,
    pub(crate) feature: Option<Arc<str>>,
    pub(crate) changed: bool,
}

impl PendingAttribution {
    pub(crate) fn any(&self) -> bool {
        self.session.is_some()
            || self.agent.is_some()
            || self.raw_user.is_some()
            || self.org.is_some()
            || self.feature.is_some()
    }
}

impl Observed {
    pub(crate) fn model(&self) -> Option<&Arc<str>> {
        self.response_model.as_ref().or(self.request_model.as_ref())
    }

    /// The model, or `unknown` for a call that named none (its ledger key).
    pub(crate) fn model_or_unknown(&self) -> &Arc<str> {
        self.model().unwrap_or(&crate::pricing::UNKNOWN_MODEL)
    }

    pub(crate) fn has_usage(&self) -> bool {
        self.usage_seen != 0
    }

    /// The terms the call is priced on.
    pub(crate) fn call_terms(&self) -> cost_core::CallTerms {
        cost_core::CallTerms {
            service_tier: self.service_tier,
            data_residency: self.data_residency,
            search_context_size: self.search_context_size,
        }
    }

    /// What the call's price depends on, to tell whether a record changed it.
    #[cfg(feature = "otel")]
    pub(crate) fn pricing_inputs(&self) -> PricingInputs {
        PricingInputs {
            usage: self.usage,
            usage_seen: self.usage_seen,
            usage_invalid: self.usage_invalid,
            model: Arc::clone(self.model_or_unknown()),
            service_tier: self.service_tier,
            data_residency: self.data_residency,
            search_context_size: self.search_context_size,
            cache_hit: self.cache_hit,
            reported_cost: self.reported_cost,
        }
    }

    /// Every token field the callsite declares has a value.
    #[cfg(feature = "otel")]
    pub(crate) fn usage_complete(&self, info: &CallsiteInfo) -> bool {
        info.declared_tokens != 0 && self.usage_seen & info.declared_tokens == info.declared_tokens
    }
}

/// What a call's price depends on: its usage (values, and which were recorded or rejected), the
/// model it is priced as, its service tier, whether it ran on a data-residency endpoint,
/// whether the application's cache answered it, and the cost its provider reported (charged
/// when the table has no price, where the layer is told to).
#[cfg(feature = "otel")]
#[derive(PartialEq)]
pub(crate) struct PricingInputs {
    usage: Usage,
    usage_seen: KindBits,
    usage_invalid: KindBits,
    model: Arc<str>,
    service_tier: ServiceTier,
    data_residency: bool,
    search_context_size: Option<SearchContextSize>,
    cache_hit: bool,
    reported_cost: Option<Money>,
}

/// A set of token kinds, one bit each.
pub(crate) type KindBits = u16;

pub(crate) const fn bit(kind: TokenKind) -> KindBits {
    1 << (kind as u8)
}

const _: () = assert!(TokenKind::ALL.len() <= KindBits::BITS as usize);

/// How the fields of one callsite map to roles. Computed once per callsite (per thread, per
/// layer) and shared by every span of the callsite.
pub(crate) struct CallsiteInfo {
    /// Role per field index.
    roles: Box<[Option<FieldRole>]>,
    pub(crate) declares_usage: bool,
    /// Bit per [`TokenKind`] the callsite declares a field for: once all are recorded, the
    /// call's usage is complete.
    #[cfg_attr(not(feature = "otel"), allow(dead_code))]
    pub(crate) declared_tokens: KindBits,
    /// Bit per [`TokenKind`] declared under its OpenTelemetry GenAI name (which
    /// `tracing-opentelemetry` exports as it is).
    #[cfg_attr(not(feature = "otel"), allow(dead_code))]
    pub(crate) declared_otel_tokens: KindBits,
    pub(crate) declares_session: bool,
    pub(crate) declares_agent: bool,
    /// The callsite has at least one field the layer reads.
    pub(crate) relevant: bool,
}

impl CallsiteInfo {
    fn new(metadata: &Metadata<'_>, names: &FieldNames) -> Self {
        let roles: Box<[Option<FieldRole>]> = metadata
            .fields()
            .iter()
            .map(|field| names.role(field.name()))
            .collect();
        let has = |pred: fn(&FieldRole) -> bool| roles.iter().flatten().any(pred);
        let mut declared_tokens = 0;
        let mut declared_otel_tokens = 0;
        for (field, role) in metadata.fields().iter().zip(roles.iter()) {
            if let Some(FieldRole::Tokens(kind)) = role {
                declared_tokens |= bit(*kind);
                if crate::fields::otel_usage_name(*kind) == Some(field.name()) {
                    declared_otel_tokens |= bit(*kind);
                }
            }
        }
        CallsiteInfo {
            declares_usage: has(|r| matches!(r, FieldRole::Tokens(_))),
            declared_tokens,
            declared_otel_tokens,
            declares_session: has(|r| *r == FieldRole::Session),
            declares_agent: has(|r| *r == FieldRole::Agent),
            relevant: roles.iter().any(Option::is_some),
            roles,
        }
    }

    #[inline]
    pub(crate) fn role(&self, field: &Field) -> Option<FieldRole> {
        self.roles.get(field.index()).copied().flatten()
    }
}

type CallsiteCache = HashMap<(u64, usize), Arc<CallsiteInfo>, foldhash::fast::FixedState>;

thread_local! {
    static CALLSITES: RefCell<CallsiteCache> = RefCell::new(CallsiteCache::default());
}

/// Entries a thread's callsite cache may hold before it is cleared (callsites are finite, but
/// many layers built in one process, as in tests, multiply them).
const CALLSITE_CACHE_LIMIT: usize = 16_384;

/// The callsite info of `metadata` for the layer `layer_id`, from this thread's cache; `None`
/// for a callsite without any field the layer reads unless `keep_irrelevant` (the plain-span
/// fast path touches no reference count).
#[inline]
pub(crate) fn callsite_info(
    layer_id: u64,
    metadata: &'static Metadata<'static>,
    names: &FieldNames,
    keep_irrelevant: bool,
) -> Option<Arc<CallsiteInfo>> {
    let key = (layer_id, metadata as *const Metadata<'static> as usize);
    CALLSITES.with(|cache| {
        if let Ok(cache) = cache.try_borrow()
            && let Some(info) = cache.get(&key)
        {
            return (info.relevant || keep_irrelevant).then(|| Arc::clone(info));
        }
        let info = Arc::new(CallsiteInfo::new(metadata, names));
        if let Ok(mut cache) = cache.try_borrow_mut() {
            if cache.len() >= CALLSITE_CACHE_LIMIT {
                cache.clear();
            }
            cache.insert(key, Arc::clone(&info));
        }
        (info.relevant || keep_irrelevant).then_some(info)
    })
}

/// Callsites a layer found to have no field it reads, when it keeps no record for such spans
/// (no cost tree): their spans never get a record, so their creation need not read their fields
/// or look for an accounted ancestor. A small table of atomics, one slot per hash of the
/// metadata's address: a slot holds one address at a time, so a collision only makes a plain
/// span take the slower path; an address in a slot is always one found plain (metadata is
/// `'static`, never freed or reused).
pub(crate) struct PlainCallsites {
    slots: Box<[AtomicUsize]>,
}

impl PlainCallsites {
    const SLOTS: usize = 1 << 10;

    pub(crate) fn new() -> Self {
        PlainCallsites {
            slots: (0..Self::SLOTS).map(|_| AtomicUsize::new(0)).collect(),
        }
    }

    #[inline]
    fn slot(&self, metadata: &'static Metadata<'static>) -> (&AtomicUsize, usize) {
        let address = metadata as *const Metadata<'static> as usize;
        // Metadata are statics some hundred bytes apart: their addresses' middle bits differ.
        let index = (address >> 4 ^ address >> 14) & (Self::SLOTS - 1);
        (&self.slots[index], address)
    }

    /// `true` when `metadata`'s spans are known to have no record.
    #[inline]
    pub(crate) fn contains(&self, metadata: &'static Metadata<'static>) -> bool {
        let (slot, address) = self.slot(metadata);
        slot.load(Ordering::Relaxed) == address
    }

    /// Marks `metadata`'s spans as having no record.
    pub(crate) fn insert(&self, metadata: &'static Metadata<'static>) {
        let (slot, address) = self.slot(metadata);
        slot.store(address, Ordering::Relaxed);
    }
}

/// Reads field values into an [`Observed`].
pub(crate) struct FieldReader<'a> {
    pub(crate) info: &'a CallsiteInfo,
    pub(crate) observed: &'a mut Observed,
}

impl FieldReader<'_> {
    fn tokens(&mut self, kind: TokenKind, value: Option<u64>, field: &Field) {
        let b = bit(kind);
        self.observed.usage_seen |= b;
        match value {
            Some(v) => {
                self.observed.usage.set(kind, v);
                self.observed.usage_invalid &= !b;
            }
            None => {
                self.observed.usage_invalid |= b;
                self.observed.rejected.push(field.name());
            }
        }
    }

    fn text(&mut self, role: FieldRole, value: &str, field: &Field) {
        let o = &mut *self.observed;
        match role {
            FieldRole::Tokens(kind) => {
                let parsed = value.trim().parse::<u64>().ok();
                self.tokens(kind, parsed, field);
            }
            FieldRole::RequestModel => o.request_model = Some(intern(value)),
            FieldRole::ResponseModel => o.response_model = Some(intern(value)),
            FieldRole::Operation => {
                o.invoke_agent = value == values::INVOKE_AGENT;
                o.operation = Some(intern(value));
            }
            FieldRole::Provider => o.provider = Some(intern(value)),
            FieldRole::Session => set_key(
                &mut o.attribution.session,
                value,
                &mut o.attribution.changed,
            ),
            FieldRole::Agent => {
                set_key(&mut o.attribution.agent, value, &mut o.attribution.changed)
            }
            FieldRole::User => set_key(
                &mut o.attribution.raw_user,
                value,
                &mut o.attribution.changed,
            ),
            FieldRole::Org => set_key(&mut o.attribution.org, value, &mut o.attribution.changed),
            FieldRole::Feature => set_key(
                &mut o.attribution.feature,
                value,
                &mut o.attribution.changed,
            ),
            FieldRole::Scope => {
                o.scope = match value {
                    values::SCOPE_SESSION => Some(Scope::Session),
                    values::SCOPE_AGENT => Some(Scope::Agent),
                    values::SCOPE_CALL => Some(Scope::Call),
                    _ => {
                        o.rejected.push(field.name());
                        o.scope
                    }
                }
            }
            FieldRole::CacheHit => match flag(value) {
                Some(hit) => o.cache_hit = hit,
                None => o.rejected.push(field.name()),
            },
            FieldRole::ServiceTier => match ServiceTier::parse(value) {
                Ok(tier) => o.service_tier = tier,
                Err(_) => o.rejected.push(field.name()),
            },
            FieldRole::DataResidency => match flag(value) {
                Some(residency) => o.data_residency = residency,
                None => o.rejected.push(field.name()),
            },
            FieldRole::SearchContextSize => match SearchContextSize::parse(value) {
                Ok(size) => o.search_context_size = Some(size),
                Err(_) => o.rejected.push(field.name()),
            },
            FieldRole::ReportedCost => match Money::from_non_negative_decimal(value) {
                Ok(cost) => o.reported_cost = Some(cost),
                Err(_) => o.rejected.push(field.name()),
            },
        }
    }

    fn number(
        &mut self,
        role: FieldRole,
        value: Option<u64>,
        shown: &dyn fmt::Display,
        field: &Field,
    ) {
        match role {
            FieldRole::Tokens(kind) => self.tokens(kind, value, field),
            // Ids given as numbers are ids all the same.
            FieldRole::Session
            | FieldRole::Agent
            | FieldRole::User
            | FieldRole::Org
            | FieldRole::Feature
            | FieldRole::RequestModel
            | FieldRole::ResponseModel
            | FieldRole::ReportedCost => self.text(role, &shown.to_string(), field),
            _ => self.observed.rejected.push(field.name()),
        }
    }
}

/// A flag recorded as text: `true` or `false` (`bool`'s own parse), nothing else.
fn flag(value: &str) -> Option<bool> {
    value.parse().ok()
}

fn set_key(slot: &mut Option<Arc<str>>, value: &str, changed: &mut bool) {
    if slot.as_deref() != Some(value) {
        *slot = Some(Arc::from(value));
        *changed = true;
    }
}

/// Model names repeat: share one allocation per name and thread. The name seen last is
/// checked first (a span's callsite usually names the same model every time), then a map.
pub(crate) fn intern(value: &str) -> Arc<str> {
    thread_local! {
        static LAST: RefCell<Option<Arc<str>>> = const { RefCell::new(None) };
        static NAMES: RefCell<HashMap<Box<str>, Arc<str>, foldhash::fast::FixedState>> =
            RefCell::new(HashMap::default());
    }
    let last = LAST.with(|last| {
        last.try_borrow()
            .ok()
            .and_then(|last| last.as_ref().filter(|name| ***name == *value).cloned())
    });
    if let Some(name) = last {
        return name;
    }
    let name = NAMES.with(|names| {
        let Ok(mut names) = names.try_borrow_mut() else {
            return Arc::from(value);
        };
        if let Some(name) = names.get(value) {
            return Arc::clone(name);
        }
        if names.len() >= 4096 {
            names.clear();
        }
        let name: Arc<str> = Arc::from(value);
        names.insert(value.into(), Arc::clone(&name));
        name
    });
    LAST.with(|last| {
        if let Ok(mut last) = last.try_borrow_mut() {
            *last = Some(Arc::clone(&name));
        }
    });
    name
}

impl Visit for FieldReader<'_> {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if let Some(role) = self.info.role(field) {
            self.number(role, Some(value), &value, field);
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if let Some(role) = self.info.role(field) {
            self.number(role, u64::try_from(value).ok(), &value, field);
        }
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        if let Some(role) = self.info.role(field) {
            self.number(role, u64::try_from(value).ok(), &value, field);
        }
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        if let Some(role) = self.info.role(field) {
            self.number(role, u64::try_from(value).ok(), &value, field);
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if let Some(role) = self.info.role(field) {
            // Integral, non-negative floats below 2⁵³ are exact token counts; others are not.
            let exact =
                (value.is_finite() && value >= 0.0 && value.fract() == 0.0 && value < 9.0e15)
                    .then_some(value as u64);
            match role {
                FieldRole::Tokens(kind) => self.tokens(kind, exact, field),
                // A reported cost as a float: read by its shortest decimal text, the digits a
                // provider's JSON gave (never infinite or NaN: those are rejected).
                FieldRole::ReportedCost if value.is_finite() => {
                    self.text(role, &value.to_string(), field);
                }
                _ => self.observed.rejected.push(field.name()),
            }
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        match self.info.role(field) {
            Some(FieldRole::CacheHit) => self.observed.cache_hit = value,
            Some(FieldRole::DataResidency) => self.observed.data_residency = value,
            Some(FieldRole::Tokens(kind)) => self.tokens(kind, None, field),
            Some(_) => self.observed.rejected.push(field.name()),
            None => {}
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if let Some(role) = self.info.role(field) {
            self.text(role, value, field);
        }
    }

    fn record_error(&mut self, field: &Field, _value: &(dyn std::error::Error + 'static)) {
        if let Some(role) = self.info.role(field) {
            if let FieldRole::Tokens(kind) = role {
                self.tokens(kind, None, field);
            } else {
                self.observed.rejected.push(field.name());
            }
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if let Some(role) = self.info.role(field) {
            // `%value` and `?value` arrive here: read their text.
            let text = format!("{value:?}");
            let text = text.trim_matches('"');
            self.text(role, text, field);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::PlainCallsites;

    fn metadata(span: &tracing::Span) -> &'static tracing_core::Metadata<'static> {
        span.metadata().unwrap_or_else(|| panic!("no metadata"))
    }

    #[test]
    fn plain_callsites_hold_what_was_inserted_and_nothing_else() {
        // Spans are enabled (and have metadata) under a subscriber.
        let _default = tracing::subscriber::set_default(tracing_subscriber::registry());
        let table = PlainCallsites::new();
        let spans: Vec<tracing::Span> = vec![
            tracing::info_span!("a"),
            tracing::info_span!("b"),
            tracing::info_span!("c", field = 1),
        ];
        assert!(spans.iter().all(|s| !table.contains(metadata(s))));
        table.insert(metadata(&spans[0]));
        table.insert(metadata(&spans[2]));
        assert!(table.contains(metadata(&spans[0])));
        assert!(!table.contains(metadata(&spans[1])));
        assert!(table.contains(metadata(&spans[2])));
        // A callsite sharing `a`'s slot, inserted after it, takes the slot: `a` is then a
        // miss (the slow path), never taken for another.
        let (slot, _) = table.slot(metadata(&spans[0]));
        slot.store(8, std::sync::atomic::Ordering::Relaxed);
        assert!(!table.contains(metadata(&spans[0])));
    }
}
