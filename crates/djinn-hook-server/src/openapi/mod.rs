//! The OpenAPI 3.1 document of every route `serve` answers (the UI's pages aside), served at
//! `GET /openapi.json` and kept in `docs/openapi.json` (`cargo xtask openapi` writes it,
//! `--check` and the test `the_document_in_docs_is_fresh` fail when it drifted).
//!
//! It is derived from the code with utoipa: the JSON an answer writes is the type that writes
//! it (`entity_json.rs`, `request_body.rs`, `ready.rs`, each `#[derive(utoipa::ToSchema)]`),
//! and each operation is a `#[utoipa::path]` item in `paths.rs`. The event payloads are the
//! payload crate's JSON Schemas (schemars, its `json-schema` feature), added under
//! `components/schemas` by their event names (`build.finished`, …) with the entities they nest.
//!
//! # Adding a route
//!
//! 1. Route it (`routes.rs`: a `Route` or a `Call`) and answer it
//!    (`handlers.rs`).
//! 2. Derive `utoipa::ToSchema` on the JSON types it reads and writes (`#[schema(as = Name)]`
//!    names the component; `value_type` stands in for a type from another crate).
//! 3. Write its operation in `paths.rs`: a `#[utoipa::path]` on an empty function, with every
//!    status it answers (the error bodies are `ErrorMessage` and
//!    `BadRequest`, in `schemas.rs`), its scope (`security(("bearer" = ["write"]))`),
//!    and list it in `ApiDoc`'s `paths(…)`; `operation_of` must name it too (the compiler
//!    asks: its match has no wildcard).
//! 4. `cargo xtask openapi` rewrites `docs/openapi.json`; `.ci/schemathesis` then checks the
//!    server against it.

mod events;
mod paths;
pub(crate) mod schemas;

use std::sync::OnceLock;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

pub(crate) use schemas::{BreakerHold, EventName, LimitHold};

#[cfg(test)]
use crate::routes::Call;

/// The API's description, the document's `info.description`.
const DESCRIPTION: &str = "The REST API of djinn-hooks (docs/API.md): webhooks and their \
deliveries per namespace, event intake, health, readiness and metrics.

Namespaced paths are `/n/{owner}/{path}/-/…`. A namespace of more than two segments \
(`/n/alice/parent/child/-/webhooks`) is served too; OpenAPI path parameters cannot hold a `/`, \
so the document shows the two-segment form, and a `{path}` holding an encoded `/` (`%2F`) is \
answered 404.

Authentication: `Authorization: Bearer <token>`, each token with scopes (`intake`, `read`, \
`write`, and namespaces). With no token configured, the server listens on loopback only and \
answers only requests to a loopback name; then no token is needed. `/healthz`, `/readyz`, \
`/openapi.json` and `/schemas/{event}.json` never need one.

Any path and method not listed is answered 404 (`{\"message\": \"not found\"}`) or 405 with \
`Allow`. A request slower than the server's request timeout is answered 408.";

/// The document's operations and components.
#[derive(OpenApi)]
#[openapi(
    info(title = "djinn-hooks", description = DESCRIPTION, license(name = "Apache-2.0")),
    paths(
        paths::healthz,
        paths::readyz,
        paths::metrics,
        paths::openapi_json,
        paths::event_schema,
        paths::accept_event,
        paths::accept_batch,
        paths::list_webhooks,
        paths::create_webhook,
        paths::show_webhook,
        paths::update_webhook,
        paths::delete_webhook,
        paths::rotate_secret,
        paths::list_deliveries,
        paths::show_delivery,
        paths::redeliver,
        paths::recover,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "health", description = "Liveness, readiness and metrics"),
        (name = "intake", description = "Events from the CI server"),
        (name = "webhooks", description = "Webhooks of a namespace"),
        (name = "deliveries", description = "The delivery log, and sending a delivery again"),
        (name = "documents", description = "This document and the event payloads' schemas"),
    )
)]
pub(crate) struct ApiDoc;

/// The `bearer` security scheme; an operation names the scopes it needs as its requirement's
/// list (OpenAPI 3.1 allows role names for schemes other than OAuth).
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A token from `--token-file` or `DJINN_HOOKS_TOKENS`. Its scopes \
                         (`intake`: post events; `read`: GET; `write`: change webhooks, \
                         rotate secrets, redeliver; and namespaces) are listed on each \
                         operation; a token with no scope word may do everything.",
                    ))
                    .build(),
            ),
        );
    }
}

/// The operation id of each API call: a new [`Call`] does not compile (in tests and clippy's
/// `--all-targets`) until it is named here, and the test `every_call_is_in_the_document` finds
/// the operation in the document.
#[cfg(test)]
pub(crate) fn operation_of(call: Call) -> &'static str {
    match call {
        Call::ListWebhooks => "list_webhooks",
        Call::CreateWebhook => "create_webhook",
        Call::ShowWebhook(_) => "show_webhook",
        Call::UpdateWebhook(_) => "update_webhook",
        Call::DeleteWebhook(_) => "delete_webhook",
        Call::RotateSecret(_) => "rotate_secret",
        Call::ListDeliveries(_) => "list_deliveries",
        Call::ShowDelivery(..) => "show_delivery",
        Call::Redeliver(..) => "redeliver",
        Call::Recover(_) => "recover",
    }
}

/// The whole document as JSON.
pub fn document() -> serde_json::Value {
    let mut value = serde_json::to_value(ApiDoc::openapi()).expect("the document serialises");
    events::add_event_schemas(&mut value);
    value
}

/// The document as served and as `docs/openapi.json` holds it: pretty JSON and a newline.
pub fn document_text() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        let mut text = serde_json::to_string_pretty(&document()).expect("JSON serialises");
        text.push('\n');
        text
    })
}

/// The JSON Schema of `event`'s payload as served at `/schemas/<event>.json` and kept in
/// `docs/schemas/<event>.json`: pretty JSON and a newline.
pub fn event_schema_text(event: djinn_hook_payload::EventType) -> String {
    let schema = djinn_hook_payload::event_schema(event);
    let mut text = serde_json::to_string_pretty(&schema).expect("JSON serialises");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests;
