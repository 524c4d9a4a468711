//! Secrets: encrypted at rest, returned only by a claim, never in Debug; a wrong key is clear.

use djinn_hook_outbox::WebhookSecret;
use djinn_hook_payload::EventType;
use djinn_hook_store::{Error, NewWebhook, SecretKey, SecretUpdate, WebhookUpdate};

use crate::support::{Backend, LEASE, key, now};

const SECRET: &str = "plaintext-secret-8f2c1e";

fn file_contains(dir: &std::path::Path, needle: &[u8]) -> bool {
    std::fs::read_dir(dir).unwrap().any(|entry| {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        bytes.windows(needle.len()).any(|w| w == needle)
    })
}

pub(crate) fn secret_round_trips_through_a_claim_only(backend: &Backend) {
    let db = backend.db();
    let mut new = NewWebhook::new("alice/ci", "https://example.com/hook");
    new.secret = Some(SECRET.into());
    assert!(!format!("{new:?}").contains(SECRET));
    let hook = db.create(new);
    assert!(hook.has_secret);
    assert!(!format!("{hook:?}").contains(SECRET));
    assert!(!serde_json::to_string(&hook).unwrap().contains(SECRET));

    db.emit("alice/ci", EventType::BuildStarted);
    let task = db.claim_all(now()).remove(0);
    assert_eq!(
        task.request.secret.as_ref().map(WebhookSecret::expose),
        Some(SECRET)
    );
    let debug = format!("{task:?}");
    assert!(!debug.contains(SECRET), "{debug}");
    assert!(debug.contains("<redacted>"), "{debug}");

    let sealed = db.stored_secret(hook.id);
    assert!(!sealed.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()));
    if db.is_sqlite() {
        // The raw files (database and WAL) never hold the plaintext.
        let dir = db.close();
        assert!(!file_contains(dir.path(), SECRET.as_bytes()));
        assert!(
            file_contains(dir.path(), b"https://example.com/hook"),
            "sanity"
        );
    }
}

pub(crate) fn each_write_uses_a_fresh_nonce(backend: &Backend) {
    let db = backend.db();
    db.store.ensure_namespace("alice/ci").unwrap();
    let hook = db.hook("alice/ci", "https://example.com/hook");
    let read = || db.stored_secret(hook.id);
    let set = || {
        db.store
            .update_webhook(
                hook.id,
                WebhookUpdate {
                    secret: SecretUpdate::Set(SECRET.into()),
                    ..WebhookUpdate::default()
                },
            )
            .unwrap()
    };
    set();
    let first = read();
    set();
    let second = read();
    assert_eq!(
        first.len(),
        12 + SECRET.len() + 16,
        "nonce || ciphertext || tag"
    );
    assert_ne!(first, second);
    assert_ne!(first[..12], second[..12]);
}

pub(crate) fn wrong_key_is_a_clear_error_when_decrypting(backend: &Backend) {
    let db = backend.db();
    let mut new = NewWebhook::new("alice/ci", "https://example.com/hook");
    new.secret = Some(SECRET.into());
    let hook = db.create(new);
    db.emit("alice/ci", EventType::BuildStarted);

    let other = db.reopen_with(SecretKey::from_bytes([1; 32]));
    // Reading the webhook needs no decryption.
    assert!(other.webhook(hook.id).unwrap().unwrap().has_secret);
    let err = other.claim_due(now(), 10, LEASE).unwrap_err();
    assert!(
        matches!(err, Error::WrongSecretKey { hook_id } if hook_id == hook.id),
        "{err:?}"
    );
    assert!(err.to_string().contains("wrong secret key"), "{err}");
    // The failed claim leased nothing: the right key still gets the task.
    assert_eq!(db.claim_all(now()).len(), 1);
}

pub(crate) fn removed_secret_claims_as_none_and_key_debug_is_redacted(backend: &Backend) {
    let db = backend.db();
    let mut new = NewWebhook::new("alice/ci", "https://example.com/hook");
    new.secret = Some(SECRET.into());
    let hook = db.create(new);
    let hook = db
        .store
        .update_webhook(
            hook.id,
            WebhookUpdate {
                secret: SecretUpdate::Remove,
                ..WebhookUpdate::default()
            },
        )
        .unwrap();
    assert!(!hook.has_secret);
    db.emit("alice/ci", EventType::Cron);
    assert_eq!(db.claim_all(now())[0].request.secret, None);
    assert_eq!(format!("{:?}", key()), "SecretKey(<redacted>)");
    assert_eq!(
        format!("{:?}", SecretUpdate::Set(SECRET.into())),
        "Set(<redacted>)"
    );
}

pub(crate) fn credentials_in_a_payload_url_are_never_in_debug(backend: &Backend) {
    let db = backend.db();
    let url = "https://user:password@example.com/hook";
    let new = NewWebhook::new("alice/ci", url);
    let update = WebhookUpdate {
        payload_url: Some(url.into()),
        ..WebhookUpdate::default()
    };
    let hook = db.create(new.clone());
    assert_eq!(
        hook.payload_url, url,
        "stored as given: it is sent as basic auth"
    );
    db.emit("alice/ci", EventType::BuildStarted);
    let task = db.claim_all(now()).remove(0);
    assert_eq!(task.request.url, url);
    for debug in [
        format!("{new:?}"),
        format!("{update:?}"),
        format!("{hook:?}"),
        format!("{task:?}"),
    ] {
        assert!(!debug.contains("password"), "{debug}");
        assert!(debug.contains("https://***@example.com/hook"), "{debug}");
    }
}
