//! The operator's notifications, shared by both backends: the reserved namespace that holds the
//! one notification webhook, and the [`Notice`]s written as ordinary events of that namespace
//! (type `notification`), each with a task for that webhook, in the transaction of the change
//! they report. The worker then delivers them as any other delivery: signed, retried, isolated
//! by its per-webhook limits and breakers, so a dead notification receiver holds up no one.

use djinn_hook_outbox::Attempt;
use djinn_hook_payload::{EventType, Notification, redact_userinfo};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::rows::SubjectRow;

/// The namespace of the operator's notification webhook. Its owner segment, `_djinn-hooks`, is
/// reserved: no namespace under it can be created and no webhook added, and the intake refuses
/// events for it, so the one webhook there receives only notifications.
pub const NOTIFICATIONS_NAMESPACE: &str = "_djinn-hooks/notifications";

/// The reserved owner segment (see [`NOTIFICATIONS_NAMESPACE`]).
const RESERVED_OWNER: &str = "_djinn-hooks";

/// Refuses `name` if it is under the reserved owner.
pub(crate) fn refuse_reserved(name: &str) -> Result<()> {
    if name.split('/').next() == Some(RESERVED_OWNER) {
        return Err(Error::InvalidNamespace {
            namespace: name.to_owned(),
            reason: "reserved for djinn-hooks' own notifications",
        });
    }
    Ok(())
}

/// The webhook a notice is about.
#[derive(Debug)]
pub(crate) struct Subject {
    pub(crate) hook_id: i64,
    pub(crate) namespace: String,
    pub(crate) payload_url: String,
}

/// Something to tell the operator.
#[derive(Debug)]
pub(crate) enum Notice {
    /// A webhook was disabled by djinn-hooks (a 410, or failing for too long).
    Disabled {
        hook: Subject,
        reason: String,
        disabled_at: OffsetDateTime,
        failing_since: Option<OffsetDateTime>,
    },
    /// A webhook that djinn-hooks had disabled was enabled again.
    Enabled {
        hook: Subject,
        disabled_at: Option<OffsetDateTime>,
        reason: Option<String>,
    },
    /// A task ran out of attempts (or was refused for good): its event will not be delivered.
    Failed {
        hook: Subject,
        event_id: Uuid,
        event: EventType,
        attempts: u32,
        result: &'static str,
        status: Option<u16>,
        error: Option<String>,
    },
    /// A destination's breaker has been open for longer than the operator's threshold.
    BreakerOpen {
        destination: String,
        reason: String,
        open_since: OffsetDateTime,
        failures: i64,
    },
}

impl Notice {
    /// Whether this notice may be sent: never about the notification webhook itself (a dead
    /// notification receiver would otherwise report itself, forever).
    pub(crate) fn reportable(&self) -> bool {
        match self {
            Notice::Disabled { hook, .. }
            | Notice::Enabled { hook, .. }
            | Notice::Failed { hook, .. } => refuse_reserved(&hook.namespace).is_ok(),
            Notice::BreakerOpen { .. } => true,
        }
    }

    /// The webhook of `subject` (as `notices.rs`'s `subject` reads it) disabled by `attempt`'s
    /// answer, for `reason`.
    pub(crate) fn disabled(subject: SubjectRow, reason: &str, attempt: &Attempt) -> Notice {
        let (hook, failing_since, _, _) = subject;
        Notice::Disabled {
            hook,
            reason: reason.to_owned(),
            disabled_at: attempt.created_at,
            failing_since,
        }
    }

    /// A task failed for good after `attempt`, its last.
    pub(crate) fn failed(hook: Subject, attempt: &Attempt) -> Notice {
        Notice::Failed {
            hook,
            event_id: attempt.event_id,
            event: attempt.event,
            attempts: attempt.attempt,
            result: attempt.outcome.as_str(),
            status: attempt.response_status,
            error: attempt.error.clone(),
        }
    }

    /// The delivery body: a [`Notification`], as its payload type serialises it.
    pub(crate) fn body(&self, now: OffsetDateTime) -> Vec<u8> {
        let (kind, details) = match self {
            Notice::Disabled {
                hook,
                reason,
                disabled_at,
                failing_since,
            } => (
                "webhook.disabled",
                json!({
                    "webhook": webhook(hook),
                    "reason": reason,
                    "disabled_at": rfc3339(*disabled_at),
                    "failing_since": failing_since.map(rfc3339),
                }),
            ),
            Notice::Enabled {
                hook,
                disabled_at,
                reason,
            } => (
                "webhook.enabled",
                json!({
                    "webhook": webhook(hook),
                    "disabled_at": disabled_at.map(rfc3339),
                    "reason": reason,
                }),
            ),
            Notice::Failed {
                hook,
                event_id,
                event,
                attempts,
                result,
                status,
                error,
            } => (
                "delivery.failed",
                json!({
                    "webhook": webhook(hook),
                    "event": { "id": event_id, "type": event.name() },
                    "attempts": attempts,
                    "result": result,
                    "status": status,
                    "error": error,
                }),
            ),
            Notice::BreakerOpen {
                destination,
                reason,
                open_since,
                failures,
            } => (
                "breaker.open",
                json!({
                    "destination": destination,
                    "reason": reason,
                    "open_since": rfc3339(*open_since),
                    "failures": failures,
                }),
            ),
        };
        let Value::Object(details) = details else {
            unreachable!("a JSON object literal")
        };
        let notification = Notification::new(kind, now, details);
        serde_json::to_vec(&notification).expect("a notification serialises")
    }
}

/// A webhook as a notification names it: its URL without user-info (it may hold credentials).
fn webhook(hook: &Subject) -> Value {
    let mut map = Map::new();
    map.insert("id".into(), hook.hook_id.into());
    map.insert("namespace".into(), hook.namespace.clone().into());
    let url = redact_userinfo(&hook.payload_url).into_owned();
    map.insert("url".into(), url.into());
    Value::Object(map)
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).expect("a stored time formats")
}
