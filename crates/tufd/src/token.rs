//! Online keys on a PKCS#11 token (`tufd --pkcs11 MODULE --slot S --pin-file F`): generated
//! on the token as sensitive, non-extractable objects, used through `tuf-pkcs11`, destroyed
//! with C_DestroyObject. The database keeps only each key's reference (module, token serial,
//! CKA_ID: no secret), so replicas that share the database and the token share the keys.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use tuf_core::{KeyType, PublicKey, Signer};
use tuf_pkcs11::{KeyRef, Pkcs11Signer, SecretString};
use zeroize::Zeroizing;

use crate::error::{ApiError, ApiResult};

/// The token tufd keeps its online keys on.
pub struct Token {
    module: PathBuf,
    slot: String,
    pin: SecretString,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("module", &self.module)
            .field("slot", &self.slot)
            .finish_non_exhaustive()
    }
}

impl Token {
    /// Reads the PIN from `pin_file` (one line) and logs in once, so a wrong PIN or a
    /// missing token stops tufd at start.
    pub fn open(module: &Path, slot: &str, pin_file: &Path) -> anyhow::Result<Self> {
        let text = Zeroizing::new(
            std::fs::read_to_string(pin_file)
                .with_context(|| format!("reading the token PIN from {}", pin_file.display()))?,
        );
        let pin = SecretString::from(text.trim_end_matches(['\r', '\n']).to_owned());
        let (label, serial) = tuf_pkcs11::login_check(module, slot, &pin)
            .with_context(|| format!("logging in to the PKCS#11 token in slot {slot}"))?;
        tracing::info!(token = %label, serial = %serial, "online keys on the PKCS#11 token");
        Ok(Self {
            module: module.to_owned(),
            slot: slot.to_owned(),
            pin,
        })
    }

    /// A new key pair on the token: `(reference JSON, public key)`.
    pub fn generate(&self, kind: KeyType, label: &str) -> ApiResult<(String, PublicKey)> {
        let (_, key_ref, public) =
            blocking(|| Pkcs11Signer::generate(&self.module, &self.slot, &self.pin, kind, label))
                .map_err(|e| token_failed("generating a key", e))?;
        // One line of JSON: the reference is a column value.
        let json =
            serde_json::to_string(&key_ref).map_err(|_| ApiError::internal("key reference"))?;
        Ok((json, public))
    }

    /// The signer of a stored reference, found on this replica's module path.
    pub fn signer(&self, key_ref: &str) -> ApiResult<Arc<dyn Signer>> {
        let r = self.key_ref(key_ref)?;
        let signer = blocking(|| Pkcs11Signer::open(&r, &self.pin))
            .map_err(|e| token_failed("opening a key", e))?;
        Ok(Arc::new(signer))
    }

    /// C_DestroyObject on both halves of the key; a key already gone is no error.
    pub fn destroy(&self, key_ref: &str) -> ApiResult<()> {
        let r = self.key_ref(key_ref)?;
        blocking(|| tuf_pkcs11::destroy(&r, &self.pin))
            .map_err(|e| token_failed("destroying a key", e))
    }

    fn key_ref(&self, json: &str) -> ApiResult<KeyRef> {
        let r = KeyRef::from_json(json.as_bytes())
            .map_err(|e| token_failed("reading a key reference", e))?;
        Ok(r.with_module(&self.module))
    }
}

/// Token calls block; the runtime moves other tasks off this worker meanwhile.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

fn token_failed(what: &str, e: tuf_pkcs11::Error) -> ApiError {
    // tuf-pkcs11 errors never carry the PIN.
    tracing::error!(error = %e, "PKCS#11 token: {what}");
    ApiError::internal(&format!("the PKCS#11 token failed {what}"))
}
