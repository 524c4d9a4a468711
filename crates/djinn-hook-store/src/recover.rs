//! Bulk recovery on SQLite: the events of a webhook's deliveries in a time range queued again,
//! each once (see [`Store::recover`](crate::Store::recover) for what "once" means).

use const_format::formatcp;
use djinn_hook_outbox::AttemptOutcome;
use rusqlite::{OptionalExtension, Transaction, params};
use time::OffsetDateTime;

use crate::backend::Recoveries;
use crate::error::{Error, IResult, Result};
use crate::sql::to_ns;
use crate::sqlite::SqliteBackend;
use crate::task_state::PENDING;
use crate::types::Recovery;

/// The recoverable events of `?1` (hook) in `[?2, ?3)` with `?4` (failed only): one row per
/// event, its newest unrecovered delivery in the range (whose recorded body is sent again).
/// Shared with PostgreSQL (`pg/recover.rs`), which binds the same parameters.
pub(crate) const CANDIDATES: &str = formatcp!(
    "SELECT d.event_id, max(d.id)
     FROM deliveries d JOIN events e ON e.id = d.event_id
     WHERE d.hook_id = ?1 AND d.created_at >= ?2 AND d.created_at < ?3 AND NOT d.recovered
        AND NOT e.test
        AND NOT EXISTS (SELECT 1 FROM tasks t
            WHERE t.hook_id = d.hook_id AND t.event_id = d.event_id AND t.state = {PENDING})
        AND (NOT ?4 OR (SELECT l.result FROM deliveries l
            WHERE l.hook_id = d.hook_id AND l.event_id = d.event_id
            ORDER BY l.id DESC LIMIT 1) <> '{SUCCESS}')
     GROUP BY d.event_id",
    SUCCESS = AttemptOutcome::Success.as_str()
);

impl Recoveries for SqliteBackend {
    fn recover_count(&self, recovery: &Recovery) -> Result<u64> {
        self.read("counting a recovery", |conn| {
            check_hook(conn, recovery.hook_id)?;
            let n: i64 = conn
                .prepare_cached(&format!("SELECT count(*) FROM ({CANDIDATES}) AS c"))?
                .query_row(bounds(recovery), |r| r.get(0))?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    fn recover(&self, recovery: &Recovery, limit: usize, now: OffsetDateTime) -> Result<u64> {
        self.write("queueing a recovery", |tx| {
            check_hook(tx, recovery.hook_id)?;
            let found: Vec<(i64, i64)> = tx
                .prepare_cached(&format!("{CANDIDATES} ORDER BY d.event_id LIMIT ?5"))?
                .query_map(
                    params![
                        recovery.hook_id,
                        to_ns(recovery.since),
                        until_ns(recovery),
                        recovery.failed_only,
                        i64::try_from(limit).unwrap_or(i64::MAX)
                    ],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?
                .collect::<rusqlite::Result<_>>()?;
            let now = to_ns(now);
            for &(event_row, delivery_id) in &found {
                queue(tx, recovery, event_row, delivery_id, now)?;
            }
            Ok(found.len() as u64)
        })
    }
}

/// The range's parameters `?1` to `?4`.
fn bounds(recovery: &Recovery) -> (i64, i64, i64, bool) {
    (
        recovery.hook_id,
        to_ns(recovery.since),
        until_ns(recovery),
        recovery.failed_only,
    )
}

/// The end of the range as stored: no end is the end of time.
pub(crate) fn until_ns(recovery: &Recovery) -> i64 {
    recovery.until.map_or(i64::MAX, to_ns)
}

/// The webhook exists ([`Error::WebhookNotFound`]) and is active ([`Error::WebhookInactive`]).
fn check_hook(conn: &rusqlite::Connection, hook_id: i64) -> IResult<()> {
    let active: bool = conn
        .prepare_cached("SELECT active FROM webhooks WHERE id = ?1")?
        .query_row([hook_id], |r| r.get(0))
        .optional()?
        .ok_or(Error::WebhookNotFound { id: hook_id })?;
    if !active {
        return Err(Error::WebhookInactive { id: hook_id }.into());
    }
    Ok(())
}

/// One event's redelivery task, as [`Store::redeliver`](crate::Store::redeliver) queues it
/// (the delivery's recorded body, unless none or truncated), and its deliveries in the range
/// marked recovered.
fn queue(
    tx: &Transaction<'_>,
    recovery: &Recovery,
    event_row: i64,
    delivery_id: i64,
    now: i64,
) -> IResult<()> {
    let body: Option<Vec<u8>> = tx
        .prepare_cached(
            "SELECT request_body FROM deliveries WHERE id = ?1 AND NOT request_truncated",
        )?
        .query_row([delivery_id], |r| r.get(0))
        .optional()?
        .flatten();
    tx.prepare_cached(formatcp!(
        "INSERT INTO tasks (event_id, hook_id, state, next_at, redelivery, body)
         VALUES (?1, ?2, {PENDING}, ?3, 1, ?4)"
    ))?
    .execute(params![event_row, recovery.hook_id, now, body])?;
    tx.prepare_cached(
        "UPDATE deliveries SET recovered = 1
         WHERE hook_id = ?1 AND event_id = ?2 AND created_at >= ?3 AND created_at < ?4
            AND NOT recovered",
    )?
    .execute(params![
        recovery.hook_id,
        event_row,
        to_ns(recovery.since),
        until_ns(recovery)
    ])?;
    Ok(())
}
