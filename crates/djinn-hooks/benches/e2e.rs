//! The whole path, end to end: N events accepted in batches, then the built `djinn-hooks worker`
//! (concurrency 16) signs, POSTs and records every one to a keep-alive HTTP server on 127.0.0.1,
//! timed until the worker returns (the last attempt committed). In the same run, the baseline: a
//! raw ureq loop on 16 threads posting the same bodies with the same headers (valid signatures,
//! computed beforehand) to the same server (no signing, no storage).
//!
//! Two more loops show where the worker's time goes (same receiver, same N, same threads):
//! `Deliverer::deliver` called in a loop (signing, the deliverer's headers and agent, the
//! attempt record; no worker, no store), and `Worker::run_until_idle` in this process over an
//! outbox in memory (the worker loop and the deliverer; no SQLite). Each loop prints its CPU
//! time per request: this process's (client and server), and the client threads' alone.
//!
//! Two receivers, each with its own baseline, one after the other in the same run:
//! - `sink`: a minimal hand-written HTTP/1.1 responder (reads the request, answers 204; no
//!   check). The server costs almost nothing, so this ratio is the worker against the fastest
//!   loop ureq can do: the harshest comparison.
//! - `receiver`: `djinn_hook_server::Receiver`, the receiver `listen` and the demo use
//!   (djinn-hook-server on axum, checks every `X-Djinn-CI-Signature`, answers 204), with a thread
//!   taking each `Received` off its channel. A realistic receiver: its cost is in both the baseline
//!   and the run.
//!
//! Run: `cargo bench -p djinn-hooks --bench e2e` (N = 20,000; about 5 s after the build).
//! `DJINN_BENCH_N=200000` sets N; `DJINN_BENCH_ONLY=sink` (or `receiver`) runs one receiver;
//! `DJINN_BENCH_MEMORY=1` also runs N = 200,000 (against the sink) to compare the worker's peak
//! memory (VmHWM of its process) with the N run. `DJINN_BENCH_WRAP="perf record -g"` runs the
//! worker under a profiler (the figures then include its overhead); `DJINN_BENCH_BIN=path` runs
//! that build of `djinn-hooks` instead of this one (say, a copy saved before a change). The
//! worker's CPU time (user + system, from `/proc/<pid>/stat`, read when it has exited and is not
//! yet reaped) is printed per delivery.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use djinn_hook_payload::{DEFAULT_API_SERVER, EventType, example_payload};
use djinn_hook_server::Receiver;
use djinn_hook_sign::headers;
use djinn_hook_sign::{Secret, sign};
use djinn_hook_store::{NewEvent, NewWebhook};

#[path = "support/cpu.rs"]
mod cpu;
#[path = "support/sink.rs"]
mod sink;
mod support;

use sink::Server;

const THREADS: usize = 16;
const NAMESPACE: &str = "wallace.breen/blackmesa";
const BATCH: usize = 1_000;
const SECRET: &str = "It's a Secret to Everybody";

/// One body to send: its event type, bytes, and `X-Djinn-CI-Signature` value.
struct Body {
    event: EventType,
    bytes: Vec<u8>,
    signature: String,
}

fn main() {
    let n: usize = std::env::var("DJINN_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let memory = std::env::var_os("DJINN_BENCH_MEMORY").is_some_and(|v| v == "1");
    let only = std::env::var("DJINN_BENCH_ONLY").unwrap_or_default();
    // `cargo bench` passes `--bench`; anything else (e.g. `cargo test --benches`) runs a token N.
    let n = if std::env::args().any(|a| a == "--bench") {
        n
    } else {
        300
    };

    let secret = Secret::from(SECRET);
    let bodies: Vec<Body> = EventType::ALL
        .iter()
        .map(|&event| {
            let bytes = example_payload(event, DEFAULT_API_SERVER).to_body();
            let signature = sign(&secret, &bytes).to_header_value();
            Body {
                event,
                bytes,
                signature,
            }
        })
        .collect();
    let mean_body = bodies.iter().map(|b| b.bytes.len()).sum::<usize>() / bodies.len();
    println!(
        "e2e: N = {n}, {THREADS} threads/concurrency, {} example bodies (mean {mean_body} B)",
        bodies.len(),
    );

    let mut summary = Vec::new();
    for kind in [Kind::Sink, Kind::Receiver] {
        if !only.is_empty() && only != kind.name() {
            continue;
        }
        let target = Target::start(kind);
        // Warm up both paths (connections, page cache, binary on disk).
        raw(&target, &bodies, 2_000);
        e2e(&target, &bodies, 500);

        let base = raw(&target, &bodies, n);
        let plain = deliverer_loop(&target, &bodies, n);
        let memory_worker = worker_without_store(&target, &bodies, n);
        let run = e2e(&target, &bodies, n);
        let raw_rate = n as f64 / base.elapsed.as_secs_f64();
        let rate = n as f64 / run.deliver.as_secs_f64();
        let ratio = 100.0 * rate / raw_rate;
        println!("[{}] {}", kind.name(), kind.describe());
        println!(
            "[{}] raw ureq loop:     {n} POSTs in {:.2} s = {raw_rate:.0}/s, CPU {:.1} us per \
             request (client and server; client {:.1} us)",
            kind.name(),
            base.elapsed.as_secs_f64(),
            per_event_us(base.cpu, n),
            per_event_us(base.client_cpu, n),
        );
        println!(
            "[{}] Deliverer loop:    {n} deliveries in {:.2} s = {:.0}/s, CPU {:.1} us per \
             request (client and server; client {:.1} us)",
            kind.name(),
            plain.elapsed.as_secs_f64(),
            n as f64 / plain.elapsed.as_secs_f64(),
            per_event_us(plain.cpu, n),
            per_event_us(plain.client_cpu, n),
        );
        println!(
            "[{}] Worker over an in-memory outbox: {n} deliveries in {:.2} s = {:.0}/s, CPU {:.1} us \
             per delivery (worker and server)",
            kind.name(),
            memory_worker.elapsed.as_secs_f64(),
            n as f64 / memory_worker.elapsed.as_secs_f64(),
            per_event_us(memory_worker.cpu, n),
        );
        println!(
            "[{}] accept (batches of {BATCH}): {n} events in {:.2} s = {:.0}/s",
            kind.name(),
            run.accept.as_secs_f64(),
            n as f64 / run.accept.as_secs_f64()
        );
        println!(
            "[{}] worker end to end: {n} deliveries in {:.2} s = {rate:.0}/s ({ratio:.0}% of raw), \
             CPU {:.1} us per delivery (server {:.1} us), peak memory {} KiB",
            kind.name(),
            run.deliver.as_secs_f64(),
            per_event_us(run.cpu, n),
            per_event_us(run.server_cpu, n),
            run.peak_kib
        );
        println!(
            "[{}] server: {} requests{}",
            kind.name(),
            target.requests(),
            match &target.connections {
                Some(c) => format!(" on {} connections", c.load(Ordering::SeqCst)),
                None => String::new(),
            }
        );
        summary.push(format!(
            "{}: worker {rate:.0}/s, raw {raw_rate:.0}/s: {ratio:.1}% of raw, CPU {:.1} us/delivery",
            kind.name(),
            run.cpu.as_secs_f64() * 1e6 / n as f64
        ));
        if memory && kind == Kind::Sink {
            let big = 200_000;
            let run = e2e(&target, &bodies, big);
            println!(
                "[{}] worker end to end: {big} deliveries in {:.2} s = {:.0}/s, peak memory {} KiB",
                kind.name(),
                run.deliver.as_secs_f64(),
                big as f64 / run.deliver.as_secs_f64(),
                run.peak_kib
            );
        }
    }
    for line in summary {
        println!("summary: {line}");
    }
}

/// Which receiver the webhook points at.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Sink,
    Receiver,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Sink => "sink",
            Kind::Receiver => "receiver",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Kind::Sink => "minimal hand-written HTTP/1.1 responder, 204, no signature check",
            Kind::Receiver => {
                "djinn_hook_server::Receiver (axum, verifies the signature, 204), as `listen`"
            }
        }
    }
}

/// A running receiver and its request count.
struct Target {
    url: String,
    requests: Arc<AtomicUsize>,
    /// Requests whose signature did not verify (the `receiver` only).
    invalid: Arc<AtomicUsize>,
    /// Connections accepted (the `sink` only).
    connections: Option<Arc<AtomicUsize>>,
    stop: Arc<AtomicBool>,
    /// Ends the receiver's taker thread (which owns and drops the receiver).
    taker: Option<thread::JoinHandle<()>>,
    _sink: Option<Server>,
}

impl Target {
    fn start(kind: Kind) -> Target {
        let stop = Arc::new(AtomicBool::new(false));
        let invalid = Arc::new(AtomicUsize::new(0));
        match kind {
            Kind::Sink => {
                let server = Server::start();
                Target {
                    url: server.url(),
                    requests: Arc::clone(&server.requests),
                    invalid,
                    connections: Some(Arc::clone(&server.connections)),
                    stop,
                    taker: None,
                    _sink: Some(server),
                }
            }
            Kind::Receiver => {
                let receiver = Receiver::start("127.0.0.1:0", Secret::from(SECRET)).unwrap();
                let url = receiver.url();
                let requests = Arc::new(AtomicUsize::new(0));
                let (r, i, s) = (requests.clone(), invalid.clone(), stop.clone());
                // What `listen` does with each request, minus the printing: take it off the
                // channel and look at it.
                let taker = thread::spawn(move || {
                    while !s.load(Ordering::SeqCst) {
                        if let Some(got) = receiver.next_timeout(Duration::from_millis(20)) {
                            if !got.signature_valid {
                                i.fetch_add(1, Ordering::SeqCst);
                            }
                            r.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                });
                Target {
                    url,
                    requests,
                    invalid,
                    connections: None,
                    stop,
                    taker: Some(taker),
                    _sink: None,
                }
            }
        }
    }

    fn url(&self) -> String {
        self.url.clone()
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Waits (up to 5 s) until the server counted `expected` requests; the count.
    fn wait_for(&self, expected: usize) -> usize {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.requests() < expected && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(1));
        }
        self.requests()
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(taker) = self.taker.take() {
            let _ = taker.join();
        }
    }
}

/// The baseline: `n` POSTs of the same bodies and headers on `THREADS` threads, one shared agent.
fn raw(target: &Target, bodies: &[Body], n: usize) -> Raw {
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
    let url = target.url();
    run_threads(target, n, |i| {
        let body = &bodies[i % bodies.len()];
        // The same header names and value sizes a delivery sends.
        let status = agent
            .post(&url)
            .header("Content-Type", "application/json; charset=utf-8")
            .header(headers::EVENT, body.event.name())
            .header(headers::HOOK_ID, "1")
            .header(headers::DELIVERY, "0b7e8a49-2c1f-4b8e-9d55-1f1d3f0a7c11")
            .header(headers::SIGNATURE, &body.signature)
            .send(&body.bytes[..])
            .expect("raw POST")
            .status();
        assert_eq!(status.as_u16(), 204);
    })
}

/// Calls `post(i)` for i in 0..n on `THREADS` threads; the time, this process's CPU time, and
/// the client threads' CPU time.
fn run_threads(target: &Target, n: usize, post: impl Fn(usize) + Sync) -> Raw {
    measured(target, n, || {
        let next = AtomicUsize::new(0);
        let client_ticks = std::sync::Mutex::new(Duration::ZERO);
        thread::scope(|scope| {
            for _ in 0..THREADS {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            *client_ticks.lock().unwrap() +=
                                cpu::cpu_time("/proc/thread-self/stat");
                            return;
                        }
                        post(i);
                    }
                });
            }
        });
        client_ticks.into_inner().unwrap()
    })
}

/// Times `work` (which makes `n` POSTs to `target` and returns its client threads' CPU time,
/// or zero if it cannot tell them apart) and this process's CPU time meanwhile; checks that
/// the server got the `n` POSTs.
fn measured(target: &Target, n: usize, work: impl FnOnce() -> Duration) -> Raw {
    let before = target.requests();
    let cpu_before = own_cpu_time();
    let started = Instant::now();
    let client_cpu = work();
    let elapsed = started.elapsed();
    assert_eq!(
        target.wait_for(before + n) - before,
        n,
        "the server got every POST once"
    );
    Raw {
        elapsed,
        cpu: own_cpu_time().saturating_sub(cpu_before),
        client_cpu,
    }
}

/// A deliverer allowed to post to the loopback receivers.
fn loopback_deliverer() -> djinn_hook_deliver::Deliverer {
    let mut deliver = djinn_hook_deliver::DeliverConfig::default();
    deliver.allow_private_network = true;
    djinn_hook_deliver::Deliverer::new(deliver)
}

/// A first delivery of `body` to `target`, signed with the bench's secret.
fn delivery_request(target: &Target, body: &Body) -> djinn_hook_deliver::DeliveryRequest {
    let mut request = djinn_hook_deliver::DeliveryRequest::new(
        1,
        uuid::Uuid::new_v4(),
        body.event,
        target.url(),
        body.bytes.clone(),
    );
    request.secret = Some(SECRET.into());
    request
}

/// The same loop as [`raw`], through `Deliverer::deliver` (signing, its headers, its agent,
/// the attempt record), without the store and the worker.
fn deliverer_loop(target: &Target, bodies: &[Body], n: usize) -> Raw {
    let deliverer = loopback_deliverer();
    let requests: Vec<djinn_hook_deliver::DeliveryRequest> = bodies
        .iter()
        .map(|body| delivery_request(target, body))
        .collect();
    run_threads(target, n, |i| {
        let attempt = deliverer.deliver(&requests[i % requests.len()]);
        assert_eq!(attempt.response_status, Some(204));
    })
}

/// An [`Outbox`](djinn_hook_deliver::Outbox) in memory: tasks handed out once, completions
/// counted and dropped. No store: what the worker loop and the deliverer cost by themselves.
/// Not djinn-hook-outbox's `MemoryOutbox`, which follows the store's rules (leases, caps, a
/// look at every task for each one claimed): its own cost would be measured with the worker's.
struct BareOutbox {
    tasks: std::sync::Mutex<Vec<djinn_hook_deliver::Task>>,
    completed: AtomicUsize,
}

impl djinn_hook_deliver::Outbox for BareOutbox {
    fn claim(
        &self,
        claim: &djinn_hook_deliver::ClaimRequest,
    ) -> Result<djinn_hook_deliver::Claimed, djinn_hook_deliver::OutboxError> {
        let mut tasks = self.tasks.lock().unwrap();
        let keep = tasks.len().saturating_sub(claim.limit);
        Ok(djinn_hook_deliver::Claimed {
            tasks: tasks.split_off(keep),
            held_back: false,
        })
    }

    fn put_off(
        &self,
        _put_off: &[djinn_hook_deliver::PutOff],
    ) -> Result<(), djinn_hook_deliver::OutboxError> {
        unreachable!("no breaker opens against a healthy receiver")
    }

    fn complete(
        &self,
        done: &[djinn_hook_deliver::Completion],
    ) -> Result<(), djinn_hook_deliver::OutboxError> {
        self.completed.fetch_add(done.len(), Ordering::Relaxed);
        Ok(())
    }
}

/// `Worker::run_until_idle` in this process over a [`BareOutbox`] of `n` tasks: the worker
/// end to end minus SQLite. The CPU time is this process's (worker and server together).
fn worker_without_store(target: &Target, bodies: &[Body], n: usize) -> Raw {
    let tasks = (0..n)
        .map(|i| djinn_hook_deliver::Task {
            task_id: i as i64,
            lease: djinn_hook_deliver::LeaseToken::new(),
            lease_until: time::OffsetDateTime::now_utc() + std::time::Duration::from_secs(300),
            event_created_at: time::OffsetDateTime::now_utc(),
            request: delivery_request(target, &bodies[i % bodies.len()]),
            hook_failing_since: None,
            max_in_flight: None,
        })
        .collect();
    let outbox = BareOutbox {
        tasks: std::sync::Mutex::new(tasks),
        completed: AtomicUsize::new(0),
    };
    let worker = djinn_hook_deliver::Worker::new(
        &outbox,
        loopback_deliverer(),
        djinn_hook_deliver::RetryPolicy::default(),
        {
            let mut config = djinn_hook_deliver::WorkerConfig::default();
            config.concurrency = THREADS;
            config
        },
    );
    let run = measured(target, n, || {
        let stats = worker.run_until_idle();
        assert_eq!(stats.delivered, n as u64);
        // The worker's threads are not told apart from the server's.
        Duration::ZERO
    });
    assert_eq!(outbox.completed.load(Ordering::Relaxed), n);
    run
}

/// CPU microseconds per event.
fn per_event_us(cpu: Duration, n: usize) -> f64 {
    cpu.as_secs_f64() * 1e6 / n as f64
}

/// What one raw run measured.
struct Raw {
    elapsed: Duration,
    /// This process's CPU time over the run: the client loop and the server together.
    cpu: Duration,
    /// The client threads' CPU time (each read as it ends; zero where not measured).
    client_cpu: Duration,
}

/// This process's own CPU time (utime + stime, without reaped children), in 10 ms ticks.
fn own_cpu_time() -> Duration {
    cpu::cpu_time("/proc/self/stat")
}

/// What one end-to-end run measured.
struct Run {
    accept: Duration,
    deliver: Duration,
    /// The worker process's CPU time, user + system.
    cpu: Duration,
    /// This process's CPU time while the worker ran: the server's (and the 5 ms polling of
    /// the worker's `/proc` files).
    server_cpu: Duration,
    peak_kib: u64,
}

/// A fresh database with one webhook on the server, `n` events accepted in
/// batches, then `djinn-hooks worker --until-idle --concurrency 16` timed.
fn e2e(target: &Target, bodies: &[Body], n: usize) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let (store, db, key_file) = support::fresh_store(&dir);
    store.ensure_namespace(NAMESPACE).unwrap();
    let mut hook = NewWebhook::new(NAMESPACE, target.url());
    hook.secret = Some(SECRET.to_owned());
    store.create_webhook(hook).unwrap();

    let started = Instant::now();
    let mut i = 0;
    while i < n {
        let batch: Vec<NewEvent> = (i..n.min(i + BATCH))
            .map(|j| {
                let body = &bodies[j % bodies.len()];
                NewEvent::new(NAMESPACE, body.event, body.bytes.clone())
            })
            .collect();
        i += batch.len();
        store.accept_events(batch).unwrap();
    }
    let accept = started.elapsed();
    drop(store);

    let before = target.requests();
    let server_before = own_cpu_time();
    let (deliver, cpu, peak_kib) = worker(&db, &key_file);
    let server_cpu = own_cpu_time().saturating_sub(server_before);
    let delivered = target.wait_for(before + n) - before;
    assert_eq!(delivered, n, "the server got every event once");
    assert_eq!(
        target.invalid.load(Ordering::SeqCst),
        0,
        "every signature verified"
    );
    Run {
        accept,
        deliver,
        cpu,
        server_cpu,
        peak_kib,
    }
}

/// Runs the worker until idle; its wall time, its CPU time and its peak resident memory
/// (VmHWM, read from /proc while it runs; the high-water mark only grows).
fn worker(db: &Path, key_file: &Path) -> (Duration, Duration, u64) {
    let started = Instant::now();
    let mut child = support::spawn_worker(db, key_file, THREADS, &["--until-idle"]);
    let status_file = format!("/proc/{}/status", child.id());
    let stat_file = format!("/proc/{}/stat", child.id());
    let mut peak = 0;
    let mut cpu = Duration::ZERO;
    loop {
        if let Ok(status) = std::fs::read_to_string(&status_file)
            && let Some(kib) = vm_hwm(&status)
        {
            peak = peak.max(kib);
        }
        // Read before reaping: once the process has exited (a zombie), this is its total.
        if let Ok(stat) = std::fs::read_to_string(&stat_file)
            && let Some(time) = cpu::cpu_ticks(&stat, 4)
        {
            cpu = time;
        }
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "worker failed: {status}");
            return (started.elapsed(), cpu, peak);
        }
        thread::sleep(Duration::from_millis(5));
    }
}

fn vm_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
