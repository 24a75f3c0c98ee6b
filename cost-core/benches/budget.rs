//! Reserve + settle of one call against 3 applicable budgets, in ns per call.
//!
//! `cargo bench -p cost-core --bench budget`
//!
//! - `budget/reserve_settle_3`: one thread; session (lifetime), user (day) and global (month)
//!   deny budgets apply to every call.
//! - `budget/two_threads_one_budget`: two threads racing on the same three budgets; wall time
//!   divided by all calls of both threads.

use std::hint::black_box;
use std::time::{Duration, Instant};

use cost_core::Money;
use cost_core::budget::{Budget, BudgetBook, BudgetConfig, BudgetScope, CallKeys, Window};
use criterion::{Criterion, criterion_group, criterion_main};

fn book() -> BudgetBook {
    let huge = Money::from_usd(1_000_000_000);
    let config = BudgetConfig {
        budgets: vec![
            Budget::deny("session", BudgetScope::Session, Window::Lifetime, huge),
            Budget::deny("user", BudgetScope::User, Window::Day, huge),
            Budget::deny("global", BudgetScope::Global, Window::Month, huge),
        ],
        ..BudgetConfig::default()
    };
    BudgetBook::new(config).unwrap_or_else(|e| panic!("{e}"))
}

fn keys() -> CallKeys {
    CallKeys {
        call: "call".into(),
        session: Some("s-1".into()),
        user: Some("u-1".into()),
        ..CallKeys::default()
    }
}

fn budget(c: &mut Criterion) {
    let mut group = c.benchmark_group("budget");
    let worst = Money::from_decimal("0.015").unwrap_or_default();
    let actual = Money::from_decimal("0.01").unwrap_or_default();
    let book = book();
    let keys = keys();
    group.bench_function("reserve_settle_3", |b| {
        b.iter(|| {
            if let Ok(reservation) = book.reserve(black_box(&keys), worst) {
                black_box(reservation.settle(actual));
            }
        })
    });
    group.bench_function("two_threads_one_budget", |b| {
        b.iter_custom(|iterations| {
            let book = book.clone();
            let start = Instant::now();
            std::thread::scope(|scope| {
                for _ in 0..2 {
                    let book = book.clone();
                    let keys = keys.clone();
                    scope.spawn(move || {
                        for _ in 0..iterations.div_ceil(2) {
                            if let Ok(reservation) = book.reserve(&keys, worst) {
                                black_box(reservation.settle(actual));
                            }
                        }
                    });
                }
            });
            let elapsed: Duration = start.elapsed();
            elapsed
        })
    });
    group.finish();
}

criterion_group!(benches, budget);
criterion_main!(benches);
