//! The worker's scheduling as a plain state machine: which phase a run is in, whether a claim
//! or a commit runs, why the worker waits before claiming again, and, from those and a few
//! facts about its queue, what a delivery thread does next ([`Schedule::next`]).
//!
//! No threads, locks, sockets or clocks here: events come in as method calls ([`claim_ended`],
//! [`commit_ended`], [`stop_requested`], [`woken`], ...), the time as a `now` argument, and
//! the answer is a [`Step`] that the delivery threads (`pool.rs`) carry out.
//!
//! [`claim_ended`]: Schedule::claim_ended
//! [`commit_ended`]: Schedule::commit_ended
//! [`stop_requested`]: Schedule::stop_requested
//! [`woken`]: Schedule::woken

use std::time::{Duration, Instant};

/// Where a worker's run is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum Phase {
    /// No run in progress (runs of one worker do not overlap).
    #[default]
    Off,
    /// Claiming, delivering and committing.
    Running,
    /// Stop was asked: claim no more, hand the queue back, finish the deliveries under way.
    Stopping,
    /// Nothing is left to do (`run_until_idle` found nothing), or a thread unwound: the
    /// threads return once what they hold is written.
    Finished,
}

/// Whether a claim may run, runs, or waits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum Claims {
    /// The next thread that finds the queue low claims.
    #[default]
    Open,
    /// A thread is claiming (claims are exclusive).
    Running,
    /// The last claim found nothing due (or fewer than asked for, or failed): wait.
    Waiting(Idle),
}

/// Why and until when the worker does not claim (after a claim found nothing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Idle {
    /// Claim again at this time at the latest.
    pub(super) until: Instant,
    /// Commits seen before that claim (`None`: a failed claim, retried only after the poll
    /// interval or a wake-up).
    commits: Option<u64>,
    /// Wake-ups seen before that claim.
    wakes: u64,
    /// That claim left due tasks behind because their webhooks were at their caps: a commit
    /// (which ends leases) ends the wait.
    held_back: bool,
}

/// What a claim brought.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ClaimResult {
    /// The claim failed.
    Failed,
    /// It brought as many tasks as asked for: more may be due.
    Full,
    /// It brought fewer than asked for (maybe none), leaving due tasks behind only if
    /// `held_back` (their webhooks at their caps).
    Short {
        /// It brought nothing.
        empty: bool,
        /// Due tasks were left behind because their webhooks were at their caps.
        held_back: bool,
    },
}

/// What was seen when a claim started, to compare with when it ends: commits and wake-ups
/// that land while it runs are never missed.
#[derive(Clone, Copy, Debug)]
pub(super) struct ClaimTicket {
    commits: u64,
    wakes: u64,
}

/// What the state machine needs to know of the worker's queue and deliveries.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Facts {
    /// No task is queued.
    pub(super) queue_empty: bool,
    /// Put-offs, breaker changes, limits, deferrals or releases wait to be written.
    pub(super) unwritten: bool,
    /// The engine ended deliveries that wait to be recorded.
    pub(super) ended: bool,
    /// Deliveries under way in the engine.
    pub(super) evented: usize,
    /// Completions wait to be committed.
    pub(super) pending: bool,
    /// Few tasks are ready (at or below the low-water mark) and there is room in flight (in
    /// tasks and bytes) for a claim.
    pub(super) room_to_claim: bool,
}

/// What a delivery thread does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// Hand the queued tasks back to the outbox (stopping).
    HandBack,
    /// Write what waits to be written, then commit the pending completions.
    Commit,
    /// Record a delivery the engine ended.
    RecordEnded,
    /// Claim a batch.
    Claim,
    /// Take a task from the queue and deliver it; if none may be taken, ask
    /// [`Schedule::when_nothing_to_deliver`].
    Deliver,
    /// Wait for a change, until the time given if any.
    Wait(Option<Instant>),
    /// The run is over for this thread.
    Return,
}

/// A worker's schedule: the phase of its run, its claims and commits, and the counts of
/// commits and wake-ups that end a wait before the poll interval does.
#[derive(Debug, Default)]
pub(super) struct Schedule {
    phase: Phase,
    /// The run ends once nothing is due and nothing is in flight.
    until_idle: bool,
    claims: Claims,
    /// A thread is committing (one at a time).
    committing: bool,
    /// Batches committed (or abandoned) in this run.
    commits: u64,
    /// Times the worker was woken (kept across runs).
    wakes: u64,
}

impl Schedule {
    /// Whether a run is in progress.
    pub(super) fn is_running(&self) -> bool {
        self.phase != Phase::Off
    }

    /// The phase of the run.
    pub(super) fn phase(&self) -> Phase {
        self.phase
    }

    /// A run starts (`until_idle`: it ends once nothing is due and nothing is in flight).
    pub(super) fn start(&mut self, until_idle: bool) {
        *self = Schedule {
            phase: Phase::Running,
            until_idle,
            wakes: self.wakes,
            ..Schedule::default()
        };
    }

    /// The run ended (all its threads returned).
    pub(super) fn end(&mut self) {
        self.phase = Phase::Off;
    }

    /// Stop was asked; `true` if this changed the phase (the waiting threads are to be woken).
    pub(super) fn stop_requested(&mut self) -> bool {
        let running = self.phase == Phase::Running;
        if running {
            self.phase = Phase::Stopping;
        }
        running
    }

    /// A thread unwound: every thread returns once what it holds is written.
    pub(super) fn abort(&mut self) {
        self.phase = Phase::Finished;
    }

    /// A waker woke the worker: a waiting claim runs at once.
    pub(super) fn woken(&mut self) {
        self.wakes += 1;
    }

    /// Times the worker was woken, over all its runs.
    #[cfg(test)]
    fn wakes(&self) -> u64 {
        self.wakes
    }

    /// Whether a commit runs.
    pub(super) fn committing(&self) -> bool {
        self.committing
    }

    /// What a thread does next, given `facts` at `now`. Writing what waits comes first, then
    /// recording ended deliveries; a thread returns only once nothing it could do is left.
    pub(super) fn next(&self, facts: &Facts, now: Instant) -> Step {
        let winding_down = matches!(self.phase, Phase::Stopping | Phase::Finished);
        if winding_down && !facts.queue_empty {
            return Step::HandBack;
        }
        if facts.unwritten && !self.committing {
            return Step::Commit;
        }
        if facts.ended {
            return Step::RecordEnded;
        }
        let drained = facts.queue_empty && !facts.unwritten && facts.evented == 0;
        if self.phase == Phase::Finished || (self.phase == Phase::Stopping && drained) {
            return Step::Return;
        }
        if self.may_claim(facts, now) {
            return Step::Claim;
        }
        Step::Deliver
    }

    /// What a thread does when [`Step::Deliver`] found no task it may take: commit what is
    /// pending if no commit runs (left by a commit that ended while others were delivering;
    /// a hanging receiver's attempt may take its whole timeout, and the leases of these
    /// completions may be what keeps a webhook at its cap), else wait for a change or for
    /// the end of the poll interval.
    pub(super) fn when_nothing_to_deliver(&self, facts: &Facts) -> Step {
        if facts.pending && !self.committing {
            return Step::Commit;
        }
        match self.claims {
            Claims::Waiting(idle) if self.phase == Phase::Running => Step::Wait(Some(idle.until)),
            _ => Step::Wait(None),
        }
    }

    /// Whether a thread should claim now: the run claims, few tasks are ready and there is
    /// room in flight, no other claim runs, and the worker is not waiting out a poll interval.
    fn may_claim(&self, facts: &Facts, now: Instant) -> bool {
        if self.phase != Phase::Running || !facts.room_to_claim {
            return false;
        }
        match self.claims {
            Claims::Open => true,
            Claims::Running => false,
            // Woken, or (until idle, or when caps held tasks back) a commit landed since that
            // claim: it may have made a retry due, ended leases, or left nothing in flight.
            Claims::Waiting(idle) => {
                self.wakes != idle.wakes
                    || ((self.until_idle || idle.held_back)
                        && idle.commits.is_some_and(|seen| seen != self.commits))
                    || now >= idle.until
            }
        }
    }

    /// A thread starts a claim.
    pub(super) fn claim_started(&mut self) -> ClaimTicket {
        self.claims = Claims::Running;
        ClaimTicket {
            commits: self.commits,
            wakes: self.wakes,
        }
    }

    /// A claim ended with `result` at `now`; `nothing_in_flight` if nothing was in flight when
    /// it started. Decides when the next claim may run, or that a `run_until_idle` is done.
    pub(super) fn claim_ended(
        &mut self,
        ticket: ClaimTicket,
        result: ClaimResult,
        nothing_in_flight: bool,
        now: Instant,
        poll_interval: Duration,
    ) {
        let until = now + poll_interval;
        let idle_ends_run = self.until_idle && nothing_in_flight && self.phase == Phase::Running;
        self.claims = match result {
            ClaimResult::Full => Claims::Open,
            ClaimResult::Failed | ClaimResult::Short { empty: true, .. } if idle_ends_run => {
                self.phase = Phase::Finished;
                Claims::Open
            }
            // Retried after the poll interval, even if commits land meanwhile.
            ClaimResult::Failed => Claims::Waiting(Idle {
                until,
                commits: None,
                wakes: ticket.wakes,
                held_back: false,
            }),
            // The store had no more due (or none it would give, its webhooks at their caps):
            // claim again only after the poll interval (or a wake-up, or, until idle or when
            // caps held tasks back, a commit), not each time the queue runs low.
            ClaimResult::Short { held_back, .. } => Claims::Waiting(Idle {
                until,
                commits: Some(ticket.commits),
                wakes: ticket.wakes,
                held_back,
            }),
        };
    }

    /// A thread starts writing or committing.
    pub(super) fn commit_started(&mut self) {
        self.committing = true;
    }

    /// A write or commit ended; `batch` if it was a batch of completions (committed or
    /// abandoned), which may end a claim's wait.
    pub(super) fn commit_ended(&mut self, batch: bool) {
        self.committing = false;
        if batch {
            self.commits += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLL: Duration = Duration::from_secs(10);

    /// A queue with room for a claim, nothing else going on.
    fn low_queue() -> Facts {
        Facts {
            queue_empty: true,
            room_to_claim: true,
            ..Facts::default()
        }
    }

    fn running(until_idle: bool) -> Schedule {
        let mut schedule = Schedule::default();
        schedule.start(until_idle);
        schedule
    }

    /// Runs one claim with `result` at `now`.
    fn claim(schedule: &mut Schedule, result: ClaimResult, nothing_in_flight: bool, now: Instant) {
        assert_eq!(schedule.next(&low_queue(), now), Step::Claim);
        let ticket = schedule.claim_started();
        schedule.claim_ended(ticket, result, nothing_in_flight, now, POLL);
    }

    const EMPTY: ClaimResult = ClaimResult::Short {
        empty: true,
        held_back: false,
    };

    #[test]
    fn a_low_queue_is_refilled_by_one_claim_at_a_time() {
        let t0 = Instant::now();
        let mut schedule = running(false);
        assert_eq!(schedule.next(&low_queue(), t0), Step::Claim);
        let ticket = schedule.claim_started();
        assert_eq!(
            schedule.next(&low_queue(), t0),
            Step::Deliver,
            "claims are exclusive"
        );
        schedule.claim_ended(ticket, ClaimResult::Full, false, t0, POLL);
        assert_eq!(
            schedule.next(&low_queue(), t0),
            Step::Claim,
            "a full claim: more due"
        );
        let full_queue = Facts {
            room_to_claim: false,
            queue_empty: false,
            ..Facts::default()
        };
        assert_eq!(schedule.next(&full_queue, t0), Step::Deliver);
    }

    #[test]
    fn a_short_claim_waits_out_the_poll_interval() {
        let t0 = Instant::now();
        let mut schedule = running(false);
        claim(&mut schedule, EMPTY, true, t0);
        assert_eq!(
            schedule.phase(),
            Phase::Running,
            "`run` never finishes by itself"
        );
        let later = t0 + POLL - Duration::from_millis(1);
        assert_eq!(schedule.next(&low_queue(), later), Step::Deliver);
        assert_eq!(
            schedule.when_nothing_to_deliver(&low_queue()),
            Step::Wait(Some(t0 + POLL))
        );
        // A commit ends no wait of `run` when caps held nothing back.
        schedule.commit_started();
        schedule.commit_ended(true);
        assert_eq!(schedule.next(&low_queue(), later), Step::Deliver);
        assert_eq!(schedule.next(&low_queue(), t0 + POLL), Step::Claim);
    }

    #[test]
    fn a_wake_up_ends_the_wait_even_one_that_came_during_the_claim() {
        let t0 = Instant::now();
        let mut schedule = running(false);
        claim(&mut schedule, EMPTY, true, t0);
        schedule.woken();
        assert_eq!(schedule.next(&low_queue(), t0), Step::Claim);

        let ticket = schedule.claim_started();
        schedule.woken(); // while the claim ran: it may have missed what the wake-up was for
        schedule.claim_ended(ticket, EMPTY, true, t0, POLL);
        assert_eq!(schedule.next(&low_queue(), t0), Step::Claim);
        assert_eq!(schedule.wakes(), 2);
    }

    #[test]
    fn a_commit_ends_the_wait_when_caps_held_tasks_back() {
        let t0 = Instant::now();
        let mut schedule = running(false);
        let held_back = ClaimResult::Short {
            empty: false,
            held_back: true,
        };
        claim(&mut schedule, held_back, false, t0);
        assert_eq!(schedule.next(&low_queue(), t0), Step::Deliver);
        schedule.commit_started();
        schedule.commit_ended(false); // writing put-offs is no commit of completions
        assert_eq!(schedule.next(&low_queue(), t0), Step::Deliver);
        schedule.commit_started();
        schedule.commit_ended(true);
        assert_eq!(schedule.next(&low_queue(), t0), Step::Claim);
    }

    #[test]
    fn until_idle_finishes_on_an_empty_claim_with_nothing_in_flight() {
        let t0 = Instant::now();
        let mut schedule = running(true);
        // Something in flight: the run goes on, and the commit of it makes the worker claim.
        claim(&mut schedule, EMPTY, false, t0);
        assert_eq!(schedule.phase(), Phase::Running);
        schedule.commit_started();
        schedule.commit_ended(true);
        claim(&mut schedule, EMPTY, true, t0);
        assert_eq!(schedule.phase(), Phase::Finished);
        assert_eq!(schedule.next(&low_queue(), t0), Step::Return);
    }

    #[test]
    fn a_failed_claim_is_retried_after_the_poll_interval_or_a_wake_up_only() {
        let t0 = Instant::now();
        let mut schedule = running(true);
        claim(&mut schedule, ClaimResult::Failed, false, t0);
        schedule.commit_started();
        schedule.commit_ended(true);
        assert_eq!(
            schedule.next(&low_queue(), t0),
            Step::Deliver,
            "commits do not count"
        );
        assert_eq!(schedule.next(&low_queue(), t0 + POLL), Step::Claim);
        schedule.woken();
        assert_eq!(schedule.next(&low_queue(), t0), Step::Claim);
        // With nothing in flight, `run_until_idle` gives up.
        claim(&mut schedule, ClaimResult::Failed, true, t0);
        assert_eq!(schedule.phase(), Phase::Finished);
    }

    #[test]
    fn stopping_hands_the_queue_back_and_returns_once_drained() {
        let t0 = Instant::now();
        let mut schedule = running(false);
        assert!(schedule.stop_requested());
        assert!(!schedule.stop_requested(), "once");
        let queued = Facts {
            queue_empty: false,
            room_to_claim: true,
            ..Facts::default()
        };
        assert_eq!(schedule.next(&queued, t0), Step::HandBack);
        let released = Facts {
            unwritten: true,
            ..low_queue()
        };
        assert_eq!(schedule.next(&released, t0), Step::Commit);
        schedule.commit_started();
        assert_eq!(
            schedule.next(&released, t0),
            Step::Deliver,
            "no claim, one commit"
        );
        schedule.commit_ended(false);
        let engine_busy = Facts {
            evented: 1,
            ..low_queue()
        };
        assert_eq!(schedule.next(&engine_busy, t0), Step::Deliver);
        assert_eq!(
            schedule.when_nothing_to_deliver(&engine_busy),
            Step::Wait(None)
        );
        let ended = Facts {
            ended: true,
            ..engine_busy
        };
        assert_eq!(schedule.next(&ended, t0), Step::RecordEnded);
        assert_eq!(schedule.next(&low_queue(), t0), Step::Return);
    }

    #[test]
    fn pending_completions_are_committed_by_an_idle_thread() {
        let t0 = Instant::now();
        let mut schedule = running(false);
        let pending = Facts {
            pending: true,
            ..Facts::default()
        };
        assert_eq!(schedule.when_nothing_to_deliver(&pending), Step::Commit);
        schedule.commit_started();
        assert_eq!(schedule.when_nothing_to_deliver(&pending), Step::Wait(None));
        assert_eq!(schedule.next(&pending, t0), Step::Deliver);
    }

    #[test]
    fn an_aborted_run_returns_after_writing_what_it_holds() {
        let t0 = Instant::now();
        let mut schedule = running(false);
        schedule.abort();
        let unwritten = Facts {
            unwritten: true,
            ..low_queue()
        };
        assert_eq!(schedule.next(&unwritten, t0), Step::Commit);
        assert_eq!(schedule.next(&low_queue(), t0), Step::Return);
        assert!(!schedule.stop_requested());
        schedule.end();
        assert!(!schedule.is_running());
    }

    #[test]
    fn wake_ups_are_kept_across_runs() {
        let mut schedule = running(false);
        schedule.woken();
        schedule.end();
        schedule.start(true);
        assert_eq!(schedule.wakes(), 1);
        assert!(schedule.is_running());
    }
}
