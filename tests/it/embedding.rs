//! The crates as an outside tool uses them, through their public API only: a CI server that
//! mounts the REST API and the web UI under a path of its own axum router, its own receiver
//! built on djinn-hook-sign's `VerifiedDelivery` extractor, and a delivery worker over the
//! store.

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

/// A browser's view of one answer: status, `Location`, the cookies set (name, value, `Path`)
/// and the body.
struct Answer {
    status: StatusCode,
    location: Option<String>,
    cookies: Vec<(String, String, Option<String>)>,
    body: String,
}

/// A browser on the CI server's app: keeps cookies, sends `Host` and, on a POST, `Origin`.
struct Browser {
    app: Router,
    cookies: Vec<(String, String)>,
}

const HOST: &str = "127.0.0.1:80";

impl Browser {
    async fn send(&mut self, method: &str, uri: &str, form: Option<&[(&str, &str)]>) -> Answer {
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::HOST, HOST);
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            request = request.header(header::COOKIE, jar.join("; "));
        }
        let body = match form {
            None => Body::empty(),
            Some(fields) => {
                request = request
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .header(header::ORIGIN, format!("http://{HOST}"));
                let encoded: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| format!("{k}={}", form_value(v)))
                    .collect();
                Body::from(encoded.join("&"))
            }
        };
        let response = self
            .app
            .clone()
            .oneshot(request.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let location = response
            .headers()
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap().to_owned());
        let mut cookies = Vec::new();
        for set in response.headers().get_all(header::SET_COOKIE) {
            let set = set.to_str().unwrap();
            let mut parts = set.split(';').map(str::trim);
            let (name, value) = parts.next().unwrap().split_once('=').unwrap();
            let path = parts
                .find_map(|a| a.strip_prefix("Path="))
                .map(str::to_owned);
            self.cookies.retain(|(k, _)| k != name);
            if !value.is_empty() {
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
            cookies.push((name.to_owned(), value.to_owned(), path));
        }
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        Answer {
            status,
            location,
            cookies,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }
}

/// A form value, percent-encoded (`application/x-www-form-urlencoded`).
fn form_value(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The `_csrf` field's value in a page.
fn csrf_in(body: &str) -> String {
    let at =
        body.find(r#"name="_csrf" value=""#).expect("a form") + r#"name="_csrf" value=""#.len();
    body[at..at + body[at..].find('"').unwrap()].to_owned()
}

const CI_USER_TOKEN: &str = "a CI user's own session token";

#[test]
fn a_ci_server_mounts_the_web_ui_under_its_own_path_and_signs_people_in_itself() {
    use djinn_hook_server::StoreActions;
    use djinn_hook_server::ui::{Access, Auth, UiState};

    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(Store::open(dir.path().join("hooks.db"), SecretKey::from_bytes([9; 32])).unwrap());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    // Sign-in is the CI server's: its own users' tokens, mapped onto what the UI may do.
    let auth = Auth::Tokens(Arc::new(|token: &str| {
        (token == CI_USER_TOKEN).then(|| Access {
            can_read: true,
            can_write: true,
            namespaces: Some(vec!["alice".to_owned()]),
        })
    }));
    let deliverer = Deliverer::new(DeliverConfig::default());
    let actions = StoreActions::new(Arc::clone(&store), deliverer, None);
    let ui = UiState::new(Arc::clone(&store), auth, Arc::new(actions)).unwrap();
    let mut config = Config::new("127.0.0.1:0", Tokens::new([]).unwrap()).unwrap();
    config.ui = Some(ui);
    let local: SocketAddr = HOST.parse().unwrap();
    let hooks = djinn_hook_server::router(AppState::new(&config, Arc::clone(&store), local, || {}));
    let app = Router::new()
        .route("/status", get(|| async { "the CI server's own route" }))
        .nest("/hooks", hooks);
    let hook = {
        store.ensure_namespace("alice/ci").unwrap();
        store
            .create_webhook(djinn_hook_store::NewWebhook::new(
                "alice/ci",
                "https://ci.example/hook",
            ))
            .unwrap()
    };

    runtime.block_on(async {
        let mut browser = Browser {
            app,
            cookies: Vec::new(),
        };
        // The app's own root is the app's; the mount's root sends a browser to the UI.
        let root = browser.send("GET", "/hooks", None).await;
        assert_eq!(root.location.as_deref(), Some("/hooks/ui/"));
        let index = browser.send("GET", "/hooks/ui/", None).await;
        assert_eq!(index.status, StatusCode::SEE_OTHER);
        assert_eq!(
            index.location.as_deref(),
            Some("/hooks/ui/signin?next=%2Fui%2F")
        );

        // The sign-in page: its stylesheet, its form and its cookie are the mount's.
        let form = browser
            .send(
                "GET",
                "/hooks/ui/signin?next=%2Fui%2Fn%2Falice%2Fci%2F-%2Fwebhooks",
                None,
            )
            .await;
        assert_eq!(form.status, StatusCode::OK, "{}", form.body);
        for needle in [
            r#"href="/hooks/ui/assets/style.css""#,
            r#"action="/hooks/ui/signin""#,
            r#"name="next" value="/ui/n/alice/ci/-/webhooks""#,
        ] {
            assert!(form.body.contains(needle), "{needle} in {}", form.body);
        }
        assert!(
            form.cookies
                .iter()
                .all(|(_, _, path)| path.as_deref() == Some("/hooks/ui")),
            "{:?}",
            form.cookies
        );
        let style = browser
            .send("GET", "/hooks/ui/assets/style.css", None)
            .await;
        assert_eq!(style.status, StatusCode::OK);

        // A wrong token stays on the form; the right one goes on to `next`, below the mount.
        let csrf = csrf_in(&form.body);
        let wrong = browser
            .send(
                "POST",
                "/hooks/ui/signin",
                Some(&[
                    ("_csrf", &csrf),
                    ("token", "not one of ours"),
                    ("next", "/ui/"),
                ]),
            )
            .await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
        let signed_in = browser
            .send(
                "POST",
                "/hooks/ui/signin",
                Some(&[
                    ("_csrf", &csrf),
                    ("token", CI_USER_TOKEN),
                    ("next", "/ui/n/alice/ci/-/webhooks"),
                ]),
            )
            .await;
        assert_eq!(
            signed_in.status,
            StatusCode::SEE_OTHER,
            "{}",
            signed_in.body
        );
        assert_eq!(
            signed_in.location.as_deref(),
            Some("/hooks/ui/n/alice/ci/-/webhooks")
        );
        let session = signed_in
            .cookies
            .iter()
            .find(|(name, value, _)| name == "djinn_ui_session" && !value.is_empty())
            .expect("a session cookie");
        assert_eq!(session.2.as_deref(), Some("/hooks/ui"));

        // The Webhooks tab, its links below the mount; follow one.
        let list = browser
            .send("GET", "/hooks/ui/n/alice/ci/-/webhooks", None)
            .await;
        assert_eq!(list.status, StatusCode::OK, "{}", list.body);
        let edit = format!("/hooks/ui/n/alice/ci/-/webhooks/{}", hook.id);
        for needle in [
            format!(r#"href="{edit}""#),
            r#"href="/hooks/ui/n/alice/ci/-/webhooks/create""#.to_owned(),
            r#"href="/hooks/ui/""#.to_owned(),
            r#"action="/hooks/ui/signout""#.to_owned(),
        ] {
            assert!(list.body.contains(&needle), "{needle} in {}", list.body);
        }
        let page = browser.send("GET", &edit, None).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(
            page.body.contains(&format!(r#"action="{edit}/delete""#)),
            "{}",
            page.body
        );

        // Post a form: create a webhook; the 303 and its flash stay below the mount.
        let csrf = csrf_in(&page.body);
        let created = browser
            .send(
                "POST",
                "/hooks/ui/n/alice/ci/-/webhooks/create",
                Some(&[
                    ("_csrf", &csrf),
                    ("payload_url", "https://ci.example/second"),
                    ("active", "on"),
                ]),
            )
            .await;
        assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
        assert_eq!(
            created.location.as_deref(),
            Some("/hooks/ui/n/alice/ci/-/webhooks")
        );
        let after = browser
            .send("GET", "/hooks/ui/n/alice/ci/-/webhooks", None)
            .await;
        assert!(
            after
                .body
                .contains("Webhook created: https://ci.example/second"),
            "{}",
            after.body
        );
        assert_eq!(store.webhooks("alice/ci").unwrap().len(), 2);

        // Out of the token's namespaces, a 404 page, its links below the mount too.
        let other = browser
            .send("GET", "/hooks/ui/n/bob/ci/-/webhooks", None)
            .await;
        assert_eq!(other.status, StatusCode::NOT_FOUND);
        assert!(
            other.body.contains(r#"href="/hooks/ui/""#),
            "{}",
            other.body
        );

        // Signed out: back to the mount's sign-in page, the session cookie dropped.
        let csrf = csrf_in(&after.body);
        let out = browser
            .send("POST", "/hooks/ui/signout", Some(&[("_csrf", &csrf)]))
            .await;
        assert_eq!(out.location.as_deref(), Some("/hooks/ui/signin"));
        let again = browser
            .send("GET", "/hooks/ui/n/alice/ci/-/webhooks", None)
            .await;
        assert_eq!(again.status, StatusCode::SEE_OTHER);

        // The CI server's own routes never see a UI cookie set.
        let status = browser.send("GET", "/status", None).await;
        assert!(status.cookies.is_empty());
    });
}

/// A `next` that would lead outside the mount is refused whatever the mount: after signing in,
/// the browser lands on the mount's index.
#[test]
fn sign_in_never_sends_a_browser_outside_the_mount() {
    use djinn_hook_server::StoreActions;
    use djinn_hook_server::ui::{Access, Auth, UiState};

    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(Store::open(dir.path().join("hooks.db"), SecretKey::from_bytes([9; 32])).unwrap());
    let auth = Auth::Tokens(Arc::new(|token: &str| {
        (token == CI_USER_TOKEN).then(Access::full)
    }));
    let actions = StoreActions::new(
        Arc::clone(&store),
        Deliverer::new(DeliverConfig::default()),
        None,
    );
    let ui = UiState::new(Arc::clone(&store), auth, Arc::new(actions)).unwrap();
    let app = Router::new().nest("/ci/{org}/hooks", djinn_hook_server::ui::router(ui));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        for next in [
            "//evil.example/",
            "/ui/../../../elsewhere",
            "/ui/%2e%2e/%2e%2e/elsewhere",
            "https://evil.example/ui/",
            "/elsewhere",
        ] {
            let mut browser = Browser {
                app: app.clone(),
                cookies: Vec::new(),
            };
            let form = browser.send("GET", "/ci/acme/hooks/ui/signin", None).await;
            assert_eq!(form.status, StatusCode::OK, "{}", form.body);
            let csrf = csrf_in(&form.body);
            let done = browser
                .send(
                    "POST",
                    "/ci/acme/hooks/ui/signin",
                    Some(&[("_csrf", &csrf), ("token", CI_USER_TOKEN), ("next", next)]),
                )
                .await;
            assert_eq!(
                done.location.as_deref(),
                Some("/ci/acme/hooks/ui/"),
                "{next}"
            );
        }
        // A mount whose own text would change a link or a cookie is refused, not served.
        let mut browser = Browser {
            app: app.clone(),
            cookies: Vec::new(),
        };
        let odd = browser
            .send("GET", "/ci/a;Domain=evil.example/hooks/ui/signin", None)
            .await;
        assert_eq!(odd.status, StatusCode::BAD_REQUEST);
        assert!(odd.cookies.is_empty());
    });
}
