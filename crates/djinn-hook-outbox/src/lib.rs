//! The contract between a store and the delivery worker: the [`Outbox`] trait and every type
//! that crosses it, defined once and used as they are on both sides.
//!
//! One event's way through these types: the store hands out a claimed [`Task`] (its
//! [`DeliveryRequest`] under a [`LeaseToken`]); the deliverer turns the request into an
//! [`Attempt`] (classified by its [`AttemptOutcome`]); the retry policy turns the attempt into a
//! [`Decision`] (the task's [`Outcome`], and whether to disable the webhook); the worker gives
//! the store a [`Completion`] (task, lease, attempt, decision), which the store records and
//! applies in one transaction. A task whose [`Destination`] has an open circuit breaker goes
//! back as a [`PutOff`] instead, without an attempt; a task the worker will not attempt because
//! it is stopping goes back as a [`Release`]. Breakers are shared by every process on one store:
//! a worker reports an opening ([`BreakerOpening`]), learns those of others
//! ([`SharedBreaker`]) and asks for a destination's one probe ([`ProbeTurn`]).
//!
//! What a worker hands back for one task, as an outbox receives it:
//!
//! ```
//! use djinn_hook_outbox::{
//!     Attempt, AttemptOutcome, Completion, Decision, DeliveryRequest, LeaseToken, Outcome,
//! };
//! use djinn_hook_payload::EventType;
//! use time::OffsetDateTime;
//!
//! // The request of a claimed task (a store builds it from its rows).
//! let event_id = uuid::Uuid::new_v4();
//! let url = "https://ci.example.com/hook";
//! let mut request = DeliveryRequest::new(7, event_id, EventType::Cron, url, b"{}".to_vec());
//! request.secret = Some("s3cret".into());
//! assert!(!format!("{request:?}").contains("s3cret"));
//!
//! // The deliverer's record of the POST, and the retry policy's answer.
//! let mut attempt = Attempt::new(&request, OffsetDateTime::now_utc());
//! attempt.response_status = Some(503);
//! attempt.outcome = AttemptOutcome::HttpStatus;
//! let retry_at = OffsetDateTime::now_utc() + time::Duration::minutes(5);
//! let decision = Decision::new(Outcome::RetryAt(retry_at));
//! let done = Completion::new(41, LeaseToken::new(), attempt, decision);
//! assert_eq!(done.decision.outcome.to_string(), "retry");
//! assert_eq!(AttemptOutcome::from_name("http_status"), Some(AttemptOutcome::HttpStatus));
//! ```
//!
//! This crate does no I/O: the store (djinn-hook-store) implements [`Outbox`], the worker
//! (djinn-hook-deliver) drives it. It also holds the one stop signal they share with the
//! server and the binary, [`Shutdown`], which wakes blocking threads and async tasks alike.
//!
//! # Features
//!
//! - `memory` (off by default): `MemoryOutbox`, the whole [`Outbox`] contract kept in memory
//!   behind a mutex, with `MemoryTask`, `MemoryHook` and `TaskState` to check what became of
//!   its tasks. For tests of code that runs a worker, and the reference implementation for
//!   anyone writing a store.
#![warn(missing_docs)]

/// The crate README's example, compiled and run as a doctest so it cannot drift.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
struct ReadmeDoctests;

mod attempt;
mod breaker;
mod claim;
mod clock;
mod completion;
mod destination;
mod lease;
#[cfg(feature = "memory")]
mod memory;
mod outbox;
mod release;
mod request;
mod shutdown;
mod trace;
#[cfg(test)]
mod wake_count;

pub use crate::{
    attempt::{Attempt, AttemptOutcome},
    breaker::{BreakerOpening, ProbeTurn, SharedBreaker},
    claim::{ClaimRequest, Claimed, Task},
    clock::{Clock, ManualClock, SystemClock},
    completion::{Completion, Decision, Deferral, LimitNote, Outcome, PutOff, ReducedLimit},
    destination::Destination,
    lease::LeaseToken,
    outbox::{Outbox, OutboxError},
    release::Release,
    request::{CustomHeader, DeliveryRequest, WebhookSecret},
    shutdown::{OnStop, Shutdown, Stopped},
    trace::TraceParent,
};

#[cfg(feature = "memory")]
pub use crate::memory::{MemoryHook, MemoryOutbox, MemoryTask, TaskState};
