//! A long-running `worker` prunes by itself: on a real SQLite file holding an old and a recent
//! delivery, `worker --prune-every 100ms --prune-older-than 1h` removes the old one and keeps
//! the recent one.

use std::process::Stdio;
use std::time::Duration;

use djinn_hook_deliver::{Attempt, AttemptOutcome, Completion, Decision, Outcome, Task};
use djinn_hook_payload::{DEFAULT_API_SERVER, EventType, example_payload};
use djinn_hook_store::{NewEvent, SecretKey, Store};
use djinn_hook_testkit::wait_for_ok;
use serde_json::Value;
use time::OffsetDateTime;

use crate::Env;

const NS: &str = "prune/worker";

/// A successful attempt at `task` recorded as made at `at`.
fn attempt(task: &Task, at: OffsetDateTime) -> Attempt {
    let mut attempt = Attempt::new(&task.request, at);
    attempt.response_status = Some(204);
    attempt.outcome = AttemptOutcome::Success;
    attempt.duration = Duration::from_millis(3);
    attempt
}

fn delivery_ids(env: &Env) -> Vec<i64> {
    let page: Value =
        serde_json::from_str(env.run(&["--json", "deliveries", "list"], None).ok()).unwrap();
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_i64().unwrap())
        .collect()
}

#[test]
fn a_long_running_worker_prunes_old_deliveries_and_keeps_recent_ones() {
    let env = Env::new();
    env.create_hook(NS, "http://127.0.0.1:9/never-called", &[]);
    // Two delivered events in the file the binary uses, with the key file it made: the first
    // attempt two hours old, the second just made (ids grow with time, as in real use).
    {
        let key = SecretKey::load_or_create(&SecretKey::file_beside(&env.db())).unwrap();
        let store = Store::open(env.db(), key).unwrap();
        let now = OffsetDateTime::now_utc();
        for at in [now - Duration::from_secs(2 * 3600), now] {
            store
                .accept_event(NewEvent::new(
                    NS,
                    EventType::Cron,
                    example_payload(EventType::Cron, DEFAULT_API_SERVER).to_body(),
                ))
                .unwrap();
            let task = store
                .claim_due(OffsetDateTime::now_utc(), 1, Duration::from_secs(60))
                .unwrap()
                .remove(0);
            store
                .complete_one(&Completion::new(
                    task.task_id,
                    task.lease,
                    attempt(&task, at),
                    Decision::new(Outcome::Delivered),
                ))
                .unwrap();
        }
    }
    assert_eq!(delivery_ids(&env), [2, 1]);

    let worker = env
        .command(&[
            "worker",
            "--prune-every",
            "100ms",
            "--prune-older-than",
            "1h",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn worker");
    wait_for_ok("the first delivery pruned", || match delivery_ids(&env) {
        ids if ids == [2] => Ok(()),
        ids => Err(format!("{ids:?}")),
    });
    let status = std::process::Command::new("kill")
        .args(["-TERM", &worker.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = worker.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("worker: pruned 1 deliveries and 0 events older than 1h"),
        "{stderr}"
    );
    // Later prunes find nothing more: the recent delivery stays.
    assert_eq!(delivery_ids(&env), [2]);
}
