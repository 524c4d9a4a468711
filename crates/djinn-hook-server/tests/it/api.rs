//! The API's rules, through `tower::ServiceExt::oneshot` on the `Router`: who may call it
//! (Host and Origin without tokens, token scopes), request ids, body limits and the
//! per-request timeout.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode};
use axum::response::Response;
use djinn_hook_server::{Config, Tokens, router};
use djinn_hook_sign::headers;
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

use crate::{config, state};

/// Runs `request` through a fresh router over `config`, with a 10 s deadline.
async fn call(config: &Config, request: Request<Body>) -> Response {
    let app = router(state(config));
    tokio::time::timeout(Duration::from_secs(10), app.oneshot(request))
        .await
        .expect("answered within 10 s")
        .unwrap()
}

/// The router of a server said to be bound to 127.0.0.1:8080, over `store`.
fn router_over(config: &Config, store: &Arc<djinn_hook_store::Store>) -> axum::Router {
    let local = "127.0.0.1:8080".parse().unwrap();
    router(djinn_hook_server::AppState::new(
        config,
        Arc::clone(store),
        local,
        || {},
    ))
}

fn get(path: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut request = Request::get(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(Body::empty()).unwrap()
}

async fn text(response: Response) -> String {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn without_tokens_only_loopback_hosts_and_the_own_origin() {
    let config = config(&[]);
    let hooks = "/n/alice/ci/-/webhooks";
    let ok = call(&config, get(hooks, &[("Host", "127.0.0.1:8080")])).await;
    assert_eq!(ok.status(), StatusCode::OK);
    let ok = call(&config, get(hooks, &[("Host", "localhost:8080")])).await;
    assert_eq!(ok.status(), StatusCode::OK);
    // DNS rebinding: a name that resolves to 127.0.0.1 but is not a loopback name.
    let rebound = call(&config, get(hooks, &[("Host", "attacker.example:8080")])).await;
    assert_eq!(rebound.status(), StatusCode::FORBIDDEN);
    assert!(text(rebound).await.contains("is not a loopback name"));
    // A web page in the operator's browser.
    let page = call(
        &config,
        get(
            hooks,
            &[
                ("Host", "127.0.0.1:8080"),
                ("Origin", "https://evil.example"),
            ],
        ),
    )
    .await;
    assert_eq!(page.status(), StatusCode::FORBIDDEN);
    let own = call(
        &config,
        get(
            hooks,
            &[
                ("Host", "127.0.0.1:8080"),
                ("Origin", "http://127.0.0.1:8080"),
            ],
        ),
    )
    .await;
    assert_eq!(own.status(), StatusCode::OK);
    let create = Request::post(hooks)
        .header("Host", "localhost:8080")
        .header("Origin", "http://localhost:9999")
        .body(Body::from(r#"{"payload_url": "https://example.com/h"}"#))
        .unwrap();
    assert_eq!(call(&config, create).await.status(), StatusCode::FORBIDDEN);
    // /healthz answers anyone.
    let health = call(&config, get("/healthz", &[("Host", "attacker.example")])).await;
    assert_eq!(health.status(), StatusCode::OK);
}

/// Without tokens, the one `Host` a check reads is the one the request names: a request
/// without `Host`, with two, with two `Origin`s, or whose absolute-form target names another
/// host than its `Host` is refused before any handler runs.
#[tokio::test]
async fn without_tokens_a_request_names_exactly_one_loopback_host() {
    let config = config(&[]);
    let hooks = "/n/alice/ci/-/webhooks";
    let request = |target: &str, hosts: &[&str], origins: &[&str]| {
        let mut request = Request::get(target);
        for host in hosts {
            request = request.header("Host", *host);
        }
        for origin in origins {
            request = request.header("Origin", *origin);
        }
        request.body(Body::empty()).unwrap()
    };
    let refused = [
        (
            request(hooks, &[], &[]),
            StatusCode::BAD_REQUEST,
            "is required",
        ),
        (
            request(hooks, &["127.0.0.1:8080", "evil.example"], &[]),
            StatusCode::BAD_REQUEST,
            "must be sent once",
        ),
        (
            request(hooks, &["evil.example", "127.0.0.1:8080"], &[]),
            StatusCode::BAD_REQUEST,
            "must be sent once",
        ),
        (
            request(
                hooks,
                &["127.0.0.1:8080"],
                &["http://127.0.0.1:8080", "https://evil.example"],
            ),
            StatusCode::BAD_REQUEST,
            "must be sent at most once",
        ),
        (
            request(
                "http://evil.example/n/alice/ci/-/webhooks",
                &["127.0.0.1:8080"],
                &[],
            ),
            StatusCode::FORBIDDEN,
            "the request target names",
        ),
    ];
    for (request, status, needle) in refused {
        let what = format!("{:?} {:?}", request.uri(), request.headers());
        let response = call(&config, request).await;
        assert_eq!(response.status(), status, "{what}");
        let body = text(response).await;
        assert!(body.contains(needle), "{what}: {body}");
    }
    let absolute = request(
        "http://127.0.0.1:8080/n/alice/ci/-/webhooks",
        &["127.0.0.1:8080"],
        &[],
    );
    assert_eq!(call(&config, absolute).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn token_scopes_are_403_outside_them() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tokens");
    std::fs::write(
        &file,
        "# the CI server\nci-token-0123456789 intake\nviewer-0123456789 read namespace=bob/x\nadmin-0123456789\n",
    )
    .unwrap();
    let tokens = Tokens::load(Some(&file), None).unwrap();
    let config = Config::new("127.0.0.1:0", tokens).unwrap();
    let bearer = |token: &str| format!("Bearer {token}");
    let event = |token: &str| {
        Request::post("/n/alice/ci/-/events")
            .header("Authorization", bearer(token))
            .header(headers::EVENT, "cron")
            .body(Body::from(
                djinn_hook_payload::example_payload(
                    djinn_hook_payload::EventType::Cron,
                    djinn_hook_payload::DEFAULT_API_SERVER,
                )
                .to_body(),
            ))
            .unwrap()
    };
    assert_eq!(
        call(&config, event("ci-token-0123456789")).await.status(),
        StatusCode::ACCEPTED
    );
    let batch = |token: &str| {
        let cron = djinn_hook_payload::example_payload(
            djinn_hook_payload::EventType::Cron,
            djinn_hook_payload::DEFAULT_API_SERVER,
        )
        .to_body();
        Request::post("/n/alice/ci/-/events/batch")
            .header("Authorization", bearer(token))
            .body(Body::from(format!(
                r#"[{{"event": "cron", "payload": {}}}]"#,
                String::from_utf8(cron).unwrap()
            )))
            .unwrap()
    };
    assert_eq!(
        call(&config, batch("ci-token-0123456789")).await.status(),
        StatusCode::ACCEPTED
    );
    let refused = call(&config, batch("viewer-0123456789")).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        text(refused).await,
        "{\n  \"message\": \"forbidden: this token may not post events\"\n}\n"
    );
    let read = call(
        &config,
        get(
            "/n/alice/ci/-/webhooks",
            &[("Authorization", &bearer("ci-token-0123456789"))],
        ),
    )
    .await;
    assert_eq!(read.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        text(read).await,
        "{\n  \"message\": \"forbidden: this token may not read\"\n}\n"
    );
    assert_eq!(
        call(&config, event("viewer-0123456789")).await.status(),
        StatusCode::FORBIDDEN
    );
    let own = call(
        &config,
        get(
            "/n/bob/x/-/webhooks",
            &[("Authorization", &bearer("viewer-0123456789"))],
        ),
    )
    .await;
    assert_eq!(own.status(), StatusCode::OK);
    let other = call(
        &config,
        get(
            "/n/alice/ci/-/webhooks",
            &[("Authorization", &bearer("viewer-0123456789"))],
        ),
    )
    .await;
    assert_eq!(other.status(), StatusCode::FORBIDDEN);
    let missing = call(&config, get("/n/alice/ci/-/webhooks", &[])).await;
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        call(&config, event("admin-0123456789")).await.status(),
        StatusCode::ACCEPTED
    );
}

#[tokio::test]
async fn every_answer_carries_a_request_id() {
    let config = config(&[]);
    let fresh = call(&config, get("/healthz", &[])).await;
    let id = fresh.headers().get("x-request-id").expect("a request id");
    assert_eq!(id.len(), 36, "a UUID: {id:?}");
    let kept = call(
        &config,
        get("/healthz", &[("x-request-id", "from-the-proxy")]),
    )
    .await;
    assert_eq!(kept.headers()["x-request-id"], "from-the-proxy");
    let longest = "a".repeat(128);
    let kept = call(&config, get("/healthz", &[("x-request-id", &longest)])).await;
    assert_eq!(kept.headers()["x-request-id"], longest.as_str());
    // Too long, blank, spaced or repeated: replaced by a fresh id, never echoed.
    let too_long = "a".repeat(129);
    for ids in [
        vec![too_long.as_str()],
        vec![""],
        vec!["two words"],
        vec!["one", "two"],
    ] {
        let mut request = Request::get("/healthz");
        for id in &ids {
            request = request.header("x-request-id", *id);
        }
        let fresh = call(&config, request.body(Body::empty()).unwrap()).await;
        let echoed = fresh
            .headers()
            .get_all("x-request-id")
            .iter()
            .collect::<Vec<_>>();
        assert_eq!(echoed.len(), 1, "{ids:?}");
        assert_eq!(
            echoed[0].len(),
            36,
            "a fresh UUID for {ids:?}: {:?}",
            echoed[0]
        );
    }
    let mut request = Request::get("/healthz").body(Body::empty()).unwrap();
    request.headers_mut().insert(
        "x-request-id",
        axum::http::HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap(),
    );
    let fresh = call(&config, request).await;
    assert_eq!(fresh.headers()["x-request-id"].len(), 36, "not ASCII");
}

/// Every answer of the API says `X-Content-Type-Options: nosniff`: JSON, errors of every layer
/// (auth, routing, validation, timeout) and the metrics text.
#[tokio::test]
async fn every_answer_says_nosniff() {
    let open = config(&[]);
    let host = [("Host", "127.0.0.1:8080")];
    let mut timing_out = config(&[]);
    timing_out.request_timeout = Duration::from_millis(50);
    let stalled = Request::post("/n/alice/ci/-/webhooks")
        .header("Host", "127.0.0.1:8080")
        .body(Body::from_stream(futures_util::stream::pending::<
            Result<Bytes, std::io::Error>,
        >()))
        .unwrap();
    let with_tokens = config(&["a-token-of-16-chars"]);
    let answers = [
        call(&open, get("/healthz", &[])).await,
        call(&open, get("/n/alice/ci/-/webhooks", &host)).await,
        call(&open, get("/metrics", &host)).await,
        call(&open, get("/nope", &host)).await,
        call(
            &open,
            get("/n/alice/ci/-/webhooks", &[("Host", "evil.example")]),
        )
        .await,
        call(&open, get("/n/alice/ci/-/webhooks", &[])).await,
        call(&with_tokens, get("/n/alice/ci/-/webhooks", &[])).await,
        call(&timing_out, stalled).await,
    ];
    let statuses: Vec<u16> = answers.iter().map(|a| a.status().as_u16()).collect();
    assert_eq!(statuses, [200, 200, 200, 404, 403, 400, 401, 408]);
    for answer in &answers {
        assert_eq!(
            answer.headers()["x-content-type-options"],
            "nosniff",
            "{}",
            answer.status()
        );
    }
}

#[tokio::test]
async fn the_body_limit_holds_while_reading_an_endless_body() {
    let mut config = config(&[]);
    config.max_body = 4000;
    // Chunked, no declared length, and it never ends: only a limit applied while reading
    // answers at all.
    let endless = futures_util::stream::repeat_with(|| {
        Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; 1000]))
    });
    let request = Request::post("/n/alice/ci/-/webhooks")
        .header("Host", "127.0.0.1:8080")
        .body(Body::from_stream(endless))
        .unwrap();
    let response = call(&config, request).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        text(response).await,
        "{\n  \"message\": \"request body larger than 4000 bytes\"\n}\n"
    );
}

#[tokio::test]
async fn a_request_that_never_finishes_times_out() {
    let mut config = config(&[]);
    config.request_timeout = Duration::from_millis(200);
    // A body whose first chunk never comes.
    let stalled = futures_util::stream::pending::<Result<Bytes, std::io::Error>>();
    let request = Request::post("/n/alice/ci/-/webhooks")
        .header("Host", "127.0.0.1:8080")
        .body(Body::from_stream(stalled))
        .unwrap();
    let response = call(&config, request).await;
    assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
}

#[tokio::test]
async fn a_webhooks_delivery_limits_are_set_and_reset_through_the_api() {
    let config = config(&[]);
    let app = router(state(&config));
    let send = |method: &str, path: &str, body: &str| {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("Host", "127.0.0.1:8080")
            .header("Content-Type", "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap();
        let app = app.clone();
        async move {
            let response = tokio::time::timeout(Duration::from_secs(10), app.oneshot(request))
                .await
                .expect("answered within 10 s")
                .unwrap();
            let status = response.status();
            let json: serde_json::Value = serde_json::from_str(&text(response).await).unwrap();
            (status, json)
        }
    };
    let (status, hook) = send(
        "POST",
        "/n/alice/ci/-/webhooks",
        r#"{"payload_url": "https://example.com/hook", "max_in_flight": 3, "timeout_ms": 2500}"#,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    assert_eq!(hook["max_in_flight"], 3);
    assert_eq!(hook["timeout_ms"], 2500);
    assert_eq!(hook["breaker"], serde_json::Value::Null);
    let path = format!("/n/alice/ci/-/webhooks/{}", hook["id"]);

    let (status, hook) = send(
        "PATCH",
        &path,
        r#"{"max_in_flight": null, "timeout_ms": 20000}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{hook}");
    assert_eq!(
        hook["max_in_flight"],
        serde_json::Value::Null,
        "back to the default"
    );
    assert_eq!(hook["timeout_ms"], 20_000);

    let (status, error) = send("PATCH", &path, r#"{"max_in_flight": 0}"#).await;
    assert!(status.is_client_error(), "{status} {error}");
    assert!(error.to_string().contains("max_in_flight"), "{error}");
    let (_, hook) = send("PATCH", &path, "{}").await;
    assert_eq!(
        hook["timeout_ms"], 20_000,
        "an invalid update changes nothing"
    );
}

/// The one intake rule (the store's, shared with `djinn-hooks emit`): an event for a namespace
/// nobody created is 404 naming it and stores nothing, not even the namespace; an existing
/// namespace without webhooks accepts it with nothing matched.
#[tokio::test]
async fn an_event_for_an_unknown_namespace_is_404_and_stores_nothing() {
    let config = config(&[]);
    let store = crate::store();
    let app = router_over(&config, &store);
    let event = |ns: &str| {
        Request::post(format!("/n/{ns}/-/events"))
            .header("Host", "127.0.0.1:8080")
            .header(headers::EVENT, "cron")
            .body(Body::from(
                djinn_hook_payload::example_payload(
                    djinn_hook_payload::EventType::Cron,
                    djinn_hook_payload::DEFAULT_API_SERVER,
                )
                .to_body(),
            ))
            .unwrap()
    };
    let unknown = app.clone().oneshot(event("ghost/ns")).await.unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let body: serde_json::Value = serde_json::from_str(&text(unknown).await).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"message": "namespace \"ghost/ns\" not found"})
    );
    assert_eq!(store.namespace("ghost/ns").unwrap(), None);
    assert_eq!(store.counts().unwrap().events, 0);

    let known = app.oneshot(event("alice/ci")).await.unwrap();
    assert_eq!(known.status(), StatusCode::ACCEPTED);
    let body: serde_json::Value = serde_json::from_str(&text(known).await).unwrap();
    assert_eq!(body["matched"], 0, "{body}");
    assert_eq!(store.counts().unwrap().events, 1);
}

/// Sends a JSON `body` through `app` as a loopback client: the status, the JSON answer, and
/// its headers.
async fn send_json(
    app: &axum::Router,
    method: &str,
    path: &str,
    body: &str,
) -> (StatusCode, serde_json::Value, axum::http::HeaderMap) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("Host", "127.0.0.1:8080")
        .header("Content-Type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(10), app.clone().oneshot(request))
        .await
        .expect("answered within 10 s")
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let text = text(response).await;
    let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    (status, json, headers)
}

#[tokio::test]
async fn a_secret_is_rotated_through_the_api_and_a_generated_one_shown_once() {
    let config = config(&[]);
    let app = router(state(&config));
    let (status, hook, _) = send_json(
        &app,
        "POST",
        "/n/alice/ci/-/webhooks",
        r#"{"payload_url": "https://example.com/hook", "secret": "old-secret"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    assert_eq!(hook["secret_rotating_until"], serde_json::Value::Null);
    let path = format!("/n/alice/ci/-/webhooks/{}", hook["id"]);
    let rotate = format!("{path}/rotate-secret");

    let (status, rotated, _) = send_json(
        &app,
        "POST",
        &rotate,
        r#"{"secret": "new-secret", "overlap_seconds": 3600}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let until = rotated["secret_rotating_until"].as_str().expect("a time");
    let until =
        time::OffsetDateTime::parse(until, &time::format_description::well_known::Rfc3339).unwrap();
    let in_an_hour = time::OffsetDateTime::now_utc() + Duration::from_secs(3600);
    assert!(
        (in_an_hour - until).abs() < time::Duration::seconds(60),
        "{until}"
    );
    assert_eq!(rotated["has_secret"], true);
    let shown = rotated.to_string();
    assert!(
        !shown.contains("new-secret")
            && !shown.contains("old-secret")
            && !shown.contains("generated_secret"),
        "a given secret is never echoed: {shown}"
    );

    // No secret given: one is generated, shown in this answer only.
    let (status, rotated, headers) = send_json(&app, "POST", &rotate, "").await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let generated = rotated["generated_secret"].as_str().expect("generated");
    assert!(
        generated.starts_with("whsec_") && generated.len() > 40,
        "{generated}"
    );
    assert_eq!(headers["cache-control"], "no-store");
    let (_, shown, _) = send_json(&app, "GET", &path, "").await;
    assert!(!shown.to_string().contains(generated), "{shown}");
    assert_eq!(shown["generated_secret"], serde_json::Value::Null);

    // Bad input: a 4xx naming the field; nothing changes.
    for (body, field) in [
        (r#"{"overlap_seconds": 604801}"#, "overlap_seconds"),
        (r#"{"secret": ""}"#, "secret"),
        (r#"{"overlap_seconds": "a day"}"#, "overlap_seconds"),
        (r#"{"overlap_seconds": -1}"#, "overlap_seconds"),
    ] {
        let (status, error, _) = send_json(&app, "POST", &rotate, body).await;
        assert!(status.is_client_error(), "{body}: {status} {error}");
        assert!(error.to_string().contains(field), "{body}: {error}");
    }
    let (status, _, headers) = send_json(&app, "GET", &rotate, "").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers["allow"], "POST");
    let (status, _, _) =
        send_json(&app, "POST", "/n/alice/ci/-/webhooks/999/rotate-secret", "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = send_json(&app, "POST", "/n/bob/x/-/webhooks/1/rotate-secret", "").await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another namespace's webhook is not found"
    );
}

#[tokio::test]
async fn a_payload_urls_user_info_is_never_shown_and_survives_a_round_trip() {
    let config = config(&[]);
    let store = crate::store();
    let local: std::net::SocketAddr = "127.0.0.1:8080".parse().unwrap();
    let app = router(djinn_hook_server::AppState::new(
        &config,
        std::sync::Arc::clone(&store),
        local,
        || {},
    ));
    let url = "https://ci:hunter2@example.com/hook";
    let shown = "https://***@example.com/hook";
    let (status, hook, _) = send_json(
        &app,
        "POST",
        "/n/alice/ci/-/webhooks",
        &format!(r#"{{"payload_url": "{url}"}}"#),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    assert_eq!(hook["payload_url"], shown);
    let path = format!("/n/alice/ci/-/webhooks/{}", hook["id"]);
    for read in [path.as_str(), "/n/alice/ci/-/webhooks"] {
        let (_, json, _) = send_json(&app, "GET", read, "").await;
        assert!(!json.to_string().contains("hunter2"), "{json}");
        assert!(json.to_string().contains(shown), "{json}");
    }
    let id = hook["id"].as_i64().unwrap();
    assert_eq!(
        store.webhook(id).unwrap().unwrap().payload_url,
        url,
        "kept for sending"
    );

    // Written back as read: the credentials stay.
    let (status, hook, _) = send_json(
        &app,
        "PATCH",
        &path,
        &format!(r#"{{"payload_url": "{shown}", "active": false}}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{hook}");
    assert_eq!(store.webhook(id).unwrap().unwrap().payload_url, url);
    // Changed around the mask: refused, lest the credentials go to another address.
    let (status, error, _) = send_json(
        &app,
        "PATCH",
        &path,
        r#"{"payload_url": "https://***@attacker.example/hook"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert!(
        error["payload_url"][0]
            .as_str()
            .unwrap()
            .starts_with("has *** for its credentials"),
        "{error}"
    );
    assert_eq!(store.webhook(id).unwrap().unwrap().payload_url, url);
    // A new URL replaces them.
    send_json(
        &app,
        "PATCH",
        &path,
        r#"{"payload_url": "https://other:pw@example.com/hook"}"#,
    )
    .await;
    assert_eq!(
        store.webhook(id).unwrap().unwrap().payload_url,
        "https://other:pw@example.com/hook"
    );
}

/// A `whsec_` secret that is not padded base64 of 24 to 64 bytes (the Standard Webhooks
/// spec's rule, `StandardSecret::from_whsec`) is 400 naming `secret` at create, update and
/// rotation, and nothing changes; before, it was stored and every delivery then failed.
#[tokio::test]
async fn an_invalid_standard_webhooks_secret_is_400_naming_secret() {
    let config = config(&[]);
    let app = router(state(&config));
    let hooks = "/n/alice/ci/-/webhooks";
    let (status, hook, _) = send_json(
        &app,
        "POST",
        hooks,
        r#"{"payload_url": "https://example.com/kept", "standard_webhooks": true}"#,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    let path = format!("{hooks}/{}", hook["id"]);
    for bad in ["whsec_!!!notbase64", "whsec_", "whsec_c2VjcmV0=="] {
        let create = serde_json::json!({
            "payload_url": "https://example.com/new",
            "standard_webhooks": true,
            "secret": bad,
        });
        let update = serde_json::json!({"standard_webhooks": true, "secret": bad});
        let rotate = serde_json::json!({"secret": bad});
        for (method, at, body) in [
            ("POST", hooks.to_owned(), create),
            ("PATCH", path.clone(), update),
            ("POST", format!("{path}/rotate-secret"), rotate),
        ] {
            let (status, error, _) = send_json(&app, method, &at, &body.to_string()).await;
            assert_eq!(
                status,
                StatusCode::BAD_REQUEST,
                "{method} {at} {bad}: {error}"
            );
            let messages = error["secret"].as_array().expect("names secret");
            assert!(
                messages[0]
                    .as_str()
                    .unwrap()
                    .contains("not a Standard Webhooks secret"),
                "{error}"
            );
        }
    }
    let (_, listed, _) = send_json(&app, "GET", hooks, "").await;
    assert_eq!(
        listed.as_array().unwrap().len(),
        1,
        "nothing created: {listed}"
    );
    assert_eq!(listed[0]["has_secret"], false, "nothing changed: {listed}");
}

/// The create-time loop check reads the payload URL as the guard, ureq's resolver and a proxy
/// would: an IPv4 shorthand, IPv4-mapped IPv6 or a dot segment names this server's intake as
/// surely as `127.0.0.1`, at create and at update.
#[tokio::test]
async fn a_webhook_loop_is_refused_however_the_url_spells_this_server() {
    let config = config(&[]);
    let app = router(state(&config));
    let hooks = "/n/alice/ci/-/webhooks";
    let (status, kept, _) = send_json(
        &app,
        "POST",
        hooks,
        r#"{"payload_url": "https://example.com/kept"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{kept}");
    let path = format!("{hooks}/{}", kept["id"]);
    for url in [
        "http://127.1:8080/n/alice/ci/-/events",
        "http://0x7f.0.0.1:8080/n/alice/ci/-/events",
        "http://[::ffff:127.0.0.1]:8080/n/alice/ci/-/events",
        "http://localhost.:8080/n/alice/ci/-/events",
        "http://127.0.0.1:8080/n/alice/ci/-/events/.",
        "http://127.0.0.1:8080/n/alice/ci/-/hooks/../events",
    ] {
        let body = serde_json::json!({"payload_url": url}).to_string();
        for (method, at) in [("POST", hooks), ("PATCH", path.as_str())] {
            let (status, error, _) = send_json(&app, method, at, &body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {url}: {error}");
            assert!(
                error["payload_url"][0]
                    .as_str()
                    .is_some_and(|m| m.starts_with("points at this server's own event intake")),
                "{method} {url}: {error}"
            );
        }
    }
    let (_, listed, _) = send_json(&app, "GET", hooks, "").await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(
        listed[0]["payload_url"], "https://example.com/kept",
        "{listed}"
    );
}

#[tokio::test]
async fn a_namespace_a_url_path_would_change_is_a_400_naming_what_and_stores_nothing() {
    let config = config(&[]);
    let store = crate::store();
    let app = router_over(&config, &store);
    for (ns, named) in [
        // `alice/ci/x\..\..\..\bob\ci`: a browser would resolve its links into `bob/ci`.
        ("alice/ci/x%5C..%5C..%5C..%5Cbob%5Cci", "backslash"),
        ("alice/ci/%2E%2E", r#"segment \"..\""#),
        ("alice/%2e/ci", r#"segment \".\""#),
    ] {
        let (status, body, _) = send_json(
            &app,
            "POST",
            &format!("/n/{ns}/-/webhooks"),
            r#"{"payload_url": "https://example.com/hook"}"#,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{ns}: {body}");
        assert!(body.to_string().contains(named), "{ns}: {body}");
    }
    let names: Vec<String> = store
        .namespaces()
        .unwrap()
        .into_iter()
        .map(|n| n.name)
        .collect();
    assert_eq!(names, ["alice/ci", "bob/x"], "nothing stored");
}
