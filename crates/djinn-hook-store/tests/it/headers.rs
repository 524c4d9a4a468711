//! Custom headers per webhook: sealed at rest, shown by name only, handed out by a claim with
//! their values, refused with the header named when they would override the delivery's own.

use djinn_hook_payload::EventType;
use djinn_hook_store::{Error, NewWebhook, WebhookUpdate};

use crate::support::{Backend, now};

const KEY_VALUE: &str = "k3y-plaintext-5e1d7a";

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

/// The headers of the next claimed task, as (name, value).
fn claimed_headers(db: &crate::support::Db) -> Vec<(String, String)> {
    db.emit("alice/ci", EventType::BuildStarted);
    let task = db.claim_all(now()).remove(0);
    let debug = format!("{task:?}");
    assert!(!debug.contains(KEY_VALUE), "{debug}");
    task.request
        .headers
        .iter()
        .map(|h| (h.name.clone(), h.expose().to_owned()))
        .collect()
}

pub(crate) fn headers_are_sealed_shown_by_name_and_claimed_with_their_values(backend: &Backend) {
    let db = backend.db();
    let mut new = NewWebhook::new("alice/ci", "https://example.com/hook");
    new.headers = pairs(&[("X-Api-Key", KEY_VALUE), ("X-Tenant", "acme")]);
    assert!(!format!("{new:?}").contains(KEY_VALUE));
    let hook = db.create(new);
    assert_eq!(hook.headers, ["X-Api-Key", "X-Tenant"]);
    assert!(!format!("{hook:?}").contains(KEY_VALUE));
    assert!(!serde_json::to_string(&hook).unwrap().contains(KEY_VALUE));
    let listed = db.store.webhooks("alice/ci").unwrap();
    assert_eq!(listed[0].headers, ["X-Api-Key", "X-Tenant"]);

    assert_eq!(
        claimed_headers(&db),
        pairs(&[("X-Api-Key", KEY_VALUE), ("X-Tenant", "acme")])
    );
    if db.is_sqlite() {
        // The raw files (database and WAL) never hold a value in clear.
        let dir = db.close();
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                let bytes = std::fs::read(&path).unwrap();
                let found = bytes
                    .windows(KEY_VALUE.len())
                    .any(|w| w == KEY_VALUE.as_bytes());
                assert!(!found, "{} holds the value", path.display());
            }
        }
    }
}

pub(crate) fn an_update_replaces_the_set_and_a_masked_value_keeps_the_stored_one(
    backend: &Backend,
) {
    let db = backend.db();
    let mut new = NewWebhook::new("alice/ci", "https://example.com/hook");
    new.headers = pairs(&[("X-Api-Key", KEY_VALUE), ("X-Tenant", "acme")]);
    let hook = db.create(new);
    let update = |headers: Option<Vec<(String, String)>>| {
        let mut update = WebhookUpdate::default();
        update.headers = headers;
        db.store.update_webhook(hook.id, update)
    };

    // `None` keeps them; another change leaves them be.
    assert_eq!(update(None).unwrap().headers, ["X-Api-Key", "X-Tenant"]);
    // `***` keeps the stored value (matched case-insensitively); a header left out goes.
    let changed = update(Some(pairs(&[("x-api-key", "***"), ("X-Region", "eu")]))).unwrap();
    assert_eq!(changed.headers, ["x-api-key", "X-Region"]);
    assert_eq!(
        claimed_headers(&db),
        pairs(&[("x-api-key", KEY_VALUE), ("X-Region", "eu")])
    );
    // `***` for a header that has no stored value is refused, naming it; nothing changes.
    let Error::Invalid(errors) = update(Some(pairs(&[("X-Other", "***")]))).unwrap_err() else {
        panic!("not a validation error");
    };
    assert!(errors.field("headers")[0].contains("X-Other"), "{errors}");
    assert_eq!(db.store.webhook(hook.id).unwrap().unwrap().headers.len(), 2);
    // An empty set removes them all.
    assert!(update(Some(Vec::new())).unwrap().headers.is_empty());
    assert!(claimed_headers(&db).is_empty());
}

pub(crate) fn headers_that_would_override_the_delivery_or_are_malformed_are_refused(
    backend: &Backend,
) {
    let db = backend.db();
    db.store.ensure_namespace("alice/ci").unwrap();
    let refused = [
        ("X-Djinn-CI-Signature", "sha256=00", "X-Djinn-CI-Signature"),
        ("x-djinn-ci-delivery", "1", "x-djinn-ci-delivery"),
        ("X-Djinn-CI-Event", "push", "X-Djinn-CI-Event"),
        ("webhook-signature", "v1,x", "webhook-signature"),
        ("Content-Type", "text/plain", "Content-Type"),
        ("User-Agent", "me", "User-Agent"),
        ("Host", "evil.example", "Host"),
        ("Content-Length", "1", "Content-Length"),
        ("Transfer-Encoding", "chunked", "Transfer-Encoding"),
        ("Connection", "close", "Connection"),
        ("Bad Name", "v4lue", "\"Bad Name\""),
        ("X-Api-Key", "line\nbreak", "X-Api-Key"),
        ("X-Api-Key", "", "X-Api-Key"),
        ("X-Api-Key", " padded", "X-Api-Key"),
        ("X-Api-Key", "***", "X-Api-Key"),
    ];
    for (name, value, named) in refused {
        let mut new = NewWebhook::new("alice/ci", "https://example.com/hook");
        new.headers = pairs(&[(name, value)]);
        let Error::Invalid(errors) = db.store.create_webhook(new).unwrap_err() else {
            panic!("{name}: not a validation error");
        };
        let message = &errors.field("headers")[0];
        assert!(message.contains(named), "{name}: {message}");
        if !value.is_empty() && value != "***" {
            assert!(
                !message.contains(value),
                "{name}: the value is quoted: {message}"
            );
        }
    }
    let mut twice = NewWebhook::new("alice/ci", "https://example.com/hook");
    twice.headers = pairs(&[("X-A", "1"), ("x-a", "2")]);
    let Error::Invalid(errors) = db.store.create_webhook(twice).unwrap_err() else {
        panic!("not a validation error");
    };
    assert!(errors.field("headers")[0].contains("x-a"), "{errors}");
    assert!(db.store.webhooks("alice/ci").unwrap().is_empty());
}
