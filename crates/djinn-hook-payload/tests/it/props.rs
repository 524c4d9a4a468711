//! Property tests of `Payload::parse`, fed from outside (the CLI's `emit`, `serve`'s intake, a
//! receiver): never a panic, an error naming the event for bad input, and
//! `parse(to_body(p)) == p` for what it accepts, on arbitrary bytes, arbitrary JSON and mutated
//! examples of all 15 events.
//!
//! Cases: proptest's default (256 per property); `PROPTEST_CASES=100000 cargo test -p
//! djinn-hook-payload --test it props` runs more.

use std::sync::LazyLock;

use djinn_hook_payload::{DEFAULT_API_SERVER, EventType, Payload, example_payload};
use proptest::prelude::*;
use proptest::sample::{Index, select};
use serde_json::{Map, Number, Value};

fn event() -> impl Strategy<Value = EventType> {
    select(EventType::ALL.to_vec())
}

/// Every object key of the 15 examples: arbitrary JSON built from them reaches deep into the
/// schema instead of stopping at the first unknown key.
static KEYS: LazyLock<Vec<String>> = LazyLock::new(|| {
    fn collect(value: &Value, keys: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, value) in map {
                    keys.push(key.clone());
                    collect(value, keys);
                }
            }
            Value::Array(items) => items.iter().for_each(|v| collect(v, keys)),
            _ => {}
        }
    }
    let mut keys = Vec::new();
    for event in EventType::ALL {
        collect(&example(event), &mut keys);
    }
    keys.sort();
    keys.dedup();
    keys
});

fn example(event: EventType) -> Value {
    serde_json::from_slice(&example_payload(event, DEFAULT_API_SERVER).to_body()).unwrap()
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![select(KEYS.clone()), "[a-z_]{1,10}", ".{0,6}"]
}

/// Arbitrary JSON, with leaves shaped like the schema's (times, enum words, URLs) as well as
/// anything else.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        ".{0,12}".prop_map(Value::String),
        "-?[0-9]{1,5}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})"
            .prop_map(Value::String),
        select(vec![
            "queued", "running", "passed", "passed_with_failures", "failed", "killed",
            "timed_out", "https://ci.example.com/b/1", "",
        ])
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..8)
                .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// One change to an example: replace the value at a path, remove a key, or add one.
#[derive(Clone, Debug)]
enum Mutation {
    Replace(Index, Value),
    Remove(Index),
    Insert(Index, String, Value),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), json()).prop_map(|(at, v)| Mutation::Replace(at, v)),
        any::<Index>().prop_map(Mutation::Remove),
        (any::<Index>(), key(), json()).prop_map(|(at, k, v)| Mutation::Insert(at, k, v)),
    ]
}

fn apply(value: &mut Value, mutation: &Mutation) {
    let mut pointers = Vec::new();
    pointers_of(value, String::new(), &mut pointers);
    let pick = |at: &Index| pointers[at.index(pointers.len())].clone();
    match mutation {
        Mutation::Replace(at, new) => *value.pointer_mut(&pick(at)).unwrap() = new.clone(),
        Mutation::Remove(at) => {
            let pointer = pick(at);
            if let Some((parent, key)) = pointer.rsplit_once('/')
                && let Some(Value::Object(map)) = value.pointer_mut(parent)
            {
                map.remove(&key.replace("~1", "/").replace("~0", "~"));
            }
        }
        Mutation::Insert(at, key, new) => {
            if let Some(Value::Object(map)) = value.pointer_mut(&pick(at)) {
                map.insert(key.clone(), new.clone());
            }
        }
    }
}

/// The JSON pointer of every value in `value`, the root (`""`) first.
fn pointers_of(value: &Value, here: String, out: &mut Vec<String>) {
    out.push(here.clone());
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let key = key.replace('~', "~0").replace('/', "~1");
                pointers_of(child, format!("{here}/{key}"), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                pointers_of(child, format!("{here}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// The properties every input must have: no panic (the call returns), an error that names
/// the event, and a round trip of whatever is accepted.
fn check(event: EventType, bytes: &[u8]) -> Result<(), TestCaseError> {
    match Payload::parse(event, bytes) {
        Ok(payload) => {
            let body = payload.to_body();
            let again = Payload::parse(event, &body);
            prop_assert_eq!(again.as_ref().ok(), Some(&payload), "{:?}", again);
            prop_assert_eq!(again.unwrap().to_body(), body);
        }
        Err(error) => {
            let message = error.to_string();
            prop_assert!(
                message.starts_with(&format!("{}: ", event.name())),
                "{}",
                message
            );
        }
    }
    Ok(())
}

#[test]
fn every_example_round_trips() {
    for event in EventType::ALL {
        let payload = example_payload(event, DEFAULT_API_SERVER);
        assert_eq!(
            Payload::parse(event, &payload.to_body()).unwrap(),
            payload,
            "{event}"
        );
    }
}

/// Found by `mutated_examples`: serde_json's default float parser may be one ulp off, so a
/// relayed float changed value (`float_roundtrip` fixes it).
#[test]
fn a_float_in_an_unknown_field_keeps_its_value() {
    let mut value = example(EventType::BuildSubmitted);
    value["ratio"] = serde_json::from_str("-2.402773108613104e-257").unwrap();
    let body = serde_json::to_vec(&value).unwrap();
    let payload = Payload::parse(EventType::BuildSubmitted, &body).unwrap();
    let again: Value = serde_json::from_slice(&payload.to_body()).unwrap();
    assert_eq!(again["ratio"].to_string(), "-2.402773108613104e-257");
    check(EventType::BuildSubmitted, &body).unwrap();
}

proptest! {
    #[test]
    fn arbitrary_bytes(event in event(), bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        check(event, &bytes)?;
    }

    #[test]
    fn arbitrary_json(event in event(), value in json()) {
        check(event, &serde_json::to_vec(&value).unwrap())?;
    }

    #[test]
    fn mutated_examples(event in event(), mutations in prop::collection::vec(mutation(), 1..4)) {
        let mut value = example(event);
        for m in &mutations {
            apply(&mut value, m);
        }
        check(event, &serde_json::to_vec(&value).unwrap())?;
    }

    #[test]
    fn truncated_examples(event in event(), cut in any::<Index>()) {
        let body = example_payload(event, DEFAULT_API_SERVER).to_body();
        check(event, &body[..cut.index(body.len())])?;
    }
}
