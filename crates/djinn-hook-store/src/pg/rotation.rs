//! Secret rotation on PostgreSQL (the rules are SQLite's, in `rotation.rs`).

use time::OffsetDateTime;

use super::PgBackend;
use super::hooks::hook_by_id;
use crate::backend::Rotation;
use crate::error::{Error, Result};
use crate::sql::to_ns;
use crate::types::Webhook;

impl Rotation for PgBackend {
    fn rotate_secret(&self, id: i64, secret: &str, until: Option<i64>) -> Result<Webhook> {
        self.write("rotating a webhook secret", |tx| {
            let sealed = self.cipher.seal(id, secret)?;
            let n = tx.execute(
                "UPDATE webhooks SET
                    previous_secret = CASE WHEN $3::BIGINT IS NULL THEN NULL ELSE secret END,
                    previous_secret_until = CASE WHEN $3::BIGINT IS NULL OR secret IS NULL
                        THEN NULL ELSE $3::BIGINT END,
                    secret = $2
                 WHERE id = $1",
                &[&id, &sealed, &until],
            )?;
            if n == 0 {
                return Err(Error::WebhookNotFound { id }.into());
            }
            Ok(hook_by_id(tx, id)?.expect("exists"))
        })
    }

    fn clear_ended_rotations(&self, now: OffsetDateTime) -> Result<u64> {
        self.write("clearing ended secret rotations", |tx| {
            Ok(tx.execute(
                "UPDATE webhooks SET previous_secret = NULL, previous_secret_until = NULL
                 WHERE previous_secret_until <= $1",
                &[&to_ns(now)],
            )?)
        })
    }
}
