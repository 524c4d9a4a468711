//! Test deliveries on PostgreSQL: one event, marked as a test, queued for one webhook and leased at once.

use std::time::Duration;

use djinn_hook_payload::EventType;
use time::OffsetDateTime;
use uuid::Uuid;

use super::PgStore;
use super::outbox::insert_event;
use crate::claim::limits_from_row;
use crate::error::{Error, Result};
use crate::outbox::lease_until;
use crate::sql::{from_ns, to_ns};
use crate::types::ClaimedTask;

impl PgStore {
    pub(crate) fn queue_test(
        &self,
        hook_id: i64,
        event: EventType,
        body: Vec<u8>,
        lease: Duration,
    ) -> Result<ClaimedTask> {
        let now = OffsetDateTime::now_utc();
        let until = lease_until(now, lease);
        self.write("queueing a test delivery", |tx| {
            let hook = tx
                .query_opt(
                    "SELECT namespace_id, payload_url, ssl, secret, standard_webhooks, failing_since,
                        max_in_flight, timeout_ms, previous_secret, previous_secret_until
                     FROM webhooks WHERE id = $1",
                    &[&hook_id],
                )?
                .ok_or(Error::WebhookNotFound { id: hook_id })?;
            let sealed: Option<Vec<u8>> = hook.get(3);
            let secret = self.cipher.open_optional(hook_id, sealed.as_deref())?;
            let previous: Option<Vec<u8>> = hook
                .get::<_, Option<Vec<u8>>>(8)
                .filter(|_| crate::rotation::live(hook.get(9), now));
            let previous_secret = self.cipher.open_optional(hook_id, previous.as_deref())?;
            let event_id = Uuid::new_v4();
            let event_row =
                insert_event(tx, event_id, hook.get(0), event, &body, to_ns(now), true)?;
            let lease_token = Uuid::new_v4();
            let task_id: i64 = tx
                .query_one(
                    "INSERT INTO tasks (event_id, hook_id, state, next_at, lease, attempts)
                     VALUES ($1, $2, 0, $3, $4, 1) RETURNING id",
                    &[&event_row, &hook_id, &to_ns(until), &lease_token],
                )?
                .get(0);
            Ok(ClaimedTask {
                task_id,
                lease: lease_token,
                lease_until: until,
                event_id,
                event,
                event_created_at: from_ns(to_ns(now)),
                hook_id,
                payload_url: hook.get(1),
                ssl: hook.get(2),
                secret,
                previous_secret,
                standard_webhooks: hook.get(4),
                body: body.clone(),
                attempt: 1,
                redelivery: false,
                hook_failing_since: hook.get::<_, Option<i64>>(5).map(from_ns),
                limits: limits_from_row(hook.get(6), hook.get(7)),
            })
        })
    }
}
