//! Claiming due tasks on PostgreSQL fairly across webhooks, each under its cap (the same
//! rules as SQLite's `claim.rs`); putting claimed tasks off while a circuit breaker holds
//! their receiver.

use std::collections::{BTreeMap, HashMap, HashSet};

use const_format::formatcp;
use djinn_hook_outbox::{ClaimRequest, Claimed, LeaseToken, PutOff};
use postgres::Transaction;
use postgres::types::Type;
use time::OffsetDateTime;

use super::PgBackend;
use super::packed::Packed;
use crate::backend::ClaimOutcome;
use crate::backend::Claims;
use crate::claim::SETTINGS_COLUMNS;
use crate::claim_rounds::{self, Candidate, TakeDue};
use crate::error::{IResult, Result};
use crate::liveness::ProcessId;
use crate::outbox::lease_until;
use crate::rows;
use crate::sql::to_ns;
use crate::task::TaskRow;
use crate::task_state::PENDING;

impl Claims for PgBackend {
    /// As SQLite's: starts after webhook `after`, passes over those of `at_cap`, returns the
    /// webhook it served last and those it found at their cap too; the leases are `holder`'s,
    /// if given.
    fn claim(
        &self,
        now: OffsetDateTime,
        claim: &ClaimRequest,
        after: i64,
        holder: Option<ProcessId>,
        at_cap: &HashSet<i64>,
    ) -> Result<ClaimOutcome> {
        self.claim_write("claiming due tasks", |tx| {
            claim_in(self, tx, now, claim, after, at_cap, holder)
        })
    }

    fn put_off(&self, put_off: &[PutOff]) -> Result<usize> {
        self.claim_write("putting tasks off", |tx| {
            // Tasks in id order, then their webhooks in id order: every writer locks rows of
            // one table in key order, so two of them never wait on each other in a circle.
            let mut order: Vec<usize> = (0..put_off.len()).collect();
            order.sort_by_key(|&i| put_off[i].task_id);
            let mut hook_of = vec![None; put_off.len()];
            for i in order {
                let p = &put_off[i];
                // The lease ends with its attempt given back: the task keeps the count of
                // its ended attempts.
                hook_of[i] = tx
                    .query_typed(
                        formatcp!(
                            "WITH l AS (
                                DELETE FROM task_leases WHERE task_id = $1 AND lease = $2
                                RETURNING task_id, hook_id, due_at)
                             UPDATE tasks t SET next_at = $3
                             FROM l WHERE {TASK_OF_LEASE}
                             RETURNING t.hook_id"
                        ),
                        &[
                            (&p.task_id, Type::INT8),
                            (p.lease.as_uuid(), Type::UUID),
                            (&to_ns(p.until), Type::INT8),
                        ],
                    )?
                    .first()
                    .map(|r| r.try_get::<_, i64>(0))
                    .transpose()?;
            }
            // As on SQLite, the last put-off of a webhook's tasks is what it shows.
            let mut holds: BTreeMap<i64, &PutOff> = BTreeMap::new();
            for (p, hook) in put_off.iter().zip(&hook_of) {
                if let Some(hook) = hook {
                    holds.insert(*hook, p);
                }
            }
            for (hook_id, hold) in holds {
                tx.query_typed(
                    "UPDATE webhooks SET breaker_destination = $2, breaker_until = $3,
                        breaker_reason = $4
                     WHERE id = $1",
                    &[
                        (&hook_id, Type::INT8),
                        (&hold.destination.as_str(), Type::TEXT),
                        (&to_ns(hold.until), Type::INT8),
                        (&hold.reason, Type::TEXT),
                    ],
                )?;
            }
            Ok(hook_of.iter().flatten().count())
        })
    }

    fn breaker_closed(&self, destination: &str) -> Result<()> {
        self.claim_write("recording a closed breaker", |tx| {
            tx.query_typed(
                "DELETE FROM breakers WHERE destination = $1",
                &[(&destination, Type::TEXT)],
            )?;
            // Locked in key order first, as completions lock webhooks.
            tx.query_typed(
                "UPDATE webhooks SET breaker_destination = NULL, breaker_until = NULL,
                    breaker_reason = NULL
                 WHERE id IN (SELECT id FROM webhooks WHERE breaker_destination = $1
                    ORDER BY id FOR NO KEY UPDATE)",
                &[(&destination, Type::TEXT)],
            )?;
            Ok(())
        })
    }
}

/// Task `t` is the one lease `l` is of, found by the index a claim walks (`tasks_hook_due`:
/// `tasks` has no other): a claim leaves the task's `next_at` as it was, and its lease keeps it.
pub(super) const TASK_OF_LEASE: &str = formatcp!(
    "t.hook_id = l.hook_id AND t.state = {PENDING} AND t.next_at = l.due_at AND t.id = l.task_id"
);

/// Task `t` has no live lease at the parameter `$now` (say `"$2"`). Leases are kept apart, in
/// `task_leases` (see migration 12), and a claim leaves the task's row as it is.
macro_rules! not_leased {
    ($now:literal) => {
        concat!(
            "NOT EXISTS (SELECT 1 FROM task_leases l WHERE l.task_id = t.id AND l.until > ",
            $now,
            ")"
        )
    };
}
pub(super) use not_leased;

/// [`not_leased`] at `$2`, where the claim's statements bind their now.
pub(super) const NOT_LEASED: &str = not_leased!("$2");

/// `pending (id)`: the webhooks with pending tasks, one index seek each (a skip scan of
/// `tasks_hook_due`), the last row `NULL`.
pub(super) const PENDING_HOOKS: &str = formatcp!(
    "WITH RECURSIVE pending (id) AS (
        (SELECT hook_id FROM tasks WHERE state = {PENDING} ORDER BY hook_id LIMIT 1)
        UNION ALL
        SELECT (SELECT t.hook_id FROM tasks t WHERE t.state = {PENDING} AND t.hook_id > p.id
                ORDER BY t.hook_id LIMIT 1)
        FROM pending p WHERE p.id IS NOT NULL)"
);

/// The claim's transaction: returns what it got and the webhook it served last.
///
/// Caps hold across processes: the candidate webhooks' rows are locked (`FOR NO KEY UPDATE`,
/// skipping those another claim is serving unless that is all of them) before their live
/// leases are counted, in a statement of its own that sees every claim committed before the
/// lock was taken. Each webhook's due tasks are then one walk of the `(hook_id, next_at)`
/// index, oldest first, past those with a live lease (at most the webhook's leases, which its
/// cap bounds); the leases this claim wrote are live, so a later round of the same webhook
/// continues after them. Leases live in `task_leases`, which PostgreSQL does not log: a claim
/// writes no WAL for its tasks.
fn claim_in(
    store: &PgBackend,
    tx: &mut Transaction<'_>,
    now: OffsetDateTime,
    claim: &ClaimRequest,
    cursor: i64,
    at_cap: &HashSet<i64>,
    holder: Option<ProcessId>,
) -> IResult<ClaimOutcome> {
    let now_ns = to_ns(now);
    let holder = holder.map(ProcessId::as_i64);
    let until = lease_until(now, claim.lease);
    let token = LeaseToken::new();
    let mut held_back = false;
    let mut found_at_cap = Vec::new();

    // The active webhooks with due tasks: the pending tasks' webhooks, then each one's first
    // due task without a live lease, a walk of its index past its leased ones (a subquery with
    // a limit, which the planner keeps per webhook rather than join every pending task to the
    // leases).
    let due_hooks: Vec<i64> = tx
        .query_typed(
            formatcp!(
                "{PENDING_HOOKS}
             SELECT w.id FROM webhooks w
             WHERE w.id IN (SELECT id FROM pending WHERE id IS NOT NULL) AND w.active
                AND (SELECT true FROM tasks t
                     WHERE t.hook_id = w.id AND t.state = {PENDING} AND t.next_at <= $1
                        AND {not_leased}
                     ORDER BY t.next_at, t.id LIMIT 1)",
                not_leased = not_leased!("$1")
            ),
            &[(&now_ns, Type::INT8)],
        )?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<Vec<i64>, _>>()?
        .into_iter()
        .filter(|hook_id| {
            // Known to be at its cap: its due tasks are left behind, uncounted.
            let skip = at_cap.contains(hook_id);
            held_back |= skip;
            !skip
        })
        .collect();
    if due_hooks.is_empty() {
        return Ok((
            Claimed {
                tasks: Vec::new(),
                held_back,
            },
            None,
            found_at_cap,
        ));
    }
    // Their rows, locked, read as of the lock. Those another claim holds are left to it; but
    // if it holds them all, this one waits for it (in id order, as every claim locks them)
    // rather than come back empty while tasks are due.
    const LOCK: &str = formatcp!(
        "SELECT id, {SETTINGS_COLUMNS}
         FROM webhooks WHERE id = ANY($1) AND active
         ORDER BY id
         FOR NO KEY UPDATE"
    );
    let params: [(&(dyn postgres::types::ToSql + Sync), Type); 1] =
        [(&due_hooks, Type::INT8_ARRAY)];
    let mut rows = tx.query_typed(&format!("{LOCK} SKIP LOCKED"), &params)?;
    if rows.is_empty() {
        rows = tx.query_typed(LOCK, &params)?;
    }
    let mut candidates: Vec<Candidate> = rows
        .iter()
        .map(|r| Ok(Candidate::new(rows::settings(r.try_get(0)?, r, 1)?, 0)))
        .collect::<IResult<_>>()?;
    // Round-robin: those after the webhook the previous claim served last go first.
    let split = candidates.partition_point(|c| c.hook.hook_id <= cursor);
    candidates.rotate_left(split);

    let ids: Vec<i64> = candidates.iter().map(|c| c.hook.hook_id).collect();
    let leased: HashMap<i64, i64> = tx
        .query_typed(
            formatcp!(
                "SELECT hook_id, count(*) FROM task_leases
             WHERE hook_id = ANY($1) AND until > $2
             GROUP BY hook_id"
            ),
            &[(&ids, Type::INT8_ARRAY), (&now_ns, Type::INT8)],
        )?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<IResult<_>>()?;
    candidates.retain_mut(|hook| {
        let leased = leased.get(&hook.hook.hook_id).copied().unwrap_or(0);
        hook.room = hook.hook.room(claim, leased);
        // Every candidate has due tasks: one without room leaves them behind.
        if hook.room == 0 {
            held_back = true;
            found_at_cap.push(hook.hook.hook_id);
        }
        hook.room > 0
    });

    let mut backend = PgTake {
        tx,
        now_ns,
        token,
        until: to_ns(until),
        holder,
    };
    let rounds = claim_rounds::run(
        candidates,
        claim,
        &store.cipher,
        now,
        (token, until),
        &mut backend,
    )?;
    found_at_cap.extend(rounds.at_cap);
    let claimed = Claimed {
        tasks: rounds.tasks,
        held_back: held_back || rounds.held_back,
    };
    Ok((claimed, rounds.last, found_at_cap))
}

/// A PostgreSQL claim's statements: the tasks it leases have a live lease, so each take
/// continues after the last without a key.
struct PgTake<'a, 'tx> {
    tx: &'a mut Transaction<'tx>,
    now_ns: i64,
    token: LeaseToken,
    until: i64,
    holder: Option<i64>,
}

impl TakeDue for PgTake<'_, '_> {
    /// Two statements: the leases are written first, then the tasks read in a statement of
    /// its own, whose snapshot sees any completion or put-off that a lease's write waited for
    /// (a completion deletes its lease and its task together): a task gone or put off meanwhile
    /// is not taken, and its new lease is deleted.
    fn take(&mut self, hook: &Candidate, want: usize) -> IResult<Vec<((i64, i64), TaskRow)>> {
        let leased: Vec<i64> = self
            .tx
            .query_typed(
                formatcp!(
                    "WITH due AS (
                    SELECT t.id, t.next_at, t.attempts FROM tasks t
                    WHERE t.hook_id = $1 AND t.state = {PENDING} AND t.next_at <= $2
                        AND {NOT_LEASED}
                    ORDER BY t.next_at, t.id
                    LIMIT $3)
                 INSERT INTO task_leases AS l (task_id, hook_id, due_at, lease, until, attempt,
                    holder)
                 SELECT id, $1, next_at, $4, $5, attempts + 1, $6 FROM due
                 ON CONFLICT (task_id) DO UPDATE SET due_at = EXCLUDED.due_at,
                    lease = EXCLUDED.lease, until = EXCLUDED.until, holder = EXCLUDED.holder,
                    attempt = GREATEST(l.attempt + 1, EXCLUDED.attempt)
                 WHERE l.until <= $2
                 RETURNING task_id"
                ),
                &[
                    (&hook.hook.hook_id, Type::INT8),
                    (&self.now_ns, Type::INT8),
                    (&i64::try_from(want).unwrap_or(i64::MAX), Type::INT8),
                    (self.token.as_uuid(), Type::UUID),
                    (&self.until, Type::INT8),
                    (&self.holder, Type::INT8),
                ],
            )?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        if leased.is_empty() {
            return Ok(Vec::new());
        }
        // An event stored since schema 14 has its payload packed (packed.rs): the body column
        // reads as empty and the last column, unpacked, takes its place.
        let rows = self.tx.query_typed(
            formatcp!(
                "SELECT t.id, l.attempt, t.redelivery, e.uuid, e.event, e.created_at,
                    COALESCE(t.body, e.payload, ''::bytea), t.next_at, e.traceparent,
                    CASE WHEN t.body IS NULL THEN e.payload_packed END
                 FROM task_leases l JOIN tasks t ON {TASK_OF_LEASE}
                    JOIN events e ON e.id = t.event_id
                 WHERE l.task_id = ANY($1) AND l.lease = $2"
            ),
            &[
                (&leased, Type::INT8_ARRAY),
                (self.token.as_uuid(), Type::UUID),
            ],
        )?;
        let mut taken = rows
            .iter()
            .map(|r| {
                let (key, mut task) = rows::claimed_task(r)?;
                if let Some(packed) = r.try_get::<_, Option<&[u8]>>(9)? {
                    task.body = Packed::Payload.unpack(packed)?;
                }
                Ok((key, task))
            })
            .collect::<IResult<Vec<_>>>()?;
        if taken.len() < leased.len() {
            let kept: HashSet<i64> = taken.iter().map(|(_, task)| task.task_id).collect();
            let gone: Vec<i64> = leased.into_iter().filter(|id| !kept.contains(id)).collect();
            self.tx.query_typed(
                "DELETE FROM task_leases WHERE task_id = ANY($1) AND lease = $2",
                &[
                    (&gone, Type::INT8_ARRAY),
                    (self.token.as_uuid(), Type::UUID),
                ],
            )?;
        }
        // Neither statement keeps an order: oldest due first, as asked.
        taken.sort_by_key(|(key, _)| *key);
        Ok(taken)
    }

    fn more_due(&mut self, hook: &Candidate) -> IResult<bool> {
        Ok(self.tx.query_typed(
            formatcp!(
                "SELECT EXISTS (SELECT 1 FROM tasks t
                    WHERE t.hook_id = $1 AND t.state = {PENDING} AND t.next_at <= $2
                        AND {NOT_LEASED}
                    ORDER BY t.next_at, t.id LIMIT 1)"
            ),
            &[(&hook.hook.hook_id, Type::INT8), (&self.now_ns, Type::INT8)],
        )?[0]
            .try_get::<_, bool>(0)?)
    }
}
