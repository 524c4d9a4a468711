//! What a worker tells: its [`Stats`], and the [`WorkerEvent`]s its observer sees.

use std::time::Duration;

use djinn_hook_outbox::{Completion, Destination, OutboxError};

#[cfg(doc)]
use crate::worker::Worker;

/// Counters of one [`Worker::run`] or [`Worker::run_until_idle`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Tasks claimed and queued for a delivery thread (a task claimed again after its lease ran
    /// out in the queue counts again).
    pub claimed: u64,
    /// Attempts committed.
    pub attempts: u64,
    /// Committed attempts that delivered (2xx).
    pub delivered: u64,
    /// Committed attempts with a retry scheduled.
    pub retries_scheduled: u64,
    /// Committed attempts the receiver throttled (429 or 503): retried, not counted.
    pub throttled: u64,
    /// Committed attempts that failed their task for good.
    pub failed: u64,
    /// Committed decisions that disable a webhook.
    pub hooks_disabled: u64,
    /// Successful `complete` calls.
    pub batches: u64,
    /// Failed `claim` calls.
    pub claim_errors: u64,
    /// Failed `complete` calls (each retried).
    pub complete_errors: u64,
    /// Attempts whose batch could not be committed at all.
    pub abandoned: u64,
    /// Tasks put off without an attempt because their destination's breaker was open.
    pub put_off: u64,
    /// Tasks handed back without an attempt because the worker stopped before starting them.
    pub released: u64,
    /// Times a breaker opened (again, after a failed probe, included).
    pub breakers_opened: u64,
    /// Times a breaker closed.
    pub breakers_closed: u64,
}

/// What a [`Worker`] reports to its observer (for log lines and progress).
#[derive(Debug)]
#[non_exhaustive]
pub enum WorkerEvent<'a> {
    /// This completion was committed.
    Completed(&'a Completion),
    /// A batch was committed: the [`Completed`](Self::Completed) events of its attempts came
    /// just before (a cue to write output buffered per batch).
    BatchCommitted {
        /// Attempts in the batch.
        attempts: usize,
    },
    /// `claim` failed; the worker waits `poll_interval` and tries again.
    ClaimFailed(&'a OutboxError),
    /// `complete` failed for a batch of `batch` completions; it is retried after `retry_in`.
    CompleteFailed {
        /// The error.
        error: &'a OutboxError,
        /// Completions in the batch.
        batch: usize,
        /// Delay before the next try.
        retry_in: Duration,
    },
    /// `complete` kept failing: these attempts are not recorded; their tasks will be claimed
    /// again once their leases expire.
    Abandoned(&'a [Completion]),
    /// A destination's breaker opened: its tasks are put off until the probe.
    BreakerOpened {
        /// The destination.
        destination: &'a Destination,
        /// Why, e.g. `5 consecutive timeouts`.
        reason: &'a str,
        /// How long until the probe.
        open_for: Duration,
    },
    /// A destination's breaker closed: its tasks go out again.
    BreakerClosed {
        /// The destination.
        destination: &'a Destination,
    },
    /// `put_off` failed for this many tasks; they come back when their leases run out.
    PutOffFailed {
        /// The error.
        error: &'a OutboxError,
        /// Tasks in the call.
        tasks: usize,
    },
}

pub(crate) type Observer<'o> = Box<dyn FnMut(WorkerEvent<'_>) + Send + 'o>;
