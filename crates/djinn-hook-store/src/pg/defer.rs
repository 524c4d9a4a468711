//! Putting off every due task of a webhook at once (its receiver's breaker is open, or it is
//! paused), on PostgreSQL.

use djinn_hook_outbox::Deferral;
use postgres::types::Type;
use time::OffsetDateTime;

use crate::backend::Deferrals;
use crate::error::Result;
use crate::pg::PgBackend;
use crate::pg::claim::not_leased;
use crate::sql::to_ns;
use crate::task_state::PENDING;

impl Deferrals for PgBackend {
    /// [`Store::defer`](crate::Store::defer) on PostgreSQL: one statement.
    fn defer(&self, now: OffsetDateTime, deferrals: &[Deferral]) -> Result<usize> {
        let ids: Vec<i64> = deferrals.iter().map(|d| d.hook_id).collect();
        let untils: Vec<i64> = deferrals.iter().map(|d| to_ns(d.until)).collect();
        let now = to_ns(now);
        self.claim_write("putting webhooks' tasks off", |tx| {
            let rows = tx.query_typed(
                &format!(
                    "WITH d AS (SELECT * FROM unnest($1::bigint[], $2::bigint[]) AS d (hook_id, until))
                     UPDATE tasks t SET next_at = d.until
                     FROM d
                     WHERE t.hook_id = d.hook_id AND t.state = {PENDING} AND t.next_at < d.until
                        AND {not_leased}
                     RETURNING t.id",
                    not_leased = not_leased!("$3")
                ),
                &[
                    (&ids, Type::INT8_ARRAY),
                    (&untils, Type::INT8_ARRAY),
                    (&now, Type::INT8),
                ],
            )?;
            Ok(rows.len())
        })
    }
}
