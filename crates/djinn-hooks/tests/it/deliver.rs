//! The main path end to end: create a hook, emit all 15 events, run the worker, look at deliveries,
//! redeliver.

use std::time::Duration;

use djinn_hook_payload::{EventType, Payload};
use djinn_hook_server::{Received, Receiver};
use djinn_hook_sign::Secret;
use serde_json::Value;

use crate::Env;

const NS: &str = "wallace.breen/blackmesa";
const SECRET: &str = "It's a Secret to Everybody";

/// Starts a receiver and creates a webhook for it; returns both and the hook id.
fn hook_for_receiver(env: &Env) -> (Receiver, String) {
    let receiver = Receiver::start("127.0.0.1:0", Secret::new(SECRET)).unwrap();
    let id = env.create_hook(NS, &receiver.url(), &["--secret", SECRET]);
    (receiver, id)
}

/// Emits `event` with its example payload; returns the event id printed.
fn emit_example(env: &Env, event: EventType) -> String {
    let example = env.run(&["example", event.name()], None);
    let example = example.ok().as_bytes().to_vec();
    let run = env.run(
        &["--json", "emit", event.name(), "--namespace", NS],
        Some(&example),
    );
    let accepted: Value = serde_json::from_str(run.ok()).unwrap();
    assert_eq!(accepted["matched"], 1, "{accepted}");
    assert_eq!(accepted["event"], event.name());
    accepted["event_id"].as_str().unwrap().to_owned()
}

/// A port on 127.0.0.1 with nothing listening (bound, noted, closed), and a hook URL on it.
fn closed_port() -> (u16, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    (port, format!("http://127.0.0.1:{port}/hook"))
}

fn worker(env: &Env) -> String {
    let run = env.run(&["worker", "--until-idle", "--allow-private-network"], None);
    run.ok();
    run.stderr
}

fn deliveries(env: &Env, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["--json", "deliveries", "list"];
    args.extend_from_slice(extra);
    let run = env.run(&args, None);
    let page: Value = serde_json::from_str(run.ok()).unwrap();
    page["items"].as_array().unwrap().clone()
}

#[test]
fn all_15_events_reach_a_receiver_signed_with_the_exact_headers() {
    let env = Env::new();
    let (receiver, hook_id) = hook_for_receiver(&env);
    let ids: Vec<(EventType, String)> = EventType::ALL
        .iter()
        .map(|&event| (event, emit_example(&env, event)))
        .collect();

    let log = worker(&env);
    assert_eq!(
        log.lines().filter(|l| l.contains("msg=delivery ")).count(),
        15,
        "{log}"
    );
    assert!(
        !log.contains(SECRET),
        "the worker's log never shows the secret"
    );
    assert!(log.contains("worker: 15 attempts: 15 delivered"), "{log}");

    let got: Vec<Received> = receiver.drain();
    assert_eq!(got.len(), 15, "the receiver got one POST per event");
    for (event, event_id) in &ids {
        let post = got
            .iter()
            .find(|r| r.delivery() == Some(event_id))
            .unwrap_or_else(|| panic!("no POST for {event}"));
        assert_eq!(post.url, "/hook");
        assert_eq!(post.header("Accept"), Some("*/*"));
        assert_eq!(
            post.header("Content-Type"),
            Some("application/json; charset=utf-8")
        );
        assert_eq!(post.header("User-Agent"), Some("Djinn-CI-Hook"));
        assert_eq!(post.event(), Some(event.name()));
        assert_eq!(post.hook_id(), Some(hook_id.as_str()));
        assert!(post.signature_valid, "{event}: signature verifies");
        // The body is the example's exact compact bytes.
        let example = Payload::parse(
            *event,
            env.run(&["example", event.name()], None).ok().as_bytes(),
        )
        .unwrap()
        .to_body();
        assert_eq!(post.body, example, "{event}: body");
        // And the binary's own `verify` agrees with the receiver.
        let verify = env.run(
            &[
                "verify",
                "--secret",
                SECRET,
                "--signature",
                post.signature().unwrap(),
            ],
            Some(&post.body),
        );
        assert_eq!(verify.code, 0, "{verify:?}");
    }

    let list = deliveries(&env, &[]);
    assert_eq!(list.len(), 15);
    for d in &list {
        assert_eq!(d["code"], 204);
        assert_eq!(d["hook_id"].to_string(), hook_id);
        assert_eq!(d["redelivery"], false);
        assert!(
            !d.to_string().contains(SECRET),
            "the delivery log never holds the secret"
        );
    }
    let table = env.run(&["deliveries", "list"], None);
    assert_eq!(table.ok().lines().count(), 16, "a header and 15 rows");
}

#[test]
fn redeliver_sends_the_recorded_body_again_with_the_same_event_id() {
    let env = Env::new();
    let (receiver, _) = hook_for_receiver(&env);
    let event_id = emit_example(&env, EventType::BuildFinished);
    worker(&env);
    let first = receiver.next_timeout(Duration::from_secs(5)).unwrap();
    let delivery = deliveries(&env, &["--event", &event_id])[0]["id"].to_string();

    let run = env.run(&["redeliver", &delivery], None);
    assert!(run.ok().contains("queued again"), "{run:?}");
    worker(&env);
    let again = receiver.next_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(again.delivery(), Some(event_id.as_str()));
    assert_eq!(again.body, first.body);
    assert!(again.signature_valid);
    let list = deliveries(&env, &["--event", &event_id]);
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["redelivery"], true, "newest first, flagged");
}

#[test]
fn a_failing_receiver_is_retried_and_listed_as_failed() {
    let env = Env::new();
    let (_, url) = closed_port();
    env.run(&["hook", "create", "--namespace", NS, "--url", &url], None)
        .ok();
    emit_example(&env, EventType::Cron);
    let log = worker(&env);
    // The first retry is immediate, the next one 5 s later: two attempts, then idle.
    assert_eq!(
        log.lines()
            .filter(|l| l.contains("result=connect_refused"))
            .count(),
        2,
        "{log}"
    );
    let failed = deliveries(&env, &["--failed"]);
    assert_eq!(failed.len(), 2);
    assert!(failed[0]["error"].as_str().unwrap().contains("refused"));
    // The attempt's result is stored, listed and shown.
    assert_eq!(failed[0]["result"], "connect_refused");
    let id = failed[0]["id"].to_string();
    let show = env.run(&["deliveries", "show", &id], None);
    assert!(
        show.ok()
            .contains("result:    connect_refused (connection refused"),
        "{show:?}"
    );
    let table = env.run(&["deliveries", "list", "--failed"], None);
    assert_eq!(
        table.ok().matches(" connect_refused").count(),
        2,
        "{table:?}"
    );
    let list = env.run(&["hook", "list"], None);
    assert!(list.ok().contains("no response"), "{list:?}");
}

#[test]
fn without_allow_private_network_loopback_is_refused() {
    let env = Env::new();
    let (receiver, _) = hook_for_receiver(&env);
    emit_example(&env, EventType::Cron);
    let run = env.run(&["worker", "--until-idle"], None);
    run.ok();
    assert!(run.stderr.contains("result=blocked"), "{}", run.stderr);
    assert!(receiver.drain().is_empty(), "nothing reached the receiver");
}

#[test]
fn a_running_worker_stops_on_sigterm_after_recording_what_it_sent() {
    let env = Env::new();
    let (receiver, _) = hook_for_receiver(&env);
    let child = env
        .command(&["worker", "--allow-private-network", "--concurrency", "4"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    for event in [EventType::Cron, EventType::Images, EventType::Objects] {
        emit_example(&env, event);
    }
    // The running worker polls the outbox and delivers all three.
    let mut got = Vec::new();
    while got.len() < 3 {
        let post = receiver.next_timeout(Duration::from_secs(10));
        got.push(post.expect("the running worker delivers"));
    }
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let run = crate::Run::from(child.wait_with_output().unwrap());
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(
        run.stderr.contains("3 attempts: 3 delivered"),
        "{}",
        run.stderr
    );
    assert_eq!(deliveries(&env, &[]).len(), 3, "every POST is recorded");
}

/// Bursts of new keep-alive connections (a fresh worker at concurrency 8, then 16, three times
/// each) are all served at once: a queued connection would stall a delivery until the sender's
/// 30 s timeout.
#[test]
fn bursts_of_connections_at_concurrency_8_and_16_never_stall() {
    let env = Env::new();
    let (receiver, _) = hook_for_receiver(&env);
    let key = std::fs::read(env.path("hooks.db.key")).unwrap();
    let store = djinn_hook_store::Store::open(
        env.db(),
        djinn_hook_store::SecretKey::from_bytes(key.try_into().unwrap()),
    )
    .unwrap();
    for concurrency in ["8", "16", "8", "16", "8", "16"] {
        let events = EventType::ALL
            .iter()
            .cycle()
            .take(64)
            .map(|&event| {
                djinn_hook_store::NewEvent::new(
                    NS,
                    event,
                    djinn_hook_payload::example_payload(
                        event,
                        djinn_hook_payload::DEFAULT_API_SERVER,
                    )
                    .to_body(),
                )
            })
            .collect();
        store.accept_events(events).unwrap();
        let start = std::time::Instant::now();
        let stats = env.worker_stats(&["--concurrency", concurrency]);
        let elapsed = start.elapsed();
        assert_eq!(stats["delivered"], 64, "concurrency {concurrency}: {stats}");
        assert!(
            elapsed < Duration::from_secs(10),
            "concurrency {concurrency}: {elapsed:?}"
        );
        let got = receiver.drain();
        assert_eq!(got.len(), 64);
        assert!(got.iter().all(|r| r.signature_valid));
    }
}

/// The scenario through the binary, with its defaults: 200 events for a receiver that
/// accepts connections and never answers, then 200 for a healthy one; `worker --concurrency
/// 16`. The healthy ones all arrive while the dead receiver's attempts are still waiting for
/// their 15 s timeout.
#[test]
fn a_hanging_receiver_does_not_hold_up_the_others() {
    let env = Env::new();
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}/hook", dead.local_addr().unwrap());
    // Accepts and holds every connection, never answering (the thread ends with the test).
    std::thread::spawn(move || {
        let held: Vec<_> = dead.incoming().collect();
        drop(held);
    });
    env.create_hook("dead/ns", &dead_url, &[]);
    let (receiver, _) = {
        let receiver = Receiver::start("127.0.0.1:0", Secret::new(SECRET)).unwrap();
        let id = env.create_hook("ok/ns", &receiver.url(), &["--secret", SECRET]);
        (receiver, id)
    };
    // 400 events in one transaction, through the store (400 `emit` runs take seconds).
    let key: [u8; 32] = std::fs::read(env.path("hooks.db.key"))
        .unwrap()
        .try_into()
        .unwrap();
    let store =
        djinn_hook_store::Store::open(env.db(), djinn_hook_store::SecretKey::from_bytes(key))
            .unwrap();
    let body = Payload::parse(
        EventType::BuildFinished,
        env.run(&["example", "build.finished"], None)
            .ok()
            .as_bytes(),
    )
    .unwrap()
    .to_body();
    let events = ["dead/ns", "ok/ns"]
        .into_iter()
        .flat_map(|ns| std::iter::repeat_n(ns, 200))
        .map(|ns| djinn_hook_store::NewEvent::new(ns, EventType::BuildFinished, body.clone()))
        .collect();
    store.accept_events(events).unwrap();
    drop(store);

    let mut worker = env
        .command(&["worker", "--concurrency", "16", "--allow-private-network"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut got = 0;
    while got < 200 {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if receiver.next_timeout(left).is_none() {
            break;
        }
        got += 1;
    }
    // kill -9 while the dead receiver's attempts hang: nothing accepted is lost.
    worker.kill().unwrap();
    worker.wait().unwrap();
    assert_eq!(got, 200, "healthy deliveries within 10 s");
    let store =
        djinn_hook_store::Store::open(env.db(), djinn_hook_store::SecretKey::from_bytes(key))
            .unwrap();
    let counts = store.counts().unwrap();
    assert_eq!((counts.events, counts.failed), (400, 0), "{counts:?}");
    // Every dead-receiver task is still there, with its event, once its lease has run out.
    let later = time::OffsetDateTime::now_utc() + Duration::from_secs(3_600);
    let tasks = store
        .claim_due(later, 1_000, Duration::from_secs(60))
        .unwrap();
    let dead_hook = tasks.iter().filter(|t| t.request.url == dead_url).count();
    assert_eq!(dead_hook, 200);
}

#[test]
fn a_refusing_receiver_opens_its_breaker_which_the_log_and_hook_show_report() {
    let env = Env::new();
    let (port, url) = closed_port();
    let id = env.create_hook(NS, &url, &[]);
    for _ in 0..8 {
        emit_example(&env, EventType::Cron);
    }
    // One delivery at a time, so none is still in flight when the fifth refusal opens the
    // breaker (with more, how many get attempted first is up to the scheduler).
    let run = env.run(
        &[
            "worker",
            "--until-idle",
            "--allow-private-network",
            "--concurrency",
            "1",
        ],
        None,
    );
    run.ok();
    let log = run.stderr;
    let destination = format!("http://127.0.0.1:{port}");
    assert!(
        log.lines().any(|l| l.contains("msg=\"breaker open:")
            && l.contains(&format!("destination={destination} "))
            && l.contains("reason=\"5 consecutive refused connections\"")),
        "{log}"
    );
    // Fewer attempts than tasks: the rest were put off, not attempted.
    let attempts = log.lines().filter(|l| l.contains("msg=delivery ")).count();
    assert!((5..8).contains(&attempts), "{attempts} attempts: {log}");

    let show = env.run(&["hook", "show", &id], None);
    assert!(
        show.ok()
            .contains(&format!("breaker            open for {destination} until")),
        "{show:?}"
    );
    let json: Value =
        serde_json::from_str(env.run(&["--json", "hook", "show", &id], None).ok()).unwrap();
    assert_eq!(json["breaker"]["destination"], destination.as_str());
    assert_eq!(
        json["breaker"]["reason"],
        "5 consecutive refused connections"
    );
}
