//! The credentials tarball (the "offline keys file"): a gzip'd tar holding a Factory's
//! `config.json`, a copy of its root, and offline private keys.
//!
//! The tarball is read fully into memory and never unpacked to disk. Entry names are checked
//! against an allow-list, sizes are capped (compressed, decompressed, per entry), and only
//! regular files and directories are accepted. Writing is deterministic: the same contents
//! always give the same bytes (sorted entries, mtime 0, uid/gid 0, mode 0600).
//!
//! Layout (DESIGN.md section 3):
//!
//! ```text
//! tufrepo/config.json                 {"api": "<server URL>", "factory": "<name>"}
//! tufrepo/roles/root.json             the CI root.json when the file was created
//! tufrepo/keys/<name>.pub             the key exactly as in root.json
//! tufrepo/keys/<name>.sec             the same object with keyval.private (PKCS#8 PEM)
//! tufrepo/keys/<name>.pkcs11          instead of .sec: where on a hardware token the private
//!                                     key is (a reference; no secret)
//! ```
//!
//! Keys are identified by matching their public part against a root, never by file name.
//!
//! ```
//! use tuf_core::{KeyType, PrivateKey, Signer as _};
//! use tuf_credentials::{Config, Credentials, Error};
//!
//! let key = PrivateKey::generate(KeyType::Ed25519)?;
//! let mut creds = Credentials::new(Config {
//!     api: "https://tuf.example.com".to_owned(),
//!     factory: "acme".to_owned(),
//! });
//! creds.add_key("offline-root", &key)?;
//! let bytes = creds.to_bytes()?;
//! assert_eq!(creds.to_bytes()?, bytes); // deterministic: same contents, same bytes
//!
//! let back = Credentials::read(&bytes)?;
//! assert_eq!(back.config().factory, "acme");
//! assert_eq!(back.private_key("offline-root")?.key_id(), key.key_id());
//!
//! // Encrypted with an age passphrase, it opens only with the passphrase.
//! let sealed = creds.to_encrypted_bytes("correct horse battery staple")?;
//! assert!(matches!(Credentials::read(&sealed), Err(Error::Encrypted)));
//! let opened = Credentials::read_encrypted(&sealed, "correct horse battery staple")?;
//! assert_eq!(opened.to_bytes()?, bytes);
//!
//! // Anything else is refused with the reason, never unpacked.
//! assert!(matches!(Credentials::read(b"not a tarball"), Err(Error::NotCredentials(_))));
//! # Ok::<(), Error>(())
//! ```

#![warn(missing_docs)]

mod archive;
mod error;
mod file;
mod keyfile;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tuf_core::{PrivateKey, PublicKey, Signer};
use zeroize::Zeroizing;

pub use error::Error;
pub use file::{leftover_temps, load, save_atomic, save_new, Loaded};

/// Where the Factory lives. No secrets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// The server the Factory lives on, as an `http(s)://` URL.
    pub api: String,
    /// The Factory's name.
    pub factory: String,
}

/// One key stored in the tarball.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredKey {
    /// The file name without directory and extension, e.g. `offline-root`.
    pub name: String,
    /// The key exactly as in root.json.
    pub public: PublicKey,
    /// Whether a `.sec` file holds the private part (false for a key on a token: see
    /// [`StoredKey::private`] and [`StoredKey::can_sign`]).
    pub has_private: bool,
    /// Where the private part is.
    pub private: PrivatePart,
}

/// Where the private part of a stored key is.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PrivatePart {
    /// In the tarball: `keys/<name>.sec`.
    File,
    /// On a hardware token; `keys/<name>.pkcs11` says which (see
    /// [`Credentials::token_key_ref`]). The private key never leaves the token.
    Token {
        /// The token's label.
        label: String,
        /// The token's serial number.
        serial: String,
    },
    /// Nowhere in this tarball: only the public key is stored.
    None,
}

impl StoredKey {
    /// True when this tarball can sign with the key (a `.sec` file, or a token reference).
    pub fn can_sign(&self) -> bool {
        self.private != PrivatePart::None
    }

    /// The key's ID, from its public part.
    pub fn key_id(&self) -> tuf_core::KeyId {
        self.public.key_id()
    }

    /// True when `other` is the same key material (whatever key ID names it).
    pub fn matches(&self, other: &PublicKey) -> bool {
        same_key(&self.public, other)
    }
}

/// The contents of a credentials tarball, in memory. Every entry's bytes are zeroized on
/// drop; `Debug` shows entry names only.
pub struct Credentials {
    config: Config,
    entries: BTreeMap<String, Zeroizing<Vec<u8>>>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("config", &self.config)
            .field("entries", &self.entries.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Credentials {
    /// A new tarball holding only `config.json`.
    pub fn new(config: Config) -> Self {
        let mut entries = BTreeMap::new();
        entries.insert(CONFIG.to_owned(), Zeroizing::new(config_bytes(&config)));
        Self { config, entries }
    }

    /// Parses a plain (not encrypted) tarball. An age-encrypted file gives
    /// [`Error::Encrypted`], so the caller can ask for a passphrase and call
    /// [`Credentials::read_encrypted`].
    pub fn read(bytes: &[u8]) -> Result<Self, Error> {
        if archive::is_age(bytes) {
            return Err(Error::Encrypted);
        }
        let entries = archive::read(bytes)?;
        Self::from_entries(entries)
    }

    /// Parses a tarball encrypted with an age passphrase (scrypt recipient), as written by
    /// [`Credentials::to_encrypted_bytes`] or by `age -p` / `rage -p`. A plain tarball is
    /// accepted too.
    pub fn read_encrypted(bytes: &[u8], passphrase: &str) -> Result<Self, Error> {
        if !archive::is_age(bytes) {
            return Self::read(bytes);
        }
        let plain = archive::decrypt(bytes, passphrase)?;
        let entries = archive::read(&plain)?;
        Self::from_entries(entries)
    }

    /// True when `bytes` start with an age header (binary or armored).
    pub fn is_encrypted(bytes: &[u8]) -> bool {
        archive::is_age(bytes)
    }

    fn from_entries(entries: BTreeMap<String, Zeroizing<Vec<u8>>>) -> Result<Self, Error> {
        let raw = entries.get(CONFIG).ok_or_else(|| {
            Error::NotCredentials(format!("it has no {CONFIG} (is this a credentials file?)"))
        })?;
        let config: Config =
            serde_json::from_slice(raw).map_err(|e| Error::BadConfig(format!("{CONFIG}: {e}")))?;
        let creds = Self { config, entries };
        // Every key file must parse, and a .pub must describe the same key as its .sec.
        for name in creds.key_names() {
            creds.stored_key(&name)?;
        }
        if let Some(root) = creds.entries.get(ROOT) {
            tuf_core::canonical::parse(root).map_err(|e| Error::BadEntry {
                name: ROOT.to_owned(),
                reason: e.to_string(),
            })?;
        }
        Ok(creds)
    }

    /// The server and Factory this file belongs to.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Replaces `config.json`.
    pub fn set_config(&mut self, config: Config) {
        self.entries
            .insert(CONFIG.to_owned(), Zeroizing::new(config_bytes(&config)));
        self.config = config;
    }

    /// Stores `roles/root.json` (a copy of the root for reference and offline use).
    pub fn set_root_json(&mut self, bytes: &[u8]) -> Result<(), Error> {
        tuf_core::canonical::parse(bytes).map_err(|e| Error::BadEntry {
            name: ROOT.to_owned(),
            reason: e.to_string(),
        })?;
        self.entries
            .insert(ROOT.to_owned(), Zeroizing::new(bytes.to_vec()));
        Ok(())
    }

    /// The stored `roles/root.json`, if any.
    pub fn root_json(&self) -> Option<&[u8]> {
        self.entries.get(ROOT).map(|v| v.as_slice())
    }

    /// The parsed stored root, if any.
    pub fn root(&self) -> Result<Option<tuf_core::Signed<tuf_core::Root>>, Error> {
        self.root_json()
            .map(|b| {
                tuf_core::Signed::from_slice(b).map_err(|e| Error::BadEntry {
                    name: ROOT.to_owned(),
                    reason: e.to_string(),
                })
            })
            .transpose()
    }

    /// Adds `keys/<name>.pub` and `keys/<name>.sec`. Refuses to replace a different key
    /// stored under the same name; storing the same key again is a no-op.
    pub fn add_key(&mut self, name: &str, key: &PrivateKey) -> Result<(), Error> {
        check_key_name(name)?;
        if let Some(existing) = self.stored_key_opt(name)? {
            if same_key(&existing.public, key.public_key()) && existing.has_private {
                return Ok(());
            }
            return Err(Error::KeyExists(name.to_owned()));
        }
        let (public, secret) = keyfile::encode(key)?;
        self.entries
            .insert(key_path(name, PUB), Zeroizing::new(public));
        self.entries.insert(key_path(name, SEC), secret);
        Ok(())
    }

    /// Adds only a public key (`keys/<name>.pub`).
    pub fn add_public_key(&mut self, name: &str, key: &PublicKey) -> Result<(), Error> {
        check_key_name(name)?;
        if self.stored_key_opt(name)?.is_some() {
            return Err(Error::KeyExists(name.to_owned()));
        }
        self.entries.insert(
            key_path(name, PUB),
            Zeroizing::new(keyfile::encode_public(key)?),
        );
        Ok(())
    }

    /// Adds a key whose private part lives on a hardware token: `keys/<name>.pub` and
    /// `keys/<name>.pkcs11`, the token reference as JSON (module, token label and serial, key
    /// ID and label, keytype and scheme; no secret). Storing the same key again is a no-op.
    pub fn add_token_key(
        &mut self,
        name: &str,
        public: &PublicKey,
        reference: &[u8],
    ) -> Result<(), Error> {
        check_key_name(name)?;
        let path = key_path(name, PKCS11);
        keyfile::decode_token_ref(&path, reference, public)?;
        if let Some(existing) = self.stored_key_opt(name)? {
            let same_ref = self.entries.get(&path).map(|v| v.as_slice()) == Some(reference);
            if same_key(&existing.public, public) && same_ref {
                return Ok(());
            }
            return Err(Error::KeyExists(name.to_owned()));
        }
        self.entries.insert(
            key_path(name, PUB),
            Zeroizing::new(keyfile::encode_public(public)?),
        );
        self.entries
            .insert(path, Zeroizing::new(reference.to_vec()));
        Ok(())
    }

    /// The stored `keys/<name>.pkcs11` (the JSON token reference of a hardware key).
    pub fn token_key_ref(&self, name: &str) -> Result<Vec<u8>, Error> {
        self.entries
            .get(&key_path(name, PKCS11))
            .map(|v| v.to_vec())
            .ok_or_else(|| Error::KeyNotFound(format!("{name} (no .pkcs11 file)")))
    }

    /// The stored key that is the same key material as `public`, if any.
    pub fn find_key(&self, public: &PublicKey) -> Result<Option<StoredKey>, Error> {
        Ok(self.keys()?.into_iter().find(|k| k.matches(public)))
    }

    /// Removes `keys/<name>.pub|.sec|.pkcs11`. Errors when no such key is stored.
    pub fn remove_key(&mut self, name: &str) -> Result<(), Error> {
        let a = self.entries.remove(&key_path(name, PUB));
        let b = self.entries.remove(&key_path(name, SEC));
        let c = self.entries.remove(&key_path(name, PKCS11));
        if a.is_none() && b.is_none() && c.is_none() {
            return Err(Error::KeyNotFound(name.to_owned()));
        }
        Ok(())
    }

    /// Every stored key, sorted by name.
    pub fn keys(&self) -> Result<Vec<StoredKey>, Error> {
        self.key_names()
            .iter()
            .map(|n| self.stored_key(n))
            .collect()
    }

    /// Loads the private part of the key stored as `name`.
    pub fn private_key(&self, name: &str) -> Result<PrivateKey, Error> {
        let sec = self
            .entries
            .get(&key_path(name, SEC))
            .ok_or_else(|| Error::KeyNotFound(format!("{name} (no .sec file)")))?;
        keyfile::decode_private(&key_path(name, SEC), sec)
    }

    /// The private key whose public part is `public`, found by key material (never by file
    /// name). `None` when the tarball holds no such private key.
    pub fn find_signer(&self, public: &PublicKey) -> Result<Option<PrivateKey>, Error> {
        for k in self.keys()? {
            if k.has_private && k.matches(public) {
                let key = self.private_key(&k.name)?;
                if same_key(key.public_key(), public) {
                    return Ok(Some(key));
                }
            }
        }
        Ok(None)
    }

    /// The name under which `public` is stored, if it is.
    pub fn key_name_of(&self, public: &PublicKey) -> Result<Option<String>, Error> {
        Ok(self
            .keys()?
            .into_iter()
            .find(|k| k.matches(public))
            .map(|k| k.name))
    }

    /// A new tarball with this one's `config.json`, `roles/root.json` and only the keys
    /// named in `names` (their .pub, .sec and .pkcs11).
    pub fn subset(&self, names: &[&str]) -> Result<Self, Error> {
        let mut out = Self::new(self.config.clone());
        out.entries.insert(
            CONFIG.to_owned(),
            self.entries
                .get(CONFIG)
                .cloned()
                .unwrap_or_else(|| Zeroizing::new(config_bytes(&self.config))),
        );
        if let Some(root) = self.entries.get(ROOT) {
            out.entries.insert(ROOT.to_owned(), root.clone());
        }
        for name in names {
            let mut found = false;
            for ext in [PUB, SEC, PKCS11] {
                let path = key_path(name, ext);
                if let Some(v) = self.entries.get(&path) {
                    out.entries.insert(path, v.clone());
                    found = true;
                }
            }
            if !found {
                return Err(Error::KeyNotFound((*name).to_owned()));
            }
        }
        Ok(out)
    }

    /// Names of all entries (for listings and tests).
    pub fn entry_names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(|s| s.as_str())
    }

    /// The deterministic gzip'd tar of these contents.
    pub fn to_bytes(&self) -> Result<Zeroizing<Vec<u8>>, Error> {
        archive::write(&self.entries)
    }

    /// [`Credentials::to_bytes`], encrypted to an age passphrase (scrypt), so `age -d` or
    /// `rage -d` can open it in an emergency.
    pub fn to_encrypted_bytes(&self, passphrase: &str) -> Result<Vec<u8>, Error> {
        let plain = self.to_bytes()?;
        archive::encrypt(&plain, passphrase, None)
    }

    /// The stored `keys/<name>.sec` file exactly as it is in the tarball (a key file with
    /// `keyval.private`), e.g. for a plain text backup of one key.
    pub fn secret_key_file(&self, name: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
        self.entries
            .get(&key_path(name, SEC))
            .cloned()
            .ok_or_else(|| Error::KeyNotFound(format!("{name} (no .sec file)")))
    }

    #[cfg(test)]
    fn to_encrypted_bytes_fast(&self, passphrase: &str) -> Result<Vec<u8>, Error> {
        let plain = self.to_bytes()?;
        archive::encrypt(&plain, passphrase, Some(10))
    }

    fn key_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .entries
            .keys()
            .filter_map(|p| p.strip_prefix(KEYS_DIR))
            .filter_map(|f| {
                f.strip_suffix(PUB)
                    .or_else(|| f.strip_suffix(SEC))
                    .or_else(|| f.strip_suffix(PKCS11))
            })
            .map(str::to_owned)
            .collect();
        names.sort();
        names.dedup();
        names
    }

    fn stored_key_opt(&self, name: &str) -> Result<Option<StoredKey>, Error> {
        let pub_path = key_path(name, PUB);
        let sec_path = key_path(name, SEC);
        let token_path = key_path(name, PKCS11);
        let public = match self.entries.get(&pub_path) {
            Some(b) => Some(keyfile::decode_public(&pub_path, b)?),
            None => None,
        };
        let from_sec = match self.entries.get(&sec_path) {
            Some(b) => Some(keyfile::decode_sec_public(&sec_path, b)?),
            None => None,
        };
        let public = match (public, from_sec) {
            (Some(p), Some(s)) => {
                if !same_key(&p, &s) {
                    return Err(Error::BadEntry {
                        name: sec_path,
                        reason: format!("its public key differs from {pub_path}"),
                    });
                }
                p
            }
            (Some(p), None) => p,
            (None, Some(s)) => s,
            (None, None) => {
                if self.entries.contains_key(&token_path) {
                    return Err(Error::BadEntry {
                        name: token_path,
                        reason: format!("a token reference needs its public key {pub_path}"),
                    });
                }
                return Ok(None);
            }
        };
        let has_private = self.entries.contains_key(&sec_path);
        let private = match self.entries.get(&token_path) {
            Some(_) if has_private => {
                return Err(Error::BadEntry {
                    name: token_path,
                    reason: format!(
                        "the key also has {sec_path}; a key is either in the file or on a token"
                    ),
                })
            }
            Some(b) => {
                let (label, serial) = keyfile::decode_token_ref(&token_path, b, &public)?;
                PrivatePart::Token { label, serial }
            }
            None if has_private => PrivatePart::File,
            None => PrivatePart::None,
        };
        Ok(Some(StoredKey {
            name: name.to_owned(),
            public,
            has_private,
            private,
        }))
    }

    fn stored_key(&self, name: &str) -> Result<StoredKey, Error> {
        self.stored_key_opt(name)?
            .ok_or_else(|| Error::KeyNotFound(name.to_owned()))
    }
}

/// Encrypts `plain` (any bytes, normally a whole tarball exactly as it is on disk) to an age
/// passphrase (scrypt), so that decrypting gives back the very same bytes.
pub fn encrypt_bytes(plain: &[u8], passphrase: &str) -> Result<Vec<u8>, Error> {
    archive::encrypt(plain, passphrase, None)
}

/// Decrypts an age passphrase file, giving back exactly the bytes that were encrypted
/// (size-capped). A wrong passphrase is [`Error::Decrypt`].
pub fn decrypt_bytes(bytes: &[u8], passphrase: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
    archive::decrypt(bytes, passphrase)
}

/// True when two public keys are the same key material (scheme and public value).
pub fn same_key(a: &PublicKey, b: &PublicKey) -> bool {
    a.identity() == b.identity()
}

fn config_bytes(config: &Config) -> Vec<u8> {
    // Invariant: a struct of two strings always serialises.
    let mut v = serde_json::to_vec_pretty(config).unwrap_or_default();
    v.push(b'\n');
    v
}

fn key_path(name: &str, ext: &str) -> String {
    format!("{KEYS_DIR}{name}{ext}")
}

fn check_key_name(name: &str) -> Result<(), Error> {
    if archive::valid_component(name) {
        Ok(())
    } else {
        Err(Error::InvalidKeyName(name.to_owned()))
    }
}

const CONFIG: &str = "tufrepo/config.json";
const ROOT: &str = "tufrepo/roles/root.json";
const KEYS_DIR: &str = "tufrepo/keys/";
const PUB: &str = ".pub";
const SEC: &str = ".sec";
const PKCS11: &str = ".pkcs11";

#[cfg(test)]
mod tests;
