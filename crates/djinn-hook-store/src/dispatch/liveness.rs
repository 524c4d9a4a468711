//! The public [`Store`]'s process liveness (the rules are in `liveness.rs`): registering,
//! taking back the claims of dead processes, retiring, and the counts `/metrics` shows.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use super::{Database, Store};
use crate::error::{Error, Result};
use crate::liveness::{Liveness, LivenessEvent, Process, ProcessId, ProcessInfo, TakenBack};
use crate::lock_file::{self, LockFile, Probe};

/// Process liveness: a long-running process (`serve`, `worker`) registers, its claims carry its
/// identity, and its claims come back at once when it dies (`liveness.rs`).
impl Store {
    /// Registers this process as the holder of this store's claims from now on, shows the
    /// other processes that it runs for as long as it does, and takes back at once the claims
    /// of processes found dead (a restarted process takes back its dead predecessor's).
    /// `report` is told of every take-back by this store, now and at later claims, and of a
    /// claim's look that failed (the claim goes on without it).
    /// Returns this process's identity; a second call returns the same.
    ///
    /// The sign of life: on SQLite, an exclusive lock on `<db>.procs/<id>.lock` that the
    /// kernel drops when the process dies (so only processes on the same machine as the file
    /// can tell, as only they can share it); on PostgreSQL, a session-level advisory lock held
    /// by a connection of this store's own, which the server releases when the connection ends
    /// (at once for a dead process; within about 25 s for a vanished host, by TCP keepalives).
    /// The lease stays the outer bound: a process alive but cut off from the database, or
    /// stuck, still loses its claims when their leases run out.
    pub fn register_process(
        &self,
        report: impl Fn(LivenessEvent<'_>) + Send + Sync + 'static,
    ) -> Result<ProcessId> {
        // Held until this process is registered: two calls at once register it once.
        let mut slot = lock(&self.process);
        if let Some(process) = &*slot {
            return Ok(process.info.id);
        }
        let info = ProcessInfo::this(ProcessId::random(), self.now());
        let liveness = match &self.database {
            Database::Sqlite(s) => match s.path() {
                Some(db) => {
                    let dir = lock_file::dir_of(db);
                    let lock =
                        LockFile::create(&dir, info.id).map_err(|source| Error::LockFile {
                            action: "create",
                            dir,
                            source,
                        })?;
                    s.register_process(&info)?;
                    Liveness::File(lock)
                }
                None => Liveness::Alone,
            },
            #[cfg(feature = "postgres")]
            Database::Postgres(p) => Liveness::Session(p.liveness_session(&info)?),
        };
        let process = Arc::new(Process {
            info,
            liveness,
            report: Box::new(report),
            last_look: Mutex::new(Some(Instant::now())),
        });
        *slot = Some(Arc::clone(&process));
        drop(slot);
        self.take_back_from(&process)?;
        if let Some(db) = self.path() {
            // Files of processes that died while registering, or after their claims were
            // taken back: nothing refers to them.
            lock_file::clean_stale(&lock_file::dir_of(db)).map_err(|source| Error::LockFile {
                action: "check",
                dir: lock_file::dir_of(db),
                source,
            })?;
        }
        Ok(process.info.id)
    }

    /// This process's identity, if it registered ([`Store::register_process`]).
    pub fn process_id(&self) -> Option<ProcessId> {
        self.process().map(|p| p.info.id)
    }

    /// Takes back the claims of every registered process found dead (see
    /// [`Store::register_process`]): their tasks are due at once, their claims still counted
    /// as attempts (an attempt may have reached its receiver before the death, as when a lease
    /// runs out), and the processes are forgotten. Each take-back is reported to the
    /// registration's `report` and counted ([`Store::claims_taken_back`]). Nothing to
    /// do for a store that did not register. A claim does this by itself, once a second at
    /// most.
    pub fn take_back_from_dead(&self) -> Result<Vec<TakenBack>> {
        match self.process() {
            Some(process) => self.take_back_from(&process),
            None => Ok(Vec::new()),
        }
    }

    /// Hands back every claim this process holds, and ends its registration: its tasks are due
    /// at once (their claims still counted as attempts: some may be under way) and it is no
    /// longer shown as running. For a process about to exit with deliveries still in flight;
    /// a completion that comes after is recorded as stale ([`Store::stale_completions`]).
    /// Returns how many tasks were handed back (0 for a store that did not register). Dropping
    /// the store does the same.
    pub fn retire_process(&self) -> Result<u64> {
        let Some(process) = lock(&self.process).take() else {
            return Ok(0);
        };
        let now = self.now();
        let handed_back = self.backend().retire(process.info.id, now)?;
        self.at_cap.forget_all();
        match &process.liveness {
            Liveness::File(lock) => lock.remove_file(),
            #[cfg(feature = "postgres")]
            Liveness::Session(keeper) => keeper.stop(),
            Liveness::Alone => {}
        }
        Ok(handed_back)
    }

    /// Tasks this store took back from dead processes since it was opened.
    pub fn claims_taken_back(&self) -> u64 {
        self.taken_back.load(Ordering::Relaxed)
    }

    /// Attempts this store recorded after their task's lease was lost (it ran out, or was taken
    /// back from a process thought dead), since it was opened: the task may have been
    /// delivered again by another claim (at least once).
    pub fn stale_completions(&self) -> u64 {
        self.stale_completions.load(Ordering::Relaxed)
    }

    pub(super) fn process(&self) -> Option<Arc<Process>> {
        lock(&self.process).clone()
    }

    /// Takes back the claims of the processes `process` finds dead.
    pub(super) fn take_back_from(&self, process: &Process) -> Result<Vec<TakenBack>> {
        let now = self.now();
        let me = process.info.id;
        let taken = match (&self.database, &process.liveness) {
            (Database::Sqlite(s), Liveness::File(_)) => {
                let dir = lock_file::dir_of(s.path().expect("a file store has a path"));
                let mut dead = Vec::new();
                let mut locks = Vec::new();
                for other in s.processes()? {
                    if other.id == me {
                        continue;
                    }
                    let probe =
                        lock_file::probe(&dir, other.id).map_err(|source| Error::LockFile {
                            action: "check",
                            dir: dir.clone(),
                            source,
                        })?;
                    if let Probe::Dead(lock) = probe {
                        dead.push(other);
                        locks.extend(lock);
                    }
                }
                let taken = if dead.is_empty() {
                    Vec::new()
                } else {
                    let ids: Vec<ProcessId> = dead.iter().map(|p| p.id).collect();
                    let counts = s.take_back(&ids, now)?;
                    dead.into_iter()
                        .zip(counts)
                        .filter_map(|(process, tasks)| {
                            Some(TakenBack {
                                process,
                                tasks: tasks?,
                            })
                        })
                        .collect()
                };
                // Removed by their holder (this store) only once their claims are back.
                for lock in locks {
                    lock.remove_file();
                }
                taken
            }
            #[cfg(feature = "postgres")]
            (Database::Postgres(p), Liveness::Session(keeper)) => {
                // A session that broke is connected again (this process's claims may have been
                // taken back meanwhile: their completions are then stale), and for a while
                // judges no one (they may all have lost theirs).
                if keeper.may_judge() {
                    p.take_back_dead(me, now)?
                } else {
                    Vec::new()
                }
            }
            _ => Vec::new(),
        };
        if !taken.is_empty() {
            self.at_cap.forget_all();
        }
        for taken_back in &taken {
            self.taken_back
                .fetch_add(taken_back.tasks, Ordering::Relaxed);
            (process.report)(LivenessEvent::TakenBack(taken_back));
        }
        Ok(taken)
    }
}

impl Drop for Store {
    /// Ends this process's registration, if it has one ([`Store::retire_process`]); a failure
    /// is let go (the others take the claims back when they find the process gone).
    fn drop(&mut self) {
        let _ = self.retire_process();
    }
}

/// Locks a mutex whose holder may have panicked (what it guards stays consistent).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
