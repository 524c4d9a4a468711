//! Circuit breakers per destination (scheme, host, port): [`Destination`], [`BreakerConfig`],
//! and the worker's table of breakers.
//!
//! A destination's breaker opens after `failures` consecutive connect failures or timeouts.
//! While open, the worker puts that destination's due tasks off (no thread, no attempt, no
//! retry step) until the open period ends; then one task goes out as a probe, the others are
//! held a little longer. A probe that gets any response closes the breaker; one that fails
//! opens it again for twice as long (up to `max_open_for`). Many webhooks may share a
//! destination: they share its breaker.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::time::{Duration, Instant};

use ureq::http::Uri;

use crate::attempt::{Attempt, AttemptOutcome};

/// Where deliveries go, as far as a breaker is concerned: scheme, host and port (the port
/// made explicit: `https://example.com` is `https://example.com:443`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Destination(String);

impl Destination {
    /// The destination of a payload URL; `None` for a URL that is not absolute `http` or
    /// `https` with a host (its deliveries fail anyway, and trip no breaker).
    pub fn of(url: &str) -> Option<Destination> {
        let uri: Uri = url.parse().ok()?;
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return None,
        };
        let host = uri.host().filter(|h| !h.is_empty())?.to_ascii_lowercase();
        let port = uri.port_u16().unwrap_or(default_port);
        Some(Destination(format!("{scheme}://{host}:{port}")))
    }

    /// `scheme://host:port`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// When a destination's breaker opens, and for how long.
#[derive(Clone, Debug, PartialEq, Eq)]
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
    /// Put it off until then, for this reason.
    Hold { until: Instant, reason: String },
}

/// A change worth reporting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Change {
    /// The breaker opened (or opened again after a failed probe) until then.
    Opened { until: Instant, reason: String },
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
    /// The probe out, while probing.
    probe: Option<i64>,
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
        if breaker.probe.is_some() {
            return Some(Gate::Hold {
                until: now + self.config.probe_hold,
                reason,
            });
        }
        (now < until).then_some(Gate::Hold { until, reason })
    }

    /// The gate for task `task_id` of `destination` about to be delivered: the first task
    /// after the open period becomes the probe.
    pub(crate) fn gate(&mut self, destination: &Destination, task_id: i64, now: Instant) -> Gate {
        if let Some(hold) = self.holds(destination, now) {
            return hold;
        }
        if let Some(breaker) = self.table.get_mut(destination)
            && breaker.open_until.is_some()
        {
            breaker.probe = Some(task_id);
        }
        Gate::Deliver
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
        let failure = match attempt.outcome {
            AttemptOutcome::Timeout => "timeouts",
            AttemptOutcome::ConnectRefused => "refused connections",
            // An answer, whatever its status, means the receiver is there.
            _ if attempt.response_status.is_some() => {
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
            BreakerState::Probing if breaker.probe != Some(task_id) => return None,
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
        Some(Change::Opened { until, reason })
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
