//! Budgets: limits on spend per call, agent run, session, user, org, feature, model or in all,
//! over the span's lifetime, a UTC day, a UTC month or a rolling duration; alerts at
//! thresholds; and calls refused *before* they run when a deny budget would be exceeded.
//!
//! One comparison everywhere: **spend + reservations > limit is over; equal is within.**
//!
//! # TOML
//!
//! ```toml
//! per_call_max = 1.00        # shorthands: [per_]{call|agent|session}_max,
//! per_session_max = 10.00    #             [per_]{user|org|feature|model|global}_{daily|monthly}
//! per_user_daily = 50.00     # (deny budgets with thresholds at 50 %, 80 %, 100 %)
//! org_daily = 1000.00
//! per_call_alert = 0.50      # alert when one call costs more
//! unpriced_calls = "deny"    # refuse a call no price can bound (default: "admit")
//! cancelled_calls = "hold"   # a call cancelled in flight keeps its reservation as spent
//!                            # (the default; "release" frees it, as for a failed call)
//!
//! [[budget]]                 # "alert at 80 % of a $5,000 monthly budget"
//! name = "monthly"
//! scope = "global"           # call, agent, session, user, org, feature, model, global
//! window = "month"           # lifetime, day, month, "rolling 1h"
//! limit = 5000
//! thresholds = [0.8]
//! policy = "alert"           # or "deny" (default)
//! # key = "acme"             # one key only (default: each key of the scope)
//!
//! [spike]                    # today's projected spend against the average of previous days
//! factor = 2.0
//! min_history_days = 3
//! ```

mod book;
mod clock;
mod config;
#[doc(hidden)]
pub mod core;
pub mod shared;

pub use book::{BudgetAlert, BudgetBook, BudgetExceeded, CallKeys, RefusalCause, Reservation};
pub use clock::{
    Clock, ManualClock, SystemClock, civil_from_days, days_from_civil, parse_utc_date, utc_day,
    utc_month,
};
pub use config::{
    Budget, BudgetConfig, BudgetConfigError, BudgetScope, CancelledCalls, DEFAULT_THRESHOLDS,
    Policy, SpikeAlert, Threshold, UnpricedCalls, Window,
};
pub use shared::{SharedAccounts, SharedKey, SharedRefusal, SharedReservation, Unavailable};
