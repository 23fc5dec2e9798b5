//! A root-update transaction as the server describes it, and the edits key holders make to
//! its staged roots. Every edit rebuilds the staged envelopes, so signatures made over an
//! earlier edit fall away.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};
use tuf_core::{KeyId, PublicKey, Role, Root, Signed, Targets, Threshold};

use crate::format::env_value;
use crate::server_keys::{owner_of, HeldKey, SERVER_OWNER};
use crate::Error;

/// An open root-update transaction.
#[derive(Clone, Debug)]
pub struct Tx {
    /// The transaction's ID.
    pub txid: String,
    /// What it is for, as its opener wrote it.
    pub message: String,
    /// The staged CI root.
    pub ci_root: Signed<Root>,
    /// The staged production root.
    pub prod_root: Signed<Root>,
    /// Staged production targets, when the transaction publishes new ones.
    pub prod_targets: Option<Signed<Targets>>,
    /// Whether `prod_targets` is to be sent when staging.
    pub stage_prod_targets: bool,
    /// What the server reported from its checks, as `"<check>: <reason>"`.
    pub errors: Vec<String>,
    /// What the server reported as warnings (the transaction can still be applied).
    pub warnings: Vec<String>,
    /// The keys the server says it holds.
    pub server_keys: Vec<HeldKey>,
}

/// The roots a transaction changes: the Factory's current CI and production roots.
#[derive(Clone, Debug)]
pub struct Roots {
    /// The current CI root.
    pub ci: Signed<Root>,
    /// The current production root.
    pub prod: Signed<Root>,
}

impl Tx {
    /// Reads the transaction JSON of the API (`GET`/`PUT .../root/updates`).
    pub fn from_value(v: Value) -> Result<Self, Error> {
        let Value::Object(mut o) = v else {
            return Err(bad("is not a JSON object"));
        };
        let txid = o
            .get("txid")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("has no txid"))?
            .to_owned();
        let message = o
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let ci_root = Signed::from_value(take(&mut o, "ci_root")?)
            .map_err(|e| bad(&format!("has a ci_root that is not a valid root: {e}")))?;
        let prod_root = Signed::from_value(take(&mut o, "prod_root")?)
            .map_err(|e| bad(&format!("has a prod_root that is not a valid root: {e}")))?;
        let prod_targets: Option<Signed<Targets>> = match o.remove("prod_targets") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                Signed::from_value(v)
                    .map_err(|e| bad(&format!("has prod_targets that are not valid: {e}")))?,
            ),
        };
        let server_keys = match o.remove("server_keys") {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => serde_json::from_value(v)
                .map_err(|e| bad(&format!("has server_keys that do not parse: {e}")))?,
        };
        let stage_prod_targets = prod_targets
            .as_ref()
            .is_some_and(|t| !t.signatures.is_empty());
        Ok(Self {
            txid,
            message,
            ci_root,
            prod_root,
            prod_targets,
            stage_prod_targets,
            errors: strings(o.get("errors")),
            warnings: strings(o.get("warnings")),
            server_keys,
        })
    }

    /// The body of `PUT .../root/updates` that stages this transaction.
    pub fn stage_body(&self) -> Result<Value, Error> {
        let mut body = json!({
            "txid": self.txid,
            "ci_root": env_value(&self.ci_root)?,
            "prod_root": env_value(&self.prod_root)?,
        });
        if let (true, Some(t)) = (self.stage_prod_targets, &self.prod_targets) {
            body["prod_targets"] = env_value(t)?;
        }
        Ok(body)
    }

    /// Applies `edit` to both staged roots.
    pub fn edit_both(
        &mut self,
        mut edit: impl FnMut(&mut Root) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.ci_root = edit_root(&self.ci_root, &mut edit)?;
        self.prod_root = edit_root(&self.prod_root, &mut edit)?;
        Ok(())
    }

    /// Adds `public` to `role` of both staged roots, under its computed ID, with its owner.
    pub fn add_key(&mut self, role: Role, public: &PublicKey, owner: &str) -> Result<(), Error> {
        let id = public.key_id();
        self.edit_both(|r| {
            r.keys.insert(id.clone(), public.clone());
            let rk = r.role_mut(role)?;
            if !rk.keyids.contains(&id) {
                rk.keyids.push(id.clone());
            }
            set_owner(r, &id, owner);
            Ok(())
        })
    }

    /// Sets `role`'s threshold. The targets threshold is the production root's only: CI
    /// devices keep threshold 1 so the online key alone signs CI builds.
    pub fn set_threshold(&mut self, role: Role, threshold: Threshold) -> Result<(), Error> {
        let set = |r: &mut Root| -> Result<(), Error> {
            r.role_mut(role)?.threshold = threshold;
            Ok(())
        };
        if role == Role::Targets {
            self.prod_root = edit_root(&self.prod_root, set)?;
            return Ok(());
        }
        self.edit_both(set)
    }

    /// Removes the key whose ID starts with `prefix` (at least [`MIN_KEYID_PREFIX`] hex
    /// digits, unique among the staged roots' keys) from `role`, or from every role listing
    /// it, in both staged roots, and from `keys` and `x-key-owners` once no role lists it.
    /// The server's online keys are refused: `rotate-online` replaces them.
    pub fn remove_key(&mut self, prefix: &str, role: Option<Role>) -> Result<Removed, Error> {
        let id = self.resolve_key_id(prefix)?;
        let listing: Vec<Role> = Role::ALL
            .into_iter()
            .filter(|r| {
                self.roots()
                    .iter()
                    .any(|root| root.role(*r).keyids.contains(&id))
            })
            .collect();
        let roles: Vec<Role> = match role {
            Some(r) if !listing.contains(&r) => {
                return Err(Error::NotInRole {
                    id: id.to_string(),
                    role: r.to_string(),
                    listed: role_list(&listing),
                })
            }
            Some(r) => vec![r],
            None if listing.is_empty() => return Err(Error::InNoRole { id: id.to_string() }),
            None => listing,
        };
        let owner =
            owner_of(&self.ci_root.signed, &id).or_else(|| owner_of(&self.prod_root.signed, &id));
        // The server's online keys sign targets, snapshot and timestamp and are replaced with
        // rotate-online. A root key it holds is the bootstrap key, which taking the root
        // offline removes (tufd destroys it once no root lists it).
        let by_server = owner.as_deref() == Some(SERVER_OWNER);
        let online = roles.iter().any(|r| match r {
            Role::Snapshot | Role::Timestamp => true,
            Role::Targets => by_server,
            Role::Root => false,
        });
        if online {
            return Err(Error::OnlineKey {
                id: id.to_string(),
                roles: role_list(&roles),
            });
        }
        let mut dropped = false;
        self.edit_both(|r| {
            for role in &roles {
                r.role_mut(*role)?.keyids.retain(|k| *k != id);
            }
            if !Role::ALL
                .into_iter()
                .any(|role| r.role(role).keyids.contains(&id))
            {
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
        })?;
        Ok(Removed {
            id,
            owner,
            roles,
            dropped,
        })
    }

    fn roots(&self) -> [&Root; 2] {
        [&self.ci_root.signed, &self.prod_root.signed]
    }

    /// The one key ID of the staged roots that starts with `prefix`.
    fn resolve_key_id(&self, prefix: &str) -> Result<KeyId, Error> {
        let p = prefix.trim().to_ascii_lowercase();
        if p.len() < MIN_KEYID_PREFIX || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::KeyPrefix {
                prefix: prefix.to_owned(),
                min: MIN_KEYID_PREFIX,
            });
        }
        let found: BTreeSet<&KeyId> = self
            .roots()
            .into_iter()
            .flat_map(|r| r.keys.keys())
            .filter(|id| id.as_str().to_ascii_lowercase().starts_with(&p))
            .collect();
        let mut found = found.into_iter();
        match (found.next(), found.next()) {
            (None, _) => Err(Error::NoSuchKey { prefix: p }),
            (Some(id), None) => Ok(id.clone()),
            (Some(a), Some(b)) => {
                let mut ids = vec![a.to_string(), b.to_string()];
                ids.extend(found.map(ToString::to_string));
                Err(Error::AmbiguousKey { prefix: p, ids })
            }
        }
    }
}

/// What [`Tx::remove_key`] took out of the staged roots.
#[derive(Clone, Debug)]
pub struct Removed {
    /// The key's ID.
    pub id: KeyId,
    /// Its owner as recorded in `x-key-owners`, if any.
    pub owner: Option<String>,
    /// The roles that listed the key and no longer do.
    pub roles: Vec<Role>,
    /// Whether the key left `keys` too (no role lists it any more).
    pub dropped: bool,
}

/// Where an offline key's private part lives, recorded in the key's entry of `root.json`
/// (`x-key-origin`) when it is added, so people (the review, the web console) can see it. A
/// label written by whoever added the key, like an owner: it changes no key ID and no rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyOrigin {
    /// A private key in a credentials file.
    File,
    /// A key on a PKCS#11 hardware token, never extractable.
    Token,
}

impl KeyOrigin {
    /// The field of a key's entry in root.json that records its origin.
    pub const FIELD: &'static str = "x-key-origin";

    /// The value written into [`KeyOrigin::FIELD`] (`file` or `pkcs11`).
    pub fn as_str(self) -> &'static str {
        match self {
            KeyOrigin::File => "file",
            KeyOrigin::Token => "pkcs11",
        }
    }

    /// `key` with this origin recorded.
    pub fn label(self, key: &PublicKey) -> PublicKey {
        let mut k = key.clone();
        k.extra.insert(
            Self::FIELD.to_owned(),
            Value::String(self.as_str().to_owned()),
        );
        k
    }

    /// The origin `key`'s entry records, in words for a review.
    pub fn described(key: &PublicKey) -> Option<&'static str> {
        match key.extra.get(Self::FIELD).and_then(Value::as_str) {
            Some("file") => Some("in an offline file"),
            Some("pkcs11" | "hsm" | "hardware") => Some("on a hardware token"),
            _ => None,
        }
    }
}

/// Shortest key-ID prefix `remove-key` accepts: 32 bits leave no room for guessing wrong.
pub const MIN_KEYID_PREFIX: usize = 8;

/// Rebuilds an envelope after editing its `signed` part: old signatures no longer apply.
pub fn edit_root(
    env: &Signed<Root>,
    edit: impl FnOnce(&mut Root) -> Result<(), Error>,
) -> Result<Signed<Root>, Error> {
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

/// The key ID under which `root` lists `public` (matched by key, not by ID).
pub fn find_key<'a>(root: &'a Root, public: &PublicKey) -> Option<&'a KeyId> {
    root.keys
        .iter()
        .find(|(_, k)| k.identity() == public.identity())
        .map(|(id, _)| id)
}

/// The first 12 hex digits of a key ID, as people compare them.
pub fn short(id: &KeyId) -> String {
    id.as_str().chars().take(12).collect()
}

/// Role names joined for messages ("no role" for none).
pub fn role_list(roles: &[Role]) -> String {
    if roles.is_empty() {
        return "no role".to_owned();
    }
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The root signatures still missing before `apply` can succeed, for people: a threshold of
/// the current and of the new root's root keys on both roots.
pub fn missing_signatures(tx: &Tx, current: &Roots) -> Vec<String> {
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

fn bad(what: &str) -> Error {
    Error::Format(format!("the server's transaction {what}"))
}

fn take(o: &mut Map<String, Value>, key: &str) -> Result<Value, Error> {
    o.remove(key).ok_or_else(|| bad(&format!("has no {key}")))
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
