//! [`ApiError`]: every error answer of the API, and the one place its status and body are decided.

use std::collections::BTreeMap;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use djinn_hook_payload::PayloadError;
use djinn_hook_store::Error as StoreError;

use crate::batch::BatchError;
use crate::reply::Reply;
use crate::request_body::BodyError;

/// An error answer. Messages use the original's shapes: `{"message": …}`, or `{field: [message]}`
/// for validation errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// 401 with `WWW-Authenticate: Bearer`: the same answer for a missing and a wrong token.
    #[error("unauthorized")]
    Unauthorized,
    /// 403: the token is valid but not for this request (a scope), or the request did not come
    /// from the server's own origin in the no-token loopback mode.
    #[error("{0}")]
    Forbidden(String),
    /// 404 `{"message": "not found"}`: no such route.
    #[error("not found")]
    NoRoute,
    /// 404 with the thing that was not found.
    #[error("{0}")]
    NotFound(String),
    /// 405 with `Allow`.
    #[error("method {method} not allowed")]
    MethodNotAllowed {
        /// The method asked for.
        method: String,
        /// The methods the route answers, for `Allow`.
        allow: String,
    },
    /// 400 `{field: [message]}`.
    #[error("{field}: {message}")]
    Invalid {
        /// The field, header or JSON path.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// 400 `{path: [message], …}` naming several fields in order: the invalid items of a batch.
    #[error("invalid: {}", .0.iter().map(|(f, m)| format!("{f}: {m}")).collect::<Vec<_>>().join("; "))]
    InvalidFields(Vec<(String, String)>),
    /// 400 `{"message": …}`: a body that is not the JSON expected, or could not be read.
    #[error("{0}")]
    BadRequest(String),
    /// 413: a body over the limit, declared or read.
    #[error("request body larger than {0} bytes")]
    TooLarge(usize),
    /// 413 with a message: a batch over one of its limits (events, an event's payload).
    #[error("{0}")]
    BatchTooLarge(String),
    /// 409: a batch's event reuses an idempotency key for another event; `index` from 0.
    #[error("[{index}]: {source}")]
    BatchConflict {
        /// The event's place in the batch.
        index: usize,
        /// What the store said.
        source: StoreError,
    },
    /// 500: something on our side failed (a panicked store call); the detail is logged only.
    #[error("internal error")]
    Internal(String),
    /// What the store said, mapped to 400, 404, 409 or 500.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ApiError {
    /// A 400 naming one field.
    pub(crate) fn invalid(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::Invalid {
            field: field.to_owned(),
            message: message.into(),
        }
    }

    /// A payload that failed to parse: malformed JSON as a message, a bad field under its path.
    pub(crate) fn payload(err: PayloadError) -> ApiError {
        match &err {
            PayloadError::Syntax {
                line,
                column,
                message,
                ..
            } => ApiError::BadRequest(format!(
                "malformed JSON at line {line} column {column}: {message}"
            )),
            PayloadError::Field { path, message, .. } => ApiError::invalid(
                if path.is_empty() { "payload" } else { path },
                message.clone(),
            ),
            PayloadError::Rule { path, message, .. } => ApiError::invalid(path, message.clone()),
            _ => ApiError::invalid("payload", err.to_string()),
        }
    }
}

impl From<BatchError> for ApiError {
    fn from(err: BatchError) -> ApiError {
        match err {
            BatchError::Invalid(fields) => ApiError::InvalidFields(fields),
            err @ (BatchError::TooMany { .. } | BatchError::PayloadTooLarge { .. }) => {
                ApiError::BatchTooLarge(err.to_string())
            }
            other => ApiError::BadRequest(other.to_string()),
        }
    }
}

impl From<BodyError> for ApiError {
    fn from(err: BodyError) -> ApiError {
        match err {
            BodyError::TooLarge(max) => ApiError::TooLarge(max),
            BodyError::Malformed(message) => ApiError::BadRequest(message),
            BodyError::Field { path, message } => ApiError::Invalid {
                field: path,
                message,
            },
        }
    }
}

/// What went wrong on our side (a 5xx), for the request's log line; never sent.
#[derive(Clone, Debug)]
pub(crate) struct ErrorDetail(pub(crate) String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = self.to_string();
        match self {
            ApiError::Unauthorized => {
                let mut response =
                    Reply::message(StatusCode::UNAUTHORIZED, message).into_response();
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                response
            }
            ApiError::Forbidden(_) => {
                Reply::message(StatusCode::FORBIDDEN, message).into_response()
            }
            ApiError::NoRoute | ApiError::NotFound(_) => {
                Reply::message(StatusCode::NOT_FOUND, message).into_response()
            }
            ApiError::MethodNotAllowed { allow, .. } => {
                Reply::message(StatusCode::METHOD_NOT_ALLOWED, message)
                    .header(header::ALLOW, allow)
                    .into_response()
            }
            ApiError::Invalid { field, message } => {
                let mut errors = BTreeMap::new();
                errors.insert(field, vec![message]);
                Reply::json(StatusCode::BAD_REQUEST, &errors).into_response()
            }
            ApiError::InvalidFields(fields) => {
                Reply::json(StatusCode::BAD_REQUEST, &InOrder(fields)).into_response()
            }
            ApiError::BatchTooLarge(_) => {
                Reply::message(StatusCode::PAYLOAD_TOO_LARGE, message).into_response()
            }
            ApiError::BatchConflict { .. } => {
                Reply::message(StatusCode::CONFLICT, message).into_response()
            }
            ApiError::BadRequest(_) => {
                Reply::message(StatusCode::BAD_REQUEST, message).into_response()
            }
            ApiError::TooLarge(_) => {
                Reply::message(StatusCode::PAYLOAD_TOO_LARGE, message).into_response()
            }
            ApiError::Internal(detail) => {
                let mut response =
                    Reply::message(StatusCode::INTERNAL_SERVER_ERROR, message).into_response();
                response.extensions_mut().insert(ErrorDetail(detail));
                response
            }
            ApiError::Store(err) => store_error(err),
        }
    }
}

/// A store error as the API answers it.
fn store_error(err: StoreError) -> Response {
    match err {
        StoreError::Invalid(errors) => {
            Reply::json(StatusCode::BAD_REQUEST, &errors).into_response()
        }
        // Only creating a webhook checks a name: a bad one is bad input, not a missing page.
        StoreError::InvalidNamespace { .. } => {
            Reply::message(StatusCode::BAD_REQUEST, err.to_string()).into_response()
        }
        StoreError::NamespaceNotFound { .. }
        | StoreError::WebhookNotFound { .. }
        | StoreError::DeliveryNotFound { .. } => {
            Reply::message(StatusCode::NOT_FOUND, err.to_string()).into_response()
        }
        StoreError::InvalidIdempotencyKey { reason, .. } => {
            let mut errors = BTreeMap::new();
            errors.insert(IDEMPOTENCY_KEY, vec![format!("it {reason}")]);
            Reply::json(StatusCode::BAD_REQUEST, &errors).into_response()
        }
        StoreError::WebhookInactive { .. } | StoreError::IdempotencyConflict { .. } => {
            Reply::message(StatusCode::CONFLICT, err.to_string()).into_response()
        }
        other => {
            let mut response = Reply::message(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("internal error: {other}"),
            )
            .into_response();
            response.extensions_mut().insert(ErrorDetail(chain(&other)));
            response
        }
    }
}

/// The header of an event's idempotency key.
pub(crate) const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// `{field: [message], …}` in the order given (one field's messages together), where a map
/// would sort `[10]` before `[2]`.
struct InOrder(Vec<(String, String)>);

impl serde::Serialize for InOrder {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut fields: Vec<(&str, Vec<&str>)> = Vec::new();
        for (field, message) in &self.0 {
            match fields.iter_mut().find(|(f, _)| f == field) {
                Some((_, messages)) => messages.push(message),
                None => fields.push((field, vec![message])),
            }
        }
        let mut map = s.serialize_map(Some(fields.len()))?;
        for (field, messages) in fields {
            map.serialize_entry(field, &messages)?;
        }
        map.end()
    }
}

/// An error and its causes, `: `-separated.
pub(crate) fn chain(err: &dyn std::error::Error) -> String {
    let causes = std::iter::successors(Some(err), |e| e.source());
    causes
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}
