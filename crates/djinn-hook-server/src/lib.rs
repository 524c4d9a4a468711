//! The HTTP front end of djinn-hooks, on axum (hyper + tokio) with tower layers: `serve`'s REST
//! API (the original Djinn CI's webhook endpoints), event intake, `/healthz`, `/readyz`,
//! `/metrics`, and the API's OpenAPI document ([`openapi`]); the Webhooks tab, a server-rendered
//! web UI under `/ui/` (`ui`); and a verifying webhook receiver for `listen`, the demo, tests and
//! integrations.
//!
//! - [`serve()`] runs the API and a delivery worker until its stop (a
//!   [`Shutdown`](djinn_hook_deliver::Shutdown)) is set.
//! - [`router`] is the API (and the web UI, when configured) as an axum `Router` over an
//!   [`AppState`], to serve or to nest under a path of an application's own router.
//! - [`receiver`]: [`receiver::check`] one request, [`receiver::router`] to mount, or a
//!   ready [`Receiver`] on its own threads.
//! - [`entity_json`]: the JSON shapes the API writes, shared with the command line's `--json`.
//! - [`batch`]: a batch of events checked item by item, shared with `emit --batch`.
//!
//! Invariant: no request ever holds a thread while it waits on its client: connections are
//! tasks on the async runtime, store calls run on its blocking pool, and every wait on a client
//! (request head, body, the whole request) has a deadline or a size limit.
//!
//! The API mounted in an application's own axum router, under a path of its own:
//!
//! ```
//! use std::sync::Arc;
//! use axum::body::Body;
//! use axum::http::{Request, StatusCode, header};
//! use djinn_hook_server::{AppState, Config, Tokens, router};
//! use djinn_hook_store::{SecretKey, Store};
//! use tower::ServiceExt as _;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Arc::new(Store::open_in_memory(SecretKey::from_bytes([7; 32]))?);
//! let config = Config::new("127.0.0.1:8080", Tokens::new(["a-long-enough-api-token"])?)?;
//! // `queued` runs after each commit that queued deliveries: wake a worker there.
//! let state = AppState::new(&config, store, "127.0.0.1:8080".parse()?, || {});
//! let app = axum::Router::new().nest("/hooks", router(state));
//!
//! let get = |path: &str, token: Option<&str>| {
//!     let mut request = Request::get(path).header(header::HOST, "127.0.0.1:8080");
//!     if let Some(token) = token {
//!         request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
//!     }
//!     request.body(Body::empty()).unwrap()
//! };
//! let healthz = app.clone().oneshot(get("/hooks/healthz", None)).await?;
//! assert_eq!(healthz.status(), StatusCode::OK);
//! let anonymous = app.clone().oneshot(get("/hooks/n/alice/ci/-/webhooks", None)).await?;
//! assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
//! # Ok(())
//! # }
//! ```
//!
//! A receiver of its own, on a thread, that checks every delivery's signature:
//!
//! ```no_run
//! use djinn_hook_sign::Secret;
//! use djinn_hook_server::Receiver;
//!
//! let receiver = Receiver::start("127.0.0.1:0", Secret::from("s3cret")).unwrap();
//! println!("register {} as the payload URL", receiver.url());
//! if let Some(got) = receiver.next_timeout(std::time::Duration::from_secs(5)) {
//!     println!("{:?} signature ok: {}", got.event(), got.signature_valid);
//! }
//! ```
//!
//! # Features
//!
//! - `ui` (default): the Webhooks tab (the `ui` module, `Config::ui`, `StoreActions`,
//!   `TestLimits`). Without it the crate serves the API, intake, `/healthz` and `/metrics`, and
//!   builds neither the templates nor the cookie handling (about ten crates fewer).
//!
//! The store comes with SQLite only; for PostgreSQL, depend on djinn-hook-store with its
//! `postgres` feature too (cargo unifies the features).
#![warn(missing_docs)]

/// The crate README's example, compiled and run as a doctest so it cannot drift.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
struct ReadmeDoctests;

mod app;
mod auth;
pub mod batch;
mod config;
mod conn;
pub mod entity_json;
mod error;
mod handlers;
mod intake;
pub mod log;
mod metrics;
pub mod openapi;
mod paths;
pub mod payload_url;
mod ready;
pub mod receiver;
mod recovery;
mod relay;
mod reply;
mod request_body;
mod routes;
mod send_test;
mod serve;
mod trace;
#[cfg(feature = "ui")]
pub mod ui;

pub use app::{AppState, MAX_REQUEST_ID, router};
pub use auth::{MIN_TOKEN_CHARS, TOKENS_ENV, TokenProblem, Tokens, TokensError};
pub use config::{Config, ConfigError};
pub use conn::{Limits, serve_connections};
pub use error::ApiError;
pub use receiver::{BindError, Received, Receiver};
pub use recovery::{RECOVER_BATCH, parse_instant, recover_all};
pub use send_test::{SentTest, send_test};
#[cfg(feature = "ui")]
pub use send_test::{StoreActions, TestLimits};
pub use serve::{ServeError, serve};
#[cfg(feature = "otel")]
pub use trace::AttemptIds;
