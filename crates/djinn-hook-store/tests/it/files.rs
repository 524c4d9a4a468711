//! Files at rest: the database and its `-wal` / `-shm` files are readable by their owner only.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use djinn_hook_store::{NewWebhook, Store};

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
