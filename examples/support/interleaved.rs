//! Timing several subscribers against each other on a noisy machine.
//!
//! Timed apart, two runs of one subscriber a few seconds from each other can differ by tens of
//! percent on a shared machine, more than the difference between two subscribers. Here short
//! bursts of the same work run under each subscriber in turn (the first of each turn rotating),
//! so all of them see the same machine, and each one's figure is the median of its bursts,
//! which leaves out the bursts a busy neighbour or a preemption slowed.

use std::time::{Duration, Instant};

use tracing::Dispatch;

/// Median ns per operation of `turns` bursts under each of `dispatches`, after as many turns
/// again for warm-up. `burst(turn)` does `ops_per_burst` operations (it runs under the
/// dispatcher being timed); `pause` follows each burst, for background threads to catch up.
/// The dispatchers are dropped on return (a bare registry keeps every span it closed).
pub(crate) fn medians<const N: usize>(
    dispatches: [Dispatch; N],
    turns: u64,
    ops_per_burst: u64,
    pause: Duration,
    mut burst: impl FnMut(u64),
) -> [f64; N] {
    let mut timings: [Vec<Duration>; N] = std::array::from_fn(|_| Vec::new());
    for turn in 0..2 * turns {
        for k in 0..dispatches.len() {
            let which = (k + turn as usize) % dispatches.len();
            let elapsed = tracing::dispatcher::with_default(&dispatches[which], || {
                let start = Instant::now();
                burst(turn);
                start.elapsed()
            });
            if turn >= turns {
                timings[which].push(elapsed);
            }
            let paused = Instant::now();
            while paused.elapsed() < pause {
                std::hint::spin_loop();
            }
        }
    }
    timings.map(|mut bursts| {
        bursts.sort_unstable();
        bursts.get(bursts.len() / 2).map_or(f64::NAN, |median| {
            median.as_nanos() as f64 / ops_per_burst as f64
        })
    })
}
