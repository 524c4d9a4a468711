//! Each form's success (303 and a flash shown once) and each validation error (the form
//! again, what was typed kept apart from the secret); escaping of stored text.

use axum::http::StatusCode;
use djinn_hook_payload::EventType;

use crate::support::{Receiver, Ui};

const CREATE: &str = "/ui/n/alice/ci/-/webhooks/create";

#[tokio::test]
async fn create_redirects_with_a_flash_shown_once() {
    let ui = Ui::open();
    let mut c = ui.client();
    c.get(CREATE).await;
    let done = c
        .post(
            CREATE,
            &[
                ("payload_url", " https://example.com/hook "),
                ("secret", "s3cret"),
                ("ssl", "on"),
                ("events", "cron"),
                ("events", "invite.rejected"),
                ("standard_webhooks", "on"),
            ],
        )
        .await;
    assert_eq!(c.redirected(&done), "/ui/n/alice/ci/-/webhooks");
    let hooks = ui.store.webhooks("alice/ci").unwrap();
    assert_eq!(hooks.len(), 1);
    let hook = &hooks[0];
    assert_eq!(hook.payload_url, "https://example.com/hook");
    assert_eq!(hook.events.names(), ["invite.rejected", "cron"]);
    assert!(hook.ssl && hook.has_secret && hook.standard_webhooks);
    assert!(!hook.active, "the active box was not ticked");

    let list = c.get("/ui/n/alice/ci/-/webhooks").await;
    list.has(&[
        r#"<p class="flash ok" role="status">Webhook created: https://example.com/hook</p>"#,
    ]);
    let again = c.get("/ui/n/alice/ci/-/webhooks").await;
    again.lacks(&["Webhook created"]);
}

#[tokio::test]
async fn each_validation_error_is_under_its_field_and_the_form_keeps_its_values() {
    let ui = Ui::open();
    ui.hook("alice/ci", "https://taken.example/hook");
    let mut c = ui.client();
    c.get(CREATE).await;
    let check = |url: &'static str, ssl: bool, field: &'static str, message: &'static str| {
        (url, ssl, field, message)
    };
    for (url, ssl, field, message) in [
        check("", false, "payload_url", "is required"),
        check(
            "ftp://example.com",
            false,
            "payload_url",
            "must be an http or https URL",
        ),
        check(
            "example.com/hook",
            false,
            "payload_url",
            "must be an http or https URL",
        ),
        check("https:///path", false, "payload_url", "must have a host"),
        check(
            "https://taken.example/hook",
            false,
            "payload_url",
            "is already used by another webhook in this namespace",
        ),
        check(
            "http://plain.example/hook",
            true,
            "ssl",
            "requires an https payload_url",
        ),
    ] {
        let mut fields = vec![
            ("payload_url", url),
            ("secret", "typed-secret"),
            ("events", "invite.rejected"),
        ];
        if ssl {
            fields.push(("ssl", "on"));
        }
        let page = c.post(CREATE, &fields).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{url}");
        page.has(&[
            "The webhook was not saved",
            &format!(r#"<p class="error" id="{field}-error">{message}</p>"#),
            &format!(r#"name="payload_url" value="{url}""#),
            r#"value="invite.rejected" checked"#,
        ])
        .lacks(&["typed-secret", r#"value="cron" checked"#]);
        // The choices as typed: active unticked stays unticked, ssl as given.
        assert!(!page.body.contains(r#"name="active" checked"#), "{url}");
        assert_eq!(
            page.body
                .contains(r#"name="ssl" aria-describedby="ssl-error" checked"#),
            ssl
        );
    }
    assert_eq!(
        ui.store.webhooks("alice/ci").unwrap().len(),
        1,
        "nothing stored"
    );
}

#[tokio::test]
async fn update_applies_a_typed_secret_keeps_a_blank_one_and_removes_on_request() {
    let ui = Ui::open();
    let hook = ui.hook("alice/ci", "https://example.com/hook");
    let path = format!("/ui/n/alice/ci/-/webhooks/{}", hook.id);
    let mut c = ui.client();
    c.get(&path).await;
    let base = [
        ("payload_url", "https://example.com/v2"),
        ("active", "on"),
        ("ssl", "on"),
    ];

    // A new secret typed on edit is applied (the original ignored it).
    let mut fields = base.to_vec();
    fields.extend([("secret", "new-secret"), ("events", "build.finished")]);
    let done = c.post(&path, &fields).await;
    assert_eq!(c.redirected(&done), path);
    let stored = ui.store.webhook(hook.id).unwrap().unwrap();
    assert!(stored.has_secret);
    assert_eq!(stored.payload_url, "https://example.com/v2");
    assert_eq!(stored.events.names(), ["build.finished"]);
    c.get(&path).await.has(&[
        "Webhook has been updated: https://example.com/v2",
        "A secret is set",
    ]);
    let sealed = ui
        .store
        .queue_test(
            hook.id,
            EventType::Cron,
            b"{}".to_vec(),
            std::time::Duration::from_secs(1),
        )
        .unwrap();
    assert_eq!(
        sealed.request.secret.as_ref().map(|s| s.expose()),
        Some("new-secret")
    );

    // Blank keeps it.
    let done = c.post(&path, &base).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert!(ui.store.webhook(hook.id).unwrap().unwrap().has_secret);

    // Both a new secret and "remove" is refused, under the secret field.
    let mut both = base.to_vec();
    both.extend([("secret", "x"), ("remove_secret", "on")]);
    let refused = c.post(&path, &both).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    refused
        .has(&[r#"id="secret-error">type a new secret or tick &#34;Remove secret&#34;, not both"#])
        .has(&[r#"name="remove_secret" checked"#]);

    // "Remove secret" removes it.
    let mut remove = base.to_vec();
    remove.push(("remove_secret", "on"));
    let done = c.post(&path, &remove).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert!(!ui.store.webhook(hook.id).unwrap().unwrap().has_secret);

    // An invalid update keeps the typed values and the hook unchanged.
    let page = c
        .post(&path, &[("payload_url", "nope"), ("events", "cron")])
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    page.has(&[
        r#"name="payload_url" value="nope""#,
        r#"value="cron" checked"#,
        "Recent deliveries",
    ]);
    assert_eq!(
        ui.store.webhook(hook.id).unwrap().unwrap().payload_url,
        "https://example.com/v2"
    );
}

#[tokio::test]
async fn delivery_limits_are_set_on_create_edited_reset_and_checked_by_field() {
    let ui = Ui::open();
    let mut c = ui.client();
    c.get(CREATE).await;
    let done = c
        .post(
            CREATE,
            &[
                ("payload_url", "https://example.com/hook"),
                ("active", "on"),
                ("max_in_flight", "3"),
                ("timeout", "2500"),
            ],
        )
        .await;
    assert_eq!(c.redirected(&done), "/ui/n/alice/ci/-/webhooks");
    let hook = ui.store.webhooks("alice/ci").unwrap().remove(0);
    assert_eq!(hook.limits.max_in_flight, Some(3));
    assert_eq!(
        hook.limits.timeout,
        Some(std::time::Duration::from_millis(2500))
    );
    let path = format!("/ui/n/alice/ci/-/webhooks/{}", hook.id);
    c.get(&path).await.has(&[
        r#"name="max_in_flight" value="3""#,
        r#"name="timeout" value="2500""#,
        "Delivery limits: at most 3 deliveries at once, each cut off after 2.50s.",
    ]);

    // Out of range: the store's message under the field; not a number: the form's. Nothing
    // changes, and what was typed is shown again.
    let base = [
        ("payload_url", "https://example.com/hook"),
        ("active", "on"),
    ];
    for (field, typed, message) in [
        ("max_in_flight", "0", "must be between 1 and 1000, got 0"),
        (
            "timeout",
            "50",
            "must be between 100 ms and 120 s, got 50 ms",
        ),
        (
            "max_in_flight",
            "many",
            "must be a whole number of deliveries, or empty for the worker&#39;s default",
        ),
        (
            "timeout",
            "1.5",
            "must be a whole number of milliseconds, or empty for the worker&#39;s default",
        ),
    ] {
        let mut fields = base.to_vec();
        fields.push((field, typed));
        let page = c.post(&path, &fields).await;
        assert_eq!(
            page.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}={typed}"
        );
        page.has(&[
            &format!(r#"<p class="error" id="{field}-error">{message}</p>"#),
            &format!(r#"name="{field}" value="{typed}""#),
        ]);
        assert_eq!(
            ui.store.webhook(hook.id).unwrap().unwrap().limits,
            hook.limits
        );
    }

    // Emptied: back to the worker's defaults.
    let done = c.post(&path, &base).await;
    assert_eq!(c.redirected(&done), path);
    let reset = ui.store.webhook(hook.id).unwrap().unwrap();
    assert_eq!(reset.limits, djinn_hook_store::DeliveryLimits::default());
}

#[tokio::test]
async fn delete_test_and_redeliver_redirect_with_flashes() {
    let ui = Ui::open();
    let receiver = Receiver::start();
    let hook = ui.hook("alice/ci", &receiver.url("/ok"));
    let path = format!("/ui/n/alice/ci/-/webhooks/{}", hook.id);
    let mut c = ui.client();
    c.get(&path).await;

    let sent = c.post(&format!("{path}/test"), &[("event", "cron")]).await;
    let location = c.redirected(&sent).to_owned();
    assert!(
        location.starts_with(&format!("{path}/deliveries/")),
        "{location}"
    );
    let delivery_page = c.get(&location).await;
    delivery_page.has(&["Test delivery sent: cron, 200 OK", "cron (test delivery)"]);
    assert_eq!(receiver.hits.load(std::sync::atomic::Ordering::SeqCst), 1);

    let again = c.post(&format!("{location}/redeliver"), &[]).await;
    assert_eq!(c.redirected(&again), format!("{path}#recent"));
    assert_eq!(ui.queued.load(std::sync::atomic::Ordering::SeqCst), 1);
    let page = c.get(&path).await;
    page.has(&["Webhook delivery queued"]);
    let rows: Vec<&str> = page.body.split("<li>").skip(1).collect();
    assert_eq!(rows.len(), 2);
    assert!(
        rows[0].contains("Redelivery"),
        "the worker sent it: {}",
        rows[0]
    );

    // Redelivering for an inactive hook: a red flash on the delivery page.
    c.post(&path, &[("payload_url", &receiver.url("/ok"))])
        .await;
    let refused = c.post(&format!("{location}/redeliver"), &[]).await;
    assert_eq!(c.redirected(&refused), location);
    c.get(&location)
        .await
        .has(&[r#"<p class="flash failed" role="status">Not redelivered: webhook"#]);

    let deleted = c.post(&format!("{path}/delete"), &[]).await;
    assert_eq!(c.redirected(&deleted), "/ui/n/alice/ci/-/webhooks");
    assert!(ui.store.webhook(hook.id).unwrap().is_none());
    c.get("/ui/n/alice/ci/-/webhooks")
        .await
        .has(&["Webhook has been deleted: http://127.0.0.1"]);
}

#[tokio::test]
async fn script_in_a_payload_url_or_a_response_body_is_shown_as_text() {
    let ui = Ui::open();
    let receiver = Receiver::start();
    // The store refuses `<` and `>` in a payload URL (the HTTP client cannot send them), but
    // quotes and `&` are valid URL characters that would break out of an HTML attribute.
    let evil = ui.hook(
        "alice/ci",
        "https://example.com/?a=1&b='onmouseover='alert(1)",
    );
    let ok = ui.hook("alice/ci", &receiver.url("/ok"));
    let d = ui.send_test(ok.id);
    let mut c = ui.client();
    let list = c.get("/ui/n/alice/ci/-/webhooks").await;
    list.has(&["https://example.com/?a=1&#38;b=&#39;onmouseover=&#39;alert(1)"])
        .lacks(&["'onmouseover='"]);
    c.get(&format!("/ui/n/alice/ci/-/webhooks/{}", evil.id))
        .await
        .lacks(&["'onmouseover='"]);
    let page = c
        .get(&format!(
            "/ui/n/alice/ci/-/webhooks/{}/deliveries/{d}",
            ok.id
        ))
        .await;
    page.has(&["&#60;script&#62;alert(&#39;pwned&#39;)&#60;/script&#62;"])
        .lacks(&["<script>"]);
}

/// The generated secret shown on a rotation's answer, HTML entities decoded.
fn shown_secret(body: &str) -> String {
    let at = body
        .find(r#"<code id="new-secret">"#)
        .expect("the secret is shown")
        + r#"<code id="new-secret">"#.len();
    let end = body[at..].find("</code>").unwrap();
    body[at..at + end]
        .replace("&#43;", "+")
        .replace("&#x2f;", "/")
        .replace("&#47;", "/")
        .replace("&#61;", "=")
        .replace("&#x3d;", "=")
}

#[tokio::test]
async fn rotate_secret_keeps_the_old_one_for_the_overlap_and_shows_a_generated_one_once() {
    use std::time::Duration;

    let ui = Ui::open();
    ui.store.ensure_namespace("alice/ci").unwrap();
    let mut new = djinn_hook_store::NewWebhook::new("alice/ci", "https://example.com/hook");
    new.secret = Some("old-secret".into());
    let hook = ui.store.create_webhook(new).unwrap();
    let path = format!("/ui/n/alice/ci/-/webhooks/{}", hook.id);
    let rotate = format!("{path}/rotate-secret");
    let secrets = || {
        let task = ui
            .store
            .queue_test(
                hook.id,
                EventType::Cron,
                b"{}".to_vec(),
                Duration::from_secs(60),
            )
            .unwrap();
        let expose = |s: djinn_hook_deliver::WebhookSecret| s.expose().to_owned();
        (
            expose(task.request.secret.unwrap()),
            task.request.previous_secret.map(expose),
        )
    };
    let mut c = ui.client();
    c.get(&path)
        .await
        .has(&[&format!(r#"action="{rotate}""#), "Rotate secret"]);

    // A typed secret, two hours of overlap.
    let done = c
        .post(&rotate, &[("secret", "new-secret"), ("overlap_hours", "2")])
        .await;
    assert_eq!(c.redirected(&done), path);
    assert_eq!(
        secrets(),
        ("new-secret".to_owned(), Some("old-secret".to_owned()))
    );
    let until = ui
        .store
        .webhook(hook.id)
        .unwrap()
        .unwrap()
        .secret_rotating_until
        .expect("rotating");
    let in_two_hours = time::OffsetDateTime::now_utc() + Duration::from_secs(7200);
    assert!((in_two_hours - until).abs() < time::Duration::seconds(60));
    c.get(&path)
        .await
        .has(&[
            "Secret rotated: deliveries are signed with the old secret too until ",
            "The previous secret is signed with too until ",
        ])
        .lacks(&["new-secret", "old-secret"]);

    // Blank: generated, shown on this answer only; no overlap asked for.
    let page = c
        .post(&rotate, &[("secret", ""), ("overlap_hours", "0")])
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    page.has(&["It is shown only now", "signed with the new secret only"]);
    assert_eq!(page.headers["cache-control"], "no-store");
    let generated = shown_secret(&page.body);
    assert!(generated.starts_with("whsec_"), "{generated}");
    assert_eq!(secrets(), (generated.clone(), None));
    c.get(&path)
        .await
        .lacks(&[&generated, "The previous secret"]);

    // A bad overlap: a flash naming the field, nothing changed.
    for bad in ["169", "-1", "1.5", "soon"] {
        let done = c
            .post(&rotate, &[("secret", "never-used"), ("overlap_hours", bad)])
            .await;
        assert_eq!(c.redirected(&done), path);
        c.get(&path).await.has(&[&format!(
            "Secret not rotated: overlap_hours must be a whole number of hours from 0 to 168, not &#34;{bad}&#34;"
        )]);
    }
    assert_eq!(secrets(), (generated, None));
    // The address takes a form only.
    let get = c.get(&rotate).await;
    assert_eq!(get.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn a_webhook_pointed_at_this_servers_own_intake_is_refused_as_the_api_does() {
    let local: std::net::SocketAddr = "127.0.0.1:8080".parse().unwrap();
    let ui = Ui::with(djinn_hook_server::ui::Auth::Open, |state| {
        state.refusing_own_intake(local, "https://hooks.example.com/")
    });
    let message = "points at this server&#39;s own event intake: every delivery would come back \
                   as a new event (serve --accept-relayed-deliveries relays on purpose)";
    let mut c = ui.client();
    c.get(CREATE).await;
    for url in [
        "http://127.0.0.1:8080/n/alice/ci/-/events",
        "http://localhost:8080/n/bob/x/-/events/",
        "https://hooks.example.com/n/alice/ci/-/events",
        "http://127.1:8080/n/alice/ci/-/events",
        "http://[::ffff:127.0.0.1]:8080/n/alice/ci/-/events",
        "http://127.0.0.1:8080/n/alice/ci/-/events/.",
    ] {
        let page = c
            .post(CREATE, &[("payload_url", url), ("events", "cron")])
            .await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{url}");
        page.has(&[&format!(
            r#"<p class="error" id="payload_url-error">{message}</p>"#
        )]);
    }
    assert!(
        ui.store.webhooks("alice/ci").unwrap().is_empty(),
        "nothing stored"
    );

    // Editing a webhook onto the intake is refused the same way; elsewhere is fine.
    let hook = ui.hook("alice/ci", "https://example.com/hook");
    let path = format!("/ui/n/alice/ci/-/webhooks/{}", hook.id);
    c.get(&path).await;
    let page = c
        .post(
            &path,
            &[("payload_url", "http://127.0.0.1:8080/n/alice/ci/-/events")],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    page.has(&[&format!(
        r#"<p class="error" id="payload_url-error">{message}</p>"#
    )]);
    assert_eq!(
        ui.store.webhook(hook.id).unwrap().unwrap().payload_url,
        "https://example.com/hook"
    );
    let done = c
        .post(
            CREATE,
            &[("payload_url", "http://127.0.0.1:9090/n/alice/ci/-/events")],
        )
        .await;
    assert_eq!(c.redirected(&done), "/ui/n/alice/ci/-/webhooks");
}

#[tokio::test]
async fn a_payload_urls_user_info_is_shown_as_stars_and_kept_when_saved_unchanged() {
    let ui = Ui::open();
    let url = "https://ci:hunter2@example.com/hook";
    let hook = ui.hook("alice/ci", url);
    let path = format!("/ui/n/alice/ci/-/webhooks/{}", hook.id);
    let mut c = ui.client();
    c.get("/ui/n/alice/ci/-/webhooks")
        .await
        .has(&["https://***@example.com/hook"])
        .lacks(&["hunter2"]);
    c.get(&path)
        .await
        .has(&[r#"name="payload_url" value="https://***@example.com/hook""#])
        .lacks(&["hunter2"]);

    // Saved as shown: the credentials stay; the flash shows none.
    let done = c
        .post(
            &path,
            &[
                ("payload_url", "https://***@example.com/hook"),
                ("ssl", "on"),
                ("events", "cron"),
            ],
        )
        .await;
    assert_eq!(c.redirected(&done), path);
    let stored = ui.store.webhook(hook.id).unwrap().unwrap();
    assert_eq!(stored.payload_url, url);
    assert_eq!(stored.events.names(), ["cron"]);
    c.get(&path)
        .await
        .has(&["Webhook has been updated: https://***@example.com/hook"])
        .lacks(&["hunter2"]);
    // Refused for another field, the form shows the URL as before, not the credentials.
    let page = c
        .post(
            &path,
            &[
                ("payload_url", "https://***@example.com/hook"),
                ("events", "no-such-event"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    page.has(&[r#"value="https://***@example.com/hook""#])
        .lacks(&["hunter2"]);
    // Changed around the mask: refused under the field, the credentials not moved.
    let page = c
        .post(
            &path,
            &[("payload_url", "https://***@attacker.example/hook")],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    page.has(&[r#"<p class="error" id="payload_url-error">has *** for its credentials"#]);
    assert_eq!(ui.store.webhook(hook.id).unwrap().unwrap().payload_url, url);
}

/// A `whsec_` secret that is not a Standard Webhooks secret is refused by the UI as by the
/// API (the store's one rule): on create and edit under the secret field, never echoed; on
/// rotation in the flash; nothing changes.
#[tokio::test]
async fn an_invalid_standard_webhooks_secret_is_refused_under_the_secret_field() {
    let ui = Ui::open();
    let hook = ui.hook("alice/ci", "https://example.com/kept");
    let path = format!("/ui/n/alice/ci/-/webhooks/{}", hook.id);
    let mut c = ui.client();
    c.get(CREATE).await;
    for bad in ["whsec_!!!notbase64", "whsec_", "whsec_c2VjcmV0=="] {
        for at in [CREATE, path.as_str()] {
            let page = c
                .post(
                    at,
                    &[
                        ("payload_url", "https://example.com/new"),
                        ("secret", bad),
                        ("standard_webhooks", "on"),
                        ("active", "on"),
                    ],
                )
                .await;
            assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{at} {bad}");
            page.has(&[
                "The webhook was not saved",
                r#"<p class="error" id="secret-error">starts with whsec_ but is not a Standard Webhooks secret"#,
            ]);
            if bad.len() > "whsec_".len() {
                page.lacks(&[bad]);
            }
        }
        let done = c
            .post(
                &format!("{path}/rotate-secret"),
                &[("secret", bad), ("overlap_hours", "1")],
            )
            .await;
        assert_eq!(c.redirected(&done), path);
        c.get(&path).await.has(&[
            "Secret not rotated: secret starts with whsec_ but is not a Standard Webhooks secret",
        ]);
    }
    let hooks = ui.store.webhooks("alice/ci").unwrap();
    assert_eq!(hooks.len(), 1, "nothing created");
    assert_eq!(hooks[0].payload_url, "https://example.com/kept");
    assert!(
        !hooks[0].has_secret && !hooks[0].standard_webhooks,
        "nothing changed"
    );
}

#[tokio::test]
async fn custom_headers_are_set_masked_kept_and_refused_through_the_form() {
    const KEY: &str = "k3y-plaintext-7d21c9";
    let ui = Ui::open();
    let receiver = Receiver::start();
    let mut c = ui.client();
    c.get(CREATE).await;
    let url = receiver.url("/ok");
    let headers = format!("X-Api-Key: {KEY}\r\nX-Tenant: acme\r\n");
    let created = c
        .post(CREATE, &[("payload_url", &url), ("headers", &headers)])
        .await;
    c.redirected(&created);
    let hook = &ui.store.webhooks("alice/ci").unwrap()[0];
    let path = format!("/ui/n/alice/ci/-/webhooks/{}", hook.id);
    assert_eq!(hook.headers, ["X-Api-Key", "X-Tenant"]);
    let edit = c.get(&path).await;
    edit.has(&["X-Api-Key: ***\nX-Tenant: ***\n"]).lacks(&[KEY]);

    // Saved as shown, one line deleted: the value kept, the other header gone.
    let saved = c
        .post(
            &path,
            &[
                ("payload_url", &url),
                ("active", "on"),
                ("headers", "X-Api-Key: ***\n"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    assert_eq!(
        ui.store.webhook(hook.id).unwrap().unwrap().headers,
        ["X-Api-Key"]
    );
    let sent = c.post(&format!("{path}/test"), &[("event", "cron")]).await;
    let delivery = c.redirected(&sent).to_owned();
    c.get(&delivery)
        .await
        .has(&["X-Api-Key", "***"])
        .lacks(&[KEY]);

    // A header the delivery sets, and a line that is no header: errors under the field.
    let refused = c
        .post(
            &path,
            &[
                ("payload_url", &url),
                ("headers", "Host: evil.example\nnonsense"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    refused.has(&[r#"id="headers-error""#, "line 2: write each header as"]);
    let typed = "X-Api-Key: ***\nX-New: n3w-plaintext\nHost: evil.example\n";
    let refused = c
        .post(&path, &[("payload_url", &url), ("headers", typed)])
        .await;
    // Shown again without a value typed: the stored one masked, the new one to type again.
    refused
        .has(&[
            "Host is set by the delivery",
            "X-Api-Key: ***\nX-New: \nHost: \n",
        ])
        .lacks(&["n3w-plaintext", "evil.example"]);
    assert_eq!(
        ui.store.webhook(hook.id).unwrap().unwrap().headers,
        ["X-Api-Key"]
    );
}

#[tokio::test]
async fn a_bulk_recovery_through_the_form_queues_failed_events_once() {
    use djinn_hook_deliver::{Attempt, AttemptOutcome, Completion, Decision, Outcome};
    let ui = Ui::open();
    let receiver = Receiver::start();
    let hook = ui.hook("alice/ci", &receiver.url("/ok"));
    // A delivery that failed for good (the receiver was down then).
    ui.store
        .accept_event(djinn_hook_store::NewEvent::new(
            "alice/ci",
            EventType::Cron,
            b"{}".to_vec(),
        ))
        .unwrap();
    let now = time::OffsetDateTime::now_utc();
    let task = ui
        .store
        .claim_due(now, 10, std::time::Duration::from_secs(60))
        .unwrap()
        .remove(0);
    let mut attempt = Attempt::new(&task.request, now);
    attempt.outcome = AttemptOutcome::ConnectRefused;
    let done = Completion::new(
        task.task_id,
        task.lease,
        attempt,
        Decision::new(Outcome::Failed),
    );
    ui.store.complete_one(&done).unwrap();

    let path = format!("/ui/n/alice/ci/-/webhooks/{}", hook.id);
    let mut c = ui.client();
    c.get(&path)
        .await
        .has(&["Send again</button>", r#"name="since" value="24h""#]);
    let recover = format!("{path}/recover");
    let fields = [("since", "1h"), ("until", ""), ("failed_only", "1")];
    let done = c.post(&recover, &fields).await;
    assert_eq!(c.redirected(&done), format!("{path}#recent"));
    c.get(&path)
        .await
        .has(&["1 delivery queued to be sent again"]);
    assert_eq!(ui.queued.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(
        receiver.hits.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "sent"
    );

    // Twice: nothing more.
    c.post(&recover, &fields).await;
    c.get(&path)
        .await
        .has(&["0 deliveries queued to be sent again"]);
    assert_eq!(receiver.hits.load(std::sync::atomic::Ordering::SeqCst), 1);
    // A time that is none: a red flash naming it.
    c.post(&recover, &[("since", "whenever")]).await;
    c.get(&path)
        .await
        .has(&[r#"<p class="flash failed" role="status">Nothing queued: &#34;whenever&#34;"#]);
}
