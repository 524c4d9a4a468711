//! Store throughput against raw SQLite durable commits of rows of the same size, in one run.
//!
//! Every database is a fresh file in a temporary directory on the same disk, with
//! the same pragmas as the store (WAL, `synchronous=FULL`), so each commit pays a
//! real fsync. Run: `cargo bench -p djinn-hook-store --bench store`.

use std::time::Duration;

use divan::Bencher;
use divan::counter::ItemsCount;
use djinn_hook_outbox::{Attempt, AttemptOutcome, Completion, Decision, Outcome, Task};
use djinn_hook_payload::EventType;
use djinn_hook_sign::headers;
use djinn_hook_store::{NewEvent, NewWebhook, SecretKey, Store};
use rusqlite::{Connection, params};
use tempfile::TempDir;
use time::OffsetDateTime;

fn main() {
    divan::main();
}

/// A typical build payload is a few KiB of JSON.
const PAYLOAD: usize = 2048;
const NS: &str = "alice/ci";
const BATCH: usize = 100;
const LEASE: Duration = Duration::from_secs(600);
const WARM_NS: &str = "warm/up";
/// Rows written before timing, to bring the WAL to its working size.
const WARM_ROWS: usize = 1000;

/// Brings a database file to its steady state before timing: a WAL that has
/// grown to its working size (about 1,000 pages, the autocheckpoint) and is
/// being overwritten from its start, as in a long-running install. A fresh
/// file's first commits also grow the WAL file, which makes each fsync write
/// file metadata too: slower, and not what production pays.
fn checkpoint_restart(path: &std::path::Path) {
    let conn = Connection::open(path).unwrap();
    conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()))
        .unwrap();
}

/// Flushes the writes of the previous benchmark (and of dropped temp dirs) to
/// disk before timing starts, so background writeback does not land in this
/// benchmark's fsyncs.
fn settle() {
    let _ = std::process::Command::new("sync").status();
    std::thread::sleep(Duration::from_millis(100));
}

fn payload() -> Vec<u8> {
    vec![b'x'; PAYLOAD]
}

struct Env {
    _dir: TempDir,
    store: Store,
}

impl Env {
    fn new(hooks: usize) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let store =
            Store::open(dir.path().join("bench.db"), SecretKey::from_bytes([9; 32])).unwrap();
        store.ensure_namespace(NS).unwrap();
        for i in 0..hooks {
            let mut hook = NewWebhook::new(NS, format!("https://example.com/hook/{i}"));
            hook.secret = Some("bench-secret".into());
            store.create_webhook(hook).unwrap();
        }
        // ~1,500 WAL pages of events in a namespace without webhooks.
        store.ensure_namespace(WARM_NS).unwrap();
        let warm = (0..WARM_ROWS)
            .map(|_| NewEvent::new(WARM_NS, EventType::Cron, payload()))
            .collect();
        store.accept_events(warm).unwrap();
        checkpoint_restart(&dir.path().join("bench.db"));
        settle();
        Env { _dir: dir, store }
    }

    fn event() -> NewEvent {
        NewEvent::new(NS, EventType::BuildFinished, payload())
    }

    fn claimed(&self, n: usize) -> Vec<Task> {
        self.store
            .accept_events((0..n).map(|_| Env::event()).collect())
            .unwrap();
        let tasks = self
            .store
            .claim_due(OffsetDateTime::now_utc(), n, LEASE)
            .unwrap();
        assert_eq!(tasks.len(), n);
        tasks
    }
}

/// The headers a delivery sends (about 400 bytes).
fn request_headers(task: &Task) -> Vec<(String, String)> {
    vec![
        ("Accept".into(), "*/*".into()),
        (
            "Content-Type".into(),
            "application/json; charset=utf-8".into(),
        ),
        ("User-Agent".into(), "Djinn-CI-Hook".into()),
        (headers::EVENT.into(), task.request.event.to_string()),
        (headers::HOOK_ID.into(), task.request.hook_id.to_string()),
        (headers::DELIVERY.into(), task.request.event_id.to_string()),
        (
            headers::SIGNATURE.into(),
            format!("sha256={}", "ab".repeat(32)),
        ),
    ]
}

fn response_headers() -> Vec<(String, String)> {
    vec![
        ("Content-Type".into(), "text/plain".into()),
        ("Date".into(), "Fri, 27 Nov 2026 13:00:00 GMT".into()),
    ]
}

fn completion(task: &Task) -> Completion {
    let mut attempt = Attempt::new(&task.request, OffsetDateTime::now_utc());
    attempt.request_headers = request_headers(task);
    attempt.response_status = Some(200);
    attempt.response_headers = response_headers();
    attempt.response_body = b"ok".to_vec();
    attempt.duration = Duration::from_millis(42);
    attempt.outcome = AttemptOutcome::Success;
    Completion::new(
        task.task_id,
        task.lease,
        attempt,
        Decision::new(Outcome::Delivered),
    )
}

/// Accepting one event per transaction, with 1 and 10 matching webhooks.
#[divan::bench(args = [1, 10], sample_count = 300, max_time = 4)]
fn accept_single(bencher: Bencher<'_, '_>, hooks: usize) {
    let env = Env::new(hooks);
    bencher
        .counter(ItemsCount::new(1usize))
        .with_inputs(Env::event)
        .bench_local_values(|event| env.store.accept_event(event).unwrap());
}

/// Accepting 100 events per transaction (group commit), with 1 and 10 matching webhooks.
#[divan::bench(args = [1, 10], sample_count = 300, max_time = 4)]
fn accept_batched_100(bencher: Bencher<'_, '_>, hooks: usize) {
    let env = Env::new(hooks);
    bencher
        .counter(ItemsCount::new(BATCH))
        .with_inputs(|| (0..BATCH).map(|_| Env::event()).collect::<Vec<_>>())
        .bench_local_values(|events| env.store.accept_events(events).unwrap());
}

/// Completing one task per transaction (recording its delivered attempt).
#[divan::bench(sample_count = 300, max_time = 4)]
fn complete_single(bencher: Bencher<'_, '_>) {
    let env = Env::new(1);
    bencher
        .counter(ItemsCount::new(1usize))
        .with_inputs(|| completion(&env.claimed(1)[0]))
        .bench_local_values(|c| env.store.complete_one(&c).unwrap());
}

/// Completing 100 tasks per transaction (group commit).
#[divan::bench(sample_count = 300, max_time = 4)]
fn complete_batched_100(bencher: Bencher<'_, '_>) {
    let env = Env::new(1);
    bencher
        .counter(ItemsCount::new(BATCH))
        .with_inputs(|| {
            env.claimed(BATCH)
                .iter()
                .map(completion)
                .collect::<Vec<_>>()
        })
        .bench_local_values(|batch| env.store.complete(&batch).unwrap());
}

/// Claiming 100 due tasks (one transaction, committed without an fsync).
#[divan::bench(sample_count = 300, max_time = 4)]
fn claim_100(bencher: Bencher<'_, '_>) {
    let env = Env::new(1);
    bencher
        .counter(ItemsCount::new(BATCH))
        .with_inputs(|| {
            env.store
                .accept_events((0..BATCH).map(|_| Env::event()).collect())
                .unwrap();
        })
        .bench_local_values(|()| {
            let tasks = env
                .store
                .claim_due(OffsetDateTime::now_utc(), BATCH, LEASE)
                .unwrap();
            assert_eq!(tasks.len(), BATCH);
            tasks
        });
}

/// The baseline: plain rusqlite inserts into an index-free table, same pragmas.
mod raw {
    use super::*;

    struct Raw {
        _dir: TempDir,
        conn: Connection,
    }

    fn open() -> Raw {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("raw.db")).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        conn.pragma_update(None, "synchronous", "FULL").unwrap();
        conn.execute_batch(
            "CREATE TABLE event_rows (id INTEGER PRIMARY KEY, uuid BLOB NOT NULL,
                namespace_id INTEGER NOT NULL, event INTEGER NOT NULL, payload BLOB NOT NULL,
                created_at INTEGER NOT NULL);
             CREATE TABLE attempt_rows (id INTEGER PRIMARY KEY, hook_id INTEGER NOT NULL,
                event_uuid BLOB NOT NULL, event INTEGER NOT NULL, attempt INTEGER NOT NULL,
                redelivery INTEGER NOT NULL, request_headers TEXT NOT NULL,
                request_body BLOB NOT NULL, request_truncated INTEGER NOT NULL,
                response_status INTEGER, response_headers TEXT NOT NULL,
                response_body BLOB NOT NULL, response_truncated INTEGER NOT NULL,
                tls_verification_skipped INTEGER NOT NULL, duration_ns INTEGER NOT NULL,
                error TEXT, created_at INTEGER NOT NULL);",
        )
        .unwrap();
        let tx = conn.unchecked_transaction().unwrap();
        for _ in 0..WARM_ROWS {
            insert_event_row(&tx, &payload());
        }
        tx.commit().unwrap();
        checkpoint_restart(&dir.path().join("raw.db"));
        settle();
        Raw { _dir: dir, conn }
    }

    fn now_ns() -> i64 {
        OffsetDateTime::now_utc().unix_timestamp_nanos() as i64
    }

    /// A distinct id per row without a random-number syscall (the store's
    /// completion path generates none either).
    fn row_uuid() -> [u8; 16] {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(1);
        u128::from(NEXT.fetch_add(1, Ordering::Relaxed)).to_be_bytes()
    }

    fn insert_event_row(conn: &Connection, payload: &[u8]) {
        conn.prepare_cached(
            "INSERT INTO event_rows (uuid, namespace_id, event, payload, created_at)
             VALUES (?1, 1, 2, ?2, ?3)",
        )
        .unwrap()
        .execute(params![row_uuid(), payload, now_ns()])
        .unwrap();
    }

    fn insert_attempt_row(conn: &Connection, headers: &str, response: &str, body: &[u8]) {
        conn.prepare_cached(
            "INSERT INTO attempt_rows (hook_id, event_uuid, event, attempt, redelivery,
                request_headers, request_body, request_truncated, response_status,
                response_headers, response_body, response_truncated, tls_verification_skipped,
                duration_ns, error, created_at)
             VALUES (1, ?1, 2, 1, 0, ?2, ?3, 0, 200, ?4, ?5, 0, 0, 42000000, NULL, ?6)",
        )
        .unwrap()
        .execute(params![
            row_uuid(),
            headers,
            body,
            response,
            b"ok".as_slice(),
            now_ns()
        ])
        .unwrap();
    }

    fn headers() -> (String, String) {
        let task_like = Task {
            task_id: 1,
            lease: djinn_hook_outbox::LeaseToken::new(),
            lease_until: OffsetDateTime::now_utc(),
            event_created_at: OffsetDateTime::now_utc(),
            hook_failing_since: None,
            max_in_flight: None,
            request: djinn_hook_outbox::DeliveryRequest::new(
                1,
                uuid::Uuid::new_v4(),
                EventType::BuildFinished,
                String::new(),
                Vec::new(),
            ),
        };
        (
            serde_json::to_string(&request_headers(&task_like)).unwrap(),
            serde_json::to_string(&response_headers()).unwrap(),
        )
    }

    /// One event-sized row per durable commit.
    #[divan::bench(sample_count = 300, max_time = 4)]
    fn event_row_single_commit(bencher: Bencher<'_, '_>) {
        let mut raw = open();
        let payload = payload();
        bencher.counter(ItemsCount::new(1usize)).bench_local(|| {
            let tx = raw.conn.transaction().unwrap();
            insert_event_row(&tx, &payload);
            tx.commit().unwrap();
        });
    }

    /// 100 event-sized rows per durable commit.
    #[divan::bench(sample_count = 300, max_time = 4)]
    fn event_rows_100_commit(bencher: Bencher<'_, '_>) {
        let mut raw = open();
        let payload = payload();
        bencher.counter(ItemsCount::new(BATCH)).bench_local(|| {
            let tx = raw.conn.transaction().unwrap();
            for _ in 0..BATCH {
                insert_event_row(&tx, &payload);
            }
            tx.commit().unwrap();
        });
    }

    /// One attempt-sized row per durable commit.
    #[divan::bench(sample_count = 300, max_time = 4)]
    fn attempt_row_single_commit(bencher: Bencher<'_, '_>) {
        let mut raw = open();
        let body = payload();
        let (headers, response) = headers();
        bencher.counter(ItemsCount::new(1usize)).bench_local(|| {
            let tx = raw.conn.transaction().unwrap();
            insert_attempt_row(&tx, &headers, &response, &body);
            tx.commit().unwrap();
        });
    }

    /// 100 attempt-sized rows per durable commit.
    #[divan::bench(sample_count = 300, max_time = 4)]
    fn attempt_rows_100_commit(bencher: Bencher<'_, '_>) {
        let mut raw = open();
        let body = payload();
        let (headers, response) = headers();
        bencher.counter(ItemsCount::new(BATCH)).bench_local(|| {
            let tx = raw.conn.transaction().unwrap();
            for _ in 0..BATCH {
                insert_attempt_row(&tx, &headers, &response, &body);
            }
            tx.commit().unwrap();
        });
    }
}
