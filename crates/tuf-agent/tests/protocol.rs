//! The conformance-suite client protocol driven through the real binary: exit codes, request
//! order, what lands in the metadata and target directories, for every key type.

mod common;

use common::{agent, Client, Repo};
use serde_json::{json, Value};

#[test]
fn usage_errors_exit_1_and_help_exits_0() {
    assert_eq!(agent(&[]).code, Some(1));
    assert_eq!(agent(&["--no-such-flag", "refresh"]).code, Some(1));
    assert_eq!(agent(&["frobnicate"]).code, Some(1));
    assert_eq!(
        agent(&["--metadata-dir", "/nonexistent", "init"]).code,
        Some(1)
    );
    assert_eq!(agent(&["--help"]).code, Some(0));
}

#[test]
fn the_binary_says_which_crypto_it_was_built_with() {
    // The same tests run against both builds (scripts/test): this one says which ran.
    let expected = if cfg!(feature = "pure-rust") {
        "(crypto: RustCrypto)"
    } else {
        "(crypto: aws-lc-rs)"
    };
    let out = agent(&["--version"]);
    assert!(out.stdout.contains(expected), "{out:?}");
}

#[test]
fn refresh_without_init_fails_with_exit_1() {
    let dir = tempfile::TempDir::new().unwrap();
    agent(&[
        "--metadata-url",
        "http://127.0.0.1:9/",
        "--metadata-dir",
        dir.path().to_str().unwrap(),
        "refresh",
    ])
    .failure("no trusted root in")
    .failure("run `tuf-agent init` first");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn init_copies_the_root_and_makes_no_request() {
    let Some(repo) = Repo::new(json!({})) else {
        return;
    };
    repo.server.take_requests();
    let client = repo.client();
    assert_eq!(
        client.trusted("root.json").unwrap(),
        repo.read("1.root.json")
    );
    assert!(repo.server.take_requests().is_empty());
    let missing = client.metadata.path().join("missing.json");
    client
        .run(&["init", missing.to_str().unwrap()])
        .failure(&format!(
            "reading trusted root {}: No such file",
            missing.display()
        ));
    assert_eq!(
        client.trusted("root.json").unwrap(),
        repo.read("1.root.json")
    );
}

#[test]
fn refresh_fetches_in_workflow_order_and_persists_exact_bytes() {
    let Some(repo) = Repo::new(json!({})) else {
        return;
    };
    let client = repo.client();
    repo.server.take_requests();
    client.refresh().success();
    assert_eq!(
        repo.server.take_requests(),
        [
            "/metadata/2.root.json",
            "/metadata/timestamp.json",
            "/metadata/1.snapshot.json",
            "/metadata/1.targets.json",
        ]
    );
    assert_eq!(
        client.trusted("timestamp.json").unwrap(),
        repo.read("timestamp.json")
    );
    assert_eq!(
        client.trusted("snapshot.json").unwrap(),
        repo.read("1.snapshot.json")
    );
    assert_eq!(
        client.trusted("targets.json").unwrap(),
        repo.read("1.targets.json")
    );

    // Nothing new: the timestamp is unchanged, so nothing else is fetched.
    client.refresh().success();
    assert_eq!(
        repo.server.take_requests(),
        ["/metadata/2.root.json", "/metadata/timestamp.json"]
    );

    // A new root and new targets: the chain, then only what changed.
    repo.ops(json!([["bump", {"role": "root"}], ["add_target", {"path": "f", "data": "x"}], ["publish", {}]]));
    client.refresh().success();
    assert_eq!(
        repo.server.take_requests(),
        [
            "/metadata/2.root.json",
            "/metadata/3.root.json",
            "/metadata/timestamp.json",
            "/metadata/2.snapshot.json",
            "/metadata/2.targets.json",
        ]
    );
    assert_eq!(
        client.trusted("root.json").unwrap(),
        repo.read("2.root.json")
    );
    assert_eq!(client.version("targets.json"), Some(2));
}

fn download_with(key_type: &str) {
    let Some(repo) = Repo::new(json!({"key_type": key_type})) else {
        return;
    };
    repo.ops(json!([
        ["add_target", {"path": "a/b.txt", "data": "hello"}],
        ["add_target", {"path": "top", "data": "top level", "hash_algorithms": ["sha256", "sha512"]}],
        ["publish", {}]
    ]));
    let client = repo.client();
    repo.server.take_requests();
    client.download(&["a/b.txt", "top"]).success();
    let requests = repo.server.take_requests();
    let sha = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
    assert_eq!(requests[4], format!("/targets/a/{sha}.b.txt"));
    assert!(requests[5].starts_with("/targets/") && requests[5].ends_with(".top"));
    assert_eq!(client.target("a%2Fb.txt").unwrap(), b"hello");
    assert_eq!(client.target("top").unwrap(), b"top level");
    assert_eq!(client.target_files(), ["a%2Fb.txt", "top"]);

    // Cached: verified on disk, not fetched again.
    client.download(&["a/b.txt"]).success();
    let requests = repo.server.take_requests();
    assert!(
        !requests.iter().any(|r| r.starts_with("/targets/")),
        "{requests:?}"
    );
}

#[test]
fn download_ed25519() {
    download_with("ed25519");
}

#[test]
fn download_ecdsa() {
    download_with("ecdsa");
}

#[test]
fn download_rsa() {
    download_with("rsa");
}

#[test]
fn unknown_target_fails_with_exit_1() {
    let Some(repo) = Repo::new(json!({})) else {
        return;
    };
    let client = repo.client();
    client
        .download(&["nope"])
        .failure("target \"nope\" is not listed by any trusted targets role");
    assert!(client.target_files().is_empty());
}

#[test]
fn a_changed_cached_file_is_downloaded_again() {
    let Some(repo) = Repo::new(json!({})) else {
        return;
    };
    repo.ops(json!([["add_target", {"path": "f", "data": "good"}], ["publish", {}]]));
    let client = repo.client();
    std::fs::write(client.targets.path().join("f"), b"evil").unwrap();
    client.download(&["f"]).success();
    assert_eq!(client.target("f").unwrap(), b"good");
}

#[test]
fn plain_names_without_consistent_snapshots() {
    let Some(repo) = Repo::new(json!({"consistent": false})) else {
        return;
    };
    repo.ops(json!([["add_target", {"path": "d/f", "data": "plain"}], ["publish", {}]]));
    let client = repo.client();
    repo.server.take_requests();
    client.download(&["d/f"]).success();
    assert_eq!(
        repo.server.take_requests(),
        [
            "/metadata/2.root.json",
            "/metadata/timestamp.json",
            "/metadata/snapshot.json",
            "/metadata/targets.json",
            "/targets/d/f",
        ]
    );
    assert_eq!(client.target("d%2Ff").unwrap(), b"plain");
}

#[test]
fn delegated_roles_are_fetched_percent_encoded_and_stored_so() {
    let Some(repo) = Repo::new(json!({})) else {
        return;
    };
    repo.ops(json!([
        ["delegate", {"name": "team:a b", "paths": ["x/*"]}],
        ["add_target", {"role": "team:a b", "path": "x/1", "data": "one"}],
        ["publish", {}]
    ]));
    let client = repo.client();
    client.refresh().success();
    repo.server.take_requests();
    client.download(&["x/1"]).success();
    let requests = repo.server.take_requests();
    assert_eq!(requests[2], "/metadata/1.team%3Aa%20b.json", "{requests:?}");
    assert_eq!(
        client.trusted("team%3Aa%20b.json").unwrap(),
        repo.read("1.team%3Aa%20b.json")
    );
    assert_eq!(client.target("x%2F1").unwrap(), b"one");
}

#[test]
fn hash_prefix_delegations() {
    let Some(repo) = Repo::new(json!({})) else {
        return;
    };
    // sha256("p/1") starts with 5; the empty prefix matches everything.
    let digest = tuf_core::hash::sha256_hex(b"p/1");
    repo.ops(json!([
        ["delegate", {"name": "other", "hash_prefixes": [if digest.starts_with('0') { "1" } else { "0" }]}],
        ["delegate", {"name": "mine", "hash_prefixes": [&digest[..2]]}],
        ["add_target", {"role": "mine", "path": "p/1", "data": "prefixed"}],
        ["publish", {}]
    ]));
    let client = repo.client();
    client.download(&["p/1"]).success();
    assert_eq!(client.target("p%2F1").unwrap(), b"prefixed");
    assert!(client.trusted("other.json").is_none());
}

#[test]
fn succinct_hash_bins() {
    let Some(repo) = Repo::new(json!({})) else {
        return;
    };
    let d = tuf_core::hash::sha256(b"bin/target");
    let bin = format!("bin-{:x}", d[0] >> 5);
    repo.ops(json!([
        ["succinct", {"bit_length": 3}],
        ["add_target", {"role": bin, "path": "bin/target", "data": "binned"}],
        ["publish", {}]
    ]));
    let client = repo.client();
    repo.server.take_requests();
    client.download(&["bin/target"]).success();
    let requests = repo.server.take_requests();
    assert!(
        requests.contains(&format!("/metadata/1.{bin}.json")),
        "{requests:?}"
    );
    assert_eq!(client.target("bin%2Ftarget").unwrap(), b"binned");
}

#[test]
fn update_installs_the_newest_target_for_the_hardware_id() {
    let Some(repo) = Repo::new(json!({})) else {
        return;
    };
    let custom = |v: &str, hw: &str, tags: &[&str]| json!({"name": "foo", "version": v, "hardware_ids": [hw], "tags": tags});
    repo.ops(json!([
        ["add_target", {"path": "foo-9", "data": "nine", "custom": custom("9", "hw", &["prod"])}],
        ["add_target", {"path": "foo-10", "data": "ten", "custom": custom("10", "hw", &["dev"])}],
        ["add_target", {"path": "foo-11", "data": "eleven", "custom": custom("11", "other", &["prod"])}],
        ["publish", {}]
    ]));
    let client = repo.client();
    let log = client.targets.path().join("installed.log");
    let install = format!("cat >> {} <", log.display());
    let run = |tag: Option<&str>| {
        let mut args = vec![
            "--metadata-url".to_owned(),
            repo.metadata_url(),
            "--target-dir".to_owned(),
            client.targets.path().display().to_string(),
            "--target-base-url".to_owned(),
            repo.targets_url(),
            "--hardware-id".to_owned(),
            "hw".to_owned(),
            "--install-cmd".to_owned(),
            install.clone(),
        ];
        if let Some(tag) = tag {
            args.extend(["--tag".to_owned(), tag.to_owned()]);
        }
        args.push("update".to_owned());
        client.run(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    assert_eq!(run(None).success().stdout.trim(), "installed foo-10");
    assert_eq!(run(None).success().stdout.trim(), "up to date: foo-10");
    assert_eq!(run(Some("prod")).success().stdout.trim(), "installed foo-9");
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "teneight".replace("eight", "nine")
    );
    run(Some("nope")).failure("no target for hardware id \"hw\" with tag \"nope\"");
}

#[test]
fn update_reads_a_json_config_file() {
    let Some(repo) = Repo::new(json!({})) else {
        return;
    };
    repo.ops(json!([
        ["add_target", {"path": "foo-1", "data": "one", "custom": {"name": "foo", "version": "1", "hardware_ids": ["hw"]}}],
        ["publish", {}]
    ]));
    let client = Client::new(&repo);
    let root = repo.file("1.root.json");
    client.run(&["init", root.to_str().unwrap()]).success();
    let config = client.targets.path().join("agent.json");
    std::fs::write(
        &config,
        json!({
            "metadata_url": repo.metadata_url(),
            "target_dir": client.targets.path(),
            "target_base_url": repo.targets_url(),
            "hardware_id": "hw",
        })
        .to_string(),
    )
    .unwrap();
    let out = client.run(&["--config", config.to_str().unwrap(), "update"]);
    assert!(
        out.success().stdout.starts_with("downloaded foo-1"),
        "{out:?}"
    );
    assert_eq!(client.target("foo-1").unwrap(), b"one");
}

#[test]
fn a_403_for_the_next_root_means_there_is_none() {
    let Some(repo) = Repo::new(json!({})) else {
        return;
    };
    repo.server.make_forbidden("/metadata/2.root.json");
    let client = repo.client();
    client.refresh().success();
    let requests = repo.server.take_requests();
    assert_eq!(requests[0], "/metadata/2.root.json", "{requests:?}");
    assert_eq!(client.version("root.json"), Some(1));
    // Anywhere else a 403 is an error like any other status.
    repo.server.make_forbidden("/metadata/timestamp.json");
    client
        .refresh()
        .failure("/metadata/timestamp.json: HTTP status 403");
    assert_eq!(client.version("timestamp.json"), Some(1));
}

#[test]
fn root_rotations_stop_at_256_per_update() {
    let Some(repo) = Repo::new(json!({})) else {
        return;
    };
    let ops: Vec<Value> = (0..260)
        .flat_map(|_| [json!(["bump", {"role": "root"}]), json!(["publish", {}])])
        .collect();
    repo.ops(Value::Array(ops));
    let client = repo.client();
    client.refresh().success();
    let requests = repo.server.take_requests();
    assert!(requests.contains(&"/metadata/257.root.json".to_owned()));
    assert!(
        !requests.contains(&"/metadata/258.root.json".to_owned()),
        "fetched past the cap"
    );
    assert_eq!(client.version("root.json"), Some(257));
    // The next update carries on from there.
    client.refresh().success();
    assert_eq!(client.version("root.json"), Some(261));
}

#[test]
fn delegation_search_visits_at_most_32_roles() {
    let Some(repo) = Repo::new(json!({})) else {
        return;
    };
    let mut ops: Vec<Value> = (0..40)
        .map(|i| json!(["delegate", {"name": format!("r{i:02}"), "paths": ["x/*"]}]))
        .collect();
    ops.push(json!(["add_target", {"role": "r39", "path": "x/1", "data": "deep"}]));
    ops.push(json!(["add_target", {"role": "r30", "path": "x/2", "data": "reachable"}]));
    ops.push(json!(["publish", {}]));
    repo.ops(Value::Array(ops));
    let client = repo.client();
    client.refresh().success();
    repo.server.take_requests();
    client
        .download(&["x/1"])
        .failure("target \"x/1\" is not listed by any trusted targets role");
    let requests = repo.server.take_requests();
    // targets.json plus r00 to r30: 32 roles.
    assert!(
        requests.contains(&"/metadata/1.r30.json".to_owned()),
        "{requests:?}"
    );
    assert!(
        !requests
            .iter()
            .any(|r| r.contains("r31") || r.contains("r39")),
        "{requests:?}"
    );
    client.download(&["x/2"]).success();
    assert_eq!(client.target("x%2F2").unwrap(), b"reachable");
}

#[test]
fn role_names_with_slash_query_and_dots_are_encoded_in_urls_and_file_names() {
    let Some(repo) = Repo::new(json!({})) else {
        return;
    };
    repo.ops(json!([
        ["delegate", {"name": "a/b?c..d", "paths": ["x/*"]}],
        ["delegate", {"name": "..", "paths": ["x/*"]}],
        ["add_target", {"role": "..", "path": "x/1", "data": "one"}],
        ["publish", {}]
    ]));
    let client = repo.client();
    client.refresh().success();
    repo.server.take_requests();
    client.download(&["x/1"]).success();
    let requests = repo.server.take_requests();
    let target = format!("/targets/x/{}.1", tuf_core::hash::sha256_hex(b"one"));
    // After the root and timestamp checks (snapshot is current): both roles, then the file.
    assert_eq!(
        requests[2..],
        [
            "/metadata/1.a%2Fb%3Fc..d.json",
            "/metadata/1....json",
            target.as_str()
        ]
    );
    assert_eq!(
        client.trusted("a%2Fb%3Fc..d.json").unwrap(),
        repo.read("1.a%2Fb%3Fc..d.json")
    );
    assert_eq!(client.trusted("...json").unwrap(), repo.read("1....json"));
    // Nothing landed outside the metadata directory.
    let parent = client.metadata.path().parent().unwrap();
    assert!(!parent.join("c..d.json").exists());
    assert_eq!(client.target_files(), ["x%2F1"]);
}

#[test]
fn download_creates_the_target_dir() {
    let Some(repo) = Repo::new(json!({})) else {
        return;
    };
    repo.ops(json!([["add_target", {"path": "f", "data": "x"}], ["publish", {}]]));
    let client = repo.client();
    let dir = client.targets.path().join("new/sub");
    let url = repo.metadata_url();
    let base = repo.targets_url();
    client
        .run(&[
            "--metadata-url",
            &url,
            "--target-name",
            "f",
            "--target-dir",
            dir.to_str().unwrap(),
            "--target-base-url",
            &base,
            "download",
        ])
        .success();
    assert_eq!(std::fs::read(dir.join("f")).unwrap(), b"x");
}

#[test]
fn update_searches_delegated_roles_within_their_paths() {
    let Some(repo) = Repo::new(json!({})) else {
        return;
    };
    let custom = |v: &str| json!({"name": "foo", "version": v, "hardware_ids": ["hw"], "tags": []});
    repo.ops(json!([
        ["add_target", {"path": "foo-1", "data": "one", "custom": custom("1")}],
        ["delegate", {"name": "rogue", "paths": ["bar-*"]}],
        ["delegate", {"name": "team", "paths": ["foo-*"]}],
        // Not delegated to rogue: must never be chosen, however new.
        ["add_target", {"role": "rogue", "path": "foo-99", "data": "evil", "custom": custom("99")}],
        ["add_target", {"role": "team", "path": "foo-2", "data": "two", "custom": custom("2")}],
        ["publish", {}]
    ]));
    let client = repo.client();
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
    assert!(out.success().stdout.contains("foo-2"), "{out:?}");
    assert_eq!(client.target("foo-2").unwrap(), b"two");
    assert!(client.target("foo-99").is_none());
}

/// `--max-metadata-bytes` bounds what a device reads of targets (and snapshot) metadata,
/// whatever length the repository lists; a ceiling too small to be real is refused.
#[test]
fn the_metadata_ceiling_is_configurable() {
    let Some(repo) = Repo::new(json!({})) else {
        return;
    };
    let adds: Vec<Value> = (0..40)
        .map(|i| json!(["add_target", {"path": format!("file-{i:02}"), "data": "x"}]))
        .chain([json!(["publish", {}])])
        .collect();
    repo.ops(Value::Array(adds));
    let targets = repo.read("2.targets.json");
    assert!(targets.len() > 4096, "{} bytes", targets.len());
    let client = repo.client();
    let url = repo.metadata_url();
    let refresh = |ceiling: &str| {
        client.run(&[
            "--metadata-url",
            &url,
            "--max-metadata-bytes",
            ceiling,
            "refresh",
        ])
    };
    refresh("4096").failure("2.targets.json: more than 4096 bytes");
    assert_eq!(client.version("targets.json"), None);
    refresh("100").failure("--max-metadata-bytes is 100; give at least 1024");
    let ceiling = targets.len().to_string();
    refresh(&ceiling).success();
    assert_eq!(client.trusted("targets.json").unwrap(), targets);
}
