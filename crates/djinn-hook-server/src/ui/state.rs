//! What the UI needs from the server: the store, how to check a sign-in token, and how to send.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use djinn_hook_payload::EventType;
use djinn_hook_store::Store;

use super::access::Access;
use super::limit::SignInLimit;
use super::session::{SessionKey, SessionKeyError};
use super::sessions::Sessions;
use crate::send_test::{StoreActions, TestLimits, TestSlots};

/// Checks a token typed on the sign-in page: its [`Access`], or `None` if it is not a
/// configured token. Supplied by the server (the same tokens file as the API).
pub type TokenCheck = Arc<dyn Fn(&str) -> Option<Access> + Send + Sync>;

/// How people get in.
#[derive(Clone)]
#[non_exhaustive]
pub enum Auth {
    /// No tokens configured (the server listens on loopback only): no sign-in, full access.
    /// CSRF tokens and `Origin` are still checked.
    Open,
    /// Sign in with an API token, exchanged for a session (kept by the server; the cookie
    /// holds its id).
    Tokens(TokenCheck),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Auth::Open => "Open",
            Auth::Tokens(_) => "Tokens",
        })
    }
}

/// What the UI asks of the delivery side. Both are called off the async threads:
/// `send_test` on a thread of its own, within the UI's [`TestLimits`](crate::TestLimits).
pub trait Actions: Send + Sync + 'static {
    /// Delivers `event`'s example payload to webhook `hook_id` now (whatever its state or
    /// events), records it as a test delivery, and returns the recorded delivery's id (`None`
    /// if the webhook was deleted meanwhile). Blocks for the delivery. `Err` is why it could
    /// not be sent (e.g. an unknown webhook), shown to the person who asked.
    fn send_test(&self, hook_id: i64, event: EventType) -> Result<Option<i64>, ActionError>;

    /// A task was queued (a redelivery) and is due now: wake the delivery worker.
    fn queued(&self);
}

/// The UI's delivery side over a store: a test delivery as `hook test` sends it, and the
/// worker woken after a redelivery.
impl Actions for StoreActions {
    fn send_test(&self, hook_id: i64, event: EventType) -> Result<Option<i64>, ActionError> {
        self.send(hook_id, event).map_err(Into::into)
    }

    fn queued(&self) {
        self.wake();
    }
}

/// Why an [`Actions`] call failed: any error of the delivery side, shown by its `Display`.
pub type ActionError = Box<dyn std::error::Error + Send + Sync>;

/// [`Actions`] from two closures, for a server that has them at hand:
/// `FnActions { send_test: |hook, event| ..., queued: || waker.wake() }`.
pub struct FnActions<S, Q> {
    /// [`Actions::send_test`].
    pub send_test: S,
    /// [`Actions::queued`].
    pub queued: Q,
}

impl<S, Q> fmt::Debug for FnActions<S, Q> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnActions")
    }
}

impl<S, Q> Actions for FnActions<S, Q>
where
    S: Fn(i64, EventType) -> Result<Option<i64>, ActionError> + Send + Sync + 'static,
    Q: Fn() + Send + Sync + 'static,
{
    fn send_test(&self, hook_id: i64, event: EventType) -> Result<Option<i64>, ActionError> {
        (self.send_test)(hook_id, event)
    }

    fn queued(&self) {
        (self.queued)();
    }
}

/// The UI's shared state: cheap to clone.
#[derive(Clone)]
pub struct UiState {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) store: Arc<Store>,
    pub(crate) auth: Auth,
    pub(crate) actions: Arc<dyn Actions>,
    pub(crate) key: SessionKey,
    /// Who is signed in: shared by every clone of the state, so a sign-out is seen by all.
    pub(crate) sessions: Arc<Sessions>,
    /// Failed sign-ins, per client address and in all.
    pub(crate) sign_in_limit: Arc<SignInLimit>,
    pub(crate) secure_cookies: bool,
    pub(crate) session_ttl: Duration,
    /// The origin people reach the UI at (`https://hooks.example.com`), if the server knows
    /// it: a form's `Origin` may be this as well as the request's `Host`.
    pub(crate) public_origin: Option<String>,
    /// The server's bound address and API base URL, when webhooks pointed at its own event
    /// intake are refused (a loop: see `relay.rs`).
    pub(crate) own_intake: Option<(SocketAddr, String)>,
    /// Where test deliveries run, and how many at once.
    pub(crate) tests: TestSlots,
}

impl fmt::Debug for UiState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UiState")
            .field("auth", &self.inner.auth)
            .field("secure_cookies", &self.inner.secure_cookies)
            .field("session_ttl", &self.inner.session_ttl)
            .finish_non_exhaustive()
    }
}

impl UiState {
    /// How long a session lasts after sign-in unless [`UiState::with_session_ttl`] says otherwise.
    pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(8 * 60 * 60);

    /// The state with a fresh random cookie key and no sessions (they live in this process's
    /// memory, and end when it does),
    /// cookies without `Secure` (plain-HTTP loopback) and [`UiState::DEFAULT_SESSION_TTL`].
    pub fn new(
        store: Arc<Store>,
        auth: Auth,
        actions: Arc<dyn Actions>,
    ) -> Result<UiState, SessionKeyError> {
        Ok(UiState {
            inner: Arc::new(Inner {
                store,
                auth,
                actions,
                key: SessionKey::generate()?,
                sessions: Arc::default(),
                sign_in_limit: Arc::default(),
                secure_cookies: false,
                session_ttl: UiState::DEFAULT_SESSION_TTL,
                public_origin: None,
                own_intake: None,
                tests: TestSlots::new(TestLimits::default()),
            }),
        })
    }

    /// Marks cookies `Secure`: give `true` when people reach the UI over https (the
    /// server's base URL is https), so a cookie never travels in clear.
    pub fn with_secure_cookies(self, secure: bool) -> UiState {
        self.map(|inner| inner.secure_cookies = secure)
    }

    /// How long a session lasts after sign-in.
    pub fn with_session_ttl(self, ttl: Duration) -> UiState {
        self.map(|inner| inner.session_ttl = ttl)
    }

    /// Signs the UI's cookies (session ids, CSRF ids, flash messages) and CSRF tokens with
    /// this key.
    pub fn with_session_key(self, key: SessionKey) -> UiState {
        self.map(|inner| inner.key = key)
    }

    /// The server's public base URL (`serve --base-url`), for a reverse proxy that changes
    /// `Host`: a form whose `Origin` is this URL's origin is accepted too. Also makes cookies
    /// `Secure` when it is https.
    pub fn with_public_url(self, url: &str) -> UiState {
        let origin = url.split_once("://").map(|(scheme, rest)| {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            format!(
                "{}://{}",
                scheme.to_ascii_lowercase(),
                host.to_ascii_lowercase()
            )
        });
        let https = url
            .get(..8)
            .is_some_and(|s| s.eq_ignore_ascii_case("https://"));
        self.map(|inner| {
            inner.public_origin = origin;
            inner.secure_cookies |= https;
        })
    }

    /// Refuses a webhook pointed at the event intake of the server bound to `local` with the
    /// API base URL `base_url` (every delivery would come back as a new event), with the API's
    /// message under the payload URL. The server sets this itself unless it relays on purpose
    /// (`serve --accept-relayed-deliveries`).
    pub fn refusing_own_intake(self, local: SocketAddr, base_url: &str) -> UiState {
        let base = base_url.trim_end_matches('/').to_owned();
        self.map(|inner| inner.own_intake = Some((local, base)))
    }

    /// How many test deliveries may run at once (default [`TestLimits::default`]); one more
    /// is refused with 429 naming the limit.
    pub fn with_test_limits(self, limits: TestLimits) -> UiState {
        self.map(|inner| inner.tests = TestSlots::new(limits))
    }

    fn map(self, f: impl FnOnce(&mut Inner)) -> UiState {
        let mut inner = Arc::try_unwrap(self.inner).unwrap_or_else(|shared| Inner {
            store: Arc::clone(&shared.store),
            auth: shared.auth.clone(),
            actions: Arc::clone(&shared.actions),
            key: shared.key.clone(),
            sessions: Arc::clone(&shared.sessions),
            sign_in_limit: Arc::clone(&shared.sign_in_limit),
            secure_cookies: shared.secure_cookies,
            session_ttl: shared.session_ttl,
            public_origin: shared.public_origin.clone(),
            own_intake: shared.own_intake.clone(),
            tests: shared.tests.clone(),
        });
        f(&mut inner);
        UiState {
            inner: Arc::new(inner),
        }
    }
}
