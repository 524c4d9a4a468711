//! Log lines on stderr through `tracing`, written as logfmt (`key=value`, values quoted when they
//! hold spaces or quotes) by `tracing-logfmt`: one per request, one per delivery (the same from
//! `serve` and `worker`), and the server's start and stop. Never a secret, a token, an
//! `Authorization` header, a payload URL (it may carry credentials) or a body.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, OriginalUri, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use djinn_hook_deliver::{Completion, WorkerEvent};
use djinn_hook_store::LivenessEvent;
use time::format_description::well_known::Rfc3339;
use tower_http::request_id::RequestId;
use tracing_subscriber::layer::SubscriberExt as _;

use crate::error::{ErrorDetail, chain};
use crate::metrics::Metrics;

/// Sends `tracing` events to stderr as logfmt lines, unless the program installed its own
/// subscriber first.
pub fn install() {
    let subscriber = tracing_subscriber::registry().with(logfmt());
    // Already set (a library user's own subscriber, or a second server in one process): keep it.
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// [`install`], and the spans (the intake, its commit, the store's calls for them) exported
/// through `tracer` as OpenTelemetry spans. The program makes the tracer from the provider it
/// installs as OpenTelemetry's global one, which exports the delivery attempts' spans.
#[cfg(feature = "otel")]
pub fn install_with_tracer<T>(tracer: T)
where
    T: opentelemetry::trace::Tracer + Send + Sync + 'static,
    T::Span: Send + Sync,
{
    let spans = tracing_opentelemetry::layer().with_tracer(tracer);
    let subscriber = tracing_subscriber::registry().with(logfmt()).with(spans);
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// The logfmt layer: events only, without their spans' names (a span's fields still show).
fn logfmt<S>() -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    tracing_logfmt::builder()
        .with_target(false)
        .with_span_name(false)
        .with_span_path(false)
        .layer()
        .with_writer(std::io::stderr)
}

/// A duration in milliseconds, three decimals.
pub(crate) fn millis(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

/// The request layer: one log line per request (method, path without the query, status,
/// duration, remote address, request id; for a 5xx what went wrong) and the request counter.
/// The path is the one the client asked for, with the mount of an application that nests the
/// router (`/hooks/n/…`), as its own log lines show it.
pub(crate) async fn request(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let start = Instant::now();
    let method = request.method().clone();
    let path = request
        .extensions()
        .get::<OriginalUri>()
        .map_or_else(|| request.uri().path(), |OriginalUri(uri)| uri.path())
        .to_owned();
    let remote = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.to_string());
    let id = request
        .extensions()
        .get::<RequestId>()
        .and_then(|id| id.header_value().to_str().ok())
        .map(str::to_owned);
    let response = next.run(request).await;
    let status = response.status().as_u16();
    metrics.request(status);
    let error = response
        .extensions()
        .get::<ErrorDetail>()
        .map(|e| e.0.as_str());
    let duration_ms = millis(start.elapsed());
    macro_rules! line {
        ($level:ident) => {
            tracing::$level!(
                msg = "request",
                method = method.as_str(),
                path,
                status,
                duration_ms,
                remote,
                request_id = id,
                error
            )
        };
    }
    if status >= 500 {
        line!(error);
    } else {
        line!(info);
    }
    response
}

/// The log line of a worker's event: one per committed delivery attempt (`msg=delivery`), and
/// one for each store failure and breaker change. `serve` and `worker` write the same lines.
pub fn worker_event(event: &WorkerEvent<'_>) {
    match event {
        WorkerEvent::Completed(done) => {
            delivery(done);
            attempt_span(done);
        }
        WorkerEvent::ClaimFailed(error) => {
            tracing::error!(msg = "claiming tasks failed", error = chain(*error));
        }
        WorkerEvent::CompleteFailed {
            error,
            batch,
            retry_in,
        } => tracing::error!(
            msg = "recording attempts failed",
            error = chain(*error),
            batch,
            retry_in_ms = millis(*retry_in),
        ),
        WorkerEvent::Abandoned(batch) => tracing::error!(
            msg = "gave up recording attempts; their tasks are claimed again when their leases run out",
            batch = batch.len(),
        ),
        WorkerEvent::BreakerOpened {
            destination,
            reason,
            open_for,
        } => tracing::warn!(
            msg = "breaker open: the receiver's deliveries are put off, then one probe goes out",
            destination = %destination,
            reason,
            open_for_ms = millis(*open_for),
        ),
        WorkerEvent::BreakerClosed { destination } => tracing::info!(
            msg = "breaker closed: the receiver's deliveries resume",
            destination = %destination,
        ),
        WorkerEvent::PutOffFailed { error, tasks } => tracing::error!(
            msg = "putting tasks off failed; they come back when their leases run out",
            error = chain(*error),
            tasks,
        ),
        _ => {}
    }
}

/// The log line of a look for dead processes: claims taken back from one found dead
/// (`msg="took back claims: …"`), or a look that failed. The same from `serve` and `worker`.
pub fn liveness(event: LivenessEvent<'_>) {
    match event {
        LivenessEvent::TakenBack(taken) => {
            let process = &taken.process;
            tracing::warn!(
                msg = "took back claims: their process is gone, its tasks are due again",
                process = %process.id,
                pid = process.pid,
                host = process.host,
                started_at = process.started_at.format(&Rfc3339).ok(),
                tasks = taken.tasks,
            );
        }
        LivenessEvent::LookFailed(err) => tracing::error!(
            msg = "looking for dead processes failed; their claims come back at the next look, or when their leases run out",
            error = chain(err),
        ),
        _ => {}
    }
}

/// The log line of a stopping process handing back what it still holds: after its shutdown
/// timeout ran out (`timeout`), or after a clean stop (a line only if anything was left).
pub fn handed_back(outcome: &djinn_hook_store::Result<u64>, timeout: Option<Duration>) {
    match (outcome, timeout) {
        (Ok(tasks), Some(timeout)) => tracing::warn!(
            msg = "shutdown timeout: handed back the deliveries still under way",
            tasks,
            timeout_ms = millis(timeout),
        ),
        (Ok(0), None) => {}
        (Ok(tasks), None) => tracing::info!(msg = "handed back claimed tasks", tasks),
        (Err(err), _) => tracing::error!(
            msg =
                "handing back claimed tasks failed; they come back once this process is seen gone",
            error = chain(err),
        ),
    }
}

/// Exports a committed attempt as a span of its event's trace, if it has one (with the `otel`
/// feature; [`worker_event`] does it for every attempt it logs). Without the feature, nothing.
pub fn attempt_span(done: &Completion) {
    #[cfg(feature = "otel")]
    crate::trace::attempt_span(done);
    #[cfg(not(feature = "otel"))]
    let _ = done;
}

/// The line for one committed delivery attempt: the attempt's `result` and the task's
/// `outcome` in their own words ([`AttemptOutcome`](djinn_hook_deliver::AttemptOutcome),
/// [`Outcome`]).
fn delivery(done: &Completion) {
    let attempt = &done.attempt;
    tracing::info!(
        msg = "delivery",
        event = attempt.event.name(),
        event_id = %attempt.event_id,
        hook = attempt.hook_id,
        attempt = attempt.attempt,
        redelivery = attempt.redelivery,
        status = attempt
            .response_status
            .map_or_else(|| "none".to_owned(), |s| s.to_string()),
        result = attempt.outcome.as_str(),
        duration_ms = millis(attempt.duration),
        outcome = done.decision.outcome.as_str(),
        retry_at = done
            .decision
            .outcome
            .retry_at()
            .and_then(|at| at.format(&Rfc3339).ok()),
        disabled_hook = done.decision.disable_hook.as_deref(),
        error = attempt.error.as_deref(),
    );
}
