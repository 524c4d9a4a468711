//! The seam between the public [`Store`](crate::Store) and its two backends, SQLite
//! (`sqlite.rs` and its siblings: `SqliteBackend`) and
//! PostgreSQL (`pg/`: `PgBackend`).
//!
//! [`Backend`] is the one trait both implement; the compiler checks that each has every method.
//! It is made of one part per area, so that each backend implements a part in the file that
//! holds that area's SQL (Rust wants a trait's impl in one block, and one file per backend
//! holding all of its SQL would be thousands of lines). A method is the storage of the
//! `Store` method of the same name, documented there once: the rules that are not SQL (the
//! claim cursor, the at-cap marks, the clock, process liveness) stay in the public `Store`,
//! and the arguments they decide (`now`, `after`, `holder`, ...) are passed in here.
//!
//! Adding a store method: one method on the part of its area here, its two impls (one in
//! `src/`, one in `src/pg/`), one public `Store` method (`dispatch.rs`) that calls it through
//! `self.backend()`, and a test in the conformance suite (`tests/it`, `conformance!`), which
//! runs it on both.

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::time::Duration;

use djinn_hook_outbox::{
    BreakerOpening, ClaimRequest, Claimed, Completion, Deferral, LimitNote, ProbeTurn, PutOff,
    Release, SharedBreaker, Task,
};
use djinn_hook_payload::EventType;
use time::OffsetDateTime;

use crate::error::Result;
use crate::liveness::ProcessId;
use crate::types::{
    Accepted, Completed, Counts, Delivery, DeliveryFilter, LastResponse, LimitsUpdate, Namespace,
    NewEvent, NewWebhook, Page, Paged, Pruned, Recovery, SuccessRate, Webhook, WebhookUpdate,
};

/// A backend: every part below (`impl Backend for SqliteBackend {}` in `sqlite.rs`, and for
/// `PgBackend` in `pg/mod.rs`, where the compiler checks that each has them all).
pub(crate) trait Backend:
    Namespaces
    + Webhooks
    + Rotation
    + Intake
    + Claims
    + Breakers
    + Deferrals
    + LimitNotes
    + DeliveryLog
    + Processes
    + TestDeliveries
    + Recoveries
    + Send
    + Sync
    + Debug
{
}

/// Namespaces (`sqlite.rs`, `pg/mod.rs`).
pub(crate) trait Namespaces {
    fn check_reachable(&self) -> Result<()>;
    fn ensure_namespace(&self, name: &str, now: OffsetDateTime) -> Result<Namespace>;
    fn namespace(&self, name: &str) -> Result<Option<Namespace>>;
    fn namespaces(&self) -> Result<Vec<Namespace>>;
}

/// Webhooks (`hooks.rs`, `pg/hooks.rs`).
pub(crate) trait Webhooks {
    fn create_webhook(&self, new: NewWebhook, now: OffsetDateTime) -> Result<Webhook>;
    fn webhook(&self, id: i64) -> Result<Option<Webhook>>;
    fn webhooks(&self, namespace: &str) -> Result<Vec<Webhook>>;
    fn all_webhooks(&self) -> Result<Vec<Webhook>>;
    /// An update of the webhook's settings alone: the same for every backend.
    fn update_webhook(
        &self,
        id: i64,
        update: WebhookUpdate,
        now: OffsetDateTime,
    ) -> Result<Webhook> {
        self.update_webhook_with(id, update, LimitsUpdate::default(), now)
    }
    fn update_webhook_with(
        &self,
        id: i64,
        update: WebhookUpdate,
        limits: LimitsUpdate,
        now: OffsetDateTime,
    ) -> Result<Webhook>;
    /// An update of the webhook's limits alone: the same for every backend.
    fn update_webhook_limits(
        &self,
        id: i64,
        limits: LimitsUpdate,
        now: OffsetDateTime,
    ) -> Result<Webhook> {
        self.update_webhook_with(id, WebhookUpdate::default(), limits, now)
    }
    fn delete_webhook(&self, id: i64) -> Result<()>;
}

/// Secret rotation (`rotation.rs`, `pg/rotation.rs`).
pub(crate) trait Rotation {
    /// `until`: the end of the previous secret's overlap (nanoseconds), `None` for none.
    fn rotate_secret(&self, id: i64, secret: &str, until: Option<i64>) -> Result<Webhook>;
    /// Deletes the previous secrets whose overlap ended at or before `now`.
    fn clear_ended_rotations(&self, now: OffsetDateTime) -> Result<u64>;
}

/// The outbox: accepting events, completing, redelivering (`outbox.rs`, `pg/outbox.rs`).
pub(crate) trait Intake {
    fn accept_event(&self, event: NewEvent, now: OffsetDateTime) -> Result<Accepted>;
    fn accept_events(&self, events: Vec<NewEvent>, now: OffsetDateTime) -> Result<Vec<Accepted>>;
    fn complete(&self, completions: &[Completion], now: OffsetDateTime) -> Result<Vec<Completed>>;
    fn redeliver(&self, delivery_id: i64, now: OffsetDateTime) -> Result<i64>;
    fn retry_now(&self, hook_id: i64, now: OffsetDateTime) -> Result<u64>;
    fn next_due_at(&self, now: OffsetDateTime) -> Result<Option<OffsetDateTime>>;
    fn counts(&self, now: OffsetDateTime) -> Result<Counts>;
    /// Deletes the idempotency keys whose window ended at or before `now`.
    fn clear_expired_keys(&self, now: OffsetDateTime) -> Result<u64>;
}

/// What a claim got, the webhook it served last and the webhooks it found at their cap.
pub(crate) type ClaimOutcome = (Claimed, Option<i64>, Vec<i64>);

/// Claims (`claim.rs`, `pg/claim.rs`).
pub(crate) trait Claims {
    /// Starts after webhook `after` and passes over the webhooks of `at_cap` (known to be at
    /// their cap: their due tasks count as held back); returns what it got, the webhook it
    /// served last and the webhooks it found at their cap. The leases are `holder`'s.
    fn claim(
        &self,
        now: OffsetDateTime,
        claim: &ClaimRequest,
        after: i64,
        holder: Option<ProcessId>,
        at_cap: &HashSet<i64>,
    ) -> Result<ClaimOutcome>;
    fn put_off(&self, put_off: &[PutOff]) -> Result<usize>;
    fn breaker_closed(&self, destination: &str) -> Result<()>;
}

/// Shared circuit breakers (`breakers.rs`, `pg/breakers.rs`).
pub(crate) trait Breakers {
    fn breaker_opened(
        &self,
        openings: &[BreakerOpening],
        notice_after: Option<std::time::Duration>,
        now: OffsetDateTime,
    ) -> Result<()>;
    fn open_breakers(&self) -> Result<Vec<SharedBreaker>>;
    fn take_probe(
        &self,
        destination: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<ProbeTurn>;
    /// Deletes the breakers whose open period ended before `before` with no probe since.
    fn clear_forgotten_breakers(&self, before: OffsetDateTime) -> Result<u64>;
}

/// Deferrals (`defer.rs`, `pg/defer.rs`).
pub(crate) trait Deferrals {
    fn defer(&self, now: OffsetDateTime, deferrals: &[Deferral]) -> Result<usize>;
}

/// Adaptive limits as a worker reports them (`limit_notes.rs`, `pg/limit_notes.rs`).
pub(crate) trait LimitNotes {
    fn limits_changed(&self, notes: &[LimitNote]) -> Result<()>;
}

/// The delivery log and its pruning (`log.rs`, `pg/log.rs`).
pub(crate) trait DeliveryLog {
    fn deliveries(&self, filter: DeliveryFilter, page: Page) -> Result<Paged<Delivery>>;
    fn delivery(&self, id: i64) -> Result<Option<Delivery>>;
    fn last_responses(&self, hook_ids: &[i64]) -> Result<HashMap<i64, LastResponse>>;
    fn success_rates(
        &self,
        hook_ids: &[i64],
        since: OffsetDateTime,
    ) -> Result<HashMap<i64, SuccessRate>>;
    /// `progress` is told the totals so far after each batch.
    fn prune_before(
        &self,
        cutoff: OffsetDateTime,
        progress: &mut dyn FnMut(&Pruned),
    ) -> Result<Pruned>;
}

/// Handing claims back (`process.rs`, `pg/process.rs`). How a dead process is found differs
/// too much to share a signature (a lock file, an advisory lock): the public `Store` asks each
/// backend its own way (`dispatch/liveness.rs`).
pub(crate) trait Processes {
    /// Hands back every claim of process `me` (due at `now`) and forgets it.
    fn retire(&self, me: ProcessId, now: OffsetDateTime) -> Result<u64>;
    /// Hands back claimed tasks, due at `now`.
    fn release(&self, tasks: &[Release], now: OffsetDateTime) -> Result<usize>;
}

/// Bulk recovery (`recover.rs`, `pg/recover.rs`).
pub(crate) trait Recoveries {
    /// The tasks it queues are due at `now`.
    fn recover(&self, recovery: &Recovery, limit: usize, now: OffsetDateTime) -> Result<u64>;
    fn recover_count(&self, recovery: &Recovery) -> Result<u64>;
}

/// Test deliveries (`queue_test.rs`, `pg/queue_test.rs`).
pub(crate) trait TestDeliveries {
    fn queue_test(
        &self,
        hook_id: i64,
        event: EventType,
        body: Vec<u8>,
        lease: Duration,
        holder: Option<ProcessId>,
        now: OffsetDateTime,
    ) -> Result<Task>;
}
