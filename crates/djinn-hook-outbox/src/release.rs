//! [`Release`]: a claimed task handed back without an attempt (the worker is stopping).

use crate::lease::LeaseToken;

/// A claimed task handed back unattempted, for [`Outbox::release`](crate::Outbox::release):
/// due again at once, its claim not counted as an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Release {
    /// The task's id.
    pub task_id: i64,
    /// The lease token of its claim (nothing happens if it is no longer current).
    pub lease: LeaseToken,
}
