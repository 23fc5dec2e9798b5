//! Online-key rotation against a real tufd on SQLite with a known server key: the old online
//! private keys are read honestly from the store (sealed rows in `<data-dir>/tufd.sqlite`,
//! opened with the server key and the keyring from the data directory), and after the
//! rotation metadata they sign is rejected by the new root, while the server's new metadata
//! verifies.

mod common;
#[path = "common/opener.rs"]
mod opener;

use common::*;
use serde_json::{json, Value};
use sqlx::{Connection as _, Row as _};
use tuf_core::{MetaFile, PrivateKey, Role, Root, Signed, Signer as _, Timestamp};

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

#[test]
fn old_online_keys_are_rejected_after_rotation() {
    let s = Server::sqlite();
    let f = create_factory(&s, "compromised");
    assert_eq!(add_target(&s, &f, "app", "1").0, StatusCode::CREATED);
    let r = client().get(&f.credentials_url).send().unwrap();
    let creds = tuf_credentials::Credentials::read(&r.bytes().unwrap()).unwrap();
    let root_key = creds.private_key("offline-root").unwrap();
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

    let (st, tx) = post(
        &s,
        &f,
        "/root/updates",
        json!({"message": "server compromise"}),
    );
    assert_eq!(st, StatusCode::CREATED, "{tx}");
    let txid = tx["txid"].as_str().unwrap().to_owned();
    let (st, tx) = post(
        &s,
        &f,
        "/root/updates/online-keys",
        json!({"txid": txid, "roles": ["targets", "snapshot", "timestamp"]}),
    );
    assert_eq!(st, StatusCode::OK, "{tx}");
    // Unsigned so far: apply is refused and names the missing signatures.
    let (st, v) = post(&s, &f, "/root/updates/apply", json!({ "txid": txid }));
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let sign = |v: &Value| -> Value {
        let mut env: Signed<Root> = Signed::from_value(v.clone()).unwrap();
        env.sign(&root_key).unwrap();
        serde_json::from_slice(&env.to_bytes()).unwrap()
    };
    let r = client()
        .put(s.url(&repo(&f, "/root/updates")))
        .bearer_auth(&f.owner)
        .json(&json!({"txid": txid, "ci_root": sign(&tx["ci_root"]), "prod_root": sign(&tx["prod_root"])}))
        .send()
        .unwrap();
    let staged: Value = r.json().unwrap();
    assert_eq!(staged["errors"], json!([]), "{staged}");
    let (st, v) = post(&s, &f, "/root/updates/apply", json!({ "txid": txid }));
    assert_eq!(st, StatusCode::OK, "{v}");

    let new_root = root(&s, &f, false).signed;
    for role in [Role::Targets, Role::Snapshot, Role::Timestamp] {
        let ids = &new_root.role(role).keyids;
        assert_eq!(
            ids[0].as_str(),
            tx["new_online_keys"][role.as_str()].as_str().unwrap()
        );
        for k in old_ts.iter().chain(&old_targets) {
            assert!(!ids.contains(k.key_id()), "{role}");
        }
    }
    // The old keys are gone from the store; the new ones are there.
    assert!(stored_keys(&s, &f.name, "timestamp")
        .iter()
        .all(|k| k.key_id() != old_ts[0].key_id()));

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
    forged.sign(&old_ts[0]).unwrap();
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
