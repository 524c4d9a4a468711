//! The delivery log's listing as SQL, for both backends: the `WHERE` clause of a
//! [`DeliveryFilter`] and the page's `LIMIT`/`OFFSET`, in the backend's dialect, with the
//! values to bind in a form each backend turns into its own; and the one definition of a
//! failed delivery. Each backend keeps its `SELECT` and its row mapping.

use uuid::Uuid;

use crate::sql::event_code;
use crate::types::{DeliveryFilter, Page, Paged};

/// A failed delivery, as SQL over `deliveries d` that both backends run: any result but
/// `success` (as `Delivery::failed`).
pub(crate) const FAILED_DELIVERY: &str = "(d.result <> 'success')";

/// Which backend's SQL to write: they number placeholders differently and find an event by
/// its id differently.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Dialect {
    /// `?1`, `?2`, ...; an event by its indexed id.
    Sqlite,
    /// `$1`, `$2`, ...; an event by the row its id carries (`event_row`, read from the filter's
    /// id with the database's key), or through the older ids' index if it carries none.
    #[cfg(feature = "postgres")]
    Postgres {
        /// The row the filter's event id carries.
        event_row: Option<i64>,
    },
}

/// A value the listing binds; each backend stores these its own way (a UUID is a blob on
/// SQLite, a `uuid` on PostgreSQL; a flag an integer or a `boolean`).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Bind {
    /// An integer: a webhook id, an event type's code, a limit or an offset.
    Int(i64),
    /// An event id.
    Uuid(Uuid),
    /// A flag: whether the event is a test.
    Bool(bool),
}

/// One page of deliveries matching a filter, newest first: the SQL, its values, and how to cut
/// the rows it returns into a [`Paged`].
#[derive(Debug)]
pub(crate) struct PageQuery {
    /// The whole statement.
    pub(crate) sql: String,
    /// Its values, in placeholder order.
    pub(crate) binds: Vec<Bind>,
    page: u32,
    per_page: u32,
}

impl PageQuery {
    /// `select` (a `SELECT ... FROM deliveries d JOIN events e ...` without `WHERE`) filtered by
    /// `filter`, ordered newest first, for `page` (0 for a page number or size reads as 1). It
    /// asks for one row more than a page, which tells whether a next page exists.
    pub(crate) fn new(
        select: &str,
        filter: &DeliveryFilter,
        page: Page,
        dialect: Dialect,
    ) -> PageQuery {
        let mut clauses = Vec::new();
        let mut binds = Vec::new();
        let mut bind = |value: Bind| {
            binds.push(value);
            match dialect {
                Dialect::Sqlite => format!("?{}", binds.len()),
                #[cfg(feature = "postgres")]
                Dialect::Postgres { .. } => format!("${}", binds.len()),
            }
        };
        if let Some(hook) = filter.hook_id {
            clauses.push(format!("d.hook_id = {}", bind(Bind::Int(hook))));
        }
        if let Some(event) = filter.event_id {
            let id = bind(Bind::Uuid(event));
            clauses.push(match dialect {
                Dialect::Sqlite => format!("e.uuid = {id}"),
                #[cfg(feature = "postgres")]
                Dialect::Postgres { event_row } => {
                    let row = event_row.map(|row| bind(Bind::Int(row)));
                    crate::pg::event_matching(&id, row.as_deref())
                }
            });
        }
        if let Some(event) = filter.event_type {
            clauses.push(format!("e.event = {}", bind(Bind::Int(event_code(event)))));
        }
        if filter.failed_only {
            clauses.push(FAILED_DELIVERY.to_owned());
        }
        if let Some(test) = filter.test {
            clauses.push(format!("e.test = {}", bind(Bind::Bool(test))));
        }
        let page_no = page.page.max(1);
        let per_page = page.per_page.max(1);
        let limit = bind(Bind::Int(i64::from(per_page) + 1));
        let offset = bind(Bind::Int(i64::from(page_no - 1) * i64::from(per_page)));
        let filter = if clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", clauses.join(" AND "))
        };
        PageQuery {
            sql: format!("{select}{filter} ORDER BY d.id DESC LIMIT {limit} OFFSET {offset}"),
            binds,
            page: page_no,
            per_page,
        }
    }

    /// The page, from the rows the statement returned.
    pub(crate) fn paged<T>(&self, mut items: Vec<T>) -> Paged<T> {
        let has_next = items.len() > self.per_page as usize;
        items.truncate(self.per_page as usize);
        Paged {
            items,
            page: self.page,
            has_next,
        }
    }
}
