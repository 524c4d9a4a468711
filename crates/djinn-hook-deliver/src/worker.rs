//! The worker loop over a store's [`Outbox`]: N delivery threads that claim due tasks in
//! batches, deliver them and commit the results in batches, with no hand-off per delivery.
//!
//! ```text
//!            ┌──────────── shared state (one mutex) ────────────┐
//!  Outbox::claim ─▶ queue ─▶ thread: deliver + decide ─▶ pending ─▶ Outbox::complete (batch)
//!  (by whichever thread finds the queue low)          (by whichever thread finds no commit running)
//! ```
//!
//! The thread that claims or commits makes the outbox call through one store thread
//! ([`StoreThread`]) and waits for it, so that what the store allocates comes from one thread's
//! allocator arena (memory stays flat) at the cost of two wake-ups per batch.
//!
//! Each delivery thread takes its next task from a shared queue; the thread that finds the
//! queue at or below the low-water mark refills it to the high-water mark (twice that) with one
//! claim (hysteresis: claims are big and rare, whatever the store). The low-water mark is about
//! 20 ms of deliveries at the measured rate, between 2 and 16 tasks per thread
//! ([`QueueDepth`]), so the queue does not run dry while a claim waits for a commit's fsync,
//! and is short when receivers are slow. A thread that finishes a delivery appends its
//! completion to a shared batch and, if no commit is running, commits everything pending in one
//! `complete` call (group commit); otherwise it goes straight back to delivering. Under load no
//! delivery thread waits for another: no hand-off, no wake-up per delivery. Memory is bounded:
//! at most 64 tasks per thread, and (roughly) `max_in_flight_bytes` of bodies, are claimed and
//! not yet committed.
//!
//! Isolation: the queue is one queue per webhook ([`HookQueues`]), taken round-robin, with at
//! most the webhook's cap of its tasks delivering at once; the store's claim is fair and capped
//! the same way. A destination whose [breaker](crate::breaker) is open has its tasks put off
//! ([`Outbox::put_off`]) wherever they are found: when claimed, when its breaker opens while
//! they are queued, or when a thread takes one.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use djinn_hook_outbox::{
    ClaimRequest, Claimed, Completion, Destination, LeaseToken, Outbox, OutboxError, Outcome, PutOff,
    Task,
};

use crate::breaker::{BreakerConfig, BreakerState, BreakerStatus, Breakers, Change, Gate};
use crate::deliver::Deliverer;
use crate::hook_queue::{HookQueues, Queued};
use crate::queue_depth::QueueDepth;
use crate::retry::RetryPolicy;
use crate::store_thread::StoreThread;

/// How a [`Worker`] runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerConfig {
    /// Delivery threads. Default 4.
    pub concurrency: usize,
    /// Lease asked for each claim. It should outlast a delivery's overall timeout plus its wait
    /// in the queue (about 20 ms at the measured rate), or the task may be claimed again. A task
    /// with less than a quarter of its lease left when a thread takes it from the queue is not
    /// delivered under it (it is left to be claimed again), so a delivery that starts can finish
    /// and be committed before the lease runs out. Default 5 min.
    pub lease: Duration,
    /// How long to wait before claiming again when nothing was due, unless woken earlier by a
    /// [`WorkerWaker`]. Default 1 s.
    pub poll_interval: Duration,
    /// Most tasks asked for in one `claim`. The worker claims when its queue falls to its
    /// low-water mark, asking for enough to bring it to twice that (never more than this).
    /// Default 256.
    pub claim_batch: usize,
    /// Most completions committed in one `complete`. Default 256.
    pub complete_batch: usize,
    /// Request bodies claimed and not yet committed, in bytes, beyond which the worker claims
    /// no more: a claim asks for as many tasks as fit at the average size of the last claim's
    /// bodies (at least one). Default 64 MiB.
    pub max_in_flight_bytes: usize,
    /// Times a failing `complete` is retried (with backoff from 100 ms doubling to 5 s) before
    /// its batch is abandoned (reported as [`WorkerEvent::Abandoned`]; the tasks' leases expire
    /// and they are delivered again). Default 10 (about half a minute).
    pub complete_retries: u32,
    /// Most deliveries of one webhook at once, for webhooks without their own cap. `None`
    /// (the default): half the threads, rounded up. Why half: one receiver that hangs holds
    /// at most half the threads for the short while before its breaker opens, and the other
    /// half keeps every other webhook moving. A lone busy webhook gets half the threads (on a
    /// local receiver, measured from as fast as all of them to 15-25% slower; see
    /// docs/PERFORMANCE.md): an install with one webhook may raise this to `concurrency`.
    pub max_in_flight_per_hook: Option<usize>,
    /// When a destination's circuit breaker opens, and for how long.
    pub breaker: BreakerConfig,
}

impl Default for WorkerConfig {
    fn default() -> WorkerConfig {
        WorkerConfig {
            concurrency: 4,
            lease: Duration::from_secs(300),
            poll_interval: Duration::from_secs(1),
            claim_batch: 256,
            complete_batch: 256,
            max_in_flight_bytes: 64 * 1024 * 1024,
            complete_retries: 10,
            max_in_flight_per_hook: None,
            breaker: BreakerConfig::default(),
        }
    }
}

impl WorkerConfig {
    /// Most deliveries of one webhook at once for webhooks without their own cap.
    pub fn hook_cap(&self) -> usize {
        self.max_in_flight_per_hook
            .unwrap_or(self.concurrency.div_ceil(2))
            .max(1)
    }
}

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

type Observer<'o> = Box<dyn FnMut(WorkerEvent<'_>) + Send + 'o>;

/// Claims tasks from an [`Outbox`], delivers them on `concurrency` threads and commits the
/// results in batches.
///
/// ```text
///  Outbox::claim ─▶ queue ─▶ N threads: deliver + decide ─▶ pending ─▶ Outbox::complete
/// ```
///
/// - **No hand-off per delivery**: the delivery threads claim and commit themselves (each call
///   runs on one store thread while the calling thread waits). A thread that finds the
///   queue at or below its low-water mark (about 20 ms of deliveries, 2 to 16 tasks per thread)
///   refills it to twice that with one claim (capped by `claim_batch`), so claims are big and
///   rare and the queue outlasts a claim waiting for a commit; a claim that brings fewer than it
///   asked for (the store had no more due) is not repeated before the poll interval, a wake-up
///   or (until idle) a commit. A thread that finishes a delivery adds its completion to the
///   pending batch and, unless a commit is already running, commits the whole batch.
/// - **Bounded memory, back-pressure**: at most twice the high-water mark of tasks (64 per
///   thread), and about `max_in_flight_bytes` of bodies, are in flight (claimed, not yet
///   committed); slow receivers or a slow store slow claiming down instead of filling a queue.
/// - **Group commit**: what completes while a commit runs is committed together in the next
///   `complete` call (up to `complete_batch`), so the store pays one durable commit per batch,
///   not per delivery.
/// - **Never the same task twice at once**: a task claimed again while still in flight (its
///   lease ran out) is not delivered again; its completion carries the newest lease token.
/// - **Failures of the store**: a failed `claim` is reported and retried after `poll_interval`;
///   a failed `complete` is reported and retried with backoff, and after `complete_retries` the
///   batch is reported as [`WorkerEvent::Abandoned`] (the tasks' leases then expire and they are
///   delivered again: at least once, never silently lost).
/// - **Isolation**: at most `max_in_flight_per_hook` (or the webhook's own cap) of one
///   webhook's tasks are delivered at once; threads take webhooks in turn. A destination whose
///   circuit breaker is open has its due tasks put off without an attempt (see
///   [`BreakerConfig`]); [`breakers`](Self::breakers) reports the breakers.
/// - **Waking up**: when nothing is due the worker claims again after `poll_interval`, or as
///   soon as a [`WorkerWaker`] (from [`waker`](Self::waker)) is woken, e.g. right after new
///   events were committed.
/// - **Stopping**: [`run`](Self::run) stops claiming when the flag is set, delivers the tasks
///   already claimed (about 20 ms of deliveries at the rate before the stop, plus those being
///   delivered), commits them and returns.
///
/// Runs of one worker do not overlap: a `run` or `run_until_idle` called while another is
/// running waits for it to return.
pub struct Worker<'o, O: Outbox> {
    outbox: O,
    deliverer: Deliverer,
    policy: RetryPolicy,
    config: WorkerConfig,
    observer: Mutex<Option<Observer<'o>>>,
    shared: Arc<Shared>,
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

/// Wakes a [`Worker`] that is waiting for due tasks, so it claims at once instead of at the end
/// of its `poll_interval`. Cheap to clone and to call (a lock and a notification); waking a
/// worker that is busy or not running does no harm (it claims once more).
#[derive(Clone)]
pub struct WorkerWaker {
    shared: Arc<Shared>,
}

impl fmt::Debug for WorkerWaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerWaker").finish_non_exhaustive()
    }
}

impl WorkerWaker {
    /// Makes the worker claim now (if it was waiting for due tasks).
    pub fn wake(&self) {
        let mut state = lock(&self.shared.state);
        state.wakes += 1;
        self.shared.notify(&state);
    }
}

/// Reports a [`Worker`]'s circuit breakers, e.g. for metrics: cheap to clone, safe to call from
/// any thread while the worker runs (it takes the worker's lock briefly).
#[derive(Clone)]
pub struct BreakerMonitor {
    shared: Arc<Shared>,
}

impl fmt::Debug for BreakerMonitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerMonitor").finish_non_exhaustive()
    }
}

impl BreakerMonitor {
    /// Every destination with a breaker that is open, probing, or counting failures.
    pub fn statuses(&self) -> Vec<BreakerStatus> {
        lock(&self.shared.state).breakers.statuses(Instant::now())
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
        let shared = Arc::new(Shared::default());
        lock(&shared.state).breakers = Breakers::new(config.breaker.clone());
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
            shared,
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

    /// A handle that wakes this worker when it waits for due tasks (see [`WorkerWaker`]).
    pub fn waker(&self) -> WorkerWaker {
        WorkerWaker {
            shared: Arc::clone(&self.shared),
        }
    }

    /// A handle that reports this worker's circuit breakers (see [`BreakerMonitor`]).
    pub fn breakers(&self) -> BreakerMonitor {
        BreakerMonitor {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Runs until nothing is due and nothing is in flight (a claim returned no task while no
    /// attempt was pending), or a claim failed while nothing was in flight.
    pub fn run_until_idle(&self) -> Stats {
        self.run_inner(None)
    }

    /// Runs until `stop` is set; then claims nothing more, delivers the tasks already claimed,
    /// commits their completions and returns.
    pub fn run(&self, stop: &AtomicBool) -> Stats {
        self.run_inner(Some(stop))
    }

    fn run_inner(&self, stop: Option<&AtomicBool>) -> Stats {
        {
            let mut state = lock(&self.shared.state);
            while state.running {
                state = wait(&self.shared.changed, state, STOP_CHECK);
            }
            *state = State {
                running: true,
                wakes: state.wakes,
                depth: QueueDepth::new(self.config.concurrency),
                // Kept across runs: a destination does not recover because the worker restarted.
                breakers: std::mem::take(&mut state.breakers),
                ..State::default()
            };
        }
        let running = Running(&self.shared);
        thread::scope(|outer| {
            // Ends (its handle dropped) once every delivery thread has returned.
            let store = StoreThread::start(outer);
            let run = Run {
                stop,
                until_idle: stop.is_none(),
                store: &store,
            };
            thread::scope(|scope| {
                for _ in 1..self.config.concurrency {
                    scope.spawn(|| self.thread_loop(&run));
                }
                self.thread_loop(&run);
            });
        });
        let stats = lock(&self.shared.state).stats;
        drop(running);
        stats
    }

    fn observe(&self, event: WorkerEvent<'_>) {
        if let Some(observer) = lock(&self.observer).as_mut() {
            observer(event);
        }
    }

    /// One delivery thread: take a task (claiming a batch first when the queue is low), deliver
    /// it, add its completion to the pending batch and commit that batch unless a commit runs.
    fn thread_loop<'env>(&'env self, run: &Run<'_, 'env>) {
        let shared = &*self.shared;
        let _ends_the_run_on_panic = EndOnPanic(shared);
        let mut state = lock(&shared.state);
        loop {
            if run.stopped() && !state.stopping {
                state.stopping = true;
                shared.notify(&state);
            }
            let unwritten = !state.put_offs.is_empty() || !state.closed.is_empty();
            if unwritten && !state.committing {
                state = self.commit_pending(state, run);
                continue;
            }
            if state.finished || (state.stopping && state.queue.is_empty() && !unwritten) {
                return;
            }
            if self.may_claim(&state, run) {
                state = self.claim(state, run);
                continue;
            }
            let Some(Queued { task, destination }) = state.queue.pop() else {
                if !state.pending.is_empty() && !state.committing {
                    // Left by a commit that ended while others were delivering: with nothing
                    // to deliver, commit it rather than wait for them (a hanging receiver's
                    // attempt may take its whole timeout, and the leases of these completions
                    // may be what keeps a webhook at its cap).
                    state = self.commit_pending(state, run);
                    continue;
                }
                let timeout = match state.idle {
                    Some(idle) => idle
                        .until
                        .saturating_duration_since(Instant::now())
                        .min(STOP_CHECK),
                    None => STOP_CHECK,
                };
                state.waiting += 1;
                state = wait(
                    &shared.changed,
                    state,
                    timeout.max(Duration::from_millis(1)),
                );
                state.waiting -= 1;
                continue;
            };
            let hook_id = task.request.hook_id;
            if !state
                .in_flight
                .get(&task.task_id)
                .is_some_and(|task| task.lease_left_at_least(self.config.lease / 4))
            {
                // Its lease ran out while it was queued, or nearly: another worker may hold the
                // task now, or could claim it while this delivery is under way. Left to be
                // claimed again (by this worker or another), not delivered twice.
                forget(&mut state, task.task_id);
                state.queue.done(hook_id);
                continue;
            }
            if let Some(destination) = &destination
                && !self.failing_too_long(&task)
                && let Gate::Hold { until, reason } =
                    state
                        .breakers
                        .gate(destination, task.task_id, Instant::now())
            {
                put_off(&mut state, &task, destination, until, reason);
                state.queue.done(hook_id);
                continue;
            }
            state.delivering += 1;
            drop(state);

            let number = task.request.attempt;
            let attempt = self.deliverer.deliver(&task.request);
            let decision = self.policy.decide(
                &attempt,
                number,
                task.hook_failing_since,
                OffsetDateTime::now_utc(),
            );

            state = lock(&shared.state);
            state.delivering -= 1;
            // No wake-up for the slot this frees: this thread takes the next task itself.
            state.queue.done(hook_id);
            if let Some(destination) = destination
                && let Some(change) =
                    state
                        .breakers
                        .record(&destination, task.task_id, &attempt, Instant::now())
            {
                state = self.breaker_changed(state, &destination, change);
            }
            state.pending.push(Completion {
                task_id: task.task_id,
                lease: task.lease,
                attempt,
                decision,
            });
            if !state.committing {
                state = self.commit_pending(state, run);
            }
        }
    }

    /// Whether the task's webhook has failed for so long that its next attempt may disable it:
    /// such a task is delivered even while its breaker is open, so a breaker that never closes
    /// does not keep a dead webhook enabled forever.
    fn failing_too_long(&self, task: &Task) -> bool {
        task.hook_failing_since
            .is_some_and(|since| OffsetDateTime::now_utc() - since >= self.policy.disable_after)
    }

    /// Acts on a breaker's change: an opened breaker puts off the destination's queued tasks
    /// at once; a closed one is recorded. Reported to the observer (the lock released).
    fn breaker_changed<'env>(
        &'env self,
        mut state: MutexGuard<'env, State>,
        destination: &Destination,
        change: Change,
    ) -> MutexGuard<'env, State> {
        let open_for = match change {
            Change::Opened { until, reason } => {
                state.stats.breakers_opened += 1;
                let queued = state.queue.take_where(|queued| {
                    queued.destination.as_ref() == Some(destination)
                        && !self.failing_too_long(&queued.task)
                });
                for Queued { task, .. } in queued {
                    put_off(&mut state, &task, destination, until, reason.clone());
                }
                Some((until.saturating_duration_since(Instant::now()), reason))
            }
            Change::Closed => {
                state.stats.breakers_closed += 1;
                state.closed.push(destination.clone());
                None
            }
        };
        drop(state);
        match &open_for {
            Some((open_for, reason)) => self.observe(WorkerEvent::BreakerOpened {
                destination,
                reason,
                open_for: *open_for,
            }),
            None => self.observe(WorkerEvent::BreakerClosed { destination }),
        }
        lock(&self.shared.state)
    }

    /// Whether this thread should claim now: few tasks are ready (the queue, less those of
    /// webhooks at their cap, is at or below the low-water mark), there is room in flight, no
    /// other claim runs, and the worker is not waiting out a poll interval.
    fn may_claim(&self, state: &State, run: &Run<'_, '_>) -> bool {
        if state.claiming
            || state.stopping
            || state.queue.ready() > state.depth.low_water()
            || counted_in_flight(state) >= state.depth.max_in_flight()
            || state.in_flight_bytes >= self.config.max_in_flight_bytes
        {
            return false;
        }
        match state.idle {
            None => true,
            Some(idle) => {
                // Woken, or (until idle, or when caps held tasks back) a commit landed since
                // that claim: it may have made a retry due, ended leases, or left nothing in
                // flight.
                state.wakes != idle.wakes
                    || ((run.until_idle || idle.held_back)
                        && idle.commits.is_some_and(|seen| seen != state.commits))
                    || Instant::now() >= idle.until
            }
        }
    }

    /// Claims one batch (the lock released meanwhile) and queues it; tasks of a destination
    /// whose breaker is open are put off instead.
    fn claim<'env>(
        &'env self,
        mut state: MutexGuard<'env, State>,
        run: &Run<'_, 'env>,
    ) -> MutexGuard<'env, State> {
        let shared = &*self.shared;
        let bytes_room = self
            .config
            .max_in_flight_bytes
            .saturating_sub(state.in_flight_bytes);
        let limit = (state.depth.high_water().saturating_sub(state.queue.ready()))
            .min(
                state
                    .depth
                    .max_in_flight()
                    .saturating_sub(counted_in_flight(&state)),
            )
            .min(self.config.claim_batch)
            .min((bytes_room / state.body_estimate.max(1)).max(1))
            .max(1);
        // What the claim is compared against afterwards: seen before it, so that completions
        // committed while it ran are never missed (claims are exclusive, so nothing else adds to
        // `in_flight` meanwhile; it can only shrink).
        let seen = Idle {
            until: Instant::now(),
            commits: Some(state.commits),
            wakes: state.wakes,
            held_back: false,
        };
        let nothing_in_flight = state.in_flight.is_empty();
        state.claiming = true;
        state.idle = None;
        let request = ClaimRequest {
            limit,
            lease: self.config.lease,
            max_in_flight: self.config.hook_cap(),
            // A webhook's share of the queue: as many tasks behind each of its slots as the
            // queue holds per thread at its high-water mark.
            leases_per_slot: 1 + state.depth.high_water() / self.config.concurrency,
        };
        drop(state);

        // Taken before the claim, so the lease is never thought to last longer than it does.
        let lease_until = Instant::now() + self.config.lease;
        let claimed = run.store.call(move || self.outbox.claim(&request));

        let mut state = lock(&shared.state);
        state.claiming = false;
        let Claimed {
            tasks: claimed,
            held_back,
        } = match claimed {
            Ok(claimed) => claimed,
            Err(error) => {
                state.stats.claim_errors += 1;
                drop(state);
                self.observe(WorkerEvent::ClaimFailed(&error));
                state = lock(&shared.state);
                if run.until_idle && nothing_in_flight {
                    state.finished = true;
                } else {
                    // Retried after the poll interval, even if commits land meanwhile.
                    state.idle = Some(Idle {
                        until: Instant::now() + self.config.poll_interval,
                        commits: None,
                        wakes: seen.wakes,
                        held_back: false,
                    });
                }
                shared.notify(&state);
                return state;
            }
        };
        if claimed.is_empty() {
            if run.until_idle && nothing_in_flight {
                state.finished = true;
            } else {
                state.idle = Some(Idle {
                    until: Instant::now() + self.config.poll_interval,
                    held_back,
                    ..seen
                });
            }
            shared.notify(&state);
            return state;
        }
        if claimed.len() < limit {
            // The store had no more due (or none it would give, its webhooks at their caps):
            // claim again only after the poll interval (or a wake-up, or, until idle or when
            // caps held tasks back, a commit), not each time the queue runs low.
            state.idle = Some(Idle {
                until: Instant::now() + self.config.poll_interval,
                held_back,
                ..seen
            });
        }
        let claimed_bytes: usize = claimed.iter().map(|task| task.request.body.len()).sum();
        state.body_estimate = claimed_bytes / claimed.len();
        let now = Instant::now();
        // Parsed once per webhook per claim.
        let mut destinations: HashMap<i64, Option<Destination>> = HashMap::new();
        for task in claimed {
            if let Some(in_flight) = state.in_flight.get_mut(&task.task_id) {
                // Still in flight from an earlier claim whose lease ran out: never deliver it
                // twice at once; its completion carries the newest lease.
                in_flight.lease = task.lease;
                in_flight.lease_until = lease_until;
                continue;
            }
            let bytes = task.request.body.len();
            state.in_flight_bytes += bytes;
            state.in_flight.insert(
                task.task_id,
                InFlight {
                    lease: task.lease,
                    lease_until,
                    bytes,
                },
            );
            state.stats.claimed += 1;
            let destination = destinations
                .entry(task.request.hook_id)
                .or_insert_with(|| Destination::of(&task.request.url))
                .clone();
            if let Some(destination) = &destination
                && !self.failing_too_long(&task)
                && let Some(Gate::Hold { until, reason }) = state.breakers.holds(destination, now)
            {
                put_off(&mut state, &task, destination, until, reason);
                continue;
            }
            let cap = task
                .max_in_flight
                .map_or(self.config.hook_cap(), |n| usize::try_from(n).unwrap_or(usize::MAX));
            state.queue.push(Queued { task, destination }, cap);
        }
        shared.notify(&state);
        state
    }

    /// Commits pending completions, one batch at a time, until none is left or another thread
    /// is still delivering (its completion will commit what is left).
    fn commit_pending<'env>(
        &'env self,
        mut state: MutexGuard<'env, State>,
        run: &Run<'_, 'env>,
    ) -> MutexGuard<'env, State> {
        let shared = &*self.shared;
        while !state.pending.is_empty() || !state.put_offs.is_empty() || !state.closed.is_empty() {
            state.committing = true;
            if !state.put_offs.is_empty() || !state.closed.is_empty() {
                state = self.write_put_offs(state, run);
                continue;
            }
            let n = state.pending.len().min(self.config.complete_batch);
            let mut batch: Vec<Completion> = state.pending.drain(..n).collect();
            for completion in &mut batch {
                if let Some(in_flight) = state.in_flight.get(&completion.task_id) {
                    completion.lease = in_flight.lease;
                }
            }
            drop(state);

            let (batch, committed) = self.commit(batch, run);
            if committed {
                for completion in &batch {
                    self.observe(WorkerEvent::Completed(completion));
                }
                self.observe(WorkerEvent::BatchCommitted {
                    attempts: batch.len(),
                });
            } else {
                self.observe(WorkerEvent::Abandoned(&batch));
            }

            state = lock(&shared.state);
            let stats = &mut state.stats;
            if committed {
                stats.batches += 1;
                for completion in &batch {
                    stats.attempts += 1;
                    match completion.decision.outcome {
                        Outcome::Delivered => stats.delivered += 1,
                        Outcome::RetryAt(_) => stats.retries_scheduled += 1,
                        Outcome::Failed => stats.failed += 1,
                    }
                    if completion.decision.disable_hook.is_some() {
                        stats.hooks_disabled += 1;
                    }
                }
            } else {
                stats.abandoned += batch.len() as u64;
            }
            if !committed {
                for completion in &batch {
                    forget(&mut state, completion.task_id);
                }
            }
            state.depth.record(batch.len(), Instant::now());
            state.commits += 1;
            state.committing = false;
            shared.nudge(&state);
            if state.delivering > 0 {
                break;
            }
        }
        state
    }

    /// Hands the tasks put off, and the breakers closed, to the outbox (on the store thread),
    /// once: if that fails, the tasks come back when their leases run out.
    fn write_put_offs<'env>(
        &'env self,
        mut state: MutexGuard<'env, State>,
        run: &Run<'_, 'env>,
    ) -> MutexGuard<'env, State> {
        let mut put_offs = std::mem::take(&mut state.put_offs);
        for put_off in &mut put_offs {
            if let Some(in_flight) = state.in_flight.get(&put_off.task_id) {
                put_off.lease = in_flight.lease;
            }
        }
        let closed = std::mem::take(&mut state.closed);
        drop(state);
        let (put_offs, result) = run.store.call(move || {
            let result = self.outbox.put_off(&put_offs).and_then(|()| {
                closed
                    .iter()
                    .try_for_each(|destination| self.outbox.breaker_closed(destination))
            });
            self.forget_all(put_offs.iter().map(|p| p.task_id));
            (put_offs, result)
        });
        if let Err(error) = &result {
            self.observe(WorkerEvent::PutOffFailed {
                error,
                tasks: put_offs.len(),
            });
        }
        let mut state = lock(&self.shared.state);
        if result.is_ok() {
            state.stats.put_off += put_offs.len() as u64;
        }
        state.committing = false;
        self.shared.nudge(&state);
        state
    }

    /// Drops tasks from the in-flight set; called on the store thread right after their
    /// completions (or put-offs) were written, before any later claim runs there: a claim that
    /// follows may hand the same task out again (a retry due at once), and must find it gone,
    /// not still in flight.
    fn forget_all(&self, task_ids: impl Iterator<Item = i64>) {
        let mut state = lock(&self.shared.state);
        for task_id in task_ids {
            forget(&mut state, task_id);
        }
    }

    /// Commits a batch (on the store thread), retrying with backoff; `false` when it was
    /// abandoned. The batch comes back either way.
    fn commit<'env>(
        &'env self,
        mut batch: Vec<Completion>,
        run: &Run<'_, 'env>,
    ) -> (Vec<Completion>, bool) {
        let mut backoff = Duration::from_millis(100);
        let mut failures = 0;
        loop {
            let result;
            (batch, result) = run.store.call(move || {
                let result = self.outbox.complete(&batch);
                if result.is_ok() {
                    self.forget_all(batch.iter().map(|c| c.task_id));
                }
                (batch, result)
            });
            let Err(error) = result else {
                return (batch, true);
            };
            lock(&self.shared.state).stats.complete_errors += 1;
            failures += 1;
            if failures > self.config.complete_retries {
                return (batch, false);
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

/// Ends a run (also when it unwinds), so that the next one may start.
struct Running<'a>(&'a Shared);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let mut state = lock(&self.0.state);
        state.running = false;
        state.queue = HookQueues::default();
        state.put_offs = Vec::new();
        state.closed = Vec::new();
        state.in_flight = HashMap::new();
        state.in_flight_bytes = 0;
        state.pending = Vec::new();
        self.0.changed.notify_all();
    }
}

/// Ends the run if its thread unwinds (say, a panicking observer), so that the other threads
/// return instead of waiting for work it held; the panic then propagates from `run`.
struct EndOnPanic<'a>(&'a Shared);

impl Drop for EndOnPanic<'_> {
    fn drop(&mut self) {
        if thread::panicking() {
            let mut state = lock(&self.0.state);
            state.finished = true;
            state.stopping = true;
            self.0.changed.notify_all();
        }
    }
}

/// The parameters of one run.
struct Run<'a, 'env> {
    stop: Option<&'a AtomicBool>,
    until_idle: bool,
    /// Where the outbox is called.
    store: &'a StoreThread<'env>,
}

impl Run<'_, '_> {
    fn stopped(&self) -> bool {
        self.stop.is_some_and(|stop| stop.load(Ordering::Acquire))
    }
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// Signalled when tasks are queued, commits land, a waker wakes or the run ends.
    changed: Condvar,
}

impl Shared {
    /// Wakes the waiting threads, if any (with the lock held, so none is missed).
    fn notify(&self, state: &State) {
        if state.waiting > 0 {
            self.changed.notify_all();
        }
    }

    /// Wakes one waiting thread, if any: after a commit, which gives work to one thread at
    /// most (a claim it may now make, or completions left to commit; a claim then wakes the
    /// others for what it queued). Waking them all woke the threads idle behind a webhook's
    /// cap at every commit, for nothing.
    fn nudge(&self, state: &State) {
        if state.waiting > 0 {
            self.changed.notify_one();
        }
    }
}

#[derive(Default)]
struct State {
    /// A run is in progress (runs of one worker do not overlap).
    running: bool,
    /// Claimed, waiting for a thread, by webhook.
    queue: HookQueues,
    /// The breakers, by destination (kept across runs).
    breakers: Breakers,
    /// Tasks put off by an open breaker, not yet handed to the outbox (still in flight).
    put_offs: Vec<PutOff>,
    /// Breakers closed, not yet handed to the outbox.
    closed: Vec<Destination>,
    /// Claimed, not yet committed, by task id.
    in_flight: HashMap<i64, InFlight>,
    /// The request bodies of `in_flight`, in bytes.
    in_flight_bytes: usize,
    /// The average request body of the last claim, in bytes.
    body_estimate: usize,
    /// The queue's bounds, from the delivery rate.
    depth: QueueDepth,
    /// Delivered, waiting for a commit.
    pending: Vec<Completion>,
    /// A thread is claiming (claims are exclusive).
    claiming: bool,
    /// A thread is committing.
    committing: bool,
    /// Threads between taking a task and adding its completion to `pending`.
    delivering: usize,
    /// Threads waiting on `changed`.
    waiting: usize,
    /// Batches committed (or abandoned) in this run.
    commits: u64,
    /// Times a [`WorkerWaker`] woke the worker (kept across runs).
    wakes: u64,
    /// The last claim found nothing due: wait until then (or a wake-up) before the next.
    idle: Option<Idle>,
    /// The stop flag was seen: claim no more, finish the queue.
    stopping: bool,
    /// `run_until_idle` is done.
    finished: bool,
    stats: Stats,
}

/// A task claimed and not yet committed.
struct InFlight {
    /// The lease token of its newest claim.
    lease: LeaseToken,
    /// When that lease runs out (at the latest).
    lease_until: Instant,
    /// Its request body's size.
    bytes: usize,
}

impl InFlight {
    /// Whether at least `margin` of its lease is left: a delivery started with less could
    /// still be under way, or its completion uncommitted, when the lease runs out.
    fn lease_left_at_least(&self, margin: Duration) -> bool {
        Instant::now() + margin < self.lease_until
    }
}

/// Records a task put off by the open breaker of `destination` until `until` (it stays in
/// flight until the outbox has it).
fn put_off(
    state: &mut State,
    task: &Task,
    destination: &Destination,
    until: Instant,
    reason: String,
) {
    state.breakers.held(destination, task.task_id);
    let wait = until.saturating_duration_since(Instant::now());
    state.put_offs.push(PutOff {
        task_id: task.task_id,
        lease: task.lease,
        until: OffsetDateTime::now_utc() + wait,
        destination: destination.clone(),
        reason,
    });
}

/// Tasks in flight as far as the claim limit is concerned: not those queued behind a webhook at
/// its cap (a hanging receiver's queue would otherwise stop claims for everyone; they are
/// bounded by the store's cap per webhook and by `max_in_flight_bytes`).
fn counted_in_flight(state: &State) -> usize {
    state
        .in_flight
        .len()
        .saturating_sub(state.queue.waiting_for_cap())
}

/// Drops a task from the in-flight set (committed, abandoned, or let go).
fn forget(state: &mut State, task_id: i64) {
    if let Some(in_flight) = state.in_flight.remove(&task_id) {
        state.in_flight_bytes -= in_flight.bytes;
    }
}

/// Why and until when the worker does not claim (after a claim found nothing).
#[derive(Clone, Copy)]
struct Idle {
    until: Instant,
    /// `State::commits` seen before that claim (`None`: a failed claim, retried only after
    /// the poll interval or a wake-up).
    commits: Option<u64>,
    /// `State::wakes` seen before that claim.
    wakes: u64,
    /// That claim left due tasks behind because their webhooks were at their caps: a commit
    /// (which ends leases) ends the wait.
    held_back: bool,
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
