//! What only the PostgreSQL backend has: its migrations, connection errors, and
//! LISTEN/NOTIFY; and the check that CI really ran the PostgreSQL tests.

#[cfg(feature = "postgres")]
use std::sync::{Arc, Barrier};
#[cfg(feature = "postgres")]
use std::thread;
#[cfg(feature = "postgres")]
use std::time::Duration;

#[cfg(feature = "postgres")]
use djinn_hook_payload::EventType;
use djinn_hook_store::{Error, Store};

use crate::support::{POSTGRES_URL, db, key};
#[cfg(feature = "postgres")]
use crate::support::{ScratchDatabase, event, postgres};

/// With `DJINN_TEST_POSTGRES_REQUIRED=1` (CI sets it), a missing or unreachable
/// server fails the run instead of leaving the PostgreSQL tests unrun.
#[test]
fn postgres_tests_run_when_required() {
    if std::env::var("DJINN_TEST_POSTGRES_REQUIRED").as_deref() != Ok("1") {
        eprintln!("DJINN_TEST_POSTGRES_REQUIRED is not 1: PostgreSQL tests are optional here");
        return;
    }
    let url = std::env::var(POSTGRES_URL).unwrap_or_default();
    assert!(
        !url.is_empty(),
        "DJINN_TEST_POSTGRES_REQUIRED=1 but {POSTGRES_URL} is unset"
    );
    if !cfg!(postgres_tests) {
        panic!(
            "{POSTGRES_URL} was unset when the tests were built, or the `postgres` feature off \
             (`cargo test -p djinn-hook-store --features postgres`): the PostgreSQL tests were ignored"
        );
    }
    if let Err(e) = ::postgres::Client::connect(&url, ::postgres::NoTls) {
        panic!(
            "DJINN_TEST_POSTGRES_REQUIRED=1 but the server at {POSTGRES_URL} is unreachable: {e}"
        );
    }
}

/// Tests of the PostgreSQL backend alone, ignored like the conformance suite's.
macro_rules! postgres_only {
    ($(fn $name:ident($server:ident: &str) $body:block)*) => {
        $(#[test]
        #[cfg(feature = "postgres")]
        #[cfg_attr(
            not(postgres_tests),
            ignore = "not run: DJINN_TEST_POSTGRES_URL was unset when the tests were built"
        )]
        fn $name() {
            let crate::support::Backend::Postgres(server) = postgres() else { unreachable!() };
            let $server: &str = &server;
            $body
        })*
    };
}

/// A fresh database with one webhook in `alice/ci` and one event queued for it.
#[cfg(feature = "postgres")]
fn one_event_for_one_webhook(server: &str) -> (ScratchDatabase, Store, djinn_hook_store::Webhook) {
    let scratch = ScratchDatabase::create(server);
    let store = Store::open_url(&scratch.url, key()).unwrap();
    store.ensure_namespace("alice/ci").unwrap();
    let hook = store
        .create_webhook(djinn_hook_store::NewWebhook::new(
            "alice/ci",
            "http://127.0.0.1:9/hook",
        ))
        .unwrap();
    store
        .accept_event(event("alice/ci", EventType::BuildSubmitted))
        .unwrap();
    (scratch, store, hook)
}

#[cfg(feature = "postgres")]
fn schema_version(url: &str) -> i64 {
    ::postgres::Client::connect(url, ::postgres::NoTls)
        .unwrap()
        .query_one("SELECT version FROM schema_version", &[])
        .unwrap()
        .get(0)
}

postgres_only! {
    fn a_fresh_database_is_migrated_once_by_two_processes_at_once(server: &str) {
        let scratch = ScratchDatabase::create(server);
        let barrier = Arc::new(Barrier::new(4));
        let openers: Vec<_> = (0..4)
            .map(|_| {
                let url = scratch.url.clone();
                let barrier = Arc::clone(&barrier);
                thread::spawn(move || {
                    barrier.wait();
                    Store::open_url(&url, key()).map(drop)
                })
            })
            .collect();
        for opener in openers {
            opener.join().unwrap().unwrap();
        }
        assert_eq!(Store::postgres_schema_version(), 14);
        assert_eq!(schema_version(&scratch.url), Store::postgres_schema_version());
        let rows: i64 = ::postgres::Client::connect(&scratch.url, ::postgres::NoTls)
            .unwrap()
            .query_one("SELECT count(*) FROM schema_version", &[])
            .unwrap()
            .get(0);
        assert_eq!(rows, 1);
        // Opening again is a no-op migration that keeps the rows.
        let store = Store::open_url(&scratch.url, key()).unwrap();
        store.ensure_namespace("alice/ci").unwrap();
        drop(store);
        let store = Store::open_url(&scratch.url, key()).unwrap();
        assert!(store.namespace("alice/ci").unwrap().is_some());
        assert!(store.is_postgres());
        assert_eq!(store.path(), None);
    }

    fn a_column_of_an_unexpected_type_is_an_error_not_a_panic(server: &str) {
        let scratch = ScratchDatabase::create(server);
        let store = Store::open_url(&scratch.url, key()).unwrap();
        store.ensure_namespace("alice/ci").unwrap();
        ::postgres::Client::connect(&scratch.url, ::postgres::NoTls)
            .unwrap()
            .batch_execute(
                "ALTER TABLE namespaces ALTER COLUMN created_at TYPE TEXT USING created_at::TEXT",
            )
            .unwrap();
        let err = store.namespaces().unwrap_err();
        assert!(
            matches!(err, Error::Database { operation: "listing namespaces", .. }),
            "{err:?}"
        );
    }

    fn losing_every_lease_makes_the_tasks_under_way_due_again(server: &str) {
        // Leases live in an unlogged table, which a server crash (or a failover) empties:
        // the tasks under way are due again, and the first holder's late report is refused.
        let (scratch, store, _) = one_event_for_one_webhook(server);
        let now = time::OffsetDateTime::now_utc();
        let first = store.claim_due(now, 10, Duration::from_secs(300)).unwrap();
        assert_eq!(first.len(), 1);
        assert!(store.claim_due(now, 10, Duration::from_secs(300)).unwrap().is_empty());
        ::postgres::Client::connect(&scratch.url, ::postgres::NoTls)
            .unwrap()
            .batch_execute("TRUNCATE task_leases")
            .unwrap();
        let again = store.claim_due(now, 10, Duration::from_secs(300)).unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].task_id, first[0].task_id);
        assert_ne!(again[0].lease, first[0].lease);
        let late = crate::support::completion(&first[0], djinn_hook_outbox::Outcome::Delivered, now);
        let applied = store.complete(&[late]).unwrap();
        assert!(!applied[0].lease_held, "the lost lease's report is late");
        let counts = store.counts().unwrap();
        assert_eq!((counts.pending, counts.leased), (0, 1), "still the second claim's");
    }

    fn a_task_queued_for_a_webhook_deleted_meanwhile_is_pruned(server: &str) {
        // No foreign key ties a task to its webhook: a task an intake queued as the webhook
        // was deleted is never claimed, and does not keep its event from being pruned.
        let (scratch, store, hook) = one_event_for_one_webhook(server);
        let mut admin = ::postgres::Client::connect(&scratch.url, ::postgres::NoTls).unwrap();
        // As if the deletion had committed between the intake's read and its insert: the
        // webhook's row alone goes.
        admin
            .execute("DELETE FROM webhooks WHERE id = $1", &[&hook.id])
            .unwrap();
        let orphans: i64 = admin
            .query_one("SELECT count(*) FROM tasks", &[])
            .unwrap()
            .get(0);
        assert_eq!(orphans, 1);
        let now = time::OffsetDateTime::now_utc();
        assert!(store.claim_due(now, 10, Duration::from_secs(300)).unwrap().is_empty());
        let pruned = store.prune(Duration::ZERO).unwrap();
        assert_eq!(pruned.events, 1);
        let left: i64 = admin
            .query_one("SELECT count(*) FROM tasks", &[])
            .unwrap()
            .get(0);
        assert_eq!(left, 0);
    }

    fn a_newer_database_is_refused_untouched(server: &str) {
        let scratch = ScratchDatabase::create(server);
        drop(Store::open_url(&scratch.url, key()).unwrap());
        ::postgres::Client::connect(&scratch.url, ::postgres::NoTls)
            .unwrap()
            .batch_execute("UPDATE schema_version SET version = 99")
            .unwrap();
        let err = Store::open_url(&scratch.url, key()).unwrap_err();
        assert!(
            matches!(err, Error::NewerSchema { found: 99, supported } if supported == Store::postgres_schema_version()),
            "{err:?}"
        );
        assert_eq!(schema_version(&scratch.url), 99);
    }

    fn open_url_picks_the_backend_by_scheme(server: &str) {
        let scratch = ScratchDatabase::create(server);
        assert!(Store::open_url(&scratch.url, key()).unwrap().is_postgres());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hooks.db");
        let sqlite = Store::open_url(path.to_str().unwrap(), key()).unwrap();
        assert!(!sqlite.is_postgres());
        assert_eq!(sqlite.path(), Some(path.as_path()));
    }

    fn an_accepted_event_wakes_a_listener_in_another_store(server: &str) {
        let scratch = ScratchDatabase::create(server);
        let emitter = Store::open_url(&scratch.url, key()).unwrap();
        let worker = Store::open_url(&scratch.url, key()).unwrap();
        let mut listener = worker.work_listener().unwrap().expect("PostgreSQL listens");
        emitter.ensure_namespace("alice/ci").unwrap();
        // Nothing announced yet: the wait runs out.
        assert!(!listener.wait(Duration::from_millis(50)).unwrap());
        // An event no webhook wants is no work.
        emitter.accept_event(event("alice/ci", EventType::Cron)).unwrap();
        assert!(!listener.wait(Duration::from_millis(50)).unwrap());
        let hook = emitter
            .create_webhook(djinn_hook_store::NewWebhook::new("alice/ci", "https://example.com/h"))
            .unwrap();
        emitter.accept_events(vec![event("alice/ci", EventType::Cron); 3]).unwrap();
        // Woken at once (the timeout is only a bound), once for the batch.
        assert!(listener.wait(Duration::from_secs(30)).unwrap());
        assert!(!listener.wait(Duration::from_millis(50)).unwrap());
        // Work made due again is announced too.
        let tasks = worker.claim_due(time::OffsetDateTime::now_utc(), 10, Duration::from_secs(60)).unwrap();
        assert_eq!(tasks.len(), 3);
        let mut failed = crate::support::completion(
            &tasks[0],
            djinn_hook_outbox::Outcome::Failed,
            time::OffsetDateTime::now_utc(),
        );
        failed.decision.disable_hook = None;
        worker.complete_one(&failed).unwrap();
        assert_eq!(worker.retry_now(hook.id).unwrap(), 1);
        assert!(listener.wait(Duration::from_secs(30)).unwrap());
    }

    fn wake_on_new_work_calls_back_for_another_stores_event_and_stops(server: &str) {
        let scratch = ScratchDatabase::create(server);
        let emitter = Store::open_url(&scratch.url, key()).unwrap();
        let worker = Store::open_url(&scratch.url, key()).unwrap();
        emitter.ensure_namespace("alice/ci").unwrap();
        emitter
            .create_webhook(djinn_hook_store::NewWebhook::new("alice/ci", "https://example.com/h"))
            .unwrap();
        let stop = djinn_hook_outbox::Shutdown::new();
        let (woken, wakes) = std::sync::mpsc::channel();
        std::thread::scope(|scope| {
            let listening = scope.spawn(|| {
                worker.wake_on_new_work(
                    &stop,
                    || woken.send(()).unwrap(),
                    |err| panic!("listening failed: {err}"),
                );
            });
            // Until the listener is connected an announcement may be missed: keep emitting
            // (bounded) until one wakes it.
            let mut woke = false;
            for _ in 0..60 {
                emitter.accept_event(event("alice/ci", EventType::Cron)).unwrap();
                if wakes.recv_timeout(Duration::from_millis(500)).is_ok() {
                    woke = true;
                    break;
                }
            }
            assert!(woke, "an event accepted by another store never woke the listener");
            stop.stop();
            listening.join().unwrap();
        });
    }

    fn a_broken_liveness_session_is_connected_again_and_its_lock_taken_again(server: &str) {
        let scratch = ScratchDatabase::create(server);
        let store = Store::open_url(&scratch.url, key()).unwrap();
        let id = store.register_process(|_| {}).unwrap();
        let mut admin = ::postgres::Client::connect(&scratch.url, ::postgres::NoTls).unwrap();
        // The backend holding the process's advisory lock (a bigint key: its high and low
        // halves in classid and objid).
        let holder = |admin: &mut ::postgres::Client| -> Option<i32> {
            admin
                .query_opt(
                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
                        AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) = $1",
                    &[&id.as_i64()],
                )
                .unwrap()
                .map(|r| r.get(0))
        };
        let first = holder(&mut admin).expect("the process holds its lock");
        admin
            .execute("SELECT pg_terminate_backend($1)", &[&first])
            .unwrap();
        // Its keeper notices within a second or so and takes the lock again, on a new session.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if holder(&mut admin).is_some_and(|pid| pid != first) {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "the lock was not taken again");
            thread::sleep(Duration::from_millis(20));
        }
        let registered: i64 = admin
            .query_one("SELECT count(*) FROM processes WHERE id = $1", &[&id.as_i64()])
            .unwrap()
            .get(0);
        assert_eq!(registered, 1);
        // Retired: unregistered, its lock let go (as soon as the server ends the session).
        store.retire_process().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while holder(&mut admin).is_some() {
            assert!(std::time::Instant::now() < deadline, "the lock outlived the retirement");
            thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
#[cfg(feature = "postgres")]
fn an_unreachable_server_is_a_clear_error_without_its_password() {
    // Port 1 on loopback: nothing listens there, the connection is refused at once.
    let err = Store::open_url("postgres://alice:s3cret@127.0.0.1:1/hooks", key()).unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(
        err.to_string()
            .contains("cannot connect to PostgreSQL at postgres://alice:***@127.0.0.1:1/hooks"),
        "{err}"
    );
}

/// A build without the `postgres` feature says so for a PostgreSQL URL, by every way of opening
/// one, before it makes any key file for it.
#[test]
#[cfg(not(feature = "postgres"))]
fn a_postgres_url_names_the_missing_feature() {
    let url = "postgres://alice@127.0.0.1:1/hooks";
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("hooks.key");
    for err in [
        Store::open_url(url, key()).unwrap_err(),
        Store::open_with_key_file(std::path::Path::new(url), Some(&key_file)).unwrap_err(),
        Store::open_with_key_file(std::path::Path::new(url), None).unwrap_err(),
    ] {
        assert!(
            matches!(
                err,
                Error::NotBuilt {
                    feature: "postgres",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("`postgres` feature"), "{err}");
    }
    assert!(!key_file.exists());
}

#[test]
fn sqlite_has_no_cross_process_listener() {
    let db = db();
    assert!(db.store.work_listener().unwrap().is_none());
    // Nothing to listen for: returns at once, without being stopped.
    let never = djinn_hook_outbox::Shutdown::new();
    db.store
        .wake_on_new_work(&never, || panic!("woken"), |err| panic!("{err}"));
}

postgres_only! {
    fn an_event_id_carries_its_row_and_an_id_minted_before_is_still_found(server: &str) {
        use djinn_hook_store::{DeliveryFilter, Page};
        use djinn_hook_outbox::Outcome;

        use crate::support::{completion, now};

        let (scratch, store, _hook) = one_event_for_one_webhook(server);
        let mut admin = ::postgres::Client::connect(&scratch.url, ::postgres::NoTls).unwrap();
        // A second event, whose id is turned into one minted before schema 13 (version 4).
        store
            .accept_event(event("alice/ci", EventType::BuildSubmitted))
            .unwrap();
        let older = uuid::Uuid::new_v4();
        let rows: Vec<(i64, uuid::Uuid)> = admin
            .query("SELECT id, uuid FROM events ORDER BY id", &[])
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let minted = rows[0].1;
        assert_eq!(minted.get_version_num(), 8, "{minted}");
        assert_ne!(rows[0].1, rows[1].1);
        admin
            .execute("UPDATE events SET uuid = $1 WHERE id = $2", &[&older, &rows[1].0])
            .unwrap();

        // Each delivered, then reported again once its task is gone (a late report, whose
        // attempt is logged with its event found by id): two attempts of each event.
        let tasks = store.claim_due(now(), 10, Duration::from_secs(60)).unwrap();
        assert_eq!(tasks.len(), 2);
        for task in &tasks {
            let done = completion(task, Outcome::Delivered, now());
            store.complete_one(&done).unwrap();
            store.complete_one(&done).unwrap();
        }
        for id in [minted, older] {
            let logged = store
                .deliveries(DeliveryFilter::event(id), Page::default())
                .unwrap();
            assert_eq!(logged.items.len(), 2, "attempts of {id}");
            assert!(logged.items.iter().all(|d| d.event_id == id));
        }
        // An id of the same shape that was never minted names nothing.
        let stranger = uuid::Uuid::from_u128(minted.as_u128() ^ 1);
        assert!(
            store
                .deliveries(DeliveryFilter::event(stranger), Page::default())
                .unwrap()
                .items
                .is_empty()
        );

        // The older ids' index serves their lookup as the store writes it (event_ids.rs's
        // LEGACY_ID), and a new event enters no index of ids.
        admin.batch_execute("SET enable_seqscan = off").unwrap();
        let plan: String = admin
            .query(
                "EXPLAIN SELECT e.id FROM events e
                 WHERE e.uuid = $1 AND get_byte(uuid_send(e.uuid), 6) >> 4 <> 8",
                &[&older],
            )
            .unwrap()
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect();
        assert!(plan.contains("events_uuid_legacy"), "{plan}");
        let indexed: i64 = admin
            .query_one(
                "SELECT count(*) FROM events WHERE get_byte(uuid_send(uuid), 6) >> 4 <> 8",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(indexed, 1);
    }
}

postgres_only! {
    fn rows_written_before_packing_read_as_packed_ones_do(server: &str) {
        use djinn_hook_outbox::Outcome;

        use crate::support::{completion, now};

        let (scratch, store, _hook) = one_event_for_one_webhook(server);
        store
            .accept_event(event("alice/ci", EventType::BuildStarted))
            .unwrap();
        let mut admin = ::postgres::Client::connect(&scratch.url, ::postgres::NoTls).unwrap();
        let tasks = store.claim_due(now(), 10, Duration::from_secs(60)).unwrap();
        assert_eq!(tasks.len(), 2);
        let mut logged = Vec::new();
        for task in &tasks {
            let done = store
                .complete_one(&completion(task, Outcome::Delivered, now()))
                .unwrap();
            logged.push(store.delivery(done.delivery_id.unwrap()).unwrap().unwrap());
        }
        // Written packed: nothing plain.
        let plain: i64 = admin
            .query_one(
                "SELECT count(*) FILTER (WHERE payload IS NOT NULL OR payload_packed IS NULL)
                    + (SELECT count(*) FROM deliveries WHERE request_headers IS NOT NULL
                        OR response_headers IS NOT NULL OR request_headers_packed IS NULL)
                 FROM events",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(plain, 0);
        // The first event and attempt as a build before schema 14 wrote them.
        let delivery = &logged[0];
        let event_row: i64 = admin
            .query_one(
                "SELECT id FROM events WHERE uuid = $1",
                &[&tasks[0].request.event_id],
            )
            .unwrap()
            .get(0);
        admin
            .execute(
                "UPDATE events SET payload = $1, payload_packed = NULL WHERE id = $2",
                &[&tasks[0].request.body, &event_row],
            )
            .unwrap();
        admin
            .execute(
                "UPDATE deliveries SET request_headers = $1, response_headers = $2,
                    request_headers_packed = NULL, response_headers_packed = NULL
                 WHERE id = $3",
                &[
                    &serde_json::to_string(&delivery.request_headers).unwrap(),
                    &serde_json::to_string(&delivery.response_headers).unwrap(),
                    &delivery.id,
                ],
            )
            .unwrap();
        for before in &logged {
            assert_eq!(&store.delivery(before.id).unwrap().unwrap(), before);
        }
        // Claimed again (a redelivery of each), each sends its payload as it was.
        for (task, before) in tasks.iter().zip(&logged) {
            store.redeliver(before.id).unwrap();
            let again = store.claim_due(now(), 10, Duration::from_secs(60)).unwrap();
            assert_eq!(again.len(), 1);
            assert_eq!(again[0].request.body, task.request.body);
        }
    }
}
