//! SQLite: writes a [`Notice`] as an event of the notifications namespace with a task for its
//! webhook, in the caller's transaction (see `notify.rs`).

use const_format::formatcp;
use rusqlite::{OptionalExtension, Transaction, params};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::notify::{NOTIFICATIONS_NAMESPACE, Notice};
use crate::outbox::insert_event;
use crate::rows::{self, SubjectRow};
use crate::sql::to_ns;
use crate::task_state::PENDING;

/// The webhook `hook_id` as a notice names it, if it exists.
pub(crate) fn subject(tx: &Transaction<'_>, hook_id: i64) -> rusqlite::Result<Option<SubjectRow>> {
    tx.prepare_cached(
        "SELECT n.name, w.payload_url, w.failing_since, w.disabled_at, w.disabled_reason
         FROM webhooks w JOIN namespaces n ON n.id = w.namespace_id WHERE w.id = ?1",
    )?
    .query_row([hook_id], |r| rows::subject(hook_id, r))
    .optional()
}

/// Queues `notice` for the notification webhook, if one is configured and active (else, and
/// for a notice about that webhook itself, nothing).
pub(crate) fn notify(
    tx: &Transaction<'_>,
    notice: &Notice,
    now: OffsetDateTime,
) -> rusqlite::Result<()> {
    if !notice.reportable() {
        return Ok(());
    }
    let target: Option<(i64, i64)> = tx
        .prepare_cached(
            "SELECT w.id, w.namespace_id FROM webhooks w JOIN namespaces n ON n.id = w.namespace_id
             WHERE n.name = ?1 AND w.active = 1 ORDER BY w.id LIMIT 1",
        )?
        .query_row([NOTIFICATIONS_NAMESPACE], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((hook, namespace)) = target else {
        return Ok(());
    };
    let at = to_ns(now);
    let body = notice.body(now);
    let kind = djinn_hook_payload::EventType::Notification;
    let row = insert_event(tx, Uuid::new_v4(), namespace, kind, &body, at, false)?;
    tx.prepare_cached(formatcp!(
        "INSERT INTO tasks (event_id, hook_id, state, next_at) VALUES (?1, ?2, {PENDING}, ?3)"
    ))?
    .execute(params![row, hook, at])?;
    Ok(())
}
