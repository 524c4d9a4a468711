//! The [`Outbox`] trait: the storage side of the worker loop, and its [`OutboxError`].

use std::error::Error as StdError;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::breaker::{BreakerOpening, ProbeTurn, SharedBreaker};
use crate::claim::{ClaimRequest, Claimed};
use crate::completion::{Completion, Deferral, LimitNote, PutOff};
use crate::destination::Destination;
use crate::release::Release;

/// The storage side of the worker loop, implemented by the store.
///
/// Contract: `claim` hands out due tasks under a lease (a task is not handed out again until its
/// lease expires or it is completed) with a fresh [`LeaseToken`](crate::LeaseToken) each time;
/// `complete` applies a batch of results in one durable transaction, recording every attempt
/// and ignoring (not failing on) the decision of a completion whose lease is no longer current.
///
/// The worker batches both calls itself: an implementor needs no buffering of its own.
pub trait Outbox: Send + Sync {
    /// Claims up to `claim.limit` due tasks under leases of `claim.lease`, fairly across
    /// webhooks and within each webhook's cap (see [`ClaimRequest`]).
    fn claim(&self, claim: &ClaimRequest) -> Result<Claimed, OutboxError>;
    /// Records the attempts and applies the decisions, all in one commit. On error nothing of
    /// the batch may have been applied: the worker calls again with the same batch (so it is
    /// borrowed, not taken).
    fn complete(&self, done: &[Completion]) -> Result<(), OutboxError>;
    /// Puts claimed tasks back without an attempt (an open circuit breaker holds their
    /// destination): each is due again at its `until`, its claim not counted as an attempt; a
    /// task whose lease is no longer current is left alone. If this fails, the tasks come back
    /// when their leases run out.
    fn put_off(&self, put_off: &[PutOff]) -> Result<(), OutboxError>;
    /// The breaker of `destination` closed: its shared breaker is removed, and the webhooks it
    /// held no longer show it. The default does nothing.
    fn breaker_closed(&self, destination: &Destination) -> Result<(), OutboxError> {
        let _ = destination;
        Ok(())
    }
    /// Breakers opened in this process: each becomes its destination's shared breaker, unless
    /// one is already recorded and this is a first opening (see
    /// [`BreakerOpening::after_probe`]). The default does nothing: breakers stay per process.
    fn breaker_opened(&self, openings: &[BreakerOpening]) -> Result<(), OutboxError> {
        let _ = openings;
        Ok(())
    }
    /// Every shared breaker (open, or probing), for a worker to hold what other processes
    /// found dead. The default has none.
    fn open_breakers(&self) -> Result<Vec<SharedBreaker>, OutboxError> {
        Ok(Vec::new())
    }
    /// Asks for the probe of `destination`, whose open period ended as this process last saw
    /// it: [`ProbeTurn::Granted`] to one caller only (an atomic conditional update), until
    /// `until` (or until its outcome is recorded: [`breaker_closed`](Self::breaker_closed), or
    /// [`breaker_opened`](Self::breaker_opened) after the probe). The default grants every
    /// probe (breakers per process).
    fn take_probe(
        &self,
        destination: &Destination,
        until: OffsetDateTime,
    ) -> Result<ProbeTurn, OutboxError> {
        let _ = (destination, until);
        Ok(ProbeTurn::Granted)
    }
    /// Webhooks' adaptive limits changed (for an outbox that shows them; the default does
    /// nothing).
    fn limits_changed(&self, notes: &[LimitNote]) -> Result<(), OutboxError> {
        let _ = notes;
        Ok(())
    }
    /// Puts off every due task of each webhook until its `until` (those not leased, or whose
    /// lease ran out), without an attempt: its claim is not counted, nothing is recorded. The
    /// default does nothing (the worker then puts the tasks off as claims bring them).
    fn defer(&self, deferrals: &[Deferral]) -> Result<(), OutboxError> {
        let _ = deferrals;
        Ok(())
    }
    /// Hands back claimed tasks that will not be attempted (the worker is stopping): each is
    /// due again at once, its claim not counted as an attempt; a task whose lease is no longer
    /// current is left alone. The default does nothing: the tasks come back when their leases
    /// run out, as they do if this fails.
    fn release(&self, tasks: &[Release]) -> Result<(), OutboxError> {
        let _ = tasks;
        Ok(())
    }
}

/// The outbox behind a pointer is an outbox: `Arc<Store>` for a worker on its own thread,
/// `&Store` for one borrowing it. Every method forwards, so a method added to [`Outbox`] is
/// added here once.
macro_rules! forward_outbox {
    ($($pointer:ty),*) => {$(
        impl<T: Outbox + ?Sized> Outbox for $pointer {
            fn claim(&self, claim: &ClaimRequest) -> Result<Claimed, OutboxError> {
                (**self).claim(claim)
            }

            fn complete(&self, done: &[Completion]) -> Result<(), OutboxError> {
                (**self).complete(done)
            }

            fn put_off(&self, put_off: &[PutOff]) -> Result<(), OutboxError> {
                (**self).put_off(put_off)
            }

            fn breaker_closed(&self, destination: &Destination) -> Result<(), OutboxError> {
                (**self).breaker_closed(destination)
            }

            fn breaker_opened(&self, openings: &[BreakerOpening]) -> Result<(), OutboxError> {
                (**self).breaker_opened(openings)
            }

            fn open_breakers(&self) -> Result<Vec<SharedBreaker>, OutboxError> {
                (**self).open_breakers()
            }

            fn take_probe(
                &self,
                destination: &Destination,
                until: OffsetDateTime,
            ) -> Result<ProbeTurn, OutboxError> {
                (**self).take_probe(destination, until)
            }

            fn limits_changed(&self, notes: &[LimitNote]) -> Result<(), OutboxError> {
                (**self).limits_changed(notes)
            }

            fn defer(&self, deferrals: &[Deferral]) -> Result<(), OutboxError> {
                (**self).defer(deferrals)
            }

            fn release(&self, tasks: &[Release]) -> Result<(), OutboxError> {
                (**self).release(tasks)
            }
        }
    )*};
}

forward_outbox!(Arc<T>, &T);

/// An error of the storage side ([`Outbox`]).
///
/// Implementors wrap their own error type: `OutboxError::new(my_error)`. It is transparent:
/// `Display` and `source` are the wrapped error's.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct OutboxError(Box<dyn StdError + Send + Sync>);

impl OutboxError {
    /// Wraps the storage side's own error.
    pub fn new(error: impl Into<Box<dyn StdError + Send + Sync>>) -> OutboxError {
        OutboxError(error.into())
    }

    /// The wrapped error.
    pub fn inner(&self) -> &(dyn StdError + Send + Sync + 'static) {
        &*self.0
    }

    /// Unwraps the storage side's error.
    pub fn into_inner(self) -> Box<dyn StdError + Send + Sync> {
        self.0
    }
}
