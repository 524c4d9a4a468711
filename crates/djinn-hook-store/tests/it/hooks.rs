//! Namespaces and webhook create/read/update/delete with validation.

use djinn_hook_payload::{EventSet, EventType};
use djinn_hook_store::{Error, NewWebhook, SecretUpdate, ValidationErrors, WebhookUpdate};

use crate::support::{Backend, now};

pub(crate) fn ensure_namespace_creates_ancestors_once(backend: &Backend) {
    let db = backend.db();
    let child = db.store.ensure_namespace("alice/parent/child").unwrap();
    let parent = db.store.namespace("alice/parent").unwrap().unwrap();
    assert_eq!(child.parent_id, Some(parent.id));
    assert_eq!(parent.parent_id, None);
    assert_eq!(child.owner(), "alice");
    assert_eq!(child.path(), "parent/child");
    let again = db.store.ensure_namespace("alice/parent/child").unwrap();
    assert_eq!(again, child);
    let names: Vec<_> = db
        .store
        .namespaces()
        .unwrap()
        .into_iter()
        .map(|n| n.name)
        .collect();
    assert_eq!(names, ["alice/parent", "alice/parent/child"]);
    assert_eq!(db.store.namespace("bob/x").unwrap(), None);
}

pub(crate) fn bad_namespace_names_are_refused(backend: &Backend) {
    let db = backend.db();
    for bad in ["alice", "alice/", "/x", "a//b", ""] {
        let err = db.store.ensure_namespace(bad).unwrap_err();
        assert!(
            matches!(err, Error::InvalidNamespace { .. }),
            "{bad}: {err:?}"
        );
        assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
    }
    // What a URL path would change (a browser resolves `x\..\..\bob` or `..` into another
    // namespace) is refused by name, whether the namespace is made alone or by a webhook.
    for (bad, named) in [
        ("alice/ci/..", r#"segment "..""#),
        ("alice/../bob/ci", r#"segment "..""#),
        ("alice/./ci", r#"segment ".""#),
        (r"alice/ci/x\..\..\..\bob\ci", "backslash"),
        (r"alice\x/ci", "backslash"),
    ] {
        let err = db.store.ensure_namespace(bad).unwrap_err();
        assert!(err.to_string().contains(named), "{bad}: {err}");
        let err = db
            .store
            .create_webhook(NewWebhook::new(bad, "https://example.com/"))
            .unwrap_err();
        assert!(err.to_string().contains(named), "{bad}: {err}");
    }
    assert!(db.store.namespaces().unwrap().is_empty(), "nothing stored");
    // Dots within a segment are names like any other.
    for good in ["alice/.ci", "alice/ci.../x", "alice/v1.2"] {
        db.store.ensure_namespace(good).unwrap();
    }
}

fn invalid(err: Error) -> ValidationErrors {
    match err {
        Error::Invalid(e) => e,
        other => panic!("expected a validation error, got {other:?}"),
    }
}

pub(crate) fn create_validates_every_field(backend: &Backend) {
    let db = backend.db();
    db.store.ensure_namespace("alice/ci").unwrap();
    let check = |url: &str, ssl: bool, events: &[&str], field: &str, message: &str| {
        let mut new = NewWebhook::new("alice/ci", url);
        new.ssl = ssl;
        new.events = events.iter().map(|s| s.to_string()).collect();
        let errors = invalid(db.store.create_webhook(new).unwrap_err());
        assert_eq!(
            errors.field(field),
            [message],
            "{url} {events:?}: {errors:?}"
        );
    };
    check("", false, &[], "payload_url", "is required");
    check("   ", false, &[], "payload_url", "is required");
    check(
        "ftp://example.com",
        false,
        &[],
        "payload_url",
        "must be an http or https URL",
    );
    check(
        "example.com/hook",
        false,
        &[],
        "payload_url",
        "must be an http or https URL",
    );
    check("https://", false, &[], "payload_url", "must have a host");
    check(
        "http://:8080/x",
        false,
        &[],
        "payload_url",
        "must have a host",
    );
    check(
        "http://user@/x",
        false,
        &[],
        "payload_url",
        "must have a host",
    );
    check(
        "http://example.com",
        true,
        &[],
        "ssl",
        "requires an https payload_url",
    );
    check(
        "https://example.com",
        true,
        &["build.submitted", "x"],
        "events",
        "unknown event \"x\"",
    );
    // Several fields at once, in the original's API error shape.
    let mut new = NewWebhook::new("alice/ci", "gopher://h");
    new.events = vec!["nope".into(), "cron".into()];
    let errors = invalid(db.store.create_webhook(new).unwrap_err());
    insta::assert_json_snapshot!("validation_errors", errors);
    assert_eq!(
        errors.to_string(),
        "events unknown event \"nope\"; payload_url must be an http or https URL"
    );
    assert!(
        db.store.all_webhooks().unwrap().is_empty(),
        "nothing stored"
    );
}

pub(crate) fn payload_url_is_unique_within_its_namespace_only(backend: &Backend) {
    let db = backend.db();
    let first = db.hook("alice/ci", "https://example.com/hook");
    let errors = invalid(
        db.store
            .create_webhook(NewWebhook::new("alice/ci", "https://example.com/hook"))
            .unwrap_err(),
    );
    assert_eq!(
        errors.field("payload_url"),
        ["is already used by another webhook in this namespace"]
    );
    let other = db.hook("alice/other", "https://example.com/hook");
    assert_ne!(first.id, other.id);
    // Updating a hook to its own URL is fine; to another's is not.
    let second = db.hook("alice/ci", "https://example.com/second");
    db.store
        .update_webhook(second.id, {
            let mut update = WebhookUpdate::default();
            update.payload_url = Some("https://example.com/second".into());
            update
        })
        .unwrap();
    let errors = invalid(
        db.store
            .update_webhook(second.id, {
                let mut update = WebhookUpdate::default();
                update.payload_url = Some("https://example.com/hook".into());
                update
            })
            .unwrap_err(),
    );
    assert_eq!(errors.field("payload_url").len(), 1);
}

pub(crate) fn create_in_unknown_namespace_names_it(backend: &Backend) {
    let db = backend.db();
    let err = db
        .store
        .create_webhook(NewWebhook::new("ghost/ns", "https://example.com"))
        .unwrap_err();
    assert!(
        matches!(&err, Error::NamespaceNotFound { namespace } if namespace == "ghost/ns"),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "namespace \"ghost/ns\" not found");
}

pub(crate) fn create_get_list_update_delete(backend: &Backend) {
    let db = backend.db();
    db.store.ensure_namespace("alice/ci").unwrap();
    db.store.ensure_namespace("bob/ci").unwrap();
    let mut new = NewWebhook::new("alice/ci", "https://example.com/a");
    new.author_id = Some(12);
    new.events = vec![];
    new.standard_webhooks = true;
    new.secret = Some("s".into());
    let a = db.store.create_webhook(new).unwrap();
    assert_eq!(a.events, EventSet::all(), "empty list means all events");
    assert!(a.ssl && a.active && a.standard_webhooks && a.has_secret);
    assert_eq!(a.author_id, Some(12));
    insta::assert_json_snapshot!("webhook", a, {
        ".id" => "[id]",
        ".created_at" => "[time]",
    });
    let b = db.hook("bob/ci", "http://example.com/b");
    assert!(!b.ssl);
    assert_eq!(db.store.webhook(a.id).unwrap().as_ref(), Some(&a));
    assert_eq!(
        db.store.webhooks("alice/ci").unwrap(),
        std::slice::from_ref(&a)
    );
    assert_eq!(db.store.webhooks("nobody/x").unwrap(), []);
    assert_eq!(db.store.all_webhooks().unwrap().len(), 2);

    let updated = db
        .store
        .update_webhook(a.id, {
            let mut update = WebhookUpdate::default();
            update.payload_url = Some("http://example.com/a2".into());
            update.ssl = Some(false);
            update.events = Some(vec!["cron".into(), "images".into()]);
            update.standard_webhooks = Some(false);
            update.secret = SecretUpdate::Remove;
            update
        })
        .unwrap();
    assert_eq!(updated.payload_url, "http://example.com/a2");
    assert_eq!(updated.events.names(), ["cron", "images"]);
    assert!(!updated.ssl && !updated.standard_webhooks && !updated.has_secret);
    assert_eq!(updated.author_id, Some(12), "untouched");
    assert_eq!(updated.created_at, a.created_at);

    // ssl=true on the (now http) URL is refused; so is an unknown event.
    let errors = invalid(
        db.store
            .update_webhook(a.id, {
                let mut update = WebhookUpdate::default();
                update.ssl = Some(true);
                update.events = Some(vec!["bogus".into()]);
                update
            })
            .unwrap_err(),
    );
    assert_eq!(errors.field("ssl"), ["requires an https payload_url"]);
    assert_eq!(errors.field("events"), ["unknown event \"bogus\""]);
    let errors = invalid(
        db.store
            .update_webhook(a.id, {
                let mut update = WebhookUpdate::default();
                update.payload_url = Some(" ".into());
                update
            })
            .unwrap_err(),
    );
    assert_eq!(errors.field("payload_url"), ["is required"]);
    assert_eq!(
        db.store.webhook(a.id).unwrap().unwrap(),
        updated,
        "unchanged"
    );

    db.store.delete_webhook(a.id).unwrap();
    assert_eq!(db.store.webhook(a.id).unwrap(), None);
    assert!(matches!(
        db.store.delete_webhook(a.id).unwrap_err(),
        Error::WebhookNotFound { id } if id == a.id
    ));
    assert!(matches!(
        db.store
            .update_webhook(a.id, WebhookUpdate::default())
            .unwrap_err(),
        Error::WebhookNotFound { .. }
    ));
}

pub(crate) fn only_active_subscribed_hooks_of_the_namespace_match(backend: &Backend) {
    let db = backend.db();
    db.hook("alice/ci", "https://example.com/all");
    let mut cron_only = NewWebhook::new("alice/ci", "https://example.com/cron");
    cron_only.events = vec!["cron".into()];
    db.store.create_webhook(cron_only).unwrap();
    let mut inactive = NewWebhook::new("alice/ci", "https://example.com/off");
    inactive.active = false;
    db.store.create_webhook(inactive).unwrap();
    db.hook("alice/other", "https://example.com/elsewhere");

    let accepted = db.emit("alice/ci", EventType::BuildSubmitted);
    assert_eq!(accepted.matched, 1);
    let accepted = db.emit("alice/ci", EventType::Cron);
    assert_eq!(accepted.matched, 2);
    // invite.rejected is part of "all" (unlike the original).
    let accepted = db.emit("alice/ci", EventType::InviteRejected);
    assert_eq!(accepted.matched, 1);
    // No webhook at all: recorded anyway.
    db.store.ensure_namespace("carol/quiet").unwrap();
    let accepted = db.emit("carol/quiet", EventType::Images);
    assert_eq!(accepted.matched, 0);
    let stats = db.store.counts().unwrap();
    assert_eq!((stats.events, stats.pending), (4, 4));
    assert_eq!(db.claim_all(now()).len(), 4);
}

pub(crate) fn tls_verification_is_on_unless_turned_off_for_an_https_url(backend: &Backend) {
    let db = backend.db();
    // The default comes from the trimmed URL.
    let padded = db.hook("alice/ci", "  HTTPS://example.com/padded ");
    assert_eq!(padded.payload_url, "HTTPS://example.com/padded");
    assert!(padded.ssl, "an https URL verifies by default");

    // http -> https without a word about ssl: verification comes on.
    let plain = db.hook("alice/ci", "http://example.com/plain");
    assert!(!plain.ssl);
    let url = |u: &str| {
        let mut update = WebhookUpdate::default();
        update.payload_url = Some(u.into());
        update
    };
    // The ssl setting after moving webhook `id` to `u`, saying nothing about ssl.
    let ssl_after_move = |id: i64, u: &str| db.store.update_webhook(id, url(u)).unwrap().ssl;
    assert!(ssl_after_move(plain.id, " https://example.com/plain "));

    // Off only when asked for, and then kept across a change of https URL.
    let asked = db
        .store
        .update_webhook(plain.id, {
            let mut update = WebhookUpdate::default();
            update.ssl = Some(false);
            update
        })
        .unwrap();
    assert!(!asked.ssl);
    assert!(
        !ssl_after_move(plain.id, "https://example.com/moved"),
        "an explicit ssl=false stays with the webhook"
    );

    // https -> http turns it off rather than refusing the change; back to https turns it on.
    let verified = db.hook("alice/ci", "https://example.com/verified");
    assert!(!ssl_after_move(verified.id, "http://example.com/verified"));
    assert!(ssl_after_move(verified.id, "https://example.com/verified"));
}

pub(crate) fn payload_urls_are_what_the_http_client_can_send(backend: &Backend) {
    let db = backend.db();
    db.store.ensure_namespace("alice/ci").unwrap();
    let create = |url: &str| db.store.create_webhook(NewWebhook::new("alice/ci", url));
    // A non-ASCII host is stored IDNA-encoded, the rest as given.
    let idn = create("https://Bücher.example:8443/hook?q=1").unwrap();
    assert_eq!(
        idn.payload_url,
        "https://xn--bcher-kva.example:8443/hook?q=1"
    );
    let with_user = create("http://user:password@bücher.example/").unwrap();
    assert_eq!(
        with_user.payload_url,
        "http://user:password@xn--bcher-kva.example/"
    );
    // What the client's URI parser refuses is refused here, naming payload_url, never quoting
    // the URL (it may hold credentials).
    for bad in [
        "http://üser:password@example.com/",
        "http://exa%mple.com/",
        "http://[::1/",
        "http://example.com:99999999/",
        "http://a\u{fffd}\u{fffd}b.example/",
    ] {
        let errors = invalid(create(bad).unwrap_err());
        let messages = errors.field("payload_url");
        assert_eq!(messages.len(), 1, "{bad}: {errors:?}");
        assert!(
            !errors.to_string().contains("password") && !errors.to_string().contains("example"),
            "{bad}: {errors}"
        );
    }
    assert_eq!(
        db.store.all_webhooks().unwrap().len(),
        2,
        "nothing else stored"
    );
}
