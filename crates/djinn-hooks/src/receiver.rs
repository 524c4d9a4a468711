//! A verifying webhook receiver on a local address, used by `listen`, `demo` and tests.

use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use djinn_hook_sign::Secret;

/// The largest body the receiver reads; a larger one is answered 413 and not recorded.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// The longest request line or header line read, and the most header lines.
const MAX_LINE: u64 = 16 * 1024;
const MAX_HEADERS: usize = 100;

/// How long an idle keep-alive connection is kept open.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

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

/// A webhook receiver: a small HTTP/1.1 server on its own threads that checks
/// every POST's `X-Djinn-CI-Signature` with [`djinn_hook_sign::verify`],
/// answers `204 No Content` when it verifies and `401 Unauthorized` otherwise,
/// and hands each request over as a [`Received`].
///
/// Other methods are answered `405` and not recorded. Connections are kept
/// alive, one thread each (a sender's connection pool never waits behind
/// another's idle connection). Dropping the receiver stops accepting.
///
/// It is deliberately not built on tiny_http: tiny_http serves a connection on
/// a pooled thread for as long as it lives, and a burst of new keep-alive
/// connections can be queued behind idle ones until the senders time out.
pub struct Receiver {
    addr: SocketAddr,
    rx: mpsc::Receiver<Received>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
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
    source: std::io::Error,
}

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot listen on {}", self.addr)
    }
}

impl std::error::Error for BindError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
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
        let listener = TcpListener::bind(addr).map_err(bind_error)?;
        let local = listener.local_addr().map_err(bind_error)?;
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let secret = Arc::new(secret);
        let thread = std::thread::Builder::new()
            .name("djinn-receiver".into())
            .spawn(move || accept(&listener, &stopping, &secret, &tx))
            .map_err(bind_error)?;
        Ok(Receiver {
            addr: local,
            rx,
            stop,
            thread: Some(thread),
        })
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
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop with a connection of our own.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Accepts connections until asked to stop; one thread per connection.
fn accept(
    listener: &TcpListener,
    stop: &AtomicBool,
    secret: &Arc<Secret>,
    tx: &mpsc::Sender<Received>,
) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let secret = Arc::clone(secret);
        let tx = tx.clone();
        let _ = std::thread::Builder::new()
            .name("djinn-receiver-conn".into())
            .spawn(move || {
                let _ = serve(stream, &secret, &tx);
            });
    }
}

/// One parsed request.
struct Request {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    keep_alive: bool,
}

/// Why a request could not be read: the status to answer, then close.
struct Reject(u16);

/// Serves one connection: requests one after another until the peer closes,
/// an error, an idle timeout, or `Connection: close`.
fn serve(stream: TcpStream, secret: &Secret, tx: &mpsc::Sender<Received>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(IDLE_TIMEOUT))?;
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    loop {
        let request = match read_request(&mut reader) {
            Ok(Some(request)) => request,
            Ok(None) => return Ok(()),
            Err(Reject(status)) => return respond(&mut writer, status, false),
        };
        if request.method != "POST" {
            respond(&mut writer, 405, request.keep_alive)?;
        } else {
            let mut received = Received {
                url: request.url,
                headers: request.headers,
                body: request.body,
                signature_valid: false,
                at: Instant::now(),
            };
            received.signature_valid = received
                .signature()
                .is_some_and(|sig| djinn_hook_sign::verify(secret, &received.body, sig).is_ok());
            let status = if received.signature_valid { 204 } else { 401 };
            // Hand the request over before answering, so a sender that saw the
            // answer can count on the receiver's record of it. A closed
            // channel only means nobody reads any more.
            let _ = tx.send(received);
            respond(&mut writer, status, request.keep_alive)?;
        }
        if !request.keep_alive {
            return Ok(());
        }
    }
}

/// Reads one request; `Ok(None)` when the peer closed (or idled out) between requests.
fn read_request(reader: &mut impl BufRead) -> Result<Option<Request>, Reject> {
    let Some(line) = read_line(reader)? else {
        return Ok(None);
    };
    let mut parts = line.split(' ');
    let (Some(method), Some(url), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Reject(400));
    };
    let http10 = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        _ => return Err(Reject(505)),
    };
    let mut headers = Vec::new();
    loop {
        let line = read_line(reader)?.ok_or(Reject(400))?;
        if line.is_empty() {
            break;
        }
        if headers.len() == MAX_HEADERS {
            return Err(Reject(431));
        }
        let (name, value) = line.split_once(':').ok_or(Reject(400))?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.to_ascii_lowercase())
    };
    if header("Transfer-Encoding").is_some() {
        return Err(Reject(411));
    }
    let length = match header("Content-Length") {
        None => 0,
        Some(value) => value.parse::<usize>().map_err(|_| Reject(400))?,
    };
    if length > MAX_BODY {
        return Err(Reject(413));
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).map_err(|_| Reject(400))?;
    let keep_alive = match header("Connection") {
        Some(value) if value.contains("close") => false,
        Some(value) if value.contains("keep-alive") => true,
        _ => !http10,
    };
    Ok(Some(Request {
        method: method.to_owned(),
        url: url.to_owned(),
        headers,
        body,
        keep_alive,
    }))
}

/// One CRLF- (or LF-) terminated line without its terminator; `None` at EOF
/// or on an idle timeout before any byte.
fn read_line(reader: &mut impl BufRead) -> Result<Option<String>, Reject> {
    let mut line = Vec::new();
    match reader.take(MAX_LINE).read_until(b'\n', &mut line) {
        Ok(0) => return Ok(None),
        Ok(_) => {}
        Err(_) if line.is_empty() => return Ok(None),
        Err(_) => return Err(Reject(400)),
    }
    if line.last() != Some(&b'\n') {
        return Err(Reject(431));
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line).map(Some).map_err(|_| Reject(400))
}

/// Writes an answer with no body.
fn respond(writer: &mut TcpStream, status: u16, keep_alive: bool) -> std::io::Result<()> {
    let reason = match status {
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        505 => "HTTP Version Not Supported",
        _ => "",
    };
    let connection = if keep_alive { "keep-alive" } else { "close" };
    let head = if status == 204 {
        format!("HTTP/1.1 {status} {reason}\r\nConnection: {connection}\r\n\r\n")
    } else {
        format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\nConnection: {connection}\r\n\r\n"
        )
    };
    writer.write_all(head.as_bytes())?;
    writer.flush()
}
