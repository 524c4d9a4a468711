//! The `state` of a task row, named once for both backends. Their SQL formats these in with
//! `const_format::formatcp!` (`WHERE state = {PENDING}`) rather than binding them: the text
//! must carry the number itself for the partial indexes on `state = 0` (the migrations'
//! `tasks_due`, `tasks_hook_due`) to be used.

/// To deliver: due at `next_at`, or leased by a worker.
pub(crate) const PENDING: i64 = 0;
/// Given up on (failed for good, or its webhook was deactivated); kept for `retry_now`.
pub(crate) const FAILED: i64 = 1;
/// Delivered; kept until its event is pruned, so a late completion can still be logged. On
/// PostgreSQL only a task with a body of its own (a redelivery's) is kept so; the others are
/// deleted, and a late completion is logged from its attempt (`pg/outbox.rs`).
pub(crate) const DONE: i64 = 2;

#[cfg(test)]
mod tests {
    use const_format::formatcp;

    use super::PENDING;

    /// The migrations are history and keep their numbers; the states must stay what their
    /// partial indexes were built on.
    #[test]
    fn the_partial_indexes_are_on_pending() {
        let due = formatcp!("WHERE state = {PENDING};");
        for migration in [
            include_str!("migrations/0001_init.sql"),
            include_str!("migrations/0004_isolation.sql"),
            include_str!("pg/migrations/0001_init.sql"),
            include_str!("pg/migrations/0002_isolation.sql"),
        ] {
            assert!(migration.contains(due), "{migration}");
        }
    }
}
