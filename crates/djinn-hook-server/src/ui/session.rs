//! Signed cookies (session, CSRF id, flash) and CSRF tokens, all HMAC-SHA256 under one key.
//!
//! A signed value is `base64url(payload) "." base64url(tag)`, the tag taken over a purpose
//! label and the payload, so a flash cookie can never pass as a session. Tags are checked
//! only with `ring::hmac::verify` (constant time).

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::hmac;
use ring::rand::{SecureRandom as _, SystemRandom};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::state::Access;

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

    /// A key from 32 bytes (e.g. kept across restarts so sessions survive them).
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

    /// The CSRF token of the browser holding CSRF id `id`.
    pub(crate) fn csrf_token(&self, id: &str) -> String {
        B64.encode(self.tag("csrf-token", id.as_bytes()).as_ref())
    }

    /// Whether `token` is the CSRF token for `id`.
    pub(crate) fn csrf_ok(&self, id: &str, token: &str) -> bool {
        B64.decode(token)
            .is_ok_and(|tag| self.verify("csrf-token", id.as_bytes(), &tag))
    }
}

/// A random id (128 bits, base64url), for a browser's CSRF id and a session.
pub(crate) fn random_id() -> Option<String> {
    let mut bytes = [0u8; 16];
    SystemRandom::new().fill(&mut bytes).ok()?;
    Some(B64.encode(bytes))
}

/// A signed-in session, kept in the session cookie.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Session {
    /// What the token it was signed in with may do.
    pub(crate) access: Access,
    /// When it ends (Unix seconds).
    pub(crate) expires: i64,
}

impl Session {
    const PURPOSE: &str = "session";

    pub(crate) fn new(access: Access, ttl: Duration) -> Session {
        let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        Session {
            access,
            expires: OffsetDateTime::now_utc()
                .unix_timestamp()
                .saturating_add(ttl),
        }
    }

    pub(crate) fn seal(&self, key: &SessionKey) -> String {
        let json = serde_json::to_vec(self).expect("a session serialises");
        key.seal(Session::PURPOSE, &json)
    }

    /// The session in a cookie value, if it is signed by `key` and not expired.
    pub(crate) fn open(key: &SessionKey, value: &str) -> Option<Session> {
        let json = key.open(Session::PURPOSE, value)?;
        let session: Session = serde_json::from_slice(&json).ok()?;
        (session.expires > OffsetDateTime::now_utc().unix_timestamp()).then_some(session)
    }
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
    fn csrf_tokens_belong_to_one_id() {
        let key = SessionKey::from_bytes([1; 32]);
        let token = key.csrf_token("abc");
        assert!(key.csrf_ok("abc", &token));
        assert!(!key.csrf_ok("abd", &token));
        assert!(!key.csrf_ok("abc", ""));
        assert!(!key.csrf_ok("abc", "not base64!"));
    }

    #[test]
    fn expired_sessions_do_not_open() {
        let key = SessionKey::from_bytes([1; 32]);
        let live = Session::new(Access::full(), Duration::from_secs(60));
        assert_eq!(Session::open(&key, &live.seal(&key)), Some(live.clone()));
        let dead = Session {
            expires: OffsetDateTime::now_utc().unix_timestamp() - 1,
            ..live
        };
        assert_eq!(Session::open(&key, &dead.seal(&key)), None);
        assert!(!format!("{key:?}").contains('1'));
    }
}
