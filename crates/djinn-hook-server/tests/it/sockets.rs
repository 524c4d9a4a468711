//! What needs real sockets on 127.0.0.1: idle and stalled connections hold no thread, request
//! heads are read under a deadline and size limits, pipelining is bounded.

use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use djinn_hook_server::{AppState, Config, Limits, router, serve_connections};
use tokio::sync::oneshot;

use crate::{config, store};

/// A server on 127.0.0.1 on its own runtime, whose threads are all called `name`.
struct Running {
    addr: SocketAddr,
    name: &'static str,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Running {
    fn start(config: Config, limits: Limits, name: &'static str) -> Running {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name(name)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let state = AppState::new(&config, store(), addr, || {});
                serve_connections(listener, router(state), &limits, async {
                    let _ = stopped.await;
                })
                .await;
            });
        });
        Running {
            addr,
            name,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// A connection with 10 s read and write timeouts.
    fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
            .set_write_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
    }

    /// The status line of `GET path` on a new connection.
    fn get(&self, path: &str) -> String {
        let mut stream = self.connect();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer.lines().next().unwrap_or_default().to_owned()
    }

    /// How many threads of this process carry the server's name.
    fn threads(&self) -> usize {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
            .filter(|comm| comm.trim_end() == self.name)
            .count()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads until the server closes the connection; panics if it is still open after 10 s.
fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    match stream.read_to_end(&mut got) {
        Ok(_) => {}
        Err(err) if err.kind() == ErrorKind::ConnectionReset => {}
        Err(err) => panic!("the server kept the connection open: {err}"),
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn idle_and_stalled_connections_hold_no_thread() {
    let server = Running::start(config(&[]), Limits::default(), "idle-test");
    assert_eq!(server.get("/healthz"), "HTTP/1.1 200 OK");
    // One store call first, so the blocking pool's thread is counted in the baseline.
    assert_eq!(server.get("/n/alice/ci/-/webhooks"), "HTTP/1.1 200 OK");
    let before = server.threads();
    // 300 idle connections, and 50 that stopped halfway through a body: far more than the
    // server has threads.
    let mut held: Vec<TcpStream> = (0..300).map(|_| server.connect()).collect();
    for _ in 0..50 {
        let mut stream = server.connect();
        stream
            .write_all(
                b"POST /n/alice/ci/-/webhooks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n{\"pay",
            )
            .unwrap();
        held.push(stream);
    }
    assert_eq!(server.get("/healthz"), "HTTP/1.1 200 OK");
    assert_eq!(
        server.get("/n/alice/ci/-/webhooks"),
        "HTTP/1.1 200 OK",
        "the store answers too"
    );
    assert_eq!(server.threads(), before, "no thread per connection");
    drop(held);
}

#[test]
fn a_request_head_sent_too_slowly_is_cut_off() {
    let mut limits = Limits::default();
    limits.first_byte_timeout = Duration::from_millis(300);
    limits.header_read_timeout = Duration::from_millis(300);
    let server = Running::start(config(&[]), limits, "slowloris-test");
    let mut silent = server.connect();
    let got = read_until_closed(&mut silent);
    assert!(got.is_empty(), "{got}");
    let mut slow = server.connect();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .unwrap();
    let got = read_until_closed(&mut slow);
    assert!(!got.contains("200 OK"), "{got}");
    assert_eq!(server.get("/healthz"), "HTTP/1.1 200 OK");
}

#[test]
fn too_many_or_too_large_headers_are_431() {
    let server = Running::start(config(&[]), Limits::default(), "headers-test");
    let mut many = server.connect();
    let mut request = String::from("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for i in 0..100 {
        request.push_str(&format!("X-Extra-{i}: {i}\r\n"));
    }
    request.push_str("\r\n");
    many.write_all(request.as_bytes()).unwrap();
    let got = read_until_closed(&mut many);
    assert!(got.starts_with("HTTP/1.1 431"), "{got}");

    let mut large = server.connect();
    let request = format!(
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20 * 1024)
    );
    large.write_all(request.as_bytes()).unwrap();
    let got = read_until_closed(&mut large);
    assert!(got.starts_with("HTTP/1.1 431"), "{got}");
    assert_eq!(server.get("/healthz"), "HTTP/1.1 200 OK");
}

#[test]
fn pipelined_requests_are_read_only_as_fast_as_they_are_answered() {
    let server = Running::start(config(&[]), Limits::default(), "pipeline-test");
    let mut client = server.connect();
    client.set_nonblocking(true).unwrap();
    let batch = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".repeat(100);
    // Never reading the answers: a server that queued pipelined requests without bound would
    // take all 256 MiB; this one stops reading once its buffer and the socket buffers are full.
    let cap = 256 * 1024 * 1024;
    let mut sent = 0usize;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut blocked_since: Option<Instant> = None;
    while sent < cap && Instant::now() < deadline {
        match client.write(batch.as_bytes()) {
            Ok(n) => {
                sent += n;
                blocked_since = None;
            }
            Err(err) if err.kind() == ErrorKind::WouldBlock => {
                // Blocked for a while (not a momentary full buffer): the server stopped reading.
                let since = *blocked_since.get_or_insert_with(Instant::now);
                if since.elapsed() > Duration::from_millis(500) {
                    break;
                }
                std::thread::yield_now();
            }
            Err(err) => panic!("{err}"),
        }
    }
    assert!(
        sent < cap,
        "the server read {sent} bytes of pipelined requests"
    );
    // It still answers others meanwhile.
    assert_eq!(server.get("/healthz"), "HTTP/1.1 200 OK");
}

#[test]
fn stopping_closes_idle_connections_at_once() {
    // Deadlines far beyond the test's own: only the stop can close these connections.
    let mut limits = Limits::default();
    limits.first_byte_timeout = Duration::from_secs(120);
    limits.header_read_timeout = Duration::from_secs(120);
    limits.shutdown_grace = Duration::from_secs(120);
    let mut server = Running::start(config(&[]), limits, "stop-test");
    let mut fresh = server.connect();
    let mut kept = server.connect();
    write!(kept, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut answer = [0u8; 12];
    kept.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200");
    drop(server.stop.take());
    read_until_closed(&mut fresh);
    read_until_closed(&mut kept);
}

#[test]
fn a_silent_connection_is_not_held_to_the_head_deadline() {
    let mut limits = Limits::default();
    limits.first_byte_timeout = Duration::from_secs(120);
    limits.header_read_timeout = Duration::from_millis(200);
    let server = Running::start(config(&[]), limits, "silent-test");
    let silent = server.connect();
    let mut slow = server.connect();
    slow.write_all(b"GET /healthz HTTP/1.1\r\n").unwrap();
    // The slow head was cut off; the silent connection, older, is still open.
    read_until_closed(&mut slow);
    silent.set_nonblocking(true).unwrap();
    let peeked = silent.peek(&mut [0u8; 1]);
    assert!(
        matches!(&peeked, Err(e) if e.kind() == ErrorKind::WouldBlock),
        "{peeked:?}"
    );
}
