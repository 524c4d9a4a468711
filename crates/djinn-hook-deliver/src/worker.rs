//! The worker loop over a store's [`Outbox`]: claim due tasks, deliver them on N threads, commit
//! the results in batches.
//!
//! ```text
//!  claimer ──(bounded channel)──▶ N delivery threads ──(channel)──▶ completer
//!  Outbox::claim                   deliver + decide                  Outbox::complete (batch)
//! ```
//!
//! The claimer never holds more than `2 × concurrency` tasks in flight (claimed, not yet
//! committed), so memory is bounded and a slow receiver slows claiming instead of filling a
//! queue. The completer takes whatever completions are ready (up to `complete_batch`) and commits
//! them in one `complete` call: one durable commit per batch (group commit).

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use crate::attempt::Attempt;
use crate::deliver::Deliverer;
use crate::error::OutboxError;
use crate::request::DeliveryRequest;
use crate::retry::{Decision, DecisionOutcome, RetryPolicy};

/// The storage side of the worker loop, implemented by the store.
///
/// Contract: `claim` hands out due tasks under a lease (a task is not handed out again until its
/// lease expires or it is completed) with a fresh opaque lease token each time; `complete`
/// applies a batch of results in one durable transaction, ignoring (not failing on) a
/// completion whose lease token is no longer current.
pub trait Outbox: Send + Sync {
    /// Claims up to `limit` due tasks for `lease`.
    fn claim(&self, limit: usize, lease: Duration) -> Result<Vec<Task>, OutboxError>;
    /// Records the attempts and applies the decisions, all in one commit. On error nothing of the
    /// batch may have been applied: the worker calls again with the same batch.
    fn complete(&self, done: &[Completion]) -> Result<(), OutboxError>;
}

impl<T: Outbox + ?Sized> Outbox for Arc<T> {
    fn claim(&self, limit: usize, lease: Duration) -> Result<Vec<Task>, OutboxError> {
        (**self).claim(limit, lease)
    }

    fn complete(&self, done: &[Completion]) -> Result<(), OutboxError> {
        (**self).complete(done)
    }
}

impl<T: Outbox + ?Sized> Outbox for &T {
    fn claim(&self, limit: usize, lease: Duration) -> Result<Vec<Task>, OutboxError> {
        (**self).claim(limit, lease)
    }

    fn complete(&self, done: &[Completion]) -> Result<(), OutboxError> {
        (**self).complete(done)
    }
}

/// A claimed delivery task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Task {
    /// The store's id of the task.
    pub task_id: i64,
    /// The opaque lease token of this claim, handed back in the [`Completion`].
    pub lease: String,
    /// What to deliver (`request.attempt` is this attempt's number, 1 = first).
    pub request: DeliveryRequest,
    /// When the webhook's current run of failed attempts started (`None` if its last attempt
    /// succeeded or it has none), for [`RetryPolicy::decide`].
    pub hook_failing_since: Option<OffsetDateTime>,
}

/// The result of one task's attempt, to be committed by [`Outbox::complete`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    /// The task's id.
    pub task_id: i64,
    /// The lease token of the task's most recent claim.
    pub lease: String,
    /// The attempt record for the delivery log.
    pub attempt: Attempt,
    /// What to do with the task (and the webhook).
    pub decision: Decision,
}

/// How a [`Worker`] runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerConfig {
    /// Delivery threads. Default 4.
    pub concurrency: usize,
    /// Lease asked for each claim. It must outlast a delivery's overall timeout plus its wait in
    /// the queue (up to one more delivery), or the task may be claimed again. Default 5 min.
    pub lease: Duration,
    /// How long to wait before claiming again when nothing was due. Default 1 s.
    pub poll_interval: Duration,
    /// Most tasks asked for in one `claim`. Default 32.
    pub claim_batch: usize,
    /// Most completions committed in one `complete`. Default 64.
    pub complete_batch: usize,
    /// Times a failing `complete` is retried (with backoff from 100 ms doubling to 5 s) before
    /// its batch is abandoned (reported as [`WorkerEvent::Abandoned`]; the tasks' leases expire
    /// and they are delivered again). Default 10 (about half a minute).
    pub complete_retries: u32,
}

impl Default for WorkerConfig {
    fn default() -> WorkerConfig {
        WorkerConfig {
            concurrency: 4,
            lease: Duration::from_secs(300),
            poll_interval: Duration::from_secs(1),
            claim_batch: 32,
            complete_batch: 64,
            complete_retries: 10,
        }
    }
}

/// Counters of one [`Worker::run`] or [`Worker::run_until_idle`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Tasks claimed and handed to a delivery thread.
    pub claimed: u64,
    /// Attempts committed.
    pub attempts: u64,
    /// Committed attempts that delivered (2xx).
    pub delivered: u64,
    /// Committed attempts with a retry scheduled.
    pub retries_scheduled: u64,
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
}

/// What a [`Worker`] reports to its observer (for log lines and progress).
#[derive(Debug)]
#[non_exhaustive]
pub enum WorkerEvent<'a> {
    /// This completion was committed.
    Completed(&'a Completion),
    /// `claim` failed; the claimer waits `poll_interval` and tries again.
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
}

type Observer<'o> = Box<dyn FnMut(WorkerEvent<'_>) + Send + 'o>;

/// Claims tasks from an [`Outbox`], delivers them on `concurrency` threads and commits the
/// results in batches.
///
/// ```text
///  claimer ──(bounded channel)──▶ N delivery threads ──(channel)──▶ completer
///  Outbox::claim                   deliver + decide                  Outbox::complete (batch)
/// ```
///
/// - **Bounded memory, back-pressure**: at most `2 × concurrency` tasks are in flight (claimed,
///   not yet committed); the claimer asks for no more than there is room for, so slow receivers
///   slow claiming down instead of filling a queue.
/// - **Group commit**: the completer takes every completion that is ready (up to
///   `complete_batch`) and commits them in one `complete` call, so the store pays one durable
///   commit per batch, not per delivery.
/// - **Never the same task twice at once**: a task claimed again while still in flight (its
///   lease ran out) is not delivered again; its completion carries the newest lease token.
/// - **Failures of the store**: a failed `claim` is reported and retried after `poll_interval`;
///   a failed `complete` is reported and retried with backoff, and after `complete_retries` the
///   batch is reported as [`WorkerEvent::Abandoned`] (the tasks' leases then expire and they are
///   delivered again: at least once, never silently lost).
/// - **Stopping**: [`run`](Self::run) stops claiming when the flag is set, lets claimed tasks
///   finish, commits them and returns.
pub struct Worker<'o, O: Outbox> {
    outbox: O,
    deliverer: Deliverer,
    policy: RetryPolicy,
    config: WorkerConfig,
    observer: Mutex<Option<Observer<'o>>>,
}

impl<O: Outbox> fmt::Debug for Worker<'_, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("deliverer", &self.deliverer)
            .field("policy", &self.policy)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Longest sleep between two looks at the stop flag.
const STOP_CHECK: Duration = Duration::from_millis(50);

impl<'o, O: Outbox> Worker<'o, O> {
    /// A worker. `concurrency`, `claim_batch` and `complete_batch` of 0 count as 1.
    pub fn new(
        outbox: O,
        deliverer: Deliverer,
        policy: RetryPolicy,
        config: WorkerConfig,
    ) -> Worker<'o, O> {
        Worker {
            outbox,
            deliverer,
            policy,
            config: WorkerConfig {
                concurrency: config.concurrency.max(1),
                claim_batch: config.claim_batch.max(1),
                complete_batch: config.complete_batch.max(1),
                ..config
            },
            observer: Mutex::new(None),
        }
    }

    /// Calls `observer` for every [`WorkerEvent`] (from the worker's threads, one at a time).
    pub fn with_observer(self, observer: impl FnMut(WorkerEvent<'_>) + Send + 'o) -> Self {
        *lock(&self.observer) = Some(Box::new(observer));
        self
    }

    /// The outbox.
    pub fn outbox(&self) -> &O {
        &self.outbox
    }

    /// Runs until nothing is due and nothing is in flight (a claim returned no task while no
    /// attempt was pending), or a claim failed while nothing was in flight.
    pub fn run_until_idle(&self) -> Stats {
        self.run_inner(None)
    }

    /// Runs until `stop` is set; then claims nothing more, lets the claimed tasks finish
    /// (deliveries in progress and the few queued for a thread), commits their completions and
    /// returns.
    pub fn run(&self, stop: &AtomicBool) -> Stats {
        self.run_inner(Some(stop))
    }

    fn run_inner(&self, stop: Option<&AtomicBool>) -> Stats {
        let shared = Shared {
            in_flight: Mutex::new(HashMap::new()),
            changed: Condvar::new(),
            stats: Mutex::new(Stats::default()),
        };
        let concurrency = self.config.concurrency;
        let (task_tx, task_rx) = mpsc::sync_channel::<Task>(concurrency);
        let task_rx = Mutex::new(task_rx);
        let (done_tx, done_rx) = mpsc::sync_channel::<Completion>(2 * concurrency);
        thread::scope(|scope| {
            for _ in 0..concurrency {
                let done_tx = done_tx.clone();
                let task_rx = &task_rx;
                scope.spawn(move || self.deliver_loop(task_rx, done_tx));
            }
            drop(done_tx);
            let shared = &shared;
            scope.spawn(move || self.complete_loop(done_rx, shared));
            self.claim_loop(task_tx, shared, stop);
        });
        *lock(&shared.stats)
    }

    fn observe(&self, event: WorkerEvent<'_>) {
        if let Some(observer) = lock(&self.observer).as_mut() {
            observer(event);
        }
    }

    fn claim_loop(&self, tasks: SyncSender<Task>, shared: &Shared, stop: Option<&AtomicBool>) {
        let stopped = || stop.is_some_and(|stop| stop.load(Ordering::Acquire));
        let max_in_flight = 2 * self.config.concurrency;
        'claiming: loop {
            // Wait for room; remember whether nothing was in flight before claiming, so that an
            // empty claim then proves that nothing is due (completions commit before removal).
            let (room, idle) = {
                let mut in_flight = lock(&shared.in_flight);
                while in_flight.len() >= max_in_flight {
                    if stopped() {
                        break 'claiming;
                    }
                    in_flight = wait(&shared.changed, in_flight, STOP_CHECK);
                }
                (max_in_flight - in_flight.len(), in_flight.is_empty())
            };
            if stopped() {
                break;
            }
            let claimed = self
                .outbox
                .claim(room.min(self.config.claim_batch), self.config.lease);
            let claimed = match claimed {
                Ok(claimed) => claimed,
                Err(error) => {
                    lock(&shared.stats).claim_errors += 1;
                    self.observe(WorkerEvent::ClaimFailed(&error));
                    Vec::new()
                }
            };
            if claimed.is_empty() {
                if stop.is_none() && idle {
                    break;
                }
                self.pause(shared, stop);
                continue;
            }
            for task in claimed {
                {
                    let mut in_flight = lock(&shared.in_flight);
                    if let Some(lease) = in_flight.get_mut(&task.task_id) {
                        // Still in flight from an earlier claim whose lease ran out: never
                        // deliver it twice at once; its completion carries the newest lease.
                        *lease = task.lease;
                        continue;
                    }
                    in_flight.insert(task.task_id, task.lease.clone());
                }
                lock(&shared.stats).claimed += 1;
                if tasks.send(task).is_err() {
                    break 'claiming;
                }
            }
        }
    }

    /// Waits up to `poll_interval`, waking early when a completion commits (in
    /// `run_until_idle`, which may make a retry due) or when asked to stop.
    fn pause(&self, shared: &Shared, stop: Option<&AtomicBool>) {
        let deadline = Instant::now() + self.config.poll_interval;
        let mut in_flight = lock(&shared.in_flight);
        let before = in_flight.len();
        loop {
            let now = Instant::now();
            if now >= deadline || stop.is_some_and(|stop| stop.load(Ordering::Acquire)) {
                return;
            }
            in_flight = wait(&shared.changed, in_flight, (deadline - now).min(STOP_CHECK));
            if stop.is_none() && in_flight.len() < before {
                return;
            }
        }
    }

    fn deliver_loop(&self, tasks: &Mutex<Receiver<Task>>, done: SyncSender<Completion>) {
        loop {
            let task = lock(tasks).recv();
            let Ok(task) = task else { return };
            let attempt = self.deliverer.deliver(&task.request);
            let decision = self.policy.decide(
                &attempt,
                task.request.attempt,
                task.hook_failing_since,
                OffsetDateTime::now_utc(),
            );
            let completion = Completion {
                task_id: task.task_id,
                lease: task.lease,
                attempt,
                decision,
            };
            if done.send(completion).is_err() {
                return;
            }
        }
    }

    fn complete_loop(&self, done: Receiver<Completion>, shared: &Shared) {
        while let Ok(first) = done.recv() {
            let mut batch = vec![first];
            while batch.len() < self.config.complete_batch {
                match done.try_recv() {
                    Ok(completion) => batch.push(completion),
                    Err(_) => break,
                }
            }
            {
                let in_flight = lock(&shared.in_flight);
                for completion in &mut batch {
                    if let Some(lease) = in_flight.get(&completion.task_id) {
                        completion.lease.clone_from(lease);
                    }
                }
            }
            let committed = self.commit(&batch, shared);
            {
                let mut stats = lock(&shared.stats);
                if committed {
                    stats.batches += 1;
                    for completion in &batch {
                        stats.attempts += 1;
                        match completion.decision.outcome {
                            DecisionOutcome::Delivered => stats.delivered += 1,
                            DecisionOutcome::RetryAt(_) => stats.retries_scheduled += 1,
                            DecisionOutcome::Failed => stats.failed += 1,
                        }
                        if completion.decision.disable_hook.is_some() {
                            stats.hooks_disabled += 1;
                        }
                    }
                } else {
                    stats.abandoned += batch.len() as u64;
                }
            }
            if committed {
                for completion in &batch {
                    self.observe(WorkerEvent::Completed(completion));
                }
            } else {
                self.observe(WorkerEvent::Abandoned(&batch));
            }
            let mut in_flight = lock(&shared.in_flight);
            for completion in &batch {
                in_flight.remove(&completion.task_id);
            }
            shared.changed.notify_all();
        }
    }

    /// Commits a batch, retrying with backoff; `false` when it was abandoned.
    fn commit(&self, batch: &[Completion], shared: &Shared) -> bool {
        let mut backoff = Duration::from_millis(100);
        let mut failures = 0;
        loop {
            let Err(error) = self.outbox.complete(batch) else {
                return true;
            };
            lock(&shared.stats).complete_errors += 1;
            failures += 1;
            if failures > self.config.complete_retries {
                return false;
            }
            self.observe(WorkerEvent::CompleteFailed {
                error: &error,
                batch: batch.len(),
                retry_in: backoff,
            });
            thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }
}

struct Shared {
    /// Claimed, not yet committed: task id to its newest lease token.
    in_flight: Mutex<HashMap<i64, String>>,
    /// Signalled when tasks leave `in_flight`.
    changed: Condvar,
    stats: Mutex<Stats>,
}

/// Locks, ignoring poisoning (a panicking observer must not wedge the worker).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn wait<'a, T>(
    condvar: &Condvar,
    guard: MutexGuard<'a, T>,
    timeout: Duration,
) -> MutexGuard<'a, T> {
    condvar
        .wait_timeout(guard, timeout)
        .unwrap_or_else(PoisonError::into_inner)
        .0
}
