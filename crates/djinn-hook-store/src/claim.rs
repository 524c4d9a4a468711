//! Claiming due tasks fairly across webhooks, each under its cap; putting claimed tasks off
//! while a circuit breaker holds their receiver.

use std::collections::HashSet;

use const_format::formatcp;
use djinn_hook_outbox::{ClaimRequest, Claimed, LeaseToken, PutOff};
use rusqlite::{CachedStatement, OptionalExtension, Transaction, params};
use time::OffsetDateTime;

use crate::backend::{ClaimOutcome, Claims};
use crate::claim_rounds::{self, Candidate, TakeDue};
use crate::error::{IResult, Result};
use crate::liveness::ProcessId;
use crate::outbox::lease_until;
use crate::rows;
use crate::sql::{from_ns, to_ns};
use crate::sqlite::SqliteBackend;
use crate::task::TaskRow;
use crate::task_state::PENDING;

impl Claims for SqliteBackend {
    /// Not durable on return, unlike every other write: the claim commits without waiting for
    /// an fsync (one fewer per claim). It becomes durable with the next durable commit on the
    /// file (in WAL mode that commit's fsync covers every frame written before it).
    fn claim(
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

    fn put_off(&self, put_off: &[PutOff]) -> Result<usize> {
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

    fn breaker_closed(&self, destination: &str) -> Result<()> {
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

/// The claim's transaction, after webhook `cursor` and passing over those of `at_cap`.
fn claim_in(
    store: &SqliteBackend,
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
        // Found at its cap with tasks due within the last `RECHECK`: passed over without
        // looking again (beside many receivers that never answer, a look at each was a large
        // part of every claim).
        if at_cap.contains(&hook_id) {
            held_back = true;
            continue;
        }
        // A webhook with nothing due (its backlog put off by a breaker, say) is passed over
        // before its live leases are counted: that count walks every task due later.
        if !due_after.exists(params![hook_id, now_ns, i64::MIN, i64::MIN])? {
            continue;
        }
        let hook = hook_stmt
            .query_row([hook_id], |r| {
                let active: bool = r.get(0)?;
                let hook = Candidate::new(rows::settings(hook_id, r, 1)?, 0);
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

    let mut backend = SqliteTake {
        due: tx.prepare_cached(formatcp!(
            "SELECT t.id, t.attempts + 1, t.redelivery, e.uuid, e.event, e.created_at,
                COALESCE(t.body, e.payload), t.next_at, e.traceparent
             FROM tasks t JOIN events e ON e.id = t.event_id
             WHERE t.hook_id = ?1 AND t.state = {PENDING} AND t.next_at <= ?2
                AND (t.next_at, t.id) > (?3, ?4)
             ORDER BY t.next_at, t.id
             LIMIT ?5"
        ))?,
        lease: tx.prepare_cached(
            "UPDATE tasks SET lease = ?2, next_at = ?3, attempts = attempts + 1, holder = ?4
             WHERE id = ?1",
        )?,
        due_after,
        now_ns,
        token,
        until,
        holder,
    };
    let rounds = claim_rounds::run(
        candidates,
        claim,
        &store.cipher,
        now,
        (token, from_ns(until)),
        &mut backend,
    )?;
    found_at_cap.extend(rounds.at_cap);
    let claimed = Claimed {
        tasks: rounds.tasks,
        held_back: held_back || rounds.held_back,
    };
    Ok((claimed, rounds.last, found_at_cap))
}

/// A SQLite claim's statements: each webhook's due tasks walked by `(next_at, id)` after the
/// last one taken.
struct SqliteTake<'tx> {
    due: CachedStatement<'tx>,
    lease: CachedStatement<'tx>,
    due_after: CachedStatement<'tx>,
    now_ns: i64,
    token: LeaseToken,
    until: i64,
    holder: Option<i64>,
}

impl TakeDue for SqliteTake<'_> {
    fn take(&mut self, hook: &Candidate, want: usize) -> IResult<Vec<((i64, i64), TaskRow)>> {
        let rows = self
            .due
            .query_map(
                params![
                    hook.hook.hook_id,
                    self.now_ns,
                    hook.after.0,
                    hook.after.1,
                    i64::try_from(want).unwrap_or(i64::MAX)
                ],
                |r| rows::claimed_task(r),
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        for (_, row) in &rows {
            self.lease.execute(params![
                row.task_id,
                self.token.as_bytes(),
                self.until,
                self.holder
            ])?;
        }
        Ok(rows)
    }

    fn more_due(&mut self, hook: &Candidate) -> IResult<bool> {
        Ok(self.due_after.exists(params![
            hook.hook.hook_id,
            self.now_ns,
            hook.after.0,
            hook.after.1
        ])?)
    }
}
