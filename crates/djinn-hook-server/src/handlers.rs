//! The API: one request in, one [`Reply`] out. Authentication, routing, body limits, then a
//! handler per route over the store.

use std::io::Read as _;

use djinn_hook_payload::{EventType, Payload, PayloadError};
use djinn_hook_store::{
    DeliveryFilter, Error as StoreError, NewEvent, NewWebhook, Page, SecretUpdate, Store, Webhook,
    WebhookUpdate,
};
use serde::Serialize;
use tiny_http::{Method, Request};

use super::auth::Tokens;
use super::intake::Intake;
use super::json::{self, BodyError, Urls};
use super::metrics::{self, Metrics};
use super::routes::{self, Route};
use crate::json::{AcceptedJson, DeliveryFullJson, DeliveryJson, RedeliveryJson, WebhookJson};

/// The request header naming a posted event.
const EVENT_HEADER: &str = djinn_hook_payload::EVENT_HEADER;

/// An answer to send.
#[derive(Debug)]
pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) content_type: Option<&'static str>,
    pub(super) headers: Vec<(&'static str, String)>,
    pub(super) body: Vec<u8>,
    /// What went wrong on our side (5xx), for the request's log line; never sent.
    pub(super) error: Option<String>,
}

impl Reply {
    /// Pretty JSON with a trailing newline.
    pub(super) fn json<T: Serialize + ?Sized>(status: u16, value: &T) -> Reply {
        let mut body = serde_json::to_vec_pretty(value).expect("API values serialise");
        body.push(b'\n');
        Reply {
            status,
            content_type: Some("application/json; charset=utf-8"),
            headers: Vec::new(),
            body,
            error: None,
        }
    }

    /// `{"message": …}`, the original's error shape.
    pub(super) fn message(status: u16, message: impl Into<String>) -> Reply {
        #[derive(Serialize)]
        struct Message {
            message: String,
        }
        Reply::json(
            status,
            &Message {
                message: message.into(),
            },
        )
    }

    /// A 400 with `{field: [message]}`, the original's validation error shape.
    fn invalid(field: &str, message: impl Into<String>) -> Reply {
        let mut errors = std::collections::BTreeMap::new();
        errors.insert(field, vec![message.into()]);
        Reply::json(400, &errors)
    }

    /// No body.
    fn empty(status: u16) -> Reply {
        Reply {
            status,
            content_type: None,
            headers: Vec::new(),
            body: Vec::new(),
            error: None,
        }
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }

    /// Turns a failed request body into its 400.
    fn bad_body(err: BodyError) -> Reply {
        match err {
            BodyError::Malformed(message) => Reply::message(400, message),
            BodyError::Field { path, message } => Reply::invalid(&path, message),
        }
    }

    /// A store error as the API answers it.
    fn store(err: StoreError) -> Reply {
        match err {
            StoreError::Invalid(errors) => Reply::json(400, &errors),
            StoreError::NamespaceNotFound { .. }
            | StoreError::InvalidNamespace { .. }
            | StoreError::WebhookNotFound { .. }
            | StoreError::DeliveryNotFound { .. } => Reply::message(404, err.to_string()),
            StoreError::WebhookInactive { .. } | StoreError::RedeliveryBodyUnavailable { .. } => {
                Reply::message(409, err.to_string())
            }
            other => {
                let mut reply = Reply::message(500, format!("internal error: {other}"));
                reply.error = Some(crate::cmd::chain(&other));
                reply
            }
        }
    }
}

/// Early return of an error reply.
type Result<T, E = Reply> = std::result::Result<T, E>;

/// Everything a handler needs; shared by the request threads.
#[derive(Debug)]
pub(super) struct Api<'a> {
    pub(super) store: &'a Store,
    pub(super) metrics: &'a Metrics,
    pub(super) tokens: &'a Tokens,
    pub(super) intake: Intake,
    pub(super) urls: Urls,
    pub(super) max_body: usize,
}

impl Api<'_> {
    /// Answers one request.
    pub(super) fn handle(&self, request: &mut Request) -> Reply {
        match self.try_handle(request) {
            Ok(reply) | Err(reply) => reply,
        }
    }

    fn try_handle(&self, request: &mut Request) -> Result<Reply> {
        let url = request.url().to_owned();
        let (path, query) = url.split_once('?').unwrap_or((&url, ""));
        let method = request.method().clone();
        let route = Route::parse(path);
        if route != Some(Route::Healthz) && !self.tokens.allows(header(request, "Authorization")) {
            // The same answer for a missing and a wrong token, on every path.
            return Ok(Reply::message(401, "unauthorized").header("WWW-Authenticate", "Bearer"));
        }
        let Some(route) = route else {
            return Ok(Reply::message(404, "not found"));
        };
        if !route.allowed().contains(&method) {
            let allow: Vec<&str> = route.allowed().iter().map(Method::as_str).collect();
            return Ok(Reply::message(405, format!("method {method} not allowed"))
                .header("Allow", allow.join(", ")));
        }
        let body = if route.takes_body(&method) {
            self.read_body(request)?
        } else {
            Vec::new()
        };
        match (route, method) {
            (Route::Healthz, _) => Ok(Reply::json(200, &serde_json::json!({"status": "ok"}))),
            (Route::Metrics, _) => self.metrics(),
            (Route::Webhooks { ns }, Method::Get) => self.list_webhooks(&ns),
            (Route::Webhooks { ns }, _) => self.create_webhook(&ns, &body),
            (Route::Webhook { ns, id }, Method::Get) => self.show_webhook(&ns, id),
            (Route::Webhook { ns, id }, Method::Patch) => self.update_webhook(&ns, id, &body),
            (Route::Webhook { ns, id }, _) => self.delete_webhook(&ns, id),
            (Route::Deliveries { ns, id }, _) => self.list_deliveries(&ns, id, query),
            (Route::Delivery { ns, id, delivery }, _) => self.show_delivery(&ns, id, delivery),
            (Route::Redeliver { ns, id, delivery }, _) => self.redeliver(&ns, id, delivery),
            (Route::Events { ns }, _) => self.accept_event(&ns, request, &body),
        }
    }

    /// Reads at most `max_body` bytes; 413 beyond (a declared length over the limit is refused
    /// before reading anything).
    fn read_body(&self, request: &mut Request) -> Result<Vec<u8>> {
        let too_large = || too_large(self.max_body);
        if request.body_length().is_some_and(|n| n > self.max_body) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        let limit = u64::try_from(self.max_body)
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        if let Err(err) = request.as_reader().take(limit).read_to_end(&mut body) {
            return Err(Reply::message(
                400,
                format!("cannot read the request body: {err}"),
            ));
        }
        if body.len() > self.max_body {
            return Err(too_large());
        }
        Ok(body)
    }

    fn metrics(&self) -> Result<Reply> {
        let stats = self.store.stats().map_err(Reply::store)?;
        let mut reply = Reply::empty(200);
        reply.content_type = Some(metrics::CONTENT_TYPE);
        reply.body = self.metrics.render(&stats).into_bytes();
        Ok(reply)
    }

    /// The namespace, or 404.
    fn namespace(&self, ns: &str) -> Result<djinn_hook_store::Namespace> {
        self.store
            .namespace(ns)
            .map_err(Reply::store)?
            .ok_or_else(|| Reply::message(404, format!("namespace {ns:?} not found")))
    }

    /// The webhook `id` of namespace `ns`, or 404 (a webhook of another namespace is not found).
    fn webhook(&self, ns: &str, id: i64) -> Result<Webhook> {
        match self.store.webhook(id).map_err(Reply::store)? {
            Some(hook) if hook.namespace == ns => Ok(hook),
            _ => Err(Reply::message(404, format!("webhook {id} not found"))),
        }
    }

    /// The webhook entity of one webhook.
    fn webhook_json(&self, hook: &Webhook) -> Result<WebhookJson> {
        let ns = self.namespace(&hook.namespace)?;
        let last = self
            .store
            .last_responses(&[hook.id])
            .map_err(Reply::store)?;
        Ok(WebhookJson::new(
            Some(&self.urls),
            hook,
            &ns,
            last.get(&hook.id),
        ))
    }

    fn list_webhooks(&self, ns: &str) -> Result<Reply> {
        let namespace = self.namespace(ns)?;
        let hooks = self.store.webhooks(ns).map_err(Reply::store)?;
        let ids: Vec<i64> = hooks.iter().map(|h| h.id).collect();
        let last = self.store.last_responses(&ids).map_err(Reply::store)?;
        let items: Vec<WebhookJson> = hooks
            .iter()
            .map(|hook| WebhookJson::new(Some(&self.urls), hook, &namespace, last.get(&hook.id)))
            .collect();
        Ok(Reply::json(200, &items))
    }

    /// Creates the webhook, and its namespace if this is the namespace's first webhook.
    fn create_webhook(&self, ns: &str, body: &[u8]) -> Result<Reply> {
        let input: json::CreateWebhook = json::parse_body(body).map_err(Reply::bad_body)?;
        let mut new = NewWebhook::new(ns, input.payload_url.unwrap_or_default());
        if let Some(ssl) = input.ssl {
            new.ssl = ssl;
        }
        new.active = input.active.unwrap_or(true);
        new.events = input.events.unwrap_or_default();
        new.standard_webhooks = input.standard_webhooks.unwrap_or(false);
        new.secret = input.secret.filter(|s| !s.is_empty());
        let hook = match self.store.create_webhook(new.clone()) {
            Err(StoreError::NamespaceNotFound { .. }) => {
                self.store.ensure_namespace(ns).map_err(Reply::store)?;
                self.store.create_webhook(new)
            }
            other => other,
        }
        .map_err(Reply::store)?;
        let json = self.webhook_json(&hook)?;
        Ok(Reply::json(201, &json).header("Location", self.urls.webhook(ns, hook.id)))
    }

    fn show_webhook(&self, ns: &str, id: i64) -> Result<Reply> {
        let hook = self.webhook(ns, id)?;
        Ok(Reply::json(200, &self.webhook_json(&hook)?))
    }

    fn update_webhook(&self, ns: &str, id: i64, body: &[u8]) -> Result<Reply> {
        self.webhook(ns, id)?;
        let input: json::UpdateWebhook = json::parse_body(body).map_err(Reply::bad_body)?;
        let update = WebhookUpdate {
            payload_url: input.payload_url,
            ssl: input.ssl,
            events: input.events.map(Option::unwrap_or_default),
            active: input.active,
            standard_webhooks: input.standard_webhooks,
            secret: match input.secret {
                None => SecretUpdate::Keep,
                Some(Some(secret)) if !secret.is_empty() => SecretUpdate::Set(secret),
                Some(_) => SecretUpdate::Remove,
            },
        };
        let hook = self
            .store
            .update_webhook(id, update)
            .map_err(Reply::store)?;
        Ok(Reply::json(200, &self.webhook_json(&hook)?))
    }

    fn delete_webhook(&self, ns: &str, id: i64) -> Result<Reply> {
        self.webhook(ns, id)?;
        self.store.delete_webhook(id).map_err(Reply::store)?;
        Ok(Reply::empty(204))
    }

    /// 25 a page, newest first, with a `Link` header to the previous and next pages;
    /// `?test=true` lists only test deliveries (`hook test`), `?test=false` the others.
    fn list_deliveries(&self, ns: &str, id: i64, query: &str) -> Result<Reply> {
        self.webhook(ns, id)?;
        let page = match routes::query_param(query, "page") {
            None => 1,
            Some(raw) => match raw.parse::<u32>() {
                Ok(page) if page >= 1 => page,
                _ => return Err(Reply::invalid("page", "must be a whole number from 1")),
            },
        };
        let test = match routes::query_param(query, "test").as_deref() {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(_) => return Err(Reply::invalid("test", "must be true or false")),
        };
        let filter = DeliveryFilter {
            test,
            ..DeliveryFilter::hook(id)
        };
        let paged = self
            .store
            .deliveries(filter, Page::new(page))
            .map_err(Reply::store)?;
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
        let mut reply = Reply::json(200, &items);
        if !links.is_empty() {
            reply = reply.header("Link", links.join(", "));
        }
        Ok(reply)
    }

    /// The delivery `delivery` of webhook `id`, or 404.
    fn delivery(&self, ns: &str, id: i64, delivery: i64) -> Result<djinn_hook_store::Delivery> {
        self.webhook(ns, id)?;
        match self.store.delivery(delivery).map_err(Reply::store)? {
            Some(d) if d.hook_id == id => Ok(d),
            _ => Err(Reply::message(
                404,
                format!("delivery {delivery} not found"),
            )),
        }
    }

    fn show_delivery(&self, ns: &str, id: i64, delivery: i64) -> Result<Reply> {
        let d = self.delivery(ns, id, delivery)?;
        let url = self.urls.delivery(ns, id, d.id);
        Ok(Reply::json(200, &DeliveryFullJson::new(&d, Some(url))))
    }

    /// Queues the recorded request again (same event id, flagged as a redelivery): 202.
    fn redeliver(&self, ns: &str, id: i64, delivery: i64) -> Result<Reply> {
        let d = self.delivery(ns, id, delivery)?;
        let task = self.store.redeliver(delivery).map_err(Reply::store)?;
        Ok(Reply::json(202, &RedeliveryJson::new(&d, task)))
    }

    /// Validates the event with `Payload::parse` and stores its normalised body: 202 with the
    /// event id and the number of webhooks matched.
    fn accept_event(&self, ns: &str, request: &Request, body: &[u8]) -> Result<Reply> {
        let Some(name) = header(request, EVENT_HEADER) else {
            return Err(Reply::invalid(EVENT_HEADER, "is required"));
        };
        let event = EventType::from_name(name.trim())
            .map_err(|err| Reply::invalid(EVENT_HEADER, err.to_string()))?;
        let payload = Payload::parse(event, body).map_err(payload_error)?;
        let accepted = self
            .intake
            .accept(NewEvent {
                namespace: ns.to_owned(),
                event,
                payload: payload.to_body(),
            })
            .map_err(Reply::store)?;
        self.metrics.event_accepted();
        Ok(Reply::json(202, &AcceptedJson::new(event, &accepted)))
    }
}

/// A payload that failed to parse: malformed JSON as a message, a bad field under its JSON path.
fn payload_error(err: PayloadError) -> Reply {
    match &err {
        PayloadError::Syntax {
            line,
            column,
            message,
            ..
        } => Reply::message(
            400,
            format!("malformed JSON at line {line} column {column}: {message}"),
        ),
        PayloadError::Field { path, message, .. } => Reply::invalid(
            if path.is_empty() { "payload" } else { path },
            message.clone(),
        ),
        PayloadError::Rule { path, message, .. } => Reply::invalid(path, message.clone()),
        _ => Reply::invalid("payload", err.to_string()),
    }
}

/// The first value of a request header.
fn header<'r>(request: &'r Request, name: &str) -> Option<&'r str> {
    request
        .headers()
        .iter()
        .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

/// The 413 for a body over `max_body` bytes.
pub(super) fn too_large(max_body: usize) -> Reply {
    Reply::message(413, format!("request body larger than {max_body} bytes"))
}
