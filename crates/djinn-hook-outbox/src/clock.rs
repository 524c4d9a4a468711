//! [`Clock`]: where a worker and a store read the time, so a test can move it ([`ManualClock`])
//! instead of sleeping; [`SystemClock`] is the real one. One clock for both sides of the
//! outbox: a test moves a store's and a worker's time with one handle.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Waker;
use std::time::{Duration, Instant};

use time::OffsetDateTime;

/// The time as a worker and a store read it (djinn-hook-deliver's `Worker::with_clock`,
/// djinn-hook-store's `Store::with_clock`): monotonic for a worker's waits, leases and
/// limits, wall-clock for what is written to the outbox and what a store stamps and compares.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The monotonic time.
    fn now(&self) -> Instant;

    /// The wall-clock time.
    fn now_utc(&self) -> OffsetDateTime;

    /// Wakes `waker` whenever the clock is moved other than by time passing (a test clock
    /// moved by hand), so that a worker waiting for a time wakes up when it comes. The real
    /// clock has nothing to report.
    fn wake_when_moved(&self, waker: Waker) {
        let _ = waker;
    }
}

/// The system's clocks.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn now_utc(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that stands still until [`advance`](Self::advance)d, for tests: a worker's poll
/// interval, pauses and breakers, a store's overlaps, leases and retention end when the test
/// says, not after a real wait. Cheap to clone (the clones share the time).
#[derive(Clone)]
pub struct ManualClock {
    inner: Arc<Mutex<Manual>>,
}

struct Manual {
    now: Instant,
    now_utc: OffsetDateTime,
    /// Woken at each move.
    wakers: Vec<Waker>,
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let manual = self.lock();
        f.debug_struct("ManualClock")
            .field("now_utc", &manual.now_utc)
            .finish_non_exhaustive()
    }
}

impl Default for ManualClock {
    fn default() -> ManualClock {
        ManualClock::new()
    }
}

impl ManualClock {
    /// A clock at the present time, standing still.
    pub fn new() -> ManualClock {
        ManualClock::starting_at(OffsetDateTime::now_utc())
    }

    /// A clock standing at the wall-clock time `now_utc` (its monotonic time starts at the
    /// present).
    pub fn starting_at(now_utc: OffsetDateTime) -> ManualClock {
        ManualClock {
            inner: Arc::new(Mutex::new(Manual {
                now: Instant::now(),
                now_utc,
                wakers: Vec::new(),
            })),
        }
    }

    /// Moves the clock `by` forward and wakes whoever waits on it.
    pub fn advance(&self, by: Duration) {
        let wakers = {
            let mut manual = self.lock();
            manual.now += by;
            manual.now_utc += by;
            manual.wakers.clone()
        };
        for waker in wakers {
            waker.wake();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Manual> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.lock().now
    }

    fn now_utc(&self) -> OffsetDateTime {
        self.lock().now_utc
    }

    fn wake_when_moved(&self, waker: Waker) {
        let mut manual = self.lock();
        if !manual.wakers.iter().any(|known| known.will_wake(&waker)) {
            manual.wakers.push(waker);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wake_count::Count;

    #[test]
    fn a_manual_clock_moves_only_when_advanced_and_wakes_its_waiters() {
        let clock = ManualClock::new();
        let (t0, wall0) = (clock.now(), clock.now_utc());
        let woken = Arc::new(Count::default());
        clock.wake_when_moved(Waker::from(Arc::clone(&woken)));
        assert_eq!((clock.now(), clock.now_utc()), (t0, wall0));
        clock.clone().advance(Duration::from_secs(90));
        assert_eq!(clock.now(), t0 + Duration::from_secs(90));
        assert_eq!(clock.now_utc(), wall0 + Duration::from_secs(90));
        assert_eq!(woken.get(), 1);
    }
}
