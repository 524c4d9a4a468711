//! A backlog for a bench: many copies of one example event, accepted into a store in batches.

use djinn_hook_payload::{DEFAULT_API_SERVER, EventType, example_payload};
use djinn_hook_store::{NewEvent, Store};

/// Accepts `count` copies of `event`'s example payload for namespace `ns`, 1,000 per batch.
pub(crate) fn queue(store: &Store, ns: &str, event: EventType, count: usize) {
    let payload = example_payload(event, DEFAULT_API_SERVER).to_body();
    for start in (0..count).step_by(1000) {
        let batch = (start..count.min(start + 1000))
            .map(|_| NewEvent::new(ns, event, payload.clone()))
            .collect();
        store.accept_events(batch).expect("queue the backlog");
    }
}
