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
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, Uri, header};
use axum::middleware::Next;
use axum::response::Response;
use ring::hmac;
use ring::rand::SystemRandom;

use crate::error::ApiError;
use crate::routes::Route;
#[cfg(feature = "ui")]
use crate::ui::Access;

/// The environment variable holding comma-separated tokens.
pub const TOKENS_ENV: &str = "DJINN_HOOKS_TOKENS";

/// The fewest characters a token may have: a short one is guessed, and the API has no lock-out
/// (16 random letters and digits are 95 bits).
pub const MIN_TOKEN_CHARS: usize = 16;

/// Why the configured tokens could not be loaded. Each says where the bad token is (the file and
/// line, or its place in a list) and never the token itself.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokensError {
    /// The tokens file could not be read.
    #[error("--token-file: cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line of the tokens file is invalid.
    #[error("--token-file {}: line {line}: {problem}", path.display())]
    Line {
        /// The file.
        path: PathBuf,
        /// The line's number, from 1.
        line: usize,
        /// What is wrong with it.
        problem: TokenProblem,
    },
    /// A token of `DJINN_HOOKS_TOKENS` is invalid.
    #[error("{TOKENS_ENV}: token {index} of the list: {problem}")]
    Listed {
        /// Its place in the list, from 1.
        index: usize,
        /// What is wrong with it.
        problem: TokenProblem,
    },
    /// A token given to [`Tokens::new`] is invalid.
    #[error("token {index}: {problem}")]
    Given {
        /// Its place in the list, from 1.
        index: usize,
        /// What is wrong with it.
        problem: TokenProblem,
    },
    /// The system random number generator failed (the tokens' key is drawn at start).
    #[error("the system random number generator failed")]
    Random,
}

/// What is wrong with one token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenProblem {
    /// Fewer than [`MIN_TOKEN_CHARS`] characters.
    #[error(
        "the token is {chars} characters long; a token must have at least {MIN_TOKEN_CHARS} \
         (a short one can be guessed)"
    )]
    TooShort {
        /// How many it has.
        chars: usize,
    },
    /// A word after the token that is no scope.
    #[error(
        "unknown scope {word:?} (expected intake, read, write or \
         namespace=OWNER/PATH[,OWNER/PATH…])"
    )]
    UnknownScope {
        /// The word.
        word: String,
    },
}

/// `Err` saying the rule when `token` is shorter than [`MIN_TOKEN_CHARS`]; never the token.
fn check_length(token: &str) -> Result<(), TokenProblem> {
    let chars = token.chars().count();
    if chars < MIN_TOKEN_CHARS {
        return Err(TokenProblem::TooShort { chars });
    }
    Ok(())
}

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
    fn parse<'a>(words: impl Iterator<Item = &'a str>) -> Result<Scope, TokenProblem> {
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
                        return Err(TokenProblem::UnknownScope {
                            word: word.to_owned(),
                        });
                    }
                },
            }
        }
        Ok(scope)
    }

    /// Whether the scope covers `method` on `route`; the 403 message when it does not.
    fn permits(&self, route: &Route, method: &Method) -> Result<(), String> {
        let kind = match (route, method) {
            (Route::Events { .. } | Route::EventBatch { .. }, _) => Kind::Intake,
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
    /// starting with `#` are skipped) and from `env` (comma-separated, unscoped), each of at
    /// least [`MIN_TOKEN_CHARS`] characters. Errors name the file and line (or the token's place
    /// in `env`), never a token.
    pub fn load(file: Option<&Path>, env: Option<&str>) -> Result<Tokens, TokensError> {
        let mut raw: Vec<(String, Scope)> = Vec::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| TokensError::Read {
                path: path.to_owned(),
                source,
            })?;
            for (number, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let mut words = line.split_whitespace();
                let token = words.next().unwrap_or_default().to_owned();
                let scope = check_length(&token)
                    .and_then(|()| Scope::parse(words))
                    .map_err(|problem| TokensError::Line {
                        path: path.to_owned(),
                        line: number + 1,
                        problem,
                    })?;
                raw.push((token, scope));
            }
        }
        if let Some(env) = env {
            let listed = env.split(',').map(str::trim).filter(|t| !t.is_empty());
            for (index, token) in listed.enumerate() {
                check_length(token).map_err(|problem| TokensError::Listed {
                    index: index + 1,
                    problem,
                })?;
                raw.push((token.to_owned(), Scope::default()));
            }
        }
        Tokens::scoped(raw.iter().map(|(t, s)| (t.as_str(), s.clone())))
    }

    /// Unscoped tokens from a list, each of at least [`MIN_TOKEN_CHARS`] characters.
    pub fn new<'a>(tokens: impl IntoIterator<Item = &'a str>) -> Result<Tokens, TokensError> {
        let tokens: Vec<&str> = tokens.into_iter().collect();
        for (index, token) in tokens.iter().enumerate() {
            check_length(token).map_err(|problem| TokensError::Given {
                index: index + 1,
                problem,
            })?;
        }
        Tokens::scoped(tokens.into_iter().map(|t| (t, Scope::default())))
    }

    fn scoped<'a>(
        tokens: impl IntoIterator<Item = (&'a str, Scope)>,
    ) -> Result<Tokens, TokensError> {
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &SystemRandom::new())
            .map_err(|_| TokensError::Random)?;
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

    #[cfg(feature = "ui")]
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

/// What the auth layer needs: the tokens, and the address the server is bound to (the port an
/// `Origin` must name in the no-token mode).
#[derive(Clone, Debug)]
pub(crate) struct Gate {
    pub(crate) tokens: Arc<Tokens>,
    pub(crate) local: SocketAddr,
}

/// The auth layer: with tokens, 401 without a valid one (on every path but the public ones,
/// [`Route::is_public`], the same answer whatever the path) and 403 out of its scope; without,
/// 403 for a request not from a loopback name or with another origin (the public routes pass
/// both). Runs before any body is read.
pub(crate) async fn layer(
    State(state): State<Gate>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let path = request.uri().path();
    let route = Route::parse(path);
    if route.as_ref().is_some_and(Route::is_public) {
        return Ok(next.run(request).await);
    }
    // The web UI signs people in itself (a session cookie, CSRF tokens); without tokens it is
    // as loopback-only as the API.
    let ui = path == "/" || path == "/ui" || path.starts_with("/ui/");
    if state.tokens.is_empty() {
        local_only(request.uri(), request.headers(), state.local)?;
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

/// With no tokens: exactly one `Host`, a loopback name or address (400 without one or with
/// several, as RFC 9112 §3.2 asks; 403 for another name); an absolute-form target
/// (`GET http://host/…`), whose authority a server must use instead of `Host`, naming that same
/// host; and at most one `Origin`, this server's own (a loopback host on the port the server
/// is bound to). A request that repeats a header or names two hosts could pass a check that
/// reads one and be routed by another.
fn local_only(uri: &Uri, headers: &HeaderMap, local: SocketAddr) -> Result<(), ApiError> {
    const WHY: &str = "the API has no tokens: it answers only requests to a loopback name";
    let mut hosts = headers.get_all(header::HOST).iter();
    let host = match (hosts.next(), hosts.next()) {
        (Some(host), None) => host.to_str().unwrap_or(""),
        (None, _) => return Err(ApiError::invalid("Host", format!("is required ({WHY})"))),
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "Host",
                format!("must be sent once, not several times ({WHY})"),
            ));
        }
    };
    if !split_host(host).is_some_and(|(name, _)| is_loopback(name)) {
        return Err(ApiError::Forbidden(format!(
            "forbidden: Host {host:?} is not a loopback name or address \
             (the API has no tokens: it answers only its own machine)"
        )));
    }
    if let Some(authority) = uri.authority()
        && !authority.as_str().eq_ignore_ascii_case(host)
    {
        return Err(ApiError::Forbidden(format!(
            "forbidden: the request target names {:?}, not its Host {host:?} ({WHY})",
            authority.as_str()
        )));
    }
    let mut origins = headers.get_all(header::ORIGIN).iter();
    match (origins.next(), origins.next()) {
        (None, _) => Ok(()),
        (Some(_), Some(_)) => Err(ApiError::invalid(
            "Origin",
            format!("must be sent at most once ({WHY})"),
        )),
        (Some(origin), None) => {
            let origin = origin.to_str().unwrap_or("");
            let own = origin
                .strip_prefix("http://")
                .and_then(split_host)
                .is_some_and(|(name, port)| is_loopback(name) && port == Some(local.port()));
            if own {
                Ok(())
            } else {
                Err(ApiError::Forbidden(format!(
                    "forbidden: Origin {origin:?} is not this server's own \
                     (the API has no tokens: a web page may not call it)"
                )))
            }
        }
    }
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
        let tokens = Tokens::new(["t0ken-0123456789", "other-0123456789"]).unwrap();
        assert!(tokens.allows(Some("Bearer t0ken-0123456789")));
        assert!(tokens.allows(Some("bearer other-0123456789")));
        assert!(!tokens.allows(None));
        assert!(!tokens.allows(Some("Bearer t0ken-012345678")));
        assert!(!tokens.allows(Some("Bearer t0ken-01234567899")));
        assert!(!tokens.allows(Some("Basic t0ken-0123456789")));
        assert!(!tokens.allows(Some("Bearer ")));
        assert!(!tokens.allows(Some("t0ken-0123456789")));
        assert!(Tokens::new([]).unwrap().allows(None));
    }

    #[test]
    fn load_reads_file_lines_and_env_commas() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tokens");
        std::fs::write(&file, "# ops\none-0123456789abc\n\n  two-0123456789abc  \n").unwrap();
        let tokens =
            Tokens::load(Some(&file), Some("three-0123456789ab, ,four-0123456789abc")).unwrap();
        assert_eq!(tokens.len(), 4);
        for token in [
            "one-0123456789abc",
            "two-0123456789abc",
            "three-0123456789ab",
            "four-0123456789abc",
        ] {
            assert!(tokens.allows(Some(&format!("Bearer {token}"))), "{token}");
        }
        assert!(!format!("{tokens:?}").contains("one"));
        let err = Tokens::load(Some(&dir.path().join("missing")), None).unwrap_err();
        assert!(matches!(err, TokensError::Read { .. }), "{err:?}");
        assert!(
            err.to_string().starts_with("--token-file: cannot read"),
            "{err}"
        );
    }

    #[test]
    fn scopes_limit_kinds_and_namespaces() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tokens");
        std::fs::write(
            &file,
            "ci-secret-0123456 intake namespace=alice/ci\nviewer-0123456789 read\nall-0123456789abc\n",
        )
        .unwrap();
        let tokens = Tokens::load(Some(&file), None).unwrap();
        let events = Route::parse("/n/alice/ci/-/events").unwrap();
        let child = Route::parse("/n/alice/ci/sub/-/events").unwrap();
        let other = Route::parse("/n/alice/cix/-/events").unwrap();
        let hooks = Route::parse("/n/alice/ci/-/webhooks").unwrap();
        let ci = tokens.scope(Some("Bearer ci-secret-0123456")).unwrap();
        assert_eq!(ci.permits(&events, &Method::POST), Ok(()));
        assert_eq!(ci.permits(&child, &Method::POST), Ok(()));
        assert!(ci.permits(&other, &Method::POST).is_err());
        assert!(ci.permits(&hooks, &Method::GET).is_err());
        assert!(ci.permits(&hooks, &Method::POST).is_err());
        assert!(ci.permits(&Route::Metrics, &Method::GET).is_err());
        let viewer = tokens.scope(Some("Bearer viewer-0123456789")).unwrap();
        assert_eq!(viewer.permits(&hooks, &Method::GET), Ok(()));
        assert_eq!(viewer.permits(&Route::Metrics, &Method::GET), Ok(()));
        assert!(viewer.permits(&hooks, &Method::POST).is_err());
        assert!(viewer.permits(&events, &Method::POST).is_err());
        let all = tokens.scope(Some("Bearer all-0123456789abc")).unwrap();
        assert_eq!(all.permits(&hooks, &Method::DELETE), Ok(()));

        std::fs::write(&file, "# x\nsecret-tok-0123456 admin\n").unwrap();
        let err = Tokens::load(Some(&file), None).unwrap_err().to_string();
        assert!(err.contains("line 2: unknown scope \"admin\""), "{err}");
        assert!(!err.contains("secret-tok"), "never the token: {err}");
    }

    #[test]
    fn a_short_token_is_refused_naming_its_line_and_the_rule() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tokens");
        std::fs::write(&file, "# ops\nlong-enough-token-1\nx intake\n").unwrap();
        let err = Tokens::load(Some(&file), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "--token-file {}: line 3: the token is 1 characters long; a token must have at \
                 least 16 (a short one can be guessed)",
                file.display()
            )
        );
        let err = Tokens::load(None, Some("long-enough-token-1,fifteen-chars-x"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("DJINN_HOOKS_TOKENS: token 2 of the list: the token is 15 characters"),
            "{err}"
        );
        assert!(!err.contains("fifteen"), "never the token: {err}");
        let err = Tokens::new(["short"]).unwrap_err();
        assert!(
            matches!(
                err,
                TokensError::Given {
                    index: 1,
                    problem: TokenProblem::TooShort { chars: 5 }
                }
            ),
            "{err:?}"
        );
        let err = err.to_string();
        assert!(
            err.starts_with("token 1: the token is 5 characters"),
            "{err}"
        );
        assert_eq!(
            Tokens::load(None, Some("sixteen-chars-ok"))
                .map(|t| t.len())
                .ok(),
            Some(1)
        );
    }

    #[test]
    fn loopback_hosts_and_own_origin_only() {
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let check_target = |target: &str, hosts: &[&str], origins: &[&str]| {
            let mut headers = HeaderMap::new();
            for host in hosts {
                headers.append(header::HOST, host.parse().unwrap());
            }
            for origin in origins {
                headers.append(header::ORIGIN, origin.parse().unwrap());
            }
            local_only(&target.parse().unwrap(), &headers, local).map_err(|err| err.to_string())
        };
        let check = |hosts: &[&str], origins: &[&str]| {
            check_target("/n/a/b/-/webhooks", hosts, origins).is_ok()
        };
        assert!(check(&["127.0.0.1:8080"], &[]));
        assert!(check(&["localhost:8080"], &[]));
        assert!(check(&["127.0.0.2"], &[]));
        assert!(check(&["[::1]:8080"], &[]));
        assert!(!check(&["evil.example:8080"], &[]), "DNS rebinding");
        assert!(!check(&["10.0.0.1:8080"], &[]));
        assert!(check(&["localhost:8080"], &["http://localhost:8080"]));
        assert!(check(&["localhost:8080"], &["http://127.0.0.1:8080"]));
        assert!(!check(&["localhost:8080"], &["http://evil.example"]));
        assert!(!check(&["localhost:8080"], &["http://localhost:3000"]));
        assert!(!check(&["localhost:8080"], &["null"]));
        // One Host, one Origin at most: a check reading the first must be the only reading.
        let missing = check_target("/n/a/b/-/webhooks", &[], &[]).unwrap_err();
        assert!(missing.starts_with("Host: is required"), "{missing}");
        let twice = check_target("/x", &["localhost:8080", "evil.example"], &[]).unwrap_err();
        assert!(twice.starts_with("Host: must be sent once"), "{twice}");
        assert!(!check(&["evil.example", "localhost:8080"], &[]));
        let origins = ["http://localhost:8080", "https://evil.example"];
        let twice = check_target("/x", &["localhost:8080"], &origins).unwrap_err();
        assert!(
            twice.starts_with("Origin: must be sent at most once"),
            "{twice}"
        );
        // An absolute-form target is what the server routes by: it must be the Host.
        assert!(check_target("http://localhost:8080/x", &["localhost:8080"], &[]).is_ok());
        assert!(check_target("http://LOCALHOST:8080/x", &["localhost:8080"], &[]).is_ok());
        let other = check_target("http://evil.example/x", &["localhost:8080"], &[]).unwrap_err();
        assert!(
            other.contains("the request target names \"evil.example\""),
            "{other}"
        );
        assert!(check_target("http://127.0.0.1:9/x", &["localhost:8080"], &[]).is_err());
    }
}
