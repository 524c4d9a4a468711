//! Form bodies: parsed once by the guard (CSRF) and read by the handlers; the webhook form.

use djinn_hook_payload::{EventType, redact_userinfo};
use std::time::Duration;

use djinn_hook_store::{
    DeliveryLimits, NewWebhook, SecretUpdate, ValidationErrors, Webhook, WebhookUpdate,
};

/// A POSTed `application/x-www-form-urlencoded` body, fields in order (a field may repeat:
/// one `events` per ticked box). A request extension, put there by the guard.
#[derive(Clone, Debug, Default)]
pub(crate) struct Form(Vec<(String, String)>);

impl Form {
    pub(crate) fn parse(body: &[u8]) -> Form {
        Form(form_urlencoded::parse(body).into_owned().collect())
    }

    /// The first value of `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub(crate) fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the checkbox `name` was ticked (present at all: unticked boxes are not sent).
    pub(crate) fn checked(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

/// The create / edit form's fields as typed. The secret is kept only to be applied, never
/// to be shown again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HookForm {
    pub(crate) payload_url: String,
    pub(crate) ssl: bool,
    pub(crate) active: bool,
    pub(crate) standard_webhooks: bool,
    pub(crate) events: Vec<String>,
    pub(crate) remove_secret: bool,
    /// Whether the stored webhook has a secret (edit only; shown as "a secret is set").
    pub(crate) has_secret: bool,
    /// Why the delivery layer disabled the stored webhook, and since when (edit only).
    pub(crate) disabled: Option<String>,
    /// The open breaker holding its deliveries (edit only), as `view::breaker_line` says it.
    pub(crate) breaker: String,
    /// Its delivery limits in words (edit only), e.g. `at most 2 deliveries at once, each
    /// cut off after 5s`; the worker's defaults where it has none of its own.
    pub(crate) limits: String,
    /// The webhook's own cap on deliveries at once, as typed; empty: the worker's default.
    pub(crate) max_in_flight: String,
    /// The webhook's own per-attempt timeout in milliseconds, as typed; empty: the worker's.
    pub(crate) timeout_ms: String,
    /// The custom headers, one `Name: value` a line; a stored one shows as `Name: ***`
    /// (posted back as it is, it keeps its stored value).
    pub(crate) headers: String,
}

impl HookForm {
    /// A new webhook's defaults: active, certificates verified, every event ticked.
    pub(crate) fn blank() -> HookForm {
        HookForm {
            payload_url: String::new(),
            ssl: true,
            active: true,
            standard_webhooks: false,
            events: EventType::ALL.iter().map(|e| e.name().to_owned()).collect(),
            remove_secret: false,
            has_secret: false,
            disabled: None,
            breaker: String::new(),
            limits: String::new(),
            max_in_flight: String::new(),
            timeout_ms: String::new(),
            headers: String::new(),
        }
    }

    /// A stored webhook's values; the payload URL as shown, its user-info as `***`.
    pub(crate) fn of(hook: &Webhook) -> HookForm {
        HookForm {
            payload_url: redact_userinfo(&hook.payload_url).into_owned(),
            ssl: hook.ssl,
            active: hook.active,
            standard_webhooks: hook.standard_webhooks,
            events: hook.events.names().into_iter().map(str::to_owned).collect(),
            remove_secret: false,
            has_secret: hook.has_secret,
            breaker: super::view::breaker_line(hook),
            limits: super::view::limits_line(hook),
            max_in_flight: hook
                .limits
                .max_in_flight
                .map_or_else(String::new, |n| n.to_string()),
            timeout_ms: hook
                .limits
                .timeout
                .map_or_else(String::new, |t| t.as_millis().to_string()),
            headers: hook
                .headers
                .iter()
                .map(|name| format!("{name}: {}\n", djinn_hook_store::KEEP_HEADER_VALUE))
                .collect(),
            disabled: hook
                .disabled_reason
                .as_ref()
                .map(|reason| match hook.disabled_at {
                    Some(at) => format!("{reason} (since {})", super::view::when(at)),
                    None => reason.clone(),
                }),
        }
    }

    /// What was posted, and the secret typed (if any). `stored` is the webhook being
    /// edited (its secret and disabled state are shown again if the form is refused; its
    /// payload URL is kept, credentials and all, when the one posted is as the form showed it).
    pub(crate) fn posted(form: &Form, stored: Option<&Webhook>) -> (HookForm, Option<String>) {
        let secret = form
            .get("secret")
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        let posted_url = form.get("payload_url").unwrap_or("").trim();
        let fields = HookForm {
            payload_url: match stored {
                Some(hook) => crate::payload_url::kept_payload_url(posted_url, &hook.payload_url),
                None => posted_url.to_owned(),
            },
            ssl: form.checked("ssl"),
            active: form.checked("active"),
            standard_webhooks: form.checked("standard_webhooks"),
            events: form.all("events").map(str::to_owned).collect(),
            remove_secret: form.checked("remove_secret"),
            max_in_flight: form.get("max_in_flight").unwrap_or("").trim().to_owned(),
            timeout_ms: form.get("timeout").unwrap_or("").trim().to_owned(),
            headers: form.get("headers").unwrap_or("").to_owned(),
            ..stored.map_or_else(HookForm::blank, HookForm::of)
        };
        (fields, secret)
    }

    /// Whether the box for `event` is ticked.
    pub(crate) fn has_event(&self, event: &EventType) -> bool {
        self.events.iter().any(|e| e == event.name())
    }

    /// The webhook to create in `ns`, with its delivery limits as [`limits`](Self::limits) read
    /// them.
    pub(crate) fn new_webhook(
        &self,
        ns: &str,
        secret: Option<String>,
        limits: DeliveryLimits,
    ) -> NewWebhook {
        let mut new = NewWebhook::new(ns, self.payload_url.clone());
        new.ssl = self.ssl;
        new.events = self.events.clone();
        new.active = self.active;
        new.standard_webhooks = self.standard_webhooks;
        new.secret = secret;
        new.limits = limits;
        new
    }

    /// The delivery limits as typed (an empty field: the worker's default). A field that is
    /// not a whole number is an error under it, and reads as unset; the store checks the
    /// ranges.
    pub(crate) fn limits(&self, errors: &mut ValidationErrors) -> DeliveryLimits {
        let number = |field: &'static str,
                      typed: &str,
                      what: &str,
                      errors: &mut ValidationErrors| {
            if typed.is_empty() {
                return None;
            }
            let n = typed.parse::<u64>().ok();
            if n.is_none() {
                errors.add(
                    field,
                    format!("must be a whole number of {what}, or empty for the worker's default"),
                );
            }
            n
        };
        let mut limits = DeliveryLimits::default();
        limits.max_in_flight = number("max_in_flight", &self.max_in_flight, "deliveries", errors)
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX));
        limits.timeout =
            number("timeout", &self.timeout_ms, "milliseconds", errors).map(Duration::from_millis);
        limits
    }

    /// The custom headers as a refused form shows them again: no value typed is sent back
    /// (they are secrets, as the secret is not), a header of a `stored` name as `Name: ***`
    /// (kept if saved so), any other as `Name: ` to be typed again; a line that is no header is
    /// left out (it may be a value alone).
    pub(crate) fn masked_headers(&self, stored: &[String]) -> String {
        let mask = djinn_hook_store::KEEP_HEADER_VALUE;
        self.headers
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| match line.split_once(':') {
                Some((name, _)) if stored.iter().any(|s| s.eq_ignore_ascii_case(name.trim())) => {
                    format!("{}: {mask}\n", name.trim())
                }
                Some((name, _)) => format!("{}: \n", name.trim()),
                None => String::new(),
            })
            .collect()
    }

    /// The custom headers as typed, one `Name: value` a line (blank lines skipped); a line
    /// without a colon is an error under the field. The store checks names and values.
    pub(crate) fn header_pairs(&self, errors: &mut ValidationErrors) -> Vec<(String, String)> {
        let mut pairs = Vec::new();
        for (n, line) in self.headers.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match line.split_once(':') {
                Some((name, value)) => {
                    pairs.push((name.trim().to_owned(), value.trim().to_owned()))
                }
                // The line is not quoted: it may be a value alone, a secret.
                None => errors.add(
                    "headers",
                    format!("line {}: write each header as `Name: value`", n + 1),
                ),
            }
        }
        pairs
    }

    /// The update: every field as posted. A typed secret replaces the stored one; "remove
    /// secret" removes it; neither keeps it.
    pub(crate) fn update(&self, secret: Option<String>) -> WebhookUpdate {
        let mut update = WebhookUpdate::default();
        update.payload_url = Some(self.payload_url.clone());
        update.ssl = Some(self.ssl);
        update.events = Some(self.events.clone());
        update.active = Some(self.active);
        update.standard_webhooks = Some(self.standard_webhooks);
        update.secret = match (secret, self.remove_secret) {
            (Some(secret), _) => SecretUpdate::Set(secret),
            (None, true) => SecretUpdate::Remove,
            (None, false) => SecretUpdate::Keep,
        };
        update
    }
}
