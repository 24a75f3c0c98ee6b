//! `llm-cost budgets`: checks a budget file as a program would load it, says what each budget
//! limits and where it is kept, and, given the store that holds the shared accounts, how much of
//! each shared budget every key has used in the current day or month.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use cost_core::Money;
use cost_core::budget::{
    BudgetConfig, BudgetScope, CancelledCalls, Policy, UnpricedCalls, Window, civil_from_days,
    utc_day, utc_month,
};

use crate::report::Failure;

/// Arguments of `llm-cost budgets`.
#[derive(Args)]
pub(crate) struct BudgetsArgs {
    /// The budget file (TOML, as `BudgetConfig::from_toml` reads it).
    #[arg(value_name = "FILE.toml")]
    file: PathBuf,
    /// The store of the shared accounts (a SQLite file, a postgres:// or a redis:// URL): list
    /// each shared budget's accounts in the current window, most used first.
    #[arg(long, value_name = "PATH|URL")]
    db: Option<String>,
    /// With `--db`, in Redis: the key prefix the program's accounts use.
    #[arg(
        long,
        value_name = "PREFIX",
        default_value = "llm-cost",
        requires = "db"
    )]
    key_prefix: String,
    /// With `--db` and a `rediss://` (TLS) URL: a PEM file of the certificate authorities the
    /// server's certificate is checked against, instead of the system's (a PostgreSQL URL names
    /// its own: `?sslmode=verify-full&sslrootcert=FILE`).
    #[arg(long, value_name = "FILE.pem", requires = "db")]
    tls_ca: Option<PathBuf>,
    /// With `--db` and a `rediss://` URL whose server asks clients for a certificate (mutual
    /// TLS): the PEM file of the certificate to present, with `--tls-key` (a PostgreSQL URL
    /// names its own: `&sslcert=FILE&sslkey=FILE`).
    #[arg(long, value_name = "FILE.pem", requires_all = ["db", "tls_key"])]
    tls_cert: Option<PathBuf>,
    /// With `--tls-cert`: the PEM file of its private key.
    #[arg(long, value_name = "FILE.pem", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// With `--db`: the day (or UTC time) whose window to show, instead of now.
    #[arg(long, value_name = "DAY", requires = "db")]
    at: Option<String>,
    /// With `--db`: only the N most used accounts of each budget.
    #[arg(long, value_name = "N", requires = "db")]
    top: Option<usize>,
}

/// Runs the command at `now` (Unix seconds), writing to `out`.
pub(crate) fn run_budgets(
    args: &BudgetsArgs,
    now: i64,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let text = std::fs::read_to_string(&args.file)
        .map_err(|e| Failure(format!("{}: {e}", args.file.display())))?;
    let config = BudgetConfig::from_toml(&text)
        .map_err(|e| Failure(format!("{}: {e}", args.file.display())))?;
    let at = match &args.at {
        Some(day) => cost_store::report::parse_time(day)
            .map(|ms| ms.div_euclid(1_000))
            .ok_or_else(|| {
                Failure(format!(
                    "--at `{day}`: expected YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC)"
                ))
            })?,
        None => now,
    };
    write_budgets(&config, out)?;
    match &args.db {
        Some(address) => write_accounts(&config, address, args, at, out),
        None => Ok(()),
    }
}

fn io(e: std::io::Error) -> Failure {
    Failure(format!("writing the output: {e}"))
}

fn write_budgets(config: &BudgetConfig, out: &mut dyn Write) -> Result<(), Failure> {
    writeln!(
        out,
        "{:<24} {:<8} {:<12} {:<14} {:>12}  {:<6} {:<16} kept",
        "budget", "scope", "key", "window", "limit", "policy", "thresholds"
    )
    .map_err(io)?;
    for budget in &config.budgets {
        let thresholds: Vec<String> = budget
            .thresholds
            .iter()
            .map(|t| percent(u64::from(*t), 1_000_000))
            .collect();
        writeln!(
            out,
            "{:<24} {:<8} {:<12} {:<14} {:>12}  {:<6} {:<16} {}",
            budget.name,
            budget.scope.as_str(),
            match (&budget.key, budget.scope) {
                (Some(key), _) => key.as_str(),
                (None, BudgetScope::Global) => "all",
                (None, _) => "each",
            },
            budget.window.to_string(),
            format!("${}", budget.limit),
            match budget.policy {
                Policy::Deny => "deny",
                Policy::Alert => "alert",
            },
            thresholds.join(" "),
            if budget.uses_shared_accounts() {
                "shared"
            } else {
                "process"
            }
        )
        .map_err(io)?;
    }
    let unpriced = match config.unpriced_calls {
        UnpricedCalls::Admit => "admit",
        UnpricedCalls::Deny => "deny",
    };
    let cancelled = match config.cancelled_calls {
        CancelledCalls::Hold => "hold",
        CancelledCalls::Release => "release",
    };
    writeln!(
        out,
        "shared: in the store's accounts when the program's book has them \
         (BudgetBook::with_shared), else in the process like the others"
    )
    .map_err(io)?;
    writeln!(
        out,
        "unpriced calls: {unpriced}; cancelled calls: {cancelled}{}{}",
        config
            .per_call_alert
            .map(|limit| format!("; alert on a call above ${limit}"))
            .unwrap_or_default(),
        config
            .spike
            .as_ref()
            .map(|_| "; spike alert on")
            .unwrap_or_default()
    )
    .map_err(io)
}

/// `part / whole` as a percentage with up to one decimal, exact (no float).
fn percent(part: u64, whole: u64) -> String {
    let tenths = (u128::from(part) * 1_000 + u128::from(whole) / 2) / u128::from(whole.max(1));
    match tenths % 10 {
        0 => format!("{}%", tenths / 10),
        d => format!("{}.{d}%", tenths / 10),
    }
}

/// `used / limit` as a percentage with one decimal, exact; `—` for a zero limit.
fn used(used: Money, limit: Money) -> String {
    // Money in units of 10⁻²⁴ USD: scaled to ‰ in integers.
    let (used, limit) = (used.units(), limit.units());
    if limit <= 0 {
        return "—".to_owned();
    }
    let tenths = used.saturating_mul(1_000) / limit;
    format!("{}.{}%", tenths / 10, tenths.rem_euclid(10))
}

fn write_accounts(
    config: &BudgetConfig,
    address: &str,
    args: &BudgetsArgs,
    at: i64,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let options = cost_store::BudgetOptions {
        key_prefix: args.key_prefix.clone(),
        tls_root_certificates: args.tls_ca.clone(),
        tls_client_identity: args
            .tls_cert
            .clone()
            .zip(args.tls_key.clone())
            .map(|(certificate, key)| cost_store::TlsClientIdentity { certificate, key }),
        ..cost_store::BudgetOptions::default()
    };
    for budget in config.budgets.iter().filter(|b| b.uses_shared_accounts()) {
        let (window, label) = match budget.window {
            Window::Month => {
                let month = utc_month(at);
                let (year, month_of_year, _) = civil_from_days(utc_day(at));
                (month, format!("{year}-{month_of_year:02}"))
            }
            _ => {
                let day = utc_day(at);
                let (year, month, day_of_month) = civil_from_days(day);
                (day, format!("{year}-{month:02}-{day_of_month:02}"))
            }
        };
        let mut accounts = cost_store::budget_accounts(address, &options, &budget.name, window)
            .map_err(|e| Failure(e.to_string()))?;
        if let Some(key) = &budget.key {
            accounts.retain(|account| &account.key == key);
        }
        accounts.sort_by(|a, b| {
            (b.spent + b.reserved)
                .cmp(&(a.spent + a.reserved))
                .then_with(|| a.key.cmp(&b.key))
        });
        let shown = args.top.unwrap_or(accounts.len()).min(accounts.len());
        writeln!(
            out,
            "\n{} ({label}, limit ${}): {} account{}{}",
            budget.name,
            budget.limit,
            accounts.len(),
            if accounts.len() == 1 { "" } else { "s" },
            if shown < accounts.len() {
                format!(", the {shown} most used")
            } else {
                String::new()
            }
        )
        .map_err(io)?;
        if accounts.is_empty() {
            continue;
        }
        writeln!(
            out,
            "  {:<40} {:>14} {:>14} {:>8}",
            "key", "spent", "reserved", "used"
        )
        .map_err(io)?;
        for account in &accounts[..shown] {
            writeln!(
                out,
                "  {:<40} {:>14} {:>14} {:>8}",
                account.key,
                format!("${}", account.spent),
                format!("${}", account.reserved),
                used(account.spent + account.reserved, budget.limit)
            )
            .map_err(io)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::percent;

    #[test]
    fn percentages_are_rounded_to_the_nearest_tenth_half_up() {
        for (part, whole, shown) in [
            (0, 0, "0%"),
            (1, 2, "50%"),
            (1, 6, "16.7%"),
            (2, 3, "66.7%"),
            (1, 8, "12.5%"),
            (1, 2_000, "0.1%"),
            (1, 2_001, "0%"),
            (3, 2, "150%"),
        ] {
            assert_eq!(percent(part, whole), shown, "{part}/{whole}");
        }
    }
}
