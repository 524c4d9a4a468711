//! The JSON the API reads and writes: the original's webhook entity, delivery records, request
//! bodies, and how a body that fails to parse is reported.

use std::time::Duration;

use base64::Engine as _;
use djinn_hook_store::{Delivery, LastResponse, Namespace, Webhook};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use uuid::Uuid;

/// Builds the API's absolute URLs.
#[derive(Clone, Debug)]
pub(super) struct Urls {
    /// The base, without a trailing slash, e.g. `http://127.0.0.1:8080`.
    pub(super) base: String,
}

impl Urls {
    /// `/n/:username/:path`, each segment percent-encoded where needed.
    pub(super) fn namespace(&self, ns: &str) -> String {
        let path: Vec<String> = ns.split('/').map(encode_segment).collect();
        format!("{}/n/{}", self.base, path.join("/"))
    }

    /// `/n/:username/:path/-/webhooks`
    pub(super) fn webhooks(&self, ns: &str) -> String {
        format!("{}/-/webhooks", self.namespace(ns))
    }

    /// `/n/:username/:path/-/webhooks/:id`
    pub(super) fn webhook(&self, ns: &str, id: i64) -> String {
        format!("{}/{id}", self.webhooks(ns))
    }

    /// `/n/:username/:path/-/webhooks/:id/deliveries`
    pub(super) fn deliveries(&self, ns: &str, id: i64) -> String {
        format!("{}/deliveries", self.webhook(ns, id))
    }

    /// `/n/:username/:path/-/webhooks/:id/deliveries/:delivery_id`
    pub(super) fn delivery(&self, ns: &str, id: i64, delivery: i64) -> String {
        format!("{}/{delivery}", self.deliveries(ns, id))
    }
}

/// Percent-encodes what may not stand in a path segment as is.
fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The original's webhook entity, plus `has_secret`, `standard_webhooks`, `disabled_reason`
/// and `created_at`. Never the secret.
#[derive(Debug, Serialize)]
pub(super) struct WebhookJson {
    id: i64,
    author_id: Option<i64>,
    /// The owning user's id: this store has no users, so always `null`.
    user_id: Option<i64>,
    namespace_id: i64,
    payload_url: String,
    ssl: bool,
    events: Vec<&'static str>,
    active: bool,
    url: String,
    namespace: NamespaceJson,
    last_response: Option<LastResponseJson>,
    has_secret: bool,
    standard_webhooks: bool,
    disabled_reason: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

impl WebhookJson {
    pub(super) fn new(
        urls: &Urls,
        hook: &Webhook,
        ns: &Namespace,
        last: Option<&LastResponse>,
    ) -> WebhookJson {
        WebhookJson {
            id: hook.id,
            author_id: hook.author_id,
            user_id: None,
            namespace_id: ns.id,
            payload_url: hook.payload_url.clone(),
            ssl: hook.ssl,
            events: hook.events.names(),
            active: hook.active,
            url: urls.webhook(&ns.name, hook.id),
            namespace: NamespaceJson::new(urls, ns),
            last_response: last.map(LastResponseJson::new),
            has_secret: hook.has_secret,
            standard_webhooks: hook.standard_webhooks,
            disabled_reason: hook.disabled_reason.clone(),
            created_at: hook.created_at,
        }
    }
}

/// A small namespace object: `path` is everything below the owner (`parent/child`), `name` its
/// last segment, as the original's namespace entity.
#[derive(Debug, Serialize)]
struct NamespaceJson {
    id: i64,
    parent_id: Option<i64>,
    path: String,
    name: String,
    url: String,
    webhooks_url: String,
}

impl NamespaceJson {
    fn new(urls: &Urls, ns: &Namespace) -> NamespaceJson {
        NamespaceJson {
            id: ns.id,
            parent_id: ns.parent_id,
            path: ns.path().to_owned(),
            name: ns.path().rsplit('/').next().unwrap_or_default().to_owned(),
            url: urls.namespace(&ns.name),
            webhooks_url: urls.webhooks(&ns.name),
        }
    }
}

/// `last_response`: the last attempt's status, duration (ns), error and time.
#[derive(Debug, Serialize)]
struct LastResponseJson {
    code: Option<u16>,
    #[serde(serialize_with = "nanos")]
    duration: Duration,
    error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

impl LastResponseJson {
    fn new(last: &LastResponse) -> LastResponseJson {
        LastResponseJson {
            code: last.code,
            duration: last.duration,
            error: last.error.clone(),
            created_at: last.created_at,
        }
    }
}

/// One delivery attempt: the summary (list) or, with `request`/`response`, the full record.
#[derive(Debug, Serialize)]
pub(super) struct DeliveryJson {
    id: i64,
    hook_id: i64,
    event_id: Uuid,
    event: &'static str,
    attempt: u32,
    redelivery: bool,
    /// Sent by `hook test`, not for an event the CI server handed over.
    test: bool,
    code: Option<u16>,
    #[serde(serialize_with = "nanos")]
    duration: Duration,
    error: Option<String>,
    failed: bool,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_verification_skipped: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request: Option<Message>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response: Option<Message>,
}

/// A request or response: headers in order as `[name, value]` pairs, the body as UTF-8 text
/// when it is valid UTF-8, else base64 (`body_encoding` says which).
#[derive(Debug, Serialize)]
struct Message {
    headers: Vec<(String, String)>,
    body: String,
    body_encoding: &'static str,
    truncated: bool,
}

impl Message {
    fn new(headers: &[(String, String)], body: &[u8], truncated: bool) -> Message {
        let (body, body_encoding) = match std::str::from_utf8(body) {
            Ok(text) => (text.to_owned(), "utf-8"),
            Err(_) => (
                base64::engine::general_purpose::STANDARD.encode(body),
                "base64",
            ),
        };
        Message {
            headers: headers.to_vec(),
            body,
            body_encoding,
            truncated,
        }
    }
}

impl DeliveryJson {
    /// The summary shown in lists.
    pub(super) fn summary(urls: &Urls, ns: &str, d: &Delivery) -> DeliveryJson {
        DeliveryJson {
            id: d.id,
            hook_id: d.hook_id,
            event_id: d.event_id,
            event: d.event.name(),
            attempt: d.attempt,
            redelivery: d.redelivery,
            test: d.test,
            code: d.response_status,
            duration: d.duration,
            error: d.error.clone(),
            failed: d.failed(),
            created_at: d.created_at,
            url: urls.delivery(ns, d.hook_id, d.id),
            tls_verification_skipped: None,
            request: None,
            response: None,
        }
    }

    /// Everything recorded: request and response headers and bodies.
    pub(super) fn full(urls: &Urls, ns: &str, d: &Delivery) -> DeliveryJson {
        DeliveryJson {
            tls_verification_skipped: Some(d.tls_verification_skipped),
            request: Some(Message::new(
                &d.request_headers,
                &d.request_body,
                d.request_truncated,
            )),
            response: Some(Message::new(
                &d.response_headers,
                &d.response_body,
                d.response_truncated,
            )),
            ..DeliveryJson::summary(urls, ns, d)
        }
    }
}

/// The body of `POST …/webhooks`. Unknown fields are ignored, as the original does.
#[derive(Debug, Default, Deserialize)]
pub(super) struct CreateWebhook {
    pub(super) payload_url: Option<String>,
    pub(super) secret: Option<String>,
    pub(super) ssl: Option<bool>,
    pub(super) active: Option<bool>,
    pub(super) events: Option<Vec<String>>,
    pub(super) standard_webhooks: Option<bool>,
}

/// The body of `PATCH …/webhooks/:id`: absent fields stay as they are; `"secret": null` or `""`
/// removes the secret; `"events": null` or `[]` means all events.
#[derive(Debug, Default, Deserialize)]
pub(super) struct UpdateWebhook {
    pub(super) payload_url: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub(super) secret: Option<Option<String>>,
    pub(super) ssl: Option<bool>,
    pub(super) active: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    pub(super) events: Option<Option<Vec<String>>>,
    pub(super) standard_webhooks: Option<bool>,
}

/// `Some(value)` for a field that is present, even as `null` (absent fields get the default, `None`).
fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// What is wrong with a request body that did not parse.
#[derive(Debug)]
pub(super) enum BodyError {
    /// Not well-formed JSON (or not an object): a message naming the problem.
    Malformed(String),
    /// Well-formed, but a field has the wrong type: the field's path and what is wrong.
    Field { path: String, message: String },
}

/// Parses a JSON request body into `T`, naming the bad field or the syntax problem.
pub(super) fn parse_body<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, BodyError> {
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        None => {
            return Err(BodyError::Malformed(
                "malformed JSON: the body is empty; expected a JSON object".to_owned(),
            ));
        }
        // serde would read an array as a struct's fields in order: refuse it here.
        Some(b'[') => {
            return Err(BodyError::Malformed(
                "malformed JSON: an array; expected a JSON object".to_owned(),
            ));
        }
        Some(_) => {}
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let message = without_position(&inner);
        if inner.is_data() && path != "." {
            BodyError::Field { path, message }
        } else if inner.is_data() {
            BodyError::Malformed(format!("malformed JSON: {message}; expected a JSON object"))
        } else {
            malformed(&inner)
        }
    })?;
    de.end().map_err(|err| malformed(&err))?;
    Ok(value)
}

fn malformed(err: &serde_json::Error) -> BodyError {
    BodyError::Malformed(format!(
        "malformed JSON at line {} column {}: {}",
        err.line(),
        err.column(),
        without_position(err)
    ))
}

/// serde_json's message without its ` at line L column C` suffix.
fn without_position(err: &serde_json::Error) -> String {
    let text = err.to_string();
    let suffix = format!(" at line {} column {}", err.line(), err.column());
    text.strip_suffix(&suffix).unwrap_or(&text).to_owned()
}

fn nanos<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_errors_name_the_problem() {
        let check = |body: &str| match parse_body::<CreateWebhook>(body.as_bytes()) {
            Ok(_) => "ok".to_owned(),
            Err(BodyError::Malformed(m)) => m,
            Err(BodyError::Field { path, message }) => format!("{path}: {message}"),
        };
        assert_eq!(check(r#"{"ssl": true}"#), "ok");
        assert_eq!(check(r#"{"x": 1}"#), "ok");
        assert_eq!(
            check(r#"{"ssl": "yes"}"#),
            r#"ssl: invalid type: string "yes", expected a boolean"#
        );
        assert_eq!(
            check(r#"{"events": ["a", 1]}"#),
            "events[1]: invalid type: integer `1`, expected a string"
        );
        assert_eq!(
            check(r#"{"ssl": true"#),
            "malformed JSON at line 1 column 12: EOF while parsing an object"
        );
        assert_eq!(
            check(r#"{} x"#),
            "malformed JSON at line 1 column 4: trailing characters"
        );
        assert_eq!(
            check("[1]"),
            "malformed JSON: an array; expected a JSON object"
        );
        assert_eq!(
            check("7"),
            "malformed JSON: invalid type: integer `7`, expected struct CreateWebhook; expected a JSON object"
        );
        assert_eq!(
            check(""),
            "malformed JSON: the body is empty; expected a JSON object"
        );
    }

    #[test]
    fn update_tells_null_from_absent() {
        let u: UpdateWebhook = parse_body(br#"{"secret": null}"#).unwrap();
        assert_eq!(u.secret, Some(None));
        assert_eq!(u.events, None);
        let u: UpdateWebhook = parse_body(br#"{"events": null, "secret": "s"}"#).unwrap();
        assert_eq!(u.events, Some(None));
        assert_eq!(u.secret, Some(Some("s".to_owned())));
    }

    #[test]
    fn bodies_are_text_when_utf8_else_base64() {
        let text = Message::new(&[], "héllo".as_bytes(), false);
        assert_eq!((text.body.as_str(), text.body_encoding), ("héllo", "utf-8"));
        let binary = Message::new(&[], &[0xff, 0x00, 0x41], true);
        assert_eq!(
            (binary.body.as_str(), binary.body_encoding),
            ("/wBB", "base64")
        );
        assert!(binary.truncated);
    }

    #[test]
    fn urls_encode_segments() {
        let urls = Urls {
            base: "http://h".to_owned(),
        };
        assert_eq!(
            urls.delivery("al ice/a/b", 1, 2),
            "http://h/n/al%20ice/a/b/-/webhooks/1/deliveries/2"
        );
    }
}
