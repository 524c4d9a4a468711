//! The `processes` table and the claims its processes hold, on SQLite: registering a process,
//! taking back the claims of dead ones, handing back this one's own. Whether a process runs is
//! `lock_file.rs`'s to tell; the public rules are on the public `Store` (`dispatch.rs`).

use const_format::formatcp;
use djinn_hook_outbox::Release;
use rusqlite::params;
use time::OffsetDateTime;

use crate::backend::Processes;
use crate::error::Result;
use crate::liveness::{ProcessId, ProcessInfo};
use crate::rows;
use crate::sql::to_ns;
use crate::sqlite::SqliteBackend;
use crate::task_state::PENDING;

/// The live leases of one holder: pending tasks whose `next_at` (the lease's end) is still
/// ahead. No index of holders: a take-back is rare, and walks the pending tasks due later
/// (`tasks_due`), which spares every claim and completion an index write.
const HELD_BY: &str =
    formatcp!("state = {PENDING} AND next_at > ?2 AND lease IS NOT NULL AND holder = ?1");

impl SqliteBackend {
    /// Adds this process to the `processes` table.
    pub(crate) fn register_process(&self, me: &ProcessInfo) -> Result<()> {
        self.write("registering this process", |tx| {
            tx.prepare_cached(
                "INSERT INTO processes (id, pid, host, started_at) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![
                me.id.as_i64(),
                me.pid,
                me.host,
                to_ns(me.started_at)
            ])?;
            Ok(())
        })
    }

    /// Every registered process.
    pub(crate) fn processes(&self) -> Result<Vec<ProcessInfo>> {
        self.read("listing processes", |conn| {
            Ok(conn
                .prepare_cached("SELECT id, pid, host, started_at FROM processes ORDER BY id")?
                .query_map([], |r| rows::process(r))?
                .collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// Makes the tasks the `dead` processes hold due at `now` (their claims still count as
    /// attempts, as when a lease runs out: the attempt may have reached the receiver) and
    /// removes the processes; returns how many tasks each held, or `None` for one already
    /// removed (another process took its claims back first).
    pub(crate) fn take_back(
        &self,
        dead: &[ProcessId],
        now: OffsetDateTime,
    ) -> Result<Vec<Option<u64>>> {
        self.write("taking back the claims of dead processes", |tx| {
            let mut release = tx.prepare_cached(formatcp!(
                "UPDATE tasks SET lease = NULL, next_at = ?2 WHERE {HELD_BY}"
            ))?;
            let mut forget = tx.prepare_cached("DELETE FROM processes WHERE id = ?1")?;
            let mut counts = Vec::with_capacity(dead.len());
            for id in dead {
                let tasks = release.execute(params![id.as_i64(), to_ns(now)])? as u64;
                let removed = forget.execute([id.as_i64()])? > 0;
                counts.push(removed.then_some(tasks));
            }
            Ok(counts)
        })
    }
}

impl Processes for SqliteBackend {
    /// Makes every task `me` holds due at `now`, its claim still counted as an attempt (some
    /// may be under way), and removes `me` from the table; returns how many tasks.
    fn retire(&self, me: ProcessId, now: OffsetDateTime) -> Result<u64> {
        self.write("handing back this process's claims", |tx| {
            let n = tx
                .prepare_cached(formatcp!(
                    "UPDATE tasks SET lease = NULL, next_at = ?2 WHERE {HELD_BY}"
                ))?
                .execute(params![me.as_i64(), to_ns(now)])?;
            tx.prepare_cached("DELETE FROM processes WHERE id = ?1")?
                .execute([me.as_i64()])?;
            Ok(n as u64)
        })
    }

    fn release(&self, tasks: &[Release], now: OffsetDateTime) -> Result<usize> {
        self.write_unsynced("handing back claimed tasks", |tx| {
            let mut release = tx.prepare_cached(formatcp!(
                "UPDATE tasks SET lease = NULL, next_at = ?3, attempts = max(attempts - 1, 0)
                 WHERE id = ?1 AND lease = ?2 AND state = {PENDING}"
            ))?;
            let mut n = 0;
            for task in tasks {
                n += release.execute(params![task.task_id, task.lease.as_bytes(), to_ns(now)])?;
            }
            Ok(n)
        })
    }
}
