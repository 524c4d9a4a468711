//! The worker loop over a store's [`Outbox`]: [`Worker`] (what it does and promises is
//! documented there), its [`WorkerConfig`], what it reports ([`Stats`], [`WorkerEvent`]) and
//! its handles ([`WorkerWaker`], [`BreakerMonitor`], [`LimitMonitor`]).
//!
//! How it is built: `schedule.rs` is the scheduling as a state machine (phases, claims,
//! commits; events in, the next step out), tested without threads; `pool.rs` the delivery
//! threads that carry its steps out, and the pool keeper; `claim.rs`, `record.rs` and
//! `commit.rs` what a claim, a finished delivery and a commit do to the shared `state.rs`;
//! `shared_breakers.rs` the breakers shared through the outbox. What they use:
//! `hook_queue.rs` (the queue per webhook, round-robin), `queue_depth.rs` (its bounds),
//! `limits.rs` (the adaptive limit per webhook), `breaker.rs` (the breaker per destination)
//! and `store_thread.rs` (the one thread that calls the outbox).

pub(crate) mod breaker;
mod claim;
mod commit;
mod config;
mod handles;
mod hook_queue;
pub(crate) mod limits;
mod pool;
mod queue_depth;
mod record;
mod report;
mod schedule;
mod shared_breakers;
mod state;
mod store_thread;

use std::fmt;
use std::sync::{Arc, Mutex};

use djinn_hook_outbox::{Clock, Outbox, Shutdown};

pub use config::WorkerConfig;
pub use handles::{BreakerMonitor, LimitMonitor, WorkerWaker};
pub use report::{Stats, WorkerEvent};

use crate::deliver::{DeliverConfig, Deliverer};
use crate::retry::RetryPolicy;
#[cfg(doc)]
use breaker::BreakerConfig;
use report::Observer;
use state::{Shared, WorkerClock, lock};

/// Claims tasks from an [`Outbox`], delivers them on a pool of threads and commits the results
/// in batches.
///
/// ```text
///  Outbox::claim ─▶ queue ─▶ pool of threads: deliver + decide ─▶ pending ─▶ Outbox::complete
/// ```
///
/// - **Waiting is cheap**: `concurrency` threads are always free to work. A delivery to a
///   webhook whose last attempt was not answered within 100 ms (a first contact, a slow or
///   dead receiver) goes to an evented [`Engine`](crate::Engine) (one reactor thread; a socket
///   and a few KiB per delivery, no thread), up to `max_deliveries` at once; beyond that, a
///   webhook with deliveries there waits in the queue, and one with none there takes a
///   thread. A delivery on a thread whose receiver turns slow (over 100 ms) hands its place
///   to a new thread with a small stack, up to `max_deliveries` of them. Threads beyond the
///   pool's need end after 2 s idle.
///
/// - **No hand-off per delivery**: the delivery threads claim and commit themselves (each call runs
///   on one store thread while the calling thread waits: the store's allocations stay in one
///   allocator arena). A thread that finds the queue at or below its low-water mark (the rule is in
///   `queue_depth.rs`) refills it to twice that with one claim (capped by `claim_batch`), so claims
///   are big and rare and the queue outlasts a claim waiting for a commit; a claim that brings
///   fewer than it asked for (the store had no more due) is not repeated before the poll interval,
///   a wake-up or (until idle) a commit. A thread that finishes a delivery adds its completion to
///   the pending batch and, unless a commit is already running, commits the whole batch.
/// - **Bounded memory, back-pressure**: at most twice the high-water mark of tasks, and about
///   `max_in_flight_bytes` of bodies, are in flight (claimed, not yet committed); slow
///   receivers or a slow store slow claiming down instead of filling a queue.
/// - **Group commit**: what completes while a commit runs is committed together in the next
///   `complete` call (up to `complete_batch`), so the store pays one durable commit per batch,
///   not per delivery.
/// - **Never the same task twice at once**: a task claimed again while still in flight (its
///   lease ran out) is not delivered again; its completion carries the newest lease token. A
///   queued task with less than a quarter of its lease left is not delivered under it (left to
///   be claimed again), so a delivery that starts can finish and be committed in time.
/// - **Failures of the store**: a failed `claim` is reported and retried after `poll_interval`;
///   a failed `complete` is reported and retried with backoff, and after `complete_retries` the
///   batch is reported as [`WorkerEvent::Abandoned`] (the tasks' leases then expire and they are
///   delivered again: at least once, never silently lost).
/// - **Isolation**: the queue is one queue per webhook, taken round-robin; at most
///   `max_in_flight_per_hook` (or the webhook's own cap) of one webhook's tasks are delivered at
///   once, less while its receiver times out or answers slowly (an adaptive limit, reported by
///   [`limits`](Self::limits)), and none while it is paused after a 429 or 503 (its tasks put off,
///   their attempts not counted); the store's claim is fair and capped the same way. A destination
///   whose circuit breaker is open has its due tasks put off without an attempt wherever they are
///   found (when claimed, queued, or taken by a thread; see [`BreakerConfig`]). Breakers are
///   shared through the outbox by every process on one store: openings are reported
///   ([`Outbox::breaker_opened`]), those of others are read after claims
///   ([`Outbox::open_breakers`]), and a probe goes out only once the outbox grants it
///   ([`Outbox::take_probe`]); [`breakers`](Self::breakers) reports this worker's copy.
/// - **Waking up**: when nothing is due the worker claims again after `poll_interval`, or as
///   soon as a [`WorkerWaker`] (from [`waker`](Self::waker)) is woken, e.g. right after new
///   events were committed.
/// - **Stopping**: [`run`](Self::run) stops claiming the moment its [`Shutdown`] is set (its
///   waiting threads are woken, no polling), hands the queued tasks back to the outbox
///   unattempted ([`Outbox::release`]: due again at once), lets the deliveries under way finish
///   (each within its timeout), commits them (a failed commit is retried without waiting out
///   its back-off) and returns.
///
/// Runs of one worker do not overlap: a `run` or `run_until_idle` called while another is
/// running waits for it to return.
pub struct Worker<'o, O: Outbox> {
    outbox: O,
    deliverer: Deliverer,
    policy: RetryPolicy,
    config: WorkerConfig,
    observer: Mutex<Option<Observer<'o>>>,
    shared: Arc<Shared>,
    clock: WorkerClock,
}

impl<O: Outbox> fmt::Debug for Worker<'_, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("deliverer", &self.deliverer)
            .field("policy", &self.policy)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<'o, O: Outbox> Worker<'o, O> {
    /// A worker. `concurrency`, `max_deliveries`, `claim_batch` and `complete_batch` of 0
    /// count as 1.
    pub fn new(
        outbox: O,
        deliverer: Deliverer,
        policy: RetryPolicy,
        config: WorkerConfig,
    ) -> Worker<'o, O> {
        let shared = Arc::new(Shared::new(config.breaker.clone()));
        Worker {
            outbox,
            deliverer,
            policy,
            config: WorkerConfig {
                concurrency: config.concurrency.max(1),
                max_deliveries: config.max_deliveries.max(1),
                claim_batch: config.claim_batch.max(1),
                complete_batch: config.complete_batch.max(1),
                ..config
            },
            observer: Mutex::new(None),
            shared,
            clock: WorkerClock::default(),
        }
    }

    /// A worker over `outbox` as `config` says, with the default [`RetryPolicy`] and a
    /// [`Deliverer`] made from `deliver`, its pool of idle connections raised to fit the
    /// worker's threads (at least one per thread for a receiver, and `max(threads, 64)` in
    /// all), so that no thread opens a new connection for each delivery. The usual way to
    /// build a worker; [`new`](Self::new) takes every part.
    pub fn with_config(outbox: O, config: WorkerConfig, deliver: DeliverConfig) -> Worker<'o, O> {
        let threads = config.concurrency.max(1);
        let deliverer = Deliverer::new(DeliverConfig {
            max_idle_connections_per_host: deliver.max_idle_connections_per_host.max(threads),
            max_idle_connections: deliver.max_idle_connections.max(threads.max(64)),
            ..deliver
        });
        Worker::new(outbox, deliverer, RetryPolicy::default(), config)
    }

    /// Calls `observer` for every [`WorkerEvent`] (from the worker's threads, one at a time).
    pub fn with_observer(self, observer: impl FnMut(WorkerEvent<'_>) + Send + 'o) -> Self {
        *lock(&self.observer) = Some(Box::new(observer));
        self
    }

    /// Reads the time from `clock` (the system's by default), e.g. a
    /// [`ManualClock`](crate::ManualClock) that a test moves instead of sleeping (the store's
    /// clock too, so one handle moves both): poll intervals, pauses, breakers, leases and the
    /// pool's timings all follow it. The deliveries themselves (their timeouts, the attempts'
    /// times) keep the real time.
    pub fn with_clock(mut self, clock: impl Clock + 'static) -> Self {
        let clock: Arc<dyn Clock> = Arc::new(clock);
        // A waiting thread wakes when the clock is moved, to look at the time again.
        clock.wake_when_moved(std::task::Waker::from(Arc::new(state::WakeOnMove(
            Arc::downgrade(&self.shared),
        ))));
        self.clock = WorkerClock(Arc::clone(&clock));
        lock(&self.shared.state).clock = WorkerClock(clock);
        self
    }

    /// The outbox.
    pub fn outbox(&self) -> &O {
        &self.outbox
    }

    /// A handle that wakes this worker when it waits for due tasks (see [`WorkerWaker`]).
    pub fn waker(&self) -> WorkerWaker {
        WorkerWaker {
            shared: Arc::clone(&self.shared),
        }
    }

    /// A handle that reports this worker's circuit breakers (see [`BreakerMonitor`]).
    pub fn breakers(&self) -> BreakerMonitor {
        BreakerMonitor {
            shared: Arc::clone(&self.shared),
        }
    }

    /// A handle that reports this worker's adaptive limits per webhook (see [`LimitMonitor`]).
    pub fn limits(&self) -> LimitMonitor {
        LimitMonitor {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Runs until nothing is due and nothing is in flight (a claim returned no task while no
    /// attempt was pending), or a claim failed while nothing was in flight.
    pub fn run_until_idle(&self) -> Stats {
        self.run_inner(None)
    }

    /// Runs until `stop` is set; then claims nothing more, hands back the queued tasks no
    /// thread has started, finishes and commits the deliveries under way, and returns.
    pub fn run(&self, stop: &Shutdown) -> Stats {
        self.run_inner(Some(stop))
    }
}
