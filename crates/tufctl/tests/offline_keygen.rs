//! A root key made and used only on the offline machine: `keys generate` runs in a network
//! namespace without interfaces and writes only the public part; the online machine adds it
//! to a transaction that also removes the old key; `tufctl sign`, offline again, signs with
//! the old key (the current root's threshold) and the new one (the new root's); devices
//! follow. A tampered public-key file, or one of another Factory, is refused.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use support::e2e::*;
use support::*;

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
