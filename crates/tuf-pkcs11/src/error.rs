use std::path::PathBuf;

/// Everything that can go wrong with a key on a PKCS#11 token. Messages name the module, the
/// token and the key; they never contain a PIN.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The module (a shared library) could not be loaded.
    #[error("cannot load the PKCS#11 module {}: {reason}", path.display())]
    ModuleLoad {
        /// The module's path.
        path: PathBuf,
        /// Why.
        reason: String,
    },

    /// The module loaded but `C_Initialize` failed.
    #[error("the PKCS#11 module {} failed to start: {reason}", path.display())]
    ModuleInit {
        /// The module's path.
        path: PathBuf,
        /// Why.
        reason: String,
    },

    /// The token a key reference names is not in any slot of the module.
    #[error(
        "the token {label:?} (serial {serial}) is not present in the PKCS#11 module {}: insert \
         that token (or check the module's configuration) and try again",
        module.display()
    )]
    TokenNotPresent {
        /// The module searched.
        module: PathBuf,
        /// The token's label.
        label: String,
        /// The token's serial number.
        serial: String,
    },

    /// `--slot` named neither a slot ID nor a token label of the module.
    #[error(
        "no token in slot or with label {wanted:?} in the PKCS#11 module {}; tokens present: {available}",
        module.display()
    )]
    NoSuchToken {
        /// The module searched.
        module: PathBuf,
        /// The slot ID or label asked for.
        wanted: String,
        /// The tokens the module has, for the message.
        available: String,
    },

    /// The token refused the PIN.
    #[error("the PIN for token {label:?} (serial {serial}) was refused")]
    PinIncorrect {
        /// The token's label.
        label: String,
        /// The token's serial number.
        serial: String,
    },

    /// Too many wrong PINs: the token locked it.
    #[error("the PIN of token {label:?} (serial {serial}) is locked; unlock it with the token vendor's tools")]
    PinLocked {
        /// The token's label.
        label: String,
        /// The token's serial number.
        serial: String,
    },

    /// The key a reference names is not on the token.
    #[error(
        "the token {token_label:?} (serial {token_serial}) holds no {what} with ID {id} \
         (label {label:?}); was the key deleted, or is this another token with the same serial?"
    )]
    KeyNotFound {
        /// The token's label.
        token_label: String,
        /// The token's serial number.
        token_serial: String,
        /// Which object was missing (`private key`, `public key`).
        what: &'static str,
        /// The key's CKA_ID, hex.
        id: String,
        /// The key's CKA_LABEL.
        label: String,
    },

    /// A private key that is extractable or not sensitive: copies of it may exist, so it
    /// is not used.
    #[error(
        "the private key with ID {id} (label {label:?}) on token {token} is not used: {reason}, \
         so copies of it may exist outside the token. Only keys generated on the token as \
         sensitive and never extractable are used: generate a new one with --slot"
    )]
    KeyNotProtected {
        /// The token, for the message.
        token: String,
        /// The key's CKA_ID, hex.
        id: String,
        /// The key's CKA_LABEL.
        label: String,
        /// Which attribute is wrong.
        reason: &'static str,
    },

    /// A key type this crate does not put on tokens (RSA).
    #[error("{0} keys cannot be kept on a token by this tool; use ed25519 or ecdsa")]
    UnsupportedKeyType(String),

    /// The token's public key could not be read as a TUF key.
    #[error("the token {token} reported an unusable public key: {reason}")]
    BadPublicKey {
        /// The token, for the message.
        token: String,
        /// Why.
        reason: String,
    },

    /// A signature from the token that does not verify with its public key: never returned,
    /// so a faulty token cannot put a bad signature into metadata.
    #[error("the token {token} produced a signature that does not verify with its public key ({reason}); it was not used")]
    BadSignature {
        /// The token, for the message.
        token: String,
        /// Why the signature did not verify.
        reason: String,
    },

    /// A key reference (`.pkcs11` file) that is not well-formed.
    #[error("invalid PKCS#11 key reference: {0}")]
    BadRef(String),

    /// Any other PKCS#11 call that failed.
    #[error("token {token}: {action} failed: {source}")]
    Token {
        /// The token, for the message.
        token: String,
        /// What was being done.
        action: &'static str,
        /// The module's error.
        #[source]
        source: cryptoki::error::Error,
    },
}
