//! The worker loop running against the store's API on a real database file.

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use djinn_hook_deliver::{DeliverConfig, Deliverer, RetryPolicy, Stats, Worker, WorkerConfig};
use djinn_hook_payload::{DEFAULT_API_SERVER, EventType, example_payload};
use djinn_hook_server::Receiver;
use djinn_hook_sign::Secret;
use djinn_hook_store::{DeliveryFilter, NewEvent, NewWebhook, Page, SecretKey, Store};

const NAMESPACE: &str = "wallace.breen/blackmesa";
const SECRET: &str = "a receiver's shared secret";

/// A `Store` on the database file in `dir` (created if missing).
fn open(dir: &tempfile::TempDir) -> Store {
    Store::open(dir.path().join("hooks.db"), SecretKey::from_bytes([42; 32]))
        .expect("open the store")
}

/// A store on a fresh file in `dir`, with the namespace created.
fn open_store(dir: &tempfile::TempDir) -> Store {
    let store = open(dir);
    store
        .ensure_namespace(NAMESPACE)
        .expect("create the namespace");
    store
}

fn hook_to(store: &Store, url: String) -> i64 {
    let mut new = NewWebhook::new(NAMESPACE, url);
    new.secret = Some(SECRET.to_owned());
    store.create_webhook(new).expect("create the webhook").id
}

/// A deliverer that may reach the loopback receiver, with short timeouts.
fn deliverer() -> Deliverer {
    let mut config = DeliverConfig::default();
    config.allow_private_network = true;
    config.connect_timeout = Duration::from_secs(2);
    config.timeout = Duration::from_secs(5);
    Deliverer::new(config)
}

/// Runs a worker with `concurrency` over `store` until nothing is due.
fn run_worker(store: &Store, concurrency: usize) -> Stats {
    let mut config = WorkerConfig::default();
    config.concurrency = concurrency;
    config.poll_interval = Duration::from_millis(20);
    Worker::new(store, deliverer(), RetryPolicy::default(), config).run_until_idle()
}

/// The webhook's `failing_since` is set.
fn failing(store: &Store, hook_id: i64) -> bool {
    store
        .webhook(hook_id)
        .unwrap()
        .unwrap()
        .failing_since
        .is_some()
}

fn example_event(event: EventType) -> NewEvent {
    NewEvent::new(
        NAMESPACE,
        event,
        example_payload(event, DEFAULT_API_SERVER).to_body(),
    )
}

#[test]
fn every_event_is_delivered_signed_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir);
    let receiver = Receiver::start("127.0.0.1:0", Secret::from(SECRET)).unwrap();
    let hook_id = hook_to(&store, receiver.url());

    let accepted = store
        .accept_events(EventType::ALL.into_iter().map(example_event).collect())
        .unwrap();
    assert!(accepted.iter().all(|a| a.matched == 1), "{accepted:?}");

    let stats = run_worker(&store, 4);
    assert_eq!(stats.delivered, 15, "{stats:?}");

    // The receiver saw each event once, each signature verified with the public verifier.
    let mut got = Vec::new();
    while got.len() < 15 {
        let received = receiver
            .next_timeout(Duration::from_secs(5))
            .expect("the receiver got all 15 deliveries");
        got.push(received);
    }
    assert!(got.iter().all(|r| r.signature_valid));
    let events: HashSet<_> = got
        .iter()
        .filter_map(|r| r.event().map(str::to_owned))
        .collect();
    let expected: HashSet<_> = EventType::ALL.iter().map(|e| e.name().to_owned()).collect();
    assert_eq!(events, expected);
    let delivery_ids: HashSet<_> = got.iter().filter_map(|r| r.delivery()).collect();
    let event_ids: HashSet<_> = accepted.iter().map(|a| a.event_id.to_string()).collect();
    assert_eq!(
        delivery_ids,
        event_ids.iter().map(String::as_str).collect::<HashSet<_>>()
    );

    // The store recorded every attempt and finished every task.
    let log = store
        .deliveries(
            DeliveryFilter::hook(hook_id),
            Page {
                page: 1,
                per_page: 100,
            },
        )
        .unwrap();
    assert_eq!(log.items.len(), 15);
    assert!(
        log.items
            .iter()
            .all(|d| d.response_status == Some(204) && d.error.is_none())
    );
    let counts = store.counts().unwrap();
    assert_eq!(
        (counts.pending, counts.leased, counts.failed),
        (0, 0, 0),
        "{counts:?}"
    );
    assert!(!failing(&store, hook_id));
}

#[test]
fn a_failed_delivery_is_recorded_and_scheduled_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir);
    // A port nobody listens on: bind, note it, close it.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let hook_id = hook_to(&store, format!("http://{closed}/hook"));
    store
        .accept_event(example_event(EventType::BuildFinished))
        .unwrap();

    // The default schedule's first retry is immediate, so two attempts happen now,
    // and the third waits 5 s: `run_until_idle` returns with it pending.
    let stats = run_worker(&store, 1);
    assert_eq!(stats.delivered, 0, "{stats:?}");
    assert!(stats.retries_scheduled >= 1, "{stats:?}");

    let log = store
        .deliveries(DeliveryFilter::hook(hook_id), Page::new(1))
        .unwrap();
    assert!(!log.items.is_empty());
    for delivery in &log.items {
        assert_eq!(delivery.response_status, None);
        let error = delivery.error.as_deref().expect("the error is recorded");
        assert!(!error.is_empty());
    }
    let counts = store.counts().unwrap();
    assert_eq!(
        counts.pending, 1,
        "the task waits for its next attempt: {counts:?}"
    );
    assert!(failing(&store, hook_id));
}

#[test]
fn two_workers_on_one_file_deliver_each_task_once() {
    let dir = tempfile::tempdir().unwrap();
    let first = Arc::new(open_store(&dir));
    // A second Store on the same file: another connection set, as a second process would have.
    let second = Arc::new(open(&dir));
    let receiver = Receiver::start("127.0.0.1:0", Secret::from(SECRET)).unwrap();
    hook_to(&first, receiver.url());
    let events: Vec<_> = (0..60)
        .map(|i| example_event(EventType::ALL[i % EventType::ALL.len()]))
        .collect();
    first.accept_events(events).unwrap();

    let run = |store: Arc<Store>| std::thread::spawn(move || run_worker(&store, 3));
    let (a, b) = (run(Arc::clone(&first)), run(Arc::clone(&second)));
    let (a, b) = (a.join().unwrap(), b.join().unwrap());
    assert_eq!(a.delivered + b.delivered, 60, "{a:?} {b:?}");

    let mut delivery_ids = HashSet::new();
    while let Some(received) = receiver.next_timeout(Duration::from_millis(500)) {
        assert!(received.signature_valid);
        assert!(
            delivery_ids.insert(received.delivery().unwrap().to_owned()),
            "an event was delivered twice"
        );
    }
    assert_eq!(delivery_ids.len(), 60);
    assert_eq!(first.counts().unwrap().deliveries, 60);
}
