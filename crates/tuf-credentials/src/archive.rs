//! Reading and writing the gzip'd tar, in memory, with an allow-list and size caps.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use age::secrecy::SecretString;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use tar::{EntryType, Header};
use zeroize::Zeroizing;

use crate::Error;

/// True when `bytes` look like an age file (binary or ASCII-armored).
pub(crate) fn is_age(bytes: &[u8]) -> bool {
    bytes.starts_with(AGE_MAGIC) || bytes.starts_with(AGE_ARMOR)
}

/// Decompresses and parses the tar into `name → bytes`, refusing anything unexpected.
pub(crate) fn read(bytes: &[u8]) -> Result<BTreeMap<String, Zeroizing<Vec<u8>>>, Error> {
    if bytes.len() as u64 > MAX_COMPRESSED {
        return Err(Error::TooLarge {
            max: MAX_COMPRESSED,
        });
    }
    if !bytes.starts_with(GZIP_MAGIC) {
        return Err(Error::NotCredentials(
            "it is not gzip-compressed (a credentials file is a .tgz)".to_owned(),
        ));
    }
    // Decompress with a cap, so a gzip bomb stops at MAX_TOTAL + 1 bytes.
    let mut tar_bytes = Zeroizing::new(Vec::new());
    GzDecoder::new(bytes)
        .take(MAX_TOTAL + 1)
        .read_to_end(&mut tar_bytes)
        .map_err(|e| Error::Corrupt(format!("gzip: {e}")))?;
    if tar_bytes.len() as u64 > MAX_TOTAL {
        return Err(Error::TooLarge { max: MAX_TOTAL });
    }
    parse_tar(&tar_bytes)
}

fn parse_tar(tar_bytes: &[u8]) -> Result<BTreeMap<String, Zeroizing<Vec<u8>>>, Error> {
    if tar_bytes.len() < 512 || !tar_bytes.len().is_multiple_of(512) {
        return Err(Error::Corrupt(format!(
            "the tar archive is {} bytes, not a whole number of 512-byte blocks",
            tar_bytes.len()
        )));
    }
    let mut archive = tar::Archive::new(tar_bytes);
    let entries = archive
        .entries()
        .map_err(|e| Error::Corrupt(format!("tar: {e}")))?;
    let mut out = BTreeMap::new();
    let mut seen = 0usize;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::Corrupt(format!("tar: {e}")))?;
        seen += 1;
        if seen > MAX_ENTRIES {
            return Err(Error::TooManyEntries { max: MAX_ENTRIES });
        }
        let raw_name = entry.path_bytes().into_owned();
        let name = String::from_utf8(raw_name).map_err(|e| Error::UnsafeEntry {
            name: String::from_utf8_lossy(e.as_bytes()).into_owned(),
            reason: "the name is not UTF-8".to_owned(),
        })?;
        let kind = entry.header().entry_type();
        match kind {
            EntryType::Directory => {
                let dir = name.trim_end_matches('/');
                check_path_safe(&name)?;
                if !ALLOWED_DIRS.contains(&dir) {
                    return Err(Error::UnsafeEntry {
                        name,
                        reason: "unexpected directory".to_owned(),
                    });
                }
                continue;
            }
            EntryType::Regular | EntryType::Continuous => {}
            EntryType::Symlink => return Err(unsafe_entry(name, "symbolic links are refused")),
            EntryType::Link => return Err(unsafe_entry(name, "hard links are refused")),
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                return Err(unsafe_entry(name, "device and FIFO entries are refused"))
            }
            _ => return Err(unsafe_entry(name, "unsupported tar entry type")),
        }
        check_path_safe(&name)?;
        if !allowed_file(&name) {
            return Err(unsafe_entry(
                name,
                "not a file a credentials tarball holds (allowed: tufrepo/config.json, \
                 tufrepo/roles/*.json, tufrepo/keys/*.pub|.sec|.pkcs11)",
            ));
        }
        let size = entry.size();
        if size > MAX_ENTRY {
            return Err(Error::EntryTooLarge {
                name,
                size,
                max: MAX_ENTRY,
            });
        }
        let mut data = Zeroizing::new(Vec::with_capacity(size as usize));
        entry
            .by_ref()
            .take(MAX_ENTRY + 1)
            .read_to_end(&mut data)
            .map_err(|e| Error::Corrupt(format!("tar entry {name:?}: {e}")))?;
        if data.len() as u64 != size {
            return Err(Error::Corrupt(format!(
                "tar entry {name:?} is cut short ({} of {size} bytes)",
                data.len()
            )));
        }
        if out.contains_key(&name) {
            return Err(Error::DuplicateEntry(name));
        }
        out.insert(name, data);
    }
    if out.is_empty() {
        return Err(Error::NotCredentials("the archive is empty".to_owned()));
    }
    Ok(out)
}

/// Writes the deterministic tar.gz of `entries` (already sorted by the map).
pub(crate) fn write(
    entries: &BTreeMap<String, Zeroizing<Vec<u8>>>,
) -> Result<Zeroizing<Vec<u8>>, Error> {
    let total: usize = entries.values().map(|v| v.len() + 1024).sum();
    let mut tar_bytes = Zeroizing::new(Vec::with_capacity(total + 1024));
    for (name, data) in entries.iter() {
        let mut header = Header::new_ustar();
        header
            .set_path(name)
            .map_err(|e| unsafe_entry(name.clone(), &format!("cannot be written: {e}")))?;
        header.set_size(data.len() as u64);
        header.set_mode(0o600);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_entry_type(EntryType::Regular);
        header.set_cksum();
        tar_bytes.extend_from_slice(header.as_bytes());
        tar_bytes.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        tar_bytes.extend(std::iter::repeat_n(0u8, pad));
    }
    tar_bytes.extend(std::iter::repeat_n(0u8, 1024));
    // Deflate never grows data by more than a few bytes per block, so this capacity means the
    // buffer holding secrets is not reallocated (which would leave an unzeroized copy).
    let mut out = Zeroizing::new(Vec::with_capacity(
        tar_bytes.len() + tar_bytes.len() / 64 + 1024,
    ));
    // GzEncoder::new writes a header with mtime 0 and no file name: deterministic.
    let mut gz = GzEncoder::new(&mut *out, Compression::default());
    gz.write_all(&tar_bytes)
        .and_then(|_| gz.finish().map(|_| ()))
        .map_err(|e| Error::Corrupt(format!("gzip: {e}")))?;
    Ok(out)
}

pub(crate) fn encrypt(
    plain: &[u8],
    passphrase: &str,
    work_factor: Option<u8>,
) -> Result<Vec<u8>, Error> {
    let mut recipient = age::scrypt::Recipient::new(SecretString::from(passphrase.to_owned()));
    if let Some(log_n) = work_factor {
        recipient.set_work_factor(log_n);
    }
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
            .map_err(|e| Error::Encrypt(e.to_string()))?;
    let mut out = Vec::with_capacity(plain.len() + 512);
    let mut w = encryptor
        .wrap_output(&mut out)
        .map_err(|e| Error::Encrypt(e.to_string()))?;
    w.write_all(plain)
        .and_then(|_| w.finish().map(|_| ()))
        .map_err(|e| Error::Encrypt(e.to_string()))?;
    Ok(out)
}

pub(crate) fn decrypt(bytes: &[u8], passphrase: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
    if bytes.starts_with(AGE_ARMOR) {
        return Err(Error::Decrypt(
            "the file is ASCII-armored; de-armor it first (age -d / rage -d can)".to_owned(),
        ));
    }
    let decryptor =
        age::Decryptor::new_buffered(bytes).map_err(|e| Error::Decrypt(e.to_string()))?;
    if !decryptor.is_scrypt() {
        return Err(Error::Decrypt(
            "the file is encrypted to age recipients, not to a passphrase".to_owned(),
        ));
    }
    let identity = age::scrypt::Identity::new(SecretString::from(passphrase.to_owned()));
    let mut reader = decryptor
        .decrypt(std::iter::once(&identity as &dyn age::Identity))
        .map_err(|e| match e {
            age::DecryptError::DecryptionFailed | age::DecryptError::NoMatchingKeys => {
                Error::Decrypt("wrong passphrase".to_owned())
            }
            other => Error::Decrypt(other.to_string()),
        })?;
    let mut plain = Zeroizing::new(Vec::new());
    (&mut reader)
        .take(MAX_COMPRESSED + 1)
        .read_to_end(&mut plain)
        .map_err(|e| Error::Decrypt(e.to_string()))?;
    if plain.len() as u64 > MAX_COMPRESSED {
        return Err(Error::TooLarge {
            max: MAX_COMPRESSED,
        });
    }
    Ok(plain)
}

/// One path component of a key name: `[A-Za-z0-9._-]+`, not starting with `.`, no `..`.
pub(crate) fn valid_component(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_COMPONENT
        && !s.starts_with('.')
        && !s.contains("..")
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn check_path_safe(name: &str) -> Result<(), Error> {
    if name.starts_with('/') {
        return Err(unsafe_entry(name.to_owned(), "absolute paths are refused"));
    }
    if name.contains('\\') || name.contains('\0') {
        return Err(unsafe_entry(
            name.to_owned(),
            "backslashes and NUL are refused",
        ));
    }
    if name
        .trim_end_matches('/')
        .split('/')
        .any(|c| c == ".." || c == "." || c.is_empty())
    {
        return Err(unsafe_entry(
            name.to_owned(),
            "'..', '.' and empty path components are refused",
        ));
    }
    Ok(())
}

fn allowed_file(name: &str) -> bool {
    if name == "tufrepo/config.json" {
        return true;
    }
    if let Some(file) = name.strip_prefix("tufrepo/keys/") {
        return [".pub", ".sec", ".pkcs11"]
            .iter()
            .any(|ext| file.strip_suffix(ext).is_some_and(valid_component));
    }
    // Read-only extras a fioctl-style tarball carries: roles/*.json, *.json.checksum and
    // roles/unsigned/*.json. They are kept as they are and written back unchanged.
    let role_file = |f: &str| {
        [".json", ".json.checksum"]
            .iter()
            .any(|ext| f.strip_suffix(ext).is_some_and(valid_component))
    };
    if let Some(file) = name.strip_prefix("tufrepo/roles/unsigned/") {
        return role_file(file);
    }
    if let Some(file) = name.strip_prefix("tufrepo/roles/") {
        return role_file(file);
    }
    false
}

fn unsafe_entry(name: String, reason: &str) -> Error {
    Error::UnsafeEntry {
        name,
        reason: reason.to_owned(),
    }
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const AGE_MAGIC: &[u8] = b"age-encryption.org/v1\n";
const AGE_ARMOR: &[u8] = b"-----BEGIN AGE ENCRYPTED FILE-----";
const ALLOWED_DIRS: &[&str] = &[
    "tufrepo",
    "tufrepo/keys",
    "tufrepo/roles",
    "tufrepo/roles/unsigned",
];
/// Largest accepted input file (compressed, or encrypted).
pub(crate) const MAX_COMPRESSED: u64 = 4 << 20;
/// Largest accepted decompressed tar.
pub(crate) const MAX_TOTAL: u64 = 16 << 20;
/// Largest accepted single entry.
pub(crate) const MAX_ENTRY: u64 = 2 << 20;
const MAX_ENTRIES: usize = 1024;
const MAX_COMPONENT: usize = 128;
