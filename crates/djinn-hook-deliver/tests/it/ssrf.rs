//! The SSRF guard at connect time: names and literals, private networks, metadata addresses.

use std::time::Duration;

use djinn_hook_deliver::{AttemptOutcome, Deliverer};

use crate::server::{Reply, Server};
use crate::{local_config, request};

fn public_only() -> Deliverer {
    let mut config = local_config();
    config.allow_private_network = false;
    Deliverer::new(config)
}

fn assert_blocked(deliverer: &Deliverer, url: &str, addr: &str, range: &str) {
    let attempt = deliverer.deliver(&request(url));
    assert_eq!(
        attempt.outcome,
        AttemptOutcome::Blocked,
        "{url}: {attempt:?}"
    );
    assert_eq!(attempt.response_status, None);
    let error = attempt.error.unwrap();
    assert!(
        error.contains(&format!(" at {addr}: {range} address")),
        "{url}: {error}"
    );
    assert!(
        error.contains("blocked by the ssrf guard"),
        "{url}: {error}"
    );
    // Refused before connecting: no handshake, no waiting.
    assert!(attempt.duration < Duration::from_millis(500), "{url}");
}

#[test]
fn a_name_resolving_to_loopback_is_refused() {
    let server = Server::always(Reply::status(200));
    let url = format!("http://localhost:{}/hook", server.port());
    let attempt = public_only().deliver(&request(&url));
    assert_eq!(attempt.outcome, AttemptOutcome::Blocked, "{attempt:?}");
    let error = attempt.error.unwrap();
    assert!(
        error.starts_with("refused to connect to localhost at "),
        "{error}"
    );
    assert!(error.contains("loopback"), "{error}");
    assert_eq!(server.request_count(), 0);
    assert_eq!(server.connections(), 0);
}

#[test]
fn loopback_literals_are_refused() {
    let server = Server::always(Reply::status(200));
    let port = server.port();
    let deliverer = public_only();
    assert_blocked(
        &deliverer,
        &format!("http://127.0.0.1:{port}/"),
        "127.0.0.1",
        "loopback",
    );
    assert_blocked(
        &deliverer,
        &format!("http://[::ffff:127.0.0.1]:{port}/"),
        "::ffff:127.0.0.1",
        "loopback",
    );
    assert_blocked(
        &deliverer,
        &format!("http://[::1]:{port}/"),
        "::1",
        "loopback",
    );
    assert_eq!(server.connections(), 0);
}

#[test]
fn private_and_unroutable_literals_are_refused() {
    let deliverer = public_only();
    assert_blocked(
        &deliverer,
        "http://10.0.0.1/",
        "10.0.0.1",
        "private (rfc 1918)",
    );
    assert_blocked(
        &deliverer,
        "https://192.168.0.1/",
        "192.168.0.1",
        "private (rfc 1918)",
    );
    assert_blocked(
        &deliverer,
        "http://100.64.0.1/",
        "100.64.0.1",
        "shared (cgnat)",
    );
    assert_blocked(
        &deliverer,
        "http://[fd00::1]/",
        "fd00::1",
        "unique local (ula)",
    );
    assert_blocked(&deliverer, "http://0.0.0.0/", "0.0.0.0", "unspecified");
    assert_blocked(
        &deliverer,
        "http://192.0.2.1/",
        "192.0.2.1",
        "documentation",
    );
}

#[test]
fn metadata_is_refused_even_when_private_networks_are_allowed() {
    let deliverer = Deliverer::new(local_config());
    assert!(deliverer.config().allow_private_network);
    assert_blocked(
        &deliverer,
        "http://169.254.169.254/latest/meta-data/",
        "169.254.169.254",
        "cloud metadata",
    );
    assert_blocked(
        &deliverer,
        "http://[fd00:ec2::254]/latest/meta-data/",
        "fd00:ec2::254",
        "cloud metadata",
    );
    assert_blocked(
        &deliverer,
        "http://[::ffff:169.254.169.254]/",
        "::ffff:169.254.169.254",
        "cloud metadata",
    );
}

#[test]
fn loopback_is_reached_when_private_networks_are_allowed() {
    let server = Server::always(Reply::status(200));
    let url = format!("http://localhost:{}/hook", server.port());
    let attempt = Deliverer::new(local_config()).deliver(&request(&url));
    assert_eq!(attempt.outcome, AttemptOutcome::Success, "{attempt:?}");
    assert_eq!(server.request_count(), 1);
}
