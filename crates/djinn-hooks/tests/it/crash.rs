//! Kill -9 at every stage: the real binary (`worker`, `serve`) is killed with SIGKILL while it
//! claims, delivers, commits and accepts, then restarted, and the books are checked: every event
//! that was accepted (an `emit` that printed its id, a 202) reaches the receiver at least once and
//! ends with a successful attempt in the delivery log, and the duplicates the crashes caused are
//! counted and reported.
//!
//! The kill points are made, not hoped for: the receiver holds a chosen request unanswered, so
//! the worker is killed with that delivery in flight, others of its batch answered, and their
//! completions committed or not; the serve rounds kill the process right after a 202, while its
//! own worker delivers. `DJINN_CRASH_ROUNDS` (default 4) sets the rounds of each test.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use djinn_hook_payload::{EventType, example_payload};
use djinn_hook_sign::headers;
use djinn_hook_store::{DeliveryFilter, Page, SecretKey, Store};
pub(crate) use djinn_hook_testkit::wait_until;
use djinn_hook_testkit::wait_until_ok;
use serde_json::Value;

use crate::{Env, serve_process};

pub(crate) const NS: &str = "crash/test";
/// How long a killed worker's tasks stay leased: short, so the test does not wait for them.
const LEASE: &str = "1s";

fn rounds() -> usize {
    std::env::var("DJINN_CRASH_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(4)
}

/// A receiver on 127.0.0.1 that records every request's (hook id, delivery id) as it arrives,
/// before answering 200, and can hold requests unanswered from a chosen arrival on.
pub(crate) struct Sink {
    addr: SocketAddr,
    shared: Arc<SinkShared>,
}

#[derive(Default)]
struct SinkShared {
    state: Mutex<SinkState>,
    changed: Condvar,
}

#[derive(Default)]
struct SinkState {
    /// Every request that arrived: (X-Djinn-CI-Hook-ID, X-Djinn-CI-Delivery).
    seen: Vec<(String, String)>,
    /// When each of `seen` arrived.
    arrived_at: Vec<Instant>,
    /// Requests from this arrival number on are held until released.
    hold_from: Option<usize>,
    /// Requests being held right now.
    held: usize,
    /// The first request of each of these event ids is answered only after this long.
    slow_first: Option<(Duration, BTreeSet<String>)>,
    /// Every request is answered only after this long.
    slow_all: Duration,
}

impl Sink {
    pub(crate) fn start() -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(SinkShared::default());
        let accept_shared = Arc::clone(&shared);
        // The accept thread lives as long as the test binary: each connection thread ends when
        // its peer (a killed worker) closes the socket, or after 10 s of silence.
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let shared = Arc::clone(&accept_shared);
                thread::spawn(move || serve_connection(stream, &shared));
            }
        });
        Sink { addr, shared }
    }

    /// The URL of the `n`th webhook (a namespace's hooks need distinct URLs).
    pub(crate) fn url(&self, n: usize) -> String {
        format!("http://{}/hook/{n}", self.addr)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, SinkState> {
        self.shared.state.lock().unwrap()
    }

    /// Holds every request from `n` more arrivals on.
    pub(crate) fn hold_after(&self, n: usize) {
        let mut state = self.state();
        state.hold_from = Some(state.seen.len() + n);
    }

    pub(crate) fn release(&self) {
        self.state().hold_from = None;
        self.shared.changed.notify_all();
    }

    /// Answers every request only after `delay` (a slow receiver).
    pub(crate) fn slow_all(&self, delay: Duration) {
        self.state().slow_all = delay;
    }

    /// Answers the first request of each of `events` only after `delay`.
    fn slow_first(&self, delay: Duration, events: BTreeSet<String>) {
        self.state().slow_first = Some((delay, events));
    }

    pub(crate) fn held(&self) -> usize {
        self.state().held
    }

    pub(crate) fn seen(&self) -> Vec<(String, String)> {
        self.state().seen.clone()
    }

    /// Every request that arrived, with when.
    fn arrivals(&self) -> Vec<((String, String), Instant)> {
        let state = self.state();
        state
            .seen
            .iter()
            .cloned()
            .zip(state.arrived_at.iter().copied())
            .collect()
    }
}

fn serve_connection(stream: TcpStream, shared: &SinkShared) {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut headers = BTreeMap::new();
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let Some((name, value)) = line.trim_end().split_once(':') else {
                break;
            };
            headers.insert(name.to_ascii_lowercase(), value.trim().to_owned());
        }
        let length: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let header = |name: &str| {
            headers
                .get(&name.to_ascii_lowercase())
                .cloned()
                .unwrap_or_default()
        };
        let delay = {
            let mut state = shared.state.lock().unwrap();
            let arrival = state.seen.len();
            let pair = (header(headers::HOOK_ID), header(headers::DELIVERY));
            let first = !state.seen.contains(&pair);
            state.seen.push(pair.clone());
            state.arrived_at.push(Instant::now());
            if state.hold_from.is_some_and(|from| arrival >= from) {
                state.held += 1;
                shared.changed.notify_all();
                while state.hold_from.is_some_and(|from| arrival >= from) {
                    state = shared.changed.wait(state).unwrap();
                }
                state.held -= 1;
            }
            match &state.slow_first {
                Some((delay, events)) if first && events.contains(&pair.1) => *delay,
                _ => state.slow_all,
            }
        };
        thread::sleep(delay);
        if writer
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            .is_err()
        {
            return;
        }
    }
}

/// Kills `child` with SIGKILL and reaps it.
pub(crate) fn kill_9(child: &mut Child) {
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
}

/// Emits `count` build.submitted events; returns their ids (each `emit` printed it: accepted).
pub(crate) fn emit_events(env: &Env, count: usize) -> Vec<String> {
    let body = example_payload(EventType::BuildSubmitted, "https://ci.example.com").to_body();
    (0..count)
        .map(|_| {
            let run = env.run(
                &["--json", "emit", "build.submitted", "--namespace", NS],
                Some(&body),
            );
            let accepted: Value = serde_json::from_str(run.ok()).unwrap();
            accepted["event_id"].as_str().unwrap().to_owned()
        })
        .collect()
}

/// Runs `worker --until-idle` until every (hook, event) pair has a successful attempt in the
/// log: tasks of a killed worker come back once their lease runs out.
fn drain(env: &Env, expected: &BTreeSet<(String, String)>) -> BTreeSet<(String, String)> {
    wait_until_ok(Duration::from_secs(60), "every delivery", || {
        env.run(
            &[
                "worker",
                "--until-idle",
                "--allow-private-network",
                "--lease",
                LEASE,
            ],
            None,
        )
        .ok();
        let delivered = delivered_pairs(env);
        if expected.is_subset(&delivered) {
            return Ok(delivered);
        }
        let missing = expected.difference(&delivered).count();
        Err(format!(
            "{missing} of {} deliveries missing",
            expected.len()
        ))
    })
}

/// Every (hook id, event id) with a 2xx attempt in the delivery log.
pub(crate) fn delivered_pairs(env: &Env) -> BTreeSet<(String, String)> {
    let mut pairs = BTreeSet::new();
    for (pair, status) in logged_attempts(env) {
        if status.is_some_and(|s| (200..300).contains(&s)) {
            pairs.insert(pair);
        }
    }
    pairs
}

/// Every attempt in the delivery log: (hook id, event id) and the response status.
pub(crate) fn logged_attempts(env: &Env) -> Vec<((String, String), Option<u16>)> {
    // Reading the log decrypts nothing, so any key opens it.
    let store = Store::open_url(&env.database(), SecretKey::from_bytes([0; 32])).unwrap();
    let mut attempts = Vec::new();
    for page in 1.. {
        let paged = store
            .deliveries(
                DeliveryFilter::default(),
                Page {
                    page,
                    per_page: 500,
                },
            )
            .unwrap();
        for d in &paged.items {
            attempts.push((
                (d.hook_id.to_string(), d.event_id.to_string()),
                d.response_status,
            ));
        }
        if !paged.has_next {
            break;
        }
    }
    attempts
}

/// Every (hook, event) the receiver must get, for `hooks` × `events`.
pub(crate) fn expected_pairs(hooks: &[String], events: &[String]) -> BTreeSet<(String, String)> {
    hooks
        .iter()
        .flat_map(|h| events.iter().map(move |e| (h.clone(), e.clone())))
        .collect()
}

/// Asserts the books after the crashes and prints the duplicates they caused.
fn check_books(sink: &Sink, expected: &BTreeSet<(String, String)>, crashes: usize, what: &str) {
    let seen = sink.seen();
    let distinct: BTreeSet<(String, String)> = seen.iter().cloned().collect();
    let missing: Vec<_> = expected.difference(&distinct).collect();
    assert!(
        missing.is_empty(),
        "never reached the receiver: {missing:?}"
    );
    let strangers: Vec<_> = distinct.difference(expected).collect();
    assert!(strangers.is_empty(), "unexpected deliveries: {strangers:?}");
    let duplicates = seen.len() - distinct.len();
    eprintln!(
        "{what}: {} deliveries, {} requests, {duplicates} duplicates over {crashes} kills \
         ({:.1} per kill)",
        expected.len(),
        seen.len(),
        duplicates as f64 / crashes.max(1) as f64
    );
}

fn worker_killed_mid_batch_loses_nothing(env: &Env) {
    let sink = Sink::start();
    let hooks: Vec<String> = (0..2)
        .map(|n| env.create_hook(NS, &sink.url(n), &[]))
        .collect();
    let events = emit_events(env, 30);
    let expected = expected_pairs(&hooks, &events);

    // Each round lets a different number of requests through before holding one, so the kill
    // lands at a different point of a batch: first request, mid-batch, after a commit.
    let steps = [0, 3, 9, 17, 1, 6];
    let rounds = rounds();
    for round in 0..rounds {
        sink.hold_after(steps[round % steps.len()]);
        let mut worker = env
            .command(&[
                "worker",
                "--concurrency",
                "4",
                "--allow-private-network",
                "--lease",
                LEASE,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn worker");
        wait_until(Duration::from_secs(30), "a delivery in flight", || {
            sink.held() > 0
        });
        kill_9(&mut worker);
        sink.release();
    }
    drain(env, &expected);
    check_books(&sink, &expected, rounds, "worker kill -9");
}

/// Spawns a long-running `worker` with `--lease lease`.
fn spawn_worker(env: &Env, lease: &str) -> Child {
    env.command(&[
        "worker",
        "--concurrency",
        "2",
        "--allow-private-network",
        "--lease",
        lease,
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("spawn worker")
}

/// Stops a worker with SIGTERM (it finishes and records what is in flight) and waits for it.
fn terminate(child: &mut Child) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    child.wait().unwrap();
}

fn two_workers_racing_on_short_leases_never_share_a_live_lease(env: &Env) {
    let sink = Sink::start();
    let hook = env.create_hook(NS, &sink.url(0), &[]);
    let events = emit_events(env, 24);
    let expected = expected_pairs(&[hook], &events);
    // A quarter of the first deliveries outlast the lease: those tasks are claimed again by
    // either worker while the slow attempt is still under way, and its completion comes late.
    // Long enough that a quarter of it (the least a delivery starts with) outlasts a commit on
    // a loaded machine.
    let lease = Duration::from_secs(4);
    let slow: BTreeSet<String> = events.iter().step_by(4).cloned().collect();
    sink.slow_first(lease + Duration::from_secs(1), slow.clone());

    let started = Instant::now();
    let mut workers = [spawn_worker(env, "4s"), spawn_worker(env, "4s")];
    wait_until(Duration::from_secs(60), "every event delivered", || {
        expected.is_subset(&delivered_pairs(env))
    });
    // Each slow first attempt is still to finish and be recorded, late: wait for its record.
    wait_until(
        Duration::from_secs(30),
        "the late attempts recorded",
        || logged_attempts(env).len() >= sink.seen().len(),
    );
    // A task whose event a late attempt delivered may still be claimed again (its lease had run
    // out), or queued behind slow deliveries until too little of its new lease is left to start
    // one (then left to be claimed once more): the books settle when every task has ended.
    let store = Store::open_url(&env.database(), SecretKey::from_bytes([0; 32])).unwrap();
    wait_until(Duration::from_secs(60), "every task ended", || {
        let counts = store.counts().unwrap();
        (counts.pending, counts.leased) == (0, 0) && logged_attempts(env).len() >= sink.seen().len()
    });
    drop(store);
    for worker in &mut workers {
        terminate(worker);
    }

    // No task was delivered twice while a lease on it held: every task was due when the
    // workers started, so no claim is older than that, and a task is claimed again only once
    // the lease of the claim before ran out.
    // A task answered at once is never delivered twice: a worker starts no delivery with less
    // than a quarter of the lease left, so its completion lands while the lease holds.
    let mut first_seen = BTreeSet::new();
    for (pair, at) in sink.arrivals() {
        if !first_seen.insert(pair.clone()) {
            assert!(
                at.duration_since(started) >= lease,
                "{pair:?} delivered again {:?} after the workers started, within the lease",
                at.duration_since(started)
            );
            assert!(
                slow.contains(&pair.1),
                "{pair:?} was answered at once, yet delivered twice"
            );
        }
    }
    // Every attempt that reached the receiver is in the log, the late ones too, and each task
    // ended once: nothing pending, leased or failed.
    let logged = logged_attempts(env);
    assert_eq!(logged.len(), sink.seen().len(), "every attempt recorded");
    let store = Store::open_url(&env.database(), SecretKey::from_bytes([0; 32])).unwrap();
    let stats = store.counts().unwrap();
    assert_eq!(
        (stats.pending, stats.leased, stats.failed),
        (0, 0, 0),
        "{stats:?}"
    );
    let duplicates = sink.seen().len() - expected.len();
    eprintln!(
        "lease race: {} deliveries, {duplicates} delivered twice ({} slower than the lease)",
        expected.len(),
        slow.len()
    );
}

fn serve_killed_after_a_202_loses_nothing(env: &Env) {
    let sink = Sink::start();
    let hook = env.create_hook(NS, &sink.url(0), &[]);
    let body = String::from_utf8(
        example_payload(EventType::BuildSubmitted, "https://ci.example.com").to_body(),
    )
    .unwrap();
    let agent = crate::agent();
    let mut accepted = Vec::new();
    let rounds = rounds();
    for round in 0..rounds {
        let mut command = env.command(&[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--allow-private-network",
            "--lease",
            LEASE,
        ]);
        let mut spawned = serve_process::spawn(&mut command, |_| {});
        let addr = spawned.addr.clone().expect("serve printed its address");
        // Let its worker deliver some of what earlier rounds accepted, holding one request,
        // then accept a few more events and kill it right after the last 202.
        sink.hold_after(round % 3);
        for _ in 0..(5 + round) {
            let (status, text) = crate::post_event(
                &agent,
                &format!("http://{addr}"),
                NS,
                EventType::BuildSubmitted,
                body.as_bytes(),
            );
            assert_eq!(status, 202, "{text}");
            let reply: Value = serde_json::from_str(&text).unwrap();
            accepted.push(reply["event_id"].as_str().unwrap().to_owned());
        }
        kill_9(&mut spawned.child);
        spawned.reader.join().unwrap();
        sink.release();
    }
    let expected = expected_pairs(&[hook], &accepted);
    drain(env, &expected);
    check_books(&sink, &expected, rounds, "serve kill -9");
}

on_both_backends!(
    worker_killed_mid_batch_loses_nothing,
    serve_killed_after_a_202_loses_nothing,
    two_workers_racing_on_short_leases_never_share_a_live_lease,
);
