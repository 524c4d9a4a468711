//! Per-receiver isolation, worker on the real store: a dead receiver costs only its own
//! webhook (its in-flight cap, then its circuit breaker); claims are fair across webhooks; a
//! resetting receiver is retried like any failure; a receiver that refuses connections and comes
//! back gets its backlog without having used up its retries; a breaker that stays open still
//! lets the disable rule act.
//!
//! Timeouts and breaker periods are set short here; every wait is on a condition with a
//! generous deadline, never on the clock.

use std::thread;
use std::time::{Duration, Instant};

use djinn_hook_deliver::{
    BreakerConfig, DeliverConfig, Deliverer, RetryPolicy, Shutdown, Stats, Worker, WorkerConfig,
};
use djinn_hook_server::Receiver;
use djinn_hook_sign::Secret;
use djinn_hook_store::{DeliveryFilter, Page, Store};
use time::OffsetDateTime;

use djinn_hook_testkit::{DEADLINE, Peer, closed_port, wait_for};

use crate::support::{SECRET, emit, hook, store};

/// Short timeouts: connect 500 ms, the whole attempt 1 s.
fn deliverer() -> Deliverer {
    let mut config = DeliverConfig::default();
    config.allow_private_network = true;
    config.connect_timeout = Duration::from_millis(500);
    config.timeout = Duration::from_secs(1);
    Deliverer::new(config)
}

fn config(concurrency: usize, breaker: BreakerConfig) -> WorkerConfig {
    let mut config = WorkerConfig::default();
    config.concurrency = concurrency;
    config.poll_interval = Duration::from_millis(20);
    config.breaker = breaker;
    config
}

/// Takes `n` deliveries off `receiver`, failing the test if they do not all come in time.
fn receive(receiver: &Receiver, n: usize) {
    let deadline = Instant::now() + DEADLINE;
    for i in 0..n {
        let left = deadline.saturating_duration_since(Instant::now());
        let got = receiver.next_timeout(left);
        assert!(got.is_some(), "only {i} of {n} deliveries arrived");
    }
}

fn attempts_of(store: &Store, hook_id: i64) -> Vec<djinn_hook_store::Delivery> {
    store
        .deliveries(
            DeliveryFilter::hook(hook_id),
            Page {
                page: 1,
                per_page: 5_000,
            },
        )
        .unwrap()
        .items
}

#[test]
fn a_dead_receivers_backlog_does_not_hold_up_a_healthy_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    let dead = Peer::hanging();
    let dead_hook = hook(&store, "dead/ns", dead.url());
    emit(&store, "dead/ns", 200);
    let receiver = Receiver::start("127.0.0.1:0", Secret::from(SECRET)).unwrap();
    let ok_hook = hook(&store, "ok/ns", receiver.url());
    emit(&store, "ok/ns", 200);

    let mut breaker = BreakerConfig::default();
    breaker.open_for = Duration::from_secs(120);
    let failures = breaker.failures as usize;
    let config = config(16, breaker);
    let cap = config.hook_cap();
    let worker = Worker::new(&store, deliverer(), RetryPolicy::default(), config);
    let monitor = worker.breakers();
    let stop = Shutdown::new();
    let stats = thread::scope(|s| {
        let run = s.spawn(|| worker.run(&stop));
        // Every healthy delivery arrives while the dead receiver's backlog is older.
        receive(&receiver, 200);
        // The dead receiver's breaker opens and holds its backlog.
        wait_for("the breaker to open", || monitor.open() == 1);
        wait_for("the held tasks to be recorded", || {
            store.webhook(dead_hook).unwrap().unwrap().breaker.is_some()
        });
        assert!(monitor.tasks_held() > 0);
        stop.stop();
        run.join().unwrap()
    });

    assert_eq!(attempts_of(&store, ok_hook).len(), 200);
    // The dead receiver got a handful of attempts: its cap's worth at a time, until the
    // breaker's threshold of failures opened it (threads freed by the first failures took
    // one more each before that); the rest of its backlog was put off, not attempted.
    let dead_attempts = attempts_of(&store, dead_hook);
    let most = cap + failures - 1;
    assert!(
        (failures..=most).contains(&dead_attempts.len()),
        "{} attempts to the dead receiver (at most {most})",
        dead_attempts.len()
    );
    assert!(dead.accepted() <= most, "{} connections", dead.accepted());
    assert!(dead_attempts.iter().all(|d| d.response_status.is_none()));
    assert_eq!(stats.failed, 0, "nothing given up on: {stats:?}");
    assert!(stats.put_off > 0, "{stats:?}");
    assert_eq!(stats.breakers_opened, 1, "{stats:?}");

    // Nothing lost, no retry step burnt: all 200 tasks are still there, and only those that
    // were attempted count an attempt.
    let later = OffsetDateTime::now_utc() + Duration::from_secs(600);
    let tasks = store
        .claim_due(later, 1_000, Duration::from_secs(60))
        .unwrap();
    let dead_tasks: Vec<_> = tasks
        .iter()
        .filter(|t| t.request.hook_id == dead_hook)
        .collect();
    assert_eq!(dead_tasks.len(), 200);
    let retried = dead_tasks.iter().filter(|t| t.request.attempt == 2).count();
    assert_eq!(retried, dead_attempts.len());
    assert!(dead_tasks.iter().all(|t| t.request.attempt <= 2));
}

#[test]
fn a_small_backlog_finishes_long_before_a_big_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    let receiver = Receiver::start("127.0.0.1:0", Secret::from(SECRET)).unwrap();
    let big = hook(&store, "big/ns", receiver.url());
    emit(&store, "big/ns", 1_000);
    let small = hook(&store, "small/ns", receiver.url());
    emit(&store, "small/ns", 10);

    let stats = Worker::new(
        &store,
        deliverer(),
        RetryPolicy::default(),
        config(4, BreakerConfig::default()),
    )
    .run_until_idle();
    assert_eq!(stats.delivered, 1_010, "{stats:?}");

    // In commit order (delivery ids grow with each commit): how much of the big backlog went
    // out before the small one was done.
    let mut all = store
        .deliveries(
            DeliveryFilter::default(),
            Page {
                page: 1,
                per_page: 2_000,
            },
        )
        .unwrap()
        .items;
    all.sort_by_key(|d| d.id);
    let last_small = all.iter().rposition(|d| d.hook_id == small).unwrap();
    let big_before = all[..last_small]
        .iter()
        .filter(|d| d.hook_id == big)
        .count();
    assert!(
        big_before < 100,
        "{big_before} of the big backlog's 1000 went before the small one's 10"
    );
}

#[test]
fn a_resetting_receiver_is_retried_and_costs_only_itself() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    let resetting = Peer::resetting();
    let reset_hook = hook(&store, "reset/ns", resetting.url());
    emit(&store, "reset/ns", 10);
    let receiver = Receiver::start("127.0.0.1:0", Secret::from(SECRET)).unwrap();
    let ok_hook = hook(&store, "ok/ns", receiver.url());
    emit(&store, "ok/ns", 10);

    // One immediate retry, then the task fails for good.
    let mut policy = RetryPolicy::default();
    policy.schedule = vec![Duration::ZERO];
    let stats = Worker::new(
        &store,
        deliverer(),
        policy,
        config(4, BreakerConfig::default()),
    )
    .run_until_idle();

    assert_eq!(attempts_of(&store, ok_hook).len(), 10);
    let reset = attempts_of(&store, reset_hook);
    assert_eq!(
        reset.len(),
        20,
        "each task tried twice: {stats:?} {:?}",
        reset
            .iter()
            .map(|d| (d.attempt, d.error.clone()))
            .collect::<Vec<_>>()
    );
    for attempt in &reset {
        assert_eq!(attempt.response_status, None);
        assert!(attempt.error.is_some());
    }
    assert_eq!((stats.delivered, stats.failed), (10, 10), "{stats:?}");
    // A reset is an answer of sorts (the host is up): it trips no breaker.
    assert_eq!(stats.breakers_opened, 0);
}

#[test]
fn a_receiver_that_comes_back_gets_its_backlog_with_its_retries_intact() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    let addr = closed_port();
    let hook_id = hook(&store, "back/ns", format!("http://{addr}/hook"));
    emit(&store, "back/ns", 20);

    // Two retries 100 ms apart: without the breaker, every task would use them up while the
    // port refuses connections.
    let mut policy = RetryPolicy::default();
    policy.schedule = vec![Duration::ZERO, Duration::from_millis(100)];
    policy.jitter = 0.0;
    let mut breaker = BreakerConfig::default();
    breaker.failures = 3;
    breaker.open_for = Duration::from_millis(300);
    breaker.max_open_for = Duration::from_secs(1);
    breaker.probe_hold = Duration::from_millis(100);
    let worker = Worker::new(&store, deliverer(), policy, config(4, breaker));
    let monitor = worker.breakers();
    let stop = Shutdown::new();
    let stats: Stats = thread::scope(|s| {
        let run = s.spawn(|| worker.run(&stop));
        wait_for("the breaker to open", || monitor.open() == 1);
        let receiver = Receiver::start(&addr.to_string(), Secret::from(SECRET)).unwrap();
        receive(&receiver, 20);
        wait_for("the breaker to close", || monitor.open() == 0);
        stop.stop();
        run.join().unwrap()
    });

    assert_eq!(stats.delivered, 20, "{stats:?}");
    assert_eq!(stats.failed, 0, "no task used up its retries: {stats:?}");
    assert!(
        stats.breakers_opened >= 1 && stats.breakers_closed >= 1,
        "{stats:?}"
    );
    let log = attempts_of(&store, hook_id);
    let delivered = log.iter().filter(|d| d.response_status == Some(204));
    assert!(delivered.into_iter().all(|d| d.attempt <= 3));
    let counts = store.counts().unwrap();
    assert_eq!((counts.pending, counts.failed), (0, 0), "{counts:?}");
    assert!(store.webhook(hook_id).unwrap().unwrap().breaker.is_none());
}

#[test]
fn a_breaker_that_stays_open_does_not_keep_a_dead_webhook_enabled() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    let addr = closed_port();
    let hook_id = hook(&store, "gone/ns", format!("http://{addr}/hook"));
    emit(&store, "gone/ns", 5);

    // The breaker opens at the first refusal and never closes (every probe is refused); the
    // webhook may fail for one second before it is disabled.
    let mut policy = RetryPolicy::default();
    policy.disable_after = Duration::from_secs(1);
    let mut breaker = BreakerConfig::default();
    breaker.failures = 1;
    breaker.open_for = Duration::from_millis(200);
    breaker.max_open_for = Duration::from_millis(200);
    breaker.probe_hold = Duration::from_millis(100);
    let worker = Worker::new(&store, deliverer(), policy, config(2, breaker));
    let stop = Shutdown::new();
    let stats = thread::scope(|s| {
        let run = s.spawn(|| worker.run(&stop));
        wait_for("the webhook to be disabled", || {
            !store.webhook(hook_id).unwrap().unwrap().active
        });
        stop.stop();
        run.join().unwrap()
    });
    let hook = store.webhook(hook_id).unwrap().unwrap();
    let reason = hook.disabled_reason.unwrap();
    assert!(reason.contains("every attempt failed"), "{reason}");
    assert!(stats.hooks_disabled >= 1, "{stats:?}");
    assert!(
        stats.put_off > 0,
        "the breaker held tasks meanwhile: {stats:?}"
    );
    assert_eq!(
        store.counts().unwrap().failed,
        5,
        "its tasks failed with it"
    );
}
