//! `serve`: the REST API over real HTTP on 127.0.0.1 (lifecycle with snapshots, every error
//! status, auth, an event reaching a receiver signed, metrics) and shutdown with deliveries in
//! flight.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use djinn_hook_payload::{DEFAULT_API_SERVER, EventType, example_payload};
use djinn_hook_server::Receiver;
use djinn_hook_sign::Secret;
use djinn_hook_sign::headers;
use djinn_hook_testkit::{wait_for, wait_for_ok};
use serde_json::{Value, json};

use crate::serve_process;
use crate::{Env, agent};

const NS: &str = "alice/ci";
const SECRET: &str = "It's a Secret to Everybody";
const TOKEN: &str = "t0k3n-for-the-tests";

/// A running `serve`, killed when dropped.
pub(crate) struct Serve {
    pub(crate) child: Child,
    pub(crate) base: String,
    logs: Arc<Mutex<Vec<String>>>,
    reader: Option<thread::JoinHandle<()>>,
    token: Option<String>,
}

impl Serve {
    /// Starts `serve --listen 127.0.0.1:0 --allow-private-network` plus `extra`, with `tokens` in
    /// `DJINN_HOOKS_TOKENS`, and reads the bound address from its first log line.
    fn start(env: &Env, extra: &[&str], tokens: Option<&str>) -> Serve {
        let mut args = vec![
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--allow-private-network",
        ];
        args.extend_from_slice(extra);
        let mut command = env.command(&args);
        if let Some(tokens) = tokens {
            command.env("DJINN_HOOKS_TOKENS", tokens);
        }
        Serve::spawn(command, tokens)
    }

    /// Spawns `command` (a `serve`, perhaps behind a shell) and reads the bound address from
    /// its first log line; `tokens` as in [`Serve::start`].
    pub(crate) fn spawn(mut command: std::process::Command, tokens: Option<&str>) -> Serve {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&logs);
        let spawned = serve_process::spawn(&mut command, move |line| {
            sink.lock().unwrap().push(line);
        });
        let mut serve = Serve {
            child: spawned.child,
            base: String::new(),
            logs,
            reader: Some(spawned.reader),
            token: tokens.map(|t| t.split(',').next().unwrap().to_owned()),
        };
        match spawned.addr {
            Some(addr) => serve.base = format!("http://{addr}"),
            None => panic!("serve did not start: {}", serve.logs()),
        }
        serve
    }

    pub(crate) fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    /// Sends a request with the configured token (if any).
    fn call(&self, method: &str, path: &str, body: Option<&str>) -> Reply {
        let token = self.token.clone();
        self.call_with(method, path, body, token.as_deref(), &[])
    }

    fn call_with(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        token: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let typed = headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-type"));
        if body.is_some() && !typed {
            request = request.header("Content-Type", "application/json");
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(body.unwrap_or("").as_bytes().to_vec())
            .unwrap();
        let mut response = agent()
            .run(request)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}\n{}", self.logs()));
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        Reply {
            status: response.status().as_u16(),
            headers,
            json: serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
        }
    }

    /// Posts an event with its example payload.
    fn post_event(&self, ns: &str, event: EventType) -> Reply {
        let body = String::from_utf8(example_payload(event, DEFAULT_API_SERVER).to_body()).unwrap();
        let token = self.token.clone();
        self.call_with(
            "POST",
            &format!("/n/{ns}/-/events"),
            Some(&body),
            token.as_deref(),
            &[(headers::EVENT, event.name())],
        )
    }

    /// Polls `GET path` until `done` holds for its JSON.
    #[track_caller]
    fn wait_for(&self, path: &str, done: impl Fn(&Value) -> bool) -> Value {
        wait_for_ok(path, || {
            let reply = self.call("GET", path, None);
            if done(&reply.json) {
                Ok(reply.json)
            } else {
                Err(reply.text)
            }
        })
    }

    /// Waits for a log line containing `text`: a request's line is written just after its
    /// response.
    #[track_caller]
    pub(crate) fn wait_for_log(&self, text: &str) {
        wait_for_ok(&format!("{text:?} in the log"), || {
            let logs = self.logs();
            if logs.contains(text) {
                Ok(())
            } else {
                Err(logs)
            }
        });
    }

    /// SIGTERM, then waits for it to exit and returns the exit code.
    pub(crate) fn terminate(&mut self) -> i32 {
        let pid = self.child.id().to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(status.success());
        let (child, logs) = (&mut self.child, &self.logs);
        let status = wait_for_ok("serve to stop", || match child.try_wait().unwrap() {
            Some(status) => Ok(status),
            None => Err(logs.lock().unwrap().join("\n")),
        });
        // The pipe is closed: the reader has every line once it ends.
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        status.code().unwrap_or(-1)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response: status, headers (lower-case names), body as text and JSON (`null` if not JSON).
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    text: String,
    json: Value,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    #[track_caller]
    fn expect(self, status: u16) -> Reply {
        assert_eq!(self.status, status, "{self:#?}");
        self
    }
}

/// Snapshot settings: [`crate::redacted`] plus Standard Webhooks signatures and timestamps.
fn redacted() -> insta::Settings {
    crate::redacted(&[
        (r#""v1,[A-Za-z0-9+/=]+""#, r#""v1,[hmac]""#),
        (r#"("webhook-timestamp",\s+)"\d+""#, r#"$1"[unix]""#),
    ])
}

/// `value` with every `url` and `webhooks_url` key set to `null`, as the command line prints
/// them (it knows no API base URL).
fn without_urls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| match k.as_str() {
                    "url" | "webhooks_url" => (k.clone(), Value::Null),
                    _ => (k.clone(), without_urls(v)),
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_urls).collect()),
        other => other.clone(),
    }
}

fn create_body(url: &str) -> String {
    json!({
        "payload_url": url,
        "secret": SECRET,
        "events": ["build.submitted", "build.finished"],
    })
    .to_string()
}

#[test]
fn lifecycle_create_list_get_update_deliveries_redeliver_delete() {
    let env = Env::new();
    let receiver = Receiver::start("127.0.0.1:0", Secret::new(SECRET)).unwrap();
    let mut serve = Serve::start(&env, &[], None);
    let hooks = format!("/n/{NS}/-/webhooks");

    let created = serve
        .call("POST", &hooks, Some(&create_body(&receiver.url())))
        .expect(201);
    assert_eq!(
        created
            .header("Location")
            .map(|l| l.ends_with("/n/alice/ci/-/webhooks/1")),
        Some(true)
    );
    assert!(
        !created.text.contains(SECRET),
        "the secret is never returned"
    );
    let id = created.json["id"].as_i64().unwrap();
    let hook = format!("{hooks}/{id}");
    redacted().bind(|| insta::assert_snapshot!("serve-create", created.text));

    let list = serve.call("GET", &hooks, None).expect(200);
    assert_eq!(list.json.as_array().map(Vec::len), Some(1));
    assert_eq!(list.json[0], created.json);
    let got = serve.call("GET", &hook, None).expect(200);
    assert_eq!(got.json, created.json);

    let updated = serve
        .call(
            "PATCH",
            &hook,
            Some(r#"{"events": ["build.finished"], "standard_webhooks": true}"#),
        )
        .expect(200);
    assert_eq!(updated.json["events"], json!(["build.finished"]));
    assert_eq!(updated.json["has_secret"], true, "an absent secret is kept");
    redacted().bind(|| insta::assert_snapshot!("serve-update", updated.text));

    // An event it does not subscribe to matches nothing; one it does is delivered, signed.
    let skipped = serve.post_event(NS, EventType::BuildSubmitted).expect(202);
    assert_eq!(skipped.json["matched"], 0);
    let accepted = serve.post_event(NS, EventType::BuildFinished).expect(202);
    assert_eq!(accepted.json["matched"], 1);
    assert_eq!(accepted.json["event"], "build.finished");
    let event_id = accepted.json["event_id"].as_str().unwrap().to_owned();
    redacted().bind(|| insta::assert_snapshot!("serve-event-accepted", accepted.text));

    let post = receiver
        .next_timeout(Duration::from_secs(10))
        .expect("the event reaches the receiver");
    assert_eq!(post.event(), Some("build.finished"));
    assert_eq!(post.delivery(), Some(event_id.as_str()));
    assert_eq!(post.hook_id(), Some(id.to_string().as_str()));
    let signature = post.signature().expect("signed");
    djinn_hook_sign::verify(&Secret::new(SECRET), &post.body, signature)
        .expect("the signature verifies with the webhook's secret");
    assert!(
        post.header(headers::WEBHOOK_SIGNATURE).is_some(),
        "standard_webhooks was switched on"
    );
    assert_eq!(
        post.body,
        example_payload(EventType::BuildFinished, DEFAULT_API_SERVER).to_body()
    );

    let deliveries = serve.wait_for(&format!("{hook}/deliveries"), |v| {
        v.as_array().is_some_and(|a| a.len() == 1)
    });
    assert_eq!(deliveries[0]["code"], 204);
    assert_eq!(deliveries[0]["event_id"], event_id.as_str());
    let text = serde_json::to_string_pretty(&deliveries).unwrap();
    redacted().bind(|| insta::assert_snapshot!("serve-deliveries", text));

    let delivery_id = deliveries[0]["id"].as_i64().unwrap();
    let full = serve
        .call("GET", &format!("{hook}/deliveries/{delivery_id}"), None)
        .expect(200);
    assert_eq!(full.json["request"]["body_encoding"], "utf-8");
    assert_eq!(
        full.json["request"]["body"].as_str().map(str::as_bytes),
        Some(post.body.as_slice())
    );
    assert!(!full.text.contains(SECRET));
    let text = full.text.replace(
        &serde_json::to_string(full.json["request"]["body"].as_str().unwrap()).unwrap(),
        r#""[payload]""#,
    );
    redacted().bind(|| insta::assert_snapshot!("serve-delivery", text));

    let shown = serve.call("GET", &hook, None).expect(200);
    assert_eq!(shown.json["last_response"]["code"], 204);
    assert!(shown.json["last_response"]["duration"].as_u64().unwrap() > 0);
    assert_eq!(shown.json["last_response"]["delivery_id"], delivery_id);

    // The command line prints the same entities in the same shape, its URLs null.
    let cli = |args: &[&str]| -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        serde_json::from_str(env.run(&all, None).ok()).unwrap()
    };
    let (id_arg, delivery_arg) = (id.to_string(), delivery_id.to_string());
    assert_eq!(cli(&["hook", "show", &id_arg]), without_urls(&shown.json));
    assert_eq!(cli(&["hook", "list"]), json!([without_urls(&shown.json)]));
    assert_eq!(
        cli(&["deliveries", "show", &delivery_arg]),
        without_urls(&full.json)
    );
    assert_eq!(
        cli(&["deliveries", "list", "--hook", &id_arg])["items"],
        without_urls(&deliveries)
    );

    let queued = serve
        .call(
            "POST",
            &format!("{hook}/deliveries/{delivery_id}/redeliver"),
            None,
        )
        .expect(202);
    redacted().bind(|| insta::assert_snapshot!("serve-redeliver", queued.text));
    let again = receiver
        .next_timeout(Duration::from_secs(10))
        .expect("the redelivery reaches the receiver");
    assert_eq!(again.delivery(), Some(event_id.as_str()));
    assert_eq!(again.body, post.body, "the recorded body, byte for byte");
    let deliveries = serve.wait_for(&format!("{hook}/deliveries"), |v| {
        v.as_array().is_some_and(|a| a.len() == 2)
    });
    assert_eq!(deliveries[0]["redelivery"], true, "newest first");
    assert_eq!(deliveries[1]["redelivery"], false);

    // The counters follow the commit (the worker's observer runs just after it): poll.
    let want = [
        "djinn_hooks_events_accepted_total 2",
        r#"djinn_hooks_deliveries_total{outcome="delivered",result="success"} 2"#,
        "djinn_hooks_delivery_duration_seconds_count 2",
        "djinn_hooks_tasks_pending 0",
        "djinn_hooks_webhooks_disabled 0",
        r#"djinn_hooks_http_requests_total{code="202"} 3"#,
    ];
    wait_for_ok("every wanted metric", || {
        let metrics = serve.call("GET", "/metrics", None).expect(200);
        assert!(
            metrics
                .header("Content-Type")
                .is_some_and(|t| t.starts_with("application/openmetrics-text"))
        );
        let missing: Vec<&str> = want
            .iter()
            .copied()
            .filter(|line| !metrics.text.lines().any(|l| l == *line))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!("{missing:?}\n{}", metrics.text))
        }
    });

    // 409: a redelivery asked of an inactive webhook.
    serve
        .call("PATCH", &hook, Some(r#"{"active": false}"#))
        .expect(200);
    let conflict = serve
        .call(
            "POST",
            &format!("{hook}/deliveries/{delivery_id}/redeliver"),
            None,
        )
        .expect(409);
    assert_eq!(
        conflict.json,
        json!({"message": format!("webhook {id} is not active; re-enable it before redelivering")})
    );

    serve.call("DELETE", &hook, None).expect(204);
    serve.call("GET", &hook, None).expect(404);
    let list = serve.call("GET", &hooks, None).expect(200);
    assert_eq!(list.json, json!([]));

    assert_eq!(serve.terminate(), 0, "{}", serve.logs());
    let logs = serve.logs();
    assert!(!logs.contains(SECRET), "no secret in the logs:\n{logs}");
    assert!(
        !logs.contains(&receiver.url()),
        "no payload URL in the logs"
    );
    assert!(
        logs.lines()
            .any(|l| l.contains("msg=request method=POST path=/n/alice/ci/-/events status=202")),
        "{logs}"
    );
    assert_eq!(
        logs.lines().filter(|l| l.contains("msg=delivery ")).count(),
        2,
        "{logs}"
    );
    assert!(logs.contains("auth=\"none: no tokens configured"), "{logs}");
}

#[test]
fn child_namespaces_and_pages_of_deliveries() {
    let env = Env::new();
    let (url, got) = crate::fixtures::receiver(Duration::ZERO);
    let serve = Serve::start(&env, &[], None);
    let ns = "alice/parent/child";
    let hooks = format!("/n/{ns}/-/webhooks");
    let created = serve
        .call(
            "POST",
            &hooks,
            Some(&json!({"payload_url": url}).to_string()),
        )
        .expect(201);
    let namespace = &created.json["namespace"];
    assert_eq!(namespace["path"], "parent/child");
    assert_eq!(namespace["name"], "child");
    assert!(namespace["parent_id"].as_i64().is_some(), "{namespace}");
    assert_eq!(created.json["has_secret"], false);
    assert_eq!(
        created.json["events"].as_array().unwrap().len(),
        15,
        "none given: all"
    );
    // The parent exists now but has no webhook of its own.
    serve
        .call("GET", "/n/alice/parent/-/webhooks", None)
        .expect(200);
    let id = created.json["id"].as_i64().unwrap();

    for _ in 0..27 {
        serve.post_event(ns, EventType::Cron).expect(202);
    }
    let deliveries = format!("{hooks}/{id}/deliveries");
    wait_for_ok("27 deliveries", || match got.lock().unwrap().len() {
        27.. => Ok(()),
        n => Err(format!("{}\n{n}", serve.call("GET", "/metrics", None).text)),
    });
    let last_page = serve.wait_for(&format!("{deliveries}?page=2"), |v| {
        v.as_array().is_some_and(|a| a.len() == 2)
    });
    assert_eq!(last_page[1]["id"], 1, "oldest last");

    let first = serve.call("GET", &deliveries, None).expect(200);
    assert_eq!(first.json.as_array().unwrap().len(), 25);
    let link = first.header("Link").expect("a Link header").to_owned();
    assert!(
        link.ends_with(&format!("{deliveries}?page=2>; rel=\"next\"")),
        "{link}"
    );
    assert!(!link.contains("prev"));
    let second = serve
        .call("GET", &format!("{deliveries}?page=2"), None)
        .expect(200);
    let link = second.header("Link").expect("a Link header");
    assert!(
        link.ends_with(&format!("{deliveries}?page=1>; rel=\"prev\"")),
        "{link}"
    );
    assert!(!link.contains("next"));
    let beyond = serve
        .call("GET", &format!("{deliveries}?page=3"), None)
        .expect(200);
    assert_eq!(beyond.json, json!([]));
}

#[test]
fn test_deliveries_are_marked_and_filtered() {
    let env = Env::new();
    let receiver = Receiver::start("127.0.0.1:0", Secret::new(SECRET)).unwrap();
    let serve = Serve::start(&env, &[], None);
    let hooks = format!("/n/{NS}/-/webhooks");
    let created = serve
        .call("POST", &hooks, Some(&create_body(&receiver.url())))
        .expect(201);
    let id = created.json["id"].as_i64().unwrap();
    // `hook test` on the same database as the running serve, then an ordinary event.
    let test = env.run(
        &[
            "--json",
            "hook",
            "test",
            &id.to_string(),
            "--allow-private-network",
        ],
        None,
    );
    let test: Value = serde_json::from_str(test.ok()).unwrap();
    assert_eq!(test["test"], true);
    serve.post_event(NS, EventType::BuildFinished).expect(202);
    let deliveries = format!("{hooks}/{id}/deliveries");
    let all = serve.wait_for(&deliveries, |v| v.as_array().is_some_and(|a| a.len() == 2));
    let marks: Vec<(&Value, &Value)> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (&d["event"], &d["test"]))
        .collect();
    assert_eq!(
        marks,
        [
            (&json!("build.finished"), &json!(false)),
            (&json!("build.submitted"), &json!(true))
        ]
    );
    let one = serve
        .call("GET", &format!("{deliveries}/{}", test["id"]), None)
        .expect(200);
    assert_eq!(one.json["test"], true);

    let only = |query: &str| -> Vec<Value> {
        let reply = serve
            .call("GET", &format!("{deliveries}?{query}"), None)
            .expect(200);
        reply
            .json
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["id"].clone())
            .collect()
    };
    assert_eq!(only("test=true"), [test["id"].clone()]);
    assert_eq!(only("test=false"), [all[0]["id"].clone()]);
    // Page links keep the filter.
    let page = serve
        .call("GET", &format!("{deliveries}?page=2&test=true"), None)
        .expect(200);
    assert_eq!(page.json, json!([]));
    let link = page.header("Link").expect("a Link header");
    assert!(
        link.ends_with(&format!("{deliveries}?page=1&test=true>; rel=\"prev\"")),
        "{link}"
    );
    let bad = serve
        .call("GET", &format!("{deliveries}?test=maybe"), None)
        .expect(400);
    assert_eq!(bad.json, json!({"test": ["must be true or false"]}));
}

#[test]
fn every_error_status() {
    let env = Env::new();
    let serve = Serve::start(&env, &["--max-body", "4000"], None);
    let hooks = format!("/n/{NS}/-/webhooks");

    // 404: unknown namespace, route, webhook, a webhook of another namespace, delivery.
    let unknown = serve
        .call("GET", "/n/nobody/nothing/-/webhooks", None)
        .expect(404);
    assert_eq!(
        unknown.json,
        json!({"message": "namespace \"nobody/nothing\" not found"})
    );
    serve.call("GET", "/n/alice/-/webhooks", None).expect(404);
    serve.call("GET", "/nope", None).expect(404);
    serve.call("GET", &format!("{hooks}/1"), None).expect(404);
    let other = serve
        .call(
            "POST",
            "/n/bob/other/-/webhooks",
            Some(r#"{"payload_url": "https://example.com/hook"}"#),
        )
        .expect(201);
    let other_id = other.json["id"].as_i64().unwrap();
    serve
        .call(
            "POST",
            &hooks,
            Some(r#"{"payload_url": "https://example.com/a"}"#),
        )
        .expect(201);
    let foreign = serve
        .call("GET", &format!("{hooks}/{other_id}"), None)
        .expect(404);
    assert_eq!(
        foreign.json,
        json!({"message": format!("webhook {other_id} not found")})
    );
    serve
        .call("DELETE", &format!("{hooks}/{other_id}"), None)
        .expect(404);
    serve
        .call("GET", &format!("{hooks}/2/deliveries/5"), None)
        .expect(404);
    serve
        .call("POST", &format!("{hooks}/2/deliveries/5/redeliver"), None)
        .expect(404);
    serve
        .post_event("nobody/nothing", EventType::BuildStarted)
        .expect(404);

    // 400: validation errors as {field: [messages]}.
    let invalid = serve
        .call(
            "POST",
            &hooks,
            Some(r#"{"payload_url": "ftp://x", "events": ["build.exploded"], "ssl": true}"#),
        )
        .expect(400);
    redacted().bind(|| insta::assert_snapshot!("serve-400-validation", invalid.text));
    let invalid = serve
        .call(
            "PATCH",
            &format!("{hooks}/2"),
            Some(r#"{"payload_url": "http://example.com/b", "ssl": true}"#),
        )
        .expect(400);
    assert_eq!(
        invalid.json,
        json!({"ssl": ["requires an https payload_url"]})
    );
    let page = serve
        .call("GET", &format!("{hooks}/2/deliveries?page=0"), None)
        .expect(400);
    assert_eq!(
        page.json,
        json!({"page": ["must be a whole number from 1"]})
    );

    // 400: malformed JSON, naming the problem.
    let check = |body: &str, want: Value| {
        let reply = serve.call("POST", &hooks, Some(body)).expect(400);
        assert_eq!(reply.json, want, "{body}");
    };
    check(
        r#"{"payload_url": "https://example.com/c""#,
        json!({"message": "malformed JSON at line 1 column 39: EOF while parsing an object"}),
    );
    check(
        r#"{"ssl": "yes"}"#,
        json!({"ssl": ["invalid type: string \"yes\", expected a boolean"]}),
    );
    check(
        r#"{"events": ["cron", 7]}"#,
        json!({"events[1]": ["invalid type: integer `7`, expected a string"]}),
    );
    check(
        "",
        json!({"message": "malformed JSON: the body is empty; expected a JSON object"}),
    );

    // Events: the header is required and known; the payload is validated, errors by JSON path.
    let events = format!("/n/{NS}/-/events");
    let no_header = serve.call("POST", &events, Some("{}")).expect(400);
    assert_eq!(no_header.json, json!({headers::EVENT: ["is required"]}));
    let unknown_event = serve
        .call_with(
            "POST",
            &events,
            Some("{}"),
            None,
            &[(headers::EVENT, "build.exploded")],
        )
        .expect(400);
    assert!(
        unknown_event.json[headers::EVENT][0]
            .as_str()
            .unwrap()
            .starts_with("unknown event \"build.exploded\""),
        "{unknown_event:?}"
    );
    let bad_payload = serve
        .call_with(
            "POST",
            &events,
            Some(r#"{"id": "four"}"#),
            None,
            &[(headers::EVENT, "build.finished")],
        )
        .expect(400);
    assert_eq!(
        bad_payload.json,
        json!({"id": ["invalid type: string \"four\", expected i64"]})
    );
    let syntax = serve
        .call_with(
            "POST",
            &events,
            Some("{"),
            None,
            &[(headers::EVENT, "cron")],
        )
        .expect(400);
    assert!(
        syntax.json["message"]
            .as_str()
            .unwrap()
            .starts_with("malformed JSON at line 1"),
        "{syntax:?}"
    );

    // 405 with Allow.
    let put = serve
        .call("PUT", &format!("{hooks}/2"), Some("{}"))
        .expect(405);
    assert_eq!(put.header("Allow"), Some("GET, PATCH, DELETE"));
    assert_eq!(put.json, json!({"message": "method PUT not allowed"}));
    let get = serve.call("GET", &events, None).expect(405);
    assert_eq!(get.header("Allow"), Some("POST"));

    // 413 over --max-body, declared or chunked; the server keeps serving.
    let big = format!(
        r#"{{"payload_url": "https://example.com/{}"}}"#,
        "x".repeat(5000)
    );
    let too_large = serve.call("POST", &hooks, Some(&big)).expect(413);
    assert_eq!(
        too_large.json,
        json!({"message": "request body larger than 4000 bytes"})
    );
    let mut reader = big.as_bytes();
    let chunked = ureq::http::Request::builder()
        .method("POST")
        .uri(format!("{}{hooks}", serve.base))
        .body(ureq::SendBody::from_reader(&mut reader))
        .unwrap();
    let response = agent().run(chunked).unwrap();
    assert_eq!(response.status().as_u16(), 413);
    serve.call("GET", "/healthz", None).expect(200);

    // A declared body of 100 GB: 413 with nothing read, the connection closed once the client
    // stops (none is kept open), and the server keeps serving. More of them than request threads.
    for _ in 0..6 {
        let mut raw =
            std::net::TcpStream::connect(serve.base.trim_start_matches("http://")).unwrap();
        raw.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        raw.write_all(
            format!("POST {hooks} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000000000\r\n\r\n{{}}")
                .as_bytes(),
        )
        .unwrap();
        let mut reader = BufReader::new(&raw);
        let mut status = String::new();
        reader.read_line(&mut status).unwrap();
        assert_eq!(status.trim_end(), "HTTP/1.1 413 Payload Too Large");
        raw.shutdown(std::net::Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        reader
            .read_to_end(&mut rest)
            .expect("the server closes the connection");
        serve.call("GET", "/healthz", None).expect(200);
    }

    serve.wait_for_log("status=413");
}

#[test]
fn bearer_tokens_from_env_and_file() {
    let env = Env::new();
    let serve = Serve::start(&env, &[], Some(&format!("{TOKEN},second-token-for-tests")));
    let hooks = format!("/n/{NS}/-/webhooks");
    let missing = serve.call_with("GET", &hooks, None, None, &[]).expect(401);
    let wrong = serve
        .call_with("GET", &hooks, None, Some("t0k3n"), &[])
        .expect(401);
    let other_path = serve
        .call_with("GET", "/nope", None, Some("x"), &[])
        .expect(401);
    assert_eq!(missing.json, json!({"message": "unauthorized"}));
    assert_eq!(missing.text, wrong.text, "missing and wrong look the same");
    assert_eq!(
        missing.text, other_path.text,
        "nothing about the route is revealed"
    );
    assert_eq!(missing.header("WWW-Authenticate"), Some("Bearer"));
    serve
        .call_with("GET", "/metrics", None, None, &[])
        .expect(401);
    serve
        .call_with("GET", "/healthz", None, None, &[])
        .expect(200);
    // An unauthenticated body is not read, yet the server stays up.
    serve
        .call_with("POST", &hooks, Some(&"x".repeat(100_000)), None, &[])
        .expect(401);
    serve
        .call_with("GET", "/nope", None, Some(TOKEN), &[])
        .expect(404);
    serve
        .call_with("GET", "/metrics", None, Some("second-token-for-tests"), &[])
        .expect(200);
    serve
        .call_with(
            "POST",
            &hooks,
            Some(r#"{"payload_url": "https://example.com/h"}"#),
            Some(TOKEN),
            &[],
        )
        .expect(201);
    let logs = serve.logs();
    assert!(logs.contains("auth=bearer tokens=2"), "{logs}");
    assert!(!logs.contains(TOKEN), "no token in the logs");
    drop(serve);

    let file = env.path("tokens");
    std::fs::write(&file, format!("# ops\n{TOKEN}\n")).unwrap();
    let serve = Serve::start(&env, &["--token-file", file.to_str().unwrap()], None);
    serve.call_with("GET", &hooks, None, None, &[]).expect(401);
    serve
        .call_with("GET", &hooks, None, Some(TOKEN), &[])
        .expect(200);
}

#[test]
fn refuses_a_non_loopback_address_without_tokens() {
    let env = Env::new();
    let run = env.run(&["serve", "--listen", "0.0.0.0:0"], None);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains(
            "--listen 0.0.0.0:0: refusing to serve a non-loopback address without tokens"
        ),
        "{run:?}"
    );
    assert!(!env.db().exists(), "a refused start creates nothing");
    let run = env.run(&["serve", "--token-file", "missing-tokens"], None);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("--token-file: cannot read missing-tokens"),
        "{run:?}"
    );
    // A guessable token: refused, naming the line and the rule, never the token.
    let file = env.path("short-tokens");
    std::fs::write(&file, format!("# ops\n{TOKEN}\nq intake\n")).unwrap();
    let run = env.run(&["serve", "--token-file", file.to_str().unwrap()], None);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("line 3: the token is 1 characters long; a token must have at least 16"),
        "{run:?}"
    );
    assert!(!env.db().exists(), "a refused start creates nothing");
}

#[test]
fn sigterm_with_deliveries_in_flight_loses_none() {
    let env = Env::new();
    let (url, got) = crate::fixtures::receiver(Duration::from_millis(300));
    let mut serve = Serve::start(&env, &["--concurrency", "2"], None);
    serve
        .call(
            "POST",
            &format!("/n/{NS}/-/webhooks"),
            Some(&json!({"payload_url": url}).to_string()),
        )
        .expect(201);
    let ids: BTreeSet<String> = (0..12)
        .map(|_| {
            let reply = serve.post_event(NS, EventType::BuildStarted).expect(202);
            reply.json["event_id"].as_str().unwrap().to_owned()
        })
        .collect();
    wait_for("a delivery started", || !got.lock().unwrap().is_empty());
    assert_eq!(serve.terminate(), 0, "{}", serve.logs());
    let logs = serve.logs();
    assert!(logs.contains("msg=\"worker stopped\""), "{logs}");
    let before: BTreeSet<String> = got.lock().unwrap().iter().cloned().collect();
    assert!(
        before.len() < ids.len(),
        "stopped with work left: {}",
        before.len()
    );

    // Every delivery the receiver answered before the stop is recorded as delivered.
    let recorded = env.run(&["--json", "deliveries", "list", "--page", "1"], None);
    let recorded: Value = serde_json::from_str(recorded.ok()).unwrap();
    let recorded: BTreeSet<String> = recorded["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["code"] == 200)
        .map(|d| d["event_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(recorded, before, "answered deliveries are all recorded");

    // The rest is delivered on the next start.
    let serve = Serve::start(&env, &["--concurrency", "4"], None);
    wait_for_ok("every event delivered after the restart", || {
        let seen: BTreeSet<String> = got.lock().unwrap().iter().cloned().collect();
        if seen == ids {
            return Ok(());
        }
        let missing: Vec<_> = ids.difference(&seen).collect();
        Err(format!("missing: {missing:?}\n{}", serve.logs()))
    });
}

#[test]
fn the_web_ui_is_served_beside_the_api() {
    let env = Env::new();
    let serve = Serve::start(&env, &[], None);
    assert!(serve.logs().contains(&format!("ui={}/ui/", serve.base)));
    // `/` sends a browser to the UI (the agent follows the redirect).
    let index = serve.call("GET", "/", None).expect(200);
    assert!(index.text.contains("<html"), "{}", index.text);
    serve.call("GET", "/ui/", None).expect(200);
    // Loopback only without tokens, as the API: a foreign Host (DNS rebinding) is refused.
    serve
        .call_with("GET", "/ui/", None, None, &[("Host", "evil.example")])
        .expect(403);
    drop(serve);

    // With tokens, the UI asks for one on its sign-in page while the API answers 401.
    let serve = Serve::start(&env, &[], Some(TOKEN));
    serve
        .call_with("GET", &format!("/n/{NS}/-/webhooks"), None, None, &[])
        .expect(401);
    let page = serve.call_with("GET", "/ui/", None, None, &[]).expect(200);
    assert!(
        page.text.to_lowercase().contains("sign in"),
        "{}",
        page.text
    );
}

#[test]
fn demo_keep_serving_shows_its_15_deliveries_in_the_web_ui() {
    let env = Env::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut demo = env
        .command(&["demo", "--keep-serving", &listen])
        .env_remove("DJINN_HOOKS_DB")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = BufReader::new(demo.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .find_map(|line| {
            line.strip_prefix("The Webhooks tab, until Ctrl-C: ")
                .map(str::to_owned)
        })
        .expect("the demo prints the tab's address");
    assert_eq!(
        url,
        format!("http://{listen}/ui/n/wallace.breen/blackmesa/-/webhooks")
    );
    // The server may still be binding: try until it answers.
    let page = wait_for_ok(&url, || {
        let mut response = agent().get(&url).call()?;
        response.body_mut().read_to_string()
    });
    demo.kill().unwrap();
    demo.wait().unwrap();
    assert!(page.contains("100% of 15 delivered"), "{page}");
}

#[test]
fn metrics_show_an_open_breaker_and_the_tasks_it_holds() {
    let env = Env::new();
    // A receiver that refuses connections: its breaker opens after five refusals.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    env.create_hook(NS, &format!("http://127.0.0.1:{port}/hook"), &[]);
    let body = example_payload(EventType::Cron, DEFAULT_API_SERVER).to_body();
    for _ in 0..12 {
        env.run(&["emit", "cron", "--namespace", NS], Some(&body))
            .ok();
    }
    let serve = Serve::start(&env, &[], None);
    wait_for_ok("a breaker open and tasks held", || {
        let metrics = serve.call("GET", "/metrics", None).expect(200).text;
        let value = |name: &str| {
            metrics
                .lines()
                .find_map(|l| l.strip_prefix(name)?.trim().parse::<i64>().ok())
        };
        if value("djinn_hooks_breakers_open") == Some(1)
            && value("djinn_hooks_tasks_held").is_some_and(|n| n > 0)
        {
            return Ok(());
        }
        Err(metrics)
    });
}

/// A receiver that answers `429 Too Many Requests` with `Retry-After: 60` to every request:
/// `serve`'s worker pauses its webhook, and `/metrics`, the webhook's JSON and `hook show`
/// say so.
#[test]
fn a_throttled_webhook_shows_its_pause_in_metrics_the_api_and_hook_show() {
    let env = Env::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            thread::spawn(move || {
                use std::io::{Read, Write};
                let mut buffer = [0; 64 * 1024];
                // One read per request: the worker sends head and body in one write.
                while matches!(stream.read(&mut buffer), Ok(n) if n > 0) {
                    let answer = "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 60\r\n\
                                  Content-Length: 0\r\n\r\n";
                    if stream.write_all(answer.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    let id = env.create_hook(NS, &url, &[]);
    let body = example_payload(EventType::Cron, DEFAULT_API_SERVER).to_body();
    for _ in 0..3 {
        env.run(&["emit", "cron", "--namespace", NS], Some(&body))
            .ok();
    }
    let serve = Serve::start(&env, &[], None);
    let gauge = format!("djinn_hooks_webhook_delivery_limit{{hook=\"{id}\"}} 0");
    wait_for_ok(&gauge, || {
        let metrics = serve.call("GET", "/metrics", None).expect(200).text;
        if metrics.lines().any(|line| line == gauge) {
            Ok(())
        } else {
            Err(metrics)
        }
    });
    let hook = serve
        .call("GET", &format!("/n/{NS}/-/webhooks/{id}"), None)
        .expect(200);
    let limit = &hook.json["delivery_limit"];
    assert_eq!(limit["reason"], "throttled", "{}", hook.text);
    assert_eq!(limit["limit"], 0, "{}", hook.text);
    assert!(limit["paused_until"].is_string(), "{}", hook.text);
    let shown = env.run(&["hook", "show", &id], None).ok().to_owned();
    assert!(
        shown.contains("paused until") && shown.contains("throttled"),
        "{shown}"
    );
}

#[test]
fn a_webhook_loop_is_refused_unless_relaying_on_purpose() {
    let env = Env::new();
    let serve = Serve::start(&env, &[], None);
    let own = format!("{}/n/{NS}/-/events", serve.base);
    let hooks = format!("/n/{NS}/-/webhooks");
    let refused = serve
        .call("POST", &hooks, Some(&create_body(&own)))
        .expect(400);
    assert!(
        refused.json["payload_url"][0]
            .as_str()
            .unwrap()
            .starts_with("points at this server's own event intake"),
        "{}",
        refused.text
    );
    // A delivery posted to the intake (as such a webhook would send it) is not stored.
    let body =
        String::from_utf8(example_payload(EventType::Cron, DEFAULT_API_SERVER).to_body()).unwrap();
    let delivery = serve
        .call_with(
            "POST",
            &format!("/n/{NS}/-/events"),
            Some(&body),
            None,
            &[
                (headers::EVENT, "cron"),
                (headers::DELIVERY, "7b74c828-009d-495a-94ff-4cd5109317cb"),
            ],
        )
        .expect(400);
    assert!(
        delivery.text.contains(headers::DELIVERY),
        "{}",
        delivery.text
    );
    // The web UI's create form refuses it too, with the same message.
    let refused = ui_create(&serve, &own);
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert!(
        refused
            .text
            .contains("points at this server&#39;s own event intake"),
        "{}",
        refused.text
    );
    drop(serve);

    let serve = Serve::start(&env, &["--accept-relayed-deliveries"], None);
    let own = format!("{}/n/{NS}/-/events", serve.base);
    serve
        .call("POST", &hooks, Some(&create_body(&own)))
        .expect(201);
    let relayed = format!(
        "{}/n/{NS}/-/events",
        serve.base.replace("127.0.0.1", "localhost")
    );
    let created = ui_create(&serve, &relayed);
    assert_eq!(created.status, 200, "{}", created.text);
    let listed = serve.call("GET", &hooks, None).expect(200).json;
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
}

/// Posts the web UI's create form for `url` as a browser would (its CSRF cookie and token, a
/// same-origin `Origin`); the answer after any redirect.
fn ui_create(serve: &Serve, url: &str) -> Reply {
    let create = format!("/ui/n/{NS}/-/webhooks/create");
    let form = serve.call("GET", &create, None).expect(200);
    let cookies: Vec<&str> = form
        .headers
        .iter()
        .filter(|(name, _)| name == "set-cookie")
        .filter_map(|(_, value)| value.split(';').next())
        .collect();
    let at = form.text.find(r#"name="_csrf" value=""#).unwrap() + r#"name="_csrf" value=""#.len();
    let csrf = &form.text[at..at + form.text[at..].find('"').unwrap()];
    let body = format!(
        "_csrf={csrf}&payload_url={}&events=cron",
        url.replace(':', "%3A").replace('/', "%2F")
    );
    serve.call_with(
        "POST",
        &create,
        Some(&body),
        None,
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", &cookies.join("; ")),
            ("Origin", &serve.base),
        ],
    )
}

#[test]
fn serve_prunes_old_deliveries_by_itself_and_counts_them() {
    let env = Env::new();
    let receiver = Receiver::start("127.0.0.1:0", Secret::new(SECRET)).unwrap();
    env.create_hook(NS, &receiver.url(), &["--secret", SECRET]);
    // Everything is "old" at an age of 0 s: each prune removes whatever was delivered.
    let serve = Serve::start(
        &env,
        &["--prune-every", "100ms", "--prune-older-than", "0s"],
        None,
    );
    serve.post_event(NS, EventType::Cron).expect(202);
    receiver
        .next_timeout(Duration::from_secs(10))
        .expect("delivered");
    wait_for_ok("a delivery pruned", || {
        let metrics = serve.call("GET", "/metrics", None).expect(200).text;
        if metrics.contains("djinn_hooks_pruned_deliveries_total 1") {
            Ok(())
        } else {
            Err(metrics)
        }
    });
    assert!(
        serve.logs().contains("msg=pruned deliveries=1 events=1"),
        "{}",
        serve.logs()
    );
    let log = env.run(&["--json", "deliveries", "list"], None);
    assert_eq!(
        serde_json::from_str::<Value>(log.ok()).unwrap()["items"],
        json!([])
    );
}

#[test]
fn auto_prune_is_on_by_default_and_can_be_turned_off() {
    let env = Env::new();
    let serve = Serve::start(&env, &[], None);
    assert!(
        serve
            .logs()
            .contains(r#"auto_prune="every 1h older than 30days""#),
        "{}",
        serve.logs()
    );
    drop(serve);
    let serve = Serve::start(&env, &["--no-auto-prune"], None);
    assert!(serve.logs().contains("auto_prune=off"), "{}", serve.logs());
}

/// `/readyz` and `/healthz` without a token (a server with one): both 200 while all is well.
fn assert_ready(serve: &Serve) {
    let ready = serve.call_with("GET", "/readyz", None, None, &[]);
    assert_eq!(ready.status, 200, "{}\n{}", ready.text, serve.logs());
    assert_eq!(
        ready.json,
        json!({"status": "ready", "failed": [], "checks": {"database": "ok", "worker": "running"}})
    );
}

/// `/readyz` answers 503 naming the database, while `/healthz` (liveness) stays 200.
fn assert_database_unreachable(serve: &Serve) {
    let ready = serve.call_with("GET", "/readyz", None, None, &[]);
    assert_eq!(ready.status, 503, "{}", ready.text);
    assert_eq!(ready.json["status"], "unavailable");
    assert_eq!(ready.json["failed"][0], "database", "{}", ready.text);
    assert_eq!(ready.json["checks"]["database"], "unreachable");
    let health = serve.call_with("GET", "/healthz", None, None, &[]);
    assert_eq!(health.status, 200);
}

/// SQLite: the database's folder moved away mid-run. A permission change would not do: CI runs
/// as root, whom file modes do not stop, and the server's open connections would still read
/// the moved file anyway; `/readyz` opens the file afresh at its path, which no longer leads
/// to it, whoever runs the test. Moved back, the server is ready again.
#[test]
fn readyz_is_503_while_the_sqlite_file_is_gone_from_its_path() {
    let env = Env::new();
    let data = env.path("data");
    std::fs::create_dir(&data).unwrap();
    let mut command = env.command(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--allow-private-network",
    ]);
    command
        .env("DJINN_HOOKS_DB", data.join("hooks.db"))
        .env("DJINN_HOOKS_TOKENS", TOKEN);
    let serve = Serve::spawn(command, Some(TOKEN));
    assert_ready(&serve);

    let moved = env.path("data.moved");
    std::fs::rename(&data, &moved).unwrap();
    assert_database_unreachable(&serve);
    assert!(serve.logs().contains("not ready"), "{}", serve.logs());

    std::fs::rename(&moved, &data).unwrap();
    assert_ready(&serve);
}

/// PostgreSQL: the throw-away database dropped mid-run (its connections terminated first).
#[test]
fn readyz_is_503_once_the_postgresql_database_is_dropped() {
    let Some(server) = crate::fixtures::postgres_server() else {
        return;
    };
    let env = Env::on_postgres(&server);
    let serve = Serve::start(&env, &[], Some(TOKEN));
    assert_ready(&serve);
    env.postgres
        .as_ref()
        .expect("a PostgreSQL environment")
        .drop_now();
    assert_database_unreachable(&serve);
}
