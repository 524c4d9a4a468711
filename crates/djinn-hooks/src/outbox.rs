//! [`StoreOutbox`]: the store as the delivery worker's outbox; the only code that knows both crates.

use std::borrow::Borrow;

use djinn_hook_deliver::{
    Attempt, ClaimRequest, Claimed, Completion, DecisionOutcome, DeliveryRequest, Destination,
    Outbox, OutboxError, PutOff, Task, WebhookSecret,
};
use djinn_hook_store::{
    AttemptRecord, BreakerHold, Claim, ClaimedTask, Outcome, RequestBody, Store,
};
use time::OffsetDateTime;
use uuid::Uuid;

/// Implements [`djinn_hook_deliver::Outbox`] over a [`djinn_hook_store::Store`]:
/// `claim` is [`Store::claim`] (fair across webhooks, capped per webhook) turned into
/// [`Task`]s, `put_off` is [`Store::put_off`],
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
    fn claim(&self, claim: &ClaimRequest) -> Result<Claimed, OutboxError> {
        let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let claimed = self
            .store()
            .claim(
                OffsetDateTime::now_utc(),
                &Claim {
                    limit: claim.limit,
                    lease: claim.lease,
                    max_in_flight: clamp(claim.max_in_flight),
                    leases_per_slot: clamp(claim.leases_per_slot),
                },
            )
            .map_err(OutboxError::new)?;
        Ok(Claimed {
            tasks: claimed.tasks.into_iter().map(task).collect(),
            held_back: claimed.held_back,
        })
    }

    fn put_off(&self, put_off: &[PutOff]) -> Result<(), OutboxError> {
        let put_off = put_off
            .iter()
            .map(|p| {
                Ok(djinn_hook_store::PutOff {
                    task_id: p.task_id,
                    lease: lease_token(&p.lease)?,
                    hold: BreakerHold {
                        destination: p.destination.to_string(),
                        until: p.until,
                        reason: p.reason.clone(),
                    },
                })
            })
            .collect::<Result<Vec<_>, OutboxError>>()?;
        self.store().put_off(&put_off).map_err(OutboxError::new)?;
        Ok(())
    }

    fn breaker_closed(&self, destination: &Destination) -> Result<(), OutboxError> {
        self.store()
            .breaker_closed(destination.as_str())
            .map_err(OutboxError::new)
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
        max_in_flight: claimed
            .limits
            .max_in_flight
            .and_then(|n| usize::try_from(n).ok()),
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
        previous_secret: claimed.previous_secret.map(WebhookSecret::new),
        standard_webhooks: claimed.standard_webhooks,
        body: claimed.body,
        attempt: claimed.attempt,
        redelivery: claimed.redelivery,
        timeout: claimed.limits.timeout,
    }
}

/// The worker's [`Completion`] as the store's.
fn completion(done: &Completion) -> Result<djinn_hook_store::Completion, OutboxError> {
    Ok(djinn_hook_store::Completion {
        task_id: done.task_id,
        lease: lease_token(&done.lease)?,
        attempt: record(&done.attempt),
        outcome: match done.decision.outcome {
            DecisionOutcome::Delivered => Outcome::Delivered,
            DecisionOutcome::RetryAt(at) => Outcome::RetryAt(at),
            DecisionOutcome::Failed => Outcome::Failed,
        },
        disable_hook: done.decision.disable_hook.clone(),
    })
}

/// A worker's lease token as the store's.
fn lease_token(lease: &str) -> Result<Uuid, OutboxError> {
    Uuid::parse_str(lease)
        .map_err(|_| OutboxError::new(format!("lease token {lease:?} is not a UUID")))
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
