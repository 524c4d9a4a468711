//! The [`Store`] handle: connections, pragmas, and namespaces.

use std::fs::OpenOptions;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params,
};
use time::OffsetDateTime;

use crate::backend::Namespaces;
use crate::error::{Error, IResult, Inner, Result};
use crate::key::{Cipher, SecretKey};
use crate::rows;
use crate::schema;
use crate::sql::to_ns;
use crate::types::Namespace;
use crate::validate;

/// How long a connection waits for another writer before giving up with
/// "database is locked". Writers hold the lock for one short transaction, so
/// under normal contention this is never reached.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The webhook store: namespaces, webhooks, the durable outbox of events and
/// delivery tasks, and the delivery log, in one SQLite file.
///
/// `Send + Sync`: share it (e.g. in an `Arc`) between threads. It holds two
/// connections, each behind a mutex: a writer, used for every write in a
/// `BEGIN IMMEDIATE` transaction, and a reader for queries (WAL lets it read
/// while the writer writes). SQLite allows one writer per file at a time anyway,
/// so one writer connection per process loses nothing; other processes (or
/// other `Store`s on the same file) wait on the busy timeout (30 s) instead of
/// failing.
#[derive(Debug)]
pub(crate) struct SqliteBackend {
    writer: Mutex<Connection>,
    reader: Option<Mutex<Connection>>,
    pub(crate) cipher: Cipher,
    path: Option<PathBuf>,
}

/// Every part of the trait, each implemented in its area's file (`hooks.rs`, `outbox.rs`, ...).
impl crate::backend::Backend for SqliteBackend {}

impl SqliteBackend {
    /// Opens (creating if missing) the database file at `path` and brings its
    /// schema up to date. `key` encrypts webhook secrets; a wrong key is only
    /// noticed when a secret is decrypted ([`Error::WrongSecretKey`]).
    ///
    /// A new file is created readable and writable by its owner only (0600), and so are its
    /// `-wal` and `-shm` files: SQLite gives them the database file's mode. An existing file
    /// keeps its mode.
    ///
    /// Every connection uses WAL, `synchronous=FULL` (a commit that returned is
    /// on disk), foreign keys and a busy timeout.
    pub(crate) fn open(path: impl AsRef<Path>, key: SecretKey) -> Result<SqliteBackend> {
        let path = path.as_ref();
        let open_err = |source: rusqlite::Error| Error::Open {
            path: path.to_owned(),
            source: source.into(),
        };
        create_private(path).map_err(|source| Error::Create {
            path: path.to_owned(),
            source,
        })?;
        let mut writer = Connection::open(path).map_err(open_err)?;
        configure(&writer, true).map_err(open_err)?;
        schema::migrate(&mut writer)?;
        let reader = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )
        .map_err(open_err)?;
        configure(&reader, false).map_err(open_err)?;
        Ok(SqliteBackend {
            writer: Mutex::new(writer),
            reader: Some(Mutex::new(reader)),
            cipher: Cipher::new(&key),
            path: Some(path.to_owned()),
        })
    }

    /// An in-memory store (one connection, gone when dropped), for tests and
    /// tries; not durable, and not shared with other `Store`s.
    pub(crate) fn open_in_memory(key: SecretKey) -> Result<SqliteBackend> {
        let open_err = |source: rusqlite::Error| Error::Open {
            path: PathBuf::from(":memory:"),
            source: source.into(),
        };
        let mut writer = Connection::open_in_memory().map_err(open_err)?;
        configure(&writer, true).map_err(open_err)?;
        schema::migrate(&mut writer)?;
        Ok(SqliteBackend {
            writer: Mutex::new(writer),
            reader: None,
            cipher: Cipher::new(&key),
            path: None,
        })
    }

    /// The database file, or `None` for an in-memory store.
    pub(crate) fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The schema version this build writes (`PRAGMA user_version`).
    pub(crate) fn schema_version() -> i64 {
        schema::SCHEMA_VERSION
    }

    /// Runs `f` in a `BEGIN IMMEDIATE` transaction on the writer: committed
    /// (durably: `synchronous=FULL`) if it returns `Ok`, rolled back otherwise.
    pub(crate) fn write<T>(
        &self,
        operation: &'static str,
        f: impl FnOnce(&Transaction<'_>) -> IResult<T>,
    ) -> Result<T> {
        let _span = crate::tracing_span::enter(operation);
        let mut conn = lock(&self.writer);
        immediate(&mut conn, f).map_err(|e| e.with(operation))
    }

    /// [`write`](Self::write), but the commit does not wait for an fsync
    /// (`synchronous=NORMAL` for this transaction only): it is atomic, and
    /// durable as soon as any later commit on this file is, but a crash (of
    /// the machine, not the process) may undo it.
    ///
    /// Only for writes whose loss is harmless: a claim lost this way is the
    /// same as a claim whose lease ran out. Why a later durable commit makes it
    /// durable too: in WAL mode a commit appends frames to the WAL file, and a
    /// `synchronous=FULL` commit fsyncs that whole file, so every frame written
    /// before it (this transaction's included) reaches the disk no later than
    /// that commit returns; a checkpoint fsyncs the WAL before copying frames
    /// into the database, whatever the setting. So nothing that depends on
    /// such a write (a completion of a claimed task) can be durable without it.
    pub(crate) fn write_unsynced<T>(
        &self,
        operation: &'static str,
        f: impl FnOnce(&Transaction<'_>) -> IResult<T>,
    ) -> Result<T> {
        let _span = crate::tracing_span::enter(operation);
        let mut conn = lock(&self.writer);
        let run = || -> IResult<T> {
            conn.prepare_cached("PRAGMA synchronous = NORMAL")?
                .raw_execute()?;
            let outcome = immediate(&mut conn, f);
            // Back to FULL whatever happened: every other write must be durable.
            conn.prepare_cached("PRAGMA synchronous = FULL")?
                .raw_execute()?;
            outcome
        };
        run().map_err(|e| e.with(operation))
    }

    /// Runs `f` on the reader (the writer for an in-memory store) inside a
    /// deferred transaction, so multi-statement reads see one snapshot.
    pub(crate) fn read<T>(
        &self,
        operation: &'static str,
        f: impl FnOnce(&Connection) -> IResult<T>,
    ) -> Result<T> {
        let _span = crate::tracing_span::enter(operation);
        let mut conn = lock(self.reader.as_ref().unwrap_or(&self.writer));
        let run = || -> IResult<T> {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
            let value = f(&tx)?;
            tx.finish()?;
            Ok(value)
        };
        run().map_err(|e| e.with(operation))
    }

    /// Whether the database can be read now, on a connection of its own (the reader and the
    /// writer stay open on a file that was removed or replaced, so they cannot tell): the file
    /// at [`path`](Self::path) is opened read-only and its `namespaces` table read.
    pub(crate) fn reachable(&self) -> Result<()> {
        const OPERATION: &str = "checking the database";
        let Some(path) = &self.path else {
            return self.read(OPERATION, |conn| {
                conn.prepare_cached("SELECT 1 FROM namespaces LIMIT 1")?
                    .exists([])?;
                Ok(())
            });
        };
        let run = || -> IResult<()> {
            let conn = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            conn.prepare("SELECT 1 FROM namespaces LIMIT 1")?
                .exists([])?;
            Ok(())
        };
        run().map_err(|e| e.with(OPERATION))
    }
}

impl Namespaces for SqliteBackend {
    fn check_reachable(&self) -> Result<()> {
        self.reachable()
    }

    /// Returns the namespace named `name` (`owner/path`), creating it and any
    /// missing ancestors (`owner/a` for `owner/a/b`) if needed.
    fn ensure_namespace(&self, name: &str, now: OffsetDateTime) -> Result<Namespace> {
        check_namespace(name)?;
        self.write("creating a namespace", |tx| {
            let now = to_ns(now);
            let mut parent: Option<i64> = None;
            for prefix in validate::namespace_lineage(name) {
                tx.prepare_cached(
                    "INSERT INTO namespaces (name, parent_id, created_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (name) DO NOTHING",
                )?
                .execute(params![prefix, parent, now])?;
                let id: i64 = tx
                    .prepare_cached("SELECT id FROM namespaces WHERE name = ?1")?
                    .query_row([&prefix], |r| r.get(0))?;
                parent = Some(id);
            }
            let id = parent.expect("a namespace has at least two segments");
            Ok(namespace_by_id(tx, id)?.expect("just inserted"))
        })
    }

    /// The namespace named `name`, if it exists.
    fn namespace(&self, name: &str) -> Result<Option<Namespace>> {
        self.read("reading a namespace", |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, name, parent_id, created_at FROM namespaces WHERE name = ?1",
            )?;
            Ok(stmt.query_row([name], |r| rows::namespace(r)).optional()?)
        })
    }

    /// Every namespace, by name.
    fn namespaces(&self) -> Result<Vec<Namespace>> {
        self.read("listing namespaces", |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, name, parent_id, created_at FROM namespaces ORDER BY name",
            )?;
            let rows = stmt.query_map([], |r| rows::namespace(r))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }
}

pub(crate) fn check_namespace(name: &str) -> Result<()> {
    validate::namespace(name).map_err(|reason| Error::InvalidNamespace {
        namespace: name.to_owned(),
        reason,
    })
}

/// The id of the namespace named `name`, or [`Error::NamespaceNotFound`].
pub(crate) fn namespace_id(conn: &Connection, name: &str) -> IResult<i64> {
    conn.prepare_cached("SELECT id FROM namespaces WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()?
        .ok_or_else(|| {
            Inner::Store(Error::NamespaceNotFound {
                namespace: name.to_owned(),
            })
        })
}

fn namespace_by_id(conn: &Connection, id: i64) -> rusqlite::Result<Option<Namespace>> {
    conn.prepare_cached("SELECT id, name, parent_id, created_at FROM namespaces WHERE id = ?1")?
        .query_row([id], |r| rows::namespace(r))
        .optional()
}

/// Creates the database file with mode 0600 when it does not exist: SQLite would create it
/// with the umask's mode (often 0644, readable by everyone), and the file holds every payload
/// and delivery. `:memory:` and `file:` URIs are left to SQLite.
fn create_private(path: &Path) -> std::io::Result<()> {
    let name = path.as_os_str().as_encoded_bytes();
    if name == b":memory:" || name.starts_with(b"file:") {
        return Ok(());
    }
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Err(e) if e.kind() != ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

fn configure(conn: &Connection, writer: bool) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(64);
    if writer {
        // Persistent in the file: set once by the writer; readers inherit it.
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        let _ = mode; // ":memory:" answers "memory"; a file answers "wal".
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    // 16 MiB of page cache (the default is 2 MiB): the indexes of a month of
    // deliveries stay in memory.
    conn.pragma_update(None, "cache_size", -16_384)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    // The bundled SQLite is built with STAT4, which re-plans (re-prepares) a
    // statement at every run when its plan could depend on a bound value, as
    // the claim's `next_at <= ?` does: a tenth of a claim's time. Nothing here
    // runs ANALYZE, so the plan would never change: keep the prepared one.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(())
}

/// Runs `f` in a `BEGIN IMMEDIATE` transaction on `conn`: committed if it
/// returns `Ok`, rolled back (when the transaction drops) otherwise.
fn immediate<T>(
    conn: &mut Connection,
    f: impl FnOnce(&Transaction<'_>) -> IResult<T>,
) -> IResult<T> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let value = f(&tx)?;
    tx.commit()?;
    Ok(value)
}

/// Locks a connection; a panic in another thread left no open transaction
/// (rusqlite rolls back on drop), so a poisoned lock is safe to reuse.
fn lock(m: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Claims;

    fn synchronous(store: &SqliteBackend) -> i64 {
        lock(&store.writer)
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn only_the_claim_commits_without_fsync() {
        let store = SqliteBackend::open_in_memory(SecretKey::from_bytes([3; 32])).unwrap();
        // 2 = FULL.
        assert_eq!(synchronous(&store), 2);
        let (claimed, _, _) = store
            .claim(
                OffsetDateTime::now_utc(),
                &djinn_hook_outbox::ClaimRequest::uncapped(10, Duration::from_secs(60)),
                0,
                None,
                &Default::default(),
            )
            .unwrap();
        assert!(claimed.tasks.is_empty());
        assert_eq!(synchronous(&store), 2);
        let seen = store
            .write_unsynced("probing", |tx| {
                Ok(tx.query_row("PRAGMA synchronous", [], |r| r.get::<_, i64>(0))?)
            })
            .unwrap();
        // 1 = NORMAL, inside the unsynced transaction only; FULL again after a failed one.
        assert_eq!(seen, 1);
        let failed = store.write_unsynced("failing", |tx| {
            tx.execute("INSERT INTO no_such_table VALUES (1)", [])?;
            Ok(())
        });
        assert!(failed.is_err());
        assert_eq!(synchronous(&store), 2);
    }
}
