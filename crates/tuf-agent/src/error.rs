//! The one error type of the client library: each variant names the role or file and the check
//! that failed, so a device log says exactly why an update was refused.

use std::path::PathBuf;

use tuf_core::hash::HashMismatch;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Parsing or signature verification of a role's metadata failed.
    #[error("{role}: {reason}")]
    Metadata {
        role: String,
        reason: tuf_core::Error,
    },

    #[error("{role}: version {got}, expected {expected}")]
    VersionMismatch {
        role: String,
        expected: u64,
        got: u64,
    },

    #[error("{role}: rollback attack? version {got} is lower than the trusted version {trusted}")]
    Rollback {
        role: String,
        trusted: u64,
        got: u64,
    },

    #[error("{role}: freeze attack? metadata expired at {expires}")]
    Expired { role: String, expires: String },

    #[error("{what}: length is {got} bytes, {expected} bytes are listed")]
    Length {
        what: String,
        expected: u64,
        got: u64,
    },

    #[error("{what}: {reason}")]
    Hash { what: String, reason: HashMismatch },

    #[error("snapshot: {file} is listed in the trusted snapshot but missing from the new one")]
    RoleRemoved { file: String },

    #[error("{role} is not listed in the trusted snapshot")]
    NotInSnapshot { role: String },

    #[error("{role}: no trusted role delegates it")]
    NotDelegated { role: String },

    #[error("fetching {url}: {reason}")]
    Http { url: String, reason: String },

    #[error("fetching {url}: HTTP status {status}")]
    Status { url: String, status: u16 },

    #[error("{what}: more than {limit} bytes")]
    TooLarge { what: String, limit: u64 },

    #[error("{path}: {reason}")]
    Io {
        path: PathBuf,
        reason: std::io::Error,
    },

    #[error("target {0:?} is not listed by any trusted targets role")]
    TargetNotFound(String),

    #[error("target path {0:?} cannot be stored as a local file")]
    BadTargetPath(String),

    /// A candidate for `update` whose version has no place in the release order.
    #[error("target {path}: version {version:?} is {reason}")]
    Version {
        path: String,
        version: String,
        reason: String,
    },

    #[error("{0}")]
    Config(String),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            reason: source,
        }
    }

    pub(crate) fn metadata(role: &str, source: tuf_core::Error) -> Self {
        Self::Metadata {
            role: role.to_owned(),
            reason: source,
        }
    }
}
