//! What the end-to-end benches share: a fresh database and key file for one run of the built
//! binary, and that run.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

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

/// Spawns `djinn-hooks worker --allow-private-network --concurrency <threads>` (plus `extra`)
/// on `db`, output discarded. The binary is `DJINN_BENCH_BIN` if set (another build, to compare
/// the two in one run), else this one; `DJINN_BENCH_WRAP` (say, `strace -f -c -o /tmp/trace`)
/// runs it under that command.
pub(crate) fn spawn_worker(db: &Path, key_file: &Path, threads: usize, extra: &[&str]) -> Child {
    let wrap = std::env::var("DJINN_BENCH_WRAP").unwrap_or_default();
    let mut words = wrap.split_whitespace();
    let binary = std::env::var("DJINN_BENCH_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_djinn-hooks").to_owned());
    let mut command = match words.next() {
        Some(program) => {
            let mut command = Command::new(program);
            command.args(words).arg(&binary);
            command
        }
        None => Command::new(&binary),
    };
    command
        .arg("--db")
        .arg(db)
        .arg("--key-file")
        .arg(key_file)
        .args(["worker", "--allow-private-network", "--concurrency"])
        .arg(threads.to_string())
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn djinn-hooks worker")
}
