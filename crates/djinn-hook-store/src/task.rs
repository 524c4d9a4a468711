//! A claimed [`Task`] from a webhook's delivery settings and one of its task rows, built the
//! same way by both backends, for a claim and for a test delivery.

use djinn_hook_outbox::{
    ClaimRequest, CustomHeader, DeliveryRequest, LeaseToken, Task, TraceParent, WebhookSecret,
};
use djinn_hook_payload::EventType;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::Result;
use crate::key::Cipher;
use crate::types::DeliveryLimits;

/// A webhook's columns that a delivery needs, its secret still sealed.
pub(crate) struct Settings {
    pub(crate) hook_id: i64,
    pub(crate) payload_url: String,
    pub(crate) ssl: bool,
    pub(crate) sealed_secret: Option<Vec<u8>>,
    pub(crate) standard_webhooks: bool,
    pub(crate) failing_since: Option<OffsetDateTime>,
    pub(crate) limits: DeliveryLimits,
    /// The secret a rotation replaced, sealed, and until when it is still signed with (stored
    /// nanoseconds).
    pub(crate) sealed_previous_secret: Option<Vec<u8>>,
    pub(crate) previous_secret_until: Option<i64>,
    /// Its custom headers, sealed (`custom_headers.rs`).
    pub(crate) sealed_headers: Option<Vec<u8>>,
}

/// A webhook's secrets, decrypted: the current one, the one a rotation replaced while its
/// overlap lasts, and its custom headers.
pub(crate) type Secrets = (
    Option<WebhookSecret>,
    Option<WebhookSecret>,
    Vec<CustomHeader>,
);

impl Settings {
    /// The current and (while its rotation's overlap lasts at `now`) the previous secret, and
    /// the custom headers, decrypted.
    pub(crate) fn open_secrets(&self, cipher: &Cipher, now: OffsetDateTime) -> Result<Secrets> {
        let previous = self
            .sealed_previous_secret
            .as_deref()
            .filter(|_| crate::rotation::live(self.previous_secret_until, now));
        let open = |sealed| {
            cipher
                .open_optional(self.hook_id, sealed)
                .map(|secret| secret.map(WebhookSecret::new))
        };
        let headers = crate::custom_headers::open_for_delivery(
            cipher,
            self.hook_id,
            self.sealed_headers.as_deref(),
        )?;
        Ok((
            open(self.sealed_secret.as_deref())?,
            open(previous)?,
            headers,
        ))
    }

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
    /// The event's intake trace, if it had one.
    pub(crate) traceparent: Option<TraceParent>,
}

/// The leased task of `row`, for the webhook of `hook` with its decrypted `secrets`.
pub(crate) fn claimed(
    hook: &Settings,
    (secret, previous_secret, headers): Secrets,
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
        request: {
            let mut request = DeliveryRequest::new(
                hook.hook_id,
                row.event_id,
                row.event,
                hook.payload_url.clone(),
                row.body,
            );
            request.ssl = hook.ssl;
            request.secret = secret;
            request.previous_secret = previous_secret;
            request.standard_webhooks = hook.standard_webhooks;
            request.attempt = row.attempt;
            request.redelivery = row.redelivery;
            request.timeout = hook.limits.timeout;
            request.traceparent = row.traceparent;
            request.headers = headers;
            request
        },
    }
}
