//! djinn-hook-server's tests: the `Router` driven directly for the API's rules and the web UI,
//! real listeners on 127.0.0.1 for what needs sockets (limits, timeouts, idle connections, the
//! receiver), and the UI in headless Chromium (`browser`).

mod api;
mod auth;
mod browser;
mod forms;
mod intake;
mod openapi;
mod pages;
mod props;
mod receiver;
mod recovery;
mod sockets;
mod support;
mod test_deliveries;

use std::net::SocketAddr;
use std::sync::Arc;

use djinn_hook_server::{AppState, Config, Tokens};
use djinn_hook_store::{SecretKey, Store};

/// A fresh in-memory store with namespace `alice/ci`.
pub(crate) fn store() -> Arc<Store> {
    let store = Store::open_in_memory(SecretKey::from_bytes([7; 32])).unwrap();
    store.ensure_namespace("alice/ci").unwrap();
    store.ensure_namespace("bob/x").unwrap();
    Arc::new(store)
}

/// A config on 127.0.0.1 with `tokens` (none: the loopback mode).
pub(crate) fn config(tokens: &[&str]) -> Config {
    Config::new("127.0.0.1:0", Tokens::new(tokens.iter().copied()).unwrap()).unwrap()
}

/// The state of a server said to be bound to 127.0.0.1:8080.
pub(crate) fn state(config: &Config) -> AppState {
    let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
    AppState::new(config, store(), local, || {})
}
