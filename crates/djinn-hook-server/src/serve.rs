//! `serve`: the REST API of the original Djinn CI for webhooks, event intake, `/healthz` and
//! `/metrics`, with the delivery worker in the same process.
//!
//! ```text
//!  accept loop (tokio) ──▶ a task per connection ──▶ Router ──▶ spawn_blocking ──▶ Store
//!                                  │ events: intake ──▶ one committer thread  ▲   │ outbox
//!                                  └──── wakes ──▶ Worker ────────────────────┘   ▼
//!  Worker: delivery threads sharing one claim queue and one completion batch
//! ```
//!
//! The HTTP side is async (hyper under axum, on a few runtime threads): a connection, idle or
//! slow, is a task and holds no thread; the store's blocking calls run on the runtime's
//! blocking pool. Delivery stays blocking: the `djinn-hook-deliver` `Worker` over the store,
//! on its own threads; its observer feeds the delivery log lines and metrics.
//!
//! When `stop` is set (the binary sets it on SIGINT/SIGTERM) the server stops accepting,
//! answers the requests in progress, the worker hands its queued tasks back to the store (due
//! again at once), finishes and commits the deliveries under way, and [`serve`] returns. (The
//! binary bounds that wait, and hands back what is still under way when it runs out.)

use std::io;
use std::net::{SocketAddr, ToSocketAddrs as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use djinn_hook_deliver::{Outbox, Stats, Worker, WorkerEvent};
use djinn_hook_store::{AutoPrune, Store};
use tokio::net::TcpListener;

use crate::app::{self, AppState};
use crate::auth::{TOKENS_ENV, Tokens};
use crate::conn::{self, Limits};
use crate::log;
use crate::metrics::Metrics;
#[cfg(feature = "ui")]
use crate::ui::UiState;

/// How often the server looks at the stop flag.
const STOP_CHECK: Duration = Duration::from_millis(50);

/// How `serve` runs. [`Config::new`] checks the address and the auth; the rest has the defaults
/// documented on each field, changed by setting it (`config.max_body = 4 << 20`).
#[derive(Debug)]
#[non_exhaustive]
pub struct Config {
    /// The address as given, for messages.
    pub listen: String,
    addrs: Vec<SocketAddr>,
    /// The bearer tokens; none means loopback callers only.
    pub tokens: Arc<Tokens>,
    /// The API's public base URL for the `url` fields of responses; `None`: `http://<bound address>`.
    pub base_url: Option<String>,
    /// The largest request body accepted, in bytes. Default 1 MiB.
    pub max_body: usize,
    /// Threads running the HTTP side (connections are tasks on them). Default 2.
    pub http_threads: usize,
    /// The longest a request may take, body read included, before a 408. Default 30 s.
    pub request_timeout: Duration,
    /// Per-connection limits. Default [`Limits::default`].
    pub limits: Limits,
    /// The worker's delivery threads, for the start line (the caller builds the worker).
    /// Default `None` (not shown).
    pub concurrency: Option<usize>,
    /// The web UI, served under `/ui/` beside the API; `None`: the API only.
    #[cfg(feature = "ui")]
    pub ui: Option<UiState>,
    /// Prune old deliveries and finished events on this schedule; `None`: never by itself.
    /// Default [`AutoPrune::default`].
    pub auto_prune: Option<AutoPrune>,
    /// Store requests that are themselves webhook deliveries as events, and let webhooks
    /// point at this server's own intake: relaying on purpose. Off by default, as such a
    /// webhook loops.
    pub accept_relayed_deliveries: bool,
}

/// A `serve` that cannot start as configured.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The listen address does not resolve.
    #[error("--listen {listen:?}: {source}")]
    Address {
        /// The address as given.
        listen: String,
        /// Why it does not resolve.
        source: io::Error,
    },
    /// A non-loopback address without tokens.
    #[error(
        "--listen {0}: refusing to serve a non-loopback address without tokens; \
         give --token-file or {TOKENS_ENV}, or listen on 127.0.0.1"
    )]
    OpenToTheNetwork(String),
}

/// Why `serve` stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address as given.
        addr: String,
        /// What the system said.
        source: io::Error,
    },
    /// The async runtime could not start.
    #[error("cannot start the HTTP runtime: {0}")]
    Runtime(io::Error),
}

impl Config {
    /// A configuration listening on `listen` with `tokens`, the other settings at their
    /// defaults. Refuses a non-loopback address without tokens.
    pub fn new(listen: &str, tokens: Tokens) -> Result<Config, ConfigError> {
        let addrs: Vec<SocketAddr> = listen
            .to_socket_addrs()
            .map_err(|source| ConfigError::Address {
                listen: listen.to_owned(),
                source,
            })?
            .collect();
        if tokens.is_empty() && addrs.iter().any(|a| !a.ip().is_loopback()) {
            return Err(ConfigError::OpenToTheNetwork(listen.to_owned()));
        }
        Ok(Config {
            listen: listen.to_owned(),
            addrs,
            tokens: Arc::new(tokens),
            base_url: None,
            max_body: 1024 * 1024,
            http_threads: 2,
            request_timeout: Duration::from_secs(30),
            limits: Limits::default(),
            concurrency: None,
            #[cfg(feature = "ui")]
            ui: None,
            auto_prune: Some(AutoPrune::default()),
            accept_relayed_deliveries: false,
        })
    }
}

/// Serves the API on `config`'s address and runs `worker` until `stop` is set; returns the
/// worker's counters.
///
/// It changes nothing process-wide: its log events go to whatever `tracing` subscriber the
/// application installed ([`log::install`](crate::log::install) is the binary's), and the
/// number of open connections is bounded by the process's file-descriptor limit, which the
/// application may raise first (the binary raises the soft limit to the hard one).
pub fn serve<O: Outbox>(
    config: Config,
    store: Arc<Store>,
    worker: Worker<'_, O>,
    stop: &AtomicBool,
) -> Result<Stats, ServeError> {
    let max_open_files = rlimit::getrlimit(rlimit::Resource::NOFILE)
        .ok()
        .map(|(soft, _)| soft);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.http_threads.max(1))
        .thread_name("djinn-http")
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    let bind_error = |source| ServeError::Bind {
        addr: config.listen.clone(),
        source,
    };
    let listener = {
        let _runtime = runtime.enter();
        TcpListener::from_std(conn::bind(&config.addrs).map_err(bind_error)?).map_err(bind_error)?
    };
    let bound = listener.local_addr().map_err(bind_error)?;
    let waker = worker.waker();
    let state = AppState::new(&config, store, bound, move || waker.wake());
    let metrics = Arc::clone(&state.metrics);
    metrics.watch_breakers(worker.breakers());
    metrics.watch_limits(worker.limits());
    let worker = worker.with_observer(move |event| observe(&metrics, &event));
    let tokens = &config.tokens;
    let base = state.base_url().to_owned();

    let auth = if tokens.is_empty() {
        "none: no tokens configured, the API answers only requests to a loopback name from this machine"
    } else {
        "bearer"
    };
    #[cfg(feature = "ui")]
    let ui = config.ui.as_ref().map(|_| format!("{base}/ui/"));
    #[cfg(not(feature = "ui"))]
    let ui: Option<String> = None;
    let auto_prune = config.auto_prune.map_or_else(
        || "off".to_owned(),
        |auto| {
            format!(
                "every {} older than {}",
                humantime::format_duration(auto.every),
                humantime::format_duration(auto.older_than)
            )
        },
    );
    tracing::info!(
        msg = "listening",
        addr = %bound,
        url = base,
        ui,
        auto_prune,
        http_threads = config.http_threads,
        concurrency = config.concurrency,
        max_body = config.max_body,
        max_open_files,
        auth,
        tokens = (!tokens.is_empty()).then(|| tokens.len()),
    );

    let limits = &config.limits;
    let prune_store = Arc::clone(&state.store);
    let prune_metrics = Arc::clone(&state.metrics);
    let stats = thread::scope(|scope| {
        let worker = scope.spawn(|| worker.run(stop));
        if let Some(auto) = config.auto_prune {
            scope.spawn(move || {
                auto.run(&prune_store, stop, |outcome| match outcome {
                    Ok(pruned) => {
                        prune_metrics.pruned(Ok(&pruned));
                        tracing::info!(
                            msg = "pruned",
                            deliveries = pruned.deliveries,
                            events = pruned.events,
                            older_than_s = auto.older_than.as_secs(),
                        );
                    }
                    Err(err) => {
                        prune_metrics.pruned(Err(()));
                        tracing::warn!(msg = "prune failed", error = %err);
                    }
                });
            });
        }
        runtime.block_on(conn::serve_connections(
            listener,
            #[cfg(feature = "ui")]
            app::app(state, config.ui.clone()),
            #[cfg(not(feature = "ui"))]
            app::app(state, None),
            limits,
            stopped(stop),
        ));
        // Ends the connections still open, and the handler state they hold (the intake's
        // committer ends with the last of it).
        drop(runtime);
        let stats = worker.join().expect("the worker does not panic");
        tracing::info!(
            msg = "worker stopped",
            attempts = stats.attempts,
            delivered = stats.delivered,
            retries_scheduled = stats.retries_scheduled,
            failed = stats.failed,
        );
        stats
    });
    tracing::info!(msg = "stopped", attempts = stats.attempts);
    Ok(stats)
}

/// Completes once `stop` is set.
pub(crate) async fn stopped(stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        tokio::time::sleep(STOP_CHECK).await;
    }
}

/// The worker's events as metrics and log lines.
fn observe(metrics: &Metrics, event: &WorkerEvent<'_>) {
    if let WorkerEvent::Completed(done) = event {
        metrics.delivery(done);
    }
    log::worker_event(event);
}
