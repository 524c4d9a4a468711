//! Webhook create, read, update and delete on PostgreSQL.

use const_format::formatcp;
use postgres::{GenericClient, Transaction};
use time::OffsetDateTime;

use super::claim::{NOT_LEASED, TASK_OF_LEASE};
use super::notices::{notify, subject};
use super::{PgBackend, namespace_id};
use crate::backend::Webhooks;
use crate::custom_headers;
use crate::error::{Error, IResult, Result};
use crate::hooks::{URL_TAKEN, select_hook, timeout_ms};
use crate::notify::Notice;
use crate::rows;
use crate::sql::{mask, to_ns};
use crate::task_state::{FAILED, PENDING};
use crate::types::{LimitsUpdate, NewWebhook, Webhook, WebhookUpdate};
use crate::webhook_rules::{CheckedNew, CheckedUpdate, secret_change};

/// [`select_hook`] on PostgreSQL, whose leases are kept apart (`task_leases`).
const SELECT_HOOK: &str = select_hook!(formatcp!(
    "(SELECT count(*) FROM task_leases l JOIN tasks t ON {TASK_OF_LEASE} WHERE l.hook_id = w.id)"
));

impl Webhooks for PgBackend {
    fn create_webhook(&self, new: NewWebhook, now: OffsetDateTime) -> Result<Webhook> {
        let checked = CheckedNew::check(&new)?;
        self.write("creating a webhook", |tx| {
            let ns = namespace_id(tx, &new.namespace)?;
            let (url, events) = checked.valid(|url| url_taken(tx, ns, url, None))?;
            let id: i64 = tx
                .query_one(
                    "INSERT INTO webhooks (namespace_id, author_id, payload_url, ssl, events,
                        active, standard_webhooks, created_at, max_in_flight, timeout_ms)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
                    &[
                        &ns,
                        &new.author_id,
                        &url,
                        &new.ssl,
                        &mask(events),
                        &new.active,
                        &new.standard_webhooks,
                        &to_ns(now),
                        &new.limits.max_in_flight.map(i64::from),
                        &timeout_ms(new.limits.timeout),
                    ],
                )?
                .try_get(0)?;
            if let Some(secret) = &new.secret {
                self.set_secret(tx, id, Some(secret))?;
            }
            if !new.headers.is_empty() {
                self.set_headers(tx, id, &new.headers)?;
            }
            Ok(hook_by_id(tx, id)?.expect("just inserted"))
        })
    }

    fn webhook(&self, id: i64) -> Result<Option<Webhook>> {
        self.read("reading a webhook", |conn| hook_by_id(conn, id))
    }

    fn webhooks(&self, namespace: &str) -> Result<Vec<Webhook>> {
        self.read("listing webhooks", |conn| {
            conn.query(
                &format!("{SELECT_HOOK} WHERE n.name = $1 ORDER BY w.id"),
                &[&namespace],
            )?
            .iter()
            .map(rows::webhook)
            .collect()
        })
    }

    fn all_webhooks(&self) -> Result<Vec<Webhook>> {
        self.read("listing webhooks", |conn| {
            conn.query(&format!("{SELECT_HOOK} ORDER BY w.id"), &[])?
                .iter()
                .map(rows::webhook)
                .collect()
        })
    }

    fn update_webhook_with(
        &self,
        id: i64,
        update: WebhookUpdate,
        limits: LimitsUpdate,
        now: OffsetDateTime,
    ) -> Result<Webhook> {
        let checked = CheckedUpdate::check(&update, &limits);
        self.write("updating a webhook", |tx| {
            let row = tx
                .query_opt(
                    "SELECT namespace_id, payload_url, active, ssl FROM webhooks WHERE id = $1
                     FOR UPDATE",
                    &[&id],
                )?
                .ok_or(Error::WebhookNotFound { id })?;
            let (ns, stored) = rows::stored_hook(&row)?;
            let merged = checked.merge(&update, stored, |url| url_taken(tx, ns, url, Some(id)))?;
            // Read before the update clears them: what the re-enabled notice reports.
            let before = if merged.reactivated {
                subject(tx, id)?
            } else {
                None
            };
            tx.execute(
                "UPDATE webhooks SET payload_url = $2, ssl = $3, events = COALESCE($4, events),
                    standard_webhooks = COALESCE($5, standard_webhooks),
                    active = COALESCE($6, active)
                 WHERE id = $1",
                &[
                    &id,
                    &merged.url,
                    &merged.ssl,
                    &merged.events.map(mask),
                    &update.standard_webhooks,
                    &update.active,
                ],
            )?;
            if merged.reactivated {
                tx.execute(
                    "UPDATE webhooks SET disabled_reason = NULL, disabled_at = NULL,
                        failing_since = NULL WHERE id = $1",
                    &[&id],
                )?;
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
                fail_pending(tx, id, now)?;
            }
            if let Some(secret) = secret_change(&update.secret) {
                self.set_secret(tx, id, secret)?;
            }
            if let Some(headers) = &update.headers {
                let sealed: Option<Vec<u8>> = tx
                    .query_one("SELECT headers FROM webhooks WHERE id = $1", &[&id])?
                    .try_get(0)?;
                let stored = custom_headers::open(&self.cipher, id, sealed.as_deref())?;
                self.set_headers(tx, id, &custom_headers::merge(headers, &stored)?)?;
            }
            if let Some(max) = limits.max_in_flight {
                tx.execute(
                    "UPDATE webhooks SET max_in_flight = $2 WHERE id = $1",
                    &[&id, &max.map(i64::from)],
                )?;
            }
            if let Some(timeout) = limits.timeout {
                tx.execute(
                    "UPDATE webhooks SET timeout_ms = $2 WHERE id = $1",
                    &[&id, &timeout_ms(timeout)],
                )?;
            }
            Ok(hook_by_id(tx, id)?.expect("exists"))
        })
    }

    fn delete_webhook(&self, id: i64) -> Result<()> {
        self.write("deleting a webhook", |tx| {
            tx.execute("DELETE FROM deliveries WHERE hook_id = $1", &[&id])?;
            tx.execute("DELETE FROM task_leases WHERE hook_id = $1", &[&id])?;
            tx.execute("DELETE FROM tasks WHERE hook_id = $1", &[&id])?;
            let n = tx.execute("DELETE FROM webhooks WHERE id = $1", &[&id])?;
            if n == 0 {
                return Err(Error::WebhookNotFound { id }.into());
            }
            Ok(())
        })
    }
}

impl PgBackend {
    fn set_secret(&self, tx: &mut Transaction<'_>, id: i64, secret: Option<&str>) -> IResult<()> {
        let sealed = match secret {
            Some(s) => Some(self.cipher.seal(id, s)?),
            None => None,
        };
        // As on SQLite: setting or removing a secret ends any rotation's overlap.
        tx.execute(
            "UPDATE webhooks SET secret = $2, previous_secret = NULL,
                previous_secret_until = NULL
             WHERE id = $1",
            &[&id, &sealed],
        )?;
        Ok(())
    }

    /// As on SQLite: both columns of a webhook's custom headers.
    fn set_headers(
        &self,
        tx: &mut Transaction<'_>,
        id: i64,
        headers: &[(String, String)],
    ) -> IResult<()> {
        let (names, sealed) = custom_headers::seal(&self.cipher, id, headers)?;
        tx.execute(
            "UPDATE webhooks SET header_names = $2, headers = $3 WHERE id = $1",
            &[&id, &names, &sealed],
        )?;
        Ok(())
    }
}

/// Marks a webhook's pending tasks failed (it was deactivated or disabled), but those under a
/// live lease at `now`: their holder reports their outcome, which fails them if it is not a
/// delivery and the webhook is still inactive (`fail_retried`).
pub(crate) fn fail_pending(
    tx: &mut Transaction<'_>,
    hook_id: i64,
    now: OffsetDateTime,
) -> IResult<()> {
    tx.execute(
        formatcp!(
            "UPDATE tasks t SET state = {FAILED} WHERE hook_id = $1 AND state = {PENDING}
                AND {NOT_LEASED}"
        ),
        &[&hook_id, &to_ns(now)],
    )?;
    Ok(())
}

/// Whether a webhook of namespace `ns` other than `except` has the payload URL `url`.
fn url_taken(
    conn: &mut impl GenericClient,
    ns: i64,
    url: &str,
    except: Option<i64>,
) -> IResult<bool> {
    Ok(conn.query_opt(URL_TAKEN, &[&ns, &url, &except])?.is_some())
}

pub(super) fn hook_by_id(conn: &mut impl GenericClient, id: i64) -> IResult<Option<Webhook>> {
    conn.query_opt(&format!("{SELECT_HOOK} WHERE w.id = $1"), &[&id])?
        .as_ref()
        .map(rows::webhook)
        .transpose()
}
