//! The layer on a real registry: roll-ups with exact values, attribution, counting once,
//! unpriced calls, bad field values, callbacks, retention, threads.

#[path = "support/common.rs"]
mod common;
use common::{rejected_call, usd};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cost_layer::cost_core::Money;
use cost_layer::{
    CostLayer, CostLayerBuilder, Dimension, Ledger, LedgerKey, Retention, Scope, SpanClose, Totals,
};
use tracing::field::Empty;
use tracing::{Dispatch, info_span};
use tracing_subscriber::prelude::*;

#[path = "support/warnings.rs"]
mod warnings;
use warnings::Warnings;

fn dispatch(builder: CostLayerBuilder) -> (Dispatch, Ledger) {
    let (layer, ledger) = builder.build();
    (
        Dispatch::new(tracing_subscriber::registry().with(layer)),
        ledger,
    )
}

/// Closed spans seen by a callback: (name, scope, totals).
type Closed = Arc<Mutex<Vec<(String, Scope, Totals)>>>;

fn recording(builder: CostLayerBuilder) -> (CostLayerBuilder, Closed) {
    let closed: Closed = Arc::default();
    let sink = Arc::clone(&closed);
    let builder = builder.on_close(move |c: &SpanClose<'_>| {
        if let Ok(mut v) = sink.lock() {
            v.push((c.name.to_owned(), c.scope, c.totals.clone()));
        }
    });
    (builder, closed)
}

fn find(closed: &Closed, name: &str) -> Totals {
    closed
        .lock()
        .ok()
        .and_then(|v| {
            v.iter()
                .find(|(n, _, _)| n == name)
                .map(|(_, _, t)| t.clone())
        })
        .unwrap_or_else(|| panic!("no span {name}"))
}

/// A call span the way `#[instrument(fields(… = Empty))]` declares one, recorded later.
fn call(model: &str, input: u64, output: u64) {
    let span = info_span!(
        "llm_call",
        gen_ai.request.model = model,
        gen_ai.usage.input_tokens = Empty,
        gen_ai.usage.output_tokens = Empty,
    );
    span.record("gen_ai.usage.input_tokens", input);
    span.record("gen_ai.usage.output_tokens", output);
}

/// A call of `model` (1 000 input, 100 output tokens) the application answered from its own
/// cache (`llm.cache.hit = true`): charged nothing, its cost counted as saved.
fn cache_hit(model: &str) {
    info_span!(
        "cached",
        gen_ai.request.model = model,
        gen_ai.usage.input_tokens = 1_000,
        gen_ai.usage.output_tokens = 100,
        llm.cache.hit = true
    )
    .in_scope(|| {});
}

#[test]
fn costs_roll_up_call_to_agent_to_session_exactly() {
    let (builder, closed) = recording(CostLayer::builder());
    let (dispatch, ledger) = dispatch(builder);
    tracing::dispatcher::with_default(&dispatch, || {
        let session = info_span!("session", session.id = "s-1", cost.feature = "support");
        let _s = session.enter();
        {
            let planner = info_span!("planner", gen_ai.agent.name = "planner");
            let _a = planner.enter();
            let tool = info_span!("search_tool");
            let _t = tool.enter();
            call("gpt-4o", 1_000, 100); // 0.0025 + 0.001 = 0.0035
        }
        {
            let writer = info_span!("writer", gen_ai.agent.name = "writer");
            let _a = writer.enter();
            // 10 000 in (6 000 read, 2 000 write 5m, 1 000 write 1h), 500 out = 0.0258
            let span = info_span!(
                "llm_call",
                gen_ai.request.model = "claude-sonnet-4-5-20250929",
                gen_ai.usage.input_tokens = 10_000,
                gen_ai.usage.cache_read.input_tokens = 6_000,
                gen_ai.usage.cache_creation.input_tokens = 2_000,
                cost.usage.cache_write_1h_tokens = 1_000,
                gen_ai.usage.output_tokens = 500,
            );
            drop(span);
        }
        call("gpt-4o-mini", 1_000, 1_000); // directly under the session: 0.00075
    });
    let planner = find(&closed, "planner");
    assert_eq!(
        (planner.total_usd(), planner.llm_calls, planner.agent_runs),
        (usd("0.0035"), 1, 1)
    );
    let writer = find(&closed, "writer");
    assert_eq!(writer.total_usd(), usd("0.0258"));
    assert_eq!(writer.cost.cache_write_1h, usd("0.006"));
    assert_eq!(writer.cost.cache_savings, usd("0.0162"));
    let session = find(&closed, "session");
    assert_eq!(session.total_usd(), usd("0.03005"));
    assert_eq!((session.llm_calls, session.agent_runs), (3, 2));
    assert_eq!(session.usage.input, 12_000);
    assert!(session.is_complete());
    assert!(session.price_table.is_some());
    // The ledger agrees, by every key.
    let by = |t: Option<Totals>| t.map(|t| t.total_usd());
    assert_eq!(by(ledger.session("s-1")), Some(usd("0.03005")));
    assert_eq!(by(ledger.feature("support")), Some(usd("0.03005")));
    assert_eq!(by(ledger.agent("planner")), Some(usd("0.0035")));
    assert_eq!(by(ledger.agent("writer")), Some(usd("0.0258")));
    assert_eq!(by(ledger.model("gpt-4o")), Some(usd("0.0035")));
    assert_eq!(by(ledger.model("claude-sonnet-4-5")), Some(usd("0.0258")));
    assert_eq!(ledger.global().total_usd(), usd("0.03005"));
    // The plain tool span is not a scope: no callback for it.
    assert!(
        closed
            .lock()
            .map(|v| v.iter().all(|(n, _, _)| n != "search_tool"))
            .unwrap_or(false)
    );
}

#[test]
fn attribution_is_inherited_and_the_closest_ancestor_wins() {
    let (dispatch, ledger) = dispatch(
        CostLayer::builder()
            .user_id_key(b"k")
            .combination(Dimension::Feature, Dimension::Model),
    );
    tracing::dispatcher::with_default(&dispatch, || {
        let session = info_span!(
            "session",
            session.id = "s-2",
            cost.user_id = "alice",
            cost.org_id = "acme",
            cost.feature = "chat"
        );
        let _s = session.enter();
        call("gpt-4o", 1_000_000, 0); // feature chat: 2.5
        let sub = info_span!("summarise", cost.feature = "summary");
        let _f = sub.enter();
        call("gpt-4o", 0, 100_000); // feature summary: 1.0
    });
    let total = |t: Option<Totals>| t.map(|t| t.total_usd());
    assert_eq!(total(ledger.feature("chat")), Some(usd("2.5")));
    assert_eq!(total(ledger.feature("summary")), Some(usd("1")));
    assert_eq!(total(ledger.user("alice")), Some(usd("3.5")));
    assert_eq!(total(ledger.org("acme")), Some(usd("3.5")));
    assert_eq!(total(ledger.session("s-2")), Some(usd("3.5")));
    // User ids are kept only as a keyed hash.
    let key = ledger.user_key("alice");
    assert!(key.starts_with("u:") && !key.contains("alice"));
    assert!(
        ledger
            .snapshot()
            .keys
            .iter()
            .all(|(k, _)| !format!("{k:?}").contains("alice"))
    );
    // Declared combination feature × model.
    let combo = LedgerKey::two(
        (Dimension::Feature, "summary"),
        (Dimension::Model, "gpt-4o"),
    );
    assert_eq!(total(ledger.get(&combo)), Some(usd("1")));
}

#[test]
fn user_ids_hashed_with_one_key_match_across_layers_and_differ_across_keys() {
    let hashed = |builder: CostLayerBuilder| {
        let (dispatch, ledger) = dispatch(builder);
        tracing::dispatcher::with_default(&dispatch, || {
            let user = info_span!("request", cost.user_id = "alice");
            let _u = user.enter();
            call("gpt-4o", 1_000, 100);
        });
        let keys: Vec<String> = ledger
            .snapshot()
            .keys
            .iter()
            .filter_map(|(key, _)| match key {
                LedgerKey::One(Dimension::User, user) => Some(user.to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(keys, [ledger.user_key("alice")]);
        keys[0].clone()
    };
    // Two processes given one key (two layers here) keep alice under one hash.
    let first = hashed(CostLayer::builder().user_id_key(b"shared secret"));
    let second = hashed(CostLayer::builder().user_id_key(b"shared secret"));
    assert_eq!(first, second);
    assert!(first.starts_with("u:") && !first.contains("alice"));
    assert_ne!(first, hashed(CostLayer::builder().user_id_key(b"another")));
    // Without a key, each layer draws its own.
    assert_ne!(first, hashed(CostLayer::builder()));
}

#[test]
fn a_table_stored_in_the_shared_prices_prices_the_calls_after_it() {
    let table = |version: &str, gpt4o_input: &str| {
        cost_layer::cost_core::PriceTable::from_text(
            &format!(
                "version = \"{version}\"\n[models.\"gpt-4o\"]\ninput = \"{gpt4o_input}\"\noutput = \"10\"\n"
            ),
            "inline.toml",
        )
        .unwrap_or_else(|e| panic!("{e}"))
    };
    let shared = Arc::new(cost_layer::cost_core::SharedPriceTable::new(table(
        "v1", "2.50",
    )));
    let (builder, closed) = recording(CostLayer::builder().shared_prices(Arc::clone(&shared)));
    let (dispatch, ledger) = dispatch(builder);
    tracing::dispatcher::with_default(&dispatch, || {
        let before = info_span!("before", session.id = "s-before");
        before.in_scope(|| call("gpt-4o", 1_000_000, 0)); // $2.50
        drop(before);
        shared.store(table("v2", "5"));
        let after = info_span!("after", session.id = "s-after");
        after.in_scope(|| call("gpt-4o", 1_000_000, 0)); // $5
    });
    let before = find(&closed, "before");
    assert_eq!(before.total_usd(), usd("2.5"));
    assert_eq!(before.price_table.as_deref(), Some("v1"));
    let after = find(&closed, "after");
    assert_eq!(after.total_usd(), usd("5"));
    assert_eq!(after.price_table.as_deref(), Some("v2"));
    assert_eq!(
        ledger.model("gpt-4o").map(|t| (t.llm_calls, t.total_usd())),
        Some((2, usd("7.5")))
    );
}

#[test]
fn combinations_count_each_call_once_in_either_order_and_ignore_a_dimension_paired_with_itself() {
    let (dispatch, ledger) = dispatch(
        CostLayer::builder()
            // Declared twice: still one cell, each call added once.
            .combination(Dimension::Feature, Dimension::Model)
            .combination(Dimension::Feature, Dimension::Model)
            // The model first, and a pair without the model, declared twice.
            .combination(Dimension::Model, Dimension::Agent)
            .combination(Dimension::Agent, Dimension::Feature)
            .combination(Dimension::Agent, Dimension::Feature)
            // A dimension with itself: nothing to keep apart from the dimension's own totals.
            .combination(Dimension::Feature, Dimension::Feature)
            .combination(Dimension::Model, Dimension::Model),
    );
    tracing::dispatcher::with_default(&dispatch, || {
        let agent = info_span!(
            "agent",
            gen_ai.agent.name = "writer",
            cost.feature = "draft"
        );
        let _a = agent.enter();
        call("gpt-4o", 1_000_000, 0); // 2.5
        call("gpt-4o", 0, 100_000); // 1.0
    });
    let total = |key: LedgerKey| ledger.get(&key).map(|t| (t.llm_calls, t.total_usd()));
    let both = Some((2, usd("3.5")));
    assert_eq!(
        total(LedgerKey::two(
            (Dimension::Feature, "draft"),
            (Dimension::Model, "gpt-4o")
        )),
        both
    );
    assert_eq!(
        total(LedgerKey::two(
            (Dimension::Model, "gpt-4o"),
            (Dimension::Agent, "writer")
        )),
        both
    );
    assert_eq!(
        total(LedgerKey::two(
            (Dimension::Agent, "writer"),
            (Dimension::Feature, "draft")
        )),
        both
    );
    assert_eq!(ledger.feature("draft").map(|t| t.llm_calls), Some(2));
    // One-dimension keys (agent, feature, model) and the three combinations: nothing else.
    let keys: Vec<LedgerKey> = ledger.snapshot().keys.into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys.len(), 6, "{keys:?}");
}

#[test]
fn combinations_with_the_session_are_evicted_with_their_session() {
    let (dispatch, ledger) = dispatch(
        CostLayer::builder()
            .retention(Retention {
                max_closed_sessions: Some(1),
                ttl: None,
                ..Retention::default()
            })
            .combination(Dimension::Session, Dimension::Model)
            .combination(Dimension::Feature, Dimension::Session)
            .combination(Dimension::Feature, Dimension::Model),
    );
    let session_model =
        |s: &str| LedgerKey::two((Dimension::Session, s), (Dimension::Model, "gpt-4o"));
    let feature_session =
        |s: &str| LedgerKey::two((Dimension::Feature, "chat"), (Dimension::Session, s));
    tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..100 {
            let id = format!("s-{i}");
            let s = info_span!("session", session.id = id.as_str(), cost.feature = "chat");
            let _s = s.enter();
            call("gpt-4o", 1_000, 0);
        }
    });
    // The newest session and its two combinations stay; the others went with their sessions.
    assert!(ledger.session("s-99").is_some());
    assert_eq!(
        ledger.get(&session_model("s-99")).map(|t| t.llm_calls),
        Some(1)
    );
    assert_eq!(
        ledger.get(&feature_session("s-99")).map(|t| t.llm_calls),
        Some(1)
    );
    assert!(ledger.get(&session_model("s-98")).is_none());
    assert!(ledger.get(&feature_session("s-0")).is_none());
    assert_eq!(ledger.diagnostics().evictions, 99);
    // Session s-99, its two combinations, feature, model, feature × model.
    assert_eq!(ledger.snapshot().keys.len(), 6);
    // Keys without the session keep every call.
    let feature_model = LedgerKey::two((Dimension::Feature, "chat"), (Dimension::Model, "gpt-4o"));
    assert_eq!(ledger.get(&feature_model).map(|t| t.llm_calls), Some(100));
}

#[test]
fn raw_user_ids_when_opted_out() {
    let (dispatch, ledger) = dispatch(CostLayer::builder().raw_user_ids());
    tracing::dispatcher::with_default(&dispatch, || {
        let s = info_span!("s", cost.user_id = "bob");
        let _s = s.enter();
        call("gpt-4o", 1, 1);
    });
    assert_eq!(ledger.user_key("bob"), "bob");
    assert!(
        ledger
            .get(&LedgerKey::one(Dimension::User, "bob"))
            .is_some()
    );
}

#[test]
fn aggregate_usage_on_agent_and_workflow_spans_is_not_charged_twice() {
    let (builder, closed) = recording(CostLayer::builder());
    let (dispatch, ledger) = dispatch(builder);
    tracing::dispatcher::with_default(&dispatch, || {
        let session = info_span!("session", session.id = "s-3");
        let _s = session.enter();
        // rig's `invoke_agent` span records the agent's aggregate usage.
        let agent = info_span!(
            "invoke_agent",
            gen_ai.operation.name = "invoke_agent",
            gen_ai.agent.name = "researcher",
            gen_ai.usage.input_tokens = Empty,
            gen_ai.usage.output_tokens = Empty,
        );
        {
            let _a = agent.enter();
            // Vercel-AI-SDK-style workflow span with usage, around the real calls.
            let workflow = info_span!(
                "ai.generateText",
                gen_ai.request.model = "gpt-4o",
                gen_ai.usage.input_tokens = Empty,
                gen_ai.usage.output_tokens = Empty,
            );
            {
                let _w = workflow.enter();
                call("gpt-4o", 1_000, 100);
                call("gpt-4o", 1_000, 100);
            }
            workflow.record("gen_ai.usage.input_tokens", 2_000);
            workflow.record("gen_ai.usage.output_tokens", 200);
        }
        agent.record("gen_ai.usage.input_tokens", 2_000);
        agent.record("gen_ai.usage.output_tokens", 200);
    });
    let session = find(&closed, "session");
    assert_eq!((session.total_usd(), session.llm_calls), (usd("0.007"), 2));
    assert_eq!(session.usage.input, 2_000);
    assert_eq!(find(&closed, "invoke_agent").total_usd(), usd("0.007"));
    assert_eq!(ledger.global().total_usd(), usd("0.007"));
    assert_eq!(ledger.diagnostics().aggregate_usage_ignored, 1);
}

#[test]
fn aggregate_usage_over_calls_served_from_the_cache_or_rejected_is_not_charged() {
    let (builder, closed) = recording(CostLayer::builder());
    let (dispatch, ledger) = dispatch(builder);
    // A workflow span that records the usage of the calls under it once they are done.
    let workflow_over = |call: &dyn Fn()| {
        let workflow = info_span!(
            "ai.generateText",
            gen_ai.request.model = "gpt-4o",
            gen_ai.usage.input_tokens = Empty,
            gen_ai.usage.output_tokens = Empty,
        );
        workflow.in_scope(call);
        workflow.record("gen_ai.usage.input_tokens", 1_000);
        workflow.record("gen_ai.usage.output_tokens", 100);
    };
    tracing::dispatcher::with_default(&dispatch, || {
        let session = info_span!("session", session.id = "s-aggregate");
        let _s = session.enter();
        workflow_over(&|| cache_hit("gpt-4o"));
        workflow_over(&rejected_call);
    });
    let session = find(&closed, "session");
    assert_eq!(
        (
            session.total_usd(),
            session.llm_calls,
            session.cache_hits,
            session.rejected_calls
        ),
        (Money::ZERO, 0, 1, 1)
    );
    assert_eq!(ledger.global().total_usd(), Money::ZERO);
    assert_eq!(ledger.diagnostics().aggregate_usage_ignored, 2);
}

#[test]
fn a_call_with_an_agent_run_under_it_posts_only_its_own_totals() {
    let (builder, closed) = recording(CostLayer::builder());
    let (dispatch, ledger) = dispatch(builder);
    tracing::dispatcher::with_default(&dispatch, || {
        let session = info_span!("session", session.id = "s-nested-run");
        let _s = session.enter();
        // A call whose tool use ran a sub-agent that called no model.
        info_span!(
            "chat",
            gen_ai.request.model = "gpt-4o",
            gen_ai.usage.input_tokens = 1_000,
            gen_ai.usage.output_tokens = 100,
        )
        .in_scope(|| info_span!("run", gen_ai.agent.name = "lookup").in_scope(|| {}));
    });
    let call = find(&closed, "chat");
    assert_eq!(
        (call.total_usd(), call.llm_calls, call.agent_runs),
        (usd("0.0035"), 1, 1)
    );
    let model = ledger.model("gpt-4o").unwrap_or_default();
    assert_eq!(
        (model.total_usd(), model.llm_calls, model.agent_runs),
        (usd("0.0035"), 1, 0)
    );
    // The run is counted under its keys, and in the global total, apart from the call.
    let session = ledger.session("s-nested-run").unwrap_or_default();
    assert_eq!((session.llm_calls, session.agent_runs), (1, 1));
    let run = ledger.agent("lookup").unwrap_or_default();
    assert_eq!((run.llm_calls, run.agent_runs), (0, 1));
    assert_eq!(
        (ledger.global().llm_calls, ledger.global().agent_runs),
        (1, 1)
    );
}

#[test]
fn unpriced_calls_count_tokens_and_say_their_cost_is_unknown() {
    let (builder, closed) = recording(CostLayer::builder());
    let (dispatch, ledger) = dispatch(builder);
    tracing::dispatcher::with_default(&dispatch, || {
        let session = info_span!("session", session.id = "s-4");
        let _s = session.enter();
        call("gpt-4o", 1_000, 100);
        call("my-finetune-v3", 5_000, 500);
        // No model at all.
        info_span!(
            "llm",
            gen_ai.usage.input_tokens = 10,
            gen_ai.usage.output_tokens = 1
        )
        .in_scope(|| {});
    });
    let session = find(&closed, "session");
    assert_eq!(session.total_usd(), usd("0.0035"));
    assert_eq!(
        (
            session.llm_calls,
            session.unpriced_calls,
            session.unpriced_tokens
        ),
        (3, 2, 5_511)
    );
    assert_eq!(session.usage.total_tokens(), 1_100 + 5_511);
    assert!(!session.is_complete());
    assert!(session.to_string().contains("2 unpriced"));
    let model = ledger
        .model("my-finetune-v3")
        .unwrap_or_else(|| panic!("no model key"));
    assert_eq!((model.unpriced_calls, model.total_usd()), (1, Money::ZERO));
    assert!(ledger.model("unknown").is_some());
    assert_eq!(ledger.diagnostics().unpriced_calls, 2);
}

#[test]
fn values_overwrite_and_the_response_model_wins() {
    let (builder, closed) = recording(CostLayer::builder());
    let (dispatch, _ledger) = dispatch(builder);
    tracing::dispatcher::with_default(&dispatch, || {
        let span = info_span!(
            "stream",
            gen_ai.request.model = "gpt-4o",
            gen_ai.response.model = Empty,
            gen_ai.usage.input_tokens = 1_000_000,
            gen_ai.usage.output_tokens = Empty,
        );
        // Streaming clients record running totals: the last value counts.
        for running in [10_000_u64, 50_000, 100_000] {
            span.record("gen_ai.usage.output_tokens", running);
        }
        span.record("gen_ai.response.model", "gpt-4o-mini-2024-07-18");
    });
    // gpt-4o-mini: 10⁶ × 0.15e-6 + 10⁵ × 0.6e-6
    assert_eq!(find(&closed, "stream").total_usd(), usd("0.21"));
}

#[test]
fn token_values_as_strings_i64_and_floats() {
    let (builder, closed) = recording(CostLayer::builder());
    let (dispatch, ledger) = dispatch(builder);
    tracing::dispatcher::with_default(&dispatch, || {
        info_span!(
            "a",
            gen_ai.request.model = "gpt-4o",
            gen_ai.usage.input_tokens = "1000",
            gen_ai.usage.output_tokens = 100_i64
        )
        .in_scope(|| {});
        info_span!(
            "b",
            llm.model = "gpt-4o",
            llm.tokens.input = 1000.0_f64,
            llm.tokens.output = 100_u64
        )
        .in_scope(|| {});
    });
    assert_eq!(find(&closed, "a").total_usd(), usd("0.0035"));
    assert_eq!(find(&closed, "b").total_usd(), usd("0.0035"));
    assert_eq!(ledger.diagnostics().bad_field_values, 0);
}

#[test]
fn bad_values_are_rejected_counted_and_warned_once_per_callsite() {
    let (layer, ledger) = CostLayer::builder().build();
    let (dispatch, warnings) = Warnings::beside(layer, &["cost_layer"]);
    tracing::dispatcher::with_default(&dispatch, || {
        let session = info_span!("session", session.id = "s-5");
        let _s = session.enter();
        for _ in 0..3 {
            let span = info_span!(
                "neg",
                gen_ai.request.model = "gpt-4o",
                gen_ai.usage.input_tokens = Empty,
                gen_ai.usage.output_tokens = 10
            );
            span.record("gen_ai.usage.input_tokens", -5_i64);
        }
        info_span!(
            "text",
            gen_ai.request.model = "gpt-4o",
            gen_ai.usage.input_tokens = "lots"
        )
        .in_scope(|| {});
        info_span!(
            "frac",
            gen_ai.request.model = "gpt-4o",
            gen_ai.usage.input_tokens = 1.5_f64
        )
        .in_scope(|| {});
        info_span!(
            "boolean",
            gen_ai.request.model = "gpt-4o",
            gen_ai.usage.input_tokens = true
        )
        .in_scope(|| {});
        for _ in 0..2 {
            info_span!(
                "inconsistent",
                gen_ai.request.model = "gpt-4o",
                gen_ai.usage.input_tokens = 10,
                gen_ai.usage.cache_read.input_tokens = 11
            )
            .in_scope(|| {});
        }
        info_span!(
            "absurd",
            gen_ai.request.model = "gpt-4o",
            gen_ai.usage.input_tokens = u64::MAX
        )
        .in_scope(|| {});
        // A bad value later overwritten by a good one is charged with the good one.
        let fixed = info_span!(
            "fixed",
            gen_ai.request.model = "gpt-4o",
            gen_ai.usage.input_tokens = Empty,
            gen_ai.usage.output_tokens = 0
        );
        fixed.record("gen_ai.usage.input_tokens", "oops");
        fixed.record("gen_ai.usage.input_tokens", 1_000);
        drop(fixed);
    });
    let session = ledger
        .session("s-5")
        .unwrap_or_else(|| panic!("no session"));
    assert_eq!(session.rejected_calls, 9);
    assert_eq!((session.llm_calls, session.total_usd()), (1, usd("0.0025")));
    let diagnostics = ledger.diagnostics();
    assert_eq!(diagnostics.bad_field_values, 7);
    assert_eq!(diagnostics.rejected_calls, 9);
    // One warning per callsite and field: neg, text, frac, boolean, fixed; and one per
    // callsite whose counts were counts but invalid together or absurd: inconsistent, absurd.
    let seen = warnings.seen();
    assert_eq!(seen.len(), 7, "{seen:?}");
    assert_eq!(
        warnings.containing(
            "a call on span `inconsistent` was not charged, its usage is invalid: inconsistent usage: cache_read (11)"
        ),
        1,
        "{seen:?}"
    );
    assert_eq!(
        warnings.containing("a call on span `absurd` was not charged, its usage is invalid:"),
        1,
        "{seen:?}"
    );
}

#[test]
fn a_bad_value_given_at_creation_is_warned_about_at_the_next_record() {
    let (layer, ledger) = CostLayer::builder().build();
    let (dispatch, warnings) = Warnings::beside(layer, &["cost_layer"]);
    let rejected = "rejected a value of `gen_ai.usage.input_tokens` on span `early`";
    tracing::dispatcher::with_default(&dispatch, || {
        let session = info_span!("session", session.id = "s-early");
        let _s = session.enter();
        let span = info_span!(
            "early",
            gen_ai.request.model = "gpt-4o",
            gen_ai.usage.input_tokens = "lots",
            gen_ai.usage.output_tokens = Empty
        );
        // Not from the span's creation, where an event would be dropped: from its next record,
        // while it is still open.
        assert_eq!(warnings.containing(rejected), 0);
        span.record("gen_ai.usage.output_tokens", 10);
        assert_eq!(warnings.containing(rejected), 1, "{:?}", warnings.seen());
        drop(span);
    });
    assert_eq!(warnings.containing(rejected), 1, "{:?}", warnings.seen());
    assert_eq!(ledger.diagnostics().bad_field_values, 1);
    assert_eq!(ledger.diagnostics().rejected_calls, 1);
}

#[test]
fn callbacks_see_sessions_agents_and_calls_and_call_details_only_on_calls() {
    type Seen = Arc<Mutex<Vec<(String, Scope, bool)>>>;
    let seen: Seen = Arc::default();
    let sink = Arc::clone(&seen);
    let (dispatch, _ledger) = dispatch(CostLayer::builder().on_close(move |c| {
        if let Ok(mut seen) = sink.lock() {
            seen.push((c.name.to_owned(), c.scope, c.call.is_some()));
        }
    }));
    tracing::dispatcher::with_default(&dispatch, || {
        let session = info_span!("session", session.id = "s-callbacks");
        let _s = session.enter();
        let agent = info_span!("agent", gen_ai.agent.name = "planner");
        let _a = agent.enter();
        // Sets a key but is no scope: accounted, not reported.
        let route = info_span!("route", cost.feature = "search");
        let _r = route.enter();
        call("gpt-4o", 1_000, 100);
    });
    let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
    assert_eq!(
        seen,
        [
            ("llm_call".to_owned(), Scope::Call, true),
            ("agent".to_owned(), Scope::Agent, false),
            ("session".to_owned(), Scope::Session, false),
        ]
    );
}

#[test]
fn the_service_tier_of_opentelemetry_openai_attributes_prices_the_call() {
    let (layer, ledger) = CostLayer::builder().build();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || {
        let session = info_span!("session", session.id = "s-tier");
        let _s = session.enter();
        // Asked for `auto`, served at `flex`: the response's tier, recorded last, prices it.
        let call = info_span!(
            "chat",
            gen_ai.request.model = "gpt-5",
            openai.request.service_tier = "auto",
            openai.response.service_tier = Empty,
            gen_ai.usage.input_tokens = 1_000,
            gen_ai.usage.output_tokens = 100
        );
        call.record("openai.response.service_tier", "flex");
    });
    // 1 000 × 6.25e-7 + 100 × 5e-6 (standard would be $0.00225).
    assert_eq!(
        ledger.session("s-tier").map(|t| t.total_usd()),
        Some(usd("0.001125"))
    );
}

#[test]
fn a_tier_the_model_has_no_prices_for_is_priced_at_standard_counted_and_warned_once() {
    let (layer, ledger) = CostLayer::builder().build();
    let (dispatch, warnings) = Warnings::beside(layer, &["cost_layer::prices"]);
    tracing::dispatcher::with_default(&dispatch, || {
        let session = info_span!("session", session.id = "s-fallback");
        let _s = session.enter();
        // Claude has no priority prices in the embedded table (Anthropic's Priority Tier is a
        // capacity commitment); gpt-4o has them.
        for (model, tier) in [
            ("claude-sonnet-4-5", "priority"),
            ("claude-sonnet-4-5", "priority"),
            ("gpt-4o", "priority"),
        ] {
            info_span!(
                "chat",
                gen_ai.request.model = model,
                cost.service_tier = tier,
                gen_ai.usage.input_tokens = 10_000,
                gen_ai.usage.output_tokens = 1_000
            )
            .in_scope(|| {});
        }
        // Warned as the call closed, not when a span around it does.
        assert_eq!(warnings.containing("Diagnostics::tier_fallbacks"), 1);
    });
    // Twice 10 000 × $3 + 1 000 × $15 per million, at standard; gpt-4o at its priority
    // prices, 10 000 × $4.25 + 1 000 × $17.
    assert_eq!(
        ledger.model("claude-sonnet-4-5").map(|t| t.total_usd()),
        Some(usd("0.09"))
    );
    assert_eq!(
        ledger.model("gpt-4o").map(|t| t.total_usd()),
        Some(usd("0.0595"))
    );
    assert_eq!(ledger.diagnostics().tier_fallbacks, 2);
    let seen = warnings.seen();
    assert_eq!(
        warnings.containing("Diagnostics::tier_fallbacks"),
        1,
        "{seen:?}"
    );
}

#[test]
fn rejected_values_of_fields_other_than_tokens_are_ignored_and_the_warning_says_so() {
    let (layer, ledger) = CostLayer::builder().build();
    let (dispatch, warnings) = Warnings::beside(layer, &["cost_layer"]);
    tracing::dispatcher::with_default(&dispatch, || {
        let session = info_span!("session", session.id = "s-7");
        let _s = session.enter();
        info_span!(
            "odd",
            gen_ai.request.model = "gpt-4o",
            gen_ai.usage.input_tokens = 1_000,
            gen_ai.usage.output_tokens = 100,
            cost.service_tier = "turbo",
            llm.cache.hit = "maybe"
        )
        .in_scope(|| {});
    });
    // Charged as if neither field were there: the standard tier, not a cache hit.
    let session = ledger
        .session("s-7")
        .unwrap_or_else(|| panic!("no session"));
    assert_eq!(
        (
            session.llm_calls,
            session.rejected_calls,
            session.cache_hits
        ),
        (1, 0, 0)
    );
    assert_eq!(session.total_usd(), usd("0.0035"));
    assert_eq!(ledger.diagnostics().bad_field_values, 2);
    let seen = warnings.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(
        seen.iter().all(|w| !w.contains("not be charged")),
        "{seen:?}"
    );
    assert_eq!(warnings.containing("`cost.service_tier`"), 1, "{seen:?}");
    assert_eq!(
        warnings
            .containing("standard, batch, flex, priority (or fast) or fast_mode (or ultrafast)"),
        1,
        "{seen:?}"
    );
    assert_eq!(warnings.containing("`true` or `false`"), 1, "{seen:?}");
}

#[test]
fn application_cache_hits_charge_nothing_and_count_the_saving() {
    let (builder, closed) = recording(CostLayer::builder());
    let (dispatch, _ledger) = dispatch(builder);
    tracing::dispatcher::with_default(&dispatch, || {
        let session = info_span!("session", session.id = "s-6");
        let _s = session.enter();
        cache_hit("gpt-4o");
        call("gpt-4o", 1_000, 100);
    });
    let session = find(&closed, "session");
    assert_eq!(
        (session.total_usd(), session.llm_calls, session.cache_hits),
        (usd("0.0035"), 1, 1)
    );
    assert_eq!(session.cache_hit_savings, usd("0.0035"));
    assert_eq!(session.unpriced_cache_hits, 0);
    assert_eq!(session.usage.input, 1_000);
    assert!(
        session.to_string().ends_with("1 cache hit (saved $0.0035)"),
        "{session}"
    );
}

#[test]
fn a_cache_hit_on_a_model_without_a_price_saved_an_unknown_amount_not_zero() {
    let (builder, closed) = recording(CostLayer::builder());
    let (dispatch, ledger) = dispatch(builder);
    tracing::dispatcher::with_default(&dispatch, || {
        let session = info_span!("session", session.id = "s-unknown");
        let _s = session.enter();
        cache_hit("acme-house-model");
        let agent = info_span!("agent", gen_ai.agent.name = "both");
        let _a = agent.enter();
        cache_hit("acme-house-model");
        cache_hit("gpt-4o");
    });
    let unknown = find(&closed, "cached");
    assert_eq!((unknown.cache_hits, unknown.unpriced_cache_hits), (1, 1));
    assert_eq!(unknown.cache_hit_savings, Money::ZERO);
    assert!(
        unknown.to_string().ends_with("1 cache hit (saved $?)"),
        "{unknown}"
    );
    // With one hit priced, the savings are a lower bound.
    let agent = find(&closed, "agent");
    assert_eq!((agent.cache_hits, agent.unpriced_cache_hits), (2, 1));
    assert_eq!(agent.cache_hit_savings, usd("0.0035"));
    assert!(
        agent
            .to_string()
            .ends_with("2 cache hits (saved ≥ $0.0035)"),
        "{agent}"
    );
    let session = ledger.session("s-unknown").unwrap_or_default();
    assert_eq!((session.cache_hits, session.unpriced_cache_hits), (3, 2));
    assert_eq!(session.total_usd(), Money::ZERO);
}

#[test]
fn callbacks_are_filtered_and_a_panicking_one_is_contained() {
    let sessions = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&sessions);
    let after = Arc::new(AtomicU64::new(0));
    let after_seen = Arc::clone(&after);
    let (dispatch, ledger) = dispatch(
        CostLayer::builder()
            .on_close(|_| panic!("a user callback that panics"))
            .on_close_filtered(
                |c| c.scope == Scope::Session,
                move |_| {
                    seen.fetch_add(1, Ordering::Relaxed);
                },
            )
            .on_close(move |_| {
                after_seen.fetch_add(1, Ordering::Relaxed);
            }),
    );
    tracing::dispatcher::with_default(&dispatch, || {
        let session = info_span!("session", session.id = "s-7");
        let _s = session.enter();
        call("gpt-4o", 10, 10);
        call("gpt-4o", 10, 10);
    });
    assert_eq!(sessions.load(Ordering::Relaxed), 1);
    assert_eq!(after.load(Ordering::Relaxed), 3);
    assert_eq!(ledger.diagnostics().callback_panics, 3);
    assert_eq!(ledger.session("s-7").map(|t| t.llm_calls), Some(2));
}

#[test]
fn a_call_sink_gets_every_closed_call_and_a_panicking_one_is_contained() {
    struct Sink(Arc<AtomicU64>);
    impl cost_layer::CallSink for Sink {
        fn submit(&self, call: &cost_layer::ClosedCall<'_>) -> bool {
            if self.0.fetch_add(1, Ordering::Relaxed) == 1 {
                panic!("a sink that panics on its second call");
            }
            assert_eq!(call.model.as_ref(), "gpt-4o");
            assert_eq!(call.attribution.session.as_deref(), Some("s-8"));
            true
        }
    }
    let submitted = Arc::new(AtomicU64::new(0));
    let (dispatch, ledger) = dispatch(CostLayer::builder().call_sink(Sink(Arc::clone(&submitted))));
    tracing::dispatcher::with_default(&dispatch, || {
        let session = info_span!("session", session.id = "s-8");
        let _s = session.enter();
        for _ in 0..3 {
            call("gpt-4o", 10, 10);
        }
    });
    assert_eq!(submitted.load(Ordering::Relaxed), 3);
    assert_eq!(ledger.diagnostics().callback_panics, 1);
    assert_eq!(ledger.diagnostics().records_dropped, 0);
    assert_eq!(ledger.session("s-8").map(|t| t.llm_calls), Some(3));
}

#[test]
fn calls_a_full_call_sink_refuses_are_counted_and_warned_about_once() {
    struct Full;
    impl cost_layer::CallSink for Full {
        fn submit(&self, _: &cost_layer::ClosedCall<'_>) -> bool {
            false
        }
    }
    let (layer, ledger) = CostLayer::builder().call_sink(Full).build();
    let (dispatch, warnings) = Warnings::beside(layer, &["cost_layer"]);
    tracing::dispatcher::with_default(&dispatch, || {
        let session = info_span!("session", session.id = "s-full");
        let _s = session.enter();
        for _ in 0..3 {
            call("gpt-4o", 1_000, 100);
        }
    });
    assert_eq!(ledger.diagnostics().records_dropped, 3);
    assert_eq!(warnings.containing("the call sink refused a call"), 1);
    // Still in the in-process ledger.
    assert_eq!(ledger.session("s-full").map(|t| t.llm_calls), Some(3));
}

#[test]
fn a_call_sink_sees_the_calls_duration_and_time_and_may_log() {
    type Seen = Arc<Mutex<Vec<(Duration, std::time::SystemTime)>>>;
    struct Sink(Seen);
    impl cost_layer::CallSink for Sink {
        fn submit(&self, call: &cost_layer::ClosedCall<'_>) -> bool {
            // A sink that logs while the layer holds the closing span's data.
            tracing::info!(model = %call.model, "submitted");
            if let Ok(mut seen) = self.0.lock() {
                seen.push((call.times.duration(), call.times.at()));
            }
            true
        }
    }
    let seen = Seen::default();
    let (cost, _ledger) = CostLayer::builder()
        .call_sink(Sink(Arc::clone(&seen)))
        .build();
    let logged = Arc::new(Mutex::new(Vec::<u8>::new()));
    let writer = Arc::clone(&logged);
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(move || SharedBuffer(Arc::clone(&writer)))
        .with_ansi(false);
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(cost).with(fmt));
    let before = std::time::SystemTime::now();
    tracing::dispatcher::with_default(&dispatch, || {
        let session = info_span!("session", session.id = "s-9");
        let _s = session.enter();
        let span = info_span!(
            "chat",
            gen_ai.request.model = "gpt-4o",
            gen_ai.usage.input_tokens = 10,
            gen_ai.usage.output_tokens = 10,
        );
        std::thread::sleep(Duration::from_millis(30));
        drop(span);
    });
    let after = std::time::SystemTime::now();
    let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
    assert_eq!(seen.len(), 1);
    let (duration, at) = seen[0];
    assert!(duration >= Duration::from_millis(30), "{duration:?}");
    assert!(duration < Duration::from_secs(30), "{duration:?}");
    // Dated when the span closed, after the 30 ms sleep.
    assert!(
        at >= before + Duration::from_millis(30) && at <= after,
        "{at:?} not in {before:?} + 30 ms..{after:?}"
    );
    let logged =
        String::from_utf8(logged.lock().map(|l| l.clone()).unwrap_or_default()).unwrap_or_default();
    assert!(logged.contains("submitted"), "{logged}");
}

/// A `fmt` writer into a shared buffer.
struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for SharedBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut buffer) = self.0.lock() {
            buffer.extend_from_slice(bytes);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A layer that keeps at most `max` closed sessions (no TTL).
fn keeping_closed_sessions(max: usize) -> (Dispatch, Ledger) {
    dispatch(CostLayer::builder().retention(Retention {
        max_closed_sessions: Some(max),
        ttl: None,
        ..Retention::default()
    }))
}

#[test]
fn retention_evicts_the_oldest_closed_sessions_and_counts_it() {
    let (dispatch, ledger) = keeping_closed_sessions(2);
    tracing::dispatcher::with_default(&dispatch, || {
        let open = info_span!("session", session.id = "open");
        let _o = open.enter();
        for i in 0..5 {
            let id = format!("s-{i}");
            let s = info_span!(parent: None, "session", session.id = id.as_str());
            let _s = s.enter();
            call("gpt-4o", 1_000, 0);
        }
        // Evicted: s-0, s-1, s-2. Kept: the two newest, and the open one.
        assert!(ledger.session("s-0").is_none() && ledger.session("s-2").is_none());
        assert!(ledger.session("s-3").is_some() && ledger.session("s-4").is_some());
        assert!(ledger.session("open").is_some());
    });
    // Closing "open" pushed s-3 out as well.
    assert_eq!(ledger.diagnostics().evictions, 4);
    assert!(ledger.session("s-3").is_none());
    assert!(ledger.session("s-4").is_some() && ledger.session("open").is_some());
    // Global and model totals keep every call.
    assert_eq!(ledger.global().llm_calls, 5);
}

#[test]
fn a_session_closed_again_is_evicted_by_its_latest_close_only() {
    let (dispatch, ledger) = keeping_closed_sessions(2);
    let session = |id: &str| {
        info_span!(parent: None, "session", session.id = id).in_scope(|| call("gpt-4o", 1_000, 0))
    };
    tracing::dispatcher::with_default(&dispatch, || {
        session("again");
        session("a");
        // Closed a second time: the queue holds [again (old), a, again (latest)].
        session("again");
        // Its old entry passes over the session: its latest close keeps it.
        assert_eq!(ledger.session("again").map(|t| t.llm_calls), Some(2));
        assert_eq!(ledger.diagnostics().evictions, 0);
        session("b");
        // Evicted: a. Kept: again (latest close), b.
        assert!(ledger.session("a").is_none());
        assert_eq!(ledger.session("again").map(|t| t.llm_calls), Some(2));
        session("c");
        // Its latest close is now the oldest: evicted.
        assert!(ledger.session("again").is_none());
        assert!(ledger.session("b").is_some() && ledger.session("c").is_some());
    });
    assert_eq!(ledger.diagnostics().evictions, 2);
}

#[test]
fn a_session_whose_id_is_recorded_later_is_kept_while_open() {
    let (dispatch, ledger) = keeping_closed_sessions(1);
    tracing::dispatcher::with_default(&dispatch, || {
        let late = info_span!("session", session.id = Empty);
        late.record("session.id", "late");
        let _l = late.enter();
        call("gpt-4o", 1_000, 0);
        for i in 0..3 {
            let id = format!("s-{i}");
            let s = info_span!(parent: None, "session", session.id = id.as_str());
            let _s = s.enter();
            call("gpt-4o", 1_000, 0);
        }
        // Three sessions closed past a bound of one: "late" is open, so it stays.
        assert_eq!(ledger.session("late").map(|t| t.llm_calls), Some(1));
        call("gpt-4o", 1_000, 0);
    });
    assert_eq!(ledger.session("late").map(|t| t.llm_calls), Some(2));
}

#[test]
fn a_session_whose_id_is_recorded_again_closes_its_old_id() {
    let (dispatch, ledger) = keeping_closed_sessions(1);
    tracing::dispatcher::with_default(&dispatch, || {
        let session = info_span!("session", session.id = "first");
        let _s = session.enter();
        call("gpt-4o", 1_000, 0);
        // The same id again changes nothing.
        session.record("session.id", "first");
        call("gpt-4o", 1_000, 0);
        session.record("session.id", "second");
        call("gpt-4o", 1_000, 0);
        // Each id keeps what was spent under it.
        assert_eq!(ledger.session("first").map(|t| t.llm_calls), Some(2));
        assert_eq!(ledger.session("second").map(|t| t.llm_calls), Some(1));
        // "first" is no longer the open span's: closed, it counts for retention.
        info_span!(parent: None, "session", session.id = "other").in_scope(|| call("gpt-4o", 1, 0));
        assert!(ledger.session("first").is_none(), "the old id stayed open");
        // "second" is the open span's: kept.
        assert_eq!(ledger.session("second").map(|t| t.llm_calls), Some(1));
    });
    assert_eq!(ledger.diagnostics().evictions, 2);
}

#[test]
fn retention_ttl_on_an_injected_clock() {
    let start = Instant::now();
    let offset = Arc::new(AtomicU64::new(0));
    let clock_offset = Arc::clone(&offset);
    let (dispatch, ledger) = dispatch(
        CostLayer::builder()
            .retention(Retention {
                max_closed_sessions: None,
                ttl: Some(Duration::from_secs(60)),
                ..Retention::default()
            })
            .clock(move || start + Duration::from_secs(clock_offset.load(Ordering::Relaxed))),
    );
    tracing::dispatcher::with_default(&dispatch, || {
        info_span!("session", session.id = "old").in_scope(|| call("gpt-4o", 1, 1));
        offset.store(30, Ordering::Relaxed);
        info_span!("session", session.id = "newer").in_scope(|| call("gpt-4o", 1, 1));
    });
    offset.store(61, Ordering::Relaxed);
    ledger.evict_expired();
    assert!(ledger.session("old").is_none());
    assert!(ledger.session("newer").is_some());
    offset.store(91, Ordering::Relaxed);
    ledger.evict_expired();
    assert!(ledger.session("newer").is_none());
    assert_eq!(ledger.diagnostics().evictions, 2);
}

#[test]
fn two_threads_times_100k_calls_over_100_sessions_are_exact() {
    let (dispatch, ledger) = dispatch(CostLayer::builder());
    const CALLS_PER_THREAD: u64 = 100_000;
    let workers: Vec<_> = (0..2_u64)
        .map(|thread| {
            let dispatch = dispatch.clone();
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    // Each thread runs its own 50 sessions, 2 000 calls each.
                    for s in 0..50_u64 {
                        let id = format!("t{thread}-s{s}");
                        let session = info_span!("session", session.id = id.as_str());
                        let _s = session.enter();
                        for i in 0..CALLS_PER_THREAD / 50 {
                            call("gpt-4o-mini", 1_000 + i % 7, 100 + i % 3);
                        }
                    }
                });
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap_or_else(|_| panic!("worker panicked"));
    }
    // Per session: Σ (1000 + i%7) × 0.15e-6 + (100 + i%3) × 0.6e-6 over i < 2000, exactly.
    let (mut input, mut output) = (0_u64, 0_u64);
    for i in 0..2_000_u64 {
        input += 1_000 + i % 7;
        output += 100 + i % 3;
    }
    let per_session = Money::from_units(
        i128::from(input) * 150_000_000_000_000_000 + i128::from(output) * 600_000_000_000_000_000,
    );
    for thread in 0..2 {
        for s in 0..50 {
            let totals = ledger
                .session(&format!("t{thread}-s{s}"))
                .unwrap_or_else(|| panic!("missing"));
            assert_eq!((totals.total_usd(), totals.llm_calls), (per_session, 2_000));
        }
    }
    let global = ledger.global();
    assert_eq!(global.llm_calls, 200_000);
    let mut expected = Money::ZERO;
    for _ in 0..100 {
        expected += per_session;
    }
    assert_eq!(global.total_usd(), expected);
    assert_eq!(
        ledger.model("gpt-4o-mini").map(|t| t.total_usd()),
        Some(expected)
    );
}

#[test]
fn field_name_overrides_and_explicit_scopes() {
    let (builder, closed) = recording(
        CostLayer::builder()
            .field(
                "my.prompt_tokens",
                cost_layer::FieldRole::Tokens(cost_layer::cost_core::TokenKind::Input),
            )
            .field("my.model", cost_layer::FieldRole::RequestModel),
    );
    let (dispatch, ledger) = dispatch(builder);
    tracing::dispatcher::with_default(&dispatch, || {
        // cost.scope makes a plain-looking span a session and another an agent.
        let session = info_span!("conversation", cost.scope = "session", cost.feature = "f");
        let _s = session.enter();
        let agent = info_span!("loop", cost.scope = "agent");
        let _a = agent.enter();
        info_span!("custom", my.model = "gpt-4o", my.prompt_tokens = 1_000_000).in_scope(|| {});
        // cost.scope = "call" on a span without usage fields: a call that reported nothing.
        info_span!("no_usage", cost.scope = "call").in_scope(|| {});
    });
    assert_eq!(find(&closed, "custom").total_usd(), usd("2.5"));
    let session = find(&closed, "conversation");
    assert_eq!(
        (session.total_usd(), session.agent_runs, session.llm_calls),
        (usd("2.5"), 1, 1)
    );
    assert!(
        closed
            .lock()
            .map(|v| v
                .iter()
                .any(|(n, s, _)| n == "conversation" && *s == Scope::Session))
            .unwrap_or(false)
    );
    assert!(
        closed
            .lock()
            .map(|v| v.iter().any(|(n, s, _)| n == "loop" && *s == Scope::Agent))
            .unwrap_or(false)
    );
    assert_eq!(ledger.feature("f").map(|t| t.llm_calls), Some(1));
}

#[tracing::instrument(fields(gen_ai.request.model = "gpt-4o", gen_ai.usage.input_tokens = Empty, gen_ai.usage.output_tokens = Empty))]
fn instrumented_call(prompt: &str) -> usize {
    let span = tracing::Span::current();
    span.record("gen_ai.usage.input_tokens", 2_000);
    span.record("gen_ai.usage.output_tokens", 50);
    prompt.len()
}

#[test]
fn spans_from_tracing_instrument_count() {
    let (dispatch, ledger) = dispatch(CostLayer::builder());
    tracing::dispatcher::with_default(&dispatch, || {
        let session = info_span!("session", session.id = "instrumented");
        let _s = session.enter();
        instrumented_call("hello");
    });
    // 2 000 × 2.5e-6 + 50 × 1e-5
    assert_eq!(
        ledger.session("instrumented").map(|t| t.total_usd()),
        Some(usd("0.0055"))
    );
}

#[test]
fn sessions_reopened_on_two_threads_while_retention_evicts_never_lose_a_call_nor_leave_a_combination()
 {
    // One session id opened and closed over and over on two threads, while other sessions
    // close around it and push it out of a retention of two: inside an open "hot" session, the
    // call just made is always in the ledger's cell for it and in its session × model cell (a
    // cell evicted from under an open span would take the call with it). Those cells are made
    // by the calls and evicted with their session, racing; at the end no combination is left
    // whose session is gone, and each shows what its session shows.
    let (dispatch, ledger) = dispatch(
        CostLayer::builder()
            .retention(Retention {
                max_closed_sessions: Some(2),
                ttl: None,
                ..Retention::default()
            })
            .combination(Dimension::Session, Dimension::Model),
    );
    let hot_model = LedgerKey::two((Dimension::Session, "hot"), (Dimension::Model, "gpt-4o"));
    std::thread::scope(|scope| {
        for thread in 0..2 {
            let (dispatch, ledger, hot_model) = (dispatch.clone(), ledger.clone(), &hot_model);
            scope.spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    for i in 0..2_000 {
                        {
                            let hot = info_span!("session", session.id = "hot");
                            let _h = hot.enter();
                            call("gpt-4o", 1_000, 0);
                            let seen = ledger.session("hot").map_or(0, |t| t.llm_calls);
                            assert!(seen >= 1, "thread {thread}, round {i}: the call is gone");
                            let seen = ledger.get(hot_model).map_or(0, |t| t.llm_calls);
                            assert!(seen >= 1, "thread {thread}, round {i}: not in hot × model");
                        }
                        let id = format!("cold-{thread}-{i}");
                        let cold = info_span!(parent: None, "session", session.id = id.as_str());
                        let _c = cold.enter();
                        call("gpt-4o", 1_000, 0);
                    }
                });
            });
        }
    });
    assert_eq!(ledger.global().llm_calls, 8_000);
    assert!(ledger.diagnostics().evictions > 0);
    let snapshot = ledger.snapshot();
    let sessions: Vec<&str> = snapshot.by(Dimension::Session).map(|(s, _)| s).collect();
    let mut combinations = 0;
    for (key, totals) in &snapshot.keys {
        if let LedgerKey::Two((Dimension::Session, session), _) = key {
            combinations += 1;
            assert!(
                sessions.contains(&&**session),
                "{key:?} outlived its session"
            );
            let own = ledger.session(session).map(|t| t.llm_calls);
            assert_eq!(Some(totals.llm_calls), own, "{key:?}");
        }
    }
    assert_eq!(combinations, sessions.len());
    assert!(sessions.len() <= 2, "{sessions:?}");
}

#[test]
fn a_call_is_charged_at_the_prices_in_force_when_it_closes() {
    // Prices that changed in 2000 and change again in 2999: a call now is charged at the
    // change of 2000: 1 000 000 × $2 + 100 000 × $4 per million.
    let table = cost_layer::cost_core::PriceTable::from_text(
        "version = \"changing\"\n\
         [models.changing]\ninput = \"1\"\noutput = \"2\"\n\
         [[models.changing.changes]]\non = \"2000-01-01\"\ninput = \"2\"\noutput = \"4\"\n\
         [[models.changing.changes]]\non = \"2999-01-01\"\ninput = \"3\"\noutput = \"6\"\n",
        "changing.toml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (dispatch, ledger) = dispatch(CostLayer::builder().prices(table));
    tracing::dispatcher::with_default(&dispatch, || {
        let session = info_span!("session", session.id = "s-changing");
        let _s = session.enter();
        call("changing", 1_000_000, 100_000);
    });
    let totals = ledger.model("changing").unwrap_or_default();
    assert_eq!((totals.llm_calls, totals.total_usd()), (1, usd("2.4")));
}

/// A table with three prices read long ago (two of them on one day), one undated and one read
/// in the future of any clock this runs on.
fn dated_table() -> cost_layer::cost_core::PriceTable {
    cost_layer::cost_core::PriceTable::from_text(
        "version = \"dated\"\n\
         [models.old]\ninput = \"1\"\noutput = \"2\"\nas_of = \"2000-01-01\"\n\
         [models.old-mini]\ninput = \"1\"\noutput = \"2\"\nas_of = \"2000-01-01\"\n\
         [models.older]\ninput = \"1\"\noutput = \"2\"\nas_of = \"1999-01-01\"\n\
         [models.undated]\ninput = \"1\"\noutput = \"2\"\n\
         [models.fresh]\ninput = \"1\"\noutput = \"2\"\nas_of = \"2999-01-01\"\n",
        "dated.toml",
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_call_charged_at_a_stale_price_is_warned_about_once_and_still_charged() {
    let (layer, ledger) = CostLayer::builder().prices(dated_table()).build();
    let (dispatch, warnings) = Warnings::beside(layer, &["cost_layer::prices"]);
    let run = |model: &'static str, calls: u64| {
        let dispatch = dispatch.clone();
        std::thread::spawn(move || {
            tracing::dispatcher::with_default(&dispatch, || {
                let session = info_span!("session", session.id = "s-stale");
                let _s = session.enter();
                for _ in 0..calls {
                    call(model, 1_000_000, 0);
                }
            });
        })
    };
    // Two threads on one stale price, each with its own cached slot: counted once.
    let threads = [
        run("old", 50),
        run("old", 50),
        run("undated", 10),
        run("fresh", 10),
    ];
    for thread in threads {
        thread.join().unwrap_or_else(|_| panic!("thread panicked"));
    }
    let seen = warnings.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(
        seen[0].contains("model=old as_of=2000-01-01")
            && seen[0].contains("prices read on 2000-01-01 (")
            && seen[0].contains("`old`'s among them"),
        "{seen:?}"
    );
    assert_eq!(ledger.diagnostics().stale_prices, 1);
    // Another price of the same date is counted, not warned about again; another date is.
    run("old-mini", 1)
        .join()
        .unwrap_or_else(|_| panic!("thread panicked"));
    assert_eq!(
        (ledger.diagnostics().stale_prices, warnings.seen().len()),
        (2, 1)
    );
    run("older", 1)
        .join()
        .unwrap_or_else(|_| panic!("thread panicked"));
    assert_eq!(
        (ledger.diagnostics().stale_prices, warnings.seen().len()),
        (3, 2)
    );
    // Charged at the price all the same: a stale price is not an unknown one.
    let old = ledger
        .get(&LedgerKey::One(Dimension::Model, "old".into()))
        .unwrap_or_else(|| panic!("no model old"));
    assert_eq!((old.llm_calls, old.total_usd()), (100, usd("100")));
    assert_eq!(ledger.diagnostics().unpriced_calls, 0);
}

#[test]
fn the_price_age_limit_can_be_moved_or_turned_off() {
    for (limit, expected) in [(None, 0), (Some(u32::MAX), 0), (Some(0), 1)] {
        let (layer, ledger) = CostLayer::builder()
            .prices(dated_table())
            .price_age_limit(limit)
            .build();
        let (dispatch, warnings) = Warnings::beside(layer, &["cost_layer::prices"]);
        tracing::dispatcher::with_default(&dispatch, || {
            call("old", 10, 10);
            call("fresh", 10, 10);
        });
        assert_eq!(ledger.diagnostics().stale_prices, expected, "{limit:?}");
        assert_eq!(warnings.seen().len(), expected as usize, "{limit:?}");
    }
}

#[test]
fn keys_past_the_limit_are_evicted_least_recently_charged_first() {
    let max = 16;
    let (dispatch, ledger) = dispatch(CostLayer::builder().raw_user_ids().retention(Retention {
        max_keys: Some(max),
        ..Retention::default()
    }));
    // Evictable keys held: users and features (sessions and models are not).
    let held_keys = |ledger: &Ledger| {
        let snapshot = ledger.snapshot();
        snapshot.by(Dimension::User).count() + snapshot.by(Dimension::Feature).count()
    };
    let mut most_held = 0;
    tracing::dispatcher::with_default(&dispatch, || {
        // A user whose session stays open through a flood of other users: charged first, then
        // not again until the end.
        let held = info_span!("session", session.id = "held", cost.user_id = "held-user");
        held.in_scope(|| call("gpt-4o", 1_000, 0));
        for i in 0..100 {
            let id = format!("user-{i}");
            let request = info_span!("request", cost.user_id = id.as_str(), cost.feature = "chat");
            request.in_scope(|| call("gpt-4o", 1_000, 0));
            most_held = most_held.max(held_keys(&ledger));
        }
        held.in_scope(|| call("gpt-4o", 1_000, 0));
    });
    // Never more than the limit and its sixteenth (plus the key that set the sweep off).
    assert_eq!(most_held, max + max / 16 + 1);
    // The feature, charged by every call, is never the least recent: it has all 100.
    assert_eq!(ledger.feature("chat").map(|t| t.llm_calls), Some(100));
    // The latest users stay; the first went.
    assert_eq!(ledger.user("user-99").map(|t| t.llm_calls), Some(1));
    assert!(ledger.user("user-0").is_none());
    // The held user's key went in the flood: its call after it starts the key anew, in a cell
    // the ledger shows (not the evicted one its session still held).
    assert_eq!(ledger.user("held-user").map(|t| t.llm_calls), Some(1));
    assert!(ledger.session("held").is_some());
    // Model keys are never evicted: the global total has every call.
    assert_eq!(ledger.global().llm_calls, 102);
    assert_eq!(ledger.model("gpt-4o").map(|t| t.llm_calls), Some(102));
    // Every key made (102 of users, one feature) is held or was evicted, and counted.
    let evicted = ledger.diagnostics().key_evictions;
    assert_eq!(evicted as usize + held_keys(&ledger), 103);
    assert!(evicted >= 100 - max as u64, "{evicted}");
}

#[test]
fn without_a_key_limit_every_key_stays() {
    let (dispatch, ledger) = dispatch(CostLayer::builder().retention(Retention {
        max_keys: None,
        ..Retention::default()
    }));
    tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..300 {
            let id = format!("user-{i}");
            let request = info_span!("request", cost.user_id = id.as_str());
            request.in_scope(|| call("gpt-4o", 1_000, 0));
        }
    });
    assert_eq!(ledger.snapshot().by(Dimension::User).count(), 300);
    assert_eq!(ledger.diagnostics().key_evictions, 0);
}

#[test]
fn key_eviction_from_two_threads_keeps_every_call_in_the_keys_it_keeps() {
    let (dispatch, ledger) = dispatch(CostLayer::builder().raw_user_ids().retention(Retention {
        max_keys: Some(64),
        ..Retention::default()
    }));
    std::thread::scope(|scope| {
        for thread in 0..2 {
            let dispatch = dispatch.clone();
            scope.spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    for i in 0..5_000 {
                        let id = format!("user-{thread}-{i}");
                        let request = info_span!(
                            "request",
                            cost.user_id = id.as_str(),
                            cost.feature = "chat"
                        );
                        request.in_scope(|| call("gpt-4o", 1_000, 100));
                    }
                });
            });
        }
    });
    // 10 000 calls of $0.0035 each, exactly, in the keys that stay.
    let chat = ledger.feature("chat").unwrap_or_default();
    assert_eq!((chat.llm_calls, chat.total_usd()), (10_000, usd("35")));
    assert_eq!(ledger.global().total_usd(), usd("35"));
    let snapshot = ledger.snapshot();
    let users = snapshot.by(Dimension::User).count();
    // The limit, its sixteenth, and a key per thread made while the other swept.
    assert!(users <= 64 + 64 / 16 + 2, "{users}");
    // Every key made is held or was evicted: 10 001 of them, and a few more when a thread lagged
    // so far behind the other that its user's key, made when its span opened, was the least
    // recently charged before its call closed (the call then charged the key anew).
    assert!(ledger.diagnostics().key_evictions as usize + users + 1 >= 10_001);
}

#[test]
fn a_bad_search_count_is_rejected_and_the_warning_names_searches() {
    let (layer, ledger) = CostLayer::builder().build();
    let (dispatch, warnings) = Warnings::beside(layer, &["cost_layer"]);
    tracing::dispatcher::with_default(&dispatch, || {
        let session = info_span!("session", session.id = "s-search");
        let _s = session.enter();
        info_span!(
            "claude",
            gen_ai.request.model = "claude-sonnet-4-5",
            gen_ai.usage.input_tokens = 1_000,
            gen_ai.usage.output_tokens = 100,
            cost.usage.web_search_requests = -2_i64
        )
        .in_scope(|| {});
    });
    let session = ledger.session("s-search").unwrap_or_default();
    assert_eq!((session.llm_calls, session.rejected_calls), (0, 1));
    let seen = warnings.seen();
    assert_eq!(
        warnings.containing("search counts must be non-negative integers"),
        1,
        "{seen:?}"
    );
}

#[test]
fn a_reported_cost_that_disagrees_with_the_table_is_counted_and_warned_once_per_model() {
    let (layer, ledger) = CostLayer::builder().build();
    let (dispatch, warnings) = Warnings::beside(layer, &["cost_layer::prices", "cost_layer"]);
    let call = |model: &str, reported: &dyn tracing::Value| {
        // 1 000 input and 100 output tokens: $0.0035 for gpt-4o by the embedded table.
        info_span!(
            "chat",
            gen_ai.request.model = model,
            gen_ai.usage.input_tokens = 1_000,
            gen_ai.usage.output_tokens = 100,
            cost.reported_cost_usd = reported,
        )
        .in_scope(|| {});
    };
    tracing::dispatcher::with_default(&dispatch, || {
        // Agreeing, as a decimal string, a float and to the provider's rounding.
        call("gpt-4o", &"0.0035");
        call("gpt-4o", &0.0035_f64);
        call("gpt-4o", &"0.00350001");
        // Disagreeing: the provider charged a quarter more, twice.
        call("gpt-4o", &"0.004375");
        call("gpt-4o", &0.004375_f64);
        // Another model's disagreement is warned about too.
        call("gpt-4o-mini", &"1");
        // An unpriced model has no cost to compare: not a disagreement.
        call("acme-llm-9000", &"0.01");
        // Not amounts: rejected, counted and warned about as bad values.
        call("gpt-4o", &"-0.0035");
        call("gpt-4o", &"a lot");
        call("gpt-4o", &f64::NAN);
    });
    let diagnostics = ledger.diagnostics();
    assert_eq!(diagnostics.reported_cost_mismatches, 3);
    assert_eq!(diagnostics.bad_field_values, 3);
    assert_eq!(diagnostics.unpriced_calls, 1);
    // Every priced call is charged at the table's price, whatever its provider said.
    assert_eq!(
        ledger.model("gpt-4o").map(|t| (t.llm_calls, t.total_usd())),
        Some((8, usd("0.028")))
    );
    let seen = warnings.seen();
    assert_eq!(
        warnings.containing("Diagnostics::reported_cost_mismatches"),
        2,
        "{seen:?}"
    );
    assert_eq!(
        warnings.containing("reported_cost_usd=0.004375"),
        1,
        "{seen:?}"
    );
    assert_eq!(
        warnings.containing("rejected a value of `cost.reported_cost_usd`"),
        1,
        "{seen:?}"
    );
}

/// A call of `model` (none recorded when `None`): 1 000 input and 100 output tokens, `searches`
/// web searches, and the cost its provider `reported`, if any.
fn chat_call(model: Option<&str>, searches: u64, reported: Option<&str>) {
    let span = info_span!(
        "chat",
        gen_ai.request.model = Empty,
        gen_ai.usage.input_tokens = 1_000,
        gen_ai.usage.output_tokens = 100,
        cost.usage.web_search_requests = searches,
        cost.reported_cost_usd = Empty,
    );
    if let Some(model) = model {
        span.record("gen_ai.request.model", model);
    }
    if let Some(reported) = reported {
        span.record("cost.reported_cost_usd", reported);
    }
    span.in_scope(|| {});
}

#[test]
fn the_first_unpriced_call_of_each_model_for_each_reason_is_warned_about() {
    let (layer, ledger) = CostLayer::builder().build();
    let (dispatch, warnings) = Warnings::beside(layer, &["cost_layer::prices"]);
    tracing::dispatcher::with_default(&dispatch, || {
        // Priced: no warning.
        chat_call(Some("gpt-4o-mini"), 0, None);
        // A model the table lacks, its provider's figure on the first call: one warning.
        chat_call(Some("acme-llm-9000"), 0, Some("0.01"));
        chat_call(Some("acme-llm-9000"), 0, None);
        // A known model whose call the table cannot price (gpt-4o declares no search price).
        chat_call(Some("gpt-4o"), 2, None);
        chat_call(Some("gpt-4o"), 0, None);
        // The same model unpriced for another reason: the image generation tool, which the
        // embedded table prices on no model.
        info_span!(
            "chat",
            gen_ai.request.model = "gpt-4o",
            gen_ai.usage.input_tokens = 1_000,
            gen_ai.usage.output_tokens = 100,
            cost.usage.image_generation_calls = 1,
        )
        .in_scope(|| {});
        // A call that named no model.
        chat_call(None, 0, None);
    });
    // The same models from another thread: warned about already.
    std::thread::scope(|scope| {
        scope.spawn(|| {
            tracing::dispatcher::with_default(&dispatch, || {
                chat_call(Some("acme-llm-9000"), 0, None);
                chat_call(Some("gpt-4o"), 1, None);
            })
        });
    });
    assert_eq!(ledger.diagnostics().unpriced_calls, 7);
    let seen = warnings.seen();
    // One per model and reason.
    assert_eq!(warnings.containing("is unpriced"), 4, "{seen:?}");
    assert_eq!(
        warnings.containing(
            "a call of acme-llm-9000 is unpriced: unknown model `acme-llm-9000`: no price in the table"
        ),
        1,
        "{seen:?}"
    );
    // Its provider's figure, and the option that would charge it.
    assert_eq!(
        warnings.containing("Its provider reported $0.01 for it: `CostLayerBuilder::charge_reported_cost_when_unpriced(true)`"),
        1,
        "{seen:?}"
    );
    assert_eq!(
        warnings
            .containing("a call of gpt-4o is unpriced: cannot price `gpt-4o`: the model has no"),
        2,
        "{seen:?}"
    );
    assert_eq!(
        warnings.containing("a call of unknown is unpriced: the call recorded no model"),
        1,
        "{seen:?}"
    );
}

#[test]
fn a_call_of_a_model_whose_entry_the_price_file_left_out_is_unpriced_and_says_why() {
    // LiteLLM's file prices the snapshot apart from its family, but its own entry is invalid:
    // the call is unpriced (not charged the family's price) and the warning says why.
    let prices = r#"{
  "acme-chat": {"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-6},
  "acme-chat-2026-01-01": {"input_cost_per_token": "dear", "output_cost_per_token": 1e-6}
}"#;
    let table = cost_layer::cost_core::PriceTable::from_text(prices, "prices.json")
        .unwrap_or_else(|e| panic!("{e}"));
    let (layer, ledger) = CostLayer::builder().prices(table).build();
    let (dispatch, warnings) = Warnings::beside(layer, &["cost_layer::prices"]);
    tracing::dispatcher::with_default(&dispatch, || {
        chat_call(Some("acme-chat-2026-01-01"), 0, None);
        chat_call(Some("acme-chat"), 0, None);
    });
    let global = ledger.global();
    assert_eq!((global.llm_calls, global.unpriced_calls), (2, 1));
    assert_eq!(global.unpriced_tokens, 1_100);
    assert_eq!(global.total_usd(), usd("0.0011"));
    let seen = warnings.seen();
    assert_eq!(
        warnings.containing(
            "a call of acme-chat-2026-01-01 is unpriced: model `acme-chat-2026-01-01` has no price: its entry was left out of the table (prices.json:3:"
        ),
        1,
        "{seen:?}"
    );
}

#[test]
fn a_call_charged_its_reported_cost_is_not_warned_about_as_unpriced() {
    let (layer, ledger) = CostLayer::builder()
        .charge_reported_cost_when_unpriced(true)
        .build();
    let (dispatch, warnings) = Warnings::beside(layer, &["cost_layer::prices"]);
    let call = |reported: Option<&str>| chat_call(Some("acme-llm-9000"), 0, reported);
    tracing::dispatcher::with_default(&dispatch, || {
        call(Some("0.01"));
        assert_eq!(
            warnings.containing("is unpriced"),
            0,
            "{:?}",
            warnings.seen()
        );
        // Without a figure the call stays unpriced, and is warned about.
        call(None);
    });
    assert_eq!(ledger.diagnostics().unpriced_calls, 1);
    let seen = warnings.seen();
    assert_eq!(
        warnings.containing("a call of acme-llm-9000 is unpriced"),
        1,
        "{seen:?}"
    );
    assert_eq!(warnings.containing("reported"), 0, "{seen:?}");
}

/// Calls of a model the embedded table has no price for (some with the cost their provider
/// reported), a priced call whose provider disagrees, and a cache hit, in one session.
fn calls_with_reported_costs(layer: CostLayer) {
    let call = |model: &str, reported: Option<&dyn tracing::Value>, cache_hit: bool| {
        let span = info_span!(
            "chat",
            gen_ai.request.model = model,
            gen_ai.usage.input_tokens = 1_000,
            gen_ai.usage.output_tokens = 100,
            cost.reported_cost_usd = Empty,
            llm.cache.hit = cache_hit,
        );
        if let Some(reported) = reported {
            span.record("cost.reported_cost_usd", reported);
        }
        span.in_scope(|| {});
    };
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let session = info_span!("session", session.id = "s-reported");
        let _s = session.enter();
        call("acme-llm-9000", Some(&"0.01"), false);
        call("acme-llm-9000", Some(&0.0025_f64), false);
        call("acme-llm-9000", None, false);
        // $0.0035 by the table, whatever its provider says.
        call("gpt-4o", Some(&"1"), false);
        call("acme-llm-9000", Some(&"0.004"), true);
    });
}

#[test]
fn an_unpriced_call_is_charged_its_reported_cost_only_when_the_layer_is_told_to() {
    let closes: Arc<Mutex<Vec<Totals>>> = Arc::default();
    let seen = Arc::clone(&closes);
    let (layer, ledger) = CostLayer::builder()
        .charge_reported_cost_when_unpriced(true)
        .on_close_filtered(
            |close| close.scope == Scope::Call,
            move |close| {
                if let Ok(mut seen) = seen.lock() {
                    seen.push(close.totals.clone());
                }
            },
        )
        .build();
    calls_with_reported_costs(layer);
    let session = ledger.session("s-reported").unwrap_or_default();
    assert_eq!(session.llm_calls, 4);
    assert_eq!(session.provider_reported_calls, 2);
    assert_eq!(session.unpriced_calls, 1);
    assert_eq!(session.cost.provider_reported, usd("0.0125"));
    assert_eq!(session.total_usd(), usd("0.016"));
    // The hit saved what its provider had said the answer cost.
    assert_eq!((session.cache_hits, session.unpriced_cache_hits), (1, 0));
    assert_eq!(session.cache_hit_savings, usd("0.004"));
    assert_eq!(
        session.to_string(),
        "≥ $0.016 · 4400 tokens · 4 calls · 2 at their providers' reported costs · 1 unpriced (1100 tokens, cost unknown) · 1 cache hit (saved $0.004)"
    );
    let model = ledger.model("acme-llm-9000").unwrap_or_default();
    assert_eq!(
        (
            model.llm_calls,
            model.provider_reported_calls,
            model.total_usd()
        ),
        (3, 2, usd("0.0125"))
    );
    let diagnostics = ledger.diagnostics();
    assert_eq!(diagnostics.unpriced_calls, 1);
    // Only the priced call is compared: a charged reported cost agrees with itself.
    assert_eq!(diagnostics.reported_cost_mismatches, 1);
    let closes = closes.lock().map(|c| c.clone()).unwrap_or_default();
    let charged: Vec<(u64, Money)> = closes
        .iter()
        .map(|t| (t.provider_reported_calls, t.total_usd()))
        .collect();
    assert_eq!(
        charged,
        [
            (1, usd("0.01")),
            (1, usd("0.0025")),
            (0, Money::ZERO),
            (0, usd("0.0035")),
            (0, Money::ZERO),
        ]
    );
    assert!(closes[0].is_complete() && !closes[2].is_complete());

    // By default the same calls are unpriced: their cost unknown, never the provider's.
    let (layer, ledger) = CostLayer::builder().build();
    calls_with_reported_costs(layer);
    let session = ledger.session("s-reported").unwrap_or_default();
    assert_eq!(
        (
            session.llm_calls,
            session.unpriced_calls,
            session.provider_reported_calls
        ),
        (4, 3, 0)
    );
    assert_eq!(session.total_usd(), usd("0.0035"));
    assert_eq!(session.unpriced_cache_hits, 1);
    assert_eq!(session.cache_hit_savings, Money::ZERO);
}

#[test]
fn the_ledger_counts_the_keys_it_holds() {
    let (dispatch, ledger) = dispatch(CostLayer::builder());
    assert!(ledger.is_empty());
    assert_eq!(ledger.len(), 0);
    tracing::dispatcher::with_default(&dispatch, || {
        let session = info_span!("session", session.id = "s", cost.feature = "f");
        session.in_scope(|| call("gpt-4o", 1_000, 100));
    });
    // The session, the feature and the model.
    let keys: Vec<String> = ledger
        .snapshot()
        .keys
        .iter()
        .map(|(key, _)| format!("{key:?}"))
        .collect();
    assert_eq!(ledger.len(), 3, "{keys:?}");
    assert!(!ledger.is_empty());
    assert_eq!(format!("{ledger:?}"), "Ledger { keys: 3, .. }");
}

#[test]
fn dimensions_are_named_in_lower_case() {
    let names = [
        Dimension::Session,
        Dimension::Agent,
        Dimension::User,
        Dimension::Org,
        Dimension::Feature,
        Dimension::Model,
    ]
    .map(Dimension::as_str);
    assert_eq!(
        names,
        ["session", "agent", "user", "org", "feature", "model"]
    );
}

#[test]
fn a_session_still_open_in_one_span_is_not_evicted_when_another_of_its_spans_closes() {
    let (dispatch, ledger) = dispatch(CostLayer::builder().retention(Retention {
        max_closed_sessions: Some(1),
        ..Retention::default()
    }));
    tracing::dispatcher::with_default(&dispatch, || {
        let long = info_span!("session", session.id = "s");
        long.in_scope(|| call("gpt-4o", 1_000, 100));
        // A second span of the same session opens and closes while the first stays open...
        info_span!("session", session.id = "s").in_scope(|| call("gpt-4o", 1_000, 100));
        // ...then another session closes: past the one closed session kept, but `s` is open.
        info_span!("session", session.id = "t").in_scope(|| call("gpt-4o", 1_000, 100));
        assert_eq!(ledger.session("s").map(|t| t.llm_calls), Some(2));
        drop(long);
    });
    // Once its last span closed, it is the one closed session kept, and `t` goes.
    assert_eq!(ledger.session("s").map(|t| t.llm_calls), Some(2));
    assert!(ledger.session("t").is_none());
}

#[test]
fn a_bad_value_of_each_kind_of_field_is_warned_about_in_the_words_of_its_kind() {
    let (layer, ledger) = CostLayer::builder().build();
    let (dispatch, warnings) = Warnings::beside(layer, &["cost_layer"]);
    tracing::dispatcher::with_default(&dispatch, || {
        let session = info_span!("session", session.id = "s-bad");
        let _s = session.enter();
        // One call span per bad value: each callsite is warned about once.
        macro_rules! call_with {
            ($($field:tt)+) => {
                info_span!(
                    "chat",
                    gen_ai.request.model = "gpt-4o",
                    gen_ai.usage.input_tokens = 1_000,
                    gen_ai.usage.output_tokens = 100,
                    $($field)+
                )
                .in_scope(|| {})
            };
        }
        call_with!(gen_ai.usage.reasoning.output_tokens = -5_i64);
        call_with!(cost.usage.file_search_calls = -1_i64);
        call_with!(cost.usage.image_generation_calls = "two");
        call_with!(cost.usage.code_interpreter_sessions = -1_i64);
        call_with!(cost.service_tier = "turbo");
        call_with!(cost.data_residency = "maybe");
        call_with!(cost.search_context_size = "huge");
        call_with!(llm.cache.hit = "perhaps");
        call_with!(cost.scope = "galaxy");
        call_with!(cost.reported_cost_usd = "-1");
        call_with!(cost.feature = true);
    });
    let seen = warnings.seen();
    for words in [
        "token counts must be non-negative integers",
        "file search call counts must be non-negative integers",
        "generated image counts must be non-negative integers",
        "code interpreter session counts must be non-negative integers",
        "a service tier is",
        "data residency is `true` or `false`",
        "a search context size is `low`, `medium` or `high`",
        "a cache hit is `true` or `false`",
        "a scope is `session`, `agent` or `call`",
        "a reported cost is a non-negative amount of US dollars",
        "ids and names are text",
    ] {
        assert_eq!(warnings.containing(words), 1, "{words}: {seen:?}");
    }
    // The four bad counts leave their calls uncharged; the other values are ignored.
    let session = ledger.session("s-bad").unwrap_or_default();
    assert_eq!((session.rejected_calls, session.llm_calls), (4, 7));
    assert_eq!(ledger.diagnostics().bad_field_values, 11);
}

#[test]
fn the_cache_counts_under_their_names_before_opentelemetry_are_priced_as_cache_reads_and_writes() {
    // claude-sonnet-4-5: $3 input, $0.30 cache reads, $3.75 cache writes, $15 output per
    // million tokens; 10 000 input tokens, 6 000 of them read from the cache and 2 000 written.
    let (dispatch, ledger) = dispatch(CostLayer::builder());
    tracing::dispatcher::with_default(&dispatch, || {
        let session = info_span!("s", session.id = "older-names");
        let _s = session.enter();
        info_span!(
            "llm_call",
            gen_ai.request.model = "claude-sonnet-4-5",
            gen_ai.usage.input_tokens = 10_000,
            gen_ai.usage.cache_read_input_tokens = 6_000,
            gen_ai.usage.cache_creation_input_tokens = 2_000,
            gen_ai.usage.output_tokens = 500,
        )
        .in_scope(|| {});
    });
    let totals = ledger
        .session("older-names")
        .unwrap_or_else(|| panic!("no session"));
    assert_eq!(
        (totals.usage.cache_read, totals.usage.cache_write),
        (6_000, 2_000)
    );
    // 2 000 × 3 + 6 000 × 0.30 + 2 000 × 3.75 + 500 × 15, per million.
    assert_eq!(
        totals.total_usd(),
        Money::from_decimal("0.0228").unwrap_or(Money::ZERO)
    );
}
