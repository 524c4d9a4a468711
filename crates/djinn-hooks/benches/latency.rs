//! Intake to delivery beside faulty receivers (issue 22): a healthy webhook's events, POSTed
//! to `djinn-hooks serve` (its defaults) one every 10 ms, while K faulty receivers (never
//! answering, trickling, refusing, 3 s slow, in turn) have 1,000 older tasks queued each. Each
//! event's time from the start of its POST to its arrival at the verifying receiver; p50, p99
//! and the worst. Goal: p99 under 1 s at K = 50.
//!
//! Run: `cargo bench -p djinn-hooks --bench latency` (K = 50, 500 events); `DJINN_BENCH_K` and
//! `DJINN_BENCH_N` set them.

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use djinn_hook_payload::{DEFAULT_API_SERVER, EventType, example_payload};
use djinn_hook_server::Receiver;
use djinn_hook_sign::{Secret, headers};
use djinn_hook_store::{NewEvent, NewWebhook};

#[path = "support/faulty.rs"]
mod faulty;
#[path = "../tests/it/serve_process.rs"]
mod serve_process;
#[allow(dead_code, reason = "this bench runs serve, not the worker")]
mod support;

const SECRET: &str = "It's a Secret to Everybody";

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let env = |name: &str, default: usize, token: usize| {
        if !bench {
            // `cargo test --benches` runs a token size.
            return token;
        }
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let k = env("DJINN_BENCH_K", 50, 4);
    let n = env("DJINN_BENCH_N", 500, 20);
    let _ = rlimit::increase_nofile_limit(u64::MAX);

    let dir = tempfile::tempdir().unwrap();
    let (store, db, key_file) = support::fresh_store(&dir);
    let body = example_payload(EventType::BuildFinished, DEFAULT_API_SERVER).to_body();
    for i in 0..k {
        let ns = format!("faulty/ns{i}");
        store.ensure_namespace(&ns).unwrap();
        store
            .create_webhook(NewWebhook::new(&ns, faulty::receiver(i)))
            .unwrap();
        let events: Vec<NewEvent> = (0..1_000)
            .map(|_| NewEvent::new(ns.clone(), EventType::BuildFinished, body.clone()))
            .collect();
        store.accept_events(events).unwrap();
    }
    let receiver = Receiver::start("127.0.0.1:0", Secret::from(SECRET)).unwrap();
    store.ensure_namespace("ok/ns").unwrap();
    let mut hook = NewWebhook::new("ok/ns", receiver.url());
    hook.secret = Some(SECRET.to_owned());
    store.create_webhook(hook).unwrap();
    drop(store);

    let binary = std::env::var("DJINN_BENCH_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_djinn-hooks").to_owned());
    let mut command = Command::new(binary);
    command
        .arg("--db")
        .arg(&db)
        .arg("--key-file")
        .arg(&key_file)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--allow-private-network",
        ])
        .env_remove("DJINN_HOOKS_TOKENS");
    let spawned = serve_process::spawn(&mut command, drop);
    drop(spawned.reader);
    let mut child = spawned.child;
    let base = format!(
        "http://{}",
        spawned.addr.expect("serve printed its address")
    );
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .build()
        .into();

    // The faulty receivers' backlogs go first: a second for the worker to take them up.
    std::thread::sleep(Duration::from_secs(1));
    let mut sent: HashMap<String, Instant> = HashMap::new();
    let mut arrived: HashMap<String, Instant> = HashMap::new();
    let take = |arrived: &mut HashMap<String, Instant>, wait: Duration| {
        while let Some(got) = receiver.next_timeout(wait) {
            assert!(got.signature_valid);
            arrived
                .entry(got.delivery().unwrap_or_default().to_owned())
                .or_insert(got.at);
        }
    };
    for _ in 0..n {
        let start = Instant::now();
        let reply = agent
            .post(format!("{base}/n/ok/ns/-/events"))
            .header(headers::EVENT, "build.finished")
            .header("Content-Type", "application/json")
            .send(&body[..])
            .expect("POST an event");
        assert_eq!(reply.status().as_u16(), 202);
        let text = reply.into_body().read_to_string().unwrap();
        let accepted: serde_json::Value = serde_json::from_str(&text).unwrap();
        sent.insert(accepted["event_id"].as_str().unwrap().to_owned(), start);
        take(&mut arrived, Duration::ZERO);
        std::thread::sleep(Duration::from_millis(10).saturating_sub(start.elapsed()));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while arrived.len() < sent.len() && Instant::now() < deadline {
        take(&mut arrived, Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();

    let mut latencies: Vec<Duration> = sent
        .iter()
        .filter_map(|(id, start)| Some(arrived.get(id)?.saturating_duration_since(*start)))
        .collect();
    latencies.sort();
    let pct = |p: f64| {
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i].as_secs_f64() * 1000.0
    };
    println!(
        "latency: {} of {n} healthy events delivered beside K = {k} faulty receivers \
         (1,000 tasks each); intake to delivery p50 {:.1} ms, p99 {:.1} ms, worst {:.1} ms",
        latencies.len(),
        pct(0.50),
        pct(0.99),
        pct(1.0)
    );
}
