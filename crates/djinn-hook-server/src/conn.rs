//! The accept loop and the HTTP/1.1 connections behind every server of this crate (`serve`'s
//! API and the [`Receiver`](crate::Receiver)): a connection is a task on the async runtime,
//! so an idle one costs memory, not a thread; hyper reads each request head under a deadline
//! and a size limit.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceExt as _;

/// Per-connection limits. [`Limits::default`] gives the defaults documented on each field;
/// change one by setting it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Limits {
    /// How long a new connection may stay silent before its first byte. It holds no buffer
    /// meanwhile (a few hundred bytes in all), so this can be longer than the head's deadline.
    /// Default 60 s.
    pub first_byte_timeout: Duration,
    /// How long a client has to send a whole request head once it has started (slowloris);
    /// also how long a kept-alive connection may sit idle before its next request. Default
    /// 10 s.
    pub header_read_timeout: Duration,
    /// The most header lines in a request (431 beyond). Default 64.
    pub max_headers: usize,
    /// The most bytes of a request head (431 beyond). Default 16 KiB.
    pub max_header_size: usize,
    /// The most bytes read ahead on a connection: bounds what pipelined requests can queue
    /// (they are answered one at a time, in order; the client waits beyond this). Default
    /// 64 KiB.
    pub max_buf_size: usize,
    /// How long shutdown waits for requests in progress before dropping their connections.
    /// Default 10 s.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            first_byte_timeout: Duration::from_secs(60),
            header_read_timeout: Duration::from_secs(10),
            max_headers: 64,
            max_header_size: 16 * 1024,
            max_buf_size: 64 * 1024,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// How long the accept loop pauses after an error that is not about one connection (EMFILE,
/// ENFILE, ENOBUFS, ENOMEM): the condition usually passes when connections close, and retrying
/// at once would spin.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// Accepts connections until `stop` completes, serving each with `router`; then stops
/// accepting, lets requests in progress finish (up to [`Limits::shutdown_grace`]) and
/// returns. An accept error never ends the loop: it is logged and, unless it concerned only
/// the connection being accepted, followed by a short pause.
pub async fn serve_connections(
    listener: TcpListener,
    router: Router,
    limits: &Limits,
    stop: impl Future<Output = ()>,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_headers(limits.max_headers)
        .max_header_size(limits.max_header_size)
        .max_buf_size(limits.max_buf_size)
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    // Tells connections that have sent nothing yet to close at shutdown (hyper's graceful
    // shutdown reaches only the connections handed to it).
    let (stopping, stopping_rx) = tokio::sync::watch::channel(());
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut stop => break,
        };
        let (stream, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                let only_this_connection = matches!(
                    err.kind(),
                    io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::Interrupted
                );
                tracing::error!(
                    msg = "accepting a connection failed",
                    error = %err,
                    pause_ms = if only_this_connection { 0 } else { ACCEPT_PAUSE.as_millis() as u64 },
                );
                if !only_this_connection {
                    tokio::time::sleep(ACCEPT_PAUSE).await;
                }
                continue;
            }
        };
        // Small answers go out at once rather than waiting for more to send.
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(with_remote(router.clone(), remote));
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let first_byte = limits.first_byte_timeout;
        let mut stopping = stopping_rx.clone();
        tokio::spawn(async move {
            // Hyper gives a connection its 8 KiB read buffer at once; a connection that has sent
            // nothing yet waits here without one, so a crowd of idle connections costs little
            // memory.
            let mut first = [0u8; 1];
            tokio::select! {
                // `peek`, not `readable`: readiness can be reported before any byte is there.
                peeked = tokio::time::timeout(first_byte, stream.peek(&mut first)) => {
                    if !matches!(peeked, Ok(Ok(1..))) {
                        return;
                    }
                }
                _ = stopping.changed() => return,
            }
            // Boxed: the task of a silent connection stays small.
            let connection =
                Box::pin(watcher.watch(builder.serve_connection(TokioIo::new(stream), service)));
            // A client that goes away or sends garbage ends only its own connection.
            let _ = connection.await;
        });
    }
    drop(listener);
    let _ = stopping.send(());
    let _ = tokio::time::timeout(limits.shutdown_grace, graceful.shutdown()).await;
}

/// `router` with the connection's remote address as `ConnectInfo` on every request.
fn with_remote(
    router: Router,
    remote: SocketAddr,
) -> impl tower::Service<
    hyper::Request<Incoming>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone {
    router.map_request(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(remote));
        request.map(axum::body::Body::new)
    })
}

/// A std listener bound to `addrs` (the first that binds), ready for the runtime.
pub(crate) fn bind(addrs: &[SocketAddr]) -> io::Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(addrs)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}
