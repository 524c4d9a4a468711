//! Test support written once for the workspace's tests (a `dev-dependency` of each crate that
//! uses it; never published):
//!
//! - [`wait_for`] / [`wait_until`]: wait for a condition, failing the test after a deadline
//!   (instead of sleeping a fixed time and hoping); [`wait_for_ok`] returns what it waited for
//!   and shows what it saw instead if it times out; `wait_for_async` (feature `tokio`) for
//!   async tests, whose condition may itself await.
//! - [`ScratchDatabase`]: a throw-away PostgreSQL database on the server named by
//!   `DJINN_TEST_POSTGRES_URL` ([`POSTGRES_URL`]), dropped with the value.
//! - [`Peer`]: receivers on 127.0.0.1 that misbehave in each way the isolation tests need
//!   (hang, reset, trickle, answer slowly, throttle), and [`closed_port`], one that is down.
//!
//! The in-memory outbox is djinn-hook-outbox's `MemoryOutbox` (feature `memory`). This crate
//! depends on none of the workspace's crates, so any of them can use it in its own tests.
//!
//! ```
//! use std::time::Duration;
//! use djinn_hook_testkit::wait_until;
//!
//! let start = std::time::Instant::now();
//! wait_until(Duration::from_secs(5), "a millisecond to pass", || {
//!     start.elapsed() >= Duration::from_millis(1)
//! });
//! ```
#![warn(missing_docs)]

mod postgres;
mod receivers;
mod wait;

#[cfg(feature = "tokio")]
pub use crate::wait::wait_for_async;
pub use crate::{
    postgres::{POSTGRES_URL, ScratchDatabase, with_database},
    receivers::{Peer, closed_port},
    wait::{DEADLINE, wait_for, wait_for_ok, wait_until, wait_until_ok},
};
