//! Transaction edits: key-ID prefixes, removing keys, the server's online keys.

use std::collections::BTreeMap;

use serde_json::json;
use tuf_core::Signer as _;
use tuf_core::{Expires, KeyId, KeyType, PrivateKey, Role, RoleKeys, Root, Signed, Threshold};

use crate::tx::{set_owner, Tx};
use crate::Error;

/// Roots listing `root` keys (threshold 2), `targets` keys and one `tufd` online key for
/// snapshot and timestamp; key IDs are given, so prefixes can collide on purpose.
fn tx(root: &[&str], targets: &[&str]) -> Tx {
    let mut keys = BTreeMap::new();
    let mut id = |s: &str| {
        let k = PrivateKey::generate(KeyType::Ed25519).unwrap();
        let id = KeyId::new(s).unwrap();
        keys.insert(id.clone(), k.public_key().clone());
        id
    };
    let ids = |list: &[&str], id: &mut dyn FnMut(&str) -> KeyId| -> Vec<KeyId> {
        list.iter().map(|s| id(s)).collect()
    };
    let t = |n| Threshold::new(n).unwrap();
    let mut roles = BTreeMap::new();
    roles.insert(Role::Root, RoleKeys::new(ids(root, &mut id), t(2)));
    roles.insert(Role::Targets, RoleKeys::new(ids(targets, &mut id), t(1)));
    let online = id("0a1b2c3d");
    roles.insert(Role::Snapshot, RoleKeys::new(vec![online.clone()], t(1)));
    roles.insert(Role::Timestamp, RoleKeys::new(vec![online.clone()], t(1)));
    let mut r = Root::new(2, Expires::from_unix(4_000_000_000).unwrap(), keys, roles);
    r.extra.insert(
        "x-key-owners".into(),
        json!({"0a1b2c3d": "tufd", "aaaa1111bb": "alice"}),
    );
    let env = Signed::new(r).unwrap();
    Tx {
        txid: "t".into(),
        message: String::new(),
        ci_root: env.clone(),
        prod_root: env,
        prod_targets: None,
        stage_prod_targets: false,
        errors: Vec::new(),
        warnings: Vec::new(),
        server_keys: Vec::new(),
    }
}

fn err(tx: &mut Tx, prefix: &str, role: Option<Role>) -> Error {
    let before = (
        tx.ci_root.canonical().to_vec(),
        tx.prod_root.canonical().to_vec(),
    );
    let e = tx.remove_key(prefix, role).unwrap_err();
    // A refused edit changes nothing.
    assert_eq!(
        (
            tx.ci_root.canonical().to_vec(),
            tx.prod_root.canonical().to_vec()
        ),
        before
    );
    e
}

#[test]
fn prefixes_must_be_long_hex_and_unique() {
    let mut t = tx(&["aaaa1111bb", "aaaa1111cc", "dddd2222"], &["eeee3333"]);
    assert!(matches!(
        err(&mut t, "aaaa111", None),
        Error::KeyPrefix { min: 8, .. }
    ));
    assert!(matches!(
        err(&mut t, "aaaa111x", None),
        Error::KeyPrefix { .. }
    ));
    match err(&mut t, "AAAA1111", None) {
        Error::AmbiguousKey { prefix, ids } => {
            assert_eq!(prefix, "aaaa1111");
            assert_eq!(ids, ["aaaa1111bb", "aaaa1111cc"]);
        }
        other => panic!("{other}"),
    }
    assert!(matches!(
        err(&mut t, "99999999", None),
        Error::NoSuchKey { .. }
    ));
    let r = t.remove_key("AAAA1111BB", None).unwrap();
    assert_eq!(r.id.as_str(), "aaaa1111bb");
    assert_eq!(r.owner.as_deref(), Some("alice"));
    assert_eq!((r.roles, r.dropped), (vec![Role::Root], true));
    for root in [&t.ci_root.signed, &t.prod_root.signed] {
        assert_eq!(root.role(Role::Root).keyids.len(), 2);
        assert!(!root.keys.contains_key(&r.id));
        assert!(root.extra["x-key-owners"].get("aaaa1111bb").is_none());
        assert_eq!(root.extra["x-key-owners"]["0a1b2c3d"], "tufd");
    }
}

#[test]
fn a_key_in_two_roles_stays_in_keys_until_no_role_lists_it() {
    let mut t = tx(&["aaaa1111bb", "dddd2222"], &["dddd2222"]);
    assert!(matches!(
        err(&mut t, "eeee3333", None),
        Error::NoSuchKey { .. }
    ));
    let r = t.remove_key("dddd2222", Some(Role::Targets)).unwrap();
    assert_eq!((r.roles, r.dropped), (vec![Role::Targets], false));
    assert!(t.ci_root.signed.keys.contains_key(&r.id));
    match err(&mut t, "dddd2222", Some(Role::Targets)) {
        Error::NotInRole { role, listed, .. } => {
            assert_eq!((role.as_str(), listed.as_str()), ("targets", "root"))
        }
        other => panic!("{other}"),
    }
    let r = t.remove_key("dddd2222", None).unwrap();
    assert_eq!((r.roles, r.dropped), (vec![Role::Root], true));
    assert!(!t.prod_root.signed.keys.contains_key(&r.id));
}

#[test]
fn the_bootstrap_root_key_is_removable_but_the_online_keys_are_not() {
    let mut t = tx(&["aaaa1111bb", "bbbb2222cc"], &["cccc3333dd"]);
    for env in [&mut t.ci_root, &mut t.prod_root] {
        let mut r = env.signed.clone();
        for id in ["bbbb2222cc", "cccc3333dd"] {
            set_owner(&mut r, &KeyId::new(id).unwrap(), "tufd");
        }
        *env = Signed::new(r).unwrap();
    }
    let r = t.remove_key("bbbb2222", None).unwrap();
    assert_eq!(r.roles, vec![Role::Root]);
    match err(&mut t, "cccc3333", None) {
        Error::OnlineKey { roles, .. } => assert_eq!(roles, "targets"),
        other => panic!("{other}"),
    }
    match err(&mut t, "0a1b2c3d", None) {
        Error::OnlineKey { roles, .. } => assert_eq!(roles, "snapshot, timestamp"),
        other => panic!("{other}"),
    }
}

#[test]
fn adding_a_key_and_setting_thresholds_edit_both_roots_and_drop_signatures() {
    let mut t = tx(&["aaaa1111bb"], &["eeee3333"]);
    let signer = PrivateKey::generate(KeyType::EcdsaP256).unwrap();
    t.ci_root.sign(&signer).unwrap();
    t.add_key(Role::Root, signer.public_key(), "bob@vault")
        .unwrap();
    let id = signer.public_key().key_id();
    for root in [&t.ci_root, &t.prod_root] {
        assert!(root.signed.role(Role::Root).keyids.contains(&id));
        assert_eq!(root.signed.extra["x-key-owners"][id.as_str()], "bob@vault");
        assert!(root.signatures.is_empty());
    }
    t.set_threshold(Role::Targets, Threshold::new(2).unwrap())
        .unwrap();
    assert_eq!(t.ci_root.signed.role(Role::Targets).threshold.get(), 1);
    assert_eq!(t.prod_root.signed.role(Role::Targets).threshold.get(), 2);
    t.set_threshold(Role::Root, Threshold::new(3).unwrap())
        .unwrap();
    assert_eq!(t.ci_root.signed.role(Role::Root).threshold.get(), 3);
    assert_eq!(t.prod_root.signed.role(Role::Root).threshold.get(), 3);
}

#[test]
fn a_transaction_reads_back_from_its_api_form() {
    let t = tx(&["aaaa1111bb"], &["eeee3333"]);
    let mut v = t.stage_body().unwrap();
    v["message"] = json!("renew");
    v["errors"] = json!(["version: nope"]);
    let back = Tx::from_value(v).unwrap();
    assert_eq!(back.ci_root.canonical(), t.ci_root.canonical());
    assert_eq!(back.errors, ["version: nope"]);
    let e = Tx::from_value(json!({"txid": "x"})).unwrap_err();
    assert!(
        matches!(e, Error::Format(ref m) if m.contains("has no ci_root")),
        "{e}"
    );
}
