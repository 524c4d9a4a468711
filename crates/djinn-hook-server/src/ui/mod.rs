//! The Webhooks tab: server-rendered pages for a namespace's webhooks and their deliveries.
//!
//! Everything lives under `/ui/` ([`PREFIX`]), next to the JSON API's `/n/...` paths, below
//! wherever the router is mounted (`paths.rs`: every link, redirect and cookie path carries
//! the mount):
//!
//! | method | path (below `/ui`) | what |
//! |---|---|---|
//! | GET | `/` | namespaces and their webhooks' health |
//! | GET | `/n/{ns}/-/webhooks` | a namespace's webhooks |
//! | GET, POST | `/n/{ns}/-/webhooks/create` | the create form; create |
//! | GET, POST | `/n/{ns}/-/webhooks/{id}` | the edit form and recent deliveries; update |
//! | POST | `/n/{ns}/-/webhooks/{id}/delete` | delete |
//! | POST | `/n/{ns}/-/webhooks/{id}/test` | send a test delivery now |
//! | POST | `/n/{ns}/-/webhooks/{id}/rotate-secret` | a new secret, the old one kept a while |
//! | GET | `/n/{ns}/-/webhooks/{id}/deliveries/{delivery}` | one delivery |
//! | POST | `/n/{ns}/-/webhooks/{id}/deliveries/{delivery}/redeliver` | queue it again |
//! | POST | `/n/{ns}/-/webhooks/{id}/recover` | queue a range of deliveries again (bulk) |
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

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};

use paths::Links;

pub use access::Access;
pub use session::{SessionKey, SessionKeyError};
pub use state::{ActionError, Actions, Auth, FnActions, TokenCheck, UiState};

/// Where the UI is in its router: every UI path starts with it, below wherever an application
/// mounts the router (`Router::nest("/hooks", …)`: `/hooks/ui/…`), and its cookies are
/// scoped to that (`Path=/hooks/ui`).
pub const PREFIX: &str = "/ui";

/// The UI's routes, with `state` applied. Merge it into the server's router as it is (its
/// paths already start with [`PREFIX`]), or nest that router under a path of an application's
/// own: links, redirects and cookies follow the mount.
pub fn router(state: UiState) -> Router {
    Router::new()
        .route(
            "/ui",
            get(|Extension(links): Extension<Links>| async move {
                Redirect::permanent(&links.home())
            }),
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

/// `GET /` of a server with the UI: a browser is sent to the UI's index, below the mount.
pub(crate) async fn to_home(request: Request) -> Response {
    let (parts, _) = request.into_parts();
    match Links::of(&parts) {
        Some(links) => Redirect::to(&links.home()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
