//! `/readyz`: whether this server can do its work now, for load balancers and orchestrators
//! (`/healthz` says only that the process answers). Two checks: the database is reached on a
//! connection of its own (`Store::check_reachable`), and the in-process delivery worker has not
//! stopped (`serve` runs one; a router an application serves without a worker skips it).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::http::StatusCode;
use serde::Serialize;

use crate::app::AppState;
use crate::error::chain;
use crate::reply::Reply;

/// Whether the worker `serve` runs is running: set while it runs, cleared when its thread ends,
/// even by a panic ([`WorkerGuard`]).
#[derive(Clone, Debug, Default)]
pub(crate) struct WorkerFlag(Arc<AtomicBool>);

impl WorkerFlag {
    /// Marks the worker running until the guard is dropped.
    pub(crate) fn running(&self) -> WorkerGuard {
        self.0.store(true, Ordering::SeqCst);
        WorkerGuard(Arc::clone(&self.0))
    }

    fn is_running(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Clears the [`WorkerFlag`] when the worker's thread ends.
#[derive(Debug)]
pub(crate) struct WorkerGuard(Arc<AtomicBool>);

impl Drop for WorkerGuard {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// The answer of `/readyz`: 200 when every check passed, else 503 naming the checks that
/// failed. Why the database could not be reached is logged, not sent (no token is needed here).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Readiness)]
pub(crate) struct ReadyJson {
    /// `ready` or `unavailable`.
    #[schema(value_type = String, pattern = "^(ready|unavailable)$")]
    status: &'static str,
    /// The checks that failed, in the order of `checks`: empty when ready.
    #[schema(value_type = Vec<String>)]
    failed: Vec<&'static str>,
    /// Each check's result.
    checks: ChecksJson,
}

/// Each check's result.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = ReadinessChecks)]
pub(crate) struct ChecksJson {
    /// `ok`, or `unreachable` when a fresh read of the database failed.
    #[schema(value_type = String, pattern = "^(ok|unreachable)$")]
    database: &'static str,
    /// `running`, `stopped`, or `none` when this server runs no worker of its own.
    #[schema(value_type = String, pattern = "^(running|stopped|none)$")]
    worker: &'static str,
}

/// Runs the checks; a failed one is logged with its cause.
pub(crate) async fn check(state: &AppState) -> Reply {
    let database = match state.blocking(|store, _| Ok(store.check_reachable())).await {
        Ok(Ok(())) => None,
        Ok(Err(err)) => Some(chain(&err)),
        Err(err) => Some(chain(&err)),
    };
    let worker = match &state.worker {
        None => "none",
        Some(flag) if flag.is_running() => "running",
        Some(_) => "stopped",
    };
    let mut failed = Vec::new();
    if database.is_some() {
        failed.push("database");
    }
    if worker == "stopped" {
        failed.push("worker");
    }
    let status = if failed.is_empty() {
        StatusCode::OK
    } else {
        tracing::warn!(
            msg = "not ready",
            failed = failed.join(","),
            database = database.as_deref(),
            worker,
        );
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = ReadyJson {
        status: if failed.is_empty() {
            "ready"
        } else {
            "unavailable"
        },
        failed,
        checks: ChecksJson {
            database: if database.is_some() {
                "unreachable"
            } else {
                "ok"
            },
            worker,
        },
    };
    Reply::json(status, &body).header(axum::http::header::CACHE_CONTROL, "no-store")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::{Body, to_bytes};
    use axum::http::{Request, StatusCode, header};
    use djinn_hook_store::{SecretKey, Store};
    use tower::ServiceExt as _;

    use super::WorkerFlag;
    use crate::{AppState, Config, Tokens, router};

    async fn readyz(worker: Option<WorkerFlag>) -> (StatusCode, serde_json::Value) {
        let config = Config::new(
            "127.0.0.1:0",
            Tokens::new(["a-token-of-all-scopes"]).unwrap(),
        )
        .unwrap();
        let store = Arc::new(Store::open_in_memory(SecretKey::from_bytes([7; 32])).unwrap());
        let mut state = AppState::new(&config, store, "127.0.0.1:8080".parse().unwrap(), || {});
        state.worker = worker;
        let response = router(state)
            .oneshot(
                Request::get("/readyz")
                    .header(header::HOST, "127.0.0.1:8080")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = response.status();
        let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn a_stopped_worker_is_503_a_running_one_and_none_200() {
        let flag = WorkerFlag::default();
        let running = flag.running();
        let (status, body) = readyz(Some(flag.clone())).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["checks"]["worker"], "running");

        drop(running); // the worker's thread ended
        let (status, body) = readyz(Some(flag)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            body,
            serde_json::json!({
                "status": "unavailable",
                "failed": ["worker"],
                "checks": {"database": "ok", "worker": "stopped"},
            })
        );

        let (status, body) = readyz(None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["checks"]["worker"], "none");
    }

    /// A panicking worker clears the flag too (the guard's drop runs while unwinding).
    #[test]
    fn a_panicking_worker_is_stopped() {
        let flag = WorkerFlag::default();
        let in_thread = flag.clone();
        let joined = std::thread::spawn(move || {
            let _running = in_thread.running();
            panic!("the worker failed");
        })
        .join();
        assert!(joined.is_err());
        assert!(!flag.is_running());
    }
}
