//! Sign-in, sessions, scopes, CSRF and `Origin`.

use std::sync::Arc;

use axum::http::StatusCode;
use djinn_hook_server::ui::Auth;

use crate::support::{Client, HOST, Receiver, Ui, check_token};

const LIST: &str = "/ui/n/alice/ci/-/webhooks";

async fn signed_in(ui: &Ui, token: &str) -> Client {
    let mut c = ui.client();
    let form = c.get("/ui/signin").await;
    assert_eq!(form.status, StatusCode::OK);
    let done = c
        .post("/ui/signin", &[("token", token), ("next", LIST)])
        .await;
    assert_eq!(c.redirected(&done), LIST, "{token}");
    c
}

#[tokio::test]
async fn pages_need_a_session_and_the_sign_in_form_exchanges_a_token_for_one() {
    let ui = Ui::tokens();
    let mut c = ui.client();
    let page = c.get(LIST).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(
        page.location(),
        "/ui/signin?next=%2Fui%2Fn%2Falice%2Fci%2F-%2Fwebhooks"
    );
    c.get("/ui/").await;
    let form = c.get(page.location()).await;
    form.has(&[
        r#"<input type="password" id="token" name="token""#,
        &format!(r#"name="next" value="{LIST}""#),
    ]);

    let wrong = c
        .post("/ui/signin", &[("token", "nope"), ("next", LIST)])
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    wrong
        .has(&["This token is not recognised."])
        .lacks(&["nope"]);
    assert!(!c.cookies.contains_key("djinn_ui_session"));

    let done = c
        .post("/ui/signin", &[("token", "writer"), ("next", LIST)])
        .await;
    assert_eq!(c.redirected(&done), LIST);
    let set = done
        .set_cookies()
        .into_iter()
        .find(|s| s.starts_with("djinn_ui_session="))
        .expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/ui", "Max-Age=28800"] {
        assert!(set.contains(attribute), "{attribute} missing: {set}");
    }
    assert!(!set.contains("Secure"), "plain-HTTP loopback: {set}");
    assert!(
        !set.contains("writer"),
        "the token never goes into the cookie"
    );
    let page = c.get(LIST).await;
    assert_eq!(page.status, StatusCode::OK);
    page.has(&["Create webhook", "Sign out"]);

    // A form posted after the session ended leads to sign-in, then to the list.
    let mut stale = ui.client();
    stale.get("/ui/signin").await;
    let refused = stale.post(&format!("{LIST}/1/delete"), &[]).await;
    assert_eq!(
        refused.location(),
        "/ui/signin?next=%2Fui%2Fn%2Falice%2Fci%2F-%2Fwebhooks"
    );

    // Sign-out ends it.
    let out = c.post("/ui/signout", &[]).await;
    assert_eq!(c.redirected(&out), "/ui/signin");
    assert!(!c.cookies.contains_key("djinn_ui_session"));
    assert_eq!(c.get(LIST).await.status, StatusCode::SEE_OTHER);

    // Only a path of this UI is a place to go next.
    let mut c = ui.client();
    c.get("/ui/signin").await;
    let away = c
        .post(
            "/ui/signin",
            &[("token", "writer"), ("next", "https://evil.example/")],
        )
        .await;
    assert_eq!(c.redirected(&away), "/ui/");
}

/// A `next` that is not a plain path of this UI: a header-splitting control character, another
/// host, a backslash, a scheme, a dot segment climbing out of `/ui/`.
const UNSAFE_NEXTS: &[&str] = &[
    "/ui/\r\nSet-Cookie:x",
    "/ui/\u{7f}",
    "/ui/\tx",
    "/ui/a b",
    "/ui/\u{e9}",
    "//evil.example/",
    "/ui//evil.example/",
    "/ui/\\\\evil.example",
    "/\\evil.example",
    "https://evil.example/ui/",
    "javascript:alert(1)//ui/",
    "/ui/../n/bob/ci/-/webhooks",
    "/ui/%2E%2e/n/bob/ci/-/webhooks",
    "/ui/n/./x",
    "/uix/",
    "",
];

#[tokio::test]
async fn an_unsafe_next_falls_back_to_the_index_on_the_form_and_after_sign_in() {
    let ui = Ui::tokens();
    for next in UNSAFE_NEXTS {
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("next", next)
            .finish();
        let mut c = ui.client();
        let form = c.get(&format!("/ui/signin?{query}")).await;
        assert_eq!(form.status, StatusCode::OK, "{next:?}: {}", form.body);
        form.has(&[r#"name="next" value="/ui/""#]);
        let done = c
            .post("/ui/signin", &[("token", "writer"), ("next", next)])
            .await;
        assert_eq!(c.redirected(&done), "/ui/", "{next:?}");
        // Signed in, the form sends on at once: to the index too.
        let again = c.get(&format!("/ui/signin?{query}")).await;
        assert_eq!(again.status, StatusCode::SEE_OTHER, "{next:?}");
        assert_eq!(again.location(), "/ui/", "{next:?}");
    }
    // A plain UI path, with its query, is kept.
    let mut c = ui.client();
    c.get("/ui/signin").await;
    let next = "/ui/n/alice/ci/-/webhooks/3?failed=1&page=2";
    let done = c
        .post("/ui/signin", &[("token", "writer"), ("next", next)])
        .await;
    assert_eq!(c.redirected(&done), next);
}

#[tokio::test]
async fn a_forged_or_tampered_session_is_no_session() {
    let ui = Ui::tokens();
    let mut c = signed_in(&ui, "reader").await;
    let cookie = c.cookies["djinn_ui_session"].clone();
    assert!(!cookie.contains("can_write"), "only an id: {cookie}");
    let (payload, tag) = cookie.split_once('.').unwrap();
    // Another id under the same tag.
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut id = b64.decode(payload).unwrap();
    id[0] ^= 1;
    c.cookies.insert(
        "djinn_ui_session".into(),
        format!("{}.{tag}", b64.encode(id)),
    );
    let refused = c.get(LIST).await;
    assert_eq!(refused.status, StatusCode::SEE_OTHER);
    assert!(
        !c.cookies.contains_key("djinn_ui_session"),
        "a dead session's cookie is cleared"
    );
    // Another server's key does not open it either.
    let other = Ui::tokens();
    let mut c2 = other.client();
    c2.cookies.insert("djinn_ui_session".into(), cookie);
    assert_eq!(c2.get(LIST).await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn signing_out_ends_every_session_of_the_token_and_their_csrf_tokens() {
    let ui = Ui::tokens();
    let mut c = signed_in(&ui, "writer").await;
    c.get(LIST).await;
    let stolen_cookies = c.cookies.clone();
    let stolen_csrf = c.csrf.clone().unwrap();
    let mut elsewhere = signed_in(&ui, "writer").await;
    let mut reader = signed_in(&ui, "reader").await;

    let out = c.post("/ui/signout", &[]).await;
    assert_eq!(c.redirected(&out), "/ui/signin");
    // The cookie as it was before sign-out, replayed: signed out.
    let mut replay = ui.client();
    replay.cookies = stolen_cookies;
    let page = replay.get(LIST).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(
        page.location().starts_with("/ui/signin?"),
        "{}",
        page.location()
    );
    let refused = replay
        .post_raw(
            &format!("{LIST}/create"),
            &[
                ("_csrf", &stolen_csrf),
                ("payload_url", "https://example.com/"),
            ],
            Some(&format!("http://{HOST}")),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    // The same token's session in another browser ended with it; another token's did not.
    assert_eq!(elsewhere.get(LIST).await.status, StatusCode::SEE_OTHER);
    assert_eq!(reader.get(LIST).await.status, StatusCode::OK);

    // A CSRF token of a session does not outlive it: not after sign-out ...
    let again = c
        .post_raw(
            "/ui/signin",
            &[("_csrf", &stolen_csrf), ("token", "writer")],
            Some(&format!("http://{HOST}")),
        )
        .await;
    assert_eq!(again.status, StatusCode::FORBIDDEN);
    // ... nor once another token signs in in the same browser.
    let mut c = signed_in(&ui, "writer").await;
    c.get(LIST).await;
    let writers = c.csrf.clone().unwrap();
    let switched = c
        .post("/ui/signin", &[("token", "reader"), ("next", LIST)])
        .await;
    assert_eq!(c.redirected(&switched), LIST);
    c.get(LIST).await.has(&["Signed in, read only"]);
    let old = c
        .post_raw(
            "/ui/signout",
            &[("_csrf", &writers)],
            Some(&format!("http://{HOST}")),
        )
        .await;
    assert_eq!(old.status, StatusCode::FORBIDDEN);
    assert_eq!(
        ui.store.webhooks("alice/ci").unwrap().len(),
        0,
        "nothing stored"
    );
}

#[tokio::test]
async fn failed_sign_ins_are_limited_per_address_with_a_retry_after() {
    let ui = Ui::tokens();
    let mut c = ui.client();
    c.remote = Some("192.0.2.7:40000".parse().unwrap());
    c.get("/ui/signin").await;
    for n in 0..10 {
        let wrong = c
            .post("/ui/signin", &[("token", &format!("guess-{n}"))])
            .await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "guess {n}");
    }
    let limited = c.post("/ui/signin", &[("token", "guess-10")]).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers["retry-after"], "6");
    limited.has(&["Too many failed sign-ins: try again in 6 s."]);
    // While limited even the right token waits: the answer tells a guesser nothing.
    let right = c.post("/ui/signin", &[("token", "writer")]).await;
    assert_eq!(right.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(!c.cookies.contains_key("djinn_ui_session"));
    // Another address is not held up.
    let mut other = ui.client();
    other.remote = Some("198.51.100.8:40000".parse().unwrap());
    other.get("/ui/signin").await;
    let done = other.post("/ui/signin", &[("token", "writer")]).await;
    assert_eq!(other.redirected(&done), "/ui/");
}

#[tokio::test]
async fn secure_cookies_under_https() {
    let ui = Ui::with(Auth::Tokens(Arc::new(check_token)), |s| {
        s.with_secure_cookies(true)
    });
    let mut c = ui.client();
    let form = c.get("/ui/signin").await;
    assert!(form.set_cookies().iter().all(|s| s.contains("; Secure")));
    let done = c.post("/ui/signin", &[("token", "writer")]).await;
    assert!(
        done.set_cookies().iter().all(|s| s.contains("; Secure")),
        "{:?}",
        done.set_cookies()
    );
}

#[tokio::test]
async fn a_read_only_token_sees_no_edit_buttons_and_cannot_write() {
    let ui = Ui::tokens();
    let hook = ui.hook("alice/ci", "https://example.com/hook");
    let mut c = signed_in(&ui, "reader").await;
    let path = format!("{LIST}/{}", hook.id);
    c.get(LIST)
        .await
        .has(&["Signed in, read only", "https://example.com/hook"])
        .lacks(&["Create webhook", ">Delete</button>"]);
    let edit = c.get(&path).await;
    assert_eq!(edit.status, StatusCode::OK);
    edit.has(&[
        "Recent deliveries",
        r#"name="payload_url" value="https://example.com/hook""#,
    ])
    .lacks(&[
        ">Save</button>",
        "Delete webhook",
        "Send test delivery",
        "Send again",
    ]);
    assert_eq!(
        c.get(&format!("{LIST}/create")).await.status,
        StatusCode::FORBIDDEN
    );
    for (action, fields) in [
        (
            format!("{LIST}/create"),
            vec![("payload_url", "https://x.example/")],
        ),
        (path.clone(), vec![("payload_url", "https://x.example/")]),
        (format!("{path}/delete"), vec![]),
        (format!("{path}/test"), vec![]),
        (format!("{path}/recover"), vec![("since", "24h")]),
    ] {
        let refused = c.post(&action, &fields).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{action}");
        refused.has(&["this token is read-only"]);
    }
    let stored = ui.store.webhooks("alice/ci").unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].payload_url, "https://example.com/hook");
    assert_eq!(ui.store.counts().unwrap().events, 0, "no test was sent");
}

#[tokio::test]
async fn a_write_only_token_reads_nothing_yet_writes_as_in_the_api() {
    let ui = Ui::tokens();
    let receiver = Receiver::start();
    let hook = ui.hook("alice/ci", &receiver.url("/ok"));
    let delivery = ui.send_test(hook.id);
    let path = format!("{LIST}/{}", hook.id);
    let mut c = signed_in(&ui, "scribe").await;
    let port = receiver.addr.port().to_string();
    for page in [
        "/ui/".to_owned(),
        LIST.to_owned(),
        path.clone(),
        format!("{path}/deliveries/{delivery}"),
    ] {
        let refused = c.get(&page).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{page}");
        refused
            .has(&["this token may not read"])
            .lacks(&[&port, "pwned", "Recent deliveries"]);
    }
    // The create form shows nothing stored; creating, as `POST …/webhooks` in the API, works.
    let form = c.get(&format!("{LIST}/create")).await;
    assert_eq!(form.status, StatusCode::OK);
    form.has(&["Signed in, write only"]);
    let created = c
        .post(
            &format!("{LIST}/create"),
            &[
                ("payload_url", "https://example.com/new"),
                ("events", "cron"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    assert_eq!(ui.store.webhooks("alice/ci").unwrap().len(), 2);
    // A refused edit answers with its errors, not with the stored webhook and its deliveries.
    let refused = c
        .post(&path, &[("payload_url", "nope"), ("events", "cron")])
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    refused
        .has(&["payload_url"])
        .lacks(&[&port, "Recent deliveries"]);
    // A bulk recovery, as `POST …/recover` in the API (nothing failed: none queued).
    let recovered = c
        .post(&format!("{path}/recover"), &[("since", "24h")])
        .await;
    assert_eq!(
        recovered.status,
        StatusCode::SEE_OTHER,
        "{}",
        recovered.body
    );
    let deleted = c.post(&format!("{path}/delete"), &[]).await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER);
    assert!(ui.store.webhook(hook.id).unwrap().is_none());
}

#[tokio::test]
async fn a_namespace_scoped_token_sees_only_its_namespaces() {
    let ui = Ui::tokens();
    let alice = ui.hook("alice/ci", "https://example.com/a");
    ui.hook("bob/ci", "https://example.com/b");
    ui.hook("bob/ci/child", "https://example.com/c");
    ui.hook("bob/cider", "https://example.com/d");
    let mut c = signed_in(&ui, "bob").await;
    let index = c.get("/ui/").await;
    index
        .has(&[">bob/ci</a>", ">bob/ci/child</a>"])
        .lacks(&["alice/ci", "bob/cider"]);
    assert_eq!(c.get(LIST).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        c.get(&format!("{LIST}/{}", alice.id)).await.status,
        StatusCode::NOT_FOUND
    );
    c.get("/ui/n/bob/ci/-/webhooks").await;
    let refused = c.post(&format!("{LIST}/{}/delete", alice.id), &[]).await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    assert!(ui.store.webhook(alice.id).unwrap().is_some());
}

#[tokio::test]
async fn a_form_without_a_valid_csrf_token_or_from_another_origin_is_refused() {
    let ui = Ui::open();
    let mut c = ui.client();
    let create = format!("{LIST}/create");
    c.get(&create).await;
    let token = c.csrf.clone().unwrap();
    let origin = format!("http://{HOST}");
    let url = ("payload_url", "https://example.com/hook");

    let missing = c.post_raw(&create, &[url], Some(&origin)).await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN);
    missing.has(&["security token is missing or stale"]);
    let wrong = c
        .post_raw(&create, &[("_csrf", "AAAA"), url], Some(&origin))
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    // Another browser's token does not fit this browser's cookie.
    let mut other = ui.client();
    other.get(&create).await;
    let theirs = other.csrf.clone().unwrap();
    assert_ne!(theirs, token);
    let stolen = c
        .post_raw(&create, &[("_csrf", &theirs), url], Some(&origin))
        .await;
    assert_eq!(stolen.status, StatusCode::FORBIDDEN);
    // The right token from another site.
    for bad_origin in [
        "http://evil.example",
        "null",
        "https://ui.test.evil.example",
    ] {
        let cross = c
            .post_raw(&create, &[("_csrf", &token), url], Some(bad_origin))
            .await;
        assert_eq!(cross.status, StatusCode::FORBIDDEN, "{bad_origin}");
        cross.has(&["sent from another site"]);
    }
    // No cookie at all: refused, and the answer gives the browser one.
    let mut fresh = ui.client();
    let bare = fresh
        .post_raw(&create, &[("_csrf", &token), url], Some(&origin))
        .await;
    assert_eq!(bare.status, StatusCode::FORBIDDEN);
    assert!(fresh.cookies.contains_key("djinn_ui_csrf"));
    assert!(
        ui.store.webhooks("alice/ci").unwrap().is_empty(),
        "nothing stored"
    );

    // The same form with its token and origin goes through.
    let ok = c
        .post_raw(&create, &[("_csrf", &token), url], Some(&origin))
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    // A client sending no Origin (curl) still needs, and here has, the token.
    let mut fields = vec![
        ("_csrf", token.as_str()),
        ("payload_url", "https://example.com/2"),
    ];
    fields.push(("active", "on"));
    let no_origin = c.post_raw(&create, &fields, None).await;
    assert_eq!(no_origin.status, StatusCode::SEE_OTHER);
    assert_eq!(ui.store.webhooks("alice/ci").unwrap().len(), 2);
}

#[tokio::test]
async fn sign_in_needs_csrf_and_the_open_mode_has_no_sign_in() {
    let ui = Ui::tokens();
    let mut c = ui.client();
    c.get("/ui/signin").await;
    let forged = c
        .post_raw(
            "/ui/signin",
            &[("token", "writer")],
            Some(&format!("http://{HOST}")),
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(!c.cookies.contains_key("djinn_ui_session"));

    let open = Ui::open();
    let mut c = open.client();
    let signin = c.get("/ui/signin").await;
    assert_eq!(signin.status, StatusCode::SEE_OTHER);
    c.get(LIST)
        .await
        .has(&["Create webhook"])
        .lacks(&["Sign out"]);
}

#[tokio::test]
async fn a_cross_site_arrival_at_sign_in_reloads_once_to_get_its_cookie() {
    let ui = Ui::tokens();
    let mut c = ui.client();
    let plain = c.get("/ui/signin").await;
    plain.lacks(&["http-equiv=\"refresh\""]);
    let request = axum::http::Request::builder()
        .uri("/ui/signin")
        .header("host", HOST)
        .header("sec-fetch-site", "cross-site")
        .body(axum::body::Body::empty())
        .unwrap();
    use tower::ServiceExt as _;
    let response = ui.router.clone().oneshot(request).await.unwrap();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&body).contains(r#"<meta http-equiv="refresh" content="0">"#));
}

#[tokio::test]
async fn paths_outside_the_ui_get_no_ui_cookies_once_merged() {
    // Merged into a server's router, the guard runs for UI paths only.
    let ui = Ui::open();
    let server = axum::Router::new()
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .merge(ui.router.clone());
    use tower::ServiceExt as _;
    for path in ["/healthz", "/favicon.ico"] {
        let request = axum::http::Request::builder()
            .uri(path)
            .header("host", HOST)
            .body(axum::body::Body::empty())
            .unwrap();
        let response = server.clone().oneshot(request).await.unwrap();
        assert!(response.headers().get("set-cookie").is_none(), "{path}");
    }
    let mut c = ui.client();
    assert!(c.get("/ui/").await.set_cookies()[0].starts_with("djinn_ui_csrf="));
}

#[tokio::test]
async fn behind_a_proxy_the_public_origin_is_accepted_and_cookies_are_secure() {
    let ui = Ui::with(Auth::Open, |s| {
        s.with_public_url("https://Hooks.Example.com/base/")
    });
    let mut c = ui.client();
    let create = format!("{LIST}/create");
    let form = c.get(&create).await;
    assert!(form.set_cookies().iter().all(|s| s.contains("; Secure")));
    let token = c.csrf.clone().unwrap();
    let url = ("payload_url", "https://example.com/hook");
    let other = c
        .post_raw(
            &create,
            &[("_csrf", &token), url],
            Some("https://other.example.com"),
        )
        .await;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
    let proxied = c
        .post_raw(
            &create,
            &[("_csrf", &token), url],
            Some("https://hooks.example.com"),
        )
        .await;
    assert_eq!(proxied.status, StatusCode::SEE_OTHER, "{}", proxied.body);
}
