//! `keys rotate-root` and `keys rotate-targets`: one-step root updates over the transaction
//! API, with the nothing-is-lost rule: a new private key is in the tarball on disk (atomic
//! replace, fsync) before anything is sent to the server, and a re-run reuses it.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use tuf_core::{KeyId, PrivateKey, PublicKey, Role, Root, Signer, Threshold};
use tuf_credentials::{Credentials, PrivatePart};

use crate::cli::KeyTypeArg;
use crate::client::Api;
use crate::creds::CredsFile;
use crate::settings::Settings;
use crate::updates::{self, Current};

pub struct Options {
    pub key_type: KeyTypeArg,
    /// Generate the new key on the hardware token in this slot (slot ID or token label).
    pub slot: Option<String>,
    pub owner: Option<String>,
    pub cancel_open: bool,
}

pub fn rotate_root(s: &Settings, path: &Path, opts: Options) -> Result<()> {
    let Start {
        mut file,
        api,
        repo,
        current,
        signers,
    } = Start::open(
        s,
        path,
        "so it cannot sign a root rotation; the file was left unchanged. Use the tarball that \
         holds the active root key (see `tufctl keys status`); a lost root key cannot be recovered",
    )?;
    let (key, reused, done) = new_key(&mut file, &api, &repo, &current, Role::Root, &opts)?;
    let name = key_name("root", key.key_id());
    let new_id = key.key_id().clone();
    let owner = opts.owner.unwrap_or_else(updates::default_owner);

    let run = || -> Result<bool> {
        let message = format!("rotate root key to {new_id}");
        // An open transaction this command opened for this very key (its message names the
        // key) is an earlier run's, interrupted after init or stage: continue it.
        let mut tx = updates::begin(&api, &repo, &message, opts.cancel_open, |tx| {
            tx.message == message || tx.ci_root.signed.role(Role::Root).keyids.contains(&new_id)
        })?;
        let public = key.public_key().clone();
        let edit = |r: &mut Root| -> Result<()> {
            r.keys.insert(new_id.clone(), public.clone());
            let role = r.role_mut(Role::Root)?;
            role.keyids = vec![new_id.clone()];
            role.threshold = Threshold::new(1)?;
            r.prune_keys();
            updates::set_owner(r, &new_id, &owner);
            Ok(())
        };
        tx.ci_root = updates::edit_root(&tx.ci_root, edit)?;
        tx.prod_root = updates::edit_root(&tx.prod_root, edit)?;
        for env in [&mut tx.ci_root, &mut tx.prod_root] {
            for k in &signers {
                env.sign(k.as_ref())?;
            }
            env.sign(key.as_ref())?;
        }
        updates::stage_and_apply(&api, &repo, &tx, &current)
    };
    let result = if done { Ok(true) } else { run() };
    let applied = result.map_err(|e| pending_hint(e, path, &name, "rotate-root"))?;
    if !applied {
        return Ok(());
    }
    store_new_root(&mut file, &api, &repo);
    let (token, key_file) = stored_as(&file, &name)?;
    if s.json() {
        println!(
            "{}",
            serde_json::json!({"root_keyid": new_id, "key_file": key_file, "token": token, "reused_pending_key": reused})
        );
    } else if let Some(token) = token {
        println!(
            "Rotated the root key. New root key ID: {new_id}\nIts private key ({}) was \
             generated on the hardware token {token} and never leaves it; {} records only a \
             reference to it ({key_file}).\nWithout that token (and its PIN) the Factory's \
             root can never be changed again: consider a second root key holder.",
            key.public_key().kind(),
            path.display()
        );
    } else {
        println!(
            "Rotated the root key. New root key ID: {new_id}\nIts private key is stored only \
             in {} as {key_file} ({}).\nBack this file up now (the tarball, a \
             plain-text copy of that .sec file, and a printout): without it the Factory's \
             root can never be changed again.",
            path.display(),
            key.public_key().kind()
        );
    }
    Ok(())
}

pub fn rotate_targets(s: &Settings, path: &Path, opts: Options) -> Result<()> {
    let Start {
        mut file,
        api,
        repo,
        current,
        signers,
    } = Start::open(
        s,
        path,
        "and a targets rotation changes the root; the file was left unchanged. Use the tarball \
         that holds the active root key (see `tufctl keys status`)",
    )?;
    let online = online_targets_keys(&current.ci.signed, &file.creds)?;
    if online.is_empty() {
        bail!("cannot tell the server's online targets key in the current root (no key owned by \"tufd\" in x-key-owners)");
    }
    let (key, reused, done) = new_key(&mut file, &api, &repo, &current, Role::Targets, &opts)?;
    let name = key_name("targets", key.key_id());
    let new_id = key.key_id().clone();
    let owner = opts.owner.unwrap_or_else(updates::default_owner);

    let run = || -> Result<bool> {
        let message = format!("rotate offline targets key to {new_id}");
        let mut tx = updates::begin(&api, &repo, &message, opts.cancel_open, |tx| {
            tx.message == message
                || tx
                    .ci_root
                    .signed
                    .role(Role::Targets)
                    .keyids
                    .contains(&new_id)
        })?;
        let public = key.public_key().clone();
        let edit = |prod: bool| {
            let online = online.clone();
            let (new_id, public, owner) = (new_id.clone(), public.clone(), owner.clone());
            move |r: &mut Root| -> Result<()> {
                r.keys.insert(new_id.clone(), public.clone());
                let role = r.role_mut(Role::Targets)?;
                let mut keyids = online.clone();
                keyids.push(new_id.clone());
                role.keyids = keyids;
                role.threshold = Threshold::new(if prod { 2 } else { 1 })?;
                r.prune_keys();
                updates::set_owner(r, &new_id, &owner);
                Ok(())
            }
        };
        tx.ci_root = updates::edit_root(&tx.ci_root, edit(false))?;
        tx.prod_root = updates::edit_root(&tx.prod_root, edit(true))?;
        for env in [&mut tx.ci_root, &mut tx.prod_root] {
            for k in &signers {
                env.sign(k.as_ref())?;
            }
        }
        // Production devices will need the new offline key's signature on targets.
        let targets = tx
            .prod_targets
            .as_mut()
            .ok_or_else(|| anyhow!("the server's transaction has no prod_targets draft to sign"))?;
        targets.sign(key.as_ref())?;
        tx.stage_prod_targets = true;
        updates::stage_and_apply(&api, &repo, &tx, &current)
    };
    let result = if done { Ok(true) } else { run() };
    let applied = result.map_err(|e| pending_hint(e, path, &name, "rotate-targets"))?;
    if !applied {
        return Ok(());
    }
    store_new_root(&mut file, &api, &repo);
    let (token, key_file) = stored_as(&file, &name)?;
    if s.json() {
        println!(
            "{}",
            serde_json::json!({"targets_keyid": new_id, "key_file": key_file, "token": token, "reused_pending_key": reused})
        );
    } else {
        let stored = match &token {
            Some(t) => format!(
                "on the hardware token {t}; {} records a reference as {key_file}",
                path.display()
            ),
            None => format!("stored in {} as {key_file}", path.display()),
        };
        println!(
            "Created the offline targets key {new_id}, {stored}.\n\
             The CI root now has targets threshold 1; the production root requires 2 \
             signatures (the server's online key and this key).\nBack the file up, and consider \
             `tufctl keys copy-targets {} TARGETS-ONLY.tgz` for release engineers.",
            path.display()
        );
    }
    Ok(())
}

/// `keys rotate-online`: the server generates new online keys for `roles` (their private
/// keys never leave it) and the root key(s) in the tarball sign the new roots, through the
/// same transaction as `rotate-root`. Nothing new is written to the tarball except its
/// reference roles/root.json.
pub fn rotate_online(
    s: &Settings,
    path: &Path,
    roles: &[String],
    key_type: KeyTypeArg,
    cancel_open: bool,
) -> Result<()> {
    let Start {
        mut file,
        api,
        repo,
        current,
        signers,
    } = Start::open(
        s,
        path,
        "and replacing online keys changes the root; nothing was changed. Use the tarball that \
         holds the active root key",
    )?;
    let message = format!("rotate online keys: {}", roles.join(","));
    let tx = updates::begin(&api, &repo, &message, cancel_open, |tx| {
        tx.message == message
    })?;
    let kind = match key_type {
        KeyTypeArg::Ed25519 => "ed25519",
        KeyTypeArg::Ecdsa => "ecdsa",
        KeyTypeArg::Rsa => "rsa",
    };
    let answer = match api.post_json(
        &format!("{repo}/root/updates/online-keys"),
        &serde_json::json!({"txid": tx.txid, "roles": roles, "key_type": kind}),
    ) {
        Ok(v) => v,
        Err(e) => {
            // Nothing was staged: close the transaction this command opened.
            let closed = updates::cancel(&api, &repo, &tx.txid).is_ok();
            return Err(e.context(if closed {
                "asking the server for new online keys; nothing was changed"
            } else {
                "asking the server for new online keys; nothing was changed, but the open \
                 root-update transaction could not be cancelled (`tufctl keys tuf updates cancel`)"
            }));
        }
    };
    let new_keys = answer
        .get("new_online_keys")
        .cloned()
        .unwrap_or(serde_json::Value::Null);
    let mut tx = updates::Tx::from_value(answer)?;
    for env in [&mut tx.ci_root, &mut tx.prod_root] {
        for k in &signers {
            env.sign(k.as_ref())?;
        }
    }
    tx.stage_prod_targets = false;
    if !updates::stage_and_apply(&api, &repo, &tx, &current)? {
        return Ok(());
    }
    store_new_root(&mut file, &api, &repo);
    if s.json() {
        println!("{}", serde_json::json!({ "new_online_keys": new_keys }));
    } else {
        println!(
            "Replaced the server's online keys; the old ones are destroyed and no longer trusted:"
        );
        if let Some(o) = new_keys.as_object() {
            for (role, id) in o {
                println!("  {role}: {}", id.as_str().unwrap_or("?"));
            }
        }
    }
    Ok(())
}

/// Where every root-changing command starts: the opened credentials file, the server, its
/// current roots, and the file's keys that can sign for the current root.
pub struct Start {
    pub file: CredsFile,
    pub api: Api,
    pub repo: String,
    pub current: Current,
    pub signers: Vec<Box<dyn Signer>>,
}

impl Start {
    /// Opens `path` and fetches the current roots. A file without any current root key is
    /// refused before anything changes; `why` finishes the sentence saying what that means.
    pub fn open(s: &Settings, path: &Path, why: &str) -> Result<Self> {
        let file = CredsFile::open(s, path)?;
        let cfg = file.creds.config().clone();
        let api = s.api_with_token(Some(&cfg), "the Factory owner's")?;
        let repo = s.repo_path(Some(&cfg))?;
        let current = updates::current_roots(&api, &repo)
            .context("fetching the Factory's current roots (nothing was changed)")?;
        let signers = updates::role_signers(&file, &current.ci.signed, Role::Root)?;
        if signers.is_empty() {
            bail!(
                "{} holds none of the current root keys ({}), {why}",
                path.display(),
                ids(&current.ci.signed.role(Role::Root).keyids)
            );
        }
        Ok(Self {
            file,
            api,
            repo,
            current,
            signers,
        })
    }
}

/// The token holding key `name` (if it is a hardware key) and the tarball entry naming it.
fn stored_as(file: &CredsFile, name: &str) -> Result<(Option<String>, String)> {
    let token = token_of(file, name)?;
    let key_file = match &token {
        Some(_) => format!("tufrepo/keys/{name}.pkcs11"),
        None => format!("tufrepo/keys/{name}.sec"),
    };
    Ok((token, key_file))
}

/// Name of a key file: `tufctl-<role>-<keyid>`.
pub fn key_name(role: &str, id: &KeyId) -> String {
    format!("tufctl-{role}-{id}")
}

/// The server's online targets keys: owned by "tufd" in x-key-owners; failing that, the
/// targets keys the tarball holds no copy of.
pub fn online_targets_keys(root: &Root, creds: &Credentials) -> Result<Vec<KeyId>> {
    let ids = &root.role(Role::Targets).keyids;
    let by_owner: Vec<KeyId> = ids
        .iter()
        .filter(|id| updates::owner_of(root, id).as_deref() == Some("tufd"))
        .cloned()
        .collect();
    if !by_owner.is_empty() {
        return Ok(by_owner);
    }
    let mut out = Vec::new();
    for id in ids {
        if let Some(pk) = root.keys.get(id) {
            if creds.key_name_of(pk)?.is_none() {
                out.push(id.clone());
            }
        }
    }
    Ok(out)
}

/// The new key of a rotation: one an earlier run already got applied (but did not record),
/// else a pending one from an interrupted run, else a new one saved to the file before the
/// server hears of it. Returns `(key, reused, already_applied)`.
fn new_key(
    file: &mut CredsFile,
    api: &Api,
    repo: &str,
    current: &Current,
    role: Role,
    opts: &Options,
) -> Result<(Box<dyn Signer>, bool, bool)> {
    if let Some(key) = applied_unrecorded(file, current, role, role.as_str())? {
        return Ok((key, true, true));
    }
    let (key, reused) = pending_or_new(file, api, repo, current, role.as_str(), opts)?;
    Ok((key, reused, false))
}

/// The key of an earlier run whose rotation the server applied although that run never
/// heard the answer (it was killed or lost the connection after sending `apply`): a
/// `tufctl-<role>-*` key of the tarball that the server's current CI root trusts for `role`
/// while the tarball's own `roles/root.json` (updated after every completed rotation) does
/// not list it at all. Such a run is finished by recording the new root, not by rotating
/// again with yet another key.
fn applied_unrecorded(
    file: &CredsFile,
    current: &Current,
    role: Role,
    name: &str,
) -> Result<Option<Box<dyn Signer>>> {
    let Some(stored) = file.stored_root()? else {
        return Ok(None);
    };
    if stored.signed.version >= current.ci.signed.version {
        return Ok(None);
    }
    let prefix = format!("tufctl-{name}-");
    let trusted = &current.ci.signed.role(role).keyids;
    for k in file.creds.keys()? {
        if !k.can_sign() || !k.name.starts_with(&prefix) {
            continue;
        }
        let Some(id) = updates::find_key(&current.ci.signed, &k.public) else {
            continue;
        };
        if trusted.contains(id) && updates::find_key(&stored.signed, &k.public).is_none() {
            eprintln!(
                "note: the server already applied the rotation to the {name} key {} saved in                  {} (an earlier run was interrupted before it heard the answer); no new key                  is generated, only the file's roles/root.json is brought up to date. Run the                  command again to rotate once more",
                k.name,
                file.path.display()
            );
            return file.signer(&k);
        }
    }
    Ok(None)
}

/// A key of this role in the tarball that no root of the Factory has ever listed (saved by a
/// run that failed before the server accepted it), or else a new key saved into the tarball
/// now, before anything is sent.
fn pending_or_new(
    file: &mut CredsFile,
    api: &Api,
    repo: &str,
    current: &Current,
    role: &str,
    opts: &Options,
) -> Result<(Box<dyn Signer>, bool)> {
    let prefix = format!("tufctl-{role}-");
    let candidates: Vec<_> = file
        .creds
        .keys()?
        .into_iter()
        .filter(|k| k.can_sign() && k.name.starts_with(&prefix))
        .filter(|k| updates::find_key(&current.ci.signed, &k.public).is_none())
        .collect();
    if !candidates.is_empty() {
        let seen = keys_in_root_history(api, repo, current.ci.signed.version)?;
        for c in candidates {
            if seen.iter().any(|p| tuf_credentials::same_key(p, &c.public)) {
                continue;
            }
            let Some(key) = file.signer(&c)? else {
                continue;
            };
            eprintln!(
                "note: reusing the pending {role} key {} saved in {} by an earlier run that did \
                 not finish (no new key is generated)",
                c.name,
                file.path.display()
            );
            return Ok((key, true));
        }
    }
    let key_type = opts.key_type.key_type();
    let key: Box<dyn Signer> = match &opts.slot {
        None => {
            let key = PrivateKey::generate(key_type)
                .with_context(|| format!("generating a new {role} key"))?;
            file.creds.add_key(&key_name(role, key.key_id()), &key)?;
            Box::new(key)
        }
        Some(slot) => {
            let label = format!("tufctl-{role}");
            let (signer, key_ref, public) = file.tokens.generate(slot, key_type, &label)?;
            // Only the reference is stored: the private key stays on the token.
            file.creds.add_token_key(
                &key_name(role, &public.key_id()),
                &public,
                &key_ref.to_json()?,
            )?;
            Box::new(signer)
        }
    };
    file.save().with_context(|| {
        format!(
            "saving the new {role} key into {} before contacting the server; nothing was sent",
            file.path.display()
        )
    })?;
    Ok((key, false))
}

/// "LABEL (serial S)" when the key stored as `name` is on a hardware token.
fn token_of(file: &CredsFile, name: &str) -> Result<Option<String>> {
    Ok(file
        .creds
        .keys()?
        .into_iter()
        .find(|k| k.name == name)
        .and_then(|k| match k.private {
            PrivatePart::Token { label, serial } => Some(format!("{label:?} (serial {serial})")),
            _ => None,
        }))
}

/// Every key listed by any CI root version 1..=`newest`.
fn keys_in_root_history(api: &Api, repo: &str, newest: u64) -> Result<Vec<PublicKey>> {
    let mut out: Vec<PublicKey> = Vec::new();
    let mut seen: BTreeSet<KeyId> = BTreeSet::new();
    for v in 1..=newest.min(MAX_HISTORY) {
        let Some(bytes) = api.get_opt(&format!("{repo}/{v}.root.json"))? else {
            continue;
        };
        let root: tuf_core::Signed<Root> = tuf_core::Signed::from_slice(&bytes)
            .with_context(|| format!("root version {v} from the server is not valid"))?;
        for (id, k) in root.signed.keys {
            if seen.insert(id) {
                out.push(k);
            }
        }
    }
    Ok(out)
}

/// Keeps the tarball's roles/root.json in step with the server, best effort: the rotation is
/// already done and the key already saved.
pub fn store_new_root(file: &mut CredsFile, api: &Api, repo: &str) {
    let stored = api
        .get(&format!("{repo}/root.json"))
        .and_then(|b| Ok(file.creds.set_root_json(&b)?))
        .and_then(|_| file.save());
    if let Err(e) = stored {
        eprintln!(
            "warning: the rotation succeeded, but updating roles/root.json in {} failed ({e:#}); \
             the keys in the file are complete, only that reference copy is stale",
            file.path.display()
        );
    }
}

fn pending_hint(e: anyhow::Error, path: &Path, name: &str, cmd: &str) -> anyhow::Error {
    e.context(format!(
        "the rotation did not complete. {} holds the new key {name} (a pending key, not yet \
         trusted by the server); nothing is lost: re-run `tufctl keys {cmd} {}` to finish, it \
         reuses that key",
        path.display(),
        path.display()
    ))
}

fn ids(ids: &[KeyId]) -> String {
    ids.iter()
        .map(updates::short)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Root history fetched to recognise retired keys; far beyond any real Factory.
const MAX_HISTORY: u64 = 10_000;
