//! The public [`Store`]'s side of the operator's notifications (`notify.rs`): configuring the
//! one notification webhook.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::Store;
use crate::error::Result;
use crate::notify::NOTIFICATIONS_NAMESPACE;
use crate::types::{NewWebhook, SecretUpdate, Webhook, WebhookUpdate};

/// Where the operator's notifications go: a payload URL and the secret that signs them.
///
/// Made with [`NotificationTarget::new`], then changed by setting its fields. Its `Debug`
/// never shows the secret.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NotificationTarget {
    /// Where notifications are POSTed, validated as any webhook's payload URL.
    pub payload_url: String,
    /// The secret that signs them; default `None` (unsigned).
    pub secret: Option<String>,
    /// Send the Standard Webhooks headers too; default `false`.
    pub standard_webhooks: bool,
}

impl NotificationTarget {
    /// Notifications to `payload_url`, unsigned, without Standard Webhooks headers.
    pub fn new(payload_url: impl Into<String>) -> NotificationTarget {
        NotificationTarget {
            payload_url: payload_url.into(),
            secret: None,
            standard_webhooks: false,
        }
    }
}

impl std::fmt::Debug for NotificationTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotificationTarget")
            .field(
                "payload_url",
                &djinn_hook_payload::redact_userinfo(&self.payload_url),
            )
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("standard_webhooks", &self.standard_webhooks)
            .finish()
    }
}

/// The operator's notifications.
impl Store {
    /// Tells the operator (a `breaker.open` notification) when a destination's breaker is still
    /// open this long after it first opened; `None` (the default): never. Checked when a
    /// failed probe reopens it, so the notice comes at most one open period late.
    pub fn set_breaker_notice_after(&self, after: Option<Duration>) {
        let ms = after.map_or(0, |d| {
            u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
        });
        self.breaker_notice_after_ms.store(ms, Ordering::Relaxed);
    }

    /// Makes `target` the one webhook of [`NOTIFICATIONS_NAMESPACE`] (created, or updated and
    /// enabled), or, with `None`, deactivates it if there is one (what was queued for it is
    /// marked failed). Every process on the store may call it at start with its own
    /// configuration; the last one wins. Returns the webhook, if there is one.
    ///
    /// From then on, in the transaction of the change they report, the store queues a
    /// `notification` event for it when a webhook is disabled (a 410, or failing for too
    /// long), when a webhook it had disabled is enabled again, when a task fails for good, and
    /// when a destination's breaker has been open for longer than
    /// [`Store::set_breaker_notice_after`].
    pub fn set_notification_webhook(
        &self,
        target: Option<NotificationTarget>,
    ) -> Result<Option<Webhook>> {
        let existing = self.webhooks(NOTIFICATIONS_NAMESPACE)?.into_iter().next();
        match (target, existing) {
            (None, None) => Ok(None),
            (None, Some(hook)) if !hook.active => Ok(Some(hook)),
            (None, Some(hook)) => {
                let update = WebhookUpdate {
                    active: Some(false),
                    ..WebhookUpdate::default()
                };
                self.update_webhook(hook.id, update).map(Some)
            }
            (Some(target), None) => {
                self.backend()
                    .ensure_namespace(NOTIFICATIONS_NAMESPACE, self.now())?;
                let mut new = NewWebhook::new(NOTIFICATIONS_NAMESPACE, target.payload_url.clone());
                new.secret = target.secret.clone();
                new.standard_webhooks = target.standard_webhooks;
                match self.backend().create_webhook(new, self.now()) {
                    Ok(hook) => Ok(Some(self.shown(hook))),
                    // Processes started at once each found no webhook and made one; the first
                    // won (the URL is unique in its namespace), the others take it as theirs.
                    Err(err) => match self.webhooks(NOTIFICATIONS_NAMESPACE)?.into_iter().next() {
                        Some(hook) => self.point_notification_webhook(hook, target).map(Some),
                        None => Err(err),
                    },
                }
            }
            (Some(target), Some(hook)) => self.point_notification_webhook(hook, target).map(Some),
        }
    }

    /// Points the existing notification webhook `hook` at `target`, enabled.
    fn point_notification_webhook(
        &self,
        hook: Webhook,
        target: NotificationTarget,
    ) -> Result<Webhook> {
        let update = WebhookUpdate {
            payload_url: Some(target.payload_url),
            secret: match target.secret {
                Some(secret) => SecretUpdate::Set(secret),
                None => SecretUpdate::Remove,
            },
            standard_webhooks: Some(target.standard_webhooks),
            active: Some(true),
            ..WebhookUpdate::default()
        };
        self.update_webhook(hook.id, update)
    }
}
