//! The OpenAPI document and the event schemas as served: the same bytes as `docs/`, no token
//! needed; every example payload valid against its event's schema (checked by the `jsonschema`
//! crate, a validator independent of schemars, which wrote the schemas); a payload missing a
//! required key refused by the schema and by intake alike.

use std::path::PathBuf;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use djinn_hook_payload::{DEFAULT_API_SERVER, EventType, example_api_build, example_payload};
use djinn_hook_server::router;
use serde_json::Value;
use tower::ServiceExt as _;

const TOKEN: &str = "a-token-of-all-scopes";

fn docs() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs")
}

/// `GET path` without a token from a server that has one; status, content type and body.
async fn get(path: &str) -> (StatusCode, String, String) {
    let app = router(crate::state(&crate::config(&[TOKEN])));
    let response = app
        .oneshot(
            Request::get(path)
                .header(header::HOST, "127.0.0.1:8080")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status();
    let content_type = response.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (
        status,
        content_type,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

#[tokio::test]
async fn the_document_and_the_schemas_are_served_as_docs_holds_them_without_a_token() {
    let (status, content_type, text) = get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "application/json");
    let in_docs = std::fs::read_to_string(docs().join("openapi.json")).unwrap();
    assert!(
        text == in_docs.replace("\r\n", "\n"),
        "docs/openapi.json is stale: run `cargo xtask openapi`"
    );
    let document: Value = serde_json::from_str(&text).unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1."));
    for event in EventType::ALL {
        let (status, content_type, text) = get(&format!("/schemas/{}.json", event.name())).await;
        assert_eq!(status, StatusCode::OK, "{event}");
        assert_eq!(content_type, "application/schema+json");
        let path = docs().join(format!("schemas/{}.json", event.name()));
        let in_docs = std::fs::read_to_string(&path).unwrap();
        assert!(
            text == in_docs.replace("\r\n", "\n"),
            "{} is stale: run `cargo xtask openapi`",
            path.display()
        );
    }
    // An unknown event's schema is an unknown path: 401 without a token, as any unknown path
    // is (which paths exist is not told to strangers), 404 with one.
    assert_eq!(
        get("/schemas/build.exploded.json").await.0,
        StatusCode::UNAUTHORIZED
    );
    let app = router(crate::state(&crate::config(&[TOKEN])));
    let response = app
        .oneshot(
            Request::get("/schemas/build.exploded.json")
                .header(header::HOST, "127.0.0.1:8080")
                .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

/// The validator of `event`'s schema as served.
async fn validator(event: EventType) -> jsonschema::Validator {
    let (_, _, text) = get(&format!("/schemas/{}.json", event.name())).await;
    let schema: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
        "{event}"
    );
    jsonschema::draft202012::new(&schema).unwrap_or_else(|err| panic!("{event}: {err}"))
}

fn errors(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|err| format!("{}: {err}", err.instance_path()))
        .collect()
}

#[tokio::test]
async fn every_example_payload_is_valid_against_its_events_schema() {
    for event in EventType::ALL {
        let validator = validator(event).await;
        let file = docs().join(format!("examples/webhooks/{}.json", event.name()));
        let from_docs: Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let built: Value =
            serde_json::from_slice(&example_payload(event, DEFAULT_API_SERVER).to_body()).unwrap();
        for (what, instance) in [("docs/examples", &from_docs), ("example_payload", &built)] {
            let found = errors(&validator, instance);
            assert!(found.is_empty(), "{event} ({what}): {found:#?}");
        }
    }
    // The API's build (docs/examples/api/build.json) is a build, as the build events carry.
    let validator = validator(EventType::BuildSubmitted).await;
    let api_build = serde_json::to_value(example_api_build(DEFAULT_API_SERVER)).unwrap();
    assert_eq!(errors(&validator, &api_build), Vec::<String>::new());
    let from_docs: Value = serde_json::from_str(
        &std::fs::read_to_string(docs().join("examples/api/build.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(errors(&validator, &from_docs), Vec::<String>::new());
}

/// The schemas are not vacuous: a wrong type or an unknown enum value is refused.
#[tokio::test]
async fn a_schema_refuses_a_wrong_type_and_an_unknown_status() {
    let validator = validator(EventType::BuildFinished).await;
    let mut build: Value = serde_json::from_slice(
        &example_payload(EventType::BuildFinished, DEFAULT_API_SERVER).to_body(),
    )
    .unwrap();
    build["status"] = "done".into();
    assert!(!validator.is_valid(&build));
    build["status"] = "passed".into();
    build["id"] = "four".into();
    assert!(!validator.is_valid(&build));
    build["id"] = 4.into();
    build["created_at"] = "yesterday".into();
    // `format` is an annotation in 2020-12 unless asserted; the type still holds.
    build["created_at"] = 7.into();
    assert!(!validator.is_valid(&build));
}

/// For every event and every key its schema requires at the top level: the example without
/// that key is refused by the schema and by intake (400 naming the key), and nothing is stored.
#[tokio::test]
async fn a_payload_missing_a_required_key_is_refused_by_the_schema_and_by_intake() {
    let config = crate::config(&[TOKEN]);
    let store = crate::store();
    let local = "127.0.0.1:8080".parse().unwrap();
    let state =
        djinn_hook_server::AppState::new(&config, std::sync::Arc::clone(&store), local, || {});
    store
        .create_webhook(djinn_hook_store::NewWebhook::new(
            "alice/ci",
            "http://127.0.0.1:9/hook",
        ))
        .unwrap();
    let app = router(state);
    let mut refused = 0;
    for event in EventType::ALL {
        let validator = validator(event).await;
        let (_, _, text) = get(&format!("/schemas/{}.json", event.name())).await;
        let schema: Value = serde_json::from_str(&text).unwrap();
        let root = schema["$ref"]
            .as_str()
            .unwrap()
            .strip_prefix("#/$defs/")
            .unwrap();
        let required: Vec<String> = schema["$defs"][root]["required"]
            .as_array()
            .unwrap_or_else(|| panic!("{event} requires keys"))
            .iter()
            .map(|key| key.as_str().unwrap().to_owned())
            .collect();
        assert!(!required.is_empty(), "{event}");
        let example: Value =
            serde_json::from_slice(&example_payload(event, DEFAULT_API_SERVER).to_body()).unwrap();
        for key in required {
            let mut without = example.clone();
            without.as_object_mut().unwrap().remove(&key);
            assert!(
                !validator.is_valid(&without),
                "{event} without {key}: schema"
            );
            let response = app
                .clone()
                .oneshot(
                    Request::post("/n/alice/ci/-/events")
                        .header(header::HOST, "127.0.0.1:8080")
                        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
                        .header("X-Djinn-CI-Event", event.name())
                        .body(Body::from(serde_json::to_vec(&without).unwrap()))
                        .unwrap(),
                )
                .await
                .unwrap();
            assert_eq!(
                response.status(),
                StatusCode::BAD_REQUEST,
                "{event} without {key}: intake"
            );
            let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
            let text = String::from_utf8_lossy(&body);
            assert!(text.contains(&key), "{event} without {key}: {text}");
            refused += 1;
        }
        // The whole example is accepted, so the refusals above were for the missing key.
        let response = app
            .clone()
            .oneshot(
                Request::post("/n/alice/ci/-/events")
                    .header(header::HOST, "127.0.0.1:8080")
                    .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
                    .header("X-Djinn-CI-Event", event.name())
                    .body(Body::from(serde_json::to_vec(&example).unwrap()))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED, "{event}");
    }
    assert!(refused > 15 * 2, "{refused} refusals");
    assert_eq!(
        store.counts().unwrap().events,
        15,
        "only the whole examples were stored"
    );
}
