//! Every page's status and content, in the loopback no-token mode.

use axum::http::StatusCode;
use djinn_hook_deliver::{
    Attempt, AttemptOutcome, Completion, Decision, Destination, Outcome, PutOff, Task,
};
use djinn_hook_sign::headers;
use djinn_hook_store::{DeliveryFilter, Page as StorePage, WebhookUpdate};

use crate::support::{Receiver, Ui};

#[tokio::test]
async fn the_list_shows_an_empty_state_and_a_create_button() {
    let ui = Ui::open();
    let mut c = ui.client();
    let page = c.get("/ui/n/alice/ci/-/webhooks").await;
    assert_eq!(page.status, StatusCode::OK);
    page.has(&[
        "<title>alice/ci - Webhooks · djinn-hooks</title>",
        "Add a webhook to notify external services of events.",
        r#"href="/ui/n/alice/ci/-/webhooks/create">Create webhook</a>"#,
        r#"<link rel="stylesheet" href="/ui/assets/style.css">"#,
    ]);
}

#[tokio::test]
async fn the_list_shows_each_hooks_newest_delivery_and_state() {
    let ui = Ui::open();
    let receiver = Receiver::start();
    let never = ui.hook("alice/ci", "https://never.example/hook");
    let fixed = ui.hook("alice/ci", &receiver.url("/fail"));
    let failing = ui.hook("alice/ci", &receiver.url("/fail?again"));
    // `fixed` failed first, then succeeded: the newest delivery decides its icon.
    ui.send_test(fixed.id);
    ui.point(fixed.id, &receiver.url("/ok"));
    ui.send_test(fixed.id);
    ui.send_test(failing.id);
    ui.store
        .update_webhook(never.id, {
            let mut update = WebhookUpdate::default();
            update.active = Some(false);
            update
        })
        .unwrap();

    let page = ui.client().get("/ui/n/alice/ci/-/webhooks").await;
    assert_eq!(page.status, StatusCode::OK);
    let rows: Vec<&str> = page.body.split("<li>").skip(1).collect();
    assert_eq!(rows.len(), 3, "{}", page.body);
    let row = |id: i64| {
        *rows
            .iter()
            .find(|r| r.contains(&format!("/-/webhooks/{id}\"")))
            .unwrap_or_else(|| panic!("no row for hook {id}: {}", page.body))
    };
    let never_row = row(never.id);
    assert!(never_row.contains("icon-never") && never_row.contains("Never delivered"));
    assert!(never_row.contains("inactive"), "{never_row}");
    assert!(never_row.contains(">https://never.example/hook</a>"));
    let fixed_row = row(fixed.id);
    assert!(fixed_row.contains("icon-ok") && fixed_row.contains("Last delivery succeeded"));
    assert!(fixed_row.contains("Last: 200 OK"), "{fixed_row}");
    assert!(
        fixed_row.contains("last 24 h: 50% of 2 delivered"),
        "{fixed_row}"
    );
    assert!(!never_row.contains("last 24 h"));
    assert!(!fixed_row.contains("inactive"));
    let failing_row = row(failing.id);
    assert!(failing_row.contains("icon-failed") && failing_row.contains("Last delivery failed"));
    assert!(failing_row.contains("Last: 500 Internal Server Error"));
    for r in &rows {
        assert!(r.contains(">Delete</button>"), "{r}");
    }
}

#[tokio::test]
async fn the_index_lists_namespaces_with_their_hooks_health() {
    let ui = Ui::open();
    let receiver = Receiver::start();
    let ok = ui.hook("alice/ci", &receiver.url("/ok"));
    let bad = ui.hook("alice/ci", &receiver.url("/fail"));
    ui.hook("bob/site/docs", "https://example.com/x");
    ui.send_test(ok.id);
    ui.send_test(bad.id);
    let page = ui.client().get("/ui/").await;
    assert_eq!(page.status, StatusCode::OK);
    page.has(&[
        r#"<a href="/ui/n/alice/ci/-/webhooks">alice/ci</a>"#,
        "2 webhooks",
        "1 succeeding",
        "1 failing",
        r#"<a href="/ui/n/bob/site/docs/-/webhooks">bob/site/docs</a>"#,
        "1 webhook<",
        "1 never delivered",
    ]);
    let go = ui.client().get("/ui/go?ns=%2Fcarol%2Fx%2F").await;
    assert_eq!(go.status, StatusCode::SEE_OTHER);
    assert_eq!(go.location(), "/ui/n/carol/x/-/webhooks");
    let mut c = ui.client();
    let bad_ns = c.get("/ui/go?ns=carol").await;
    assert_eq!(bad_ns.location(), "/ui/");
    c.get("/ui/")
        .await
        .has(&["&#34;carol&#34; is not a namespace: expected owner/path"]);
}

#[tokio::test]
async fn the_create_form_has_every_event_and_an_empty_secret() {
    let ui = Ui::open();
    let page = ui.client().get("/ui/n/alice/ci/-/webhooks/create").await;
    assert_eq!(page.status, StatusCode::OK);
    page.has(&[
        "<h1>Create webhook</h1>",
        r#"<label for="payload_url">Payload URL</label>"#,
        r#"<input type="password" id="secret" name="secret" value="""#,
        "Verify SSL certificates when sending payloads",
        "Active: send events for this webhook",
        "Also send Standard Webhooks headers",
        r#"action="/ui/n/alice/ci/-/webhooks/create""#,
        ">Create</button>",
        &format!(
            "Deliveries are signed with it (<code>{}</code>)",
            headers::SIGNATURE
        ),
    ]);
    for event in djinn_hook_payload::EventType::ALL {
        page.has(&[&format!(
            r#"name="events" value="{}" checked"#,
            event.name()
        )]);
    }
    page.has(&[r#"value="invite.rejected""#]);
    page.lacks(&["remove_secret", "Recent deliveries"]);
}

#[tokio::test]
async fn the_edit_page_shows_values_never_the_secret_and_recent_deliveries() {
    let ui = Ui::open();
    let receiver = Receiver::start();
    let hook = ui.hook("alice/ci", &receiver.url("/ok"));
    ui.store
        .update_webhook(hook.id, {
            let mut update = WebhookUpdate::default();
            update.events = Some(vec!["cron".into(), "invite.rejected".into()]);
            update.secret = djinn_hook_store::SecretUpdate::Set("s3cret-never-shown".into());
            update
        })
        .unwrap();
    let path = format!("/ui/n/alice/ci/-/webhooks/{}", hook.id);
    let mut c = ui.client();
    let empty = c.get(&path).await;
    assert_eq!(empty.status, StatusCode::OK);
    empty
        .has(&[
            "No recent deliveries.",
            "A secret is set; it is never shown.",
            r#"name="remove_secret""#,
            r#"value="cron" checked"#,
            r#"value="invite.rejected" checked"#,
            ">Save</button>",
            ">Delete webhook</button>",
            ">Send test delivery</button>",
            // The test event offered first is one the hook is subscribed to.
            r#"<option value="invite.rejected" selected>"#,
        ])
        .lacks(&["s3cret-never-shown", r#"value="build.submitted" checked"#]);

    let ok = ui.send_test(hook.id);
    ui.store.redeliver(ok).unwrap();
    ui.actions.queued();
    ui.point(hook.id, &receiver.url("/fail"));
    let failed = ui.send_test(hook.id);
    let page = c.get(&path).await;
    let rows: Vec<&str> = page.body.split("<li>").skip(1).collect();
    assert_eq!(rows.len(), 3, "{}", page.body);
    // Newest first: the failed one is drawn as failed (red), the redelivery marked.
    assert!(rows[0].contains(&format!("/deliveries/{failed}\"")));
    assert!(rows[0].contains("icon-failed") && !rows[0].contains("icon-ok"));
    assert!(rows[0].contains("500"));
    assert!(rows[1].contains("icon-ok") && rows[1].contains("Redelivery"));
    assert!(rows[2].contains(&format!("/deliveries/{ok}\"")) && !rows[2].contains("Redelivery"));
    let d = ui.store.delivery(ok).unwrap().unwrap();
    assert!(rows[2].contains(&format!("<code>{}</code>", d.event_id)));
    assert!(rows[2].contains("build.submitted · test · 200"));
    assert!(rows[2].contains("ms</span>"), "duration: {}", rows[2]);
}

#[tokio::test]
async fn recent_deliveries_page_and_filter() {
    let ui = Ui::open();
    let receiver = Receiver::start();
    let hook = ui.hook("alice/ci", &receiver.url("/ok"));
    for _ in 0..26 {
        ui.send_test(hook.id);
    }
    ui.point(hook.id, &receiver.url("/fail"));
    ui.actions
        .send_test(hook.id, djinn_hook_payload::EventType::Cron)
        .unwrap();
    let path = format!("/ui/n/alice/ci/-/webhooks/{}", hook.id);
    let mut c = ui.client();
    let count = |body: &str| body.matches("/deliveries/").count();

    let first = c.get(&path).await;
    assert_eq!(count(&first.body), 25);
    first
        .has(&[&format!(r#"<a href="{path}?page=2#recent">Older</a>"#)])
        .lacks(&["Newer"]);
    let second = c.get(&format!("{path}?page=2")).await;
    assert_eq!(count(&second.body), 2);
    second
        .has(&[&format!(r#"<a href="{path}?page=1#recent">Newer</a>"#)])
        .lacks(&["Older</a>"]);

    let failed = c.get(&format!("{path}?failed=1")).await;
    assert_eq!(count(&failed.body), 1);
    failed.has(&["cron · test · 500", r#"name="failed" value="1" checked"#]);
    let cron = c.get(&format!("{path}?event=cron")).await;
    assert_eq!(count(&cron.body), 1);
    cron.has(&[r#"<option value="cron" selected>"#]);
    let none = c.get(&format!("{path}?test=none")).await;
    assert_eq!(count(&none.body), 0);
    none.has(&["No recent deliveries."]);
    let only = c.get(&format!("{path}?test=only&failed=1&page=1")).await;
    assert_eq!(count(&only.body), 1);
    // The store agrees with the page.
    let all = ui
        .store
        .deliveries(DeliveryFilter::hook(hook.id), StorePage::new(1))
        .unwrap();
    assert!(all.has_next);
}

#[tokio::test]
async fn the_delivery_page_shows_request_response_and_none() {
    let ui = Ui::open();
    let receiver = Receiver::start();
    let hook = ui.hook("alice/ci", &receiver.url("/fail"));
    let id = ui.send_test(hook.id);
    let d = ui.store.delivery(id).unwrap().unwrap();
    let mut c = ui.client();
    let page = c
        .get(&format!(
            "/ui/n/alice/ci/-/webhooks/{}/deliveries/{id}",
            hook.id
        ))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    page.has(&[
        "<title>alice/ci - Webhook Delivery · djinn-hooks</title>",
        &format!("<code>{}</code></h1>", d.event_id),
        "icon-failed",
        "build.submitted (test delivery)",
        &format!("{}: build.submitted", headers::EVENT),
        // Pretty JSON, keys in the order sent.
        "{\n  &#34;id&#34;: ",
        "<pre>500 Internal Server Error</pre>",
        ">Redeliver</button>",
    ]);
    // An empty response body is "None".
    let body_none = page.body.matches("<pre>None</pre>").count();
    assert_eq!(body_none, 1, "{}", page.body);

    // A transport error: a red alert, and "None" for the whole response.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/gone", closed.local_addr().unwrap());
    drop(closed);
    let down = ui.hook("alice/ci", &url);
    let id = ui.send_test(down.id);
    let page = c
        .get(&format!(
            "/ui/n/alice/ci/-/webhooks/{}/deliveries/{id}",
            down.id
        ))
        .await;
    page.has(&[r#"<p class="alert" role="alert">Failed to deliver payload: "#]);
    assert_eq!(
        page.body.matches("<pre>None</pre>").count(),
        3,
        "{}",
        page.body
    );
}

#[tokio::test]
async fn unknown_or_misplaced_things_are_404() {
    let ui = Ui::open();
    let receiver = Receiver::start();
    let hook = ui.hook("alice/ci", &receiver.url("/ok"));
    let other = ui.hook("bob/ci", &receiver.url("/ok"));
    let d = ui.send_test(hook.id);
    let mut c = ui.client();
    for path in [
        "/ui/n/alice/-/webhooks".to_owned(),
        "/ui/n/alice/ci/-/nope".to_owned(),
        "/ui/n/alice/ci/-/webhooks/999".to_owned(),
        format!("/ui/n/bob/ci/-/webhooks/{}", hook.id),
        format!("/ui/n/alice/ci/-/webhooks/{}/deliveries/999", hook.id),
        format!("/ui/n/alice/ci/-/webhooks/{}/deliveries/{d}", other.id),
    ] {
        let page = c.get(&path).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
        page.has(&["<h1>404 Not Found</h1>"]);
    }
    let get_delete = c
        .get(&format!("/ui/n/alice/ci/-/webhooks/{}/delete", hook.id))
        .await;
    assert_eq!(get_delete.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn assets_and_headers() {
    let ui = Ui::open();
    let mut c = ui.client();
    let css = c.get("/ui/assets/style.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert_eq!(css.headers["content-type"], "text/css; charset=utf-8");
    assert!(css.body.contains(".icon-failed"));
    let page = c.get("/ui/").await;
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("form-action 'self'"));
    assert_eq!(page.headers["x-content-type-options"], "nosniff");
    // Nothing loaded from another host.
    assert!(!page.body.contains("http://") && !page.body.contains("https://"));
    let root = c.get("/ui").await;
    assert_eq!(root.location(), "/ui/");
}

#[tokio::test]
async fn the_delivery_page_as_a_snapshot() {
    let ui = Ui::open();
    let receiver = Receiver::start();
    let hook = ui.hook("alice/ci", &receiver.url("/ok"));
    let id = ui.send_test(hook.id);
    let page = ui
        .client()
        .get(&format!(
            "/ui/n/alice/ci/-/webhooks/{}/deliveries/{id}",
            hook.id
        ))
        .await;
    insta::with_settings!({filters => vec![
        (r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "[uuid]"),
        (r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", "[time]"),
        (r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT", "[http-date]"),
        (r"\d+\.\d+ms", "[duration]"),
        (r"127\.0\.0\.1:\d+", "127.0.0.1:[port]"),
        (r"sha256=[0-9a-f]{64}", "sha256=[signature]"),
        (r#"name="_csrf" value="[^"]+""#, r#"name="_csrf" value="[csrf]""#),
        (r"(?s)<svg.*?</svg>", "[svg]"),
        // The example payload's fields past the first few: the payload crate's business.
        (r"(?s)(&#34;number&#34;: 1,\n).*?(\n\}</pre>)", "$1  [...]$2"),
    ]}, {
        insta::assert_snapshot!(page.body);
    });
}

#[tokio::test]
async fn a_hook_disabled_by_the_delivery_layer_says_so_and_saving_active_revives_it() {
    let ui = Ui::open();
    let hook = ui.hook("alice/ci", "https://gone.example/hook");
    // A delivery answered 410 Gone: the delivery layer disables the hook.
    let task = leased_test_task(&ui, hook.id);
    ui.store
        .complete_one(&Completion::new(
            task.task_id,
            task.lease,
            {
                let mut attempt = Attempt::new(&task.request, time::OffsetDateTime::now_utc());
                attempt.response_status = Some(410);
                attempt.outcome = AttemptOutcome::HttpStatus;
                attempt
            },
            {
                let mut decision = Decision::new(Outcome::Failed);
                decision.disable_hook = Some("410 Gone".into());
                decision
            },
        ))
        .unwrap();
    let path = format!("/ui/n/alice/ci/-/webhooks/{}", hook.id);
    let mut c = ui.client();
    // The tag on its row, and the banner atop the namespace's page.
    c.get("/ui/n/alice/ci/-/webhooks").await.has(&[
        "disabled: 410 Gone",
        "role=\"alert\">Webhook https://gone.example/hook was disabled on ",
        " after: 410 Gone",
    ]);
    c.get(&path)
        .await
        .has(&["Deliveries stopped: the webhook was disabled after 410 Gone (since "]);
    let saved = c
        .post(
            &path,
            &[
                ("payload_url", "https://gone.example/hook"),
                ("active", "on"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    let revived = ui.store.webhook(hook.id).unwrap().unwrap();
    assert!(revived.active && revived.disabled_reason.is_none());
    c.get(&path).await.lacks(&["Deliveries stopped"]);
    c.get("/ui/n/alice/ci/-/webhooks")
        .await
        .lacks(&["was disabled on"]);
}

#[tokio::test]
async fn an_open_breaker_is_shown_on_the_list_and_the_hook() {
    let ui = Ui::open();
    let hook = ui.hook("alice/ci", "http://down.example/hook");
    // A worker put a task off behind the destination's open breaker; the store records it.
    let task = leased_test_task(&ui, hook.id);
    let put_off = ui
        .store
        .put_off(&[PutOff {
            task_id: task.task_id,
            lease: task.lease,
            until: time::OffsetDateTime::now_utc() + time::Duration::minutes(5),
            destination: Destination::of("http://down.example/").unwrap(),
            reason: "5 consecutive timeouts".into(),
        }])
        .unwrap();
    assert_eq!(put_off, 1);
    let mut c = ui.client();
    c.get("/ui/n/alice/ci/-/webhooks").await.has(&[
        "Breaker open: deliveries to http://down.example:80 held until ",
        ": 5 consecutive timeouts",
        "its receiver is failing; deliveries to http://down.example:80 are held until ",
    ]);
    c.get(&format!("/ui/n/alice/ci/-/webhooks/{}", hook.id))
        .await
        .has(&[
            "Deliveries resume with one probe then.",
            "Delivery limits: the worker&#39;s default number of deliveries at once, the worker&#39;s default timeout",
        ]);
}

/// A test delivery of `hook_id` queued and leased, as a worker would hold it.
fn leased_test_task(ui: &Ui, hook_id: i64) -> Task {
    ui.store
        .queue_test(
            hook_id,
            djinn_hook_payload::EventType::Cron,
            b"{}".to_vec(),
            std::time::Duration::from_secs(60),
        )
        .unwrap()
}

#[tokio::test]
async fn a_namespace_with_a_dash_segment_has_its_pages() {
    // `-` alone is a namespace segment the store accepts; written `%2D`, it is not the `/-/`
    // that ends the namespace.
    let ui = Ui::open();
    let hook = ui.hook("alice/-", "http://127.0.0.1:9/hook");
    let mut c = ui.client();
    let href = format!("/ui/n/alice/%2D/-/webhooks/{}", hook.id);
    let list = c.get("/ui/n/alice/%2D/-/webhooks").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    list.has(&[&format!(r#"href="{href}""#)]);
    let page = c.get(&href).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    page.has(&[&format!("Webhook {}", hook.id)]);
    c.get("/ui/")
        .await
        .has(&[r#"href="/ui/n/alice/%2D/-/webhooks""#]);
}
