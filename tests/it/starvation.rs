//! No set of faulty receivers takes delivery away from a healthy one (issue 22), with the
//! default settings: receivers that never answer, that trickle their answer a byte a second,
//! that refuse connections, or that answer correctly but take 3 s, with backlogs, beside a
//! healthy webhook whose events arrive at once.
//!
//! Every wait is on a condition with a deadline; the deadlines are the promises under test
//! (all 200 within 10 s; the first within a second), generous for a worker that keeps them.
//! Afterwards the faulty receivers are dropped (their connections close, a slow one answers at
//! once), the worker stops, and every task is accounted for: delivered once, failed, or still
//! pending; none lost, none delivered twice.

use std::collections::HashSet;
use std::thread;
use std::time::{Duration, Instant};

use djinn_hook_deliver::{DeliverConfig, LimitReason, Shutdown, Stats, Worker, WorkerConfig};
use djinn_hook_server::Receiver;
use djinn_hook_sign::Secret;
use djinn_hook_store::{DeliveryFilter, Page, Store};
use time::OffsetDateTime;

use djinn_hook_testkit::{Peer, closed_port, wait_for};

use crate::support::{SECRET, emit, hook, store};

/// The `worker` command's defaults: 8 threads, a poll every second.
fn worker_defaults() -> WorkerConfig {
    let mut config = WorkerConfig::default();
    config.concurrency = 8;
    config
}

/// `serve`'s in-process worker's defaults: 8 threads, a poll every 25 ms.
fn serve_defaults() -> WorkerConfig {
    let mut config = WorkerConfig::default();
    config.concurrency = 8;
    config.poll_interval = Duration::from_millis(25);
    config
}

/// The deliverer's defaults (15 s per attempt, 5 s to connect), loopback allowed.
fn default_delivery() -> DeliverConfig {
    let mut config = DeliverConfig::default();
    config.allow_private_network = true;
    config
}

/// A faulty receiver of each kind, in turn.
fn faulty(i: usize) -> Faulty {
    match i % 4 {
        0 => Faulty::Peer(Peer::hanging()),
        1 => Faulty::Peer(Peer::trickling()),
        2 => Faulty::Peer(Peer::slow(Duration::from_secs(3))),
        _ => Faulty::Refusing(closed_port_url()),
    }
}

enum Faulty {
    Peer(Peer),
    Refusing(String),
}

impl Faulty {
    fn url(&self) -> String {
        match self {
            Faulty::Peer(peer) => peer.url(),
            Faulty::Refusing(url) => url.clone(),
        }
    }
}

/// Stops the worker when dropped, so that a failed assertion ends the worker's run (and the
/// test) instead of leaving the scope waiting for it.
struct StopOnDrop<'a>(&'a Shutdown);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.stop();
    }
}

/// A URL on 127.0.0.1 nobody listens on.
fn closed_port_url() -> String {
    format!("http://{}/hook", closed_port())
}

/// Takes `n` deliveries off `receiver` within `within`, failing the test naming how many came.
fn receive_within(receiver: &Receiver, n: usize, within: Duration) -> HashSet<String> {
    let deadline = Instant::now() + within;
    let mut ids = HashSet::new();
    for i in 0..n {
        let left = deadline.saturating_duration_since(Instant::now());
        let got = receiver.next_timeout(left);
        let Some(got) = got else {
            panic!("only {i} of {n} healthy deliveries arrived within {within:?}");
        };
        assert!(got.signature_valid, "a delivery failed verification");
        ids.insert(got.delivery().unwrap().to_owned());
    }
    ids
}

/// Every task of webhook `hook_id` (of `events` events) is delivered exactly once (one 2xx
/// attempt), failed, or still pending: none lost, none delivered twice.
fn accounted_for(store: &Store, hook_id: i64, events: usize, pending: &[djinn_hook_deliver::Task]) {
    let log = store
        .deliveries(
            DeliveryFilter::hook(hook_id),
            Page {
                page: 1,
                per_page: 10_000,
            },
        )
        .unwrap()
        .items;
    let delivered: Vec<_> = log
        .iter()
        .filter(|d| d.response_status.is_some_and(|s| (200..300).contains(&s)))
        .map(|d| d.event_id)
        .collect();
    let distinct: HashSet<_> = delivered.iter().collect();
    assert_eq!(
        delivered.len(),
        distinct.len(),
        "webhook {hook_id}: an event delivered twice"
    );
    let pending: HashSet<_> = pending
        .iter()
        .filter(|t| t.request.hook_id == hook_id)
        .map(|t| t.request.event_id)
        .collect();
    assert!(
        pending.is_disjoint(&distinct.iter().copied().copied().collect()),
        "webhook {hook_id}: a delivered event still pending"
    );
    assert_eq!(
        distinct.len() + pending.len(),
        events,
        "webhook {hook_id}: {} delivered + {} pending of {events} (none may fail here)",
        distinct.len(),
        pending.len()
    );
}

/// The scenario of issue 22: two receivers that never answer, two that trickle, two that take
/// 3 s, 60 events queued for each; then 200 for a healthy webhook, all delivered within 10 s.
fn scenario(config: WorkerConfig) {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    let peers = [
        Peer::hanging(),
        Peer::hanging(),
        Peer::trickling(),
        Peer::trickling(),
        Peer::slow(Duration::from_secs(3)),
        Peer::slow(Duration::from_secs(3)),
    ];
    let faulty: Vec<i64> = peers
        .iter()
        .enumerate()
        .map(|(i, peer)| {
            let ns = format!("faulty/ns{i}");
            let id = hook(&store, &ns, peer.url());
            emit(&store, &ns, 60);
            id
        })
        .collect();
    let receiver = Receiver::start("127.0.0.1:0", Secret::from(SECRET)).unwrap();
    let healthy = hook(&store, "healthy/ns", receiver.url());

    let worker = Worker::with_config(&store, config, default_delivery());
    let waker = worker.waker();
    let stop = Shutdown::new();
    let stats: Stats = thread::scope(|s| {
        let run = s.spawn(|| worker.run(&stop));
        let _stop = StopOnDrop(&stop);
        // The faulty receivers hold their share of the worker first.
        wait_for("a connection to every faulty receiver", || {
            peers.iter().all(|p| p.accepted() > 0)
        });
        emit(&store, "healthy/ns", 200);
        waker.wake();
        let ids = receive_within(&receiver, 200, Duration::from_secs(10));
        assert_eq!(ids.len(), 200, "200 distinct events");
        // A slow receiver saw each event once (each was sent under one lease, and answered).
        for slow in &peers[4..] {
            let requests = slow.requests();
            let ids: HashSet<_> = requests.iter().map(|(id, _)| id).collect();
            assert_eq!(ids.len(), requests.len(), "an event sent twice");
        }
        drop(peers);
        stop.stop();
        run.join().unwrap()
    });
    assert_eq!(stats.abandoned, 0, "{stats:?}");
    let later = OffsetDateTime::now_utc() + Duration::from_secs(3_600);
    let pending = store
        .claim_due(later, 10_000, Duration::from_secs(60))
        .unwrap();
    accounted_for(&store, healthy, 200, &pending);
    for hook_id in faulty {
        accounted_for(&store, hook_id, 60, &pending);
    }
}

#[test]
fn six_faulty_receivers_leave_a_healthy_one_its_deliveries_with_the_workers_defaults() {
    scenario(worker_defaults());
}

#[test]
fn six_faulty_receivers_leave_a_healthy_one_its_deliveries_with_serves_defaults() {
    scenario(serve_defaults());
}

/// 50 faulty receivers of four kinds (never answering, trickling, refusing, 3 s), 100 events
/// queued for each, beside one healthy webhook: its first event is delivered within a second.
#[test]
fn fifty_faulty_receivers_leave_a_healthy_one_served_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    let faulty: Vec<Faulty> = (0..50).map(faulty).collect();
    let hooks: Vec<i64> = faulty
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let ns = format!("faulty/ns{i}");
            let id = hook(&store, &ns, f.url());
            emit(&store, &ns, 100);
            id
        })
        .collect();
    let receiver = Receiver::start("127.0.0.1:0", Secret::from(SECRET)).unwrap();
    let healthy = hook(&store, "healthy/ns", receiver.url());

    let worker = Worker::with_config(&store, WorkerConfig::default(), default_delivery());
    let waker = worker.waker();
    let stop = Shutdown::new();
    thread::scope(|s| {
        let run = s.spawn(|| worker.run(&stop));
        let _stop = StopOnDrop(&stop);
        let peers = || {
            faulty.iter().filter_map(|f| match f {
                Faulty::Peer(peer) => Some(peer),
                Faulty::Refusing(_) => None,
            })
        };
        wait_for("a connection to every faulty receiver", || {
            peers().all(|p| p.accepted() > 0)
        });
        for round in 0..3 {
            emit(&store, "healthy/ns", 1);
            waker.wake();
            let got = receiver.next_timeout(Duration::from_secs(1));
            assert!(got.is_some(), "event {round} not delivered within a second");
        }
        drop(faulty);
        stop.stop();
        run.join().unwrap()
    });
    let later = OffsetDateTime::now_utc() + Duration::from_secs(3_600);
    let pending = store
        .claim_due(later, 10_000, Duration::from_secs(60))
        .unwrap();
    accounted_for(&store, healthy, 3, &pending);
    for hook_id in hooks {
        accounted_for(&store, hook_id, 100, &pending);
    }
}

/// A receiver answering `429` with `Retry-After: 2`: its webhook is paused (its limit 0, its
/// queued tasks put off), nothing is sent to it during the pause, it resumes at half its
/// limit, and its tasks' attempt counters are unchanged (throttling uses no retry).
#[test]
fn a_throttling_receiver_is_paused_and_keeps_its_retries() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    let peer = Peer::throttling(2);
    let hook_id = hook(&store, "throttled/ns", peer.url());
    emit(&store, "throttled/ns", 40);

    let mut config = serve_defaults();
    config.concurrency = 8;
    config.max_in_flight_per_hook = Some(8);
    let worker = Worker::with_config(&store, config, default_delivery());
    let limits = worker.limits();
    let stop = Shutdown::new();
    let stats = thread::scope(|s| {
        let run = s.spawn(|| worker.run(&stop));
        let _stop = StopOnDrop(&stop);
        // The first answers pause the webhook for 2 s, its limit halved.
        let mut paused = None;
        wait_for("the webhook to be paused", || {
            paused = limits.status(hook_id).filter(|s| s.paused_for.is_some());
            paused.is_some()
        });
        let paused = paused.unwrap();
        let paused_at = Instant::now();
        let pause = paused.paused_for.unwrap();
        assert_eq!(paused.limit, 0, "{paused:?}");
        assert_eq!(paused.reason, Some(LimitReason::Throttled), "{paused:?}");
        assert!(pause > Duration::from_secs(1), "{paused:?}");
        // The store shows it (for `hook show`, the API and the web UI).
        wait_for("the pause to be recorded", || {
            store
                .webhook(hook_id)
                .unwrap()
                .unwrap()
                .delivery_limit
                .is_some_and(|l| l.reason == "throttled" && l.paused_until.is_some())
        });
        // The attempts already out when the first answer came in end, and none follows.
        wait_for("the attempts under way to end", || {
            limits.status(hook_id).is_some_and(|s| s.in_flight == 0)
        });
        let before_pause_ends = peer.requests().len();
        wait_for("the pause to end", || {
            limits
                .status(hook_id)
                .is_some_and(|s| s.paused_for.is_none())
        });
        let resumed = limits.status(hook_id).unwrap();
        assert!(
            resumed.limit <= 4,
            "resumes at half its cap at most: {resumed:?}"
        );
        let during = peer
            .requests()
            .iter()
            .filter(|(_, at)| *at < paused_at + pause - Duration::from_millis(100))
            .count();
        assert_eq!(during, before_pause_ends, "a request sent during the pause");
        // After the pause the tasks go out again (and are throttled again).
        wait_for("the tasks to go out again", || {
            peer.requests().len() > before_pause_ends
        });
        stop.stop();
        run.join().unwrap()
    });
    assert!(stats.throttled > 0, "{stats:?}");
    assert_eq!(stats.retries_scheduled + stats.failed, 0, "{stats:?}");
    assert_eq!(
        stats.attempts,
        peer.requests().len() as u64,
        "each request recorded"
    );
    // Every task is still pending at its first attempt: throttling counted none.
    let later = OffsetDateTime::now_utc() + Duration::from_secs(3_600);
    let pending = store
        .claim_due(later, 1_000, Duration::from_secs(60))
        .unwrap();
    assert_eq!(pending.len(), 40);
    assert!(
        pending.iter().all(|t| t.request.attempt == 1),
        "{:?}",
        pending
            .iter()
            .map(|t| t.request.attempt)
            .collect::<Vec<_>>()
    );
}

/// Receivers that never answer, with room for more deliveries at once than the worker lets
/// wait on slow receivers: once they are known to be slow they hold only `max_deliveries`
/// threads, and a healthy webhook is served at once by the working threads. (Receivers not
/// yet known to be slow are a known limit: each first contact may take a working thread.)
#[test]
fn slow_receivers_hold_only_their_budget_of_a_small_pool() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    let hanging: Vec<Peer> = (0..2).map(|_| Peer::hanging()).collect();
    for (i, peer) in hanging.iter().enumerate() {
        let ns = format!("hanging/ns{i}");
        hook(&store, &ns, peer.url());
        emit(&store, &ns, 20);
    }
    let receiver = Receiver::start("127.0.0.1:0", Secret::from(SECRET)).unwrap();
    hook(&store, "healthy/ns", receiver.url());

    // 2 working threads, and 4 for slow receivers, which could take 16.
    let mut config = serve_defaults();
    config.concurrency = 2;
    config.max_deliveries = 4;
    config.max_in_flight_per_hook = Some(8);
    let worker = Worker::with_config(&store, config, default_delivery());
    let waker = worker.waker();
    let stop = Shutdown::new();
    thread::scope(|s| {
        let run = s.spawn(|| worker.run(&stop));
        let _stop = StopOnDrop(&stop);
        wait_for("every receiver to be tried", || {
            hanging.iter().all(|p| p.accepted() >= 1)
        });
        // Long enough for each of their deliveries to count as slow.
        thread::sleep(Duration::from_millis(300));
        for round in 0..3 {
            emit(&store, "healthy/ns", 1);
            waker.wake();
            let got = receiver.next_timeout(Duration::from_secs(1));
            assert!(
                got.is_some(),
                "event {round} not delivered within a second; connections: {:?}",
                hanging.iter().map(Peer::accepted).collect::<Vec<_>>()
            );
        }
        let connections: usize = hanging.iter().map(Peer::accepted).sum();
        assert!(
            connections <= 4,
            "{connections} deliveries to the slow receivers at once"
        );
        drop(hanging);
        stop.stop();
        run.join().unwrap()
    });
}
