//! Handles on a running worker: [`WorkerWaker`] and [`BreakerMonitor`].

use std::fmt;
use std::sync::Arc;

use crate::breaker::{BreakerState, BreakerStatus};
#[cfg(doc)]
use crate::worker::Worker;
use crate::worker::machinery::Shared;

/// Wakes a [`Worker`] that is waiting for due tasks, so it claims at once instead of at the end
/// of its `poll_interval`. Cheap to clone and to call (a lock and a notification); waking a
/// worker that is busy or not running does no harm (it claims once more).
#[derive(Clone)]
pub struct WorkerWaker {
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for WorkerWaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerWaker").finish_non_exhaustive()
    }
}

impl WorkerWaker {
    /// Makes the worker claim now (if it was waiting for due tasks).
    pub fn wake(&self) {
        self.shared.wake();
    }
}

/// Reports a [`Worker`]'s circuit breakers, e.g. for metrics: cheap to clone, safe to call from
/// any thread while the worker runs (it takes the worker's lock briefly).
#[derive(Clone)]
pub struct BreakerMonitor {
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for BreakerMonitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerMonitor").finish_non_exhaustive()
    }
}

impl BreakerMonitor {
    /// Every destination with a breaker that is open, probing, or counting failures.
    pub fn statuses(&self) -> Vec<BreakerStatus> {
        self.shared.breaker_statuses()
    }

    /// Breakers open or probing.
    pub fn open(&self) -> usize {
        self.statuses()
            .iter()
            .filter(|b| b.state != BreakerState::Closed)
            .count()
    }

    /// Tasks put off by the breakers open or probing now (distinct tasks).
    pub fn tasks_held(&self) -> usize {
        self.statuses()
            .iter()
            .filter(|b| b.state != BreakerState::Closed)
            .map(|b| b.tasks_held)
            .sum()
    }
}
