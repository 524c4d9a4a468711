//! The key file: 32 random bytes that encrypt webhook secrets, created with mode 0600 on first use.

use std::fs::File;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::PermissionsExt;
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
///
/// A new key is written whole to a temporary file beside `path`, synced, and
/// linked into place only then: a full disk or a crash leaves no empty or
/// partial key file behind (which would lock the database out for good), and
/// of two processes creating it at once one wins and the other reads its key.
pub(crate) fn load_or_create(path: &Path) -> anyhow::Result<[u8; KEY_LEN]> {
    if let Some(key) = read(path)? {
        return Ok(key);
    }
    let key = *SecretKey::generate()?.as_bytes();
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let cannot_write = || format!("cannot write key file {}", path.display());
    let mut file = tempfile::Builder::new()
        .prefix(".djinn-hooks-key")
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .with_context(cannot_write)?;
    file.write_all(&key)
        .and_then(|()| file.as_file().sync_all())
        .with_context(cannot_write)?;
    match file.persist_noclobber(path) {
        Ok(_) => {
            File::open(dir)
                .and_then(|dir| dir.sync_all())
                .with_context(cannot_write)?;
            Ok(key)
        }
        Err(err) if err.error.kind() == ErrorKind::AlreadyExists => {
            read(path)?.ok_or_else(|| anyhow::anyhow!("key file {} vanished", path.display()))
        }
        Err(err) => Err(err.error).with_context(cannot_write),
    }
}

/// Reads an existing key file (`None` when there is none); a file of another
/// size is an error saying so.
fn read(path: &Path) -> anyhow::Result<Option<[u8; KEY_LEN]>> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == ErrorKind::NotFound => return Ok(None),
        Err(err) => {
            return Err(err).with_context(|| format!("cannot read key file {}", path.display()));
        }
    };
    <[u8; KEY_LEN]>::try_from(bytes.as_slice())
        .map(Some)
        .map_err(|_| {
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
        let err = load_or_create(&path).unwrap_err().to_string();
        assert!(err.contains("holds 9 bytes, expected 32"), "{err}");
    }
}
