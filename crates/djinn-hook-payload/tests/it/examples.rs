//! The example payloads: snapshots, consistency between events, and the API
//! server parameter.

use djinn_hook_payload::{
    BuildStatus, DEFAULT_API_SERVER, EventType, Payload, example_api_build, example_payload,
};
use serde_json::Value;

use crate::body_value;

fn pretty(payload: &Payload) -> String {
    String::from_utf8(payload.to_pretty()).unwrap()
}

/// The example payloads are stored once, in `docs/examples/` (written by `cargo xtask
/// fixtures`, which also checks them): the files there are this test's snapshots.
#[test]
fn the_examples_in_the_docs_are_the_payloads() {
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/examples");
    let check = |file: &str, payload: &Payload| {
        let path = docs.join(file);
        let stored = std::fs::read_to_string(&path)
            .unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        assert!(
            stored == pretty(payload),
            "{} is not the example payload: run `cargo xtask fixtures` and review the diff",
            path.display()
        );
    };
    for event in EventType::ALL {
        let payload = example_payload(event, DEFAULT_API_SERVER);
        check(&format!("webhooks/{}.json", event.name()), &payload);
    }
    let build = Payload::BuildSubmitted(example_api_build(DEFAULT_API_SERVER));
    check("api/build.json", &build);
}

#[test]
fn examples_parse_back_and_pass_validation() {
    for event in EventType::ALL {
        let payload = example_payload(event, DEFAULT_API_SERVER);
        assert_eq!(payload.validate(), Ok(()), "{event}");
        assert_eq!(
            Payload::parse(event, &payload.to_body()).unwrap(),
            payload,
            "{event}"
        );
        assert_eq!(
            Payload::parse(event, &payload.to_pretty()).unwrap(),
            payload,
            "{event}"
        );
    }
}

#[test]
fn the_build_moves_through_its_life() {
    let build = |event| {
        example_payload(event, DEFAULT_API_SERVER)
            .build()
            .unwrap()
            .clone()
    };
    let submitted = build(EventType::BuildSubmitted);
    let started = build(EventType::BuildStarted);
    let finished = build(EventType::BuildFinished);
    let tagged = build(EventType::BuildTagged);
    let pinned = build(EventType::BuildPinned);
    let unpinned = build(EventType::BuildUnpinned);

    assert_eq!(submitted.status, BuildStatus::Queued);
    assert_eq!((submitted.started_at, submitted.finished_at), (None, None));
    assert_eq!(started.status, BuildStatus::Running);
    assert!(started.started_at.is_some() && started.finished_at.is_none());
    assert_eq!(finished.status, BuildStatus::Passed);
    assert!(finished.finished_at > finished.started_at && finished.output.is_some());
    assert!(pinned.pinned);
    assert!(!unpinned.pinned && !finished.pinned && !submitted.pinned);

    // One build throughout: same identity, owner, namespace and trigger.
    for later in [&started, &finished, &tagged, &pinned, &unpinned] {
        assert_eq!(
            (later.id, later.number, &later.url),
            (submitted.id, submitted.number, &submitted.url)
        );
        assert_eq!(later.user, submitted.user);
        assert_eq!(later.namespace, submitted.namespace);
        assert_eq!(later.trigger, submitted.trigger);
        assert_eq!(later.created_at, submitted.created_at);
    }
    assert_eq!(started.started_at, finished.started_at);

    // build.tagged: the new tag is on the build, its URL under the tags URL.
    let Payload::BuildTagged(event) = example_payload(EventType::BuildTagged, DEFAULT_API_SERVER)
    else {
        panic!("expected build.tagged");
    };
    assert_eq!(event.url, event.build.tags_url);
    for tag in &event.tags {
        assert!(event.build.tags.contains(&tag.name));
        assert!(
            !submitted.tags.contains(&tag.name),
            "submission tags do not fire build.tagged"
        );
        assert_eq!(tag.url, format!("{}/{}", event.build.tags_url, tag.name));
    }
    // The API example is the same build, in its latest state.
    assert_eq!(example_api_build(DEFAULT_API_SERVER), unpinned);
}

#[test]
fn examples_share_users_and_namespace() {
    let namespace = |event| body_value(&example_payload(event, DEFAULT_API_SERVER));
    let build = namespace(EventType::BuildSubmitted);
    let root = &build["namespace"];
    let owner = &build["user"];
    assert_eq!(&root["user"], owner);

    let sent = namespace(EventType::InviteSent);
    assert_eq!(&sent["namespace"], root);
    assert_eq!(&sent["inviter"], owner);
    let submitter = &build["trigger"]["data"];
    assert_eq!(sent["invitee"]["username"], submitter["username"]);
    for event in [EventType::InviteAccepted, EventType::InviteRejected] {
        let answer = namespace(event);
        assert_eq!(answer["namespace"], *root, "{event}");
        assert_eq!(answer["invitee"], sent["invitee"], "{event}");
    }

    // Created namespaces are always children; this one's parent is the root.
    let created = namespace(EventType::Namespaces);
    assert_eq!(created["action"], "created");
    assert_eq!(created["namespace"]["parent"], *root);
    assert_eq!(created["namespace"]["parent_id"], root["id"]);
    assert_eq!(created["namespace"]["root_id"], root["id"]);

    for (event, key) in [
        (EventType::Cron, "cron"),
        (EventType::Images, "image"),
        (EventType::Objects, "object"),
        (EventType::Variables, "variable"),
        (EventType::SshKeys, "key"),
    ] {
        let body = namespace(event);
        assert_eq!(body[key]["namespace"], *root, "{event}");
        assert_eq!(body[key]["namespace_id"], root["id"], "{event}");
        assert_eq!(body[key]["user"], *owner, "{event}");
        let author = &body[key]["author"];
        assert!(
            author == owner || *author == sent["invitee"],
            "{event}: author {author}"
        );
    }
}

/// Every string that looks like a URL in `value`.
fn urls(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) if s.contains("://") => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| urls(v, out)),
        Value::Object(map) => map.values().for_each(|v| urls(v, out)),
        _ => {}
    }
}

#[test]
fn urls_are_built_on_the_api_server() {
    for event in EventType::ALL {
        let mut found = Vec::new();
        urls(
            &body_value(&example_payload(event, "http://127.0.0.1:8080/")),
            &mut found,
        );
        assert!(!found.is_empty(), "{event}");
        for url in found {
            // The image download source is the one URL off the API server.
            if url.ends_with(".qcow2") {
                continue;
            }
            assert!(url.starts_with("http://127.0.0.1:8080/"), "{event}: {url}");
            assert!(!url.contains("8080//"), "{event}: {url}");
        }
    }
    let build = example_api_build("https://ci.example.com");
    assert_eq!(build.url, "https://ci.example.com/b/wallace.breen/1");
    assert_eq!(
        build.tags_url,
        "https://ci.example.com/b/wallace.breen/1/tags"
    );
    let namespace = build.namespace.unwrap();
    assert_eq!(
        namespace.url,
        "https://ci.example.com/n/wallace.breen/blackmesa"
    );
    assert_eq!(
        namespace.webhooks_url,
        "https://ci.example.com/n/wallace.breen/blackmesa/-/webhooks"
    );
}
