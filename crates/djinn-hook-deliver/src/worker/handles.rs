//! Handles on a running worker: [`WorkerWaker`], [`BreakerMonitor`] and [`LimitMonitor`].

use std::fmt;
use std::sync::Arc;

use super::breaker::{BreakerState, BreakerStatus};
use super::limits::LimitStatus;
use super::state::Shared;
#[cfg(doc)]
use crate::worker::Worker;

/// Wakes a [`Worker`] that is waiting for due tasks, so it claims at once instead of at the end
/// of its `poll_interval`. Cheap to clone and to call (a lock and a notification); waking a
/// worker that is busy or not running does no harm (it claims once more).
#[derive(Clone)]
pub struct WorkerWaker {
    pub(super) shared: Arc<Shared>,
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
    pub(super) shared: Arc<Shared>,
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

/// Reports a [`Worker`]'s adaptive limits per webhook (see [`LimitStatus`]), e.g. for metrics:
/// cheap to clone, safe to call from any thread while the worker runs.
#[derive(Clone)]
pub struct LimitMonitor {
    pub(super) shared: Arc<Shared>,
}

impl fmt::Debug for LimitMonitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LimitMonitor").finish_non_exhaustive()
    }
}

impl LimitMonitor {
    /// Every webhook whose limit is below its cap, that is paused, or whose receiver answers
    /// slowly, by webhook id.
    pub fn statuses(&self) -> Vec<LimitStatus> {
        self.shared.limit_statuses()
    }

    /// The status of webhook `hook_id`, if its limit is not plainly at its cap.
    pub fn status(&self, hook_id: i64) -> Option<LimitStatus> {
        self.statuses().into_iter().find(|s| s.hook_id == hook_id)
    }
}
