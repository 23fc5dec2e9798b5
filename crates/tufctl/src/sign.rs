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
use tuf_core::{canonical, Expires, KeyId, Metadata, Role, Root, Signature, Signed, Targets};

use crate::creds::CredsFile;
use crate::request::{
    self, document_sha256, root_signing_keys, signature_valid, Request, Response,
    RootUpdateRequest, RootUpdateResponse, WaveRequest, WaveResponse,
};
use crate::settings::Settings;
use crate::updates::{self, shown, Current, Tx};
use crate::waves;

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
        // A wave's targets can be long: its QR code carries the signatures and the hash of
        // the targets only, and `waves import --request` joins them to the request.
        let (payload, said) = match &response {
            Response::Wave(w) => (
                w.compact().to_bytes()?,
                "the signatures, naming the targets by hash: import it with `tufctl waves \
                 import QR-TEXT --request REQUEST.json`",
            ),
            _ => (out.clone(), "the same JSON text"),
        };
        let text = std::str::from_utf8(&payload).context("the response is not UTF-8")?;
        let png = crate::backup::qr_png(text).with_context(|| {
            format!(
                "{} was written, but its {} bytes do not fit in one QR code; carry the file instead",
                a.out.display(),
                payload.len()
            )
        })?;
        request::write_file(qr, &png, "QR code")?;
        println!(
            "Wrote the response as a QR code to {} (its payload is {said}).",
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
        let (mut a, mut b) = (t.signed.clone(), cur_targets.signed.clone());
        for x in [&mut a, &mut b] {
            x.version = 0;
            x.expires = cur_targets.signed.expires;
        }
        if a != b {
            bail!(
                "the staged production targets change more than the version and the expiry \
                 (spec_version or other fields of \"signed\"); a root update changes nothing else"
            );
        }
        if t.signed.expires.is_expired_at(now) {
            bail!(
                "the staged production targets expired on {}",
                t.signed.expires
            );
        }
        check_targets_validity("staged production targets", &t.signed.expires, now)?;
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
    check_targets_validity("proposed production targets", &new.expires, now)?;
    if new.delegations != cur.delegations {
        bail!("the proposed production targets change the delegations");
    }
    // Only the version, the expiry and the target list may differ from the current targets;
    // anything else would be signed without being shown.
    let (mut a, mut b) = (new.clone(), cur.clone());
    for t in [&mut a, &mut b] {
        t.version = 0;
        t.expires = cur.expires;
        t.targets.clear();
    }
    if a != b {
        bail!(
            "the proposed production targets change more than the version, the expiry and the \
             target list (spec_version or other fields of \"signed\"); a wave changes nothing else"
        );
    }
    // A wave adds or updates targets; dropping one is not what `waves init` proposes.
    if let Some(path) = cur.targets.keys().find(|p| !new.targets.contains_key(*p)) {
        bail!("the proposed production targets drop target {path:?}; a wave never removes targets");
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
        if waves::build_version(ci_t) != Some(w.version.as_str()) {
            bail!(
                "target {path:?} is not of version {:?} in the CI targets (custom.version is \
                 {:?}): the wave is for version {:?} only",
                w.version,
                waves::build_version(ci_t).unwrap_or("missing"),
                w.version
            );
        }
        // The whole entry, custom fields (hardware IDs, ...) included, is the CI entry.
        if *t != waves::production_entry(ci_t, &w.tag) {
            bail!(
                "target {path:?} does not match the CI targets entry of the same path (length, \
                 hashes or custom fields such as hardware IDs differ, beyond the tag {:?}): it \
                 is not the build CI signed",
                w.tag
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
pub fn trusted_chains(
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
        // Thresholds count distinct keys: two IDs naming one key count once.
        let distinct = n
            .role_keys(role)
            .values()
            .filter_map(|k| k.material().ok())
            .collect::<BTreeSet<_>>()
            .len();
        if rk.threshold.get() as usize > distinct {
            bail!(
                "the staged {label}: {role} threshold {} is more than its {distinct} distinct \
                 usable key(s) (some key IDs name the same key or no valid key), so it could \
                 never be met",
                rk.threshold.get()
            );
        }
    }
    // A new key under a second ID of a key the root already lists would show as one more
    // holder in the review while adding none.
    for (id, key) in &n.keys {
        if cur.keys.contains_key(id) {
            continue;
        }
        let Ok(material) = key.material() else {
            continue;
        };
        let twin = n
            .keys
            .iter()
            .find(|(other, k)| *other != id && k.material().ok().as_ref() == Some(&material));
        if let Some((other, _)) = twin {
            bail!(
                "the staged {label} adds key {id}, which is the same key as {other} under \
                 another ID: it would count as one more key holder while it is the same one"
            );
        }
    }
    let unshown = unshown_changes(n, cur);
    if !unshown.is_empty() {
        bail!(
            "the staged {label} changes {}, which the review does not show (a root update \
             changes only keys, roles' keys and thresholds, expiry, changelog and key owners)",
            unshown.join(", ")
        );
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

/// What differs between `new` and `cur` outside what the review shows (version, expiry,
/// keys added or removed, roles' key IDs and thresholds, changelog, key owners).
fn unshown_changes(new: &Root, cur: &Root) -> Vec<String> {
    let mut out = Vec::new();
    if new.type_ != cur.type_ {
        out.push("_type".to_owned());
    }
    if new.spec_version != cur.spec_version {
        out.push(format!(
            "spec_version ({:?} -> {:?})",
            cur.spec_version, new.spec_version
        ));
    }
    if new.consistent_snapshot != cur.consistent_snapshot {
        out.push(format!(
            "consistent_snapshot ({:?} -> {:?})",
            cur.consistent_snapshot, new.consistent_snapshot
        ));
    }
    for (name, rk) in &new.roles {
        if cur.roles.get(name).map(|o| &o.extra) != Some(&rk.extra) {
            out.push(format!("other fields of roles.{name}"));
        }
    }
    let fields: BTreeSet<&String> = new.extra.keys().chain(cur.extra.keys()).collect();
    for f in fields {
        if matches!(f.as_str(), "x-changelog" | "x-key-owners") {
            continue;
        }
        if new.extra.get(f) != cur.extra.get(f) {
            out.push(format!("field {f:?}"));
        }
    }
    for (id, key) in &new.keys {
        if cur.keys.get(id).is_some_and(|old| old != key) {
            out.push(format!("key {id}"));
        }
    }
    if let Some(o) = new.extra.get("x-key-owners") {
        let names_owners = o
            .as_object()
            .is_some_and(|m| m.values().all(Value::is_string));
        if !names_owners {
            out.push("x-key-owners (not an object of owner names)".to_owned());
        }
    }
    out
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
        shown(&r.factory),
        current.ci.signed.version,
        current.prod.signed.version
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
    let adds_keys = Role::ALL.iter().any(|role| {
        r.ci_root
            .signed
            .role(*role)
            .keyids
            .iter()
            .any(|id| !current.ci.signed.role(*role).keyids.contains(id))
    });
    if adds_keys {
        // Owners are labels written by whoever added a key, not something verified here.
        out.push_str(
            "Owners are labels recorded by whoever added the key: before signing, confirm each \
             added key ID with the person who holds that key.\n",
        );
    }
    out
}

fn review_wave(w: &WaveRequest) -> String {
    let (cur, new) = (&w.current_targets.signed, &w.targets.signed);
    let mut out = format!(
        "Factory {}: wave {} (version {}, tag {}), verified against the CI targets signed by \
         the online key.\nproduction targets: version {} -> {}, expires {} -> {}\n",
        shown(&w.factory),
        shown(&w.wave),
        shown(&w.version),
        shown(&w.tag),
        cur.version,
        new.version,
        cur.expires,
        new.expires
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
        out.push_str(&format!("  {verb} {}  length {}\n", shown(path), t.length));
        for (alg, h) in &t.hashes {
            out.push_str(&format!("      {} {}\n", shown(alg), shown(h)));
        }
        // Custom fields decide which devices install the target (hardware IDs): shown whole.
        if let Some(c) = &t.custom {
            out.push_str(&format!("      custom {}\n", shown(&json_text(c))));
        }
    }
    let kept = new
        .targets
        .iter()
        .filter(|(p, t)| cur.targets.get(*p) == Some(*t))
        .count();
    out.push_str(&format!("  ({kept} target(s) unchanged)\n"));
    out
}

/// Canonical JSON text of `v`, for the review.
fn json_text(v: &Value) -> String {
    canonical::to_text(v)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_else(|| v.to_string())
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

/// Production targets may not be valid for longer than this (tufd refuses the same): an
/// expiry decades away would keep a signed release alive long after anyone meant it to.
/// `waves init --expires-days` goes up to 3650 days.
const MAX_TARGETS_VALIDITY: i64 = 3660 * 24 * 3600;

fn check_targets_validity(label: &str, expires: &Expires, now: OffsetDateTime) -> Result<()> {
    if expires.unix().saturating_sub(now.unix_timestamp()) > MAX_TARGETS_VALIDITY {
        bail!("the {label} expire {expires}, more than 10 years away");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tuf_core::{Expires, KeyType, PrivateKey, RoleKeys, Signer, TargetFile, Threshold};

    use super::*;

    fn key() -> PrivateKey {
        PrivateKey::generate(KeyType::Ed25519).unwrap()
    }

    fn days(n: i64) -> Expires {
        Expires::after(OffsetDateTime::now_utc(), n * 86_400).unwrap()
    }

    /// Version 1 of a root: `r` signs for root, `t` for targets, `o` for the online roles.
    fn root_v1(r: &PrivateKey, t: &PrivateKey, o: &PrivateKey) -> Signed<Root> {
        let mut keys = BTreeMap::new();
        let mut roles = BTreeMap::new();
        for (role, k) in [
            (Role::Root, r),
            (Role::Targets, t),
            (Role::Snapshot, o),
            (Role::Timestamp, o),
        ] {
            keys.insert(k.key_id().clone(), k.public_key().clone());
            roles.insert(
                role,
                RoleKeys::new(vec![k.key_id().clone()], Threshold::new(1).unwrap()),
            );
        }
        let mut env = Signed::new(Root::new(1, days(365), keys, roles)).unwrap();
        env.sign(r).unwrap();
        env
    }

    fn ci_target(version: &str, byte: u8) -> TargetFile {
        TargetFile {
            length: 100 + u64::from(byte),
            hashes: [("sha256".to_owned(), hex::encode([byte; 32]))].into(),
            custom: Some(json!({"version": version, "hardware_ids": ["board-a"]})),
            extra: BTreeMap::new(),
        }
    }

    struct Wave {
        anchor: Signed<Root>,
        targets_key: PrivateKey,
        request: WaveRequest,
    }

    /// A wave releasing `app-2.bin` (version 2) next to the `app-1.bin` devices have.
    fn wave() -> Wave {
        let (r, t, o) = (key(), key(), key());
        let anchor = root_v1(&r, &t, &o);
        let mut ci = Targets::new(9, days(30));
        ci.targets.insert("app-1.bin".into(), ci_target("1", 1));
        ci.targets.insert("app-2.bin".into(), ci_target("2", 2));
        let mut current = Targets::new(3, days(30));
        current.targets.insert(
            "app-1.bin".into(),
            waves::production_entry(&ci.targets["app-1.bin"], "production"),
        );
        let mut next = current.clone();
        next.version = 4;
        next.expires = days(60);
        next.targets.insert(
            "app-2.bin".into(),
            waves::production_entry(&ci.targets["app-2.bin"], "production"),
        );
        let mut ci_targets = Signed::new(ci).unwrap();
        ci_targets.sign(&t).unwrap();
        let mut current_targets = Signed::new(current).unwrap();
        current_targets.sign(&t).unwrap();
        let request = WaveRequest {
            factory: "acme".into(),
            wave: "w2".into(),
            version: "2".into(),
            tag: "production".into(),
            ci_chain: vec![anchor.clone()],
            prod_chain: vec![anchor.clone()],
            ci_targets,
            current_targets,
            targets: Signed::new(next).unwrap(),
        };
        Wave {
            anchor,
            targets_key: t,
            request,
        }
    }

    fn wave_refusal(w: &Wave) -> String {
        match check_wave(&w.request, &w.anchor, "acme", OffsetDateTime::now_utc()) {
            Ok(_) => panic!("the wave request was accepted"),
            Err(e) => format!("{e:#}"),
        }
    }

    /// Edits the proposed targets of `w` (re-encoding them, as an attacker would).
    fn edit_proposed(w: &mut Wave, edit: impl FnOnce(&mut Targets)) {
        let mut t = w.request.targets.signed.clone();
        edit(&mut t);
        w.request.targets = Signed::new(t).unwrap();
    }

    #[test]
    fn an_honest_wave_request_verifies_and_its_review_shows_custom_fields() {
        let w = wave();
        let prod = check_wave(&w.request, &w.anchor, "acme", OffsetDateTime::now_utc()).unwrap();
        assert_eq!(prod.signed.version, 1);
        let review = review_wave(&w.request);
        assert!(review.contains("+ app-2.bin  length 102"), "{review}");
        assert!(
            review.contains("\"hardware_ids\":[\"board-a\"]"),
            "{review}"
        );
        assert!(review.contains("(1 target(s) unchanged)"), "{review}");
        assert!(w.targets_key.key_id().as_str().len() == 64);
    }

    #[test]
    fn the_wave_review_escapes_what_could_rewrite_it() {
        let mut w = wave();
        edit_proposed(&mut w, |t| {
            let e = t.targets.get_mut("app-2.bin").unwrap();
            e.custom.as_mut().unwrap()["hardware_ids"] = json!(["board-a\u{202e}b-draob"]);
        });
        let review = review_wave(&w.request);
        assert!(review.contains("board-a\\u{202e}b-draob"), "{review}");
        assert!(!review.contains('\u{202e}'), "{review}");
    }

    #[test]
    fn a_wave_target_with_other_hardware_ids_than_ci_signed_is_refused() {
        let mut w = wave();
        edit_proposed(&mut w, |t| {
            let e = t.targets.get_mut("app-2.bin").unwrap();
            e.custom.as_mut().unwrap()["hardware_ids"] = json!(["board-a", "board-b"]);
        });
        let e = wave_refusal(&w);
        assert!(e.contains("custom fields such as hardware IDs"), "{e}");
    }

    #[test]
    fn a_wave_valid_for_more_than_ten_years_is_refused() {
        let mut w = wave();
        edit_proposed(&mut w, |t| t.expires = days(3661));
        let e = wave_refusal(&w);
        assert!(e.contains("more than 10 years away"), "{e}");
        let mut w = wave();
        edit_proposed(&mut w, |t| t.expires = days(3650));
        check_wave(&w.request, &w.anchor, "acme", OffsetDateTime::now_utc()).unwrap();
    }

    #[test]
    fn a_wave_that_drops_a_target_is_refused() {
        let mut w = wave();
        edit_proposed(&mut w, |t| {
            t.targets.remove("app-1.bin");
        });
        let e = wave_refusal(&w);
        assert!(e.contains("drop target \"app-1.bin\""), "{e}");
    }

    #[test]
    fn a_wave_with_fields_the_review_does_not_show_is_refused() {
        let mut w = wave();
        edit_proposed(&mut w, |t| {
            t.extra.insert("x-anything".into(), json!("hidden"));
        });
        assert!(wave_refusal(&w).contains("change more than the version"));
        let mut w = wave();
        edit_proposed(&mut w, |t| t.spec_version = "1.0.0".into());
        assert!(wave_refusal(&w).contains("change more than the version"));
    }

    #[test]
    fn a_wave_target_of_another_build_version_is_refused() {
        let mut w = wave();
        edit_proposed(&mut w, |t| {
            let e = t.targets.get_mut("app-1.bin").unwrap();
            e.custom.as_mut().unwrap()["tags"] = json!(["production", "beta"]);
        });
        let e = wave_refusal(&w);
        assert!(e.contains("is not of version \"2\""), "{e}");
    }

    struct RootUpdate {
        anchor: Signed<Root>,
        root_key: PrivateKey,
        request: RootUpdateRequest,
    }

    /// A renewal of root version 1, with staged production targets, edited by `edit`.
    fn root_update(edit: impl Fn(&mut Root)) -> RootUpdate {
        let (r, t, o) = (key(), key(), key());
        let anchor = root_v1(&r, &t, &o);
        let mut next = anchor.signed.clone();
        next.version = 2;
        next.expires = days(300);
        next.extra
            .insert("x-changelog".into(), json!({"message": "renew"}));
        edit(&mut next);
        let staged = Signed::new(next).unwrap();
        let mut current = Targets::new(3, days(30));
        current
            .targets
            .insert("app-1.bin".into(), ci_target("1", 1));
        let mut staged_targets = current.clone();
        staged_targets.version = 4;
        staged_targets.expires = days(60);
        let mut current_prod_targets = Signed::new(current).unwrap();
        current_prod_targets.sign(&t).unwrap();
        let request = RootUpdateRequest {
            factory: "acme".into(),
            txid: "tx".into(),
            message: "renew".into(),
            ci_chain: vec![anchor.clone()],
            prod_chain: vec![anchor.clone()],
            ci_root: staged.clone(),
            prod_root: staged,
            prod_targets: Some(Signed::new(staged_targets).unwrap()),
            current_prod_targets,
        };
        RootUpdate {
            anchor,
            root_key: r,
            request,
        }
    }

    fn root_refusal(u: &RootUpdate) -> String {
        match check_root_update(&u.request, &u.anchor, "acme", OffsetDateTime::now_utc()) {
            Ok(_) => panic!("the root-update request was accepted"),
            Err(e) => format!("{e:#}"),
        }
    }

    /// The root key of `u` spelled another way (upper-case hex): another key ID, same key.
    fn alias(u: &RootUpdate) -> (KeyId, tuf_core::PublicKey) {
        let mut k = u.root_key.public_key().clone();
        k.keyval.public = k.keyval.public.to_ascii_uppercase();
        (k.key_id(), k)
    }

    #[test]
    fn an_honest_renewal_verifies() {
        let u = root_update(|_| {});
        check_root_update(&u.request, &u.anchor, "acme", OffsetDateTime::now_utc()).unwrap();
    }

    #[test]
    fn a_root_threshold_met_only_by_one_key_under_two_ids_is_refused() {
        let u = root_update(|_| {});
        let (id, k) = alias(&u);
        let u = root_update_with_alias(u, id, k, 2);
        let e = root_refusal(&u);
        assert!(e.contains("distinct usable key(s)"), "{e}");
    }

    #[test]
    fn a_second_id_for_a_listed_key_is_refused() {
        let u = root_update(|_| {});
        let (id, k) = alias(&u);
        let u = root_update_with_alias(u, id, k, 1);
        let e = root_refusal(&u);
        assert!(e.contains("the same key as"), "{e}");
    }

    /// `u` with its root key also listed under the alias `id`, root threshold `threshold`.
    fn root_update_with_alias(
        mut u: RootUpdate,
        id: KeyId,
        k: tuf_core::PublicKey,
        threshold: u64,
    ) -> RootUpdate {
        let mut r = u.request.ci_root.signed.clone();
        r.keys.insert(id.clone(), k);
        let role = r.role_mut(Role::Root).unwrap();
        role.keyids.push(id);
        role.threshold = Threshold::new(threshold).unwrap();
        u.request.ci_root = Signed::new(r).unwrap();
        u.request.prod_root = u.request.ci_root.clone();
        u
    }

    #[test]
    fn root_changes_the_review_does_not_show_are_refused() {
        type Edit = fn(&mut Root);
        let edits: [(&str, Edit); 4] = [
            ("consistent_snapshot", |r| {
                r.consistent_snapshot = Some(false)
            }),
            ("spec_version", |r| r.spec_version = "1.0.0".into()),
            ("field \"x-mirror\"", |r| {
                r.extra.insert("x-mirror".into(), json!("https://evil"));
            }),
            ("other fields of roles.targets", |r| {
                let t = r.role_mut(Role::Targets).unwrap();
                t.extra.insert("x-note".into(), json!(1));
            }),
        ];
        for (what, edit) in edits {
            let u = root_update(edit);
            let e = root_refusal(&u);
            assert!(
                e.contains(what) && e.contains("which the review does not show"),
                "{what}: {e}"
            );
        }
    }

    #[test]
    fn staged_production_targets_with_other_fields_are_refused() {
        let mut u = root_update(|_| {});
        let mut t = u.request.prod_targets.take().unwrap().signed;
        t.extra.insert("x-anything".into(), json!(true));
        u.request.prod_targets = Some(Signed::new(t).unwrap());
        let e = root_refusal(&u);
        assert!(
            e.contains("change more than the version and the expiry"),
            "{e}"
        );
    }

    #[test]
    fn the_review_says_owners_of_added_keys_are_unverified_labels() {
        let new_key = key();
        let mut u = root_update(|_| {});
        let mut next = u.request.ci_root.signed.clone();
        let id = new_key.key_id().clone();
        next.keys.insert(id.clone(), new_key.public_key().clone());
        next.role_mut(Role::Root).unwrap().keyids.push(id.clone());
        updates::set_owner(&mut next, &id, "alice@laptop");
        u.request.ci_root = Signed::new(next).unwrap();
        u.request.prod_root = u.request.ci_root.clone();
        let current =
            check_root_update(&u.request, &u.anchor, "acme", OffsetDateTime::now_utc()).unwrap();
        let review = review_root_update(&u.request, &current);
        assert!(review.contains(&format!("root: + key {id} (ed25519, owner alice@laptop)")));
        assert!(review.contains("confirm each added key ID"), "{review}");
    }

    #[test]
    fn the_review_shows_relabelled_owners_and_escapes_control_characters() {
        let u = root_update(|_| {});
        let id = u.root_key.key_id().clone();
        let mut next = u.request.ci_root.signed.clone();
        updates::set_owner(&mut next, &id, "mallory\n  root: - key 00");
        let mut r = u.request;
        r.ci_root = Signed::new(next).unwrap();
        r.prod_root = r.ci_root.clone();
        r.message = "renew\u{1b}[2K".into();
        let current = Current {
            ci: u.anchor.clone(),
            prod: u.anchor.clone(),
        };
        let review = review_root_update(&r, &current);
        assert!(
            review.contains(&format!("key {id}: owner unknown -> mallory\\u{{a}}  root")),
            "{review}"
        );
        assert!(review.contains("message: renew\\u{1b}[2K"), "{review}");
        assert!(!review.contains('\u{1b}'), "{review}");
    }
}
