//! Two `Store`s on one file, in two threads, racing to claim: no task is handed out twice.

use std::collections::HashSet;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use djinn_hook_payload::EventType;
use djinn_hook_store::Store;

use crate::support::{Backend, all_delivered, event, now};

const TASKS: usize = 300;

pub(crate) fn two_connections_never_claim_the_same_task(backend: &Backend) {
    let db = backend.db();
    db.hook("alice/ci", "https://example.com/a");
    db.hook("alice/ci", "https://example.com/b");
    db.emit_all("alice/ci", &[EventType::BuildStarted; TASKS / 2]);

    let stores = [Arc::new(db.reopen()), Arc::new(db.reopen())];
    let barrier = Arc::new(Barrier::new(2));
    let workers: Vec<_> = stores
        .iter()
        .map(|store| {
            let store = Arc::clone(store);
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || worker(&store, &barrier))
        })
        .collect();
    let claimed: Vec<Vec<i64>> = workers.into_iter().map(|w| w.join().unwrap()).collect();

    let all: Vec<i64> = claimed.iter().flatten().copied().collect();
    let unique: HashSet<i64> = all.iter().copied().collect();
    assert_eq!(all.len(), TASKS, "every task claimed exactly once");
    assert_eq!(unique.len(), TASKS, "no task claimed twice");
    let counts: Vec<usize> = claimed.iter().map(Vec::len).collect();
    assert!(
        counts.iter().all(|&n| n > 0),
        "both workers got work: {counts:?}"
    );
    let stats = db.store.counts().unwrap();
    assert_eq!(
        (stats.pending, stats.leased, stats.deliveries),
        (0, 0, TASKS as u64)
    );
}

/// Claims small batches and completes them until nothing is left.
fn worker(store: &Store, barrier: &Barrier) -> Vec<i64> {
    barrier.wait();
    let mut ids = Vec::new();
    loop {
        let tasks = store.claim_due(now(), 7, Duration::from_secs(300)).unwrap();
        if tasks.is_empty() {
            return ids;
        }
        ids.extend(tasks.iter().map(|t| t.task_id));
        // "Deliver" outside any transaction, as a real worker does.
        thread::sleep(Duration::from_millis(1));
        let t = now();
        store.complete(&all_delivered(&tasks, t)).unwrap();
    }
}

pub(crate) fn one_store_is_shared_by_threads(backend: &Backend) {
    let db = backend.db();
    db.hook("alice/ci", "https://example.com/a");
    let store = Arc::new(db.reopen());
    let emitters: Vec<_> = (0..2)
        .map(|_| {
            let store = Arc::clone(&store);
            thread::spawn(move || {
                for _ in 0..20 {
                    store
                        .accept_event(event("alice/ci", EventType::Cron))
                        .unwrap();
                    store.counts().unwrap();
                }
            })
        })
        .collect();
    for e in emitters {
        e.join().unwrap();
    }
    assert_eq!(store.counts().unwrap().pending, 40);
}

#[test]
fn store_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Store>();
    check::<djinn_hook_store::Error>();
}
