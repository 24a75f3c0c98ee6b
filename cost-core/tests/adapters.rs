//! Provider usage adapters: exact inclusive usage from each native shape, typed and from JSON.

use cost_core::adapters::{AdapterError, anthropic, bedrock, gemini, openai};
use cost_core::{CallTerms, PriceTable, SearchContextSize, ServiceTier, TokenUsage, Usage};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// `response` deserialized as the typed response `T`.
fn typed<T: DeserializeOwned>(response: Value) -> T {
    serde_json::from_value(response).unwrap_or_else(|e| panic!("{e}"))
}

/// `response` reads as `expected` both from JSON (`from_json`) and as the typed response `T`,
/// which is returned for further checks.
fn reads_as<T: DeserializeOwned + Default + TokenUsage>(
    from_json: fn(&Value) -> Result<Usage, AdapterError>,
    response: Value,
    expected: Usage,
) -> T {
    assert_eq!(from_json(&response), Ok(expected), "{response}");
    let typed: T = serde_json::from_value(response).unwrap_or_default();
    assert_eq!(typed.token_usage(), Some(expected));
    typed
}

#[test]
fn openai_chat_with_cached_and_reasoning_tokens() {
    let response = json!({
        "id": "chatcmpl-1", "object": "chat.completion", "model": "o4-mini-2025-04-16",
        "choices": [],
        "usage": {
            "prompt_tokens": 2048, "completion_tokens": 900, "total_tokens": 2948,
            "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 640, "audio_tokens": 0,
                "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
        }
    });
    let expected = Usage {
        input: 2048,
        cache_read: 1024,
        output: 900,
        reasoning: 640,
        ..Usage::default()
    };
    assert_eq!(openai::chat_from_json(&response), Ok(expected));
    assert_eq!(openai::chat_from_json(&response["usage"]), Ok(expected));
    let typed: openai::ChatCompletion = serde_json::from_value(response).unwrap_or_default();
    assert_eq!(typed.token_usage(), Some(expected));
    assert_eq!(typed.response_model(), Some("o4-mini-2025-04-16"));
    // Without the request's `service_tier`, the response does not say.
    assert_eq!(typed.service_tier(), None);
}

#[test]
fn responses_say_the_service_tier_that_served_them() {
    let openai = json!({
        "model": "gpt-4o", "service_tier": "priority",
        "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}
    });
    let typed: openai::ChatCompletion = serde_json::from_value(openai).unwrap_or_default();
    assert_eq!(typed.service_tier(), Some("priority"));
    let responses = json!({"model": "gpt-5", "service_tier": "flex",
        "usage": {"input_tokens": 10, "output_tokens": 2, "total_tokens": 12}});
    let typed: openai::Response = serde_json::from_value(responses).unwrap_or_default();
    assert_eq!(typed.service_tier(), Some("flex"));
    let anthropic = json!({
        "model": "claude-sonnet-4-5",
        "usage": {"input_tokens": 10, "output_tokens": 2, "service_tier": "batch"}
    });
    let typed: anthropic::Message = serde_json::from_value(anthropic).unwrap_or_default();
    assert_eq!(typed.service_tier(), Some("batch"));
    assert_eq!(typed.usage.service_tier(), Some("batch"));
}

#[test]
fn anthropic_fast_mode_is_the_fast_mode_tier() {
    let message = |usage: Value| {
        serde_json::from_value::<anthropic::Message>(
            json!({"model": "claude-opus-5-5", "usage": usage}),
        )
        .unwrap_or_default()
    };
    let fast = message(
        json!({"input_tokens": 25, "output_tokens": 150, "speed": "fast",
                              "service_tier": "standard"}),
    );
    assert_eq!(fast.service_tier(), Some("fast_mode"));
    assert_eq!(
        fast.service_tier().map(ServiceTier::parse),
        Some(Ok(ServiceTier::FastMode))
    );
    assert_eq!(fast.usage.service_tier(), Some("fast_mode"));
    // A request for fast mode that ran at standard speed says so, and is priced so.
    let standard = message(
        json!({"input_tokens": 25, "output_tokens": 150, "speed": "standard",
                                  "service_tier": "priority"}),
    );
    assert_eq!(standard.service_tier(), Some("priority"));
    let standard = message(json!({"input_tokens": 25, "output_tokens": 150, "speed": "standard"}));
    assert_eq!(standard.service_tier(), Some("standard"));
    let silent = message(json!({"input_tokens": 25, "output_tokens": 150}));
    assert_eq!(silent.service_tier(), None);

    // A stream: the speed comes with the usage of message_start.
    let mut stream = anthropic::StreamUsage::default();
    let start = json!({"type": "message_start", "message": {"model": "claude-opus-5-5",
        "usage": {"input_tokens": 25, "output_tokens": 1, "speed": "fast"}}});
    let delta = json!({"type": "message_delta", "usage": {"output_tokens": 150}});
    assert_eq!(stream.update(&start).map(|u| u.input), Ok(25));
    assert_eq!(stream.update(&delta).map(|u| u.output), Ok(150));
    assert_eq!(stream.service_tier(), Some("fast_mode"));
}

#[test]
fn anthropic_responses_say_where_inference_ran() {
    let message = |geo: Value| {
        let response = json!({"model": "claude-opus-4-6",
            "usage": {"input_tokens": 25, "output_tokens": 150, "inference_geo": geo}});
        serde_json::from_value::<anthropic::Message>(response).unwrap_or_default()
    };
    // US-only inference is a data-residency call; global is not; a geography added later is
    // taken as one too (priced at the factor or unpriced, never at the list price).
    assert_eq!(message(json!("us")).data_residency(), Some(true));
    assert_eq!(message(json!("global")).data_residency(), Some(false));
    assert_eq!(message(json!("GLOBAL")).data_residency(), Some(false));
    assert_eq!(message(json!("eu")).data_residency(), Some(true));
    assert_eq!(message(json!("")).data_residency(), None);
    assert_eq!(message(Value::Null).data_residency(), None);
    assert_eq!(message(json!("us")).usage.data_residency(), Some(true));
    assert_eq!(
        message(json!("us")).token_usage(),
        Some(Usage::new(25, 150))
    );
    // Older responses say nothing.
    let older = json!({"model": "claude-sonnet-4-5",
        "usage": {"input_tokens": 25, "output_tokens": 150}});
    let older: anthropic::Message = serde_json::from_value(older).unwrap_or_default();
    assert_eq!(older.data_residency(), None);

    // A stream: the geography comes with the usage of any event, and the latest one holds.
    let mut stream = anthropic::StreamUsage::default();
    assert_eq!(stream.data_residency(), None);
    let start = json!({"type": "message_start", "message": {"model": "claude-opus-4-6",
        "usage": {"input_tokens": 25, "output_tokens": 1, "inference_geo": "us"}}});
    let delta = json!({"type": "message_delta", "usage": {"output_tokens": 150}});
    assert_eq!(stream.update(&start).map(|u| u.input), Ok(25));
    assert_eq!(stream.update(&delta), Ok(Usage::new(25, 150)));
    assert_eq!(stream.data_residency(), Some(true));
}

#[test]
fn openai_cache_writes_are_read_and_priced_at_the_write_price() {
    // GPT-5.6 and later bill the prompt tokens they write to the cache; the count is part of
    // the prompt, as the cache reads are.
    let response = json!({
        "model": "gpt-6.1-sol",
        "usage": {"input_tokens": 10_000, "output_tokens": 500, "total_tokens": 10_500,
                  "input_tokens_details": {"cached_tokens": 2_000, "cache_write_tokens": 6_000}}
    });
    let expected = Usage {
        input: 10_000,
        cache_read: 2_000,
        cache_write: 6_000,
        output: 500,
        ..Usage::default()
    };
    reads_as::<openai::Response>(openai::responses_from_json, response, expected);
    let chat = json!({
        "model": "gpt-6.1-sol",
        "usage": {"prompt_tokens": 10_000, "completion_tokens": 500, "total_tokens": 10_500,
                  "prompt_tokens_details": {"cached_tokens": 2_000, "cache_write_tokens": 6_000}}
    });
    reads_as::<openai::ChatCompletion>(openai::chat_from_json, chat, expected);
    // More writes than the prompt leaves beside the reads: at most what it leaves.
    let odd = json!({"input_tokens": 100, "output_tokens": 1, "total_tokens": 101,
                     "input_tokens_details": {"cached_tokens": 40, "cache_write_tokens": 90}});
    assert_eq!(
        openai::responses_from_json(&odd).map(|u| (u.cache_read, u.cache_write)),
        Ok((40, 60))
    );
    // Priced at the write price where the table gives one ($2 input, $2.50 write, $0.10 read,
    // $10 output per million), at the input price where it does not.
    let table = |write: &str| {
        cost_core::PriceTable::from_text(
            &format!("version = \"1\"\n[models.m]\ninput = \"2\"\ncache_read = \"0.10\"\noutput = \"10\"\n{write}"),
            "prices.toml",
        )
        .unwrap_or_else(|e| panic!("{e}"))
    };
    let total = |write: &str| {
        table(write)
            .quote("m", &expected, ServiceTier::Standard)
            .map(|q| q.total())
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let usd = |text: &str| cost_core::Money::from_decimal(text).unwrap_or_else(|e| panic!("{e}"));
    // 2 000 × 2e-6 + 2 000 × 0.1e-6 + 6 000 × 2.5e-6 + 500 × 10e-6.
    assert_eq!(total("cache_write = \"2.50\"\n"), usd("0.0242"));
    assert_eq!(total(""), usd("0.0212"));
}

#[test]
fn openai_responses_api() {
    let response = json!({
        "model": "gpt-5-2025-08-07",
        "usage": {"input_tokens": 5000, "input_tokens_details": {"cached_tokens": 4096},
                  "output_tokens": 1200, "output_tokens_details": {"reasoning_tokens": 1000},
                  "total_tokens": 6200}
    });
    let expected = Usage {
        input: 5000,
        cache_read: 4096,
        output: 1200,
        reasoning: 1000,
        ..Usage::default()
    };
    assert_eq!(openai::responses_from_json(&response), Ok(expected));
    // A stream's last event holds the response.
    let completed = json!({"type": "response.completed", "sequence_number": 42,
                           "response": response.clone()});
    assert_eq!(openai::responses_from_json(&completed), Ok(expected));
    let typed: openai::ResponsesUsage =
        serde_json::from_value(response["usage"].clone()).unwrap_or_default();
    assert_eq!(typed.token_usage(), Some(expected));
    let typed: openai::Response = serde_json::from_value(response).unwrap_or_default();
    assert_eq!(typed.token_usage(), Some(expected));
    assert_eq!(typed.response_model(), Some("gpt-5-2025-08-07"));
    assert_eq!(typed.service_tier(), None);
}

#[test]
fn anthropic_with_cache_reads_and_both_write_lifetimes() {
    // input_tokens (50) excludes the 6 000 read and the 3 000 written (2 000 for 5 minutes,
    // 1 000 for an hour): the inclusive input is 9 050.
    let response = json!({
        "id": "msg_1", "type": "message", "model": "claude-sonnet-4-5-20250929",
        "usage": {
            "input_tokens": 50,
            "cache_creation_input_tokens": 3000,
            "cache_read_input_tokens": 6000,
            "cache_creation": {"ephemeral_5m_input_tokens": 2000, "ephemeral_1h_input_tokens": 1000},
            "output_tokens": 700,
            "service_tier": "standard"
        }
    });
    let expected = Usage {
        input: 9050,
        cache_read: 6000,
        cache_write: 2000,
        cache_write_1h: 1000,
        output: 700,
        ..Usage::default()
    };
    let typed = reads_as::<anthropic::Message>(anthropic::from_json, response, expected);
    assert_eq!(typed.response_model(), Some("claude-sonnet-4-5-20250929"));
    // Without the split, every write has the default 5-minute lifetime.
    let plain = json!({"input_tokens": 10, "cache_creation_input_tokens": 300, "output_tokens": 1});
    assert_eq!(
        anthropic::from_json(&plain),
        Ok(Usage {
            input: 310,
            cache_write: 300,
            output: 1,
            ..Usage::default()
        })
    );
}

#[test]
fn bedrock_converse_with_cache_reads_and_both_write_lifetimes() {
    // inputTokens (50) leaves out the 6 000 read and the 3 000 written (2 000 for 5 minutes,
    // 1 000 for an hour), as totalTokens (9 750 = 50 + 700 + 6 000 + 3 000) shows: the
    // inclusive input is 9 050.
    let response = json!({
        "output": {"message": {"role": "assistant", "content": [{"text": "…"}]}},
        "stopReason": "end_turn",
        "usage": {
            "inputTokens": 50, "outputTokens": 700, "totalTokens": 9750,
            "cacheReadInputTokens": 6000, "cacheWriteInputTokens": 3000,
            "cacheDetails": [{"ttl": "1h", "inputTokens": 1000}, {"ttl": "5m", "inputTokens": 2000}]
        },
        "metrics": {"latencyMs": 812}
    });
    let expected = Usage {
        input: 9050,
        cache_read: 6000,
        cache_write: 2000,
        cache_write_1h: 1000,
        output: 700,
        ..Usage::default()
    };
    reads_as::<bedrock::ConverseResponse>(bedrock::from_json, response.clone(), expected);
    // The stream's closing `metadata` event carries the same usage, wrapped or not.
    let metadata = json!({"usage": response["usage"], "metrics": {"latencyMs": 812}});
    assert_eq!(bedrock::from_json(&metadata), Ok(expected));
    assert_eq!(
        bedrock::from_json(&json!({ "metadata": metadata })),
        Ok(expected)
    );
    assert_eq!(bedrock::from_json(&response["usage"]), Ok(expected));
    // Without the details, every write has the default 5-minute lifetime; without a total,
    // the cache counts are read as outside inputTokens.
    let plain = json!({"inputTokens": 10, "outputTokens": 1, "cacheWriteInputTokens": 300});
    let expected_plain = Usage {
        input: 310,
        cache_write: 300,
        output: 1,
        ..Usage::default()
    };
    reads_as::<bedrock::ConverseUsage>(bedrock::from_json, plain, expected_plain);
}

#[test]
fn a_bedrock_response_says_the_service_tier_that_served_it() {
    let response = |tier: Value| {
        serde_json::from_value::<bedrock::ConverseResponse>(json!({
            "output": {"message": {"role": "assistant", "content": [{"text": "…"}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": 100, "outputTokens": 10, "totalTokens": 110},
            "serviceTier": tier
        }))
        .unwrap_or_default()
    };
    for (tier, parsed) in [
        ("priority", Ok(ServiceTier::Priority)),
        ("flex", Ok(ServiceTier::Flex)),
        ("default", Ok(ServiceTier::Standard)),
    ] {
        let read = response(json!({"type": tier}));
        assert_eq!(read.service_tier(), Some(tier));
        assert_eq!(read.service_tier().map(ServiceTier::parse), Some(parsed));
        assert_eq!(read.token_usage(), Some(Usage::new(100, 10)));
    }
    // Reserved capacity is no tier a table prices (priced at standard, counted, by the layer).
    assert!(
        response(json!({"type": "reserved"}))
            .service_tier()
            .map(ServiceTier::parse)
            .is_some_and(|parsed| parsed.is_err())
    );
    assert_eq!(response(Value::Null).service_tier(), None);
}

#[test]
fn a_gemini_response_says_the_service_tier_that_served_it() {
    let response = |tier: Value| {
        serde_json::from_value::<gemini::GenerateContentResponse>(json!({
            "modelVersion": "gemini-2.5-flash",
            "candidates": [{"content": {"parts": [{"text": "…"}]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 100, "candidatesTokenCount": 10,
                              "totalTokenCount": 110, "serviceTier": tier}
        }))
        .unwrap_or_default()
    };
    for (tier, parsed) in [
        ("priority", ServiceTier::Priority),
        ("flex", ServiceTier::Flex),
        ("standard", ServiceTier::Standard),
        // The enum's name, as some clients spell it.
        ("SERVICE_TIER_PRIORITY", ServiceTier::Priority),
    ] {
        let read = response(json!(tier));
        assert_eq!(read.service_tier(), Some(tier));
        assert_eq!(
            read.service_tier().map(ServiceTier::parse),
            Some(Ok(parsed))
        );
        assert_eq!(read.token_usage(), Some(Usage::new(100, 10)));
        // The usage object alone says it too.
        let usage = read.usage_metadata.unwrap_or_default();
        assert_eq!(usage.service_tier(), Some(tier));
    }
    // Not given (Vertex AI), or null: none, the standard tier.
    assert_eq!(response(Value::Null).service_tier(), None);
    let vertex = serde_json::from_value::<gemini::GenerateContentResponse>(json!({
        "usageMetadata": {"promptTokenCount": 100, "candidatesTokenCount": 10}
    }))
    .unwrap_or_default();
    assert_eq!(vertex.service_tier(), None);
}

#[test]
fn a_bedrock_id_is_priced_where_a_table_names_it() {
    let usage = bedrock::from_json(&json!({
        "inputTokens": 1000, "outputTokens": 100, "totalTokens": 3100,
        "cacheReadInputTokens": 2000
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    let id = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";
    // Not read as Anthropic's own model: the embedded table does not price it.
    let embedded = cost_core::PriceTable::embedded();
    assert!(embedded.quote(id, &usage, ServiceTier::Standard).is_err());
    // A table of the user's own, the geographic endpoint at 10% over the list price, the id an
    // alias: 3 000 × $3.30 − 2 000 × ($3.30 − $0.33) + 100 × $16.50 per million.
    let table = cost_core::format::native::parse(
        r#"
version = "bedrock-us"
as_of = "2026-11-27"
[models."bedrock-us-claude-sonnet-4-5"]
aliases = ["us.anthropic.claude-sonnet-4-5-20250929-v1:0"]
input = "3.30"
cache_read = "0.33"
output = "16.50"
"#,
        "bedrock.toml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let quote = table
        .quote(id, &usage, ServiceTier::Standard)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(quote.total().to_string(), "0.00561");
}

#[test]
fn bedrock_cache_counts_inside_the_input_when_the_total_says_so() {
    // totalTokens = inputTokens + outputTokens, and the 600 cached tokens fit in the 1 000
    // input: they are parts of it.
    let inside = json!({"inputTokens": 1000, "outputTokens": 10, "totalTokens": 1010,
                        "cacheReadInputTokens": 600});
    let expected = Usage {
        input: 1000,
        cache_read: 600,
        output: 10,
        ..Usage::default()
    };
    reads_as::<bedrock::ConverseUsage>(bedrock::from_json, inside, expected);
    // A total that fits neither reading: the sum, never an input counted short.
    let neither = json!({"inputTokens": 1000, "outputTokens": 10, "totalTokens": 5,
                         "cacheReadInputTokens": 600});
    let summed = Usage {
        input: 1600,
        ..expected
    };
    reads_as::<bedrock::ConverseUsage>(bedrock::from_json, neither, summed);
    // Cached tokens that do not fit in the input cannot be inside it.
    let too_many = json!({"inputTokens": 100, "outputTokens": 10, "totalTokens": 110,
                          "cacheReadInputTokens": 600});
    assert_eq!(
        bedrock::from_json(&too_many).map(|usage| usage.input),
        Ok(700)
    );
}

#[test]
fn bedrock_cache_lifetimes_it_does_not_know_are_errors() {
    let usage = json!({"inputTokens": 10, "outputTokens": 1, "cacheWriteInputTokens": 300,
                       "cacheDetails": [{"ttl": "30m", "inputTokens": 300}]});
    assert_eq!(
        bedrock::from_json(&usage),
        Err(AdapterError::UnknownValue {
            field: "cacheDetails.ttl".into(),
            value: "\"30m\"".into(),
        })
    );
    assert!(serde_json::from_value::<bedrock::ConverseUsage>(usage).is_err());
    assert!(matches!(
        bedrock::from_json(&json!({"inputTokens": -3, "outputTokens": 1})),
        Err(AdapterError::BadCount { .. })
    ));
    assert_eq!(
        bedrock::from_json(&json!({"inputTokens": 3, "outputTokens": 1,
            "cacheDetails": [{"ttl": "5m", "inputTokens": "7"}]})),
        Err(AdapterError::BadCount {
            field: "cacheDetails.inputTokens".into(),
            value: "\"7\"".into(),
        })
    );
    assert_eq!(
        bedrock::from_json(&json!({"output": {}})),
        Err(AdapterError::NoUsage("usage"))
    );
    // A usage that is not an object (a response whose usage was left null) is no usage.
    assert_eq!(
        openai::chat_from_json(&json!({"model": "m", "usage": null})),
        Err(AdapterError::NoUsage("usage"))
    );
}

#[test]
fn a_usage_object_of_another_format_is_refused_not_read_as_zero() {
    // Responses API counts read as a Chat Completion's, or an empty usage: every count
    // would read as 0.
    let not_chat = Err(AdapterError::NotThisFormat {
        key: "usage",
        marker: "prompt_tokens",
    });
    for usage in [json!({"input_tokens": 10, "output_tokens": 5}), json!({})] {
        assert_eq!(
            openai::chat_from_json(&json!({"model": "gpt-4o", "usage": usage})),
            not_chat
        );
    }
    // Chat Completions counts read as a Responses API answer's, an Anthropic message's, a
    // Gemini answer's or a Bedrock one's.
    let chat = json!({"model": "m", "usage": {"prompt_tokens": 10, "completion_tokens": 5}});
    assert_eq!(
        openai::responses_from_json(&chat),
        Err(AdapterError::NotThisFormat {
            key: "usage",
            marker: "input_tokens",
        })
    );
    assert_eq!(
        anthropic::from_json(&chat),
        Err(AdapterError::NotThisFormat {
            key: "usage",
            marker: "output_tokens",
        })
    );
    assert_eq!(
        bedrock::from_json(&chat),
        Err(AdapterError::NotThisFormat {
            key: "usage",
            marker: "inputTokens",
        })
    );
    assert_eq!(
        gemini::from_json(&json!({"usageMetadata": {"prompt_tokens": 10}})),
        Err(AdapterError::NotThisFormat {
            key: "usageMetadata",
            marker: "promptTokenCount",
        })
    );
    // The message names what is missing.
    let said = openai::chat_from_json(&json!({"usage": {}}))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(said.contains("no `prompt_tokens`"), "{said}");
}

#[test]
fn a_typed_response_whose_usage_is_of_another_format_has_no_usage_rather_than_zero_tokens() {
    // The typed responses read missing fields as 0: counts under other names leave only the
    // total, and the usage is then none (a call without usage), not 0 tokens priced at $0.
    let chat: openai::ChatCompletion = typed(json!({"model": "gpt-4o",
        "usage": {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}}));
    assert_eq!(chat.token_usage(), None);
    let responses: openai::Response = typed(json!({"model": "gpt-4o",
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}));
    assert_eq!(responses.token_usage(), None);
    let images: openai::ImagesResponse =
        typed(json!({"usage": {"prompt_tokens": 10, "total_tokens": 10}}));
    assert_eq!(images.token_usage(), None);
    // Their own counts are read; an answer that used no tokens at all has a usage of 0.
    let chat: openai::ChatCompletion = typed(json!({"model": "gpt-4o",
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}));
    assert_eq!(
        chat.token_usage().map(|u| (u.input, u.output)),
        Some((10, 5))
    );
    let empty: openai::ChatCompletion = typed(json!({"model": "gpt-4o",
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}}));
    assert_eq!(empty.token_usage(), Some(Usage::default()));
}

#[test]
fn an_anthropic_stream_keeps_the_input_of_message_start_when_deltas_give_only_the_output() {
    let start = json!({"type": "message_start", "message": {
        "id": "msg_1", "type": "message", "model": "claude-sonnet-4-5",
        "usage": {"input_tokens": 40, "cache_read_input_tokens": 2000,
                  "cache_creation_input_tokens": 0, "output_tokens": 1,
                  "service_tier": "priority"}}});
    let delta = |output: u64| {
        json!({"type": "message_delta", "delta": {"stop_reason": null},
               "usage": {"output_tokens": output}})
    };
    // A delta read alone has no input: recorded as the call's usage, it would lose 2 040 tokens.
    assert_eq!(anthropic::from_json(&delta(300)).map(|u| u.input), Ok(0));

    let mut stream = anthropic::StreamUsage::default();
    assert_eq!(stream.token_usage(), None);
    let after_start = stream.update(&start);
    assert_eq!(after_start.map(|u| (u.input, u.output)), Ok((2_040, 1)));
    // Events without usage change nothing.
    let ping = json!({"type": "content_block_delta", "delta": {"text": "hi"}});
    assert_eq!(stream.update(&ping).map(|u| u.output), Ok(1));
    let expected = Usage {
        input: 2_040,
        cache_read: 2_000,
        output: 300,
        ..Usage::default()
    };
    assert_eq!(stream.update(&delta(120)).map(|u| u.output), Ok(120));
    assert_eq!(stream.update(&delta(300)), Ok(expected));
    assert_eq!(stream.token_usage(), Some(expected));
    assert_eq!(stream.service_tier(), Some("priority"));
    assert_eq!(stream.response_model(), Some("claude-sonnet-4-5"));

    // Newer deltas repeat the input counts: they overwrite, as running totals do.
    let full_delta = json!({"type": "message_delta", "usage": {
        "input_tokens": 40, "cache_read_input_tokens": 2000, "cache_creation_input_tokens": 500,
        "output_tokens": 310}});
    assert_eq!(
        stream.update(&full_delta),
        Ok(Usage {
            input: 2_540,
            cache_read: 2_000,
            cache_write: 500,
            output: 310,
            ..Usage::default()
        })
    );
    // A bad count is an error, and the counts before it stay.
    let bad = json!({"type": "message_delta", "usage": {"output_tokens": -3}});
    assert!(stream.update(&bad).is_err());
    assert_eq!(stream.token_usage().map(|u| u.output), Some(310));
}

#[test]
fn gemini_with_thoughts_and_cached_content() {
    // candidates (300) exclude thoughts (200): output is 500, of which 200 reasoning.
    let response = json!({
        "candidates": [],
        "modelVersion": "gemini-2.5-pro",
        "usageMetadata": {
            "promptTokenCount": 12000, "cachedContentTokenCount": 8000,
            "candidatesTokenCount": 300, "thoughtsTokenCount": 200, "totalTokenCount": 12500
        }
    });
    let expected = Usage {
        input: 12000,
        cache_read: 8000,
        output: 500,
        reasoning: 200,
        ..Usage::default()
    };
    let metadata: gemini::UsageMetadata =
        serde_json::from_value(response["usageMetadata"].clone()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(metadata.token_usage(), Some(expected), "the metadata alone");
    let typed = reads_as::<gemini::GenerateContentResponse>(gemini::from_json, response, expected);
    assert_eq!(typed.response_model(), Some("gemini-2.5-pro"));
}

#[test]
fn openai_audio_tokens_are_apart_and_cached_audio_is_a_cache_read() {
    // gpt-4o-audio-preview: 1 000 prompt tokens of which 700 audio, 400 cached (not split by
    // modality): taken as text first, at most 600 audio tokens were not cached and at least 100
    // were. 500 completion tokens, 450 audio.
    let response = json!({
        "model": "gpt-4o-audio-preview-2025-06-03",
        "usage": {
            "prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500,
            "prompt_tokens_details": {"cached_tokens": 400, "audio_tokens": 700},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 450}
        }
    });
    let expected = Usage {
        input: 1000,
        cache_read: 400,
        audio_input: 600,
        cache_read_audio: 100,
        output: 500,
        audio_output: 450,
        ..Usage::default()
    };
    assert_eq!(openai::chat_from_json(&response), Ok(expected));
    let typed: openai::ChatCompletion =
        serde_json::from_value(response.clone()).unwrap_or_default();
    assert_eq!(typed.token_usage(), Some(expected));
    // With the cached tokens split by modality (300 of the 400 were audio), exact.
    let mut split = response;
    split["usage"]["prompt_tokens_details"]["cached_tokens_details"] =
        json!({"text_tokens": 100, "audio_tokens": 300});
    let exact = Usage {
        audio_input: 400,
        cache_read_audio: 300,
        ..expected
    };
    reads_as::<openai::ChatCompletion>(openai::chat_from_json, split, exact);
}

#[test]
fn openai_realtime_splits_cached_audio() {
    // A voice turn: 5 000 input tokens (1 000 text, 4 000 audio), 3 500 of them cached (500
    // text, 3 000 audio); 800 output tokens, 700 of them audio.
    let event = json!({
        "type": "response.done",
        "response": {
            "object": "realtime.response", "status": "completed",
            "usage": {
                "total_tokens": 5800, "input_tokens": 5000, "output_tokens": 800,
                "input_token_details": {
                    "cached_tokens": 3500, "text_tokens": 1000, "audio_tokens": 4000,
                    "cached_tokens_details": {"text_tokens": 500, "audio_tokens": 3000}
                },
                "output_token_details": {"text_tokens": 100, "audio_tokens": 700}
            }
        }
    });
    let expected = Usage {
        input: 5000,
        cache_read: 3500,
        cache_read_audio: 3000,
        audio_input: 1000,
        output: 800,
        audio_output: 700,
        ..Usage::default()
    };
    assert_eq!(openai::realtime_from_json(&event), Ok(expected));
    assert_eq!(openai::realtime_from_json(&event["response"]), Ok(expected));
    assert_eq!(
        openai::realtime_from_json(&event["response"]["usage"]),
        Ok(expected)
    );
    let typed: openai::RealtimeUsage =
        serde_json::from_value(event["response"]["usage"].clone()).unwrap_or_default();
    assert_eq!(typed.token_usage(), Some(expected));
}

#[test]
fn openai_realtime_splits_cached_images() {
    // A turn with a picture: 3 000 input tokens (1 000 text, 1 200 audio, 800 image), 1 500 of
    // them cached (400 text, 700 audio, 400 image).
    let usage = json!({
        "total_tokens": 3100, "input_tokens": 3000, "output_tokens": 100,
        "input_token_details": {
            "cached_tokens": 1500, "text_tokens": 1000, "audio_tokens": 1200, "image_tokens": 800,
            "cached_tokens_details": {"text_tokens": 400, "audio_tokens": 700, "image_tokens": 400}
        },
        "output_token_details": {"text_tokens": 100, "audio_tokens": 0}
    });
    let expected = Usage {
        input: 3000,
        cache_read: 1500,
        cache_read_audio: 700,
        cache_read_image: 400,
        audio_input: 500,
        image_input: 400,
        output: 100,
        ..Usage::default()
    };
    assert_eq!(openai::realtime_from_json(&usage), Ok(expected));
    let typed: openai::RealtimeUsage = serde_json::from_value(usage).unwrap_or_default();
    assert_eq!(typed.token_usage(), Some(expected));
    assert_eq!(expected.uncached_input(), 600);
}

#[test]
fn openai_images_output_is_image_tokens_unless_split() {
    // gpt-image-1 editing a picture: the prompt's 40 image tokens apart from its 10 text ones;
    // every output token is an image token.
    let edit = json!({
        "created": 1_713_833_628,
        "data": [{"b64_json": "…"}],
        "usage": {
            "total_tokens": 100, "input_tokens": 50, "output_tokens": 50,
            "input_tokens_details": {"text_tokens": 10, "image_tokens": 40}
        }
    });
    let expected = Usage {
        input: 50,
        image_input: 40,
        output: 50,
        image_output: 50,
        ..Usage::default()
    };
    assert_eq!(openai::images_from_json(&edit), Ok(expected));
    assert_eq!(openai::images_from_json(&edit["usage"]), Ok(expected));
    let typed: openai::ImagesResponse = serde_json::from_value(edit).unwrap_or_default();
    assert_eq!(typed.token_usage(), Some(expected));
    // Newer models say how many output tokens are images (the rest is text).
    let split = json!({
        "type": "image_generation.completed",
        "usage": {
            "total_tokens": 1_300, "input_tokens": 100, "output_tokens": 1_200,
            "input_tokens_details": {"text_tokens": 100, "image_tokens": 0},
            "output_tokens_details": {"text_tokens": 144, "image_tokens": 1_056}
        }
    });
    let expected = Usage {
        input: 100,
        output: 1_200,
        image_output: 1_056,
        ..Usage::default()
    };
    assert_eq!(openai::images_from_json(&split), Ok(expected));
    let typed: openai::ImagesResponse = serde_json::from_value(split).unwrap_or_default();
    assert_eq!(typed.token_usage(), Some(expected));
}

#[test]
fn gemini_audio_by_modality() {
    // 10 000 prompt tokens: 6 000 audio of which 2 000 cached; the candidates hold 300 audio
    // tokens (a native-audio model).
    let response = json!({
        "modelVersion": "gemini-2.5-flash",
        "usageMetadata": {
            "promptTokenCount": 10000, "cachedContentTokenCount": 3000,
            "candidatesTokenCount": 400, "totalTokenCount": 10400,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 4000},
                                    {"modality": "AUDIO", "tokenCount": 6000}],
            "cacheTokensDetails": [{"modality": "TEXT", "tokenCount": 1000},
                                   {"modality": "AUDIO", "tokenCount": 2000}],
            "candidatesTokensDetails": [{"modality": "AUDIO", "tokenCount": 300},
                                        {"modality": "TEXT", "tokenCount": 100}]
        }
    });
    let expected = Usage {
        input: 10000,
        cache_read: 3000,
        cache_read_audio: 2000,
        audio_input: 4000,
        output: 400,
        audio_output: 300,
        ..Usage::default()
    };
    reads_as::<gemini::GenerateContentResponse>(gemini::from_json, response, expected);
}

#[test]
fn gemini_prompt_images_by_modality() {
    // 2 000 prompt tokens: 1 290 image (516 of them cached), 710 text; the cached content's
    // split is given.
    let response = json!({
        "modelVersion": "gemini-2.5-flash",
        "usageMetadata": {
            "promptTokenCount": 2000, "cachedContentTokenCount": 600,
            "candidatesTokenCount": 50, "totalTokenCount": 2050,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 710},
                                    {"modality": "IMAGE", "tokenCount": 1290}],
            "cacheTokensDetails": [{"modality": "TEXT", "tokenCount": 84},
                                   {"modality": "IMAGE", "tokenCount": 516}]
        }
    });
    let expected = Usage {
        input: 2000,
        cache_read: 600,
        cache_read_image: 516,
        image_input: 774,
        output: 50,
        ..Usage::default()
    };
    reads_as::<gemini::GenerateContentResponse>(gemini::from_json, response, expected);
}

#[test]
fn gemini_generated_images_are_image_output() {
    let response = json!({
        "modelVersion": "gemini-2.5-flash-image",
        "usageMetadata": {
            "promptTokenCount": 12, "candidatesTokenCount": 1300, "totalTokenCount": 1312,
            "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": 1290},
                                        {"modality": "TEXT", "tokenCount": 10}]
        }
    });
    let expected = Usage {
        input: 12,
        output: 1300,
        image_output: 1290,
        ..Usage::default()
    };
    reads_as::<gemini::GenerateContentResponse>(gemini::from_json, response, expected);
}

#[test]
fn null_counts_read_as_zero_in_the_typed_responses_as_in_json() {
    // As some OpenAI-compatible servers send them.
    let response = json!({
        "model": "gpt-4o-mini",
        "usage": {
            "prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120,
            "prompt_tokens_details": {"cached_tokens": null, "audio_tokens": null},
            "completion_tokens_details": {"reasoning_tokens": null, "audio_tokens": null}
        }
    });
    let expected = Usage::new(100, 20);
    assert_eq!(openai::chat_from_json(&response), Ok(expected));
    let typed: Result<openai::ChatCompletion, _> = serde_json::from_value(response);
    assert_eq!(typed.ok().and_then(|t| t.token_usage()), Some(expected));
    let anthropic = json!({"input_tokens": 10, "output_tokens": 2,
        "cache_creation_input_tokens": null, "cache_read_input_tokens": null});
    let typed: Result<anthropic::MessagesUsage, _> = serde_json::from_value(anthropic);
    assert_eq!(
        typed.ok().and_then(|t| t.token_usage()),
        Some(Usage::new(10, 2))
    );
}

#[test]
fn xai_reasoning_outside_the_completion_tokens_is_added_to_the_output() {
    // grok-3-mini: 2 completion tokens and 317 of reasoning, the total counting both.
    let grok = |completion: u64, reasoning: u64, total: u64| {
        json!({"model": "grok-3-mini", "usage": {
            "prompt_tokens": 12, "completion_tokens": completion, "total_tokens": total,
            "completion_tokens_details": {"reasoning_tokens": reasoning}
        }})
    };
    let usage = |output: u64, reasoning: u64| Usage {
        input: 12,
        output,
        reasoning,
        ..Usage::default()
    };
    for (response, expected) in [
        (grok(2, 317, 331), usage(319, 317)),
        // Less reasoning than text: still apart, by the total.
        (grok(400, 300, 712), usage(700, 300)),
        // OpenAI's convention, reasoning inside the completion tokens: as it is.
        (grok(400, 300, 412), usage(400, 300)),
    ] {
        assert_eq!(
            openai::chat_from_json(&response),
            Ok(expected),
            "{response}"
        );
        let typed: openai::ChatCompletion = serde_json::from_value(response).unwrap_or_default();
        assert_eq!(typed.token_usage(), Some(expected));
    }
}

#[test]
fn deepseek_cache_hits_are_cache_reads() {
    let response = json!({
        "model": "deepseek-chat",
        "usage": {
            "prompt_tokens": 10000, "completion_tokens": 300, "total_tokens": 10300,
            "prompt_cache_hit_tokens": 9000, "prompt_cache_miss_tokens": 1000
        }
    });
    let expected = Usage {
        input: 10000,
        cache_read: 9000,
        output: 300,
        ..Usage::default()
    };
    reads_as::<openai::ChatCompletion>(openai::chat_from_json, response, expected);
}

#[test]
fn bad_payloads_are_typed_errors() {
    assert_eq!(
        openai::chat_from_json(&json!({"choices": []})),
        Err(AdapterError::NoUsage("usage"))
    );
    assert!(matches!(
        openai::chat_from_json(&json!({"usage": {"prompt_tokens": -1}})),
        Err(AdapterError::BadCount { .. })
    ));
    assert!(matches!(
        gemini::from_json(&json!({"usageMetadata": {"promptTokenCount": "12"}})),
        Err(AdapterError::BadCount { .. })
    ));
    assert!(matches!(
        openai::chat_from_json(
            &json!({"usage": {"prompt_tokens": 10, "prompt_tokens_details": {"cached_tokens": 11}}})
        ),
        Err(AdapterError::Inconsistent(_))
    ));
    assert!(matches!(
        openai::chat_from_json(&json!({"usage": {"prompt_tokens": 1.5}})),
        Err(AdapterError::BadCount { .. })
    ));
}

#[test]
fn anthropic_web_searches_are_counted_from_server_tool_use() {
    let response = json!({
        "id": "msg_1", "type": "message", "model": "claude-sonnet-4-5",
        "usage": {"input_tokens": 5000, "cache_read_input_tokens": 0,
                  "cache_creation_input_tokens": 0, "output_tokens": 700,
                  "server_tool_use": {"web_search_requests": 3, "web_fetch_requests": 1}}
    });
    let expected = Usage {
        input: 5_000,
        output: 700,
        web_search_requests: 3,
        ..Usage::default()
    };
    reads_as::<anthropic::Message>(anthropic::from_json, response, expected);

    // A stream's deltas carry the searches so far; they overwrite, as the token counts do.
    let mut stream = anthropic::StreamUsage::default();
    let start = json!({"type": "message_start", "message": {"model": "claude-sonnet-4-5",
        "usage": {"input_tokens": 5000, "output_tokens": 1}}});
    let delta = |searches: u64| {
        json!({"type": "message_delta", "usage": {"output_tokens": 700,
               "server_tool_use": {"web_search_requests": searches}}})
    };
    assert_eq!(stream.update(&start).map(|u| u.web_search_requests), Ok(0));
    assert_eq!(
        stream.update(&delta(2)).map(|u| u.web_search_requests),
        Ok(2)
    );
    assert_eq!(stream.update(&delta(3)), Ok(expected));
    // A delta without the tool counts keeps them.
    let output_only = json!({"type": "message_delta", "usage": {"output_tokens": 710}});
    assert_eq!(
        stream.update(&output_only).map(|u| u.web_search_requests),
        Ok(3)
    );
}

#[test]
fn responses_web_searches_are_the_output_items_that_searched() {
    let response = json!({
        "id": "resp_1", "object": "response", "model": "gpt-5",
        "output": [
            {"type": "web_search_call", "id": "ws_1", "status": "completed",
             "action": {"type": "search", "query": "rust tracing"}},
            {"type": "web_search_call", "id": "ws_2", "status": "completed",
             "action": {"type": "open_page", "url": "https://docs.rs"}},
            {"type": "web_search_call", "id": "ws_3", "status": "completed"},
            {"type": "message", "id": "msg_1", "content": []}
        ],
        "usage": {"input_tokens": 9000, "output_tokens": 400, "total_tokens": 9400}
    });
    let expected = Usage {
        input: 9_000,
        output: 400,
        web_search_requests: 2,
        ..Usage::default()
    };
    reads_as::<openai::Response>(openai::responses_from_json, response.clone(), expected);
    // The stream's last event holds the response, searches and all.
    let completed = json!({"type": "response.completed", "response": response});
    assert_eq!(openai::responses_from_json(&completed), Ok(expected));
    // The usage object alone does not count them.
    assert_eq!(
        openai::responses_from_json(&response["usage"]).map(|u| u.web_search_requests),
        Ok(0)
    );
}

#[test]
fn responses_file_searches_are_the_file_search_call_items() {
    let response = json!({
        "id": "resp_2", "object": "response", "model": "gpt-4.1-mini",
        "output": [
            {"type": "file_search_call", "id": "fs_1", "status": "completed",
             "queries": ["refund policy", "refund window"], "results": null},
            {"type": "file_search_call", "id": "fs_2", "status": "completed",
             "queries": ["shipping"], "results": null},
            {"type": "message", "id": "msg_1", "content": []}
        ],
        "usage": {"input_tokens": 12000, "output_tokens": 300, "total_tokens": 12300}
    });
    let expected = Usage {
        input: 12_000,
        output: 300,
        file_search_calls: 2,
        ..Usage::default()
    };
    reads_as::<openai::Response>(openai::responses_from_json, response.clone(), expected);
    let completed = json!({"type": "response.completed", "response": response});
    assert_eq!(openai::responses_from_json(&completed), Ok(expected));
}

#[test]
fn responses_generated_images_and_code_interpreter_sessions_are_counted_from_the_items() {
    let response = json!({
        "id": "resp_3", "object": "response", "model": "gpt-5",
        "output": [
            {"type": "code_interpreter_call", "id": "ci_1", "status": "completed",
             "container_id": "cntr_a", "code": "print(1)", "outputs": null},
            {"type": "code_interpreter_call", "id": "ci_2", "status": "completed",
             "container_id": "cntr_a", "code": "print(2)", "outputs": null},
            {"type": "code_interpreter_call", "id": "ci_3", "status": "completed",
             "container_id": "cntr_b", "code": "print(3)", "outputs": null},
            {"type": "code_interpreter_call", "id": "ci_4", "status": "completed",
             "code": "print(4)", "outputs": null},
            {"type": "code_interpreter_call", "id": "ci_5", "status": "completed",
             "container_id": "", "code": "print(5)", "outputs": null},
            {"type": "image_generation_call", "id": "ig_1", "status": "completed",
             "result": "aGk=", "size": "1024x1024", "quality": "medium"},
            {"type": "image_generation_call", "id": "ig_2", "status": "completed",
             "result": "aGk=", "size": "1024x1024", "quality": "medium"},
            {"type": "image_generation_call", "id": "ig_3", "status": "failed", "result": null},
            {"type": "message", "id": "msg_1", "content": []}
        ],
        "usage": {"input_tokens": 2000, "output_tokens": 500, "total_tokens": 2500}
    });
    // Two containers (one ran code twice) and two calls naming none, each a session of its
    // own; two images (the failed one is not billed).
    let expected = Usage {
        input: 2_000,
        output: 500,
        image_generation_calls: 2,
        code_interpreter_sessions: 4,
        ..Usage::default()
    };
    reads_as::<openai::Response>(openai::responses_from_json, response.clone(), expected);
    let completed = json!({"type": "response.completed", "response": response});
    assert_eq!(openai::responses_from_json(&completed), Ok(expected));
}

#[test]
fn gemini_grounding_counts_queries_from_gemini_3_and_prompts_before_it() {
    let grounded = |model: &str| {
        json!({
            "modelVersion": model,
            "candidates": [{
                "content": {"parts": [{"text": "…"}], "role": "model"},
                "groundingMetadata": {
                    "webSearchQueries": ["euro 2024 winner", "euro 2024 final score", "spain squad"],
                    "groundingChunks": [{"web": {"uri": "https://example.com", "title": "x"}}]
                }
            }],
            "usageMetadata": {"promptTokenCount": 100, "candidatesTokenCount": 50,
                              "totalTokenCount": 150}
        })
    };
    let searched = |searches: u64| Usage {
        web_search_requests: searches,
        ..Usage::new(100, 50)
    };
    // Gemini 3 bills each search query; 2.5 and earlier one per grounded prompt.
    reads_as::<gemini::GenerateContentResponse>(
        gemini::from_json,
        grounded("gemini-3-pro-preview"),
        searched(3),
    );
    reads_as::<gemini::GenerateContentResponse>(
        gemini::from_json,
        grounded("gemini-2.5-flash"),
        searched(1),
    );
    reads_as::<gemini::GenerateContentResponse>(
        gemini::from_json,
        grounded("models/gemini-2.0-flash-001"),
        searched(1),
    );
    // An answer the model gave without searching is no grounded prompt.
    let mut unsearched = grounded("gemini-2.5-flash");
    unsearched["candidates"][0]["groundingMetadata"]["webSearchQueries"] = json!([]);
    reads_as::<gemini::GenerateContentResponse>(gemini::from_json, unsearched, searched(0));
    // The usage object alone does not count them.
    assert_eq!(
        gemini::from_json(&grounded("gemini-3-pro-preview")["usageMetadata"]),
        Ok(searched(0))
    );
}

#[test]
fn chat_search_models_search_before_every_answer() {
    let response = |model: &str| {
        json!({
            "id": "chatcmpl-1", "object": "chat.completion", "model": model,
            "choices": [{"message": {"role": "assistant", "content": "…",
                "annotations": [{"type": "url_citation", "url_citation": {"url": "https://example.com"}}]}}],
            "usage": {"prompt_tokens": 500, "completion_tokens": 200, "total_tokens": 700}
        })
    };
    let searched = |searches: u64| Usage {
        web_search_requests: searches,
        ..Usage::new(500, 200)
    };
    reads_as::<openai::ChatCompletion>(
        openai::chat_from_json,
        response("gpt-4o-mini-search-preview-2025-03-11"),
        searched(1),
    );
    reads_as::<openai::ChatCompletion>(
        openai::chat_from_json,
        response("gpt-5-search-api"),
        searched(1),
    );
    reads_as::<openai::ChatCompletion>(openai::chat_from_json, response("gpt-4o"), searched(0));
}

#[test]
fn null_lists_the_search_counts_look_into_read_as_empty() {
    let gemini_response = json!({
        "modelVersion": "gemini-3-pro-preview",
        "candidates": [{"groundingMetadata": {"webSearchQueries": null}}],
        "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5}
    });
    reads_as::<gemini::GenerateContentResponse>(
        gemini::from_json,
        gemini_response,
        Usage::new(10, 5),
    );
    let responses = json!({
        "model": "gpt-5", "output": null,
        "usage": {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}
    });
    reads_as::<openai::Response>(openai::responses_from_json, responses, Usage::new(10, 5));
}

#[test]
fn perplexity_sonar_answers_count_their_request_and_say_their_search_context_size() {
    // A Sonar answer as Perplexity sends it: its request fee is one search at its size.
    let sonar = json!({
        "id": "effa842e", "model": "sonar", "created": 1_755_452_599,
        "usage": {"prompt_tokens": 9, "completion_tokens": 163, "total_tokens": 172,
                  "search_context_size": "low",
                  "cost": {"input_tokens_cost": 0.0, "output_tokens_cost": 0.0,
                           "request_cost": 0.005, "total_cost": 0.005}},
        "citations": ["https://example.com"],
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "…"}}]
    });
    let typed = reads_as::<openai::ChatCompletion>(
        openai::chat_from_json,
        sonar,
        Usage {
            web_search_requests: 1,
            ..Usage::new(9, 163)
        },
    );
    assert_eq!(typed.search_context_size(), Some("low"));
    // Through a gateway that names it `perplexity/sonar-pro` and drops the size: still one.
    let gateway = json!({
        "model": "perplexity/sonar-pro",
        "usage": {"prompt_tokens": 9, "completion_tokens": 163, "total_tokens": 172}
    });
    let typed = reads_as::<openai::ChatCompletion>(
        openai::chat_from_json,
        gateway,
        Usage {
            web_search_requests: 1,
            ..Usage::new(9, 163)
        },
    );
    assert_eq!(typed.search_context_size(), None);

    // Sonar Deep Research, with Perplexity's own cost breakdown of the same counts: citation
    // tokens at the input price, reasoning apart from and outside the completion tokens, 54
    // searches billed each.
    let deep = json!({
        "model": "sonar-deep-research",
        "usage": {"prompt_tokens": 1_188, "completion_tokens": 4_240, "total_tokens": 5_428,
                  "citation_tokens": 8_014, "num_search_queries": 54,
                  "reasoning_tokens": 92_431, "search_context_size": "low",
                  "cost": {"input_tokens_cost": 0.00238, "output_tokens_cost": 0.03392,
                           "citation_tokens_cost": 0.01603, "reasoning_tokens_cost": 0.27729,
                           "search_queries_cost": 0.27, "total_cost": 0.59962}}
    });
    let expected = Usage {
        input: 1_188 + 8_014,
        output: 4_240 + 92_431,
        reasoning: 92_431,
        web_search_requests: 54,
        ..Usage::default()
    };
    reads_as::<openai::ChatCompletion>(openai::chat_from_json, deep.clone(), expected);
    // Priced at Perplexity's prices ($2 in and citations, $8 out, $3 reasoning, $5 per 1 000
    // searches), the total is Perplexity's to the digit it gives (0.59962; exactly 0.599617).
    let table = PriceTable::from_text(
        "version = \"t\"\n[models.\"sonar-deep-research\"]\ninput = \"2\"\noutput = \"8\"\nreasoning = \"3\"\nweb_search_requests = \"0.005\"\n",
        "t.toml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let quote = table
        .quote("sonar-deep-research", &expected, ServiceTier::Standard)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(quote.total().to_string(), "0.599617");
    // The embedded table has Perplexity's prices: the same, and Perplexity's own Sonar example
    // (500 in, 200 out, low context: $0.0057; at high, $0.0127).
    let embedded = PriceTable::default();
    let total = |model: &str, usage: &Usage, size: Option<SearchContextSize>| {
        let terms = CallTerms {
            search_context_size: size,
            ..CallTerms::default()
        };
        embedded
            .quote(model, usage, terms)
            .map(|q| q.total().to_string())
            .map_err(|e| e.to_string())
    };
    assert_eq!(
        total(
            "sonar-deep-research",
            &expected,
            Some(SearchContextSize::Low)
        ),
        Ok("0.599617".to_owned())
    );
    let sonar_call = Usage {
        web_search_requests: 1,
        ..Usage::new(500, 200)
    };
    for (size, cost) in [
        (SearchContextSize::Low, "0.0057"),
        (SearchContextSize::Medium, "0.0087"),
        (SearchContextSize::High, "0.0127"),
    ] {
        assert_eq!(
            total("perplexity/sonar", &sonar_call, Some(size)),
            Ok(cost.to_owned())
        );
    }

    // A top-level reasoning count where the completion's details count it too is the same
    // tokens: not added twice.
    let both = json!({
        "model": "some-gateway-model",
        "usage": {"prompt_tokens": 10, "completion_tokens": 50, "total_tokens": 60,
                  "reasoning_tokens": 30,
                  "completion_tokens_details": {"reasoning_tokens": 30}}
    });
    reads_as::<openai::ChatCompletion>(
        openai::chat_from_json,
        both,
        Usage {
            reasoning: 30,
            ..Usage::new(10, 50)
        },
    );
    // A bad count is an error naming it, as any.
    let bad = json!({"model": "sonar", "usage": {"prompt_tokens": 1, "completion_tokens": 1,
        "num_search_queries": -1}});
    assert!(matches!(
        openai::chat_from_json(&bad),
        Err(AdapterError::BadCount { field, .. }) if field == "num_search_queries"
    ));
}

#[test]
fn a_responses_answer_echoes_its_web_search_tools_context_size() {
    let response = json!({
        "model": "gpt-4.1",
        "tools": [{"type": "function", "name": "f"},
                  {"type": "web_search_preview", "search_context_size": "high"}],
        "output": [{"type": "web_search_call", "status": "completed",
                    "action": {"type": "search", "query": "q"}}],
        "usage": {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}
    });
    let typed = reads_as::<openai::Response>(
        openai::responses_from_json,
        response,
        Usage {
            web_search_requests: 1,
            ..Usage::new(10, 5)
        },
    );
    assert_eq!(typed.search_context_size(), Some("high"));
    let unstated = openai::Response {
        tools: vec![openai::ToolSpec {
            kind: "web_search".into(),
            search_context_size: None,
        }],
        ..openai::Response::default()
    };
    assert_eq!(unstated.search_context_size(), None);
}

#[test]
fn the_cost_a_provider_reports_is_read_exactly_from_its_decimal_text() {
    let reported = |usage: Value| {
        let response = json!({"model": "m", "usage": usage});
        serde_json::from_value::<openai::ChatCompletion>(response)
            .map(|typed| typed.reported_cost().map(|money| money.to_string()))
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let counts = |extra: Value| {
        let mut usage = json!({"prompt_tokens": 194, "completion_tokens": 2, "total_tokens": 196});
        if let (Some(usage), Value::Object(extra)) = (usage.as_object_mut(), extra) {
            usage.extend(extra);
        }
        usage
    };
    // OpenRouter: a number of dollars (credits), read as its digits, not as a float's.
    assert_eq!(
        reported(counts(json!({"cost": 0.000_123_45}))),
        Some("0.00012345".to_owned())
    );
    assert_eq!(reported(counts(json!({"cost": 0}))), Some("0".to_owned()));
    // On the user's own key, `cost` is OpenRouter's fee: the provider's charge is upstream.
    assert_eq!(
        reported(counts(json!({"cost": 0.000_05, "is_byok": true,
                                "cost_details": {"upstream_inference_cost": 0.001}}))),
        Some("0.001".to_owned())
    );
    assert_eq!(
        reported(counts(json!({"cost": 0.000_05, "is_byok": true}))),
        None
    );
    assert_eq!(
        reported(counts(json!({"cost": 0.000_05, "is_byok": false,
                                "cost_details": {"upstream_inference_cost": 0.001}}))),
        Some("0.00005".to_owned())
    );
    // Perplexity: a breakdown and its total.
    assert_eq!(
        reported(counts(
            json!({"cost": {"request_cost": 0.005, "total_cost": 0.005}})
        )),
        Some("0.005".to_owned())
    );
    // Nothing, or nothing usable: no reported cost, and the usage is read all the same.
    for usage in [
        counts(json!({})),
        counts(json!({"cost": null})),
        counts(json!({"cost": "0.01"})),
        counts(json!({"cost": -0.01})),
        counts(json!({"cost": {"input_tokens_cost": 0.01}})),
        counts(json!({"cost": [1, 2]})),
    ] {
        assert_eq!(reported(usage.clone()), None, "{usage}");
        let typed: openai::ChatCompletion =
            serde_json::from_value(json!({"model": "m", "usage": usage}))
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(typed.token_usage(), Some(Usage::new(194, 2)));
    }
    // OpenRouter's Responses API reports it the same way.
    let response: openai::Response = serde_json::from_value(json!({
        "model": "openai/gpt-4o", "output": [],
        "usage": {"input_tokens": 194, "output_tokens": 2, "total_tokens": 196,
                  "cost": 0.000_505, "is_byok": false}
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.token_usage(), Some(Usage::new(194, 2)));
    assert_eq!(
        response.reported_cost().map(|money| money.to_string()),
        Some("0.000505".to_owned())
    );
    // The `usage` objects alone, as a client that keeps only them hands them over.
    let chat_usage: openai::ChatUsage =
        serde_json::from_value(counts(json!({"cost": 0.000_123_45})))
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(chat_usage.token_usage(), Some(Usage::new(194, 2)));
    assert_eq!(
        chat_usage.reported_cost().map(|money| money.to_string()),
        Some("0.00012345".to_owned())
    );
    let responses_usage: openai::ResponsesUsage = serde_json::from_value(json!({
        "input_tokens": 194, "output_tokens": 2, "total_tokens": 196, "cost": 0.000_505
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(responses_usage.token_usage(), Some(Usage::new(194, 2)));
    assert_eq!(
        responses_usage
            .reported_cost()
            .map(|money| money.to_string()),
        Some("0.000505".to_owned())
    );
}
