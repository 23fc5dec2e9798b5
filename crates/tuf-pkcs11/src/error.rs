use std::path::PathBuf;

/// Everything that can go wrong with a key on a PKCS#11 token. Messages name the module, the
/// token and the key; they never contain a PIN.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("cannot load the PKCS#11 module {}: {reason}", path.display())]
    ModuleLoad { path: PathBuf, reason: String },

    #[error("the PKCS#11 module {} failed to start: {reason}", path.display())]
    ModuleInit { path: PathBuf, reason: String },

    #[error(
        "the token {label:?} (serial {serial}) is not present in the PKCS#11 module {}: insert \
         that token (or check the module's configuration) and try again",
        module.display()
    )]
    TokenNotPresent {
        module: PathBuf,
        label: String,
        serial: String,
    },

    #[error(
        "no token in slot or with label {wanted:?} in the PKCS#11 module {}; tokens present: {available}",
        module.display()
    )]
    NoSuchToken {
        module: PathBuf,
        wanted: String,
        available: String,
    },

    #[error("the PIN for token {label:?} (serial {serial}) was refused")]
    PinIncorrect { label: String, serial: String },

    #[error("the PIN of token {label:?} (serial {serial}) is locked; unlock it with the token vendor's tools")]
    PinLocked { label: String, serial: String },

    #[error(
        "the token {token_label:?} (serial {token_serial}) holds no {what} with ID {id} \
         (label {label:?}); was the key deleted, or is this another token with the same serial?"
    )]
    KeyNotFound {
        token_label: String,
        token_serial: String,
        what: &'static str,
        id: String,
        label: String,
    },

    #[error(
        "the private key with ID {id} (label {label:?}) on token {token} is not used: {reason}, \
         so copies of it may exist outside the token. Only keys generated on the token as \
         sensitive and never extractable are used: generate a new one with --slot"
    )]
    KeyNotProtected {
        token: String,
        id: String,
        label: String,
        reason: &'static str,
    },

    #[error("{0} keys cannot be kept on a token by this tool; use ed25519 or ecdsa")]
    UnsupportedKeyType(String),

    #[error("the token {token} reported an unusable public key: {reason}")]
    BadPublicKey { token: String, reason: String },

    #[error("the token {token} produced a signature that does not verify with its public key ({reason}); it was not used")]
    BadSignature { token: String, reason: String },

    #[error("invalid PKCS#11 key reference: {0}")]
    BadRef(String),

    #[error("token {token}: {action} failed: {source}")]
    Token {
        token: String,
        action: &'static str,
        #[source]
        source: cryptoki::error::Error,
    },
}
