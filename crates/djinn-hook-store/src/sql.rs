//! Conversions between the store's types and SQLite values.

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

pub(crate) fn event_from_code(code: i64) -> rusqlite::Result<EventType> {
    u32::try_from(code)
        .ok()
        .and_then(EventType::from_position)
        .ok_or_else(|| corrupt(format!("event code {code}")))
}

pub(crate) fn events_from_mask(mask: i64) -> rusqlite::Result<EventSet> {
    u64::try_from(mask)
        .ok()
        .and_then(|m| EventSet::from_mask(m).ok())
        .ok_or_else(|| corrupt(format!("event mask {mask:#x}")))
}

pub(crate) fn mask(events: EventSet) -> i64 {
    // 15 bits: always fits.
    events.mask() as i64
}

pub(crate) fn uuid_from_blob(blob: &[u8]) -> rusqlite::Result<Uuid> {
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

pub(crate) fn headers_from_json(json: &str) -> rusqlite::Result<Vec<(String, String)>> {
    serde_json::from_str(json).map_err(|e| corrupt(format!("stored headers: {e}")))
}

/// A stored value this build does not understand, raised inside a row mapper.
fn corrupt(what: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Null,
        Box::new(CorruptValue(what)),
    )
}

#[derive(Debug)]
struct CorruptValue(String);

impl std::fmt::Display for CorruptValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "corrupt stored value: {}", self.0)
    }
}

impl std::error::Error for CorruptValue {}

/// Turns a count read from SQLite into `u64`.
pub(crate) fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}
