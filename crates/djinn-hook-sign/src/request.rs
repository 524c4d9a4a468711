//! Checking a whole delivery as a receiver gets it, headers as `http` types and the exact body:
//! both signature schemes, the previous secret of a rotation, and the Standard Webhooks
//! timestamp tolerance, in one [`Verifier`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;

use crate::{
    DEFAULT_TOLERANCE, RequestError, Secret, SignError, StandardHeaders, StandardSecret, headers,
    verify_any, verify_standard,
};

/// How a receiver checks the deliveries of one webhook: the webhook's secret (and, while the
/// sender rotates it, the previous one), whether the Standard Webhooks headers are required,
/// and how far their timestamp may be from the receiver's clock.
///
/// A request passes when it carries at least one signature scheme and every scheme it carries
/// verifies: `X-Djinn-CI-Signature` against any accepted secret, and `webhook-id`,
/// `webhook-timestamp` and `webhook-signature` (all three, the timestamp within the
/// tolerance) against any accepted secret's Standard Webhooks key, which is the base64 after
/// `whsec_` for a `whsec_…` secret and the secret's bytes otherwise, as the sender derives it.
/// A header given twice is refused rather than guessed at.
///
/// ```
/// use djinn_hook_sign::{Secret, Verifier, headers, sign};
/// use http::{HeaderMap, HeaderValue};
///
/// let body = br#"{"id":1}"#;
/// let mut request = HeaderMap::new();
/// let signature = sign(&Secret::from("s3cret"), body).to_header_value();
/// request.insert(headers::SIGNATURE, HeaderValue::from_str(&signature).unwrap());
///
/// let verifier = Verifier::new("s3cret").unwrap();
/// assert!(verifier.verify(&request, body).is_ok());
/// assert!(verifier.verify(&request, b"tampered").is_err());
/// ```
///
/// Its `Debug` shows how many secrets it holds, never one of them.
#[derive(Clone)]
pub struct Verifier {
    secrets: Vec<Secret>,
    /// `None` for a verifier made from a bare [`Secret`], which holds no Standard Webhooks key.
    standard_secrets: Option<Vec<StandardSecret>>,
    require_standard: bool,
    tolerance: Duration,
}

/// Which schemes a request passed with (each `true` only when its headers were present and
/// verified).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Verified {
    /// `X-Djinn-CI-Signature` verified.
    pub djinn_signature: bool,
    /// The Standard Webhooks headers verified.
    pub standard_signature: bool,
}

impl Verifier {
    /// A verifier for a webhook with this secret, as configured on the sender (a `whsec_…`
    /// secret must be valid, since its Standard Webhooks key is decoded from it).
    pub fn new(secret: &str) -> Result<Self, SignError> {
        Ok(Self {
            secrets: vec![Secret::from(secret)],
            standard_secrets: Some(vec![StandardSecret::for_webhook_secret(secret)?]),
            require_standard: false,
            tolerance: DEFAULT_TOLERANCE,
        })
    }

    /// Also accepts signatures made with `previous`, as a receiver does while the sender's
    /// secret is rotated (the sender signs with both during the overlap).
    pub fn with_previous(mut self, previous: &str) -> Result<Self, SignError> {
        let standard = StandardSecret::for_webhook_secret(previous)?;
        if let Some(keys) = &mut self.standard_secrets {
            keys.push(standard);
        }
        self.secrets.push(Secret::from(previous));
        Ok(self)
    }

    /// Refuses a request without the Standard Webhooks headers, for a receiver that relies on
    /// their timestamp against replays (a verifier made from a bare [`Secret`] holds no
    /// Standard Webhooks key, and then refuses every request).
    pub fn require_standard(mut self) -> Self {
        self.require_standard = true;
        self
    }

    /// How far `webhook-timestamp` may lie from the receiver's clock, either way
    /// ([`DEFAULT_TOLERANCE`] unless set).
    pub fn tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// Checks a request against the receiver's clock.
    pub fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<Verified, RequestError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| {
                i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
            });
        self.verify_at(headers, body, now)
    }

    /// Checks a request as at `now_unix` (Unix seconds): for tests, and for receivers that
    /// check a stored request later.
    pub fn verify_at(
        &self,
        request: &HeaderMap,
        body: &[u8],
        now_unix: i64,
    ) -> Result<Verified, RequestError> {
        let djinn = single(request, headers::SIGNATURE)?;
        let id = single(request, headers::WEBHOOK_ID)?;
        let timestamp = single(request, headers::WEBHOOK_TIMESTAMP)?;
        let signature = single(request, headers::WEBHOOK_SIGNATURE)?;
        let any_standard = id.is_some() || timestamp.is_some() || signature.is_some();

        if djinn.is_none() && !any_standard {
            return Err(RequestError::Unsigned);
        }
        if let Some(value) = djinn {
            verify_any(&self.secrets, body, value).map_err(|source| RequestError::Invalid {
                header: headers::SIGNATURE,
                source,
            })?;
        }
        let check_standard = match &self.standard_secrets {
            Some(keys) if any_standard || self.require_standard => Some(keys),
            Some(_) => None,
            // Only the Djinn signature can be checked, so it must be there.
            None if self.require_standard => {
                return Err(RequestError::Invalid {
                    header: headers::WEBHOOK_SIGNATURE,
                    source: crate::VerifyError::NoSecrets,
                });
            }
            None if djinn.is_none() => {
                return Err(RequestError::Missing {
                    header: headers::SIGNATURE,
                });
            }
            None => None,
        };
        if let Some(keys) = check_standard {
            let parts = StandardHeaders {
                id: required(id, headers::WEBHOOK_ID)?,
                timestamp: required(timestamp, headers::WEBHOOK_TIMESTAMP)?,
                signature: required(signature, headers::WEBHOOK_SIGNATURE)?,
            };
            verify_standard(keys, &parts, body, now_unix, self.tolerance).map_err(|source| {
                RequestError::Invalid {
                    header: standard_header_of(&source),
                    source,
                }
            })?;
        }
        Ok(Verified {
            djinn_signature: djinn.is_some(),
            standard_signature: check_standard.is_some(),
        })
    }
}

/// A verifier of the Djinn signature alone: a [`Secret`] holds an HMAC key, not the text a
/// Standard Webhooks key is derived from, so the Standard headers of a request are not checked
/// (use [`Verifier::new`] to check them too).
impl From<Secret> for Verifier {
    fn from(secret: Secret) -> Self {
        Self {
            secrets: vec![secret],
            standard_secrets: None,
            require_standard: false,
            tolerance: DEFAULT_TOLERANCE,
        }
    }
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("secrets", &self.secrets.len())
            .field("require_standard", &self.require_standard)
            .field("tolerance", &self.tolerance)
            .finish()
    }
}

/// The header's one value as text, `None` when absent; refused when repeated or not visible
/// ASCII, since a signature checked against one of two values proves nothing about the other.
fn single<'a>(request: &'a HeaderMap, name: &'static str) -> Result<Option<&'a str>, RequestError> {
    let mut values = request.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(RequestError::Repeated { header: name });
    }
    value
        .to_str()
        .map(Some)
        .map_err(|_| RequestError::NotText { header: name })
}

fn required<'a>(value: Option<&'a str>, header: &'static str) -> Result<&'a str, RequestError> {
    value.ok_or(RequestError::Missing { header })
}

/// The Standard Webhooks header a verification error is about, for the error's message.
fn standard_header_of(error: &crate::VerifyError) -> &'static str {
    use crate::VerifyError as E;
    match error {
        E::TimestampNotANumber { .. } | E::TimestampTooOld { .. } | E::TimestampTooNew { .. } => {
            headers::WEBHOOK_TIMESTAMP
        }
        E::EmptyHeader { part: "id" } => headers::WEBHOOK_ID,
        E::EmptyHeader { part: "timestamp" } => headers::WEBHOOK_TIMESTAMP,
        _ => headers::WEBHOOK_SIGNATURE,
    }
}
