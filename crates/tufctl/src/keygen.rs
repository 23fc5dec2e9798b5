//! New offline keys made on the offline machine: `keys generate` adds a key to the
//! credentials file there and writes only its public part to a small file, which the online
//! machine adds to a root-update transaction (`keys tuf updates add-offline-key
//! --public-key`). The private key never exists on a networked machine.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tuf_core::{canonical, KeyId, PrivateKey, PublicKey, Role, Signer};

use crate::cli::KeyTypeArg;
use crate::creds::CredsFile;
use crate::request;
use crate::settings::Settings;

pub const PUBLIC_KEY: &str = "tuf-factory/public-key";

/// The file `keys generate` writes: a new key's public part and what it is for.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicKeyFile {
    #[serde(rename = "type")]
    pub kind: String,
    pub format: u64,
    pub factory: String,
    pub role: String,
    pub owner: String,
    pub keyid: KeyId,
    pub key: PublicKey,
}

impl PublicKeyFile {
    /// Parses and checks a public-key file: its type and format, a root or targets role, and
    /// a key ID that is the one computed from the key (a swapped key is refused).
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let value: Value = canonical::parse(bytes).context("it is not valid JSON")?;
        let f: Self = serde_json::from_value(value)
            .context("it is not a public-key file of `tufctl keys generate`")?;
        if f.kind != PUBLIC_KEY {
            bail!("its type is {:?}, not {PUBLIC_KEY:?}", f.kind);
        }
        if f.format != request::FORMAT {
            bail!(
                "it is format {}, this tufctl reads format {}",
                f.format,
                request::FORMAT
            );
        }
        f.role()?;
        let computed = f.key.key_id();
        if computed != f.keyid {
            bail!(
                "it names key {} but holds key {computed}: the key was swapped",
                f.keyid
            );
        }
        Ok(f)
    }

    pub fn role(&self) -> Result<Role> {
        offline_role(&self.role)
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        Ok(canonical::to_text(&serde_json::to_value(self)?)?)
    }
}

/// The role of an offline key: root or targets (the server holds the others).
pub fn offline_role(name: &str) -> Result<Role> {
    match name {
        "root" => Ok(Role::Root),
        "targets" => Ok(Role::Targets),
        other => bail!("role {other:?}: offline keys are for the root or targets role only"),
    }
}

/// Generates a new `role` key into `file` (in memory; the caller saves): a file key, or with
/// `slot` a key on that hardware token, whose reference is stored. Returns the public key
/// and the entry it is stored as (`<name>.sec` or `<name>.pkcs11`).
pub fn new_key_into(
    file: &mut CredsFile,
    role: Role,
    key_type: KeyTypeArg,
    slot: Option<&str>,
) -> Result<(PublicKey, String)> {
    Ok(match slot {
        None => {
            let key = PrivateKey::generate(key_type.key_type())?;
            let name = format!("tufctl-{role}-{}", key.key_id());
            file.creds.add_key(&name, &key)?;
            (key.public_key().clone(), format!("{name}.sec"))
        }
        Some(slot) => {
            let (_, key_ref, public) =
                file.tokens
                    .generate(slot, key_type.key_type(), &format!("tufctl-{role}"))?;
            let name = format!("tufctl-{role}-{}", public.key_id());
            file.creds
                .add_token_key(&name, &public, &key_ref.to_json()?)?;
            (public, format!("{name}.pkcs11"))
        }
    })
}

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
    let (public, stored_as) = new_key_into(&mut file, role, key_type, slot)?;
    // The key is in the credentials file before its public part goes anywhere.
    file.save()
        .context("saving the new key (nothing else was written)")?;
    let f = PublicKeyFile {
        kind: PUBLIC_KEY.to_owned(),
        format: request::FORMAT,
        factory,
        role: role.as_str().to_owned(),
        owner: owner.unwrap_or_else(crate::updates::default_owner),
        keyid: public.key_id(),
        key: public,
    };
    // Never over a file that appeared since the check above.
    tuf_credentials::save_new(out, &f.to_bytes()?).with_context(|| {
        format!(
            "the key is saved in {}, but the public-key file {} could not be written",
            path.display(),
            out.display()
        )
    })?;
    if s.json() {
        println!(
            "{}",
            serde_json::json!({"keyid": f.keyid, "role": f.role, "stored_as": stored_as, "out": out})
        );
    } else {
        println!(
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

#[cfg(test)]
mod tests {
    use tuf_core::KeyType;

    use super::*;

    fn file() -> PublicKeyFile {
        let k = PrivateKey::generate(KeyType::Ed25519).unwrap();
        PublicKeyFile {
            kind: PUBLIC_KEY.into(),
            format: 1,
            factory: "acme".into(),
            role: "root".into(),
            owner: "vault@site".into(),
            keyid: k.key_id().clone(),
            key: k.public_key().clone(),
        }
    }

    #[test]
    fn a_public_key_file_round_trips() {
        let f = file();
        let back = PublicKeyFile::parse(&f.to_bytes().unwrap()).unwrap();
        assert_eq!(back.keyid, f.keyid);
        assert_eq!(back.role().unwrap(), Role::Root);
    }

    #[test]
    fn a_swapped_key_a_wrong_role_or_type_is_refused() {
        let mut f = file();
        f.key = PrivateKey::generate(KeyType::Ed25519)
            .unwrap()
            .public_key()
            .clone();
        let e = format!(
            "{:#}",
            PublicKeyFile::parse(&f.to_bytes().unwrap()).unwrap_err()
        );
        assert!(e.contains("the key was swapped"), "{e}");
        let mut f = file();
        f.role = "snapshot".into();
        let e = format!(
            "{:#}",
            PublicKeyFile::parse(&f.to_bytes().unwrap()).unwrap_err()
        );
        assert!(e.contains("root or targets"), "{e}");
        let mut f = file();
        f.kind = "tuf-factory/root-update-request".into();
        assert!(PublicKeyFile::parse(&f.to_bytes().unwrap()).is_err());
        assert!(PublicKeyFile::parse(b"{\"type\": 1").is_err());
    }
}
