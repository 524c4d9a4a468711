//! Failures injected into the database itself: a statement that fails part-way through a
//! completion batch (a trigger raising an error on one row) must leave nothing of the batch
//! written, and the same batch must go through once the fault is gone.

use djinn_hook_outbox::Outcome;
use djinn_hook_payload::EventType;
use djinn_hook_store::{DeliveryFilter, Page};

use crate::support::{all_delivered, completion, db, now};

/// A trigger making the insert of `hook_id`'s delivery log rows fail.
fn fail_on_hook(hook_id: i64) -> String {
    format!(
        "CREATE TRIGGER injected_fault BEFORE INSERT ON deliveries WHEN NEW.hook_id = {hook_id} \
         BEGIN SELECT RAISE(ABORT, 'injected fault'); END"
    )
}

#[test]
fn a_completion_batch_that_fails_half_way_writes_nothing() {
    let db = db();
    let first = db.hook("acme/ci", "https://one.example.com/hook");
    let second = db.hook("acme/ci", "https://two.example.com/hook");
    db.emit_all(
        "acme/ci",
        &[EventType::BuildSubmitted, EventType::BuildStarted],
    );
    let mut tasks = db.claim_all(now());
    assert_eq!(tasks.len(), 4);
    // The failing row in the middle of the batch: the first hook's attempts come before it.
    tasks.sort_by_key(|t| (t.request.hook_id != first.id, t.task_id));
    let raw = rusqlite::Connection::open(db.path()).unwrap();
    raw.execute_batch(&fail_on_hook(second.id)).unwrap();

    let mut batch = all_delivered(&tasks, now());
    batch[3] = completion(&tasks[3], Outcome::RetryAt(now()), now());
    let error = db.store.complete(&batch.clone()).unwrap_err();
    let cause = std::error::Error::source(&error).map(ToString::to_string);
    assert!(
        cause
            .as_deref()
            .is_some_and(|c| c.contains("injected fault")),
        "{error}: {cause:?}"
    );

    // Nothing of the batch is written: no attempt recorded, every task still leased to us.
    let log = db
        .store
        .deliveries(DeliveryFilter::default(), Page::new(1))
        .unwrap();
    assert!(log.items.is_empty(), "{:?}", log.items);
    let stats = db.store.counts().unwrap();
    assert_eq!((stats.pending, stats.leased), (0, 4), "{stats:?}");
    assert_eq!(stats.deliveries, 0);

    // With the fault gone the same batch is applied whole, under the same leases.
    raw.execute("DROP TRIGGER injected_fault", []).unwrap();
    let completed = db.store.complete(&batch).unwrap();
    assert!(completed.iter().all(|c| c.lease_held), "{completed:?}");
    let stats = db.store.counts().unwrap();
    assert_eq!((stats.pending, stats.leased), (1, 0), "{stats:?}");
    assert_eq!(stats.deliveries, 4);
}
