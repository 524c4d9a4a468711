//! Blocking delivery of Djinn CI webhooks: one signed HTTP POST per attempt, a complete record
//! of it, retries, an SSRF guard, and a worker loop any store can drive.
//!
//! - [`Deliverer`] (built from a [`DeliverConfig`]) turns a [`DeliveryRequest`] into one POST on
//!   a shared keep-alive connection pool and returns the [`Attempt`] record, whatever happened.
//! - [`RetryPolicy::decide`] turns an attempt into a [`Decision`]: the task's [`Outcome`]
//!   (delivered, retry at a time, or failed) and whether to disable the webhook;
//!   [`Deliverer::deliver_once`] delivers a task by hand, never retried (a test delivery).
//! - [`Engine`] makes the same attempts as a [`Deliverer`] without a thread per delivery: one
//!   reactor thread drives them all over non-blocking sockets, so a delivery waiting on its
//!   receiver costs a socket and a few KiB.
//! - [`Worker`] runs claim → deliver → decide → commit over a store's [`Outbox`] on a pool of
//!   threads for receivers known to answer quickly and an [`Engine`] for the others (slow,
//!   dead, or not known yet), claiming and committing in batches; a
//!   [`WorkerWaker`] makes it claim at once. Faulty receivers cost only themselves: a limit on
//!   each webhook's deliveries at once that adapts to how it answers ([`LimitMonitor`]), a
//!   pause after a 429 or 503, and a circuit breaker per [`Destination`] shared by every process
//!   on one store ([`BreakerConfig`], reported by a [`BreakerMonitor`]).
//!
//! The types shared with the store (the request, the attempt, the task, the completion and the
//! `Outbox` trait) are djinn-hook-outbox's, re-exported here.
//!
//! One request to a receiver (here a stand-in on loopback answering 200), then a worker
//! delivering everything an outbox holds (here djinn-hook-outbox's `MemoryOutbox`; a real one
//! is djinn-hook-store's `Store`):
//!
//! ```
//! use std::io::{Read, Write};
//! use djinn_hook_deliver::{DeliverConfig, Deliverer, DeliveryRequest, RetryPolicy};
//! use djinn_hook_deliver::{Outcome, Worker, WorkerConfig};
//! use djinn_hook_outbox::{MemoryOutbox, TaskState};
//! use djinn_hook_payload::EventType;
//!
//! // A receiver on 127.0.0.1 that answers each request 200 on a connection of its own.
//! let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
//! let url = format!("http://{}/hook", listener.local_addr()?);
//! std::thread::spawn(move || {
//!     for mut conn in listener.incoming().flatten() {
//!         let mut buf = [0; 4096];
//!         let _ = conn.read(&mut buf); // the request fits (a small body)
//!         let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
//!         let _ = conn.write_all(answer);
//!     }
//! });
//!
//! let mut config = DeliverConfig::default();
//! config.allow_private_network = true; // the SSRF guard refuses loopback otherwise
//! let deliverer = Deliverer::new(config);
//! let mut request =
//!     DeliveryRequest::new(7, uuid::Uuid::new_v4(), EventType::Cron, &url, br#"{}"#.to_vec());
//! request.secret = Some("s3cret".into()); // signed: X-Djinn-CI-Signature
//! let attempt = deliverer.deliver(&request);
//! assert_eq!(attempt.response_status, Some(200));
//! let now = time::OffsetDateTime::now_utc();
//! assert_eq!(RetryPolicy::default().decide(&attempt, 1, None, now).outcome, Outcome::Delivered);
//!
//! let outbox = MemoryOutbox::new();
//! outbox.push(request.clone());
//! outbox.push(request);
//! let worker = Worker::new(&outbox, deliverer, RetryPolicy::default(), WorkerConfig::default());
//! let stats = worker.run_until_idle();
//! assert_eq!(stats.delivered, 2);
//! assert!(outbox.tasks().iter().all(|task| task.state == TaskState::Delivered));
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Headers
//!
//! Every POST carries, in this order: `Accept: */*`,
//! `Content-Type: application/json; charset=utf-8`, `User-Agent: Djinn-CI-Hook`,
//! `X-Djinn-CI-Event: <event name>`, `X-Djinn-CI-Hook-ID: <webhook id>`,
//! `X-Djinn-CI-Delivery: <event uuid>` (new: the same on every retry and redelivery, for
//! de-duplication), then, when the webhook has a secret,
//! `X-Djinn-CI-Signature: sha256=<hex HMAC-SHA256 of the body>`, and, when it also has Standard
//! Webhooks on, `webhook-id` (the event uuid, stable across retries), `webhook-timestamp`
//! (the attempt's time, Unix seconds) and `webhook-signature` (`v1,<base64>`; during a secret
//! rotation's overlap `v1,<new> v1,<previous>`, while `X-Djinn-CI-Signature` carries only the
//! new secret's). The Standard
//! Webhooks key is the base64 after `whsec_` when the secret starts with `whsec_`, else the
//! secret's UTF-8 bytes. ureq adds `Host` and `Content-Length`; no `Accept-Encoding` is sent.
//!
//! # Redirects, statuses, bodies
//!
//! Redirects are never followed (they could carry a signed payload elsewhere): a 3xx is a failed
//! attempt. Any status is recorded as a response. The response body is read up to
//! `max_response_body` (64 KiB) plus one byte, then the connection is dropped: an endless body
//! costs at most that, and the overall `timeout` bounds a slow one.
//!
//! # TLS
//!
//! `https` URLs are verified against the webpki (Mozilla) roots when the webhook's `ssl` is on.
//! With `ssl` off, an `https` URL is still encrypted but its certificate is not verified, and
//! the attempt's `tls_verification_skipped` says so. `ssl` does nothing to `http` URLs.
//!
//! # Credentials in URLs
//!
//! A payload URL's user-info (`https://user:password@host/`) is sent as basic auth, and never
//! kept: the attempt's `url` and `error` carry `***` in its place
//! ([`djinn_hook_payload::redact_userinfo`]).
//!
//! # SSRF guard
//!
//! Addresses are checked after name resolution, at connect time, so a public name resolving to
//! `127.0.0.1` is refused like the literal; see [`SsrfGuard`] for the ranges. A refusal is a
//! failed attempt with outcome [`AttemptOutcome::Blocked`] and an error naming the address;
//! nothing is sent. Proxies are never used (they would resolve names past the guard).
//!
//! # Retries
//!
//! See [`RetryPolicy`] for the exact schedule semantics, `Retry-After` and disabling.
#![warn(missing_docs)]

/// The crate README's example, compiled and run as a doctest so it cannot drift.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
struct ReadmeDoctests;

mod coalesce;
mod deliver;
mod engine;
mod error;
mod once;
mod retry;
mod ssrf;
mod worker;

pub use crate::{
    deliver::{DEFAULT_USER_AGENT, DeliverConfig, Deliverer},
    engine::{Engine, Prepared},
    error::DeliverError,
    retry::{RetryPolicy, THROTTLE_MIN},
    ssrf::{METADATA_ADDRESSES, METADATA_HOSTS, SsrfGuard},
    worker::breaker::{BreakerConfig, BreakerState, BreakerStatus},
    worker::limits::{LimitReason, LimitStatus, MAX_PAUSE},
    worker::{BreakerMonitor, LimitMonitor, Stats, Worker, WorkerConfig, WorkerEvent, WorkerWaker},
};
/// The types this crate shares with the store, defined once in `djinn-hook-outbox` and
/// re-exported here so a user of the deliverer alone needs one crate.
pub use djinn_hook_outbox::{
    Attempt, AttemptOutcome, ClaimRequest, Claimed, Clock, Completion, CustomHeader, Decision,
    Deferral, DeliveryRequest, Destination, LeaseToken, LimitNote, ManualClock, Outbox,
    OutboxError, Outcome, PutOff, ReducedLimit, Release, Shutdown, SystemClock, Task, TraceParent,
    WebhookSecret,
};
