//! Shared helpers: a store on a temporary file, events, attempts and completions.

use std::time::Duration;

use djinn_hook_payload::EventType;
use djinn_hook_store::{
    Accepted, AttemptRecord, ClaimedTask, Completion, NewEvent, NewWebhook, Outcome, RequestBody,
    SecretKey, Store, Webhook,
};
use tempfile::TempDir;
use time::OffsetDateTime;

pub(crate) const LEASE: Duration = Duration::from_secs(60);

pub(crate) fn key() -> SecretKey {
    SecretKey::from_bytes([42; 32])
}

/// A store on a fresh file; the directory lives as long as the value.
pub(crate) struct Db {
    pub(crate) dir: TempDir,
    pub(crate) store: Store,
}

impl Db {
    pub(crate) fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("hooks.db")
    }

    /// A second, independent `Store` on the same file.
    pub(crate) fn reopen(&self) -> Store {
        Store::open(self.path(), key()).unwrap()
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

    pub(crate) fn claim_all(&self, now: OffsetDateTime) -> Vec<ClaimedTask> {
        self.store.claim_due(now, 100_000, LEASE).unwrap()
    }
}

pub(crate) fn db() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("hooks.db"), key()).unwrap();
    Db { dir, store }
}

pub(crate) fn event(ns: &str, event: EventType) -> NewEvent {
    NewEvent {
        namespace: ns.to_owned(),
        event,
        payload: format!(r#"{{"event":"{event}"}}"#).into_bytes(),
    }
}

pub(crate) fn attempt(
    task: &ClaimedTask,
    status: Option<u16>,
    at: OffsetDateTime,
) -> AttemptRecord {
    AttemptRecord {
        attempt: task.attempt,
        redelivery: task.redelivery,
        request_headers: vec![
            ("X-Djinn-CI-Event".to_owned(), task.event.to_string()),
            ("X-Djinn-CI-Signature".to_owned(), "sha256=00ff".to_owned()),
        ],
        // The worker's case: the claimed body, sent unchanged.
        request_body: RequestBody::Claimed,
        response_status: status,
        response_headers: vec![("Content-Type".to_owned(), "text/plain".to_owned())],
        response_body: b"response".to_vec(),
        response_truncated: false,
        tls_verification_skipped: false,
        duration: Duration::from_millis(5),
        error: match status {
            Some(200..=299) => None,
            Some(s) => Some(format!("status {s}")),
            None => Some("connection refused".to_owned()),
        },
        created_at: at,
    }
}

pub(crate) fn completion(task: &ClaimedTask, outcome: Outcome, at: OffsetDateTime) -> Completion {
    let status = match outcome {
        Outcome::Delivered => Some(200),
        _ => Some(500),
    };
    Completion {
        task_id: task.task_id,
        lease: task.lease,
        attempt: attempt(task, status, at),
        outcome,
        disable_hook: None,
    }
}

/// Completions reporting each of `tasks` delivered at `at`.
pub(crate) fn all_delivered(tasks: &[ClaimedTask], at: OffsetDateTime) -> Vec<Completion> {
    tasks
        .iter()
        .map(|task| completion(task, Outcome::Delivered, at))
        .collect()
}

pub(crate) fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}
