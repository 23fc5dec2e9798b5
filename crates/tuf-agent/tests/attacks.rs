//! One test per attack on the client workflow (spec section 5), each against a repository that
//! python-tuf built and the attack then altered. `tests/fixtures/<attack>/README` says what the
//! attacker tries and what must happen; `every_fixture_has_a_test` keeps the two lists in step.

mod common;

use common::{Reply, Repo};
use serde_json::{json, Value};

fn repo() -> Option<Repo> {
    Repo::new(json!({}))
}

fn resign(repo: &Repo, file: &str, role: &str, set: Value) {
    repo.ops(json!([["resign", {"file": file, "role": role, "set": set}]]));
}

#[test]
fn rollback_timestamp() {
    let Some(repo) = repo() else { return };
    let client = repo.client();
    let old = repo.read("timestamp.json");
    repo.ops(json!([["bump", {"role": "timestamp"}], ["publish", {}]]));
    client.refresh().success();
    repo.write("timestamp.json", &old);
    client
        .refresh()
        .failure("timestamp: rollback attack? version 1 is lower than the trusted version 2");
    assert_eq!(client.version("timestamp.json"), Some(2));
    // The device still updates once the repository is sane again.
    repo.ops(json!([["bump", {"role": "timestamp"}], ["publish", {}]]));
    client.refresh().success();
    assert_eq!(client.version("timestamp.json"), Some(3));
}

#[test]
fn rollback_snapshot_in_timestamp() {
    let Some(repo) = repo() else { return };
    let client = repo.client();
    let old = repo.read("timestamp.json");
    repo.ops(json!([["bump", {"role": "snapshot"}], ["publish", {}]]));
    client.refresh().success();
    repo.write("timestamp.json", &old);
    resign(&repo, "timestamp.json", "timestamp", json!({"version": 3}));
    client.refresh().failure(
        "timestamp: snapshot.json: rollback attack? version 1 is lower than the trusted version 2",
    );
    assert_eq!(client.version("timestamp.json"), Some(2));
}

#[test]
fn rollback_targets_in_snapshot() {
    let Some(repo) = repo() else { return };
    let client = repo.client();
    let old = repo.read("1.snapshot.json");
    repo.ops(json!([["add_target", {"path": "f", "data": "x"}], ["publish", {}]]));
    client.refresh().success();
    repo.write("3.snapshot.json", &old);
    resign(&repo, "3.snapshot.json", "snapshot", json!({"version": 3}));
    resign(
        &repo,
        "timestamp.json",
        "timestamp",
        json!({"version": 3, "meta": {"snapshot.json": {"version": 3}}}),
    );
    client.refresh().failure(
        "snapshot: targets.json: rollback attack? version 1 is lower than the trusted version 2",
    );
    assert_eq!(client.version("snapshot.json"), Some(2));
}

#[test]
fn role_removed_from_snapshot() {
    let Some(repo) = repo() else { return };
    repo.ops(json!([["delegate", {"name": "team", "paths": ["*"]}], ["publish", {}]]));
    let client = repo.client();
    client.refresh().success();
    let snap = repo.read("2.snapshot.json");
    repo.write("3.snapshot.json", &snap);
    resign(
        &repo,
        "3.snapshot.json",
        "snapshot",
        json!({"version": 3, "meta": {"targets.json": {"version": 2}}}),
    );
    resign(
        &repo,
        "timestamp.json",
        "timestamp",
        json!({"version": 3, "meta": {"snapshot.json": {"version": 3}}}),
    );
    client.refresh().failure(
        "snapshot: team.json is listed in the trusted snapshot but missing from the new one",
    );
    assert_eq!(client.trusted("snapshot.json").unwrap(), snap);
}

#[test]
fn freeze_expired_timestamp() {
    let Some(repo) = repo() else { return };
    repo.ops(json!([["expire", {"role": "timestamp"}], ["publish", {}]]));
    let client = repo.client();
    let out = client.refresh();
    out.failure("timestamp: the timestamp metadata of the repository http://127.0.0.1:")
        .failure("re-signs timestamp and snapshot")
        .failure("freeze attack");
    assert!(client.trusted("timestamp.json").is_none());
}

#[test]
fn freeze_expired_snapshot() {
    let Some(repo) = repo() else { return };
    repo.ops(json!([["expire", {"role": "snapshot"}], ["publish", {}]]));
    let client = repo.client();
    client
        .refresh()
        .failure("snapshot: the snapshot metadata of the repository")
        .failure("re-signs timestamp and snapshot");
    assert!(client.trusted("snapshot.json").is_none());
    assert_eq!(client.version("timestamp.json"), Some(2));
}

#[test]
fn freeze_expired_targets() {
    let Some(repo) = repo() else { return };
    repo.ops(json!([["expire", {"role": "targets"}], ["publish", {}]]));
    let client = repo.client();
    client
        .refresh()
        .failure("targets: the targets metadata of the repository")
        .failure("re-signed by the holders of the targets keys");
    assert!(client.trusted("targets.json").is_none());
    // Served where tufd serves a production repository: the owner is told the factory, the
    // flavour and the command.
    let prod = repo.dir.path().join("repo/acme/prod");
    std::fs::create_dir_all(prod.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(repo.dir.path(), &prod).unwrap();
    let url = format!("{}/repo/acme/prod/metadata/", repo.server.url);
    client
        .run(&["--metadata-url", &url, "refresh"])
        .failure(&format!(
            "targets: the targets metadata of the production repository of factory acme ({url}) expired at"
        ))
        .failure("re-signed with `tufctl waves resign`");
    assert!(client.trusted("targets.json").is_none());
}

#[test]
fn freeze_expired_final_root() {
    let Some(repo) = repo() else { return };
    repo.ops(json!([["expire", {"role": "root"}], ["publish", {}]]));
    let client = repo.client();
    repo.server.take_requests();
    client
        .refresh()
        .failure("root: the root metadata of the repository")
        .failure("this device's clock reads 20")
        .failure("a new root must be signed with `tufctl keys resign-root`");
    assert_eq!(
        repo.server.take_requests(),
        ["/metadata/2.root.json", "/metadata/3.root.json"]
    );
    // An expired intermediate root is fine once a newer, unexpired one exists.
    repo.ops(json!([["expire", {"role": "root", "days": 30}], ["publish", {}]]));
    client.refresh().success();
    assert_eq!(client.version("root.json"), Some(3));
}

#[test]
fn root_rotation_below_new_threshold() {
    let Some(repo) = repo() else { return };
    repo.ops(json!([
        ["rotate", {"role": "root", "keys": 2, "threshold": 2, "sign_new": 1}],
        ["publish", {}]
    ]));
    let client = repo.client();
    client.refresh().failure(
        "root: role root: 1 valid signature(s) from distinct trusted keys, threshold is 2",
    );
    assert_eq!(
        client.trusted("root.json").unwrap(),
        repo.read("1.root.json")
    );
}

#[test]
fn root_rotation_not_signed_by_old_root() {
    let Some(repo) = repo() else { return };
    repo.ops(json!([["rotate", {"role": "root", "sign_with_old": false}], ["publish", {}]]));
    let client = repo.client();
    client.refresh().failure(
        "root: role root: 0 valid signature(s) from distinct trusted keys, threshold is 1",
    );
    assert_eq!(client.version("root.json"), Some(1));
}

#[test]
fn root_chain_skips_a_version() {
    let Some(repo) = repo() else { return };
    repo.ops(json!([["bump", {"role": "root"}], ["publish", {}], ["bump", {"role": "root"}], ["publish", {}]]));
    let v3 = repo.read("3.root.json");
    repo.write("2.root.json", &v3);
    std::fs::remove_file(repo.file("3.root.json")).unwrap();
    let client = repo.client();
    client.refresh().failure("root: version 3, expected 2");
    assert_eq!(client.version("root.json"), Some(1));
}

#[test]
fn root_rotation_chain_is_followed() {
    let Some(repo) = repo() else { return };
    repo.ops(json!([
        ["rotate", {"role": "root", "key_type": "ecdsa"}], ["publish", {}],
        ["rotate", {"role": "root", "keys": 3, "threshold": 2}], ["publish", {}],
        ["rotate", {"role": "timestamp"}], ["publish", {}]
    ]));
    let client = repo.client();
    client.refresh().success();
    assert_eq!(
        client.trusted("root.json").unwrap(),
        repo.read("4.root.json")
    );
}

#[test]
fn snapshot_hash_mismatch() {
    let Some(repo) = repo() else { return };
    repo.ops(json!([["add_target", {"path": "f", "data": "x"}], ["publish", {"hashes": true}]]));
    let mut snap = repo.read("2.snapshot.json");
    snap.push(b'\n');
    repo.write("2.snapshot.json", &snap);
    let client = repo.client();
    client
        .refresh()
        .failure("/metadata/2.snapshot.json: more than");
    assert!(client.trusted("snapshot.json").is_none());
    let mut snap = repo.read("2.snapshot.json");
    snap.pop();
    flip_signature_char(&mut snap);
    repo.write("2.snapshot.json", &snap);
    client
        .refresh()
        .failure("snapshot: sha256 hash does not match");
    assert!(client.trusted("snapshot.json").is_none());
}

#[test]
fn targets_hash_mismatch() {
    let Some(repo) = repo() else { return };
    repo.ops(json!([["add_target", {"path": "f", "data": "x"}], ["publish", {"hashes": true}]]));
    let mut targets = repo.read("2.targets.json");
    flip_signature_char(&mut targets);
    repo.write("2.targets.json", &targets);
    let client = repo.client();
    client
        .refresh()
        .failure("targets: sha256 hash does not match");
    assert!(client.trusted("targets.json").is_none());
}

#[test]
fn target_hash_mismatch() {
    let Some(repo) = repo() else { return };
    repo.ops(json!([["add_target", {"path": "a/b.txt", "data": "hello"}], ["publish", {}]]));
    let sha = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
    let served = repo.dir.path().join(format!("targets/a/{sha}.b.txt"));
    std::fs::write(&served, b"jello").unwrap();
    let client = repo.client();
    client
        .download(&["a/b.txt"])
        .failure("target a/b.txt: sha256 hash does not match");
    assert!(client.target_files().is_empty());
}

#[test]
fn target_endless_data() {
    let Some(repo) = repo() else { return };
    repo.ops(json!([["add_target", {"path": "a/b.txt", "data": "hello"}], ["publish", {}]]));
    let sha = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
    repo.server.make_endless(&format!("/targets/a/{sha}.b.txt"));
    let client = repo.client();
    client
        .download(&["a/b.txt"])
        .failure("target a/b.txt: length is 6 bytes, 5 bytes are listed");
    assert!(client.target_files().is_empty());
}

#[test]
fn timestamp_endless_data() {
    let Some(repo) = repo() else { return };
    repo.server.make_endless("/metadata/timestamp.json");
    let client = repo.client();
    client
        .refresh()
        .failure("/metadata/timestamp.json: more than 16384 bytes");
    assert!(client.trusted("timestamp.json").is_none());
}

#[test]
fn delegation_terminating() {
    let Some(repo) = repo() else { return };
    repo.ops(json!([
        ["delegate", {"name": "first", "paths": ["x/*"], "terminating": true}],
        ["delegate", {"name": "second", "paths": ["x/*"]}],
        ["add_target", {"role": "second", "path": "x/1", "data": "shadowed"}],
        ["publish", {}]
    ]));
    let client = repo.client();
    repo.server.take_requests();
    client
        .download(&["x/1"])
        .failure("target \"x/1\" is not listed by any trusted targets role");
    let requests = repo.server.take_requests();
    assert!(requests.contains(&"/metadata/1.first.json".to_owned()));
    assert!(
        !requests.iter().any(|r| r.contains("second")),
        "{requests:?}"
    );
}

#[test]
fn delegation_non_terminating_continues() {
    let Some(repo) = repo() else { return };
    repo.ops(json!([
        ["delegate", {"name": "first", "paths": ["x/*"]}],
        ["delegate", {"name": "second", "paths": ["x/*"]}],
        ["add_target", {"role": "second", "path": "x/1", "data": "found"}],
        ["publish", {}]
    ]));
    let client = repo.client();
    repo.server.take_requests();
    client.download(&["x/1"]).success();
    let requests = repo.server.take_requests();
    let first = requests.iter().position(|r| r == "/metadata/1.first.json");
    let second = requests.iter().position(|r| r == "/metadata/1.second.json");
    assert!(first.is_some() && first < second, "{requests:?}");
    assert_eq!(client.target("x%2F1").unwrap(), b"found");
}

#[test]
fn delegation_path_mismatch() {
    let Some(repo) = repo() else { return };
    repo.ops(json!([
        ["delegate", {"name": "team", "paths": ["x/*"]}],
        ["add_target", {"role": "team", "path": "y/1", "data": "outside its paths"}],
        ["publish", {}]
    ]));
    let client = repo.client();
    repo.server.take_requests();
    client
        .download(&["y/1"])
        .failure("target \"y/1\" is not listed by any trusted targets role");
    assert!(!repo
        .server
        .take_requests()
        .iter()
        .any(|r| r.contains("team")));
    assert!(client.target_files().is_empty());
}

/// targets delegates `a/*` to left and `b/*` to right, which delegate the same paths to
/// shared, signed by the keys left lists for it. With `right_keys` "other-keys", right lists keys that never sign it.
fn diamond(right_keys: &str) -> Option<Repo> {
    let custom = |v: &str| json!({"name": "fw", "version": v, "hardware_ids": ["hw"]});
    let repo = repo()?;
    repo.ops(json!([
        ["delegate", {"name": "left", "paths": ["a/*"]}],
        ["delegate", {"name": "right", "paths": ["b/*"]}],
        ["delegate", {"name": "shared", "parent": "left", "paths": ["a/*"]}],
        ["delegate", {"name": "shared", "parent": "right", "paths": ["b/*"], "existing": right_keys}],
        ["add_target", {"role": "shared", "path": "a/1", "data": "via left", "custom": custom("1")}],
        ["add_target", {"role": "shared", "path": "b/9", "data": "via right", "custom": custom("9")}],
        ["publish", {}]
    ]));
    Some(repo)
}

#[test]
fn diamond_delegation_signed_for_one_delegator() {
    // Control: with shared's keys listed by both delegators, both paths work.
    let Some(honest) = diamond("same-keys") else {
        return;
    };
    let client = honest.client();
    client.download(&["a/1", "b/9"]).success();
    assert_eq!(client.target("b%2F9").unwrap(), b"via right");

    let Some(repo) = diamond("other-keys") else {
        return;
    };
    let client = repo.client();
    // shared is verified (against left) for a/1 first; in the same run b/9 is reached
    // through right, whose keys never signed shared: refused, not reused.
    client
        .download(&["a/1", "b/9"])
        .failure("shared (as delegated by right): 0 valid signature(s)");
    assert_eq!(client.target_files(), ["a%2F1"]);
    // The same from the stored copy in a new run, and for `update`.
    client
        .download(&["b/9"])
        .failure("shared (as delegated by right)");
    let out = client.run(&[
        "--metadata-url",
        &repo.metadata_url(),
        "--target-dir",
        client.targets.path().to_str().unwrap(),
        "--target-base-url",
        &repo.targets_url(),
        "--hardware-id",
        "hw",
        "update",
    ]);
    out.failure("shared (as delegated by right)");
    assert_eq!(client.target_files(), ["a%2F1"]);
}

/// The first half of the image replaced, same length: what an attacker on the path serves
/// before cutting the connection, so that the device keeps it as a partial download.
fn tampered(image: &[u8]) -> Vec<u8> {
    let mut bad = image.to_vec();
    bad[..image.len() / 2].fill(b'X');
    bad
}

#[test]
fn resumed_download_tampered_first_half() {
    let Some(repo) = repo() else { return };
    let image = "0123456789abcdef".repeat(20_000).into_bytes();
    repo.ops(json!([
        ["add_target", {"path": "fw", "data": "0123456789abcdef", "repeat": 20_000}],
        ["publish", {}]
    ]));
    let served = format!("/targets/{}.fw", tuf_core::hash::sha256_hex(&image));
    let half = image.len() / 2;
    let client = repo.client();
    let cut_tampered = || {
        repo.server.script(
            &served,
            vec![
                Reply::Body {
                    bytes: tampered(&image),
                    cut: Some(half),
                },
                Reply::Status(503),
            ],
        );
        client.download(&["fw"]).failure("HTTP status 503");
        assert_eq!(client.target_files().len(), 1, "a partial download is kept");
        repo.server.take_ranges();
    };
    // The honest server completes the file: the whole file does not verify, so the partial
    // one is dropped and the file fetched again from the start; only good bytes land.
    cut_tampered();
    client.download(&["fw"]).success();
    let ranges: Vec<_> = repo
        .server
        .take_ranges()
        .into_iter()
        .filter(|(p, _)| *p == served)
        .collect();
    assert_eq!(
        ranges,
        [
            (served.clone(), Some(format!("bytes={half}-"))),
            (served.clone(), None)
        ]
    );
    assert_eq!(client.target("fw").unwrap(), image);
    assert_eq!(client.target_files(), ["fw"]);

    // The attacker stays on the path and also serves the fresh download: refused, nothing
    // left in the target directory.
    std::fs::remove_file(client.targets.path().join("fw")).unwrap();
    cut_tampered();
    repo.server.script(
        &served,
        vec![
            Reply::Normal,
            Reply::Body {
                bytes: tampered(&image),
                cut: None,
            },
        ],
    );
    client
        .download(&["fw"])
        .failure("target fw: sha256 hash does not match");
    assert!(client.target_files().is_empty());
}

#[test]
fn fast_forward_recovery_timestamp() {
    let Some(repo) = repo() else { return };
    repo.ops(json!([["set_version", {"role": "timestamp", "version": 10}], ["publish", {}]]));
    let client = repo.client();
    client.refresh().success();
    assert_eq!(client.version("timestamp.json"), Some(10));
    repo.ops(json!([
        ["rotate", {"role": "timestamp"}],
        ["set_version", {"role": "timestamp", "version": 1}],
        ["publish", {}]
    ]));
    client.refresh().success();
    assert_eq!(client.version("timestamp.json"), Some(1));
}

#[test]
fn fast_forward_recovery_snapshot() {
    let Some(repo) = repo() else { return };
    repo.ops(json!([["set_version", {"role": "snapshot", "version": 10}], ["publish", {}]]));
    let client = repo.client();
    client.refresh().success();
    assert_eq!(client.version("snapshot.json"), Some(10));
    repo.ops(json!([
        ["rotate", {"role": "snapshot"}],
        ["set_version", {"role": "snapshot", "version": 1}],
        ["publish", {}]
    ]));
    client.refresh().success();
    assert_eq!(client.version("snapshot.json"), Some(1));
}

#[test]
fn fast_forward_recovery_keeps_trusted_files_when_the_new_snapshot_fails() {
    let Some(repo) = repo() else { return };
    let client = repo.client();
    client.refresh().success();
    let before = client.trusted("snapshot.json").expect("snapshot trusted");
    // New snapshot keys with a threshold the repository cannot meet: the update fails after
    // the root rotated, and the last trusted snapshot must still be on disk.
    repo.ops(json!([
        ["rotate", {"role": "snapshot", "keys": 1, "threshold": 2}],
        ["publish", {}]
    ]));
    client.refresh().failure(
        "snapshot: role snapshot: 0 valid signature(s) from distinct trusted keys, threshold is 2",
    );
    assert_eq!(client.trusted("snapshot.json"), Some(before));
    assert_eq!(client.version("root.json"), Some(2));
}

#[test]
fn wrong_type() {
    let Some(repo) = repo() else { return };
    resign(
        &repo,
        "1.snapshot.json",
        "snapshot",
        json!({"_type": "timestamp"}),
    );
    let client = repo.client();
    client
        .refresh()
        .failure("snapshot: metadata has _type \"timestamp\", expected \"snapshot\"");
    assert!(client.trusted("snapshot.json").is_none());
}

#[test]
fn duplicate_signature_keyids() {
    let Some(repo) = repo() else { return };
    let mut ts: Value = serde_json::from_slice(&repo.read("timestamp.json")).unwrap();
    let sig = ts["signatures"][0].clone();
    ts["signatures"].as_array_mut().unwrap().push(sig);
    repo.write("timestamp.json", &serde_json::to_vec(&ts).unwrap());
    let client = repo.client();
    client
        .refresh()
        .failure("timestamp: signatures list names keyid")
        .failure("more than once");
    assert!(client.trusted("timestamp.json").is_none());
}

#[test]
fn unsigned_change() {
    let Some(repo) = repo() else { return };
    let mut ts: Value = serde_json::from_slice(&repo.read("timestamp.json")).unwrap();
    ts["signed"]["version"] = json!(7);
    repo.write("timestamp.json", &serde_json::to_vec(&ts).unwrap());
    let client = repo.client();
    client.refresh().failure(
        "timestamp: role timestamp: 0 valid signature(s) from distinct trusted keys, threshold is 1",
    );
    assert!(client.trusted("timestamp.json").is_none());
}

#[test]
fn every_fixture_has_a_test() {
    let source = include_str!("attacks.rs");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().replace('-', "_");
        let readme = std::fs::read_to_string(entry.path().join("README")).unwrap();
        assert_eq!(
            readme.trim().lines().count(),
            1,
            "{name}: README is one line"
        );
        assert!(
            source.contains(&format!("fn {name}()")),
            "no test for fixture {name}"
        );
    }
}

/// Changes one hex digit of the first signature: same length, different bytes.
fn flip_signature_char(doc: &mut [u8]) {
    let at = doc.windows(7).position(|w| w == b"\"sig\":\"").unwrap() + 7;
    doc[at] = if doc[at] == b'0' { b'1' } else { b'0' };
}
