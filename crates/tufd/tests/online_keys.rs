//! Online-key rotation against a real tufd on SQLite with a known server key: the old online
//! private keys are read honestly from the store (sealed rows in `<data-dir>/tufd.sqlite`,
//! opened with the server key and the keyring from the data directory), and after the
//! rotation metadata they sign is rejected by the new root, while the server's new metadata
//! verifies. The keys are rotated to P-256, RSA and ed25519 keys in turn, so old keys of
//! every type are tried. A real `tuf-agent` that fetches the new root refuses what the old
//! keys sign.

mod common;
#[path = "common/opener.rs"]
mod opener;

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

/// The online private keys of `purpose`, read from the store and opened with what lies in
/// the data directory (the server key and the keyring file).
fn stored_keys(s: &Server, f: &str, purpose: &str) -> Vec<PrivateKey> {
    let server_key = opener::server_key(s.dir.path());
    let epoch = opener::Epoch::read(&s.dir.path().join("keyring"));
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
            "SELECT o.keyid, o.keytype, o.scheme, o.sealed, d.id, d.wrapped FROM online_keys o \
             JOIN data_keys d ON d.id = o.data_key WHERE o.factory = ?1 AND o.purpose = ?2",
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
            let dk_id: String = r.get(4);
            let wrapped: Vec<u8> = r.get(5);
            let dk = epoch.open_data_key(&server_key, &dk_id, &wrapped).unwrap();
            let aad = format!("online-key/{f}/{keyid}");
            let der = opener::open_secret(&dk, &aad, &sealed).unwrap();
            PrivateKey::from_pkcs8_der(&keytype, &scheme, &der).unwrap()
        })
        .collect()
}

/// A key type as the API names it (`key_type`) and as root.json spells it.
const KINDS: [(&str, &str, &str); 3] = [
    ("ecdsa", "ecdsa", "ecdsa-sha2-nistp256"),
    ("rsa", "rsa", "rsassa-pss-sha256"),
    ("ed25519", "ed25519", "ed25519"),
];

/// The online keys are replaced three times in turn: by P-256 keys, RSA keys, then ed25519
/// keys again, so the old keys an attacker holds are of every type. Each time the new roots
/// list new keys of the requested type (stored sealed, of that type), none of the old ones,
/// and a timestamp forged with the old key is valid under the old root only; what the
/// server publishes verifies under the new root and new targets are signed.
#[test]
fn old_online_keys_are_rejected_after_rotation() {
    let s = Server::sqlite();
    let f = create_factory(&s, "compromised");
    assert_eq!(add_target(&s, &f, "app", "1").0, StatusCode::CREATED);
    let r = client().get(&f.credentials_url).send().unwrap();
    let creds = tuf_credentials::Credentials::read(&r.bytes().unwrap()).unwrap();
    let root_key = creds.private_key("offline-root").unwrap();

    // Unknown role and no open transaction are refused.
    let (st, _) = post(
        &s,
        &f,
        "/root/updates/online-keys",
        json!({"txid": "x", "roles": ["root"]}),
    );
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = post(
        &s,
        &f,
        "/root/updates/online-keys",
        json!({"txid": "x", "roles": ["targets"]}),
    );
    assert_eq!(st, StatusCode::NOT_FOUND);

    for (n, kind) in (2..).zip(KINDS) {
        let old_root = root(&s, &f, false);
        // What the attacker holds: the old online keys, from the store and the server key.
        let old_ts = stored_keys(&s, &f.name, "timestamp");
        let old_targets = stored_keys(&s, &f.name, "targets");
        assert_eq!((old_ts.len(), old_targets.len()), (1, 1));
        assert!(old_root
            .signed
            .role(Role::Timestamp)
            .keyids
            .contains(old_ts[0].key_id()));
        let old = stolen_keys(&s, &f.name);
        let tx = rotate_online_keys(&s, &f, &root_key, kind.0);
        // No old private key of any online role is left in the store.
        for (purpose, stolen) in &old {
            let stored = stored_keys(&s, &f.name, purpose);
            assert_eq!(stored.len(), 1, "{purpose}");
            assert_ne!(stored[0].key_id(), stolen.key_id(), "{purpose}");
        }
        let new_root = root(&s, &f, false).signed;
        for role in [Role::Targets, Role::Snapshot, Role::Timestamp] {
            let ids = &new_root.role(role).keyids;
            assert_eq!(
                ids[0].as_str(),
                tx["new_online_keys"][role.as_str()].as_str().unwrap()
            );
            let key = &new_root.keys[&ids[0]];
            assert_eq!(
                (key.keytype.as_str(), key.scheme.as_str()),
                (kind.1, kind.2)
            );
            for k in old_ts.iter().chain(&old_targets) {
                assert!(!ids.contains(k.key_id()), "{role}");
            }
        }
        // The old keys are gone from the store; the new ones, of the new type, are there.
        let stored = stored_keys(&s, &f.name, "timestamp");
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].public_key().keytype, kind.1);
        assert_ne!(stored[0].key_id(), old_ts[0].key_id());
        forged_timestamp_is_refused(&s, &f, &old_root.signed, &new_root, &old_ts[0]);
        let t = common::suite::verified_targets(&s, &f.name, "ci");
        assert!(t.signed.targets.contains_key("app-1"));
        assert_eq!(
            add_target(&s, &f, "app", &n.to_string()).0,
            StatusCode::CREATED
        );
        let t = common::suite::verified_targets(&s, &f.name, "ci");
        assert!(t.signed.targets.contains_key(&format!("app-{n}")));
    }
}

/// One rotation through the API: a transaction, new online keys of `key_type` for the three
/// online roles (an unknown type refused first), apply refused while unsigned, the staged
/// roots signed with `root_key` and applied. Returns the online-keys answer.
fn rotate_online_keys(s: &Server, f: &Factory, root_key: &PrivateKey, key_type: &str) -> Value {
    let (st, tx) = post(
        s,
        f,
        "/root/updates",
        json!({"message": "server compromise"}),
    );
    assert_eq!(st, StatusCode::CREATED, "{tx}");
    let txid = tx["txid"].as_str().unwrap().to_owned();
    let roles = json!(["targets", "snapshot", "timestamp"]);
    let (st, v) = post(
        s,
        f,
        "/root/updates/online-keys",
        json!({"txid": txid, "roles": roles, "key_type": "dsa"}),
    );
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let (st, tx) = post(
        s,
        f,
        "/root/updates/online-keys",
        json!({"txid": txid, "roles": roles, "key_type": key_type}),
    );
    assert_eq!(st, StatusCode::OK, "{tx}");
    // Unsigned so far: apply is refused and names the missing signatures.
    let (st, v) = post(s, f, "/root/updates/apply", json!({ "txid": txid }));
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
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

/// A timestamp the attacker forges with the old key `old_ts`: valid under the old root, not
/// the new one; what the server publishes now verifies under the new root.
fn forged_timestamp_is_refused(
    s: &Server,
    f: &Factory,
    old_root: &Root,
    new_root: &Root,
    old_ts: &PrivateKey,
) {
    let (_, snap) = get(
        s,
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
    forged.sign(old_ts).unwrap();
    assert!(forged
        .verify_role("timestamp", old_root.role(Role::Timestamp), &old_root.keys)
        .is_met());
    assert!(!forged
        .verify_role("timestamp", new_root.role(Role::Timestamp), &new_root.keys)
        .is_met());
    assert!(current
        .verify_role("timestamp", new_root.role(Role::Timestamp), &new_root.keys)
        .is_met());
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
    rotate_online_keys(&s, &f, &root_key, "ed25519");

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
    // the version and length the snapshot lists (it lists no hashes, so the signature
    // decides): app-1 pointing at the attacker's bytes, padded with spaces to the length.
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
    let app = evil.targets.get_mut("app-1").unwrap();
    app.hashes.insert(
        "sha256".to_owned(),
        tuf_core::hash::sha256_hex(b"the attacker's image"),
    );
    let mut forged = signed(evil, &old["targets"]);
    let length = usize::try_from(snapshot.signed.meta["targets.json"].length.unwrap()).unwrap();
    assert!(forged.len() <= length, "{} > {length}", forged.len());
    forged.resize(length, b' ');
    mirror.put(&format!("{listed}.targets.json"), forged);
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
