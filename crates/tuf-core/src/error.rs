use crate::key::KeyId;

/// Everything that can go wrong when parsing, building, signing or verifying metadata.
///
/// Messages name the field or role concerned; they never contain private key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bytes that are not JSON, or JSON this project refuses as ambiguous (duplicate keys,
    /// floats, out-of-range integers, trailing data).
    #[error("invalid JSON: {0}")]
    Json(String),

    /// A field is missing or has a value the specification does not allow.
    #[error("{field}: {reason}")]
    Field {
        /// The field (its name, or where it is in the document).
        field: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The `_type` of the metadata is not the role the caller asked for.
    #[error("metadata has _type {got:?}, expected {expected:?}")]
    WrongType {
        /// The role asked for.
        expected: &'static str,
        /// The `_type` found.
        got: String,
    },

    /// The `signatures` list names one key ID twice: refused rather than counted once, so a
    /// threshold can never be met by repeating a signature.
    #[error("signatures list names keyid {0} more than once")]
    DuplicateSignature(KeyId),

    /// Fewer distinct trusted keys signed than the role's threshold needs.
    #[error(
        "role {role}: {valid} valid signature(s) from distinct trusted keys, threshold is {needed}"
    )]
    ThresholdNotMet {
        /// The role whose signatures were counted.
        role: String,
        /// Its threshold.
        needed: u32,
        /// How many distinct trusted keys produced a valid signature.
        valid: u32,
    },

    /// An `expires` value that is not whole-second UTC `YYYY-MM-DDTHH:MM:SSZ`.
    #[error("expires {0:?} is not a UTC time of the form YYYY-MM-DDTHH:MM:SSZ")]
    BadExpires(String),

    /// A key that cannot be parsed or used (encoding, type, scheme).
    #[error("key: {0}")]
    Key(String),

    /// Signing failed (for a hardware token: the token's error).
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
