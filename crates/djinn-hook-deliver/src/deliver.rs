//! One signed POST and its record: [`DeliverConfig`] and [`Deliverer`].

use std::borrow::Cow;
use std::fmt;
use std::io::{ErrorKind, Read};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use djinn_hook_outbox::{Attempt, AttemptOutcome, CustomHeader, DeliveryRequest};
use djinn_hook_payload::{redact_userinfo, scrub_userinfo};
use djinn_hook_sign::headers::{
    DELIVERY as DELIVERY_HEADER, EVENT as EVENT_HEADER, HOOK_ID as HOOK_ID_HEADER,
    SIGNATURE as SIGNATURE_HEADER, TRACEPARENT as TRACEPARENT_HEADER,
    WEBHOOK_ID as WEBHOOK_ID_HEADER, WEBHOOK_SIGNATURE as WEBHOOK_SIGNATURE_HEADER,
    WEBHOOK_TIMESTAMP as WEBHOOK_TIMESTAMP_HEADER,
};
use djinn_hook_sign::{Secret, StandardSecret, sign, sign_standard, sign_standard_all};
use time::OffsetDateTime;
use ureq::Agent;
use ureq::http::{HeaderMap, Uri};
use ureq::tls::TlsConfig;
use ureq::unversioned::resolver::Resolver as _;
use ureq::unversioned::transport::NextTimeout;
use ureq::unversioned::transport::time::Duration as TimeDuration;
use ureq::unversioned::transport::{Connector as _, DefaultConnector};

use crate::coalesce::CoalescingConnector;
use crate::error::{DeliverError, error_chain};
use crate::ssrf::{GuardedResolver, SsrfGuard};

/// `User-Agent` of the original Djinn CI.
pub const DEFAULT_USER_AGENT: &str = "Djinn-CI-Hook";

/// How a [`Deliverer`] connects. [`DeliverConfig::default`] gives the defaults documented on
/// each field; change one by setting it (`config.timeout = Duration::from_secs(5)`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeliverConfig {
    /// Budget for resolving the host and opening the connection (TCP and TLS). Default 5 s:
    /// short, so a receiver that does not answer SYNs is given up on quickly; it still allows
    /// two SYN retransmissions (at 1 s and 3 s).
    pub connect_timeout: Duration,
    /// Budget for the whole attempt, from resolving to the last byte of the response body
    /// kept, unless the request sets its own ([`DeliveryRequest::timeout`]). A receiver
    /// trickling its response is cut off at this point. Default 15 s: the low end of what
    /// Standard Webhooks advises (15-30 s), above GitHub's 10 s so receivers built for it fit;
    /// the original waited a minute, which let one hanging receiver hold a thread four times
    /// as long.
    pub timeout: Duration,
    /// Allow loopback, RFC 1918, CGNAT, link-local and ULA addresses (local installs, tests).
    /// Default off. Cloud metadata addresses stay refused either way.
    pub allow_private_network: bool,
    /// Cloud metadata addresses (see [`METADATA_ADDRESSES`](crate::METADATA_ADDRESSES)) that are
    /// nevertheless allowed. Default empty.
    pub allowed_metadata: Vec<IpAddr>,
    /// `User-Agent` header. Default `Djinn-CI-Hook`, as the original.
    pub user_agent: String,
    /// Response body bytes kept in the attempt record. Default 64 KiB.
    pub max_response_body: usize,
    /// Idle keep-alive connections kept in total. Default 64.
    pub max_idle_connections: usize,
    /// Idle keep-alive connections kept per host (give it the worker's concurrency). Default 16.
    pub max_idle_connections_per_host: usize,
}

impl Default for DeliverConfig {
    fn default() -> DeliverConfig {
        DeliverConfig {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(15),
            allow_private_network: false,
            allowed_metadata: Vec::new(),
            user_agent: DEFAULT_USER_AGENT.to_owned(),
            max_response_body: 64 * 1024,
            max_idle_connections: 64,
            max_idle_connections_per_host: 16,
        }
    }
}

/// Delivers [`DeliveryRequest`]s: one shared keep-alive connection pool, the SSRF guard in name
/// resolution, no redirects. Cheap to clone and share across threads.
#[derive(Clone)]
pub struct Deliverer {
    inner: Arc<Inner>,
}

struct Inner {
    /// Verifies certificates against the webpki roots.
    verified: Agent,
    /// For `https` URLs of webhooks with `ssl` off: no certificate verification.
    unverified: Agent,
    /// The agents' resolver, for the evented engine (which resolves before it connects).
    resolver: GuardedResolver,
    config: DeliverConfig,
}

impl fmt::Debug for Deliverer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deliverer")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Deliverer {
    /// A deliverer with its connection pools.
    pub fn new(config: DeliverConfig) -> Deliverer {
        let guard = Arc::new(SsrfGuard::new(
            config.allow_private_network,
            config.allowed_metadata.clone(),
        ));
        let verified = build_agent(&config, &guard, false);
        let unverified = build_agent(&config, &guard, true);
        Deliverer {
            inner: Arc::new(Inner {
                verified,
                unverified,
                resolver: GuardedResolver::new(guard),
                config,
            }),
        }
    }

    /// The configuration this deliverer was built with.
    pub fn config(&self) -> &DeliverConfig {
        &self.inner.config
    }

    /// Makes one attempt and records it. Never panics on a bad URL, secret or receiver: every
    /// failure is an [`Attempt`] with an `error` and a failed [`AttemptOutcome`].
    pub fn deliver(&self, request: &DeliveryRequest) -> Attempt {
        let started = Instant::now();
        let mut attempt = Attempt::new(request, OffsetDateTime::now_utc());
        let result = self.attempt(request, &mut attempt);
        finish(attempt, started, result)
    }

    fn attempt(
        &self,
        request: &DeliveryRequest,
        attempt: &mut Attempt,
    ) -> Result<(), (AttemptOutcome, DeliverError)> {
        let uri = self.prepare(request, attempt)?;
        let agent = if attempt.tls_verification_skipped {
            &self.inner.unverified
        } else {
            &self.inner.verified
        };

        let timeout = self.timeout_of(request);
        let mut post = agent.post(uri);
        if request.timeout.is_some() {
            post = post.config().timeout_global(Some(timeout)).build();
        }
        for (name, value) in wire_headers(attempt, request) {
            post = post.header(name, value);
        }
        let response = post
            .send(&request.body[..])
            .map_err(|error| self.classify(error, timeout))?;

        record_head(attempt, response.status().as_u16(), response.headers());

        let cap = self.inner.config.max_response_body;
        // Empty until read: most receivers answer with no or a short body, and read_to_end
        // probes before it allocates.
        let mut body = Vec::new();
        let read = response
            .into_body()
            .into_reader()
            .take(cap as u64 + 1)
            .read_to_end(&mut body)
            .map(drop);
        record_body(attempt, body, cap, read)
    }

    /// The steps before connecting, shared with the evented engine: the request headers
    /// (signed), the URL checked, whether TLS verification is skipped. The URL to send to.
    pub(crate) fn prepare(
        &self,
        request: &DeliveryRequest,
        attempt: &mut Attempt,
    ) -> Result<Uri, (AttemptOutcome, DeliverError)> {
        let other = |error| (AttemptOutcome::Other, error);
        attempt.request_headers = self
            .headers(request, &request.body, attempt.created_at.unix_timestamp())
            .map_err(other)?;
        let uri = parse_url(&attempt.url).map_err(other)?;
        let https = uri.scheme_str() == Some("https");
        attempt.tls_verification_skipped = https && !request.ssl;
        Ok(uri)
    }

    /// The overall budget of `request`'s attempt.
    pub(crate) fn timeout_of(&self, request: &DeliveryRequest) -> Duration {
        request.timeout.unwrap_or(self.inner.config.timeout)
    }

    /// Resolves `uri`'s host as the agents do: the SSRF guard applied to every address (IP
    /// literals without a lookup), within the connect timeout. Blocks for a name's lookup.
    pub(crate) fn resolve(
        &self,
        uri: &Uri,
        overall: Duration,
    ) -> Result<Vec<SocketAddr>, (AttemptOutcome, DeliverError)> {
        let config = &self.inner.config;
        let timeout = NextTimeout {
            after: TimeDuration::Exact(config.connect_timeout.min(overall)),
            reason: if config.connect_timeout <= overall {
                ureq::Timeout::Resolve
            } else {
                ureq::Timeout::Global
            },
            per_read: None,
            per_write: None,
        };
        self.inner
            .resolver
            .resolve(uri, self.inner.verified.config(), timeout)
            .map(|addrs| addrs.iter().copied().collect())
            .map_err(|error| self.classify(error, overall))
    }

    /// The request headers as recorded, in the order sent: the delivery's own, then the
    /// webhook's custom headers with their values masked ([`wire_headers`] sends the values).
    fn headers(
        &self,
        request: &DeliveryRequest,
        body: &[u8],
        timestamp: i64,
    ) -> Result<Vec<(String, String)>, DeliverError> {
        let mut headers = self.own_headers(request, body, timestamp)?;
        headers.extend(
            request
                .headers
                .iter()
                .map(|h| (h.name.clone(), CustomHeader::MASK.to_owned())),
        );
        Ok(headers)
    }

    /// The headers the delivery itself sets (signed).
    fn own_headers(
        &self,
        request: &DeliveryRequest,
        body: &[u8],
        timestamp: i64,
    ) -> Result<Vec<(String, String)>, DeliverError> {
        let mut headers = Vec::with_capacity(10 + request.headers.len());
        headers.extend([
            ("Accept".to_owned(), "*/*".to_owned()),
            (
                "Content-Type".to_owned(),
                "application/json; charset=utf-8".to_owned(),
            ),
            (
                "User-Agent".to_owned(),
                self.inner.config.user_agent.clone(),
            ),
            (EVENT_HEADER.to_owned(), request.event.name().to_owned()),
            (HOOK_ID_HEADER.to_owned(), request.hook_id.to_string()),
            (DELIVERY_HEADER.to_owned(), request.event_id.to_string()),
        ]);
        if let Some(intake) = request.traceparent {
            // The attempt's own span id, so the receiver's span is the attempt's child; the
            // record keeps the header, which is how the attempt's span is named when exported.
            let span_id = fastrand::u64(1..).to_be_bytes();
            let sent = intake.child(span_id).to_string();
            headers.push((TRACEPARENT_HEADER.to_owned(), sent));
        }
        let Some(secret) = &request.secret else {
            return Ok(headers);
        };
        let signature = sign(&Secret::from(secret.expose()), body);
        headers.push((SIGNATURE_HEADER.to_owned(), signature.to_header_value()));
        if request.standard_webhooks {
            let id = request.event_id.to_string();
            let signature = match &request.previous_secret {
                None => sign_standard(&standard_secret(secret.expose())?, &id, timestamp, body),
                // During a rotation, the new secret's signature first, then the old one's: a
                // receiver holding either secret finds its own (the spec allows several).
                Some(previous) => sign_standard_all(
                    &[
                        standard_secret(secret.expose())?,
                        standard_secret(previous.expose())?,
                    ],
                    &id,
                    timestamp,
                    body,
                ),
            };
            headers.push((WEBHOOK_ID_HEADER.to_owned(), id));
            headers.push((WEBHOOK_TIMESTAMP_HEADER.to_owned(), timestamp.to_string()));
            headers.push((WEBHOOK_SIGNATURE_HEADER.to_owned(), signature));
        }
        Ok(headers)
    }
}

/// The headers to put on the wire, in order: the attempt's recorded ones, with the masked
/// values of the custom headers (the last ones, from [`Deliverer::prepare`]) replaced by the
/// real ones. The real values never enter the [`Attempt`], so the log never holds them.
pub(crate) fn wire_headers<'a>(
    attempt: &'a Attempt,
    request: &'a DeliveryRequest,
) -> Vec<(&'a str, &'a str)> {
    let own = attempt
        .request_headers
        .len()
        .saturating_sub(request.headers.len());
    attempt.request_headers[..own]
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .chain(
            request
                .headers
                .iter()
                .map(|h| (h.name.as_str(), h.expose())),
        )
        .collect()
}

/// Ends an attempt: its error (if any) recorded with the URL's credentials scrubbed, the URL
/// redacted, its duration.
pub(crate) fn finish(
    mut attempt: Attempt,
    started: Instant,
    result: Result<(), (AttemptOutcome, DeliverError)>,
) -> Attempt {
    if let Err((outcome, error)) = result {
        attempt.outcome = outcome;
        // ureq's errors may quote the URL whole.
        attempt.error = Some(scrub_userinfo(error_chain(&error), &attempt.url));
    }
    if let Cow::Owned(shown) = redact_userinfo(&attempt.url) {
        attempt.url = shown;
    }
    attempt.duration = started.elapsed();
    attempt
}

/// Records a response's status and headers, and the outcome its status means.
pub(crate) fn record_head(attempt: &mut Attempt, status: u16, headers: &HeaderMap) {
    attempt.response_status = Some(status);
    attempt.response_headers = headers
        .iter()
        .map(|(name, value)| {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            (name.as_str().to_owned(), value)
        })
        .collect();
    attempt.outcome = match status {
        200..=299 => AttemptOutcome::Success,
        300..=399 => AttemptOutcome::RedirectNotFollowed,
        _ => AttemptOutcome::HttpStatus,
    };
}

/// Records the response body read (up to `cap + 1` bytes: more is cut to `cap` and flagged),
/// and what ended the attempt: the read's failure, a redirect not followed, or nothing.
pub(crate) fn record_body(
    attempt: &mut Attempt,
    mut body: Vec<u8>,
    cap: usize,
    read: std::io::Result<()>,
) -> Result<(), (AttemptOutcome, DeliverError)> {
    if body.len() > cap {
        body.truncate(cap);
        attempt.response_truncated = true;
    }
    attempt.response_body = body;
    if let Err(error) = read {
        return Err((attempt.outcome, DeliverError::ResponseBody(error)));
    }
    if attempt.outcome == AttemptOutcome::RedirectNotFollowed {
        let status = attempt.response_status.unwrap_or_default();
        let location = attempt.response_header("location").map(str::to_owned);
        return Err((attempt.outcome, DeliverError::Redirect { status, location }));
    }
    Ok(())
}

/// The Standard Webhooks key of a webhook secret, derived as receivers derive it.
fn standard_secret(secret: &str) -> Result<StandardSecret, DeliverError> {
    StandardSecret::for_webhook_secret(secret)
        .map_err(|error| DeliverError::InvalidStandardSecret(Box::new(error)))
}

fn parse_url(url: &str) -> Result<Uri, DeliverError> {
    let invalid = |reason| DeliverError::InvalidUrl {
        url: redact_userinfo(url).into_owned(),
        reason,
    };
    let uri: Uri = url.parse().map_err(|_| invalid("not a url"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(_) => return Err(invalid("scheme must be http or https")),
        None => return Err(invalid("not an absolute url")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(invalid("no host"));
    }
    Ok(uri)
}

fn build_agent(config: &DeliverConfig, guard: &Arc<SsrfGuard>, skip_verification: bool) -> Agent {
    let agent_config = Agent::config_builder()
        // Any status is a response to record, not an error.
        .http_status_as_error(false)
        // A redirect could carry a signed payload elsewhere: never follow one.
        .max_redirects(0)
        // A proxy (e.g. from HTTP_PROXY) would resolve names itself and bypass the guard.
        .proxy(None)
        .user_agent(&config.user_agent)
        .accept("*/*")
        // Send no Accept-Encoding: the headers are exactly the original's.
        .accept_encoding("")
        .timeout_global(Some(config.timeout))
        .timeout_resolve(Some(config.connect_timeout))
        .timeout_connect(Some(config.connect_timeout))
        .max_idle_connections(config.max_idle_connections)
        .max_idle_connections_per_host(config.max_idle_connections_per_host)
        // Each pooled connection holds these twice (ureq's transport and `Coalescing`): 64 KiB
        // instead of ureq's 128 KiB keeps its memory where it was. The input buffer still holds
        // the largest response head ureq accepts (64 KiB); a longer body streams through.
        .input_buffer_size(64 * 1024)
        .output_buffer_size(64 * 1024)
        .tls_config(
            TlsConfig::builder()
                .disable_verification(skip_verification)
                .build(),
        )
        .build();
    Agent::with_parts(
        agent_config,
        // Head and body in one write (see `coalesce`).
        DefaultConnector::new().chain(CoalescingConnector),
        GuardedResolver::new(Arc::clone(guard)),
    )
}

impl Deliverer {
    /// Maps a ureq error to the attempt's outcome and error (the evented engine's failures
    /// are put as the ureq errors the same failures give, and mapped here too).
    pub(crate) fn classify(
        &self,
        error: ureq::Error,
        overall: Duration,
    ) -> (AttemptOutcome, DeliverError) {
        let config = &self.inner.config;
        let timeout = |phase| {
            let limit = match phase {
                "connect" => config.connect_timeout,
                _ => overall,
            };
            (
                AttemptOutcome::Timeout,
                DeliverError::Timeout { phase, limit },
            )
        };
        match error {
            ureq::Error::Other(inner) => match inner.downcast::<DeliverError>() {
                Ok(blocked) => (AttemptOutcome::Blocked, *blocked),
                Err(inner) => (
                    AttemptOutcome::Other,
                    DeliverError::Transport(ureq::Error::Other(inner)),
                ),
            },
            ureq::Error::Timeout(ureq::Timeout::Connect | ureq::Timeout::Resolve) => {
                timeout("connect")
            }
            ureq::Error::Timeout(_) => timeout("overall"),
            ureq::Error::Io(ref io) => match io.kind() {
                ErrorKind::ConnectionRefused => (
                    AttemptOutcome::ConnectRefused,
                    DeliverError::ConnectRefused(error),
                ),
                ErrorKind::TimedOut | ErrorKind::WouldBlock => timeout("overall"),
                _ if io
                    .get_ref()
                    .is_some_and(|inner| inner.is::<rustls::Error>()) =>
                {
                    (AttemptOutcome::TlsError, DeliverError::Tls(error))
                }
                _ => (AttemptOutcome::Other, DeliverError::Transport(error)),
            },
            ureq::Error::Tls(_)
            | ureq::Error::Rustls(_)
            | ureq::Error::Pem(_)
            | ureq::Error::TlsRequired => (AttemptOutcome::TlsError, DeliverError::Tls(error)),
            _ => (AttemptOutcome::Other, DeliverError::Transport(error)),
        }
    }
}
