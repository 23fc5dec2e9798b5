//! `keys rotate-root`, `keys rotate-targets` and `keys rotate-online`: one-step root updates
//! over the transaction API, with the nothing-is-lost rule: a new private key is in the
//! tarball on disk (atomic replace, fsync) before anything is sent to the server, and a
//! re-run reuses it.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use tuf_ceremony::tx::{find_key, set_owner, short, KeyOrigin};
use tuf_ceremony::{keyring, Roots, Tx};
use tuf_core::{KeyId, PrivateKey, PublicKey, Role, Root, Signed, Signer, Threshold};
use tuf_credentials::PrivatePart;

use crate::cli::KeyTypeArg;
use crate::creds::{key_name, online_targets_keys, CredsFile};
use crate::server::{check_tx, Factory};
use crate::settings::{default_owner, Settings};

pub struct Options {
    pub key_type: KeyTypeArg,
    /// Generate the new key on the hardware token in this slot (slot ID or token label).
    pub slot: Option<String>,
    pub owner: Option<String>,
    pub cancel_open: bool,
}

/// Which rotation: what it is called, which role gets the new key, and how the roots change.
#[derive(Clone, Copy)]
enum Kind {
    Root,
    Targets,
}

impl Kind {
    fn role(self) -> Role {
        match self {
            Kind::Root => Role::Root,
            Kind::Targets => Role::Targets,
        }
    }

    fn command(self) -> &'static str {
        match self {
            Kind::Root => "rotate-root",
            Kind::Targets => "rotate-targets",
        }
    }

    fn message(self, id: &KeyId) -> String {
        match self {
            Kind::Root => format!("rotate root key to {id}"),
            Kind::Targets => format!("rotate offline targets key to {id}"),
        }
    }
}

/// What a finished rotation reports.
struct Rotated {
    id: KeyId,
    kind: String,
    reused: bool,
    token: Option<String>,
    key_file: String,
}

pub fn rotate_root(s: &Settings, path: &Path, opts: Options) -> Result<()> {
    let Some(r) = rotate(s, path, Kind::Root, opts)? else {
        return Ok(());
    };
    if s.json() {
        outln!(
            "{}",
            json!({"root_keyid": r.id, "key_file": r.key_file, "token": r.token, "reused_pending_key": r.reused})
        );
    } else if let Some(token) = &r.token {
        outln!(
            "Rotated the root key. New root key ID: {}\nIts private key ({}) was generated on \
             the hardware token {token} and never leaves it; {} records only a reference to it \
             ({}).\nWithout that token (and its PIN) the Factory's root can never be changed \
             again: consider a second root key holder.",
            r.id,
            r.kind,
            path.display(),
            r.key_file
        );
    } else {
        outln!(
            "Rotated the root key. New root key ID: {}\nIts private key is stored only in {} as \
             {} ({}).\nBack this file up now (the tarball, a plain-text copy of that .sec file, \
             and a printout): without it the Factory's root can never be changed again.",
            r.id,
            path.display(),
            r.key_file,
            r.kind
        );
    }
    Ok(())
}

pub fn rotate_targets(s: &Settings, path: &Path, opts: Options) -> Result<()> {
    let Some(r) = rotate(s, path, Kind::Targets, opts)? else {
        return Ok(());
    };
    if s.json() {
        outln!(
            "{}",
            json!({"targets_keyid": r.id, "key_file": r.key_file, "token": r.token, "reused_pending_key": r.reused})
        );
        return Ok(());
    }
    let stored = match &r.token {
        Some(t) => format!(
            "on the hardware token {t}; {} records a reference as {}",
            path.display(),
            r.key_file
        ),
        None => format!("stored in {} as {}", path.display(), r.key_file),
    };
    outln!(
        "Created the offline targets key {}, {stored}.\nThe CI root now has targets threshold \
         1; the production root requires 2 signatures (the server's online key and this \
         key).\nBack the file up, and consider `tufctl keys copy-targets {} TARGETS-ONLY.tgz` \
         for release engineers.",
        r.id,
        path.display()
    );
    Ok(())
}

/// A rotation of `kind`: the new key (reused when an earlier run left one), the edited roots
/// signed by the file's root keys and the new key, staged and applied. `None` when the
/// transaction still needs other holders' signatures.
fn rotate(s: &Settings, path: &Path, kind: Kind, opts: Options) -> Result<Option<Rotated>> {
    let why = match kind {
        Kind::Root => {
            "so it cannot sign a root rotation; the file was left unchanged. Use the tarball \
             that holds the active root key (see `tufctl keys status`); a lost root key cannot \
             be recovered"
        }
        Kind::Targets => {
            "and a targets rotation changes the root; the file was left unchanged. Use the \
             tarball that holds the active root key (see `tufctl keys status`)"
        }
    };
    let mut start = Start::open(s, path, why)?;
    let online = online_targets_keys(&start.current.ci.signed, &start.file.creds)?;
    if matches!(kind, Kind::Targets) && online.is_empty() {
        bail!("cannot tell the server's online targets key in the current root (no key owned by \"tufd\" in x-key-owners)");
    }
    let (key, reused, done) = new_key(&mut start, kind.role(), &opts)?;
    let name = key_name(kind.role().as_str(), key.key_id());
    let owner = opts.owner.clone().unwrap_or_else(default_owner);
    if !done {
        let origin = match token_of(&start.file, &name)? {
            Some(_) => KeyOrigin::Token,
            None => KeyOrigin::File,
        };
        let public = origin.label(key.public_key());
        let applied = rotate_on_server(&start, kind, &public, &online, &owner, &opts)
            .map_err(|e| pending_hint(e, path, &name, kind.command()))?;
        if !applied {
            return Ok(None);
        }
    }
    start.f.store_root(&mut start.file);
    let (token, key_file) = stored_as(&start.file, &name)?;
    Ok(Some(Rotated {
        id: key.key_id().clone(),
        kind: key.public_key().kind().to_owned(),
        reused,
        token,
        key_file,
    }))
}

/// Opens (or resumes) the transaction, edits both roots, signs and applies. True when
/// applied.
fn rotate_on_server(
    start: &Start,
    kind: Kind,
    public: &PublicKey,
    online: &[KeyId],
    owner: &str,
    opts: &Options,
) -> Result<bool> {
    let id = public.key_id();
    let message = kind.message(&id);
    // An open transaction this command opened for this very key (its message names the
    // key) is an earlier run's, interrupted after init or stage: continue it.
    let mut tx = start.f.begin(&message, opts.cancel_open, |tx| {
        tx.message == message || tx.ci_root.signed.role(kind.role()).keyids.contains(&id)
    })?;
    for (prod, env) in [(false, &mut tx.ci_root), (true, &mut tx.prod_root)] {
        *env = tuf_ceremony::tx::edit_root(env, |r| {
            replace_role_keys(r, kind, public, online, prod, owner)
        })?;
    }
    check_tx(&tx, &start.current)?;
    match kind {
        Kind::Root => keyring::sign_roots(&mut tx, &start.file, &start.current)?,
        // Production devices will need the new offline key's signature on targets.
        Kind::Targets => keyring::sign_tx(&mut tx, &start.file, &start.current)?,
    };
    if matches!(kind, Kind::Targets) && !tx.stage_prod_targets {
        bail!("the server's transaction has no prod_targets draft signed by the new key");
    }
    Ok(start
        .f
        .stage_and_apply(&tx, &start.current)?
        .report(start.json, &tx.txid))
}

/// The edit of a rotation: the root role becomes the new key alone (threshold 1); the
/// targets role becomes the online key(s) and the new key (threshold 1 in CI, 2 in
/// production), the previous offline targets key dropped.
fn replace_role_keys(
    r: &mut Root,
    kind: Kind,
    public: &PublicKey,
    online: &[KeyId],
    prod: bool,
    owner: &str,
) -> Result<(), tuf_ceremony::Error> {
    let id = public.key_id();
    r.keys.insert(id.clone(), public.clone());
    let role = r.role_mut(kind.role())?;
    match kind {
        Kind::Root => {
            role.keyids = vec![id.clone()];
            role.threshold = Threshold::new(1)?;
        }
        Kind::Targets => {
            let mut keyids = online.to_vec();
            keyids.push(id.clone());
            role.keyids = keyids;
            role.threshold = Threshold::new(if prod { 2 } else { 1 })?;
        }
    }
    r.prune_keys();
    set_owner(r, &id, owner);
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
    let mut start = Start::open(
        s,
        path,
        "and replacing online keys changes the root; nothing was changed. Use the tarball that \
         holds the active root key",
    )?;
    let message = format!("rotate online keys: {}", roles.join(","));
    let tx = start
        .f
        .begin(&message, cancel_open, |tx| tx.message == message)?;
    let (mut tx, new_keys) = new_online_keys(&start.f, &tx, roles, key_type)?;
    check_tx(&tx, &start.current)?;
    keyring::sign_roots(&mut tx, &start.file, &start.current)?;
    tx.stage_prod_targets = false;
    let staged = start.f.stage_and_apply(&tx, &start.current)?;
    if !staged.report(s.json(), &tx.txid) {
        return Ok(());
    }
    start.f.store_root(&mut start.file);
    if s.json() {
        outln!("{}", json!({ "new_online_keys": new_keys }));
        return Ok(());
    }
    outln!("Replaced the server's online keys; the old ones are destroyed and no longer trusted:");
    if let Some(o) = new_keys.as_object() {
        for (role, id) in o {
            outln!("  {role}: {}", id.as_str().unwrap_or("?"));
        }
    }
    Ok(())
}

/// Asks the server for new online keys in the open transaction `tx`; returns the
/// transaction with them staged, and their key IDs by role.
fn new_online_keys(
    f: &Factory,
    tx: &Tx,
    roles: &[String],
    key_type: KeyTypeArg,
) -> Result<(Tx, Value)> {
    let kind = match key_type {
        KeyTypeArg::Ed25519 => "ed25519",
        KeyTypeArg::Ecdsa => "ecdsa",
        KeyTypeArg::Rsa => "rsa",
    };
    let answer = f.api.post_json(
        &format!("{}/root/updates/online-keys", f.repo),
        &json!({"txid": tx.txid, "roles": roles, "key_type": kind}),
    );
    let answer = match answer {
        Ok(v) => v,
        Err(e) => {
            // Nothing was staged: close the transaction this command opened.
            let closed = f.cancel(&tx.txid).is_ok();
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
        .unwrap_or(Value::Null);
    Ok((Tx::from_value(answer)?, new_keys))
}

/// Where every root-changing command starts: the opened credentials file, the server, and
/// its current roots verified from the root the file trusts.
pub struct Start {
    pub file: CredsFile,
    pub f: Factory,
    pub current: Roots,
    /// `--json`: what is reported is JSON.
    pub json: bool,
    /// The file's `roles/root.json` as it was before this run verified (and recorded) the
    /// current roots: how an earlier, interrupted rotation is recognised.
    pub stored_before: Option<Signed<Root>>,
}

impl Start {
    /// Opens `path` and fetches the current roots. A file without any current root key is
    /// refused before anything changes; `why` finishes the sentence saying what that means.
    pub fn open(s: &Settings, path: &Path, why: &str) -> Result<Self> {
        let mut file = CredsFile::open(s, path)?;
        let f = Factory::of_file(s, &file)?;
        let stored_before = file.stored_root()?;
        let current = f
            .verified_roots(&mut file)
            .context("fetching the Factory's current roots (nothing was changed)")?;
        if keyring::role_signers(&file, &current.ci.signed, Role::Root)?.is_empty() {
            bail!(
                "{} holds none of the current root keys ({}), {why}",
                path.display(),
                ids(&current.ci.signed.role(Role::Root).keyids)
            );
        }
        Ok(Self {
            file,
            f,
            current,
            json: s.json(),
            stored_before,
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

/// The new key of a rotation: one an earlier run already got applied (but did not record),
/// else a pending one from an interrupted run, else a new one saved to the file before the
/// server hears of it. Returns `(key, reused, already_applied)`.
fn new_key(start: &mut Start, role: Role, opts: &Options) -> Result<(Box<dyn Signer>, bool, bool)> {
    if let Some(key) = applied_unrecorded(start, role, role.as_str())? {
        return Ok((key, true, true));
    }
    let (key, reused) = pending_or_new(start, role.as_str(), opts)?;
    Ok((key, reused, false))
}

/// The key of an earlier run whose rotation the server applied although that run never
/// heard the answer (it was killed or lost the connection after sending `apply`): a
/// `tufctl-<role>-*` key of the tarball that the server's current CI root trusts for `role`
/// while the tarball's own `roles/root.json` (updated after every completed rotation) does
/// not list it at all. Such a run is finished by recording the new root, not by rotating
/// again with yet another key.
fn applied_unrecorded(start: &Start, role: Role, name: &str) -> Result<Option<Box<dyn Signer>>> {
    let (file, current) = (&start.file, &start.current);
    let Some(stored) = &start.stored_before else {
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
        let Some(id) = find_key(&current.ci.signed, &k.public) else {
            continue;
        };
        if trusted.contains(id) && find_key(&stored.signed, &k.public).is_none() {
            errln!(
                "note: the server already applied the rotation to the {name} key {} saved in \
                 {} (an earlier run was interrupted before it heard the answer); no new key \
                 is generated, only the file's roles/root.json is brought up to date. Run the \
                 command again to rotate once more",
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
    start: &mut Start,
    role: &str,
    opts: &Options,
) -> Result<(Box<dyn Signer>, bool)> {
    let (file, current) = (&mut start.file, &start.current);
    let prefix = format!("tufctl-{role}-");
    let candidates: Vec<_> = file
        .creds
        .keys()?
        .into_iter()
        .filter(|k| k.can_sign() && k.name.starts_with(&prefix))
        .filter(|k| find_key(&current.ci.signed, &k.public).is_none())
        .collect();
    if !candidates.is_empty() {
        let seen = keys_in_root_history(&start.f, current.ci.signed.version)?;
        for c in candidates {
            if seen.iter().any(|p| tuf_credentials::same_key(p, &c.public)) {
                continue;
            }
            let Some(key) = file.signer(&c)? else {
                continue;
            };
            errln!(
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
fn keys_in_root_history(f: &Factory, newest: u64) -> Result<Vec<PublicKey>> {
    let mut out: Vec<PublicKey> = Vec::new();
    let mut seen: BTreeSet<KeyId> = BTreeSet::new();
    for v in 1..=newest.min(MAX_HISTORY) {
        let Some(bytes) = f.api.get_opt(&format!("{}/{v}.root.json", f.repo))? else {
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
    ids.iter().map(short).collect::<Vec<_>>().join(", ")
}

/// Root history fetched to recognise retired keys; far beyond any real Factory.
const MAX_HISTORY: u64 = 10_000;
