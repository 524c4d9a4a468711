//! [`MemoryOutbox`]: the [`Outbox`] contract kept in memory, for tests and as the reference a
//! store's author reads (feature `memory`).
//!
//! It follows the rules of djinn-hook-store's SQL implementation, in the same model: a pending
//! task is due at `due_at`; a claim leases it by setting a token and moving `due_at` to the
//! lease's end, so "due" also covers a lease that ran out, and a lease is *live* while it is
//! set and `due_at` is still ahead. A completion applies while its token is the task's current
//! one (set by the latest claim, cleared by whatever applies), whether or not the lease ran out.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use time::{OffsetDateTime, PrimitiveDateTime};

use crate::attempt::Attempt;
use crate::breaker::{BreakerOpening, ProbeTurn, SharedBreaker};
use crate::claim::{ClaimRequest, Claimed, Task};
use crate::completion::{Completion, Deferral, LimitNote, Outcome, PutOff, ReducedLimit};
use crate::destination::Destination;
use crate::lease::LeaseToken;
use crate::outbox::{Outbox, OutboxError};
use crate::release::Release;
use crate::request::DeliveryRequest;

/// An [`Outbox`] in memory behind one [`Mutex`]: add tasks with [`push`](Self::push), run a
/// worker over it (or call the trait's methods by hand), then check [`tasks`](Self::tasks),
/// [`attempts`](Self::attempts) and [`hook`](Self::hook).
///
/// Every call works at the current time (`OffsetDateTime::now_utc()`). Webhooks exist as soon
/// as a task names them; one disabled by a [`Decision`](crate::Decision) has its pending tasks
/// failed and none of its tasks claimed again.
///
/// ```
/// use std::time::Duration;
///
/// use djinn_hook_outbox::{
///     Attempt, AttemptOutcome, ClaimRequest, Completion, Decision, DeliveryRequest,
///     MemoryOutbox, Outbox, Outcome, TaskState,
/// };
/// use djinn_hook_payload::EventType;
/// use time::OffsetDateTime;
/// use uuid::Uuid;
///
/// let outbox = MemoryOutbox::new();
/// let task_id = outbox.push(DeliveryRequest::new(
///     1,
///     Uuid::new_v4(),
///     EventType::BuildFinished,
///     "http://127.0.0.1:9/hook",
///     br#"{"id":1}"#.to_vec(),
/// ));
///
/// let claimed = outbox.claim(&ClaimRequest::uncapped(10, Duration::from_secs(60)))?;
/// let task = &claimed.tasks[0];
/// assert_eq!((task.task_id, task.request.attempt), (task_id, 1));
///
/// // What a deliverer would report for a 2xx answer.
/// let mut attempt = Attempt::new(&task.request, OffsetDateTime::now_utc());
/// attempt.response_status = Some(204);
/// attempt.outcome = AttemptOutcome::Success;
/// let decision = Decision::new(Outcome::Delivered);
/// outbox.complete(&[Completion::new(task_id, task.lease, attempt, decision)])?;
///
/// assert_eq!(outbox.tasks()[0].state, TaskState::Delivered);
/// assert_eq!(outbox.attempts()[0].response_status, Some(204));
/// # Ok::<(), djinn_hook_outbox::OutboxError>(())
/// ```
#[derive(Debug, Default)]
pub struct MemoryOutbox {
    state: Mutex<State>,
}

/// Where a task stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskState {
    /// Waiting to be due, due, or leased.
    Pending,
    /// Its receiver accepted it ([`Outcome::Delivered`]).
    Delivered,
    /// Failed for good ([`Outcome::Failed`], or its webhook was disabled).
    Failed,
}

/// A task as [`MemoryOutbox::tasks`] shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoryTask {
    /// The id [`MemoryOutbox::push`] returned.
    pub task_id: i64,
    /// The request as pushed (its `attempt` is set afresh by each claim).
    pub request: DeliveryRequest,
    /// Where it stands.
    pub state: TaskState,
    /// Claims counted as attempts: each claim counts one, a put-off, release or throttled
    /// attempt takes its claim's back. The next claim's `request.attempt` is this plus one.
    pub attempts: u32,
    /// When a pending task is due; while it is leased, when the lease runs out.
    pub due_at: OffsetDateTime,
    /// The token of its current claim, if any (a completion with another one changes nothing).
    pub lease: Option<LeaseToken>,
}

/// A webhook as [`MemoryOutbox::hook`] shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoryHook {
    /// When its current run of failed attempts started (cleared by a delivery).
    pub failing_since: Option<OffsetDateTime>,
    /// Why it was disabled, if it was.
    pub disabled: Option<String>,
    /// Its own cap on deliveries at once ([`MemoryOutbox::set_max_in_flight`]).
    pub max_in_flight: Option<u32>,
    /// The put-off that last recorded its destination's open breaker, until the breaker closes
    /// or it delivers again.
    pub breaker: Option<PutOff>,
    /// Its adaptive limit as the worker last reported it ([`Outbox::limits_changed`]).
    pub reduced_limit: Option<ReducedLimit>,
}

#[derive(Debug, Default)]
struct State {
    /// By id, which is also push order.
    tasks: BTreeMap<i64, Stored>,
    hooks: BTreeMap<i64, MemoryHook>,
    /// Every attempt completed, in order, whether or not its lease was current.
    attempts: Vec<Attempt>,
    /// The webhook the previous claim served last: the next claim starts after it.
    cursor: i64,
    /// The shared circuit breakers, by destination.
    breakers: BTreeMap<Destination, SharedBreaker>,
}

#[derive(Debug)]
struct Stored {
    task: MemoryTask,
    pushed_at: OffsetDateTime,
}

impl MemoryOutbox {
    /// An empty outbox.
    pub fn new() -> MemoryOutbox {
        MemoryOutbox::default()
    }

    /// Adds a task for `request`, due now; returns its id (1, 2, ...).
    pub fn push(&self, request: DeliveryRequest) -> i64 {
        let mut state = self.state();
        let task_id = state.tasks.keys().next_back().map_or(1, |last| last + 1);
        let now = OffsetDateTime::now_utc();
        state.hooks.entry(request.hook_id).or_default();
        let task = MemoryTask {
            task_id,
            request,
            state: TaskState::Pending,
            attempts: 0,
            due_at: now,
            lease: None,
        };
        let stored = Stored {
            task,
            pushed_at: now,
        };
        state.tasks.insert(task_id, stored);
        task_id
    }

    /// Sets webhook `hook_id`'s own cap on deliveries at once (`None`: the worker's).
    pub fn set_max_in_flight(&self, hook_id: i64, max_in_flight: Option<u32>) {
        self.state().hooks.entry(hook_id).or_default().max_in_flight = max_in_flight;
    }

    /// Makes pending task `task_id` due now, as if the time of its retry had come: for a test
    /// that would otherwise wait out a retry scheduled for later. A leased or finished task is
    /// left as it is.
    pub fn make_due(&self, task_id: i64) {
        let mut state = self.state();
        if let Some(stored) = state.tasks.get_mut(&task_id)
            && stored.task.state == TaskState::Pending
            && stored.task.lease.is_none()
        {
            stored.task.due_at = OffsetDateTime::now_utc();
        }
    }

    /// Every task, by id.
    pub fn tasks(&self) -> Vec<MemoryTask> {
        self.state()
            .tasks
            .values()
            .map(|stored| stored.task.clone())
            .collect()
    }

    /// Every attempt completed so far, in the order completed (stale ones included).
    pub fn attempts(&self) -> Vec<Attempt> {
        self.state().attempts.clone()
    }

    /// Webhook `hook_id`, if a task or [`set_max_in_flight`](Self::set_max_in_flight) named it.
    pub fn hook(&self, hook_id: i64) -> Option<MemoryHook> {
        self.state().hooks.get(&hook_id).cloned()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every method leaves the state whole before anything that may panic, so a panic
        // elsewhere (say, a test's assertion) need not poison the outbox for the next caller.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    /// Live leases per webhook.
    fn live_leases(&self, now: OffsetDateTime) -> BTreeMap<i64, usize> {
        let mut leases = BTreeMap::new();
        for stored in self.tasks.values() {
            let task = &stored.task;
            if task.state == TaskState::Pending && task.lease.is_some() && task.due_at > now {
                *leases.entry(task.request.hook_id).or_default() += 1;
            }
        }
        leases
    }

    /// The id of webhook `hook_id`'s next due task not already in this claim (`token`): the
    /// oldest due first, then the lowest id.
    fn next_due(&self, hook_id: i64, now: OffsetDateTime, token: LeaseToken) -> Option<i64> {
        self.tasks
            .values()
            .map(|stored| &stored.task)
            .filter(|task| {
                task.request.hook_id == hook_id
                    && task.state == TaskState::Pending
                    && task.due_at <= now
                    && task.lease != Some(token)
            })
            .min_by_key(|task| (task.due_at, task.task_id))
            .map(|task| task.task_id)
    }

    /// Webhooks with pending tasks, those after the cursor first, then from the lowest id.
    fn hooks_in_turn(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self
            .tasks
            .values()
            .filter(|stored| stored.task.state == TaskState::Pending)
            .map(|stored| stored.task.request.hook_id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let split = ids.partition_point(|id| *id <= self.cursor);
        ids.rotate_left(split);
        ids
    }

    /// How many more leases webhook `hook_id` may hold.
    fn room(&self, hook_id: i64, claim: &ClaimRequest, live: usize) -> usize {
        let own = self.hooks.get(&hook_id).and_then(|hook| hook.max_in_flight);
        let cap = own.map_or(claim.max_in_flight, |n| {
            usize::try_from(n).unwrap_or(usize::MAX)
        });
        cap.saturating_mul(claim.leases_per_slot.max(1))
            .saturating_sub(live)
    }

    /// Leases task `task_id` under `token` until `until`; the task as handed out.
    fn lease(&mut self, task_id: i64, token: LeaseToken, until: OffsetDateTime) -> Task {
        let stored = self.tasks.get_mut(&task_id).expect("a due task exists");
        let hook = self.hooks.get(&stored.task.request.hook_id);
        let task = &mut stored.task;
        task.lease = Some(token);
        task.due_at = until;
        task.attempts = task.attempts.saturating_add(1);
        task.request.attempt = task.attempts;
        Task {
            task_id,
            lease: token,
            lease_until: until,
            event_created_at: stored.pushed_at,
            hook_failing_since: hook.and_then(|h| h.failing_since),
            max_in_flight: hook.and_then(|h| h.max_in_flight),
            request: task.request.clone(),
        }
    }

    /// The pending task `task_id` if `lease` is its current token.
    fn leased(&mut self, task_id: i64, lease: LeaseToken) -> Option<&mut MemoryTask> {
        self.tasks
            .get_mut(&task_id)
            .map(|stored| &mut stored.task)
            .filter(|task| task.state == TaskState::Pending && task.lease == Some(lease))
    }

    fn complete(&mut self, c: &Completion) {
        self.attempts.push(c.attempt.clone());
        let Some(stored) = self.tasks.get_mut(&c.task_id) else {
            return;
        };
        let task = &mut stored.task;
        let hook_id = task.request.hook_id;
        // The decision applies only under the current lease (a task failed meanwhile, its
        // webhook disabled, is still leased: a retry leaves it failed).
        if task.lease == Some(c.lease) {
            task.lease = None;
            match c.decision.outcome {
                Outcome::Delivered => task.state = TaskState::Delivered,
                Outcome::Failed => task.state = TaskState::Failed,
                Outcome::RetryAt(at) => task.due_at = at,
                Outcome::Throttled(at) => {
                    task.due_at = at;
                    // Throttled: the claim's attempt is given back.
                    task.attempts = task.attempts.saturating_sub(1);
                }
            }
        }
        // The webhook's health follows every attempt made, stale or not.
        let hook = self.hooks.entry(hook_id).or_default();
        if c.decision.outcome == Outcome::Delivered {
            hook.failing_since = None;
            hook.breaker = None;
        } else if hook.failing_since.is_none() {
            hook.failing_since = Some(c.attempt.created_at);
        }
        if let Some(reason) = &c.decision.disable_hook
            && hook.disabled.is_none()
        {
            hook.disabled = Some(reason.clone());
            for stored in self.tasks.values_mut() {
                let task = &mut stored.task;
                if task.request.hook_id == hook_id && task.state == TaskState::Pending {
                    task.state = TaskState::Failed;
                }
            }
        }
    }
}

impl Outbox for MemoryOutbox {
    /// Round-robin across webhooks, starting after the one the previous claim served last:
    /// each webhook left takes an equal share of what is left (at least one), its oldest due
    /// tasks first, within its room under the cap. All tasks of one claim share its token.
    fn claim(&self, claim: &ClaimRequest) -> Result<Claimed, OutboxError> {
        let mut state = self.state();
        let mut claimed = Claimed::default();
        if claim.limit == 0 {
            return Ok(claimed);
        }
        let now = OffsetDateTime::now_utc();
        let until = lease_until(now, claim.lease);
        let token = LeaseToken::new();
        let live = state.live_leases(now);

        // (webhook, leases it may still take) of the active webhooks with room.
        let mut candidates = Vec::new();
        for hook_id in state.hooks_in_turn() {
            if state
                .hooks
                .get(&hook_id)
                .is_some_and(|h| h.disabled.is_some())
            {
                continue;
            }
            let room = state.room(hook_id, claim, live.get(&hook_id).copied().unwrap_or(0));
            if room == 0 {
                claimed.held_back |= state.next_due(hook_id, now, token).is_some();
                continue;
            }
            candidates.push((hook_id, room));
        }

        let mut remaining = claim.limit;
        while remaining > 0 && !candidates.is_empty() {
            let share = (remaining / candidates.len()).max(1);
            let mut keep = Vec::with_capacity(candidates.len());
            for (hook_id, mut room) in candidates {
                let want = share.min(room).min(remaining);
                let mut got = 0;
                while got < want {
                    let Some(task_id) = state.next_due(hook_id, now, token) else {
                        break;
                    };
                    let task = state.lease(task_id, token, until);
                    claimed.tasks.push(task);
                    state.cursor = hook_id;
                    got += 1;
                }
                room -= got;
                remaining -= got;
                if got < want {
                    continue; // nothing more due
                }
                if room == 0 {
                    claimed.held_back |= state.next_due(hook_id, now, token).is_some();
                    continue;
                }
                keep.push((hook_id, room));
            }
            candidates = keep;
        }
        Ok(claimed)
    }

    /// Records every attempt; applies each decision under its current lease; then the
    /// webhook's health: a delivery clears `failing_since`, any other outcome sets it if unset,
    /// and `disable_hook` disables it and fails its pending tasks. Never fails.
    fn complete(&self, done: &[Completion]) -> Result<(), OutboxError> {
        let mut state = self.state();
        for completion in done {
            state.complete(completion);
        }
        Ok(())
    }

    fn put_off(&self, put_off: &[PutOff]) -> Result<(), OutboxError> {
        let mut state = self.state();
        for p in put_off {
            let Some(task) = state.leased(p.task_id, p.lease) else {
                continue;
            };
            task.lease = None;
            task.due_at = p.until;
            task.attempts = task.attempts.saturating_sub(1);
            let hook_id = task.request.hook_id;
            state.hooks.entry(hook_id).or_default().breaker = Some(p.clone());
        }
        Ok(())
    }

    fn breaker_closed(&self, destination: &Destination) -> Result<(), OutboxError> {
        let mut state = self.state();
        state.breakers.remove(destination);
        for hook in state.hooks.values_mut() {
            if hook
                .breaker
                .as_ref()
                .is_some_and(|p| &p.destination == destination)
            {
                hook.breaker = None;
            }
        }
        Ok(())
    }

    /// A first opening is recorded only where no breaker is; an opening after a probe
    /// replaces the breaker (its probe ended).
    fn breaker_opened(&self, openings: &[BreakerOpening]) -> Result<(), OutboxError> {
        let mut state = self.state();
        for o in openings {
            if !o.after_probe && state.breakers.contains_key(&o.destination) {
                continue;
            }
            state
                .breakers
                .insert(o.destination.clone(), SharedBreaker::from(o));
        }
        Ok(())
    }

    fn open_breakers(&self) -> Result<Vec<SharedBreaker>, OutboxError> {
        Ok(self.state().breakers.values().cloned().collect())
    }

    /// Granted when the breaker's period has ended and no probe is out (its `probe_until`
    /// unset or past), which then becomes `until`; held otherwise; closed without a breaker.
    fn take_probe(
        &self,
        destination: &Destination,
        until: OffsetDateTime,
    ) -> Result<ProbeTurn, OutboxError> {
        let now = OffsetDateTime::now_utc();
        let mut state = self.state();
        let Some(breaker) = state.breakers.get_mut(destination) else {
            return Ok(ProbeTurn::Closed);
        };
        if breaker.until > now || breaker.probing(now) {
            return Ok(ProbeTurn::Held(breaker.clone()));
        }
        breaker.probe_until = Some(until);
        Ok(ProbeTurn::Granted)
    }

    fn limits_changed(&self, notes: &[LimitNote]) -> Result<(), OutboxError> {
        let mut state = self.state();
        for note in notes {
            state.hooks.entry(note.hook_id).or_default().reduced_limit = note.reduced.clone();
        }
        Ok(())
    }

    /// Due tasks (not leased, or their lease ran out) that would be due before `until` are
    /// due at `until`; a lease that ran out is dropped, but its claim stays counted (an attempt
    /// may have been made under it).
    fn defer(&self, deferrals: &[Deferral]) -> Result<(), OutboxError> {
        let now = OffsetDateTime::now_utc();
        let mut state = self.state();
        for d in deferrals {
            for stored in state.tasks.values_mut() {
                let task = &mut stored.task;
                let free = task.lease.is_none() || task.due_at <= now;
                if task.request.hook_id == d.hook_id
                    && task.state == TaskState::Pending
                    && task.due_at < d.until
                    && free
                {
                    task.due_at = d.until;
                    task.lease = None;
                }
            }
        }
        Ok(())
    }

    fn release(&self, tasks: &[Release]) -> Result<(), OutboxError> {
        let now = OffsetDateTime::now_utc();
        let mut state = self.state();
        for r in tasks {
            if let Some(task) = state.leased(r.task_id, r.lease) {
                task.lease = None;
                task.due_at = now;
                task.attempts = task.attempts.saturating_sub(1);
            }
        }
        Ok(())
    }
}

/// When a lease of `lease` taken at `now` runs out; a lease too long to represent lasts until
/// the end of representable time ("until further notice").
fn lease_until(now: OffsetDateTime, lease: Duration) -> OffsetDateTime {
    time::Duration::try_from(lease)
        .ok()
        .and_then(|lease| now.checked_add(lease))
        .unwrap_or(PrimitiveDateTime::MAX.assume_utc())
}
