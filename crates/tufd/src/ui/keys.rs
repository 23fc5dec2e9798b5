//! The Factory page: the CI and production roots side by side (roles, thresholds, keys,
//! owners, where each key lives), what a production release must be signed by, and the open
//! root-update transaction with the signatures it still lacks.

use maud::{html, Markup};
use serde_json::Value;
use tuf_core::{KeyId, PublicKey, Role, Root, Signed, Targets, Verification};

use super::layout::{relative, short, when};
use super::store::StagedUpdate;
use crate::repo::Flavour;

/// Where a key's private part lives, as far as the server can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    /// tufd holds it (an online key, or the bootstrap root key before the first rotation).
    Server,
    /// On a hardware token, as the key's entry in root.json says (`x-key-origin`).
    HardwareToken,
    /// In an offline credentials file, as the key's entry in root.json says.
    OfflineFile,
    /// Not on the server; nothing says more.
    Offline,
    /// Not held by the server and in no role of the current root any more (a key of an old
    /// root version).
    Retired,
}

impl Location {
    pub fn label(self) -> &'static str {
        match self {
            Location::Server => "server",
            Location::HardwareToken => "hardware token",
            Location::OfflineFile => "offline file",
            Location::Offline => "offline",
            Location::Retired => "retired",
        }
    }

    fn class(self) -> &'static str {
        match self {
            Location::Server => "loc server",
            Location::Retired => "loc retired",
            _ => "loc offline",
        }
    }
}

/// One key as the console shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyView {
    pub id: String,
    pub keytype: String,
    /// From `x-key-owners`: whatever the key's creator wrote (shown escaped).
    pub owner: Option<String>,
    pub location: Location,
}

/// Names the keys of one root: their type, owner and location.
pub struct KeyBook<'a> {
    root: &'a Root,
    held: &'a dyn Fn(&PublicKey) -> bool,
}

impl<'a> KeyBook<'a> {
    /// `held` says whether the server holds a key (however the root spells or names it).
    pub fn new(root: &'a Root, held: &'a dyn Fn(&PublicKey) -> bool) -> Self {
        Self { root, held }
    }

    pub fn key(&self, id: &KeyId) -> KeyView {
        let public = self.root.keys.get(id);
        KeyView {
            id: id.to_string(),
            keytype: public.map_or_else(|| "unknown".to_owned(), |k| k.keytype.clone()),
            owner: owner(self.root, id),
            location: public.map_or(Location::Offline, |k| location(k, self.held)),
        }
    }

    pub fn keys(&self, ids: &[KeyId]) -> Vec<KeyView> {
        ids.iter().map(|id| self.key(id)).collect()
    }
}

/// The owner `x-key-owners` records for `id`.
pub fn owner(root: &Root, id: &KeyId) -> Option<String> {
    let owners = root.extra.get("x-key-owners")?;
    match owners.get(id.as_str())? {
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn location(key: &PublicKey, held: &dyn Fn(&PublicKey) -> bool) -> Location {
    if held(key) {
        return Location::Server;
    }
    match key.extra.get("x-key-origin").and_then(Value::as_str) {
        Some("hsm" | "pkcs11" | "hardware") => Location::HardwareToken,
        Some("file") => Location::OfflineFile,
        _ => Location::Offline,
    }
}

/// One role of a root: its threshold and keys.
#[derive(Debug)]
pub struct RoleView {
    pub role: Role,
    pub threshold: u32,
    pub keys: Vec<KeyView>,
}

/// One flavour's current root.
#[derive(Debug)]
pub struct RootView {
    pub flavour: Flavour,
    pub version: u64,
    pub expires: i64,
    pub roles: Vec<RoleView>,
}

impl RootView {
    pub fn new(flavour: Flavour, root: &Root, held: &dyn Fn(&PublicKey) -> bool) -> Self {
        let book = KeyBook::new(root, held);
        Self {
            flavour,
            version: root.version,
            expires: root.expires.unix(),
            roles: Role::ALL
                .into_iter()
                .map(|role| {
                    let rk = root.role(role);
                    RoleView {
                        role,
                        threshold: rk.threshold.get(),
                        keys: book.keys(&rk.keyids),
                    }
                })
                .collect(),
        }
    }
}

/// What a production release (a wave) must carry: the production targets threshold, of
/// which the server gives at most its own keys' signatures and at least one must come from
/// an offline key.
#[derive(Debug)]
pub struct Release {
    pub threshold: u32,
    pub keys: Vec<KeyView>,
}

impl Release {
    pub fn new(prod: &Root, held: &dyn Fn(&PublicKey) -> bool) -> Self {
        let rk = prod.role(Role::Targets);
        Self {
            threshold: rk.threshold.get(),
            keys: KeyBook::new(prod, held).keys(&rk.keyids),
        }
    }

    pub fn offline(&self) -> impl Iterator<Item = &KeyView> {
        self.keys.iter().filter(|k| k.location != Location::Server)
    }

    pub fn server_signs(&self) -> usize {
        self.keys.len() - self.offline().count()
    }
}

/// One threshold a staged envelope must meet, and who has signed towards it.
#[derive(Debug)]
pub struct SignatureCheck {
    /// Whose signatures count, in words: "root keys of the current root (v2)".
    pub whose: String,
    pub threshold: u32,
    pub signed: Vec<KeyView>,
    /// Keys of the role that have not signed yet (or whose signature does not verify).
    pub missing: Vec<KeyView>,
    /// Keys the server signs with when the transaction is applied.
    pub by_server: Vec<KeyView>,
    pub met: bool,
}

impl SignatureCheck {
    fn new(whose: String, v: &Verification, book: &KeyBook, server_adds: bool) -> Self {
        let mut signed = book.keys(&v.valid);
        let mut missing: Vec<KeyView> = v
            .missing
            .iter()
            .chain(v.invalid.iter().map(|(id, _)| id))
            .map(|id| book.key(id))
            .collect();
        let mut by_server = Vec::new();
        if server_adds {
            by_server = missing
                .iter()
                .filter(|k| k.location == Location::Server)
                .cloned()
                .collect();
            missing.retain(|k| k.location != Location::Server);
        }
        signed.sort_by(|a, b| a.id.cmp(&b.id));
        let counted = v.distinct_valid as usize + by_server.len();
        Self {
            whose,
            threshold: v.threshold,
            met: counted >= v.threshold as usize,
            signed,
            missing,
            by_server,
        }
    }

    /// How many more signatures are needed.
    pub fn still_needed(&self) -> usize {
        if self.met {
            return 0;
        }
        (self.threshold as usize).saturating_sub(self.signed.len() + self.by_server.len())
    }
}

/// One staged envelope of the open transaction.
#[derive(Debug)]
pub struct StagedPart {
    pub what: &'static str,
    pub version: Option<u64>,
    pub checks: Vec<SignatureCheck>,
    /// Why the envelope could not be read, if it could not.
    pub problem: Option<String>,
}

/// The open root-update transaction.
#[derive(Debug)]
pub struct UpdateView {
    pub txid: String,
    pub message: String,
    pub created_at: i64,
    pub parts: Vec<StagedPart>,
}

impl UpdateView {
    /// Which signatures each staged root (and the production targets) has and lacks,
    /// against the current roots `ci` and `prod`.
    pub fn new(
        staged: &StagedUpdate,
        ci: &Root,
        prod: &Root,
        held: &dyn Fn(&PublicKey) -> bool,
    ) -> Self {
        let ci_part = root_part("CI root", &staged.ci_root, ci, held);
        let prod_part = root_part("production root", &staged.prod_root, prod, held);
        let mut parts = vec![ci_part, prod_part];
        // The production targets matter only when the targets role changes: then the new
        // role's offline keys must sign them (the server adds its own at apply).
        if let Ok(new_prod) = Signed::<Root>::from_slice(&staged.prod_root) {
            if new_prod.signed.role(Role::Targets).keyids != prod.role(Role::Targets).keyids {
                parts.push(targets_part(&staged.prod_targets, &new_prod.signed, held));
            }
        }
        Self {
            txid: staged.txid.clone(),
            message: staged.message.clone(),
            created_at: staged.created_at,
            parts,
        }
    }
}

fn root_part(
    what: &'static str,
    bytes: &[u8],
    current: &Root,
    held: &dyn Fn(&PublicKey) -> bool,
) -> StagedPart {
    let env = match Signed::<Root>::from_slice(bytes) {
        Ok(env) => env,
        Err(e) => return unreadable(what, &e),
    };
    let old_book = KeyBook::new(current, held);
    let new_book = KeyBook::new(&env.signed, held);
    let old = env.verify_role("root", current.role(Role::Root), &current.keys);
    let new = env.verify_role("root", env.signed.role(Role::Root), &env.signed.keys);
    StagedPart {
        what,
        version: Some(env.signed.version),
        checks: vec![
            SignatureCheck::new(
                format!("root keys of the current root (v{})", current.version),
                &old,
                &old_book,
                false,
            ),
            SignatureCheck::new(
                format!("root keys of the new root (v{})", env.signed.version),
                &new,
                &new_book,
                false,
            ),
        ],
        problem: None,
    }
}

fn targets_part(bytes: &[u8], new_prod: &Root, held: &dyn Fn(&PublicKey) -> bool) -> StagedPart {
    const WHAT: &str = "production targets";
    let env = match Signed::<Targets>::from_slice(bytes) {
        Ok(env) => env,
        Err(e) => return unreadable(WHAT, &e),
    };
    let book = KeyBook::new(new_prod, held);
    let v = env.verify_role("targets", new_prod.role(Role::Targets), &new_prod.keys);
    StagedPart {
        what: WHAT,
        version: Some(env.signed.version),
        checks: vec![SignatureCheck::new(
            format!(
                "targets keys of the new production root (v{})",
                new_prod.version
            ),
            &v,
            &book,
            true,
        )],
        problem: None,
    }
}

fn unreadable(what: &'static str, e: &tuf_core::Error) -> StagedPart {
    StagedPart {
        what,
        version: None,
        checks: Vec::new(),
        problem: Some(format!("cannot be read: {e}")),
    }
}

/// The open transaction, or why it is not shown.
#[derive(Debug)]
pub enum UpdateState {
    None,
    Open(UpdateView),
    /// Root-update transactions are the owner's (as `GET .../root/updates`).
    NotOwner,
}

/// Everything the Factory page shows.
#[derive(Debug)]
pub struct Overview {
    pub ci: RootView,
    pub prod: RootView,
    pub release: Release,
    pub update: UpdateState,
}

impl Overview {
    pub fn new(
        ci: &Root,
        prod: &Root,
        held: &dyn Fn(&PublicKey) -> bool,
        update: UpdateState,
    ) -> Self {
        Self {
            ci: RootView::new(Flavour::Ci, ci, held),
            prod: RootView::new(Flavour::Prod, prod, held),
            release: Release::new(prod, held),
            update,
        }
    }
}

pub fn render(o: &Overview, now: i64) -> Markup {
    html! {
        section.roots {
            h2 { "CI and production roots" }
            p.hint {
                "CI devices trust the CI root, production devices the production root. They "
                "list the same keys; production asks more signatures of a release."
            }
            div.columns {
                (root_column("CI root", &o.ci, now))
                (root_column("Production root", &o.prod, now))
            }
        }
        (release(&o.release))
        (update(&o.update, now))
    }
}

fn root_column(title: &str, r: &RootView, now: i64) -> Markup {
    html! {
        div.column id=(format!("root-{}", r.flavour.as_str())) {
            h3 { (title) " v" (r.version) }
            p { "Expires " time { (when(r.expires)) } " (" (relative(r.expires - now)) ")" }
            table.keys {
                thead { tr { th { "Role" } th { "Threshold" } th { "Key" } th { "Type" } th { "Owner" } th { "Lives" } } }
                tbody {
                    @for role in &r.roles {
                        @for (i, k) in role.keys.iter().enumerate() {
                            tr {
                                @if i == 0 {
                                    th rowspan=(role.keys.len()) { (role.role.as_str()) }
                                    td rowspan=(role.keys.len()) { (role.threshold) " of " (role.keys.len()) }
                                }
                                (key_cells(k))
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Key ID (short, full in the title), type, owner and location cells.
pub fn key_cells(k: &KeyView) -> Markup {
    html! {
        td { code title=(k.id) { (short(&k.id)) } }
        td { (k.keytype) }
        td.owner { @if let Some(o) = &k.owner { (o) } @else { span.none { "—" } } }
        td { span class=(k.location.class()) { (k.location.label()) } }
    }
}

/// A key in running text: short ID, owner and location.
pub fn key_inline(k: &KeyView) -> Markup {
    html! {
        span.key {
            code title=(k.id) { (short(&k.id)) }
            @if let Some(o) = &k.owner { " " span.owner { (o) } }
            " (" span class=(k.location.class()) { (k.location.label()) } ")"
        }
    }
}

fn release(r: &Release) -> Markup {
    let offline: Vec<&KeyView> = r.offline().collect();
    html! {
        section #release {
            h2 { "What a production release needs" }
            p {
                "A wave is published only with " strong { (r.threshold) } " valid signature"
                @if r.threshold != 1 { "s" }
                " of the production targets keys below, at least one of them from an offline "
                "key: the server adds its own signature"
                @if r.server_signs() != 1 { "s" }
                " (" (r.server_signs()) ") when the wave is created, and never counts as the offline one."
            }
            @if offline.is_empty() {
                p.warn { "No offline targets key yet: production releases cannot be signed. Create one with "
                    code { "tufctl keys rotate-targets" } "." }
            }
            ul { @for k in &r.keys { li { (key_inline(k)) } } }
        }
    }
}

fn update(u: &UpdateState, now: i64) -> Markup {
    html! {
        section #update {
            h2 { "Open root update" }
            @match u {
                UpdateState::None => p { "No root-update transaction is open." },
                UpdateState::NotOwner => p.hint { "Root-update transactions are shown to the owner token." },
                UpdateState::Open(v) => (open_update(v, now)),
            }
        }
    }
}

fn open_update(v: &UpdateView, now: i64) -> Markup {
    html! {
        p {
            "Transaction " code { (short(&v.txid)) } ", opened " (when(v.created_at))
            " (" (relative(v.created_at - now)) ")"
            @if !v.message.is_empty() { ": " q.message { (v.message) } }
        }
        p.hint { "The apply checks decide (" code { "tufctl keys tuf updates review" } "); this shows whose signatures are still missing." }
        @for part in &v.parts {
            div.part {
                h3 { (part.what) @if let Some(n) = part.version { " v" (n) } }
                @if let Some(p) = &part.problem { p.warn { (p) } }
                @for c in &part.checks {
                    div class=(if c.met { "check met" } else { "check unmet" }) {
                        p {
                            strong { (if c.met { "met" } else { "not met" }) } ": "
                            (c.threshold) " signature" @if c.threshold != 1 { "s" } " of the " (c.whose)
                            @if !c.met { ", " (c.still_needed()) " more needed" }
                        }
                        ul {
                            @for k in &c.signed { li.signed { "signed: " (key_inline(k)) } }
                            @for k in &c.by_server { li.signed { "signed by the server at apply: " (key_inline(k)) } }
                            @for k in &c.missing { li.missing { "missing: " (key_inline(k)) } }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use serde_json::json;
    use tuf_core::{Expires, KeyType, PrivateKey, RoleKeys, Signer as _, Threshold};

    pub fn key() -> PrivateKey {
        PrivateKey::generate(KeyType::Ed25519).unwrap()
    }

    /// A root with `root` as root key, `online` for the other roles and, when given,
    /// `offline` as a second targets key with threshold `targets_threshold`.
    pub fn root(
        version: u64,
        root_keys: &[&PrivateKey],
        online: &PrivateKey,
        offline: Option<&PrivateKey>,
        targets_threshold: u64,
    ) -> Root {
        let mut keys = std::collections::BTreeMap::new();
        let mut roles = std::collections::BTreeMap::new();
        let one = Threshold::new(1).unwrap();
        for k in root_keys.iter().chain([&online]).chain(offline.as_ref()) {
            keys.insert(k.key_id().clone(), k.public_key().clone());
        }
        let ids = |ks: &[&PrivateKey]| ks.iter().map(|k| k.key_id().clone()).collect::<Vec<_>>();
        roles.insert(Role::Root, RoleKeys::new(ids(root_keys), one));
        let mut t = vec![online];
        t.extend(offline);
        roles.insert(
            Role::Targets,
            RoleKeys::new(ids(&t), Threshold::new(targets_threshold).unwrap()),
        );
        roles.insert(Role::Snapshot, RoleKeys::new(ids(&[online]), one));
        roles.insert(Role::Timestamp, RoleKeys::new(ids(&[online]), one));
        Root::new(
            version,
            Expires::from_unix(2_000_000_000).unwrap(),
            keys,
            roles,
        )
    }

    #[test]
    fn keys_show_owner_and_where_they_live() {
        let (rk, online, offline) = (key(), key(), key());
        let mut r = root(3, &[&rk], &online, Some(&offline), 2);
        r.extra.insert(
            "x-key-owners".into(),
            json!({rk.key_id().as_str(): "alice@desk", online.key_id().as_str(): "tufd",
                   offline.key_id().as_str(): "<img src=x onerror=alert(1)>"}),
        );
        r.keys
            .get_mut(rk.key_id())
            .unwrap()
            .extra
            .insert("x-key-origin".into(), json!("hsm"));
        let online_id = online.key_id().clone();
        let held = move |k: &PublicKey| k.key_id() == online_id;
        let view = RootView::new(Flavour::Prod, &r, &held);
        assert_eq!(view.version, 3);
        let roles: Vec<(Role, u32, usize)> = view
            .roles
            .iter()
            .map(|x| (x.role, x.threshold, x.keys.len()))
            .collect();
        assert_eq!(
            roles,
            [
                (Role::Root, 1, 1),
                (Role::Targets, 2, 2),
                (Role::Snapshot, 1, 1),
                (Role::Timestamp, 1, 1)
            ]
        );
        let root_key = &view.roles[0].keys[0];
        assert_eq!(root_key.owner.as_deref(), Some("alice@desk"));
        assert_eq!(root_key.location, Location::HardwareToken);
        let targets = &view.roles[1].keys;
        assert_eq!(targets[0].location, Location::Server);
        assert_eq!(targets[1].location, Location::Offline);
        let release = Release::new(&r, &held);
        assert_eq!(release.threshold, 2);
        assert_eq!(release.server_signs(), 1);
        assert_eq!(release.offline().count(), 1);
        // What users wrote is text in the page.
        let page = render(
            &Overview::new(&r, &r, &held, UpdateState::NotOwner),
            1_900_000_000,
        )
        .into_string();
        assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;"));
        assert!(!page.contains("<img"));
    }

    #[test]
    fn an_open_update_lists_the_missing_signatures() {
        let (k1, k2, online, offline) = (key(), key(), key(), key());
        let current = root(1, &[&k1], &online, None, 1);
        let mut next = root(2, &[&k2], &online, None, 1);
        next.extra
            .insert("x-key-owners".into(), json!({k2.key_id().as_str(): "bob"}));
        let mut env = Signed::new(next.clone()).unwrap();
        env.sign(&k1).unwrap();
        let mut prod_next = root(2, &[&k2], &online, Some(&offline), 2);
        prod_next.version = 2;
        let mut targets =
            Signed::new(Targets::new(2, Expires::from_unix(2_000_000_000).unwrap())).unwrap();
        targets.sign(&offline).unwrap();
        let staged = StagedUpdate {
            txid: "ab".repeat(16),
            message: "rotate".into(),
            created_at: 1_900_000_000,
            ci_root: env.to_bytes(),
            prod_root: Signed::new(prod_next).unwrap().to_bytes(),
            prod_targets: targets.to_bytes(),
        };
        let online_id = online.key_id().clone();
        let held = move |k: &PublicKey| k.key_id() == online_id;
        let u = UpdateView::new(&staged, &current, &current, &held);
        let ci = &u.parts[0];
        assert_eq!(ci.version, Some(2));
        assert!(ci.checks[0].met, "the old root key signed");
        assert!(!ci.checks[1].met);
        assert_eq!(ci.checks[1].missing[0].owner.as_deref(), Some("bob"));
        assert_eq!(ci.checks[1].still_needed(), 1);
        let prod = &u.parts[1];
        assert!(!prod.checks[0].met && !prod.checks[1].met);
        // The targets role changed: the offline key signed, the server adds the online one.
        let t = &u.parts[2];
        assert_eq!(t.what, "production targets");
        assert!(t.checks[0].met);
        assert_eq!(t.checks[0].signed[0].id, offline.key_id().as_str());
        assert_eq!(t.checks[0].by_server[0].location, Location::Server);
        assert!(t.checks[0].missing.is_empty());
    }

    #[test]
    fn an_unreadable_staged_root_is_said_so() {
        let (k1, online) = (key(), key());
        let current = root(1, &[&k1], &online, None, 1);
        let staged = StagedUpdate {
            txid: "t".into(),
            message: String::new(),
            created_at: 0,
            ci_root: b"{".to_vec(),
            prod_root: b"null".to_vec(),
            prod_targets: Vec::new(),
        };
        let u = UpdateView::new(&staged, &current, &current, &|_| false);
        assert_eq!(u.parts.len(), 2);
        assert!(u
            .parts
            .iter()
            .all(|p| p.problem.is_some() && p.checks.is_empty()));
    }
}
