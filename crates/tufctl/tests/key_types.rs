//! The key-type matrix, end to end on a real `tufd` (SQLite, and PostgreSQL when
//! `TUFD_TEST_DATABASE_URL` is set): every flow of an offline key, run with root, holder and
//! offline targets keys of one type, for ed25519, ECDSA P-256 and RSA, and with P-256 keys on
//! a SoftHSM2 token. One Factory per key type walks through:
//!
//! 1. `keys rotate-root --key-type K` and `keys rotate-targets --key-type K`;
//! 2. a Wave signed here (`waves init -k`, `complete`) and renewed (`waves resign`);
//! 3. a second root holder (`keys tuf updates add-offline-key --key-type K`) and a 2-of-2
//!    root (`set-threshold`), each holder signing online, `apply` refused until both have;
//! 4. that holder removed again (`remove-key`, threshold back to 1) through `export` →
//!    `tufctl sign` by each holder on an offline machine (`unshare -n`, empty environment;
//!    one response also as a QR code, imported as its payload text) → `import` → `apply`;
//! 5. `keys resign-root` signed here, then `keys resign-root --export` signed offline;
//! 6. a Wave exported (`waves init --export`), signed offline, imported and completed.
//!
//! After each step the served roots list exactly the expected key IDs, of the expected key
//! type and scheme (PEM public keys for ECDSA and RSA, whose line breaks are what once broke
//! air-gapped signing), and verify with those keys; a CI and a production device running
//! `tuf-agent`, which trusted root version 1, follow the chain and install the release; a
//! device set up at the end on root version 1 walks the whole chain at once.
//!
//! With P-256 keys on a SoftHSM2 token (`TUF_TEST_PKCS11_MODULE`), the root and offline
//! targets keys are generated on the token and sign exported requests on the offline machine
//! (`tufctl sign --pkcs11 MODULE --pin-file PIN`). Without `unshare -n`, PostgreSQL or SoftHSM2
//! the tests that need them say they are skipped, and fail under `CI=true`.
//!
//! Key types also mix: an ed25519, a P-256 and an RSA root key holder share one 3-of-3 root
//! and sign a change on the offline machine.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use support::e2e::*;
use support::kinds::*;
use support::softhsm::Token;
use support::*;
use tuf_core::{Role, Root, Signed, Targets};

#[test]
fn ed25519_keys_on_sqlite() {
    if unshare_works() {
        matrix(Server::start(), ED25519);
    }
}

#[test]
fn ecdsa_keys_on_sqlite() {
    if unshare_works() {
        matrix(Server::start(), ECDSA);
    }
}

#[test]
fn rsa_keys_on_sqlite() {
    if unshare_works() {
        matrix(Server::start(), RSA);
    }
}

#[test]
fn ed25519_keys_on_postgres() {
    if unshare_works() {
        on_postgres(|s| matrix(s, ED25519));
    }
}

#[test]
fn ecdsa_keys_on_postgres() {
    if unshare_works() {
        on_postgres(|s| matrix(s, ECDSA));
    }
}

#[test]
fn rsa_keys_on_postgres() {
    if unshare_works() {
        on_postgres(|s| matrix(s, RSA));
    }
}

/// `tufctl sign` runs in a network namespace without interfaces; without `unshare -n` the
/// tests say so and pass, except under `CI=true`, where they fail.
fn unshare_works() -> bool {
    let works = Command::new("unshare")
        .args(["-n", "true"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !works {
        skip(
            "`unshare -n` must work (scripts/test installs util-linux)",
            "the key-type matrix (needs `unshare -n` for the offline machine)",
        );
    }
    works
}

/// `tufctl` on the offline machine: no network interface, an empty environment but `env`.
fn offline(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new("unshare");
    cmd.arg("-n")
        .arg(env!("CARGO_BIN_EXE_tufctl"))
        .args(args)
        .env_clear();
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// `tufctl sign REQ -k CREDS --out RESP --yes` offline, with `extra` arguments and `env`;
/// it must succeed and leave the credentials file as it was. Returns the review it printed.
fn sign_offline(
    req: &Path,
    creds: &Path,
    resp: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> String {
    let before = std::fs::read(creds).unwrap();
    let mut args = vec![
        "sign",
        req.to_str().unwrap(),
        "-k",
        creds.to_str().unwrap(),
        "--out",
        resp.to_str().unwrap(),
        "--yes",
    ];
    args.extend_from_slice(extra);
    let review = ok(&offline(&args, env));
    assert_eq!(
        std::fs::read(creds).unwrap(),
        before,
        "`tufctl sign` changed {}",
        creds.display()
    );
    let response: Value = serde_json::from_slice(&std::fs::read(resp).unwrap()).unwrap();
    assert!(
        response["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("tuf-factory/") && t.ends_with("-response")),
        "{response}"
    );
    review
}

/// A Factory whose owner has downloaded the credentials and done nothing else yet.
fn new_factory<'a>(server: &'a Server, name: &str) -> Offline<'a> {
    let f = create_factory(server, name);
    let dir = tempfile::tempdir().unwrap();
    let x = Offline {
        server,
        api: format!("/ota/repo/{}/api/v1/user_repo", f.name),
        ci_base: format!("{}/repo/{}/ci", server.url, f.name),
        prod_base: format!("{}/repo/{}/prod", server.url, f.name),
        creds: dir.path().join("creds.tgz"),
        only: dir.path().join("targets-only.tgz"),
        f,
        dir,
        offline_id: String::new(),
    };
    ok(&x.ctl(&[
        "keys",
        "download",
        &x.f.credentials_url,
        x.creds.to_str().unwrap(),
    ]));
    x
}

/// The CI and the production root the server serves now.
fn served_roots(x: &Offline) -> [Value; 2] {
    [x.get("root.json"), x.get("root.json?production=1")]
}

/// Both served roots have `version`, the root role lists exactly `root_ids` (all of `kind`)
/// under `threshold`, and each root is signed by a threshold of its own root keys, as
/// `tuf-core` verifies it. Returns the roots.
fn roots_are(
    x: &Offline,
    version: u64,
    root_ids: &[&str],
    threshold: u64,
    kind: Kind,
) -> [Value; 2] {
    let keys: Vec<(&str, Kind)> = root_ids.iter().map(|id| (*id, kind)).collect();
    roots_with(x, version, &keys, threshold)
}

/// Both served roots have `version`, the root role lists exactly the keys of `root_keys` (in
/// that order), each of its key type, under `threshold`, and each root is signed by a
/// threshold of its own root keys, as `tuf-core` verifies it. Returns the roots.
fn roots_with(x: &Offline, version: u64, root_keys: &[(&str, Kind)], threshold: u64) -> [Value; 2] {
    let roots = served_roots(x);
    let ids: Vec<&str> = root_keys.iter().map(|(id, _)| *id).collect();
    for r in &roots {
        assert_eq!(r["signed"]["version"], version, "{r}");
        assert_eq!(role_ids(r, "root"), ids, "{r}");
        assert_eq!(r["signed"]["roles"]["root"]["threshold"], threshold, "{r}");
        for (id, kind) in root_keys {
            key_is(r, id, *kind);
        }
        root_verifies(r);
    }
    roots
}

/// The key IDs that signed `env`, sorted.
fn signers(env: &Value) -> Vec<String> {
    let mut ids = signer_ids(env);
    ids.sort();
    ids
}

fn sorted(ids: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(|s| (*s).to_owned()).collect();
    v.sort();
    v
}

/// Days from now until the `expires` of `env`.
fn days_left(env: &Value) -> i64 {
    let e: tuf_core::Expires = env["signed"]["expires"].as_str().unwrap().parse().unwrap();
    (e.unix() - time::OffsetDateTime::now_utc().unix_timestamp()) / 86_400
}

/// The version of the root.json a device stores as trusted.
fn stored_root_version(d: &Device) -> u64 {
    let bytes = std::fs::read(d.dir.path().join("metadata/root.json")).unwrap();
    Signed::<Root>::from_slice(&bytes).unwrap().signed.version
}

/// The production targets verify under the production root (threshold 2: the offline
/// targets key and the server's online key) and carry the offline key `offline_id`.
fn prod_targets_verify(x: &Offline, offline_id: &str) -> Value {
    let targets = x.get("targets.json?production=1");
    let ids = signer_ids(&targets);
    assert!(ids.contains(&offline_id.to_owned()), "{ids:?}");
    assert_eq!(ids.len(), 2, "offline and online: {ids:?}");
    let root: Signed<Root> =
        Signed::from_slice(&serde_json::to_vec(&x.get("root.json?production=1")).unwrap()).unwrap();
    let env = Signed::<Targets>::from_slice(&serde_json::to_vec(&targets).unwrap()).unwrap();
    let v = env.verify_role(
        "targets",
        root.signed.role(Role::Targets),
        &root.signed.keys,
    );
    assert!(v.is_met(), "production targets do not verify: {v:?}");
    targets
}

/// The devices that trusted root version 1, and the release they have.
struct Fleet {
    ci: Device,
    prod: Device,
    root_v1: Vec<u8>,
}

impl Fleet {
    fn new(x: &Offline) -> Self {
        let prod_root_v1 = root_v1(&x.prod_base);
        Self {
            ci: Device::new(&root_v1(&x.ci_base), &x.ci_base),
            prod: Device::new(&prod_root_v1, &x.prod_base),
            root_v1: prod_root_v1,
        }
    }

    /// Both devices update, stay on (or install) `path` and trust root `version`.
    fn follow(&self, version: u64, path: &str, bytes: &[u8]) {
        for d in [&self.ci, &self.prod] {
            let out = d.update();
            assert!(out.status.success(), "{}", stderr(&out));
            assert_eq!(std::fs::read(d.installed_path()).unwrap(), bytes, "{path}");
            assert_eq!(stored_root_version(d), version, "{}", d.metadata_url);
        }
    }
}

/// The whole matrix for one key type on `server`.
fn matrix(server: Server, kind: Kind) {
    let x = new_factory(&server, &format!("keys-{}", kind.arg));
    let fleet = Fleet::new(&x);
    let root_id = rotate_root(&x, kind);
    let targets_id = rotate_targets(&x, kind, &root_id);
    let v42 = wave_signed_here(&x, &fleet, &targets_id);
    let holder = second_holder(&x, kind, &root_id);
    fleet.follow(4, "app-42", &v42);
    remove_holder_offline(&x, kind, &root_id, &holder);
    fleet.follow(5, "app-42", &v42);
    resign_root(&x, kind, &root_id);
    let v43 = wave_signed_offline(&x, &fleet, &targets_id);
    fleet.follow(7, "app-43", &v43);
    let late = Device::new(&fleet.root_v1, &x.prod_base);
    late.installs("app-43", &v43);
    assert_eq!(stored_root_version(&late), 7);
}

/// `keys rotate-root --key-type K`: root version 2 has the new key alone in the root role,
/// signed by the bootstrap key and the new one. Returns the new key's ID.
fn rotate_root(x: &Offline, kind: Kind) -> String {
    let c = x.creds.to_str().unwrap();
    let bootstrap = role_ids(&x.get("root.json"), "root");
    let out = json(&ok(&x.ctl(&[
        "--json",
        "keys",
        "rotate-root",
        "--key-type",
        kind.arg,
        c,
    ])));
    let id = out["root_keyid"].as_str().unwrap().to_owned();
    assert_eq!(out["reused_pending_key"], false, "{out}");
    for r in roots_are(x, 2, &[&id], 1, kind) {
        assert_eq!(signers(&r), sorted(&[&id, &bootstrap[0]]), "{r}");
        assert!(r["signed"]["keys"].get(&bootstrap[0]).is_none(), "{r}");
        // Where the key lives is recorded for people (the review, the web console).
        assert_eq!(r["signed"]["keys"][&id]["x-key-origin"], "file", "{r}");
    }
    id
}

/// `keys rotate-targets --key-type K`: root version 3 lists the new offline targets key
/// beside the online one (threshold 1 in CI, 2 in production), signed by the root key;
/// `copy-targets` writes the targets-only file holding it. Returns its ID.
fn rotate_targets(x: &Offline, kind: Kind, root_id: &str) -> String {
    let (c, o) = (x.creds.to_str().unwrap(), x.only.to_str().unwrap());
    let out = json(&ok(&x.ctl(&[
        "--json",
        "keys",
        "rotate-targets",
        "--key-type",
        kind.arg,
        c,
    ])));
    let id = out["targets_keyid"].as_str().unwrap().to_owned();
    let roots = roots_are(x, 3, &[root_id], 1, kind);
    for (r, threshold) in roots.iter().zip([1, 2]) {
        let ids = role_ids(r, "targets");
        assert_eq!(ids.len(), 2, "{r}");
        assert!(ids.contains(&id), "{r}");
        assert_eq!(r["signed"]["roles"]["targets"]["threshold"], threshold);
        key_is(r, &id, kind);
        assert_eq!(signer_ids(r), [root_id], "{r}");
    }
    ok(&x.ctl(&["keys", "copy-targets", c, o]));
    assert_eq!(offline_targets_id(&x.only), id);
    id
}

/// A Wave signed here with the targets-only file reaches production devices; `waves resign`
/// renews it (version + 1, later expiry, the same targets). Returns the build's bytes.
fn wave_signed_here(x: &Offline, fleet: &Fleet, targets_id: &str) -> Vec<u8> {
    let o = x.only.to_str().unwrap();
    let v42 = add_build(x.server, &x.f, x.dir.path(), "42");
    fleet.ci.installs("app-42", &v42);
    x.ship_wave(o, "wave-42", "42");
    let before = prod_targets_verify(x, targets_id);
    assert!(
        before["signed"]["targets"]["app-42"].is_object(),
        "{before}"
    );
    fleet.prod.installs("app-42", &v42);
    fleet.follow(3, "app-42", &v42);

    ok(&x.ctl(&[
        "waves",
        "resign",
        "-k",
        o,
        "wave-42",
        "--expires-days",
        "400",
    ]));
    let after = prod_targets_verify(x, targets_id);
    assert_eq!(
        after["signed"]["version"].as_u64().unwrap(),
        before["signed"]["version"].as_u64().unwrap() + 1
    );
    assert_eq!(after["signed"]["targets"], before["signed"]["targets"]);
    assert!((399..=400).contains(&days_left(&after)), "{after}");
    fleet.prod.stays_on("app-42", &v42);
    v42
}

/// A second root key holder, their key of type K generated into their own file, and a
/// 2-of-2 root: each holder signs online, `apply` is refused until both have. Root version
/// 4. Returns the holder's file and key ID.
fn second_holder(x: &Offline, kind: Kind, root_id: &str) -> (std::path::PathBuf, String) {
    let file = x.dir.path().join("holder2.tgz");
    let h = file.to_str().unwrap();
    ok(&x.updates(&["init", "-m", "a second root key holder"]));
    let out = ok(&x.updates(&[
        "add-offline-key",
        "--role",
        "root",
        "--key-type",
        kind.arg,
        "-k",
        h,
        "--owner",
        "holder2@site-2",
    ]));
    let id = sole_key_id(&file, "root");
    assert!(out.contains(&format!("Added root key {id}")), "{out}");
    let out = ok(&x.updates(&["set-threshold", "--role", "root", "2"]));
    assert!(out.contains("Staged: root threshold 2"), "{out}");
    let review = ok(&x.updates(&["review"]));
    let added = format!(
        "  root: + key {id} ({} in an offline file, owner holder2@site-2)",
        kind.arg
    );
    assert_eq!(review.matches(&added).count(), 2, "{added:?} in\n{review}");
    assert_eq!(review.matches("  root: threshold 1 -> 2").count(), 2);

    let sign = |file: &str, id: &str| {
        let out = ok(&x.updates(&["sign", "-k", file]));
        for doc in ["CI root", "production root"] {
            let said = format!("signed {doc} with {}", &id[..12]);
            assert!(out.contains(&said), "{said:?} in {out}");
        }
        out
    };
    sign(x.creds.to_str().unwrap(), root_id);
    let err = fails(&x.updates(&["apply"]));
    assert!(
        err.contains("\"check\":\"new_root_signatures\"")
            && err.contains("ci_root: 1 of 2 signatures of the new root's keys"),
        "{err}"
    );
    assert_eq!(x.get("root.json")["signed"]["version"], 3);
    let out = sign(h, &id);
    assert!(out.contains("All root signatures are present"), "{out}");
    let out = ok(&x.updates(&["apply"]));
    assert_eq!(
        out.trim(),
        "Applied: CI root version 4, production root version 4."
    );
    for r in roots_are(x, 4, &[root_id, &id], 2, kind) {
        assert_eq!(r["signed"]["x-key-owners"][&id], "holder2@site-2");
        assert_eq!(signers(&r), sorted(&[root_id, &id]), "{r}");
    }
    (file, id)
}

/// The second holder leaves (`remove-key`, threshold 1) through a signing request: each
/// holder signs it offline, each response is imported; `apply` is refused until the
/// current root's threshold (both) is met. Root version 5.
fn remove_holder_offline(
    x: &Offline,
    kind: Kind,
    root_id: &str,
    holder: &(std::path::PathBuf, String),
) {
    let (file, id) = holder;
    let d = x.dir.path();
    ok(&x.updates(&["init", "-m", "holder 2 leaves"]));
    let out = ok(&x.updates(&["remove-key", &id[..12]]));
    assert!(
        out.contains(&format!("Staged: key {id} (owner holder2@site-2) removed")),
        "{out}"
    );
    ok(&x.updates(&["set-threshold", "--role", "root", "1"]));
    let req = d.join("remove-request.json");
    ok(&x.updates(&["export", req.to_str().unwrap()]));
    let r: Value = serde_json::from_slice(&std::fs::read(&req).unwrap()).unwrap();
    assert_eq!(r["type"], "tuf-factory/root-update-request");
    assert_eq!(r["ci_root"]["signed"]["version"], 5);
    key_is(&r["ci_chain"][3], id, kind);

    // Holder 1 also writes the response as a QR code (with PEM keys in the roots and, for
    // RSA, 384-byte signatures); its payload is the response's JSON text, imported as text.
    let resp1 = d.join("remove-response-1.json");
    let qr = d.join("remove-response-1.png");
    let qr_arg = ["--qr", qr.to_str().unwrap()];
    let review = sign_offline(&req, &x.creds, &resp1, &qr_arg, &[]);
    assert!(
        review.contains("Wrote the response as a QR code"),
        "{review}"
    );
    assert_eq!(&std::fs::read(&qr).unwrap()[..8], b"\x89PNG\r\n\x1a\n");
    for line in [
        "CI root: version 4 -> 5".to_owned(),
        "production root: version 4 -> 5".to_owned(),
        "  root: threshold 2 -> 1".to_owned(),
        format!("  root: - key {id} (owner holder2@site-2)"),
    ] {
        assert!(review.contains(&line), "missing {line:?} in\n{review}");
    }
    ok(&x.updates(&["import", &std::fs::read_to_string(&resp1).unwrap()]));
    let err = fails(&x.updates(&["apply"]));
    assert!(
        err.contains("\"check\":\"current_root_signatures\"")
            && err.contains("ci_root: 1 of 2 signatures of the current root's keys"),
        "{err}"
    );
    assert_eq!(x.get("root.json")["signed"]["version"], 4);
    let resp2 = d.join("remove-response-2.json");
    sign_offline(&req, file, &resp2, &[], &[]);
    ok(&x.updates(&["import", resp2.to_str().unwrap()]));
    ok(&x.updates(&["apply"]));
    for r in roots_are(x, 5, &[root_id], 1, kind) {
        assert!(r["signed"]["keys"].get(id).is_none(), "{r}");
        assert_eq!(signers(&r), sorted(&[root_id, id]), "{r}");
    }
}

/// `keys resign-root` signed here (root version 6, expires in 300 days), then exported,
/// signed offline, imported and applied (version 7, 365 days): nothing but version and
/// expiry changes.
fn resign_root(x: &Offline, kind: Kind, root_id: &str) {
    let c = x.creds.to_str().unwrap();
    let [ci5, prod5] = served_roots(x);
    let unchanged = |roots: &[Value; 2]| {
        for (r, old) in roots.iter().zip([&ci5, &prod5]) {
            assert_eq!(r["signed"]["roles"], old["signed"]["roles"]);
            assert_eq!(r["signed"]["keys"], old["signed"]["keys"]);
            assert_eq!(signer_ids(r), [root_id], "{r}");
        }
    };
    let out = json(&ok(&x.ctl(&[
        "--json",
        "keys",
        "resign-root",
        c,
        "--expires-days",
        "300",
    ])));
    assert_eq!(out["version"], 6, "{out}");
    let roots = roots_are(x, 6, &[root_id], 1, kind);
    unchanged(&roots);
    assert!((299..=300).contains(&days_left(&roots[0])), "{}", roots[0]);

    let req = x.dir.path().join("renew-request.json");
    let resp = x.dir.path().join("renew-response.json");
    ok(&x.ctl(&[
        "keys",
        "resign-root",
        c,
        "--expires-days",
        "365",
        "--export",
        req.to_str().unwrap(),
    ]));
    let review = sign_offline(&req, &x.creds, &resp, &[], &[]);
    assert!(review.contains("CI root: version 6 -> 7"), "{review}");
    assert!(
        !review.contains("+ key") && !review.contains("- key") && !review.contains("threshold"),
        "a renewal changes no key: {review}"
    );
    ok(&x.updates(&["import", resp.to_str().unwrap()]));
    ok(&x.updates(&["apply"]));
    let roots = roots_are(x, 7, &[root_id], 1, kind);
    unchanged(&roots);
    assert!((364..=365).contains(&days_left(&roots[1])), "{}", roots[1]);
}

/// A Wave exported without any key, signed offline with the targets-only file, imported and
/// completed: production devices install it. Returns the build's bytes.
fn wave_signed_offline(x: &Offline, fleet: &Fleet, targets_id: &str) -> Vec<u8> {
    wave_via_request(x, fleet, targets_id, "43", &[], &[])
}

/// `waves init --export` of build `version`, `tufctl sign` offline with the targets-only
/// file (`extra` arguments, `env`), `waves import`, `waves complete`: the production targets
/// gain the build, keep every earlier target and verify; CI devices get the build first,
/// production devices after `complete`. Returns the build's bytes.
fn wave_via_request(
    x: &Offline,
    fleet: &Fleet,
    targets_id: &str,
    version: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Vec<u8> {
    let bytes = add_build(x.server, &x.f, x.dir.path(), version);
    let (path, wave) = (format!("app-{version}"), format!("wave-{version}"));
    fleet.ci.installs(&path, &bytes);
    let req = x.dir.path().join(format!("{wave}-request.json"));
    let resp = x.dir.path().join(format!("{wave}-response.json"));
    ok(&x.ctl(&[
        "waves",
        "init",
        &wave,
        version,
        "production",
        "--export",
        req.to_str().unwrap(),
    ]));
    let review = sign_offline(&req, &x.only, &resp, extra, env);
    assert!(review.contains(&format!("+ {path}")), "{review}");
    assert!(
        review.contains(&tuf_core::hash::sha256_hex(&bytes)),
        "{review}"
    );
    let before = x.get("targets.json?production=1");
    ok(&x.ctl(&["waves", "import", resp.to_str().unwrap()]));
    ok(&x.ctl(&["waves", "complete", &wave]));
    let after = prod_targets_verify(x, targets_id);
    assert_eq!(
        after["signed"]["version"].as_u64().unwrap(),
        before["signed"]["version"].as_u64().unwrap() + 1
    );
    for (p, _) in before["signed"]["targets"].as_object().unwrap() {
        assert!(after["signed"]["targets"][p].is_object(), "{p} dropped");
    }
    assert!(after["signed"]["targets"][&path].is_object(), "{after}");
    fleet.prod.installs(&path, &bytes);
    bytes
}

/// P-256 keys on a SoftHSM2 token: the root key and the offline targets key are generated on
/// the token (`--pkcs11 MODULE --slot LABEL`); a second root holder with a P-256 key in a file
/// joins through an exported request that the token key signs on the offline machine
/// (`tufctl sign --pkcs11 MODULE --pin-file PIN`, the token reached through `SOFTHSM2_CONF`
/// alone) and the holder signs from their file; a Wave exported and signed offline by the
/// token targets key reaches production devices that trusted root version 1.
#[test]
fn ecdsa_keys_on_a_softhsm_token() {
    let Some(token) = Token::new("matrix-p256") else {
        return;
    };
    if !unshare_works() {
        return;
    }
    let server = Server::start();
    let x = new_factory(&server, "keys-p256-token");
    let fleet = Fleet::new(&x);
    let pin = token.pin_file.to_str().unwrap();
    let at_desk = TokenDesk {
        token: &token,
        flags: ["--pkcs11", token.module.as_str(), "--pin-file", pin],
        env: [("SOFTHSM2_CONF", token.conf.to_str().unwrap())],
    };
    let (root_id, targets_id) = keys_onto_the_token(&x, &at_desk);
    second_holder_signs_with_the_token(&x, &at_desk, &root_id);
    let v42 = wave_via_request(&x, &fleet, &targets_id, "42", &at_desk.flags, &at_desk.env);
    fleet.follow(4, "app-42", &v42);
    let late = Device::new(&fleet.root_v1, &x.prod_base);
    late.installs("app-42", &v42);
    assert_eq!(stored_root_version(&late), 4);
}

/// Where the token is plugged in: the flags that open its keys and the environment that
/// reaches it.
struct TokenDesk<'a> {
    token: &'a Token,
    flags: [&'a str; 4],
    env: [(&'a str, &'a str); 1],
}

/// `rotate-root` and `rotate-targets` onto new P-256 keys generated on the token (root
/// versions 2 and 3); `copy-targets` makes a targets-only file holding the token reference.
/// Returns the root and the offline targets key IDs.
fn keys_onto_the_token(x: &Offline, desk: &TokenDesk) -> (String, String) {
    let (c, o) = (x.creds.to_str().unwrap(), x.only.to_str().unwrap());
    let label = desk.token.label.as_str();
    let new_key = |rotate: &str, field: &str| {
        let args = [
            &["--json"][..],
            &desk.flags,
            &["keys", rotate, "--slot", label, "--key-type", "ecdsa", c],
        ]
        .concat();
        let out = json(&ok(&x.ctl_env(&args, &desk.env)));
        out[field].as_str().unwrap().to_owned()
    };
    let root_id = new_key("rotate-root", "root_keyid");
    roots_are(x, 2, &[&root_id], 1, ECDSA);
    let targets_id = new_key("rotate-targets", "targets_keyid");
    for r in roots_are(x, 3, &[&root_id], 1, ECDSA) {
        key_is(&r, &targets_id, ECDSA);
        for id in [&root_id, &targets_id] {
            assert_eq!(r["signed"]["keys"][id]["x-key-origin"], "pkcs11", "{r}");
        }
        assert!(role_ids(&r, "targets").contains(&targets_id), "{r}");
        assert_eq!(signer_ids(&r), [root_id.as_str()], "{r}");
    }
    ok(&x.ctl(&["keys", "copy-targets", c, o]));
    assert_eq!(offline_targets_id(&x.only), targets_id);
    for (file, id) in [
        (&x.creds, &root_id),
        (&x.creds, &targets_id),
        (&x.only, &targets_id),
    ] {
        on_the_token_only(file, id, label);
    }
    (root_id, targets_id)
}

/// A second root holder with a P-256 key in a file, and a 2-of-2 root (version 4), through
/// an exported request: the token root key signs it on the offline machine, the holder from
/// their file; both responses are imported and the update applied.
fn second_holder_signs_with_the_token(x: &Offline, desk: &TokenDesk, root_id: &str) {
    let holder = x.dir.path().join("holder2.tgz");
    ok(&x.updates(&["init", "-m", "a second root key holder"]));
    ok(&x.updates(&[
        "add-offline-key",
        "--role",
        "root",
        "--key-type",
        "ecdsa",
        "-k",
        holder.to_str().unwrap(),
    ]));
    let holder_id = sole_key_id(&holder, "root");
    ok(&x.updates(&["set-threshold", "--role", "root", "2"]));
    let req = x.dir.path().join("holder-request.json");
    ok(&x.updates(&["export", req.to_str().unwrap()]));
    let responses = [
        x.dir.path().join("token-response.json"),
        x.dir.path().join("holder-response.json"),
    ];
    let review = sign_offline(&req, &x.creds, &responses[0], &desk.flags, &desk.env);
    let added = format!("  root: + key {holder_id} (ecdsa in an offline file, owner ");
    assert_eq!(review.matches(&added).count(), 2, "{added:?} in\n{review}");
    sign_offline(&req, &holder, &responses[1], &[], &[]);
    for resp in &responses {
        ok(&x.updates(&["import", resp.to_str().unwrap()]));
    }
    ok(&x.updates(&["apply"]));
    for r in roots_are(x, 4, &[root_id, &holder_id], 2, ECDSA) {
        assert_eq!(signers(&r), sorted(&[root_id, &holder_id]), "{r}");
    }
}

/// The file at `path` holds key `keyid` as a reference to token `label`, no private part.
fn on_the_token_only(path: &Path, keyid: &str, label: &str) {
    let c = tuf_credentials::Credentials::read(&std::fs::read(path).unwrap()).unwrap();
    let keys = c.keys().unwrap();
    let k = keys
        .iter()
        .find(|k| k.key_id().as_str() == keyid)
        .unwrap_or_else(|| panic!("key {keyid} not in {}", path.display()));
    assert!(
        matches!(&k.private, tuf_credentials::PrivatePart::Token { label: l, .. } if l == label),
        "{:?}",
        k.private
    );
    assert!(!k.has_private, "{} holds the private key", path.display());
}

/// Mixed key types in one threshold root: holder 1 with an ed25519 root key, holder 2 with a
/// P-256 key and holder 3 with an RSA key make the root 3-of-3, each signing online (`apply`
/// refused until all three have); then a change (threshold 2) is exported, reviewed and signed
/// by each holder on the offline machine, refused with two of the three responses imported
/// and applied with all three. The served roots list each key with its own type and scheme
/// and verify with tuf-core; a CI and a production device that trusted root version 1 follow
/// the chain and keep their release, and a new device walks the whole chain.
#[test]
fn mixed_key_types_in_a_threshold_root() {
    if !unshare_works() {
        return;
    }
    let server = Server::start();
    let x = new_factory(&server, "keys-mixed");
    let fleet = Fleet::new(&x);
    let root_id = rotate_root(&x, ED25519);
    rotate_targets(&x, ED25519, &root_id);
    let v42 = add_build(x.server, &x.f, x.dir.path(), "42");
    fleet.ci.installs("app-42", &v42);
    x.ship_wave(x.only.to_str().unwrap(), "wave-42", "42");
    fleet.prod.installs("app-42", &v42);
    let holders = three_holders_three_types(&x, &root_id);
    fleet.follow(4, "app-42", &v42);
    three_types_sign_offline(&x, &holders);
    fleet.follow(5, "app-42", &v42);
    let late = Device::new(&fleet.root_v1, &x.prod_base);
    late.installs("app-42", &v42);
    assert_eq!(stored_root_version(&late), 5);
}

/// A root key holder: their credentials file, key ID and key type.
struct Holder {
    file: std::path::PathBuf,
    id: String,
    kind: Kind,
}

/// Holders 2 (P-256) and 3 (RSA) join holder 1 (ed25519, the owner's file) in one
/// transaction that makes the root 3-of-3; each signs online; root version 4.
fn three_holders_three_types(x: &Offline, root_id: &str) -> [Holder; 3] {
    ok(&x.updates(&["init", "-m", "three holders, three key types"]));
    let mut holders = vec![Holder {
        file: x.creds.clone(),
        id: root_id.to_owned(),
        kind: ED25519,
    }];
    for (n, kind) in [(2, ECDSA), (3, RSA)] {
        let file = x.dir.path().join(format!("holder{n}.tgz"));
        let owner = format!("holder{n}@site-{n}");
        ok(&x.updates(&[
            "add-offline-key",
            "--role",
            "root",
            "--key-type",
            kind.arg,
            "-k",
            file.to_str().unwrap(),
            "--owner",
            &owner,
        ]));
        let id = sole_key_id(&file, "root");
        sole_private_key_is(&file, &id, kind);
        holders.push(Holder { file, id, kind });
    }
    ok(&x.updates(&["set-threshold", "--role", "root", "3"]));
    let review = ok(&x.updates(&["review"]));
    for h in &holders[1..] {
        let added = format!(
            "  root: + key {} ({} in an offline file, owner ",
            h.id, h.kind.arg
        );
        assert_eq!(review.matches(&added).count(), 2, "{added:?} in\n{review}");
    }
    assert_eq!(
        review.matches("  root: threshold 1 -> 3").count(),
        2,
        "{review}"
    );
    for (n, h) in holders.iter().enumerate() {
        let out = ok(&x.updates(&["sign", "-k", h.file.to_str().unwrap()]));
        assert!(
            out.contains(&format!("signed CI root with {}", &h.id[..12])),
            "{out}"
        );
        if n < 2 {
            let err = fails(&x.updates(&["apply"]));
            let said = format!("ci_root: {} of 3 signatures of the new root's keys", n + 1);
            assert!(
                err.contains("\"check\":\"new_root_signatures\"") && err.contains(&said),
                "{said:?} in {err}"
            );
            assert_eq!(x.get("root.json")["signed"]["version"], 3);
        }
    }
    ok(&x.updates(&["apply"]));
    let all: Vec<(&str, Kind)> = holders.iter().map(|h| (h.id.as_str(), h.kind)).collect();
    let ids: Vec<&str> = all.iter().map(|(id, _)| *id).collect();
    for r in roots_with(x, 4, &all, 3) {
        assert_eq!(signers(&r), sorted(&ids), "{r}");
    }
    holders.try_into().ok().unwrap()
}

/// The root goes to 2-of-3 through a signing request: each holder reviews and signs it on the
/// offline machine; with two responses imported `apply` is refused (the current root needs
/// all three), with the third it goes through: root version 5, signed by all three keys.
fn three_types_sign_offline(x: &Offline, holders: &[Holder; 3]) {
    ok(&x.updates(&["init", "-m", "threshold 2 of 3"]));
    ok(&x.updates(&["set-threshold", "--role", "root", "2"]));
    let req = x.dir.path().join("mixed-request.json");
    ok(&x.updates(&["export", req.to_str().unwrap()]));
    let r: Value = serde_json::from_slice(&std::fs::read(&req).unwrap()).unwrap();
    for h in holders {
        key_is(&r["ci_root"], &h.id, h.kind);
    }
    for (n, h) in holders.iter().enumerate() {
        let resp = x.dir.path().join(format!("mixed-response-{n}.json"));
        let review = sign_offline(&req, &h.file, &resp, &[], &[]);
        assert!(review.contains("  root: threshold 3 -> 2"), "{review}");
        ok(&x.updates(&["import", resp.to_str().unwrap()]));
        if n < 2 {
            let err = fails(&x.updates(&["apply"]));
            let said = format!(
                "ci_root: {} of 3 signatures of the current root's keys",
                n + 1
            );
            assert!(
                err.contains("\"check\":\"current_root_signatures\"") && err.contains(&said),
                "{said:?} in {err}"
            );
            assert_eq!(x.get("root.json")["signed"]["version"], 4);
        }
    }
    ok(&x.updates(&["apply"]));
    let all: Vec<(&str, Kind)> = holders.iter().map(|h| (h.id.as_str(), h.kind)).collect();
    let ids: Vec<&str> = all.iter().map(|(id, _)| *id).collect();
    for r in roots_with(x, 5, &all, 2) {
        assert_eq!(signers(&r), sorted(&ids), "{r}");
    }
}
