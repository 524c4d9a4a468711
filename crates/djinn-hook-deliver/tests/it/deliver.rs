//! One delivery against a real server: headers, signatures, statuses, bodies, timeouts.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use djinn_hook_deliver::{AttemptOutcome, Deliverer};
use djinn_hook_sign::headers;
use djinn_hook_sign::{
    DEFAULT_TOLERANCE, Secret, StandardHeaders, StandardSecret, verify, verify_standard,
};

use crate::server::{Reply, Server};
use crate::{local_config, local_deliverer, request};

/// Received headers minus the two ureq adds, names lower-cased, in order.
fn sent_headers(received: &crate::server::Received) -> Vec<(String, String)> {
    received
        .headers
        .iter()
        .filter(|(name, _)| !name.eq_ignore_ascii_case("host"))
        .filter(|(name, _)| !name.eq_ignore_ascii_case("content-length"))
        .map(|(name, value)| (name.to_ascii_lowercase(), value.clone()))
        .collect()
}

#[test]
fn headers_and_body_exactly_as_specified_and_signature_verifies() {
    let server = Server::always(Reply::status(200));
    let mut req = request(&server.url());
    let secret = "It's a Secret to Everybody";
    req.secret = Some(secret.into());
    let attempt = local_deliverer().deliver(&req);

    assert_eq!(attempt.outcome, AttemptOutcome::Success, "{attempt:?}");
    assert_eq!(attempt.response_status, Some(200));
    assert_eq!(attempt.response_body, b"ok");
    assert!(!attempt.response_truncated);
    assert_eq!(attempt.error, None);
    assert!(!attempt.tls_verification_skipped);

    let received = server.requests();
    assert_eq!(received.len(), 1);
    let got = &received[0];
    assert_eq!(got.method, "POST");
    assert_eq!(got.path, "/hook");
    assert_eq!(got.body, req.body);
    assert_eq!(
        got.header("host"),
        Some(&*format!("127.0.0.1:{}", server.port()))
    );
    assert_eq!(
        got.header("content-length"),
        Some(&*req.body.len().to_string())
    );
    let signature = got.header(headers::SIGNATURE).unwrap().to_owned();
    let expected = [
        ("accept", "*/*".to_owned()),
        ("content-type", "application/json; charset=utf-8".to_owned()),
        ("user-agent", "Djinn-CI-Hook".to_owned()),
        (headers::EVENT, "build.finished".to_owned()),
        (headers::HOOK_ID, "42".to_owned()),
        (headers::DELIVERY, req.event_id.to_string()),
        (headers::SIGNATURE, signature.clone()),
    ]
    .map(|(name, value)| (name.to_ascii_lowercase(), value))
    .to_vec();
    assert_eq!(sent_headers(got), expected);
    assert!(signature.starts_with("sha256="));
    assert_eq!(signature.len(), "sha256=".len() + 64);
    verify(&Secret::from(secret), &got.body, &signature).unwrap();

    // The record holds the same headers (signature included) and never the secret.
    let recorded: Vec<_> = attempt
        .request_headers
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value.clone()))
        .collect();
    assert_eq!(recorded, expected);
    assert!(!format!("{attempt:?}").contains(secret));
    assert!(!format!("{req:?}").contains(secret));
    assert_eq!(attempt.hook_id, 42);
    assert_eq!(attempt.event_id, req.event_id);
    assert!(attempt.response_header("content-length").is_some());
}

#[test]
fn no_secret_no_signature_headers() {
    let server = Server::always(Reply::status(204));
    let mut req = request(&server.url());
    req.standard_webhooks = true;
    let attempt = local_deliverer().deliver(&req);
    assert_eq!(attempt.outcome, AttemptOutcome::Success);
    let got = &server.requests()[0];
    assert_eq!(got.header(headers::SIGNATURE), None);
    assert_eq!(got.header(headers::WEBHOOK_SIGNATURE), None);
    assert_eq!(sent_headers(got).len(), 6);
}

fn standard_headers_verify(secret: &str, key: StandardSecret) {
    let server = Server::always(Reply::status(200));
    let mut req = request(&server.url());
    req.secret = Some(secret.into());
    req.standard_webhooks = true;
    let attempt = local_deliverer().deliver(&req);
    assert_eq!(attempt.outcome, AttemptOutcome::Success, "{attempt:?}");
    let got = &server.requests()[0];
    let headers = StandardHeaders {
        id: got.header(headers::WEBHOOK_ID).unwrap(),
        timestamp: got.header(headers::WEBHOOK_TIMESTAMP).unwrap(),
        signature: got.header(headers::WEBHOOK_SIGNATURE).unwrap(),
    };
    assert_eq!(headers.id, req.event_id.to_string());
    assert_eq!(
        headers.timestamp,
        attempt.created_at.unix_timestamp().to_string()
    );
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    verify_standard(&[key], &headers, &got.body, now, DEFAULT_TOLERANCE).unwrap();
    // The original's signature is sent too.
    verify(
        &Secret::from(secret),
        &got.body,
        got.header(headers::SIGNATURE).unwrap(),
    )
    .unwrap();
    assert!(
        !attempt
            .request_headers
            .iter()
            .any(|(_, value)| value.contains(secret))
    );
}

/// What a receiver holding `secret` makes of a delivery's two signature headers.
fn verifies_with(got: &crate::server::Received, secret: &str) -> (bool, bool) {
    let headers = StandardHeaders {
        id: got.header("webhook-id").unwrap(),
        timestamp: got.header("webhook-timestamp").unwrap(),
        signature: got.header("webhook-signature").unwrap(),
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let key = StandardSecret::from_bytes(secret.as_bytes());
    let standard = verify_standard(&[key], &headers, &got.body, now, DEFAULT_TOLERANCE).is_ok();
    let djinn = verify(
        &Secret::from(secret),
        &got.body,
        got.header("x-djinn-ci-signature").unwrap(),
    )
    .is_ok();
    (standard, djinn)
}

#[test]
fn during_a_rotation_webhook_signature_carries_both_secrets_and_the_djinn_one_the_new() {
    let (old, new) = ("the-old-secret", "the-new-secret");
    let server = Server::always(Reply::status(200));
    let mut req = request(&server.url());
    req.secret = Some(new.into());
    req.previous_secret = Some(old.into());
    req.standard_webhooks = true;
    let attempt = local_deliverer().deliver(&req);
    assert_eq!(attempt.outcome, AttemptOutcome::Success, "{attempt:?}");
    let got = &server.requests()[0];
    let value = got.header("webhook-signature").unwrap();
    let parts: Vec<&str> = value.split(' ').collect();
    assert_eq!(parts.len(), 2, "{value}");
    assert!(parts.iter().all(|p| p.starts_with("v1,")), "{value}");
    assert_eq!(verifies_with(got, new), (true, true));
    assert_eq!(verifies_with(got, old), (true, false));
    assert!(
        !format!("{req:?}{attempt:?}").contains(old),
        "neither the request nor the record shows the old secret"
    );

    // Once the overlap is over the store hands out no previous secret: only the new verifies.
    req.previous_secret = None;
    local_deliverer().deliver(&req);
    let got = &server.requests()[1];
    assert!(!got.header("webhook-signature").unwrap().contains(' '));
    assert_eq!(verifies_with(got, new), (true, true));
    assert_eq!(verifies_with(got, old), (false, false));
}

#[test]
fn standard_webhooks_headers_verify_with_whsec_secret() {
    let whsec = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    standard_headers_verify(whsec, StandardSecret::from_whsec(whsec).unwrap());
}

#[test]
fn standard_webhooks_headers_verify_with_plain_secret() {
    let plain = "plain old secret";
    standard_headers_verify(plain, StandardSecret::from_bytes(plain.as_bytes()));
}

#[test]
fn invalid_whsec_secret_is_a_failed_attempt_that_sends_nothing() {
    let server = Server::always(Reply::status(200));
    let mut req = request(&server.url());
    req.secret = Some("whsec_!!!not base64!!!".into());
    req.standard_webhooks = true;
    let attempt = local_deliverer().deliver(&req);
    assert_eq!(attempt.outcome, AttemptOutcome::Other);
    let error = attempt.error.unwrap();
    assert!(
        error.contains("invalid standard webhooks secret"),
        "{error}"
    );
    assert!(!error.contains("!!!not base64"), "{error}");
    assert_eq!(server.request_count(), 0);
}

#[test]
fn the_event_id_is_the_same_on_retries_and_redeliveries() {
    let server = Server::always(Reply::status(500));
    let deliverer = local_deliverer();
    let mut req = request(&server.url());
    deliverer.deliver(&req);
    req.attempt = 2;
    deliverer.deliver(&req);
    req.redelivery = true;
    let attempt = deliverer.deliver(&req);
    assert!(attempt.redelivery);
    assert_eq!(attempt.attempt, 2);
    let ids: Vec<_> = server
        .requests()
        .iter()
        .map(|got| got.header(headers::DELIVERY).unwrap().to_owned())
        .collect();
    assert_eq!(ids, vec![req.event_id.to_string(); 3]);
}

#[test]
fn keep_alive_reuses_one_connection() {
    let server = Server::always(Reply::status(200));
    let deliverer = local_deliverer();
    for _ in 0..5 {
        let attempt = deliverer.deliver(&request(&server.url()));
        assert_eq!(attempt.outcome, AttemptOutcome::Success);
    }
    assert_eq!(server.request_count(), 5);
    assert_eq!(server.connections(), 1);
}

#[test]
fn error_status_is_a_recorded_response() {
    let server = Server::always(Reply::Status {
        status: 500,
        headers: vec![("X-Why".to_owned(), "broken".to_owned())],
        body: b"oops".to_vec(),
    });
    let attempt = local_deliverer().deliver(&request(&server.url()));
    assert_eq!(attempt.outcome, AttemptOutcome::HttpStatus);
    assert_eq!(attempt.response_status, Some(500));
    assert_eq!(attempt.response_header("x-why"), Some("broken"));
    assert_eq!(attempt.response_body, b"oops");
    assert_eq!(attempt.error, None);
}

#[test]
fn redirect_is_not_followed() {
    let target = Server::always(Reply::status(200));
    let location = target.url();
    let server = Server::always(Reply::with_header(302, "Location", &location));
    let attempt = local_deliverer().deliver(&request(&server.url()));
    assert_eq!(attempt.outcome, AttemptOutcome::RedirectNotFollowed);
    assert_eq!(attempt.response_status, Some(302));
    let error = attempt.error.unwrap();
    assert!(error.contains("redirect not followed"), "{error}");
    assert!(error.contains(&location), "{error}");
    assert_eq!(server.request_count(), 1);
    assert_eq!(target.request_count(), 0);
    assert_eq!(target.connections(), 0);
}

#[test]
fn endless_body_is_capped() {
    let server = Server::always(Reply::Endless);
    let started = Instant::now();
    let attempt = local_deliverer().deliver(&request(&server.url()));
    assert_eq!(attempt.outcome, AttemptOutcome::Success, "{attempt:?}");
    assert_eq!(attempt.response_body.len(), 64 * 1024);
    assert!(attempt.response_truncated);
    assert_eq!(attempt.error, None);
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[test]
fn huge_body_is_capped() {
    let server = Server::always(Reply::Huge(10 * 1024 * 1024));
    let attempt = local_deliverer().deliver(&request(&server.url()));
    assert_eq!(attempt.outcome, AttemptOutcome::Success);
    assert_eq!(attempt.response_body, vec![b'y'; 64 * 1024]);
    assert!(attempt.response_truncated);
}

#[test]
fn body_of_exactly_the_cap_is_not_truncated() {
    let server = Server::always(Reply::Huge(64 * 1024));
    let attempt = local_deliverer().deliver(&request(&server.url()));
    assert_eq!(attempt.response_body.len(), 64 * 1024);
    assert!(!attempt.response_truncated);
}

#[test]
fn timeout() {
    let server = Server::always(Reply::After(
        Duration::from_secs(3),
        Box::new(Reply::status(200)),
    ));
    let mut config = local_config();
    config.timeout = Duration::from_millis(300);
    let deliverer = Deliverer::new(config);
    let started = Instant::now();
    let attempt = deliverer.deliver(&request(&server.url()));
    assert_eq!(attempt.outcome, AttemptOutcome::Timeout, "{attempt:?}");
    assert_eq!(attempt.response_status, None);
    assert_eq!(
        attempt.error.as_deref(),
        Some("timed out: the overall timeout of 300ms expired")
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(attempt.duration >= Duration::from_millis(250));
}

#[test]
fn a_receiver_trickling_its_head_is_cut_off_at_the_webhooks_timeout() {
    // One byte a second: the head alone would take 38 s.
    let server = Server::always(Reply::Trickle {
        at_once: Vec::new(),
        slowly: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(),
        every: Duration::from_secs(1),
    });
    // The deliverer's own timeout is 5 s; the webhook's (the request's) wins.
    let mut request = request(&server.url());
    request.timeout = Some(Duration::from_millis(1500));
    let attempt = local_deliverer().deliver(&request);
    assert_eq!(attempt.outcome, AttemptOutcome::Timeout, "{attempt:?}");
    assert_eq!(attempt.response_status, None);
    assert_eq!(
        attempt.error.as_deref(),
        Some("timed out: the overall timeout of 1.5s expired")
    );
}

#[test]
fn a_receiver_trickling_its_body_is_cut_off_by_the_overall_timeout() {
    // The head at once, then 100 bytes of body at one a second.
    let server = Server::always(Reply::Trickle {
        at_once: b"HTTP/1.1 503 Busy\r\nContent-Length: 100\r\n\r\n".to_vec(),
        slowly: vec![b'x'; 100],
        every: Duration::from_secs(1),
    });
    let mut request = request(&server.url());
    request.timeout = Some(Duration::from_millis(1500));
    let attempt = local_deliverer().deliver(&request);
    assert_eq!(attempt.response_status, Some(503), "{attempt:?}");
    assert!(
        attempt.response_body.len() < 100,
        "cut off: {} bytes",
        attempt.response_body.len()
    );
    let error = attempt.error.as_deref().unwrap();
    assert!(
        error.starts_with("reading the response body failed") && error.contains("imeout"),
        "{error}"
    );
}

#[test]
fn deliverer_is_shared_across_threads() {
    fn send_sync<T: Send + Sync + Clone>() {}
    send_sync::<Deliverer>();
    let server = Server::always(Reply::status(200));
    let deliverer = local_deliverer();
    std::thread::scope(|scope| {
        for _ in 0..4 {
            let deliverer = deliverer.clone();
            let url = server.url();
            scope.spawn(move || {
                for _ in 0..5 {
                    assert!(deliverer.deliver(&request(&url)).is_success());
                }
            });
        }
    });
    assert_eq!(server.request_count(), 20);
    assert!(server.connections() <= 4);
}

#[test]
fn connection_refused() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let attempt = local_deliverer().deliver(&request(&format!("http://127.0.0.1:{port}/")));
    assert_eq!(
        attempt.outcome,
        AttemptOutcome::ConnectRefused,
        "{attempt:?}"
    );
    assert!(
        attempt
            .error
            .as_deref()
            .unwrap()
            .starts_with("connection refused")
    );
}

#[test]
fn invalid_urls_are_failed_attempts() {
    for (url, reason) in [
        ("not a url", "not a url"),
        ("ftp://example.com/x", "scheme must be http or https"),
        ("/relative", "not an absolute url"),
    ] {
        let attempt = local_deliverer().deliver(&request(url));
        assert_eq!(attempt.outcome, AttemptOutcome::Other, "{url}");
        let error = attempt.error.unwrap();
        assert!(error.contains(reason), "{url}: {error}");
        assert!(error.contains(&format!("{url:?}")), "{url}: {error}");
    }
}

#[test]
fn large_bodies_arrive_whole() {
    // Larger than the 64 KiB at which held-back output is sent and than ureq's 128 KiB output
    // buffer: the request goes out in several writes, in order.
    let server = Server::always(Reply::status(204));
    let deliverer = local_deliverer();
    let mut req = request(&server.url());
    req.secret = Some("It's a Secret to Everybody".into());
    req.body = (0..300 * 1024).map(|i| (i % 251) as u8).collect();
    for _ in 0..2 {
        let attempt = deliverer.deliver(&req);
        assert_eq!(attempt.outcome, AttemptOutcome::Success, "{attempt:?}");
    }
    let received = server.requests();
    assert_eq!(received.len(), 2);
    for got in &received {
        assert_eq!(got.body, req.body);
        verify(
            &Secret::from("It's a Secret to Everybody"),
            &got.body,
            got.header(headers::SIGNATURE).unwrap(),
        )
        .unwrap();
    }
}

#[test]
fn credentials_in_the_url_are_sent_but_never_recorded() {
    let server = Server::always(Reply::status(204));
    let port = server.port();
    let deliverer = local_deliverer();
    let attempt = deliverer.deliver(&request(&format!(
        "http://user:password@127.0.0.1:{port}/hook"
    )));
    assert_eq!(attempt.outcome, AttemptOutcome::Success, "{attempt:?}");
    // ureq sends user-info as basic auth: "user:password" in base64.
    assert_eq!(
        server.requests()[0].header("authorization"),
        Some("Basic dXNlcjpwYXNzd29yZA==")
    );
    assert_eq!(attempt.url, format!("http://***@127.0.0.1:{port}/hook"));

    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    for url in [
        format!("http://user:password@127.0.0.1:{closed}/"),
        "http://user:password@/x".to_owned(),
        "ftp://user:password@example.com/x".to_owned(),
        "http://user:password@[::1/".to_owned(),
    ] {
        let request = request(&url);
        let attempt = deliverer.deliver(&request);
        let shown = format!(
            "{} {:?} {attempt:?} {request:?}",
            attempt.url, attempt.error
        );
        assert!(attempt.error.is_some(), "{url}");
        assert!(!shown.contains("password"), "{url}: {shown}");
        assert!(!shown.contains("user:"), "{url}: {shown}");
    }
}
