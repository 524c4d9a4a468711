//! The API as one axum [`Router`]: [`AppState`], the layers for the rules every request
//! follows (request id, log line and metrics, timeout, auth), and the handlers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::http::{HeaderValue, header};
use axum::middleware;
#[cfg(feature = "ui")]
use axum::routing::get;
use djinn_hook_store::Store;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

use crate::auth::{Gate, Tokens};
use crate::config::Config;
use crate::entity_json::Urls;
use crate::error::ApiError;
use crate::intake::{self, Intake};
use crate::metrics::Metrics;
use crate::ready::WorkerFlag;
#[cfg(feature = "ui")]
use crate::ui::UiState;
use crate::{handlers, log};

/// What every handler shares. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    pub(crate) store: Arc<Store>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) tokens: Arc<Tokens>,
    pub(crate) intake: Intake,
    pub(crate) urls: Arc<Urls>,
    pub(crate) max_body: usize,
    pub(crate) max_batch_body: usize,
    pub(crate) max_batch_events: usize,
    pub(crate) idempotency_window: Duration,
    pub(crate) request_timeout: Duration,
    /// The address the server is bound to: the port an `Origin` must name in the no-token mode.
    pub(crate) local: SocketAddr,
    /// Whether requests that are themselves deliveries may be stored as events, and webhooks
    /// may point at this server's own intake (`relay.rs`).
    pub(crate) accept_relayed_deliveries: bool,
    /// The web UI, served beside the API ([`Config::ui`]).
    #[cfg(feature = "ui")]
    pub(crate) ui: Option<UiState>,
    /// Whether the worker of this process runs, for `/readyz`; `None` when this server runs
    /// none (an application serving [`router`] alone).
    pub(crate) worker: Option<WorkerFlag>,
}

impl AppState {
    /// The state of a server bound to `local` with `config`, over `store`. Starts the intake's
    /// committer thread, which calls `queued` after each commit that queued delivery tasks and
    /// ends once the last clone of this state is dropped.
    pub fn new(
        config: &Config,
        store: Arc<Store>,
        local: SocketAddr,
        queued: impl Fn() + Send + 'static,
    ) -> AppState {
        let (intake, committer) = intake::channel();
        let committer_store = Arc::clone(&store);
        std::thread::Builder::new()
            .name("djinn-intake".into())
            .spawn(move || committer.run(&committer_store, queued))
            .expect("a thread can be started");
        let base = match &config.base_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{local}"),
        };
        AppState {
            store,
            metrics: Arc::new(Metrics::new()),
            tokens: Arc::clone(&config.tokens),
            intake,
            urls: Arc::new(Urls { base }),
            max_body: config.max_body,
            max_batch_body: config.max_batch_body,
            max_batch_events: config.max_batch_events,
            idempotency_window: config.idempotency_window,
            request_timeout: config.request_timeout,
            local,
            accept_relayed_deliveries: config.accept_relayed_deliveries,
            #[cfg(feature = "ui")]
            ui: config.ui.clone(),
            worker: None,
        }
    }

    /// The API's base URL.
    pub fn base_url(&self) -> &str {
        &self.urls.base
    }

    /// Runs `f` on the store on a blocking thread, off the async workers: every store call is
    /// blocking SQLite work.
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store, &Urls) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let store = Arc::clone(&self.store);
        let urls = Arc::clone(&self.urls);
        // The request's span goes along, so the store's calls show in its trace.
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || span.in_scope(|| f(&store, &urls)))
            .await
            .unwrap_or_else(|err| Err(ApiError::Internal(format!("a store call failed: {err}"))))
    }
}

/// The whole API and, when the configuration has one ([`Config::ui`]), the web UI under
/// `/ui/` (with `/` sending a browser there). Serve it, or nest it under a path of an
/// application's own router (`Router::nest("/hooks", router(state))`): the UI's links,
/// redirects and cookies follow the mount.
///
/// Layers, outermost first: `X-Content-Type-Options: nosniff` on every answer (a browser
/// never guesses a JSON body to be HTML); a request id (kept from `x-request-id` when it is 1
/// to [`MAX_REQUEST_ID`] visible ASCII characters, else a new UUID; echoed in the response),
/// the log line and request metrics, the per-request timeout (408), the auth check; then the
/// handlers. The UI's requests pass the same layers: the auth layer leaves their sign-in to
/// the UI but keeps the no-token mode's loopback rule.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .fallback(handlers::api)
        .with_state(state.clone());
    #[cfg(feature = "ui")]
    let routes = {
        let ui = state.ui.clone().map(|ui| {
            if state.accept_relayed_deliveries {
                ui
            } else {
                ui.refusing_own_intake(state.local, &state.urls.base)
            }
        });
        match ui {
            Some(ui) => crate::ui::router(ui)
                .route("/", get(crate::ui::to_home))
                .merge(api),
            None => api,
        }
    };
    #[cfg(not(feature = "ui"))]
    let routes = api;
    routes
        .layer(middleware::from_fn_with_state(
            Gate {
                tokens: Arc::clone(&state.tokens),
                local: state.local,
            },
            crate::auth::layer,
        ))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            state.request_timeout,
        ))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state.metrics),
            log::request,
        ))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(middleware::map_request(drop_unfit_request_id))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
}

/// The longest `X-Request-Id` kept from a request: a proxy's ids (UUIDs, trace ids) fit; the
/// id is echoed in the answer and written in the log line, so it is not a free channel of
/// any length.
pub const MAX_REQUEST_ID: usize = 128;

/// Removes the request's `X-Request-Id` unless there is one and it is 1 to [`MAX_REQUEST_ID`]
/// visible ASCII characters, so the request-id layer makes a fresh one instead.
async fn drop_unfit_request_id(mut request: Request) -> Request {
    let mut ids = request.headers().get_all("x-request-id").iter();
    let fit = match (ids.next(), ids.next()) {
        (Some(id), None) => {
            let id = id.as_bytes();
            (1..=MAX_REQUEST_ID).contains(&id.len()) && id.iter().all(u8::is_ascii_graphic)
        }
        _ => false,
    };
    if !fit {
        request.headers_mut().remove("x-request-id");
    }
    request
}
