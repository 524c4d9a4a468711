//! The `processes` table and the claims its processes hold, on PostgreSQL, and the sign of life
//! of a registered process: a session-level advisory lock (the key is its [`ProcessId`]) held by
//! a connection of its own, [`LivenessSession`], for as long as the process lives. The server
//! releases it when that connection ends, which a dead process's does at once (its kernel
//! closes the socket) and a vanished host's within about half a minute (the session's TCP
//! keepalives, set short here). Another process's claim tries the lock: whoever gets it knows
//! the holder is gone, and takes its claims back in the same transaction.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use const_format::formatcp;
use djinn_hook_outbox::{Release, Shutdown};
use postgres::types::Type;
use postgres::{Client, Config, NoTls};
use time::OffsetDateTime;
use uuid::Uuid;

use super::PgBackend;
use super::claim::TASK_OF_LEASE;
use crate::backend::Processes;
use crate::error::{Error, IResult, Result};
use crate::liveness::{LOOK_EVERY, ProcessId, ProcessInfo, TakenBack};
use crate::rows;
use crate::sql::to_ns;

/// Ends the live leases of the holders `$1` at `$2` (unlogged rows, indexed by holder): their
/// tasks, whose `next_at` a claim leaves as it was, are due again at once. The rows stay, ended,
/// so the attempt each counted still counts: the next claim of the task counts the one after.
const END_LEASES_OF: &str =
    "UPDATE task_leases SET until = $2 WHERE holder = ANY($1) AND until > $2 RETURNING holder";

/// The server's TCP keepalives on the liveness session: idle time before the first probe, the
/// time between probes, and how many may go unanswered. A host that vanished (power cut,
/// network gone) has its session dropped, and its lock released, after about
/// `IDLE + INTERVAL × COUNT` = 25 s.
const KEEPALIVE_IDLE_S: u32 = 10;
const KEEPALIVE_INTERVAL_S: u32 = 5;
const KEEPALIVE_COUNT: u32 = 3;

/// How long a look at the liveness session may take before it is thought broken.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// How long after its own session was renewed a process takes nothing back: a session usually
/// breaks because the server restarted, and then every process's lock went with it; each
/// process's keeper takes its lock again within a second or two, and until then they would all
/// look dead to each other.
const RENEW_GRACE: Duration = Duration::from_secs(5);

/// Keeps a registered process's [`LivenessSession`] up: a thread of its own looks at it every
/// [`LOOK_EVERY`] and, if it broke (its lock then went with it), connects it again, so that a
/// process busy with long deliveries, which claims nothing for a while, is not thought dead.
pub(crate) struct SessionKeeper {
    config: Config,
    info: ProcessInfo,
    state: Mutex<KeeperState>,
    stopped: Shutdown,
}

struct KeeperState {
    /// `None` while broken, or once stopped.
    session: Option<LivenessSession>,
    /// When the session was last connected again after it broke.
    renewed_at: Option<Instant>,
}

impl SessionKeeper {
    /// Opens `me`'s session and starts the thread that keeps it up until [`stop`](Self::stop).
    pub(crate) fn start(config: &Config, me: &ProcessInfo) -> Result<Arc<SessionKeeper>> {
        let session = LivenessSession::open(config, me)?;
        let keeper = Arc::new(SessionKeeper {
            config: config.clone(),
            info: me.clone(),
            state: Mutex::new(KeeperState {
                session: Some(session),
                renewed_at: None,
            }),
            stopped: Shutdown::new(),
        });
        let kept = Arc::clone(&keeper);
        // Without the thread (it could not start), the session is still looked at by this
        // process's claims (`may_judge`).
        let _ = thread::Builder::new()
            .name("djinn-liveness".to_owned())
            .spawn(move || {
                while !kept.stopped.wait_timeout(LOOK_EVERY) {
                    kept.repair();
                }
            });
        Ok(keeper)
    }

    /// Connects the session again if it broke (or is not up); `true` if it was already up.
    fn repair(&self) -> bool {
        let mut state = self.lock();
        if self.stopped.is_stopped() {
            return true;
        }
        if state.session.as_mut().is_some_and(LivenessSession::works) {
            return true;
        }
        state.session = LivenessSession::open(&self.config, &self.info).ok();
        state.renewed_at = Some(Instant::now());
        false
    }

    /// Whether this process may judge others dead now: its own session is up and was not just
    /// renewed ([`RENEW_GRACE`]).
    pub(crate) fn may_judge(&self) -> bool {
        if !self.repair() {
            return false;
        }
        let state = self.lock();
        state.session.is_some()
            && state
                .renewed_at
                .is_none_or(|at| at.elapsed() >= RENEW_GRACE)
    }

    /// Ends the session (its lock goes with it) and the thread (at once).
    pub(crate) fn stop(&self) {
        self.stopped.stop();
        self.lock().session = None;
    }

    fn lock(&self) -> MutexGuard<'_, KeeperState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The connection that holds a registered process's advisory lock.
struct LivenessSession {
    client: Client,
}

impl LivenessSession {
    /// Connects, takes `me`'s advisory lock and (only then, so that no one sees it registered
    /// and unlocked) registers `me` (again, after a lost connection: kept if still there).
    fn open(config: &Config, me: &ProcessInfo) -> Result<LivenessSession> {
        let mut config = config.clone();
        config
            .application_name("djinn-hooks liveness")
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(KEEPALIVE_IDLE_S.into()))
            .keepalives_interval(Duration::from_secs(KEEPALIVE_INTERVAL_S.into()))
            .keepalives_retries(KEEPALIVE_COUNT);
        let failed = |operation| {
            move |source: postgres::Error| Error::Database {
                operation,
                source: source.into(),
            }
        };
        let mut client = config
            .connect(NoTls)
            .map_err(failed("connecting the liveness session"))?;
        client
            .batch_execute(&format!(
                "SET tcp_keepalives_idle = {KEEPALIVE_IDLE_S};
                 SET tcp_keepalives_interval = {KEEPALIVE_INTERVAL_S};
                 SET tcp_keepalives_count = {KEEPALIVE_COUNT};"
            ))
            .map_err(failed("setting the liveness session's keepalives"))?;
        client
            .execute("SELECT pg_advisory_lock($1)", &[&me.id.as_i64()])
            .map_err(failed("taking this process's advisory lock"))?;
        client
            .execute(
                "INSERT INTO processes (id, pid, host, started_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (id) DO NOTHING",
                &[
                    &me.id.as_i64(),
                    &i64::from(me.pid),
                    &me.host,
                    &to_ns(me.started_at),
                ],
            )
            .map_err(failed("registering this process"))?;
        Ok(LivenessSession { client })
    }

    /// Whether the connection still works (one round trip, at most `CHECK_TIMEOUT`): if not,
    /// its lock went with it.
    fn works(&mut self) -> bool {
        self.client.is_valid(CHECK_TIMEOUT).is_ok()
    }
}

impl PgBackend {
    /// Takes back the claims of every registered process other than `me` whose advisory lock
    /// is free (it is gone), and removes them, in one transaction: each is locked by this
    /// transaction as it is found (`pg_try_advisory_xact_lock`), so two processes looking at
    /// once never both take one back, and a live one's lock, held by its session, is never
    /// got.
    pub(crate) fn take_back_dead(
        &self,
        me: ProcessId,
        now: OffsetDateTime,
    ) -> Result<Vec<TakenBack>> {
        self.claim_write("taking back the claims of dead processes", |tx| {
            let dead: Vec<ProcessInfo> = tx
                .query_typed(
                    "DELETE FROM processes WHERE id <> $1 AND pg_try_advisory_xact_lock(id)
                     RETURNING id, pid, host, started_at",
                    &[(&me.as_i64(), Type::INT8)],
                )?
                .iter()
                .map(rows::process)
                .collect::<IResult<_>>()?;
            if dead.is_empty() {
                return Ok(Vec::new());
            }
            let ids: Vec<i64> = dead.iter().map(|p| p.id.as_i64()).collect();
            let holders: Vec<i64> = tx
                .query_typed(
                    END_LEASES_OF,
                    &[(&ids, Type::INT8_ARRAY), (&to_ns(now), Type::INT8)],
                )?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<Result<_, _>>()?;
            Ok(dead
                .into_iter()
                .map(|process| {
                    let tasks = holders
                        .iter()
                        .filter(|&&h| h == process.id.as_i64())
                        .count() as u64;
                    TakenBack { process, tasks }
                })
                .collect())
        })
    }
}

impl Processes for PgBackend {
    /// As SQLite's `retire`.
    fn retire(&self, me: ProcessId, now: OffsetDateTime) -> Result<u64> {
        self.write("handing back this process's claims", |tx| {
            let ids = vec![me.as_i64()];
            let n = tx.execute(END_LEASES_OF, &[&ids, &to_ns(now)])?;
            tx.execute("DELETE FROM processes WHERE id = $1", &[&me.as_i64()])?;
            Ok(n)
        })
    }

    /// As SQLite's `release`.
    fn release(&self, tasks: &[Release], _now: OffsetDateTime) -> Result<usize> {
        self.claim_write("handing back claimed tasks", |tx| {
            // Ending the lease is all: the attempt it counted is not the task's, and the task,
            // its due time unchanged by the claim, is due again at once (first in line).
            let ids: Vec<i64> = tasks.iter().map(|t| t.task_id).collect();
            let leases: Vec<Uuid> = tasks.iter().map(|t| *t.lease.as_uuid()).collect();
            let n = tx.execute(
                formatcp!(
                    "DELETE FROM task_leases l
                     USING unnest($1::bigint[], $2::uuid[]) AS r (id, lease), tasks t
                     WHERE l.task_id = r.id AND l.lease = r.lease AND {TASK_OF_LEASE}"
                ),
                &[&ids, &leases],
            )?;
            Ok(n as usize)
        })
    }
}
