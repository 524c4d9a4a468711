//! The JSON form of every entity the binary prints, one shape each, shared by `--json` and
//! `serve`: a webhook (the original's webhook entity), its namespace and last response, a
//! delivery (summary, or in full with request and response), an accepted event, a queued
//! redelivery, and a page of results.
//!
//! Every key is always present, as in the original's entities; absent values are `null`. The
//! API's absolute URLs (a webhook's `url`, a namespace's `url` and `webhooks_url`, a delivery's
//! `url`) need the API's base URL: `serve` knows it (the address it serves), the command line
//! does not and prints `null` there ([`Urls`] is `None`).

use std::time::Duration;

use base64::Engine as _;
use djinn_hook_payload::{EventSet, EventType, redact_userinfo};
use djinn_hook_store::{
    Accepted, BreakerHold, Delivery, LastResponse, LimitHold, Namespace, Webhook,
};
use serde::{Serialize, Serializer};
use time::OffsetDateTime;
use uuid::Uuid;

pub use crate::paths::Urls;

/// A webhook: the original's webhook entity (`id`, `author_id`, `user_id`, `namespace_id`,
/// `payload_url`, `ssl`, `events`, `active`, `url`, `namespace`, `last_response`), then ours
/// (`has_secret`, `standard_webhooks`, `disabled_reason`, `disabled_at`, `created_at`,
/// `max_in_flight` and `timeout_ms`: `null` for the worker's default, `breaker`: `null`, or
/// the open circuit breaker that holds its deliveries, `delivery_limit`: `null` at its cap, or
/// the adaptive limit a worker holds it to (`limit`, `reason`, `paused_until`), `in_flight`: its
/// tasks claimed and not yet completed, `secret_rotating_until`, and `headers`: the custom
/// headers, each name with the value `***`). Never the secret nor a header's value, and never
/// the payload URL's user-info: `https://user:pw@host/` is shown as
/// `https://***@host/` (the store keeps it, and sends it as basic auth).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Webhook)]
pub struct WebhookJson {
    id: i64,
    author_id: Option<i64>,
    /// The owning user's id: users live in the CI server, not here, so always `null`.
    user_id: Option<i64>,
    namespace_id: i64,
    payload_url: String,
    ssl: bool,
    #[schema(value_type = Vec<crate::openapi::EventName>)]
    events: EventSet,
    active: bool,
    /// The webhook's API URL; `null` without an API base URL.
    url: Option<String>,
    namespace: NamespaceJson,
    last_response: Option<LastResponseJson>,
    has_secret: bool,
    standard_webhooks: bool,
    disabled_reason: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    disabled_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    max_in_flight: Option<u32>,
    timeout_ms: Option<u64>,
    #[schema(value_type = Option<crate::openapi::BreakerHold>)]
    breaker: Option<BreakerHold>,
    #[schema(value_type = Option<crate::openapi::LimitHold>)]
    delivery_limit: Option<LimitHold>,
    in_flight: u64,
    /// While a secret rotation's overlap lasts, when it ends (deliveries carry a signature
    /// with the previous secret too until then); else `null`.
    #[serde(with = "time::serde::rfc3339::option")]
    secret_rotating_until: Option<OffsetDateTime>,
    /// The webhook's custom headers: each name, with the value `***`.
    #[schema(value_type = std::collections::BTreeMap<String, String>)]
    headers: MaskedHeaders,
}

/// A webhook's custom headers as shown: a JSON object of each name (in the order sent) with
/// the value `***`.
#[derive(Debug)]
struct MaskedHeaders(Vec<String>);

impl Serialize for MaskedHeaders {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for name in &self.0 {
            map.serialize_entry(name, djinn_hook_store::KEEP_HEADER_VALUE)?;
        }
        map.end()
    }
}

impl WebhookJson {
    /// The webhook `hook` of namespace `ns`, with its last response.
    pub fn new(
        urls: Option<&Urls>,
        hook: &Webhook,
        ns: &Namespace,
        last: Option<&LastResponse>,
    ) -> WebhookJson {
        WebhookJson {
            id: hook.id,
            author_id: hook.author_id,
            user_id: None,
            namespace_id: ns.id,
            payload_url: redact_userinfo(&hook.payload_url).into_owned(),
            ssl: hook.ssl,
            events: hook.events,
            active: hook.active,
            url: urls.map(|u| u.webhook(&ns.name, hook.id)),
            namespace: NamespaceJson::new(urls, ns),
            last_response: last.map(LastResponseJson::new),
            has_secret: hook.has_secret,
            standard_webhooks: hook.standard_webhooks,
            disabled_reason: hook.disabled_reason.clone(),
            disabled_at: hook.disabled_at,
            created_at: hook.created_at,
            max_in_flight: hook.limits.max_in_flight,
            timeout_ms: hook
                .limits
                .timeout
                .map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
            breaker: hook.breaker.clone(),
            delivery_limit: hook.delivery_limit.clone(),
            in_flight: hook.in_flight,
            secret_rotating_until: hook.secret_rotating_until,
            headers: MaskedHeaders(hook.headers.clone()),
        }
    }
}

/// The answer to a secret rotation: the webhook, and the new secret only if it was generated
/// (shown this once; a secret the caller gave is never echoed).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Rotated)]
pub struct RotatedJson {
    #[serde(flatten)]
    webhook: WebhookJson,
    #[serde(skip_serializing_if = "Option::is_none")]
    generated_secret: Option<String>,
}

impl RotatedJson {
    /// `webhook` after its rotation, with the secret generated for it, if any.
    pub fn new(webhook: WebhookJson, generated_secret: Option<String>) -> RotatedJson {
        RotatedJson {
            webhook,
            generated_secret,
        }
    }
}

/// A new random webhook secret: `whsec_` and 32 random bytes in base64, usable by both
/// signature schemes (Standard Webhooks decodes it; `X-Djinn-CI-Signature` keys with its text).
pub(crate) fn generate_secret() -> Result<String, djinn_hook_sign::SignError> {
    Ok(djinn_hook_sign::StandardSecret::generate()?.to_whsec())
}

/// A webhook's namespace, as the original's namespace entity names things: `name` is the last
/// segment (`child`), `path` everything below the owner (`parent/child`); `owner` (ours) is the
/// first segment, so `owner/path` is the namespace's full name.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = WebhookNamespace)]
pub struct NamespaceJson {
    id: i64,
    parent_id: Option<i64>,
    name: String,
    path: String,
    owner: String,
    /// `/n/:owner/:path`; `null` without an API base URL.
    url: Option<String>,
    /// `/n/:owner/:path/-/webhooks`; `null` without an API base URL.
    webhooks_url: Option<String>,
}

impl NamespaceJson {
    fn new(urls: Option<&Urls>, ns: &Namespace) -> NamespaceJson {
        NamespaceJson {
            id: ns.id,
            parent_id: ns.parent_id,
            name: ns.path().rsplit('/').next().unwrap_or_default().to_owned(),
            path: ns.path().to_owned(),
            owner: ns.owner().to_owned(),
            url: urls.map(|u| u.namespace(&ns.name)),
            webhooks_url: urls.map(|u| u.webhooks(&ns.name)),
        }
    }
}

/// `last_response`: the original's `code`, `duration` (ns), `error`, `created_at`, and the
/// `delivery_id` it comes from.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = LastResponse)]
struct LastResponseJson {
    code: Option<u16>,
    /// How long the attempt took, in nanoseconds.
    #[serde(serialize_with = "nanos")]
    #[schema(value_type = u64)]
    duration: Duration,
    error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    delivery_id: i64,
}

impl LastResponseJson {
    fn new(last: &LastResponse) -> LastResponseJson {
        LastResponseJson {
            code: last.code,
            duration: last.duration,
            error: last.error.clone(),
            created_at: last.created_at,
            delivery_id: last.delivery_id,
        }
    }
}

/// One delivery attempt as lists show it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Delivery)]
pub struct DeliveryJson {
    id: i64,
    hook_id: i64,
    event_id: Uuid,
    #[schema(value_type = crate::openapi::EventName)]
    event: EventType,
    attempt: u32,
    redelivery: bool,
    /// Sent by `hook test`, not for an event the CI server handed over.
    test: bool,
    /// The response status; `null` when no response came.
    code: Option<u16>,
    /// How long the attempt took, in nanoseconds.
    #[serde(serialize_with = "nanos")]
    #[schema(value_type = u64)]
    duration: Duration,
    /// The attempt's result: `success`, `http_status`, `redirect_not_followed`, `timeout`,
    /// `connect_refused`, `blocked`, `tls_error` or `other`.
    #[schema(value_type = String)]
    result: &'static str,
    error: Option<String>,
    /// Any result but `success`.
    failed: bool,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    /// The delivery's API URL; `null` without an API base URL.
    url: Option<String>,
}

impl DeliveryJson {
    /// The summary of `d`; `url` is its API URL, when known.
    pub fn new(d: &Delivery, url: Option<String>) -> DeliveryJson {
        DeliveryJson {
            id: d.id,
            hook_id: d.hook_id,
            event_id: d.event_id,
            event: d.event,
            attempt: d.attempt,
            redelivery: d.redelivery,
            test: d.test,
            code: d.response_status,
            duration: d.duration,
            result: d.result.as_str(),
            error: d.error.clone(),
            failed: d.failed(),
            created_at: d.created_at,
            url,
        }
    }
}

/// One delivery attempt in full: the summary's fields, then `tls_verification_skipped` and the
/// request and response as recorded.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = DeliveryFull)]
pub struct DeliveryFullJson {
    #[serde(flatten)]
    summary: DeliveryJson,
    tls_verification_skipped: bool,
    request: MessageJson,
    response: MessageJson,
}

impl DeliveryFullJson {
    /// Everything recorded of `d`; `url` is its API URL, when known.
    pub fn new(d: &Delivery, url: Option<String>) -> DeliveryFullJson {
        DeliveryFullJson {
            summary: DeliveryJson::new(d, url),
            tls_verification_skipped: d.tls_verification_skipped,
            request: MessageJson::new(&d.request_headers, &d.request_body, d.request_truncated),
            response: MessageJson::new(&d.response_headers, &d.response_body, d.response_truncated),
        }
    }
}

/// A request or response: headers in order as `[name, value]` pairs, the body as UTF-8 text
/// when it is valid UTF-8, else base64 (`body_encoding` says which), and whether the stored
/// body was cut short.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Message)]
struct MessageJson {
    #[schema(value_type = Vec<Vec<String>>)]
    headers: Vec<(String, String)>,
    body: String,
    #[schema(value_type = String)]
    body_encoding: &'static str,
    truncated: bool,
}

impl MessageJson {
    fn new(headers: &[(String, String)], body: &[u8], truncated: bool) -> MessageJson {
        let (body, body_encoding) = match std::str::from_utf8(body) {
            Ok(text) => (text.to_owned(), "utf-8"),
            Err(_) => (
                base64::engine::general_purpose::STANDARD.encode(body),
                "base64",
            ),
        };
        MessageJson {
            headers: headers.to_vec(),
            body,
            body_encoding,
            truncated,
        }
    }
}

/// An accepted event: its id, type, and how many webhooks it was queued for.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Accepted)]
pub struct AcceptedJson {
    event_id: Uuid,
    #[schema(value_type = crate::openapi::EventName)]
    event: EventType,
    matched: usize,
}

impl AcceptedJson {
    /// The event `event`, accepted as `accepted`.
    pub fn new(event: EventType, accepted: &Accepted) -> AcceptedJson {
        AcceptedJson {
            event_id: accepted.event_id,
            event,
            matched: accepted.matched,
        }
    }
}

/// A batch of events accepted: each event's answer, in the batch's order.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = BatchAccepted)]
pub struct BatchAcceptedJson {
    events: Vec<AcceptedJson>,
}

impl BatchAcceptedJson {
    /// The events of types `events`, accepted as `accepted` (in the same order).
    pub fn new(events: &[EventType], accepted: &[Accepted]) -> BatchAcceptedJson {
        BatchAcceptedJson {
            events: events
                .iter()
                .zip(accepted)
                .map(|(&event, accepted)| AcceptedJson::new(event, accepted))
                .collect(),
        }
    }
}

/// A redelivery queued: the new task, the webhook, the event, and the delivery sent again.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Redelivery)]
pub struct RedeliveryJson {
    queued: bool,
    task_id: i64,
    hook_id: i64,
    event_id: Uuid,
    redelivery_of: i64,
}

/// The answer to a bulk recovery: how many events were queued again.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Recovered)]
pub struct RecoveredJson {
    queued: u64,
}

impl RecoveredJson {
    /// `queued` events queued again.
    pub fn new(queued: u64) -> RecoveredJson {
        RecoveredJson { queued }
    }
}

impl RedeliveryJson {
    /// Delivery `of` queued again as task `task_id`.
    pub fn new(of: &Delivery, task_id: i64) -> RedeliveryJson {
        RedeliveryJson {
            queued: true,
            task_id,
            hook_id: of.hook_id,
            event_id: of.event_id,
            redelivery_of: of.id,
        }
    }
}

/// A page of a list on the command line: the items, the page number (from 1), and whether a
/// next page exists. (`serve` answers the bare array and a `Link` header.)
#[derive(Debug, Serialize)]
pub struct PageJson<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// The page number, from 1.
    pub page: u32,
    /// Whether a next page exists.
    pub has_next: bool,
}

/// A duration as whole nanoseconds, as the original's.
fn nanos<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_text_when_utf8_else_base64() {
        let text = MessageJson::new(&[], "héllo".as_bytes(), false);
        assert_eq!((text.body.as_str(), text.body_encoding), ("héllo", "utf-8"));
        let binary = MessageJson::new(&[], &[0xff, 0x00, 0x41], true);
        assert_eq!(
            (binary.body.as_str(), binary.body_encoding),
            ("/wBB", "base64")
        );
        assert!(binary.truncated);
    }

    #[test]
    fn namespaces_name_the_last_segment_and_the_path_below_the_owner() {
        let ns = Namespace {
            id: 3,
            name: "alice/parent/child".to_owned(),
            parent_id: Some(2),
            created_at: OffsetDateTime::UNIX_EPOCH,
        };
        let urls = Urls {
            base: "http://h".to_owned(),
        };
        let check = |urls: Option<&Urls>, expect: serde_json::Value| {
            let got = serde_json::to_value(NamespaceJson::new(urls, &ns)).unwrap();
            assert_eq!(got, expect);
        };
        check(
            Some(&urls),
            serde_json::json!({
                "id": 3, "parent_id": 2, "name": "child", "path": "parent/child", "owner": "alice",
                "url": "http://h/n/alice/parent/child",
                "webhooks_url": "http://h/n/alice/parent/child/-/webhooks",
            }),
        );
        check(
            None,
            serde_json::json!({
                "id": 3, "parent_id": 2, "name": "child", "path": "parent/child", "owner": "alice",
                "url": null, "webhooks_url": null,
            }),
        );
    }
}
