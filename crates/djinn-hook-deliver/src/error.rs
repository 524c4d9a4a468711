//! Why an attempt failed: [`DeliverError`].

use std::error::Error as StdError;
use std::net::IpAddr;

/// Why one delivery attempt failed.
///
/// A failed attempt is still a complete [`Attempt`](crate::Attempt): this error's text (with its
/// causes, joined by `": "`) is what the attempt record's `error` field holds.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeliverError {
    /// The payload URL is not an absolute `http` or `https` URL with a host.
    #[error("invalid payload url {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given, its user-info replaced by `***`.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The webhook's secret could not be turned into a Standard Webhooks key.
    #[error("invalid standard webhooks secret (a \"whsec_\" secret must be base64)")]
    InvalidStandardSecret(#[source] Box<dyn StdError + Send + Sync>),
    /// The SSRF guard refused every address the host resolved to; nothing was sent.
    #[error("refused to connect to {host} at {addr}: {range} address blocked by the ssrf guard")]
    Blocked {
        /// The host name (or literal) from the URL.
        host: String,
        /// The first refused address.
        addr: IpAddr,
        /// The range the address falls in (e.g. `loopback`, `cloud metadata`).
        range: &'static str,
    },
    /// The SSRF guard refused the host name itself (a cloud metadata or platform name), before
    /// any lookup; nothing was sent.
    #[error("refused to connect to {host}: {range} name blocked by the ssrf guard")]
    BlockedName {
        /// The host name from the URL.
        host: String,
        /// Why the name is refused.
        range: &'static str,
    },
    /// The request did not complete within the configured connect or overall timeout.
    #[error("timed out: the {phase} timeout of {limit:?} expired")]
    Timeout {
        /// `connect` or `overall`.
        phase: &'static str,
        /// The configured limit.
        limit: std::time::Duration,
    },
    /// The receiver refused the connection.
    #[error("connection refused")]
    ConnectRefused(#[source] ureq::Error),
    /// The TLS handshake failed (e.g. the certificate did not verify).
    #[error("tls error")]
    Tls(#[source] ureq::Error),
    /// Any other transport failure (name not found, connection reset, protocol error, ...).
    #[error("request failed")]
    Transport(#[source] ureq::Error),
    /// The receiver answered with a redirect, which is never followed.
    #[error("redirect not followed: status {status}, location {location:?}")]
    Redirect {
        /// The 3xx status.
        status: u16,
        /// The `Location` header, if any.
        location: Option<String>,
    },
    /// The response status arrived but reading its body failed (e.g. the overall timeout hit).
    #[error("reading the response body failed")]
    ResponseBody(#[source] std::io::Error),
}

/// Formats an error and its chain of causes as `"error: cause: cause"`.
pub(crate) fn error_chain(error: &dyn StdError) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // ureq's own errors sometimes repeat their inner error's text; skip exact repeats.
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
