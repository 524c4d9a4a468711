//! [`Destination`]: where deliveries go, as a circuit breaker sees it.

use std::fmt;
use std::sync::Arc;

use http::Uri;

/// Where deliveries go, as far as a breaker is concerned: scheme, host and port (the port
/// made explicit: `https://example.com` is `https://example.com:443`). Cheap to clone.
///
/// A breaker's destination is what the store records on the webhooks it holds
/// ([`PutOff::destination`](crate::PutOff::destination)).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Destination(Arc<str>);

impl Destination {
    /// The destination of a payload URL; `None` for a URL that is not absolute `http` or
    /// `https` with a host (its deliveries fail anyway, and trip no breaker).
    pub fn of(url: &str) -> Option<Destination> {
        let uri: Uri = url.parse().ok()?;
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return None,
        };
        let host = uri.host().filter(|h| !h.is_empty())?.to_ascii_lowercase();
        let port = uri.port_u16().unwrap_or(default_port);
        Some(Destination(format!("{scheme}://{host}:{port}").into()))
    }

    /// `scheme://host:port`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
