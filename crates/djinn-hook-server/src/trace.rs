//! Traces: the intake's span and the `traceparent` stored with its event, and (with the `otel`
//! feature) each delivery attempt as a span of that trace.
//!
//! The crate only makes spans, with `tracing` (the intake, its commit, the store's calls made
//! for them) and, for an attempt, with the OpenTelemetry API's global tracer (an attempt's
//! span is made after it ended, with its own start time, duration and span id, which the
//! `tracing` bridge cannot set). The program installs the tracer provider and the `tracing`
//! layer ([`crate::log::install_with_tracer`]); without them every span here is a no-op.
//!
//! Without the `otel` feature, or with it but no provider installed, the intake stores the
//! client's own `traceparent` if it sent one, so deliveries still continue the client's trace.

use axum::http::HeaderMap;
use djinn_hook_deliver::TraceParent;
use djinn_hook_sign::headers::TRACEPARENT;

/// The intake request's span. Its parent is the client's trace when the request carries a
/// valid `traceparent` (and a tracer is installed).
pub(crate) fn intake_span(namespace: &str, event: &str, headers: &HeaderMap) -> tracing::Span {
    let span = tracing::info_span!("intake", namespace, event);
    #[cfg(feature = "otel")]
    if let Some(client) = client_traceparent(headers) {
        otel::continue_trace(&span, client);
    }
    #[cfg(not(feature = "otel"))]
    let _ = headers;
    span
}

/// What to store with the event: the intake span's own context when it is exported, else the
/// client's `traceparent`, else none.
pub(crate) fn traceparent(span: &tracing::Span, headers: &HeaderMap) -> Option<TraceParent> {
    #[cfg(feature = "otel")]
    if let Some(own) = otel::traceparent_of(span) {
        return Some(own);
    }
    #[cfg(not(feature = "otel"))]
    let _ = span;
    client_traceparent(headers)
}

/// The request's `traceparent`, if valid (an invalid one is ignored, as the specification
/// asks).
fn client_traceparent(headers: &HeaderMap) -> Option<TraceParent> {
    headers
        .get(TRACEPARENT)
        .and_then(|value| value.to_str().ok())
        .and_then(TraceParent::parse)
}

#[cfg(feature = "otel")]
pub use otel::AttemptIds;
#[cfg(feature = "otel")]
pub(crate) use otel::attempt_span;

#[cfg(feature = "otel")]
mod otel {
    use std::cell::Cell;
    use std::time::SystemTime;

    use djinn_hook_deliver::Completion;
    use djinn_hook_deliver::TraceParent;
    use djinn_hook_sign::headers::TRACEPARENT;
    use opentelemetry::trace::{
        Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt as _, TraceFlags,
        TraceId, TraceState, Tracer as _,
    };
    use opentelemetry::{Context, KeyValue, global};
    use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;

    /// The name the crate's tracer goes by.
    const TRACER: &str = "djinn-hooks";

    thread_local! {
        /// The id the next span made on this thread gets ([`AttemptIds`]).
        static PRESET: Cell<Option<SpanId>> = const { Cell::new(None) };
    }

    /// The span ids a tracer provider should draw, for the attempts' spans to be the parents
    /// of the receivers' (`SdkTracerProvider::builder().with_id_generator(AttemptIds)`).
    ///
    /// An attempt sends its `traceparent` before its span exists: its span is made once the
    /// attempt is recorded, with the attempt's own times, and the OpenTelemetry API has no way
    /// to give a new span a chosen id. This generator is random, as the SDK's own, except for
    /// that one span, whose id it takes from what the attempt sent. With another generator an
    /// attempt's span gets a random id, and a receiver's span names a parent the trace lacks.
    #[derive(Clone, Copy, Debug, Default)]
    pub struct AttemptIds;

    impl IdGenerator for AttemptIds {
        fn new_trace_id(&self) -> TraceId {
            RandomIdGenerator::default().new_trace_id()
        }

        fn new_span_id(&self) -> SpanId {
            PRESET
                .take()
                .unwrap_or_else(|| RandomIdGenerator::default().new_span_id())
        }
    }

    /// The remote context `traceparent` names.
    fn remote(traceparent: TraceParent) -> Context {
        let context = SpanContext::new(
            TraceId::from_bytes(traceparent.trace_id),
            SpanId::from_bytes(traceparent.span_id),
            TraceFlags::new(traceparent.flags),
            true,
            TraceState::default(),
        );
        Context::new().with_remote_span_context(context)
    }

    /// Makes `span` a child of the client's trace.
    pub(super) fn continue_trace(span: &tracing::Span, client: TraceParent) {
        // An error means the span is disabled or no OpenTelemetry layer is installed: then
        // the client's traceparent is stored as it came.
        let _ = span.set_parent(remote(client));
    }

    /// `span`'s OpenTelemetry context as a `traceparent`, if it has a valid one (a tracer is
    /// installed and the span was not filtered out).
    pub(super) fn traceparent_of(span: &tracing::Span) -> Option<TraceParent> {
        let context = span.context();
        let own = context.span().span_context().clone();
        own.is_valid().then(|| TraceParent {
            trace_id: own.trace_id().to_bytes(),
            span_id: own.span_id().to_bytes(),
            flags: own.trace_flags().to_u8(),
        })
    }

    /// Exports a committed attempt as a span of its event's trace: a child of the intake's
    /// span, with the id the attempt sent in its `traceparent` header (so the receiver's span
    /// is its child), its start and duration, the destination host, status, result and attempt
    /// number. Nothing for an event without a trace.
    pub(crate) fn attempt_span(done: &Completion) {
        let attempt = &done.attempt;
        let Some(parent) = attempt.traceparent else {
            return;
        };
        let sent = attempt
            .request_headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(TRACEPARENT))
            .and_then(|(_, value)| TraceParent::parse(value));
        let host = url::Url::parse(&attempt.url)
            .ok()
            .and_then(|url| url.host_str().map(str::to_owned))
            .unwrap_or_default();
        let start = SystemTime::from(attempt.created_at);
        let mut attributes = vec![
            KeyValue::new("server.address", host),
            KeyValue::new("http.request.method", "POST"),
            KeyValue::new("djinn.attempt", i64::from(attempt.attempt)),
            KeyValue::new("djinn.attempt.result", attempt.outcome.as_str()),
            KeyValue::new("djinn.task.outcome", done.decision.outcome.as_str()),
            KeyValue::new("djinn.hook.id", attempt.hook_id),
            KeyValue::new("djinn.event.id", attempt.event_id.to_string()),
            KeyValue::new("djinn.event.type", attempt.event.name()),
        ];
        if let Some(status) = attempt.response_status {
            attributes.push(KeyValue::new(
                "http.response.status_code",
                i64::from(status),
            ));
        }
        let tracer = global::tracer(TRACER);
        let builder = tracer
            .span_builder("delivery attempt")
            .with_kind(SpanKind::Client)
            .with_start_time(start)
            .with_attributes(attributes);
        PRESET.set(sent.map(|sent| SpanId::from_bytes(sent.span_id)));
        let mut span = builder.start_with_context(&tracer, &remote(parent));
        // Not drawn (no provider, or another generator): not left for an unrelated span.
        PRESET.set(None);
        if !attempt.is_success() {
            let why = attempt
                .error
                .clone()
                .unwrap_or_else(|| attempt.outcome.as_str().into());
            span.set_status(Status::error(why));
        }
        span.end_with_timestamp(start + attempt.duration);
    }
}
