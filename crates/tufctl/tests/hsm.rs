//! Hardware keys end to end: root and offline targets keys generated on a SoftHSM2 token
//! (PKCS#11) through the real `tufctl`, against a real `tufd`, followed by real `tuf-agent`
//! devices. The credentials tarball records only a reference to a token key, never its
//! private part; a wrong PIN or a missing token fails clearly and changes nothing.
//!
//! Needs `TUF_TEST_PKCS11_MODULE` (e.g. /usr/lib/softhsm/libsofthsm2.so) and `softhsm2-util`;
//! without them every test says it is skipped, and fails under `CI=true`.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use support::e2e::*;
use support::softhsm::*;
use support::*;
use tuf_credentials::{Credentials, PrivatePart};

/// tufctl as the Factory's owner, with the token reachable through `conf`.
fn ctl(x: &Offline, conf: &Path, args: &[&str]) -> Output {
    ctl_env(x, conf, args, &[])
}

fn ctl_env(x: &Offline, conf: &Path, args: &[&str], more: &[(&str, &str)]) -> Output {
    let mut env = vec![("SOFTHSM2_CONF", conf.to_str().unwrap())];
    env.extend_from_slice(more);
    x.ctl_env(args, &env)
}

/// `tufctl keys tuf updates ARGS`, with the token reachable through `conf`.
fn updates(x: &Offline, conf: &Path, args: &[&str]) -> Output {
    ctl(x, conf, &updates_args(args))
}

/// `keys rotate-root` onto a new key on `token`, with the PIN in `pin_file`.
fn rotate_root_onto<'a>(token: &'a Token, pin_file: &'a str, creds: &'a str) -> Vec<&'a str> {
    vec![
        "keys",
        "rotate-root",
        "--pkcs11",
        &token.module,
        "--slot",
        &token.label,
        "--pin-file",
        pin_file,
        creds,
    ]
}

/// The row of `keys status --json` output `st` for `keyid`.
fn status_row(st: &Value, keyid: &str) -> Value {
    st["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["keyid"] == keyid)
        .unwrap()
        .clone()
}

/// The keys of the tarball at `path` that live on a token.
fn token_keys(path: &Path) -> Vec<tuf_credentials::StoredKey> {
    Credentials::read(&std::fs::read(path).unwrap())
        .unwrap()
        .keys()
        .unwrap()
        .into_iter()
        .filter(|k| matches!(k.private, PrivatePart::Token { .. }))
        .collect()
}

/// A failed command changed nothing: the tarball keeps `before`, the server `roots_before`.
fn nothing_changed(x: &Offline, before: &[u8], roots_before: &(Value, Value)) {
    assert_eq!(std::fs::read(&x.creds).unwrap(), before, "tarball changed");
    assert_eq!(&server_roots(x), roots_before, "server roots changed");
}

/// The current CI and production root.json as devices download them.
fn current_roots(x: &Offline) -> (Vec<u8>, Vec<u8>) {
    let fetch = |base: &str, query: &str| {
        let v = x.get(&format!("root.json{query}"));
        let version = v["signed"]["version"].as_u64().unwrap();
        let (status, bytes) = http_get(&format!("{base}/metadata/{version}.root.json"));
        assert_eq!(status, 200);
        bytes
    };
    (fetch(&x.ci_base, ""), fetch(&x.prod_base, "?production=1"))
}

/// The server's roots as served, to show a failed command changed nothing.
fn server_roots(x: &Offline) -> (Value, Value) {
    (x.get("root.json"), x.get("root.json?production=1"))
}

/// Both roots on the server have `root_id`, of `keytype`, as their only root key; returns them.
fn roots_held_by(x: &Offline, root_id: &str, keytype: &str) -> (Value, Value) {
    let (ci_root, prod_root) = server_roots(x);
    for r in [&ci_root, &prod_root] {
        assert_eq!(role_ids(r, "root"), [root_id]);
        assert_eq!(r["signed"]["keys"][root_id]["keytype"], keytype);
    }
    (ci_root, prod_root)
}

/// The key the tarball at `path` stores for `keyid`: it must be a token key recorded as
/// `.pub` + `.pkcs11`, with no `.sec` anywhere for it.
fn assert_token_key_only(path: &Path, keyid: &str, label: &str) {
    let c = Credentials::read(&std::fs::read(path).unwrap()).unwrap();
    let k = c
        .keys()
        .unwrap()
        .into_iter()
        .find(|k| k.key_id().as_str() == keyid)
        .unwrap_or_else(|| panic!("key {keyid} not in {}", path.display()));
    assert!(
        matches!(&k.private, PrivatePart::Token { label: l, .. } if l == label),
        "{:?}",
        k.private
    );
    assert!(!k.has_private);
    let names: Vec<&str> = c.entry_names().collect();
    let base = format!("tufrepo/keys/{}", k.name);
    assert!(names.contains(&format!("{base}.pub").as_str()), "{names:?}");
    assert!(
        names.contains(&format!("{base}.pkcs11").as_str()),
        "{names:?}"
    );
    assert!(
        !names.contains(&format!("{base}.sec").as_str()),
        "{names:?}"
    );
    assert!(c.private_key(&k.name).is_err());
    // The reference holds where the key is, nothing secret.
    let r: Value = serde_json::from_slice(&c.token_key_ref(&k.name).unwrap()).unwrap();
    let mut fields: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
    fields.sort();
    assert_eq!(
        fields,
        [
            "id",
            "keytype",
            "label",
            "module",
            "scheme",
            "token_label",
            "token_serial"
        ]
    );
    assert_eq!(r["token_label"], label);
}

/// python-tuf (the independent implementation) checks that `root` meets its own root
/// threshold, i.e. accepts the token's signatures. Needs `TUF_TEST_PYTHON` like tuf-core's
/// interop tests: said and skipped without it, a failure under `CI=true`.
fn python_tuf_accepts(root: &Value, keyid: &str, scheme: &str) {
    let Some(python) = setting(
        "TUF_TEST_PYTHON",
        "a python with python-tuf, to check the token-signed root",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("root.json");
    std::fs::write(&file, serde_json::to_vec(root).unwrap()).unwrap();
    let peer = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tuf-core/tests/python/peer.py");
    let out = Command::new(python)
        .arg(peer)
        .arg("verify-root")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python-tuf refused the root: {}{}",
        stdout(&out),
        stderr(&out)
    );
    let report = json(&stdout(&out));
    assert_eq!(report["verified"], true, "{report}");
    assert_eq!(report["root_keys"][keyid], scheme, "{report}");
}

/// (a), (d), (e): the root moves onto an ed25519 token key; devices set up on the old root
/// follow; a wrong PIN and a missing token fail clearly and change nothing; the key can be
/// used but never exported.
#[test]
fn root_key_on_an_ed25519_token() {
    let Some(token) = Token::new("tuf-root") else {
        return;
    };
    let server = Server::start();
    let x = Offline::setup(&server, "hsm-root", "creds.tgz");
    let (c, o) = (x.creds.to_str().unwrap(), x.only.to_str().unwrap());
    let conf = token.conf.as_path();
    let (ci_old, prod_old) = current_roots(&x);
    let ci_device = Device::new(&ci_old, &x.ci_base);
    let prod_device = Device::new(&prod_old, &x.prod_base);

    let pin = token.pin_file.to_str().unwrap();
    // --slot without the module to find it in: refused before anything is generated.
    let before = std::fs::read(&x.creds).unwrap();
    let err = fails(&ctl(
        &x,
        conf,
        &[
            "keys",
            "rotate-root",
            "--slot",
            &token.label,
            "--pin-file",
            pin,
            c,
        ],
    ));
    assert!(err.contains("--slot needs --pkcs11 MODULE"), "{err}");
    assert_eq!(std::fs::read(&x.creds).unwrap(), before);
    let rotate = [&["--json"][..], &rotate_root_onto(&token, pin, c)].concat();
    let out = ok(&ctl(&x, conf, &rotate));
    let v = json(&out);
    let root_id = v["root_keyid"].as_str().unwrap().to_owned();
    assert!(v["key_file"].as_str().unwrap().ends_with(".pkcs11"), "{v}");
    assert!(v["token"].as_str().unwrap().contains("tuf-root"), "{v}");
    let (ci_root, prod_root) = roots_held_by(&x, &root_id, "ed25519");
    assert_token_key_only(&x.creds, &root_id, "tuf-root");
    python_tuf_accepts(&ci_root, &root_id, "ed25519");
    python_tuf_accepts(&prod_root, &root_id, "ed25519");

    // Devices set up on the old root follow the chain and keep updating.
    let v2 = add_build(&server, &x.f, x.dir.path(), "2");
    ci_device.installs("app-2", &v2);
    ok(&ctl(
        &x,
        conf,
        &["waves", "init", "-k", o, "wave-2", "2", "production"],
    ));
    ok(&ctl(&x, conf, &["waves", "complete", "wave-2"]));
    prod_device.installs("app-2", &v2);

    // `keys status` says where the key is and that the token is there.
    let st = json(&ok(&ctl(&x, conf, &["--json", "keys", "status", c])));
    let row = status_row(&st, &root_id);
    assert_eq!(row["location"], "token", "{row}");
    assert_eq!(row["token"]["label"], "tuf-root");
    assert_eq!(row["token"]["reachable"], true, "{row}");
    assert_eq!(st["holds_active_root_key"], true);
    let human = ok(&ctl(&x, conf, &["keys", "status", c]));
    assert!(
        human.contains("on token tuf-root (serial ") && human.contains("reachable now"),
        "{human}"
    );

    // Export and paper backup refuse: the key never leaves the token.
    let err = fails(&ctl(&x, conf, &["keys", "export-root", c]));
    assert!(err.contains("this key never leaves the token"), "{err}");
    assert!(err.contains("second root key holder"), "{err}");
    let shares_dir = x.dir.path().join("shares");
    let err = fails(&ctl(
        &x,
        conf,
        &[
            "keys",
            "backup",
            c,
            "--shares",
            "3",
            "--threshold",
            "2",
            "--out",
            shares_dir.to_str().unwrap(),
        ],
    ));
    assert!(err.contains("this key never leaves the token"), "{err}");

    // (d) A wrong PIN: non-zero exit, a clear message, nothing changed anywhere.
    let before = std::fs::read(&x.creds).unwrap();
    let roots_before = server_roots(&x);
    let wrong = token.wrong_pin_file.to_str().unwrap();
    for args in [
        vec!["keys", "rotate-targets", "--pin-file", wrong, c],
        rotate_root_onto(&token, wrong, c),
    ] {
        let err = fails(&ctl(&x, conf, &args));
        assert!(
            err.contains("the PIN for token \"tuf-root\"") && err.contains("was refused"),
            "{err}"
        );
        assert!(
            !err.contains("9999"),
            "the PIN must never be printed: {err}"
        );
        nothing_changed(&x, &before, &roots_before);
    }
    // No PIN at all and no terminal to ask on: said so, nothing changed.
    let err = fails(&ctl(&x, conf, &["keys", "rotate-targets", c]));
    assert!(
        err.contains("--pin-file") && err.contains("TUFCTL_PKCS11_PIN"),
        "{err}"
    );
    assert_eq!(std::fs::read(&x.creds).unwrap(), before);

    // (e) The token is removed after the key was generated.
    let gone = token.removed_conf();
    let serial = row["token"]["serial"].as_str().unwrap().to_owned();
    ok(&updates(&x, &gone, &["init", "-m", "renew"]));
    let tx_before = x.get("root/updates");
    for args in [
        updates_args(&["sign", "-k", c, "--pin-file", pin]),
        vec![
            "keys",
            "rotate-targets",
            "--cancel-open",
            "--pin-file",
            pin,
            c,
        ],
    ] {
        let err = fails(&ctl(&x, &gone, &args));
        assert!(
            err.contains("\"tuf-root\"") && err.contains(&serial) && err.contains("insert"),
            "the error must name the token to insert: {err}"
        );
        nothing_changed(&x, &before, &roots_before);
    }
    let tx_after = x.get("root/updates");
    assert_eq!(tx_after["txid"], tx_before["txid"]);
    assert_eq!(
        tx_after["ci_root"]["signatures"],
        tx_before["ci_root"]["signatures"]
    );
    let st = json(&ok(&ctl(&x, &gone, &["--json", "keys", "status", c])));
    let row = status_row(&st, &root_id);
    assert_eq!(row["token"]["reachable"], false, "{row}");
    assert!(
        row["token"]["problem"].as_str().unwrap().contains("insert"),
        "{row}"
    );

    // With the token back, the open transaction is signed by the token key and applied.
    let out = ok(&updates(&x, conf, &["sign", "-k", c, "--pin-file", pin]));
    assert!(out.contains("signed CI root with"), "{out}");
    ok(&updates(&x, conf, &["apply"]));
    let (ci_root, _) = server_roots(&x);
    assert!(ci_root["signed"]["version"].as_u64() > roots_before.0["signed"]["version"].as_u64());
    let v3 = add_build(&server, &x.f, x.dir.path(), "3");
    ci_device.installs("app-3", &v3);
}

/// (b) The offline targets key moves onto an ECDSA P-256 token key; its targets-only copy
/// carries the reference; a production Wave signed on the token reaches production devices.
/// The module path recorded at generation can be overridden at use time with --pkcs11.
#[test]
fn offline_targets_key_on_an_ecdsa_token() {
    let Some(token) = Token::new("tuf-targets") else {
        return;
    };
    let server = Server::start();
    let x = Offline::setup(&server, "hsm-targets", "creds.tgz");
    let c = x.creds.to_str().unwrap();
    let conf = token.conf.as_path();
    let (_, prod_old) = current_roots(&x);
    let prod_device = Device::new(&prod_old, &x.prod_base);

    // Generated through a module path that exists only for now, as on another machine.
    let lib_dir = x.dir.path().join("lib");
    std::fs::create_dir(&lib_dir).unwrap();
    let moved = lib_dir.join("libsofthsm2.so");
    std::os::unix::fs::symlink(&token.module, &moved).unwrap();
    let out = ok(&ctl_env(
        &x,
        conf,
        &[
            "--json",
            "keys",
            "rotate-targets",
            "--pkcs11",
            moved.to_str().unwrap(),
            "--slot",
            &token.label,
            "--key-type",
            "ecdsa",
            c,
        ],
        &[("TUFCTL_PKCS11_PIN", PIN)],
    ));
    let targets_id = json(&out)["targets_keyid"].as_str().unwrap().to_owned();
    assert_token_key_only(&x.creds, &targets_id, "tuf-targets");
    let (_, prod_root) = server_roots(&x);
    assert_eq!(
        prod_root["signed"]["keys"][&targets_id]["scheme"],
        "ecdsa-sha2-nistp256"
    );
    assert_eq!(prod_root["signed"]["roles"]["targets"]["threshold"], 2);

    // The targets-only copy holds the reference, not a private key.
    let only2 = x.dir.path().join("targets-only-hsm.tgz");
    let o2 = only2.to_str().unwrap();
    ok(&ctl(&x, conf, &["keys", "copy-targets", c, o2]));
    assert_eq!(offline_targets_id(&only2), targets_id);
    assert_token_key_only(&only2, &targets_id, "tuf-targets");

    let v7 = add_build(&server, &x.f, x.dir.path(), "7");
    // The recorded module is gone from this "machine": a clear error naming it ...
    std::fs::remove_file(&moved).unwrap();
    let wave = ["waves", "init", "-k", o2, "wave-7", "7", "production"];
    let err = fails(&ctl_env(&x, conf, &wave, &[("TUFCTL_PKCS11_PIN", PIN)]));
    assert!(
        err.contains("cannot load the PKCS#11 module") && err.contains(moved.to_str().unwrap()),
        "{err}"
    );
    // ... and --pkcs11 names where it is here.
    let mut with_module = wave.to_vec();
    with_module.extend(["--pkcs11", token.module.as_str()]);
    ok(&ctl_env(
        &x,
        conf,
        &with_module,
        &[("TUFCTL_PKCS11_PIN", PIN)],
    ));
    ok(&ctl(&x, conf, &["waves", "complete", "wave-7"]));
    let prod_targets = x.get("targets.json?production=1");
    let signers = signer_ids(&prod_targets);
    assert!(signers.contains(&targets_id), "{signers:?}");
    assert_eq!(signers.len(), 2, "token key and online key: {signers:?}");
    prod_device.installs("app-7", &v7);
}

/// (c) The root moves onto an ECDSA P-256 token key chosen by slot ID, and then signs a
/// further root change (a targets rotation); a CI device on the old root follows.
#[test]
fn root_key_on_an_ecdsa_token_by_slot_id() {
    let Some(token) = Token::new("tuf-root-ec") else {
        return;
    };
    let server = Server::start();
    let x = Offline::setup(&server, "hsm-root-ec", "creds.tgz");
    let c = x.creds.to_str().unwrap();
    let conf = token.conf.as_path();
    let (ci_old, _) = current_roots(&x);
    let ci_device = Device::new(&ci_old, &x.ci_base);
    let pin = token.pin_file.to_str().unwrap();
    let slot = token.slot_id();
    let out = ok(&ctl(
        &x,
        conf,
        &[
            "--json",
            "--pkcs11",
            &token.module,
            "--pin-file",
            pin,
            "keys",
            "rotate-root",
            "--slot",
            &slot,
            "--key-type",
            "ecdsa",
            c,
        ],
    ));
    let root_id = json(&out)["root_keyid"].as_str().unwrap().to_owned();
    let (ci_root, _) = roots_held_by(&x, &root_id, "ecdsa");
    assert_token_key_only(&x.creds, &root_id, "tuf-root-ec");
    // The new root is signed by the token key, verifiably.
    let env =
        tuf_core::Signed::<tuf_core::Root>::from_slice(&serde_json::to_vec(&ci_root).unwrap())
            .unwrap();
    let r = &env.signed;
    assert!(env
        .verify_role("root", r.role(tuf_core::Role::Root), &r.keys)
        .is_met());
    python_tuf_accepts(&ci_root, &root_id, "ecdsa-sha2-nistp256");

    // The token root key signs the next root change.
    ok(&ctl(
        &x,
        conf,
        &["keys", "rotate-targets", "--pin-file", pin, c],
    ));
    let (ci_root2, _) = server_roots(&x);
    assert_eq!(
        ci_root2["signed"]["version"].as_u64().unwrap(),
        ci_root["signed"]["version"].as_u64().unwrap() + 1
    );
    assert_eq!(signer_ids(&ci_root2), [root_id.as_str()]);
    let v5 = add_build(&server, &x.f, x.dir.path(), "5");
    ci_device.installs("app-5", &v5);
}

/// A second root key holder whose key is generated on a token (`keys tuf updates
/// add-offline-key --slot`): their new tarball holds only the reference, their token signs
/// the transaction, and the root then needs both holders.
#[test]
fn second_root_holder_on_a_token() {
    let Some(token) = Token::new("tuf-holder") else {
        return;
    };
    let server = Server::start();
    let x = Offline::setup(&server, "hsm-holder", "alice.tgz");
    let a = x.creds.to_str().unwrap();
    let bob = x.dir.path().join("bob.tgz");
    let b = bob.to_str().unwrap();
    let conf = token.conf.as_path();
    let pin = token.pin_file.to_str().unwrap();
    let up = |args: &[&str]| updates(&x, conf, args);
    ok(&up(&["init", "-m", "bob joins with a hardware key"]));
    ok(&up(&["set-threshold", "--role", "root", "2"]));
    let out = ok(&up(&[
        "add-offline-key",
        "--role",
        "root",
        "--pkcs11",
        &token.module,
        "--slot",
        &token.label,
        "--pin-file",
        pin,
        "--owner",
        "bob@desk",
        "-k",
        b,
    ]));
    assert!(out.contains(".pkcs11"), "{out}");
    let c = Credentials::read(&std::fs::read(&bob).unwrap()).unwrap();
    let keys = c.keys().unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let bob_id = keys[0].key_id().as_str().to_owned();
    assert_token_key_only(&bob, &bob_id, "tuf-holder");

    ok(&up(&["sign", "-k", a]));
    ok(&up(&["apply"]));
    let (ci_root, prod_root) = server_roots(&x);
    for r in [&ci_root, &prod_root] {
        assert_eq!(r["signed"]["roles"]["root"]["threshold"], 2);
        assert!(role_ids(r, "root").contains(&bob_id), "{r}");
        assert!(signer_ids(r).contains(&bob_id), "{r}");
    }
}

/// Nothing is lost with a token key either: a rotation refused after the key was generated
/// leaves its reference in the tarball (saved before the server heard of it), and a re-run
/// reuses that key instead of generating another.
#[test]
fn interrupted_rotation_onto_a_token_reuses_the_pending_key() {
    let Some(token) = Token::new("tuf-pending") else {
        return;
    };
    let server = Server::start();
    let x = Offline::setup(&server, "hsm-pending", "creds.tgz");
    let c = x.creds.to_str().unwrap();
    let conf = token.conf.as_path();
    let pin = token.pin_file.to_str().unwrap();
    let rotate = [&["--json"][..], &rotate_root_onto(&token, pin, c)].concat();
    // Another holder's transaction is open: the server refuses to open ours, after the new
    // key was generated on the token and its reference saved.
    ok(&updates(&x, conf, &["init", "-m", "someone else"]));
    let roots_before = server_roots(&x);
    let err = fails(&ctl(&x, conf, &rotate));
    assert!(err.contains("pending key"), "{err}");
    assert_eq!(server_roots(&x), roots_before);
    let pending = token_keys(&x.creds);
    assert_eq!(pending.len(), 1, "{pending:?}");
    let pending_id = pending[0].key_id().as_str().to_owned();
    assert_token_key_only(&x.creds, &pending_id, "tuf-pending");

    ok(&updates(&x, conf, &["cancel"]));
    let out = ctl(&x, conf, &rotate);
    let v = json(&ok(&out));
    assert_eq!(v["root_keyid"], pending_id.as_str(), "{v}");
    assert_eq!(v["reused_pending_key"], true, "{v}");
    assert!(
        stderr(&out).contains("reusing the pending root key"),
        "{}",
        stderr(&out)
    );
    let (ci_root, _) = server_roots(&x);
    assert_eq!(role_ids(&ci_root, "root"), [pending_id.as_str()]);
    assert_eq!(token_keys(&x.creds).len(), 1, "no second key was generated");
}

/// A token key signs on the air-gapped machine: `tufctl sign` in a network namespace without
/// interfaces, with an empty environment but for the token's configuration, opens the key
/// on the token; the response is imported and applied online. A wrong PIN there writes no
/// response.
#[test]
fn token_key_signs_a_request_offline() {
    let Some(token) = Token::new("tuf-airgap") else {
        return;
    };
    let unshare = Command::new("unshare").args(["-n", "true"]).status();
    if !unshare.is_ok_and(|s| s.success()) {
        skip("`unshare -n` must work", "`unshare -n` is not available");
        return;
    }
    let server = Server::start();
    let x = Offline::setup(&server, "hsm-airgap", "creds.tgz");
    let c = x.creds.to_str().unwrap();
    let conf = token.conf.as_path();
    let pin = token.pin_file.to_str().unwrap();
    let module = token.module.as_str();
    ok(&ctl(&x, conf, &rotate_root_onto(&token, pin, c)));
    let (ci_root, _) = server_roots(&x);
    let version = ci_root["signed"]["version"].as_u64().unwrap();
    let token_id = role_ids(&ci_root, "root")[0].clone();
    assert_token_key_only(&x.creds, &token_id, "tuf-airgap");

    let req = x.dir.path().join("request.json");
    let resp = x.dir.path().join("response.json");
    ok(&ctl(
        &x,
        conf,
        &[
            "keys",
            "resign-root",
            c,
            "--expires-days",
            "200",
            "--export",
            req.to_str().unwrap(),
        ],
    ));
    let offline_sign = |pin_file: &str| {
        Command::new("unshare")
            .arg("-n")
            .arg(env!("CARGO_BIN_EXE_tufctl"))
            .args(["sign", req.to_str().unwrap(), "-k", c])
            .args(["--out", resp.to_str().unwrap(), "--yes"])
            .args(["--pkcs11", module, "--pin-file", pin_file])
            .env_clear()
            .env("SOFTHSM2_CONF", conf)
            .output()
            .unwrap()
    };
    let before = std::fs::read(&x.creds).unwrap();
    let err = fails(&offline_sign(token.wrong_pin_file.to_str().unwrap()));
    assert!(err.contains("was refused"), "{err}");
    assert!(!resp.exists(), "a response was written with a wrong PIN");
    ok(&offline_sign(pin));
    assert_eq!(
        std::fs::read(&x.creds).unwrap(),
        before,
        "sign changed the file"
    );

    ok(&updates(&x, conf, &["import", resp.to_str().unwrap()]));
    ok(&updates(&x, conf, &["apply"]));
    let (ci_root, prod_root) = server_roots(&x);
    for r in [&ci_root, &prod_root] {
        assert_eq!(r["signed"]["version"].as_u64(), Some(version + 1), "{r}");
        assert_eq!(signer_ids(r), vec![token_id.clone()], "{r}");
    }
}

/// A credentials file is an input: the PKCS#11 module its `.pkcs11` reference names is
/// loaded (its code run) only from a system location, owned by root and writable by nobody
/// else. A key generated through a copy of the module in a temporary directory records that
/// copy; later commands without `--pkcs11` refuse to load it, say to pass `--pkcs11`, and
/// change nothing; with `--pkcs11` naming the installed module they work.
#[test]
fn a_module_recorded_outside_a_system_location_is_not_loaded() {
    let Some(token) = Token::new("tuf-planted") else {
        return;
    };
    let server = Server::start();
    let x = Offline::setup(&server, "hsm-planted", "creds.tgz");
    let c = x.creds.to_str().unwrap();
    let conf = token.conf.as_path();
    let pin = token.pin_file.to_str().unwrap();
    let lib_dir = x.dir.path().join("lib");
    std::fs::create_dir(&lib_dir).unwrap();
    let planted = lib_dir.join("libsofthsm2.so");
    std::fs::copy(&token.module, &planted).unwrap();
    let p = planted.to_str().unwrap();

    // Named by the user with --pkcs11, the copy is loaded, and recorded with the key.
    let mut rotate = rotate_root_onto(&token, pin, c);
    rotate[3] = p;
    let out = ok(&ctl(&x, conf, &[&["--json"][..], &rotate].concat()));
    let root_id = json(&out)["root_keyid"].as_str().unwrap().to_owned();
    assert_token_key_only(&x.creds, &root_id, "tuf-planted");
    let cr = Credentials::read(&std::fs::read(&x.creds).unwrap()).unwrap();
    let name = format!("tufctl-root-{root_id}");
    let r: Value = serde_json::from_slice(&cr.token_key_ref(&name).unwrap()).unwrap();
    assert_eq!(r["module"], p, "{r}");
    let roots_before = roots_held_by(&x, &root_id, "ed25519");
    let refused = |err: &str| {
        assert!(
            err.contains("cannot load the PKCS#11 module")
                && err.contains(p)
                && err.contains("system location")
                && err.contains("pass --pkcs11 MODULE"),
            "{err}"
        );
        assert!(
            err.contains("is writable by other users") || err.contains("is not owned by root"),
            "the refusal must say why the location is not a system one: {err}"
        );
    };

    // `keys status` does not load it: the token is reported unreachable, saying why.
    let st = json(&ok(&ctl(&x, conf, &["--json", "keys", "status", c])));
    let row = status_row(&st, &root_id);
    assert_eq!(row["token"]["reachable"], false, "{row}");
    refused(row["token"]["problem"].as_str().unwrap());
    let st = json(&ok(&ctl(
        &x,
        conf,
        &["--json", "--pkcs11", &token.module, "keys", "status", c],
    )));
    assert_eq!(status_row(&st, &root_id)["token"]["reachable"], true);

    // Signing an open transaction: refused without --pkcs11, nothing changed anywhere.
    ok(&updates(&x, conf, &["init", "-m", "renew"]));
    let tx_before = x.get("root/updates");
    let before = std::fs::read(&x.creds).unwrap();
    let err = fails(&updates(&x, conf, &["sign", "-k", c, "--pin-file", pin]));
    refused(&err);
    nothing_changed(&x, &before, &roots_before);
    let tx_after = x.get("root/updates");
    assert_eq!(tx_after["txid"], tx_before["txid"]);
    for doc in ["ci_root", "prod_root"] {
        assert_eq!(tx_after[doc]["signatures"], tx_before[doc]["signatures"]);
    }

    // With --pkcs11 naming the installed module, the same key signs and the update applies.
    let out = ok(&updates(
        &x,
        conf,
        &[
            "sign",
            "-k",
            c,
            "--pin-file",
            pin,
            "--pkcs11",
            &token.module,
        ],
    ));
    assert!(out.contains("signed CI root with"), "{out}");
    ok(&updates(&x, conf, &["apply"]));
    let (ci_root, prod_root) = server_roots(&x);
    for (r, old) in [(&ci_root, &roots_before.0), (&prod_root, &roots_before.1)] {
        assert_eq!(
            r["signed"]["version"].as_u64().unwrap(),
            old["signed"]["version"].as_u64().unwrap() + 1
        );
        assert_eq!(signer_ids(r), [root_id.as_str()]);
    }
}
