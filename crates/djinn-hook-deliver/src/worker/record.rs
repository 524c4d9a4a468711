//! Recording a delivery's attempt: the webhook's adaptive limit and the destination's breaker
//! learn from it (a pause or an opened breaker puts queued tasks off), and its completion joins
//! the pending batch.

use std::sync::MutexGuard;
use std::time::{Duration, Instant};

use djinn_hook_outbox::{Attempt, Completion, Decision, Destination, Outbox, Outcome, Task};

use super::breaker::Change;
use super::hook_queue::Queued;
use super::limits::Signal;
use super::pool::{Run, SLOW};
use super::state::{Ended, State, lock, put_off, throttled_reason};
use super::{Worker, WorkerEvent};

impl<O: Outbox> Worker<'_, O> {
    /// Records an evented delivery that ended: its slot in the engine is free again.
    pub(super) fn record_ended<'env>(
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
        let took = self.clock.now().saturating_duration_since(started);
        let decision = self.policy.decide(
            &attempt,
            task.request.attempt,
            task.hook_failing_since,
            self.clock.now_utc(),
        );
        self.record(state, run, task, destination, took, attempt, decision)
    }

    /// Records a delivery's attempt (on a thread or in the engine): the webhook's limit and
    /// breaker learn from it, its completion joins the pending batch, committed unless a
    /// commit runs.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn record<'env>(
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
        let signal = Signal::of(&attempt, timeout, self.clock.now_utc());
        let cap = self.cap_of(&task);
        if let Some(change) =
            state
                .limits
                .record(hook_id, cap, signal, took >= SLOW, self.clock.now())
        {
            state.queue.set_cap(hook_id, change.limit);
            let note = state.limits.note(hook_id, self.clock.now());
            state.limit_notes.retain(|n| n.hook_id != hook_id);
            state.limit_notes.push(note);
            if let (Some(until), Some(destination)) = (change.paused_until, &destination) {
                self.pause(&mut state, hook_id, destination, until);
            }
        }
        if let (Outcome::Throttled(at), Some(until)) = (
            decision.outcome,
            state.limits.paused_until(hook_id, self.clock.now()),
        ) {
            // Not before its webhook's pause ends.
            let pause_end =
                self.clock.now_utc() + until.saturating_duration_since(self.clock.now());
            decision.outcome = Outcome::Throttled(at.max(pause_end));
        }
        // No wake-up for the slot this frees: this thread takes the next task itself.
        state.queue.done(hook_id);
        if let Some(destination) = destination
            && let Some(change) =
                state
                    .breakers
                    .record(&destination, task.task_id, &attempt, self.clock.now())
        {
            state = self.breaker_changed(state, &destination, change);
        }
        state
            .pending
            .push(Completion::new(task.task_id, task.lease, attempt, decision));
        if !state.schedule.committing() {
            state = self.commit_pending(state, run);
        }
        state
    }

    /// The most deliveries of `task`'s webhook at once: its own cap, else the worker's.
    pub(super) fn cap_of(&self, task: &Task) -> usize {
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
            put_off(
                state,
                &*self.clock,
                &task,
                destination,
                until,
                throttled_reason(),
            );
        }
    }

    /// Whether the task's webhook has failed for so long that its next attempt may disable it:
    /// such a task is delivered even while its breaker is open, so a breaker that never closes
    /// does not keep a dead webhook enabled forever.
    pub(super) fn failing_too_long(&self, task: &Task) -> bool {
        task.hook_failing_since
            .is_some_and(|since| self.clock.now_utc() - since >= self.policy.disable_after)
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
                    put_off(
                        &mut state,
                        &*self.clock,
                        &task,
                        destination,
                        until,
                        reason.clone(),
                    );
                }
                Some((until.saturating_duration_since(self.clock.now()), reason))
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
}
