//! The library's one error type.

use crate::check::Refusal;

/// Why a ceremony step could not be taken. Rule violations carry their named [`Check`]
/// (`Error::Refused`), so callers and tests match on the check, never on text.
///
/// [`Check`]: crate::Check
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A named check failed.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// A file or document that is not one of our formats, or not this version of it.
    #[error("{0}")]
    Format(String),
    /// Metadata that tuf-core refuses, or a signing failure.
    #[error(transparent)]
    Core(#[from] tuf_core::Error),
    /// A key-ID prefix too short or not hex.
    #[error(
        "{prefix:?} is not a key ID or a prefix of one: give at least {min} hex digits of the \
         key ID (`tufctl keys tuf updates review` and `tufctl keys show-root` list them)"
    )]
    KeyPrefix {
        /// What was given.
        prefix: String,
        /// How many hex digits a prefix needs at least.
        min: usize,
    },
    /// No key of the staged roots has an ID with this prefix.
    #[error(
        "no key of the staged roots has an ID starting with {prefix} (already removed in this \
         transaction? see `tufctl keys tuf updates review`); nothing was changed"
    )]
    NoSuchKey {
        /// What was given.
        prefix: String,
    },
    /// The prefix starts several key IDs.
    #[error("{prefix} is the start of several key IDs ({}); give more digits", ids.join(", "))]
    AmbiguousKey {
        /// What was given.
        prefix: String,
        /// Every key ID it starts.
        ids: Vec<String>,
    },
    /// The key is not in the role it was asked to leave.
    #[error(
        "key {id} is not in the {role} role of the staged roots (it is in: {listed}); nothing \
         was changed"
    )]
    NotInRole {
        /// The key's ID.
        id: String,
        /// The role it was asked to leave.
        role: String,
        /// The roles that do list it.
        listed: String,
    },
    /// The key is listed in the roots' keys but in no role.
    #[error("key {id} is listed in the staged roots' keys but in no role; nothing was changed")]
    InNoRole {
        /// The key's ID.
        id: String,
    },
    /// The key is one of the server's online keys, which are replaced, not removed.
    #[error(
        "key {id} is one of the server's online keys ({roles}); they are replaced, not removed, \
         with `tufctl keys rotate-online CREDS.tgz`; nothing was changed"
    )]
    OnlineKey {
        /// The key's ID.
        id: String,
        /// The online roles it signs for.
        roles: String,
    },
    /// A role name that is not a top-level role, or not one an offline key may hold.
    #[error("{0}")]
    Role(String),
    /// The keyring could not give a signer (a refused token PIN, an unreadable key, ...).
    #[error(transparent)]
    Keyring(Box<dyn std::error::Error + Send + Sync + 'static>),
}

impl Error {
    /// The refusal, when a named check failed.
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            Error::Refused(r) => Some(r),
            _ => None,
        }
    }
}
