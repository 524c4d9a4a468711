//! Instructions per event, counted by `valgrind --tool=callgrind` (a count the machine's load
//! does not move), for the two paths of issue 25:
//!
//! - `serve` end to end: the built `serve` on a fresh SQLite file with one webhook (with a
//!   secret) to a 204 sink in this process; N events POSTed one per request from 8 keep-alive
//!   connections, each accepted and delivered by `serve`'s own worker; then SIGTERM.
//! - the worker: N events queued in a fresh SQLite file, then `worker --until-idle
//!   --concurrency 16` delivers them to the same sink.
//!
//! Each path runs twice, with N = `CALLGRIND_SMALL` (default 200) and N = `CALLGRIND_EVENTS`
//! (default 1,200); the figure is the difference of the two totals over the difference of the
//! Ns, so start-up, shutdown and the first connections cancel out. Only the measured process's
//! instructions count (the sink and the client are in this process, outside valgrind).
//! Valgrind runs one thread at a time, so `serve`'s group commit gathers what the 8 connections
//! have waiting then, not what it gathers on two free cores: the count is a measure of the code,
//! to compare builds, not a prediction of a rate.
//!
//! `cargo bench -p djinn-hooks --bench callgrind` (valgrind must be installed: `apt-get install
//! -y valgrind`); `DJINN_BENCH_BIN` measures another build of `djinn-hooks`; `CALLGRIND_ONLY`
//! (`serve` or `worker`) runs one path; `CALLGRIND_KEEP=DIR` keeps each output file there
//! (`callgrind-serve-N.out`, `callgrind-worker-N.out`) for `callgrind_annotate --inclusive=yes`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use djinn_hook_payload::{DEFAULT_API_SERVER, EventType, example_payload};
use djinn_hook_sign::headers;
use djinn_hook_store::{NewEvent, NewWebhook};

#[path = "support/knobs.rs"]
mod knobs;
use knobs::knob;
#[allow(dead_code, reason = "this bench reads no memory figure")]
#[path = "support/serve.rs"]
mod serve;
#[allow(dead_code, reason = "this bench counts requests, not connections")]
#[path = "support/sink.rs"]
mod sink;
#[allow(
    dead_code,
    reason = "this bench spawns its worker under valgrind itself"
)]
mod support;

use serve::Serve;

const NS: &str = "bench/callgrind";

/// One measured path: `n` events through it, its process's instructions.
type Run = fn(&sink::Server, usize) -> u64;
const SECRET: &str = "bench";
/// `serve`'s client connections, as wrk's in the `serve` bench.
const CONNECTIONS: usize = 8;
/// The worker's concurrency, as in the `e2e` bench.
const CONCURRENCY: usize = 16;

fn main() {
    if Command::new("valgrind").arg("--version").output().is_err() {
        eprintln!("callgrind bench: valgrind not found (apt-get install -y valgrind); nothing run");
        return;
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` runs nothing (minutes under valgrind).
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let small = knob("CALLGRIND_SMALL", 200);
    let large = knob("CALLGRIND_EVENTS", 1_200);
    assert!(large > small, "CALLGRIND_EVENTS > CALLGRIND_SMALL");
    let only = std::env::var("CALLGRIND_ONLY").unwrap_or_default();
    let sink = sink::Server::start();
    println!();
    println!(
        "instructions per event (valgrind --tool=callgrind; (I(N={large}) - I(N={small})) / {})",
        large - small
    );
    println!();
    println!("| path | I(N={small}) | I(N={large}) | instructions per event |");
    println!("|---|---|---|---|");
    let paths: [(&str, Run); 2] = [("serve", serve_run), ("worker", worker_run)];
    for (name, run) in paths {
        if !only.is_empty() && only != name {
            continue;
        }
        let (a, b) = (run(&sink, small), run(&sink, large));
        println!(
            "| {name} | {a} | {b} | {:.0} |",
            b.saturating_sub(a) as f64 / (large - small) as f64
        );
    }
}

/// `serve` under callgrind: `n` events accepted and delivered; its total instructions.
fn serve_run(sink: &sink::Server, n: usize) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("callgrind.out");
    let out_arg = format!("--callgrind-out-file={}", out.display());
    let db = dir.path().join("bench.db");
    let serve = Serve::start(
        dir.path(),
        db.to_str().unwrap(),
        &["valgrind", "--tool=callgrind", &out_arg],
    );
    serve.create_webhook(
        NS,
        &format!(
            r#"{{"payload_url": "{}", "secret": "{SECRET}"}}"#,
            sink.url()
        ),
    );
    let body = example_payload(EventType::BuildSubmitted, DEFAULT_API_SERVER).to_body();
    let before = sink.requests.load(Ordering::SeqCst);
    thread::scope(|scope| {
        for c in 0..CONNECTIONS {
            let (base, body) = (&serve.base, &body);
            scope.spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .timeout_global(Some(Duration::from_secs(120)))
                    .build()
                    .into();
                for _ in (c..n).step_by(CONNECTIONS) {
                    let reply = agent
                        .post(format!("{base}/n/{NS}/-/events"))
                        .header(headers::EVENT, "build.submitted")
                        .header("Content-Type", "application/json")
                        .send(&body[..])
                        .expect("POST an event");
                    assert_eq!(reply.status().as_u16(), 202);
                }
            });
        }
    });
    wait_for(sink, before + n);
    assert!(
        serve.stop(Duration::from_secs(120)),
        "serve exited on SIGTERM"
    );
    instructions(&out, "serve", n)
}

/// `worker --until-idle` under callgrind over `n` queued events; its total instructions.
fn worker_run(sink: &sink::Server, n: usize) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let (store, db, key_file) = support::fresh_store(&dir);
    store.ensure_namespace(NS).unwrap();
    let mut hook = NewWebhook::new(NS, sink.url());
    hook.secret = Some(SECRET.to_owned());
    store.create_webhook(hook).unwrap();
    let body = example_payload(EventType::BuildSubmitted, DEFAULT_API_SERVER).to_body();
    for start in (0..n).step_by(1_000) {
        let batch = (start..n.min(start + 1_000))
            .map(|_| NewEvent::new(NS, EventType::BuildSubmitted, body.clone()))
            .collect();
        store.accept_events(batch).unwrap();
    }
    drop(store);
    let out = dir.path().join("callgrind.out");
    let before = sink.requests.load(Ordering::SeqCst);
    let binary = std::env::var("DJINN_BENCH_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_djinn-hooks").to_owned());
    let status = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(binary)
        .arg("--db")
        .arg(&db)
        .arg("--key-file")
        .arg(&key_file)
        .args(["worker", "--until-idle", "--allow-private-network"])
        .args(["--concurrency", &CONCURRENCY.to_string()])
        .env_remove("DJINN_HOOKS_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run the worker under valgrind");
    assert!(status.success(), "worker failed: {status}");
    wait_for(sink, before + n);
    instructions(&out, "worker", n)
}

/// Waits (bounded) until the sink has answered `count` requests in all.
fn wait_for(sink: &sink::Server, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(600);
    while sink.requests.load(Ordering::SeqCst) < count && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    assert!(
        sink.requests.load(Ordering::SeqCst) >= count,
        "every event delivered"
    );
}

/// The `summary:` (or `totals:`) line of a callgrind output file: instructions executed. The
/// file is copied into `CALLGRIND_KEEP` if set.
fn instructions(out: &Path, path: &str, n: usize) -> u64 {
    if let Some(keep) = std::env::var_os("CALLGRIND_KEEP") {
        let kept = Path::new(&keep).join(format!("callgrind-{path}-{n}.out"));
        std::fs::copy(out, kept).expect("keep callgrind's output file");
    }
    let text = std::fs::read_to_string(out).expect("callgrind's output file");
    text.lines()
        .find_map(|l| {
            l.strip_prefix("summary:")
                .or_else(|| l.strip_prefix("totals:"))
        })
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .expect("a summary line in callgrind's output")
}
