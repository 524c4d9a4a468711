//! The page handlers: the index, a namespace's webhooks, the form, a delivery, and the
//! POST actions (create, update, delete, test, redeliver), each answered with a 303.

use std::collections::{BTreeMap, HashMap};

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use djinn_hook_payload::{EventType, redact_userinfo};
use djinn_hook_store::{
    DeliveryFilter, Error as StoreError, LimitsUpdate, Page, Paged, ValidationErrors, Webhook,
};

use super::access::{cannot_read, may_get, may_post};
use super::blocking;
use super::error::UiError;
use super::flash::Flash;
use super::form::{Form, HookForm};
use super::paths::{self, Links, Target};
use super::render::{render, render_with, see_other};
use super::state::UiState;
use super::templates::{
    DeliveryPage, EditExtras, FilterView, FormPage, IndexPage, ListPage, NamespaceRow, SecretPage,
};
use super::view::{DeliveryRow, DeliveryView, Health, HookRow, banner};
use super::visitor::Visitor;
use crate::paths::NamespacePath;

type Result<T, E = UiError> = std::result::Result<T, E>;

/// `GET /ui/`: every namespace the visitor may see that has webhooks, with their health.
pub(crate) async fn index(
    State(state): State<UiState>,
    Extension(visitor): Extension<Visitor>,
    Extension(links): Extension<Links>,
    uri: Uri,
) -> Result<Response> {
    let Some(access) = visitor.access.clone() else {
        return Err(UiError::SignIn {
            next: uri.path().to_owned(),
        });
    };
    if !access.can_read {
        return Err(cannot_read());
    }
    let (hooks, last) = blocking::store(&state, |store| {
        let hooks = store.all_webhooks()?;
        let ids: Vec<i64> = hooks.iter().map(|h| h.id).collect();
        let last = store.last_responses(&ids)?;
        Ok::<_, StoreError>((hooks, last))
    })
    .await?;
    let mut by_ns: BTreeMap<String, NamespaceRow> = BTreeMap::new();
    for hook in hooks.iter().filter(|h| access.allows(&h.namespace)) {
        let row = by_ns
            .entry(hook.namespace.clone())
            .or_insert_with(|| NamespaceRow {
                name: hook.namespace.clone(),
                href: links.webhooks(&hook.namespace),
                hooks: 0,
                ok: 0,
                failed: 0,
                never: 0,
                inactive: 0,
            });
        row.hooks += 1;
        if !hook.active {
            row.inactive += 1;
        }
        match Health::of(last.get(&hook.id)) {
            Health::Ok => row.ok += 1,
            Health::Failed => row.failed += 1,
            Health::Never => row.never += 1,
        }
    }
    render(IndexPage {
        visitor,
        links,
        title: "Namespaces".into(),
        namespaces: by_ns.into_values().collect(),
    })
}

/// `GET /ui/go?ns=owner/path`: the index's "open a namespace" box.
pub(crate) async fn go(
    Extension(links): Extension<Links>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let ns = query.get("ns").map_or("", |s| s.trim().trim_matches('/'));
    // A namespace opens if the link to it names it again (see `paths::page`).
    let opens = paths::page(&Links::at("").webhooks(ns)).is_some_and(|page| page.ns == ns);
    if opens {
        Redirect::to(&links.webhooks(ns)).into_response()
    } else {
        see_other(
            &links.home(),
            Flash::failed(format!(
                "{ns:?} is not a namespace: expected owner/path, e.g. alice/ci"
            )),
        )
    }
}

/// `GET /ui/n/{rest}`.
pub(crate) async fn get(
    State(state): State<UiState>,
    Extension(visitor): Extension<Visitor>,
    Extension(links): Extension<Links>,
    NamespacePath { ns, at: target }: NamespacePath<Target>,
    Query(query): Query<HashMap<String, String>>,
    uri: Uri,
) -> Result<Response> {
    may_get(visitor.access.as_ref(), &ns, target, &uri)?;
    match target {
        Target::List => list(state, visitor, links, ns).await,
        Target::Create => form_page(
            visitor,
            &links,
            &ns,
            HookForm::blank(),
            ValidationErrors::default(),
            None,
        ),
        Target::Hook(id) => {
            let hook = hook_in(&state, &ns, id).await?;
            edit_page(
                &state,
                visitor,
                &links,
                &hook,
                HookForm::of(&hook),
                ValidationErrors::default(),
                &query,
            )
            .await
        }
        Target::Delivery(id, delivery) => {
            delivery_page(state, visitor, links, ns, id, delivery).await
        }
        Target::Delete(_)
        | Target::Test(_)
        | Target::RotateSecret(_)
        | Target::Redeliver(..)
        | Target::Recover(_) => Err(UiError::Status(
            StatusCode::METHOD_NOT_ALLOWED,
            "this address takes a form (POST) only".into(),
        )),
    }
}

/// `POST /ui/n/{rest}`: every change, behind a CSRF token (checked by the guard).
pub(crate) async fn post(
    State(state): State<UiState>,
    Extension(visitor): Extension<Visitor>,
    Extension(links): Extension<Links>,
    NamespacePath { ns, at: target }: NamespacePath<Target>,
    Extension(form): Extension<Form>,
    uri: Uri,
) -> Result<Response> {
    may_post(visitor.access.as_ref(), &ns, &uri)?;
    match target {
        Target::Create => create(state, visitor, links, ns, form).await,
        Target::Hook(id) => update(state, visitor, links, ns, id, form).await,
        Target::Delete(id) => delete(state, visitor, links, ns, id).await,
        Target::Test(id) => test(state, visitor, links, ns, id, form).await,
        Target::RotateSecret(id) => rotate_secret(state, visitor, links, ns, id, form).await,
        Target::Redeliver(id, delivery) => redeliver(state, links, ns, id, delivery).await,
        Target::Recover(id) => recover(state, links, ns, id, form).await,
        Target::List | Target::Delivery(..) => Err(UiError::Status(
            StatusCode::METHOD_NOT_ALLOWED,
            "nothing to post here".into(),
        )),
    }
}

async fn list(state: UiState, visitor: Visitor, links: Links, ns: String) -> Result<Response> {
    let name = ns.clone();
    let (hooks, last, rates) = blocking::store(&state, move |store| {
        let hooks = store.webhooks(&name)?;
        let ids: Vec<i64> = hooks.iter().map(|h| h.id).collect();
        let last = store.last_responses(&ids)?;
        let day_ago = time::OffsetDateTime::now_utc() - time::Duration::days(1);
        let rates = store.success_rates(&ids, day_ago)?;
        Ok::<_, StoreError>((hooks, last, rates))
    })
    .await?;
    render(ListPage {
        visitor,
        title: format!("{ns} - Webhooks"),
        create_href: links.create(&ns),
        banners: hooks.iter().filter_map(banner).collect(),
        hooks: hooks
            .iter()
            .map(|h| HookRow::new(&links, h, last.get(&h.id), rates.get(&h.id)))
            .collect(),
        links,
        ns,
    })
}

/// The webhook `id`, if it belongs to `ns` (else 404: ids are not guessed across namespaces).
async fn hook_in(state: &UiState, ns: &str, id: i64) -> Result<Webhook> {
    let hook = blocking::store(state, move |store| store.webhook(id)).await?;
    hook.filter(|h| h.namespace == ns)
        .ok_or_else(|| UiError::NotFound(format!("webhook {id} not found in {ns}")))
}

/// The create or edit form: 200, or 422 when it shows `errors`.
fn form_page(
    visitor: Visitor,
    links: &Links,
    ns: &str,
    form: HookForm,
    errors: ValidationErrors,
    edit: Option<(i64, EditExtras)>,
) -> Result<Response> {
    let (title, action, edit) = match edit {
        None => ("Create webhook".to_owned(), links.create(ns), None),
        Some((id, extras)) => (format!("Webhook {id}"), links.hook(ns, id), Some(extras)),
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    render_with(
        status,
        FormPage {
            visitor,
            links: links.clone(),
            title,
            ns: ns.to_owned(),
            list_href: links.webhooks(ns),
            action,
            form,
            errors,
            edit,
        },
    )
}

/// The edit page: the form (stored values, or what was posted with its errors) and the
/// recent deliveries, filtered and paged by the query.
async fn edit_page(
    state: &UiState,
    visitor: Visitor,
    links: &Links,
    hook: &Webhook,
    form: HookForm,
    errors: ValidationErrors,
    query: &HashMap<String, String>,
) -> Result<Response> {
    let view = FilterView {
        failed: query.get("failed").is_some_and(|v| !v.is_empty()),
        event: query
            .get("event")
            .filter(|e| EventType::from_name(e).is_ok())
            .cloned()
            .unwrap_or_default(),
        test: query
            .get("test")
            .filter(|t| *t == "only" || *t == "none")
            .cloned()
            .unwrap_or_default(),
    };
    let page: u32 = query
        .get("page")
        .and_then(|p| p.parse().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1);
    let mut filter = DeliveryFilter::hook(hook.id);
    filter.event_type = EventType::from_name(&view.event).ok();
    filter.failed_only = view.failed;
    filter.test = match view.test.as_str() {
        "only" => Some(true),
        "none" => Some(false),
        _ => None,
    };
    let paged: Paged<_> = blocking::store(state, move |store| {
        store.deliveries(filter, Page::new(page))
    })
    .await?;
    let href = links.hook(&hook.namespace, hook.id);
    let page_href = |page: u32| {
        let mut query = form_urlencoded::Serializer::new(String::new());
        if view.failed {
            query.append_pair("failed", "1");
        }
        if !view.event.is_empty() {
            query.append_pair("event", &view.event);
        }
        if !view.test.is_empty() {
            query.append_pair("test", &view.test);
        }
        query.append_pair("page", &page.to_string());
        format!("{href}?{}#recent", query.finish())
    };
    let extras = EditExtras {
        delete_action: format!("{href}/delete"),
        test_action: format!("{href}/test"),
        rotate_action: format!("{href}/rotate-secret"),
        recover_action: format!("{href}/recover"),
        rotating_until: hook.secret_rotating_until.map(super::view::when),
        test_event: hook
            .events
            .iter()
            .next()
            .unwrap_or(EventType::BuildSubmitted)
            .name(),
        prev_href: (paged.page > 1).then(|| page_href(paged.page - 1)),
        next_href: paged.has_next.then(|| page_href(paged.page + 1)),
        deliveries: paged
            .items
            .iter()
            .map(|d| DeliveryRow::new(links, &hook.namespace, d))
            .collect(),
        filter: view,
    };
    form_page(
        visitor,
        links,
        &hook.namespace,
        form,
        errors,
        Some((hook.id, extras)),
    )
}

async fn delivery_page(
    state: UiState,
    visitor: Visitor,
    links: Links,
    ns: String,
    id: i64,
    delivery: i64,
) -> Result<Response> {
    let hook = hook_in(&state, &ns, id).await?;
    let found = blocking::store(&state, move |store| store.delivery(delivery)).await?;
    let d = found.filter(|d| d.hook_id == id).ok_or_else(|| {
        UiError::NotFound(format!("delivery {delivery} not found for webhook {id}"))
    })?;
    render(DeliveryPage {
        visitor,
        title: format!("{ns} - Webhook Delivery"),
        list_href: links.webhooks(&ns),
        hook_href: links.hook(&ns, id),
        hook_url: redact_userinfo(&hook.payload_url).into_owned(),
        d: DeliveryView::new(&links, &ns, &d),
        links,
        ns,
    })
}

/// Checks the form beyond what the store checks: a new secret and "remove secret" at once
/// contradict each other.
fn precheck(state: &UiState, form: &HookForm, secret: Option<&String>) -> ValidationErrors {
    let mut errors = own_intake(state, form);
    if let Some(problem) = crate::payload_url::masked_userinfo(&form.payload_url) {
        errors.add("payload_url", problem);
    }
    if secret.is_some() && form.remove_secret {
        errors.add(
            "secret",
            "type a new secret or tick \"Remove secret\", not both",
        );
    }
    errors
}

/// A payload URL naming this server's own event intake is a loop: refused as the API does.
fn own_intake(state: &UiState, form: &HookForm) -> ValidationErrors {
    let mut errors = ValidationErrors::default();
    if let Some((local, base)) = &state.inner.own_intake
        && crate::relay::is_own_intake(&form.payload_url, *local, base)
    {
        errors.add("payload_url", crate::relay::OWN_INTAKE);
    }
    errors
}

async fn create(
    state: UiState,
    visitor: Visitor,
    links: Links,
    ns: String,
    form: Form,
) -> Result<Response> {
    let (fields, secret) = HookForm::posted(&form, None);
    let mut errors = own_intake(&state, &fields);
    let limits = fields.limits(&mut errors);
    let mut new = fields.new_webhook(&ns, secret, limits);
    new.headers = fields.header_pairs(&mut errors);
    // A webhook loop or a limit that is not a number is refused like any invalid field, on the
    // same page.
    let created = if errors.is_empty() {
        blocking::store(&state, move |store| {
            match store.create_webhook(new.clone()) {
                // The UI can open any namespace: its first webhook creates it, as the API does.
                Err(StoreError::NamespaceNotFound { .. }) => {
                    store.ensure_namespace(&new.namespace)?;
                    store.create_webhook(new)
                }
                other => other,
            }
        })
        .await
    } else {
        Err(UiError::Store(StoreError::Invalid(errors)))
    };
    match created {
        Ok(hook) => Ok(see_other(
            &links.webhooks(&ns),
            Flash::ok(format!(
                "Webhook created: {}",
                redact_userinfo(&hook.payload_url)
            )),
        )),
        Err(UiError::Store(StoreError::Invalid(errors))) => {
            let fields = HookForm {
                headers: fields.masked_headers(&[]),
                ..fields
            };
            form_page(visitor, &links, &ns, fields, errors, None)
        }
        Err(err) => Err(err),
    }
}

async fn update(
    state: UiState,
    visitor: Visitor,
    links: Links,
    ns: String,
    id: i64,
    form: Form,
) -> Result<Response> {
    let hook = hook_in(&state, &ns, id).await?;
    let (fields, secret) = HookForm::posted(&form, Some(&hook));
    let mut errors = precheck(&state, &fields, secret.as_ref());
    let limits = fields.limits(&mut errors);
    let headers = fields.header_pairs(&mut errors);
    let result = if errors.is_empty() {
        let mut update = fields.update(secret);
        update.headers = Some(headers);
        // The form holds both limits: each is set, or returned to the worker's default.
        let mut change = LimitsUpdate::default();
        change.max_in_flight = Some(limits.max_in_flight);
        change.timeout = Some(limits.timeout);
        let limits = change;
        blocking::store(&state, move |store| {
            store.update_webhook_with(id, update, limits)
        })
        .await
    } else {
        Err(UiError::Store(StoreError::Invalid(errors)))
    };
    match result {
        Ok(hook) => Ok(see_other(
            &links.hook(&ns, id),
            Flash::ok(naming_url(&visitor, "Webhook has been updated", &hook)),
        )),
        // The edit page shows the stored webhook and its deliveries: not to a write-only token.
        Err(UiError::Store(StoreError::Invalid(errors))) if !visitor.can_read() => Err(
            UiError::Status(StatusCode::UNPROCESSABLE_ENTITY, errors.to_string()),
        ),
        Err(UiError::Store(StoreError::Invalid(errors))) => {
            // Shown again as the form showed it: the stored URL's user-info as `***`.
            let fields = HookForm {
                payload_url: if fields.payload_url == hook.payload_url {
                    redact_userinfo(&hook.payload_url).into_owned()
                } else {
                    fields.payload_url.clone()
                },
                headers: fields.masked_headers(&hook.headers),
                ..fields
            };
            edit_page(
                &state,
                visitor,
                &links,
                &hook,
                fields,
                errors,
                &HashMap::new(),
            )
            .await
        }
        Err(err) => Err(err),
    }
}

/// `text` and the webhook's payload URL (user-info as `***`), or `text` alone for a visitor
/// who may not read webhooks.
fn naming_url(visitor: &Visitor, text: &str, hook: &Webhook) -> String {
    if visitor.can_read() {
        format!("{text}: {}", redact_userinfo(&hook.payload_url))
    } else {
        text.to_owned()
    }
}

async fn delete(
    state: UiState,
    visitor: Visitor,
    links: Links,
    ns: String,
    id: i64,
) -> Result<Response> {
    let hook = hook_in(&state, &ns, id).await?;
    blocking::store(&state, move |store| store.delete_webhook(id)).await?;
    Ok(see_other(
        &links.webhooks(&ns),
        Flash::ok(naming_url(&visitor, "Webhook has been deleted", &hook)),
    ))
}

async fn test(
    state: UiState,
    visitor: Visitor,
    links: Links,
    ns: String,
    id: i64,
    form: Form,
) -> Result<Response> {
    hook_in(&state, &ns, id).await?;
    let event = form
        .get("event")
        .map(EventType::from_name)
        .transpose()
        .map_err(|err| UiError::Status(StatusCode::BAD_REQUEST, format!("event: {err}")))?
        .unwrap_or(EventType::BuildSubmitted);
    let actions = std::sync::Arc::clone(&state.inner.actions);
    // On a thread of its own, not the blocking pool the store calls need (`send_test.rs`).
    let sent = state
        .inner
        .tests
        .run(id, move || actions.send_test(id, event))
        .await
        .map_err(|refused| UiError::Status(StatusCode::TOO_MANY_REQUESTS, refused.to_string()))?
        .ok_or_else(|| UiError::Internal("the test delivery failed to run".to_owned()))?;
    let hook_href = links.hook(&ns, id);
    Ok(match sent {
        // A delivery's outcome is something to read: a write-only token learns only that it
        // was made.
        Ok(Some(_)) if !visitor.can_read() => see_other(
            &hook_href,
            Flash::ok(format!("Test delivery sent: {event}")),
        ),
        Ok(Some(delivery)) => {
            let d = blocking::store(&state, move |store| store.delivery(delivery)).await?;
            let flash = match d {
                Some(d) if !d.failed() => Flash::ok(format!(
                    "Test delivery sent: {event}, {}",
                    super::view::status_line(d.response_status)
                )),
                Some(d) => Flash::failed(format!(
                    "Test delivery failed: {event}, {}",
                    d.error
                        .unwrap_or_else(|| super::view::status_line(d.response_status))
                )),
                None => Flash::failed("Test delivery sent, but its record is gone"),
            };
            see_other(&links.delivery(&ns, id, delivery), flash)
        }
        Ok(None) => see_other(
            &links.webhooks(&ns),
            Flash::failed("The webhook was deleted during the test delivery"),
        ),
        Err(message) => see_other(
            &hook_href,
            Flash::failed(format!("Test delivery not sent: {message}")),
        ),
    })
}

/// The rotation form's overlap: whole hours from 0 to the store's bound; blank is the default.
fn overlap_hours(raw: Option<&str>) -> Result<std::time::Duration, String> {
    let max = djinn_hook_store::MAX_ROTATION_OVERLAP.as_secs() / 3600;
    match raw.map(str::trim).filter(|r| !r.is_empty()) {
        None => Ok(djinn_hook_store::DEFAULT_ROTATION_OVERLAP),
        Some(raw) => match raw.parse::<u64>() {
            Ok(hours) if hours <= max => Ok(std::time::Duration::from_secs(hours * 3600)),
            _ => Err(format!(
                "overlap_hours must be a whole number of hours from 0 to {max}, not {raw:?}"
            )),
        },
    }
}

/// A new secret (typed, or generated and then shown on this answer only), the old one still
/// signed with for the overlap asked for.
async fn rotate_secret(
    state: UiState,
    visitor: Visitor,
    links: Links,
    ns: String,
    id: i64,
    form: Form,
) -> Result<Response> {
    hook_in(&state, &ns, id).await?;
    let here = links.hook(&ns, id);
    let overlap = match overlap_hours(form.get("overlap_hours")) {
        Ok(overlap) => overlap,
        Err(message) => {
            return Ok(see_other(
                &here,
                Flash::failed(format!("Secret not rotated: {message}")),
            ));
        }
    };
    let (secret, generated) = match form.get("secret").filter(|s| !s.is_empty()) {
        Some(secret) => (secret.to_owned(), None),
        None => {
            let secret = crate::entity_json::generate_secret()
                .map_err(|err| UiError::Internal(format!("generating a secret failed: {err}")))?;
            (secret.clone(), Some(secret))
        }
    };
    let rotated = blocking::store(&state, move |store| {
        store.rotate_secret(id, &secret, overlap)
    })
    .await;
    let hook = match rotated {
        Ok(hook) => hook,
        Err(UiError::Store(StoreError::Invalid(errors))) => {
            return Ok(see_other(
                &here,
                Flash::failed(format!("Secret not rotated: {errors}")),
            ));
        }
        Err(err) => return Err(err),
    };
    let until = hook.secret_rotating_until.map(super::view::when);
    match generated {
        Some(secret) => render(SecretPage {
            visitor,
            links,
            title: format!("Webhook {id}: secret rotated"),
            hook_href: here,
            secret,
            until,
        }),
        None => Ok(see_other(
            &here,
            Flash::ok(match until {
                Some(until) => format!(
                    "Secret rotated: deliveries are signed with the old secret too until {until}"
                ),
                None => "Secret rotated: deliveries are signed with the new secret only".to_owned(),
            }),
        )),
    }
}

async fn redeliver(
    state: UiState,
    links: Links,
    ns: String,
    id: i64,
    delivery: i64,
) -> Result<Response> {
    hook_in(&state, &ns, id).await?;
    let found = blocking::store(&state, move |store| store.delivery(delivery)).await?;
    if found.is_none_or(|d| d.hook_id != id) {
        return Err(UiError::NotFound(format!(
            "delivery {delivery} not found for webhook {id}"
        )));
    }
    let here = links.delivery(&ns, id, delivery);
    match blocking::store(&state, move |store| store.redeliver(delivery)).await {
        Ok(_task) => {
            let actions = std::sync::Arc::clone(&state.inner.actions);
            blocking::run(move || actions.queued()).await?;
            Ok(see_other(
                &format!("{}#recent", links.hook(&ns, id)),
                Flash::ok(
                    "Webhook delivery queued: it is sent again with the same event id and shows in Recent deliveries",
                ),
            ))
        }
        Err(UiError::Store(err @ StoreError::WebhookInactive { .. })) => Ok(see_other(
            &here,
            Flash::failed(format!("Not redelivered: {err}")),
        )),
        Err(err) => Err(err),
    }
}

/// Bulk recovery: the events of the webhook's deliveries in the range typed (failed ones only
/// unless unticked) queued again, each once (`Store::recover`); back to Recent deliveries with
/// how many were queued.
async fn recover(
    state: UiState,
    links: Links,
    ns: String,
    id: i64,
    form: Form,
) -> Result<Response> {
    hook_in(&state, &ns, id).await?;
    let here = format!("{}#recent", links.hook(&ns, id));
    let now = time::OffsetDateTime::now_utc();
    let since = crate::recovery::parse_instant(form.get("since").unwrap_or(""), now);
    let until = match form.get("until").map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(text) => crate::recovery::parse_instant(text, now).map(Some),
    };
    let (since, until) = match (since, until) {
        (Ok(since), Ok(until)) => (since, until),
        (Err(message), _) | (_, Err(message)) => {
            return Ok(see_other(
                &here,
                Flash::failed(format!("Nothing queued: {message}")),
            ));
        }
    };
    let mut recovery = djinn_hook_store::Recovery::new(id, since);
    recovery.until = until;
    recovery.failed_only = form.checked("failed_only");
    let queued = blocking::store(&state, move |store| {
        crate::recovery::recover_all(store, &recovery, drop)
    })
    .await;
    match queued {
        Ok(queued) => {
            if queued > 0 {
                let actions = std::sync::Arc::clone(&state.inner.actions);
                blocking::run(move || actions.queued()).await?;
            }
            Ok(see_other(
                &here,
                Flash::ok(format!(
                    "{queued} {} queued to be sent again (each event once, with its event id)",
                    if queued == 1 {
                        "delivery"
                    } else {
                        "deliveries"
                    }
                )),
            ))
        }
        Err(UiError::Store(err @ StoreError::WebhookInactive { .. })) => Ok(see_other(
            &here,
            Flash::failed(format!("Nothing queued: {err}")),
        )),
        Err(err) => Err(err),
    }
}
