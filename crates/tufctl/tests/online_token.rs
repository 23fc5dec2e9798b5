//! tufd with its online keys on a PKCS#11 token (`--pkcs11 MODULE --slot S --pin-file F`),
//! SoftHSM2 here: the targets, snapshot and timestamp keys are generated on the token, never
//! extractable; the bootstrap root key goes to the owner in the tarball and the server keeps
//! no copy of it; `keys rotate-online` makes new token keys and destroys the old ones
//! (C_DestroyObject); devices verify everything the token signs. On PostgreSQL two replicas
//! share the database and the token.
//!
//! Needs `TUF_TEST_PKCS11_MODULE` and `softhsm2-util`; skipped without them (failing under
//! `CI=true`).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::json;
use support::e2e::*;
use support::store::query;
use support::*;
use tuf_pkcs11::{Error as TokenError, KeyRef, Pkcs11Signer, SecretString};

#[test]
fn online_keys_on_a_token_on_sqlite() {
    let Some(hsm) = hsm() else { return };
    let server = hsm.server(None, &hsm.token("tufd-sqlite"));
    token_story(&server, hsm, None);
}

#[test]
fn online_keys_on_a_token_shared_by_two_postgres_replicas() {
    let Some(hsm) = hsm() else { return };
    let Some(db) = postgres_database() else {
        return;
    };
    let server = hsm.server(Some(&db), &hsm.token("tufd-pg"));
    let replica = server.replica();
    token_story(&server, hsm, Some(&replica));
}

fn token_story(server: &Server, hsm: &Hsm, replica: Option<&Server>) {
    let f = create_factory(server, "hsm-online");
    // The server holds the online keys as token references only, and of the bootstrap root
    // key nothing but its public key.
    let rows = keys_of(server, &f.name);
    let root = rows.iter().find(|r| r.purpose == "root").unwrap();
    assert!(root.token_ref.is_none() && root.sealed_len == 0 && !root.data_key);
    let online: Vec<&StoredKey> = rows.iter().filter(|r| r.purpose != "root").collect();
    assert_eq!(online.len(), 3, "{rows:?}");
    for k in &online {
        assert!(k.sealed_len == 0 && !k.data_key, "{k:?}");
        // Opening checks the key never left the token (sensitive, never extractable).
        hsm.open(k).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("creds.tgz");
    let c = creds.to_str().unwrap();
    let ctl = |args: &[&str]| server.tufctl_as(&f.token, &f.name, args, &[]);
    ok(&ctl(&["keys", "download", &f.credentials_url, c]));
    ok(&ctl(&["keys", "rotate-root", c]));
    let ci_base = format!("{}/repo/{}/ci", server.url, f.name);
    let device = Device::new(&root_v1(&ci_base), &ci_base);
    add_build(server, &f, dir.path(), "1");
    device.refreshes();

    let mut before = online_refs(server, &f.name);
    for key_type in ["ed25519", "ecdsa"] {
        let out = json(&ok(&ctl(&[
            "--json",
            "keys",
            "rotate-online",
            "--key-type",
            key_type,
            c,
        ])));
        assert!(out["new_online_keys"]["targets"].is_string(), "{out}");
        for old in &before {
            let err = hsm.open(old).unwrap_err();
            assert!(matches!(err, TokenError::KeyNotFound { .. }), "{err:?}");
        }
        let now = online_refs(server, &f.name);
        for k in &now {
            let signer = hsm.open(k).unwrap();
            let want = if key_type == "ed25519" {
                "ed25519"
            } else {
                "ecdsa"
            };
            assert_eq!(tuf_core::Signer::public_key(&signer).keytype, want);
        }
        before = now;
        let version = format!("{}", 2 + usize::from(key_type == "ecdsa"));
        add_build(replica.unwrap_or(server), &f, dir.path(), &version);
        device.refreshes();
    }
    let err = fails(&ctl(&["keys", "rotate-online", "--key-type", "rsa", c]));
    assert!(err.contains("ed25519 or ecdsa (P-256)"), "{err}");
    // Refused before any key was made; the transaction it opened is closed again.
    fails(&ctl(&["keys", "tuf", "updates", "review"]));
    assert_eq!(online_refs(server, &f.name).len(), 3);
    // Pending keys of a cancelled online-key rotation leave the token too.
    let updates = format!(
        "{}/ota/repo/{}/api/v1/user_repo/root/updates",
        server.url, f.name
    );
    let tx = post(&updates, &f.token, json!({"message": "probe"}));
    let txid = tx["txid"].as_str().unwrap();
    let out = post(
        &format!("{updates}/online-keys"),
        &f.token,
        json!({"txid": txid, "roles": ["timestamp"]}),
    );
    assert!(out["new_online_keys"]["timestamp"].is_string(), "{out}");
    let pending: Vec<StoredKey> = keys_of(server, &f.name)
        .into_iter()
        .filter(|k| k.purpose == "pending-timestamp")
        .collect();
    assert_eq!(pending.len(), 1);
    hsm.open(&pending[0]).unwrap();
    post(
        &format!("{updates}/cancel"),
        &f.token,
        json!({"txid": txid}),
    );
    let err = hsm.open(&pending[0]).unwrap_err();
    assert!(matches!(err, TokenError::KeyNotFound { .. }), "{err:?}");
    if let Some(r) = replica {
        // The other replica signs with the keys the first one generated and rotated.
        add_build(r, &f, dir.path(), "9");
        let other = format!("{}/repo/{}/ci", r.url, f.name);
        Device::new(&root_v1(&other), &other).refreshes();
    }
}

/// POST `body` with `token`; the JSON answer of a 2xx.
fn post(url: &str, token: &str, body: serde_json::Value) -> serde_json::Value {
    let mut r = ureq::post(url)
        .header("Authorization", &format!("Bearer {token}"))
        .header("Content-Type", "application/json")
        .send(body.to_string())
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    serde_json::from_slice(&r.body_mut().read_to_vec().unwrap()).unwrap()
}

#[derive(Debug)]
struct StoredKey {
    purpose: String,
    token_ref: Option<String>,
    sealed_len: usize,
    data_key: bool,
}

fn keys_of(server: &Server, factory: &str) -> Vec<StoredKey> {
    query(
        server,
        &format!(
            "SELECT purpose, coalesce(token_ref, ''), length(sealed), \
             CASE WHEN data_key IS NULL THEN 0 ELSE 1 END \
             FROM online_keys WHERE factory = '{factory}'"
        ),
    )
    .iter()
    .map(|row| {
        let cols: Vec<&str> = row.splitn(4, '|').collect();
        StoredKey {
            purpose: cols[0].to_owned(),
            token_ref: Some(cols[1].to_owned()).filter(|r| !r.is_empty()),
            sealed_len: cols[2].parse().unwrap_or(0),
            data_key: cols[3] == "1",
        }
    })
    .collect()
}

fn online_refs(server: &Server, factory: &str) -> Vec<StoredKey> {
    keys_of(server, factory)
        .into_iter()
        .filter(|k| k.token_ref.is_some())
        .collect()
}

/// One SoftHSM2 configuration for this test binary (a module reads it once per process),
/// one token per test.
struct Hsm {
    dir: tempfile::TempDir,
    conf: PathBuf,
    module: PathBuf,
    pin_file: PathBuf,
}

const PIN: &str = "4321";

/// The tokens of this test binary, one per test.
const TOKENS: [&str; 2] = ["tufd-sqlite", "tufd-pg"];

fn hsm() -> Option<&'static Hsm> {
    static HSM: OnceLock<Option<Hsm>> = OnceLock::new();
    HSM.get_or_init(|| {
        let module = setting(
            "TUF_TEST_PKCS11_MODULE",
            "online keys on a PKCS#11 token need TUF_TEST_PKCS11_MODULE (SoftHSM2's module)",
        )?;
        let dir = tempfile::tempdir().unwrap();
        let conf = support::softhsm::write_conf(dir.path(), "tokens");
        // Before this process loads the module (it reads the variable at C_Initialize).
        std::env::set_var("SOFTHSM2_CONF", &conf);
        for label in TOKENS {
            let out = Command::new("softhsm2-util")
                .args(["--init-token", "--free", "--label", label])
                .args(["--pin", PIN, "--so-pin", "87654321"])
                .env("SOFTHSM2_CONF", &conf)
                .output()
                .unwrap_or_else(|e| panic!("cannot run softhsm2-util: {e}"));
            assert!(out.status.success(), "{}", stderr(&out));
        }
        let pin_file = dir.path().join("pin");
        std::fs::write(&pin_file, format!("{PIN}\n")).unwrap();
        Some(Hsm {
            dir,
            conf,
            module: PathBuf::from(module),
            pin_file,
        })
    })
    .as_ref()
}

impl Hsm {
    /// One of the tokens made at start (made before this process loads the module: a
    /// module that is already loaded may not see tokens created later).
    fn token(&self, label: &str) -> String {
        assert!(TOKENS.contains(&label), "{label} is not in TOKENS");
        assert!(self.dir.path().exists());
        label.to_owned()
    }

    /// A tufd on this token (`label`), on SQLite or the PostgreSQL database `db`.
    fn server(&self, db: Option<&str>, label: &str) -> Server {
        let module = self.module.display().to_string();
        let pin = self.pin_file.display().to_string();
        let conf = self.conf.display().to_string();
        let args = ["--pkcs11", &module, "--slot", label, "--pin-file", &pin];
        Server::start_env(db, &args, &[("SOFTHSM2_CONF", &conf)])
    }

    /// Opens the stored key on the token from this process.
    fn open(&self, k: &StoredKey) -> Result<Pkcs11Signer, TokenError> {
        let r = KeyRef::from_json(k.token_ref.as_deref().unwrap().as_bytes())?;
        let r = r.with_module(Path::new(&self.module));
        // SoftHSM keeps tokens as files that the tufd processes of this binary's other test
        // rewrite meanwhile; a slot list read during such a write can miss a token for a
        // moment. Only that is tried again; every other answer counts at once.
        let mut tries = 0;
        loop {
            match Pkcs11Signer::open(&r, &SecretString::from(PIN.to_owned())) {
                Err(TokenError::TokenNotPresent { .. }) if tries < 10 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                answer => return answer,
            }
        }
    }
}
