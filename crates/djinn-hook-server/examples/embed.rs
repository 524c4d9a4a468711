//! A CI server that embeds djinn-hooks in its own axum application: the REST API and the web UI
//! nested under `/hooks` beside the server's own routes, the API behind the server's own
//! authentication layer and the UI signing in the server's own users, with the server's own
//! logging (this crate sets up nothing process-wide), a delivery worker on a thread, and, to
//! show the other end, a receiver route of its own on djinn-hook-sign's `VerifiedDelivery`.
//!
//! Run: `cargo run -p djinn-hook-server --example embed`. It creates a webhook and emits one
//! event through the nested API, lets the worker deliver it to the receiver route, opens the
//! web UI below the mount (which sends a browser to its sign-in page there), prints what
//! arrived and exits 0 (1 if nothing verified arrived within 10 s, or the UI is not where it was
//! mounted). CI runs it.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, mpsc};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use djinn_hook_deliver::{DeliverConfig, Deliverer, RetryPolicy, Shutdown, Worker, WorkerConfig};
use djinn_hook_payload::{DEFAULT_API_SERVER, EventType, example_payload};
use djinn_hook_server::ui::{Access, Auth, UiState};
use djinn_hook_server::{AppState, Config, StoreActions, Tokens};
use djinn_hook_sign::{VerifiedDelivery, Verifier, headers};
use djinn_hook_store::{SecretKey, Store};

const SECRET: &str = "the CI server's webhook secret";
const API_KEY: &str = "the CI server's own credential";
/// A CI user's token, which the server's own sign-in knows (the UI asks it through `ui_access`).
const USER_TOKEN: &str = "a CI user's own session token";

#[derive(Clone)]
struct Receiving {
    verifier: Verifier,
    arrived: mpsc::SyncSender<String>,
}

impl axum::extract::FromRef<Receiving> for Verifier {
    fn from_ref(state: &Receiving) -> Verifier {
        state.verifier.clone()
    }
}

/// The receiver route: only verified deliveries reach the handler.
async fn receive(State(state): State<Receiving>, delivery: VerifiedDelivery) -> StatusCode {
    let event = delivery
        .headers
        .get(headers::EVENT)
        .and_then(|v| v.to_str().ok());
    let _ = state.arrived.try_send(format!(
        "{} ({} bytes, verified)",
        event.unwrap_or("-"),
        delivery.body.len()
    ));
    StatusCode::NO_CONTENT
}

/// The CI server's own authentication in front of the nested API (djinn-hooks' tokens are
/// not configured: the API trusts what this layer lets through). The web UI's paths (the path
/// seen here is below the mount) sign people in themselves, with [`ui_access`].
async fn own_auth(request: Request, next: Next) -> Result<Response, StatusCode> {
    let path = request.uri().path();
    if path == "/" || path == "/ui" || path.starts_with("/ui/") {
        return Ok(next.run(request).await);
    }
    let key = request
        .headers()
        .get("x-ci-key")
        .and_then(|v| v.to_str().ok());
    if key == Some(API_KEY) {
        Ok(next.run(request).await)
    } else {
        Err(StatusCode::UNAUTHORIZED)
    }
}

/// What a CI user signing in to the web UI with one of the server's own tokens may do.
fn ui_access(token: &str) -> Option<Access> {
    (token == USER_TOKEN).then(|| Access {
        can_read: true,
        can_write: true,
        namespaces: Some(vec!["alice".to_owned()]),
    })
}

fn main() -> ExitCode {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let store = Arc::new(
        Store::open(
            dir.path().join("hooks.db"),
            SecretKey::generate().expect("a key"),
        )
        .expect("the store"),
    );
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("a loopback port");
    let local: SocketAddr = listener.local_addr().expect("its address");

    // The worker, woken by the API whenever an accepted event queued deliveries.
    let mut deliver = DeliverConfig::default();
    deliver.allow_private_network = true; // the receiver route is on loopback
    let deliverer = Deliverer::new(deliver.clone());
    let worker = Worker::new(
        Arc::clone(&store),
        deliverer,
        RetryPolicy::default(),
        WorkerConfig::default(),
    );
    let waker = worker.waker();
    let worker_waker = worker.waker();
    let stop = Shutdown::new();
    let worker_stop = stop.clone();
    let worker_thread = std::thread::spawn(move || worker.run(&worker_stop));

    let mut config = Config::new(&local.to_string(), Tokens::new([]).expect("no tokens"))
        .expect("a loopback address");
    config.base_url = Some(format!("http://{local}/hooks"));
    let actions = StoreActions::new(
        Arc::clone(&store),
        Deliverer::new(deliver),
        Some(worker_waker),
    );
    config.ui = Some(
        UiState::new(
            Arc::clone(&store),
            Auth::Tokens(Arc::new(ui_access)),
            Arc::new(actions),
        )
        .expect("a cookie key"),
    );
    let api = djinn_hook_server::router(AppState::new(
        &config,
        Arc::clone(&store),
        local,
        move || waker.wake(),
    ));
    let (arrived, arrivals) = mpsc::sync_channel(16);
    let app = Router::new()
        .route("/status", get(|| async { "ok" }))
        .nest("/hooks", api.layer(middleware::from_fn(own_auth)))
        .route(
            "/receiver",
            post(receive).with_state(Receiving {
                verifier: Verifier::new(SECRET).expect("a valid secret"),
                arrived,
            }),
        );
    runtime.spawn(async move { axum::serve(listener, app).await });

    // What the CI server's own code does: a webhook, then an event, through the nested API.
    let client = ureq::Agent::new_with_defaults();
    let api_url = format!("http://{local}/hooks/n/alice/ci/-");
    let created = client
        .post(&format!("{api_url}/webhooks"))
        .header("x-ci-key", API_KEY)
        .send(
            serde_json::json!({
                "payload_url": format!("http://{local}/receiver"),
                "secret": SECRET,
            })
            .to_string(),
        )
        .expect("create a webhook");
    println!("webhook created: {}", created.status());
    let body = example_payload(EventType::BuildFinished, DEFAULT_API_SERVER).to_body();
    let accepted = client
        .post(&format!("{api_url}/events"))
        .header("x-ci-key", API_KEY)
        .header(headers::EVENT, "build.finished")
        .send(&body[..])
        .expect("emit an event");
    println!("event accepted: {}", accepted.status());

    // The web UI below the mount: its index sends a browser to sign in, there.
    let ui_url = format!("http://{local}/hooks/ui/");
    let signin = client.get(&ui_url).call().expect("open the web UI");
    let page = signin
        .into_body()
        .read_to_string()
        .expect("the sign-in page");
    let ui_ok = page.contains(r#"action="/hooks/ui/signin""#);
    println!("web UI at {ui_url}: sign-in page below the mount: {ui_ok}");

    let outcome = arrivals.recv_timeout(Duration::from_secs(10));
    stop.stop();
    let _ = worker_thread.join();
    match outcome {
        Ok(_) if !ui_ok => {
            eprintln!("the web UI's sign-in page is not below /hooks/ui");
            ExitCode::FAILURE
        }
        Ok(what) => {
            println!("the receiver route got {what}");
            ExitCode::SUCCESS
        }
        Err(_) => {
            eprintln!("nothing verified arrived within 10 s");
            ExitCode::FAILURE
        }
    }
}
