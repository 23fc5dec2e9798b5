//! Which keys of a credentials file are active: listed by the Factory's current root (or,
//! offline, by the root the file stores) with their private part in the file or on a token.
//! Shared by `keys export-root` and `keys backup`.

use std::path::Path;

use anyhow::{anyhow, bail, Result};
use tuf_core::{KeyId, PublicKey, Role, Root, Signed};
use tuf_credentials::PrivatePart;

use crate::creds::CredsFile;
use crate::settings::Settings;

/// A key in the credentials file that the Factory's root lists for a role, with its private
/// part.
pub struct ActiveKey {
    pub name: String,
    pub id: KeyId,
    pub public: PublicKey,
}

/// Where the root used to decide "active" came from, for people.
pub struct Active {
    pub keys: Vec<ActiveKey>,
    /// Active keys of the role whose private part is on a hardware token ("LABEL (serial
    /// S)"): usable for signing, impossible to copy.
    pub on_token: Vec<(ActiveKey, String)>,
    pub source: String,
}

impl Active {
    /// Explains the token keys that a backup leaves out; an error when nothing else is left.
    pub fn explain_token_keys(&self, creds: &Path) -> Result<()> {
        for (k, token) in &self.on_token {
            let msg = format!(
                "the active key {} ({}) in {} is on the hardware token {token}: {TOKEN_KEY_BACKUP}",
                k.id,
                k.name,
                creds.display()
            );
            if self.keys.is_empty() {
                bail!(msg);
            }
            errln!("note: {msg}; it is left out");
        }
        Ok(())
    }
}

/// Why a token key cannot be exported or split into shares, and what to do instead.
pub const TOKEN_KEY_BACKUP: &str = "this key never leaves the token; back it up with the token \
     vendor's tools or add a second root key holder";

/// The keys of `role` in the Factory's current root (the production root for targets, where
/// the offline targets key lives) that `file` holds private keys for. Falls back to the
/// file's `roles/root.json` when the server cannot be reached, and says so on stderr.
pub fn active_keys(s: &Settings, file: &CredsFile, role: Role) -> Result<Active> {
    let cfg = file.creds.config().clone();
    let query = if role == Role::Targets {
        "?production=1"
    } else {
        ""
    };
    let server: Result<Signed<Root>> = s.api(Some(&cfg)).and_then(|api| {
        let repo = s.repo_path(Some(&cfg))?;
        Ok(Signed::<Root>::from_slice(
            &api.get(&format!("{repo}/root.json{query}"))?,
        )?)
    });
    let (root, source) = root_or_stored(file, server)?;
    let root = &root.signed;
    let other = if role == Role::Targets {
        root.role_keys(Role::Root)
    } else {
        Default::default()
    };
    let mut keys = Vec::new();
    let mut on_token = Vec::new();
    for k in file.creds.keys()? {
        if !k.can_sign() {
            continue;
        }
        // A targets backup is for the offline targets key: never a root key doubling as one.
        if other
            .values()
            .any(|p| tuf_credentials::same_key(p, &k.public))
        {
            continue;
        }
        if let Some((id, _)) = root
            .role_keys(role)
            .into_iter()
            .find(|(_, p)| tuf_credentials::same_key(p, &k.public))
        {
            let active = ActiveKey {
                name: k.name,
                id,
                public: k.public,
            };
            match k.private {
                PrivatePart::Token { label, serial } => {
                    on_token.push((active, format!("{label:?} (serial {serial})")))
                }
                _ => keys.push(active),
            }
        }
    }
    Ok(Active {
        keys,
        on_token,
        source,
    })
}

/// The server's root, or (offline) the file's stored root, with where it came from.
fn root_or_stored(
    file: &CredsFile,
    server: Result<Signed<Root>>,
) -> Result<(Signed<Root>, String)> {
    match server {
        Ok(r) => {
            let v = r.signed.version;
            Ok((r, format!("the Factory's current root (version {v})")))
        }
        Err(e) => {
            let e = crate::outcome::paragraph(&e);
            let stored = file.stored_root()?.ok_or_else(|| {
                anyhow!(
                    "the server is unreachable ({e:#}) and {} has no roles/root.json, so the \
                     active keys cannot be told",
                    file.path.display()
                )
            })?;
            errln!(
                "note: OFFLINE: could not fetch the Factory's root from the server ({e:#}); \
                 deciding which keys are active from roles/root.json stored in {} (version \
                 {}), which may be older than the Factory's current root",
                file.path.display(),
                stored.signed.version
            );
            let v = stored.signed.version;
            Ok((
                stored,
                format!("roles/root.json in the file (version {v}; offline)"),
            ))
        }
    }
}
