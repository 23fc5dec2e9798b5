//! Unit tests of the ceremony rules, over roots and targets built here with every key type.

mod chain;
mod offline;
mod root_update;
mod tx;
mod wave;

use std::collections::BTreeMap;

use serde_json::json;
use time::OffsetDateTime;
use tuf_core::{
    Expires, KeyType, PrivateKey, Role, RoleKeys, Root, Signed, Signer, TargetFile, Targets,
    Threshold,
};

pub const KEY_TYPES: [KeyType; 3] = [KeyType::Ed25519, KeyType::EcdsaP256, KeyType::Rsa3072];

pub fn key(kind: KeyType) -> PrivateKey {
    PrivateKey::generate(kind).unwrap()
}

pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

pub fn days(n: i64) -> Expires {
    Expires::after(now(), n * 86_400).unwrap()
}

/// The keys of a Factory: `root` signs roots; `online` is the server's targets key,
/// `snapshot` its snapshot and timestamp key; `offline` an offline targets key.
pub struct Keys {
    pub root: PrivateKey,
    pub online: PrivateKey,
    pub snapshot: PrivateKey,
    pub offline: PrivateKey,
}

impl Keys {
    /// Root and offline keys of `kind` (the server's keys stay ed25519, as tufd makes them).
    pub fn new(kind: KeyType) -> Self {
        Self {
            root: key(kind),
            online: key(KeyType::Ed25519),
            snapshot: key(KeyType::Ed25519),
            offline: key(kind),
        }
    }

    /// A root of `version` listing the online key (and the offline one with `offline`) for
    /// targets with `threshold`, labelled as tufd labels its keys, signed by the root key.
    pub fn root(&self, version: u64, offline: bool, threshold: u64) -> Signed<Root> {
        let mut keys = BTreeMap::new();
        let mut ids = |list: &[&PrivateKey]| -> Vec<tuf_core::KeyId> {
            list.iter()
                .map(|k| {
                    keys.insert(k.key_id().clone(), k.public_key().clone());
                    k.key_id().clone()
                })
                .collect()
        };
        let one = Threshold::new(1).unwrap();
        let targets: Vec<&PrivateKey> = if offline {
            vec![&self.online, &self.offline]
        } else {
            vec![&self.online]
        };
        let roles = BTreeMap::from([
            (Role::Root, RoleKeys::new(ids(&[&self.root]), one)),
            (
                Role::Targets,
                RoleKeys::new(ids(&targets), Threshold::new(threshold).unwrap()),
            ),
            (Role::Snapshot, RoleKeys::new(ids(&[&self.snapshot]), one)),
            (Role::Timestamp, RoleKeys::new(ids(&[&self.snapshot]), one)),
        ]);
        let mut root = Root::new(version, days(365), keys, roles);
        root.extra.insert(
            "x-key-owners".into(),
            json!({
                self.online.key_id().as_str(): "tufd",
                self.snapshot.key_id().as_str(): "tufd",
                self.root.key_id().as_str(): "alice@laptop",
            }),
        );
        let mut env = Signed::new(root).unwrap();
        env.sign(&self.root).unwrap();
        env
    }

    /// The public keys tufd holds, as it reports them.
    pub fn server(&self) -> crate::ServerKeys {
        crate::ServerKeys::new([
            held("targets", &self.online),
            held("snapshot", &self.snapshot),
            held("timestamp", &self.snapshot),
        ])
    }
}

pub fn held(purpose: &str, k: &PrivateKey) -> crate::HeldKey {
    crate::HeldKey {
        purpose: purpose.into(),
        key: k.public_key().clone(),
    }
}

/// `env` re-built after `edit`, unsigned.
pub fn edited<T: tuf_core::Metadata + Clone>(
    env: &Signed<T>,
    edit: impl FnOnce(&mut T),
) -> Signed<T> {
    let mut t = env.signed.clone();
    edit(&mut t);
    Signed::new(t).unwrap()
}

/// A CI target of build `version` for board-a.
pub fn ci_target(version: &str, byte: u8) -> TargetFile {
    TargetFile {
        length: 100 + u64::from(byte),
        hashes: [("sha256".to_owned(), hex::encode([byte; 32]))].into(),
        custom: Some(json!({"version": version, "hardware_ids": ["board-a"]})),
        extra: BTreeMap::new(),
    }
}

/// Targets of `version` listing `entries`, signed by `signers`.
pub fn targets(
    version: u64,
    entries: &[(&str, TargetFile)],
    signers: &[&dyn Signer],
) -> Signed<Targets> {
    let mut t = Targets::new(version, days(30));
    for (p, e) in entries {
        t.targets.insert((*p).to_owned(), e.clone());
    }
    let mut env = Signed::new(t).unwrap();
    for s in signers {
        env.sign(*s).unwrap();
    }
    env
}
