//! Files at rest: the database, its `-wal` / `-shm` files and the key file are readable by their
//! owner only; a key file others may read is refused.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use djinn_hook_store::{Error, NewWebhook, SecretKey, Store};

use crate::support::key;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn a_new_database_and_its_wal_and_shm_are_created_0600() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hooks.db");
    let store = Store::open(&path, key()).unwrap();
    store.ensure_namespace("alice/ci").unwrap();
    store
        .create_webhook(NewWebhook::new("alice/ci", "https://example.com/"))
        .unwrap();
    for name in ["hooks.db", "hooks.db-wal", "hooks.db-shm"] {
        assert_eq!(mode(&dir.path().join(name)), 0o600, "{name}");
    }
}

#[test]
fn an_existing_database_keeps_its_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hooks.db");
    drop(Store::open(&path, key()).unwrap());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let store = Store::open(&path, key()).unwrap();
    store.ensure_namespace("alice/ci").unwrap();
    assert_eq!(mode(&path), 0o640);
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn the_key_file_is_created_once_with_mode_0600_then_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = SecretKey::file_beside(&dir.path().join("hooks.db"));
    assert_eq!(path, dir.path().join("hooks.db.key"));
    let first = SecretKey::load_or_create(&path).unwrap();
    assert_eq!(mode(&path), 0o600);
    let again = SecretKey::load_or_create(&path).unwrap();
    assert_eq!(again.as_bytes(), first.as_bytes());
    assert_ne!(first.as_bytes(), &[0u8; 32]);
}

#[test]
fn a_key_file_of_another_size_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("short.key");
    std::fs::write(&path, b"not a key").unwrap();
    set_mode(&path, 0o600);
    let err = SecretKey::load_or_create(&path).unwrap_err();
    assert!(matches!(err, Error::KeyFileSize { len: 9, .. }), "{err:?}");
    assert!(
        err.to_string().contains("holds 9 bytes, expected 32"),
        "{err}"
    );
}

#[test]
fn a_key_file_others_may_read_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hooks.db.key");
    let key = SecretKey::load_or_create(&path).unwrap();
    for bits in [0o644, 0o640, 0o604, 0o660] {
        set_mode(&path, bits);
        let err = SecretKey::load_or_create(&path).unwrap_err();
        assert!(
            matches!(err, Error::KeyFileTooOpen { mode, .. } if mode == bits),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(message.contains(&format!("(mode {bits:04o})")), "{message}");
        assert!(
            message.contains(&format!("chmod 600 {}", path.display())),
            "{message}"
        );
    }
    for bits in [0o600, 0o400] {
        set_mode(&path, bits);
        let again = SecretKey::load_or_create(&path).unwrap();
        assert_eq!(again.as_bytes(), key.as_bytes(), "{bits:o}");
    }
}

#[test]
fn the_key_file_convention_opens_a_file_with_its_key_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hooks.db");
    let store = Store::open_with_key_file(&path, None).unwrap();
    store.ensure_namespace("alice/ci").unwrap();
    let mut hook = NewWebhook::new("alice/ci", "https://example.com/");
    hook.secret = Some("s3cret".into());
    store.create_webhook(hook).unwrap();
    drop(store);
    let beside = dir.path().join("hooks.db.key");
    assert_eq!(mode(&beside), 0o600);
    // Opened again with the key beside it, the secret decrypts; with another key, it does not.
    let store = Store::open_with_key_file(&path, Some(&beside)).unwrap();
    assert!(
        store
            .claim_due(
                time::OffsetDateTime::now_utc(),
                1,
                std::time::Duration::from_secs(1)
            )
            .is_ok()
    );
    let other = dir.path().join("other.key");
    let wrong = Store::open_with_key_file(&path, Some(&other)).unwrap();
    assert!(matches!(
        wrong.queue_test(
            1,
            djinn_hook_payload::EventType::Cron,
            b"{}".to_vec(),
            std::time::Duration::from_secs(1)
        ),
        Err(Error::WrongSecretKey { hook_id: 1 })
    ));
}

#[test]
#[cfg(feature = "postgres")]
fn a_postgres_database_needs_a_key_file() {
    // Refused before a connection is tried (nothing listens on port 1 anyway).
    let url = Path::new("postgres://djinn@127.0.0.1:1/hooks");
    let err = Store::open_with_key_file(url, None).unwrap_err();
    assert!(matches!(err, Error::KeyFileRequired), "{err:?}");
}
