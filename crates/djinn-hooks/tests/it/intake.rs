//! Intake beyond one plain event, through the built binary: `emit --idempotency-key`, `emit
//! --batch`, and two `serve` processes on one database racing with one idempotency key.

use std::sync::Barrier;

use djinn_hook_payload::{DEFAULT_API_SERVER, EventType, example_payload};
use serde_json::{Value, json};

use crate::serve::Serve;
use crate::{Env, agent};

const NS: &str = "alice/ci";

fn example(event: EventType) -> String {
    String::from_utf8(example_payload(event, DEFAULT_API_SERVER).to_body()).unwrap()
}

/// A namespace with a webhook on build.started only: cron events match nothing, so no
/// delivery is attempted while the tests count events.
fn namespace(env: &Env) {
    env.create_hook(
        NS,
        "http://127.0.0.1:9/hook",
        &["--events", "build.started"],
    );
}

fn emit_keyed(env: &Env, payload: &str, key: &str) -> crate::Run {
    env.run(
        &[
            "--json",
            "emit",
            "cron",
            "--namespace",
            NS,
            "--idempotency-key",
            key,
        ],
        Some(payload.as_bytes()),
    )
}

fn emit_with_an_idempotency_key_twice_stores_one_event(env: &Env) {
    namespace(env);
    let first: Value =
        serde_json::from_str(emit_keyed(env, &example(EventType::Cron), "k1").ok()).unwrap();
    let again: Value =
        serde_json::from_str(emit_keyed(env, &example(EventType::Cron), "k1").ok()).unwrap();
    assert_eq!(again, first);
    let text = env.run(
        &["emit", "cron", "--namespace", NS, "--idempotency-key", "k1"],
        Some(example(EventType::Cron).as_bytes()),
    );
    assert!(
        text.ok()
            .ends_with("matched (accepted before under its idempotency key: nothing new stored)\n"),
        "{text:#?}"
    );
    assert!(text.ok().contains(first["event_id"].as_str().unwrap()));
    assert_eq!(env.store().counts().unwrap().events, 1);

    let other = example(EventType::Cron).replacen(r#""id":1"#, r#""id":2"#, 1);
    assert_ne!(other, example(EventType::Cron));
    let conflict = emit_keyed(env, &other, "k1");
    assert_eq!(conflict.code, 1, "{conflict:#?}");
    assert_eq!(
        conflict.stderr.trim(),
        "djinn-hooks: idempotency key \"k1\" was already used for a different event (another \
         type or payload) in this namespace"
    );
    let bad = emit_keyed(env, &example(EventType::Cron), "");
    assert_eq!(bad.code, 2, "{bad:#?}");
    assert!(
        bad.stderr.contains("--idempotency-key: is empty"),
        "{bad:#?}"
    );
    assert_eq!(env.store().counts().unwrap().events, 1);
}

fn item(event: EventType, key: Option<&str>) -> Value {
    let mut item = json!({
        "event": event.name(),
        "payload": serde_json::from_str::<Value>(&example(event)).unwrap(),
    });
    if let Some(key) = key {
        item["idempotency_key"] = json!(key);
    }
    item
}

fn emit_batch_from_a_file_or_stdin_all_or_nothing(env: &Env) {
    namespace(env);
    let batch = json!([
        item(EventType::BuildStarted, Some("b1")),
        item(EventType::Cron, None),
        item(EventType::Images, Some("b3")),
    ])
    .to_string();
    std::fs::write(env.path("batch.json"), &batch).unwrap();
    let run = env.run(&["emit", "--namespace", NS, "--batch", "batch.json"], None);
    let lines: Vec<&str> = run.ok().lines().collect();
    assert_eq!(lines.len(), 3, "{run:#?}");
    assert!(
        lines[0].contains("(build.started) accepted: 1 webhook matched"),
        "{lines:?}"
    );
    assert!(
        lines[1].contains("(cron) accepted: 0 webhooks matched"),
        "{lines:?}"
    );
    assert!(lines[2].contains("(images) accepted"), "{lines:?}");
    assert_eq!(env.store().counts().unwrap().events, 3);

    // The same batch from stdin: the keyed items are replays, the other a new event.
    let again = env.run(
        &["--json", "emit", "--namespace", NS, "--batch", "-"],
        Some(batch.as_bytes()),
    );
    let answer: Value = serde_json::from_str(again.ok()).unwrap();
    let events = answer["events"].as_array().unwrap();
    assert_eq!(events.len(), 3);
    assert!(lines[0].contains(events[0]["event_id"].as_str().unwrap()));
    assert!(!lines[1].contains(events[1]["event_id"].as_str().unwrap()));
    assert_eq!(env.store().counts().unwrap().events, 4);

    // An invalid item: every problem named, exit 2, nothing stored.
    let bad = json!([
        item(EventType::Cron, None),
        {"event": "build.exploded", "payload": {}},
        {"event": "cron", "payload": {"action": "created"}},
    ])
    .to_string();
    let run = env.run(
        &["emit", "--namespace", NS, "--batch", "-"],
        Some(bad.as_bytes()),
    );
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(
        run.stderr.contains("invalid batch, nothing stored:"),
        "{run:#?}"
    );
    assert!(
        run.stderr
            .contains("  [1].event: unknown event \"build.exploded\""),
        "{run:#?}"
    );
    assert!(run.stderr.contains("  [2].payload"), "{run:#?}");
    // A key reused for another event: exit 1 naming the item, nothing stored.
    let conflict = json!([
        item(EventType::Cron, Some("new")),
        item(EventType::Cron, Some("b3"))
    ])
    .to_string();
    let run = env.run(
        &["emit", "--namespace", NS, "--batch", "-"],
        Some(conflict.as_bytes()),
    );
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(
        run.stderr
            .contains("[1]: idempotency key \"b3\" was already used"),
        "{run:#?}"
    );
    assert_eq!(env.store().counts().unwrap().events, 4);
    // --batch takes no event name, payload or key of its own.
    let run = env.run(
        &["emit", "cron", "--namespace", NS, "--batch", "batch.json"],
        None,
    );
    assert_eq!(run.code, 2, "{run:#?}");
}

/// Rounds of the race below (`DJINN_IDEMPOTENCY_ROUNDS`, default 50).
fn rounds() -> usize {
    std::env::var("DJINN_IDEMPOTENCY_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(50)
}

/// Two `serve` processes on one database; each round, four clients (two on each) released at
/// once by a barrier POST one event with one new key: every answer is a 202 with the same
/// event id, one of them the first (no `Idempotent-Replayed`), and one event is stored a round.
fn two_serves_racing_with_one_key_store_one_event(env: &Env) {
    namespace(env);
    let serves: Vec<Serve> = (0..2)
        .map(|_| {
            Serve::spawn(
                env.command(&["serve", "--listen", "127.0.0.1:0", "--concurrency", "1"]),
                None,
            )
        })
        .collect();
    let body = example(EventType::Cron);
    let rounds = rounds();
    for round in 0..rounds {
        let key = format!("race-{round}");
        let barrier = Barrier::new(4);
        let answers: Vec<(u16, bool, Value)> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..4)
                .map(|i| {
                    let (serve, barrier, key, body) = (&serves[i % 2], &barrier, &key, &body);
                    scope.spawn(move || {
                        let agent = agent();
                        // Connected before the barrier, so the requests leave together.
                        let _ = agent.get(format!("{}/healthz", serve.base)).call();
                        barrier.wait();
                        let mut response = agent
                            .post(format!("{}/n/{NS}/-/events", serve.base))
                            .header(djinn_hook_sign::headers::EVENT, "cron")
                            .header("Idempotency-Key", key.as_str())
                            .send(body.as_bytes())
                            .expect("the intake answers");
                        let replayed = response.headers().contains_key("idempotent-replayed");
                        let text = response.body_mut().read_to_string().unwrap();
                        (
                            response.status().as_u16(),
                            replayed,
                            serde_json::from_str(&text).unwrap_or(Value::String(text)),
                        )
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        assert!(
            answers.iter().all(|(status, _, _)| *status == 202),
            "round {round}: {answers:?}"
        );
        assert!(
            answers.iter().all(|(_, _, body)| *body == answers[0].2),
            "round {round}: one event id for all: {answers:?}"
        );
        let firsts = answers.iter().filter(|(_, replayed, _)| !replayed).count();
        assert_eq!(firsts, 1, "round {round}: {answers:?}");
    }
    assert_eq!(env.store().counts().unwrap().events, rounds as u64);
    drop(serves);
}

on_both_backends!(
    emit_with_an_idempotency_key_twice_stores_one_event,
    emit_batch_from_a_file_or_stdin_all_or_nothing,
    two_serves_racing_with_one_key_store_one_event,
);
