//! Configuration of a [`CostLayer`].

use std::sync::Arc;
use std::time::Instant;

use cost_core::{PriceTable, SharedPriceTable};

use crate::attribution::UserIds;
use crate::fields::{FieldNames, FieldRole};
use crate::layer::{CostLayer, SpanClose};
use crate::ledger::{Dimension, Ledger, Retention};
use crate::tree::CostTree;

type Filter = Box<dyn Fn(&SpanClose<'_>) -> bool + Send + Sync>;
type Callback = Box<dyn Fn(&SpanClose<'_>) + Send + Sync>;
/// Receives budget alerts.
pub(crate) type AlertHandler = Box<dyn Fn(&cost_core::budget::BudgetAlert) + Send + Sync>;
/// Receives each session's cost tree.
pub(crate) type TreeSink = Box<dyn Fn(&CostTree) + Send + Sync>;

/// A close callback and the filter that picks its spans.
pub(crate) struct CloseCallback {
    pub(crate) filter: Option<Filter>,
    pub(crate) run: Callback,
}

/// Builds a [`CostLayer`] and its [`Ledger`]. Every setting has a default: the embedded price
/// table, the field names of [`crate::fields`], random-keyed user-id hashing, the default
/// [`Retention`], no callbacks, no close events, no cost tree, stale prices warned about after
/// [`DEFAULT_PRICE_AGE_LIMIT_DAYS`](cost_core::DEFAULT_PRICE_AGE_LIMIT_DAYS).
pub struct CostLayerBuilder {
    pub(crate) names: FieldNames,
    pub(crate) prices: Arc<SharedPriceTable>,
    pub(crate) callbacks: Vec<CloseCallback>,
    pub(crate) retention: Retention,
    pub(crate) user_ids: Option<UserIds>,
    pub(crate) combinations: Vec<(Dimension, Dimension)>,
    pub(crate) close_events: bool,
    pub(crate) tree_sink: Option<TreeSink>,
    pub(crate) clock: Arc<dyn Fn() -> Instant + Send + Sync>,
    pub(crate) budgets: Option<cost_core::budget::BudgetBook>,
    pub(crate) alert_handlers: Vec<AlertHandler>,
    pub(crate) call_sink: Option<Box<dyn crate::CallSink>>,
    pub(crate) price_age_limit: Option<u32>,
    pub(crate) charge_reported_cost: bool,
    pub(crate) live_record_bits: u32,
    #[cfg(feature = "otel")]
    pub(crate) otel_spans: bool,
}

impl Default for CostLayerBuilder {
    fn default() -> Self {
        CostLayerBuilder {
            names: FieldNames::default(),
            prices: Arc::new(SharedPriceTable::default()),
            callbacks: Vec::new(),
            retention: Retention::default(),
            user_ids: None,
            combinations: Vec::new(),
            close_events: false,
            tree_sink: None,
            clock: Arc::new(Instant::now),
            budgets: None,
            alert_handlers: Vec::new(),
            call_sink: None,
            price_age_limit: Some(cost_core::DEFAULT_PRICE_AGE_LIMIT_DAYS),
            charge_reported_cost: false,
            live_record_bits: crate::live_records::LiveRecords::DEFAULT_BITS,
            #[cfg(feature = "otel")]
            otel_spans: false,
        }
    }
}

impl CostLayerBuilder {
    /// Prices calls with `table`.
    pub fn prices(mut self, table: PriceTable) -> Self {
        self.prices = Arc::new(SharedPriceTable::new(table));
        self
    }

    /// Prices calls with a table that can be replaced while the program runs: store a new one
    /// in `table` and the next calls are priced with it.
    pub fn shared_prices(mut self, table: Arc<SharedPriceTable>) -> Self {
        self.prices = table;
        self
    }

    /// Warns (once per date the prices were read, target `cost_layer::prices`) and counts in
    /// [`Diagnostics::stale_prices`](crate::Diagnostics::stale_prices) when a call is charged at
    /// a price read more than `days` days ago (the `as_of` date of the entry that priced it;
    /// native price files give each entry the file's date unless it has its own); `None` never
    /// does. The default is
    /// [`DEFAULT_PRICE_AGE_LIMIT_DAYS`](cost_core::DEFAULT_PRICE_AGE_LIMIT_DAYS). Calls are
    /// charged at the price either way: a stale price is a warning, not an unknown one. Entries
    /// without a date (LiteLLM's file has none) are never reported. A price's age is read when
    /// a thread first prices its model with a table.
    pub fn price_age_limit(mut self, days: Option<u32>) -> Self {
        self.price_age_limit = days;
        self
    }

    /// Charges a call the price table has no price for at the cost its provider reported
    /// (`cost.reported_cost_usd`: OpenRouter's and Perplexity's `usage.cost`, read by
    /// `#[llm_call]` from the answer), when the answer reported one. Off by default: such a call
    /// is unpriced, its cost unknown.
    ///
    /// On, the call's cost is the provider's figure, in
    /// [`CostBreakdown::provider_reported`](cost_core::CostBreakdown::provider_reported), and it
    /// counts in [`Totals::provider_reported_calls`](crate::Totals::provider_reported_calls)
    /// instead of [`Totals::unpriced_calls`](crate::Totals::unpriced_calls): its spans, the
    /// ledger, budgets (at close), call sinks and exports read it like any cost (OpenTelemetry's
    /// `gen_ai.usage.cost.source` is then `provider`). A cache hit of such a model saves that
    /// figure. What does not change: a call the table prices is charged at the table's price
    /// (the reported figure is only compared with it, see
    /// [`Diagnostics::reported_cost_mismatches`](crate::Diagnostics::reported_cost_mismatches));
    /// a call without a reported cost stays unpriced; a budget cannot bound such a call before
    /// it runs (the book's `unpriced_calls` policy still decides its reservation), it only
    /// charges what it cost when it closes.
    pub fn charge_reported_cost_when_unpriced(mut self, on: bool) -> Self {
        self.charge_reported_cost = on;
        self
    }

    /// Reads the span field `name` as `role`, in addition to (or instead of, for a default
    /// name) the names of [`crate::fields`].
    pub fn field(mut self, name: &str, role: FieldRole) -> Self {
        self.names.set(name, role);
        self
    }

    /// Calls `callback` with the totals of every session, agent and call span when it closes.
    /// A panicking callback is caught and counted in
    /// [`Diagnostics::callback_panics`](crate::Diagnostics::callback_panics).
    pub fn on_close(mut self, callback: impl Fn(&SpanClose<'_>) + Send + Sync + 'static) -> Self {
        self.callbacks.push(CloseCallback {
            filter: None,
            run: Box::new(callback),
        });
        self
    }

    /// Like [`CostLayerBuilder::on_close`], for the spans `filter` accepts.
    pub fn on_close_filtered(
        mut self,
        filter: impl Fn(&SpanClose<'_>) -> bool + Send + Sync + 'static,
        callback: impl Fn(&SpanClose<'_>) + Send + Sync + 'static,
    ) -> Self {
        self.callbacks.push(CloseCallback {
            filter: Some(Box::new(filter)),
            run: Box::new(callback),
        });
        self
    }

    /// How long closed sessions stay in the ledger, and how many keys of the other dimensions
    /// it holds (see [`Retention`]; set the fields you change over `..Retention::default()`).
    pub fn retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// Hashes user ids with a key derived from `secret` (stable across processes that share
    /// it), instead of a random per-process key. Needed wherever a user's key must mean the
    /// same in every process: per-user budgets in shared accounts, calls stored for reports
    /// (without it the layer warns at the first user id).
    pub fn user_id_key(mut self, secret: &[u8]) -> Self {
        self.user_ids = Some(UserIds::keyed(secret));
        self
    }

    /// Keeps user ids as given, unhashed. They then appear in the ledger and in callbacks.
    pub fn raw_user_ids(mut self) -> Self {
        self.user_ids = Some(UserIds::Raw);
        self
    }

    /// Also keeps totals by the combination of two dimensions (feature × model, user ×
    /// feature, …), read with [`Ledger::get`] and [`LedgerKey::Two`](crate::LedgerKey::Two),
    /// its two parts in the order declared here (`(a, b)` and `(b, a)` are two keys, each
    /// kept when declared). A pair declared again is kept once; a dimension paired with
    /// itself keeps nothing (its totals are the dimension's own). Combinations with the
    /// session are evicted with their session.
    pub fn combination(mut self, first: Dimension, second: Dimension) -> Self {
        self.combinations.push((first, second));
        self
    }

    /// Emits an `INFO` event (target `cost_layer`) when a session or agent span closes, with
    /// `session.total_tokens`, `session.total_cost_usd`, `session.agent_runs` or
    /// `agent.total_tokens`, `agent.total_cost_usd`, `agent.llm_calls`, so `fmt` prints them,
    /// beside the unpriced and rejected calls that make the cost a lower bound
    /// (`session.unpriced_calls`, `session.rejected_calls`, …);
    /// and what the totals belong to, so a line stands on its own where spans are not printed:
    /// `session.id`, `cost.feature` and on agent runs `gen_ai.agent.name` (each when the span
    /// has it, set on itself or inherited). Names: [`crate::fields::close_event`].
    pub fn close_events(mut self, on: bool) -> Self {
        self.close_events = on;
        self
    }

    /// Builds each session's cost tree (every span with its subtotal) and gives it to `sink`
    /// when the session closes; `format!("{tree}")` draws it. The layer itself does no I/O.
    pub fn cost_tree(mut self, sink: impl Fn(&CostTree) + Send + Sync + 'static) -> Self {
        self.tree_sink = Some(Box::new(sink));
        self
    }

    /// The clock retention reads (tests inject one; the default is `Instant::now`).
    pub fn clock(mut self, clock: impl Fn() -> Instant + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Enforces and alerts on the budgets of `book` (see [`crate::budget`]): every call's cost
    /// is posted to it at close, reservations made before calls are settled, and alerts go to
    /// the handlers of [`CostLayerBuilder::on_budget_alert`] and out as `WARN` events (target
    /// `cost_layer::budget`).
    pub fn budgets(mut self, book: cost_core::budget::BudgetBook) -> Self {
        self.budgets = Some(book);
        self
    }

    /// Calls `handler` with every budget alert (a panicking handler is caught and counted).
    pub fn on_budget_alert(
        mut self,
        handler: impl Fn(&cost_core::budget::BudgetAlert) + Send + Sync + 'static,
    ) -> Self {
        self.alert_handlers.push(Box::new(handler));
        self
    }

    /// Puts each call's cost (and agent and session totals) on the spans `tracing-opentelemetry`
    /// exports; see [`crate::otel`] for the attributes and the layer order. Feature `otel`.
    /// Turn it on in one `CostLayer` of a subscriber: with several (two price tables side by
    /// side, say), each sets the same attribute names on the same spans, and the exported value
    /// is whichever layer wrote last.
    #[cfg(feature = "otel")]
    pub fn otel_span_attributes(mut self, on: bool) -> Self {
        self.otel_spans = on;
        self
    }

    /// Records the token-usage histogram and the cost counter of [`crate::export`] on `meter`
    /// for every call that closes. Feature `otel`.
    #[cfg(feature = "otel")]
    pub fn otel_metrics(
        self,
        meter: &opentelemetry::metrics::Meter,
        options: crate::export::MetricOptions,
    ) -> Self {
        let metrics = crate::otel::OtelMetrics::new(meter, options);
        self.on_close_filtered(
            |close| close.scope == crate::Scope::Call,
            move |close| metrics.record(close),
        )
    }

    /// Records the instruments of [`crate::export`] through the `metrics` crate facade, on
    /// whatever recorder is installed (`metrics-exporter-prometheus`, say). Feature `metrics`.
    #[cfg(feature = "metrics")]
    pub fn metrics(self, options: crate::export::MetricOptions) -> Self {
        let metrics = crate::metrics_facade::MetricsFacade::new(options);
        self.on_close_filtered(
            |close| close.scope == crate::Scope::Call,
            move |close| metrics.record(close),
        )
    }

    /// Hands every closed LLM call to `sink` (a durable ledger's writer, say); see
    /// [`crate::sink`]. Replaces an earlier sink.
    pub fn call_sink(mut self, sink: impl crate::CallSink) -> Self {
        self.call_sink = Some(Box::new(sink));
        self
    }

    /// Sizes the table of open spans holding a record at `2^bits` buckets of eight (default
    /// 512 buckets). Not a tuning knob: tests make it tiny to drive the path taken when more
    /// spans with records are open than the table holds.
    #[doc(hidden)]
    pub fn live_record_table_bits(mut self, bits: u32) -> Self {
        self.live_record_bits = bits.min(24);
        self
    }

    /// The layer and the handle that reads its ledger.
    pub fn build(self) -> (CostLayer, Ledger) {
        CostLayer::from_parts(self)
    }
}
