//! What the cross-crate tests share: a store on a temporary file, webhooks each in its own
//! namespace, events. (Waits, faulty receivers and the closed port are djinn-hook-testkit's.)

use djinn_hook_payload::{DEFAULT_API_SERVER, EventType, example_payload};
use djinn_hook_store::{NewEvent, NewWebhook, SecretKey, Store};

pub(crate) const SECRET: &str = "a receiver's shared secret";

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
