//! Bulk recovery on PostgreSQL: SQLite's query (`recover.rs`), with the webhook's row locked so
//! two recoveries of one webhook at once (on two processes) queue each event once.

use const_format::formatcp;
use postgres::GenericClient;
use time::OffsetDateTime;

use super::PgBackend;
use super::outbox::announce;
use crate::backend::Recoveries;
use crate::error::{Error, IResult, Result};
use crate::recover::{CANDIDATES, until_ns};
use crate::sql::to_ns;
use crate::task_state::PENDING;
use crate::types::Recovery;

/// SQLite's `?n` parameters as PostgreSQL's `$n` (the query has no other `?`).
fn candidates() -> String {
    CANDIDATES.replace('?', "$")
}

impl Recoveries for PgBackend {
    fn recover_count(&self, recovery: &Recovery) -> Result<u64> {
        self.read("counting a recovery", |conn| {
            check_hook(conn, recovery.hook_id, "")?;
            let n: i64 = conn
                .query_one(
                    &format!("SELECT count(*) FROM ({}) AS c", candidates()),
                    &[
                        &recovery.hook_id,
                        &to_ns(recovery.since),
                        &until_ns(recovery),
                        &recovery.failed_only,
                    ],
                )?
                .try_get(0)?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    fn recover(&self, recovery: &Recovery, limit: usize, now: OffsetDateTime) -> Result<u64> {
        self.write("queueing a recovery", |tx| {
            // The row's lock: a second recovery of this webhook waits, then sees the marks.
            check_hook(tx, recovery.hook_id, " FOR NO KEY UPDATE")?;
            let found: Vec<(i64, i64)> = tx
                .query(
                    &format!("{} ORDER BY d.event_id LIMIT $5", candidates()),
                    &[
                        &recovery.hook_id,
                        &to_ns(recovery.since),
                        &until_ns(recovery),
                        &recovery.failed_only,
                        &i64::try_from(limit).unwrap_or(i64::MAX),
                    ],
                )?
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect::<IResult<_>>()?;
            let now = to_ns(now);
            for &(event_row, delivery_id) in &found {
                queue(tx, recovery, event_row, delivery_id, now)?;
            }
            if !found.is_empty() {
                announce(tx)?;
            }
            Ok(found.len() as u64)
        })
    }
}

/// As on SQLite: the webhook exists and is active; `lock` is appended to the query.
fn check_hook(conn: &mut impl GenericClient, hook_id: i64, lock: &str) -> IResult<()> {
    let active: bool = conn
        .query_opt(
            &format!("SELECT active FROM webhooks WHERE id = $1{lock}"),
            &[&hook_id],
        )?
        .ok_or(Error::WebhookNotFound { id: hook_id })?
        .try_get(0)?;
    if !active {
        return Err(Error::WebhookInactive { id: hook_id }.into());
    }
    Ok(())
}

/// As on SQLite: the event's redelivery task, and its deliveries in the range marked.
fn queue(
    tx: &mut postgres::Transaction<'_>,
    recovery: &Recovery,
    event_row: i64,
    delivery_id: i64,
    now: i64,
) -> IResult<()> {
    // The event's row locked as a foreign key would: a prune cannot delete it before this task
    // is in. Pruned already, it has no delivery left to recover.
    if tx
        .query_opt(
            "SELECT 1 FROM events WHERE id = $1 FOR KEY SHARE",
            &[&event_row],
        )?
        .is_none()
    {
        return Ok(());
    }
    let body: Option<Vec<u8>> = match tx.query_opt(
        "SELECT request_body FROM deliveries WHERE id = $1 AND NOT request_truncated",
        &[&delivery_id],
    )? {
        Some(row) => row.try_get(0)?,
        None => None,
    };
    tx.execute(
        formatcp!(
            "INSERT INTO tasks (event_id, hook_id, state, next_at, redelivery, body)
             VALUES ($1, $2, {PENDING}, $3, true, $4)"
        ),
        &[&event_row, &recovery.hook_id, &now, &body],
    )?;
    tx.execute(
        "UPDATE deliveries SET recovered = true
         WHERE hook_id = $1 AND event_id = $2 AND created_at >= $3 AND created_at < $4
            AND NOT recovered",
        &[
            &recovery.hook_id,
            &event_row,
            &to_ns(recovery.since),
            &until_ns(recovery),
        ],
    )?;
    Ok(())
}
