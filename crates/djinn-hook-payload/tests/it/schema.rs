//! The static schema against what is actually serialised: at every object
//! level of every example, the keys (in order), the JSON types, nullability and
//! enum values must be those the schema documents.

use std::collections::BTreeSet;
use std::fmt;

use djinn_hook_payload::{
    DEFAULT_API_SERVER, EventType, FieldType, ObjectSchema, Payload, example_api_build,
    example_payload,
};
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A JSON value that keeps object keys in document order (serde_json's
/// `Value` sorts them), so key order can be checked too.
#[derive(Debug)]
enum Node {
    Null,
    Bool,
    Integer,
    Float,
    String(String),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NodeVisitor;

        impl<'de> Visitor<'de> for NodeVisitor {
            type Value = Node;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_unit<E>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Node, E> {
                Ok(Node::Bool)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Node, E> {
                Ok(Node::Integer)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Node, E> {
                Ok(Node::Integer)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Node, E> {
                Ok(Node::Float)
            }
            fn visit_str<E>(self, value: &str) -> Result<Node, E> {
                Ok(Node::String(value.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Node::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Node::Object(entries))
            }
        }

        deserializer.deserialize_any(NodeVisitor)
    }
}

/// Walks `node` against `schema`, recording problems and the schemas seen.
fn walk(
    schema: &'static ObjectSchema,
    node: &Node,
    path: &str,
    seen: &mut BTreeSet<&'static str>,
    problems: &mut Vec<String>,
) {
    seen.insert(schema.name);
    let Node::Object(entries) = node else {
        problems.push(format!(
            "{path}: expected a {} object, got {node:?}",
            schema.name
        ));
        return;
    };
    let keys: Vec<&str> = entries.iter().map(|(key, _)| key.as_str()).collect();
    let documented: Vec<&str> = schema.fields.iter().map(|field| field.name).collect();
    if keys != documented {
        problems.push(format!(
            "{path}: serialised keys {keys:?} differ from the {} schema's {documented:?}",
            schema.name
        ));
    }
    for (key, value) in entries {
        let here = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        let Some(field) = schema.field(key) else {
            continue;
        };
        if let Node::Null = value {
            if !field.nullable {
                problems.push(format!("{here}: null, but the schema says not nullable"));
            }
            continue;
        }
        check_type(field.ty, value, &here, seen, problems);
    }
}

fn check_type(
    ty: FieldType,
    value: &Node,
    path: &str,
    seen: &mut BTreeSet<&'static str>,
    problems: &mut Vec<String>,
) {
    let ok = match (ty, value) {
        (FieldType::Integer, Node::Integer)
        | (FieldType::Boolean, Node::Bool)
        | (FieldType::String, Node::String(_)) => true,
        (FieldType::Timestamp, Node::String(text)) => {
            let format = time::format_description::well_known::Rfc3339;
            time::OffsetDateTime::parse(text, &format).is_ok()
        }
        (FieldType::Enum(names), Node::String(text)) => names.contains(&text.as_str()),
        (FieldType::StringList, Node::Array(items)) => {
            items.iter().all(|item| matches!(item, Node::String(_)))
        }
        (FieldType::StringMap, Node::Object(entries)) => entries
            .iter()
            .all(|(_, item)| matches!(item, Node::String(_))),
        (FieldType::Object(schema), node) => {
            walk(schema, node, path, seen, problems);
            true
        }
        (FieldType::ObjectList(schema), Node::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                walk(schema, item, &format!("{path}[{i}]"), seen, problems);
            }
            true
        }
        _ => false,
    };
    if !ok {
        problems.push(format!("{path}: {value:?} is not a valid {}", ty.name()));
    }
}

fn check_payload(
    schema: &'static ObjectSchema,
    payload: &Payload,
    seen: &mut BTreeSet<&'static str>,
) {
    let node: Node = serde_json::from_slice(&payload.to_body()).unwrap();
    let mut problems = Vec::new();
    walk(schema, &node, "", seen, &mut problems);
    assert!(
        problems.is_empty(),
        "{}: {problems:#?}",
        payload.event_type()
    );
}

#[test]
fn schema_matches_what_the_examples_serialise() {
    let mut seen = BTreeSet::new();
    for event in EventType::ALL {
        let payload = example_payload(event, DEFAULT_API_SERVER);
        check_payload(event.payload_schema(), &payload, &mut seen);
    }
    let api = Payload::BuildSubmitted(example_api_build(DEFAULT_API_SERVER));
    check_payload(EventType::BuildSubmitted.payload_schema(), &api, &mut seen);

    // Every documented schema was walked at least once.
    let mut documented: BTreeSet<&str> = ObjectSchema::entities()
        .iter()
        .map(|schema| schema.name)
        .collect();
    documented.extend(
        EventType::ALL
            .iter()
            .map(|event| event.payload_schema().name),
    );
    assert_eq!(seen, documented);
}

#[test]
fn schema_names_are_unique_and_fields_described() {
    let mut schemas: Vec<&ObjectSchema> = ObjectSchema::entities().to_vec();
    schemas.extend(EventType::ALL.iter().map(|event| event.payload_schema()));
    let mut names = BTreeSet::new();
    for schema in &schemas {
        if !names.insert(schema.name) {
            // Several events share one payload schema: same object, fine.
            assert!(
                schemas
                    .iter()
                    .filter(|other| other.name == schema.name)
                    .all(|other| std::ptr::eq(*other, *schema)),
                "two different schemas named {}",
                schema.name
            );
        }
        assert!(!schema.description.is_empty() && !schema.title.is_empty());
        let mut fields = BTreeSet::new();
        for field in schema.fields {
            assert!(
                fields.insert(field.name),
                "{}: {} twice",
                schema.name,
                field.name
            );
            assert!(
                field.description.ends_with('.'),
                "{}.{}",
                schema.name,
                field.name
            );
        }
    }
    // The docs table's `ssh_key` is not what is sent.
    let keys = EventType::SshKeys.payload_schema();
    assert!(keys.field("key").is_some() && keys.field("ssh_key").is_none());
}
