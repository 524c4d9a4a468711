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
//! When `stop` is set (the binary sets it on SIGINT/SIGTERM; every part waiting on it wakes at
//! once) the server stops accepting,
//! answers the requests in progress, the worker hands its queued tasks back to the store (due
//! again at once), finishes and commits the deliveries under way, and [`serve`] returns. (The
//! binary bounds that wait, and hands back what is still under way when it runs out.)

use std::io;
use std::sync::Arc;
use std::thread;

use djinn_hook_deliver::{Outbox, Shutdown, Stats, Worker, WorkerEvent};
use djinn_hook_store::Store;
use tokio::net::TcpListener;

use crate::app::{self, AppState};
use crate::config::Config;
use crate::conn;
use crate::log;
use crate::metrics::Metrics;
use crate::ready::WorkerFlag;

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
    stop: &Shutdown,
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
    let mut state = AppState::new(&config, store, bound, move || waker.wake());
    let worker_flag = WorkerFlag::default();
    state.worker = Some(worker_flag.clone());
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
        let worker = scope.spawn(|| {
            let _running = worker_flag.running();
            worker.run(stop)
        });
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
            app::router(state),
            limits,
            stop.stopped(),
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

/// The worker's events as metrics and log lines.
fn observe(metrics: &Metrics, event: &WorkerEvent<'_>) {
    if let WorkerEvent::Completed(done) = event {
        metrics.delivery(done);
    }
    log::worker_event(event);
}
