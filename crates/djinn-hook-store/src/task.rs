//! A claimed [`Task`] from a webhook's delivery settings and one of its task rows, built the
//! same way by both backends, for a claim and for a test delivery.

use djinn_hook_outbox::{ClaimRequest, DeliveryRequest, LeaseToken, Task, WebhookSecret};
use djinn_hook_payload::EventType;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::types::DeliveryLimits;

/// A webhook's columns that a delivery needs, its secret still sealed.
#[derive(Clone)]
pub(crate) struct Settings {
    pub(crate) hook_id: i64,
    pub(crate) payload_url: String,
    pub(crate) ssl: bool,
    pub(crate) sealed_secret: Option<Vec<u8>>,
    pub(crate) standard_webhooks: bool,
    pub(crate) failing_since: Option<OffsetDateTime>,
    pub(crate) limits: DeliveryLimits,
}

impl Settings {
    /// Leases this webhook may still take under `claim`, holding `leased` live ones: its cap
    /// (its own `max_in_flight`, else the claim's) times the claim's leases per slot, less
    /// those.
    pub(crate) fn room(&self, claim: &ClaimRequest, leased: i64) -> usize {
        let cap = self
            .limits
            .max_in_flight
            .map_or(claim.max_in_flight, |n| {
                usize::try_from(n).unwrap_or(usize::MAX)
            })
            .saturating_mul(claim.leases_per_slot.max(1));
        cap.saturating_sub(usize::try_from(leased).unwrap_or(0))
    }
}

/// One task as a claim reads it.
pub(crate) struct TaskRow {
    pub(crate) task_id: i64,
    pub(crate) event_id: Uuid,
    pub(crate) event: EventType,
    pub(crate) event_created_at: OffsetDateTime,
    /// The event's payload, or the task's own body (a redelivery's recorded request).
    pub(crate) body: Vec<u8>,
    /// This attempt's number: claims of the task so far, this one included.
    pub(crate) attempt: u32,
    pub(crate) redelivery: bool,
}

/// The leased task of `row`, for the webhook of `hook` with its decrypted `secret`.
pub(crate) fn claimed(
    hook: &Settings,
    secret: Option<WebhookSecret>,
    lease: LeaseToken,
    lease_until: OffsetDateTime,
    row: TaskRow,
) -> Task {
    Task {
        task_id: row.task_id,
        lease,
        lease_until,
        event_created_at: row.event_created_at,
        hook_failing_since: hook.failing_since,
        max_in_flight: hook.limits.max_in_flight,
        request: DeliveryRequest {
            hook_id: hook.hook_id,
            event_id: row.event_id,
            event: row.event,
            url: hook.payload_url.clone(),
            ssl: hook.ssl,
            secret,
            standard_webhooks: hook.standard_webhooks,
            body: row.body,
            attempt: row.attempt,
            redelivery: row.redelivery,
            timeout: hook.limits.timeout,
        },
    }
}
