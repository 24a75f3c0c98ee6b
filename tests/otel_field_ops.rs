//! The layer's arbitrary span trees (`cost-layer/tests/support/field_ops.rs`) with
//! `tracing-opentelemetry` beside it and cost attributes on the exported spans: whichever of the
//! two layers is inside, the ledger is the one the cost layer keeps alone.

#[allow(dead_code)]
#[path = "../cost-layer/tests/support/field_ops.rs"]
mod field_ops;

use cost_layer::CostLayer;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use proptest::prelude::*;
use tracing_subscriber::prelude::*;

/// The ledger of the steps `bytes` describe, the cost layer beside `tracing-opentelemetry`
/// (inside it when `cost_inside`).
fn with_otel(bytes: &[u8], cost_inside: bool) -> cost_layer::LedgerSnapshot {
    // A provider without exporters: spans are built and dropped.
    let provider = SdkTracerProvider::builder().build();
    let (cost, ledger) = CostLayer::builder().otel_span_attributes(true).build();
    let dispatch = if cost_inside {
        let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer("field_ops"));
        tracing::Dispatch::new(tracing_subscriber::registry().with(cost).with(otel))
    } else {
        let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer("field_ops"));
        tracing::Dispatch::new(tracing_subscriber::registry().with(otel).with(cost))
    };
    field_ops::drive(bytes, dispatch);
    ledger.snapshot()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_ledger_is_the_same_with_tracing_opentelemetry_in_either_order(
        bytes in proptest::collection::vec(any::<u8>(), 0..768)
    ) {
        let (alone, _) = field_ops::run(&bytes);
        let expected = alone.snapshot();
        for cost_inside in [true, false] {
            let got = with_otel(&bytes, cost_inside);
            let same = field_ops::same_ledger(&got, &expected);
            prop_assert_eq!(same, Ok(()), "cost inside: {}", cost_inside);
        }
    }
}

/// Found by the property above: a call's cost attributes are priced as soon as its usage is
/// complete, with the model known then; a response model recorded after that charges the call
/// to that model, and the first one must not appear in the ledger with nothing charged to it.
#[test]
fn a_model_priced_only_for_the_exported_span_stays_out_of_the_ledger() {
    let provider = SdkTracerProvider::builder().build();
    let (cost, ledger) = CostLayer::builder().otel_span_attributes(true).build();
    let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer("test"));
    let subscriber = tracing_subscriber::registry().with(cost).with(otel);
    tracing::subscriber::with_default(subscriber, || {
        let call = tracing::info_span!(
            "chat",
            gen_ai.request.model = "gpt-4o",
            gen_ai.response.model = tracing::field::Empty,
            gen_ai.usage.input_tokens = tracing::field::Empty,
            gen_ai.usage.output_tokens = tracing::field::Empty,
        );
        call.record("gen_ai.usage.input_tokens", 1_000);
        call.record("gen_ai.usage.output_tokens", 100);
        call.record("gen_ai.response.model", "gpt-4o-mini");
    });
    let models: Vec<String> = ledger
        .snapshot()
        .by(cost_layer::Dimension::Model)
        .map(|(model, totals)| format!("{model}: {} calls", totals.llm_calls))
        .collect();
    assert_eq!(models, ["gpt-4o-mini: 1 calls"]);
}
