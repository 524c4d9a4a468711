//! The evented [`Engine`] against the blocking [`Deliverer`]: for each kind of receiver (a
//! normal one, a black hole, a trickle, a refused port, a 3-second answerer, a reset, TLS
//! verified and not), the same request through both gives the same attempt record, and the
//! receiver gets the same bytes.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use djinn_hook_deliver::{
    Attempt, AttemptOutcome, CustomHeader, Deliverer, DeliveryRequest, Engine, WebhookSecret,
};

use crate::server::{Reply, Server};
use crate::tls::one_shot_tls_server;
use crate::{local_deliverer, request};

/// The attempt of `request` through a fresh engine over `deliverer`'s settings.
fn through_engine(deliverer: &Deliverer, request: &DeliveryRequest) -> Attempt {
    let engine = Engine::start(deliverer.clone()).unwrap();
    let (sender, receiver) = mpsc::channel();
    engine.deliver(request, move |attempt| sender.send(attempt).unwrap());
    let attempt = receiver.recv_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(engine.in_flight(), 0);
    attempt
}

/// Both attempts of `request` (Deliverer and Engine), run at once.
fn both(request: &DeliveryRequest) -> (Attempt, Attempt) {
    let deliverer = local_deliverer();
    thread::scope(|scope| {
        let blocking = scope.spawn(|| deliverer.deliver(request));
        let evented = through_engine(&deliverer, request);
        (blocking.join().unwrap(), evented)
    })
}

/// The two records agree on everything but timings.
fn assert_same(blocking: &Attempt, evented: &Attempt) {
    assert_eq!(
        evented.outcome, blocking.outcome,
        "{evented:?}\n{blocking:?}"
    );
    assert_eq!(evented.error, blocking.error);
    assert_eq!(evented.response_status, blocking.response_status);
    assert_eq!(evented.response_headers, blocking.response_headers);
    assert_eq!(evented.response_body, blocking.response_body);
    assert_eq!(evented.response_truncated, blocking.response_truncated);
    assert_eq!(
        evented.tls_verification_skipped,
        blocking.tls_verification_skipped
    );
    assert_eq!(evented.request_headers, blocking.request_headers);
    assert_eq!(evented.url, blocking.url);
    assert_eq!(
        (evented.hook_id, evented.event_id, evented.attempt),
        (blocking.hook_id, blocking.event_id, blocking.attempt)
    );
}

#[test]
fn a_normal_receiver_gets_the_same_request_and_gives_the_same_record() {
    let server = Server::always(Reply::with_header(204, "X-Seen", "yes"));
    let req = request(&server.url());
    let (blocking, evented) = both(&req);
    assert_eq!(evented.outcome, AttemptOutcome::Success);
    assert_eq!(evented.response_status, Some(204));
    assert_same(&blocking, &evented);
    let received = server.requests();
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].method, received[1].method);
    assert_eq!(received[0].path, received[1].path);
    assert_eq!(received[0].headers, received[1].headers);
    assert_eq!(received[0].body, received[1].body);
    assert_eq!(received[0].body, req.body);
}

#[test]
fn custom_headers_arrive_after_the_signature_and_are_recorded_masked_alike() {
    const KEY: &str = "k3y-plaintext-0c4b2e";
    let server = Server::always(Reply::status(204));
    let mut req = request(&server.url());
    req.secret = Some(WebhookSecret::new("s3cret"));
    req.headers = vec![
        CustomHeader::new("X-Api-Key", KEY),
        CustomHeader::new("X-Tenant", "acme"),
    ];
    assert!(!format!("{req:?}").contains(KEY));
    let (blocking, evented) = both(&req);
    assert_eq!(evented.outcome, AttemptOutcome::Success);
    assert_same(&blocking, &evented);
    for attempt in [&blocking, &evented] {
        // The record: the delivery's own headers, then each custom one with its value masked.
        let names: Vec<&str> = attempt
            .request_headers
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        let signature = names
            .iter()
            .position(|n| *n == "X-Djinn-CI-Signature")
            .unwrap();
        assert_eq!(&names[signature + 1..], ["X-Api-Key", "X-Tenant"]);
        let masked: Vec<&str> = attempt.request_headers[signature + 1..]
            .iter()
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(masked, [CustomHeader::MASK, CustomHeader::MASK]);
        assert!(!format!("{attempt:?}").contains(KEY));
    }
    // The receiver got the values, on both paths, once each.
    let received = server.requests();
    assert_eq!(received.len(), 2);
    for r in &received {
        assert_eq!(r.header("x-api-key"), Some(KEY));
        assert_eq!(r.header("x-tenant"), Some("acme"));
        assert_eq!(
            r.headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("x-api-key"))
                .count(),
            1
        );
        assert!(r.header("x-djinn-ci-signature").is_some());
    }
}

#[test]
fn a_black_hole_times_out_alike() {
    // Bound, never accepted: the kernel completes the handshake; nothing ever answers.
    let hole = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut req = request(&format!("http://{}/hook", hole.local_addr().unwrap()));
    req.timeout = Some(Duration::from_millis(800));
    let (blocking, evented) = both(&req);
    assert_eq!(evented.outcome, AttemptOutcome::Timeout);
    assert_eq!(
        evented.error.as_deref(),
        Some("timed out: the overall timeout of 800ms expired")
    );
    assert!(evented.duration >= Duration::from_millis(750));
    assert_same(&blocking, &evented);
}

#[test]
fn a_trickled_head_is_cut_off_alike() {
    let server = Server::always(Reply::Trickle {
        at_once: Vec::new(),
        slowly: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(),
        every: Duration::from_secs(1),
    });
    let mut req = request(&server.url());
    req.timeout = Some(Duration::from_millis(1500));
    let (blocking, evented) = both(&req);
    assert_eq!(evented.outcome, AttemptOutcome::Timeout);
    assert_same(&blocking, &evented);
}

#[test]
fn a_trickled_body_is_cut_off_alike() {
    let server = Server::always(Reply::Trickle {
        at_once: b"HTTP/1.1 503 Busy\r\nContent-Length: 100\r\n\r\n".to_vec(),
        slowly: vec![b'x'; 100],
        every: Duration::from_secs(1),
    });
    let mut req = request(&server.url());
    req.timeout = Some(Duration::from_millis(1500));
    let (blocking, evented) = both(&req);
    assert_eq!(evented.response_status, Some(503));
    assert!(evented.response_body.len() < 100);
    // The bytes that arrived before the deadline may differ by one between the two runs.
    let mut evented = evented;
    evented.response_body = blocking.response_body.clone();
    assert_same(&blocking, &evented);
}

#[test]
fn a_refused_port_is_refused_alike() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let req = request(&format!("http://127.0.0.1:{port}/"));
    let (blocking, evented) = both(&req);
    assert_eq!(evented.outcome, AttemptOutcome::ConnectRefused);
    assert_same(&blocking, &evented);
}

#[test]
fn a_three_second_answerer_is_waited_for_alike() {
    let server = Server::always(Reply::After(
        Duration::from_secs(3),
        Box::new(Reply::status(200)),
    ));
    let (blocking, evented) = both(&request(&server.url()));
    assert_eq!(evented.outcome, AttemptOutcome::Success);
    assert_eq!(evented.response_body, b"ok");
    assert!(evented.duration >= Duration::from_secs(3));
    assert_same(&blocking, &evented);
}

#[test]
fn a_reset_fails_alike() {
    // Takes each connection, lets the request arrive, then closes without reading it: the
    // unread bytes make the kernel send a reset.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let resetter = thread::spawn(move || {
        for _ in 0..2 {
            let (stream, _) = listener.accept().unwrap();
            wait_for_bytes(&stream);
            drop(stream);
        }
    });
    let (blocking, evented) = both(&request(&url));
    resetter.join().unwrap();
    assert_eq!(evented.outcome, AttemptOutcome::Other);
    assert!(
        evented.error.as_deref().unwrap().contains("reset"),
        "{evented:?}"
    );
    assert_same(&blocking, &evented);
}

/// Waits (bounded) until bytes are readable on `stream`, without reading them.
fn wait_for_bytes(stream: &TcpStream) {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut byte = [0_u8; 1];
    let _ = stream.peek(&mut byte);
}

#[test]
fn a_receiver_closing_before_answering_fails_alike() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let closer = thread::spawn(move || {
        for _ in 0..2 {
            let (mut stream, _) = listener.accept().unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            // Reads the whole request (it is small), then closes cleanly.
            let mut request = vec![0_u8; 64 * 1024];
            let mut got = 0;
            while let Ok(n) = stream.read(&mut request[got..]) {
                got += n;
                if n == 0 || request[..got].contains(&b'}') {
                    break;
                }
            }
            drop(stream);
        }
    });
    let (blocking, evented) = both(&request(&url));
    closer.join().unwrap();
    assert_eq!(evented.outcome, AttemptOutcome::Other);
    assert_same(&blocking, &evented);
}

#[test]
fn redirects_and_large_bodies_are_recorded_alike() {
    let server = Server::start(|_, n| match n % 2 {
        0 => Reply::with_header(302, "Location", "http://elsewhere.example/"),
        _ => Reply::Huge(100 * 1024),
    });
    let req = request(&server.url());
    let deliverer = local_deliverer();
    // One at a time, so each path gets each reply.
    let redirect_blocking = deliverer.deliver(&req);
    let huge_blocking = deliverer.deliver(&req);
    let redirect_evented = through_engine(&deliverer, &req);
    let huge_evented = through_engine(&deliverer, &req);
    assert_eq!(
        redirect_evented.outcome,
        AttemptOutcome::RedirectNotFollowed
    );
    assert_same(&redirect_blocking, &redirect_evented);
    assert!(huge_evented.response_truncated);
    assert_eq!(huge_evented.response_body.len(), 64 * 1024);
    assert_same(&huge_blocking, &huge_evented);
}

#[test]
fn tls_is_verified_alike() {
    let attempts: Vec<Attempt> = (0..2)
        .map(|i| {
            let (port, server) = one_shot_tls_server();
            let mut req = request(&format!("https://localhost:{port}/hook"));
            req.ssl = true;
            let attempt = if i == 0 {
                local_deliverer().deliver(&req)
            } else {
                through_engine(&local_deliverer(), &req)
            };
            assert_eq!(server.join().unwrap(), None);
            attempt
        })
        .collect();
    assert_eq!(attempts[1].outcome, AttemptOutcome::TlsError);
    assert!(
        attempts[1]
            .error
            .as_deref()
            .unwrap()
            .contains("certificate")
    );
    // The event ids differ (two requests): compare the rest.
    let mut evented = attempts[1].clone();
    evented.event_id = attempts[0].event_id;
    evented.request_headers = attempts[0].request_headers.clone();
    evented.url = attempts[0].url.clone();
    assert_same(&attempts[0], &evented);
}

#[test]
fn tls_unverified_with_ssl_off_is_accepted_and_flagged_alike() {
    let attempts: Vec<(Attempt, Option<Vec<u8>>)> = (0..2)
        .map(|i| {
            let (port, server) = one_shot_tls_server();
            let mut req = request(&format!("https://localhost:{port}/hook"));
            req.ssl = false;
            let attempt = if i == 0 {
                local_deliverer().deliver(&req)
            } else {
                through_engine(&local_deliverer(), &req)
            };
            (attempt, server.join().unwrap())
        })
        .collect();
    let (evented, received) = &attempts[1];
    assert_eq!(evented.outcome, AttemptOutcome::Success, "{evented:?}");
    assert!(evented.tls_verification_skipped);
    assert_eq!(evented.response_body, b"ok");
    assert_eq!(
        received.as_deref(),
        Some(&br#"{"id":1,"status":"passed"}"#[..])
    );
    let mut evented = evented.clone();
    evented.event_id = attempts[0].0.event_id;
    evented.request_headers = attempts[0].0.request_headers.clone();
    evented.url = attempts[0].0.url.clone();
    assert_same(&attempts[0].0, &evented);
}

#[test]
fn a_blocked_address_is_refused_before_connecting_alike() {
    // The default guard: loopback refused.
    let server = Server::always(Reply::status(200));
    let deliverer = Deliverer::new(djinn_hook_deliver::DeliverConfig::default());
    let req = request(&server.url());
    let blocking = deliverer.deliver(&req);
    let evented = through_engine(&deliverer, &req);
    assert_eq!(evented.outcome, AttemptOutcome::Blocked);
    assert_same(&blocking, &evented);
    assert_eq!(server.request_count(), 0);
}
