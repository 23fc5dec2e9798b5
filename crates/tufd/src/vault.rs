//! The server key: AES-256-GCM encryption at rest of online private keys and of the one-time
//! credentials tarball.

use std::path::Path;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("server key must be 64 hex characters (32 bytes)")]
    BadKey,
    #[error("sealed data is truncated")]
    Truncated,
    #[error("sealed data does not decrypt with this server key")]
    Open,
    #[error("random number generator failed")]
    Random,
    #[error("encryption failed")]
    Seal,
}

/// The AES-256-GCM key. The raw bytes are zeroized after the key schedule is built, and
/// aws-lc-rs keeps the schedule out of `Debug`.
pub struct Vault {
    key: LessSafeKey,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault(..)")
    }
}

impl Vault {
    pub fn from_hex(text: &str) -> Result<Self, VaultError> {
        let raw = Zeroizing::new(hex::decode(text.trim()).map_err(|_| VaultError::BadKey)?);
        if raw.len() != 32 {
            return Err(VaultError::BadKey);
        }
        let key = UnboundKey::new(&AES_256_GCM, &raw).map_err(|_| VaultError::BadKey)?;
        Ok(Self {
            key: LessSafeKey::new(key),
        })
    }

    /// A new random key, hex encoded (for `<data-dir>/server-key`).
    pub fn generate_hex() -> Result<Zeroizing<String>, VaultError> {
        let mut raw = Zeroizing::new([0u8; 32]);
        SystemRandom::new()
            .fill(raw.as_mut())
            .map_err(|_| VaultError::Random)?;
        Ok(Zeroizing::new(hex::encode(raw.as_ref())))
    }

    /// Reads a hex key file.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = Zeroizing::new(std::fs::read_to_string(path)?);
        Ok(Self::from_hex(&text)?)
    }

    /// `nonce || ciphertext || tag`. `aad` binds the ciphertext to its row (factory, key ID)
    /// so a sealed key cannot be swapped into another row.
    pub fn seal(&self, aad: &str, plaintext: &[u8]) -> Result<Vec<u8>, VaultError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| VaultError::Random)?;
        let mut buf = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_bytes()),
                &mut buf,
            )
            .map_err(|_| VaultError::Seal)?;
        let mut out = Vec::with_capacity(NONCE_LEN + buf.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        // The plaintext copy inside `buf` was encrypted in place; nothing secret remains.
        Ok(out)
    }

    pub fn open(&self, aad: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        if sealed.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(VaultError::Truncated);
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| VaultError::Truncated)?;
        let mut buf = Zeroizing::new(ct.to_vec());
        let len = self
            .key
            .open_in_place(nonce, Aad::from(aad.as_bytes()), buf.as_mut_slice())
            .map_err(|_| VaultError::Open)?
            .len();
        buf.truncate(len);
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_aad_binding() {
        let v = Vault::from_hex(&Vault::generate_hex().unwrap()).unwrap();
        let s = v.seal("a/b", b"secret").unwrap();
        assert_eq!(v.open("a/b", &s).unwrap().as_slice(), b"secret");
        assert!(v.open("a/c", &s).is_err());
        assert!(v.open("a/b", &s[..10]).is_err());
        let other = Vault::from_hex(&Vault::generate_hex().unwrap()).unwrap();
        assert!(other.open("a/b", &s).is_err());
        assert!(Vault::from_hex("abcd").is_err());
    }
}
