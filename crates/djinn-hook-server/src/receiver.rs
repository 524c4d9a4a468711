//! A verifying webhook receiver on a local address, used by `listen`, `demo` and tests.

use std::fmt;
use std::io::Read as _;
use std::net::SocketAddr;
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use djinn_hook_sign::Secret;
use tiny_http::{Method, Request, Response, Server};

/// The largest body the receiver reads; a larger one is answered 413 and not recorded.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// Threads answering requests. Checking a signature takes microseconds, so a few
/// keep up with any sender on loopback; connections are read on tiny_http's own
/// threads (one per open connection).
const HANDLERS: usize = 4;

/// One POST the receiver got, with the outcome of its signature check.
#[derive(Clone)]
pub struct Received {
    /// The request path and query, e.g. `/hooks`.
    pub url: String,
    /// The request headers, in the order received (names as sent).
    pub headers: Vec<(String, String)>,
    /// The exact body bytes.
    pub body: Vec<u8>,
    /// Whether `X-Djinn-CI-Signature` was present and verified against the secret.
    pub signature_valid: bool,
    /// When the request was read.
    pub at: Instant,
}

impl Received {
    /// The value of the first header called `name` (compared without regard to case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `X-Djinn-CI-Event`, the event name.
    pub fn event(&self) -> Option<&str> {
        self.header("X-Djinn-CI-Event")
    }

    /// `X-Djinn-CI-Delivery`, the event's UUID (the same on retries and redeliveries).
    pub fn delivery(&self) -> Option<&str> {
        self.header("X-Djinn-CI-Delivery")
    }

    /// `X-Djinn-CI-Hook-ID`, the webhook's id.
    pub fn hook_id(&self) -> Option<&str> {
        self.header("X-Djinn-CI-Hook-ID")
    }

    /// `X-Djinn-CI-Signature`, as sent.
    pub fn signature(&self) -> Option<&str> {
        self.header("X-Djinn-CI-Signature")
    }
}

/// Shows sizes rather than the body, so a log line stays short.
impl fmt::Debug for Received {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Received")
            .field("url", &self.url)
            .field("event", &self.event())
            .field("delivery", &self.delivery())
            .field("hook_id", &self.hook_id())
            .field("body_len", &self.body.len())
            .field("signature_valid", &self.signature_valid)
            .finish()
    }
}

/// A webhook receiver: an HTTP/1.1 server (tiny_http) on its own threads that
/// checks every POST's `X-Djinn-CI-Signature` with [`djinn_hook_sign::verify`],
/// answers `204 No Content` when it verifies and `401 Unauthorized` otherwise,
/// and hands each request over as a [`Received`].
///
/// Other methods are answered `405` and not recorded, a body over 16 MiB `413`.
/// Connections are kept alive, each read on its own tiny_http thread. Dropping
/// the receiver stops it: it accepts no new connection and answers nothing more
/// (a sender that reuses a connection kept alive from before waits for its own
/// timeout: tiny_http 0.12 does not close open connections when its `Server`
/// is dropped).
pub struct Receiver {
    addr: SocketAddr,
    rx: mpsc::Receiver<Received>,
    server: Arc<Server>,
    threads: Vec<JoinHandle<()>>,
}

impl fmt::Debug for Receiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// Why a receiver could not start.
#[derive(Debug)]
pub struct BindError {
    addr: String,
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot listen on {}", self.addr)
    }
}

impl std::error::Error for BindError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

impl Receiver {
    /// Starts a receiver on `addr` (e.g. `127.0.0.1:0` for any free port)
    /// checking signatures against `secret`.
    pub fn start(addr: &str, secret: Secret) -> Result<Receiver, BindError> {
        let bind_error = |source| BindError {
            addr: addr.to_owned(),
            source,
        };
        let server = Arc::new(Server::http(addr).map_err(bind_error)?);
        let local = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| bind_error("not an IP address".into()))?;
        let (tx, rx) = mpsc::channel();
        let secret = Arc::new(secret);
        let mut receiver = Receiver {
            addr: local,
            rx,
            server,
            threads: Vec::with_capacity(HANDLERS),
        };
        for _ in 0..HANDLERS {
            let server = Arc::clone(&receiver.server);
            let secret = Arc::clone(&secret);
            let tx = tx.clone();
            let thread = std::thread::Builder::new()
                .name("djinn-receiver".into())
                .spawn(move || {
                    // Ends when `Drop` unblocks it.
                    while let Ok(request) = server.recv() {
                        answer(request, &secret, &tx);
                    }
                })
                .map_err(|err| bind_error(err.into()))?;
            receiver.threads.push(thread);
        }
        Ok(receiver)
    }

    /// The address the receiver listens on (with the port chosen when 0 was asked).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL to register as a webhook's payload URL.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Waits up to `timeout` for the next request.
    pub fn next_timeout(&self, timeout: Duration) -> Option<Received> {
        self.rx.recv_timeout(timeout).ok()
    }

    /// The requests received so far and not yet taken, without waiting.
    pub fn drain(&self) -> Vec<Received> {
        self.rx.try_iter().collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        // One unblock per handler thread; each ends on the first it takes.
        for _ in 0..self.threads.len() {
            self.server.unblock();
        }
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        // The last `Arc<Server>` goes with `self`: tiny_http stops accepting.
    }
}

/// Answers one request: 405 unless POST, 413 over [`MAX_BODY`], else checks the
/// signature, hands the request over, and answers 204 or 401.
fn answer(mut request: Request, secret: &Secret, tx: &mpsc::Sender<Received>) {
    if *request.method() != Method::Post {
        let _ = request.respond(Response::empty(405));
        return;
    }
    if request.body_length().is_some_and(|n| n > MAX_BODY) {
        // Nothing read; the patched tiny_http discards at most 1 MiB of it.
        let _ = request.respond(Response::empty(413));
        return;
    }
    let mut body = Vec::new();
    let limit = u64::try_from(MAX_BODY).unwrap_or(u64::MAX) + 1;
    if request
        .as_reader()
        .take(limit)
        .read_to_end(&mut body)
        .is_err()
    {
        let _ = request.respond(Response::empty(400));
        return;
    }
    if body.len() > MAX_BODY {
        let _ = request.respond(Response::empty(413));
        return;
    }
    let mut received = Received {
        url: request.url().to_owned(),
        headers: request
            .headers()
            .iter()
            .map(|h| (h.field.to_string(), h.value.to_string()))
            .collect(),
        body,
        signature_valid: false,
        at: Instant::now(),
    };
    received.signature_valid = received
        .signature()
        .is_some_and(|sig| djinn_hook_sign::verify(secret, &received.body, sig).is_ok());
    let status = if received.signature_valid { 204 } else { 401 };
    // Hand the request over before answering, so a sender that saw the answer
    // can count on the receiver's record of it. A closed channel only means
    // nobody reads any more.
    let _ = tx.send(received);
    let _ = request.respond(Response::empty(status));
}
