//! With the `tracing` feature, a span around a store call made inside another span, so the
//! call shows in that span's trace (a request's, the intake's commit); a call outside any span
//! (a worker's claims, polled all day) makes none. Without the feature, nothing.

/// The span of one store call, entered until dropped.
#[cfg(feature = "tracing")]
pub(crate) fn enter(operation: &'static str) -> Option<tracing::span::EnteredSpan> {
    if tracing::Span::current().is_none() {
        return None;
    }
    Some(tracing::info_span!("store", operation).entered())
}

/// Nothing to enter without the `tracing` feature.
#[cfg(not(feature = "tracing"))]
pub(crate) fn enter(_operation: &'static str) -> NoSpan {
    NoSpan
}

/// What [`enter`] returns without the `tracing` feature: held as the span would be.
#[cfg(not(feature = "tracing"))]
pub(crate) struct NoSpan;
