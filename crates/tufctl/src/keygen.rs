//! New offline keys made on the offline machine: `keys generate` adds a key to the
//! credentials file there and writes only its public part to a small file, which the online
//! machine adds to a root-update transaction (`keys tuf updates add-offline-key
//! --public-key`). The private key never exists on a networked machine.

use std::path::Path;

use anyhow::{bail, Context, Result};
use tuf_ceremony::format::{offline_role, PublicKeyFile};

use crate::cli::KeyTypeArg;
use crate::creds::{new_key_into, CredsFile};
use crate::settings::{default_owner, Settings};

/// `keys generate CREDS.tgz --role R --out KEY.json`: needs no server and no network.
pub fn generate(
    s: &Settings,
    path: &Path,
    role: &str,
    key_type: KeyTypeArg,
    slot: Option<&str>,
    owner: Option<String>,
    out: &Path,
) -> Result<()> {
    let role = offline_role(role)?;
    if out.exists() {
        bail!(
            "{} exists; refusing to overwrite it (nothing was generated)",
            out.display()
        );
    }
    let mut file = CredsFile::open(s, path)?;
    let factory = file.creds.config().factory.clone();
    let (public, stored_as) = new_key_into(&mut file, role, key_type.key_type(), slot)?;
    // The key is in the credentials file before its public part goes anywhere.
    file.save()
        .context("saving the new key (nothing else was written)")?;
    let owner = owner.unwrap_or_else(default_owner);
    let f = PublicKeyFile::new(&factory, role, &owner, public);
    // Never over a file that appeared since the check above.
    tuf_credentials::save_new(out, &f.to_bytes()?).with_context(|| {
        format!(
            "the key is saved in {}, but the public-key file {} could not be written",
            path.display(),
            out.display()
        )
    })?;
    if s.json() {
        outln!(
            "{}",
            serde_json::json!({"keyid": f.keyid, "role": f.role, "stored_as": stored_as, "out": out})
        );
    } else {
        outln!(
            "Generated the {role} key {} and stored it in {} as tufrepo/keys/{stored_as}.\nCarry {} \
             (public part only) to the online machine and add it to a root-update transaction \
             with `tufctl keys tuf updates add-offline-key --role {role} --public-key {}`.",
            f.keyid,
            path.display(),
            out.display(),
            out.display()
        );
    }
    Ok(())
}
