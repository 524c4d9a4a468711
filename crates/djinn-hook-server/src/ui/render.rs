//! Turning a page into an answer: a rendered template with its status, or a 303 with a flash.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};

use super::error::UiError;
use super::flash::Flash;

type Result<T, E = UiError> = std::result::Result<T, E>;

/// Renders a page (200).
pub(crate) fn render(page: impl Template) -> Result<Response> {
    render_with(StatusCode::OK, page)
}

pub(crate) fn render_with(status: StatusCode, page: impl Template) -> Result<Response> {
    let html = page
        .render()
        .map_err(|err| UiError::Internal(format!("rendering the page failed: {err}")))?;
    Ok((status, Html(html)).into_response())
}

/// A 303 to `to` with a flash message on the next page.
pub(crate) fn see_other(to: &str, flash: Flash) -> Response {
    let mut response = Redirect::to(to).into_response();
    response.extensions_mut().insert(flash);
    response
}
