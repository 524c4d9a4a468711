//! Idempotency keys of accepted events, for both backends: what a key may be, how two events
//! under one key are compared, and the answer a key already used gives. The SQL that reads and
//! writes the `idempotency_keys` table is each backend's own (`outbox.rs`, `pg/outbox.rs`).
//!
//! A key is the client's name for one event (a CI server's retry sends the same one), scoped to
//! the namespace. Within its window, the same key with the same event type and payload answers
//! what the first request was answered (its event id and matched count) and stores nothing;
//! with another type or payload it is [`Error::IdempotencyConflict`]. Keys are written in the
//! transaction that stores their event, so a key is never recorded without its event, nor an
//! event without its key.

use std::time::Duration;

use ring::digest::{SHA256, digest};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::Error;
use crate::outbox::lease_until;
use crate::sql::event_code;
use crate::types::{Accepted, NewEvent};

/// How long a key is remembered unless said otherwise: a day, as Stripe and Svix keep theirs.
pub const DEFAULT_IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);

/// The longest key accepted, in bytes.
pub const MAX_IDEMPOTENCY_KEY: usize = 255;

/// An event's idempotency key and how long it is remembered ([`NewEvent::idempotency`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct IdempotencyKey {
    /// The key: 1 to [`MAX_IDEMPOTENCY_KEY`] printable ASCII characters
    /// ([`check_idempotency_key`]).
    pub key: String,
    /// How long after the event is stored the key answers for it; past that the key is free
    /// again, and a prune deletes it.
    pub window: Duration,
}

impl IdempotencyKey {
    /// `key`, remembered for `window`.
    pub fn new(key: impl Into<String>, window: Duration) -> IdempotencyKey {
        IdempotencyKey {
            key: key.into(),
            window,
        }
    }
}

/// Whether `key` may be an idempotency key: 1 to [`MAX_IDEMPOTENCY_KEY`] printable ASCII
/// characters (space to `~`), not starting or ending with a space (an HTTP header's value
/// would lose it). The error says what is wrong, never quoting the key.
pub fn check_idempotency_key(key: &str) -> Result<(), &'static str> {
    if key.is_empty() {
        return Err("is empty");
    }
    if key.len() > MAX_IDEMPOTENCY_KEY {
        return Err("is longer than 255 characters");
    }
    if !key.bytes().all(|b| (b' '..=b'~').contains(&b)) {
        return Err("has a character that is not printable ASCII");
    }
    if key.starts_with(' ') || key.ends_with(' ') {
        return Err("starts or ends with a space");
    }
    Ok(())
}

/// What identifies an event under its key: the SHA-256 of its type and stored payload. The
/// namespace is not in it: a key is looked up within its namespace.
pub(crate) fn fingerprint(event: &NewEvent) -> Vec<u8> {
    let mut input = Vec::with_capacity(event.payload.len() + 8);
    input.extend_from_slice(&event_code(event.event).to_le_bytes());
    input.extend_from_slice(&event.payload);
    digest(&SHA256, &input).as_ref().to_vec()
}

/// Until when a key stored at `now` answers.
pub(crate) fn expires_at(now: OffsetDateTime, key: &IdempotencyKey) -> OffsetDateTime {
    lease_until(now, key.window)
}

/// A key found stored and not expired.
#[derive(Clone, Debug)]
pub(crate) struct StoredKey {
    pub(crate) fingerprint: Vec<u8>,
    pub(crate) event_id: Uuid,
    pub(crate) matched: usize,
}

impl StoredKey {
    /// The answer to the event at `index` of an accept call, whose key is already stored as
    /// `self`: the first answer again, or a conflict when the event is another.
    pub(crate) fn answer(&self, event: &NewEvent, index: usize) -> Result<Accepted, Error> {
        if fingerprint(event) == self.fingerprint {
            Ok(Accepted {
                event_id: self.event_id,
                matched: self.matched,
                replayed: true,
            })
        } else {
            Err(Error::IdempotencyConflict {
                key: event
                    .idempotency
                    .as_ref()
                    .map(|k| k.key.clone())
                    .unwrap_or_default(),
                index,
            })
        }
    }
}

/// Checks the key of every event of an accept call, before anything is written.
pub(crate) fn check_keys(events: &[NewEvent]) -> Result<(), Error> {
    for (index, event) in events.iter().enumerate() {
        if let Some(key) = &event.idempotency {
            check_idempotency_key(&key.key)
                .map_err(|reason| Error::InvalidIdempotencyKey { index, reason })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use djinn_hook_payload::EventType;

    use super::*;

    #[test]
    fn keys_are_printable_ascii_of_1_to_255() {
        assert_eq!(check_idempotency_key("build-42/finished"), Ok(()));
        assert_eq!(check_idempotency_key("a b"), Ok(()));
        assert_eq!(check_idempotency_key(&"k".repeat(255)), Ok(()));
        assert_eq!(
            check_idempotency_key(&"k".repeat(256)),
            Err("is longer than 255 characters")
        );
        assert_eq!(check_idempotency_key(""), Err("is empty"));
        assert!(check_idempotency_key("tab\there").is_err());
        assert!(check_idempotency_key("é").is_err());
        assert!(check_idempotency_key(" k").is_err());
    }

    #[test]
    fn the_fingerprint_is_of_the_type_and_the_payload() {
        let event = |t, p: &str| NewEvent::new("a/b", t, p.as_bytes().to_vec());
        let one = fingerprint(&event(EventType::Cron, "{}"));
        assert_eq!(one, fingerprint(&event(EventType::Cron, "{}")));
        assert_ne!(one, fingerprint(&event(EventType::Images, "{}")));
        assert_ne!(one, fingerprint(&event(EventType::Cron, "{ }")));
        let other_ns = NewEvent::new("c/d", EventType::Cron, b"{}".to_vec());
        assert_eq!(one, fingerprint(&other_ns));
    }
}
