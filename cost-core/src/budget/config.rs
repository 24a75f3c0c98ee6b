//! Budgets as configured: in code or from TOML, validated when loaded.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;

use crate::money::Money;

/// What a budget limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BudgetScope {
    /// One LLM call.
    Call,
    /// One agent run.
    Agent,
    /// One session.
    Session,
    /// A user (each user, or the one named by the budget's key).
    User,
    /// An organisation.
    Org,
    /// A feature.
    Feature,
    /// A model.
    Model,
    /// Every call.
    Global,
}

impl BudgetScope {
    /// Lower-case name, as in configuration.
    pub const fn as_str(self) -> &'static str {
        match self {
            BudgetScope::Call => "call",
            BudgetScope::Agent => "agent",
            BudgetScope::Session => "session",
            BudgetScope::User => "user",
            BudgetScope::Org => "org",
            BudgetScope::Feature => "feature",
            BudgetScope::Model => "model",
            BudgetScope::Global => "global",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "call" => BudgetScope::Call,
            "agent" => BudgetScope::Agent,
            "session" => BudgetScope::Session,
            "user" => BudgetScope::User,
            "org" => BudgetScope::Org,
            "feature" => BudgetScope::Feature,
            "model" => BudgetScope::Model,
            "global" => BudgetScope::Global,
            _ => return None,
        })
    }

    /// Scopes whose natural window is the span's lifetime.
    pub const fn is_span(self) -> bool {
        matches!(
            self,
            BudgetScope::Call | BudgetScope::Agent | BudgetScope::Session
        )
    }
}

/// Over what time a budget's spend adds up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Window {
    /// The lifetime of the call, agent run or session span.
    Lifetime,
    /// A UTC calendar day.
    Day,
    /// A UTC calendar month.
    Month,
    /// The last `Duration` (kept in 60 buckets).
    Rolling(Duration),
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Window::Lifetime => f.write_str("lifetime"),
            Window::Day => f.write_str("day"),
            Window::Month => f.write_str("month"),
            Window::Rolling(d) => write!(f, "rolling {}s", d.as_secs()),
        }
    }
}

/// What happens when a budget would be exceeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Policy {
    /// Alerts only; calls go ahead.
    Alert,
    /// Calls that would exceed the limit are refused before they run.
    Deny,
}

/// A fraction of a limit, in parts per million: `800_000` is 80 %.
pub type Threshold = u32;

/// The default alert thresholds: 50 %, 80 %, 100 %.
pub const DEFAULT_THRESHOLDS: [Threshold; 3] = [500_000, 800_000, 1_000_000];

/// One budget.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Budget {
    /// A name for alerts and errors.
    pub name: String,
    /// What it limits.
    pub scope: BudgetScope,
    /// One key of the scope (`"acme"` for an org budget), or `None` for each key separately.
    pub key: Option<String>,
    /// The window.
    pub window: Window,
    /// The limit: spend + reservations above it is over; equal is within.
    pub limit: Money,
    /// Fractions of the limit that alert when crossed, once per key and window (over a rolling
    /// window, once per crossing: one the window's spend falls back below alerts again).
    pub thresholds: Vec<Threshold>,
    /// Alert only, or deny.
    pub policy: Policy,
}

impl Budget {
    /// A deny budget with the default thresholds.
    pub fn deny(name: &str, scope: BudgetScope, window: Window, limit: Money) -> Self {
        Budget {
            name: name.to_owned(),
            scope,
            key: None,
            window,
            limit,
            thresholds: DEFAULT_THRESHOLDS.to_vec(),
            policy: Policy::Deny,
        }
    }

    /// An alert-only budget with the given thresholds.
    pub fn alert(
        name: &str,
        scope: BudgetScope,
        window: Window,
        limit: Money,
        thresholds: &[Threshold],
    ) -> Self {
        Budget {
            policy: Policy::Alert,
            thresholds: thresholds.to_vec(),
            ..Budget::deny(name, scope, window, limit)
        }
    }

    /// For one key of the scope only.
    pub fn for_key(mut self, key: &str) -> Self {
        self.key = Some(key.to_owned());
        self
    }

    /// Whether a book with shared accounts ([`BudgetBook::with_shared`](super::BudgetBook::with_shared))
    /// keeps this budget there: deny budgets over a UTC day or month. The others stay in the
    /// process.
    pub fn uses_shared_accounts(&self) -> bool {
        self.policy == Policy::Deny && matches!(self.window, Window::Day | Window::Month)
    }
}

/// The spike alert: today's spend rate against the average of previous days.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpikeAlert {
    /// Alert when today's projected spend exceeds this multiple of the average (ppm; 2 000 000
    /// is 2×).
    pub factor: u32,
    /// Days of history needed before alerting.
    pub min_history_days: u32,
}

impl Default for SpikeAlert {
    fn default() -> Self {
        SpikeAlert {
            factor: 2_000_000,
            min_history_days: 3,
        }
    }
}

/// What deny budgets do with a call whose worst case cannot be priced: its model, at the
/// service tier and terms the call asks for, has no price in the table (a model the table does
/// not know, a data-residency call on a model without a factor, …).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UnpricedCalls {
    /// Admitted and reserved at zero; its cost, unknown, is counted as unpriced and charges no
    /// budget. A program keeps working when a model is missing from the table.
    #[default]
    Admit,
    /// Refused by the first deny budget that applies to the call
    /// ([`BudgetExceeded::unpriced`](super::BudgetExceeded::unpriced) names the model): a
    /// limit that must hold cannot admit a call it cannot bound.
    Deny,
}

/// What the budgets do with the reservation of a call cancelled in flight (its future dropped
/// before it returned: a timeout, an abandoned stream), which reported no usage. The provider
/// may have billed what it processed before the cancellation, which nothing reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CancelledCalls {
    /// The reservation is kept as spent: the budgets count the call at its worst case, an
    /// upper bound of what it cost, so a loop of calls that time out still meets its limit.
    #[default]
    Hold,
    /// The reservation is released, as for a call that failed: the budgets count nothing.
    Release,
}

/// Every budget and alert of a program.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BudgetConfig {
    /// The budgets.
    pub budgets: Vec<Budget>,
    /// The spike alert, if on.
    pub spike: Option<SpikeAlert>,
    /// Alert when one call costs more than this.
    pub per_call_alert: Option<Money>,
    /// What deny budgets do with a call whose cost cannot be bounded (TOML: `unpriced_calls =
    /// "admit"` or `"deny"`).
    pub unpriced_calls: UnpricedCalls,
    /// What becomes of the reservation of a call cancelled in flight (TOML: `cancelled_calls =
    /// "hold"` or `"release"`).
    pub cancelled_calls: CancelledCalls,
}

/// Configuration that cannot be used, naming the entry at fault.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{}", describe_config_error(entry, message))]
pub struct BudgetConfigError {
    /// The entry (budget name or TOML key); empty for a file that does not read as a budget
    /// file at all (not TOML, a key no budget has), whose message gives the line.
    pub entry: String,
    /// What is wrong.
    pub message: String,
}

fn describe_config_error(entry: &str, message: &str) -> String {
    match entry {
        "" => format!("budget file: {message}"),
        entry => format!("budget `{entry}`: {message}"),
    }
}

fn error(entry: &str, message: impl Into<String>) -> BudgetConfigError {
    BudgetConfigError {
        entry: entry.to_owned(),
        message: message.into(),
    }
}

impl BudgetConfig {
    /// Checks every rule; the first problem is returned, naming its entry.
    ///
    /// Rules: limits are non-negative; thresholds are in (0, 1]; lifetime windows only for
    /// call, agent and session budgets, which take no other window; rolling windows are at
    /// least 60 s; no two budgets share scope, key and window.
    pub fn validate(&self) -> Result<(), BudgetConfigError> {
        let mut seen = BTreeMap::new();
        for budget in &self.budgets {
            let entry = budget.name.as_str();
            if budget.limit.is_negative() {
                return Err(error(entry, "the limit is negative"));
            }
            if let Some(t) = budget
                .thresholds
                .iter()
                .find(|t| **t == 0 || **t > 1_000_000)
            {
                return Err(error(
                    entry,
                    format!("threshold {} is outside (0, 1]", f64::from(*t) / 1e6),
                ));
            }
            match (budget.scope.is_span(), budget.window) {
                (true, Window::Lifetime)
                | (false, Window::Day | Window::Month | Window::Rolling(_)) => {}
                (true, window) => {
                    return Err(error(
                        entry,
                        format!(
                            "a {} budget covers the span's lifetime, not a {window} window",
                            budget.scope.as_str()
                        ),
                    ));
                }
                (false, _) => {
                    return Err(error(
                        entry,
                        format!(
                            "a {} budget needs a day, month or rolling window",
                            budget.scope.as_str()
                        ),
                    ));
                }
            }
            if let Window::Rolling(d) = budget.window
                && d < Duration::from_secs(60)
            {
                return Err(error(entry, "a rolling window must be at least 60 s"));
            }
            let identity = (
                budget.scope,
                budget.key.clone(),
                format!("{}", budget.window),
            );
            if let Some(other) = seen.insert(identity, entry) {
                return Err(error(
                    entry,
                    format!("duplicates budget `{other}` (same scope, key and window)"),
                ));
            }
        }
        if let Some(spike) = &self.spike
            && spike.factor <= 1_000_000
        {
            return Err(error("spike", "the factor must be above 1"));
        }
        Ok(())
    }

    /// Reads a TOML budget file (see [`crate::budget`] for the format) and validates it.
    pub fn from_toml(text: &str) -> Result<BudgetConfig, BudgetConfigError> {
        let file: FileSpec = toml::from_str(text).map_err(|e| {
            error(
                "",
                format!("{} {}", e.message().trim(), position(text, e.span())),
            )
        })?;
        let mut config = BudgetConfig::default();
        for (key, value) in &file.shorthands {
            config.budgets.push(shorthand(key, value)?);
        }
        for spec in &file.budget {
            config.budgets.push(spec.to_budget()?);
        }
        if let Some(spike) = &file.spike {
            config.spike = Some(SpikeAlert {
                factor: ratio("spike", "factor", &spike.factor)?,
                min_history_days: spike.min_history_days.unwrap_or(3),
            });
        }
        if let Some(max) = &file.per_call_alert {
            config.per_call_alert = Some(amount("per_call_alert", max)?);
        }
        if let Some(policy) = &file.unpriced_calls {
            config.unpriced_calls = policy_named(
                "unpriced_calls",
                policy,
                &[
                    ("admit", UnpricedCalls::Admit),
                    ("deny", UnpricedCalls::Deny),
                ],
            )?;
        }
        if let Some(policy) = &file.cancelled_calls {
            config.cancelled_calls = policy_named(
                "cancelled_calls",
                policy,
                &[
                    ("hold", CancelledCalls::Hold),
                    ("release", CancelledCalls::Release),
                ],
            )?;
        }
        config.validate()?;
        Ok(config)
    }
}

fn position(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    match span {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            format!("(line {line})")
        }
        None => String::new(),
    }
}

/// A TOML amount: a number or a decimal string. Floats are read from their shortest decimal
/// text (`1.00` → `1`), which is the decimal the file means.
#[derive(Deserialize, Clone, Debug)]
#[serde(untagged)]
enum AmountSpec {
    Text(String),
    Integer(i64),
    Float(f64),
}

fn amount(entry: &str, spec: &AmountSpec) -> Result<Money, BudgetConfigError> {
    let text = match spec {
        AmountSpec::Text(t) => t.clone(),
        AmountSpec::Integer(i) => i.to_string(),
        AmountSpec::Float(f) if f.is_finite() => format!("{f}"),
        AmountSpec::Float(f) => return Err(error(entry, format!("{f} is not a finite amount"))),
    };
    let money = Money::from_decimal(&text).map_err(|e| error(entry, e.to_string()))?;
    if money.is_negative() {
        return Err(error(entry, "the limit is negative"));
    }
    Ok(money)
}

fn ratio(entry: &str, what: &str, spec: &AmountSpec) -> Result<u32, BudgetConfigError> {
    let money = amount(entry, spec).map_err(|e| error(entry, format!("{what}: {}", e.message)))?;
    // Money has 24 decimals; ppm keeps 6.
    let ppm = money.units() / 10_i128.pow(18);
    u32::try_from(ppm).map_err(|_| error(entry, format!("{what} is too large")))
}

fn shorthand(key: &str, value: &AmountSpec) -> Result<Budget, BudgetConfigError> {
    let name = key.strip_prefix("per_").unwrap_or(key);
    let (scope, window) = name
        .rsplit_once('_')
        .ok_or_else(|| error(key, "unknown entry"))?;
    let scope = BudgetScope::parse(scope).ok_or_else(|| {
        error(key, format!("unknown scope `{scope}`; expected call, agent, session, user, org, feature, model or global"))
    })?;
    let window = match window {
        "max" if scope.is_span() => Window::Lifetime,
        "max" => {
            return Err(error(
                key,
                format!(
                    "a {} budget needs a window: use {}_daily or {}_monthly",
                    scope.as_str(),
                    scope.as_str(),
                    scope.as_str()
                ),
            ));
        }
        "daily" => Window::Day,
        "monthly" => Window::Month,
        other => {
            return Err(error(
                key,
                format!("unknown window `{other}`; expected max, daily or monthly"),
            ));
        }
    };
    Ok(Budget::deny(key, scope, window, amount(key, value)?))
}

/// The file: shorthand entries (`per_session_max = 10.00`) beside `[[budget]]` tables.
/// Unknown keys land in `shorthands` and are rejected there by name.
#[derive(Deserialize)]
struct FileSpec {
    #[serde(default)]
    budget: Vec<BudgetSpec>,
    #[serde(default)]
    spike: Option<SpikeSpec>,
    #[serde(default)]
    per_call_alert: Option<AmountSpec>,
    #[serde(default)]
    unpriced_calls: Option<String>,
    #[serde(default)]
    cancelled_calls: Option<String>,
    #[serde(flatten)]
    shorthands: BTreeMap<String, AmountSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SpikeSpec {
    factor: AmountSpec,
    #[serde(default)]
    min_history_days: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BudgetSpec {
    name: String,
    scope: String,
    #[serde(default)]
    key: Option<String>,
    window: String,
    limit: AmountSpec,
    #[serde(default)]
    thresholds: Option<Vec<AmountSpec>>,
    #[serde(default)]
    policy: Option<String>,
}

impl BudgetSpec {
    fn to_budget(&self) -> Result<Budget, BudgetConfigError> {
        let entry = self.name.as_str();
        let scope = BudgetScope::parse(&self.scope)
            .ok_or_else(|| error(entry, format!("unknown scope `{}`", self.scope)))?;
        let window = match self.window.as_str() {
            "lifetime" => Window::Lifetime,
            "day" | "daily" => Window::Day,
            "month" | "monthly" => Window::Month,
            other => match other.strip_prefix("rolling ") {
                Some(d) => Window::Rolling(parse_duration(d).ok_or_else(|| {
                    error(
                        entry,
                        format!("bad duration `{d}`; write e.g. \"rolling 1h\""),
                    )
                })?),
                None => {
                    return Err(error(
                        entry,
                        format!(
                            "unknown window `{other}`; expected lifetime, day, month or \"rolling 1h\""
                        ),
                    ));
                }
            },
        };
        let policy = match self.policy.as_deref() {
            None => Policy::Deny,
            Some(name) => policy_named(
                entry,
                name,
                &[("alert", Policy::Alert), ("deny", Policy::Deny)],
            )?,
        };
        let thresholds = match &self.thresholds {
            None => DEFAULT_THRESHOLDS.to_vec(),
            Some(list) => list
                .iter()
                .map(|t| ratio(entry, "threshold", t))
                .collect::<Result<_, _>>()?,
        };
        Ok(Budget {
            name: self.name.clone(),
            scope,
            key: self.key.clone(),
            window,
            limit: amount(entry, &self.limit)?,
            thresholds,
            policy,
        })
    }
}

/// The policy `name` stands for among `known` (its names and values), or an error naming
/// `entry` and the names it takes.
fn policy_named<T: Copy>(
    entry: &str,
    name: &str,
    known: &[(&str, T)],
) -> Result<T, BudgetConfigError> {
    known
        .iter()
        .find(|(known_name, _)| *known_name == name)
        .map(|(_, policy)| *policy)
        .ok_or_else(|| {
            let names: Vec<&str> = known.iter().map(|(known_name, _)| *known_name).collect();
            error(
                entry,
                format!("unknown policy `{name}`; expected {}", names.join(" or ")),
            )
        })
}

fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = number.parse().ok()?;
    let seconds = match unit {
        "s" => n,
        "m" | "min" => n * 60,
        "h" => n * 3_600,
        "d" => n * 86_400,
        _ => return None,
    };
    Some(Duration::from_secs(seconds))
}
