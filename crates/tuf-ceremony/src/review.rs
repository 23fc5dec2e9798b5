//! The text a key holder reads before signing: what a transaction or a wave changes, with
//! everything user-written escaped so it cannot fake or hide review lines.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde_json::Value;
use tuf_core::{canonical, KeyId, Role, Root};

use crate::format::{RootUpdateRequest, WaveRequest};
use crate::keyring::as_tx;
use crate::server_keys::owner_of;
use crate::tx::{short, KeyOrigin, Roots, Tx};
use crate::wave::Retire;

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

/// Canonical JSON text of `v`, for the review.
pub fn json_text(v: &Value) -> String {
    canonical::to_text(v)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_else(|| v.to_string())
}

/// A readable diff of the staged roots against the current ones.
pub fn transaction(tx: &Tx, current: &Roots) -> String {
    let mut out = String::new();
    line(&mut out, format!("Root-update transaction {}", tx.txid));
    line(&mut out, format!("  message: {}", shown(&tx.message)));
    if let Some(c) = tx.ci_root.signed.extra.get("x-changelog") {
        line(&mut out, format!("  changelog: {}", shown(&c.to_string())));
    }
    for (which, env, cur) in [
        ("CI root", &tx.ci_root, &current.ci.signed),
        ("production root", &tx.prod_root, &current.prod.signed),
    ] {
        let new = &env.signed;
        line(
            &mut out,
            format!(
                "{which}: version {} -> {}, expires {} -> {}",
                cur.version, new.version, cur.expires, new.expires
            ),
        );
        roles(&mut out, cur, new);
        owners(&mut out, cur, new);
        for (whose, root) in [("current", cur), ("new", new)] {
            let v = env.verify_role("root", root.role(Role::Root), &root.keys);
            let missing = if v.missing.is_empty() {
                String::new()
            } else {
                let ids: Vec<String> = v.missing.iter().map(short).collect();
                format!("; not signed by {}", ids.join(", "))
            };
            let invalid = if v.invalid.is_empty() {
                String::new()
            } else {
                format!("; {} invalid", v.invalid.len())
            };
            line(
                &mut out,
                format!(
                    "  signatures by the {whose} root keys: {} of {} needed{missing}{invalid}",
                    v.distinct_valid, v.threshold
                ),
            );
        }
    }
    if let Some(t) = &tx.prod_targets {
        let r = &tx.prod_root.signed;
        let v = t.verify_role("targets", r.role(Role::Targets), &r.keys);
        line(
            &mut out,
            format!(
                "production targets version {}: {} signature(s) of {} needed (the server adds \
                 its online signature at apply)",
                t.signed.version, v.distinct_valid, v.threshold
            ),
        );
    }
    if !tx.errors.is_empty() {
        line(&mut out, "server checks not passing yet:".to_owned());
        for e in &tx.errors {
            line(&mut out, format!("  - {e}"));
        }
    }
    for w in &tx.warnings {
        line(&mut out, format!("warning: {w}"));
    }
    out
}

/// Keys added and removed, and thresholds changed, role by role.
fn roles(out: &mut String, cur: &Root, new: &Root) {
    for role in Role::ALL {
        let (a, b) = (cur.role(role), new.role(role));
        let before: BTreeSet<&KeyId> = a.keyids.iter().collect();
        let after: BTreeSet<&KeyId> = b.keyids.iter().collect();
        if a.threshold != b.threshold {
            line(
                out,
                format!(
                    "  {role}: threshold {} -> {}",
                    a.threshold.get(),
                    b.threshold.get()
                ),
            );
        }
        for id in after.difference(&before) {
            let key = new.keys.get(*id);
            let origin = key
                .and_then(KeyOrigin::described)
                .map(|o| format!(" {o}"))
                .unwrap_or_default();
            line(
                out,
                format!(
                    "  {role}: + key {id} ({}{origin}, owner {})",
                    shown(key.map_or("?", |k| k.kind())),
                    shown(&owner_of(new, id).unwrap_or_else(|| "unknown".into()))
                ),
            );
        }
        for id in before.difference(&after) {
            line(
                out,
                format!(
                    "  {role}: - key {id} (owner {})",
                    shown(&owner_of(cur, id).unwrap_or_else(|| "unknown".into()))
                ),
            );
        }
    }
}

/// Owners are what people recognise keys by: a relabelled key is a change to see.
fn owners(out: &mut String, cur: &Root, new: &Root) {
    for id in new.keys.keys().filter(|id| cur.keys.contains_key(*id)) {
        let (a, b) = (owner_of(cur, id), owner_of(new, id));
        if a != b {
            line(
                out,
                format!(
                    "  key {id}: owner {} -> {}",
                    shown(&a.unwrap_or_else(|| "unknown".into())),
                    shown(&b.unwrap_or_else(|| "unknown".into()))
                ),
            );
        }
    }
}

/// The review of a checked root-update request.
pub fn root_update(r: &RootUpdateRequest, current: &Roots) -> String {
    let mut out = format!(
        "Factory {}: verified the request from the root in the credentials file to CI root \
         version {} and production root version {}.\n",
        shown(&r.factory),
        current.ci.signed.version,
        current.prod.signed.version
    );
    out.push_str(&transaction(&as_tx(r), current));
    if let Some(t) = &r.prod_targets {
        line(
            &mut out,
            format!(
                "production targets: version {} -> {}, expires {}, {} target(s), unchanged list",
                r.current_prod_targets.signed.version,
                t.signed.version,
                t.signed.expires,
                t.signed.targets.len()
            ),
        );
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
        line(
            &mut out,
            "Owners are labels recorded by whoever added the key: before signing, confirm each \
             added key ID with the person who holds that key."
                .to_owned(),
        );
    }
    out
}

/// The review of a checked wave request: every new or changed target, whole.
pub fn wave(w: &WaveRequest) -> String {
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
    let mut kept = 0;
    for (path, t) in &new.targets {
        if cur.targets.get(path) == Some(t) {
            kept += 1;
            continue;
        }
        let verb = if cur.targets.contains_key(path) {
            "~"
        } else {
            "+"
        };
        line(
            &mut out,
            format!("  {verb} {}  length {}", shown(path), t.length),
        );
        for (alg, h) in &t.hashes {
            line(&mut out, format!("      {} {}", shown(alg), shown(h)));
        }
        // Custom fields decide which devices install the target (hardware IDs): shown whole.
        if let Some(c) = &t.custom {
            line(&mut out, format!("      custom {}", shown(&json_text(c))));
        }
    }
    retirements(&mut out, w);
    line(&mut out, format!("  ({kept} target(s) unchanged)"));
    out
}

/// What leaves production: each retirement rule and the targets it takes out (the first
/// [`SHOWN_RETIRED`] of each; a version may have thousands).
fn retirements(out: &mut String, w: &WaveRequest) {
    let cur = &w.current_targets.signed;
    let rules = w
        .retire
        .versions
        .iter()
        .map(|v| {
            (
                format!("version {}", shown(v)),
                Retire {
                    versions: vec![v.clone()],
                    ..Retire::default()
                },
            )
        })
        .chain(w.retire.targets.iter().map(|t| {
            (
                format!("target {}", shown(t)),
                Retire {
                    targets: vec![t.clone()],
                    ..Retire::default()
                },
            )
        }));
    for (what, rule) in rules {
        let leaving = rule.leaving(cur);
        line(
            out,
            format!(
                "  retire {what}: {} target(s) leave production",
                leaving.len()
            ),
        );
        for path in leaving.iter().take(SHOWN_RETIRED) {
            line(out, format!("  - {}", shown(path)));
        }
        if leaving.len() > SHOWN_RETIRED {
            line(
                out,
                format!("    ... and {} more", leaving.len() - SHOWN_RETIRED),
            );
        }
    }
}

/// How many retired targets of one rule the review lists by name.
const SHOWN_RETIRED: usize = 20;

fn line(out: &mut String, s: String) {
    let _ = writeln!(out, "{s}");
}
