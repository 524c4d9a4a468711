//! Schema migrations, versioned with `PRAGMA user_version`.

use rusqlite::{Connection, TransactionBehavior};

use crate::error::Error;

/// The migrations in order; migration `i` takes the schema to version `i + 1`.
/// Never edit one that has shipped: add a new one.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_standard_webhooks.sql"),
    include_str!("migrations/0003_test_events.sql"),
    include_str!("migrations/0004_isolation.sql"),
    include_str!("migrations/0005_secret_rotation.sql"),
    include_str!("migrations/0006_attempt_result.sql"),
    include_str!("migrations/0007_process_liveness.sql"),
    include_str!("migrations/0008_adaptive_limit.sql"),
    include_str!("migrations/0009_breakers.sql"),
    include_str!("migrations/0010_idempotency_keys.sql"),
    include_str!("migrations/0011_recovery_headers.sql"),
    include_str!("migrations/0012_traces_notifications.sql"),
];

/// The schema version this build writes.
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the schema up to [`SCHEMA_VERSION`], each step in its own
/// `BEGIN IMMEDIATE` transaction (so two processes opening a fresh file at once
/// migrate it once). A file from a newer build is refused.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), Error> {
    loop {
        let step = |conn: &mut Connection| -> rusqlite::Result<Result<bool, Error>> {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let found: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            if found > SCHEMA_VERSION {
                return Ok(Err(Error::NewerSchema {
                    found,
                    supported: SCHEMA_VERSION,
                }));
            }
            if found == SCHEMA_VERSION {
                return Ok(Ok(false));
            }
            let next = found + 1;
            let result = tx
                .execute_batch(MIGRATIONS[found as usize])
                .and_then(|()| tx.pragma_update(None, "user_version", next))
                .and_then(|()| tx.commit());
            Ok(result.map(|()| true).map_err(|source| Error::Migration {
                version: next,
                source: source.into(),
            }))
        };
        match step(conn) {
            Ok(Ok(true)) => continue,
            Ok(Ok(false)) => return Ok(()),
            Ok(Err(e)) => return Err(e),
            Err(source) => {
                return Err(Error::Database {
                    operation: "reading the schema version",
                    source: source.into(),
                });
            }
        }
    }
}
