//! The worker's machinery: the delivery threads' loop, claiming, committing and the shared
//! state they work on. The behaviour it implements is described on [`Worker`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, Scope};
use std::time::{Duration, Instant};

use djinn_hook_outbox::{
    Attempt, BreakerOpening, ClaimRequest, Claimed, Completion, Decision, Deferral, Destination,
    LeaseToken, LimitNote, Outbox, Outcome, PutOff, Release, Task,
};
use time::OffsetDateTime;

use crate::breaker::{BreakerConfig, BreakerStatus, Breakers, Change, Gate};
use crate::engine::Engine;
use crate::hook_queue::{HookQueues, Queued};
use crate::limits::{LimitReason, LimitStatus, Limits, Signal};
use crate::queue_depth::QueueDepth;
use crate::store_thread::StoreThread;
use crate::worker::{Stats, Worker, WorkerEvent};

// Asking for probes and adopting the breakers of other processes.
mod shared_breakers;

/// Longest sleep between two looks at the stop flag.
pub(crate) const STOP_CHECK: Duration = Duration::from_millis(50);

/// A delivery under way longer than this is waiting on its receiver: its thread no longer
/// counts as one of the pool's `concurrency` working threads, and the pool grows by one; the
/// webhook is marked slow, so its next deliveries count as waiting from their start. Above
/// what a loaded machine adds to a local delivery (so a busy pool of fast deliveries does not
/// grow), below what a person would notice; a delivery over the internet may well take longer,
/// and then each one under way has its own thread (waiting is cheap: see `DELIVERY_STACK`).
pub(crate) const SLOW: Duration = Duration::from_millis(100);

/// [`SLOW`] for a webhook whose receiver has not answered quickly yet (a first contact): a
/// working thread caught by a receiver that never answers is replaced sooner, while a
/// receiver known to answer quickly keeps the longer, load-proof threshold.
const SLOW_UNPROVEN: Duration = Duration::from_millis(20);

/// How often the pool keeper counts slow deliveries.
const KEEPER_TICK: Duration = Duration::from_millis(10);

/// How long a thread beyond the pool's floor stays idle before it ends.
const IDLE_RETIRE: Duration = Duration::from_secs(2);

/// Stack of a delivery thread: what a delivery, a claim or a commit needs (the store's calls
/// run on the store thread; bodies and buffers are on the heap), with room to spare. Threads
/// held by slow receivers mostly sleep in `recv`: their cost is this stack's touched pages
/// and the connection's buffers.
const DELIVERY_STACK: usize = 256 * 1024;

impl<O: Outbox> Worker<'_, O> {
    pub(crate) fn run_inner(&self, stop: Option<&AtomicBool>) -> Stats {
        {
            let mut state = lock(&self.shared.state);
            while state.running {
                state = wait(&self.shared.changed, state, STOP_CHECK);
            }
            *state = State {
                running: true,
                threads: self.config.concurrency,
                wakes: state.wakes,
                depth: QueueDepth::new(self.config.concurrency),
                // Kept across runs: a destination does not recover because the worker restarted.
                breakers: std::mem::take(&mut state.breakers),
                limits: std::mem::take(&mut state.limits),
                ..State::default()
            };
        }
        let running = Running(&self.shared);
        // Dropped (its thread joined) after the delivery threads returned, which wait for the
        // deliveries in it to end.
        let engine = Engine::start(self.deliverer.clone()).ok();
        thread::scope(|outer| {
            // Ends (its handle dropped) once every delivery thread has returned.
            let store = StoreThread::start(outer);
            let run = Run {
                stop,
                until_idle: stop.is_none(),
                store: &store,
                engine: engine.as_ref(),
            };
            let run = &run;
            thread::scope(|scope| {
                for _ in 1..self.config.concurrency {
                    spawn_delivery_thread(scope, move || self.thread_loop(run, scope, false))
                        .expect("spawning a delivery thread");
                }
                scope.spawn(move || self.keep_pool(run, scope));
                self.thread_loop(run, scope, false);
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
    ///
    /// A thread the keeper added (`grown`) ends once it has been idle for [`IDLE_RETIRE`] while
    /// the pool has more threads than it needs.
    fn thread_loop<'scope, 'env: 'scope>(
        &'env self,
        run: &'scope Run<'_, 'env>,
        scope: &'scope Scope<'scope, '_>,
        grown: bool,
    ) {
        let shared = &*self.shared;
        let _ends_the_run_on_panic = EndOnPanic(shared);
        let _counted = ThreadCount(shared);
        let mut idle_since: Option<Instant> = None;
        let mut state = lock(&shared.state);
        loop {
            if run.stopped() && !state.stopping {
                state.stopping = true;
                shared.notify(&state);
            }
            if state.stopping && !state.queue.is_empty() {
                hand_back_queue(&mut state);
            }
            let unwritten = state.unwritten();
            if unwritten && !state.committing {
                state = self.commit_pending(state, run);
                continue;
            }
            if let Some(ended) = state.ended.pop() {
                state = self.record_ended(state, run, ended);
                continue;
            }
            if state.finished
                || (state.stopping && state.queue.is_empty() && !unwritten && state.evented == 0)
            {
                return;
            }
            if self.may_claim(&state, run) {
                state = self.claim(state, run);
                continue;
            }
            let slow_budget = self.config.max_deliveries;
            let engine_full = state.evented >= self.config.max_deliveries;
            let State {
                queue,
                limits,
                slow,
                evented_by_hook,
                ..
            } = &mut *state;
            // Once slow deliveries hold their budget of threads, receivers known to be slow
            // wait for one of them to end; the rest of the pool stays with the others. Once
            // the engine holds its budget, a webhook with deliveries waiting there waits for
            // one of them to end; one with none there (a first contact) takes a thread.
            let spent = *slow >= slow_budget;
            let Some(Queued { task, destination }) = queue.pop_unless(|hook_id| {
                (spent && limits.slow(hook_id))
                    || (engine_full
                        && !limits.fast(hook_id)
                        && evented_by_hook.contains_key(&hook_id))
            }) else {
                if !state.pending.is_empty() && !state.committing {
                    // Left by a commit that ended while others were delivering: with nothing
                    // to deliver, commit it rather than wait for them (a hanging receiver's
                    // attempt may take its whole timeout, and the leases of these completions
                    // may be what keeps a webhook at its cap).
                    state = self.commit_pending(state, run);
                    continue;
                }
                if grown && state.threads > self.config.concurrency + state.slow {
                    let since = *idle_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= IDLE_RETIRE {
                        return;
                    }
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
            {
                let gate;
                (state, gate) = self.breaker_gate(state, run, destination, task.task_id);
                if let Gate::Hold { until, reason } = gate {
                    put_off(&mut state, &task, destination, until, reason);
                    state.queue.done(hook_id);
                    continue;
                }
            }
            idle_since = None;
            if let Some(engine) = run.engine
                && !state.limits.fast(hook_id)
                && state.evented < self.config.max_deliveries
            {
                // Not known to answer quickly: it waits in the engine, holding no thread.
                state.evented += 1;
                *state.evented_by_hook.entry(hook_id).or_default() += 1;
                drop(state);
                let started = Instant::now();
                let prepared = engine.prepare(&task.request);
                let to_record = std::sync::Arc::clone(&self.shared);
                engine.send(prepared, move |attempt| {
                    let shared = &*to_record;
                    let mut state = lock(&shared.state);
                    state.ended.push(Ended {
                        task,
                        destination,
                        started,
                        attempt,
                    });
                    shared.notify(&state);
                });
                state = lock(&shared.state);
                continue;
            }
            state.delivering += 1;
            let delivery = state.next_delivery;
            state.next_delivery += 1;
            let started = Instant::now();
            // A delivery to a receiver that answered slowly last time counts as waiting from
            // its start: the keeper adds a thread for it at its next look, not after `SLOW`.
            let expected_slow = state.limits.slow(hook_id);
            let slow_after = if state.limits.fast(hook_id) {
                SLOW
            } else {
                SLOW_UNPROVEN
            };
            state.started.insert(
                delivery,
                Started {
                    at: started,
                    expected_slow,
                    slow_after,
                    hook_id,
                },
            );
            let replace = expected_slow
                && state.threads < self.config.max_deliveries + self.config.concurrency;
            if expected_slow {
                state.slow += 1;
            }
            if replace {
                state.threads += 1;
            }
            drop(state);
            // This thread will wait: a new one takes its place now, not at the keeper's next
            // look (a backlog for a slow receiver then goes out at the rate threads start).
            if replace
                && spawn_delivery_thread(scope, move || self.thread_loop(run, scope, true)).is_err()
            {
                lock(&shared.state).threads -= 1;
            }

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
            state.started.remove(&delivery);
            let took = started.elapsed();
            if expected_slow || took >= slow_after {
                // Counted slow by the keeper (or about to be): no longer.
                state.slow = state.slow.saturating_sub(1);
                state.queue.unpark();
            }
            state = self.record(state, run, task, destination, took, attempt, decision);
        }
    }

    /// Records an evented delivery that ended: its slot in the engine is free again.
    fn record_ended<'env>(
        &'env self,
        mut state: MutexGuard<'env, State>,
        run: &Run<'_, 'env>,
        ended: Ended,
    ) -> MutexGuard<'env, State> {
        let Ended {
            task,
            destination,
            started,
            attempt,
        } = ended;
        state.evented -= 1;
        let hook_id = task.request.hook_id;
        if let Some(n) = state.evented_by_hook.get_mut(&hook_id) {
            *n -= 1;
            if *n == 0 {
                state.evented_by_hook.remove(&hook_id);
            }
        }
        state.queue.unpark();
        let took = started.elapsed();
        let decision = self.policy.decide(
            &attempt,
            task.request.attempt,
            task.hook_failing_since,
            OffsetDateTime::now_utc(),
        );
        self.record(state, run, task, destination, took, attempt, decision)
    }

    /// Records a delivery's attempt (on a thread or in the engine): the webhook's limit and
    /// breaker learn from it, its completion joins the pending batch, committed unless a
    /// commit runs.
    #[allow(clippy::too_many_arguments)]
    fn record<'env>(
        &'env self,
        mut state: MutexGuard<'env, State>,
        run: &Run<'_, 'env>,
        task: Task,
        destination: Option<Destination>,
        took: Duration,
        attempt: Attempt,
        mut decision: Decision,
    ) -> MutexGuard<'env, State> {
        let hook_id = task.request.hook_id;
        let timeout = task
            .request
            .timeout
            .unwrap_or(self.deliverer.config().timeout);
        let signal = Signal::of(&attempt, timeout, OffsetDateTime::now_utc());
        let cap = self.cap_of(&task);
        if let Some(change) =
            state
                .limits
                .record(hook_id, cap, signal, took >= SLOW, Instant::now())
        {
            state.queue.set_cap(hook_id, change.limit);
            let note = state.limits.note(hook_id, Instant::now());
            state.limit_notes.retain(|n| n.hook_id != hook_id);
            state.limit_notes.push(note);
            if let (Some(until), Some(destination)) = (change.paused_until, &destination) {
                self.pause(&mut state, hook_id, destination, until);
            }
        }
        if let (Outcome::Throttled(at), Some(until)) = (
            decision.outcome,
            state.limits.paused_until(hook_id, Instant::now()),
        ) {
            // Not before its webhook's pause ends.
            let pause_end =
                OffsetDateTime::now_utc() + until.saturating_duration_since(Instant::now());
            decision.outcome = Outcome::Throttled(at.max(pause_end));
        }
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
        state
            .pending
            .push(Completion::new(task.task_id, task.lease, attempt, decision));
        if !state.committing {
            state = self.commit_pending(state, run);
        }
        state
    }

    /// The pool keeper: counts the deliveries waiting on their receivers (under way longer than
    /// [`SLOW`]) and adds a thread for each, so that `concurrency` threads are always free to
    /// claim, commit and take the next task, up to `max_deliveries + concurrency` threads in
    /// all. Ends with the run.
    fn keep_pool<'scope, 'env: 'scope>(
        &'env self,
        run: &'scope Run<'_, 'env>,
        scope: &'scope Scope<'scope, '_>,
    ) {
        let shared = &*self.shared;
        loop {
            let mut state = lock(&shared.state);
            if state.threads == 0 || state.finished {
                return;
            }
            let now = Instant::now();
            let State {
                started, limits, ..
            } = &mut *state;
            let mut slow = 0;
            for delivery in started.values() {
                if delivery.expected_slow
                    || now.saturating_duration_since(delivery.at) >= delivery.slow_after
                {
                    let hook_id = delivery.hook_id;
                    slow += 1;
                    // The webhook's next deliveries count as slow from their start.
                    limits.mark_slow(hook_id);
                }
            }
            if slow < state.slow {
                state.queue.unpark();
            }
            state.slow = slow;
            let working = state.threads.saturating_sub(state.slow);
            let room = (self.config.max_deliveries + self.config.concurrency)
                .saturating_sub(state.threads);
            let wanted = self.config.concurrency.saturating_sub(working).min(room);
            if wanted > 0 && !(state.stopping && state.queue.is_empty()) {
                state.threads += wanted;
                drop(state);
                for _ in 0..wanted {
                    if spawn_delivery_thread(scope, move || self.thread_loop(run, scope, true))
                        .is_err()
                    {
                        // Out of threads (a process limit): the pool stays as it is for now.
                        lock(&shared.state).threads -= 1;
                    }
                }
            } else {
                drop(state);
            }
            thread::sleep(KEEPER_TICK);
        }
    }

    /// The most deliveries of `task`'s webhook at once: its own cap, else the worker's.
    fn cap_of(&self, task: &Task) -> usize {
        task.max_in_flight.map_or(self.config.hook_cap(), |n| {
            usize::try_from(n).unwrap_or(usize::MAX)
        })
    }

    /// Puts off the queued tasks of webhook `hook_id`, paused until `until` (it answered 429
    /// or 503): nothing is sent to it meanwhile, and their claims are not counted as attempts.
    fn pause(&self, state: &mut State, hook_id: i64, destination: &Destination, until: Instant) {
        let queued = state
            .queue
            .take_where(|queued| queued.task.request.hook_id == hook_id);
        for Queued { task, .. } in queued {
            put_off(state, &task, destination, until, throttled_reason());
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
            Change::Opened {
                until,
                reason,
                opening,
            } => {
                state.stats.breakers_opened += 1;
                state.opened.push(opening);
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
        let mut request = ClaimRequest::uncapped(limit, self.config.lease);
        request.max_in_flight = self.config.hook_cap();
        // A webhook's share of the queue: as many tasks behind each of its slots as the
        // queue holds per thread at its high-water mark.
        request.leases_per_slot = 1 + state.depth.high_water() / self.config.concurrency;
        let last_read = state.breakers_read;
        drop(state);

        // Taken before the claim, so the lease is never thought to last longer than it does.
        let lease_until = Instant::now() + self.config.lease;
        let (claimed, read) = run
            .store
            .call(move || self.claim_and_read_breakers(&request, last_read));

        let mut state = lock(&shared.state);
        state.claiming = false;
        if let Some(read) = read {
            read.adopt(&mut state);
        }
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
            let hook_id = task.request.hook_id;
            if let Some(destination) = &destination
                && let Some(until) = state.limits.paused_until(hook_id, now)
            {
                put_off(&mut state, &task, destination, until, throttled_reason());
                continue;
            }
            let cap = state.limits.allowed(hook_id, self.cap_of(&task), now);
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
        while !state.pending.is_empty() || state.unwritten() {
            state.committing = true;
            if state.unwritten() {
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
                        Outcome::Throttled(_) => stats.throttled += 1,
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

    /// Hands the tasks put off, the breakers closed, the limits changed and the tasks released
    /// to the outbox (on the store thread), once: if that fails, the tasks come back when their
    /// leases run out.
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
        let opened = std::mem::take(&mut state.opened);
        let closed = std::mem::take(&mut state.closed);
        let limit_notes = std::mem::take(&mut state.limit_notes);
        let deferrals: Vec<Deferral> = std::mem::take(&mut state.deferrals)
            .into_iter()
            .map(|(hook_id, until)| Deferral { hook_id, until })
            .collect();
        let mut releases = std::mem::take(&mut state.releases);
        for release in &mut releases {
            if let Some(in_flight) = state.in_flight.get(&release.task_id) {
                release.lease = in_flight.lease;
            }
        }
        drop(state);
        let (put_offs, released, result) = run.store.call(move || {
            // Openings first: the other processes hold the destination from the next read.
            let result = self.outbox.breaker_opened(&opened);
            let result = result
                .and_then(|()| self.outbox.put_off(&put_offs))
                .and_then(|()| {
                    closed
                        .iter()
                        .try_for_each(|destination| self.outbox.breaker_closed(destination))
                        .and_then(|()| self.outbox.limits_changed(&limit_notes))
                        .and_then(|()| self.outbox.defer(&deferrals))
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
        state.opened = Vec::new();
        state.closed = Vec::new();
        state.limit_notes = Vec::new();
        state.deferrals = HashMap::new();
        state.releases = Vec::new();
        state.in_flight = HashMap::new();
        state.in_flight_bytes = 0;
        state.pending = Vec::new();
        state.evented = 0;
        state.evented_by_hook = HashMap::new();
        state.ended = Vec::new();
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

/// Counts a delivery thread out of the pool when it returns (or unwinds).
struct ThreadCount<'a>(&'a Shared);

impl Drop for ThreadCount<'_> {
    fn drop(&mut self) {
        let mut state = lock(&self.0.state);
        state.threads -= 1;
        self.0.changed.notify_all();
    }
}

/// Starts a delivery thread of the pool in `scope`, with a small stack.
fn spawn_delivery_thread<'scope>(
    scope: &'scope Scope<'scope, '_>,
    body: impl FnOnce() + Send + 'scope,
) -> std::io::Result<()> {
    thread::Builder::new()
        .name("djinn-deliver".to_owned())
        .stack_size(DELIVERY_STACK)
        .spawn_scoped(scope, body)
        .map(drop)
}

/// The parameters of one run.
struct Run<'a, 'env> {
    stop: Option<&'a AtomicBool>,
    until_idle: bool,
    /// Where the outbox is called.
    store: &'a StoreThread<'env>,
    /// Where deliveries to receivers not known to answer quickly wait (`None` if its thread
    /// could not start: then they wait on threads, as fast ones do).
    engine: Option<&'a Engine>,
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

    /// Every webhook whose adaptive limit is not plainly at its cap.
    pub(crate) fn limit_statuses(&self) -> Vec<LimitStatus> {
        let state = lock(&self.state);
        state
            .limits
            .statuses(Instant::now(), |hook_id| state.queue.delivering(hook_id))
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
    /// The adaptive limits, by webhook (kept across runs).
    limits: Limits,
    /// Tasks put off by an open breaker, not yet handed to the outbox (still in flight).
    put_offs: Vec<PutOff>,
    /// Breakers opened, not yet handed to the outbox.
    opened: Vec<BreakerOpening>,
    /// Breakers closed, not yet handed to the outbox.
    closed: Vec<Destination>,
    /// When the shared breakers were last read (after a claim).
    breakers_read: Option<Instant>,
    /// Webhooks' limits changed, not yet handed to the outbox.
    limit_notes: Vec<LimitNote>,
    /// Webhooks whose due tasks are to be put off, until when, not yet handed to the outbox.
    deferrals: HashMap<i64, OffsetDateTime>,
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
    /// Delivery threads running (the pool: `concurrency`, plus one per slow delivery).
    threads: usize,
    /// Deliveries under way longer than [`SLOW`] (as last counted).
    slow: usize,
    /// Deliveries in the engine (at most `max_deliveries`).
    evented: usize,
    /// Deliveries in the engine, by webhook (those with none have no entry).
    evented_by_hook: HashMap<i64, usize>,
    /// Deliveries the engine ended, waiting for a thread to record them.
    ended: Vec<Ended>,
    /// When each delivery under way started, whether it was expected to be slow, and its
    /// webhook, by a number of its own.
    started: HashMap<u64, Started>,
    /// The number of the next delivery.
    next_delivery: u64,
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

impl State {
    /// Whether put-offs, closed breakers, changed limits, deferrals or releases wait to be
    /// handed to the outbox.
    fn unwritten(&self) -> bool {
        !self.put_offs.is_empty()
            || !self.opened.is_empty()
            || !self.closed.is_empty()
            || !self.limit_notes.is_empty()
            || !self.deferrals.is_empty()
            || !self.releases.is_empty()
    }
}

/// A delivery under way.
struct Started {
    at: Instant,
    /// Its webhook was known to be slow when it started.
    expected_slow: bool,
    /// It counts as slow (waiting on its receiver) once under way this long.
    slow_after: Duration,
    hook_id: i64,
}

/// A delivery the engine ended.
struct Ended {
    task: Task,
    destination: Option<Destination>,
    started: Instant,
    attempt: Attempt,
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
    let until = OffsetDateTime::now_utc() + wait;
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
fn hand_back_queue(state: &mut State) {
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
fn counted_in_flight(state: &State) -> usize {
    state
        .in_flight
        .len()
        .saturating_sub(state.queue.waiting_for_cap())
        .saturating_sub(state.slow)
        .saturating_sub(state.evented)
}

/// The reason recorded for tasks put off while their webhook is paused.
fn throttled_reason() -> String {
    format!("{} (429 or 503)", LimitReason::Throttled.as_str())
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
