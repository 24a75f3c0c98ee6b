//! The layer composes with `fmt`, `EnvFilter`, `tracing-opentelemetry` and other layers in any
//! order; spans moved between threads, `follows_from` links and spans dropped early land their
//! cost in the right place; other layers read the totals from the extensions.

#[path = "support/common.rs"]
mod common;
use common::{rejected_call, usd};

use std::sync::{Arc, Mutex};

use cost_layer::cost_core::Money;
use cost_layer::{CostLayer, CostRecord, Dimension, Ledger, LedgerKey, Scope};
use opentelemetry::trace::TracerProvider as _;
use tracing::field::Empty;
use tracing::{Subscriber, info_span};
use tracing_subscriber::layer::Context;
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{EnvFilter, Layer};

#[path = "support/warnings.rs"]
mod warnings;
use warnings::Warnings;

/// One session with two agents and three calls: 0.0035 + 0.0035 + 0.00075.
fn workload() {
    let session = info_span!("session", session.id = "s", cost.feature = "f");
    let _s = session.enter();
    for agent in ["a", "b"] {
        let span = info_span!("agent", gen_ai.agent.name = agent);
        let _a = span.enter();
        let call = info_span!(
            "chat",
            gen_ai.request.model = "gpt-4o",
            gen_ai.usage.input_tokens = Empty,
            gen_ai.usage.output_tokens = Empty
        );
        call.record("gen_ai.usage.input_tokens", 1_000);
        call.record("gen_ai.usage.output_tokens", 100);
    }
    info_span!(
        "chat",
        gen_ai.request.model = "gpt-4o-mini",
        gen_ai.usage.input_tokens = 1_000,
        gen_ai.usage.output_tokens = 1_000
    )
    .in_scope(|| {});
}

fn check(ledger: &Ledger) {
    assert_eq!(
        ledger.session("s").map(|t| t.total_usd()),
        Some(usd("0.00775"))
    );
    assert_eq!(
        ledger.agent("a").map(|t| t.total_usd()),
        Some(usd("0.0035"))
    );
    assert_eq!(ledger.feature("f").map(|t| t.llm_calls), Some(3));
}

fn otel_layer<S>() -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    tracing_opentelemetry::layer().with_tracer(provider.tracer("test"))
}

#[test]
fn with_fmt_and_env_filter_in_any_order() {
    let (cost, ledger) = CostLayer::builder().build();
    let subscriber = tracing_subscriber::registry()
        .with(cost)
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::sink))
        .with(EnvFilter::new("trace"));
    tracing::subscriber::with_default(subscriber, workload);
    check(&ledger);

    let (cost, ledger) = CostLayer::builder().build();
    let subscriber = tracing_subscriber::registry()
        .with(EnvFilter::new("info"))
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::sink))
        .with(cost);
    tracing::subscriber::with_default(subscriber, workload);
    check(&ledger);
}

#[test]
fn with_tracing_opentelemetry_before_and_after() {
    let (cost, ledger) = CostLayer::builder().build();
    let subscriber = tracing_subscriber::registry().with(otel_layer()).with(cost);
    tracing::subscriber::with_default(subscriber, workload);
    check(&ledger);

    let (cost, ledger) = CostLayer::builder().build();
    let subscriber = tracing_subscriber::registry().with(cost).with(otel_layer());
    tracing::subscriber::with_default(subscriber, workload);
    check(&ledger);
}

#[test]
fn a_per_layer_filter_on_another_layer_does_not_hide_spans_from_this_one() {
    let (cost, ledger) = CostLayer::builder().build();
    let subscriber = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::sink)
                .with_filter(EnvFilter::new("off")),
        )
        .with(cost);
    tracing::subscriber::with_default(subscriber, workload);
    check(&ledger);
}

#[test]
fn under_a_per_layer_filter_the_layer_sees_only_what_it_enables_and_misses_no_call() {
    // The filter hides the agent spans and a plain span from this layer (not from the others):
    // the calls under them roll up to the session, and the session's totals are every call's.
    let (cost, ledger) = CostLayer::builder().build();
    let hidden = tracing_subscriber::filter::filter_fn(|metadata| {
        metadata.name() != "agent" && metadata.name() != "hidden"
    });
    let subscriber = tracing_subscriber::registry().with(cost.with_filter(hidden));
    tracing::subscriber::with_default(subscriber, || {
        let outer = info_span!("hidden");
        let _o = outer.enter();
        workload();
    });
    let global = ledger.global();
    assert_eq!(
        (global.llm_calls, global.total_usd(), global.agent_runs),
        (3, usd("0.00775"), 0)
    );
    let session = ledger.session("s").unwrap_or_else(|| panic!("no session"));
    assert_eq!(
        (session.llm_calls, session.total_usd()),
        (3, usd("0.00775"))
    );
    assert!(
        ledger.agent("a").is_none(),
        "the agents were hidden from the layer"
    );
}

/// Reads the layer's record in its own `on_close`, as any layer added after `CostLayer` can.
#[derive(Clone, Default)]
struct Reader(Arc<Mutex<Vec<Seen>>>);

/// A span's record as the reader saw it.
#[derive(Clone, Debug)]
struct Seen {
    name: String,
    scope: Scope,
    total: Money,
    closed: bool,
    session: Option<String>,
    debug: String,
}

impl<S> Layer<S> for Reader
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_close(&self, id: tracing::span::Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        if let Some(record) = span.extensions().get::<CostRecord>()
            && let Ok(mut seen) = self.0.lock()
        {
            seen.push(Seen {
                name: span.name().to_owned(),
                scope: record.scope(),
                total: record.totals().total_usd(),
                closed: record.is_closed(),
                session: record.attribution().session.as_deref().map(str::to_owned),
                debug: format!("{record:?}"),
            });
        }
    }
}

#[test]
fn other_layers_read_the_totals_from_the_extensions() {
    let (cost, _ledger) = CostLayer::builder().build();
    let reader = Reader::default();
    let subscriber = tracing_subscriber::registry()
        .with(cost)
        .with(reader.clone());
    tracing::subscriber::with_default(subscriber, workload);
    let seen = reader.0.lock().map(|v| v.clone()).unwrap_or_default();
    let session = seen
        .iter()
        .find(|seen| seen.name == "session")
        .unwrap_or_else(|| panic!("{seen:?}"));
    assert_eq!(
        (session.scope, session.total, session.closed),
        (Scope::Session, usd("0.00775"), true)
    );
    assert!(
        session
            .debug
            .starts_with("CostRecord { scope: Session, attribution: ")
            && session.debug.ends_with(", .. }"),
        "{}",
        session.debug
    );
    assert_eq!(seen.iter().filter(|s| s.scope == Scope::Call).count(), 3);
    // Every span's record says its session, inherited or its own.
    assert!(
        seen.iter().all(|seen| seen.session.as_deref() == Some("s")),
        "{seen:?}"
    );
}

#[test]
fn a_layer_closing_before_cost_layer_reads_a_record_not_yet_closed() {
    let (cost, _ledger) = CostLayer::builder().build();
    let reader = Reader::default();
    // Layers close from the innermost out: the reader here closes each span first.
    let subscriber = tracing_subscriber::registry()
        .with(reader.clone())
        .with(cost);
    tracing::subscriber::with_default(subscriber, workload);
    let seen = reader.0.lock().map(|v| v.clone()).unwrap_or_default();
    assert_eq!(seen.len(), 6, "{seen:?}");
    assert!(seen.iter().all(|seen| !seen.closed), "{seen:?}");
}

#[test]
fn spans_moved_between_threads_charge_their_session() {
    let (cost, ledger) = CostLayer::builder().build();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(cost));
    tracing::dispatcher::with_default(&dispatch, || {
        let session = info_span!("session", session.id = "moved");
        let calls: Vec<_> = (0..4)
            .map(|_| {
                info_span!(
                    parent: &session,
                    "chat",
                    gen_ai.request.model = "gpt-4o",
                    gen_ai.usage.input_tokens = Empty,
                    gen_ai.usage.output_tokens = Empty
                )
            })
            .collect();
        // Each call span is recorded and closed on another thread, like a task moved by an
        // executor; the session is dropped first, before its children.
        drop(session);
        let workers: Vec<_> = calls
            .into_iter()
            .map(|call| {
                std::thread::spawn(move || {
                    call.record("gen_ai.usage.input_tokens", 1_000);
                    call.record("gen_ai.usage.output_tokens", 100);
                })
            })
            .collect();
        for worker in workers {
            worker.join().unwrap_or_else(|_| panic!("worker panicked"));
        }
    });
    let session = ledger
        .session("moved")
        .unwrap_or_else(|| panic!("no session"));
    assert_eq!((session.llm_calls, session.total_usd()), (4, usd("0.014")));
}

#[test]
fn follows_from_takes_the_attribution_of_the_span_it_follows() {
    let (cost, ledger) = CostLayer::builder().build();
    let subscriber = tracing_subscriber::registry().with(cost);
    tracing::subscriber::with_default(subscriber, || {
        let session = info_span!("session", session.id = "linked", cost.feature = "batch-job");
        // A background task with no parent, linked to the session that spawned it.
        let task = info_span!(parent: None, "background_summary", gen_ai.request.model = "gpt-4o", gen_ai.usage.input_tokens = Empty, gen_ai.usage.output_tokens = Empty);
        task.follows_from(&session);
        task.record("gen_ai.usage.input_tokens", 1_000);
        task.record("gen_ai.usage.output_tokens", 100);
        drop(task);
        drop(session);
    });
    assert_eq!(
        ledger.session("linked").map(|t| t.total_usd()),
        Some(usd("0.0035"))
    );
    assert_eq!(ledger.feature("batch-job").map(|t| t.llm_calls), Some(1));
}

/// Found by comparing two layers in one subscriber with one alone (`field_ops.rs`): a plain
/// span opened under a task before the task was linked to its session, and a call under that
/// plain span, charged differently when a cost tree was drawn (the plain span then kept a copy
/// of the task's attribution from before the link).
#[test]
fn follows_from_reaches_calls_under_plain_spans_with_or_without_a_cost_tree() {
    for tree in [false, true] {
        let builder = CostLayer::builder();
        let builder = if tree {
            builder.cost_tree(|_| {})
        } else {
            builder
        };
        let (cost, ledger) = builder.build();
        let subscriber = tracing_subscriber::registry().with(cost);
        tracing::subscriber::with_default(subscriber, || {
            let session = info_span!("session", session.id = "spawner");
            let task = info_span!(parent: None, "task", cost.feature = "digest");
            let step = info_span!(parent: &task, "step");
            // A plain span following the session's plain child passes on the session too.
            let child = info_span!(parent: &session, "child");
            task.follows_from(&child);
            info_span!(
                parent: &step,
                "chat",
                gen_ai.request.model = "gpt-4o",
                gen_ai.usage.input_tokens = 1_000,
                gen_ai.usage.output_tokens = 100
            )
            .in_scope(|| {});
        });
        assert_eq!(
            ledger
                .session("spawner")
                .map(|t| (t.llm_calls, t.total_usd())),
            Some((1, usd("0.0035"))),
            "tree: {tree}"
        );
        assert_eq!(ledger.feature("digest").map(|t| t.llm_calls), Some(1));
    }
}

/// A builder keeping one closed session.
fn keeping_one_closed_session() -> cost_layer::CostLayerBuilder {
    CostLayer::builder().retention(cost_layer::Retention {
        max_closed_sessions: Some(1),
        ttl: None,
        ..cost_layer::Retention::default()
    })
}

/// A task following session `gone` (feature `digest`) records its call's usage after two more
/// sessions closed, evicting `gone` (when one closed session is kept).
fn late_call_after_its_session_is_evicted(dispatch: &tracing::Dispatch, ledger: &Ledger) {
    tracing::dispatcher::with_default(dispatch, || {
        let session = info_span!("session", session.id = "gone", cost.feature = "digest");
        let task = info_span!(parent: None, "late_summary", gen_ai.request.model = "gpt-4o", gen_ai.usage.input_tokens = Empty, gen_ai.usage.output_tokens = Empty);
        task.follows_from(&session);
        drop(session);
        for id in ["next", "after"] {
            drop(info_span!(parent: None, "session", session.id = id));
        }
        assert!(ledger.session("gone").is_none(), "evicted");
        task.record("gen_ai.usage.input_tokens", 1_000);
        task.record("gen_ai.usage.output_tokens", 100);
    });
}

#[test]
fn a_call_following_an_evicted_session_without_combinations_is_counted_too() {
    let (cost, ledger) = keeping_one_closed_session().build();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(cost));
    late_call_after_its_session_is_evicted(&dispatch, &ledger);
    assert_eq!(ledger.global().llm_calls, 1);
    assert!(ledger.session("gone").is_none());
    assert_eq!(ledger.diagnostics().posts_to_evicted_sessions, 1);
}

#[test]
fn a_call_following_a_session_evicted_before_it_closes_is_counted_not_lost() {
    let (cost, ledger) = keeping_one_closed_session()
        .combination(Dimension::Session, Dimension::Model)
        .combination(Dimension::Session, Dimension::Feature)
        .build();
    let (dispatch, warnings) = Warnings::beside(cost, &["cost_layer"]);
    late_call_after_its_session_is_evicted(&dispatch, &ledger);
    // Its cost is in the model's totals; the evicted session cannot show it: counted, once.
    assert_eq!(
        ledger.model("gpt-4o").map(|t| t.total_usd()),
        Some(usd("0.0035"))
    );
    assert!(ledger.session("gone").is_none());
    assert_eq!(ledger.diagnostics().posts_to_evicted_sessions, 1);
    assert_eq!(
        warnings.containing("already evicted"),
        1,
        "{:?}",
        warnings.seen()
    );
    // No combination with it is left behind: the session × feature cell went with the session,
    // and the session × model one, made by the late call, was never kept.
    let gone =
        |other: (Dimension, &str)| ledger.get(&LedgerKey::two((Dimension::Session, "gone"), other));
    assert!(gone((Dimension::Feature, "digest")).is_none());
    assert!(gone((Dimension::Model, "gpt-4o")).is_none());
    assert!(
        ledger
            .snapshot()
            .keys
            .iter()
            .all(|(key, _)| !format!("{key:?}").contains("gone")),
        "{:?}",
        ledger.snapshot().keys
    );
}

#[test]
fn a_call_dropped_before_usage_is_recorded_charges_nothing() {
    let (cost, ledger) = CostLayer::builder().build();
    let subscriber = tracing_subscriber::registry().with(cost);
    tracing::subscriber::with_default(subscriber, || {
        let session = info_span!("session", session.id = "early");
        let _s = session.enter();
        let call = info_span!(
            "chat",
            gen_ai.request.model = "gpt-4o",
            gen_ai.usage.input_tokens = Empty
        );
        drop(call);
        // A call span around calls that charged (a retry wrapper, say) has its cost in them.
        let wrapper = info_span!("with_retries", cost.scope = "call");
        let _w = wrapper.enter();
        info_span!(
            "chat",
            gen_ai.request.model = "gpt-4o",
            gen_ai.usage.input_tokens = 1_000
        )
        .in_scope(|| {});
    });
    let session = ledger
        .session("early")
        .unwrap_or_else(|| panic!("no session"));
    assert_eq!((session.llm_calls, session.total_usd()), (1, usd("0.0025")));
    // The dropped call is counted: what it cost, if anything, is unknown.
    assert_eq!(ledger.diagnostics().calls_without_usage, 1);
}

/// The fields of the events emitted while `work` runs under a layer with close events on, one
/// `name=value ` string per event.
fn close_event_lines(work: impl FnOnce()) -> Vec<String> {
    #[derive(Clone, Default)]
    struct Events(Arc<Mutex<Vec<String>>>);
    impl<S: Subscriber> Layer<S> for Events {
        fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
            struct Fields(String);
            impl tracing::field::Visit for Fields {
                fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                    self.0.push_str(&format!("{}={v:?} ", f.name()));
                }
            }
            let mut fields = Fields(String::new());
            event.record(&mut fields);
            if let Ok(mut events) = self.0.lock() {
                events.push(fields.0);
            }
        }
    }
    let (cost, _ledger) = CostLayer::builder().close_events(true).build();
    let events = Events::default();
    let subscriber = tracing_subscriber::registry()
        .with(cost)
        .with(events.clone());
    tracing::subscriber::with_default(subscriber, work);
    events.0.lock().map(|e| e.clone()).unwrap_or_default()
}

#[test]
fn close_events_carry_the_totals_for_fmt() {
    let events = close_event_lines(workload);
    let agent = events
        .iter()
        .find(|e| e.contains("agent.total_tokens"))
        .unwrap_or_else(|| panic!("{events:?}"));
    assert!(
        agent.contains("agent.total_tokens=1100 ")
            && agent.contains("agent.total_cost_usd=0.0035 ")
            && agent.contains("agent.llm_calls=1 "),
        "{agent}"
    );
    // Each line names what it totals: the agent, its session and feature (inherited).
    let agent_lines: Vec<&String> = events
        .iter()
        .filter(|e| e.contains("agent.total_tokens"))
        .collect();
    assert_eq!(agent_lines.len(), 2, "{events:?}");
    for (line, name) in agent_lines.iter().zip(["a", "b"]) {
        assert!(
            line.contains(&format!("gen_ai.agent.name=\"{name}\" "))
                && line.contains("session.id=\"s\" ")
                && line.contains("cost.feature=\"f\" "),
            "{line}"
        );
    }
    let session = events
        .iter()
        .find(|e| e.contains("session.total_tokens"))
        .unwrap_or_else(|| panic!("{events:?}"));
    assert!(
        session.contains("session.total_tokens=4200 ")
            && session.contains("session.total_cost_usd=0.00775 ")
            && session.contains("session.agent_runs=2 ")
            && session.contains("session.llm_calls=3 ")
            && session.contains("session.unpriced_calls=0 ")
            && session.contains("session.rejected_calls=0 ")
            && session.contains("session.id=\"s\" ")
            && session.contains("cost.feature=\"f\" ")
            && !session.contains("gen_ai.agent.name"),
        "{session}"
    );
}

#[test]
fn close_events_count_the_unpriced_and_rejected_calls_their_cost_leaves_out() {
    let events = close_event_lines(|| {
        let session = info_span!("session", session.id = "s");
        let _s = session.enter();
        let agent = info_span!("agent", gen_ai.agent.name = "a");
        let _a = agent.enter();
        gpt_4o_call();
        info_span!(
            "chat",
            gen_ai.request.model = "no-such-model-anywhere",
            gen_ai.usage.input_tokens = 10,
            gen_ai.usage.output_tokens = 1
        )
        .in_scope(|| {});
        rejected_call();
    });
    let find = |name: &str| {
        events
            .iter()
            .find(|e| e.contains(name))
            .unwrap_or_else(|| panic!("no {name} in {events:?}"))
            .clone()
    };
    let agent = find("agent.total_cost_usd");
    assert!(
        agent.contains("agent.total_cost_usd=0.0035 ")
            && agent.contains("agent.unpriced_calls=1 ")
            && agent.contains("agent.rejected_calls=1 "),
        "{agent}"
    );
    let session = find("session.total_cost_usd");
    assert!(
        session.contains("session.total_cost_usd=0.0035 ")
            && session.contains("session.unpriced_calls=1 ")
            && session.contains("session.rejected_calls=1 "),
        "{session}"
    );
}

/// The cost trees drawn while `work` runs under a layer that draws them.
fn drawn_trees(work: impl FnOnce()) -> Vec<String> {
    let trees = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&trees);
    let (cost, _ledger) = CostLayer::builder()
        .cost_tree(move |tree| {
            if let Ok(mut trees) = sink.lock() {
                trees.push(tree.to_string());
            }
        })
        .build();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(cost), work);
    trees.lock().map(|t| t.clone()).unwrap_or_default()
}

#[test]
fn cost_tree_shows_where_the_money_went() {
    let trees = drawn_trees(|| {
        workload();
        // A plain span outside any session is not drawn.
        info_span!("outside").in_scope(|| {});
    });
    assert_eq!(trees.len(), 1);
    let tree = &trees[0];
    let lines: Vec<&str> = tree.lines().collect();
    assert_eq!(lines.len(), 6, "{tree}");
    assert!(
        lines[0].starts_with("session session [s]  $0.00775 · 4200 tokens · 3 calls"),
        "{tree}"
    );
    assert!(
        lines[1].starts_with("├─ agent agent [a]  $0.0035"),
        "{tree}"
    );
    assert!(
        lines[2].starts_with("│  └─ call chat [gpt-4o]  $0.0035"),
        "{tree}"
    );
    assert!(
        lines[5].starts_with("└─ call chat [gpt-4o-mini]  $0.00075"),
        "{tree}"
    );
}

#[test]
fn cost_tree_merges_alike_siblings_into_one_counted_line() {
    let trees = drawn_trees(|| {
        let session = info_span!("session", session.id = "s");
        let _s = session.enter();
        for _ in 0..3 {
            gpt_4o_call();
        }
        // Rejected: its cost is unknown, and the session's a lower bound.
        rejected_call();
    });
    let lines: Vec<&str> = trees.iter().flat_map(|tree| tree.lines()).collect();
    assert_eq!(
        lines,
        [
            "session session [s]  ≥ $0.0105 · 3300 tokens · 3 calls · 1 rejected",
            "├─ call chat [gpt-4o] ×3  $0.0105 · 3300 tokens · 3 calls",
            "└─ call chat [gpt-4o-mini]  $? · 0 tokens · 0 calls · 1 rejected",
        ]
    );
}

/// One session → plain `tool` span → call, with a field the layer does not read on the tool.
fn call_under_a_tool() {
    let session = info_span!("session", session.id = "s");
    let _s = session.enter();
    let tool = info_span!("tool", tool.name = Empty);
    let _t = tool.enter();
    tool.record("tool.name", "search");
    gpt_4o_call();
}

/// A gpt-4o call of 1 000 input and 100 output tokens ($0.0035), under the current span.
fn gpt_4o_call() {
    info_span!(
        "chat",
        gen_ai.request.model = "gpt-4o",
        gen_ai.usage.input_tokens = 1_000,
        gen_ai.usage.output_tokens = 100
    )
    .in_scope(|| {});
}

/// Each listed layer's record of every span, read at close: (span, layer, total).
#[derive(Clone, Default)]
struct RecordsByLayer {
    layers: Vec<u64>,
    seen: Arc<Mutex<Vec<(String, u64, Money)>>>,
}

impl<S> Layer<S> for RecordsByLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_close(&self, id: tracing::span::Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let extensions = span.extensions();
        let Some(first) = extensions.get::<CostRecord>() else {
            return;
        };
        for &layer in &self.layers {
            if let Some(record) = first.of_layer(layer)
                && let Ok(mut seen) = self.seen.lock()
            {
                seen.push((span.name().to_owned(), layer, record.totals().total_usd()));
            }
        }
    }
}

#[test]
fn two_cost_layers_in_one_subscriber_keep_their_own_records() {
    let trees = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&trees);
    // One draws trees (so it keeps records of plain spans too) at the embedded prices; the
    // other does not, at gpt-4o prices twice as high.
    let (drawing, drawn) = CostLayer::builder()
        .cost_tree(move |tree| {
            if let Ok(mut trees) = sink.lock() {
                trees.push(tree.to_string());
            }
        })
        .build();
    let doubled = cost_layer::cost_core::PriceTable::from_text(
        "version = \"doubled\"\n[models.gpt-4o]\ninput = \"5\"\noutput = \"20\"\n",
        "doubled.toml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (plain, skipped) = CostLayer::builder().prices(doubled).build();
    // A layer and its ledger name the same id; two layers, two ids.
    assert_eq!(
        (drawing.id(), plain.id()),
        (drawn.layer_id(), skipped.layer_id())
    );
    assert_ne!(drawing.id(), plain.id());
    let reader = RecordsByLayer {
        layers: vec![drawn.layer_id(), skipped.layer_id()],
        ..RecordsByLayer::default()
    };
    let subscriber = tracing_subscriber::registry()
        .with(plain)
        .with(drawing)
        .with(reader.clone());
    tracing::subscriber::with_default(subscriber, || {
        // Twice: the second time, the layer without a tree knows `tool` is plain.
        call_under_a_tool();
        call_under_a_tool();
    });
    for (ledger, total) in [(&drawn, "0.007"), (&skipped, "0.014")] {
        assert_eq!(
            ledger.session("s").map(|t| (t.llm_calls, t.total_usd())),
            Some((2, usd(total)))
        );
    }
    let trees = trees.lock().map(|t| t.clone()).unwrap_or_default();
    assert_eq!(trees.len(), 2);
    for tree in &trees {
        let lines: Vec<&str> = tree.lines().collect();
        assert_eq!(lines.len(), 3, "{tree}");
        assert!(lines[1].starts_with("└─ span tool  $0.0035"), "{tree}");
        assert!(lines[2].contains("call chat [gpt-4o]  $0.0035"), "{tree}");
    }
    let seen = reader.seen.lock().map(|v| v.clone()).unwrap_or_default();
    let of = |name: &str, ledger: &Ledger| -> Vec<Money> {
        seen.iter()
            .filter(|(n, layer, _)| n == name && *layer == ledger.layer_id())
            .map(|(_, _, total)| *total)
            .collect()
    };
    assert_eq!(of("session", &drawn), vec![usd("0.0035"); 2]);
    assert_eq!(of("session", &skipped), vec![usd("0.007"); 2]);
    assert_eq!(of("tool", &drawn), vec![usd("0.0035"); 2]);
    assert!(of("tool", &skipped).is_empty(), "{seen:?}");
}

#[test]
fn three_cost_layers_in_one_subscriber_each_keep_their_record_of_every_span() {
    let layers: Vec<(CostLayer, Ledger)> = (0..3).map(|_| CostLayer::builder().build()).collect();
    let reader = RecordsByLayer {
        layers: layers.iter().map(|(_, ledger)| ledger.layer_id()).collect(),
        ..RecordsByLayer::default()
    };
    let mut ledgers = Vec::new();
    let mut stack: Vec<Box<dyn Layer<tracing_subscriber::Registry> + Send + Sync>> = Vec::new();
    for (layer, ledger) in layers {
        stack.push(Box::new(layer));
        ledgers.push(ledger);
    }
    let subscriber = tracing_subscriber::registry()
        .with(stack)
        .with(reader.clone());
    tracing::subscriber::with_default(subscriber, || {
        let session = info_span!("session", session.id = "s");
        let _s = session.enter();
        gpt_4o_call();
    });
    let seen = reader.seen.lock().map(|v| v.clone()).unwrap_or_default();
    for ledger in &ledgers {
        let of_layer: Vec<(&str, Money)> = seen
            .iter()
            .filter(|(_, layer, _)| *layer == ledger.layer_id())
            .map(|(name, _, total)| (name.as_str(), *total))
            .collect();
        assert_eq!(
            of_layer,
            [("chat", usd("0.0035")), ("session", usd("0.0035"))],
            "{seen:?}"
        );
    }
}
