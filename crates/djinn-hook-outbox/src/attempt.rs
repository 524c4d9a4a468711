//! The record of one delivery attempt: [`Attempt`] and its classified [`AttemptOutcome`].
//!
//! An attempt's outcome is its *result*: its names ([`AttemptOutcome::as_str`]) are the words
//! of the delivery log's `result` column, `deliveries list/show`, the API's JSON, the web UI,
//! log lines and metrics (the task's fate after it is its [`Outcome`](crate::Outcome)).

use std::fmt;
use std::time::Duration;

use djinn_hook_payload::EventType;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::request::DeliveryRequest;
use crate::trace::TraceParent;

/// What became of one attempt, for retry decisions, statistics and the delivery log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AttemptOutcome {
    /// The receiver answered 2xx.
    Success,
    /// The receiver answered with a status that is neither 2xx nor 3xx.
    HttpStatus,
    /// The receiver answered 3xx; the redirect was not followed.
    RedirectNotFollowed,
    /// The connect or overall timeout expired before a response arrived.
    Timeout,
    /// The receiver refused the connection.
    ConnectRefused,
    /// The SSRF guard refused the resolved address; nothing was sent.
    Blocked,
    /// The TLS handshake failed (e.g. certificate verification).
    TlsError,
    /// Anything else (invalid URL or secret, unknown host, reset connection, ...).
    Other,
}

impl AttemptOutcome {
    /// A stable lower-case name for storage and logs (`success`, `http_status`,
    /// `redirect_not_followed`, `timeout`, `connect_refused`, `blocked`, `tls_error`, `other`).
    pub const fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Success => "success",
            AttemptOutcome::HttpStatus => "http_status",
            AttemptOutcome::RedirectNotFollowed => "redirect_not_followed",
            AttemptOutcome::Timeout => "timeout",
            AttemptOutcome::ConnectRefused => "connect_refused",
            AttemptOutcome::Blocked => "blocked",
            AttemptOutcome::TlsError => "tls_error",
            AttemptOutcome::Other => "other",
        }
    }

    /// Every outcome, in the order declared.
    pub const ALL: [AttemptOutcome; 8] = [
        AttemptOutcome::Success,
        AttemptOutcome::HttpStatus,
        AttemptOutcome::RedirectNotFollowed,
        AttemptOutcome::Timeout,
        AttemptOutcome::ConnectRefused,
        AttemptOutcome::Blocked,
        AttemptOutcome::TlsError,
        AttemptOutcome::Other,
    ];

    /// Looks an outcome up by [`as_str`](Self::as_str) name (how the stores read it back).
    pub fn from_name(name: &str) -> Option<AttemptOutcome> {
        AttemptOutcome::ALL
            .into_iter()
            .find(|outcome| outcome.as_str() == name)
    }
}

impl fmt::Display for AttemptOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything the delivery log keeps about one attempt.
///
/// Request headers include the signature headers but never the secret, nor a custom header's
/// value. The request body is not here: an attempt sends its
/// [`DeliveryRequest`](crate::DeliveryRequest)'s body unchanged (it signs those bytes), and the
/// store already holds them. The response body is capped by the
/// deliverer; `response_truncated` says whether more followed. Made with [`Attempt::new`], then
/// filled in by setting fields.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Attempt {
    /// The webhook's id.
    pub hook_id: i64,
    /// The event's id (also sent as `X-Djinn-CI-Delivery`).
    pub event_id: Uuid,
    /// The event type.
    pub event: EventType,
    /// The URL the request went (or would have gone) to.
    pub url: String,
    /// Which attempt this was (1 = first).
    pub attempt: u32,
    /// Copied from the request: a manual redelivery.
    pub redelivery: bool,
    /// When the attempt started.
    pub created_at: OffsetDateTime,
    /// Wall time from the start of the attempt to the end of reading the response body.
    pub duration: Duration,
    /// The headers this crate set, in the order sent (ureq adds `Host` and `Content-Length`);
    /// the webhook's custom headers last, each value recorded as
    /// [`CustomHeader::MASK`](crate::CustomHeader::MASK).
    pub request_headers: Vec<(String, String)>,
    /// The response status, when a response arrived.
    pub response_status: Option<u16>,
    /// The response headers, in the order received (values decoded lossily as UTF-8).
    pub response_headers: Vec<(String, String)>,
    /// The response body, at most `max_response_body` bytes.
    pub response_body: Vec<u8>,
    /// More response body followed than was kept.
    pub response_truncated: bool,
    /// What failed, with its causes; `None` for any response that is not a redirect and was read
    /// completely.
    pub error: Option<String>,
    /// The URL was `https` and `ssl` was off, so the certificate was not verified.
    pub tls_verification_skipped: bool,
    /// The classified outcome.
    pub outcome: AttemptOutcome,
    /// The request's [`traceparent`](DeliveryRequest::traceparent): the intake's trace, whose
    /// span is the parent of this attempt's (the attempt's own id is in the `traceparent`
    /// request header it sent).
    pub traceparent: Option<TraceParent>,
}

impl Attempt {
    /// An attempt at `request` started at `created_at`, with nothing sent or received yet:
    /// no headers, no response, outcome [`AttemptOutcome::Other`]. The deliverer fills it in;
    /// a store's tests and tools make records by hand from it.
    pub fn new(request: &DeliveryRequest, created_at: OffsetDateTime) -> Attempt {
        Attempt {
            hook_id: request.hook_id,
            event_id: request.event_id,
            event: request.event,
            url: request.url.clone(),
            attempt: request.attempt,
            redelivery: request.redelivery,
            created_at,
            duration: Duration::ZERO,
            request_headers: Vec::new(),
            response_status: None,
            response_headers: Vec::new(),
            response_body: Vec::new(),
            response_truncated: false,
            error: None,
            tls_verification_skipped: false,
            outcome: AttemptOutcome::Other,
            traceparent: request.traceparent,
        }
    }

    /// The first response header named `name` (case-insensitive).
    pub fn response_header(&self, name: &str) -> Option<&str> {
        self.response_headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The receiver answered 2xx.
    pub fn is_success(&self) -> bool {
        self.outcome == AttemptOutcome::Success
    }
}

#[cfg(test)]
mod tests {
    use super::AttemptOutcome;

    #[test]
    fn every_outcome_reads_back_from_its_name_and_names_are_distinct() {
        for outcome in AttemptOutcome::ALL {
            assert_eq!(AttemptOutcome::from_name(outcome.as_str()), Some(outcome));
            let same = AttemptOutcome::ALL
                .iter()
                .filter(|o| o.as_str() == outcome.as_str())
                .count();
            assert_eq!(same, 1, "{outcome}");
        }
        assert_eq!(AttemptOutcome::from_name("Success"), None);
        assert_eq!(AttemptOutcome::from_name(""), None);
    }
}
