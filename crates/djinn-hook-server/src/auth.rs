//! Who may call the API: bearer tokens with scopes, or, with no token configured, only the
//! operator's own machine through a loopback name.
//!
//! Tokens come from `--token-file` (one a line, optionally followed by scopes) and
//! `DJINN_HOOKS_TOKENS` (comma-separated, no scopes). They are never kept as given: each is
//! turned into an HMAC-SHA256 tag under a key drawn at start-up, and a presented token is
//! checked with `ring::hmac::verify` against every tag (no early exit). The comparison is ring's
//! constant-time one, over fixed-size tags, so neither the bytes nor the length of a configured
//! token leak through timing.
//!
//! With no token the server listens on loopback only, yet a web page in the operator's browser
//! can still send requests there (or reach it through DNS rebinding); so a request whose `Host`
//! is not a loopback name or address, or that carries an `Origin` other than the server's own,
//! is refused.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use ring::hmac;
use ring::rand::SystemRandom;

use crate::app::AppState;
use crate::error::ApiError;
use crate::routes::Route;
use crate::ui::Access;

/// The environment variable holding comma-separated tokens.
pub const TOKENS_ENV: &str = "DJINN_HOOKS_TOKENS";

/// What a token may do. The default (no scope word on its line) is everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Scope {
    /// Which kinds of request; empty means all.
    kinds: Vec<Kind>,
    /// Which namespaces (each with its child namespaces); empty means all.
    namespaces: Vec<String>,
}

/// A kind of request, as scopes name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `POST …/events`.
    Intake,
    /// `GET` anything.
    Read,
    /// Creating, changing and deleting webhooks; redeliveries.
    Write,
}

impl Scope {
    /// Parses the scope words of a token's line: `intake`, `read`, `write`,
    /// `namespace=OWNER/PATH[,OWNER/PATH…]`.
    fn parse<'a>(words: impl Iterator<Item = &'a str>) -> Result<Scope, String> {
        let mut scope = Scope::default();
        for word in words {
            match word {
                "intake" => scope.kinds.push(Kind::Intake),
                "read" => scope.kinds.push(Kind::Read),
                "write" => scope.kinds.push(Kind::Write),
                _ => match word.strip_prefix("namespace=") {
                    Some(list) if !list.is_empty() => scope.namespaces.extend(
                        list.split(',')
                            .map(|ns| ns.trim_matches('/').to_owned())
                            .filter(|ns| !ns.is_empty()),
                    ),
                    _ => {
                        return Err(format!(
                            "unknown scope {word:?} (expected intake, read, write or \
                             namespace=OWNER/PATH[,OWNER/PATH…])"
                        ));
                    }
                },
            }
        }
        Ok(scope)
    }

    /// Whether the scope covers `method` on `route`; the 403 message when it does not.
    fn permits(&self, route: &Route, method: &Method) -> Result<(), String> {
        let kind = match (route, method) {
            (Route::Events { .. }, _) => Kind::Intake,
            (_, &Method::GET | &Method::HEAD) => Kind::Read,
            _ => Kind::Write,
        };
        if !self.kinds.is_empty() && !self.kinds.contains(&kind) {
            return Err(format!(
                "forbidden: this token may not {}",
                match kind {
                    Kind::Intake => "post events",
                    Kind::Read => "read",
                    Kind::Write => "change webhooks or redeliver",
                }
            ));
        }
        if self.namespaces.is_empty() {
            return Ok(());
        }
        match route.namespace() {
            Some(ns)
                if self.namespaces.iter().any(|allowed| {
                    ns == allowed
                        || ns
                            .strip_prefix(allowed.as_str())
                            .is_some_and(|rest| rest.starts_with('/'))
                }) =>
            {
                Ok(())
            }
            Some(ns) => Err(format!(
                "forbidden: this token may not use namespace {ns:?}"
            )),
            None => Err("forbidden: this token is limited to namespaces".to_owned()),
        }
    }
}

/// The configured tokens (as tags, each with its scope); empty means the API is open to
/// loopback callers.
pub struct Tokens {
    key: hmac::Key,
    tags: Vec<(hmac::Tag, Scope)>,
}

/// Never shows a tag, only how many tokens there are.
impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("count", &self.tags.len())
            .finish_non_exhaustive()
    }
}

impl Tokens {
    /// Tokens from `file` (one a line, then optional scope words; blank lines and lines
    /// starting with `#` are skipped) and from `env` (comma-separated, unscoped). Errors name
    /// the file and line, never a token.
    pub fn load(file: Option<&Path>, env: Option<&str>) -> Result<Tokens, String> {
        let mut raw: Vec<(String, Scope)> = Vec::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|err| format!("--token-file: cannot read {}: {err}", path.display()))?;
            for (number, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let mut words = line.split_whitespace();
                let token = words.next().unwrap_or_default().to_owned();
                let scope = Scope::parse(words).map_err(|err| {
                    format!(
                        "--token-file {}: line {}: {err}",
                        path.display(),
                        number + 1
                    )
                })?;
                raw.push((token, scope));
            }
        }
        if let Some(env) = env {
            raw.extend(
                env.split(',')
                    .map(str::trim)
                    .filter(|token| !token.is_empty())
                    .map(|token| (token.to_owned(), Scope::default())),
            );
        }
        Tokens::scoped(raw.iter().map(|(t, s)| (t.as_str(), s.clone())))
    }

    /// Unscoped tokens from a list.
    pub fn new<'a>(tokens: impl IntoIterator<Item = &'a str>) -> Result<Tokens, String> {
        Tokens::scoped(tokens.into_iter().map(|t| (t, Scope::default())))
    }

    fn scoped<'a>(tokens: impl IntoIterator<Item = (&'a str, Scope)>) -> Result<Tokens, String> {
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &SystemRandom::new())
            .map_err(|_| "the system random number generator failed".to_owned())?;
        let tags = tokens
            .into_iter()
            .map(|(token, scope)| (hmac::sign(&key, token.as_bytes()), scope))
            .collect();
        Ok(Tokens { key, tags })
    }

    /// Whether no token is configured.
    pub fn is_empty(&self) -> bool {
        self.tags.is_empty()
    }

    /// How many tokens are configured.
    pub fn len(&self) -> usize {
        self.tags.len()
    }

    /// The scope of the configured token an `Authorization` header value (`Bearer <token>`)
    /// carries, if any.
    fn scope(&self, authorization: Option<&str>) -> Option<&Scope> {
        self.token_scope(authorization.and_then(bearer)?)
    }

    /// The scope of `token`, if it is a configured one.
    fn token_scope(&self, token: &str) -> Option<&Scope> {
        // Check every tag, without stopping at the first match.
        self.tags.iter().fold(None, |found, (tag, scope)| {
            let matches = hmac::verify(&self.key, token.as_bytes(), tag.as_ref()).is_ok();
            if matches { Some(scope) } else { found }
        })
    }

    /// What signing in to the web UI with `token` gives: reading and writing each as its scope
    /// allows them in the API, the namespaces it is limited to. `None` for an unknown token,
    /// and for one that may neither read nor write (an intake-only token).
    pub fn ui_access(&self, token: &str) -> Option<Access> {
        let scope = self.token_scope(token)?;
        let may = |kind| scope.kinds.is_empty() || scope.kinds.contains(&kind);
        if !may(Kind::Read) && !may(Kind::Write) {
            return None;
        }
        Some(Access {
            can_read: may(Kind::Read),
            can_write: may(Kind::Write),
            namespaces: (!scope.namespaces.is_empty()).then(|| scope.namespaces.clone()),
        })
    }

    /// Whether an `Authorization` header value carries a configured token (any scope). With no
    /// tokens configured every request is allowed.
    pub fn allows(&self, authorization: Option<&str>) -> bool {
        self.tags.is_empty() || self.scope(authorization).is_some()
    }
}

/// The token of a `Bearer <token>` header value (scheme case-insensitive).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The auth layer: with tokens, 401 without a valid one (on every path but `/healthz`, the
/// same answer whatever the path) and 403 out of its scope; without, 403 for a request not
/// from a loopback name or with another origin. Runs before any body is read.
pub(crate) async fn layer(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let path = request.uri().path();
    let route = Route::parse(path);
    if route == Some(Route::Healthz) {
        return Ok(next.run(request).await);
    }
    // The web UI signs people in itself (a session cookie, CSRF tokens); without tokens it is
    // as loopback-only as the API.
    let ui = path == "/" || path == "/ui" || path.starts_with("/ui/");
    if state.tokens.is_empty() {
        local_only(request.headers(), state.local).map_err(ApiError::Forbidden)?;
    } else if !ui {
        let authorization = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let scope = state
            .tokens
            .scope(authorization)
            .ok_or(ApiError::Unauthorized)?;
        if let Some(route) = &route {
            scope
                .permits(route, request.method())
                .map_err(ApiError::Forbidden)?;
        }
    }
    Ok(next.run(request).await)
}

/// With no tokens: the `Host` must be a loopback name or address, and an `Origin`, when sent,
/// must be this server's own (a loopback host on the port the server is bound to).
fn local_only(headers: &HeaderMap, local: SocketAddr) -> Result<(), String> {
    if let Some(host) = headers.get(header::HOST) {
        let host = host.to_str().unwrap_or("");
        if !split_host(host).is_some_and(|(name, _)| is_loopback(name)) {
            return Err(format!(
                "forbidden: Host {host:?} is not a loopback name or address \
                 (the API has no tokens: it answers only its own machine)"
            ));
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let own = origin
            .strip_prefix("http://")
            .and_then(split_host)
            .is_some_and(|(name, port)| is_loopback(name) && port == Some(local.port()));
        if !own {
            return Err(format!(
                "forbidden: Origin {origin:?} is not this server's own \
                 (the API has no tokens: a web page may not call it)"
            ));
        }
    }
    Ok(())
}

/// `name` and port of `host[:port]` (`[v6]:port` for IPv6).
fn split_host(host: &str) -> Option<(&str, Option<u16>)> {
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let (name, rest) = rest.split_once(']')?;
        (name, rest.strip_prefix(':'))
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        }
    };
    let port = match port {
        Some(port) => Some(port.parse().ok()?),
        None => None,
    };
    Some((name, port))
}

/// `localhost` or a loopback IP address.
fn is_loopback(name: &str) -> bool {
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_configured_bearer_tokens_pass() {
        let tokens = Tokens::new(["t0ken", "other"]).unwrap();
        assert!(tokens.allows(Some("Bearer t0ken")));
        assert!(tokens.allows(Some("bearer other")));
        assert!(!tokens.allows(None));
        assert!(!tokens.allows(Some("Bearer t0ke")));
        assert!(!tokens.allows(Some("Bearer t0kenn")));
        assert!(!tokens.allows(Some("Basic t0ken")));
        assert!(!tokens.allows(Some("Bearer ")));
        assert!(!tokens.allows(Some("t0ken")));
        assert!(Tokens::new([]).unwrap().allows(None));
    }

    #[test]
    fn load_reads_file_lines_and_env_commas() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tokens");
        std::fs::write(&file, "# ops\none\n\n  two  \n").unwrap();
        let tokens = Tokens::load(Some(&file), Some("three, ,four")).unwrap();
        assert_eq!(tokens.len(), 4);
        for token in ["one", "two", "three", "four"] {
            assert!(tokens.allows(Some(&format!("Bearer {token}"))), "{token}");
        }
        assert!(!format!("{tokens:?}").contains("one"));
        let err = Tokens::load(Some(&dir.path().join("missing")), None).unwrap_err();
        assert!(err.starts_with("--token-file: cannot read"), "{err}");
    }

    #[test]
    fn scopes_limit_kinds_and_namespaces() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tokens");
        std::fs::write(
            &file,
            "ci-secret intake namespace=alice/ci\nviewer read\nall\n",
        )
        .unwrap();
        let tokens = Tokens::load(Some(&file), None).unwrap();
        let events = Route::parse("/n/alice/ci/-/events").unwrap();
        let child = Route::parse("/n/alice/ci/sub/-/events").unwrap();
        let other = Route::parse("/n/alice/cix/-/events").unwrap();
        let hooks = Route::parse("/n/alice/ci/-/webhooks").unwrap();
        let ci = tokens.scope(Some("Bearer ci-secret")).unwrap();
        assert_eq!(ci.permits(&events, &Method::POST), Ok(()));
        assert_eq!(ci.permits(&child, &Method::POST), Ok(()));
        assert!(ci.permits(&other, &Method::POST).is_err());
        assert!(ci.permits(&hooks, &Method::GET).is_err());
        assert!(ci.permits(&hooks, &Method::POST).is_err());
        assert!(ci.permits(&Route::Metrics, &Method::GET).is_err());
        let viewer = tokens.scope(Some("Bearer viewer")).unwrap();
        assert_eq!(viewer.permits(&hooks, &Method::GET), Ok(()));
        assert_eq!(viewer.permits(&Route::Metrics, &Method::GET), Ok(()));
        assert!(viewer.permits(&hooks, &Method::POST).is_err());
        assert!(viewer.permits(&events, &Method::POST).is_err());
        let all = tokens.scope(Some("Bearer all")).unwrap();
        assert_eq!(all.permits(&hooks, &Method::DELETE), Ok(()));

        std::fs::write(&file, "# x\nsecret-tok admin\n").unwrap();
        let err = Tokens::load(Some(&file), None).unwrap_err();
        assert!(err.contains("line 2: unknown scope \"admin\""), "{err}");
        assert!(!err.contains("secret-tok"), "never the token: {err}");
    }

    #[test]
    fn loopback_hosts_and_own_origin_only() {
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let check = |host: Option<&str>, origin: Option<&str>| {
            let mut headers = HeaderMap::new();
            if let Some(host) = host {
                headers.insert(header::HOST, host.parse().unwrap());
            }
            if let Some(origin) = origin {
                headers.insert(header::ORIGIN, origin.parse().unwrap());
            }
            local_only(&headers, local).is_ok()
        };
        assert!(check(Some("127.0.0.1:8080"), None));
        assert!(check(Some("localhost:8080"), None));
        assert!(check(Some("127.0.0.2"), None));
        assert!(check(Some("[::1]:8080"), None));
        assert!(check(None, None));
        assert!(!check(Some("evil.example:8080"), None), "DNS rebinding");
        assert!(!check(Some("10.0.0.1:8080"), None));
        assert!(check(Some("localhost:8080"), Some("http://localhost:8080")));
        assert!(check(Some("localhost:8080"), Some("http://127.0.0.1:8080")));
        assert!(!check(Some("localhost:8080"), Some("http://evil.example")));
        assert!(!check(
            Some("localhost:8080"),
            Some("http://localhost:3000")
        ));
        assert!(!check(Some("localhost:8080"), Some("null")));
    }
}
