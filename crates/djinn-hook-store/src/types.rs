//! The store's data types: namespaces, webhooks, events, tasks and deliveries.

use std::fmt;
use std::time::Duration;

use djinn_hook_outbox::{AttemptOutcome, TraceParent};
use djinn_hook_payload::{EventSet, EventType, redact_userinfo};
use serde::{Serialize, Serializer};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::idempotency::IdempotencyKey;

/// A namespace, addressed as `owner/path` (as in the original's
/// `/n/:username/:path`); `path` may have several segments (`owner/parent/child`),
/// whose parent is the namespace one segment shorter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Namespace {
    /// The store's id of the namespace.
    pub id: i64,
    /// The full name, `owner/path`.
    pub name: String,
    /// The parent's id; `None` for a top-level `owner/path`.
    pub parent_id: Option<i64>,
    /// When the store first saw the namespace.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl Namespace {
    /// The owner (the first segment of the name).
    pub fn owner(&self) -> &str {
        self.name.split_once('/').map_or(&self.name, |(o, _)| o)
    }

    /// The path below the owner (everything after the first `/`).
    pub fn path(&self) -> &str {
        self.name.split_once('/').map_or("", |(_, p)| p)
    }
}

/// A stored webhook. Its secret is never part of it: only [`Webhook::has_secret`]. Its `Debug`
/// shows the payload URL without its user-info.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct Webhook {
    /// The webhook's id (sent as `X-Djinn-CI-Hook-ID`).
    pub id: i64,
    /// The namespace it belongs to, `owner/path`.
    pub namespace: String,
    /// The user who created it, if known.
    pub author_id: Option<i64>,
    /// Where deliveries are POSTed.
    pub payload_url: String,
    /// Whether the TLS certificate must be verified.
    pub ssl: bool,
    /// The events it fires on (stored as the original's bit mask).
    pub events: EventSet,
    /// Whether deliveries are made at all.
    pub active: bool,
    /// Whether Standard Webhooks headers are sent too.
    pub standard_webhooks: bool,
    /// Whether a signing secret is set.
    pub has_secret: bool,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Why the delivery layer disabled it (e.g. `410 Gone`), if it did.
    pub disabled_reason: Option<String>,
    /// When the delivery layer disabled it.
    #[serde(with = "time::serde::rfc3339::option")]
    pub disabled_at: Option<OffsetDateTime>,
    /// The time of the first failed attempt since the last success.
    #[serde(with = "time::serde::rfc3339::option")]
    pub failing_since: Option<OffsetDateTime>,
    /// Its own delivery limits (unset ones are the worker's defaults).
    pub limits: DeliveryLimits,
    /// The open circuit breaker that last put its deliveries off: its destination as the
    /// worker recorded it, until when and why as every process shares it (the breaker's next
    /// probe, after a failed one too); `None` once the breaker closed or a delivery succeeded.
    pub breaker: Option<BreakerHold>,
    /// Its adaptive delivery limit while a worker holds it below its cap or paused, as the
    /// worker last recorded it; `None` at its cap.
    pub delivery_limit: Option<LimitHold>,
    /// Its tasks claimed by a worker and not yet completed (queued there or being delivered).
    pub in_flight: u64,
    /// While a secret rotation's overlap lasts
    /// ([`Store::rotate_secret`](crate::Store::rotate_secret)), when it ends: until then deliveries
    /// are signed with the previous secret too.
    #[serde(with = "time::serde::rfc3339::option")]
    pub secret_rotating_until: Option<OffsetDateTime>,
    /// The names of its custom headers, in the order sent; their values are stored encrypted
    /// and never returned (shown as `***`).
    pub headers: Vec<String>,
}

/// A webhook's own delivery limits; `None` leaves a limit to the worker's default. Made with
/// `DeliveryLimits::default()` (both `None`), then set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DeliveryLimits {
    /// Most deliveries of this webhook at once (1 to [`DeliveryLimits::MAX_IN_FLIGHT`]).
    pub max_in_flight: Option<u32>,
    /// The overall timeout of one attempt, from connecting to the last byte of the response
    /// (between [`DeliveryLimits::MIN_TIMEOUT`] and [`DeliveryLimits::MAX_TIMEOUT`]; JSON:
    /// milliseconds).
    #[serde(serialize_with = "millis_option")]
    pub timeout: Option<Duration>,
}

impl DeliveryLimits {
    /// The highest `max_in_flight` accepted.
    pub const MAX_IN_FLIGHT: u32 = 1_000;
    /// The shortest `timeout` accepted.
    pub const MIN_TIMEOUT: Duration = Duration::from_millis(100);
    /// The longest `timeout` accepted: twice the original's one minute, well within the
    /// worker's default lease of five minutes.
    pub const MAX_TIMEOUT: Duration = Duration::from_secs(120);
}

/// A change of a webhook's [`DeliveryLimits`]: `None` keeps a limit, `Some(None)` returns it to
/// the worker's default, `Some(Some(v))` sets it. Made with `LimitsUpdate::default()` (keeps
/// both), then set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LimitsUpdate {
    /// Keep, reset or set `max_in_flight`.
    pub max_in_flight: Option<Option<u32>>,
    /// Keep, reset or set `timeout`.
    pub timeout: Option<Option<Duration>>,
}

/// An open circuit breaker holding a webhook's deliveries: its destination, until when it is
/// open, and why it opened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BreakerHold {
    /// `scheme://host:port` of the receiver.
    pub destination: String,
    /// When the breaker lets one probe through.
    #[serde(with = "time::serde::rfc3339")]
    pub until: OffsetDateTime,
    /// Why it opened, e.g. `5 consecutive timeouts`.
    pub reason: String,
}

/// A webhook's adaptive delivery limit below its cap, or its pause, as a worker recorded it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LimitHold {
    /// Deliveries it may have under way at once (0 while paused).
    pub limit: u32,
    /// Why: `timeouts`, `slow answers` or `throttled`.
    pub reason: String,
    /// While paused after a 429 or 503, until when.
    #[serde(with = "time::serde::rfc3339::option")]
    pub paused_until: Option<OffsetDateTime>,
}

/// The fields of a webhook to create. `events` are wire names; an empty list
/// means all events. Its `Debug` never shows the secret. Made with [`NewWebhook::new`], then
/// set.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewWebhook {
    /// The namespace, `owner/path`; it must exist.
    pub namespace: String,
    /// The user creating it, if known.
    pub author_id: Option<i64>,
    /// Where deliveries are POSTed: http or https, with a host.
    pub payload_url: String,
    /// Verify the TLS certificate; requires an https URL.
    pub ssl: bool,
    /// Event names; empty means all events.
    pub events: Vec<String>,
    /// Whether deliveries are made at all.
    pub active: bool,
    /// Whether to send Standard Webhooks headers too.
    pub standard_webhooks: bool,
    /// The signing secret, if any; stored encrypted, never returned.
    pub secret: Option<String>,
    /// Its own delivery limits; the default leaves them to the worker.
    pub limits: DeliveryLimits,
    /// Custom headers (name, value) every delivery carries, e.g. an `X-Api-Key`; values are
    /// stored encrypted like the secret. Names the delivery sets are refused. Default: none.
    pub headers: Vec<(String, String)>,
}

impl NewWebhook {
    /// An active webhook on all events, no secret, `ssl` on for https URLs (leading and
    /// trailing spaces aside, as validation trims them).
    pub fn new(namespace: impl Into<String>, payload_url: impl Into<String>) -> NewWebhook {
        let payload_url = payload_url.into();
        NewWebhook {
            namespace: namespace.into(),
            author_id: None,
            ssl: is_https(&payload_url),
            payload_url,
            events: Vec::new(),
            active: true,
            standard_webhooks: false,
            secret: None,
            limits: DeliveryLimits::default(),
            headers: Vec::new(),
        }
    }
}

impl fmt::Debug for NewWebhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewWebhook")
            .field("namespace", &self.namespace)
            .field("author_id", &self.author_id)
            .field("payload_url", &redact_userinfo(&self.payload_url))
            .field("ssl", &self.ssl)
            .field("events", &self.events)
            .field("active", &self.active)
            .field("standard_webhooks", &self.standard_webhooks)
            .field("secret", &self.secret.as_ref().map(|_| Redacted))
            .field("limits", &self.limits)
            .field("headers", &HeaderNames(&self.headers))
            .finish()
    }
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("id", &self.id)
            .field("namespace", &self.namespace)
            .field("author_id", &self.author_id)
            .field("payload_url", &redact_userinfo(&self.payload_url))
            .field("ssl", &self.ssl)
            .field("events", &self.events)
            .field("active", &self.active)
            .field("standard_webhooks", &self.standard_webhooks)
            .field("has_secret", &self.has_secret)
            .field("secret_rotating_until", &self.secret_rotating_until)
            .field("created_at", &self.created_at)
            .field("disabled_reason", &self.disabled_reason)
            .field("disabled_at", &self.disabled_at)
            .field("failing_since", &self.failing_since)
            .field("headers", &self.headers)
            .finish()
    }
}

/// Custom headers in a `Debug`: names, values masked.
struct HeaderNames<'a>(&'a [(String, String)]);

impl fmt::Debug for HeaderNames<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(name, _)| (name, Redacted)))
            .finish()
    }
}

impl fmt::Debug for WebhookUpdate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookUpdate")
            .field(
                "payload_url",
                &self.payload_url.as_deref().map(redact_userinfo),
            )
            .field("ssl", &self.ssl)
            .field("events", &self.events)
            .field("active", &self.active)
            .field("standard_webhooks", &self.standard_webhooks)
            .field("secret", &self.secret)
            .field("headers", &self.headers.as_deref().map(HeaderNames))
            .finish()
    }
}

/// What to do with a webhook's secret in an update.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum SecretUpdate {
    /// Leave it as it is.
    #[default]
    Keep,
    /// Remove it: deliveries are no longer signed.
    Remove,
    /// Replace it (encrypted with a fresh nonce).
    Set(String),
}

impl fmt::Debug for SecretUpdate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretUpdate::Keep => f.write_str("Keep"),
            SecretUpdate::Remove => f.write_str("Remove"),
            SecretUpdate::Set(_) => f.write_str("Set(<redacted>)"),
        }
    }
}

/// A partial update of a webhook: `None` fields are left as they are. Its `Debug` shows neither
/// the secret nor the payload URL's user-info.
///
/// Setting `active: Some(true)` re-enables a webhook: its `disabled_reason`,
/// `disabled_at` and `failing_since` are cleared. Setting `active: Some(false)`
/// marks its pending tasks failed (see [`Store::retry_now`](crate::Store::retry_now)).
///
/// Made with `WebhookUpdate::default()` (changes nothing), then set.
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WebhookUpdate {
    /// A new payload URL.
    pub payload_url: Option<String>,
    /// A new `ssl` setting. `None` keeps it, except when the URL changes scheme: to https
    /// turns verification on (nobody chose to leave it off), to http turns it off.
    pub ssl: Option<bool>,
    /// New event names; an empty list means all events.
    pub events: Option<Vec<String>>,
    /// Activate or deactivate.
    pub active: Option<bool>,
    /// Send Standard Webhooks headers or not.
    pub standard_webhooks: Option<bool>,
    /// Keep, remove or replace the secret.
    pub secret: SecretUpdate,
    /// The new set of custom headers, replacing the stored one (an empty list removes them
    /// all); a value of `***` ([`KEEP_HEADER_VALUE`](crate::KEEP_HEADER_VALUE)) keeps the
    /// stored value of that name. `None` keeps them.
    pub headers: Option<Vec<(String, String)>>,
}

/// An event to accept into the outbox ([`NewEvent::new`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewEvent {
    /// The namespace it happened in, `owner/path`; it must exist.
    pub namespace: String,
    /// What happened.
    pub event: EventType,
    /// The exact body to deliver (the payload JSON).
    pub payload: Vec<u8>,
    /// The trace of its intake (W3C Trace Context), kept with the event so every delivery
    /// continues it; default `None`.
    pub traceparent: Option<TraceParent>,
    /// The client's idempotency key, if it gave one ([`NewEvent::with_idempotency_key`]).
    pub idempotency: Option<IdempotencyKey>,
}

impl NewEvent {
    /// An `event` in `namespace` whose deliveries carry `payload`.
    pub fn new(
        namespace: impl Into<String>,
        event: EventType,
        payload: impl Into<Vec<u8>>,
    ) -> NewEvent {
        NewEvent {
            namespace: namespace.into(),
            event,
            payload: payload.into(),
            traceparent: None,
            idempotency: None,
        }
    }

    /// This event under an idempotency `key` remembered for `window`: within it, the same key
    /// with the same event type and payload in the same namespace answers as the first time
    /// (the same [`Accepted`], [`Accepted::replayed`] set) and stores nothing; with another
    /// type or payload it is [`Error::IdempotencyConflict`](crate::Error::IdempotencyConflict).
    pub fn with_idempotency_key(mut self, key: impl Into<String>, window: Duration) -> NewEvent {
        self.idempotency = Some(IdempotencyKey::new(key, window));
        self
    }
}

/// The outcome of accepting one event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Accepted {
    /// The event's id, shared by all its deliveries: a random UUID (version 4) on SQLite; on
    /// PostgreSQL a version 8 UUID that carries its event's row, masked (not a count a receiver
    /// can read).
    pub event_id: Uuid,
    /// How many webhooks matched, i.e. how many tasks were queued (zero is fine).
    pub matched: usize,
    /// Whether this is the answer given before to the same idempotency key: nothing was stored
    /// this time, and `event_id` and `matched` are the first request's.
    pub replayed: bool,
}

/// What [`Store::complete`](crate::Store::complete) did with one completion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completed {
    /// The id of the recorded delivery; `None` only when the task no longer
    /// exists (its webhook was deleted, taking its log with it, or its event was
    /// pruned), so there is nothing to attach the attempt to.
    pub delivery_id: Option<i64>,
    /// Whether the lease was still held, so the outcome was applied to the task.
    /// When `false` the attempt is recorded but the task is left to its new holder.
    pub lease_held: bool,
}

/// A recorded delivery attempt: the output of the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Delivery {
    /// The delivery's id.
    pub id: i64,
    /// The webhook's id.
    pub hook_id: i64,
    /// The event's id.
    pub event_id: Uuid,
    /// The event's type.
    pub event: EventType,
    /// The 1-based attempt number.
    pub attempt: u32,
    /// Whether it was a redelivery.
    pub redelivery: bool,
    /// Whether it delivered a test event, queued by
    /// [`Store::queue_test`](crate::Store::queue_test) (`hook test`) rather
    /// than accepted from the CI server. A redelivery of a test is a test too.
    pub test: bool,
    /// The request headers sent.
    pub request_headers: Vec<(String, String)>,
    /// The request body sent (at most [`MAX_BODY`](crate::MAX_BODY) bytes).
    #[serde(serialize_with = "lossy_utf8")]
    pub request_body: Vec<u8>,
    /// Whether the stored request body was cut at [`MAX_BODY`](crate::MAX_BODY).
    pub request_truncated: bool,
    /// The response status, if a response came.
    pub response_status: Option<u16>,
    /// The response headers.
    pub response_headers: Vec<(String, String)>,
    /// The response body (at most [`MAX_BODY`](crate::MAX_BODY) bytes).
    #[serde(serialize_with = "lossy_utf8")]
    pub response_body: Vec<u8>,
    /// Whether the response body was cut short.
    pub response_truncated: bool,
    /// Whether the TLS certificate was not verified.
    pub tls_verification_skipped: bool,
    /// How long the attempt took (JSON: nanoseconds).
    #[serde(serialize_with = "nanos")]
    pub duration: Duration,
    /// What went wrong, if anything.
    pub error: Option<String>,
    /// What became of the attempt, as the deliverer classified it: its result (JSON: the
    /// outcome's name, `success`, `http_status`, `timeout`, ...).
    #[serde(serialize_with = "outcome_name")]
    pub result: AttemptOutcome,
    /// When the attempt was made.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl Delivery {
    /// Whether the attempt failed: anything but [`AttemptOutcome::Success`].
    pub fn failed(&self) -> bool {
        self.result != AttemptOutcome::Success
    }
}

/// A webhook's last response, as in the original's `last_response`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LastResponse {
    /// The delivery it comes from.
    pub delivery_id: i64,
    /// The response status, if any.
    pub code: Option<u16>,
    /// How long the attempt took (JSON: nanoseconds, as the original).
    #[serde(serialize_with = "nanos")]
    pub duration: Duration,
    /// What went wrong, if anything.
    pub error: Option<String>,
    /// When the attempt was made.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A webhook's attempts over a time window ([`Store::success_rates`](crate::Store::success_rates)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SuccessRate {
    /// Attempts made in the window.
    pub attempts: u64,
    /// Of those, the ones that got a 2xx without error.
    pub delivered: u64,
}

impl SuccessRate {
    /// Delivered attempts in whole percent, rounded down (100 only when none failed).
    pub fn percent(&self) -> u64 {
        (self.delivered * 100)
            .checked_div(self.attempts)
            .unwrap_or(0)
    }
}

/// Which deliveries to list; the default lists all of them. Made with
/// `DeliveryFilter::default()` or one of the constructors below, then set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeliveryFilter {
    /// Only this webhook's.
    pub hook_id: Option<i64>,
    /// Only this event's.
    pub event_id: Option<Uuid>,
    /// Only deliveries of this event type.
    pub event_type: Option<EventType>,
    /// Only failed ones (an error, no response or a non-2xx status).
    pub failed_only: bool,
    /// `Some(true)`: only test deliveries ([`Delivery::test`]); `Some(false)`:
    /// none of them.
    pub test: Option<bool>,
}

impl DeliveryFilter {
    /// One webhook's deliveries.
    pub fn hook(hook_id: i64) -> DeliveryFilter {
        DeliveryFilter {
            hook_id: Some(hook_id),
            ..DeliveryFilter::default()
        }
    }

    /// One event's deliveries (to every webhook).
    pub fn event(event_id: Uuid) -> DeliveryFilter {
        DeliveryFilter {
            event_id: Some(event_id),
            ..DeliveryFilter::default()
        }
    }

    /// Failed deliveries.
    pub fn failed() -> DeliveryFilter {
        DeliveryFilter {
            failed_only: true,
            ..DeliveryFilter::default()
        }
    }
}

/// A page request: 1-based page number and page size (25 by default, as the original).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    /// The 1-based page number (0 is read as 1).
    pub page: u32,
    /// Items per page (0 is read as 1).
    pub per_page: u32,
}

impl Page {
    /// The default page size, as the original's webhook view.
    pub const DEFAULT_PER_PAGE: u32 = 25;

    /// Page `page` (1-based) of the default size.
    pub fn new(page: u32) -> Page {
        Page {
            page,
            per_page: Page::DEFAULT_PER_PAGE,
        }
    }
}

impl Default for Page {
    fn default() -> Page {
        Page::new(1)
    }
}

/// One page of results.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Paged<T> {
    /// The items, newest first.
    pub items: Vec<T>,
    /// The page these are (1-based).
    pub page: u32,
    /// Whether a next page exists.
    pub has_next: bool,
}

/// Counts for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Tasks waiting for an attempt (due now or later), not leased.
    pub pending: u64,
    /// Tasks currently leased by a worker.
    pub leased: u64,
    /// Tasks given up on (kept for [`Store::retry_now`](crate::Store::retry_now)).
    pub failed: u64,
    /// Webhooks disabled by the delivery layer.
    pub disabled_hooks: u64,
    /// Stored events.
    pub events: u64,
    /// Stored delivery attempts.
    pub deliveries: u64,
    /// Destinations whose circuit breaker is open or probing, as every process shares them.
    pub open_breakers: u64,
}

/// What a prune removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Pruned {
    /// Delivery attempts removed.
    pub deliveries: u64,
    /// Finished events removed (with their failed tasks).
    pub events: u64,
}

struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

fn lossy_utf8<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(bytes))
}

fn millis_option<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        None => s.serialize_none(),
    }
}

fn nanos<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn outcome_name<S: Serializer>(outcome: &AttemptOutcome, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(outcome.as_str())
}

/// Whether `url`, trimmed as validation trims it, is an https URL: where `ssl` (certificate
/// verification) is on unless turned off. Here, not in `validate.rs`, which checks these types:
/// [`NewWebhook::new`] needs it too.
pub(crate) fn is_https(url: &str) -> bool {
    url.trim()
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
}

/// A bulk recovery ([`Store::recover`](crate::Store::recover)): send again the events a
/// webhook's deliveries in a time range carried.
///
/// Made with [`Recovery::new`] (failed ones only, no end), then changed by setting fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Recovery {
    /// The webhook.
    pub hook_id: i64,
    /// Deliveries recorded at or after this time.
    pub since: OffsetDateTime,
    /// Deliveries recorded before this time; `None`: up to now.
    pub until: Option<OffsetDateTime>,
    /// Only events whose last delivery to this webhook failed (the default); `false`: every
    /// event delivered in the range.
    pub failed_only: bool,
}

impl Recovery {
    /// The failed deliveries of webhook `hook_id` recorded since `since`.
    pub fn new(hook_id: i64, since: OffsetDateTime) -> Recovery {
        Recovery {
            hook_id,
            since,
            until: None,
            failed_only: true,
        }
    }
}
