//! The worker's queue of claimed tasks, one queue per webhook: threads take tasks round-robin
//! across webhooks, and never more of one webhook's at once than its cap.
//!
//! A webhook at its cap keeps its queued tasks (they hold leases, not threads) while the other
//! webhooks' tasks are taken. So does a webhook *parked* because its receiver is slow and the
//! worker's budget for slow deliveries is spent, until [`HookQueues::unpark`].
//! [`HookQueues::ready`] counts only tasks that could be taken now, so a queue full of a capped
//! webhook's tasks still lets the worker claim for the others.

use std::collections::{HashMap, VecDeque};

use djinn_hook_outbox::{Destination, Task};

/// A claimed task waiting for a thread, with its destination (for the breakers).
pub(crate) struct Queued {
    pub(crate) task: Task,
    /// `None` for a URL with no destination (its delivery fails on the URL).
    pub(crate) destination: Option<Destination>,
}

#[derive(Default)]
struct HookQueue {
    tasks: VecDeque<Queued>,
    /// Its tasks taken and not yet done.
    delivering: usize,
    /// Most of its tasks taken at once.
    cap: usize,
    /// Listed in the ring.
    in_ring: bool,
    /// Held back until [`HookQueues::unpark`].
    parked: bool,
}

impl HookQueue {
    /// Tasks of it that could be taken now.
    fn ready(&self) -> usize {
        if self.delivering < self.cap && !self.parked {
            self.tasks.len()
        } else {
            0
        }
    }

    fn takeable(&self) -> bool {
        self.delivering < self.cap && !self.parked && !self.tasks.is_empty()
    }
}

/// Claimed tasks by webhook, taken round-robin under per-webhook caps.
#[derive(Default)]
pub(crate) struct HookQueues {
    hooks: HashMap<i64, HookQueue>,
    /// Webhooks with a task that may be taken, in turn (entries may be stale: checked on use).
    ring: VecDeque<i64>,
    /// Tasks queued.
    len: usize,
    /// Tasks queued of webhooks below their cap.
    ready: usize,
    /// Webhooks parked by [`pop_unless`](Self::pop_unless).
    parked: Vec<i64>,
}

impl HookQueues {
    /// Tasks queued, takeable or not.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Tasks queued whose webhooks are below their cap.
    pub(crate) fn ready(&self) -> usize {
        self.ready
    }

    /// Tasks queued behind webhooks at their cap: they wait for a slot of their own webhook,
    /// and take no thread meanwhile.
    pub(crate) fn waiting_for_cap(&self) -> usize {
        self.len - self.ready
    }

    /// Queues a task; its webhook may have `cap` of its tasks taken at once.
    pub(crate) fn push(&mut self, queued: Queued, cap: usize) {
        let hook_id = queued.task.request.hook_id;
        self.update(hook_id, |hook| {
            hook.cap = cap;
            hook.tasks.push_back(queued);
        });
        self.len += 1;
    }

    /// Sets how many of `hook_id`'s tasks may be taken at once (its adaptive limit: 0 while it
    /// is paused).
    pub(crate) fn set_cap(&mut self, hook_id: i64, cap: usize) {
        if self.hooks.contains_key(&hook_id) {
            self.update(hook_id, |hook| hook.cap = cap);
        }
    }

    /// Tasks of `hook_id` taken and not yet done.
    pub(crate) fn delivering(&self, hook_id: i64) -> usize {
        self.hooks.get(&hook_id).map_or(0, |hook| hook.delivering)
    }

    /// Takes the next webhook's oldest task (round-robin), counting it against the webhook's
    /// cap until [`done`](Self::done).
    #[cfg(test)]
    pub(crate) fn pop(&mut self) -> Option<Queued> {
        self.pop_unless(|_| false)
    }

    /// [`pop`](Self::pop), parking each webhook that `held` holds back on the way: its tasks
    /// are neither taken nor counted as ready until [`unpark`](Self::unpark).
    pub(crate) fn pop_unless(&mut self, held: impl Fn(i64) -> bool) -> Option<Queued> {
        while let Some(hook_id) = self.ring.pop_front() {
            let Some(hook) = self.hooks.get_mut(&hook_id) else {
                continue;
            };
            hook.in_ring = false;
            if !hook.takeable() {
                continue;
            }
            if held(hook_id) {
                self.update(hook_id, |hook| hook.parked = true);
                self.parked.push(hook_id);
                continue;
            }
            let mut taken = None;
            self.update(hook_id, |hook| {
                taken = hook.tasks.pop_front();
                hook.delivering += 1;
            });
            self.len -= 1;
            return taken;
        }
        None
    }

    /// Lets the parked webhooks' tasks be taken again.
    pub(crate) fn unpark(&mut self) {
        for hook_id in std::mem::take(&mut self.parked) {
            if self.hooks.contains_key(&hook_id) {
                self.update(hook_id, |hook| hook.parked = false);
            }
        }
    }

    /// A task of `hook_id` taken by [`pop`](Self::pop) is done (delivered or put off). Returns
    /// whether that made one of its queued tasks takeable.
    pub(crate) fn done(&mut self, hook_id: i64) -> bool {
        let before = self.ready;
        self.update(hook_id, |hook| {
            hook.delivering = hook.delivering.saturating_sub(1)
        });
        self.ready > before
    }

    /// Removes and returns the queued tasks `which` selects (say, those of a destination whose
    /// breaker just opened).
    pub(crate) fn take_where(&mut self, which: impl Fn(&Queued) -> bool) -> Vec<Queued> {
        let ids: Vec<i64> = self.hooks.keys().copied().collect();
        let mut taken = Vec::new();
        for hook_id in ids {
            self.update(hook_id, |hook| {
                let (out, kept): (VecDeque<Queued>, VecDeque<Queued>) =
                    hook.tasks.drain(..).partition(|queued| which(queued));
                hook.tasks = kept;
                taken.extend(out);
            });
        }
        self.len -= taken.len();
        taken
    }

    /// Applies `change` to a webhook's queue, keeping `ready` and the ring right and dropping
    /// the queue once it is empty and idle.
    fn update(&mut self, hook_id: i64, change: impl FnOnce(&mut HookQueue)) {
        let hook = self.hooks.entry(hook_id).or_default();
        let before = hook.ready();
        change(hook);
        self.ready = self.ready - before + hook.ready();
        if hook.takeable() && !hook.in_ring {
            hook.in_ring = true;
            self.ring.push_back(hook_id);
        }
        if hook.tasks.is_empty() && hook.delivering == 0 {
            self.hooks.remove(&hook_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use djinn_hook_outbox::{DeliveryRequest, LeaseToken};
    use time::OffsetDateTime;

    fn queued(hook_id: i64, task_id: i64) -> Queued {
        Queued {
            task: Task {
                task_id,
                lease: LeaseToken::new(),
                lease_until: OffsetDateTime::UNIX_EPOCH,
                event_created_at: OffsetDateTime::UNIX_EPOCH,
                request: {
                    let mut request = DeliveryRequest::new(
                        hook_id,
                        uuid::Uuid::nil(),
                        djinn_hook_payload::EventType::BuildFinished,
                        String::new(),
                        Vec::new(),
                    );
                    request.ssl = false;
                    request
                },
                hook_failing_since: None,
                max_in_flight: None,
            },
            destination: None,
        }
    }

    fn pop_id(queues: &mut HookQueues) -> Option<i64> {
        queues.pop().map(|q| q.task.task_id)
    }

    #[test]
    fn takes_round_robin_and_holds_a_capped_webhook() {
        let mut queues = HookQueues::default();
        for id in 1..=4 {
            queues.push(queued(1, id), 2);
        }
        queues.push(queued(2, 10), 2);
        queues.push(queued(2, 11), 2);
        assert_eq!((queues.len(), queues.ready()), (6, 6));
        assert_eq!(pop_id(&mut queues), Some(1));
        assert_eq!(pop_id(&mut queues), Some(10));
        assert_eq!(pop_id(&mut queues), Some(2));
        // Webhook 1 is at its cap of 2: only webhook 2's task is left to take.
        assert_eq!(queues.ready(), 1);
        assert_eq!(pop_id(&mut queues), Some(11));
        assert_eq!(pop_id(&mut queues), None);
        assert_eq!((queues.len(), queues.ready()), (2, 0));
        assert!(queues.done(1), "a slot of webhook 1 freed");
        assert_eq!(pop_id(&mut queues), Some(3));
        assert!(!queues.done(2), "webhook 2 has nothing queued");
    }

    #[test]
    fn a_lowered_cap_holds_a_webhook_and_a_raised_one_frees_it() {
        let mut queues = HookQueues::default();
        for id in 1..=3 {
            queues.push(queued(1, id), 2);
        }
        assert_eq!(pop_id(&mut queues), Some(1));
        queues.set_cap(1, 1);
        assert_eq!((queues.ready(), queues.delivering(1)), (0, 1));
        assert_eq!(pop_id(&mut queues), None);
        queues.set_cap(1, 0);
        assert!(!queues.done(1), "paused: nothing takeable");
        queues.set_cap(1, 2);
        assert_eq!(queues.ready(), 2);
        assert_eq!(pop_id(&mut queues), Some(2));
    }

    #[test]
    fn a_parked_webhook_is_neither_taken_nor_ready_until_unparked() {
        let mut queues = HookQueues::default();
        queues.push(queued(1, 1), 2);
        queues.push(queued(1, 2), 2);
        queues.push(queued(2, 10), 2);
        let took = queues.pop_unless(|hook_id| hook_id == 1);
        assert_eq!(took.map(|q| q.task.task_id), Some(10));
        assert_eq!((queues.len(), queues.ready()), (2, 0));
        assert_eq!(pop_id(&mut queues), None);
        queues.unpark();
        assert_eq!(queues.ready(), 2);
        assert_eq!(pop_id(&mut queues), Some(1));
    }

    #[test]
    fn take_where_removes_selected_tasks() {
        let mut queues = HookQueues::default();
        queues.push(queued(1, 1), 1);
        queues.push(queued(1, 2), 1);
        queues.push(queued(2, 3), 1);
        let taken = queues.take_where(|q| q.task.request.hook_id == 1);
        assert_eq!(taken.len(), 2);
        assert_eq!((queues.len(), queues.ready()), (1, 1));
        assert_eq!(pop_id(&mut queues), Some(3));
        assert_eq!(pop_id(&mut queues), None);
    }
}
