//! The outbox: accepting events, claiming and completing delivery tasks.

use std::time::Duration;

use const_format::formatcp;
use djinn_hook_outbox::{Completion, Outcome};
use rusqlite::{CachedStatement, OptionalExtension, Transaction, params};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::backend::Intake;
use crate::error::{Error, IResult, Result};
use crate::hooks::fail_pending;
use crate::idempotency::{StoredKey, expires_at, fingerprint};
use crate::intake::{Health, HookCache, health};
use crate::notices::{notify, subject};
use crate::notify::Notice;
use crate::rows;
use crate::sql::{event_code, from_ns, headers_to_json, to_ns};
use crate::sqlite::{SqliteBackend, namespace_id};
use crate::task_state::{DONE as STATE_DONE, FAILED, FAILED as STATE_FAILED, PENDING};
use crate::types::{Accepted, Completed, Counts, NewEvent};

/// The most bytes of a request or response body the log keeps; longer bodies
/// are cut and marked truncated.
pub const MAX_BODY: usize = 64 * 1024;

impl Intake for SqliteBackend {
    fn accept_event(&self, event: NewEvent, now: OffsetDateTime) -> Result<Accepted> {
        let mut accepted = self.accept_events(vec![event], now)?;
        Ok(accepted.remove(0))
    }

    /// An event whose idempotency key is stored (and not expired) is answered from it; the
    /// writer's lock makes the look-up and the write one step for every process.
    fn accept_events(&self, events: Vec<NewEvent>, now: OffsetDateTime) -> Result<Vec<Accepted>> {
        self.write("accepting events", |tx| {
            let mut hooks = HookCache::default();
            events
                .iter()
                .enumerate()
                .map(|(i, e)| accept(tx, &mut hooks, e, i, now))
                .collect()
        })
    }

    fn clear_expired_keys(&self, now: OffsetDateTime) -> Result<u64> {
        self.write("deleting expired idempotency keys", |tx| {
            Ok(tx
                .prepare_cached("DELETE FROM idempotency_keys WHERE expires_at <= ?1")?
                .execute([to_ns(now)])? as u64)
        })
    }

    fn complete(&self, completions: &[Completion], now: OffsetDateTime) -> Result<Vec<Completed>> {
        self.write("completing tasks", |tx| {
            complete_batch(tx, completions, now)
        })
    }

    fn redeliver(&self, delivery_id: i64, now: OffsetDateTime) -> Result<i64> {
        self.write("queueing a redelivery", |tx| {
            let (hook_id, event_row, body, truncated, active): (
                i64,
                i64,
                Option<Vec<u8>>,
                bool,
                bool,
            ) = tx
                .prepare_cached(
                    "SELECT d.hook_id, d.event_id, d.request_body, d.request_truncated, w.active
                     FROM deliveries d JOIN webhooks w ON w.id = d.hook_id WHERE d.id = ?1",
                )?
                .query_row([delivery_id], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })
                .optional()?
                .ok_or(Error::DeliveryNotFound { id: delivery_id })?;
            if !active {
                return Err(Error::WebhookInactive { id: hook_id }.into());
            }
            // No recorded body means the event's payload was sent: the new task
            // reads it from the event (kept as long as a delivery refers to it). A
            // truncated record cannot be sent again: the payload is sent instead.
            let body = body.filter(|_| !truncated);
            let task = tx
                .prepare_cached(formatcp!(
                    "INSERT INTO tasks (event_id, hook_id, state, next_at, redelivery, body)
                     VALUES (?1, ?2, {PENDING}, ?3, 1, ?4)"
                ))?
                .insert(params![event_row, hook_id, to_ns(now), body])?;
            Ok(task)
        })
    }

    fn retry_now(&self, hook_id: i64, now: OffsetDateTime) -> Result<u64> {
        self.write("rescheduling tasks", |tx| {
            let active: bool = tx
                .prepare_cached("SELECT active FROM webhooks WHERE id = ?1")?
                .query_row([hook_id], |r| r.get(0))
                .optional()?
                .ok_or(Error::WebhookNotFound { id: hook_id })?;
            if !active {
                return Err(Error::WebhookInactive { id: hook_id }.into());
            }
            let n = tx
                .prepare_cached(
                    formatcp!("UPDATE tasks SET state = {PENDING}, next_at = ?2
                     WHERE hook_id = ?1 AND (state = {FAILED} OR (state = {PENDING} AND lease IS NULL))"),
                )?
                .execute(params![hook_id, to_ns(now)])?;
            Ok(n as u64)
        })
    }

    fn next_due_at(&self, _now: OffsetDateTime) -> Result<Option<OffsetDateTime>> {
        self.read("finding the next due task", |conn| {
            let next: Option<i64> = conn
                .prepare_cached(formatcp!(
                    "SELECT t.next_at FROM tasks t JOIN webhooks w ON w.id = t.hook_id
                     WHERE t.state = {PENDING} AND w.active = 1 ORDER BY t.next_at LIMIT 1"
                ))?
                .query_row([], |r| r.get(0))
                .optional()?;
            Ok(next.map(from_ns))
        })
    }

    fn counts(&self, now: OffsetDateTime) -> Result<Counts> {
        self.read("counting", |conn| {
            let now = to_ns(now);
            Ok(conn.prepare_cached(
                formatcp!("SELECT
                    (SELECT count(*) FROM tasks WHERE state = {PENDING} AND (lease IS NULL OR next_at <= ?1)),
                    (SELECT count(*) FROM tasks WHERE state = {PENDING} AND lease IS NOT NULL AND next_at > ?1),
                    (SELECT count(*) FROM tasks WHERE state = {FAILED}),
                    (SELECT count(*) FROM webhooks WHERE active = 0 AND disabled_at IS NOT NULL),
                    (SELECT count(*) FROM events),
                    (SELECT count(*) FROM deliveries),
                    (SELECT count(*) FROM breakers)"),
            )?
            .query_row([now], |r| rows::counts(r))?)
        })
    }
}

/// Namespace `name`'s id and its active webhooks' ids and event masks.
fn load_hooks(tx: &Transaction<'_>, name: &str) -> IResult<(i64, Vec<(i64, i64)>)> {
    let ns = namespace_id(tx, name)?;
    let hooks = tx
        .prepare_cached(
            "SELECT id, events FROM webhooks WHERE namespace_id = ?1 AND active = 1
             ORDER BY id",
        )?
        .query_map([ns], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((ns, hooks))
}

fn accept(
    tx: &Transaction<'_>,
    hooks: &mut HookCache,
    event: &NewEvent,
    index: usize,
    at: OffsetDateTime,
) -> IResult<Accepted> {
    let subscribers = hooks.of(&event.namespace, |name| load_hooks(tx, name))?;
    let now = to_ns(at);
    let ns = subscribers.namespace_id;
    if let Some(key) = &event.idempotency
        && let Some(stored) = stored_key(tx, ns, &key.key, now)?
    {
        return Ok(stored.answer(event, index)?);
    }
    let event_id = Uuid::new_v4();
    let row = insert_event(tx, event_id, ns, event.event, &event.payload, now, false)?;
    if let Some(traceparent) = event.traceparent {
        // A second statement only for a traced event: the common insert stays as it was.
        tx.prepare_cached("UPDATE events SET traceparent = ?2 WHERE id = ?1")?
            .execute(params![row, traceparent.to_string()])?;
    }
    let mut matched = 0;
    // One single-row INSERT per matching webhook (an INSERT ... SELECT would need
    // a statement journal).
    let mut insert = tx.prepare_cached(formatcp!(
        "INSERT INTO tasks (event_id, hook_id, state, next_at) VALUES (?1, ?2, {PENDING}, ?3)"
    ))?;
    for hook in subscribers.matching(event.event) {
        insert.execute(params![row, hook, now])?;
        matched += 1;
    }
    if let Some(key) = &event.idempotency {
        // Replaces an expired row of the same key, if a prune has not deleted it yet.
        tx.prepare_cached(
            "INSERT OR REPLACE INTO idempotency_keys
                (namespace_id, key, fingerprint, event_uuid, event, matched, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            ns,
            key.key,
            fingerprint(event),
            event_id.as_bytes(),
            event_code(event.event),
            matched as i64,
            now,
            to_ns(expires_at(at, key)),
        ])?;
    }
    Ok(Accepted {
        event_id,
        matched,
        replayed: false,
    })
}

/// The stored, unexpired idempotency key `key` of namespace `ns`, if any.
fn stored_key(
    tx: &Transaction<'_>,
    ns: i64,
    key: &str,
    now: i64,
) -> rusqlite::Result<Option<StoredKey>> {
    tx.prepare_cached(
        "SELECT fingerprint, event_uuid, matched FROM idempotency_keys
         WHERE namespace_id = ?1 AND key = ?2 AND expires_at > ?3",
    )?
    .query_row(params![ns, key, now], |r| rows::stored_key(r, 0))
    .optional()
}

/// Stores an event (`created_at` in Unix ns; `test`: queued by
/// [`Store::queue_test`]); returns its row id.
pub(crate) fn insert_event(
    tx: &Transaction<'_>,
    event_id: Uuid,
    namespace_id: i64,
    event: djinn_hook_payload::EventType,
    payload: &[u8],
    created_at: i64,
    test: bool,
) -> rusqlite::Result<i64> {
    tx.prepare_cached(
        "INSERT INTO events (uuid, namespace_id, event, payload, created_at, test)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .insert(params![
        event_id.as_bytes(),
        namespace_id,
        event_code(event),
        payload,
        created_at,
        test
    ])
}

/// When a lease of `lease` taken at `now` runs out. A lease past the year 9999
/// (say `Duration::MAX`) means "until further notice".
pub(crate) fn lease_until(now: OffsetDateTime, lease: Duration) -> OffsetDateTime {
    time::Duration::try_from(lease)
        .ok()
        .and_then(|lease| now.checked_add(lease))
        .unwrap_or(from_ns(i64::MAX))
}

fn complete_batch(
    tx: &Transaction<'_>,
    completions: &[Completion],
    now: OffsetDateTime,
) -> IResult<Vec<Completed>> {
    let mut finished = Vec::new();
    let mut done = Vec::with_capacity(completions.len());
    let mut stmts = CompleteStatements::new(tx)?;
    for c in completions {
        let (completed, hook_id) = complete(&mut stmts, c)?;
        if let (true, Some(hook_id)) = (
            completed.lease_held && matches!(c.decision.outcome, Outcome::Failed),
            hook_id,
        ) {
            notify_failed(tx, hook_id, c, now)?;
        }
        done.push(completed);
        finished.extend(hook_id.map(|hook_id| (hook_id, c)));
    }
    for (hook_id, h) in health(finished) {
        match h {
            Health::Clear => tx
                .prepare_cached(
                    "UPDATE webhooks SET failing_since = NULL, breaker_destination = NULL,
                        breaker_until = NULL, breaker_reason = NULL
                     WHERE id = ?1
                        AND (failing_since IS NOT NULL OR breaker_destination IS NOT NULL)",
                )?
                .execute([hook_id])?,
            Health::FailingIfUnset(at) => tx
                .prepare_cached(
                    "UPDATE webhooks SET failing_since = ?2 WHERE id = ?1 AND failing_since IS NULL",
                )?
                .execute(params![hook_id, at])?,
            Health::FailingFrom(at) => tx
                .prepare_cached("UPDATE webhooks SET failing_since = ?2 WHERE id = ?1")?
                .execute(params![hook_id, at])?,
        };
    }
    // Disabling last, so it also fails tasks that this batch rescheduled.
    for c in completions {
        let Some(reason) = &c.decision.disable_hook else {
            continue;
        };
        let hook_id: Option<i64> = tx
            .prepare_cached("SELECT hook_id FROM tasks WHERE id = ?1")?
            .query_row([c.task_id], |r| r.get(0))
            .optional()?;
        let Some(hook_id) = hook_id else { continue };
        let n = tx
            .prepare_cached(
                "UPDATE webhooks SET active = 0, disabled_reason = ?2, disabled_at = ?3
                 WHERE id = ?1 AND active = 1",
            )?
            .execute(params![hook_id, reason, to_ns(c.attempt.created_at)])?;
        if n > 0 {
            fail_pending(tx, hook_id)?;
            if let Some(subject) = subject(tx, hook_id)? {
                notify(tx, &Notice::disabled(subject, reason, &c.attempt), now)?;
            }
        }
    }
    Ok(done)
}

/// Tells the operator that `c`'s task failed for good (not for a test delivery's).
fn notify_failed(
    tx: &Transaction<'_>,
    hook_id: i64,
    c: &Completion,
    now: OffsetDateTime,
) -> rusqlite::Result<()> {
    let test: bool = tx
        .prepare_cached(
            "SELECT e.test FROM tasks t JOIN events e ON e.id = t.event_id WHERE t.id = ?1",
        )?
        .query_row([c.task_id], |r| r.get(0))
        .optional()?
        .unwrap_or(true);
    if test {
        return Ok(());
    }
    let Some((hook, ..)) = subject(tx, hook_id)? else {
        return Ok(());
    };
    notify(tx, &Notice::failed(hook, &c.attempt), now)
}

/// The statements of one completion, taken from the statement cache once per
/// batch rather than looked up and returned for every completion (a hot path of the worker).
struct CompleteStatements<'tx> {
    task: CachedStatement<'tx>,
    finish: CachedStatement<'tx>,
    record: CachedStatement<'tx>,
}

impl<'tx> CompleteStatements<'tx> {
    fn new(tx: &'tx Transaction<'_>) -> rusqlite::Result<CompleteStatements<'tx>> {
        Ok(CompleteStatements {
            task: tx.prepare_cached(
                "SELECT hook_id, event_id, coalesce(lease = ?2, 0), body FROM tasks WHERE id = ?1",
            )?,
            finish: tx.prepare_cached(
                "UPDATE tasks SET state = COALESCE(?2, state), next_at = COALESCE(?3, next_at),
                    lease = NULL, attempts = max(attempts - ?4, 0)
                 WHERE id = ?1",
            )?,
            record: tx.prepare_cached(
                "INSERT INTO deliveries (hook_id, event_id, attempt, redelivery, request_headers,
                    request_body, request_truncated, response_status, response_headers,
                    response_body, response_truncated, tls_verification_skipped, duration_ns,
                    error, created_at, result)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            )?,
        })
    }
}

/// A task as a completion reads it: webhook, event row, whether the lease is
/// still held, and the request body for the log (`None`: the event's payload).
type TaskRow = (i64, i64, bool, Option<Vec<u8>>);

/// Applies one completion's outcome (if its lease still holds) and records its
/// attempt. Returns the webhook, or `None` if the task no longer exists.
fn complete(s: &mut CompleteStatements<'_>, c: &Completion) -> IResult<(Completed, Option<i64>)> {
    let (state, next_at) = match c.decision.outcome {
        Outcome::Delivered => (Some(STATE_DONE), None),
        // A task failed meanwhile (its webhook disabled) stays failed.
        Outcome::RetryAt(at) | Outcome::Throttled(at) => (None, Some(to_ns(at))),
        Outcome::Failed => (Some(STATE_FAILED), None),
    };
    // A throttled attempt gives back the attempt its claim counted.
    let uncounted = i64::from(matches!(c.decision.outcome, Outcome::Throttled(_)));
    // The log stores a request body only if it is not the event's payload (usually it is:
    // no need to write it twice): an attempt sends its task's body unchanged, which is the
    // payload unless the task carries its own (a redelivery's recorded body). Plain
    // statements only: an UPDATE ... RETURNING costs a temporary table and a statement
    // journal.
    let lease = c.lease.as_bytes();
    let task: Option<TaskRow> = s
        .task
        .query_row(params![c.task_id, lease], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?;
    let Some((hook_id, event_row, lease_held, request_body)) = task else {
        let none = Completed {
            delivery_id: None,
            lease_held: false,
        };
        return Ok((none, None));
    };
    if lease_held {
        s.finish
            .execute(params![c.task_id, state, next_at, uncounted])?;
    }
    let a = &c.attempt;
    let (request_body, request_truncated) = match &request_body {
        None => (None, false),
        Some(body) => {
            let (body, cut) = cap(body);
            (Some(body), cut)
        }
    };
    let (response_body, response_cut) = cap(&a.response_body);
    let delivery_id = s.record.insert(params![
        hook_id,
        event_row,
        a.attempt,
        a.redelivery,
        headers_to_json(&a.request_headers),
        request_body,
        request_truncated,
        a.response_status,
        headers_to_json(&a.response_headers),
        response_body,
        a.response_truncated || response_cut,
        a.tls_verification_skipped,
        i64::try_from(a.duration.as_nanos()).unwrap_or(i64::MAX),
        a.error,
        to_ns(a.created_at),
        a.outcome.as_str(),
    ])?;
    let completed = Completed {
        delivery_id: Some(delivery_id),
        lease_held,
    };
    Ok((completed, Some(hook_id)))
}

/// A body cut to [`MAX_BODY`], and whether it was cut.
pub(crate) fn cap(body: &[u8]) -> (&[u8], bool) {
    if body.len() > MAX_BODY {
        (&body[..MAX_BODY], true)
    } else {
        (body, false)
    }
}
