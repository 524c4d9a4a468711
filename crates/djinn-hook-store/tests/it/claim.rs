//! Claims are fair across webhooks and capped per webhook (across `Store`s too); put-off tasks
//! keep their attempt.

use std::collections::HashMap;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use djinn_hook_outbox::{
    ClaimRequest, Deferral, Destination, LeaseToken, LimitNote, Outcome, PutOff, ReducedLimit,
};
use djinn_hook_payload::EventType;
use djinn_hook_store::{
    BreakerHold, DeliveryFilter, DeliveryLimits, Error, LimitHold, LimitsUpdate, NewWebhook, Page,
};

use crate::support::{Backend, LEASE, completion, now};

fn emit_n(db: &crate::support::Db, ns: &str, n: usize) {
    db.emit_all(ns, &vec![EventType::BuildFinished; n]);
}

fn per_hook(tasks: &[djinn_hook_outbox::Task]) -> HashMap<i64, usize> {
    let mut counts = HashMap::new();
    for task in tasks {
        *counts.entry(task.request.hook_id).or_default() += 1;
    }
    counts
}

pub(crate) fn a_small_backlog_is_not_queued_behind_a_big_one(backend: &Backend) {
    let db = backend.db();
    let big = db.hook("big/ns", "https://big.example.com/hook");
    emit_n(&db, "big/ns", 1_000);
    let small = db.hook("small/ns", "https://small.example.com/hook");
    emit_n(&db, "small/ns", 10);

    // The big backlog is older, yet a claim of 20 takes half from each webhook, interleaved.
    let tasks = db.store.claim_due(now(), 20, LEASE).unwrap();
    let counts = per_hook(&tasks);
    assert_eq!(counts[&small.id], 10, "{counts:?}");
    assert_eq!(counts[&big.id], 10, "{counts:?}");
    // Each webhook's own tasks still go oldest first.
    let big_ids: Vec<i64> = tasks
        .iter()
        .filter(|t| t.request.hook_id == big.id)
        .map(|t| t.task_id)
        .collect();
    let mut sorted = big_ids.clone();
    sorted.sort_unstable();
    assert_eq!(big_ids, sorted);
}

pub(crate) fn claims_smaller_than_the_webhook_count_take_turns(backend: &Backend) {
    let db = backend.db();
    let hooks: Vec<i64> = (0..3)
        .map(|i| {
            let ns = format!("o/ns{i}");
            let id = db.hook(&ns, &format!("https://h{i}.example.com/")).id;
            emit_n(&db, &ns, 5);
            id
        })
        .collect();
    let mut served = Vec::new();
    for _ in 0..6 {
        let tasks = db.store.claim_due(now(), 1, LEASE).unwrap();
        served.push(tasks[0].request.hook_id);
    }
    // Round-robin: every webhook once in each three claims.
    for turn in served.chunks(3) {
        let mut turn = turn.to_vec();
        turn.sort_unstable();
        assert_eq!(turn, hooks, "served in order {served:?}");
    }
}

pub(crate) fn a_webhook_at_its_cap_gets_nothing_until_leases_end(backend: &Backend) {
    let db = backend.db();
    let busy = db.hook("a/ns", "https://a.example.com/");
    emit_n(&db, "a/ns", 50);
    let mut own = NewWebhook::new("b/ns", "https://b.example.com/");
    own.limits.max_in_flight = Some(1);
    let own = db.create(own);
    emit_n(&db, "b/ns", 50);
    let mut claim = ClaimRequest::uncapped(100, LEASE);
    claim.max_in_flight = 2;
    claim.leases_per_slot = 3;

    let t = now();
    let first = db.store.claim(t, &claim).unwrap();
    let counts = per_hook(&first.tasks);
    assert_eq!(counts[&busy.id], 6, "2 in flight x 3 leases each");
    assert_eq!(counts[&own.id], 3, "its own max_in_flight of 1 x 3");
    assert!(first.held_back, "due tasks were left behind by the caps");

    let second = db.store.claim(t, &claim).unwrap();
    assert!(second.tasks.is_empty());
    assert!(second.held_back);

    // Two completions free two of the busy webhook's leases.
    let done: Vec<_> = first
        .tasks
        .iter()
        .filter(|task| task.request.hook_id == busy.id)
        .take(2)
        .map(|task| completion(task, Outcome::Delivered, t))
        .collect();
    db.store.complete(&done).unwrap();
    let third = db.store.claim(t, &claim).unwrap();
    assert_eq!(per_hook(&third.tasks), HashMap::from([(busy.id, 2)]));

    // Leases that ran out no longer count.
    let later = db.store.claim(t + LEASE, &claim).unwrap();
    assert_eq!(per_hook(&later.tasks)[&busy.id], 6);
}

/// A `Store` passes over the webhooks its claims found at their cap (sparing the count of their
/// leases) until it ends one of their leases itself, or for half a second by the claims' clock
/// when another `Store` ends them.
pub(crate) fn a_webhook_found_at_its_cap_is_passed_over_until_a_lease_of_its_ends(
    backend: &Backend,
) {
    let db = backend.db();
    let a = db.hook("a/ns", "https://a.example.com/");
    let b = db.hook("b/ns", "https://b.example.com/");
    emit_n(&db, "a/ns", 10);
    emit_n(&db, "b/ns", 10);
    let mut claim = ClaimRequest::uncapped(100, LEASE);
    claim.max_in_flight = 2;
    let t = now();
    let first = db.store.claim(t, &claim).unwrap();
    assert_eq!(
        per_hook(&first.tasks),
        HashMap::from([(a.id, 2), (b.id, 2)])
    );
    let of = |hook_id: i64| {
        first
            .tasks
            .iter()
            .find(|task| task.request.hook_id == hook_id)
            .unwrap()
    };

    // Another store ends a lease of webhook a: this one still passes it over...
    let other = db.reopen();
    other
        .complete(&[completion(of(a.id), Outcome::Delivered, t)])
        .unwrap();
    let passed_over = db.store.claim(t, &claim).unwrap();
    assert!(passed_over.tasks.is_empty());
    assert!(passed_over.held_back, "their due tasks are left behind");
    // ...for half a second at most.
    let later = t + Duration::from_millis(500);
    assert_eq!(
        per_hook(&db.store.claim(later, &claim).unwrap().tasks),
        HashMap::from([(a.id, 1)])
    );

    // A lease this store ends counts at once.
    db.store
        .complete(&[completion(of(b.id), Outcome::Delivered, later)])
        .unwrap();
    assert_eq!(
        per_hook(&db.store.claim(later, &claim).unwrap().tasks),
        HashMap::from([(b.id, 1)])
    );
    // A claim allowing more than the cap it was found at counts it again.
    let mut wider = claim;
    wider.max_in_flight = 3;
    assert_eq!(
        per_hook(&db.store.claim(later, &wider).unwrap().tasks),
        HashMap::from([(a.id, 1), (b.id, 1)])
    );
}

pub(crate) fn a_throttled_attempt_is_recorded_but_not_counted(backend: &Backend) {
    let db = backend.db();
    let hook = db.hook("a/ns", "https://a.example.com/");
    db.emit("a/ns", EventType::BuildFinished);
    let t = now();
    let task = db.store.claim_due(t, 10, LEASE).unwrap().remove(0);
    assert_eq!(task.request.attempt, 1);
    let at = t + Duration::from_secs(2);
    db.store
        .complete(&[completion(&task, Outcome::Throttled(at), t)])
        .unwrap();
    assert!(
        db.store
            .claim_due(at - Duration::from_millis(1), 10, LEASE)
            .unwrap()
            .is_empty(),
        "not due before its time"
    );
    let again = db.store.claim_due(at, 10, LEASE).unwrap().remove(0);
    assert_eq!(
        again.request.attempt, 1,
        "the throttled attempt did not count"
    );
    let log = db
        .store
        .deliveries(DeliveryFilter::hook(hook.id), Page::default())
        .unwrap()
        .items;
    assert_eq!(log.len(), 1, "the attempt was recorded");
    // A counted retry after it is attempt 2.
    db.store
        .complete(&[completion(&again, Outcome::RetryAt(at), at)])
        .unwrap();
    let third = db.store.claim_due(at, 10, LEASE).unwrap().remove(0);
    assert_eq!(third.request.attempt, 2);
}

pub(crate) fn a_webhooks_adaptive_limit_and_in_flight_tasks_are_shown(backend: &Backend) {
    let db = backend.db();
    let hook = db.hook("a/ns", "https://a.example.com/");
    let other = db.hook("b/ns", "https://b.example.com/");
    emit_n(&db, "a/ns", 3);
    let t = now();
    let shown = |id| db.store.webhook(id).unwrap().unwrap();
    assert_eq!(
        (shown(hook.id).in_flight, shown(hook.id).delivery_limit),
        (0, None)
    );
    let claimed = db.store.claim_due(t, 2, LEASE).unwrap();
    assert_eq!(shown(hook.id).in_flight, 2, "claimed, not completed");

    let until = t + Duration::from_secs(2);
    db.store
        .limits_changed(&[LimitNote {
            hook_id: hook.id,
            reduced: Some(ReducedLimit {
                limit: 0,
                reason: "throttled".to_owned(),
                paused_until: Some(until),
            }),
        }])
        .unwrap();
    let limited = shown(hook.id);
    assert_eq!(
        limited.delivery_limit,
        Some(LimitHold {
            limit: 0,
            reason: "throttled".to_owned(),
            paused_until: Some(until),
        })
    );
    assert_eq!(shown(other.id).delivery_limit, None, "only that webhook");

    db.store
        .complete(&[completion(&claimed[0], Outcome::Delivered, t)])
        .unwrap();
    assert_eq!(shown(hook.id).in_flight, 1);
    db.store
        .limits_changed(&[LimitNote {
            hook_id: hook.id,
            reduced: None,
        }])
        .unwrap();
    assert_eq!(shown(hook.id).delivery_limit, None, "back at its cap");
}

pub(crate) fn a_deferred_webhooks_due_tasks_wait_uncounted_and_leased_ones_stay(backend: &Backend) {
    let db = backend.db();
    let held = db.hook("a/ns", "https://a.example.com/");
    let other = db.hook("b/ns", "https://b.example.com/");
    emit_n(&db, "a/ns", 4);
    emit_n(&db, "b/ns", 1);
    let t = now();
    // One of the webhook's tasks is claimed (leased) before the deferral.
    let mut claim = ClaimRequest::uncapped(1, LEASE);
    claim.max_in_flight = 1;
    let leased = db.store.claim(t, &claim).unwrap().tasks.remove(0);
    assert_eq!(leased.request.hook_id, held.id);
    let until = t + Duration::from_secs(30);
    let deferred = db
        .store
        .defer(
            t,
            &[Deferral {
                hook_id: held.id,
                until,
            }],
        )
        .unwrap();
    assert_eq!(deferred, 3, "the due ones, not the leased one");
    let due = db.store.claim_due(t, 10, LEASE).unwrap();
    assert_eq!(
        per_hook(&due),
        HashMap::from([(other.id, 1)]),
        "only the other webhook"
    );
    // The leased task's completion still applies.
    db.store
        .complete(&[completion(&leased, Outcome::Delivered, t)])
        .unwrap();
    let later = db.store.claim_due(until, 10, LEASE).unwrap();
    assert_eq!(per_hook(&later)[&held.id], 3);
    assert!(
        later.iter().all(|task| task.request.attempt == 1),
        "deferring counted no attempt"
    );
}

pub(crate) fn a_put_off_task_keeps_its_attempt_and_its_event(backend: &Backend) {
    let db = backend.db();
    let hook = db.hook("a/ns", "https://a.example.com/");
    let accepted = db.emit("a/ns", EventType::BuildFinished);
    let t = now();
    let task = db.store.claim_due(t, 10, LEASE).unwrap().remove(0);
    assert_eq!(task.request.attempt, 1);
    let hold = BreakerHold {
        destination: "https://a.example.com:443".to_owned(),
        until: t + Duration::from_secs(10),
        reason: "5 consecutive timeouts".to_owned(),
    };
    let put_off = |lease| PutOff {
        task_id: task.task_id,
        lease,
        until: hold.until,
        destination: Destination::of(&hold.destination).unwrap(),
        reason: hold.reason.clone(),
    };
    let stale = put_off(LeaseToken::new());
    assert_eq!(
        db.store.put_off(&[stale]).unwrap(),
        0,
        "a stale lease is ignored"
    );
    assert_eq!(db.store.put_off(&[put_off(task.lease)]).unwrap(), 1);

    assert_eq!(
        db.store.webhook(hook.id).unwrap().unwrap().breaker,
        Some(hold)
    );
    assert!(
        db.store
            .claim_due(t + Duration::from_secs(9), 10, LEASE)
            .unwrap()
            .is_empty(),
        "held until the breaker's end"
    );
    let again = db
        .store
        .claim_due(t + Duration::from_secs(10), 10, LEASE)
        .unwrap()
        .remove(0);
    assert_eq!(again.task_id, task.task_id);
    assert_eq!(again.request.event_id, accepted.event_id);
    assert_eq!(again.request.attempt, 1, "the put-off claim did not count");
    assert!(
        db.store
            .deliveries(DeliveryFilter::hook(hook.id), Page::default())
            .unwrap()
            .items
            .is_empty(),
        "no attempt was recorded"
    );

    db.store
        .breaker_closed("https://a.example.com:443")
        .unwrap();
    assert_eq!(db.store.webhook(hook.id).unwrap().unwrap().breaker, None);
}

pub(crate) fn a_success_clears_the_recorded_breaker(backend: &Backend) {
    let db = backend.db();
    let hook = db.hook("a/ns", "https://a.example.com/");
    emit_n(&db, "a/ns", 2);
    let t = now();
    let tasks = db.store.claim_due(t, 10, LEASE).unwrap();
    let hold = BreakerHold {
        destination: "https://a.example.com:443".to_owned(),
        until: t + Duration::from_secs(10),
        reason: "connection refused 5 times in a row".to_owned(),
    };
    db.store
        .put_off(&[PutOff {
            task_id: tasks[0].task_id,
            lease: tasks[0].lease,
            until: hold.until,
            destination: Destination::of(&hold.destination).unwrap(),
            reason: hold.reason.clone(),
        }])
        .unwrap();
    assert!(
        db.store
            .webhook(hook.id)
            .unwrap()
            .unwrap()
            .breaker
            .is_some()
    );
    db.store
        .complete(&[completion(&tasks[1], Outcome::Delivered, t)])
        .unwrap();
    assert_eq!(db.store.webhook(hook.id).unwrap().unwrap().breaker, None);
}

pub(crate) fn limits_are_validated_set_and_reset(backend: &Backend) {
    let db = backend.db();
    db.store.ensure_namespace("a/ns").unwrap();
    let mut bad = NewWebhook::new("a/ns", "https://a.example.com/");
    let mut limits = DeliveryLimits::default();
    limits.max_in_flight = Some(0);
    limits.timeout = Some(Duration::from_millis(5));
    bad.limits = limits;
    let Err(Error::Invalid(errors)) = db.store.create_webhook(bad) else {
        panic!("expected a validation error");
    };
    assert_eq!(
        errors.field("max_in_flight"),
        ["must be between 1 and 1000, got 0"]
    );
    assert_eq!(
        errors.field("timeout"),
        ["must be between 100 ms and 120 s, got 5 ms"]
    );

    let hook = db.hook("a/ns", "https://a.example.com/");
    assert_eq!(hook.limits, DeliveryLimits::default());
    let set = db
        .store
        .update_webhook_limits(hook.id, {
            let mut limits = LimitsUpdate::default();
            limits.max_in_flight = Some(Some(3));
            limits.timeout = Some(Some(Duration::from_secs(5)));
            limits
        })
        .unwrap();
    assert_eq!(set.limits, {
        let mut limits = DeliveryLimits::default();
        limits.max_in_flight = Some(3);
        limits.timeout = Some(Duration::from_secs(5));
        limits
    });
    let kept = db
        .store
        .update_webhook_limits(hook.id, {
            let mut limits = LimitsUpdate::default();
            limits.max_in_flight = Some(None);
            limits.timeout = None;
            limits
        })
        .unwrap();
    assert_eq!(kept.limits.max_in_flight, None, "reset to the default");
    assert_eq!(kept.limits.timeout, Some(Duration::from_secs(5)), "kept");
    assert!(matches!(
        db.store
            .update_webhook_limits(999, LimitsUpdate::default())
            .unwrap_err(),
        Error::WebhookNotFound { id: 999 }
    ));
    let claimed = db.store.claim_due(now(), 1, LEASE).unwrap();
    assert!(claimed.is_empty(), "no event yet");
}

pub(crate) fn caps_hold_across_stores_claiming_at_once(backend: &Backend) {
    const CLAIMERS: usize = 4;
    let db = backend.db();
    let mut new = NewWebhook::new("a/ns", "https://a.example.com/");
    new.limits.max_in_flight = Some(3);
    let hook = db.create(new);
    emit_n(&db, "a/ns", 40);
    let mut claim = ClaimRequest::uncapped(10, LEASE);
    claim.max_in_flight = 100;
    let t = now();
    let barrier = Arc::new(Barrier::new(CLAIMERS));
    let claimers: Vec<_> = (0..CLAIMERS)
        .map(|_| {
            let store = db.reopen();
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                barrier.wait();
                store.claim(t, &claim).unwrap()
            })
        })
        .collect();
    let claimed: Vec<_> = claimers.into_iter().map(|c| c.join().unwrap()).collect();
    let got: usize = claimed.iter().map(|c| c.tasks.len()).sum();
    assert_eq!(got, 3, "its max_in_flight of 3, whichever store claimed");
    assert!(
        claimed
            .iter()
            .all(|c| c.tasks.iter().all(|t| t.request.hook_id == hook.id))
    );
    assert_eq!(db.store.counts().unwrap().leased, 3);
}
