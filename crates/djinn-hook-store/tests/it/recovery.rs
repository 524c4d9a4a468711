//! Bulk recovery: the events of a webhook's (failed) deliveries in a time range queued again,
//! each once, even when run twice; ordinary tasks of that webhook, claimed fairly.

use std::collections::HashSet;
use std::time::Duration;

use djinn_hook_outbox::{Outcome, Task};
use djinn_hook_payload::EventType;
use djinn_hook_store::{Error, Recovery, WebhookUpdate};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::support::{Backend, Db, LEASE, completion, now};

/// Completes `task` with `outcome` at `at` (delivered: 200; otherwise 500).
fn finish(db: &Db, task: &Task, outcome: Outcome, at: OffsetDateTime) {
    db.store
        .complete_one(&completion(task, outcome, at))
        .unwrap();
}

/// Three events to one webhook: the first delivered, the second failed, the third failed after
/// a retry (two failed deliveries). Returns the webhook's id and the events' ids.
fn an_outage(db: &Db) -> (i64, [Uuid; 3]) {
    let hook = db.hook("alice/ci", "https://example.com/hook");
    let events = db.emit_all(
        "alice/ci",
        &[
            EventType::BuildSubmitted,
            EventType::BuildStarted,
            EventType::BuildFinished,
        ],
    );
    let t = now();
    let tasks = db.claim_all(t);
    assert_eq!(tasks.len(), 3);
    finish(db, &tasks[0], Outcome::Delivered, t);
    finish(db, &tasks[1], Outcome::Failed, t);
    finish(db, &tasks[2], Outcome::RetryAt(t), t);
    let retry = db.claim_all(now() + Duration::from_secs(1)).remove(0);
    finish(db, &retry, Outcome::Failed, now());
    (
        hook.id,
        [events[0].event_id, events[1].event_id, events[2].event_id],
    )
}

fn since_an_hour_ago(hook_id: i64) -> Recovery {
    Recovery::new(hook_id, now() - time::Duration::hours(1))
}

pub(crate) fn a_recovery_queues_each_failed_event_once_even_run_twice(backend: &Backend) {
    let db = backend.db();
    let (hook, [delivered, failed, retried]) = an_outage(&db);
    let recovery = since_an_hour_ago(hook);

    assert_eq!(db.store.recover_count(&recovery).unwrap(), 2);
    assert_eq!(db.store.recover(&recovery, 500).unwrap(), 2);
    // Run again before anything was sent: both are waiting, nothing more is queued.
    assert_eq!(db.store.recover_count(&recovery).unwrap(), 0);
    assert_eq!(db.store.recover(&recovery, 500).unwrap(), 0);

    let again = db.claim_all(now());
    let ids: HashSet<Uuid> = again.iter().map(|t| t.request.event_id).collect();
    assert_eq!(ids, HashSet::from([failed, retried]), "one task per event");
    assert!(
        again
            .iter()
            .all(|t| t.request.redelivery && t.request.hook_id == hook)
    );
    for task in &again {
        finish(&db, task, Outcome::Delivered, now());
    }
    // Sent and delivered: run a third time, nothing is queued.
    assert_eq!(db.store.recover(&recovery, 500).unwrap(), 0);

    // Every delivery, up to before the recovery: only the one never recovered.
    let mut all = since_an_hour_ago(hook);
    all.failed_only = false;
    all.until = Some(again.iter().map(|t| t.lease_until).min().unwrap() - LEASE);
    assert_eq!(db.store.recover(&all, 500).unwrap(), 1);
    let last = db.claim_all(now());
    assert_eq!(last.len(), 1);
    assert_eq!(last[0].request.event_id, delivered);
    assert_eq!(db.store.recover(&all, 500).unwrap(), 0);
}

pub(crate) fn a_failed_recovery_can_be_recovered_again_and_batches_add_up(backend: &Backend) {
    let db = backend.db();
    let (hook, _) = an_outage(&db);
    let recovery = since_an_hour_ago(hook);
    // One event per call: each call takes the next.
    assert_eq!(db.store.recover(&recovery, 1).unwrap(), 1);
    assert_eq!(db.store.recover(&recovery, 1).unwrap(), 1);
    assert_eq!(db.store.recover(&recovery, 1).unwrap(), 0);
    // The receiver is still down: the redeliveries fail, and are new failed deliveries.
    for task in db.claim_all(now()) {
        finish(&db, &task, Outcome::Failed, now());
    }
    assert_eq!(db.store.recover(&recovery, 500).unwrap(), 2);
}

pub(crate) fn the_range_bounds_and_test_events_are_respected(backend: &Backend) {
    let db = backend.db();
    let (hook, _) = an_outage(&db);
    let mut later = Recovery::new(hook, now() + time::Duration::minutes(1));
    assert_eq!(db.store.recover_count(&later).unwrap(), 0);
    later.since = now() - time::Duration::hours(2);
    later.until = Some(now() - time::Duration::hours(1));
    assert_eq!(db.store.recover(&later, 500).unwrap(), 0);

    // A failed test delivery is not recovered.
    let test = db
        .store
        .queue_test(hook, EventType::Cron, b"{}".to_vec(), LEASE)
        .unwrap();
    finish(&db, &test, Outcome::Failed, now());
    assert_eq!(db.store.recover_count(&since_an_hour_ago(hook)).unwrap(), 2);
}

pub(crate) fn an_inactive_or_unknown_webhook_is_refused(backend: &Backend) {
    let db = backend.db();
    let (hook, _) = an_outage(&db);
    assert!(matches!(
        db.store.recover(&since_an_hour_ago(9999), 500).unwrap_err(),
        Error::WebhookNotFound { id: 9999 }
    ));
    let mut off = WebhookUpdate::default();
    off.active = Some(false);
    db.store.update_webhook(hook, off).unwrap();
    assert!(matches!(
        db.store.recover(&since_an_hour_ago(hook), 500).unwrap_err(),
        Error::WebhookInactive { id } if id == hook
    ));
    assert!(matches!(
        db.store.recover_count(&since_an_hour_ago(hook)).unwrap_err(),
        Error::WebhookInactive { id } if id == hook
    ));
}

pub(crate) fn a_recovered_backlog_does_not_crowd_out_other_webhooks(backend: &Backend) {
    let db = backend.db();
    let big = db.hook("big/ns", "https://big.example.com/hook");
    db.emit_all("big/ns", &[EventType::BuildFinished; 200]);
    let t = now();
    for task in db.claim_all(t) {
        finish(&db, &task, Outcome::Failed, t);
    }
    assert_eq!(
        db.store.recover(&since_an_hour_ago(big.id), 500).unwrap(),
        200
    );
    // A webhook with one new event, after the recovered backlog was queued.
    let small = db.hook("small/ns", "https://small.example.com/hook");
    db.emit("small/ns", EventType::BuildFinished);

    // A claim of 10 serves both webhooks: the backlog waits in its own webhook's turn.
    let tasks = db.store.claim_due(now(), 10, LEASE).unwrap();
    let small_tasks = tasks
        .iter()
        .filter(|t| t.request.hook_id == small.id)
        .count();
    assert_eq!(
        small_tasks, 1,
        "the other webhook's event is in the first claim"
    );
    assert_eq!(tasks.len(), 10);
}
