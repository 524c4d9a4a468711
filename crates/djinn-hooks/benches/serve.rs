//! Load test of `djinn-hooks serve`, on loopback only, bounded in time: events POSTed to
//! `/n/:username/:path/-/events` from several keep-alive connections while the worker delivers
//! them to a local receiver, next to the same server's `/healthz` rate in the same run.
//!
//! Not a divan benchmark: what it measures (throughput over seconds, end-to-end latency through
//! the store and the worker to a receiver) is not a per-iteration time. `cargo bench -p
//! djinn-hooks --bench serve` runs it and prints a Markdown table. Knobs (environment):
//! `SERVE_BENCH_CONNECTIONS` (default 4), `SERVE_BENCH_SECONDS` (load phase, default 5),
//! `DJINN_BENCH_BIN` (run that build of `djinn-hooks` instead of this one).

use std::collections::HashMap;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use djinn_hook_payload::{DEFAULT_API_SERVER, EventType, example_payload};
use djinn_hook_sign::Secret;
use djinn_hooks::Receiver;

#[path = "../tests/it/serve_process.rs"]
mod serve_process;

/// The namespace the load goes to.
const NS: &str = "bench/load";

fn main() {
    let connections = knob("SERVE_BENCH_CONNECTIONS", 4);
    let seconds = knob("SERVE_BENCH_SECONDS", 5);
    let load_for = Duration::from_secs(seconds);
    let baseline_for = Duration::from_secs(3);

    let dir = tempfile::tempdir().expect("temp dir");
    let receiver =
        Receiver::start("127.0.0.1:0", Secret::new("bench")).expect("start the receiver");
    let serve = Serve::start(dir.path());
    let created = agent()
        .post(format!("{}/n/{NS}/-/webhooks", serve.base))
        .header("Content-Type", "application/json")
        .send(format!(
            r#"{{"payload_url": "{}", "secret": "bench"}}"#,
            receiver.url()
        ))
        .expect("create the webhook");
    assert_eq!(created.status().as_u16(), 201);

    // Baseline: /healthz alone.
    let healthz_idle = hammer(&serve.base, connections, baseline_for, |agent, base| {
        get_healthz(agent, base)
    });

    // Load: events from `connections` connections, plus one connection on /healthz.
    let body = example_payload(EventType::BuildSubmitted, DEFAULT_API_SERVER).to_body();
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let healthz_load = {
        let base = serve.base.clone();
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let agent = agent();
            let start = Instant::now();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                get_healthz(&agent, &base);
                n += 1;
            }
            n as f64 / start.elapsed().as_secs_f64()
        })
    };
    let events = {
        let sent = Arc::clone(&sent);
        hammer(&serve.base, connections, load_for, move |agent, base| {
            let start = Instant::now();
            let reply = agent
                .post(format!("{base}/n/{NS}/-/events"))
                .header("X-Djinn-CI-Event", "build.submitted")
                .header("Content-Type", "application/json")
                .send(&body[..])
                .expect("POST an event");
            assert_eq!(reply.status().as_u16(), 202);
            let text = reply.into_body().read_to_string().unwrap();
            let accepted: serde_json::Value = serde_json::from_str(&text).unwrap();
            let id = accepted["event_id"]
                .as_str()
                .unwrap_or_else(|| panic!("an event_id in {text}"))
                .to_owned();
            sent.lock().unwrap().insert(id, start);
        })
    };
    stop.store(true, Ordering::Relaxed);
    let healthz_load = healthz_load.join().unwrap();

    // Wait (bounded) for every accepted event to be delivered; the first arrival of each counts.
    let total = sent.lock().unwrap().len();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut arrived: HashMap<String, Instant> = HashMap::new();
    while arrived.len() < total && Instant::now() < deadline {
        if let Some(got) = receiver.next_timeout(Duration::from_millis(20)) {
            assert!(got.signature_valid, "deliveries are signed");
            let id = got.delivery().unwrap_or_default().to_owned();
            arrived.entry(id).or_insert(got.at);
        }
    }
    let sent = sent.lock().unwrap();
    let mut latencies: Vec<Duration> = sent
        .iter()
        .filter_map(|(id, start)| {
            arrived
                .get(id)
                .map(|at| at.saturating_duration_since(*start))
        })
        .collect();
    latencies.sort();
    let last_arrival = arrived.values().max().copied();
    let first_sent = sent.values().min().copied();
    let delivered = latencies.len();
    let delivery_rate = match (first_sent, last_arrival) {
        (Some(first), Some(last)) => delivered as f64 / last.duration_since(first).as_secs_f64(),
        _ => 0.0,
    };
    let pct = |p: f64| -> Duration {
        if latencies.is_empty() {
            return Duration::ZERO;
        }
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i]
    };
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);

    println!();
    println!(
        "serve load test: {connections} connections, {seconds} s of events, keep-alive, loopback"
    );
    println!();
    println!("| measure | value | ratio to /healthz alone |");
    println!("|---|---|---|");
    println!(
        "| /healthz alone (baseline, {connections} connections) | {:.0} req/s | 1.00 |",
        healthz_idle.rate
    );
    println!(
        "| events accepted (POST /events, 202) | {:.0} /s | {:.2} |",
        events.rate,
        events.rate / healthz_idle.rate
    );
    println!(
        "| /healthz during the load (1 more connection) | {healthz_load:.0} req/s | {:.2} |",
        healthz_load / healthz_idle.rate
    );
    println!(
        "| deliveries (first POST to last arrival) | {delivery_rate:.0} /s | {:.2} |",
        delivery_rate / healthz_idle.rate
    );
    println!(
        "| end-to-end latency p50 (POST sent -> receiver got it) | {} | |",
        ms(pct(0.50))
    );
    println!("| end-to-end latency p99 | {} | |", ms(pct(0.99)));
    println!("| end-to-end latency max | {} | |", ms(pct(1.0)));
    println!("| events accepted / delivered | {total} / {delivered} | |");
    println!();
    assert_eq!(delivered, total, "every accepted event was delivered");
    serve.stop();
}

/// An environment knob with a default.
fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A keep-alive HTTP client: statuses as values, no proxy.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

fn get_healthz(agent: &ureq::Agent, base: &str) {
    let mut reply = agent
        .get(format!("{base}/healthz"))
        .call()
        .expect("GET /healthz");
    assert_eq!(reply.status().as_u16(), 200);
    reply.body_mut().read_to_vec().unwrap();
}

/// Requests per second of `connections` threads running `request` for `duration`.
struct Rate {
    rate: f64,
}

fn hammer(
    base: &str,
    connections: u64,
    duration: Duration,
    request: impl Fn(&ureq::Agent, &str) + Send + Sync + Clone + 'static,
) -> Rate {
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
                get_healthz(&agent, &base);
                start_line.wait();
                let end = Instant::now() + duration;
                while Instant::now() < end {
                    request(&agent, &base);
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    start_line.wait();
    let start = Instant::now();
    for thread in threads {
        thread.join().unwrap();
    }
    Rate {
        rate: count.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64(),
    }
}

/// `serve` in a folder, killed on drop.
struct Serve {
    child: Child,
    base: String,
}

impl Serve {
    fn start(dir: &std::path::Path) -> Serve {
        // DJINN_BENCH_BIN runs another build (a copy saved before a change, to compare).
        let binary = std::env::var("DJINN_BENCH_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_djinn-hooks").to_owned());
        let mut command = Command::new(binary);
        command
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--allow-private-network",
                "--http-threads",
                "8",
            ])
            .current_dir(dir)
            .env("DJINN_HOOKS_DB", dir.join("bench.db"))
            .env_remove("DJINN_HOOKS_TOKENS")
            .env_remove("DJINN_HOOKS_KEY_FILE");
        // Reads (and drops) the log lines, so the pipe never fills.
        let spawned = serve_process::spawn(&mut command, drop);
        // Not joined: it ends when `serve` does.
        drop(spawned.reader);
        let addr = spawned.addr.expect("serve printed its address");
        Serve {
            child: spawned.child,
            base: format!("http://{addr}"),
        }
    }

    /// SIGTERM and wait (10 s at most).
    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
