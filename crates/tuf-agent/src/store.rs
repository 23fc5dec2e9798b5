//! The metadata directory: trusted metadata under non-versioned names (`root.json`,
//! `timestamp.json`, `snapshot.json`, `targets.json`, delegated roles percent-encoded),
//! byte-identical to what the repository served, replaced atomically.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::Error;

/// The metadata directory of one device.
pub struct MetadataStore {
    dir: PathBuf,
}

impl MetadataStore {
    /// The store of the metadata directory `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The metadata directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where `role`'s metadata lives.
    pub fn path(&self, role: &str) -> PathBuf {
        self.dir.join(format!("{}.json", encode_name(role)))
    }

    /// The stored bytes of `role`, or `None` when there is no such file. A file larger than
    /// `limit` is an error: it cannot be metadata we stored.
    pub fn load(&self, role: &str, limit: u64) -> Result<Option<Vec<u8>>, Error> {
        let path = self.path(role);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(path, e)),
        };
        // Sized from the file (never beyond the cap): one allocation, not a doubling series
        // that briefly holds up to three times a large role.
        let size = file.metadata().map_or(0, |m| m.len()).min(limit);
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        file.take(limit.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io(&path, e))?;
        if bytes.len() as u64 > limit {
            return Err(Error::TooLarge {
                what: path.display().to_string(),
                limit,
            });
        }
        Ok(Some(bytes))
    }

    /// Replaces `role`'s file with `bytes`, so that a crash leaves either the old or the new
    /// file, never a mix.
    pub fn save(&self, role: &str, bytes: &[u8]) -> Result<(), Error> {
        write_atomic(&self.path(role), bytes)
    }

    /// Removes `role`'s file if it exists.
    pub fn remove(&self, role: &str) -> Result<(), Error> {
        let path = self.path(role);
        match fs::remove_file(&path) {
            Ok(()) => sync_dir(&self.dir),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(path, e)),
        }
    }
}

/// Percent-encodes a role name or target path into one file name (as python-tuf's
/// `quote(name, "")` does): `/` is encoded, so the name cannot leave its directory.
pub fn encode_name(name: &str) -> String {
    utf8_percent_encode(name, NAME).to_string()
}

/// Writes `bytes` to a temporary file beside `path`, syncs it, renames it over `path` and syncs
/// the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let tmp = temp_path(path);
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io(&tmp, e));
    }
    commit(&tmp, path)
}

/// Renames a fully written and synced temporary file into place and syncs the directory.
pub fn commit(tmp: &Path, path: &Path) -> Result<(), Error> {
    if let Err(e) = fs::rename(tmp, path) {
        let _ = fs::remove_file(tmp);
        return Err(Error::io(path, e));
    }
    match path.parent() {
        Some(dir) => sync_dir(dir),
        None => Ok(()),
    }
}

/// A temporary name in the same directory (so the rename is atomic), unique per process.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

fn sync_dir(dir: &Path) -> Result<(), Error> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

/// Everything but ASCII letters, digits and `-._~` is encoded.
const NAME: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
