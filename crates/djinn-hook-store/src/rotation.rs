//! Secret rotation: a webhook gets a new signing secret while its previous one is still signed
//! with for an overlap, so a receiver can move to the new secret without refusing a delivery.
//!
//! The previous secret is sealed like the current one; a claim hands it out only before the
//! overlap's end, and a prune clears it once that has passed.

use std::time::Duration;

use rusqlite::{OptionalExtension, params};
use time::OffsetDateTime;

use crate::backend::Rotation;
use crate::error::{Error, Result};
use crate::hooks::hook_by_id;
use crate::sql::to_ns;
use crate::sqlite::SqliteBackend;
use crate::types::Webhook;
use crate::validate::ValidationErrors;

/// How long a rotated-out secret is still signed with unless asked otherwise: a day.
pub const DEFAULT_ROTATION_OVERLAP: Duration = Duration::from_secs(24 * 60 * 60);

/// The longest overlap accepted: a week. A rotation often follows a leak, so the old secret
/// must not stay valid for long.
pub const MAX_ROTATION_OVERLAP: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// Checks a rotation's new secret and overlap ([`Error::Invalid`] names the field).
pub(crate) fn check(secret: &str, overlap: Duration) -> Result<()> {
    let mut errors = ValidationErrors::default();
    if secret.is_empty() {
        errors.add("secret", "must not be empty");
    }
    crate::validate::secret(secret, &mut errors);
    if overlap > MAX_ROTATION_OVERLAP {
        errors.add(
            "overlap",
            format!(
                "must be at most {} days ({}s), is {}s",
                MAX_ROTATION_OVERLAP.as_secs() / 86_400,
                MAX_ROTATION_OVERLAP.as_secs(),
                overlap.as_secs()
            ),
        );
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::Invalid(errors))
    }
}

/// When the overlap of a rotation made at `now` ends, as stored; `None` for no overlap.
pub(crate) fn overlap_end(now: OffsetDateTime, overlap: Duration) -> Option<i64> {
    (!overlap.is_zero()).then(|| to_ns(now + overlap))
}

/// Whether a previous secret kept until `until` (stored ns) is still signed with at `now`.
pub(crate) fn live(until: Option<i64>, now: OffsetDateTime) -> bool {
    until.is_some_and(|until| until > to_ns(now))
}

/// `hook` as shown at `now`: an overlap that has ended is not shown (a prune deletes it).
pub(crate) fn shown_at(mut hook: Webhook, now: OffsetDateTime) -> Webhook {
    hook.secret_rotating_until = hook.secret_rotating_until.filter(|until| *until > now);
    hook
}

impl Rotation for SqliteBackend {
    /// [`Store::rotate_secret`](crate::Store::rotate_secret) on SQLite.
    fn rotate_secret(&self, id: i64, secret: &str, until: Option<i64>) -> Result<Webhook> {
        self.write("rotating a webhook secret", |tx| {
            let exists = tx
                .prepare_cached("SELECT 1 FROM webhooks WHERE id = ?1")?
                .query_row([id], |_| Ok(()))
                .optional()?;
            if exists.is_none() {
                return Err(Error::WebhookNotFound { id }.into());
            }
            let sealed = self.cipher.seal(id, secret)?;
            // The current sealed secret moves over as it is (same webhook, same binding); a
            // webhook without one, or a rotation without overlap, keeps no previous secret.
            tx.prepare_cached(
                "UPDATE webhooks SET
                    previous_secret = CASE WHEN ?3 IS NULL THEN NULL ELSE secret END,
                    previous_secret_until = CASE WHEN ?3 IS NULL OR secret IS NULL THEN NULL
                        ELSE ?3 END,
                    secret = ?2
                 WHERE id = ?1",
            )?
            .execute(params![id, sealed, until])?;
            Ok(hook_by_id(tx, id)?.expect("exists"))
        })
    }

    /// Clears the previous secrets whose overlap ended before `now`.
    fn clear_ended_rotations(&self, now: OffsetDateTime) -> Result<u64> {
        self.write("clearing ended secret rotations", |tx| {
            Ok(tx
                .prepare_cached(
                    "UPDATE webhooks SET previous_secret = NULL, previous_secret_until = NULL
                     WHERE previous_secret_until <= ?1",
                )?
                .execute([to_ns(now)])? as u64)
        })
    }
}
