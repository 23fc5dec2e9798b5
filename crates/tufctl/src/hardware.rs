//! Keys on hardware tokens (PKCS#11): which module to load, where the PIN comes from, and
//! opening or generating a token key. The credentials tarball holds only a reference
//! (`keys/<name>.pkcs11`); the private key never leaves the token.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::OnceLock;

use anyhow::{anyhow, bail, Context, Result};
use tuf_core::{KeyType, PublicKey};
use tuf_pkcs11::{KeyRef, Pkcs11Signer, SecretString};

use crate::settings::Settings;

/// How this run reaches hardware tokens. The PIN is read once, and only when a token key is
/// actually opened or generated: commands that never touch a token never ask for it.
pub struct TokenAccess {
    /// `--pkcs11 MODULE`: used instead of the module path recorded with a key.
    module: Option<PathBuf>,
    pin_file: Option<PathBuf>,
    pin: OnceLock<SecretString>,
}

impl TokenAccess {
    pub fn new(s: &Settings) -> Self {
        Self {
            module: s.global.pkcs11.clone(),
            pin_file: s.global.pin_file.clone(),
            pin: OnceLock::new(),
        }
    }

    /// `key_ref` with this machine's module path when `--pkcs11` was given.
    pub fn localise(&self, key_ref: &KeyRef) -> KeyRef {
        match &self.module {
            Some(m) => key_ref.with_module(m),
            None => key_ref.clone(),
        }
    }

    /// Opens the key `key_ref` names, logging in to its token.
    pub fn open(&self, key_ref: &KeyRef) -> Result<Pkcs11Signer> {
        let key_ref = self.localise(key_ref);
        let pin = self.pin(&key_ref.token_name())?;
        Pkcs11Signer::open(&key_ref, pin).map_err(|e| {
            anyhow!(e).context(format!(
                "opening the hardware key {} on token {}",
                key_ref.label,
                key_ref.token_name()
            ))
        })
    }

    /// Generates a key pair on the token in `slot` (slot ID or token label) of the
    /// `--pkcs11` module.
    pub fn generate(
        &self,
        slot: &str,
        key_type: KeyType,
        label: &str,
    ) -> Result<(Pkcs11Signer, KeyRef, PublicKey)> {
        let module = self.module.as_deref().ok_or_else(|| {
            anyhow!(
                "--slot needs --pkcs11 MODULE: the PKCS#11 module (shared library) of the token"
            )
        })?;
        let pin = self.pin(&format!("in slot {slot:?}"))?;
        Pkcs11Signer::generate(module, slot, pin, key_type, label).map_err(|e| {
            anyhow!(e).context(format!(
                "generating a key on the token {slot:?} of {}",
                module.display()
            ))
        })
    }

    /// The token PIN: `--pin-file`, else `TUFCTL_PKCS11_PIN`, else a prompt on the terminal
    /// (never echoed).
    fn pin(&self, token: &str) -> Result<&SecretString> {
        if let Some(p) = self.pin.get() {
            return Ok(p);
        }
        let pin = self.read_pin(token)?;
        // Another thread cannot have set it: this runs on the command's one thread.
        let _ = self.pin.set(pin);
        self.pin
            .get()
            .ok_or_else(|| anyhow!("the token PIN could not be kept"))
    }

    fn read_pin(&self, token: &str) -> Result<SecretString> {
        if let Some(file) = &self.pin_file {
            let text = zeroize::Zeroizing::new(
                std::fs::read_to_string(file)
                    .with_context(|| format!("reading the PIN file {}", file.display()))?,
            );
            return Ok(SecretString::from(
                text.trim_end_matches(['\n', '\r']).to_owned(),
            ));
        }
        if let Ok(p) = std::env::var("TUFCTL_PKCS11_PIN") {
            return Ok(SecretString::from(p));
        }
        if !std::io::stdin().is_terminal() {
            bail!(
                "the hardware token {token} needs its PIN and standard input is not a terminal \
                 to ask for it: pass --pin-file FILE or set TUFCTL_PKCS11_PIN"
            );
        }
        let pin = rpassword::prompt_password(format!("PIN of the hardware token {token}: "))
            .context("reading the token PIN from the terminal")?;
        Ok(SecretString::from(pin))
    }
}
