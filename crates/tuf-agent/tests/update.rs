//! `tuf-agent update` through the real binary: release order and `--keep`.

mod common;

use common::{Client, Outcome, Repo};
use serde_json::{json, Value};

fn custom(version: &str) -> Value {
    json!({"name": "fw", "version": version, "hardware_ids": ["hw"], "tags": []})
}

/// A repository with one target per version, for hardware ID `hw`.
fn repo_with(versions: &[&str]) -> Option<Repo> {
    let repo = Repo::new(json!({}))?;
    let mut ops: Vec<Value> = versions
        .iter()
        .map(|v| json!(["add_target", {"path": format!("fw-{v}"), "data": format!("image {v}"), "custom": custom(v)}]))
        .collect();
    ops.push(json!(["publish", {}]));
    repo.ops(Value::Array(ops));
    Some(repo)
}

fn update(repo: &Repo, client: &Client, extra: &[&str]) -> Outcome {
    let log = client.targets.path().join("installed.log");
    let install = format!("cat >> {} <", log.display());
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
        install,
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push("update".to_owned());
    client.run(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

#[test]
fn semantic_versions_by_precedence_1_10_0_over_1_9_0() {
    let Some(repo) = repo_with(&["1.9.0", "1.10.0", "1.10.0-rc.2", "0.99.0"]) else {
        return;
    };
    let client = repo.client();
    assert_eq!(
        update(&repo, &client, &[]).success().stdout.trim(),
        "installed fw-1.10.0"
    );
    assert_eq!(client.target("fw-1.10.0").unwrap(), b"image 1.10.0");
}

#[test]
fn numeric_versions_as_numbers_10_over_9() {
    let Some(repo) = repo_with(&["9", "10", "2"]) else {
        return;
    };
    let client = repo.client();
    assert_eq!(
        update(&repo, &client, &[]).success().stdout.trim(),
        "installed fw-10"
    );
}

#[test]
fn versions_outside_both_schemes_are_refused_and_nothing_is_installed() {
    for (versions, reason) in [
        (
            &["1.9", "1.10"][..],
            "neither a number nor a semantic version",
        ),
        (&["10", "1.0.0"][..], "one scheme must be used"),
    ] {
        let Some(repo) = repo_with(versions) else {
            return;
        };
        let client = repo.client();
        update(&repo, &client, &[]).failure(reason);
        assert!(client.target_files().is_empty(), "{versions:?}");
    }
}

#[test]
fn keep_removes_older_target_files_update_wrote_and_nothing_else() {
    let Some(repo) = repo_with(&["1"]) else {
        return;
    };
    let client = repo.client();
    std::fs::write(client.targets.path().join("notes.txt"), "mine").unwrap();
    update(&repo, &client, &["--keep", "2"]).success();
    for v in ["2", "3"] {
        repo.ops(json!([
            ["add_target", {"path": format!("fw-{v}"), "data": format!("image {v}"), "custom": custom(v)}],
            ["publish", {}]
        ]));
        update(&repo, &client, &["--keep", "2"]).success();
    }
    assert_eq!(
        client.target_files(),
        [
            "+history",
            "+installed",
            "fw-2",
            "fw-3",
            "installed.log",
            "notes.txt"
        ]
    );
    // Up to date, and a smaller --keep: the installed target stays, the older one goes.
    let out = update(&repo, &client, &["--keep", "1"]);
    assert_eq!(
        out.success().stdout,
        "up to date: fw-3\nremoved old target file fw-2\n"
    );
    assert_eq!(
        client.target_files(),
        [
            "+history",
            "+installed",
            "fw-3",
            "installed.log",
            "notes.txt"
        ]
    );
    update(&repo, &client, &["--keep", "0"]).failure("--keep must be at least 1");
    assert!(client.target("fw-3").is_some());
}
