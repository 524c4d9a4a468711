//! Opening the store (database and key file), and how store errors map to exit codes.

use std::path::Path;

use djinn_hook_store::{Error, Store};

use super::{Global, Invalid};

/// Opens the database, creating it and its key file on first use.
pub(crate) fn open(global: &Global) -> anyhow::Result<Store> {
    open_at(&global.db(), global.key_file.as_deref())
}

/// Opens the database at `db` with the key from `key_file` (default `<db>.key`; required
/// for PostgreSQL): [`Store::open_with_key_file`].
pub(crate) fn open_at(db: &Path, key_file: Option<&Path>) -> anyhow::Result<Store> {
    Store::open_with_key_file(db, key_file).map_err(error)
}

/// A store error as the binary reports it: invalid input (exit 2) for
/// validation errors and malformed namespaces, a failure (exit 1) otherwise.
pub(crate) fn error(err: Error) -> anyhow::Error {
    match err {
        // The library cannot name the flag; the binary can.
        Error::KeyFileRequired => anyhow::Error::new(Invalid(
            "--key-file (or DJINN_HOOKS_KEY_FILE) is required with a PostgreSQL --db: every \
             process sharing the database must use the same key file"
                .to_owned(),
        )),
        Error::Invalid(_) | Error::InvalidNamespace { .. } => {
            anyhow::Error::new(Invalid(err.to_string()))
        }
        other => anyhow::Error::new(other),
    }
}

/// `.map_err(store::error)` for results.
pub(crate) trait StoreResult<T> {
    /// Maps the store error with [`error`].
    fn or_fail(self) -> anyhow::Result<T>;
}

impl<T> StoreResult<T> for Result<T, Error> {
    fn or_fail(self) -> anyhow::Result<T> {
        self.map_err(error)
    }
}
