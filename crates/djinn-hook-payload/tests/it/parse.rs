//! `Payload::parse`: error messages, the rules of `validate`, unknown fields,
//! and the exact body bytes.

use djinn_hook_payload::{
    BuildStatus, DEFAULT_API_SERVER, EventType, Payload, PayloadError, example_payload,
};
use serde_json::{Value, json};

use crate::body_value;

/// The example body of `event` as a JSON value, to edit.
fn example(event: EventType) -> Value {
    body_value(&example_payload(event, DEFAULT_API_SERVER))
}

/// Parses `value` as `event`'s payload and returns the error's text.
fn error(event: EventType, value: &Value) -> String {
    let body = serde_json::to_vec_pretty(value).unwrap();
    Payload::parse(event, &body).unwrap_err().to_string()
}

#[test]
fn unknown_enum_value_names_event_path_and_expected_values() {
    let mut body = example(EventType::BuildFinished);
    body["status"] = json!("done");
    assert_eq!(
        error(EventType::BuildFinished, &body),
        "build.finished: status: unknown variant \"done\", expected one of queued, running, \
         passed, passed_with_failures, failed, killed, timed_out"
    );

    let mut body = example(EventType::Namespaces);
    body["namespace"]["parent"]["visibility"] = json!("secret");
    assert_eq!(
        error(EventType::Namespaces, &body),
        "namespaces: namespace.parent.visibility: unknown variant \"secret\", expected one of \
         private, internal, public"
    );

    let mut body = example(EventType::SshKeys);
    body["action"] = json!(3);
    assert_eq!(
        error(EventType::SshKeys, &body),
        "ssh_keys: action: invalid type: integer `3`, expected one of created, updated, deleted"
    );
}

#[test]
fn wrong_types_and_missing_fields_name_the_path() {
    let mut body = example(EventType::BuildTagged);
    body["tags"][0]["name"] = json!(false);
    assert_eq!(
        error(EventType::BuildTagged, &body),
        "build.tagged: tags[0].name: invalid type: boolean `false`, expected a string"
    );

    let mut body = example(EventType::BuildSubmitted);
    body["trigger"]["data"]["email"] = json!(1);
    assert_eq!(
        error(EventType::BuildSubmitted, &body),
        "build.submitted: trigger.data.email: invalid type: integer `1`, expected a string"
    );

    let mut body = example(EventType::InviteSent);
    body["inviter"].as_object_mut().unwrap().remove("email");
    assert_eq!(
        error(EventType::InviteSent, &body),
        "invite.sent: inviter: missing field `email`"
    );

    let mut body = example(EventType::Objects);
    body.as_object_mut().unwrap().remove("action");
    assert_eq!(
        error(EventType::Objects, &body),
        "objects: missing field `action`"
    );

    let mut body = example(EventType::Cron);
    body["cron"]["next_run"] = json!("2021-10-08 00:00");
    assert_eq!(
        error(EventType::Cron, &body),
        "cron: cron.next_run: invalid timestamp \"2021-10-08 00:00\", expected RFC 3339 like \
         \"2021-10-06T18:14:33Z\" (a character literal was not valid)"
    );

    let mut body = example(EventType::Images);
    body["image"]["download"]["started_at"] = json!(17);
    assert_eq!(
        error(EventType::Images, &body),
        "images: image.download.started_at: invalid type: integer `17`, expected an RFC 3339 \
         timestamp"
    );

    // The whole body of the wrong event: the first missing field is named.
    let body = example(EventType::InviteAccepted);
    assert_eq!(
        error(EventType::BuildSubmitted, &body),
        "build.submitted: missing field `id`"
    );
}

#[test]
fn field_errors_keep_path_and_position() {
    let body = b"{\n  \"action\": \"created\",\n  \"cron\": 7\n}";
    let error = Payload::parse(EventType::Cron, body).unwrap_err();
    assert_eq!(error.event(), EventType::Cron);
    assert_eq!(error.path(), "cron");
    match error {
        PayloadError::Field {
            line,
            column,
            message,
            ..
        } => {
            assert_eq!((line, column), (3, 11));
            assert_eq!(message, "invalid type: integer `7`, expected struct Cron");
        }
        other => panic!("expected a field error, got {other:?}"),
    }
}

#[test]
fn syntax_errors_name_event_line_and_column() {
    let cases: [(&[u8], &str); 4] = [
        (
            b"",
            "images: invalid JSON at line 1 column 0: EOF while parsing a value",
        ),
        (
            b"{\n  \"action\": \"created\",\n  \"image\" {}",
            "images: invalid JSON at line 3 column 11: expected `:`",
        ),
        (
            b"{\"action\": \"created\"",
            "images: invalid JSON at line 1 column 20: EOF while parsing an object",
        ),
        (
            b"{\"action\": \"cre\xffated\"}",
            "images: invalid JSON at line 1 column 16: invalid unicode code point",
        ),
    ];
    for (body, expected) in cases {
        let error = Payload::parse(EventType::Images, body).unwrap_err();
        assert!(matches!(error, PayloadError::Syntax { .. }), "{error:?}");
        assert_eq!(error.to_string(), expected);
    }

    // A valid body followed by anything else is not one JSON document.
    let mut body = example_payload(EventType::Images, DEFAULT_API_SERVER).to_body();
    let column = body.len() + 2;
    body.extend_from_slice(b" {}");
    let error = Payload::parse(EventType::Images, &body).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("images: invalid JSON at line 1 column {column}: trailing characters")
    );
}

#[test]
fn build_finished_needs_a_final_status_and_finished_at() {
    for status in BuildStatus::ALL {
        let mut body = example(EventType::BuildFinished);
        body["status"] = json!(status.name());
        let result = Payload::parse(EventType::BuildFinished, body.to_string().as_bytes());
        if status.is_final() {
            assert!(result.is_ok(), "{status}: {result:?}");
        } else {
            let error = result.unwrap_err();
            assert_eq!(error.path(), "status");
            assert_eq!(
                error.to_string(),
                format!(
                    "build.finished: status: \"{status}\" is not a final status, expected one \
                     of passed, passed_with_failures, failed, killed, timed_out"
                )
            );
        }
    }
    assert_eq!(BuildStatus::FINAL.len(), 5);

    let mut body = example(EventType::BuildFinished);
    body["finished_at"] = Value::Null;
    assert_eq!(
        error(EventType::BuildFinished, &body),
        "build.finished: finished_at: is null, expected the time the build finished"
    );
}

#[test]
fn build_started_needs_started_at() {
    let mut body = example(EventType::BuildStarted);
    body["started_at"] = Value::Null;
    assert_eq!(
        error(EventType::BuildStarted, &body),
        "build.started: started_at: is null, expected the time the build started"
    );
}

#[test]
fn pinned_events_need_the_matching_flag() {
    let mut body = example(EventType::BuildPinned);
    body["pinned"] = json!(false);
    assert_eq!(
        error(EventType::BuildPinned, &body),
        "build.pinned: pinned: is false, expected true for build.pinned"
    );
    // An older body without `pinned` reads as false: a valid unpin, an invalid pin.
    body.as_object_mut().unwrap().remove("pinned");
    assert!(Payload::parse(EventType::BuildUnpinned, body.to_string().as_bytes()).is_ok());
    let mut body = example(EventType::BuildUnpinned);
    body["pinned"] = json!(true);
    assert_eq!(
        error(EventType::BuildUnpinned, &body),
        "build.unpinned: pinned: is true, expected false for build.unpinned"
    );
}

#[test]
fn validate_checks_payloads_built_by_hand() {
    let Payload::BuildFinished(mut build) = example_payload(EventType::BuildFinished, "http://ci")
    else {
        panic!("build.finished carries a build");
    };
    assert_eq!(Payload::BuildFinished(build.clone()).validate(), Ok(()));
    build.status = BuildStatus::Running;
    let error = Payload::BuildFinished(build).validate().unwrap_err();
    assert!(
        matches!(error, PayloadError::Rule { path: "status", .. }),
        "{error:?}"
    );
}

#[test]
fn unknown_fields_are_kept_top_level_and_nested() {
    let mut body = example(EventType::BuildTagged);
    body["delivery_hint"] = json!({"retry": [1, 2, 3]});
    body["build"]["namespace"]["user"]["avatar_url"] = json!("https://example.com/a.png");
    body["build"]["trigger"]["provider"] = json!("github");
    body["tags"][0]["color"] = json!(null);
    let text = serde_json::to_vec(&body).unwrap();

    let payload = Payload::parse(EventType::BuildTagged, &text).unwrap();
    let Payload::BuildTagged(tagged) = &payload else {
        panic!("expected build.tagged, got {payload:?}");
    };
    assert_eq!(tagged.extra["delivery_hint"], json!({"retry": [1, 2, 3]}));
    assert_eq!(tagged.tags[0].extra["color"], Value::Null);
    let user = &tagged.build.namespace.as_ref().unwrap().user;
    assert_eq!(user.extra["avatar_url"], "https://example.com/a.png");

    // Lossless: the re-serialised body is the same JSON, extras included.
    assert_eq!(body_value(&payload), body);
    // And stable: parsing the body we send gives the same bytes again.
    let again = Payload::parse(EventType::BuildTagged, &payload.to_body()).unwrap();
    assert_eq!(again.to_body(), payload.to_body());
}

#[test]
fn build_tagged_url_carrying_the_build_is_rejected() {
    // A defect of the original: build.tagged's `url` carries the
    // build object. It must be the tags URL; a body repeating the defect is an
    // error naming `url`, not silently accepted.
    let mut body = example(EventType::BuildTagged);
    body["url"] = body["build"].clone();
    assert_eq!(
        error(EventType::BuildTagged, &body),
        "build.tagged: url: invalid type: map, expected a string"
    );
}

#[test]
fn body_is_compact_in_field_order_and_deterministic() {
    let payload = example_payload(EventType::Variables, "https://ci.example.com");
    let body = payload.to_body();
    let text = std::str::from_utf8(&body).unwrap();
    assert!(text.starts_with(r#"{"action":"created","variable":{"id":1,"author_id":1,"user_id":3,"namespace_id":4,"key":"PGPASSWORD","value":"xxxxxx","masked":true,"created_at":"2021-10-07T20:21:28Z","url":"https://ci.example.com/variables/1","author":{"#), "{text}");
    assert!(!text.contains('\n') && !text.contains(": "));
    assert_eq!(payload.to_body(), body);
    assert_eq!(payload.clone().to_body(), body);

    let pretty = payload.to_pretty();
    assert!(pretty.ends_with(b"}\n") && !pretty.ends_with(b"\n\n"));
    assert!(
        std::str::from_utf8(&pretty)
            .unwrap()
            .starts_with("{\n  \"action\": \"created\",\n  \"variable\": {\n    \"id\": 1,")
    );
    let reparsed: Value = serde_json::from_slice(&pretty).unwrap();
    assert_eq!(reparsed, body_value(&payload));
}

#[test]
fn timestamps_round_trip_byte_for_byte() {
    for stamp in [
        "2021-10-06T18:14:33Z",
        "0001-01-01T00:00:00Z",
        "2021-10-06T18:14:33.5Z",
        "2021-10-06T18:14:33.123456789Z",
        "2021-10-06T20:14:33+02:00",
    ] {
        let mut body = example(EventType::BuildSubmitted);
        body["created_at"] = json!(stamp);
        let payload =
            Payload::parse(EventType::BuildSubmitted, body.to_string().as_bytes()).unwrap();
        assert_eq!(body_value(&payload)["created_at"], stamp);
    }
}

#[test]
fn missing_nullable_keys_read_as_null_and_are_written() {
    let mut body = example(EventType::Cron);
    for key in ["prev_run", "namespace_id", "namespace"] {
        body["cron"].as_object_mut().unwrap().remove(key);
    }
    let payload = Payload::parse(EventType::Cron, body.to_string().as_bytes()).unwrap();
    let out = body_value(&payload);
    for key in ["prev_run", "namespace_id", "namespace"] {
        assert_eq!(out["cron"][key], Value::Null, "{key}");
    }
}

#[test]
fn event_type_and_build_accessor() {
    for event in EventType::ALL {
        let payload = example_payload(event, DEFAULT_API_SERVER);
        assert_eq!(payload.event_type(), event);
        let is_build_event = event.name().starts_with("build.");
        assert_eq!(payload.build().is_some(), is_build_event, "{event}");
    }
}
