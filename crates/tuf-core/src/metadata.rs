//! The four top-level roles, delegations and the signed envelope.
//!
//! Parsing keeps unknown fields at every level (`extra`), so metadata written by a newer
//! peer round-trips. Signatures are always checked against the canonical bytes of what was
//! received ([`Signed::canonical`]), never against a re-serialised struct.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::key::{KeyId, PublicKey, Signer};
use crate::{canonical, Error, Expires};

mod splice;
pub use splice::{TargetChanges, TargetsBytes};

/// Names of the four top-level roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// The root role: which keys sign which role.
    Root,
    /// The targets role: which files exist, with their hashes and lengths.
    Targets,
    /// The snapshot role: the current version of every targets role.
    Snapshot,
    /// The timestamp role: the current snapshot, re-signed often.
    Timestamp,
}

impl Role {
    /// The four roles, in the order the specification describes them.
    pub const ALL: [Role; 4] = [Role::Root, Role::Targets, Role::Snapshot, Role::Timestamp];

    /// The role's name as it appears in metadata (`root`, `targets`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Root => "root",
            Role::Targets => "targets",
            Role::Snapshot => "snapshot",
            Role::Timestamp => "timestamp",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A signature threshold: at least one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Threshold(u32);

impl Threshold {
    /// A threshold of `n`; refused unless 1 ≤ n < 2^32 (a threshold of 0 would accept no
    /// signature at all).
    pub fn new(n: u64) -> Result<Self, Error> {
        match u32::try_from(n) {
            Ok(v) if v >= 1 => Ok(Self(v)),
            _ => Err(Error::field(
                "threshold",
                format!("{n} is not between 1 and 2^32-1"),
            )),
        }
    }

    /// The number of signatures needed.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl<'de> Deserialize<'de> for Threshold {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::new(u64::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// The keys and threshold of one role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleKeys {
    /// The keys that may sign the role, without duplicates.
    #[serde(deserialize_with = "unique_keyids")]
    pub keyids: Vec<KeyId>,
    /// How many of them must sign.
    pub threshold: Threshold,
    /// Fields we do not know, kept because they are signed.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl RoleKeys {
    /// The given keys and threshold.
    pub fn new(keyids: Vec<KeyId>, threshold: Threshold) -> Self {
        Self {
            keyids,
            threshold,
            extra: BTreeMap::new(),
        }
    }
}

fn unique_keyids<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<KeyId>, D::Error> {
    let ids = Vec::<KeyId>::deserialize(d)?;
    let mut seen = BTreeSet::new();
    for id in &ids {
        if !seen.insert(id) {
            return Err(serde::de::Error::custom(format!("keyid {id} listed twice")));
        }
    }
    Ok(ids)
}

fn positive_version<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    check_version(u64::deserialize(d)?).map_err(serde::de::Error::custom)
}

fn check_version(v: u64) -> Result<u64, &'static str> {
    if v == 0 {
        return Err("version must be at least 1");
    }
    Ok(v)
}

fn spec_version<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    check_spec_version(String::deserialize(d)?).map_err(serde::de::Error::custom)
}

fn check_spec_version(s: String) -> Result<String, String> {
    let parts: Vec<&str> = s.split('.').collect();
    let digits = parts
        .iter()
        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if !(2..=3).contains(&parts.len()) || !digits || parts[0] != "1" {
        return Err(format!("spec_version {s:?} is not a supported 1.x version"));
    }
    Ok(s)
}

/// Fields shared by every role's `signed` object.
pub trait Metadata: Serialize + DeserializeOwned {
    /// The `_type` this role's metadata carries.
    const TYPE: &'static str;
    /// The metadata's version (1 or more).
    fn version(&self) -> u64;
    /// When the metadata stops being valid.
    fn expires(&self) -> &Expires;

    /// Builds the role from the raw bytes of a `signed` object the strict scan accepted
    /// (sorted unique keys, integers only); `targets` is where that scan found a targets
    /// role's target list, and how many entries it checked there. `None` leaves the envelope
    /// to the tree-based parse, which names the error.
    #[doc(hidden)]
    fn from_scanned(signed: &[u8], targets: Option<(Range<usize>, usize)>) -> Option<Self> {
        let _ = targets;
        serde_json::from_slice(signed).ok()
    }

    /// The canonical bytes of this `signed` object: what signatures cover. By default
    /// written from a JSON tree of the object; a role may write them directly, with the
    /// same bytes as the result.
    fn to_canonical(&self) -> Result<Vec<u8>, Error> {
        canonical_via_tree(self)
    }
}

/// [`Metadata::to_canonical`] through a JSON tree: the reference every direct writer
/// matches.
fn canonical_via_tree<T: Metadata>(signed: &T) -> Result<Vec<u8>, Error> {
    let value = serde_json::to_value(signed).map_err(|e| Error::Json(e.to_string()))?;
    check_type::<T>(&value)?;
    canonical::to_vec(&value)
}

macro_rules! metadata_common {
    ($t:ty, $name:literal) => {
        impl Metadata for $t {
            const TYPE: &'static str = $name;
            fn version(&self) -> u64 {
                self.version
            }
            fn expires(&self) -> &Expires {
                &self.expires
            }
        }
    };
}

/// `root.json`'s signed object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Root {
    /// `_type`, always `root`.
    #[serde(rename = "_type")]
    pub type_: String,
    /// The specification version this metadata follows (`1.x`).
    #[serde(deserialize_with = "spec_version")]
    pub spec_version: String,
    /// Whether files are fetched by version-prefixed names (`N.targets.json`); absent means
    /// false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistent_snapshot: Option<bool>,
    /// The root's version; every new root is the previous one plus one.
    #[serde(deserialize_with = "positive_version")]
    pub version: u64,
    /// When this root stops being valid.
    pub expires: Expires,
    /// Every key a top-level role uses, by key ID.
    pub keys: BTreeMap<KeyId, PublicKey>,
    /// The keys and threshold of each top-level role, by role name.
    #[serde(deserialize_with = "top_level_roles")]
    pub roles: BTreeMap<String, RoleKeys>,
    /// Fields we do not know, kept because they are signed (`x-changelog`, `x-key-owners`, ...).
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}
metadata_common!(Root, "root");

fn top_level_roles<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, RoleKeys>, D::Error> {
    let roles = BTreeMap::<String, RoleKeys>::deserialize(d)?;
    for role in Role::ALL {
        if !roles.contains_key(role.as_str()) {
            return Err(serde::de::Error::custom(format!(
                "roles: {role} is missing"
            )));
        }
    }
    if roles.len() != Role::ALL.len() {
        let extra: Vec<&String> = roles
            .keys()
            .filter(|k| !Role::ALL.iter().any(|r| r.as_str() == k.as_str()))
            .collect();
        return Err(serde::de::Error::custom(format!(
            "roles: unexpected role(s) {extra:?}; only root, targets, snapshot, timestamp"
        )));
    }
    Ok(roles)
}

impl Root {
    /// A root with the given keys; `roles` maps each top-level role to its keys.
    pub fn new(
        version: u64,
        expires: Expires,
        keys: BTreeMap<KeyId, PublicKey>,
        roles: BTreeMap<Role, RoleKeys>,
    ) -> Self {
        Self {
            type_: "root".to_owned(),
            spec_version: crate::SPEC_VERSION.to_owned(),
            consistent_snapshot: Some(true),
            version,
            expires,
            keys,
            roles: roles
                .into_iter()
                .map(|(r, k)| (r.as_str().to_owned(), k))
                .collect(),
            extra: BTreeMap::new(),
        }
    }

    /// The keys and threshold of a top-level role. Parsing guarantees all four exist; if code
    /// removed one from the public `roles` map since, this fails closed: a role with no keys,
    /// whose threshold nothing can meet.
    pub fn role(&self, role: Role) -> &RoleKeys {
        static NO_KEYS: RoleKeys = RoleKeys {
            keyids: Vec::new(),
            threshold: Threshold(1),
            extra: BTreeMap::new(),
        };
        self.roles.get(role.as_str()).unwrap_or(&NO_KEYS)
    }

    /// The keys and threshold of `role`, for editing; refused when the root does not list it.
    pub fn role_mut(&mut self, role: Role) -> Result<&mut RoleKeys, Error> {
        self.roles
            .get_mut(role.as_str())
            .ok_or_else(|| Error::field("roles", format!("{role} is missing")))
    }

    /// Whether consistent snapshots are on (absent means off).
    pub fn consistent_snapshot(&self) -> bool {
        self.consistent_snapshot.unwrap_or(false)
    }

    /// The public keys of a role, by key ID; key IDs without a key entry are left out.
    pub fn role_keys(&self, role: Role) -> BTreeMap<KeyId, PublicKey> {
        self.role(role)
            .keyids
            .iter()
            .filter_map(|id| self.keys.get(id).map(|k| (id.clone(), k.clone())))
            .collect()
    }

    /// Drops keys no role refers to any more.
    pub fn prune_keys(&mut self) {
        let used: BTreeSet<KeyId> = self
            .roles
            .values()
            .flat_map(|r| r.keyids.iter().cloned())
            .collect();
        self.keys.retain(|id, _| used.contains(id));
    }
}

/// One entry of `snapshot.json`'s or `timestamp.json`'s `meta`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaFile {
    /// The version of the listed file.
    #[serde(deserialize_with = "positive_version")]
    pub version: u64,
    /// Its length in bytes, when listed: a client then reads no more than that.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
    /// Its hashes by algorithm, when listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashes: Option<BTreeMap<String, String>>,
    /// Fields we do not know, kept because they are signed.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl MetaFile {
    /// An entry naming `version` only.
    pub fn new(version: u64) -> Self {
        Self {
            version,
            length: None,
            hashes: None,
            extra: BTreeMap::new(),
        }
    }

    /// A meta entry with the length and SHA-256 of `bytes`.
    pub fn describing(version: u64, bytes: &[u8]) -> Self {
        let mut hashes = BTreeMap::new();
        hashes.insert("sha256".to_owned(), crate::hash::sha256_hex(bytes));
        Self {
            version,
            length: Some(bytes.len() as u64),
            hashes: Some(hashes),
            extra: BTreeMap::new(),
        }
    }
}

/// `snapshot.json`'s signed object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// `_type`, always `snapshot`.
    #[serde(rename = "_type")]
    pub type_: String,
    /// The specification version this metadata follows.
    #[serde(deserialize_with = "spec_version")]
    pub spec_version: String,
    /// The snapshot's version.
    #[serde(deserialize_with = "positive_version")]
    pub version: u64,
    /// When this snapshot stops being valid.
    pub expires: Expires,
    /// The current version (and optionally length and hashes) of every targets role, by file
    /// name (`targets.json`, `<role>.json`).
    pub meta: BTreeMap<String, MetaFile>,
    /// Fields we do not know, kept because they are signed.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}
metadata_common!(Snapshot, "snapshot");

impl Snapshot {
    /// A snapshot of the given version, expiry and entries.
    pub fn new(version: u64, expires: Expires, meta: BTreeMap<String, MetaFile>) -> Self {
        Self {
            type_: "snapshot".to_owned(),
            spec_version: crate::SPEC_VERSION.to_owned(),
            version,
            expires,
            meta,
            extra: BTreeMap::new(),
        }
    }
}

/// `timestamp.json`'s signed object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timestamp {
    /// `_type`, always `timestamp`.
    #[serde(rename = "_type")]
    pub type_: String,
    /// The specification version this metadata follows.
    #[serde(deserialize_with = "spec_version")]
    pub spec_version: String,
    /// The timestamp's version.
    #[serde(deserialize_with = "positive_version")]
    pub version: u64,
    /// When this timestamp stops being valid.
    pub expires: Expires,
    /// Exactly one entry, `snapshot.json`.
    #[serde(deserialize_with = "timestamp_meta")]
    pub meta: BTreeMap<String, MetaFile>,
    /// Fields we do not know, kept because they are signed.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}
metadata_common!(Timestamp, "timestamp");

fn timestamp_meta<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, MetaFile>, D::Error> {
    let meta = BTreeMap::<String, MetaFile>::deserialize(d)?;
    if meta.len() != 1 || !meta.contains_key("snapshot.json") {
        return Err(serde::de::Error::custom(
            "meta must hold exactly one entry, snapshot.json",
        ));
    }
    Ok(meta)
}

impl Timestamp {
    /// A timestamp of the given version and expiry that lists `snapshot`.
    pub fn new(version: u64, expires: Expires, snapshot: MetaFile) -> Self {
        let mut meta = BTreeMap::new();
        meta.insert("snapshot.json".to_owned(), snapshot);
        Self {
            type_: "timestamp".to_owned(),
            spec_version: crate::SPEC_VERSION.to_owned(),
            version,
            expires,
            meta,
            extra: BTreeMap::new(),
        }
    }

    /// The snapshot entry. Parsing guarantees it exists.
    pub fn snapshot_meta(&self) -> &MetaFile {
        // Invariant: `timestamp_meta` (parsing) and `Timestamp::new` ensure the entry exists.
        &self.meta["snapshot.json"]
    }
}

/// One target of `targets.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TargetFile {
    /// The file's length in bytes: a client reads no more.
    pub length: u64,
    /// The file's digests by algorithm (`sha256`, `sha512`), lowercase hex.
    pub hashes: BTreeMap<String, String>,
    /// Application data (hardware IDs, version, tags in this project), opaque to TUF.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<Value>,
    /// Fields we do not know, kept because they are signed.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

// `TargetFile` and `Targets` are deserialised by hand rather than with `#[serde(flatten)]`:
// flatten buffers the whole object (for `Targets`, every target) in an intermediate form
// first, which made parsing a large targets.json several times slower. Same rules, same
// error messages.
impl<'de> Deserialize<'de> for TargetFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(TargetFileVisitor)
    }
}

struct TargetFileVisitor;

impl<'de> Visitor<'de> for TargetFileVisitor {
    type Value = TargetFile;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a target file object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<TargetFile, A::Error> {
        let (mut length, mut hashes, mut custom) = (None, None, None);
        let mut extra = BTreeMap::new();
        while let Some(Key(key)) = m.next_key::<Key>()? {
            match &*key {
                "length" => set_once(&mut length, "length", m.next_value()?)?,
                "hashes" => {
                    let h: BTreeMap<String, String> = m.next_value()?;
                    if h.is_empty() {
                        return Err(de::Error::custom("hashes must not be empty"));
                    }
                    set_once(&mut hashes, "hashes", h)?;
                }
                "custom" => set_once(&mut custom, "custom", m.next_value::<Option<Value>>()?)?,
                _ => {
                    let v: Value = m.next_value()?;
                    extra.insert(key.into_owned(), v);
                }
            }
        }
        Ok(TargetFile {
            length: length.ok_or_else(|| de::Error::missing_field("length"))?,
            hashes: hashes.ok_or_else(|| de::Error::missing_field("hashes"))?,
            custom: custom.flatten(),
            extra,
        })
    }
}

/// An object key, borrowed from the input when it can be: parsing straight from bytes, the
/// known field names of every target then cost no allocation. Owned only when the input
/// holds escapes or the deserializer owns its strings (a `Value` tree).
struct Key<'de>(std::borrow::Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
        Ok(Key(std::borrow::Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
        Ok(Key(std::borrow::Cow::Owned(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
        Ok(Key(std::borrow::Cow::Owned(v)))
    }
}

fn set_once<T, E: de::Error>(slot: &mut Option<T>, field: &'static str, v: T) -> Result<(), E> {
    if slot.is_some() {
        return Err(E::duplicate_field(field));
    }
    *slot = Some(v);
    Ok(())
}

/// Checks that a target path can name a file under a download directory and nothing else:
/// not empty, no leading or trailing `/`, no empty, `.` or `..` segment, no NUL.
///
/// The spec leaves target paths free-form; a client that joins one to a local directory must
/// not be steered outside it, so metadata naming such a path is refused at parse time.
pub fn check_target_path(path: &str) -> Result<(), Error> {
    let reason = if path.is_empty() {
        "is empty"
    } else if path.contains('\0') {
        "contains NUL"
    } else if path.starts_with('/') {
        "starts with /"
    } else if path.split('/').any(|seg| seg.is_empty()) {
        "has an empty segment (// or a trailing /)"
    } else if path.split('/').any(|seg| seg == "." || seg == "..") {
        "has a . or .. segment"
    } else {
        return Ok(());
    };
    Err(Error::field(format!("targets: path {path:?}"), reason))
}

/// Checks that a delegated role name can name a metadata file (`<name>.json`): not empty,
/// not `.` or `..`, no `/`, `\\` or NUL.
pub fn check_role_name(name: &str) -> Result<(), Error> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
        return Err(Error::field(
            format!("delegations: role name {name:?}"),
            "must not be empty, . or .., nor contain /, \\ or NUL",
        ));
    }
    Ok(())
}

/// `targets.json`'s (or a delegated role's) signed object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Targets {
    /// `_type`, always `targets`.
    #[serde(rename = "_type")]
    pub type_: String,
    /// The specification version this metadata follows.
    pub spec_version: String,
    /// The role's version.
    pub version: u64,
    /// When this role stops being valid.
    pub expires: Expires,
    /// The files this role vouches for, by target path.
    pub targets: BTreeMap<String, TargetFile>,
    /// Roles this one hands parts of the target namespace to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegations: Option<Delegations>,
    /// Fields we do not know, kept because they are signed.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}
impl Metadata for Targets {
    const TYPE: &'static str = "targets";
    fn version(&self) -> u64 {
        self.version
    }
    fn expires(&self) -> &Expires {
        &self.expires
    }
    /// Written member by member: a JSON tree of a large targets role (a dozen allocations
    /// per target, made and freed) cost more than anything else in signing it.
    fn to_canonical(&self) -> Result<Vec<u8>, Error> {
        targets_canonical(self)
    }
}

/// The members serde writes for [`Targets`] besides `extra`.
const TARGETS_MEMBERS: [&str; 6] = [
    "_type",
    "spec_version",
    "version",
    "expires",
    "targets",
    "delegations",
];

/// The canonical bytes of `t`, byte for byte those of [`canonical_via_tree`] (tested), the
/// target list written straight from the map.
fn targets_canonical(t: &Targets) -> Result<Vec<u8>, Error> {
    if t.extra
        .keys()
        .any(|k| TARGETS_MEMBERS.contains(&k.as_str()))
    {
        // serde lets such an `extra` field replace the member: the tree path says how.
        return canonical_via_tree(t);
    }
    let members = TargetsMembers {
        type_: &t.type_,
        spec_version: &t.spec_version,
        version: t.version,
        expires: &t.expires,
        delegations: t.delegations.as_ref(),
        extra: &t.extra,
    };
    let capacity = 256 + 200 * t.targets.len();
    write_targets_signed(&members, capacity, |out| {
        write_target_files(&t.targets, out)
    })
}

/// Every member of a targets role's `signed` object but the target list.
struct TargetsMembers<'a> {
    type_: &'a str,
    spec_version: &'a str,
    version: u64,
    expires: &'a Expires,
    delegations: Option<&'a Delegations>,
    extra: &'a BTreeMap<String, Value>,
}

/// The canonical bytes of a targets role's `signed` object with `members`, the target list
/// written (as a whole object) by `list`, in a buffer of at least `capacity` bytes.
fn write_targets_signed(
    m: &TargetsMembers,
    capacity: usize,
    list: impl FnOnce(&mut Vec<u8>) -> Result<(), Error>,
) -> Result<Vec<u8>, Error> {
    if m.type_ != Targets::TYPE {
        return Err(Error::WrongType {
            expected: Targets::TYPE,
            got: m.type_.to_owned(),
        });
    }
    if let Some(k) = m
        .extra
        .keys()
        .find(|k| TARGETS_MEMBERS.contains(&k.as_str()))
    {
        return Err(Error::field(
            k.clone(),
            "an unknown field cannot repeat a known one",
        ));
    }
    let mut members: BTreeMap<&str, Value> = m
        .extra
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    members.insert("_type", Value::String(m.type_.to_owned()));
    members.insert("spec_version", Value::String(m.spec_version.to_owned()));
    members.insert("version", Value::from(m.version));
    members.insert("expires", to_json(m.expires)?);
    if let Some(d) = m.delegations {
        members.insert("delegations", to_json(d)?);
    }
    let mut keys: Vec<&str> = members.keys().copied().chain(["targets"]).collect();
    keys.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    let mut out = Vec::with_capacity(capacity);
    out.push(b'{');
    let mut list = Some(list);
    for (i, k) in keys.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        canonical::write_string(k, &mut out);
        out.push(b':');
        match (members.get(k), list.take()) {
            (Some(v), keep) => {
                list = keep;
                canonical::write(v, &mut out)?;
            }
            (None, Some(write_list)) => write_list(&mut out)?,
            // Invariant: `targets` is the only key without a member, and appears once.
            (None, None) => return Err(Error::field("targets", "written twice")),
        }
    }
    out.push(b'}');
    Ok(out)
}

fn to_json<T: Serialize>(v: &T) -> Result<Value, Error> {
    serde_json::to_value(v).map_err(|e| Error::Json(e.to_string()))
}

/// The `targets` object. A `BTreeMap<String, _>` iterates in byte order of its keys, which
/// is the canonical order.
fn write_target_files(
    targets: &BTreeMap<String, TargetFile>,
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    out.push(b'{');
    for (i, (path, file)) in targets.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_target_entry(path, file, out)?;
    }
    out.push(b'}');
    Ok(())
}

/// One `"path":{...}` member of a target list, in canonical form.
fn write_target_entry(path: &str, file: &TargetFile, out: &mut Vec<u8>) -> Result<(), Error> {
    canonical::write_string(path, out);
    out.push(b':');
    if !file.extra.is_empty() {
        // Rare (fields we do not know): the tree path, for this target only.
        return canonical::write(&to_json(file)?, out);
    }
    // Members in canonical order: custom, hashes, length.
    out.push(b'{');
    if let Some(custom) = &file.custom {
        out.extend_from_slice(b"\"custom\":");
        canonical::write(custom, out)?;
        out.push(b',');
    }
    out.extend_from_slice(b"\"hashes\":{");
    for (j, (alg, digest)) in file.hashes.iter().enumerate() {
        if j > 0 {
            out.push(b',');
        }
        canonical::write_string(alg, out);
        out.push(b':');
        canonical::write_string(digest, out);
    }
    out.extend_from_slice(b"},\"length\":");
    out.extend_from_slice(file.length.to_string().as_bytes());
    out.push(b'}');
    Ok(())
}

/// The members of a targets role's `signed` object, with the target list as `L`: the full
/// map for [`Targets`], a count for [`TargetsHead`].
struct TargetsParts<L> {
    type_: String,
    spec_version: String,
    version: u64,
    expires: Expires,
    targets: L,
    delegations: Option<Delegations>,
    extra: BTreeMap<String, Value>,
}

struct TargetsVisitor<L>(std::marker::PhantomData<L>);

impl<'de, L: Deserialize<'de>> Visitor<'de> for TargetsVisitor<L> {
    type Value = TargetsParts<L>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a targets object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<TargetsParts<L>, A::Error> {
        let (mut type_, mut spec, mut version, mut expires) = (None, None, None, None);
        let (mut targets, mut delegations) = (None, None);
        let mut extra = BTreeMap::new();
        while let Some(Key(key)) = m.next_key::<Key>()? {
            match &*key {
                "_type" => set_once(&mut type_, "_type", m.next_value()?)?,
                "spec_version" => {
                    let v = check_spec_version(m.next_value()?).map_err(de::Error::custom)?;
                    set_once(&mut spec, "spec_version", v)?;
                }
                "version" => {
                    let v = check_version(m.next_value()?).map_err(de::Error::custom)?;
                    set_once(&mut version, "version", v)?;
                }
                "expires" => set_once(&mut expires, "expires", m.next_value::<Expires>()?)?,
                // Target paths are free-form in the spec; whoever turns one into a local file
                // name must encode it (see `check_target_path` for names we accept as input).
                "targets" => set_once(&mut targets, "targets", m.next_value()?)?,
                "delegations" => set_once(
                    &mut delegations,
                    "delegations",
                    m.next_value::<Option<Delegations>>()?,
                )?,
                _ => {
                    let v: Value = m.next_value()?;
                    extra.insert(key.into_owned(), v);
                }
            }
        }
        Ok(TargetsParts {
            type_: type_.ok_or_else(|| de::Error::missing_field("_type"))?,
            spec_version: spec.ok_or_else(|| de::Error::missing_field("spec_version"))?,
            version: version.ok_or_else(|| de::Error::missing_field("version"))?,
            expires: expires.ok_or_else(|| de::Error::missing_field("expires"))?,
            targets: targets.ok_or_else(|| de::Error::missing_field("targets"))?,
            delegations: delegations.flatten(),
            extra,
        })
    }
}

impl<'de> Deserialize<'de> for Targets {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let p = d.deserialize_map(TargetsVisitor::<BTreeMap<String, TargetFile>>(
            std::marker::PhantomData,
        ))?;
        Ok(Targets {
            type_: p.type_,
            spec_version: p.spec_version,
            version: p.version,
            expires: p.expires,
            targets: p.targets,
            delegations: p.delegations,
            extra: p.extra,
        })
    }
}

/// A targets role without its target list: what a client needs to verify the role and walk
/// its delegations, in memory that does not grow with the number of targets. Parsing checks
/// every target entry exactly as [`Targets`] does, then lets it go; [`find_target`] looks one
/// up in the same bytes.
///
/// Only for reading: it cannot be serialised (the list is gone), so `Signed::new` on one fails.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetsHead {
    /// `_type`, always `targets`.
    pub type_: String,
    /// The specification version this metadata follows.
    pub spec_version: String,
    /// The role's version.
    pub version: u64,
    /// When this role stops being valid.
    pub expires: Expires,
    /// How many targets the role lists.
    pub target_count: usize,
    /// Roles this one hands parts of the target namespace to.
    pub delegations: Option<Delegations>,
    /// Fields we do not know, kept because they are signed.
    pub extra: BTreeMap<String, Value>,
}

impl Metadata for TargetsHead {
    const TYPE: &'static str = "targets";
    fn version(&self) -> u64 {
        self.version
    }
    fn expires(&self) -> &Expires {
        &self.expires
    }

    /// The scan has checked every target entry under the rules of [`TargetFileCheck`] and
    /// counted them, so the typed parse reads the rest of `signed` only: the target list is
    /// cut out (replaced by `{}`), which for a large role is nearly all of its bytes.
    fn from_scanned(signed: &[u8], targets: Option<(Range<usize>, usize)>) -> Option<Self> {
        let Some((list, count)) = targets else {
            return serde_json::from_slice(signed).ok();
        };
        let before = signed.get(..list.start)?;
        let after = signed.get(list.end..)?;
        let mut rest = Vec::with_capacity(before.len() + 2 + after.len());
        rest.extend_from_slice(before);
        rest.extend_from_slice(b"{}");
        rest.extend_from_slice(after);
        let mut head: TargetsHead = serde_json::from_slice(&rest).ok()?;
        head.target_count = count;
        Some(head)
    }
}

impl Serialize for TargetsHead {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom(
            "a TargetsHead has no target list and cannot be written",
        ))
    }
}

impl<'de> Deserialize<'de> for TargetsHead {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let p = d.deserialize_map(TargetsVisitor::<TargetCount>(std::marker::PhantomData))?;
        Ok(TargetsHead {
            type_: p.type_,
            spec_version: p.spec_version,
            version: p.version,
            expires: p.expires,
            target_count: p.targets.0,
            delegations: p.delegations,
            extra: p.extra,
        })
    }
}

/// A `targets` map checked entry by entry and counted, with nothing kept.
struct TargetCount(usize);

impl<'de> Deserialize<'de> for TargetCount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(TargetCountVisitor)
    }
}

struct TargetCountVisitor;

impl<'de> Visitor<'de> for TargetCountVisitor {
    type Value = TargetCount;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a map of target files")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<TargetCount, A::Error> {
        let mut n = 0usize;
        while m.next_key::<Key>()?.is_some() {
            m.next_value::<TargetFileCheck>()?;
            n += 1;
        }
        Ok(TargetCount(n))
    }
}

/// One target entry checked under every rule of [`TargetFile`] (and with its errors), with
/// nothing built: `custom` and unknown members may be any JSON, which the strict parse of the
/// whole envelope has already proven, so they are skipped rather than turned into values.
struct TargetFileCheck;

impl<'de> Deserialize<'de> for TargetFileCheck {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(TargetFileCheckVisitor)
    }
}

struct TargetFileCheckVisitor;

impl<'de> Visitor<'de> for TargetFileCheckVisitor {
    type Value = TargetFileCheck;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a target file object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<TargetFileCheck, A::Error> {
        let (mut length, mut hashes, mut custom) = (None, None, None);
        while let Some(Key(key)) = m.next_key::<Key>()? {
            match &*key {
                "length" => set_once(&mut length, "length", m.next_value::<u64>()?)?,
                "hashes" => {
                    let HashCount(n) = m.next_value()?;
                    if n == 0 {
                        return Err(de::Error::custom("hashes must not be empty"));
                    }
                    set_once(&mut hashes, "hashes", ())?;
                }
                "custom" => set_once(&mut custom, "custom", m.next_value::<de::IgnoredAny>()?)?,
                _ => {
                    m.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        length.ok_or_else(|| de::Error::missing_field("length"))?;
        hashes.ok_or_else(|| de::Error::missing_field("hashes"))?;
        Ok(TargetFileCheck)
    }
}

/// A `hashes` map of strings to strings, counted without being built.
struct HashCount(usize);

impl<'de> Deserialize<'de> for HashCount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(HashCountVisitor)
    }
}

struct HashCountVisitor;

impl<'de> Visitor<'de> for HashCountVisitor {
    type Value = HashCount;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<HashCount, A::Error> {
        let mut n = 0usize;
        while m.next_key::<Str>()?.is_some() {
            m.next_value::<Str>()?;
            n += 1;
        }
        Ok(HashCount(n))
    }
}

/// A JSON string, checked and let go (borrowed from the input when it can be).
struct Str;

impl<'de> Deserialize<'de> for Str {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(StrVisitor)
    }
}

struct StrVisitor;

impl<'de> Visitor<'de> for StrVisitor {
    type Value = Str;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E>(self, _: &str) -> Result<Str, E> {
        Ok(Str)
    }
}

/// Looks `path` up in the `targets` of a targets envelope, deserialising that one entry only.
///
/// `bytes` must be an envelope already accepted by `Signed::<Targets>::from_slice` or
/// `Signed::<TargetsHead>::from_slice` (and verified): that parse proved it strict, so this
/// lookup need not repeat the duplicate-key and float checks.
pub fn find_target(bytes: &[u8], path: &str) -> Result<Option<TargetFile>, Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let found = de
        .deserialize_map(FindIn {
            path,
            field: "signed",
            inner: Some("targets"),
        })
        .map_err(|e| Error::Json(e.to_string()))?;
    Ok(found)
}

/// Walks into member `field` of an object (then `inner`'s, then the target map), ignoring
/// every other member without building it.
struct FindIn<'p> {
    path: &'p str,
    field: &'static str,
    inner: Option<&'static str>,
}

impl<'de> DeserializeSeed<'de> for FindIn<'_> {
    type Value = Option<TargetFile>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FindIn<'_> {
    type Value = Option<TargetFile>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "an object with {}", self.field)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(Key(key)) = m.next_key::<Key>()? {
            if key != self.field {
                m.next_value::<de::IgnoredAny>()?;
                continue;
            }
            found = match self.inner {
                Some(inner) => m.next_value_seed(FindIn {
                    path: self.path,
                    field: inner,
                    inner: None,
                })?,
                None => m.next_value_seed(FindTarget(self.path))?,
            };
        }
        Ok(found)
    }
}

struct FindTarget<'p>(&'p str);

impl<'de> DeserializeSeed<'de> for FindTarget<'_> {
    type Value = Option<TargetFile>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FindTarget<'_> {
    type Value = Option<TargetFile>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a map of target files")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(Key(key)) = m.next_key::<Key>()? {
            if key == self.0 {
                found = Some(m.next_value::<TargetFile>()?);
            } else {
                m.next_value::<de::IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

impl Targets {
    /// An empty targets role of the given version and expiry.
    pub fn new(version: u64, expires: Expires) -> Self {
        Self {
            type_: "targets".to_owned(),
            spec_version: crate::SPEC_VERSION.to_owned(),
            version,
            expires,
            targets: BTreeMap::new(),
            delegations: None,
            extra: BTreeMap::new(),
        }
    }
}

/// The `delegations` object of a targets role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Delegations {
    /// Every key a delegated role uses, by key ID.
    pub keys: BTreeMap<KeyId, PublicKey>,
    /// The delegated roles, in the order a client searches them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<DelegatedRole>>,
    /// Hash-bin delegations (TAP 15), instead of `roles`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub succinct_roles: Option<SuccinctRoles>,
    /// Fields we do not know, kept because they are signed.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
struct RawDelegations {
    keys: BTreeMap<KeyId, PublicKey>,
    #[serde(default)]
    roles: Option<Vec<DelegatedRole>>,
    #[serde(default)]
    succinct_roles: Option<SuccinctRoles>,
    #[serde(flatten)]
    extra: BTreeMap<String, Value>,
}

impl<'de> Deserialize<'de> for Delegations {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let raw = RawDelegations::deserialize(d)?;
        match (&raw.roles, &raw.succinct_roles) {
            (Some(_), Some(_)) | (None, None) => {
                return Err(D::Error::custom(
                    "delegations: exactly one of roles and succinct_roles must be present",
                ));
            }
            _ => {}
        }
        if let Some(roles) = &raw.roles {
            let mut names = BTreeSet::new();
            for r in roles {
                if Role::ALL.iter().any(|t| t.as_str() == r.name) {
                    return Err(D::Error::custom(format!(
                        "delegations: role name {:?} is a top-level role",
                        r.name
                    )));
                }
                if !names.insert(r.name.as_str()) {
                    return Err(D::Error::custom(format!(
                        "delegations: role {:?} delegated twice",
                        r.name
                    )));
                }
            }
        }
        Ok(Self {
            keys: raw.keys,
            roles: raw.roles,
            succinct_roles: raw.succinct_roles,
            extra: raw.extra,
        })
    }
}

/// A delegated role of `delegations.roles`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DelegatedRole {
    /// The role's name; also the file name of its metadata (checked: no path separators).
    pub name: String,
    /// The keys that may sign the role.
    pub keyids: Vec<KeyId>,
    /// How many of them must sign.
    pub threshold: Threshold,
    /// Whether the search stops at this role when its paths match.
    pub terminating: bool,
    /// Target path patterns the role is trusted for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    /// Or: hex prefixes of the SHA-256 of target paths the role is trusted for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_hash_prefixes: Option<Vec<String>>,
    /// Fields we do not know, kept because they are signed.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
struct RawDelegatedRole {
    name: String,
    #[serde(deserialize_with = "unique_keyids")]
    keyids: Vec<KeyId>,
    threshold: Threshold,
    terminating: bool,
    #[serde(default)]
    paths: Option<Vec<String>>,
    #[serde(default)]
    path_hash_prefixes: Option<Vec<String>>,
    #[serde(flatten)]
    extra: BTreeMap<String, Value>,
}

impl<'de> Deserialize<'de> for DelegatedRole {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = RawDelegatedRole::deserialize(d)?;
        if r.paths.is_some() == r.path_hash_prefixes.is_some() {
            return Err(serde::de::Error::custom(format!(
                "delegated role {:?}: exactly one of paths and path_hash_prefixes must be set",
                r.name
            )));
        }
        // Role names are free-form too (python-tuf and the conformance suite use `/`, `?`,
        // `..`): clients percent-encode them for URLs and file names.
        Ok(Self {
            name: r.name,
            keyids: r.keyids,
            threshold: r.threshold,
            terminating: r.terminating,
            paths: r.paths,
            path_hash_prefixes: r.path_hash_prefixes,
            extra: r.extra,
        })
    }
}

impl DelegatedRole {
    /// The role's keys and threshold, for verification.
    pub fn role_keys(&self) -> RoleKeys {
        RoleKeys::new(self.keyids.clone(), self.threshold)
    }
}

/// Succinct hash-bin delegations (TAP 15).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SuccinctRoles {
    /// The keys that may sign every bin.
    pub keyids: Vec<KeyId>,
    /// How many of them must sign.
    pub threshold: Threshold,
    /// How many leading bits of a target path's hash select its bin.
    pub bit_length: u32,
    /// Bin role names are this prefix, `-`, and the bin number in hex.
    pub name_prefix: String,
    /// Fields we do not know, kept because they are signed.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
struct RawSuccinct {
    #[serde(deserialize_with = "unique_keyids")]
    keyids: Vec<KeyId>,
    threshold: Threshold,
    bit_length: u32,
    name_prefix: String,
    #[serde(flatten)]
    extra: BTreeMap<String, Value>,
}

impl<'de> Deserialize<'de> for SuccinctRoles {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = RawSuccinct::deserialize(d)?;
        if !(1..=32).contains(&r.bit_length) {
            return Err(serde::de::Error::custom(format!(
                "succinct_roles: bit_length {} is not between 1 and 32",
                r.bit_length
            )));
        }
        Ok(Self {
            keyids: r.keyids,
            threshold: r.threshold,
            bit_length: r.bit_length,
            name_prefix: r.name_prefix,
            extra: r.extra,
        })
    }
}

impl SuccinctRoles {
    /// The keys and threshold every bin role has, for verification.
    pub fn role_keys(&self) -> RoleKeys {
        RoleKeys::new(self.keyids.clone(), self.threshold)
    }
}

/// One entry of a `signatures` list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// The ID of the key that made the signature.
    pub keyid: KeyId,
    /// The signature, lowercase hex.
    pub sig: String,
    /// Fields we do not know (not signed: kept for the round trip).
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// A signed envelope `{"signatures": [...], "signed": {...}}` with the parsed `signed` object
/// and the canonical bytes that signatures cover.
#[derive(Clone, Debug)]
pub struct Signed<T> {
    /// The parsed `signed` object.
    pub signed: T,
    /// Its signatures; they cover the canonical bytes of `signed` as received.
    pub signatures: Vec<Signature>,
    canonical: Vec<u8>,
    extra: Map<String, Value>,
}

impl<T: Metadata> Signed<T> {
    /// Wraps newly built metadata, without signatures.
    pub fn new(signed: T) -> Result<Self, Error> {
        Ok(Self {
            canonical: signed.to_canonical()?,
            signed,
            signatures: Vec::new(),
            extra: Map::new(),
        })
    }

    /// Parses an envelope received from a file or the network.
    ///
    /// Two paths, one result. The fast one scans the bytes once, checking every strictness
    /// rule and writing the canonical bytes of `signed` as it goes, then builds the typed
    /// model straight from the (now proven strict) bytes. Whatever it does not handle goes
    /// to the tree-based [`Signed::from_value`], which is the reference: errors always come
    /// from there, so the fast path cannot change what is accepted or how it is refused.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, Error> {
        SignedRef::from_slice(bytes).map(SignedRef::into_owned)
    }

    #[cfg(test)]
    fn from_slice_fast(bytes: &[u8]) -> Option<Self> {
        SignedRef::from_slice_fast(bytes).map(SignedRef::into_owned)
    }

    /// Moves the typed metadata out, dropping the canonical bytes and signatures: for
    /// holders that keep a verified role only to look things up in it.
    pub fn into_signed(self) -> T {
        self.signed
    }

    /// Parses an envelope from an already strictly parsed JSON value.
    pub fn from_value(value: Value) -> Result<Self, Error> {
        let Value::Object(mut top) = value else {
            return Err(Error::field("metadata", "is not a JSON object"));
        };
        let signed_value = top
            .remove("signed")
            .ok_or_else(|| Error::field("signed", "is missing"))?;
        let sigs_value = top
            .remove("signatures")
            .ok_or_else(|| Error::field("signatures", "is missing"))?;
        check_type::<T>(&signed_value)?;
        let canonical = canonical::to_vec(&signed_value)?;
        let signatures: Vec<Signature> = Vec::<Signature>::deserialize(&sigs_value)
            .map_err(|e| Error::field("signatures", e.to_string()))?;
        let mut seen = BTreeSet::new();
        for s in &signatures {
            if !seen.insert(&s.keyid) {
                return Err(Error::DuplicateSignature(s.keyid.clone()));
            }
        }
        // By value: strings move into the typed model instead of being copied.
        let signed = T::deserialize(signed_value)
            .map_err(|e| Error::field(format!("signed ({})", T::TYPE), e.to_string()))?;
        Ok(Self {
            signed,
            signatures,
            canonical,
            extra: top,
        })
    }

    /// The canonical bytes of the `signed` object, exactly what signatures cover.
    pub fn canonical(&self) -> &[u8] {
        &self.canonical
    }

    /// Adds (or replaces) the signature of `signer`.
    pub fn sign(&mut self, signer: &dyn Signer) -> Result<(), Error> {
        let sig = hex::encode(signer.sign(&self.canonical)?);
        let keyid = signer.key_id().clone();
        self.signatures.retain(|s| s.keyid != keyid);
        self.signatures.push(Signature {
            keyid,
            sig,
            extra: BTreeMap::new(),
        });
        Ok(())
    }

    /// Adds a signature made elsewhere, replacing any earlier one of the same key ID.
    pub fn add_signature(&mut self, signature: Signature) {
        self.signatures.retain(|s| s.keyid != signature.keyid);
        self.signatures.push(signature);
    }

    /// The envelope as a JSON text in canonical form: `signed` is written from the canonical
    /// bytes it was parsed or built with, so nothing the signatures cover can change.
    ///
    /// The one departure from canonical bytes: control characters inside strings (the line
    /// breaks of every PEM public key, for one) are escaped (`\n`, `\u0001`), as JSON requires; without that, neither python-tuf nor we could read the
    /// file back. Parsing it gives the same [`Signed::canonical`] bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        canonical::escape_controls(self.to_canonical_bytes())
    }

    /// [`Signed::to_bytes`], reusing the buffer of the canonical bytes: the envelope's
    /// opening is moved in front of them in place, so a large role is never held twice.
    /// Built by [`TargetsBytes::next`] with room to spare, that buffer needs no reallocation.
    pub fn into_bytes(self) -> Vec<u8> {
        if !self.extra.is_empty() {
            return self.to_bytes();
        }
        let mut opening = b"{\"signatures\":".to_vec();
        self.write_signatures(&mut opening);
        opening.extend_from_slice(b",\"signed\":");
        let mut out = self.canonical;
        let (len, n) = (out.len(), opening.len());
        out.reserve(n + 1);
        out.resize(len + n, 0);
        out.copy_within(..len, n);
        out[..n].copy_from_slice(&opening);
        out.push(b'}');
        canonical::escape_controls(out)
    }

    fn write_signatures(&self, out: &mut Vec<u8>) {
        let sigs = serde_json::to_value(&self.signatures).unwrap_or_default();
        // Invariant: signatures are strings and maps of strings, which always canonicalise.
        let _ = canonical::write(&sigs, out);
    }

    fn to_canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.canonical.len() + 200 * self.signatures.len() + 32);
        let mut top: Vec<(&str, Option<&Value>)> = vec![("signatures", None), ("signed", None)];
        for (k, v) in &self.extra {
            top.push((k.as_str(), Some(v)));
        }
        top.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        out.push(b'{');
        for (i, (k, v)) in top.into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            // Invariant: a string always canonicalises.
            let _ = canonical::write(&Value::String(k.to_owned()), &mut out);
            out.push(b':');
            match (k, v) {
                (_, Some(v)) => {
                    // Invariant: `extra` came from a strict parse, so it holds no floats.
                    let _ = canonical::write(v, &mut out);
                }
                ("signed", None) => out.extend_from_slice(&self.canonical),
                _ => self.write_signatures(&mut out),
            }
        }
        out.push(b'}');
        out
    }
}

/// A received envelope whose canonical bytes may be borrowed from the received bytes: the
/// read-only counterpart of [`Signed`] for clients that parse, verify and move on.
///
/// The file form this project writes is canonical JSON already, except for escaped control
/// characters (the line breaks of PEM keys); when the bytes of `signed` need no change to be
/// canonical, they are used in place instead of copied, which halves what a large targets
/// role costs to verify. Anything else (pretty-printed files, escapes, unsorted keys) gets
/// its canonical bytes built exactly as [`Signed::from_slice`] builds them, so which of the
/// two happened never changes what verifies.
#[derive(Clone, Debug)]
pub struct SignedRef<'a, T> {
    /// The parsed `signed` object.
    pub signed: T,
    /// Its signatures; they cover the canonical bytes of `signed` as received.
    pub signatures: Vec<Signature>,
    canonical: Cow<'a, [u8]>,
    extra: Map<String, Value>,
}

impl<'a, T: Metadata> SignedRef<'a, T> {
    /// Parses an envelope received from a file or the network, under every rule of
    /// [`Signed::from_slice`] and with the same errors.
    ///
    /// Two paths, one result. The fast one scans the bytes once, checking every strictness
    /// rule and producing the canonical bytes of `signed` as it goes, then builds the typed
    /// model straight from the (now proven strict) bytes. Whatever it does not handle goes
    /// to the tree-based [`Signed::from_value`], which is the reference: errors always come
    /// from there, so the fast path cannot change what is accepted or how it is refused.
    pub fn from_slice(bytes: &'a [u8]) -> Result<Self, Error> {
        if let Some(env) = Self::from_slice_fast(bytes) {
            return Ok(env);
        }
        Signed::from_value(canonical::parse(bytes)?).map(Self::from)
    }

    fn from_slice_fast(bytes: &'a [u8]) -> Option<Self> {
        let scan = canonical::scan_envelope(bytes)?;
        if scan.type_.as_deref() != Some(T::TYPE) {
            return None;
        }
        // Deserialising from bytes skips serde_json's duplicate-key and float checks, which
        // is sound only because the scan above proved there are none anywhere in `bytes`.
        let signatures: Vec<Signature> = serde_json::from_slice(scan.signatures).ok()?;
        let mut seen = BTreeSet::new();
        if !signatures.iter().all(|s| seen.insert(&s.keyid)) {
            return None;
        }
        let signed = T::from_scanned(scan.signed, scan.targets)?;
        let mut extra = Map::new();
        for (k, raw) in scan.extra {
            extra.insert(k, serde_json::from_slice(raw).ok()?);
        }
        Some(Self {
            signed,
            signatures,
            canonical: scan.canonical,
            extra,
        })
    }

    /// The canonical bytes of the `signed` object, exactly what signatures cover.
    pub fn canonical(&self) -> &[u8] {
        &self.canonical
    }

    /// Whether [`SignedRef::canonical`] is a slice of the received bytes (no copy was made).
    pub fn canonical_is_borrowed(&self) -> bool {
        matches!(self.canonical, Cow::Borrowed(_))
    }

    /// Checks this envelope's signatures against `role`.
    pub fn verify_role(
        &self,
        role_name: &str,
        role: &RoleKeys,
        keys: &BTreeMap<KeyId, PublicKey>,
    ) -> crate::Verification {
        crate::verify_role(role_name, role, keys, &self.canonical, &self.signatures)
    }

    /// Moves the typed metadata out, releasing the received bytes.
    pub fn into_signed(self) -> T {
        self.signed
    }

    /// The owned envelope, copying the canonical bytes if they were borrowed.
    pub fn into_owned(self) -> Signed<T> {
        Signed {
            signed: self.signed,
            signatures: self.signatures,
            canonical: self.canonical.into_owned(),
            extra: self.extra,
        }
    }
}

impl<T> From<Signed<T>> for SignedRef<'_, T> {
    fn from(s: Signed<T>) -> Self {
        Self {
            signed: s.signed,
            signatures: s.signatures,
            canonical: Cow::Owned(s.canonical),
            extra: s.extra,
        }
    }
}

fn check_type<T: Metadata>(signed: &Value) -> Result<(), Error> {
    match signed.get("_type") {
        Some(Value::String(t)) if t == T::TYPE => Ok(()),
        Some(Value::String(t)) => Err(Error::WrongType {
            expected: T::TYPE,
            got: t.clone(),
        }),
        Some(_) => Err(Error::field("signed._type", "is not a string")),
        None => Err(Error::field("signed._type", "is missing")),
    }
}

#[cfg(test)]
#[cfg(feature = "aws-lc")]
mod tests {
    use super::*;
    use crate::key::{KeyType, PrivateKey};

    fn expires() -> Expires {
        "2030-01-01T00:00:00Z".parse().unwrap()
    }

    /// A targets role as the server builds one: its bytes written directly are those of
    /// its JSON tree.
    #[test]
    fn targets_written_directly_are_the_bytes_of_their_json_tree() {
        let mut t = Targets::new(7, expires());
        for (path, custom) in [
            (
                "b-1",
                Some(serde_json::json!({"name": "b", "tags": ["x\"y", "\n"], "é": 1})),
            ),
            ("a-2", None),
            ("\u{e9}-1", Some(Value::Null)),
        ] {
            let file = TargetFile {
                length: u64::MAX,
                hashes: BTreeMap::from([("sha256".to_owned(), "ab".repeat(32))]),
                custom,
                extra: BTreeMap::new(),
            };
            t.targets.insert(path.to_owned(), file);
        }
        let with_extra = t.targets.get_mut("a-2").unwrap();
        with_extra
            .extra
            .insert("zz".to_owned(), serde_json::json!([1, -2]));
        t.extra.insert("_x".to_owned(), serde_json::json!("top"));
        t.extra
            .insert("tz".to_owned(), serde_json::json!({"b": 1, "a": 2}));
        assert_eq!(t.to_canonical().unwrap(), canonical_via_tree(&t).unwrap());
        t.delegations = serde_json::from_value(serde_json::json!({"keys": {}, "roles": []})).ok();
        assert!(t.delegations.is_some());
        assert_eq!(t.to_canonical().unwrap(), canonical_via_tree(&t).unwrap());
    }

    /// An unknown field named like a member replaces it, as serde writes it; a wrong
    /// `_type` is refused as the tree path refuses it.
    #[test]
    fn targets_written_directly_keep_the_tree_paths_edge_cases() {
        let mut t = Targets::new(7, expires());
        t.extra.insert("version".to_owned(), serde_json::json!("x"));
        let bytes = t.to_canonical().unwrap();
        assert_eq!(bytes, canonical_via_tree(&t).unwrap());
        assert!(String::from_utf8(bytes)
            .unwrap()
            .contains(r#""version":"x""#));
        let mut wrong = Targets::new(7, expires());
        wrong.type_ = "root".to_owned();
        assert!(matches!(
            wrong.to_canonical(),
            Err(Error::WrongType {
                expected: "targets",
                ..
            })
        ));
        assert_eq!(
            wrong.to_canonical().unwrap_err().to_string(),
            canonical_via_tree(&wrong).unwrap_err().to_string()
        );
    }

    pub(crate) fn sample_root(key: &PrivateKey) -> Root {
        let mut keys = BTreeMap::new();
        keys.insert(key.key_id().clone(), key.public_key().clone());
        let roles = Role::ALL
            .into_iter()
            .map(|r| {
                (
                    r,
                    RoleKeys::new(vec![key.key_id().clone()], Threshold::new(1).unwrap()),
                )
            })
            .collect();
        Root::new(1, expires(), keys, roles)
    }

    #[test]
    fn unknown_fields_round_trip_at_every_level() {
        let key = PrivateKey::generate(KeyType::Ed25519).unwrap();
        let mut env = Signed::new(sample_root(&key)).unwrap();
        env.sign(&key).unwrap();
        let mut v: Value = serde_json::from_slice(&env.to_bytes()).unwrap();
        v["signed"]["x-top"] = serde_json::json!({"a": [1, 2]});
        v["signed"]["roles"]["root"]["x-role"] = Value::Bool(true);
        let kid = key.key_id().as_str();
        v["signed"]["keys"][kid]["x-key"] = Value::from(7);
        v["signed"]["keys"][kid]["keyval"]["x-val"] = Value::from("v");
        v["x-envelope"] = Value::from("e");
        v["signatures"][0]["x-sig"] = Value::from(1);
        let bytes = canonical::to_vec(&v).unwrap();
        let parsed = Signed::<Root>::from_slice(&bytes).unwrap();
        assert_eq!(parsed.to_bytes(), bytes);
        // And through the typed struct too.
        let rebuilt = Signed::new(parsed.signed.clone()).unwrap();
        assert_eq!(rebuilt.canonical(), parsed.canonical());
    }

    #[test]
    fn pem_keys_survive_a_write_and_read_back() {
        // PEM public keys hold line breaks; written raw they would make an invalid JSON file.
        let key = PrivateKey::generate(KeyType::EcdsaP256).unwrap();
        let mut env = Signed::new(sample_root(&key)).unwrap();
        env.sign(&key).unwrap();
        let bytes = env.to_bytes();
        assert!(
            !bytes.iter().any(|&b| b < 0x20),
            "raw control character in the file"
        );
        let back = Signed::<Root>::from_slice(&bytes).unwrap();
        assert_eq!(back.canonical(), env.canonical());
        assert_eq!(back.to_bytes(), bytes);
        let v = back.verify_role("root", back.signed.role(Role::Root), &back.signed.keys);
        assert!(v.is_met(), "{v:?}");
    }

    /// Both parse paths on one file: the fast path must answer, and agree with the tree.
    #[track_caller]
    fn both_paths<T: Metadata + PartialEq + std::fmt::Debug>(bytes: &[u8]) {
        let fast = Signed::<T>::from_slice_fast(bytes).expect("fast path declined");
        let slow = Signed::<T>::from_value(canonical::parse(bytes).unwrap()).unwrap();
        assert_eq!(fast.signed, slow.signed);
        assert_eq!(fast.signatures, slow.signatures);
        assert_eq!(fast.canonical, slow.canonical);
        assert_eq!(fast.extra, slow.extra);
    }

    #[test]
    fn fast_and_tree_paths_build_the_same_envelope() {
        let key = PrivateKey::generate(KeyType::EcdsaP256).unwrap();
        let mut root = Signed::new(sample_root(&key)).unwrap();
        root.sign(&key).unwrap();
        let mut v: Value = serde_json::from_slice(&root.to_bytes()).unwrap();
        v["signed"]["x-top"] = serde_json::json!({"a": [1, -2, "\u{1}é\"\\"], "b": null});
        v["x-envelope"] = Value::from("e");
        let file = canonical::escape_controls(canonical::to_vec(&v).unwrap());
        both_paths::<Root>(&file);
        both_paths::<Root>(serde_json::to_string_pretty(&v).unwrap().as_bytes());

        let mut t = Targets::new(3, expires());
        for (i, name) in ["a", "../x", "dir/é", "q?#b", "\u{7f}"].iter().enumerate() {
            let mut hashes = BTreeMap::new();
            hashes.insert("sha256".to_owned(), format!("{i:02}"));
            t.targets.insert(
                (*name).to_owned(),
                TargetFile {
                    length: i as u64,
                    hashes,
                    custom: (i % 2 == 0).then(|| serde_json::json!({"v": i, "s": "\n"})),
                    extra: [("x-f".to_owned(), Value::from(i))].into(),
                },
            );
        }
        let mut t = Signed::new(t).unwrap();
        t.sign(&key).unwrap();
        both_paths::<Targets>(&t.to_bytes());
        let v: Value = serde_json::from_slice(&t.to_bytes()).unwrap();
        both_paths::<Targets>(serde_json::to_string_pretty(&v).unwrap().as_bytes());

        let ts = Signed::new(Timestamp::new(1, expires(), MetaFile::new(1))).unwrap();
        both_paths::<Timestamp>(&ts.to_bytes());
        // Wrong role type: the fast path declines, the tree path names the error.
        assert!(Signed::<Snapshot>::from_slice_fast(&ts.to_bytes()).is_none());
    }

    #[test]
    fn targets_head_and_lookup_agree_with_the_full_model() {
        let key = PrivateKey::generate(KeyType::Ed25519).unwrap();
        let mut t = Targets::new(4, expires());
        for name in ["a", "../x", "dir/é", "b\"q"] {
            let mut hashes = BTreeMap::new();
            hashes.insert("sha256".to_owned(), "00".to_owned());
            t.targets.insert(
                name.to_owned(),
                TargetFile {
                    length: name.len() as u64,
                    hashes,
                    custom: Some(serde_json::json!({"n": name})),
                    extra: BTreeMap::new(),
                },
            );
        }
        t.extra.insert("x-e".to_owned(), Value::from(1));
        let mut env = Signed::new(t.clone()).unwrap();
        env.sign(&key).unwrap();
        let bytes = env.to_bytes();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        for file in [bytes.clone(), serde_json::to_vec_pretty(&v).unwrap()] {
            let head = Signed::<TargetsHead>::from_slice(&file).unwrap();
            assert_eq!(head.canonical(), env.canonical());
            assert_eq!(head.signed.target_count, 4);
            assert_eq!(head.signed.version, 4);
            assert_eq!(head.signed.extra, t.extra);
            for (name, info) in &t.targets {
                assert_eq!(find_target(&file, name).unwrap().as_ref(), Some(info));
            }
            assert_eq!(find_target(&file, "missing").unwrap(), None);
        }
        // A malformed entry fails the head parse just as it fails the full one.
        let bad = String::from_utf8(bytes)
            .unwrap()
            .replacen("\"length\":1", "\"length\":\"1\"", 1);
        let full = Signed::<Targets>::from_slice(bad.as_bytes()).unwrap_err();
        let head = Signed::<TargetsHead>::from_slice(bad.as_bytes()).unwrap_err();
        for err in [full, head] {
            assert_eq!(
                err.to_string(),
                "signed (targets): invalid type: string \"1\", expected u64"
            );
        }
        let err = Signed::new(head_of(&t)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid JSON: a TargetsHead has no target list and cannot be written"
        );
    }

    /// Both forms of a received envelope: borrowed canonical bytes (when `borrowed`) or a copy,
    /// and in either case the same bytes, signatures and verdict as the owned parse.
    #[track_caller]
    fn received<T: Metadata + PartialEq + std::fmt::Debug>(
        bytes: &[u8],
        borrowed: bool,
        key: &PrivateKey,
    ) {
        let r = SignedRef::<T>::from_slice(bytes).unwrap();
        assert_eq!(r.canonical_is_borrowed(), borrowed);
        let tree = Signed::<T>::from_value(canonical::parse(bytes).unwrap()).unwrap();
        assert_eq!(r.canonical(), tree.canonical());
        assert_eq!(r.signatures, tree.signatures);
        assert_eq!(r.signed, tree.signed);
        let keys = [(key.key_id().clone(), key.public_key().clone())].into();
        let role = RoleKeys::new(vec![key.key_id().clone()], Threshold::new(1).unwrap());
        let v = r.verify_role("r", &role, &keys);
        assert!(v.is_met(), "{v:?}");
        assert_eq!(v, tree.verify_role("r", &role, &keys));
        let owned = r.into_owned();
        assert_eq!(owned.canonical(), tree.canonical());
        assert_eq!(owned.to_bytes(), tree.to_bytes());
    }

    #[test]
    fn received_canonical_bytes_are_borrowed_only_when_already_canonical() {
        let key = PrivateKey::generate(KeyType::Ed25519).unwrap();
        let mut t = Targets::new(2, expires());
        // (A key with `"` or `\` always takes the tree path; values with them are fine.)
        for name in ["a", "b", "dir/é"] {
            let mut hashes = BTreeMap::new();
            hashes.insert("sha256".to_owned(), "00".to_owned());
            t.targets.insert(
                name.to_owned(),
                TargetFile {
                    length: 1,
                    hashes,
                    custom: Some(serde_json::json!({"n": name, "l": [1, -2, null, "\"q\\"]})),
                    extra: BTreeMap::new(),
                },
            );
        }
        let mut env = Signed::new(t).unwrap();
        env.sign(&key).unwrap();
        // Our file form is canonical: used in place, quotes and backslashes included.
        let file = env.to_bytes();
        received::<Targets>(&file, true, &key);
        received::<TargetsHead>(&file, true, &key);
        let v: Value = serde_json::from_slice(&file).unwrap();
        // Pretty-printed, and with every non-ASCII character escaped: copied.
        let pretty = serde_json::to_vec_pretty(&v).unwrap();
        received::<TargetsHead>(&pretty, false, &key);
        let ascii = serde_json::to_string(&v).unwrap().replace('é', "\\u00e9");
        received::<TargetsHead>(ascii.as_bytes(), false, &key);
        // Unsorted keys: the tree path builds the canonical bytes.
        let unsorted = String::from_utf8(file.clone())
            .unwrap()
            .replacen("{\"_type\":\"targets\",", "{", 1)
            .replacen("\"version\":2", "\"version\":2,\"_type\":\"targets\"", 1);
        assert!(canonical::scan_envelope(unsorted.as_bytes()).is_none());
        received::<TargetsHead>(unsorted.as_bytes(), false, &key);

        // A PEM key's line breaks are escaped in the file form: the signed part is not
        // canonical as received, is copied, and still verifies.
        let pem = PrivateKey::generate(KeyType::EcdsaP256).unwrap();
        let mut root = Signed::new(sample_root(&pem)).unwrap();
        root.sign(&pem).unwrap();
        let file = root.to_bytes();
        assert!(file.windows(2).any(|w| w == b"\\n"));
        received::<Root>(&file, false, &pem);
        // A borrowed slice that was tampered with fails exactly like the copy does.
        let tampered =
            String::from_utf8(env.to_bytes())
                .unwrap()
                .replacen("\"length\":1", "\"length\":2", 1);
        let r = SignedRef::<TargetsHead>::from_slice(tampered.as_bytes()).unwrap();
        assert!(r.canonical_is_borrowed());
        let keys = [(key.key_id().clone(), key.public_key().clone())].into();
        let role = RoleKeys::new(vec![key.key_id().clone()], Threshold::new(1).unwrap());
        assert!(!r.verify_role("targets", &role, &keys).is_met());
    }

    #[test]
    fn targets_head_checks_every_entry_without_building_it() {
        let good = r#"{"signatures":[],"signed":{"_type":"targets","expires":"2030-01-01T00:00:00Z","spec_version":"1.0.0","targets":{"a":ENTRY},"version":1}}"#;
        let ok = [
            r#"{"hashes":{"sha256":"00"},"length":1}"#,
            r#"{"custom":null,"hashes":{"sha256":"00"},"length":1}"#,
            r#"{"custom":[1,{"x":"y"}],"hashes":{"sha256":"00"},"length":1,"x-extra":{"z":true}}"#,
        ];
        let bad = [
            r#"{"hashes":{},"length":1}"#,
            r#"{"hashes":{"sha256":1},"length":1}"#,
            r#"{"hashes":[],"length":1}"#,
            r#"{"hashes":{"sha256":"00"},"length":-1}"#,
            r#"{"hashes":{"sha256":"00"},"length":"1"}"#,
            r#"{"hashes":{"sha256":"00"}}"#,
            r#"{"length":1}"#,
            r#"[]"#,
            r#"{"hashes":{"sha256":"00"},"length":1,"x":1.5}"#,
            r#"{"hashes":{"sha256":"00","sha256":"00"},"length":1}"#,
        ];
        for (entry, accepted) in ok
            .iter()
            .map(|e| (e, true))
            .chain(bad.iter().map(|e| (e, false)))
        {
            let text = good.replace("ENTRY", entry);
            let full = Signed::<Targets>::from_slice(text.as_bytes());
            let head = Signed::<TargetsHead>::from_slice(text.as_bytes());
            assert_eq!(full.is_ok(), accepted, "{entry}: {full:?}");
            assert_eq!(head.is_ok(), accepted, "{entry}: {head:?}");
            // Pretty-printed, the tree path decides, with the same verdict.
            let pretty = text.replace(',', ", ");
            assert_eq!(
                Signed::<TargetsHead>::from_slice(pretty.as_bytes()).is_ok(),
                accepted
            );
        }
    }

    /// The fast path of a targets head skips the target list the scan has already checked
    /// entry by entry: whatever it accepts, the tree path accepts with the same result, and
    /// whatever the full parse refuses, it declines (so the tree path names the error).
    #[test]
    fn targets_head_fast_path_never_accepts_what_the_full_parse_refuses() {
        let doc = r#"{"signatures":[],"signed":{"_type":"targets","delegations":{"keys":{},"roles":[]},"expires":"2030-01-01T00:00:00Z","spec_version":"1.0.0","targets":TARGETS,"version":1,"x-z":[1]}}"#;
        let entry = r#"{"hashes":{"sha256":"00"},"length":1}"#;
        let ok = [
            format!(r#"{{"a":{entry}}}"#),
            "{}".to_owned(),
            // Target paths that are also entry field names are paths like any other.
            format!(r#"{{"hashes":{entry},"length":{entry}}}"#),
            r#"{"a":{"custom":{"hashes":{},"length":-1},"hashes":{"sha256":"00","sha512":"11"},"length":18446744073709551615,"x-a-very-long-unknown-field":{"k":[true]}}}"#.to_owned(),
        ];
        let bad = [
            // Duplicate target path.
            format!(r#"{{"a":{entry},"a":{entry}}}"#),
            // Not a map of entries.
            "[]".to_owned(),
            "null".to_owned(),
            r#"{"a":null}"#.to_owned(),
            r#"{"a":{"hashes":{"sha256":"00"},"length":18446744073709551616}}"#.to_owned(),
            r#"{"a":{"hashes":{"sha256":"00"},"length":1e3}}"#.to_owned(),
            r#"{"a":{"hashes":{"sha256":"00"},"length":01}}"#.to_owned(),
            r#"{"a":{"hashes":{"sha256":"00"},"length":-0}}"#.to_owned(),
            r#"{"a":{"hashes":{"sha256":"00"},"length":null}}"#.to_owned(),
            r#"{"a":{"hashes":{"sha256":null},"length":1}}"#.to_owned(),
            r#"{"a":{"hashes":{"sha256":["00"]},"length":1}}"#.to_owned(),
            r#"{"a":{"hashes":null,"length":1}}"#.to_owned(),
            r#"{"a":{"hashes":{"sha256":"00"},"lengthy":1}}"#.to_owned(),
        ];
        for (targets, accepted) in ok
            .iter()
            .map(|t| (t, true))
            .chain(bad.iter().map(|t| (t, false)))
        {
            let text = doc.replace("TARGETS", targets);
            let tree = canonical::parse(text.as_bytes())
                .map_err(|e| e.to_string())
                .and_then(|v| Signed::<TargetsHead>::from_value(v).map_err(|e| e.to_string()));
            let full = Signed::<Targets>::from_slice(text.as_bytes()).map_err(|e| e.to_string());
            let fast = SignedRef::<TargetsHead>::from_slice_fast(text.as_bytes());
            let head =
                Signed::<TargetsHead>::from_slice(text.as_bytes()).map_err(|e| e.to_string());
            assert_eq!(full.is_ok(), accepted, "{targets}: {full:?}");
            if accepted {
                let (fast, tree) = (fast.expect(targets), tree.expect(targets));
                assert_eq!(fast.signed, tree.signed, "{targets}");
                assert_eq!(fast.canonical(), tree.canonical(), "{targets}");
                assert_eq!(fast.signed.target_count, full.unwrap().signed.targets.len());
            } else {
                assert!(fast.is_none(), "fast path accepted {targets}");
                // The same refusal as the full parse's (the tree path gives both).
                assert_eq!(head.unwrap_err(), tree.unwrap_err(), "{targets}");
            }
        }
        // Unsorted entry fields are left to the tree path, which accepts and canonicalises.
        let text = doc.replace("TARGETS", r#"{"a":{"length":1,"hashes":{"sha256":"00"}}}"#);
        assert!(SignedRef::<TargetsHead>::from_slice_fast(text.as_bytes()).is_none());
        let tree = Signed::<TargetsHead>::from_value(canonical::parse(text.as_bytes()).unwrap());
        let head = Signed::<TargetsHead>::from_slice(text.as_bytes());
        assert_eq!(head.unwrap().signed, tree.unwrap().signed);
        // Trailing data after a valid envelope is refused by every path.
        let text = doc.replace("TARGETS", &format!(r#"{{"a":{entry}}}"#)) + "x";
        assert!(SignedRef::<TargetsHead>::from_slice_fast(text.as_bytes()).is_none());
        assert!(Signed::<TargetsHead>::from_slice(text.as_bytes()).is_err());
    }

    fn head_of(t: &Targets) -> TargetsHead {
        TargetsHead {
            type_: t.type_.clone(),
            spec_version: t.spec_version.clone(),
            version: t.version,
            expires: t.expires,
            target_count: t.targets.len(),
            delegations: t.delegations.clone(),
            extra: t.extra.clone(),
        }
    }

    #[test]
    fn strictness_holds_for_whole_envelopes() {
        // Each case has exactly one fault, shown by its twin without the fault parsing fine:
        // a duplicate key in an otherwise valid signature, a float where any JSON value is
        // allowed (an unknown field), a duplicate key at the top of `signed`.
        let key = PrivateKey::generate(KeyType::Ed25519).unwrap();
        let mut t = Signed::new(Targets::new(1, expires())).unwrap();
        t.sign(&key).unwrap();
        let text = String::from_utf8(t.to_bytes()).unwrap();
        let sig = format!("\"sig\":\"{}\"", t.signatures[0].sig);
        let cases = [
            (
                sig.clone(),
                format!("{sig},{sig}"),
                format!("{sig},\"x-sig\":\"\""),
                "invalid JSON: duplicate object key \"sig\"",
            ),
            (
                "\"version\":1".to_owned(),
                "\"version\":1,\"x-note\":1.5".to_owned(),
                "\"version\":1,\"x-note\":15".to_owned(),
                "invalid JSON: number 1.5 is not an integer that fits in 64 bits",
            ),
            (
                "\"version\":1".to_owned(),
                "\"version\":1,\"version\":1".to_owned(),
                "\"version\":1,\"x-version\":1".to_owned(),
                "invalid JSON: duplicate object key \"version\"",
            ),
        ];
        for (from, bad, twin, refusal) in cases {
            let bad = text.replacen(&from, &bad, 1);
            let twin = text.replacen(&from, &twin, 1);
            assert!(bad != text && twin != text, "{from} is not in {text}");
            let ok = Signed::<Targets>::from_slice(twin.as_bytes()).unwrap();
            assert_eq!(ok.signatures.len(), 1, "{twin}");
            let err = Signed::<Targets>::from_slice(bad.as_bytes()).unwrap_err();
            assert!(matches!(err, Error::Json(_)), "{bad}: {err:?}");
            assert!(err.to_string().starts_with(refusal), "{bad}: {err}");
        }
    }

    #[test]
    fn wrong_type_is_named() {
        let t = Signed::new(Targets::new(1, expires())).unwrap();
        let err = Signed::<Root>::from_slice(&t.to_bytes()).unwrap_err();
        assert!(
            matches!(
                err,
                Error::WrongType {
                    expected: "root",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn duplicate_signature_keyids_are_rejected() {
        let key = PrivateKey::generate(KeyType::Ed25519).unwrap();
        let mut env = Signed::new(Targets::new(1, expires())).unwrap();
        env.sign(&key).unwrap();
        let s = env.signatures[0].clone();
        env.signatures.push(s);
        let err = Signed::<Targets>::from_slice(&env.to_bytes()).unwrap_err();
        assert!(matches!(err, Error::DuplicateSignature(_)));
    }

    #[test]
    fn root_needs_all_four_roles() {
        let key = PrivateKey::generate(KeyType::Ed25519).unwrap();
        let env = Signed::new(sample_root(&key)).unwrap();
        let mut v: Value = serde_json::from_slice(&env.to_bytes()).unwrap();
        v["signed"]["roles"]
            .as_object_mut()
            .unwrap()
            .remove("snapshot");
        let err = Signed::<Root>::from_slice(&canonical::to_vec(&v).unwrap()).unwrap_err();
        assert!(err.to_string().contains("snapshot is missing"), "{err}");
    }

    #[test]
    fn zero_threshold_and_version_are_rejected() {
        let key = PrivateKey::generate(KeyType::Ed25519).unwrap();
        let env = Signed::new(sample_root(&key)).unwrap();
        let v: Value = serde_json::from_slice(&env.to_bytes()).unwrap();
        let mut a = v.clone();
        a["signed"]["roles"]["root"]["threshold"] = Value::from(0);
        assert_eq!(
            Signed::<Root>::from_value(a).unwrap_err().to_string(),
            "signed (root): threshold: 0 is not between 1 and 2^32-1"
        );
        let mut b = v;
        b["signed"]["version"] = Value::from(0);
        assert_eq!(
            Signed::<Root>::from_value(b).unwrap_err().to_string(),
            "signed (root): version must be at least 1"
        );
    }

    #[test]
    fn timestamp_meta_must_be_snapshot_only() {
        let ts = Timestamp::new(1, expires(), MetaFile::new(1));
        let env = Signed::new(ts).unwrap();
        let mut v: Value = serde_json::from_slice(&env.to_bytes()).unwrap();
        v["signed"]["meta"]["other.json"] = serde_json::json!({"version": 1});
        assert_eq!(
            Signed::<Timestamp>::from_value(v).unwrap_err().to_string(),
            "signed (timestamp): meta must hold exactly one entry, snapshot.json"
        );
    }

    #[test]
    fn target_paths_and_role_names_cannot_leave_their_directory() {
        for (bad, why) in [
            ("", "is empty"),
            ("/etc/passwd", "starts with /"),
            ("../x", "has a . or .. segment"),
            ("a/../../x", "has a . or .. segment"),
            ("a/./b", "has a . or .. segment"),
            ("..", "has a . or .. segment"),
            ("a//b", "has an empty segment (// or a trailing /)"),
            ("a/", "has an empty segment (// or a trailing /)"),
            ("a\0b", "contains NUL"),
        ] {
            assert_eq!(
                check_target_path(bad).unwrap_err().to_string(),
                format!("targets: path {bad:?}: {why}")
            );
        }
        for good in [
            "a",
            "a/b/c.bin",
            "ünï/ファイル",
            "a..b/.hidden",
            "a\\b",
            "..a",
        ] {
            check_target_path(good).unwrap();
        }
        for bad in ["", ".", "..", "a/b", "a\\b", "x\0"] {
            assert_eq!(
                check_role_name(bad).unwrap_err().to_string(),
                format!(
                    "delegations: role name {bad:?}: must not be empty, . or .., nor contain /, \\ \
                     or NUL"
                )
            );
        }
        check_role_name("releases-2024.1").unwrap();
        let v = serde_json::json!({"_type": "targets", "spec_version": "1.0.34", "version": 1,
            "expires": "2030-01-01T00:00:00Z",
            "targets": {"../escape": {"length": 1, "hashes": {"sha256": "00"}}}});
        // Free-form in metadata (the spec allows it); only input we accept is checked.
        let t = Targets::deserialize(&v).unwrap();
        assert!(t.targets.contains_key("../escape"));
    }

    #[test]
    fn a_role_removed_after_parsing_fails_closed() {
        let key = PrivateKey::generate(KeyType::Ed25519).unwrap();
        let mut root = sample_root(&key);
        root.roles.remove("targets");
        let r = root.role(Role::Targets);
        assert!(r.keyids.is_empty());
        assert_eq!(r.threshold.get(), 1);
    }

    #[test]
    fn delegations_need_exactly_one_kind() {
        let v = serde_json::json!({"keys": {}, "roles": [{"name": "a", "keyids": [],
            "threshold": 1, "terminating": false, "paths": ["*"], "path_hash_prefixes": ["ab"]}]});
        assert_eq!(
            Delegations::deserialize(&v).unwrap_err().to_string(),
            "delegated role \"a\": exactly one of paths and path_hash_prefixes must be set"
        );
        let v = serde_json::json!({"keys": {}});
        assert_eq!(
            Delegations::deserialize(&v).unwrap_err().to_string(),
            "delegations: exactly one of roles and succinct_roles must be present"
        );
        let v = serde_json::json!({"keys": {}, "roles": [{"name": "a", "keyids": [],
            "threshold": 1, "terminating": false, "paths": ["*"]}]});
        let d = Delegations::deserialize(&v).unwrap();
        assert_eq!(d.roles.unwrap()[0].name, "a");
    }
}
