//! The root chain: forged links, swapped keys, skipped versions, wrong anchors.

use tuf_core::Signer as _;
use tuf_core::{KeyType, Role, Root, Signed};

use super::{edited, key, Keys, KEY_TYPES};
use crate::chain::{self, LinkFault};
use crate::Check;

/// Versions 1..=n, each signed by the previous root key and its own; version k rotates to
/// a new root key.
fn chain(kind: KeyType, n: u64) -> (Vec<Signed<Root>>, Vec<tuf_core::PrivateKey>) {
    let first = Keys::new(kind);
    let mut roots = vec![first.root(1, false, 1)];
    let mut keys = vec![first.root];
    for v in 2..=n {
        let k = key(kind);
        let next = edited(&roots[roots.len() - 1], |r: &mut Root| {
            r.version = v;
            let id = k.key_id().clone();
            r.keys.insert(id.clone(), k.public_key().clone());
            r.role_mut(Role::Root).unwrap().keyids = vec![id];
            r.prune_keys();
        });
        let mut next = next;
        next.sign(&keys[keys.len() - 1]).unwrap();
        next.sign(&k).unwrap();
        roots.push(next);
        keys.push(k);
    }
    (roots, keys)
}

fn refusal(r: Result<&Signed<Root>, crate::Refusal>) -> String {
    let e = r.unwrap_err();
    assert_eq!(e.check, Check::RootChain, "{e}");
    e.reason
}

#[test]
fn an_honest_chain_leads_from_any_trusted_version_to_the_newest() {
    for kind in KEY_TYPES {
        let (roots, _) = chain(kind, 4);
        for anchor in &roots {
            let last = chain::walk("CI", anchor, &roots).unwrap();
            assert_eq!(last.signed.version, 4);
        }
    }
}

#[test]
fn a_forged_link_is_refused() {
    for kind in KEY_TYPES {
        let (mut roots, _) = chain(kind, 3);
        // Version 3 made by someone holding only a key of their own.
        let mallory = key(kind);
        let mut forged = edited(&roots[2], |r: &mut Root| {
            let id = mallory.key_id().clone();
            r.keys.insert(id.clone(), mallory.public_key().clone());
            r.role_mut(Role::Root).unwrap().keyids = vec![id];
            r.prune_keys();
        });
        forged.sign(&mallory).unwrap();
        roots[2] = forged;
        let why = refusal(chain::walk("CI", &roots[0], &roots));
        assert!(
            why.contains("version 3 is not signed by a threshold of previous root keys"),
            "{why}"
        );
    }
}

#[test]
fn a_swapped_key_breaks_the_signature_it_carries() {
    let (mut roots, keys) = chain(KeyType::EcdsaP256, 2);
    // The same signatures over a root whose key entry was replaced.
    let other = key(KeyType::EcdsaP256);
    let mut swapped = edited(&roots[1], |r: &mut Root| {
        let id = keys[1].key_id().clone();
        r.keys.insert(id, other.public_key().clone());
    });
    swapped.signatures = roots[1].signatures.clone();
    roots[1] = swapped;
    refusal(chain::walk("CI", &roots[0], &roots));
}

#[test]
fn a_skipped_version_is_refused() {
    let (roots, _) = chain(KeyType::Ed25519, 3);
    let skipping = vec![roots[0].clone(), roots[2].clone()];
    let why = refusal(chain::walk("CI", &roots[0], &skipping));
    assert!(
        why.contains("not consecutive versions: after version 1, entry 2 has version 3"),
        "{why}"
    );
    // One link on its own says which version it expected.
    let (r, n) = (&roots[0], &roots[2]);
    match chain::link(&r.signed, &n.signed, n.canonical(), &n.signatures) {
        Err(LinkFault::NotSignedByTrusted(_)) => {}
        other => panic!("{other:?}"),
    }
    let (r, n) = (&roots[1], &roots[1]);
    match chain::link(&r.signed, &n.signed, n.canonical(), &n.signatures) {
        Err(LinkFault::Version {
            expected: 3,
            got: 2,
        }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_root_not_signed_by_its_own_keys_is_refused() {
    let (mut roots, keys) = chain(KeyType::Rsa3072, 2);
    let mut only_old = edited(&roots[1], |_| {});
    only_old.sign(&keys[0]).unwrap();
    roots[1] = only_old;
    let n = &roots[1];
    match chain::link(&roots[0].signed, &n.signed, n.canonical(), &n.signatures) {
        Err(LinkFault::NotSelfSigned(v)) => assert_eq!((v.distinct_valid, v.threshold), (0, 1)),
        other => panic!("{other:?}"),
    }
    let why = refusal(chain::walk("CI", &roots[0], &roots));
    assert!(why.contains("its own root keys"), "{why}");
}

#[test]
fn a_chain_that_does_not_start_from_the_trusted_root_or_stops_short_is_refused() {
    let (roots, _) = chain(KeyType::Ed25519, 3);
    let (other, _) = chain(KeyType::Ed25519, 3);
    let why = refusal(chain::walk("CI", &other[0], &roots));
    assert!(why.contains("not the trusted one"), "{why}");
    let why = refusal(chain::walk("CI", &roots[2], &roots[..2]));
    assert!(why.contains("ends at version 2, before version 3"), "{why}");
}

#[test]
fn a_production_chain_must_be_signed_by_the_trusted_root_keys() {
    let (ci, _) = chain(KeyType::EcdsaP256, 2);
    // The production sibling of version 1: the same keys, targets threshold 2.
    let honest = Keys::new(KeyType::EcdsaP256);
    let mut prod = vec![edited(&ci[0], |r: &mut Root| {
        r.role_mut(Role::Targets).unwrap().threshold = tuf_core::Threshold::new(1).unwrap();
    })];
    prod[0].signatures = ci[0].signatures.clone();
    chain::walk_sibling("production", &ci[0], &prod).unwrap();
    // Signed by another root key: refused.
    let mut other = honest.root(1, false, 1);
    other.signatures.clear();
    other.sign(&honest.root).unwrap();
    let why = refusal(chain::walk_sibling("production", &ci[0], &[other]));
    assert!(
        why.contains("not signed by a threshold of the trusted root's keys"),
        "{why}"
    );
}

#[test]
fn a_chain_may_start_at_the_trusted_version_but_not_after_it() {
    let (roots, _) = chain(KeyType::Ed25519, 5);
    // A verifier that trusts version 3 needs versions 3..=5 only.
    let last = chain::walk("CI", &roots[2], &roots[2..]).unwrap();
    assert_eq!(last.signed.version, 5);
    let why = refusal(chain::walk("CI", &roots[1], &roots[2..]));
    assert!(
        why.contains("starts at version 3, after version 2"),
        "{why}"
    );
    let why = refusal(chain::walk("CI", &roots[4], &roots[..3]));
    assert!(why.contains("ends at version 3, before version 5"), "{why}");
}
