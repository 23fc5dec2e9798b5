//! Nothing is lost: a rotation interrupted after the new key is generated leaves it in the
//! tarball, and a re-run finishes with that key. Broken or foreign tarballs are refused with a
//! clear error and left byte-for-byte unchanged.

mod support;

use std::io::Write;

use support::*;
use tuf_core::{Role, Root, Signed};
use tuf_credentials::Credentials;

struct Setup {
    server: Server,
    f: Factory,
    dir: tempfile::TempDir,
    creds: std::path::PathBuf,
}

fn setup(name: &str) -> Setup {
    let server = Server::start();
    let f = create_factory(&server, name);
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("creds.tgz");
    ok(&server.tufctl(&[
        "keys",
        "download",
        &f.credentials_url,
        creds.to_str().unwrap(),
    ]));
    Setup {
        server,
        f,
        dir,
        creds,
    }
}

fn server_root(s: &Setup) -> Signed<Root> {
    let out = ok(&s.server.tufctl(&[
        "get",
        &format!("/ota/repo/{}/api/v1/user_repo/root.json", s.f.name),
        "--token",
        &s.f.token,
    ]));
    Signed::from_slice(out.trim().as_bytes()).unwrap()
}

fn root_key_names(c: &Credentials) -> Vec<String> {
    c.keys()
        .unwrap()
        .into_iter()
        .map(|k| k.name)
        .filter(|n| n.starts_with("tufctl-root-"))
        .collect()
}

#[test]
fn rejected_rotation_keeps_the_pending_key_and_a_rerun_reuses_it() {
    let s = setup("lost-nothing");
    let creds = s.creds.to_str().unwrap();
    // Another run's transaction is open: the server refuses to open a new one, after the
    // new key was generated and saved.
    ok(&s.server.tufctl(&[
        "keys",
        "tuf",
        "updates",
        "init",
        "-m",
        "someone else",
        "--factory",
        &s.f.name,
        "--token",
        &s.f.token,
    ]));
    let err = fails(
        &s.server
            .tufctl(&["keys", "rotate-root", creds, "--token", &s.f.token]),
    );
    assert!(err.contains("pending key"), "{err}");
    assert!(err.contains("--cancel-open"), "{err}");

    // The tarball opens and holds every key the server's root trusts, plus the pending key.
    let c = Credentials::read(&std::fs::read(&s.creds).unwrap()).unwrap();
    let root = server_root(&s);
    for (_, pk) in root.signed.role_keys(Role::Root) {
        assert!(c.find_signer(&pk).unwrap().is_some(), "root key missing");
    }
    let pending = root_key_names(&c);
    assert_eq!(pending.len(), 1, "{pending:?}");

    // A re-run finishes with the same key: no second key is generated.
    let out = s.server.tufctl(&[
        "keys",
        "rotate-root",
        creds,
        "--cancel-open",
        "--token",
        &s.f.token,
    ]);
    ok(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("reusing the pending root key"));
    let c = Credentials::read(&std::fs::read(&s.creds).unwrap()).unwrap();
    assert_eq!(root_key_names(&c), pending);
    let root = server_root(&s);
    let id = &root.signed.role(Role::Root).keyids[0];
    assert_eq!(pending[0], format!("tufctl-root-{id}"));
}

#[test]
fn server_down_before_rotation_changes_nothing_and_after_keeps_the_key() {
    let mut s = setup("server-down");
    let creds = s.creds.to_str().unwrap().to_owned();
    let before = std::fs::read(&s.creds).unwrap();
    let url = s.server.url.clone();
    s.server.stop();
    let err = fails(&tufctl_env(
        &[
            "keys",
            "rotate-root",
            &creds,
            "--api",
            &url,
            "--token",
            &s.f.token,
        ],
        &[],
    ));
    assert!(err.contains("cannot reach the server"), "{err}");
    assert_eq!(std::fs::read(&s.creds).unwrap(), before, "file changed");
}

#[test]
fn retired_root_keys_are_not_mistaken_for_pending_ones() {
    let s = setup("retired-keys");
    let creds = s.creds.to_str().unwrap();
    ok(&s
        .server
        .tufctl(&["keys", "rotate-root", creds, "--token", &s.f.token]));
    ok(&s
        .server
        .tufctl(&["keys", "rotate-root", creds, "--token", &s.f.token]));
    let c = Credentials::read(&std::fs::read(&s.creds).unwrap()).unwrap();
    let names = root_key_names(&c);
    assert_eq!(names.len(), 2, "{names:?}");
    let root = server_root(&s);
    assert_eq!(root.signed.version, 3);
    let id = &root.signed.role(Role::Root).keyids[0];
    assert!(names.contains(&format!("tufctl-root-{id}")));
}

#[test]
fn broken_or_foreign_tarballs_are_refused_and_left_unchanged() {
    let s = setup("broken-files");
    let good = std::fs::read(&s.creds).unwrap();
    let mut cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "not-ours.tgz",
            b"just some text\n".to_vec(),
            "not a credentials file",
        ),
        (
            "truncated.tgz",
            good[..good.len() / 2].to_vec(),
            "damaged or truncated",
        ),
        ("traversal.tgz", traversal_tarball(), "refused"),
    ];
    // A targets-only style file (no root key) after rotate-targets.
    ok(&s.server.tufctl(&[
        "keys",
        "rotate-targets",
        s.creds.to_str().unwrap(),
        "--token",
        &s.f.token,
    ]));
    let only = s.dir.path().join("only.tgz");
    ok(&s.server.tufctl(&[
        "keys",
        "copy-targets",
        s.creds.to_str().unwrap(),
        only.to_str().unwrap(),
        "--token",
        &s.f.token,
    ]));
    cases.push((
        "no-root-key.tgz",
        std::fs::read(&only).unwrap(),
        "a lost root key cannot be recovered",
    ));
    for (name, bytes, expect) in cases {
        let path = s.dir.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        let err = fails(&s.server.tufctl(&[
            "keys",
            "rotate-root",
            path.to_str().unwrap(),
            "--token",
            &s.f.token,
        ]));
        assert!(err.contains(expect), "{name}: {err}");
        assert!(err.contains("unchanged"), "{name}: {err}");
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "{name} was modified");
    }
}

/// A gzip'd tar whose second entry climbs out of the directory.
fn traversal_tarball() -> Vec<u8> {
    let mut tar = Vec::new();
    for (name, data) in [
        (
            "tufrepo/config.json",
            &br#"{"api":"http://x","factory":"x"}"#[..],
        ),
        ("tufrepo/keys/../../../etc/cron.d/evil", &b"x"[..]),
    ] {
        let mut h = tar::Header::new_ustar();
        h.as_ustar_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_size(data.len() as u64);
        h.set_mode(0o600);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        tar.extend_from_slice(h.as_bytes());
        tar.extend_from_slice(data);
        tar.extend(std::iter::repeat_n(0u8, 512 - data.len() % 512));
    }
    tar.extend(std::iter::repeat_n(0u8, 1024));
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(&tar).unwrap();
    e.finish().unwrap()
}

#[test]
fn encrypted_tarball_asks_for_the_passphrase_and_stays_encrypted() {
    let s = setup("encrypted");
    let plain = Credentials::read(&std::fs::read(&s.creds).unwrap()).unwrap();
    std::fs::write(&s.creds, plain.to_encrypted_bytes("open sesame").unwrap()).unwrap();
    let creds = s.creds.to_str().unwrap();
    let err = fails(
        &s.server
            .tufctl(&["keys", "status", creds, "--token", &s.f.token]),
    );
    assert!(err.contains("passphrase"), "{err}");
    let out = tufctl_env(
        &[
            "keys",
            "rotate-root",
            creds,
            "--api",
            &s.server.url,
            "--token",
            &s.f.token,
        ],
        &[("TUFCTL_PASSPHRASE", "open sesame")],
    );
    ok(&out);
    let bytes = std::fs::read(&s.creds).unwrap();
    assert!(Credentials::is_encrypted(&bytes));
    let c = Credentials::read_encrypted(&bytes, "open sesame").unwrap();
    assert_eq!(root_key_names(&c).len(), 1);
}
