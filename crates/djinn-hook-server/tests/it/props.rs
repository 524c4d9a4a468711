//! Property tests of what the server parses from outside, through its public surface: request
//! paths and query strings (the API's router and the UI's), the tokens file, and the UI's
//! create and edit form bodies. Never a panic nor a 5xx; bad input is a 4xx that says what is
//! wrong (the API's JSON names the field, the UI's form shows an error under the field); a
//! tokens file read back gives each token its scope.
//!
//! Cases: proptest's default (256 per property); `PROPTEST_CASES=100000 cargo test -p
//! djinn-hook-server --test it props` runs more.

use std::cell::RefCell;
use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use djinn_hook_server::{AppState, Tokens, router};
use djinn_hook_store::NewWebhook;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use tower::ServiceExt as _;

use crate::support::Ui;

/// Where the webhooks under test point: a loopback port nothing listens on (no case delivers,
/// and none could reach beyond this machine).
const HOOK_URL: &str = "http://127.0.0.1:9/hook";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Path segments: plain, percent-escaped (good and bad), the separator, dots (plain and
/// escaped), backslashes (which browsers read as `/`), control characters (escaped: a raw one
/// is no URI), ids.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{1,6}",
        "-",
        "\\.{1,2}",
        "%2[eE]|\\.%2[eE]|%2[eE]%2[eE]",
        "[a-z]{0,2}(\\\\|%5[cC])(\\.\\.)?[a-z]{0,2}",
        "%0[dD]%0[aA]|%00|%09|%1[fF]|%7[fF]",
        "%[0-9A-Fa-fzZ]{0,2}",
        "%C3%A9|%2F|%00|%FF|%20",
        "[0-9]{1,20}",
        "-?[0-9]{1,3}",
        "webhooks|deliveries|events|redeliver|rotate-secret|create|delete|test",
        "[!$&'()*+,;=:@~_.]{1,3}",
    ]
}

fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(segment(), 0..10).prop_map(|s| format!("/{}", s.join("/"))),
        (
            prop::collection::vec(segment(), 0..4),
            prop::collection::vec(segment(), 0..6),
        )
            .prop_map(|(ns, rest)| format!("/n/{}/-/{}", ns.join("/"), rest.join("/"))),
        (1..4i64, prop::collection::vec(segment(), 0..4))
            .prop_map(|(id, rest)| format!("/n/alice/ci/-/webhooks/{id}/{}", rest.join("/"))),
    ]
}

fn query() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        "[0-9]{0,12}",
        "-[0-9]{1,3}",
        "true|false|only|none|1|on",
        "[a-z.]{0,12}",
        "%[0-9A-Fa-fz]{0,2}|%FF|%C3%A9|\\+",
        "%0D%0ASet-Cookie:x|%00|%7F|%5C|\\\\|%2F%2F|\\.\\.",
    ];
    let key = "page|test|failed|event|per_page|x|";
    prop::collection::vec((key, value), 0..4).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    })
}

fn body() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("{}".to_owned()),
        "\\PC{0,20}",
        r#"\{"(payload_url|secret|events|ssl|overlap_seconds|active|timeout_ms)": (1|-1|null|true|"x"|\[\]|\["cron"\]|"https://e\.example/h"|1e99)\}"#,
    ]
}

#[test]
fn api_paths_queries_and_bodies_never_panic_or_5xx_and_a_4xx_says_why() {
    let rt = runtime();
    let store = crate::store();
    for url in [HOOK_URL, "http://127.0.0.1:9/other"] {
        store
            .create_webhook(NewWebhook::new("alice/ci", url))
            .unwrap();
    }
    let config = crate::config(&[]);
    let local = "127.0.0.1:8080".parse().unwrap();
    let app = router(AppState::new(&config, Arc::clone(&store), local, || {}));
    let methods = prop::sample::select(vec!["GET", "POST", "PATCH", "DELETE", "PUT", "HEAD"]);
    let mut runner = TestRunner::new(Config::default());
    runner
        .run(
            &(path(), query(), methods, body()),
            |(path, query, method, body)| {
                let uri = if query.is_empty() {
                    path.clone()
                } else {
                    format!("{path}?{query}")
                };
                let Ok(request) = Request::builder()
                    .method(method)
                    .uri(&uri)
                    .header("Host", "127.0.0.1:8080")
                    .header("Content-Type", "application/json")
                    .body(Body::from(body.clone()))
                else {
                    // Not a request line an HTTP client could send.
                    return Ok(());
                };
                let (status, text) = rt.block_on(async {
                    let response = app.clone().oneshot(request).await.unwrap();
                    let status = response.status();
                    let bytes = to_bytes(response.into_body(), 1 << 20).await.unwrap();
                    (status, String::from_utf8_lossy(&bytes).into_owned())
                });
                prop_assert!(
                    !status.is_server_error(),
                    "{method} {uri} {body:?}: {status} {text}"
                );
                if status.is_client_error() && method != "HEAD" {
                    let json: serde_json::Value = serde_json::from_str(&text)
                        .map_err(|e| TestCaseError::fail(format!("{uri}: {e}: {text}")))?;
                    let said = json.as_object().is_some_and(|o| {
                        !o.is_empty()
                            && o.values()
                                .all(|v| !v.to_string().trim_matches('"').is_empty())
                    });
                    prop_assert!(said, "{method} {uri}: {status} {text}");
                }
                Ok(())
            },
        )
        .unwrap();
}

#[test]
fn a_bad_page_or_test_filter_is_a_400_naming_it_and_a_good_one_a_200() {
    let rt = runtime();
    let store = crate::store();
    let hook = store
        .create_webhook(NewWebhook::new("alice/ci", HOOK_URL))
        .unwrap();
    let config = crate::config(&[]);
    let local = "127.0.0.1:8080".parse().unwrap();
    let app = router(AppState::new(&config, Arc::clone(&store), local, || {}));
    let path = format!("/n/alice/ci/-/webhooks/{}/deliveries", hook.id);
    let page = prop_oneof!["[0-9]{1,12}", "-?[0-9a-z%+. ]{0,6}"];
    let test = prop_oneof!["true|false", "[a-zA-Z0-9%]{0,6}"];
    let mut runner = TestRunner::new(Config::default());
    runner
        .run(&(page, test), |(page, test)| {
            let query = form_urlencoded::Serializer::new(String::new())
                .append_pair("page", &page)
                .append_pair("test", &test)
                .finish();
            let request = Request::get(format!("{path}?{query}"))
                .header("Host", "127.0.0.1:8080")
                .body(Body::empty())
                .unwrap();
            let (status, text) = rt.block_on(async {
                let response = app.clone().oneshot(request).await.unwrap();
                let status = response.status();
                let bytes = to_bytes(response.into_body(), 1 << 20).await.unwrap();
                (status, String::from_utf8_lossy(&bytes).into_owned())
            });
            let page_ok = page.parse::<u32>().is_ok_and(|p| p >= 1);
            let test_ok = test == "true" || test == "false";
            if page_ok && test_ok {
                prop_assert_eq!(status, StatusCode::OK, "{} {}", query, text);
            } else {
                prop_assert_eq!(status, StatusCode::BAD_REQUEST, "{} {}", query, text);
                let field = if page_ok { "test" } else { "page" };
                prop_assert!(text.contains(&format!("\"{field}\"")), "{query}: {text}");
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn ui_paths_and_queries_never_panic_or_5xx() {
    let rt = runtime();
    let ui = Ui::open();
    let hook = ui.hook("alice/ci", HOOK_URL);
    let client = RefCell::new(ui.client());
    let ui_path = prop_oneof![
        path().prop_map(|p| format!("/ui{p}")),
        query().prop_map(move |q| format!("/ui/n/alice/ci/-/webhooks/{}?{q}", hook.id)),
        query().prop_map(|q| format!("/ui/go?{q}")),
        "[a-z./%\\\\-]{0,20}".prop_map(|ns| format!("/ui/go?ns={ns}")),
        next().prop_map(|next| format!("/ui/signin?{}", encoded(&[("next", &next)]))),
    ];
    let mut runner = TestRunner::new(Config::default());
    runner
        .run(&ui_path, |path| {
            if path.parse::<axum::http::Uri>().is_err() {
                return Ok(());
            }
            let page = rt.block_on(client.borrow_mut().get(&path));
            prop_assert!(
                !page.status.is_server_error(),
                "{path}: {} {}",
                page.status,
                page.body
            );
            Ok(())
        })
        .unwrap();
}

/// A `next` for sign-in: UI paths, other hosts, and the control characters, backslashes and
/// dot segments that must not pass.
fn next() -> impl Strategy<Value = String> {
    prop_oneof![
        "/ui/[a-z0-9/?=&.%-]{0,16}",
        "(/ui/)?[a-z./\\\\:%\\x00-\\x1f\\x7f]{0,12}",
        "\\PC{0,12}",
        "(https?:)?//[a-z.]{1,8}/ui/",
    ]
}

/// `pairs` as a query string or form body.
fn encoded(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

#[test]
fn sign_in_goes_on_to_a_plain_ui_path_or_the_index() {
    let rt = runtime();
    let ui = Ui::tokens();
    let mut runner = TestRunner::new(Config::default());
    runner
        .run(&next(), |next| {
            let mut c = ui.client();
            rt.block_on(c.get("/ui/signin"));
            let done = rt.block_on(c.post("/ui/signin", &[("token", "writer"), ("next", &next)]));
            prop_assert_eq!(
                done.status,
                StatusCode::SEE_OTHER,
                "{:?}: {}",
                next,
                done.body
            );
            let to = done.location();
            prop_assert!(to == "/ui/" || to == next, "{next:?} -> {to:?}");
            prop_assert!(
                to.starts_with("/ui/") && to.bytes().all(|b| b.is_ascii_graphic() && b != b'\\'),
                "{next:?} -> {to:?}"
            );
            // Where a browser goes is where the server said.
            let base = url::Url::parse("http://ui.test/ui/signin").unwrap();
            let resolved = base.join(to).unwrap();
            prop_assert_eq!(resolved.host_str(), Some("ui.test"));
            prop_assert!(
                resolved.path().starts_with("/ui/"),
                "{next:?} -> {resolved}"
            );
            Ok(())
        })
        .unwrap();
}

/// Namespace names: plain, with dots, dot segments, backslashes, escapes and the separator.
fn namespace() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        "[a-z]{1,4}",
        "[a-z.]{1,4}",
        "\\.{1,2}",
        "[a-z]{0,2}\\\\(\\.\\.)?[a-z]{0,2}",
        "[%?#; -]{1,3}",
        "-",
    ];
    prop::collection::vec(segment, 2..5).prop_map(|s| s.join("/"))
}

/// Any namespace the store accepts has a link on the index that a browser resolves to itself,
/// and that opens that namespace's webhooks; the store refuses names a link would change.
#[test]
fn a_namespaces_link_opens_that_namespace_in_a_browser() {
    let rt = runtime();
    let ui = Ui::open();
    let client = RefCell::new(ui.client());
    let base = url::Url::parse("http://ui.test/ui/").unwrap();
    let mut runner = TestRunner::new(Config::default());
    runner
        .run(&namespace(), |ns| {
            let hook = match ui.store.ensure_namespace(&ns) {
                Ok(_) => ui.hook(&ns, HOOK_URL),
                Err(err) => {
                    let changes = ns.contains('\\')
                        || ns
                            .split('/')
                            .any(|s| s == "." || s == ".." || s.trim().is_empty());
                    prop_assert!(changes, "{ns:?}: {err}");
                    return Ok(());
                }
            };
            let mut c = client.borrow_mut();
            let index = rt.block_on(c.get("/ui/"));
            let links: Vec<&str> = index
                .body
                .match_indices(r#"<a href="/ui/n/"#)
                .map(|(at, _)| {
                    let link = &index.body[at + 9..];
                    &link[..link.find('"').unwrap()]
                })
                .collect();
            prop_assert_eq!(links.len(), 1, "{}", index.body);
            let resolved = base.join(links[0]).unwrap();
            prop_assert_eq!(resolved.path(), links[0]);
            let list = rt.block_on(c.get(resolved.path()));
            prop_assert_eq!(list.status, StatusCode::OK, "{:?} {}", ns, links[0]);
            prop_assert!(
                list.body.contains(&format!("/-/webhooks/{}\"", hook.id)),
                "{:?}: {}",
                ns,
                list.body
            );
            ui.store.delete_webhook(hook.id).unwrap();
            Ok(())
        })
        .unwrap();
}

/// A create or edit form's fields, some good, some not.
fn form_fields() -> impl Strategy<Value = Vec<(String, String)>> {
    let field = prop_oneof![
        (
            Just("payload_url"),
            prop_oneof![
                "https?://[a-z]{1,8}\\.example/[a-z]{0,5}",
                "\\PC{0,20}",
                "(ftp|https?)://[^/]{0,10}",
                "http://127\\.0\\.0\\.1:[0-9]{1,5}/n/alice/ci/-/events",
                "https://[a-z.]{1,6}[\\\\\\x00-\\x1f\\x7f./]{1,6}",
            ]
            .boxed()
        ),
        (
            Just("secret"),
            "\\PC{0,12}|[a-z\\\\.\\x00-\\x1f]{0,8}".boxed()
        ),
        (
            Just("events"),
            "cron|build\\.finished|[a-z.]{0,12}|\\PC{0,6}|[a-z.\\\\\\x00-\\x1f]{0,6}".boxed()
        ),
        (Just("ssl"), "on|".boxed()),
        (Just("active"), "on|".boxed()),
        (Just("standard_webhooks"), "on|".boxed()),
        (Just("remove_secret"), "on|".boxed()),
        (Just("other"), "\\PC{0,8}".boxed()),
    ];
    prop::collection::vec(field, 0..8)
        .prop_map(|fields| fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

#[test]
fn ui_form_bodies_never_panic_or_5xx_and_a_refusal_names_the_field() {
    let rt = runtime();
    let ui = Ui::with(djinn_hook_server::ui::Auth::Open, |state| {
        state.refusing_own_intake("127.0.0.1:8080".parse().unwrap(), "http://127.0.0.1:8080")
    });
    let hook = ui.hook("alice/ci", HOOK_URL);
    let edit = format!("/ui/n/alice/ci/-/webhooks/{}", hook.id);
    let create = "/ui/n/alice/ci/-/webhooks/create".to_owned();
    let client = RefCell::new(ui.client());
    rt.block_on(client.borrow_mut().get(&create));
    let target = prop::sample::select(vec![create, edit.clone()]);
    let mut runner = TestRunner::new(Config::default());
    runner
        .run(&(target, form_fields()), |(target, fields)| {
            let fields: Vec<(&str, &str)> = fields
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let page = rt.block_on(client.borrow_mut().post(&target, &fields));
            match page.status {
                StatusCode::SEE_OTHER => {}
                StatusCode::UNPROCESSABLE_ENTITY => {
                    prop_assert!(
                        page.body.contains("The webhook was not saved"),
                        "{fields:?}: {}",
                        page.body
                    );
                    let named = ["payload_url", "ssl", "secret"].iter().any(|f| {
                        page.body
                            .contains(&format!(r#"<p class="error" id="{f}-error">"#))
                    }) || page.body.contains(r#"<p class="error">unknown event"#);
                    prop_assert!(
                        named,
                        "no error under a field for {fields:?}: {}",
                        page.body
                    );
                }
                other => prop_assert!(false, "{target} {fields:?}: {other} {}", page.body),
            }
            // Put the edited webhook back, so later cases edit a valid one.
            ui.point(hook.id, HOOK_URL);
            Ok(())
        })
        .unwrap();
}

#[test]
fn raw_form_bodies_never_panic_or_5xx() {
    let rt = runtime();
    let ui = Ui::open();
    let hook = ui.hook("alice/ci", HOOK_URL);
    let client = RefCell::new(ui.client());
    let create = "/ui/n/alice/ci/-/webhooks/create";
    rt.block_on(client.borrow_mut().get(create));
    let targets = prop::sample::select(vec![
        create.to_owned(),
        format!("/ui/n/alice/ci/-/webhooks/{}", hook.id),
        format!("/ui/n/alice/ci/-/webhooks/{}/rotate-secret", hook.id),
    ]);
    let raw = prop_oneof![
        "\\PC{0,40}".prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..40),
        "((payload_url|events|secret|ssl|overlap_hours|event|[a-z_]{1,8})=[%a-zA-Z0-9+&=.:/]{0,12}&?){0,5}"
            .prop_map(String::into_bytes),
    ];
    let mut runner = TestRunner::new(Config::default());
    runner
        .run(&(targets, raw), |(target, raw)| {
            // The CSRF token first (else the guard answers 403 before any handler reads it),
            // then the bytes as they are.
            let mut c = client.borrow_mut();
            let mut body = format!("_csrf={}&", c.csrf.clone().unwrap()).into_bytes();
            body.extend_from_slice(&raw);
            let page = rt.block_on(c.post_bytes(&target, body));
            prop_assert!(
                !page.status.is_server_error(),
                "{target} {:?}: {} {}",
                String::from_utf8_lossy(&raw),
                page.status,
                page.body
            );
            drop(c);
            ui.point(hook.id, HOOK_URL);
            Ok(())
        })
        .unwrap();
}

/// A scope word: the four kinds and namespace lists, as the tokens file spells them.
fn scope_word() -> impl Strategy<Value = String> {
    prop_oneof![
        "intake|read|write",
        "[a-z]{1,6}/[a-z]{1,6}(/[a-z]{1,4})?".prop_map(|ns| format!("namespace={ns}")),
    ]
}

#[test]
fn a_tokens_file_reads_back_each_token_with_its_scope() {
    let dir = tempfile::tempdir().unwrap();
    let mut runner = TestRunner::new(Config::default());
    let lines = prop::collection::vec(
        (
            "[A-Za-z0-9_-]{16,32}",
            prop::collection::vec(scope_word(), 0..4),
            "( |\t){1,3}",
        ),
        1..6,
    );
    let noise = prop::collection::vec("#\\PC{0,10}|[ \t]{0,3}", 0..3);
    runner
        .run(&(lines, noise), |(lines, noise)| {
            let mut text = String::new();
            for (i, (token, words, gap)) in lines.iter().enumerate() {
                if let Some(n) = noise.get(i) {
                    text.push_str(n);
                    text.push('\n');
                }
                text.push_str(&format!("{gap}{token}{gap}{}\n", words.join(gap)));
            }
            let file = dir.path().join("tokens");
            std::fs::write(&file, &text).unwrap();
            let tokens = Tokens::load(Some(&file), None)
                .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
            prop_assert_eq!(tokens.len(), lines.len());
            for (token, words, _) in &lines {
                let kinds: Vec<&str> = words
                    .iter()
                    .filter(|w| !w.starts_with("namespace="))
                    .map(String::as_str)
                    .collect();
                let namespaces: Vec<String> = words
                    .iter()
                    .filter_map(|w| w.strip_prefix("namespace="))
                    .map(str::to_owned)
                    .collect();
                let may = |k: &str| kinds.is_empty() || kinds.contains(&k);
                let access = tokens.ui_access(token);
                if !may("read") && !may("write") {
                    prop_assert_eq!(access, None, "an intake-only token");
                    continue;
                }
                let access = access.expect("a configured token");
                prop_assert_eq!(access.can_read, may("read"));
                prop_assert_eq!(access.can_write, may("write"));
                prop_assert_eq!(
                    access.namespaces,
                    (!namespaces.is_empty()).then_some(namespaces)
                );
            }
            prop_assert_eq!(tokens.ui_access("not-a-configured-token"), None);
            Ok(())
        })
        .unwrap();
}

#[test]
fn a_bad_tokens_file_is_an_error_naming_its_line_and_never_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let mut runner = TestRunner::new(Config::default());
    let word = prop_oneof![scope_word(), "\\PC{1,8}", "namespace=", "[A-Z]{1,5}"];
    let lines = prop::collection::vec(
        ("[A-Za-z0-9]{20,24}", prop::collection::vec(word, 0..3)),
        1..5,
    );
    runner
        .run(&lines, |lines| {
            let text: String = lines
                .iter()
                .map(|(token, words)| format!("{token} {}\n", words.join(" ")))
                .collect();
            let file = dir.path().join("tokens");
            std::fs::write(&file, &text).unwrap();
            match Tokens::load(Some(&file), None) {
                Ok(tokens) => {
                    prop_assert_eq!(tokens.len(), lines.len());
                }
                Err(error) => {
                    let error = error.to_string();
                    prop_assert!(error.starts_with("--token-file "), "{error}");
                    prop_assert!(error.contains(": line "), "{error}");
                    for (token, _) in &lines {
                        prop_assert!(!error.contains(token.as_str()), "{error}");
                    }
                }
            }
            Ok(())
        })
        .unwrap();
}
