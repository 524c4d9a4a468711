//! `Store::queue_test`: one event for one webhook, leased at once, completed like any task,
//! and marked as a test in the log.

use std::time::Duration;

use djinn_hook_outbox::Outcome;
use djinn_hook_outbox::WebhookSecret;
use djinn_hook_payload::{EventSet, EventType};
use djinn_hook_store::{DeliveryFilter, Error, NewWebhook, Page, WebhookUpdate};

use crate::support::{Backend, LEASE, completion, now};

const BODY: &[u8] = br#"{"test":true}"#;

pub(crate) fn queues_one_leased_task_for_that_hook_only_with_its_secret(backend: &Backend) {
    let db = backend.db();
    let mut new = NewWebhook::new("alice/ci", "https://example.com/one");
    new.secret = Some("s3cret".to_owned());
    new.standard_webhooks = true;
    let hook = db.create(new);
    let other = db.hook("alice/ci", "https://example.com/other");

    let before = now();
    let task = db
        .store
        .queue_test(hook.id, EventType::BuildFinished, BODY.to_vec(), LEASE)
        .unwrap();
    assert_eq!(task.request.hook_id, hook.id);
    assert_eq!(task.request.event, EventType::BuildFinished);
    assert_eq!(task.request.body, BODY);
    assert_eq!(task.request.url, "https://example.com/one");
    assert!(task.request.ssl && task.request.standard_webhooks);
    assert_eq!(
        task.request.secret.as_ref().map(WebhookSecret::expose),
        Some("s3cret")
    );
    assert_eq!((task.request.attempt, task.request.redelivery), (1, false));
    assert!(task.lease_until >= before + LEASE && task.lease_until <= now() + LEASE);
    assert!(!format!("{task:?}").contains("s3cret"));

    // Leased: no worker gets it, nor does the other webhook get anything.
    assert!(db.claim_all(now()).is_empty());
    let stats = db.store.counts().unwrap();
    assert_eq!((stats.leased, stats.pending, stats.events), (1, 0, 1));

    // Completed like any task: logged under the event id, as the hook's last response.
    let t = now();
    let done = db
        .store
        .complete_one(&completion(&task, Outcome::Delivered, t))
        .unwrap();
    assert!(done.lease_held);
    let logged = db
        .store
        .deliveries(
            DeliveryFilter::event(task.request.event_id),
            Page::default(),
        )
        .unwrap()
        .items;
    assert_eq!(logged.len(), 1);
    assert_eq!(Some(logged[0].id), done.delivery_id);
    assert_eq!(logged[0].hook_id, hook.id);
    assert_eq!(logged[0].request_body, BODY);
    assert_eq!(logged[0].attempt, 1);
    assert!(logged[0].test && !logged[0].redelivery);
    let last = db.store.last_responses(&[hook.id, other.id]).unwrap();
    assert_eq!(last[&hook.id].delivery_id, logged[0].id);
    assert!(!last.contains_key(&other.id));
    let stats = db.store.counts().unwrap();
    assert_eq!((stats.leased, stats.pending, stats.failed), (0, 0, 0));
    assert!(db.claim_all(now() + Duration::from_secs(3600)).is_empty());
}

pub(crate) fn an_inactive_or_unsubscribed_hook_is_tested_anyway(backend: &Backend) {
    let db = backend.db();
    let mut new = NewWebhook::new("alice/ci", "https://example.com/hook");
    new.events = vec!["build.started".to_owned()];
    new.active = false;
    let hook = db.create(new);
    assert_eq!(
        hook.events,
        EventSet::from_mask(EventType::BuildStarted.bit()).unwrap()
    );

    let task = db
        .store
        .queue_test(hook.id, EventType::InviteSent, BODY.to_vec(), LEASE)
        .unwrap();
    assert_eq!(
        (task.request.hook_id, task.request.event),
        (hook.id, EventType::InviteSent)
    );
    assert_eq!(task.request.secret, None);

    // A failed test is a failed attempt like any other; the hook stays as it was.
    let done = db
        .store
        .complete_one(&completion(&task, Outcome::Failed, now()))
        .unwrap();
    assert!(done.lease_held && done.delivery_id.is_some());
    let hook = db.store.webhook(hook.id).unwrap().unwrap();
    assert!(!hook.active);
    assert_eq!(hook.disabled_reason, None);
    assert!(hook.failing_since.is_some());
    assert_eq!(db.store.counts().unwrap().failed, 1);
    let failed = db
        .store
        .deliveries(DeliveryFilter::failed(), Page::default())
        .unwrap()
        .items;
    assert_eq!(failed.len(), 1);
}

pub(crate) fn an_unclaimed_test_comes_back_when_its_lease_runs_out(backend: &Backend) {
    let db = backend.db();
    let hook = db.hook("alice/ci", "https://example.com/hook");
    let task = db
        .store
        .queue_test(hook.id, EventType::Cron, BODY.to_vec(), LEASE)
        .unwrap();
    let later = db.claim_all(task.lease_until);
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].task_id, task.task_id);
    assert_eq!(later[0].request.attempt, 2);
    assert_ne!(later[0].lease, task.lease);

    // The first holder's completion is still logged, but no longer changes the task.
    let done = db
        .store
        .complete_one(&completion(&task, Outcome::Delivered, now()))
        .unwrap();
    assert!(!done.lease_held);
    assert_eq!(db.store.counts().unwrap().leased, 1);
}

pub(crate) fn an_unknown_hook_stores_nothing_and_a_wrong_key_is_reported(backend: &Backend) {
    let db = backend.db();
    let err = db
        .store
        .queue_test(404, EventType::Cron, BODY.to_vec(), LEASE)
        .unwrap_err();
    assert!(matches!(err, Error::WebhookNotFound { id: 404 }), "{err:?}");
    assert_eq!(db.store.counts().unwrap().events, 0);

    let hook = db.hook("alice/ci", "https://example.com/hook");
    db.store
        .update_webhook(hook.id, {
            let mut update = WebhookUpdate::default();
            update.secret = djinn_hook_store::SecretUpdate::Set("s3cret".to_owned());
            update
        })
        .unwrap();
    let wrong = db.reopen_with(djinn_hook_store::SecretKey::from_bytes([1; 32]));
    let err = wrong
        .queue_test(hook.id, EventType::Cron, BODY.to_vec(), LEASE)
        .unwrap_err();
    assert!(
        matches!(err, Error::WrongSecretKey { hook_id } if hook_id == hook.id),
        "{err:?}"
    );
    assert_eq!(db.store.counts().unwrap().events, 0, "rolled back");
}

pub(crate) fn test_deliveries_are_marked_and_filtered_and_their_redeliveries_too(
    backend: &Backend,
) {
    let db = backend.db();
    let hook = db.hook("alice/ci", "https://example.com/hook");
    // An ordinary event and a test, both delivered.
    db.emit("alice/ci", EventType::BuildSubmitted);
    let real = db.claim_all(now()).remove(0);
    db.store
        .complete_one(&completion(&real, Outcome::Delivered, now()))
        .unwrap();
    let test = db
        .store
        .queue_test(hook.id, EventType::BuildSubmitted, BODY.to_vec(), LEASE)
        .unwrap();
    let tested = db
        .store
        .complete_one(&completion(&test, Outcome::Delivered, now()))
        .unwrap()
        .delivery_id
        .unwrap();

    let list = |test: Option<bool>| -> Vec<(uuid::Uuid, bool, bool)> {
        let mut filter = DeliveryFilter::hook(hook.id);
        filter.test = test;
        db.store
            .deliveries(filter, Page::default())
            .unwrap()
            .items
            .iter()
            .map(|d| (d.event_id, d.test, d.redelivery))
            .collect()
    };
    assert_eq!(
        list(None),
        [
            (test.request.event_id, true, false),
            (real.request.event_id, false, false)
        ]
    );
    assert_eq!(list(Some(true)), [(test.request.event_id, true, false)]);
    assert_eq!(list(Some(false)), [(real.request.event_id, false, false)]);
    assert!(db.store.delivery(tested).unwrap().unwrap().test);

    // By event type: both were build.submitted; no cron delivery exists.
    let by_type = |event: EventType| {
        let mut filter = DeliveryFilter::hook(hook.id);
        filter.event_type = Some(event);
        db.store
            .deliveries(filter, Page::default())
            .unwrap()
            .items
            .len()
    };
    assert_eq!(by_type(EventType::BuildSubmitted), 2);
    assert_eq!(by_type(EventType::Cron), 0);

    // Sending a test again is still a test (same event), flagged as a redelivery.
    db.store.redeliver(tested).unwrap();
    let again = db.claim_all(now()).remove(0);
    assert!(again.request.redelivery);
    db.store
        .complete_one(&completion(&again, Outcome::Delivered, now()))
        .unwrap();
    assert_eq!(
        list(Some(true)),
        [
            (test.request.event_id, true, true),
            (test.request.event_id, true, false)
        ]
    );
    assert_eq!(list(Some(false)), [(real.request.event_id, false, false)]);
}
