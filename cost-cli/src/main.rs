//! `llm-cost`: price LLM usage offline, and report over stored ledgers.
//!
//! ```text
//! llm-cost quote [--prices FILE] [--from FORMAT [--model MODEL]] < calls.jsonl > costs.jsonl
//! llm-cost report --db PATH|URL [--since DAY] [--until DAY]
//!                 [--by day|month|feature|user|org|model|provider|operation|tier|session|agent]
//!                 [--where GROUPING=VALUE]… [--top N] [--format table|csv|json]
//!                 [--chart FILE.svg [--stack model|feature]]
//!                 [--what-if MODEL [--prices FILE]]
//! llm-cost reprice --db PATH|URL --prices FILE [--prices-only] [--dry-run]
//! llm-cost prices [--prices FILE [--over-embedded]] [MODEL…] > snapshot.toml
//! llm-cost budgets FILE.toml [--db PATH|URL [--key-prefix PREFIX] [--tls-ca FILE.pem]
//!                 [--tls-cert FILE.pem --tls-key FILE.pem] [--at DAY] [--top N]]
//! ```
//!
//! Exit codes: `quote` 0 when every line was priced, 1 when any line had an error; `prices` 1
//! when a model named is not in the table; every command 2 for wrong arguments, a price or
//! budget file that cannot be loaded or a store that cannot be read.

#![deny(missing_docs)]

mod budgets;
mod chart;
mod quote;
mod report;

use std::collections::HashSet;
use std::io::{self, BufRead, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use cost_core::PriceTable;
use cost_core::budget::{Clock, SystemClock};

#[derive(Parser)]
#[command(
    name = "llm-cost",
    version,
    about = "Price LLM usage exactly, offline."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Price JSON lines of usage read on stdin; write one JSON line per input line on stdout.
    ///
    /// In:  {"id": any, "model": "gpt-4o", "input_tokens": 1200, "output_tokens": 300,
    ///       "cache_read_tokens": 0, "cache_write_tokens": 0, "cache_write_1h_tokens": 0,
    ///       "reasoning_tokens": 0, "audio_input_tokens": 0, "audio_output_tokens": 0,
    ///       "cache_read_audio_tokens": 0, "image_output_tokens": 0, "web_search_requests": 0,
    ///       "image_input_tokens": 0, "cache_read_image_tokens": 0, "file_search_calls": 0,
    ///       "image_generation_calls": 0, "code_interpreter_sessions": 0,
    ///       "service_tier": "standard", "data_residency": false,
    ///       "search_context_size": "low", "date": "2026-11-27",
    ///       "reported_cost_usd": "0.0035"}
    ///       (missing counts are 0; another key is an error unless `--allow-unknown-keys`; audio and image input: audio and image prompt tokens not
    ///       read from the cache; cache-read audio and images: those read from it, part of the
    ///       cache reads; service tiers: standard, batch, flex, priority, fast_mode; search
    ///       context size of the web searches: low, medium, high, priced as medium if absent;
    ///       date: the UTC day the call was made, priced at the prices in force then, today if
    ///       absent; reported cost: what the provider said the call cost, set beside the
    ///       table's cost in the answer, optional)
    ///
    /// Out: {"id": …, "model": …, "resolved": …, "cost_usd": "0.006", "breakdown": {…}, …,
    ///      "prices_from": "2027-01-01" when a price change of the entry priced the call,
    ///      "reported_cost_usd" and "agrees_with_reported" when a cost was reported}
    ///      or {"id": …, "error": "…"} for a line that cannot be priced.
    ///
    /// With `--from FORMAT`, each line is instead a provider's response as it was sent (a log
    /// of them): its usage, model, service tier, data residency and search context size are
    /// read as the adapters of `cost_core::adapters` read them, and it is priced at the prices
    /// in force when it was created (OpenAI's `created`, `created_at`; today for the others).
    /// Where the response says what it cost (OpenRouter's and Perplexity's `usage.cost`), the
    /// answer adds "reported_cost_usd" and "agrees_with_reported".
    Quote {
        /// Price file in the native TOML format or LiteLLM's JSON (detected from the content).
        /// Without it, the embedded default table is used.
        #[arg(long, value_name = "FILE")]
        prices: Option<PathBuf>,
        /// Read each line as a provider's response in this format.
        #[arg(long, value_enum, value_name = "FORMAT")]
        from: Option<quote::ResponseFormat>,
        /// With `--from`: the model of responses that do not name theirs (Bedrock, Images,
        /// Realtime). A response that names its model is priced at that one.
        #[arg(long, value_name = "MODEL", requires = "from")]
        model: Option<String>,
        /// Charge a call the table has no price for the cost its provider reported, when the
        /// line gives `reported_cost_usd` (or the answer its cost): answered with `cost_usd`,
        /// `"cost_source": "provider"` and why the table could not price it.
        #[arg(long)]
        charge_reported_cost_when_unpriced: bool,
        /// Ignore keys a line gives that the format does not know (context a log carries, say).
        /// Without it such a line gets an error: a misspelt count (`input_token`) would be
        /// priced as 0.
        #[arg(long, conflicts_with = "from")]
        allow_unknown_keys: bool,
    },
    /// Exact totals over a stored ledger, grouped by day, month, feature, user, org, model, provider,
    /// operation, service tier, session, agent or how each call was charged, over the calls
    /// `--where` keeps.
    Report(report::ReportArgs),
    /// Recompute stored costs with a corrected price file, keeping each record's previous total.
    Reprice(report::RepriceArgs),
    /// Check a budget file as a program loads it and say what each budget limits and where it
    /// is kept; with `--db`, each shared budget's accounts in the current day or month, most
    /// used first, from the store the program's book shares.
    Budgets(budgets::BudgetsArgs),
    /// Write the price table in the native TOML format: a snapshot of LiteLLM's file (or of a
    /// file merged over the embedded table) to keep and review, or the entries that model
    /// names resolve to, to see which prices a call of them gets.
    Prices {
        /// Price file in the native TOML format or LiteLLM's JSON (detected from the content).
        /// Without it, the embedded default table is written.
        #[arg(long, value_name = "FILE")]
        prices: Option<PathBuf>,
        /// Merge the file over the embedded table (its entries replace the embedded ones of the
        /// same name) instead of writing the file alone.
        #[arg(long, requires = "prices")]
        over_embedded: bool,
        /// Write only the entries these names resolve to (by the resolution rules: a dated or
        /// prefixed name finds its entry), with the aliases that point to them.
        #[arg(value_name = "MODEL")]
        models: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Quote {
            prices,
            from,
            model,
            charge_reported_cost_when_unpriced,
            allow_unknown_keys,
        } => run_quote(
            prices,
            from,
            model.as_deref(),
            charge_reported_cost_when_unpriced,
            allow_unknown_keys,
        ),
        Command::Report(args) => finish(report::run_report(&args, &mut io::stdout().lock())),
        Command::Reprice(args) => finish(report::run_reprice(&args, &mut io::stdout().lock())),
        Command::Budgets(args) => finish(budgets::run_budgets(
            &args,
            SystemClock.unix_seconds(),
            &mut io::stdout().lock(),
        )),
        Command::Prices {
            prices,
            over_embedded,
            models,
        } => run_prices(prices, over_embedded, &models),
    }
}

/// [`report::load_table`], its failure said on stderr.
fn load_table(prices: &Option<PathBuf>) -> Option<PriceTable> {
    report::load_table(prices)
        .map_err(|report::Failure(message)| eprintln!("llm-cost: {message}"))
        .ok()
}

fn run_prices(prices: Option<PathBuf>, over_embedded: bool, models: &[String]) -> ExitCode {
    let Some(mut table) = load_table(&prices) else {
        return ExitCode::from(2);
    };
    // What the file held that no entry written prices (a full snapshot lists the skipped
    // entries' names under `[skipped]`, not their prices): said once, so a snapshot is not
    // taken for the whole file.
    let report = table.report();
    if !report.skipped_entries.is_empty() || !report.skipped_keys.is_empty() {
        let mut keys: Vec<(&String, &usize)> = report.skipped_keys.iter().collect();
        keys.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let keys: Vec<String> = keys
            .iter()
            .map(|(key, count)| format!("{key} ({count})"))
            .collect();
        eprintln!(
            "llm-cost: note: {} entries without a per-token input price left out; price keys not read: {}",
            report.skipped_entries.len(),
            if keys.is_empty() {
                "none".to_owned()
            } else {
                keys.join(", ")
            }
        );
    }
    if let Some(path) = prices.as_deref().filter(|_| over_embedded) {
        table = match report::over_embedded(&table, path) {
            Ok(merged) => merged,
            Err(report::Failure(message)) => {
                eprintln!("llm-cost: {message}");
                return ExitCode::from(2);
            }
        };
    }
    let mut all_found = true;
    let written = if models.is_empty() {
        cost_core::format::native::write(&table)
    } else {
        let mut keys: Vec<&str> = Vec::new();
        for name in models {
            match table.resolve(name) {
                Ok(found) => keys.push(&table.entry(found.id).key),
                Err(unpriced) => {
                    eprintln!("llm-cost: {unpriced}");
                    all_found = false;
                }
            }
        }
        cost_core::format::native::write_models(&table, keys)
    };
    match written {
        Ok(text) => {
            // A closed stdout (a pipe to `head`) is no error of the table's.
            let _ = io::stdout().lock().write_all(text.as_bytes());
            ExitCode::from(if all_found { 0 } else { 1 })
        }
        Err(e) => {
            eprintln!("llm-cost: {e}");
            ExitCode::from(2)
        }
    }
}

fn finish(outcome: Result<(), report::Failure>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(report::Failure(message)) => {
            eprintln!("llm-cost: {message}");
            ExitCode::from(2)
        }
    }
}

/// Warns on stderr about a stale price, once per date (`warned` holds the dates warned about).
fn warn_stale(warned: &mut HashSet<String>, stale: &cost_core::StalePrice) {
    if warned.insert(stale.as_of.clone()) {
        eprintln!("llm-cost: warning: {stale} (with --prices FILE)");
    }
}

fn run_quote(
    prices: Option<PathBuf>,
    from: Option<quote::ResponseFormat>,
    model: Option<&str>,
    charge_reported: bool,
    allow_unknown_keys: bool,
) -> ExitCode {
    let Some(table) = load_table(&prices) else {
        return ExitCode::from(2);
    };
    let pricing = quote::Pricing {
        table: &table,
        now: SystemClock.unix_seconds(),
        age_limit: cost_core::DEFAULT_PRICE_AGE_LIMIT_DAYS,
        charge_reported,
        allow_unknown_keys,
    };
    let mut stale_warned = HashSet::new();
    let stdin = io::stdin().lock();
    let mut stdout = BufWriter::new(io::stdout().lock());
    let mut all_priced = true;
    for line in stdin.split(b'\n') {
        let line = match line {
            Ok(line) => line,
            Err(e) => {
                eprintln!("llm-cost: cannot read stdin: {e}");
                return ExitCode::from(1);
            }
        };
        let outcome = match from {
            Some(format) => quote::quote_response_line(&pricing, format, model, &line),
            None => quote::quote_line(&pricing, &line),
        };
        let Some(outcome) = outcome else {
            continue;
        };
        if let Some(stale) = &outcome.stale {
            warn_stale(&mut stale_warned, stale);
        }
        all_priced &= outcome.priced;
        if writeln!(stdout, "{}", outcome.json).is_err() {
            // stdout closed (a pipe to `head`, say): nothing more to do.
            return ExitCode::from(if all_priced { 0 } else { 1 });
        }
    }
    if stdout.flush().is_err() {
        return ExitCode::from(1);
    }
    ExitCode::from(if all_priced { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// clap takes a subcommand's help from its variant's doc comment: each command says what
    /// it does, under its own name.
    #[test]
    fn every_command_describes_itself() {
        let cli = Cli::command();
        cli.clone().debug_assert();
        let about = |name: &str| {
            cli.find_subcommand(name)
                .and_then(|command| command.get_about())
                .map(ToString::to_string)
                .unwrap_or_else(|| panic!("`{name}` has no description"))
        };
        for (name, starts) in [
            ("quote", "Price JSON lines"),
            ("report", "Exact totals"),
            ("reprice", "Recompute stored costs"),
            ("prices", "Write the price table"),
            ("budgets", "Check a budget file"),
        ] {
            assert!(about(name).starts_with(starts), "{name}: {}", about(name));
        }
        assert_eq!(cli.get_subcommands().count(), 5);
        for command in cli.get_subcommands() {
            for arg in command.get_arguments() {
                assert!(
                    arg.get_help().is_some() || arg.get_id() == "help",
                    "{} --{}: no help",
                    command.get_name(),
                    arg.get_id()
                );
            }
        }
    }
}
