//! Outbox flows: accept, claim, complete (deliver, retry, fail, disable), redeliver,
//! leases, and all-or-nothing transactions.

use std::time::Duration;

use djinn_hook_outbox::{Decision, Outcome};
use djinn_hook_payload::EventType;
use djinn_hook_store::{DeliveryFilter, Error, NewEvent, Page, WebhookUpdate};
use time::OffsetDateTime;

use crate::support::{Backend, LEASE, all_delivered, attempt, completion, event, now};

pub(crate) fn delivered_task_is_finished_and_logged(backend: &Backend) {
    let db = backend.db();
    let hook = db.hook("alice/ci", "https://example.com/hook");
    let accepted = db.emit("alice/ci", EventType::BuildFinished);
    let t = now();
    let tasks = db.claim_all(t);
    assert_eq!(tasks.len(), 1);
    let task = &tasks[0];
    assert_eq!(task.request.event_id, accepted.event_id);
    assert_eq!(task.request.event, EventType::BuildFinished);
    assert_eq!(task.request.hook_id, hook.id);
    assert_eq!(task.request.url, hook.payload_url);
    assert!(task.request.ssl);
    assert_eq!(task.request.body, br#"{"event":"build.finished"}"#);
    assert_eq!((task.request.attempt, task.request.redelivery), (1, false));
    assert_eq!(task.lease_until, t + LEASE);
    assert_eq!(db.store.counts().unwrap().leased, 1);
    assert!(db.claim_all(t).is_empty(), "leased");

    let done = db
        .store
        .complete(&[completion(task, Outcome::Delivered, t)])
        .unwrap();
    assert!(done[0].lease_held);
    let delivery = db
        .store
        .delivery(done[0].delivery_id.unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(delivery.hook_id, hook.id);
    assert_eq!(delivery.event_id, accepted.event_id);
    assert_eq!(delivery.event, EventType::BuildFinished);
    assert_eq!(delivery.response_status, Some(200));
    assert_eq!(delivery.request_body, task.request.body);
    assert_eq!(delivery.duration, Duration::from_millis(5));
    assert_eq!(delivery.created_at, t);
    assert!(!delivery.failed());
    assert!(db.claim_all(t + LEASE * 2).is_empty(), "finished for good");
    let stats = db.store.counts().unwrap();
    assert_eq!((stats.pending, stats.leased, stats.failed), (0, 0, 0));
    assert_eq!(db.store.next_due_at().unwrap(), None);
}

pub(crate) fn retry_then_fail_then_retry_now(backend: &Backend) {
    let db = backend.db();
    let hook = db.hook("alice/ci", "https://example.com/hook");
    db.emit("alice/ci", EventType::Cron);
    let t0 = now();
    let task = db.claim_all(t0).remove(0);
    let retry_at = t0 + Duration::from_secs(30);
    db.store
        .complete_one(&completion(&task, Outcome::RetryAt(retry_at), t0))
        .unwrap();
    let hook_now = db.store.webhook(hook.id).unwrap().unwrap();
    assert_eq!(hook_now.failing_since, Some(t0));
    assert_eq!(db.store.next_due_at().unwrap(), Some(retry_at));
    assert!(db.claim_all(t0 + Duration::from_secs(29)).is_empty());

    let t1 = retry_at;
    let task = db.claim_all(t1).remove(0);
    assert_eq!(task.request.attempt, 2);
    assert_eq!(task.hook_failing_since, Some(t0));
    db.store
        .complete_one(&completion(&task, Outcome::Failed, t1))
        .unwrap();
    // failing_since keeps the first failure.
    assert_eq!(
        db.store.webhook(hook.id).unwrap().unwrap().failing_since,
        Some(t0)
    );
    let stats = db.store.counts().unwrap();
    assert_eq!((stats.pending, stats.failed), (0, 1));
    assert!(db.claim_all(t1 + Duration::from_secs(3600)).is_empty());

    assert_eq!(db.store.retry_now(hook.id).unwrap(), 1);
    let task = db.claim_all(now()).remove(0);
    assert_eq!(task.request.attempt, 3);
    db.store
        .complete_one(&completion(&task, Outcome::Delivered, now()))
        .unwrap();
    assert_eq!(
        db.store.webhook(hook.id).unwrap().unwrap().failing_since,
        None
    );
    let log = db
        .store
        .deliveries(DeliveryFilter::hook(hook.id), Page::default())
        .unwrap();
    let attempts: Vec<u32> = log.items.iter().map(|d| d.attempt).collect();
    assert_eq!(attempts, [3, 2, 1], "newest first");
}

pub(crate) fn lease_expiry_gives_the_task_back_and_a_late_completion_is_still_logged(
    backend: &Backend,
) {
    let db = backend.db();
    let hook = db.hook("alice/ci", "https://example.com/hook");
    db.emit("alice/ci", EventType::Images);
    let t0 = now();
    let lease = Duration::from_secs(30);
    let first = db.store.claim_due(t0, 10, lease).unwrap().remove(0);
    assert!(
        db.store
            .claim_due(t0 + Duration::from_secs(29), 10, lease)
            .unwrap()
            .is_empty()
    );
    // The first worker "crashed"; after the lease another one gets the task.
    let second = db.store.claim_due(t0 + lease, 10, lease).unwrap().remove(0);
    assert_eq!(second.task_id, first.task_id);
    assert_ne!(second.lease, first.lease);
    assert_eq!(second.request.attempt, 2);

    // The first worker comes back late: its attempt is recorded, its outcome ignored.
    let late = db
        .store
        .complete_one(&completion(&first, Outcome::Failed, t0 + lease))
        .unwrap();
    assert!(!late.lease_held);
    assert!(late.delivery_id.is_some());
    assert_eq!(db.store.counts().unwrap().failed, 0, "outcome not applied");
    let done = db
        .store
        .complete_one(&completion(&second, Outcome::Delivered, t0 + lease))
        .unwrap();
    assert!(done.lease_held);
    let log = db
        .store
        .deliveries(DeliveryFilter::hook(hook.id), Page::default())
        .unwrap();
    assert_eq!(log.items.len(), 2);
    let stats = db.store.counts().unwrap();
    assert_eq!((stats.pending, stats.leased, stats.failed), (0, 0, 0));
}

pub(crate) fn a_late_completion_after_the_task_was_delivered_is_still_logged(backend: &Backend) {
    let db = backend.db();
    let hook = db.hook("alice/ci", "https://example.com/hook");
    let accepted = db.emit("alice/ci", EventType::Images);
    let t0 = now();
    let lease = Duration::from_secs(30);
    let first = db.store.claim_due(t0, 10, lease).unwrap().remove(0);
    let second = db.store.claim_due(t0 + lease, 10, lease).unwrap().remove(0);
    assert_eq!(second.task_id, first.task_id);
    let done = db
        .store
        .complete_one(&completion(&second, Outcome::Delivered, t0 + lease))
        .unwrap();
    assert!(done.lease_held);
    // The first worker comes back after the task was delivered: its attempt is still recorded.
    let late = db
        .store
        .complete_one(&completion(&first, Outcome::Delivered, t0 + lease))
        .unwrap();
    assert!(!late.lease_held);
    let late = db
        .store
        .delivery(late.delivery_id.unwrap())
        .unwrap()
        .unwrap();
    assert_eq!((late.hook_id, late.event_id), (hook.id, accepted.event_id));
    assert_eq!(late.request_body, first.request.body);
    let log = db
        .store
        .deliveries(DeliveryFilter::hook(hook.id), Page::default())
        .unwrap();
    assert_eq!(log.items.len(), 2);
    let stats = db.store.counts().unwrap();
    assert_eq!((stats.pending, stats.leased, stats.failed), (0, 0, 0));
    assert!(
        db.claim_all(t0 + lease * 3).is_empty(),
        "delivered for good"
    );
}

pub(crate) fn a_batch_with_one_bad_namespace_stores_nothing(backend: &Backend) {
    let db = backend.db();
    db.hook("alice/ci", "https://example.com/hook");
    let err = db
        .store
        .accept_events(vec![
            event("alice/ci", EventType::BuildStarted),
            event("alice/ci", EventType::BuildFinished),
            event("nobody/here", EventType::BuildFinished),
        ])
        .unwrap_err();
    assert!(
        matches!(&err, Error::NamespaceNotFound { namespace } if namespace == "nobody/here"),
        "{err:?}"
    );
    let stats = db.store.counts().unwrap();
    assert_eq!((stats.events, stats.pending), (0, 0));
    assert!(db.claim_all(now()).is_empty());

    let ok = db.emit_all(
        "alice/ci",
        &[EventType::BuildStarted, EventType::BuildFinished],
    );
    assert_eq!(ok.len(), 2);
    assert_ne!(ok[0].event_id, ok[1].event_id);
    assert_eq!(db.store.counts().unwrap().pending, 2);
}

pub(crate) fn a_completion_batch_is_one_transaction(backend: &Backend) {
    let db = backend.db();
    db.hook("alice/ci", "https://example.com/hook");
    let batch: Vec<NewEvent> = (0..5)
        .map(|_| event("alice/ci", EventType::Objects))
        .collect();
    db.store.accept_events(batch).unwrap();
    let t = now();
    let tasks = db.claim_all(t);
    assert_eq!(tasks.len(), 5);
    let done = db.store.complete(&all_delivered(&tasks, t)).unwrap();
    assert!(done.iter().all(|c| c.lease_held && c.delivery_id.is_some()));
    let stats = db.store.counts().unwrap();
    assert_eq!((stats.pending, stats.deliveries), (0, 5));
}

/// A webhook deactivated while two of its tasks are under way: the one delivered is not left
/// failed (a retry of it would send it twice), the one to retry is failed.
pub(crate) fn a_hook_deactivated_in_flight_keeps_the_delivery_and_fails_the_retry(
    backend: &Backend,
) {
    let db = backend.db();
    let hook = db.hook("alice/ci", "https://example.com/hook");
    db.emit_all(
        "alice/ci",
        &[EventType::BuildStarted, EventType::BuildFinished],
    );
    let t = now();
    let tasks = db.claim_all(t);
    assert_eq!(tasks.len(), 2);
    set_active(&db, hook.id, false);
    let done = db
        .store
        .complete(&[
            completion(&tasks[0], Outcome::Delivered, t),
            completion(&tasks[1], Outcome::RetryAt(t + Duration::from_secs(60)), t),
        ])
        .unwrap();
    assert!(done.iter().all(|d| d.delivery_id.is_some()), "both logged");
    let counts = db.store.counts().unwrap();
    assert_eq!(
        (counts.failed, counts.pending, counts.leased),
        (1, 0, 0),
        "the retry failed, the delivery not"
    );
}

pub(crate) fn disabling_a_hook_fails_its_tasks_and_reenabling_clears_it(backend: &Backend) {
    let db = backend.db();
    let hook = db.hook("alice/ci", "https://example.com/hook");
    let other = db.hook("alice/ci", "https://example.com/other");
    db.emit_all(
        "alice/ci",
        &[EventType::BuildStarted, EventType::BuildFinished],
    );
    let t = now();
    let tasks = db.store.claim_due(t, 1, LEASE).unwrap();
    assert_eq!(
        tasks[0].request.hook_id, hook.id,
        "oldest first, hooks in id order"
    );
    let mut c = completion(&tasks[0], Outcome::Failed, t);
    c.attempt.response_status = Some(410);
    c.decision.disable_hook = Some("410 Gone".into());
    db.store.complete_one(&c).unwrap();

    let disabled = db.store.webhook(hook.id).unwrap().unwrap();
    assert!(!disabled.active);
    assert_eq!(disabled.disabled_reason.as_deref(), Some("410 Gone"));
    assert_eq!(disabled.disabled_at, Some(t));
    let stats = db.store.counts().unwrap();
    assert_eq!(stats.disabled_hooks, 1);
    assert_eq!(stats.failed, 2, "its other pending task failed too");
    let rest = db.claim_all(t);
    assert!(rest.iter().all(|task| task.request.hook_id == other.id));
    assert_eq!(rest.len(), 2);
    // An inactive hook gets no new tasks either.
    let accepted = db.emit("alice/ci", EventType::Cron);
    assert_eq!(accepted.matched, 1);
    assert!(matches!(
        db.store.retry_now(hook.id).unwrap_err(),
        Error::WebhookInactive { .. }
    ));

    let enabled = db
        .store
        .update_webhook(hook.id, {
            let mut update = WebhookUpdate::default();
            update.active = Some(true);
            update
        })
        .unwrap();
    assert!(enabled.active);
    assert_eq!(
        (
            enabled.disabled_reason,
            enabled.disabled_at,
            enabled.failing_since
        ),
        (None, None, None)
    );
    assert_eq!(db.store.retry_now(hook.id).unwrap(), 2);
    let revived = db.claim_all(now());
    assert_eq!(revived.len(), 3, "2 revived + the new cron task of `other`");
}

pub(crate) fn redelivery_resends_the_recorded_body_with_the_same_event_id(backend: &Backend) {
    let db = backend.db();
    let hook = db.hook("alice/ci", "https://example.com/hook");
    let accepted = db.emit("alice/ci", EventType::BuildTagged);
    let t = now();
    let task = db.claim_all(t).remove(0);
    let c = completion(&task, Outcome::Delivered, t);
    let delivery_id = db.store.complete_one(&c).unwrap().delivery_id.unwrap();

    let task_id = db.store.redeliver(delivery_id).unwrap();
    let again = db.claim_all(now()).remove(0);
    assert_eq!(again.task_id, task_id);
    assert_ne!(again.task_id, task.task_id);
    assert_eq!(again.request.event_id, accepted.event_id);
    assert_eq!(again.request.hook_id, hook.id);
    assert!(again.request.redelivery);
    assert_eq!(again.request.attempt, 1);
    assert_eq!(again.request.body, task.request.body);
    let id = db
        .store
        .complete_one(&completion(&again, Outcome::Delivered, now()))
        .unwrap()
        .delivery_id
        .unwrap();
    let redelivered = db.store.delivery(id).unwrap().unwrap();
    assert!(redelivered.redelivery);
    assert_eq!(redelivered.request_body, task.request.body);
    assert!(!redelivered.request_truncated);
    let of_event = db
        .store
        .deliveries(DeliveryFilter::event(accepted.event_id), Page::default())
        .unwrap();
    assert_eq!(of_event.items.len(), 2);

    assert!(matches!(
        db.store.redeliver(9999).unwrap_err(),
        Error::DeliveryNotFound { id: 9999 }
    ));
    set_active(&db, hook.id, false);
    assert!(matches!(
        db.store.redeliver(delivery_id).unwrap_err(),
        Error::WebhookInactive { id } if id == hook.id
    ));
}

pub(crate) fn pruning_an_event_takes_its_failed_task(backend: &Backend) {
    let db = backend.db();
    db.hook("alice/ci", "https://example.com/hook");
    db.emit("alice/ci", EventType::Variables);
    let task = db.claim_all(now()).remove(0);
    let later = now() + Duration::from_secs(3600);
    db.store
        .complete_one(&completion(&task, Outcome::Failed, later))
        .unwrap();
    assert_eq!(db.store.counts().unwrap().failed, 1);
    let pruned = db
        .store
        .prune_before(later + Duration::from_secs(1))
        .unwrap();
    assert_eq!((pruned.events, pruned.deliveries), (1, 1));
    let stats = db.store.counts().unwrap();
    assert_eq!((stats.events, stats.failed, stats.pending), (0, 0, 0));
}

pub(crate) fn an_event_outlives_pruning_while_a_delivery_refers_to_it(backend: &Backend) {
    let db = backend.db();
    db.hook("alice/ci", "https://example.com/hook");
    let accepted = db.emit("alice/ci", EventType::Variables);
    let task = db.claim_all(now()).remove(0);
    let later = now() + Duration::from_secs(3600);
    let delivery_id = db
        .store
        .complete_one(&completion(&task, Outcome::Delivered, later))
        .unwrap()
        .delivery_id
        .unwrap();
    // The event is older than the cutoff and finished, but its delivery is newer.
    let pruned = db
        .store
        .prune_before(now() + Duration::from_secs(1))
        .unwrap();
    assert_eq!((pruned.events, pruned.deliveries), (0, 0));
    db.store.redeliver(delivery_id).unwrap();
    let again = db.claim_all(now()).remove(0);
    assert_eq!(again.request.event_id, accepted.event_id);
    assert_eq!(again.request.body, task.request.body);
    // Once its deliveries are pruned, the (finished) event goes too.
    db.store
        .complete_one(&completion(&again, Outcome::Delivered, later))
        .unwrap();
    let pruned = db
        .store
        .prune_before(later + Duration::from_secs(1))
        .unwrap();
    assert_eq!((pruned.events, pruned.deliveries), (1, 2));
    assert_eq!(db.store.counts().unwrap(), Default::default());
}

pub(crate) fn deleting_a_hook_takes_its_tasks_and_log(backend: &Backend) {
    let db = backend.db();
    let hook = db.hook("alice/ci", "https://example.com/hook");
    let keep = db.hook("alice/ci", "https://example.com/keep");
    db.emit_all("alice/ci", &[EventType::Cron, EventType::Cron]);
    let t = now();
    let tasks = db.store.claim_due(t, 2, LEASE).unwrap();
    let ids: Vec<_> = db.store.complete(&all_delivered(&tasks, t)).unwrap();
    assert_eq!(db.store.counts().unwrap().deliveries, 2);
    let leased = db.store.claim_due(t, 1, LEASE).unwrap().remove(0);
    assert_eq!(leased.request.hook_id, hook.id);

    db.store.delete_webhook(hook.id).unwrap();
    for c in &ids {
        let d = db.store.delivery(c.delivery_id.unwrap()).unwrap();
        assert!(d.is_none_or(|d| d.hook_id == keep.id));
    }
    let stats = db.store.counts().unwrap();
    assert_eq!(stats.pending + stats.leased, 1, "only `keep`'s second task");
    assert_eq!(stats.deliveries, 1);
    // A completion for a deleted hook's task has nothing to attach to.
    let orphan = db
        .store
        .complete_one(&completion(&leased, Outcome::Delivered, t))
        .unwrap();
    assert_eq!(orphan.delivery_id, None);
    assert!(!orphan.lease_held);
}

pub(crate) fn bodies_are_capped_and_marked_truncated(backend: &Backend) {
    let db = backend.db();
    db.hook("alice/ci", "https://example.com/hook");
    db.store
        .accept_event(NewEvent::new(
            "alice/ci",
            EventType::Objects,
            vec![b'x'; 100_000],
        ))
        .unwrap();
    let t = now();
    let task = db.claim_all(t).remove(0);
    assert_eq!(
        task.request.body.len(),
        100_000,
        "the outbox keeps the full payload"
    );
    let mut record = attempt(&task, Some(200), t);
    record.response_body = vec![b'y'; 70_000];
    let id = db
        .store
        .complete_one(&djinn_hook_outbox::Completion::new(
            task.task_id,
            task.lease,
            record,
            Decision::new(Outcome::Delivered),
        ))
        .unwrap()
        .delivery_id
        .unwrap();
    let d = db.store.delivery(id).unwrap().unwrap();
    assert_eq!(d.request_body.len(), djinn_hook_store::MAX_BODY);
    assert_eq!(d.response_body.len(), djinn_hook_store::MAX_BODY);
    assert!(d.request_truncated && d.response_truncated);
    // A truncated record redelivers the event's full payload.
    db.store.redeliver(id).unwrap();
    assert_eq!(db.claim_all(now())[0].request.body.len(), 100_000);
}

pub(crate) fn claim_respects_limit_and_due_order(backend: &Backend) {
    let db = backend.db();
    db.hook("alice/ci", "https://example.com/hook");
    let accepted = db.emit_all("alice/ci", &[EventType::Cron; 5]);
    assert_eq!(db.store.claim_due(now(), 0, LEASE).unwrap().len(), 0);
    let first = db.store.claim_due(now(), 2, LEASE).unwrap();
    let rest = db.store.claim_due(now(), 10, LEASE).unwrap();
    assert_eq!((first.len(), rest.len()), (2, 3));
    let order: Vec<_> = first
        .iter()
        .chain(&rest)
        .map(|t| t.request.event_id)
        .collect();
    let expected: Vec<_> = accepted.iter().map(|a| a.event_id).collect();
    assert_eq!(order, expected);
    // Not yet due in the past.
    let db2 = backend.db();
    db2.hook("a/b", "https://example.com");
    db2.store
        .accept_event(event("a/b", EventType::Cron))
        .unwrap();
    let past = OffsetDateTime::now_utc() - Duration::from_secs(60);
    assert!(db2.store.claim_due(past, 10, LEASE).unwrap().is_empty());
    // A lease too long to represent means "until further notice".
    let forever = db2.store.claim_due(now(), 10, Duration::MAX).unwrap();
    assert_eq!(forever[0].lease_until.year(), 2262);
    let later = now() + Duration::from_secs(3650 * 24 * 3600);
    assert!(db2.store.claim_due(later, 10, LEASE).unwrap().is_empty());
}

pub(crate) fn failing_since_follows_the_order_of_a_batch(backend: &Backend) {
    let db = backend.db();
    let hook = db.hook("alice/ci", "https://example.com/hook");
    db.emit_all("alice/ci", &[EventType::Cron; 4]);
    let t0 = now();
    let at = |s: u64| t0 + Duration::from_secs(s);
    let tasks = db.claim_all(t0);
    let failing = || db.store.webhook(hook.id).unwrap().unwrap().failing_since;
    // Failures only: the first failure's time.
    db.store
        .complete(&[
            completion(&tasks[0], Outcome::RetryAt(at(100)), at(1)),
            completion(&tasks[1], Outcome::Failed, at(2)),
        ])
        .unwrap();
    assert_eq!(failing(), Some(at(1)));
    // A success then a failure: failing since that failure, not the older one.
    db.store
        .complete(&[
            completion(&tasks[2], Outcome::Delivered, at(3)),
            completion(&tasks[3], Outcome::Failed, at(4)),
        ])
        .unwrap();
    assert_eq!(failing(), Some(at(4)));
    // A failure then a success: healthy.
    let task = db.claim_all(at(100)).remove(0);
    db.store.retry_now(hook.id).unwrap();
    let more = db.claim_all(now());
    let mut batch = vec![completion(&more[0], Outcome::Failed, at(5))];
    batch.push(completion(&task, Outcome::Delivered, at(6)));
    db.store.complete(&batch).unwrap();
    assert_eq!(failing(), None);
}

pub(crate) fn the_log_does_not_store_the_payload_twice(backend: &Backend) {
    let db = backend.db();
    db.hook("alice/ci", "https://example.com/hook");
    db.emit_all("alice/ci", &[EventType::Cron, EventType::Images]);
    let t = now();
    let tasks = db.claim_all(t);
    let ids: Vec<i64> = db
        .store
        .complete(&all_delivered(&tasks, t))
        .unwrap()
        .iter()
        .map(|c| c.delivery_id.unwrap())
        .collect();
    // A redelivery sends what was recorded: the payload again, still not stored twice.
    db.store.redeliver(ids[0]).unwrap();
    let again = db.claim_all(now());
    let redelivered = db.store.complete(&all_delivered(&again, t)).unwrap()[0]
        .delivery_id
        .unwrap();
    assert_eq!(db.stored_request_bodies(), [None, None, None]);
    // Reading gives back what was sent.
    for (id, task) in [
        (ids[0], &tasks[0]),
        (ids[1], &tasks[1]),
        (redelivered, &tasks[0]),
    ] {
        let d = db.store.delivery(id).unwrap().unwrap();
        assert_eq!(d.request_body, task.request.body);
    }
}

/// Turns webhook `id` on or off.
fn set_active(db: &crate::support::Db, id: i64, active: bool) {
    let mut update = WebhookUpdate::default();
    update.active = Some(active);
    db.store.update_webhook(id, update).unwrap();
}
