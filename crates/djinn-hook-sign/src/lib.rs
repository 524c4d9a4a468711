//! Signing and verifying Djinn CI webhook deliveries, for senders and receivers; no I/O, no SQL.
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
//! [`headers`] names every header a delivery carries. With the `http` feature, a [`Verifier`]
//! checks a whole request (headers as `http` types and the body): both schemes, the previous
//! secret while the sender rotates, and the Standard Webhooks timestamp tolerance; with the
//! `axum` feature, [`VerifiedDelivery`] is that as an axum extractor. Without features the
//! crate depends on ring, base64, const-hex and thiserror only.
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
//! // The sender's X-Djinn-CI-Signature.
//! let header = sign(&secret, br#"{"id":1}"#).to_header_value();
//! verify(&secret, br#"{"id":1}"#, &header)?;
//! assert_eq!(verify(&secret, br#"{"id":2}"#, &header), Err(VerifyError::Mismatch));
//! # Ok::<(), VerifyError>(())
//! ```
#![warn(missing_docs)]

/// The crate README's example, compiled and run as a doctest so it cannot drift.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
struct ReadmeDoctests;

mod error;
#[cfg(feature = "axum")]
mod extract;
pub mod headers;
#[cfg(feature = "http")]
mod request;
mod signature;
mod standard;

#[cfg(feature = "axum")]
pub use crate::extract::{DeliveryRejection, VerifiedDelivery};
#[cfg(feature = "http")]
pub use crate::{
    error::RequestError,
    request::{Verified, Verifier},
};

pub use crate::{
    error::{SignError, VerifyError},
    signature::{Secret, Signature, sign, verify, verify_any},
    standard::{
        DEFAULT_TOLERANCE, MAX_STANDARD_SIGNATURES, STANDARD_SECRET_BYTES, StandardHeaders,
        StandardSecret, sign_standard, sign_standard_all, verify_standard,
    },
};
