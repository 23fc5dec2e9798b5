//! `tufd backup` while CI uploads: each backup is one consistent moment of the store. Restored,
//! it serves metadata that verifies from timestamp to targets, and every artifact its targets
//! name, with the right bytes.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use common::suite::verified_targets;
use common::*;
use serde_json::json;

#[test]
fn backups_taken_during_uploads_restore_to_consistent_stores() {
    let s = Server::sqlite();
    let f = create_factory(&s, "acme");
    let work = tempfile::tempdir().unwrap();
    let done = AtomicBool::new(false);
    let uploaded = AtomicUsize::new(0);
    let backups: Vec<_> = (0..3).map(|i| work.path().join(format!("b{i}"))).collect();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut n = 0;
            while !done.load(Ordering::SeqCst) || n < 3 {
                n += 1;
                upload(&s, &f, n);
                uploaded.store(n, Ordering::SeqCst);
            }
        });
        for b in &backups {
            let before = uploaded.load(Ordering::SeqCst);
            while uploaded.load(Ordering::SeqCst) < before + 2 {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            let out = tufd(&["backup", "--data-dir", path(s.dir.path()), "--out", path(b)]);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        done.store(true, Ordering::SeqCst);
    });
    let total = uploaded.load(Ordering::SeqCst);
    let mut last = 0;
    for b in &backups {
        let dir = tempfile::tempdir().unwrap();
        let out = tufd(&["restore", "--data-dir", path(dir.path()), "--from", path(b)]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let r = Server::start_in(dir, None, &[]);
        let targets = verified_targets(&r, &f.name, "ci");
        let held = targets.signed.targets.len();
        assert!(
            held >= last && held <= total,
            "{held} of {total} (before: {last})"
        );
        last = held;
        for (name, t) in &targets.signed.targets {
            let sha = t.hashes["sha256"].to_string();
            let (status, body) = get(
                &r,
                &format!("/repo/{}/ci/targets/{sha}.{name}", f.name),
                None,
            );
            assert_eq!(status, StatusCode::OK, "{name}");
            assert_eq!(body, content(name), "{name}");
        }
    }
    assert!(last > 0);
}

fn upload(s: &Server, f: &Factory, n: usize) {
    let name = format!("fw-{n}");
    let form = reqwest::blocking::multipart::Form::new()
        .text(
            "metadata",
            json!({"name": "fw", "version": n.to_string(), "hardware_ids": ["hw-1"]}).to_string(),
        )
        .part(
            "file",
            reqwest::blocking::multipart::Part::bytes(content(&name)),
        );
    let r = client()
        .post(s.url(&format!("/ota/factories/{}/targets", f.name)))
        .bearer_auth(&f.ci)
        .multipart(form)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
}

/// The artifact of target `name` (`fw-N`): distinct for each, a few KiB.
fn content(name: &str) -> Vec<u8> {
    name.as_bytes().repeat(1000)
}

fn tufd(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tufd"))
        .args(args)
        .env_remove("TUFD_DATA_DIR")
        .env_remove("TUFD_SERVER_KEY")
        .env_remove("TUFD_SERVER_KEY_FILE")
        .output()
        .unwrap()
}

fn path(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

/// PostgreSQL, as docs/OPERATIONS.md says: the keyring file copied first, then `pg_dump`;
/// restored with `pg_restore` into an empty database, the keyring file in the data directory
/// and the version gap recorded. The restored server's metadata verifies, moves past what the
/// lost server published after the dump, and serves the artifacts (they are in the dump).
#[test]
fn postgres_backup_is_pg_dump_plus_the_keyring_file() {
    let Some(url) = postgres_database() else {
        return;
    };
    for tool in ["pg_dump", "pg_restore", "psql"] {
        if !on_path(tool) {
            test_skip::skip(&format!(
                "{tool} is missing (Debian package postgresql-client)"
            ));
            return;
        }
    }
    let mut s = Server::start(Some(&url), &[]);
    let f = create_factory(&s, "acme");
    upload(&s, &f, 1);
    let work = tempfile::tempdir().unwrap();
    let dump = work.path().join("tufd.pgdump");
    std::fs::copy(s.dir.path().join("keyring"), work.path().join("keyring")).unwrap();
    run(
        "pg_dump",
        &["--format=custom", &format!("--file={}", path(&dump)), &url],
    );
    upload(&s, &f, 2);
    let seen = timestamp_version(&s, &f.name);
    s.stop();

    let restored_url = postgres_database().unwrap();
    run(
        "pg_restore",
        &[
            "--no-owner",
            &format!("--dbname={restored_url}"),
            path(&dump),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(work.path().join("keyring"), dir.path().join("keyring")).unwrap();
    run(
        "psql",
        &[
            &restored_url,
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            "INSERT INTO settings (name, value) VALUES ('restore_version_gap', '1000000')",
        ],
    );
    let r = Server::start_in(dir, Some(&restored_url), &[]);
    let targets = verified_targets(&r, &f.name, "ci");
    let names: Vec<&String> = targets.signed.targets.keys().collect();
    assert_eq!(names, ["fw-1"], "the dump's targets");
    assert!(timestamp_version(&r, &f.name) > seen + 1_000_000 - 10);
    let t = &targets.signed.targets["fw-1"];
    let sha = t.hashes["sha256"].to_string();
    let (status, body) = get(&r, &format!("/repo/{}/ci/targets/{sha}.fw-1", f.name), None);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, content("fw-1"));
}

fn timestamp_version(s: &Server, f: &str) -> u64 {
    let v = get_json(s, &format!("/repo/{f}/ci/metadata/timestamp.json"), None);
    v["signed"]["version"].as_u64().unwrap()
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}
