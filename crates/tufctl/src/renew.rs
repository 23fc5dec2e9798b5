//! Renewals before expiry: `keys resign-root` (the roots with version + 1 and a new expiry,
//! nothing else changed) and `waves resign` (the production targets of the wave in
//! production with version + 1 and a new expiry).

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use time::OffsetDateTime;
use tuf_core::{Expires, Role, Root, Signed, Targets};

use crate::creds::CredsFile;
use crate::request;
use crate::rotation;
use crate::settings::Settings;
use crate::updates;

/// `keys resign-root CREDS.tgz [--expires-days N] [--export REQUEST.json]`.
pub fn resign_root(
    s: &Settings,
    path: &Path,
    expires_days: u32,
    export: Option<&Path>,
    cancel_open: bool,
) -> Result<()> {
    let mut file = CredsFile::open(s, path)?;
    let cfg = file.creds.config().clone();
    let api = s.api_with_token(Some(&cfg), "the Factory owner's")?;
    let repo = s.repo_path(Some(&cfg))?;
    let factory = s.factory(Some(&cfg))?;
    // Signing here: the root key signs the current roots again, so they must be the ones the
    // chain from this file's stored root leads to, not whatever the server says they are.
    let current = match export {
        Some(_) => updates::current_roots(&api, &repo),
        None => request::verified_roots(&api, &repo, &file),
    }
    .context("fetching the Factory's current roots (nothing was changed)")?;
    // Exporting signs nothing here: keys (and tokens, which ask for a PIN) stay closed.
    let signers = match export {
        Some(_) => Vec::new(),
        None => updates::role_signers(&file, &current.ci.signed, Role::Root)?,
    };
    if signers.is_empty() && export.is_none() {
        bail!(
            "{} holds none of the current root keys, so it cannot sign the renewed root; \
             nothing was changed. Use the file with the root key, or --export REQUEST.json to \
             have it signed on the offline machine",
            path.display()
        );
    }
    let expires = Expires::after(OffsetDateTime::now_utc(), i64::from(expires_days) * 86_400)?;
    let message = format!("renew the root: expires {expires}");
    let mut tx = updates::begin(&api, &repo, &message, cancel_open, |tx| {
        tx.message == message
    })?;
    // The server's draft is the current root with version + 1; only the expiry changes.
    for (env, cur) in [
        (&mut tx.ci_root, &current.ci.signed),
        (&mut tx.prod_root, &current.prod.signed),
    ] {
        if !unchanged_but_version(&env.signed, cur) {
            bail!(
                "the open transaction {} changes more than the version; it is not a renewal. \
                 Cancel it (`tufctl keys tuf updates cancel`) and run this again",
                tx.txid
            );
        }
        *env = updates::edit_root(env, |r: &mut Root| {
            r.expires = expires;
            Ok(())
        })?;
    }
    tx.stage_prod_targets = false;
    if let Some(out) = export {
        let staged = updates::stage(&api, &repo, &tx)?;
        let req = request::root_update_request(&api, &repo, &factory, &staged, &current)?;
        request::write_file(out, &req.to_bytes()?, "signing request")?;
        println!(
            "Staged the renewal (root version {}, expires {expires}) as transaction {} and wrote \
             its signing request to {}. Sign it offline with `tufctl sign {} -k CREDS.tgz --out \
             RESPONSE.json`, then `tufctl keys tuf updates import RESPONSE.json` and `apply`.",
            tx.ci_root.signed.version,
            tx.txid,
            out.display(),
            out.display()
        );
        return Ok(());
    }
    for env in [&mut tx.ci_root, &mut tx.prod_root] {
        for k in &signers {
            env.sign(k.as_ref())?;
        }
    }
    if !updates::stage_and_apply(&api, &repo, &tx, &current)? {
        return Ok(());
    }
    rotation::store_new_root(&mut file, &api, &repo);
    if s.json() {
        println!(
            "{}",
            json!({"version": tx.ci_root.signed.version, "expires": expires})
        );
    } else {
        println!(
            "Renewed the root: version {}, expires {expires}.",
            tx.ci_root.signed.version
        );
    }
    Ok(())
}

/// `waves resign -k TARGETS-ONLY.tgz WAVE [--expires-days N]`.
pub fn resign_wave(s: &Settings, creds: &Path, wave: &str, expires_days: u32) -> Result<()> {
    let file = CredsFile::open(s, creds)?;
    let cfg = file.creds.config().clone();
    let api = s.api_with_token(Some(&cfg), "the Factory owner's")?;
    let repo = s.repo_path(Some(&cfg))?;
    let factory = s.factory(Some(&cfg))?;
    let prod: Signed<Targets> =
        Signed::from_slice(&api.get(&format!("{repo}/targets.json?production=1"))?)
            .context("the production targets.json is not valid")?;
    let prod_root = request::verified_roots(&api, &repo, &file)?.prod;
    let signers = updates::role_signers(&file, &prod_root.signed, Role::Targets)?;
    if signers.is_empty() {
        bail!(
            "{} holds no offline targets key of the production root; use the file from \
             `tufctl keys copy-targets`",
            creds.display()
        );
    }
    let expires = Expires::after(OffsetDateTime::now_utc(), i64::from(expires_days) * 86_400)?;
    let mut env = Signed::new(renewal(&prod, &prod_root.signed, expires)?)?;
    for k in &signers {
        env.sign(k.as_ref())?;
    }
    let body = json!({"targets": serde_json::from_slice::<Value>(&env.to_bytes())?});
    let answer = api
        .post_json(
            &format!("/ota/factories/{factory}/waves/{wave}/resign"),
            &body,
        )
        .with_context(|| format!("re-signing the production targets of wave {wave:?}"))?;
    if s.json() {
        println!("{answer}");
    } else {
        println!(
            "Renewed the production targets of wave {wave}: version {}, expires {}.",
            env.signed.version, env.signed.expires
        );
    }
    Ok(())
}

/// The renewal of the production targets `prod`: version + 1 and `expires`, nothing else.
/// Only targets that verify under the production root are renewed: the offline key re-signs
/// what it signed before, never a list the server changed since.
fn renewal(prod: &Signed<Targets>, prod_root: &Root, expires: Expires) -> Result<Targets> {
    let v = prod.verify_role("targets", prod_root.role(Role::Targets), &prod_root.keys);
    if !v.is_met() {
        bail!(
            "the production targets the server returned (version {}) do not verify under the \
             production root ({} of {} signatures): they are not what was signed offline, so \
             they are not renewed. Nothing was signed; check the server",
            prod.signed.version,
            v.distinct_valid,
            v.threshold
        );
    }
    let mut next = prod.signed.clone();
    next.version = prod
        .signed
        .version
        .checked_add(1)
        .ok_or_else(|| anyhow!("production targets version overflow"))?;
    next.expires = expires;
    Ok(next)
}

/// Whether `new` is `cur` with version + 1, whatever its expiry and changelog.
fn unchanged_but_version(new: &Root, cur: &Root) -> bool {
    let mut a = new.clone();
    let mut b = cur.clone();
    a.expires = b.expires;
    a.version = b.version;
    for r in [&mut a, &mut b] {
        r.extra.remove("x-changelog");
    }
    new.version == cur.version.saturating_add(1) && a == b
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use tuf_core::{KeyType, PrivateKey, RoleKeys, Signer, Threshold};

    use super::*;

    /// A production root whose targets role is an online and an offline key, threshold 2.
    fn prod_root(online: &PrivateKey, offline: &PrivateKey) -> Root {
        let ids = [online, offline].map(|k| k.key_id().clone());
        let keys: BTreeMap<_, _> = [online, offline]
            .map(|k| (k.key_id().clone(), k.public_key().clone()))
            .into();
        let one = Threshold::new(1).unwrap();
        let roles = BTreeMap::from([
            (Role::Root, RoleKeys::new(vec![ids[1].clone()], one)),
            (
                Role::Targets,
                RoleKeys::new(ids.to_vec(), Threshold::new(2).unwrap()),
            ),
            (Role::Snapshot, RoleKeys::new(vec![ids[0].clone()], one)),
            (Role::Timestamp, RoleKeys::new(vec![ids[0].clone()], one)),
        ]);
        Root::new(3, Expires::from_unix(4_000_000_000).unwrap(), keys, roles)
    }

    /// The server holds the online key: a targets list it changed carries only that one
    /// signature, and the offline key must not renew (sign) it.
    #[test]
    fn only_production_targets_signed_offline_are_renewed() {
        let (online, offline) = (
            PrivateKey::generate(KeyType::Ed25519).unwrap(),
            PrivateKey::generate(KeyType::Ed25519).unwrap(),
        );
        let root = prod_root(&online, &offline);
        let expires = Expires::from_unix(3_900_000_000).unwrap();
        let mut signed = Signed::new(Targets::new(5, expires)).unwrap();
        signed.sign(&online).unwrap();
        signed.sign(&offline).unwrap();
        let next = renewal(&signed, &root, Expires::from_unix(3_950_000_000).unwrap()).unwrap();
        assert_eq!((next.version, next.targets.len()), (6, 0));

        let mut changed = signed.signed.clone();
        let extra: tuf_core::TargetFile =
            serde_json::from_value(json!({"length": 1, "hashes": {"sha256": "00".repeat(32)}}))
                .unwrap();
        changed.targets.insert("evil.bin".into(), extra);
        let mut changed = Signed::new(changed).unwrap();
        changed.sign(&online).unwrap();
        let e = format!("{:#}", renewal(&changed, &root, expires).unwrap_err());
        assert!(e.contains("do not verify under the production root"), "{e}");
    }
}
