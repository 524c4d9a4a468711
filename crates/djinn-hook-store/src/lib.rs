//! Storage for Djinn CI webhooks, in SQLite or PostgreSQL: webhooks, a durable outbox and the
//! delivery log.
//!
//! A [`Store`] is one SQLite file ([`Store::open`]) or one PostgreSQL database
//! (`Store::open_postgres`, [`Store::open_url`]; see "PostgreSQL" below) holding
//! [`Namespace`]s, [`Webhook`]s (their
//! secrets encrypted with AES-256-GCM under a [`SecretKey`]), the outbox of
//! accepted events with one delivery task per matching webhook, and the log of
//! every delivery attempt ([`Delivery`]).
//!
//! ```
//! use std::time::Duration;
//! use djinn_hook_outbox::{Attempt, AttemptOutcome, Completion, Decision, Outcome};
//! use djinn_hook_payload::EventType;
//! use djinn_hook_store::{NewEvent, NewWebhook, SecretKey, Store};
//! use time::OffsetDateTime;
//!
//! # fn main() -> Result<(), djinn_hook_store::Error> {
//! # let dir = tempfile::tempdir().unwrap();
//! let store = Store::open(dir.path().join("hooks.db"), SecretKey::from_bytes([7; 32]))?;
//! store.ensure_namespace("alice/ci")?;
//! let hook = store.create_webhook(NewWebhook::new("alice/ci", "https://example.com/hook"))?;
//!
//! let accepted = store.accept_event(NewEvent::new(
//!     "alice/ci",
//!     EventType::BuildSubmitted,
//!     br#"{"id":1}"#.to_vec(),
//! ))?;
//! assert_eq!(accepted.matched, 1);
//!
//! let now = OffsetDateTime::now_utc();
//! let task = store.claim_due(now, 10, Duration::from_secs(90))?.remove(0);
//! assert_eq!(task.request.hook_id, hook.id);
//! // ... POST task.request.body to task.request.url (djinn-hook-deliver does), then:
//! let mut attempt = Attempt::new(&task.request, now);
//! attempt.response_status = Some(200);
//! attempt.outcome = AttemptOutcome::Success;
//! let decision = Decision::new(Outcome::Delivered);
//! store.complete_one(&Completion::new(task.task_id, task.lease, attempt, decision))?;
//! # Ok(())
//! # }
//! ```
//!
//! # Schema
//!
//! [`Store::open`] applies the migrations the file lacks, each in its own
//! transaction, versioned with `PRAGMA user_version`; a file written by a newer
//! build is refused ([`Error::NewerSchema`]), never downgraded. Webhook event
//! sets are stored as the original Djinn CI's integer bit mask.
//!
//! # Secrets
//!
//! A webhook's secret is sealed with AES-256-GCM under the caller's
//! [`SecretKey`], with a fresh random nonce on every write and the webhook's id
//! as associated data (a sealed secret copied to another row does not open).
//! Only [`Store::claim_due`] (and [`Store::queue_test`], which leases the task
//! it queues) decrypts it, into the claimed task's request; with the wrong key
//! that is [`Error::WrongSecretKey`]. No `Debug` output in this crate shows a
//! secret. The log records the headers it is given: the delivery layer
//! sends signatures, never the secret.
//!
//! [`Store::rotate_secret`] gives a webhook a new secret and keeps the current one as its
//! previous secret for an overlap ([`DEFAULT_ROTATION_OVERLAP`], at most
//! [`MAX_ROTATION_OVERLAP`]): until it ends a claim hands out both
//! (the request's `previous_secret`) and [`Webhook::secret_rotating_until`] says when; past
//! it the previous secret is ignored, and a prune deletes it.
//!
//! A webhook's custom headers ([`NewWebhook::headers`]) are sealed the same way (under the
//! webhook's id and a label of their own); [`Webhook::headers`] holds their names only, and a
//! claim hands out the values in the request's `headers`.
//!
//! # Durability
//!
//! The file is in WAL mode with `synchronous=FULL`: every commit fsyncs the
//! WAL, so a call that returned `Ok` is on disk and survives a power cut (with
//! `NORMAL` a commit could be lost at power loss, which would break the
//! outbox's promise). An fsync is the costliest part of a small write, so
//! [`Store::accept_events`] and [`Store::complete`] take batches in one
//! transaction (group commit): a busy emitter or worker pays one fsync per
//! batch, not per row.
//!
//! One exception: [`Store::claim_due`] commits without waiting for an fsync
//! (`synchronous=NORMAL` for that transaction only). Losing a claim in a crash
//! is harmless (its tasks are due again, as if their lease had run out), and
//! the next durable commit on the file fsyncs the WAL with the claim in it, so
//! a completion is never on disk without the claim it completes.
//!
//! # Concurrency
//!
//! `Store` is `Send + Sync`. It keeps one writer connection and one reader
//! connection, each behind a mutex. Every write is one `BEGIN IMMEDIATE`
//! transaction, which takes SQLite's write lock up front: with a 30 s busy
//! timeout, writers from other threads, `Store`s or processes on the same file
//! queue instead of failing with "database is locked", and a read-then-write
//! transaction can never fail half-way on a lock upgrade. Reads use the reader
//! connection in a snapshot and never wait for writers (WAL).
//!
//! Tasks are leased, not locked: [`Store::claim_due`] marks due tasks with a
//! lease token and expiry in one write transaction, so two workers never get
//! the same task, and a crashed worker's tasks become due again when the lease
//! runs out. [`Store::complete`] always records the attempt, but applies the
//! outcome only while the lease token still matches. On PostgreSQL the leases
//! are kept apart from the tasks, in an unlogged table: a claim writes no WAL for
//! its tasks, and a server crash or a failover, which lose that table, make the
//! tasks under way due again, as their holders' deaths would (at least once,
//! never lost).
//!
//! # Processes
//!
//! A long-running process registers ([`Store::register_process`]): its claims then carry its
//! [`ProcessId`], it shows the others that it runs (on SQLite a lock on its own file beside
//! the database, `<db>.procs/<id>.lock`; on PostgreSQL a session-level advisory lock on a
//! connection of its own), and the claims of a registered process found dead come back at
//! once ([`Store::take_back_from_dead`], which claims run by themselves once a second), each
//! reported as a [`TakenBack`]. Stopping, it hands back what it still holds
//! ([`Store::release`] for tasks never attempted, [`Store::retire_process`] for the rest). The
//! lease stays the outer bound for a process alive but cut off, or stuck: an attempt recorded
//! after its lease was lost is counted ([`Store::stale_completions`]).
//!
//! # Retention
//!
//! Deleting a webhook deletes its tasks and its delivery log (a log of a
//! webhook that no longer exists would point at nothing). [`Store::prune`]
//! removes deliveries older than N days ([`DEFAULT_RETENTION`] is 30), then
//! events older than that with no pending task and no delivery left,
//! [`PRUNE_BATCH`] rows per transaction. Since an event outlives its
//! deliveries, [`Store::redeliver`] can always send it again, and the log
//! stores a request body only when it differs from the event's payload (usually
//! it is the payload: a delivery row then costs a few hundred bytes, not the
//! payload's size again). An attempt sends its claimed task's body unchanged,
//! so the store neither receives nor compares a copy.
//!
//! # Time
//!
//! A `Store` reads the time from its [`Clock`]: the system's ([`SystemClock`]) unless
//! [`Store::with_clock`] gives it another, such as a [`ManualClock`] that a test moves forward
//! instead of sleeping (a rotation's overlap ending, an event growing old enough to prune).
//! Methods that schedule against a time the caller chose take it as an argument
//! ([`Store::claim`]'s `now`).
//!
//! # Tasks and their states
//!
//! Accepting an event queues one task per matching webhook, due at once.
//! [`Store::claim_due`] leases due tasks; [`Store::complete`] finishes a task
//! (`Outcome::Delivered`), schedules its next attempt (`Outcome::RetryAt`:
//! the delivery layer owns the retry policy) or gives up on it
//! (`Outcome::Failed`). Deactivating or disabling a webhook marks its
//! pending tasks failed; [`Store::retry_now`] makes a webhook's failed and
//! waiting tasks due again. A task queued by [`Store::redeliver`] carries
//! the request's `redelivery` flag; retries of one task are told apart by
//! its `attempt` number. An event queued by [`Store::queue_test`] is
//! marked as a test, and so is every delivery of it ([`Delivery::test`]).
//!
//! # PostgreSQL
//!
//! Everything above holds on PostgreSQL too, with these differences. Many
//! processes on many machines may share the database: a claim takes due tasks
//! with `FOR UPDATE SKIP LOCKED`, under the same leases. Migrations are
//! versioned in a `schema_version` table (numbered on their own:
//! `Store::postgres_schema_version`) and run under an advisory lock. Every
//! process must use the same [`SecretKey`]. Accepting events announces them
//! (`NOTIFY`), and [`Store::work_listener`] gives an idle worker a
//! [`WorkListener`] to block on instead of polling. Commits are durable as the
//! server is configured (`synchronous_commit`), but a claim's, which does not
//! wait for the flush, as on SQLite. The connection is not encrypted (no TLS).
//! An event's id is a version 8 UUID that carries its row, masked with a key the
//! database keeps (on SQLite a random version 4 UUID); payloads and recorded
//! headers are stored compressed (zstd with a dictionary) and read back as they
//! were.
//!
//! # Features
//!
//! - `sqlite` (default, required): the SQLite backend. The PostgreSQL backend shares its rules,
//!   so every build has it.
//! - `postgres`: the PostgreSQL backend (`Store::open_postgres`, `postgres://` URLs in
//!   [`Store::open_url`]). It brings the `postgres` client and the async runtime under it
//!   (tokio), and zstd (a C library, built by its crate); a build without it answers a
//!   PostgreSQL URL with [`Error::NotBuilt`].
#![warn(missing_docs)]

#[cfg(not(feature = "sqlite"))]
compile_error!(
    "djinn-hook-store needs its `sqlite` feature (on by default): the PostgreSQL backend shares its code"
);

/// The crate README's example, compiled and run as a doctest so it cannot drift.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
struct ReadmeDoctests;

mod at_cap;
mod auto_prune;
mod backend;
mod claim;
mod claim_rounds;
mod clock;
mod columns;
mod custom_headers;
mod delivery_query;
mod dispatch;
mod error;
mod idempotency;
mod intake;
mod key;
mod key_file;
mod liveness;
mod lock_file;
mod notify;
#[cfg(feature = "postgres")]
mod pg;
mod pruning;
mod rotation;
mod rows;
mod schema;
mod sql;
mod task;
mod task_state;
mod tracing_span;
mod types;
mod validate;
mod webhook_rules;

// The SQLite backend: `sqlite::SqliteBackend` and its parts of the `backend::Backend` trait, one
// file per area (as `pg/` for PostgreSQL).
mod breakers;
mod defer;
mod hooks;
mod limit_notes;
mod log;
#[allow(unreachable_pub, reason = "called by the SQLite backend")]
mod notices;
mod outbox;
mod process;
mod queue_test;
mod recover;
mod sqlite;

pub use auto_prune::AutoPrune;
pub use clock::{Clock, ManualClock, SystemClock};
pub use custom_headers::{KEEP_HEADER_VALUE, MAX_HEADERS};
pub use dispatch::{NotificationTarget, Store, WorkListener, is_postgres_url};
pub use error::{DatabaseError, Error, Result};
pub use idempotency::{
    DEFAULT_IDEMPOTENCY_WINDOW, IdempotencyKey, MAX_IDEMPOTENCY_KEY, check_idempotency_key,
};
pub use key::SecretKey;
pub use liveness::{LivenessEvent, ProcessId, ProcessInfo, TakenBack};
pub use notify::NOTIFICATIONS_NAMESPACE;
pub use outbox::MAX_BODY;
pub use pruning::{DEFAULT_RETENTION, PRUNE_BATCH};
pub use rotation::{DEFAULT_ROTATION_OVERLAP, MAX_ROTATION_OVERLAP};
pub use types::{
    Accepted, BreakerHold, Completed, Counts, Delivery, DeliveryFilter, DeliveryLimits,
    LastResponse, LimitHold, LimitsUpdate, Namespace, NewEvent, NewWebhook, Page, Paged, Pruned,
    Recovery, SecretUpdate, SuccessRate, Webhook, WebhookUpdate,
};
pub use validate::ValidationErrors;
