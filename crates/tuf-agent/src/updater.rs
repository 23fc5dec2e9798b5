//! The client workflow of the TUF specification, section 5, in its order: fixed start time,
//! trusted root, root chain, timestamp, snapshot, targets, delegation search.

use std::path::{Path, PathBuf};

use time::OffsetDateTime;
use tuf_core::{Role, TargetFile};

use crate::artifact;
use crate::error::Repository;
use crate::fetch::{Fetched, Fetcher};
use crate::release::{self, Release};
use crate::store::{encode_name, MetadataStore};
use crate::tls::TlsOptions;
use crate::trusted::{TimestampUpdate, TrustedSet};
use crate::Error;

/// Caps that bound what a hostile repository can make a device download or walk.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest root file read.
    pub root_max: u64,
    /// Largest timestamp file read.
    pub timestamp_max: u64,
    /// Used when timestamp lists no length for snapshot.
    pub snapshot_max: u64,
    /// Used when snapshot lists no length for a targets role.
    pub targets_max: u64,
    /// Root versions fetched in one update cycle.
    pub max_root_rotations: u64,
    /// Targets roles visited in one delegation search.
    pub max_delegations: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            root_max: 512 * 1024,
            timestamp_max: 16 * 1024,
            snapshot_max: 32 * 1024 * 1024,
            targets_max: 32 * 1024 * 1024,
            max_root_rotations: 256,
            max_delegations: 32,
        }
    }
}

/// Where the repository and the local state are.
#[derive(Clone, Debug)]
pub struct UpdaterConfig {
    /// Base URL of the metadata, e.g. `https://host/repo/acme/prod/metadata/`.
    pub metadata_url: String,
    /// Where the trusted metadata is kept (the device's state).
    pub metadata_dir: PathBuf,
    /// Caps on what a repository can make the device read.
    pub limits: Limits,
    /// CAs to trust and the client certificate to show.
    pub tls: TlsOptions,
}

/// One update cycle of one device.
pub struct Updater {
    metadata_url: String,
    limits: Limits,
    store: MetadataStore,
    fetcher: Fetcher,
    trusted: TrustedSet,
    refreshed: bool,
    /// Set when this cycle's root update rotated timestamp or snapshot keys (5.3.11): the
    /// stored copies must not serve as rollback references. They are not deleted, so a cycle
    /// that then fails leaves the last trusted files in place; the next successful download
    /// overwrites them, and copies signed by removed keys no longer verify anyway.
    fast_forward_recovery: bool,
}

impl Updater {
    /// Records the fixed update start time (5.1) and loads the trusted root from the metadata
    /// directory (5.2).
    pub fn new(config: UpdaterConfig) -> Result<Self, Error> {
        let now = OffsetDateTime::now_utc();
        let store = MetadataStore::new(config.metadata_dir);
        let root = store.load("root", config.limits.root_max)?.ok_or_else(|| {
            Error::Config(format!(
                "no trusted root in {}: run `tuf-agent init` first",
                store.dir().display()
            ))
        })?;
        let mut trusted = TrustedSet::new(&root, now)?;
        trusted.set_repository(Repository::from_metadata_url(&config.metadata_url));
        let mut metadata_url = config.metadata_url;
        if !metadata_url.ends_with('/') {
            metadata_url.push('/');
        }
        Ok(Self {
            metadata_url,
            limits: config.limits,
            store,
            fetcher: Fetcher::new(&config.tls)?,
            trusted,
            refreshed: false,
            fast_forward_recovery: false,
        })
    }

    /// The metadata the device trusts now.
    pub fn trusted(&self) -> &TrustedSet {
        &self.trusted
    }

    /// Updates root, timestamp, snapshot and top-level targets (5.3 to 5.6.6).
    pub fn refresh(&mut self) -> Result<(), Error> {
        self.update_root()?;
        self.update_timestamp()?;
        self.update_snapshot()?;
        self.load_targets("targets", "root")?;
        self.refreshed = true;
        Ok(())
    }

    /// Finds `path` by a pre-order depth-first search of the delegation graph (5.6.7),
    /// refreshing first if this cycle has not yet.
    pub fn target_info(&mut self, path: &str) -> Result<Option<TargetFile>, Error> {
        if !self.refreshed {
            self.refresh()?;
        }
        let mut to_visit: Vec<(String, String)> = vec![("targets".to_owned(), "root".to_owned())];
        let mut visited: Vec<String> = Vec::new();
        while visited.len() < self.limits.max_delegations {
            let Some((role, delegator)) = to_visit.pop() else {
                break;
            };
            if visited.contains(&role) {
                continue;
            }
            self.load_targets(&role, &delegator)?;
            if let Some(found) = self.trusted.target_in(&role, path)? {
                return Ok(Some(found));
            }
            let Some(targets) = self.trusted.targets(&role) else {
                return Err(Error::NotDelegated { role });
            };
            let mut children = Vec::new();
            if let Some(d) = &targets.delegations {
                if let Some(roles) = &d.roles {
                    for r in roles.iter().filter(|r| r.is_delegated_path(path)) {
                        children.push((r.name.clone(), role.clone()));
                        if r.terminating {
                            // A terminating role ends the search past it, siblings and
                            // everything still queued above it included.
                            to_visit.clear();
                            break;
                        }
                    }
                } else if let Some(s) = &d.succinct_roles {
                    children.push((s.role_for_target(path), role.clone()));
                }
            }
            visited.push(role);
            to_visit.extend(children.into_iter().rev());
        }
        Ok(None)
    }

    /// The newest release for `hardware_id` (and `tag`) over the top-level targets role and
    /// every delegated role the search can reach (`update`).
    ///
    /// Candidates are collected from each reachable role, keeping only paths that every
    /// delegation on the way to that role covers; the best one is then confirmed by the same
    /// pre-order search [`Updater::target_info`] runs for a download, so precedence between
    /// roles and terminating delegations apply exactly as they do there.
    pub fn newest_release(
        &mut self,
        hardware_id: &str,
        tag: Option<&str>,
    ) -> Result<Option<Release>, Error> {
        if !self.refreshed {
            self.refresh()?;
        }
        let mut candidates = Vec::new();
        // (role, chain of (delegator, role) edges from the top-level targets role)
        let mut to_visit: Vec<(String, Vec<(String, String)>)> =
            vec![("targets".to_owned(), Vec::new())];
        // By (delegator, role): a role delegated by two roles is verified, and its targets
        // filtered, on each path.
        let mut visited: Vec<(String, String)> = Vec::new();
        while visited.len() < self.limits.max_delegations {
            let Some((role, chain)) = to_visit.pop() else {
                break;
            };
            let delegator = chain.last().map_or("root", |(d, _)| d.as_str()).to_owned();
            let edge = (delegator, role);
            if visited.contains(&edge) {
                continue;
            }
            let (delegator, role) = edge;
            self.load_targets(&role, &delegator)?;
            let Some(targets) = self.trusted.targets_full(&role)? else {
                return Err(Error::NotDelegated { role });
            };
            for c in release::candidates(&targets, hardware_id, tag) {
                if chain.iter().all(|(d, r)| self.delegates(d, r, &c.path)) {
                    candidates.push(c);
                }
            }
            let mut children = Vec::new();
            if let Some(d) = &targets.delegations {
                if let Some(roles) = &d.roles {
                    children.extend(roles.iter().map(|r| r.name.clone()));
                } else if let Some(s) = &d.succinct_roles {
                    // Bins past the visit cap could never be loaded anyway.
                    let bins = s.bin_count().min(self.limits.max_delegations as u64);
                    children.extend((0..bins).map(|b| s.bin_name(b)));
                }
            }
            for child in children.into_iter().rev() {
                let mut next = chain.clone();
                next.push((role.clone(), child.clone()));
                to_visit.push((child, next));
            }
            visited.push((delegator, role));
        }
        release::sort_newest_first(&mut candidates)?;
        for c in candidates {
            if self.target_info(&c.path)?.as_ref() == Some(&c.info) {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }

    /// Whether trusted role `delegator` delegates `path` to `role`.
    fn delegates(&self, delegator: &str, role: &str, path: &str) -> bool {
        let Some(d) = self
            .trusted
            .targets(delegator)
            .and_then(|t| t.delegations.as_ref())
        else {
            return false;
        };
        if let Some(roles) = &d.roles {
            return roles
                .iter()
                .any(|r| r.name == role && r.is_delegated_path(path));
        }
        d.succinct_roles
            .as_ref()
            .is_some_and(|s| s.role_for_target(path) == role)
    }

    /// Downloads `info` (found as `path`) into `target_dir` unless a verified copy is there
    /// already; returns the local file.
    pub fn download_target(
        &self,
        path: &str,
        info: &TargetFile,
        target_dir: &Path,
        target_base_url: &str,
    ) -> Result<PathBuf, Error> {
        let local = artifact::local_path(target_dir, path)?;
        if artifact::is_cached(&local, info) {
            return Ok(local);
        }
        let prefix_hash = self.trusted.root().consistent_snapshot();
        let url = artifact::url(target_base_url, path, info, prefix_hash);
        artifact::download(&self.fetcher, &url, path, info, &local)?;
        Ok(local)
    }

    /// Root chain (5.3): N+1 until the repository has none, then the final checks.
    fn update_root(&mut self) -> Result<(), Error> {
        let original = self.trusted.root().clone();
        for _ in 0..self.limits.max_root_rotations {
            let next = self.trusted.root().version.saturating_add(1);
            let url = format!("{}{next}.root.json", self.metadata_url);
            let bytes = match self.fetcher.fetch_optional(&url, self.limits.root_max)? {
                Fetched::Found(bytes) => bytes,
                Fetched::Missing(_) => break,
            };
            self.trusted.update_root(&bytes)?;
            self.store.save("root", &bytes)?;
        }
        self.trusted.check_final_root()?;
        let rotated = |role| self.trusted.role_keys_changed(&original, role);
        if rotated(Role::Timestamp) || rotated(Role::Snapshot) {
            self.fast_forward_recovery = true;
        }
        Ok(())
    }

    /// The stored copy of `role`, unless fast-forward recovery set it aside this cycle. A copy
    /// that cannot be read is no reference either.
    fn stored_reference(&self, role: &str, max: u64) -> Option<Vec<u8>> {
        if self.fast_forward_recovery {
            return None;
        }
        self.store.load(role, max).ok().flatten()
    }

    /// Timestamp (5.4). The stored timestamp, if it still verifies, is the rollback reference.
    fn update_timestamp(&mut self) -> Result<(), Error> {
        if let Some(local) = self.stored_reference("timestamp", self.limits.timestamp_max) {
            // A stored copy that no longer verifies is simply not a reference any more.
            let _ = self.trusted.load_local_timestamp(&local);
        }
        let url = format!("{}timestamp.json", self.metadata_url);
        let bytes = self.fetcher.fetch(&url, self.limits.timestamp_max)?;
        if self.trusted.update_timestamp(&bytes)? == TimestampUpdate::Updated {
            self.store.save("timestamp", &bytes)?;
        }
        Ok(())
    }

    /// Snapshot (5.5). A stored snapshot that is still current saves the download; one that is
    /// not serves as the rollback reference for the new one.
    fn update_snapshot(&mut self) -> Result<(), Error> {
        let meta = self.trusted.final_timestamp()?.snapshot_meta();
        let (version, length) = (meta.version, meta.length);
        if let Some(local) = self.stored_reference("snapshot", self.limits.snapshot_max) {
            if let Ok(true) = self.trusted.load_local_snapshot(&local) {
                return Ok(());
            }
        }
        let name = if self.trusted.root().consistent_snapshot() {
            format!("{version}.snapshot.json")
        } else {
            "snapshot.json".to_owned()
        };
        let limit = length.map_or(self.limits.snapshot_max, |l| {
            l.min(self.limits.snapshot_max)
        });
        let url = format!("{}{name}", self.metadata_url);
        let bytes = self.fetcher.fetch(&url, limit)?;
        self.trusted.update_snapshot(&bytes)?;
        self.store.save("snapshot", &bytes)
    }

    /// A targets role (5.6): already loaded this cycle, a stored copy that still matches the
    /// snapshot, or a download.
    fn load_targets(&mut self, role: &str, delegator: &str) -> Result<(), Error> {
        if self.trusted.targets(role).is_some() {
            // Loaded via some delegator this cycle; this path's delegator must vouch too.
            return self.trusted.verify_delegation(role, delegator);
        }
        let entry = self.trusted.snapshot_entry(role)?;
        let (version, length) = (entry.version, entry.length);
        let limit = length.map_or(self.limits.targets_max, |l| l.min(self.limits.targets_max));
        if let Ok(Some(local)) = self.store.load(role, limit) {
            if self.trusted.update_targets(role, delegator, local).is_ok() {
                return Ok(());
            }
        }
        let name = if self.trusted.root().consistent_snapshot() {
            format!("{version}.{}.json", encode_name(role))
        } else {
            format!("{}.json", encode_name(role))
        };
        let url = format!("{}{name}", self.metadata_url);
        let bytes = self.fetcher.fetch(&url, limit)?;
        self.trusted.update_targets(role, delegator, bytes)?;
        match self.trusted.targets_bytes(role) {
            Some(bytes) => self.store.save(role, bytes),
            // Invariant: `update_targets` succeeded, so the role is trusted now.
            None => Err(Error::NotDelegated {
                role: role.to_owned(),
            }),
        }
    }
}

// These tests sign their metadata with tuf-core's signing keys (aws-lc); the pure-Rust build
// verifies only, and runs the integration tests against repositories python-tuf signed.
#[cfg(test)]
#[cfg(feature = "aws-lc")]
mod tests;
