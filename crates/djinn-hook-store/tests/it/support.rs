//! Shared helpers: a store on a temporary file, events, attempts and completions.

use std::sync::Arc;
use std::time::Duration;

use djinn_hook_outbox::{Attempt, AttemptOutcome, Completion, Decision, Outcome, Task};
use djinn_hook_payload::EventType;
use djinn_hook_sign::headers;
use djinn_hook_store::{
    Accepted, Clock, NewEvent, NewWebhook, ProcessId, SecretKey, Store, Webhook,
};
use tempfile::TempDir;
use time::OffsetDateTime;

pub(crate) const LEASE: Duration = Duration::from_secs(60);

pub(crate) fn key() -> SecretKey {
    SecretKey::from_bytes([42; 32])
}

/// The backend a conformance test runs on (see `conformance!` in main.rs).
#[derive(Debug)]
pub(crate) enum Backend {
    /// A SQLite file in a temporary folder.
    Sqlite,
    /// A throw-away database on the PostgreSQL server at this URL.
    Postgres(String),
}

impl Backend {
    /// A fresh, empty store on this backend.
    pub(crate) fn db(&self) -> Db {
        match self {
            Backend::Sqlite => db(),
            Backend::Postgres(server) => {
                let scratch = ScratchDatabase::create(server);
                let store = Store::open_url(&scratch.url, key()).unwrap();
                Db {
                    store,
                    place: Place::Postgres(scratch),
                }
            }
        }
    }
}

/// The PostgreSQL server of the PostgreSQL tests, from `DJINN_TEST_POSTGRES_URL`
/// (e.g. `postgres://postgres@127.0.0.1:5432/test`). The tests on it are built
/// only when the variable was set at build time (see build.rs); set but empty
/// or gone at run time, they fail saying so.
pub(crate) fn postgres() -> Backend {
    match std::env::var(POSTGRES_URL) {
        Ok(url) if !url.is_empty() => Backend::Postgres(url),
        _ => panic!("{POSTGRES_URL} is unset: it names the PostgreSQL server to test on"),
    }
}

pub(crate) use djinn_hook_testkit::{POSTGRES_URL, ScratchDatabase};

/// A connection to `url`, to look at (or break) a database behind the store's back.
fn admin(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls)
        .unwrap_or_else(|e| panic!("cannot connect to {POSTGRES_URL}: {e}"))
}

/// A store on a fresh file or database; the file or database lives as long as the value.
pub(crate) struct Db {
    pub(crate) store: Store,
    place: Place,
}

enum Place {
    File(TempDir),
    Postgres(ScratchDatabase),
}

impl Db {
    /// This store reading the time from `clock` ([`Store::with_clock`]).
    pub(crate) fn with_clock(self, clock: Arc<dyn Clock>) -> Db {
        Db {
            store: self.store.with_clock(clock),
            place: self.place,
        }
    }

    /// The SQLite file (SQLite-only tests).
    pub(crate) fn path(&self) -> std::path::PathBuf {
        self.dir().join("hooks.db")
    }

    /// The SQLite file's folder (SQLite-only tests).
    pub(crate) fn dir(&self) -> &std::path::Path {
        match &self.place {
            Place::File(dir) => dir.path(),
            Place::Postgres(_) => panic!("a SQLite-only helper used on PostgreSQL"),
        }
    }

    /// Closes the store and gives back its SQLite folder (SQLite-only tests).
    pub(crate) fn close(self) -> TempDir {
        match self.place {
            Place::File(dir) => dir,
            Place::Postgres(_) => panic!("a SQLite-only helper used on PostgreSQL"),
        }
    }

    /// Whether this store is on SQLite.
    pub(crate) fn is_sqlite(&self) -> bool {
        matches!(self.place, Place::File(_))
    }

    /// A second, independent `Store` on the same file or database.
    pub(crate) fn reopen(&self) -> Store {
        self.reopen_with(key())
    }

    /// [`reopen`](Self::reopen) with another key.
    pub(crate) fn reopen_with(&self, key: SecretKey) -> Store {
        match &self.place {
            Place::File(_) => Store::open(self.path(), key).unwrap(),
            Place::Postgres(scratch) => Store::open_url(&scratch.url, key).unwrap(),
        }
    }

    /// The request bodies stored in the log, by delivery id (`None`: the event's payload).
    pub(crate) fn stored_request_bodies(&self) -> Vec<Option<Vec<u8>>> {
        const SQL: &str = "SELECT request_body FROM deliveries ORDER BY id";
        match &self.place {
            Place::File(_) => rusqlite::Connection::open(self.path())
                .unwrap()
                .prepare(SQL)
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap(),
            Place::Postgres(scratch) => admin(&scratch.url)
                .query(SQL, &[])
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect(),
        }
    }

    /// A webhook's secret as stored (sealed).
    pub(crate) fn stored_secret(&self, hook_id: i64) -> Vec<u8> {
        match &self.place {
            Place::File(_) => rusqlite::Connection::open(self.path())
                .unwrap()
                .query_row(
                    "SELECT secret FROM webhooks WHERE id = ?1",
                    [hook_id],
                    |r| r.get(0),
                )
                .unwrap(),
            Place::Postgres(scratch) => admin(&scratch.url)
                .query_one("SELECT secret FROM webhooks WHERE id = $1", &[&hook_id])
                .unwrap()
                .get(0),
        }
    }

    /// How many rows `table` holds.
    pub(crate) fn count_rows(&self, table: &str) -> i64 {
        let sql = format!("SELECT count(*) FROM {table}");
        match &self.place {
            Place::File(_) => rusqlite::Connection::open(self.path())
                .unwrap()
                .query_row(&sql, [], |r| r.get(0))
                .unwrap(),
            Place::Postgres(scratch) => admin(&scratch.url).query_one(&sql, &[]).unwrap().get(0),
        }
    }

    /// A webhook's previous secret as stored (sealed), if any.
    pub(crate) fn stored_previous_secret(&self, hook_id: i64) -> Option<Vec<u8>> {
        match &self.place {
            Place::File(_) => rusqlite::Connection::open(self.path())
                .unwrap()
                .query_row(
                    "SELECT previous_secret FROM webhooks WHERE id = ?1",
                    [hook_id],
                    |r| r.get(0),
                )
                .unwrap(),
            Place::Postgres(scratch) => admin(&scratch.url)
                .query_one(
                    "SELECT previous_secret FROM webhooks WHERE id = $1",
                    &[&hook_id],
                )
                .unwrap()
                .get(0),
        }
    }

    /// Hands the claims of registered process `from` to a process that died: registered, with
    /// no sign of life (no lock file, no advisory lock), as a killed process leaves them.
    /// Returns the dead process's id (its pid is 1, its host `gone`).
    pub(crate) fn hand_claims_to_a_dead_process(&self, from: ProcessId) -> i64 {
        let dead = fastrand::i64(1..i64::MAX);
        match &self.place {
            Place::File(_) => {
                let conn = rusqlite::Connection::open(self.path()).unwrap();
                conn.execute(
                    "INSERT INTO processes (id, pid, host, started_at) VALUES (?1, 1, 'gone', 0)",
                    [dead],
                )
                .unwrap();
                conn.execute(
                    "UPDATE tasks SET holder = ?1 WHERE holder = ?2",
                    [dead, from.as_i64()],
                )
                .unwrap();
            }
            Place::Postgres(scratch) => {
                let mut conn = admin(&scratch.url);
                conn.execute(
                    "INSERT INTO processes (id, pid, host, started_at) VALUES ($1, 1, 'gone', 0)",
                    &[&dead],
                )
                .unwrap();
                conn.execute(
                    "UPDATE task_leases SET holder = $1 WHERE holder = $2",
                    &[&dead, &from.as_i64()],
                )
                .unwrap();
            }
        }
        dead
    }

    /// A webhook on all events in `ns` (created if missing).
    pub(crate) fn hook(&self, ns: &str, url: &str) -> Webhook {
        self.create(NewWebhook::new(ns, url))
    }

    /// Creates `new`, and its namespace if missing.
    pub(crate) fn create(&self, new: NewWebhook) -> Webhook {
        self.store.ensure_namespace(&new.namespace).unwrap();
        self.store.create_webhook(new).unwrap()
    }

    /// Accepts one `event` in `ns`.
    pub(crate) fn emit(&self, ns: &str, event_type: EventType) -> Accepted {
        self.store.accept_event(event(ns, event_type)).unwrap()
    }

    /// Accepts one event of each of `events` in `ns`, in one batch.
    pub(crate) fn emit_all(&self, ns: &str, events: &[EventType]) -> Vec<Accepted> {
        let batch = events.iter().map(|&e| event(ns, e)).collect();
        self.store.accept_events(batch).unwrap()
    }

    pub(crate) fn claim_all(&self, now: OffsetDateTime) -> Vec<Task> {
        self.store.claim_due(now, 100_000, LEASE).unwrap()
    }
}

/// A SQLite store on a fresh file.
pub(crate) fn db() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("hooks.db"), key()).unwrap();
    Db {
        store,
        place: Place::File(dir),
    }
}

pub(crate) fn event(ns: &str, event: EventType) -> NewEvent {
    NewEvent::new(ns, event, format!(r#"{{"event":"{event}"}}"#).into_bytes())
}

pub(crate) fn attempt(task: &Task, status: Option<u16>, at: OffsetDateTime) -> Attempt {
    let mut attempt = Attempt::new(&task.request, at);
    attempt.request_headers = vec![
        (headers::EVENT.to_owned(), task.request.event.to_string()),
        (headers::SIGNATURE.to_owned(), "sha256=00ff".to_owned()),
    ];
    attempt.response_status = status;
    attempt.response_headers = vec![("Content-Type".to_owned(), "text/plain".to_owned())];
    attempt.response_body = b"response".to_vec();
    attempt.duration = Duration::from_millis(5);
    (attempt.outcome, attempt.error) = match status {
        Some(200..=299) => (AttemptOutcome::Success, None),
        Some(s) => (AttemptOutcome::HttpStatus, Some(format!("status {s}"))),
        None => (
            AttemptOutcome::ConnectRefused,
            Some("connection refused".to_owned()),
        ),
    };
    attempt
}

pub(crate) fn completion(task: &Task, outcome: Outcome, at: OffsetDateTime) -> Completion {
    let status = match outcome {
        Outcome::Delivered => Some(200),
        _ => Some(500),
    };
    Completion::new(
        task.task_id,
        task.lease,
        attempt(task, status, at),
        Decision::new(outcome),
    )
}

/// Completions reporting each of `tasks` delivered at `at`.
pub(crate) fn all_delivered(tasks: &[Task], at: OffsetDateTime) -> Vec<Completion> {
    tasks
        .iter()
        .map(|task| completion(task, Outcome::Delivered, at))
        .collect()
}

pub(crate) fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}
