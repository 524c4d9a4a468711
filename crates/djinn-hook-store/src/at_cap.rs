//! The webhooks a `Store`'s claims found at their cap, remembered so that its next claims pass
//! over them without counting their leases again (the count walks each live lease: beside
//! many receivers that never answer, each holding its cap of leases, it would be most of every
//! claim's cost) until one of their leases may have ended.
//!
//! A lease this `Store` ends (a completion of the webhook's task) makes the webhook's next
//! claim count it again at once; one put off, handed back or taken back from a dead process,
//! every webhook's. Leases that run out, those other `Store`s or processes end, and a raised
//! `max_in_flight` are seen within [`RECHECK`] (by the claims' own clock). Passing a webhook
//! over only ever claims less for it, never more than its cap.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use djinn_hook_outbox::ClaimRequest;
use time::OffsetDateTime;

/// How long a webhook found at its cap is passed over at most.
pub(crate) const RECHECK: Duration = Duration::from_millis(500);

/// The webhooks found at their cap, by id (`Send + Sync`: claims and completions may run on
/// any thread).
#[derive(Debug, Default)]
pub(crate) struct AtCap(Mutex<Marks>);

#[derive(Debug, Default)]
struct Marks {
    hooks: HashMap<i64, Mark>,
    /// Bumped whenever leases may have ended: a claim that began before keeps none of its
    /// findings (it may have counted a lease that is gone).
    generation: u64,
}

/// A webhook found at its cap by a claim.
#[derive(Clone, Copy, Debug)]
struct Mark {
    /// Counted again by claims from then on.
    until: OffsetDateTime,
    /// The cap it was found at (a claim allowing more counts it again).
    max_in_flight: usize,
    leases_per_slot: usize,
}

/// What a claim passes over, and when it began.
pub(crate) struct Skip {
    /// The webhooks it does not count (their due tasks are left behind by their caps).
    pub(crate) hooks: HashSet<i64>,
    generation: u64,
}

impl AtCap {
    /// The webhooks a claim at `now` under `claim` passes over.
    pub(crate) fn skip(&self, now: OffsetDateTime, claim: &ClaimRequest) -> Skip {
        let mut marks = self.lock();
        marks.hooks.retain(|_, mark| now < mark.until);
        Skip {
            hooks: marks
                .hooks
                .iter()
                .filter(|(_, mark)| {
                    claim.max_in_flight <= mark.max_in_flight
                        && claim.leases_per_slot <= mark.leases_per_slot
                })
                .map(|(&hook_id, _)| hook_id)
                .collect(),
            generation: marks.generation,
        }
    }

    /// Remembers the webhooks the claim of `skip` found at their cap, unless leases may have
    /// ended since it began.
    pub(crate) fn found(
        &self,
        skip: &Skip,
        now: OffsetDateTime,
        claim: &ClaimRequest,
        hooks: &[i64],
    ) {
        let mut marks = self.lock();
        if marks.generation != skip.generation {
            return;
        }
        let mark = Mark {
            until: now + RECHECK,
            max_in_flight: claim.max_in_flight,
            leases_per_slot: claim.leases_per_slot,
        };
        marks
            .hooks
            .extend(hooks.iter().map(|&hook_id| (hook_id, mark)));
    }

    /// Leases of these webhooks ended (their tasks were completed).
    pub(crate) fn freed(&self, hook_ids: impl IntoIterator<Item = i64>) {
        let mut marks = self.lock();
        marks.generation += 1;
        for hook_id in hook_ids {
            marks.hooks.remove(&hook_id);
        }
    }

    /// Leases of any webhook may have ended.
    pub(crate) fn forget_all(&self) {
        let mut marks = self.lock();
        marks.generation += 1;
        marks.hooks.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Marks> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
