//! `/metrics`: counters fed by the request handlers and the worker's observer, gauges read from
//! `Store::stats` at scrape time, encoded by `prometheus-client` (OpenMetrics text).

use std::sync::OnceLock;
use std::sync::atomic::AtomicI64;

use djinn_hook_deliver::{BreakerMonitor, Completion, LimitMonitor};
use djinn_hook_store::Counts;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// The `Content-Type` of `/metrics`.
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Labels of a committed delivery attempt.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    /// What happens to the task: `delivered`, `retry` or `failed`.
    outcome: &'static str,
    /// How the attempt went: `success`, `http_status`, `timeout`, `connect_refused`, ...
    result: &'static str,
}

/// Labels of a webhook's gauges.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HookLabels {
    hook: i64,
}

/// Labels of a count kept per store backend.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackendLabels {
    /// `sqlite` or `postgres`.
    backend: &'static str,
}

/// Labels of an answered API request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    code: u16,
}

/// Every metric of `serve`.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    events_accepted: Counter,
    idempotent_replays: Counter,
    deliveries: Family<DeliveryLabels, Counter>,
    delivery_duration: Histogram,
    hooks_disabled_by_worker: Counter,
    requests: Family<RequestLabels, Counter>,
    tasks_pending: Gauge<i64, AtomicI64>,
    tasks_leased: Gauge<i64, AtomicI64>,
    tasks_failed: Gauge<i64, AtomicI64>,
    webhooks_disabled: Gauge<i64, AtomicI64>,
    breakers_open: Gauge<i64, AtomicI64>,
    tasks_held: Gauge<i64, AtomicI64>,
    /// The worker's breakers, read at scrape time (set once the worker is known).
    breakers: OnceLock<BreakerMonitor>,
    hook_limit: Family<HookLabels, Gauge<i64, AtomicI64>>,
    hook_in_flight: Family<HookLabels, Gauge<i64, AtomicI64>>,
    /// The worker's adaptive limits, read at scrape time (set once the worker is known).
    limits: OnceLock<LimitMonitor>,
    pruned_deliveries: Counter,
    pruned_events: Counter,
    prune_failures: Counter,
    claims_taken_back: Family<BackendLabels, Counter>,
    stale_completions: Counter,
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        let mut registry = Registry::with_prefix("djinn_hooks");
        let events_accepted = Counter::default();
        registry.register(
            "events_accepted",
            "Events stored by POST /n/:username/:path/-/events and …/events/batch",
            events_accepted.clone(),
        );
        let idempotent_replays = Counter::default();
        registry.register(
            "idempotent_replays",
            "Events answered again for an idempotency key already used, storing nothing",
            idempotent_replays.clone(),
        );
        let deliveries = Family::<DeliveryLabels, Counter>::default();
        registry.register(
            "deliveries",
            "Delivery attempts recorded, by what happens to the task (delivered, retry, failed) and how the attempt went",
            deliveries.clone(),
        );
        // 1 ms to about 65 s: a local receiver up to the one-minute timeout.
        let delivery_duration = Histogram::new(exponential_buckets(0.001, 2.0, 17));
        registry.register_with_unit(
            "delivery_duration",
            "Duration of delivery attempts, from connect to the end of the response body",
            Unit::Seconds,
            delivery_duration.clone(),
        );
        let hooks_disabled_by_worker = Counter::default();
        registry.register(
            "webhook_disables",
            "Webhooks disabled by the worker since start (410 Gone, failing too long)",
            hooks_disabled_by_worker.clone(),
        );
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "API requests answered, by status code",
            requests.clone(),
        );
        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let gauge = Gauge::<i64, AtomicI64>::default();
            registry.register(name, help, gauge.clone());
            gauge
        };
        let tasks_pending = gauge(
            &mut registry,
            "tasks_pending",
            "Delivery tasks waiting for an attempt: new ones and scheduled retries (from the store)",
        );
        let tasks_leased = gauge(
            &mut registry,
            "tasks_leased",
            "Delivery tasks claimed by a worker, attempt in progress (from the store)",
        );
        let tasks_failed = gauge(
            &mut registry,
            "tasks_failed",
            "Delivery tasks given up on, kept for a manual retry (from the store)",
        );
        let webhooks_disabled = gauge(
            &mut registry,
            "webhooks_disabled",
            "Webhooks currently disabled by the delivery layer (from the store)",
        );
        let breakers_open = gauge(
            &mut registry,
            "breakers_open",
            "Receivers (scheme, host, port) whose circuit breaker is open or probing (shared by every process on the store)",
        );
        let tasks_held = gauge(
            &mut registry,
            "tasks_held",
            "Delivery tasks put off by an open circuit breaker, without an attempt (from the worker)",
        );
        let hook_limit = Family::<HookLabels, Gauge<i64, AtomicI64>>::default();
        registry.register(
            "webhook_delivery_limit",
            "Deliveries at once a webhook may have now, for webhooks the worker holds below their cap or pauses (0) after a 429 or 503 (from the worker)",
            hook_limit.clone(),
        );
        let hook_in_flight = Family::<HookLabels, Gauge<i64, AtomicI64>>::default();
        registry.register(
            "webhook_deliveries_in_flight",
            "Deliveries under way of the webhooks in djinn_hooks_webhook_delivery_limit, and of those whose receiver answers slowly (from the worker)",
            hook_in_flight.clone(),
        );
        let pruned_deliveries = Counter::default();
        registry.register(
            "pruned_deliveries",
            "Delivery attempts removed by the automatic prune since start",
            pruned_deliveries.clone(),
        );
        let pruned_events = Counter::default();
        registry.register(
            "pruned_events",
            "Finished events removed by the automatic prune since start",
            pruned_events.clone(),
        );
        let prune_failures = Counter::default();
        registry.register(
            "prune_failures",
            "Automatic prunes that failed (tried again at the next turn)",
            prune_failures.clone(),
        );
        let claims_taken_back = Family::<BackendLabels, Counter>::default();
        registry.register(
            "claims_taken_back",
            "Claimed tasks taken back from processes found dead (due again at once, not when their leases run out), by store backend",
            claims_taken_back.clone(),
        );
        let stale_completions = Counter::default();
        registry.register(
            "stale_completions",
            "Attempts recorded after their task's lease was lost (it ran out, or was taken back): the task may have been delivered again (at least once)",
            stale_completions.clone(),
        );
        Metrics {
            claims_taken_back,
            stale_completions,
            pruned_deliveries,
            pruned_events,
            prune_failures,
            registry,
            events_accepted,
            idempotent_replays,
            deliveries,
            delivery_duration,
            hooks_disabled_by_worker,
            requests,
            tasks_pending,
            tasks_leased,
            tasks_failed,
            webhooks_disabled,
            breakers_open,
            tasks_held,
            breakers: OnceLock::new(),
            hook_limit,
            hook_in_flight,
            limits: OnceLock::new(),
        }
    }

    /// Reads the worker's adaptive limits at each scrape from now on.
    pub(crate) fn watch_limits(&self, limits: LimitMonitor) {
        let _ = self.limits.set(limits);
    }

    /// Reads the worker's circuit breakers at each scrape from now on.
    pub(crate) fn watch_breakers(&self, breakers: BreakerMonitor) {
        let _ = self.breakers.set(breakers);
    }

    /// Brings the counts kept by the store up to its `taken_back` and `stale` (they only grow).
    pub(crate) fn store_counts(&self, backend: &'static str, taken_back: u64, stale: u64) {
        let taken = self
            .claims_taken_back
            .get_or_create(&BackendLabels { backend });
        taken.inc_by(taken_back.saturating_sub(taken.get()));
        self.stale_completions
            .inc_by(stale.saturating_sub(self.stale_completions.get()));
    }

    /// Counts what an automatic prune removed, or that it failed.
    pub(crate) fn pruned(&self, outcome: Result<&djinn_hook_store::Pruned, ()>) {
        match outcome {
            Ok(pruned) => {
                self.pruned_deliveries.inc_by(pruned.deliveries);
                self.pruned_events.inc_by(pruned.events);
            }
            Err(()) => {
                self.prune_failures.inc();
            }
        }
    }

    /// Events accepted (stored, or answered again for their idempotency key).
    pub(crate) fn events_accepted(&self, accepted: &[djinn_hook_store::Accepted]) {
        let replays = accepted.iter().filter(|a| a.replayed).count() as u64;
        self.events_accepted.inc_by(accepted.len() as u64 - replays);
        if replays > 0 {
            self.idempotent_replays.inc_by(replays);
        }
    }

    /// One API request answered.
    pub(crate) fn request(&self, code: u16) {
        self.requests.get_or_create(&RequestLabels { code }).inc();
    }

    /// One attempt committed by the worker.
    pub(crate) fn delivery(&self, done: &Completion) {
        self.deliveries
            .get_or_create(&DeliveryLabels {
                outcome: done.decision.outcome.as_str(),
                result: done.attempt.outcome.as_str(),
            })
            .inc();
        self.delivery_duration
            .observe(done.attempt.duration.as_secs_f64());
        if done.decision.disable_hook.is_some() {
            self.hooks_disabled_by_worker.inc();
        }
    }

    /// The exposition text, with the gauges set from `stats`.
    pub(crate) fn render(&self, stats: &Counts) -> String {
        let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.tasks_pending.set(as_i64(stats.pending));
        self.tasks_leased.set(as_i64(stats.leased));
        self.tasks_failed.set(as_i64(stats.failed));
        self.webhooks_disabled.set(as_i64(stats.disabled_hooks));
        // Shared by every process on the store: the store's count, not this worker's.
        self.breakers_open.set(as_i64(stats.open_breakers));
        if let Some(breakers) = self.breakers.get() {
            let as_i64 = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
            self.tasks_held.set(as_i64(breakers.tasks_held()));
        }
        if let Some(limits) = self.limits.get() {
            let as_i64 = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
            // Only the webhooks limited now: the others' series end.
            self.hook_limit.clear();
            self.hook_in_flight.clear();
            for status in limits.statuses() {
                let labels = HookLabels {
                    hook: status.hook_id,
                };
                if status.reason.is_some() || status.limit < status.cap {
                    self.hook_limit
                        .get_or_create(&labels)
                        .set(as_i64(status.limit));
                }
                self.hook_in_flight
                    .get_or_create(&labels)
                    .set(as_i64(status.in_flight));
            }
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}
