//! Online-key rotation against a real tufd on SQLite with a known server key: the old online
//! private keys are read honestly from the store (sealed rows in `<data-dir>/tufd.sqlite`,
//! opened with the server key from `<data-dir>/server-key`); after the rotation none of them
//! is left in the store, metadata they sign is rejected by the new root, and a real
//! `tuf-agent` that fetches the new root refuses it, while the server's new metadata verifies.

mod common;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use common::*;
use serde_json::{json, Value};
use sqlx::{Connection as _, Row as _};
use tuf_core::{
    MetaFile, PrivateKey, Role, Root, Signed, Signer as _, Snapshot, Targets, Timestamp,
};

fn repo(f: &Factory, tail: &str) -> String {
    format!("/ota/repo/{}/api/v1/user_repo{tail}", f.name)
}

fn post(s: &Server, f: &Factory, tail: &str, body: Value) -> (StatusCode, Value) {
    let r = client()
        .post(s.url(&repo(f, tail)))
        .bearer_auth(&f.owner)
        .json(&body)
        .send()
        .unwrap();
    (r.status(), r.json().unwrap())
}

fn root(s: &Server, f: &Factory, prod: bool) -> Signed<Root> {
    let q = if prod { "?production=1" } else { "" };
    let (st, body) = get(s, &repo(f, &format!("/root.json{q}")), Some(&f.owner));
    assert_eq!(st, StatusCode::OK);
    Signed::from_slice(&body).unwrap()
}

/// The online private keys of `purpose`, read from the store and opened with the server key.
fn stored_keys(s: &Server, f: &str, purpose: &str) -> Vec<PrivateKey> {
    let hex_key = std::fs::read_to_string(s.dir.path().join("server-key")).unwrap();
    let raw = hex::decode(hex_key.trim()).unwrap();
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &raw).unwrap());
    let url = format!(
        "sqlite://{}?mode=ro",
        s.dir.path().join("tufd.sqlite").display()
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let rows = rt.block_on(async {
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query(
            "SELECT keyid, keytype, scheme, sealed FROM online_keys \
             WHERE factory = ?1 AND purpose = ?2",
        )
        .bind(f)
        .bind(purpose)
        .fetch_all(&mut c)
        .await
        .unwrap()
    });
    rows.iter()
        .map(|r| {
            let keyid: String = r.get(0);
            let keytype: String = r.get(1);
            let scheme: String = r.get(2);
            let sealed: Vec<u8> = r.get(3);
            let (nonce, ct) = sealed.split_at(NONCE_LEN);
            let mut buf = ct.to_vec();
            let aad = format!("online-key/{f}/{keyid}");
            let der = key
                .open_in_place(
                    Nonce::try_assume_unique_for_key(nonce).unwrap(),
                    Aad::from(aad.as_bytes()),
                    &mut buf,
                )
                .unwrap()
                .to_vec();
            PrivateKey::from_pkcs8_der(&keytype, &scheme, &der).unwrap()
        })
        .collect()
}

const ONLINE: [&str; 3] = ["targets", "snapshot", "timestamp"];

/// What an attacker who copied the store and the server key holds: every online private key,
/// by purpose.
fn stolen_keys(s: &Server, f: &str) -> HashMap<&'static str, PrivateKey> {
    ONLINE
        .iter()
        .map(|purpose| {
            let mut keys = stored_keys(s, f, purpose);
            assert_eq!(keys.len(), 1, "{purpose}");
            (*purpose, keys.remove(0))
        })
        .collect()
}

/// A Factory with one target, its credentials' offline root key, and its CI root.
fn factory_with_target(s: &Server, name: &str) -> (Factory, PrivateKey, Signed<Root>) {
    let f = create_factory(s, name);
    assert_eq!(add_target(s, &f, "app", "1").0, StatusCode::CREATED);
    let r = client().get(&f.credentials_url).send().unwrap();
    let creds = tuf_credentials::Credentials::read(&r.bytes().unwrap()).unwrap();
    let root_key = creds.private_key("offline-root").unwrap();
    let old_root = root(s, &f, false);
    (f, root_key, old_root)
}

/// Rotates all three online keys (the root key signs both new roots); returns the
/// transaction as the server described it. On the way, an apply before signing is refused,
/// naming the missing root signature, and changes nothing.
fn rotate_online_keys(s: &Server, f: &Factory, root_key: &PrivateKey) -> Value {
    let (st, tx) = post(
        s,
        f,
        "/root/updates",
        json!({"message": "server compromise"}),
    );
    assert_eq!(st, StatusCode::CREATED, "{tx}");
    let txid = tx["txid"].as_str().unwrap().to_owned();
    let (st, tx) = post(
        s,
        f,
        "/root/updates/online-keys",
        json!({"txid": txid, "roles": ONLINE}),
    );
    assert_eq!(st, StatusCode::OK, "{tx}");
    let store = snapshot_of_store(s, &f.name);
    let (st, v) = post(s, f, "/root/updates/apply", json!({ "txid": txid }));
    let missing = format!(
        "ci_root: 0 of 1 signatures of the current root's keys (missing: {})",
        &root_key.key_id().as_str()[..12]
    );
    let detail = assert_refused(
        (st, v.to_string().as_bytes()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "root update rejected",
            &missing,
        ),
    );
    assert_eq!(detail["check"], "current_root_signatures", "{detail}");
    assert_eq!(snapshot_of_store(s, &f.name), store);
    let sign = |v: &Value| -> Value {
        let mut env: Signed<Root> = Signed::from_value(v.clone()).unwrap();
        env.sign(root_key).unwrap();
        serde_json::from_slice(&env.to_bytes()).unwrap()
    };
    let r = client()
        .put(s.url(&repo(f, "/root/updates")))
        .bearer_auth(&f.owner)
        .json(&json!({"txid": txid, "ci_root": sign(&tx["ci_root"]), "prod_root": sign(&tx["prod_root"])}))
        .send()
        .unwrap();
    let staged: Value = r.json().unwrap();
    assert_eq!(staged["errors"], json!([]), "{staged}");
    let (st, v) = post(s, f, "/root/updates/apply", json!({ "txid": txid }));
    assert_eq!(st, StatusCode::OK, "{v}");
    tx
}

#[test]
fn old_online_keys_are_deleted_and_rejected_after_rotation() {
    let s = Server::sqlite();
    let (f, root_key, old_root) = factory_with_target(&s, "compromised");
    let old = stolen_keys(&s, &f.name);
    for purpose in ONLINE {
        let role = role_of(purpose);
        assert!(old_root
            .signed
            .role(role)
            .keyids
            .contains(old[purpose].key_id()));
    }

    // Unknown role and no open transaction are refused, and change nothing.
    let store = snapshot_of_store(&s, &f.name);
    let (st, v) = post(
        &s,
        &f,
        "/root/updates/online-keys",
        json!({"txid": "x", "roles": ["root"]}),
    );
    assert_refused(
        (st, v.to_string().as_bytes()),
        (
            StatusCode::BAD_REQUEST,
            "invalid roles",
            "roles are targets, snapshot and timestamp",
        ),
    );
    let (st, v) = post(
        &s,
        &f,
        "/root/updates/online-keys",
        json!({"txid": "x", "roles": ["targets"]}),
    );
    assert_refused(
        (st, v.to_string().as_bytes()),
        (
            StatusCode::NOT_FOUND,
            "not found",
            "open root-update transaction",
        ),
    );
    assert_eq!(snapshot_of_store(&s, &f.name), store);
    assert_eq!(stolen_keys(&s, &f.name).len(), 3);

    let tx = rotate_online_keys(&s, &f, &root_key);
    let new_root = root(&s, &f, false).signed;
    for purpose in ONLINE {
        let role = role_of(purpose);
        let ids = &new_root.role(role).keyids;
        assert_eq!(ids.len(), 1, "{role}");
        assert_eq!(
            ids[0].as_str(),
            tx["new_online_keys"][purpose].as_str().unwrap()
        );
        for k in old.values() {
            assert!(!ids.contains(k.key_id()), "{role}");
        }
        // The old private key of every online role is gone from the store; the new one is
        // the only key of its purpose.
        let stored = stored_keys(&s, &f.name, purpose);
        assert_eq!(stored.len(), 1, "{purpose}");
        assert_eq!(stored[0].key_id(), &ids[0], "{purpose}");
    }

    // A timestamp the attacker forges with the old key: valid under the old root, not the new.
    let (_, snap) = get(
        &s,
        &format!("/repo/{}/ci/metadata/timestamp.json", f.name),
        None,
    );
    let current: Signed<Timestamp> = Signed::from_slice(&snap).unwrap();
    let mut forged = Signed::new(Timestamp::new(
        current.signed.version + 100,
        current.signed.expires,
        MetaFile::new(current.signed.version + 100),
    ))
    .unwrap();
    forged.sign(&old["timestamp"]).unwrap();
    let o = &old_root.signed;
    assert!(forged
        .verify_role("timestamp", o.role(Role::Timestamp), &o.keys)
        .is_met());
    assert!(!forged
        .verify_role("timestamp", new_root.role(Role::Timestamp), &new_root.keys)
        .is_met());
    // What the server publishes now verifies under the new root.
    assert!(current
        .verify_role("timestamp", new_root.role(Role::Timestamp), &new_root.keys)
        .is_met());
    let t = common::suite::verified_targets(&s, &f.name, "ci");
    assert!(t.signed.targets.contains_key("app-1"));
    assert_eq!(add_target(&s, &f, "app", "2").0, StatusCode::CREATED);
}

fn role_of(purpose: &str) -> Role {
    match purpose {
        "targets" => Role::Targets,
        "snapshot" => Role::Snapshot,
        _ => Role::Timestamp,
    }
}

/// A real `tuf-agent` that trusted the CI root before the rotation: pointed at a mirror that
/// serves the genuine new root but metadata signed with the stolen old keys, it follows the
/// root and refuses the forgeries; pointed at the server, it updates.
#[test]
fn a_device_refuses_what_the_old_online_keys_sign_once_it_has_the_new_root() {
    let s = Server::sqlite();
    let (f, root_key, _) = factory_with_target(&s, "device-side");
    let base = format!("/repo/{}/ci/metadata", f.name);
    let fetch = |file: &str| {
        let (st, body) = get(&s, &format!("{base}/{file}"), None);
        assert_eq!(st, StatusCode::OK, "{file}");
        body
    };
    let device = Agent::new(&fetch("1.root.json"));
    device.refreshes(&s.url(&format!("{base}/")));
    let trusted_ts = device.trusted("timestamp");
    let old = stolen_keys(&s, &f.name);
    rotate_online_keys(&s, &f, &root_key);

    // Mirror 1: the genuine root chain, a timestamp forged with the old timestamp key.
    let mirror = Mirror::start();
    for file in ["1.root.json", "2.root.json"] {
        mirror.put(file, fetch(file));
    }
    let current: Signed<Timestamp> = Signed::from_slice(&fetch("timestamp.json")).unwrap();
    let v = current.signed.version + 100;
    let forged_ts = signed(
        Timestamp::new(v, current.signed.expires, MetaFile::new(v)),
        &old["timestamp"],
    );
    mirror.put("timestamp.json", forged_ts);
    let out = device.refresh(&mirror.url);
    device.failed(
        &out,
        "timestamp: role timestamp: 0 valid signature(s) from distinct trusted keys, threshold is 1",
    );
    assert_eq!(device.trusted("timestamp"), trusted_ts);
    assert_eq!(device.trusted("root"), Some(fetch("2.root.json")));

    // Mirror 2: genuine timestamp and snapshot; targets forged with the old targets key at
    // the version the snapshot lists (which lists no hashes, so the signature decides).
    mirror.put("timestamp.json", fetch("timestamp.json"));
    let snapshot: Signed<Snapshot> = Signed::from_slice(&fetch("snapshot.json")).unwrap();
    let listed = snapshot.signed.meta["targets.json"].version;
    mirror.put(
        &format!("{}.snapshot.json", snapshot.signed.version),
        fetch("snapshot.json"),
    );
    let genuine: Signed<Targets> = Signed::from_slice(&fetch("targets.json")).unwrap();
    let mut evil = genuine.signed.clone();
    evil.version = listed;
    evil.targets
        .insert("evil-1".to_owned(), genuine.signed.targets["app-1"].clone());
    mirror.put(
        &format!("{listed}.targets.json"),
        signed(evil, &old["targets"]),
    );
    let trusted_targets = device.trusted("targets");
    let out = device.refresh(&mirror.url);
    device.failed(
        &out,
        "targets: role targets: 0 valid signature(s) from distinct trusted keys, threshold is 1",
    );
    assert_eq!(device.trusted("targets"), trusted_targets);

    // The server's own metadata, signed with the new keys, is accepted.
    device.refreshes(&s.url(&format!("{base}/")));
    assert_eq!(device.trusted("timestamp"), Some(fetch("timestamp.json")));
}

fn signed<T: tuf_core::Metadata>(md: T, key: &PrivateKey) -> Vec<u8> {
    let mut env = Signed::new(md).unwrap();
    env.sign(key).unwrap();
    env.to_bytes()
}

/// A device running the real `tuf-agent` binary (built beside `tufd` by `cargo test
/// --workspace`), with its own metadata directory.
struct Agent {
    dir: tempfile::TempDir,
}

impl Agent {
    fn new(root: &[u8]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root_file = dir.path().join("trusted-root.json");
        std::fs::write(&root_file, root).unwrap();
        let a = Self { dir };
        let out = a.run(
            "http://127.0.0.1:9/",
            &["init", root_file.to_str().unwrap()],
        );
        assert!(out.status.success(), "{out:?}");
        a
    }

    fn binary() -> PathBuf {
        let p = Path::new(env!("CARGO_BIN_EXE_tufd")).with_file_name("tuf-agent");
        assert!(
            p.exists(),
            "tuf-agent not found at {}: build it first with `cargo build -p tuf-agent` \
             (`cargo test --workspace` builds it)",
            p.display()
        );
        p
    }

    fn run(&self, metadata_url: &str, args: &[&str]) -> Output {
        Command::new(Self::binary())
            .arg("--metadata-dir")
            .arg(self.dir.path().join("metadata"))
            .args(["--metadata-url", metadata_url])
            .args(args)
            .output()
            .unwrap()
    }

    fn refresh(&self, metadata_url: &str) -> Output {
        self.run(metadata_url, &["refresh"])
    }

    fn refreshes(&self, metadata_url: &str) {
        let out = self.refresh(metadata_url);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[track_caller]
    fn failed(&self, out: &Output, reason: &str) {
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(reason), "expected {reason:?}: {err}");
    }

    fn trusted(&self, role: &str) -> Option<Vec<u8>> {
        std::fs::read(self.dir.path().join(format!("metadata/{role}.json"))).ok()
    }
}

/// A mirror under the attacker's control: files served from memory over HTTP.
struct Mirror {
    url: String,
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
}

impl Mirror {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let files: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::default();
        let served = files.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let mut header = String::new();
                while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                    header.clear();
                }
                let name = line
                    .split(' ')
                    .nth(1)
                    .unwrap_or("/")
                    .trim_start_matches('/');
                let body = served.lock().unwrap().get(name).cloned();
                let head = match &body {
                    Some(b) => format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n", b.len()),
                    None => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n".to_owned(),
                };
                let _ = stream.write_all(format!("{head}Connection: close\r\n\r\n").as_bytes());
                let _ = stream.write_all(&body.unwrap_or_default());
            }
        });
        Self { url, files }
    }

    fn put(&self, name: &str, bytes: Vec<u8>) {
        self.files.lock().unwrap().insert(name.to_owned(), bytes);
    }
}
