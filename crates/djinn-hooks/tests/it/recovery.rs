//! Custom headers and bulk recovery from the command line, end to end on a loopback receiver:
//! the header arrives and the log shows it masked; a recovery queues each failed event once
//! even run twice; piped, none of `redeliver --hook`, `prune` or `worker` prints progress.

use std::time::Duration;

use djinn_hook_payload::EventType;
use djinn_hook_server::Receiver;
use djinn_hook_sign::Secret;
use serde_json::Value;

use crate::{Env, Run};

const NS: &str = "alice/ci";
const SECRET: &str = "recovery-secret";
const KEY: &str = "k3y-plaintext-91b0f4";

/// Emits `event` with its example payload; its event id.
fn emit(env: &Env, event: EventType) -> String {
    let example = env.run(&["example", event.name()], None).ok().to_owned();
    let run = env.run(
        &["--json", "emit", event.name(), "--namespace", NS],
        Some(example.as_bytes()),
    );
    let accepted: Value = serde_json::from_str(run.ok()).unwrap();
    accepted["event_id"].as_str().unwrap().to_owned()
}

/// Nothing a terminal would draw: no carriage return, no escape sequence.
#[track_caller]
fn no_progress_noise(run: &Run) {
    for text in [&run.stdout, &run.stderr] {
        assert!(!text.contains('\r') && !text.contains('\u{1b}'), "{run:#?}");
    }
}

fn custom_headers_reach_the_receiver_and_the_log_shows_them_masked(env: &Env) {
    let receiver = Receiver::start("127.0.0.1:0", Secret::new(SECRET)).unwrap();
    let header = format!("X-Api-Key: {KEY}");
    let id = env.create_hook(
        NS,
        &receiver.url(),
        &["--secret", SECRET, "--header", &header],
    );
    let shown = env.run(&["--json", "hook", "show", &id], None);
    let hook: Value = serde_json::from_str(shown.ok()).unwrap();
    assert_eq!(hook["headers"], serde_json::json!({"X-Api-Key": "***"}));
    let text = env.run(&["hook", "show", &id], None);
    assert!(text.ok().contains("X-Api-Key: ***"), "{text:?}");
    assert!(!text.stdout.contains(KEY));

    emit(env, EventType::BuildFinished);
    let worker = env.run(&["worker", "--until-idle", "--allow-private-network"], None);
    worker.ok();
    assert!(
        !worker.stderr.contains(KEY),
        "the log never shows the value"
    );
    let got = receiver.next_timeout(Duration::from_secs(5)).unwrap();
    assert!(got.signature_valid);
    assert_eq!(got.header("x-api-key"), Some(KEY));

    let show = env.run(&["--json", "deliveries", "show", "1"], None);
    assert!(!show.ok().contains(KEY), "{show:?}");
    let delivery: Value = serde_json::from_str(&show.stdout).unwrap();
    let recorded = delivery["request"]["headers"].to_string();
    assert!(recorded.contains(r#"["X-Api-Key","***"]"#), "{recorded}");

    // Another header added, the first kept; then the first removed.
    env.run(&["hook", "update", &id, "--header", "X-Tenant: acme"], None)
        .ok();
    emit(env, EventType::BuildFinished);
    env.run(&["worker", "--until-idle", "--allow-private-network"], None)
        .ok();
    let got = receiver.next_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(got.header("x-api-key"), Some(KEY));
    assert_eq!(got.header("x-tenant"), Some("acme"));
    let updated = env.run(
        &[
            "--json",
            "hook",
            "update",
            &id,
            "--remove-header",
            "x-api-key",
        ],
        None,
    );
    let hook: Value = serde_json::from_str(updated.ok()).unwrap();
    assert_eq!(hook["headers"], serde_json::json!({"X-Tenant": "***"}));

    // A header the delivery sets is refused, named; so is a removal of a header not there.
    let refused = env.run(
        &["hook", "update", &id, "--header", "Host: evil.example"],
        None,
    );
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(refused.stderr.contains("Host"), "{refused:?}");
    let missing = env.run(&["hook", "update", &id, "--remove-header", "X-Nope"], None);
    assert_eq!(missing.code, 2, "{missing:?}");
    assert!(missing.stderr.contains("X-Nope"), "{missing:?}");
}

fn a_bulk_redelivery_queues_each_failed_event_once_and_piped_shows_no_progress(env: &Env) {
    // An outage: the receiver's port refuses, three events fail their attempts.
    let down = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down_url = format!("http://{}/hook", down.local_addr().unwrap());
    drop(down);
    let id = env.create_hook(NS, &down_url, &["--secret", SECRET]);
    let sent: Vec<String> = [
        EventType::BuildSubmitted,
        EventType::BuildStarted,
        EventType::Cron,
    ]
    .into_iter()
    .map(|event| emit(env, event))
    .collect();
    let worker = env.run(&["worker", "--until-idle", "--allow-private-network"], None);
    worker.ok();
    no_progress_noise(&worker);
    // The operator turns the webhook off (its waiting retries fail), fixes it, turns it on.
    env.run(&["hook", "update", &id, "--inactive"], None).ok();
    let receiver = Receiver::start("127.0.0.1:0", Secret::new(SECRET)).unwrap();
    env.run(
        &["hook", "update", &id, "--active", "--url", &receiver.url()],
        None,
    )
    .ok();

    let recover = ["redeliver", "--hook", &id, "--failed", "--since", "1h"];
    let first = env.run(&recover, None);
    assert!(
        first.ok().starts_with("3 deliveries of webhook"),
        "{first:?}"
    );
    no_progress_noise(&first);
    assert_eq!(first.stderr, "");
    // Run twice: nothing more is queued.
    let mut json = vec!["--json"];
    json.extend_from_slice(&recover);
    let second: Value = serde_json::from_str(env.run(&json, None).ok()).unwrap();
    assert_eq!(second, serde_json::json!({"queued": 0}));

    env.run(&["worker", "--until-idle", "--allow-private-network"], None)
        .ok();
    let mut got: Vec<String> = receiver
        .drain()
        .iter()
        .map(|r| r.delivery().unwrap().to_owned())
        .collect();
    got.sort();
    let mut want = sent.clone();
    want.sort();
    assert_eq!(got, want, "each event once, with its event id");
    let third = env.run(&json, None);
    assert_eq!(
        serde_json::from_str::<Value>(third.ok()).unwrap()["queued"],
        0
    );

    // Bad ranges are usage errors naming the flag.
    let bad = env.run(&["redeliver", "--hook", &id, "--since", "yesterday"], None);
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(bad.stderr.contains("--since"), "{bad:?}");
    let no_since = env.run(&["redeliver", "--hook", &id], None);
    assert_eq!(no_since.code, 2, "{no_since:?}");

    let prune = env.run(&["prune", "--older-than", "0s"], None);
    prune.ok();
    no_progress_noise(&prune);
    assert_eq!(prune.stderr, "");
}

on_both_backends!(
    custom_headers_reach_the_receiver_and_the_log_shows_them_masked,
    a_bulk_redelivery_queues_each_failed_event_once_and_piped_shows_no_progress,
);
