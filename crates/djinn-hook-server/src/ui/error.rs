//! [`UiError`]: every way a UI request fails, rendered as one error page with its status.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use djinn_hook_store::Error as StoreError;

use super::templates::ErrorPage;
use super::visitor::Visitor;
use crate::error::chain;

/// A failed UI request. Handlers end in `?`; the status is decided here.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UiError {
    /// No such namespace path, webhook or delivery (or not one this visitor may see).
    #[error("{0}")]
    NotFound(String),
    /// Not allowed: a read-only token writing, or a refused form.
    #[error("{0}")]
    Forbidden(String),
    /// Sign in first; then come back to this path.
    #[error("sign in to continue")]
    SignIn {
        /// Where to go after signing in.
        next: String,
    },
    /// Any other status with a message.
    #[error("{1}")]
    Status(StatusCode, String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Something that should not happen (a task panicked, a template failed).
    #[error("{0}")]
    Internal(String),
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            UiError::SignIn { next } => {
                let query: String = form_urlencoded::Serializer::new(String::new())
                    .append_pair("next", &next)
                    .finish();
                return Redirect::to(&format!("{}/signin?{query}", super::PREFIX)).into_response();
            }
            UiError::NotFound(message) => (StatusCode::NOT_FOUND, message),
            UiError::Forbidden(message) => (StatusCode::FORBIDDEN, message),
            UiError::Status(status, message) => (status, message),
            UiError::Store(err) => match err {
                StoreError::WebhookNotFound { .. } | StoreError::DeliveryNotFound { .. } => {
                    (StatusCode::NOT_FOUND, err.to_string())
                }
                StoreError::InvalidNamespace { .. } | StoreError::Invalid(_) => {
                    (StatusCode::BAD_REQUEST, err.to_string())
                }
                StoreError::WebhookInactive { .. } => (StatusCode::CONFLICT, err.to_string()),
                other => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("the store failed: {}", chain(&other)),
                ),
            },
            UiError::Internal(message) => (StatusCode::INTERNAL_SERVER_ERROR, message),
        };
        let page = ErrorPage {
            visitor: Visitor::nobody(),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            message,
        };
        match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, page.message).into_response(),
        }
    }
}
