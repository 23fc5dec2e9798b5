//! Test harness: starts the real `tufd` binary on a loopback port with a temporary data
//! directory (SQLite) or a fresh PostgreSQL database, and drives it over HTTP.
#![allow(dead_code)]

pub mod suite;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};

use serde_json::{json, Value};

pub use reqwest::blocking::Client;
pub use reqwest::StatusCode;

pub struct Server {
    child: Child,
    pub base: String,
    pub admin: String,
    pub dir: tempfile::TempDir,
    pub db_url: Option<String>,
}

/// Expiry periods short enough that the upkeep task re-signs within seconds.
pub const SHORT_PERIODS: &[&str] = &[
    "--timestamp-expiry-secs",
    "4",
    "--snapshot-expiry-secs",
    "6",
    "--resign-interval-secs",
    "1",
];

pub const SERVER_KEY: &str = "0011223344556677889900112233445566778899001122334455667788990011";

impl Server {
    /// A server on the embedded SQLite store.
    pub fn sqlite() -> Self {
        Self::start(None, &[])
    }

    pub fn start(db_url: Option<&str>, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, db_url, extra)
    }

    pub fn start_in(dir: tempfile::TempDir, db_url: Option<&str>, extra: &[&str]) -> Self {
        Self::spawn(
            dir,
            db_url,
            extra,
            "test-admin-token-0123456789abcdef",
            ("warn", Stdio::piped()),
        )
    }

    /// Like [`Server::start_in`], with `admin` as `TUFD_ADMIN_TOKEN`.
    pub fn start_in_with_admin(
        dir: tempfile::TempDir,
        db_url: Option<&str>,
        extra: &[&str],
        admin: &str,
    ) -> Self {
        Self::spawn(dir, db_url, extra, admin, ("warn", Stdio::piped()))
    }

    /// A server on SQLite logging at `rust_log` (a `RUST_LOG` filter) into the file `log`.
    pub fn start_logged(rust_log: &str, log: &std::path::Path) -> Self {
        let file = std::fs::File::create(log).unwrap();
        Self::spawn(
            tempfile::tempdir().unwrap(),
            None,
            &[],
            "test-admin-token-0123456789abcdef",
            (rust_log, file.into()),
        )
    }

    /// A server on SQLite started with `extra`, logging at `rust_log` into the file `log`.
    pub fn start_logged_with(extra: &[&str], rust_log: &str, log: &std::path::Path) -> Self {
        let file = std::fs::File::create(log).unwrap();
        Self::spawn(
            tempfile::tempdir().unwrap(),
            None,
            extra,
            "test-admin-token-0123456789abcdef",
            (rust_log, file.into()),
        )
    }

    /// Stops the server with SIGTERM (a graceful shutdown: its logs are flushed) and waits.
    pub fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }

    fn spawn(
        dir: tempfile::TempDir,
        db_url: Option<&str>,
        extra: &[&str],
        admin: &str,
        (rust_log, stderr): (&str, Stdio),
    ) -> Self {
        let admin = admin.to_owned();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tufd"));
        cmd.arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(dir.path())
            .args(extra)
            .env("TUFD_ADMIN_TOKEN", &admin)
            .env("RUST_LOG", rust_log)
            .stdout(Stdio::piped())
            .stderr(stderr);
        if let Some(url) = db_url {
            cmd.arg("--database-url")
                .arg(url)
                .env("TUFD_SERVER_KEY", SERVER_KEY);
        }
        let mut child = cmd.spawn().expect("start tufd");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        if line.is_empty() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                e.read_to_string(&mut err).unwrap();
            }
            panic!("tufd did not start: {err}");
        }
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Self {
            child,
            base,
            admin,
            dir,
            db_url: db_url.map(str::to_owned),
        }
    }

    /// A server on a fresh PostgreSQL database, or None (skipping) without
    /// TUFD_TEST_DATABASE_URL. Under CI=true a missing database is a failure.
    #[track_caller]
    pub fn postgres() -> Option<Self> {
        let url = postgres_database()?;
        Some(Self::start(Some(&url), &[]))
    }

    /// Another replica on this server's PostgreSQL database: its own data directory, with a
    /// copy of this one's keyring file (the epoch key never is in the database; an operator
    /// copies it the same way).
    pub fn replica(&self, extra: &[&str]) -> Self {
        let url = self
            .db_url
            .as_deref()
            .expect("replicas share a PostgreSQL database");
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(self.dir.path().join("keyring"), dir.path().join("keyring")).unwrap();
        Self::start_in(dir, Some(url), extra)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn wait(&mut self) -> std::process::ExitStatus {
        self.child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates a database with a random name on the test cluster and returns its URL.
#[track_caller]
pub fn postgres_database() -> Option<String> {
    let url = test_skip::env(
        "TUFD_TEST_DATABASE_URL",
        "a PostgreSQL cluster: `. scripts/pg-cluster.sh; pg_cluster_start`",
    )?;
    let name = format!("tufd_test_{}", random_hex(8));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
    });
    let (prefix, _) = url.rsplit_once('/').unwrap();
    Some(format!("{prefix}/{name}"))
}

pub fn random_hex(n: usize) -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let seed = format!(
        "{:?}{}{:?}",
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap(),
        std::process::id(),
        std::thread::current().id()
    );
    tuf_core::hash::sha256_hex(seed.as_bytes())[..2 * n].to_owned()
}

pub fn client() -> Client {
    Client::builder().build().unwrap()
}

pub struct Factory {
    pub name: String,
    pub owner: String,
    pub ci: String,
    pub credentials_url: String,
}

pub fn create_factory(s: &Server, name: &str) -> Factory {
    let r = client()
        .post(s.url("/ota/factories"))
        .bearer_auth(&s.admin)
        .json(&json!({"name": name}))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().unwrap();
    Factory {
        name: v["factory"].as_str().unwrap().to_owned(),
        owner: v["token"].as_str().unwrap().to_owned(),
        ci: v["ci_token"].as_str().unwrap().to_owned(),
        credentials_url: v["credentials_url"].as_str().unwrap().to_owned(),
    }
}

pub fn target_json(name: &str, version: &str, content: &[u8]) -> Value {
    json!({"name": name, "version": version, "hardware_ids": ["hw-1"], "tags": ["main"],
           "length": content.len(), "hashes": {"sha256": tuf_core::hash::sha256_hex(content)}})
}

pub fn add_target(s: &Server, f: &Factory, name: &str, version: &str) -> (StatusCode, Value) {
    let r = client()
        .post(s.url(&format!("/ota/factories/{}/targets", f.name)))
        .bearer_auth(&f.ci)
        .json(&target_json(name, version, version.as_bytes()))
        .send()
        .unwrap();
    let status = r.status();
    (status, r.json().unwrap())
}

/// GET returning (status, body bytes).
pub fn get(s: &Server, path: &str, token: Option<&str>) -> (StatusCode, Vec<u8>) {
    let mut req = client().get(s.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().unwrap();
    (r.status(), r.bytes().unwrap().to_vec())
}

pub fn get_json(s: &Server, path: &str, token: Option<&str>) -> Value {
    let (status, body) = get(s, path, token);
    assert_eq!(
        status,
        StatusCode::OK,
        "{path}: {}",
        String::from_utf8_lossy(&body)
    );
    serde_json::from_slice(&body).unwrap()
}

/// The current metadata of a flavour, keyed by role: the fingerprint of "the store".
pub fn snapshot_of_store(s: &Server, f: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for flavour in ["ci", "prod"] {
        for file in [
            "root.json",
            "timestamp.json",
            "snapshot.json",
            "targets.json",
        ] {
            let (st, body) = get(s, &format!("/repo/{f}/{flavour}/metadata/{file}"), None);
            assert_eq!(st, StatusCode::OK);
            out.push(body);
        }
    }
    out
}

/// A refusal as the API answers it: status, `error`, and text the `detail` contains.
pub type Refusal<'a> = (StatusCode, &'a str, &'a str);

/// Asserts that `(status, body)` is the refusal `want`: that status, a JSON body whose `error`
/// is `want.1`, and whose `detail` (as JSON text) contains `want.2`. Returns the detail.
#[track_caller]
pub fn assert_refused(got: (StatusCode, &[u8]), want: Refusal<'_>) -> Value {
    let (status, body) = got;
    let v: Value = serde_json::from_slice(body).unwrap_or_else(|_| {
        panic!(
            "{status}: body is not JSON: {}",
            String::from_utf8_lossy(body)
        )
    });
    let (want_status, error, detail) = want;
    assert_eq!(status, want_status, "{v}");
    assert_eq!(v["error"], error, "{v}");
    // A text detail, or one of an object detail's text fields (`reason`, `check`, ...).
    let texts: Vec<&str> = match &v["detail"] {
        Value::String(s) => vec![s.as_str()],
        Value::Object(m) => m.values().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    assert!(
        texts.iter().any(|t| t.contains(detail)),
        "detail should contain {detail:?}: {v}"
    );
    v["detail"].clone()
}

/// [`assert_refused`] for a response.
#[track_caller]
pub fn assert_response_refused(r: reqwest::blocking::Response, want: Refusal<'_>) -> Value {
    let status = r.status();
    let body = r.bytes().unwrap();
    assert_refused((status, &body), want)
}
