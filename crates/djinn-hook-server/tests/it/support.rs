//! A UI over a real SQLite store, a loopback receiver, and a cookie-keeping client that
//! drives the `Router` with `tower::ServiceExt::oneshot`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use djinn_hook_deliver::{DeliverConfig, Deliverer, RetryPolicy, Worker, WorkerConfig};
use djinn_hook_payload::EventType;
use djinn_hook_server::ui::{self, Access, Actions, Auth, FnActions, UiState};
use djinn_hook_store::{NewWebhook, SecretKey, Store, Webhook};
use tower::ServiceExt as _;

/// The host every test request names (and its forms' `Origin`).
pub(crate) const HOST: &str = "ui.test";

fn deliverer() -> Deliverer {
    let mut config = DeliverConfig::default();
    config.allow_private_network = true;
    Deliverer::new(config)
}

/// Test deliveries and redeliveries for real, as a server wires them: the project's
/// deliverer and worker over the store, to loopback receivers. A redelivery is sent before
/// `queued` returns.
fn real_actions(store: &Arc<Store>, queued: &Arc<AtomicUsize>) -> Arc<dyn Actions> {
    let (for_test, for_worker) = (Arc::clone(store), Arc::clone(store));
    let queued = Arc::clone(queued);
    Arc::new(FnActions {
        send_test: move |hook_id, event: EventType| {
            djinn_hook_server::send_test(&for_test, &deliverer(), hook_id, event)
                .map(|sent| sent.delivery.map(|d| d.id))
                .map_err(Into::into)
        },
        queued: move || {
            queued.fetch_add(1, Ordering::SeqCst);
            Worker::new(
                &*for_worker,
                deliverer(),
                RetryPolicy::default(),
                WorkerConfig::default(),
            )
            .run_until_idle();
        },
    })
}

/// The UI under test and what it stands on.
pub(crate) struct Ui {
    pub(crate) store: Arc<Store>,
    pub(crate) router: Router,
    pub(crate) actions: Arc<dyn Actions>,
    /// How many redeliveries the UI queued.
    pub(crate) queued: Arc<AtomicUsize>,
    _dir: tempfile::TempDir,
}

/// Tokens of the token-mode UI: `writer` (everything), `reader` (read only), `scribe` (write
/// only), `bob` (reads and writes, only `bob/...`).
pub(crate) fn check_token(token: &str) -> Option<Access> {
    match token {
        "writer" => Some(Access::full()),
        "reader" => Some(Access {
            can_write: false,
            ..Access::full()
        }),
        "scribe" => Some(Access {
            can_read: false,
            ..Access::full()
        }),
        "bob" => Some(Access {
            namespaces: Some(vec!["bob/ci".into()]),
            ..Access::full()
        }),
        _ => None,
    }
}

impl Ui {
    /// The loopback no-token mode.
    pub(crate) fn open() -> Ui {
        Ui::with(Auth::Open, |s| s)
    }

    /// Sign-in with [`check_token`]'s tokens.
    pub(crate) fn tokens() -> Ui {
        Ui::with(Auth::Tokens(Arc::new(check_token)), |s| s)
    }

    pub(crate) fn with(auth: Auth, tweak: impl FnOnce(UiState) -> UiState) -> Ui {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(
            Store::open(dir.path().join("hooks.db"), SecretKey::from_bytes([7; 32])).unwrap(),
        );
        let queued = Arc::new(AtomicUsize::new(0));
        let actions = real_actions(&store, &queued);
        let state = tweak(UiState::new(Arc::clone(&store), auth, Arc::clone(&actions)).unwrap());
        Ui {
            store,
            router: ui::router(state),
            actions,
            queued,
            _dir: dir,
        }
    }

    /// A webhook made directly in the store.
    pub(crate) fn hook(&self, ns: &str, url: &str) -> Webhook {
        self.store.ensure_namespace(ns).unwrap();
        self.store.create_webhook(NewWebhook::new(ns, url)).unwrap()
    }

    /// Points webhook `id` at `url`.
    pub(crate) fn point(&self, id: i64, url: &str) {
        let mut update = djinn_hook_store::WebhookUpdate::default();
        update.payload_url = Some(url.to_owned());
        self.store.update_webhook(id, update).unwrap();
    }

    /// A browser-like client of this UI.
    pub(crate) fn client(&self) -> Client {
        Client {
            router: self.router.clone(),
            cookies: HashMap::new(),
            csrf: None,
            remote: None,
        }
    }

    /// A test delivery made through the actions, as the UI's button does; its delivery id.
    pub(crate) fn send_test(&self, hook: i64) -> i64 {
        self.actions
            .send_test(hook, EventType::BuildSubmitted)
            .unwrap()
            .unwrap()
    }
}

/// A response, body read.
#[derive(Debug)]
pub(crate) struct Page {
    pub(crate) status: StatusCode,
    pub(crate) headers: axum::http::HeaderMap,
    pub(crate) body: String,
}

impl Page {
    pub(crate) fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no Location in a {} answer", self.status))
    }

    pub(crate) fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect()
    }

    /// Asserts the body contains every one of `needles`.
    #[track_caller]
    pub(crate) fn has(&self, needles: &[&str]) -> &Page {
        for needle in needles {
            assert!(
                self.body.contains(needle),
                "{needle:?} missing from the {} page:\n{}",
                self.status,
                self.body
            );
        }
        self
    }

    /// Asserts the body contains none of `needles`.
    #[track_caller]
    pub(crate) fn lacks(&self, needles: &[&str]) -> &Page {
        for needle in needles {
            assert!(
                !self.body.contains(needle),
                "{needle:?} should not be on the {} page:\n{}",
                self.status,
                self.body
            );
        }
        self
    }
}

/// Keeps cookies and the last page's CSRF token, like a browser (a clone is another tab).
#[derive(Clone)]
pub(crate) struct Client {
    router: Router,
    pub(crate) cookies: HashMap<String, String>,
    pub(crate) csrf: Option<String>,
    /// The address requests come from, as the server's connections give it (`None`: none).
    pub(crate) remote: Option<SocketAddr>,
}

impl Client {
    /// This client on `router` instead (the UI merged with more routes).
    pub(crate) fn on(self, router: Router) -> Client {
        Client { router, ..self }
    }

    pub(crate) async fn get(&mut self, path: &str) -> Page {
        let request = self.request("GET", path).body(Body::empty()).unwrap();
        self.send(request).await
    }

    /// POSTs `fields` with this client's CSRF token (from the last page) and `Origin`.
    pub(crate) async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = self.csrf.clone().expect("GET a page with a form first");
        let mut all = vec![("_csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &all, Some(&format!("http://{HOST}")))
            .await
    }

    /// POSTs exactly `fields` with this `Origin` (none if `None`).
    pub(crate) async fn post_raw(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        origin: Option<&str>,
    ) -> Page {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let mut request = self
            .request("POST", path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(origin) = origin {
            request = request.header(header::ORIGIN, origin);
        }
        self.send(request.body(Body::from(body)).unwrap()).await
    }

    /// POSTs `body` as it is, as a form from this UI's origin.
    pub(crate) async fn post_bytes(&mut self, path: &str, body: Vec<u8>) -> Page {
        let request = self
            .request("POST", path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ORIGIN, format!("http://{HOST}"));
        self.send(request.body(Body::from(body)).unwrap()).await
    }

    /// GETs `path` after a 303 `page`, asserting the redirect.
    #[track_caller]
    pub(crate) fn redirected<'p>(&self, page: &'p Page) -> &'p str {
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        page.location()
    }

    fn request(&self, method: &str, path: &str) -> axum::http::request::Builder {
        let cookie: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, HOST);
        if !cookie.is_empty() {
            request = request.header(header::COOKIE, cookie.join("; "));
        }
        request
    }

    async fn send(&mut self, mut request: Request<Body>) -> Page {
        if let Some(remote) = self.remote {
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(remote));
        }
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = to_bytes(response.into_body(), 1 << 22).await.unwrap();
        let page = Page {
            status,
            headers,
            body: String::from_utf8(body.to_vec()).unwrap(),
        };
        for set in page.set_cookies() {
            let c = cookie::Cookie::parse(set.to_owned()).unwrap();
            if c.max_age() == Some(time::Duration::ZERO) {
                self.cookies.remove(c.name());
            } else {
                self.cookies
                    .insert(c.name().to_owned(), c.value().to_owned());
            }
        }
        if let Some(token) = csrf_in(&page.body) {
            self.csrf = Some(token);
        }
        page
    }
}

/// The `_csrf` field's value in a page, if it has a form.
pub(crate) fn csrf_in(body: &str) -> Option<String> {
    let at = body.find(r#"name="_csrf" value=""#)? + r#"name="_csrf" value=""#.len();
    let end = body[at..].find('"')?;
    Some(body[at..at + end].to_owned())
}

/// A receiver on 127.0.0.1: `/ok` answers 200 with a `<script>` body, `/fail` 500, and
/// anything else 404. It runs on its own runtime thread for the test's life.
pub(crate) struct Receiver {
    pub(crate) addr: SocketAddr,
    pub(crate) hits: Arc<AtomicUsize>,
}

impl Receiver {
    pub(crate) fn start() -> Receiver {
        use axum::routing::post;
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&hits);
        let app = Router::new()
            .route(
                "/ok",
                post(|| async {
                    (
                        [(header::CONTENT_TYPE, "text/html")],
                        "<script>alert('pwned')</script>",
                    )
                }),
            )
            .route(
                "/fail",
                post(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "") }),
            )
            .layer(axum::middleware::from_fn(
                move |req: axum::extract::Request, next: axum::middleware::Next| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    next.run(req)
                },
            ));
        Receiver {
            addr: serve_on_a_thread(app),
            hits,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// Serves `app` on 127.0.0.1 from a runtime thread of its own, for the test's life; its address.
pub(crate) fn serve_on_a_thread(app: Router) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app).await.unwrap();
            });
    });
    addr
}
