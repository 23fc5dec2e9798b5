//! Waves: production releases. A wave's production targets are the current ones with the CI
//! targets of one build version merged in (tagged), the targets the wave retires taken out,
//! version + 1, a new expiry; the offline targets key signs them, the server adds its online
//! signature. The rules here are what both the server (when a wave is created) and `tufctl
//! sign` (before the offline key signs) check, with the same names.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::OffsetDateTime;
use tuf_core::{Expires, Role, Root, Signed, TargetFile, Targets};

use crate::check::{Check, Findings, Refusal};
use crate::limits;
use crate::root_update::version;
use crate::server_keys::{ServerKeys, View};

/// The production targets a wave retires: every target of a build version
/// (`custom.version`), and targets named by path. Production targets leave only this way, and
/// the offline signer sees each rule and what it takes out before signing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "BTreeMap<String, Vec<String>>")]
pub struct Retire {
    /// Build versions whose production targets leave.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<String>,
    /// Target paths (`NAME-VERSION`) that leave.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
}

/// Read from a JSON object only (a derived struct would also take an array, by position),
/// with no member but `versions` and `targets`.
impl TryFrom<BTreeMap<String, Vec<String>>> for Retire {
    type Error = String;

    fn try_from(mut m: BTreeMap<String, Vec<String>>) -> Result<Self, String> {
        let r = Retire {
            versions: m.remove("versions").unwrap_or_default(),
            targets: m.remove("targets").unwrap_or_default(),
        };
        match m.keys().next() {
            Some(k) => Err(format!(
                "unknown field {k:?} of retire, expected versions or targets"
            )),
            None => Ok(r),
        }
    }
}

impl Retire {
    /// Whether the wave retires nothing.
    pub fn is_empty(&self) -> bool {
        self.versions.is_empty() && self.targets.is_empty()
    }

    /// Whether the production target `path` is one this retires.
    pub fn covers(&self, path: &str, target: &TargetFile) -> bool {
        self.targets.iter().any(|p| p == path)
            || build_version(target).is_some_and(|v| self.versions.iter().any(|r| r == v))
    }

    /// The current production targets this retires, in path order.
    pub fn leaving<'a>(&self, current: &'a Targets) -> Vec<&'a str> {
        current
            .targets
            .iter()
            .filter(|(p, t)| self.covers(p, t))
            .map(|(p, _)| p.as_str())
            .collect()
    }

    /// `wave_keeps_targets`: every rule retires at least one current target (a mistyped
    /// version retires nothing, silently, otherwise), and none retires the build the wave
    /// publishes.
    fn check(&self, current: &Targets, version: &str) -> Result<(), Refusal> {
        if self.versions.iter().any(|v| v == version) {
            return Err(keeps(format!(
                "the wave publishes version {version:?} and retires it too"
            )));
        }
        for v in &self.versions {
            let hit = current
                .targets
                .values()
                .any(|t| build_version(t) == Some(v));
            if !hit {
                return Err(keeps(format!(
                    "no production target has version {v:?}: there is nothing to retire"
                )));
            }
        }
        if let Some(p) = self
            .targets
            .iter()
            .find(|p| !current.targets.contains_key(*p))
        {
            return Err(keeps(format!(
                "{p:?} is not a production target: there is nothing to retire"
            )));
        }
        Ok(())
    }
}

fn keeps(reason: String) -> Refusal {
    Refusal::new(Check::WaveKeepsTargets, reason)
}

/// A wave's proposed production targets, built from CI and production targets.
#[derive(Clone, Debug)]
pub struct Proposal {
    /// The current production targets with the CI targets of the version merged in and the
    /// retired ones taken out.
    pub next: Targets,
    /// How many CI targets were merged in.
    pub added: usize,
    /// The paths of the production targets retired.
    pub retired: Vec<String>,
}

/// Builds a wave's production targets: `prod` without the targets `retire` covers, with
/// every CI target of build `version` merged in as its production entry for `tag`, version
/// + 1, expiring `expires`.
pub fn propose(
    ci: &Targets,
    prod: &Targets,
    version: &str,
    tag: &str,
    expires: Expires,
    retire: &Retire,
) -> Result<Proposal, Refusal> {
    retire.check(prod, version)?;
    let retired: Vec<String> = retire
        .leaving(prod)
        .into_iter()
        .map(str::to_owned)
        .collect();
    let mut next = prod.clone();
    for path in &retired {
        next.targets.remove(path);
    }
    let mut added = 0;
    for (path, target) in &ci.targets {
        if build_version(target) != Some(version) {
            continue;
        }
        if retired.contains(path) {
            return Err(keeps(format!(
                "the wave publishes {path:?} and retires it too"
            )));
        }
        next.targets
            .insert(path.clone(), production_entry(target, tag));
        added += 1;
    }
    if added == 0 {
        return Err(Refusal::new(
            Check::WaveChangesTargets,
            format!("no CI target has version {version:?}; add it first with `tufctl targets add`"),
        ));
    }
    next.version = prod.version.checked_add(1).ok_or_else(|| {
        Refusal::new(
            Check::Version,
            "the production targets version cannot grow any more",
        )
    })?;
    next.expires = expires;
    Ok(Proposal {
        next,
        added,
        retired,
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
/// `custom.tags` set to `[tag]`.
pub fn production_entry(ci: &TargetFile, tag: &str) -> TargetFile {
    let mut t = ci.clone();
    let mut custom = t.custom.take().unwrap_or_else(|| json!({}));
    if let Some(o) = custom.as_object_mut() {
        o.insert("tags".to_owned(), json!([tag]));
    }
    t.custom = Some(custom);
    t
}

/// A wave as proposed: which build and tag, the proposed production targets, and the
/// documents they are checked against (trusted by the caller: the server's own heads, or
/// verified from the signer's trusted root).
pub struct Wave<'a> {
    /// The CI build version the wave publishes.
    pub version: &'a str,
    /// The tag it publishes the build under.
    pub tag: &'a str,
    /// The current CI root (whose online targets key signed `ci_targets`).
    pub ci_root: &'a Root,
    /// The current production root (whose targets keys must sign `proposed`).
    pub prod_root: &'a Root,
    /// The CI targets the wave's targets come from.
    pub ci_targets: &'a Signed<Targets>,
    /// The production targets devices install now.
    pub current: &'a Signed<Targets>,
    /// The proposed production targets.
    pub proposed: &'a Targets,
    /// What the wave says it retires: exactly these production targets may leave.
    pub retire: &'a Retire,
    /// The time expiry is checked against.
    pub now: OffsetDateTime,
}

impl Wave<'_> {
    /// Every rule of a wave's content, in the order a person would fix them.
    pub fn check(&self) -> Findings {
        let mut f = Findings::new();
        f.note(self.provenance());
        let (cur, new) = (&self.current.signed, self.proposed);
        f.note(version("targets", new.version, cur.version));
        f.note(limits::targets_expiry("targets", &new.expires, self.now));
        f.note(shown_changes(new, cur));
        f.note(
            self.retire
                .check(cur, self.version)
                .and_then(|()| keeps_targets(new, cur, self.retire)),
        );
        f.note(self.sources());
        f
    }

    /// `provenance`: the CI and current production targets verify under their roots, so
    /// what the proposal is compared with is what the online key (and production) signed.
    fn provenance(&self) -> Result<(), Refusal> {
        for (which, env, root) in [
            ("CI", self.ci_targets, self.ci_root),
            ("current production", self.current, self.prod_root),
        ] {
            let v = env.verify_role("targets", root.role(Role::Targets), &root.keys);
            if !v.is_met() {
                return Err(Refusal::new(
                    Check::Provenance,
                    format!(
                        "the {which} targets do not verify under the {which} root ({} of {} \
                         signatures)",
                        v.distinct_valid, v.threshold
                    ),
                ));
            }
        }
        Ok(())
    }

    /// `wave_source` and `wave_changes_targets`: every new or changed target is the entry CI
    /// signed for the wave's version, tagged; and there is at least one.
    fn sources(&self) -> Result<(), Refusal> {
        let (cur, ci) = (&self.current.signed, &self.ci_targets.signed);
        // A retirement changes what devices may install, as an addition does.
        let mut changed = self.retire.leaving(cur).len();
        for (path, t) in &self.proposed.targets {
            if cur.targets.get(path) == Some(t) {
                continue;
            }
            changed += 1;
            let Some(ci_t) = ci.targets.get(path) else {
                return Err(source(format!(
                    "target {path:?} is not in the CI targets signed by the online key"
                )));
            };
            if build_version(ci_t) != Some(self.version) {
                return Err(source(format!(
                    "target {path:?} is not of version {:?} in the CI targets (custom.version \
                     is {:?}): the wave is for version {:?} only",
                    self.version,
                    build_version(ci_t).unwrap_or("missing"),
                    self.version
                )));
            }
            // The whole entry, custom fields (hardware IDs, ...) included, is the CI entry.
            if *t != production_entry(ci_t, self.tag) {
                return Err(source(format!(
                    "target {path:?} does not match the CI targets entry of the same path \
                     (length, hashes or custom fields such as hardware IDs differ, beyond the \
                     tag {:?}): it is not the build CI signed",
                    self.tag
                )));
            }
        }
        if changed == 0 {
            return Err(Refusal::new(
                Check::WaveChangesTargets,
                "the proposed production targets add nothing to the current ones",
            ));
        }
        Ok(())
    }
}

fn source(reason: String) -> Refusal {
    Refusal::new(Check::WaveSource, reason)
}

/// `shown_changes` for targets: only the version, the expiry and the target list may differ
/// from the current targets; anything else would be signed without being shown.
pub fn shown_changes(new: &Targets, cur: &Targets) -> Result<(), Refusal> {
    if new.delegations != cur.delegations {
        return Err(Refusal::new(
            Check::ShownChanges,
            "the proposed production targets change the delegations",
        ));
    }
    // Field by field rather than on copies (the target lists may hold 100,000 entries); the
    // pattern names every field, so a field added to `Targets` must be decided on here.
    let Targets {
        type_,
        spec_version,
        version: _,
        expires: _,
        targets: _,
        delegations: _,
        extra,
    } = new;
    let same = (type_, spec_version, extra) == (&cur.type_, &cur.spec_version, &cur.extra);
    if !same {
        return Err(Refusal::new(
            Check::ShownChanges,
            "the proposed production targets change more than the version, the expiry and the \
             target list (spec_version or other fields of \"signed\"); a wave changes nothing \
             else",
        ));
    }
    Ok(())
}

/// `wave_keeps_targets`: a wave adds or updates targets and drops exactly the ones it says
/// it retires, never one more (silently) and never one fewer (a retirement the offline key
/// was shown must happen).
pub fn keeps_targets(new: &Targets, cur: &Targets, retire: &Retire) -> Result<(), Refusal> {
    for (path, t) in &cur.targets {
        match (retire.covers(path, t), new.targets.contains_key(path)) {
            (false, false) => {
                return Err(keeps(format!(
                    "the proposed production targets drop target {path:?}, which the wave does \
                     not retire; a wave removes only the targets it names"
                )))
            }
            (true, true) => {
                return Err(keeps(format!(
                    "the wave retires {path:?}, but the proposed production targets keep it"
                )))
            }
            _ => {}
        }
    }
    Ok(())
}

/// `unsigned`: a wave request carries no signatures (the offline signer adds them).
pub fn unsigned(proposed: &Signed<Targets>) -> Result<(), Refusal> {
    if !proposed.signatures.is_empty() {
        return Err(Refusal::new(
            Check::Unsigned,
            "the proposed production targets already carry signatures; a wave request is unsigned",
        ));
    }
    Ok(())
}

/// `signatures`: at least one valid signature of an offline targets key of the production
/// root. A key the server holds (for any role, under any ID) never counts as offline.
pub fn offline_signature(
    proposed: &Signed<Targets>,
    prod_root: &Root,
    server: &ServerKeys,
) -> Result<(), Refusal> {
    let v = proposed.verify_role("targets", prod_root.role(Role::Targets), &prod_root.keys);
    let offline = v
        .valid
        .iter()
        .filter(|id| {
            prod_root
                .keys
                .get(*id)
                .is_some_and(|k| !server.holds(k, View::Maybe))
        })
        .count();
    if offline == 0 {
        return Err(Refusal::new(
            Check::Signatures,
            "no valid signature of an offline targets key of the production root",
        ));
    }
    Ok(())
}

/// `unchanged`: a renewal of the production targets is the current ones with version + 1
/// and a later expiry, nothing else changed (compared as the exact canonical bytes).
pub fn renewal(new: &Signed<Targets>, cur: &Targets, now: OffsetDateTime) -> Findings {
    let mut f = Findings::new();
    let n = &new.signed;
    f.note(version("targets", n.version, cur.version));
    if n.expires <= cur.expires {
        f.fail(
            Check::Expires,
            format!(
                "the new expiry {} is not later than the current one {}",
                n.expires, cur.expires
            ),
        );
    }
    f.note(limits::targets_expiry("targets", &n.expires, now));
    let mut same = cur.clone();
    same.version = n.version;
    same.expires = n.expires;
    let same_bytes = Signed::new(same).map(|s| s.canonical() == new.canonical());
    if !matches!(same_bytes, Ok(true)) {
        f.fail(
            Check::Unchanged,
            "the proposal differs from the current production targets in more than version \
             and expires",
        );
    }
    f
}
