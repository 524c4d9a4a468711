//! What the end-to-end benches share: a fresh database and key file for one run of the built
//! binary.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use djinn_hook_store::{SecretKey, Store};

/// A fresh store in `dir`, with its key in a file (mode 0600) the binary can be given:
/// the store, the database path and the key file's path.
pub(crate) fn fresh_store(dir: &tempfile::TempDir) -> (Store, PathBuf, PathBuf) {
    let db = dir.path().join("bench.db");
    let key_file = dir.path().join("bench.key");
    let key = SecretKey::generate().unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&key_file)
        .unwrap()
        .write_all(key.as_bytes())
        .unwrap();
    (Store::open(&db, key).unwrap(), db, key_file)
}
