//! Idempotency keys on PostgreSQL: claiming the keys of an accept call, and reading those
//! another transaction stored first (the rule is `crate::idempotency`'s).
//!
//! Why a claim by `INSERT ... ON CONFLICT` and not a look-up first: under READ COMMITTED two
//! transactions that look up one key at once both find nothing and both store an event. An
//! insert into the primary key instead waits for the other transaction holding that key to end,
//! then either takes the key (the other rolled back, or its row had expired) or finds it taken,
//! and a statement after it sees the other's committed row. So two `serve` processes racing with
//! one key store one event, and the second answers with the first's event id.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use postgres::Transaction;
use postgres::types::Type;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::IResult;
use crate::idempotency::{StoredKey, expires_at, fingerprint};
use crate::rows;
use crate::sql::{event_code, to_ns};
use crate::types::{Accepted, NewEvent};

/// What an accept call stores: per event, its namespace id and the webhooks it matched.
pub(super) struct Plan {
    pub(super) namespace: i64,
    pub(super) hooks: Vec<i64>,
}

/// Claims the idempotency keys of `events` for this transaction: per event, `None` to store it
/// (its key, if any, now this transaction's, written with `uuids[i]` and its matched count),
/// or the answer of a key stored before (a replay). A key stored for another event is the
/// error [`Error::IdempotencyConflict`](crate::Error::IdempotencyConflict).
pub(super) fn claim(
    tx: &mut Transaction<'_>,
    events: &[NewEvent],
    plans: &[Plan],
    uuids: &[Uuid],
    at: OffsetDateTime,
) -> IResult<Vec<Option<Accepted>>> {
    let mut answers: Vec<Option<Accepted>> = vec![None; events.len()];
    // The first event of each (namespace, key) in the call, and the later ones that follow it.
    let mut first: HashMap<(i64, &str), usize> = HashMap::new();
    let mut later: Vec<(usize, usize)> = Vec::new();
    for (i, event) in events.iter().enumerate() {
        if let Some(key) = &event.idempotency {
            match first.entry((plans[i].namespace, key.key.as_str())) {
                Entry::Occupied(f) => later.push((i, *f.get())),
                Entry::Vacant(slot) => {
                    slot.insert(i);
                }
            }
        }
    }
    let mut claims: Vec<usize> = first.values().copied().collect();
    // One order in every transaction: two claiming the same keys wait for each other rather
    // than deadlock.
    claims.sort_by_key(|&i| (plans[i].namespace, key_of(&events[i])));
    let claimed = insert(tx, events, plans, uuids, &claims, at)?;
    let taken: Vec<usize> = claims
        .into_iter()
        .filter(|&i| !claimed.contains(&(plans[i].namespace, key_of(&events[i]).to_owned())))
        .collect();
    // A key found taken is locked by the insert (`ON CONFLICT DO UPDATE` locks the row even
    // where its `WHERE` is false), so no prune can delete it before this reads it.
    let stored = read(tx, events, plans, &taken)?;
    for i in taken {
        let row = stored
            .get(&(plans[i].namespace, key_of(&events[i]).to_owned()))
            .ok_or_else(|| crate::error::Error::Corrupt {
                what: format!("idempotency key of event {i} vanished"),
            })?;
        answers[i] = Some(row.answer(&events[i], i)?);
    }
    for (i, f) in later {
        let first_answer = answers[f].unwrap_or(Accepted {
            event_id: uuids[f],
            matched: plans[f].hooks.len(),
            replayed: false,
        });
        let row = StoredKey {
            fingerprint: fingerprint(&events[f]),
            event_id: first_answer.event_id,
            matched: first_answer.matched,
        };
        answers[i] = Some(row.answer(&events[i], i)?);
    }
    Ok(answers)
}

fn key_of(event: &NewEvent) -> &str {
    event.idempotency.as_ref().map_or("", |k| k.key.as_str())
}

/// Inserts the keys of `events[i]` for each `i` of `which` (in that order), taking over expired
/// rows; returns the (namespace, key) pairs this transaction now holds.
fn insert(
    tx: &mut Transaction<'_>,
    events: &[NewEvent],
    plans: &[Plan],
    uuids: &[Uuid],
    which: &[usize],
    at: OffsetDateTime,
) -> IResult<HashSet<(i64, String)>> {
    let now = to_ns(at);
    let mut cols = Columns::default();
    for &i in which {
        let key = events[i].idempotency.as_ref().expect("only keyed events");
        cols.namespaces.push(plans[i].namespace);
        cols.keys.push(key.key.as_str());
        cols.fingerprints.push(fingerprint(&events[i]));
        cols.uuids.push(uuids[i]);
        cols.codes.push(event_code(events[i].event));
        cols.matched.push(plans[i].hooks.len() as i64);
        cols.expires.push(to_ns(expires_at(at, key)));
    }
    let rows = tx.query_typed(
        "INSERT INTO idempotency_keys
            (namespace_id, key, fingerprint, event_uuid, event, matched, created_at, expires_at)
         SELECT namespace_id, key, fingerprint, event_uuid, event, matched, $8, expires_at
         FROM unnest($1::bigint[], $2::text[], $3::bytea[], $4::uuid[], $5::bigint[],
                     $6::bigint[], $7::bigint[])
            WITH ORDINALITY AS k (namespace_id, key, fingerprint, event_uuid, event, matched,
                                  expires_at, n)
         ORDER BY n
         ON CONFLICT (namespace_id, key) DO UPDATE SET
            fingerprint = excluded.fingerprint, event_uuid = excluded.event_uuid,
            event = excluded.event, matched = excluded.matched,
            created_at = excluded.created_at, expires_at = excluded.expires_at
         WHERE idempotency_keys.expires_at <= $8
         RETURNING namespace_id, key",
        &[
            (&cols.namespaces, Type::INT8_ARRAY),
            (&cols.keys, Type::TEXT_ARRAY),
            (&cols.fingerprints, Type::BYTEA_ARRAY),
            (&cols.uuids, Type::UUID_ARRAY),
            (&cols.codes, Type::INT8_ARRAY),
            (&cols.matched, Type::INT8_ARRAY),
            (&cols.expires, Type::INT8_ARRAY),
            (&now, Type::INT8),
        ],
    )?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

/// The stored rows of the keys of `events[i]` for each `i` of `which`.
fn read(
    tx: &mut Transaction<'_>,
    events: &[NewEvent],
    plans: &[Plan],
    which: &[usize],
) -> IResult<HashMap<(i64, String), StoredKey>> {
    if which.is_empty() {
        return Ok(HashMap::new());
    }
    let namespaces: Vec<i64> = which.iter().map(|&i| plans[i].namespace).collect();
    let keys: Vec<&str> = which.iter().map(|&i| key_of(&events[i])).collect();
    let rows = tx.query_typed(
        "SELECT k.namespace_id, k.key, k.fingerprint, k.event_uuid, k.matched
         FROM idempotency_keys k
         JOIN unnest($1::bigint[], $2::text[]) AS w (namespace_id, key)
           ON k.namespace_id = w.namespace_id AND k.key = w.key",
        &[(&namespaces, Type::INT8_ARRAY), (&keys, Type::TEXT_ARRAY)],
    )?;
    rows.iter()
        .map(|r| Ok(((r.try_get(0)?, r.try_get(1)?), rows::stored_key(r, 2)?)))
        .collect()
}

/// The columns of the keys to insert, as arrays.
#[derive(Default)]
struct Columns<'a> {
    namespaces: Vec<i64>,
    keys: Vec<&'a str>,
    fingerprints: Vec<Vec<u8>>,
    uuids: Vec<Uuid>,
    codes: Vec<i64>,
    matched: Vec<i64>,
    expires: Vec<i64>,
}
