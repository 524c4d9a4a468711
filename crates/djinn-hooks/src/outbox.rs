//! [`StoreOutbox`]: the store as the delivery worker's outbox; the only code that knows both crates.

use std::borrow::Borrow;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use djinn_hook_deliver::{
    Attempt, Completion, DecisionOutcome, DeliveryRequest, Outbox, OutboxError, Task, WebhookSecret,
};
use djinn_hook_store::{AttemptRecord, ClaimedTask, Outcome, Store};
use time::OffsetDateTime;
use uuid::Uuid;

/// Implements [`djinn_hook_deliver::Outbox`] over a [`djinn_hook_store::Store`]:
/// `claim` is [`Store::claim_due`] (now, limit, lease) turned into [`Task`]s,
/// `complete` is one [`Store::complete`] call (one transaction, one fsync) for
/// the whole batch.
///
/// # Prefetch
///
/// Every claim is a durable write transaction. The worker asks for tasks as
/// soon as a few of its in-flight deliveries finish, so under load it would
/// claim a handful at a time and pay one fsync each. With
/// [`with_prefetch(n)`](StoreOutbox::with_prefetch), a claim that finds the
/// outbox's buffer empty leases up to `n` tasks from the store, hands out what
/// was asked, and keeps the rest for the next calls (no transaction). Buffered
/// tasks are leased like in-flight ones; to stop without stranding them until
/// their lease runs out, call [`stop_claiming`](StoreOutbox::stop_claiming)
/// first and stop the worker once [`buffered`](StoreOutbox::buffered) is 0.
///
/// ```no_run
/// use djinn_hook_deliver::{DeliverConfig, Deliverer, RetryPolicy, Worker, WorkerConfig};
/// use djinn_hook_store::{SecretKey, Store};
/// use djinn_hooks::StoreOutbox;
///
/// let store = Store::open("hooks.db", SecretKey::from_bytes([7; 32])).unwrap();
/// let worker = Worker::new(
///     StoreOutbox::new(&store).with_prefetch(64),
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
    prefetch: usize,
    buffer: Mutex<VecDeque<Task>>,
    stopped: AtomicBool,
}

impl<S: Borrow<Store>> StoreOutbox<S> {
    /// The outbox over `store` (a `Store`, `&Store` or `Arc<Store>`), without prefetch.
    pub fn new(store: S) -> StoreOutbox<S> {
        StoreOutbox {
            store,
            prefetch: 0,
            buffer: Mutex::new(VecDeque::new()),
            stopped: AtomicBool::new(false),
        }
    }

    /// Leases up to `n` tasks per store transaction (see [Prefetch](#prefetch)).
    pub fn with_prefetch(mut self, n: usize) -> StoreOutbox<S> {
        self.prefetch = n;
        self
    }

    /// From now on, claims only hand out buffered tasks; the store is not asked again.
    pub fn stop_claiming(&self) {
        self.stopped.store(true, Ordering::SeqCst);
    }

    /// How many leased tasks wait in the buffer.
    pub fn buffered(&self) -> usize {
        self.lock().len()
    }

    /// The store.
    pub fn store(&self) -> &Store {
        self.store.borrow()
    }

    /// Gives the store back. Buffered tasks stay leased until their lease runs out.
    pub fn into_inner(self) -> S {
        self.store
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Task>> {
        self.buffer.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<S: Borrow<Store> + Send + Sync> Outbox for StoreOutbox<S> {
    fn claim(&self, limit: usize, lease: Duration) -> Result<Vec<Task>, OutboxError> {
        let mut buffer = self.lock();
        if buffer.is_empty() && !self.stopped.load(Ordering::SeqCst) {
            let claimed = self
                .store()
                .claim_due(OffsetDateTime::now_utc(), limit.max(self.prefetch), lease)
                .map_err(OutboxError::new)?;
            buffer.extend(claimed.into_iter().map(task));
        }
        let n = limit.min(buffer.len());
        Ok(buffer.drain(..n).collect())
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
        request: DeliveryRequest {
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
        },
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
fn record(attempt: &Attempt) -> AttemptRecord {
    AttemptRecord {
        attempt: attempt.attempt,
        redelivery: attempt.redelivery,
        request_headers: attempt.request_headers.clone(),
        request_body: attempt.request_body.clone(),
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
