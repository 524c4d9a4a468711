//! [`Sessions`]: who is signed in, kept in this process's memory. The session cookie holds
//! only a sealed random id, so a session ends the moment its record goes: a replayed cookie
//! after sign-out opens nothing.
//!
//! Signing out ends every session of the token signed in with (each record keeps the token's
//! mark, an HMAC of it, never the token): a person who fears a copied cookie signs out and
//! ends the copy too. The table is per process and empty at start, so a restart (the way a
//! changed tokens file is read) ends every session. Why not in the store: see
//! docs/ARCHITECTURE.md.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use time::OffsetDateTime;

use super::access::Access;
use super::session::random_id;

/// The most sessions kept at once; signing in beyond it ends the one closest to its end.
/// Each is a few hundred bytes: this bounds the table, not anyone's use of the UI.
const MAX_SESSIONS: usize = 10_000;

/// The live sessions, by id.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    live: Mutex<HashMap<String, Live>>,
}

/// One session's record.
#[derive(Debug)]
struct Live {
    access: Access,
    /// The mark of the token signed in with: every session of a token ends together.
    token: String,
    /// When it ends (Unix seconds).
    expires: i64,
}

/// A session just started: what its cookie needs.
#[derive(Clone, Debug)]
pub(crate) struct Started {
    pub(crate) id: String,
    /// When it ends (Unix seconds).
    pub(crate) expires: i64,
}

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

impl Sessions {
    fn table(&self) -> MutexGuard<'_, HashMap<String, Live>> {
        // A panic elsewhere while holding the lock leaves a table that is still whole.
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts a session with `access` for the token marked `token`, lasting `ttl`. `None` if
    /// the system random number generator failed.
    pub(crate) fn start(&self, access: Access, token: String, ttl: Duration) -> Option<Started> {
        let id = random_id()?;
        let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        let now = now();
        let expires = now.saturating_add(ttl);
        let mut table = self.table();
        table.retain(|_, live| live.expires > now);
        if table.len() >= MAX_SESSIONS
            && let Some(first) = table
                .iter()
                .min_by_key(|(_, live)| live.expires)
                .map(|(id, _)| id.clone())
        {
            table.remove(&first);
        }
        table.insert(
            id.clone(),
            Live {
                access,
                token,
                expires,
            },
        );
        Some(Started { id, expires })
    }

    /// What session `id` may do, if it is live.
    pub(crate) fn access(&self, id: &str) -> Option<Access> {
        let table = self.table();
        let live = table.get(id)?;
        (live.expires > now()).then(|| live.access.clone())
    }

    /// Ends session `id` alone (signing in again in the same browser).
    pub(crate) fn end(&self, id: &str) {
        self.table().remove(id);
    }

    /// Ends session `id` and every other session of the same token (sign-out).
    pub(crate) fn end_token_of(&self, id: &str) {
        let mut table = self.table();
        if let Some(ended) = table.remove(id) {
            table.retain(|_, live| live.token != ended.token);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn a_session_lives_until_it_expires_or_its_token_signs_out() {
        let sessions = Sessions::default();
        let a1 = sessions.start(Access::full(), "a".into(), HOUR).unwrap();
        let a2 = sessions.start(Access::full(), "a".into(), HOUR).unwrap();
        let b = sessions.start(Access::full(), "b".into(), HOUR).unwrap();
        assert_ne!(a1.id, a2.id);
        assert_eq!(sessions.access(&a1.id), Some(Access::full()));
        assert_eq!(sessions.access("unknown"), None);
        sessions.end_token_of(&a2.id);
        assert_eq!(
            sessions.access(&a1.id),
            None,
            "the same token's other session"
        );
        assert_eq!(sessions.access(&a2.id), None);
        assert_eq!(sessions.access(&b.id), Some(Access::full()));
        sessions.end(&b.id);
        assert_eq!(sessions.access(&b.id), None);

        let dead = sessions
            .start(Access::full(), "c".into(), Duration::ZERO)
            .unwrap();
        assert_eq!(sessions.access(&dead.id), None, "expired");
    }

    #[test]
    fn the_table_is_bounded() {
        let sessions = Sessions::default();
        let first = sessions.start(Access::full(), "t".into(), HOUR).unwrap();
        let long = HOUR * 2;
        for _ in 0..MAX_SESSIONS {
            sessions.start(Access::full(), "t".into(), long).unwrap();
        }
        assert_eq!(sessions.table().len(), MAX_SESSIONS);
        assert_eq!(
            sessions.access(&first.id),
            None,
            "the one closest to its end"
        );
    }
}
