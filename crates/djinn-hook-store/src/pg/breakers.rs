//! Circuit breakers shared by every process on the database, on PostgreSQL (the same rules
//! and table as SQLite's `breakers.rs`).

use djinn_hook_outbox::{BreakerOpening, ProbeTurn, SharedBreaker};
use postgres::types::Type;
use time::OffsetDateTime;

use crate::backend::Breakers;
use crate::breakers::{BREAKER_COLUMNS, open_for_ms};
use crate::rows;
use std::time::Duration;

use postgres::Transaction;

use super::notices::notify;
use crate::error::{IResult, Result};
use crate::pg::PgBackend;
use crate::sql::to_ns;

/// Queues a `breaker.open` notification for `destination` if its breaker first opened more
/// than `after` before `now` and the operator was not told of this run of openings yet.
fn notice_if_long(
    tx: &mut Transaction<'_>,
    destination: &str,
    now: OffsetDateTime,
    after: Duration,
) -> IResult<()> {
    let row = tx.query_opt(
        "UPDATE breakers SET notified = true
         WHERE destination = $1 AND NOT notified AND open_since <= $2
         RETURNING reason, open_since, failures",
        &[&destination, &to_ns(now - after)],
    )?;
    let Some(row) = row else {
        return Ok(());
    };
    let notice = rows::breaker_notice(destination, &row)?;
    notify(tx, &notice, now)
}

impl Breakers for PgBackend {
    /// [`Store::breaker_opened`](crate::Store::breaker_opened) on PostgreSQL, the rows in key
    /// order (so two writers never wait on each other in a circle).
    fn breaker_opened(
        &self,
        openings: &[BreakerOpening],
        notice_after: Option<Duration>,
        now: OffsetDateTime,
    ) -> Result<()> {
        let mut openings: Vec<&BreakerOpening> = openings.iter().collect();
        openings.sort_by(|a, b| a.destination.cmp(&b.destination));
        self.claim_write("recording an open breaker", |tx| {
            for o in &openings {
                // `open_since` is the first opening's: a reopening keeps it.
                let on_conflict = if o.after_probe {
                    "DO UPDATE SET failures = excluded.failures, reason = excluded.reason,
                        open_for_ms = excluded.open_for_ms, open_until = excluded.open_until,
                        probe_until = NULL,
                        open_since = COALESCE(breakers.open_since, excluded.open_since)"
                } else {
                    "DO NOTHING"
                };
                tx.query_typed(
                    &format!(
                        "INSERT INTO breakers ({BREAKER_COLUMNS}, open_since)
                         VALUES ($1, $2, $3, $4, $5, NULL, $6)
                         ON CONFLICT (destination) {on_conflict}"
                    ),
                    &[
                        (&o.destination.as_str(), Type::TEXT),
                        (&i64::from(o.failures), Type::INT8),
                        (&o.reason, Type::TEXT),
                        (&open_for_ms(o), Type::INT8),
                        (&to_ns(o.until), Type::INT8),
                        (&to_ns(now), Type::INT8),
                    ],
                )?;
                if let (true, Some(after)) = (o.after_probe, notice_after) {
                    notice_if_long(tx, o.destination.as_str(), now, after)?;
                }
            }
            Ok(())
        })
    }

    /// [`Store::open_breakers`](crate::Store::open_breakers) on PostgreSQL.
    fn open_breakers(&self) -> Result<Vec<SharedBreaker>> {
        self.read("reading the open breakers", |conn| {
            let rows = conn.query_typed(
                &format!("SELECT {BREAKER_COLUMNS} FROM breakers ORDER BY destination"),
                &[],
            )?;
            rows.iter()
                .map(rows::shared_breaker)
                .filter_map(Result::transpose)
                .collect()
        })
    }

    /// [`Store::take_probe`](crate::Store::take_probe) on PostgreSQL: one conditional update
    /// (a second taker waits on the row's lock, then finds the condition false), and if it
    /// was not taken, a read of what holds it.
    fn take_probe(
        &self,
        destination: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<ProbeTurn> {
        let (now, until) = (to_ns(now), to_ns(until));
        self.claim_write("taking a breaker's probe", |tx| {
            let taken = tx.query_typed(
                "UPDATE breakers SET probe_until = $3
                 WHERE destination = $1 AND open_until <= $2
                    AND (probe_until IS NULL OR probe_until <= $2)
                 RETURNING destination",
                &[
                    (&destination, Type::TEXT),
                    (&now, Type::INT8),
                    (&until, Type::INT8),
                ],
            )?;
            if !taken.is_empty() {
                return Ok(ProbeTurn::Granted);
            }
            let row = tx.query_typed(
                &format!("SELECT {BREAKER_COLUMNS} FROM breakers WHERE destination = $1"),
                &[(&destination, Type::TEXT)],
            )?;
            let shared = row.first().map(rows::shared_breaker).transpose()?.flatten();
            Ok(shared.map_or(ProbeTurn::Closed, ProbeTurn::Held))
        })
    }

    /// As SQLite's: deletes the breakers whose open period ended before `before` with no probe
    /// out since.
    fn clear_forgotten_breakers(&self, before: OffsetDateTime) -> Result<u64> {
        let before = to_ns(before);
        self.claim_write("clearing forgotten breakers", |tx| {
            Ok(tx.execute(
                "DELETE FROM breakers WHERE open_until < $1
                    AND (probe_until IS NULL OR probe_until < $1)",
                &[&before],
            )?)
        })
    }
}
