//! The names of every HTTP header a delivery carries, in one place: the sender sets them, the
//! receiver ([`Verifier`](crate::Verifier), with the `http` feature), the relay and the intake
//! API read them, and tests and benches use them too.
//!
//! They live here, beside the signatures, because the two signature schemes are carried by these
//! headers and a receiver that checks a request needs their names; every crate that touches a
//! delivery depends on this one. Names only: this module costs no dependency.

/// The event of a delivery, e.g. `X-Djinn-CI-Event: build.submitted`; also the header that
/// names the event of a `POST /n/{namespace}/-/events`.
pub const EVENT: &str = "X-Djinn-CI-Event";
/// The id of the webhook a delivery is for, e.g. `X-Djinn-CI-Hook-ID: 42`.
pub const HOOK_ID: &str = "X-Djinn-CI-Hook-ID";
/// The event's UUID, the same on every retry and redelivery: a receiver deduplicates on it.
pub const DELIVERY: &str = "X-Djinn-CI-Delivery";
/// The Djinn CI signature of the body: `sha256=<64 lowercase hex>`.
pub const SIGNATURE: &str = "X-Djinn-CI-Signature";
/// Standard Webhooks: the message id, the same for every attempt of one message.
pub const WEBHOOK_ID: &str = "webhook-id";
/// Standard Webhooks: the attempt's Unix time in seconds.
pub const WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
/// Standard Webhooks: the space-separated `v1,<base64>` signatures.
pub const WEBHOOK_SIGNATURE: &str = "webhook-signature";
/// W3C Trace Context: the trace of the event's intake, with the delivery attempt's span as the
/// parent, so a receiver can continue the trace (sent only when the event has a trace).
pub const TRACEPARENT: &str = "traceparent";
