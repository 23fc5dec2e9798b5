//! `keys status`: which keys in the file are active, inactive or missing.

use std::path::Path;

use anyhow::Result;
use serde_json::json;
use tuf_core::{Role, Root, Signed};

use crate::creds::CredsFile;
use crate::settings::Settings;
use crate::updates;

pub fn status(s: &Settings, path: &Path) -> Result<()> {
    let file = CredsFile::open(s, path)?;
    let cfg = file.creds.config().clone();
    let fetched = s.api(Some(&cfg)).and_then(|api| {
        let repo = s.repo_path(Some(&cfg))?;
        updates::current_roots(&api, &repo)
    });
    let (ci, prod, source) = match fetched {
        Ok(c) => (c.ci, Some(c.prod), "the server".to_owned()),
        Err(e) => {
            let stored = file.stored_root()?;
            let Some(r) = stored else {
                return Err(e.context(format!(
                    "the server is unreachable and {} has no roles/root.json to compare with",
                    path.display()
                )));
            };
            eprintln!("note: server unreachable ({e:#}); using roles/root.json from the file");
            (
                r,
                None,
                "roles/root.json in the file (may be stale)".to_owned(),
            )
        }
    };
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
    let mut holds_active_root = false;
    for k in file.creds.keys()? {
        let ci_roles = roles_of(&ci.signed, &k.public);
        let prod_roles = prod.as_ref().map(|p| roles_of(&p.signed, &k.public));
        if ci_roles.contains(&"root") && k.has_private {
            holds_active_root = true;
        }
        rows.push(json!({
            "name": k.name,
            "keyid": k.key_id(),
            "type": k.public.kind(),
            "private": k.has_private,
            "ci_roles": ci_roles,
            "prod_roles": prod_roles,
            "active": !ci_roles.is_empty(),
        }));
    }
    // Active offline keys (root, and targets keys not owned by the server) missing from the file.
    let mut missing = Vec::new();
    let online = crate::rotation::online_targets_keys(&ci.signed, &file.creds)?;
    for role in [Role::Root, Role::Targets] {
        for (id, pk) in ci.signed.role_keys(role) {
            if role == Role::Targets && online.contains(&id) {
                continue;
            }
            if file.creds.find_signer(&pk)?.is_none() {
                missing.push(json!({"role": role.as_str(), "keyid": id,
                    "owner": updates::owner_of(&ci.signed, &id)}));
            }
        }
    }
    let expiry =
        |r: &Signed<Root>| json!({"version": r.signed.version, "expires": r.signed.expires});
    if s.json() {
        println!(
            "{}",
            json!({
                "file": path, "compared_with": source, "keys": rows, "missing": missing,
                "ci_root": expiry(&ci), "prod_root": prod.as_ref().map(expiry),
                "holds_active_root_key": holds_active_root,
            })
        );
    } else {
        println!("{} (compared with {source})", path.display());
        println!(
            "  CI root version {}, expires {}",
            ci.signed.version, ci.signed.expires
        );
        if let Some(p) = &prod {
            println!(
                "  production root version {}, expires {}",
                p.signed.version, p.signed.expires
            );
        }
        println!("Keys in the file:");
        for r in &rows {
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
            println!(
                "  {:<8} {} {:<8} {:<8} CI:{:<8} prod:{:<8} {}",
                if r["active"].as_bool() == Some(true) {
                    "ACTIVE"
                } else {
                    "inactive"
                },
                r["keyid"].as_str().unwrap_or("?"),
                r["type"].as_str().unwrap_or("?"),
                if r["private"].as_bool() == Some(true) {
                    "private"
                } else {
                    "public"
                },
                roles(&r["ci_roles"]),
                if prod.is_some() {
                    roles(&r["prod_roles"])
                } else {
                    "?".to_owned()
                },
                r["name"].as_str().unwrap_or("?"),
            );
        }
        if missing.is_empty() {
            println!("Every active offline key is in the file.");
        } else {
            println!("Active offline keys NOT in this file:");
            for m in &missing {
                println!(
                    "  {} key {} (owner {})",
                    m["role"].as_str().unwrap_or("?"),
                    m["keyid"].as_str().unwrap_or("?"),
                    m["owner"].as_str().unwrap_or("unknown")
                );
            }
        }
    }
    if !holds_active_root {
        eprintln!(
            "warning: this file holds no active root key. Whoever holds it must keep it safe: a \
             lost root key cannot be recovered."
        );
    }
    Ok(())
}
