//! Claiming due tasks fairly across webhooks, each under its cap; putting claimed tasks off
//! while a circuit breaker holds their receiver.

use std::collections::{HashMap, HashSet};

use const_format::formatcp;
use djinn_hook_outbox::{ClaimRequest, Claimed, LeaseToken, PutOff};
use rusqlite::{OptionalExtension, Transaction, params};
use time::OffsetDateTime;

use crate::error::{IResult, Result};
use crate::liveness::ProcessId;
use crate::outbox::lease_until;
use crate::sql::{event_from_code, from_ns, to_ns, uuid_from_blob};
use crate::store::Store;
use crate::task::{Secrets, Settings, TaskRow, claimed};
use crate::task_state::PENDING;
use crate::types::DeliveryLimits;

impl Store {
    /// [`Store::claim`](crate::Store::claim) on SQLite: the rules are documented there.
    ///
    /// Not durable on return, unlike every other write: the claim commits without waiting for
    /// an fsync (one fewer per claim). It becomes durable with the next durable commit on the
    /// file (say, the completion of one of its tasks: in WAL mode that commit's fsync covers
    /// every frame written before it). A claim lost in a machine crash is harmless: its tasks
    /// are due again at once, as if their lease had run out, and the attempt it counted is not
    /// counted.
    /// Starts after webhook `after` and passes over the webhooks of `at_cap` (known to be at
    /// their cap: their due tasks count as held back); returns what it got, the webhook it
    /// served last and the webhooks it found at their cap. The leases are `holder`'s (a
    /// registered process), if given.
    pub(crate) fn claim(
        &self,
        now: OffsetDateTime,
        claim: &ClaimRequest,
        after: i64,
        holder: Option<ProcessId>,
        at_cap: &HashSet<i64>,
    ) -> Result<ClaimOutcome> {
        self.write_unsynced("claiming due tasks", |tx| {
            claim_in(self, tx, now, claim, after, at_cap, holder)
        })
    }

    /// Puts claimed tasks back without an attempt (an open circuit breaker holds their
    /// receiver): each is due again at its `until`, its lease dropped and its claim no
    /// longer counted as an attempt, so the retry schedule is not used up; its webhook records
    /// the breaker ([`Webhook::breaker`](crate::Webhook::breaker)). A task whose lease is no
    /// longer current is left alone. Returns how many were put off.
    ///
    /// Not durable on return, like a claim (it undoes one): lost in a machine crash, the tasks
    /// come back when their leases run out.
    pub(crate) fn put_off(&self, put_off: &[PutOff]) -> Result<usize> {
        self.write_unsynced("putting tasks off", |tx| {
            let mut task = tx.prepare_cached(formatcp!(
                "UPDATE tasks SET next_at = ?3, lease = NULL, attempts = max(attempts - 1, 0)
                 WHERE id = ?1 AND lease = ?2 AND state = {PENDING}"
            ))?;
            let mut hook = tx.prepare_cached(
                "UPDATE webhooks SET breaker_destination = ?2, breaker_until = ?3,
                    breaker_reason = ?4
                 WHERE id = (SELECT hook_id FROM tasks WHERE id = ?1)",
            )?;
            let mut n = 0;
            for p in put_off {
                let until = to_ns(p.until);
                if task.execute(params![p.task_id, p.lease.as_bytes(), until])? == 0 {
                    continue;
                }
                n += 1;
                hook.execute(params![p.task_id, p.destination.as_str(), until, p.reason])?;
            }
            Ok(n)
        })
    }

    /// Records that the circuit breaker of `destination` closed: its shared breaker is
    /// removed, and the webhooks it held no longer show it. Not durable on return (lost, the
    /// breaker is still open to the others: its next probe closes it).
    pub(crate) fn breaker_closed(&self, destination: &str) -> Result<()> {
        self.write_unsynced("recording a closed breaker", |tx| {
            tx.prepare_cached("DELETE FROM breakers WHERE destination = ?1")?
                .execute([destination])?;
            tx.prepare_cached(
                "UPDATE webhooks SET breaker_destination = NULL, breaker_until = NULL,
                    breaker_reason = NULL
                 WHERE breaker_destination = ?1",
            )?
            .execute([destination])?;
            Ok(())
        })
    }
}

/// The columns of a webhook that a delivery needs (its secret still sealed).
pub(crate) const SETTINGS_COLUMNS: &str = "payload_url, ssl, secret, standard_webhooks,
    failing_since, max_in_flight, timeout_ms, previous_secret, previous_secret_until, headers";

/// Reads [`SETTINGS_COLUMNS`] of webhook `hook_id` from column `at` on.
pub(crate) fn read_settings(
    hook_id: i64,
    r: &rusqlite::Row<'_>,
    at: usize,
) -> rusqlite::Result<Settings> {
    Ok(Settings {
        hook_id,
        payload_url: r.get(at)?,
        ssl: r.get(at + 1)?,
        sealed_secret: r.get(at + 2)?,
        standard_webhooks: r.get(at + 3)?,
        failing_since: r.get::<_, Option<i64>>(at + 4)?.map(from_ns),
        limits: limits_from_row(r.get(at + 5)?, r.get(at + 6)?),
        sealed_previous_secret: r.get(at + 7)?,
        previous_secret_until: r.get(at + 8)?,
        sealed_headers: r.get(at + 9)?,
    })
}

/// A webhook with due tasks, as a claim serves it.
struct Candidate {
    hook_id: i64,
    hook: Settings,
    /// Leases it may still take.
    room: usize,
    /// `(next_at, id)` of the last task taken: the next round continues after it.
    after: (i64, i64),
}

/// What a claim got, the webhook it served last and the webhooks it found at their cap.
pub(crate) type ClaimOutcome = (Claimed, Option<i64>, Vec<i64>);

/// The claim's transaction, after webhook `cursor` and passing over those of `at_cap`.
fn claim_in(
    store: &Store,
    tx: &Transaction<'_>,
    now: OffsetDateTime,
    claim: &ClaimRequest,
    cursor: i64,
    at_cap: &HashSet<i64>,
    holder: Option<ProcessId>,
) -> IResult<ClaimOutcome> {
    let now_ns = to_ns(now);
    let holder = holder.map(ProcessId::as_i64);
    let until = to_ns(lease_until(now, claim.lease));
    let token = LeaseToken::new();
    let mut held_back = false;
    let mut found_at_cap = Vec::new();

    // The webhooks with pending tasks (one index seek each), those after the cursor first.
    let mut next_hook = tx.prepare_cached(formatcp!(
        "SELECT min(hook_id) FROM tasks WHERE state = {PENDING} AND hook_id > ?1"
    ))?;
    let mut hook_ids = Vec::new();
    let mut after = cursor;
    while let Some(id) = next_hook.query_row([after], |r| r.get::<_, Option<i64>>(0))? {
        hook_ids.push(id);
        after = id;
    }
    after = i64::MIN;
    while let Some(id) = next_hook.query_row([after], |r| r.get::<_, Option<i64>>(0))? {
        if id > cursor {
            break;
        }
        hook_ids.push(id);
        after = id;
    }

    let mut hook_stmt = tx.prepare_cached(&format!(
        "SELECT active, {SETTINGS_COLUMNS} FROM webhooks WHERE id = ?1"
    ))?;
    let mut leased_stmt = tx.prepare_cached(formatcp!(
        "SELECT count(*) FROM tasks
         WHERE hook_id = ?1 AND state = {PENDING} AND lease IS NOT NULL AND next_at > ?2"
    ))?;
    let mut due_after = tx.prepare_cached(formatcp!(
        "SELECT 1 FROM tasks WHERE hook_id = ?1 AND state = {PENDING} AND next_at <= ?2
            AND (next_at, id) > (?3, ?4)"
    ))?;
    let mut candidates = Vec::new();
    for hook_id in hook_ids {
        // A webhook with nothing due (its backlog put off by a breaker, say) is passed over
        // before its live leases are counted: that count walks every task due later.
        if !due_after.exists(params![hook_id, now_ns, i64::MIN, i64::MIN])? {
            continue;
        }
        if at_cap.contains(&hook_id) {
            held_back = true;
            continue;
        }
        let hook = hook_stmt
            .query_row([hook_id], |r| {
                let active: bool = r.get(0)?;
                let hook = Candidate {
                    hook_id,
                    hook: read_settings(hook_id, r, 1)?,
                    room: 0,
                    after: (i64::MIN, i64::MIN),
                };
                Ok(active.then_some(hook))
            })
            .optional()?
            .flatten();
        let Some(mut hook) = hook else { continue };
        let leased: i64 = leased_stmt.query_row(params![hook_id, now_ns], |r| r.get(0))?;
        hook.room = hook.hook.room(claim, leased);
        if hook.room == 0 {
            // It has due tasks: left behind by its cap.
            held_back = true;
            found_at_cap.push(hook_id);
            continue;
        }
        candidates.push(hook);
    }

    let mut due = tx.prepare_cached(formatcp!(
        "SELECT t.id, t.attempts, t.redelivery, e.uuid, e.event, e.created_at,
            COALESCE(t.body, e.payload), t.next_at
         FROM tasks t JOIN events e ON e.id = t.event_id
         WHERE t.hook_id = ?1 AND t.state = {PENDING} AND t.next_at <= ?2
            AND (t.next_at, t.id) > (?3, ?4)
         ORDER BY t.next_at, t.id
         LIMIT ?5"
    ))?;
    let mut lease_stmt = tx.prepare_cached(
        "UPDATE tasks SET lease = ?2, next_at = ?3, attempts = attempts + 1, holder = ?4
         WHERE id = ?1",
    )?;
    // Decrypted once per webhook per claim: the current and the previous secret.
    let mut secrets: HashMap<i64, Secrets> = HashMap::new();
    let mut tasks = Vec::new();
    let mut remaining = claim.limit;
    let mut last = None;
    // Rounds: each webhook left takes an equal share of what is left, so a claim smaller than
    // the number of webhooks takes one task from each of the first ones (and the next claim
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
            let rows = due
                .query_map(
                    params![
                        hook.hook_id,
                        now_ns,
                        hook.after.0,
                        hook.after.1,
                        i64::try_from(want).unwrap_or(i64::MAX)
                    ],
                    |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, bool>(2)?,
                            uuid_from_blob(&r.get::<_, Vec<u8>>(3)?)?,
                            event_from_code(r.get(4)?)?,
                            from_ns(r.get(5)?),
                            r.get::<_, Vec<u8>>(6)?,
                            r.get::<_, i64>(7)?,
                        ))
                    },
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let got = rows.len();
            if got > 0 {
                last = Some(hook.hook_id);
            }
            let opened: Secrets = match secrets.get(&hook.hook_id) {
                Some(secrets) => secrets.clone(),
                None if got > 0 => {
                    let opened = hook.hook.open_secrets(&store.cipher, now)?;
                    secrets.insert(hook.hook_id, opened.clone());
                    opened
                }
                None => Secrets::default(),
            };
            for (task_id, attempts, redelivery, event_id, event, created_at, body, next_at) in rows
            {
                lease_stmt.execute(params![task_id, token.as_bytes(), until, holder])?;
                hook.after = (next_at, task_id);
                tasks.push(claimed(
                    &hook.hook,
                    opened.clone(),
                    token,
                    from_ns(until),
                    TaskRow {
                        task_id,
                        event_id,
                        event,
                        event_created_at: created_at,
                        body,
                        attempt: u32::try_from(attempts + 1).unwrap_or(u32::MAX),
                        redelivery,
                    },
                ));
            }
            hook.room -= got;
            remaining -= got;
            if got < want {
                // Nothing more due.
                continue;
            }
            if hook.room == 0 {
                held_back |=
                    due_after.exists(params![hook.hook_id, now_ns, hook.after.0, hook.after.1])?;
                found_at_cap.push(hook.hook_id);
                continue;
            }
            keep.push(hook);
        }
        candidates = keep;
    }
    Ok((Claimed { tasks, held_back }, last, found_at_cap))
}

/// A webhook's limits from its columns (a value out of range reads as unset).
pub(crate) fn limits_from_row(
    max_in_flight: Option<i64>,
    timeout_ms: Option<i64>,
) -> DeliveryLimits {
    DeliveryLimits {
        max_in_flight: max_in_flight.and_then(|n| u32::try_from(n).ok()),
        timeout: timeout_ms
            .and_then(|ms| u64::try_from(ms).ok())
            .map(std::time::Duration::from_millis),
    }
}
