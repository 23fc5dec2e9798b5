//! The named checks of a root update, one by one, and the two views of what the server holds.

use serde_json::json;
use tuf_core::Signer as _;
use tuf_core::{KeyType, Role, Root, Signed, Threshold};

use super::{edited, held, key, now, Keys, KEY_TYPES};
use crate::root_update::{self, RootUpdate};
use crate::server_keys::ServerKeys;
use crate::Check;

/// The update of `current` (CI, production) to `next`, checked with `server`.
fn checks(
    current: (&Signed<Root>, &Signed<Root>),
    next: (&Signed<Root>, &Signed<Root>),
    server: &ServerKeys,
) -> Vec<Check> {
    let u = RootUpdate {
        current_ci: &current.0.signed,
        current_prod: &current.1.signed,
        ci: next.0,
        prod: next.1,
        server,
        now: now(),
        txid: None,
    };
    u.structure().iter().map(|r| r.check).collect()
}

/// Version 2 of `root` after `edit`.
fn next(root: &Signed<Root>, edit: impl FnOnce(&mut Root)) -> Signed<Root> {
    edited(root, |r: &mut Root| {
        r.version = 2;
        edit(r);
    })
}

#[test]
fn production_equals_ci_but_the_targets_threshold_with_pem_keys_too() {
    // PEM public keys hold line breaks: canonical bytes keep them raw, so the comparison
    // must not re-parse canonical bytes (it once refused every ecdsa and rsa root).
    for kind in KEY_TYPES {
        let k = Keys::new(kind);
        let (ci, prod) = (k.root(1, true, 1), k.root(1, true, 2));
        root_update::prod_matches_ci(&ci.signed, &prod.signed).unwrap();
        let other = next(&prod, |r| r.expires = super::days(30));
        let e = root_update::prod_matches_ci(&ci.signed, &other.signed).unwrap_err();
        assert_eq!(e.check, Check::ProdMatchesCi);
    }
}

#[test]
fn an_honest_targets_rotation_passes_every_structural_check() {
    for kind in KEY_TYPES {
        let k = Keys::new(kind);
        let (ci, prod) = (k.root(1, false, 1), k.root(1, false, 1));
        let new_ci = next(&k.root(1, true, 1), |_| {});
        let new_prod = next(&k.root(1, true, 2), |_| {});
        let server = k.server();
        assert_eq!(checks((&ci, &prod), (&new_ci, &new_prod), &server), []);
    }
}

#[test]
fn impossible_thresholds_are_threshold_range() {
    let k = Keys::new(KeyType::Ed25519);
    let r = next(&k.root(1, false, 1), |r| {
        r.role_mut(Role::Root).unwrap().threshold = Threshold::new(2).unwrap();
    });
    let f = root_update::threshold_range("ci_root", &r.signed);
    assert_eq!(f.first().map(|r| r.check), Some(Check::ThresholdRange));
    // 0 cannot even be parsed into a root: the raw check names it.
    let mut v = tuf_core::canonical::parse(&r.to_bytes()).unwrap();
    v["signed"]["roles"]["root"]["threshold"] = json!(0);
    let f = root_update::parse_staged("ci_root", v).unwrap_err();
    assert_eq!(f.first().map(|r| r.check), Some(Check::ThresholdRange));
    let f = root_update::parse_staged("ci_root", json!({"signed": {}})).unwrap_err();
    assert_eq!(f.first().map(|r| r.check), Some(Check::Format));
}

#[test]
fn a_version_other_than_current_plus_one_is_refused() {
    let e = root_update::version("ci_root", 4, 2).unwrap_err();
    assert_eq!(e.check, Check::Version);
    assert_eq!(e.reason, "ci_root: version is 4, must be 3 (current + 1)");
    root_update::version("ci_root", 3, 2).unwrap();
}

#[test]
fn the_server_can_never_sign_production_alone_once_an_offline_key_protects_it() {
    let k = Keys::new(KeyType::EcdsaP256);
    let server = k.server();
    let (ci, prod) = (k.root(1, true, 1), k.root(1, true, 2));
    // The offline key replaced by the server's snapshot key.
    let swap = |r: &mut Root| {
        let id = k.snapshot.key_id().clone();
        let t = r.role_mut(Role::Targets).unwrap();
        t.keyids = vec![k.online.key_id().clone(), id];
        r.prune_keys();
    };
    let (nc, np) = (next(&ci, swap), next(&prod, swap));
    assert!(checks((&ci, &prod), (&nc, &np), &server).contains(&Check::OfflineTargetsKey));
    // Dropped altogether.
    let drop = |r: &mut Root| {
        r.role_mut(Role::Targets).unwrap().keyids = vec![k.online.key_id().clone()];
        r.role_mut(Role::Targets).unwrap().threshold = Threshold::new(1).unwrap();
        r.prune_keys();
    };
    let (nc, np) = (next(&ci, drop), next(&prod, drop));
    assert!(checks((&ci, &prod), (&nc, &np), &server).contains(&Check::OfflineTargetsKey));
    // Production first put under an "offline" key that the server holds.
    let (ci1, prod1) = (k.root(1, false, 1), k.root(1, false, 1));
    let np = next(&prod1, |r| {
        swap(r);
        r.role_mut(Role::Targets).unwrap().threshold = Threshold::new(2).unwrap();
    });
    let nc = next(&ci1, swap);
    assert!(checks((&ci1, &prod1), (&nc, &np), &server).contains(&Check::OfflineTargetsKey));
}

#[test]
fn the_server_can_never_sign_roots_again_once_the_root_went_offline() {
    let k = Keys::new(KeyType::Rsa3072);
    let server = k.server();
    let (ci, prod) = (k.root(1, false, 1), k.root(1, false, 1));
    let add_snapshot = |r: &mut Root| {
        r.role_mut(Role::Root)
            .unwrap()
            .keyids
            .push(k.snapshot.key_id().clone());
    };
    let (nc, np) = (next(&ci, add_snapshot), next(&prod, add_snapshot));
    let found = checks((&ci, &prod), (&nc, &np), &server);
    assert!(found.contains(&Check::OfflineRootKeys), "{found:?}");
    // While the server still holds the bootstrap root key, the check does not apply.
    let bootstrap = ServerKeys::new([held("root", &k.root), held("targets", &k.online)]);
    let found = checks((&ci, &prod), (&nc, &np), &bootstrap);
    assert!(!found.contains(&Check::OfflineRootKeys), "{found:?}");
}

#[test]
fn the_online_keys_stay_and_ci_stays_at_threshold_one() {
    let k = Keys::new(KeyType::Ed25519);
    let server = k.server();
    let (ci, prod) = (k.root(1, true, 1), k.root(1, true, 2));
    let nc = next(&ci, |r| {
        r.role_mut(Role::Targets).unwrap().threshold = Threshold::new(2).unwrap();
    });
    let np = next(&prod, |_| {});
    assert!(checks((&ci, &prod), (&nc, &np), &server).contains(&Check::OnlineTargetsKey));
    let other = key(KeyType::Ed25519);
    let new_snapshot = |r: &mut Root| {
        let id = other.key_id().clone();
        r.keys.insert(id.clone(), other.public_key().clone());
        r.role_mut(Role::Snapshot).unwrap().keyids = vec![id];
        r.prune_keys();
    };
    let (nc, np) = (next(&ci, new_snapshot), next(&prod, new_snapshot));
    assert!(checks((&ci, &prod), (&nc, &np), &server).contains(&Check::OnlineKeys));
}

#[test]
fn a_claimed_key_makes_the_checks_stricter_never_looser() {
    let k = Keys::new(KeyType::Ed25519);
    let (ci, prod) = (k.root(1, true, 1), k.root(1, true, 2));
    let trusted = [&ci.signed, &prod.signed];
    let honest = ServerKeys::inferred(&trusted, &[]);
    let lying = ServerKeys::inferred(&trusted, &[held("targets", &k.offline)]);
    use crate::View;
    // The current root stays protected in the sure view whatever is claimed...
    assert_eq!(lying.offline_in(&prod.signed, Role::Targets, View::Sure), 1);
    // ...while the claim counts against new roots.
    assert_eq!(lying.held_in(&prod.signed, Role::Targets, View::Maybe), 2);
    assert_eq!(honest.held_in(&prod.signed, Role::Targets, View::Maybe), 1);
    let e = root_update::offline_targets_key(&lying, &prod.signed, &prod.signed).unwrap_err();
    assert_eq!(e.check, Check::OfflineTargetsKey);
    root_update::offline_targets_key(&honest, &prod.signed, &prod.signed).unwrap();
}

#[test]
fn a_new_online_key_the_server_reports_is_online_for_the_offline_signer() {
    // An online-key rotation of a Factory without an offline targets key: the new targets
    // key is in no trusted root yet; the request's `server_keys` names it as pending.
    for kind in KEY_TYPES {
        let k = Keys::new(kind);
        let (ci, prod) = (k.root(1, false, 1), k.root(1, false, 1));
        let fresh = key(KeyType::Ed25519);
        let swap = |r: &mut Root| {
            let id = fresh.key_id().clone();
            r.keys.insert(id.clone(), fresh.public_key().clone());
            r.role_mut(Role::Targets).unwrap().keyids = vec![id];
            r.prune_keys();
        };
        let (nc, np) = (next(&ci, swap), next(&prod, swap));
        let trusted = [&ci.signed, &prod.signed];
        let told = ServerKeys::inferred(&trusted, &[held("pending-targets", &fresh)]);
        assert_eq!(checks((&ci, &prod), (&nc, &np), &told), []);
        // Without the server's word the key looks offline, and CI would lose its online key.
        let untold = ServerKeys::inferred(&trusted, &[]);
        let found = checks((&ci, &prod), (&nc, &np), &untold);
        assert!(found.contains(&Check::OnlineTargetsKey), "{found:?}");
    }
}
