//! What accepting events and completing attempts decide, for both backends: which webhooks an
//! event goes to ([`HookCache`]: each namespace's active webhooks and their event masks, read
//! once per call) and what a batch of completions does to each webhook's `failing_since`
//! ([`health`]). Each backend keeps its SQL and calls these.

use std::collections::{BTreeMap, HashMap};

use djinn_hook_outbox::{Completion, Outcome};
use djinn_hook_payload::EventType;

use crate::sql::to_ns;

/// The active webhooks of the namespaces seen in one accept call, read once each.
#[derive(Default)]
pub(crate) struct HookCache {
    by_namespace: HashMap<String, Subscribers>,
}

/// A namespace's active webhooks, by id.
pub(crate) struct Subscribers {
    /// The namespace's row id.
    pub(crate) namespace_id: i64,
    /// `(hook id, event mask)` of each active webhook.
    hooks: Vec<(i64, i64)>,
}

impl Subscribers {
    /// The webhooks subscribed to `event`, by id.
    pub(crate) fn matching(&self, event: EventType) -> impl Iterator<Item = i64> + '_ {
        // 15 bits: always fits.
        let bit = event.bit() as i64;
        self.hooks
            .iter()
            .filter(move |(_, events)| events & bit != 0)
            .map(|(hook, _)| *hook)
    }
}

impl HookCache {
    /// The subscribers of namespace `name`, read by `load` (its id, and its active webhooks'
    /// ids and event masks) the first time it is asked for.
    pub(crate) fn of<E>(
        &mut self,
        name: &str,
        load: impl FnOnce(&str) -> Result<(i64, Vec<(i64, i64)>), E>,
    ) -> Result<&Subscribers, E> {
        if !self.by_namespace.contains_key(name) {
            let (namespace_id, hooks) = load(name)?;
            let subscribers = Subscribers {
                namespace_id,
                hooks,
            };
            self.by_namespace.insert(name.to_owned(), subscribers);
        }
        Ok(&self.by_namespace[name])
    }
}

/// What a batch of completions does to one webhook's `failing_since`, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Health {
    /// The last attempt in the batch succeeded: clear it.
    Clear,
    /// Only failures, from this time (Unix ns): set it if unset.
    FailingIfUnset(i64),
    /// A success, then failures from this time (Unix ns): set it.
    FailingFrom(i64),
}

/// The [`Health`] of each webhook of the completions whose task was found (`(hook id,
/// completion)`, in the batch's order), in webhook order: two batches touching the same
/// webhooks then lock their rows in the same order (no deadlock between workers).
pub(crate) fn health<'a>(
    finished: impl IntoIterator<Item = (i64, &'a Completion)>,
) -> Vec<(i64, Health)> {
    let mut health: BTreeMap<i64, Health> = BTreeMap::new();
    for (hook_id, c) in finished {
        let failed_at = to_ns(c.attempt.created_at);
        health
            .entry(hook_id)
            .and_modify(|slot| {
                *slot = match (c.decision.outcome, *slot) {
                    (Outcome::Delivered, _) => Health::Clear,
                    (_, Health::Clear) => Health::FailingFrom(failed_at),
                    (_, kept) => kept,
                }
            })
            .or_insert(match c.decision.outcome {
                Outcome::Delivered => Health::Clear,
                _ => Health::FailingIfUnset(failed_at),
            });
    }
    health.into_iter().collect()
}
