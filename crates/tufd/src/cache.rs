//! In-process caches in front of the store. Correctness never depends on them:
//!
//! - Versioned metadata (`N.snapshot.json`, ...) never changes once stored (the primary key
//!   refuses a reused version), so it is cached by version on every backend.
//! - Exception: versioned production targets. An online-key rotation replaces the online
//!   signature of the current version in place (the offline signature stays valid only on
//!   the same signed bytes), so they are treated like heads below.
//! - Unversioned heads (`timestamp.json`, `root.json`, ...) are cached only when this process
//!   is the store's only writer (the embedded SQLite store). Every commit that publishes
//!   metadata bumps a generation counter *after* commit, and an entry is served only while
//!   the generation it was read under is current, so a reader that raced a commit can never
//!   pin stale bytes. With PostgreSQL, other replicas write too, so heads always come from
//!   the database.
//! - The parsed head of a targets role, keyed by the SHA-256 of its stored bytes, spares the
//!   CI signing path a re-parse of a large targets.json. A miss or mismatch re-reads it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, RwLock};

use axum::body::Bytes;
use axum::http::HeaderValue;
use tuf_core::{Role, Signed, Targets};

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

struct Cached {
    body: Bytes,
    etag: HeaderValue,
    generation: u64,
}

pub struct Cache {
    heads: bool,
    generation: AtomicU64,
    files: RwLock<HashMap<FileKey, Cached>>,
    bytes: AtomicUsize,
    targets: Mutex<HashMap<(String, Flavour), ParsedTargets>>,
}

/// The SHA-256 of stored targets bytes and their parsed envelope.
type ParsedTargets = (String, Signed<Targets>);

impl Cache {
    /// `cache_heads`: whether this process is the store's only writer.
    pub fn new(cache_heads: bool) -> Self {
        Self {
            heads: cache_heads,
            generation: AtomicU64::new(0),
            files: RwLock::new(HashMap::new()),
            bytes: AtomicUsize::new(0),
            targets: Mutex::new(HashMap::new()),
        }
    }

    /// Read before querying the store; pass to [`Cache::put`].
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Called after every commit that published metadata.
    pub fn published(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    pub fn get(&self, key: &FileKey) -> Option<(Bytes, HeaderValue)> {
        if key.mutable() && !self.heads {
            return None;
        }
        let files = self.files.read().ok()?;
        let hit = files.get(key)?;
        if key.mutable() && hit.generation != self.generation() {
            return None;
        }
        Some((hit.body.clone(), hit.etag.clone()))
    }

    pub fn put(&self, key: FileKey, body: Bytes, etag: HeaderValue, generation: u64) {
        if key.mutable() && !self.heads {
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
        files.insert(
            key,
            Cached {
                body,
                etag,
                generation,
            },
        );
    }

    /// Takes the cached parsed targets of a flavour if they are the bytes with `sha256`.
    pub fn take_targets(
        &self,
        factory: &str,
        flavour: Flavour,
        sha256: &str,
    ) -> Option<Signed<Targets>> {
        let mut map = self.targets.lock().ok()?;
        let (sha, env) = map.remove(&(factory.to_owned(), flavour))?;
        (sha == sha256).then_some(env)
    }

    pub fn keep_targets(
        &self,
        factory: &str,
        flavour: Flavour,
        sha256: String,
        env: Signed<Targets>,
    ) {
        if let Ok(mut map) = self.targets.lock() {
            // A handful of Factories' parsed targets at most: this is a write-path shortcut,
            // not a store.
            if map.len() >= 16 {
                map.clear();
            }
            map.insert((factory.to_owned(), flavour), (sha256, env));
        }
    }
}
