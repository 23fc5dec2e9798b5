//! `tufctl sign REQUEST.json -k CREDS.tgz --out RESPONSE.json`: signing on an air-gapped
//! machine. No server settings, no network: the request is verified on its own, starting
//! from the root the credentials file already trusts (`tufrepo/roles/root.json`), shown to
//! the key holder, and signed only after they confirm. The credentials file is only read.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use time::OffsetDateTime;
use tuf_core::{canonical, KeyId, Metadata, Role, Root, Signature, Signed, Targets};

use crate::creds::CredsFile;
use crate::request::{
    self, document_sha256, root_signing_keys, signature_valid, Request, Response,
    RootUpdateRequest, RootUpdateResponse, WaveRequest, WaveResponse,
};
use crate::settings::Settings;
use crate::updates::{self, Current, Tx};

pub struct SignArgs {
    pub request: PathBuf,
    pub creds: PathBuf,
    pub out: PathBuf,
    pub yes: bool,
    pub qr: Option<PathBuf>,
}

pub fn sign(s: &Settings, a: &SignArgs) -> Result<()> {
    let bytes = request::read_file(&a.request, "signing request")?;
    let req = Request::from_slice(&bytes)
        .with_context(|| format!("{} is not a signing request", a.request.display()))?;
    let file = CredsFile::open(s, &a.creds)?;
    let anchor = file.stored_root()?.ok_or_else(|| {
        anyhow!(
            "{} has no tufrepo/roles/root.json, the root this machine trusts; a request can only \
             be verified from a root the file already holds (see docs/SIGNING-REQUESTS.md)",
            a.creds.display()
        )
    })?;
    let factory = &file.creds.config().factory;
    let now = OffsetDateTime::now_utc();
    let refused = |e: anyhow::Error| {
        e.context(format!(
            "refusing to sign {}: it does not verify, nothing was signed and {} was not touched",
            a.request.display(),
            a.creds.display()
        ))
    };
    let (review, response) = match req {
        Request::RootUpdate(r) => {
            let current = check_root_update(&r, &anchor, factory, now).map_err(refused)?;
            let review = review_root_update(&r, &current);
            let response = sign_root_update(&r, current, &file)?;
            (review, response)
        }
        Request::Wave(w) => {
            let prod_root = check_wave(&w, &anchor, factory, now).map_err(refused)?;
            let review = review_wave(&w);
            let response = sign_wave(&w, &prod_root, &file)?;
            (review, response)
        }
    };
    let Some(response) = response else {
        bail!(
            "{} holds no key this request needs (root keys of the current or new root, or \
             offline targets keys of the production root); nothing was signed",
            a.creds.display()
        );
    };
    print!("{review}");
    confirm(a.yes)?;
    let out = response.to_bytes()?;
    request::write_file(&a.out, &out, "signing response")?;
    println!("Wrote the signed response to {}.", a.out.display());
    if let Some(qr) = &a.qr {
        let text = std::str::from_utf8(&out).context("the response is not UTF-8")?;
        let png = crate::backup::qr_png(text).with_context(|| {
            format!(
                "{} was written, but its {} bytes do not fit in one QR code; carry the file instead",
                a.out.display(),
                out.len()
            )
        })?;
        request::write_file(qr, &png, "QR code")?;
        println!(
            "Wrote the response as a QR code to {} (its payload is the same JSON text).",
            qr.display()
        );
    }
    Ok(())
}

// --- verification (no I/O) --------------------------------------------------------------------

/// Checks a root-update request and returns the current roots at the end of its chains.
pub fn check_root_update(
    r: &RootUpdateRequest,
    anchor: &Signed<Root>,
    factory: &str,
    now: OffsetDateTime,
) -> Result<Current> {
    same_factory(&r.factory, factory)?;
    let (ci, prod) = trusted_chains(&r.ci_chain, &r.prod_chain, anchor)?;
    for (label, new, cur) in [
        ("CI root", &r.ci_root, &ci.signed),
        ("production root", &r.prod_root, &prod.signed),
    ] {
        check_successor(label, new, cur, now)?;
    }
    if strip_targets_threshold(&r.ci_root)? != strip_targets_threshold(&r.prod_root)? {
        bail!("the staged production root differs from the staged CI root in more than the targets threshold");
    }
    let cur_targets = &r.current_prod_targets;
    let role = prod.signed.role(Role::Targets);
    if !cur_targets
        .verify_role("targets", role, &prod.signed.keys)
        .is_met()
    {
        bail!("the current production targets do not verify under the current production root");
    }
    if let Some(t) = &r.prod_targets {
        let want = cur_targets.signed.version.saturating_add(1);
        if t.signed.version != want {
            bail!(
                "the staged production targets have version {}, not {want} (current + 1)",
                t.signed.version
            );
        }
        if t.signed.targets != cur_targets.signed.targets
            || t.signed.delegations != cur_targets.signed.delegations
        {
            bail!("the staged production targets list other targets than the current ones; a root update never changes what devices install");
        }
        let keys = r.prod_root.signed.role_keys(Role::Targets);
        existing_signatures_valid("staged production targets", t, &keys)?;
    }
    Ok(Current { ci, prod })
}

/// Checks a wave request and returns the current production root.
pub fn check_wave(
    w: &WaveRequest,
    anchor: &Signed<Root>,
    factory: &str,
    now: OffsetDateTime,
) -> Result<Signed<Root>> {
    same_factory(&w.factory, factory)?;
    let (ci, prod) = trusted_chains(&w.ci_chain, &w.prod_chain, anchor)?;
    let (c, p) = (&ci.signed, &prod.signed);
    let v = w
        .ci_targets
        .verify_role("targets", c.role(Role::Targets), &c.keys);
    if !v.is_met() {
        bail!(
            "the CI targets.json does not verify under the current CI root ({} of {} targets \
             signatures)",
            v.distinct_valid,
            v.threshold
        );
    }
    let v = w
        .current_targets
        .verify_role("targets", p.role(Role::Targets), &p.keys);
    if !v.is_met() {
        bail!("the current production targets do not verify under the current production root");
    }
    let (cur, new) = (&w.current_targets.signed, &w.targets.signed);
    let want = cur.version.saturating_add(1);
    if new.version != want {
        bail!(
            "the proposed production targets have version {}, not {want} (current + 1)",
            new.version
        );
    }
    if new.expires.is_expired_at(now) {
        bail!("the proposed production targets expired on {}", new.expires);
    }
    if new.delegations != cur.delegations {
        bail!("the proposed production targets change the delegations");
    }
    let mut changed = 0;
    for (path, t) in &new.targets {
        if cur.targets.get(path) == Some(t) {
            continue;
        }
        changed += 1;
        let Some(ci_t) = w.ci_targets.signed.targets.get(path) else {
            bail!("target {path:?} is not in the CI targets signed by the online key");
        };
        if ci_t.length != t.length || ci_t.hashes != t.hashes {
            bail!(
                "target {path:?} does not match the CI targets entry of the same path (length \
                 or hashes differ): it is not the build CI signed"
            );
        }
    }
    if changed == 0 {
        bail!("the proposed production targets add nothing to the current ones");
    }
    if !w.targets.signatures.is_empty() {
        bail!(
            "the proposed production targets already carry signatures; a wave request is unsigned"
        );
    }
    Ok(prod)
}

/// Verifies both chains from the tarball's trusted root; returns their last roots.
fn trusted_chains(
    ci_chain: &[Signed<Root>],
    prod_chain: &[Signed<Root>],
    anchor: &Signed<Root>,
) -> Result<(Signed<Root>, Signed<Root>)> {
    let start = usize::try_from(anchor.signed.version - 1)
        .map_err(|_| anyhow!("the trusted root's version is out of range"))?;
    let at = |chain: &[Signed<Root>], which: &str| -> Result<()> {
        for (i, r) in chain.iter().enumerate() {
            if r.signed.version != i as u64 + 1 {
                bail!(
                    "the {which} root chain is not versions 1, 2, 3, ...: entry {} has version {}",
                    i + 1,
                    r.signed.version
                );
            }
        }
        if chain.len() <= start {
            bail!(
                "the {which} root chain ends at version {}, before version {} that the \
                 credentials file trusts: the request is older than the file, or was cut short",
                chain.len(),
                anchor.signed.version
            );
        }
        Ok(())
    };
    at(ci_chain, "CI")?;
    at(prod_chain, "production")?;
    if ci_chain[start].canonical() != anchor.canonical() {
        bail!(
            "CI root version {} in the request is not the one in the credentials file \
             (tufrepo/roles/root.json): the chain does not start from a root this machine trusts",
            anchor.signed.version
        );
    }
    // The production root of the same version is signed by the same root keys.
    let a = &anchor.signed;
    let p = &prod_chain[start];
    if !p.verify_role("root", a.role(Role::Root), &a.keys).is_met()
        || !p
            .verify_role("root", p.signed.role(Role::Root), &p.signed.keys)
            .is_met()
    {
        bail!(
            "production root version {} is not signed by a threshold of the trusted root's keys",
            p.signed.version
        );
    }
    for (which, chain) in [("CI", ci_chain), ("production", prod_chain)] {
        for pair in chain[start..].windows(2) {
            let (prev, next) = (&pair[0], &pair[1]);
            for (whose, root) in [("previous", &prev.signed), ("its own", &next.signed)] {
                let v = next.verify_role("root", root.role(Role::Root), &root.keys);
                if !v.is_met() {
                    bail!(
                        "{which} root version {} is not signed by a threshold of {whose} root \
                         keys ({} of {}): the chain is broken",
                        next.signed.version,
                        v.distinct_valid,
                        v.threshold
                    );
                }
            }
        }
    }
    let last = |c: &[Signed<Root>]| c.last().cloned().ok_or_else(|| anyhow!("empty chain"));
    Ok((last(ci_chain)?, last(prod_chain)?))
}

/// A staged root is a valid successor of `cur`, and what it already carries is intact.
fn check_successor(label: &str, new: &Signed<Root>, cur: &Root, now: OffsetDateTime) -> Result<()> {
    let n = &new.signed;
    if n.version != cur.version.saturating_add(1) {
        bail!(
            "the staged {label} has version {}, but the chain ends at version {}: the chain \
             does not lead to the staged root",
            n.version,
            cur.version
        );
    }
    for role in Role::ALL {
        let rk = n.role(role);
        if rk.keyids.iter().any(|id| !n.keys.contains_key(id)) {
            bail!("the staged {label} lists a {role} key that is not in its keys");
        }
        if rk.threshold.get() as usize > n.role_keys(role).len() {
            bail!(
                "the staged {label}: {role} threshold {} is more than its key count",
                rk.threshold.get()
            );
        }
    }
    // Key IDs of new keys must name their key: the review shows IDs, so an ID that does not
    // match its key material would show one key and sign another.
    for (id, key) in &n.keys {
        if cur.keys.get(id) == Some(key) {
            continue;
        }
        let computed = key.key_id();
        if &computed != id {
            bail!(
                "the staged {label} lists key {id}, which does not match its public key \
                 (computed ID {computed}): the key was swapped"
            );
        }
    }
    if n.expires.is_expired_at(now) {
        bail!("the staged {label} expired on {}", n.expires);
    }
    if n.expires.unix() - now.unix_timestamp() > MAX_ROOT_VALIDITY {
        bail!(
            "the staged {label} expires {}, more than 5 years away",
            n.expires
        );
    }
    existing_signatures_valid(&format!("staged {label}"), new, &root_signing_keys(cur, n))
}

/// Every signature already on a staged document must verify: one that does not means the
/// document was changed after someone signed it.
fn existing_signatures_valid<T: Metadata>(
    label: &str,
    env: &Signed<T>,
    keys: &BTreeMap<KeyId, tuf_core::PublicKey>,
) -> Result<()> {
    for sig in &env.signatures {
        if !signature_valid(env, sig, keys) {
            bail!(
                "the {label} carries a signature of key {} that does not verify: the document \
                 was changed after that key holder signed it",
                sig.keyid
            );
        }
    }
    Ok(())
}

fn same_factory(requested: &str, ours: &str) -> Result<()> {
    if requested != ours {
        bail!("the request is for Factory {requested:?}, but the credentials file is for {ours:?}");
    }
    Ok(())
}

fn strip_targets_threshold(env: &Signed<Root>) -> Result<Value> {
    let mut v = canonical::parse(env.canonical())?;
    if let Some(t) = v
        .get_mut("roles")
        .and_then(|r| r.get_mut("targets"))
        .and_then(Value::as_object_mut)
    {
        t.remove("threshold");
    }
    Ok(v)
}

// --- review -----------------------------------------------------------------------------------

fn review_root_update(r: &RootUpdateRequest, current: &Current) -> String {
    let tx = as_tx(r);
    let mut out = format!(
        "Factory {}: verified the request from the root in the credentials file to CI root \
         version {} and production root version {}.\n",
        r.factory, current.ci.signed.version, current.prod.signed.version
    );
    out.push_str(&updates::review(&tx, current));
    if let Some(t) = &r.prod_targets {
        out.push_str(&format!(
            "production targets: version {} -> {}, expires {}, {} target(s), unchanged list\n",
            r.current_prod_targets.signed.version,
            t.signed.version,
            t.signed.expires,
            t.signed.targets.len()
        ));
    }
    out
}

fn review_wave(w: &WaveRequest) -> String {
    let (cur, new) = (&w.current_targets.signed, &w.targets.signed);
    let mut out = format!(
        "Factory {}: wave {} (version {}, tag {}), verified against the CI targets signed by \
         the online key.\nproduction targets: version {} -> {}, expires {} -> {}\n",
        w.factory, w.wave, w.version, w.tag, cur.version, new.version, cur.expires, new.expires
    );
    for (path, t) in &new.targets {
        if cur.targets.get(path) == Some(t) {
            continue;
        }
        let verb = if cur.targets.contains_key(path) {
            "~"
        } else {
            "+"
        };
        out.push_str(&format!("  {verb} {path}  length {}\n", t.length));
        for (alg, h) in &t.hashes {
            out.push_str(&format!("      {alg} {h}\n"));
        }
    }
    let removed: BTreeSet<&String> = cur
        .targets
        .keys()
        .filter(|p| !new.targets.contains_key(*p))
        .collect();
    for p in removed {
        out.push_str(&format!("  - {p}\n"));
    }
    let kept = new
        .targets
        .iter()
        .filter(|(p, t)| cur.targets.get(*p) == Some(*t))
        .count();
    out.push_str(&format!("  ({kept} target(s) unchanged)\n"));
    out
}

/// Asks on the terminal; `--yes` answers for scripts. Without either, nothing is signed.
fn confirm(yes: bool) -> Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "nothing was signed: confirmation is needed and standard input is not a terminal; \
             review the request and pass --yes to sign it from a script"
        );
    }
    eprint!("Sign this? Type yes to sign: ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("reading the confirmation")?;
    if answer.trim() != "yes" {
        bail!("not confirmed; nothing was signed");
    }
    Ok(())
}

// --- signing ----------------------------------------------------------------------------------

fn sign_root_update(
    r: &RootUpdateRequest,
    current: Current,
    file: &CredsFile,
) -> Result<Option<Response>> {
    let mut tx = as_tx(r);
    let done = updates::sign_with(&mut tx, file, &current)?;
    if done.is_empty() {
        return Ok(None);
    }
    let mut documents = BTreeMap::new();
    let mut add = |name: &str, sha: String, before: &[Signature], after: &[Signature]| {
        let new: Vec<Signature> = after
            .iter()
            .filter(|s| !before.contains(s))
            .cloned()
            .collect();
        if !new.is_empty() {
            documents.insert(name.to_owned(), (sha, new));
        }
    };
    add(
        "ci_root",
        document_sha256(&tx.ci_root),
        &r.ci_root.signatures,
        &tx.ci_root.signatures,
    );
    add(
        "prod_root",
        document_sha256(&tx.prod_root),
        &r.prod_root.signatures,
        &tx.prod_root.signatures,
    );
    if let (Some(before), Some(after)) = (&r.prod_targets, &tx.prod_targets) {
        add(
            "prod_targets",
            document_sha256(after),
            &before.signatures,
            &after.signatures,
        );
    }
    Ok(Some(Response::RootUpdate(RootUpdateResponse {
        factory: r.factory.clone(),
        txid: r.txid.clone(),
        documents,
    })))
}

fn sign_wave(
    w: &WaveRequest,
    prod_root: &Signed<Root>,
    file: &CredsFile,
) -> Result<Option<Response>> {
    let signers = updates::role_signers(file, &prod_root.signed, Role::Targets)?;
    if signers.is_empty() {
        return Ok(None);
    }
    let mut targets: Signed<Targets> = w.targets.clone();
    for k in &signers {
        targets.sign(k.as_ref())?;
    }
    Ok(Some(Response::Wave(Box::new(WaveResponse {
        factory: w.factory.clone(),
        wave: w.wave.clone(),
        version: w.version.clone(),
        tag: w.tag.clone(),
        targets,
    }))))
}

/// The request as the transaction it describes, for the functions `updates` shares.
fn as_tx(r: &RootUpdateRequest) -> Tx {
    Tx {
        txid: r.txid.clone(),
        message: r.message.clone(),
        ci_root: r.ci_root.clone(),
        prod_root: r.prod_root.clone(),
        prod_targets: r.prod_targets.clone(),
        stage_prod_targets: false,
        errors: Vec::new(),
        warnings: Vec::new(),
    }
}

/// Roots further away than this are refused (the server refuses them too).
const MAX_ROOT_VALIDITY: i64 = 5 * 366 * 24 * 3600;
