//! Target files: where they are stored, where they are fetched from, and their verification.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use tuf_core::hash::MultiHasher;
use tuf_core::TargetFile;

use crate::fetch::Fetcher;
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

/// Downloads `url` into `local`: at most `info.length` bytes, every listed hash checked while
/// streaming, and the file only appears under its name once verified.
pub fn download(
    fetcher: &Fetcher,
    url: &str,
    path: &str,
    info: &TargetFile,
    local: &Path,
) -> Result<(), Error> {
    let what = format!("target {path}");
    let tmp = store::temp_path(local);
    let result = (|| {
        let mut file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let mut hasher = MultiHasher::new(&info.hashes);
        let got = fetcher
            .stream(url, info.length, &mut file, &mut |chunk| {
                hasher.update(chunk)
            })
            .map_err(|e| match e {
                Error::TooLarge { limit, .. } => Error::Length {
                    what: what.clone(),
                    expected: limit,
                    got: limit.saturating_add(1),
                },
                other => other,
            })?;
        if got != info.length {
            return Err(Error::Length {
                what: what.clone(),
                expected: info.length,
                got,
            });
        }
        hasher.finish().map_err(|reason| Error::Hash {
            what: what.clone(),
            reason,
        })?;
        file.sync_all().map_err(|e| Error::io(&tmp, e))
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    store::commit(&tmp, local)
}

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
