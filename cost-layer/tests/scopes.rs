//! `#[agent]` and `#[session]`: the spans they open are the agent runs and sessions of the
//! layer, with the attribution given, on sync and async fns and methods, and the calls inside
//! roll up into them.

#[path = "support/common.rs"]
mod common;
use common::{block_on, usd};

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use cost_layer::cost_core::{Money, Usage};
use cost_layer::{Attribution, CostLayer, Ledger, Scope, agent, llm_call, session};
use tracing_subscriber::prelude::*;

/// What a closing span's callback saw.
#[derive(Clone, Debug)]
struct Closed {
    name: &'static str,
    scope: Scope,
    attribution: Attribution,
    cost: Money,
    llm_calls: u64,
    agent_runs: u64,
}

type Seen = Arc<Mutex<Vec<Closed>>>;

fn run<R>(f: impl FnOnce() -> R) -> (R, Vec<Closed>, Ledger) {
    let seen: Seen = Arc::default();
    let sink = Arc::clone(&seen);
    let (layer, ledger) = CostLayer::builder()
        .raw_user_ids()
        .on_close(move |c| {
            if let Ok(mut seen) = sink.lock() {
                seen.push(Closed {
                    name: c.name,
                    scope: c.scope,
                    attribution: c.attribution.clone(),
                    cost: c.totals.total_usd(),
                    llm_calls: c.totals.llm_calls,
                    agent_runs: c.totals.agent_runs,
                });
            }
        })
        .build();
    let out = tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), f);
    let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
    (out, seen, ledger)
}

fn closed<'a>(seen: &'a [Closed], name: &str) -> &'a Closed {
    seen.iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no span {name} closed: {seen:?}"))
}

/// gpt-4o: $2.50 in, $10 out per million tokens; 1 000 in and 100 out cost $0.0035.
#[llm_call(model = "gpt-4o")]
fn ask(input: u64, output: u64) -> Usage {
    Usage {
        input,
        output,
        ..Usage::default()
    }
}

#[agent(name = "planner")]
fn plan() -> u32 {
    ask(1_000, 100);
    ask(1_000, 100);
    2
}

#[agent]
fn writer(feature: &str) {
    let _ = feature;
    ask(2_000, 200);
}

#[session(id = id, user = user, feature = "support")]
fn handle(id: &str, user: &str) -> u32 {
    let planned = plan();
    writer("drafting");
    planned
}

#[test]
fn a_session_of_agent_runs_rolls_up_and_is_attributed() {
    let (planned, seen, ledger) = run(|| handle("s-1", "alice"));
    assert_eq!(planned, 2, "the body's value is returned");

    let session = closed(&seen, "handle");
    assert_eq!(session.scope, Scope::Session);
    assert_eq!(session.attribution.session.as_deref(), Some("s-1"));
    assert_eq!(session.attribution.user.as_deref(), Some("alice"));
    assert_eq!(session.attribution.feature.as_deref(), Some("support"));
    assert_eq!(session.cost, usd("0.014"));
    assert_eq!((session.llm_calls, session.agent_runs), (3, 2));

    // A literal name names the span; without one the agent is the function.
    let planner = closed(&seen, "planner");
    assert_eq!(planner.scope, Scope::Agent);
    assert_eq!(planner.attribution.agent.as_deref(), Some("planner"));
    assert_eq!(planner.attribution.session.as_deref(), Some("s-1"));
    assert_eq!((planner.cost, planner.llm_calls), (usd("0.007"), 2));
    let writer = closed(&seen, "writer");
    assert_eq!(writer.scope, Scope::Agent);
    assert_eq!(writer.attribution.agent.as_deref(), Some("writer"));
    assert_eq!(writer.attribution.feature.as_deref(), Some("support"));
    assert_eq!(writer.cost, usd("0.007"));

    let total = |t: Option<cost_layer::Totals>| t.map(|t| t.total_usd());
    assert_eq!(total(ledger.session("s-1")), Some(usd("0.014")));
    assert_eq!(total(ledger.agent("planner")), Some(usd("0.007")));
    assert_eq!(total(ledger.agent("writer")), Some(usd("0.007")));
    assert_eq!(total(ledger.user("alice")), Some(usd("0.014")));
    assert_eq!(total(ledger.feature("support")), Some(usd("0.014")));
}

/// A support desk whose sessions and agents are methods.
struct Desk {
    org: String,
}

impl Desk {
    #[session(id = format!("ticket-{ticket}"), org = self.org, name = "ticket")]
    async fn ticket(&self, ticket: u32, role: &str) -> Money {
        self.triage(role).await
    }

    #[agent(name = role, feature = "triage", level = "debug")]
    async fn triage(&self, role: &str) -> Money {
        let _ = &self.org;
        answer().await;
        answer().await;
        usd("1")
    }
}

/// Pending once, then ready: a request in flight, so other futures run meanwhile.
async fn in_flight() {
    let mut pending = true;
    std::future::poll_fn(|_| {
        if std::mem::take(&mut pending) {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
}

#[llm_call(model = "gpt-4o")]
async fn answer() -> Usage {
    in_flight().await;
    Usage {
        input: 10_000,
        output: 1_000,
        ..Usage::default()
    }
}

#[test]
fn async_methods_open_their_scopes_with_names_given_by_expressions() {
    let desk = Desk { org: "acme".into() };
    let (out, seen, ledger) = run(|| block_on(desk.ticket(7, "triager")));
    assert_eq!(out, usd("1"));

    let session = closed(&seen, "ticket");
    assert_eq!(session.scope, Scope::Session);
    assert_eq!(session.attribution.session.as_deref(), Some("ticket-7"));
    assert_eq!(session.attribution.org.as_deref(), Some("acme"));
    assert_eq!((session.cost, session.agent_runs), (usd("0.07"), 1));

    // An expression names the agent, not the span: that keeps the function's name.
    let agent = closed(&seen, "triage");
    assert_eq!(agent.scope, Scope::Agent);
    assert_eq!(agent.attribution.agent.as_deref(), Some("triager"));
    assert_eq!(agent.attribution.feature.as_deref(), Some("triage"));
    assert_eq!(agent.attribution.org.as_deref(), Some("acme"));
    assert_eq!((agent.cost, agent.llm_calls), (usd("0.07"), 2));

    let calls: Vec<&Closed> = seen.iter().filter(|c| c.scope == Scope::Call).collect();
    assert_eq!(calls.len(), 2);
    for call in calls {
        assert_eq!(call.attribution.agent.as_deref(), Some("triager"));
        assert_eq!(call.attribution.session.as_deref(), Some("ticket-7"));
    }
    assert_eq!(ledger.org("acme").map(|t| t.total_usd()), Some(usd("0.07")));
}

#[test]
fn a_scope_span_is_entered_only_while_its_future_runs() {
    // Two sessions' futures polled in turn on one thread, each call pending once: each lands
    // in its own session.
    let (_, _, ledger) = run(|| {
        block_on(async {
            let desk = Desk { org: "acme".into() };
            let (a, b) = (desk.ticket(1, "a"), desk.ticket(2, "b"));
            let mut a = std::pin::pin!(a);
            let mut b = std::pin::pin!(b);
            let mut cx = Context::from_waker(Waker::noop());
            let (mut a_done, mut b_done) = (false, false);
            while !(a_done && b_done) {
                a_done = a_done || a.as_mut().poll(&mut cx).is_ready();
                b_done = b_done || b.as_mut().poll(&mut cx).is_ready();
            }
        })
    });
    for id in ["ticket-1", "ticket-2"] {
        let totals = ledger.session(id).unwrap_or_else(|| panic!("no {id}"));
        assert_eq!(
            (totals.total_usd(), totals.llm_calls),
            (usd("0.07"), 2),
            "{id}"
        );
    }
}

/// An agent behind a trait, in the shape `#[async_trait]` gives its methods, and in a native
/// `async fn` of a trait.
trait Worker {
    fn boxed(&self, input: u64) -> std::pin::Pin<Box<dyn Future<Output = u64> + Send + '_>>;
    async fn native(&self, input: u64) -> u64;
}

struct Fake;

impl Worker for Fake {
    #[agent(name = "boxed", fields(worker.kind = "fake"))]
    fn boxed(&self, input: u64) -> std::pin::Pin<Box<dyn Future<Output = u64> + Send + '_>> {
        Box::pin(async move {
            // The span covers the polls of the future, not only its construction.
            assert_eq!(
                tracing::Span::current().metadata().map(|m| m.name()),
                Some("boxed")
            );
            in_flight().await;
            ask(input, 0);
            input
        })
    }

    #[agent(name = "native")]
    async fn native(&self, input: u64) -> u64 {
        in_flight().await;
        ask(input, 0);
        input
    }
}

/// A generic session returning `impl Trait`.
#[session(id = format!("gen-{}", label), feature = label)]
fn generic_session<W: Worker>(worker: &W, label: &str) -> impl std::fmt::Display + use<W> {
    block_on(worker.boxed(4_000)) + block_on(worker.native(400))
}

#[test]
fn trait_methods_generics_and_impl_trait() {
    let (out, seen, ledger) = run(|| generic_session(&Fake, "shapes").to_string());
    assert_eq!(out, "4400");
    // gpt-4o input at $2.50 per million: 4 000 tokens $0.01, 400 tokens $0.001.
    assert_eq!(closed(&seen, "boxed").cost, usd("0.01"));
    assert_eq!(closed(&seen, "boxed").scope, Scope::Agent);
    assert_eq!(closed(&seen, "native").cost, usd("0.001"));
    let session = closed(&seen, "generic_session");
    assert_eq!(session.scope, Scope::Session);
    assert_eq!(session.attribution.session.as_deref(), Some("gen-shapes"));
    assert_eq!((session.cost, session.agent_runs), (usd("0.011"), 2));
    assert_eq!(
        ledger.feature("shapes").map(|t| t.llm_calls),
        Some(2),
        "the session's feature is inherited by its agents' calls"
    );
}

/// A session whose user is known only once the request is authenticated.
#[session(id = "late")]
fn authenticated_late(user: &str) {
    ask(1_000, 0); // before: no user
    tracing::Span::current().record("cost.user_id", user);
    ask(1_000, 0);
}

#[test]
fn attribution_left_out_can_be_recorded_once_known() {
    let (_, _, ledger) = run(|| authenticated_late("bob"));
    // $0.0025 per 1 000 input tokens: the call after the user was recorded is theirs.
    assert_eq!(
        ledger.session("late").map(|t| t.total_usd()),
        Some(usd("0.005"))
    );
    assert_eq!(
        ledger.user("bob").map(|t| t.total_usd()),
        Some(usd("0.0025"))
    );
}
