//! [`StoreOutbox`]: the store as the delivery worker's outbox; the only code that knows both crates.

use std::borrow::Borrow;
use std::time::Duration;

use djinn_hook_deliver::{
    Attempt, Completion, DecisionOutcome, DeliveryRequest, Outbox, OutboxError, Task, WebhookSecret,
};
use djinn_hook_store::{AttemptRecord, ClaimedTask, Outcome, RequestBody, Store};
use time::OffsetDateTime;
use uuid::Uuid;

/// Implements [`djinn_hook_deliver::Outbox`] over a [`djinn_hook_store::Store`]:
/// `claim` is [`Store::claim_due`] (now, limit, lease) turned into [`Task`]s,
/// `complete` is one [`Store::complete`] call (one transaction, one fsync) for
/// the whole batch.
///
/// No buffering here: the [`Worker`](djinn_hook_deliver::Worker) claims in
/// batches itself (it refills its queue only when it runs low), and a claim
/// does not wait for an fsync (see [`Store::claim_due`]).
///
/// ```no_run
/// use djinn_hook_deliver::{DeliverConfig, Deliverer, RetryPolicy, Worker, WorkerConfig};
/// use djinn_hook_store::{SecretKey, Store};
/// use djinn_hooks::StoreOutbox;
///
/// let store = Store::open("hooks.db", SecretKey::from_bytes([7; 32])).unwrap();
/// let worker = Worker::new(
///     StoreOutbox::new(&store),
///     Deliverer::new(DeliverConfig::default()),
///     RetryPolicy::default(),
///     WorkerConfig::default(),
/// );
/// let stats = worker.run_until_idle();
/// println!("{} attempts", stats.attempts);
/// ```
#[derive(Debug)]
pub struct StoreOutbox<S = Store> {
    store: S,
}

impl<S: Borrow<Store>> StoreOutbox<S> {
    /// The outbox over `store` (a `Store`, `&Store` or `Arc<Store>`).
    pub fn new(store: S) -> StoreOutbox<S> {
        StoreOutbox { store }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        self.store.borrow()
    }

    /// Gives the store back.
    pub fn into_inner(self) -> S {
        self.store
    }
}

impl<S: Borrow<Store> + Send + Sync> Outbox for StoreOutbox<S> {
    fn claim(&self, limit: usize, lease: Duration) -> Result<Vec<Task>, OutboxError> {
        let claimed = self
            .store()
            .claim_due(OffsetDateTime::now_utc(), limit, lease)
            .map_err(OutboxError::new)?;
        Ok(claimed.into_iter().map(task).collect())
    }

    fn complete(&self, done: &[Completion]) -> Result<(), OutboxError> {
        if done.is_empty() {
            return Ok(());
        }
        let completions = done.iter().map(completion).collect::<Result<Vec<_>, _>>()?;
        self.store()
            .complete(completions)
            .map_err(OutboxError::new)?;
        Ok(())
    }
}

/// A claimed store task as the worker's [`Task`].
fn task(claimed: ClaimedTask) -> Task {
    Task {
        task_id: claimed.task_id,
        lease: claimed.lease.to_string(),
        hook_failing_since: claimed.hook_failing_since,
        request: request(claimed),
    }
}

/// What a claimed store task asks the delivery layer to send (a worker's
/// claim through [`task`], a test delivery directly).
pub(crate) fn request(claimed: ClaimedTask) -> DeliveryRequest {
    DeliveryRequest {
        hook_id: claimed.hook_id,
        event_id: claimed.event_id,
        event: claimed.event,
        url: claimed.payload_url,
        ssl: claimed.ssl,
        secret: claimed.secret.map(WebhookSecret::new),
        standard_webhooks: claimed.standard_webhooks,
        body: claimed.body,
        attempt: claimed.attempt,
        redelivery: claimed.redelivery,
    }
}

/// The worker's [`Completion`] as the store's.
fn completion(done: &Completion) -> Result<djinn_hook_store::Completion, OutboxError> {
    let lease = Uuid::parse_str(&done.lease)
        .map_err(|_| OutboxError::new(format!("lease token {:?} is not a UUID", done.lease)))?;
    Ok(djinn_hook_store::Completion {
        task_id: done.task_id,
        lease,
        attempt: record(&done.attempt),
        outcome: match done.decision.outcome {
            DecisionOutcome::Delivered => Outcome::Delivered,
            DecisionOutcome::RetryAt(at) => Outcome::RetryAt(at),
            DecisionOutcome::Failed => Outcome::Failed,
        },
        disable_hook: done.decision.disable_hook.clone(),
    })
}

/// An [`Attempt`] as the store's delivery log record.
///
/// The body is recorded as [`RequestBody::Claimed`], not copied: every attempt
/// completed here delivered a [`request`] made from a claimed task, and the
/// [`Deliverer`](djinn_hook_deliver::Deliverer) sends a request's body
/// unchanged (it signs those bytes), so the store already holds what was sent.
fn record(attempt: &Attempt) -> AttemptRecord {
    AttemptRecord {
        attempt: attempt.attempt,
        redelivery: attempt.redelivery,
        request_headers: attempt.request_headers.clone(),
        request_body: RequestBody::Claimed,
        response_status: attempt.response_status,
        response_headers: attempt.response_headers.clone(),
        response_body: attempt.response_body.clone(),
        response_truncated: attempt.response_truncated,
        tls_verification_skipped: attempt.tls_verification_skipped,
        duration: attempt.duration,
        error: attempt.error.clone(),
        created_at: attempt.created_at,
    }
}
