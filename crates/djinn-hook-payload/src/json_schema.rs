//! The JSON Schema (draft 2020-12) of each event's payload, derived from the payload types by
//! schemars (the `json-schema` feature): what `docs/schemas/<event>.json` holds and the server
//! serves at `/schemas/<event>.json`.
//!
//! The schema says what [`Payload::parse`](crate::Payload::parse) reads: the keys it requires,
//! their types, the wire names of each enum, nullable keys as `null` allowed, and any other key
//! allowed (unknown fields are kept). What it cannot say are the few rules of
//! [`Payload::validate`](crate::Payload::validate) that tie fields together (a finished build
//! has a final status, ...): a body the schema accepts may still be refused for one of those.

use schemars::{JsonSchema, Schema, SchemaGenerator, generate::SchemaSettings, json_schema};
use serde_json::{Map, Value, json};

use crate::entity::Build;
use crate::event::EventType;
use crate::notification::Notification;
use crate::payload::{
    BuildTagged, CronChange, ImageChange, InviteAnswered, InviteSent, KeyChange, NamespaceChange,
    ObjectChange, VariableChange,
};

/// An RFC 3339 timestamp as the payloads write it (`time`'s parser reads it).
pub(crate) struct Timestamp;

impl JsonSchema for Timestamp {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Timestamp".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "format": "date-time",
            "description": "An RFC 3339 timestamp, e.g. 2021-10-06T18:14:33Z."
        })
    }
}

/// An RFC 3339 timestamp or `null`. (`Option<Timestamp>` would lose the `null` through
/// schemars' `with`.)
pub(crate) struct TimestampOrNull;

impl JsonSchema for TimestampOrNull {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "TimestampOrNull".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": ["string", "null"],
            "format": "date-time",
            "description": "An RFC 3339 timestamp, or null."
        })
    }
}

/// The JSON Schema of `event`'s payload: a draft 2020-12 schema object whose `title` is the
/// event's name and whose `$ref` names its payload type among the `$defs` (each type the
/// payload nests is one of them, so a document gathering several events' schemas can take
/// their `$defs` as they are).
pub fn event_schema(event: EventType) -> Value {
    let mut value = match event {
        EventType::BuildSubmitted
        | EventType::BuildStarted
        | EventType::BuildFinished
        | EventType::BuildPinned
        | EventType::BuildUnpinned => schema_of::<Build>(),
        EventType::BuildTagged => schema_of::<BuildTagged>(),
        EventType::InviteSent => schema_of::<InviteSent>(),
        EventType::InviteAccepted | EventType::InviteRejected => schema_of::<InviteAnswered>(),
        EventType::Namespaces => schema_of::<NamespaceChange>(),
        EventType::Cron => schema_of::<CronChange>(),
        EventType::Images => schema_of::<ImageChange>(),
        EventType::Objects => schema_of::<ObjectChange>(),
        EventType::Variables => schema_of::<VariableChange>(),
        EventType::SshKeys => schema_of::<KeyChange>(),
        EventType::Notification => schema_of::<Notification>(),
    };
    value["title"] = Value::from(event.name());
    value["description"] = Value::from(event.description());
    value
}

/// `T`'s schema with `T` itself among the `$defs` and the root a `$ref` to it: schemars
/// writes a type that nests itself (a build's namespace's build) as a reference to the root,
/// `#`, which would mean another thing once the root is an event's.
fn schema_of<T: JsonSchema>() -> Value {
    let generator = SchemaSettings::draft2020_12().into_generator();
    let Value::Object(mut root) = generator.into_root_schema_for::<T>().to_value() else {
        unreachable!("a schema of a struct is an object")
    };
    let name = T::schema_name();
    let target = format!("#/$defs/{name}");
    let mut defs = match root.remove("$defs") {
        Some(Value::Object(defs)) => defs,
        _ => Map::new(),
    };
    let dialect = root.remove("$schema").unwrap_or(Value::Null);
    root.remove("title"); // schemars titles the root only: as a def it is like the others
    defs.insert(name.into_owned(), Value::Object(root));
    let mut defs = Value::Object(defs);
    point_root_refs_at(&mut defs, &target);
    json!({ "$schema": dialect, "$ref": target, "$defs": defs })
}

/// Replaces every `{"$ref": "#"}` target under `value` by `target`.
fn point_root_refs_at(value: &mut Value, target: &str) {
    match value {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                match value {
                    Value::String(to) if key == "$ref" && to == "#" => *to = target.to_owned(),
                    _ => point_root_refs_at(value, target),
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| point_root_refs_at(item, target)),
        _ => {}
    }
}
