//! `hook test`: one example event to one webhook now, against a real receiver, recorded in the log
//! and marked as a test.

use std::time::Duration;

use djinn_hook_payload::{DEFAULT_API_SERVER, EventType, example_payload};
use djinn_hook_server::Receiver;
use djinn_hook_sign::Secret;
use djinn_hook_sign::headers;
use djinn_hook_store::{ManualClock, SecretKey, Store};
use serde_json::{Value, json};

use crate::Env;

const NS: &str = "wallace.breen/blackmesa";
const SECRET: &str = "It's a Secret to Everybody";

fn deliveries(env: &Env, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["--json", "deliveries", "list"];
    args.extend_from_slice(extra);
    let page: Value = serde_json::from_str(env.run(&args, None).ok()).unwrap();
    page["items"].as_array().unwrap().clone()
}

#[test]
fn delivers_the_example_to_that_hook_only_even_inactive_and_records_it() {
    let env = Env::new();
    let receiver = Receiver::start("127.0.0.1:0", Secret::new(SECRET)).unwrap();
    let bystander = Receiver::start("127.0.0.1:0", Secret::new(SECRET)).unwrap();
    // Inactive and not subscribed to build.finished: the user asked for it explicitly.
    let id = env.create_hook(
        NS,
        &receiver.url(),
        &[
            "--secret",
            SECRET,
            "--inactive",
            "--events",
            "build.started",
        ],
    );
    env.create_hook(NS, &bystander.url(), &["--secret", SECRET]);

    let run = env.run(
        &[
            "hook",
            "test",
            &id,
            "--event",
            "build.finished",
            "--allow-private-network",
        ],
        None,
    );
    let out = run.ok();
    assert!(
        out.starts_with("test delivery 1: build.finished to hook 1 (http://127.0.0.1:"),
        "{out}"
    );
    assert!(out.contains("\nstatus:    204\n"), "{out}");
    assert!(
        out.contains("\nrecorded:  as a test delivery: ")
            && out.contains("djinn-hooks deliveries show 1 (full request and response)\n"),
        "{out}"
    );
    assert!(!out.contains(SECRET) && !run.stderr.contains(SECRET));

    let got = receiver.drain();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].event(), Some("build.finished"));
    assert_eq!(got[0].hook_id(), Some(id.as_str()));
    assert!(got[0].signature_valid);
    let example = example_payload(EventType::BuildFinished, DEFAULT_API_SERVER).to_body();
    assert_eq!(got[0].body, example);
    assert!(bystander.drain().is_empty(), "other hooks get nothing");

    // In the log like any attempt, as the hook's last response; nothing left to deliver.
    let list = deliveries(&env, &[]);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["hook_id"].to_string(), id);
    assert_eq!(list[0]["event"], "build.finished");
    assert_eq!(list[0]["event_id"].as_str(), got[0].delivery());
    assert_eq!(list[0]["code"], 204);
    assert_eq!(list[0]["test"], true, "marked as a test");
    let table = env.run(&["deliveries", "list"], None);
    let row = table.ok().lines().nth(1).unwrap().to_owned();
    assert!(row.contains("  1 (test)  204  "), "{row}");
    let show = env.run(&["deliveries", "show", "1"], None);
    assert!(
        show.ok()
            .starts_with("delivery 1: build.finished to hook 1, attempt 1 (test)\n"),
        "{}",
        show.stdout
    );
    let hooks = env.run(&["--json", "hook", "show", &id], None);
    let hook: Value = serde_json::from_str(hooks.ok()).unwrap();
    assert_eq!(hook["last_response"]["code"], 204);
    assert_eq!(hook["active"], false, "the test leaves the hook as it was");
    assert_eq!(
        env.worker_stats(&[])["attempts"],
        0,
        "nothing left to deliver"
    );
}

#[test]
fn json_prints_the_recorded_delivery() {
    let env = Env::new();
    let receiver = Receiver::start("127.0.0.1:0", Secret::new(SECRET)).unwrap();
    let id = env.create_hook(NS, &receiver.url(), &["--secret", SECRET]);
    let run = env.run(
        &["--json", "hook", "test", &id, "--allow-private-network"],
        None,
    );
    let delivery: Value = serde_json::from_str(run.ok()).unwrap();
    assert_eq!(delivery["event"], "build.submitted", "the default event");
    assert_eq!(delivery["code"], 204);
    assert_eq!(delivery["attempt"], 1);
    assert_eq!(delivery["redelivery"], false);
    assert_eq!(delivery["request"]["body_encoding"], "utf-8");
    let signature = delivery["request"]["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h[0] == headers::SIGNATURE)
        .expect("signed");
    assert_eq!(
        signature[1].as_str(),
        receiver.drain()[0].signature(),
        "the record is what was sent"
    );
    assert_eq!(delivery["test"], true);
    // The full record, as `deliveries show --json` prints it; the list shows its summary.
    let show = env.run(&["--json", "deliveries", "show", "1"], None);
    assert_eq!(serde_json::from_str::<Value>(show.ok()).unwrap(), delivery);
    let mut summary = delivery.clone();
    for key in ["tls_verification_skipped", "request", "response"] {
        summary.as_object_mut().unwrap().remove(key);
    }
    assert_eq!(deliveries(&env, &[])[0], summary);

    // Sent again, it is still a test, and a redelivery.
    env.run(&["redeliver", "1"], None).ok();
    assert_eq!(env.worker_stats(&[])["delivered"], 1);
    let again = &deliveries(&env, &[])[0];
    assert_eq!(
        (&again["test"], &again["redelivery"]),
        (&json!(true), &json!(true))
    );
    let table = env.run(&["deliveries", "list"], None);
    let row = table.ok().lines().nth(1).unwrap().to_owned();
    assert!(row.contains("  1 (test, redelivery)  204  "), "{row}");
}

#[test]
fn deliveries_list_filters_tests_in_or_out() {
    let env = Env::new();
    let receiver = Receiver::start("127.0.0.1:0", Secret::new(SECRET)).unwrap();
    let id = env.create_hook(NS, &receiver.url(), &["--secret", SECRET]);
    env.run(&["hook", "test", &id, "--allow-private-network"], None)
        .ok();
    let example = example_payload(EventType::Cron, DEFAULT_API_SERVER).to_body();
    env.run(&["emit", "cron", "--namespace", NS], Some(&example))
        .ok();
    assert_eq!(env.worker_stats(&[])["delivered"], 1);

    // Each delivery as `event` or `event (test)`, newest first.
    let listed = |extra: &[&str]| -> Vec<String> {
        deliveries(&env, extra)
            .iter()
            .map(|d| match (d["event"].as_str().unwrap(), &d["test"]) {
                (event, Value::Bool(true)) => format!("{event} (test)"),
                (event, _) => event.to_owned(),
            })
            .collect()
    };
    assert_eq!(listed(&[]), ["cron", "build.submitted (test)"]);
    assert_eq!(listed(&["--test"]), ["build.submitted (test)"]);
    assert_eq!(listed(&["--no-test"]), ["cron"]);
    // The last of the two wins.
    assert_eq!(listed(&["--test", "--no-test"]), ["cron"]);
    assert!(listed(&["--no-test", "--test", "--failed"]).is_empty());
    let table = env.run(&["deliveries", "list", "--test"], None);
    assert_eq!(table.ok().lines().count(), 2, "a header and the test");
}

#[test]
fn a_failed_test_is_printed_recorded_exit_1_and_not_retried() {
    let env = Env::new();
    // The receiver checks another secret: it answers 401.
    let receiver = Receiver::start("127.0.0.1:0", Secret::new("another secret")).unwrap();
    let id = env.create_hook(NS, &receiver.url(), &["--secret", SECRET]);
    let run = env.run(
        &[
            "hook",
            "test",
            &id,
            "--event",
            "cron",
            "--allow-private-network",
        ],
        None,
    );
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(run.stdout.contains("\nstatus:    401\n"), "{run:#?}");
    assert!(run.stderr.contains("the test delivery failed"), "{run:#?}");
    assert_eq!(receiver.drain().len(), 1);
    assert_eq!(deliveries(&env, &["--failed"]).len(), 1);
    assert_eq!(
        env.worker_stats(&[])["attempts"],
        0,
        "a test is not retried"
    );
    assert!(receiver.drain().is_empty());

    // Without --allow-private-network the SSRF guard refuses loopback: nothing sent, recorded.
    let run = env.run(&["hook", "test", &id], None);
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(run.stdout.contains("no response (blocked)"), "{run:#?}");
    assert!(receiver.drain().is_empty());
    assert_eq!(deliveries(&env, &["--failed"]).len(), 2);
}

#[test]
fn an_unknown_hook_exits_1_and_an_unknown_event_exits_2_storing_nothing() {
    let env = Env::new();
    let run = env.run(&["hook", "test", "42"], None);
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(run.stderr.contains("42"), "names the id: {run:#?}");
    let receiver = Receiver::start("127.0.0.1:0", Secret::new(SECRET)).unwrap();
    let id = env.create_hook(NS, &receiver.url(), &[]);
    let run = env.run(&["hook", "test", &id, "--event", "build.exploded"], None);
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(run.stderr.contains("build.exploded"), "{run:#?}");
    assert!(deliveries(&env, &[]).is_empty());
    assert!(receiver.drain().is_empty());
}

/// `hook test` to webhook `id`, as recorded: the headers sent and the body. (The receiver
/// answers 401 to a signature it cannot check, and `hook test` then exits 1: the record is
/// printed all the same.)
fn test_delivery(env: &Env, id: &str) -> (Vec<(String, String)>, String) {
    let run = env.run(
        &["--json", "hook", "test", id, "--allow-private-network"],
        None,
    );
    let delivery: Value = serde_json::from_str(&run.stdout).expect(&run.stderr);
    let headers = delivery["request"]["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h[0].as_str().unwrap().to_owned(),
                h[1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    (
        headers,
        delivery["request"]["body"].as_str().unwrap().to_owned(),
    )
}

/// Whether a receiver holding `secret` accepts the delivery's `webhook-signature` and its
/// `X-Djinn-CI-Signature`.
fn accepted_with(sent: &(Vec<(String, String)>, String), secret: &str) -> (bool, bool) {
    use djinn_hook_sign::{
        DEFAULT_TOLERANCE, StandardHeaders, StandardSecret, verify, verify_standard,
    };
    let (headers, body) = sent;
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {name} in {headers:?}"))
    };
    let standard = StandardHeaders {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
    };
    let key = if secret.starts_with("whsec_") {
        StandardSecret::from_whsec(secret).unwrap()
    } else {
        StandardSecret::from_bytes(secret.as_bytes())
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    (
        verify_standard(&[key], &standard, body.as_bytes(), now, DEFAULT_TOLERANCE).is_ok(),
        verify(
            &Secret::new(secret),
            body.as_bytes(),
            header("X-Djinn-CI-Signature"),
        )
        .is_ok(),
    )
}

#[test]
fn a_rotated_secret_signs_with_both_during_the_overlap_and_the_new_one_after() {
    let env = Env::new();
    let receiver = Receiver::start("127.0.0.1:0", Secret::new("new-secret")).unwrap();
    let id = env.create_hook(
        NS,
        &receiver.url(),
        &["--secret", "old-secret", "--standard-webhooks"],
    );
    let run = env.run(
        &[
            "hook",
            "rotate-secret",
            &id,
            "--secret",
            "new-secret",
            "--overlap",
            "1h",
        ],
        None,
    );
    let out = run.ok();
    assert!(
        out.starts_with(
            "rotated the secret of webhook 1: deliveries are signed with the new and the old \
             secret until "
        ) && out.ends_with(", then with the new one only\n"),
        "{out}"
    );
    assert!(
        !out.contains("new-secret") && !out.contains("old-secret"),
        "{out}"
    );
    let show = env.run(&["hook", "show", &id], None);
    assert!(
        show.ok().contains("set, old one signed with too until "),
        "{}",
        show.stdout
    );

    // During the overlap a receiver holding either secret accepts webhook-signature; the
    // original's header is the new secret's.
    let sent = test_delivery(&env, &id);
    assert_eq!(accepted_with(&sent, "new-secret"), (true, true));
    assert_eq!(accepted_with(&sent, "old-secret"), (true, false));
    assert!(receiver.drain()[0].signature_valid);
    // The worker's deliveries too (claimed from the store, not queued by `hook test`).
    let body = example_payload(EventType::Cron, DEFAULT_API_SERVER).to_body();
    env.run(&["emit", "cron", "--namespace", NS], Some(&body))
        .ok();
    assert_eq!(env.worker_stats(&[])["delivered"], 1);
    let newest = &deliveries(&env, &[])[0];
    assert_eq!(newest["test"], false);
    let id_of = newest["id"].to_string();
    let shown: Value = serde_json::from_str(
        env.run(&["--json", "deliveries", "show", &id_of], None)
            .ok(),
    )
    .unwrap();
    let sent = (
        shown["request"]["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h[0].as_str().unwrap().to_owned(),
                    h[1].as_str().unwrap().to_owned(),
                )
            })
            .collect::<Vec<_>>(),
        shown["request"]["body"].as_str().unwrap().to_owned(),
    );
    assert_eq!(accepted_with(&sent, "new-secret"), (true, true));
    assert_eq!(accepted_with(&sent, "old-secret"), (true, false));
    receiver.drain();

    // No secret given and no overlap: a generated one, printed once, alone from now on.
    let run = env.run(
        &["--json", "hook", "rotate-secret", &id, "--overlap", "0s"],
        None,
    );
    let rotated: Value = serde_json::from_str(run.ok()).unwrap();
    let generated = rotated["generated_secret"].as_str().unwrap().to_owned();
    assert!(generated.starts_with("whsec_"), "{generated}");
    assert_eq!(rotated["secret_rotating_until"], Value::Null);
    let shown = env.run(&["--json", "hook", "show", &id], None);
    assert!(!shown.ok().contains(&generated), "never shown again");
    let sent = test_delivery(&env, &id);
    assert_eq!(accepted_with(&sent, &generated), (true, true));
    assert_eq!(accepted_with(&sent, "new-secret"), (false, false));

    // An overlap that runs out: the old secret signs no more. Time is moved, not waited for:
    // the store on a clock past the overlap hands out the new secret alone (and `hook test`
    // signs with what it is handed, as with no overlap above).
    let run = env.run(
        &[
            "--json",
            "hook",
            "rotate-secret",
            &id,
            "--secret",
            "third",
            "--overlap",
            "1s",
        ],
        None,
    );
    let rotated: Value = serde_json::from_str(run.ok()).unwrap();
    assert!(rotated["secret_rotating_until"].is_string(), "{rotated}");
    let sent = test_delivery(&env, &id);
    assert_eq!(accepted_with(&sent, "third"), (true, true));
    assert_eq!(accepted_with(&sent, &generated), (true, false));
    assert!(
        !sent
            .0
            .iter()
            .any(|(_, v)| v.contains("third") || v.contains(&generated))
    );
    let key = SecretKey::load_or_create(&SecretKey::file_beside(&env.db())).unwrap();
    let clock = std::sync::Arc::new(ManualClock::new());
    clock.advance(Duration::from_secs(2));
    let store = Store::open(env.db(), key).unwrap().with_clock(clock);
    let hook_id: i64 = id.parse().unwrap();
    let task = store
        .queue_test(
            hook_id,
            EventType::Cron,
            b"{}".to_vec(),
            Duration::from_secs(60),
        )
        .unwrap();
    assert_eq!(
        task.request.secret.as_ref().map(|s| s.expose()),
        Some("third")
    );
    assert!(task.request.previous_secret.is_none(), "the overlap ended");
    drop(store);

    // Bad input exits 2 naming it; an unknown webhook 1.
    let run = env.run(&["hook", "rotate-secret", &id, "--overlap", "8d"], None);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("--overlap: must be at most 7d, is 8days"),
        "{}",
        run.stderr
    );
    let run = env.run(&["hook", "rotate-secret", &id, "--overlap", "soon"], None);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--overlap"), "{}", run.stderr);
    let run = env.run(&["hook", "rotate-secret", "42"], None);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("webhook 42 not found"),
        "{}",
        run.stderr
    );
}
