//! Loading and atomically replacing a credentials file on disk.
//!
//! A save writes a temporary file beside the target (`.<name>.tmp-<pid>-<n>`, mode 0600),
//! fsyncs it, renames it over the target and fsyncs the directory. A crash leaves either the
//! old file or the new one, plus at worst a temporary file: [`leftover_temps`] finds those so
//! callers can explain them; they never block a later load or save.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use zeroize::Zeroizing;

use crate::archive::MAX_COMPRESSED;
use crate::Error;

/// A credentials file read from disk, with any leftover temporary files found beside it.
pub struct Loaded {
    /// The file's bytes as read, kept in zeroizing memory (they hold private keys).
    pub bytes: Zeroizing<Vec<u8>>,
    /// Temporary files from an interrupted save of this file (see [`leftover_temps`]).
    pub leftovers: Vec<PathBuf>,
}

/// Reads `path` (capped in size) and looks for leftover temporary files beside it.
pub fn load(path: &Path) -> Result<Loaded, Error> {
    let f = File::open(path).map_err(|e| Error::io("cannot open", path, e))?;
    let mut bytes = Zeroizing::new(Vec::new());
    f.take(MAX_COMPRESSED + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io("cannot read", path, e))?;
    if bytes.len() as u64 > MAX_COMPRESSED {
        return Err(Error::TooLarge {
            max: MAX_COMPRESSED,
        });
    }
    Ok(Loaded {
        bytes,
        leftovers: leftover_temps(path),
    })
}

/// Atomically replaces (or creates) `path` with `bytes`, mode 0600, durable on return.
/// Returns leftover temporary files of earlier interrupted saves (not this one's).
pub fn save_atomic(path: &Path, bytes: &[u8]) -> Result<Vec<PathBuf>, Error> {
    let leftovers = leftover_temps(path);
    let tmp = write_temp(path, bytes)?;
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io("cannot replace", path, e));
    }
    sync_dir(path)?;
    Ok(leftovers)
}

/// Like [`save_atomic`] but refuses to replace an existing file (even one created by
/// somebody else meanwhile: the final step is a hard link, which fails if `path` exists).
pub fn save_new(path: &Path, bytes: &[u8]) -> Result<Vec<PathBuf>, Error> {
    if path.symlink_metadata().is_ok() {
        return Err(Error::Exists {
            path: path.to_owned(),
        });
    }
    let leftovers = leftover_temps(path);
    let tmp = write_temp(path, bytes)?;
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Error::Exists {
                path: path.to_owned(),
            })
        }
        Err(e) => return Err(Error::io("cannot create", path, e)),
    }
    sync_dir(path)?;
    Ok(leftovers)
}

/// Temporary files beside `path` left by an interrupted save. The rename never happened for
/// them, so `path` itself is intact; each may hold a newer, complete copy.
pub fn leftover_temps(path: &Path) -> Vec<PathBuf> {
    let Some(file_name) = path.file_name().and_then(|n| n.to_str()) else {
        return Vec::new();
    };
    let prefix = format!(".{file_name}{TMP_MARK}");
    let dir = parent(path);
    let Ok(rd) = fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(&prefix))
        })
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

fn write_temp(path: &Path, bytes: &[u8]) -> Result<PathBuf, Error> {
    let file_name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
        Error::io(
            "invalid file name",
            path,
            std::io::ErrorKind::InvalidInput.into(),
        )
    })?;
    let dir = parent(path);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tmp = dir.join(format!(
        ".{file_name}{TMP_MARK}{}-{n}-{nanos}",
        std::process::id()
    ));
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| Error::io("cannot create temporary file", &tmp, e))?;
    let written = f.write_all(bytes).and_then(|_| f.sync_all());
    if let Err(e) = written {
        drop(f);
        let _ = fs::remove_file(&tmp);
        return Err(Error::io("cannot write", &tmp, e));
    }
    Ok(tmp)
}

fn sync_dir(path: &Path) -> Result<(), Error> {
    let dir = parent(path);
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("cannot sync directory", dir, e))
}

fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);
const TMP_MARK: &str = ".tmp-";
