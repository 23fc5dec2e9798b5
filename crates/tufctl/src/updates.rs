//! `keys tuf updates ...`: root-update transactions step by step, for threshold roots and
//! several key holders: open, edit, sign (here, or exported to `tufctl sign` on an offline
//! machine and imported back), review, apply, cancel.

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::json;
use tuf_ceremony::format::{offline_role, parse_role, PublicKeyFile, Response};
use tuf_ceremony::root_update::root_signing_keys;
use tuf_ceremony::tx::Removed;
use tuf_ceremony::{format, keyring, review, Roots, Tx};
use tuf_core::{Role, Threshold};

use crate::cli::{KeyTypeArg, UpdatesCommand};
use crate::creds::{self, CredsFile};
use crate::document;
use crate::output::either;
use crate::server::{check_tx, Factory};
use crate::settings::{default_owner, Settings};

pub fn run(s: &Settings, cmd: UpdatesCommand) -> Result<()> {
    let f = Factory::owner(s, None)?;
    match cmd {
        UpdatesCommand::Init { message } => init(s, &f, &message),
        UpdatesCommand::Review => review(s, &f),
        UpdatesCommand::Sign { creds } => sign(s, &f, &creds),
        UpdatesCommand::Apply => apply(s, &f),
        UpdatesCommand::Cancel => {
            let tx = f.require_open()?;
            f.cancel(&tx.txid)?;
            either(
                s.json(),
                json!({"txid": tx.txid, "cancelled": true}),
                || outln!("Cancelled root-update transaction {}.", tx.txid),
            );
            Ok(())
        }
        UpdatesCommand::Export { out } => export(s, &f, &out),
        UpdatesCommand::Import { response } => import(s, &f, &response),
        UpdatesCommand::SetThreshold { role, threshold } => set_threshold(s, &f, &role, threshold),
        UpdatesCommand::RemoveKey { keyid, role } => remove_key(s, &f, &keyid, role.as_deref()),
        UpdatesCommand::AddOfflineKey {
            role,
            public_key: Some(path),
            owner,
            ..
        } => add_public_key(s, &f, &role, &path, owner),
        UpdatesCommand::AddOfflineKey {
            role,
            key_type,
            slot,
            owner,
            creds,
            public_key: None,
        } => {
            let creds = creds.ok_or_else(|| {
                anyhow!("add-offline-key needs -k CREDS.tgz (or --public-key KEY.json)")
            })?;
            let new = NewKey {
                key_type,
                slot: slot.as_deref(),
                owner,
            };
            add_new_key(s, &f, &role, &creds, new)
        }
    }
}

/// `review`: the staged roots against the current ones, and what is still missing.
fn review(s: &Settings, f: &Factory) -> Result<()> {
    let tx = f.require_open()?;
    let current = f.roots()?;
    let text = review::transaction(&tx, &current);
    let v = json!({
        "txid": tx.txid, "message": tx.message,
        "ci_version": tx.ci_root.signed.version, "prod_version": tx.prod_root.signed.version,
        "missing": tuf_ceremony::tx::missing_signatures(&tx, &current),
        "errors": tx.errors, "warnings": tx.warnings, "review": text,
    });
    either(s.json(), v, || out!("{text}"));
    Ok(())
}

fn init(s: &Settings, f: &Factory, message: &str) -> Result<()> {
    let tx = f.init_tx(message)?;
    if s.json() {
        outln!("{}", json!({"txid": tx.txid}));
    } else {
        outln!(
            "Opened root-update transaction {} (CI root version {}). Edit it with \
             set-threshold / add-offline-key, sign it with `sign -k CREDS.tgz`, then `apply`.",
            tx.txid,
            tx.ci_root.signed.version
        );
    }
    Ok(())
}

/// Verifies the roots from `file`, checks the transaction ([`check_tx`]), then signs the
/// roots and the staged production targets with the file's keys.
fn check_and_sign(f: &Factory, file: &mut CredsFile, tx: &mut Tx) -> Result<(Roots, Vec<String>)> {
    let current = f.verified_roots(file)?;
    check_tx(tx, &current)?;
    let done = keyring::sign_tx(tx, &*file, &current)?;
    Ok((current, done))
}

fn sign(s: &Settings, f: &Factory, path: &Path) -> Result<()> {
    let mut file = CredsFile::open(s, path)?;
    let mut tx = f.require_open()?;
    let (current, done) = check_and_sign(f, &mut file, &mut tx)?;
    if done.is_empty() {
        bail!(
            "{} holds no key that this transaction needs (root keys of the current or new root, \
             or offline targets keys of the new production root); nothing was signed",
            path.display()
        );
    }
    f.stage(&tx)?;
    let missing = tuf_ceremony::tx::missing_signatures(&tx, &current);
    let v = json!({"txid": tx.txid, "signed": done, "missing": missing});
    either(s.json(), v, || {
        for d in &done {
            outln!("signed {d}");
        }
        say_missing(&missing);
    });
    Ok(())
}

/// What is still missing, or that `apply` may run now.
fn say_missing(missing: &[String]) {
    if missing.is_empty() {
        outln!("All root signatures are present: run `tufctl keys tuf updates apply`.");
    }
    for m in missing {
        outln!("still missing: {m}");
    }
}

fn apply(s: &Settings, f: &Factory) -> Result<()> {
    let tx = f.require_open()?;
    let out = f.apply(&tx.txid)?;
    if s.json() {
        outln!("{out}");
    } else {
        outln!(
            "Applied: CI root version {}, production root version {}.",
            out["ci_version"],
            out["prod_version"]
        );
    }
    Ok(())
}

/// `keys tuf updates export REQUEST.json`.
fn export(s: &Settings, f: &Factory, out: &Path) -> Result<()> {
    let tx = f.require_open()?;
    let request = f.root_update_request(&tx, &f.roots()?)?;
    document::write_file(out, &request.to_bytes()?, "signing request")?;
    if s.json() {
        crate::output::json(&json!({"txid": tx.txid, "request": out}));
        return Ok(());
    }
    outln!(
        "Wrote the signing request for root-update transaction {} ({}) to {}. Carry it to the \
         offline machine, run `tufctl sign {} -k CREDS.tgz --out RESPONSE.json` there, and bring \
         RESPONSE.json back to `tufctl keys tuf updates import RESPONSE.json`.",
        tx.txid,
        tx.message,
        out.display(),
        out.display()
    );
    Ok(())
}

/// `keys tuf updates import RESPONSE.json`: the signatures are checked against the open
/// transaction's staged bytes (by SHA-256) and keys, then staged.
fn import(s: &Settings, f: &Factory, arg: &str) -> Result<()> {
    let Response::RootUpdate(r) = document::read_response(arg)? else {
        bail!("{arg} is the response to a wave; import it with `tufctl waves import`");
    };
    if r.factory != f.name {
        bail!(
            "the response is for Factory {:?}, not {:?}; nothing was changed",
            r.factory,
            f.name
        );
    }
    let mut tx = f.require_open()?;
    if tx.txid != r.txid {
        bail!(
            "the response signs root-update transaction {}, but the open one is {} ({}); it was \
             cancelled or replaced since the request was exported. Nothing was changed: export \
             a new request",
            r.txid,
            tx.txid,
            tx.message
        );
    }
    let current = f.roots()?;
    let mut added = Vec::new();
    for (name, (sha, sigs)) in &r.documents {
        let n = add_response_signatures(&mut tx, &current, name, sha, sigs)?;
        added.push(format!("{n} signature(s) on {name}"));
    }
    f.stage(&tx)?;
    let missing = tuf_ceremony::tx::missing_signatures(&tx, &current);
    let v = json!({"txid": tx.txid, "imported": added, "missing": missing});
    either(s.json(), v, || {
        outln!(
            "Imported into root-update transaction {}: {}.",
            tx.txid,
            added.join(", ")
        );
        say_missing(&missing);
    });
    Ok(())
}

fn add_response_signatures(
    tx: &mut Tx,
    current: &Roots,
    name: &str,
    sha: &str,
    sigs: &[tuf_core::Signature],
) -> Result<usize> {
    Ok(match name {
        "ci_root" => {
            let keys = root_signing_keys(&current.ci.signed, &tx.ci_root.signed);
            format::add_signatures(&mut tx.ci_root, name, sha, sigs, &keys)?
        }
        "prod_root" => {
            let keys = root_signing_keys(&current.prod.signed, &tx.prod_root.signed);
            format::add_signatures(&mut tx.prod_root, name, sha, sigs, &keys)?
        }
        _ => {
            let keys = tx.prod_root.signed.role_keys(Role::Targets);
            let t = tx.prod_targets.as_mut().ok_or_else(|| {
                anyhow!("the response signs production targets the transaction does not have")
            })?;
            let n = format::add_signatures(t, name, sha, sigs, &keys)?;
            tx.stage_prod_targets = true;
            n
        }
    })
}

fn set_threshold(s: &Settings, f: &Factory, role: &str, threshold: u64) -> Result<()> {
    let role = parse_role(role)?;
    let mut tx = f.require_open()?;
    tx.set_threshold(role, Threshold::new(threshold)?)?;
    let staged = f.stage(&tx)?;
    if s.json() {
        crate::output::json(&json!({
            "txid": staged.txid, "role": role.as_str(), "threshold": threshold,
            "errors": staged.errors, "warnings": staged.warnings,
        }));
        return Ok(());
    }
    report_checks(&staged);
    outln!(
        "Staged: {role} threshold {threshold}{}. Signatures were reset: every root key holder \
         signs again with `tufctl keys tuf updates sign -k CREDS.tgz`.",
        if role == Role::Targets {
            " (production root)"
        } else {
            ""
        }
    );
    Ok(())
}

fn remove_key(s: &Settings, f: &Factory, keyid: &str, role: Option<&str>) -> Result<()> {
    let role = role.map(parse_role).transpose()?;
    let mut tx = f.require_open()?;
    let removed = tx.remove_key(keyid, role)?;
    let staged = f.stage(&tx)?;
    if s.json() {
        outln!(
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
    outln!("{}", describe_removed(&removed));
    Ok(())
}

fn describe_removed(r: &Removed) -> String {
    let roles: Vec<&str> = r.roles.iter().map(|r| r.as_str()).collect();
    format!(
        "Staged: key {} (owner {}) removed from the {} role{} of the CI and production \
         roots{}. Signatures were reset: a threshold of the CURRENT root's root keys and \
         a threshold of the NEW root's root keys sign with `tufctl keys tuf updates sign \
         -k CREDS.tgz` (the removed key's holder is not needed); `review` shows who is \
         still missing, then `apply`.",
        r.id,
        r.owner.as_deref().unwrap_or("unknown"),
        roles.join(" and "),
        if roles.len() == 1 { "" } else { "s" },
        if r.dropped {
            " and from their keys"
        } else {
            " (another role still lists it)"
        }
    )
}

/// `add-offline-key --public-key KEY.json`: a key generated on an offline machine.
fn add_public_key(
    s: &Settings,
    f: &Factory,
    role: &str,
    path: &Path,
    owner: Option<String>,
) -> Result<()> {
    let role = offline_role(role)?;
    let file = PublicKeyFile::parse(&document::read_file(path, "public-key file")?)
        .with_context(|| format!("{} is not a usable public-key file", path.display()))?;
    if file.role()? != role {
        bail!(
            "{} holds a {} key, not a {role} key",
            path.display(),
            file.role
        );
    }
    let factory = s.factory(None)?;
    if file.factory != factory {
        bail!(
            "{} holds a key generated for Factory {:?}, not {factory:?}",
            path.display(),
            file.factory
        );
    }
    let mut tx = f.require_open()?;
    let owner = owner.unwrap_or_else(|| file.owner.clone());
    tx.add_key(role, &file.key, &owner)?;
    let staged = f.stage(&tx)?;
    if s.json() {
        crate::output::json(&json!({
            "txid": staged.txid, "role": role.as_str(), "keyid": file.keyid, "owner": owner,
            "errors": staged.errors, "warnings": staged.warnings,
        }));
        return Ok(());
    }
    report_checks(&staged);
    outln!(
        "Added {role} key {} (owner {}; generated offline, its private key is not here). Root \
         key holders sign with `tufctl keys tuf updates sign -k THEIR.tgz` or through `export` \
         and `tufctl sign`; the new key's holder signs too.",
        file.keyid,
        review::shown(&owner)
    );
    Ok(())
}

/// How `add-offline-key -k CREDS.tgz` makes the new key.
struct NewKey<'a> {
    key_type: KeyTypeArg,
    slot: Option<&'a str>,
    owner: Option<String>,
}

/// `add-offline-key -k CREDS.tgz`: a new key generated into the holder's own file (created
/// when missing), saved before the server hears of it, then staged and signed.
fn add_new_key(s: &Settings, f: &Factory, role: &str, path: &Path, new: NewKey) -> Result<()> {
    let role = offline_role(role)?;
    let mut file = open_or_create(s, f, path)?;
    let mut tx = f.require_open()?;
    let (public, stored_as) =
        creds::new_key_into(&mut file, role, new.key_type.key_type(), new.slot)?;
    // Nothing is lost: the key (or its token reference) is on disk before the server hears
    // of it.
    file.save()
        .context("saving the new key before sending anything to the server")?;
    let owner = new.owner.unwrap_or_else(default_owner);
    let id = public.key_id();
    tx.add_key(role, &public, &owner)?;
    // Staged either way: a transaction still being edited may not pass every check yet.
    if let Err(e) = check_and_sign(f, &mut file, &mut tx) {
        let e = crate::outcome::paragraph(&e);
        errln!("note: the new key is staged but nothing was signed: {e:#}");
    }
    let staged = f.stage(&tx).with_context(|| {
        format!(
            "the new key keys/{stored_as} is saved in {} but not staged; re-run to stage it",
            path.display()
        )
    })?;
    if s.json() {
        crate::output::json(&json!({
            "txid": staged.txid, "role": role.as_str(), "keyid": id, "owner": owner,
            "stored_as": format!("keys/{stored_as}"), "file": path,
            "errors": staged.errors, "warnings": staged.warnings,
        }));
        return Ok(());
    }
    report_checks(&staged);
    outln!(
        "Added {role} key {id} (stored as keys/{stored_as} in {}). Other root key holders sign \
         with `tufctl keys tuf updates sign -k THEIR.tgz`; then `apply`.",
        path.display()
    );
    Ok(())
}

/// The holder's credentials file; a new holder starts with an empty one of their own,
/// anchored on the current root (what `tufctl sign` verifies later requests from).
fn open_or_create(s: &Settings, f: &Factory, path: &Path) -> Result<CredsFile> {
    if path.exists() {
        return CredsFile::open(s, path);
    }
    let config = tuf_credentials::Config {
        api: s.api_url(None)?,
        factory: f.name.clone(),
    };
    let root = f
        .api
        .get(&format!("{}/root.json", f.repo))
        .context("fetching the current root for the new credentials file")?;
    errln!("note: creating a new credentials file {}", path.display());
    let mut file = CredsFile::create(s, path, config)?;
    file.creds.set_root_json(&root)?;
    Ok(file)
}

/// The server's check results on a staged transaction.
pub fn report_checks(tx: &Tx) {
    for e in &tx.errors {
        outln!("  not yet: {e}");
    }
    for w in &tx.warnings {
        outln!("  warning: {w}");
    }
}
