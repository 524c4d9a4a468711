//! [`AutoPrune`]: pruning on a schedule, for long-running processes (`serve`, `worker`), as
//! the original pruned deliveries older than 30 days by itself.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::dispatch::Store;
use crate::error::Result;
use crate::pruning::DEFAULT_RETENTION;
use crate::types::Pruned;

/// How often the stop flag is looked at while waiting for the next prune.
const STOP_CHECK: Duration = Duration::from_millis(100);

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
    /// Prunes `store` on the schedule until `stop` is set, handing each outcome to `report`
    /// (a failed prune is reported and tried again at the next turn). Blocks: run it on a
    /// thread of its own.
    pub fn run(&self, store: &Store, stop: &AtomicBool, mut report: impl FnMut(Result<Pruned>)) {
        let mut next = Instant::now() + self.every;
        while !stop.load(Ordering::SeqCst) {
            let now = Instant::now();
            if now < next {
                std::thread::sleep(STOP_CHECK.min(next - now));
                continue;
            }
            report(store.prune(self.older_than));
            next = Instant::now() + self.every;
        }
    }
}
