//! The receiver as a library: signatures checked, answers 204/401/405, a wait for the next
//! request that a `Shutdown` ends, and a dropped receiver closes the connections it had open.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use djinn_hook_deliver::Shutdown;
use djinn_hook_server::Receiver;
use djinn_hook_sign::Secret;
use djinn_hook_sign::headers;

fn post(stream: &mut TcpStream, signature: &str, body: &str) -> String {
    write!(
        stream,
        "POST /hook HTTP/1.1\r\nHost: 127.0.0.1\r\n{}: cron\r\n\
         {}: {signature}\r\nContent-Length: {}\r\n\r\n{body}",
        headers::EVENT,
        headers::SIGNATURE,
        body.len()
    )
    .unwrap();
    let mut buf = [0u8; 1024];
    let n = stream.read(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// A receiver checking with `secret`, and a connection to it.
fn connected(secret: &Secret) -> (Receiver, TcpStream) {
    let receiver = Receiver::start("127.0.0.1:0", secret.clone()).unwrap();
    let stream = TcpStream::connect(receiver.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    (receiver, stream)
}

#[test]
fn next_until_hands_a_request_over_and_returns_none_once_stopped() {
    let secret = Secret::from("s3cret");
    let (receiver, mut stream) = connected(&secret);
    let stop = Shutdown::new();
    let body = r#"{"id": 1}"#;
    let good = djinn_hook_sign::sign(&secret, body.as_bytes()).to_string();
    assert_eq!(post(&mut stream, &good, body), "HTTP/1.1 204 No Content");
    let got = receiver
        .next_until(&stop)
        .expect("the request, before any stop");
    assert_eq!(got.body, body.as_bytes());

    // A waiter with nothing to receive is woken by the stop itself (it waits on nothing
    // else: without the wake this test would hang, not pass late).
    let waiting = std::thread::spawn({
        let stop = stop.clone();
        move || (receiver.next_until(&stop).is_none(), receiver)
    });
    stop.stop();
    let (ended, receiver) = waiting.join().unwrap();
    assert!(ended, "no request came, so the stop ended the wait");
    // Once stopped, it returns at once, whatever has arrived.
    assert_eq!(post(&mut stream, &good, body), "HTTP/1.1 204 No Content");
    assert!(receiver.next_until(&stop).is_none());
    assert!(
        receiver.next_timeout(Duration::from_secs(10)).is_some(),
        "still there to take"
    );
}

#[test]
fn checks_signatures_and_hands_each_post_over() {
    let secret = Secret::from("s3cret");
    let (receiver, mut stream) = connected(&secret);
    let body = r#"{"id": 1}"#;
    let good = djinn_hook_sign::sign(&secret, body.as_bytes()).to_string();
    assert_eq!(post(&mut stream, &good, body), "HTTP/1.1 204 No Content");
    let got = receiver.next_timeout(Duration::from_secs(10)).unwrap();
    assert!(got.signature_valid);
    assert_eq!(got.event(), Some("cron"));
    assert_eq!(got.body, body.as_bytes());
    assert_eq!(got.url, "/hook");

    // Same connection (kept alive), a wrong signature.
    assert_eq!(
        post(&mut stream, "sha256=00", body),
        "HTTP/1.1 401 Unauthorized"
    );
    assert!(
        !receiver
            .next_timeout(Duration::from_secs(10))
            .unwrap()
            .signature_valid
    );

    let mut get = TcpStream::connect(receiver.addr()).unwrap();
    get.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    get.write_all(b"GET /hook HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 256];
    let n = get.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 405"));
    assert!(receiver.drain().is_empty(), "a GET is not handed over");

    // Dropping the receiver closes the kept-alive connection.
    drop(receiver);
    let mut rest = Vec::new();
    let closed = stream.read_to_end(&mut rest);
    assert!(
        closed.is_ok() || closed.is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "the connection was closed"
    );
}

/// A receiver given a `Verifier` (as `listen` and the demo are) checks the Standard Webhooks
/// headers a delivery carries too: a valid Djinn signature does not carry a forged Standard one.
#[test]
fn a_verifier_checks_the_standard_headers_as_well() {
    use djinn_hook_sign::{StandardSecret, Verifier, sign_standard};

    let receiver = Receiver::start("127.0.0.1:0", Verifier::new("s3cret").unwrap()).unwrap();
    let body = r#"{"id": 1}"#;
    let djinn = djinn_hook_sign::sign(&Secret::from("s3cret"), body.as_bytes()).to_string();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let key = StandardSecret::for_webhook_secret("s3cret").unwrap();
    let good = sign_standard(&key, "msg_1", now, body.as_bytes());
    let forged = sign_standard(
        &StandardSecret::for_webhook_secret("not it").unwrap(),
        "msg_1",
        now,
        body.as_bytes(),
    );
    for (standard, expected) in [
        (good, "HTTP/1.1 204 No Content"),
        (forged, "HTTP/1.1 401 Unauthorized"),
    ] {
        let mut stream = TcpStream::connect(receiver.addr()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        write!(
            stream,
            "POST /hook HTTP/1.1\r\nHost: 127.0.0.1\r\n{}: {djinn}\r\n{}: msg_1\r\n{}: {now}\r\n\
             {}: {standard}\r\nContent-Length: {}\r\n\r\n{body}",
            headers::SIGNATURE,
            headers::WEBHOOK_ID,
            headers::WEBHOOK_TIMESTAMP,
            headers::WEBHOOK_SIGNATURE,
            body.len()
        )
        .unwrap();
        let mut buf = [0u8; 1024];
        let n = stream.read(&mut buf).unwrap();
        let status = String::from_utf8_lossy(&buf[..n])
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned();
        assert_eq!(status, expected);
        let got = receiver.next_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(got.signature_valid, expected.contains("204"));
    }
}
