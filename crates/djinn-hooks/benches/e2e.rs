//! The whole path, end to end: N events accepted in batches, then the built `djinn-hooks worker`
//! (concurrency 16) signs, POSTs and records every one to a keep-alive HTTP server on 127.0.0.1,
//! timed until the worker returns (the last attempt committed). In the same run, the baseline: a
//! raw ureq loop on 16 threads posting the same bodies with the same headers to the same server
//! (no signing, no storage).
//!
//! Run: `cargo bench -p djinn-hooks --bench e2e` (N = 20,000; about 10 s).
//! `DJINN_BENCH_N=200000` sets N; `DJINN_BENCH_MEMORY=1` also runs N = 200,000 to compare the
//! worker's peak memory (VmHWM of its process) with the N run. `DJINN_BENCH_WRAP="perf record -g"`
//! runs the worker under a profiler (the figures then include its overhead).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use djinn_hook_payload::{DEFAULT_API_SERVER, EventType, example_payload};
use djinn_hook_store::{NewEvent, NewWebhook, SecretKey, Store};

const THREADS: usize = 16;
const NAMESPACE: &str = "wallace.breen/blackmesa";
const BATCH: usize = 1_000;

fn main() {
    let n: usize = std::env::var("DJINN_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let memory = std::env::var_os("DJINN_BENCH_MEMORY").is_some_and(|v| v == "1");
    // `cargo bench` passes `--bench`; anything else (e.g. `cargo test --benches`) runs a token N.
    let n = if std::env::args().any(|a| a == "--bench") {
        n
    } else {
        300
    };

    let server = Server::start();
    let bodies: Vec<(EventType, Vec<u8>)> = EventType::ALL
        .iter()
        .map(|&e| (e, example_payload(e, DEFAULT_API_SERVER).to_body()))
        .collect();
    let mean_body = bodies.iter().map(|(_, b)| b.len()).sum::<usize>() / bodies.len();
    println!(
        "e2e: {THREADS} threads/concurrency, {} example bodies (mean {mean_body} B), server {}",
        bodies.len(),
        server.addr
    );

    // Warm up both paths (connections, page cache, binary on disk).
    raw(&server, &bodies, 2_000);
    e2e(&server, &bodies, 500);

    let base = raw(&server, &bodies, n);
    let run = e2e(&server, &bodies, n);
    let raw_rate = n as f64 / base.as_secs_f64();
    let rate = n as f64 / run.deliver.as_secs_f64();
    println!(
        "raw ureq loop:     {n} POSTs in {:.2} s = {raw_rate:.0}/s",
        base.as_secs_f64()
    );
    println!(
        "accept (batches of {BATCH}): {n} events in {:.2} s = {:.0}/s",
        run.accept.as_secs_f64(),
        n as f64 / run.accept.as_secs_f64()
    );
    println!(
        "worker end to end: {n} deliveries in {:.2} s = {rate:.0}/s ({:.0}% of raw), peak memory {} KiB",
        run.deliver.as_secs_f64(),
        100.0 * rate / raw_rate,
        run.peak_kib
    );
    println!(
        "server: {} requests on {} connections",
        server.requests.load(Ordering::SeqCst),
        server.connections.load(Ordering::SeqCst)
    );
    if memory {
        let big = 200_000;
        let run = e2e(&server, &bodies, big);
        println!(
            "worker end to end: {big} deliveries in {:.2} s = {:.0}/s, peak memory {} KiB",
            run.deliver.as_secs_f64(),
            big as f64 / run.deliver.as_secs_f64(),
            run.peak_kib
        );
    }
}

/// The baseline: `n` POSTs of the same bodies and headers on `THREADS` threads, one shared agent.
fn raw(server: &Server, bodies: &[(EventType, Vec<u8>)], n: usize) -> Duration {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .user_agent("Djinn-CI-Hook")
        .accept("*/*")
        .accept_encoding("")
        .max_idle_connections(64)
        .max_idle_connections_per_host(THREADS)
        .build()
        .into();
    let url = server.url();
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return;
                    }
                    let (event, body) = &bodies[i % bodies.len()];
                    // The same header names and value sizes a delivery sends.
                    let status = agent
                        .post(&url)
                        .header("Content-Type", "application/json; charset=utf-8")
                        .header("X-Djinn-CI-Event", event.name())
                        .header("X-Djinn-CI-Hook-ID", "1")
                        .header("X-Djinn-CI-Delivery", "0b7e8a49-2c1f-4b8e-9d55-1f1d3f0a7c11")
                        .header(
                            "X-Djinn-CI-Signature",
                            "sha256=0000000000000000000000000000000000000000000000000000000000000000",
                        )
                        .send(&body[..])
                        .expect("raw POST")
                        .status();
                    assert_eq!(status.as_u16(), 204);
                }
            });
        }
    });
    started.elapsed()
}

/// What one end-to-end run measured.
struct Run {
    accept: Duration,
    deliver: Duration,
    peak_kib: u64,
}

/// A fresh database with one webhook on the server, `n` events accepted in
/// batches, then `djinn-hooks worker --until-idle --concurrency 16` timed.
fn e2e(server: &Server, bodies: &[(EventType, Vec<u8>)], n: usize) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bench.db");
    let key_file = dir.path().join("bench.key");
    let key = SecretKey::generate().unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&key_file)
        .unwrap()
        .write_all(key.as_bytes())
        .unwrap();
    let store = Store::open(&db, key).unwrap();
    store.ensure_namespace(NAMESPACE).unwrap();
    let mut hook = NewWebhook::new(NAMESPACE, server.url());
    hook.secret = Some("It's a Secret to Everybody".to_owned());
    store.create_webhook(hook).unwrap();

    let started = Instant::now();
    let mut i = 0;
    while i < n {
        let batch: Vec<NewEvent> = (i..n.min(i + BATCH))
            .map(|j| {
                let (event, body) = &bodies[j % bodies.len()];
                NewEvent {
                    namespace: NAMESPACE.to_owned(),
                    event: *event,
                    payload: body.clone(),
                }
            })
            .collect();
        i += batch.len();
        store.accept_events(batch).unwrap();
    }
    let accept = started.elapsed();
    drop(store);

    let before = server.requests.load(Ordering::SeqCst);
    let (deliver, peak_kib) = worker(&db, &key_file);
    let delivered = server.requests.load(Ordering::SeqCst) - before;
    assert_eq!(delivered, n, "the server got every event once");
    Run {
        accept,
        deliver,
        peak_kib,
    }
}

/// Runs the worker until idle; its wall time and its peak resident memory
/// (VmHWM, read from /proc while it runs; the high-water mark only grows).
fn worker(db: &Path, key_file: &Path) -> (Duration, u64) {
    let started = Instant::now();
    // DJINN_BENCH_WRAP="strace -f -c -o /tmp/trace" runs the worker under a profiler.
    let wrap = std::env::var("DJINN_BENCH_WRAP").unwrap_or_default();
    let mut words = wrap.split_whitespace();
    let mut command = match words.next() {
        Some(program) => {
            let mut command = Command::new(program);
            command.args(words).arg(env!("CARGO_BIN_EXE_djinn-hooks"));
            command
        }
        None => Command::new(env!("CARGO_BIN_EXE_djinn-hooks")),
    };
    let mut child = command
        .arg("--db")
        .arg(db)
        .arg("--key-file")
        .arg(key_file)
        .args([
            "worker",
            "--until-idle",
            "--allow-private-network",
            "--concurrency",
        ])
        .arg(THREADS.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn djinn-hooks worker");
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        if let Ok(status) = std::fs::read_to_string(&status_file)
            && let Some(kib) = vm_hwm(&status)
        {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "worker failed: {status}");
            return (started.elapsed(), peak);
        }
        thread::sleep(Duration::from_millis(5));
    }
}

fn vm_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A keep-alive HTTP/1.1 sink on 127.0.0.1: one thread per connection, 204 to every request.
struct Server {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, c, s) = (requests.clone(), connections.clone(), stop.clone());
        thread::spawn(move || {
            for stream in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                c.fetch_add(1, Ordering::SeqCst);
                let r = r.clone();
                thread::spawn(move || sink(stream, &r));
            }
        });
        Server {
            addr,
            requests,
            connections,
            stop,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

/// Reads requests (Content-Length bodies) and answers 204 until the peer closes.
fn sink(stream: TcpStream, requests: &AtomicUsize) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let mut line = String::new();
    let mut body = Vec::new();
    loop {
        let mut length = 0;
        let mut first = true;
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line == "\r\n" {
                break;
            }
            if first {
                first = false;
                continue;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        body.resize(length, 0);
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        requests.fetch_add(1, Ordering::SeqCst);
        if writer
            .write_all(b"HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n")
            .is_err()
        {
            return;
        }
    }
}
