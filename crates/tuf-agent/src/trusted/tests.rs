//! The trust rules of [`TrustedSet`], one refusal at a time: each test builds metadata with
//! tuf-core, makes exactly one thing wrong (a forged root link, swapped role keys, a skipped
//! or rolled-back version, an expiry), checks the refusal by its variant and fields, and
//! checks that what was trusted before is still what is trusted.
//!
//! [`Fleet`] is shared with the updater's tests.

use std::collections::BTreeMap;

use time::OffsetDateTime;
use tuf_core::{
    DelegatedRole, Delegations, Expires, KeyType, MetaFile, Metadata, PrivateKey, Role, RoleKeys,
    Root, Signed, Signer, Snapshot, TargetFile, Targets, Threshold, Timestamp,
};

use super::*;

// --- The fixture: a repository's keys and the metadata they sign ---------------------------

/// The keys of one repository and builders for its metadata, all ed25519.
pub(crate) struct Fleet {
    pub root: Vec<PrivateKey>,
    pub root_threshold: u64,
    pub timestamp: PrivateKey,
    pub snapshot: PrivateKey,
    pub targets: PrivateKey,
}

pub(crate) fn key() -> PrivateKey {
    PrivateKey::generate(KeyType::Ed25519).unwrap()
}

pub(crate) fn at(s: &str) -> Expires {
    s.parse().unwrap()
}

/// Far enough in the future for every test, whatever the clock says.
pub(crate) const FAR: &str = "2100-01-01T00:00:00Z";

/// `md` signed by `by`, as the bytes a repository serves.
pub(crate) fn sign<T: Metadata>(md: T, by: &[&PrivateKey]) -> Vec<u8> {
    let mut env = Signed::new(md).unwrap();
    for k in by {
        env.sign(*k).unwrap();
    }
    env.to_bytes()
}

impl Fleet {
    pub(crate) fn new() -> Self {
        Self {
            root: vec![key()],
            root_threshold: 1,
            timestamp: key(),
            snapshot: key(),
            targets: key(),
        }
    }

    /// Root `version` giving each role this fleet's current keys.
    pub(crate) fn root(&self, version: u64, expires: &str) -> Root {
        let mut keys = BTreeMap::new();
        let mut roles = BTreeMap::new();
        let root_ids = self.root.iter().map(|k| k.key_id().clone()).collect();
        let threshold = Threshold::new(self.root_threshold).unwrap();
        roles.insert(Role::Root, RoleKeys::new(root_ids, threshold));
        for k in &self.root {
            keys.insert(k.key_id().clone(), k.public_key().clone());
        }
        for (role, k) in [
            (Role::Timestamp, &self.timestamp),
            (Role::Snapshot, &self.snapshot),
            (Role::Targets, &self.targets),
        ] {
            keys.insert(k.key_id().clone(), k.public_key().clone());
            let one = Threshold::new(1).unwrap();
            roles.insert(role, RoleKeys::new(vec![k.key_id().clone()], one));
        }
        Root::new(version, at(expires), keys, roles)
    }

    /// Root `version`, signed by every current root key.
    pub(crate) fn root_bytes(&self, version: u64) -> Vec<u8> {
        let by: Vec<&PrivateKey> = self.root.iter().collect();
        sign(self.root(version, FAR), &by)
    }

    pub(crate) fn timestamp_bytes(
        &self,
        version: u64,
        snapshot: MetaFile,
        expires: &str,
    ) -> Vec<u8> {
        sign(
            Timestamp::new(version, at(expires), snapshot),
            &[&self.timestamp],
        )
    }

    pub(crate) fn snapshot_bytes(
        &self,
        version: u64,
        meta: &[(&str, MetaFile)],
        expires: &str,
    ) -> Vec<u8> {
        let meta = meta
            .iter()
            .map(|(name, m)| ((*name).to_owned(), m.clone()))
            .collect();
        sign(Snapshot::new(version, at(expires), meta), &[&self.snapshot])
    }

    /// Top-level targets `version` listing `targets` (path, content).
    pub(crate) fn targets_md(&self, version: u64, targets: &[(&str, &[u8])]) -> Targets {
        let mut t = Targets::new(version, at(FAR));
        for (path, content) in targets {
            let mut hashes = BTreeMap::new();
            hashes.insert("sha256".to_owned(), hash::sha256_hex(content));
            t.targets.insert(
                (*path).to_owned(),
                TargetFile {
                    length: content.len() as u64,
                    hashes,
                    custom: None,
                    extra: BTreeMap::new(),
                },
            );
        }
        t
    }
}

/// The update start time of these tests: fixed, so expiry is exact.
fn now() -> OffsetDateTime {
    at("2030-01-01T00:00:00Z").datetime()
}

/// Just before and exactly at [`now`]: both expired (expiry is inclusive).
const EXPIRED: &str = "2030-01-01T00:00:00Z";
const STILL_VALID: &str = "2030-01-01T00:00:01Z";

fn trusted(fleet: &Fleet) -> TrustedSet {
    TrustedSet::new(&fleet.root_bytes(1), now()).unwrap()
}

/// A trusted set with timestamp `ts_version` (listing snapshot `snap_version`) loaded.
fn with_timestamp(fleet: &Fleet, ts_version: u64, snap_version: u64) -> TrustedSet {
    let mut t = trusted(fleet);
    let ts = fleet.timestamp_bytes(ts_version, MetaFile::new(snap_version), FAR);
    assert_eq!(t.update_timestamp(&ts).unwrap(), TimestampUpdate::Updated);
    t
}

/// A trusted set with timestamp 1 and snapshot 1 (listing `meta`) loaded.
fn with_snapshot(fleet: &Fleet, meta: &[(&str, MetaFile)]) -> TrustedSet {
    let mut t = with_timestamp(fleet, 1, 1);
    t.update_snapshot(&fleet.snapshot_bytes(1, meta, FAR))
        .unwrap();
    t
}

/// The tuf-core refusal inside an [`Error::Metadata`] for `role`.
#[track_caller]
fn metadata_refusal(e: Error, role: &str) -> tuf_core::Error {
    match e {
        Error::Metadata { role: r, reason } if r == role => reason,
        other => panic!("expected a {role} metadata refusal, got {other:?}"),
    }
}

/// `e` is "threshold not met" for `role`, with `valid` of `needed` signatures.
#[track_caller]
fn assert_threshold_not_met(e: Error, role: &str, valid: u32, needed: u32) {
    match metadata_refusal(e, role) {
        tuf_core::Error::ThresholdNotMet {
            role: r,
            needed: n,
            valid: v,
        } => assert_eq!((r.as_str(), n, v), (role, needed, valid)),
        other => panic!("expected ThresholdNotMet, got {other:?}"),
    }
}

// --- Root (5.2, 5.3) ------------------------------------------------------------------------

#[test]
fn a_root_not_signed_by_its_own_keys_is_no_trust_anchor() {
    let fleet = Fleet::new();
    let bytes = sign(fleet.root(1, FAR), &[&fleet.timestamp]);
    let Err(e) = TrustedSet::new(&bytes, now()) else {
        panic!("accepted a root signed by a timestamp key");
    };
    assert_threshold_not_met(e, "root", 0, 1);
}

#[test]
fn the_next_root_signed_by_old_and_new_keys_becomes_trusted() {
    let mut fleet = Fleet::new();
    let mut t = trusted(&fleet);
    let old = fleet.root.remove(0);
    fleet.root.push(key());
    fleet.timestamp = key();
    let v2 = sign(fleet.root(2, FAR), &[&old, &fleet.root[0]]);
    t.update_root(&v2).unwrap();
    assert_eq!(t.root(), &fleet.root(2, FAR));
}

#[test]
fn a_forged_link_not_signed_by_the_trusted_root_is_refused() {
    let mut fleet = Fleet::new();
    let mut t = trusted(&fleet);
    let before = t.root().clone();
    // The attacker makes their own root key and signs version 2 with it alone.
    fleet.root = vec![key()];
    let forged = fleet.root_bytes(2);
    assert_threshold_not_met(t.update_root(&forged).unwrap_err(), "root", 0, 1);
    assert_eq!(t.root(), &before);
}

#[test]
fn a_new_root_not_signed_by_its_own_new_keys_is_refused() {
    let mut fleet = Fleet::new();
    let mut t = trusted(&fleet);
    let before = t.root().clone();
    let old = fleet.root.remove(0);
    fleet.root.push(key());
    // Signed by the trusted root key only: the new root key never agreed to it.
    let v2 = sign(fleet.root(2, FAR), &[&old]);
    assert_threshold_not_met(t.update_root(&v2).unwrap_err(), "root", 0, 1);
    assert_eq!(t.root(), &before);
}

#[test]
fn one_of_two_trusted_root_keys_cannot_sign_the_next_root() {
    let mut fleet = Fleet::new();
    fleet.root.push(key());
    fleet.root_threshold = 2;
    let mut t = trusted(&fleet);
    let before = t.root().clone();
    let v2 = sign(fleet.root(2, FAR), &[&fleet.root[0]]);
    assert_threshold_not_met(t.update_root(&v2).unwrap_err(), "root", 1, 2);
    assert_eq!(t.root(), &before);
}

#[test]
fn a_root_that_skips_a_version_is_refused() {
    let fleet = Fleet::new();
    let mut t = trusted(&fleet);
    let before = t.root().clone();
    let err = t.update_root(&fleet.root_bytes(3)).unwrap_err();
    assert!(
        matches!(&err, Error::VersionMismatch { role, expected: 2, got: 3 } if role == "root"),
        "{err:?}"
    );
    assert_eq!(t.root(), &before);
}

#[test]
fn a_replayed_root_is_refused() {
    let fleet = Fleet::new();
    let mut t = trusted(&fleet);
    let err = t.update_root(&fleet.root_bytes(1)).unwrap_err();
    assert!(
        matches!(&err, Error::VersionMismatch { role, expected: 2, got: 1 } if role == "root"),
        "{err:?}"
    );
    assert_eq!(t.root().version, 1);
}

#[test]
fn root_cannot_change_once_timestamp_is_loaded() {
    let fleet = Fleet::new();
    let mut t = with_timestamp(&fleet, 1, 1);
    let err = t.update_root(&fleet.root_bytes(2)).unwrap_err();
    assert!(
        matches!(&err, Error::Config(m) if m == "root cannot change once timestamp is loaded"),
        "{err:?}"
    );
    assert_eq!(t.root().version, 1);
}

#[test]
fn an_expired_final_root_is_refused_and_one_second_later_is_not() {
    let fleet = Fleet::new();
    let expired = sign(fleet.root(1, EXPIRED), &[&fleet.root[0]]);
    let t = TrustedSet::new(&expired, now()).unwrap();
    let err = t.check_final_root().unwrap_err();
    assert!(
        matches!(&err, Error::Expired { role, expires, .. } if role == "root" && expires == EXPIRED),
        "{err:?}"
    );
    let valid = sign(fleet.root(1, STILL_VALID), &[&fleet.root[0]]);
    TrustedSet::new(&valid, now())
        .unwrap()
        .check_final_root()
        .unwrap();
}

#[test]
fn role_keys_changed_sees_new_keys_and_new_thresholds_only_for_that_role() {
    let mut fleet = Fleet::new();
    let mut t = trusted(&fleet);
    let v1 = t.root().clone();
    fleet.timestamp = key();
    t.update_root(&fleet.root_bytes(2)).unwrap();
    assert!(t.role_keys_changed(&v1, Role::Timestamp));
    assert!(!t.role_keys_changed(&v1, Role::Snapshot));
    assert!(!t.role_keys_changed(&v1, Role::Targets));

    // Same keys, another threshold: changed too.
    let mut earlier = t.root().clone();
    earlier.role_mut(Role::Snapshot).unwrap().threshold = Threshold::new(2).unwrap();
    assert!(t.role_keys_changed(&earlier, Role::Snapshot));
    assert!(!t.role_keys_changed(&earlier, Role::Timestamp));
}

// --- Timestamp (5.4) ------------------------------------------------------------------------

#[test]
fn a_timestamp_signed_with_another_roles_key_is_refused() {
    let fleet = Fleet::new();
    let mut t = trusted(&fleet);
    // Swapped keys: the snapshot key signs a timestamp.
    let swapped = sign(
        Timestamp::new(1, at(FAR), MetaFile::new(1)),
        &[&fleet.snapshot],
    );
    assert_threshold_not_met(t.update_timestamp(&swapped).unwrap_err(), "timestamp", 0, 1);
    assert!(t.timestamp().is_none());
}

#[test]
fn a_new_timestamp_is_trusted_with_its_snapshot_entry() {
    let fleet = Fleet::new();
    let t = with_timestamp(&fleet, 7, 4);
    let ts = t.timestamp().unwrap();
    assert_eq!((ts.version, ts.snapshot_meta().version), (7, 4));
    assert_eq!(t.final_timestamp().unwrap(), ts);
    assert!(t.snapshot().is_none());
}

#[test]
fn an_older_timestamp_is_a_rollback() {
    let fleet = Fleet::new();
    let mut t = trusted(&fleet);
    t.load_local_timestamp(&fleet.timestamp_bytes(5, MetaFile::new(5), FAR))
        .unwrap();
    let err = t
        .update_timestamp(&fleet.timestamp_bytes(4, MetaFile::new(5), FAR))
        .unwrap_err();
    assert!(
        matches!(&err, Error::Rollback { role, trusted: 5, got: 4 } if role == "timestamp"),
        "{err:?}"
    );
    assert_eq!(t.timestamp().unwrap().version, 5);
}

#[test]
fn the_same_timestamp_version_changes_nothing() {
    let fleet = Fleet::new();
    let mut t = trusted(&fleet);
    t.load_local_timestamp(&fleet.timestamp_bytes(5, MetaFile::new(5), FAR))
        .unwrap();
    // Same version, even listing another snapshot: nothing changed on the repository.
    let same = fleet.timestamp_bytes(5, MetaFile::new(6), FAR);
    assert_eq!(
        t.update_timestamp(&same).unwrap(),
        TimestampUpdate::Unchanged
    );
    assert_eq!(t.timestamp().unwrap().snapshot_meta().version, 5);
}

#[test]
fn a_timestamp_listing_an_older_snapshot_is_a_rollback() {
    let fleet = Fleet::new();
    let mut t = trusted(&fleet);
    t.load_local_timestamp(&fleet.timestamp_bytes(5, MetaFile::new(7), FAR))
        .unwrap();
    let err = t
        .update_timestamp(&fleet.timestamp_bytes(6, MetaFile::new(6), FAR))
        .unwrap_err();
    assert!(
        matches!(&err, Error::Rollback { role, trusted: 7, got: 6 }
            if role == "timestamp: snapshot.json"),
        "{err:?}"
    );
    assert_eq!(t.timestamp().unwrap().version, 5);
    // The same snapshot version in a newer timestamp is fine.
    let next = fleet.timestamp_bytes(6, MetaFile::new(7), FAR);
    assert_eq!(t.update_timestamp(&next).unwrap(), TimestampUpdate::Updated);
}

#[test]
fn an_expired_timestamp_is_a_freeze_attack() {
    let fleet = Fleet::new();
    let mut t = trusted(&fleet);
    let local = fleet.timestamp_bytes(1, MetaFile::new(1), EXPIRED);
    // An expired local copy still serves as the rollback reference...
    t.load_local_timestamp(&local).unwrap();
    let frozen = fleet.timestamp_bytes(2, MetaFile::new(1), EXPIRED);
    let err = t.update_timestamp(&frozen).unwrap_err();
    assert!(
        matches!(&err, Error::Expired { role, expires, .. } if role == "timestamp" && expires == EXPIRED),
        "{err:?}"
    );
    assert_eq!(t.timestamp().unwrap().version, 1);
    // ...but is never final: no snapshot may be fetched on its word.
    let err = t.final_timestamp().unwrap_err();
    assert!(
        matches!(&err, Error::Expired { role, .. } if role == "timestamp"),
        "{err:?}"
    );
}

#[test]
fn a_local_timestamp_that_no_longer_verifies_is_no_reference() {
    let mut fleet = Fleet::new();
    let old_key_copy = fleet.timestamp_bytes(9, MetaFile::new(9), FAR);
    fleet.timestamp = key();
    let mut t = trusted(&fleet);
    let err = t.load_local_timestamp(&old_key_copy).unwrap_err();
    assert_threshold_not_met(err, "timestamp", 0, 1);
    assert!(t.timestamp().is_none());
}

#[test]
fn timestamp_cannot_change_once_snapshot_is_loaded() {
    let fleet = Fleet::new();
    let mut t = with_snapshot(&fleet, &[("targets.json", MetaFile::new(1))]);
    let err = t
        .update_timestamp(&fleet.timestamp_bytes(2, MetaFile::new(2), FAR))
        .unwrap_err();
    assert!(
        matches!(&err, Error::Config(m) if m == "timestamp cannot change once snapshot is loaded"),
        "{err:?}"
    );
    assert_eq!(t.timestamp().unwrap().version, 1);
}

// --- Snapshot (5.5) -------------------------------------------------------------------------

#[test]
fn a_snapshot_needs_a_trusted_unexpired_timestamp() {
    let fleet = Fleet::new();
    let mut t = trusted(&fleet);
    let snap = fleet.snapshot_bytes(1, &[("targets.json", MetaFile::new(1))], FAR);
    let err = t.update_snapshot(&snap).unwrap_err();
    assert!(
        matches!(&err, Error::Config(m) if m == "no trusted timestamp"),
        "{err:?}"
    );
    assert!(t.snapshot().is_none());
}

#[test]
fn a_snapshot_of_another_length_or_hash_than_listed_is_refused() {
    let fleet = Fleet::new();
    let good = fleet.snapshot_bytes(1, &[("targets.json", MetaFile::new(1))], FAR);
    let evil = fleet.snapshot_bytes(1, &[("targets.json", MetaFile::new(2))], FAR);
    assert_eq!(good.len(), evil.len());
    let mut t = trusted(&fleet);
    let ts = fleet.timestamp_bytes(1, MetaFile::describing(1, &good), FAR);
    t.update_timestamp(&ts).unwrap();

    let mut longer = good.clone();
    longer.push(b' ');
    let err = t.update_snapshot(&longer).unwrap_err();
    let want = (good.len() as u64, longer.len() as u64);
    assert!(
        matches!(&err, Error::Length { what, expected, got }
            if what == "snapshot" && (*expected, *got) == want),
        "{err:?}"
    );
    let err = t.update_snapshot(&evil).unwrap_err();
    assert!(
        matches!(&err, Error::Hash { what, reason: tuf_core::hash::HashMismatch::Mismatch { algorithm } }
            if what == "snapshot" && algorithm == "sha256"),
        "{err:?}"
    );
    assert!(t.snapshot().is_none());
    t.update_snapshot(&good).unwrap();
    assert_eq!(t.snapshot().unwrap().meta["targets.json"].version, 1);
}

#[test]
fn the_snapshot_version_is_the_one_the_timestamp_lists() {
    let fleet = Fleet::new();
    let mut t = with_timestamp(&fleet, 1, 3);
    for version in [2, 4] {
        let snap = fleet.snapshot_bytes(version, &[("targets.json", MetaFile::new(1))], FAR);
        let err = t.update_snapshot(&snap).unwrap_err();
        assert!(
            matches!(&err, Error::VersionMismatch { role, expected: 3, got }
                if role == "snapshot (as listed by timestamp)" && *got == version),
            "{err:?}"
        );
        assert!(t.snapshot().is_none());
    }
    let snap = fleet.snapshot_bytes(3, &[("targets.json", MetaFile::new(1))], FAR);
    t.update_snapshot(&snap).unwrap();
    assert_eq!(t.snapshot().unwrap().version, 3);
}

#[test]
fn a_snapshot_signed_with_the_timestamp_key_is_refused() {
    let fleet = Fleet::new();
    let mut t = with_timestamp(&fleet, 1, 1);
    let meta = [("targets.json".to_owned(), MetaFile::new(1))].into();
    let swapped = sign(Snapshot::new(1, at(FAR), meta), &[&fleet.timestamp]);
    assert_threshold_not_met(t.update_snapshot(&swapped).unwrap_err(), "snapshot", 0, 1);
    assert!(t.snapshot().is_none());
}

#[test]
fn a_snapshot_listing_an_older_targets_version_is_a_rollback() {
    let fleet = Fleet::new();
    let mut t = with_timestamp(&fleet, 2, 2);
    let local = fleet.snapshot_bytes(1, &[("targets.json", MetaFile::new(5))], FAR);
    // Not current (timestamp lists 2): a rollback reference only.
    assert!(!t.load_local_snapshot(&local).unwrap());
    let new = fleet.snapshot_bytes(2, &[("targets.json", MetaFile::new(4))], FAR);
    let err = t.update_snapshot(&new).unwrap_err();
    assert!(
        matches!(&err, Error::Rollback { role, trusted: 5, got: 4 }
            if role == "snapshot: targets.json"),
        "{err:?}"
    );
    assert_eq!(t.snapshot().unwrap().version, 1);
}

#[test]
fn a_snapshot_dropping_a_role_is_refused() {
    let fleet = Fleet::new();
    let mut t = with_timestamp(&fleet, 2, 2);
    let both = [
        ("targets.json", MetaFile::new(1)),
        ("role-a.json", MetaFile::new(1)),
    ];
    t.load_local_snapshot(&fleet.snapshot_bytes(1, &both, FAR))
        .unwrap();
    let new = fleet.snapshot_bytes(2, &[("targets.json", MetaFile::new(1))], FAR);
    let err = t.update_snapshot(&new).unwrap_err();
    assert!(
        matches!(&err, Error::RoleRemoved { file } if file == "role-a.json"),
        "{err:?}"
    );
    assert_eq!(t.snapshot().unwrap().version, 1);
}

#[test]
fn an_expired_snapshot_is_a_freeze_attack() {
    let fleet = Fleet::new();
    let mut t = with_timestamp(&fleet, 1, 1);
    let snap = fleet.snapshot_bytes(1, &[("targets.json", MetaFile::new(1))], EXPIRED);
    let err = t.update_snapshot(&snap).unwrap_err();
    assert!(
        matches!(&err, Error::Expired { role, .. } if role == "snapshot"),
        "{err:?}"
    );
    assert!(t.snapshot().is_none());
}

#[test]
fn a_local_snapshot_is_current_only_at_the_listed_version_and_unexpired() {
    let fleet = Fleet::new();
    let meta = [("targets.json", MetaFile::new(1))];
    let mut t = with_timestamp(&fleet, 1, 3);
    assert!(t
        .load_local_snapshot(&fleet.snapshot_bytes(3, &meta, FAR))
        .unwrap());
    assert_eq!(t.snapshot().unwrap().version, 3);
    let mut t = with_timestamp(&fleet, 1, 3);
    assert!(!t
        .load_local_snapshot(&fleet.snapshot_bytes(3, &meta, EXPIRED))
        .unwrap());
    let mut t = with_timestamp(&fleet, 1, 3);
    assert!(!t
        .load_local_snapshot(&fleet.snapshot_bytes(2, &meta, FAR))
        .unwrap());
    // A local copy signed by someone else is refused outright.
    let mut t = with_timestamp(&fleet, 1, 3);
    let forged = sign(
        Snapshot::new(
            3,
            at(FAR),
            [("targets.json".to_owned(), MetaFile::new(1))].into(),
        ),
        &[&fleet.targets],
    );
    assert_threshold_not_met(
        t.load_local_snapshot(&forged).unwrap_err(),
        "snapshot",
        0,
        1,
    );
    assert!(t.snapshot().is_none());
}

#[test]
fn snapshot_cannot_change_once_targets_are_loaded() {
    let fleet = Fleet::new();
    let mut t = with_snapshot(&fleet, &[("targets.json", MetaFile::new(1))]);
    t.update_targets(
        "targets",
        "root",
        sign(fleet.targets_md(1, &[]), &[&fleet.targets]),
    )
    .unwrap();
    let snap = fleet.snapshot_bytes(1, &[("targets.json", MetaFile::new(1))], FAR);
    let err = t.update_snapshot(&snap).unwrap_err();
    assert!(
        matches!(&err, Error::Config(m) if m == "snapshot cannot change once targets are loaded"),
        "{err:?}"
    );
}

// --- Targets (5.6) --------------------------------------------------------------------------

#[test]
fn trusted_targets_are_kept_as_received_and_looked_up_on_demand() {
    let fleet = Fleet::new();
    let mut t = with_snapshot(&fleet, &[("targets.json", MetaFile::new(2))]);
    let md = fleet.targets_md(2, &[("fw/a.bin", b"aaa"), ("fw/b.bin", b"bb")]);
    let bytes = sign(md.clone(), &[&fleet.targets]);
    t.update_targets("targets", "root", bytes.clone()).unwrap();
    let head = t.targets("targets").unwrap();
    assert_eq!((head.version, head.target_count), (2, 2));
    assert_eq!(t.targets_bytes("targets"), Some(&bytes[..]));
    assert_eq!(
        t.target_in("targets", "fw/b.bin").unwrap().as_ref(),
        Some(&md.targets["fw/b.bin"])
    );
    assert_eq!(t.target_in("targets", "fw/c.bin").unwrap(), None);
    assert_eq!(t.targets_full("targets").unwrap(), Some(md));
    // Nothing about roles never loaded.
    assert!(t.targets("role-a").is_none());
    assert!(t.targets_bytes("role-a").is_none());
    assert_eq!(t.target_in("role-a", "fw/a.bin").unwrap(), None);
    assert_eq!(t.targets_full("role-a").unwrap(), None);
}

#[test]
fn the_targets_version_is_the_one_the_snapshot_lists() {
    let fleet = Fleet::new();
    let mut t = with_snapshot(&fleet, &[("targets.json", MetaFile::new(2))]);
    for version in [1, 3] {
        let bytes = sign(fleet.targets_md(version, &[]), &[&fleet.targets]);
        let err = t.update_targets("targets", "root", bytes).unwrap_err();
        assert!(
            matches!(&err, Error::VersionMismatch { role, expected: 2, got }
                if role == "targets (as listed by snapshot)" && *got == version),
            "{err:?}"
        );
        assert!(t.targets("targets").is_none());
    }
}

#[test]
fn targets_of_another_length_or_hash_than_listed_are_refused() {
    let fleet = Fleet::new();
    let good = sign(fleet.targets_md(1, &[("a", b"1")]), &[&fleet.targets]);
    let evil = sign(fleet.targets_md(1, &[("a", b"2")]), &[&fleet.targets]);
    assert_eq!(good.len(), evil.len());
    let mut t = with_snapshot(&fleet, &[("targets.json", MetaFile::describing(1, &good))]);
    let err = t
        .update_targets("targets", "root", good[..good.len() - 1].to_vec())
        .unwrap_err();
    assert!(
        matches!(&err, Error::Length { what, .. } if what == "targets"),
        "{err:?}"
    );
    let err = t.update_targets("targets", "root", evil).unwrap_err();
    assert!(
        matches!(&err, Error::Hash { what, .. } if what == "targets"),
        "{err:?}"
    );
    assert!(t.targets("targets").is_none());
    t.update_targets("targets", "root", good).unwrap();
}

#[test]
fn targets_signed_with_the_snapshot_key_are_refused() {
    let fleet = Fleet::new();
    let mut t = with_snapshot(&fleet, &[("targets.json", MetaFile::new(1))]);
    let swapped = sign(fleet.targets_md(1, &[]), &[&fleet.snapshot]);
    assert_threshold_not_met(
        t.update_targets("targets", "root", swapped).unwrap_err(),
        "targets",
        0,
        1,
    );
    assert!(t.targets("targets").is_none());
}

#[test]
fn expired_targets_are_a_freeze_attack() {
    let fleet = Fleet::new();
    let mut t = with_snapshot(&fleet, &[("targets.json", MetaFile::new(1))]);
    let mut md = fleet.targets_md(1, &[]);
    md.expires = at(EXPIRED);
    let err = t
        .update_targets("targets", "root", sign(md, &[&fleet.targets]))
        .unwrap_err();
    assert!(
        matches!(&err, Error::Expired { role, .. } if role == "targets"),
        "{err:?}"
    );
    assert!(t.targets("targets").is_none());
}

#[test]
fn a_role_the_snapshot_does_not_list_is_never_loaded() {
    let fleet = Fleet::new();
    let mut t = with_snapshot(&fleet, &[("targets.json", MetaFile::new(1))]);
    let bytes = sign(fleet.targets_md(1, &[]), &[&fleet.targets]);
    let err = t.update_targets("role-a", "targets", bytes).unwrap_err();
    assert!(
        matches!(&err, Error::NotInSnapshot { role } if role == "role-a"),
        "{err:?}"
    );
    assert!(t.targets("role-a").is_none());
}

#[test]
fn a_snapshot_that_expired_since_is_no_basis_for_targets() {
    let fleet = Fleet::new();
    let mut t = with_timestamp(&fleet, 1, 1);
    let snap = fleet.snapshot_bytes(1, &[("targets.json", MetaFile::new(1))], EXPIRED);
    // Read back from disk it loads (as a reference), but is not current...
    assert!(!t.load_local_snapshot(&snap).unwrap());
    // ...so no targets role is fetched on its word.
    let err = t.snapshot_entry("targets").unwrap_err();
    assert!(
        matches!(&err, Error::Expired { role, .. } if role == "snapshot"),
        "{err:?}"
    );
}

/// Targets delegating `role-a` (paths `a/*`) to `delegate`.
fn delegating(fleet: &Fleet, delegate: &PrivateKey) -> Targets {
    let mut md = fleet.targets_md(1, &[]);
    md.delegations = Some(Delegations {
        keys: [(delegate.key_id().clone(), delegate.public_key().clone())].into(),
        roles: Some(vec![DelegatedRole {
            name: "role-a".to_owned(),
            keyids: vec![delegate.key_id().clone()],
            threshold: Threshold::new(1).unwrap(),
            terminating: false,
            paths: Some(vec!["a/*".to_owned()]),
            path_hash_prefixes: None,
            extra: BTreeMap::new(),
        }]),
        succinct_roles: None,
        extra: BTreeMap::new(),
    });
    md
}

#[test]
fn a_delegated_role_is_verified_with_the_keys_its_delegator_lists() {
    let fleet = Fleet::new();
    let delegate = key();
    let meta = [
        ("targets.json", MetaFile::new(1)),
        ("role-a.json", MetaFile::new(1)),
    ];
    let mut t = with_snapshot(&fleet, &meta);
    let top = sign(delegating(&fleet, &delegate), &[&fleet.targets]);
    t.update_targets("targets", "root", top).unwrap();
    let role_a = |by: &PrivateKey| sign(fleet.targets_md(1, &[("a/x", b"x")]), &[by]);

    // The top-level targets key is not role-a's key.
    let err = t
        .update_targets("role-a", "targets", role_a(&fleet.targets))
        .unwrap_err();
    // The refusal names the delegating role: a diamond delegation can reach role-a twice.
    match metadata_refusal(err, "role-a") {
        tuf_core::Error::ThresholdNotMet {
            role,
            needed,
            valid,
        } => assert_eq!(
            (role.as_str(), needed, valid),
            ("role-a (as delegated by targets)", 1, 0)
        ),
        other => panic!("expected ThresholdNotMet, got {other:?}"),
    }
    // Only the role that delegates it can vouch for it: root delegates targets alone.
    let err = t
        .update_targets("role-a", "root", role_a(&delegate))
        .unwrap_err();
    assert!(
        matches!(&err, Error::NotDelegated { role } if role == "role-a"),
        "{err:?}"
    );
    assert!(t.targets("role-a").is_none());
    t.update_targets("role-a", "targets", role_a(&delegate))
        .unwrap();
    assert_eq!(t.targets("role-a").unwrap().target_count, 1);
}

#[test]
fn a_role_its_delegator_does_not_name_is_not_delegated() {
    let fleet = Fleet::new();
    let delegate = key();
    let meta = [
        ("targets.json", MetaFile::new(1)),
        ("role-b.json", MetaFile::new(1)),
    ];
    let mut t = with_snapshot(&fleet, &meta);
    let top = sign(delegating(&fleet, &delegate), &[&fleet.targets]);
    t.update_targets("targets", "root", top).unwrap();
    let role_b = sign(fleet.targets_md(1, &[]), &[&delegate]);
    let err = t.update_targets("role-b", "targets", role_b).unwrap_err();
    assert!(
        matches!(&err, Error::NotDelegated { role } if role == "role-b"),
        "{err:?}"
    );
    // A delegator that is not trusted (never loaded) delegates nothing either.
    let role_b = sign(fleet.targets_md(1, &[]), &[&delegate]);
    let err = t.update_targets("role-b", "role-a", role_b).unwrap_err();
    assert!(
        matches!(&err, Error::NotDelegated { role } if role == "role-b"),
        "{err:?}"
    );
}

#[test]
fn length_and_hashes_are_checked_only_where_listed() {
    let bytes = b"some metadata";
    check_length_and_hashes("x", &MetaFile::new(1), b"anything").unwrap();
    check_length_and_hashes("x", &MetaFile::describing(1, bytes), bytes).unwrap();
    let mut length_only = MetaFile::new(1);
    length_only.length = Some(3);
    let err = check_length_and_hashes("x", &length_only, b"four").unwrap_err();
    assert!(
        matches!(&err, Error::Length { what, expected: 3, got: 4 } if what == "x"),
        "{err:?}"
    );
    let mut hash_only = MetaFile::describing(1, bytes);
    hash_only.length = None;
    let err = check_length_and_hashes("x", &hash_only, b"other metadat").unwrap_err();
    assert!(
        matches!(&err, Error::Hash { what, .. } if what == "x"),
        "{err:?}"
    );
}
