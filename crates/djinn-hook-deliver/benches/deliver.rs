//! Delivery throughput against a local keep-alive HTTP/1.1 server on 127.0.0.1, at 1, 4 and
//! 16 client threads: the full `Deliverer` path (signing each body, building the attempt record)
//! against a raw ureq loop (same agent settings, same server, the same header bytes computed
//! once, no signing, no recording).
//!
//! Run: `cargo bench -p djinn-hook-deliver --bench deliver`. After divan's table, an interleaved
//! summary (raw and deliverer rounds alternating, so load from elsewhere hits both alike) prints
//! deliveries/s, the ratio, and connections the server accepted per delivery (keep-alive reuse).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, LazyLock, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use divan::Bencher;
use divan::counter::ItemsCount;
use djinn_hook_deliver::{AttemptOutcome, DeliverConfig, Deliverer, DeliveryRequest};
use djinn_hook_payload::EventType;
use ureq::Agent;
use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

/// Requests per sample (split across the client threads).
const PER_SAMPLE: usize = 480;
const THREADS: [usize; 3] = [1, 4, 16];

fn main() {
    divan::main();
    // Only on a full run (`cargo bench` passes just `--bench`), not with filters or `--list`.
    if std::env::args().skip(1).all(|arg| arg == "--bench") {
        summary();
    }
    BENCH.server.stop();
}

struct Bench {
    server: BenchServer,
    deliverer: Deliverer,
    raw: Agent,
    /// The same header names and value lengths a delivery sends, computed once.
    raw_headers: Vec<(String, String)>,
    body: Vec<u8>,
}

static BENCH: LazyLock<Bench> = LazyLock::new(|| {
    let server = BenchServer::start();
    let mut config = DeliverConfig::default();
    config.allow_private_network = true;
    let raw = raw_agent(&config);
    let body = payload();
    let deliverer = Deliverer::new(config);
    // One real delivery's headers, reused verbatim: the raw loop puts the same bytes on the
    // wire without signing or recording anything.
    let raw_headers = deliverer
        .deliver(&request(&server.url(), &body, 0))
        .request_headers;
    Bench {
        server,
        deliverer,
        raw,
        raw_headers,
        body,
    }
});

/// A build-sized JSON body (about 2 KiB).
fn payload() -> Vec<u8> {
    let mut body = String::from(r#"{"id":1,"status":"passed","manifest":""#);
    while body.len() < 2000 {
        body.push_str("driver: qemu\\nimage: debian\\nsources: [https://example.com/r.git]\\n");
    }
    body.push_str(r#"","tags":["a","b"],"pinned":false}"#);
    body.into_bytes()
}

/// The same ureq settings as the `Deliverer`'s agent, with a resolver that only parses the IP
/// literal (ureq's default one spawns a thread per lookup when a timeout is set, which would
/// slow the baseline down).
fn raw_agent(config: &DeliverConfig) -> Agent {
    let agent_config = Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .user_agent(&config.user_agent)
        .accept("*/*")
        .accept_encoding("")
        .timeout_global(Some(config.timeout))
        .timeout_resolve(Some(config.connect_timeout))
        .timeout_connect(Some(config.connect_timeout))
        .max_idle_connections(config.max_idle_connections)
        .max_idle_connections_per_host(config.max_idle_connections_per_host)
        .build();
    Agent::with_parts(agent_config, DefaultConnector::new(), LiteralResolver)
}

#[derive(Debug)]
struct LiteralResolver;

impl Resolver for LiteralResolver {
    fn resolve(
        &self,
        uri: &Uri,
        _: &Config,
        _: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let addr: SocketAddr = uri.authority().unwrap().as_str().parse().unwrap();
        let mut addrs = self.empty();
        addrs.push(addr);
        Ok(addrs)
    }
}

fn request(url: &str, body: &[u8], thread: usize) -> DeliveryRequest {
    let mut request = DeliveryRequest::new(
        thread as i64,
        uuid::Uuid::new_v4(),
        EventType::BuildFinished,
        url,
        body.to_vec(),
    );
    request.secret = Some("bench secret, 32 bytes long!!!!!".into());
    request
}

/// One delivery through the `Deliverer`: sign, POST, read, record.
fn deliver_one(request: &DeliveryRequest) {
    let attempt = BENCH.deliverer.deliver(request);
    assert_eq!(attempt.outcome, AttemptOutcome::Success, "{attempt:?}");
    divan::black_box(attempt);
}

/// One plain POST with the same agent settings and header bytes, body read to the end.
fn raw_one(url: &str, sink: &mut Vec<u8>) {
    let bench = &*BENCH;
    let mut post = bench.raw.post(url);
    for (name, value) in &bench.raw_headers {
        post = post.header(name, value);
    }
    let response = post.send(&bench.body[..]).unwrap();
    assert_eq!(response.status().as_u16(), 200);
    sink.clear();
    response
        .into_body()
        .into_reader()
        .read_to_end(sink)
        .unwrap();
}

/// `total` deliveries through the `Deliverer` on `threads` threads.
fn run_deliverer(threads: usize, total: usize) {
    let url = BENCH.server.url();
    thread::scope(|scope| {
        for thread in 0..threads {
            let request = request(&url, &BENCH.body, thread);
            scope.spawn(move || {
                for _ in 0..total / threads {
                    deliver_one(&request);
                }
            });
        }
    });
}

/// `total` plain POSTs on `threads` threads.
fn run_raw(threads: usize, total: usize) {
    let url = BENCH.server.url();
    thread::scope(|scope| {
        for _ in 0..threads {
            let url = &url;
            scope.spawn(move || {
                let mut sink = Vec::with_capacity(64);
                for _ in 0..total / threads {
                    raw_one(url, &mut sink);
                }
            });
        }
    });
}

#[divan::bench(args = THREADS, sample_count = 15, sample_size = 1)]
fn deliverer(bencher: Bencher<'_, '_>, threads: usize) {
    LazyLock::force(&BENCH);
    bencher
        .counter(ItemsCount::new(PER_SAMPLE))
        .bench(|| run_deliverer(threads, PER_SAMPLE));
}

#[divan::bench(args = THREADS, sample_count = 15, sample_size = 1)]
fn raw_ureq(bencher: Bencher<'_, '_>, threads: usize) {
    LazyLock::force(&BENCH);
    bencher
        .counter(ItemsCount::new(PER_SAMPLE))
        .bench(|| run_raw(threads, PER_SAMPLE));
}

/// One delivery refused by the SSRF guard before any I/O: the CPU cost of the `Deliverer`'s own
/// work (headers, signature, URL parsing, guard, attempt record), without the network.
#[divan::bench]
fn overhead_without_network(bencher: Bencher<'_, '_>) {
    let bench = &*BENCH;
    let request = request("http://169.254.169.254/hook", &bench.body, 0);
    bencher.bench(|| {
        let attempt = bench.deliverer.deliver(&request);
        assert_eq!(attempt.outcome, AttemptOutcome::Blocked);
        attempt
    });
}

/// Rounds of raw and deliverer alternating on the same client threads (kept for the whole
/// thread count, so both variants see the same thread placement); prints the median rates, the
/// median of the per-round ratios, and connections accepted per request.
fn summary() {
    const ROUNDS: usize = 15;
    const PER_ROUND: usize = 960;
    let bench = &*BENCH;
    println!();
    println!("interleaved summary: {ROUNDS} rounds x {PER_ROUND} requests per variant, medians");
    println!("(ratio: median over rounds of deliverer/raw, each round's pair run back to back)");
    println!("threads | raw req/s | deliverer/s | ratio | new conns/delivery | new conns/raw req");
    for threads in THREADS {
        // Warm both pools first so the connection counts show the steady state.
        run_raw(threads, threads * 4);
        run_deliverer(threads, threads * 4);
        let start = Barrier::new(threads + 1);
        let done = Barrier::new(threads + 1);
        // 0 = raw, 1 = deliverer, 2 = finished.
        let variant = AtomicUsize::new(0);
        let url = bench.server.url();
        let (mut raw, mut deliverer) = (Vec::new(), Vec::new());
        let (mut raw_conns, mut deliverer_conns) = (0, 0);
        thread::scope(|scope| {
            for thread in 0..threads {
                let (start, done, variant, url) = (&start, &done, &variant, &url);
                scope.spawn(move || {
                    let request = request(url, &bench.body, thread);
                    let mut sink = Vec::with_capacity(64);
                    loop {
                        start.wait();
                        match variant.load(Ordering::SeqCst) {
                            0 => (0..PER_ROUND / threads).for_each(|_| raw_one(url, &mut sink)),
                            1 => (0..PER_ROUND / threads).for_each(|_| deliver_one(&request)),
                            _ => return,
                        }
                        done.wait();
                    }
                });
            }
            for round in 0..ROUNDS {
                // Alternate which variant goes first.
                let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
                for which in order {
                    variant.store(which, Ordering::SeqCst);
                    let before = bench.server.connections();
                    let started = Instant::now();
                    start.wait();
                    done.wait();
                    let rate = PER_ROUND as f64 / started.elapsed().as_secs_f64();
                    let opened = bench.server.connections() - before;
                    if which == 0 {
                        raw.push(rate);
                        raw_conns += opened;
                    } else {
                        deliverer.push(rate);
                        deliverer_conns += opened;
                    }
                }
            }
            variant.store(2, Ordering::SeqCst);
            start.wait();
        });
        let mut ratios: Vec<f64> = deliverer.iter().zip(&raw).map(|(d, r)| d / r).collect();
        let ratio = median(&mut ratios);
        let (raw, deliverer) = (median(&mut raw), median(&mut deliverer));
        let requests = (ROUNDS * PER_ROUND) as f64;
        println!(
            "{threads:>7} | {raw:>9.0} | {deliverer:>11.0} | {:>4.0}% | {:>18.4} | {:>17.4}",
            100.0 * ratio,
            deliverer_conns as f64 / requests,
            raw_conns as f64 / requests,
        );
    }
    println!(
        "server: {} connections accepted, {} requests served in all",
        bench.server.connections(),
        bench.server.requests()
    );
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// A keep-alive HTTP/1.1 responder: one thread per connection, `200 ok` to every request,
/// counting connections and requests. Idle connections close after a second.
struct BenchServer {
    addr: SocketAddr,
    shared: Arc<ServerShared>,
    accept: Mutex<Option<JoinHandle<()>>>,
}

struct ServerShared {
    connections: AtomicUsize,
    requests: AtomicUsize,
    stop: AtomicBool,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl BenchServer {
    fn start() -> BenchServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(ServerShared {
            connections: AtomicUsize::new(0),
            requests: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            threads: Mutex::new(Vec::new()),
        });
        let accept_shared = Arc::clone(&shared);
        let accept = thread::spawn(move || {
            for stream in listener.incoming() {
                if accept_shared.stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                accept_shared.connections.fetch_add(1, Ordering::SeqCst);
                let conn_shared = Arc::clone(&accept_shared);
                let handle = thread::spawn(move || serve(stream, &conn_shared));
                accept_shared.threads.lock().unwrap().push(handle);
            }
        });
        BenchServer {
            addr,
            shared,
            accept: Mutex::new(Some(accept)),
        }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Stops accepting and joins every thread.
    fn stop(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(accept) = self.accept.lock().unwrap().take() {
            let _ = accept.join();
        }
        let threads = std::mem::take(&mut *self.shared.threads.lock().unwrap());
        for thread in threads {
            let _ = thread.join();
        }
    }
}

fn serve(stream: TcpStream, shared: &ServerShared) {
    stream
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    stream.set_nodelay(true).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let mut line = String::new();
    let mut body = Vec::new();
    while !shared.stop.load(Ordering::SeqCst) {
        let mut length = 0;
        let mut first = true;
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let trimmed = line.trim_end();
            if trimmed.is_empty() {
                if first {
                    continue;
                }
                break;
            }
            first = false;
            if let Some((name, value)) = trimmed.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap();
            }
        }
        body.resize(length, 0);
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        shared.requests.fetch_add(1, Ordering::SeqCst);
        if writer
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            .is_err()
        {
            return;
        }
    }
}
