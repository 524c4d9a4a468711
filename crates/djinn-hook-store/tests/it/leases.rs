//! Leases under contention: many stores claiming at once, and one task completed twice.

use std::collections::HashSet;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use djinn_hook_outbox::Outcome;
use djinn_hook_payload::EventType;

use crate::support::{Backend, all_delivered, completion, now};

const TASKS: usize = 400;

/// Four `Store`s (four processes' worth of connections), two threads each, claim
/// small batches at once: every task is handed out exactly once.
pub(crate) fn eight_claimers_never_share_a_task(backend: &Backend) {
    let db = backend.db();
    db.hook("alice/ci", "https://example.com/a");
    db.hook("alice/ci", "https://example.com/b");
    db.emit_all("alice/ci", &[EventType::BuildStarted; TASKS / 2]);
    let stores: Vec<_> = (0..4).map(|_| Arc::new(db.reopen())).collect();
    let barrier = Arc::new(Barrier::new(8));
    let claimers: Vec<_> = (0..8)
        .map(|i| {
            let store = Arc::clone(&stores[i % 4]);
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                barrier.wait();
                let mut ids = Vec::new();
                loop {
                    let tasks = store.claim_due(now(), 5, Duration::from_secs(300)).unwrap();
                    if tasks.is_empty() {
                        return ids;
                    }
                    ids.extend(tasks.iter().map(|t| t.task_id));
                    store.complete(&all_delivered(&tasks, now())).unwrap();
                }
            })
        })
        .collect();
    let all: Vec<i64> = claimers
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    let unique: HashSet<i64> = all.iter().copied().collect();
    assert_eq!(all.len(), TASKS, "every task claimed exactly once");
    assert_eq!(unique.len(), TASKS, "no task claimed twice");
    let stats = db.store.counts().unwrap();
    assert_eq!(
        (stats.pending, stats.leased, stats.deliveries),
        (0, 0, TASKS as u64)
    );
}

/// A batch that completes one task twice (say, a retried report): the first
/// outcome is applied, the second finds the lease released; both are logged.
pub(crate) fn a_task_completed_twice_in_one_batch_takes_the_first_outcome(backend: &Backend) {
    let db = backend.db();
    db.hook("alice/ci", "https://example.com/hook");
    db.emit("alice/ci", EventType::Cron);
    let task = db.claim_all(now()).remove(0);
    let t = now();
    let done = db
        .store
        .complete(&[
            completion(&task, Outcome::Failed, t),
            completion(&task, Outcome::Delivered, t),
        ])
        .unwrap();
    assert!(done[0].lease_held);
    assert!(!done[1].lease_held);
    assert!(done[0].delivery_id.unwrap() < done[1].delivery_id.unwrap());
    let stats = db.store.counts().unwrap();
    assert_eq!((stats.failed, stats.deliveries), (1, 2));
}
