//! Turning a page into an answer: a rendered template with its status, a 303 with a flash, or
//! the error page of a failed request.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};

use super::error::{Failure, UiError};
use super::flash::Flash;
use super::paths::Links;
use super::templates::ErrorPage;
use super::visitor::Visitor;

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

/// Renders the [`Failure`] a [`UiError`] left in `response`, if any, with the request's links:
/// the error page, or the redirect to sign in (and back to where the visitor was, below the
/// mount).
pub(crate) fn failure(links: &Links, response: Response) -> Response {
    let mut response = response;
    let Some(failure) = response.extensions_mut().remove::<Failure>() else {
        return response;
    };
    match failure {
        Failure::SignIn { next } => {
            let query: String = form_urlencoded::Serializer::new(String::new())
                .append_pair("next", &next)
                .finish();
            Redirect::to(&format!("{}?{query}", links.signin())).into_response()
        }
        Failure::Page { status, message } => {
            let page = ErrorPage {
                visitor: Visitor::nobody(),
                links: links.clone(),
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
}
