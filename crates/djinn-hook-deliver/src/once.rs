//! One claimed task delivered now, outside a worker: [`Deliverer::deliver_once`] (a test
//! delivery, `hook test`).

use djinn_hook_outbox::{Completion, Decision, Outcome, Task};

use crate::deliver::Deliverer;

impl Deliverer {
    /// Delivers `task` once, now, and decides without a retry policy: delivered or failed,
    /// never retried, never disabling its webhook (for a delivery someone asked for by hand,
    /// such as a test). The caller commits the completion (e.g. `Store::complete_one`); if it
    /// never does, the task's lease runs out and a worker delivers it like any crashed
    /// worker's task.
    pub fn deliver_once(&self, task: Task) -> Completion {
        let attempt = self.deliver(&task.request);
        let outcome = if attempt.is_success() {
            Outcome::Delivered
        } else {
            Outcome::Failed
        };
        Completion::new(task.task_id, task.lease, attempt, Decision::new(outcome))
    }
}
