//! SQLite's sign of life: each registered process holds an exclusive lock (`flock`, through
//! std's `File::try_lock`) on a file of its own beside the database, `<db>.procs/<id>.lock`.
//! The kernel drops the lock when the process dies, however it dies, so another process on the
//! same machine that can take the lock knows the holder is gone. A process is never seen dead
//! while it runs: its file is locked before it is given its final name (and before the process
//! is registered), and a file is removed only by whoever holds its lock.

use std::ffi::OsString;
use std::fs::{self, DirBuilder, File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::liveness::ProcessId;

/// How old a half-made lock file (`.lock.new`, a process died while registering) must be before
/// it is removed: older than any registration takes.
const HALF_MADE_AGE: Duration = Duration::from_secs(60);

/// The folder of the lock files of the processes using the database at `db`.
pub(crate) fn dir_of(db: &Path) -> PathBuf {
    let mut name = OsString::from(db.as_os_str());
    name.push(".procs");
    PathBuf::from(name)
}

/// A lock file, locked by this process.
#[derive(Debug)]
pub(crate) struct LockFile {
    path: PathBuf,
    // Holds the lock while open.
    _file: File,
}

/// What a look at another process's lock file found.
#[derive(Debug)]
pub(crate) enum Probe {
    /// Its lock is held: the process runs.
    Alive,
    /// Its lock was free (now held by the caller until the lock file is dropped or removed), or
    /// it has no file: the process is gone.
    Dead(Option<LockFile>),
}

impl LockFile {
    /// Creates and locks the lock file of process `id` in `dir` (made, 0700, if missing).
    pub(crate) fn create(dir: &Path, id: ProcessId) -> io::Result<LockFile> {
        let mut builder = DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir)?;
        let path = path_of(dir, id);
        let mut half_made = path.clone().into_os_string();
        half_made.push(".new");
        let half_made = PathBuf::from(half_made);
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(&half_made)?;
        file.try_lock().map_err(io::Error::from)?;
        // Only now under the name others look for: a file found by that name is locked by its
        // process, or the process is gone.
        fs::rename(&half_made, &path)?;
        Ok(LockFile { path, _file: file })
    }

    /// Removes the file (the lock held until then, so no one else removes it meanwhile, and
    /// until this is dropped).
    pub(crate) fn remove_file(&self) {
        let _ = fs::remove_file(&self.path);
    }

    /// Removes the file and lets go of the lock.
    pub(crate) fn remove(self) {
        self.remove_file();
    }
}

/// Whether process `id`, whose lock file is in `dir`, still runs.
pub(crate) fn probe(dir: &Path, id: ProcessId) -> io::Result<Probe> {
    let path = path_of(dir, id);
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Probe::Dead(None)),
        Err(e) => return Err(e),
    };
    match file.try_lock() {
        Ok(()) => Ok(Probe::Dead(Some(LockFile { path, _file: file }))),
        Err(TryLockError::WouldBlock) => Ok(Probe::Alive),
        Err(TryLockError::Error(e)) => Err(e),
    }
}

/// Removes the lock files in `dir` that no running process holds (their processes died, and no
/// one has taken their claims back yet, or did without removing them), and half-made ones older
/// than a minute. Returns the identities of the dead processes whose files it removed.
pub(crate) fn clean_stale(dir: &Path) -> io::Result<Vec<ProcessId>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut removed = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(id) = name.strip_suffix(".lock").and_then(parse_id) {
            if let Probe::Dead(Some(lock)) = probe(dir, id)? {
                lock.remove();
                removed.push(id);
            }
        } else if name.ends_with(".lock.new") {
            let old = entry
                .metadata()?
                .modified()
                .ok()
                .and_then(|at| SystemTime::now().duration_since(at).ok())
                .is_some_and(|age| age > HALF_MADE_AGE);
            let file = File::open(entry.path())?;
            if old && file.try_lock().is_ok() {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
    Ok(removed)
}

fn path_of(dir: &Path, id: ProcessId) -> PathBuf {
    dir.join(format!("{id}.lock"))
}

fn parse_id(hex: &str) -> Option<ProcessId> {
    let id = i64::from_str_radix(hex, 16).ok()?;
    (hex.len() == 16).then_some(ProcessId::from_i64(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_alive_a_dropped_one_dead_and_cleaned() {
        let dir = tempfile::tempdir().unwrap();
        let procs = dir_of(&dir.path().join("hooks.db"));
        let (a, b) = (ProcessId::random(), ProcessId::random());
        let held = LockFile::create(&procs, a).unwrap();
        let dropped = LockFile::create(&procs, b).unwrap();
        drop(dropped);
        assert!(matches!(probe(&procs, a).unwrap(), Probe::Alive));
        assert!(matches!(probe(&procs, b).unwrap(), Probe::Dead(Some(_))));
        assert!(matches!(
            probe(&procs, ProcessId::random()).unwrap(),
            Probe::Dead(None)
        ));
        assert_eq!(clean_stale(&procs).unwrap(), vec![b]);
        assert!(matches!(probe(&procs, b).unwrap(), Probe::Dead(None)));
        assert!(matches!(probe(&procs, a).unwrap(), Probe::Alive));
        held.remove();
        assert!(matches!(probe(&procs, a).unwrap(), Probe::Dead(None)));
    }
}
