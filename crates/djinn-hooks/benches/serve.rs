//! Load test of `djinn-hooks serve`, on loopback only, bounded in time: events POSTed to
//! `/n/:username/:path/-/events` from several keep-alive connections while the worker delivers
//! them to a local receiver, next to the same server's `/healthz` rate in the same run.
//!
//! A second load phase runs with `SERVE_BENCH_IDLE` idle connections (default 10,000) held open
//! on the server, and is compared with the first: throughput ratio and the server's memory.
//!
//! Not a divan benchmark: what it measures (throughput over seconds, end-to-end latency through
//! the store and the worker to a receiver) is not a per-iteration time. `cargo bench -p
//! djinn-hooks --bench serve` runs it and prints a Markdown table. Knobs (environment):
//! `SERVE_BENCH_CONNECTIONS` (default 4), `SERVE_BENCH_SECONDS` (each load phase, default 5;
//! keep it under the server's 10 s idle timeout, or the idle connections are closed during the
//! second phase), `SERVE_BENCH_IDLE` (default 10000; 0 skips the second phase),
//! `DJINN_BENCH_BIN` (run that build of `djinn-hooks` instead of this one).

use std::collections::HashMap;
use std::net::TcpStream;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use djinn_hook_payload::{DEFAULT_API_SERVER, EventType, example_payload};
use djinn_hook_server::Receiver;
use djinn_hook_sign::Secret;
use djinn_hook_sign::headers;

#[path = "../tests/it/serve_process.rs"]
mod serve_process;

/// The namespace the load goes to.
const NS: &str = "bench/load";

fn main() {
    let connections = knob("SERVE_BENCH_CONNECTIONS", 4);
    let seconds = knob("SERVE_BENCH_SECONDS", 5);
    let idle = knob("SERVE_BENCH_IDLE", 10_000);
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
        get_healthz(agent, base);
    });

    let plain = load(&serve, &receiver, connections, load_for);
    let rss_after_plain = serve.memory("VmRSS");

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
    plain.print(healthz_idle.rate);
    println!(
        "| serve peak RSS (VmHWM) after the load | {} | |",
        mib(serve.memory("VmHWM"))
    );
    println!();

    if idle > 0 {
        let before = serve.memory("VmRSS");
        let held: Vec<TcpStream> = (0..idle)
            .map(|_| TcpStream::connect(serve.base.trim_start_matches("http://")).unwrap())
            .collect();
        // Let the server accept them all before measuring.
        thread::sleep(Duration::from_millis(500));
        let with_idle_rss = serve.memory("VmRSS");
        let loaded = load(&serve, &receiver, connections, load_for);
        let still_open = held.iter().filter(|c| is_open(c)).count();
        println!("with {idle} idle connections held open (opened after the run above):");
        println!();
        println!("| measure | value | ratio to the run without |");
        println!("|---|---|---|");
        println!(
            "| events accepted | {:.0} /s | {:.2} |",
            loaded.accepted,
            loaded.accepted / plain.accepted
        );
        println!(
            "| deliveries | {:.0} /s | {:.2} |",
            loaded.delivered_rate,
            loaded.delivered_rate / plain.delivered_rate
        );
        println!(
            "| intake latency p50 / p99 | {} / {} | |",
            ms(loaded.intake.0),
            ms(loaded.intake.1)
        );
        println!(
            "| serve RSS: before opening / with them open / after this load | {} / {} / {} | +{} for the idle connections |",
            mib(before),
            mib(with_idle_rss),
            mib(serve.memory("VmRSS")),
            mib(with_idle_rss.saturating_sub(before))
        );
        println!(
            "| serve peak RSS (VmHWM) | {} | (after the first run: {}) |",
            mib(serve.memory("VmHWM")),
            mib(rss_after_plain)
        );
        println!("| idle connections still open at the end | {still_open} of {idle} | |");
        println!();
        drop(held);
    }
    serve.stop();
}

/// What one load phase measured.
struct Phase {
    /// Events accepted (202) per second.
    accepted: f64,
    /// `/healthz` per second on one more connection during the phase.
    healthz: f64,
    /// Deliveries per second, first POST to last arrival.
    delivered_rate: f64,
    /// POST sent to 202 read: p50, p99.
    intake: (Duration, Duration),
    /// POST sent to the receiver reading it: p50, p99, max.
    end_to_end: (Duration, Duration, Duration),
    total: usize,
    delivered: usize,
}

impl Phase {
    fn print(&self, baseline: f64) {
        println!(
            "| events accepted (POST /events, 202) | {:.0} /s | {:.2} |",
            self.accepted,
            self.accepted / baseline
        );
        println!(
            "| /healthz during the load (1 more connection) | {:.0} req/s | {:.2} |",
            self.healthz,
            self.healthz / baseline
        );
        println!(
            "| deliveries (first POST to last arrival) | {:.0} /s | {:.2} |",
            self.delivered_rate,
            self.delivered_rate / baseline
        );
        println!(
            "| intake latency p50 / p99 (POST sent -> 202 read) | {} / {} | |",
            ms(self.intake.0),
            ms(self.intake.1)
        );
        println!(
            "| end-to-end latency p50 / p99 / max (POST sent -> receiver got it) | {} / {} / {} | |",
            ms(self.end_to_end.0),
            ms(self.end_to_end.1),
            ms(self.end_to_end.2)
        );
        println!(
            "| events accepted / delivered | {} / {} | |",
            self.total, self.delivered
        );
    }
}

/// Events POSTed from `connections` connections for `load_for` (one more connection on
/// `/healthz`), then a bounded wait for every accepted event to reach the receiver.
fn load(serve: &Serve, receiver: &Receiver, connections: u64, load_for: Duration) -> Phase {
    let body = example_payload(EventType::BuildSubmitted, DEFAULT_API_SERVER).to_body();
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let intake: Arc<Mutex<Vec<Duration>>> = Arc::default();
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
        let intake = Arc::clone(&intake);
        hammer(&serve.base, connections, load_for, move |agent, base| {
            let start = Instant::now();
            let reply = agent
                .post(format!("{base}/n/{NS}/-/events"))
                .header(headers::EVENT, "build.submitted")
                .header("Content-Type", "application/json")
                .send(&body[..])
                .expect("POST an event");
            assert_eq!(reply.status().as_u16(), 202);
            let text = reply.into_body().read_to_string().unwrap();
            intake.lock().unwrap().push(start.elapsed());
            let accepted: serde_json::Value = serde_json::from_str(&text).unwrap();
            let id = accepted["event_id"]
                .as_str()
                .unwrap_or_else(|| panic!("an event_id in {text}"))
                .to_owned();
            sent.lock().unwrap().insert(id, start);
        })
    };
    stop.store(true, Ordering::Relaxed);
    let healthz = healthz_load.join().unwrap();

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
    let mut intake = intake.lock().unwrap().clone();
    intake.sort();
    let last_arrival = arrived.values().max().copied();
    let first_sent = sent.values().min().copied();
    let delivered = latencies.len();
    let delivered_rate = match (first_sent, last_arrival) {
        (Some(first), Some(last)) => delivered as f64 / last.duration_since(first).as_secs_f64(),
        _ => 0.0,
    };
    assert_eq!(delivered, total, "every accepted event was delivered");
    Phase {
        accepted: events.rate,
        healthz,
        delivered_rate,
        intake: (pct(&intake, 0.50), pct(&intake, 0.99)),
        end_to_end: (
            pct(&latencies, 0.50),
            pct(&latencies, 0.99),
            pct(&latencies, 1.0),
        ),
        total,
        delivered,
    }
}

/// The `p` quantile of sorted durations.
fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// Whether the server has not closed `stream` (nothing to read, no EOF).
fn is_open(stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    matches!(stream.peek(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
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

    /// A `kB` line of the server's `/proc/<pid>/status` (`VmRSS`, `VmHWM`), in KiB.
    fn memory(&self, key: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
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
