//! A root key made and used only on the offline machine: `keys generate` runs in a network
//! namespace without interfaces and writes only the public part; the online machine adds it
//! to a transaction that also removes the old key; `tufctl sign`, offline again, signs with
//! the old key (the current root's threshold) and the new one (the new root's); devices
//! follow. A tampered public-key file, or one of another Factory, is refused. Root and
//! offline targets keys of every type (ed25519, P-256, RSA) go the same way, one after the
//! other on one Factory, each replacing the previous ones.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use support::e2e::*;
use support::kinds::*;
use support::*;
use tuf_core::{Role, Root, Signed, Targets};

/// `tufctl` on the offline machine: no network interfaces, an empty environment.
fn offline(args: &[&str]) -> Option<Output> {
    let works = Command::new("unshare")
        .args(["-n", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !works {
        skip(
            "`unshare -n`",
            "offline key generation (needs `unshare -n`)",
        );
        return None;
    }
    Some(
        Command::new("unshare")
            .arg("-n")
            .arg(env!("CARGO_BIN_EXE_tufctl"))
            .args(args)
            .env_clear()
            .output()
            .unwrap(),
    )
}

fn edit_json(from: &Path, to: &Path, edit: impl FnOnce(&mut Value)) {
    let mut v: Value = serde_json::from_slice(&std::fs::read(from).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(to, serde_json::to_vec(&v).unwrap()).unwrap();
}

#[test]
fn root_key_generated_and_used_only_offline() {
    let server = Server::start();
    let x = Offline::setup(&server, "keygen", "vault.tgz");
    let d = x.dir.path();
    let c = x.creds.to_str().unwrap();
    let ci_device = Device::new(&root_v1(&x.ci_base), &x.ci_base);
    let old_root = x.get("root.json");
    assert_eq!(old_root["signed"]["version"], 3);
    let old_id = role_ids(&old_root, "root")[0].clone();

    // Offline: a new root key into the vault's file; only its public part comes out.
    let pubfile = d.join("new-root.json");
    let p = pubfile.to_str().unwrap();
    let before = std::fs::read(&x.creds).unwrap();
    let Some(out) = offline(&[
        "keys",
        "generate",
        c,
        "--role",
        "root",
        "--owner",
        "vault@site-a",
        "--out",
        p,
    ]) else {
        return;
    };
    let said = ok(&out);
    assert_ne!(
        std::fs::read(&x.creds).unwrap(),
        before,
        "no key was stored"
    );
    let f: Value = serde_json::from_slice(&std::fs::read(&pubfile).unwrap()).unwrap();
    assert_eq!(f["type"], "tuf-factory/public-key");
    assert_eq!(f["role"], "root");
    assert_eq!(f["factory"], x.f.name.as_str());
    let new_id = f["keyid"].as_str().unwrap().to_owned();
    assert!(said.contains(&new_id), "{said}");
    assert!(
        !String::from_utf8_lossy(&std::fs::read(&pubfile).unwrap()).contains("private"),
        "the public-key file holds a private part"
    );
    // A second run never overwrites the public-key file.
    let again = offline(&["keys", "generate", c, "--role", "root", "--out", p]).unwrap();
    assert!(fails(&again).contains("refusing to overwrite"));

    // Online: the new key in, the old key out.
    ok(&x.updates(&["init", "-m", "root key made offline"]));
    let swapped = d.join("swapped.json");
    edit_json(&pubfile, &swapped, |v| {
        v["keyid"] = Value::String(old_id.clone());
    });
    let err = fails(&x.updates(&[
        "add-offline-key",
        "--role",
        "root",
        "--public-key",
        swapped.to_str().unwrap(),
    ]));
    assert!(err.contains("the key was swapped"), "{err}");
    let foreign = d.join("foreign.json");
    edit_json(&pubfile, &foreign, |v| {
        v["factory"] = Value::String("someone-else".into());
    });
    let err = fails(&x.updates(&[
        "add-offline-key",
        "--role",
        "root",
        "--public-key",
        foreign.to_str().unwrap(),
    ]));
    assert!(err.contains("not \"keygen\""), "{err}");
    let err = fails(&x.updates(&["add-offline-key", "--role", "targets", "--public-key", p]));
    assert!(err.contains("not a targets key"), "{err}");
    let added = ok(&x.updates(&["add-offline-key", "--role", "root", "--public-key", p]));
    assert!(added.contains(&new_id), "{added}");
    ok(&x.updates(&["remove-key", "--role", "root", &old_id[..12]]));
    let req = d.join("request.json");
    ok(&x.updates(&["export", req.to_str().unwrap()]));

    // Offline: one run signs with both keys the file holds.
    let resp = d.join("response.json");
    let before = std::fs::read(&x.creds).unwrap();
    let review = ok(&offline(&[
        "sign",
        req.to_str().unwrap(),
        "-k",
        c,
        "--out",
        resp.to_str().unwrap(),
        "--yes",
    ])
    .unwrap());
    assert_eq!(
        std::fs::read(&x.creds).unwrap(),
        before,
        "sign changed the file"
    );
    assert!(
        review.contains(&format!("root: + key {new_id}")),
        "{review}"
    );
    assert!(review.contains("vault@site-a"), "{review}");
    assert!(
        review.contains(&format!("root: - key {old_id}")),
        "{review}"
    );

    // Online: import and apply; devices follow the chain to the new key.
    ok(&x.updates(&["import", resp.to_str().unwrap()]));
    ok(&x.updates(&["apply"]));
    for query in ["", "?production=1"] {
        let root = x.get(&format!("root.json{query}"));
        assert_eq!(root["signed"]["version"], 4, "{root}");
        assert_eq!(role_ids(&root, "root"), vec![new_id.clone()]);
        let mut signers = signer_ids(&root);
        signers.sort();
        let mut want = vec![new_id.clone(), old_id.clone()];
        want.sort();
        assert_eq!(signers, want);
    }
    ci_device.refreshes();
    let stored: Value = serde_json::from_slice(
        &std::fs::read(ci_device.dir.path().join("metadata/root.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(stored["signed"]["version"], 4);
    // The file holds the new root key: it can sign the next root change on its own.
    let st = ok(&x.ctl(&["keys", "status", c]));
    assert!(st.contains(&new_id), "{st}");
}

/// The key ceremony's fully air-gapped step 2: from the credentials download, the bootstrap
/// root key (which the server also held) is replaced by a key made offline, without the
/// offline machine ever connecting; the server then destroys its copy of the bootstrap key,
/// so it can no longer sign a root on its own.
#[test]
fn bootstrap_root_taken_offline_without_a_network() {
    let server = Server::start();
    let f = create_factory(&server, "ceremony");
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("acme-creds.tgz");
    let c = creds.to_str().unwrap();
    let owner = |args: &[&str]| server.tufctl_as(&f.token, &f.name, args, &[]);
    ok(&owner(&["keys", "download", &f.credentials_url, c]));
    let api = format!("/ota/repo/{}/api/v1/user_repo", f.name);
    let bootstrap = get_json(&server, &f, &format!("{api}/root.json"));
    assert_eq!(bootstrap["signed"]["version"], 1);
    let bootstrap_id = role_ids(&bootstrap, "root")[0].clone();

    let pubfile = dir.path().join("new-root.json");
    let Some(out) = offline(&[
        "keys",
        "generate",
        c,
        "--role",
        "root",
        "--out",
        pubfile.to_str().unwrap(),
    ]) else {
        return;
    };
    ok(&out);
    let new_id = serde_json::from_slice::<Value>(&std::fs::read(&pubfile).unwrap()).unwrap()
        ["keyid"]
        .as_str()
        .unwrap()
        .to_owned();
    let up = |args: &[&str]| owner(&updates_args(args));
    ok(&up(&["init", "-m", "root offline"]));
    ok(&up(&[
        "add-offline-key",
        "--role",
        "root",
        "--public-key",
        pubfile.to_str().unwrap(),
    ]));
    ok(&up(&["remove-key", "--role", "root", &bootstrap_id[..12]]));
    let req = dir.path().join("request.json");
    ok(&up(&["export", req.to_str().unwrap()]));
    let resp = dir.path().join("response.json");
    ok(&offline(&[
        "sign",
        req.to_str().unwrap(),
        "-k",
        c,
        "--out",
        resp.to_str().unwrap(),
        "--yes",
    ])
    .unwrap());
    ok(&up(&["import", resp.to_str().unwrap()]));
    ok(&up(&["apply"]));
    let root = get_json(&server, &f, &format!("{api}/root.json"));
    assert_eq!(root["signed"]["version"], 2);
    assert_eq!(role_ids(&root, "root"), vec![new_id]);
    // The server no longer holds a root key: the next root change needs the offline key.
    ok(&up(&["init", "-m", "server alone"]));
    let err = fails(&up(&["apply"]));
    assert!(err.contains("current_root_signatures"), "{err}");
}

/// Root and offline targets keys of every type made on the offline machine, on one Factory in
/// turn (ed25519, then P-256, then RSA): each step `keys generate --key-type K` makes a new
/// root key and a new targets key offline; the online machine adds both public keys and
/// removes the previous ones in one transaction; `tufctl sign`, offline, signs it with the
/// previous root key (the current root's threshold) and the new one (the new root's) and
/// re-signs the production targets with the new targets key; after `import` and `apply` the
/// served roots list the new keys with type and scheme K and verify with tuf-core, the
/// production targets verify with the new key, devices follow, and a Wave signed with a
/// `copy-targets` file of the new key reaches production devices.
#[test]
fn root_and_targets_keys_of_every_type_generated_offline() {
    let server = Server::start();
    let x = Offline::setup(&server, "keygen-types", "vault.tgz");
    let ci = Device::new(&root_v1(&x.ci_base), &x.ci_base);
    let prod_root_v1 = root_v1(&x.prod_base);
    let prod = Device::new(&prod_root_v1, &x.prod_base);
    let mut build = add_build(&server, &x.f, x.dir.path(), "42");
    ci.installs("app-42", &build);
    x.ship_wave(x.only.to_str().unwrap(), "wave-42", "42");
    prod.installs("app-42", &build);
    let mut held = Held {
        root: role_ids(&x.get("root.json"), "root")[0].clone(),
        targets: x.offline_id.clone(),
    };
    for (step, kind) in (0u64..).zip(KINDS) {
        let Some(new) = generate_offline(&x, kind) else {
            return;
        };
        replace_through_a_request(&x, kind, &held, &new);
        let version = 4 + step;
        for root in [x.get("root.json"), x.get("root.json?production=1")] {
            assert_eq!(root["signed"]["version"], version, "{root}");
            assert_eq!(role_ids(&root, "root"), [new.root.as_str()], "{root}");
            let targets = role_ids(&root, "targets");
            assert!(targets.contains(&new.targets), "{root}");
            assert!(!targets.contains(&held.targets), "{root}");
            key_is(&root, &new.root, kind);
            key_is(&root, &new.targets, kind);
            for old in [&held.root, &held.targets] {
                assert!(root["signed"]["keys"].get(old).is_none(), "{root}");
            }
            let mut signers = signer_ids(&root);
            signers.sort();
            let mut want = vec![held.root.clone(), new.root.clone()];
            want.sort();
            assert_eq!(signers, want, "{root}");
            root_verifies(&root);
        }
        prod_targets_verify(&x, &new.targets);
        for d in [&ci, &prod] {
            d.stays_on(&format!("app-{}", 42 + step), &build);
            assert_eq!(trusted_root_version(d), version);
        }
        held = new;

        // The new targets key, copied alone, signs the next Wave.
        let only = x.dir.path().join(format!("targets-only-{}.tgz", kind.arg));
        let o = only.to_str().unwrap();
        ok(&x.ctl(&["keys", "copy-targets", x.creds.to_str().unwrap(), o]));
        assert_eq!(offline_targets_id(&only), held.targets);
        sole_private_key_is(&only, &held.targets, kind);
        let next = (43 + step).to_string();
        build = add_build(&server, &x.f, x.dir.path(), &next);
        ci.installs(&format!("app-{next}"), &build);
        x.ship_wave(o, &format!("wave-{next}"), &next);
        let t = prod_targets_verify(&x, &held.targets);
        assert!(
            t["signed"]["targets"][format!("app-{next}")].is_object(),
            "{t}"
        );
        prod.installs(&format!("app-{next}"), &build);
    }
    // A device set up now on root version 1 walks the whole chain of key types at once.
    let late = Device::new(&prod_root_v1, &x.prod_base);
    late.installs("app-45", &build);
    assert_eq!(trusted_root_version(&late), 6);
}

/// The root and offline targets key IDs the owner's file holds and the roots list.
struct Held {
    root: String,
    targets: String,
}

/// `keys generate --role root` and `--role targets` with `--key-type K`, offline, into the
/// owner's file; each public-key file names a key of type K and its owner, and holds no
/// private part. None when
/// `unshare -n` does not work (the test is skipped).
fn generate_offline(x: &Offline, kind: Kind) -> Option<Held> {
    let mut ids = Vec::new();
    for role in ["root", "targets"] {
        let out = x.dir.path().join(format!("{role}-{}.json", kind.arg));
        let owner = format!("{role}-{}@vault", kind.arg);
        let said = ok(&offline(&[
            "keys",
            "generate",
            x.creds.to_str().unwrap(),
            "--role",
            role,
            "--key-type",
            kind.arg,
            "--owner",
            &owner,
            "--out",
            out.to_str().unwrap(),
        ])?);
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(
            !text.contains("private") && !text.contains("PRIVATE"),
            "the public-key file holds a private part: {text}"
        );
        let f: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            (f["role"].as_str(), f["owner"].as_str()),
            (Some(role), Some(owner.as_str()))
        );
        assert_eq!(f["key"]["keytype"], kind.keytype, "{f}");
        assert_eq!(f["key"]["scheme"], kind.scheme, "{f}");
        let id = f["keyid"].as_str().unwrap().to_owned();
        assert!(said.contains(&id), "{said}");
        ids.push(id);
    }
    let targets = ids.pop().unwrap();
    let root = ids.pop().unwrap();
    Some(Held { root, targets })
}

/// One transaction adds the `new` keys (their public-key files) and removes the `old` ones;
/// it is exported, signed offline (the review names every change), imported and applied.
fn replace_through_a_request(x: &Offline, kind: Kind, old: &Held, new: &Held) {
    let d = x.dir.path();
    ok(&x.updates(&["init", "-m", &format!("{} keys made offline", kind.arg)]));
    for role in ["root", "targets"] {
        let file = d.join(format!("{role}-{}.json", kind.arg));
        ok(&x.updates(&[
            "add-offline-key",
            "--role",
            role,
            "--public-key",
            file.to_str().unwrap(),
        ]));
    }
    ok(&x.updates(&["remove-key", "--role", "root", &old.root[..12]]));
    ok(&x.updates(&["remove-key", "--role", "targets", &old.targets[..12]]));
    let req = d.join(format!("request-{}.json", kind.arg));
    let resp = d.join(format!("response-{}.json", kind.arg));
    ok(&x.updates(&["export", req.to_str().unwrap()]));
    let review = ok(&offline(&[
        "sign",
        req.to_str().unwrap(),
        "-k",
        x.creds.to_str().unwrap(),
        "--out",
        resp.to_str().unwrap(),
        "--yes",
    ])
    .unwrap());
    for line in [
        format!(
            "root: + key {} ({} in an offline file, owner root-{}@vault)",
            new.root, kind.arg, kind.arg
        ),
        format!(
            "targets: + key {} ({} in an offline file, owner targets-{}@vault)",
            new.targets, kind.arg, kind.arg
        ),
        format!("root: - key {}", old.root),
        format!("targets: - key {}", old.targets),
    ] {
        assert!(review.contains(&line), "missing {line:?} in\n{review}");
    }
    ok(&x.updates(&["import", resp.to_str().unwrap()]));
    ok(&x.updates(&["apply"]));
}

/// The production targets verify under the production root (threshold 2) and carry the
/// offline key `offline_id` and the online key.
fn prod_targets_verify(x: &Offline, offline_id: &str) -> Value {
    let targets = x.get("targets.json?production=1");
    let ids = signer_ids(&targets);
    assert!(ids.contains(&offline_id.to_owned()), "{ids:?}");
    let root = root_verifies(&x.get("root.json?production=1"));
    let env = Signed::<Targets>::from_slice(&serde_json::to_vec(&targets).unwrap()).unwrap();
    let v = env.verify_role(
        "targets",
        root.signed.role(Role::Targets),
        &root.signed.keys,
    );
    assert!(
        v.is_met() && v.threshold == 2,
        "production targets do not verify: {v:?}"
    );
    targets
}

/// The version of the root.json a device stores as trusted.
fn trusted_root_version(d: &Device) -> u64 {
    let bytes = std::fs::read(d.dir.path().join("metadata/root.json")).unwrap();
    Signed::<Root>::from_slice(&bytes).unwrap().signed.version
}
