use crate::key::KeyId;

/// Everything that can go wrong when parsing, building, signing or verifying metadata.
///
/// Messages name the field or role concerned; they never contain private key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("invalid JSON: {0}")]
    Json(String),

    #[error("{field}: {reason}")]
    Field { field: String, reason: String },

    #[error("metadata has _type {got:?}, expected {expected:?}")]
    WrongType { expected: &'static str, got: String },

    #[error("signatures list names keyid {0} more than once")]
    DuplicateSignature(KeyId),

    #[error(
        "role {role}: {valid} valid signature(s) from distinct trusted keys, threshold is {needed}"
    )]
    ThresholdNotMet {
        role: String,
        needed: u32,
        valid: u32,
    },

    #[error("expires {0:?} is not a UTC time of the form YYYY-MM-DDTHH:MM:SSZ")]
    BadExpires(String),

    #[error("key: {0}")]
    Key(String),

    #[error("signing failed: {0}")]
    Signing(String),
}

impl Error {
    pub(crate) fn field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Field {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
