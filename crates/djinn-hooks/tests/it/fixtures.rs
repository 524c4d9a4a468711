//! Shared by the tests and the drain bench (which includes this file with `#[path]`): a
//! receiver that records deliveries, and a throw-away PostgreSQL database.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use djinn_hook_sign::headers;

/// A receiver on 127.0.0.1 that answers 200 after `delay` and records the event id
/// (`X-Djinn-CI-Delivery`) of every request: axum on a runtime of its own thread.
pub(crate) fn receiver(delay: Duration) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
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
    (url, got)
}

/// A database created on the server for one test (or bench run), dropped when the value is.
pub(crate) struct Scratch {
    server: String,
    name: String,
    /// The URL of the database.
    pub(crate) url: String,
}

impl Scratch {
    pub(crate) fn create(server: &str) -> Scratch {
        static MADE: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "djinn_test_{}_{}",
            std::process::id(),
            MADE.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = postgres::Client::connect(server, postgres::NoTls).unwrap();
        // Two statements: CREATE DATABASE cannot share a (multi-statement) transaction.
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        // The server's URL with its database replaced (no query string in test URLs).
        let at = server
            .rfind('/')
            .expect("a postgres:// URL with a database");
        Scratch {
            server: server.to_owned(),
            url: format!("{}/{name}", &server[..at]),
            name,
        }
    }
}

impl Scratch {
    /// Terminates every connection to the database and drops it, now (a database server
    /// gone mid-run, as far as its clients can tell).
    pub(crate) fn drop_now(&self) {
        let mut admin = postgres::Client::connect(&self.server, postgres::NoTls).unwrap();
        admin
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = $1 AND pid <> pg_backend_pid()",
                &[&self.name],
            )
            .unwrap();
        admin
            .batch_execute(&format!("DROP DATABASE {} WITH (FORCE)", self.name))
            .unwrap();
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Ok(mut admin) = postgres::Client::connect(&self.server, postgres::NoTls) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

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
