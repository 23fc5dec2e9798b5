//! Files tufd keeps in its data directory: owner-only permissions and atomic replacement.
//!
//! Every file tufd creates is 0600 and every directory 0700: the process umask is 077 from
//! the start (SQLite's `-wal` and `-shm`, artifacts and temporary uploads included), and a
//! data directory the operator created beforehand, or one an older version left readable, is
//! tightened at start.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use anyhow::Context as _;

/// Sets the process umask to 077, before any file is created.
pub fn restrict_umask() {
    // SAFETY: umask(2) only swaps an integer in the process; it cannot fail and touches no
    // memory of ours. Called at start, before any thread that creates files exists.
    unsafe {
        libc::umask(0o077);
    }
}

/// Creates `dir` (and its parents) as 0700, or makes an existing one 0700.
pub fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    set_mode(dir, 0o700)
}

/// Makes every directory under `root` 0700 and every file 0600 (a pre-created data directory,
/// or files an older tufd left group- or world-readable). Symbolic links are not followed.
pub fn tighten(root: &Path) -> anyhow::Result<()> {
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        set_mode(&dir, 0o700)?;
        let entries =
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?;
        for entry in entries {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                set_mode(&entry.path(), 0o600)?;
            }
        }
    }
    Ok(())
}

/// How upload temporary files in `<data-dir>/tmp` are named: `upload-<random>`.
pub const UPLOAD_PREFIX: &str = "upload-";

/// Removes the upload temporary files a killed tufd left in `tmp` (an upload is streamed to
/// one before it reaches the artifact store; a crash leaves it behind). Run at start, before
/// the listener accepts anything, so no upload of this process can be in flight. Returns how
/// many files and bytes were removed.
pub fn remove_leftover_uploads(tmp: &Path) -> anyhow::Result<(u64, u64)> {
    let (mut files, mut bytes) = (0, 0);
    let entries = std::fs::read_dir(tmp).with_context(|| format!("reading {}", tmp.display()))?;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let ours = name.to_str().is_some_and(|n| n.starts_with(UPLOAD_PREFIX));
        if !ours || !entry.file_type()?.is_file() {
            continue;
        }
        let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
        std::fs::remove_file(entry.path())
            .with_context(|| format!("removing {}", entry.path().display()))?;
        files += 1;
        bytes += len;
    }
    if files > 0 {
        sync_dir(&tmp.join("x"))?;
    }
    Ok((files, bytes))
}

/// Writes a secret file readable by its owner only, replacing any old one atomically
/// (temporary file, fsync, rename, fsync of the directory).
pub fn write_secret(path: &Path, contents: &str) -> anyhow::Result<()> {
    write_atomic(path, format!("{contents}\n").as_bytes())
}

/// Replaces `path` with `bytes` atomically, mode 0600.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    sync_dir(path)
}

/// Creates `path` (which must not exist) with `bytes`, mode 0600, durably.
pub fn write_new(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    sync_dir(path)
}

/// Copies `reader` into the new file `path` (mode 0600), fsynced.
pub fn copy_new(reader: &mut impl std::io::Read, path: &Path) -> anyhow::Result<u64> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    let n = std::io::copy(reader, &mut f).with_context(|| format!("writing {}", path.display()))?;
    f.sync_all()?;
    Ok(n)
}

/// fsyncs every directory under `root` (and `root`), so the names in them are durable.
pub fn sync_tree(root: &Path) -> anyhow::Result<()> {
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                stack.push(entry.path());
            }
        }
        std::fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("syncing {}", dir.display()))?;
    }
    Ok(())
}

/// fsyncs the directory holding `path`, so a rename or an unlink in it is durable.
pub fn sync_dir(path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("syncing {}", dir.display()))?;
    }
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    let meta = std::fs::symlink_metadata(path)?;
    if meta.permissions().mode() & 0o777 != mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("making {} mode {mode:o}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tighten_fixes_modes_below_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("a/b");
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let file = sub.join("f");
        std::fs::write(&file, b"x").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        tighten(dir.path()).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(dir.path()), 0o700);
        assert_eq!(mode(&sub), 0o700);
        assert_eq!(mode(&file), 0o600);
    }

    #[test]
    fn leftover_uploads_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("upload-aa"), b"12345").unwrap();
        std::fs::write(dir.path().join("upload-bb"), b"678").unwrap();
        std::fs::write(dir.path().join("other"), b"keep").unwrap();
        std::fs::create_dir(dir.path().join("upload-dir")).unwrap();
        assert_eq!(remove_leftover_uploads(dir.path()).unwrap(), (2, 8));
        let mut left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["other", "upload-dir"]);
        assert_eq!(remove_leftover_uploads(dir.path()).unwrap(), (0, 0));
    }
}
