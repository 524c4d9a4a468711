//! Components of the document that no answer type of this crate derives: the error bodies,
//! an event's name, the intake's body (filled in by `events.rs`), and stand-ins for the store's
//! types that a webhook shows (the store knows nothing of HTTP).

use std::borrow::Cow;

use djinn_hook_payload::EventType;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

/// `{"message": …}`: every error but a validation error (`ApiError`).
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)] // only its schema is used: `Reply::message` writes it
pub(crate) struct ErrorMessage {
    /// What went wrong.
    message: String,
}

/// A validation error, `{field: [message, …]}`: each bad field (a body's JSON path, a header
/// or a query parameter) with what is wrong with it.
#[derive(Debug, utoipa::ToSchema)]
#[schema(example = json!({"payload_url": ["is required"]}))]
#[allow(dead_code)] // only its schema is used: `ApiError::Invalid` writes it
pub(crate) struct FieldErrors(std::collections::BTreeMap<String, Vec<String>>);

/// A 400: malformed JSON (`{"message": …}`) or invalid fields (`{field: [message]}`).
#[derive(Debug)]
pub(crate) struct BadRequest;

impl PartialSchema for BadRequest {
    fn schema() -> RefOr<Schema> {
        utoipa::openapi::schema::AnyOfBuilder::new()
            .item(utoipa::openapi::Ref::from_schema_name("ErrorMessage"))
            .item(utoipa::openapi::Ref::from_schema_name("FieldErrors"))
            .into()
    }
}

impl ToSchema for BadRequest {
    fn name() -> Cow<'static, str> {
        "BadRequest".into()
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push(("ErrorMessage".into(), ErrorMessage::schema()));
        schemas.push(("FieldErrors".into(), FieldErrors::schema()));
    }
}

/// An event's name, one of the 15 (`build.submitted`, …, `ssh_keys`).
#[derive(Debug)]
pub(crate) struct EventName;

impl PartialSchema for EventName {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("An event's name."))
            .enum_values(Some(EventType::ALL.iter().map(|e| e.name())))
            .into()
    }
}

impl ToSchema for EventName {
    fn name() -> Cow<'static, str> {
        "EventName".into()
    }
}

/// The body of an event: replaced in the document by any one of the events' schemas.
#[derive(Debug)]
pub(crate) struct EventPayload;

impl PartialSchema for EventPayload {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new().schema_type(Type::Object).into()
    }
}

impl ToSchema for EventPayload {
    fn name() -> Cow<'static, str> {
        super::events::EVENT_PAYLOAD.into()
    }
}

/// The open circuit breaker that holds a webhook's deliveries (the store's `BreakerHold`).
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)] // a stand-in: only its schema is used
pub(crate) struct BreakerHold {
    /// `scheme://host:port` of the receiver.
    destination: String,
    /// When the breaker lets one probe through.
    until: time::OffsetDateTime,
    /// Why it opened, e.g. `5 consecutive timeouts`.
    reason: String,
}

/// A webhook's adaptive delivery limit below its cap, or its pause (the store's `LimitHold`).
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)] // a stand-in: only its schema is used
pub(crate) struct LimitHold {
    /// Deliveries it may have under way at once (0 while paused).
    limit: u32,
    /// Why: `timeouts`, `slow answers` or `throttled`.
    reason: String,
    /// While paused after a 429 or 503, until when.
    paused_until: Option<time::OffsetDateTime>,
}

/// One event of a batch (`POST …/events/batch`).
#[derive(utoipa::ToSchema)]
#[allow(
    dead_code,
    reason = "a schema only: the server reads items in `batch.rs`"
)]
pub(crate) struct BatchItem {
    /// The event's name.
    event: EventName,
    /// The event's payload (`components/schemas/<event>`).
    payload: EventPayload,
    /// The item's idempotency key (1 to 255 printable ASCII characters).
    idempotency_key: Option<String>,
}
