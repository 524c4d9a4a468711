//! Integration tests of djinn-hook-sign: known answers, a cross-check against RustCrypto,
//! header parsing, verification and the Standard Webhooks scheme.

mod cross_check;
mod data;
mod known_answers;
mod parse;
mod props;
mod redaction;
mod standard;
mod verify;
