//! The operator's notifications: a webhook disabled, enabled again, a task failed for good, a
//! breaker open too long, each queued in the same transaction as an ordinary task of the one
//! notification webhook; the reserved namespace; the intake's trace carried to the claim.

use std::time::Duration;

use djinn_hook_outbox::{BreakerOpening, Destination, Outcome, Task, TraceParent};
use djinn_hook_payload::EventType;
use djinn_hook_store::{
    Error, NOTIFICATIONS_NAMESPACE, NewWebhook, NotificationTarget, WebhookUpdate,
};
use serde_json::Value;

use crate::support::{Backend, Db, completion, event, now};

const OPERATOR: &str = "https://ops.example.com/notify";

fn with_operator(backend: &Backend) -> (Db, i64) {
    let db = backend.db();
    let mut target = NotificationTarget::new(OPERATOR);
    target.secret = Some("operator secret".into());
    let hook = db
        .store
        .set_notification_webhook(Some(target))
        .unwrap()
        .unwrap();
    (db, hook.id)
}

/// Every task due a second from now, and the notifications among them as JSON.
fn claim_notifications(db: &Db, operator: i64) -> (Vec<Task>, Vec<Value>) {
    let tasks = db.claim_all(now() + Duration::from_secs(1));
    let notes = tasks
        .iter()
        .filter(|t| t.request.hook_id == operator)
        .map(|t| {
            assert_eq!(t.request.event, EventType::Notification);
            assert_eq!(t.request.url, OPERATOR);
            let secret = t.request.secret.as_ref().expect("signed like any delivery");
            assert_eq!(secret.expose(), "operator secret");
            serde_json::from_slice(&t.request.body).unwrap()
        })
        .collect();
    (tasks, notes)
}

pub(crate) fn a_disabled_webhook_and_its_failed_task_are_reported(backend: &Backend) {
    let (db, operator) = with_operator(backend);
    let hook = db.hook("alice/ci", "https://user:pw@example.com/hook");
    db.emit("alice/ci", EventType::BuildFinished);
    let t = now();
    let tasks = db.claim_all(t);
    assert_eq!(tasks.len(), 1);
    let mut c = completion(&tasks[0], Outcome::Failed, t);
    c.attempt.response_status = Some(410);
    c.decision.disable_hook = Some("the receiver answered 410 Gone".into());
    db.store.complete_one(&c).unwrap();

    let (_, notes) = claim_notifications(&db, operator);
    assert_eq!(notes.len(), 2, "{notes:?}");
    let failed = &notes[0];
    assert_eq!(failed["type"], "delivery.failed");
    assert_eq!(failed["webhook"]["id"], hook.id);
    assert_eq!(failed["webhook"]["namespace"], "alice/ci");
    assert_eq!(
        failed["webhook"]["url"], "https://***@example.com/hook",
        "no credentials"
    );
    assert_eq!(failed["event"]["type"], "build.finished");
    assert_eq!(failed["event"]["id"], tasks[0].request.event_id.to_string());
    assert_eq!(
        (failed["attempts"].as_u64(), failed["status"].as_u64()),
        (Some(1), Some(410))
    );
    let disabled = &notes[1];
    assert_eq!(disabled["type"], "webhook.disabled");
    assert_eq!(disabled["reason"], "the receiver answered 410 Gone");
    assert_eq!(disabled["webhook"]["id"], hook.id);
    assert!(disabled["disabled_at"].is_string() && disabled["created_at"].is_string());

    // Enabled again by a user: reported with why it had been disabled.
    let mut update = WebhookUpdate::default();
    update.active = Some(true);
    db.store.update_webhook(hook.id, update).unwrap();
    let (_, notes) = claim_notifications(&db, operator);
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0]["type"], "webhook.enabled");
    assert_eq!(notes[0]["reason"], "the receiver answered 410 Gone");

    // A user's own pause and resume is no news.
    let mut pause = WebhookUpdate::default();
    pause.active = Some(false);
    db.store.update_webhook(hook.id, pause).unwrap();
    let mut resume = WebhookUpdate::default();
    resume.active = Some(true);
    db.store.update_webhook(hook.id, resume).unwrap();
    assert_eq!(claim_notifications(&db, operator).1.len(), 0);
}

pub(crate) fn the_notification_webhook_never_reports_itself(backend: &Backend) {
    let (db, operator) = with_operator(backend);
    db.hook("alice/ci", "https://example.com/hook");
    db.emit("alice/ci", EventType::Cron);
    let t = now();
    let tasks = db.claim_all(t);
    db.store
        .complete_one(&completion(&tasks[0], Outcome::Failed, t))
        .unwrap();
    let (tasks, notes) = claim_notifications(&db, operator);
    assert_eq!(notes.len(), 1);
    // The notification's own delivery fails for good, and its webhook is disabled.
    let mut c = completion(&tasks[0], Outcome::Failed, now());
    c.decision.disable_hook = Some("410".into());
    db.store.complete_one(&c).unwrap();
    assert_eq!(db.claim_all(now() + Duration::from_secs(1)).len(), 0);
    let hook = db.store.webhook(operator).unwrap().unwrap();
    assert!(!hook.active);
    // Configured again at the next start: enabled, with no notice about itself.
    let again = db
        .store
        .set_notification_webhook(Some(NotificationTarget::new(OPERATOR)))
        .unwrap()
        .unwrap();
    assert_eq!((again.id, again.active), (operator, true));
    assert_eq!(db.claim_all(now() + Duration::from_secs(1)).len(), 0);
    // Not configured any more: deactivated, nothing queued for it.
    let off = db.store.set_notification_webhook(None).unwrap().unwrap();
    assert!(!off.active);
}

pub(crate) fn nothing_is_queued_without_a_notification_webhook(backend: &Backend) {
    let db = backend.db();
    db.hook("alice/ci", "https://example.com/hook");
    db.emit("alice/ci", EventType::Cron);
    let t = now();
    let tasks = db.claim_all(t);
    let mut c = completion(&tasks[0], Outcome::Failed, t);
    c.decision.disable_hook = Some("410".into());
    db.store.complete_one(&c).unwrap();
    assert_eq!(db.claim_all(now() + Duration::from_secs(1)).len(), 0);
    assert_eq!(db.store.counts().unwrap().events, 1);
}

pub(crate) fn the_reserved_namespace_is_refused_to_users(backend: &Backend) {
    let (db, _) = with_operator(backend);
    let reserved = |err: Error| matches!(err, Error::InvalidNamespace { .. });
    assert!(reserved(
        db.store.ensure_namespace("_djinn-hooks/mine").unwrap_err()
    ));
    let new = NewWebhook::new(NOTIFICATIONS_NAMESPACE, "https://example.com/x");
    assert!(reserved(db.store.create_webhook(new).unwrap_err()));
    let sneaky = event(NOTIFICATIONS_NAMESPACE, EventType::Cron);
    assert!(reserved(db.store.accept_event(sneaky.clone()).unwrap_err()));
    assert!(reserved(db.store.accept_events(vec![sneaky]).unwrap_err()));
}

pub(crate) fn a_breaker_open_too_long_is_reported_once(backend: &Backend) {
    let (db, operator) = with_operator(backend);
    db.store
        .set_breaker_notice_after(Some(Duration::from_millis(1)));
    let opening = |after_probe| BreakerOpening {
        destination: Destination::of("http://dead.example.com:80").unwrap(),
        failures: 5,
        reason: "5 consecutive timeouts".into(),
        open_for: Duration::from_secs(30),
        until: now() + Duration::from_secs(30),
        after_probe,
    };
    db.store.breaker_opened(&[opening(false)]).unwrap();
    assert_eq!(claim_notifications(&db, operator).1.len(), 0, "not yet");
    std::thread::sleep(Duration::from_millis(20));
    db.store.breaker_opened(&[opening(true)]).unwrap();
    db.store.breaker_opened(&[opening(true)]).unwrap();
    let (_, notes) = claim_notifications(&db, operator);
    assert_eq!(notes.len(), 1, "once per run of openings: {notes:?}");
    assert_eq!(notes[0]["type"], "breaker.open");
    let destination = Destination::of("http://dead.example.com:80").unwrap();
    assert_eq!(notes[0]["destination"], destination.as_str());
    assert_eq!(notes[0]["reason"], "5 consecutive timeouts");
    assert_eq!(notes[0]["failures"], 5);
}

pub(crate) fn the_intake_trace_reaches_the_claim(backend: &Backend) {
    let db = backend.db();
    db.hook("alice/ci", "https://example.com/hook");
    let trace = TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    let mut traced = event("alice/ci", EventType::Cron);
    traced.traceparent = trace;
    db.store
        .accept_events(vec![traced, event("alice/ci", EventType::Images)])
        .unwrap();
    let tasks = db.claim_all(now());
    let traces: Vec<_> = tasks
        .iter()
        .map(|t| (t.request.event, t.request.traceparent))
        .collect();
    assert_eq!(
        traces,
        [(EventType::Cron, trace), (EventType::Images, None)]
    );
}

pub(crate) fn processes_starting_at_once_share_one_notification_webhook(backend: &Backend) {
    let db = backend.db();
    // Several handles on one file or database, as `serve` and `worker` processes started
    // together, each configuring the notification webhook at the same moment.
    let stores: Vec<_> = (0..4).map(|_| db.reopen()).collect();
    for round in 0..10 {
        let url = format!("{OPERATOR}/{round}");
        let start = std::sync::Barrier::new(stores.len());
        let ids: Vec<i64> = std::thread::scope(|scope| {
            let handles: Vec<_> = stores
                .iter()
                .map(|store| {
                    let (start, url) = (&start, url.clone());
                    scope.spawn(move || {
                        start.wait();
                        let hook = store
                            .set_notification_webhook(Some(NotificationTarget::new(url)))
                            .expect("every process starts")
                            .expect("a webhook");
                        hook.id
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let hooks = db.store.webhooks(NOTIFICATIONS_NAMESPACE).unwrap();
        assert_eq!(hooks.len(), 1, "round {round}: {hooks:?}");
        assert!(
            ids.iter().all(|&id| id == hooks[0].id),
            "round {round}: {ids:?}"
        );
        assert_eq!(hooks[0].payload_url, url);
        // The next round starts from none again.
        db.store.delete_webhook(hooks[0].id).unwrap();
    }
}
