//! [`AutoPrune`]: pruning on a schedule, for long-running processes (`serve`, `worker`), as
//! the original pruned deliveries older than 30 days by itself.

use std::time::Duration;

use djinn_hook_outbox::Shutdown;

use crate::dispatch::Store;
use crate::error::Result;
use crate::pruning::DEFAULT_RETENTION;
use crate::types::Pruned;

/// Prunes every `every` what is older than `older_than` ([`Store::prune`]: bounded batches,
/// one transaction each, so a long prune never holds the writer for long).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AutoPrune {
    /// The age past which delivery attempts and finished events go.
    pub older_than: Duration,
    /// The time between prunes; the first runs this long after the start.
    pub every: Duration,
}

impl Default for AutoPrune {
    /// Hourly, what is older than [`DEFAULT_RETENTION`] (30 days).
    fn default() -> AutoPrune {
        AutoPrune {
            older_than: DEFAULT_RETENTION,
            every: Duration::from_secs(3600),
        }
    }
}

impl AutoPrune {
    /// Prunes `store` on the schedule until `stop` is set (returning at once then, also in
    /// the middle of a wait), handing each outcome to `report` (a failed prune is reported and
    /// tried again at the next turn). Blocks: run it on a thread of its own.
    pub fn run(&self, store: &Store, stop: &Shutdown, mut report: impl FnMut(Result<Pruned>)) {
        while !stop.wait_timeout(self.every) {
            report(store.prune(self.older_than));
        }
    }
}
