//! The rules of a valid root update: one function per named check of docs/API.md. tufd runs
//! them when a transaction is staged and applied; `tufctl sign` runs them before an offline
//! key signs; so both refuse the same update with the same check name.
//!
//! An update changes the CI and the production root together. [`RootUpdate::structure`]
//! runs every check that more signatures cannot mend, structural ones first so a refusal
//! names the real problem; [`RootUpdate::signatures`] says which signatures are still
//! missing; [`RootUpdate::intact`] that every signature present still verifies.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use time::OffsetDateTime;
use tuf_core::{KeyId, Metadata, PublicKey, Role, Root, Signed, Targets};

use crate::check::{Check, Findings, Refusal};
use crate::limits;
use crate::server_keys::{ServerKeys, View};

/// Label of the CI root in every message (the API's field name).
pub const CI: &str = "ci_root";
/// Label of the production root in every message.
pub const PROD: &str = "prod_root";

/// A proposed update of both roots, with what it is checked against.
pub struct RootUpdate<'a> {
    /// The CI root devices trust now.
    pub current_ci: &'a Root,
    /// The production root devices trust now.
    pub current_prod: &'a Root,
    /// The proposed CI root, with its signatures.
    pub ci: &'a Signed<Root>,
    /// The proposed production root, with its signatures.
    pub prod: &'a Signed<Root>,
    /// The keys the server holds: they never count as offline signatures.
    pub server: &'a ServerKeys,
    /// The time expiry is checked against (passed in: this crate reads no clock).
    pub now: OffsetDateTime,
    /// The transaction the roots were staged in, when known: roots signed in another
    /// (a cancelled one) are refused.
    pub txid: Option<&'a str>,
}

impl RootUpdate<'_> {
    fn pairs(&self) -> [(&'static str, &Signed<Root>, &Root); 2] {
        [
            (CI, self.ci, self.current_ci),
            (PROD, self.prod, self.current_prod),
        ]
    }

    /// Every check that signatures cannot mend.
    pub fn structure(&self) -> Findings {
        let mut f = Findings::new();
        if let Some(txid) = self.txid {
            for (label, new, _) in self.pairs() {
                f.note(transaction(label, &new.signed, txid));
            }
        }
        for (label, new, _) in self.pairs() {
            f.extend(threshold_range(label, &new.signed));
        }
        for (label, new, cur) in self.pairs() {
            f.note(version(label, new.signed.version, cur.version));
        }
        f.note(prod_matches_ci(&self.ci.signed, &self.prod.signed));
        for (label, new, cur) in self.pairs() {
            f.extend(key_ids(label, &new.signed, cur));
            f.note(distinct_keys(label, &new.signed, cur));
            f.note(shown_changes(label, &new.signed, cur));
        }
        let (c, p) = (&self.ci.signed, &self.prod.signed);
        f.extend(online_targets_key(self.server, c, p));
        f.extend(online_keys(self.server, c));
        f.note(prod_targets_threshold(self.server, p));
        f.note(offline_targets_key(self.server, self.current_prod, p));
        f.extend(offline_root_keys(self.server, self.current_ci, c, p));
        for (label, new, _) in self.pairs() {
            f.note(limits::root_expiry(label, &new.signed.expires, self.now));
        }
        f
    }

    /// The root signatures still missing: a threshold of the current root's keys and of the
    /// new root's keys, on both roots.
    pub fn signatures(&self) -> Findings {
        let mut f = Findings::new();
        for (label, new, cur) in self.pairs() {
            f.note(current_root_signatures(label, new, cur));
            f.note(new_root_signatures(label, new));
        }
        f
    }

    /// Every signature already on the staged roots verifies with a key allowed to sign them.
    pub fn intact(&self) -> Findings {
        let mut f = Findings::new();
        for (label, new, cur) in self.pairs() {
            f.note(signatures_intact(
                label,
                new,
                &root_signing_keys(cur, &new.signed),
            ));
        }
        f
    }

    /// [`Self::structure`] then [`Self::signatures`]: what `apply` requires.
    pub fn all(&self) -> Findings {
        let mut f = self.structure();
        f.extend(self.signatures());
        f
    }
}

/// `transaction`: a staged root belongs to the transaction it is staged in. The server writes
/// the transaction ID into `x-changelog` when it opens one, so a root signed inside a
/// transaction that was cancelled (its holders refused the change) cannot be staged again.
pub fn transaction(label: &str, root: &Root, txid: &str) -> Result<(), Refusal> {
    let recorded = root
        .extra
        .get("x-changelog")
        .and_then(|c| c.get("txid"))
        .and_then(Value::as_str);
    if recorded == Some(txid) {
        return Ok(());
    }
    Err(Refusal::new(
        Check::Transaction,
        format!(
            "{label}: was made for {}, not for the open transaction {txid}; a root signed in a \
             cancelled transaction is never applied: sign the open transaction's roots",
            match recorded {
                Some(other) => format!("transaction {other}"),
                None => "no transaction".to_owned(),
            }
        ),
    ))
}

/// `threshold_range`: every threshold between 1 and the role's key count, counted as
/// thresholds are met: distinct usable keys. A root whose root threshold cannot be met could
/// never be changed again.
pub fn threshold_range(label: &str, root: &Root) -> Findings {
    let mut f = Findings::new();
    for role in Role::ALL {
        let keys = root.role_keys(role);
        let n = keys.len();
        let distinct = distinct_material(keys.values());
        let t = root.role(role).threshold.get() as usize;
        if t > n {
            f.fail(
                Check::ThresholdRange,
                format!(
                    "{label}: {role} threshold {t} is more than its {n} key(s); lower the \
                     threshold or add keys"
                ),
            );
        } else if t > distinct {
            f.fail(
                Check::ThresholdRange,
                format!(
                    "{label}: {role} threshold {t} is more than its {distinct} distinct usable \
                     key(s) (of {n} key IDs, some name the same key or are not valid keys), so \
                     it could never be met"
                ),
            );
        }
    }
    f
}

/// Thresholds read from the raw JSON of a staged root, so a threshold of 0 (which the typed
/// model cannot hold) is reported as `threshold_range` rather than as a parse error.
pub fn raw_thresholds(label: &str, value: &Value) -> Findings {
    let mut f = Findings::new();
    let Some(roles) = value["signed"]["roles"].as_object() else {
        return f;
    };
    for (name, role) in roles {
        let n = role["keyids"].as_array().map_or(0, Vec::len) as u64;
        match role["threshold"].as_u64() {
            Some(0) => f.fail(
                Check::ThresholdRange,
                format!("{label}: {name} threshold is 0; it must be at least 1"),
            ),
            Some(t) if t > n => f.fail(
                Check::ThresholdRange,
                format!(
                    "{label}: {name} threshold {t} is more than its {n} key(s); lower the \
                     threshold or add keys"
                ),
            ),
            _ => {}
        }
    }
    f
}

/// Parses a staged root received as JSON. A root the typed model cannot hold because of a
/// threshold (0) is refused as `threshold_range`, anything else that is not a root envelope
/// as `format`; thresholds above the key count parse and are left to [`threshold_range`].
pub fn parse_staged(label: &str, value: Value) -> Result<Signed<Root>, Findings> {
    let raw = raw_thresholds(label, &value);
    Signed::<Root>::from_value(value).map_err(|e| {
        if raw.has(Check::ThresholdRange) {
            return raw;
        }
        Findings::from(Refusal::new(Check::Format, format!("{label}: {e}")))
    })
}

/// `version`: exactly the current version + 1.
pub fn version(label: &str, new: u64, current: u64) -> Result<(), Refusal> {
    let want = current.saturating_add(1);
    if new != want {
        return Err(Refusal::new(
            Check::Version,
            format!("{label}: version is {new}, must be {want} (current + 1)"),
        ));
    }
    Ok(())
}

/// `prod_matches_ci`: the production root equals the CI root except for the targets
/// threshold. Compared as parsed roots: canonical bytes keep PEM line breaks raw, which a
/// JSON parser would refuse.
pub fn prod_matches_ci(ci: &Root, prod: &Root) -> Result<(), Refusal> {
    let mut p = prod.clone();
    if let (Ok(t), Some(c)) = (
        p.role_mut(Role::Targets),
        ci.roles.get(Role::Targets.as_str()),
    ) {
        t.threshold = c.threshold;
    }
    if p != *ci {
        return Err(Refusal::new(
            Check::ProdMatchesCi,
            "the production root must equal the CI root except for the targets threshold",
        ));
    }
    Ok(())
}

/// `key_ids`: every role lists keys the root has, and a key the current root does not have
/// under that ID is named by its own ID. The review shows IDs: an ID that does not match its
/// key would show one key and sign with another.
pub fn key_ids(label: &str, new: &Root, current: &Root) -> Findings {
    let mut f = Findings::new();
    for role in Role::ALL {
        for id in &new.role(role).keyids {
            if !new.keys.contains_key(id) {
                f.fail(
                    Check::KeyIds,
                    format!("{label}: the {role} role lists key {id}, which is not in its keys"),
                );
            }
        }
    }
    for (id, key) in &new.keys {
        if current.keys.get(id) == Some(key) {
            continue;
        }
        let computed = key.key_id();
        if &computed != id {
            f.fail(
                Check::KeyIds,
                format!(
                    "{label}: key {id} does not match its public key (computed ID {computed}): \
                     the key was swapped"
                ),
            );
        }
    }
    f
}

/// `distinct_keys`: a new key under a second ID of a key the root already lists would show
/// as one more holder in the review while adding none.
pub fn distinct_keys(label: &str, new: &Root, current: &Root) -> Result<(), Refusal> {
    for (id, key) in &new.keys {
        if current.keys.contains_key(id) {
            continue;
        }
        let Ok(material) = key.material() else {
            continue;
        };
        let twin = new
            .keys
            .iter()
            .find(|(other, k)| *other != id && k.material().ok().as_ref() == Some(&material));
        if let Some((other, _)) = twin {
            return Err(Refusal::new(
                Check::DistinctKeys,
                format!(
                    "{label}: key {id} is the same key as {other} under another ID: it would \
                     count as one more key holder while it is the same one"
                ),
            ));
        }
    }
    Ok(())
}

/// `shown_changes`: a root update changes only what the review shows: the version, the
/// expiry, keys, roles' keys and thresholds, the changelog and key owners.
pub fn shown_changes(label: &str, new: &Root, current: &Root) -> Result<(), Refusal> {
    let unshown = unshown_changes(new, current);
    if unshown.is_empty() {
        return Ok(());
    }
    Err(Refusal::new(
        Check::ShownChanges,
        format!(
            "{label}: changes {}, which the review does not show (a root update changes only \
             keys, roles' keys and thresholds, expiry, changelog and key owners)",
            unshown.join(", ")
        ),
    ))
}

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

/// `online_targets_key`: the server's online targets key stays in the targets role of both
/// roots, and CI targets need it alone (threshold 1), so CI builds are signed online.
pub fn online_targets_key(server: &ServerKeys, ci: &Root, prod: &Root) -> Findings {
    let mut f = Findings::new();
    let online = server.ids_of(Role::Targets);
    for (label, root) in [(CI, ci), (PROD, prod)] {
        if !root
            .role(Role::Targets)
            .keyids
            .iter()
            .any(|id| online.contains(id))
        {
            f.fail(
                Check::OnlineTargetsKey,
                format!("{label}: the targets role must keep the server's online targets key"),
            );
        }
    }
    if ci.role(Role::Targets).threshold.get() != 1 {
        f.fail(
            Check::OnlineTargetsKey,
            "ci_root: the targets threshold must be 1 so CI builds are signed online",
        );
    }
    f
}

/// `online_keys`: the server can still meet the snapshot and timestamp thresholds.
pub fn online_keys(server: &ServerKeys, ci: &Root) -> Findings {
    let mut f = Findings::new();
    for role in [Role::Snapshot, Role::Timestamp] {
        let held = server.signers_in(ci, role);
        if (held as u64) < u64::from(ci.role(role).threshold.get()) {
            f.fail(
                Check::OnlineKeys,
                format!("the server holds {held} key(s) of the {role} role, below its threshold"),
            );
        }
    }
    f
}

/// `prod_targets_threshold`: with an offline targets key (one the server does not hold),
/// production needs at least 2 signatures. A configuration guard: once production is
/// protected, `offline_targets_key` keeps it so, so the view of what might be held serves.
pub fn prod_targets_threshold(server: &ServerKeys, prod: &Root) -> Result<(), Refusal> {
    let offline = server.offline_in(prod, Role::Targets, View::Maybe);
    if offline > 0 && prod.role(Role::Targets).threshold.get() < 2 {
        return Err(Refusal::new(
            Check::ProdTargetsThreshold,
            "prod_root: with an offline targets key the production targets threshold must be \
             at least 2",
        ));
    }
    Ok(())
}

/// `offline_targets_key`: once production requires an offline targets signature, an update
/// may replace the offline targets key but never leave production without one; and keys the
/// server holds (for any role, under any ID) never count toward the production threshold.
pub fn offline_targets_key(
    server: &ServerKeys,
    current_prod: &Root,
    prod: &Root,
) -> Result<(), Refusal> {
    let t = prod.role(Role::Targets).threshold.get();
    let required = current_prod.role(Role::Targets).threshold.get() >= 2
        && server.offline_in(current_prod, Role::Targets, View::Sure) > 0;
    if required && server.offline_in(prod, Role::Targets, View::Maybe) == 0 {
        return Err(Refusal::new(
            Check::OfflineTargetsKey,
            "prod_root: the production targets role would keep no offline targets key, so the \
             server alone would sign production releases; keep one, or replace it in the same \
             update (`tufctl keys rotate-targets`)",
        ));
    }
    let claims_offline = server.offline_in(prod, Role::Targets, View::Maybe) > 0 || t >= 2;
    if !(required || claims_offline) {
        return Ok(());
    }
    let held = server.held_in(prod, Role::Targets, View::Maybe);
    if held >= t as usize {
        return Err(Refusal::new(
            Check::OfflineTargetsKey,
            format!(
                "prod_root: the server holds {held} of the production targets keys, which meets \
                 the threshold {t}: the server alone would sign production releases. Only keys \
                 kept offline may count toward it (a key the server holds for another role, or \
                 its online key under another ID, is not offline)"
            ),
        ));
    }
    Ok(())
}

/// `offline_root_keys`: once the server's keys alone cannot sign a root (the bootstrap key is
/// gone), no update may give it that power again, under whatever key ID.
pub fn offline_root_keys(
    server: &ServerKeys,
    current_ci: &Root,
    ci: &Root,
    prod: &Root,
) -> Findings {
    let mut f = Findings::new();
    let threshold = |r: &Root| r.role(Role::Root).threshold.get() as usize;
    if server.held_in(current_ci, Role::Root, View::Sure) >= threshold(current_ci) {
        return f;
    }
    for (label, root) in [(CI, ci), (PROD, prod)] {
        let (held, t) = (
            server.held_in(root, Role::Root, View::Maybe),
            threshold(root),
        );
        if held >= t {
            f.fail(
                Check::OfflineRootKeys,
                format!(
                    "{label}: the server holds {held} of the root keys, which meets the root \
                     threshold {t}: the server alone could sign new roots. Root keys must be \
                     kept offline (a key the server holds for another role is not)"
                ),
            );
        }
    }
    f
}

/// `current_root_signatures`: signed by a threshold of the current root's root keys.
pub fn current_root_signatures(
    label: &str,
    new: &Signed<Root>,
    current: &Root,
) -> Result<(), Refusal> {
    let v = new.verify_role("root", current.role(Role::Root), &current.keys);
    if v.is_met() {
        return Ok(());
    }
    Err(Refusal::new(
        Check::CurrentRootSignatures,
        format!(
            "{label}: {} of {} signatures of the current root's keys (missing: {})",
            v.distinct_valid,
            v.threshold,
            short_ids(&v.missing)
        ),
    ))
}

/// `new_root_signatures`: signed by a threshold of its own root keys.
pub fn new_root_signatures(label: &str, new: &Signed<Root>) -> Result<(), Refusal> {
    let s = &new.signed;
    let v = new.verify_role("root", s.role(Role::Root), &s.keys);
    if v.is_met() {
        return Ok(());
    }
    Err(Refusal::new(
        Check::NewRootSignatures,
        format!(
            "{label}: {} of {} signatures of the new root's keys (missing: {})",
            v.distinct_valid,
            v.threshold,
            short_ids(&v.missing)
        ),
    ))
}

/// `signatures_intact`: every signature already on `env` verifies with one of `keys`; one
/// that does not means the document was changed after that key holder signed it.
pub fn signatures_intact<T: Metadata>(
    label: &str,
    env: &Signed<T>,
    keys: &BTreeMap<KeyId, PublicKey>,
) -> Result<(), Refusal> {
    for sig in &env.signatures {
        if !crate::signature::signature_valid(env, sig, keys) {
            return Err(Refusal::new(
                Check::SignaturesIntact,
                format!(
                    "{label}: carries a signature of key {} that does not verify: the document \
                     was changed after that key holder signed it",
                    sig.keyid
                ),
            ));
        }
    }
    Ok(())
}

/// Keys that may sign a staged root: those of the current and of the new root's root role.
pub fn root_signing_keys(current: &Root, new: &Root) -> BTreeMap<KeyId, PublicKey> {
    let mut keys = current.role_keys(Role::Root);
    keys.extend(new.role_keys(Role::Root));
    keys
}

/// Staged production targets of a root update: the current ones with version + 1 and a new
/// expiry, nothing else changed (a root update never changes what devices install).
pub fn prod_targets_unchanged(
    staged: &Targets,
    current: &Targets,
    now: OffsetDateTime,
) -> Findings {
    let mut f = Findings::new();
    f.note(version("prod_targets", staged.version, current.version));
    if staged.targets != current.targets || staged.delegations != current.delegations {
        f.fail(
            Check::ProdTargetsUnchanged,
            "prod_targets: lists other targets than the current ones; a root update never \
             changes what devices install",
        );
    } else {
        let (mut a, mut b) = (staged.clone(), current.clone());
        for t in [&mut a, &mut b] {
            t.version = 0;
            t.expires = current.expires;
        }
        if a != b {
            f.fail(
                Check::ProdTargetsUnchanged,
                "prod_targets: change more than the version and the expiry (spec_version or \
                 other fields of \"signed\"); a root update changes nothing else",
            );
        }
    }
    f.note(limits::targets_expiry("prod_targets", &staged.expires, now));
    f
}

/// `prod_targets_signatures`: production targets (with the server's signature added) meet
/// the production root's targets threshold.
pub fn prod_targets_signatures(env: &Signed<Targets>, prod: &Root) -> Result<(), Refusal> {
    let v = env.verify_role("targets", prod.role(Role::Targets), &prod.keys);
    if v.is_met() {
        return Ok(());
    }
    Err(Refusal::new(
        Check::ProdTargetsSignatures,
        format!(
            "prod_targets: {} of {} signatures with the online key added (missing: {})",
            v.distinct_valid,
            v.threshold,
            short_ids(&v.missing)
        ),
    ))
}

/// Distinct key materials among `keys` (thresholds count these, not key IDs).
pub fn distinct_material<'a>(keys: impl IntoIterator<Item = &'a PublicKey>) -> usize {
    keys.into_iter()
        .filter_map(|k| k.material().ok())
        .collect::<BTreeSet<_>>()
        .len()
}

/// The first 12 hex digits of each ID, or "none".
pub fn short_ids(list: &[KeyId]) -> String {
    if list.is_empty() {
        return "none".to_owned();
    }
    list.iter()
        .map(|k| k.as_str().get(..12).unwrap_or(k.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}
