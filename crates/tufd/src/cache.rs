//! In-process caches in front of the store. Correctness never depends on them:
//!
//! - Versioned metadata (`N.snapshot.json`, ...) never changes once stored (the primary key
//!   refuses a reused version), so it is cached by version on every backend: one version per
//!   Factory, flavour and role (the last one read), so a CI pipeline publishing version
//!   after version of a 20 MB targets.json does not leave every one of them in memory.
//! - Exception: versioned production targets. An online-key rotation replaces the online
//!   signature of the current version in place (the offline signature stays valid only on
//!   the same signed bytes), so they are treated like heads below.
//! - Unversioned heads (`timestamp.json`, `root.json`, ...) are cached per Factory. Every
//!   commit that publishes metadata of a Factory bumps *that Factory's* generation counter
//!   after commit, and an entry is served only while the generation it was read under is
//!   current, so a reader that raced a commit can never pin stale bytes, and a CI pipeline
//!   writing to one Factory leaves every other Factory's cached heads alone.
//! - With PostgreSQL, other replicas write too. By default heads are not cached there, so a
//!   read on any replica sees every replica's last commit. With `--replica-head-cache-ms N`
//!   they are: each commit is announced on a notification channel (`announce`), every
//!   replica bumps the Factory's generation when it hears it, a lost channel forgets every
//!   cached head, and no head is served older than N ms, so a late notification delays an
//!   update by at most that. Devices poll and tolerate a head that is N ms old.
//! - The stored bytes of the CI targets role, keyed by their SHA-256, spare the CI signing
//!   path a read of a large targets.json from the store. A miss or mismatch re-reads it.
//!   Bytes, not a parsed tree: a tree of 100,000 targets takes about fifteen times the file.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::HeaderValue;
use tuf_core::Role;

use crate::repo::Flavour;

/// Upper bound of cached metadata bytes; past it the file cache starts over.
const MAX_BYTES: usize = 256 * 1024 * 1024;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FileKey {
    pub factory: String,
    pub flavour: Flavour,
    pub role: Role,
    pub version: Option<i64>,
}

impl FileKey {
    /// Whether the stored bytes behind this key may change: heads, and versioned
    /// production targets (see the module documentation).
    pub fn mutable(&self) -> bool {
        self.version.is_none() || (self.role == Role::Targets && self.flavour == Flavour::Prod)
    }
}

/// Where a [`FileKey`] is cached: one slot for a role's head and one for a version of it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Slot {
    factory: String,
    flavour: Flavour,
    role: Role,
    versioned: bool,
}

impl Slot {
    fn of(key: &FileKey) -> Self {
        Self {
            factory: key.factory.clone(),
            flavour: key.flavour,
            role: key.role,
            versioned: key.version.is_some(),
        }
    }
}

struct Cached {
    version: Option<i64>,
    body: Bytes,
    etag: HeaderValue,
    generation: Generation,
    read_at: Instant,
}

/// Who else writes the store, and so how long a cached head may be served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Heads {
    /// This process is the store's only writer (the embedded SQLite store): a head is
    /// current until this process publishes.
    Owned,
    /// Other replicas write too (PostgreSQL): a head is current until a notification says
    /// otherwise, and never longer than this (`--replica-head-cache-ms`).
    Shared(Duration),
    /// Other replicas write too and heads are not cached: every read sees the last commit
    /// of any replica (the default on PostgreSQL).
    Uncached,
}

/// What a cached mutable entry was read under: the cache-wide epoch (bumped when every
/// head must be forgotten) and the Factory's own counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Generation {
    epoch: u64,
    factory: u64,
}

impl Generation {
    /// What this generation becomes once this process announces one commit
    /// ([`Cache::published`]) and nothing else is published meanwhile.
    pub fn after_commit(self) -> Self {
        Self {
            factory: self.factory.wrapping_add(1),
            ..self
        }
    }
}

pub struct Cache {
    heads: Heads,
    epoch: AtomicU64,
    generations: RwLock<HashMap<String, u64>>,
    files: RwLock<HashMap<Slot, Cached>>,
    bytes: AtomicUsize,
    targets: Mutex<HashMap<(String, Flavour), StoredTargets>>,
}

/// The SHA-256 of stored targets bytes and the bytes.
type StoredTargets = (String, Bytes);

/// Upper bound of the targets bytes kept for the CI signing path.
const MAX_TARGETS_BYTES: usize = 64 * 1024 * 1024;

impl Cache {
    pub fn new(heads: Heads) -> Self {
        Self {
            heads,
            epoch: AtomicU64::new(0),
            generations: RwLock::new(HashMap::new()),
            files: RwLock::new(HashMap::new()),
            bytes: AtomicUsize::new(0),
            targets: Mutex::new(HashMap::new()),
        }
    }

    /// Read before querying the store for `factory`; pass to [`Cache::put`].
    pub fn generation(&self, factory: &str) -> Generation {
        // The epoch first: a bump between the two reads makes the entry stale, never current.
        let epoch = self.epoch.load(Ordering::Acquire);
        let factory = self
            .generations
            .read()
            .map(|g| g.get(factory).copied().unwrap_or(0))
            .unwrap_or(u64::MAX);
        Generation { epoch, factory }
    }

    /// Called after every commit that published metadata of `factory` (here, or on another
    /// replica when its notification arrives).
    pub fn published(&self, factory: &str) {
        if let Ok(mut g) = self.generations.write() {
            let n = g.entry(factory.to_owned()).or_insert(0);
            *n = n.wrapping_add(1);
        } else {
            self.forget_heads();
        }
    }

    /// Every cached head is stale from now on (a lost notification channel: what it would
    /// have said is unknown).
    pub fn forget_heads(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    pub fn get(&self, key: &FileKey) -> Option<(Bytes, HeaderValue)> {
        if key.mutable() && self.heads == Heads::Uncached {
            return None;
        }
        let files = self.files.read().ok()?;
        let hit = files
            .get(&Slot::of(key))
            .filter(|c| c.version == key.version)?;
        if key.mutable() && !self.current(key, hit) {
            return None;
        }
        Some((hit.body.clone(), hit.etag.clone()))
    }

    fn current(&self, key: &FileKey, hit: &Cached) -> bool {
        let young = match self.heads {
            Heads::Owned => true,
            Heads::Shared(bound) => hit.read_at.elapsed() < bound,
            Heads::Uncached => false,
        };
        young && hit.generation == self.generation(&key.factory)
    }

    pub fn put(&self, key: FileKey, body: Bytes, etag: HeaderValue, generation: Generation) {
        if key.mutable() && self.heads == Heads::Uncached {
            return;
        }
        let Ok(mut files) = self.files.write() else {
            return;
        };
        let size = body.len();
        if self.bytes.fetch_add(size, Ordering::Relaxed) + size > MAX_BYTES {
            files.clear();
            self.bytes.store(size, Ordering::Relaxed);
        }
        let entry = Cached {
            version: key.version,
            body,
            etag,
            generation,
            read_at: Instant::now(),
        };
        if let Some(old) = files.insert(Slot::of(&key), entry) {
            self.bytes.fetch_sub(
                old.body.len().min(self.bytes.load(Ordering::Relaxed)),
                Ordering::Relaxed,
            );
        }
    }

    /// Stops serving the cached head of `role` of `factory`'s `flavour` (the next read comes
    /// from the store).
    pub fn forget_head(&self, factory: &str, flavour: Flavour, role: Role) {
        let slot = Slot {
            factory: factory.to_owned(),
            flavour,
            role,
            versioned: false,
        };
        if let Ok(mut files) = self.files.write() {
            if let Some(old) = files.remove(&slot) {
                self.bytes.fetch_sub(
                    old.body.len().min(self.bytes.load(Ordering::Relaxed)),
                    Ordering::Relaxed,
                );
            }
        }
    }

    /// `body` is the head of `flavour`'s targets of `factory` as of `generation`: kept for
    /// the next CI commit and served as the head, one buffer for both. `generation` is read
    /// while the Factory's lock is held: as it is, when nothing was published, or
    /// [`Generation::after_commit`] of it, for the commit that stored `body` (the lock is
    /// gone once that commits, so a later commit of another writer may be announced first:
    /// then the entry is stale from the start and never served).
    pub fn published_targets(
        &self,
        factory: &str,
        flavour: Flavour,
        (sha256, body): (String, Bytes),
        generation: Generation,
    ) {
        if let Ok(etag) = HeaderValue::from_str(&format!("\"{sha256}\"")) {
            let key = FileKey {
                factory: factory.to_owned(),
                flavour,
                role: Role::Targets,
                version: None,
            };
            self.put(key, body.clone(), etag, generation);
        }
        self.keep_targets(factory, flavour, sha256, body);
    }

    /// Takes the kept targets bytes of a flavour if they are the bytes with `sha256`.
    pub fn take_targets(&self, factory: &str, flavour: Flavour, sha256: &str) -> Option<Bytes> {
        let mut map = self.targets.lock().ok()?;
        let (sha, bytes) = map.remove(&(factory.to_owned(), flavour))?;
        (sha == sha256).then_some(bytes)
    }

    pub fn keep_targets(&self, factory: &str, flavour: Flavour, sha256: String, bytes: Bytes) {
        if let Ok(mut map) = self.targets.lock() {
            // A write-path shortcut, not a store: past the bound it starts over.
            let held: usize = map.values().map(|(_, b)| b.len()).sum();
            if held + bytes.len() > MAX_TARGETS_BYTES {
                map.clear();
            }
            map.insert((factory.to_owned(), flavour), (sha256, bytes));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(factory: &str) -> FileKey {
        FileKey {
            factory: factory.to_owned(),
            flavour: Flavour::Ci,
            role: Role::Timestamp,
            version: None,
        }
    }

    fn versioned(factory: &str) -> FileKey {
        FileKey {
            version: Some(3),
            role: Role::Snapshot,
            ..head(factory)
        }
    }

    /// Reads `key` as a handler does: the generation first, then the "store", then `put`.
    fn fill(cache: &Cache, key: &FileKey, body: &'static [u8]) {
        let g = cache.generation(&key.factory);
        let etag = HeaderValue::from_static("\"e\"");
        cache.put(key.clone(), Bytes::from_static(body), etag, g);
    }

    fn body(cache: &Cache, key: &FileKey) -> Option<Bytes> {
        cache.get(key).map(|(b, _)| b)
    }

    #[test]
    fn a_commit_to_one_factory_leaves_the_others_cached() {
        let cache = Cache::new(Heads::Owned);
        for f in ["a", "b"] {
            fill(&cache, &head(f), b"v1");
            fill(&cache, &versioned(f), b"3");
        }
        cache.published("a");
        assert_eq!(body(&cache, &head("a")), None);
        assert_eq!(body(&cache, &head("b")).as_deref(), Some(&b"v1"[..]));
        // Versioned metadata never changes: it stays.
        assert_eq!(body(&cache, &versioned("a")).as_deref(), Some(&b"3"[..]));
        fill(&cache, &head("a"), b"v2");
        assert_eq!(body(&cache, &head("a")).as_deref(), Some(&b"v2"[..]));
    }

    #[test]
    fn one_version_of_a_role_is_kept() {
        let cache = Cache::new(Heads::Owned);
        let at = |version| FileKey {
            version: Some(version),
            ..versioned("a")
        };
        fill(&cache, &head("a"), b"head");
        fill(&cache, &at(3), b"3");
        fill(&cache, &at(4), b"4");
        assert_eq!(body(&cache, &at(3)), None, "replaced by version 4");
        assert_eq!(body(&cache, &at(4)).as_deref(), Some(&b"4"[..]));
        assert_eq!(body(&cache, &head("a")).as_deref(), Some(&b"head"[..]));
        // The bytes a replaced entry held are no longer counted against the bound.
        assert_eq!(cache.bytes.load(Ordering::Relaxed), b"head".len() + 1);
    }

    #[test]
    fn published_targets_are_served_and_kept_from_one_buffer() {
        let cache = Cache::new(Heads::Owned);
        let targets = FileKey {
            role: Role::Targets,
            ..head("a")
        };
        fill(&cache, &targets, b"old");
        let under_lock = cache.generation("a");
        cache.published("a");
        let new = Bytes::from_static(b"new");
        let stored = ("ab".repeat(32), new.clone());
        cache.published_targets("a", Flavour::Ci, stored, under_lock.after_commit());
        let (served, etag) = cache.get(&targets).expect("served");
        assert_eq!(served, new);
        assert_eq!(etag, format!("\"{}\"", "ab".repeat(32)).as_str());
        assert_eq!(
            cache.take_targets("a", Flavour::Ci, &"ab".repeat(32)),
            Some(new)
        );
        // A later commit (here or on another replica) makes both stale.
        cache.published("a");
        assert_eq!(body(&cache, &targets), None);
    }

    #[test]
    fn targets_committed_before_another_writers_commit_are_never_served() {
        let cache = Cache::new(Heads::Owned);
        let targets = FileKey {
            role: Role::Targets,
            ..head("a")
        };
        // Writer A commits v10 under the lock, then is slow to announce: writer B commits
        // v11 and announces first, then A announces and caches v10.
        let a = cache.generation("a");
        cache.published("a");
        cache.published("a");
        let stored = ("10".repeat(32), Bytes::from_static(b"v10"));
        cache.published_targets("a", Flavour::Ci, stored, a.after_commit());
        assert_eq!(body(&cache, &targets), None, "v10 is not the head any more");
    }

    #[test]
    fn a_read_that_raced_a_commit_is_never_served() {
        let cache = Cache::new(Heads::Owned);
        let before = cache.generation("a");
        // The commit lands (and is announced) while the reader holds the old bytes.
        cache.published("a");
        let etag = HeaderValue::from_static("\"e\"");
        cache.put(head("a"), Bytes::from_static(b"old"), etag, before);
        assert_eq!(body(&cache, &head("a")), None);
    }

    #[test]
    fn a_lost_channel_forgets_every_head_and_no_version() {
        let cache = Cache::new(Heads::Shared(Duration::from_secs(3600)));
        for f in ["a", "b"] {
            fill(&cache, &head(f), b"v1");
            fill(&cache, &versioned(f), b"3");
        }
        assert!(body(&cache, &head("b")).is_some());
        cache.forget_heads();
        for f in ["a", "b"] {
            assert_eq!(body(&cache, &head(f)), None, "{f}");
            assert!(body(&cache, &versioned(f)).is_some(), "{f}");
        }
    }

    #[test]
    fn shared_heads_age_out_and_uncached_heads_are_never_kept() {
        let aged = Cache::new(Heads::Shared(Duration::ZERO));
        fill(&aged, &head("a"), b"v1");
        assert_eq!(body(&aged, &head("a")), None);
        let uncached = Cache::new(Heads::Uncached);
        fill(&uncached, &head("a"), b"v1");
        fill(&uncached, &versioned("a"), b"3");
        assert_eq!(body(&uncached, &head("a")), None);
        assert!(body(&uncached, &versioned("a")).is_some());
    }
}
