//! Shared by the tests and the drain bench (which includes this file with `#[path]`): an axum
//! app served on 127.0.0.1, a receiver that records deliveries, and a throw-away PostgreSQL
//! database (djinn-hook-testkit's).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use djinn_hook_sign::headers;

/// A receiver on 127.0.0.1 that answers 200 after `delay` and records the event id
/// (`X-Djinn-CI-Delivery`) of every request: axum on a runtime of its own thread.
pub(crate) fn receiver(delay: Duration) -> (String, Arc<Mutex<Vec<String>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&got);
    let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap| {
        let sink = Arc::clone(&sink);
        async move {
            let id = headers
                .get(headers::DELIVERY)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            sink.lock().unwrap().push(id);
            axum::http::StatusCode::OK
        }
    });
    (format!("http://{}/hook", serve(app)), got)
}

/// Serves `app` on 127.0.0.1 (a free port) from a runtime on a thread of its own, for the rest
/// of the test; its address.
pub(crate) fn serve(app: axum::Router) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    addr
}

/// A database created on the server for one test (or bench run), dropped when the value is.
pub(crate) use djinn_hook_testkit::ScratchDatabase as Scratch;

/// The PostgreSQL server from `DJINN_TEST_POSTGRES_URL`; `None` (the test says it was not
/// run) when unset, unless `DJINN_TEST_POSTGRES_REQUIRED=1`.
pub(crate) fn postgres_server() -> Option<String> {
    match std::env::var("DJINN_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert_ne!(
                std::env::var("DJINN_TEST_POSTGRES_REQUIRED").as_deref(),
                Ok("1"),
                "DJINN_TEST_POSTGRES_REQUIRED=1 but DJINN_TEST_POSTGRES_URL is unset"
            );
            // Written to stderr itself, not through `eprintln!`, which the test harness captures:
            // whoever runs `cargo test` sees what did not run.
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                b"NOT RUN: a PostgreSQL test (DJINN_TEST_POSTGRES_URL is unset; see README)\n",
            );
            None
        }
    }
}
