//! Migrations: a fresh file, a version-1 file upgraded, a newer file refused; pragmas.

use djinn_hook_store::{Error, Store};
use rusqlite::Connection;

use crate::support::{db, key};

const V1: &str = include_str!("../../src/migrations/0001_init.sql");

fn user_version(path: &std::path::Path) -> i64 {
    Connection::open(path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn fresh_file_is_at_the_latest_version_in_wal_mode() {
    let db = db();
    assert_eq!(Store::schema_version(), 2);
    assert_eq!(user_version(&db.path()), Store::schema_version());
    let conn = Connection::open(db.path()).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    // Opening again is a no-op migration.
    drop(db.reopen());
    assert_eq!(user_version(&db.path()), 2);
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
    assert_eq!(user_version(&path), 2);
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
                supported: 2
            }
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
    assert!(matches!(err, Error::Open { .. }), "{err:?}");
    assert!(err.to_string().contains("no/such/dir"), "{err}");
}

#[test]
fn in_memory_store_works() {
    let store = Store::open_in_memory(key()).unwrap();
    store.ensure_namespace("a/b").unwrap();
    assert_eq!(store.namespaces().unwrap().len(), 1);
    assert_eq!(store.path(), None);
}
