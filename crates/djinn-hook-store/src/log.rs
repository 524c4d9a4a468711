//! The delivery log: queries and pruning.

use std::collections::HashMap;

use const_format::formatcp;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use time::OffsetDateTime;

use crate::backend::DeliveryLog;
use crate::delivery_query::{Bind, Dialect, FAILED_DELIVERY, PageQuery};
use crate::error::{IResult, Result};
use crate::pruning::{self, PRUNE_BATCH};
use crate::rows;
use crate::sql::to_ns;
use crate::sqlite::SqliteBackend;
use crate::task_state::PENDING;
use crate::types::{Delivery, DeliveryFilter, LastResponse, Page, Paged, Pruned, SuccessRate};

const SELECT_DELIVERY: &str = "SELECT d.id, d.hook_id, e.uuid, e.event, d.attempt, d.redelivery,
        e.test, d.request_headers, substr(COALESCE(d.request_body, e.payload), 1, 65536),
        d.request_truncated OR length(COALESCE(d.request_body, e.payload)) > 65536, d.response_status,
        d.response_headers, d.response_body, d.response_truncated, d.tls_verification_skipped,
        d.duration_ns, d.error, d.created_at, d.result
    FROM deliveries d JOIN events e ON e.id = d.event_id";

// The SQL above spells out MAX_BODY.
const _: () = assert!(crate::outbox::MAX_BODY == 65536);

impl DeliveryLog for SqliteBackend {
    /// [`Store::deliveries`](crate::Store::deliveries) on SQLite.
    fn deliveries(&self, filter: DeliveryFilter, page: Page) -> Result<Paged<Delivery>> {
        let query = PageQuery::new(SELECT_DELIVERY, &filter, page, Dialect::Sqlite);
        self.read("listing deliveries", |conn| {
            let values = query.binds.iter().map(|bind| match *bind {
                Bind::Int(n) => Value::Integer(n),
                Bind::Uuid(uuid) => Value::Blob(uuid.as_bytes().to_vec()),
                Bind::Bool(flag) => Value::Integer(i64::from(flag)),
            });
            let items = conn
                .prepare_cached(&query.sql)?
                .query_map(params_from_iter(values), |r| rows::delivery(r))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(query.paged(items))
        })
    }

    /// [`Store::delivery`](crate::Store::delivery) on SQLite.
    fn delivery(&self, id: i64) -> Result<Option<Delivery>> {
        self.read("reading a delivery", |conn| {
            Ok(conn
                .prepare_cached(&format!("{SELECT_DELIVERY} WHERE d.id = ?1"))?
                .query_row([id], |r| rows::delivery(r))
                .optional()?)
        })
    }

    /// [`Store::last_responses`](crate::Store::last_responses) on SQLite.
    fn last_responses(&self, hook_ids: &[i64]) -> Result<HashMap<i64, LastResponse>> {
        self.read("reading last responses", |conn| {
            last_responses(conn, hook_ids)
        })
    }

    /// [`Store::success_rates`](crate::Store::success_rates) on SQLite.
    fn success_rates(
        &self,
        hook_ids: &[i64],
        since: OffsetDateTime,
    ) -> Result<HashMap<i64, SuccessRate>> {
        self.read("reading success rates", |conn| {
            let ids = serde_json::to_string(hook_ids).expect("integers serialise");
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT d.hook_id, count(*), sum(CASE WHEN {FAILED_DELIVERY} THEN 0 ELSE 1 END)
                 FROM json_each(?1) j JOIN deliveries d ON d.hook_id = j.value
                 WHERE d.created_at >= ?2
                 GROUP BY d.hook_id"
            ))?;
            // By each hook's index entries, filtered on time: a row recorded out of time
            // order is still counted in the right window.
            let rows = stmt.query_map(params![ids, to_ns(since)], |r| rows::success_rate(r))?;
            Ok(rows.collect::<rusqlite::Result<HashMap<_, _>>>()?)
        })
    }

    /// Rows are found by id, not through an index on their time (which every insert would pay
    /// for): ids grow with time, so the rows to prune are those before the first one created at
    /// or after `cutoff`. A row recorded out of order goes with the next prune that passes it.
    fn prune_before(
        &self,
        cutoff: OffsetDateTime,
        progress: &mut dyn FnMut(&Pruned),
    ) -> Result<Pruned> {
        let cutoff = to_ns(cutoff);
        let deliveries_end = self.read("pruning deliveries", |conn| {
            first_at_or_after(conn, "deliveries", cutoff)
        })?;
        let events_end = self.read("pruning events", |conn| {
            first_at_or_after(conn, "events", cutoff)
        })?;
        let deliveries = || {
            self.write("pruning deliveries", |tx| {
                Ok(tx
                    .prepare_cached(
                        "DELETE FROM deliveries WHERE id IN
                            (SELECT id FROM deliveries WHERE id < ?1 ORDER BY id LIMIT ?2)",
                    )?
                    .execute(params![deliveries_end, PRUNE_BATCH as i64])?)
            })
        };
        let events = |after: i64| {
            self.write("pruning events", |tx| {
                let ids: Vec<i64> = tx
                    .prepare_cached(formatcp!(
                        "SELECT e.id FROM events e
                         WHERE e.id > ?1 AND e.id < ?2
                            AND NOT EXISTS (SELECT 1 FROM tasks t
                                WHERE t.event_id = e.id AND t.state = {PENDING})
                            AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id)
                         ORDER BY e.id LIMIT ?3"
                    ))?
                    .query_map(params![after, events_end, PRUNE_BATCH as i64], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                let mut delete = tx.prepare_cached("DELETE FROM events WHERE id = ?1")?;
                for id in &ids {
                    delete.execute([id])?;
                }
                Ok((ids.len(), ids.last().copied()))
            })
        };
        pruning::in_batches(deliveries, events, progress)
    }
}

/// The id of the first row of `table` created at or after `cutoff` (one past
/// the last id if none): a scan in id order that stops there, so its cost is
/// the number of rows about to be pruned.
fn first_at_or_after(conn: &Connection, table: &str, cutoff: i64) -> IResult<i64> {
    Ok(conn
        .prepare_cached(&pruning::first_at_or_after(table))?
        .query_row([cutoff], |r| r.get(0))?)
}

fn last_responses(conn: &Connection, hook_ids: &[i64]) -> IResult<HashMap<i64, LastResponse>> {
    let ids = serde_json::to_string(hook_ids).expect("integers serialise");
    let mut stmt = conn.prepare_cached(
        "SELECT d.hook_id, d.id, d.response_status, d.duration_ns, d.error, d.created_at
         FROM json_each(?1) j
         JOIN deliveries d ON d.id = (SELECT max(id) FROM deliveries WHERE hook_id = j.value)",
    )?;
    let rows = stmt.query_map([ids], |r| rows::last_response(r))?;
    Ok(rows.collect::<rusqlite::Result<HashMap<_, _>>>()?)
}
