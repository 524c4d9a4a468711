//! The one layer every UI request passes: where the UI is mounted (the request's `Links`),
//! who is asking, CSRF and `Origin` on every POST, the cookies a handler asked for (scoped to
//! the mount's `/ui`), a failed request's page (`render::failure`), and the security headers
//! of every answer.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cookie::{Cookie, SameSite};

use super::access::Access;
use super::error::UiError;
use super::flash::Flash;
use super::form::Form;
use super::paths::Links;
use super::render;
use super::session::{SessionKey, random_id};
use super::sessions::Started;
use super::state::{Auth, UiState};
use super::visitor::Visitor;

/// The signed-in session's id (only with [`Auth::Tokens`]); the session is in
/// [`super::sessions::Sessions`].
const SESSION_COOKIE: &str = "djinn_ui_session";
const SESSION_PURPOSE: &str = "session-id";
/// A random id per browser; every form's CSRF token is an HMAC of it and the session's id.
const CSRF_COOKIE: &str = "djinn_ui_csrf";
/// The flash message for the next page.
const FLASH_COOKIE: &str = "djinn_ui_flash";
const CSRF_PURPOSE: &str = "csrf-id";
/// How long a browser keeps its CSRF id: forms left open for a day still work.
const CSRF_TTL: time::Duration = time::Duration::days(1);
/// A flash message not shown within a minute is stale.
const FLASH_TTL: time::Duration = time::Duration::minutes(1);
/// The largest form body: a webhook form is well under 4 KiB.
pub(crate) const FORM_LIMIT: usize = 64 * 1024;

/// What a handler asks the guard to do with the session cookie: set it to a session just
/// started (sign-in) or clear it (`None`: sign-out). Put it in the response's extensions.
#[derive(Clone, Debug)]
pub(crate) struct SetSession(pub(crate) Option<Started>);

/// The layer (`axum::middleware::from_fn_with_state`).
pub(crate) async fn guard(State(state): State<UiState>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let Some(links) = Links::of(&parts) else {
        // Links, redirects and the cookie's path would lead elsewhere than the mount.
        return (
            StatusCode::BAD_REQUEST,
            "the web UI cannot be served below this path",
        )
            .into_response();
    };
    let mut req = Request::from_parts(parts, body);
    req.extensions_mut().insert(links.clone());
    let cookie = |name, value, ttl| cookie(&links, name, value, ttl, state.inner.secure_cookies);
    let response = match admit(&state, req).await {
        Ok(admitted) => {
            let Admitted {
                request,
                new_csrf_id,
                had_flash,
                dead_session,
            } = admitted;
            let mut response = next.run(request).await;
            let key = &state.inner.key;
            let mut cookies = Vec::new();
            if let Some(id) = new_csrf_id {
                cookies.push(cookie(
                    CSRF_COOKIE,
                    key.seal(CSRF_PURPOSE, id.as_bytes()),
                    CSRF_TTL,
                ));
            }
            match response.extensions_mut().remove::<SetSession>() {
                Some(SetSession(Some(started))) => {
                    let ttl = time::Duration::seconds(
                        started.expires - time::OffsetDateTime::now_utc().unix_timestamp(),
                    );
                    let value = key.seal(SESSION_PURPOSE, started.id.as_bytes());
                    cookies.push(cookie(SESSION_COOKIE, value, ttl));
                }
                // Signed out, or a cookie whose session has ended: the browser drops it.
                Some(SetSession(None)) => cookies.push(removal(&cookie, SESSION_COOKIE)),
                None if dead_session => cookies.push(removal(&cookie, SESSION_COOKIE)),
                None => {}
            }
            if let Some(flash) = response.extensions_mut().remove::<Flash>() {
                cookies.push(cookie(FLASH_COOKIE, flash.seal(key), FLASH_TTL));
            } else if had_flash && !response.status().is_redirection() {
                cookies.push(removal(&cookie, FLASH_COOKIE));
            }
            let mut response = render::failure(&links, response);
            for c in cookies {
                if let Ok(value) = HeaderValue::from_str(&c.to_string()) {
                    response.headers_mut().append(header::SET_COOKIE, value);
                }
            }
            response
        }
        Err(Refused {
            response,
            new_csrf_id,
        }) => {
            let mut response = render::failure(&links, response);
            // A fresh CSRF cookie if there was none, so a reload works.
            if let Some(id) = new_csrf_id {
                let key = &state.inner.key;
                let c = cookie(CSRF_COOKIE, key.seal(CSRF_PURPOSE, id.as_bytes()), CSRF_TTL);
                if let Ok(value) = HeaderValue::from_str(&c.to_string()) {
                    response.headers_mut().append(header::SET_COOKIE, value);
                }
            }
            response
        }
    };
    let mut response = response;
    secure_headers(response.headers_mut());
    response
}

/// A request the guard answers itself, and the CSRF id drawn for it, if the browser had none.
struct Refused {
    response: Response,
    new_csrf_id: Option<String>,
}

impl From<UiError> for Refused {
    fn from(err: UiError) -> Refused {
        Refused {
            response: err.into_response(),
            new_csrf_id: None,
        }
    }
}

struct Admitted {
    request: Request,
    new_csrf_id: Option<String>,
    had_flash: bool,
    /// A session cookie came whose session is not live (ended, expired, or forged).
    dead_session: bool,
}

/// Reads the cookies into a [`Visitor`]; for a POST, checks `Origin` and the CSRF token.
async fn admit(state: &UiState, req: Request) -> Result<Admitted, Refused> {
    let inner = &state.inner;
    let key = &inner.key;
    let jar = Jar::read(req.headers());
    let (csrf_id, new_csrf_id) = match jar.csrf_id(key) {
        Some(id) => (id, None),
        None => {
            let id = random_id().ok_or_else(|| {
                UiError::Internal("the system random number generator failed".into())
            })?;
            (id.clone(), Some(id))
        }
    };
    // The cookie is sealed, so the table is only ever asked about ids this server made.
    let session = match inner.auth {
        Auth::Open => None,
        Auth::Tokens(_) => jar
            .get(SESSION_COOKIE)
            .and_then(|v| key.open(SESSION_PURPOSE, v))
            .and_then(|id| String::from_utf8(id).ok())
            .and_then(|id| Some((inner.sessions.access(&id)?, id))),
    };
    let dead_session = session.is_none() && jar.get(SESSION_COOKIE).is_some();
    let (access, session) = match (&inner.auth, session) {
        (Auth::Open, _) => (Some(Access::full()), None),
        (Auth::Tokens(_), Some((access, id))) => (Some(access), Some(id)),
        (Auth::Tokens(_), None) => (None, None),
    };
    let flash = jar.get(FLASH_COOKIE).and_then(|v| Flash::open(key, v));
    let had_flash = jar.get(FLASH_COOKIE).is_some();

    let mut req = req;
    if req.method() == Method::POST {
        if !same_origin(&req, inner.public_origin.as_deref()) {
            return Err(UiError::Forbidden(
                "this form was sent from another site; it is refused".into(),
            )
            .into());
        }
        let (parts, body) = req.into_parts();
        let bytes = to_bytes(body, FORM_LIMIT).await.map_err(|_| {
            UiError::Status(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the form is too large".into(),
            )
        })?;
        let form = Form::parse(&bytes);
        let csrf_ok = form
            .get("_csrf")
            .is_some_and(|t| key.csrf_ok(&csrf_id, session.as_deref(), t));
        if !csrf_ok {
            return Err(Refused {
                response: UiError::Forbidden(
                    "the form's security token is missing or stale; reload the page and try \
                     again"
                        .into(),
                )
                .into_response(),
                new_csrf_id,
            });
        }
        req = Request::from_parts(parts, Body::from(bytes));
        req.extensions_mut().insert(form);
    }
    req.extensions_mut().insert(Visitor {
        access,
        csrf: key.csrf_token(&csrf_id, session.as_deref()),
        flash,
        session,
    });
    Ok(Admitted {
        request: req,
        new_csrf_id,
        had_flash,
        dead_session,
    })
}

/// A POST from a page of this server: `Origin` (sent by browsers on every POST) names the host the
/// request went to, or is the server's public origin. Without `Origin`, `Sec-Fetch-Site` if present
/// must not say another site; a client sending neither (curl) still needs the CSRF token.
fn same_origin(req: &Request, public_origin: Option<&str>) -> bool {
    let headers = req.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()));
    match headers.get(header::ORIGIN) {
        Some(origin) => {
            let origin = origin.to_str().unwrap_or("");
            if public_origin.is_some_and(|p| p.eq_ignore_ascii_case(origin)) {
                return true;
            }
            let origin_host = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"));
            matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
        }
        None => headers
            .get("sec-fetch-site")
            .is_none_or(|site| site == "same-origin" || site == "none"),
    }
}

/// The request's cookies.
struct Jar(Vec<Cookie<'static>>);

impl Jar {
    fn read(headers: &HeaderMap) -> Jar {
        Jar(headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|h| h.to_str().ok())
            .flat_map(|h| Cookie::split_parse(h.to_owned()))
            .filter_map(Result::ok)
            .collect())
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|c| c.name() == name).map(Cookie::value)
    }

    fn csrf_id(&self, key: &SessionKey) -> Option<String> {
        let id = key.open(CSRF_PURPOSE, self.get(CSRF_COOKIE)?)?;
        String::from_utf8(id).ok()
    }
}

/// A UI cookie: only for the UI's paths (`{mount}/ui`), out of scripts' reach, never sent by
/// another site's request, `Secure` under https.
fn cookie(
    links: &Links,
    name: &'static str,
    value: String,
    ttl: time::Duration,
    secure: bool,
) -> Cookie<'static> {
    Cookie::build((name, value))
        .path(links.root().to_owned())
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .max_age(ttl)
        .build()
}

/// The cookie `name` removed (empty, expired at once), made with `cookie`.
fn removal(
    cookie: &impl Fn(&'static str, String, time::Duration) -> Cookie<'static>,
    name: &'static str,
) -> Cookie<'static> {
    cookie(name, String::new(), time::Duration::ZERO)
}

/// Nothing from another host, no framing, no caching of pages that show secrets' absence or
/// delivery bodies.
fn secure_headers(headers: &mut HeaderMap) {
    let set = |headers: &mut HeaderMap, name: header::HeaderName, value: &'static str| {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    };
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'",
    );
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::REFERRER_POLICY, "same-origin");
    set(headers, header::CACHE_CONTROL, "no-store");
}
