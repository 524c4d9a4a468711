//! What `serve` and `worker` tell the operator, end to end on 127.0.0.1: a trace from the
//! intake to the receiver (spans exported to an OTLP/HTTP receiver, the `traceparent` a
//! webhook receiver gets), and a notification arriving signed after a webhook is disabled by
//! a 410.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use djinn_hook_payload::{DEFAULT_API_SERVER, EventType, example_payload};
use djinn_hook_sign::{Secret, headers, verify};
use djinn_hook_testkit::wait_for;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;
use serde_json::Value;

use crate::fixtures::serve;
use crate::serve::Serve;
use crate::{Env, agent, post_event};

const NS: &str = "alice/ci";

/// One request a receiver got: its headers and body.
type Got = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

/// An axum server on 127.0.0.1 (its own thread and runtime) answering every request with
/// `status` and recording it; its base URL.
fn recorder(status: StatusCode) -> (String, Got) {
    let got: Got = Arc::default();
    let sink = Arc::clone(&got);
    let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
        let sink = Arc::clone(&sink);
        async move {
            sink.lock().unwrap().push((headers, body));
            status
        }
    });
    (format!("http://{}", serve(app)), got)
}

/// Waits until `done` holds for what `got` recorded (failing after the testkit's deadline).
#[track_caller]
fn wait_until(got: &Got, what: &str, done: impl Fn(&[(HeaderMap, Bytes)]) -> bool) {
    wait_for(what, || done(&got.lock().unwrap()));
}

/// One exported span: name, trace id, span id, parent span id (hex), and its attributes.
#[derive(Debug, Clone)]
struct Exported {
    name: String,
    trace: String,
    id: String,
    parent: String,
    attributes: Vec<(String, String)>,
}

/// Every span in the OTLP/HTTP protobuf requests `got` recorded (each request checked to be a
/// POST to /v1/traces by the exporter's content type).
fn spans(got: &[(HeaderMap, Bytes)]) -> Vec<Exported> {
    let mut spans = Vec::new();
    for (headers, body) in got {
        assert_eq!(headers["content-type"], "application/x-protobuf");
        let request = ExportTraceServiceRequest::decode(body.as_ref()).expect("OTLP protobuf");
        for resource in request.resource_spans {
            for scope in resource.scope_spans {
                for span in scope.spans {
                    let attributes = span
                        .attributes
                        .iter()
                        .map(|kv| {
                            let value = kv.value.as_ref().and_then(|v| v.value.as_ref());
                            (kv.key.clone(), format!("{value:?}"))
                        })
                        .collect();
                    spans.push(Exported {
                        name: span.name,
                        trace: hex(&span.trace_id),
                        id: hex(&span.span_id),
                        parent: hex(&span.parent_span_id),
                        attributes,
                    });
                }
            }
        }
    }
    spans
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `traceparent` fields (trace id, parent id) of a header value.
fn fields(traceparent: &str) -> (String, String) {
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    (parts[1].to_owned(), parts[2].to_owned())
}

fn a_trace_goes_from_the_intake_to_the_receiver(env: &Env) {
    let (collector, exported) = recorder(StatusCode::OK);
    let (receiver, delivered) = recorder(StatusCode::OK);
    env.create_hook(NS, &format!("{receiver}/hook"), &[]);
    let mut command = env.command(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--allow-private-network",
        "--otlp-endpoint",
        &collector,
    ]);
    // Batches go out every 100 ms rather than 5 s: the test waits less.
    command.env("OTEL_BSP_SCHEDULE_DELAY", "100");
    let mut serve = Serve::spawn(command, None);

    // One event continues the client's trace, the other starts one.
    let client_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let client_span = "00f067aa0ba902b7";
    let body = example_payload(EventType::BuildFinished, DEFAULT_API_SERVER).to_body();
    let traced = agent()
        .post(format!("{}/n/{NS}/-/events", serve.base))
        .header("Content-Type", "application/json")
        .header(headers::EVENT, EventType::BuildFinished.name())
        .header("traceparent", format!("00-{client_trace}-{client_span}-01"))
        .send(&body)
        .unwrap();
    assert_eq!(traced.status(), 202);
    let (status, _) = post_event(&agent(), &serve.base, NS, EventType::BuildFinished, &body);
    assert_eq!(status, 202);
    wait_until(&delivered, "two deliveries", |got| got.len() == 2);
    assert_eq!(serve.terminate(), 0, "{}", serve.logs());

    let sent: Vec<(String, String)> = delivered
        .lock()
        .unwrap()
        .iter()
        .map(|(headers, _)| fields(headers["traceparent"].to_str().unwrap()))
        .collect();
    wait_until(&exported, "the attempts' spans", |got| {
        spans(got)
            .iter()
            .filter(|s| s.name == "delivery attempt")
            .count()
            == 2
    });
    let spans = spans(&exported.lock().unwrap());
    let named = |name: &str, trace: &str| -> Vec<Exported> {
        spans
            .iter()
            .filter(|s| s.name == name && s.trace == trace)
            .cloned()
            .collect()
    };
    let client = sent
        .iter()
        .find(|(trace, _)| trace == client_trace)
        .expect("a delivery continues the client's trace");
    let fresh = sent
        .iter()
        .find(|(trace, _)| trace != client_trace)
        .expect("the other one its own");
    for (trace, parent) in [client, fresh] {
        let [intake] = &named("intake", trace)[..] else {
            panic!("one intake span in {trace}: {spans:#?}")
        };
        let [commit] = &named("commit", trace)[..] else {
            panic!("one commit span in {trace}: {spans:#?}")
        };
        let [attempt] = &named("delivery attempt", trace)[..] else {
            panic!("one attempt span in {trace}: {spans:#?}")
        };
        assert_eq!(commit.parent, intake.id);
        assert_eq!(
            attempt.parent, intake.id,
            "the attempt continues the intake"
        );
        assert_eq!(
            &attempt.id, parent,
            "the receiver's parent is the attempt's span"
        );
        assert!(
            named("store", trace).iter().any(|s| s.parent == commit.id),
            "the store's call under the commit: {spans:#?}"
        );
        let attribute = |key: &str| {
            attempt
                .attributes
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        assert!(attribute("server.address").contains("127.0.0.1"));
        assert!(attribute("http.response.status_code").contains("200"));
        assert!(attribute("djinn.attempt.result").contains("success"));
        assert!(attribute("djinn.attempt").contains('1'));
    }
    let [intake] = &named("intake", client_trace)[..] else {
        unreachable!()
    };
    assert_eq!(
        intake.parent, client_span,
        "the intake continues the client's trace"
    );
}

fn a_webhook_disabled_by_a_410_is_reported_signed(env: &Env) {
    let (gone, _) = recorder(StatusCode::GONE);
    let (operator, notified) = recorder(StatusCode::OK);
    let hook = env.create_hook(NS, &format!("{gone}/hook"), &[]);
    let example = env.run(&["example", "build.finished"], None);
    env.run(
        &["emit", "build.finished", "--namespace", NS],
        Some(example.ok().as_bytes()),
    )
    .ok();
    let secret_file = env.path("notify.secret");
    std::fs::write(&secret_file, "operator secret\n").unwrap();
    let stats = env.worker_stats(&[
        "--notify-url",
        &format!("{operator}/notify"),
        "--notify-secret-file",
        secret_file.to_str().unwrap(),
    ]);
    assert_eq!(stats["hooks_disabled"], 1, "{stats}");

    let got = notified.lock().unwrap();
    let notes: Vec<Value> = got
        .iter()
        .map(|(headers, body)| {
            assert_eq!(headers[headers::EVENT], "notification");
            let signature = headers[headers::SIGNATURE].to_str().unwrap();
            verify(&Secret::from("operator secret"), body, signature)
                .expect("signed with the notification secret");
            serde_json::from_slice(body).unwrap()
        })
        .collect();
    let disabled = notes
        .iter()
        .find(|n| n["type"] == "webhook.disabled")
        .unwrap_or_else(|| panic!("no webhook.disabled in {notes:#?}"));
    assert_eq!(disabled["webhook"]["id"].to_string(), hook);
    assert_eq!(disabled["webhook"]["namespace"], NS);
    assert!(
        disabled["reason"].as_str().unwrap().contains("410"),
        "{disabled}"
    );
    assert!(disabled["disabled_at"].is_string());
    assert!(notes.iter().any(|n| n["type"] == "delivery.failed"));
}

on_both_backends!(
    a_trace_goes_from_the_intake_to_the_receiver,
    a_webhook_disabled_by_a_410_is_reported_signed,
);
