//! Step-by-step root updates for a threshold root (two holders, each with their own
//! tarball), and a production Wave signed with the targets-only tarball.

mod support;

use support::*;

#[test]
fn two_holders_make_a_threshold_root() {
    let server = Server::start();
    let f = create_factory(&server, "threshold");
    let dir = tempfile::tempdir().unwrap();
    let alice = dir.path().join("alice.tgz");
    let bob = dir.path().join("bob.tgz");
    let (a, b) = (alice.to_str().unwrap(), bob.to_str().unwrap());
    ok(&server.tufctl(&["keys", "download", &f.credentials_url, a]));
    ok(&server.tufctl(&[
        "keys",
        "rotate-root",
        a,
        "--token",
        &f.token,
        "--owner",
        "alice@desk",
    ]));
    let up = |args: &[&str]| {
        let mut v = vec!["keys", "tuf", "updates"];
        v.extend_from_slice(args);
        v.extend_from_slice(&["--factory", &f.name, "--token", &f.token]);
        server.tufctl(&v)
    };
    ok(&up(&["init", "-m", "add bob as a second root key holder"]));
    fails(&up(&["init", "-m", "a second transaction"]));
    ok(&up(&["set-threshold", "--role", "root", "2"]));
    ok(&up(&[
        "add-offline-key",
        "--role",
        "root",
        "-k",
        b,
        "--owner",
        "bob@laptop",
    ]));
    let review = ok(&up(&["review"]));
    assert!(review.contains("root: threshold 1 -> 2"), "{review}");
    assert!(review.contains("owner bob@laptop"), "{review}");
    assert!(
        review.contains("add bob as a second root key holder"),
        "{review}"
    );
    assert!(review.contains("not signed by"), "{review}");
    ok(&up(&["sign", "-k", a]));
    let review = ok(&up(&["review"]));
    assert!(
        review.contains("signatures by the new root keys: 2 of 2"),
        "{review}"
    );
    ok(&up(&["apply"]));
    let root = get_json(
        &server,
        &f,
        &format!("/ota/repo/{}/api/v1/user_repo/root.json", f.name),
    );
    assert_eq!(root["signed"]["version"], 3);
    assert_eq!(root["signed"]["roles"]["root"]["threshold"], 2);
    assert_eq!(
        root["signed"]["roles"]["root"]["keyids"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // A single holder can no longer rotate alone: the transaction waits for Bob.
    let out = ok(&server.tufctl(&["keys", "rotate-root", a, "--token", &f.token]));
    assert!(out.contains("needs more signatures"), "{out}");
    ok(&up(&["cancel"]));
}

#[test]
fn wave_signed_with_the_targets_only_tarball() {
    let server = Server::start();
    let f = create_factory(&server, "waves");
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("creds.tgz");
    let only = dir.path().join("only.tgz");
    let (c, o) = (creds.to_str().unwrap(), only.to_str().unwrap());
    ok(&server.tufctl(&["keys", "download", &f.credentials_url, c]));
    ok(&server.tufctl(&["keys", "rotate-targets", c, "--token", &f.token]));
    ok(&server.tufctl(&["keys", "copy-targets", c, o, "--token", &f.token]));
    let artifact = dir.path().join("app.img");
    std::fs::write(&artifact, b"firmware bytes").unwrap();
    ok(&server.tufctl(&[
        "targets",
        "add",
        "--name",
        "app",
        "--version",
        "42",
        "--hardware-id",
        "board-a",
        "--file",
        artifact.to_str().unwrap(),
        "--factory",
        &f.name,
        "--token",
        &f.ci_token,
    ]));
    ok(&server.tufctl(&[
        "targets",
        "add",
        "--name",
        "other",
        "--version",
        "7",
        "--hardware-id",
        "board-a",
        "--sha256",
        &"ab".repeat(32),
        "--length",
        "10",
        "--factory",
        &f.name,
        "--token",
        &f.ci_token,
    ]));
    ok(&server.tufctl(&[
        "waves",
        "init",
        "-k",
        o,
        "wave-42",
        "42",
        "production",
        "--token",
        &f.token,
    ]));
    let list = json(&ok(&server.tufctl(&[
        "--json",
        "waves",
        "list",
        "--factory",
        &f.name,
        "--token",
        &f.token,
    ])));
    assert_eq!(list[0]["name"], "wave-42");
    assert_eq!(list[0]["status"], "active");
    ok(&server.tufctl(&[
        "waves",
        "complete",
        "wave-42",
        "--factory",
        &f.name,
        "--token",
        &f.token,
    ]));
    let prod = get_json(
        &server,
        &f,
        &format!(
            "/ota/repo/{}/api/v1/user_repo/targets.json?production=1",
            f.name
        ),
    );
    let targets = prod["signed"]["targets"].as_object().unwrap();
    assert!(targets.contains_key("app-42"), "{prod}");
    assert!(!targets.contains_key("other-7"));
    assert_eq!(targets["app-42"]["custom"]["tags"][0], "production");
}

/// Root and targets keys whose public part is a PEM (ecdsa, rsa) hold newlines in root.json:
/// staging, the server's checks and apply must handle them like hex ed25519 keys.
#[test]
fn pem_keys_rotate_like_ed25519_keys() {
    let server = Server::start();
    let f = create_factory(&server, "pem-keys");
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("creds.tgz");
    let c = creds.to_str().unwrap();
    ok(&server.tufctl(&["keys", "download", &f.credentials_url, c]));
    let ctl = |args: &[&str]| {
        let mut v = args.to_vec();
        v.extend_from_slice(&["--json", "--factory", &f.name, "--token", &f.token]);
        json(&ok(&server.tufctl(&v)))
    };
    let root_id = ctl(&["keys", "rotate-root", "--key-type", "ecdsa", c])["root_keyid"]
        .as_str()
        .unwrap()
        .to_owned();
    let targets_id = ctl(&["keys", "rotate-targets", "--key-type", "rsa", c])["targets_keyid"]
        .as_str()
        .unwrap()
        .to_owned();
    let api = format!("/ota/repo/{}/api/v1/user_repo", f.name);
    for q in ["", "?production=1"] {
        let root = get_json(&server, &f, &format!("{api}/root.json{q}"));
        let keys = &root["signed"]["keys"];
        assert_eq!(keys[&root_id]["scheme"], "ecdsa-sha2-nistp256", "{root}");
        assert_eq!(keys[&targets_id]["scheme"], "rsassa-pss-sha256", "{root}");
        assert!(keys[&root_id]["keyval"]["public"]
            .as_str()
            .unwrap()
            .contains('\n'));
    }
    // The ecdsa root key signs the next rotation.
    let next = ctl(&["keys", "rotate-root", c])["root_keyid"]
        .as_str()
        .unwrap()
        .to_owned();
    let root = get_json(&server, &f, &format!("{api}/root.json"));
    assert_eq!(root["signed"]["roles"]["root"]["keyids"][0], next.as_str());
    let signers: Vec<&str> = root["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["keyid"].as_str().unwrap())
        .collect();
    assert!(signers.contains(&root_id.as_str()), "{signers:?}");
}
