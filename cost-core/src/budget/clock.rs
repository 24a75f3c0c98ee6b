//! Time for budget windows: an injectable clock and UTC calendar arithmetic.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// Where budgets read the time. Tests inject one; the default is the system clock.
pub trait Clock: Send + Sync {
    /// Seconds since the Unix epoch, UTC.
    fn unix_seconds(&self) -> i64;
}

/// The system clock. On Linux it reads the coarse real-time clock (`CLOCK_REALTIME_COARSE`,
/// updated every few milliseconds, a few times cheaper to read than the precise one): windows
/// count whole seconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[cfg(target_os = "linux")]
    fn unix_seconds(&self) -> i64 {
        rustix::time::clock_gettime(rustix::time::ClockId::RealtimeCoarse).tv_sec
    }

    #[cfg(not(target_os = "linux"))]
    fn unix_seconds(&self) -> i64 {
        match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
        }
    }
}

/// A clock set by hand, for tests and simulations.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock showing `unix_seconds`.
    pub fn new(unix_seconds: i64) -> Self {
        ManualClock(AtomicI64::new(unix_seconds))
    }

    /// Sets the time (it may go backwards).
    pub fn set(&self, unix_seconds: i64) {
        self.0.store(unix_seconds, Ordering::Relaxed);
    }

    /// Moves the time forward.
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(
            i64::try_from(by.as_secs()).unwrap_or(i64::MAX),
            Ordering::Relaxed,
        );
    }
}

impl Clock for ManualClock {
    fn unix_seconds(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Days since 1970-01-01 (UTC) of a time.
pub fn utc_day(unix_seconds: i64) -> i64 {
    unix_seconds.div_euclid(86_400)
}

/// `year × 12 + month − 1` (UTC) of a time: consecutive months are consecutive numbers.
pub fn utc_month(unix_seconds: i64) -> i64 {
    let (year, month, _) = civil_from_days(utc_day(unix_seconds));
    year * 12 + i64::from(month) - 1
}

/// The UTC calendar date of a day number (proleptic Gregorian).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The day number (days since 1970-01-01, UTC) of a calendar date: the inverse of
/// [`civil_from_days`]. `None` for a month or day out of range.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> Option<i64> {
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => return None,
    };
    if day == 0 || day > days_in_month {
        return None;
    }
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// The day number of a `YYYY-MM-DD` date (UTC): `None` unless it is exactly that shape and a
/// real calendar date (`2025-02-29` is not).
pub fn parse_utc_date(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        b.get(range.clone())
            .filter(|part| part.iter().all(u8::is_ascii_digit))
            .and_then(|_| text[range].parse::<u32>().ok())
    };
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    days_from_civil(i64::from(digits(0..4)?), digits(5..7)?, digits(8..10)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_clock_reads_the_time_of_day() {
        let precise = |at: std::time::SystemTime| {
            at.duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64)
        };
        let before = precise(std::time::SystemTime::now());
        let coarse = SystemClock.unix_seconds();
        let after = precise(std::time::SystemTime::now());
        // The coarse clock lags the precise one by a few milliseconds at most.
        assert!(
            (before - 1..=after).contains(&coarse),
            "{before} {coarse} {after}"
        );
    }

    #[test]
    fn calendar() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        // 2024-02-29 and 2026-11-25.
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(20_782), (2026, 11, 25));
        let end_of_january = 1_706_745_599; // 2024-01-31T23:59:59Z
        assert_eq!(utc_month(end_of_january) + 1, utc_month(end_of_january + 1));
        assert_eq!(utc_day(end_of_january) + 1, utc_day(end_of_january + 1));
        assert_eq!(utc_day(-1), -1);
        for days in [-800_000, -1, 0, 19_782, 20_782, 60_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), Some(days));
        }
        assert_eq!(days_from_civil(2025, 2, 29), None);
        assert_eq!(days_from_civil(2024, 13, 1), None);
        // Month numbers count on across years from year 0.
        assert_eq!(utc_month(0), 1970 * 12);
        assert_eq!(utc_month(-1), 1969 * 12 + 11);
    }

    #[test]
    fn every_day_of_eight_centuries_follows_the_one_before() {
        // 1600-03-01 to 2400-03-01: two whole 400-year eras, each century year's rule met.
        let (Some(first), Some(last)) = (days_from_civil(1600, 3, 1), days_from_civil(2400, 3, 1))
        else {
            panic!("both are dates");
        };
        assert_eq!(last - first, 2 * 146_097);
        let mut before = civil_from_days(first - 1);
        assert_eq!(before, (1600, 2, 29));
        for days in first..=last {
            let date = civil_from_days(days);
            let (y, m, d) = date;
            let next_day = (before.0, before.1, before.2 + 1);
            let next_month = (before.0, before.1 + 1, 1);
            let next_year = (before.0 + 1, 1, 1);
            assert!(
                date == next_day || date == next_month || date == next_year,
                "{before:?} then {date:?}"
            );
            assert_eq!(days_from_civil(y, m, d), Some(days), "{date:?}");
            before = date;
        }
    }

    #[test]
    fn leap_days_fall_by_the_gregorian_rule() {
        for (year, leap) in [
            (1900, false),
            (2000, true),
            (2023, false),
            (2024, true),
            (2100, false),
            (2400, true),
        ] {
            assert_eq!(days_from_civil(year, 2, 29).is_some(), leap, "{year}");
            let Some(february_28) = days_from_civil(year, 2, 28) else {
                panic!("{year}-02-28 is a date");
            };
            let (_, month, _) = civil_from_days(february_28 + 1);
            assert_eq!(month, if leap { 2 } else { 3 }, "{year}");
        }
    }

    #[test]
    fn dates_parse_only_in_their_one_shape() {
        assert_eq!(parse_utc_date("2026-11-25"), Some(20_782));
        assert_eq!(parse_utc_date("2024-02-29"), Some(19_782));
        assert_eq!(parse_utc_date("1970-01-01"), Some(0));
        for bad in [
            "2025-02-29",
            "2025-13-01",
            "2025-00-10",
            "2025-1-05",
            "2025/01/05",
            "2025x01-05",
            "2025-01x05",
            "2025-01-050",
            "2025-01-05T00:00:00Z",
            "+025-01-05",
            "2025-01-+5",
            "",
        ] {
            assert_eq!(parse_utc_date(bad), None, "{bad}");
        }
    }
}
