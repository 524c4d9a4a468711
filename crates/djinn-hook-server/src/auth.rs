//! Bearer tokens: loaded from `--token-file` and `DJINN_HOOKS_TOKENS`, checked in constant time.
//!
//! Tokens are never kept as given: each is turned into an HMAC-SHA256 tag under a key drawn at
//! start-up, and a presented token is checked with `ring::hmac::verify` against every tag (no
//! early exit). The comparison is ring's constant-time one, over fixed-size tags, so neither the
//! bytes nor the length of a configured token leak through timing.

use std::fmt;
use std::path::Path;

use ring::hmac;
use ring::rand::SystemRandom;

/// The environment variable holding comma-separated tokens.
pub(super) const TOKENS_ENV: &str = "DJINN_HOOKS_TOKENS";

/// The configured tokens (as tags); empty means the API is open.
pub(super) struct Tokens {
    key: hmac::Key,
    tags: Vec<hmac::Tag>,
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
    /// Tokens from `file` (one a line; blank lines and lines starting with `#` are skipped) and
    /// from `env` (comma-separated). Errors name the file.
    pub(super) fn load(file: Option<&Path>, env: Option<&str>) -> Result<Tokens, String> {
        let mut raw: Vec<String> = Vec::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|err| format!("--token-file: cannot read {}: {err}", path.display()))?;
            raw.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|line| !line.is_empty() && !line.starts_with('#'))
                    .map(str::to_owned),
            );
        }
        if let Some(env) = env {
            raw.extend(
                env.split(',')
                    .map(str::trim)
                    .filter(|token| !token.is_empty())
                    .map(str::to_owned),
            );
        }
        Tokens::new(raw.iter().map(String::as_str))
    }

    /// Tokens from a list.
    pub(super) fn new<'a>(tokens: impl IntoIterator<Item = &'a str>) -> Result<Tokens, String> {
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &SystemRandom::new())
            .map_err(|_| "the system random number generator failed".to_owned())?;
        let tags = tokens
            .into_iter()
            .map(|token| hmac::sign(&key, token.as_bytes()))
            .collect();
        Ok(Tokens { key, tags })
    }

    /// Whether no token is configured (the API is open).
    pub(super) fn is_empty(&self) -> bool {
        self.tags.is_empty()
    }

    /// How many tokens are configured.
    pub(super) fn len(&self) -> usize {
        self.tags.len()
    }

    /// Whether an `Authorization` header value (`Bearer <token>`) carries a configured token.
    /// With no tokens configured every request is allowed.
    pub(super) fn allows(&self, authorization: Option<&str>) -> bool {
        if self.tags.is_empty() {
            return true;
        }
        let Some(token) = authorization.and_then(bearer) else {
            return false;
        };
        // Check every tag, without stopping at the first match.
        self.tags.iter().fold(false, |ok, tag| {
            ok | hmac::verify(&self.key, token.as_bytes(), tag.as_ref()).is_ok()
        })
    }
}

/// The token of a `Bearer <token>` header value (scheme case-insensitive).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
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
}
