//! The trusted metadata set: every check of the client workflow, without I/O.
//!
//! Callers hand in the bytes they downloaded (or read back from the metadata directory) and the
//! fixed update start time; each `update_*` either makes the new metadata trusted or refuses it
//! with an [`Error`] that names the role and the check, leaving what was trusted before intact.
//! The order of the checks follows the specification, section 5.

use std::collections::{BTreeMap, HashMap};

use time::OffsetDateTime;
use tuf_ceremony::chain::{self, LinkFault};
use tuf_core::metadata::MetaFile;
use tuf_core::{
    hash, KeyId, Metadata, PublicKey, Role, RoleKeys, Root, Signed, SignedRef, Snapshot,
    TargetFile, Targets, TargetsHead, Timestamp,
};

use crate::error::Repository;
use crate::Error;

/// What became of a new timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimestampUpdate {
    /// The new timestamp is now trusted; persist it.
    Updated,
    /// Same version as the trusted one: nothing changed on the repository (spec 5.4.3.1).
    Unchanged,
}

/// Root, timestamp, snapshot and the targets roles loaded so far, all verified.
pub struct TrustedSet {
    now: OffsetDateTime,
    root: Signed<Root>,
    timestamp: Option<Signed<Timestamp>>,
    snapshot: Option<Signed<Snapshot>>,
    targets: HashMap<String, TrustedTargets>,
    /// Named in expiry errors, so the device owner knows which repository needs re-signing.
    repository: Repository,
}

/// A verified targets role, kept lean: the role without its target list (what verification
/// and the delegation walk need) and the bytes as received (what was persisted, and where a
/// target is looked up on demand). The canonical bytes and the typed list are not kept: for a
/// large role they would cost several times the file's size for nothing.
///
/// A role may be delegated by several roles, each with its own keys and threshold: it is
/// trusted on a search path only once verified against that path's delegator, so `delegators`
/// lists those it was verified for.
struct TrustedTargets {
    head: TargetsHead,
    bytes: Vec<u8>,
    delegators: Vec<String>,
}

impl TrustedSet {
    /// Starts from the trusted root (5.2). It must be signed by a threshold of its own root
    /// keys; its expiry does not matter yet (it is checked after the root update, 5.3.10).
    pub fn new(root: &[u8], now: OffsetDateTime) -> Result<Self, Error> {
        let root = parse::<Root>("root", root)?;
        verify(
            "root",
            &root,
            root.signed.role(Role::Root),
            &root.signed.keys,
        )?;
        Ok(Self {
            now,
            root: root.into_owned(),
            timestamp: None,
            snapshot: None,
            targets: HashMap::new(),
            repository: Repository::default(),
        })
    }

    /// Names the repository in expiry errors.
    pub fn set_repository(&mut self, repository: Repository) {
        self.repository = repository;
    }

    /// The trusted root.
    pub fn root(&self) -> &Root {
        &self.root.signed
    }

    /// The trusted timestamp, once one was loaded.
    pub fn timestamp(&self) -> Option<&Timestamp> {
        self.timestamp.as_ref().map(|t| &t.signed)
    }

    /// The trusted snapshot, once one was loaded.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref().map(|s| &s.signed)
    }

    /// A trusted targets role, without its target list.
    pub fn targets(&self, role: &str) -> Option<&TargetsHead> {
        self.targets.get(role).map(|t| &t.head)
    }

    /// The bytes of a trusted targets role, exactly as received.
    pub fn targets_bytes(&self, role: &str) -> Option<&[u8]> {
        self.targets.get(role).map(|t| t.bytes.as_slice())
    }

    /// Target `path` as listed by trusted role `role` itself (no delegation search).
    pub fn target_in(&self, role: &str, path: &str) -> Result<Option<TargetFile>, Error> {
        let Some(t) = self.targets.get(role) else {
            return Ok(None);
        };
        tuf_core::find_target(&t.bytes, path).map_err(|e| Error::metadata(role, e))
    }

    /// Every target of trusted role `role`, parsed on demand from the kept bytes.
    pub fn targets_full(&self, role: &str) -> Result<Option<Targets>, Error> {
        let Some(t) = self.targets.get(role) else {
            return Ok(None);
        };
        Ok(Some(parse::<Targets>(role, &t.bytes)?.into_signed()))
    }

    /// Root version N+1 (5.3.4 to 5.3.7): signed by a threshold of the trusted root's root keys
    /// and of its own, and exactly one version newer.
    pub fn update_root(&mut self, bytes: &[u8]) -> Result<(), Error> {
        if self.timestamp.is_some() {
            return Err(Error::Config(
                "root cannot change once timestamp is loaded".to_owned(),
            ));
        }
        let new = parse::<Root>("root", bytes)?;
        // One link of the root chain, as tufd and tufctl walk it (5.3.4 to 5.3.6).
        chain::link(
            &self.root.signed,
            &new.signed,
            new.canonical(),
            &new.signatures,
        )
        .map_err(|f| match f {
            LinkFault::NotSignedByTrusted(v) | LinkFault::NotSelfSigned(v) => Error::metadata(
                "root",
                tuf_core::Error::ThresholdNotMet {
                    role: v.role,
                    needed: v.threshold,
                    valid: v.distinct_valid,
                },
            ),
            LinkFault::Version { expected, got } => Error::VersionMismatch {
                role: "root".to_owned(),
                expected,
                got,
            },
        })?;
        self.root = new.into_owned();
        Ok(())
    }

    /// The final root must not be expired (5.3.10).
    pub fn check_final_root(&self) -> Result<(), Error> {
        self.check_expiry("root", self.root.signed.expires())
    }

    /// Whether `role`'s keys or threshold differ between `earlier` and the trusted root: then
    /// local timestamp and snapshot must go (fast-forward attack recovery, 5.3.11).
    pub fn role_keys_changed(&self, earlier: &Root, role: Role) -> bool {
        let now = &self.root.signed;
        now.role(role).threshold != earlier.role(role).threshold
            || now.role_keys(role) != earlier.role_keys(role)
    }

    /// A timestamp read back from the metadata directory. Only its signature is checked: it
    /// serves as the reference for rollback checks even when it has expired.
    pub fn load_local_timestamp(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let ts = parse::<Timestamp>("timestamp", bytes)?;
        let root = &self.root.signed;
        verify("timestamp", &ts, root.role(Role::Timestamp), &root.keys)?;
        self.timestamp = Some(ts.into_owned());
        Ok(())
    }

    /// A downloaded timestamp (5.4.2 to 5.4.4).
    pub fn update_timestamp(&mut self, bytes: &[u8]) -> Result<TimestampUpdate, Error> {
        if self.snapshot.is_some() {
            return Err(Error::Config(
                "timestamp cannot change once snapshot is loaded".to_owned(),
            ));
        }
        let new = parse::<Timestamp>("timestamp", bytes)?;
        let root = &self.root.signed;
        verify("timestamp", &new, root.role(Role::Timestamp), &root.keys)?;
        if let Some(trusted) = &self.timestamp {
            let (old, got) = (trusted.signed.version, new.signed.version);
            if got < old {
                return Err(rollback("timestamp", old, got));
            }
            if got == old {
                return Ok(TimestampUpdate::Unchanged);
            }
            let old_snap = trusted.signed.snapshot_meta().version;
            let new_snap = new.signed.snapshot_meta().version;
            if new_snap < old_snap {
                return Err(rollback("timestamp: snapshot.json", old_snap, new_snap));
            }
        }
        self.check_expiry("timestamp", new.signed.expires())?;
        self.timestamp = Some(new.into_owned());
        Ok(TimestampUpdate::Updated)
    }

    /// A snapshot read back from the metadata directory. It becomes the rollback reference for
    /// a new snapshot; `Ok(true)` means it is also current (the version the timestamp lists,
    /// unexpired), so nothing needs downloading.
    pub fn load_local_snapshot(&mut self, bytes: &[u8]) -> Result<bool, Error> {
        let timestamp = self.final_timestamp()?;
        let listed = timestamp.snapshot_meta().version;
        let snap = parse::<Snapshot>("snapshot", bytes)?;
        let root = &self.root.signed;
        verify("snapshot", &snap, root.role(Role::Snapshot), &root.keys)?;
        let current = snap.signed.version == listed && !snap.signed.expires.is_expired_at(self.now);
        self.snapshot = Some(snap.into_owned());
        Ok(current)
    }

    /// A downloaded snapshot (5.5.2 to 5.5.6).
    pub fn update_snapshot(&mut self, bytes: &[u8]) -> Result<(), Error> {
        if !self.targets.is_empty() {
            return Err(Error::Config(
                "snapshot cannot change once targets are loaded".to_owned(),
            ));
        }
        let meta = self.final_timestamp()?.snapshot_meta();
        check_length_and_hashes("snapshot", meta, bytes)?;
        let listed = meta.version;
        let new = parse::<Snapshot>("snapshot", bytes)?;
        let root = &self.root.signed;
        verify("snapshot", &new, root.role(Role::Snapshot), &root.keys)?;
        if new.signed.version != listed {
            return Err(Error::VersionMismatch {
                role: "snapshot (as listed by timestamp)".to_owned(),
                expected: listed,
                got: new.signed.version,
            });
        }
        if let Some(trusted) = &self.snapshot {
            for (file, old) in &trusted.signed.meta {
                let Some(now) = new.signed.meta.get(file) else {
                    return Err(Error::RoleRemoved { file: file.clone() });
                };
                if now.version < old.version {
                    return Err(rollback(
                        &format!("snapshot: {file}"),
                        old.version,
                        now.version,
                    ));
                }
            }
        }
        self.check_expiry("snapshot", new.signed.expires())?;
        self.snapshot = Some(new.into_owned());
        Ok(())
    }

    /// The snapshot entry of a targets role, which says what version to fetch.
    pub fn snapshot_entry(&self, role: &str) -> Result<&MetaFile, Error> {
        let snapshot = self.final_snapshot()?;
        snapshot
            .meta
            .get(&format!("{role}.json"))
            .ok_or_else(|| Error::NotInSnapshot {
                role: role.to_owned(),
            })
    }

    /// The top-level targets role (`delegator` "root") or a delegated one (5.6.2 to 5.6.5).
    /// Also used for copies read back from the metadata directory: they must still match the
    /// snapshot.
    ///
    /// Takes the bytes by value: they are kept (see [`TrustedSet::targets_bytes`]), not copied.
    pub fn update_targets(
        &mut self,
        role: &str,
        delegator: &str,
        bytes: Vec<u8>,
    ) -> Result<(), Error> {
        let meta = self.snapshot_entry(role)?;
        check_length_and_hashes(role, meta, &bytes)?;
        let listed = meta.version;
        let new = parse::<TargetsHead>(role, &bytes)?;
        let Some((keys, keymap)) = self.delegated_keys(role, delegator) else {
            return Err(Error::NotDelegated {
                role: role.to_owned(),
            });
        };
        verify_delegated(role, delegator, &new, &keys, keymap)?;
        if new.signed.version != listed {
            return Err(Error::VersionMismatch {
                role: format!("{role} (as listed by snapshot)"),
                expected: listed,
                got: new.signed.version,
            });
        }
        self.check_expiry(role, new.signed.expires())?;
        // Verified: the canonical bytes and signatures have served their purpose.
        let head = new.into_signed();
        let delegators = vec![delegator.to_owned()];
        self.targets.insert(
            role.to_owned(),
            TrustedTargets {
                head,
                bytes,
                delegators,
            },
        );
        Ok(())
    }

    /// Whether trusted role `role` was verified against `delegator`'s delegation to it.
    pub fn is_trusted_via(&self, role: &str, delegator: &str) -> bool {
        self.targets
            .get(role)
            .is_some_and(|t| t.delegators.iter().any(|d| d == delegator))
    }

    /// Trusts role `role`, already trusted through another delegator, through `delegator` too:
    /// its signatures must meet `delegator`'s keys and threshold for it (spec 5.6.7, per
    /// delegation). A role signed for one delegator is never trusted via another.
    pub fn verify_delegation(&mut self, role: &str, delegator: &str) -> Result<(), Error> {
        if self.is_trusted_via(role, delegator) {
            return Ok(());
        }
        let Some(t) = self.targets.get(role) else {
            return Err(Error::NotDelegated {
                role: role.to_owned(),
            });
        };
        let Some((keys, keymap)) = self.delegated_keys(role, delegator) else {
            return Err(Error::NotDelegated {
                role: role.to_owned(),
            });
        };
        let md = parse::<TargetsHead>(role, &t.bytes)?;
        verify_delegated(role, delegator, &md, &keys, keymap)?;
        if let Some(t) = self.targets.get_mut(role) {
            t.delegators.push(delegator.to_owned());
        }
        Ok(())
    }

    fn delegated_keys(
        &self,
        role: &str,
        delegator: &str,
    ) -> Option<(RoleKeys, &BTreeMap<KeyId, PublicKey>)> {
        if delegator == "root" {
            let root = &self.root.signed;
            return (role == "targets").then(|| (root.role(Role::Targets).clone(), &root.keys));
        }
        let delegations = self.targets.get(delegator)?.head.delegations.as_ref()?;
        if let Some(roles) = &delegations.roles {
            let found = roles.iter().find(|r| r.name == role)?;
            return Some((found.role_keys(), &delegations.keys));
        }
        let succinct = delegations.succinct_roles.as_ref()?;
        succinct
            .is_bin(role)
            .then(|| (succinct.role_keys(), &delegations.keys))
    }

    /// The trusted timestamp, if it has not expired: the snapshot may only be updated then.
    pub fn final_timestamp(&self) -> Result<&Timestamp, Error> {
        let Some(ts) = &self.timestamp else {
            return Err(Error::Config("no trusted timestamp".to_owned()));
        };
        self.check_expiry("timestamp", ts.signed.expires())?;
        Ok(&ts.signed)
    }

    fn final_snapshot(&self) -> Result<&Snapshot, Error> {
        let listed = self.final_timestamp()?.snapshot_meta().version;
        let Some(snap) = &self.snapshot else {
            return Err(Error::Config("no trusted snapshot".to_owned()));
        };
        self.check_expiry("snapshot", snap.signed.expires())?;
        if snap.signed.version != listed {
            return Err(Error::VersionMismatch {
                role: "snapshot (as listed by timestamp)".to_owned(),
                expected: listed,
                got: snap.signed.version,
            });
        }
        Ok(&snap.signed)
    }

    fn check_expiry(&self, role: &str, expires: &tuf_core::Expires) -> Result<(), Error> {
        if expires.is_expired_at(self.now) {
            let now = tuf_core::Expires::from_unix(self.now.unix_timestamp())
                .map_or_else(|_| self.now.to_string(), |t| t.to_string());
            return Err(Error::Expired {
                role: role.to_owned(),
                expires: expires.to_string(),
                now,
                repository: Box::new(self.repository.clone()),
            });
        }
        Ok(())
    }
}

/// Checks `bytes` against a `meta` entry's length and hashes, where listed.
pub fn check_length_and_hashes(what: &str, meta: &MetaFile, bytes: &[u8]) -> Result<(), Error> {
    if let Some(length) = meta.length {
        if bytes.len() as u64 != length {
            return Err(Error::Length {
                what: what.to_owned(),
                expected: length,
                got: bytes.len() as u64,
            });
        }
    }
    if let Some(hashes) = &meta.hashes {
        hash::check(hashes, bytes).map_err(|reason| Error::Hash {
            what: what.to_owned(),
            reason,
        })?;
    }
    Ok(())
}

/// Parses received bytes; the canonical bytes are borrowed from them where they already are
/// canonical, so verifying a large role does not copy it.
fn parse<'a, T: Metadata>(role: &str, bytes: &'a [u8]) -> Result<SignedRef<'a, T>, Error> {
    SignedRef::<T>::from_slice(bytes).map_err(|e| Error::metadata(role, e))
}

fn verify<T: Metadata>(
    role: &str,
    md: &SignedRef<'_, T>,
    keys: &RoleKeys,
    keymap: &BTreeMap<KeyId, PublicKey>,
) -> Result<(), Error> {
    md.verify_role(role, keys, keymap)
        .require()
        .map(drop)
        .map_err(|e| Error::metadata(role, e))
}

/// Like [`verify`]; a delegated role's report names its delegator, as the same role may be
/// delegated by several, with different keys.
fn verify_delegated(
    role: &str,
    delegator: &str,
    md: &SignedRef<'_, TargetsHead>,
    keys: &RoleKeys,
    keymap: &BTreeMap<KeyId, PublicKey>,
) -> Result<(), Error> {
    if delegator == "root" {
        return verify(role, md, keys, keymap);
    }
    let label = format!("{role} (as delegated by {delegator})");
    md.verify_role(&label, keys, keymap)
        .require()
        .map(drop)
        .map_err(|e| Error::metadata(role, e))
}

fn rollback(role: &str, trusted: u64, got: u64) -> Error {
    Error::Rollback {
        role: role.to_owned(),
        trusted,
        got,
    }
}

// These tests sign their metadata with tuf-core's signing keys (aws-lc); the pure-Rust build
// verifies only, and runs the integration tests against repositories python-tuf signed.
#[cfg(test)]
#[cfg(feature = "aws-lc")]
pub(crate) mod tests;
