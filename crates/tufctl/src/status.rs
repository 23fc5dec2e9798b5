//! `keys status`: which keys in the file are active, inactive or missing.

use std::path::Path;

use anyhow::Result;
use serde_json::json;
use time::OffsetDateTime;
use tuf_core::{Expires, KeyId, Role, Root, Signed, Targets};
use tuf_credentials::PrivatePart;

use tuf_ceremony::review::shown;
use tuf_ceremony::server_keys::owner_of;

use crate::creds::CredsFile;
use crate::server::Factory;
use crate::settings::Settings;

/// What `keys status` watches: metadata only offline key holders can renew, expiring within
/// `within` days; with `check`, that is the exit code (4, `outcome::Expiring`).
#[derive(Clone, Copy, Debug)]
pub struct Expiry {
    pub check: bool,
    pub within: u32,
}

/// Metadata that expires within the window: what it is, and the warning people read.
struct Warning {
    what: String,
    text: String,
}

/// A warning when `expires` is less than `window` away from `now` (or past).
fn expiry_warning(what: &str, expires: &Expires, now: Window, renew: &str) -> Option<Warning> {
    let left = expires.unix() - now.at.unix_timestamp();
    if left >= i64::from(now.days) * 86_400 {
        return None;
    }
    let when = if left <= 0 {
        format!("EXPIRED on {expires}")
    } else {
        format!(
            "will expire on {expires} (in {} day(s))",
            left.div_euclid(86_400)
        )
    };
    Some(Warning {
        what: what.to_owned(),
        text: format!("{what} {when}; {renew}"),
    })
}

/// Warnings for metadata the server cannot renew by itself: the roots (signed by the root
/// keys) and the production targets (signed by the offline targets key).
fn expiry_warnings(
    ci: &Signed<Root>,
    prod: Option<&Signed<Root>>,
    prod_targets: Option<&Signed<Targets>>,
    now: Window,
) -> Vec<Warning> {
    const ROOT: &str =
        "only the root key holders can renew it: `tufctl keys resign-root CREDS.tgz` (add \
         `--export REQUEST.json` to sign on an offline machine)";
    let mut out = Vec::new();
    out.extend(expiry_warning(
        &format!("the CI root (version {})", ci.signed.version),
        &ci.signed.expires,
        now,
        ROOT,
    ));
    if let Some(p) = prod {
        out.extend(expiry_warning(
            &format!("the production root (version {})", p.signed.version),
            &p.signed.expires,
            now,
            ROOT,
        ));
        // Without an offline targets key the server signs production targets alone and
        // renews them itself.
        let offline_targets = p.signed.role(Role::Targets).threshold.get() > 1;
        if let (Some(t), true) = (prod_targets, offline_targets) {
            out.extend(expiry_warning(
                &format!("the production targets (version {})", t.signed.version),
                &t.signed.expires,
                now,
                "production devices stop updating then; only the offline targets key holder \
                 can renew them: `tufctl waves resign -k TARGETS-ONLY.tgz WAVE`, or publish a \
                 new Wave",
            ));
        }
    }
    out
}

/// The time of the check and the warning window in days.
#[derive(Clone, Copy, Debug)]
struct Window {
    at: OffsetDateTime,
    days: u32,
}

pub fn status(s: &Settings, path: &Path, expiry: Expiry) -> Result<()> {
    let file = CredsFile::open(s, path)?;
    let c = compared(s, &file, path)?;
    let rows = key_rows(&file, &c)?;
    let holds = Holdings::of(&rows);
    let missing = missing_keys(&file, &c.ci)?;
    let holders = root_holders(&c.ci.signed, &file.creds)?;
    let now = Window {
        at: OffsetDateTime::now_utc(),
        days: expiry.within,
    };
    let warnings = expiry_warnings(&c.ci, c.prod.as_ref(), c.prod_targets.as_ref(), now);
    if s.json() {
        let expiry_of =
            |r: &Signed<Root>| json!({"version": r.signed.version, "expires": r.signed.expires});
        crate::output::json(&json!({
            "file": path, "compared_with": c.source, "keys": rows, "missing": missing,
            "ci_root": expiry_of(&c.ci), "prod_root": c.prod.as_ref().map(expiry_of),
            "prod_targets": c.prod_targets.as_ref().map(
                |t| json!({"version": t.signed.version, "expires": t.signed.expires})),
            "holds_active_root_key": holds.active_root,
            "targets_only": holds.targets_only(),
            "root_role": holders.to_json(),
            "warnings": warnings.iter().map(|w| &w.text).collect::<Vec<_>>(),
            "within_days": expiry.within,
        }));
    } else {
        print_versions(path, &c);
        print_rows(&rows, c.prod.is_some());
        out!("{}", holders.describe());
        print_missing(&missing);
    }
    for w in &warnings {
        errln!("warning: {}", w.text);
    }
    say_root_key(s, &holds);
    if expiry.check && !warnings.is_empty() {
        return Err(crate::outcome::Expiring {
            within_days: expiry.within,
            items: warnings.into_iter().map(|w| w.what).collect(),
        }
        .into());
    }
    Ok(())
}

/// Which signing keys the file holds: an active root key, and active offline targets keys.
struct Holdings {
    active_root: bool,
    any_root: bool,
    active_targets: bool,
}

impl Holdings {
    fn of(rows: &[serde_json::Value]) -> Self {
        let has = |r: &serde_json::Value, field: &str, role: &str| {
            r[field]
                .as_array()
                .is_some_and(|a| a.contains(&json!(role)))
        };
        let signing = || rows.iter().filter(|r| r["private"] == json!(true));
        Self {
            active_root: signing().any(|r| has(r, "ci_roles", "root")),
            // A key named for the root role that no root lists any more (rotated away).
            any_root: signing().any(|r| {
                has(r, "ci_roles", "root") || r["name"].as_str().is_some_and(|n| n.contains("root"))
            }),
            active_targets: signing().any(|r| has(r, "prod_roles", "targets")),
        }
    }

    /// A copy made for release engineers (`keys copy-targets`): offline targets keys and
    /// no root key, by design.
    fn targets_only(&self) -> bool {
        self.active_targets && !self.any_root
    }
}

/// The root key: a warning when the file should hold it and does not; for a targets-only
/// copy, a note that this is as intended.
fn say_root_key(s: &Settings, holds: &Holdings) {
    if holds.targets_only() {
        if !s.json() {
            outln!(
                "This is a targets-only file: it holds the offline targets key(s) and, as \
                 intended, no root key. Keep it as safe as the keys it signs production \
                 releases with."
            );
        }
        return;
    }
    if !holds.active_root {
        errln!(
            "warning: this file holds no active root key. Whoever holds it must keep it safe: a \
             lost root key cannot be recovered."
        );
    }
    if !s.json() {
        outln!(
            "A lost offline targets key is replaced with `tufctl keys rotate-targets` and the \
             root key (see docs/COMPROMISE.md). A lost ROOT key cannot be recovered or \
             replaced: without it (or a threshold of root keys) the Factory's root can never \
             change again. That is what the backups are for: keep a copy of this file, \
             `tufctl keys export-root` and `tufctl keys backup` shares in separate safe places."
        );
    }
}

/// What the file is compared with: the server's roots and production targets, or (server
/// unreachable) the file's own stored root.
struct Compared {
    ci: Signed<Root>,
    prod: Option<Signed<Root>>,
    prod_targets: Option<Signed<Targets>>,
    source: String,
}

fn compared(s: &Settings, file: &CredsFile, path: &Path) -> Result<Compared> {
    let cfg = file.creds.config().clone();
    let mut prod_targets: Option<Signed<Targets>> = None;
    let fetched = Factory::reader(s, Some(&cfg)).and_then(|f| {
        let roots = f.roots()?;
        // Best effort: a token that may read roots may read targets too.
        prod_targets = f.targets(true).ok();
        Ok(roots)
    });
    match fetched {
        Ok(r) => Ok(Compared {
            ci: r.ci,
            prod: Some(r.prod),
            prod_targets,
            source: "the server".to_owned(),
        }),
        Err(e) => {
            let Some(r) = file.stored_root()? else {
                return Err(e.context(format!(
                    "the server is unreachable and {} has no roles/root.json to compare with",
                    path.display()
                )));
            };
            let e = crate::outcome::paragraph(&e);
            errln!("note: server unreachable ({e:#}); using roles/root.json from the file");
            Ok(Compared {
                ci: r,
                prod: None,
                prod_targets: None,
                source: "roles/root.json in the file (may be stale)".to_owned(),
            })
        }
    }
}

/// One row per key of the file: where its private part is, and what the roots use it for.
fn key_rows(file: &CredsFile, c: &Compared) -> Result<Vec<serde_json::Value>> {
    let roles_of = |root: &Root, public: &tuf_core::PublicKey| -> Vec<&'static str> {
        Role::ALL
            .into_iter()
            .filter(|r| {
                root.role_keys(*r)
                    .values()
                    .any(|p| tuf_credentials::same_key(p, public))
            })
            .map(Role::as_str)
            .collect()
    };
    let mut rows = Vec::new();
    for k in file.creds.keys()? {
        let ci_roles = roles_of(&c.ci.signed, &k.public);
        let prod_roles = c.prod.as_ref().map(|p| roles_of(&p.signed, &k.public));
        let (location, token) = match &k.private {
            PrivatePart::File => ("file", None),
            PrivatePart::Token { label, serial } => {
                // Reachability needs no PIN: the token and the key's public half are looked up.
                let reachable = file
                    .token_ref(&k.name)
                    .and_then(|r| Ok(tuf_pkcs11::probe(&file.tokens.localise(&r)?)?));
                let t = json!({
                    "label": label, "serial": serial, "reachable": reachable.is_ok(),
                    "problem": reachable.err().map(|e| format!("{e:#}")),
                });
                ("token", Some(t))
            }
            _ => ("none", None),
        };
        rows.push(json!({
            "name": k.name,
            "keyid": k.key_id(),
            "type": k.public.kind(),
            "private": k.can_sign(),
            "location": location,
            "token": token,
            "ci_roles": ci_roles,
            "prod_roles": prod_roles,
            "active": !ci_roles.is_empty(),
        }));
    }
    Ok(rows)
}

/// Active offline keys (root, and targets keys not owned by the server) missing from the file.
fn missing_keys(file: &CredsFile, ci: &Signed<Root>) -> Result<Vec<serde_json::Value>> {
    let mut missing = Vec::new();
    let online = crate::creds::online_targets_keys(&ci.signed, &file.creds)?;
    for role in [Role::Root, Role::Targets] {
        for (id, pk) in ci.signed.role_keys(role) {
            if role == Role::Targets && online.contains(&id) {
                continue;
            }
            let held = file.creds.find_key(&pk)?.is_some_and(|k| k.can_sign());
            if !held {
                missing.push(json!({"role": role.as_str(), "keyid": id,
                    "owner": owner_of(&ci.signed, &id)}));
            }
        }
    }
    Ok(missing)
}

fn print_versions(path: &Path, c: &Compared) {
    outln!("{} (compared with {})", path.display(), c.source);
    outln!(
        "  CI root version {}, expires {}",
        c.ci.signed.version,
        c.ci.signed.expires
    );
    if let Some(p) = &c.prod {
        outln!(
            "  production root version {}, expires {}",
            p.signed.version,
            p.signed.expires
        );
    }
    if let Some(t) = &c.prod_targets {
        outln!(
            "  production targets version {}, expires {}",
            t.signed.version,
            t.signed.expires
        );
    }
}

fn print_rows(rows: &[serde_json::Value], with_prod: bool) {
    let roles = |v: &serde_json::Value| {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "-".to_owned())
    };
    outln!("Keys in the file:");
    for r in rows {
        outln!(
            "  {:<8} {} {:<8} {:<8} CI:{:<8} prod:{:<8} {}",
            if r["active"].as_bool() == Some(true) {
                "ACTIVE"
            } else {
                "inactive"
            },
            r["keyid"].as_str().unwrap_or("?"),
            r["type"].as_str().unwrap_or("?"),
            match r["location"].as_str() {
                Some("file") => "private",
                Some("token") => "token",
                _ => "public",
            },
            roles(&r["ci_roles"]),
            if with_prod {
                roles(&r["prod_roles"])
            } else {
                "?".to_owned()
            },
            r["name"].as_str().unwrap_or("?"),
        );
        if let Some(t) = r["token"].as_object() {
            let reach = match t.get("problem").and_then(|p| p.as_str()) {
                None => "reachable now".to_owned(),
                Some(p) => format!("NOT reachable now: {p}"),
            };
            outln!(
                "           on token {} (serial {}), {reach}",
                t.get("label").and_then(|v| v.as_str()).unwrap_or("?"),
                t.get("serial").and_then(|v| v.as_str()).unwrap_or("?"),
            );
        }
    }
}

fn print_missing(missing: &[serde_json::Value]) {
    if missing.is_empty() {
        outln!("Every active offline key is in the file.");
        return;
    }
    outln!("Active offline keys NOT in this file:");
    for m in missing {
        outln!(
            "  {} key {} (owner {})",
            m["role"].as_str().unwrap_or("?"),
            m["keyid"].as_str().unwrap_or("?"),
            m["owner"].as_str().unwrap_or("unknown")
        );
    }
}

/// The root role's key holders, and which of them this file can sign for.
struct Holders {
    version: u64,
    threshold: u32,
    /// (key ID, owner, private key in this file)
    keys: Vec<(KeyId, Option<String>, bool)>,
}

impl Holders {
    fn in_file(&self) -> usize {
        self.keys.iter().filter(|k| k.2).count()
    }

    /// Signatures still needed from other holders' files for a root change (the current
    /// root's threshold; the new root's threshold applies as well).
    fn needed_from_others(&self) -> usize {
        (self.threshold as usize).saturating_sub(self.in_file())
    }

    fn to_json(&self) -> serde_json::Value {
        json!({
            "version": self.version,
            "threshold": self.threshold,
            "keys": self.keys.iter().map(|(id, owner, held)| {
                json!({"keyid": id, "owner": owner, "in_file": held})
            }).collect::<Vec<_>>(),
            "in_file": self.in_file(),
            "signatures_needed_from_others": self.needed_from_others(),
        })
    }

    fn describe(&self) -> String {
        let mut out = format!(
            "Root keys (root version {}): any {} of these {} sign a root change:\n",
            self.version,
            self.threshold,
            self.keys.len()
        );
        for (id, owner, held) in &self.keys {
            out.push_str(&format!(
                "  {:<15} {id} (owner {})\n",
                if *held {
                    "in this file"
                } else {
                    "NOT in this file"
                },
                shown(owner.as_deref().unwrap_or("unknown"))
            ));
        }
        let n = self.in_file();
        let others = self.needed_from_others();
        out.push_str(&if others == 0 {
            format!(
                "This file holds {n} of them: enough to sign a root change on its own (the new \
                 root's threshold must be met too).\n"
            )
        } else {
            format!(
                "This file holds {n} of them: a root change needs {others} more signature(s) \
                 from other holders (`tufctl keys tuf updates sign -k THEIR.tgz`), and a \
                 threshold of the new root's keys too.\n"
            )
        });
        out
    }
}

fn root_holders(root: &Root, creds: &tuf_credentials::Credentials) -> Result<Holders> {
    let mut keys = Vec::new();
    for id in &root.role(Role::Root).keyids {
        // A key on a hardware token signs as well as one in the file.
        let held = match root.keys.get(id) {
            Some(pk) => creds.find_key(pk)?.is_some_and(|k| k.can_sign()),
            None => false,
        };
        keys.push((id.clone(), owner_of(root, id), held));
    }
    Ok(Holders {
        version: root.version,
        threshold: root.role(Role::Root).threshold.get(),
        keys,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Expires {
        s.parse().unwrap()
    }

    /// A root holder whose key is on a hardware token holds it: the listing must say so.
    #[test]
    fn a_token_root_key_counts_as_held() {
        use std::collections::BTreeMap;
        use tuf_core::{KeyType, PrivateKey, RoleKeys, Signer, Threshold};

        let (file_key, token_key, other) = (
            PrivateKey::generate(KeyType::Ed25519).unwrap(),
            PrivateKey::generate(KeyType::Ed25519).unwrap(),
            PrivateKey::generate(KeyType::Ed25519).unwrap(),
        );
        let mut creds = tuf_credentials::Credentials::new(tuf_credentials::Config {
            api: "http://localhost".into(),
            factory: "acme".into(),
        });
        creds.add_key("file-root", &file_key).unwrap();
        let key_ref = tuf_pkcs11::KeyRef {
            module: "/usr/lib/softhsm/libsofthsm2.so".into(),
            token_label: "root".into(),
            token_serial: "1234".into(),
            id: "01".into(),
            label: "root".into(),
            keytype: "ed25519".into(),
            scheme: "ed25519".into(),
        };
        creds
            .add_token_key(
                "token-root",
                token_key.public_key(),
                &key_ref.to_json().unwrap(),
            )
            .unwrap();
        let keys: BTreeMap<_, _> = [&file_key, &token_key, &other]
            .map(|k| (k.key_id().clone(), k.public_key().clone()))
            .into();
        let ids: Vec<KeyId> = keys.keys().cloned().collect();
        let one = RoleKeys::new(vec![ids[0].clone()], Threshold::new(1).unwrap());
        let roles = BTreeMap::from([
            (Role::Root, RoleKeys::new(ids, Threshold::new(3).unwrap())),
            (Role::Targets, one.clone()),
            (Role::Snapshot, one.clone()),
            (Role::Timestamp, one),
        ]);
        let root = Root::new(2, at("2030-01-01T00:00:00Z"), keys, roles);
        let h = root_holders(&root, &creds).unwrap();
        assert_eq!((h.in_file(), h.needed_from_others()), (2, 1));
        let held_token = h
            .keys
            .iter()
            .find(|(id, _, _)| id == token_key.key_id())
            .unwrap();
        assert!(held_token.2, "{}", h.describe());
    }

    #[test]
    fn warns_only_inside_the_window() {
        let now = Window {
            at: time::macros::datetime!(2030-01-01 00:00 UTC),
            days: 30,
        };
        assert!(expiry_warning("x", &at("2030-03-01T00:00:00Z"), now, "r").is_none());
        // Exactly 30 days away: no warning yet; a second less: warning.
        assert!(expiry_warning("x", &at("2030-01-31T00:00:00Z"), now, "r").is_none());
        let w = expiry_warning("x", &at("2030-01-30T23:59:59Z"), now, "renew").unwrap();
        assert!(
            w.text.contains("in 29 day(s)") && w.text.ends_with("renew"),
            "{}",
            w.text
        );
        assert_eq!(w.what, "x");
        let w = expiry_warning("x", &at("2029-12-31T00:00:00Z"), now, "r").unwrap();
        assert!(w.text.contains("EXPIRED"), "{}", w.text);
        // A wider window catches what a narrower one does not.
        let wide = Window { days: 90, ..now };
        assert!(expiry_warning("x", &at("2030-03-01T00:00:00Z"), wide, "r").is_some());
    }

    #[test]
    fn a_targets_only_file_is_not_missing_its_root_key() {
        let row = |name: &str, ci: &[&str], prod: &[&str], private: bool| json!({"name": name, "private": private, "ci_roles": ci, "prod_roles": prod});
        let only = Holdings::of(&[row("tufctl-targets-ab", &["targets"], &["targets"], true)]);
        assert!(only.targets_only() && !only.active_root);
        let full = Holdings::of(&[
            row("tufctl-root-cd", &["root"], &["root"], true),
            row("tufctl-targets-ab", &["targets"], &["targets"], true),
        ]);
        assert!(!full.targets_only() && full.active_root);
        // Rotated away elsewhere: a root key the roots no longer list is still a root key.
        let stale = Holdings::of(&[
            row("tufctl-root-ef", &[], &[], true),
            row("tufctl-targets-ab", &["targets"], &["targets"], true),
        ]);
        assert!(!stale.targets_only() && !stale.active_root);
    }
}
