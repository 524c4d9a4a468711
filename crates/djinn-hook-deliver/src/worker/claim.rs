//! Claiming: one batch from the outbox (on the store thread), its tasks queued per webhook or
//! put off when their destination's breaker is open or their webhook paused.

use std::collections::{HashMap, HashSet};
use std::sync::MutexGuard;

use djinn_hook_outbox::{ClaimRequest, Claimed, Destination, Outbox};

use super::breaker::Gate;
use super::hook_queue::Queued;
use super::pool::Run;
use super::schedule::ClaimResult;
use super::state::{InFlight, State, counted_in_flight, lock, put_off, throttled_reason};
use super::{Worker, WorkerEvent};

impl<O: Outbox> Worker<'_, O> {
    /// Claims one batch (the lock released meanwhile) and queues it; tasks of a destination
    /// whose breaker is open are put off instead.
    pub(super) fn claim<'env>(
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
        let ticket = state.schedule.claim_started();
        let nothing_in_flight = state.in_flight.is_empty();
        let mut request = ClaimRequest::uncapped(limit, self.config.lease);
        request.max_in_flight = self.config.hook_cap();
        // A webhook's share of the queue: as many tasks behind each of its slots as the
        // queue holds per thread at its high-water mark.
        request.leases_per_slot = 1 + state.depth.high_water() / self.config.concurrency;
        let last_read = state.breakers_read;
        drop(state);

        // Taken before the claim, so the lease is never thought to last longer than it does.
        let lease_until = self.clock.now() + self.config.lease;
        let (claimed, read, renewed) = run.store.call(move || {
            let (claimed, read) = self.claim_and_read_breakers(&request, last_read);
            let renewed = match &claimed {
                Ok(claimed) => self.renew_in_flight(claimed, lease_until),
                Err(_) => HashSet::new(),
            };
            (claimed, read, renewed)
        });

        let mut state = lock(&shared.state);
        if let Some(read) = read {
            read.adopt(&mut state);
        }
        let claimed = match claimed {
            Ok(claimed) => claimed,
            Err(error) => {
                state.stats.claim_errors += 1;
                drop(state);
                self.observe(WorkerEvent::ClaimFailed(&error));
                state = lock(&shared.state);
                let now = self.clock.now();
                let poll = self.config.poll_interval;
                let failed = ClaimResult::Failed;
                state
                    .schedule
                    .claim_ended(ticket, failed, nothing_in_flight, now, poll);
                shared.notify(&state);
                return state;
            }
        };
        let result = if claimed.tasks.len() < limit {
            ClaimResult::Short {
                empty: claimed.tasks.is_empty(),
                held_back: claimed.held_back,
            }
        } else {
            ClaimResult::Full
        };
        let now = self.clock.now();
        let poll = self.config.poll_interval;
        state
            .schedule
            .claim_ended(ticket, result, nothing_in_flight, now, poll);
        let Claimed { tasks: claimed, .. } = claimed;
        if claimed.is_empty() {
            shared.notify(&state);
            return state;
        }
        let claimed_bytes: usize = claimed.iter().map(|task| task.request.body.len()).sum();
        state.body_estimate = claimed_bytes / claimed.len();
        // Parsed once per webhook per claim.
        let mut destinations: HashMap<i64, Option<Destination>> = HashMap::new();
        for task in claimed {
            if renewed.contains(&task.task_id) {
                // Still in flight from an earlier claim whose lease ran out: never delivered
                // twice at once (its attempt may even have been committed meanwhile).
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
                put_off(&mut state, &*self.clock, &task, destination, until, reason);
                continue;
            }
            let hook_id = task.request.hook_id;
            if let Some(destination) = &destination
                && let Some(until) = state.limits.paused_until(hook_id, now)
            {
                put_off(
                    &mut state,
                    &*self.clock,
                    &task,
                    destination,
                    until,
                    throttled_reason(),
                );
                continue;
            }
            let cap = state.limits.allowed(hook_id, self.cap_of(&task), now);
            state.queue.push(Queued { task, destination }, cap);
        }
        shared.notify(&state);
        state
    }

    /// Gives the tasks of `claimed` still in flight from an earlier claim (whose lease ran out)
    /// the new lease, and returns their ids. Called on the store thread right after the claim,
    /// before any completion, put-off or release can be written there: each of those reads its
    /// task's lease on that thread, so it is written under the lease the store holds, never
    /// ignored as late. Decided here, not when the claim is queued: by then the earlier
    /// attempt may be committed and gone from the in-flight set.
    fn renew_in_flight(&self, claimed: &Claimed, lease_until: std::time::Instant) -> HashSet<i64> {
        let mut state = lock(&self.shared.state);
        let mut renewed = HashSet::new();
        for task in &claimed.tasks {
            if let Some(in_flight) = state.in_flight.get_mut(&task.task_id) {
                in_flight.lease = task.lease;
                in_flight.lease_until = lease_until;
                renewed.insert(task.task_id);
            }
        }
        renewed
    }
}
