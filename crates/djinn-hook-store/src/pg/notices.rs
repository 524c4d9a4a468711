//! PostgreSQL: writes a [`Notice`] as an event of the notifications namespace with a task for
//! its webhook, in the caller's transaction (the same rules as SQLite's `notices.rs`).

use const_format::formatcp;
use postgres::Transaction;
use time::OffsetDateTime;

use super::outbox::{announce, insert_event};
use crate::error::IResult;
use crate::notify::{NOTIFICATIONS_NAMESPACE, Notice};
use crate::rows::{self, SubjectRow};
use crate::sql::to_ns;
use crate::task_state::PENDING;

/// The webhook `hook_id` as a notice names it, if it exists.
pub(crate) fn subject(tx: &mut Transaction<'_>, hook_id: i64) -> IResult<Option<SubjectRow>> {
    let row = tx.query_opt(
        "SELECT n.name, w.payload_url, w.failing_since, w.disabled_at, w.disabled_reason
         FROM webhooks w JOIN namespaces n ON n.id = w.namespace_id WHERE w.id = $1",
        &[&hook_id],
    )?;
    row.map(|r| rows::subject(hook_id, &r)).transpose()
}

/// Queues `notice` for the notification webhook, if one is configured and active (else, and
/// for a notice about that webhook itself, nothing), and wakes idle workers.
pub(crate) fn notify(
    tx: &mut Transaction<'_>,
    notice: &Notice,
    now: OffsetDateTime,
) -> IResult<()> {
    if !notice.reportable() {
        return Ok(());
    }
    let target = tx.query_opt(
        "SELECT w.id, w.namespace_id FROM webhooks w JOIN namespaces n ON n.id = w.namespace_id
         WHERE n.name = $1 AND w.active ORDER BY w.id LIMIT 1",
        &[&NOTIFICATIONS_NAMESPACE],
    )?;
    let Some(target) = target else {
        return Ok(());
    };
    let (hook, namespace): (i64, i64) = (target.try_get(0)?, target.try_get(1)?);
    let at = to_ns(now);
    let body = notice.body(now);
    let kind = djinn_hook_payload::EventType::Notification;
    let (row, _) = insert_event(tx, namespace, kind, &body, at, false)?;
    tx.execute(
        formatcp!(
            "INSERT INTO tasks (event_id, hook_id, state, next_at) VALUES ($1, $2, {PENDING}, $3)"
        ),
        &[&row, &hook, &at],
    )?;
    announce(tx)
}
