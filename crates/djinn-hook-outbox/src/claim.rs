//! Claiming: what a worker asks for ([`ClaimRequest`]) and what it gets ([`Claimed`] [`Task`]s).

use std::fmt;
use std::time::Duration;

use time::OffsetDateTime;

use crate::lease::LeaseToken;
use crate::request::DeliveryRequest;

/// What a claim asks for ([`Outbox::claim`](crate::Outbox::claim)).
///
/// A webhook may hold at most `max_in_flight × leases_per_slot` live leases (its own
/// [`Task::max_in_flight`] if it has one, else this `max_in_flight`): its deliveries at once,
/// and the worker's queue behind each. A webhook at that cap gets nothing; the others share the
/// claim round-robin.
///
/// Made with [`ClaimRequest::uncapped`], then capped by setting its fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClaimRequest {
    /// Most tasks to claim.
    pub limit: usize,
    /// How long each lease lasts.
    pub lease: Duration,
    /// Deliveries at once of a webhook without its own cap. [`uncapped`](Self::uncapped):
    /// `usize::MAX`.
    pub max_in_flight: usize,
    /// Leases a webhook may hold per delivery it may make at once (at least 1).
    /// [`uncapped`](Self::uncapped): 1.
    pub leases_per_slot: usize,
}

impl ClaimRequest {
    /// Up to `limit` tasks leased for `lease`, no webhook capped.
    pub fn uncapped(limit: usize, lease: Duration) -> ClaimRequest {
        ClaimRequest {
            limit,
            lease,
            max_in_flight: usize::MAX,
            leases_per_slot: 1,
        }
    }
}

/// What a claim got.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Claimed {
    /// The leased tasks, round-robin across webhooks.
    pub tasks: Vec<Task>,
    /// Due tasks were left because their webhooks were at their cap: claim again once some of
    /// their leases end (a completion), not only at the next poll.
    pub held_back: bool,
}

/// A leased task: everything one delivery attempt needs. Its `Debug` (through the request's)
/// never shows the secret or the URL's user-info.
#[derive(Clone, PartialEq, Eq)]
pub struct Task {
    /// The task's id.
    pub task_id: i64,
    /// The token of this claim; give it back in the [`Completion`](crate::Completion).
    pub lease: LeaseToken,
    /// When the lease runs out and the task may be claimed again.
    pub lease_until: OffsetDateTime,
    /// When the event was accepted.
    pub event_created_at: OffsetDateTime,
    /// When the webhook's current run of failed attempts started (`None` if its last attempt
    /// succeeded or it has none), for the retry policy's disable rule.
    pub hook_failing_since: Option<OffsetDateTime>,
    /// The webhook's own cap on its deliveries at once; `None`: the worker's.
    pub max_in_flight: Option<u32>,
    /// What to send (`request.attempt` is this attempt's number, 1 = first).
    pub request: DeliveryRequest,
}

impl fmt::Debug for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("task_id", &self.task_id)
            .field("lease", &self.lease)
            .field("lease_until", &self.lease_until)
            .field("event_created_at", &self.event_created_at)
            .field("hook_failing_since", &self.hook_failing_since)
            .field("max_in_flight", &self.max_in_flight)
            .field("request", &self.request)
            .finish()
    }
}
