//! What someone holding a copy of tufd's files can open, computed the way tufd seals (see
//! `src/keyring.rs`): a data key wrapped under a keyring epoch and the server key, and a
//! secret sealed under its data key. Tests use it to read the online keys honestly, and to
//! show that after a destruction nothing left anywhere opens the destroyed secret. Only
//! aws-lc-rs and std: other crates' tests include it with `#[path]`.
#![allow(dead_code)]

use std::path::Path;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::hmac;

/// The contents of a `<data-dir>/keyring` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Epoch {
    pub epoch: i64,
    pub key: Vec<u8>,
}

impl Epoch {
    pub fn read(path: &Path) -> Self {
        let text = std::fs::read_to_string(path).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("tufd-keyring 1"));
        let epoch = lines.next().unwrap().parse().unwrap();
        let key = hex::decode(lines.next().unwrap()).unwrap();
        Self { epoch, key }
    }

    /// The next epoch, as every tufd computes it.
    pub fn next(&self) -> Self {
        Self {
            epoch: self.epoch + 1,
            key: derive(&self.key, b"tufd keyring ratchet v1"),
        }
    }

    /// The data key `id` of `wrapped`, if this epoch and `server_key` open it.
    pub fn open_data_key(&self, server_key: &[u8], id: &str, wrapped: &[u8]) -> Option<Vec<u8>> {
        let aad = format!("data-key/{id}/{}", self.epoch);
        let inner = open(server_key, &aad, wrapped)?;
        open(&derive(&self.key, b"tufd keyring wrap v1"), &aad, &inner)
    }
}

/// The server key of a data directory (`<data-dir>/server-key`, hex).
pub fn server_key(data_dir: &Path) -> Vec<u8> {
    let text = std::fs::read_to_string(data_dir.join("server-key")).unwrap();
    hex::decode(text.trim()).unwrap()
}

/// A secret sealed under `data_key` with associated data `aad` (`online-key/<f>/<keyid>`,
/// `credentials/<f>`).
pub fn open_secret(data_key: &[u8], aad: &str, sealed: &[u8]) -> Option<Vec<u8>> {
    open(data_key, aad, sealed)
}

/// AES-256-GCM `nonce || ciphertext || tag`.
pub fn open(key: &[u8], aad: &str, sealed: &[u8]) -> Option<Vec<u8>> {
    let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).ok()?);
    if sealed.len() < NONCE_LEN {
        return None;
    }
    let (nonce, ct) = sealed.split_at(NONCE_LEN);
    let mut buf = ct.to_vec();
    let n = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let len = k
        .open_in_place(n, Aad::from(aad.as_bytes()), &mut buf)
        .ok()?
        .len();
    buf.truncate(len);
    Some(buf)
}

fn derive(key: &[u8], label: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), label)
        .as_ref()
        .to_vec()
}
