//! The PostgreSQL backend: the store's API over a small pool of connections to one database.
//!
//! Many processes on many machines may share the database: claims take due
//! tasks with `FOR UPDATE SKIP LOCKED` under the same leases as on SQLite,
//! migrations run under an advisory lock, and accepting events `NOTIFY`s
//! [`CHANNEL`] so idle workers ([`WorkListener`]) wake at once.

mod breakers;
mod claim;
mod defer;
mod event_ids;
mod hooks;
mod idempotency;
mod limit_notes;
mod listen;
mod log;
mod notices;
mod outbox;
mod packed;
mod process;
mod queue_test;
mod recover;
mod rotation;
mod schema;

use std::fmt;
use std::time::Duration;

use postgres::error::SqlState;
use postgres::{Client, Config, GenericClient, NoTls, Transaction};
use r2d2::Pool;
use r2d2_postgres::PostgresConnectionManager;
use time::OffsetDateTime;

pub(crate) use event_ids::matching as event_matching;
pub(crate) use listen::{Interrupt, WorkListener};
pub(crate) use process::SessionKeeper;
pub(crate) use schema::SCHEMA_VERSION;

use crate::backend::Namespaces;
use crate::error::{Engine, Error, IResult, Inner, Result};
use crate::key::{Cipher, SecretKey};
use crate::rows;
use crate::sql::to_ns;
use crate::sqlite::check_namespace;
use crate::types::Namespace;
use crate::validate;

/// The channel that accepted events (and redeliveries, retries) are announced on.
pub(crate) const CHANNEL: &str = "djinn_hooks_work";

/// Connections per `Store`. The worker makes its store calls from one thread and
/// `serve` from a few request threads, so a handful is plenty; more processes
/// bring their own.
const POOL_SIZE: u32 = 8;

/// How long connecting may take when the URL sets no `connect_timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a call waits for a free pooled connection.
const POOL_WAIT: Duration = Duration::from_secs(30);

/// How long a readiness check waits for a pooled connection: a probe answers within a few
/// seconds, so an unreachable database is reported, not waited on for [`POOL_WAIT`].
const REACHABLE_WAIT: Duration = Duration::from_secs(2);

/// A transaction that failed on a deadlock or a serialisation failure is run
/// again from the start, at most this many times.
const RETRIES: usize = 5;

type Manager = PostgresConnectionManager<NoTls>;

/// The store on a PostgreSQL database.
pub(crate) struct PgBackend {
    pool: Pool<Manager>,
    /// For the listener's own connection (LISTEN needs one of its own).
    config: Config,
    pub(crate) cipher: Cipher,
    /// The URL, password masked, for errors and `Debug`.
    url: String,
}

impl fmt::Debug for PgBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgBackend").field("url", &self.url).finish()
    }
}

/// Every part of the trait, each implemented in its area's file (`hooks.rs`, `outbox.rs`, ...).
impl crate::backend::Backend for PgBackend {}

impl PgBackend {
    /// Connects to the database at `url` (`postgres://user@host:port/db`) and
    /// brings its schema up to date.
    pub(crate) fn open(url: &str, key: SecretKey) -> Result<PgBackend> {
        let shown = redact(url);
        let connect_err = |source: postgres::Error| Error::Connect {
            url: shown.clone(),
            source: source.into(),
        };
        let mut config: Config = url.parse().map_err(connect_err)?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("djinn-hooks");
        }
        // One connection first: an unreachable server fails here, at once and clearly.
        let mut client = config.connect(NoTls).map_err(connect_err)?;
        schema::migrate(&mut client)?;
        drop(client);
        // No test query on each check-out (a round trip per call, a good part
        // of a claim's time): a connection found closed is dropped when it comes back,
        // and a call that meets a broken one fails once, as any call can.
        let pool = Pool::builder()
            .max_size(POOL_SIZE)
            .min_idle(Some(1))
            .test_on_check_out(false)
            .connection_timeout(POOL_WAIT)
            .build_unchecked(Manager::new(config.clone(), NoTls));
        Ok(PgBackend {
            pool,
            config,
            cipher: Cipher::new(&key),
            url: shown,
        })
    }

    /// Runs `f` in a transaction: committed if it returns `Ok`, rolled back
    /// otherwise. A deadlock or serialisation failure runs it again.
    pub(crate) fn write<T>(
        &self,
        operation: &'static str,
        f: impl FnMut(&mut Transaction<'_>) -> IResult<T>,
    ) -> Result<T> {
        self.transaction(operation, None, f)
    }

    /// [`write`](Self::write) for a claim, with two settings for this
    /// transaction only. It commits without waiting for the WAL flush
    /// (`synchronous_commit = off`), as on SQLite: a claim lost in a crash is
    /// an expired lease, and any later durable commit flushes the WAL up to and
    /// past it. And the planner may not sort or use bitmap scans: the claim
    /// must walk the due index in order and stop at its limit, and statistics
    /// lag behind a table that grows fast (with them it may read every due
    /// task and sort them, so a claim's cost grows with the backlog).
    pub(crate) fn claim_write<T>(
        &self,
        operation: &'static str,
        f: impl FnMut(&mut Transaction<'_>) -> IResult<T>,
    ) -> Result<T> {
        const CLAIM: &str = "SET LOCAL synchronous_commit = off;
            SET LOCAL enable_sort = off; SET LOCAL enable_bitmapscan = off";
        self.transaction(operation, Some(CLAIM), f)
    }

    /// Runs `f` in a transaction that first applies `settings` (`SET LOCAL`s).
    fn transaction<T>(
        &self,
        operation: &'static str,
        settings: Option<&str>,
        mut f: impl FnMut(&mut Transaction<'_>) -> IResult<T>,
    ) -> Result<T> {
        let _span = crate::tracing_span::enter(operation);
        let mut conn = self
            .pool
            .get()
            .map_err(|e| Inner::from(e).with(operation))?;
        let mut tries = 0;
        loop {
            let mut run = || -> IResult<T> {
                let mut tx = conn.transaction()?;
                if let Some(settings) = settings {
                    tx.batch_execute(settings)?;
                }
                let value = f(&mut tx)?;
                tx.commit()?;
                Ok(value)
            };
            match run() {
                Err(Inner::Pg(e)) if tries < RETRIES && retryable(&e.0) => tries += 1,
                result => return result.map_err(|e| e.with(operation)),
            }
        }
    }

    /// Runs `f` on a pooled connection, outside any explicit transaction.
    pub(crate) fn read<T>(
        &self,
        operation: &'static str,
        f: impl FnOnce(&mut Client) -> IResult<T>,
    ) -> Result<T> {
        let _span = crate::tracing_span::enter(operation);
        let mut conn = self
            .pool
            .get()
            .map_err(|e| Inner::from(e).with(operation))?;
        f(&mut conn).map_err(|e| e.with(operation))
    }

    /// Whether the database answers now: a pooled connection (waiting at most
    /// [`REACHABLE_WAIT`] for one) runs `SELECT 1`.
    pub(crate) fn reachable(&self) -> Result<()> {
        const OPERATION: &str = "checking the database";
        let mut conn = self
            .pool
            .get_timeout(REACHABLE_WAIT)
            .map_err(|e| Inner::from(e).with(OPERATION))?;
        conn.simple_query("SELECT 1")
            .map_err(|e| Inner::from(e).with(OPERATION))?;
        Ok(())
    }

    /// A listener on its own connection, woken when work is announced.
    pub(crate) fn work_listener(&self) -> Result<WorkListener> {
        WorkListener::connect(&self.config).map_err(|source| Error::Connect {
            url: self.url.clone(),
            source: source.into(),
        })
    }

    /// The liveness session of registered process `me` (`process.rs`), on a connection of its
    /// own, kept up by a thread of its own.
    pub(crate) fn liveness_session(
        &self,
        me: &crate::liveness::ProcessInfo,
    ) -> Result<std::sync::Arc<SessionKeeper>> {
        SessionKeeper::start(&self.config, me)
    }
}

impl Namespaces for PgBackend {
    fn check_reachable(&self) -> Result<()> {
        self.reachable()
    }

    fn ensure_namespace(&self, name: &str, now: OffsetDateTime) -> Result<Namespace> {
        check_namespace(name)?;
        self.write("creating a namespace", |tx| {
            let now = to_ns(now);
            let mut parent: Option<i64> = None;
            for prefix in validate::namespace_lineage(name) {
                tx.execute(
                    "INSERT INTO namespaces (name, parent_id, created_at) VALUES ($1, $2, $3)
                     ON CONFLICT (name) DO NOTHING",
                    &[&prefix, &parent, &now],
                )?;
                let id: i64 = tx
                    .query_one("SELECT id FROM namespaces WHERE name = $1", &[&prefix])?
                    .try_get(0)?;
                parent = Some(id);
            }
            let id = parent.expect("a namespace has at least two segments");
            let row = tx.query_one(
                "SELECT id, name, parent_id, created_at FROM namespaces WHERE id = $1",
                &[&id],
            )?;
            rows::namespace(&row)
        })
    }

    fn namespace(&self, name: &str) -> Result<Option<Namespace>> {
        self.read("reading a namespace", |conn| {
            conn.query_opt(
                "SELECT id, name, parent_id, created_at FROM namespaces WHERE name = $1",
                &[&name],
            )?
            .map(|r| rows::namespace(&r))
            .transpose()
        })
    }

    fn namespaces(&self) -> Result<Vec<Namespace>> {
        self.read("listing namespaces", |conn| {
            conn.query(
                "SELECT id, name, parent_id, created_at FROM namespaces ORDER BY name",
                &[],
            )?
            .iter()
            .map(rows::namespace)
            .collect()
        })
    }
}

/// The id of the namespace named `name`, or [`Error::NamespaceNotFound`].
pub(crate) fn namespace_id(conn: &mut impl GenericClient, name: &str) -> IResult<i64> {
    conn.query_opt("SELECT id FROM namespaces WHERE name = $1", &[&name])?
        .map(|r| r.try_get(0))
        .transpose()?
        .ok_or_else(|| {
            Inner::Store(Error::NamespaceNotFound {
                namespace: name.to_owned(),
            })
        })
}

/// Whether running the transaction again may succeed.
fn retryable(e: &Engine) -> bool {
    let Engine::Postgres(e) = e else {
        return false;
    };
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE
    )
}

/// `url` with its password (in the user info or a `password=` parameter)
/// replaced by `***`, fit for errors and logs.
pub(crate) fn redact(url: &str) -> String {
    let mut shown = url.to_owned();
    if let Some(scheme_end) = shown.find("://") {
        let rest = scheme_end + 3;
        let authority_end = shown[rest..]
            .find(['/', '?'])
            .map_or(shown.len(), |i| rest + i);
        if let Some(at) = shown[rest..authority_end].rfind('@') {
            let at = rest + at;
            if let Some(colon) = shown[rest..at].find(':') {
                shown.replace_range(rest + colon + 1..at, "***");
            }
        }
    }
    if let Some(start) = shown.find("password=") {
        let value = start + "password=".len();
        let end = shown[value..]
            .find(['&', ' '])
            .map_or(shown.len(), |i| value + i);
        shown.replace_range(value..end, "***");
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_masked_in_urls() {
        for (url, shown) in [
            (
                "postgres://alice:s3cret@db.example:5432/hooks",
                "postgres://alice:***@db.example:5432/hooks",
            ),
            (
                "postgres://alice@127.0.0.1/test",
                "postgres://alice@127.0.0.1/test",
            ),
            (
                "postgresql://db/hooks?user=a&password=s3cret&sslmode=disable",
                "postgresql://db/hooks?user=a&password=***&sslmode=disable",
            ),
            (
                "host=db password=s3cret user=a",
                "host=db password=*** user=a",
            ),
        ] {
            assert_eq!(redact(url), shown);
        }
    }
}
