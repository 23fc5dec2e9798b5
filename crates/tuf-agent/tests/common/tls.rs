//! TLS peers for tests: a throwaway PKI (`tests/python/pki.py`), an HTTPS static file server
//! that can require client certificates (`tests/python/tls_server.py`) and an HTTP CONNECT
//! proxy (`tests/python/connect_proxy.py`), all run by the python-tuf interpreter (its
//! `cryptography` makes the certificates).
//!
//! Standalone (std and tempfile only), so other crates' tests can use it too:
//! `#[path = "../../tuf-agent/tests/common/tls.rs"] mod tls;`.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use tempfile::TempDir;

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tuf-agent/tests/python")
        .join(name)
}

/// A CA, a server certificate for 127.0.0.1 and localhost, a client certificate, and an
/// unrelated CA with a client certificate of its own; keys of one type (`ecdsa`, `rsa` or
/// `ed25519`), all PEM files in [`Pki::dir`].
pub struct Pki {
    pub dir: TempDir,
}

impl Pki {
    pub fn new(python: &Path, key_type: &str) -> Self {
        let dir = TempDir::new().unwrap();
        let out = Command::new(python)
            .arg(script("pki.py"))
            .arg(dir.path())
            .arg(key_type)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pki.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self { dir }
    }

    /// One of `ca.pem`, `server.pem`, `server.key`, `client.pem`, `client.key`,
    /// `other-ca.pem`, `other-client.pem`, `other-client.key`.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn file_str(&self, name: &str) -> String {
        self.file(name).to_str().unwrap().to_owned()
    }
}

/// A helper process that announced `listening on URL` and then prints one line per event.
pub struct Peer {
    pub url: String,
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Peer {
    fn spawn(python: &Path, name: &str, args: &[&Path]) -> Self {
        let mut child = Command::new(python)
            .arg(script(name))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        let url = first
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("{name} did not start: {first:?}"))
            .to_owned();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Self { url, child, lines }
    }

    /// The lines printed since the last call (after a moment for the last ones to arrive).
    pub fn take_lines(&self) -> Vec<String> {
        thread::sleep(Duration::from_millis(200));
        std::mem::take(&mut *self.lines.lock().unwrap())
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Serves `root` over HTTPS with the PKI's server certificate; with `require_client_cert`,
/// only clients showing a certificate of the PKI's CA get an answer. Lines: `GET PATH CN`.
pub fn https_server(python: &Path, root: &Path, pki: &Pki, require_client_cert: bool) -> Peer {
    let (cert, key, ca) = (
        pki.file("server.pem"),
        pki.file("server.key"),
        pki.file("ca.pem"),
    );
    let mut args: Vec<&Path> = vec![root, &cert, &key];
    if require_client_cert {
        args.push(&ca);
    }
    Peer::spawn(python, "tls_server.py", &args)
}

/// An HTTP CONNECT proxy on 127.0.0.1. Lines: `CONNECT HOST:PORT`.
pub fn connect_proxy(python: &Path) -> Peer {
    Peer::spawn(python, "connect_proxy.py", &[])
}
