//! Private keys stay secret and alone do not suffice:
//! - no private key (any key a credentials file held along the way: the bootstrap root key,
//!   the offline root and targets keys) appears in the output of any `tufctl keys` command,
//!   human or `--json`, stdout or stderr;
//! - the offline targets key alone cannot publish to production devices: a mirror serving
//!   production targets signed only with it is refused by a real `tuf-agent` (the production
//!   targets threshold also needs the server's online key).

mod support;

use std::process::Output;

use support::e2e::*;
use support::*;
use tuf_core::{PrivateKey, Signed, Signer as _, Snapshot, Targets};
use tuf_credentials::Credentials;

/// Every private key the credentials file at `path` holds.
fn private_keys(path: &std::path::Path) -> Vec<PrivateKey> {
    let c = Credentials::read(&std::fs::read(path).unwrap()).unwrap();
    c.keys()
        .unwrap()
        .into_iter()
        .filter(|k| k.has_private)
        .map(|k| c.private_key(&k.name).unwrap())
        .collect()
}

/// The spellings of `key` that would give it away: the PEM body lines and the DER in hex.
fn spellings(key: &PrivateKey) -> Vec<String> {
    let pem = key.to_pkcs8_pem();
    let mut out: Vec<String> = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::to_owned)
        .collect();
    out.push(hex::encode(key.pkcs8_der()));
    out
}

#[test]
fn no_keys_command_prints_a_private_key() {
    let server = Server::start();
    let f = create_factory(&server, "quiet");
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("creds.tgz");
    let only = dir.path().join("targets-only.tgz");
    let c = creds.to_str().unwrap();
    let mut outputs: Vec<(String, Output)> = Vec::new();
    let mut keys: Vec<PrivateKey> = Vec::new();
    let mut run = |args: &[&str], keys_now: bool| {
        let out = server.tufctl_as(&f.token, &f.name, args, &[]);
        ok(&out);
        outputs.push((args.join(" "), out));
        if keys_now {
            keys.extend(private_keys(&creds));
        }
    };
    run(&["keys", "download", &f.credentials_url, c], true);
    run(&["keys", "status", c], false);
    run(&["--json", "keys", "status", c], false);
    run(&["keys", "rotate-root", c], true);
    run(&["--json", "keys", "rotate-targets", c], true);
    run(&["keys", "copy-targets", c, only.to_str().unwrap()], false);
    run(&["keys", "show-root"], false);
    // Into the test's directory: without --out it writes <name>.sec in the working directory,
    // which would leave a root key in the source tree.
    let exported = dir.path().join("root-key.sec");
    run(
        &[
            "keys",
            "export-root",
            "--out",
            exported.to_str().unwrap(),
            c,
        ],
        false,
    );
    let public = dir.path().join("new-targets.pub");
    run(
        &[
            "keys",
            "generate",
            "--role",
            "targets",
            "--out",
            public.to_str().unwrap(),
            c,
        ],
        true,
    );
    let shares = dir.path().join("shares");
    run(
        &[
            "keys",
            "backup",
            "--shares",
            "3",
            "--threshold",
            "2",
            "--out",
            shares.to_str().unwrap(),
            c,
        ],
        false,
    );
    run(&["--json", "keys", "rotate-online", c], false);
    // A refused command's message names the file, never its contents.
    let refused = server.tufctl_as(
        &f.token,
        &f.name,
        &["keys", "rotate-root", "missing.tgz"],
        &[],
    );
    let err = fails(&refused);
    assert!(
        err.contains("cannot read the credentials file missing.tgz"),
        "{err}"
    );
    outputs.push(("keys rotate-root missing.tgz".to_owned(), refused));

    assert!(
        keys.len() >= 4,
        "bootstrap root, offline root and targets, generated targets"
    );
    for key in &keys {
        for secret in spellings(key) {
            for (command, out) in &outputs {
                let said = format!("{}{}", stdout(out), stderr(out));
                assert!(
                    !said.contains(&secret),
                    "`tufctl {command}` printed private key {}",
                    key.key_id()
                );
            }
        }
    }
}

#[test]
fn the_offline_targets_key_alone_cannot_publish_to_production_devices() {
    let server = Server::start();
    let x = Offline::setup(&server, "stolen-targets", "creds.tgz");
    let dir = tempfile::tempdir().unwrap();
    add_build(&server, &x.f, dir.path(), "1.0");
    x.ship_wave(x.only.to_str().unwrap(), "w1", "1.0");
    add_build(&server, &x.f, dir.path(), "2.0");
    // What the thief holds: the targets-only file, i.e. the offline targets key alone.
    let stolen = private_keys(&x.only);
    assert_eq!(stolen.len(), 1);
    assert_eq!(stolen[0].key_id().as_str(), x.offline_id);

    // The production targets at the version the genuine snapshot lists, with the thief's
    // own build (2.0) under the released name, signed with the stolen key and served at the
    // length the snapshot lists. Without the online keys that is all the
    // thief can change: timestamp and snapshot stay genuine.
    let prod = |file: &str| {
        let (status, body) = http_get(&format!("{}/metadata/{file}", x.prod_base));
        assert_eq!(status, 200, "{file}");
        body
    };
    let snapshot: Signed<Snapshot> = Signed::from_slice(&prod("snapshot.json")).unwrap();
    let listed = snapshot.signed.meta["targets.json"].version;
    let genuine: Signed<Targets> = Signed::from_slice(&prod("targets.json")).unwrap();
    assert_eq!(genuine.signed.version, listed);
    let ci: Signed<Targets> =
        Signed::from_slice(&http_get(&format!("{}/metadata/targets.json", x.ci_base)).1).unwrap();
    let mut evil = genuine.signed.clone();
    evil.targets
        .insert("app-1.0".to_owned(), ci.signed.targets["app-2.0"].clone());
    let mut forged = Signed::new(evil).unwrap();
    forged.sign(&stolen[0]).unwrap();
    let length = snapshot.signed.meta["targets.json"].length.unwrap();

    let path = format!("/repo/{}/prod/metadata/{listed}.targets.json", x.f.name);
    let mirror = proxy(
        server.url.clone(),
        Some((path, padded(forged.to_bytes(), length))),
    );
    let device = Device::new(
        &root_v1(&x.prod_base),
        &format!("{mirror}/repo/{}/prod", x.f.name),
    );
    let out = device.update();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "targets: role targets: 1 valid signature(s) from distinct trusted keys, threshold is 2"
        ),
        "{}",
        stderr(&out)
    );
    assert!(!device.installed_path().exists());
    assert!(!device.dir.path().join("metadata/targets.json").exists());

    // The same device on the genuine server trusts the genuine production targets.
    let honest = Device {
        dir: device.dir,
        metadata_url: format!("{}/metadata/", x.prod_base),
        target_base_url: format!("{}/targets/", x.prod_base),
    };
    honest.refreshes();
    assert_eq!(
        std::fs::read(honest.dir.path().join("metadata/targets.json")).unwrap(),
        prod("targets.json")
    );
}
