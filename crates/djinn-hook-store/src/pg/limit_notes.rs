//! Recording webhooks' adaptive delivery limits as the worker changes them, on PostgreSQL.

use djinn_hook_outbox::LimitNote;
use postgres::types::Type;

use crate::backend::LimitNotes;
use crate::error::Result;
use crate::pg::PgBackend;
use crate::sql::to_ns;

impl LimitNotes for PgBackend {
    /// [`Store::limits_changed`](crate::Store::limits_changed) on PostgreSQL: one statement,
    /// the webhooks in key order (as completions lock them).
    fn limits_changed(&self, notes: &[LimitNote]) -> Result<()> {
        let mut notes: Vec<&LimitNote> = notes.iter().collect();
        notes.sort_by_key(|note| note.hook_id);
        let ids: Vec<i64> = notes.iter().map(|n| n.hook_id).collect();
        let limits: Vec<Option<i64>> = notes
            .iter()
            .map(|n| n.reduced.as_ref().map(|r| i64::from(r.limit)))
            .collect();
        let reasons: Vec<Option<&str>> = notes
            .iter()
            .map(|n| n.reduced.as_ref().map(|r| r.reason.as_str()))
            .collect();
        let paused: Vec<Option<i64>> = notes
            .iter()
            .map(|n| n.reduced.as_ref().and_then(|r| r.paused_until).map(to_ns))
            .collect();
        self.claim_write("recording delivery limits", |tx| {
            tx.query_typed(
                "UPDATE webhooks w SET limit_now = n.limit_now, limit_reason = n.limit_reason,
                    limit_paused_until = n.paused_until
                 FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::bigint[])
                    AS n (id, limit_now, limit_reason, paused_until)
                 WHERE w.id = n.id",
                &[
                    (&ids, Type::INT8_ARRAY),
                    (&limits, Type::INT8_ARRAY),
                    (&reasons, Type::TEXT_ARRAY),
                    (&paused, Type::INT8_ARRAY),
                ],
            )?;
            Ok(())
        })
    }
}
