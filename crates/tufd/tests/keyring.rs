//! The keyring (crypto-shredding, `src/keyring.rs`) across restarts and replicas: a
//! destruction on one replica moves every replica's keyring file past the destroyed epoch;
//! a keyring file that is missing, foreign or ahead of the database stops tufd with a clear
//! error.

mod common;
#[path = "common/opener.rs"]
mod opener;

use std::time::{Duration, Instant};

use common::*;

/// After a destruction on replica B, replica A's keyring file leaves the old epoch within its
/// upkeep interval, and neither file holds the old epoch key any more.
#[test]
fn every_replica_leaves_a_destroyed_epoch() {
    let Some(url) = postgres_database() else {
        return;
    };
    let a = Server::start(Some(&url), &["--resign-interval-secs", "1"]);
    let b = a.replica(&["--resign-interval-secs", "1"]);
    let f = create_factory(&a, "epochs");
    let file = |s: &Server| s.dir.path().join("keyring");
    let old = opener::Epoch::read(&file(&a));
    assert_eq!(opener::Epoch::read(&file(&b)), old);
    let r = client()
        .get(f.credentials_url.replace(&a.base, &b.base))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(opener::Epoch::read(&file(&b)).epoch > old.epoch);
    let started = Instant::now();
    while opener::Epoch::read(&file(&a)).epoch == old.epoch {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "replica A kept the destroyed epoch"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for s in [&a, &b] {
        let now = opener::Epoch::read(&file(s));
        assert!(now.epoch > old.epoch);
        let text = std::fs::read(file(s)).unwrap();
        assert!(!contains(&text, hex::encode(&old.key).as_bytes()));
    }
    // Both replicas still sign with the keys that stay.
    for s in [&a, &b] {
        assert_eq!(
            add_target(s, &f, "app", &random_hex(4)).0,
            StatusCode::CREATED
        );
    }
}

/// A replica without the keyring file, or with another store's, does not start; a file
/// ahead of the database (a database restored from an older backup) neither.
#[test]
fn a_missing_foreign_or_newer_keyring_is_refused() {
    let Some(url) = postgres_database() else {
        return;
    };
    let a = Server::start(Some(&url), &[]);
    let start_with = |keyring: Option<String>| {
        let dir = tempfile::tempdir().unwrap();
        if let Some(text) = keyring {
            std::fs::write(dir.path().join("keyring"), text).unwrap();
        }
        tufd_fails(dir.path(), &url)
    };
    let err = start_with(None);
    assert!(err.contains("keyring epoch key is not in"), "{err}");
    let foreign = format!("tufd-keyring 1\n0\n{}\n", random_hex(32));
    let err = start_with(Some(foreign));
    assert!(err.contains("does not belong to this database"), "{err}");
    let mine = opener::Epoch::read(&a.dir.path().join("keyring"));
    let ahead = mine.next();
    let err = start_with(Some(format!(
        "tufd-keyring 1\n{}\n{}\n",
        ahead.epoch,
        hex::encode(&ahead.key)
    )));
    assert!(err.contains("ahead of the database"), "{err}");
}

/// tufd on `dir` and `url` must exit with an error; returns its stderr.
fn tufd_fails(dir: &std::path::Path, url: &str) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tufd"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .args(["--database-url", url])
        .env("TUFD_SERVER_KEY", SERVER_KEY)
        .env("TUFD_ADMIN_TOKEN", "test-admin-token-0123456789abcdef")
        .output()
        .unwrap();
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
