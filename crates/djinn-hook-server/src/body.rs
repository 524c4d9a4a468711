//! The JSON the API reads: request bodies, and how a body that fails to parse is reported.
//! What it writes is in `crate::json`, shared with the command line's `--json`.

use serde::{Deserialize, Deserializer};

pub(super) use crate::json::Urls;

/// The body of `POST …/webhooks`. Unknown fields are ignored, as the original does.
#[derive(Debug, Default, Deserialize)]
pub(super) struct CreateWebhook {
    pub(super) payload_url: Option<String>,
    pub(super) secret: Option<String>,
    pub(super) ssl: Option<bool>,
    pub(super) active: Option<bool>,
    pub(super) events: Option<Vec<String>>,
    pub(super) standard_webhooks: Option<bool>,
}

/// The body of `PATCH …/webhooks/:id`: absent fields stay as they are; `"secret": null` or `""`
/// removes the secret; `"events": null` or `[]` means all events.
#[derive(Debug, Default, Deserialize)]
pub(super) struct UpdateWebhook {
    pub(super) payload_url: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub(super) secret: Option<Option<String>>,
    pub(super) ssl: Option<bool>,
    pub(super) active: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    pub(super) events: Option<Option<Vec<String>>>,
    pub(super) standard_webhooks: Option<bool>,
}

/// `Some(value)` for a field that is present, even as `null` (absent fields get the default, `None`).
fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// What is wrong with a request body that did not parse.
#[derive(Debug)]
pub(super) enum BodyError {
    /// Not well-formed JSON (or not an object): a message naming the problem.
    Malformed(String),
    /// Well-formed, but a field has the wrong type: the field's path and what is wrong.
    Field { path: String, message: String },
}

/// Parses a JSON request body into `T`, naming the bad field or the syntax problem.
pub(super) fn parse_body<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, BodyError> {
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
        let check = |body: &str| match parse_body::<CreateWebhook>(body.as_bytes()) {
            Ok(_) => "ok".to_owned(),
            Err(BodyError::Malformed(m)) => m,
            Err(BodyError::Field { path, message }) => format!("{path}: {message}"),
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
        let u: UpdateWebhook = parse_body(br#"{"secret": null}"#).unwrap();
        assert_eq!(u.secret, Some(None));
        assert_eq!(u.events, None);
        let u: UpdateWebhook = parse_body(br#"{"events": null, "secret": "s"}"#).unwrap();
        assert_eq!(u.events, Some(None));
        assert_eq!(u.secret, Some(Some("s".to_owned())));
    }
}
