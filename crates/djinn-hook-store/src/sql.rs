//! Conversions between the store's types and the values both backends store (times as Unix
//! nanoseconds, events as bit positions and masks, headers as JSON): written once, used by
//! SQLite and PostgreSQL alike. A stored value this build does not understand is [`Corrupt`],
//! which each backend turns into its own error (`rusqlite::Error` inside a row mapper,
//! [`Error::Corrupt`](crate::Error::Corrupt) on PostgreSQL).

use djinn_hook_payload::{EventSet, EventType};
use time::OffsetDateTime;
use uuid::Uuid;

/// Unix nanoseconds (fits in an `i64` until the year 2262).
pub(crate) fn to_ns(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos()).unwrap_or(if t.year() < 1970 {
        i64::MIN
    } else {
        i64::MAX
    })
}

pub(crate) fn from_ns(ns: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns)).expect("an i64 of ns is in range")
}

pub(crate) fn event_code(event: EventType) -> i64 {
    i64::from(event.bit().trailing_zeros())
}

/// The event type stored as `code` (its bit position).
pub(crate) fn event_from_code(code: i64) -> Result<EventType, Corrupt> {
    u32::try_from(code)
        .ok()
        .and_then(EventType::from_position)
        .ok_or_else(|| corrupt(format!("event code {code}")))
}

/// The event set stored as `mask`.
pub(crate) fn events_from_mask(mask: i64) -> Result<EventSet, Corrupt> {
    u64::try_from(mask)
        .ok()
        .and_then(|m| EventSet::from_mask(m).ok())
        .ok_or_else(|| corrupt(format!("event mask {mask:#x}")))
}

pub(crate) fn mask(events: EventSet) -> i64 {
    // 15 bits: always fits.
    events.mask() as i64
}

pub(crate) fn uuid_from_blob(blob: &[u8]) -> Result<Uuid, Corrupt> {
    Uuid::from_slice(blob).map_err(|_| corrupt(format!("uuid of {} bytes", blob.len())))
}

pub(crate) fn headers_to_json(headers: &[(String, String)]) -> String {
    // Sized for `[["name","value"],...]` without escapes: one allocation, not
    // a doubling series (two per attempt recorded).
    let size = headers
        .iter()
        .map(|(name, value)| name.len() + value.len() + 8)
        .sum::<usize>()
        + 2;
    let mut json = Vec::with_capacity(size);
    serde_json::to_writer(&mut json, headers).expect("strings serialise");
    String::from_utf8(json).expect("serde_json writes UTF-8")
}

/// A stored JSON header list.
pub(crate) fn headers_from_json(json: &str) -> Result<Vec<(String, String)>, Corrupt> {
    serde_json::from_str(json).map_err(|e| corrupt(format!("stored headers: {e}")))
}

/// A stored status code as `u16`.
pub(crate) fn status(code: Option<i64>) -> Result<Option<u16>, Corrupt> {
    code.map(|c| u16::try_from(c).map_err(|_| corrupt(format!("status {c}"))))
        .transpose()
}

/// A stored attempt number as `u32`.
pub(crate) fn attempt(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn corrupt(what: String) -> Corrupt {
    Corrupt(what)
}

/// A stored value this build does not understand: what it was.
#[derive(Debug)]
pub(crate) struct Corrupt(pub(crate) String);

impl std::fmt::Display for Corrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "corrupt stored value: {}", self.0)
    }
}

impl std::error::Error for Corrupt {}

/// Inside a SQLite row mapper: a conversion failure, as rusqlite's own.
impl From<Corrupt> for rusqlite::Error {
    fn from(corrupt: Corrupt) -> rusqlite::Error {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Null, Box::new(corrupt))
    }
}

/// Turns a stored count into `u64`.
pub(crate) fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}
