//! `waves ...`: production releases signed with the offline targets key. A wave's targets
//! are built by `tuf_ceremony::wave::propose` from what the server serves, checked with the
//! same rules the server and `tufctl sign` apply, and signed here or exported for an offline
//! machine.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde_json::json;
use time::OffsetDateTime;
use tuf_ceremony::format::signature_valid;
use tuf_ceremony::format::{env_value, Request, Response, WaveRequest, WaveResponse};
use tuf_ceremony::wave::{self, Retire, Wave};
use tuf_ceremony::{keyring, Roots};
use tuf_core::{Expires, Role, Signed, Targets};

use crate::catalogue::{self, Entry};
use crate::creds::CredsFile;
use crate::document;
use crate::server::Factory;
use crate::settings::Settings;

/// Which release a wave publishes.
pub struct Release<'a> {
    pub wave: &'a str,
    pub version: &'a str,
    pub tag: &'a str,
    pub expires_days: u32,
    /// The production targets the wave retires.
    pub retire: Retire,
}

/// A wave's proposed targets and the documents they were built from, as served.
struct Proposal {
    ci: Signed<Targets>,
    prod: Signed<Targets>,
    next: Targets,
    added: usize,
    retired: Vec<String>,
}

fn propose(f: &Factory, r: &Release) -> Result<Proposal> {
    let ci = f.targets(false)?;
    let prod = f.targets(true)?;
    let expires = Expires::after(
        OffsetDateTime::now_utc(),
        i64::from(r.expires_days) * 86_400,
    )?;
    let p = wave::propose(
        &ci.signed,
        &prod.signed,
        r.version,
        r.tag,
        expires,
        &r.retire,
    )?;
    Ok(Proposal {
        ci,
        prod,
        next: p.next,
        added: p.added,
        retired: p.retired,
    })
}

/// `waves init -k TARGETS-ONLY.tgz WAVE VERSION TAG`: proposes, checks from the roots the
/// file trusts, signs with its offline targets key(s) and creates the wave.
pub fn init(s: &Settings, creds: &Path, r: &Release) -> Result<()> {
    let mut file = CredsFile::open(s, creds)?;
    let f = Factory::of_file(s, &file)?;
    let p = propose(&f, r)?;
    let step = crate::progress::step(&format!(
        "checking {} production target(s)",
        p.next.targets.len()
    ));
    // The offline key signs the current production targets again (carried over) and the CI
    // entries: both must verify under roots checked from the one this file trusts.
    let roots = f.verified_roots(&mut file)?;
    check(&roots, &p, r).map_err(|e| {
        anyhow::anyhow!(e).context(
            "the targets the server returned do not make a valid wave; nothing was signed, \
             check the server",
        )
    })?;
    let signers = keyring::role_signers(&file, &roots.prod.signed, Role::Targets)?;
    if signers.is_empty() {
        bail!(
            "{} holds no offline targets key of the production root; use the file from \
             `tufctl keys copy-targets` (or run `tufctl keys rotate-targets` first)",
            creds.display()
        );
    }
    step.set_message("signing with the offline targets key");
    let mut env = Signed::new(p.next)?;
    for k in &signers {
        env.sign(k.as_ref())?;
    }
    step.set_message("creating the wave on the server");
    let answer = f.create_wave(r.wave, r.version, r.tag, &env, &r.retire)?;
    drop(step);
    if s.json() {
        outln!("{answer}");
    } else {
        outln!(
            "Wave {} created: {} target(s) of version {} tagged {}{}, production targets \
             version {}. Publish it with `tufctl waves complete {}`.",
            r.wave,
            p.added,
            r.version,
            r.tag,
            retiring(&p.retired),
            env.signed.version,
            r.wave
        );
    }
    Ok(())
}

/// ", retiring N target(s)" when the wave retires some.
fn retiring(retired: &[String]) -> String {
    if retired.is_empty() {
        String::new()
    } else {
        format!(", retiring {} production target(s)", retired.len())
    }
}

/// The wave rules over a proposal, against verified roots.
fn check(roots: &Roots, p: &Proposal, r: &Release) -> Result<(), tuf_ceremony::Refusal> {
    Wave {
        version: r.version,
        tag: r.tag,
        ci_root: &roots.ci.signed,
        prod_root: &roots.prod.signed,
        ci_targets: &p.ci,
        current: &p.prod,
        proposed: &p.next,
        retire: &r.retire,
        now: OffsetDateTime::now_utc(),
    }
    .check()
    .into_result()
}

/// `waves init [-k CREDS] WAVE VERSION TAG --export REQUEST.json`: no private key needed.
pub fn export(s: &Settings, creds: Option<&Path>, r: &Release, out: &Path) -> Result<()> {
    // A tarball, when given, only says where the server is.
    let cfg = match creds {
        Some(p) => Some(CredsFile::open(s, p)?.creds.config().clone()),
        None => None,
    };
    let f = Factory::owner(s, cfg.as_ref())?;
    let p = propose(&f, r)?;
    let roots = f.roots()?;
    let request = Request::Wave(Box::new(WaveRequest {
        factory: f.name.clone(),
        wave: r.wave.to_owned(),
        version: r.version.to_owned(),
        tag: r.tag.to_owned(),
        ci_chain: f.root_chain(1, roots.ci.signed.version, false)?,
        prod_chain: f.root_chain(1, roots.prod.signed.version, true)?,
        ci_targets: p.ci,
        current_targets: p.prod,
        targets: Signed::new(p.next)?,
        retire: r.retire.clone(),
    }));
    document::write_file(out, &request.to_bytes()?, "signing request")?;
    if s.json() {
        crate::output::json(&json!({
            "wave": r.wave, "version": r.version, "tag": r.tag, "targets": p.added,
            "retired": p.retired, "request": out,
        }));
        return Ok(());
    }
    outln!(
        "Wrote the signing request for wave {} ({} target(s) of version {} tagged {}{}) to {}. \
         Sign it offline with `tufctl sign {} -k TARGETS-ONLY.tgz --out RESPONSE.json`, then \
         create the wave with `tufctl waves import RESPONSE.json`.",
        r.wave,
        p.added,
        r.version,
        r.tag,
        retiring(&p.retired),
        out.display(),
        out.display()
    );
    Ok(())
}

/// `waves import RESPONSE.json [--request REQUEST.json]`: checks the offline signatures
/// against the current production root, then creates the wave. A response from a QR code
/// names the targets by hash only; `--request` supplies them.
pub fn import(s: &Settings, arg: &str, request: Option<&Path>) -> Result<()> {
    let w = read_wave_response(arg, request)?;
    let f = Factory::owner(s, None)?;
    if w.factory != f.name {
        bail!(
            "the response is for Factory {:?}, not {:?}; nothing was changed",
            w.factory,
            f.name
        );
    }
    let keys = f.roots()?.prod.signed.role_keys(Role::Targets);
    if w.targets.signatures.is_empty() {
        bail!("the response carries no signature; nothing was changed");
    }
    if let Some(sig) = w
        .targets
        .signatures
        .iter()
        .find(|sig| !signature_valid(&w.targets, sig, &keys))
    {
        bail!(
            "the signature of key {} on the wave's targets does not verify with the current \
             production root's targets keys; nothing was changed",
            sig.keyid
        );
    }
    let answer = f.create_wave(&w.wave, &w.version, &w.tag, &w.targets, &w.retire)?;
    if s.json() {
        outln!("{answer}");
    } else {
        outln!(
            "Wave {} created from the signed response: production targets version {}. Publish \
             it with `tufctl waves complete {}`.",
            w.wave,
            w.targets.signed.version,
            w.wave
        );
    }
    Ok(())
}

fn read_wave_response(arg: &str, request: Option<&Path>) -> Result<WaveResponse> {
    match document::read_response(arg)? {
        Response::Wave(w) => Ok(*w),
        Response::WaveSignatures(sigs) => {
            let Some(path) = request else {
                bail!(
                    "{arg} carries the wave's signatures without its targets (the QR form): \
                     pass the request it answers with --request REQUEST.json"
                );
            };
            let Request::Wave(req) = document::read_request(path)? else {
                bail!("{} is not a wave request", path.display());
            };
            Ok(sigs.join(&req)?)
        }
        Response::RootUpdate(_) => bail!(
            "{arg} is the response to a root update; import it with `tufctl keys tuf updates import`"
        ),
    }
}

/// `waves resign -k TARGETS-ONLY.tgz WAVE [--expires-days N]`: the production targets again
/// with version + 1 and a new expiry. Only targets that verify under the production root
/// (verified from the file's trusted root) are renewed: the offline key re-signs what it
/// signed before, never a list the server changed since.
pub fn resign(s: &Settings, creds: &Path, wave: &str, expires_days: u32) -> Result<()> {
    let mut file = CredsFile::open(s, creds)?;
    let f = Factory::of_file(s, &file)?;
    let prod = f.targets(true)?;
    let prod_root = f.verified_roots(&mut file)?.prod;
    let signers = keyring::role_signers(&file, &prod_root.signed, Role::Targets)?;
    if signers.is_empty() {
        bail!(
            "{} holds no offline targets key of the production root; use the file from \
             `tufctl keys copy-targets`",
            creds.display()
        );
    }
    let now = OffsetDateTime::now_utc();
    let expires = Expires::after(now, i64::from(expires_days) * 86_400)?;
    let step = crate::progress::step(&format!(
        "renewing {} production target(s)",
        prod.signed.targets.len()
    ));
    let mut env = Signed::new(renewal(&prod, &prod_root.signed, expires)?)?;
    wave::renewal(&env, &prod.signed, now).into_result()?;
    for k in &signers {
        env.sign(k.as_ref())?;
    }
    step.set_message("sending the renewal to the server");
    let answer = f
        .api
        .post_json(
            &format!("/ota/factories/{}/waves/{wave}/resign", f.name),
            &json!({"targets": env_value(&env)?}),
        )
        .with_context(|| format!("re-signing the production targets of wave {wave:?}"))?;
    drop(step);
    if s.json() {
        outln!("{answer}");
    } else {
        outln!(
            "Renewed the production targets of wave {wave}: version {}, expires {}.",
            env.signed.version,
            env.signed.expires
        );
    }
    Ok(())
}

/// The renewal of the production targets `prod`: version + 1 and `expires`, nothing else,
/// when they verify under the production root.
fn renewal(
    prod: &Signed<Targets>,
    prod_root: &tuf_core::Root,
    expires: Expires,
) -> Result<Targets> {
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
        .ok_or_else(|| anyhow::anyhow!("production targets version overflow"))?;
    next.expires = expires;
    Ok(next)
}

pub fn action(s: &Settings, wave: &str, what: &str) -> Result<()> {
    let f = Factory::owner(s, None)?;
    let answer = f
        .api
        .post_json(
            &format!("/ota/factories/{}/waves/{wave}/{what}", f.name),
            &json!({}),
        )
        .with_context(|| {
            let doing = if what == "complete" {
                "completing"
            } else {
                "cancelling"
            };
            format!("{doing} wave {wave:?}")
        })?;
    if s.json() {
        outln!("{answer}");
    } else if what == "complete" {
        outln!(
            "Wave {wave} completed: production targets version {} are now what production \
             devices install.",
            answer["targets_version"]
        );
    } else {
        outln!("Wave {wave} cancelled; the production targets are unchanged.");
    }
    Ok(())
}

pub fn list(s: &Settings) -> Result<()> {
    let f = Factory::owner(s, None)?;
    let v = f
        .api
        .get_json(&format!("/ota/factories/{}/waves", f.name))?;
    if s.json() {
        outln!("{v}");
        return Ok(());
    }
    let Some(waves) = v.as_array() else {
        outln!("{v}");
        return Ok(());
    };
    if waves.is_empty() {
        outln!("No waves.");
        return Ok(());
    }
    outln!(
        "{:<20} {:<12} {:<10} {:<10} {:<10} CREATED",
        "WAVE",
        "VERSION",
        "TAG",
        "STATUS",
        "TARGETS"
    );
    for w in waves {
        outln!(
            "{:<20} {:<12} {:<10} {:<10} {:<10} {}",
            w["name"].as_str().unwrap_or("?"),
            w["version"].as_str().unwrap_or("?"),
            w["tag"].as_str().unwrap_or("?"),
            w["status"].as_str().unwrap_or("?"),
            format!("v{}", w["targets_version"]),
            w["created_at"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

/// `waves show WAVE [--hardware-id H] [--tag T]`: the wave and its production targets, those
/// it adds or changes marked.
pub fn show(s: &Settings, wave: &str, hardware_id: Option<&str>, tag: Option<&str>) -> Result<()> {
    let f = Factory::owner(s, None)?;
    let mut query = Vec::new();
    for (k, v) in [("hardware_id", hardware_id), ("tag", tag)] {
        if let Some(v) = v {
            query.push(format!("{k}={}", percent(v)));
        }
    }
    let q = if query.is_empty() {
        String::new()
    } else {
        format!("?{}", query.join("&"))
    };
    let v = f
        .api
        .get_json(&format!("/ota/factories/{}/waves/{wave}{q}", f.name))
        .with_context(|| format!("reading wave {wave:?}"))?;
    if s.json() {
        crate::output::json(&v);
        return Ok(());
    }
    let text = |k: &str| v[k].as_str().unwrap_or("?").to_owned();
    outln!(
        "Wave {} ({}): version {} tagged {}",
        text("name"),
        text("status"),
        text("version"),
        text("tag")
    );
    outln!(
        "  production targets version {}, expires {}; created {}",
        v["targets_version"],
        text("expires"),
        text("created_at")
    );
    let targets: Vec<Entry> = v["targets"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(p, t)| {
                    serde_json::from_value(t.clone())
                        .ok()
                        .map(|t| Entry::new(p, &t))
                })
                .collect()
        })
        .unwrap_or_default();
    let new: Vec<&str> = v["new"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default();
    let filtered = hardware_id.is_some() || tag.is_some();
    if targets.is_empty() {
        outln!("No production target of this wave matches.");
        return Ok(());
    }
    let refs: Vec<&Entry> = targets.iter().collect();
    for line in catalogue::table(&refs).lines() {
        let path = line.split_whitespace().next().unwrap_or("");
        let mark = if new.contains(&path) { "+" } else { " " };
        outln!("{mark} {line}");
    }
    outln!(
        "{} target(s){} of {}; + marks the {} this wave adds or changes.",
        targets.len(),
        if filtered { " match" } else { "" },
        v["total"],
        new.len()
    );
    Ok(())
}

/// A query value, percent-encoded (labels are ASCII; anything else is encoded anyway).
fn percent(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use tuf_core::{KeyType, PrivateKey, RoleKeys, Signer, Threshold};

    use serde_json::json;
    use tuf_core::Root;

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
