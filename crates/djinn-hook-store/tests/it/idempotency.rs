//! Idempotency keys: a key used again answers as the first time and stores nothing, a key used
//! for another event is refused, keys are per namespace, expire and are pruned, and stores
//! racing with one key store one event.

use std::sync::Barrier;
use std::time::Duration;

use djinn_hook_payload::EventType;
use djinn_hook_store::{Accepted, DEFAULT_IDEMPOTENCY_WINDOW, Error, NewEvent, Store};

use crate::support::{Backend, Db, event};

const NS: &str = "alice/ci";

fn keyed(ns: &str, event_type: EventType, key: &str) -> NewEvent {
    event(ns, event_type).with_idempotency_key(key, DEFAULT_IDEMPOTENCY_WINDOW)
}

/// Events, tasks and key rows stored.
fn stored(db: &Db) -> (i64, i64, i64) {
    (
        db.count_rows("events"),
        db.count_rows("tasks"),
        db.count_rows("idempotency_keys"),
    )
}

pub(crate) fn a_key_used_again_for_the_same_event_answers_as_first_and_stores_nothing(
    backend: &Backend,
) {
    let db = backend.db();
    db.hook(NS, "https://example.com/hook");
    let first = db
        .store
        .accept_event(keyed(NS, EventType::BuildFinished, "build-7"))
        .unwrap();
    assert!(!first.replayed);
    assert_eq!(first.matched, 1);
    // A second webhook since: the replay still says what the first answer said.
    db.hook(NS, "https://example.com/other");
    let again = db
        .store
        .accept_event(keyed(NS, EventType::BuildFinished, "build-7"))
        .unwrap();
    assert_eq!(
        again,
        Accepted {
            replayed: true,
            ..first
        }
    );
    assert_eq!(stored(&db), (1, 1, 1));
    // Through a second store on the same file or database too.
    let other = db.reopen();
    let third = other
        .accept_event(keyed(NS, EventType::BuildFinished, "build-7"))
        .unwrap();
    assert_eq!(third.event_id, first.event_id);
    assert_eq!(stored(&db), (1, 1, 1));
}

pub(crate) fn a_key_used_again_for_another_event_is_refused_naming_it(backend: &Backend) {
    let db = backend.db();
    db.hook(NS, "https://example.com/hook");
    db.store
        .accept_event(keyed(NS, EventType::BuildFinished, "build-7"))
        .unwrap();
    let other_type = db
        .store
        .accept_event(keyed(NS, EventType::BuildStarted, "build-7"))
        .unwrap_err();
    assert!(
        matches!(&other_type, Error::IdempotencyConflict { key, index: 0 } if key == "build-7"),
        "{other_type:?}"
    );
    assert!(
        other_type.to_string().contains("\"build-7\""),
        "{other_type}"
    );
    let other_payload = NewEvent::new(NS, EventType::BuildFinished, br#"{"id":2}"#.to_vec())
        .with_idempotency_key("build-7", DEFAULT_IDEMPOTENCY_WINDOW);
    let err = db.store.accept_event(other_payload).unwrap_err();
    assert!(matches!(&err, Error::IdempotencyConflict { .. }), "{err:?}");
    assert_eq!(stored(&db), (1, 1, 1));
}

pub(crate) fn keys_belong_to_their_namespace(backend: &Backend) {
    let db = backend.db();
    db.hook(NS, "https://example.com/hook");
    db.hook("bob/ci", "https://example.com/hook");
    let alice = db
        .store
        .accept_event(keyed(NS, EventType::Cron, "nightly"))
        .unwrap();
    // The same key, even with another payload, in another namespace: its own event.
    let bob = db
        .store
        .accept_event(keyed("bob/ci", EventType::Images, "nightly"))
        .unwrap();
    assert!(!bob.replayed);
    assert_ne!(alice.event_id, bob.event_id);
    assert_eq!(stored(&db), (2, 2, 2));
}

pub(crate) fn one_key_twice_in_a_batch_stores_one_event_and_a_conflict_stores_nothing(
    backend: &Backend,
) {
    let db = backend.db();
    db.hook(NS, "https://example.com/hook");
    let answers = db
        .store
        .accept_events(vec![
            keyed(NS, EventType::Cron, "a"),
            event(NS, EventType::Cron),
            keyed(NS, EventType::Cron, "a"),
            keyed(NS, EventType::Cron, "b"),
        ])
        .unwrap();
    let replayed: Vec<bool> = answers.iter().map(|a| a.replayed).collect();
    assert_eq!(replayed, [false, false, true, false]);
    assert_eq!(answers[2].event_id, answers[0].event_id);
    assert_eq!(stored(&db), (3, 3, 2));

    // A batch whose third event reuses a key for another payload: refused whole, naming it.
    let err = db
        .store
        .accept_events(vec![
            keyed(NS, EventType::Cron, "c"),
            keyed(NS, EventType::Cron, "a"),
            keyed(NS, EventType::Images, "a"),
        ])
        .unwrap_err();
    assert!(
        matches!(&err, Error::IdempotencyConflict { key, index: 2 } if key == "a"),
        "{err:?}"
    );
    assert_eq!(stored(&db), (3, 3, 2));
    // Within one call too: the second use of "d" is another event type.
    let err = db
        .store
        .accept_events(vec![
            keyed(NS, EventType::Cron, "d"),
            keyed(NS, EventType::Images, "d"),
        ])
        .unwrap_err();
    assert!(
        matches!(&err, Error::IdempotencyConflict { key, index: 1 } if key == "d"),
        "{err:?}"
    );
    assert_eq!(stored(&db), (3, 3, 2));
}

pub(crate) fn an_invalid_key_is_refused_and_stores_nothing(backend: &Backend) {
    let db = backend.db();
    db.hook(NS, "https://example.com/hook");
    for key in ["", "tab\there", &"k".repeat(256)] {
        let err = db
            .store
            .accept_events(vec![
                event(NS, EventType::Cron),
                keyed(NS, EventType::Cron, key),
            ])
            .unwrap_err();
        assert!(
            matches!(&err, Error::InvalidIdempotencyKey { index: 1, .. }),
            "{err:?}"
        );
        assert!(
            !err.to_string().contains('\t'),
            "the key is not quoted: {err}"
        );
    }
    assert_eq!(stored(&db), (0, 0, 0));
}

pub(crate) fn an_expired_key_is_free_again_and_pruned(backend: &Backend) {
    let db = backend.db();
    db.hook(NS, "https://example.com/hook");
    let short = |payload: &str| {
        NewEvent::new(NS, EventType::Cron, payload.as_bytes().to_vec())
            .with_idempotency_key("k", Duration::from_millis(1))
    };
    let first = db.store.accept_event(short("{}")).unwrap();
    let kept = db
        .store
        .accept_event(keyed(NS, EventType::Cron, "kept"))
        .unwrap();
    std::thread::sleep(Duration::from_millis(5));
    // Expired: the key answers for nothing, even for another payload, and is taken over.
    let second = db.store.accept_event(short(r#"{"x":1}"#)).unwrap();
    assert!(!second.replayed);
    assert_ne!(second.event_id, first.event_id);
    assert_eq!(stored(&db), (3, 3, 2));
    std::thread::sleep(Duration::from_millis(5));
    db.store.prune(Duration::from_secs(86_400)).unwrap();
    assert_eq!(
        db.count_rows("idempotency_keys"),
        1,
        "only the unexpired key is left"
    );
    let again = db
        .store
        .accept_event(keyed(NS, EventType::Cron, "kept"))
        .unwrap();
    assert_eq!(again.event_id, kept.event_id);
}

/// Rounds of the race below (`DJINN_IDEMPOTENCY_ROUNDS`, default 50).
fn rounds() -> usize {
    std::env::var("DJINN_IDEMPOTENCY_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(50)
}

/// Two stores on one file or database (as two `serve` processes have), two threads each,
/// released at once by a barrier, all with one key per round: each round stores one event,
/// and all four answers carry its id, three of them replays.
pub(crate) fn stores_racing_with_one_key_store_one_event(backend: &Backend) {
    let db = backend.db();
    db.hook(NS, "https://example.com/hook");
    let other = db.reopen();
    let stores: [&Store; 4] = [&db.store, &other, &db.store, &other];
    let rounds = rounds();
    for round in 0..rounds {
        let key = format!("round-{round}");
        let barrier = Barrier::new(stores.len());
        let answers: Vec<Accepted> = std::thread::scope(|scope| {
            let threads: Vec<_> = stores
                .iter()
                .map(|store| {
                    let (barrier, key) = (&barrier, &key);
                    scope.spawn(move || {
                        barrier.wait();
                        store.accept_event(keyed(NS, EventType::Cron, key)).unwrap()
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        let first = answers.iter().filter(|a| !a.replayed).count();
        assert_eq!(
            first, 1,
            "round {round}: one answer stored the event: {answers:?}"
        );
        assert!(
            answers.iter().all(|a| a.event_id == answers[0].event_id),
            "round {round}: {answers:?}"
        );
    }
    let rounds = i64::try_from(rounds).unwrap();
    assert_eq!(stored(&db), (rounds, rounds, rounds));
}
