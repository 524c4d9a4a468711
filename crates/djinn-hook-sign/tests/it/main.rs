//! Integration tests of djinn-hook-sign: known answers, a cross-check against RustCrypto,
//! header parsing, verification, the Standard Webhooks scheme, and whole requests.

mod cross_check;
mod data;
mod headers;
mod known_answers;
mod parse;
mod props;
mod redaction;
// The workspace builds this crate with its `axum` feature (the server asks for it), so
// `cargo test --workspace` runs these; `cargo hack` in CI checks the crate without it.
#[cfg(feature = "http")]
mod request;
mod standard;
mod verify;
