//! The key file: 32 random bytes that encrypt webhook secrets, created with mode 0600 on first use.

use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
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

/// Reads an existing key file; a file of another size is an error saying so.
fn read(path: &Path) -> anyhow::Result<[u8; KEY_LEN]> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read key file {}", path.display()))?;
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
    use std::os::unix::fs::PermissionsExt;

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
        let err = load_or_create(&path).unwrap_err().to_string();
        assert!(err.contains("holds 9 bytes, expected 32"), "{err}");
    }
}
