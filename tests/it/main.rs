//! Cross-crate tests: the delivery worker (djinn-hook-deliver) claiming from and
//! completing into the real SQLite store (djinn-hook-store), through the
//! store's own `Outbox` implementation, delivering to a verifying receiver on 127.0.0.1; and
//! the crates embedded in a CI server's own axum app, as an outside tool uses them.

mod embedding;
mod isolation;
mod starvation;
mod support;
mod worker_on_store;
