//! Which process holds a claim, and whether it still runs: a [`ProcessId`] per registered
//! process (`Store::register_process`), carried by every claim it makes, and the sign of life
//! each backend can see ([`Liveness`]): on SQLite a lock on a file of the process's own
//! (`lock_file.rs`), on PostgreSQL a session-level advisory lock (`pg/process.rs`). The kernel
//! or the server drops either when the process dies, so another process takes back the dead
//! one's claims at once instead of waiting for their leases to run out.

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use crate::lock_file::LockFile;
#[cfg(feature = "postgres")]
use crate::pg::SessionKeeper;

/// How often a claim looks for dead processes to take claims back from (at most): a death is
/// noticed within this, plus the claiming worker's poll interval.
pub(crate) const LOOK_EVERY: Duration = Duration::from_secs(1);

/// A process's identity in the store: random (63 bits), never reused. Shown as 16 hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProcessId(i64);

impl ProcessId {
    /// A fresh identity.
    pub(crate) fn random() -> ProcessId {
        let bytes = uuid::Uuid::new_v4().into_bytes();
        let high = u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes")) >> 1;
        ProcessId(i64::try_from(high).expect("63 bits fit"))
    }

    /// The identity as stored (the `processes.id` and `tasks.holder` columns).
    pub fn as_i64(self) -> i64 {
        self.0
    }

    pub(crate) fn from_i64(id: i64) -> ProcessId {
        ProcessId(id)
    }
}

impl fmt::Display for ProcessId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// A registered process, as the `processes` table keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProcessInfo {
    /// Its identity.
    pub id: ProcessId,
    /// Its operating-system process id.
    pub pid: u32,
    /// The machine it runs on (its host name; empty if unknown).
    pub host: String,
    /// When it registered.
    pub started_at: OffsetDateTime,
}

impl ProcessInfo {
    /// This process, about to register as `id` at `now` (the store's clock).
    pub(crate) fn this(id: ProcessId, now: OffsetDateTime) -> ProcessInfo {
        ProcessInfo {
            id,
            pid: std::process::id(),
            host: host_name(),
            started_at: now,
        }
    }
}

/// Claims taken back from a process found dead: its tasks were due again at once.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TakenBack {
    /// The dead process.
    pub process: ProcessInfo,
    /// How many of its claimed tasks came back (0: it held none when it died).
    pub tasks: u64,
}

/// What a registered store tells of its looks for dead processes
/// ([`Store::register_process`](crate::Store::register_process)).
#[derive(Debug)]
#[non_exhaustive]
pub enum LivenessEvent<'a> {
    /// Claims were taken back from a process found dead.
    TakenBack(&'a TakenBack),
    /// A claim's look for dead processes failed; the claim went on (a dead process's claims
    /// then come back at the next look, or when their leases run out).
    LookFailed(&'a crate::Error),
}

/// What a registered process shows of itself, so the others can tell it runs.
pub(crate) enum Liveness {
    /// SQLite: the lock on `<db>.procs/<id>.lock`.
    File(LockFile),
    /// PostgreSQL: the connection that holds the process's advisory lock, and its keeper.
    #[cfg(feature = "postgres")]
    Session(std::sync::Arc<SessionKeeper>),
    /// An in-memory SQLite store: no other process can share it.
    Alone,
}

/// This process as registered in one store.
pub(crate) struct Process {
    pub(crate) info: ProcessInfo,
    pub(crate) liveness: Liveness,
    /// Told of every take-back and failed look (for a log line).
    pub(crate) report: Box<dyn Fn(LivenessEvent<'_>) + Send + Sync>,
    /// When a claim last looked for dead processes.
    pub(crate) last_look: Mutex<Option<Instant>>,
}

impl Drop for Process {
    fn drop(&mut self) {
        #[cfg(feature = "postgres")]
        if let Liveness::Session(keeper) = &self.liveness {
            keeper.stop();
        }
    }
}

impl fmt::Debug for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Process")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl Process {
    /// Whether a claim should look for dead processes now (and, if so, notes that it does).
    pub(crate) fn look_due(&self, now: Instant) -> bool {
        let mut last = self
            .last_look
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.is_some_and(|at| now.duration_since(at) < LOOK_EVERY) {
            return false;
        }
        *last = Some(now);
        true
    }
}

/// This machine's host name, for the `processes` table (shown when a process is found dead).
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::ProcessId;

    #[test]
    fn identities_are_positive_and_shown_as_16_hex_digits() {
        for _ in 0..100 {
            let id = ProcessId::random();
            assert!(id.as_i64() >= 0);
            let shown = id.to_string();
            assert_eq!(shown.len(), 16, "{shown}");
            assert_eq!(i64::from_str_radix(&shown, 16).unwrap(), id.as_i64());
        }
        assert_ne!(ProcessId::random(), ProcessId::random());
    }
}
