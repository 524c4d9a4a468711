use axum::http::Method;
use serde_json::Value;

use super::*;
use crate::routes::{HookPath, Route};

/// Every (method, path) of the document, its path filled in with sample values.
fn operations(document: &Value) -> Vec<(Method, String, String)> {
    let mut out = Vec::new();
    for (template, item) in document["paths"].as_object().unwrap() {
        let path = template
            .replace("{owner}", "alice")
            .replace("{path}", "ci")
            .replace("{id}", "7")
            .replace("{delivery_id}", "9")
            .replace("{event}", "build.finished");
        for (method, operation) in item.as_object().unwrap() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let id = operation["operationId"].as_str().unwrap().to_owned();
            out.push((method, path.clone(), id));
        }
    }
    out
}

#[test]
fn every_operation_is_a_route_the_server_answers() {
    let document = document();
    let operations = operations(&document);
    assert_eq!(operations.len(), 17, "{operations:#?}");
    for (method, path, id) in &operations {
        let route = Route::parse(path).unwrap_or_else(|| panic!("{id}: {path} is no route"));
        assert!(route.allowed().contains(method), "{id}: {method} {path}");
        // The public routes say so; every other operation names the scopes it needs.
        let security = document["paths"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|item| item.as_object().unwrap().values())
            .find(|op| op["operationId"] == id.as_str())
            .unwrap()["security"]
            .clone();
        let public = security == serde_json::json!([{}]);
        assert_eq!(public, route.is_public(), "{id}: security {security}");
    }
}

#[test]
fn every_call_is_in_the_document() {
    let document = document();
    let ids: Vec<String> = operations(&document)
        .into_iter()
        .map(|(.., id)| id)
        .collect();
    let paths = [
        HookPath::Webhooks,
        HookPath::Webhook(7),
        HookPath::RotateSecret(7),
        HookPath::Deliveries(7),
        HookPath::Delivery(7, 9),
        HookPath::Redeliver(7, 9),
        HookPath::Recover(7),
    ];
    let mut calls = 0;
    for at in paths {
        for method in [Method::GET, Method::POST, Method::PATCH, Method::DELETE] {
            if let Some(call) = at.call(&method) {
                let id = operation_of(call);
                assert!(ids.iter().any(|i| i == id), "{call:?}: no operation {id}");
                calls += 1;
            }
        }
    }
    assert_eq!(calls, 10);
}

#[test]
fn the_document_is_openapi_3_1_with_the_event_payloads_and_bearer_auth() {
    let document = document();
    assert_eq!(document["openapi"], "3.1.0");
    let schemas = document["components"]["schemas"].as_object().unwrap();
    for event in djinn_hook_payload::EventType::ALL {
        assert!(schemas.contains_key(event.name()), "{event}");
    }
    assert_eq!(
        schemas["EventPayload"]["anyOf"].as_array().unwrap().len(),
        15
    );
    assert_eq!(
        document["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    // Every reference points at a component that exists.
    let text = serde_json::to_string(&document).unwrap();
    for piece in text.split("\"$ref\":\"").skip(1) {
        let target = &piece[..piece.find('"').unwrap()];
        let name = target
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("a reference outside the components: {target}"));
        assert!(schemas.contains_key(name), "{target}");
    }
}
