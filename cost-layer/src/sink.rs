//! Every closed LLM call, handed to a [`CallSink`]: the feed of durable ledgers (the
//! `cost-store` crate's writer) and of anything else that keeps one record per call.
//!
//! The layer calls [`CallSink::submit`] from `on_close`, while it holds the closing span's data
//! (so the call is lent, not copied, to the sink), once per call span that carried usage (priced, unpriced, rejected or answered from the
//! application cache). A sink must not block: it queues the call and returns. When it cannot
//! (its queue is full, or whatever drains it has stopped), it returns `false`; the layer counts the drop in
//! [`Diagnostics::records_dropped`](crate::Diagnostics::records_dropped) and warns once. A
//! panicking sink is caught and counted like a panicking callback.

use std::cell::Cell;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime};

use crate::totals::{Attribution, Totals};

/// One closed LLM call, borrowed for the time of [`CallSink::submit`].
#[derive(Debug)]
pub struct ClosedCall<'a> {
    /// When the call's span was created and closed: read, not yet converted (see [`CallTimes`]).
    pub times: CallTimes,
    /// The span's name.
    pub name: &'static str,
    /// The `tracing` id of the call's span (process-local, recycled after close).
    pub span_id: u64,
    /// The `tracing` id of its nearest accounted ancestor (agent or session), if any.
    pub parent_span_id: Option<u64>,
    /// `gen_ai.request.model` (or `llm.model`), as recorded.
    pub request_model: Option<&'a Arc<str>>,
    /// `gen_ai.response.model`, as recorded.
    pub response_model: Option<&'a Arc<str>>,
    /// The model's ledger key: the price table's entry when priced, else the name as recorded
    /// (`unknown` when none was).
    pub model: &'a Arc<str>,
    /// `gen_ai.provider.name`, as recorded.
    pub provider: Option<&'a Arc<str>>,
    /// `gen_ai.operation.name`, as recorded.
    pub operation: Option<&'a Arc<str>>,
    /// The service tier it ran at (`cost.service_tier`), which its price depends on.
    pub service_tier: cost_core::ServiceTier,
    /// It ran on a data-residency endpoint (`cost.data_residency`), which its price depends on.
    pub data_residency: bool,
    /// The search context size of its web searches (`cost.search_context_size`), which the
    /// price of a search depends on on some models; `None` when not stated.
    pub search_context_size: Option<cost_core::SearchContextSize>,
    /// What its provider said it cost (`cost.reported_cost_usd`), when the answer said; the
    /// call is charged at the price table's cost all the same (`totals`).
    pub reported_cost: Option<cost_core::Money>,
    /// Session, agent, user (hashed unless configured otherwise), org and feature.
    pub attribution: &'a Attribution,
    /// What the call was charged: one of `llm_calls`, `rejected_calls` or `cache_hits` is 1;
    /// `unpriced_calls` is 1 when its model has no price; `price_table` names the table.
    pub totals: &'a Totals,
}

/// When a call's span was created and closed, as [`CallTimes::at`] and [`CallTimes::duration`]
/// give them.
///
/// The layer keeps the monotonic clock's raw readings and converts them only when asked: a sink
/// that queues calls (the `cost-store` writer) asks on its own thread, so the instrumented
/// thread pays the two readings and nothing more.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallTimes(Times);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Times {
    /// Raw readings of [`CALL_CLOCK`]; `started` is `None` when the span's creation was not
    /// timed (the layer times every call span it will hand to a sink): its duration is zero.
    Clock { started: Option<u64>, ended: u64 },
    /// Given as they are.
    Given { at: SystemTime, duration: Duration },
}

impl CallTimes {
    /// Times given as they are: a call closed at `at` after `duration` (for calls built
    /// outside the layer, such as replays and tests).
    pub const fn new(at: SystemTime, duration: Duration) -> CallTimes {
        CallTimes(Times::Given { at, duration })
    }

    /// The raw readings of [`CALL_CLOCK`] at the span's creation and close.
    pub(crate) const fn from_clock(started: Option<u64>, ended: u64) -> CallTimes {
        CallTimes(Times::Clock { started, ended })
    }

    /// When the call's span closed: the monotonic reading that ends [`CallTimes::duration`],
    /// dated from the real-time clock as read on the thread that asks, within a second of that
    /// reading (the real-time clock is read at most once a second per thread, not once per
    /// call; a reading older than that is dated back from a fresh one). Between those reads the
    /// date follows the monotonic clock (whose rate is calibrated against the real-time clock
    /// once per process), so it is precise to well under a millisecond, and a step of the wall
    /// clock (a manual change, an NTP step) shows in it within a second.
    pub fn at(&self) -> SystemTime {
        match self.0 {
            Times::Clock { ended, .. } => wall_time_at(&CALL_CLOCK, ended),
            Times::Given { at, .. } => at,
        }
    }

    /// From the span's creation to its close, on a monotonic clock (TSC-based where the CPU's
    /// is reliable, through `quanta`): never negative, unaffected by wall-clock steps.
    pub fn duration(&self) -> Duration {
        match self.0 {
            Times::Clock { started, ended } => started
                .map(|started| CALL_CLOCK.delta(started, ended))
                .unwrap_or_default(),
            Times::Given { duration, .. } => duration,
        }
    }
}

/// The monotonic clock that times and dates the calls handed to a call sink: the CPU's
/// time-stamp counter where it is reliable (through `quanta`), calibrated once per process.
/// Its raw readings are kept, and scaled only to take a difference.
pub(crate) static CALL_CLOCK: LazyLock<quanta::Clock> = LazyLock::new(quanta::Clock::new);

/// How old a thread's anchor may be before the real-time clock is read again.
const ANCHOR_AGE: Duration = Duration::from_secs(1);

/// The most a real-time clock reading may take, between the two monotonic readings around it,
/// to anchor the monotonic clock (a thread preempted in between would date its calls late by
/// the time it waited).
const ANCHOR_READ_LIMIT: Duration = Duration::from_micros(20);

/// A real-time clock reading with the raw monotonic reading taken just before it.
#[derive(Clone, Copy, Debug)]
struct Anchor {
    monotonic: u64,
    wall: SystemTime,
}

impl Anchor {
    /// The wall time of the raw reading `now` of `clock`: the anchor's plus the time since it
    /// (or minus the time to it, for a reading taken before it); `None` when the two are more
    /// than [`ANCHOR_AGE`] apart.
    fn wall_time(&self, clock: &quanta::Clock, now: u64) -> Option<SystemTime> {
        let apart = clock.delta(now.min(self.monotonic), now.max(self.monotonic));
        (apart <= ANCHOR_AGE)
            .then(|| self.date(clock, now))
            .flatten()
    }

    /// The wall time of the raw reading `now` of `clock`, however far from the anchor; `None`
    /// only when that is beyond what a `SystemTime` holds.
    fn date(&self, clock: &quanta::Clock, now: u64) -> Option<SystemTime> {
        if now >= self.monotonic {
            self.wall.checked_add(clock.delta(self.monotonic, now))
        } else {
            self.wall.checked_sub(clock.delta(now, self.monotonic))
        }
    }

    /// Reads the real-time clock between two readings of `clock`, taking the middle of those as
    /// its monotonic reading; tries again (three times at most) when the two were further apart
    /// than [`ANCHOR_READ_LIMIT`].
    fn read(clock: &quanta::Clock) -> Anchor {
        Anchor::read_from(clock, SystemTime::now)
    }

    /// [`Anchor::read`] with `real_time` as the real-time clock.
    fn read_from(clock: &quanta::Clock, mut real_time: impl FnMut() -> SystemTime) -> Anchor {
        let mut attempt = 0;
        loop {
            let before = clock.raw();
            let wall = real_time();
            let after = clock.raw();
            attempt += 1;
            if attempt == 3 || clock.delta(before, after) <= ANCHOR_READ_LIMIT {
                return Anchor {
                    monotonic: before + after.saturating_sub(before) / 2,
                    wall,
                };
            }
        }
    }
}

/// The wall time of the raw reading `now` of `clock` (see [`CallTimes::at`]): from this
/// thread's anchor, read again from the real-time clock when over a second from `now`.
fn wall_time_at(clock: &quanta::Clock, now: u64) -> SystemTime {
    thread_local! {
        static ANCHOR: Cell<Option<Anchor>> = const { Cell::new(None) };
    }
    ANCHOR
        .try_with(|anchor| {
            if let Some(at) = anchor.get().and_then(|a| a.wall_time(clock, now)) {
                return at;
            }
            let fresh = Anchor::read(clock);
            anchor.set(Some(fresh));
            // `now` was read before the anchor: just before, or, when the call is dated late,
            // by more than its age.
            fresh.date(clock, now).unwrap_or(fresh.wall)
        })
        .unwrap_or_else(|_| SystemTime::now())
}

/// Receives every closed LLM call (see the [module docs](self)).
pub trait CallSink: Send + Sync + 'static {
    /// Takes the call (copying what it keeps); `false` when it had to drop it.
    fn submit(&self, call: &ClosedCall<'_>) -> bool;
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::{ANCHOR_AGE, ANCHOR_READ_LIMIT, Anchor, CALL_CLOCK, wall_time_at};

    #[test]
    fn an_anchor_dates_readings_up_to_its_age_either_side_of_it_and_none_further() {
        let (clock, mock) = quanta::Clock::mock();
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        mock.increment(Duration::from_secs(5));
        let too_early = clock.raw();
        mock.increment(Duration::from_nanos(1));
        let earliest = clock.raw();
        mock.increment(ANCHOR_AGE - Duration::from_nanos(1));
        let earlier = clock.raw();
        mock.increment(Duration::from_nanos(1));
        let anchor = Anchor {
            monotonic: clock.raw(),
            wall,
        };
        assert_eq!(anchor.wall_time(&clock, anchor.monotonic), Some(wall));
        mock.increment(Duration::from_millis(250));
        assert_eq!(
            anchor.wall_time(&clock, clock.raw()),
            Some(wall + Duration::from_millis(250))
        );
        mock.increment(ANCHOR_AGE - Duration::from_millis(250));
        assert_eq!(
            anchor.wall_time(&clock, clock.raw()),
            Some(wall + ANCHOR_AGE)
        );
        mock.increment(Duration::from_nanos(1));
        assert_eq!(anchor.wall_time(&clock, clock.raw()), None, "too old");
        assert_eq!(
            anchor.wall_time(&clock, earlier),
            Some(wall - Duration::from_nanos(1)),
            "just before the anchor"
        );
        assert_eq!(anchor.wall_time(&clock, earliest), Some(wall - ANCHOR_AGE));
        assert_eq!(anchor.wall_time(&clock, too_early), None, "too early");
    }

    #[test]
    fn the_wall_time_of_a_reading_now_is_between_real_time_readings_around_it() {
        // Within a millisecond: the anchor is read in microseconds, and the counter's rate is
        // calibrated (closer than that over a second) while other tests load the machine.
        let slack = Duration::from_millis(1);
        for _ in 0..5 {
            let before = SystemTime::now();
            let at = wall_time_at(&CALL_CLOCK, CALL_CLOCK.raw());
            let after = SystemTime::now();
            assert!(
                before <= at + slack && at <= after + slack,
                "{at:?} not in {before:?}..{after:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Reads an anchor on a mock clock whose real-time readings take `durations` in turn (the
    /// last one repeated): the time from the first reading to the anchor's monotonic reading,
    /// and the real-time readings made (the anchor's wall time is the last).
    fn anchor_read_taking(durations: &[Duration]) -> (Duration, usize) {
        let (clock, mock) = quanta::Clock::mock();
        mock.increment(Duration::from_secs(3));
        let start = clock.raw();
        let mut made = 0;
        let anchor = Anchor::read_from(&clock, || {
            let took = durations[made.min(durations.len() - 1)];
            made += 1;
            mock.increment(took);
            SystemTime::UNIX_EPOCH + Duration::from_secs(made as u64)
        });
        assert_eq!(
            anchor.wall,
            SystemTime::UNIX_EPOCH + Duration::from_secs(made as u64),
            "the wall time of the last reading"
        );
        (clock.delta(start, anchor.monotonic), made)
    }

    #[test]
    fn an_anchor_is_the_middle_of_a_quick_reading_or_the_third_of_slow_ones() {
        let micros = Duration::from_micros;
        // Quick enough (the limit included): the first reading, dated in its middle.
        assert_eq!(anchor_read_taking(&[micros(10)]), (micros(5), 1));
        assert_eq!(anchor_read_taking(&[ANCHOR_READ_LIMIT]), (micros(10), 1));
        // Too slow once: read again.
        assert_eq!(
            anchor_read_taking(&[micros(25), micros(4)]),
            (micros(25 + 2), 2)
        );
        // Too slow every time: the third is taken all the same.
        assert_eq!(anchor_read_taking(&[micros(30)]), (micros(30 + 30 + 15), 3));
    }

    #[test]
    fn an_anchor_is_read_in_the_middle_of_its_monotonic_readings() {
        let (clock, mock) = quanta::Clock::mock();
        // Not at zero, where the middle and the sum of the two readings would be the same.
        mock.increment(Duration::from_secs(3));
        let before = SystemTime::now();
        let anchor = Anchor::read(&clock);
        assert!(anchor.wall >= before && anchor.wall <= SystemTime::now());
        // A mock clock stands still: both readings, and their middle, are its value.
        assert_eq!(anchor.monotonic, clock.raw());
    }
}
