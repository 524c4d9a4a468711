//! The payload of `notification`: what djinn-hooks tells its operator about itself.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::entity::Extra;

/// The payload of a `notification`, sent only to the operator's notification webhook (never
/// to a CI webhook, and never accepted at the intake): something happened to djinn-hooks
/// itself. `type` says what (`webhook.disabled`, `webhook.enabled`, `breaker.open`,
/// `delivery.failed`); the other keys depend on it and are listed in docs/OPERATIONS.md.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Notification {
    /// What happened, e.g. `webhook.disabled`.
    #[serde(rename = "type")]
    pub kind: String,
    /// When djinn-hooks noticed it.
    #[serde(with = "crate::wire::timestamp")]
    pub created_at: OffsetDateTime,
    /// The details of this kind of notification.
    #[serde(flatten)]
    pub details: Extra,
}

impl Notification {
    /// A notification of `kind` noticed at `created_at`, with `details`.
    pub fn new(
        kind: impl Into<String>,
        created_at: OffsetDateTime,
        details: Extra,
    ) -> Notification {
        Notification {
            kind: kind.into(),
            created_at,
            details,
        }
    }
}
