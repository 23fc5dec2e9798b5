//! Root-update transactions (`keys tuf updates ...`): open, stage, sign, review, apply,
//! cancel. `rotate-root` and `rotate-targets` are shortcuts over the same functions.

use std::collections::BTreeSet;

use crate::cli::UpdatesCommand;
use crate::client::{status_of, Api};
use crate::creds::CredsFile;
use crate::settings::Settings;
use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use tuf_core::{KeyId, PublicKey, Role, Root, Signed, Signer, Targets, Threshold};

/// An open root-update transaction as the server describes it.
pub struct Tx {
    pub txid: String,
    pub message: String,
    pub ci_root: Signed<Root>,
    pub prod_root: Signed<Root>,
    pub prod_targets: Option<Signed<Targets>>,
    /// Whether `prod_targets` is to be sent when staging.
    pub stage_prod_targets: bool,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

impl Tx {
    pub fn from_value(v: Value) -> Result<Self> {
        let Value::Object(mut o) = v else {
            bail!("the server's transaction is not a JSON object");
        };
        let txid = o
            .get("txid")
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("the server's transaction has no txid"))?
            .to_owned();
        let message = o
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let env = |o: &mut serde_json::Map<String, Value>, k: &str| -> Result<Value> {
            o.remove(k)
                .ok_or_else(|| anyhow!("the server's transaction has no {k}"))
        };
        let ci_root = Signed::from_value(env(&mut o, "ci_root")?)
            .context("the transaction's ci_root is not a valid root")?;
        let prod_root = Signed::from_value(env(&mut o, "prod_root")?)
            .context("the transaction's prod_root is not a valid root")?;
        let prod_targets = match o.remove("prod_targets") {
            None | Some(Value::Null) => None,
            Some(v) => {
                Some(Signed::from_value(v).context("the transaction's prod_targets is not valid")?)
            }
        };
        let strings = |v: Option<&Value>| -> Vec<String> {
            v.and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let has_sigs = prod_targets
            .as_ref()
            .is_some_and(|t: &Signed<Targets>| !t.signatures.is_empty());
        Ok(Self {
            txid,
            message,
            ci_root,
            prod_root,
            prod_targets,
            stage_prod_targets: has_sigs,
            errors: strings(o.get("errors")),
            warnings: strings(o.get("warnings")),
        })
    }

    fn stage_body(&self) -> Result<Value> {
        let mut body = json!({
            "txid": self.txid,
            "ci_root": envelope_value(&self.ci_root.to_bytes())?,
            "prod_root": envelope_value(&self.prod_root.to_bytes())?,
        });
        if let (true, Some(t)) = (self.stage_prod_targets, &self.prod_targets) {
            body["prod_targets"] = envelope_value(&t.to_bytes())?;
        }
        Ok(body)
    }
}

fn envelope_value(bytes: &[u8]) -> Result<Value> {
    Ok(serde_json::from_slice(bytes)?)
}

/// The Factory's current CI and production roots.
pub struct Current {
    pub ci: Signed<Root>,
    pub prod: Signed<Root>,
}

pub fn current_roots(api: &Api, repo: &str) -> Result<Current> {
    let ci = Signed::from_slice(&api.get(&format!("{repo}/root.json"))?)
        .context("the server's CI root.json is not valid")?;
    let prod = Signed::from_slice(&api.get(&format!("{repo}/root.json?production=1"))?)
        .context("the server's production root.json is not valid")?;
    Ok(Current { ci, prod })
}

pub fn open_tx(api: &Api, repo: &str) -> Result<Option<Tx>> {
    match api.get_opt(&format!("{repo}/root/updates"))? {
        None => Ok(None),
        Some(b) => {
            let v = serde_json::from_slice(&b).context("the open transaction is not JSON")?;
            Tx::from_value(v).map(Some)
        }
    }
}

/// The open transaction, or an error saying there is none.
pub fn require_open(api: &Api, repo: &str) -> Result<Tx> {
    open_tx(api, repo)?.ok_or_else(|| {
        anyhow!("there is no open root-update transaction; start one with `tufctl keys tuf updates init -m MESSAGE`")
    })
}

pub fn init_tx(api: &Api, repo: &str, message: &str) -> Result<Tx> {
    match api.post_json(&format!("{repo}/root/updates"), &json!({ "message": message })) {
        Ok(v) => Tx::from_value(v),
        Err(e) if status_of(&e) == Some(409) => Err(e.context(
            "another root-update transaction is already open: review it with `tufctl keys tuf \
             updates review`, then finish it (sign/apply) or cancel it (`tufctl keys tuf updates cancel`)",
        )),
        Err(e) => Err(e.context("opening a root-update transaction")),
    }
}

/// Opens a transaction for a one-step command. An open one (from a crashed run, or another
/// key holder) is reused when `reusable` says it is ours, cancelled with `cancel_open`, and
/// otherwise explained.
pub fn begin(
    api: &Api,
    repo: &str,
    message: &str,
    cancel_open: bool,
    reusable: impl Fn(&Tx) -> bool,
) -> Result<Tx> {
    if let Some(open) = open_tx(api, repo)? {
        if reusable(&open) {
            eprintln!(
                "note: reusing open root-update transaction {} (\"{}\"), left by an interrupted run",
                open.txid, open.message
            );
            return Ok(open);
        }
        if !cancel_open {
            bail!(
                "an open root-update transaction {} (\"{}\") already exists, probably left by \
                 an interrupted run or started by another key holder; nothing was changed. \
                 Inspect it with `tufctl keys tuf updates review`, then either finish it \
                 (`sign`/`apply`) or re-run this command with --cancel-open to cancel it and \
                 start over",
                open.txid,
                open.message
            );
        }
        cancel(api, repo, &open.txid)?;
        eprintln!("cancelled open root-update transaction {}", open.txid);
    }
    init_tx(api, repo, message)
}

pub fn stage(api: &Api, repo: &str, tx: &Tx) -> Result<Tx> {
    let v = api
        .put_json(&format!("{repo}/root/updates"), &tx.stage_body()?)
        .context("staging the edited roots")?;
    let mut staged = Tx::from_value(v)?;
    // Keep our prod_targets if the server echoes an older copy.
    if tx.stage_prod_targets {
        staged.stage_prod_targets = true;
        if staged
            .prod_targets
            .as_ref()
            .is_none_or(|t| t.signatures.is_empty())
        {
            staged.prod_targets = tx.prod_targets.clone();
        }
    }
    Ok(staged)
}

pub fn apply(api: &Api, repo: &str, txid: &str) -> Result<Value> {
    api.post_json(
        &format!("{repo}/root/updates/apply"),
        &json!({ "txid": txid }),
    )
    .context("applying the root update (the server rejected it; nothing changed on the server)")
}

pub fn cancel(api: &Api, repo: &str, txid: &str) -> Result<()> {
    api.post_json(
        &format!("{repo}/root/updates/cancel"),
        &json!({ "txid": txid }),
    )
    .context("cancelling the root-update transaction")?;
    Ok(())
}

/// Rebuilds an envelope after editing its `signed` part: old signatures no longer apply.
pub fn edit_root(
    env: &Signed<Root>,
    edit: impl FnOnce(&mut Root) -> Result<()>,
) -> Result<Signed<Root>> {
    let mut root = env.signed.clone();
    edit(&mut root)?;
    Ok(Signed::new(root)?)
}

/// Records `owner` for `id` in `x-key-owners` and drops owners of keys no longer listed.
pub fn set_owner(root: &mut Root, id: &KeyId, owner: &str) {
    let entry = root
        .extra
        .entry("x-key-owners".to_owned())
        .or_insert_with(|| json!({}));
    if !entry.is_object() {
        *entry = json!({});
    }
    if let Some(o) = entry.as_object_mut() {
        o.insert(id.to_string(), Value::String(owner.to_owned()));
        o.retain(|k, _| root.keys.keys().any(|id| id.as_str() == k));
    }
}

pub fn owner_of(root: &Root, id: &KeyId) -> Option<String> {
    root.extra
        .get("x-key-owners")
        .and_then(|o| o.get(id.as_str()))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Signers from `file` for the keys of `role` in `root`: private keys in the tarball, or keys
/// on a hardware token (opened now; the token PIN is asked for once per run).
pub fn role_signers(file: &CredsFile, root: &Root, role: Role) -> Result<Vec<Box<dyn Signer>>> {
    let mut opened = Opened::new(file);
    opened.for_role(root, role)?;
    Ok(opened.signers)
}

/// Signs both staged roots with every key in `file` that the current or the new root trusts
/// for the root role, and production targets with the offline targets keys of the new
/// production root. Each key is opened once (a token key logs in once). Returns what was
/// signed, for people.
pub fn sign_with(tx: &mut Tx, file: &CredsFile, current: &Current) -> Result<Vec<String>> {
    let mut opened = Opened::new(file);
    let mut done = Vec::new();
    for (which, env, cur) in [
        ("CI root", &mut tx.ci_root, &current.ci.signed),
        ("production root", &mut tx.prod_root, &current.prod.signed),
    ] {
        let mut keys = opened.for_role(cur, Role::Root)?;
        for i in opened.for_role(&env.signed, Role::Root)? {
            if !keys.contains(&i) {
                keys.push(i);
            }
        }
        for i in keys {
            let k = &opened.signers[i];
            env.sign(k.as_ref())?;
            done.push(format!("{which} with {}", short(k.key_id())));
        }
    }
    if let Some(t) = tx.prod_targets.as_mut() {
        for i in opened.for_role(&tx.prod_root.signed, Role::Targets)? {
            let k = &opened.signers[i];
            t.sign(k.as_ref())?;
            tx.stage_prod_targets = true;
            done.push(format!("production targets with {}", short(k.key_id())));
        }
    }
    Ok(done)
}

/// Signers opened so far from one credentials file, so a key used for several roles is
/// opened (and its token logged in to) once.
struct Opened<'a> {
    file: &'a CredsFile,
    signers: Vec<Box<dyn Signer>>,
}

impl<'a> Opened<'a> {
    fn new(file: &'a CredsFile) -> Self {
        Self {
            file,
            signers: Vec::new(),
        }
    }

    /// Indices into `signers` of the keys of `role` in `root` that the file can sign with.
    fn for_role(&mut self, root: &Root, role: Role) -> Result<Vec<usize>> {
        let mut out = Vec::new();
        for id in &root.role(role).keyids {
            let Some(pk) = root.keys.get(id) else {
                continue;
            };
            let known = self
                .signers
                .iter()
                .position(|s| tuf_credentials::same_key(s.public_key(), pk));
            let i = match known {
                Some(i) => i,
                None => match self.file.find_signer(pk)? {
                    Some(k) => {
                        self.signers.push(k);
                        self.signers.len() - 1
                    }
                    None => continue,
                },
            };
            if !out.contains(&i) {
                out.push(i);
            }
        }
        Ok(out)
    }
}

/// What is still missing before `apply` can succeed, by our own verification.
pub fn missing_signatures(tx: &Tx, current: &Current) -> Vec<String> {
    let mut out = Vec::new();
    for (which, env, cur) in [
        ("CI root", &tx.ci_root, &current.ci.signed),
        ("production root", &tx.prod_root, &current.prod.signed),
    ] {
        for (whose, root) in [("current", cur), ("new", &env.signed)] {
            let v = env.verify_role("root", root.role(Role::Root), &root.keys);
            if !v.is_met() {
                out.push(format!(
                    "{which}: {} more signature(s) from the {whose} root keys (have {} of {}; \
                     missing: {})",
                    v.threshold - v.distinct_valid.min(v.threshold),
                    v.distinct_valid,
                    v.threshold,
                    v.missing.iter().map(short).collect::<Vec<_>>().join(", ")
                ));
            }
        }
    }
    out
}

/// Stages `tx`, then applies it when every signature is there; otherwise leaves it open and
/// says who still has to sign. Returns true when applied.
pub fn stage_and_apply(api: &Api, repo: &str, tx: &Tx, current: &Current) -> Result<bool> {
    let staged = stage(api, repo, tx)?;
    for w in &staged.warnings {
        eprintln!("warning: {w}");
    }
    let missing = missing_signatures(tx, current);
    if !missing.is_empty() {
        println!(
            "Staged root-update transaction {}; it needs more signatures before it can be applied:",
            tx.txid
        );
        for m in &missing {
            println!("  - {m}");
        }
        println!(
            "Each key holder runs `tufctl keys tuf updates sign -k THEIR.tgz`, then anyone runs \
             `tufctl keys tuf updates apply`."
        );
        return Ok(false);
    }
    apply(api, repo, &tx.txid).map_err(|e| {
        if staged.errors.is_empty() {
            e
        } else {
            e.context(format!("server checks: {}", staged.errors.join("; ")))
        }
    })?;
    Ok(true)
}

pub fn short(id: &KeyId) -> String {
    id.as_str().chars().take(12).collect()
}

pub fn find_key<'a>(root: &'a Root, public: &PublicKey) -> Option<&'a KeyId> {
    root.keys
        .iter()
        .find(|(_, k)| tuf_credentials::same_key(k, public))
        .map(|(id, _)| id)
}

// --- the `keys tuf updates` commands ---------------------------------------------------------

pub fn run(s: &Settings, cmd: UpdatesCommand) -> Result<()> {
    let api = s.api_with_token(None, "the Factory owner's")?;
    let repo = s.repo_path(None)?;
    match cmd {
        UpdatesCommand::Init { message } => {
            let tx = init_tx(&api, &repo, &message)?;
            if s.json() {
                println!("{}", json!({"txid": tx.txid}));
            } else {
                println!(
                    "Opened root-update transaction {} (CI root version {}). Edit it with \
                     set-threshold / add-offline-key, sign it with `sign -k CREDS.tgz`, then `apply`.",
                    tx.txid, tx.ci_root.signed.version
                );
            }
            Ok(())
        }
        UpdatesCommand::Review => {
            let tx = require_open(&api, &repo)?;
            let current = current_roots(&api, &repo)?;
            print!("{}", review(&tx, &current));
            Ok(())
        }
        UpdatesCommand::Sign { creds } => {
            let file = CredsFile::open(s, &creds)?;
            let mut tx = require_open(&api, &repo)?;
            let current = current_roots(&api, &repo)?;
            let done = sign_with(&mut tx, &file, &current)?;
            if done.is_empty() {
                bail!(
                    "{} holds no key that this transaction needs (root keys of the current or \
                     new root, or offline targets keys of the new production root); nothing was signed",
                    creds.display()
                );
            }
            stage(&api, &repo, &tx)?;
            for d in &done {
                println!("signed {d}");
            }
            let missing = missing_signatures(&tx, &current);
            if missing.is_empty() {
                println!("All root signatures are present: run `tufctl keys tuf updates apply`.");
            } else {
                for m in missing {
                    println!("still missing: {m}");
                }
            }
            Ok(())
        }
        UpdatesCommand::Apply => {
            let tx = require_open(&api, &repo)?;
            let out = apply(&api, &repo, &tx.txid)?;
            if s.json() {
                println!("{out}");
            } else {
                println!(
                    "Applied: CI root version {}, production root version {}.",
                    out["ci_version"], out["prod_version"]
                );
            }
            Ok(())
        }
        UpdatesCommand::Export { out } => crate::request::export_root_update(s, &out),
        UpdatesCommand::Import { response } => crate::request::import_root_update(s, &response),
        UpdatesCommand::Cancel => {
            let tx = require_open(&api, &repo)?;
            cancel(&api, &repo, &tx.txid)?;
            println!("Cancelled root-update transaction {}.", tx.txid);
            Ok(())
        }
        UpdatesCommand::SetThreshold { role, threshold } => {
            let role = parse_role(&role)?;
            let t = Threshold::new(threshold)?;
            let mut tx = require_open(&api, &repo)?;
            let set = |r: &mut Root| -> Result<()> {
                r.role_mut(role)?.threshold = t;
                Ok(())
            };
            if role == Role::Targets {
                // CI devices keep threshold 1 so the online key alone signs CI builds.
                tx.prod_root = edit_root(&tx.prod_root, set)?;
            } else {
                tx.ci_root = edit_root(&tx.ci_root, set)?;
                tx.prod_root = edit_root(&tx.prod_root, set)?;
            }
            let staged = stage(&api, &repo, &tx)?;
            report_checks(&staged);
            println!(
                "Staged: {role} threshold {threshold}{}. Signatures were reset: every root key \
                 holder signs again with `tufctl keys tuf updates sign -k CREDS.tgz`.",
                if role == Role::Targets {
                    " (production root)"
                } else {
                    ""
                }
            );
            Ok(())
        }
        UpdatesCommand::RemoveKey { keyid, role } => {
            let role = role.as_deref().map(parse_role).transpose()?;
            let mut tx = require_open(&api, &repo)?;
            let removed = remove_key(&mut tx, &keyid, role)?;
            let staged = stage(&api, &repo, &tx)?;
            if s.json() {
                println!(
                    "{}",
                    json!({
                        "txid": staged.txid, "keyid": removed.id,
                        "roles": removed.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
                        "dropped_from_keys": removed.dropped, "owner": removed.owner,
                        "errors": staged.errors, "warnings": staged.warnings,
                    })
                );
                return Ok(());
            }
            report_checks(&staged);
            println!("{}", removed.describe());
            Ok(())
        }
        UpdatesCommand::AddOfflineKey {
            role,
            public_key: Some(path),
            owner,
            ..
        } => {
            let role = crate::keygen::offline_role(&role)?;
            let f = crate::keygen::PublicKeyFile::parse(&crate::request::read_file(
                &path,
                "public-key file",
            )?)
            .with_context(|| format!("{} is not a usable public-key file", path.display()))?;
            if f.role()? != role {
                bail!(
                    "{} holds a {} key, not a {role} key",
                    path.display(),
                    f.role
                );
            }
            let factory = s.factory(None)?;
            if f.factory != factory {
                bail!(
                    "{} holds a key generated for Factory {:?}, not {factory:?}",
                    path.display(),
                    f.factory
                );
            }
            let mut tx = require_open(&api, &repo)?;
            let owner = owner.unwrap_or_else(|| f.owner.clone());
            add_to_staged(&mut tx, role, &f.key, &owner)?;
            let staged = stage(&api, &repo, &tx)?;
            report_checks(&staged);
            println!(
                "Added {role} key {} (owner {}; generated offline, its private key is not \
                 here). Root key holders sign with `tufctl keys tuf updates sign -k THEIR.tgz` \
                 or through `export` and `tufctl sign`; the new key's holder signs too.",
                f.keyid,
                shown(&owner)
            );
            Ok(())
        }
        UpdatesCommand::AddOfflineKey {
            role,
            key_type,
            slot,
            owner,
            creds,
            public_key: None,
        } => {
            let role = crate::keygen::offline_role(&role)?;
            let creds = creds.ok_or_else(|| {
                anyhow!("add-offline-key needs -k CREDS.tgz (or --public-key KEY.json)")
            })?;
            let mut file = if creds.exists() {
                CredsFile::open(s, &creds)?
            } else {
                // A new key holder starts with an empty credentials file of their own.
                let config = tuf_credentials::Config {
                    api: s.api_url(None)?,
                    factory: s.factory(None)?,
                };
                // The current root anchors what this holder verifies later (`tufctl sign` on
                // an offline machine starts from roles/root.json). Saved with the new key.
                let root = api
                    .get(&format!("{repo}/root.json"))
                    .context("fetching the current root for the new credentials file")?;
                eprintln!("note: creating a new credentials file {}", creds.display());
                let mut f = CredsFile::create(s, &creds, config)?;
                f.creds.set_root_json(&root)?;
                f
            };
            let mut tx = require_open(&api, &repo)?;
            let current = current_roots(&api, &repo)?;
            let (public, stored_as) =
                crate::keygen::new_key_into(&mut file, role, key_type, slot.as_deref())?;
            // Nothing is lost: the key (or its token reference) is on disk before the server
            // hears of it.
            file.save()
                .context("saving the new key before sending anything to the server")?;
            let owner = owner.unwrap_or_else(default_owner);
            let id = public.key_id();
            add_to_staged(&mut tx, role, &public, &owner)?;
            sign_with(&mut tx, &file, &current)?;
            let staged = stage(&api, &repo, &tx).with_context(|| {
                format!(
                    "the new key keys/{stored_as} is saved in {} but not staged; re-run to stage it",
                    creds.display()
                )
            })?;
            report_checks(&staged);
            println!(
                "Added {role} key {id} (stored as keys/{stored_as} in {}). Other root key holders \
                 sign with `tufctl keys tuf updates sign -k THEIR.tgz`; then `apply`.",
                creds.display()
            );
            Ok(())
        }
    }
}

/// Adds `public` to `role` (root or targets, see `keygen::offline_role`) of both staged
/// roots, under its computed ID, with its owner. Signatures are reset by the edit.
fn add_to_staged(tx: &mut Tx, role: Role, public: &PublicKey, owner: &str) -> Result<()> {
    let id = public.key_id();
    let add = |r: &mut Root| -> Result<()> {
        r.keys.insert(id.clone(), public.clone());
        let rk = r.role_mut(role)?;
        if !rk.keyids.contains(&id) {
            rk.keyids.push(id.clone());
        }
        set_owner(r, &id, owner);
        Ok(())
    };
    tx.ci_root = edit_root(&tx.ci_root, add)?;
    tx.prod_root = edit_root(&tx.prod_root, add)?;
    Ok(())
}

/// What [`remove_key`] took out of the staged roots.
pub struct Removed {
    pub id: KeyId,
    pub owner: Option<String>,
    /// The roles that listed the key and no longer do.
    pub roles: Vec<Role>,
    /// Whether the key left `keys` too (no role lists it any more).
    pub dropped: bool,
}

impl Removed {
    fn describe(&self) -> String {
        let roles: Vec<&str> = self.roles.iter().map(|r| r.as_str()).collect();
        format!(
            "Staged: key {} (owner {}) removed from the {} role{} of the CI and production \
             roots{}. Signatures were reset: a threshold of the CURRENT root's root keys and \
             a threshold of the NEW root's root keys sign with `tufctl keys tuf updates sign \
             -k CREDS.tgz` (the removed key's holder is not needed); `review` shows who is \
             still missing, then `apply`.",
            self.id,
            self.owner.as_deref().unwrap_or("unknown"),
            roles.join(" and "),
            if roles.len() == 1 { "" } else { "s" },
            if self.dropped {
                " and from their keys"
            } else {
                " (another role still lists it)"
            }
        )
    }
}

/// Removes the key whose ID starts with `prefix` (at least 8 hex digits, unique among the
/// staged roots' keys) from `role`, or from every role listing it, in both staged roots, and
/// from `keys` and `x-key-owners` once no role lists it. The server's online keys are
/// refused here: `rotate-online` replaces them.
pub fn remove_key(tx: &mut Tx, prefix: &str, role: Option<Role>) -> Result<Removed> {
    let id = resolve_key_id(tx, prefix)?;
    let listing: Vec<Role> = Role::ALL
        .into_iter()
        .filter(|r| {
            [&tx.ci_root.signed, &tx.prod_root.signed]
                .iter()
                .any(|root| root.role(*r).keyids.contains(&id))
        })
        .collect();
    let roles: Vec<Role> = match role {
        Some(r) if !listing.contains(&r) => bail!(
            "key {id} is not in the {r} role of the staged roots (it is in: {}); nothing was \
             changed",
            role_list(&listing)
        ),
        Some(r) => vec![r],
        None if listing.is_empty() => bail!(
            "key {id} is listed in the staged roots' keys but in no role; nothing was changed"
        ),
        None => listing.clone(),
    };
    let owner = owner_of(&tx.ci_root.signed, &id).or_else(|| owner_of(&tx.prod_root.signed, &id));
    // The server's online keys sign targets, snapshot and timestamp and are replaced with
    // rotate-online. A root key it holds is the bootstrap key, which taking the root offline
    // removes (tufd destroys it once no root lists it).
    let by_server = owner.as_deref() == Some("tufd");
    let online = roles.iter().any(|r| match r {
        Role::Snapshot | Role::Timestamp => true,
        Role::Targets => by_server,
        Role::Root => false,
    });
    if online {
        bail!(
            "key {id} is one of the server's online keys ({}); they are replaced, not removed, \
             with `tufctl keys rotate-online CREDS.tgz`; nothing was changed",
            role_list(&roles)
        );
    }
    let mut dropped = false;
    let mut edit = |r: &mut Root| -> Result<()> {
        for role in &roles {
            r.role_mut(*role)?.keyids.retain(|k| *k != id);
        }
        let used = Role::ALL
            .into_iter()
            .any(|role| r.role(role).keyids.contains(&id));
        if !used {
            r.keys.remove(&id);
            if let Some(o) = r
                .extra
                .get_mut("x-key-owners")
                .and_then(Value::as_object_mut)
            {
                o.remove(id.as_str());
            }
            dropped = true;
        }
        Ok(())
    };
    tx.ci_root = edit_root(&tx.ci_root, &mut edit)?;
    tx.prod_root = edit_root(&tx.prod_root, &mut edit)?;
    Ok(Removed {
        id,
        owner,
        roles,
        dropped,
    })
}

/// The one key ID of the staged roots that starts with `prefix`.
fn resolve_key_id(tx: &Tx, prefix: &str) -> Result<KeyId> {
    let p = prefix.trim().to_ascii_lowercase();
    if p.len() < MIN_KEYID_PREFIX || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!(
            "{prefix:?} is not a key ID or a prefix of one: give at least {MIN_KEYID_PREFIX} \
             hex digits of the key ID (`tufctl keys tuf updates review` and `tufctl keys \
             show-root` list them)"
        );
    }
    let found: BTreeSet<&KeyId> = [&tx.ci_root.signed, &tx.prod_root.signed]
        .iter()
        .flat_map(|r| r.keys.keys())
        .filter(|id| id.as_str().to_ascii_lowercase().starts_with(&p))
        .collect();
    let mut found = found.into_iter();
    match (found.next(), found.next()) {
        (None, _) => bail!(
            "no key of the staged roots has an ID starting with {p} (already removed in this \
             transaction? see `tufctl keys tuf updates review`); nothing was changed"
        ),
        (Some(id), None) => Ok(id.clone()),
        (Some(a), Some(b)) => {
            let mut all = vec![a.to_string(), b.to_string()];
            all.extend(found.map(ToString::to_string));
            bail!(
                "{p} is the start of several key IDs ({}); give more digits",
                all.join(", ")
            )
        }
    }
}

fn role_list(roles: &[Role]) -> String {
    if roles.is_empty() {
        return "no role".to_owned();
    }
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Shortest key-ID prefix `remove-key` accepts: 32 bits leave no room for guessing wrong.
const MIN_KEYID_PREFIX: usize = 8;

fn report_checks(tx: &Tx) {
    for e in &tx.errors {
        println!("  not yet: {e}");
    }
    for w in &tx.warnings {
        println!("  warning: {w}");
    }
}

fn parse_role(s: &str) -> Result<Role> {
    Role::ALL
        .into_iter()
        .find(|r| r.as_str() == s)
        .ok_or_else(|| anyhow!("unknown role {s:?}: use root, targets, snapshot or timestamp"))
}

/// `$USER@hostname`.
pub fn default_owner() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".to_owned());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{user}@{host}")
}

/// `text` from metadata or a request, safe to put in a review on a terminal: control
/// characters (newlines, escape sequences) and invisible or direction-changing characters are
/// written as `\u{..}` escapes, so text cannot fake or hide review lines.
pub fn shown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let hidden = c.is_control()
            || matches!(
                c,
                '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}'
            );
        if hidden {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// A readable diff of the staged roots against the current ones.
pub fn review(tx: &Tx, current: &Current) -> String {
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line(format!("Root-update transaction {}", tx.txid));
    line(format!("  message: {}", shown(&tx.message)));
    if let Some(c) = tx.ci_root.signed.extra.get("x-changelog") {
        line(format!("  changelog: {}", shown(&c.to_string())));
    }
    for (which, env, cur) in [
        ("CI root", &tx.ci_root, &current.ci.signed),
        ("production root", &tx.prod_root, &current.prod.signed),
    ] {
        let new = &env.signed;
        line(format!(
            "{which}: version {} -> {}, expires {} -> {}",
            cur.version, new.version, cur.expires, new.expires
        ));
        for role in Role::ALL {
            let (a, b) = (cur.role(role), new.role(role));
            let before: BTreeSet<&KeyId> = a.keyids.iter().collect();
            let after: BTreeSet<&KeyId> = b.keyids.iter().collect();
            if a.threshold != b.threshold {
                line(format!(
                    "  {role}: threshold {} -> {}",
                    a.threshold.get(),
                    b.threshold.get()
                ));
            }
            for id in after.difference(&before) {
                line(format!(
                    "  {role}: + key {id} ({}, owner {})",
                    shown(new.keys.get(*id).map_or("?", |k| k.kind())),
                    shown(&owner_of(new, id).unwrap_or_else(|| "unknown".into()))
                ));
            }
            for id in before.difference(&after) {
                line(format!(
                    "  {role}: - key {id} (owner {})",
                    shown(&owner_of(cur, id).unwrap_or_else(|| "unknown".into()))
                ));
            }
        }
        // Owners are what people recognise keys by: a relabelled key is a change to see.
        for id in new.keys.keys().filter(|id| cur.keys.contains_key(*id)) {
            let (a, b) = (owner_of(cur, id), owner_of(new, id));
            if a != b {
                line(format!(
                    "  key {id}: owner {} -> {}",
                    shown(&a.unwrap_or_else(|| "unknown".into())),
                    shown(&b.unwrap_or_else(|| "unknown".into()))
                ));
            }
        }
        for (whose, root) in [("current", cur), ("new", new)] {
            let v = env.verify_role("root", root.role(Role::Root), &root.keys);
            line(format!(
                "  signatures by the {whose} root keys: {} of {} needed{}{}",
                v.distinct_valid,
                v.threshold,
                if v.missing.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; not signed by {}",
                        v.missing.iter().map(short).collect::<Vec<_>>().join(", ")
                    )
                },
                if v.invalid.is_empty() {
                    String::new()
                } else {
                    format!("; {} invalid", v.invalid.len())
                }
            ));
        }
    }
    if let Some(t) = &tx.prod_targets {
        let r = &tx.prod_root.signed;
        let v = t.verify_role("targets", r.role(Role::Targets), &r.keys);
        line(format!(
            "production targets version {}: {} signature(s) of {} needed (the server adds its \
             online signature at apply)",
            t.signed.version, v.distinct_valid, v.threshold
        ));
    }
    if !tx.errors.is_empty() {
        line("server checks not passing yet:".to_owned());
        for e in &tx.errors {
            line(format!("  - {e}"));
        }
    }
    for w in &tx.warnings {
        line(format!("warning: {w}"));
    }
    out
}

#[cfg(test)]
mod remove_key_tests {
    use std::collections::BTreeMap;

    use tuf_core::{Expires, KeyType, PrivateKey, RoleKeys};

    use super::*;

    /// Roots listing `root` keys (threshold 2), `targets` keys and one `tufd` online key for
    /// snapshot and timestamp; key IDs are given, so prefixes can collide on purpose.
    fn tx(root: &[&str], targets: &[&str]) -> Tx {
        let mut keys = BTreeMap::new();
        let mut id = |s: &str| {
            let k = PrivateKey::generate(KeyType::Ed25519).unwrap();
            let id = KeyId::new(s).unwrap();
            keys.insert(id.clone(), k.public_key().clone());
            id
        };
        let ids = |list: &[&str], id: &mut dyn FnMut(&str) -> KeyId| -> Vec<KeyId> {
            list.iter().map(|s| id(s)).collect()
        };
        let t = |n| Threshold::new(n).unwrap();
        let mut roles = BTreeMap::new();
        roles.insert(Role::Root, RoleKeys::new(ids(root, &mut id), t(2)));
        roles.insert(Role::Targets, RoleKeys::new(ids(targets, &mut id), t(1)));
        let online = id("0a1b2c3d");
        roles.insert(Role::Snapshot, RoleKeys::new(vec![online.clone()], t(1)));
        roles.insert(Role::Timestamp, RoleKeys::new(vec![online.clone()], t(1)));
        let mut r = Root::new(2, Expires::from_unix(4_000_000_000).unwrap(), keys, roles);
        r.extra.insert(
            "x-key-owners".into(),
            json!({"0a1b2c3d": "tufd", "aaaa1111bb": "alice"}),
        );
        let env = Signed::new(r).unwrap();
        Tx {
            txid: "t".into(),
            message: String::new(),
            ci_root: env.clone(),
            prod_root: env,
            prod_targets: None,
            stage_prod_targets: false,
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn err(tx: &mut Tx, prefix: &str, role: Option<Role>) -> String {
        format!("{:#}", remove_key(tx, prefix, role).err().unwrap())
    }

    #[test]
    fn prefixes_must_be_long_hex_and_unique() {
        let mut t = tx(&["aaaa1111bb", "aaaa1111cc", "dddd2222"], &["eeee3333"]);
        assert!(err(&mut t, "aaaa111", None).contains("at least 8 hex digits"));
        assert!(err(&mut t, "aaaa111x", None).contains("at least 8 hex digits"));
        let e = err(&mut t, "AAAA1111", None);
        assert!(
            e.contains("start of several key IDs (aaaa1111bb, aaaa1111cc)"),
            "{e}"
        );
        assert!(err(&mut t, "99999999", None).contains("no key of the staged roots"));
        let r = remove_key(&mut t, "AAAA1111BB", None).unwrap();
        assert_eq!(r.id.as_str(), "aaaa1111bb");
        assert_eq!(r.owner.as_deref(), Some("alice"));
        assert_eq!((r.roles, r.dropped), (vec![Role::Root], true));
        for root in [&t.ci_root.signed, &t.prod_root.signed] {
            assert_eq!(root.role(Role::Root).keyids.len(), 2);
            assert!(!root.keys.contains_key(&r.id));
            assert!(root.extra["x-key-owners"].get("aaaa1111bb").is_none());
            assert_eq!(root.extra["x-key-owners"]["0a1b2c3d"], "tufd");
        }
    }

    #[test]
    fn a_key_in_two_roles_stays_in_keys_until_no_role_lists_it() {
        let mut t = tx(&["aaaa1111bb", "dddd2222"], &["dddd2222"]);
        let e = err(&mut t, "eeee3333", None);
        assert!(e.contains("no key of the staged roots"), "{e}");
        let r = remove_key(&mut t, "dddd2222", Some(Role::Targets)).unwrap();
        assert_eq!((r.roles, r.dropped), (vec![Role::Targets], false));
        assert!(t.ci_root.signed.keys.contains_key(&r.id));
        let e = err(&mut t, "dddd2222", Some(Role::Targets));
        assert!(
            e.contains("not in the targets role") && e.contains("in: root"),
            "{e}"
        );
        let r = remove_key(&mut t, "dddd2222", None).unwrap();
        assert_eq!((r.roles, r.dropped), (vec![Role::Root], true));
        assert!(!t.prod_root.signed.keys.contains_key(&r.id));
    }

    #[test]
    fn the_bootstrap_root_key_is_removable_but_the_online_targets_key_is_not() {
        let mut t = tx(&["aaaa1111bb", "bbbb2222cc"], &["cccc3333dd"]);
        for env in [&mut t.ci_root, &mut t.prod_root] {
            let mut r = env.signed.clone();
            for id in ["bbbb2222cc", "cccc3333dd"] {
                set_owner(&mut r, &KeyId::new(id).unwrap(), "tufd");
            }
            *env = Signed::new(r).unwrap();
        }
        let r = remove_key(&mut t, "bbbb2222", None).unwrap();
        assert_eq!(r.roles, vec![Role::Root]);
        let e = err(&mut t, "cccc3333", None);
        assert!(e.contains("server's online keys"), "{e}");
    }

    #[test]
    fn online_keys_are_refused() {
        let mut t = tx(&["aaaa1111bb"], &["eeee3333"]);
        let e = err(&mut t, "0a1b2c3d", None);
        assert!(
            e.contains("server's online keys") && e.contains("rotate-online"),
            "{e}"
        );
        assert!(t
            .ci_root
            .signed
            .keys
            .contains_key(&KeyId::new("0a1b2c3d").unwrap()));
    }
}
