//! Request bodies: read with the size limit enforced while they arrive, the JSON the API reads, and
//! how a body that fails to parse is reported. What it writes is in `crate::entity_json`, shared
//! with the command line's `--json`.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use serde::{Deserialize, Deserializer};

/// Reads at most `max` bytes: 413 beyond. A declared length over the limit is refused before
/// anything is read; a chunked body is cut off as soon as it passes the limit.
pub(crate) async fn read(headers: &HeaderMap, body: Body, max: usize) -> Result<Bytes, BodyError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(BodyError::TooLarge(max));
    }
    match Limited::new(body, max).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.downcast_ref::<LengthLimitError>().is_some() => {
            Err(BodyError::TooLarge(max))
        }
        Err(err) => Err(BodyError::Malformed(format!(
            "cannot read the request body: {err}"
        ))),
    }
}

/// The body of `POST …/webhooks`. Unknown fields are ignored, as the original does.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct CreateWebhook {
    pub(crate) payload_url: Option<String>,
    pub(crate) secret: Option<String>,
    pub(crate) ssl: Option<bool>,
    pub(crate) active: Option<bool>,
    pub(crate) events: Option<Vec<String>>,
    pub(crate) standard_webhooks: Option<bool>,
    /// Most deliveries to this webhook at once; absent or `null`: the worker's default.
    pub(crate) max_in_flight: Option<u32>,
    /// The overall timeout of one attempt, in milliseconds; absent or `null`: the worker's.
    pub(crate) timeout_ms: Option<u64>,
    /// Custom headers, `{"X-Api-Key": "value"}`; absent or `null`: none.
    pub(crate) headers: Option<HeaderPairs>,
}

/// The body of `PATCH …/webhooks/:id`: absent fields stay as they are; `"secret": null` or `""`
/// removes the secret; `"events": null` or `[]` means all events; `"max_in_flight": null` and
/// `"timeout_ms": null` return them to the worker's defaults.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct UpdateWebhook {
    pub(crate) payload_url: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub(crate) secret: Option<Option<String>>,
    pub(crate) ssl: Option<bool>,
    pub(crate) active: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    pub(crate) events: Option<Option<Vec<String>>>,
    pub(crate) standard_webhooks: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    pub(crate) max_in_flight: Option<Option<u32>>,
    #[serde(default, deserialize_with = "present")]
    pub(crate) timeout_ms: Option<Option<u64>>,
    /// The whole new set of custom headers (`{}` or `null` removes them); a value `***` keeps
    /// the stored value of that name.
    #[serde(default, deserialize_with = "present")]
    pub(crate) headers: Option<Option<HeaderPairs>>,
}

/// The body of `POST …/webhooks/:id/recover`: the range of deliveries whose events are sent
/// again (RFC 3339 times; `until` absent: up to now), and whether only failed ones (default).
#[derive(Debug, Deserialize)]
pub(crate) struct Recover {
    #[serde(with = "time::serde::rfc3339")]
    pub(crate) since: time::OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub(crate) until: Option<time::OffsetDateTime>,
    #[serde(default = "yes")]
    pub(crate) failed_only: bool,
}

fn yes() -> bool {
    true
}

/// A JSON object of header names and values, read in its order and with repeated names kept
/// (the store refuses a name given twice, naming it). Its `Debug` shows the names only.
#[derive(Default)]
pub(crate) struct HeaderPairs(pub(crate) Vec<(String, String)>);

impl std::fmt::Debug for HeaderPairs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(name, _)| name))
            .finish()
    }
}

impl<'de> Deserialize<'de> for HeaderPairs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<HeaderPairs, D::Error> {
        struct Pairs;
        impl<'de> serde::de::Visitor<'de> for Pairs {
            type Value = HeaderPairs;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of header names and string values")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<HeaderPairs, A::Error> {
                let mut pairs = Vec::new();
                while let Some(pair) = map.next_entry::<String, String>()? {
                    pairs.push(pair);
                }
                Ok(HeaderPairs(pairs))
            }
        }
        d.deserialize_map(Pairs)
    }
}

/// The body of `POST …/webhooks/:id/rotate-secret` (an empty body, or `{}`, takes the
/// defaults): the new secret (absent: one is generated and returned once) and how long the
/// current one is still signed with, in seconds (absent: a day).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RotateSecret {
    pub(crate) secret: Option<String>,
    pub(crate) overlap_seconds: Option<u64>,
}

/// `Some(value)` for a field that is present, even as `null` (absent fields get the default,
/// `None`).
fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// What is wrong with a request body that did not parse.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// Longer than the limit, in bytes (413).
    TooLarge(usize),
    /// Not well-formed JSON (or not an object): a message naming the problem.
    Malformed(String),
    /// Well-formed, but a field has the wrong type: the field's path and what is wrong.
    Field { path: String, message: String },
}

/// Parses a JSON request body into `T`, naming the bad field or the syntax problem.
pub(crate) fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, BodyError> {
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        None => {
            return Err(BodyError::Malformed(
                "malformed JSON: the body is empty; expected a JSON object".to_owned(),
            ));
        }
        // serde would read an array as a struct's fields in order: refuse it here.
        Some(b'[') => {
            return Err(BodyError::Malformed(
                "malformed JSON: an array; expected a JSON object".to_owned(),
            ));
        }
        Some(_) => {}
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let message = without_position(&inner);
        if inner.is_data() && path != "." {
            BodyError::Field { path, message }
        } else if inner.is_data() {
            BodyError::Malformed(format!("malformed JSON: {message}; expected a JSON object"))
        } else {
            malformed(&inner)
        }
    })?;
    de.end().map_err(|err| malformed(&err))?;
    Ok(value)
}

fn malformed(err: &serde_json::Error) -> BodyError {
    BodyError::Malformed(format!(
        "malformed JSON at line {} column {}: {}",
        err.line(),
        err.column(),
        without_position(err)
    ))
}

/// serde_json's message without its ` at line L column C` suffix.
fn without_position(err: &serde_json::Error) -> String {
    let text = err.to_string();
    let suffix = format!(" at line {} column {}", err.line(), err.column());
    text.strip_suffix(&suffix).unwrap_or(&text).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_errors_name_the_problem() {
        let check = |body: &str| match parse::<CreateWebhook>(body.as_bytes()) {
            Ok(_) => "ok".to_owned(),
            Err(BodyError::Malformed(m)) => m,
            Err(BodyError::Field { path, message }) => format!("{path}: {message}"),
            Err(BodyError::TooLarge(max)) => format!("over {max} bytes"),
        };
        assert_eq!(check(r#"{"ssl": true}"#), "ok");
        assert_eq!(check(r#"{"x": 1}"#), "ok");
        assert_eq!(
            check(r#"{"ssl": "yes"}"#),
            r#"ssl: invalid type: string "yes", expected a boolean"#
        );
        assert_eq!(
            check(r#"{"events": ["a", 1]}"#),
            "events[1]: invalid type: integer `1`, expected a string"
        );
        assert_eq!(
            check(r#"{"ssl": true"#),
            "malformed JSON at line 1 column 12: EOF while parsing an object"
        );
        assert_eq!(
            check(r#"{} x"#),
            "malformed JSON at line 1 column 4: trailing characters"
        );
        assert_eq!(
            check("[1]"),
            "malformed JSON: an array; expected a JSON object"
        );
        assert_eq!(
            check("7"),
            "malformed JSON: invalid type: integer `7`, expected struct CreateWebhook; expected a JSON object"
        );
        assert_eq!(
            check(""),
            "malformed JSON: the body is empty; expected a JSON object"
        );
    }

    #[test]
    fn update_tells_null_from_absent() {
        let u: UpdateWebhook = parse(br#"{"secret": null}"#).unwrap();
        assert_eq!(u.secret, Some(None));
        assert_eq!(u.events, None);
        let u: UpdateWebhook = parse(br#"{"events": null, "secret": "s"}"#).unwrap();
        assert_eq!(u.events, Some(None));
        assert_eq!(u.secret, Some(Some("s".to_owned())));
    }
}
