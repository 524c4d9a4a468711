//! `hook create|list|show|update|rotate-secret|delete|test`: managing webhooks.

use std::collections::HashMap;
use std::time::Duration;

use djinn_hook_deliver::{DeliverConfig, Deliverer, Outcome};
use djinn_hook_payload::{EventSet, redact_userinfo};
use djinn_hook_store::{
    DeliveryLimits, LastResponse, LimitsUpdate, Namespace, NewWebhook, SecretUpdate, Store,
    Webhook, WebhookUpdate,
};

use super::output::{self, Table};
use super::store::{self, StoreResult as _};
use super::{Global, invalid};
use crate::cli::{HookCommand, HookCreateArgs, HookRotateArgs, HookUpdateArgs, SecretArgs};
use crate::entity_json::{DeliveryFullJson, RotatedJson, WebhookJson};

/// Runs a `hook` subcommand.
pub(crate) fn run(global: &Global, command: HookCommand) -> anyhow::Result<()> {
    match command {
        HookCommand::Create(args) => create(global, &args),
        HookCommand::List { namespace } => list(global, namespace.as_deref()),
        HookCommand::Show { id } => show(global, id),
        HookCommand::Update(args) => update(global, &args),
        HookCommand::RotateSecret(args) => rotate_secret(global, &args),
        HookCommand::Delete { id } => delete(global, id),
        HookCommand::Test { id, event, network } => {
            test(global, id, &event, network.allow_private_network)
        }
    }
}

/// The secret from `--secret` or `--secret-file` (trailing newline removed).
pub(crate) fn secret(args: &SecretArgs) -> anyhow::Result<Option<String>> {
    if let Some(secret) = &args.secret {
        if secret.is_empty() {
            invalid!("--secret: is empty; leave it out for unsigned deliveries");
        }
        return Ok(Some(secret.clone()));
    }
    let Some(path) = &args.secret_file else {
        return Ok(None);
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) => invalid!("--secret-file: cannot read {}: {err}", path.display()),
    };
    let secret = text.strip_suffix('\n').unwrap_or(&text);
    let secret = secret.strip_suffix('\r').unwrap_or(secret);
    if secret.is_empty() {
        invalid!("--secret-file: {} is empty", path.display());
    }
    Ok(Some(secret.to_owned()))
}

/// A timeout such as `10s` or `500ms` (humantime's syntax, as the other duration flags); the
/// store checks its range.
fn timeout(flag: &str, text: &str) -> anyhow::Result<Duration> {
    match humantime::parse_duration(text) {
        Ok(timeout) => Ok(timeout),
        Err(_) => invalid!("{flag}: {text:?} is not a duration like 10s or 500ms"),
    }
}

/// The `--header 'Name: value'` flags as (name, value); the store checks both.
fn header_flags(flags: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    flags
        .iter()
        .map(|flag| match flag.split_once(':') {
            Some((name, value)) => Ok((name.trim().to_owned(), value.trim().to_owned())),
            // Not quoted: it may be a value alone, a secret.
            None => invalid!("--header: write it as 'Name: value' (no colon in what was given)"),
        })
        .collect()
}

/// The new set of custom headers: the stored names (their values kept with `***`), each one
/// `set` replacing the one of its name or added, those named in `remove` left out.
fn changed_headers(
    stored: &[String],
    set: Vec<(String, String)>,
    remove: &[String],
) -> anyhow::Result<Vec<(String, String)>> {
    for name in remove {
        if !stored.iter().any(|s| s.eq_ignore_ascii_case(name)) {
            invalid!("--remove-header: this webhook has no header {name:?}");
        }
    }
    let mut headers: Vec<(String, String)> = stored
        .iter()
        .filter(|s| !remove.iter().any(|r| r.eq_ignore_ascii_case(s)))
        .map(|name| (name.clone(), djinn_hook_store::KEEP_HEADER_VALUE.to_owned()))
        .collect();
    for (name, value) in set {
        match headers
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(&name))
        {
            Some(kept) => *kept = (name, value),
            None => headers.push((name, value)),
        }
    }
    Ok(headers)
}

/// Event names from `--events` (blank entries dropped; none means all events).
fn events(names: &[String]) -> Vec<String> {
    names
        .iter()
        .map(|n| n.trim())
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect()
}

fn create(global: &Global, args: &HookCreateArgs) -> anyhow::Result<()> {
    let secret = secret(&args.secret)?;
    let mut new = NewWebhook::new(&args.namespace, &args.url);
    if let Some(ssl) = args.ssl() {
        new.ssl = ssl;
    }
    new.events = events(&args.events);
    new.active = !args.inactive;
    new.standard_webhooks = args.standard_webhooks;
    new.secret = secret;
    let mut limits = DeliveryLimits::default();
    limits.max_in_flight = args.max_in_flight;
    limits.timeout = args
        .timeout
        .as_deref()
        .map(|t| timeout("--timeout", t))
        .transpose()?;
    new.limits = limits;
    new.headers = header_flags(&args.headers)?;
    let store = store::open(global)?;
    let hook = create_in(&store, new)?;
    if global.json {
        print_hooks(global, &store, std::slice::from_ref(&hook), true)
    } else {
        outln!("{}", hook.id);
        Ok(())
    }
}

/// Creates a webhook, creating its namespace first when it does not exist yet.
pub(crate) fn create_in(store: &Store, new: NewWebhook) -> anyhow::Result<Webhook> {
    match store.create_webhook(new.clone()) {
        Err(djinn_hook_store::Error::NamespaceNotFound { .. }) => {
            store.ensure_namespace(&new.namespace).or_fail()?;
            store.create_webhook(new).or_fail()
        }
        other => other.or_fail(),
    }
}

fn list(global: &Global, namespace: Option<&str>) -> anyhow::Result<()> {
    let store = store::open(global)?;
    let hooks = match namespace {
        Some(ns) => {
            if store.namespace(ns).or_fail()?.is_none() {
                invalid!("--namespace: no namespace {ns:?}");
            }
            store.webhooks(ns).or_fail()?
        }
        None => store.all_webhooks().or_fail()?,
    };
    print_hooks(global, &store, &hooks, false)
}

fn show(global: &Global, id: i64) -> anyhow::Result<()> {
    let store = store::open(global)?;
    let hook = get(&store, id)?;
    print_hooks(global, &store, std::slice::from_ref(&hook), true)
}

/// The webhook with this id, or a failure naming it.
fn get(store: &Store, id: i64) -> anyhow::Result<Webhook> {
    match store.webhook(id).or_fail()? {
        Some(hook) => Ok(hook),
        None => Err(store::error(djinn_hook_store::Error::WebhookNotFound {
            id,
        })),
    }
}

fn update(global: &Global, args: &HookUpdateArgs) -> anyhow::Result<()> {
    let mut update = WebhookUpdate::default();
    update.payload_url = args.url.clone();
    update.events = args.events.as_deref().map(events);
    if args.ssl {
        update.ssl = Some(true);
    } else if args.no_ssl {
        update.ssl = Some(false);
    }
    if args.active {
        update.active = Some(true);
    } else if args.inactive {
        update.active = Some(false);
    }
    if args.standard_webhooks {
        update.standard_webhooks = Some(true);
    } else if args.no_standard_webhooks {
        update.standard_webhooks = Some(false);
    }
    if args.remove_secret {
        update.secret = SecretUpdate::Remove;
    } else if let Some(secret) = secret(&args.secret)? {
        update.secret = SecretUpdate::Set(secret);
    }
    let mut limits = LimitsUpdate::default();
    limits.max_in_flight = match args.max_in_flight.as_deref() {
        None => None,
        Some("default") => Some(None),
        Some(n) => match n.parse::<u32>() {
            Ok(n) => Some(Some(n)),
            Err(_) => invalid!("--max-in-flight: {n:?} is not a number or `default`"),
        },
    };
    limits.timeout = match args.timeout.as_deref() {
        None => None,
        Some("default") => Some(None),
        Some(t) => Some(Some(timeout("--timeout", t)?)),
    };
    let store = store::open(global)?;
    if !args.headers.is_empty() || !args.remove_headers.is_empty() {
        let stored = get(&store, args.id)?;
        update.headers = Some(changed_headers(
            &stored.headers,
            header_flags(&args.headers)?,
            &args.remove_headers,
        )?);
    }
    if let Some(url) = &update.payload_url {
        // The URL as `hook show` prints it (user-info as ***) keeps the stored credentials.
        let stored = get(&store, args.id)?;
        let url = djinn_hook_server::payload_url::kept_payload_url(url, &stored.payload_url);
        if let Some(problem) = djinn_hook_server::payload_url::masked_userinfo(&url) {
            invalid!("--url: {problem}");
        }
        update.payload_url = Some(url);
    }
    let hook = store
        .update_webhook_with(args.id, update, limits)
        .or_fail()?;
    print_hooks(global, &store, std::slice::from_ref(&hook), true)
}

/// `hook rotate-secret`: the new secret given or generated (and then printed this once).
fn rotate_secret(global: &Global, args: &HookRotateArgs) -> anyhow::Result<()> {
    if args.overlap > djinn_hook_store::MAX_ROTATION_OVERLAP {
        invalid!(
            "--overlap: must be at most 7d, is {}",
            humantime::format_duration(args.overlap)
        );
    }
    let (secret, generated) = match secret(&args.secret)? {
        Some(secret) => (secret, None),
        None => {
            let secret = djinn_hook_sign::StandardSecret::generate()?.to_whsec();
            (secret.clone(), Some(secret))
        }
    };
    let store = store::open(global)?;
    let hook = store
        .rotate_secret(args.id, &secret, args.overlap)
        .or_fail()?;
    if global.json {
        let Some(ns) = store.namespace(&hook.namespace).or_fail()? else {
            anyhow::bail!(
                "webhook {}: its namespace {:?} is not in the store",
                hook.id,
                hook.namespace
            );
        };
        let last = store.last_responses(&[hook.id]).or_fail()?;
        let view = WebhookJson::new(None, &hook, &ns, last.get(&hook.id));
        return output::print_json(&RotatedJson::new(view, generated));
    }
    match hook.secret_rotating_until {
        Some(until) => outln!(
            "rotated the secret of webhook {}: deliveries are signed with the new and the old \
             secret until {}, then with the new one only",
            hook.id,
            output::time(until)
        ),
        None => outln!(
            "rotated the secret of webhook {}: deliveries are signed with the new secret only",
            hook.id
        ),
    }
    if let Some(secret) = generated {
        outln!("new secret (generated; shown only this once): {secret}");
    }
    Ok(())
}

fn delete(global: &Global, id: i64) -> anyhow::Result<()> {
    let store = store::open(global)?;
    store.delete_webhook(id).or_fail()?;
    if global.json {
        output::print_json(&serde_json::json!({ "deleted": id }))
    } else {
        outln!("deleted webhook {id} (with its pending deliveries and its delivery log)");
        Ok(())
    }
}

/// Prints webhooks: JSON (an object for `one`, else an array), a table, or
/// for `one` a field-per-line view.
fn print_hooks(global: &Global, store: &Store, hooks: &[Webhook], one: bool) -> anyhow::Result<()> {
    let ids: Vec<i64> = hooks.iter().map(|h| h.id).collect();
    let last = store.last_responses(&ids).or_fail()?;
    if global.json {
        let namespaces: HashMap<String, Namespace> = store
            .namespaces()
            .or_fail()?
            .into_iter()
            .map(|n| (n.name.clone(), n))
            .collect();
        let mut views = Vec::with_capacity(hooks.len());
        for hook in hooks {
            let Some(ns) = namespaces.get(&hook.namespace) else {
                anyhow::bail!(
                    "webhook {}: its namespace {:?} is not in the store",
                    hook.id,
                    hook.namespace
                );
            };
            views.push(WebhookJson::new(None, hook, ns, last.get(&hook.id)));
        }
        return match views.as_slice() {
            [view] if one => output::print_json(view),
            _ => output::print_json(&views),
        };
    }
    match hooks {
        [hook] if one => {
            print_one(hook, last.get(&hook.id));
            Ok(())
        }
        [] => {
            outln!("no webhooks");
            Ok(())
        }
        _ => {
            let mut table = Table::new(&[
                "id",
                "namespace",
                "url",
                "events",
                "active",
                "secret",
                "last response",
            ]);
            for hook in hooks {
                table.row(vec![
                    hook.id.to_string(),
                    hook.namespace.clone(),
                    redact_userinfo(&hook.payload_url).into_owned(),
                    events_cell(hook.events),
                    active_cell(hook),
                    secret_cell(hook),
                    last_cell(last.get(&hook.id)),
                ]);
            }
            table.print();
            Ok(())
        }
    }
}

fn print_one(hook: &Webhook, last: Option<&LastResponse>) {
    let mut lines: Vec<(&str, String)> = vec![
        ("id", hook.id.to_string()),
        ("namespace", hook.namespace.clone()),
        (
            "payload_url",
            redact_userinfo(&hook.payload_url).into_owned(),
        ),
        ("ssl", hook.ssl.to_string()),
        ("events", hook.events.names().join(",")),
        ("active", active_cell(hook)),
        ("secret", secret_cell(hook)),
        (
            "headers",
            if hook.headers.is_empty() {
                "none".to_owned()
            } else {
                hook.headers
                    .iter()
                    .map(|name| format!("{name}: {}", djinn_hook_store::KEEP_HEADER_VALUE))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        ),
        ("standard_webhooks", hook.standard_webhooks.to_string()),
        (
            "max_in_flight",
            hook.limits
                .max_in_flight
                .map_or_else(|| "the worker's default".to_owned(), |n| n.to_string()),
        ),
        (
            "timeout",
            hook.limits
                .timeout
                .map_or_else(|| "the worker's default".to_owned(), output::duration),
        ),
        ("breaker", breaker_cell(hook)),
        ("delivery_limit", delivery_limit_cell(hook)),
        ("in_flight", hook.in_flight.to_string()),
        ("created_at", output::time(hook.created_at)),
        ("last_response", last_cell(last)),
    ];
    if let Some(reason) = &hook.disabled_reason {
        lines.push(("disabled_reason", reason.clone()));
    }
    for (name, value) in lines {
        outln!("{name:<18} {value}");
    }
}

/// The adaptive limit the worker last recorded for the webhook.
fn delivery_limit_cell(hook: &Webhook) -> String {
    match &hook.delivery_limit {
        None => "at its cap".to_owned(),
        Some(limit) => match limit.paused_until {
            Some(until) if until > time::OffsetDateTime::now_utc() => {
                format!("paused until {} ({})", output::time(until), limit.reason)
            }
            _ => format!("{} at once ({})", limit.limit.max(1), limit.reason),
        },
    }
}

/// The circuit breaker holding the webhook's receiver, as every process on the store shares it.
fn breaker_cell(hook: &Webhook) -> String {
    match &hook.breaker {
        None => "closed".to_owned(),
        Some(hold) => format!(
            "open for {} until {} ({}); deliveries are put off, then one probe goes out",
            hold.destination,
            output::time(hold.until),
            hold.reason
        ),
    }
}

fn events_cell(events: EventSet) -> String {
    if events == EventSet::all() {
        "all".to_owned()
    } else {
        events.names().join(",")
    }
}

fn secret_cell(hook: &Webhook) -> String {
    match (hook.has_secret, hook.secret_rotating_until) {
        (true, Some(until)) => {
            format!("set, old one signed with too until {}", output::time(until))
        }
        (true, None) => "set".to_owned(),
        (false, _) => "not set".to_owned(),
    }
}

fn active_cell(hook: &Webhook) -> String {
    match (hook.active, hook.disabled_reason.as_deref()) {
        (_, Some(reason)) => format!("disabled: {reason}"),
        (true, None) => "yes".to_owned(),
        (false, None) => "no".to_owned(),
    }
}

fn last_cell(last: Option<&LastResponse>) -> String {
    match last {
        None => "-".to_owned(),
        Some(last) => {
            let status = last
                .code
                .map_or_else(|| "no response".to_owned(), |c| c.to_string());
            let mut cell = format!("{status} in {}", output::duration(last.duration));
            if let Some(error) = &last.error {
                cell.push_str(": ");
                cell.push_str(error);
            }
            cell
        }
    }
}

/// `hook test`: delivers the event's example payload to one webhook now, records
/// it in the delivery log, and prints the attempt. A failed attempt (no 2xx) is
/// exit code 1, after the attempt is printed; it is not retried.
fn test(global: &Global, id: i64, event: &str, allow_private_network: bool) -> anyhow::Result<()> {
    let event = super::events::parse_event(event)?;
    let store = store::open(global)?;
    let mut config = DeliverConfig::default();
    config.allow_private_network = allow_private_network;
    let deliverer = Deliverer::new(config);
    let sent = djinn_hook_server::send_test(&store, &deliverer, id, event).or_fail()?;
    let (done, delivery) = (sent.completion, sent.delivery);
    let attempt = &done.attempt;
    if global.json {
        match &delivery {
            Some(delivery) => output::print_json(&DeliveryFullJson::new(delivery, None))?,
            None => anyhow::bail!("hook test {id}: the webhook was deleted during the test"),
        }
    } else {
        let number = delivery
            .as_ref()
            .map_or_else(|| "-".to_owned(), |d| d.id.to_string());
        outln!(
            "test delivery {number}: {event} to hook {id} ({})",
            attempt.url
        );
        outln!("event id:  {}", attempt.event_id);
        outln!(
            "status:    {}",
            attempt.response_status.map_or_else(
                || format!("no response ({})", attempt.outcome),
                |s| s.to_string()
            )
        );
        outln!("duration:  {}", output::duration(attempt.duration));
        if let Some(error) = &attempt.error {
            outln!("error:     {error}");
        }
        if !attempt.response_body.is_empty() {
            outln!("response:  {}", excerpt(&attempt.response_body));
        }
        if let Some(delivery) = &delivery {
            outln!(
                "recorded:  as a test delivery: {} deliveries show {} (full request and response)",
                output::program(),
                delivery.id
            );
        }
    }
    if done.decision.outcome != Outcome::Delivered {
        anyhow::bail!(
            "hook test {id}: the test delivery failed ({}); it is not retried",
            attempt.error.as_deref().unwrap_or(attempt.outcome.as_str())
        );
    }
    Ok(())
}

/// The start of a response body on one line: at most [`EXCERPT`] characters,
/// control characters as spaces, `…` when cut.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut line: String = text
        .chars()
        .take(EXCERPT)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().count() > EXCERPT {
        line.push('…');
    }
    line.trim_end().to_owned()
}

/// How much of a response body `hook test` prints.
const EXCERPT: usize = 200;
