//! Event intake beyond one plain event: idempotency keys (`Idempotency-Key`) and batches
//! (`POST …/events/batch`), through the `Router` over a SQLite file.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use djinn_hook_payload::{DEFAULT_API_SERVER, EventType, example_payload};
use djinn_hook_server::{AppState, Config, Tokens, router};
use djinn_hook_sign::headers;
use djinn_hook_store::{NewWebhook, SecretKey, Store};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;

/// A server over a fresh SQLite file with one webhook in `alice/ci` and none in `bob/x`.
struct Server {
    app: axum::Router,
    store: Arc<Store>,
    _dir: tempfile::TempDir,
}

impl Server {
    fn new(tweak: impl FnOnce(&mut Config)) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let store =
            Store::open(dir.path().join("hooks.db"), SecretKey::from_bytes([7; 32])).unwrap();
        store.ensure_namespace("alice/ci").unwrap();
        store
            .create_webhook(NewWebhook::new("alice/ci", "https://example.com/hook"))
            .unwrap();
        store.ensure_namespace("bob/x").unwrap();
        let store = Arc::new(store);
        let mut config =
            Config::new("127.0.0.1:0", Tokens::new(Vec::<&str>::new()).unwrap()).unwrap();
        tweak(&mut config);
        let local = "127.0.0.1:8080".parse().unwrap();
        let app = router(AppState::new(&config, Arc::clone(&store), local, || {}));
        Server {
            app,
            store,
            _dir: dir,
        }
    }

    /// POSTs `body` to `path` with `headers`: the status, the headers and the body as text.
    async fn post(&self, path: &str, headers: &[(&str, &str)], body: String) -> Answer {
        let mut request = Request::post(path).header("Host", "127.0.0.1:8080");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = tokio::time::timeout(
            Duration::from_secs(10),
            self.app
                .clone()
                .oneshot(request.body(Body::from(body)).unwrap()),
        )
        .await
        .expect("answered within 10 s")
        .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            headers,
            text: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }

    /// POSTs one event of type `event` to `ns`, under idempotency key `key` if given.
    async fn event(&self, ns: &str, event: EventType, body: String, key: Option<&str>) -> Answer {
        let mut headers = vec![(headers::EVENT, event.name())];
        if let Some(key) = key {
            headers.push(("Idempotency-Key", key));
        }
        self.post(&format!("/n/{ns}/-/events"), &headers, body)
            .await
    }

    async fn batch(&self, ns: &str, body: String) -> Answer {
        self.post(&format!("/n/{ns}/-/events/batch"), &[], body)
            .await
    }

    fn events(&self) -> u64 {
        self.store.counts().unwrap().events
    }
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }
}

fn example(event: EventType) -> String {
    String::from_utf8(example_payload(event, DEFAULT_API_SERVER).to_body()).unwrap()
}

/// A payload of `event` different from its example (its entity has another id).
fn other_example(event: EventType) -> String {
    let mut value: Value = serde_json::from_str(&example(event)).unwrap();
    let entity = value
        .as_object_mut()
        .unwrap()
        .values_mut()
        .find(|v| v.get("id").is_some())
        .expect("an entity with an id");
    entity["id"] = json!(entity["id"].as_i64().unwrap() + 1000);
    value.to_string()
}

/// The same key and body answer the first answer byte for byte (202, the same event id) with
/// `Idempotent-Replayed: true`, and store nothing; the key with another body is 409 naming it.
#[tokio::test]
async fn an_idempotency_key_answers_as_the_first_time_and_another_body_is_409() {
    let server = Server::new(|_| {});
    let first = server
        .event(
            "alice/ci",
            EventType::Cron,
            example(EventType::Cron),
            Some("cron-1"),
        )
        .await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.text);
    assert_eq!(first.json()["matched"], 1);
    assert!(!first.headers.contains_key("idempotent-replayed"));
    // The same payload spaced otherwise is the same event (compared after normalisation).
    let spaced = serde_json::to_string_pretty(
        &serde_json::from_str::<Value>(&example(EventType::Cron)).unwrap(),
    )
    .unwrap();
    let again = server
        .event("alice/ci", EventType::Cron, spaced, Some("cron-1"))
        .await;
    assert_eq!(again.status, StatusCode::ACCEPTED);
    assert_eq!(again.text, first.text);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(server.events(), 1);

    let other_body = server
        .event(
            "alice/ci",
            EventType::Cron,
            other_example(EventType::Cron),
            Some("cron-1"),
        )
        .await;
    assert_eq!(other_body.status, StatusCode::CONFLICT);
    assert_eq!(
        other_body.json(),
        json!({"message": "idempotency key \"cron-1\" was already used for a different event \
                           (another type or payload) in this namespace"})
    );
    let other_type = server
        .event(
            "alice/ci",
            EventType::Images,
            example(EventType::Images),
            Some("cron-1"),
        )
        .await;
    assert_eq!(other_type.status, StatusCode::CONFLICT);
    assert_eq!(server.events(), 1);

    // Another namespace has keys of its own; no key is a new event each time.
    let bob = server
        .event(
            "bob/x",
            EventType::Cron,
            example(EventType::Cron),
            Some("cron-1"),
        )
        .await;
    assert_eq!(bob.status, StatusCode::ACCEPTED);
    assert_ne!(bob.json()["event_id"], first.json()["event_id"]);
    for _ in 0..2 {
        let plain = server
            .event("alice/ci", EventType::Cron, example(EventType::Cron), None)
            .await;
        assert_eq!(plain.status, StatusCode::ACCEPTED);
    }
    assert_eq!(server.events(), 4);
}

#[tokio::test]
async fn a_bad_idempotency_key_is_400_naming_the_header_and_stores_nothing() {
    let server = Server::new(|_| {});
    let long = "k".repeat(256);
    for (key, message) in [
        ("", "is empty"),
        (long.as_str(), "is longer than 255 characters"),
    ] {
        let answer = server
            .event(
                "alice/ci",
                EventType::Cron,
                example(EventType::Cron),
                Some(key),
            )
            .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST);
        assert_eq!(answer.json(), json!({"Idempotency-Key": [message]}));
    }
    let twice = server
        .post(
            "/n/alice/ci/-/events",
            &[
                (headers::EVENT, "cron"),
                ("Idempotency-Key", "a"),
                ("Idempotency-Key", "b"),
            ],
            example(EventType::Cron),
        )
        .await;
    assert_eq!(twice.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        twice.json(),
        json!({"Idempotency-Key": ["must be sent once, not several times"]})
    );
    assert_eq!(server.events(), 0);
}

fn item(event: EventType, payload: &str, key: Option<&str>) -> Value {
    let mut item =
        json!({"event": event.name(), "payload": serde_json::from_str::<Value>(payload).unwrap()});
    if let Some(key) = key {
        item["idempotency_key"] = json!(key);
    }
    item
}

#[tokio::test]
async fn a_batch_is_stored_whole_with_an_answer_per_event_in_order() {
    let server = Server::new(|_| {});
    let types = [
        EventType::BuildFinished,
        EventType::Cron,
        EventType::BuildStarted,
    ];
    let body = Value::Array(types.iter().map(|&t| item(t, &example(t), None)).collect());
    let answer = server.batch("alice/ci", body.to_string()).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text);
    let events = answer.json()["events"].as_array().unwrap().clone();
    let got: Vec<(&str, i64)> = events
        .iter()
        .map(|e| (e["event"].as_str().unwrap(), e["matched"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        got,
        [("build.finished", 1), ("cron", 1), ("build.started", 1)]
    );
    let mut ids: Vec<&str> = events
        .iter()
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    ids.dedup();
    assert_eq!(ids.len(), 3);
    assert_eq!(server.events(), 3);
    // Stored as a single event is: the same normalised payload.
    let tasks = server
        .store
        .claim_due(time::OffsetDateTime::now_utc(), 10, Duration::from_secs(60))
        .unwrap();
    let finished = tasks
        .iter()
        .find(|t| t.request.event == EventType::BuildFinished)
        .unwrap();
    assert_eq!(
        finished.request.body,
        example(EventType::BuildFinished).as_bytes()
    );

    let unknown = server.batch("ghost/ns", body.to_string()).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(server.events(), 3);
}

/// Refused whole, every bad item named by index and field in order, nothing stored.
#[tokio::test]
async fn a_batch_with_invalid_items_is_400_naming_each_and_stores_nothing() {
    let server = Server::new(|_| {});
    let mut bad_payload: Value = serde_json::from_str(&example(EventType::Cron)).unwrap();
    bad_payload["cron"]["id"] = json!("four");
    let mut items: Vec<Value> = (0..12)
        .map(|_| item(EventType::Cron, &example(EventType::Cron), None))
        .collect();
    items[2] = json!({"event": "build.exploded", "payload": {}});
    items[10] = json!({"event": "cron", "payload": bad_payload});
    items[11]["idempotency_key"] = json!("");
    let answer = server
        .batch("alice/ci", Value::Array(items).to_string())
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    let keys: Vec<String> = answer.json().as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys.len(), 3, "{}", answer.text);
    let unknown = answer.json()["[2].event"][0].as_str().unwrap().to_owned();
    assert!(
        unknown.starts_with("unknown event \"build.exploded\""),
        "{unknown}"
    );
    assert_eq!(
        answer.json()["[10].payload.cron.id"],
        json!(["invalid type: string \"four\", expected i64"])
    );
    assert_eq!(answer.json()["[11].idempotency_key"], json!(["is empty"]));
    // In the items' order, not a sorted one.
    let order: Vec<usize> = ["[2].event", "[10].payload.cron.id", "[11].idempotency_key"]
        .iter()
        .map(|k| answer.text.find(k).unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{}", answer.text);
    assert_eq!(server.events(), 0);

    for (body, message) in [
        ("{}", "malformed JSON: expected a JSON array of events"),
        ("[]", "the batch is empty; send at least one event"),
    ] {
        let answer = server.batch("alice/ci", body.to_owned()).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST);
        assert_eq!(answer.json(), json!({"message": message}));
    }
    assert_eq!(server.events(), 0);
}

#[tokio::test]
async fn a_batch_over_its_limits_is_413_and_stores_nothing() {
    let server = Server::new(|config| {
        config.max_batch_events = 3;
        config.max_batch_body = 64 * 1024;
        config.max_body = 4 * 1024;
    });
    let cron = || item(EventType::Cron, &example(EventType::Cron), None);
    let four = Value::Array((0..4).map(|_| cron()).collect());
    let answer = server.batch("alice/ci", four.to_string()).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        answer.json(),
        json!({"message": "a batch of 4 events; at most 3 are accepted in one request"})
    );
    let mut big = cron();
    big["payload"]["extra"] = json!("x".repeat(5000));
    let answer = server
        .batch("alice/ci", Value::Array(vec![cron(), big]).to_string())
        .await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        answer.json(),
        json!({"message": "[1].payload: larger than 4096 bytes"})
    );
    let mut huge = cron();
    huge["payload"]["extra"] = json!("x".repeat(70_000));
    let answer = server
        .batch("alice/ci", Value::Array(vec![huge]).to_string())
        .await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        answer.json(),
        json!({"message": "request body larger than 65536 bytes"})
    );
    assert_eq!(server.events(), 0);
    // Within the limits, and a single event's body limit is still --max-body.
    let three = Value::Array((0..3).map(|_| cron()).collect());
    assert_eq!(
        server.batch("alice/ci", three.to_string()).await.status,
        StatusCode::ACCEPTED
    );
    assert_eq!(server.events(), 3);
}

/// Keys are per item: a batch sent again answers the same body and stores nothing; an item
/// reusing a key for another event is 409 naming its index, and nothing of that batch is
/// stored; a key in the header is refused.
#[tokio::test]
async fn a_batch_sent_again_with_keys_answers_the_same_and_a_conflict_is_409() {
    let server = Server::new(|_| {});
    let body = Value::Array(vec![
        item(EventType::Cron, &example(EventType::Cron), Some("a")),
        item(EventType::Images, &example(EventType::Images), Some("b")),
        item(EventType::Cron, &example(EventType::Cron), None),
    ])
    .to_string();
    let first = server.batch("alice/ci", body.clone()).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.text);
    assert_eq!(server.events(), 3);
    let again = server.batch("alice/ci", body).await;
    assert_eq!(again.status, StatusCode::ACCEPTED);
    let ids = |a: &Answer| -> Vec<Value> {
        a.json()["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event_id"].clone())
            .collect()
    };
    assert_eq!(ids(&again)[..2], ids(&first)[..2]);
    assert_ne!(
        ids(&again)[2],
        ids(&first)[2],
        "the item without a key is a new event"
    );
    assert_eq!(server.events(), 4);
    // A single event with an item's key is a replay of it too.
    let single = server
        .event(
            "alice/ci",
            EventType::Cron,
            example(EventType::Cron),
            Some("a"),
        )
        .await;
    assert_eq!(single.json()["event_id"], ids(&first)[0]);

    let conflict = Value::Array(vec![
        item(EventType::Cron, &example(EventType::Cron), Some("c")),
        item(
            EventType::Images,
            &other_example(EventType::Images),
            Some("b"),
        ),
    ]);
    let answer = server.batch("alice/ci", conflict.to_string()).await;
    assert_eq!(answer.status, StatusCode::CONFLICT);
    assert_eq!(
        answer.json(),
        json!({"message": "[1]: idempotency key \"b\" was already used for a different event \
                           (another type or payload) in this namespace"})
    );
    assert_eq!(server.events(), 4);

    let header = server
        .post(
            "/n/alice/ci/-/events/batch",
            &[("Idempotency-Key", "x")],
            Value::Array(vec![item(EventType::Cron, &example(EventType::Cron), None)]).to_string(),
        )
        .await;
    assert_eq!(header.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        header.json(),
        json!({"Idempotency-Key": ["is given per event in a batch: set each item's idempotency_key"]})
    );
    assert_eq!(server.events(), 4);
}
