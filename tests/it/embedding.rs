//! The crates as an outside tool uses them, through their public API only: a CI server that
//! mounts the REST API under a path of its own axum router, its own receiver built on
//! djinn-hook-sign's `VerifiedDelivery` extractor, and a delivery worker over the store.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::routing::{get, post};
use djinn_hook_deliver::{DeliverConfig, Deliverer, RetryPolicy, Worker, WorkerConfig};
use djinn_hook_payload::{DEFAULT_API_SERVER, EventType, Payload, example_payload};
use djinn_hook_server::{AppState, Config, Tokens};
use djinn_hook_sign::{VerifiedDelivery, Verifier, headers};
use djinn_hook_store::{SecretKey, Store};
use tower::ServiceExt;

const SECRET: &str = "the embedding server's secret";

/// What the embedding server's own receiver accepted: (event, body).
type Seen = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A receiver written the way a user of djinn-hook-sign would: the extractor verifies, the
/// handler only sees verified deliveries.
async fn receive(
    axum::extract::State(seen): axum::extract::State<Seen>,
    delivery: VerifiedDelivery,
) -> StatusCode {
    let event = delivery
        .headers
        .get(headers::EVENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    seen.lock().unwrap().push((event, delivery.body.to_vec()));
    StatusCode::NO_CONTENT
}

#[derive(Clone)]
struct ReceiverState {
    seen: Seen,
    verifier: Verifier,
}

impl axum::extract::FromRef<ReceiverState> for Seen {
    fn from_ref(state: &ReceiverState) -> Seen {
        Arc::clone(&state.seen)
    }
}

impl axum::extract::FromRef<ReceiverState> for Verifier {
    fn from_ref(state: &ReceiverState) -> Verifier {
        state.verifier.clone()
    }
}

/// Serves `app` on 127.0.0.1 on a runtime thread of its own; its address.
fn serve_on_loopback(runtime: &tokio::runtime::Runtime, app: Router) -> SocketAddr {
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    runtime.spawn(async move { axum::serve(listener, app).await });
    addr
}

async fn send(
    app: &Router,
    method: &str,
    uri: &str,
    body: Vec<u8>,
    event: Option<&str>,
) -> (StatusCode, String) {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::HOST, "127.0.0.1")
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(event) = event {
        request = request.header(headers::EVENT, event);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[test]
fn a_ci_server_mounts_the_api_under_its_own_path_and_delivers_to_its_own_receiver() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(Store::open(dir.path().join("hooks.db"), SecretKey::from_bytes([9; 32])).unwrap());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    // The receiver: the embedding server's own route, verified by the extractor.
    let seen: Seen = Arc::default();
    let receiver = Router::new()
        .route("/hook", post(receive))
        .with_state(ReceiverState {
            seen: Arc::clone(&seen),
            verifier: Verifier::new(SECRET).unwrap(),
        });
    let receiver_addr = serve_on_loopback(&runtime, receiver);

    // The CI server's router with the webhook API nested under /hooks, beside its own routes.
    let config = Config::new("127.0.0.1:0", Tokens::new([]).unwrap()).unwrap();
    let local: SocketAddr = "127.0.0.1:80".parse().unwrap();
    let api = djinn_hook_server::router(AppState::new(&config, Arc::clone(&store), local, || {}));
    let app = Router::new()
        .route("/status", get(|| async { "the CI server's own route" }))
        .nest("/hooks", api);

    let payload = example_payload(EventType::BuildFinished, DEFAULT_API_SERVER).to_body();
    runtime.block_on(async {
        assert_eq!(
            send(&app, "GET", "/status", Vec::new(), None).await,
            (StatusCode::OK, "the CI server's own route".to_owned())
        );
        let create = serde_json::json!({
            "payload_url": format!("http://{receiver_addr}/hook"),
            "secret": SECRET,
            "events": ["build.finished"],
        });
        let (status, body) = send(
            &app,
            "POST",
            "/hooks/n/alice/ci/-/webhooks",
            create.to_string().into_bytes(),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");

        let (status, body) = send(
            &app,
            "POST",
            "/hooks/n/alice/ci/-/events",
            payload.clone(),
            Some("build.finished"),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    });

    // The worker, as the embedding server runs it (here until nothing is due).
    let mut config = DeliverConfig::default();
    config.allow_private_network = true;
    config.timeout = Duration::from_secs(10);
    let deliverer = Deliverer::new(config);
    let stats = Worker::new(
        &*store,
        deliverer,
        RetryPolicy::default(),
        WorkerConfig::default(),
    )
    .run_until_idle();
    assert_eq!(stats.delivered, 1, "{stats:?}");

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "one verified delivery");
    let (event, body) = &seen[0];
    assert_eq!(event, "build.finished");
    let received = Payload::parse(EventType::BuildFinished, body).unwrap();
    assert_eq!(received.to_body(), payload);
}
