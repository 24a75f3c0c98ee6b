//! Exact money and exact per-token prices.
//!
//! Both are fixed-point integers in units of 10⁻²⁴ USD ([`UNITS_PER_USD`]): a price such as
//! `3.75e-7` USD per token is held exactly, a cost of `tokens × price` is an exact integer
//! product, and sums are exact integer sums. Nothing here goes through `f64`; decimal text is
//! parsed digit by digit ([`parse_decimal`]).
//!
//! The range of an `i128` in these units is ±1.7 × 10¹⁴ USD, so totals of 10¹² USD and any sum of
//! 10⁷ call costs fit with room to spare. Arithmetic that could leave the range is checked
//! ([`Money::checked_add`], [`TokenPrice::times`]); the operators saturate instead of wrapping and
//! are documented to do so.

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Sub, SubAssign};
use std::str::FromStr;

use thiserror::Error;

/// Number of decimal places held exactly: amounts are integers in units of 10⁻²⁴ USD.
pub const SCALE: u32 = 24;

/// Units of [`Money`] (and of [`TokenPrice`]) in one US dollar: 10²⁴.
pub const UNITS_PER_USD: i128 = 10_i128.pow(SCALE);

/// An exact amount of US dollars.
///
/// Displayed (and serialised) as an exact decimal string with no trailing zeros: `"0.0045"`;
/// its `Debug` says the same in dollars, `Money(0.0045)`, not in units.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(i128);

/// An exact price of one token, in US dollars.
///
/// Never negative. Built from decimal text per token ([`TokenPrice::per_token`]) or per million
/// tokens ([`TokenPrice::per_million`]), the unit providers publish. Its `Debug` gives the
/// dollars per token, `TokenPrice(0.0000025)`.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TokenPrice(i128);

/// Why a decimal text could not be read as an exact amount.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecimalError {
    /// The text is not a decimal number (`3e-06`, `0.000003`, `2.50`, `12`).
    #[error("`{0}` is not a decimal number")]
    Syntax(String),
    /// A price or cost below zero.
    #[error("`{0}` is negative; prices and costs are never below zero")]
    Negative(String),
    /// More decimal places than the 24 this library holds exactly.
    #[error("`{0}` has more than 24 decimal places of a dollar and cannot be held exactly")]
    TooPrecise(String),
    /// Larger than the representable range.
    #[error("`{0}` is too large")]
    TooLarge(String),
}

impl Money {
    /// Zero dollars.
    pub const ZERO: Money = Money(0);

    /// An amount from its raw units of 10⁻²⁴ USD.
    pub const fn from_units(units: i128) -> Self {
        Money(units)
    }

    /// The raw units of 10⁻²⁴ USD.
    pub const fn units(self) -> i128 {
        self.0
    }

    /// A whole number of dollars.
    pub const fn from_usd(dollars: i64) -> Self {
        Money(dollars as i128 * UNITS_PER_USD)
    }

    /// Parses an exact amount of dollars from decimal text (`"12.50"`, `"1e-3"`, `"-0.25"`).
    pub fn from_decimal(text: &str) -> Result<Self, DecimalError> {
        let trimmed = text.trim();
        let (negative, digits) = match trimmed.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        let units = parse_decimal(digits, SCALE).map_err(|e| e.with_text(text))?;
        Ok(Money(if negative { -units } else { units }))
    }

    /// Parses an amount that is never below zero (a cost, a charge a provider reported) from
    /// decimal text, as [`Money::from_decimal`] does; a negative one is
    /// [`DecimalError::Negative`].
    pub fn from_non_negative_decimal(text: &str) -> Result<Self, DecimalError> {
        let money = Money::from_decimal(text)?;
        if money.is_negative() {
            return Err(DecimalError::Negative(text.to_owned()));
        }
        Ok(money)
    }

    /// Whether this cost, computed from a price table, agrees with the cost a provider
    /// reported for the same call (`reported`): they may differ by the provider's rounding,
    /// and no more. Rounding is allowed up to $0.00001 (Perplexity gives its totals to five
    /// places) or 1% of the larger amount, whichever is more; a price changed by the provider
    /// moves a cost by more than that.
    pub fn agrees_with_reported(self, reported: Money) -> bool {
        const ROUNDING: u128 = UNITS_PER_USD.unsigned_abs() / 100_000;
        let difference = self.0.abs_diff(reported.0);
        let larger = self.0.unsigned_abs().max(reported.0.unsigned_abs());
        difference <= ROUNDING.max(larger / 100)
    }

    /// `true` for exactly zero dollars.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// `true` when below zero.
    pub const fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// Exact sum, or `None` when it would leave the representable range.
    pub const fn checked_add(self, other: Money) -> Option<Money> {
        match self.0.checked_add(other.0) {
            Some(units) => Some(Money(units)),
            None => None,
        }
    }

    /// Exact difference, or `None` when it would leave the representable range.
    pub const fn checked_sub(self, other: Money) -> Option<Money> {
        match self.0.checked_sub(other.0) {
            Some(units) => Some(Money(units)),
            None => None,
        }
    }

    /// Sum that stops at the end of the range (±1.7 × 10¹⁴ USD) instead of wrapping.
    pub const fn saturating_add(self, other: Money) -> Money {
        Money(self.0.saturating_add(other.0))
    }

    /// The amount as an `f64` number of dollars, for display and metrics only: the conversion
    /// rounds, so never feed the result back into arithmetic.
    pub fn to_f64(self) -> f64 {
        self.to_f64_exact_division()
            // Parsing the exact decimal text gives the correctly rounded nearest f64.
            .unwrap_or_else(|| self.to_string().parse().unwrap_or(f64::NAN))
    }

    /// The fast path of [`Money::to_f64`]: `units = n × 10^k` with `n < 2^53` and
    /// `10^(24 - k) ≤ 10^22` are both exact doubles, and one IEEE division of exact operands is
    /// correctly rounded. `None` when the amount has too many significant digits.
    fn to_f64_exact_division(self) -> Option<f64> {
        const E12: u128 = 1_000_000_000_000;
        const EXACT_INTEGER: u64 = 1 << 53;
        // 10^0 ..= 10^22, each exact in binary64.
        const POWERS_OF_TEN: [f64; 23] = [
            1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
            1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
        ];
        let units = self.0.unsigned_abs();
        let (mut n, mut exponent) = if units.is_multiple_of(E12) {
            (u64::try_from(units / E12).ok()?, SCALE - 12)
        } else {
            (u64::try_from(units).ok()?, SCALE)
        };
        while n != 0 && n % 10 == 0 && exponent > 0 {
            n /= 10;
            exponent -= 1;
        }
        if n >= EXACT_INTEGER {
            return None;
        }
        let magnitude = n as f64 / *POWERS_OF_TEN.get(exponent as usize)?;
        Some(if self.0 < 0 { -magnitude } else { magnitude })
    }
}

impl Add for Money {
    type Output = Money;
    /// Exact addition; saturates at the end of the range (±1.7 × 10¹⁴ USD) instead of wrapping.
    fn add(self, other: Money) -> Money {
        self.saturating_add(other)
    }
}

impl AddAssign for Money {
    fn add_assign(&mut self, other: Money) {
        *self = *self + other;
    }
}

impl Sub for Money {
    type Output = Money;
    /// Exact subtraction; saturates at the end of the range instead of wrapping.
    fn sub(self, other: Money) -> Money {
        Money(self.0.saturating_sub(other.0))
    }
}

impl SubAssign for Money {
    fn sub_assign(&mut self, other: Money) {
        *self = *self - other;
    }
}

impl Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        iter.fold(Money::ZERO, Add::add)
    }
}

impl<'a> Sum<&'a Money> for Money {
    fn sum<I: Iterator<Item = &'a Money>>(iter: I) -> Money {
        iter.copied().sum()
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_fixed(f, self.0, SCALE)
    }
}

impl fmt::Debug for Money {
    /// `Money(0.0045)`: the dollars, exact, as `Display` writes them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Money({self})")
    }
}

impl FromStr for Money {
    type Err = DecimalError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Money::from_decimal(s)
    }
}

impl serde::Serialize for Money {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Money {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Money::from_decimal(&text).map_err(serde::de::Error::custom)
    }
}

impl TokenPrice {
    /// Free.
    pub const ZERO: TokenPrice = TokenPrice(0);

    /// A price from its raw units of 10⁻²⁴ USD per token; `None` when negative.
    pub const fn from_units(units: i128) -> Option<Self> {
        if units < 0 {
            None
        } else {
            Some(TokenPrice(units))
        }
    }

    /// The raw units of 10⁻²⁴ USD per token.
    pub const fn units(self) -> i128 {
        self.0
    }

    /// Parses a price in USD per token (`"3e-06"`, `"0.000003"`, `"3E-7"`).
    pub fn per_token(text: &str) -> Result<Self, DecimalError> {
        Self::parse_unsigned(text, SCALE)
    }

    /// Parses a price in USD per million tokens (`"2.50"`), the unit providers publish.
    pub fn per_million(text: &str) -> Result<Self, DecimalError> {
        Self::parse_unsigned(text, SCALE - 6)
    }

    /// Parses a price in USD per thousand (`"2.50"` per 1 000 calls: LiteLLM's
    /// `file_search_cost_per_1k_calls`), as the price of one.
    pub fn per_thousand(text: &str) -> Result<Self, DecimalError> {
        Self::parse_unsigned(text, SCALE - 3)
    }

    fn parse_unsigned(text: &str, scale: u32) -> Result<Self, DecimalError> {
        let trimmed = text.trim();
        if let Some(magnitude) = trimmed.strip_prefix('-') {
            // "-0" is still a price of zero.
            return match parse_decimal(magnitude, scale) {
                Ok(0) => Ok(TokenPrice(0)),
                Ok(_) => Err(DecimalError::Negative(text.to_owned())),
                Err(e) => Err(e.with_text(text)),
            };
        }
        parse_decimal(trimmed, scale)
            .map(TokenPrice)
            .map_err(|e| e.with_text(text))
    }

    /// The exact cost of `tokens` tokens at this price; `None` past the representable range.
    #[inline]
    pub const fn times(self, tokens: u64) -> Option<Money> {
        // Fast path: a non-negative price below 2⁶⁴ units (up to $18.44 per million tokens)
        // times fewer than 2⁶³ tokens is below 2¹²⁷: one widening multiplication, exact.
        if self.0 >= 0 && self.0 < (1_i128 << 64) && tokens < (1_u64 << 63) {
            return Some(Money(((tokens as u128) * (self.0 as u128)) as i128));
        }
        match (tokens as i128).checked_mul(self.0) {
            Some(units) => Some(Money(units)),
            None => None,
        }
    }

    /// This price times `multiplier`, exactly; `None` when the product does not fit in the
    /// price's 24 decimals (or overflows).
    pub const fn scaled(self, multiplier: PriceMultiplier) -> Option<TokenPrice> {
        let Some(product) = self.0.checked_mul(multiplier.millionths as i128) else {
            return None;
        };
        if product % 1_000_000 != 0 {
            return None;
        }
        Some(TokenPrice(product / 1_000_000))
    }

    /// This price per million tokens, as exact money (`$2.50` for `2.5e-6` per token).
    pub const fn per_million_tokens(self) -> Money {
        Money(self.0.saturating_mul(1_000_000))
    }
}

/// An exact factor applied to prices (`1.1`: 10% more), to six decimals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PriceMultiplier {
    millionths: u64,
}

impl PriceMultiplier {
    /// The factor 1: prices unchanged.
    pub const ONE: PriceMultiplier = PriceMultiplier {
        millionths: 1_000_000,
    };

    /// Parses a positive decimal factor of at most six decimals (`"1.1"`, `"1"`).
    pub fn parse(text: &str) -> Result<Self, BadMultiplier> {
        parse_decimal(text.trim(), 6)
            .ok()
            .and_then(|millionths| u64::try_from(millionths).ok())
            .filter(|millionths| *millionths > 0)
            .map(|millionths| PriceMultiplier { millionths })
            .ok_or_else(|| BadMultiplier(text.to_owned()))
    }
}

/// A text that is not a price factor.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("`{0}` is not a price factor: a decimal above zero with at most six decimals (\"1.1\")")]
pub struct BadMultiplier(pub String);

impl fmt::Display for PriceMultiplier {
    /// The factor as an exact decimal string (`1.1`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_fixed(f, i128::from(self.millionths), 6)
    }
}

impl serde::Serialize for PriceMultiplier {
    /// Serialised as the exact decimal string.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl TokenPrice {
    /// The price per million tokens as an exact decimal string (`"2.5"`), the unit
    /// [`TokenPrice::per_million`] reads.
    pub fn per_million_text(self) -> String {
        struct PerMillion(i128);
        impl fmt::Display for PerMillion {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_fixed(f, self.0, SCALE - 6)
            }
        }
        PerMillion(self.0).to_string()
    }
}

impl fmt::Display for TokenPrice {
    /// The price per token as an exact decimal string.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_fixed(f, self.0, SCALE)
    }
}

impl fmt::Debug for TokenPrice {
    /// `TokenPrice(0.0000025)`: the dollars per token, exact, as `Display` writes them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenPrice({self})")
    }
}

impl serde::Serialize for TokenPrice {
    /// Serialised as the exact per-token decimal string.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl DecimalError {
    fn with_text(self, text: &str) -> Self {
        let text = text.to_owned();
        match self {
            DecimalError::Syntax(_) => DecimalError::Syntax(text),
            DecimalError::Negative(_) => DecimalError::Negative(text),
            DecimalError::TooPrecise(_) => DecimalError::TooPrecise(text),
            DecimalError::TooLarge(_) => DecimalError::TooLarge(text),
        }
    }
}

/// Parses unsigned decimal text into an integer count of `10^-scale` units, exactly.
///
/// Accepts `12`, `12.5`, `.5`, `5.`, `3e-06`, `3E+2`, `1.25e-7`, with an optional leading `+`.
/// Fails with [`DecimalError::TooPrecise`] rather than rounding when the value has more than
/// `scale` decimal places, and with [`DecimalError::TooLarge`] past `i128`.
pub fn parse_decimal(text: &str, scale: u32) -> Result<i128, DecimalError> {
    let syntax = || DecimalError::Syntax(text.to_owned());
    let body = text.strip_prefix('+').unwrap_or(text);
    let (number, exponent) = match body.find(['e', 'E']) {
        Some(at) => {
            let exp_text = &body[at + 1..];
            let exp_digits = exp_text.strip_prefix(['+', '-']).unwrap_or(exp_text);
            if exp_digits.is_empty() || !exp_digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(syntax());
            }
            // Exponents beyond a few hundred cannot yield an i128 of units either way.
            let exp: i64 = exp_text.parse().map_err(|_| syntax())?;
            if exp.abs() > 1_000 {
                return Err(if exp > 0 {
                    DecimalError::TooLarge(text.to_owned())
                } else {
                    DecimalError::TooPrecise(text.to_owned())
                });
            }
            (&body[..at], exp)
        }
        None => (body, 0),
    };
    let (whole, frac) = match number.split_once('.') {
        Some((w, f)) => (w, f),
        None => (number, ""),
    };
    if (whole.is_empty() && frac.is_empty())
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(syntax());
    }
    // Trailing zeros of the fraction carry no value; leading zeros of the whole part neither.
    let frac = frac.trim_end_matches('0');
    let whole = whole.trim_start_matches('0');
    let mut mantissa: i128 = 0;
    for digit in whole.bytes().chain(frac.bytes()) {
        mantissa = mantissa
            .checked_mul(10)
            .and_then(|m| m.checked_add(i128::from(digit - b'0')))
            .ok_or_else(|| DecimalError::TooLarge(text.to_owned()))?;
    }
    if mantissa == 0 {
        return Ok(0);
    }
    // value = mantissa × 10^(exponent − frac_len); in units: × 10^scale.
    let mut shift = i64::from(scale) + exponent - frac.len() as i64;
    while shift < 0 && mantissa % 10 == 0 {
        mantissa /= 10;
        shift += 1;
    }
    if shift < 0 {
        return Err(DecimalError::TooPrecise(text.to_owned()));
    }
    let factor = u32::try_from(shift)
        .ok()
        .and_then(|s| 10_i128.checked_pow(s))
        .ok_or_else(|| DecimalError::TooLarge(text.to_owned()))?;
    mantissa
        .checked_mul(factor)
        .ok_or_else(|| DecimalError::TooLarge(text.to_owned()))
}

/// Writes `units × 10^-scale` as an exact decimal with no trailing zeros (`scale` at most
/// [`SCALE`]), padded as the formatter asks. Built on the stack: reports and exports write
/// many amounts per line.
fn write_fixed(f: &mut fmt::Formatter<'_>, units: i128, scale: u32) -> fmt::Result {
    // The magnitude's digits, right-aligned over zeros: at least `scale + 1` of them are
    // read, so a fraction's leading zeros and a whole part of `0` are there already.
    let mut digits = [b'0'; DIGITS_ROOM];
    let first = write_digits(units.unsigned_abs(), &mut digits);
    let scale = (scale as usize).min(DIGITS_ROOM - 1);
    let first = first.min(DIGITS_ROOM - 1 - scale);
    let point = DIGITS_ROOM - scale;
    let (whole, fraction) = digits[first..].split_at(point - first);
    let fraction_end = fraction
        .iter()
        .rposition(|&d| d != b'0')
        .map_or(0, |at| at + 1);
    let mut text = [0_u8; DIGITS_ROOM + 2];
    let mut len = 0;
    let mut push = |bytes: &[u8]| {
        text[len..len + bytes.len()].copy_from_slice(bytes);
        len += bytes.len();
    };
    if units < 0 {
        push(b"-");
    }
    push(whole);
    if fraction_end > 0 {
        push(b".");
        push(&fraction[..fraction_end]);
    }
    f.pad(std::str::from_utf8(&text[..len]).map_err(|_| fmt::Error)?)
}

/// Room for the 39 digits of a `u128` and a fraction of [`SCALE`] digits below a whole `0`.
const DIGITS_ROOM: usize = 40 + SCALE as usize;

/// Writes the decimal digits of `n` right-aligned in `digits`, returning where they begin
/// (`0` is one digit). Through `u64` chunks of 19 digits: a `u128` division per digit would
/// cost far more.
fn write_digits(mut n: u128, digits: &mut [u8; DIGITS_ROOM]) -> usize {
    const CHUNK: u128 = 10_u128.pow(19);
    let mut at = DIGITS_ROOM;
    loop {
        let mut chunk = match u64::try_from(n) {
            Ok(small) if n < CHUNK => {
                n = 0;
                small
            }
            _ => {
                let low = u64::try_from(n % CHUNK).unwrap_or_default();
                n /= CHUNK;
                low
            }
        };
        let mut written = 0;
        // A lower chunk has all 19 digits (its leading zeros included); the top one, its own.
        while written < 19 && (n != 0 || chunk != 0 || written == 0) {
            at -= 1;
            digits[at] = b'0' + u8::try_from(chunk % 10).unwrap_or_default();
            chunk /= 10;
            written += 1;
        }
        if n == 0 {
            return at;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn per_token(text: &str) -> i128 {
        TokenPrice::per_token(text)
            .map(TokenPrice::units)
            .unwrap_or(-1)
    }

    /// `write_fixed` as the plain text arithmetic says, for comparison.
    fn fixed_by_strings(units: i128, scale: u32) -> String {
        let digits = format!(
            "{:0>width$}",
            units.unsigned_abs(),
            width = scale as usize + 1
        );
        let (whole, fraction) = digits.split_at(digits.len() - scale as usize);
        let fraction = fraction.trim_end_matches('0');
        let sign = if units < 0 { "-" } else { "" };
        match fraction {
            "" => format!("{sign}{whole}"),
            fraction => format!("{sign}{whole}.{fraction}"),
        }
    }

    struct Fixed(i128, u32);

    impl fmt::Display for Fixed {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write_fixed(f, self.0, self.1)
        }
    }

    #[test]
    fn amounts_are_written_as_their_exact_decimals() {
        let edges = [
            0,
            1,
            -1,
            9,
            10,
            1_000_000,
            10_i128.pow(19) - 1,
            10_i128.pow(19),
            10_i128.pow(19) + 1,
            10_i128.pow(38),
            i128::MAX,
            i128::MIN,
            i128::MIN + 1,
            -(10_i128.pow(24)),
            123_456_789_012_345_678_901_234_567,
        ];
        for units in edges {
            for scale in [0, 1, 6, 18, 19, 20, SCALE - 6, SCALE] {
                assert_eq!(
                    Fixed(units, scale).to_string(),
                    fixed_by_strings(units, scale),
                    "{units} at {scale}"
                );
            }
        }
        assert_eq!(
            Money::from_units(-1).to_string(),
            "-0.000000000000000000000001"
        );
        assert_eq!(
            format!("[{:>8}]", Money::from_units(15 * 10_i128.pow(23))),
            "[     1.5]"
        );
    }

    proptest::proptest! {
        #[test]
        fn any_amount_is_written_as_its_exact_decimal(units in proptest::prelude::any::<i128>(), scale in 0_u32..=SCALE) {
            proptest::prop_assert_eq!(Fixed(units, scale).to_string(), fixed_by_strings(units, scale));
        }
    }

    #[test]
    fn a_non_negative_amount_refuses_a_negative_one() {
        assert_eq!(
            Money::from_non_negative_decimal("0.0035"),
            Money::from_decimal("0.0035")
        );
        assert_eq!(Money::from_non_negative_decimal("-0"), Ok(Money::ZERO));
        assert_eq!(
            Money::from_non_negative_decimal("-0.01"),
            Err(DecimalError::Negative("-0.01".to_owned()))
        );
        assert!(matches!(
            Money::from_non_negative_decimal("a lot"),
            Err(DecimalError::Syntax(_))
        ));
    }

    #[test]
    fn a_reported_cost_agrees_within_rounding_and_no_further() {
        let usd = |text: &str| Money::from_decimal(text).unwrap_or(Money::ZERO);
        // Perplexity's $0.59962 for a call the table prices at $0.599617: rounding.
        assert!(usd("0.599617").agrees_with_reported(usd("0.59962")));
        // Tiny calls: a hundred-thousandth of a dollar either way.
        assert!(usd("0.0000043").agrees_with_reported(usd("0.00001")));
        assert!(usd("0.00001").agrees_with_reported(usd("0")));
        assert!(!usd("0.0000101").agrees_with_reported(usd("0")));
        // Large calls: 1%.
        assert!(usd("10").agrees_with_reported(usd("10.1")));
        assert!(!usd("10").agrees_with_reported(usd("10.2")));
        // A price changed by a quarter: disagrees.
        assert!(!usd("0.0035").agrees_with_reported(usd("0.004375")));
        assert!(!usd("0.004375").agrees_with_reported(usd("0.0035")));
    }

    #[test]
    fn the_three_spellings_of_a_price_agree() {
        let expected = 3 * 10_i128.pow(18);
        assert_eq!(per_token("3e-06"), expected);
        assert_eq!(per_token("0.000003"), expected);
        assert_eq!(per_token("3E-6"), expected);
        assert_eq!(per_token("0.30e-5"), expected);
        assert_eq!(
            TokenPrice::per_million("3").map(TokenPrice::units),
            Ok(expected)
        );
        assert_eq!(
            TokenPrice::per_million("3.000").map(TokenPrice::units),
            Ok(expected)
        );
    }

    #[test]
    fn odd_but_valid_spellings() {
        assert_eq!(per_token(".5"), 5 * 10_i128.pow(23));
        assert_eq!(per_token("5."), 5 * 10_i128.pow(24));
        assert_eq!(per_token("+1e2"), 100 * 10_i128.pow(24));
        assert_eq!(per_token("0"), 0);
        assert_eq!(per_token("-0"), 0);
        assert_eq!(per_token("0.0000000000000000000000000000"), 0);
        assert_eq!(per_token("3.75e-7"), 375 * 10_i128.pow(15));
        // Trailing zeros of the mantissa make room for an exponent finer than the scale.
        assert_eq!(per_token("100e-26"), 1);
        assert_eq!(per_token("12300e-26"), 123);
        assert_eq!(per_token("12300e-27"), -1, "12.3 units: too precise");
        assert_eq!(per_token("5000000e-30"), 5);
        // Zero with an exponent up to the parser's bound of a thousand.
        assert_eq!(per_token("0e1000"), 0);
        assert_eq!(per_token("0e-1000"), 0);
    }

    #[test]
    fn bad_text_is_a_typed_error() {
        for bad in [
            "", ".", "e5", "1e", "1e+", "abc", "1.2.3", "1,5", "0x10", "1e5.5", " ",
        ] {
            assert!(
                matches!(TokenPrice::per_token(bad), Err(DecimalError::Syntax(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            TokenPrice::per_token("-1e-6"),
            Err(DecimalError::Negative(_))
        ));
        assert!(matches!(
            TokenPrice::per_token("1e-25"),
            Err(DecimalError::TooPrecise(_))
        ));
        assert!(matches!(
            TokenPrice::per_token("1e-99999"),
            Err(DecimalError::TooPrecise(_))
        ));
        for too_large in ["1e200", "1e99999", "1E+1001"] {
            assert!(
                matches!(
                    TokenPrice::per_token(too_large),
                    Err(DecimalError::TooLarge(_))
                ),
                "{too_large}"
            );
        }
    }

    #[test]
    fn money_displays_exactly() {
        let cases = [
            ("0", "0"),
            ("0.0045", "0.0045"),
            ("12.50", "12.5"),
            ("-0.25", "-0.25"),
            ("1e-24", "0.000000000000000000000001"),
            ("1000000000000", "1000000000000"),
        ];
        for (input, shown) in cases {
            assert_eq!(
                Money::from_decimal(input).map(|m| m.to_string()),
                Ok(shown.to_owned())
            );
        }
    }

    #[test]
    fn debug_shows_dollars_not_units() {
        let (Ok(money), Ok(price)) = (
            Money::from_decimal("-12.50"),
            TokenPrice::per_million("2.5"),
        ) else {
            panic!("valid amounts refused");
        };
        assert_eq!(format!("{money:?}"), "Money(-12.5)");
        assert_eq!(format!("{price:?}"), "TokenPrice(0.0000025)");
        assert_eq!(format!("{:?}", Money::ZERO), "Money(0)");
    }

    #[test]
    fn to_f64_fast_path_agrees_with_the_decimal_text() {
        // (amount, whether its significant digits fit the fast path's 2^53)
        for (text, fast) in [
            ("0", true),
            ("0.0035", true),
            ("-3", true),
            ("0.000204", true),
            ("123456.789", true),
            ("1e-24", false), // 10^24 is not an exact double
            ("0.1", true),
            ("0.3", true),
            ("1e14", false),             // 10^14 × 10^12 units do not fit a u64
            ("9007.199254740991", true), // 2^53 - 1 units of 10^-12
            ("9007.199254740992", false),
            ("90071992.54740993", false),
            ("0.000000123456789012345678", false),
        ] {
            let m = Money::from_decimal(text).unwrap_or_else(|e| panic!("{e}"));
            let parsed: f64 = m.to_string().parse().unwrap_or(f64::NAN);
            assert_eq!(m.to_f64(), parsed, "{text}");
            let expected_fast = fast.then_some(parsed);
            assert_eq!(m.to_f64_exact_division(), expected_fast, "{text}");
        }
    }

    #[test]
    fn zero_is_only_zero() {
        assert!(Money::ZERO.is_zero());
        assert!(Money::from_decimal("-0").is_ok_and(Money::is_zero));
        assert!(!Money::from_decimal("1e-24").is_ok_and(Money::is_zero));
        assert!(!Money::from_usd(-1).is_zero());
    }

    #[test]
    fn to_f64_is_the_nearest_double() {
        let m = Money::from_decimal("0.00775").unwrap_or_default();
        assert_eq!(m.to_f64(), 0.00775);
        assert_eq!(Money::from_usd(-3).to_f64(), -3.0);
    }

    #[test]
    fn a_trillion_dollars_fits() {
        let trillion = Money::from_usd(1_000_000_000_000);
        assert_eq!(
            trillion.checked_add(trillion).map(|m| m.to_string()),
            Some("2000000000000".to_owned())
        );
    }

    #[test]
    fn differences_and_sums_are_exact_and_saturate() {
        let dollar = Money::from_usd(1);
        let cent = Money::from_decimal("0.01").unwrap_or_default();
        let mut left = dollar - cent;
        assert_eq!(left.to_string(), "0.99");
        left -= dollar;
        assert_eq!(left.to_string(), "-0.01");
        let lowest = Money::from_units(i128::MIN);
        assert_eq!(lowest - dollar, lowest, "saturates");
        let amounts = [cent, cent, dollar];
        assert_eq!(amounts.iter().sum::<Money>().to_string(), "1.02");
        assert_eq!(amounts.into_iter().sum::<Money>().to_string(), "1.02");
    }

    #[test]
    fn amounts_are_read_from_text_and_json_exactly() {
        assert_eq!(
            "0.000355".parse::<Money>().map(|m| m.to_string()),
            Ok("0.000355".to_owned())
        );
        assert!("0.1.2".parse::<Money>().is_err());
        let read: Result<Vec<Money>, _> = serde_json::from_str(r#"["0.1", "-2.5e-7"]"#);
        assert_eq!(
            read.map(|amounts| amounts.iter().map(Money::to_string).collect::<Vec<_>>())
                .ok(),
            Some(vec!["0.1".to_owned(), "-0.00000025".to_owned()])
        );
        assert!(serde_json::from_str::<Money>(r#""dollars""#).is_err());
        assert_eq!(
            serde_json::to_string(&Money::from_usd(3)).ok(),
            Some(r#""3""#.to_owned())
        );
    }

    #[test]
    fn a_price_from_units_is_never_negative() {
        assert_eq!(TokenPrice::from_units(0), Some(TokenPrice::ZERO));
        assert_eq!(TokenPrice::from_units(7).map(TokenPrice::units), Some(7));
        assert_eq!(TokenPrice::from_units(-1), None);
    }

    #[test]
    fn price_times_tokens_is_exact() {
        let price = TokenPrice::per_token("3.75e-7").unwrap_or_default();
        assert_eq!(
            price.times(1_000_001).map(|m| m.to_string()),
            Some("0.375000375".to_owned())
        );
        assert_eq!(price.per_million_tokens().to_string(), "0.375");
    }
}
