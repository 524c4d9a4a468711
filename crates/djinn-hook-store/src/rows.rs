//! The store's row readers, written once for both backends over [`Columns`]: each turns the
//! columns its query selects (in the order the doc names; the SQL that selects them is per
//! backend) into a store type. A SQLite mapper passes one to `query_map` as it is; PostgreSQL
//! maps its rows through it.

use std::time::Duration;

use djinn_hook_outbox::{AttemptOutcome, SharedBreaker, TraceParent};
use time::OffsetDateTime;

use crate::breakers::shared;
use crate::columns::Columns;
use crate::custom_headers;
use crate::idempotency::StoredKey;
use crate::liveness::{ProcessId, ProcessInfo};
use crate::notify::{Notice, Subject};
use crate::sql::{
    attempt, count, event_from_code, events_from_mask, from_ns, headers_from_json, status,
};
use crate::task::{Settings, TaskRow};
use crate::types::{
    BreakerHold, Counts, Delivery, DeliveryLimits, LastResponse, LimitHold, Namespace, SuccessRate,
    Webhook,
};
use crate::webhook_rules::StoredHook;

/// A webhook as a notice names it, with its `failing_since`, `disabled_at` and
/// `disabled_reason`.
pub(crate) type SubjectRow = (
    Subject,
    Option<OffsetDateTime>,
    Option<OffsetDateTime>,
    Option<String>,
);

/// A task as a claim leased it, with the key the claim orders by (the time it was due, its
/// id), from the columns `id, attempts, redelivery` of the task (its attempts counted after the
/// claim's increment), `uuid, event, created_at` of its event, then the body it sends (the
/// task's own, else the event's payload), the task's `next_at` before the claim and the
/// event's `traceparent`.
pub(crate) fn claimed_task<R: Columns + ?Sized>(r: &R) -> Result<((i64, i64), TaskRow), R::Error> {
    let task_id = r.get(0)?;
    let row = TaskRow {
        task_id,
        attempt: attempt(r.get(1)?),
        redelivery: r.get(2)?,
        event_id: r.uuid(3)?,
        event: event_from_code(r.get(4)?)?,
        event_created_at: from_ns(r.get(5)?),
        body: r.get(6)?,
        traceparent: r
            .get::<Option<String>>(8)?
            .as_deref()
            .and_then(TraceParent::parse),
    };
    Ok(((r.get(7)?, task_id), row))
}

/// A webhook from the columns of `hooks.rs`'s `SELECT_HOOK`.
pub(crate) fn webhook<R: Columns + ?Sized>(r: &R) -> Result<Webhook, R::Error> {
    Ok(Webhook {
        id: r.get(0)?,
        namespace: r.get(1)?,
        author_id: r.get(2)?,
        payload_url: r.get(3)?,
        ssl: r.get(4)?,
        events: events_from_mask(r.get(5)?)?,
        active: r.get(6)?,
        standard_webhooks: r.get(7)?,
        has_secret: r.get(8)?,
        created_at: from_ns(r.get(9)?),
        disabled_reason: r.get(10)?,
        disabled_at: r.get::<Option<i64>>(11)?.map(from_ns),
        failing_since: r.get::<Option<i64>>(12)?.map(from_ns),
        limits: limits(r.get(13)?, r.get(14)?),
        breaker: match (r.get::<Option<String>>(15)?, r.get::<Option<i64>>(16)?) {
            (Some(destination), Some(until)) => Some(BreakerHold {
                destination,
                until: from_ns(until),
                reason: r.get::<Option<String>>(17)?.unwrap_or_default(),
            }),
            _ => None,
        },
        secret_rotating_until: r.get::<Option<i64>>(18)?.map(from_ns),
        delivery_limit: match r.get::<Option<i64>>(19)? {
            Some(limit) => Some(LimitHold {
                limit: u32::try_from(limit).unwrap_or(0),
                reason: r.get::<Option<String>>(20)?.unwrap_or_default(),
                paused_until: r.get::<Option<i64>>(21)?.map(from_ns),
            }),
            None => None,
        },
        in_flight: r.get::<i64>(22)?.try_into().unwrap_or(0),
        headers: custom_headers::names(r.get(23)?),
    })
}

/// A webhook's limits from its columns (a value out of range reads as unset).
pub(crate) fn limits(max_in_flight: Option<i64>, timeout_ms: Option<i64>) -> DeliveryLimits {
    DeliveryLimits {
        max_in_flight: max_in_flight.and_then(|n| u32::try_from(n).ok()),
        timeout: timeout_ms
            .and_then(|ms| u64::try_from(ms).ok())
            .map(Duration::from_millis),
    }
}

/// The delivery settings of webhook `hook_id` from `claim.rs`'s `SETTINGS_COLUMNS`, read from
/// column `at` on.
pub(crate) fn settings<R: Columns + ?Sized>(
    hook_id: i64,
    r: &R,
    at: usize,
) -> Result<Settings, R::Error> {
    Ok(Settings {
        hook_id,
        payload_url: r.get(at)?,
        ssl: r.get(at + 1)?,
        sealed_secret: r.get(at + 2)?,
        standard_webhooks: r.get(at + 3)?,
        failing_since: r.get::<Option<i64>>(at + 4)?.map(from_ns),
        limits: limits(r.get(at + 5)?, r.get(at + 6)?),
        sealed_previous_secret: r.get(at + 7)?,
        previous_secret_until: r.get(at + 8)?,
        sealed_headers: r.get(at + 9)?,
    })
}

/// A logged attempt from the columns of each backend's `SELECT_DELIVERY` (`log.rs`).
pub(crate) fn delivery<R: Columns + ?Sized>(r: &R) -> Result<Delivery, R::Error> {
    Ok(Delivery {
        id: r.get(0)?,
        hook_id: r.get(1)?,
        event_id: r.uuid(2)?,
        event: event_from_code(r.get(3)?)?,
        attempt: attempt(r.get(4)?),
        redelivery: r.get(5)?,
        test: r.get(6)?,
        request_headers: headers_from_json(&r.get::<String>(7)?)?,
        request_body: r.get(8)?,
        request_truncated: r.get(9)?,
        response_status: status(r.get(10)?)?,
        response_headers: headers_from_json(&r.get::<String>(11)?)?,
        response_body: r.get(12)?,
        response_truncated: r.get(13)?,
        tls_verification_skipped: r.get(14)?,
        duration: Duration::from_nanos(count(r.get(15)?)),
        error: r.get(16)?,
        created_at: from_ns(r.get(17)?),
        result: outcome_named(&r.get::<String>(18)?),
    })
}

/// A stored outcome name as the outcome (a name this build does not know, from a newer one,
/// reads as [`AttemptOutcome::Other`]).
pub(crate) fn outcome_named(name: &str) -> AttemptOutcome {
    AttemptOutcome::from_name(name).unwrap_or(AttemptOutcome::Other)
}

/// A webhook's id and its last response, from `hook_id, id, response_status, duration_ns,
/// error, created_at` of its last delivery.
pub(crate) fn last_response<R: Columns + ?Sized>(r: &R) -> Result<(i64, LastResponse), R::Error> {
    Ok((
        r.get(0)?,
        LastResponse {
            delivery_id: r.get(1)?,
            code: status(r.get(2)?)?,
            duration: Duration::from_nanos(count(r.get(3)?)),
            error: r.get(4)?,
            created_at: from_ns(r.get(5)?),
        },
    ))
}

/// A namespace from `id, name, parent_id, created_at`.
pub(crate) fn namespace<R: Columns + ?Sized>(r: &R) -> Result<Namespace, R::Error> {
    Ok(Namespace {
        id: r.get(0)?,
        name: r.get(1)?,
        parent_id: r.get(2)?,
        created_at: from_ns(r.get(3)?),
    })
}

/// A shared breaker from `breakers.rs`'s `BREAKER_COLUMNS` (`None` for a destination this
/// build cannot read).
pub(crate) fn shared_breaker<R: Columns + ?Sized>(
    r: &R,
) -> Result<Option<SharedBreaker>, R::Error> {
    Ok(shared(
        &r.get::<String>(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

/// A registered process from `id, pid, host, started_at`.
pub(crate) fn process<R: Columns + ?Sized>(r: &R) -> Result<ProcessInfo, R::Error> {
    Ok(ProcessInfo {
        id: ProcessId::from_i64(r.get(0)?),
        pid: u32::try_from(r.get::<i64>(1)?).unwrap_or_default(),
        host: r.get(2)?,
        started_at: from_ns(r.get(3)?),
    })
}

/// Webhook `hook_id` as a notice names it, from `n.name, w.payload_url, w.failing_since,
/// w.disabled_at, w.disabled_reason`.
pub(crate) fn subject<R: Columns + ?Sized>(hook_id: i64, r: &R) -> Result<SubjectRow, R::Error> {
    let subject = Subject {
        hook_id,
        namespace: r.get(0)?,
        payload_url: r.get(1)?,
    };
    let at = |ns: Option<i64>| ns.map(from_ns);
    Ok((subject, at(r.get(2)?), at(r.get(3)?), r.get(4)?))
}

/// A webhook's `namespace_id` and the columns an update is checked against, from
/// `namespace_id, payload_url, active, ssl`.
pub(crate) fn stored_hook<R: Columns + ?Sized>(r: &R) -> Result<(i64, StoredHook), R::Error> {
    let stored = StoredHook {
        url: r.get(1)?,
        active: r.get(2)?,
        ssl: r.get(3)?,
    };
    Ok((r.get(0)?, stored))
}

/// The notice that `destination`'s breaker has been open too long, from the `reason,
/// open_since, failures` of its row.
pub(crate) fn breaker_notice<R: Columns + ?Sized>(
    destination: &str,
    r: &R,
) -> Result<Notice, R::Error> {
    Ok(Notice::BreakerOpen {
        destination: destination.to_owned(),
        reason: r.get(0)?,
        open_since: from_ns(r.get(1)?),
        failures: r.get(2)?,
    })
}

/// A webhook's id and its success rate, from `hook_id, attempts, delivered`.
pub(crate) fn success_rate<R: Columns + ?Sized>(r: &R) -> Result<(i64, SuccessRate), R::Error> {
    let rate = SuccessRate {
        attempts: count(r.get(1)?),
        delivered: count(r.get(2)?),
    };
    Ok((r.get(0)?, rate))
}

/// The store's counts, from the seven of each backend's `counts` query in [`Counts`]' order.
pub(crate) fn counts<R: Columns + ?Sized>(r: &R) -> Result<Counts, R::Error> {
    Ok(Counts {
        pending: count(r.get(0)?),
        leased: count(r.get(1)?),
        failed: count(r.get(2)?),
        disabled_hooks: count(r.get(3)?),
        events: count(r.get(4)?),
        deliveries: count(r.get(5)?),
        open_breakers: count(r.get(6)?),
    })
}

/// A stored idempotency key from its `fingerprint, event_uuid, matched`, read from column `at`
/// on.
pub(crate) fn stored_key<R: Columns + ?Sized>(r: &R, at: usize) -> Result<StoredKey, R::Error> {
    Ok(StoredKey {
        fingerprint: r.get(at)?,
        event_id: r.uuid(at + 1)?,
        matched: usize::try_from(r.get::<i64>(at + 2)?).unwrap_or(0),
    })
}
