//! Totals of a span's subtree or of a ledger key, scopes, and attribution.

use std::fmt;
use std::sync::Arc;

use cost_core::{CostBreakdown, Money, Usage};
use serde::Serialize;

/// The level a span is accounted at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// A session (conversation): `session.id`, `gen_ai.conversation.id` or `cost.scope = "session"`.
    Session,
    /// An agent run: `gen_ai.agent.name`, `cost.agent`, `gen_ai.operation.name = "invoke_agent"`
    /// or `cost.scope = "agent"`.
    Agent,
    /// An LLM call: a span with usage fields, or `cost.scope = "call"`.
    Call,
    /// Any other span (tools, retrieval, …); it is only accounted when the cost tree is on.
    Span,
}

impl Scope {
    /// Lower-case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::Session => "session",
            Scope::Agent => "agent",
            Scope::Call => "call",
            Scope::Span => "span",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The keys spend is grouped by, inherited from the closest ancestor that sets each.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Attribution {
    /// Session (conversation) id.
    pub session: Option<Arc<str>>,
    /// Agent name.
    pub agent: Option<Arc<str>>,
    /// End user, as a keyed hash (`u:` + 32 hex digits) unless raw ids were configured.
    pub user: Option<Arc<str>>,
    /// Organisation.
    pub org: Option<Arc<str>>,
    /// Feature (query type).
    pub feature: Option<Arc<str>>,
}

/// What a span's subtree (or a ledger key) spent. Cost is exact; tokens count every call,
/// priced or not.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Tokens of every call, by kind (unpriced calls included).
    pub usage: Usage,
    /// Cost of the priced calls, by component (with cache savings; the costs providers reported
    /// for calls the table could not price, where charged, in `provider_reported`).
    pub cost: CostBreakdown,
    /// LLM calls charged (priced or unpriced).
    pub llm_calls: u64,
    /// Agent runs closed in the subtree; in the [`Ledger`](crate::Ledger), runs closed under
    /// the key (none under a model's: a run has no one model; the global total has them all).
    pub agent_runs: u64,
    /// Calls whose model has no price: their tokens count, their cost is unknown and not in
    /// `cost`. When non-zero, the cost is a lower bound.
    pub unpriced_calls: u64,
    /// Tokens of the unpriced calls.
    pub unpriced_tokens: u64,
    /// Calls the price table has no price for, charged the cost their provider reported
    /// (with [`CostLayerBuilder::charge_reported_cost_when_unpriced`](crate::CostLayerBuilder::charge_reported_cost_when_unpriced)):
    /// in `cost.provider_reported`, not in `unpriced_calls`.
    pub provider_reported_calls: u64,
    /// Calls whose usage was invalid (negative, non-numeric, inconsistent): not charged.
    pub rejected_calls: u64,
    /// Calls answered from the application's own cache (`llm.cache.hit = true`): not charged.
    pub cache_hits: u64,
    /// What the cache hits would have cost: of those whose model has a price (see
    /// `unpriced_cache_hits`).
    pub cache_hit_savings: Money,
    /// Cache hits whose model has no price: what they saved is unknown and not in
    /// `cache_hit_savings`. When non-zero, the savings are a lower bound.
    pub unpriced_cache_hits: u64,
    /// Version of the price table that priced the latest call.
    pub price_table: Option<Arc<str>>,
}

impl Totals {
    /// Cost of the priced calls, USD.
    pub fn total_usd(&self) -> Money {
        self.cost.total()
    }

    /// Every token, input plus output.
    pub fn total_tokens(&self) -> u64 {
        self.usage.total_tokens()
    }

    /// `true` when every call was priced (by the table, or at the cost its provider reported:
    /// see [`Totals::provider_reported_calls`]) and none was rejected: the cost is then exact,
    /// not a lower bound.
    pub fn is_complete(&self) -> bool {
        self.unpriced_calls == 0 && self.rejected_calls == 0
    }

    /// LLM calls the layer closed in the subtree, whatever became of them: charged (priced or
    /// not), rejected, or answered from the application's cache. Usage on a span with any is
    /// the aggregate of theirs.
    pub(crate) fn calls_closed(&self) -> u64 {
        self.llm_calls + self.rejected_calls + self.cache_hits
    }

    /// Adds `other` into `self`, field by field: exact up to 2⁶⁴ − 1 per count and ±1.7 × 10¹⁴
    /// USD per amount. This hot path does not check those bounds (beyond them a total wraps):
    /// a call has at most 10⁹ tokens of each kind, so reaching them takes some 10¹⁰ calls of a
    /// billion tokens each, and no real spend does.
    #[inline]
    pub fn add(&mut self, other: &Totals) {
        fn add_u64(a: &mut u64, b: u64) {
            *a = a.wrapping_add(b);
        }
        fn add_money(a: &mut Money, b: Money) {
            *a = Money::from_units(a.units().wrapping_add(b.units()));
        }
        let (u, o) = (&mut self.usage, &other.usage);
        add_u64(&mut u.input, o.input);
        add_u64(&mut u.cache_read, o.cache_read);
        add_u64(&mut u.cache_write, o.cache_write);
        add_u64(&mut u.cache_write_1h, o.cache_write_1h);
        add_u64(&mut u.output, o.output);
        add_u64(&mut u.reasoning, o.reasoning);
        add_u64(&mut u.audio_input, o.audio_input);
        add_u64(&mut u.audio_output, o.audio_output);
        add_u64(&mut u.cache_read_audio, o.cache_read_audio);
        add_u64(&mut u.image_output, o.image_output);
        add_u64(&mut u.web_search_requests, o.web_search_requests);
        add_u64(&mut u.image_input, o.image_input);
        add_u64(&mut u.cache_read_image, o.cache_read_image);
        add_u64(&mut u.file_search_calls, o.file_search_calls);
        add_u64(&mut u.image_generation_calls, o.image_generation_calls);
        add_u64(
            &mut u.code_interpreter_sessions,
            o.code_interpreter_sessions,
        );
        let (c, o) = (&mut self.cost, &other.cost);
        add_money(&mut c.uncached_input, o.uncached_input);
        add_money(&mut c.cache_read, o.cache_read);
        add_money(&mut c.cache_write, o.cache_write);
        add_money(&mut c.cache_write_1h, o.cache_write_1h);
        add_money(&mut c.output, o.output);
        add_money(&mut c.reasoning, o.reasoning);
        add_money(&mut c.cache_savings, o.cache_savings);
        add_money(&mut c.audio_input, o.audio_input);
        add_money(&mut c.audio_output, o.audio_output);
        add_money(&mut c.image_output, o.image_output);
        add_money(&mut c.web_search, o.web_search);
        add_money(&mut c.image_input, o.image_input);
        add_money(&mut c.file_search, o.file_search);
        add_money(&mut c.image_generation, o.image_generation);
        add_money(&mut c.code_interpreter, o.code_interpreter);
        add_money(&mut c.provider_reported, o.provider_reported);
        add_u64(&mut self.llm_calls, other.llm_calls);
        add_u64(&mut self.agent_runs, other.agent_runs);
        add_u64(&mut self.unpriced_calls, other.unpriced_calls);
        add_u64(&mut self.unpriced_tokens, other.unpriced_tokens);
        add_u64(
            &mut self.provider_reported_calls,
            other.provider_reported_calls,
        );
        add_u64(&mut self.rejected_calls, other.rejected_calls);
        add_u64(&mut self.cache_hits, other.cache_hits);
        add_money(&mut self.cache_hit_savings, other.cache_hit_savings);
        add_u64(&mut self.unpriced_cache_hits, other.unpriced_cache_hits);
        if let Some(version) = &other.price_table {
            let same = self
                .price_table
                .as_ref()
                .is_some_and(|mine| Arc::ptr_eq(mine, version));
            if !same {
                self.price_table = Some(Arc::clone(version));
            }
        }
    }
}

/// A sum over `parts` of which `unknown` have no known amount: exact (`$0.0258`), a lower bound
/// (`≥ $0.0258`), or unknown when no part is known (`$?`, never `$0`).
struct Bounded {
    amount: Money,
    unknown: u64,
    parts: u64,
}

impl fmt::Display for Bounded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.unknown == 0 {
            write!(f, "${}", self.amount)
        } else if self.unknown >= self.parts {
            f.write_str("$?")
        } else {
            write!(f, "≥ ${}", self.amount)
        }
    }
}

impl fmt::Display for Totals {
    /// `$0.0258 · 10500 tokens · 3 calls` (+ the hosted tools' uses (web searches, file
    /// searches, generated images, code interpreter sessions), the calls charged at their
    /// provider's reported cost, and unpriced, rejected and cache-hit counts, when present).
    /// With unpriced or rejected calls (whose cost is not known either) the cost is a lower
    /// bound, shown `≥ $0.0258`; when no call had a known cost it is unknown, shown `$?` (never
    /// `$0`). Cache hits' savings read the same way.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Rejected calls are not among the charged ones (`llm_calls`).
        let cost = Bounded {
            amount: self.total_usd(),
            unknown: self.unpriced_calls.saturating_add(self.rejected_calls),
            parts: self.llm_calls.saturating_add(self.rejected_calls),
        };
        write!(f, "{cost}")?;
        write!(
            f,
            " · {} tokens · {} call{}",
            self.total_tokens(),
            self.llm_calls,
            if self.llm_calls == 1 { "" } else { "s" }
        )?;
        // The hosted tools' uses, billed apart from the tokens.
        for (uses, one, many) in [
            (self.usage.web_search_requests, "web search", "web searches"),
            (self.usage.file_search_calls, "file search", "file searches"),
            (
                self.usage.image_generation_calls,
                "generated image",
                "generated images",
            ),
            (
                self.usage.code_interpreter_sessions,
                "code interpreter session",
                "code interpreter sessions",
            ),
        ] {
            match uses {
                0 => {}
                1 => write!(f, " · 1 {one}")?,
                n => write!(f, " · {n} {many}")?,
            }
        }
        if self.provider_reported_calls > 0 {
            match self.provider_reported_calls {
                1 => write!(f, " · 1 at its provider's reported cost")?,
                n => write!(f, " · {n} at their providers' reported costs")?,
            }
        }
        if self.unpriced_calls > 0 {
            write!(
                f,
                " · {} unpriced ({} tokens, cost unknown)",
                self.unpriced_calls, self.unpriced_tokens
            )?;
        }
        if self.rejected_calls > 0 {
            write!(f, " · {} rejected", self.rejected_calls)?;
        }
        if self.cache_hits > 0 {
            let saved = Bounded {
                amount: self.cache_hit_savings,
                unknown: self.unpriced_cache_hits,
                parts: self.cache_hits,
            };
            write!(
                f,
                " · {} cache hit{} (saved {saved})",
                self.cache_hits,
                if self.cache_hits == 1 { "" } else { "s" },
            )?;
        }
        Ok(())
    }
}
