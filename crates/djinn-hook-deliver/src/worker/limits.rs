//! Adaptive limits per webhook: how many of a webhook's deliveries may be under way at once,
//! learnt from how its receiver answers (additive increase, multiplicative decrease, as TCP
//! and adaptive concurrency limiters do), and its pause after a `429` or `503`.
//!
//! - An answer well within the attempt's timeout (under half of it) raises the limit by one,
//!   up to the webhook's cap: a receiver that answers, even slowly, gets what its latency
//!   allows.
//! - A timeout (which is what a receiver that never answers, or trickles its answer, costs),
//!   or an answer that took more than half the timeout, halves it (never below one).
//! - A `429 Too Many Requests` or `503 Service Unavailable` halves it and pauses the webhook:
//!   for its `Retry-After` (at most [`MAX_PAUSE`]), else for 1 s doubling with each throttled
//!   answer in a row (up to [`MAX_PAUSE`]). Nothing is sent to it during the pause.
//! - Connection failures (refused, TLS, blocked) change nothing: the circuit breaker deals
//!   with receivers that are down, and they hold no thread.
//!
//! A webhook whose last attempt took longer than the worker's `SLOW` (100 ms) is *slow*: its next
//! delivery counts as waiting from the start, so the worker's pool adds a thread for it at
//! once instead of after the fact. This is a state machine without I/O or clock of its own:
//! the worker passes `now` in.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use djinn_hook_outbox::{Attempt, AttemptOutcome, LimitNote, ReducedLimit};
use time::OffsetDateTime;

use crate::retry::parse_retry_after;

/// The longest pause a throttling receiver gets, whatever its `Retry-After` says.
pub const MAX_PAUSE: Duration = Duration::from_secs(600);

/// The first pause after a `429` or `503` without `Retry-After`.
const FIRST_PAUSE: Duration = Duration::from_secs(1);

/// What an attempt says about its receiver's capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Signal {
    /// It answered (any status but 429 and 503): quickly (within half the timeout) or not.
    Answered { quick: bool },
    /// The attempt timed out: it never answered, or too slowly.
    TimedOut,
    /// It answered 429 or 503, with this `Retry-After` if any.
    Throttled(Option<Duration>),
    /// Nothing about capacity (a refused connection, TLS, a blocked address, a bad URL).
    Neutral,
}

impl Signal {
    /// What `attempt`, made under `timeout`, says.
    pub(crate) fn of(attempt: &Attempt, timeout: Duration, now: OffsetDateTime) -> Signal {
        match attempt.response_status {
            Some(429 | 503) => Signal::Throttled(
                attempt
                    .response_header("retry-after")
                    .and_then(|value| parse_retry_after(value, now)),
            ),
            Some(_) => Signal::Answered {
                quick: attempt.duration < timeout / 2,
            },
            None if attempt.outcome == AttemptOutcome::Timeout => Signal::TimedOut,
            None => Signal::Neutral,
        }
    }
}

/// Why a webhook's limit is below its cap, or it is paused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LimitReason {
    /// Attempts timed out (a receiver that does not answer, or trickles its answer).
    Timeouts,
    /// Answers took more than half the attempt's timeout.
    SlowAnswers,
    /// The receiver answered 429 or 503.
    Throttled,
}

impl LimitReason {
    /// `timeouts`, `slow answers` or `throttled`.
    pub const fn as_str(self) -> &'static str {
        match self {
            LimitReason::Timeouts => "timeouts",
            LimitReason::SlowAnswers => "slow answers",
            LimitReason::Throttled => "throttled",
        }
    }
}

/// One webhook's adaptive limit, as [`LimitMonitor`](crate::LimitMonitor) reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LimitStatus {
    /// The webhook.
    pub hook_id: i64,
    /// Deliveries it may have under way at once now (0 while paused).
    pub limit: usize,
    /// Its cap (its own `max_in_flight`, else the worker's): where the limit grows back to.
    pub cap: usize,
    /// Its deliveries under way now.
    pub in_flight: usize,
    /// Why the limit is below the cap, or the webhook paused; `None` when it is not.
    pub reason: Option<LimitReason>,
    /// How long its pause still lasts, while paused.
    pub paused_for: Option<Duration>,
}

#[derive(Debug)]
struct Limit {
    limit: usize,
    cap: usize,
    /// Its last attempt took longer than `SLOW` (or timed out).
    slow: bool,
    reason: Option<LimitReason>,
    paused_until: Option<Instant>,
    /// Throttled answers in a row (for the pause without `Retry-After`).
    throttled: u32,
}

/// What changed for a webhook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Change {
    /// Its new limit (0 while paused).
    pub(crate) limit: usize,
    /// The pause just started, until then.
    pub(crate) paused_until: Option<Instant>,
}

/// The worker's adaptive limits, by webhook. A webhook at its cap, not slow and not paused
/// has no entry.
#[derive(Debug, Default)]
pub(crate) struct Limits {
    table: HashMap<i64, Limit>,
    /// Webhooks whose last attempt got an answer quickly (within the worker's `SLOW`).
    fast: HashSet<i64>,
}

impl Limits {
    /// Deliveries of `hook_id` (capped at `cap`) that may be under way at once now.
    pub(crate) fn allowed(&self, hook_id: i64, cap: usize, now: Instant) -> usize {
        match self.table.get(&hook_id) {
            None => cap,
            Some(limit) if limit.paused_until.is_some_and(|until| now < until) => 0,
            Some(limit) => limit.limit.min(cap),
        }
    }

    /// Until when `hook_id` is paused, if it is.
    pub(crate) fn paused_until(&self, hook_id: i64, now: Instant) -> Option<Instant> {
        self.table
            .get(&hook_id)?
            .paused_until
            .filter(|&until| now < until)
    }

    /// Whether the last attempt to `hook_id` got an answer quickly.
    pub(crate) fn fast(&self, hook_id: i64) -> bool {
        self.fast.contains(&hook_id)
    }

    /// Whether the last attempt to `hook_id` was slow (so its next delivery will likely be).
    pub(crate) fn slow(&self, hook_id: i64) -> bool {
        self.table.get(&hook_id).is_some_and(|limit| limit.slow)
    }

    /// Notes that a delivery to `hook_id` under way is slow (its next ones will likely be).
    pub(crate) fn mark_slow(&mut self, hook_id: i64) {
        self.fast.remove(&hook_id);
        if let Some(limit) = self.table.get_mut(&hook_id) {
            limit.slow = true;
            return;
        }
        self.table.insert(
            hook_id,
            Limit {
                // Its cap is not known here: set at its next attempt's record.
                limit: usize::MAX,
                cap: usize::MAX,
                slow: true,
                reason: None,
                paused_until: None,
                throttled: 0,
            },
        );
    }

    /// Records an attempt to `hook_id` (capped at `cap`) that took `took` and says `signal`;
    /// returns the new limit if it changed.
    pub(crate) fn record(
        &mut self,
        hook_id: i64,
        cap: usize,
        signal: Signal,
        slow: bool,
        now: Instant,
    ) -> Option<Change> {
        let cap = cap.max(1);
        if !slow && matches!(signal, Signal::Answered { .. }) {
            self.fast.insert(hook_id);
        } else {
            self.fast.remove(&hook_id);
        }
        let entry = self.table.entry(hook_id).or_insert(Limit {
            limit: cap,
            cap,
            slow: false,
            reason: None,
            paused_until: None,
            throttled: 0,
        });
        let before = (entry.limit.min(cap), entry.paused_until);
        entry.cap = cap;
        entry.limit = entry.limit.min(cap);
        entry.slow = slow || signal == Signal::TimedOut;
        if entry.paused_until.is_some_and(|until| now >= until) {
            entry.paused_until = None;
        }
        let decrease = |entry: &mut Limit, reason| {
            entry.limit = (entry.limit / 2).max(1);
            entry.reason = Some(reason);
        };
        match signal {
            Signal::Answered { quick: true } => {
                entry.throttled = 0;
                entry.limit = (entry.limit + 1).min(cap);
                if entry.limit == cap && entry.paused_until.is_none() {
                    entry.reason = None;
                }
            }
            Signal::Answered { quick: false } => {
                entry.throttled = 0;
                decrease(entry, LimitReason::SlowAnswers);
            }
            Signal::TimedOut => decrease(entry, LimitReason::Timeouts),
            Signal::Throttled(asked) => {
                decrease(entry, LimitReason::Throttled);
                let doubling = FIRST_PAUSE.saturating_mul(1 << entry.throttled.min(16));
                entry.throttled = entry.throttled.saturating_add(1);
                let pause = asked.unwrap_or(doubling).min(MAX_PAUSE);
                let until = now + pause;
                // An answer of an attempt sent before the pause does not shorten it.
                entry.paused_until = Some(entry.paused_until.map_or(until, |u| u.max(until)));
            }
            Signal::Neutral => {}
        }
        let after = (entry.limit.min(cap), entry.paused_until);
        if entry.limit >= cap
            && !entry.slow
            && entry.reason.is_none()
            && entry.paused_until.is_none()
        {
            self.table.remove(&hook_id);
        }
        (after != before).then_some(Change {
            limit: if after.1.is_some() { 0 } else { after.0 },
            paused_until: after.1.filter(|&until| Some(until) != before.1),
        })
    }

    /// What an outbox is told of `hook_id`'s limit now: below its cap or paused, and why; or
    /// nothing to show.
    pub(crate) fn note(&self, hook_id: i64, now: Instant) -> LimitNote {
        let reduced = self.table.get(&hook_id).and_then(|limit| {
            let paused = limit.paused_until.filter(|&until| now < until);
            if paused.is_none() && limit.limit >= limit.cap {
                return None;
            }
            Some(ReducedLimit {
                limit: if paused.is_some() {
                    0
                } else {
                    u32::try_from(limit.limit).unwrap_or(u32::MAX)
                },
                reason: limit.reason.map_or("", LimitReason::as_str).to_owned(),
                paused_until: paused.map(|until| OffsetDateTime::now_utc() + (until - now)),
            })
        });
        LimitNote { hook_id, reduced }
    }

    /// Every webhook with a limit below its cap, a pause, or slow answers; `in_flight` gives
    /// a webhook's deliveries under way.
    pub(crate) fn statuses(
        &self,
        now: Instant,
        in_flight: impl Fn(i64) -> usize,
    ) -> Vec<LimitStatus> {
        let mut statuses: Vec<LimitStatus> = self
            .table
            .iter()
            // Marked slow before its first attempt came back: nothing known yet but that.
            .filter(|(_, limit)| limit.cap != usize::MAX)
            .map(|(&hook_id, limit)| {
                let paused_for = limit
                    .paused_until
                    .filter(|&until| now < until)
                    .map(|until| until - now);
                LimitStatus {
                    hook_id,
                    limit: if paused_for.is_some() {
                        0
                    } else {
                        limit.limit.min(limit.cap)
                    },
                    cap: limit.cap,
                    in_flight: in_flight(hook_id),
                    reason: limit.reason,
                    paused_for,
                }
            })
            .collect();
        statuses.sort_by_key(|status| status.hook_id);
        statuses
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUICK: Signal = Signal::Answered { quick: true };

    #[test]
    fn timeouts_halve_the_limit_and_quick_answers_raise_it_back_one_by_one() {
        let mut limits = Limits::default();
        let now = Instant::now();
        assert_eq!(limits.allowed(1, 8, now), 8);
        let halved = limits.record(1, 8, Signal::TimedOut, true, now);
        assert_eq!(
            halved,
            Some(Change {
                limit: 4,
                paused_until: None
            })
        );
        limits.record(1, 8, Signal::TimedOut, true, now);
        limits.record(1, 8, Signal::TimedOut, true, now);
        limits.record(1, 8, Signal::TimedOut, true, now);
        assert_eq!(limits.allowed(1, 8, now), 1, "never below one");
        assert!(limits.slow(1));
        let status = &limits.statuses(now, |_| 1)[0];
        assert_eq!((status.limit, status.cap, status.in_flight), (1, 8, 1));
        assert_eq!(status.reason, Some(LimitReason::Timeouts));
        for expected in 2..=8 {
            assert_eq!(
                limits.record(1, 8, QUICK, false, now).unwrap().limit,
                expected
            );
        }
        assert_eq!(limits.record(1, 8, QUICK, false, now), None, "at its cap");
        assert!(limits.statuses(now, |_| 0).is_empty(), "back to normal");
        assert!(!limits.slow(1));
        // Other webhooks are untouched throughout.
        assert_eq!(limits.allowed(2, 8, now), 8);
    }

    #[test]
    fn a_slow_but_correct_receiver_keeps_its_limit() {
        let mut limits = Limits::default();
        let now = Instant::now();
        for _ in 0..10 {
            limits.record(1, 4, QUICK, true, now);
        }
        assert_eq!(limits.allowed(1, 4, now), 4);
        assert!(
            limits.slow(1),
            "its deliveries count as waiting from the start"
        );
        let halved = limits.record(1, 4, Signal::Answered { quick: false }, true, now);
        assert_eq!(halved.unwrap().limit, 2);
    }

    #[test]
    fn throttling_pauses_for_retry_after_and_otherwise_doubles_the_pause() {
        let mut limits = Limits::default();
        let t0 = Instant::now();
        let change = limits.record(
            1,
            4,
            Signal::Throttled(Some(Duration::from_secs(2))),
            false,
            t0,
        );
        assert_eq!(
            change,
            Some(Change {
                limit: 0,
                paused_until: Some(t0 + Duration::from_secs(2))
            })
        );
        assert_eq!(limits.allowed(1, 4, t0), 0);
        assert_eq!(
            limits.paused_until(1, t0),
            Some(t0 + Duration::from_secs(2))
        );
        let t1 = t0 + Duration::from_secs(2);
        assert_eq!(limits.allowed(1, 4, t1), 2, "resumes at half its limit");
        // Without Retry-After: 1 s, then 2 s (the count of throttled answers in a row goes on).
        let change = limits
            .record(1, 4, Signal::Throttled(None), false, t1)
            .unwrap();
        assert_eq!(change.paused_until, Some(t1 + Duration::from_secs(2)));
        let t2 = t1 + Duration::from_secs(2);
        let change = limits
            .record(1, 4, Signal::Throttled(None), false, t2)
            .unwrap();
        assert_eq!(change.paused_until, Some(t2 + Duration::from_secs(4)));
        // A huge Retry-After is capped.
        let change = limits
            .record(
                2,
                4,
                Signal::Throttled(Some(Duration::from_secs(86_400))),
                false,
                t0,
            )
            .unwrap();
        assert_eq!(change.paused_until, Some(t0 + MAX_PAUSE));
    }

    #[test]
    fn connection_failures_change_nothing() {
        let mut limits = Limits::default();
        let now = Instant::now();
        assert_eq!(limits.record(1, 4, Signal::Neutral, false, now), None);
        assert!(limits.statuses(now, |_| 0).is_empty());
    }
}
