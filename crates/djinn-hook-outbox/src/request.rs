//! What to deliver: [`DeliveryRequest`], the webhook's [`WebhookSecret`] and its
//! [`CustomHeader`]s.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use djinn_hook_payload::{EventType, redact_userinfo};
use uuid::Uuid;

use crate::trace::TraceParent;

/// A webhook's secret, as the user set it (the store decrypts it just before delivery).
///
/// Its `Debug` never shows the value. Cloning shares the string.
///
/// The same secret serves both schemes: `X-Djinn-CI-Signature` is HMAC-SHA256 keyed with the
/// secret's UTF-8 bytes; the Standard Webhooks key is the base64-decoded part after `whsec_`
/// when the secret starts with `whsec_`, and the secret's UTF-8 bytes otherwise.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Arc<str>);

impl WebhookSecret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<Arc<str>>) -> WebhookSecret {
        WebhookSecret(secret.into())
    }

    /// The secret itself. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for WebhookSecret {
    fn from(secret: &str) -> WebhookSecret {
        WebhookSecret::new(secret)
    }
}

impl From<String> for WebhookSecret {
    fn from(secret: String) -> WebhookSecret {
        WebhookSecret::new(secret)
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

/// A header a webhook's owner asked every delivery to carry (e.g. the `X-Api-Key` a receiver's
/// gateway demands). Its value is treated as a secret: its `Debug` shows the name only, and the
/// delivery log records it as [`CustomHeader::MASK`].
///
/// The store checks names and values when they are set (a valid HTTP header, not one the
/// delivery sets itself); a deliverer sends them as they are.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CustomHeader {
    /// The header's name, as the user wrote it.
    pub name: String,
    value: Arc<str>,
}

impl CustomHeader {
    /// What is shown and recorded instead of a custom header's value.
    pub const MASK: &'static str = "***";

    /// A header `name: value`.
    pub fn new(name: impl Into<String>, value: impl Into<Arc<str>>) -> CustomHeader {
        CustomHeader {
            name: name.into(),
            value: value.into(),
        }
    }

    /// The value itself. Never log it.
    pub fn expose(&self) -> &str {
        &self.value
    }
}

impl fmt::Debug for CustomHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CustomHeader({}: <redacted>)", self.name)
    }
}

/// One POST to make: the event, the webhook's delivery settings, and the exact body bytes.
/// Its `Debug` shows the URL without its user-info.
///
/// Made with [`DeliveryRequest::new`] (the defaults are on each field), then changed by setting
/// its fields.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeliveryRequest {
    /// The webhook's id (`X-Djinn-CI-Hook-ID`).
    pub hook_id: i64,
    /// The event's id (`X-Djinn-CI-Delivery`, and `webhook-id` with Standard Webhooks): the same
    /// on every retry and redelivery, so receivers can de-duplicate.
    pub event_id: Uuid,
    /// The event type (`X-Djinn-CI-Event`).
    pub event: EventType,
    /// The payload URL.
    pub url: String,
    /// Verify the receiver's certificate on `https` URLs (when off, verification is skipped and
    /// the attempt record says so). Has no effect on `http` URLs.
    pub ssl: bool,
    /// The webhook's secret; without one, no signature headers are sent.
    pub secret: Option<WebhookSecret>,
    /// The secret it replaced, while a rotation's overlap lasts: `webhook-signature` carries
    /// a signature with each (`X-Djinn-CI-Signature` only the new one's). Ignored without
    /// [`secret`](Self::secret).
    pub previous_secret: Option<WebhookSecret>,
    /// Also send the Standard Webhooks headers (`webhook-id`, `webhook-timestamp`,
    /// `webhook-signature`); needs a secret.
    pub standard_webhooks: bool,
    /// The exact body bytes (the payload JSON), signed and sent as they are.
    pub body: Vec<u8>,
    /// Which attempt this is: 1 for the first, 2 for the first retry, ...
    pub attempt: u32,
    /// Set when this webhook already had a delivery of this event (a manual redelivery).
    pub redelivery: bool,
    /// The webhook's own overall timeout for this attempt; `None`: the deliverer's default.
    pub timeout: Option<Duration>,
    /// The trace of the event's intake (W3C Trace Context), if it had one: the attempt sends a
    /// `traceparent` of the same trace, so the receiver continues it. `None`: no `traceparent`.
    pub traceparent: Option<TraceParent>,
    /// The webhook's custom headers, sent after the ones the delivery sets. Default: none.
    pub headers: Vec<CustomHeader>,
}

impl DeliveryRequest {
    /// A first attempt (`attempt` 1) to POST `body` as `event` (with id `event_id`) of webhook
    /// `hook_id` to `url`: certificates verified (`ssl`), no secret (so no signature), no
    /// Standard Webhooks headers, not a redelivery, the deliverer's timeout, no trace.
    pub fn new(
        hook_id: i64,
        event_id: Uuid,
        event: EventType,
        url: impl Into<String>,
        body: impl Into<Vec<u8>>,
    ) -> DeliveryRequest {
        DeliveryRequest {
            hook_id,
            event_id,
            event,
            url: url.into(),
            ssl: true,
            secret: None,
            previous_secret: None,
            standard_webhooks: false,
            body: body.into(),
            attempt: 1,
            redelivery: false,
            timeout: None,
            traceparent: None,
            headers: Vec::new(),
        }
    }
}

impl fmt::Debug for DeliveryRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeliveryRequest")
            .field("hook_id", &self.hook_id)
            .field("event_id", &self.event_id)
            .field("event", &self.event)
            .field("url", &redact_userinfo(&self.url))
            .field("ssl", &self.ssl)
            .field("secret", &self.secret)
            .field("previous_secret", &self.previous_secret)
            .field("standard_webhooks", &self.standard_webhooks)
            .field("body_len", &self.body.len())
            .field("attempt", &self.attempt)
            .field("redelivery", &self.redelivery)
            .field("timeout", &self.timeout)
            .field("traceparent", &self.traceparent)
            .field("headers", &self.headers)
            .finish()
    }
}
