//! `keys encrypt` / `keys decrypt`: turn a credentials file into an age passphrase file and
//! back, in place and atomically. The bytes are kept exactly: decrypting an encrypted file
//! gives back the very tarball that was encrypted.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde_json::json;
use tuf_credentials::Credentials;

use crate::creds::{self, explain_leftovers};
use crate::settings::Settings;

pub fn encrypt(s: &Settings, path: &Path) -> Result<()> {
    let loaded = tuf_credentials::load(path)
        .with_context(|| format!("cannot read the credentials file {}", path.display()))?;
    explain_leftovers(path, &loaded.leftovers);
    if Credentials::is_encrypted(&loaded.bytes) {
        bail!(
            "{} is already encrypted; nothing was changed (to change its passphrase: `tufctl \
             keys decrypt` then `tufctl keys encrypt`)",
            path.display()
        );
    }
    Credentials::read(&loaded.bytes).with_context(|| {
        format!(
            "{} is not a usable credentials file; nothing was changed",
            path.display()
        )
    })?;
    let pass = creds::new_passphrase(s)?;
    let enc = tuf_credentials::encrypt_bytes(&loaded.bytes, &pass)?;
    tuf_credentials::save_atomic(path, &enc).with_context(|| {
        format!(
            "cannot write {} (it still holds its previous, plain contents)",
            path.display()
        )
    })?;
    report(s, path, "encrypted", "It is now an age passphrase file (`age -d` opens it too). Keep the passphrase apart from the file: without it the keys are lost.");
    Ok(())
}

pub fn decrypt(s: &Settings, path: &Path) -> Result<()> {
    let loaded = tuf_credentials::load(path)
        .with_context(|| format!("cannot read the credentials file {}", path.display()))?;
    explain_leftovers(path, &loaded.leftovers);
    if !Credentials::is_encrypted(&loaded.bytes) {
        bail!("{} is not encrypted; nothing was changed", path.display());
    }
    let pass = creds::passphrase(s)
        .with_context(|| format!("{} is encrypted with a passphrase", path.display()))?;
    let plain = tuf_credentials::decrypt_bytes(&loaded.bytes, &pass)
        .with_context(|| format!("cannot decrypt {} (it was left unchanged)", path.display()))?;
    Credentials::read(&plain).with_context(|| {
        format!(
            "{} decrypts, but not to a usable credentials file; it was left unchanged",
            path.display()
        )
    })?;
    tuf_credentials::save_atomic(path, &plain).with_context(|| {
        format!(
            "cannot write {} (it still holds its previous, encrypted contents)",
            path.display()
        )
    })?;
    report(
        s,
        path,
        "decrypted",
        "It now holds the private keys in plain text: keep it offline.",
    );
    Ok(())
}

fn report(s: &Settings, path: &Path, what: &str, note: &str) {
    if s.json() {
        outln!("{}", json!({"file": path, "state": what}));
    } else {
        outln!("{} is {what}. {note}", path.display());
    }
}
