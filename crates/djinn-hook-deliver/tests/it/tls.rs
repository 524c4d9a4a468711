//! TLS against a tiny rustls server with a self-generated certificate: refused with `ssl` on,
//! accepted (and flagged) with `ssl` off.

use std::io::{BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use djinn_hook_deliver::AttemptOutcome;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::server::read_request;
use crate::{local_deliverer, request};

/// Serves exactly one TLS connection (one request) on 127.0.0.1 and returns whether a request
/// was received, from its join handle.
pub fn one_shot_tls_server() -> (u16, JoinHandle<Option<Vec<u8>>>) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = CertificateDer::from(certified.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = thread::spawn(move || {
        let (tcp, _) = listener.accept().ok()?;
        tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let conn = rustls::ServerConnection::new(Arc::new(config)).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        // A failed handshake surfaces here, as `None`.
        let request = read_request(&mut BufReader::new(&mut tls))?;
        tls.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            .ok()?;
        tls.conn.send_close_notify();
        let _ = tls.flush();
        Some(request.body)
    });
    (port, handle)
}

#[test]
fn self_signed_certificate_is_refused_with_ssl_on() {
    let (port, server) = one_shot_tls_server();
    let mut req = request(&format!("https://localhost:{port}/hook"));
    req.ssl = true;
    let attempt = local_deliverer().deliver(&req);
    assert_eq!(attempt.outcome, AttemptOutcome::TlsError, "{attempt:?}");
    assert!(!attempt.tls_verification_skipped);
    assert_eq!(attempt.response_status, None);
    let error = attempt.error.unwrap();
    assert!(error.starts_with("tls error"), "{error}");
    assert!(error.contains("certificate"), "{error}");
    assert_eq!(server.join().unwrap(), None);
}

#[test]
fn self_signed_certificate_is_accepted_and_flagged_with_ssl_off() {
    let (port, server) = one_shot_tls_server();
    let mut req = request(&format!("https://localhost:{port}/hook"));
    req.ssl = false;
    let attempt = local_deliverer().deliver(&req);
    assert_eq!(attempt.outcome, AttemptOutcome::Success, "{attempt:?}");
    assert!(attempt.tls_verification_skipped);
    assert_eq!(attempt.response_body, b"ok");
    assert_eq!(server.join().unwrap(), Some(req.body));
}

#[test]
fn ssl_off_on_plain_http_skips_nothing() {
    let server = crate::server::Server::always(crate::server::Reply::status(200));
    let mut req = request(&server.url());
    req.ssl = false;
    let attempt = local_deliverer().deliver(&req);
    assert_eq!(attempt.outcome, AttemptOutcome::Success);
    assert!(!attempt.tls_verification_skipped);
}
