//! A webhook's custom headers, for both backends: which names and values are allowed, how they
//! are kept (names in clear, values sealed like a secret), and how an update that shows a value
//! as `***` keeps the stored one.
//!
//! Stored in two columns written together: `header_names`, the JSON array of names in order
//! (what a webhook shows), and `headers`, the JSON array of `[name, value]` pairs sealed under
//! the webhook's id and the label [`AAD_LABEL`] (so the sealed secret and the sealed headers
//! cannot stand in for each other).

use djinn_hook_outbox::CustomHeader;
use djinn_hook_sign::headers as sent;

use crate::error::{Error, Result};
use crate::key::Cipher;
use crate::validate::ValidationErrors;

/// The field errors are reported under.
const FIELD: &str = "headers";

/// Bound into the sealed values' associated data, beside the webhook's id.
pub(crate) const AAD_LABEL: &[u8] = b"headers";

/// The value that, in an update, keeps the stored value of the header of that name (what a
/// webhook shows: an API client can send back what it read).
pub const KEEP_HEADER_VALUE: &str = CustomHeader::MASK;

/// At most this many custom headers per webhook.
pub const MAX_HEADERS: usize = 20;

/// The longest value accepted, in bytes.
const MAX_VALUE: usize = 4096;

/// Names the delivery sets itself, or that describe the connection or the body it sends: a
/// custom header may not override them (lower case; compared case-insensitively).
const REFUSED: &[&str] = &[
    "accept",
    "connection",
    "content-encoding",
    "content-length",
    "content-type",
    "expect",
    "host",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
];

/// Why `name` may not be a custom header, if it may not.
fn refused(name: &str) -> Option<&'static str> {
    let signed = [
        sent::EVENT,
        sent::HOOK_ID,
        sent::DELIVERY,
        sent::SIGNATURE,
        sent::WEBHOOK_ID,
        sent::WEBHOOK_TIMESTAMP,
        sent::WEBHOOK_SIGNATURE,
    ];
    if signed.iter().any(|s| s.eq_ignore_ascii_case(name)) {
        return Some("is set by every delivery (event, delivery id, signature) and cannot be set");
    }
    if REFUSED.iter().any(|s| s.eq_ignore_ascii_case(name)) {
        return Some(
            "is set by the delivery or describes its connection or body, and cannot be set",
        );
    }
    None
}

/// Checks `headers` (name, value) as given, collecting an error naming each bad header. With
/// `keep_allowed`, a value of [`KEEP_HEADER_VALUE`] passes (an update keeps the stored value).
pub(crate) fn check(
    headers: &[(String, String)],
    keep_allowed: bool,
    errors: &mut ValidationErrors,
) {
    if headers.len() > MAX_HEADERS {
        errors.add(FIELD, format!("at most {MAX_HEADERS} headers"));
    }
    for (i, (name, value)) in headers.iter().enumerate() {
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            // The name is not shown raw: it may hold control characters.
            errors.add(FIELD, format!("{name:?} is not a valid header name"));
            continue;
        }
        if let Some(why) = refused(name) {
            errors.add(FIELD, format!("{name} {why}"));
            continue;
        }
        if headers[..i]
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            errors.add(FIELD, format!("{name} is given twice"));
        }
        if value == KEEP_HEADER_VALUE {
            if !keep_allowed {
                errors.add(
                    FIELD,
                    format!("{name}: `***` keeps a stored value, and there is none"),
                );
            }
            continue;
        }
        // The value is never quoted in a message: it is a secret.
        if value.is_empty() || value.len() > MAX_VALUE {
            errors.add(
                FIELD,
                format!("{name}: the value must be 1 to {MAX_VALUE} bytes"),
            );
        } else if value.trim() != value || http::HeaderValue::from_str(value).is_err() {
            errors.add(
                FIELD,
                format!(
                    "{name}: the value must be visible ASCII characters and inner spaces \
                     (no control characters, no leading or trailing space)"
                ),
            );
        }
    }
}

/// `update` with each [`KEEP_HEADER_VALUE`] replaced by the stored value of that name, or
/// [`Error::Invalid`] naming a header kept that has no stored value.
pub(crate) fn merge(
    update: &[(String, String)],
    stored: &[(String, String)],
) -> Result<Vec<(String, String)>> {
    let mut errors = ValidationErrors::default();
    let merged = update
        .iter()
        .map(|(name, value)| {
            if value != KEEP_HEADER_VALUE {
                return (name.clone(), value.clone());
            }
            match stored.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
                Some((_, kept)) => (name.clone(), kept.clone()),
                None => {
                    errors.add(
                        FIELD,
                        format!("{name}: `***` keeps a stored value, and there is none"),
                    );
                    (name.clone(), String::new())
                }
            }
        })
        .collect();
    if errors.is_empty() {
        Ok(merged)
    } else {
        Err(Error::Invalid(errors))
    }
}

/// The two columns for `headers`: the names' JSON and the sealed pairs, both `None` for none.
pub(crate) fn seal(
    cipher: &Cipher,
    hook_id: i64,
    headers: &[(String, String)],
) -> Result<(Option<String>, Option<Vec<u8>>)> {
    if headers.is_empty() {
        return Ok((None, None));
    }
    let names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
    let names = serde_json::to_string(&names).expect("strings serialise");
    let pairs = serde_json::to_string(headers).expect("strings serialise");
    Ok((
        Some(names),
        Some(cipher.seal_labelled(hook_id, AAD_LABEL, &pairs)?),
    ))
}

/// The stored pairs, decrypted (none for `None`).
pub(crate) fn open(
    cipher: &Cipher,
    hook_id: i64,
    sealed: Option<&[u8]>,
) -> Result<Vec<(String, String)>> {
    let Some(sealed) = sealed else {
        return Ok(Vec::new());
    };
    let pairs = cipher.open_labelled(hook_id, AAD_LABEL, sealed)?;
    serde_json::from_str(&pairs).map_err(|_| Error::Corrupt {
        what: format!("the custom headers of webhook {hook_id}"),
    })
}

/// The stored pairs as a delivery carries them.
pub(crate) fn open_for_delivery(
    cipher: &Cipher,
    hook_id: i64,
    sealed: Option<&[u8]>,
) -> Result<Vec<CustomHeader>> {
    Ok(open(cipher, hook_id, sealed)?
        .into_iter()
        .map(|(name, value)| CustomHeader::new(name, value))
        .collect())
}

/// The names from the `header_names` column (none for `NULL`; a corrupt value shows none).
pub(crate) fn names(column: Option<String>) -> Vec<String> {
    column
        .and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or_default()
}
