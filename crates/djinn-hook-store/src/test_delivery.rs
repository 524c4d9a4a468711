//! Test deliveries: one event, marked as a test, queued for one webhook and leased at once (`hook test`).

use std::time::Duration;

use djinn_hook_payload::EventType;
use rusqlite::{OptionalExtension, params};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::claim::limits_from_row;
use crate::error::{Error, Result};
use crate::outbox::{insert_event, lease_until};
use crate::sql::{from_ns, to_ns};
use crate::store::Store;
use crate::types::{ClaimedTask, DeliveryLimits};

impl Store {
    /// Queues a test delivery and leases it, in one durable transaction: stores
    /// `body` as an `event` of the webhook's namespace, marked as a test, with
    /// one task for that webhook only, leased until `now + lease`, and returns
    /// the task as [`Store::claim_due`] would (attempt 1, secret decrypted).
    ///
    /// Every delivery of that event, a redelivery included, has
    /// [`Delivery::test`](crate::Delivery::test) set;
    /// [`DeliveryFilter::test`](crate::DeliveryFilter::test) lists them (or the
    /// others).
    ///
    /// The task is queued even if the webhook is inactive, disabled or not
    /// subscribed to `event`: the caller asked for this webhook explicitly.
    /// Deliver it and give the attempt to [`Store::complete`] like any other;
    /// it then shows in the delivery log and as the webhook's last response.
    /// Other webhooks of the namespace get nothing. If the caller never
    /// completes it, the task becomes due when the lease runs out and a worker
    /// delivers it (if the webhook is active), like any crashed worker's task.
    ///
    /// An unknown webhook is [`Error::WebhookNotFound`] and stores nothing.
    pub fn queue_test(
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
                .prepare_cached(
                    "SELECT namespace_id, payload_url, ssl, secret, standard_webhooks, failing_since,
                        max_in_flight, timeout_ms
                     FROM webhooks WHERE id = ?1",
                )?
                .query_row([hook_id], |r| {
                    Ok(TestHook {
                        namespace_id: r.get(0)?,
                        payload_url: r.get(1)?,
                        ssl: r.get(2)?,
                        sealed_secret: r.get(3)?,
                        standard_webhooks: r.get(4)?,
                        failing_since: r.get::<_, Option<i64>>(5)?.map(from_ns),
                        limits: limits_from_row(r.get(6)?, r.get(7)?),
                    })
                })
                .optional()?
                .ok_or(Error::WebhookNotFound { id: hook_id })?;
            let secret = self
                .cipher
                .open_optional(hook_id, hook.sealed_secret.as_deref())?;
            let event_id = Uuid::new_v4();
            let event_row = insert_event(
                tx,
                event_id,
                hook.namespace_id,
                event,
                &body,
                to_ns(now),
                true,
            )?;
            let lease_token = Uuid::new_v4();
            let task_id = tx
                .prepare_cached(
                    "INSERT INTO tasks (event_id, hook_id, state, next_at, lease, attempts)
                     VALUES (?1, ?2, 0, ?3, ?4, 1)",
                )?
                .insert(params![
                    event_row,
                    hook_id,
                    to_ns(until),
                    lease_token.as_bytes()
                ])?;
            Ok(ClaimedTask {
                task_id,
                lease: lease_token,
                lease_until: until,
                event_id,
                event,
                event_created_at: from_ns(to_ns(now)),
                hook_id,
                payload_url: hook.payload_url,
                ssl: hook.ssl,
                secret,
                standard_webhooks: hook.standard_webhooks,
                body,
                attempt: 1,
                redelivery: false,
                hook_failing_since: hook.failing_since,
                limits: hook.limits,
            })
        })
    }
}

/// The webhook columns a test delivery needs, before its secret is decrypted.
struct TestHook {
    namespace_id: i64,
    payload_url: String,
    ssl: bool,
    sealed_secret: Option<Vec<u8>>,
    standard_webhooks: bool,
    failing_since: Option<OffsetDateTime>,
    limits: DeliveryLimits,
}
