//! Webhook field validation, reported as field -> messages (the original's API error shape).

use std::collections::BTreeMap;
use std::fmt;

use djinn_hook_payload::{EventSet, EventType};
use serde::Serialize;

use crate::types::DeliveryLimits;

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

/// Checks a payload URL: present, http or https, with a host. Returns the
/// trimmed URL and whether it is https.
pub(crate) fn payload_url(url: &str, errors: &mut ValidationErrors) -> Option<(String, bool)> {
    let url = url.trim();
    if url.is_empty() {
        errors.add("payload_url", "is required");
        return None;
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        errors.add("payload_url", "must be an http or https URL");
        return None;
    };
    let https = if scheme.eq_ignore_ascii_case("https") {
        true
    } else if scheme.eq_ignore_ascii_case("http") {
        false
    } else {
        errors.add("payload_url", "must be an http or https URL");
        return None;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split_once(']').map_or("", |(h, _)| h)
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    if host.is_empty() {
        errors.add("payload_url", "must have a host");
        return None;
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        errors.add(
            "payload_url",
            "must not contain spaces or control characters",
        );
        return None;
    }
    Some((url.to_owned(), https))
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

/// The namespace name: `owner/path`, no empty segments.
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
    Ok(())
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
