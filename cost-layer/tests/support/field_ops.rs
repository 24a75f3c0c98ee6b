//! Arbitrary span trees and field values, driven by bytes: shared by the `layer_fields` fuzz
//! target (`fuzz/`) and its proptest twin (`cost-layer/tests/field_ops.rs`).
//!
//! Each step takes a few bytes: open a span (a session, an agent, a call or a plain span, under
//! any open span or none), record a value of any type in any field of any open span, close any
//! open span (in any order), or link two spans with `follows_from`. At the end every span is
//! closed and the ledger's invariants are checked: nothing panicked, and no number is wrong in
//! a way that can be told without pricing the calls again.

use std::sync::{Arc, Mutex};

use cost_layer::{CostLayer, Ledger, Totals};
use tracing::Span;
use tracing::field::Empty;
use tracing_subscriber::prelude::*;

const FIELDS: [&str; 8] = [
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.reasoning.output_tokens",
    "gen_ai.request.model",
    "gen_ai.response.model",
    "llm.cache.hit",
    "cost.service_tier",
];

/// Picked by the field bytes 0xF8 to 0xFB (before the kinds below were added, by 0xF8 and
/// above), so the bytes of the regressions found before it was added keep their meaning.
const SEARCH_FIELD: &str = "cost.usage.web_search_requests";

/// The other token kinds and hosted tool uses, the data-residency flag, the search context
/// size and the reported cost, picked by the top four field bytes (0xFC and above) and one more
/// byte: field bytes below 0xFC read no more bytes than before, so the regressions found
/// before these were added (none with such a field byte) keep their meaning.
const OTHER_FIELDS: [&str; 14] = [
    "gen_ai.usage.cache_creation.input_tokens",
    "cost.usage.cache_write_1h_tokens",
    "cost.usage.audio_input_tokens",
    "cost.usage.audio_output_tokens",
    "cost.usage.cache_read_audio_tokens",
    "cost.usage.image_output_tokens",
    "cost.usage.image_input_tokens",
    "cost.usage.cache_read_image_tokens",
    "cost.usage.file_search_calls",
    "cost.data_residency",
    "cost.usage.image_generation_calls",
    "cost.usage.code_interpreter_sessions",
    SEARCH_CONTEXT_SIZE_FIELD,
    "cost.reported_cost_usd",
];

const SEARCH_CONTEXT_SIZE_FIELD: &str = "cost.search_context_size";

/// The texts recorded as a string (type byte 6): the search context size's own, so that its
/// valid values are recorded too, and the rest for every other field.
const SEARCH_CONTEXT_SIZE_TEXTS: [&str; 8] = [
    "low",
    "medium",
    "high",
    "HIGH",
    "search_context_size_low",
    "huge",
    "",
    "12",
];
const TEXTS: [&str; 8] = ["12", "-3", "1e3", " 42 ", "", "batch", "true", "∞"];

const MODELS: [&str; 4] = [
    "gpt-4o",
    "gpt-4o-mini",
    "claude-sonnet-4-5",
    "no-such-model",
];

/// Reads bytes one at a time; zero once they run out.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn next(&mut self) -> u8 {
        match self.0.split_first() {
            Some((first, rest)) => {
                self.0 = rest;
                *first
            }
            None => 0,
        }
    }

    fn u64(&mut self) -> u64 {
        (0..8).fold(0, |n, _| (n << 8) | u64::from(self.next()))
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn open(kind: u8, parent: Option<&Span>, input: &mut Bytes<'_>) -> Span {
    let parent = parent.and_then(Span::id);
    match kind % 4 {
        0 => {
            let id = format!("s{}", input.next() % 4);
            tracing::info_span!(parent: parent, "session", session.id = id.as_str())
        }
        1 => tracing::info_span!(parent: parent, "agent", gen_ai.agent.name = "agent"),
        2 => tracing::info_span!(
            parent: parent,
            "call",
            gen_ai.request.model = MODELS[usize::from(input.next()) % MODELS.len()],
            gen_ai.response.model = Empty,
            gen_ai.usage.input_tokens = Empty,
            gen_ai.usage.output_tokens = Empty,
            gen_ai.usage.cache_read.input_tokens = Empty,
            gen_ai.usage.reasoning.output_tokens = Empty,
            llm.cache.hit = Empty,
            cost.service_tier = Empty,
            cost.usage.web_search_requests = Empty,
            gen_ai.usage.cache_creation.input_tokens = Empty,
            cost.usage.cache_write_1h_tokens = Empty,
            cost.usage.audio_input_tokens = Empty,
            cost.usage.audio_output_tokens = Empty,
            cost.usage.cache_read_audio_tokens = Empty,
            cost.usage.image_output_tokens = Empty,
            cost.usage.image_input_tokens = Empty,
            cost.usage.cache_read_image_tokens = Empty,
            cost.usage.file_search_calls = Empty,
            cost.data_residency = Empty,
            cost.usage.image_generation_calls = Empty,
            cost.usage.code_interpreter_sessions = Empty,
            cost.search_context_size = Empty,
            cost.reported_cost_usd = Empty,
        ),
        _ => tracing::info_span!(parent: parent, "tool", step = u64::from(kind)),
    }
}

fn record(span: &Span, input: &mut Bytes<'_>) {
    let field = match input.next() {
        0xFC.. => OTHER_FIELDS[usize::from(input.next()) % OTHER_FIELDS.len()],
        0xF8.. => SEARCH_FIELD,
        n => FIELDS[usize::from(n) % FIELDS.len()],
    };
    match input.next() % 8 {
        0 => {
            span.record(field, input.u64() % 100_000);
        }
        1 => {
            span.record(field, input.u64());
        }
        2 => {
            span.record(field, input.u64() as i64);
        }
        3 => {
            span.record(field, f64::from_bits(input.u64()));
        }
        4 => {
            span.record(field, input.next().is_multiple_of(2));
        }
        5 => {
            span.record(field, MODELS[usize::from(input.next()) % MODELS.len()]);
        }
        6 => {
            let text = if field == SEARCH_CONTEXT_SIZE_FIELD {
                SEARCH_CONTEXT_SIZE_TEXTS
            } else {
                TEXTS
            };
            span.record(field, text[usize::from(input.next()) % text.len()]);
        }
        _ => {
            span.record(field, tracing::field::debug(input.u64() % 1_000));
        }
    }
}

/// Runs the steps the bytes describe; returns the ledger and how many call spans were opened.
pub(crate) fn run(bytes: &[u8]) -> (Ledger, u64) {
    let (cost, ledger) = CostLayer::builder().build();
    let calls = drive(
        bytes,
        tracing::Dispatch::new(tracing_subscriber::registry().with(cost)),
    );
    (ledger, calls)
}

/// Runs the steps under a layer whose table of open spans with a record holds eight (one
/// bucket), and under one with every observer on (a cost tree: plain spans get records too)
/// and a table as small; each must keep the ledger of the default layer. Trees with more than
/// eight such spans open take the path where a span is not in the table and must be looked up.
#[allow(dead_code)]
pub(crate) fn check_small_live_table(bytes: &[u8]) -> Result<(), String> {
    let (alone, _) = run(bytes);
    let expected = alone.snapshot();
    let (small, small_ledger) = CostLayer::builder().live_record_table_bits(0).build();
    drive(
        bytes,
        tracing::Dispatch::new(tracing_subscriber::registry().with(small)),
    );
    same_ledger(&small_ledger.snapshot(), &expected).map_err(|e| format!("small table: {e}"))?;
    let (tree, tree_ledger) = CostLayer::builder()
        .live_record_table_bits(0)
        .cost_tree(|_| {})
        .build();
    drive(
        bytes,
        tracing::Dispatch::new(tracing_subscriber::registry().with(tree)),
    );
    same_ledger(&tree_ledger.snapshot(), &expected)
        .map_err(|e| format!("small table, cost tree: {e}"))
}

/// Runs the steps under a layer that charges unpriced calls their provider's reported cost:
/// against the default layer, the same calls, tokens, rejections and cache hits; each call
/// charged so is one fewer unpriced; and the table's part of the cost is the same (all that
/// differs is in `cost.provider_reported`, and savings only by the hits charged so).
#[allow(dead_code)]
pub(crate) fn check_reported_cost_charge(bytes: &[u8]) -> Result<(), String> {
    let (off, _) = run(bytes);
    let (on, on_ledger) = CostLayer::builder()
        .charge_reported_cost_when_unpriced(true)
        .build();
    drive(
        bytes,
        tracing::Dispatch::new(tracing_subscriber::registry().with(on)),
    );
    let (off, on) = (off.global(), on_ledger.global());
    let same = |what: &str, a: u64, b: u64| {
        if a == b {
            Ok(())
        } else {
            Err(format!("{what}: {a} charging reported costs, {b} without"))
        }
    };
    same("calls", on.llm_calls, off.llm_calls)?;
    same("rejected calls", on.rejected_calls, off.rejected_calls)?;
    same("cache hits", on.cache_hits, off.cache_hits)?;
    same("tokens", on.total_tokens(), off.total_tokens())?;
    same(
        "unpriced calls, with those charged their reported cost",
        on.unpriced_calls + on.provider_reported_calls,
        off.unpriced_calls,
    )?;
    same(
        "calls charged their reported cost without the option",
        off.provider_reported_calls,
        0,
    )?;
    if on.usage != off.usage {
        return Err(format!("usage {:?} against {:?}", on.usage, off.usage));
    }
    let mut table_part = on.cost;
    table_part.provider_reported = cost_layer::cost_core::Money::ZERO;
    if table_part != off.cost || off.cost.provider_reported != cost_layer::cost_core::Money::ZERO {
        return Err(format!("cost {:?} against {:?}", on.cost, off.cost));
    }
    if on.unpriced_cache_hits > off.unpriced_cache_hits
        || on.cache_hit_savings < off.cache_hit_savings
    {
        return Err(format!(
            "cache hits' savings {} ({} unknown) against {} ({} unknown)",
            on.cache_hit_savings,
            on.unpriced_cache_hits,
            off.cache_hit_savings,
            off.unpriced_cache_hits
        ));
    }
    Ok(())
}

/// `Ok` when `got` has the global totals, keys and diagnostics of `expected`; else which differ.
#[allow(dead_code)]
pub(crate) fn same_ledger(
    got: &cost_layer::LedgerSnapshot,
    expected: &cost_layer::LedgerSnapshot,
) -> Result<(), String> {
    if got.global != expected.global {
        return Err(format!(
            "global {:?} against {:?}",
            got.global, expected.global
        ));
    }
    if got.keys != expected.keys {
        return Err(format!("keys {:?} against {:?}", got.keys, expected.keys));
    }
    if got.diagnostics != expected.diagnostics {
        return Err(format!(
            "diagnostics {:?} against {:?}",
            got.diagnostics, expected.diagnostics
        ));
    }
    Ok(())
}

/// Runs the steps alone and under two layers (see [`run_with_two_layers`]): each of the two
/// keeps the ledger of the layer alone, the sink gets every charged call once with what it was
/// charged, and every cost-tree node's totals are its children's sum.
#[allow(dead_code)]
pub(crate) fn check_two_layers(bytes: &[u8]) -> Result<(), String> {
    let (alone, _) = run(bytes);
    let expected = alone.snapshot();
    let two = run_with_two_layers(bytes);
    same_ledger(&two.inner.snapshot(), &expected).map_err(|e| format!("inner layer: {e}"))?;
    // The outer layer's budgets count the calls that spent with no reservation checked (none
    // of these reserves), which a layer without budgets never does: at most one per call.
    let mut outer = two.outer.snapshot();
    let unchecked = std::mem::take(&mut outer.diagnostics.calls_unchecked_by_budgets);
    if unchecked > expected.global.llm_calls {
        return Err(format!(
            "{unchecked} calls unchecked by budgets of {} charged",
            expected.global.llm_calls
        ));
    }
    same_ledger(&outer, &expected).map_err(|e| format!("outer layer: {e}"))?;
    let global = &expected.global;
    let (sunk, sunk_totals) = &two.sunk;
    if *sunk != global.llm_calls + global.rejected_calls + global.cache_hits {
        return Err(format!(
            "the sink got {sunk} calls; the ledger charged {global:?}"
        ));
    }
    // The calls' totals: the global total's, but for the agent runs (counted apart, not calls).
    let calls = Totals {
        agent_runs: 0,
        ..global.clone()
    };
    if *sunk_totals != calls {
        return Err(format!(
            "the sink's calls sum to {sunk_totals:?}, not {calls:?}"
        ));
    }
    match two.tree_problems.is_empty() {
        true => Ok(()),
        false => Err(format!("cost trees: {:?}", two.tree_problems)),
    }
}

/// What a run under two layers gave.
struct TwoLayers {
    /// The ledger of the layer as built by default.
    inner: Ledger,
    /// The ledger of the layer with every observer on.
    outer: Ledger,
    /// How many calls its call sink got, and the sum of their totals.
    sunk: (u64, Totals),
    /// Its cost trees' nodes whose totals are not their children's sum (a call's: at least).
    tree_problems: Vec<String>,
}

/// Runs the same steps under two `CostLayer`s in one subscriber: the inner one as built by
/// default, the outer one with every observer on (a cost tree, so it keeps records of plain
/// spans, which the inner one skips; close callbacks and events; budgets crossing their
/// thresholds; a call sink).
#[allow(dead_code)]
fn run_with_two_layers(bytes: &[u8]) -> TwoLayers {
    use cost_layer::cost_core::Money;
    use cost_layer::cost_core::budget::{Budget, BudgetBook, BudgetConfig, BudgetScope, Window};

    struct Summing(Arc<Mutex<(u64, Totals)>>);
    impl cost_layer::CallSink for Summing {
        fn submit(&self, call: &cost_layer::ClosedCall<'_>) -> bool {
            if let Ok(mut sunk) = self.0.lock() {
                sunk.0 += 1;
                sunk.1.add(call.totals);
            }
            true
        }
    }

    let limit = Money::from_decimal("0.001").unwrap_or(Money::ZERO);
    let budgets = BudgetConfig {
        budgets: vec![
            Budget::deny("session", BudgetScope::Session, Window::Lifetime, limit),
            Budget::deny("model", BudgetScope::Model, Window::Day, limit),
        ],
        ..BudgetConfig::default()
    };
    let sunk = Arc::new(Mutex::new((0, Totals::default())));
    let problems = Arc::new(Mutex::new(Vec::new()));
    let tree_problems = Arc::clone(&problems);
    let (inner, inner_ledger) = CostLayer::builder().build();
    let book = BudgetBook::new(budgets).unwrap_or_else(|e| panic!("{e}"));
    let (outer, outer_ledger) = CostLayer::builder()
        .cost_tree(move |tree| {
            if let Ok(mut problems) = tree_problems.lock() {
                check_tree(&tree.root, &mut problems);
            }
        })
        .close_events(true)
        .on_close(|_| {})
        .budgets(book)
        .on_budget_alert(|_| {})
        .call_sink(Summing(Arc::clone(&sunk)))
        .build();
    drive(
        bytes,
        tracing::Dispatch::new(tracing_subscriber::registry().with(inner).with(outer)),
    );
    let sunk = sunk.lock().map(|sunk| sunk.clone()).unwrap_or_default();
    let tree_problems = problems.lock().map(|p| p.clone()).unwrap_or_default();
    TwoLayers {
        inner: inner_ledger,
        outer: outer_ledger,
        sunk,
        tree_problems,
    }
}

/// The charged part of totals: what a node's children add up to.
fn charged(totals: &Totals) -> Totals {
    Totals {
        agent_runs: 0,
        price_table: None,
        ..totals.clone()
    }
}

/// Every node's charged totals are its children's sum; a call's may add its own.
fn check_tree(node: &cost_layer::CostTreeNode, problems: &mut Vec<String>) {
    let mut sum = Totals::default();
    for child in &node.children {
        sum.add(&child.totals);
        check_tree(child, problems);
    }
    let (sum, own) = (charged(&sum), charged(&node.totals));
    let fits = if node.scope == cost_layer::Scope::Call {
        // A call adds at most one charge of its own to what was charged under it.
        let own_charges = own.llm_calls + own.rejected_calls + own.cache_hits;
        let under = sum.llm_calls + sum.rejected_calls + sum.cache_hits;
        own_charges >= under && own_charges - under <= node.count
    } else {
        sum == own
    };
    if !fits {
        problems.push(format!(
            "{} {} ×{}: {} against its children's {}",
            node.scope, node.name, node.count, own, sum
        ));
    }
}

/// Runs the steps under a layer that keeps a single closed session: returns its ledger.
#[allow(dead_code)]
pub(crate) fn run_keeping_one_closed_session(bytes: &[u8]) -> Ledger {
    let (cost, ledger) = CostLayer::builder()
        .retention(cost_layer::Retention {
            max_closed_sessions: Some(1),
            ttl: None,
            ..cost_layer::Retention::default()
        })
        .build();
    drive(
        bytes,
        tracing::Dispatch::new(tracing_subscriber::registry().with(cost)),
    );
    ledger
}

/// Runs the steps the bytes describe under `dispatch`; returns how many call spans were opened.
pub(crate) fn drive(bytes: &[u8], dispatch: tracing::Dispatch) -> u64 {
    let mut calls = 0;
    tracing::dispatcher::with_default(&dispatch, || {
        let mut input = Bytes(bytes);
        let mut open_spans: Vec<Span> = Vec::new();
        while !input.is_empty() && open_spans.len() < 64 {
            let step = input.next();
            let pick = |n: u8, len: usize| usize::from(n) % len.max(1);
            match step % 4 {
                0 => {
                    let kind = input.next();
                    calls += u64::from(kind % 4 == 2);
                    let parent_choice = input.next();
                    let parent = (parent_choice % 3 != 0)
                        .then(|| open_spans.get(pick(parent_choice, open_spans.len())))
                        .flatten();
                    let span = open(kind, parent, &mut input);
                    open_spans.push(span);
                }
                1 if !open_spans.is_empty() => {
                    let index = pick(input.next(), open_spans.len());
                    record(&open_spans[index], &mut input);
                }
                2 if !open_spans.is_empty() => {
                    let index = pick(input.next(), open_spans.len());
                    drop(open_spans.swap_remove(index));
                }
                3 if open_spans.len() >= 2 => {
                    let a = pick(input.next(), open_spans.len());
                    let b = pick(input.next(), open_spans.len());
                    if a != b {
                        open_spans[a].follows_from(&open_spans[b]);
                    }
                }
                _ => {}
            }
        }
    });
    calls
}

/// What must hold after any run.
pub(crate) fn check(ledger: &Ledger, calls: u64) -> Result<(), String> {
    let global = ledger.global();
    let diagnostics = ledger.diagnostics();
    let charged = global.llm_calls + global.rejected_calls + global.cache_hits;
    if charged > calls {
        return Err(format!("{charged} calls charged, {calls} opened"));
    }
    if global.total_usd() < cost_layer::cost_core::Money::ZERO {
        return Err(format!("negative total {}", global.total_usd()));
    }
    if global.unpriced_calls > global.llm_calls {
        return Err("more unpriced calls than calls".into());
    }
    if diagnostics.rejected_calls != global.rejected_calls {
        return Err(format!(
            "{} rejected calls counted, {} in the totals",
            diagnostics.rejected_calls, global.rejected_calls
        ));
    }
    if diagnostics.unpriced_calls != global.unpriced_calls {
        return Err("unpriced calls counted and totalled differ".into());
    }
    // Every call's cost is a sum of token counts (each at most 10⁹) times prices: a total
    // beyond a million dollars per call means a count that should have been rejected.
    let ceiling = cost_layer::cost_core::Money::from_units(
        cost_layer::cost_core::Money::from_usd(1_000_000).units() * i128::from(calls),
    );
    if global.total_usd() > ceiling {
        return Err(format!("absurd total {}", global.total_usd()));
    }
    Ok(())
}
