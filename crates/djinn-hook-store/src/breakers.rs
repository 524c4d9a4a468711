//! Circuit breakers shared by every process on the file, on SQLite: the rules are
//! djinn-hook-outbox's (`BreakerOpening`, `SharedBreaker`, `ProbeTurn`), kept in the
//! `breakers` table (a row per destination open or probing).

use std::time::Duration;

use djinn_hook_outbox::{BreakerOpening, Destination, ProbeTurn, SharedBreaker};
use rusqlite::{Connection, OptionalExtension, params};
use time::OffsetDateTime;

use crate::backend::Breakers;
use crate::error::{IResult, Result};
use crate::notices::notify;
use crate::rows;
use crate::sql::{from_ns, to_ns};
use crate::sqlite::SqliteBackend;

/// The columns [`shared`] reads, in its order.
pub(crate) const BREAKER_COLUMNS: &str =
    "destination, failures, reason, open_for_ms, open_until, probe_until";

/// A `breakers` row as the outbox's type; `None` for a destination that no longer parses
/// (nothing writes one).
pub(crate) fn shared(
    destination: &str,
    failures: i64,
    reason: String,
    open_for_ms: i64,
    open_until: i64,
    probe_until: Option<i64>,
) -> Option<SharedBreaker> {
    Some(SharedBreaker {
        destination: Destination::of(destination)?,
        failures: u32::try_from(failures).unwrap_or(u32::MAX),
        reason,
        open_for: Duration::from_millis(u64::try_from(open_for_ms).unwrap_or(0)),
        until: from_ns(open_until),
        probe_until: probe_until.map(from_ns),
    })
}

/// `open_for` in whole milliseconds, as stored.
pub(crate) fn open_for_ms(opening: &BreakerOpening) -> i64 {
    i64::try_from(opening.open_for.as_millis()).unwrap_or(i64::MAX)
}

/// The breaker of `destination`, if one is open.
fn breaker_of(conn: &Connection, destination: &str) -> IResult<Option<SharedBreaker>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {BREAKER_COLUMNS} FROM breakers WHERE destination = ?1"
        ))?
        .query_row([destination], |r| rows::shared_breaker(r))
        .optional()?
        .flatten())
}

/// Queues a `breaker.open` notification for `destination` if its breaker first opened more
/// than `after` before `now` and the operator was not told of this run of openings yet.
fn notice_if_long(
    tx: &rusqlite::Transaction<'_>,
    destination: &str,
    now: OffsetDateTime,
    after: Duration,
) -> rusqlite::Result<()> {
    let since = now - after;
    let notice = tx
        .prepare_cached(
            "UPDATE breakers SET notified = 1
             WHERE destination = ?1 AND notified = 0 AND open_since <= ?2
             RETURNING reason, open_since, failures",
        )?
        .query_row(params![destination, to_ns(since)], |r| {
            rows::breaker_notice(destination, r)
        })
        .optional()?;
    let Some(notice) = notice else {
        return Ok(());
    };
    notify(tx, &notice, now)
}

impl Breakers for SqliteBackend {
    /// [`Store::breaker_opened`](crate::Store::breaker_opened) on SQLite.
    fn breaker_opened(
        &self,
        openings: &[BreakerOpening],
        notice_after: Option<Duration>,
        now: OffsetDateTime,
    ) -> Result<()> {
        self.write_unsynced("recording an open breaker", |tx| {
            // `open_since` is the first opening's: a reopening keeps it.
            let mut first = tx.prepare_cached(&format!(
                "INSERT INTO breakers ({BREAKER_COLUMNS}, open_since)
                 VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6)
                 ON CONFLICT (destination) DO NOTHING"
            ))?;
            let mut again = tx.prepare_cached(&format!(
                "INSERT INTO breakers ({BREAKER_COLUMNS}, open_since)
                 VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6)
                 ON CONFLICT (destination) DO UPDATE SET failures = excluded.failures,
                    reason = excluded.reason, open_for_ms = excluded.open_for_ms,
                    open_until = excluded.open_until, probe_until = NULL,
                    open_since = COALESCE(breakers.open_since, excluded.open_since)"
            ))?;
            for o in openings {
                let statement = if o.after_probe {
                    &mut again
                } else {
                    &mut first
                };
                statement.execute(params![
                    o.destination.as_str(),
                    o.failures,
                    o.reason,
                    open_for_ms(o),
                    to_ns(o.until),
                    to_ns(now)
                ])?;
                if let (true, Some(after)) = (o.after_probe, notice_after) {
                    notice_if_long(tx, o.destination.as_str(), now, after)?;
                }
            }
            Ok(())
        })
    }

    /// [`Store::open_breakers`](crate::Store::open_breakers) on SQLite.
    fn open_breakers(&self) -> Result<Vec<SharedBreaker>> {
        self.read("reading the open breakers", |conn| {
            let rows = conn
                .prepare_cached(&format!(
                    "SELECT {BREAKER_COLUMNS} FROM breakers ORDER BY destination"
                ))?
                .query_map([], |r| rows::shared_breaker(r))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows.into_iter().flatten().collect())
        })
    }

    /// [`Store::take_probe`](crate::Store::take_probe) on SQLite: the update and the read
    /// that follows it in one write transaction, so two processes never both get it.
    fn take_probe(
        &self,
        destination: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<ProbeTurn> {
        self.write_unsynced("taking a breaker's probe", |tx| {
            let taken = tx
                .prepare_cached(
                    "UPDATE breakers SET probe_until = ?3
                     WHERE destination = ?1 AND open_until <= ?2
                        AND (probe_until IS NULL OR probe_until <= ?2)",
                )?
                .execute(params![destination, to_ns(now), to_ns(until)])?;
            if taken > 0 {
                return Ok(ProbeTurn::Granted);
            }
            Ok(breaker_of(tx, destination)?.map_or(ProbeTurn::Closed, ProbeTurn::Held))
        })
    }

    /// Deletes the breakers whose open period ended before `before` with no probe out since:
    /// no process had a task for their destination.
    fn clear_forgotten_breakers(&self, before: OffsetDateTime) -> Result<u64> {
        self.write_unsynced("clearing forgotten breakers", |tx| {
            let deleted = tx
                .prepare_cached(
                    "DELETE FROM breakers WHERE open_until < ?1
                        AND (probe_until IS NULL OR probe_until < ?1)",
                )?
                .execute([to_ns(before)])?;
            Ok(u64::try_from(deleted).unwrap_or(u64::MAX))
        })
    }
}
