//! One `#[utoipa::path]` per operation: its path, parameters, body, scope and every status it
//! answers. The functions are never called; `handlers.rs` answers the requests (the API's
//! routes are parsed by `routes.rs`, not by a path-pattern router, so there is no handler per
//! path to annotate).
#![allow(dead_code)] // the functions exist for their attributes

use utoipa::IntoParams;

use super::schemas::{BadRequest, BatchItem, ErrorMessage, EventName, EventPayload};
use crate::entity_json::{
    AcceptedJson, BatchAcceptedJson, DeliveryFullJson, DeliveryJson, RecoveredJson, RedeliveryJson,
    RotatedJson, WebhookJson,
};
use crate::ready::ReadyJson;
use crate::request_body::{CreateWebhook, Recover, RotateSecret, UpdateWebhook};

/// A namespace in a path, `/n/{owner}/{path}/-/…`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub(super) struct Ns {
    /// The namespace's owner, its first segment (`alice` of `alice/ci`).
    #[param(min_length = 1, pattern = "^[^/]+$", example = "alice")]
    owner: String,
    /// The namespace below its owner (`ci` of `alice/ci`); a child namespace's path has more
    /// segments (`parent/child`), which OpenAPI cannot show (see the description).
    #[param(min_length = 1, pattern = "^[^/]+$", example = "ci")]
    path: String,
}

/// A webhook in a path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub(super) struct HookId {
    /// The webhook's id.
    #[param(minimum = 1, example = 1)]
    id: i64,
}

/// A delivery of a webhook in a path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub(super) struct DeliveryId {
    /// The delivery's id.
    #[param(minimum = 1, example = 1)]
    delivery_id: i64,
}

/// The query of a list of deliveries.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct DeliveriesQuery {
    /// The page, from 1 (25 deliveries a page, newest first).
    #[param(minimum = 1, maximum = 4294967295_i64)]
    page: Option<u32>,
    /// `true`: only test deliveries (`hook test`); `false`: only the others.
    test: Option<bool>,
}

/// Liveness: the process answers. Never touches the database.
#[utoipa::path(
    get, path = "/healthz", tag = "health", operation_id = "healthz",
    responses((status = 200, description = "The process is alive",
        body = Object, example = json!({"status": "ok"}))),
    security(()),
)]
fn healthz() {}

/// Readiness: the database can be reached and the delivery worker runs (docs/OPERATIONS.md).
#[utoipa::path(
    get, path = "/readyz", tag = "health", operation_id = "readyz",
    responses(
        (status = 200, description = "Ready", body = ReadyJson),
        (status = 503, description = "Not ready: `failed` names the checks that failed",
            body = ReadyJson),
    ),
    security(()),
)]
fn readyz() {}

/// Counters and histograms in the OpenMetrics text format.
#[utoipa::path(
    get, path = "/metrics", tag = "health", operation_id = "metrics",
    responses(
        (status = 200, description = "The metrics",
            content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8",
            body = String),
        (status = 401, description = "No valid token", body = ErrorMessage,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "The token may not read, or is limited to namespaces",
            body = ErrorMessage),
    ),
    security(("bearer" = ["read"])),
)]
fn metrics() {}

/// This document.
#[utoipa::path(
    get, path = "/openapi.json", tag = "documents", operation_id = "openapi",
    responses((status = 200, description = "The OpenAPI document", body = Object)),
    security(()),
)]
fn openapi_json() {}

/// The JSON Schema (draft 2020-12) of an event's payload, as `docs/schemas/<event>.json`.
#[utoipa::path(
    get, path = "/schemas/{event}.json", tag = "documents", operation_id = "event_schema",
    params(("event" = EventName, Path, description = "The event's name")),
    responses(
        (status = 200, description = "The schema",
            content_type = "application/schema+json", body = Object),
        (status = 401, description = "No such event, and no valid token: with tokens \
            configured, an unknown path is answered 401 without one", body = ErrorMessage,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 404, description = "No such event", body = ErrorMessage),
    ),
    security(()),
)]
fn event_schema() {}

/// Accepts an event for the namespace: validated against its payload schema, stored with a
/// delivery task for each matching active webhook, then answered (202) once durable.
#[utoipa::path(
    post, path = "/n/{owner}/{path}/-/events", tag = "intake", operation_id = "accept_event",
    params(
        Ns,
        ("X-Djinn-CI-Event" = EventName, Header, description = "The event's name"),
        ("Idempotency-Key" = Option<String>, Header, description = "1 to 255 printable ASCII \
            characters: a retry with the same key and event is answered as the first request \
            was, and stores nothing"),
    ),
    request_body(content = EventPayload, content_type = "application/json",
        description = "The event's payload (`components/schemas/<event>`)"),
    responses(
        (status = 202, description = "Stored (or, with `Idempotent-Replayed: true`, stored \
            before under this idempotency key); `matched` webhooks will get it",
            body = AcceptedJson),
        (status = 409, description = "The idempotency key was used for another event",
            body = ErrorMessage),
        (status = 400, description = "A missing or unknown event header, malformed JSON, or \
            a payload that is not the event's", body = BadRequest),
        (status = 401, description = "No valid token", body = ErrorMessage,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "The token may not post events to this namespace",
            body = ErrorMessage),
        (status = 404, description = "No such namespace (it comes into being with its first \
            webhook)", body = ErrorMessage),
        (status = 413, description = "The body is over the size limit", body = ErrorMessage),
    ),
    security(("bearer" = ["intake"])),
)]
fn accept_event() {}

/// Accepts many events at once, all or none, in one transaction; an answer per event in
/// order. An invalid item refuses the whole batch, each problem named by its item's index.
#[utoipa::path(
    post, path = "/n/{owner}/{path}/-/events/batch", tag = "intake",
    operation_id = "accept_batch",
    params(Ns),
    request_body(content = Vec<BatchItem>, content_type = "application/json"),
    responses(
        (status = 202, description = "Every event stored, answers in order",
            body = BatchAcceptedJson),
        (status = 400, description = "Malformed JSON, or items that are invalid (each named \
            by index and field); nothing stored", body = BadRequest),
        (status = 401, description = "No valid token", body = ErrorMessage,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "The token may not post events to this namespace",
            body = ErrorMessage),
        (status = 404, description = "No such namespace", body = ErrorMessage),
        (status = 409, description = "An item's idempotency key was used for another event",
            body = ErrorMessage),
        (status = 413, description = "Too many items, or the body or an item over its limit",
            body = ErrorMessage),
    ),
    security(("bearer" = ["intake"])),
)]
fn accept_batch() {}

/// The namespace's webhooks.
#[utoipa::path(
    get, path = "/n/{owner}/{path}/-/webhooks", tag = "webhooks",
    operation_id = "list_webhooks",
    params(Ns),
    responses(
        (status = 200, description = "Every webhook of the namespace", body = Vec<WebhookJson>),
        (status = 401, description = "No valid token", body = ErrorMessage,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "The token may not read this namespace",
            body = ErrorMessage),
        (status = 404, description = "No such namespace", body = ErrorMessage),
    ),
    security(("bearer" = ["read"])),
)]
fn list_webhooks() {}

/// Creates a webhook (and the namespace, with its first webhook).
#[utoipa::path(
    post, path = "/n/{owner}/{path}/-/webhooks", tag = "webhooks",
    operation_id = "create_webhook",
    params(Ns),
    request_body(content = CreateWebhook, content_type = "application/json"),
    responses(
        (status = 201, description = "Created", body = WebhookJson,
            headers(("Location" = String, description = "The webhook's URL"))),
        (status = 400, description = "Malformed JSON or an invalid field", body = BadRequest),
        (status = 401, description = "No valid token", body = ErrorMessage,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "The token may not change this namespace",
            body = ErrorMessage),
        (status = 404, description = "A namespace path no namespace can have (a blank \
            segment, an encoded `/`)", body = ErrorMessage),
        (status = 413, description = "The body is over the size limit", body = ErrorMessage),
    ),
    security(("bearer" = ["write"])),
)]
fn create_webhook() {}

/// One webhook.
#[utoipa::path(
    get, path = "/n/{owner}/{path}/-/webhooks/{id}", tag = "webhooks",
    operation_id = "show_webhook",
    params(Ns, HookId),
    responses(
        (status = 200, description = "The webhook", body = WebhookJson),
        (status = 401, description = "No valid token", body = ErrorMessage,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "The token may not read this namespace",
            body = ErrorMessage),
        (status = 404, description = "No such webhook in this namespace", body = ErrorMessage),
    ),
    security(("bearer" = ["read"])),
)]
fn show_webhook() {}

/// Changes a webhook: absent fields stay as they are.
#[utoipa::path(
    patch, path = "/n/{owner}/{path}/-/webhooks/{id}", tag = "webhooks",
    operation_id = "update_webhook",
    params(Ns, HookId),
    request_body(content = UpdateWebhook, content_type = "application/json"),
    responses(
        (status = 200, description = "The webhook as changed", body = WebhookJson),
        (status = 400, description = "Malformed JSON or an invalid field", body = BadRequest),
        (status = 401, description = "No valid token", body = ErrorMessage,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "The token may not change this namespace",
            body = ErrorMessage),
        (status = 404, description = "No such webhook in this namespace", body = ErrorMessage),
        (status = 413, description = "The body is over the size limit", body = ErrorMessage),
    ),
    security(("bearer" = ["write"])),
)]
fn update_webhook() {}

/// Deletes a webhook and its deliveries.
#[utoipa::path(
    delete, path = "/n/{owner}/{path}/-/webhooks/{id}", tag = "webhooks",
    operation_id = "delete_webhook",
    params(Ns, HookId),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No valid token", body = ErrorMessage,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "The token may not change this namespace",
            body = ErrorMessage),
        (status = 404, description = "No such webhook in this namespace", body = ErrorMessage),
    ),
    security(("bearer" = ["write"])),
)]
fn delete_webhook() {}

/// Rotates the webhook's secret; the previous one still signs for `overlap_seconds`.
#[utoipa::path(
    post, path = "/n/{owner}/{path}/-/webhooks/{id}/rotate-secret", tag = "webhooks",
    operation_id = "rotate_secret",
    params(Ns, HookId),
    request_body(content = Option<RotateSecret>, content_type = "application/json",
        description = "Optional: an empty body takes the defaults"),
    responses(
        (status = 200, description = "Rotated; `generated_secret` when one was generated \
            (shown this once)", body = RotatedJson,
            headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 400, description = "Malformed JSON or an invalid field", body = BadRequest),
        (status = 401, description = "No valid token", body = ErrorMessage,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "The token may not change this namespace",
            body = ErrorMessage),
        (status = 404, description = "No such webhook in this namespace", body = ErrorMessage),
        (status = 413, description = "The body is over the size limit", body = ErrorMessage),
    ),
    security(("bearer" = ["write"])),
)]
fn rotate_secret() {}

/// The webhook's deliveries, newest first, 25 a page.
#[utoipa::path(
    get, path = "/n/{owner}/{path}/-/webhooks/{id}/deliveries", tag = "deliveries",
    operation_id = "list_deliveries",
    params(Ns, HookId, DeliveriesQuery),
    responses(
        (status = 200, description = "A page of deliveries", body = Vec<DeliveryJson>,
            headers(("Link" = String, description = "The `prev` and `next` pages, if any"))),
        (status = 400, description = "A bad `page` or `test`", body = BadRequest),
        (status = 401, description = "No valid token", body = ErrorMessage,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "The token may not read this namespace",
            body = ErrorMessage),
        (status = 404, description = "No such webhook in this namespace", body = ErrorMessage),
    ),
    security(("bearer" = ["read"])),
)]
fn list_deliveries() {}

/// One delivery in full: the request sent and the response received, as recorded.
#[utoipa::path(
    get, path = "/n/{owner}/{path}/-/webhooks/{id}/deliveries/{delivery_id}",
    tag = "deliveries", operation_id = "show_delivery",
    params(Ns, HookId, DeliveryId),
    responses(
        (status = 200, description = "The delivery", body = DeliveryFullJson),
        (status = 401, description = "No valid token", body = ErrorMessage,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "The token may not read this namespace",
            body = ErrorMessage),
        (status = 404, description = "No such webhook or delivery", body = ErrorMessage),
    ),
    security(("bearer" = ["read"])),
)]
fn show_delivery() {}

/// Queues the recorded request again (same event id, flagged as a redelivery).
#[utoipa::path(
    post, path = "/n/{owner}/{path}/-/webhooks/{id}/deliveries/{delivery_id}/redeliver",
    tag = "deliveries", operation_id = "redeliver",
    params(Ns, HookId, DeliveryId),
    responses(
        (status = 202, description = "Queued", body = RedeliveryJson),
        (status = 401, description = "No valid token", body = ErrorMessage,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "The token may not change this namespace",
            body = ErrorMessage),
        (status = 404, description = "No such webhook or delivery", body = ErrorMessage),
        (status = 409, description = "The webhook is inactive", body = ErrorMessage),
        (status = 413, description = "The body is over the size limit", body = ErrorMessage),
    ),
    security(("bearer" = ["write"])),
)]
fn redeliver() {}

/// Queues again, each once, the events of the webhook's deliveries in a time range (by default
/// only those whose last delivery failed); run twice, the second run queues nothing.
#[utoipa::path(
    post, path = "/n/{owner}/{path}/-/webhooks/{id}/recover",
    tag = "deliveries", operation_id = "recover",
    params(Ns, HookId),
    request_body(content = Recover, content_type = "application/json"),
    responses(
        (status = 202, description = "Queued; how many", body = RecoveredJson),
        (status = 400, description = "Malformed JSON or an invalid field", body = BadRequest),
        (status = 401, description = "No valid token", body = ErrorMessage,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "The token may not change this namespace",
            body = ErrorMessage),
        (status = 404, description = "No such webhook in this namespace", body = ErrorMessage),
        (status = 409, description = "The webhook is inactive", body = ErrorMessage),
        (status = 413, description = "The body is over the size limit", body = ErrorMessage),
    ),
    security(("bearer" = ["write"])),
)]
fn recover() {}
