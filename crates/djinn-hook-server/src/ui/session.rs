//! Signed cookies (session id, CSRF id, flash) and CSRF tokens, all HMAC-SHA256 under one key.
//!
//! A signed value is `base64url(payload) "." base64url(tag)`, the tag taken over a purpose
//! label and the payload, so a flash cookie can never pass as a session. Tags are checked
//! only with `ring::hmac::verify` (constant time).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::hmac;
use ring::rand::{SecureRandom as _, SystemRandom};

/// The key that signs the UI's cookies and CSRF tokens. Its `Debug` never shows it.
#[derive(Clone)]
pub struct SessionKey(hmac::Key);

/// The system random number generator failed.
#[derive(Debug, thiserror::Error)]
#[error("the system random number generator failed")]
pub struct SessionKeyError;

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKey(<redacted>)")
    }
}

impl SessionKey {
    /// A fresh random key.
    pub fn generate() -> Result<SessionKey, SessionKeyError> {
        hmac::Key::generate(hmac::HMAC_SHA256, &SystemRandom::new())
            .map(SessionKey)
            .map_err(|_| SessionKeyError)
    }

    /// A key from 32 bytes (e.g. one shared by tests). Sessions themselves live in the
    /// process's memory (`sessions.rs`), so a kept key does not make them outlive it.
    pub fn from_bytes(bytes: [u8; 32]) -> SessionKey {
        SessionKey(hmac::Key::new(hmac::HMAC_SHA256, &bytes))
    }

    fn tag(&self, purpose: &str, payload: &[u8]) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.0);
        ctx.update(purpose.as_bytes());
        ctx.update(&[0]);
        ctx.update(payload);
        ctx.sign()
    }

    fn verify(&self, purpose: &str, payload: &[u8], tag: &[u8]) -> bool {
        let mut message = Vec::with_capacity(purpose.len() + 1 + payload.len());
        message.extend_from_slice(purpose.as_bytes());
        message.push(0);
        message.extend_from_slice(payload);
        hmac::verify(&self.0, &message, tag).is_ok()
    }

    /// `payload` signed for `purpose`, as a cookie value.
    pub(crate) fn seal(&self, purpose: &str, payload: &[u8]) -> String {
        let tag = self.tag(purpose, payload);
        format!("{}.{}", B64.encode(payload), B64.encode(tag.as_ref()))
    }

    /// The payload of a value sealed for `purpose`, if its tag is right.
    pub(crate) fn open(&self, purpose: &str, value: &str) -> Option<Vec<u8>> {
        let (payload, tag) = value.split_once('.')?;
        let payload = B64.decode(payload).ok()?;
        let tag = B64.decode(tag).ok()?;
        self.verify(purpose, &payload, &tag).then_some(payload)
    }

    /// A tag over `payload` for `purpose`, base64url: an identifier derived from a secret (a
    /// token's mark in the session table) that does not reveal it.
    pub(crate) fn mark(&self, purpose: &str, payload: &[u8]) -> String {
        B64.encode(self.tag(purpose, payload).as_ref())
    }

    /// The CSRF token of the browser holding CSRF id `id`, in session `session` (`None`:
    /// signed out, or the no-token mode). Bound to both, a token stops working when the
    /// session ends or another begins.
    pub(crate) fn csrf_token(&self, id: &str, session: Option<&str>) -> String {
        self.mark("csrf-token", &csrf_payload(id, session))
    }

    /// Whether `token` is the CSRF token for `id` in `session`.
    pub(crate) fn csrf_ok(&self, id: &str, session: Option<&str>, token: &str) -> bool {
        B64.decode(token)
            .is_ok_and(|tag| self.verify("csrf-token", &csrf_payload(id, session), &tag))
    }
}

/// `id`, a 0 byte, and the session id (empty when none): random ids are base64url, so the
/// 0 byte cannot be part of either.
fn csrf_payload(id: &str, session: Option<&str>) -> Vec<u8> {
    [id.as_bytes(), &[0], session.unwrap_or("").as_bytes()].concat()
}

/// A random id (128 bits, base64url), for a browser's CSRF id and a session.
pub(crate) fn random_id() -> Option<String> {
    let mut bytes = [0u8; 16];
    SystemRandom::new().fill(&mut bytes).ok()?;
    Some(B64.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_purpose() {
        let key = SessionKey::from_bytes([1; 32]);
        let sealed = key.seal("flash", b"hello");
        assert_eq!(key.open("flash", &sealed).as_deref(), Some(&b"hello"[..]));
        assert_eq!(key.open("session", &sealed), None);
        assert_eq!(SessionKey::from_bytes([2; 32]).open("flash", &sealed), None);
        let (payload, tag) = sealed.split_once('.').unwrap();
        let forged = format!("{}.{tag}", B64.encode(b"hellp"));
        assert_ne!(payload, B64.encode(b"hellp"));
        assert_eq!(key.open("flash", &forged), None);
    }

    #[test]
    fn csrf_tokens_belong_to_one_id_and_session() {
        let key = SessionKey::from_bytes([1; 32]);
        let token = key.csrf_token("abc", None);
        assert!(key.csrf_ok("abc", None, &token));
        assert!(!key.csrf_ok("abd", None, &token));
        assert!(!key.csrf_ok("abc", Some("s1"), &token));
        assert!(!key.csrf_ok("abc", None, ""));
        assert!(!key.csrf_ok("abc", None, "not base64!"));
        let signed_in = key.csrf_token("abc", Some("s1"));
        assert!(key.csrf_ok("abc", Some("s1"), &signed_in));
        assert!(!key.csrf_ok("abc", Some("s2"), &signed_in));
        assert!(!key.csrf_ok("abc", None, &signed_in));
        assert!(!format!("{key:?}").contains('1'));
    }
}
