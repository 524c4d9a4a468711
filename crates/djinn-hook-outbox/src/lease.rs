//! [`LeaseToken`]: which claim of a task a worker holds.

use std::fmt;

use uuid::Uuid;

/// The token of one claim of a task: fresh on every claim, handed back with the task's
/// [`Completion`](crate::Completion) or [`PutOff`](crate::PutOff). The store applies an outcome
/// only while the token is the task's current one, so a worker whose lease ran out cannot undo
/// the work of the worker that claimed the task after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LeaseToken(Uuid);

impl LeaseToken {
    /// A new, random token (for a new claim).
    pub fn new() -> LeaseToken {
        LeaseToken(Uuid::new_v4())
    }

    /// The token as a UUID (how the stores keep it).
    pub fn as_uuid(&self) -> &Uuid {
        &self.0
    }

    /// The token's 16 bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }
}

impl Default for LeaseToken {
    fn default() -> LeaseToken {
        LeaseToken::new()
    }
}

impl From<Uuid> for LeaseToken {
    fn from(uuid: Uuid) -> LeaseToken {
        LeaseToken(uuid)
    }
}

impl fmt::Display for LeaseToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
