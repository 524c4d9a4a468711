//! What becomes of a claimed task: a [`Completion`] (an attempt and the [`Decision`] on it) or
//! a [`PutOff`] (no attempt: its destination's breaker is open).

use std::fmt;

use time::OffsetDateTime;

use crate::attempt::Attempt;
use crate::destination::Destination;
use crate::lease::LeaseToken;

/// The fate of a task after an attempt.
///
/// Its words ([`as_str`](Self::as_str): `delivered`, `retry`, `throttled`, `failed`) are the
/// ones every log line, counter and command output uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The receiver accepted the event (2xx): the task is finished, and the webhook's run of
    /// failures (`failing_since`) is over.
    Delivered,
    /// Try again at this time; the webhook's run of failures starts now if it had not.
    RetryAt(OffsetDateTime),
    /// The receiver asked to slow down (429 or 503): try again at this time. The attempt is
    /// recorded but not counted against the retry schedule (the task's next attempt has the
    /// same number); the webhook's run of failures starts now if it had not, so a receiver that
    /// throttles forever is still disabled in the end.
    Throttled(OffsetDateTime),
    /// Failed for good (retries exhausted, 410 Gone, or the webhook was disabled): the task is
    /// kept as failed, to be retried by hand.
    Failed,
}

impl Outcome {
    /// `delivered`, `retry` or `failed`.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::RetryAt(_) => "retry",
            Outcome::Throttled(_) => "throttled",
            Outcome::Failed => "failed",
        }
    }

    /// When the task is due again, for [`Outcome::RetryAt`] and [`Outcome::Throttled`].
    pub const fn retry_at(&self) -> Option<OffsetDateTime> {
        match self {
            Outcome::RetryAt(at) | Outcome::Throttled(at) => Some(*at),
            Outcome::Delivered | Outcome::Failed => None,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What to do with a task after an attempt (the retry policy's answer). Made with
/// [`Decision::new`]; set `disable_hook` to disable the webhook too.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Decision {
    /// Whether the task is done, retried or failed.
    pub outcome: Outcome,
    /// `Some(reason)` when the webhook must be disabled (410 Gone, or failing for too long).
    /// [`new`](Self::new): `None`.
    pub disable_hook: Option<String>,
}

impl Decision {
    /// `outcome` for the task, the webhook left as it is.
    pub const fn new(outcome: Outcome) -> Decision {
        Decision {
            outcome,
            disable_hook: None,
        }
    }
}

/// The result of one claimed task's attempt, for [`Outbox::complete`](crate::Outbox::complete).
/// Made with [`Completion::new`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Completion {
    /// The task's id.
    pub task_id: i64,
    /// The lease token of the claim the attempt was made under.
    pub lease: LeaseToken,
    /// The attempt, always recorded (even when the lease is no longer current).
    pub attempt: Attempt,
    /// What to do with the task (applied only while the lease is current) and the webhook.
    pub decision: Decision,
}

impl Completion {
    /// The completion of task `task_id`, claimed under `lease`: `attempt` recorded, `decision`
    /// applied.
    pub fn new(
        task_id: i64,
        lease: LeaseToken,
        attempt: Attempt,
        decision: Decision,
    ) -> Completion {
        Completion {
            task_id,
            lease,
            attempt,
            decision,
        }
    }
}

/// A webhook whose due tasks are all put off until `until` without an attempt (its receiver's
/// breaker is open, or it is paused after a 429 or 503): so that a claim does not hand them out
/// one by one only to have them put off ([`Outbox::defer`](crate::Outbox::defer)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deferral {
    /// The webhook.
    pub hook_id: i64,
    /// When its tasks are due again.
    pub until: OffsetDateTime,
}

/// A webhook's adaptive delivery limit as a worker changed it, for an outbox that shows it
/// ([`Outbox::limits_changed`](crate::Outbox::limits_changed)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitNote {
    /// The webhook.
    pub hook_id: i64,
    /// Its limit below its cap, or its pause; `None`: back at its cap, nothing to show.
    pub reduced: Option<ReducedLimit>,
}

/// A webhook's limit below its cap, or its pause, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReducedLimit {
    /// Deliveries it may have under way at once (0 while paused).
    pub limit: u32,
    /// Why: `timeouts`, `slow answers` or `throttled`.
    pub reason: String,
    /// While paused (it answered 429 or 503), until when.
    pub paused_until: Option<OffsetDateTime>,
}

/// A claimed task put back without an attempt, because the circuit breaker of its destination
/// is open: due again at `until`, its claim not counted as an attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PutOff {
    /// The task's id.
    pub task_id: i64,
    /// The lease token of its claim (nothing happens if it is no longer current).
    pub lease: LeaseToken,
    /// When it is due again (the breaker's probe).
    pub until: OffsetDateTime,
    /// The destination whose breaker holds it.
    pub destination: Destination,
    /// Why the breaker opened, e.g. `5 consecutive timeouts`.
    pub reason: String,
}
