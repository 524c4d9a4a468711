//! Sign-in with an API token (exchanged for a session, its id in a signed cookie) and
//! sign-out, which ends every session of that token.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use axum::Extension;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use super::error::UiError;
use super::flash::Flash;
use super::form::Form;
use super::guard::SetSession;
use super::paths::Links;
use super::render::render;
use super::state::{Auth, UiState};
use super::templates::SignInPage;
use super::visitor::Visitor;

/// Where to go after signing in, below the mount: `next` if it is a path of this UI, else the
/// index. (The redirect adds the mount: see [`Links::below_mount`].)
fn next_path(next: Option<&str>) -> String {
    match next {
        Some(next) if is_ui_path(next) => next.to_owned(),
        _ => format!("{}/", super::PREFIX),
    }
}

/// Whether `next` is a plain path below `/ui/` that every browser resolves to itself: visible
/// ASCII only (no control character for a header, no space), no backslash (read as `/`), no
/// `//` (another host, to some parsers), no `.` or `..` segment (which could climb out of
/// `/ui/`, also written `%2e`). Below a mount that is itself a plain path (`paths.rs`), it
/// stays a path of this site below that mount.
fn is_ui_path(next: &str) -> bool {
    let path = next.split(['?', '#']).next().unwrap_or_default();
    next.starts_with("/ui/")
        && next.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
        && !path.contains("//")
        && path.split('/').all(|segment| {
            let segment = segment.to_ascii_lowercase().replace("%2e", ".");
            segment != "." && segment != ".."
        })
}

/// `GET /ui/signin`.
pub(crate) async fn form(
    State(state): State<UiState>,
    Extension(visitor): Extension<Visitor>,
    Extension(links): Extension<Links>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, UiError> {
    let next = next_path(query.get("next").map(String::as_str));
    if matches!(state.inner.auth, Auth::Open) || visitor.access.is_some() {
        return Ok(Redirect::to(&links.below_mount(&next)).into_response());
    }
    let cross_site = headers
        .get("sec-fetch-site")
        .is_some_and(|site| site == "cross-site");
    render(SignInPage {
        visitor,
        links,
        title: "Sign in".into(),
        next,
        error: None,
        refresh: cross_site,
    })
}

/// `POST /ui/signin`: a configured token starts a session with its access. Failures are
/// limited per client address and in all (`limit.rs`): over the limit, 429 with
/// `Retry-After`, and the token is not checked.
pub(crate) async fn submit(
    State(state): State<UiState>,
    Extension(visitor): Extension<Visitor>,
    Extension(links): Extension<Links>,
    Extension(form): Extension<Form>,
    remote: Option<Extension<ConnectInfo<SocketAddr>>>,
) -> Result<Response, UiError> {
    let next = next_path(form.get("next"));
    let Auth::Tokens(check) = &state.inner.auth else {
        return Ok(Redirect::to(&links.below_mount(&next)).into_response());
    };
    let client = remote.map(|Extension(ConnectInfo(addr))| addr.ip());
    let limit = &state.inner.sign_in_limit;
    if let Err(wait) = limit.take(client, Instant::now()) {
        let seconds = wait.as_secs();
        let mut response = render(SignInPage {
            visitor,
            links,
            title: "Sign in".into(),
            next,
            error: Some(format!(
                "Too many failed sign-ins: try again in {seconds} s."
            )),
            refresh: false,
        })?;
        *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        return Ok(response);
    }
    let token = form.get("token").unwrap_or("").trim();
    match (!token.is_empty()).then(|| check(token)).flatten() {
        Some(access) => {
            limit.give_back(client, Instant::now());
            let inner = &state.inner;
            // Signing in again in the same browser replaces its session.
            if let Some(old) = &visitor.session {
                inner.sessions.end(old);
            }
            let mark = inner.key.mark("token", token.as_bytes());
            let started = inner
                .sessions
                .start(access, mark, inner.session_ttl)
                .ok_or_else(|| {
                    UiError::Internal("the system random number generator failed".into())
                })?;
            let mut response = Redirect::to(&links.below_mount(&next)).into_response();
            response.extensions_mut().insert(SetSession(Some(started)));
            Ok(response)
        }
        None => {
            let mut response = render(SignInPage {
                visitor,
                links,
                title: "Sign in".into(),
                next,
                error: Some("This token is not recognised.".into()),
                refresh: false,
            })?;
            *response.status_mut() = StatusCode::UNAUTHORIZED;
            Ok(response)
        }
    }
}

/// `POST /ui/signout`: ends the session, and every other session of the same token.
pub(crate) async fn signout(
    State(state): State<UiState>,
    Extension(visitor): Extension<Visitor>,
    Extension(links): Extension<Links>,
) -> Response {
    if let Some(id) = &visitor.session {
        state.inner.sessions.end_token_of(id);
    }
    let mut response = Redirect::to(&links.signin()).into_response();
    response.extensions_mut().insert(SetSession(None));
    response.extensions_mut().insert(Flash::ok("Signed out"));
    response
}
