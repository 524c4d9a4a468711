//! Webhook field validation, reported as field -> messages (the original's API error shape).

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use djinn_hook_payload::{EventSet, EventType};
use serde::Serialize;

use crate::types::DeliveryLimits;
pub(crate) use crate::types::is_https;

/// Validation failures by field name, serialised as the original's API error
/// shape: `{"payload_url": ["..."], "events": ["unknown event \"x\""]}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ValidationErrors(BTreeMap<String, Vec<String>>);

impl ValidationErrors {
    /// Adds a message for a field.
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0
            .entry(field.to_owned())
            .or_default()
            .push(message.into());
    }

    /// Whether there are no errors.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The messages for one field (empty if it is fine).
    pub fn field(&self, field: &str) -> &[String] {
        self.0.get(field).map_or(&[], Vec::as_slice)
    }

    /// Every field with its messages, in field-name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (field, messages) in &self.0 {
            for message in messages {
                if !first {
                    f.write_str("; ")?;
                }
                first = false;
                write!(f, "{field} {message}")?;
            }
        }
        Ok(())
    }
}

/// Checks a payload URL: present, http or https, with a host, and accepted by the URI parser
/// the HTTP client sends with (`http::Uri`), so nothing stored fails only at delivery. A
/// non-ASCII host is IDNA-encoded (`bücher.example` becomes `xn--bcher-kva.example`). Returns
/// the trimmed (and encoded) URL and whether it is https. Messages never quote the URL: it may
/// hold credentials.
pub(crate) fn payload_url(url: &str, errors: &mut ValidationErrors) -> Option<(String, bool)> {
    let mut refuse = |message: &str| {
        errors.add("payload_url", message);
        None
    };
    let url = url.trim();
    if url.is_empty() {
        return refuse("is required");
    }
    let https = match url.split_once("://") {
        Some((s, _)) if s.eq_ignore_ascii_case("https") => true,
        Some((s, _)) if s.eq_ignore_ascii_case("http") => false,
        _ => return refuse("must be an http or https URL"),
    };
    let host = host_range(url);
    if host.is_empty() {
        return refuse("must have a host");
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return refuse("must not contain spaces or control characters");
    }
    let url = if url[host.clone()].is_ascii() {
        url.to_owned()
    } else {
        match idna::domain_to_ascii(&url[host.clone()]) {
            Ok(ascii) => format!("{}{ascii}{}", &url[..host.start], &url[host.end..]),
            Err(_) => {
                return refuse("has a host that is not a valid internationalised domain name");
            }
        }
    };
    match http::Uri::try_from(&url) {
        Err(e) => return refuse(&format!("is not a URL the HTTP client can send ({e})")),
        // The client would quietly use the scheme's default port instead.
        Ok(uri) if !port_fits(&uri) => {
            return refuse("has a port that is not a number from 0 to 65535");
        }
        Ok(_) => {}
    }
    Some((url, https))
}

/// Whether the port of `uri`, if it names one, is a number the client can use.
fn port_fits(uri: &http::Uri) -> bool {
    let authority = uri.authority().map_or("", |a| a.as_str());
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    match host_port.rsplit_once(':') {
        Some((_, port)) if !port.contains(']') && !port.is_empty() => port.parse::<u16>().is_ok(),
        _ => true,
    }
}

/// Where the host of `url` (`scheme://[userinfo@]host[:port]...`) is, brackets of an IPv6
/// literal excluded; empty when there is none.
fn host_range(url: &str) -> Range<usize> {
    let Some((_, rest)) = url.split_once("://") else {
        return 0..0;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let start = url.len() - rest.len() + authority.len() - host_port.len();
    if let Some(v6) = host_port.strip_prefix('[') {
        return v6
            .split_once(']')
            .map_or(0..0, |(h, _)| start + 1..start + 1 + h.len());
    }
    start..start + host_port.split(':').next().unwrap_or("").len()
}

/// Checks a signing secret: its Standard Webhooks key must derive as the sender derives it
/// (`djinn_hook_sign::StandardSecret::for_webhook_secret`): a `whsec_…` secret must be padded
/// base64 of 24 to 64 bytes, or every delivery with Standard Webhooks on would fail on it; any
/// other secret is a key as typed. The message never quotes the secret.
pub(crate) fn secret(secret: &str, errors: &mut ValidationErrors) {
    if let Err(err) = djinn_hook_sign::StandardSecret::for_webhook_secret(secret) {
        errors.add(
            "secret",
            format!("starts with whsec_ but is not a Standard Webhooks secret: {err}"),
        );
    }
}

/// Checks event names; an empty list means all events.
pub(crate) fn events(names: &[String], errors: &mut ValidationErrors) -> Option<EventSet> {
    let mut set = EventSet::empty();
    let mut ok = true;
    for name in names {
        match EventType::from_name(name.trim()) {
            Ok(event) => set.insert(event),
            Err(_) => {
                ok = false;
                errors.add("events", format!("unknown event {:?}", name.trim()));
            }
        }
    }
    if !ok {
        return None;
    }
    Some(if names.is_empty() {
        EventSet::all()
    } else {
        set
    })
}

/// `ssl` true needs an https URL.
pub(crate) fn ssl(ssl: bool, https: bool, errors: &mut ValidationErrors) {
    if ssl && !https {
        errors.add("ssl", "requires an https payload_url");
    }
}

/// The namespace name: `owner/path`, no empty segments, and nothing a URL path would change:
/// every namespace is a path of the API and the web UI, and a browser (or any WHATWG URL
/// parser) folds away a `.` or `..` segment and reads a backslash as `/`, so such a name would
/// be a link into another namespace.
pub(crate) fn namespace(name: &str) -> Result<(), &'static str> {
    if name.split('/').count() < 2 {
        return Err("expected owner/path");
    }
    if name.split('/').any(|s| s.trim().is_empty()) {
        return Err("empty or blank segment");
    }
    if name.chars().any(|c| c.is_control()) {
        return Err("control character");
    }
    if name.split('/').any(|s| s == "..") {
        return Err("segment \"..\" (a URL path folds it away)");
    }
    if name.split('/').any(|s| s == ".") {
        return Err("segment \".\" (a URL path folds it away)");
    }
    if name.contains('\\') {
        return Err("backslash (a browser reads it as /)");
    }
    Ok(())
}

/// A valid namespace's ancestors and itself, outermost first: `owner/a`, `owner/a/b` for
/// `owner/a/b` (the owner alone is no namespace).
pub(crate) fn namespace_lineage(name: &str) -> impl Iterator<Item = String> + '_ {
    let segments: Vec<&str> = name.split('/').collect();
    (2..=segments.len()).map(move |end| segments[..end].join("/"))
}

/// Checks a webhook's own delivery limits against their ranges.
pub(crate) fn limits(limits: &DeliveryLimits, errors: &mut ValidationErrors) {
    if let Some(n) = limits.max_in_flight
        && !(1..=DeliveryLimits::MAX_IN_FLIGHT).contains(&n)
    {
        errors.add(
            "max_in_flight",
            format!(
                "must be between 1 and {}, got {n}",
                DeliveryLimits::MAX_IN_FLIGHT
            ),
        );
    }
    if let Some(t) = limits.timeout
        && !(DeliveryLimits::MIN_TIMEOUT..=DeliveryLimits::MAX_TIMEOUT).contains(&t)
    {
        errors.add(
            "timeout",
            format!(
                "must be between {} ms and {} s, got {} ms",
                DeliveryLimits::MIN_TIMEOUT.as_millis(),
                DeliveryLimits::MAX_TIMEOUT.as_secs(),
                t.as_millis()
            ),
        );
    }
}
