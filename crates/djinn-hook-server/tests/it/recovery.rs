//! Custom headers and bulk recovery through the API: headers shown masked and kept by their
//! mask, refused naming the header; `POST …/webhooks/{id}/recover` answers how many it queued,
//! queues nothing the second time, and needs the `write` scope.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use djinn_hook_deliver::{Attempt, AttemptOutcome, Completion, Decision, Outcome};
use djinn_hook_payload::EventType;
use djinn_hook_server::{AppState, Config, Tokens, router};
use djinn_hook_store::{NewEvent, NewWebhook, Store};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use time::OffsetDateTime;
use tower::ServiceExt as _;

const KEY: &str = "k3y-plaintext-3f7a0d";

/// Sends `body` as `method` to `path` (with `token` as a bearer, if any); status and JSON.
async fn send(
    app: &axum::Router,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: &str,
) -> (StatusCode, Value) {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("Host", "127.0.0.1:8080")
        .header("Content-Type", "application/json");
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    let request = request.body(Body::from(body.to_owned())).unwrap();
    let response = tokio::time::timeout(Duration::from_secs(10), app.clone().oneshot(request))
        .await
        .expect("answered within 10 s")
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    assert!(
        !text.contains(KEY),
        "an answer shows a header's value: {text}"
    );
    (status, serde_json::from_str(&text).unwrap())
}

fn app(config: &Config, store: &Arc<Store>) -> axum::Router {
    let local = "127.0.0.1:8080".parse().unwrap();
    router(AppState::new(config, Arc::clone(store), local, || {}))
}

#[tokio::test]
async fn custom_headers_are_shown_masked_kept_by_their_mask_and_refused_by_name() {
    let store = crate::store();
    let app = app(&crate::config(&[]), &store);
    let body = json!({"payload_url": "https://example.com/hook", "headers": {"X-Api-Key": KEY}});
    let (status, hook) = send(
        &app,
        None,
        "POST",
        "/n/alice/ci/-/webhooks",
        &body.to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    assert_eq!(hook["headers"], json!({"X-Api-Key": "***"}));
    let path = format!("/n/alice/ci/-/webhooks/{}", hook["id"]);

    // What was read, sent back with one more: the masked value keeps the stored one.
    let body = json!({"headers": {"X-Api-Key": "***", "X-Tenant": "acme"}});
    let (status, hook) = send(&app, None, "PATCH", &path, &body.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{hook}");
    assert_eq!(
        hook["headers"],
        json!({"X-Api-Key": "***", "X-Tenant": "***"})
    );
    store
        .accept_event(NewEvent::new("alice/ci", EventType::Cron, b"{}".to_vec()))
        .unwrap();
    let task = store
        .claim_due(OffsetDateTime::now_utc(), 10, Duration::from_secs(60))
        .unwrap()
        .remove(0);
    let sent: Vec<(&str, &str)> = task
        .request
        .headers
        .iter()
        .map(|h| (h.name.as_str(), h.expose()))
        .collect();
    assert_eq!(sent, [("X-Api-Key", KEY), ("X-Tenant", "acme")]);

    for (name, value) in [
        ("Host", "evil.example"),
        ("X-Djinn-CI-Signature", "sha256=00"),
    ] {
        let body = json!({"headers": {name: value}});
        let (status, error) = send(&app, None, "PATCH", &path, &body.to_string()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
        assert!(error.to_string().contains(name), "{error}");
    }
    let (status, error) = send(&app, None, "PATCH", &path, r#"{"headers": ["X-A"]}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert!(error.to_string().contains("headers"), "{error}");
    let (status, hook) = send(&app, None, "PATCH", &path, r#"{"headers": null}"#).await;
    assert_eq!(status, StatusCode::OK, "{hook}");
    assert_eq!(hook["headers"], json!({}));
}

/// A webhook of `alice/ci` whose one delivery failed for good; its id.
fn a_failed_delivery(store: &Store) -> i64 {
    let hook = store
        .create_webhook(NewWebhook::new("alice/ci", "https://example.com/hook"))
        .unwrap();
    store
        .accept_event(NewEvent::new("alice/ci", EventType::Cron, b"{}".to_vec()))
        .unwrap();
    let now = OffsetDateTime::now_utc();
    let task = store
        .claim_due(now, 10, Duration::from_secs(60))
        .unwrap()
        .remove(0);
    let mut attempt = Attempt::new(&task.request, now);
    attempt.response_status = Some(500);
    attempt.outcome = AttemptOutcome::HttpStatus;
    let done = Completion::new(
        task.task_id,
        task.lease,
        attempt,
        Decision::new(Outcome::Failed),
    );
    store.complete_one(&done).unwrap();
    hook.id
}

#[tokio::test]
async fn a_recovery_answers_how_many_it_queued_once_and_needs_the_write_scope() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tokens");
    std::fs::write(&file, "reader-0123456789 read\nwriter-0123456789 write\n").unwrap();
    let config = Config::new("127.0.0.1:0", Tokens::load(Some(&file), None).unwrap()).unwrap();
    let store = crate::store();
    let app = app(&config, &store);
    let id = a_failed_delivery(&store);
    let path = format!("/n/alice/ci/-/webhooks/{id}/recover");
    let since = (OffsetDateTime::now_utc() - time::Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let body = json!({"since": since}).to_string();

    let (status, error) = send(&app, Some("reader-0123456789"), "POST", &path, &body).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{error}");
    let (status, answer) = send(&app, Some("writer-0123456789"), "POST", &path, &body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer, json!({"queued": 1}));
    let (status, answer) = send(&app, Some("writer-0123456789"), "POST", &path, &body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer, json!({"queued": 0}), "run twice, queued once");

    let (status, error) = send(&app, Some("writer-0123456789"), "POST", &path, "{}").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert!(error.to_string().contains("since"), "{error}");
    let unknown = "/n/alice/ci/-/webhooks/999/recover";
    let (status, _) = send(&app, Some("writer-0123456789"), "POST", unknown, &body).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = send(&app, Some("reader-0123456789"), "GET", &path, "").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}
