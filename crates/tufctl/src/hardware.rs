//! Keys on hardware tokens (PKCS#11): which module to load, where the PIN comes from, and
//! opening or generating a token key. The credentials tarball holds only a reference
//! (`keys/<name>.pkcs11`); the private key never leaves the token.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::{anyhow, bail, Context, Result};
use tuf_core::{KeyType, PublicKey};
use tuf_pkcs11::{KeyRef, Pkcs11Signer, SecretString};

use crate::settings::Settings;

/// How this run reaches hardware tokens. A token's PIN is read once per token, and only when
/// a key on it is actually opened or generated: commands that never touch a token never ask
/// for it, and two tokens are never given each other's PIN (every wrong PIN brings a token
/// closer to locking itself).
pub struct TokenAccess {
    /// `--pkcs11 MODULE`: used instead of the module path recorded with a key.
    module: Option<PathBuf>,
    pin_file: Option<PathBuf>,
    /// PINs read so far, by token serial number (by slot before a generation).
    pins: Mutex<BTreeMap<String, SecretString>>,
}

impl TokenAccess {
    pub fn new(s: &Settings) -> Self {
        Self {
            module: s.global.pkcs11.clone(),
            pin_file: s.global.pin_file.clone(),
            pins: Mutex::new(BTreeMap::new()),
        }
    }

    /// `key_ref` with the module to load: `--pkcs11` when given; otherwise the recorded
    /// one, only if it is installed in a system location. A credentials file is an input,
    /// and loading a module runs its code.
    pub fn localise(&self, key_ref: &KeyRef) -> Result<KeyRef> {
        match &self.module {
            Some(m) => Ok(key_ref.with_module(m)),
            None => Ok(key_ref.with_module(&tuf_pkcs11::system_module(&key_ref.module)?)),
        }
    }

    /// Opens the key `key_ref` names, logging in to its token.
    pub fn open(&self, key_ref: &KeyRef) -> Result<Pkcs11Signer> {
        let key_ref = self.localise(key_ref).with_context(|| {
            format!(
                "opening the hardware key {} on token {}",
                key_ref.label,
                key_ref.token_name()
            )
        })?;
        let pin = self.pin(&key_ref.token_serial, || {
            self.read_pin(&key_ref.token_name())
        })?;
        Pkcs11Signer::open(&key_ref, &pin).map_err(|e| {
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
        let slot_key = format!("slot {slot}");
        let pin = self.pin(&slot_key, || self.read_pin(&format!("in slot {slot:?}")))?;
        let generated =
            Pkcs11Signer::generate(module, slot, &pin, key_type, label).map_err(|e| {
                anyhow!(e).context(format!(
                    "generating a key on the token {slot:?} of {}",
                    module.display()
                ))
            })?;
        // The token is now known by its serial: opening a key on it later asks no more.
        self.pins_mut()
            .insert(generated.1.token_serial.clone(), pin);
        Ok(generated)
    }

    /// The PIN of the token `serial`: the one read before for it, else `read()`.
    fn pin(
        &self,
        serial: &str,
        read: impl FnOnce() -> Result<SecretString>,
    ) -> Result<SecretString> {
        if let Some(p) = self.pins_mut().get(serial) {
            return Ok(p.clone());
        }
        let pin = read()?;
        self.pins_mut().insert(serial.to_owned(), pin.clone());
        Ok(pin)
    }

    fn pins_mut(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, SecretString>> {
        // A poisoned lock only means a panic elsewhere; the PINs in it are still valid.
        self.pins.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A token PIN: `--pin-file`, else `TUFCTL_PKCS11_PIN`, else a prompt on the terminal
    /// (never echoed).
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

#[cfg(test)]
mod tests {
    use super::*;

    fn key_ref(module: &std::path::Path) -> KeyRef {
        KeyRef {
            module: module.to_owned(),
            token_label: "t".into(),
            token_serial: "1".into(),
            id: "01".into(),
            label: "k".into(),
            keytype: "ed25519".into(),
            scheme: "ed25519".into(),
        }
    }

    fn access(module: Option<PathBuf>) -> TokenAccess {
        TokenAccess {
            module,
            pin_file: None,
            pins: Mutex::new(BTreeMap::new()),
        }
    }

    /// Each token is asked for its own PIN, once.
    #[test]
    fn each_token_gets_its_own_pin_once() {
        let a = access(None);
        let asked = std::cell::Cell::new(0);
        let read = |p: &str| {
            asked.set(asked.get() + 1);
            Ok(SecretString::from(p.to_owned()))
        };
        use tuf_pkcs11::ExposeSecret;
        let first = a.pin("serial-a", || read("1111")).unwrap();
        let second = a.pin("serial-b", || read("2222")).unwrap();
        let again = a.pin("serial-a", || read("9999")).unwrap();
        assert_eq!(
            (
                first.expose_secret(),
                second.expose_secret(),
                again.expose_secret()
            ),
            ("1111", "2222", "1111")
        );
        assert_eq!(asked.get(), 2);
    }

    /// A tarball naming a module the user did not install (here a copy of a real one in a
    /// directory others may write to) must not get it loaded: that is running its code.
    #[test]
    fn a_module_named_by_a_tarball_loads_only_from_a_system_location() {
        let dir = tempfile::tempdir().unwrap();
        let planted = dir.path().join("libplanted.so");
        match std::env::var_os("TUF_TEST_PKCS11_MODULE") {
            Some(real) => {
                std::fs::copy(&real, &planted).unwrap();
            }
            None => std::fs::write(&planted, b"not a module").unwrap(),
        }
        let e = format!(
            "{:#}",
            access(None).localise(&key_ref(&planted)).err().unwrap()
        );
        assert!(
            e.contains("cannot load the PKCS#11 module") && e.contains("--pkcs11 MODULE"),
            "{e}"
        );
        let e = format!("{:#}", access(None).open(&key_ref(&planted)).err().unwrap());
        assert!(e.contains("system location"), "{e}");
        let relative = key_ref(std::path::Path::new("lib/softhsm2.so"));
        let e = format!("{:#}", access(None).localise(&relative).err().unwrap());
        assert!(e.contains("not absolute"), "{e}");
        // Named by the user, the module is theirs to choose.
        let r = access(Some(planted.clone()))
            .localise(&key_ref(std::path::Path::new("/nowhere.so")))
            .unwrap();
        assert_eq!(r.module, planted);
        // A module the system installed keeps working without --pkcs11.
        if let Some(real) = std::env::var_os("TUF_TEST_PKCS11_MODULE") {
            let r = access(None)
                .localise(&key_ref(std::path::Path::new(&real)))
                .unwrap();
            assert!(r.module.is_absolute() && r.module.exists(), "{r:?}");
        }
    }
}
