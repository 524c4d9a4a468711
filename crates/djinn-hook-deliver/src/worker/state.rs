//! What the worker's threads share: the [`Shared`] state behind one lock (its [`Schedule`],
//! queue, tasks in flight, pending completions, breakers and limits) and the small operations
//! on it that every part of the worker uses.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use djinn_hook_outbox::{
    Attempt, BreakerOpening, Completion, Destination, LeaseToken, LimitNote, PutOff, Release, Task,
};
use time::OffsetDateTime;

use super::Stats;
use super::breaker::{BreakerConfig, BreakerStatus, Breakers};
use super::hook_queue::{HookQueues, Queued};
use super::limits::{LimitReason, LimitStatus, Limits};
use super::queue_depth::QueueDepth;
use super::schedule::{Facts, Schedule};
#[cfg(doc)]
use super::{WorkerWaker, pool::SLOW};
use djinn_hook_outbox::{Clock, SystemClock};

#[derive(Default)]
pub(super) struct Shared {
    pub(super) state: Mutex<State>,
    /// Signalled when tasks are queued, commits land, a waker wakes or the run ends.
    pub(super) changed: Condvar,
}

impl Shared {
    /// A new worker's state, with breakers as `config` says.
    pub(super) fn new(config: BreakerConfig) -> Shared {
        let shared = Shared::default();
        lock(&shared.state).breakers = Breakers::new(config);
        shared
    }

    /// Makes the worker claim now, if it was waiting for due tasks.
    pub(super) fn wake(&self) {
        let mut state = lock(&self.state);
        state.schedule.woken();
        self.notify(&state);
    }

    /// Every destination with a breaker that is open, probing, or counting failures.
    pub(super) fn breaker_statuses(&self) -> Vec<BreakerStatus> {
        let state = lock(&self.state);
        state.breakers.statuses(state.clock.now())
    }

    /// Every webhook whose adaptive limit is not plainly at its cap.
    pub(super) fn limit_statuses(&self) -> Vec<LimitStatus> {
        let state = lock(&self.state);
        state
            .limits
            .statuses(state.clock.now(), |hook_id| state.queue.delivering(hook_id))
    }

    /// Wakes the waiting threads, if any (with the lock held, so none is missed).
    pub(super) fn notify(&self, state: &State) {
        if state.waiting > 0 {
            self.changed.notify_all();
        }
    }

    /// Wakes one waiting thread, if any: after a commit, which gives work to one thread at
    /// most (a claim it may now make, or completions left to commit; a claim then wakes the
    /// others for what it queued). Waking them all woke the threads idle behind a webhook's
    /// cap at every commit, for nothing.
    pub(super) fn nudge(&self, state: &State) {
        if state.waiting > 0 {
            self.changed.notify_one();
        }
    }
}

#[derive(Default)]
pub(super) struct State {
    /// The run's phase, its claims and commits.
    pub(super) schedule: Schedule,
    /// The worker's clock, for its handles.
    pub(super) clock: WorkerClock,
    /// Claimed, waiting for a thread, by webhook.
    pub(super) queue: HookQueues,
    /// The breakers, by destination (kept across runs).
    pub(super) breakers: Breakers,
    /// The adaptive limits, by webhook (kept across runs).
    pub(super) limits: Limits,
    /// Tasks put off by an open breaker, not yet handed to the outbox (still in flight).
    pub(super) put_offs: Vec<PutOff>,
    /// Breakers opened, not yet handed to the outbox.
    pub(super) opened: Vec<BreakerOpening>,
    /// Breakers closed, not yet handed to the outbox.
    pub(super) closed: Vec<Destination>,
    /// When the shared breakers were last read (after a claim).
    pub(super) breakers_read: Option<Instant>,
    /// Webhooks' limits changed, not yet handed to the outbox.
    pub(super) limit_notes: Vec<LimitNote>,
    /// Webhooks whose due tasks are to be put off, until when, not yet handed to the outbox.
    pub(super) deferrals: HashMap<i64, OffsetDateTime>,
    /// Tasks the stopping worker will not attempt, not yet handed back (still in flight).
    pub(super) releases: Vec<Release>,
    /// Claimed, not yet committed, by task id.
    pub(super) in_flight: HashMap<i64, InFlight>,
    /// The request bodies of `in_flight`, in bytes.
    pub(super) in_flight_bytes: usize,
    /// The average request body of the last claim, in bytes.
    pub(super) body_estimate: usize,
    /// The queue's bounds, from the delivery rate.
    pub(super) depth: QueueDepth,
    /// Delivered, waiting for a commit.
    pub(super) pending: Vec<Completion>,
    /// Threads between taking a task and adding its completion to `pending`.
    pub(super) delivering: usize,
    /// Delivery threads running (the pool: `concurrency`, plus one per slow delivery).
    pub(super) threads: usize,
    /// Deliveries under way longer than [`SLOW`] (as last counted).
    pub(super) slow: usize,
    /// Deliveries in the engine (at most `max_deliveries`).
    pub(super) evented: usize,
    /// Deliveries in the engine, by webhook (those with none have no entry).
    pub(super) evented_by_hook: HashMap<i64, usize>,
    /// Deliveries the engine ended, waiting for a thread to record them.
    pub(super) ended: Vec<Ended>,
    /// When each delivery under way started, whether it was expected to be slow, and its
    /// webhook, by a number of its own.
    pub(super) started: HashMap<u64, Started>,
    /// The number of the next delivery.
    pub(super) next_delivery: u64,
    /// Threads waiting on `changed`.
    pub(super) waiting: usize,
    pub(super) stats: Stats,
}

impl State {
    /// What the schedule needs to know of the queue and the deliveries; `max_in_flight_bytes`
    /// is the worker's bound on the request bodies in flight.
    pub(super) fn facts(&self, max_in_flight_bytes: usize) -> Facts {
        Facts {
            queue_empty: self.queue.is_empty(),
            unwritten: self.unwritten(),
            ended: !self.ended.is_empty(),
            evented: self.evented,
            pending: !self.pending.is_empty(),
            room_to_claim: self.queue.ready() <= self.depth.low_water()
                && counted_in_flight(self) < self.depth.max_in_flight()
                && self.in_flight_bytes < max_in_flight_bytes,
        }
    }

    /// Whether put-offs, closed breakers, changed limits, deferrals or releases wait to be
    /// handed to the outbox.
    pub(super) fn unwritten(&self) -> bool {
        !self.put_offs.is_empty()
            || !self.opened.is_empty()
            || !self.closed.is_empty()
            || !self.limit_notes.is_empty()
            || !self.deferrals.is_empty()
            || !self.releases.is_empty()
    }
}

/// A delivery under way.
pub(super) struct Started {
    pub(super) at: Instant,
    /// Its webhook was known to be slow when it started.
    pub(super) expected_slow: bool,
    /// It counts as slow (waiting on its receiver) once under way this long.
    pub(super) slow_after: Duration,
    pub(super) hook_id: i64,
}

/// A delivery the engine ended.
pub(super) struct Ended {
    pub(super) task: Task,
    pub(super) destination: Option<Destination>,
    pub(super) started: Instant,
    pub(super) attempt: Attempt,
}

/// A task claimed and not yet committed.
pub(super) struct InFlight {
    /// The lease token of its newest claim.
    pub(super) lease: LeaseToken,
    /// When that lease runs out (at the latest).
    pub(super) lease_until: Instant,
    /// Its request body's size.
    pub(super) bytes: usize,
}

impl InFlight {
    /// Whether at least `margin` of its lease is left: a delivery started with less could
    /// still be under way, or its completion uncommitted, when the lease runs out.
    pub(super) fn lease_left_at_least(&self, margin: Duration, now: Instant) -> bool {
        now + margin < self.lease_until
    }
}

/// Records a task put off by the open breaker of `destination` until `until` (it stays in
/// flight until the outbox has it).
pub(super) fn put_off(
    state: &mut State,
    clock: &dyn Clock,
    task: &Task,
    destination: &Destination,
    until: Instant,
    reason: String,
) {
    state.breakers.held(destination, task.task_id);
    let wait = until.saturating_duration_since(clock.now());
    let until = clock.now_utc() + wait;
    state.put_offs.push(PutOff {
        task_id: task.task_id,
        lease: task.lease,
        until,
        destination: destination.clone(),
        reason,
    });
    // The webhook's other due tasks too, at once: claims would otherwise bring them one by one
    // only for them to be put off here (a dead receiver's backlog would cost the store as much
    // as as many deliveries).
    let deferred = state.deferrals.entry(task.request.hook_id).or_insert(until);
    *deferred = (*deferred).max(until);
}

/// Stopping: the queued tasks no thread has started are handed back (due at once, for the next
/// claim of this process after a restart or of another one) rather than delivered first, so a
/// stop waits only for the deliveries under way.
pub(super) fn hand_back_queue(state: &mut State) {
    for Queued { task, .. } in state.queue.take_where(|_| true) {
        state.releases.push(Release {
            task_id: task.task_id,
            lease: task.lease,
        });
    }
}

/// Tasks in flight as far as the claim limit is concerned: not those queued behind a webhook at its
/// cap, nor those in slow or evented deliveries (a hanging receiver's tasks would otherwise stop
/// claims for everyone; they are bounded by the store's cap per webhook, by `max_deliveries` and by
/// `max_in_flight_bytes`).
pub(super) fn counted_in_flight(state: &State) -> usize {
    state
        .in_flight
        .len()
        .saturating_sub(state.queue.waiting_for_cap())
        .saturating_sub(state.slow)
        .saturating_sub(state.evented)
}

/// The reason recorded for tasks put off while their webhook is paused.
pub(super) fn throttled_reason() -> String {
    format!("{} (429 or 503)", LimitReason::Throttled.as_str())
}

/// Drops a task from the in-flight set (committed, abandoned, or let go).
pub(super) fn forget(state: &mut State, task_id: i64) {
    if let Some(in_flight) = state.in_flight.remove(&task_id) {
        state.in_flight_bytes -= in_flight.bytes;
    }
}

/// A worker's [`Clock`] (the system's unless told otherwise).
#[derive(Clone, Debug)]
pub(super) struct WorkerClock(pub(super) Arc<dyn Clock>);

impl Default for WorkerClock {
    fn default() -> WorkerClock {
        WorkerClock(Arc::new(SystemClock))
    }
}

impl std::ops::Deref for WorkerClock {
    type Target = dyn Clock + 'static;

    fn deref(&self) -> &(dyn Clock + 'static) {
        &*self.0
    }
}

/// Wakes a worker's waiting threads when its clock is moved (holding the worker weakly: the
/// clock may outlive it).
pub(super) struct WakeOnMove(pub(super) Weak<Shared>);

impl std::task::Wake for WakeOnMove {
    fn wake(self: Arc<Self>) {
        if let Some(shared) = self.0.upgrade() {
            let state = lock(&shared.state);
            shared.changed.notify_all();
            drop(state);
        }
    }
}

/// Locks, ignoring poisoning (a panicking observer must not wedge the worker).
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Waits on `condvar` until notified, or for `timeout` at most if given.
pub(super) fn wait<'a, T>(
    condvar: &Condvar,
    guard: MutexGuard<'a, T>,
    timeout: Option<Duration>,
) -> MutexGuard<'a, T> {
    match timeout {
        None => condvar.wait(guard).unwrap_or_else(PoisonError::into_inner),
        Some(timeout) => {
            condvar
                .wait_timeout(guard, timeout)
                .unwrap_or_else(PoisonError::into_inner)
                .0
        }
    }
}
