//! One way to read a column from either engine's row, so that each row reader (`rows.rs`) is
//! written once and only the SQL that selects its columns is per backend.
//!
//! A SQLite row reads into `rusqlite::Error`, the error rusqlite's row mappers (`query_map`,
//! `query_row`) expect, so a reader is passed to them as it is; a PostgreSQL row reads with
//! `try_get` into the store's own error (a type mismatch is an error, never a panic).

use uuid::Uuid;

use crate::sql::{Corrupt, uuid_from_blob};

/// A value both engines read from a column: owned (`i64`, `bool`, `String`, `Vec<u8>` and
/// their `Option`s), since a SQLite value cannot be borrowed from its row.
#[cfg(feature = "postgres")]
pub(crate) trait Value:
    rusqlite::types::FromSql + for<'a> postgres::types::FromSql<'a>
{
}

#[cfg(feature = "postgres")]
impl<T> Value for T where T: rusqlite::types::FromSql + for<'a> postgres::types::FromSql<'a> {}

/// A value SQLite reads from a column (this build has no PostgreSQL).
#[cfg(not(feature = "postgres"))]
pub(crate) trait Value: rusqlite::types::FromSql {}

#[cfg(not(feature = "postgres"))]
impl<T: rusqlite::types::FromSql> Value for T {}

/// A row of either engine, read by column index.
pub(crate) trait Columns {
    /// What a failed read becomes; a stored value the store does not understand
    /// ([`Corrupt`]) becomes one too.
    type Error: From<Corrupt>;

    /// Column `idx` as a `T`, or an error if its value is not one.
    fn get<T: Value>(&self, idx: usize) -> Result<T, Self::Error>;

    /// Column `idx` as an event's id (a 16-byte blob on SQLite, a `uuid` on PostgreSQL).
    fn uuid(&self, idx: usize) -> Result<Uuid, Self::Error>;
}

impl Columns for rusqlite::Row<'_> {
    type Error = rusqlite::Error;

    fn get<T: Value>(&self, idx: usize) -> rusqlite::Result<T> {
        rusqlite::Row::get(self, idx)
    }

    fn uuid(&self, idx: usize) -> rusqlite::Result<Uuid> {
        Ok(uuid_from_blob(&rusqlite::Row::get::<_, Vec<u8>>(
            self, idx,
        )?)?)
    }
}

#[cfg(feature = "postgres")]
impl Columns for postgres::Row {
    type Error = crate::error::Inner;

    fn get<T: Value>(&self, idx: usize) -> crate::error::IResult<T> {
        Ok(self.try_get(idx)?)
    }

    fn uuid(&self, idx: usize) -> crate::error::IResult<Uuid> {
        Ok(self.try_get(idx)?)
    }
}
