//! `llm-cost report` and `llm-cost reprice`: totals, what-if pricing and repricing over a
//! stored ledger.

use std::io::Write;
use std::path::{Path, PathBuf};

use cost_core::budget::{Clock, SystemClock};
use cost_core::{Money, PriceTable};
use cost_store::TimeRange;
use cost_store::report::{self, Filter, GroupBy, Row, WhatIfRow};

/// How a report is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// Aligned columns for a terminal.
    Table,
    /// Comma-separated values with a header line.
    Csv,
    /// One JSON document (money as exact decimal strings).
    Json,
}

/// What a report was asked for.
#[derive(clap::Args)]
pub(crate) struct ReportArgs {
    /// The store: a SQLite file, a `.jsonl` file, or a postgres:// URL.
    #[arg(long, value_name = "PATH|URL")]
    pub(crate) db: String,
    /// First day (or UTC time) included: YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ.
    #[arg(long)]
    pub(crate) since: Option<String>,
    /// First day (or UTC time) excluded.
    #[arg(long)]
    pub(crate) until: Option<String>,
    /// What to group by: day, month, feature, user, org, model, provider, operation, tier (the
    /// service tier), session, agent or status (how each call was charged: priced, unpriced,
    /// provider_reported, …).
    #[arg(long, default_value = "day")]
    pub(crate) by: String,
    /// Only the calls whose GROUPING is VALUE (`feature=support`, `org=acme`, `tier=batch`;
    /// `agent=(none)` for calls outside any agent); repeat it to require each. Applies to the
    /// totals, the chart and `--what-if`.
    #[arg(long = "where", value_name = "GROUPING=VALUE")]
    pub(crate) filter: Vec<String>,
    /// Only the N most expensive groups (days and months are listed in order, from the first).
    #[arg(long, value_name = "N")]
    pub(crate) top: Option<usize>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub(crate) format: Format,
    /// Also draw the spend per day, stacked by `--stack`, as an SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub(crate) chart: Option<PathBuf>,
    /// What the chart's bars are stacked by: model or feature (or any `--by` value).
    #[arg(long, default_value = "model")]
    pub(crate) stack: String,
    /// Instead of totals: what the same usage would have cost on MODEL, per feature.
    #[arg(long, value_name = "MODEL")]
    pub(crate) what_if: Option<String>,
    /// Price file for `--what-if` (default: the embedded table).
    #[arg(long, value_name = "FILE")]
    pub(crate) prices: Option<PathBuf>,
}

/// What a reprice was asked for.
#[derive(clap::Args)]
pub(crate) struct RepriceArgs {
    /// The store: a SQLite file, a `.jsonl` file, or a postgres:// URL.
    #[arg(long, value_name = "PATH|URL")]
    pub(crate) db: String,
    /// The corrected price file (native TOML or LiteLLM JSON), merged over the embedded
    /// table: it need only hold the corrected entries.
    #[arg(long, value_name = "FILE")]
    pub(crate) prices: PathBuf,
    /// Use the price file alone, not merged over the embedded table.
    #[arg(long)]
    pub(crate) prices_only: bool,
    /// Only say what would change.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Charge a call the table has no price for the cost its provider reported, where its
    /// record kept one (as a layer built with `charge_reported_cost_when_unpriced` does).
    #[arg(long)]
    pub(crate) charge_reported_cost_when_unpriced: bool,
}

/// An error for the user, and the exit code it ends with (2: bad arguments or input).
pub(crate) struct Failure(pub(crate) String);

fn time(label: &str, text: &Option<String>) -> Result<Option<i64>, Failure> {
    text.as_deref()
        .map(|t| {
            report::parse_time(t).ok_or_else(|| {
                Failure(format!(
                    "--{label} `{t}`: expected YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC)"
                ))
            })
        })
        .transpose()
}

fn grouping(name: &str) -> Result<GroupBy, Failure> {
    GroupBy::parse(name).ok_or_else(|| {
        let names: Vec<&str> = GroupBy::ALL.iter().map(|(n, _)| *n).collect();
        Failure(format!("`{name}`: group by one of {}", names.join(", ")))
    })
}

/// The table a command prices with: the file at `prices` (its left-out entries warned about on
/// stderr), else the embedded one.
pub(crate) fn load_table(prices: &Option<PathBuf>) -> Result<PriceTable, Failure> {
    let Some(path) = prices else {
        return Ok(PriceTable::default());
    };
    let table =
        PriceTable::from_path(path).map_err(|e| Failure(format!("cannot load price file: {e}")))?;
    for problem in table.report().left_out.values() {
        eprintln!("llm-cost: warning: {problem} (entry left out: its model is unpriced)");
    }
    Ok(table)
}

/// `file` merged over the embedded table (`path` names it in the error).
pub(crate) fn over_embedded(file: &PriceTable, path: &Path) -> Result<PriceTable, Failure> {
    PriceTable::default().merged(file).map_err(|e| {
        Failure(format!(
            "cannot merge {} over the embedded table: {e}",
            path.display()
        ))
    })
}

/// Warns on stderr, once per date, about the stale prices `table` prices `models` at.
fn warn_stale_prices<'a>(table: &PriceTable, models: impl IntoIterator<Item = &'a str>) {
    let now = SystemClock.unix_seconds();
    let mut warned = std::collections::HashSet::new();
    for model in models {
        if let Ok(resolution) = table.resolve(model)
            && let Some(stale) = table
                .entry(resolution.id)
                .stale_price(now, cost_core::DEFAULT_PRICE_AGE_LIMIT_DAYS)
        {
            crate::warn_stale(&mut warned, &stale);
        }
    }
}

pub(crate) fn run_report(args: &ReportArgs, out: &mut dyn Write) -> Result<(), Failure> {
    let range = TimeRange {
        since_ms: time("since", &args.since)?,
        until_ms: time("until", &args.until)?,
    };
    if let (Some(since), Some(until)) = (range.since_ms, range.until_ms)
        && since >= until
    {
        // An empty range would report $0, which looks like an answer.
        return Err(Failure(format!(
            "--since `{}` is not before --until `{}` (the first time included, the first excluded): no call can be in that range",
            args.since.as_deref().unwrap_or_default(),
            args.until.as_deref().unwrap_or_default()
        )));
    }
    let by = grouping(&args.by)?;
    let stack = grouping(&args.stack)?;
    let filter = Filter::parse(args.filter.iter().map(String::as_str))
        .map_err(|e| Failure(format!("--where {e}")))?;
    let table = match &args.what_if {
        Some(model) => {
            let table = load_table(&args.prices)?;
            warn_stale_prices(&table, [model.as_str()]);
            Some((table, model))
        }
        None => None,
    };
    // One pass over the store, a record at a time, into what the report needs.
    let mut chart = args.chart.as_ref().map(|_| report::DailySpend::new(stack));
    let mut what_if = match &table {
        Some((table, model)) => Some(
            report::WhatIf::new(table, model)
                .map_err(|e| Failure(format!("--what-if {model}: {e}")))?,
        ),
        None => None,
    };
    let mut totals = what_if.is_none().then(|| report::GroupTotals::new(by));
    let mut store = cost_store::open_existing(&args.db).map_err(|e| Failure(e.to_string()))?;
    let (mut in_range, mut kept) = (0_u64, 0_u64);
    store
        .scan(&range, &mut |record| {
            in_range += 1;
            if !filter.keeps(&record) {
                return;
            }
            kept += 1;
            if let Some(chart) = chart.as_mut() {
                chart.add(&record);
            }
            if let Some(what_if) = what_if.as_mut() {
                what_if.add(&record);
            }
            if let Some(totals) = totals.as_mut() {
                totals.add(&record);
            }
        })
        .map_err(|e| Failure(e.to_string()))?;
    if kept == 0 && in_range > 0 {
        warn_nothing_kept(&args.filter, in_range);
    }
    if let (Some(path), Some(chart)) = (&args.chart, chart) {
        let title = format!("LLM spend per day by {} (USD)", args.stack);
        let svg = crate::chart::stacked_days(&title, &chart.finish());
        std::fs::write(path, svg)
            .map_err(|e| Failure(format!("cannot write {}: {e}", path.display())))?;
    }
    let written = match (what_if, totals, &args.what_if) {
        (Some(what_if), _, Some(model)) => {
            let (rows, total) = what_if.finish();
            print_what_if(model, &rows, &total, args.format, out)
        }
        (_, Some(totals), _) => {
            let (rows, total) = totals.finish(args.top);
            print_totals(&args.by, &rows, &total, args.format, out)
        }
        _ => Ok(()),
    };
    written.map_err(|e| Failure(format!("cannot write the report: {e}")))
}

/// Says on stderr that `--where` kept none of the `in_range` calls (the report of nothing
/// reads as $0): a user given as a raw id where the ledger keeps keyed hashes, most likely.
fn warn_nothing_kept(conditions: &[String], in_range: u64) {
    let raw_user = conditions.iter().any(|condition| {
        condition
            .split_once('=')
            .is_some_and(|(name, value)| name.trim() == "user" && !value.starts_with("u:"))
    });
    let hint = if raw_user {
        ": users are kept as keyed hashes (`u:…`) unless the program kept raw ids; `--by user` lists them as kept"
    } else {
        ": `--by` the same grouping lists the values the calls have"
    };
    eprintln!(
        "llm-cost: warning: no call matches --where {} ({in_range} calls in the range){hint}",
        conditions.join(" --where ")
    );
}

fn print_totals(
    by: &str,
    rows: &[Row],
    total: &Row,
    format: Format,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    match format {
        Format::Json => {
            let document = serde_json::json!({ "by": by, "rows": rows, "total": total });
            writeln!(out, "{document:#}")
        }
        Format::Csv => {
            writeln!(
                out,
                "{by},calls,unpriced_calls,rejected_calls,cache_hits,input_tokens,output_tokens,cost_usd,reported_calls,reported_cost_usd,cost_of_reported_usd,provider_reported_calls,unpriced_reported_calls,unpriced_reported_cost_usd"
            )?;
            for row in rows.iter().chain([total]) {
                writeln!(
                    out,
                    "{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                    csv(&row.key),
                    row.calls,
                    row.unpriced_calls,
                    row.rejected_calls,
                    row.cache_hits,
                    row.input_tokens,
                    row.output_tokens,
                    row.cost,
                    row.reported_calls,
                    row.reported_cost,
                    row.cost_of_reported,
                    row.provider_reported_calls,
                    row.unpriced_reported_calls,
                    row.unpriced_reported_cost
                )?;
            }
            Ok(())
        }
        Format::Table => {
            let header = [
                by,
                "calls",
                "unpriced",
                "input tokens",
                "output tokens",
                "cost (USD)",
            ];
            let line = |row: &Row| {
                [
                    row.key.clone(),
                    row.calls.to_string(),
                    row.unpriced_calls.to_string(),
                    row.input_tokens.to_string(),
                    row.output_tokens.to_string(),
                    // An unpriced or rejected call makes the cost a lower bound.
                    format!(
                        "{}{}",
                        if row.unpriced_calls > 0 || row.rejected_calls > 0 {
                            "≥ "
                        } else {
                            ""
                        },
                        row.cost
                    ),
                ]
            };
            let mut lines: Vec<[String; 6]> = rows.iter().map(line).collect();
            lines.push(line(total));
            table(out, &header, &lines)?;
            // The singular or the plural, by how many calls a line speaks of.
            let by_count = |n: u64, one: &'static str, many: &'static str| {
                if n == 1 { one } else { many }
            };
            if total.unpriced_calls > 0 {
                let n = total.unpriced_calls;
                let (calls, their) = (by_count(n, "call", "calls"), by_count(n, "its", "their"));
                writeln!(
                    out,
                    "≥: {n} {calls} had no price; {their} tokens are counted, {their} cost is unknown"
                )?;
            }
            if total.unpriced_reported_calls > 0 {
                let n = total.unpriced_reported_calls;
                let their = by_count(n, "its provider", "their providers");
                writeln!(
                    out,
                    "   {n} of them kept the cost {their} reported, ${} in all, not in the cost above \
                     (`llm-cost reprice --charge-reported-cost-when-unpriced` charges it)",
                    total.unpriced_reported_cost
                )?;
            }
            if total.rejected_calls > 0 {
                let n = total.rejected_calls;
                let (calls, were, their) = (
                    by_count(n, "call", "calls"),
                    by_count(n, "was", "were"),
                    by_count(n, "its", "their"),
                );
                writeln!(
                    out,
                    "≥: {n} {calls} {were} rejected for invalid usage; {their} cost is unknown and not in the cost above"
                )?;
            }
            if total.provider_reported_calls > 0 {
                let n = total.provider_reported_calls;
                let (calls, were, their) = (
                    by_count(n, "call", "calls"),
                    by_count(n, "was", "were"),
                    by_count(n, "its provider", "their providers"),
                );
                writeln!(
                    out,
                    "{n} {calls} had no price and {were} charged the cost {their} reported (in the cost above)"
                )?;
            }
            if total.reported_calls > 0 {
                let difference = total.reported_cost - total.cost_of_reported;
                writeln!(
                    out,
                    "reported by their providers: {} priced calls cost ${} by the providers' figures and ${} by the price table (the providers' {}${})",
                    total.reported_calls,
                    total.reported_cost,
                    total.cost_of_reported,
                    if difference.is_negative() { "-" } else { "+" },
                    Money::from_units(difference.units().saturating_abs())
                )?;
            }
            Ok(())
        }
    }
}

fn print_what_if(
    model: &str,
    rows: &[WhatIfRow],
    total: &WhatIfRow,
    format: Format,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let difference = |row: &WhatIfRow| -> String {
        let d = row.difference();
        if d > Money::ZERO {
            format!("+{d}")
        } else {
            d.to_string()
        }
    };
    match format {
        Format::Json => {
            let document = serde_json::json!({
                "what_if": model,
                "by": "feature",
                "rows": rows,
                "total": total,
            });
            writeln!(out, "{document:#}")
        }
        Format::Csv => {
            writeln!(
                out,
                "feature,calls,actual_usd,what_if_usd,difference_usd,skipped"
            )?;
            for row in rows.iter().chain([total]) {
                writeln!(
                    out,
                    "{},{},{},{},{},{}",
                    csv(&row.key),
                    row.calls,
                    row.actual,
                    row.what_if,
                    difference(row),
                    row.skipped
                )?;
            }
            Ok(())
        }
        Format::Table => {
            let header = [
                "feature",
                "calls",
                "actual (USD)",
                &format!("on {model} (USD)"),
                "difference",
                "skipped",
            ];
            let line = |row: &WhatIfRow| {
                [
                    row.key.clone(),
                    row.calls.to_string(),
                    row.actual.to_string(),
                    row.what_if.to_string(),
                    difference(row),
                    row.skipped.to_string(),
                ]
            };
            let mut lines: Vec<[String; 6]> = rows.iter().map(line).collect();
            lines.push(line(total));
            table(out, &header, &lines)?;
            if total.skipped > 0 {
                writeln!(
                    out,
                    "skipped: {} calls unpriced as they ran, rejected, answered from the cache, run at a service tier {model} has no price for, or with usage it has no price for (generated images, web or file searches)",
                    total.skipped
                )?;
            }
            Ok(())
        }
    }
}

/// Columns aligned: the first to the left, the others (numbers) to the right; a rule above the
/// last line (the total).
fn table(out: &mut dyn Write, header: &[&str; 6], lines: &[[String; 6]]) -> std::io::Result<()> {
    let mut widths = header.map(|h| h.chars().count());
    for line in lines {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let print = |out: &mut dyn Write, cells: &[String; 6]| -> std::io::Result<()> {
        let mut text = String::new();
        for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
            let pad = " ".repeat(width - cell.chars().count());
            if i == 0 {
                text.push_str(&format!("{cell}{pad}"));
            } else {
                text.push_str(&format!("  {pad}{cell}"));
            }
        }
        writeln!(out, "{}", text.trim_end())
    };
    print(out, &header.map(str::to_owned))?;
    for (i, line) in lines.iter().enumerate() {
        if i + 1 == lines.len() {
            let rule: usize = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
            writeln!(out, "{}", "─".repeat(rule))?;
        }
        print(out, line)?;
    }
    Ok(())
}

/// A CSV field (RFC 4180): quoted, its quotes doubled, when it holds a comma, a quote or a line
/// break.
fn csv(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// Recomputes every stored cost with the price file merged over the embedded table (a
/// correction file need only hold the corrected entries), or with the file alone.
pub(crate) fn run_reprice(args: &RepriceArgs, out: &mut dyn Write) -> Result<(), Failure> {
    let RepriceArgs {
        db,
        prices,
        prices_only: only,
        dry_run,
        charge_reported_cost_when_unpriced,
    } = args;
    let (only, dry_run) = (*only, *dry_run);
    let file = load_table(&Some(prices.clone()))?;
    let table = if only {
        file
    } else {
        over_embedded(&file, prices)?
    };
    let mut store = cost_store::open_existing(db).map_err(|e| Failure(e.to_string()))?;
    // One pass, a record at a time: only the changes are kept, and the models seen, for the
    // warnings about stale prices.
    let mut repricing = report::Repricing::new(&table)
        .charge_reported_cost_when_unpriced(*charge_reported_cost_when_unpriced);
    let mut models = std::collections::BTreeSet::new();
    store
        .scan(&TimeRange::ALL, &mut |record| {
            repricing.add(&record);
            models.insert(std::sync::Arc::clone(record.model_as_called()));
        })
        .map_err(|e| Failure(e.to_string()))?;
    warn_stale_prices(&table, models.iter().map(|model| &**model));
    let (changes, summary) = repricing.finish();
    if !dry_run {
        store
            .reprice(&changes)
            .map_err(|e| Failure(e.to_string()))?;
    }
    writeln!(
        out,
        "{}{summary} with table {}",
        if dry_run { "would be: " } else { "" },
        table.info().version
    )
    .map_err(|e| Failure(format!("cannot write: {e}")))
}

#[cfg(test)]
mod tests {
    use super::{Format, Row, csv, print_totals};
    use cost_core::Money;

    #[test]
    fn a_table_says_how_far_the_providers_figures_are_from_the_tables_either_way() {
        let usd = |text: &str| Money::from_decimal(text).unwrap_or_else(|e| panic!("{e}"));
        let footer = |reported: &str, table: &str| {
            let total = Row {
                key: "total".into(),
                calls: 3,
                cost: usd(table),
                reported_calls: 3,
                reported_cost: usd(reported),
                cost_of_reported: usd(table),
                ..Row::default()
            };
            let mut out = Vec::new();
            print_totals("model", &[], &total, Format::Table, &mut out)
                .unwrap_or_else(|e| panic!("{e}"));
            String::from_utf8_lossy(&out)
                .lines()
                .last()
                .map(str::to_owned)
                .unwrap_or_default()
        };
        assert!(
            footer("0.009", "0.01").ends_with("(the providers' -$0.001)"),
            "{}",
            footer("0.009", "0.01")
        );
        assert!(footer("0.01", "0.01").ends_with("(the providers' +$0)"));
    }

    #[test]
    fn csv_fields_are_quoted_when_they_must_be() {
        assert_eq!(csv("support"), "support");
        assert_eq!(csv("a,b"), "\"a,b\"");
        assert_eq!(csv("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv("carriage\rreturn"), "\"carriage\rreturn\"");
    }
}
