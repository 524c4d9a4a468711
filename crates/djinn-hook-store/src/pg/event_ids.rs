//! Events' public ids on PostgreSQL: minted from their rows, and found by them.
//!
//! An id minted since schema 13 is a version 8 UUID: 8 random bytes (the nonce, with the
//! version in byte 6), then the RFC 9562 variant and 62 bits holding the event's row masked
//! with the first 8 bytes of HMAC-SHA256(key, nonce). The key is the database's own
//! (`event_id_key`, made by migration 13), so an id does not tell a receiver how many events
//! came before it, and finding an event by its id reads the primary key: the intake writes no
//! index of ids. Two rows never share an id: the nonce and the masked bits give back the row.
//! Ids minted before (random, version 4) are found through an index of their own, which new
//! ids never enter.

use postgres::GenericClient;
use postgres::types::Type;
use ring::hmac;
use uuid::Uuid;

use crate::error::IResult;

/// Whether `e.uuid` was minted before schema 13: the predicate of the index those ids keep
/// (`events_uuid_legacy`), written as that index's definition writes it, which is what lets
/// the planner use the index.
pub(crate) const LEGACY_ID: &str = "get_byte(uuid_send(e.uuid), 6) >> 4 <> 8";

/// The database's key (migration 13's table holds one row).
const KEY: &str = "SELECT key FROM event_id_key";

/// The low 62 bits, which hold the masked row.
const ROW_BITS: u64 = (1 << 62) - 1;

/// The database's key for minting and reading ids.
pub(crate) struct EventIds {
    key: hmac::Key,
}

impl EventIds {
    /// The key, read from the database.
    pub(crate) fn load(client: &mut impl GenericClient) -> IResult<EventIds> {
        let key: Vec<u8> = client.query_one(KEY, &[])?.try_get(0)?;
        Ok(EventIds::new(&key))
    }

    fn new(key: &[u8]) -> EventIds {
        EventIds {
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
        }
    }

    /// Draws `n` rows for new events and mints their ids, in row order: one statement, which
    /// reads the key too.
    pub(crate) fn draw(client: &mut impl GenericClient, n: usize) -> IResult<Vec<(i64, Uuid)>> {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        let row = client.query_typed_one(
            const_format::formatcp!(
                "SELECT ({KEY}),
                    ARRAY(SELECT nextval(pg_get_serial_sequence('events', 'id'))
                        FROM generate_series(1, $1))"
            ),
            &[(&n, Type::INT8)],
        )?;
        let ids = EventIds::new(&row.try_get::<_, Vec<u8>>(0)?);
        let rows: Vec<i64> = row.try_get(1)?;
        Ok(rows.into_iter().map(|r| (r, ids.mint(r))).collect())
    }

    /// A new id for row `row` (below 2^62: a sequence reaches that after a billion events a
    /// day for twelve million years).
    fn mint(&self, row: i64) -> Uuid {
        let mut nonce = [0; 8];
        nonce.copy_from_slice(&Uuid::new_v4().as_bytes()[..8]);
        nonce[6] = (nonce[6] & 0x0f) | 0x80;
        let masked = (row as u64 & ROW_BITS) ^ self.mask(&nonce);
        let mut bytes = [0; 16];
        bytes[..8].copy_from_slice(&nonce);
        bytes[8..].copy_from_slice(&(masked | 1 << 63).to_be_bytes());
        Uuid::from_bytes(bytes)
    }

    /// The row `id` names if it was minted by [`EventIds::mint`] (the caller still compares
    /// the row's id: any version 8 UUID names some row); `None` for an id minted before.
    pub(crate) fn row_of(&self, id: Uuid) -> Option<i64> {
        if id.get_version_num() != 8 || id.get_variant() != uuid::Variant::RFC4122 {
            return None;
        }
        let bytes = id.as_bytes();
        let nonce: [u8; 8] = bytes[..8].try_into().expect("8 bytes");
        let low = u64::from_be_bytes(bytes[8..].try_into().expect("8 bytes"));
        Some(((low & ROW_BITS) ^ self.mask(&nonce)) as i64)
    }

    fn mask(&self, nonce: &[u8; 8]) -> u64 {
        let tag = hmac::sign(&self.key, nonce);
        u64::from_be_bytes(tag.as_ref()[..8].try_into().expect("a tag is 32 bytes")) & ROW_BITS
    }
}

/// The SQL condition on `events e` that finds the event whose id is bound at `id_param`: by
/// the row it carries, bound at `row_param`, or, for an id that carries none, through the
/// older ids' index.
pub(crate) fn matching(id_param: &str, row_param: Option<&str>) -> String {
    match row_param {
        Some(row) => format!("(e.id = {row} AND e.uuid = {id_param})"),
        None => format!("(e.uuid = {id_param} AND {LEGACY_ID})"),
    }
}

/// The rows of `events e` whose ids are `m.event`, with the rows they carry in `m.row` (NULL
/// for an id minted before), as the body of a lateral join: either index serves each id.
pub(crate) const ROW_OF_EACH_ID: &str = const_format::concatcp!(
    "SELECT e.id FROM events e WHERE e.id = m.row AND e.uuid = m.event
     UNION ALL
     SELECT e.id FROM events e WHERE m.row IS NULL AND e.uuid = m.event AND ",
    LEGACY_ID
);

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::EventIds;

    proptest! {
        #[test]
        fn a_minted_id_gives_back_its_row_and_only_under_its_key(row in 1..i64::MAX >> 1) {
            let ids = EventIds::new(b"one database's key");
            let id = ids.mint(row);
            prop_assert_eq!(id.get_version_num(), 8);
            prop_assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
            prop_assert_eq!(ids.row_of(id), Some(row));
            prop_assert_ne!(EventIds::new(b"another database's key").row_of(id), Some(row));
            // The row does not show through.
            let low = u64::from_be_bytes(id.as_bytes()[8..].try_into().unwrap()) & super::ROW_BITS;
            prop_assert_ne!(low as i64, row);
        }
    }

    #[test]
    fn an_id_minted_before_carries_no_row() {
        let ids = EventIds::new(b"key");
        assert_eq!(ids.row_of(uuid::Uuid::new_v4()), None);
        assert_eq!(ids.row_of(uuid::Uuid::nil()), None);
    }
}
