//! `djinn-hooks serve` end to end, on loopback only, bounded in time, on SQLite and (with
//! `DJINN_TEST_POSTGRES_URL`) on PostgreSQL with the same client: wrk (2 threads, 8 keep-alive
//! connections, 10 s) POSTs the `build.submitted` example to `/n/…/-/events` while `serve`'s own
//! worker delivers every accepted event to a sink on loopback that answers 204. An event counts
//! once it is accepted (202) and delivered: the rate is the events accepted over the time from
//! wrk's start to the sink's receipt of the last of them.
//!
//! Printed per backend: events/s end to end, intake latency p50 / p99 (wrk's, POST to 202),
//! `serve`'s peak RSS, and the ratio against Svix 1.100.0's figure from issue 25 (measured there
//! with the same client and an nginx receiver; Svix is not run here, so that ratio compares
//! this run with another machine's run).
//!
//! Not a divan benchmark: the figure is a rate over seconds. `cargo bench -p djinn-hooks
//! --bench serve` runs it (wrk must be installed: `apt-get install -y wrk`). Knobs
//! (environment): `SERVE_BENCH_SECONDS` (default 10), `SERVE_BENCH_CONNECTIONS` (default 8),
//! `SERVE_BENCH_THREADS` (wrk's, default 2), `SERVE_BENCH_IDLE` (default 0: N idle
//! connections held open on the SQLite server during a second run, to compare memory and
//! rate), `DJINN_BENCH_BIN` (run that build of `djinn-hooks`).

use std::net::TcpStream;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use djinn_hook_payload::{DEFAULT_API_SERVER, EventType, example_payload};
use djinn_hook_sign::headers;

#[path = "support/knobs.rs"]
mod knobs;
use knobs::{knob, load_average};
#[path = "support/serve.rs"]
mod serve;
#[allow(dead_code, reason = "this bench counts requests, not connections")]
#[path = "support/sink.rs"]
mod sink;

use serve::Serve;

/// The namespace the load goes to.
const NS: &str = "bench/load";

/// Svix 1.100.0's end-to-end rates from issue 25 (same wrk client, nginx receiver), events/s:
/// the SQLite-equivalent setup (memory or Redis queue) and PostgreSQL. Not measured here.
const SVIX_SQLITE: f64 = 1_104.0;
const SVIX_POSTGRES: f64 = 1_037.0;

fn main() {
    // `cargo bench` passes `--bench`; anything else (`cargo test --benches`) runs a token second.
    let seconds = if std::env::args().any(|a| a == "--bench") {
        knob("SERVE_BENCH_SECONDS", 10)
    } else {
        1
    };
    let load = Load {
        seconds,
        connections: knob("SERVE_BENCH_CONNECTIONS", 8),
        threads: knob("SERVE_BENCH_THREADS", 2),
    };
    let idle = knob("SERVE_BENCH_IDLE", 0);
    if Command::new("wrk").arg("--version").output().is_err() {
        eprintln!("serve bench: wrk not found (apt-get install -y wrk); nothing measured");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let script = dir.path().join("post.lua");
    std::fs::write(&script, wrk_script()).expect("write the wrk script");
    let sink = sink::Server::start();

    println!();
    println!(
        "serve end to end: wrk -t{} -c{} -d{}s, build.submitted, every accepted event delivered \
         to a 204 sink on loopback; load average {}",
        load.threads,
        load.connections,
        load.seconds,
        load_average()
    );
    println!();
    println!(
        "| backend | events/s end to end | accepted / delivered | intake p50 / p99 | serve peak RSS \
         | Svix (issue 25's figure, not this run's) | ratio |"
    );
    println!("|---|---|---|---|---|---|---|");

    let sqlite_db = dir.path().join("bench.db");
    let sqlite_db = sqlite_db.to_str().unwrap();
    let serve = start(dir.path(), sqlite_db, &sink);
    let sqlite = run(&serve, &sink, &load, &script);
    sqlite.print("SQLite", SVIX_SQLITE);
    let idle_run = (idle > 0).then(|| with_idle(&serve, &sink, &load, &script, idle));
    serve.stop(Duration::from_secs(10));

    match std::env::var("DJINN_TEST_POSTGRES_URL") {
        Ok(server) if !server.is_empty() => {
            let scratch = djinn_hook_testkit::ScratchDatabase::create(&server);
            let serve = start(dir.path(), &scratch.url, &sink);
            run(&serve, &sink, &load, &script).print("PostgreSQL", SVIX_POSTGRES);
            serve.stop(Duration::from_secs(10));
        }
        _ => println!("| PostgreSQL | not measured: DJINN_TEST_POSTGRES_URL is unset | | | | | |"),
    }
    println!();
    if let Some(line) = idle_run {
        println!("{line}");
    }
}

/// The client's shape.
struct Load {
    seconds: u64,
    connections: u64,
    threads: u64,
}

/// `serve` on `db` with one webhook (with a secret: every delivery is signed) to the sink.
fn start(dir: &std::path::Path, db: &str, sink: &sink::Server) -> Serve {
    let serve = Serve::start(dir, db, &[]);
    serve.create_webhook(
        NS,
        &format!(r#"{{"payload_url": "{}", "secret": "bench"}}"#, sink.url()),
    );
    serve
}

/// What one run measured.
struct Figures {
    accepted: u64,
    delivered: usize,
    /// Events accepted and delivered per second.
    rate: f64,
    p50: String,
    p99: String,
    /// `serve`'s VmHWM, KiB.
    peak_rss: u64,
}

impl Figures {
    fn print(&self, backend: &str, svix: f64) {
        println!(
            "| {backend} | {:.0} | {} / {} | {} / {} | {:.1} MiB | {svix:.0}/s | {:.1}x |",
            self.rate,
            self.accepted,
            self.delivered,
            self.p50,
            self.p99,
            self.peak_rss as f64 / 1024.0,
            self.rate / svix
        );
    }
}

/// One wrk run against `serve`, then a bounded wait for the sink to have every accepted event.
fn run(serve: &Serve, sink: &sink::Server, load: &Load, script: &std::path::Path) -> Figures {
    let before = sink.requests.load(std::sync::atomic::Ordering::SeqCst);
    let delivered = || sink.requests.load(std::sync::atomic::Ordering::SeqCst) - before;
    let start = Instant::now();
    let output = Command::new("wrk")
        .arg(format!("-t{}", load.threads))
        .arg(format!("-c{}", load.connections))
        .arg(format!("-d{}s", load.seconds))
        .args(["--latency", "-s"])
        .arg(script)
        .arg(format!("{}/n/{NS}/-/events", serve.base))
        .output()
        .expect("run wrk");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "wrk failed: {report}");
    let requests = wrk_requests(&report);
    let refused = wrk_field(&report, "Non-2xx or 3xx responses:").unwrap_or(0);
    assert_eq!(refused, 0, "every event accepted: {report}");
    let accepted = requests - refused;
    let deadline = Instant::now() + Duration::from_secs(120);
    while (delivered() as u64) < accepted && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(1));
    }
    let elapsed = start.elapsed();
    let delivered = delivered();
    assert!(
        delivered as u64 >= accepted,
        "every accepted event delivered: {delivered} of {accepted}"
    );
    Figures {
        accepted,
        delivered,
        rate: accepted as f64 / elapsed.as_secs_f64(),
        p50: wrk_percentile(&report, "50%"),
        p99: wrk_percentile(&report, "99%"),
        peak_rss: serve.memory("VmHWM"),
    }
}

/// The same run with `idle` connections held open: the line to print.
fn with_idle(
    serve: &Serve,
    sink: &sink::Server,
    load: &Load,
    script: &std::path::Path,
    idle: u64,
) -> String {
    let before = serve.memory("VmRSS");
    let held: Vec<TcpStream> = (0..idle)
        .map(|_| TcpStream::connect(serve.base.trim_start_matches("http://")).unwrap())
        .collect();
    // Let the server accept them all before measuring.
    thread::sleep(Duration::from_millis(500));
    let with_idle_rss = serve.memory("VmRSS");
    let figures = run(serve, sink, load, script);
    drop(held);
    format!(
        "SQLite with {idle} idle connections held open: {:.0} events/s end to end, intake p50 / \
         p99 {} / {}; serve RSS {:.1} MiB before opening them, {:.1} MiB with them open (+{:.1} MiB)",
        figures.rate,
        figures.p50,
        figures.p99,
        before as f64 / 1024.0,
        with_idle_rss as f64 / 1024.0,
        with_idle_rss.saturating_sub(before) as f64 / 1024.0
    )
}

/// wrk's Lua script: POST the `build.submitted` example with its event header.
fn wrk_script() -> String {
    let body = example_payload(EventType::BuildSubmitted, DEFAULT_API_SERVER).to_body();
    let body = String::from_utf8(body).unwrap();
    assert!(!body.contains("]==]"), "the body fits a Lua long string");
    format!(
        "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\n\
         wrk.headers[\"{}\"] = \"build.submitted\"\nwrk.body = [==[{body}]==]\n",
        headers::EVENT
    )
}

/// `12345 requests in 10.00s, …`: the count.
fn wrk_requests(report: &str) -> u64 {
    report
        .lines()
        .find(|l| l.contains(" requests in "))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("a request count in wrk's report: {report}"))
}

/// A `name: count` line of wrk's report.
fn wrk_field(report: &str, name: &str) -> Option<u64> {
    report
        .lines()
        .find_map(|l| l.trim().strip_prefix(name))
        .and_then(|rest| rest.trim().parse().ok())
}

/// A line of wrk's latency distribution (`    99%    4.70ms`), as printed.
fn wrk_percentile(report: &str, which: &str) -> String {
    report
        .lines()
        .find_map(|l| l.trim().strip_prefix(which))
        .map(|rest| rest.trim().to_owned())
        .unwrap_or_else(|| "?".to_owned())
}
