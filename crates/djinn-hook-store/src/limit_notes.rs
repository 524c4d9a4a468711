//! Recording webhooks' adaptive delivery limits as the worker changes them, on SQLite.

use djinn_hook_outbox::LimitNote;
use rusqlite::params;

use crate::backend::LimitNotes;
use crate::error::Result;
use crate::sql::to_ns;
use crate::sqlite::SqliteBackend;

impl LimitNotes for SqliteBackend {
    /// [`Store::limits_changed`](crate::Store::limits_changed) on SQLite.
    fn limits_changed(&self, notes: &[LimitNote]) -> Result<()> {
        self.write_unsynced("recording delivery limits", |tx| {
            let mut update = tx.prepare_cached(
                "UPDATE webhooks SET limit_now = ?2, limit_reason = ?3, limit_paused_until = ?4
                 WHERE id = ?1",
            )?;
            for note in notes {
                let reduced = note.reduced.as_ref();
                update.execute(params![
                    note.hook_id,
                    reduced.map(|r| r.limit),
                    reduced.map(|r| r.reason.as_str()),
                    reduced.and_then(|r| r.paused_until).map(to_ns),
                ])?;
            }
            Ok(())
        })
    }
}
