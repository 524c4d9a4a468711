//! Putting off every due task of a webhook at once (its receiver's breaker is open, or it is
//! paused), on SQLite.

use const_format::formatcp;
use djinn_hook_outbox::Deferral;
use rusqlite::params;
use time::OffsetDateTime;

use crate::backend::Deferrals;
use crate::error::Result;
use crate::sql::to_ns;
use crate::sqlite::SqliteBackend;
use crate::task_state::PENDING;

impl Deferrals for SqliteBackend {
    /// [`Store::defer`](crate::Store::defer) on SQLite.
    fn defer(&self, now: OffsetDateTime, deferrals: &[Deferral]) -> Result<usize> {
        self.write_unsynced("putting webhooks' tasks off", |tx| {
            let mut update = tx.prepare_cached(formatcp!(
                "UPDATE tasks SET next_at = ?2, lease = NULL
                 WHERE hook_id = ?1 AND state = {PENDING} AND next_at < ?2
                    AND (lease IS NULL OR next_at <= ?3)"
            ))?;
            let mut n = 0;
            for d in deferrals {
                n += update.execute(params![d.hook_id, to_ns(d.until), to_ns(now)])?;
            }
            Ok(n)
        })
    }
}
