//! The crate's errors: [`VerifyError`] for everything a receiver can hit, [`SignError`] for
//! building a Standard Webhooks secret.
//!
//! Parse errors are precise: they describe the header a sender put on the wire, which is no
//! secret. A failed verification is one opaque [`VerifyError::Mismatch`]: it never says which
//! secret, signature or byte differed.

/// Why a signature header was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The signature header value is empty.
    #[error("signature header is empty")]
    Empty,
    /// The signature header value starts or ends with whitespace.
    #[error("signature header has whitespace before or after it")]
    SurroundingWhitespace,
    /// The signature header value has no `algorithm=` prefix at all.
    #[error("signature header lacks the `sha256=` prefix")]
    MissingPrefix,
    /// Something comes before the `sha256=` prefix.
    #[error("signature header has {len} unexpected bytes before `sha256=`")]
    LeadingGarbage {
        /// How many bytes precede `sha256=`.
        len: usize,
    },
    /// The prefix names another algorithm, such as `sha1=`.
    #[error("signature algorithm `{algorithm}` is not supported, expected `sha256`")]
    UnsupportedAlgorithm {
        /// The algorithm name found before `=`.
        algorithm: String,
    },
    /// The hex digits after `sha256=` are not exactly 64.
    #[error("signature has {len} hex digits after `sha256=`, expected 64")]
    WrongLength {
        /// How many hex digits were found.
        len: usize,
    },
    /// A character after `sha256=` is not a hex digit.
    #[error("signature has non-hex character {found:?} at byte {position} of the header")]
    InvalidHexChar {
        /// Byte offset of the character in the whole header value.
        position: usize,
        /// The offending character.
        found: char,
    },
    /// The 64 hex digits are followed by something else.
    #[error("signature has {len} unexpected bytes after its 64 hex digits")]
    TrailingGarbage {
        /// How many bytes follow the hex digits.
        len: usize,
    },
    /// The signature is well formed but no secret produced it.
    #[error("signature does not match")]
    Mismatch,
    /// Verification was asked for with an empty list of secrets.
    #[error("no secret to verify against")]
    NoSecrets,
    /// A required Standard Webhooks header is empty or absent.
    #[error("the Standard Webhooks {part} header is empty")]
    EmptyHeader {
        /// Which of the three: `id`, `timestamp` or `signature`, as the fields of
        /// [`StandardHeaders`](crate::StandardHeaders).
        part: &'static str,
    },
    /// `webhook-timestamp` is not a non-negative decimal integer.
    #[error("webhook-timestamp {value:?} is not a number of seconds")]
    TimestampNotANumber {
        /// The header value as received.
        value: String,
    },
    /// `webhook-timestamp` lies further in the past than the tolerance allows.
    #[error(
        "webhook-timestamp {timestamp} is {age_secs} s old, beyond the {tolerance_secs} s tolerance"
    )]
    TimestampTooOld {
        /// The timestamp received, in Unix seconds.
        timestamp: i64,
        /// How far it lies behind the verifier's clock, in seconds.
        age_secs: u64,
        /// The tolerance in force, in seconds.
        tolerance_secs: u64,
    },
    /// `webhook-timestamp` lies further in the future than the tolerance allows.
    #[error(
        "webhook-timestamp {timestamp} is {ahead_secs} s in the future, beyond the {tolerance_secs} s tolerance"
    )]
    TimestampTooNew {
        /// The timestamp received, in Unix seconds.
        timestamp: i64,
        /// How far it lies ahead of the verifier's clock, in seconds.
        ahead_secs: u64,
        /// The tolerance in force, in seconds.
        tolerance_secs: u64,
    },
    /// `webhook-signature` carries no `v1,` entry (other versions are ignored).
    #[error("webhook-signature has no `v1,` signature")]
    NoV1Signature,
    /// `webhook-signature` has `v1,` entries but none is padded base64 of 32 bytes.
    #[error("webhook-signature has no well-formed `v1,` signature (padded base64 of 32 bytes)")]
    MalformedV1Signature,
    /// `webhook-signature` carries more `v1,` entries than are checked.
    #[error("webhook-signature has {count} `v1,` signatures, at most {max} are checked")]
    TooManySignatures {
        /// How many `v1,` entries were found.
        count: usize,
        /// The limit, [`MAX_STANDARD_SIGNATURES`](crate::MAX_STANDARD_SIGNATURES).
        max: usize,
    },
}

/// Why a Standard Webhooks secret could not be built.
///
/// None of these carries the offending text or a lower-level cause: the input is a secret, and
/// `base64::DecodeError` would quote one of its characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The secret does not start with `whsec_`.
    #[error("standard webhook secret lacks the `whsec_` prefix")]
    MissingWhsecPrefix,
    /// The text after `whsec_` is not standard padded base64.
    #[error("standard webhook secret is not valid padded base64 after `whsec_`")]
    WhsecNotBase64,
    /// The text after `whsec_` decodes to no bytes.
    #[error("standard webhook secret is empty after `whsec_`")]
    EmptyWhsec,
    /// The text after `whsec_` decodes to fewer than 24 or more than 64 bytes
    /// ([`STANDARD_SECRET_BYTES`](crate::STANDARD_SECRET_BYTES)).
    #[error(
        "standard webhook secret is {len} bytes after `whsec_`, the spec asks for 24 to 64 \
         (base64 of 32 to 88 characters)"
    )]
    WhsecLength {
        /// How many bytes the base64 decodes to.
        len: usize,
    },
    /// The system random number generator failed.
    #[error("system random number generator failed")]
    Random,
}

/// Why a delivery request was refused by a [`Verifier`](crate::Verifier).
///
/// Each names the header it is about; like [`VerifyError`], none says which secret or byte
/// differed.
#[cfg(feature = "http")]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The request carries neither `X-Djinn-CI-Signature` nor the Standard Webhooks headers.
    #[error("the request carries no signature header")]
    Unsigned,
    /// A header that the request's scheme needs is absent.
    #[error("the request has no {header} header")]
    Missing {
        /// The header's name.
        header: &'static str,
    },
    /// A signature header is given more than once.
    #[error("the request has more than one {header} header")]
    Repeated {
        /// The header's name.
        header: &'static str,
    },
    /// A signature header's value is not visible ASCII.
    #[error("the {header} header is not visible ASCII")]
    NotText {
        /// The header's name.
        header: &'static str,
    },
    /// A signature header is malformed, out of its time tolerance, or does not match.
    #[error("the {header} header does not verify")]
    Invalid {
        /// The header's name.
        header: &'static str,
        /// What was wrong with it.
        #[source]
        source: VerifyError,
    },
}
