//! [`WorkerConfig`]: how a worker runs.

use std::time::Duration;

use super::breaker::BreakerConfig;
#[cfg(doc)]
use crate::worker::{Worker, WorkerEvent, WorkerWaker};

/// How a [`Worker`] runs. [`WorkerConfig::default`] gives the defaults documented on each field;
/// change one by setting it (`config.concurrency = 8`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerConfig {
    /// Delivery threads free to work at any time: they claim, commit, sign and send to
    /// receivers known to answer quickly (the others wait in the worker's evented engine). A
    /// delivery that waits on its receiver for long (over 100 ms) no longer counts among them,
    /// and the pool adds a thread in its place. Default 4.
    pub concurrency: usize,
    /// Most deliveries in the worker's evented engine at once (to receivers not known to answer
    /// quickly; each a socket and a few KiB): once this many are there, a webhook with
    /// deliveries there waits in the queue for one of them to end, while the threads stay
    /// with the others (a first contact among them). Also the most
    /// slow deliveries on threads, beside the `concurrency` working ones (the pool has at most
    /// `max_deliveries + concurrency` threads; each a small stack, a socket and ureq's
    /// buffers). Default 512.
    pub max_deliveries: usize,
    /// Lease asked for each claim. It should outlast a delivery's overall timeout plus its wait
    /// in the queue (see `queue_depth.rs`), or the task may be claimed again. A task
    /// with less than a quarter of its lease left when a thread takes it from the queue is not
    /// delivered under it (it is left to be claimed again), so a delivery that starts can finish
    /// and be committed before the lease runs out. Default 5 min.
    pub lease: Duration,
    /// How long to wait before claiming again when nothing was due, unless woken earlier by a
    /// [`WorkerWaker`]. Default 1 s.
    pub poll_interval: Duration,
    /// Most tasks asked for in one `claim` (a claim refills the worker's queue: see
    /// [`Worker`](crate::Worker)). Default 256.
    pub claim_batch: usize,
    /// Most completions committed in one `complete`. Default 256.
    pub complete_batch: usize,
    /// Request bodies claimed and not yet committed, in bytes, beyond which the worker claims
    /// no more: a claim asks for as many tasks as fit at the average size of the last claim's
    /// bodies (at least one). Default 64 MiB.
    pub max_in_flight_bytes: usize,
    /// Times a failing `complete` is retried (with backoff from 100 ms doubling to 5 s) before
    /// its batch is abandoned (reported as [`WorkerEvent::Abandoned`]; the tasks' leases expire
    /// and they are delivered again). Default 10 (about half a minute).
    pub complete_retries: u32,
    /// Most deliveries of one webhook at once, for webhooks without their own cap. `None`
    /// (the default): half the threads, rounded up. Why half: one receiver that hangs holds
    /// at most half the threads for the short while before its breaker opens, and the other
    /// half keeps every other webhook moving. A lone busy webhook then gets half the threads:
    /// an install with one webhook may raise this to `concurrency`.
    pub max_in_flight_per_hook: Option<usize>,
    /// When a destination's circuit breaker opens, and for how long.
    pub breaker: BreakerConfig,
}

impl Default for WorkerConfig {
    fn default() -> WorkerConfig {
        WorkerConfig {
            concurrency: 4,
            max_deliveries: 512,
            lease: Duration::from_secs(300),
            poll_interval: Duration::from_secs(1),
            claim_batch: 256,
            complete_batch: 256,
            max_in_flight_bytes: 64 * 1024 * 1024,
            complete_retries: 10,
            max_in_flight_per_hook: None,
            breaker: BreakerConfig::default(),
        }
    }
}

impl WorkerConfig {
    /// Most deliveries of one webhook at once for webhooks without their own cap.
    pub fn hook_cap(&self) -> usize {
        self.max_in_flight_per_hook
            .unwrap_or(self.concurrency.div_ceil(2))
            .max(1)
    }
}
