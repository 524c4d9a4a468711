//! Where a [`Store`](crate::Store) reads the time: a [`Clock`] it holds, the system's unless
//! one is given ([`Store::with_clock`](crate::Store::with_clock)).
//!
//! A clock on the store, rather than a `now` argument on each method that needs one: the
//! methods that read the time (accepting events, rotating a secret, redelivering, pruning,
//! handing back claims, stamping what they create) are called from the server, the CLI and
//! the worker, whose callers have no time of their own to give, and a `now` on each would let
//! two calls of one process disagree on it. The methods that schedule against a time the
//! caller chose still take it (`claim`, `take_probe`, `defer`, `success_rates`). The backends
//! never read the time: the public `Store` reads its clock once per call and passes `now`
//! down, so a test with a [`ManualClock`] moves time for both backends alike, and never
//! sleeps to let it pass.

use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use time::OffsetDateTime;

/// The time as a [`Store`](crate::Store) reads it.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> OffsetDateTime;
}

/// The system's clock (`OffsetDateTime::now_utc`): every store's unless it is given another.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that stands still until it is moved: for tests, so that a time passing (an overlap
/// ending, a lease running out, an event growing old) takes no time.
#[derive(Debug)]
pub struct ManualClock(Mutex<OffsetDateTime>);

impl ManualClock {
    /// A clock standing at `now`.
    pub fn new(now: OffsetDateTime) -> ManualClock {
        ManualClock(Mutex::new(now))
    }

    /// A clock standing at the system's current time.
    pub fn at_system_now() -> ManualClock {
        ManualClock::new(OffsetDateTime::now_utc())
    }

    /// Moves the clock to `now` (backwards too).
    pub fn set(&self, now: OffsetDateTime) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = now;
    }

    /// Moves the clock `by` forward.
    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
