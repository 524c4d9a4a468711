//! Where a [`Store`](crate::Store) reads the time: a [`Clock`] it holds, the system's unless
//! one is given ([`Store::with_clock`](crate::Store::with_clock)). The clock types are
//! djinn-hook-outbox's, the worker's too, so one [`ManualClock`] moves both.
//!
//! A clock on the store, rather than a `now` argument on each method that needs one: the
//! methods that read the time (accepting events, rotating a secret, redelivering, pruning,
//! handing back claims, stamping what they create) are called from the server, the CLI and
//! the worker, whose callers have no time of their own to give, and a `now` on each would let
//! two calls of one process disagree on it. The methods that schedule against a time the
//! caller chose still take it (`claim`, `take_probe`, `defer`, `success_rates`). The backends
//! never read the time: the public `Store` reads its clock once per call and passes `now`
//! down, so a test with a [`ManualClock`] moves time for both backends alike, and never
//! sleeps to let it pass.

pub use djinn_hook_outbox::{Clock, ManualClock, SystemClock};
