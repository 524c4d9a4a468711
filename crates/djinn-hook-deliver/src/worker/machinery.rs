//! The worker's machinery: the delivery threads' loop, claiming, committing and the shared
//! state they work on. The behaviour it implements is described on [`Worker`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use djinn_hook_outbox::{
    ClaimRequest, Claimed, Completion, Destination, LeaseToken, Outbox, Outcome, PutOff, Release,
    Task,
};
use time::OffsetDateTime;

use crate::breaker::{BreakerConfig, BreakerStatus, Breakers, Change, Gate};
use crate::hook_queue::{HookQueues, Queued};
use crate::queue_depth::QueueDepth;
use crate::store_thread::StoreThread;
use crate::worker::{Stats, Worker, WorkerEvent};

/// Longest sleep between two looks at the stop flag.
pub(crate) const STOP_CHECK: Duration = Duration::from_millis(50);

impl<O: Outbox> Worker<'_, O> {
    pub(crate) fn run_inner(&self, stop: Option<&AtomicBool>) -> Stats {
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
            if state.stopping && !state.queue.is_empty() {
                hand_back_queue(&mut state);
            }
            let unwritten = !state.put_offs.is_empty()
                || !state.closed.is_empty()
                || !state.releases.is_empty();
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
            let cap = task.max_in_flight.map_or(self.config.hook_cap(), |n| {
                usize::try_from(n).unwrap_or(usize::MAX)
            });
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
        while !state.pending.is_empty()
            || !state.put_offs.is_empty()
            || !state.closed.is_empty()
            || !state.releases.is_empty()
        {
            state.committing = true;
            if !state.put_offs.is_empty() || !state.closed.is_empty() || !state.releases.is_empty()
            {
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

    /// Hands the tasks put off, the breakers closed and the tasks released to the outbox (on the
    /// store thread), once: if that fails, the tasks come back when their leases run out.
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
        let mut releases = std::mem::take(&mut state.releases);
        for release in &mut releases {
            if let Some(in_flight) = state.in_flight.get(&release.task_id) {
                release.lease = in_flight.lease;
            }
        }
        drop(state);
        let (put_offs, released, result) = run.store.call(move || {
            let result = self.outbox.put_off(&put_offs).and_then(|()| {
                closed
                    .iter()
                    .try_for_each(|destination| self.outbox.breaker_closed(destination))
            });
            // Tried whatever happened above: a stop should hand back all it can.
            let result = result.and(self.outbox.release(&releases));
            self.forget_all(put_offs.iter().map(|p| p.task_id));
            self.forget_all(releases.iter().map(|r| r.task_id));
            (put_offs, releases.len(), result)
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
            state.stats.released += released as u64;
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
        state.releases = Vec::new();
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
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Signalled when tasks are queued, commits land, a waker wakes or the run ends.
    changed: Condvar,
}

impl Shared {
    /// A new worker's state, with breakers as `config` says.
    pub(crate) fn new(config: BreakerConfig) -> Shared {
        let shared = Shared::default();
        lock(&shared.state).breakers = Breakers::new(config);
        shared
    }

    /// Makes the worker claim now, if it was waiting for due tasks.
    pub(crate) fn wake(&self) {
        let mut state = lock(&self.state);
        state.wakes += 1;
        self.notify(&state);
    }

    /// Every destination with a breaker that is open, probing, or counting failures.
    pub(crate) fn breaker_statuses(&self) -> Vec<BreakerStatus> {
        lock(&self.state).breakers.statuses(Instant::now())
    }

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
    /// Tasks the stopping worker will not attempt, not yet handed back (still in flight).
    releases: Vec<Release>,
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
    /// The stop flag was seen: claim no more, hand the queue back.
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

/// Stopping: the queued tasks no thread has started are handed back (due at once, for the next
/// claim of this process after a restart or of another one) rather than delivered first, so a
/// stop waits only for the deliveries under way.
fn hand_back_queue(state: &mut State) {
    for Queued { task, .. } in state.queue.take_where(|_| true) {
        state.releases.push(Release {
            task_id: task.task_id,
            lease: task.lease,
        });
    }
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
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
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
