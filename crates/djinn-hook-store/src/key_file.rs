//! The key file: the 32 bytes of a [`SecretKey`] kept in a file, by default beside the
//! database, created readable by its owner only (0600) on first use. A key file group or
//! others may read is refused, as ssh refuses such a private key: it opens every webhook secret.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::key::SecretKey;

/// The key's length in bytes (AES-256).
const KEY_LEN: usize = 32;

impl SecretKey {
    /// The default key file of the database at `db`: `<db>.key`, beside it.
    pub fn file_beside(db: &Path) -> PathBuf {
        let mut name = db.as_os_str().to_owned();
        name.push(".key");
        PathBuf::from(name)
    }

    /// Reads the key from the file at `path`, creating it with a fresh random key (mode 0600)
    /// when it does not exist. A file group or others may read is refused
    /// ([`Error::KeyFileTooOpen`], saying how to fix it); so is one of another size
    /// ([`Error::KeyFileSize`]).
    ///
    /// A new key is written whole to a temporary file beside `path`, synced, and linked into
    /// place only then: a full disk or a crash leaves no empty or partial key file behind
    /// (which would lock the database out for good), and of two processes creating it at once
    /// one wins and the other reads its key.
    pub fn load_or_create(path: &Path) -> Result<SecretKey, Error> {
        let io = |action| {
            move |source| Error::KeyFileIo {
                action,
                path: path.to_owned(),
                source,
            }
        };
        match File::open(path) {
            Ok(file) => return read_key(file, path),
            Err(err) if err.kind() == ErrorKind::NotFound => {}
            Err(err) => return Err(io("read")(err)),
        }
        let key = SecretKey::generate()?;
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let mut file = tempfile::Builder::new()
            .prefix(".djinn-hooks-key")
            .permissions(std::fs::Permissions::from_mode(0o600))
            .tempfile_in(dir)
            .map_err(io("create"))?;
        file.write_all(key.as_bytes())
            .and_then(|()| file.as_file().sync_all())
            .map_err(io("write"))?;
        match file.persist_noclobber(path) {
            Ok(_) => {
                File::open(dir)
                    .and_then(|dir| dir.sync_all())
                    .map_err(io("write"))?;
                Ok(key)
            }
            Err(err) if err.error.kind() == ErrorKind::AlreadyExists => {
                read_key(File::open(path).map_err(io("read"))?, path)
            }
            Err(err) => Err(io("write")(err.error)),
        }
    }
}

/// Reads the key of the open key file at `path`, refusing a file others may read.
fn read_key(mut file: File, path: &Path) -> Result<SecretKey, Error> {
    let io = |source| Error::KeyFileIo {
        action: "read",
        path: path.to_owned(),
        source,
    };
    let mode = file.metadata().map_err(io)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Error::KeyFileTooOpen {
            path: path.to_owned(),
            mode,
        });
    }
    let mut bytes = Vec::with_capacity(KEY_LEN);
    file.read_to_end(&mut bytes).map_err(io)?;
    let key = <[u8; KEY_LEN]>::try_from(bytes.as_slice()).map_err(|_| Error::KeyFileSize {
        path: path.to_owned(),
        len: bytes.len(),
    })?;
    Ok(SecretKey::from_bytes(key))
}
