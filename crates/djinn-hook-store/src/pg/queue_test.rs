//! `queue_test` on PostgreSQL: one test event, queued for one webhook and leased at once.

use std::time::Duration;

use const_format::formatcp;
use djinn_hook_outbox::{LeaseToken, Task};
use djinn_hook_payload::EventType;
use time::OffsetDateTime;

use super::PgBackend;
use super::outbox::insert_event;
use crate::backend::TestDeliveries;
use crate::claim::SETTINGS_COLUMNS;
use crate::error::{Error, Result};
use crate::liveness::ProcessId;
use crate::outbox::lease_until;
use crate::rows;
use crate::sql::{from_ns, to_ns};
use crate::task::{TaskRow, claimed};
use crate::task_state::PENDING;

impl TestDeliveries for PgBackend {
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
            let hook = tx
                .query_opt(
                    formatcp!(
                        "SELECT namespace_id, {SETTINGS_COLUMNS} FROM webhooks WHERE id = $1"
                    ),
                    &[&hook_id],
                )?
                .ok_or(Error::WebhookNotFound { id: hook_id })?;
            let settings = rows::settings(hook_id, &hook, 1)?;
            let secrets = settings.open_secrets(&self.cipher, now)?;
            let (event_row, event_id) =
                insert_event(tx, hook.try_get(0)?, event, &body, to_ns(now), true)?;
            let lease_token = LeaseToken::new();
            let task_id: i64 = tx
                .query_one(
                    formatcp!(
                        "INSERT INTO tasks (event_id, hook_id, state, next_at)
                         VALUES ($1, $2, {PENDING}, $3) RETURNING id"
                    ),
                    &[&event_row, &hook_id, &to_ns(now)],
                )?
                .try_get(0)?;
            tx.execute(
                "INSERT INTO task_leases (task_id, hook_id, due_at, lease, until, attempt, holder)
                 VALUES ($1, $2, $3, $4, $5, 1, $6)",
                &[
                    &task_id,
                    &hook_id,
                    &to_ns(now),
                    lease_token.as_uuid(),
                    &to_ns(until),
                    &holder.map(ProcessId::as_i64),
                ],
            )?;
            Ok(claimed(
                &settings,
                secrets,
                lease_token,
                until,
                TaskRow {
                    task_id,
                    event_id,
                    event,
                    event_created_at: from_ns(to_ns(now)),
                    body: body.clone(),
                    attempt: 1,
                    redelivery: false,
                    traceparent: None,
                },
            ))
        })
    }
}
