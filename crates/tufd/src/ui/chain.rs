//! The root chain as a timeline: every root version, what changed from the one before (keys
//! added or removed, thresholds) and which keys signed it, newest first.

use std::collections::BTreeSet;

use maud::{html, Markup};
use serde_json::Value;
use tuf_core::{KeyId, PublicKey, Role, Root, Signed};

use super::keys::{key_inline, KeyBook, KeyView, Location};
use super::layout::when;
use super::store::RootVersion;

/// One change from the previous version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    KeyAdded { role: Role, key: KeyView },
    KeyRemoved { role: Role, key: KeyView },
    Threshold { role: Role, from: u32, to: u32 },
}

/// A key whose signature on a version verified, and as which root's key it counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signer {
    pub key: KeyView,
    /// A root key of the previous version (proof the holders of the old root agreed).
    pub previous: bool,
    /// A root key of this version.
    pub new: bool,
}

/// One version of the chain.
#[derive(Debug)]
pub struct Entry {
    pub version: i64,
    pub published: i64,
    pub expires: i64,
    /// `x-changelog`: who asked for this version and why (as written).
    pub author: Option<String>,
    pub message: Option<String>,
    pub changes: Vec<Change>,
    /// Changes of the production root that the CI root did not make (its targets threshold).
    pub prod_only: Vec<Change>,
    pub signers: Vec<Signer>,
    /// Signatures that count for neither root: invalid, or by keys of no root role.
    pub other_signatures: usize,
}

/// Builds the timeline from CI root versions and production root versions, both newest
/// first, each followed by the version before the oldest shown (when there is one), which
/// only serves as the base of a diff.
pub fn entries(
    ci: &[RootVersion],
    prod: &[RootVersion],
    held: &dyn Fn(&PublicKey) -> bool,
    shown: usize,
    current: &Root,
) -> Vec<Entry> {
    let mut out: Vec<Entry> = ci
        .iter()
        .take(shown)
        .enumerate()
        .map(|(i, v)| {
            let prev = ci.get(i + 1).map(|p| &p.root);
            let mut e = entry(v, prev, held);
            let prod_now = prod.iter().find(|p| p.version == v.version);
            let prod_prev = prod.iter().find(|p| p.version == v.version - 1);
            if let Some(p) = prod_now {
                let prev_signed = prod_prev.map(|x| &x.root.signed);
                e.prod_only = diff(prev_signed, &p.root.signed, held)
                    .into_iter()
                    .filter(|c| !e.changes.contains(c))
                    .collect();
            }
            e
        })
        .collect();
    for e in &mut out {
        let keys = e
            .changes
            .iter_mut()
            .chain(e.prod_only.iter_mut())
            .filter_map(|c| match c {
                Change::KeyAdded { key, .. } | Change::KeyRemoved { key, .. } => Some(key),
                Change::Threshold { .. } => None,
            });
        for key in keys.chain(e.signers.iter_mut().map(|s| &mut s.key)) {
            retire(key, current);
        }
    }
    out
}

/// Marks a key that the current root no longer lists and the server does not hold.
fn retire(key: &mut KeyView, current: &Root) {
    if key.location != Location::Server && !current.keys.keys().any(|id| id.as_str() == key.id) {
        key.location = Location::Retired;
    }
}

fn entry(v: &RootVersion, prev: Option<&Signed<Root>>, held: &dyn Fn(&PublicKey) -> bool) -> Entry {
    let root = &v.root.signed;
    let changelog = root.extra.get("x-changelog");
    let text = |field: &str| {
        changelog.and_then(|c| c.get(field)).map(|x| match x {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    };
    let (signers, other_signatures) = signers(&v.root, prev.map(|p| &p.signed), held);
    Entry {
        version: v.version,
        published: v.published,
        expires: root.expires.unix(),
        author: text("author"),
        message: text("message"),
        changes: diff(prev.map(|p| &p.signed), root, held),
        prod_only: Vec::new(),
        signers,
        other_signatures,
    }
}

/// Keys added and removed, and thresholds changed, role by role. Version 1 (no previous
/// version) lists its keys as added.
pub fn diff(prev: Option<&Root>, root: &Root, held: &dyn Fn(&PublicKey) -> bool) -> Vec<Change> {
    let new_book = KeyBook::new(root, held);
    let mut out = Vec::new();
    for role in Role::ALL {
        let now = root.role(role);
        let before: Vec<KeyId> = prev
            .map(|p| p.role(role).keyids.clone())
            .unwrap_or_default();
        let before_set: BTreeSet<&KeyId> = before.iter().collect();
        let now_set: BTreeSet<&KeyId> = now.keyids.iter().collect();
        if let Some(p) = prev {
            let from = p.role(role).threshold.get();
            if from != now.threshold.get() {
                out.push(Change::Threshold {
                    role,
                    from,
                    to: now.threshold.get(),
                });
            }
            let old_book = KeyBook::new(p, held);
            for id in before.iter().filter(|id| !now_set.contains(id)) {
                out.push(Change::KeyRemoved {
                    role,
                    key: old_book.key(id),
                });
            }
        }
        for id in now.keyids.iter().filter(|id| !before_set.contains(id)) {
            out.push(Change::KeyAdded {
                role,
                key: new_book.key(id),
            });
        }
    }
    out
}

/// The keys whose signatures on `env` verify as root keys of the previous version or of
/// this one, and how many other signatures it carries.
fn signers(
    env: &Signed<Root>,
    prev: Option<&Root>,
    held: &dyn Fn(&PublicKey) -> bool,
) -> (Vec<Signer>, usize) {
    let root = &env.signed;
    let new = env
        .verify_role("root", root.role(Role::Root), &root.keys)
        .valid;
    let old = prev
        .map(|p| env.verify_role("root", p.role(Role::Root), &p.keys).valid)
        .unwrap_or_default();
    let ids: BTreeSet<&KeyId> = new.iter().chain(old.iter()).collect();
    let out: Vec<Signer> = ids
        .into_iter()
        .map(|id| {
            // Name the key from the root that lists it (a removed key only the old one does).
            let book_root = if root.keys.contains_key(id) {
                root
            } else {
                prev.unwrap_or(root)
            };
            Signer {
                key: KeyBook::new(book_root, held).key(id),
                previous: old.contains(id),
                new: new.contains(id),
            }
        })
        .collect();
    let other = env.signatures.len().saturating_sub(out.len());
    (out, other)
}

pub fn render(entries: &[Entry], older: Option<i64>) -> Markup {
    html! {
        p.hint {
            "Every root version, newest first. A new version must be signed by a threshold of "
            "the previous root's keys and of its own; devices walk this chain one version at a time."
        }
        ol.timeline {
            @for e in entries {
                li.version id=(format!("v{}", e.version)) {
                    h2 { "Version " (e.version) }
                    p.meta {
                        "Published " (when(e.published)) ", expires " (when(e.expires))
                        @if let Some(a) = &e.author { " · by " span.author { (a) } }
                    }
                    @if let Some(m) = &e.message { @if !m.is_empty() { p { q.message { (m) } } } }
                    (changes(e))
                    h3 { "Signed by" }
                    ul.signers {
                        @for s in &e.signers {
                            li {
                                (key_inline(&s.key)) " — "
                                (match (s.previous, s.new) {
                                    (true, true) => "a root key of the previous version and of this one",
                                    (true, false) => "a root key of the previous version",
                                    _ => "a root key of this version",
                                })
                            }
                        }
                        @if e.other_signatures > 0 {
                            li.none { (e.other_signatures) " other signature(s) that count for neither root" }
                        }
                    }
                }
            }
        }
        @if let Some(before) = older {
            p { a href=(format!("?before={before}")) { "Older versions" } }
        }
    }
}

fn changes(e: &Entry) -> Markup {
    html! {
        @if e.version == 1 {
            p { "The first root, made by the server when the Factory was created." }
        } @else if e.changes.is_empty() && e.prod_only.is_empty() {
            p.none { "No key or threshold changed (a renewal)." }
        }
        @if e.version > 1 && !e.changes.is_empty() {
            ul.changes { @for c in &e.changes { (change(c)) } }
        }
        @if !e.prod_only.is_empty() {
            p { "Production root only:" }
            ul.changes { @for c in &e.prod_only { (change(c)) } }
        }
    }
}

fn change(c: &Change) -> Markup {
    html! {
        @match c {
            Change::KeyAdded { role, key } => li.added { "+ " (role.as_str()) " key " (key_inline(key)) },
            Change::KeyRemoved { role, key } => li.removed { "− " (role.as_str()) " key " (key_inline(key)) },
            Change::Threshold { role, from, to } => li.threshold { (role.as_str()) " threshold " (from) " → " (to) },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::keys::tests::{key, root};
    use tuf_core::Signer as _;

    fn version(root: Root, signers: &[&tuf_core::PrivateKey], published: i64) -> RootVersion {
        let mut env = Signed::new(root).unwrap();
        for k in signers {
            env.sign(*k).unwrap();
        }
        RootVersion {
            version: env.signed.version as i64,
            published,
            root: env,
        }
    }

    #[test]
    fn the_chain_says_what_changed_and_who_signed() {
        let (k1, k2, online, offline) = (key(), key(), key(), key());
        let v1 = root(1, &[&k1], &online, None, 1);
        let v2 = root(2, &[&k2], &online, None, 1);
        let mut v3 = root(3, &[&k2], &online, Some(&offline), 1);
        v3.extra.insert(
            "x-changelog".into(),
            serde_json::json!({"author": "owner:abc", "message": "offline <b>targets</b> key"}),
        );
        let mut p3 = v3.clone();
        p3.role_mut(Role::Targets).unwrap().threshold = tuf_core::Threshold::new(2).unwrap();
        let ci = [
            version(v3, &[&k2], 30),
            version(v2, &[&k1, &k2], 20),
            version(v1.clone(), &[&k1], 10),
        ];
        let prod = [
            version(p3, &[&k2], 30),
            version(root(2, &[&k2], &online, None, 1), &[&k1, &k2], 20),
            version(v1, &[&k1], 10),
        ];
        let held = |_: &PublicKey| false;
        let es = entries(&ci, &prod, &held, 3, &ci[0].root.signed);
        assert_eq!(es.iter().map(|e| e.version).collect::<Vec<_>>(), [3, 2, 1]);
        // v3: an offline targets key; production also raised the targets threshold.
        assert_eq!(es[0].changes.len(), 1);
        assert!(
            matches!(&es[0].changes[0], Change::KeyAdded { role: Role::Targets, key } if key.id == offline.key_id().as_str())
        );
        assert_eq!(
            es[0].prod_only,
            [Change::Threshold {
                role: Role::Targets,
                from: 1,
                to: 2
            }]
        );
        assert_eq!(es[0].message.as_deref(), Some("offline <b>targets</b> key"));
        assert_eq!(es[0].signers.len(), 1);
        assert!(es[0].signers[0].previous && es[0].signers[0].new);
        // v2: the root key rotated, signed by the old and the new key.
        let kinds: Vec<(bool, bool)> = es[1].signers.iter().map(|s| (s.previous, s.new)).collect();
        assert_eq!(kinds.len(), 2);
        assert!(kinds.contains(&(true, false)) && kinds.contains(&(false, true)));
        let old_key = es[1].signers.iter().find(|s| s.previous && !s.new).unwrap();
        assert_eq!(
            old_key.key.location,
            Location::Retired,
            "k1 is in no current role"
        );
        assert_eq!(es[0].signers[0].key.location, Location::Offline);
        assert!(es[1].changes.iter().any(|c| matches!(c, Change::KeyRemoved { role: Role::Root, key } if key.id == k1.key_id().as_str())));
        assert!(es[1].changes.iter().any(|c| matches!(c, Change::KeyAdded { role: Role::Root, key } if key.id == k2.key_id().as_str())));
        assert!(es[1].prod_only.is_empty());
        let html = render(&es, None).into_string();
        assert!(html.contains("offline &lt;b&gt;targets&lt;/b&gt; key"));
        assert!(html.contains("targets threshold 1 → 2"));
    }

    #[test]
    fn only_the_shown_versions_are_entries() {
        let (k1, online) = (key(), key());
        let ci = [
            version(root(2, &[&k1], &online, None, 1), &[&k1], 2),
            version(root(1, &[&k1], &online, None, 1), &[&k1], 1),
        ];
        let es = entries(&ci, &[], &|_| false, 1, &ci[0].root.signed);
        assert_eq!(es.len(), 1);
        assert!(es[0].changes.is_empty(), "{:?}", es[0].changes);
        assert!(es[0].prod_only.is_empty());
    }
}
