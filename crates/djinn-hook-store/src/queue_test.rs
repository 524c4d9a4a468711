//! `Store::queue_test`: one test event, queued for one webhook and leased at once (`hook test`).

use std::time::Duration;

use const_format::formatcp;
use djinn_hook_outbox::{LeaseToken, Task};
use djinn_hook_payload::EventType;
use rusqlite::{OptionalExtension, params};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::backend::TestDeliveries;
use crate::claim::SETTINGS_COLUMNS;
use crate::error::{Error, Result};
use crate::liveness::ProcessId;
use crate::outbox::{insert_event, lease_until};
use crate::rows;
use crate::sql::{from_ns, to_ns};
use crate::sqlite::SqliteBackend;
use crate::task::{TaskRow, claimed};
use crate::task_state::PENDING;

impl TestDeliveries for SqliteBackend {
    /// [`Store::queue_test`](crate::Store::queue_test) on SQLite: the rules are documented there.
    fn queue_test(
        &self,
        hook_id: i64,
        event: EventType,
        body: Vec<u8>,
        lease: Duration,
        holder: Option<ProcessId>,
        now: OffsetDateTime,
    ) -> Result<Task> {
        let until = lease_until(now, lease);
        self.write("queueing a test delivery", |tx| {
            let (namespace_id, hook) = tx
                .prepare_cached(&format!(
                    "SELECT namespace_id, {SETTINGS_COLUMNS} FROM webhooks WHERE id = ?1"
                ))?
                .query_row([hook_id], |r| {
                    Ok((r.get::<_, i64>(0)?, rows::settings(hook_id, r, 1)?))
                })
                .optional()?
                .ok_or(Error::WebhookNotFound { id: hook_id })?;
            let secrets = hook.open_secrets(&self.cipher, now)?;
            let event_id = Uuid::new_v4();
            let event_row =
                insert_event(tx, event_id, namespace_id, event, &body, to_ns(now), true)?;
            let lease_token = LeaseToken::new();
            let task_id = tx
                .prepare_cached(formatcp!(
                    "INSERT INTO tasks (event_id, hook_id, state, next_at, lease, attempts, holder)
                     VALUES (?1, ?2, {PENDING}, ?3, ?4, 1, ?5)"
                ))?
                .insert(params![
                    event_row,
                    hook_id,
                    to_ns(until),
                    lease_token.as_bytes(),
                    holder.map(ProcessId::as_i64)
                ])?;
            Ok(claimed(
                &hook,
                secrets,
                lease_token,
                until,
                TaskRow {
                    task_id,
                    event_id,
                    event,
                    event_created_at: from_ns(to_ns(now)),
                    body,
                    attempt: 1,
                    redelivery: false,
                    traceparent: None,
                },
            ))
        })
    }
}
