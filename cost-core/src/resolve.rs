//! Model-name resolution: how a name reported by a client finds its price entry.
//!
//! Deterministic, in this order; the first rule that finds an entry wins:
//!
//! 1. **Exact** key, or an alias declared in the table.
//! 2. **Case-insensitive** key or alias (`GPT-4o` → `gpt-4o`).
//! 3. **Provider prefix** stripped, one leading `segment/` at a time, only when the prefixed name
//!    is absent (`openai/gpt-4o` → `gpt-4o`; `openrouter/openai/gpt-4o` → `openai/gpt-4o` →
//!    `gpt-4o`). Each shorter name is tried exactly, then case-insensitively.
//! 4. **Dated snapshot** to its family, only when the dated name is absent under every prefix
//!    form: a trailing `-YYYY-MM-DD`, `-YYYYMMDD` or `@YYYYMMDD` is removed
//!    (`gpt-4o-2099-01-01` → `gpt-4o`, `claude-sonnet-4-5@20250929` → `claude-sonnet-4-5`).
//! 5. **Version dots** written as hyphens, only when no rule above found the name: a `.`
//!    between two digits becomes `-` in each prefix form, with and without its date suffix
//!    (`anthropic/claude-sonnet-4.5` → `claude-sonnet-4-5`, `claude-3.5-sonnet-20241022` →
//!    `claude-3-5-sonnet`), as OpenRouter and other gateways spell the names Anthropic writes
//!    with hyphens. A name the table has with its dot (`gpt-4.1`) is found by the rules above.
//!
//! There is no fuzzy or substring matching: a name that no rule finds is [`Unpriced`], which
//! names the model and the nearest known names (by edit distance) so a person can add an alias.
//!
//! An entry the price file gave but the table left out (an invalid price; a model given twice
//! with different prices; no per-token price, an image, audio or per-second model) is found by
//! these rules as any other, and the name is [`Unpriced`] with the reason: the rules stop
//! there. So `gpt-4o-2024-05-13`, whose own entry was left out, is not priced as `gpt-4o` (a
//! lower price), nor `vertex_ai/x`, which the file prices per image, as `x` per token.
//!
//! A name resolves to one entry whatever the endpoint that served the call: a Vertex AI name
//! (`claude-sonnet-4-5@20250929`) finds the list entry, whose price is Vertex's global
//! endpoint's. Its regional endpoints bill Claude Sonnet 4.5 and later 10% more: a call there
//! says so in its [`CallTerms`](crate::CallTerms) (`data_residency`), and is priced at the
//! entry's data-residency factor.

use serde::Serialize;
use thiserror::Error;

use crate::table::{PriceTable, Resolution};

/// The rule that resolved a name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchRule {
    /// The name is an entry's key.
    Exact,
    /// The name is an alias declared in the table.
    Alias,
    /// The name matches a key ignoring case.
    CaseInsensitive,
    /// The name matched after removing provider prefixes.
    ProviderPrefix,
    /// The name matched after removing a date suffix (and possibly provider prefixes).
    DateSuffix,
    /// The name matched after writing the dots of its version number as hyphens (and possibly
    /// removing provider prefixes and a date suffix).
    VersionDots,
}

/// A model the table has no price for. Its cost is unknown, never zero.
#[derive(Clone, Debug, PartialEq, Eq, Error, Serialize)]
#[error("{}", describe(.model, .nearest, .left_out.as_deref()))]
pub struct Unpriced {
    /// The name as asked.
    pub model: String,
    /// Up to three known names near it, nearest first (none when no name is near, or when the
    /// name finds an entry that was left out: see [`resolve`]).
    pub nearest: Vec<String>,
    /// Why the price file's entry the name finds was left out of the table (its position and
    /// reason, as in [`LoadReport::left_out`](crate::LoadReport::left_out), or the keys that
    /// price it other than per token, as in
    /// [`LoadReport::skipped_entries`](crate::LoadReport::skipped_entries)), when that is why
    /// it has no price.
    pub left_out: Option<String>,
}

fn describe(model: &str, nearest: &[String], left_out: Option<&str>) -> String {
    match (left_out, nearest) {
        (Some(why), _) => {
            format!("model `{model}` has no price: its entry was left out of the table ({why})")
        }
        (None, []) => format!("unknown model `{model}`: no price in the table"),
        (None, nearest) => format!(
            "unknown model `{model}`: no price in the table (nearest known: {})",
            nearest.join(", ")
        ),
    }
}

/// Resolves `model` in `table` by the rules of this module. A name that resolves to nothing is
/// [`Unpriced`], with up to three known names near it (differing in at most half the characters
/// of the longer name, or one name begins with the other): none for an unrelated name.
///
/// A name that a rule finds among the entries the price file gave but the table left out
/// (an invalid price, a model given twice with different prices: see
/// [`LoadReport::left_out`](crate::LoadReport::left_out); no per-token price:
/// [`LoadReport::skipped_entries`](crate::LoadReport::skipped_entries)) is [`Unpriced`] with
/// the reason: the rules stop there, so a dated snapshot whose own entry was left out is not
/// priced at its family's price, nor a provider's name at another provider's.
pub fn resolve(table: &PriceTable, model: &str) -> Result<Resolution, Unpriced> {
    match search(table, model) {
        Search::Found(hit) => Ok(hit),
        Search::LeftOut(why) => Err(Unpriced {
            model: model.to_owned(),
            nearest: Vec::new(),
            left_out: Some(why.to_owned()),
        }),
        Search::Nothing => Err(Unpriced {
            model: model.to_owned(),
            nearest: nearest_names(table, &model.to_lowercase(), 3),
            left_out: None,
        }),
    }
}

/// [`resolve`] without the message of a name that resolves to nothing: for callers that look
/// many names up and need no message (merging tables).
pub(crate) fn find(table: &PriceTable, model: &str) -> Option<Resolution> {
    match search(table, model) {
        Search::Found(hit) => Some(hit),
        Search::LeftOut(_) | Search::Nothing => None,
    }
}

/// What the rules found for a name.
enum Search<'t> {
    /// An entry, by the rule that found it.
    Found(Resolution),
    /// An entry the table left out, and why.
    LeftOut(&'t str),
    /// Nothing.
    Nothing,
}

fn search<'t>(table: &'t PriceTable, model: &str) -> Search<'t> {
    let forms: Vec<&str> = prefix_forms(model).collect();
    // Rules 1 and 2 on the name as given (the rule is the lookup's), then rule 3 on each
    // shorter form.
    if let Some(outcome) = lookup(table, model).settled(None) {
        return outcome;
    }
    for form in &forms[1..] {
        if let Some(outcome) = lookup(table, form).settled(Some(MatchRule::ProviderPrefix)) {
            return outcome;
        }
    }
    for form in &forms {
        if let Some(family) = strip_date_suffix(form)
            && let Some(outcome) = lookup(table, family).settled(Some(MatchRule::DateSuffix))
        {
            return outcome;
        }
    }
    for form in &forms {
        for name in [Some(*form), strip_date_suffix(form)].into_iter().flatten() {
            if let Some(hyphenated) = hyphenate_version_dots(name)
                && let Some(outcome) =
                    lookup(table, &hyphenated).settled(Some(MatchRule::VersionDots))
            {
                return outcome;
            }
        }
    }
    Search::Nothing
}

impl<'t> Search<'t> {
    /// The outcome of a rule's lookup, `None` when it found nothing and the next rule is to be
    /// tried: an entry as found by `rule` (by the lookup's own rule without one), an entry
    /// left out as it is.
    fn settled(self, rule: Option<MatchRule>) -> Option<Search<'t>> {
        match self {
            Search::Found(hit) => Some(Search::Found(Resolution {
                rule: rule.unwrap_or(hit.rule),
                ..hit
            })),
            Search::LeftOut(why) => Some(Search::LeftOut(why)),
            Search::Nothing => None,
        }
    }
}

/// `name` with each `.` between two ASCII digits written as `-` (`claude-3.5-sonnet` →
/// `claude-3-5-sonnet`); `None` when it has no such dot.
fn hyphenate_version_dots(name: &str) -> Option<String> {
    let bytes = name.as_bytes();
    let is_version_dot = |i: usize| {
        bytes[i] == b'.'
            && i > 0
            && bytes[i - 1].is_ascii_digit()
            && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)
    };
    if !(0..bytes.len()).any(is_version_dot) {
        return None;
    }
    Some(
        name.char_indices()
            .map(|(i, c)| if is_version_dot(i) { '-' } else { c })
            .collect(),
    )
}

/// `name` as a key or alias, exactly then ignoring case; else as an entry the table left out.
fn lookup<'t>(table: &'t PriceTable, name: &str) -> Search<'t> {
    if let Some(hit) = table.lookup_exact(name) {
        return Search::Found(hit);
    }
    let lowercase = name.to_lowercase();
    if let Some(hit) = table.lookup_folded(&lowercase) {
        return Search::Found(hit);
    }
    match table.lookup_left_out(&lowercase) {
        Some(why) => Search::LeftOut(why),
        None => Search::Nothing,
    }
}

/// `a/b/c`, `b/c`, `c`.
fn prefix_forms(model: &str) -> impl Iterator<Item = &str> {
    std::iter::successors(Some(model), |name| {
        name.split_once('/')
            .map(|(_, rest)| rest)
            .filter(|rest| !rest.is_empty())
    })
}

/// The family name of a dated snapshot, or `None` when `name` has no date suffix.
pub fn strip_date_suffix(name: &str) -> Option<&str> {
    let bytes = name.as_bytes();
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    let valid = |y: &[u8], m: &[u8], d: &[u8]| {
        let num = |s: &[u8]| s.iter().fold(0_u32, |n, b| n * 10 + u32::from(b - b'0'));
        digits(y)
            && digits(m)
            && digits(d)
            && (1900..=2199).contains(&num(y))
            && (1..=12).contains(&num(m))
            && (1..=31).contains(&num(d))
    };
    let n = bytes.len();
    // -YYYY-MM-DD
    if n > 11 {
        let tail = &bytes[n - 11..];
        if tail[0] == b'-'
            && tail[5] == b'-'
            && tail[8] == b'-'
            && valid(&tail[1..5], &tail[6..8], &tail[9..11])
        {
            return Some(&name[..n - 11]);
        }
    }
    // -YYYYMMDD or @YYYYMMDD
    if n > 9 {
        let tail = &bytes[n - 9..];
        if (tail[0] == b'-' || tail[0] == b'@') && valid(&tail[1..5], &tail[5..7], &tail[7..9]) {
            return Some(&name[..n - 9]);
        }
    }
    None
}

/// Up to `count` names of `table` near `lowercase`, nearest first: those that differ in at most
/// half the characters of the longer name, or of which one begins with the other (a variant's
/// name). A name near none has none: listing the least far of unrelated names would mislead.
fn nearest_names(table: &PriceTable, lowercase: &str, count: usize) -> Vec<String> {
    let mut scored: Vec<(usize, &str)> = table
        .names()
        .filter_map(|name| {
            let known = name.to_lowercase();
            let distance = strsim::levenshtein(lowercase, &known);
            let longer = lowercase.chars().count().max(known.chars().count());
            let variant = lowercase.starts_with(&known) || known.starts_with(lowercase);
            (2 * distance <= longer || (variant && !lowercase.is_empty()))
                .then_some((distance, name))
        })
        .collect();
    scored.sort_unstable();
    scored
        .into_iter()
        .take(count)
        .map(|(_, name)| name.to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_suffixes() {
        assert_eq!(strip_date_suffix("gpt-4o-2024-08-06"), Some("gpt-4o"));
        assert_eq!(
            strip_date_suffix("claude-sonnet-4-5-20250929"),
            Some("claude-sonnet-4-5")
        );
        assert_eq!(
            strip_date_suffix("claude-sonnet-4-5@20250929"),
            Some("claude-sonnet-4-5")
        );
        assert_eq!(strip_date_suffix("gpt-4o"), None);
        assert_eq!(strip_date_suffix("model-12345678"), None);
        assert_eq!(strip_date_suffix("gpt-4o-2024-13-06"), None);
        assert_eq!(strip_date_suffix("-20250929"), None);
        // A date alone is no family's snapshot, in either spelling.
        assert_eq!(strip_date_suffix("-2025-09-29"), None);
        assert_eq!(strip_date_suffix("x-2025-09-29"), Some("x"));
        assert_eq!(strip_date_suffix("x-20250929"), Some("x"));
        assert_eq!(strip_date_suffix("mistral-large-2411"), None);
    }

    #[test]
    fn only_dots_between_digits_become_hyphens() {
        let hyphenated = |name: &str| hyphenate_version_dots(name);
        assert_eq!(
            hyphenated("claude-3.5-sonnet").as_deref(),
            Some("claude-3-5-sonnet")
        );
        assert_eq!(
            hyphenated("claude-sonnet-4.5").as_deref(),
            Some("claude-sonnet-4-5")
        );
        assert_eq!(hyphenated("v1.2.3").as_deref(), Some("v1-2-3"));
        assert_eq!(hyphenated("é1.5").as_deref(), Some("é1-5"));
        for unchanged in ["gpt-4o", "a.b", "4.", ".5", "model.v2", "x.5", "5.x", ""] {
            assert_eq!(hyphenated(unchanged), None, "{unchanged}");
        }
    }

    #[test]
    fn prefix_forms_strip_one_segment_at_a_time() {
        let forms: Vec<&str> = prefix_forms("openrouter/openai/gpt-4o").collect();
        assert_eq!(
            forms,
            ["openrouter/openai/gpt-4o", "openai/gpt-4o", "gpt-4o"]
        );
        let forms: Vec<&str> = prefix_forms("trailing/").collect();
        assert_eq!(forms, ["trailing/"]);
    }
}
