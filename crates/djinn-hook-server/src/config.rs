//! [`Config`]: how `serve` runs (and what `router`'s state is built from), checked when made.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs as _};
use std::sync::Arc;
use std::time::Duration;

use djinn_hook_store::{AutoPrune, DEFAULT_IDEMPOTENCY_WINDOW};

use crate::auth::{TOKENS_ENV, Tokens};
use crate::conn::Limits;
#[cfg(feature = "ui")]
use crate::ui::UiState;

/// How `serve` runs. [`Config::new`] checks the address and the auth; the rest has the defaults
/// documented on each field, changed by setting it (`config.max_body = 4 << 20`).
#[derive(Debug)]
#[non_exhaustive]
pub struct Config {
    /// The address as given, for messages.
    pub listen: String,
    pub(crate) addrs: Vec<SocketAddr>,
    /// The bearer tokens; none means loopback callers only.
    pub tokens: Arc<Tokens>,
    /// The API's public base URL for the `url` fields of responses; `None`: `http://<bound
    /// address>`.
    pub base_url: Option<String>,
    /// The largest request body accepted, in bytes. Default 1 MiB. In a batch
    /// (`POST …/events/batch`), the largest payload of one event.
    pub max_body: usize,
    /// The largest body of a batch of events (`POST …/events/batch`), in bytes. Default 16 MiB.
    pub max_batch_body: usize,
    /// The most events in one batch. Default 1,000.
    pub max_batch_events: usize,
    /// How long an event's idempotency key answers for it (`Idempotency-Key`). Default
    /// [`DEFAULT_IDEMPOTENCY_WINDOW`] (24 hours).
    pub idempotency_window: Duration,
    /// Threads running the HTTP side (connections are tasks on them). Default 2.
    pub http_threads: usize,
    /// The longest a request may take, body read included, before a 408. Default 30 s.
    pub request_timeout: Duration,
    /// Per-connection limits. Default [`Limits::default`].
    pub limits: Limits,
    /// The worker's delivery threads, for the start line (the caller builds the worker).
    /// Default `None` (not shown).
    pub concurrency: Option<usize>,
    /// The web UI, served under `/ui/` beside the API (by `serve`, and in
    /// [`router`](crate::router)'s `Router`, below wherever an application nests it); `None`:
    /// the API only.
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
            max_batch_body: 16 * 1024 * 1024,
            max_batch_events: 1000,
            idempotency_window: DEFAULT_IDEMPOTENCY_WINDOW,
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
