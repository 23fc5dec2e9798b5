//! A real `tufd` on a loopback port with a throwaway data directory, and the real `tufctl`.

#![allow(dead_code)]

pub mod e2e;
pub mod kinds;
pub mod softhsm;
pub mod store;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;

use serde_json::Value;

pub struct Server {
    child: Child,
    pub url: String,
    pub admin: String,
    pub dir: tempfile::TempDir,
    log: mpsc::Receiver<String>,
    /// The PostgreSQL database and the server key given to tufd for it (None: SQLite).
    pub db: Option<(String, String)>,
    /// How tufd was started: extra arguments and environment (kept for restarts, replicas).
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Server {
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// A server on the embedded SQLite store (`None`) or on the PostgreSQL database `db_url`.
    pub fn start_with(db_url: Option<&str>) -> Self {
        Self::start_full(db_url, &[])
    }

    /// A server on SQLite (`None`) or on the PostgreSQL database `db_url`, started with `args`
    /// added (e.g. TLS or token flags).
    pub fn start_full(db_url: Option<&str>, args: &[&str]) -> Self {
        Self::start_env(db_url, args, &[])
    }

    /// Like [`Server::start_full`], with `env` added to tufd's environment.
    pub fn start_env(db_url: Option<&str>, args: &[&str], env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let admin = format!("admin-{}", hex::encode(rand_bytes()));
        let db = db_url.map(|u| {
            let key = hex::encode([rand_bytes(), rand_bytes()].concat());
            (u.to_owned(), key)
        });
        let env = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Self::launch(dir, admin, db, "127.0.0.1:0", &[], args, env)
    }

    /// A server on the embedded SQLite store started with `args` added (e.g. TLS flags).
    pub fn start_with_args(args: &[&str]) -> Self {
        Self::start_full(None, args)
    }

    /// Another replica on this server's PostgreSQL database (same server key), with a data
    /// directory of its own holding a copy of this one's keyring file, as an operator would
    /// set it up.
    pub fn replica(&self) -> Self {
        let db = self
            .db
            .clone()
            .expect("replicas share a PostgreSQL database");
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        std::fs::copy(
            self.dir.path().join("data/keyring"),
            dir.path().join("data/keyring"),
        )
        .unwrap();
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        Self::launch(
            dir,
            self.admin.clone(),
            Some(db),
            "127.0.0.1:0",
            &[],
            &args,
            self.env.clone(),
        )
    }

    /// A server on SQLite in `dir` (its data directory is `dir/data`, which may hold a
    /// restored store) on a new port, with `admin` as its admin token.
    pub fn start_on(dir: tempfile::TempDir, admin: &str) -> Self {
        Self::launch(
            dir,
            admin.to_owned(),
            None,
            "127.0.0.1:0",
            &[],
            &[],
            Vec::new(),
        )
    }

    /// The data directory tufd was started with.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Stops this server and starts tufd again on the same data directory, database and
    /// address, run through `prefix` (e.g. `["faketime", "+12d"]`) and with `args` added.
    pub fn restart(mut self, prefix: &[&str], args: &[&str]) -> Self {
        self.stop();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        let listen = self.url.trim_start_matches("http://").to_owned();
        let admin = self.admin.clone();
        let db = self.db.take();
        let mut all: Vec<String> = std::mem::take(&mut self.args);
        all.extend(args.iter().map(|a| (*a).to_owned()));
        let env = std::mem::take(&mut self.env);
        drop(self);
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        Self::launch(dir, admin, db, &listen, prefix, &all, env)
    }

    fn launch(
        dir: tempfile::TempDir,
        admin: String,
        db: Option<(String, String)>,
        listen: &str,
        prefix: &[&str],
        args: &[&str],
        env: Vec<(String, String)>,
    ) -> Self {
        let tufd = tufd_path();
        let mut cmd = match prefix.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(&tufd);
                c
            }
            None => Command::new(&tufd),
        };
        // A group of its own: a wrapper such as faketime forks tufd as its child, and
        // stopping the server must stop that child too.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        cmd.args(["--listen", listen, "--data-dir"])
            .arg(dir.path().join("data"))
            .args(args)
            .env("TUFD_ADMIN_TOKEN", &admin)
            .env_remove("RUST_LOG")
            .env_remove("TUFD_DATABASE_URL")
            .env_remove("TUFD_SERVER_KEY")
            .env_remove("TUFD_SERVER_KEY_FILE")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some((url, key)) = &db {
            cmd.arg("--database-url")
                .arg(url)
                .env("TUFD_SERVER_KEY", key);
        }
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", tufd.display()));
        let (tx, rx) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        // Wait for the announcement; if tufd exits first, both streams close and recv fails.
        let mut seen = Vec::new();
        let url = loop {
            match rx.recv() {
                Ok(line) => {
                    let at = line
                        .find("listening on http://")
                        .or_else(|| line.find("listening on https://"));
                    if let Some(i) = at {
                        let rest = &line[i + "listening on ".len()..];
                        break rest.split_whitespace().next().unwrap().to_owned();
                    }
                    seen.push(line);
                }
                Err(_) => panic!("tufd exited before listening:\n{}", seen.join("\n")),
            }
        };
        Self {
            child,
            url,
            admin,
            dir,
            log: rx,
            db,
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            env,
        }
    }

    pub fn stop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// `tufctl` with `--api` set to this server (other settings from the arguments).
    pub fn tufctl(&self, args: &[&str]) -> Output {
        tufctl_env(args, &[("TUFCTL_API", &self.url)])
    }

    /// `tufctl` on this server with `token` for `factory` (TUFCTL_API, TUFCTL_TOKEN and
    /// TUFCTL_FACTORY), and `more` in its environment.
    pub fn tufctl_as(
        &self,
        token: &str,
        factory: &str,
        args: &[&str],
        more: &[(&str, &str)],
    ) -> Output {
        let mut env = vec![
            ("TUFCTL_API", self.url.as_str()),
            ("TUFCTL_TOKEN", token),
            ("TUFCTL_FACTORY", factory),
        ];
        env.extend_from_slice(more);
        tufctl_env(args, &env)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn rand_bytes() -> [u8; 16] {
    let mut b = [0u8; 16];
    let f = std::fs::File::open("/dev/urandom").unwrap();
    std::io::Read::read_exact(&mut &f, &mut b).unwrap();
    b
}

/// The `tufd` binary that cargo built next to `tufctl`.
pub fn tufd_path() -> PathBuf {
    let me = Path::new(env!("CARGO_BIN_EXE_tufctl"));
    let p = me.with_file_name("tufd");
    assert!(
        p.exists(),
        "tufd not found at {}: build it first with `cargo build -p tufd` (`cargo test --workspace` builds it)",
        p.display()
    );
    p
}

/// The `tuf-agent` binary that cargo built next to `tufctl`.
pub fn tuf_agent_path() -> PathBuf {
    let me = Path::new(env!("CARGO_BIN_EXE_tufctl"));
    let p = me.with_file_name("tuf-agent");
    assert!(
        p.exists(),
        "tuf-agent not found at {}: build it first with `cargo build -p tuf-agent` (`cargo test --workspace` builds it)",
        p.display()
    );
    p
}

/// A fresh PostgreSQL database with a random name on the cluster of `TUFD_TEST_DATABASE_URL`,
/// created with `psql`; None (the test skips) when the variable is unset, a failure under
/// `CI=true`.
#[track_caller]
pub fn postgres_database() -> Option<String> {
    let url = setting(
        "TUFD_TEST_DATABASE_URL",
        "a PostgreSQL cluster: `. scripts/pg-cluster.sh; pg_cluster_start`",
    )?;
    let name = format!("tufctl_test_{}", hex::encode(rand_bytes()));
    let out = Command::new("psql")
        .arg(&url)
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-c"])
        .arg(format!("CREATE DATABASE {name}"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run psql (needed to create a test database): {e}"));
    assert!(
        out.status.success(),
        "psql could not create database {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (prefix, query) = match url.split_once('?') {
        Some((p, q)) => (p, format!("?{q}")),
        None => (url.as_str(), String::new()),
    };
    let (base, _) = prefix
        .rsplit_once('/')
        .unwrap_or_else(|| panic!("TUFD_TEST_DATABASE_URL has no database part: {url}"));
    Some(format!("{base}/{name}{query}"))
}

/// The value of `var`, a setting a test needs; None, after a skip saying what goes unchecked
/// (`skipping`), when it is unset or empty.
#[track_caller]
pub fn setting(var: &str, skipping: &str) -> Option<String> {
    test_skip::env(var, skipping)
}

/// A test that cannot run here says so (`skipping`: what goes unchecked; `missing`: what it
/// needs) and passes, except under `CI=true`, where it fails (see the `test-skip` crate).
#[track_caller]
pub fn skip(missing: &str, skipping: &str) {
    test_skip::skip(&format!("{skipping}; needs {missing}"));
}

/// Runs `story` against a server on a fresh PostgreSQL database, or skips as
/// [`postgres_database`] says.
#[track_caller]
pub fn on_postgres(story: impl FnOnce(Server)) {
    if let Some(db) = postgres_database() {
        story(Server::start_with(Some(&db)));
    }
}

/// Runs tufctl with a clean TUFCTL_* environment plus `env`. The per-user config directory
/// is an empty one of its own unless `env` sets XDG_CONFIG_HOME: the tester's own
/// `~/.config/tufctl` never takes part.
pub fn tufctl_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tufctl"));
    for k in [
        "TUFCTL_API",
        "TUFCTL_TOKEN",
        "TUFCTL_TOKEN_FILE",
        "TUFCTL_FACTORY",
        "TUFCTL_CONFIG",
        "TUFCTL_PASSPHRASE",
        "TUFCTL_PKCS11_PIN",
        "TUFCTL_CA_FILE",
    ] {
        cmd.env_remove(k);
    }
    let config_home = tempfile::tempdir().unwrap();
    cmd.env("XDG_CONFIG_HOME", config_home.path());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args(args).output().unwrap()
}

pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "tufctl failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn fails(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "tufctl succeeded but should have failed:\nstdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn json(s: &str) -> Value {
    serde_json::from_str(s.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

/// A Factory created through `tufctl factory create --json`.
pub struct Factory {
    pub name: String,
    pub token: String,
    pub ci_token: String,
    pub credentials_url: String,
}

pub fn create_factory(server: &Server, name: &str) -> Factory {
    let out = ok(&server.tufctl(&[
        "--json",
        "factory",
        "create",
        name,
        "--token",
        &server.admin,
    ]));
    let v = json(&out);
    Factory {
        name: v["factory"].as_str().unwrap().to_owned(),
        token: v["token"].as_str().unwrap().to_owned(),
        ci_token: v["ci_token"].as_str().unwrap().to_owned(),
        credentials_url: v["credentials_url"].as_str().unwrap().to_owned(),
    }
}

pub fn get_json(server: &Server, f: &Factory, path: &str) -> Value {
    json(&ok(&server.tufctl(&["get", path, "--token", &f.token])))
}
