//! Committing: the pending completions in batches (retried with back-off, then abandoned),
//! and, before them, what else waits to be written to the outbox (put-offs, breaker changes,
//! limits, deferrals, releases).

use std::sync::MutexGuard;
use std::thread;
use std::time::Duration;

use djinn_hook_outbox::{Completion, Deferral, LeaseToken, Outbox, Outcome};

use super::pool::Run;
use super::state::{State, forget, lock};
use super::{Worker, WorkerEvent};

impl<O: Outbox> Worker<'_, O> {
    /// Commits pending completions, one batch at a time, until none is left or another thread
    /// is still delivering (its completion will commit what is left).
    pub(super) fn commit_pending<'env>(
        &'env self,
        mut state: MutexGuard<'env, State>,
        run: &Run<'_, 'env>,
    ) -> MutexGuard<'env, State> {
        let shared = &*self.shared;
        while !state.pending.is_empty() || state.unwritten() {
            state.schedule.commit_started();
            if state.unwritten() {
                state = self.write_put_offs(state, run);
                continue;
            }
            let n = state.pending.len().min(self.config.complete_batch);
            let batch: Vec<Completion> = state.pending.drain(..n).collect();
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
            state.depth.record(batch.len(), self.clock.now());
            state.schedule.commit_ended(true);
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
        let opened = std::mem::take(&mut state.opened);
        let closed = std::mem::take(&mut state.closed);
        let limit_notes = std::mem::take(&mut state.limit_notes);
        let deferrals: Vec<Deferral> = std::mem::take(&mut state.deferrals)
            .into_iter()
            .map(|(hook_id, until)| Deferral { hook_id, until })
            .collect();
        let mut releases = std::mem::take(&mut state.releases);
        drop(state);
        let (put_offs, released, result) = run.store.call(move || {
            {
                let state = lock(&self.shared.state);
                for put_off in &mut put_offs {
                    put_off.lease = current_lease(&state, put_off.task_id, put_off.lease);
                }
                for release in &mut releases {
                    release.lease = current_lease(&state, release.task_id, release.lease);
                }
            }
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
        state.schedule.commit_ended(false);
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
                {
                    let state = lock(&self.shared.state);
                    for completion in &mut batch {
                        completion.lease =
                            current_lease(&state, completion.task_id, completion.lease);
                    }
                }
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
            // Cut short by a stop: a stopping worker tries its commits without waiting.
            match run.stop {
                Some(stop) => {
                    stop.wait_timeout(backoff);
                }
                None => thread::sleep(backoff),
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }
}

/// Task `task_id`'s newest lease: a claim that ran out while it was in flight may have claimed it
/// again. Read on the store thread, where claims run too, so that no claim can come between the
/// read and the write that uses it (a write under the older lease would be ignored as late, and
/// the task, leased anew, delivered twice).
fn current_lease(state: &State, task_id: i64, held: LeaseToken) -> LeaseToken {
    state
        .in_flight
        .get(&task_id)
        .map_or(held, |in_flight| in_flight.lease)
}
