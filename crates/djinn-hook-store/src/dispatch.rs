//! The public [`Store`]: one API over either backend, SQLite (`store.rs` and its
//! siblings) or PostgreSQL (`pg/`); each method hands the call to the one it holds.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use djinn_hook_outbox::{
    BreakerOpening, ClaimRequest, Claimed, Completion, Deferral, Destination, LimitNote, Outbox,
    OutboxError, ProbeTurn, PutOff, Release, SharedBreaker, Shutdown, Task,
};
use djinn_hook_payload::EventType;
use time::OffsetDateTime;

use crate::at_cap::AtCap;
use crate::backend::Backend;
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::idempotency::check_keys;
use crate::key::SecretKey;
use crate::liveness::Process;
#[cfg(feature = "postgres")]
use crate::pg::{self, PgBackend};
use crate::sqlite::SqliteBackend;
use crate::types::{
    Accepted, Completed, Counts, Delivery, DeliveryFilter, LastResponse, LimitsUpdate, Namespace,
    NewEvent, NewWebhook, Page, Paged, Pruned, Recovery, SuccessRate, Webhook, WebhookUpdate,
};

/// The webhook store: namespaces, webhooks, the durable outbox of events and
/// delivery tasks, and the delivery log, in one SQLite file or one PostgreSQL
/// database (see the crate docs for what each promises).
///
/// `Send + Sync`: share it (e.g. in an `Arc`) between threads. On SQLite it
/// holds a writer and a reader connection; on PostgreSQL a small pool. Other
/// processes may use the same file or database at the same time.
#[derive(Debug)]
pub struct Store {
    database: Database,
    /// The webhook this `Store`'s last claim served last: the next claim starts after it
    /// (round-robin across webhooks).
    claim_cursor: AtomicI64,
    /// The webhooks this `Store`'s claims found at their cap: its next claims pass over them.
    at_cap: AtCap,
    /// Where this store reads the time ([`Store::with_clock`]).
    clock: Arc<dyn Clock>,
    /// This process, once registered ([`Store::register_process`]).
    process: Mutex<Option<Arc<Process>>>,
    /// Tasks taken back from dead processes by this `Store`.
    taken_back: AtomicU64,
    /// Attempts this `Store` recorded after their task's lease was lost.
    stale_completions: AtomicU64,
    /// How long a breaker stays open before the operator is told, in ms; 0: never
    /// ([`Store::set_breaker_notice_after`]).
    breaker_notice_after_ms: AtomicU64,
}

/// The backends this build has: SQLite always, PostgreSQL with the `postgres` feature. What is
/// common to both is reached through [`Database::backend`]; a match on this enum is only for
/// what one backend alone has (a file path, a listener, how a process shows it is alive).
#[derive(Debug)]
enum Database {
    Sqlite(SqliteBackend),
    #[cfg(feature = "postgres")]
    Postgres(PgBackend),
}

impl Database {
    /// The backend, whichever it is: the one place a `Store` method picks it.
    fn backend(&self) -> &dyn Backend {
        match self {
            Database::Sqlite(s) => s,
            #[cfg(feature = "postgres")]
            Database::Postgres(p) => p,
        }
    }
}

// The public methods of process liveness, in a file of their own.
mod liveness;
// The operator's notification webhook, in a file of its own.
mod notifications;

pub use notifications::NotificationTarget;

impl Store {
    /// The backend this store holds.
    fn backend(&self) -> &dyn Backend {
        self.database.backend()
    }

    /// This store reading the time from `clock` instead of the system's: what every method
    /// that does not take a time uses as "now" (see the `clock` module). For tests, with a
    /// [`ManualClock`](crate::ManualClock): time passes when the test moves it.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Store {
        self.clock = clock;
        self
    }

    /// The time now, by this store's clock.
    pub fn now(&self) -> OffsetDateTime {
        self.clock.now_utc()
    }

    /// `hook` as shown now (an ended rotation overlap hidden).
    fn shown(&self, hook: Webhook) -> Webhook {
        crate::rotation::shown_at(hook, self.now())
    }

    fn over(database: Database) -> Store {
        Store {
            database,
            claim_cursor: AtomicI64::new(0),
            at_cap: AtCap::default(),
            clock: Arc::new(SystemClock),
            process: Mutex::new(None),
            taken_back: AtomicU64::new(0),
            stale_completions: AtomicU64::new(0),
            breaker_notice_after_ms: AtomicU64::new(0),
        }
    }

    /// Opens (creating if missing) the SQLite database file at `path` and
    /// brings its schema up to date. `key` encrypts webhook secrets; a wrong key
    /// is only noticed when a secret is decrypted ([`Error::WrongSecretKey`]).
    pub fn open(path: impl AsRef<Path>, key: SecretKey) -> Result<Store> {
        Ok(Store::over(Database::Sqlite(SqliteBackend::open(
            path, key,
        )?)))
    }

    /// Connects to a PostgreSQL database (`postgres://user@host:port/db`; any
    /// URL or key-value string the `postgres` client accepts) and brings its
    /// schema up to date. Every process sharing the database must use the same
    /// `key`. An unreachable server is [`Error::Connect`].
    #[cfg(feature = "postgres")]
    pub fn open_postgres(url: &str, key: SecretKey) -> Result<Store> {
        Ok(Store::over(Database::Postgres(PgBackend::open(url, key)?)))
    }

    /// `Store::open_postgres` for a `postgres://` or `postgresql://` URL,
    /// [`open`](Self::open) for anything else (a file path). A PostgreSQL URL given to a build
    /// without the `postgres` feature is [`Error::NotBuilt`].
    pub fn open_url(url_or_path: &str, key: SecretKey) -> Result<Store> {
        if is_postgres_url(url_or_path) {
            #[cfg(not(feature = "postgres"))]
            return Err(postgres_not_built());
            #[cfg(feature = "postgres")]
            return Store::open_postgres(url_or_path, key);
        }
        Store::open(url_or_path, key)
    }

    /// Opens the store at `db` (a file path, or a `postgres://` URL) with the key from
    /// `key_file`, creating a SQLite file and its key file on first use: the convention every
    /// process of one install follows. A SQLite file's key file is `<db>.key` unless
    /// `key_file` names another ([`SecretKey::file_beside`]); a PostgreSQL database needs
    /// `key_file` ([`Error::KeyFileRequired`]), the same one in every process sharing it. The
    /// key file is made and checked by [`SecretKey::load_or_create`] (0600, refused if others
    /// may read it). A PostgreSQL URL given to a build without the `postgres` feature is
    /// [`Error::NotBuilt`].
    pub fn open_with_key_file(db: &Path, key_file: Option<&Path>) -> Result<Store> {
        if let Some(url) = db.to_str().filter(|db| is_postgres_url(db)) {
            // Said before any key file is made for a database this build cannot open.
            #[cfg(not(feature = "postgres"))]
            {
                let _ = url;
                return Err(postgres_not_built());
            }
            #[cfg(feature = "postgres")]
            {
                let key_file = key_file.ok_or(Error::KeyFileRequired)?;
                return Store::open_postgres(url, SecretKey::load_or_create(key_file)?);
            }
        }
        let key_file = key_file.map_or_else(|| SecretKey::file_beside(db), Path::to_owned);
        Store::open(db, SecretKey::load_or_create(&key_file)?)
    }

    /// An in-memory SQLite store (one connection, gone when dropped), for tests
    /// and tries; not durable, and not shared with other `Store`s.
    pub fn open_in_memory(key: SecretKey) -> Result<Store> {
        Ok(Store::over(Database::Sqlite(
            SqliteBackend::open_in_memory(key)?,
        )))
    }

    /// The SQLite database file; `None` for an in-memory store or PostgreSQL.
    pub fn path(&self) -> Option<&Path> {
        match &self.database {
            Database::Sqlite(s) => s.path(),
            #[cfg(feature = "postgres")]
            Database::Postgres(_) => None,
        }
    }

    /// Whether this store is on PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        match self.database {
            Database::Sqlite(_) => false,
            #[cfg(feature = "postgres")]
            Database::Postgres(_) => true,
        }
    }

    /// The SQLite schema version this build writes (`PRAGMA user_version`).
    pub fn schema_version() -> i64 {
        SqliteBackend::schema_version()
    }

    /// The PostgreSQL schema version this build writes (the `schema_version`
    /// table); numbered on its own, its version 1 holds SQLite's 1 to 3, its 2 SQLite's 4, its 3
    /// SQLite's 5, its 4 SQLite's 6, its 5 SQLite's 7, its 6 to 8 SQLite's 8 to 10.
    #[cfg(feature = "postgres")]
    pub fn postgres_schema_version() -> i64 {
        pg::SCHEMA_VERSION
    }

    /// A listener that blocks until new work is announced, so an idle worker
    /// wakes at once instead of at its next poll: on PostgreSQL a connection
    /// of its own that `LISTEN`s for what [`accept_events`](Self::accept_events),
    /// [`redeliver`](Self::redeliver) and [`retry_now`](Self::retry_now) announce
    /// from any process. `None` on SQLite, which cannot signal across processes
    /// (a worker in the same process as the emitter is woken directly).
    pub fn work_listener(&self) -> Result<Option<WorkListener>> {
        match &self.database {
            Database::Sqlite(_) => Ok(None),
            #[cfg(feature = "postgres")]
            Database::Postgres(s) => Ok(Some(WorkListener(s.work_listener()?))),
        }
    }

    /// Calls `wake` each time work is announced on this database (what
    /// [`work_listener`](Self::work_listener) hears) until `stop` is set, and returns the
    /// moment it is (the wait is interrupted: the stop is announced to the listener's
    /// connection, on a channel of its own, from the thread that stops). A listener that fails
    /// is reported to `failed` and connected again after
    /// [`RECONNECT_DELAY`](Self::RECONNECT_DELAY), and `wake` is called then, in case something
    /// was announced while it was down. Returns at once on SQLite, which announces nothing
    /// across processes.
    ///
    /// For a long-running worker in a thread beside it: an event accepted by any process
    /// starts being delivered at once, not at the worker's next poll.
    pub fn wake_on_new_work(
        &self,
        stop: &Shutdown,
        wake: impl Fn(),
        mut failed: impl FnMut(&Error),
    ) {
        let interrupt = Arc::new(InterruptOnStop::default());
        let _on_stop = stop.on_stop(std::task::Waker::from(Arc::clone(&interrupt)));
        let mut listener = None;
        while !stop.is_stopped() {
            let Some(current) = listener.as_mut() else {
                match self.work_listener() {
                    Ok(None) => return,
                    Ok(Some(fresh)) => {
                        interrupt.listening_with(&fresh);
                        listener = Some(fresh);
                    }
                    Err(err) => {
                        failed(&err);
                        stop.wait_timeout(Self::RECONNECT_DELAY);
                    }
                }
                // Looked at again after the listener is set: a stop set before then found
                // nothing to interrupt.
                continue;
            };
            match current.wait(LOST_INTERRUPT_BOUND) {
                Ok(true) => wake(),
                Ok(false) => {}
                Err(err) => {
                    failed(&err);
                    listener = None;
                    stop.wait_timeout(Self::RECONNECT_DELAY);
                    wake();
                }
            }
        }
    }

    /// How long [`wake_on_new_work`](Self::wake_on_new_work) waits before connecting a
    /// listener again after one failed.
    pub const RECONNECT_DELAY: Duration = Duration::from_millis(250);

    /// Returns the namespace named `name` (`owner/path`), creating it and any
    /// missing ancestors (`owner/a` for `owner/a/b`) if needed. Names under `_djinn-hooks`
    /// are reserved ([`NOTIFICATIONS_NAMESPACE`](crate::NOTIFICATIONS_NAMESPACE)):
    /// [`Error::InvalidNamespace`].
    pub fn ensure_namespace(&self, name: &str) -> Result<Namespace> {
        crate::notify::refuse_reserved(name)?;
        self.backend().ensure_namespace(name, self.now())
    }

    /// The namespace named `name`, if it exists.
    pub fn namespace(&self, name: &str) -> Result<Option<Namespace>> {
        self.backend().namespace(name)
    }

    /// Every namespace, by name.
    pub fn namespaces(&self) -> Result<Vec<Namespace>> {
        self.backend().namespaces()
    }

    /// Creates a webhook after validating it ([`Error::Invalid`] lists every
    /// bad field). The namespace must exist ([`Error::NamespaceNotFound`]) and not be
    /// reserved ([`Error::InvalidNamespace`]; see [`Store::set_notification_webhook`]).
    pub fn create_webhook(&self, new: NewWebhook) -> Result<Webhook> {
        crate::notify::refuse_reserved(&new.namespace)?;
        self.backend()
            .create_webhook(new, self.now())
            .map(|h| self.shown(h))
    }

    /// The webhook with this id, if any.
    pub fn webhook(&self, id: i64) -> Result<Option<Webhook>> {
        Ok(self.backend().webhook(id)?.map(|h| self.shown(h)))
    }

    /// The webhooks of a namespace (`owner/path`), by id; empty if the namespace
    /// does not exist.
    pub fn webhooks(&self, namespace: &str) -> Result<Vec<Webhook>> {
        Ok(self
            .backend()
            .webhooks(namespace)?
            .into_iter()
            .map(|h| self.shown(h))
            .collect())
    }

    /// Every webhook, by id.
    pub fn all_webhooks(&self) -> Result<Vec<Webhook>> {
        Ok(self
            .backend()
            .all_webhooks()?
            .into_iter()
            .map(|h| self.shown(h))
            .collect())
    }

    /// Updates the given fields of a webhook, validating the result as on
    /// create. Re-enabling (`active: Some(true)`) clears `disabled_reason`,
    /// `disabled_at` and `failing_since`; deactivating marks its pending tasks
    /// failed (revive them with [`Store::retry_now`]).
    pub fn update_webhook(&self, id: i64, update: WebhookUpdate) -> Result<Webhook> {
        self.backend()
            .update_webhook(id, update, self.now())
            .map(|h| self.shown(h))
    }

    /// [`Store::update_webhook`] and a change of its delivery limits, in one transaction: all
    /// of it is validated first, and nothing changes if any of it is invalid.
    pub fn update_webhook_with(
        &self,
        id: i64,
        update: WebhookUpdate,
        limits: LimitsUpdate,
    ) -> Result<Webhook> {
        self.backend()
            .update_webhook_with(id, update, limits, self.now())
            .map(|h| self.shown(h))
    }

    /// Changes a webhook's own delivery limits (validated as on create; [`Error::Invalid`]
    /// names the bad field). Takes effect at the worker's next claim of its tasks.
    pub fn update_webhook_limits(&self, id: i64, limits: LimitsUpdate) -> Result<Webhook> {
        self.backend()
            .update_webhook_limits(id, limits, self.now())
            .map(|h| self.shown(h))
    }

    /// Rotates a webhook's signing secret: `secret` signs its deliveries from now on, and the
    /// current secret is still signed with until `overlap` from now (both signatures are sent: a
    /// claimed task's request carries `previous_secret`), then ignored and deleted by the next
    /// prune. A rotation during an overlap drops the older previous secret: at most two are signed
    /// with. A webhook without a secret gets its first one, with nothing to overlap; a zero overlap
    /// replaces the secret at once.
    ///
    /// An empty secret or an overlap over [`MAX_ROTATION_OVERLAP`](crate::MAX_ROTATION_OVERLAP)
    /// is [`Error::Invalid`]; an unknown webhook [`Error::WebhookNotFound`].
    pub fn rotate_secret(&self, id: i64, secret: &str, overlap: Duration) -> Result<Webhook> {
        crate::rotation::check(secret, overlap)?;
        let until = crate::rotation::overlap_end(self.now(), overlap);
        self.backend()
            .rotate_secret(id, secret, until)
            .map(|h| self.shown(h))
    }

    /// Deletes a webhook with its tasks and its delivery log.
    pub fn delete_webhook(&self, id: i64) -> Result<()> {
        self.backend().delete_webhook(id)
    }

    /// Accepts one event: stores it and queues one task per active webhook of
    /// its namespace that subscribes to its type, in one durable transaction.
    ///
    /// The one rule for unknown namespaces, for every intake (`emit`, `POST
    /// /n/{ns}/-/events`): a namespace comes into being with its first webhook
    /// ([`Store::create_webhook`] after [`Store::ensure_namespace`]), never with an
    /// event, so an event for a namespace nobody created is [`Error::NamespaceNotFound`]
    /// (naming it) and stores nothing: a mistyped namespace fails loudly rather than
    /// storing events no webhook will ever see. A namespace that exists but has no
    /// matching webhook accepts the event with `matched: 0`. An event for a reserved namespace
    /// (`_djinn-hooks/…`) is [`Error::InvalidNamespace`]. The event's
    /// [`traceparent`](NewEvent::traceparent) is stored with it and handed to each of its
    /// deliveries.
    ///
    /// An event with an idempotency key ([`NewEvent::with_idempotency_key`]) whose key is
    /// stored in its namespace, its window not over, is answered as the first time
    /// ([`Accepted::replayed`]) and stores nothing, if its type and payload are the same;
    /// else it is [`Error::IdempotencyConflict`]. The key is stored in the event's
    /// transaction, and the check and the write are one step for every process on the file
    /// or database: stores racing with one key store one event. A key that is not 1 to 255
    /// printable ASCII characters is [`Error::InvalidIdempotencyKey`].
    pub fn accept_event(&self, event: NewEvent) -> Result<Accepted> {
        crate::notify::refuse_reserved(&event.namespace)?;
        check_keys(std::slice::from_ref(&event))?;
        self.backend().accept_event(event, self.now())
    }

    /// Accepts many events in one transaction (group commit). All or nothing:
    /// if one fails (e.g. an unknown namespace, as in [`Store::accept_event`], or an
    /// idempotency key's conflict, whose error names its place in `events`) none is stored.
    /// Events with one key in one call: the later ones are answered as replays of the first
    /// (or refused as a conflict), as if sent after it.
    pub fn accept_events(&self, events: Vec<NewEvent>) -> Result<Vec<Accepted>> {
        for event in &events {
            crate::notify::refuse_reserved(&event.namespace)?;
        }
        check_keys(&events)?;
        self.backend().accept_events(events, self.now())
    }

    /// Leases up to `limit` due tasks, no webhook capped: [`Store::claim`] with
    /// [`ClaimRequest::uncapped`].
    pub fn claim_due(
        &self,
        now: OffsetDateTime,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Task>> {
        Ok(self
            .claim(now, &ClaimRequest::uncapped(limit, lease))?
            .tasks)
    }

    /// Leases up to `claim.limit` due tasks (due at or before `now`, not leased or with an
    /// expired lease, of an active webhook) until `now + claim.lease`.
    ///
    /// **Fair across webhooks**: the webhooks with due tasks share the claim round-robin (each
    /// its oldest due first), starting after the webhook this `Store`'s previous claim served
    /// last, so one webhook's backlog never fills a claim while another's tasks wait.
    /// **Capped per webhook**: a webhook holding `max_in_flight × leases_per_slot` live leases
    /// (its own `max_in_flight`, else the claim's) gets no more, counting the leases of every
    /// worker on the file or database; [`Claimed::held_back`] says whether that left due tasks
    /// behind. A webhook found at its cap is passed over by this `Store`'s next claims (its
    /// leases not counted again) until this `Store` completes one of its tasks, puts off or
    /// hands back any task, or for half a second by `now` (leases that run out or that other
    /// stores end).
    ///
    /// Atomic: two workers (threads, `Store`s or processes) never get the same task; a crashed
    /// worker's tasks come back when the lease runs out, or at once if it was a registered
    /// process ([`Store::register_process`]): the claims of a registered store carry its
    /// process, and look for dead processes first (once a second at most,
    /// [`Store::take_back_from_dead`]). Each claim counts as an attempt
    /// (the request's `attempt`) until [`Store::put_off`] takes it back. Not durable on
    /// return: a claim lost in a crash is an expired lease.
    pub fn claim(&self, now: OffsetDateTime, claim: &ClaimRequest) -> Result<Claimed> {
        if claim.limit == 0 {
            return Ok(Claimed {
                tasks: Vec::new(),
                held_back: false,
            });
        }
        let process = self.process();
        if let Some(process) = &process
            && process.look_due(Instant::now())
            && let Err(err) = self.take_back_from(process)
        {
            // The lease stays the outer bound: a failed look delays a take-back, not the claim.
            (process.report)(crate::liveness::LivenessEvent::LookFailed(&err));
        }
        let holder = process.map(|p| p.info.id);
        let after = self.claim_cursor.load(Ordering::Relaxed);
        let skip = self.at_cap.skip(now, claim);
        let (claimed, last, at_cap) =
            self.backend()
                .claim(now, claim, after, holder, &skip.hooks)?;
        self.at_cap.found(&skip, now, claim, &at_cap);
        if let Some(last) = last {
            self.claim_cursor.store(last, Ordering::Relaxed);
        }
        Ok(claimed)
    }

    /// Puts claimed tasks back without an attempt (an open circuit breaker holds their
    /// receiver): each is due again at its `until`, its lease dropped and its claim no
    /// longer counted as an attempt, so the retry schedule is not used up; its webhook records
    /// the breaker ([`Webhook::breaker`]). A task whose lease is no longer current is left
    /// alone. Returns how many were put off. Not durable on return, like a claim (it undoes
    /// one): lost in a crash, the tasks come back when their leases run out.
    pub fn put_off(&self, put_off: &[PutOff]) -> Result<usize> {
        if put_off.is_empty() {
            return Ok(0);
        }
        let n = self.backend().put_off(put_off)?;
        self.at_cap.forget_all();
        Ok(n)
    }

    /// Records that the circuit breaker of `destination` closed: its shared breaker is removed
    /// (every process delivers to it again), and the webhooks it held no longer show it. Not
    /// durable on return, like a claim: lost in a crash, the breaker stays open until its next
    /// probe closes it.
    pub fn breaker_closed(&self, destination: &str) -> Result<()> {
        self.backend().breaker_closed(destination)
    }

    /// Records breakers a worker opened, shared by every process on the file or database (a
    /// row per destination). A first opening ([`BreakerOpening::after_probe`] false) leaves a
    /// breaker already recorded as it is: another process opened it first, and its period
    /// stands. An opening after a failed probe replaces it (its probe ended). Not durable on
    /// return, like a claim.
    ///
    /// A breaker reopened after a failed probe whose first opening is longer ago than
    /// [`Store::set_breaker_notice_after`] queues a `breaker.open` notification, once per run
    /// of openings, in the same transaction.
    pub fn breaker_opened(&self, openings: &[BreakerOpening]) -> Result<()> {
        if openings.is_empty() {
            return Ok(());
        }
        let notice_after = match self.breaker_notice_after_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(Duration::from_millis(ms)),
        };
        self.backend()
            .breaker_opened(openings, notice_after, self.now())
    }

    /// Every shared breaker (open, or probing), by destination.
    pub fn open_breakers(&self) -> Result<Vec<SharedBreaker>> {
        self.backend().open_breakers()
    }

    /// Takes the probe of `destination`'s breaker at `now`, if its open period has ended and
    /// no probe is out (none taken, or taken until a time before `now`): atomic, so of many
    /// processes asking, one gets [`ProbeTurn::Granted`], and the probe is theirs until
    /// `until`. Otherwise [`ProbeTurn::Held`] with the breaker as it stands, or
    /// [`ProbeTurn::Closed`] if none is open. Not durable on return, like a claim.
    pub fn take_probe(
        &self,
        destination: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<ProbeTurn> {
        self.backend().take_probe(destination, now, until)
    }

    /// Puts off every due task of each webhook until its deferral's `until` (those not leased,
    /// or whose lease ran out, and due before then), without an attempt: nothing is counted or
    /// recorded. Returns how many tasks were put off. Not durable on return, like a claim.
    pub fn defer(&self, now: OffsetDateTime, deferrals: &[Deferral]) -> Result<usize> {
        if deferrals.is_empty() {
            return Ok(0);
        }
        self.backend().defer(now, deferrals)
    }

    /// Records webhooks' adaptive delivery limits as a worker changed them (shown as
    /// [`Webhook::delivery_limit`](crate::Webhook::delivery_limit)). Not durable on return (it
    /// is shown, not relied on).
    pub fn limits_changed(&self, notes: &[LimitNote]) -> Result<()> {
        if notes.is_empty() {
            return Ok(());
        }
        self.backend().limits_changed(notes)
    }

    /// Records attempts and applies their outcomes, all in one transaction
    /// (group commit). Each attempt is always recorded, even if its lease was
    /// lost; the outcome is applied to the task only while the lease token
    /// still matches. The webhook's `failing_since` is set on a failed attempt
    /// (if unset) and cleared on success, and the webhook is disabled if asked.
    pub fn complete(&self, completions: &[Completion]) -> Result<Vec<Completed>> {
        if completions.is_empty() {
            return Ok(Vec::new());
        }
        let completed = self.backend().complete(completions, self.now())?;
        self.at_cap
            .freed(completions.iter().map(|c| c.attempt.hook_id));
        let stale = completed
            .iter()
            .filter(|c| c.delivery_id.is_some() && !c.lease_held)
            .count();
        self.stale_completions
            .fetch_add(stale as u64, Ordering::Relaxed);
        Ok(completed)
    }

    /// Hands back claimed tasks that will not be attempted (a worker stopping): each is due
    /// again at once, its lease dropped and its claim no longer counted as an attempt. A task
    /// whose lease is no longer current is left alone. Returns how many were handed back. Not
    /// durable on return, like a claim (it undoes one).
    pub fn release(&self, tasks: &[Release]) -> Result<usize> {
        if tasks.is_empty() {
            return Ok(0);
        }
        let released = self.backend().release(tasks, self.now())?;
        self.at_cap.forget_all();
        Ok(released)
    }

    /// [`Store::complete`] for one attempt.
    pub fn complete_one(&self, completion: &Completion) -> Result<Completed> {
        Ok(self.complete(std::slice::from_ref(completion))?.remove(0))
    }

    /// Queues the event of a recorded delivery again for that delivery's
    /// webhook, with the recorded request body and the same event id; the new
    /// task is flagged as a redelivery. Returns the new task's id.
    pub fn redeliver(&self, delivery_id: i64) -> Result<i64> {
        self.backend().redeliver(delivery_id, self.now())
    }

    /// Bulk recovery: queues again, for webhook `recovery.hook_id`, the events its deliveries
    /// recorded in `[since, until)` carried (with `failed_only`, only events whose last
    /// delivery to it failed), at most `limit` of them in one transaction. Returns how many it
    /// queued; call again until it returns 0 (each call takes the next events).
    ///
    /// Each event is queued **once**: one task per event however many of its deliveries are
    /// in the range, each with the newest one's recorded body and the same event id, flagged
    /// as a redelivery (as [`redeliver`](Self::redeliver) queues it). Not queued: an event
    /// with a task still pending for this webhook (a retry or a redelivery waiting, a recovery
    /// run twice included); an event whose deliveries in the range a recovery already queued
    /// (they are marked); test events. A delivery a recovery causes is a new delivery, so a
    /// later recovery over it may send it again (with `failed_only`, only if it failed).
    ///
    /// The tasks are ordinary tasks of this webhook: a worker claims them under the webhook's
    /// own cap and queue, so a large recovery does not crowd out other webhooks. The webhook
    /// must exist ([`Error::WebhookNotFound`]) and be active ([`Error::WebhookInactive`]).
    pub fn recover(&self, recovery: &Recovery, limit: usize) -> Result<u64> {
        self.backend().recover(recovery, limit, self.now())
    }

    /// How many events [`recover`](Self::recover) would queue now, for a progress bar.
    pub fn recover_count(&self, recovery: &Recovery) -> Result<u64> {
        self.backend().recover_count(recovery)
    }

    /// Makes a webhook's failed and waiting (not leased) tasks due now. Returns
    /// how many tasks were rescheduled. The webhook must be active
    /// ([`Error::WebhookInactive`]).
    pub fn retry_now(&self, hook_id: i64) -> Result<u64> {
        self.backend().retry_now(hook_id, self.now())
    }

    /// When the next task of an active webhook becomes claimable (its due time
    /// or its lease's end), if any: a worker can sleep until then.
    pub fn next_due_at(&self) -> Result<Option<OffsetDateTime>> {
        self.backend().next_due_at(self.now())
    }

    /// Whether the database can be reached now (a readiness probe): on SQLite the file is
    /// opened afresh and read (the open connections would not notice it removed or
    /// replaced); on PostgreSQL a pooled connection runs `SELECT 1`, waiting at most 2 s
    /// for one.
    pub fn check_reachable(&self) -> Result<()> {
        self.backend().check_reachable()
    }

    /// Counts for metrics: tasks pending, leased and failed, disabled
    /// webhooks, events and deliveries stored.
    pub fn counts(&self) -> Result<Counts> {
        self.backend().counts(self.now())
    }

    /// Deliveries matching `filter`, newest first, one page at a time.
    pub fn deliveries(&self, filter: DeliveryFilter, page: Page) -> Result<Paged<Delivery>> {
        self.backend().deliveries(filter, page)
    }

    /// One delivery in full, if it exists.
    pub fn delivery(&self, id: i64) -> Result<Option<Delivery>> {
        self.backend().delivery(id)
    }

    /// The last delivery of each of these webhooks (the original's
    /// `last_response`), in one query. Webhooks with no delivery are absent.
    pub fn last_responses(&self, hook_ids: &[i64]) -> Result<HashMap<i64, LastResponse>> {
        self.backend().last_responses(hook_ids)
    }

    /// Each webhook's delivery attempts made at or after `since` (e.g. the last
    /// 24 hours): how many, and how many succeeded (a 2xx and no error).
    /// Webhooks without any attempt in that time are absent. One query for all
    /// of them.
    pub fn success_rates(
        &self,
        hook_ids: &[i64],
        since: OffsetDateTime,
    ) -> Result<HashMap<i64, SuccessRate>> {
        self.backend().success_rates(hook_ids, since)
    }

    /// Prunes deliveries, and finished events, older than `older_than`
    /// (usually [`DEFAULT_RETENTION`](crate::DEFAULT_RETENTION)); see
    /// [`Store::prune_before`]. An age reaching before any date the clock
    /// can name prunes nothing.
    pub fn prune(&self, older_than: Duration) -> Result<Pruned> {
        self.prune_with(older_than, |_| {})
    }

    /// [`prune`](Self::prune), telling `progress` the totals so far after each batch (a
    /// progress bar's counts).
    pub fn prune_with(
        &self,
        older_than: Duration,
        mut progress: impl FnMut(&Pruned),
    ) -> Result<Pruned> {
        let now = self.now();
        match crate::pruning::cutoff(now, older_than) {
            Some(cutoff) => self.prune_before_with(cutoff, &mut progress),
            None => {
                self.backend().clear_ended_rotations(now)?;
                self.backend()
                    .clear_forgotten_breakers(now - FORGOTTEN_BREAKER)?;
                self.backend().clear_expired_keys(now)?;
                Ok(Pruned::default())
            }
        }
    }

    /// Prunes deliveries created before `cutoff`, then events created before
    /// `cutoff` that have no pending task and no delivery left, in transactions
    /// of at most [`PRUNE_BATCH`](crate::PRUNE_BATCH) rows. Both prunes also delete the
    /// previous secrets whose rotation overlap has ended ([`Store::rotate_secret`]), and the
    /// shared circuit breakers nobody probed for a day after their open period ended (no
    /// process had a task for their destination: their webhooks were deleted or moved), and
    /// the idempotency keys whose window has ended ([`NewEvent::with_idempotency_key`]).
    pub fn prune_before(&self, cutoff: OffsetDateTime) -> Result<Pruned> {
        self.prune_before_with(cutoff, &mut |_| {})
    }

    fn prune_before_with(
        &self,
        cutoff: OffsetDateTime,
        progress: &mut dyn FnMut(&Pruned),
    ) -> Result<Pruned> {
        let now = self.now();
        self.backend().clear_ended_rotations(now)?;
        self.backend()
            .clear_forgotten_breakers(now - FORGOTTEN_BREAKER)?;
        self.backend().clear_expired_keys(now)?;
        self.backend().prune_before(cutoff, progress)
    }

    /// Queues a test delivery of `body` as an `event` for one webhook (even an
    /// inactive or unsubscribed one) and leases it, in one durable transaction;
    /// returns the task as [`Store::claim_due`] would (held by this process, if registered).
    /// Every delivery of that event is marked as a test. An unknown webhook is
    /// [`Error::WebhookNotFound`] and stores nothing.
    pub fn queue_test(
        &self,
        hook_id: i64,
        event: EventType,
        body: Vec<u8>,
        lease: Duration,
    ) -> Result<Task> {
        let holder = self.process_id();
        self.backend()
            .queue_test(hook_id, event, body, lease, holder, self.now())
    }
}

/// What opening a PostgreSQL URL is in a build without the `postgres` feature.
#[cfg(not(feature = "postgres"))]
fn postgres_not_built() -> Error {
    Error::NotBuilt {
        what: "a PostgreSQL database",
        feature: "postgres",
    }
}

/// How long after its open period a shared breaker nobody probed is kept: far beyond any
/// worker's poll interval, so one that is still wanted has had its probe.
const FORGOTTEN_BREAKER: Duration = Duration::from_secs(24 * 60 * 60);

/// Whether `url_or_path` names a PostgreSQL database rather than a SQLite file.
pub fn is_postgres_url(url_or_path: &str) -> bool {
    ["postgres://", "postgresql://"].iter().any(|scheme| {
        url_or_path
            .get(..scheme.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(scheme))
    })
}

/// The longest a listener waits without looking at the stop: only an interruption that could
/// not be announced (its connection failed) makes a stop wait this long.
const LOST_INTERRUPT_BOUND: Duration = Duration::from_secs(60);

/// Interrupts the wait of the listener of [`Store::wake_on_new_work`] when woken (by the stop).
#[derive(Default)]
struct InterruptOnStop {
    #[cfg(feature = "postgres")]
    current: Mutex<Option<pg::Interrupt>>,
}

impl InterruptOnStop {
    /// `listener` is the one to interrupt from now on.
    fn listening_with(&self, listener: &WorkListener) {
        #[cfg(feature = "postgres")]
        {
            let interrupt = listener.0.interrupt();
            *self
                .current
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(interrupt);
        }
        #[cfg(not(feature = "postgres"))]
        match listener.0 {}
    }
}

impl std::task::Wake for InterruptOnStop {
    fn wake(self: Arc<Self>) {
        #[cfg(feature = "postgres")]
        if let Some(current) = self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        {
            // If this fails, the wait ends at its bound (`LOST_INTERRUPT_BOUND`) instead.
            let _ = current.interrupt();
        }
    }
}

/// Blocks an idle worker until new work is announced ([`Store::work_listener`]).
#[derive(Debug)]
pub struct WorkListener(Listener);

/// What a [`WorkListener`] listens with: nothing can be made without PostgreSQL, yet the type
/// stays, so code that waits on one builds with or without the `postgres` feature.
#[cfg(feature = "postgres")]
type Listener = pg::WorkListener;
#[cfg(not(feature = "postgres"))]
#[derive(Debug)]
enum Listener {}

impl WorkListener {
    /// Waits until work is announced (`Ok(true)`, every announcement received
    /// so far consumed) or `timeout` passes (`Ok(false)`). An error means the
    /// connection broke: open a new listener.
    pub fn wait(&mut self, timeout: Duration) -> Result<bool> {
        #[cfg(feature = "postgres")]
        return self.0.wait(timeout).map_err(|source| Error::Database {
            operation: "waiting for work",
            source: source.into(),
        });
        #[cfg(not(feature = "postgres"))]
        {
            let _ = timeout;
            match self.0 {}
        }
    }
}

/// The store as the delivery worker's outbox: each call is the `Store` method of the same
/// name, at the time by the store's clock ([`Store::now`]).
impl Outbox for Store {
    fn claim(&self, claim: &ClaimRequest) -> std::result::Result<Claimed, OutboxError> {
        Store::claim(self, self.now(), claim).map_err(OutboxError::new)
    }

    fn complete(&self, done: &[Completion]) -> std::result::Result<(), OutboxError> {
        Store::complete(self, done).map_err(OutboxError::new)?;
        Ok(())
    }

    fn put_off(&self, put_off: &[PutOff]) -> std::result::Result<(), OutboxError> {
        Store::put_off(self, put_off).map_err(OutboxError::new)?;
        Ok(())
    }

    fn breaker_closed(&self, destination: &Destination) -> std::result::Result<(), OutboxError> {
        Store::breaker_closed(self, destination.as_str()).map_err(OutboxError::new)
    }

    fn breaker_opened(&self, openings: &[BreakerOpening]) -> std::result::Result<(), OutboxError> {
        Store::breaker_opened(self, openings).map_err(OutboxError::new)
    }

    fn open_breakers(&self) -> std::result::Result<Vec<SharedBreaker>, OutboxError> {
        Store::open_breakers(self).map_err(OutboxError::new)
    }

    fn take_probe(
        &self,
        destination: &Destination,
        until: OffsetDateTime,
    ) -> std::result::Result<ProbeTurn, OutboxError> {
        Store::take_probe(self, destination.as_str(), self.now(), until).map_err(OutboxError::new)
    }

    fn limits_changed(&self, notes: &[LimitNote]) -> std::result::Result<(), OutboxError> {
        Store::limits_changed(self, notes).map_err(OutboxError::new)
    }

    fn defer(&self, deferrals: &[Deferral]) -> std::result::Result<(), OutboxError> {
        Store::defer(self, self.now(), deferrals)
            .map(drop)
            .map_err(OutboxError::new)
    }

    fn release(&self, tasks: &[Release]) -> std::result::Result<(), OutboxError> {
        Store::release(self, tasks).map_err(OutboxError::new)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::is_postgres_url;

    #[test]
    fn only_postgres_urls_select_postgres() {
        for url in [
            "postgres://postgres@127.0.0.1:5432/test",
            "postgresql://db/hooks",
            "POSTGRES://db/x",
        ] {
            assert!(is_postgres_url(url), "{url}");
        }
        for path in [
            "djinn-hooks.db",
            "/var/lib/postgres/hooks.db",
            "postgres",
            "",
        ] {
            assert!(!is_postgres_url(path), "{path}");
        }
    }
}
