//! Target downloads that break off resume with `Range`, in the same run and in the next one;
//! a server that ignores `Range` still works. (Tampered partial downloads: tests/attacks.rs.)

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Client, Reply, Repo};
use serde_json::json;

/// 320,000 bytes: several reads of the client's 64 KiB buffer.
pub const PIECE: &str = "0123456789abcdef";
pub const REPEAT: usize = 20_000;

fn image() -> Vec<u8> {
    PIECE.repeat(REPEAT).into_bytes()
}

/// A repository with target `fw` (the image); returns it and the URL path it is served at.
fn repo() -> Option<(Repo, String)> {
    let repo = Repo::new(json!({}))?;
    repo.ops(json!([
        ["add_target", {"path": "fw", "data": PIECE, "repeat": REPEAT}],
        ["publish", {}]
    ]));
    let served = format!("/targets/{}.fw", tuf_core::hash::sha256_hex(&image()));
    Some((repo, served))
}

fn target_ranges(repo: &Repo, served: &str) -> Vec<Option<String>> {
    repo.server
        .take_ranges()
        .into_iter()
        .filter(|(p, _)| p == served)
        .map(|(_, r)| r)
        .collect()
}

fn partial_files(client: &Client) -> Vec<PathBuf> {
    std::fs::read_dir(client.targets.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("+partial-")
        })
        .collect()
}

#[test]
fn a_cut_download_resumes_in_the_same_run() {
    let Some((repo, served)) = repo() else { return };
    let client = repo.client();
    repo.server.script(
        &served,
        vec![Reply::Body {
            bytes: image(),
            cut: Some(100_000),
        }],
    );
    client.download(&["fw"]).success();
    assert_eq!(client.target("fw").unwrap(), image());
    assert_eq!(
        target_ranges(&repo, &served),
        [None, Some("bytes=100000-".to_owned())]
    );
    assert_eq!(client.target_files(), ["fw"]);
}

#[test]
fn a_download_cut_and_then_unavailable_resumes_in_the_next_run() {
    let Some((repo, served)) = repo() else { return };
    let client = repo.client();
    repo.server.script(
        &served,
        vec![
            Reply::Body {
                bytes: image(),
                cut: Some(150_000),
            },
            Reply::Status(503),
        ],
    );
    client.download(&["fw"]).failure("HTTP status 503");
    let parts = partial_files(&client);
    assert_eq!(parts.len(), 1, "{parts:?}");
    assert_eq!(std::fs::read(&parts[0]).unwrap(), &image()[..150_000]);
    assert!(client.target("fw").is_none());
    target_ranges(&repo, &served);

    client.download(&["fw"]).success();
    assert_eq!(
        target_ranges(&repo, &served),
        [Some("bytes=150000-".to_owned())]
    );
    assert_eq!(client.target("fw").unwrap(), image());
    assert_eq!(client.target_files(), ["fw"]);
}

#[test]
fn a_killed_download_resumes_in_the_next_run() {
    let Some((repo, served)) = repo() else { return };
    let client = repo.client();
    repo.server
        .script(&served, vec![Reply::Stall { after: 200_000 }]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_tuf-agent"))
        .args([
            "--metadata-dir",
            client.metadata.path().to_str().unwrap(),
            "--metadata-url",
            &repo.metadata_url(),
            "--target-name",
            "fw",
            "--target-dir",
            client.targets.path().to_str().unwrap(),
            "--target-base-url",
            &repo.targets_url(),
            "download",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let partial_len = || {
        partial_files(&client)
            .first()
            .and_then(|p| std::fs::metadata(p).ok())
            .map_or(0, |m| m.len())
    };
    while partial_len() < 200_000 {
        assert!(
            Instant::now() < deadline,
            "the download never got to 200,000 bytes"
        );
        assert!(child.try_wait().unwrap().is_none(), "the agent ended early");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(client.target("fw").is_none());
    target_ranges(&repo, &served);

    client.download(&["fw"]).success();
    assert_eq!(
        target_ranges(&repo, &served),
        [Some("bytes=200000-".to_owned())]
    );
    assert_eq!(client.target("fw").unwrap(), image());
    assert_eq!(client.target_files(), ["fw"]);
}

#[test]
fn a_server_that_ignores_range_sends_the_whole_file_again() {
    let Some((repo, served)) = repo() else { return };
    let client = repo.client();
    repo.server.ignore_ranges(true);
    repo.server.script(
        &served,
        vec![Reply::Body {
            bytes: image(),
            cut: Some(100_000),
        }],
    );
    client.download(&["fw"]).success();
    // Asked for the rest, got all of it, and used it from the start.
    assert_eq!(
        target_ranges(&repo, &served),
        [None, Some("bytes=100000-".to_owned())]
    );
    assert_eq!(client.target("fw").unwrap(), image());
    assert_eq!(client.target_files(), ["fw"]);
}

#[test]
fn a_download_that_never_progresses_stops_and_leaves_nothing() {
    let Some((repo, served)) = repo() else { return };
    let client = repo.client();
    repo.server.script(&served, vec![Reply::Status(500)]);
    client.download(&["fw"]).failure("HTTP status 500");
    assert_eq!(target_ranges(&repo, &served), [None]);
    assert!(client.target_files().is_empty());
}
