//! A dead process's claims come back in seconds, not when their leases run out: the real
//! binary (`serve`, `worker`) with its default 5-minute lease, killed with SIGKILL while it holds
//! claims, paused with SIGSTOP, or stopped with SIGTERM while deliveries are under way; on the
//! test's SQLite file and on a throw-away PostgreSQL database.
//!
//! Every wait is a bounded wait on a condition; the bounds (10 s after a restart or a kill) are
//! the promise under test, a twentieth of the lease the claims would otherwise wait out.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use djinn_hook_payload::{EventType, example_payload};
use djinn_hook_store::{SecretKey, Store};
use serde_json::Value;

use crate::crash::{
    NS, Sink, delivered_pairs, emit_events, expected_pairs, kill_9, logged_attempts, wait_until,
};
use crate::{Env, serve_process};

/// What a dead process's claims may take to come back and be delivered.
const COMES_BACK_WITHIN: Duration = Duration::from_secs(10);

/// A running process of the binary, its stderr lines kept.
struct Logged {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    /// The thread reading stderr, until it ends (the process has exited and its last lines
    /// are in `lines`).
    reader: Option<thread::JoinHandle<()>>,
}

impl Logged {
    /// Spawns `command` with stderr read into `lines` on a thread.
    fn spawn(mut command: Command) -> Logged {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn djinn-hooks");
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let keep = Arc::clone(&lines);
        let reader = thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                keep.lock().unwrap().push(line);
            }
        });
        Logged {
            child,
            lines,
            reader: Some(reader),
        }
    }

    /// Waits for the process to exit and for its last stderr lines to be read: the exit is
    /// seen before the reader thread has necessarily taken what the process wrote last.
    fn wait(&mut self) -> std::process::ExitStatus {
        let status = self.child.wait().unwrap();
        if let Some(reader) = self.reader.take() {
            reader.join().expect("the stderr reader");
        }
        status
    }

    fn logged(&self, what: &str) -> bool {
        self.lines.lock().unwrap().iter().any(|l| l.contains(what))
    }

    /// The lines that contain `what`.
    fn lines_with(&self, what: &str) -> Vec<String> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(what))
            .cloned()
            .collect()
    }
}

/// A long-running `worker` with the default lease and shutdown timeout, plus `extra`; waits
/// until it has registered (its start line).
fn start_worker(env: &Env, extra: &[&str]) -> Logged {
    let mut args = vec!["worker", "--allow-private-network"];
    args.extend_from_slice(extra);
    let worker = Logged::spawn(env.command(&args));
    wait_until(Duration::from_secs(20), "the worker's start line", || {
        worker.logged("delivering with")
    });
    worker
}

/// Sends `signal` (`STOP`, `CONT`, `TERM`) to `child`.
fn signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal}");
}

/// The store, to read counts (reading decrypts nothing: any key opens it).
fn open(env: &Env) -> Store {
    Store::open_url(&env.database(), SecretKey::from_bytes([0; 32])).unwrap()
}

/// Tasks claimed under a live lease.
fn leased(env: &Env) -> u64 {
    open(env).counts().unwrap().leased
}

/// The number in the `tasks=N` field of a log line.
fn tasks_field(line: &str) -> u64 {
    line.split_whitespace()
        .find_map(|f| f.strip_prefix("tasks="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no tasks= in {line:?}"))
}

/// The scenario, with defaults: a receiver that takes 2 s, 20 events posted to `serve`,
/// `serve` killed with SIGKILL half a second later and started again at once: every accepted
/// event reaches the receiver within 10 s of the restart (the 20 answers take 10 s more at the
/// default four deliveries at once per webhook: the last ones are recorded after that), and the
/// restarted server reports what it took back.
fn serve_killed_holding_claims_is_delivered_within_seconds_of_its_restart(env: &Env) {
    let sink = Sink::start();
    sink.slow_all(Duration::from_secs(2));
    let hook = env.create_hook(NS, &sink.url(0), &[]);
    let serve = || {
        env.command(&[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--allow-private-network",
        ])
    };
    let mut first = serve_process::spawn(&mut serve(), |_| {});
    let base = format!("http://{}", first.addr.clone().expect("serve's address"));
    let body = example_payload(EventType::BuildSubmitted, "https://ci.example.com").to_body();
    let agent = crate::agent();
    let accepted: Vec<String> = (0..20)
        .map(|_| {
            let (status, text) =
                crate::post_event(&agent, &base, NS, EventType::BuildSubmitted, &body);
            assert_eq!(status, 202, "{text}");
            let reply: Value = serde_json::from_str(&text).unwrap();
            reply["event_id"].as_str().unwrap().to_owned()
        })
        .collect();
    // The scenario's half second: the server has claimed the events and is delivering some.
    thread::sleep(Duration::from_millis(500));
    let held = leased(env);
    assert!(held > 0, "the server held no claim when it was killed");
    kill_9(&mut first.child);
    first.reader.join().unwrap();

    let lines = Arc::new(Mutex::new(Vec::new()));
    let keep = Arc::clone(&lines);
    let restarted_at = Instant::now();
    let mut second = serve_process::spawn(&mut serve(), move |line| {
        keep.lock().unwrap().push(line);
    });
    let expected = expected_pairs(&[hook], &accepted);
    wait_until(
        COMES_BACK_WITHIN.saturating_sub(restarted_at.elapsed()),
        "every accepted event at the receiver, within 10 s of the restart",
        || {
            let seen: BTreeSet<(String, String)> = sink.seen().into_iter().collect();
            expected.is_subset(&seen)
        },
    );
    let arrived = restarted_at.elapsed();
    wait_until(
        Duration::from_secs(30),
        "every event recorded delivered",
        || expected.is_subset(&delivered_pairs(env)),
    );
    eprintln!(
        "serve kill -9 holding {held} claims: every event at the receiver {arrived:?} after the \
         restart, all recorded delivered after {:?}",
        restarted_at.elapsed()
    );
    let took_back: u64 = lines
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("took back claims"))
        .map(|l| tasks_field(l))
        .sum();
    assert!(
        took_back >= held,
        "the restart took back {took_back} of the {held} claims the dead server held"
    );
    if !env.database().starts_with("postgres") {
        // The dead server's lock file went with its claims: the live server's alone is left.
        let files: Vec<_> = std::fs::read_dir(env.path("hooks.db.procs"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
    }
    let addr = second.addr.clone().expect("serve's address");
    let mut metrics = agent
        .get(format!("http://{addr}/metrics"))
        .call()
        .expect("metrics");
    let text = metrics.body_mut().read_to_string().unwrap();
    let backend = if env.database().starts_with("postgres") {
        "postgres"
    } else {
        "sqlite"
    };
    let line = format!("djinn_hooks_claims_taken_back_total{{backend=\"{backend}\"}} {took_back}");
    assert!(text.contains(&line), "no {line:?} in\n{text}");
    kill_9(&mut second.child);
    second.reader.join().unwrap();
}

/// Two workers; the one holding every claim is killed with SIGKILL mid-batch; the other, still
/// running and never restarted, takes its claims back and delivers them within 10 s.
fn a_running_worker_delivers_a_killed_workers_claims(env: &Env) {
    let sink = Sink::start();
    sink.slow_all(Duration::from_millis(500));
    let hook = env.create_hook(NS, &sink.url(0), &[]);
    let events = emit_events(env, 20);
    let expected = expected_pairs(&[hook], &events);
    let mut holder = start_worker(env, &[]);
    wait_until(
        Duration::from_secs(20),
        "the first worker delivering",
        || !sink.seen().is_empty(),
    );
    let survivor = start_worker(env, &[]);
    let held = leased(env);
    assert!(held > 0, "the first worker held no claim");
    let killed_at = Instant::now();
    kill_9(&mut holder.child);
    wait_until(
        COMES_BACK_WITHIN,
        "every event delivered by the surviving worker, within 10 s of the kill",
        || expected.is_subset(&delivered_pairs(env)),
    );
    eprintln!(
        "kill -9 of a worker holding {held} claims: all delivered {:?} after",
        killed_at.elapsed()
    );
    let took_back: u64 = survivor
        .lines_with("took back claims")
        .iter()
        .map(|l| tasks_field(l))
        .sum();
    assert!(
        took_back > 0 && took_back <= held,
        "took back {took_back} of {held}"
    );
    let mut survivor = survivor;
    kill_9(&mut survivor.child);
}

/// A worker paused with SIGSTOP for longer than its liveness is looked at (once a second) but
/// far shorter than its lease, then continued: its locks hold while it is stopped, so no other
/// process takes or delivers its tasks meanwhile; once continued it delivers them itself, and
/// nothing is delivered twice.
fn a_paused_worker_keeps_its_claims(env: &Env) {
    let sink = Sink::start();
    sink.slow_all(Duration::from_millis(300));
    let hook = env.create_hook(NS, &sink.url(0), &[]);
    let events = emit_events(env, 16);
    let expected = expected_pairs(&[hook], &events);
    let mut paused = start_worker(env, &[]);
    wait_until(Duration::from_secs(20), "the worker delivering", || {
        !sink.seen().is_empty()
    });
    signal(&paused.child, "STOP");
    let counts = open(env).counts().unwrap();
    assert!(
        counts.leased > 0 && counts.pending == 0,
        "the paused worker holds every task left: {counts:?}"
    );
    let mut other = start_worker(env, &[]);
    // Its requests already sent may still arrive; none after this.
    thread::sleep(Duration::from_millis(200));
    let before = sink.seen().len();
    // Three of the other worker's looks for dead processes, and of its polls.
    thread::sleep(Duration::from_secs(3));
    assert_eq!(
        sink.seen().len(),
        before,
        "a delivery went out while the worker holding every claim was paused"
    );
    assert!(
        other.lines_with("took back claims").is_empty(),
        "the paused worker's claims were taken back"
    );
    signal(&paused.child, "CONT");
    wait_until(Duration::from_secs(20), "every event delivered", || {
        expected.is_subset(&delivered_pairs(env))
    });
    let seen = sink.seen();
    let distinct: BTreeSet<(String, String)> = seen.iter().cloned().collect();
    assert_eq!(seen.len(), distinct.len(), "an event was delivered twice");
    assert_eq!(
        logged_attempts(env).len(),
        seen.len(),
        "every attempt recorded once"
    );
    kill_9(&mut paused.child);
    kill_9(&mut other.child);
}

/// SIGTERM to a worker while deliveries are under way and others are queued, with a receiver
/// that does not answer: the worker hands its queue back at once, gives the deliveries under
/// way `--shutdown-timeout` (1 s here), then hands them back too and exits; every task is then
/// claimable at once (none leased), and another worker delivers them all right away.
fn sigterm_hands_everything_back_within_the_shutdown_timeout(env: &Env) {
    let sink = Sink::start();
    let hook = env.create_hook(NS, &sink.url(0), &[]);
    let events = emit_events(env, 20);
    let expected = expected_pairs(&[hook], &events);
    sink.hold_after(0);
    let mut worker = start_worker(env, &["--shutdown-timeout", "1s"]);
    wait_until(Duration::from_secs(20), "deliveries under way", || {
        sink.held() > 0
    });
    assert!(
        leased(env) > sink.held() as u64,
        "nothing queued behind them"
    );
    let stopped_at = Instant::now();
    signal(&worker.child, "TERM");
    let status = worker.wait();
    let took = stopped_at.elapsed();
    assert!(status.success(), "{status:?}");
    // The bound: the shutdown timeout, and the time to hand back (generous on a loaded machine).
    assert!(took < Duration::from_secs(6), "stopped after {took:?}");
    assert!(
        worker.logged("shutdown timeout: handed back"),
        "{:?}",
        worker.lines.lock().unwrap()
    );
    assert_eq!(
        leased(env),
        0,
        "a task is still leased to the stopped worker"
    );
    sink.release();
    let run = env.run(
        &[
            "--json",
            "worker",
            "--until-idle",
            "--allow-private-network",
        ],
        None,
    );
    let stats: Value = serde_json::from_str(run.ok()).unwrap();
    assert_eq!(stats["claims_taken_back"], 0, "{stats}");
    assert!(expected.is_subset(&delivered_pairs(env)));
}

/// SIGTERM to `serve` while slow deliveries are under way: its queue goes back at once, the
/// deliveries under way finish and are recorded, and it exits well within the default
/// shutdown timeout (8 s), leaving nothing leased.
fn sigterm_to_serve_finishes_what_is_under_way(env: &Env) {
    let sink = Sink::start();
    sink.slow_all(Duration::from_millis(1500));
    let hook = env.create_hook(NS, &sink.url(0), &[]);
    let events = emit_events(env, 20);
    let expected = expected_pairs(&[hook], &events);
    let mut serve = env.command(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--allow-private-network",
    ]);
    let mut spawned = serve_process::spawn(&mut serve, |_| {});
    wait_until(Duration::from_secs(20), "deliveries under way", || {
        !sink.seen().is_empty()
    });
    let under_way = sink.seen().len();
    let stopped_at = Instant::now();
    signal(&spawned.child, "TERM");
    let status = spawned.child.wait().unwrap();
    let took = stopped_at.elapsed();
    spawned.reader.join().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_secs(8), "stopped after {took:?}");
    assert_eq!(
        leased(env),
        0,
        "a task is still leased to the stopped server"
    );
    let recorded = logged_attempts(env).len();
    assert!(
        recorded >= under_way,
        "{under_way} under way, {recorded} recorded"
    );
    assert!(
        delivered_pairs(env).len() < expected.len(),
        "everything was delivered before the stop: nothing was handed back"
    );
    sink.slow_all(Duration::ZERO);
    env.run(&["worker", "--until-idle", "--allow-private-network"], None)
        .ok();
    assert!(expected.is_subset(&delivered_pairs(env)));
}

on_both_backends!(
    serve_killed_holding_claims_is_delivered_within_seconds_of_its_restart,
    a_running_worker_delivers_a_killed_workers_claims,
    a_paused_worker_keeps_its_claims,
    sigterm_hands_everything_back_within_the_shutdown_timeout,
    sigterm_to_serve_finishes_what_is_under_way,
);
