//! Test deliveries from the UI against a receiver that does not answer until told: bounded per
//! webhook and in all (429 naming the limit), run on threads of their own so the API's and the
//! UI's store calls are still answered while every test waits, and recorded even when the
//! request that started one has ended.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use djinn_hook_server::ui::Auth;
use djinn_hook_server::{AppState, TestLimits};
use djinn_hook_store::{DeliveryFilter, DeliveryLimits, NewWebhook, Page};
use djinn_hook_testkit::wait_for_async;
use tower::ServiceExt as _;

use crate::support::{Client, Ui, serve_on_a_thread};

/// A receiver on 127.0.0.1 that holds every request until [`SlowReceiver::release`], then
/// answers 200.
struct SlowReceiver {
    addr: std::net::SocketAddr,
    arrived: Arc<AtomicUsize>,
    release: tokio::sync::watch::Sender<bool>,
}

impl SlowReceiver {
    fn start() -> SlowReceiver {
        let arrived = Arc::new(AtomicUsize::new(0));
        let (release, released) = tokio::sync::watch::channel(false);
        let counter = Arc::clone(&arrived);
        let app = axum::Router::new().route(
            "/{hook}",
            axum::routing::post(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                let mut released = released.clone();
                async move {
                    let _ = released.wait_for(|go| *go).await;
                    StatusCode::OK
                }
            }),
        );
        let addr = serve_on_a_thread(app);
        SlowReceiver {
            addr,
            arrived,
            release,
        }
    }

    fn arrived(&self) -> usize {
        self.arrived.load(Ordering::SeqCst)
    }

    fn release(&self) {
        self.release.send_replace(true);
    }
}

fn test_path(hook: i64) -> String {
    format!("/ui/n/alice/ci/-/webhooks/{hook}/test")
}

/// The UI's test button on `hook`, as a request in a tab of its own.
fn press_test(client: &Client, hook: i64) -> tokio::task::JoinHandle<crate::support::Page> {
    let mut client = client.clone();
    tokio::spawn(async move { client.post(&test_path(hook), &[("event", "cron")]).await })
}

/// Presses the test button on `hook` and asserts it is refused at once (within a bound, not a
/// measured time: a test that ran would wait on the receiver): 429 saying `why`.
async fn refused(client: &Client, hook: i64, why: &str) {
    let mut client = client.clone();
    let page = tokio::time::timeout(Duration::from_secs(10), client.post(&test_path(hook), &[]))
        .await
        .expect("refused without waiting on the receiver");
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS, "{}", page.body);
    page.has(&[why]);
}

#[test]
fn test_deliveries_are_bounded_run_off_the_store_pool_and_recorded_when_the_request_ends() {
    // A blocking pool of two threads: were test deliveries run on it, two would stall every
    // store call of the API and the UI.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let receiver = SlowReceiver::start();
        let ui = Ui::with(Auth::Open, |state| {
            let mut limits = TestLimits::default();
            limits.per_webhook = 2;
            limits.total = 3;
            state.with_test_limits(limits)
        });
        ui.store.ensure_namespace("alice/ci").unwrap();
        // Only the release ends a delivery: the timeout outlasts the test.
        let hook = |path: &str| {
            let mut new = NewWebhook::new("alice/ci", format!("http://{}{path}", receiver.addr));
            let mut limits = DeliveryLimits::default();
            limits.timeout = Some(DeliveryLimits::MAX_TIMEOUT);
            new.limits = limits;
            ui.store.create_webhook(new).unwrap().id
        };
        let (a, b) = (hook("/a"), hook("/b"));
        let config = crate::config(&[]);
        let api = djinn_hook_server::router(AppState::new(
            &config,
            Arc::clone(&ui.store),
            "127.0.0.1:8080".parse().unwrap(),
            || {},
        ));
        let app = ui.router.clone().merge(api);
        let mut c = ui.client().on(app.clone());
        c.get(&format!("/ui/n/alice/ci/-/webhooks/{a}")).await;

        // Two to `a` run; a third is refused at once, naming the per-webhook limit.
        let a1 = press_test(&c, a);
        let a2 = press_test(&c, a);
        wait_for_async("two tests at the receiver", || async {
            (receiver.arrived() == 2).then_some(())
        })
        .await;
        refused(
            &c,
            a,
            "2 test deliveries to this webhook are already running (at most 2 at a time)",
        )
        .await;
        // One to `b` runs; then the server's limit is reached, for any webhook.
        let b1 = press_test(&c, b);
        wait_for_async("three tests at the receiver", || async {
            (receiver.arrived() == 3).then_some(())
        })
        .await;
        refused(
            &c,
            b,
            "3 test deliveries are already running on this server (at most 3 at a time)",
        )
        .await;
        assert_eq!(receiver.arrived(), 3, "a refused test sends nothing");

        // Every test waits on its receiver, yet the API and the UI answer.
        let list = Request::get("/n/alice/ci/-/webhooks")
            .header("Host", "127.0.0.1:8080")
            .body(Body::empty())
            .unwrap();
        let answered = tokio::time::timeout(Duration::from_secs(10), app.clone().oneshot(list))
            .await
            .expect("the API answers while tests wait")
            .unwrap();
        assert_eq!(answered.status(), StatusCode::OK);
        let page = tokio::time::timeout(
            Duration::from_secs(10),
            c.clone().get("/ui/n/alice/ci/-/webhooks"),
        )
        .await
        .expect("the UI answers while tests wait");
        assert_eq!(page.status, StatusCode::OK);

        // The browser gives up on one (its request ends): its delivery goes on and is recorded.
        a1.abort();
        assert!(a1.await.unwrap_err().is_cancelled());
        receiver.release();
        for pressed in [a2, b1] {
            let done = pressed.await.unwrap();
            assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
        }
        let tests_of = |hook: i64| {
            let mut filter = DeliveryFilter::hook(hook);
            filter.test = Some(true);
            ui.store.deliveries(filter, Page::new(1)).unwrap().items
        };
        wait_for_async("the abandoned test recorded", || async {
            (tests_of(a).len() == 2).then_some(())
        })
        .await;
        assert!(tests_of(a).iter().all(|d| d.response_status == Some(200)));
        assert_eq!(tests_of(b).len(), 1);

        // Each slot is given back once its delivery has ended: `a` takes tests again.
        let again = wait_for_async("a slot of webhook a back", || {
            let mut c = c.clone();
            async move {
                let page = c.post(&test_path(a), &[("event", "cron")]).await;
                (page.status != StatusCode::TOO_MANY_REQUESTS).then_some(page)
            }
        })
        .await;
        assert_eq!(again.status, StatusCode::SEE_OTHER, "{}", again.body);
        assert_eq!(tests_of(a).len(), 3);
    });
}
