//! Webhook loops: a webhook pointed at this server's own event intake re-ingests each of its
//! deliveries (a delivery carries a valid event header and body), and two such webhooks grow
//! without end. Refused at both ends unless the operator relays on purpose
//! (`serve --accept-relayed-deliveries`): at intake, a request that is itself a delivery (it
//! carries `X-Djinn-CI-Delivery`); at create and update, a payload URL naming this server's
//! own address and an events path.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use djinn_hook_sign::headers::DELIVERY as DELIVERY_HEADER;

use url::{Host, Url};

use crate::error::ApiError;

/// Refuses an intake request that is a webhook delivery.
pub(crate) fn refuse_delivery(headers: &HeaderMap) -> Result<(), ApiError> {
    if headers.contains_key(DELIVERY_HEADER) {
        return Err(ApiError::invalid(
            DELIVERY_HEADER,
            "this request is itself a webhook delivery; storing it as an event would loop \
             (serve --accept-relayed-deliveries relays on purpose)",
        ));
    }
    Ok(())
}

/// Why a payload URL naming this server's own intake is refused (the `payload_url` field's
/// message, the same in the API and the UI).
pub(crate) const OWN_INTAKE: &str = "points at this server's own event intake: every delivery \
    would come back as a new event (serve --accept-relayed-deliveries relays on purpose)";

/// Refuses a payload URL that names this server's intake: an events path (`/-/events`) on
/// the address it is bound to (`local`, or a loopback name for it) or its public `base` URL.
pub(crate) fn refuse_own_intake(
    payload_url: &str,
    local: SocketAddr,
    base: &str,
) -> Result<(), ApiError> {
    if is_own_intake(payload_url, local, base) {
        return Err(ApiError::invalid("payload_url", OWN_INTAKE));
    }
    Ok(())
}

/// Whether `payload_url` names this server's intake (see [`refuse_own_intake`]).
///
/// The URL is read as the WHATWG parser reads it, the forms a resolver or a proxy on the way
/// accepts too: IPv4 shorthands (`127.1`, `0x7f.1`, `2130706433`, which ureq's resolver sends
/// to 127.0.0.1), IPv4-mapped IPv6 (`[::ffff:127.0.0.1]`), a host's trailing dot, and the dot
/// segments of the path (`/-/events/.`, `/x/../-/events`, `%2e`). A name is not looked up:
/// one that only resolves here is caught at intake, which refuses a request that is itself a
/// delivery.
pub(crate) fn is_own_intake(payload_url: &str, local: SocketAddr, base: &str) -> bool {
    let Ok(url) = Url::parse(payload_url.trim()) else {
        // Not a URL: the store's validation says what is wrong with it.
        return false;
    };
    let events = url.path().trim_end_matches('/').ends_with("/-/events");
    events
        && Machine::of(&url).is_some_and(|target| {
            target.is_bound_address(local) || Machine::of_base(base).as_ref() == Some(&target)
        })
}

/// Where a URL points: its host, normalised, and its port (the scheme's by default).
#[derive(Debug, PartialEq, Eq)]
struct Machine {
    host: Host<String>,
    port: u16,
}

impl Machine {
    /// The host and port of `url`; IPv4-mapped IPv6 as its IPv4 address, a domain without its
    /// trailing dot (the parser has already lower-cased it).
    fn of(url: &Url) -> Option<Machine> {
        let host = match url.host()? {
            Host::Ipv6(v6) => v6.to_ipv4_mapped().map_or(Host::Ipv6(v6), Host::Ipv4),
            Host::Ipv4(v4) => Host::Ipv4(v4),
            Host::Domain(name) => Host::Domain(name.trim_end_matches('.').to_owned()),
        };
        Some(Machine {
            host,
            port: url.port_or_known_default()?,
        })
    }

    /// Where the public base URL points, if it parses.
    fn of_base(base: &str) -> Option<Machine> {
        Url::parse(base).ok().as_ref().and_then(Machine::of)
    }

    /// The host as an address, if it is one.
    fn ip(&self) -> Option<IpAddr> {
        match self.host {
            Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
            Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
            Host::Domain(_) => None,
        }
    }

    /// Whether this is the address the server is bound to (`local`): its port and any host
    /// when bound to all addresses; its address; or, bound to loopback, any name or address of
    /// this machine (`localhost`, `*.localhost`, loopback, unspecified).
    fn is_bound_address(&self, local: SocketAddr) -> bool {
        let this_machine = match &self.host {
            Host::Domain(name) => name == "localhost" || name.ends_with(".localhost"),
            _ => self
                .ip()
                .is_some_and(|ip| ip.is_loopback() || ip.is_unspecified()),
        };
        self.port == local.port()
            && (local.ip().is_unspecified()
                || self.ip() == Some(local.ip())
                || (local.ip().is_loopback() && this_machine))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_intake_urls_are_refused_and_others_are_not() {
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let base = "https://hooks.example.com";
        for own in [
            "http://127.0.0.1:8080/n/a/b/-/events",
            "http://localhost:8080/n/a/b/-/events/",
            "http://[::1]:8080/n/a/b/c/-/events",
            "https://hooks.example.com/n/a/b/-/events",
            "https://HOOKS.example.com:443/n/a/b/-/events",
            "https://hooks.example.com./n/a/b/-/events",
            // The shorthands a resolver, and the parser, read as 127.0.0.1.
            "http://127.1:8080/n/a/b/-/events",
            "http://0x7f.1:8080/n/a/b/-/events",
            "http://2130706433:8080/n/a/b/-/events",
            "http://[::ffff:127.0.0.1]:8080/n/a/b/-/events",
            "http://localhost.:8080/n/a/b/-/events",
            "http://LOCALHOST:8080/n/a/b/-/events",
            "http://app.localhost:8080/n/a/b/-/events",
            "http://0.0.0.0:8080/n/a/b/-/events",
            // Dot segments, as a proxy on the way would resolve them.
            "http://127.0.0.1:8080/n/a/b/-/events/.",
            "http://127.0.0.1:8080/n/a/b/-/x/../events",
            "http://127.0.0.1:8080/n/a/b/-/events/%2e",
            "http://127.0.0.1:8080/n/a/b/-/events?x=1",
        ] {
            assert!(refuse_own_intake(own, local, base).is_err(), "{own}");
        }
        for other in [
            "http://127.0.0.1:9090/n/a/b/-/events",
            "http://127.0.0.1:8080/hook",
            "https://other.example.com/n/a/b/-/events",
            "http://hooks.example.com/n/a/b/-/events",
            "http://127.1:9090/n/a/b/-/events",
            "http://127.0.0.1:8080/n/a/b/-/events/more",
            "http://127.0.0.1:8080/n/a/b/-/events/..",
            "not a url",
        ] {
            assert!(refuse_own_intake(other, local, base).is_ok(), "{other}");
        }
        let everywhere: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert!(
            refuse_own_intake("http://10.0.0.5:8080/n/a/b/-/events", everywhere, base).is_err()
        );
    }

    #[test]
    fn a_delivery_is_refused_at_intake() {
        let mut headers = HeaderMap::new();
        assert!(refuse_delivery(&headers).is_ok());
        headers.insert(DELIVERY_HEADER, "e6d8".parse().unwrap());
        let error = refuse_delivery(&headers).unwrap_err().to_string();
        assert!(
            error.starts_with(&format!("{DELIVERY_HEADER}: this request is itself")),
            "{error}"
        );
    }
}
