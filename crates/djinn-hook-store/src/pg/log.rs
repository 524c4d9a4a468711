//! The delivery log on PostgreSQL: queries and pruning.

use std::collections::HashMap;

use const_format::formatcp;
use postgres::types::ToSql;
use postgres::{Client, Row};
use time::OffsetDateTime;

use super::PgBackend;
use super::event_ids::EventIds;
use super::packed::Packed;
use crate::backend::DeliveryLog;
use crate::delivery_query::{Bind, Dialect, FAILED_DELIVERY, PageQuery};
use crate::error::{IResult, Result};
use crate::outbox::MAX_BODY;
use crate::pruning::{self, PRUNE_BATCH};
use crate::rows;
use crate::sql::{headers_from_json, to_ns};
use crate::task_state::PENDING;
use crate::types::{Delivery, DeliveryFilter, LastResponse, Page, Paged, Pruned, SuccessRate};

// Rows written since schema 14 hold their headers and payload packed (packed.rs): the plain
// columns read as empty and `delivery` fills them in from the last three.
const SELECT_DELIVERY: &str = "SELECT d.id, d.hook_id, e.uuid, e.event, d.attempt, d.redelivery,
        e.test, COALESCE(d.request_headers, '[]'),
        substring(COALESCE(d.request_body, e.payload, ''::bytea) FROM 1 FOR 65536),
        d.request_truncated
            OR COALESCE(octet_length(COALESCE(d.request_body, e.payload)) > 65536, false),
        d.response_status, COALESCE(d.response_headers, '[]'), d.response_body,
        d.response_truncated, d.tls_verification_skipped, d.duration_ns, d.error, d.created_at,
        d.result, d.request_headers_packed, d.response_headers_packed,
        CASE WHEN d.request_body IS NULL THEN e.payload_packed END
    FROM deliveries d JOIN events e ON e.id = d.event_id";

// The SQL above spells out MAX_BODY.
const _: () = assert!(crate::outbox::MAX_BODY == 65536);

/// A logged attempt from `SELECT_DELIVERY`'s columns.
fn delivery(r: &Row) -> IResult<Delivery> {
    let mut delivery = rows::delivery(r)?;
    let headers = |packed: &[u8]| headers_from_json(&Packed::Headers.unpack_text(packed)?);
    if let Some(packed) = r.try_get::<_, Option<&[u8]>>(19)? {
        delivery.request_headers = headers(packed)?;
    }
    if let Some(packed) = r.try_get::<_, Option<&[u8]>>(20)? {
        delivery.response_headers = headers(packed)?;
    }
    if let Some(packed) = r.try_get::<_, Option<&[u8]>>(21)? {
        let mut payload = Packed::Payload.unpack(packed)?;
        delivery.request_truncated |= payload.len() > MAX_BODY;
        payload.truncate(MAX_BODY);
        delivery.request_body = payload;
    }
    Ok(delivery)
}

impl DeliveryLog for PgBackend {
    fn deliveries(&self, filter: DeliveryFilter, page: Page) -> Result<Paged<Delivery>> {
        self.read("listing deliveries", |conn| {
            let event_row = match filter.event_id {
                Some(id) => EventIds::load(conn)?.row_of(id),
                None => None,
            };
            let query = PageQuery::new(
                SELECT_DELIVERY,
                &filter,
                page,
                Dialect::Postgres { event_row },
            );
            let params: Vec<&(dyn ToSql + Sync)> = query
                .binds
                .iter()
                .map(|bind| match bind {
                    Bind::Int(n) => n as &(dyn ToSql + Sync),
                    Bind::Uuid(uuid) => uuid,
                    Bind::Bool(flag) => flag,
                })
                .collect();
            let items = conn
                .query(&query.sql, &params)?
                .iter()
                .map(delivery)
                .collect::<IResult<Vec<_>>>()?;
            Ok(query.paged(items))
        })
    }

    fn delivery(&self, id: i64) -> Result<Option<Delivery>> {
        self.read("reading a delivery", |conn| {
            conn.query_opt(&format!("{SELECT_DELIVERY} WHERE d.id = $1"), &[&id])?
                .as_ref()
                .map(delivery)
                .transpose()
        })
    }

    fn last_responses(&self, hook_ids: &[i64]) -> Result<HashMap<i64, LastResponse>> {
        self.read("reading last responses", |conn| {
            conn.query(
                "SELECT d.hook_id, d.id, d.response_status, d.duration_ns, d.error, d.created_at
                 FROM unnest($1::bigint[]) AS h (id)
                 JOIN LATERAL (SELECT * FROM deliveries WHERE hook_id = h.id
                    ORDER BY id DESC LIMIT 1) d ON true",
                &[&hook_ids],
            )?
            .iter()
            .map(rows::last_response)
            .collect()
        })
    }

    fn success_rates(
        &self,
        hook_ids: &[i64],
        since: OffsetDateTime,
    ) -> Result<HashMap<i64, SuccessRate>> {
        self.read("reading success rates", |conn| {
            let rows = conn.query(
                &format!(
                    "SELECT d.hook_id, count(*), count(*) FILTER (WHERE NOT {FAILED_DELIVERY})
                     FROM deliveries d
                     WHERE d.hook_id = ANY($1) AND d.created_at >= $2
                     GROUP BY d.hook_id"
                ),
                &[&hook_ids, &to_ns(since)],
            )?;
            rows.iter().map(rows::success_rate).collect()
        })
    }

    /// As SQLite's `prune_before`: deliveries, then events with nothing
    /// pending and no delivery left, by id, [`PRUNE_BATCH`] rows per transaction.
    fn prune_before(
        &self,
        cutoff: OffsetDateTime,
        progress: &mut dyn FnMut(&Pruned),
    ) -> Result<Pruned> {
        let cutoff = to_ns(cutoff);
        let batch = PRUNE_BATCH as i64;
        let deliveries_end = self.read("pruning deliveries", |conn| {
            first_at_or_after(conn, "deliveries", cutoff)
        })?;
        let events_end = self.read("pruning events", |conn| {
            first_at_or_after(conn, "events", cutoff)
        })?;
        let deliveries = || {
            self.write("pruning deliveries", |tx| {
                let n = tx.execute(
                    "DELETE FROM deliveries WHERE id IN
                        (SELECT id FROM deliveries WHERE id < $1 ORDER BY id LIMIT $2)",
                    &[&deliveries_end, &batch],
                )?;
                Ok(usize::try_from(n).unwrap_or(usize::MAX))
            })
        };
        let events = |after: i64| {
            self.write("pruning events", |tx| {
                let ids: Vec<i64> = tx
                    .query(
                        formatcp!(
                            "DELETE FROM events WHERE id IN (
                            SELECT e.id FROM events e
                            WHERE e.id > $1 AND e.id < $2
                                AND NOT EXISTS (SELECT 1 FROM tasks t
                                    JOIN webhooks w ON w.id = t.hook_id
                                    WHERE t.event_id = e.id AND t.state = {PENDING})
                                AND NOT EXISTS (SELECT 1 FROM deliveries d
                                    WHERE d.event_id = e.id)
                            ORDER BY e.id LIMIT $3)
                         RETURNING id"
                        ),
                        &[&after, &events_end, &batch],
                    )?
                    .iter()
                    .map(|r| r.try_get(0))
                    .collect::<Result<_, _>>()?;
                // Their tasks (failed, a redelivery's kept, or queued for a webhook deleted at
                // that moment): no foreign key cascades them.
                tx.execute("DELETE FROM tasks WHERE event_id = ANY($1)", &[&ids])?;
                Ok((ids.len(), ids.iter().max().copied()))
            })
        };
        pruning::in_batches(deliveries, events, progress)
    }
}

/// The id of the first row of `table` created at or after `cutoff` (one past
/// the last id if none).
fn first_at_or_after(conn: &mut Client, table: &str, cutoff: i64) -> IResult<i64> {
    let sql = pruning::first_at_or_after(table);
    Ok(conn.query_one(&sql, &[&cutoff])?.try_get(0)?)
}
