//! What an operator's carelessness or a curious client must not get: the one-time
//! credentials used up by a HEAD, Factory names from `/metrics`, an admin token that cannot be
//! retired, data files other users can read, a server stalled by clients that never finish.

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// HEAD on the credentials URL answers without using the download up; the first GET gets
/// the tarball, after which HEAD and GET both answer 410.
#[test]
fn credentials_head_does_not_consume() {
    let s = Server::sqlite();
    let f = create_factory(&s, "probed");
    for _ in 0..3 {
        let r = client().head(&f.credentials_url).send().unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["content-type"], "application/gzip");
        assert_eq!(r.headers()["cache-control"], "no-store");
    }
    let audit = audit_actions(&s, &f);
    assert!(
        !audit.contains(&"credentials.download".to_owned()),
        "{audit:?}"
    );
    let r = client().get(&f.credentials_url).send().unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let tarball = r.bytes().unwrap();
    assert_eq!(&tarball[..2], &[0x1f, 0x8b], "a gzip stream");
    let r = client().head(&f.credentials_url).send().unwrap();
    assert_eq!(r.status(), StatusCode::GONE);
    let r = client().get(&f.credentials_url).send().unwrap();
    assert_eq!(r.status(), StatusCode::GONE);
    let v: Value = r.json().unwrap();
    assert_eq!(v["error"], "gone");
    let unknown = f
        .credentials_url
        .replace("/credentials/", "/credentials/00");
    let r = client().head(&unknown).send().unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

/// `/metrics` names Factories (those whose metadata needs attention: here a root inside the
/// warning window): it needs a metrics token (or the admin token). A metrics token reaches
/// nothing else.
#[test]
fn metrics_need_a_metrics_token() {
    let s = Server::start(None, common::suite::LAPSING);
    let f = create_factory(&s, "secret-product");
    let r = client().get(s.url("/metrics")).send().unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(!r.text().unwrap().contains("secret-product"));
    for token in [&f.owner, &f.ci] {
        let r = client()
            .get(s.url("/metrics"))
            .bearer_auth(token)
            .send()
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let v: Value = r.json().unwrap();
        assert_eq!(v["error"], "forbidden");
        assert!(
            v["detail"].as_str().unwrap().contains("metrics token"),
            "{v}"
        );
    }
    let metrics = new_server_token(&s, &s.admin, "metrics");
    let r = client()
        .get(s.url("/metrics"))
        .bearer_auth(&metrics)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().unwrap().contains("factory=\"secret-product\""));
    // Nothing else: no Factory data, no Factory creation, no tokens.
    let (st, _) = get(
        &s,
        "/ota/repo/secret-product/api/v1/user_repo/root.json",
        Some(&metrics),
    );
    assert_eq!(st, StatusCode::NOT_FOUND);
    let r = client()
        .post(s.url("/ota/factories"))
        .bearer_auth(&metrics)
        .json(&json!({"name": "other"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = client()
        .get(s.url("/ota/tokens"))
        .bearer_auth(&metrics)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

/// An admin token is rotated through the API (new one, old one retired with it) or by
/// restarting with a new `TUFD_ADMIN_TOKEN`, which retires the one the variable gave before.
/// The last admin token cannot be retired.
#[test]
fn admin_tokens_rotate_and_retire() {
    let mut s = Server::sqlite();
    let first = s.admin.clone();
    let second = new_server_token(&s, &first, "admin");
    let listed = list_server_tokens(&s, &second);
    assert_eq!(listed.len(), 2, "{listed:?}");
    let first_id = id_of(&listed, false);
    let r = client()
        .delete(s.url(&format!("/ota/tokens/{first_id}")))
        .bearer_auth(&second)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(admin_status(&s, &first), StatusCode::UNAUTHORIZED);
    assert_eq!(admin_status(&s, &second), StatusCode::CREATED);
    // The last admin token stays.
    let second_id = id_of(&list_server_tokens(&s, &second), true);
    let r = client()
        .delete(s.url(&format!("/ota/tokens/{second_id}")))
        .bearer_auth(&second)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let v: Value = r.json().unwrap();
    assert_eq!(v["error"], "last admin token");
    assert_eq!(admin_status(&s, &second), StatusCode::CREATED);

    // Rotation through the environment: the old value no longer works after the restart.
    s.stop();
    let dir = std::mem::replace(&mut s.dir, tempfile::tempdir().unwrap());
    let env_token = "rotated-admin-token-0123456789";
    let s = Server::start_in_with_admin(dir, None, &[], env_token);
    assert_eq!(admin_status(&s, &first), StatusCode::UNAUTHORIZED);
    assert_eq!(admin_status(&s, env_token), StatusCode::CREATED);
    assert_eq!(admin_status(&s, &second), StatusCode::CREATED);
    let mut s = s;
    s.stop();
    let dir = std::mem::replace(&mut s.dir, tempfile::tempdir().unwrap());
    let s = Server::start_in_with_admin(dir, None, &[], "rotated-again-0123456789abcdef");
    assert_eq!(admin_status(&s, env_token), StatusCode::UNAUTHORIZED);
    assert_eq!(
        admin_status(&s, "rotated-again-0123456789abcdef"),
        StatusCode::CREATED
    );
    assert_eq!(admin_status(&s, &second), StatusCode::CREATED);
}

/// Every file tufd creates is 0600 and every directory 0700, also in a data directory the
/// operator created beforehand with looser permissions.
#[test]
fn data_files_are_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let loose = dir.path().join("left-by-operator");
    std::fs::write(&loose, b"x").unwrap();
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
    let s = Server::start_in(dir, None, &[]);
    let f = create_factory(&s, "modes");
    let body = b"artifact bytes";
    let form = reqwest::blocking::multipart::Form::new()
        .text(
            "metadata",
            json!({"name": "app", "version": "1", "hardware_ids": ["hw"]}).to_string(),
        )
        .part(
            "file",
            reqwest::blocking::multipart::Part::bytes(body.to_vec()).file_name("app.bin"),
        );
    let r = client()
        .post(s.url(&format!("/ota/factories/{}/targets", f.name)))
        .bearer_auth(&f.ci)
        .multipart(form)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let mut seen = 0;
    walk(s.dir.path(), &mut |path, is_dir| {
        let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        let want = if is_dir { 0o700 } else { 0o600 };
        assert_eq!(mode, want, "{} is {mode:o}", path.display());
        seen += 1;
    });
    for name in [
        "tufd.sqlite",
        "tufd.sqlite-wal",
        "server-key",
        "artifacts",
        "tmp",
    ] {
        assert!(s.dir.path().join(name).exists(), "{name}");
    }
    assert!(seen >= 8, "{seen} entries");
}

/// 300 connections that never finish their request headers do not keep a new client from
/// `/healthz`, and the server closes them after the header timeout.
#[test]
fn half_open_connections_do_not_lock_clients_out() {
    let s = Server::start(None, &["--header-timeout-secs", "2"]);
    let mut stalled: Vec<TcpStream> = (0..300).map(|_| half_open(&s)).collect();
    let quick = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let r = quick.get(s.url("/healthz")).send().unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    for c in stalled.iter_mut().step_by(30) {
        assert_closed_by_server(c, Duration::from_secs(8));
    }
}

/// The connection cap holds: with every slot taken by stalled clients a new client waits,
/// and is answered once the header timeout has freed the slots.
#[test]
fn connection_cap_and_header_timeout() {
    let s = Server::start(
        None,
        &["--max-connections", "20", "--header-timeout-secs", "3"],
    );
    let _stalled: Vec<TcpStream> = (0..40).map(|_| half_open(&s)).collect();
    std::thread::sleep(Duration::from_millis(300));
    let impatient = reqwest::blocking::Client::builder()
        .timeout(Duration::from_millis(1000))
        .build()
        .unwrap();
    assert!(
        impatient.get(s.url("/healthz")).send().is_err(),
        "every slot is taken: a new client must wait"
    );
    let patient = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let started = Instant::now();
    let r = patient.get(s.url("/healthz")).send().unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(started.elapsed() < Duration::from_secs(15));
}

/// A client that starts a request body and then sends nothing is closed after the idle
/// timeout.
#[test]
fn idle_connection_is_closed() {
    let s = Server::start(None, &["--idle-timeout-secs", "2"]);
    let f = create_factory(&s, "idle");
    let mut c = TcpStream::connect(s.base.trim_start_matches("http://")).unwrap();
    let head = format!(
        "POST /ota/factories/{}/targets HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"name\"",
        f.name, f.ci
    );
    c.write_all(head.as_bytes()).unwrap();
    assert_closed_by_server(&mut c, Duration::from_secs(8));
    let (st, _) = get(&s, "/healthz", None);
    assert_eq!(st, StatusCode::OK);
}

/// A connection that sent part of a request line and headers, and then nothing.
fn half_open(s: &Server) -> TcpStream {
    let mut c = TcpStream::connect(s.base.trim_start_matches("http://")).unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    c
}

/// The server closes `c` within `within`: a read ends (EOF or reset), not a read timeout.
fn assert_closed_by_server(c: &mut TcpStream, within: Duration) {
    c.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 512];
    loop {
        match c.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return,
            Err(e) => panic!("the server did not close the connection: {e}"),
        }
    }
}

fn walk(dir: &Path, f: &mut dyn FnMut(&Path, bool)) {
    f(dir, true);
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            walk(&entry.path(), f);
        } else {
            f(&entry.path(), false);
        }
    }
}

fn new_server_token(s: &Server, admin: &str, scope: &str) -> String {
    let r = client()
        .post(s.url("/ota/tokens"))
        .bearer_auth(admin)
        .json(&json!({"scope": scope}))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().unwrap();
    assert_eq!(v["scope"], scope);
    v["token"].as_str().unwrap().to_owned()
}

fn list_server_tokens(s: &Server, admin: &str) -> Vec<Value> {
    let v = get_json(s, "/ota/tokens", Some(admin));
    v["tokens"].as_array().unwrap().clone()
}

fn id_of(tokens: &[Value], current: bool) -> String {
    tokens
        .iter()
        .find(|t| t["current"] == current && t["scope"] == "admin")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Creating a Factory: 201 for an admin token.
fn admin_status(s: &Server, token: &str) -> StatusCode {
    let name = format!("f-{}", random_hex(4));
    client()
        .post(s.url("/ota/factories"))
        .bearer_auth(token)
        .json(&json!({"name": name}))
        .send()
        .unwrap()
        .status()
}

fn audit_actions(s: &Server, f: &Factory) -> Vec<String> {
    let v = get_json(
        s,
        &format!("/ota/factories/{}/audit", f.name),
        Some(&f.owner),
    );
    v["entries"]
        .as_array()
        .or_else(|| v.as_array())
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect()
}
