//! The store's error type.

use std::fmt;
use std::path::PathBuf;

use crate::validate::ValidationErrors;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database file could not be opened or configured.
    #[error("cannot open database {}", path.display())]
    Open {
        /// The file that was being opened.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: DatabaseError,
    },
    /// The database file did not exist and could not be created (readable by its owner only).
    #[error("cannot create database {}", path.display())]
    Create {
        /// The file that was being created.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// A process's lock file (its sign of life to the others on a SQLite file) could not be
    /// made or looked at.
    #[error("cannot {action} process lock file in {}", dir.display())]
    LockFile {
        /// `create` or `check`.
        action: &'static str,
        /// The folder of lock files (`<db>.procs`).
        dir: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The file was written by a newer version of this program; it is never downgraded.
    #[error(
        "database schema version {found} is newer than the {supported} this build supports; upgrade djinn-hooks"
    )]
    NewerSchema {
        /// The version found in the file (`PRAGMA user_version`).
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// A schema migration failed; the file stays at the previous version.
    #[error("migration to schema version {version} failed")]
    Migration {
        /// The version being migrated to.
        version: i64,
        /// What SQLite said.
        #[source]
        source: DatabaseError,
    },
    /// A query failed.
    #[error("database error while {operation}")]
    Database {
        /// What the store was doing, e.g. `claiming due tasks`.
        operation: &'static str,
        /// What SQLite said.
        #[source]
        source: DatabaseError,
    },
    /// A webhook's fields failed validation (create or update).
    #[error("invalid webhook: {0}")]
    Invalid(ValidationErrors),
    /// A namespace name is not of the form `owner/path`.
    #[error("invalid namespace {namespace:?}: {reason}")]
    InvalidNamespace {
        /// The name given.
        namespace: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No namespace has this name.
    #[error("namespace {namespace:?} not found")]
    NamespaceNotFound {
        /// The name given.
        namespace: String,
    },
    /// No webhook has this id.
    #[error("webhook {id} not found")]
    WebhookNotFound {
        /// The id given.
        id: i64,
    },
    /// No delivery has this id.
    #[error("delivery {id} not found")]
    DeliveryNotFound {
        /// The id given.
        id: i64,
    },
    /// An event's idempotency key was used before, within its window and in the same
    /// namespace, for another event type or payload: nothing of the call was stored.
    #[error(
        "idempotency key {key:?} was already used for a different event (another type or \
         payload) in this namespace"
    )]
    IdempotencyConflict {
        /// The key.
        key: String,
        /// The event's place in the call (`accept_events`), from 0.
        index: usize,
    },
    /// An event's idempotency key is not 1 to 255 printable ASCII characters: nothing of the
    /// call was stored.
    #[error("invalid idempotency key: it {reason}")]
    InvalidIdempotencyKey {
        /// The event's place in the call (`accept_events`), from 0.
        index: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A redelivery was asked for a webhook that is not active.
    #[error("webhook {id} is not active; re-enable it before redelivering")]
    WebhookInactive {
        /// The webhook's id.
        id: i64,
    },
    /// A stored secret did not decrypt: the key is not the one it was written with
    /// (or the row is corrupt).
    #[error("cannot decrypt the secret of webhook {hook_id}: wrong secret key (or corrupt data)")]
    WrongSecretKey {
        /// The webhook whose secret failed to decrypt.
        hook_id: i64,
    },
    /// The key file could not be created, written or read.
    #[error("cannot {action} key file {}", path.display())]
    KeyFileIo {
        /// `create`, `write` or `read`.
        action: &'static str,
        /// The key file.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The key file may be read by group or others: refused, as ssh refuses such a key.
    #[error(
        "key file {path} is readable by others (mode {mode:04o}); make it private with `chmod 600 {path}`",
        path = path.display()
    )]
    KeyFileTooOpen {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A PostgreSQL database was opened without a key file: there is no file beside which to
    /// keep one, and every process sharing the database must use the same key.
    #[error(
        "a key file is required with a PostgreSQL database: every process sharing the database \
         must use the same key file"
    )]
    KeyFileRequired,
    /// The key file does not hold a 32-byte key.
    #[error(
        "key file {} holds {len} bytes, expected 32 (it is not a djinn-hooks key file, or it was damaged)",
        path.display()
    )]
    KeyFileSize {
        /// The key file.
        path: PathBuf,
        /// How many bytes it holds.
        len: usize,
    },
    /// The system random number generator failed (nonce or key generation).
    #[error("the system random number generator failed")]
    Random,
    /// A stored value is not one this build understands.
    #[error("corrupt stored value: {what}")]
    Corrupt {
        /// Which value, and why.
        what: String,
    },
    /// A database was named that this build has no backend for: a `postgres://` URL given to
    /// a build without the `postgres` feature.
    #[error(
        "{what} needs the `{feature}` feature of djinn-hook-store, which this build does not have"
    )]
    NotBuilt {
        /// What was asked for, e.g. `a PostgreSQL database`.
        what: &'static str,
        /// The cargo feature that brings it.
        feature: &'static str,
    },
    /// The PostgreSQL server could not be reached, or refused the connection.
    #[error("cannot connect to PostgreSQL at {url}")]
    Connect {
        /// The URL given, with any password replaced by `***`.
        url: String,
        /// What the client or server said.
        #[source]
        source: DatabaseError,
    },
}

/// An error from the database engine (SQLite or PostgreSQL), kept opaque so
/// that no engine's type is part of the public API.
pub struct DatabaseError(pub(crate) Engine);

/// The engine error inside a [`DatabaseError`].
#[derive(Debug)]
pub(crate) enum Engine {
    Sqlite(rusqlite::Error),
    #[cfg(feature = "postgres")]
    Postgres(postgres::Error),
    /// No pooled PostgreSQL connection became free in time.
    #[cfg(feature = "postgres")]
    Pool(r2d2::Error),
}

impl From<rusqlite::Error> for DatabaseError {
    fn from(e: rusqlite::Error) -> Self {
        DatabaseError(Engine::Sqlite(e))
    }
}

#[cfg(feature = "postgres")]
impl From<postgres::Error> for DatabaseError {
    fn from(e: postgres::Error) -> Self {
        DatabaseError(Engine::Postgres(e))
    }
}

#[cfg(feature = "postgres")]
impl From<r2d2::Error> for DatabaseError {
    fn from(e: r2d2::Error) -> Self {
        DatabaseError(Engine::Pool(e))
    }
}

impl fmt::Debug for DatabaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Engine::Sqlite(e) => fmt::Debug::fmt(e, f),
            #[cfg(feature = "postgres")]
            Engine::Postgres(e) => fmt::Debug::fmt(e, f),
            #[cfg(feature = "postgres")]
            Engine::Pool(e) => fmt::Debug::fmt(e, f),
        }
    }
}

impl fmt::Display for DatabaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Engine::Sqlite(e) => fmt::Display::fmt(e, f),
            // The client's own message is only "db error"; the server's says what failed.
            #[cfg(feature = "postgres")]
            Engine::Postgres(e) => match e.as_db_error() {
                Some(db) => fmt::Display::fmt(db, f),
                None => fmt::Display::fmt(e, f),
            },
            #[cfg(feature = "postgres")]
            Engine::Pool(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl std::error::Error for DatabaseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.0 {
            Engine::Sqlite(e) => e.source(),
            #[cfg(feature = "postgres")]
            Engine::Postgres(e) => e.source(),
            #[cfg(feature = "postgres")]
            Engine::Pool(e) => e.source(),
        }
    }
}

/// The store's internal result: either a store error or a raw SQLite error that
/// the public method wraps with what it was doing.
#[derive(Debug)]
pub(crate) enum Inner {
    Store(Error),
    Sql(rusqlite::Error),
    #[cfg(feature = "postgres")]
    Pg(DatabaseError),
}

#[cfg(feature = "postgres")]
impl From<postgres::Error> for Inner {
    fn from(e: postgres::Error) -> Self {
        Inner::Pg(e.into())
    }
}

#[cfg(feature = "postgres")]
impl From<r2d2::Error> for Inner {
    fn from(e: r2d2::Error) -> Self {
        Inner::Pg(e.into())
    }
}

impl From<rusqlite::Error> for Inner {
    fn from(e: rusqlite::Error) -> Self {
        Inner::Sql(e)
    }
}

impl From<Error> for Inner {
    fn from(e: Error) -> Self {
        Inner::Store(e)
    }
}

impl From<crate::sql::Corrupt> for Inner {
    fn from(crate::sql::Corrupt(what): crate::sql::Corrupt) -> Self {
        Inner::Store(Error::Corrupt { what })
    }
}

impl Inner {
    pub(crate) fn with(self, operation: &'static str) -> Error {
        match self {
            Inner::Store(e) => e,
            Inner::Sql(source) => Error::Database {
                operation,
                source: source.into(),
            },
            #[cfg(feature = "postgres")]
            Inner::Pg(source) => Error::Database { operation, source },
        }
    }
}

/// Result of the store's internal functions.
pub(crate) type IResult<T> = std::result::Result<T, Inner>;

/// Result of the store's public functions.
pub type Result<T, E = Error> = std::result::Result<T, E>;
