//! The Djinn CI signature: `X-Djinn-CI-Signature: sha256=<hex of HMAC-SHA256(secret, body)>`.

use std::{fmt, str::FromStr};

use ring::hmac;

use crate::VerifyError;

const PREFIX: &str = "sha256=";
const TAG_LEN: usize = 32;
const HEX_LEN: usize = 2 * TAG_LEN;
const HEADER_LEN: usize = PREFIX.len() + HEX_LEN;

/// A webhook secret for the Djinn CI signature, held as a precomputed HMAC-SHA256 key.
///
/// Its `Debug` and `Display` print `Secret(..)`, never the key.
#[derive(Clone)]
pub struct Secret {
    key: hmac::Key,
}

impl Secret {
    /// Builds a secret from raw bytes; any length is accepted, as HMAC allows.
    pub fn new(secret: impl AsRef<[u8]>) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret.as_ref()),
        }
    }
}

impl From<&str> for Secret {
    fn from(secret: &str) -> Self {
        Self::new(secret)
    }
}

impl From<String> for Secret {
    fn from(secret: String) -> Self {
        Self::new(secret)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// An HMAC-SHA256 tag, shown as the header value `sha256=<64 lowercase hex>`.
///
/// Deliberately not `PartialEq`: tags are compared by [`verify`], in constant time.
#[derive(Clone, Copy)]
pub struct Signature([u8; TAG_LEN]);

impl Signature {
    /// Wraps a raw 32-byte tag.
    pub const fn from_bytes(tag: [u8; TAG_LEN]) -> Self {
        Self(tag)
    }

    /// The raw 32-byte tag.
    pub const fn as_bytes(&self) -> &[u8; TAG_LEN] {
        &self.0
    }

    /// The header value: `sha256=` and 64 lowercase hex digits.
    pub fn to_header_value(&self) -> String {
        let mut value = String::with_capacity(HEADER_LEN);
        value.push_str(self.render().as_str());
        value
    }

    /// Renders into a stack buffer; no allocation.
    fn render(&self) -> Rendered {
        let mut buf = [0u8; HEADER_LEN];
        buf[..PREFIX.len()].copy_from_slice(PREFIX.as_bytes());
        // The output slice is exactly twice the tag's length, so encoding cannot fail.
        let encoded = const_hex::encode_to_slice(self.0, &mut buf[PREFIX.len()..]);
        debug_assert!(encoded.is_ok());
        Rendered(buf)
    }
}

/// A rendered header value on the stack.
struct Rendered([u8; HEADER_LEN]);

impl Rendered {
    fn as_str(&self) -> &str {
        // Only ASCII was written, so this cannot fail; an empty string would show the bug.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.render().as_str())
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({self})")
    }
}

impl FromStr for Signature {
    type Err = VerifyError;

    /// Strict: exactly `sha256=` and 64 hex digits (either case), nothing around them.
    fn from_str(value: &str) -> Result<Self, VerifyError> {
        // Fast path, taken by every well-formed value: exactly 64 digits after the prefix.
        // The length is checked first because const-hex would also accept a `0x` prefix.
        if let Some(hex) = value.strip_prefix(PREFIX)
            && hex.len() == HEX_LEN
            && let Ok(tag) = const_hex::decode_to_array::<_, TAG_LEN>(hex)
        {
            return Ok(Self(tag));
        }
        Err(parse_error(value))
    }
}

/// The precise reason a header value is not `sha256=` and 64 hex digits.
fn parse_error(value: &str) -> VerifyError {
    if value.is_empty() {
        return VerifyError::Empty;
    }
    if value.trim().len() != value.len() {
        return VerifyError::SurroundingWhitespace;
    }
    let Some(hex) = value.strip_prefix(PREFIX) else {
        return prefix_error(value);
    };
    match hex.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
        Some((index, _)) if index >= HEX_LEN => VerifyError::TrailingGarbage {
            len: hex.len() - HEX_LEN,
        },
        Some((index, found)) => VerifyError::InvalidHexChar {
            position: PREFIX.len() + index,
            found,
        },
        None => VerifyError::WrongLength { len: hex.len() },
    }
}

/// Classifies a header value that does not start with `sha256=`.
fn prefix_error(value: &str) -> VerifyError {
    match value.split_once('=') {
        Some((algorithm, _))
            if !algorithm.is_empty()
                && algorithm
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            VerifyError::UnsupportedAlgorithm {
                algorithm: algorithm.to_owned(),
            }
        }
        _ => match value.find(PREFIX) {
            Some(len) => VerifyError::LeadingGarbage { len },
            None => VerifyError::MissingPrefix,
        },
    }
}

/// Signs `body`: HMAC-SHA256 over its exact bytes.
pub fn sign(secret: &Secret, body: &[u8]) -> Signature {
    let tag = hmac::sign(&secret.key, body);
    let mut bytes = [0u8; TAG_LEN];
    bytes.copy_from_slice(tag.as_ref());
    Signature(bytes)
}

/// Verifies a signature header value against `body`, in constant time.
///
/// A malformed header gives a precise parse error; a well-formed one that does not match gives
/// [`VerifyError::Mismatch`] and nothing more.
pub fn verify(secret: &Secret, body: &[u8], header_value: &str) -> Result<(), VerifyError> {
    verify_any(std::slice::from_ref(secret), body, header_value)
}

/// Like [`verify`], accepting a signature made by any of `secrets`: a receiver rotating its
/// secret lists the new and the old one during the overlap.
pub fn verify_any(secrets: &[Secret], body: &[u8], header_value: &str) -> Result<(), VerifyError> {
    let signature: Signature = header_value.parse()?;
    if secrets.is_empty() {
        return Err(VerifyError::NoSecrets);
    }
    if secrets
        .iter()
        .any(|secret| hmac::verify(&secret.key, body, &signature.0).is_ok())
    {
        Ok(())
    } else {
        Err(VerifyError::Mismatch)
    }
}
