//! What the offline signer checks before a key signs: a request is verified on its own,
//! starting from the root the signer already trusts, with the same named checks the server
//! runs. Nothing here trusts the request: its chains, its current documents and what it says
//! about the server are all checked or can only make the checks stricter.

use time::OffsetDateTime;
use tuf_core::{Role, Root, Signed};

use crate::chain;
use crate::check::{Check, Findings, Refusal};
use crate::format::{RootUpdateRequest, WaveRequest};
use crate::root_update::{self, RootUpdate};
use crate::server_keys::ServerKeys;
use crate::tx::{Roots, Tx};
use crate::wave::{self, Wave};

/// Both current roots, each verified along its chain from `anchor` (a CI root the signer
/// trusts). The production chain starts from the production root of the anchor's version,
/// which the anchor's root keys must have signed.
pub fn trusted_roots(
    ci_chain: &[Signed<Root>],
    prod_chain: &[Signed<Root>],
    anchor: &Signed<Root>,
) -> Result<Roots, Refusal> {
    let ci = chain::walk("CI", anchor, ci_chain)?;
    let prod = chain::walk_sibling("production", anchor, prod_chain)?;
    Ok(Roots {
        ci: ci.clone(),
        prod: prod.clone(),
    })
}

/// Checks a root-update request; returns the current roots at the end of its chains.
pub fn check_root_update(
    r: &RootUpdateRequest,
    anchor: &Signed<Root>,
    factory: &str,
    now: OffsetDateTime,
) -> Result<Roots, Refusal> {
    same_factory(&r.factory, factory)?;
    let current = trusted_roots(&r.ci_chain, &r.prod_chain, anchor)?;
    let (c, p) = (&current.ci.signed, &current.prod.signed);
    let server = ServerKeys::inferred(&[c, p], &r.server_keys);
    let update = RootUpdate {
        current_ci: c,
        current_prod: p,
        ci: &r.ci_root,
        prod: &r.prod_root,
        server: &server,
        now,
        txid: Some(&r.txid),
    };
    let mut f = update.structure();
    f.extend(update.intact());
    f.extend(prod_targets(r, p, now));
    f.into_result()?;
    Ok(current)
}

/// Checks an open transaction before a key signs it online: the same structural checks as a
/// request, against `current` roots the signer verified from its own trusted root.
pub fn check_tx(tx: &Tx, current: &Roots, now: OffsetDateTime) -> Result<(), Refusal> {
    let (c, p) = (&current.ci.signed, &current.prod.signed);
    let server = ServerKeys::inferred(&[c, p], &tx.server_keys);
    RootUpdate {
        current_ci: c,
        current_prod: p,
        ci: &tx.ci_root,
        prod: &tx.prod_root,
        server: &server,
        now,
        txid: Some(&tx.txid),
    }
    .structure()
    .into_result()
}

/// The staged production targets of a root-update request: the current ones (verified
/// under the current production root) with version + 1 and a new expiry, and every
/// signature they carry by a targets key of the new production root.
fn prod_targets(r: &RootUpdateRequest, current_prod: &Root, now: OffsetDateTime) -> Findings {
    let mut f = Findings::new();
    let cur = &r.current_prod_targets;
    let v = cur.verify_role(
        "targets",
        current_prod.role(Role::Targets),
        &current_prod.keys,
    );
    if !v.is_met() {
        f.fail(
            Check::Provenance,
            "the current production targets do not verify under the current production root",
        );
        return f;
    }
    let Some(t) = &r.prod_targets else {
        return f;
    };
    f.extend(root_update::prod_targets_unchanged(
        &t.signed,
        &cur.signed,
        now,
    ));
    let keys = r.prod_root.signed.role_keys(Role::Targets);
    f.note(root_update::signatures_intact("prod_targets", t, &keys));
    f
}

/// Checks a wave request; returns the current production root.
pub fn check_wave(
    w: &WaveRequest,
    anchor: &Signed<Root>,
    factory: &str,
    now: OffsetDateTime,
) -> Result<Signed<Root>, Refusal> {
    same_factory(&w.factory, factory)?;
    let current = trusted_roots(&w.ci_chain, &w.prod_chain, anchor)?;
    let wave = Wave {
        version: &w.version,
        tag: &w.tag,
        ci_root: &current.ci.signed,
        prod_root: &current.prod.signed,
        ci_targets: &w.ci_targets,
        current: &w.current_targets,
        proposed: &w.targets.signed,
        retire: &w.retire,
        now,
    };
    let mut f = wave.check();
    f.note(wave::unsigned(&w.targets));
    f.into_result()?;
    Ok(current.prod)
}

/// `factory`: a request for another Factory is refused.
pub fn same_factory(requested: &str, ours: &str) -> Result<(), Refusal> {
    if requested != ours {
        return Err(Refusal::new(
            Check::Factory,
            format!("the request is for Factory {requested:?}, but the credentials file is for {ours:?}"),
        ));
    }
    Ok(())
}
