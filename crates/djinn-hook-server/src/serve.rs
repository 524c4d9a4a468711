//! `serve`: the REST API of the original Djinn CI for webhooks, event intake, `/healthz` and
//! `/metrics`, with the delivery worker in the same process.
//!
//! ```text
//!  tiny_http accept thread ──▶ queue ──▶ N request threads (Api::handle) ──▶ Store
//!                                            │ events: one committer thread  ▲   │ outbox
//!                                            └──── wakes ──▶ Worker ──────────┘   ▼
//!  Worker: delivery threads sharing one claim queue and one completion batch
//! ```
//!
//! tiny_http is blocking and small (the stack has no async runtime): its accept thread parses
//! requests into a queue; several request threads share the `Server` and each takes requests
//! with `recv_timeout`, so one slow client ties up one thread, not the API. The worker is the
//! `djinn-hook-deliver` `Worker` over the store (`StoreOutbox`); its observer feeds the
//! delivery log lines and metrics.
//!
//! SIGINT/SIGTERM set a flag: the request threads answer what they hold and what is already
//! queued, the worker finishes and commits its in-flight deliveries, then the process exits 0.
//! Tasks it had not claimed stay in the store and are delivered on the next start.

mod auth;
mod handlers;
mod intake;
mod json;
mod log;
mod metrics;
mod routes;

use std::net::{SocketAddr, ToSocketAddrs as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use djinn_hook_deliver::WorkerEvent;
use djinn_hook_store::Store;
use tiny_http::{Header, Request, Response, Server};

use self::auth::{TOKENS_ENV, Tokens};
use self::handlers::{Api, Reply};
use self::json::Urls;
use self::log::Line;
use self::metrics::Metrics;
use crate::cli::ServeArgs;
use crate::cmd::Invalid;

/// How often an idle request thread looks at the stop flag.
const STOP_CHECK: Duration = Duration::from_millis(100);

/// How often the worker looks for due tasks when none was due: the floor of an idle
/// server's delivery latency.
const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// Runs `serve` until SIGINT or SIGTERM. `open_store` opens the database (after the arguments
/// are checked, so a refused start creates nothing).
pub(crate) fn run(
    args: &ServeArgs,
    open_store: impl FnOnce() -> anyhow::Result<Store>,
) -> anyhow::Result<()> {
    if args.concurrency == 0 {
        return Err(Invalid("--concurrency: must be at least 1".to_owned()).into());
    }
    if args.http_threads == 0 {
        return Err(Invalid("--http-threads: must be at least 1".to_owned()).into());
    }
    let env_tokens = std::env::var(TOKENS_ENV).ok();
    let tokens =
        Tokens::load(args.token_file.as_deref(), env_tokens.as_deref()).map_err(Invalid)?;
    let addrs: Vec<SocketAddr> = match args.listen.to_socket_addrs() {
        Ok(addrs) => addrs.collect(),
        Err(err) => {
            return Err(Invalid(format!("--listen {:?}: {err}", args.listen)).into());
        }
    };
    if tokens.is_empty() && addrs.iter().any(|a| !a.ip().is_loopback()) {
        return Err(Invalid(format!(
            "--listen {}: refusing to serve a non-loopback address without tokens; \
             give --token-file or {TOKENS_ENV}, or listen on 127.0.0.1",
            args.listen
        ))
        .into());
    }
    let store = open_store()?;
    let server = Server::http(addrs.as_slice())
        .map_err(|err| anyhow::anyhow!("cannot listen on {}: {err}", args.listen))?;
    let bound = server
        .server_addr()
        .to_ip()
        .context("the server is not on an IP address")?;
    let base = match &args.base_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => format!("http://{bound}"),
    };

    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .context("cannot install the SIGINT/SIGTERM handler")?;

    let metrics = Metrics::new();
    let (intake, committer) = intake::channel();
    let api = Api {
        store: &store,
        metrics: &metrics,
        tokens: &tokens,
        intake,
        urls: Urls { base: base.clone() },
        max_body: args.max_body,
    };
    let worker = crate::cmd::delivery_worker(
        &store,
        args.concurrency,
        args.network.allow_private_network,
        POLL_INTERVAL,
    )
    .with_observer(|event| observe(&metrics, &event));

    let mut line = Line::new("info", "listening");
    line.display("addr", bound)
        .field("url", &base)
        .display("http_threads", args.http_threads)
        .display("concurrency", args.concurrency)
        .display("max_body", args.max_body);
    if tokens.is_empty() {
        line.field(
            "auth",
            "none: no tokens configured, the API is open to anyone who can reach this loopback address",
        );
    } else {
        line.field("auth", "bearer").display("tokens", tokens.len());
    }
    line.emit();

    let waker = worker.waker();
    let stats = thread::scope(|scope| {
        // Ends when the request threads are done and `api` (holding the intake) is dropped.
        // Wakes the worker after each commit that queued tasks: no wait for its next poll.
        scope.spawn(|| committer.run(&store, || waker.wake()));
        let worker = scope.spawn(|| worker.run(&stop));
        thread::scope(|requests| {
            for _ in 0..args.http_threads {
                requests.spawn(|| serve_requests(&api, &server, &stop));
            }
        });
        drop(api);
        let stats = worker.join().expect("the worker does not panic");
        Line::new("info", "worker stopped")
            .display("attempts", stats.attempts)
            .display("delivered", stats.delivered)
            .display("retries_scheduled", stats.retries_scheduled)
            .display("failed", stats.failed)
            .emit();
        stats
    });
    drop(server);
    Line::new("info", "stopped")
        .display("attempts", stats.attempts)
        .emit();
    Ok(())
}

/// The worker's events as metrics and log lines.
fn observe(metrics: &Metrics, event: &WorkerEvent<'_>) {
    match event {
        WorkerEvent::Completed(done) => {
            metrics.delivery(done);
            log::delivery(done).emit();
        }
        WorkerEvent::ClaimFailed(error) => Line::new("error", "claiming tasks failed")
            .field("error", &error.to_string())
            .emit(),
        WorkerEvent::CompleteFailed {
            error,
            batch,
            retry_in,
        } => Line::new("error", "recording attempts failed")
            .field("error", &error.to_string())
            .display("batch", batch)
            .millis("retry_in_ms", *retry_in)
            .emit(),
        WorkerEvent::Abandoned(batch) => Line::new(
            "error",
            "gave up recording attempts; their tasks are claimed again when their leases run out",
        )
        .display("batch", batch.len())
        .emit(),
        _ => {}
    }
}

/// One request thread: answers requests until `stop`, then what is already queued.
fn serve_requests(api: &Api<'_>, server: &Server, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        match server.recv_timeout(STOP_CHECK) {
            Ok(Some(request)) => answer(api, request),
            Ok(None) => {}
            Err(err) => Line::new("error", "accepting a request failed")
                .field("error", &err.to_string())
                .emit(),
        }
    }
    while let Ok(Some(request)) = server.try_recv() {
        answer(api, request);
    }
}

/// Answers one request and logs it.
///
/// A body declared over `--max-body` is answered 413 (by `Api::handle`) without reading any of
/// it, however large the declared length: when the request is dropped, the patched tiny_http
/// discards at most 1 MiB of the unread body (vendor/tiny_http/PATCHES.md); whatever follows is
/// no request, so the connection ends there.
fn answer(api: &Api<'_>, mut request: Request) {
    let start = Instant::now();
    let method = request.method().to_string();
    let path = request.url().split('?').next().unwrap_or("").to_owned();
    let remote = request.remote_addr().map(ToString::to_string);
    let reply = api.handle(&mut request);
    let status = reply.status;
    let error = reply.error.clone();
    let sent = request.respond(response(reply));
    api.metrics.request(status);
    let mut line = Line::new(if status >= 500 { "error" } else { "info" }, "request");
    line.field("method", &method)
        .field("path", &path)
        .display("status", status)
        .millis("duration_ms", start.elapsed());
    if let Some(remote) = remote {
        line.field("remote", &remote);
    }
    if let Some(error) = error {
        line.field("error", &error);
    }
    if let Err(err) = sent {
        line.field("send_error", &err.to_string());
    }
    line.emit();
}

/// A [`Reply`] as a tiny_http response.
fn response(reply: Reply) -> Response<std::io::Cursor<Vec<u8>>> {
    let mut response = Response::from_data(reply.body).with_status_code(reply.status);
    let mut add = |name: &str, value: &str| {
        if let Ok(header) = Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            response.add_header(header);
        }
    };
    if let Some(content_type) = reply.content_type {
        add("Content-Type", content_type);
    }
    for (name, value) in &reply.headers {
        add(name, value);
    }
    response
}
