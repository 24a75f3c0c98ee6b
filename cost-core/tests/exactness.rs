//! Property tests of exact arithmetic: parsing, pricing and summing never lose a digit.

use cost_core::{
    ComponentPrices, ModelPrice, Money, PriceSchedule, ServiceTier, TokenPrice, Usage,
};
use proptest::prelude::*;

/// A price per token as (mantissa, exponent): mantissa × 10^-exponent USD.
fn price_parts() -> impl Strategy<Value = (u64, u32)> {
    (0_u64..10_000_000, 6_u32..=15)
}

fn price(mantissa: u64, exponent: u32) -> TokenPrice {
    TokenPrice::per_token(&format!("{mantissa}e-{exponent}")).unwrap_or_else(|e| panic!("{e}"))
}

/// The same price as units of 10⁻²⁴ computed independently.
fn units(mantissa: u64, exponent: u32) -> i128 {
    i128::from(mantissa) * 10_i128.pow(24 - exponent)
}

fn usage() -> impl Strategy<Value = Usage> {
    (0_u64..2_000_000, 0_u64..200_000, any::<[u8; 14]>()).prop_map(|(input, output, split)| {
        let cache_read = input / 255 * u64::from(split[0] / 3);
        let rest = input - cache_read;
        let cache_write = rest / 255 * u64::from(split[1] / 3);
        let cache_write_1h = (rest - cache_write) / 255 * u64::from(split[2] / 3);
        let uncached = rest - cache_write - cache_write_1h;
        let reasoning = output / 255 * u64::from(split[3] / 2);
        let audio_output = (output - reasoning) / 255 * u64::from(split[5] / 2);
        Usage {
            input,
            cache_read,
            cache_write,
            cache_write_1h,
            output,
            reasoning,
            audio_input: uncached / 255 * u64::from(split[4] / 2),
            image_input: uncached / 255 * u64::from(split[9] / 2),
            audio_output,
            cache_read_audio: cache_read / 255 * u64::from(split[6] / 2),
            cache_read_image: cache_read / 255 * u64::from(split[10] / 2),
            image_output: (output - reasoning - audio_output) / 255 * u64::from(split[7]),
            web_search_requests: u64::from(split[8] % 16),
            file_search_calls: u64::from(split[11] % 8),
            image_generation_calls: u64::from(split[12] % 4),
            code_interpreter_sessions: u64::from(split[13] % 3),
        }
    })
}

proptest! {
    /// Price × tokens is the exact product (or `None` past the range of money), on the fast
    /// path for common prices and the checked one beyond it.
    #[test]
    fn price_times_tokens_is_the_exact_product(
        units in prop_oneof![0_i128..(1_i128 << 64), 0_i128..=i128::MAX],
        tokens in prop_oneof![0_u64..2_000_000_000, any::<u64>()],
    ) {
        let price = TokenPrice::from_units(units).unwrap_or_else(|| panic!("negative"));
        let expected = (tokens as i128).checked_mul(units);
        prop_assert_eq!(price.times(tokens).map(|m| m.units()), expected);
    }

    #[test]
    fn exponent_and_plain_spellings_agree((m, e) in price_parts()) {
        let plain = format!("0.{}{}", "0".repeat(e as usize - 1), m);
        // 0.000…m has m's digits after e−1 zeros, i.e. m × 10^-(e−1+digits(m)).
        let digits = m.to_string().len() as u32;
        let from_plain = TokenPrice::per_token(&plain).unwrap_or_else(|e| panic!("{e}"));
        prop_assert_eq!(from_plain.units(), units(m, e - 1 + digits));
        prop_assert_eq!(price(m, e).units(), units(m, e));
    }

    #[test]
    fn money_to_f64_is_the_nearest_double(units in any::<i64>(), scale in 0_u32..=19) {
        // The nearest double to the exact decimal text, as the standard library parses it.
        let money = Money::from_units(i128::from(units) * 10_i128.pow(scale));
        let nearest: f64 = money.to_string().parse().unwrap_or(f64::NAN);
        prop_assert_eq!(money.to_f64(), nearest);
    }

    #[test]
    fn money_display_round_trips(units in any::<i64>(), scale in 0_u32..=19) {
        let money = Money::from_units(i128::from(units) * 10_i128.pow(scale));
        let shown = money.to_string();
        prop_assert_eq!(Money::from_decimal(&shown), Ok(money));
    }

    #[test]
    fn components_sum_to_the_total_and_match_an_independent_computation(
        usage in usage(),
        (im, ie) in price_parts(),
        (om, oe) in price_parts(),
        (cm, ce) in price_parts(),
        (am, ae) in price_parts(),
        (aom, aoe) in price_parts(),
        (cam, cae) in price_parts(),
        (iom, ioe) in price_parts(),
        (wm, we) in price_parts(),
        (iim, iie) in price_parts(),
        (cim, cie) in price_parts(),
        (fm, fe) in price_parts(),
        (gm, ge) in price_parts(),
        (xm, xe) in price_parts(),
    ) {
        let model = ModelPrice::flat(ComponentPrices {
            input: Some(price(im, ie)),
            output: Some(price(om, oe)),
            cache_read: Some(price(cm, ce)),
            audio_input: Some(price(am, ae)),
            audio_output: Some(price(aom, aoe)),
            cache_read_audio: Some(price(cam, cae)),
            image_output: Some(price(iom, ioe)),
            web_search_requests: Some(price(wm, we)),
            image_input: Some(price(iim, iie)),
            cache_read_image: Some(price(cim, cie)),
            file_search_calls: Some(price(fm, fe)),
            image_generation_calls: Some(price(gm, ge)),
            code_interpreter_sessions: Some(price(xm, xe)),
            ..ComponentPrices::default()
        }).unwrap_or_else(|e| panic!("{e}"));
        let priced = model.cost(&usage, ServiceTier::Standard).unwrap_or_else(|e| panic!("{e}"));
        let b = priced.breakdown;
        let parts = [
            b.uncached_input, b.cache_read, b.cache_write, b.cache_write_1h, b.output, b.reasoning,
            b.audio_input, b.audio_output, b.image_output, b.web_search, b.image_input,
            b.file_search, b.image_generation, b.code_interpreter,
        ];
        prop_assert_eq!(parts.iter().map(|m| m.units()).sum::<i128>(), priced.total().units());
        // Independent: cache writes bill at the input price; reasoning at the output price;
        // audio and images at their own prices.
        let expected = i128::from(
            usage.input - usage.cache_read - usage.audio_input - usage.image_input,
        ) * units(im, ie)
            + i128::from(usage.cache_read - usage.cache_read_audio - usage.cache_read_image)
                * units(cm, ce)
            + i128::from(usage.cache_read_audio) * units(cam, cae)
            + i128::from(usage.cache_read_image) * units(cim, cie)
            + i128::from(usage.audio_input) * units(am, ae)
            + i128::from(usage.image_input) * units(iim, iie)
            + i128::from(usage.output - usage.audio_output - usage.image_output) * units(om, oe)
            + i128::from(usage.audio_output) * units(aom, aoe)
            + i128::from(usage.image_output) * units(iom, ioe)
            + i128::from(usage.web_search_requests) * units(wm, we)
            + i128::from(usage.file_search_calls) * units(fm, fe)
            + i128::from(usage.image_generation_calls) * units(gm, ge)
            + i128::from(usage.code_interpreter_sessions) * units(xm, xe);
        prop_assert_eq!(priced.total().units(), expected);
        prop_assert_eq!(
            b.cache_savings.units(),
            i128::from(usage.cache_read - usage.cache_read_audio - usage.cache_read_image)
                * (units(im, ie) - units(cm, ce))
                + i128::from(usage.cache_read_audio) * (units(am, ae) - units(cam, cae))
                + i128::from(usage.cache_read_image) * (units(iim, iie) - units(cim, cie))
        );
    }

    #[test]
    fn no_drift_over_many_additions(costs in proptest::collection::vec((0_u64..1_000_000, price_parts()), 1..2_000)) {
        let mut total = Money::ZERO;
        let mut expected: i128 = 0;
        for (tokens, (m, e)) in &costs {
            total += price(*m, *e).times(*tokens).unwrap_or_else(|| panic!("overflow"));
            expected += i128::from(*tokens) * units(*m, *e);
        }
        prop_assert_eq!(total.units(), expected);
    }

    #[test]
    fn tier_boundary_is_strictly_greater(threshold in 1_u64..10_000_000) {
        let mut standard = PriceSchedule::flat(ComponentPrices {
            input: Some(price(1, 6)),
            output: Some(price(2, 6)),
            ..ComponentPrices::default()
        });
        standard.tier_mut(threshold).input = Some(price(3, 6));
        let model = ModelPrice::new(standard, [None, None, None]).unwrap_or_else(|e| panic!("{e}"));
        let at = model.cost(&Usage::new(threshold, 0), ServiceTier::Standard).unwrap_or_else(|e| panic!("{e}"));
        let above = model.cost(&Usage::new(threshold + 1, 0), ServiceTier::Standard).unwrap_or_else(|e| panic!("{e}"));
        prop_assert_eq!(at.context_tier, None);
        prop_assert_eq!(at.total().units(), i128::from(threshold) * units(1, 6));
        prop_assert_eq!(above.context_tier, Some(threshold));
        prop_assert_eq!(above.total().units(), i128::from(threshold + 1) * units(3, 6));
    }
}

#[test]
fn ten_million_costs_sum_exactly() {
    // Σ_{k=1..10⁷} k × 3.75e-7 = 3.75e-7 × 10⁷(10⁷+1)/2 = 18 750 001.875
    let price = TokenPrice::per_token("3.75e-7").unwrap_or_else(|e| panic!("{e}"));
    let total: Money = (1..=10_000_000_u64)
        .map(|k| price.times(k).unwrap_or_else(|| panic!("overflow")))
        .sum();
    assert_eq!(total.to_string(), "18750001.875");
}

#[test]
fn a_trillion_dollar_total_does_not_overflow() {
    // 10⁶ calls of $10⁶ each.
    let call = Money::from_usd(1_000_000);
    let mut total = Money::ZERO;
    for _ in 0..1_000_000 {
        total = total
            .checked_add(call)
            .unwrap_or_else(|| panic!("overflow"));
    }
    assert_eq!(total.to_string(), "1000000000000");
}
