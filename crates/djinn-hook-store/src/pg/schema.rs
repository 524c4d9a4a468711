//! PostgreSQL schema migrations, versioned in the `schema_version` table, under an advisory lock.

use postgres::Client;

use crate::error::Error;

/// The migrations in order; migration `i` takes the schema to version `i + 1`.
/// Never edit one that has shipped: add a new one. (The numbering is the
/// PostgreSQL schema's own: its version 1 holds what SQLite's 1-3 hold, its 2
/// SQLite's 4, its 3 SQLite's 5, its 4 SQLite's 6, its 5 SQLite's 7, its 6 to 8 SQLite's 8
/// to 10; its 11 to 14 (a foreign key fewer, leases kept apart, event ids that carry their
/// rows, packed payloads and headers) have no SQLite counterpart.)
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_isolation.sql"),
    include_str!("migrations/0003_secret_rotation.sql"),
    include_str!("migrations/0004_attempt_result.sql"),
    include_str!("migrations/0005_process_liveness.sql"),
    include_str!("migrations/0006_adaptive_limit.sql"),
    include_str!("migrations/0007_breakers.sql"),
    include_str!("migrations/0008_idempotency_keys.sql"),
    include_str!("migrations/0009_recovery_headers.sql"),
    include_str!("migrations/0010_traces_notifications.sql"),
    include_str!("migrations/0011_no_task_event_key.sql"),
    include_str!("migrations/0012_leases_apart.sql"),
    include_str!("migrations/0013_event_ids_carry_rows.sql"),
    include_str!("migrations/0014_packed_payloads.sql"),
];

/// The PostgreSQL schema version this build writes.
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The advisory lock every migration step holds ("djinnhks"): two processes
/// starting at once on a fresh database migrate it once, the second waiting
/// for the first and then finding nothing to do.
const LOCK: i64 = 0x646a_696e_6e68_6b73;

/// Brings the schema up to [`SCHEMA_VERSION`], each step in its own
/// transaction (DDL is transactional: a failed step leaves the previous
/// version). A database from a newer build is refused.
pub(crate) fn migrate(client: &mut Client) -> Result<(), Error> {
    loop {
        let mut tx = client.transaction().map_err(reading)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK])
            .map_err(reading)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL);
             INSERT INTO schema_version SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM schema_version);",
        )
        .map_err(reading)?;
        let found: i64 = tx
            .query_one("SELECT version FROM schema_version", &[])
            .map_err(reading)?
            .try_get(0)
            .map_err(reading)?;
        if found > SCHEMA_VERSION {
            return Err(Error::NewerSchema {
                found,
                supported: SCHEMA_VERSION,
            });
        }
        if found == SCHEMA_VERSION {
            tx.commit().map_err(reading)?;
            return Ok(());
        }
        let next = found + 1;
        tx.batch_execute(MIGRATIONS[found as usize])
            .and_then(|()| tx.execute("UPDATE schema_version SET version = $1", &[&next]))
            .and_then(|_| tx.commit())
            .map_err(|source| Error::Migration {
                version: next,
                source: source.into(),
            })?;
    }
}

fn reading(source: postgres::Error) -> Error {
    Error::Database {
        operation: "reading the schema version",
        source: source.into(),
    }
}
