//! Batches of events, as `POST /n/{ns}/-/events/batch` and `djinn-hooks emit --batch` take
//! them: a JSON array of `{"event": NAME, "payload": {…}, "idempotency_key": KEY}` (the key
//! optional), every item checked before anything is stored.
//!
//! Each item's payload is parsed from its own bytes, as a single event's body is
//! ([`Payload::parse`]), so an event is stored the same whichever way it came. What is wrong is
//! reported for every item at once, each under its JSON path (`[3].payload.status`), so a
//! client fixes a batch in one go.

use djinn_hook_payload::{EventType, Payload, PayloadError};
use djinn_hook_store::check_idempotency_key;
use serde::Deserialize;
use serde_json::value::RawValue;

/// How big a batch may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BatchLimits {
    /// The most items.
    pub max_events: usize,
    /// The largest payload of one item, in bytes (as written in the batch).
    pub max_payload: usize,
}

impl BatchLimits {
    /// At most `max_events` items, each payload at most `max_payload` bytes.
    pub fn new(max_events: usize, max_payload: usize) -> BatchLimits {
        BatchLimits {
            max_events,
            max_payload,
        }
    }
}

/// One checked item of a batch.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct BatchEvent {
    /// Its type.
    pub event: EventType,
    /// Its payload, validated.
    pub payload: Payload,
    /// Its idempotency key, if it has one (checked by [`check_idempotency_key`]).
    pub idempotency_key: Option<String>,
}

/// Why a batch is refused; nothing of it is stored.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    /// Not a JSON array (malformed JSON, or another value).
    #[error("{0}")]
    Malformed(String),
    /// An empty array.
    #[error("the batch is empty; send at least one event")]
    Empty,
    /// More items than the limit (413).
    #[error("a batch of {count} events; at most {max} are accepted in one request")]
    TooMany {
        /// How many items came.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// One item's payload is over the limit (413).
    #[error("[{index}].payload: larger than {max} bytes")]
    PayloadTooLarge {
        /// The item, from 0.
        index: usize,
        /// The limit.
        max: usize,
    },
    /// Items that are not valid: each JSON path (`[3].payload.status`) with what is wrong,
    /// in the items' order.
    #[error("invalid events: {}", .0.iter().map(|(p, m)| format!("{p}: {m}")).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<(String, String)>),
}

/// An item as written; unknown fields are refused (a mistyped `idempotency_key` would
/// otherwise be dropped silently, and with it the protection it asked for).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Item<'a> {
    event: String,
    #[serde(borrow)]
    payload: &'a RawValue,
    #[serde(default)]
    idempotency_key: Option<String>,
}

/// Checks every item of the batch in `body`: its events in order, or why none is accepted.
pub fn parse(body: &[u8], limits: BatchLimits) -> Result<Vec<BatchEvent>, BatchError> {
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'[') {
        return Err(BatchError::Malformed(
            "malformed JSON: expected a JSON array of events".to_owned(),
        ));
    }
    let items: Vec<&RawValue> = serde_json::from_slice(body).map_err(|err| {
        BatchError::Malformed(format!(
            "malformed JSON at line {} column {}: {}",
            err.line(),
            err.column(),
            without_position(&err)
        ))
    })?;
    if items.is_empty() {
        return Err(BatchError::Empty);
    }
    if items.len() > limits.max_events {
        return Err(BatchError::TooMany {
            count: items.len(),
            max: limits.max_events,
        });
    }
    let mut events = Vec::with_capacity(items.len());
    let mut invalid = Vec::new();
    for (index, raw) in items.into_iter().enumerate() {
        match item(index, raw, limits)? {
            Ok(event) => events.push(event),
            Err(problems) => invalid.extend(problems),
        }
    }
    if invalid.is_empty() {
        Ok(events)
    } else {
        Err(BatchError::Invalid(invalid))
    }
}

/// One item checked: the event, or each of its problems under its path. Only a payload over
/// the limit stops the whole batch at once.
#[allow(
    clippy::type_complexity,
    reason = "a private helper's two levels of outcome"
)]
fn item(
    index: usize,
    raw: &RawValue,
    limits: BatchLimits,
) -> Result<Result<BatchEvent, Vec<(String, String)>>, BatchError> {
    let at = |path: &str| {
        if path.is_empty() || path == "." {
            format!("[{index}]")
        } else {
            format!("[{index}].{path}")
        }
    };
    if !raw.get().starts_with('{') {
        return Ok(Err(vec![(
            at(""),
            "is not an object; expected {\"event\": NAME, \"payload\": {…}}".to_owned(),
        )]));
    }
    let mut de = serde_json::Deserializer::from_str(raw.get());
    let item: Item<'_> = match serde_path_to_error::deserialize(&mut de) {
        Ok(item) => item,
        Err(err) => {
            let path = err.path().to_string();
            return Ok(Err(vec![(at(&path), without_position(err.inner()))]));
        }
    };
    if item.payload.get().len() > limits.max_payload {
        return Err(BatchError::PayloadTooLarge {
            index,
            max: limits.max_payload,
        });
    }
    let mut problems = Vec::new();
    if let Some(key) = &item.idempotency_key
        && let Err(reason) = check_idempotency_key(key)
    {
        problems.push((at("idempotency_key"), reason.to_owned()));
    }
    let event = match EventType::from_name(item.event.trim()) {
        Ok(event) => event,
        Err(err) => {
            problems.push((at("event"), err.to_string()));
            return Ok(Err(problems));
        }
    };
    match Payload::parse(event, item.payload.get().as_bytes()) {
        Ok(payload) if problems.is_empty() => Ok(Ok(BatchEvent {
            event,
            payload,
            idempotency_key: item.idempotency_key,
        })),
        Ok(_) => Ok(Err(problems)),
        Err(err) => {
            problems.push(payload_problem(&at, &err));
            Ok(Err(problems))
        }
    }
}

/// A payload's problem under the item's `payload` path.
fn payload_problem(at: &impl Fn(&str) -> String, err: &PayloadError) -> (String, String) {
    let (path, message): (&str, String) = match err {
        PayloadError::Field { path, message, .. } => (path, message.clone()),
        PayloadError::Rule { path, message, .. } => (path, message.clone()),
        other => ("", other.to_string()),
    };
    if path.is_empty() {
        (at("payload"), message)
    } else {
        (at(&format!("payload.{path}")), message)
    }
}

/// serde_json's message without its ` at line L column C` suffix.
fn without_position(err: &serde_json::Error) -> String {
    let text = err.to_string();
    let suffix = format!(" at line {} column {}", err.line(), err.column());
    text.strip_suffix(&suffix).unwrap_or(&text).to_owned()
}

#[cfg(test)]
mod tests {
    use djinn_hook_payload::{DEFAULT_API_SERVER, example_payload};

    use super::*;

    const LIMITS: BatchLimits = BatchLimits {
        max_events: 3,
        max_payload: 64 * 1024,
    };

    fn example(event: EventType) -> String {
        String::from_utf8(example_payload(event, DEFAULT_API_SERVER).to_body()).unwrap()
    }

    #[test]
    fn a_valid_batch_gives_its_events_in_order() {
        let body = format!(
            r#"[{{"event": "cron", "payload": {}, "idempotency_key": "k1"}},
                {{"event": "build.finished", "payload": {}}}]"#,
            example(EventType::Cron),
            example(EventType::BuildFinished)
        );
        let events = parse(body.as_bytes(), LIMITS).unwrap();
        let got: Vec<_> = events
            .iter()
            .map(|e| (e.event, e.idempotency_key.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                (EventType::Cron, Some("k1")),
                (EventType::BuildFinished, None)
            ]
        );
        assert_eq!(
            events[1].payload.to_body(),
            Payload::parse(
                EventType::BuildFinished,
                example(EventType::BuildFinished).as_bytes()
            )
            .unwrap()
            .to_body()
        );
    }

    #[test]
    fn every_invalid_item_is_named_by_its_path() {
        let bad = example(EventType::Cron).replacen(r#""id":1"#, r#""id":"four""#, 1);
        let body = format!(
            r#"[{{"event": "cron", "payload": {}}},
                {{"event": "build.exploded", "payload": {{}}}},
                {{"event": "cron", "payload": {bad}, "idempotency_key": ""}}]"#,
            example(EventType::Cron)
        );
        let Err(BatchError::Invalid(problems)) = parse(body.as_bytes(), LIMITS) else {
            panic!("refused");
        };
        let paths: Vec<&str> = problems.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            ["[1].event", "[2].idempotency_key", "[2].payload.cron.id"],
            "{problems:?}"
        );
        assert!(problems[0].1.contains("build.exploded"), "{problems:?}");
    }

    #[test]
    fn the_shape_and_the_limits_are_checked_first() {
        let check = |body: &str| match parse(body.as_bytes(), LIMITS) {
            Ok(events) => format!("{} events", events.len()),
            Err(err) => err.to_string(),
        };
        assert_eq!(
            check("{}"),
            "malformed JSON: expected a JSON array of events"
        );
        assert_eq!(check(""), "malformed JSON: expected a JSON array of events");
        assert_eq!(
            check("[1,"),
            "malformed JSON at line 1 column 3: EOF while parsing a value"
        );
        assert_eq!(check("[]"), "the batch is empty; send at least one event");
        assert_eq!(
            check("[1, 2, 3, 4]"),
            "a batch of 4 events; at most 3 are accepted in one request"
        );
        assert_eq!(
            check(r#"[7, {"event": "cron"}, {"event": "cron", "payload": {}, "key": 1}]"#),
            "invalid events: [0]: is not an object; expected {\"event\": NAME, \"payload\": \
             {…}}; [1]: missing field `payload`; [2].key: unknown field `key`, expected one of \
             `event`, `payload`, `idempotency_key`"
        );
        let big = format!(
            r#"[{{"event": "cron", "payload": {{"x": "{}"}}}}]"#,
            "a".repeat(70_000)
        );
        assert_eq!(check(&big), "[0].payload: larger than 65536 bytes");
    }
}
