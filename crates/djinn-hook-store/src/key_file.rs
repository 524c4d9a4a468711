//! The key file: the 32 bytes of a [`SecretKey`] kept in a file, by default beside the
//! database, created readable by its owner only (0600) on first use. A key file group or
//! others may read is refused, as ssh refuses such a private key: it opens every webhook secret.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
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
    pub fn load_or_create(path: &Path) -> Result<SecretKey, Error> {
        let io = |action| {
            move |source| Error::KeyFileIo {
                action,
                path: path.to_owned(),
                source,
            }
        };
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(mut file) => {
                let key = SecretKey::generate()?;
                file.write_all(key.as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(io("write"))?;
                Ok(key)
            }
            Err(err) if err.kind() == ErrorKind::AlreadyExists => {
                let mut file = File::open(path).map_err(io("read"))?;
                let mode = file.metadata().map_err(io("read"))?.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    return Err(Error::KeyFileTooOpen {
                        path: path.to_owned(),
                        mode,
                    });
                }
                let mut bytes = Vec::with_capacity(KEY_LEN);
                file.read_to_end(&mut bytes).map_err(io("read"))?;
                let key = <[u8; KEY_LEN]>::try_from(bytes.as_slice()).map_err(|_| {
                    Error::KeyFileSize {
                        path: path.to_owned(),
                        len: bytes.len(),
                    }
                })?;
                Ok(SecretKey::from_bytes(key))
            }
            Err(err) => Err(io("create")(err)),
        }
    }
}
