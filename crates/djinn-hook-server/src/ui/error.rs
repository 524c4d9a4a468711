//! [`UiError`]: every way a UI request fails, and the status each is answered with.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use djinn_hook_store::Error as StoreError;

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

/// A failed request as its answer will show it: the status and message of an error page, or
/// where to come back to after signing in. Its page needs the UI's links, which only the
/// request knows, so [`UiError`] leaves this in the answer's extensions and the guard renders
/// it (`render::failure`).
#[derive(Clone, Debug)]
pub(crate) enum Failure {
    /// An error page.
    Page {
        /// Its status.
        status: StatusCode,
        /// What went wrong.
        message: String,
    },
    /// A redirect to the sign-in page, then back to `next` (a path below the mount).
    SignIn {
        /// Where to go after signing in.
        next: String,
    },
}

impl IntoResponse for UiError {
    /// The answer's status, its message as plain text (what is sent if nothing renders it), and
    /// the [`Failure`] to render.
    fn into_response(self) -> Response {
        let failure = match self {
            UiError::SignIn { next } => Failure::SignIn { next },
            UiError::NotFound(message) => page(StatusCode::NOT_FOUND, message),
            UiError::Forbidden(message) => page(StatusCode::FORBIDDEN, message),
            UiError::Status(status, message) => page(status, message),
            UiError::Store(err) => match err {
                StoreError::WebhookNotFound { .. } | StoreError::DeliveryNotFound { .. } => {
                    page(StatusCode::NOT_FOUND, err.to_string())
                }
                StoreError::InvalidNamespace { .. } | StoreError::Invalid(_) => {
                    page(StatusCode::BAD_REQUEST, err.to_string())
                }
                StoreError::WebhookInactive { .. } => page(StatusCode::CONFLICT, err.to_string()),
                other => page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("the store failed: {}", chain(&other)),
                ),
            },
            UiError::Internal(message) => page(StatusCode::INTERNAL_SERVER_ERROR, message),
        };
        let mut response = match &failure {
            Failure::Page { status, message } => (*status, message.clone()).into_response(),
            Failure::SignIn { .. } => StatusCode::SEE_OTHER.into_response(),
        };
        response.extensions_mut().insert(failure);
        response
    }
}

fn page(status: StatusCode, message: String) -> Failure {
    Failure::Page { status, message }
}
