//! The 32-byte key that encrypts webhook secrets at rest (AES-256-GCM).

use std::fmt;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

use crate::error::Error;

/// The key webhook secrets are encrypted under. Its `Debug` never shows it.
///
/// Keep it outside the database (an environment variable or a file readable
/// only by the service): whoever has both can read every secret.
#[derive(Clone)]
pub struct SecretKey([u8; 32]);

impl SecretKey {
    /// Wraps 32 key bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> SecretKey {
        SecretKey(bytes)
    }

    /// A fresh random key from the system's secure generator.
    pub fn generate() -> Result<SecretKey, Error> {
        let mut bytes = [0; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| Error::Random)?;
        Ok(SecretKey(bytes))
    }

    /// The key bytes, e.g. to save a generated key.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// AES-256-GCM sealing of webhook secrets, bound to the webhook id (the AAD), so
/// a ciphertext copied onto another webhook's row does not decrypt.
pub(crate) struct Cipher {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl fmt::Debug for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cipher(<redacted>)")
    }
}

impl Cipher {
    pub(crate) fn new(key: &SecretKey) -> Cipher {
        let unbound = UnboundKey::new(&AES_256_GCM, &key.0).expect("32 bytes is an AES-256 key");
        Cipher {
            key: LessSafeKey::new(unbound),
            rng: SystemRandom::new(),
        }
    }

    /// `nonce || ciphertext || tag`, with a fresh random nonce.
    pub(crate) fn seal(&self, hook_id: i64, plaintext: &str) -> Result<Vec<u8>, Error> {
        self.seal_labelled(hook_id, b"", plaintext)
    }

    /// [`seal`](Self::seal) with `label` bound beside the webhook id (the secret's label is
    /// empty), so what is sealed for one use does not open for another.
    pub(crate) fn seal_labelled(
        &self,
        hook_id: i64,
        label: &[u8],
        plaintext: &str,
    ) -> Result<Vec<u8>, Error> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| Error::Random)?;
        let mut in_out = plaintext.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(hook_id, label)),
                &mut in_out,
            )
            .map_err(|_| Error::Corrupt {
                what: "webhook secret too long to encrypt".to_owned(),
            })?;
        let mut out = Vec::with_capacity(NONCE_LEN + in_out.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&in_out);
        Ok(out)
    }

    /// [`open`](Self::open) for a webhook that may have no secret.
    pub(crate) fn open_optional(
        &self,
        hook_id: i64,
        sealed: Option<&[u8]>,
    ) -> Result<Option<String>, Error> {
        sealed.map(|sealed| self.open(hook_id, sealed)).transpose()
    }

    pub(crate) fn open(&self, hook_id: i64, sealed: &[u8]) -> Result<String, Error> {
        self.open_labelled(hook_id, b"", sealed)
    }

    /// [`open`](Self::open) of what [`seal_labelled`](Self::seal_labelled) sealed.
    pub(crate) fn open_labelled(
        &self,
        hook_id: i64,
        label: &[u8],
        sealed: &[u8],
    ) -> Result<String, Error> {
        let wrong = || Error::WrongSecretKey { hook_id };
        if sealed.len() < NONCE_LEN {
            return Err(wrong());
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| wrong())?;
        let mut in_out = rest.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(aad(hook_id, label)), &mut in_out)
            .map_err(|_| wrong())?;
        String::from_utf8(plain.to_vec()).map_err(|_| wrong())
    }
}

/// The associated data: the webhook id, then the label (empty for the secret, so secrets
/// sealed before labels existed still open).
fn aad(hook_id: i64, label: &[u8]) -> Vec<u8> {
    let mut aad = hook_id.to_be_bytes().to_vec();
    aad.extend_from_slice(label);
    aad
}
