//! Target files: where they are stored, where they are fetched from, and their verification.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use tuf_core::hash::MultiHasher;
use tuf_core::TargetFile;

use crate::fetch::{Body, Fetcher};
use crate::store::{self, encode_name};
use crate::Error;

/// The local file for target `path`: its percent-encoded path, one file name inside
/// `target_dir`, so `a/b.txt` or `../x` cannot escape it.
pub fn local_path(target_dir: &Path, path: &str) -> Result<PathBuf, Error> {
    let name = encode_name(path);
    if name.is_empty() || name == "." || name == ".." {
        return Err(Error::BadTargetPath(path.to_owned()));
    }
    Ok(target_dir.join(name))
}

/// Whether `local` already holds exactly `info`'s bytes (length and every listed hash).
pub fn is_cached(local: &Path, info: &TargetFile) -> bool {
    let Ok(file) = File::open(local) else {
        return false;
    };
    match file.metadata() {
        Ok(m) if m.is_file() && m.len() == info.length => {}
        _ => return false,
    }
    let mut hasher = MultiHasher::new(&info.hashes);
    let mut reader = file.take(info.length);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
    hasher.finish().is_ok()
}

/// The URL of target `path` under `base`. With consistent snapshots the file name is prefixed
/// by one of its hashes (`dir/HASH.name`): the SHA-256 when listed, else the first listed.
pub fn url(base: &str, path: &str, info: &TargetFile, prefix_hash: bool) -> String {
    let mut url = base.to_owned();
    if !url.ends_with('/') {
        url.push('/');
    }
    let (dir, name) = match path.rsplit_once('/') {
        Some((dir, name)) => (Some(dir), name),
        None => (None, path),
    };
    if let Some(dir) = dir {
        for segment in dir.split('/') {
            url.push_str(&utf8_percent_encode(segment, SEGMENT).to_string());
            url.push('/');
        }
    }
    if prefix_hash {
        let hash = info
            .hashes
            .get("sha256")
            .or_else(|| info.hashes.values().next());
        if let Some(hash) = hash {
            url.push_str(&utf8_percent_encode(hash, SEGMENT).to_string());
            url.push('.');
        }
    }
    url.push_str(&utf8_percent_encode(name, SEGMENT).to_string());
    url
}

/// Downloads `url` into `local`: at most `info.length` bytes, and the file only appears under
/// its name once its length and every listed hash are verified over the whole file.
///
/// Bytes arrive in a partial file beside it (see [`partial_path`]). A download that breaks
/// off keeps it: the same run retries from where it stopped while each try makes progress,
/// and a later run (after a kill or a power cut) resumes it with a `Range` request. A server
/// that ignores `Range` sends the whole file, which then replaces the partial one. Resumed
/// bytes are trusted no more than fresh ones: if the whole file does not verify, the partial
/// file is deleted and, when the failed try had resumed, the file is fetched once more from
/// the start.
pub fn download(
    fetcher: &Fetcher,
    url: &str,
    path: &str,
    info: &TargetFile,
    local: &Path,
) -> Result<(), Error> {
    let what = format!("target {path}");
    let part = partial_path(local, path, info);
    let (mut tries, mut restarted) = (0, false);
    loop {
        tries += 1;
        match attempt(fetcher, url, &what, info, &part) {
            Ok(()) => return store::commit(&part, local),
            Err(Failed::Cut { progress, error }) => {
                if !progress || tries >= MAX_TRIES {
                    // Only bytes are worth keeping for the next run.
                    if fs::symlink_metadata(&part).is_ok_and(|m| m.is_file() && m.len() == 0) {
                        remove_partial(&part)?;
                    }
                    return Err(error);
                }
            }
            Err(Failed::Refused { resumed, error }) => {
                remove_partial(&part)?;
                if !resumed || restarted {
                    return Err(error);
                }
                restarted = true;
            }
        }
    }
}

/// Tries per run; each try after the first must have made progress.
const MAX_TRIES: u32 = 5;

/// How a try failed.
enum Failed {
    /// Broken off (connection, status, disk): the partial file stays for the next try.
    Cut { progress: bool, error: Error },
    /// The bytes are wrong (too many, or the whole file does not verify): the partial file
    /// goes. `resumed`: the bytes were not all from this try.
    Refused { resumed: bool, error: Error },
}

/// One try: the partial file completed from where it ends, then verified whole.
fn attempt(
    fetcher: &Fetcher,
    url: &str,
    what: &str,
    info: &TargetFile,
    part: &Path,
) -> Result<(), Failed> {
    let cut = |error| Failed::Cut {
        progress: false,
        error,
    };
    let (mut file, mut hasher, mut have) = open_partial(part, info).map_err(cut)?;
    let mut resumed = have > 0;
    if have < info.length {
        let mut body = match fetcher.open_from(url, have) {
            Ok(body) => body,
            // The partial file does not fit what the server has: start over.
            Err(error @ Error::Range { .. }) => return Err(Failed::Refused { resumed, error }),
            Err(error) => return Err(cut(error)),
        };
        if body.start == 0 && have > 0 {
            // The server sent the whole file: it replaces the partial one.
            file.set_len(0).map_err(|e| cut(Error::io(part, e)))?;
            file.seek(SeekFrom::Start(0))
                .map_err(|e| cut(Error::io(part, e)))?;
            hasher = MultiHasher::new(&info.hashes);
            have = 0;
        }
        resumed = body.start > 0;
        let limit = info.length - have;
        let (got, broke) = copy_body(&mut body, &mut file, part, &mut hasher, limit);
        have += got;
        match broke {
            Broke::Not => {}
            Broke::TooLong => {
                let error = Error::Length {
                    what: what.to_owned(),
                    expected: info.length,
                    got: info.length.saturating_add(1),
                };
                return Err(Failed::Refused { resumed, error });
            }
            Broke::Io(error) => {
                return Err(Failed::Cut {
                    progress: got > 0,
                    error,
                })
            }
        }
        if have < info.length {
            let error = Error::Interrupted {
                what: what.to_owned(),
                got: have,
                expected: info.length,
            };
            return Err(Failed::Cut {
                progress: got > 0,
                error,
            });
        }
    }
    hasher.finish().map_err(|reason| Failed::Refused {
        resumed,
        error: Error::Hash {
            what: what.to_owned(),
            reason,
        },
    })?;
    file.sync_all().map_err(|e| cut(Error::io(part, e)))
}

/// The partial file open for appending, its bytes hashed so far, and its length. One that
/// is longer than the target, or not a regular file, is replaced by an empty one.
fn open_partial(part: &Path, info: &TargetFile) -> Result<(File, MultiHasher, u64), Error> {
    let mut hasher = MultiHasher::new(&info.hashes);
    match fs::symlink_metadata(part) {
        Ok(m) if m.file_type().is_file() && m.len() <= info.length => {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(part)
                .map_err(|e| Error::io(part, e))?;
            let have = hash_reader(&mut file, &mut hasher).map_err(|e| Error::io(part, e))?;
            file.seek(SeekFrom::Start(have))
                .map_err(|e| Error::io(part, e))?;
            return Ok((file, hasher, have));
        }
        Ok(_) => remove_partial(part)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(part, e)),
    }
    let file = File::create(part).map_err(|e| Error::io(part, e))?;
    Ok((file, hasher, 0))
}

/// Why [`copy_body`] stopped before the end of the body.
enum Broke {
    Not,
    /// More than the limit: the target is longer than listed.
    TooLong,
    /// Reading or writing failed.
    Io(Error),
}

/// Appends at most `limit` bytes of `body` to `file`, hashing them; returns how many were
/// appended and why it stopped.
fn copy_body(
    body: &mut Body,
    file: &mut File,
    part: &Path,
    hasher: &mut MultiHasher,
    limit: u64,
) -> (u64, Broke) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0u64;
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => return (got, Broke::Not),
            Ok(n) => n,
            Err(e) => return (got, Broke::Io(e)),
        };
        let take = (n as u64).min(limit - got) as usize;
        if take > 0 {
            if let Err(e) = file.write_all(&buf[..take]) {
                return (got, Broke::Io(Error::io(part, e)));
            }
            hasher.update(&buf[..take]);
            got += take as u64;
        }
        if take < n {
            return (got, Broke::TooLong);
        }
    }
}

fn hash_reader(file: &mut File, hasher: &mut MultiHasher) -> io::Result<u64> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => {
                hasher.update(&buf[..n]);
                total += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

fn remove_partial(part: &Path) -> Result<(), Error> {
    match fs::remove_file(part) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(part, e)),
    }
}

/// Where the bytes of `info` (found as `path`) gather until verified: `+partial-` and the
/// SHA-256 of the path, length and hashes, beside `local`. Another target, or another version
/// under the same path, never resumes from it; `+` is always percent-encoded in target file
/// names, so no target file takes this name.
pub fn partial_path(local: &Path, path: &str, info: &TargetFile) -> PathBuf {
    let mut id = format!("{path}\n{}\n", info.length);
    for (alg, value) in &info.hashes {
        id.push_str(&format!("{alg}:{value}\n"));
    }
    local.with_file_name(format!(
        "{PARTIAL_PREFIX}{}",
        tuf_core::hash::sha256_hex(id.as_bytes())
    ))
}

/// File names of partial downloads start with this.
pub const PARTIAL_PREFIX: &str = "+partial-";

/// Characters left as they are in a URL path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'+')
    .remove(b'@')
    .remove(b'=')
    .remove(b',');

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_paths_become_one_encoded_file_name_inside_the_dir() {
        let dir = Path::new("/var/lib/targets");
        for (path, name) in [
            ("../x", "..%2Fx"),
            ("a/../../x", "a%2F..%2F..%2Fx"),
            ("/etc/passwd", "%2Fetc%2Fpasswd"),
            ("dir/f.bin", "dir%2Ff.bin"),
            ("x?y", "x%3Fy"),
        ] {
            let local = local_path(dir, path).unwrap();
            assert_eq!(local.parent(), Some(dir), "{path}");
            assert_eq!(local.file_name().unwrap(), name, "{path}");
        }
        for bad in ["", ".", ".."] {
            assert!(local_path(dir, bad).is_err(), "{bad:?}");
        }
    }
}
