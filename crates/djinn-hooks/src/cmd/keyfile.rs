//! The key file: 32 random bytes that encrypt webhook secrets, created with mode 0600 on first use.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use djinn_hook_store::SecretKey;

/// The key's length in bytes (AES-256).
pub(crate) const KEY_LEN: usize = 32;

/// The key file to use: the one given, or `<db>.key` beside the database.
pub(crate) fn path(db: &Path, given: Option<&Path>) -> PathBuf {
    match given {
        Some(path) => path.to_owned(),
        None => {
            let mut name = db.as_os_str().to_owned();
            name.push(".key");
            PathBuf::from(name)
        }
    }
}

/// Reads the key from `path`, creating the file with a fresh random key
/// (mode 0600) when it does not exist. The key is never printed.
pub(crate) fn load_or_create(path: &Path) -> anyhow::Result<[u8; KEY_LEN]> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(mut file) => {
            let key = *SecretKey::generate()?.as_bytes();
            file.write_all(&key)
                .and_then(|()| file.sync_all())
                .with_context(|| format!("cannot write key file {}", path.display()))?;
            Ok(key)
        }
        Err(err) if err.kind() == ErrorKind::AlreadyExists => read(path),
        Err(err) => Err(err).with_context(|| format!("cannot create key file {}", path.display())),
    }
}

/// Reads an existing key file. A file others may read is refused, as ssh refuses such a
/// private key (the key opens every webhook secret); a file of another size is an error too.
fn read(path: &Path) -> anyhow::Result<[u8; KEY_LEN]> {
    let cannot_read = || format!("cannot read key file {}", path.display());
    let mut file = File::open(path).with_context(cannot_read)?;
    let mode = file
        .metadata()
        .with_context(cannot_read)?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        anyhow::bail!(
            "key file {path} is readable by others (mode {mode:04o}); \
             make it private with `chmod 600 {path}`",
            path = path.display()
        );
    }
    let mut bytes = Vec::with_capacity(KEY_LEN);
    file.read_to_end(&mut bytes).with_context(cannot_read)?;
    <[u8; KEY_LEN]>::try_from(bytes.as_slice()).map_err(|_| {
        anyhow::anyhow!(
            "key file {} holds {} bytes, expected {KEY_LEN} (it is not a djinn-hooks key file, or it was damaged)",
            path.display(),
            bytes.len()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_once_with_mode_0600_then_reads_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = path(&dir.path().join("hooks.db"), None);
        assert_eq!(path, dir.path().join("hooks.db.key"));
        let first = load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(load_or_create(&path).unwrap(), first);
        assert_ne!(first, [0u8; KEY_LEN]);
    }

    #[test]
    fn a_wrong_size_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("short.key");
        std::fs::write(&path, b"not a key").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let err = load_or_create(&path).unwrap_err().to_string();
        assert!(err.contains("holds 9 bytes, expected 32"), "{err}");
    }

    #[test]
    fn a_key_file_others_may_read_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hooks.db.key");
        let key = load_or_create(&path).unwrap();
        for mode in [0o644, 0o640, 0o604, 0o660] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let err = load_or_create(&path).unwrap_err().to_string();
            assert!(err.contains(&format!("(mode {mode:04o})")), "{err}");
            assert!(
                err.contains(&format!("chmod 600 {}", path.display())),
                "{err}"
            );
        }
        for mode in [0o600, 0o400] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(load_or_create(&path).unwrap(), key, "{mode:o}");
        }
    }
}
