//! The server's verdict on a root update against the offline signer's (`tufctl sign`), over
//! generated updates: valid ones and one mutation per named check, with every key type. Both
//! must agree, naming the same check: one rulebook, called from both sides.

use std::sync::OnceLock;

use proptest::prelude::*;
use serde_json::json;
use tuf_ceremony::format::RootUpdateRequest;
use tuf_ceremony::{offline, Check};
use tuf_core::{Expires, KeyType, PrivateKey, Role, RoleKeys, Signer as _, Threshold};

use super::*;

/// Keys made once per key type (RSA generation is slow): root, online targets, snapshot,
/// timestamp, offline targets, and a spare.
fn keys(kind: usize) -> &'static [PrivateKey; 6] {
    static KEYS: OnceLock<Vec<[PrivateKey; 6]>> = OnceLock::new();
    &KEYS.get_or_init(|| {
        [KeyType::Ed25519, KeyType::EcdsaP256, KeyType::Rsa3072]
            .into_iter()
            .map(|k| std::array::from_fn(|_| PrivateKey::generate(k).unwrap()))
            .collect()
    })[kind]
}

fn days(n: i64) -> Expires {
    Expires::after(OffsetDateTime::now_utc(), n * 86_400).unwrap()
}

/// Version 1 of the CI (`prod` false) or production root: `k[0]` root, `k[1]` online targets
/// (plus `k[4]` offline with `offline`), `k[2]` snapshot, `k[3]` timestamp.
fn root(k: &[PrivateKey; 6], offline: bool, prod: bool) -> Signed<Root> {
    let mut all = BTreeMap::new();
    let mut ids = |list: &[&PrivateKey]| -> Vec<KeyId> {
        list.iter()
            .map(|p| {
                all.insert(p.key_id().clone(), p.public_key().clone());
                p.key_id().clone()
            })
            .collect()
    };
    let one = Threshold::new(1).unwrap();
    let targets: Vec<&PrivateKey> = if offline {
        vec![&k[1], &k[4]]
    } else {
        vec![&k[1]]
    };
    let t = if offline && prod { 2 } else { 1 };
    let roles = BTreeMap::from([
        (Role::Root, RoleKeys::new(ids(&[&k[0]]), one)),
        (
            Role::Targets,
            RoleKeys::new(ids(&targets), Threshold::new(t).unwrap()),
        ),
        (Role::Snapshot, RoleKeys::new(ids(&[&k[2]]), one)),
        (Role::Timestamp, RoleKeys::new(ids(&[&k[3]]), one)),
    ]);
    let mut r = Root::new(1, days(365), all, roles);
    let owners: serde_json::Map<String, Value> = [&k[1], &k[2], &k[3]]
        .iter()
        .map(|p| (p.key_id().to_string(), json!("tufd")))
        .collect();
    r.extra.insert("x-key-owners".into(), Value::Object(owners));
    let mut env = Signed::new(r).unwrap();
    env.sign(&k[0]).unwrap();
    env
}

/// A mutation of the staged roots and the check that must refuse it (`None`: valid).
type Mutation = (fn(&mut Root, &[PrivateKey; 6], bool), Option<Check>);

fn mutations() -> Vec<Mutation> {
    vec![
        (|_, _, _| {}, None),
        (|r, _, _| r.version = 3, Some(Check::Version)),
        (|r, _, _| r.expires = days(6 * 366), Some(Check::Expires)),
        (
            |r, _, _| r.spec_version = "1.0.0".into(),
            Some(Check::ShownChanges),
        ),
        (
            |r, _, _| {
                r.extra
                    .insert("x-changelog".into(), json!({"txid": "cancelled"}));
            },
            Some(Check::Transaction),
        ),
        (
            |r, _, _| r.role_mut(Role::Root).unwrap().threshold = Threshold::new(2).unwrap(),
            Some(Check::ThresholdRange),
        ),
        (
            |r, k, _| {
                // A new key listed under an ID that is not its own.
                let id = KeyId::new("ab".repeat(32)).unwrap();
                r.keys.insert(id.clone(), k[5].public_key().clone());
                r.role_mut(Role::Root).unwrap().keyids.push(id);
            },
            Some(Check::KeyIds),
        ),
        (
            |r, k, _| {
                // The snapshot key (held by the server) as a second root key, threshold 1.
                let id = k[2].key_id().clone();
                r.role_mut(Role::Root).unwrap().keyids.push(id);
            },
            Some(Check::OfflineRootKeys),
        ),
        (
            |r, k, _| {
                let id = k[5].key_id().clone();
                r.keys.insert(id.clone(), k[5].public_key().clone());
                r.role_mut(Role::Snapshot).unwrap().keyids = vec![id];
                r.prune_keys();
            },
            Some(Check::OnlineKeys),
        ),
        (
            |r, k, prod| {
                // The online targets key replaced by a spare key.
                let id = k[5].key_id().clone();
                r.keys.insert(id.clone(), k[5].public_key().clone());
                let t = r.role_mut(Role::Targets).unwrap();
                t.keyids = vec![id];
                t.threshold = Threshold::new(1).unwrap();
                let _ = prod;
                r.prune_keys();
            },
            Some(Check::OnlineTargetsKey),
        ),
        (
            |r, _, prod| {
                if prod {
                    r.role_mut(Role::Root).unwrap().threshold = Threshold::new(1).unwrap();
                    r.extra.insert("x-note".into(), json!("production only"));
                }
            },
            Some(Check::ProdMatchesCi),
        ),
    ]
}

/// The update of version 1 to 2 with `mutation`, signed by the root key, as the server has
/// it staged and as a signing request carries it.
fn update(
    k: &'static [PrivateKey; 6],
    offline_key: bool,
    mutation: &Mutation,
) -> (Current, Staged, RootUpdateRequest) {
    let (ci, prod) = (root(k, offline_key, false), root(k, offline_key, true));
    let next = |env: &Signed<Root>, is_prod: bool| {
        let mut r = env.signed.clone();
        r.version = 2;
        r.expires = days(300);
        r.extra.insert("x-changelog".into(), json!({"txid": "tx"}));
        (mutation.0)(&mut r, k, is_prod);
        let mut s = Signed::new(r).unwrap();
        s.sign(&k[0]).unwrap();
        s
    };
    let (new_ci, new_prod) = (next(&ci, false), next(&prod, true));
    let mut targets = Signed::new(Targets::new(1, days(30))).unwrap();
    targets.sign(&k[1]).unwrap();
    if offline_key {
        targets.sign(&k[4]).unwrap();
    }
    let held = OnlineKeys::from_keys(
        ["targets", "snapshot", "timestamp"]
            .into_iter()
            .zip(k[1..4].iter().map(|p| {
                PrivateKey::from_pkcs8_der(
                    &p.public_key().keytype,
                    &p.public_key().scheme,
                    p.pkcs8_der(),
                )
                .unwrap()
            }))
            .collect(),
    );
    let request = RootUpdateRequest {
        factory: "acme".into(),
        txid: "tx".into(),
        message: String::new(),
        ci_chain: vec![ci.clone()],
        prod_chain: vec![prod.clone()],
        ci_root: new_ci.clone(),
        prod_root: new_prod.clone(),
        prod_targets: None,
        current_prod_targets: targets.clone(),
        server_keys: held.server_keys().held(),
    };
    let staged = Staged {
        txid: "tx".into(),
        message: String::new(),
        ci_root: new_ci.to_bytes(),
        prod_root: new_prod.to_bytes(),
        prod_targets: Signed::new(Targets::new(2, days(30))).unwrap().to_bytes(),
    };
    let current = Current {
        ci,
        prod,
        prod_targets: targets,
        keys: held,
    };
    (current, staged, request)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn the_server_and_the_offline_signer_agree_naming_the_same_check(
        kind in 0usize..3,
        which in 0usize..11,
        offline_key in any::<bool>(),
    ) {
        let all = mutations();
        let m = &all[which];
        let (current, staged, request) = update(keys(kind), offline_key, m);
        let now = OffsetDateTime::now_utc();
        let server = check(&current, &staged, now);
        let server_first = server.errors.faults().next().map(|r| r.check);
        let anchor = &request.ci_chain[0];
        let signer = offline::check_root_update(&request, anchor, "acme", now)
            .err()
            .map(|r| r.check);
        prop_assert_eq!(server_first, signer, "server {:?}", server.errors);
        prop_assert_eq!(server_first, m.1);
        if m.1.is_none() {
            // Valid and signed: nothing awaits signatures either; apply would commit.
            prop_assert!(server.errors.is_empty(), "{:?}", server.errors);
        }
    }
}
