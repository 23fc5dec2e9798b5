//! Gone means gone. The one-time credentials tarball (which holds the bootstrap root key) and
//! the server's copy of the bootstrap root key are recorded as sealed in the store, and opened
//! with what the server held, before anything happens. After `keys download`, `keys
//! rotate-root` and a restart, every file of the data directory (and, on PostgreSQL, of the
//! cluster's data directory) is scanned: neither secret is anywhere in plain text, nor is any
//! key that opened them (the keyring epoch key, the data keys); on SQLite not even the sealed
//! bytes remain. On PostgreSQL the sealed bytes may remain in WAL segments and dead tuples (the
//! design does not depend on PostgreSQL forgetting): there, nothing the server holds opens
//! them any more. And the server holds no key that could sign with the destroyed key.

#[path = "../../tufd/tests/common/opener.rs"]
mod opener;
mod support;

use std::path::{Path, PathBuf};

use support::store::{hex_of, query};
use support::*;
use tuf_core::Signer as _;
use tuf_credentials::Credentials;

#[test]
fn destroyed_secrets_leave_nothing_on_sqlite() {
    destruction_story(Server::start(), "shredded");
}

#[test]
fn destroyed_secrets_leave_nothing_on_postgres() {
    let Some(cluster) = setting(
        "TUFD_TEST_PG_DATADIR",
        "the PostgreSQL destruction scan (scripts/pg-cluster.sh exports the cluster directory)",
    ) else {
        return;
    };
    on_postgres(|server| destruction_story(server, "shredded-pg"));
    assert!(Path::new(&cluster).is_dir());
}

/// What the store held of the two secrets before anything happened.
struct Recorded {
    epoch: opener::Epoch,
    server_key: Vec<u8>,
    root_keyid: String,
    root: Sealed,
    tarball: Sealed,
}

struct Sealed {
    bytes: Vec<u8>,
    data_key_id: String,
    wrapped: Vec<u8>,
    /// The data key, opened with the epoch key and the server key.
    data_key: Vec<u8>,
    /// The secret, opened with the data key.
    plain: Vec<u8>,
}

fn destruction_story(server: Server, name: &str) {
    let f = create_factory(&server, name);
    let data = server.dir.path().join("data");
    let rec = record(&server, &f.name);
    let mut roots = vec![data.clone()];
    if server.db.is_some() {
        roots.push(PathBuf::from(
            std::env::var("TUFD_TEST_PG_DATADIR").unwrap(),
        ));
    }
    // The scanner sees what it looks for: the sealed root key is in the store now.
    let found = scan(&roots, &[("sealed root key", rec.root.bytes.clone())]);
    assert!(
        !found.is_empty(),
        "the scan does not find the sealed root key before"
    );

    let work = tempfile::tempdir().unwrap();
    let creds = work.path().join("creds.tgz");
    ok(&server.tufctl(&[
        "keys",
        "download",
        &f.credentials_url,
        creds.to_str().unwrap(),
    ]));
    let downloaded = std::fs::read(&creds).unwrap();
    assert_eq!(
        downloaded, rec.tarball.plain,
        "the tarball as it was sealed"
    );
    let c = Credentials::read(&downloaded).unwrap();
    let root_key = c.private_key("offline-root").unwrap();
    assert_eq!(root_key.key_id().as_str(), rec.root_keyid);
    assert_eq!(root_key.pkcs8_der(), rec.root.plain.as_slice());
    ok(&server.tufctl(&[
        "keys",
        "rotate-root",
        creds.to_str().unwrap(),
        "--token",
        &f.token,
    ]));
    let server = server.restart(&[], &[]);

    let after = opener::Epoch::read(&data.join("keyring"));
    assert!(after.epoch > rec.epoch.epoch, "the keyring moved on");
    let der = rec.root.plain.clone();
    assert_eq!(&der[14..16], &[0x04, 0x20], "ed25519 PKCS#8 seed");
    let gone = vec![
        ("root key PKCS#8", der.clone()),
        ("root key seed", der[16..48].to_vec()),
        ("root key PEM", pem_body(&der)),
        ("credentials tarball", rec.tarball.plain.clone()),
        ("epoch key", rec.epoch.key.clone()),
        ("epoch key (hex)", hex::encode(&rec.epoch.key).into_bytes()),
        ("root key's data key", rec.root.data_key.clone()),
        ("tarball's data key", rec.tarball.data_key.clone()),
    ];
    let hits = scan(&roots, &gone);
    assert!(hits.is_empty(), "found after destruction: {hits:?}");
    let sealed = vec![
        ("sealed root key", rec.root.bytes.clone()),
        ("sealed tarball", rec.tarball.bytes.clone()),
        ("wrapped root data key", rec.root.wrapped.clone()),
        ("wrapped tarball data key", rec.tarball.wrapped.clone()),
    ];
    let hits = scan(&roots, &sealed);
    if server.db.is_none() {
        assert!(hits.is_empty(), "sealed bytes left on SQLite: {hits:?}");
    } else {
        eprintln!("sealed bytes a copy of the PostgreSQL cluster still holds: {hits:?}");
    }
    // Whatever sealed bytes a copy of the store still holds: nothing the server has now (its
    // server key, its keyring file) opens them.
    for s in [&rec.root, &rec.tarball] {
        let mut e = after.clone();
        for _ in 0..4 {
            assert!(e
                .open_data_key(&rec.server_key, &s.data_key_id, &s.wrapped)
                .is_none());
            e = e.next();
        }
    }
    nothing_signs_with(&server, &rec, &f);
}

/// The server keeps no key with the destroyed key's ID, no data key of either secret, and its
/// audit log records both destructions.
fn nothing_signs_with(server: &Server, rec: &Recorded, f: &Factory) {
    let n = query(
        server,
        &format!(
            "SELECT count(*) FROM online_keys WHERE keyid = '{}'",
            rec.root_keyid
        ),
    );
    assert_eq!(n, ["0"]);
    let n = query(
        server,
        &format!(
            "SELECT count(*) FROM data_keys WHERE id IN ('{}', '{}')",
            rec.root.data_key_id, rec.tarball.data_key_id
        ),
    );
    assert_eq!(n, ["0"]);
    let audit = get_json(server, f, &format!("/ota/factories/{}/audit", f.name));
    let entries = audit.as_array().unwrap();
    assert!(entries
        .iter()
        .any(|e| e["action"] == "credentials.download"));
    assert!(entries
        .iter()
        .any(|e| e["action"] == "key.destroy" && e["detail"]["keyid"] == rec.root_keyid.as_str()));
}

/// The sealed root key and tarball as stored, opened with the keyring file and server key of
/// the data directory (and, on PostgreSQL, the server key the test gave tufd).
fn record(server: &Server, factory: &str) -> Recorded {
    let data = server.dir.path().join("data");
    let epoch = opener::Epoch::read(&data.join("keyring"));
    let server_key = match &server.db {
        Some((_, key)) => hex::decode(key).unwrap(),
        None => opener::server_key(&data),
    };
    let row = query(
        server,
        &format!(
            "SELECT keyid, {}, data_key FROM online_keys WHERE factory = '{factory}' \
             AND purpose = 'root'",
            hex_of(server, "sealed")
        ),
    );
    let [keyid, sealed, dk] = split3(&row[0]);
    let root = sealed_secret(
        server,
        &epoch,
        &server_key,
        sealed,
        dk,
        &format!("online-key/{factory}/{keyid}"),
    );
    let row = query(
        server,
        &format!(
            "SELECT 'c', {}, data_key FROM credentials WHERE factory = '{factory}'",
            hex_of(server, "body")
        ),
    );
    let [_, sealed, dk] = split3(&row[0]);
    let tarball = sealed_secret(
        server,
        &epoch,
        &server_key,
        sealed,
        dk,
        &format!("credentials/{factory}"),
    );
    Recorded {
        epoch,
        server_key,
        root_keyid: keyid.to_owned(),
        root,
        tarball,
    }
}

fn sealed_secret(
    server: &Server,
    epoch: &opener::Epoch,
    server_key: &[u8],
    sealed_hex: &str,
    dk_id: &str,
    aad: &str,
) -> Sealed {
    let row = query(
        server,
        &format!(
            "SELECT {} FROM data_keys WHERE id = '{dk_id}'",
            hex_of(server, "wrapped")
        ),
    );
    let wrapped = hex::decode(row[0].to_ascii_lowercase()).unwrap();
    let bytes = hex::decode(sealed_hex.to_ascii_lowercase()).unwrap();
    let data_key = epoch
        .open_data_key(server_key, dk_id, &wrapped)
        .expect("the data key opens with the keyring and the server key");
    let plain = opener::open_secret(&data_key, aad, &bytes).expect("the secret opens");
    Sealed {
        bytes,
        data_key_id: dk_id.to_owned(),
        wrapped,
        data_key,
        plain,
    }
}

fn split3(row: &str) -> [&str; 3] {
    let parts: Vec<&str> = row.split('|').collect();
    assert_eq!(parts.len(), 3, "{row}");
    [parts[0], parts[1], parts[2]]
}

/// The base64 lines of the PEM form of `der`, as a `.sec` file holds them.
fn pem_body(der: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    b64.as_bytes()[..b64.len().min(60)].to_vec()
}

/// Every `(file, label)` under `roots` whose bytes contain one of the needles.
fn scan(roots: &[PathBuf], needles: &[(&str, Vec<u8>)]) -> Vec<(PathBuf, String)> {
    let finders: Vec<_> = needles
        .iter()
        .map(|(label, n)| (*label, memchr::memmem::Finder::new(n)))
        .collect();
    let mut hits = Vec::new();
    for root in roots {
        for file in files(root) {
            let Ok(bytes) = std::fs::read(&file) else {
                continue;
            };
            for (label, finder) in &finders {
                if finder.find(&bytes).is_some() {
                    hits.push((file.clone(), (*label).to_owned()));
                }
            }
        }
    }
    hits
}

fn files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(kind) = e.file_type() else { continue };
            if kind.is_dir() {
                stack.push(e.path());
            } else if kind.is_file() {
                out.push(e.path());
            }
        }
    }
    out
}
