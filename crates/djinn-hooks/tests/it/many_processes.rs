//! Many processes on one PostgreSQL database: 3 `worker` and 2 `serve` processes, events
//! posted through both servers, one worker killed with SIGKILL mid-run and restarted.
//!
//! Needs `DJINN_TEST_POSTGRES_URL` (a server on which it may create and drop a database);
//! without it the test says it was not run. `DJINN_MANY_PROCESS_EVENTS` sets the number of
//! events (default 2,000; the full run is 20,000).

use std::collections::{HashMap, HashSet};
use std::process::{Child, Stdio};
use std::thread;
use std::time::Duration;

use djinn_hook_payload::{DEFAULT_API_SERVER, EventType, example_payload};
use djinn_hook_testkit::wait_until;

use crate::fixtures::{Scratch, postgres_server, receiver};
use crate::{Env, agent, serve_process};

const NS: &str = "alice/ci";

/// One worker at `--concurrency 4` holds at most its claim queue (64 tasks per thread) plus
/// a batch of uncommitted completions (256): the most attempts killing it can leave unrecorded.
const MOST_LOST: usize = 4 * 64 + 256;

#[test]
fn three_workers_and_two_servers_share_one_database() {
    let Some(server) = postgres_server() else {
        return;
    };
    let events: usize = std::env::var("DJINN_MANY_PROCESS_EVENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000);
    let scratch = Scratch::create(&server);
    let env = Env::new();
    let key = env.path("hooks.key");
    let command = |args: &[&str]| {
        let mut command = env.command(args);
        command
            .env("DJINN_HOOKS_DB", &scratch.url)
            .env("DJINN_HOOKS_KEY_FILE", &key);
        command
    };
    let (receiver_url, hits) = receiver(Duration::ZERO);
    let created = command(&["hook", "create", "--namespace", NS, "--url", &receiver_url])
        .output()
        .unwrap();
    assert!(created.status.success(), "{created:?}");

    let serves: Vec<Running> = (0..2)
        .map(|_| {
            let mut serve = command(&[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--allow-private-network",
                "--concurrency",
                "4",
            ]);
            let spawned = serve_process::spawn(&mut serve, |_| {});
            let addr = spawned.addr.expect("serve printed its address");
            Running {
                child: spawned.child,
                base: format!("http://{addr}"),
            }
        })
        .collect();
    let worker_args = [
        "worker",
        "--allow-private-network",
        "--concurrency",
        "4",
        // Short, so the killed worker's tasks come back within the test.
        "--lease",
        "3s",
    ];
    let spawn_worker = || {
        command(&worker_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut workers: Vec<Child> = (0..3).map(|_| spawn_worker()).collect();

    // Post every event, alternating between the two servers, from four client threads.
    let bases: Vec<String> = serves.iter().map(|s| s.base.clone()).collect();
    let accepted: HashSet<String> = thread::scope(|scope| {
        let posters: Vec<_> = (0..4)
            .map(|client| {
                let bases = &bases;
                scope.spawn(move || {
                    let agent = agent();
                    (client..events)
                        .step_by(4)
                        .map(|i| post_event(&agent, &bases[i % 2]))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        // Mid-run: once a quarter has arrived, SIGKILL the first worker and start it again.
        wait_until(
            Duration::from_secs(60),
            "a quarter of the events delivered",
            || hits.lock().unwrap().len() >= events / 4,
        );
        let before_kill = hits.lock().unwrap().len();
        workers[0].kill().unwrap();
        workers[0].wait().unwrap();
        workers[0] = spawn_worker();
        assert!(before_kill < events, "killed mid-run, not after");
        posters
            .into_iter()
            .flat_map(|p| p.join().unwrap())
            .collect()
    });
    assert_eq!(accepted.len(), events, "every event accepted once");

    // Every event is delivered at least once, and recorded as delivered.
    let mut db = postgres::Client::connect(&scratch.url, postgres::NoTls).unwrap();
    let budget = Duration::from_secs(60 + events as u64 / 100);
    wait_until(budget, "every event delivered and recorded", || {
        let delivered: i64 = db
            .query_one(
                "SELECT count(DISTINCT event_id) FROM deliveries WHERE response_status = 200",
                &[],
            )
            .unwrap()
            .get(0);
        delivered as usize == events
    });
    let received: HashSet<String> = hits.lock().unwrap().iter().cloned().collect();
    assert_eq!(
        received, accepted,
        "the receiver got exactly the accepted events"
    );
    let unfinished: i64 = db
        .query_one("SELECT count(*) FROM tasks WHERE state <> 2", &[])
        .unwrap()
        .get(0);
    assert_eq!(unfinished, 0);

    // No task was delivered twice under one lease: every claim counts one attempt, so two
    // deliveries under the same claim would share an attempt number.
    let doubled: i64 = db
        .query_one(
            "SELECT count(*) FROM (SELECT 1 FROM deliveries
                GROUP BY hook_id, event_id, attempt HAVING count(*) > 1) AS d",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(doubled, 0, "an attempt number recorded twice for one task");

    // Every attempt made is recorded, but those the killed worker made and could not
    // record: at most one per task, and no more than one worker holds.
    let recorded: HashMap<String, i64> = db
        .query(
            "SELECT e.uuid::text, count(*) FROM deliveries d JOIN events e ON e.id = d.event_id
             GROUP BY e.uuid",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let mut made: HashMap<String, i64> = HashMap::new();
    for id in hits.lock().unwrap().iter() {
        *made.entry(id.clone()).or_default() += 1;
    }
    let mut lost = 0;
    for (id, made) in &made {
        let recorded = recorded.get(id).copied().unwrap_or(0);
        assert!(
            recorded <= *made,
            "{id}: {recorded} attempts recorded, {made} made"
        );
        assert!(
            made - recorded <= 1,
            "{id}: {made} attempts made, {recorded} recorded"
        );
        lost += usize::from(made > &recorded);
    }
    assert!(lost <= MOST_LOST, "{lost} attempts unrecorded");

    for mut worker in workers {
        let _ = worker.kill();
        let _ = worker.wait();
    }
    drop(serves);
}

/// A `serve` process, killed when dropped.
struct Running {
    child: Child,
    base: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Posts one event with its example payload; returns its id.
fn post_event(agent: &ureq::Agent, base: &str) -> String {
    let event = EventType::BuildStarted;
    let body = example_payload(event, DEFAULT_API_SERVER).to_body();
    let (status, text) = crate::post_event(agent, base, NS, event, &body);
    assert_eq!(status, 202, "{text}");
    let reply: serde_json::Value = serde_json::from_str(&text).unwrap();
    reply["event_id"].as_str().unwrap().to_owned()
}

#[test]
fn a_postgres_database_needs_the_shared_key_file() {
    // Refused before connecting: no server is needed, and nothing is created.
    let env = Env::new();
    let run = env
        .command(&["hook", "list"])
        .env("DJINN_HOOKS_DB", "postgres://djinn@127.0.0.1:1/hooks")
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2), "{run:?}");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains(
            "--key-file (or DJINN_HOOKS_KEY_FILE) is required with a PostgreSQL --db: every \
             process sharing the database must use the same key file"
        ),
        "{stderr}"
    );
    assert!(!env.path("hooks.key").exists());
}

#[test]
fn an_unreachable_postgres_database_is_a_clear_failure() {
    let env = Env::new();
    let run = env
        .command(&["hook", "list"])
        .env(
            "DJINN_HOOKS_DB",
            "postgres://djinn:s3cret@127.0.0.1:1/hooks",
        )
        .env("DJINN_HOOKS_KEY_FILE", env.path("hooks.key"))
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("cannot connect to PostgreSQL at postgres://djinn:***@127.0.0.1:1/hooks"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret"), "{stderr}");
}
