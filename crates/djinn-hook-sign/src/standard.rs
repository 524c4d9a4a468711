//! Standard Webhooks signatures (<https://www.standardwebhooks.com>, spec 1.0.0): replay
//! protection by signing `{webhook-id}.{webhook-timestamp}.{body}`.
//!
//! Follows the spec and its reference library: HMAC-SHA256, `v1,<padded standard base64>`
//! entries separated by single spaces (other versions such as `v1a` ignored), secrets written
//! `whsec_<base64>`, and a timestamp accepted when it lies within the tolerance on either side
//! of the verifier's clock (boundary included).

use std::{fmt, io::Write as _, time::Duration};

use base64::{Engine as _, engine::general_purpose::STANDARD};
use ring::{hmac, rand::SecureRandom as _};

use crate::{SignError, VerifyError};

/// How far `webhook-timestamp` may lie from the verifier's clock, either way: 5 minutes.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);
/// At most this many `v1,` entries are checked, so a forged header cannot make one request cost
/// hundreds of HMACs over its body. Rotation needs two or three.
pub const MAX_STANDARD_SIGNATURES: usize = 16;

/// The fewest and the most secret bytes a `whsec_` secret may hold: the spec's "at least 24
/// bytes (192 bits), 512 bits maximum" for symmetric signing secrets.
pub const STANDARD_SECRET_BYTES: std::ops::RangeInclusive<usize> = 24..=64;

const WHSEC_PREFIX: &str = "whsec_";
const VERSION: &str = "v1";
const TAG_LEN: usize = 32;
/// Padded base64 of 32 bytes.
const TAG_BASE64_LEN: usize = 44;

/// A Standard Webhooks secret: raw bytes, written `whsec_<base64>`, with its HMAC key
/// precomputed.
///
/// Its `Debug` prints `StandardSecret(..)`; it has no `Display`, only [`to_whsec`](Self::to_whsec).
#[derive(Clone)]
pub struct StandardSecret {
    bytes: Box<[u8]>,
    key: hmac::Key,
}

impl StandardSecret {
    /// Parses `whsec_` followed by standard padded base64 of 24 to 64 bytes
    /// ([`STANDARD_SECRET_BYTES`]): what the spec asks of a secret. This is the one rule for
    /// a `whsec_` secret: the store checks a webhook's secret with it before keeping one, so
    /// no delivery fails later on a secret it accepted.
    pub fn from_whsec(whsec: &str) -> Result<Self, SignError> {
        let encoded = whsec
            .strip_prefix(WHSEC_PREFIX)
            .ok_or(SignError::MissingWhsecPrefix)?;
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|_| SignError::WhsecNotBase64)?;
        if bytes.is_empty() {
            return Err(SignError::EmptyWhsec);
        }
        if !STANDARD_SECRET_BYTES.contains(&bytes.len()) {
            return Err(SignError::WhsecLength { len: bytes.len() });
        }
        Ok(Self::from_bytes(&bytes))
    }

    /// Wraps raw secret bytes as they are (the spec asks senders for 24 to 64 random bytes;
    /// this does not check: the Djinn CI secret of a webhook without `whsec_` is its key as
    /// typed).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self {
            bytes: bytes.into(),
            key: hmac::Key::new(hmac::HMAC_SHA256, bytes),
        }
    }

    /// A new secret of 32 bytes from the system's secure random number generator.
    pub fn generate() -> Result<Self, SignError> {
        let mut bytes = [0u8; 32];
        ring::rand::SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| SignError::Random)?;
        Ok(Self::from_bytes(&bytes))
    }

    /// The secret written as `whsec_<standard padded base64>`, for showing to a receiver once.
    pub fn to_whsec(&self) -> String {
        let mut whsec =
            String::with_capacity(WHSEC_PREFIX.len() + self.bytes.len().div_ceil(3) * 4);
        whsec.push_str(WHSEC_PREFIX);
        STANDARD.encode_string(&self.bytes, &mut whsec);
        whsec
    }

    /// The Standard Webhooks key of a webhook secret as the sender and receivers derive it:
    /// a `whsec_…` secret decoded ([`from_whsec`](Self::from_whsec)), any other secret's
    /// UTF-8 bytes as they are.
    pub fn for_webhook_secret(secret: &str) -> Result<Self, SignError> {
        if secret.starts_with(WHSEC_PREFIX) {
            Self::from_whsec(secret)
        } else {
            Ok(Self::from_bytes(secret.as_bytes()))
        }
    }
}

impl fmt::Debug for StandardSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StandardSecret(..)")
    }
}

/// The three Standard Webhooks headers of a request, as received.
#[derive(Debug, Clone, Copy)]
pub struct StandardHeaders<'a> {
    /// `webhook-id`.
    pub id: &'a str,
    /// `webhook-timestamp`.
    pub timestamp: &'a str,
    /// `webhook-signature`.
    pub signature: &'a str,
}

/// Signs a message: `v1,` and the base64 HMAC-SHA256 of `{msg_id}.{timestamp}.{body}`.
///
/// `msg_id` must not contain `.` (the spec's rule, so id and timestamp cannot be shifted into
/// each other); ids this project makes are UUIDs.
pub fn sign_standard(secret: &StandardSecret, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let timestamp = timestamp.to_string();
    let mut value = String::with_capacity(VERSION.len() + 1 + TAG_BASE64_LEN);
    push_signature(&mut value, secret, msg_id, &timestamp, body);
    value
}

/// Signs with every secret, space-separated: what a sender puts in `webhook-signature` while
/// rotating from one secret to the next.
pub fn sign_standard_all(
    secrets: &[StandardSecret],
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    let timestamp = timestamp.to_string();
    let mut value = String::with_capacity(secrets.len() * (VERSION.len() + 2 + TAG_BASE64_LEN));
    for (index, secret) in secrets.iter().enumerate() {
        if index > 0 {
            value.push(' ');
        }
        push_signature(&mut value, secret, msg_id, &timestamp, body);
    }
    value
}

fn push_signature(
    out: &mut String,
    secret: &StandardSecret,
    msg_id: &str,
    timestamp: &str,
    body: &[u8],
) {
    let mut context = hmac::Context::with_key(&secret.key);
    context.update(msg_id.as_bytes());
    context.update(b".");
    context.update(timestamp.as_bytes());
    context.update(b".");
    context.update(body);
    out.push_str(VERSION);
    out.push(',');
    STANDARD.encode_string(context.sign().as_ref(), out);
}

/// Verifies a Standard Webhooks request: the timestamp within `tolerance` of `now_unix` (either
/// way), and some `v1,` signature made by one of `secrets` over `{id}.{timestamp}.{body}`.
///
/// Each comparison is `ring::hmac::verify`, constant time. Parse errors are precise; a request
/// whose signatures are well formed but none matches gives [`VerifyError::Mismatch`].
pub fn verify_standard(
    secrets: &[StandardSecret],
    headers: &StandardHeaders<'_>,
    body: &[u8],
    now_unix: i64,
    tolerance: Duration,
) -> Result<(), VerifyError> {
    if secrets.is_empty() {
        return Err(VerifyError::NoSecrets);
    }
    for (part, value) in [
        ("id", headers.id),
        ("timestamp", headers.timestamp),
        ("signature", headers.signature),
    ] {
        if value.is_empty() {
            return Err(VerifyError::EmptyHeader { part });
        }
    }
    let timestamp = parse_timestamp(headers.timestamp)?;
    let candidates = parse_signatures(headers.signature)?;
    check_timestamp(timestamp, now_unix, tolerance)?;

    // One contiguous copy of the signed content, as `hmac::verify` takes a single slice.
    let mut content = Vec::with_capacity(headers.id.len() + 22 + body.len());
    content.extend_from_slice(headers.id.as_bytes());
    // Writing into a Vec cannot fail.
    let _ = write!(content, ".{timestamp}.");
    content.extend_from_slice(body);

    let matched = secrets.iter().any(|secret| {
        candidates
            .iter()
            .any(|tag| hmac::verify(&secret.key, &content, tag).is_ok())
    });
    if matched {
        Ok(())
    } else {
        Err(VerifyError::Mismatch)
    }
}

/// Decimal digits only, as the spec's "integer unix timestamp"; signed content re-renders the
/// number, as the reference library does.
fn parse_timestamp(value: &str) -> Result<i64, VerifyError> {
    let not_a_number = || VerifyError::TimestampNotANumber {
        value: value.to_owned(),
    };
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(not_a_number());
    }
    value.parse().map_err(|_| not_a_number())
}

/// The well-formed `v1` tags of a `webhook-signature` value.
fn parse_signatures(value: &str) -> Result<Vec<[u8; TAG_LEN]>, VerifyError> {
    let mut tags = Vec::new();
    let mut v1_count = 0;
    for entry in value.split(' ') {
        let Some((VERSION, encoded)) = entry.split_once(',') else {
            continue;
        };
        v1_count += 1;
        if v1_count > MAX_STANDARD_SIGNATURES {
            let count = value
                .split(' ')
                .filter(|entry| entry.starts_with("v1,"))
                .count();
            return Err(VerifyError::TooManySignatures {
                count,
                max: MAX_STANDARD_SIGNATURES,
            });
        }
        let mut tag = [0u8; TAG_LEN];
        if encoded.len() == TAG_BASE64_LEN
            && matches!(STANDARD.decode_slice(encoded, &mut tag), Ok(TAG_LEN))
        {
            tags.push(tag);
        }
    }
    match (v1_count, tags.is_empty()) {
        (0, _) => Err(VerifyError::NoV1Signature),
        (_, true) => Err(VerifyError::MalformedV1Signature),
        _ => Ok(tags),
    }
}

fn check_timestamp(timestamp: i64, now: i64, tolerance: Duration) -> Result<(), VerifyError> {
    let tolerance_secs = tolerance.as_secs();
    let behind = i128::from(now) - i128::from(timestamp);
    let saturate = |secs: i128| u64::try_from(secs).unwrap_or(u64::MAX);
    if behind > i128::from(tolerance_secs) {
        Err(VerifyError::TimestampTooOld {
            timestamp,
            age_secs: saturate(behind),
            tolerance_secs,
        })
    } else if -behind > i128::from(tolerance_secs) {
        Err(VerifyError::TimestampTooNew {
            timestamp,
            ahead_secs: saturate(-behind),
            tolerance_secs,
        })
    } else {
        Ok(())
    }
}
