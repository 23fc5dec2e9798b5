//! Waves: production releases signed with the offline targets key.

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use tuf_core::{Expires, Role, Root, Signed, TargetFile, Targets};

use crate::client::Api;
use crate::creds::CredsFile;
use crate::request;
use crate::settings::Settings;
use crate::updates;

pub fn init(
    s: &Settings,
    creds: &Path,
    wave: &str,
    version: &str,
    tag: &str,
    expires_days: u32,
) -> Result<()> {
    let file = CredsFile::open(s, creds)?;
    let cfg = file.creds.config().clone();
    let api = s.api_with_token(Some(&cfg), "the Factory owner's")?;
    let repo = s.repo_path(Some(&cfg))?;
    let factory = s.factory(Some(&cfg))?;
    let proposal = propose(&api, &repo, version, tag, expires_days)?;
    // The offline key signs the current production targets again (carried over) and the CI
    // entries: both must verify under roots checked from the one this file trusts.
    let roots = request::verified_roots(&api, &repo, &file)?;
    for (what, targets, root) in [
        ("CI", &proposal.ci, &roots.ci.signed),
        ("production", &proposal.prod, &roots.prod.signed),
    ] {
        let v = targets.verify_role("targets", root.role(Role::Targets), &root.keys);
        if !v.is_met() {
            bail!(
                "the {what} targets.json the server returned does not verify under the {what} \
                 root ({} of {} signatures); nothing was signed, check the server",
                v.distinct_valid,
                v.threshold
            );
        }
    }
    let signers = updates::role_signers(&file, &roots.prod.signed, Role::Targets)?;
    if signers.is_empty() {
        bail!(
            "{} holds no offline targets key of the production root; use the file from \
             `tufctl keys copy-targets` (or run `tufctl keys rotate-targets` first)",
            creds.display()
        );
    }
    let added = proposal.added;
    let mut env = Signed::new(proposal.next)?;
    for k in &signers {
        env.sign(k.as_ref())?;
    }
    let body = json!({
        "name": wave, "version": version, "tag": tag,
        "targets": serde_json::from_slice::<Value>(&env.to_bytes())?,
    });
    let answer = api
        .post_json(&format!("/ota/factories/{factory}/waves"), &body)
        .with_context(|| format!("creating wave {wave:?}"))?;
    if s.json() {
        println!("{answer}");
    } else {
        println!(
            "Wave {wave} created: {added} target(s) of version {version} tagged {tag}, production \
             targets version {}. Publish it with `tufctl waves complete {wave}`.",
            env.signed.version
        );
    }
    Ok(())
}

/// A wave's proposed production targets and what they were built from.
pub struct Proposal {
    /// CI targets.json as served.
    pub ci: Signed<Targets>,
    /// The current production targets as served.
    pub prod: Signed<Targets>,
    pub prod_root: Signed<Root>,
    /// The current production targets with the CI targets of `version` merged in (tagged),
    /// version + 1, new expiry; unsigned.
    pub next: Targets,
    /// How many CI targets were merged in.
    pub added: usize,
}

/// Builds the production targets of a wave from the server's CI and production targets.
pub fn propose(
    api: &Api,
    repo: &str,
    version: &str,
    tag: &str,
    expires_days: u32,
) -> Result<Proposal> {
    let ci: Signed<Targets> = Signed::from_slice(&api.get(&format!("{repo}/targets.json"))?)
        .context("the CI targets.json is not valid")?;
    let prod: Signed<Targets> =
        Signed::from_slice(&api.get(&format!("{repo}/targets.json?production=1"))?)
            .context("the production targets.json is not valid")?;
    let prod_root: Signed<Root> =
        Signed::from_slice(&api.get(&format!("{repo}/root.json?production=1"))?)
            .context("the production root.json is not valid")?;
    let mut next = prod.signed.clone();
    let mut added = 0;
    for (path, target) in &ci.signed.targets {
        if build_version(target) != Some(version) {
            continue;
        }
        next.targets
            .insert(path.clone(), production_entry(target, tag));
        added += 1;
    }
    if added == 0 {
        bail!("no CI target has version {version:?}; add it first with `tufctl targets add`");
    }
    next.version = prod
        .signed
        .version
        .checked_add(1)
        .ok_or_else(|| anyhow!("production targets version overflow"))?;
    let now = time::OffsetDateTime::now_utc();
    next.expires = Expires::after(now, i64::from(expires_days) * 86_400)?;
    Ok(Proposal {
        ci,
        prod,
        prod_root,
        next,
        added,
    })
}

/// The build version a CI target belongs to (`custom.version`).
pub fn build_version(target: &TargetFile) -> Option<&str> {
    target
        .custom
        .as_ref()
        .and_then(|c| c.get("version"))
        .and_then(Value::as_str)
}

/// The production entry of a CI target released with `tag`: the CI entry exactly, with
/// `custom.tags` set to `[tag]`. `tufctl sign` holds a wave request to this.
pub fn production_entry(ci: &TargetFile, tag: &str) -> TargetFile {
    let mut t = ci.clone();
    let mut custom = t.custom.take().unwrap_or_else(|| json!({}));
    if let Some(o) = custom.as_object_mut() {
        o.insert("tags".to_owned(), json!([tag]));
    }
    t.custom = Some(custom);
    t
}

pub fn action(s: &Settings, wave: &str, what: &str) -> Result<()> {
    let api = s.api_with_token(None, "the Factory owner's")?;
    let factory = s.factory(None)?;
    let answer = api
        .post_json(
            &format!("/ota/factories/{factory}/waves/{wave}/{what}"),
            &json!({}),
        )
        .with_context(|| format!("{what} wave {wave:?}"))?;
    if s.json() {
        println!("{answer}");
    } else if what == "complete" {
        println!(
            "Wave {wave} completed: production targets version {} are now what production \
             devices install.",
            answer["targets_version"]
        );
    } else {
        println!("Wave {wave}: {what} done.");
    }
    Ok(())
}

pub fn list(s: &Settings) -> Result<()> {
    let api = s.api_with_token(None, "the Factory owner's")?;
    let factory = s.factory(None)?;
    let v = api.get_json(&format!("/ota/factories/{factory}/waves"))?;
    if s.json() {
        println!("{v}");
        return Ok(());
    }
    let Some(waves) = v.as_array() else {
        println!("{v}");
        return Ok(());
    };
    if waves.is_empty() {
        println!("No waves.");
    }
    for w in waves {
        println!(
            "{:<20} {:<12} {:<10} {:<10} targets v{} {}",
            w["name"].as_str().unwrap_or("?"),
            w["version"].as_str().unwrap_or("?"),
            w["tag"].as_str().unwrap_or("?"),
            w["status"].as_str().unwrap_or("?"),
            w["targets_version"],
            w["created_at"].as_str().unwrap_or("")
        );
    }
    Ok(())
}
