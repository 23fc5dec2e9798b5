use std::path::PathBuf;

/// Everything that can go wrong with a credentials tarball. Messages name the entry or file
/// and the reason; they never contain key material or passphrases.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("the credentials file is encrypted with a passphrase (age); a passphrase is needed to open it")]
    Encrypted,

    #[error("could not decrypt the credentials file: {0}")]
    Decrypt(String),

    #[error("could not encrypt the credentials file: {0}")]
    Encrypt(String),

    #[error("this is not a credentials file: {0}")]
    NotCredentials(String),

    #[error("the credentials file is damaged or truncated: {0}")]
    Corrupt(String),

    #[error("entry {name:?} is refused: {reason}")]
    UnsafeEntry { name: String, reason: String },

    #[error("entry {name:?} is {size} bytes, more than the {max} allowed")]
    EntryTooLarge { name: String, size: u64, max: u64 },

    #[error("the credentials file is larger than the {max} bytes allowed (after decompression)")]
    TooLarge { max: u64 },

    #[error("the credentials file has more than {max} entries")]
    TooManyEntries { max: usize },

    #[error("entry {0:?} appears more than once")]
    DuplicateEntry(String),

    #[error("entry {name:?} is invalid: {reason}")]
    BadEntry { name: String, reason: String },

    #[error("config.json is invalid: {0}")]
    BadConfig(String),

    #[error("no key named {0:?} in the credentials file")]
    KeyNotFound(String),

    #[error("a different key is already stored as {0:?}")]
    KeyExists(String),

    #[error("invalid key name {0:?}: use letters, digits, '.', '_' and '-'")]
    InvalidKeyName(String),

    #[error(transparent)]
    Core(#[from] tuf_core::Error),

    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{} already exists; refusing to overwrite it", path.display())]
    Exists { path: PathBuf },
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
