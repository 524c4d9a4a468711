//! How a prune runs, for both backends: the cutoff an age names, and the batches it deletes
//! in. Each backend keeps its SQL (finding the last id to prune, the deletes) and hands it in.

use std::time::Duration;

use time::OffsetDateTime;

use crate::error::Result;
use crate::types::Pruned;

/// How long the log keeps deliveries and finished events by default (30 days, as the original).
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// Rows deleted per prune transaction, so a prune never holds the write lock long.
pub const PRUNE_BATCH: usize = 1000;

/// The time `older_than` before `now`; `None` when that reaches before any date the clock can
/// name, where a prune prunes nothing.
pub(crate) fn cutoff(now: OffsetDateTime, older_than: Duration) -> Option<OffsetDateTime> {
    time::Duration::try_from(older_than)
        .ok()
        .and_then(|age| now.checked_sub(age))
}

/// The query of the id of the first row of `table` created at or after `$1` (one past the
/// last id if none), for both backends: a scan in id order that stops there, so its cost is
/// the number of rows about to be pruned.
pub(crate) fn first_at_or_after(table: &str) -> String {
    format!(
        "SELECT coalesce(
            (SELECT id FROM {table} WHERE created_at >= $1 ORDER BY id LIMIT 1),
            (SELECT max(id) + 1 FROM {table}),
            0)"
    )
}

/// Runs a prune in transactions of at most [`PRUNE_BATCH`] rows: `deliveries()` deletes a
/// batch of deliveries and says how many, until a batch comes up short; then `events(after)`
/// deletes a batch of prunable events with ids above `after` and says how many and the
/// highest id it looked at, until a batch comes up short. Events kept (still pending or
/// logged) are stepped over by moving `after` past them.
pub(crate) fn in_batches(
    mut deliveries: impl FnMut() -> Result<usize>,
    mut events: impl FnMut(i64) -> Result<(usize, Option<i64>)>,
) -> Result<Pruned> {
    let mut pruned = Pruned::default();
    loop {
        let n = deliveries()?;
        pruned.deliveries += n as u64;
        if n < PRUNE_BATCH {
            break;
        }
    }
    let mut after = 0;
    loop {
        let (n, last) = events(after)?;
        pruned.events += n as u64;
        match last {
            Some(last) if n == PRUNE_BATCH => after = last,
            _ => break,
        }
    }
    Ok(pruned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_run_until_one_comes_up_short_and_events_step_past_the_last_id() {
        let mut delivery_batches = vec![PRUNE_BATCH, PRUNE_BATCH, 3].into_iter();
        let mut event_batches = vec![
            (PRUNE_BATCH, Some(1500)),
            (PRUNE_BATCH, Some(2700)),
            (10, Some(2800)),
        ]
        .into_iter();
        let mut afters = Vec::new();
        let pruned = in_batches(
            || Ok(delivery_batches.next().expect("no batch after a short one")),
            |after| {
                afters.push(after);
                Ok(event_batches.next().expect("no batch after a short one"))
            },
        )
        .unwrap();
        assert_eq!(pruned.deliveries, 2 * PRUNE_BATCH as u64 + 3);
        assert_eq!(pruned.events, 2 * PRUNE_BATCH as u64 + 10);
        assert_eq!(afters, [0, 1500, 2700]);
    }

    #[test]
    fn an_age_before_any_date_has_no_cutoff() {
        let now = OffsetDateTime::now_utc();
        assert_eq!(cutoff(now, Duration::MAX), None);
        let day = cutoff(now, Duration::from_secs(86_400)).unwrap();
        assert_eq!(now - day, time::Duration::DAY);
    }
}
