//! The fair claim's rounds, for both backends: the webhooks with due tasks share a claim
//! round-robin, each taking an equal share of what is left per round, under its cap. Each
//! backend finds the candidates and leases a webhook's due tasks its own way
//! ([`TakeDue`]: the SQL); the order, the shares and what counts as held back are decided here.

use djinn_hook_outbox::{ClaimRequest, LeaseToken, Task};
use time::OffsetDateTime;

use crate::error::IResult;
use crate::key::Cipher;
use crate::task::{Secrets, Settings, TaskRow, claimed};

/// A webhook with due tasks, as a claim serves it.
pub(crate) struct Candidate {
    pub(crate) hook: Settings,
    /// Its secrets, once decrypted (once per claim, if it gets a task).
    secrets: Option<Secrets>,
    /// Leases it may still take.
    pub(crate) room: usize,
    /// `(next_at, id)` of the last task taken: a backend that walks its due tasks by that key
    /// continues after it in the next round.
    pub(crate) after: (i64, i64),
}

impl Candidate {
    /// A webhook not yet served, with room for `room` leases.
    pub(crate) fn new(hook: Settings, room: usize) -> Candidate {
        Candidate {
            hook,
            secrets: None,
            room,
            after: (i64::MIN, i64::MIN),
        }
    }
}

/// A backend's part of a claim, inside its transaction.
pub(crate) trait TakeDue {
    /// Leases up to `want` of `hook`'s due tasks, oldest due first, and returns them with
    /// each one's `(next_at, id)` before the lease.
    fn take(&mut self, hook: &Candidate, want: usize) -> IResult<Vec<((i64, i64), TaskRow)>>;
    /// Whether `hook` has due tasks left after those taken.
    fn more_due(&mut self, hook: &Candidate) -> IResult<bool>;
}

/// What the rounds leased.
pub(crate) struct Rounds {
    pub(crate) tasks: Vec<Task>,
    /// The webhook served last: the next claim starts after it.
    pub(crate) last: Option<i64>,
    /// Whether a webhook's cap left due tasks behind.
    pub(crate) held_back: bool,
    /// The webhooks that reached their cap.
    pub(crate) at_cap: Vec<i64>,
}

/// Runs the rounds over `candidates` (in the order they are served, each with room), leasing
/// with `lease` until `until`.
pub(crate) fn run(
    mut candidates: Vec<Candidate>,
    claim: &ClaimRequest,
    cipher: &Cipher,
    now: OffsetDateTime,
    (lease, until): (LeaseToken, OffsetDateTime),
    backend: &mut impl TakeDue,
) -> IResult<Rounds> {
    let mut out = Rounds {
        tasks: Vec::new(),
        last: None,
        held_back: false,
        at_cap: Vec::new(),
    };
    let mut remaining = claim.limit;
    // Each webhook left takes an equal share of what is left, so a claim smaller than the
    // number of webhooks takes one task from each of the first ones (and the next claim
    // continues after the last), and one with room to spare gives it to those with more due.
    while remaining > 0 && !candidates.is_empty() {
        let share = (remaining / candidates.len()).max(1);
        let mut keep = Vec::with_capacity(candidates.len());
        for mut hook in std::mem::take(&mut candidates) {
            let want = share.min(hook.room).min(remaining);
            if want == 0 {
                keep.push(hook);
                continue;
            }
            let rows = backend.take(&hook, want)?;
            let got = rows.len();
            if got > 0 {
                out.last = Some(hook.hook.hook_id);
                if hook.secrets.is_none() {
                    hook.secrets = Some(hook.hook.open_secrets(cipher, now)?);
                }
            }
            for (key, row) in rows {
                hook.after = key;
                let secrets = hook.secrets.clone().unwrap_or_default();
                out.tasks
                    .push(claimed(&hook.hook, secrets, lease, until, row));
            }
            hook.room -= got;
            remaining -= got;
            if got < want {
                // Nothing more due (or, on PostgreSQL, the rest is being changed by another).
                continue;
            }
            if hook.room == 0 {
                out.held_back |= backend.more_due(&hook)?;
                out.at_cap.push(hook.hook.hook_id);
                continue;
            }
            keep.push(hook);
        }
        candidates = keep;
    }
    Ok(out)
}
