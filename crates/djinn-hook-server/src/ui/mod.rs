//! The Webhooks tab: server-rendered pages for a namespace's webhooks and their deliveries.
//!
//! Everything lives under `/ui/` ([`PREFIX`]), next to the JSON API's `/n/...` paths:
//!
//! | method | path (below `/ui`) | what |
//! |---|---|---|
//! | GET | `/` | namespaces and their webhooks' health |
//! | GET | `/n/{ns}/-/webhooks` | a namespace's webhooks |
//! | GET, POST | `/n/{ns}/-/webhooks/create` | the create form; create |
//! | GET, POST | `/n/{ns}/-/webhooks/{id}` | the edit form and recent deliveries; update |
//! | POST | `/n/{ns}/-/webhooks/{id}/delete` | delete |
//! | POST | `/n/{ns}/-/webhooks/{id}/test` | send a test delivery now |
//! | POST | `/n/{ns}/-/webhooks/{id}/rotate-secret` | a new secret, the old one kept for an overlap |
//! | GET | `/n/{ns}/-/webhooks/{id}/deliveries/{delivery}` | one delivery |
//! | POST | `/n/{ns}/-/webhooks/{id}/deliveries/{delivery}/redeliver` | queue it again |
//! | GET, POST | `/signin`; POST `/signout` | exchange an API token for a session cookie |
//! | GET | `/assets/style.css` | the one stylesheet |
//!
//! Every POST carries a CSRF token and a same-origin `Origin` (checked in one layer,
//! `guard.rs`), and answers with a 303 redirect and a flash message, or with the form again
//! (what was typed kept, apart from the secret) and its errors under their fields.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use djinn_hook_server::ui::{Actions, Auth, UiState};
//! # fn f(store: Arc<djinn_hook_store::Store>, actions: Arc<dyn Actions>) {
//! let state = UiState::new(store, Auth::Open, actions).unwrap();
//! let app: axum::Router = djinn_hook_server::ui::router(state);
//! # }
//! ```

mod access;
mod assets;
mod blocking;
mod error;
mod flash;
mod form;
mod guard;
mod icons;
mod limit;
mod pages;
mod paths;
mod render;
mod session;
mod sessions;
mod signin;
mod state;
mod templates;
mod view;
mod visitor;

use axum::Router;
use axum::routing::{get, post};

pub use access::Access;
pub use session::{SessionKey, SessionKeyError};
pub use state::{ActionError, Actions, Auth, FnActions, TokenCheck, UiState};

/// Where the UI is mounted: every UI path starts with it, and its cookies are scoped to it.
pub const PREFIX: &str = "/ui";

/// The UI's routes, with `state` applied. Merge it into the server's router as it is
/// (its paths already start with [`PREFIX`]).
pub fn router(state: UiState) -> Router {
    Router::new()
        .route(
            "/ui",
            get(|| async { axum::response::Redirect::permanent("/ui/") }),
        )
        .route("/ui/", get(pages::index))
        .route("/ui/go", get(pages::go))
        .route("/ui/signin", get(signin::form).post(signin::submit))
        .route("/ui/signout", post(signin::signout))
        .route("/ui/assets/style.css", get(assets::stylesheet))
        .route("/ui/n/{*rest}", get(pages::get).post(pages::post))
        // `route_layer`: the guard (and its cookies) only for the UI's own paths, never for
        // a path the server's fallback answers once this router is merged into it.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::guard,
        ))
        .with_state(state)
}
