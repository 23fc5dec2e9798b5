//! The storage test-suite on the embedded SQLite store.

mod common;

use common::suite;
use common::*;

#[test]
fn bootstrap_and_metadata() {
    suite::bootstrap_and_metadata(&Server::sqlite());
}

#[test]
fn targets_and_signing() {
    suite::targets_and_signing(&Server::sqlite());
}

#[test]
fn bad_input() {
    suite::bad_input(&Server::sqlite());
}

#[test]
fn token_scopes() {
    suite::token_scopes(&Server::sqlite());
}

#[test]
fn concurrent_targets() {
    let s = Server::sqlite();
    let f = create_factory(&s, "busy");
    suite::concurrent_targets(&[&s], &f, 4, 5);
}

#[test]
fn root_rotation_and_waves() {
    suite::root_rotation_and_waves(&Server::sqlite());
}

#[test]
fn root_update_rejections() {
    suite::root_update_rejections(&Server::sqlite());
}

#[test]
fn server_held_keys_are_not_offline() {
    suite::server_held_keys_are_not_offline(&Server::sqlite());
}

#[test]
fn batch_targets() {
    suite::batch_targets(&Server::sqlite());
}

#[test]
fn upkeep_resigns_before_expiry() {
    let s = Server::start(None, SHORT_PERIODS);
    suite::upkeep(&[&s]);
}

/// SIGTERM stops the server cleanly (exit status 0).
#[test]
fn graceful_shutdown() {
    let mut s = Server::sqlite();
    let status = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(s.pid().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let exit = s.wait();
    assert!(exit.success(), "{exit:?}");
}

/// The store remembers its server key: a different key is refused at start, and with
/// --database-url a key shared by the replicas is required.
#[test]
fn server_key_is_checked() {
    let mut s = Server::sqlite();
    let dir = s.dir.path().to_owned();
    let key = std::fs::read_to_string(dir.join("server-key")).unwrap();
    assert_eq!(key.trim().len(), 64);
    let admin = std::fs::metadata(dir.join("server-key")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&admin.permissions()) & 0o777,
        0o600
    );
    // Stopped but kept: dropping `s` would delete the data directory.
    s.stop();
    let run = |extra: &[&str], env: &[(&str, &str)]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_tufd"))
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&dir)
            .args(extra)
            .envs(env.iter().copied())
            .output()
            .unwrap()
    };
    let out = run(&[], &[("TUFD_SERVER_KEY", &"ab".repeat(32))]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("server key does not match"));
    let out = run(&["--database-url", "postgres://127.0.0.1:1/none"], &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("TUFD_SERVER_KEY"));
}

/// On first start without TUFD_ADMIN_TOKEN the admin token is written to a 0600 file.
#[test]
fn admin_token_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tufd"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("fresh"))
        .env_remove("TUFD_ADMIN_TOKEN")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();
    let path = dir.path().join("fresh/admin-token");
    let token = std::fs::read_to_string(&path).unwrap();
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let data_mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(dir.path().join("fresh"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(data_mode & 0o777, 0o700);
    let r = client()
        .post(format!("{base}/ota/factories"))
        .bearer_auth(token.trim())
        .json(&serde_json::json!({"name": "first"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let _ = child.kill();
    let _ = child.wait();
}

/// Roots (signed offline) close to expiry are reported once per version in the audit log.
#[test]
fn offline_signed_metadata_close_to_expiry_is_audited() {
    // Roots valid for 10 days: inside the 30-day warning window from the start. A short
    // timestamp validity makes each upkeep pass visible: it re-signs the timestamp.
    let mut args = vec!["--root-expiry-secs", "864000"];
    args.extend_from_slice(SHORT_PERIODS);
    let s = Server::start(None, &args);
    let f = create_factory(&s, "expiring");
    let warnings = |s: &Server| -> Vec<serde_json::Value> {
        let log = get_json(s, "/ota/factories/expiring/audit", Some(&f.owner));
        log.as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "expiry.warning")
            .cloned()
            .collect()
    };
    let mut seen = Vec::new();
    for _ in 0..300 {
        seen = warnings(&s);
        if seen.len() >= 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let mut flavours: Vec<&str> = seen
        .iter()
        .map(|e| {
            assert_eq!(e["detail"]["role"], "root");
            assert_eq!(e["detail"]["version"], 1);
            assert_eq!(e["actor"], "tufd");
            e["detail"]["flavour"].as_str().unwrap()
        })
        .collect();
    flavours.sort_unstable();
    assert_eq!(flavours, ["ci", "prod"], "{seen:?}");
    // Later passes do not repeat a warning for the same version. Evidence that later passes
    // ran: the timestamp they re-sign. Passes run one after another and re-sign before they
    // warn, so once version v0 + 2 is out, the pass that published v0 + 1 has finished,
    // warnings included.
    let v0 = timestamp_version(&s);
    let mut v = v0;
    for _ in 0..600 {
        v = timestamp_version(&s);
        if v >= v0 + 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        v >= v0 + 2,
        "no upkeep pass ran in 60 s (timestamp still at {v})"
    );
    assert_eq!(warnings(&s).len(), 2);
}

fn timestamp_version(s: &Server) -> u64 {
    let (st, body) = get(s, "/repo/expiring/ci/metadata/timestamp.json", None);
    assert_eq!(st, StatusCode::OK);
    let ts: tuf_core::Signed<tuf_core::Timestamp> = tuf_core::Signed::from_slice(&body).unwrap();
    ts.signed.version
}

#[test]
fn old_versions_pruned() {
    suite::old_versions_pruned(&Server::sqlite());
}

#[test]
fn concurrent_adds() {
    suite::concurrent_adds(&Server::sqlite());
}

#[test]
fn metrics_follow_attention() {
    let lapsing = Server::start(None, suite::LAPSING);
    suite::metrics_follow_attention(&Server::sqlite(), &lapsing);
}

#[test]
fn large_targets_are_stored_in_chunks() {
    suite::large_targets_are_stored_in_chunks(&Server::sqlite());
}
