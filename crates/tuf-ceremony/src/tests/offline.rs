//! What the offline signer checks of a request, with each key type: honest requests pass,
//! and each attack is refused by its named check.

use serde_json::json;
use tuf_core::Signer as _;
use tuf_core::{KeyId, KeyType, PublicKey, Role, Root, Signed, Targets, Threshold};

use super::{ci_target, days, edited, key, now, targets, Keys, KEY_TYPES};
use crate::format::{RootUpdateRequest, WaveRequest};
use crate::offline::{check_root_update, check_wave};
use crate::wave::{production_entry, Retire};
use crate::{review, tx, Check, Roots};

struct Wave {
    anchor: Signed<Root>,
    request: WaveRequest,
}

/// A wave releasing `app-2.bin` (version 2) next to the `app-1.bin` devices have.
fn wave(kind: KeyType) -> Wave {
    let k = Keys::new(kind);
    let anchor = k.root(1, true, 1);
    let prod_root = k.root(1, true, 2);
    let mut prod_root = prod_root;
    prod_root.signatures = anchor.signatures.clone();
    prod_root = {
        let mut p = edited(&prod_root, |_| {});
        p.sign(&k.root).unwrap();
        p
    };
    let (a1, a2) = (ci_target("1", 1), ci_target("2", 2));
    let ci = targets(
        9,
        &[("app-1.bin", a1.clone()), ("app-2.bin", a2.clone())],
        &[&k.online],
    );
    let current = targets(
        3,
        &[("app-1.bin", production_entry(&a1, "production"))],
        &[&k.online, &k.offline],
    );
    let next = edited(&current, |t: &mut Targets| {
        t.version = 4;
        t.expires = days(60);
        t.targets
            .insert("app-2.bin".into(), production_entry(&a2, "production"));
    });
    let request = WaveRequest {
        factory: "acme".into(),
        wave: "w2".into(),
        version: "2".into(),
        tag: "production".into(),
        ci_chain: vec![anchor.clone()],
        prod_chain: vec![prod_root],
        ci_targets: ci,
        current_targets: current,
        targets: next,
        retire: Retire::default(),
    };
    Wave { anchor, request }
}

fn wave_refusal(w: &Wave) -> crate::Refusal {
    match check_wave(&w.request, &w.anchor, "acme", now()) {
        Ok(_) => panic!("the wave request was accepted"),
        Err(e) => e,
    }
}

fn edit_proposed(w: &mut Wave, edit: impl FnOnce(&mut Targets)) {
    w.request.targets = edited(&w.request.targets, edit);
}

#[test]
fn an_honest_wave_request_verifies_with_every_key_type_and_its_review_shows_custom_fields() {
    for kind in KEY_TYPES {
        let w = wave(kind);
        let prod = check_wave(&w.request, &w.anchor, "acme", now()).unwrap();
        assert_eq!(prod.signed.role(Role::Targets).threshold.get(), 2);
        let review = review::wave(&w.request);
        assert!(review.contains("+ app-2.bin  length 102"), "{review}");
        assert!(
            review.contains("\"hardware_ids\":[\"board-a\"]"),
            "{review}"
        );
        assert!(review.contains("(1 target(s) unchanged)"), "{review}");
    }
}

#[test]
fn the_wave_review_escapes_what_could_rewrite_it() {
    let mut w = wave(KeyType::Ed25519);
    edit_proposed(&mut w, |t| {
        let e = t.targets.get_mut("app-2.bin").unwrap();
        e.custom.as_mut().unwrap()["hardware_ids"] = json!(["board-a\u{202e}b-draob"]);
    });
    let review = review::wave(&w.request);
    assert!(review.contains("board-a\\u{202e}b-draob"), "{review}");
    assert!(!review.contains('\u{202e}'), "{review}");
}

#[test]
fn wave_attacks_are_refused_by_name() {
    type Edit = fn(&mut Targets);
    let cases: [(&str, Edit, Check); 6] = [
        (
            "widened hardware ids",
            |t| {
                let e = t.targets.get_mut("app-2.bin").unwrap();
                e.custom.as_mut().unwrap()["hardware_ids"] = json!(["board-a", "board-b"]);
            },
            Check::WaveSource,
        ),
        (
            "valid for more than ten years",
            |t| t.expires = days(3661),
            Check::Expires,
        ),
        (
            "a dropped target",
            |t| {
                t.targets.remove("app-1.bin");
            },
            Check::WaveKeepsTargets,
        ),
        (
            "an unshown field",
            |t| {
                t.extra.insert("x-anything".into(), json!("hidden"));
            },
            Check::ShownChanges,
        ),
        (
            "another spec version",
            |t| t.spec_version = "1.0.0".into(),
            Check::ShownChanges,
        ),
        (
            "another build's entry",
            |t| {
                let e = t.targets.get_mut("app-1.bin").unwrap();
                e.custom.as_mut().unwrap()["tags"] = json!(["production", "beta"]);
            },
            Check::WaveSource,
        ),
    ];
    for (what, edit, check) in cases {
        let mut w = wave(KeyType::EcdsaP256);
        edit_proposed(&mut w, edit);
        assert_eq!(wave_refusal(&w).check, check, "{what}");
    }
    let mut w = wave(KeyType::Ed25519);
    edit_proposed(&mut w, |t| t.expires = days(3650));
    check_wave(&w.request, &w.anchor, "acme", now()).unwrap();
}

/// A wave that retires version 1 while it publishes version 2: the request names the
/// retirement, the proposal drops exactly those targets, and the review shows them leave.
fn retiring_wave(kind: KeyType, retire: Retire) -> Wave {
    let mut w = wave(kind);
    w.request.retire = retire;
    edit_proposed(&mut w, |t| {
        t.targets.remove("app-1.bin");
    });
    w
}

#[test]
fn a_wave_retires_exactly_what_its_request_names() {
    let by_version = Retire {
        versions: vec!["1".into()],
        ..Retire::default()
    };
    let by_path = Retire {
        targets: vec!["app-1.bin".into()],
        ..Retire::default()
    };
    for (kind, retire) in [
        (KeyType::Ed25519, by_version.clone()),
        (KeyType::EcdsaP256, by_path.clone()),
        (KeyType::Rsa3072, by_version.clone()),
    ] {
        let w = retiring_wave(kind, retire.clone());
        check_wave(&w.request, &w.anchor, "acme", now()).unwrap();
        let review = review::wave(&w.request);
        assert!(review.contains("1 target(s) leave production"), "{review}");
        assert!(review.contains("  - app-1.bin"), "{review}");
        // The request and its response carry the retirement through the files.
        let again = crate::format::Request::from_slice(
            &crate::format::Request::Wave(Box::new(w.request.clone()))
                .to_bytes()
                .unwrap(),
        )
        .unwrap();
        let crate::format::Request::Wave(again) = again else {
            panic!("not a wave request");
        };
        assert_eq!(again.retire, retire);
    }
    // Named but kept; dropped but not named; a version nothing has; the wave's own version;
    // a path that is not a production target.
    let mut kept = wave(KeyType::Ed25519);
    kept.request.retire = by_version.clone();
    let dropped = retiring_wave(KeyType::Ed25519, Retire::default());
    let nothing = retiring_wave(
        KeyType::Ed25519,
        Retire {
            versions: vec!["1".into(), "7".into()],
            ..Retire::default()
        },
    );
    let own = retiring_wave(
        KeyType::Ed25519,
        Retire {
            versions: vec!["1".into(), "2".into()],
            ..Retire::default()
        },
    );
    let unknown = retiring_wave(
        KeyType::Ed25519,
        Retire {
            versions: vec!["1".into()],
            targets: vec!["app-9.bin".into()],
        },
    );
    for (what, w, why) in [
        ("kept", kept, "but the proposed production targets keep it"),
        ("dropped", dropped, "which the wave does not retire"),
        ("nothing", nothing, "no production target has version \"7\""),
        ("own", own, "publishes version \"2\" and retires it too"),
        (
            "unknown",
            unknown,
            "\"app-9.bin\" is not a production target",
        ),
    ] {
        let r = wave_refusal(&w);
        assert_eq!(r.check, Check::WaveKeepsTargets, "{what}: {r}");
        assert!(r.reason.contains(why), "{what}: {r}");
    }
}

#[test]
fn a_wave_request_that_is_signed_already_or_for_another_factory_is_refused() {
    let mut w = wave(KeyType::Ed25519);
    let intruder = key(KeyType::Ed25519);
    w.request.targets.sign(&intruder).unwrap();
    assert_eq!(wave_refusal(&w).check, Check::Unsigned);
    let w = wave(KeyType::Ed25519);
    let e = check_wave(&w.request, &w.anchor, "beta", now()).unwrap_err();
    assert_eq!(e.check, Check::Factory);
}

#[test]
fn a_wave_against_targets_the_online_key_did_not_sign_is_refused() {
    let mut w = wave(KeyType::Rsa3072);
    let forger = key(KeyType::Ed25519);
    w.request.ci_targets = edited(&w.request.ci_targets, |_| {});
    w.request.ci_targets.sign(&forger).unwrap();
    assert_eq!(wave_refusal(&w).check, Check::Provenance);
}

struct RootUpdate {
    anchor: Signed<Root>,
    keys: Keys,
    request: RootUpdateRequest,
}

/// A renewal of root version 1 with staged production targets, edited by `edit`.
fn root_update(kind: KeyType, edit: impl Fn(&mut Root)) -> RootUpdate {
    let keys = Keys::new(kind);
    let anchor = keys.root(1, false, 1);
    let staged = edited(&anchor, |r: &mut Root| {
        r.version = 2;
        r.expires = days(300);
        r.extra.insert(
            "x-changelog".into(),
            json!({"message": "renew", "txid": "tx"}),
        );
        edit(r);
    });
    let current = targets(3, &[("app-1.bin", ci_target("1", 1))], &[&keys.online]);
    let staged_targets = edited(&current, |t: &mut Targets| {
        t.version = 4;
        t.expires = days(60);
    });
    let request = RootUpdateRequest {
        factory: "acme".into(),
        txid: "tx".into(),
        message: "renew".into(),
        ci_chain: vec![anchor.clone()],
        prod_chain: vec![anchor.clone()],
        ci_root: staged.clone(),
        prod_root: staged,
        prod_targets: Some(staged_targets),
        current_prod_targets: current,
        server_keys: Vec::new(),
    };
    RootUpdate {
        anchor,
        keys,
        request,
    }
}

fn root_refusal(u: &RootUpdate) -> crate::Refusal {
    match check_root_update(&u.request, &u.anchor, "acme", now()) {
        Ok(_) => panic!("the root-update request was accepted"),
        Err(e) => e,
    }
}

#[test]
fn an_honest_renewal_verifies_with_every_key_type() {
    for kind in KEY_TYPES {
        let u = root_update(kind, |_| {});
        check_root_update(&u.request, &u.anchor, "acme", now()).unwrap();
        // The request survives its own file format, PEM keys and all.
        let bytes = crate::format::Request::RootUpdate(Box::new(u.request.clone()))
            .to_bytes()
            .unwrap();
        let crate::format::Request::RootUpdate(back) =
            crate::format::Request::from_slice(&bytes).unwrap()
        else {
            panic!("not a root update");
        };
        check_root_update(&back, &u.anchor, "acme", now()).unwrap();
    }
}

/// The root key of `u` spelled another way: another key ID, the same key.
fn alias(u: &RootUpdate) -> (KeyId, PublicKey) {
    let mut k = u.keys.root.public_key().clone();
    k.keyval.public = k.keyval.public.to_ascii_uppercase();
    (k.key_id(), k)
}

fn with_alias(mut u: RootUpdate, threshold: u64) -> RootUpdate {
    let (id, k) = alias(&u);
    u.request.ci_root = edited(&u.request.ci_root, |r: &mut Root| {
        r.keys.insert(id.clone(), k.clone());
        let role = r.role_mut(Role::Root).unwrap();
        role.keyids.push(id.clone());
        role.threshold = Threshold::new(threshold).unwrap();
    });
    u.request.prod_root = u.request.ci_root.clone();
    u
}

#[test]
fn one_key_under_two_ids_neither_meets_a_threshold_nor_adds_a_holder() {
    let u = with_alias(root_update(KeyType::Ed25519, |_| {}), 2);
    assert_eq!(root_refusal(&u).check, Check::ThresholdRange);
    let u = with_alias(root_update(KeyType::Ed25519, |_| {}), 1);
    assert_eq!(root_refusal(&u).check, Check::DistinctKeys);
}

#[test]
fn root_changes_the_review_does_not_show_are_refused() {
    type Edit = fn(&mut Root);
    let edits: [(&str, Edit); 4] = [
        ("consistent_snapshot", |r| {
            r.consistent_snapshot = Some(false)
        }),
        ("spec_version", |r| r.spec_version = "1.0.0".into()),
        ("field \"x-mirror\"", |r| {
            r.extra.insert("x-mirror".into(), json!("https://evil"));
        }),
        ("other fields of roles.targets", |r| {
            let t = r.role_mut(Role::Targets).unwrap();
            t.extra.insert("x-note".into(), json!(1));
        }),
    ];
    for (what, edit) in edits {
        let e = root_refusal(&root_update(KeyType::EcdsaP256, edit));
        assert_eq!(e.check, Check::ShownChanges, "{what}: {e}");
        assert!(e.reason.contains(what), "{what}: {e}");
    }
}

#[test]
fn staged_production_targets_that_change_anything_but_version_and_expiry_are_refused() {
    let mut u = root_update(KeyType::Ed25519, |_| {});
    let t = u.request.prod_targets.take().unwrap();
    u.request.prod_targets = Some(edited(&t, |t: &mut Targets| {
        t.extra.insert("x-anything".into(), json!(true));
    }));
    assert_eq!(root_refusal(&u).check, Check::ProdTargetsUnchanged);
    let mut u = root_update(KeyType::Ed25519, |_| {});
    u.request.prod_targets = Some(edited(&t, |t: &mut Targets| {
        t.targets.insert("evil.bin".into(), ci_target("6", 6));
    }));
    assert_eq!(root_refusal(&u).check, Check::ProdTargetsUnchanged);
}

#[test]
fn a_signature_made_before_an_edit_is_refused() {
    let mut u = root_update(KeyType::Rsa3072, |_| {});
    let mut signed = u.request.ci_root.clone();
    signed.sign(&u.keys.root).unwrap();
    // Edited after the holder signed: the signature stays, the bytes changed.
    let mut changed = edited(&signed, |r: &mut Root| r.expires = days(200));
    changed.signatures = signed.signatures.clone();
    u.request.ci_root = changed.clone();
    u.request.prod_root = changed;
    assert_eq!(root_refusal(&u).check, Check::SignaturesIntact);
}

#[test]
fn a_key_whose_id_is_not_its_own_is_refused() {
    let intruder = key(KeyType::EcdsaP256);
    let u = root_update(KeyType::EcdsaP256, |r| {
        // An ID the review shows, naming another key than the one listed under it.
        let id = KeyId::new("ab".repeat(32)).unwrap();
        r.keys.insert(id.clone(), intruder.public_key().clone());
        r.role_mut(Role::Root).unwrap().keyids.push(id);
    });
    assert_eq!(root_refusal(&u).check, Check::KeyIds);
}

#[test]
fn a_lying_server_cannot_make_the_signer_approve_what_it_could_sign_alone() {
    // Production is protected by the offline targets key; the update drops the threshold to
    // 1 while the server claims the offline key is its own online key.
    let keys = Keys::new(KeyType::Ed25519);
    let ci = keys.root(1, true, 1);
    let prod = {
        let mut p = edited(&keys.root(1, true, 2), |_| {});
        p.sign(&keys.root).unwrap();
        p
    };
    let staged_prod = edited(&prod, |r: &mut Root| {
        r.version = 2;
        r.extra.insert("x-changelog".into(), json!({"txid": "tx"}));
        r.role_mut(Role::Targets).unwrap().threshold = Threshold::new(1).unwrap();
    });
    let staged_ci = edited(&ci, |r: &mut Root| {
        r.version = 2;
        r.extra.insert("x-changelog".into(), json!({"txid": "tx"}));
    });
    let current_targets = targets(3, &[], &[&keys.online, &keys.offline]);
    let request = RootUpdateRequest {
        factory: "acme".into(),
        txid: "tx".into(),
        message: "m".into(),
        ci_chain: vec![ci.clone()],
        prod_chain: vec![prod],
        ci_root: staged_ci,
        prod_root: staged_prod,
        prod_targets: None,
        current_prod_targets: current_targets,
        server_keys: vec![super::held("targets", &keys.offline)],
    };
    // Production was protected by what the trusted root proves, whatever the server claims:
    // the claim only makes the new root look unprotected, which is refused.
    let e = check_root_update(&request, &ci, "acme", now()).unwrap_err();
    assert_eq!(e.check, Check::OfflineTargetsKey, "{e}");
}

#[test]
fn the_review_names_owners_as_unverified_and_escapes_control_characters() {
    let new_key = key(KeyType::Ed25519);
    let mut u = root_update(KeyType::Ed25519, |_| {});
    let id = new_key.key_id().clone();
    u.request.ci_root = edited(&u.request.ci_root, |r: &mut Root| {
        r.keys.insert(id.clone(), new_key.public_key().clone());
        r.role_mut(Role::Root).unwrap().keyids.push(id.clone());
        tx::set_owner(r, &id, "alice@laptop");
    });
    u.request.prod_root = u.request.ci_root.clone();
    let current = check_root_update(&u.request, &u.anchor, "acme", now()).unwrap();
    let text = review::root_update(&u.request, &current);
    assert!(
        text.contains(&format!("root: + key {id} (ed25519, owner alice@laptop)")),
        "{text}"
    );
    assert!(text.contains("confirm each added key ID"), "{text}");

    let u = root_update(KeyType::Ed25519, |_| {});
    let root_id = u.keys.root.key_id().clone();
    let mut r = u.request.clone();
    r.ci_root = edited(&r.ci_root, |root: &mut Root| {
        tx::set_owner(root, &root_id, "mallory\n  root: - key 00")
    });
    r.prod_root = r.ci_root.clone();
    r.message = "renew\u{1b}[2K".into();
    let current = Roots {
        ci: u.anchor.clone(),
        prod: u.anchor.clone(),
    };
    let text = review::root_update(&r, &current);
    assert!(text.contains("mallory\\u{a}  root"), "{text}");
    assert!(text.contains("message: renew\\u{1b}[2K"), "{text}");
    assert!(!text.contains('\u{1b}'), "{text}");
}

#[test]
fn a_root_signed_in_another_transaction_is_refused() {
    let mut u = root_update(KeyType::Ed25519, |_| {});
    u.request.txid = "another".into();
    let e = root_refusal(&u);
    assert_eq!(e.check, Check::Transaction, "{e}");
    assert!(
        e.reason
            .contains("made for transaction tx, not for the open transaction another"),
        "{e}"
    );
}
