//! A verifying webhook receiver, for `listen`, the demo, tests, and anyone writing an
//! integration: [`check`] turns one request into a [`Received`] with its signatures checked by
//! a `djinn_hook_sign::Verifier`; [`router`] is that as an axum `Router` to mount in your own
//! server; [`Receiver`] runs it on a local address on its own threads. (To check deliveries
//! inside your own handlers, `djinn_hook_sign`'s `axum` feature has an extractor, with far
//! fewer dependencies than this crate.)

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, mpsc};
use std::task::{Wake, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use djinn_hook_deliver::Shutdown;
use djinn_hook_sign::Verifier;
use djinn_hook_sign::headers;
use tokio::sync::oneshot;

use crate::conn::{self, Limits};

/// The largest body the receiver reads; a larger one is answered 413 and not recorded.
pub const MAX_BODY: usize = 16 * 1024 * 1024;

/// Runtime threads of a [`Receiver`]. Checking a signature takes microseconds, so two keep
/// up with any sender on loopback; connections are tasks, not threads.
const THREADS: usize = 2;

/// One POST the receiver got, with the outcome of its signature check.
#[derive(Clone)]
pub struct Received {
    /// The request path and query, e.g. `/hooks`.
    pub url: String,
    /// The request headers, names in lower case, grouped by name in the order first seen.
    pub headers: Vec<(String, String)>,
    /// The exact body bytes.
    pub body: Vec<u8>,
    /// Whether the request's signatures verified: every scheme it carries, at least one
    /// ([`Verifier::verify`]).
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
        self.header(headers::EVENT)
    }

    /// `X-Djinn-CI-Delivery`, the event's UUID (the same on retries and redeliveries).
    pub fn delivery(&self) -> Option<&str> {
        self.header(headers::DELIVERY)
    }

    /// `X-Djinn-CI-Hook-ID`, the webhook's id.
    pub fn hook_id(&self) -> Option<&str> {
        self.header(headers::HOOK_ID)
    }

    /// `X-Djinn-CI-Signature`, as sent.
    pub fn signature(&self) -> Option<&str> {
        self.header(headers::SIGNATURE)
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

/// Checks one delivery: the request's path and query, headers and exact body as a
/// [`Received`], with its signatures checked by `verifier`.
///
/// ```
/// use axum::http::{HeaderMap, HeaderValue, Uri};
/// use djinn_hook_sign::headers::SIGNATURE;
/// use djinn_hook_sign::{Secret, Verifier};
///
/// let secret = Secret::from("s3cret");
/// let body = br#"{"id": 1}"#;
/// let mut headers = HeaderMap::new();
/// let signature = djinn_hook_sign::sign(&secret, body);
/// headers.insert(SIGNATURE, HeaderValue::from_str(&signature.to_string()).unwrap());
/// let verifier = Verifier::new("s3cret").unwrap();
/// let uri = Uri::from_static("/hook");
/// let got = djinn_hook_server::receiver::check(&uri, &headers, body, &verifier);
/// assert!(got.signature_valid);
/// ```
pub fn check(uri: &Uri, headers: &HeaderMap, body: &[u8], verifier: &Verifier) -> Received {
    Received {
        url: uri
            .path_and_query()
            .map_or_else(|| uri.path().to_owned(), ToString::to_string),
        headers: headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
        signature_valid: verifier.verify(headers, body).is_ok(),
        at: Instant::now(),
    }
}

/// A receiver as an axum `Router` on any path: a POST is checked ([`check`]), handed to
/// `sink`, then answered `204 No Content` when its signature verifies and `401 Unauthorized`
/// otherwise; other methods get `405`, a body over [`MAX_BODY`] `413` (neither is handed over).
///
/// `verifier` is a [`Verifier`], or a bare `Secret` to check `X-Djinn-CI-Signature` alone.
pub fn router(
    verifier: impl Into<Verifier>,
    sink: impl Fn(Received) + Send + Sync + 'static,
) -> Router {
    let state: Arc<Sink> = Arc::new(Sink {
        verifier: verifier.into(),
        sink: Box::new(sink),
    });
    Router::new().fallback(receive).with_state(state)
}

/// What [`router`]'s handler shares.
struct Sink {
    verifier: Verifier,
    sink: Box<dyn Fn(Received) + Send + Sync>,
}

async fn receive(
    State(state): State<Arc<Sink>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> StatusCode {
    if method != Method::POST {
        return StatusCode::METHOD_NOT_ALLOWED;
    }
    let body: Bytes = match crate::request_body::read(&headers, body, MAX_BODY).await {
        Ok(body) => body,
        Err(crate::request_body::BodyError::TooLarge(_)) => return StatusCode::PAYLOAD_TOO_LARGE,
        Err(_) => return StatusCode::BAD_REQUEST,
    };
    let received = check(&uri, &headers, &body, &state.verifier);
    let status = if received.signature_valid {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::UNAUTHORIZED
    };
    // Hand the request over before answering, so a sender that saw the answer can count on
    // the receiver's record of it.
    (state.sink)(received);
    status
}

/// A webhook receiver on a local address: [`router`] served on its own threads, every
/// request handed over as a [`Received`] (see [`Receiver::next_timeout`]).
///
/// Connections are kept alive, each a task on the receiver's async runtime. Dropping the
/// receiver stops it: it accepts no new connection and closes the open ones.
pub struct Receiver {
    addr: SocketAddr,
    rx: mpsc::Receiver<Message>,
    /// The channel's sending side, for a [`Shutdown`] to wake [`Receiver::next_until`].
    tx: mpsc::Sender<Message>,
    stop: Option<oneshot::Sender<()>>,
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
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}")]
pub struct BindError {
    addr: String,
    #[source]
    source: std::io::Error,
}

impl Receiver {
    /// Starts a receiver on `addr` (e.g. `127.0.0.1:0` for any free port) checking signatures
    /// with `verifier` (a [`Verifier`], or a bare `Secret` for `X-Djinn-CI-Signature` alone).
    pub fn start(addr: &str, verifier: impl Into<Verifier>) -> Result<Receiver, BindError> {
        let bind_error = |source| BindError {
            addr: addr.to_owned(),
            source,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(THREADS)
            .thread_name("djinn-receiver")
            .enable_all()
            .build()
            .map_err(bind_error)?;
        let std_listener = std::net::TcpListener::bind(addr).map_err(bind_error)?;
        std_listener.set_nonblocking(true).map_err(bind_error)?;
        let local = std_listener.local_addr().map_err(bind_error)?;
        let listener = {
            let _runtime = runtime.enter();
            tokio::net::TcpListener::from_std(std_listener).map_err(bind_error)?
        };
        let (tx, rx) = mpsc::channel();
        let app = router(verifier, {
            let tx = tx.clone();
            move |received| {
                // A closed channel only means nobody reads any more.
                let _ = tx.send(Message::Received(received));
            }
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("djinn-receiver".into())
            .spawn(move || {
                let limits = Limits {
                    shutdown_grace: Duration::ZERO,
                    ..Limits::default()
                };
                runtime.block_on(conn::serve_connections(listener, app, &limits, async {
                    let _ = stopped.await;
                }));
                // Dropping the runtime ends every connection still open.
            })
            .map_err(bind_error)?;
        Ok(Receiver {
            addr: local,
            rx,
            tx,
            stop: Some(stop),
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
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let left = deadline.map_or(Duration::MAX, |d| {
                d.saturating_duration_since(Instant::now())
            });
            match self.rx.recv_timeout(left).ok()? {
                Message::Received(received) => return Some(received),
                Message::Stop => {}
            }
        }
    }

    /// Waits for the next request until `stop` is set: `None` once it is (at once if it
    /// already was), woken by the stop itself, with no polling interval.
    pub fn next_until(&self, stop: &Shutdown) -> Option<Received> {
        let _wake = stop.on_stop(Waker::from(Arc::new(StopMessage(self.tx.clone()))));
        while !stop.is_stopped() {
            // The receiver holds a sender, so the channel never closes while it is read.
            if let Ok(Message::Received(received)) = self.rx.recv() {
                return Some(received);
            }
        }
        None
    }

    /// The requests received so far and not yet taken, without waiting.
    pub fn drain(&self) -> Vec<Received> {
        self.rx
            .try_iter()
            .filter_map(|message| match message {
                Message::Received(received) => Some(received),
                Message::Stop => None,
            })
            .collect()
    }
}

/// What a [`Receiver`]'s channel carries: a request, or word that a [`Shutdown`] was set.
enum Message {
    Received(Received),
    Stop,
}

/// Wakes a [`Receiver::next_until`] by sending [`Message::Stop`] on its channel.
struct StopMessage(mpsc::Sender<Message>);

impl Wake for StopMessage {
    fn wake(self: Arc<Self>) {
        let _ = self.0.send(Message::Stop);
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
