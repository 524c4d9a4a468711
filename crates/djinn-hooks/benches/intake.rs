//! Intake throughput of `djinn-hooks serve` on SQLite (durable: WAL, `synchronous=FULL`), on
//! loopback only, bounded in time: events per second posted one per request, posted one per
//! request with an `Idempotency-Key` each, and posted 1,000 per request to `…/events/batch`,
//! all against the same server in the same run, with the ratios between them.
//!
//! The namespace has one webhook, subscribed to another event type than the one posted: every
//! event is looked up against it, but no task is queued and no delivery competes with the
//! intake for the cores, so what is measured is the intake alone (HTTP, validation, the group
//! commit and its fsync).
//!
//! The phases alternate (plain, keyed, batch, then again) so that drift (the database
//! growing, other work on the machine) falls on each alike; each mode's figure is the mean of
//! its phases. Not a divan benchmark: the figure is a rate over seconds, not a per-iteration
//! time. `cargo bench -p djinn-hooks --bench intake` runs it and prints a Markdown table.
//! Knobs (environment): `INTAKE_BENCH_CONNECTIONS` (default 4), `INTAKE_BENCH_SECONDS` (each
//! phase, default 4), `INTAKE_BENCH_ROUNDS` (default 2), `INTAKE_BENCH_BATCH` (events per
//! batch, default 1000), `DJINN_BENCH_BIN` (run that build of `djinn-hooks` instead).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use djinn_hook_payload::{DEFAULT_API_SERVER, EventType, example_payload};
use djinn_hook_sign::headers;

#[path = "support/knobs.rs"]
mod knobs;
use knobs::knob;
#[allow(dead_code, reason = "this bench reads no memory figure")]
#[path = "support/serve.rs"]
mod serve;

use serve::Serve;

/// The namespace the load goes to.
const NS: &str = "bench/intake";

/// How events are posted in a phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// One event per request.
    Plain,
    /// One event per request, each with a new `Idempotency-Key`.
    Keyed,
    /// `INTAKE_BENCH_BATCH` events per request.
    Batch,
}

fn main() {
    let connections = knob("INTAKE_BENCH_CONNECTIONS", 4);
    let seconds = knob("INTAKE_BENCH_SECONDS", 4);
    let rounds = knob("INTAKE_BENCH_ROUNDS", 2);
    let batch = knob("INTAKE_BENCH_BATCH", 1000) as usize;
    let phase = Duration::from_secs(seconds);

    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("bench.db");
    let serve = Serve::start(dir.path(), db.to_str().unwrap(), &[]);
    serve.create_webhook(
        NS,
        r#"{"payload_url": "http://127.0.0.1:9/hook", "events": ["build.started"]}"#,
    );

    let payload = example_payload(EventType::BuildFinished, DEFAULT_API_SERVER).to_body();
    let payload = String::from_utf8(payload).unwrap();
    let item = format!(r#"{{"event": "build.finished", "payload": {payload}}}"#);
    let batch_body = format!("[{}]", vec![item; batch].join(","));

    let modes = [Mode::Plain, Mode::Keyed, Mode::Batch];
    let mut rates: Vec<(Mode, f64)> = Vec::new();
    let key_seq = Arc::new(AtomicU64::new(0));
    for _ in 0..rounds {
        for mode in modes {
            let (payload, batch_body, key_seq) =
                (payload.clone(), batch_body.clone(), Arc::clone(&key_seq));
            let events = hammer(&serve.base, connections, phase, move |agent, base| {
                post(agent, base, mode, &payload, &batch_body, &key_seq, batch)
            });
            rates.push((mode, events));
        }
    }
    let mean = |mode: Mode| {
        let of: Vec<f64> = rates
            .iter()
            .filter(|(m, _)| *m == mode)
            .map(|(_, r)| *r)
            .collect();
        (of.iter().sum::<f64>() / of.len() as f64, of)
    };
    let (plain, plain_runs) = mean(Mode::Plain);
    let (keyed, keyed_runs) = mean(Mode::Keyed);
    let (batched, batch_runs) = mean(Mode::Batch);
    let runs = |r: &[f64]| {
        r.iter()
            .map(|x| format!("{x:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };

    println!();
    println!(
        "serve intake on SQLite (synchronous=FULL): {connections} connections, {rounds} rounds \
         of {seconds} s phases, build.finished ({} bytes), loopback",
        payload.len()
    );
    println!();
    println!("| mode | events/s (mean) | phases | ratio to one event per request |");
    println!("|---|---|---|---|");
    println!(
        "| one event per request | {plain:.0} | {} | 1.00 |",
        runs(&plain_runs)
    );
    println!(
        "| one event per request, each with an Idempotency-Key | {keyed:.0} | {} | {:.2} |",
        runs(&keyed_runs),
        keyed / plain
    );
    println!(
        "| {batch} events per request (POST …/events/batch) | {batched:.0} | {} | {:.2} |",
        runs(&batch_runs),
        batched / plain
    );
    println!();
    println!(
        "batch / single: {:.2}x (goal at least 3x); keys cost {:.1}% of intake throughput \
         (goal at most 15%)",
        batched / plain,
        (1.0 - keyed / plain) * 100.0
    );
    serve.stop(Duration::from_secs(10));
}

/// One request of `mode`; returns how many events it stored.
fn post(
    agent: &ureq::Agent,
    base: &str,
    mode: Mode,
    payload: &str,
    batch_body: &str,
    key_seq: &AtomicU64,
    batch: usize,
) -> u64 {
    let reply = match mode {
        Mode::Plain | Mode::Keyed => {
            let request = agent
                .post(format!("{base}/n/{NS}/-/events"))
                .header(headers::EVENT, "build.finished")
                .header("Content-Type", "application/json");
            let request = if mode == Mode::Keyed {
                let key = format!("bench-{}", key_seq.fetch_add(1, Ordering::Relaxed));
                request.header("Idempotency-Key", key)
            } else {
                request
            };
            request.send(payload)
        }
        Mode::Batch => agent
            .post(format!("{base}/n/{NS}/-/events/batch"))
            .header("Content-Type", "application/json")
            .send(batch_body),
    };
    let mut reply = reply.expect("POST events");
    let status = reply.status().as_u16();
    let text = reply.body_mut().read_to_string().unwrap_or_default();
    assert_eq!(status, 202, "{text}");
    match mode {
        Mode::Batch => batch as u64,
        _ => 1,
    }
}

/// Events per second stored by `connections` threads running `request` for `duration`.
fn hammer(
    base: &str,
    connections: u64,
    duration: Duration,
    request: impl Fn(&ureq::Agent, &str) -> u64 + Send + Sync + Clone + 'static,
) -> f64 {
    let count = Arc::new(AtomicU64::new(0));
    let start_line = Arc::new(Barrier::new(connections as usize + 1));
    let threads: Vec<_> = (0..connections)
        .map(|_| {
            let base = base.to_owned();
            let count = Arc::clone(&count);
            let start_line = Arc::clone(&start_line);
            let request = request.clone();
            thread::spawn(move || {
                // Each connection opens before the clock starts.
                let agent = agent();
                agent
                    .get(format!("{base}/healthz"))
                    .call()
                    .expect("GET /healthz");
                start_line.wait();
                let end = Instant::now() + duration;
                while Instant::now() < end {
                    count.fetch_add(request(&agent, &base), Ordering::Relaxed);
                }
            })
        })
        .collect();
    start_line.wait();
    let start = Instant::now();
    for thread in threads {
        thread.join().unwrap();
    }
    count.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

/// A keep-alive HTTP client: statuses as values, no proxy.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}
