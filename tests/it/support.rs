//! What the cross-crate tests share: a store on a temporary file, webhooks each in its own
//! namespace, events, a closed port, and bounded waits on conditions.

use std::net::{SocketAddr, TcpListener};
use std::thread;
use std::time::{Duration, Instant};

use djinn_hook_payload::{DEFAULT_API_SERVER, EventType, example_payload};
use djinn_hook_store::{NewEvent, NewWebhook, SecretKey, Store};

pub(crate) const SECRET: &str = "a receiver's shared secret";
/// How long any condition below may take before the test fails: generous, so a loaded machine
/// does not fail it; a broken isolation takes far longer (or forever).
pub(crate) const DEADLINE: Duration = Duration::from_secs(20);

pub(crate) fn store(dir: &tempfile::TempDir) -> Store {
    Store::open(dir.path().join("hooks.db"), SecretKey::from_bytes([42; 32])).unwrap()
}

/// A webhook (with the secret) for `url` in its own namespace `ns`.
pub(crate) fn hook(store: &Store, ns: &str, url: String) -> i64 {
    store.ensure_namespace(ns).unwrap();
    let mut new = NewWebhook::new(ns, url);
    new.secret = Some(SECRET.to_owned());
    store.create_webhook(new).unwrap().id
}

pub(crate) fn emit(store: &Store, ns: &str, n: usize) {
    let payload = example_payload(EventType::BuildFinished, DEFAULT_API_SERVER).to_body();
    let events = (0..n)
        .map(|_| NewEvent::new(ns, EventType::BuildFinished, payload.clone()))
        .collect();
    store.accept_events(events).unwrap();
}

/// An address on 127.0.0.1 nobody listens on (yet): bound, noted, closed.
pub(crate) fn closed_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Waits until `done` holds, failing the test (naming `what`) after [`DEADLINE`].
pub(crate) fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(10));
    }
}
