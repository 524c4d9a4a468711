//! The delivery log: pagination, filters, last responses, pruning.

use std::sync::Arc;
use std::time::Duration;

use djinn_hook_outbox::Outcome;
use djinn_hook_payload::EventType;
use djinn_hook_store::{Clock, DeliveryFilter, ManualClock, Page};
use time::OffsetDateTime;

use crate::support::{Backend, Db, completion, now};

/// Accepts `n` events for `ns` and completes each task once, with `outcome`,
/// recorded at `at`. Returns the delivery ids.
fn deliver(db: &Db, ns: &str, n: usize, outcome: Outcome, at: OffsetDateTime) -> Vec<i64> {
    db.emit_all(ns, &vec![EventType::BuildSubmitted; n]);
    let tasks = db.claim_all(now());
    db.store
        .complete(
            &tasks
                .iter()
                .map(|t| completion(t, outcome, at))
                .collect::<Vec<_>>(),
        )
        .unwrap()
        .into_iter()
        .map(|c| c.delivery_id.unwrap())
        .collect()
}

pub(crate) fn pages_of_25_newest_first(backend: &Backend) {
    let db = backend.db();
    let hook = db.hook("alice/ci", "https://example.com/hook");
    let ids = deliver(&db, "alice/ci", 30, Outcome::Delivered, now());
    let first = db
        .store
        .deliveries(DeliveryFilter::hook(hook.id), Page::default())
        .unwrap();
    assert_eq!(first.items.len(), 25);
    assert!(first.has_next);
    assert_eq!(first.page, 1);
    assert_eq!(first.items[0].id, *ids.last().unwrap(), "newest first");
    let second = db
        .store
        .deliveries(DeliveryFilter::hook(hook.id), Page::new(2))
        .unwrap();
    assert_eq!(second.items.len(), 5);
    assert!(!second.has_next);
    assert_eq!(second.items[4].id, ids[0]);
    let small = db
        .store
        .deliveries(
            DeliveryFilter::default(),
            Page {
                page: 3,
                per_page: 10,
            },
        )
        .unwrap();
    assert_eq!((small.items.len(), small.has_next), (10, false));
    let beyond = db
        .store
        .deliveries(DeliveryFilter::default(), Page::new(9))
        .unwrap();
    assert!(beyond.items.is_empty() && !beyond.has_next);
}

pub(crate) fn failed_filter_and_json_shape(backend: &Backend) {
    let db = backend.db();
    let hook = db.hook("alice/ci", "https://example.com/hook");
    deliver(&db, "alice/ci", 2, Outcome::Delivered, now());
    let failed = deliver(&db, "alice/ci", 3, Outcome::Failed, now());
    let page = db
        .store
        .deliveries(DeliveryFilter::failed(), Page::default())
        .unwrap();
    let mut got: Vec<i64> = page.items.iter().map(|d| d.id).collect();
    got.reverse();
    assert_eq!(got, failed);
    assert!(page.items.iter().all(|d| d.failed()));
    let mut both = DeliveryFilter::failed();
    both.hook_id = Some(hook.id + 100);
    assert!(
        db.store
            .deliveries(both, Page::default())
            .unwrap()
            .items
            .is_empty()
    );
    let one = db.store.delivery(failed[0]).unwrap().unwrap();
    insta::assert_json_snapshot!("delivery", one, {
        ".id" => "[id]",
        ".hook_id" => "[id]",
        ".event_id" => "[uuid]",
        ".created_at" => "[time]",
    });
}

pub(crate) fn last_response_of_many_hooks_in_one_query(backend: &Backend) {
    let db = backend.db();
    let a = db.hook("alice/a", "https://example.com/a");
    let b = db.hook("alice/b", "https://example.com/b");
    let c = db.hook("alice/c", "https://example.com/c");
    let t0 = now();
    deliver(&db, "alice/a", 1, Outcome::Failed, t0);
    let a_last = deliver(
        &db,
        "alice/a",
        1,
        Outcome::Delivered,
        t0 + Duration::from_secs(1),
    );
    let b_last = deliver(&db, "alice/b", 1, Outcome::Failed, t0);
    let last = db.store.last_responses(&[a.id, b.id, c.id, 4242]).unwrap();
    assert_eq!(last.len(), 2);
    let la = &last[&a.id];
    assert_eq!(la.delivery_id, a_last[0]);
    assert_eq!(la.code, Some(200));
    assert_eq!(la.error, None);
    assert_eq!(la.created_at, t0 + Duration::from_secs(1));
    assert_eq!(la.duration, Duration::from_millis(5));
    let lb = &last[&b.id];
    assert_eq!(lb.delivery_id, b_last[0]);
    assert_eq!(
        (lb.code, lb.error.as_deref()),
        (Some(500), Some("status 500"))
    );
    assert!(!last.contains_key(&c.id));
    assert!(db.store.last_responses(&[]).unwrap().is_empty());
    let json = serde_json::to_value(la).unwrap();
    assert_eq!(json["duration"], 5_000_000, "nanoseconds, as the original");
}

pub(crate) fn success_rates_count_only_the_window(backend: &Backend) {
    let db = backend.db();
    let a = db.hook("alice/a", "https://example.com/a");
    let b = db.hook("alice/b", "https://example.com/b");
    let c = db.hook("alice/c", "https://example.com/c");
    let t0 = now();
    let day = Duration::from_secs(24 * 60 * 60);
    // Old attempts (before the window) do not count.
    deliver(
        &db,
        "alice/a",
        3,
        Outcome::Failed,
        t0 - day - Duration::from_secs(1),
    );
    deliver(
        &db,
        "alice/a",
        3,
        Outcome::Delivered,
        t0 - day + Duration::from_secs(1),
    );
    deliver(&db, "alice/a", 1, Outcome::Failed, t0);
    deliver(&db, "alice/b", 2, Outcome::Failed, t0);
    deliver(&db, "alice/c", 2, Outcome::Failed, t0 - day - day);
    let rates = db
        .store
        .success_rates(&[a.id, b.id, c.id], t0 - day)
        .unwrap();
    assert_eq!(
        rates[&a.id],
        djinn_hook_store::SuccessRate {
            attempts: 4,
            delivered: 3
        }
    );
    assert_eq!(rates[&a.id].percent(), 75);
    assert_eq!(rates[&b.id].percent(), 0);
    assert_eq!(rates[&b.id].attempts, 2);
    assert!(!rates.contains_key(&c.id), "nothing in the window");
    assert!(db.store.success_rates(&[], t0).unwrap().is_empty());
}

pub(crate) fn prune_removes_old_rows_and_keeps_recent_ones(backend: &Backend) {
    let clock = Arc::new(ManualClock::new());
    let db = backend.db().with_clock(clock.clone());
    let hook = db.hook("alice/ci", "https://example.com/hook");
    let old = now() - Duration::from_secs(40 * 24 * 3600);
    // 1,005 old deliveries: more than one prune batch.
    let old_ids = deliver(&db, "alice/ci", 1005, Outcome::Delivered, old);
    // An old event whose task is still pending (retrying tomorrow).
    let pending_old = db.emit("alice/ci", EventType::Cron);
    let tomorrow = now() + Duration::from_secs(24 * 3600);
    let task = db.claim_all(now()).remove(0);
    db.store
        .complete_one(&completion(&task, Outcome::RetryAt(tomorrow), old))
        .unwrap();
    clock.advance(Duration::from_millis(1));
    let cutoff = clock.now_utc();
    clock.advance(Duration::from_millis(5));
    let recent_ids = deliver(&db, "alice/ci", 3, Outcome::Delivered, clock.now_utc());
    let stats = db.store.counts().unwrap();
    assert_eq!((stats.events, stats.deliveries), (1009, 1009));

    let pruned = db.store.prune_before(cutoff).unwrap();
    assert_eq!(pruned.deliveries, 1006);
    assert_eq!(
        pruned.events, 1005,
        "finished old events; the pending one stays"
    );
    assert_eq!(db.store.delivery(old_ids[0]).unwrap(), None);
    for id in &recent_ids {
        assert!(db.store.delivery(*id).unwrap().is_some());
    }
    let stats = db.store.counts().unwrap();
    assert_eq!((stats.events, stats.deliveries, stats.pending), (4, 3, 1));
    let task = db.claim_all(tomorrow).remove(0);
    assert_eq!(task.request.event_id, pending_old.event_id);
    assert_eq!(task.request.hook_id, hook.id);
    // An attempt recorded out of order (its time before rows already logged)
    // waits until a prune passes it by id.
    let late = deliver(&db, "alice/ci", 1, Outcome::Delivered, old);
    assert_eq!(db.store.prune_before(cutoff).unwrap().deliveries, 0);
    assert!(db.store.delivery(late[0]).unwrap().is_some());
    // Pruning again removes nothing; the default 30 days keeps everything recent.
    assert_eq!(db.store.prune_before(cutoff).unwrap().deliveries, 0);
    let kept = db.store.prune(djinn_hook_store::DEFAULT_RETENTION).unwrap();
    assert_eq!((kept.deliveries, kept.events), (0, 0));
}

pub(crate) fn prune_by_an_age_beyond_any_date_prunes_nothing_and_does_not_panic(backend: &Backend) {
    let db = backend.db();
    db.hook("alice/ci", "https://example.com/");
    let logged = deliver(&db, "alice/ci", 2, Outcome::Delivered, now());
    assert_eq!(logged.len(), 2);
    for age in [
        Duration::MAX,
        Duration::from_secs(u64::MAX / 2),
        Duration::from_secs(400_000 * 365 * 86_400),
    ] {
        let pruned = db.store.prune(age).unwrap();
        assert_eq!((pruned.deliveries, pruned.events), (0, 0), "{age:?}");
    }
}
