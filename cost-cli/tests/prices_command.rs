//! `llm-cost prices` end to end: the table written in the native format, read back by the
//! library, prices calls as the table it was written from.

use std::process::{Command, Output};

use cost_core::{Money, PriceTable, ServiceTier, Usage};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_llm-cost"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// What the command wrote, read as a price table.
fn written(output: &Output) -> PriceTable {
    let text = String::from_utf8_lossy(&output.stdout);
    PriceTable::from_text(&text, "written.toml").unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn total(table: &PriceTable, model: &str, usage: &Usage) -> Money {
    table
        .quote(model, usage, ServiceTier::Standard)
        .map(|q| q.total())
        .unwrap_or_else(|e| panic!("{model}: {e}"))
}

#[test]
fn the_embedded_table_is_written_whole_and_prices_as_it_does() {
    let out = run(&["prices"]);
    assert_eq!(out.status.code(), Some(0));
    // Nothing left out of the embedded table, so nothing said about it.
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    let table = written(&out);
    let embedded = PriceTable::default();
    assert_eq!(table.len(), embedded.len());
    let usage = Usage {
        input: 120_000,
        cache_read: 20_000,
        output: 4_000,
        ..Usage::default()
    };
    // Every model priced the same, or refused the same (embedding models have no output price).
    let quote = |table: &PriceTable, model: &str| {
        table
            .quote(model, &usage, ServiceTier::Standard)
            .ok()
            .map(|q| q.total())
    };
    let mut priced = 0;
    for entry in embedded.entries() {
        let expected = quote(&embedded, &entry.key);
        assert_eq!(quote(&table, &entry.key), expected, "{}", entry.key);
        priced += usize::from(expected.is_some());
    }
    assert!(priced > 60, "{priced}");
}

#[test]
fn a_file_over_the_embedded_table_and_the_entries_names_resolve_to() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("prices.json");
    std::fs::write(
        &path,
        r#"{"gpt-4o": {"input_cost_per_token": 2e-06, "output_cost_per_token": 8e-06},
            "claude-opus-4-6": {"input_cost_per_token": 5e-06, "output_cost_per_token": 2.5e-05,
                "provider_specific_entry": {"fast": 6.0}},
            "dall-e-3": {"output_cost_per_image": 0.04}}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let path = path.display().to_string();
    // A dated name finds its entry; an unknown one is named with the nearest, and the rest are
    // still written.
    let out = run(&[
        "prices",
        "--prices",
        &path,
        "--over-embedded",
        "gpt-4o-2024-08-06",
        "claude-opus-4-6",
        "gpt-4o-mini",
        "gpt-4o-mini-turbo",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("`gpt-4o-mini-turbo`")
            && stderr
                .split("nearest known: ")
                .nth(1)
                .is_some_and(|nearest| nearest.contains("gpt-4o-mini")),
        "{stderr}"
    );
    // What the file held that is not written is said once.
    assert!(
        stderr.contains("1 entries without a per-token input price left out"),
        "{stderr}"
    );
    let table = written(&out);
    assert_eq!(table.len(), 3);
    let usage = Usage::new(1_000_000, 1_000_000);
    // The file's gpt-4o ($2 / $8), the embedded gpt-4o-mini ($0.15 / $0.60), the file's
    // fast-mode factor.
    let usd = |text: &str| Money::from_decimal(text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(total(&table, "gpt-4o", &usage), usd("10"));
    assert_eq!(total(&table, "gpt-4o-mini", &usage), usd("0.75"));
    assert_eq!(
        table
            .quote("claude-opus-4-6", &usage, ServiceTier::FastMode)
            .map(|q| q.total()),
        Ok(usd("180"))
    );
    // The whole file written keeps the image model's name, unpriced with the reason.
    let out = run(&["prices", "--prices", &path]);
    assert_eq!(out.status.code(), Some(0));
    let snapshot = written(&out);
    let why = snapshot
        .resolve("openai/dall-e-3")
        .err()
        .and_then(|e| e.left_out);
    assert!(
        why.as_deref()
            .is_some_and(|why| why.ends_with("(priced by `output_cost_per_image`)")),
        "{why:?}"
    );

    // Merging needs a file.
    assert_eq!(run(&["prices", "--over-embedded"]).status.code(), Some(2));
}
