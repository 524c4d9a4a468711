//! The delivery threads: a thin shell that asks the [`Schedule`] what to do next and does it
//! (claim, deliver on a thread or in the engine, record, commit, wait), the pool keeper that
//! adds a thread for each delivery waiting on its receiver, and the run that starts them all.

use std::collections::HashMap;
use std::sync::{Arc, MutexGuard};
use std::task::{Wake, Waker};
use std::thread::{self, Scope};
use std::time::{Duration, Instant};

use djinn_hook_outbox::{Outbox, Shutdown};

use super::breaker::Gate;
use super::hook_queue::{HookQueues, Queued};
use super::queue_depth::QueueDepth;
#[cfg(doc)]
use super::schedule::Schedule;
use super::schedule::{Phase, Step};
use super::state::{Ended, Shared, Started, State, forget, hand_back_queue, lock, put_off, wait};
use super::store_thread::StoreThread;
use super::{Stats, Worker, WorkerEvent};
use crate::engine::Engine;

/// A delivery under way longer than this is waiting on its receiver: its thread no longer
/// counts as one of the pool's `concurrency` working threads, and the pool grows by one; the
/// webhook is marked slow, so its next deliveries count as waiting from their start. Above
/// what a loaded machine adds to a local delivery (so a busy pool of fast deliveries does not
/// grow), below what a person would notice; a delivery over the internet may well take longer,
/// and then each one under way has its own thread (waiting is cheap: see `DELIVERY_STACK`).
pub(super) const SLOW: Duration = Duration::from_millis(100);

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
    pub(crate) fn run_inner(&self, stop: Option<&Shutdown>) -> Stats {
        {
            let mut state = lock(&self.shared.state);
            while state.schedule.is_running() {
                state = wait(&self.shared.changed, state, None);
            }
            let mut schedule = std::mem::take(&mut state.schedule);
            schedule.start(stop.is_none());
            *state = State {
                schedule,
                clock: state.clock.clone(),
                threads: self.config.concurrency,
                depth: QueueDepth::new(self.config.concurrency),
                // Kept across runs: a destination does not recover because the worker restarted.
                breakers: std::mem::take(&mut state.breakers),
                limits: std::mem::take(&mut state.limits),
                ..State::default()
            };
        }
        let running = Running(&self.shared);
        // Wakes the threads that wait when the stop comes (unregistered when the run ends).
        let _stop_wakes = stop
            .map(|stop| stop.on_stop(Waker::from(Arc::new(StopWaker(Arc::clone(&self.shared))))));
        // Dropped (its thread joined) after the delivery threads returned, which wait for the
        // deliveries in it to end.
        let engine = Engine::start(self.deliverer.clone()).ok();
        thread::scope(|outer| {
            // Ends (its handle dropped) once every delivery thread has returned.
            let store = StoreThread::start(outer);
            let run = Run {
                stop,
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

    pub(super) fn observe(&self, event: WorkerEvent<'_>) {
        if let Some(observer) = lock(&self.observer).as_mut() {
            observer(event);
        }
    }

    /// One delivery thread: does what the [`Schedule`] says next (take a task, claiming a batch
    /// first when the queue is low; deliver it; add its completion to the pending batch and
    /// commit that batch unless a commit runs) until it says to return.
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
            let facts = state.facts(self.config.max_in_flight_bytes);
            let mut step = state.schedule.next(&facts, self.clock.now());
            if step == Step::Deliver {
                match self.take_task(&mut state) {
                    Some(queued) => {
                        idle_since = None;
                        state = self.deliver(state, run, scope, queued);
                        continue;
                    }
                    None => step = state.schedule.when_nothing_to_deliver(&facts),
                }
            }
            match step {
                Step::HandBack => hand_back_queue(&mut state),
                Step::Commit => state = self.commit_pending(state, run),
                Step::RecordEnded => {
                    let ended = state
                        .ended
                        .pop()
                        .expect("the schedule saw an ended delivery");
                    state = self.record_ended(state, run, ended);
                }
                Step::Claim => state = self.claim(state, run),
                Step::Return => return,
                Step::Deliver => unreachable!("handled above"),
                Step::Wait(mut until) => {
                    if grown && state.threads > self.config.concurrency + state.slow {
                        let since = *idle_since.get_or_insert_with(|| self.clock.now());
                        if self.clock.now().saturating_duration_since(since) >= IDLE_RETIRE {
                            return;
                        }
                        let retire = since + IDLE_RETIRE;
                        until = Some(until.map_or(retire, |until| until.min(retire)));
                    }
                    state.waiting += 1;
                    let timeout =
                        until.map(|until| until.saturating_duration_since(self.clock.now()));
                    state = wait(&shared.changed, state, timeout);
                    state.waiting -= 1;
                }
            }
        }
    }

    /// The next task a thread may deliver, if any. Once slow deliveries hold their budget of
    /// threads, receivers known to be slow wait for one of them to end; the rest of the pool
    /// stays with the others. Once the engine holds its budget, a webhook with deliveries
    /// waiting there waits for one of them to end; one with none there (a first contact)
    /// takes a thread.
    fn take_task(&self, state: &mut State) -> Option<Queued> {
        let slow_budget = self.config.max_deliveries;
        let engine_full = state.evented >= self.config.max_deliveries;
        let State {
            queue,
            limits,
            slow,
            evented_by_hook,
            ..
        } = state;
        let spent = *slow >= slow_budget;
        queue.pop_unless(|hook_id| {
            (spent && limits.slow(hook_id))
                || (engine_full && !limits.fast(hook_id) && evented_by_hook.contains_key(&hook_id))
        })
    }

    /// Delivers a task taken from the queue, in the engine or on this thread, unless its lease
    /// is nearly out or its destination's breaker holds it.
    fn deliver<'scope, 'env: 'scope>(
        &'env self,
        mut state: MutexGuard<'env, State>,
        run: &'scope Run<'_, 'env>,
        scope: &'scope Scope<'scope, '_>,
        Queued { task, destination }: Queued,
    ) -> MutexGuard<'env, State> {
        let shared = &*self.shared;
        let hook_id = task.request.hook_id;
        if !state
            .in_flight
            .get(&task.task_id)
            .is_some_and(|task| task.lease_left_at_least(self.config.lease / 4, self.clock.now()))
        {
            // Its lease ran out while it was queued, or nearly: another worker may hold the
            // task now, or could claim it while this delivery is under way. Left to be
            // claimed again (by this worker or another), not delivered twice.
            forget(&mut state, task.task_id);
            state.queue.done(hook_id);
            return state;
        }
        if let Some(destination) = &destination
            && !self.failing_too_long(&task)
        {
            let gate;
            (state, gate) = self.breaker_gate(state, run, destination, task.task_id);
            if let Gate::Hold { until, reason } = gate {
                put_off(&mut state, &*self.clock, &task, destination, until, reason);
                state.queue.done(hook_id);
                return state;
            }
        }
        if let Some(engine) = run.engine
            && !state.limits.fast(hook_id)
            && state.evented < self.config.max_deliveries
        {
            // Not known to answer quickly: it waits in the engine, holding no thread.
            state.evented += 1;
            *state.evented_by_hook.entry(hook_id).or_default() += 1;
            drop(state);
            let started = self.clock.now();
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
            return state;
        }
        state.delivering += 1;
        let delivery = state.next_delivery;
        state.next_delivery += 1;
        let started = self.clock.now();
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
        let replace =
            expected_slow && state.threads < self.config.max_deliveries + self.config.concurrency;
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
            self.clock.now_utc(),
        );

        state = lock(&shared.state);
        state.delivering -= 1;
        state.started.remove(&delivery);
        let took = self.clock.now().saturating_duration_since(started);
        if expected_slow || took >= slow_after {
            // Counted slow by the keeper (or about to be): no longer.
            state.slow = state.slow.saturating_sub(1);
            state.queue.unpark();
        }
        self.record(state, run, task, destination, took, attempt, decision)
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
            if state.threads == 0 || state.schedule.phase() == Phase::Finished {
                return;
            }
            let now = self.clock.now();
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
            if slow != state.slow {
                // Who may claim, and which webhooks' tasks may be taken, depends on it.
                state.slow = slow;
                shared.notify(&state);
            }
            let working = state.threads.saturating_sub(state.slow);
            let room = (self.config.max_deliveries + self.config.concurrency)
                .saturating_sub(state.threads);
            let wanted = self.config.concurrency.saturating_sub(working).min(room);
            let stopping = matches!(state.schedule.phase(), Phase::Stopping | Phase::Finished);
            if wanted > 0 && !(stopping && state.queue.is_empty()) {
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
}

/// Ends a run (also when it unwinds), so that the next one may start.
struct Running<'a>(&'a Shared);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let mut state = lock(&self.0.state);
        state.schedule.end();
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
            state.schedule.abort();
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
pub(super) struct Run<'a, 'env> {
    pub(super) stop: Option<&'a Shutdown>,
    /// Where the outbox is called.
    pub(super) store: &'a StoreThread<'env>,
    /// Where deliveries to receivers not known to answer quickly wait (`None` if its thread
    /// could not start: then they wait on threads, as fast ones do).
    pub(super) engine: Option<&'a Engine>,
}

/// Tells a run's threads that the stop came, and wakes those that wait.
struct StopWaker(Arc<Shared>);

impl Wake for StopWaker {
    fn wake(self: Arc<Self>) {
        let mut state = lock(&self.0.state);
        if state.schedule.stop_requested() {
            self.0.changed.notify_all();
        }
    }
}
