//! Secrets: encrypted at rest, returned only by a claim, never in Debug; a wrong key is clear;
//! a rotation's previous secret handed out only during its overlap.

use std::sync::Arc;
use std::time::Duration;

use djinn_hook_outbox::WebhookSecret;
use djinn_hook_payload::EventType;
use djinn_hook_store::{
    DEFAULT_RETENTION, DEFAULT_ROTATION_OVERLAP, Error, MAX_ROTATION_OVERLAP, ManualClock,
    NewWebhook, SecretKey, SecretUpdate, Webhook, WebhookUpdate,
};

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
            .update_webhook(hook.id, {
                let mut update = WebhookUpdate::default();
                update.secret = SecretUpdate::Set(SECRET.into());
                update
            })
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
        .update_webhook(hook.id, {
            let mut update = WebhookUpdate::default();
            update.secret = SecretUpdate::Remove;
            update
        })
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
    let mut update = WebhookUpdate::default();
    update.payload_url = Some(url.into());
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

const NEW_SECRET: &str = "rotated-secret-5b7d0a";

fn rotate(db: &crate::support::Db, id: i64, secret: &str, overlap: Duration) -> Webhook {
    db.store.rotate_secret(id, secret, overlap).unwrap()
}

pub(crate) fn a_rotation_hands_out_both_secrets_until_its_overlap_ends(backend: &Backend) {
    let db = backend.db();
    let mut new = NewWebhook::new("alice/ci", "https://example.com/hook");
    new.secret = Some(SECRET.into());
    let hook = db.create(new);
    assert_eq!(hook.secret_rotating_until, None);

    let before = now();
    let rotated = rotate(&db, hook.id, NEW_SECRET, Duration::from_secs(3600));
    let until = rotated.secret_rotating_until.expect("an overlap under way");
    assert!(
        until >= before + Duration::from_secs(3600) && until <= now() + Duration::from_secs(3600)
    );
    for shown in [
        format!("{rotated:?}"),
        serde_json::to_string(&rotated).unwrap(),
    ] {
        assert!(
            !shown.contains(SECRET) && !shown.contains(NEW_SECRET),
            "{shown}"
        );
    }
    assert!(
        serde_json::to_string(&rotated)
            .unwrap()
            .contains("\"secret_rotating_until\":\"")
    );
    let sealed = db.stored_previous_secret(hook.id).expect("kept, sealed");
    assert!(!sealed.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()));

    // During the overlap: both, the new one as the secret.
    db.emit("alice/ci", EventType::BuildStarted);
    let task = db.claim_all(now()).remove(0);
    assert_eq!(
        task.request.secret.as_ref().map(WebhookSecret::expose),
        Some(NEW_SECRET)
    );
    assert_eq!(
        task.request
            .previous_secret
            .as_ref()
            .map(WebhookSecret::expose),
        Some(SECRET)
    );
    let debug = format!("{task:?}");
    assert!(
        !debug.contains(SECRET) && !debug.contains(NEW_SECRET),
        "{debug}"
    );
    let test = db
        .store
        .queue_test(hook.id, EventType::Cron, b"{}".to_vec(), LEASE)
        .unwrap();
    assert_eq!(
        test.request
            .previous_secret
            .as_ref()
            .map(WebhookSecret::expose),
        Some(SECRET)
    );

    // Past it: the old one is no longer handed out, even before a prune deletes it.
    db.emit("alice/ci", EventType::BuildFinished);
    let later = now() + Duration::from_secs(3601);
    let task = db.claim_all(later).remove(0);
    assert_eq!(
        task.request.secret.as_ref().map(WebhookSecret::expose),
        Some(NEW_SECRET)
    );
    assert_eq!(task.request.previous_secret, None);

    // A second rotation during the overlap keeps only the secret it replaces.
    rotate(&db, hook.id, "third-secret", Duration::from_secs(60));
    db.emit("alice/ci", EventType::Cron);
    let task = db.claim_all(now()).remove(0);
    assert_eq!(
        task.request.secret.as_ref().map(WebhookSecret::expose),
        Some("third-secret")
    );
    assert_eq!(
        task.request
            .previous_secret
            .as_ref()
            .map(WebhookSecret::expose),
        Some(NEW_SECRET)
    );

    // Setting a secret outright ends the overlap.
    let set = db
        .store
        .update_webhook(hook.id, {
            let mut update = WebhookUpdate::default();
            update.secret = SecretUpdate::Set("fourth".into());
            update
        })
        .unwrap();
    assert_eq!(set.secret_rotating_until, None);
    assert_eq!(db.stored_previous_secret(hook.id), None);
}

pub(crate) fn a_rotation_is_validated_and_its_ended_overlap_deleted_by_prune(backend: &Backend) {
    let clock = Arc::new(ManualClock::new());
    let db = backend.db().with_clock(clock.clone());
    let mut new = NewWebhook::new("alice/ci", "https://example.com/hook");
    new.secret = Some(SECRET.into());
    let hook = db.create(new);
    let invalid = |secret: &str, overlap: Duration| match db
        .store
        .rotate_secret(hook.id, secret, overlap)
        .unwrap_err()
    {
        Error::Invalid(errors) => errors.to_string(),
        other => panic!("{other:?}"),
    };
    assert_eq!(invalid("", Duration::ZERO), "secret must not be empty");
    assert_eq!(
        invalid("x", MAX_ROTATION_OVERLAP + Duration::from_secs(1)),
        "overlap must be at most 7 days (604800s), is 604801s"
    );
    assert!(matches!(
        db.store
            .rotate_secret(hook.id + 100, "x", DEFAULT_ROTATION_OVERLAP),
        Err(Error::WebhookNotFound { .. })
    ));
    assert_eq!(DEFAULT_ROTATION_OVERLAP, Duration::from_secs(24 * 3600));

    // No overlap, or no secret to overlap: nothing kept.
    let at_once = rotate(&db, hook.id, NEW_SECRET, Duration::ZERO);
    assert_eq!(at_once.secret_rotating_until, None);
    assert_eq!(db.stored_previous_secret(hook.id), None);
    let bare = db.hook("alice/ci", "https://example.com/bare");
    let first = rotate(&db, bare.id, NEW_SECRET, DEFAULT_ROTATION_OVERLAP);
    assert!(first.has_secret);
    assert_eq!(first.secret_rotating_until, None);
    assert_eq!(db.stored_previous_secret(bare.id), None);

    // A short overlap ends; the webhook stops showing it, and a prune deletes the old secret
    // while a running overlap is left alone.
    rotate(&db, hook.id, "short", Duration::from_millis(200));
    rotate(&db, bare.id, "long", DEFAULT_ROTATION_OVERLAP);
    clock.advance(Duration::from_millis(300));
    assert!(db.stored_previous_secret(hook.id).is_some());
    assert_eq!(
        db.store
            .webhook(hook.id)
            .unwrap()
            .unwrap()
            .secret_rotating_until,
        None
    );
    db.store.prune(DEFAULT_RETENTION).unwrap();
    assert_eq!(db.stored_previous_secret(hook.id), None);
    assert!(db.stored_previous_secret(bare.id).is_some());
    assert!(
        db.store
            .webhook(bare.id)
            .unwrap()
            .unwrap()
            .secret_rotating_until
            .is_some()
    );
}

/// A `whsec_` secret that is not padded base64 of 24 to 64 bytes is refused, naming `secret`
/// and never quoting it, at create, update and rotation; nothing is stored. Other secrets are
/// keys as typed.
pub(crate) fn an_invalid_whsec_secret_is_refused_at_create_update_and_rotation(backend: &Backend) {
    let db = backend.db();
    db.store.ensure_namespace("alice/ci").unwrap();
    let refused = |result: Result<Webhook, Error>, secret: &str| match result {
        Err(Error::Invalid(errors)) => {
            let messages = errors.field("secret");
            assert_eq!(messages.len(), 1, "{secret}: {errors}");
            assert!(
                messages[0].contains("not a Standard Webhooks secret"),
                "{secret}: {}",
                messages[0]
            );
            let encoded = &secret["whsec_".len()..];
            assert!(
                encoded.is_empty() || !errors.to_string().contains(encoded),
                "never quoted: {errors}"
            );
        }
        other => panic!("{secret}: expected a refusal naming secret, got {other:?}"),
    };
    let hook = db.hook("alice/ci", "https://example.com/kept");
    for bad in [
        "whsec_!!!notbase64",
        "whsec_",
        "whsec_c2VjcmV0==",
        "whsec_c2VjcmV0",
    ] {
        let mut new = NewWebhook::new("alice/ci", "https://example.com/new");
        new.standard_webhooks = true;
        new.secret = Some(bad.into());
        refused(db.store.create_webhook(new), bad);
        let mut update = WebhookUpdate::default();
        update.standard_webhooks = Some(true);
        update.secret = SecretUpdate::Set(bad.into());
        refused(db.store.update_webhook(hook.id, update), bad);
        refused(
            db.store
                .rotate_secret(hook.id, bad, DEFAULT_ROTATION_OVERLAP),
            bad,
        );
    }
    assert_eq!(
        db.store.webhooks("alice/ci").unwrap().len(),
        1,
        "nothing created"
    );
    let kept = db.store.webhook(hook.id).unwrap().unwrap();
    assert!(
        !kept.has_secret && !kept.standard_webhooks,
        "nothing changed"
    );

    // 24 bytes, and a plain secret of any length, are accepted.
    let mut new = NewWebhook::new("alice/ci", "https://example.com/ok");
    new.standard_webhooks = true;
    new.secret = Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into());
    assert!(db.store.create_webhook(new).unwrap().has_secret);
    db.store
        .rotate_secret(hook.id, "short", DEFAULT_ROTATION_OVERLAP)
        .unwrap();
}
