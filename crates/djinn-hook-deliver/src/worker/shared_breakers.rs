//! The worker's side of breakers shared through the outbox: asking for a destination's probe
//! (granted to one process of all those on the store) and adopting the breakers other
//! processes opened, read after claims.

use std::sync::MutexGuard;
use std::time::{Duration, Instant};

use djinn_hook_outbox::{Claimed, Destination, Outbox, OutboxError, ProbeTurn};
use time::OffsetDateTime;

use super::Worker;
use super::breaker::Gate;
use super::pool::Run;
use super::state::{State, lock};

/// How often, at most, claims are followed by a read of the shared breakers. Only claims that
/// got tasks are: a process learns of a breaker another opened before it sends any of that
/// destination's tasks claimed later than this after the opening. A claim's cost is kept
/// (one small read per a quarter second at most, none while idle).
const READ_EVERY: Duration = Duration::from_millis(250);

impl<O: Outbox> Worker<'_, O> {
    /// The breaker's gate for a task of `destination`; when it would be the probe, the outbox
    /// is asked (on the store thread, the lock released meanwhile) whether this process sends
    /// it. If asking fails, the probe goes out (the breaker then works per process).
    pub(super) fn breaker_gate<'env>(
        &'env self,
        mut state: MutexGuard<'env, State>,
        run: &Run<'_, 'env>,
        destination: &Destination,
        task_id: i64,
    ) -> (MutexGuard<'env, State>, Gate) {
        let gate = state.breakers.gate(destination, task_id, self.clock.now());
        if gate != Gate::Probe {
            return (state, gate);
        }
        drop(state);
        // The probe is this process's for as long as a claim would be: a process that dies
        // with it out frees it then.
        let until = self.clock.now_utc() + self.config.lease;
        let asked = destination.clone();
        let turn = run
            .store
            .call(move || self.outbox.take_probe(&asked, until));
        let mut state = lock(&self.shared.state);
        let gate = match turn {
            Ok(ProbeTurn::Granted) | Err(_) => Gate::Deliver,
            Ok(ProbeTurn::Held(shared)) => state.breakers.probe_refused(
                destination,
                Some(&shared),
                self.clock.now(),
                self.clock.now_utc(),
            ),
            Ok(ProbeTurn::Closed) => state.breakers.probe_refused(
                destination,
                None,
                self.clock.now(),
                self.clock.now_utc(),
            ),
        };
        (state, gate)
    }

    /// Claims (on the store thread), then reads the shared breakers if the claim got tasks and
    /// the last read is older than [`READ_EVERY`] (`last_read`), so they are held as the
    /// breakers say before any goes out.
    pub(super) fn claim_and_read_breakers(
        &self,
        request: &djinn_hook_outbox::ClaimRequest,
        last_read: Option<Instant>,
    ) -> (Result<Claimed, OutboxError>, Option<ReadBreakers>) {
        let claimed = self.outbox.claim(request);
        let now = self.clock.now();
        let due = last_read.is_none_or(|at| now.saturating_duration_since(at) >= READ_EVERY);
        let read = (due && claimed.as_ref().is_ok_and(|c| !c.tasks.is_empty())).then(|| {
            let at = self.clock.now();
            self.outbox.open_breakers().map(|shared| ReadBreakers {
                shared,
                at,
                wall: self.clock.now_utc(),
            })
        });
        (claimed, read.and_then(Result::ok))
    }
}

/// The shared breakers as read at `at` (`wall` on the clock).
pub(super) struct ReadBreakers {
    shared: Vec<djinn_hook_outbox::SharedBreaker>,
    at: Instant,
    wall: OffsetDateTime,
}

impl ReadBreakers {
    /// Adopts them into the worker's table.
    pub(super) fn adopt(self, state: &mut State) {
        state.breakers.adopt(&self.shared, self.at, self.wall);
        state.breakers_read = Some(self.at);
    }
}
