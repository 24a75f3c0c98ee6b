//! `loom` models of the budget book's concurrent core: every interleaving of racing
//! reservations, with rollback across two accounts, never admits more than a limit and leaves
//! exact figures; a threshold alert is claimed exactly once; the book's clock never goes back;
//! an idle account is retired or booked on, never both.
//!
//! `RUSTFLAGS="--cfg cost_loom" cargo test -p cost-core --release --test loom_reservation`
//! (`.ci/run` runs it).
#![cfg(cost_loom)]

use cost_core::budget::core::{Account, Refused, reserve_all};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};

#[test]
fn racing_reservations_never_over_admit() {
    loom::model(|| {
        // Account A allows two reservations of 10; B allows one. Three threads each try to
        // book 10 on A then B.
        let a = Arc::new(Account::new());
        let b = Arc::new(Account::new());
        let admitted = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (a, b, admitted) = (Arc::clone(&a), Arc::clone(&b), Arc::clone(&admitted));
                loom::thread::spawn(move || {
                    if reserve_all(&[(&a, 20), (&b, 10)], 10).is_ok() {
                        admitted.fetch_add(1, Ordering::SeqCst);
                        // Settle below the reservation.
                        a.settle(10, 7);
                        b.settle(10, 7);
                    }
                })
            })
            .collect();
        // The main thread reserves too, and checks the invariant while others run.
        let mine = reserve_all(&[(&a, 20), (&b, 10)], 10).is_ok();
        let (spent_b, reserved_b) = b.figures();
        assert!(spent_b + reserved_b <= 10 + 7, "B over its limit");
        if mine {
            admitted.fetch_add(1, Ordering::SeqCst);
            a.settle(10, 7);
            b.settle(10, 7);
        }
        for thread in threads {
            thread.join().unwrap_or_else(|_| panic!("thread panicked"));
        }
        let admitted = admitted.load(Ordering::SeqCst) as i128;
        let (spent_a, reserved_a) = a.figures();
        let (spent_b, reserved_b) = b.figures();
        // Nothing stays reserved; what was admitted is exactly what was spent, on both.
        assert_eq!((reserved_a, reserved_b), (0, 0));
        assert_eq!((spent_a, spent_b), (7 * admitted, 7 * admitted));
        assert!(admitted >= 1);
    });
}

#[test]
fn a_reservation_is_all_or_nothing() {
    loom::model(|| {
        let a = Arc::new(Account::new());
        let b = Arc::new(Account::new());
        let other = {
            let (a, b) = (Arc::clone(&a), Arc::clone(&b));
            loom::thread::spawn(move || reserve_all(&[(&a, 10), (&b, 5)], 10).is_ok())
        };
        let mine = reserve_all(&[(&b, 5), (&a, 10)], 5).is_ok();
        let theirs = other.join().unwrap_or(false);
        // B (limit 5) can never hold theirs (10): refused, and its booking on A released.
        assert!(!theirs);
        // Mine is booked on both accounts or on none. (It may be refused while theirs briefly
        // holds A: a refusal can be spurious, an admission never is.)
        let expected = if mine { (0, 5) } else { (0, 0) };
        assert_eq!(a.figures(), expected);
        assert_eq!(b.figures(), expected);
    });
}

#[test]
fn a_threshold_is_claimed_by_exactly_one_of_racing_settlements() {
    use cost_core::budget::core::Fired;
    loom::model(|| {
        let fired = Arc::new(Fired::new());
        let claims = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (fired, claims) = (Arc::clone(&fired), Arc::clone(&claims));
                loom::thread::spawn(move || {
                    // Two settlements cross the same threshold (bit 1), one also bit 0.
                    if fired.claim(1) {
                        claims.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        let zero = fired.claim(0);
        for thread in threads {
            thread.join().unwrap_or_else(|_| panic!("thread panicked"));
        }
        assert!(zero, "an unclaimed threshold is claimed");
        assert_eq!(
            claims.load(Ordering::SeqCst),
            1,
            "bit 1 claimed exactly once"
        );
        assert!(
            !fired.claim(1) && !fired.claim(0),
            "claimed once means never again"
        );
    });
}

#[test]
fn the_clock_through_latest_never_goes_back() {
    use cost_core::budget::core::Latest;
    loom::model(|| {
        let latest = Arc::new(Latest::new());
        let other = {
            let latest = Arc::clone(&latest);
            // Another thread reads a clock that is ahead.
            loom::thread::spawn(move || latest.advance(200))
        };
        let first = latest.advance(100);
        let second = latest.advance(50); // the clock jumped back
        let theirs = other.join().unwrap_or_else(|_| panic!("thread panicked"));
        assert!(second >= first, "time went back: {first} then {second}");
        assert!(first >= 100 && theirs >= 200);
        assert_eq!(latest.advance(0), 200);
    });
}

#[test]
fn the_figures_lock_excludes_and_publishes() {
    use cost_core::budget::core::SpinThenYield;
    use loom::cell::UnsafeCell;

    /// A counter behind the lock; loom's cell reports any access not ordered after the
    /// previous one (two holders at once, or a release that publishes nothing).
    struct Guarded {
        lock: SpinThenYield,
        count: UnsafeCell<u32>,
    }
    // SAFETY: `count` is only touched between `acquire` and `release`.
    #[allow(unsafe_code)]
    unsafe impl Sync for Guarded {}

    fn increment(guarded: &Guarded) {
        guarded.lock.acquire();
        // SAFETY: the lock is held.
        #[allow(unsafe_code)]
        guarded.count.with_mut(|count| unsafe { *count += 1 });
        guarded.lock.release();
    }

    loom::model(|| {
        let guarded = Arc::new(Guarded {
            lock: SpinThenYield::new(),
            count: UnsafeCell::new(0),
        });
        let other = {
            let guarded = Arc::clone(&guarded);
            loom::thread::spawn(move || increment(&guarded))
        };
        increment(&guarded);
        other.join().unwrap_or_else(|_| panic!("thread panicked"));
        guarded.lock.acquire();
        #[allow(unsafe_code)]
        let count = guarded.count.with(|count| unsafe { *count });
        guarded.lock.release();
        assert_eq!(count, 2);
    });
}

#[test]
fn an_idle_account_is_retired_or_booked_on_never_both() {
    loom::model(|| {
        let account = Arc::new(Account::new());
        let pruner = {
            let account = Arc::clone(&account);
            loom::thread::spawn(move || account.retire_if_idle())
        };
        let reserved = account.try_reserve(10, 10);
        let charged = account.try_charge(3);
        let retired = pruner.join().unwrap_or_else(|_| panic!("thread panicked"));
        match (reserved, retired) {
            // Booked first: the account held something, so it was not retired.
            (Ok(()), false) => {
                assert_eq!(charged, Some(3));
                assert_eq!(account.figures(), (3, 10));
            }
            // Retired first: nothing was booked on it, and nothing is.
            (Err(Refused::Retired), true) => {
                assert_eq!(charged, None);
                assert_eq!(account.figures(), (0, 0));
            }
            other => panic!("booked and retired, or neither: {other:?}"),
        }
    });
}
