//! The event payloads in the document: each event's JSON Schema (the payload crate's, made by
//! schemars) under `components/schemas/<event name>`, the entities it nests beside it, and the
//! intake's body (`EventPayload`) as any one of them.

use djinn_hook_payload::{EventType, event_schema};
use serde_json::{Map, Value, json};

/// The component the intake's request body names; filled in here.
pub(super) const EVENT_PAYLOAD: &str = "EventPayload";

/// Adds every event's schema to `document`'s components, and makes `EventPayload` any of them.
///
/// Panics if a nested entity's name is already a component of the API with another schema
/// (the test of the document catches it).
pub(super) fn add_event_schemas(document: &mut Value) {
    let schemas = document
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
        .expect("the document has component schemas");
    let mut any_of = Vec::new();
    for event in EventType::ALL {
        let mut schema = event_schema(event);
        rewrite_refs(&mut schema);
        let object = schema.as_object_mut().expect("a schema is an object");
        object.remove("$schema");
        if let Some(Value::Object(defs)) = object.remove("$defs") {
            for (name, def) in defs {
                add(schemas, name, def);
            }
        }
        add(schemas, event.name().to_owned(), schema);
        any_of.push(json!({ "$ref": format!("#/components/schemas/{}", event.name()) }));
    }
    schemas.insert(
        EVENT_PAYLOAD.to_owned(),
        json!({
            "description": "The payload of the event named in `X-Djinn-CI-Event`: the schema \
                of that event (`components/schemas/<event>`, also served at \
                `/schemas/<event>.json`).",
            "anyOf": any_of,
        }),
    );
}

/// Adds `schema` as component `name`, which must be new or hold the same schema.
fn add(schemas: &mut Map<String, Value>, name: String, schema: Value) {
    if let Some(existing) = schemas.get(&name) {
        assert_eq!(
            existing, &schema,
            "two different schemas are named {name:?} in the OpenAPI document"
        );
    }
    schemas.insert(name, schema);
}

/// Points every `#/$defs/X` reference at `#/components/schemas/X`.
fn rewrite_refs(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                match value {
                    Value::String(target) if key == "$ref" => {
                        if let Some(name) = target.strip_prefix("#/$defs/") {
                            *target = format!("#/components/schemas/{name}");
                        }
                    }
                    _ => rewrite_refs(value),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_refs),
        _ => {}
    }
}
