//! Signing and verifying Djinn CI webhook deliveries; no I/O, no HTTP, no SQL.
//!
//! Two schemes, both HMAC-SHA256 on `ring`:
//!
//! - The Djinn CI signature, compatible with the original: a [`Secret`], [`sign`] gives a
//!   [`Signature`] whose header value is `sha256=<64 lowercase hex>`;
//!   a receiver checks it with [`verify`], or [`verify_any`] while rotating secrets.
//! - Standard Webhooks, opt-in replay protection: a [`StandardSecret`] (`whsec_…`),
//!   [`sign_standard`] over `{id}.{timestamp}.{body}`, and [`verify_standard`], which also
//!   rejects timestamps outside a tolerance ([`DEFAULT_TOLERANCE`], 5 minutes).
//!
//! The crate works on header values and names no header: the names are the wire format's, in
//! `djinn_hook_payload::headers`.
//!
//! Verification is constant time (`ring::hmac::verify`); a mismatch is one opaque
//! [`VerifyError::Mismatch`], while malformed headers get precise errors. Secrets never
//! appear in `Debug` or `Display`.
//!
//! A receiver checks a delivery in one call:
//!
//! ```
//! use djinn_hook_sign::{Secret, VerifyError, sign, verify};
//! let secret = Secret::from("It's a Secret to Everybody");
//! let header = sign(&secret, br#"{"id":1}"#).to_header_value(); // the sender's X-Djinn-CI-Signature
//! verify(&secret, br#"{"id":1}"#, &header)?;
//! assert_eq!(verify(&secret, br#"{"id":2}"#, &header), Err(VerifyError::Mismatch));
//! # Ok::<(), VerifyError>(())
//! ```
#![warn(missing_docs)]

mod error;
mod signature;
mod standard;

pub use crate::{
    error::{SignError, VerifyError},
    signature::{Secret, Signature, sign, verify, verify_any},
    standard::{
        DEFAULT_TOLERANCE, MAX_STANDARD_SIGNATURES, STANDARD_SECRET_BYTES, StandardHeaders,
        StandardSecret, sign_standard, sign_standard_all, verify_standard,
    },
};
