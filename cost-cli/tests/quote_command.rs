//! `llm-cost quote` end to end: the binary, its stdin and stdout, and its exit codes.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn run(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_llm-cost"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut input = child.stdin.take().unwrap_or_else(|| panic!("no stdin"));
    input
        .write_all(stdin.as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    drop(input);
    child.wait_with_output().unwrap_or_else(|e| panic!("{e}"))
}

fn lines(output: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn sample_path() -> String {
    format!(
        "{}/../tests/data/litellm_sample.json",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn every_line_priced_exits_zero_in_order() {
    let stdin = r#"{"id": 1, "model": "gpt-4o", "input_tokens": 1000, "output_tokens": 100}
{"id": "two", "model": "claude-sonnet-4-5", "input_tokens": 10000, "cache_read_tokens": 6000, "cache_write_tokens": 2000, "cache_write_1h_tokens": 1000, "output_tokens": 500}

{"id": 3, "model": "text-embedding-3-small", "input_tokens": 1000000}
"#;
    let out = run(&["quote"], stdin);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = lines(&out);
    assert_eq!(got.len(), 3);
    assert_eq!(
        (&got[0]["id"], &got[0]["cost_usd"]),
        (&serde_json::json!(1), &serde_json::json!("0.0035"))
    );
    assert_eq!(got[1]["id"], "two");
    assert_eq!(got[1]["cost_usd"], "0.0258");
    assert_eq!(got[1]["breakdown"]["cache_write_1h_usd"], "0.006");
    assert_eq!(got[2]["cost_usd"], "0.02");
    assert!(
        got[0]["table_version"]
            .as_str()
            .is_some_and(|v| !v.is_empty())
    );
}

#[test]
fn a_data_residency_call_is_priced_at_its_factor_or_refused() {
    let stdin = r#"{"id": 1, "model": "claude-sonnet-4-5@20250929", "input_tokens": 10000, "output_tokens": 1000, "data_residency": true}
{"id": 2, "model": "claude-sonnet-4-5@20250929", "input_tokens": 10000, "output_tokens": 1000}
{"id": 3, "model": "gpt-4o", "input_tokens": 10000, "data_residency": true}
{"id": 4, "model": "gpt-4o", "input_tokens": 10000, "data_residency": "yes"}
"#;
    let out = run(&["quote"], stdin);
    assert_eq!(out.status.code(), Some(1));
    let got = lines(&out);
    assert_eq!(
        (&got[0]["cost_usd"], &got[0]["data_residency"]),
        (&serde_json::json!("0.0495"), &serde_json::json!(true))
    );
    assert_eq!(
        (&got[1]["cost_usd"], &got[1]["data_residency"]),
        (&serde_json::json!("0.045"), &serde_json::json!(false))
    );
    for (line, fragment) in [(2, "data-residency endpoint"), (3, "must be true or false")] {
        assert!(
            got[line]["error"]
                .as_str()
                .is_some_and(|e| e.contains(fragment)),
            "{}",
            got[line]
        );
    }
}

#[test]
fn a_bad_line_gets_an_error_and_the_rest_are_priced() {
    let stdin = "{\"id\": 1, \"model\": \"gpt-4o\", \"input_tokens\": 10}\n{oops\n{\"id\": 3, \"model\": \"nope-model\"}\n{\"id\": 4, \"model\": \"gpt-4o-mini\", \"output_tokens\": 10}\n";
    let out = run(&["quote"], stdin);
    assert_eq!(out.status.code(), Some(1));
    let got = lines(&out);
    assert_eq!(got.len(), 4);
    assert_eq!(got[0]["cost_usd"], "0.000025");
    assert!(
        got[1]["error"]
            .as_str()
            .is_some_and(|e| e.contains("invalid JSON"))
    );
    assert_eq!(got[1]["id"], serde_json::Value::Null);
    assert_eq!(got[2]["id"], 3);
    assert!(
        got[2]["error"]
            .as_str()
            .is_some_and(|e| e.contains("unknown model `nope-model`"))
    );
    assert_eq!(got[3]["cost_usd"], "0.000006");
}

#[test]
fn prices_from_a_litellm_file() {
    let stdin = r#"{"id": "g", "model": "gemini/gemini-2.5-pro", "input_tokens": 250000, "cache_read_tokens": 50000, "output_tokens": 2000, "reasoning_tokens": 1000}
{"id": "b", "model": "gpt-4o", "input_tokens": 1000, "output_tokens": 1000, "service_tier": "batch"}
"#;
    let out = run(&["quote", "--prices", &sample_path()], stdin);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = lines(&out);
    assert_eq!(got[0]["cost_usd"], "0.5425");
    assert_eq!(got[0]["context_tier_above"], 200000);
    assert_eq!(got[1]["cost_usd"], "0.00625");
    assert_eq!(got[1]["service_tier"], "batch");
    assert!(
        got[1]["table_version"]
            .as_str()
            .is_some_and(|v| v.starts_with("litellm@"))
    );
}

#[test]
fn a_malformed_price_file_names_file_line_and_column() {
    let dir = std::env::temp_dir().join(format!("llm-cost-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let path = dir.join("broken.json");
    std::fs::write(
        &path,
        "{\n  \"m\": {\n    \"input_cost_per_token\": 1e-6,\n  }\n}\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = run(&["quote", "--prices", &path.display().to_string()], "");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:4:", path.display())),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn wrong_arguments_exit_two() {
    assert_eq!(run(&["quote", "--bogus"], "").status.code(), Some(2));
    assert_eq!(run(&["nonsense"], "").status.code(), Some(2));
    assert_eq!(run(&["quote", "--prices"], "").status.code(), Some(2));
}

#[test]
fn stale_prices_are_warned_about_once_per_date_and_still_quoted() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("dated.toml");
    std::fs::write(
        &path,
        "version = \"dated\"\n\
         [models.old]\ninput = \"1\"\noutput = \"2\"\nas_of = \"2000-01-01\"\n\
         [models.old-mini]\ninput = \"1\"\noutput = \"2\"\nas_of = \"2000-01-01\"\n\
         [models.fresh]\ninput = \"1\"\noutput = \"2\"\nas_of = \"2999-01-01\"\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let stdin = r#"{"model": "old", "input_tokens": 1000000}
{"model": "old-mini", "input_tokens": 1000000}
{"model": "fresh", "input_tokens": 1000000}
"#;
    let out = run(&["quote", "--prices", &path.display().to_string()], stdin);
    assert_eq!(out.status.code(), Some(0));
    let got = lines(&out);
    assert_eq!(got.len(), 3);
    assert_eq!(got[0]["cost_usd"], "1");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let warnings: Vec<&str> = stderr.lines().collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(
        warnings[0].starts_with("llm-cost: warning: prices read on 2000-01-01 (")
            && warnings[0].contains("days ago) may be out of date, `old`'s among them"),
        "{stderr}"
    );
}

#[test]
fn a_fast_mode_call_is_priced_at_its_factor_or_refused() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("fast.json");
    std::fs::write(
        &path,
        r#"{"claude-opus-4-6": {"input_cost_per_token": 5e-06, "output_cost_per_token": 2.5e-05,
             "provider_specific_entry": {"fast": 6.0}},
            "claude-sonnet-4-6": {"input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05}}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let stdin = r#"{"model": "claude-opus-4-6", "input_tokens": 10000, "output_tokens": 1000, "service_tier": "fast_mode"}
{"model": "claude-opus-4-6", "input_tokens": 10000, "output_tokens": 1000}
{"model": "claude-sonnet-4-6", "input_tokens": 10000, "service_tier": "fast_mode"}
"#;
    let out = run(&["quote", "--prices", &path.display().to_string()], stdin);
    assert_eq!(out.status.code(), Some(1));
    let got = lines(&out);
    // 10 000 × $30 + 1 000 × $150 per million; at standard speed a sixth of it.
    assert_eq!(
        (&got[0]["cost_usd"], &got[0]["service_tier"]),
        (&serde_json::json!("0.45"), &serde_json::json!("fast_mode"))
    );
    assert_eq!(got[1]["cost_usd"], "0.075");
    assert!(
        got[2]["error"]
            .as_str()
            .is_some_and(|e| e.contains("fast mode")),
        "{}",
        got[2]
    );
}

#[test]
fn an_entry_a_price_file_leaves_out_is_warned_about_and_the_others_priced() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("prices.json");
    std::fs::write(
        &path,
        r#"{"good": {"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06},
            "bad": {"input_cost_per_token": "lots", "output_cost_per_token": 2e-06}}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let stdin = "{\"model\": \"good\", \"input_tokens\": 1000000}\n{\"model\": \"bad\", \"input_tokens\": 1}\n";
    let out = run(&["quote", "--prices", &path.display().to_string()], stdin);
    assert_eq!(out.status.code(), Some(1));
    let got = lines(&out);
    assert_eq!(got[0]["cost_usd"], "1");
    assert!(got[1]["error"].is_string(), "{}", got[1]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("`bad`") && stderr.contains("entry left out: its model is unpriced"),
        "{stderr}"
    );
}

#[test]
fn a_dated_line_is_priced_at_the_prices_of_its_day() {
    // Claude Sonnet 5.5's cache reads cost $0.20 per million until 2026-10-07 and $0.10 since:
    // 10 000 × $2 + 10 000 × $0.20 (or $0.10) per million.
    let stdin = r#"{"id": 1, "model": "claude-sonnet-5-5", "input_tokens": 20000, "cache_read_tokens": 10000, "date": "2026-10-06"}
{"id": 2, "model": "claude-sonnet-5-5", "input_tokens": 20000, "cache_read_tokens": 10000, "date": "2026-10-07"}
{"id": 3, "model": "claude-sonnet-5-5", "input_tokens": 20000, "date": "2026-13-01"}
"#;
    let output = run(&["quote"], stdin);
    assert_eq!(output.status.code(), Some(1));
    let out = lines(&output);
    assert_eq!(out[0]["cost_usd"], "0.022");
    assert!(out[0].get("prices_from").is_none(), "{}", out[0]);
    assert_eq!(
        (&out[1]["cost_usd"], &out[1]["prices_from"]),
        (
            &serde_json::json!("0.021"),
            &serde_json::json!("2026-10-07")
        )
    );
    assert_eq!(
        out[2]["error"],
        "`date` must be a date in the form YYYY-MM-DD, got `2026-13-01`"
    );
}

/// The exit code and the output lines of `quote --from FORMAT [ARGS…]` over `lines`.
fn quote_from(
    format: &str,
    args: &[&str],
    lines_in: &[serde_json::Value],
) -> (i32, Vec<serde_json::Value>) {
    let stdin: String = lines_in.iter().map(|l| format!("{l}\n")).collect();
    let mut all = vec!["quote", "--from", format];
    all.extend(args);
    let out = run(&all, &stdin);
    (out.status.code().unwrap_or(-1), lines(&out))
}

#[test]
fn responses_as_providers_sent_them_are_priced_from_their_own_usage_and_terms() {
    use serde_json::json;
    // Chat Completions: 1 200 prompt tokens (1 024 cached), 300 completion tokens of
    // gpt-4o-mini: 176 × 0.15 + 1 024 × 0.075 + 300 × 0.6 per million.
    let chat = json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1_764_000_000,
        "model": "gpt-4o-mini-2024-07-18", "service_tier": "default", "choices": [],
        "usage": {"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500,
                  "prompt_tokens_details": {"cached_tokens": 1024}}
    });
    let (code, out) = quote_from("openai-chat", &[], &[chat]);
    assert_eq!(code, 0, "{out:?}");
    assert_eq!(
        (&out[0]["id"], &out[0]["model"], &out[0]["cost_usd"]),
        (
            &json!("chatcmpl-1"),
            &json!("gpt-4o-mini-2024-07-18"),
            &json!("0.0002832")
        )
    );

    // The event that ends a Responses stream, served at flex: gpt-5's flex prices, 2 000
    // uncached input tokens at 0.625, 1 000 cached at 0.0625, 800 output at 5 per million.
    let completed = json!({
        "type": "response.completed", "sequence_number": 9,
        "response": {"id": "resp_1", "object": "response", "created_at": 1_764_000_000,
            "status": "completed", "model": "gpt-5-2025-08-07", "service_tier": "flex",
            "output": [],
            "usage": {"input_tokens": 3000, "output_tokens": 800, "total_tokens": 3800,
                      "input_tokens_details": {"cached_tokens": 1000},
                      "output_tokens_details": {"reasoning_tokens": 500}}}
    });
    let (code, out) = quote_from("openai-responses", &[], &[completed]);
    assert_eq!(code, 0, "{out:?}");
    assert_eq!(out[0]["service_tier"], "flex");
    assert_eq!(out[0]["cost_usd"], "0.0053125");

    // Anthropic, inference kept in the US: Claude Sonnet 4.5's data-residency factor (1.1) on
    // 1 000 input tokens at $3 and 100 output tokens at $15 per million.
    let message = json!({
        "id": "msg_1", "type": "message", "role": "assistant",
        "model": "claude-sonnet-4-5-20250929", "content": [],
        "usage": {"input_tokens": 1000, "output_tokens": 100, "inference_geo": "us"}
    });
    let (code, out) = quote_from("anthropic", &[], &[message]);
    assert_eq!(code, 0, "{out:?}");
    assert_eq!(
        (&out[0]["data_residency"], &out[0]["cost_usd"]),
        (&json!(true), &json!("0.00495"))
    );

    // Gemini: thoughts bill as output (100 + 50 tokens at $2.50, 1 000 in at $0.30 per million).
    let gemini = json!({
        "responseId": "g-1", "modelVersion": "gemini-2.5-flash",
        "usageMetadata": {"promptTokenCount": 1000, "candidatesTokenCount": 100,
                          "thoughtsTokenCount": 50, "totalTokenCount": 1150}
    });
    let (code, out) = quote_from("gemini", &[], &[gemini]);
    assert_eq!(code, 0, "{out:?}");
    assert_eq!(
        (&out[0]["id"], &out[0]["cost_usd"]),
        (&json!("g-1"), &json!("0.000675"))
    );

    // Gemini served at flex, with a table that prices the tier: 1 000 in at $0.15 and 150 out
    // at $1.25 per million.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let prices = dir.path().join("prices.toml");
    std::fs::write(
        &prices,
        "version = \"own\"\n[models.\"gemini-2.5-flash\"]\ninput = \"0.30\"\noutput = \"2.50\"\n\
         flex = { input = \"0.15\", output = \"1.25\" }\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let flex = json!({
        "responseId": "g-2", "modelVersion": "gemini-2.5-flash",
        "usageMetadata": {"promptTokenCount": 1000, "candidatesTokenCount": 100,
                          "thoughtsTokenCount": 50, "totalTokenCount": 1150,
                          "serviceTier": "flex"}
    });
    let (code, out) = quote_from(
        "gemini",
        &["--prices", prices.to_str().unwrap_or_default()],
        &[flex],
    );
    assert_eq!(code, 0, "{out:?}");
    assert_eq!(
        (&out[0]["service_tier"], &out[0]["cost_usd"]),
        (&json!("flex"), &json!("0.0003375"))
    );
}

#[test]
fn a_response_that_does_not_name_its_model_needs_one_given() {
    use serde_json::json;
    let converse =
        json!({"usage": {"inputTokens": 1000, "outputTokens": 100, "totalTokens": 1100}});
    let (code, out) = quote_from("bedrock", &[], std::slice::from_ref(&converse));
    assert_eq!(code, 1);
    let error = out[0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("--model"), "{error}");
    let (code, out) = quote_from("bedrock", &["--model", "claude-sonnet-4-5"], &[converse]);
    assert_eq!(code, 0, "{out:?}");
    assert_eq!(out[0]["cost_usd"], "0.0045");
    // A line that is not such a response gets an error of its own; the others are priced.
    let (code, out) = quote_from(
        "openai-chat",
        &[],
        &[
            json!({"model": "gpt-4o"}),
            json!({"model": "gpt-4o", "usage": {"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100}}),
        ],
    );
    assert_eq!(code, 1);
    assert!(out[0]["error"].is_string(), "{out:?}");
    assert_eq!(out[1]["cost_usd"], "0.0035");
    // `--model` alone, without `--from`, is a usage error.
    let out = run(&["quote", "--model", "gpt-4o"], "");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_search_is_quoted_at_the_search_context_size_the_line_or_the_answer_says() {
    use serde_json::json;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let prices = dir.path().join("sonar.toml");
    std::fs::write(
        &prices,
        "version = \"sonar\"\n[models.sonar]\ninput = \"1\"\noutput = \"1\"\nweb_search_by_context_size = { low = \"0.005\", medium = \"0.008\", high = \"0.012\" }\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let prices = prices.to_str().unwrap_or_default();
    // Usage lines: 500 in, 200 out, one search, at a size given or not, or a bad one.
    let stdin = r#"{"id": 1, "model": "sonar", "input_tokens": 500, "output_tokens": 200, "web_search_requests": 1, "search_context_size": "high"}
{"id": 2, "model": "sonar", "input_tokens": 500, "output_tokens": 200, "web_search_requests": 1}
{"id": 3, "model": "sonar", "input_tokens": 500, "output_tokens": 200, "web_search_requests": 1, "search_context_size": "vast"}
"#;
    let out = run(&["quote", "--prices", prices], stdin);
    assert_eq!(out.status.code(), Some(1));
    let got = lines(&out);
    assert_eq!(
        (&got[0]["cost_usd"], &got[0]["search_context_size"]),
        (&json!("0.0127"), &json!("high"))
    );
    assert_eq!(
        (&got[1]["cost_usd"], got[1].get("search_context_size")),
        (&json!("0.0087"), None)
    );
    assert!(
        got[2]["error"]
            .as_str()
            .is_some_and(|e| e.contains("unknown search context size `vast`")),
        "{}",
        got[2]
    );
    // A Sonar answer as Perplexity sent it: its request fee at the size its usage states.
    let answer = json!({
        "id": "effa842e", "model": "sonar", "created": 1_755_452_599,
        "usage": {"prompt_tokens": 500, "completion_tokens": 200, "total_tokens": 700,
                  "search_context_size": "low"}
    });
    let (code, out) = quote_from("openai-chat", &["--prices", prices], &[answer]);
    assert_eq!(code, 0, "{out:?}");
    assert_eq!(
        (&out[0]["cost_usd"], &out[0]["search_context_size"]),
        (&json!("0.0057"), &json!("low"))
    );
}

/// An answer's reported cost and whether the quote agrees with it.
fn reported_and_agreement(answer: &serde_json::Value) -> (serde_json::Value, serde_json::Value) {
    (
        answer["reported_cost_usd"].clone(),
        answer["agrees_with_reported"].clone(),
    )
}

#[test]
fn an_answer_that_reports_its_cost_is_quoted_beside_it() {
    use serde_json::json;
    // 1 000 in, 100 out of gpt-4o: $0.0035 by the embedded table.
    let answer = |usage_extra: serde_json::Value| {
        let mut usage =
            json!({"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100});
        if let (Some(usage), serde_json::Value::Object(extra)) =
            (usage.as_object_mut(), usage_extra)
        {
            usage.extend(extra);
        }
        json!({"model": "gpt-4o", "usage": usage})
    };
    let (code, out) = quote_from(
        "openai-chat",
        &[],
        &[
            answer(json!({"cost": 0.0035})),
            answer(json!({"cost": 0.004375})),
            answer(json!({})),
        ],
    );
    assert_eq!(code, 0, "{out:?}");
    assert_eq!(
        reported_and_agreement(&out[0]),
        (json!("0.0035"), json!(true))
    );
    assert_eq!(out[1]["cost_usd"], json!("0.0035"));
    assert_eq!(
        reported_and_agreement(&out[1]),
        (json!("0.004375"), json!(false))
    );
    assert_eq!(out[2].get("reported_cost_usd"), None);
    assert_eq!(out[2].get("agrees_with_reported"), None);
}

#[test]
fn a_usage_line_may_carry_the_cost_its_provider_reported() {
    use serde_json::json;
    let stdin = r#"{"id": 1, "model": "gpt-4o", "input_tokens": 1000, "output_tokens": 100, "reported_cost_usd": "0.0035"}
{"id": 2, "model": "gpt-4o", "input_tokens": 1000, "output_tokens": 100, "reported_cost_usd": 0.004375}
{"id": 3, "model": "gpt-4o", "input_tokens": 1000, "output_tokens": 100, "reported_cost_usd": "-1"}
{"id": 4, "model": "gpt-4o", "input_tokens": 1000, "output_tokens": 100, "reported_cost_usd": true}
"#;
    let out = run(&["quote"], stdin);
    assert_eq!(out.status.code(), Some(1));
    let got = lines(&out);
    assert_eq!(
        reported_and_agreement(&got[0]),
        (json!("0.0035"), json!(true))
    );
    assert_eq!(
        reported_and_agreement(&got[1]),
        (json!("0.004375"), json!(false))
    );
    for bad in &got[2..] {
        assert!(
            bad["error"]
                .as_str()
                .is_some_and(|e| e.contains("`reported_cost_usd` must be")),
            "{bad}"
        );
    }
}

#[test]
fn an_unpriced_call_is_charged_its_reported_cost_only_when_asked() {
    use serde_json::json;
    let stdin = r#"{"id": 1, "model": "acme-llm-9000", "input_tokens": 1000, "output_tokens": 100, "reported_cost_usd": "0.0021"}
{"id": 2, "model": "acme-llm-9000", "input_tokens": 1000, "output_tokens": 100}
{"id": 3, "model": "gpt-4o", "input_tokens": 1000, "output_tokens": 100, "reported_cost_usd": "1"}
{"id": 4, "model": "acme-llm-9000", "input_tokens": 1000, "output_tokens": 100, "reasoning_tokens": 200, "reported_cost_usd": "0.0021"}
"#;
    let asked = run(&["quote", "--charge-reported-cost-when-unpriced"], stdin);
    // Line 2 gives no figure and line 4's usage is invalid (more reasoning than output): errors.
    assert_eq!(asked.status.code(), Some(1));
    let got = lines(&asked);
    assert_eq!(
        (
            &got[0]["cost_usd"],
            &got[0]["cost_source"],
            &got[0]["reported_cost_usd"]
        ),
        (&json!("0.0021"), &json!("provider"), &json!("0.0021"))
    );
    assert!(
        got[0]["no_table_price"]
            .as_str()
            .is_some_and(|why| why.contains("acme-llm-9000")),
        "{}",
        got[0]
    );
    assert!(got[1]["error"].is_string(), "{}", got[1]);
    // A call the table prices is charged the table's price, whatever its provider said.
    assert_eq!(
        (&got[2]["cost_usd"], got[2].get("cost_source")),
        (&json!("0.0035"), None)
    );
    assert!(got[3]["error"].is_string(), "{}", got[3]);
    // Not asked: unpriced, an error.
    let default = run(&["quote"], stdin);
    let got = lines(&default);
    assert!(got[0]["error"].is_string(), "{}", got[0]);
    assert_eq!(got[0].get("cost_usd"), None);
}

#[test]
fn a_line_with_an_unknown_key_exits_one_unless_such_keys_are_allowed() {
    let stdin = r#"{"id": 1, "model": "gpt-4o", "input_tokens": 1000, "ouput_tokens": 100}
{"id": 2, "model": "gpt-4o", "input_tokens": 1000, "output_tokens": 100, "team": "search"}
"#;
    let out = run(&["quote"], stdin);
    assert_eq!(out.status.code(), Some(1));
    let got = lines(&out);
    assert_eq!(got.len(), 2);
    assert!(
        got[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("`ouput_tokens`") && e.contains("`output_tokens`?")),
        "{}",
        got[0]
    );
    assert!(got[1]["error"].is_string(), "{}", got[1]);
    // Allowed, they are ignored; the misspelt count then counts nothing, as asked.
    let out = run(&["quote", "--allow-unknown-keys"], stdin);
    assert_eq!(out.status.code(), Some(0));
    let got = lines(&out);
    assert_eq!(got[0]["cost_usd"], "0.0025");
    assert_eq!(got[1]["cost_usd"], "0.0035");
    // Provider responses have keys of their own: the flag means nothing with `--from`.
    let out = run(
        &["quote", "--from", "openai-chat", "--allow-unknown-keys"],
        "",
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_response_of_another_format_is_an_error_line() {
    let responses_answer = r#"{"id": "resp_1", "model": "gpt-4o", "usage": {"input_tokens": 1000, "output_tokens": 100}}"#;
    let out = run(&["quote", "--from", "openai-chat"], responses_answer);
    assert_eq!(out.status.code(), Some(1));
    let got = lines(&out);
    assert_eq!(got[0]["id"], "resp_1");
    assert!(
        got[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("has no `prompt_tokens`")),
        "{}",
        got[0]
    );
    // In its own format it is priced.
    let out = run(&["quote", "--from", "openai-responses"], responses_answer);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(lines(&out)[0]["cost_usd"], "0.0035");
}
