use std::path::PathBuf;

/// Everything that can go wrong with a credentials tarball. Messages name the entry or file
/// and the reason; they never contain key material or passphrases.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file is age-encrypted and no passphrase was given.
    #[error("the credentials file is encrypted with a passphrase (age); a passphrase is needed to open it")]
    Encrypted,

    /// Decryption failed (a wrong passphrase, or a damaged file).
    #[error("could not decrypt the credentials file: {0}")]
    Decrypt(String),

    /// Encryption failed.
    #[error("could not encrypt the credentials file: {0}")]
    Encrypt(String),

    /// Not a gzip'd tar with a `tufrepo/config.json`: some other file.
    #[error("this is not a credentials file: {0}")]
    NotCredentials(String),

    /// A credentials file that cannot be read to its end.
    #[error("the credentials file is damaged or truncated: {0}")]
    Corrupt(String),

    /// An entry that could escape or mislead if unpacked: a path outside the allow-list, an
    /// absolute or `..` path, a link or a device file.
    #[error("entry {name:?} is refused: {reason}")]
    UnsafeEntry {
        /// The entry's name in the tar.
        name: String,
        /// What is wrong with it.
        reason: String,
    },

    /// One entry over the per-entry cap.
    #[error("entry {name:?} is {size} bytes, more than the {max} allowed")]
    EntryTooLarge {
        /// The entry's name.
        name: String,
        /// Its size.
        size: u64,
        /// The cap.
        max: u64,
    },

    /// The whole file over the cap once decompressed (a gzip bomb stops here).
    #[error("the credentials file is larger than the {max} bytes allowed (after decompression)")]
    TooLarge {
        /// The cap, in bytes.
        max: u64,
    },

    /// More entries than any credentials file has.
    #[error("the credentials file has more than {max} entries")]
    TooManyEntries {
        /// The cap.
        max: usize,
    },

    /// Two entries of one name: which one counts would be ambiguous.
    #[error("entry {0:?} appears more than once")]
    DuplicateEntry(String),

    /// An allowed entry whose content is not what it must be (a key file that does not
    /// parse, a private key whose public part differs from the `.pub`).
    #[error("entry {name:?} is invalid: {reason}")]
    BadEntry {
        /// The entry's name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },

    /// `tufrepo/config.json` is missing a field or is not JSON.
    #[error("config.json is invalid: {0}")]
    BadConfig(String),

    /// No key of that name.
    #[error("no key named {0:?} in the credentials file")]
    KeyNotFound(String),

    /// A different key already has that name: never overwritten.
    #[error("a different key is already stored as {0:?}")]
    KeyExists(String),

    /// A key name that could not be a file name inside the tar.
    #[error("invalid key name {0:?}: use letters, digits, '.', '_' and '-'")]
    InvalidKeyName(String),

    /// A key or metadata error from tuf-core.
    #[error(transparent)]
    Core(#[from] tuf_core::Error),

    /// Reading or writing a file failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done (`reading`, `writing`, ...).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// The file to create exists already: a credentials file is never overwritten by a new
    /// one.
    #[error("{} already exists; refusing to overwrite it", path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
}

impl Error {
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            what,
            path: path.into(),
            source,
        }
    }
}
