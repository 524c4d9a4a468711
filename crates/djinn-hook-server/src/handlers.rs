//! The API's handlers: the route of a request, its method and body checked, then one handler
//! per route. Store work runs through [`AppState::blocking`], off the async threads.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, Method, StatusCode, Uri, header};
use djinn_hook_payload::{EventType, Payload};
use djinn_hook_sign::headers::EVENT as EVENT_HEADER;
use djinn_hook_store::{
    DEFAULT_ROTATION_OVERLAP, DeliveryFilter, DeliveryLimits, Error as StoreError, LimitsUpdate,
    MAX_ROTATION_OVERLAP, NewEvent, NewWebhook, Page, Recovery, SecretUpdate, Store, Webhook,
    WebhookUpdate, check_idempotency_key,
};
use tracing::Instrument as _;

use crate::app::AppState;
use crate::batch::{self, BatchLimits};
use crate::entity_json::{
    AcceptedJson, BatchAcceptedJson, DeliveryFullJson, DeliveryJson, RedeliveryJson, RotatedJson,
    Urls, WebhookJson, generate_secret,
};
use crate::error::{ApiError, IDEMPOTENCY_KEY};
use crate::metrics;
use crate::paths;
use crate::reply::Reply;
use crate::request_body::{self, CreateWebhook, RotateSecret, UpdateWebhook};
use crate::routes::{self, Call, Route};

type Result<T, E = ApiError> = std::result::Result<T, E>;

/// Every request (the router's fallback): the original's URL shapes do not fit a path
/// pattern router (a namespace has any number of segments before `/-/`), so the [`Route`]
/// extractor decides, then the method, then the body.
pub(crate) async fn api(
    State(state): State<AppState>,
    route: Route,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Reply> {
    let allowed = route.allowed();
    if !allowed.contains(&method) {
        let allow: Vec<&str> = allowed.iter().map(Method::as_str).collect();
        return Err(ApiError::MethodNotAllowed {
            method: method.to_string(),
            allow: allow.join(", "),
        });
    }
    let max_body = match route {
        Route::EventBatch { .. } => state.max_batch_body,
        _ => state.max_body,
    };
    let body = if routes::takes_body(&method) {
        request_body::read(&headers, body, max_body).await?
    } else {
        Bytes::new()
    };
    let query = uri.query().unwrap_or("").to_owned();
    match route {
        Route::Healthz => Ok(Reply::json(
            StatusCode::OK,
            &serde_json::json!({"status": "ok"}),
        )),
        Route::Readyz => Ok(crate::ready::check(&state).await),
        Route::OpenApi => Ok(Reply::bytes(
            StatusCode::OK,
            "application/json",
            crate::openapi::document_text().as_bytes().to_vec(),
        )),
        Route::Schema(event) => Ok(Reply::bytes(
            StatusCode::OK,
            "application/schema+json",
            crate::openapi::event_schema_text(event).into_bytes(),
        )),
        Route::Metrics => {
            let (stats, backend, taken_back, stale) = state
                .blocking(|store, _| {
                    let backend = if store.is_postgres() {
                        "postgres"
                    } else {
                        "sqlite"
                    };
                    let (taken_back, stale) =
                        (store.claims_taken_back(), store.stale_completions());
                    Ok((store.counts()?, backend, taken_back, stale))
                })
                .await?;
            state.metrics.store_counts(backend, taken_back, stale);
            let text = state.metrics.render(&stats);
            Ok(Reply::bytes(
                StatusCode::OK,
                metrics::CONTENT_TYPE,
                text.into_bytes(),
            ))
        }
        Route::Events { ns } => accept_event(&state, ns, &headers, &body).await,
        Route::EventBatch { ns } => accept_batch(&state, ns, &headers, body).await,
        Route::Hooks { ns, at } => {
            let call = at.call(&method).ok_or(ApiError::NoRoute)?;
            let own = (!state.accept_relayed_deliveries).then_some(state.local);
            state
                .blocking(move |store, urls| {
                    let api = Api { store, urls, own };
                    match call {
                        Call::ListWebhooks => api.list_webhooks(&ns),
                        Call::CreateWebhook => api.create_webhook(&ns, &body),
                        Call::ShowWebhook(id) => api.show_webhook(&ns, id),
                        Call::UpdateWebhook(id) => api.update_webhook(&ns, id, &body),
                        Call::DeleteWebhook(id) => api.delete_webhook(&ns, id),
                        Call::RotateSecret(id) => api.rotate_secret(&ns, id, &body),
                        Call::ListDeliveries(id) => api.list_deliveries(&ns, id, &query),
                        Call::ShowDelivery(id, delivery) => api.show_delivery(&ns, id, delivery),
                        Call::Redeliver(id, delivery) => api.redeliver(&ns, id, delivery),
                        Call::Recover(id) => api.recover(&ns, id, &body),
                    }
                })
                .await
        }
    }
}

/// Validates the event with `Payload::parse` and stores its normalised body (in a group
/// commit): 202 with the event id and the number of webhooks matched.
///
/// An unknown namespace is refused by the store's one rule (see `Store::accept_event`: a
/// namespace comes into being with its first webhook): 404 naming it, nothing stored, as
/// `djinn-hooks emit` refuses it.
async fn accept_event(
    state: &AppState,
    ns: String,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Reply> {
    let Some(name) = headers.get(EVENT_HEADER) else {
        return Err(ApiError::invalid(EVENT_HEADER, "is required"));
    };
    let name = name
        .to_str()
        .map_err(|_| ApiError::invalid(EVENT_HEADER, "is not ASCII text"))?;
    let event = EventType::from_name(name.trim())
        .map_err(|err| ApiError::invalid(EVENT_HEADER, err.to_string()))?;
    if !state.accept_relayed_deliveries {
        crate::relay::refuse_delivery(headers)?;
    }
    let key = idempotency_key(headers)?;
    let payload = Payload::parse(event, body).map_err(ApiError::payload)?;
    let span = crate::trace::intake_span(&ns, event.name(), headers);
    let mut new = NewEvent::new(ns, event, payload.to_body());
    new.traceparent = crate::trace::traceparent(&span, headers);
    if let Some(key) = key {
        new = new.with_idempotency_key(key, state.idempotency_window);
    }
    let accepted = state
        .intake
        .accept(new, span.clone())
        .instrument(span)
        .await?;
    state
        .metrics
        .events_accepted(std::slice::from_ref(&accepted));
    let reply = Reply::json(StatusCode::ACCEPTED, &AcceptedJson::new(event, &accepted));
    Ok(if accepted.replayed {
        reply.header(REPLAYED, "true")
    } else {
        reply
    })
}

/// The header set on an answer repeated for an idempotency key (Stripe's name).
const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// The request's `Idempotency-Key`, if it sent one: one header, 1 to 255 printable ASCII
/// characters (surrounding spaces dropped), or 400 naming the header.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>> {
    let mut values = headers.get_all(IDEMPOTENCY_KEY).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::invalid(
            IDEMPOTENCY_KEY,
            "must be sent once, not several times",
        ));
    }
    let key = value
        .to_str()
        .map_err(|_| ApiError::invalid(IDEMPOTENCY_KEY, "is not printable ASCII"))?
        .trim();
    check_idempotency_key(key).map_err(|reason| ApiError::invalid(IDEMPOTENCY_KEY, reason))?;
    Ok(Some(key.to_owned()))
}

/// Checks every event of a batch, then stores them all in one transaction (in a group
/// commit), or none: 202 with each event's answer in order. Idempotency keys are per event
/// (`idempotency_key` of an item); an `Idempotency-Key` header is refused rather than
/// guessed at.
async fn accept_batch(
    state: &AppState,
    ns: String,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Reply> {
    if headers.contains_key(IDEMPOTENCY_KEY) {
        return Err(ApiError::invalid(
            IDEMPOTENCY_KEY,
            "is given per event in a batch: set each item's idempotency_key",
        ));
    }
    if !state.accept_relayed_deliveries {
        crate::relay::refuse_delivery(headers)?;
    }
    let limits = BatchLimits::new(state.max_batch_events, state.max_body);
    // Up to --max-batch-body of JSON to parse and validate: off the async threads.
    let items = tokio::task::spawn_blocking(move || batch::parse(&body, limits))
        .await
        .map_err(|err| ApiError::Internal(format!("checking a batch failed: {err}")))??;
    let types: Vec<EventType> = items.iter().map(|item| item.event).collect();
    let span = crate::trace::intake_span(&ns, "batch", headers);
    let traceparent = crate::trace::traceparent(&span, headers);
    let events = items
        .into_iter()
        .map(|item| {
            let mut new = NewEvent::new(ns.clone(), item.event, item.payload.to_body());
            new.traceparent = traceparent;
            match item.idempotency_key {
                Some(key) => new.with_idempotency_key(key, state.idempotency_window),
                None => new,
            }
        })
        .collect();
    let accepted = state
        .intake
        .accept_all(events, span.clone())
        .instrument(span)
        .await
        .map_err(|err| match err {
            StoreError::IdempotencyConflict { index, .. } => {
                ApiError::BatchConflict { index, source: err }
            }
            other => ApiError::Store(other),
        })?;
    state.metrics.events_accepted(&accepted);
    Ok(Reply::json(
        StatusCode::ACCEPTED,
        &BatchAcceptedJson::new(&types, &accepted),
    ))
}

/// The handlers over the store, run on a blocking thread.
struct Api<'a> {
    store: &'a Store,
    urls: &'a Urls,
    /// The address the server is bound to, for refusing webhooks pointed at its own intake;
    /// `None` when relaying is allowed.
    own: Option<SocketAddr>,
}

impl Api<'_> {
    /// The namespace, or 404.
    fn namespace(&self, ns: &str) -> Result<djinn_hook_store::Namespace> {
        self.store
            .namespace(ns)?
            .ok_or_else(|| ApiError::NotFound(format!("namespace {ns:?} not found")))
    }

    /// The webhook `id` of namespace `ns`, or 404 (a webhook of another namespace is not found).
    fn webhook(&self, ns: &str, id: i64) -> Result<Webhook> {
        match self.store.webhook(id)? {
            Some(hook) if hook.namespace == ns => Ok(hook),
            _ => Err(ApiError::NotFound(format!("webhook {id} not found"))),
        }
    }

    /// The webhook entity of one webhook.
    fn webhook_json(&self, hook: &Webhook) -> Result<WebhookJson> {
        let ns = self.namespace(&hook.namespace)?;
        let last = self.store.last_responses(&[hook.id])?;
        Ok(WebhookJson::new(
            Some(self.urls),
            hook,
            &ns,
            last.get(&hook.id),
        ))
    }

    fn list_webhooks(&self, ns: &str) -> Result<Reply> {
        let namespace = self.namespace(ns)?;
        let hooks = self.store.webhooks(ns)?;
        let ids: Vec<i64> = hooks.iter().map(|h| h.id).collect();
        let last = self.store.last_responses(&ids)?;
        let items: Vec<WebhookJson> = hooks
            .iter()
            .map(|hook| WebhookJson::new(Some(self.urls), hook, &namespace, last.get(&hook.id)))
            .collect();
        Ok(Reply::json(StatusCode::OK, &items))
    }

    /// Creates the webhook, and its namespace if this is the namespace's first webhook.
    fn create_webhook(&self, ns: &str, body: &[u8]) -> Result<Reply> {
        let input: CreateWebhook = request_body::parse(body)?;
        self.refuse_own_intake(input.payload_url.as_deref())?;
        let mut new = NewWebhook::new(ns, input.payload_url.unwrap_or_default());
        if let Some(ssl) = input.ssl {
            new.ssl = ssl;
        }
        new.active = input.active.unwrap_or(true);
        new.events = input.events.unwrap_or_default();
        new.standard_webhooks = input.standard_webhooks.unwrap_or(false);
        new.secret = input.secret.filter(|s| !s.is_empty());
        let mut limits = DeliveryLimits::default();
        limits.max_in_flight = input.max_in_flight;
        limits.timeout = input.timeout_ms.map(Duration::from_millis);
        new.limits = limits;
        new.headers = input.headers.map(|h| h.0).unwrap_or_default();
        let hook = match self.store.create_webhook(new.clone()) {
            Err(StoreError::NamespaceNotFound { .. }) => {
                self.store.ensure_namespace(ns)?;
                self.store.create_webhook(new)
            }
            other => other,
        }?;
        let json = self.webhook_json(&hook)?;
        Ok(Reply::json(StatusCode::CREATED, &json)
            .header(header::LOCATION, self.urls.webhook(ns, hook.id)))
    }

    fn show_webhook(&self, ns: &str, id: i64) -> Result<Reply> {
        let hook = self.webhook(ns, id)?;
        Ok(Reply::json(StatusCode::OK, &self.webhook_json(&hook)?))
    }

    fn update_webhook(&self, ns: &str, id: i64, body: &[u8]) -> Result<Reply> {
        let stored = self.webhook(ns, id)?;
        let input: UpdateWebhook = request_body::parse(body)?;
        self.refuse_own_intake(input.payload_url.as_deref())?;
        let payload_url = input
            .payload_url
            .map(|url| crate::payload_url::kept_payload_url(&url, &stored.payload_url));
        if let Some(problem) = payload_url
            .as_deref()
            .and_then(crate::payload_url::masked_userinfo)
        {
            return Err(ApiError::invalid("payload_url", problem));
        }
        let mut update = WebhookUpdate::default();
        update.payload_url = payload_url;
        update.ssl = input.ssl;
        update.events = input.events.map(Option::unwrap_or_default);
        update.active = input.active;
        update.standard_webhooks = input.standard_webhooks;
        update.secret = match input.secret {
            None => SecretUpdate::Keep,
            Some(Some(secret)) if !secret.is_empty() => SecretUpdate::Set(secret),
            Some(_) => SecretUpdate::Remove,
        };
        update.headers = input.headers.map(|h| h.map(|h| h.0).unwrap_or_default());
        let mut limits = LimitsUpdate::default();
        limits.max_in_flight = input.max_in_flight;
        limits.timeout = input.timeout_ms.map(|ms| ms.map(Duration::from_millis));
        let hook = self.store.update_webhook_with(id, update, limits)?;
        Ok(Reply::json(StatusCode::OK, &self.webhook_json(&hook)?))
    }

    /// A payload URL naming this server's own intake is a loop (see `relay.rs`).
    fn refuse_own_intake(&self, payload_url: Option<&str>) -> Result<()> {
        match (self.own, payload_url) {
            (Some(local), Some(url)) => {
                crate::relay::refuse_own_intake(url, local, &self.urls.base)
            }
            _ => Ok(()),
        }
    }

    /// Rotates the webhook's secret (`Store::rotate_secret`): 200 with the webhook and, when the
    /// body gave no secret, the one generated, shown this once (`Cache-Control: no-store`).
    fn rotate_secret(&self, ns: &str, id: i64, body: &[u8]) -> Result<Reply> {
        self.webhook(ns, id)?;
        let input: RotateSecret = if body.iter().all(u8::is_ascii_whitespace) {
            RotateSecret::default()
        } else {
            request_body::parse(body)?
        };
        let overlap = input
            .overlap_seconds
            .map_or(DEFAULT_ROTATION_OVERLAP, Duration::from_secs);
        if overlap > MAX_ROTATION_OVERLAP {
            return Err(ApiError::invalid(
                "overlap_seconds",
                format!(
                    "must be at most {} (7 days)",
                    MAX_ROTATION_OVERLAP.as_secs()
                ),
            ));
        }
        let (secret, generated) = match input.secret {
            Some(secret) => (secret, None),
            None => {
                let secret = generate_secret().map_err(|err| {
                    ApiError::Internal(format!("generating a secret failed: {err}"))
                })?;
                (secret.clone(), Some(secret))
            }
        };
        let hook = self.store.rotate_secret(id, &secret, overlap)?;
        let json = RotatedJson::new(self.webhook_json(&hook)?, generated);
        Ok(Reply::json(StatusCode::OK, &json).header(header::CACHE_CONTROL, "no-store"))
    }

    fn delete_webhook(&self, ns: &str, id: i64) -> Result<Reply> {
        self.webhook(ns, id)?;
        self.store.delete_webhook(id)?;
        Ok(Reply::empty(StatusCode::NO_CONTENT))
    }

    /// 25 a page, newest first, with a `Link` header to the previous and next pages;
    /// `?test=true` lists only test deliveries (`hook test`), `?test=false` the others.
    fn list_deliveries(&self, ns: &str, id: i64, query: &str) -> Result<Reply> {
        self.webhook(ns, id)?;
        let page = match paths::query_param(query, "page") {
            None => 1,
            Some(raw) => match raw.parse::<u32>() {
                Ok(page) if page >= 1 => page,
                _ => return Err(ApiError::invalid("page", "must be a whole number from 1")),
            },
        };
        let test = match paths::query_param(query, "test").as_deref() {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(_) => return Err(ApiError::invalid("test", "must be true or false")),
        };
        let mut filter = DeliveryFilter::hook(id);
        filter.test = test;
        let paged = self.store.deliveries(filter, Page::new(page))?;
        let items: Vec<DeliveryJson> = paged
            .items
            .iter()
            .map(|d| DeliveryJson::new(d, Some(self.urls.delivery(ns, id, d.id))))
            .collect();
        let base = self.urls.deliveries(ns, id);
        let test = test.map_or_else(String::new, |t| format!("&test={t}"));
        let mut links = Vec::new();
        if paged.page > 1 {
            links.push(format!(
                "<{base}?page={}{test}>; rel=\"prev\"",
                paged.page - 1
            ));
        }
        if paged.has_next {
            links.push(format!(
                "<{base}?page={}{test}>; rel=\"next\"",
                paged.page + 1
            ));
        }
        let mut reply = Reply::json(StatusCode::OK, &items);
        if !links.is_empty() {
            reply = reply.header(header::LINK, links.join(", "));
        }
        Ok(reply)
    }

    /// The delivery `delivery` of webhook `id`, or 404.
    fn delivery(&self, ns: &str, id: i64, delivery: i64) -> Result<djinn_hook_store::Delivery> {
        self.webhook(ns, id)?;
        match self.store.delivery(delivery)? {
            Some(d) if d.hook_id == id => Ok(d),
            _ => Err(ApiError::NotFound(format!("delivery {delivery} not found"))),
        }
    }

    fn show_delivery(&self, ns: &str, id: i64, delivery: i64) -> Result<Reply> {
        let d = self.delivery(ns, id, delivery)?;
        let url = self.urls.delivery(ns, id, d.id);
        Ok(Reply::json(
            StatusCode::OK,
            &DeliveryFullJson::new(&d, Some(url)),
        ))
    }

    /// Queues the recorded request again (same event id, flagged as a redelivery): 202.
    fn redeliver(&self, ns: &str, id: i64, delivery: i64) -> Result<Reply> {
        let d = self.delivery(ns, id, delivery)?;
        let task = self.store.redeliver(delivery)?;
        Ok(Reply::json(
            StatusCode::ACCEPTED,
            &RedeliveryJson::new(&d, task),
        ))
    }

    /// Bulk recovery (`Store::recover`): queues the events of the webhook's (failed)
    /// deliveries in the range, each once, and answers 202 with how many.
    fn recover(&self, ns: &str, id: i64, body: &[u8]) -> Result<Reply> {
        self.webhook(ns, id)?;
        let input: request_body::Recover = request_body::parse(body)?;
        let mut recovery = Recovery::new(id, input.since);
        recovery.until = input.until;
        recovery.failed_only = input.failed_only;
        let queued = crate::recovery::recover_all(self.store, &recovery, drop)?;
        Ok(Reply::json(
            StatusCode::ACCEPTED,
            &crate::entity_json::RecoveredJson::new(queued),
        ))
    }
}
