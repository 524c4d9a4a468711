//! One claimed task delivered now, outside a worker: [`Deliverer::deliver_once`] (a test
//! delivery, `hook test`).

use djinn_hook_outbox::{Completion, Decision, Outbox, OutboxError, Outcome, Task};

use crate::deliver::Deliverer;

impl Deliverer {
    /// Delivers `task` once, now, and commits the attempt through `outbox`: the task is
    /// delivered or failed, never retried, and never disables its webhook (for a delivery
    /// someone asked for by hand, such as a test). Returns the committed completion.
    ///
    /// Nothing is retried on the outbox's error either: the task's lease then runs out and a
    /// worker delivers it like any crashed worker's task.
    pub fn deliver_once(
        &self,
        outbox: &impl Outbox,
        task: Task,
    ) -> Result<Completion, OutboxError> {
        let attempt = self.deliver(&task.request);
        let outcome = if attempt.is_success() {
            Outcome::Delivered
        } else {
            Outcome::Failed
        };
        let done = Completion {
            task_id: task.task_id,
            lease: task.lease,
            attempt,
            decision: Decision {
                outcome,
                disable_hook: None,
            },
        };
        outbox.complete(std::slice::from_ref(&done))?;
        Ok(done)
    }
}
