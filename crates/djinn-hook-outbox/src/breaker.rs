//! Circuit breakers shared by every process on one store: a worker reports a breaker's opening
//! ([`BreakerOpening`]), learns the breakers others opened ([`SharedBreaker`]), and asks for
//! the one probe of a destination whose open period ended ([`ProbeTurn`]).
//!
//! The rules, for the store and its reference (`MemoryOutbox`): a destination has at most one
//! shared breaker. A first opening leaves one that another process recorded as it is (that one
//! opened first; its period stands); an opening after a failed probe replaces it. When its
//! period has ended and no probe is out, the first process to ask takes the probe, until its
//! `until` (the probe's lease), and every other asking meanwhile is told to hold. A closing
//! removes it.

use std::time::Duration;

use time::OffsetDateTime;

use crate::destination::Destination;

/// A destination's breaker opened in this process, for
/// [`Outbox::breaker_opened`](crate::Outbox::breaker_opened).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BreakerOpening {
    /// The destination.
    pub destination: Destination,
    /// Consecutive connect failures or timeouts so far.
    pub failures: u32,
    /// Why it opened, e.g. `5 consecutive timeouts`.
    pub reason: String,
    /// How long it stays open (the next failed probe doubles it).
    pub open_for: Duration,
    /// When its probe may go out.
    pub until: OffsetDateTime,
    /// It opened again because the probe this process took failed: it replaces the shared
    /// breaker. A first opening (`false`) leaves one another process recorded as it is.
    pub after_probe: bool,
}

/// A destination's breaker as every process on the store sees it
/// ([`Outbox::open_breakers`](crate::Outbox::open_breakers)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedBreaker {
    /// The destination.
    pub destination: Destination,
    /// Consecutive connect failures or timeouts when it last opened.
    pub failures: u32,
    /// Why it opened.
    pub reason: String,
    /// How long it was last opened for.
    pub open_for: Duration,
    /// When its probe may go out.
    pub until: OffsetDateTime,
    /// While a process's probe is out, until when (that probe's lease).
    pub probe_until: Option<OffsetDateTime>,
}

/// What an opening becomes once an outbox records it: the shared breaker, no probe out.
impl From<&BreakerOpening> for SharedBreaker {
    fn from(opening: &BreakerOpening) -> SharedBreaker {
        SharedBreaker {
            destination: opening.destination.clone(),
            failures: opening.failures,
            reason: opening.reason.clone(),
            open_for: opening.open_for,
            until: opening.until,
            probe_until: None,
        }
    }
}

impl SharedBreaker {
    /// Whether a probe is out at `now`.
    pub fn probing(&self, now: OffsetDateTime) -> bool {
        self.probe_until.is_some_and(|until| until > now)
    }
}

/// The answer to [`Outbox::take_probe`](crate::Outbox::take_probe).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeTurn {
    /// This process sends the probe; the others hold until its outcome is recorded (or its
    /// `until` passes).
    Granted,
    /// Hold: the breaker is still open, or another process's probe is out.
    Held(SharedBreaker),
    /// No breaker is open for the destination (another process's probe got an answer): deliver.
    Closed,
}
