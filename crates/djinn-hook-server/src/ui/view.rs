//! What the templates show: webhooks and deliveries turned into display strings and links.

use std::time::Duration;

use axum::http::StatusCode;
use djinn_hook_payload::redact_userinfo;
use djinn_hook_store::{Delivery, LastResponse, SuccessRate, Webhook};
use time::OffsetDateTime;
use time::macros::format_description;

use super::paths::Links;

/// How a webhook's last delivery went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Health {
    /// Never delivered.
    Never,
    /// The last delivery got a 2xx.
    Ok,
    /// The last delivery failed.
    Failed,
}

impl Health {
    pub(crate) fn of(last: Option<&LastResponse>) -> Health {
        match last {
            None => Health::Never,
            Some(last) if last.error.is_none() && last.code.is_some_and(is_2xx) => Health::Ok,
            Some(_) => Health::Failed,
        }
    }

    pub(crate) fn is_ok(&self) -> bool {
        *self == Health::Ok
    }

    pub(crate) fn is_failed(&self) -> bool {
        *self == Health::Failed
    }
}

fn is_2xx(code: u16) -> bool {
    (200..300).contains(&code)
}

/// One row of the webhook list.
#[derive(Clone, Debug)]
pub(crate) struct HookRow {
    pub(crate) href: String,
    pub(crate) payload_url: String,
    pub(crate) active: bool,
    pub(crate) disabled_reason: Option<String>,
    /// The open breaker holding its deliveries, as [`breaker_line`] says it; empty when none.
    pub(crate) breaker: String,
    /// Its adaptive limit, as [`delivery_limit_line`] says it; empty at its cap.
    pub(crate) delivery_limit: String,
    pub(crate) health: Health,
    /// E.g. `200 OK, 2026-12-01 12:00:00 UTC`; empty when never delivered.
    pub(crate) last: String,
    /// E.g. `24 h: 75% of 4 delivered`; empty when nothing was attempted in 24 hours.
    pub(crate) rate: String,
    pub(crate) delete_action: String,
}

impl HookRow {
    pub(crate) fn new(
        links: &Links,
        hook: &Webhook,
        last: Option<&LastResponse>,
        rate: Option<&SuccessRate>,
    ) -> HookRow {
        let href = links.hook(&hook.namespace, hook.id);
        HookRow {
            delete_action: format!("{href}/delete"),
            href,
            payload_url: redact_userinfo(&hook.payload_url).into_owned(),
            active: hook.active,
            disabled_reason: hook.disabled_reason.clone(),
            breaker: breaker_line(hook),
            delivery_limit: delivery_limit_line(hook),
            health: Health::of(last),
            last: last.map_or_else(String::new, |last| {
                format!("{}, {}", status_line(last.code), when(last.created_at))
            }),
            rate: rate.map_or_else(String::new, |rate| {
                format!(
                    "last 24 h: {}% of {} delivered",
                    rate.percent(),
                    rate.attempts
                )
            }),
        }
    }
}

/// The banner a namespace's page shows for `hook` while what the operator's notification said
/// still holds: disabled by djinn-hooks (when, why, failing since when), or its receiver's
/// breaker open. `None` for a webhook in good order.
pub(crate) fn banner(hook: &Webhook) -> Option<String> {
    let url = redact_userinfo(&hook.payload_url);
    if let (false, Some(at)) = (hook.active, hook.disabled_at) {
        let reason = hook
            .disabled_reason
            .as_deref()
            .unwrap_or("no reason recorded");
        let failing = hook.failing_since.map_or_else(String::new, |since| {
            format!(", failing since {}", when(since))
        });
        return Some(format!(
            "Webhook {url} was disabled on {} after: {reason}{failing}. \
             Enable it again once its receiver is fixed.",
            when(at)
        ));
    }
    hook.breaker.as_ref().map(|b| {
        format!(
            "Webhook {url}: its receiver is failing; deliveries to {} are held until {} ({}).",
            b.destination,
            when(b.until),
            b.reason
        )
    })
}

/// One row of "Recent deliveries".
#[derive(Clone, Debug)]
pub(crate) struct DeliveryRow {
    pub(crate) href: String,
    pub(crate) ok: bool,
    pub(crate) redelivery: bool,
    pub(crate) test: bool,
    pub(crate) event_id: String,
    pub(crate) event: &'static str,
    pub(crate) status: String,
    pub(crate) when: String,
    pub(crate) duration: String,
}

impl DeliveryRow {
    pub(crate) fn new(links: &Links, ns: &str, d: &Delivery) -> DeliveryRow {
        DeliveryRow {
            href: links.delivery(ns, d.hook_id, d.id),
            ok: !d.failed(),
            redelivery: d.redelivery,
            test: d.test,
            event_id: d.event_id.to_string(),
            event: d.event.name(),
            status: d
                .response_status
                .map_or_else(|| d.result.to_string(), |s| s.to_string()),
            when: when(d.created_at),
            duration: duration(d.duration),
        }
    }
}

/// One delivery in full.
#[derive(Clone, Debug)]
pub(crate) struct DeliveryView {
    pub(crate) ok: bool,
    pub(crate) redelivery: bool,
    pub(crate) test: bool,
    pub(crate) event_id: String,
    pub(crate) event: &'static str,
    pub(crate) when: String,
    pub(crate) duration: String,
    pub(crate) attempt: u32,
    /// The attempt's result (`success`, `timeout`, ...).
    pub(crate) result: &'static str,
    pub(crate) error: Option<String>,
    pub(crate) request_headers: String,
    pub(crate) request_body: String,
    pub(crate) request_truncated: bool,
    /// `200 OK`; empty when no response came.
    pub(crate) status_line: String,
    pub(crate) response_headers: String,
    pub(crate) response_body: String,
    pub(crate) response_truncated: bool,
    pub(crate) tls_verification_skipped: bool,
    pub(crate) redeliver_action: String,
}

impl DeliveryView {
    pub(crate) fn new(links: &Links, ns: &str, d: &Delivery) -> DeliveryView {
        DeliveryView {
            ok: !d.failed(),
            redelivery: d.redelivery,
            test: d.test,
            event_id: d.event_id.to_string(),
            event: d.event.name(),
            when: when(d.created_at),
            duration: duration(d.duration),
            attempt: d.attempt,
            result: d.result.as_str(),
            error: d.error.clone(),
            request_headers: headers(&d.request_headers),
            request_body: pretty(&d.request_body),
            request_truncated: d.request_truncated,
            status_line: d
                .response_status
                .map_or_else(String::new, |s| status_line(Some(s))),
            response_headers: headers(&d.response_headers),
            response_body: String::from_utf8_lossy(&d.response_body).into_owned(),
            response_truncated: d.response_truncated,
            tls_verification_skipped: d.tls_verification_skipped,
            redeliver_action: format!("{}/redeliver", links.delivery(ns, d.hook_id, d.id)),
        }
    }
}

/// `200 OK`, `599`, or `no response`.
/// The breaker a worker last recorded for `hook`, e.g. `deliveries to http://h:80 held until
/// 2026-12-01 12:00:00 UTC: 5 consecutive timeouts`; empty when none is open.
pub(crate) fn breaker_line(hook: &Webhook) -> String {
    hook.breaker.as_ref().map_or_else(String::new, |b| {
        format!(
            "deliveries to {} held until {}: {}",
            b.destination,
            when(b.until),
            b.reason
        )
    })
}

/// The adaptive limit a worker last recorded for `hook`, e.g. `1 delivery at once (2 under
/// way): timeouts` or `paused until 2026-12-01 12:00:00 UTC (2 under way): throttled`; empty
/// at its cap.
pub(crate) fn delivery_limit_line(hook: &Webhook) -> String {
    hook.delivery_limit.as_ref().map_or_else(String::new, |l| {
        let now = OffsetDateTime::now_utc();
        let limit = match l.paused_until {
            Some(until) if until > now => format!("paused until {}", when(until)),
            _ => format!(
                "{} {} at once",
                l.limit.max(1),
                if l.limit.max(1) == 1 {
                    "delivery"
                } else {
                    "deliveries"
                }
            ),
        };
        format!("{limit} ({} under way): {}", hook.in_flight, l.reason)
    })
}

/// `hook`'s own delivery limits in words; the worker's defaults where it has none.
pub(crate) fn limits_line(hook: &Webhook) -> String {
    let at_once = hook.limits.max_in_flight.map_or_else(
        || "the worker's default number of deliveries at once".to_owned(),
        |n| format!("at most {n} deliveries at once"),
    );
    let timeout = hook.limits.timeout.map_or_else(
        || "the worker's default timeout".to_owned(),
        |t| format!("each cut off after {}", duration(t)),
    );
    format!("{at_once}, {timeout}")
}

pub(crate) fn status_line(code: Option<u16>) -> String {
    match code {
        None => "no response".to_owned(),
        Some(code) => match StatusCode::from_u16(code)
            .ok()
            .and_then(|s| s.canonical_reason())
        {
            Some(reason) => format!("{code} {reason}"),
            None => code.to_string(),
        },
    }
}

/// `2026-12-01 12:00:00 UTC`.
pub(crate) fn when(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
        ))
        .unwrap_or_else(|_| at.to_string())
}

/// `152.3ms` under a second, `1.52s` above, as the original.
pub(crate) fn duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{:.1}ms", d.as_secs_f64() * 1000.0)
    } else {
        format!("{:.2}s", d.as_secs_f64())
    }
}

/// Headers one a line, `Name: value`, as sent.
fn headers(headers: &[(String, String)]) -> String {
    headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A JSON body pretty-printed, keys in the order sent; anything else as text.
fn pretty(body: &[u8]) -> String {
    let mut out = Vec::new();
    let mut from = serde_json::Deserializer::from_slice(body);
    let mut to = serde_json::Serializer::pretty(&mut out);
    match serde_transcode::transcode(&mut from, &mut to).and_then(|()| from.end()) {
        Ok(()) => String::from_utf8(out).unwrap_or_default(),
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(duration(Duration::from_micros(152_300)), "152.3ms");
        assert_eq!(duration(Duration::from_millis(1520)), "1.52s");
        assert_eq!(status_line(Some(200)), "200 OK");
        assert_eq!(status_line(Some(599)), "599");
        assert_eq!(status_line(None), "no response");
        assert_eq!(
            pretty(br#"{"b":1,"a":[]}"#),
            "{\n  \"b\": 1,\n  \"a\": []\n}"
        );
        assert_eq!(pretty(b"not json"), "not json");
    }
}
