//! The worker loop over an in-memory `Outbox`: retries, exactly-once delivery under
//! concurrency, stopping while deliveries are in flight, a failing store.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use djinn_hook_deliver::{
    ClaimRequest, Claimed, Completion, DeliveryRequest, LeaseToken, ManualClock, Outbox,
    OutboxError, Outcome, PutOff, Release, RetryPolicy, Shutdown, Worker, WorkerConfig,
    WorkerEvent,
};
use djinn_hook_outbox::{MemoryOutbox, MemoryTask, TaskState};
use djinn_hook_sign::headers;
use djinn_hook_testkit::wait_for;
use time::OffsetDateTime;

use crate::server::{Reply, Server};
use crate::{local_deliverer, request};

/// djinn-hook-outbox's `MemoryOutbox` (the store's rules: leases, caps, attempts counted per
/// claim, completions applied only under the current lease), with what these tests count
/// around it: claims and their sizes, completion batches, releases, completions under a lease
/// no longer current, and completes that fail on purpose.
#[derive(Default)]
struct MemOutbox {
    inner: MemoryOutbox,
    /// Held across each call to `inner`, so a count and the call it counts are one step.
    state: Mutex<State>,
    /// `complete` fails this many times first.
    fail_completes: AtomicUsize,
}

#[derive(Default)]
struct State {
    /// Tasks handed out by claims, over all claims.
    leased: usize,
    /// The token of the newest claim that handed out tasks.
    newest_lease: Option<LeaseToken>,
    completed: Vec<Completion>,
    batches: Vec<usize>,
    claims: usize,
    /// Sizes of the claims that returned tasks, in order.
    claim_sizes: Vec<usize>,
    /// Tasks released (handed back by a stopping worker).
    released: usize,
    /// Completions whose lease was no longer current.
    late: usize,
}

impl MemOutbox {
    fn with_tasks(requests: impl IntoIterator<Item = DeliveryRequest>) -> MemOutbox {
        let outbox = MemOutbox::default();
        for request in requests {
            outbox.add(request);
        }
        outbox
    }

    /// Adds a task, due now; its id (1, 2, ...).
    fn add(&self, request: DeliveryRequest) -> i64 {
        let _state = self.state.lock().unwrap();
        self.inner.push(request)
    }

    fn completed(&self) -> Vec<Completion> {
        self.state.lock().unwrap().completed.clone()
    }

    fn task(&self, task_id: i64) -> MemoryTask {
        let tasks = self.inner.tasks();
        tasks.into_iter().find(|t| t.task_id == task_id).unwrap()
    }

    /// How task `task_id` ended, if it has.
    fn done(&self, task_id: i64) -> Option<Outcome> {
        match self.task(task_id).state {
            TaskState::Delivered => Some(Outcome::Delivered),
            TaskState::Failed => Some(Outcome::Failed),
            _ => None,
        }
    }
}

impl Outbox for MemOutbox {
    fn claim(&self, claim: &ClaimRequest) -> Result<Claimed, OutboxError> {
        let mut state = self.state.lock().unwrap();
        let claimed = self.inner.claim(claim)?;
        state.claims += 1;
        if let Some(first) = claimed.tasks.first() {
            state.claim_sizes.push(claimed.tasks.len());
            state.leased += claimed.tasks.len();
            state.newest_lease = Some(first.lease);
        }
        Ok(claimed)
    }

    fn put_off(&self, put_off: &[PutOff]) -> Result<(), OutboxError> {
        let _state = self.state.lock().unwrap();
        self.inner.put_off(put_off)
    }

    fn release(&self, tasks: &[Release]) -> Result<(), OutboxError> {
        let mut state = self.state.lock().unwrap();
        state.released += tasks.len();
        self.inner.release(tasks)
    }

    fn complete(&self, done: &[Completion]) -> Result<(), OutboxError> {
        if self
            .fail_completes
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(OutboxError::new("disk on fire"));
        }
        let mut state = self.state.lock().unwrap();
        let tasks = self.inner.tasks();
        state.late += done
            .iter()
            .filter(|c| {
                let task = tasks.iter().find(|t| t.task_id == c.task_id);
                task.is_none_or(|t| t.lease != Some(c.lease))
            })
            .count();
        state.batches.push(done.len());
        state.completed.extend(done.iter().cloned());
        self.inner.complete(done)
    }
}

/// A worker polling every 20 ms; its one webhook may use every thread (the tests here are
/// about one webhook; `isolation.rs` tests the caps).
fn fast_config(concurrency: usize) -> WorkerConfig {
    let mut config = WorkerConfig::default();
    config.concurrency = concurrency;
    config.poll_interval = Duration::from_millis(20);
    config.max_in_flight_per_hook = Some(concurrency);
    config
}

/// Retries after 0 s and 50 ms, no jitter.
fn quick_policy() -> RetryPolicy {
    let mut policy = RetryPolicy::default();
    policy.schedule = vec![Duration::ZERO, Duration::from_millis(50)];
    policy.jitter = 0.0;
    policy
}

#[test]
fn server_error_then_success_is_retried() {
    let server = Server::start(|_, n| Reply::status(if n == 0 { 500 } else { 200 }));
    let outbox = MemOutbox::with_tasks([request(&server.url())]);
    let worker = Worker::new(&outbox, local_deliverer(), quick_policy(), fast_config(2));
    let stats = worker.run_until_idle();

    assert_eq!(stats.attempts, 2);
    assert_eq!(stats.retries_scheduled, 1);
    assert_eq!(stats.delivered, 1);
    assert_eq!(stats.failed, 0);
    let completed = outbox.completed();
    assert_eq!(completed.len(), 2);
    assert_eq!(completed[0].attempt.response_status, Some(500));
    assert_eq!(completed[0].attempt.attempt, 1);
    assert!(matches!(completed[0].decision.outcome, Outcome::RetryAt(_)));
    assert_eq!(completed[1].attempt.response_status, Some(200));
    assert_eq!(completed[1].attempt.attempt, 2);
    assert_eq!(completed[1].decision.outcome, Outcome::Delivered);
    assert_eq!(outbox.done(1), Some(Outcome::Delivered));
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0].header(headers::DELIVERY),
        requests[1].header(headers::DELIVERY)
    );
}

#[test]
fn retries_run_out_then_the_task_fails() {
    let server = Server::always(Reply::status(500));
    let outbox = MemOutbox::with_tasks([request(&server.url())]);
    // The first retry is immediate; the second is due in an hour, made due by hand.
    let mut policy = quick_policy();
    policy.schedule = vec![Duration::ZERO, Duration::from_secs(3600)];
    let worker = Worker::new(&outbox, local_deliverer(), policy, fast_config(1));
    let stats = worker.run_until_idle();
    assert_eq!((stats.attempts, stats.retries_scheduled), (2, 2));
    assert!(outbox.done(1).is_none());
    outbox.inner.make_due(1);
    let stats = worker.run_until_idle();
    // Schedule of two retries: three attempts.
    assert_eq!(stats.attempts, 1);
    assert_eq!(stats.failed, 1);
    assert_eq!(server.request_count(), 3);
    assert_eq!(outbox.done(1), Some(Outcome::Failed));
}

#[test]
fn gone_through_the_worker_disables_and_stops() {
    let server = Server::always(Reply::status(410));
    let outbox = MemOutbox::with_tasks([request(&server.url())]);
    let worker = Worker::new(&outbox, local_deliverer(), quick_policy(), fast_config(1));
    let stats = worker.run_until_idle();
    assert_eq!(stats.attempts, 1);
    assert_eq!(stats.hooks_disabled, 1);
    assert_eq!(server.request_count(), 1);
    let completed = outbox.completed();
    assert!(completed[0].decision.disable_hook.is_some());
}

#[test]
fn many_tasks_are_each_delivered_exactly_once() {
    let active = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (active_in, peak_in) = (Arc::clone(&active), Arc::clone(&peak));
    let server = Server::start(move |_, _| {
        let now = active_in.fetch_add(1, Ordering::SeqCst) + 1;
        peak_in.fetch_max(now, Ordering::SeqCst);
        thread::sleep(Duration::from_millis(5));
        active_in.fetch_sub(1, Ordering::SeqCst);
        Reply::status(200)
    });
    let tasks = 120;
    let outbox = MemOutbox::with_tasks((0..tasks).map(|_| request(&server.url())));
    let mut seen = 0;
    // Completed events not yet followed by their BatchCommitted, and the batch sizes reported.
    let mut unannounced = 0;
    let mut announced = Vec::new();
    let worker = Worker::new(&outbox, local_deliverer(), quick_policy(), fast_config(8))
        .with_observer(|event| match event {
            WorkerEvent::Completed(_) => {
                seen += 1;
                unannounced += 1;
            }
            WorkerEvent::BatchCommitted { attempts } => {
                assert_eq!(
                    attempts, unannounced,
                    "a batch's Completed events come first"
                );
                announced.push(attempts);
                unannounced = 0;
            }
            _ => {}
        });
    let stats = worker.run_until_idle();
    drop(worker);

    assert_eq!(stats.claimed, tasks);
    assert_eq!(stats.delivered, tasks);
    assert_eq!(seen, tasks);
    assert_eq!(unannounced, 0);
    assert_eq!(announced.len() as u64, stats.batches);
    let mut counts: HashMap<String, usize> = HashMap::new();
    for got in server.requests() {
        *counts
            .entry(got.header(headers::DELIVERY).unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(counts.len(), tasks as usize);
    assert!(counts.values().all(|&n| n == 1));
    assert!(peak.load(Ordering::SeqCst) > 1, "no concurrency");
    assert!(peak.load(Ordering::SeqCst) <= 8);
    let state = outbox.state.lock().unwrap();
    assert_eq!(state.completed.len(), tasks as usize);
    assert_eq!(state.batches.iter().sum::<usize>(), tasks as usize);
    assert_eq!(state.batches, announced);
    assert!(
        outbox
            .inner
            .tasks()
            .iter()
            .all(|task| task.state == TaskState::Delivered)
    );
    // Claims come in batches: the queue is refilled (to 4 x concurrency) only once it is down to
    // 2 x. A claim may bring fewer than asked (the webhook's cap on live leases, which counts
    // what is still being delivered or committed, and so depends on how fast commits go), so
    // the bound is on the claims' number and loose enough for a loaded machine: one claim per
    // task, the broken case, would be 120; batches of two or more on average, at most 60 (on a
    // quiet machine they are 8 to 32).
    assert!(state.claim_sizes.iter().all(|&n| n > 0));
    assert!(
        state.claim_sizes.len() <= tasks as usize / 2,
        "{:?}",
        state.claim_sizes
    );
}

#[test]
fn stop_finishes_deliveries_under_way_and_hands_back_the_queue() {
    let server = Server::always(Reply::After(
        Duration::from_millis(300),
        Box::new(Reply::status(200)),
    ));
    let outbox = MemOutbox::with_tasks((0..40).map(|_| request(&server.url())));
    let stop = Shutdown::new();
    let worker = Worker::new(&outbox, local_deliverer(), quick_policy(), fast_config(4));
    let stats = thread::scope(|scope| {
        let running = scope.spawn(|| worker.run(&stop));
        wait_for("four deliveries under way", || server.request_count() >= 4);
        stop.stop();
        running.join().unwrap()
    });

    let completed = outbox.completed();
    // What was under way was delivered and committed; what was queued was handed back without
    // an attempt (due again, its claim not counted); nothing more was sent.
    assert!(stats.attempts >= 4);
    assert!(stats.released > 0, "{stats:?}");
    assert_eq!(stats.attempts + stats.released, stats.claimed);
    assert_eq!(completed.len() as u64, stats.attempts);
    assert_eq!(server.request_count() as u64, stats.attempts);
    assert!(completed.iter().all(|c| c.attempt.is_success()));
    let state = outbox.state.lock().unwrap();
    assert_eq!(state.released as u64, stats.released);
    let tasks = outbox.inner.tasks();
    let waiting: Vec<&MemoryTask> = tasks
        .iter()
        .filter(|t| t.state == TaskState::Pending)
        .collect();
    assert_eq!(waiting.len() as u64, 40 - stats.attempts);
    assert!(
        waiting
            .iter()
            .all(|t| t.lease.is_none() && t.attempts == 0 && t.due_at <= OffsetDateTime::now_utc()),
        "every task not attempted is claimable at once, its attempt not counted"
    );
}

#[test]
fn run_without_tasks_waits_for_work_until_stopped() {
    let server = Server::always(Reply::status(200));
    let outbox = MemOutbox::default();
    let stop = Shutdown::new();
    let worker = Worker::new(&outbox, local_deliverer(), quick_policy(), fast_config(2));
    let stats = thread::scope(|scope| {
        let running = scope.spawn(|| worker.run(&stop));
        // Work arrives while the worker polls: after it has found nothing twice.
        wait_for("the worker polling twice", || {
            outbox.state.lock().unwrap().claims >= 2
        });
        assert_eq!(outbox.add(request(&server.url())), 1);
        wait_for("the task delivered", || outbox.done(1).is_some());
        stop.stop();
        running.join().unwrap()
    });
    assert_eq!(stats.delivered, 1);
    assert!(outbox.state.lock().unwrap().claims > 2);
}

#[test]
fn a_failing_complete_is_retried_and_reported() {
    let server = Server::always(Reply::status(200));
    let outbox = MemOutbox::with_tasks([request(&server.url())]);
    outbox.fail_completes.store(2, Ordering::SeqCst);
    let mut failures = Vec::new();
    let worker = Worker::new(&outbox, local_deliverer(), quick_policy(), fast_config(1))
        .with_observer(|event| {
            if let WorkerEvent::CompleteFailed { error, batch, .. } = event {
                failures.push((error.to_string(), batch));
            }
        });
    let stats = worker.run_until_idle();
    drop(worker);
    assert_eq!(stats.complete_errors, 2);
    assert_eq!(stats.delivered, 1);
    assert_eq!(stats.abandoned, 0);
    assert_eq!(failures, vec![("disk on fire".to_owned(), 1); 2]);
    assert_eq!(outbox.completed().len(), 1);
}

#[test]
fn a_complete_that_keeps_failing_is_abandoned_and_reported() {
    let server = Server::always(Reply::status(200));
    let outbox = MemOutbox::with_tasks([request(&server.url())]);
    outbox.fail_completes.store(usize::MAX, Ordering::SeqCst);
    let mut abandoned = 0;
    let mut config = fast_config(1);
    config.complete_retries = 1;
    let worker =
        Worker::new(&outbox, local_deliverer(), quick_policy(), config).with_observer(|event| {
            if let WorkerEvent::Abandoned(batch) = event {
                abandoned += batch.len();
            }
        });
    let stats = worker.run_until_idle();
    drop(worker);
    assert_eq!(stats.complete_errors, 2);
    assert_eq!(stats.abandoned, 1);
    assert_eq!(stats.attempts, 0);
    assert_eq!(abandoned, 1);
    assert!(outbox.completed().is_empty());
}

#[test]
fn a_task_whose_lease_runs_out_in_flight_is_not_delivered_twice() {
    let server = Server::always(Reply::After(
        Duration::from_millis(300),
        Box::new(Reply::status(200)),
    ));
    let outbox = MemOutbox::with_tasks([request(&server.url())]);
    let mut config = fast_config(2);
    config.lease = Duration::from_millis(50);
    let worker = Worker::new(&outbox, local_deliverer(), quick_policy(), config);
    let stats = worker.run_until_idle();
    assert_eq!(server.request_count(), 1);
    assert_eq!(stats.claimed, 1);
    assert_eq!(stats.delivered, 1);
    let state = outbox.state.lock().unwrap();
    // Claimed again (new lease tokens) while in flight; completed with the newest token, so
    // not a late completion.
    assert!(state.leased > 1, "never re-claimed");
    assert_eq!(state.late, 0, "completed under an old lease");
    assert_eq!(Some(state.completed[0].lease), state.newest_lease);
}

#[test]
fn a_task_whose_lease_ran_out_in_the_queue_is_claimed_again_before_it_is_delivered() {
    // One thread, five tasks claimed at once, leases of 300 ms, deliveries of 700 ms: the tasks
    // queued behind the first outlive their leases there. Delivering one under its expired
    // lease could deliver it twice (another worker may have claimed it); the receiver checks,
    // as each request arrives, that its task's current lease holds.
    let outbox: Arc<std::sync::OnceLock<Arc<MemOutbox>>> = Arc::default();
    let unleased = Arc::new(AtomicUsize::new(0));
    let server = {
        let (outbox, unleased) = (Arc::clone(&outbox), Arc::clone(&unleased));
        Server::start(move |received, _| {
            let id: i64 = received.header(headers::HOOK_ID).unwrap().parse().unwrap();
            // Task `id` is webhook `id`'s (pushed in that order); while leased, it is due
            // again when its lease runs out.
            let task = outbox.get().unwrap().task(id);
            if task.lease.is_none() || OffsetDateTime::now_utc() >= task.due_at {
                unleased.fetch_add(1, Ordering::SeqCst);
            }
            Reply::After(Duration::from_millis(700), Box::new(Reply::status(200)))
        })
    };
    let tasks = (1..=5).map(|id| {
        let mut request = request(&server.url());
        request.hook_id = id;
        request
    });
    let outbox = Arc::clone(outbox.get_or_init(|| Arc::new(MemOutbox::with_tasks(tasks))));
    // A delivery starts with at least a quarter of its lease left, so the receiver's check has
    // a margin of at least 75 ms.
    let mut config = fast_config(1);
    config.lease = Duration::from_millis(300);
    let worker = Worker::new(&*outbox, local_deliverer(), quick_policy(), config);
    let stats = worker.run_until_idle();
    assert_eq!(server.request_count(), 5, "each task delivered once");
    assert_eq!(stats.delivered, 5);
    assert_eq!(
        unleased.load(Ordering::SeqCst),
        0,
        "delivered without a lease"
    );
    let state = outbox.state.lock().unwrap();
    assert_eq!(state.claim_sizes[0], 4, "the first claim fills the queue");
    assert!(state.claim_sizes.len() > 1, "never claimed again");
}

#[test]
fn claims_stop_at_the_in_flight_byte_budget() {
    // Bodies of 26 bytes and a budget of 60: once a claim has shown the size of the bodies,
    // no claim brings more than fits (2), and none is made while the budget is used up.
    let server = Server::always(Reply::After(
        Duration::from_millis(5),
        Box::new(Reply::status(200)),
    ));
    let outbox = MemOutbox::with_tasks((0..12).map(|_| request(&server.url())));
    let body = request(&server.url()).body.len();
    assert_eq!(body, 26);
    let mut config = fast_config(2);
    config.max_in_flight_bytes = 60;
    let worker = Worker::new(&outbox, local_deliverer(), quick_policy(), config);
    let stats = worker.run_until_idle();
    assert_eq!(stats.delivered, 12);
    assert_eq!(server.request_count(), 12);
    let sizes = outbox.state.lock().unwrap().claim_sizes.clone();
    // The first claim knows no size yet: it fills the queue (8 for two threads).
    assert_eq!(sizes[0], 8, "{sizes:?}");
    assert!(sizes[1..].iter().all(|&n| n <= 2), "{sizes:?}");
}

/// An outbox whose second claim is slow: it runs while the only task is being delivered, finds
/// nothing (the task is leased), and the task's completion is committed right after it (the
/// worker makes its outbox calls one at a time, on its store thread).
struct SlowSecondClaim {
    inner: MemOutbox,
    claims: AtomicUsize,
}

impl Outbox for SlowSecondClaim {
    fn claim(&self, claim: &ClaimRequest) -> Result<Claimed, OutboxError> {
        if self.claims.fetch_add(1, Ordering::SeqCst) == 1 {
            thread::sleep(Duration::from_millis(100));
        }
        self.inner.claim(claim)
    }

    fn complete(&self, done: &[Completion]) -> Result<(), OutboxError> {
        self.inner.complete(done)
    }

    fn put_off(&self, put_off: &[PutOff]) -> Result<(), OutboxError> {
        self.inner.put_off(put_off)
    }
}

#[test]
fn run_until_idle_ends_once_the_last_completion_lands_after_an_empty_claim() {
    // An empty claim while a task is in flight must not end the run, nor make it wait out the
    // poll interval once that task's completion has landed: the commit makes it claim again
    // (and, finding nothing with nothing in flight, end). An earlier version compared with the
    // in-flight count seen after the claim and waited the whole poll interval.
    let server = Server::always(Reply::After(
        Duration::from_millis(20),
        Box::new(Reply::status(200)),
    ));
    let outbox = SlowSecondClaim {
        inner: MemOutbox::with_tasks([request(&server.url())]),
        claims: AtomicUsize::new(0),
    };
    // Claims of one task: the first is full, so the worker claims again while it is in flight.
    let mut config = fast_config(2);
    config.poll_interval = Duration::from_secs(5);
    config.claim_batch = 1;
    let worker = Worker::new(&outbox, local_deliverer(), quick_policy(), config);
    let started = Instant::now();
    let stats = worker.run_until_idle();
    let took = started.elapsed();
    assert_eq!(stats.delivered, 1);
    assert!(
        outbox.claims.load(Ordering::SeqCst) >= 3,
        "no claim after the commit"
    );
    assert!(took < Duration::from_secs(2), "waited {took:?} for nothing");
}

#[test]
fn a_waker_makes_an_idle_worker_claim_at_once() {
    let server = Server::always(Reply::status(200));
    let outbox = MemOutbox::default();
    let stop = Shutdown::new();
    let mut config = fast_config(2);
    config.poll_interval = Duration::from_secs(10);
    // The clock stands still: the poll interval never ends, so only the wake-up can make the
    // worker claim again.
    let worker = Worker::new(&outbox, local_deliverer(), quick_policy(), config)
        .with_clock(ManualClock::new());
    let waker = worker.waker();
    let stats = thread::scope(|scope| {
        let running = scope.spawn(|| worker.run(&stop));
        // The first claim found nothing (it counts itself and looks at the tasks under one
        // lock: the task added next is not in it).
        wait_for("the first claim", || {
            outbox.state.lock().unwrap().claims == 1
        });
        assert_eq!(outbox.add(request(&server.url())), 1);
        waker.wake();
        wait_for("the task delivered", || outbox.done(1).is_some());
        stop.stop();
        running.join().unwrap()
    });
    assert_eq!(stats.delivered, 1);
    assert_eq!(outbox.state.lock().unwrap().claims, 2);
}

#[test]
fn a_panicking_observer_ends_the_run_instead_of_hanging_it() {
    let server = Server::always(Reply::status(200));
    let outbox = MemOutbox::with_tasks((0..20).map(|_| request(&server.url())));
    let worker = Worker::new(&outbox, local_deliverer(), quick_policy(), fast_config(4))
        .with_observer(|event| {
            if let WorkerEvent::Completed(_) = event {
                panic!("observer bug");
            }
        });
    let started = Instant::now();
    let outcome =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| worker.run_until_idle()));
    assert!(outcome.is_err(), "the panic is not swallowed");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn one_webhook_never_has_more_than_its_cap_delivering_at_once() {
    // Per webhook: deliveries in progress now, and the most seen at once.
    let busy: Arc<Mutex<HashMap<String, (usize, usize)>>> = Arc::default();
    let server = Server::start({
        let busy = Arc::clone(&busy);
        move |received, _| {
            let hook = received.header(headers::HOOK_ID).unwrap().to_owned();
            {
                let mut busy = busy.lock().unwrap();
                let (now, most) = busy.entry(hook.clone()).or_default();
                *now += 1;
                *most = (*most).max(*now);
            }
            // A slow receiver: deliveries overlap.
            thread::sleep(Duration::from_millis(30));
            busy.lock().unwrap().get_mut(&hook).unwrap().0 -= 1;
            Reply::status(200)
        }
    });
    let requests = (0..40).map(|i| {
        let mut request = request(&server.url());
        request.hook_id = 1 + i % 2;
        request
    });
    let outbox = MemOutbox::with_tasks(requests);
    let mut config = fast_config(8);
    config.max_in_flight_per_hook = Some(2);
    let stats = Worker::new(&outbox, local_deliverer(), quick_policy(), config).run_until_idle();
    assert_eq!(stats.delivered, 40, "{stats:?}");
    let busy = busy.lock().unwrap();
    assert_eq!(busy.len(), 2);
    for (hook, (_, most)) in busy.iter() {
        assert!(*most <= 2, "webhook {hook}: {most} deliveries at once");
    }
}

/// A receiver that accepts every connection and never answers, counting the connections open
/// at once: at each accept, the connections held are read (and ignored) to see which the
/// client closed (on loopback, a client's close reaches the receiver before its next connect).
struct BlackHole {
    url: String,
    /// (most open at once, accepted in all).
    counts: Arc<Mutex<(usize, usize)>>,
}

impl BlackHole {
    fn start(expected: usize) -> BlackHole {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let counts: Arc<Mutex<(usize, usize)>> = Arc::default();
        thread::spawn({
            let counts = Arc::clone(&counts);
            move || {
                let mut held: Vec<std::net::TcpStream> = Vec::new();
                for _ in 0..expected {
                    let Ok((stream, _)) = listener.accept() else {
                        return;
                    };
                    stream.set_nonblocking(true).unwrap();
                    held.retain_mut(still_open);
                    held.push(stream);
                    let mut counts = counts.lock().unwrap();
                    counts.0 = counts.0.max(held.len());
                    counts.1 += 1;
                }
                // Held until the client closes them (a drop would reset them), within a bound.
                let until = Instant::now() + Duration::from_secs(30);
                while !held.is_empty() && Instant::now() < until {
                    held.retain_mut(still_open);
                    thread::sleep(Duration::from_millis(10));
                }
            }
        });
        BlackHole { url, counts }
    }
}

/// Reads what is waiting on a non-blocking `stream`; whether the peer has not closed it.
fn still_open(stream: &mut std::net::TcpStream) -> bool {
    let mut sink = [0_u8; 4096];
    loop {
        match std::io::Read::read(stream, &mut sink) {
            Ok(0) => return false,
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => return true,
            Err(_) => return false,
        }
    }
}

#[test]
fn deliveries_waiting_on_a_black_hole_are_bounded_by_max_deliveries() {
    let hole = BlackHole::start(12);
    let requests = (0..12).map(|_| {
        let mut request = request(&hole.url);
        request.timeout = Some(Duration::from_millis(300));
        request
    });
    let outbox = MemOutbox::with_tasks(requests);
    let mut config = fast_config(2);
    config.max_deliveries = 4;
    config.max_in_flight_per_hook = Some(12);
    // Every attempt is made: no breaker puts the hole's tasks off.
    config.breaker.failures = 0;
    let mut policy = RetryPolicy::default();
    policy.schedule = vec![Duration::from_secs(600)];
    let stats = Worker::new(&outbox, local_deliverer(), policy, config).run_until_idle();
    assert_eq!(stats.attempts, 12, "{stats:?}");
    assert_eq!(stats.retries_scheduled, 12, "{stats:?}");
    for completion in outbox.completed() {
        assert_eq!(
            completion.attempt.outcome,
            djinn_hook_deliver::AttemptOutcome::Timeout,
            "{:?}",
            completion.attempt
        );
    }
    let (most, accepted) = *hole.counts.lock().unwrap();
    assert_eq!(accepted, 12);
    // The webhook's cap (12) would allow all at once: the engine's bound holds them to 4,
    // and more than the 2 threads wait at once.
    assert!(most > 2 && most <= 4, "{most} deliveries waiting at once");
}
