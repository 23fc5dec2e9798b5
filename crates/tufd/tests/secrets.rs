//! Secrets at rest and in logs: tokens and the one-time credentials URL are stored only as
//! their SHA-256, and neither they nor private key material ever reach the log, even at the
//! most verbose level. Checked on the bytes of the SQLite store (database and WAL files) and
//! of everything the server wrote to stderr, after every kind of request that carries a
//! secret: bootstrap, token creation, use, failed use, revocation, credentials download.

mod common;

use common::*;
use serde_json::{json, Value};
use sqlx::{Connection as _, Row as _};
use tuf_core::hash::sha256_hex;

#[test]
fn tokens_and_one_time_urls_are_stored_as_hashes_and_never_logged() {
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("tufd.log");
    let mut s = Server::start_logged("trace", &log);
    let f = create_factory(&s, "secretive");
    let once = f.credentials_url.rsplit('/').next().unwrap().to_owned();
    assert_eq!(once.len(), 64, "{}", f.credentials_url);
    let r = client()
        .post(s.url("/ota/factories/secretive/tokens"))
        .bearer_auth(&f.owner)
        .json(&json!({"scope": "read"}))
        .send()
        .unwrap();
    let read: Value = r.json().unwrap();
    let read = read["token"].as_str().unwrap().to_owned();
    let root = "/ota/repo/secretive/api/v1/user_repo/root.json";
    for token in [&f.owner, &f.ci, &read] {
        assert_eq!(get(&s, root, Some(token)).0, StatusCode::OK);
    }
    // A mistyped token (one character off) and a revoked one go through the refusal paths.
    let last = if read.ends_with('0') { '1' } else { '0' };
    let typo = format!("{}{last}", &read[..read.len() - 1]);
    let (st, body) = get(&s, root, Some(&typo));
    assert_refused(
        (st, &body),
        (StatusCode::UNAUTHORIZED, "unauthorized", "unknown token"),
    );
    // The credentials: once, then gone; the private keys inside are secrets too.
    let tarball = client()
        .get(&f.credentials_url)
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    let creds = tuf_credentials::Credentials::read(&tarball).unwrap();
    let root_key = creds.private_key("offline-root").unwrap();
    let r = client().get(&f.credentials_url).send().unwrap();
    assert_eq!(r.status(), StatusCode::GONE);
    // Stored: the hashes (of every live token), and never the secrets.
    let stored = stored_hashes(&s);
    for token in [&f.owner, &f.ci, &read, &s.admin] {
        assert!(
            stored.tokens.contains(&sha256_hex(token.as_bytes())),
            "{token}"
        );
    }
    assert_eq!(stored.credentials, vec![sha256_hex(once.as_bytes())]);
    let r = client()
        .post(s.url("/ota/factories/secretive/tokens/revoke-all"))
        .bearer_auth(&f.owner)
        .json(&json!({"keep_current": true}))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(get(&s, root, Some(&read)).0, StatusCode::UNAUTHORIZED);

    let admin = s.admin.clone();
    let pem = root_key.to_pkcs8_pem();
    let pem_body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let secrets: Vec<(&str, &str)> = vec![
        ("owner token", &f.owner),
        ("ci token", &f.ci),
        ("read token", &read),
        ("mistyped token", &typo),
        ("admin token", &admin),
        ("one-time URL", &once),
        ("offline root key (PEM)", &pem_body),
    ];
    let hex_der = hex::encode(root_key.pkcs8_der());
    for file in ["tufd.sqlite", "tufd.sqlite-wal"] {
        let bytes = std::fs::read(s.dir.path().join(file)).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        for (what, secret) in &secrets {
            assert!(!text.contains(secret), "{what} stored in clear in {file}");
        }
        assert!(
            !contains(&bytes, root_key.pkcs8_der()),
            "root key DER in {file}"
        );
    }

    // Logged: not one of them, at trace level, with the server stopped (all flushed).
    s.stop();
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("factory created"),
        "the log is empty: {logged}"
    );
    for (what, secret) in &secrets {
        assert!(!logged.contains(secret), "{what} logged");
    }
    assert!(!logged.contains(&hex_der), "root key DER logged");
}

struct Stored {
    tokens: Vec<String>,
    credentials: Vec<String>,
}

/// The token hashes and one-time URL hashes in the SQLite store.
fn stored_hashes(s: &Server) -> Stored {
    let url = format!(
        "sqlite://{}?mode=ro",
        s.dir.path().join("tufd.sqlite").display()
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        let column = |rows: Vec<sqlx::sqlite::SqliteRow>| -> Vec<String> {
            rows.iter().map(|r| r.get::<String, _>(0)).collect()
        };
        let tokens = sqlx::query("SELECT hash FROM tokens")
            .fetch_all(&mut c)
            .await
            .unwrap();
        let credentials = sqlx::query("SELECT once_hash FROM credentials")
            .fetch_all(&mut c)
            .await
            .unwrap();
        Stored {
            tokens: column(tokens),
            credentials: column(credentials),
        }
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
