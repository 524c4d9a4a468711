//! Webhook create, read, update and delete.

use const_format::formatcp;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use time::OffsetDateTime;

use crate::backend::Webhooks;
use crate::custom_headers;
use crate::error::{Error, IResult, Result};
use crate::notices::{notify, subject};
use crate::notify::Notice;
use crate::rows;
use crate::sql::{mask, to_ns};
use crate::sqlite::{SqliteBackend, namespace_id};
use crate::task_state::{FAILED, PENDING};
use crate::types::{LimitsUpdate, NewWebhook, Webhook, WebhookUpdate};
use crate::webhook_rules::{CheckedNew, CheckedUpdate, secret_change};

/// A webhook as both backends read it (the same SQL on each but for `$leased`, a constant: the
/// count of its tasks under a lease), with its shared breaker; `rows::webhook` reads the columns.
macro_rules! select_hook {
    ($leased:expr) => {
        const_format::concatcp!(
            "SELECT w.id, n.name, w.author_id, w.payload_url, w.ssl, w.events, w.active,
                w.standard_webhooks, w.secret IS NOT NULL, w.created_at, w.disabled_reason,
                w.disabled_at, w.failing_since, w.max_in_flight, w.timeout_ms,
                w.breaker_destination, COALESCE(b.open_until, w.breaker_until),
                COALESCE(b.reason, w.breaker_reason), w.previous_secret_until, w.limit_now,
                w.limit_reason, w.limit_paused_until, ",
            $leased,
            ", w.header_names
            FROM webhooks w JOIN namespaces n ON n.id = w.namespace_id
                LEFT JOIN breakers b ON b.destination = w.breaker_destination"
        )
    };
}
#[cfg(feature = "postgres")]
pub(crate) use select_hook;

/// [`select_hook`] on SQLite, whose leases are the tasks' own columns.
const SELECT_HOOK: &str = select_hook!(
    "(SELECT count(*) FROM tasks t WHERE t.hook_id = w.id AND t.state = 0
        AND t.lease IS NOT NULL)"
);

impl Webhooks for SqliteBackend {
    /// [`Store::create_webhook`](crate::Store::create_webhook) on SQLite.
    fn create_webhook(&self, new: NewWebhook, now: OffsetDateTime) -> Result<Webhook> {
        let checked = CheckedNew::check(&new)?;
        self.write("creating a webhook", |tx| {
            let ns = namespace_id(tx, &new.namespace)?;
            let (url, events) = checked.valid(|url| url_taken(tx, ns, url, None))?;
            tx.prepare_cached(
                "INSERT INTO webhooks (namespace_id, author_id, payload_url, ssl, events, active,
                    standard_webhooks, created_at, max_in_flight, timeout_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?
            .execute(params![
                ns,
                new.author_id,
                url,
                new.ssl,
                mask(events),
                new.active,
                new.standard_webhooks,
                to_ns(now),
                new.limits.max_in_flight,
                timeout_ms(new.limits.timeout),
            ])?;
            let id = tx.last_insert_rowid();
            if let Some(secret) = &new.secret {
                set_secret(self, tx, id, Some(secret))?;
            }
            if !new.headers.is_empty() {
                set_headers(self, tx, id, &new.headers)?;
            }
            Ok(hook_by_id(tx, id)?.expect("just inserted"))
        })
    }

    /// [`Store::webhook`](crate::Store::webhook) on SQLite.
    fn webhook(&self, id: i64) -> Result<Option<Webhook>> {
        self.read("reading a webhook", |conn| Ok(hook_by_id(conn, id)?))
    }

    /// [`Store::webhooks`](crate::Store::webhooks) on SQLite.
    fn webhooks(&self, namespace: &str) -> Result<Vec<Webhook>> {
        self.read("listing webhooks", |conn| {
            let mut stmt =
                conn.prepare_cached(&format!("{SELECT_HOOK} WHERE n.name = ?1 ORDER BY w.id"))?;
            let rows = stmt.query_map([namespace], |r| rows::webhook(r))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// [`Store::all_webhooks`](crate::Store::all_webhooks) on SQLite.
    fn all_webhooks(&self) -> Result<Vec<Webhook>> {
        self.read("listing webhooks", |conn| {
            let mut stmt = conn.prepare_cached(&format!("{SELECT_HOOK} ORDER BY w.id"))?;
            let rows = stmt.query_map([], |r| rows::webhook(r))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// [`Store::update_webhook_with`](crate::Store::update_webhook_with) on SQLite.
    fn update_webhook_with(
        &self,
        id: i64,
        update: WebhookUpdate,
        limits: LimitsUpdate,
        now: OffsetDateTime,
    ) -> Result<Webhook> {
        let checked = CheckedUpdate::check(&update, &limits);
        self.write("updating a webhook", |tx| {
            let (ns, stored) = tx
                .prepare_cached(
                    "SELECT namespace_id, payload_url, active, ssl FROM webhooks WHERE id = ?1",
                )?
                .query_row([id], |r| rows::stored_hook(r))
                .optional()?
                .ok_or(Error::WebhookNotFound { id })?;
            let merged = checked.merge(&update, stored, |url| url_taken(tx, ns, url, Some(id)))?;
            // Read before the update clears them: what the re-enabled notice reports.
            let before = if merged.reactivated { subject(tx, id)? } else { None };
            tx.prepare_cached(
                "UPDATE webhooks SET payload_url = ?2, ssl = ?3, events = COALESCE(?4, events),
                    standard_webhooks = COALESCE(?5, standard_webhooks), active = COALESCE(?6, active)
                 WHERE id = ?1",
            )?
            .execute(params![
                id,
                merged.url,
                merged.ssl,
                merged.events.map(mask),
                update.standard_webhooks,
                update.active,
            ])?;
            if merged.reactivated {
                tx.prepare_cached(
                    "UPDATE webhooks SET disabled_reason = NULL, disabled_at = NULL,
                        failing_since = NULL WHERE id = ?1",
                )?
                .execute([id])?;
                if let Some((hook, _, disabled_at @ Some(_), reason)) = before {
                    // Only a webhook that djinn-hooks disabled: a user's own pause is no news.
                    let notice = Notice::Enabled {
                        hook,
                        disabled_at,
                        reason,
                    };
                    notify(tx, &notice, now)?;
                }
            }
            if merged.deactivated {
                fail_pending(tx, id)?;
            }
            if let Some(secret) = secret_change(&update.secret) {
                set_secret(self, tx, id, secret)?;
            }
            if let Some(headers) = &update.headers {
                let sealed: Option<Vec<u8>> = tx
                    .prepare_cached("SELECT headers FROM webhooks WHERE id = ?1")?
                    .query_row([id], |r| r.get(0))?;
                let stored = custom_headers::open(&self.cipher, id, sealed.as_deref())?;
                set_headers(self, tx, id, &custom_headers::merge(headers, &stored)?)?;
            }
            if let Some(max) = limits.max_in_flight {
                tx.prepare_cached("UPDATE webhooks SET max_in_flight = ?2 WHERE id = ?1")?
                    .execute(params![id, max])?;
            }
            if let Some(timeout) = limits.timeout {
                tx.prepare_cached("UPDATE webhooks SET timeout_ms = ?2 WHERE id = ?1")?
                    .execute(params![id, timeout_ms(timeout)])?;
            }
            Ok(hook_by_id(tx, id)?.expect("exists"))
        })
    }

    /// [`Store::delete_webhook`](crate::Store::delete_webhook) on SQLite; its delivery log goes
    /// too, as a deleted webhook's log would otherwise point at nothing.
    fn delete_webhook(&self, id: i64) -> Result<()> {
        self.write("deleting a webhook", |tx| {
            tx.prepare_cached("DELETE FROM deliveries WHERE hook_id = ?1")?
                .execute([id])?;
            let n = tx
                .prepare_cached("DELETE FROM webhooks WHERE id = ?1")?
                .execute([id])?;
            if n == 0 {
                return Err(Error::WebhookNotFound { id }.into());
            }
            Ok(())
        })
    }
}

/// A timeout as stored: whole milliseconds.
pub(crate) fn timeout_ms(timeout: Option<std::time::Duration>) -> Option<i64> {
    timeout.map(|t| i64::try_from(t.as_millis()).unwrap_or(i64::MAX))
}

/// Marks a webhook's pending tasks failed (it was deactivated or disabled).
/// Leases are kept, so a worker still holding one can report a delivery.
pub(crate) fn fail_pending(tx: &Transaction<'_>, hook_id: i64) -> rusqlite::Result<()> {
    tx.prepare_cached(formatcp!(
        "UPDATE tasks SET state = {FAILED} WHERE hook_id = ?1 AND state = {PENDING}"
    ))?
    .execute([hook_id])?;
    Ok(())
}

fn set_secret(
    store: &SqliteBackend,
    tx: &Transaction<'_>,
    id: i64,
    secret: Option<&str>,
) -> IResult<()> {
    let sealed = match secret {
        Some(s) => Some(store.cipher.seal(id, s)?),
        None => None,
    };
    // Setting or removing a secret ends any rotation's overlap: the previous one goes too.
    tx.prepare_cached(
        "UPDATE webhooks SET secret = ?2, previous_secret = NULL, previous_secret_until = NULL
         WHERE id = ?1",
    )?
    .execute(params![id, sealed])?;
    Ok(())
}

/// Writes a webhook's custom headers (both columns; none clears them).
fn set_headers(
    store: &SqliteBackend,
    tx: &Transaction<'_>,
    id: i64,
    headers: &[(String, String)],
) -> IResult<()> {
    let (names, sealed) = custom_headers::seal(&store.cipher, id, headers)?;
    tx.prepare_cached("UPDATE webhooks SET header_names = ?2, headers = ?3 WHERE id = ?1")?
        .execute(params![id, names, sealed])?;
    Ok(())
}

/// Whether a webhook of namespace `ns` other than `except` has the payload URL `url`.
fn url_taken(conn: &Connection, ns: i64, url: &str, except: Option<i64>) -> IResult<bool> {
    Ok(conn
        .prepare_cached(URL_TAKEN)?
        .exists(params![ns, url, except])?)
}

/// [`url_taken`]'s query, for both backends (SQLite numbers `$1`, `$2`, ... as they first
/// appear, which is their order here).
pub(crate) const URL_TAKEN: &str = "SELECT 1 FROM webhooks
    WHERE namespace_id = $1 AND payload_url = $2 AND id IS DISTINCT FROM $3";

pub(crate) fn hook_by_id(conn: &Connection, id: i64) -> rusqlite::Result<Option<Webhook>> {
    conn.prepare_cached(&format!("{SELECT_HOOK} WHERE w.id = ?1"))?
        .query_row([id], |r| rows::webhook(r))
        .optional()
}
