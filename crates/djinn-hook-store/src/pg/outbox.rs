//! The outbox on PostgreSQL: accepting events and completing delivery tasks (claims are in
//! `claim.rs`).

use std::collections::{BTreeSet, HashMap, HashSet};

use const_format::formatcp;
use djinn_hook_outbox::{Attempt, Completion, Outcome};
use postgres::Transaction;
use postgres::types::Type;
use time::OffsetDateTime;
use uuid::Uuid;

use super::claim::{NOT_LEASED, PENDING_HOOKS, TASK_OF_LEASE, not_leased};
use super::event_ids::{EventIds, ROW_OF_EACH_ID};
use super::hooks::fail_pending;
use super::idempotency::{self, Plan};
use super::notices::{notify, subject};
use super::packed::Packed;
use super::{CHANNEL, PgBackend, namespace_id};
use crate::backend::Intake;
use crate::error::{Error, IResult, Result};
use crate::intake::{Health, HookCache, health};
use crate::notify::Notice;
use crate::outbox::cap;
use crate::rows;
use crate::sql::{event_code, from_ns, headers_to_json, to_ns};
use crate::task_state::{DONE as STATE_DONE, FAILED, FAILED as STATE_FAILED, PENDING};
use crate::types::{Accepted, Completed, Counts, NewEvent};

impl Intake for PgBackend {
    fn accept_event(&self, event: NewEvent, now: OffsetDateTime) -> Result<Accepted> {
        let mut accepted = self.accept_events(vec![event], now)?;
        Ok(accepted.remove(0))
    }

    fn accept_events(&self, events: Vec<NewEvent>, now: OffsetDateTime) -> Result<Vec<Accepted>> {
        // Packed before the transaction, which would otherwise hold the idempotency keys'
        // locks meanwhile, and pack again if it were run again.
        let payloads: Vec<Vec<u8>> = events
            .iter()
            .map(|e| Packed::Payload.pack(&e.payload))
            .collect();
        self.write("accepting events", |tx| accept(tx, &events, &payloads, now))
    }

    fn clear_expired_keys(&self, now: OffsetDateTime) -> Result<u64> {
        self.write("deleting expired idempotency keys", |tx| {
            Ok(tx.execute(
                "DELETE FROM idempotency_keys WHERE expires_at <= $1",
                &[&to_ns(now)],
            )?)
        })
    }

    fn complete(&self, completions: &[Completion], now: OffsetDateTime) -> Result<Vec<Completed>> {
        // Packed before the transaction, which holds the tasks' and leases' rows meanwhile.
        let headers: Vec<PackedHeaders> = completions
            .iter()
            .map(|c| PackedHeaders::of(&c.attempt))
            .collect();
        self.write("completing tasks", |tx| {
            complete_batch(tx, completions, &headers, now)
        })
    }

    fn redeliver(&self, delivery_id: i64, now: OffsetDateTime) -> Result<i64> {
        self.write("queueing a redelivery", |tx| {
            let row = tx
                .query_opt(
                    // The event's row locked as a foreign key would: a prune cannot delete it
                    // before this task is in.
                    "SELECT d.hook_id, d.event_id, d.request_body, d.request_truncated, w.active
                     FROM deliveries d JOIN webhooks w ON w.id = d.hook_id
                        JOIN events e ON e.id = d.event_id
                     WHERE d.id = $1
                     FOR KEY SHARE OF e",
                    &[&delivery_id],
                )?
                .ok_or(Error::DeliveryNotFound { id: delivery_id })?;
            let (hook_id, event_row, body, truncated, active): (
                i64,
                i64,
                Option<Vec<u8>>,
                bool,
                bool,
            ) = (
                row.try_get(0)?,
                row.try_get(1)?,
                row.try_get(2)?,
                row.try_get(3)?,
                row.try_get(4)?,
            );
            if !active {
                return Err(Error::WebhookInactive { id: hook_id }.into());
            }
            // As on SQLite: no recorded body (or a truncated one) sends the payload.
            let body = body.filter(|_| !truncated);
            let task: i64 = tx
                .query_one(
                    formatcp!(
                        "INSERT INTO tasks (event_id, hook_id, state, next_at, redelivery, body)
                     VALUES ($1, $2, {PENDING}, $3, true, $4) RETURNING id"
                    ),
                    &[&event_row, &hook_id, &to_ns(now), &body],
                )?
                .try_get(0)?;
            announce(tx)?;
            Ok(task)
        })
    }

    fn retry_now(&self, hook_id: i64, now: OffsetDateTime) -> Result<u64> {
        self.write("rescheduling tasks", |tx| {
            let active: bool = tx
                .query_opt("SELECT active FROM webhooks WHERE id = $1", &[&hook_id])?
                .ok_or(Error::WebhookNotFound { id: hook_id })?
                .try_get(0)?;
            if !active {
                return Err(Error::WebhookInactive { id: hook_id }.into());
            }
            let n = tx.execute(
                formatcp!(
                    "UPDATE tasks t SET state = {PENDING}, next_at = $2
                 WHERE hook_id = $1 AND (state = {FAILED} OR (state = {PENDING} AND {NOT_LEASED}))"
                ),
                &[&hook_id, &to_ns(now)],
            )?;
            if n > 0 {
                announce(tx)?;
            }
            Ok(n)
        })
    }

    fn next_due_at(&self, now: OffsetDateTime) -> Result<Option<OffsetDateTime>> {
        self.read("finding the next due task", |conn| {
            // Per webhook with pending tasks, its first task without a live lease; and the end
            // of the first live lease.
            Ok(conn
                .query_one(
                    formatcp!(
                        "{PENDING_HOOKS}
                     SELECT min(at) FROM (
                        SELECT (SELECT t.next_at FROM tasks t
                                WHERE t.hook_id = w.id AND t.state = {PENDING} AND {not_leased}
                                ORDER BY t.next_at, t.id LIMIT 1) AS at
                        FROM webhooks w
                        WHERE w.id IN (SELECT id FROM pending WHERE id IS NOT NULL) AND w.active
                        UNION ALL
                        SELECT min(l.until) FROM task_leases l
                            JOIN webhooks w ON w.id = l.hook_id AND w.active
                            JOIN tasks t ON {TASK_OF_LEASE}
                        WHERE l.until > $1) AS firsts",
                        not_leased = not_leased!("$1")
                    ),
                    &[&to_ns(now)],
                )?
                .try_get::<_, Option<i64>>(0)?
                .map(from_ns))
        })
    }

    fn counts(&self, now: OffsetDateTime) -> Result<Counts> {
        self.read("counting", |conn| {
            let now = to_ns(now);
            let r = conn.query_one(
                formatcp!(
                    "SELECT
                    (SELECT count(*) FROM tasks t WHERE state = {PENDING} AND {not_leased}),
                    (SELECT count(*) FROM task_leases l JOIN tasks t ON {TASK_OF_LEASE}
                        WHERE l.until > $1),
                    (SELECT count(*) FROM tasks WHERE state = {FAILED}),
                    (SELECT count(*) FROM webhooks WHERE NOT active AND disabled_at IS NOT NULL),
                    (SELECT count(*) FROM events),
                    (SELECT count(*) FROM deliveries),
                    (SELECT count(*) FROM breakers)",
                    not_leased = not_leased!("$1")
                ),
                &[&now],
            )?;
            rows::counts(&r)
        })
    }
}

/// Wakes the listening workers when this transaction commits (one
/// notification per transaction: PostgreSQL folds identical ones).
pub(crate) fn announce(tx: &mut Transaction<'_>) -> IResult<()> {
    tx.execute("SELECT pg_notify($1, '')", &[&CHANNEL])?;
    Ok(())
}

/// Namespace `name`'s id and its active webhooks' ids and event masks.
fn load_hooks(tx: &mut Transaction<'_>, name: &str) -> IResult<(i64, Vec<(i64, i64)>)> {
    let ns = namespace_id(tx, name)?;
    let hooks = tx
        .query(
            "SELECT id, events FROM webhooks WHERE namespace_id = $1 AND active ORDER BY id",
            &[&ns],
        )?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<IResult<_>>()?;
    Ok((ns, hooks))
}

/// Stores a batch of events (`packed_payloads[i]`: event `i`'s payload, packed) and their
/// tasks, and wakes the workers if any task was queued: two
/// statements (array parameters) for the whole batch, plus two per namespace first seen, and
/// two for the idempotency keys if any event has one. An event answered from its key is not
/// stored.
fn accept(
    tx: &mut Transaction<'_>,
    events: &[NewEvent],
    packed_payloads: &[Vec<u8>],
    at: OffsetDateTime,
) -> IResult<Vec<Accepted>> {
    let now = to_ns(at);
    let mut hooks = HookCache::default();
    let mut plans = Vec::with_capacity(events.len());
    for event in events {
        let subscribers = hooks.of(&event.namespace, |name| load_hooks(tx, name))?;
        plans.push(Plan {
            namespace: subscribers.namespace_id,
            hooks: subscribers.matching(event.event).collect(),
        });
    }
    // Every event's row and id, drawn before the idempotency keys are written with the ids;
    // an event answered from its key leaves its row unused.
    let (rows, uuids): (Vec<i64>, Vec<Uuid>) =
        EventIds::draw(tx, events.len())?.into_iter().unzip();
    let mut answers = if events.iter().any(|e| e.idempotency.is_some()) {
        idempotency::claim(tx, events, &plans, &uuids, at)?
    } else {
        vec![None; events.len()]
    };
    // The events to store, by their index in the batch.
    let new: Vec<usize> = (0..events.len())
        .filter(|&i| answers[i].is_none())
        .collect();
    let (mut ids, mut namespaces, mut codes, mut payloads) = (vec![], vec![], vec![], vec![]);
    let mut traces: Vec<Option<String>> = Vec::with_capacity(new.len());
    let mut new_rows = Vec::with_capacity(new.len());
    for &i in &new {
        new_rows.push(rows[i]);
        ids.push(uuids[i]);
        namespaces.push(plans[i].namespace);
        codes.push(event_code(events[i].event));
        payloads.push(packed_payloads[i].as_slice());
        traces.push(events[i].traceparent.map(|t| t.to_string()));
    }
    let (mut event_rows, mut hook_ids) = (vec![], vec![]);
    for (&i, &row) in new.iter().zip(&new_rows) {
        for &hook in &plans[i].hooks {
            event_rows.push(row);
            hook_ids.push(hook);
        }
    }
    // The events, their tasks and the workers' wake-up in one statement: the rows are known,
    // and no key ties a task to its event's insert.
    if !new.is_empty() {
        tx.query_typed(
            formatcp!(
                "WITH stored AS (
                    INSERT INTO events (id, uuid, namespace_id, event, payload_packed, created_at,
                        test, traceparent)
                    SELECT id, uuid, namespace_id, event, payload, $6, false, traceparent
                    FROM unnest($1::bigint[], $2::uuid[], $3::bigint[], $4::bigint[],
                        $5::bytea[], $7::text[])
                        AS e (id, uuid, namespace_id, event, payload, traceparent)
                ), queued AS (
                    INSERT INTO tasks (event_id, hook_id, state, next_at)
                    SELECT event_id, hook_id, {PENDING}, $6
                    FROM unnest($8::bigint[], $9::bigint[]) AS t (event_id, hook_id)
                    RETURNING 1
                )
                SELECT pg_notify($10, '') WHERE EXISTS (SELECT 1 FROM queued)"
            ),
            &[
                (&new_rows, Type::INT8_ARRAY),
                (&ids, Type::UUID_ARRAY),
                (&namespaces, Type::INT8_ARRAY),
                (&codes, Type::INT8_ARRAY),
                (&payloads, Type::BYTEA_ARRAY),
                (&now, Type::INT8),
                (&traces, Type::TEXT_ARRAY),
                (&event_rows, Type::INT8_ARRAY),
                (&hook_ids, Type::INT8_ARRAY),
                (&CHANNEL, Type::TEXT),
            ],
        )?;
    }
    for &i in &new {
        answers[i] = Some(Accepted {
            event_id: uuids[i],
            matched: plans[i].hooks.len(),
            replayed: false,
        });
    }
    Ok(answers
        .into_iter()
        .map(|a| a.expect("every event answered"))
        .collect())
}

/// Stores an event (`created_at` in Unix ns; `test`: queued by `queue_test`);
/// returns its row and its id.
pub(crate) fn insert_event(
    tx: &mut Transaction<'_>,
    namespace_id: i64,
    event: djinn_hook_payload::EventType,
    payload: &[u8],
    created_at: i64,
    test: bool,
) -> IResult<(i64, Uuid)> {
    let (row, id) = EventIds::draw(tx, 1)?[0];
    tx.execute_typed(
        "INSERT INTO events (id, uuid, namespace_id, event, payload_packed, created_at, test)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            (&row, Type::INT8),
            (&id, Type::UUID),
            (&namespace_id, Type::INT8),
            (&event_code(event), Type::INT8),
            (&Packed::Payload.pack(payload), Type::BYTEA),
            (&created_at, Type::INT8),
            (&test, Type::BOOL),
        ],
    )?;
    Ok((row, id))
}

fn complete_batch(
    tx: &mut Transaction<'_>,
    completions: &[Completion],
    headers: &[PackedHeaders],
    now: OffsetDateTime,
) -> IResult<Vec<Completed>> {
    let tasks = finish_tasks(tx, completions)?;
    let done = record_attempts(tx, completions, headers, &tasks)?;
    let finished = completions
        .iter()
        .zip(&tasks)
        .filter_map(|(c, task)| task.as_ref().map(|task| (task.hook_id, c)));
    // In webhook order (`health`), so two batches lock webhooks in the same order.
    for (hook_id, h) in health(finished) {
        // Written only when it changes: a webhook's row is shared by every
        // worker, and an update would make the others wait for this commit.
        let id = (&hook_id as _, Type::INT8);
        match h {
            Health::Clear => tx.query_typed(
                "UPDATE webhooks SET failing_since = NULL, breaker_destination = NULL,
                    breaker_until = NULL, breaker_reason = NULL
                 WHERE id = $1
                    AND (failing_since IS NOT NULL OR breaker_destination IS NOT NULL)",
                &[id],
            )?,
            Health::FailingIfUnset(at) => tx.query_typed(
                "UPDATE webhooks SET failing_since = $2 WHERE id = $1 AND failing_since IS NULL",
                &[id, (&at, Type::INT8)],
            )?,
            Health::FailingFrom(at) => tx.query_typed(
                "UPDATE webhooks SET failing_since = $2 WHERE id = $1",
                &[id, (&at, Type::INT8)],
            )?,
        };
    }
    fail_retried(tx, completions, &tasks, now)?;
    for (c, task) in completions.iter().zip(&tasks) {
        if let Some(task) = task.as_ref().filter(|t| t.lease_held)
            && matches!(c.decision.outcome, Outcome::Failed)
        {
            notify_failed(tx, task, c, now)?;
        }
    }
    // Disabling last, so it also fails tasks that this batch rescheduled.
    for (c, task) in completions.iter().zip(&tasks) {
        let (Some(reason), Some(task)) = (&c.decision.disable_hook, task) else {
            continue;
        };
        let n = tx.execute(
            "UPDATE webhooks SET active = false, disabled_reason = $2, disabled_at = $3
             WHERE id = $1 AND active",
            &[&task.hook_id, reason, &to_ns(c.attempt.created_at)],
        )?;
        if n > 0 {
            fail_pending(tx, task.hook_id, now)?;
            if let Some(subject) = subject(tx, task.hook_id)? {
                notify(tx, &Notice::disabled(subject, reason, &c.attempt), now)?;
            }
        }
    }
    Ok(done)
}

/// Fails the tasks this batch put back to wait for a retry whose webhook was deactivated or
/// disabled while they were under way (which left them pending: `fail_pending` passes over
/// tasks under a live lease, so that their outcome is applied).
fn fail_retried(
    tx: &mut Transaction<'_>,
    completions: &[Completion],
    tasks: &[Option<Finished>],
    now: OffsetDateTime,
) -> IResult<()> {
    let retried: BTreeSet<i64> = completions
        .iter()
        .zip(tasks)
        .filter(|(c, _)| {
            matches!(
                c.decision.outcome,
                Outcome::RetryAt(_) | Outcome::Throttled(_)
            )
        })
        .filter_map(|(_, task)| task.as_ref().filter(|t| t.lease_held))
        .map(|task| task.hook_id)
        .collect();
    if retried.is_empty() {
        return Ok(());
    }
    let retried: Vec<i64> = retried.into_iter().collect();
    for r in tx.query_typed(
        "SELECT id FROM webhooks WHERE id = ANY($1) AND NOT active ORDER BY id",
        &[(&retried, Type::INT8_ARRAY)],
    )? {
        fail_pending(tx, r.try_get(0)?, now)?;
    }
    Ok(())
}

/// Tells the operator that `c`'s task failed for good (not for a test delivery's).
fn notify_failed(
    tx: &mut Transaction<'_>,
    task: &Finished,
    c: &Completion,
    now: OffsetDateTime,
) -> IResult<()> {
    let test: bool = tx
        .query_one("SELECT test FROM events WHERE id = $1", &[&task.event_row])?
        .try_get(0)?;
    if test {
        return Ok(());
    }
    let Some((hook, ..)) = subject(tx, task.hook_id)? else {
        return Ok(());
    };
    notify(tx, &Notice::failed(hook, &c.attempt), now)
}

/// A completed task as the log needs it.
struct Finished {
    hook_id: i64,
    event_row: i64,
    /// The task's own body (a redelivery's), if any.
    body: Option<Vec<u8>>,
    /// Whether the lease still held, so the outcome was applied.
    lease_held: bool,
}

/// Applies the outcomes whose lease still holds, in one statement (the lease's
/// row deleted and the change made together: a claim writing a new lease waits for
/// this commit, then sees the task gone or changed), and reads the tasks back; `None` for a
/// task that no longer exists. A task completed twice in one batch takes the first outcome;
/// the later ones find the lease ended, as they would one after the other. A retry's task
/// takes the attempt count its lease carried.
///
/// A delivered task is deleted rather than marked done (one WAL record where an update writes
/// a new row version and its key's entry), unless it carries a body of its own (a
/// redelivery's, which the log of a late completion needs). A late completion of a task
/// deleted so is still logged, from its attempt: the webhook and the event are looked up, and
/// if either is gone (deleted, pruned) the attempt is not logged, as for a task they took
/// with them.
fn finish_tasks(
    tx: &mut Transaction<'_>,
    completions: &[Completion],
) -> IResult<Vec<Option<Finished>>> {
    let mut seen = HashSet::new();
    let (mut ids, mut leases, mut states, mut next_ats) = (vec![], vec![], vec![], vec![]);
    let (mut uncounted, mut hooks): (Vec<i64>, Vec<i64>) = (vec![], vec![]);
    for c in completions.iter().filter(|c| seen.insert(c.task_id)) {
        let (state, next_at) = match c.decision.outcome {
            Outcome::Delivered => (Some(STATE_DONE), None),
            // A retry of a webhook disabled meanwhile is failed after (`fail_retried`).
            Outcome::RetryAt(at) | Outcome::Throttled(at) => (None, Some(to_ns(at))),
            Outcome::Failed => (Some(STATE_FAILED), None),
        };
        ids.push(c.task_id);
        hooks.push(c.attempt.hook_id);
        leases.push(*c.lease.as_uuid());
        states.push(state);
        next_ats.push(next_at);
        // A throttled attempt gives back the attempt its claim counted.
        uncounted.push(i64::from(matches!(
            c.decision.outcome,
            Outcome::Throttled(_)
        )));
    }
    // One statement: the leases deleted, the outcomes applied to their tasks (found by the
    // webhook and due time the lease kept: one seek of `tasks_hook_due` each, which `l`
    // carrying the outcomes leaves the planner no other way to join), the tasks read back
    // from what was applied.
    let mut rows: HashMap<i64, Finished> = tx
        .query_typed(
            formatcp!(
                "WITH c AS (
                SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::bigint[], $4::bigint[],
                    $5::bigint[]) AS c (id, lease, state, next_at, uncounted)),
             l AS (
                DELETE FROM task_leases l USING c
                WHERE l.task_id = c.id AND l.lease = c.lease
                RETURNING l.task_id, l.hook_id, l.due_at, l.attempt, c.state, c.next_at,
                    c.uncounted),
             gone AS (
                DELETE FROM tasks t USING l
                WHERE {TASK_OF_LEASE} AND l.state = {STATE_DONE} AND t.body IS NULL
                RETURNING t.id, t.hook_id, t.event_id, t.body),
             kept AS (
                UPDATE tasks t SET state = COALESCE(l.state, t.state),
                    next_at = COALESCE(l.next_at, t.next_at),
                    attempts = GREATEST(l.attempt - l.uncounted, 0)
                FROM l WHERE {TASK_OF_LEASE}
                    AND (l.state IS DISTINCT FROM {STATE_DONE} OR t.body IS NOT NULL)
                RETURNING t.id, t.hook_id, t.event_id, t.body)
             SELECT * FROM gone UNION ALL SELECT * FROM kept"
            ),
            &[
                (&ids, Type::INT8_ARRAY),
                (&leases, Type::UUID_ARRAY),
                (&states, Type::INT8_ARRAY),
                (&next_ats, Type::INT8_ARRAY),
                (&uncounted, Type::INT8_ARRAY),
            ],
        )?
        .iter()
        .map(|r| finished(r, true))
        .collect::<IResult<_>>()?;
    // Late completions (another claim holds the task now, or it is gone): a pending task is
    // read from its webhook's pending tasks (rare: a lease that ran out in flight).
    let late: Vec<(i64, i64)> = ids
        .iter()
        .zip(&hooks)
        .filter(|(id, _)| !rows.contains_key(id))
        .map(|(&id, &hook)| (id, hook))
        .collect();
    if !late.is_empty() {
        let (late_ids, late_hooks): (Vec<i64>, Vec<i64>) = late.into_iter().unzip();
        for r in tx.query_typed(
            formatcp!(
                "SELECT t.id, t.hook_id, t.event_id, t.body
                 FROM unnest($1::bigint[], $2::bigint[]) AS m (id, hook)
                    CROSS JOIN LATERAL (SELECT * FROM tasks t
                        WHERE t.hook_id = m.hook AND t.state = {PENDING} AND t.id = m.id) t"
            ),
            &[
                (&late_ids, Type::INT8_ARRAY),
                (&late_hooks, Type::INT8_ARRAY),
            ],
        )? {
            let (id, task) = finished(&r, false)?;
            rows.insert(id, task);
        }
    }
    // Tasks gone before this batch: delivered (and deleted) by another claim, or taken with
    // their webhook or event. Their attempts are logged if both still exist.
    let missing: Vec<&Completion> = completions
        .iter()
        .filter(|c| !rows.contains_key(&c.task_id))
        .collect();
    if !missing.is_empty() {
        let tasks: Vec<i64> = missing.iter().map(|c| c.task_id).collect();
        let hooks: Vec<i64> = missing.iter().map(|c| c.attempt.hook_id).collect();
        let events: Vec<Uuid> = missing.iter().map(|c| c.attempt.event_id).collect();
        let ids = EventIds::load(tx)?;
        let carried: Vec<Option<i64>> = events.iter().map(|&id| ids.row_of(id)).collect();
        for r in tx.query_typed(
            formatcp!(
                "SELECT m.task, m.hook, e.id
                 FROM unnest($1::bigint[], $2::bigint[], $3::uuid[], $4::bigint[])
                    AS m (task, hook, event, row)
                    JOIN LATERAL ({ROW_OF_EACH_ID}) e ON true
                 WHERE EXISTS (SELECT 1 FROM webhooks w WHERE w.id = m.hook)"
            ),
            &[
                (&tasks, Type::INT8_ARRAY),
                (&hooks, Type::INT8_ARRAY),
                (&events, Type::UUID_ARRAY),
                (&carried, Type::INT8_ARRAY),
            ],
        )? {
            let task = Finished {
                hook_id: r.try_get(1)?,
                event_row: r.try_get(2)?,
                body: None,
                lease_held: false,
            };
            rows.insert(r.try_get(0)?, task);
        }
    }
    Ok(completions
        .iter()
        .map(|c| {
            let task = rows.get_mut(&c.task_id)?;
            Some(Finished {
                hook_id: task.hook_id,
                event_row: task.event_row,
                body: task.body.clone(),
                // Only the first completion of a task can have held its lease.
                lease_held: std::mem::take(&mut task.lease_held),
            })
        })
        .collect())
}

/// A task read back by `finish_tasks` (id, webhook, event, body) as its id and [`Finished`].
fn finished(r: &postgres::Row, lease_held: bool) -> IResult<(i64, Finished)> {
    let task = Finished {
        hook_id: r.try_get(1)?,
        event_row: r.try_get(2)?,
        body: r.try_get(3)?,
        lease_held,
    };
    Ok((r.try_get(0)?, task))
}

/// Records every attempt whose task still exists (`headers[i]`: completion `i`'s, packed), in
/// one statement.
fn record_attempts(
    tx: &mut Transaction<'_>,
    completions: &[Completion],
    headers: &[PackedHeaders],
    tasks: &[Option<Finished>],
) -> IResult<Vec<Completed>> {
    let mut rows = Rows::default();
    for ((c, headers), task) in completions.iter().zip(headers).zip(tasks) {
        let Some(task) = task else { continue };
        // As on SQLite, the log stores a request body only if it is not the event's payload:
        // the task's own body (a redelivery's), if it has one.
        rows.push(task, &c.attempt, headers, task.body.as_deref());
    }
    // Rows go in in the batch's order (ORDER BY n), each taking the next id,
    // so the ids, sorted, are the rows' in that order.
    let mut ids: Vec<i64> = if rows.hook_id.is_empty() {
        Vec::new()
    } else {
        use Type as T;
        tx.query_typed(
            "INSERT INTO deliveries (hook_id, event_id, attempt, redelivery,
                request_headers_packed, request_body, request_truncated, response_status,
                response_headers_packed,
                response_body, response_truncated, tls_verification_skipped, duration_ns,
                error, created_at, result)
             SELECT hook_id, event_id, attempt, redelivery, request_headers, request_body,
                request_truncated, response_status, response_headers, response_body,
                response_truncated, tls_verification_skipped, duration_ns, error, created_at,
                result
             FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::boolean[], $5::bytea[],
                $6::bytea[], $7::boolean[], $8::bigint[], $9::bytea[], $10::bytea[],
                $11::boolean[], $12::boolean[], $13::bigint[], $14::text[], $15::bigint[],
                $16::text[])
                WITH ORDINALITY AS r (hook_id, event_id, attempt, redelivery, request_headers,
                    request_body, request_truncated, response_status, response_headers,
                    response_body, response_truncated, tls_verification_skipped, duration_ns,
                    error, created_at, result, n)
             ORDER BY n
             RETURNING id",
            &[
                (&rows.hook_id, T::INT8_ARRAY),
                (&rows.event_id, T::INT8_ARRAY),
                (&rows.attempt, T::INT8_ARRAY),
                (&rows.redelivery, T::BOOL_ARRAY),
                (&rows.request_headers, T::BYTEA_ARRAY),
                (&rows.request_body, T::BYTEA_ARRAY),
                (&rows.request_truncated, T::BOOL_ARRAY),
                (&rows.response_status, T::INT8_ARRAY),
                (&rows.response_headers, T::BYTEA_ARRAY),
                (&rows.response_body, T::BYTEA_ARRAY),
                (&rows.response_truncated, T::BOOL_ARRAY),
                (&rows.tls_verification_skipped, T::BOOL_ARRAY),
                (&rows.duration_ns, T::INT8_ARRAY),
                (&rows.error, T::TEXT_ARRAY),
                (&rows.created_at, T::INT8_ARRAY),
                (&rows.result, T::TEXT_ARRAY),
            ],
        )?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?
    };
    ids.sort_unstable();
    let mut ids = ids.into_iter();
    Ok(tasks
        .iter()
        .map(|task| match task {
            Some(task) => Completed {
                delivery_id: Some(ids.next().expect("one id per recorded attempt")),
                lease_held: task.lease_held,
            },
            None => Completed {
                delivery_id: None,
                lease_held: false,
            },
        })
        .collect())
}

/// An attempt's request and response headers, as the log stores them.
struct PackedHeaders {
    request: Vec<u8>,
    response: Vec<u8>,
}

impl PackedHeaders {
    fn of(attempt: &Attempt) -> PackedHeaders {
        let pack = |headers| Packed::Headers.pack(headers_to_json(headers).as_bytes());
        PackedHeaders {
            request: pack(&attempt.request_headers),
            response: pack(&attempt.response_headers),
        }
    }
}

/// The delivery rows of one batch, column by column (one array parameter each).
#[derive(Default)]
struct Rows<'a> {
    hook_id: Vec<i64>,
    event_id: Vec<i64>,
    attempt: Vec<i64>,
    redelivery: Vec<bool>,
    request_headers: Vec<&'a [u8]>,
    request_body: Vec<Option<Vec<u8>>>,
    request_truncated: Vec<bool>,
    response_status: Vec<Option<i64>>,
    response_headers: Vec<&'a [u8]>,
    response_body: Vec<Vec<u8>>,
    response_truncated: Vec<bool>,
    tls_verification_skipped: Vec<bool>,
    duration_ns: Vec<i64>,
    error: Vec<Option<String>>,
    created_at: Vec<i64>,
    result: Vec<&'static str>,
}

impl<'a> Rows<'a> {
    fn push(
        &mut self,
        task: &Finished,
        a: &Attempt,
        headers: &'a PackedHeaders,
        body: Option<&[u8]>,
    ) {
        let (request_body, request_truncated) = match body {
            None => (None, false),
            Some(body) => {
                let (body, cut) = cap(body);
                (Some(body.to_vec()), cut)
            }
        };
        let (response_body, response_cut) = cap(&a.response_body);
        self.hook_id.push(task.hook_id);
        self.event_id.push(task.event_row);
        self.attempt.push(i64::from(a.attempt));
        self.redelivery.push(a.redelivery);
        self.request_headers.push(&headers.request);
        self.request_body.push(request_body);
        self.request_truncated.push(request_truncated);
        self.response_status.push(a.response_status.map(i64::from));
        self.response_headers.push(&headers.response);
        self.response_body.push(response_body.to_vec());
        self.response_truncated
            .push(a.response_truncated || response_cut);
        self.tls_verification_skipped
            .push(a.tls_verification_skipped);
        self.duration_ns
            .push(i64::try_from(a.duration.as_nanos()).unwrap_or(i64::MAX));
        self.error.push(a.error.clone());
        self.created_at.push(to_ns(a.created_at));
        self.result.push(a.outcome.as_str());
    }
}
