//! Circuit breakers per [`Destination`] (scheme, host, port): [`BreakerConfig`] and the
//! worker's table of breakers.
//!
//! A destination's breaker opens after `failures` consecutive connect failures or timeouts
//! (counted by each process).
//! While open, the worker puts that destination's due tasks off (no thread, no attempt, no
//! retry step) until the open period ends; then one task goes out as a probe, the others are
//! held a little longer. A probe that gets any response closes the breaker; one that fails
//! opens it again for twice as long (up to `max_open_for`). Many webhooks may share a
//! destination: they share its breaker.
//!
//! Every process on one store shares it too (the store is the truth; this table is the
//! worker's copy): an opening is reported to the outbox ([`Change::Opened`] becomes a
//! `BreakerOpening`), the breakers other processes opened are adopted ([`Breakers::adopt`],
//! after claims), and the probe is asked of the outbox ([`Gate::Probe`]), which grants it to
//! one process only. Failures in a row are counted here until they open the breaker: nothing
//! is written on the healthy path.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use djinn_hook_outbox::{Attempt, AttemptOutcome, BreakerOpening, Destination, SharedBreaker};
use time::OffsetDateTime;

/// When a destination's breaker opens, and for how long. [`BreakerConfig::default`] gives the
/// defaults documented on each field; change one by setting it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BreakerConfig {
    /// Consecutive connect failures or timeouts that open the breaker. Default 5: one or two
    /// failures are ordinary on the internet; five in a row, with no response between them, is
    /// a receiver that is down. 0 never opens it.
    pub failures: u32,
    /// The first open period. Default 30 s.
    pub open_for: Duration,
    /// The longest open period (each failed probe doubles it). Default 10 min: a receiver that
    /// comes back is found within that, and a probe every ten minutes costs nothing.
    pub max_open_for: Duration,
    /// How long the destination's other due tasks are put off while its probe is out.
    /// Default 2 s.
    pub probe_hold: Duration,
}

impl Default for BreakerConfig {
    fn default() -> BreakerConfig {
        BreakerConfig {
            failures: 5,
            open_for: Duration::from_secs(30),
            max_open_for: Duration::from_secs(600),
            probe_hold: Duration::from_secs(2),
        }
    }
}

/// The state of one destination's breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreakerState {
    /// Deliveries go out.
    Closed,
    /// Deliveries are put off until the open period ends.
    Open,
    /// One probe is out; the others wait for it.
    Probing,
}

impl BreakerState {
    /// `closed`, `open` or `probing`.
    pub const fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::Probing => "probing",
        }
    }
}

/// One destination's breaker, as [`BreakerMonitor`](crate::BreakerMonitor) reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BreakerStatus {
    /// The destination.
    pub destination: Destination,
    /// Its state.
    pub state: BreakerState,
    /// Consecutive connect failures or timeouts so far.
    pub failures: u32,
    /// While open: how long until the probe may go out.
    pub open_for: Option<Duration>,
    /// Why it opened (while not closed).
    pub reason: Option<String>,
    /// Distinct tasks put off since it opened.
    pub tasks_held: usize,
}

/// What the table says about a task of a destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Gate {
    /// Deliver it.
    Deliver,
    /// Its open period ended: it is this process's probe if the outbox grants it
    /// ([`Breakers::probe_refused`] otherwise).
    Probe,
    /// Put it off until then, for this reason.
    Hold { until: Instant, reason: String },
}

/// A change worth reporting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Change {
    /// The breaker opened (or opened again after a failed probe) until then.
    Opened {
        until: Instant,
        reason: String,
        /// The opening as the outbox records it.
        opening: BreakerOpening,
    },
    /// The breaker closed.
    Closed,
}

#[derive(Debug, Default)]
struct Breaker {
    failures: u32,
    /// Why it is open (the last failure's kind), while not closed.
    reason: Option<String>,
    /// Until when it is open; `None` while closed.
    open_until: Option<Instant>,
    /// The probe out (its task, and when it went), while probing.
    probe: Option<(i64, Instant)>,
    /// How long it was open last time (the next failed probe doubles it).
    open_for: Duration,
    /// Tasks put off since it opened.
    held: HashSet<i64>,
}

impl Breaker {
    fn state(&self) -> BreakerState {
        match (self.open_until, self.probe) {
            (None, _) => BreakerState::Closed,
            (Some(_), None) => BreakerState::Open,
            (Some(_), Some(_)) => BreakerState::Probing,
        }
    }
}

/// The worker's breakers, by destination.
#[derive(Debug, Default)]
pub(crate) struct Breakers {
    config: BreakerConfig,
    table: HashMap<Destination, Breaker>,
}

impl Breakers {
    pub(crate) fn new(config: BreakerConfig) -> Breakers {
        Breakers {
            config,
            table: HashMap::new(),
        }
    }

    /// Whether a task of `destination` may go out now without taking the probe: `Hold` while
    /// open or probing (used when tasks are claimed, before any is taken).
    pub(crate) fn holds(&self, destination: &Destination, now: Instant) -> Option<Gate> {
        let breaker = self.table.get(destination)?;
        let until = breaker.open_until?;
        let reason = breaker.reason.clone().unwrap_or_default();
        // A probe whose result never came back (it cannot take longer than the longest
        // timeout, well under `max_open_for`) no longer holds the others: another goes out.
        if breaker
            .probe
            .is_some_and(|(_, sent)| now.saturating_duration_since(sent) < self.config.max_open_for)
        {
            return Some(Gate::Hold {
                until: now + self.config.probe_hold,
                reason,
            });
        }
        (now < until).then_some(Gate::Hold { until, reason })
    }

    /// The gate for task `task_id` of `destination` about to be delivered: the first task
    /// after the open period becomes the probe, if the outbox grants it (meanwhile the
    /// destination's other tasks are held, as behind a probe).
    pub(crate) fn gate(&mut self, destination: &Destination, task_id: i64, now: Instant) -> Gate {
        if let Some(hold) = self.holds(destination, now) {
            return hold;
        }
        if let Some(breaker) = self.table.get_mut(destination)
            && breaker.open_until.is_some()
        {
            breaker.probe = Some((task_id, now));
            return Gate::Probe;
        }
        Gate::Deliver
    }

    /// The outbox refused this process the probe of `destination`: another process's probe is
    /// out, or the breaker opened again meanwhile (`held`: adopted, and its hold returned), or
    /// it closed (`None`: the breaker is dropped here too, and the task goes out).
    pub(crate) fn probe_refused(
        &mut self,
        destination: &Destination,
        held: Option<&SharedBreaker>,
        now: Instant,
        wall: OffsetDateTime,
    ) -> Gate {
        let Some(shared) = held else {
            self.table.remove(destination);
            return Gate::Deliver;
        };
        if let Some(breaker) = self.table.get_mut(destination) {
            breaker.probe = None;
        }
        self.adopt(std::slice::from_ref(shared), now, wall);
        self.holds(destination, now).unwrap_or(Gate::Deliver)
    }

    /// Adopts the breakers every process shares (read from the outbox at `wall`, which is
    /// `now` here): each destination is held at least until its shared breaker's probe, or,
    /// while another process's probe is out, for `probe_hold`. A breaker whose probe this
    /// process has out is left as it is (its outcome is about to change the shared one).
    pub(crate) fn adopt(&mut self, shared: &[SharedBreaker], now: Instant, wall: OffsetDateTime) {
        if self.config.failures == 0 {
            return;
        }
        for s in shared {
            let breaker = self.table.entry(s.destination.clone()).or_default();
            if breaker.probe.is_some() {
                continue;
            }
            let left = (s.until - wall).max(time::Duration::ZERO);
            let mut until = now + Duration::try_from(left).unwrap_or_default();
            if s.probing(wall) {
                until = until.max(now + self.config.probe_hold);
            }
            if breaker.open_until.is_none_or(|mine| mine < until) {
                breaker.open_until = Some(until);
                breaker.reason = Some(s.reason.clone());
                breaker.failures = breaker.failures.max(s.failures);
                breaker.open_for = breaker.open_for.max(s.open_for);
            }
        }
    }

    /// Notes that `task_id` was put off by the breaker of `destination`.
    pub(crate) fn held(&mut self, destination: &Destination, task_id: i64) {
        if let Some(breaker) = self.table.get_mut(destination) {
            breaker.held.insert(task_id);
        }
    }

    /// Records the attempt of `task_id` at `destination`; returns what changed, if anything.
    pub(crate) fn record(
        &mut self,
        destination: &Destination,
        task_id: i64,
        attempt: &Attempt,
        now: Instant,
    ) -> Option<Change> {
        let is_probe = self
            .table
            .get(destination)
            .and_then(|b| b.probe)
            .is_some_and(|(probe, _)| probe == task_id);
        let failure = match attempt.outcome {
            AttemptOutcome::Timeout => "timeouts",
            AttemptOutcome::ConnectRefused => "refused connections",
            // An answer, whatever its status, means the receiver is there; so does anything
            // else that ends a probe (a TLS failure, a reset): it got past connecting.
            _ if attempt.response_status.is_some() || is_probe => {
                let breaker = self.table.remove(destination)?;
                return breaker.open_until.map(|_| Change::Closed);
            }
            // A TLS failure, a refused address or a bad URL says nothing about reachability.
            _ => return None,
        };
        if self.config.failures == 0 {
            return None;
        }
        let config = &self.config;
        let breaker = self.table.entry(destination.clone()).or_default();
        match breaker.state() {
            BreakerState::Closed => {
                breaker.failures += 1;
                if breaker.failures < config.failures {
                    return None;
                }
                breaker.open_for = config.open_for;
            }
            // Attempts already out when it opened: nothing new.
            BreakerState::Open => return None,
            BreakerState::Probing if !is_probe => return None,
            BreakerState::Probing => {
                breaker.failures += 1;
                breaker.probe = None;
                breaker.open_for = (breaker.open_for * 2).min(config.max_open_for);
            }
        }
        let reason = format!("{} consecutive {failure}", breaker.failures);
        let until = now + breaker.open_for;
        breaker.open_until = Some(until);
        breaker.reason = Some(reason.clone());
        let opening = BreakerOpening {
            destination: destination.clone(),
            failures: breaker.failures,
            reason: reason.clone(),
            open_for: breaker.open_for,
            until: OffsetDateTime::now_utc() + breaker.open_for,
            after_probe: is_probe,
        };
        Some(Change::Opened {
            until,
            reason,
            opening,
        })
    }

    /// Every breaker that is not plainly closed with no failures, by destination.
    pub(crate) fn statuses(&self, now: Instant) -> Vec<BreakerStatus> {
        let mut statuses: Vec<BreakerStatus> = self
            .table
            .iter()
            .map(|(destination, breaker)| BreakerStatus {
                destination: destination.clone(),
                state: breaker.state(),
                failures: breaker.failures,
                open_for: breaker
                    .open_until
                    .filter(|_| breaker.probe.is_none())
                    .map(|until| until.saturating_duration_since(now)),
                reason: breaker.reason.clone(),
                tasks_held: breaker.held.len(),
            })
            .collect();
        statuses.sort_by(|a, b| a.destination.cmp(&b.destination));
        statuses
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(outcome: AttemptOutcome, status: Option<u16>) -> Attempt {
        let request = djinn_hook_outbox::DeliveryRequest::new(
            1,
            uuid::Uuid::nil(),
            djinn_hook_payload::EventType::BuildFinished,
            "",
            Vec::new(),
        );
        let mut attempt = Attempt::new(&request, time::OffsetDateTime::UNIX_EPOCH);
        attempt.response_status = status;
        attempt.outcome = outcome;
        attempt
    }

    fn breakers() -> Breakers {
        Breakers::new(BreakerConfig {
            failures: 3,
            open_for: Duration::from_secs(10),
            max_open_for: Duration::from_secs(25),
            probe_hold: Duration::from_secs(1),
        })
    }

    #[test]
    fn destinations_name_scheme_host_and_port() {
        let of = |url| Destination::of(url).map(|d| d.to_string());
        assert_eq!(
            of("https://Example.com/a?b").unwrap(),
            "https://example.com:443"
        );
        assert_eq!(
            of("http://example.com:8080/").unwrap(),
            "http://example.com:8080"
        );
        assert_eq!(of("http://[::1]/x").unwrap(), "http://[::1]:80");
        assert_eq!(of("ftp://example.com/"), None);
        assert_eq!(of("not a url"), None);
    }

    #[test]
    fn opens_after_consecutive_failures_probes_and_closes() {
        let mut table = breakers();
        let dest = Destination::of("http://127.0.0.1:9/").unwrap();
        let t0 = Instant::now();
        let timeout = attempt(AttemptOutcome::Timeout, None);
        assert_eq!(table.record(&dest, 1, &timeout, t0), None);
        // An answer in between starts the count again.
        let answer = attempt(AttemptOutcome::HttpStatus, Some(500));
        assert_eq!(table.record(&dest, 2, &answer, t0), None);
        assert_eq!(table.record(&dest, 3, &timeout, t0), None);
        assert_eq!(table.record(&dest, 4, &timeout, t0), None);
        let first = opened(table.record(&dest, 5, &timeout, t0));
        assert_eq!(
            first,
            Some((
                t0 + Duration::from_secs(10),
                "3 consecutive timeouts".to_owned(),
                false
            ))
        );
        // Held until the period ends; attempts already out change nothing.
        assert!(matches!(table.gate(&dest, 6, t0), Gate::Hold { .. }));
        assert_eq!(table.record(&dest, 7, &timeout, t0), None);
        // Then one probe; the others wait for it.
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(table.gate(&dest, 8, t1), Gate::Probe);
        assert_eq!(
            table.gate(&dest, 9, t1),
            Gate::Hold {
                until: t1 + Duration::from_secs(1),
                reason: "3 consecutive timeouts".to_owned()
            }
        );
        // A failed probe opens it for twice as long.
        let refused = attempt(AttemptOutcome::ConnectRefused, None);
        assert_eq!(
            opened(table.record(&dest, 8, &refused, t1)),
            Some((
                t1 + Duration::from_secs(20),
                "4 consecutive refused connections".to_owned(),
                true
            ))
        );
        // The next failed probe is capped at max_open_for.
        let t2 = t1 + Duration::from_secs(20);
        assert_eq!(table.gate(&dest, 10, t2), Gate::Probe);
        let Some(Change::Opened { until, .. }) = table.record(&dest, 10, &refused, t2) else {
            panic!("opened again");
        };
        assert_eq!(until, t2 + Duration::from_secs(25));
        // A probe that gets an answer closes it.
        let t3 = t2 + Duration::from_secs(25);
        assert_eq!(table.gate(&dest, 11, t3), Gate::Probe);
        assert_eq!(table.record(&dest, 11, &answer, t3), Some(Change::Closed));
        assert_eq!(table.gate(&dest, 12, t3), Gate::Deliver);
        assert!(table.statuses(t3).is_empty());
    }

    #[test]
    fn neutral_outcomes_neither_count_nor_close_but_end_a_probe() {
        let mut table = breakers();
        let dest = Destination::of("https://example.com/").unwrap();
        let t0 = Instant::now();
        let tls = attempt(AttemptOutcome::TlsError, None);
        let timeout = attempt(AttemptOutcome::Timeout, None);
        for id in 0..2 {
            table.record(&dest, id, &timeout, t0);
        }
        assert_eq!(table.record(&dest, 2, &tls, t0), None);
        assert!(
            table.record(&dest, 3, &timeout, t0).is_some(),
            "tls did not reset"
        );
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(table.gate(&dest, 4, t1), Gate::Probe);
        assert_eq!(table.record(&dest, 4, &tls, t1), Some(Change::Closed));
    }

    #[test]
    fn a_lost_probe_does_not_hold_the_destination_forever() {
        let mut table = breakers();
        let dest = Destination::of("https://example.com/").unwrap();
        let t0 = Instant::now();
        let timeout = attempt(AttemptOutcome::Timeout, None);
        for id in 0..3 {
            table.record(&dest, id, &timeout, t0);
        }
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(table.gate(&dest, 4, t1), Gate::Probe);
        assert!(matches!(table.gate(&dest, 5, t1), Gate::Hold { .. }));
        assert_eq!(
            table.gate(&dest, 5, t1 + Duration::from_secs(25)),
            Gate::Probe
        );
    }

    fn shared(
        dest: &Destination,
        until: OffsetDateTime,
        probe: Option<OffsetDateTime>,
    ) -> SharedBreaker {
        SharedBreaker {
            destination: dest.clone(),
            failures: 7,
            reason: "7 consecutive timeouts".to_owned(),
            open_for: Duration::from_secs(20),
            until,
            probe_until: probe,
        }
    }

    #[test]
    fn breakers_opened_elsewhere_hold_here_and_their_probe_is_asked_for() {
        let mut table = breakers();
        let dest = Destination::of("https://example.com/").unwrap();
        let (t0, wall) = (Instant::now(), OffsetDateTime::now_utc());
        // Another process opened it for 5 s more: held here until then, no failure of ours.
        table.adopt(
            &[shared(&dest, wall + Duration::from_secs(5), None)],
            t0,
            wall,
        );
        assert_eq!(
            table.gate(&dest, 1, t0),
            Gate::Hold {
                until: t0 + Duration::from_secs(5),
                reason: "7 consecutive timeouts".to_owned()
            }
        );
        // Its period over, the probe is asked for; refused while another process's is out.
        let t1 = t0 + Duration::from_secs(5);
        let wall1 = wall + Duration::from_secs(5);
        assert_eq!(table.gate(&dest, 2, t1), Gate::Probe);
        let elsewhere = shared(&dest, wall1, Some(wall1 + Duration::from_secs(60)));
        assert_eq!(
            table.probe_refused(&dest, Some(&elsewhere), t1, wall1),
            Gate::Hold {
                until: t1 + Duration::from_secs(1),
                reason: "7 consecutive timeouts".to_owned()
            }
        );
        // That probe failed: the breaker opened again for longer, adopted as it is.
        let t2 = t1 + Duration::from_secs(1);
        let wall2 = wall1 + Duration::from_secs(1);
        assert_eq!(table.gate(&dest, 3, t2), Gate::Probe);
        let again = shared(&dest, wall2 + Duration::from_secs(40), None);
        assert!(matches!(
            table.probe_refused(&dest, Some(&again), t2, wall2),
            Gate::Hold { until, .. } if until == t2 + Duration::from_secs(40)
        ));
        // A failed probe of our own later doubles the shared period, not our own.
        let t3 = t2 + Duration::from_secs(40);
        assert_eq!(table.gate(&dest, 4, t3), Gate::Probe);
        let timeout = attempt(AttemptOutcome::Timeout, None);
        assert_eq!(
            opened(table.record(&dest, 4, &timeout, t3)),
            Some((
                t3 + Duration::from_secs(25),
                "8 consecutive timeouts".to_owned(),
                true
            ))
        );
        // Closed elsewhere: the probe's task goes out as an ordinary delivery.
        let t4 = t3 + Duration::from_secs(25);
        assert_eq!(table.gate(&dest, 5, t4), Gate::Probe);
        assert_eq!(table.probe_refused(&dest, None, t4, wall), Gate::Deliver);
        assert_eq!(table.gate(&dest, 6, t4), Gate::Deliver);
        assert!(table.statuses(t4).is_empty());
    }

    /// An opening's time, reason and whether it follows a probe.
    fn opened(change: Option<Change>) -> Option<(Instant, String, bool)> {
        match change? {
            Change::Opened {
                until,
                reason,
                opening,
            } => {
                assert_eq!(opening.reason, reason);
                Some((until, reason, opening.after_probe))
            }
            Change::Closed => None,
        }
    }
}
