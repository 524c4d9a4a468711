//! Migrations: a fresh file, version-1 and version-2 files upgraded, a newer file refused; pragmas.

use djinn_hook_outbox::AttemptOutcome;
use djinn_hook_outbox::Outcome;
use djinn_hook_payload::EventType;
use djinn_hook_store::{DeliveryFilter, Error, Page, Store};
use rusqlite::Connection;

use crate::support::{LEASE, completion, db, key, now};

const V1: &str = include_str!("../../src/migrations/0001_init.sql");
const V2: &str = include_str!("../../src/migrations/0002_standard_webhooks.sql");

fn user_version(path: &std::path::Path) -> i64 {
    Connection::open(path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn fresh_file_is_at_the_latest_version_in_wal_mode() {
    let db = db();
    assert_eq!(Store::schema_version(), 12);
    assert_eq!(user_version(&db.path()), Store::schema_version());
    let conn = Connection::open(db.path()).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    // Opening again is a no-op migration.
    drop(db.reopen());
    assert_eq!(user_version(&db.path()), Store::schema_version());
}

#[test]
fn version_1_file_migrates_and_keeps_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(V1).unwrap();
        conn.execute_batch(
            "INSERT INTO namespaces (id, name, parent_id, created_at) VALUES (1, 'alice/ci', NULL, 0);
             INSERT INTO webhooks (id, namespace_id, author_id, payload_url, ssl, events, active,
                 secret, created_at)
             VALUES (7, 1, 3, 'https://old.example/hook', 1, 5, 1, NULL, 1000000000);
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    let store = Store::open(&path, key()).unwrap();
    let hook = store.webhook(7).unwrap().expect("row kept");
    assert_eq!(hook.payload_url, "https://old.example/hook");
    assert_eq!(hook.events.names(), ["build.submitted", "build.finished"]);
    assert_eq!(hook.author_id, Some(3));
    assert!(
        !hook.standard_webhooks,
        "column added by v2 defaults to false"
    );
    assert_eq!(hook.created_at.unix_timestamp(), 1);
    drop(store);
    assert_eq!(user_version(&path), Store::schema_version());
    let conn = Connection::open(&path).unwrap();
    let column: i64 = conn
        .query_row(
            "SELECT count(*) FROM pragma_table_info('webhooks') WHERE name = 'standard_webhooks'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(column, 1);
}

#[test]
fn version_2_file_migrates_and_its_deliveries_are_not_tests() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(V1).unwrap();
        conn.execute_batch(V2).unwrap();
        conn.execute_batch(
            "INSERT INTO namespaces (id, name, parent_id, created_at) VALUES (1, 'alice/ci', NULL, 0);
             INSERT INTO webhooks (id, namespace_id, author_id, payload_url, ssl, events, active,
                 secret, created_at, standard_webhooks)
             VALUES (7, 1, NULL, 'https://old.example/hook', 1, 1, 1, NULL, 0, 1);
             INSERT INTO events (id, uuid, namespace_id, event, payload, created_at)
             VALUES (3, x'0123456789abcdef0123456789abcdef', 1, 0, x'7b226964223a317d', 0);
             INSERT INTO tasks (id, event_id, hook_id, state, next_at) VALUES (5, 3, 7, 2, 0);
             INSERT INTO deliveries (id, hook_id, event_id, attempt, redelivery, request_headers,
                 request_body, request_truncated, response_status, response_headers,
                 response_body, response_truncated, tls_verification_skipped, duration_ns,
                 error, created_at)
             VALUES (9, 7, 3, 1, 0, '[]', NULL, 0, 204, '[]', x'', 0, 0, 1000, NULL, 0);
             PRAGMA user_version = 2;",
        )
        .unwrap();
    }
    let store = Store::open(&path, key()).unwrap();
    assert_eq!(user_version(&path), Store::schema_version());
    let old = store.delivery(9).unwrap().expect("row kept");
    assert_eq!(
        old.event_id.to_string(),
        "01234567-89ab-cdef-0123-456789abcdef"
    );
    assert_eq!(old.request_body, br#"{"id":1}"#);
    assert!(!old.test, "events before v3 are not tests");
    assert_eq!(
        old.result,
        AttemptOutcome::Success,
        "v5 gives older rows the result their status implies"
    );
    assert!(store.webhook(7).unwrap().unwrap().standard_webhooks);

    // The new column works on the migrated file.
    let task = store
        .queue_test(7, EventType::BuildSubmitted, b"{}".to_vec(), LEASE)
        .unwrap();
    store
        .complete_one(&completion(&task, Outcome::Delivered, now()))
        .unwrap();
    let tests = store
        .deliveries(
            {
                let mut filter = DeliveryFilter::default();
                filter.test = Some(true);
                filter
            },
            Page::default(),
        )
        .unwrap()
        .items;
    assert_eq!(tests.len(), 1);
    assert_eq!(tests[0].event_id, task.request.event_id);
    assert!(tests[0].test);
}

#[test]
fn newer_file_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE future (x); PRAGMA user_version = 99;")
        .unwrap();
    let err = Store::open(&path, key()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::NewerSchema {
                found: 99,
                supported
            } if supported == Store::schema_version()
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("newer"), "{err}");
    assert_eq!(user_version(&path), 99);
}

#[test]
fn unopenable_path_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no/such/dir/hooks.db");
    let err = Store::open(&path, key()).unwrap_err();
    // The file is created (0600) before SQLite opens it.
    assert!(matches!(err, Error::Create { .. }), "{err:?}");
    assert!(err.to_string().contains("no/such/dir"), "{err}");
}

#[test]
fn in_memory_store_works() {
    let store = Store::open_in_memory(key()).unwrap();
    store.ensure_namespace("a/b").unwrap();
    assert_eq!(store.namespaces().unwrap().len(), 1);
    assert_eq!(store.path(), None);
}
