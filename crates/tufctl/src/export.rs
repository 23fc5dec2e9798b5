//! `keys export-root`: the plain text backup of the active root private key(s).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::json;
use tuf_core::Role;

use crate::active::{active_keys, ActiveKey};
use crate::creds::CredsFile;
use crate::settings::Settings;

pub fn export_root(s: &Settings, creds: &Path, out: Option<&Path>) -> Result<()> {
    let file = CredsFile::open(s, creds)?;
    let active = active_keys(s, &file, Role::Root)?;
    active.explain_token_keys(creds)?;
    if active.keys.is_empty() {
        bail!(
            "{} holds no private key of the active root role (checked against {}); this file \
             cannot rotate the root",
            creds.display(),
            active.source
        );
    }
    if out.is_some() && active.keys.len() > 1 {
        bail!(
            "the file holds {} active root keys but --out names one file; leave --out out to \
             write each as <name>.sec in the current directory",
            active.keys.len()
        );
    }
    let mut written: Vec<(PathBuf, &ActiveKey)> = Vec::new();
    for k in &active.keys {
        let path = match out {
            Some(p) => p.to_owned(),
            None => PathBuf::from(format!("{}.sec", k.name)),
        };
        let sec = file.creds.secret_key_file(&k.name)?;
        tuf_credentials::save_new(&path, &sec)
            .with_context(|| format!("writing {} (nothing was overwritten)", path.display()))?;
        written.push((path, k));
    }
    for (path, k) in &written {
        errln!(
            "WARNING: {} holds the Factory's root PRIVATE key {} in plain text (mode 0600). \
             Whoever reads it controls which updates every device trusts. Put it on offline \
             backup media in a safe and delete it from this machine.",
            path.display(),
            k.id
        );
    }
    if s.json() {
        let files: Vec<_> = written
            .iter()
            .map(|(p, k)| json!({"file": p, "keyid": k.id.as_str(), "name": k.name}))
            .collect();
        outln!(
            "{}",
            json!({"keys": files, "checked_against": active.source})
        );
    } else {
        for (p, k) in &written {
            outln!(
                "Wrote root key {} ({}) to {} (active in {}).",
                k.id,
                k.public.keytype,
                p.display(),
                active.source
            );
        }
    }
    Ok(())
}
