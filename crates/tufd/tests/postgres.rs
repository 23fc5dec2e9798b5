//! The storage test-suite on PostgreSQL (TUFD_TEST_DATABASE_URL), and two replicas sharing
//! one database.

mod common;

use common::suite;
use common::*;
use serde_json::Value;

#[test]
fn bootstrap_and_metadata() {
    let Some(s) = Server::postgres() else { return };
    suite::bootstrap_and_metadata(&s);
}

#[test]
fn targets_and_signing() {
    let Some(s) = Server::postgres() else { return };
    suite::targets_and_signing(&s);
}

#[test]
fn bad_input() {
    let Some(s) = Server::postgres() else { return };
    suite::bad_input(&s);
}

#[test]
fn token_scopes() {
    let Some(s) = Server::postgres() else { return };
    suite::token_scopes(&s);
}

/// Two `tufd` processes on one database: concurrent additions through both lose nothing and
/// never reuse a version; the one-time credentials download succeeds exactly once.
#[test]
fn two_replicas() {
    let Some(url) = postgres_database() else {
        return;
    };
    let a = Server::start(Some(&url), &[]);
    let b = a.replica(&[]);
    let f = create_factory(&a, "shared");
    // The artifact-carrying and metadata rows are visible from the other replica.
    let (st, _) = get(&b, "/repo/shared/ci/metadata/root.json", None);
    assert_eq!(st, StatusCode::OK);

    let urls: Vec<String> = [&a, &b]
        .iter()
        .map(|s| f.credentials_url.replace(&a.base, &s.base))
        .collect();
    let handles: Vec<_> = (0..6)
        .map(|i| {
            let u = urls[i % 2].clone();
            std::thread::spawn(move || client().get(u).send().unwrap().status())
        })
        .collect();
    let statuses: Vec<StatusCode> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{statuses:?}"
    );
    assert!(statuses
        .iter()
        .all(|s| *s == StatusCode::OK || *s == StatusCode::GONE));

    suite::concurrent_targets(&[&a, &b], &f, 6, 5);
}

#[test]
fn root_rotation_and_waves() {
    let Some(s) = Server::postgres() else { return };
    suite::root_rotation_and_waves(&s);
}

#[test]
fn root_update_rejections() {
    let Some(s) = Server::postgres() else { return };
    suite::root_update_rejections(&s);
}

#[test]
fn server_held_keys_are_not_offline() {
    let Some(s) = Server::postgres() else { return };
    suite::server_held_keys_are_not_offline(&s);
}

#[test]
fn batch_targets() {
    let Some(s) = Server::postgres() else { return };
    suite::batch_targets(&s);
}

#[test]
fn old_versions_pruned() {
    let Some(s) = Server::postgres() else { return };
    suite::old_versions_pruned(&s);
}

/// Two replicas re-sign the same Factories; each version is still published once.
#[test]
fn upkeep_with_two_replicas() {
    let Some(url) = postgres_database() else {
        return;
    };
    let a = Server::start(Some(&url), SHORT_PERIODS);
    let b = a.replica(SHORT_PERIODS);
    suite::upkeep(&[&a, &b]);
}

/// Replicas started at the same moment on an empty database create one admin token between
/// them, written to exactly one data directory, and every replica accepts it.
#[test]
fn replicas_starting_together_create_one_admin_token() {
    let Some(url) = postgres_database() else {
        return;
    };
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    // Replicas of one database share its keyring: the operator gives each a copy of one
    // keyring file before their first start.
    let keyring = format!("tufd-keyring 1\n0\n{}\n", random_hex(32));
    for d in &dirs {
        std::fs::create_dir_all(d.path().join("data")).unwrap();
        std::fs::write(d.path().join("data/keyring"), &keyring).unwrap();
    }
    let mut children: Vec<std::process::Child> = dirs
        .iter()
        .map(|d| {
            std::process::Command::new(env!("CARGO_BIN_EXE_tufd"))
                .args(["--listen", "127.0.0.1:0", "--data-dir"])
                .arg(d.path().join("data"))
                .args(["--database-url", &url])
                .env("TUFD_SERVER_KEY", common::SERVER_KEY)
                .env_remove("TUFD_ADMIN_TOKEN")
                .env("RUST_LOG", "warn")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let bases: Vec<String> = children
        .iter_mut()
        .map(|c| {
            let mut line = String::new();
            std::io::BufRead::read_line(
                &mut std::io::BufReader::new(c.stdout.take().unwrap()),
                &mut line,
            )
            .unwrap();
            line.trim()
                .strip_prefix("listening on ")
                .unwrap_or_else(|| panic!("tufd did not start: {line:?}"))
                .to_owned()
        })
        .collect();
    let tokens: Vec<String> = dirs
        .iter()
        .filter_map(|d| std::fs::read_to_string(d.path().join("data/admin-token")).ok())
        .collect();
    assert_eq!(tokens.len(), 1, "admin-token files: {tokens:?}");
    for (i, base) in bases.iter().enumerate() {
        let r = client()
            .post(format!("{base}/ota/factories"))
            .bearer_auth(tokens[0].trim())
            .json(&serde_json::json!({"name": format!("f{i}")}))
            .send()
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED, "replica {i}");
    }
    for mut c in children {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// Replicas that cache heads (`--replica-head-cache-ms`, here ten minutes, so only the
/// announcement can end a cached head early): a commit on one replica reaches what the
/// other serves through LISTEN/NOTIFY, Factory by Factory.
#[test]
fn replicas_caching_heads_follow_each_others_commits() {
    let Some(url) = postgres_database() else {
        return;
    };
    let cache = ["--replica-head-cache-ms", "600000"];
    let a = Server::start(Some(&url), &cache);
    let b = a.replica(&cache);
    let f = create_factory(&a, "followed");
    let version = |s: &Server| -> u64 {
        let (st, body) = get(s, "/repo/followed/ci/metadata/timestamp.json", None);
        assert_eq!(st, StatusCode::OK);
        let v: Value = serde_json::from_slice(&body).unwrap();
        v["signed"]["version"].as_u64().unwrap()
    };
    let before = version(&b);
    assert_eq!(version(&b), before, "served again from b's cache");
    assert_eq!(add_target(&a, &f, "app", "1").0, StatusCode::CREATED);
    let now = version(&a);
    assert!(now > before);
    // b hears a's commit: well before its cached head would age out.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while version(&b) != now {
        assert!(
            std::time::Instant::now() < deadline,
            "replica b still serves timestamp version {before} of a Factory at version {now}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // And the other way round.
    assert_eq!(add_target(&b, &f, "app", "2").0, StatusCode::CREATED);
    let newer = version(&b);
    while version(&a) != newer {
        assert!(std::time::Instant::now() < deadline, "a never heard b");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn concurrent_adds() {
    let Some(s) = Server::postgres() else { return };
    suite::concurrent_adds(&s);
}

#[test]
fn metrics_follow_attention() {
    let Some(healthy) = Server::postgres() else {
        return;
    };
    let Some(url) = postgres_database() else {
        return;
    };
    let lapsing = Server::start(Some(&url), suite::LAPSING);
    suite::metrics_follow_attention(&healthy, &lapsing);
}

#[test]
fn large_targets_are_stored_in_chunks() {
    let Some(s) = Server::postgres() else { return };
    suite::large_targets_are_stored_in_chunks(&s);
}
