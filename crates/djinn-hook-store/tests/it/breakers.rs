//! Circuit breakers shared by every process on one file or database: the first opening
//! stands, one taker gets a destination's probe, a failed probe's opening replaces the
//! breaker, a closing removes it, and a webhook shows the shared state.

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use djinn_hook_outbox::{BreakerOpening, Destination, ProbeTurn, PutOff, SharedBreaker};
use djinn_hook_payload::EventType;

use crate::support::{Backend, LEASE, now};

const DEST: &str = "http://dead.example.com:8080";

fn opening(failures: u32, until: time::OffsetDateTime, after_probe: bool) -> BreakerOpening {
    BreakerOpening {
        destination: Destination::of(DEST).unwrap(),
        failures,
        reason: format!("{failures} consecutive timeouts"),
        open_for: Duration::from_secs(30),
        until,
        after_probe,
    }
}

fn shared(o: &BreakerOpening, probe_until: Option<time::OffsetDateTime>) -> SharedBreaker {
    SharedBreaker {
        probe_until,
        ..SharedBreaker::from(o)
    }
}

pub(crate) fn the_first_opening_stands_and_one_taker_gets_the_probe(backend: &Backend) {
    let db = backend.db();
    let store = &db.store;
    let t = now();
    assert_eq!(store.open_breakers().unwrap(), []);
    assert_eq!(
        store.take_probe(DEST, t, t + LEASE).unwrap(),
        ProbeTurn::Closed
    );

    let first = opening(5, t + Duration::from_secs(30), false);
    store.breaker_opened(std::slice::from_ref(&first)).unwrap();
    // Another process's first opening, a little later: the one recorded stands.
    store
        .breaker_opened(&[opening(6, t + Duration::from_secs(31), false)])
        .unwrap();
    assert_eq!(store.open_breakers().unwrap(), [shared(&first, None)]);

    // Before its period ends, nobody probes.
    assert_eq!(
        store.take_probe(DEST, t, t + LEASE).unwrap(),
        ProbeTurn::Held(shared(&first, None))
    );
    // After: the first taker gets it, the next is held behind it.
    let after = t + Duration::from_secs(30);
    let probe_until = after + LEASE;
    assert_eq!(
        store.take_probe(DEST, after, probe_until).unwrap(),
        ProbeTurn::Granted
    );
    assert_eq!(
        store
            .take_probe(DEST, after + Duration::from_secs(1), probe_until)
            .unwrap(),
        ProbeTurn::Held(shared(&first, Some(probe_until)))
    );

    // The probe failed: its opening replaces the breaker, and the probe is free again.
    let again = BreakerOpening {
        open_for: Duration::from_secs(60),
        ..opening(6, after + Duration::from_secs(60), true)
    };
    store.breaker_opened(std::slice::from_ref(&again)).unwrap();
    assert_eq!(store.open_breakers().unwrap(), [shared(&again, None)]);
    assert_eq!(
        store
            .take_probe(DEST, again.until, again.until + LEASE)
            .unwrap(),
        ProbeTurn::Granted
    );

    // It got an answer: closed for everyone.
    store.breaker_closed(DEST).unwrap();
    assert_eq!(store.open_breakers().unwrap(), []);
    assert_eq!(
        store
            .take_probe(DEST, again.until, again.until + LEASE)
            .unwrap(),
        ProbeTurn::Closed
    );
}

pub(crate) fn a_probe_whose_taker_vanished_is_free_once_its_time_is_up(backend: &Backend) {
    let db = backend.db();
    let t = now();
    db.store.breaker_opened(&[opening(5, t, false)]).unwrap();
    let probe_until = t + Duration::from_secs(5);
    assert_eq!(
        db.store.take_probe(DEST, t, probe_until).unwrap(),
        ProbeTurn::Granted
    );
    // Its taker never reported: the probe is free again at its `until`, not before.
    let just_before = probe_until - Duration::from_millis(1);
    assert!(matches!(
        db.store
            .take_probe(DEST, just_before, just_before + LEASE)
            .unwrap(),
        ProbeTurn::Held(_)
    ));
    assert_eq!(
        db.store
            .take_probe(DEST, probe_until, probe_until + LEASE)
            .unwrap(),
        ProbeTurn::Granted
    );
}

pub(crate) fn stores_taking_a_probe_at_once_get_it_once(backend: &Backend) {
    let db = backend.db();
    let t = now();
    db.store.breaker_opened(&[opening(5, t, false)]).unwrap();
    let stores: Vec<_> = (0..2).map(|_| Arc::new(db.reopen())).collect();
    // Another store sees the breaker this one recorded.
    assert_eq!(stores[0].open_breakers().unwrap().len(), 1);
    let takers = 8;
    let barrier = Arc::new(Barrier::new(takers));
    let granted: usize = (0..takers)
        .map(|i| {
            let store = Arc::clone(&stores[i % 2]);
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                barrier.wait();
                store.take_probe(DEST, t, t + LEASE).unwrap() == ProbeTurn::Granted
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|taker| usize::from(taker.join().unwrap()))
        .sum();
    assert_eq!(granted, 1);
}

pub(crate) fn a_webhook_shows_the_shared_breaker(backend: &Backend) {
    let db = backend.db();
    let hook = db.hook("a/ns", "http://dead.example.com:8080/hook");
    db.emit("a/ns", EventType::BuildFinished);
    let t = now();
    let task = db.store.claim_due(t, 1, LEASE).unwrap().remove(0);
    let first = opening(5, t + Duration::from_secs(30), false);
    db.store
        .breaker_opened(std::slice::from_ref(&first))
        .unwrap();
    db.store
        .put_off(&[PutOff {
            task_id: task.task_id,
            lease: task.lease,
            until: first.until,
            destination: first.destination.clone(),
            reason: first.reason.clone(),
        }])
        .unwrap();
    let shown = |db: &crate::support::Db| db.store.webhook(hook.id).unwrap().unwrap().breaker;
    let hold = shown(&db).expect("held");
    assert_eq!(hold.destination, DEST);
    assert_eq!((hold.until, hold.reason), (first.until, first.reason));

    // Another process's probe failed: the webhook shows the breaker as it now is.
    let again = opening(6, t + Duration::from_secs(90), true);
    db.store
        .breaker_opened(std::slice::from_ref(&again))
        .unwrap();
    let hold = shown(&db).expect("still held");
    assert_eq!((hold.until, hold.reason), (again.until, again.reason));

    db.store.breaker_closed(DEST).unwrap();
    assert_eq!(shown(&db), None);
}

pub(crate) fn pruning_forgets_a_breaker_nobody_probed_for_a_day(backend: &Backend) {
    let db = backend.db();
    let t = now();
    let forgotten = BreakerOpening {
        destination: Destination::of("http://gone.example.com/").unwrap(),
        ..opening(5, t - Duration::from_secs(2 * 24 * 60 * 60), false)
    };
    let recent = opening(5, t - Duration::from_secs(60 * 60), false);
    db.store
        .breaker_opened(&[forgotten, recent.clone()])
        .unwrap();
    db.store.prune(djinn_hook_store::DEFAULT_RETENTION).unwrap();
    assert_eq!(db.store.open_breakers().unwrap(), [shared(&recent, None)]);
}
