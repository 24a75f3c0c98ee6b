//! Spend per day as an SVG of stacked bars, one colour per model (or feature), with a legend,
//! a dollar axis and day labels. Plain SVG 1.1 text: any browser or image viewer shows it, and
//! no font file is needed to draw it.

use std::collections::BTreeMap;
use std::fmt::Write;

use cost_core::Money;

/// Distinct colours (Okabe–Ito, then Tableau), cycled beyond.
const PALETTE: [&str; 12] = [
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000",
    "#8C564B", "#7F7F7F", "#BCBD22", "#17BECF",
];

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 540.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 220.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 70.0;

/// The chart of `days` (day → key → cost), titled `title`. The largest series come first in
/// the legend and at the bottom of each bar.
pub(crate) fn stacked_days(
    title: &str,
    days: &BTreeMap<String, BTreeMap<String, Money>>,
) -> String {
    let mut per_key: BTreeMap<&str, Money> = BTreeMap::new();
    for costs in days.values() {
        for (key, cost) in costs {
            *per_key.entry(key).or_insert(Money::ZERO) += *cost;
        }
    }
    let mut keys: Vec<(&str, Money)> = per_key.into_iter().collect();
    keys.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let colour = |index: usize| PALETTE[index % PALETTE.len()];

    let day_totals: Vec<f64> = days
        .values()
        .map(|costs| costs.values().fold(Money::ZERO, |a, c| a + *c).to_f64())
        .collect();
    let max = nice_ceiling(day_totals.iter().copied().fold(0.0, f64::max));
    let plot_width = WIDTH - LEFT - RIGHT;
    let plot_height = HEIGHT - TOP - BOTTOM;
    let slot = plot_width / days.len().max(1) as f64;
    let bar = (slot * 0.7).min(60.0);
    let y = |usd: f64| TOP + plot_height - usd / max * plot_height;

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="28" font-size="16" font-weight="bold">{}</text>"#,
        LEFT,
        escape(title)
    );
    // Dollar axis with five gridlines.
    for step in 0..=5 {
        let value = max * f64::from(step) / 5.0;
        let at = y(value);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{at:.1}" x2="{:.1}" y2="{at:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">${}</text>"##,
            LEFT + plot_width,
            LEFT - 6.0,
            at + 4.0,
            dollars(value)
        );
    }
    let _ = writeln!(
        svg,
        r##"<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{:.1}" stroke="#333"/>"##,
        TOP + plot_height
    );
    // Bars: one segment per key, largest series at the bottom.
    let label_every = (days.len() / 15).max(1);
    for (index, (day, costs)) in days.iter().enumerate() {
        let x = LEFT + slot * index as f64 + (slot - bar) / 2.0;
        let mut base = 0.0;
        for (key_index, (key, _)) in keys.iter().enumerate() {
            let Some(cost) = costs.get(*key) else {
                continue;
            };
            let value = cost.to_f64();
            let (top, bottom) = (y(base + value), y(base));
            let _ = writeln!(
                svg,
                r#"<rect x="{x:.1}" y="{top:.1}" width="{bar:.1}" height="{:.1}" fill="{}"><title>{} {}: ${}</title></rect>"#,
                (bottom - top).max(0.0),
                colour(key_index),
                escape(day),
                escape(key),
                cost
            );
            base += value;
        }
        if index % label_every == 0 {
            let _ = writeln!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end" transform="rotate(-40 {:.1} {:.1})">{}</text>"#,
                x + bar / 2.0,
                TOP + plot_height + 16.0,
                x + bar / 2.0,
                TOP + plot_height + 16.0,
                escape(day)
            );
        }
    }
    // Legend, with each series' total.
    for (index, (key, total)) in keys.iter().enumerate().take(20) {
        let at = TOP + 20.0 * index as f64;
        let x = WIDTH - RIGHT + 20.0;
        let _ = writeln!(
            svg,
            r#"<rect x="{x}" y="{at}" width="12" height="12" fill="{}"/><text x="{}" y="{}">{} (${})</text>"#,
            colour(index),
            x + 18.0,
            at + 10.5,
            escape(key),
            dollars(total.to_f64())
        );
    }
    if keys.len() > 20 {
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}">… {} more</text>"#,
            WIDTH - RIGHT + 20.0,
            TOP + 20.0 * 20.0 + 10.0,
            keys.len() - 20
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// A round number at or above `value` (1, 2 or 5 × 10ⁿ), for the axis.
fn nice_ceiling(value: f64) -> f64 {
    if value <= 0.0 || !value.is_finite() {
        return 1.0;
    }
    let magnitude = 10_f64.powf(value.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|candidate| *candidate >= value)
        .unwrap_or(10.0 * magnitude)
}

/// Dollars for an axis or legend: cents, or two significant digits below a cent.
fn dollars(value: f64) -> String {
    if value == 0.0 || value >= 0.01 {
        format!("{value:.2}")
    } else {
        let decimals = (-value.log10().floor()) as usize + 1;
        format!("{value:.decimals$}")
    }
}

/// Text as XML character data or attribute value: markup characters escaped, and characters
/// XML 1.0 cannot hold at all (control characters but tab and line breaks, U+FFFE, U+FFFF)
/// replaced by U+FFFD, so a feature or model name of any characters leaves the chart readable.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c < ' ' || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use cost_core::Money;

    use super::{dollars, escape, nice_ceiling, stacked_days};

    fn money(text: &str) -> Money {
        Money::from_decimal(text).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Days of one cost per key, in dollars as text.
    fn days(days: &[(&str, &[(&str, &str)])]) -> BTreeMap<String, BTreeMap<String, Money>> {
        days.iter()
            .map(|(day, costs)| {
                let costs = costs
                    .iter()
                    .map(|(key, usd)| ((*key).to_owned(), money(usd)))
                    .collect();
                ((*day).to_owned(), costs)
            })
            .collect()
    }

    #[test]
    fn the_axis_ends_at_a_round_number_at_or_above_the_largest_day() {
        for (value, ceiling) in [
            (0.0, 1.0),
            (f64::NAN, 1.0),
            (0.7, 1.0),
            (1.0, 1.0),
            (1.3, 2.0),
            (3.0, 5.0),
            (7.0, 10.0),
            (120.0, 200.0),
            (0.012, 0.02),
        ] {
            assert!(
                (nice_ceiling(value) - ceiling).abs() < 1e-12,
                "{value}: {}",
                nice_ceiling(value)
            );
        }
    }

    #[test]
    fn dollars_show_cents_or_two_significant_digits_below_a_cent() {
        assert_eq!(dollars(0.0), "0.00");
        assert_eq!(dollars(0.5), "0.50");
        assert_eq!(dollars(0.01), "0.01");
        assert_eq!(dollars(12.345), "12.35");
        assert_eq!(dollars(0.0042), "0.0042");
        assert_eq!(dollars(0.00042), "0.00042");
    }

    #[test]
    fn bars_stack_each_days_costs_to_scale_largest_series_at_the_bottom() {
        let svg = stacked_days(
            "spend",
            &days(&[
                ("2026-11-01", &[("a", "3"), ("b", "1")]),
                ("2026-11-02", &[("a", "1")]),
            ]),
        );
        // The axis runs to $5 over 420 px from y = 470; two slots of 330 px from x = 80, bars
        // 60 px wide in their middle. `a` ($4 in all) is the first colour, at the bottom.
        for rect in [
            r##"<rect x="215.0" y="218.0" width="60.0" height="252.0" fill="#0072B2"><title>2026-11-01 a: $3</title></rect>"##,
            r##"<rect x="215.0" y="134.0" width="60.0" height="84.0" fill="#E69F00"><title>2026-11-01 b: $1</title></rect>"##,
            r##"<rect x="545.0" y="386.0" width="60.0" height="84.0" fill="#0072B2"><title>2026-11-02 a: $1</title></rect>"##,
        ] {
            assert!(svg.contains(rect), "{rect} not in\n{svg}");
        }
        assert_eq!(svg.matches("<title>").count(), 3);
        // Gridlines every fifth of the axis, labelled in dollars.
        for (at, label) in [
            (470.0, "0.00"),
            (386.0, "1.00"),
            (134.0, "4.00"),
            (50.0, "5.00"),
        ] {
            let line = format!(
                r##"<line x1="80" y1="{at:.1}" x2="740.0" y2="{at:.1}" stroke="#ddd"/><text x="74.0" y="{:.1}" text-anchor="end">${label}</text>"##,
                at + 4.0
            );
            assert!(svg.contains(&line), "{line} not in\n{svg}");
        }
        // The legend, largest series first, with each one's total.
        let a = svg.find(">a ($4.00)</text>");
        let b = svg.find(">b ($1.00)</text>");
        assert!(a.is_some() && b.is_some() && a < b, "{svg}");
        assert!(svg.contains(r##"<rect x="760" y="50" width="12" height="12" fill="#0072B2"/>"##));
        assert!(svg.contains(r##"<rect x="760" y="70" width="12" height="12" fill="#E69F00"/>"##));
        // Each day labelled under its bar.
        assert!(svg.contains(r#"transform="rotate(-40 245.0 486.0)">2026-11-01</text>"#));
        assert!(svg.contains(r#"transform="rotate(-40 575.0 486.0)">2026-11-02</text>"#));
    }

    #[test]
    fn many_days_label_every_few_and_many_series_fold_into_a_count() {
        let day_names: Vec<String> = (1..=30).map(|d| format!("2026-11-{d:02}")).collect();
        let key_names: Vec<String> = (0..22).map(|k| format!("model-{k:02}")).collect();
        let costs: Vec<(&str, &str)> = key_names.iter().map(|k| (k.as_str(), "1")).collect();
        let spec: Vec<(&str, &[(&str, &str)])> = day_names
            .iter()
            .map(|d| (d.as_str(), costs.as_slice()))
            .collect();
        let svg = stacked_days("spend", &days(&spec));
        // 30 days in 660 px: bars of 70 % of a 22 px slot; every second day labelled.
        assert_eq!(svg.matches(r#"width="15.4""#).count(), 30 * 22);
        assert_eq!(svg.matches("rotate(-40").count(), 15);
        assert!(svg.contains(">2026-11-01</text>") && !svg.contains(">2026-11-02</text>"));
        // 22 series: twenty in the legend, the rest counted; colours cycle past twelve.
        assert_eq!(svg.matches("width=\"12\" height=\"12\"").count(), 20);
        assert!(svg.contains(">… 2 more</text>"), "{svg}");
        assert!(svg.contains(r##"<rect x="760" y="290" width="12" height="12" fill="#0072B2"/>"##));
        // Twenty series fit the legend: none folded.
        let twenty: Vec<(&str, &str)> = costs[..20].to_vec();
        let svg = stacked_days("spend", &days(&[("2026-11-01", twenty.as_slice())]));
        assert_eq!(svg.matches("width=\"12\" height=\"12\"").count(), 20);
        assert!(!svg.contains("more</text>"), "{svg}");
    }

    #[test]
    fn any_text_becomes_valid_xml() {
        assert_eq!(escape("a<b & \"c\">"), "a&lt;b &amp; &quot;c&quot;&gt;");
        assert_eq!(
            escape("tab\tnul\0bell\u{7}"),
            "tab\tnul\u{FFFD}bell\u{FFFD}"
        );
        assert_eq!(escape("\u{FFFF}é"), "\u{FFFD}é");
    }
}
