//! Webhook loops: a webhook pointed at this server's own event intake re-ingests each of its
//! deliveries (a delivery carries a valid event header and body), and two such webhooks grow
//! without end. Refused at both ends unless the operator relays on purpose
//! (`serve --accept-relayed-deliveries`): at intake, a request that is itself a delivery (it
//! carries `X-Djinn-CI-Delivery`); at create and update, a payload URL naming this server's
//! own address and an events path.

use std::net::SocketAddr;

use axum::http::{HeaderMap, Uri};
use djinn_hook_sign::headers::DELIVERY as DELIVERY_HEADER;

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
pub(crate) fn is_own_intake(payload_url: &str, local: SocketAddr, base: &str) -> bool {
    let Ok(url) = payload_url.trim().parse::<Uri>() else {
        // Not a URL: the store's validation says what is wrong with it.
        return false;
    };
    let Some(authority) = url.authority() else {
        return false;
    };
    let events = url.path().trim_end_matches('/').ends_with("/-/events");
    events
        && is_own(
            authority.host(),
            url.port_u16(),
            url.scheme_str(),
            local,
            base,
        )
}

/// Whether `host:port` is this server: its bound address (a loopback name or address when it
/// is bound to one, any host when bound to all addresses) or its public base URL's authority.
fn is_own(
    host: &str,
    port: Option<u16>,
    scheme: Option<&str>,
    local: SocketAddr,
    base: &str,
) -> bool {
    let port = port.unwrap_or(if scheme == Some("https") { 443 } else { 80 });
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback_name = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    let bound_here = port == local.port()
        && (local.ip().is_unspecified()
            || host.parse::<std::net::IpAddr>() == Ok(local.ip())
            || (local.ip().is_loopback() && loopback_name));
    let public = base
        .parse::<Uri>()
        .ok()
        .and_then(|b| b.authority().cloned())
        .is_some_and(|b| {
            let base_port =
                b.port_u16()
                    .unwrap_or(if base.starts_with("https") { 443 } else { 80 });
            b.host().eq_ignore_ascii_case(host) && base_port == port
        });
    bound_here || public
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
        ] {
            assert!(refuse_own_intake(own, local, base).is_err(), "{own}");
        }
        for other in [
            "http://127.0.0.1:9090/n/a/b/-/events",
            "http://127.0.0.1:8080/hook",
            "https://other.example.com/n/a/b/-/events",
            "http://hooks.example.com/n/a/b/-/events",
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
