//! What `update` keeps beside the targets: which target was installed last (`+installed`) and
//! which target files `update` wrote, oldest first (`+history`), so `--keep N` removes only
//! files of ours (and partial downloads left behind, `+partial-*`). `+` is always percent-encoded in target file names, so no target file can
//! take either name.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use percent_encoding::percent_decode_str;

use crate::artifact::PARTIAL_PREFIX;
use crate::{store, Error};

const INSTALLED: &str = "+installed";
const HISTORY: &str = "+history";
/// The history file is ours, but a target directory is no place to trust sizes blindly.
const HISTORY_MAX: u64 = 1024 * 1024;
/// Names beyond this (the oldest) are forgotten: never removed, but never unbounded either.
const HISTORY_ENTRIES: usize = 1000;

/// The record files of one target directory.
pub struct Installed {
    dir: PathBuf,
}

impl Installed {
    /// The records of `target_dir`.
    pub fn new(target_dir: &Path) -> Self {
        Self {
            dir: target_dir.to_owned(),
        }
    }

    /// Whether `record` (see [`Installed::record`]) is what the last install recorded.
    pub fn is_current(&self, record: &str) -> bool {
        fs::read_to_string(self.dir.join(INSTALLED)).is_ok_and(|r| r == record)
    }

    /// The record of an installed target: its path and SHA-256, one per line.
    pub fn record(path: &str, sha256: &str) -> String {
        format!("{path}\n{sha256}\n")
    }

    /// Notes that the last install succeeded with `record`.
    pub fn set_current(&self, record: &str) -> Result<(), Error> {
        store::write_atomic(&self.dir.join(INSTALLED), record.as_bytes())
    }

    /// Appends `file` (a file in the target directory) to the history, as its newest entry.
    pub fn note_written(&self, file: &Path) -> Result<(), Error> {
        let Some(name) = own_name(&self.dir, file) else {
            return Ok(());
        };
        let mut names = self.history()?;
        names.retain(|n| *n != name);
        names.push(name);
        let skip = names.len().saturating_sub(HISTORY_ENTRIES);
        let text: String = names[skip..].iter().map(|n| format!("{n}\n")).collect();
        store::write_atomic(&self.dir.join(HISTORY), text.as_bytes())
    }

    /// Keeps the `keep` newest files of the history (`current` always among them) and removes
    /// the older ones; returns the names removed. Only names the history lists are touched,
    /// and only regular files (a symlink put there is left alone).
    pub fn prune(&self, keep: usize, current: &Path) -> Result<Vec<String>, Error> {
        let current = own_name(&self.dir, current);
        let mut names = self.history()?;
        let mut kept: Vec<String> = Vec::new();
        let mut removed = Vec::new();
        // Newest first: the current file, then the others until `keep` are kept.
        if let Some(c) = &current {
            kept.push(c.clone());
        }
        names.reverse();
        for name in names {
            if Some(&name) == current.as_ref() {
                continue;
            }
            if kept.len() < keep.max(1) {
                kept.push(name);
                continue;
            }
            let path = self.dir.join(&name);
            match fs::symlink_metadata(&path) {
                Ok(m) if m.file_type().is_file() => {
                    fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
                    removed.push(name);
                }
                Ok(_) => kept.push(name), // not ours to remove; remembered as it was
                Err(e) if e.kind() == io::ErrorKind::NotFound => removed.push(name),
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
        kept.reverse();
        let text: String = kept.iter().map(|n| format!("{n}\n")).collect();
        store::write_atomic(&self.dir.join(HISTORY), text.as_bytes())?;
        removed.extend(self.remove_partials()?);
        Ok(removed)
    }

    /// Partial downloads left behind (of targets no longer the newest, once the newest is in
    /// place): only regular files named as [`crate::artifact::partial_path`] names them.
    fn remove_partials(&self) -> Result<Vec<String>, Error> {
        let mut removed = Vec::new();
        let entries = fs::read_dir(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&self.dir, e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(id) = name.strip_prefix(PARTIAL_PREFIX) else {
                continue;
            };
            let ours = id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit());
            if ours && entry.file_type().is_ok_and(|t| t.is_file()) {
                let path = entry.path();
                fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
                removed.push(name.to_owned());
            }
        }
        Ok(removed)
    }

    /// The history, oldest first; lines that cannot be a target file name of ours are dropped.
    fn history(&self) -> Result<Vec<String>, Error> {
        let path = self.dir.join(HISTORY);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(path, e)),
        };
        let mut text = String::new();
        file.take(HISTORY_MAX)
            .read_to_string(&mut text)
            .map_err(|e| Error::io(&path, e))?;
        Ok(text
            .lines()
            .filter(|n| is_target_file_name(n))
            .map(str::to_owned)
            .collect())
    }
}

/// The name of `file` when it is directly inside `dir` and could be a target file.
fn own_name(dir: &Path, file: &Path) -> Option<String> {
    if file.parent() != Some(dir) {
        return None;
    }
    let name = file.file_name()?.to_str()?;
    is_target_file_name(name).then(|| name.to_owned())
}

/// What [`crate::artifact::local_path`] can produce: the percent-encoded form of a target
/// path (so no `/`, and never one of our `+` records), other than `.` and `..`.
fn is_target_file_name(name: &str) -> bool {
    let Ok(decoded) = percent_decode_str(name).decode_utf8() else {
        return false;
    };
    !matches!(name, "" | "." | "..") && store::encode_name(&decoded) == name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn keeps_the_newest_and_never_touches_other_files() {
        let dir = tempfile::TempDir::new().unwrap();
        let d = dir.path();
        let installed = Installed::new(d);
        for n in ["fw-1", "fw-2", "fw-3", "fw-4"] {
            fs::write(d.join(n), n).unwrap();
            installed.note_written(&d.join(n)).unwrap();
        }
        fs::write(d.join("mine.conf"), "not written by update").unwrap();
        // fw-2 written again: it is newer than fw-3 now.
        installed.note_written(&d.join("fw-2")).unwrap();
        let removed = installed.prune(2, &d.join("fw-4")).unwrap();
        assert_eq!(removed, ["fw-3", "fw-1"]);
        assert_eq!(names(d), ["+history", "fw-2", "fw-4", "mine.conf"]);
        // The current file is kept even with keep 1 and when older in the history.
        let removed = installed.prune(1, &d.join("fw-2")).unwrap();
        assert_eq!(removed, ["fw-4"]);
        assert_eq!(names(d), ["+history", "fw-2", "mine.conf"]);
    }

    #[test]
    fn forged_history_lines_are_ignored() {
        let dir = tempfile::TempDir::new().unwrap();
        let d = dir.path();
        let outside = tempfile::TempDir::new().unwrap();
        fs::write(outside.path().join("x"), "x").unwrap();
        let escape = format!(
            "../{}/x",
            outside.path().file_name().unwrap().to_str().unwrap()
        );
        fs::write(d.join("+installed"), "keep me").unwrap();
        fs::write(
            d.join(HISTORY),
            format!("{escape}\n+installed\n..\n/etc/passwd\n"),
        )
        .unwrap();
        fs::write(d.join("fw-1"), "1").unwrap();
        let installed = Installed::new(d);
        installed.note_written(&d.join("fw-1")).unwrap();
        assert!(installed.prune(1, &d.join("fw-1")).unwrap().is_empty());
        assert!(outside.path().join("x").exists());
        assert!(d.join("+installed").exists());
        assert_eq!(fs::read_to_string(d.join(HISTORY)).unwrap(), "fw-1\n");
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_in_the_history_is_not_followed_or_removed() {
        let dir = tempfile::TempDir::new().unwrap();
        let d = dir.path();
        let outside = tempfile::TempDir::new().unwrap();
        fs::write(outside.path().join("x"), "x").unwrap();
        std::os::unix::fs::symlink(outside.path().join("x"), d.join("fw-1")).unwrap();
        fs::write(d.join("fw-2"), "2").unwrap();
        let installed = Installed::new(d);
        installed.note_written(&d.join("fw-1")).unwrap();
        installed.note_written(&d.join("fw-2")).unwrap();
        assert!(installed.prune(1, &d.join("fw-2")).unwrap().is_empty());
        assert!(d.join("fw-1").exists() && outside.path().join("x").exists());
    }
}
