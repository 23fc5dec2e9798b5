//! Shared test harness: python-tuf repositories, a loopback HTTP server that records what the
//! client asks for, and the real `tuf-agent` binary.

#![allow(dead_code)]

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread;

use serde_json::Value;
use tempfile::TempDir;

/// The python-tuf interpreter, or `None` when the tests cannot run here: the test skips
/// visibly, and fails under `CI=true` (see the `test-skip` crate).
#[track_caller]
pub fn python() -> Option<PathBuf> {
    test_skip::env(
        "TUF_TEST_PYTHON",
        "a python with tuf 7.0.1, as scripts/test sets up",
    )
    .map(PathBuf::from)
}

/// A repository built by tests/python/repo.py, served over HTTP.
pub struct Repo {
    python: PathBuf,
    pub dir: TempDir,
    pub server: Server,
}

impl Repo {
    /// A new repository (`init` with `init_args`, then published), or `None` when skipping.
    pub fn new(init_args: Value) -> Option<Self> {
        let python = python()?;
        let dir = TempDir::new().unwrap();
        let server = Server::start(dir.path());
        let repo = Self {
            python,
            dir,
            server,
        };
        repo.ops(serde_json::json!([["init", init_args], ["publish", {}]]));
        Some(repo)
    }

    /// Applies repo.py operations, e.g. `[["add_target", {...}], ["publish", {}]]`.
    pub fn ops(&self, ops: Value) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/repo.py");
        let out = Command::new(&self.python)
            .arg(script)
            .arg(self.dir.path())
            .arg(ops.to_string())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "repo.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn metadata_url(&self) -> String {
        format!("{}/metadata/", self.server.url)
    }

    pub fn targets_url(&self) -> String {
        format!("{}/targets/", self.server.url)
    }

    /// A served metadata file.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join("metadata").join(name)
    }

    pub fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.file(name)).unwrap()
    }

    pub fn write(&self, name: &str, bytes: &[u8]) {
        std::fs::write(self.file(name), bytes).unwrap()
    }

    /// A client that trusts this repository's version 1 root.
    pub fn client(&self) -> Client {
        let client = Client::new(self);
        let root = self.file("1.root.json");
        client.run(&["init", root.to_str().unwrap()]).success();
        client
    }
}

/// A device: its metadata and target directories.
pub struct Client {
    pub metadata: TempDir,
    pub targets: TempDir,
    metadata_url: String,
    targets_url: String,
}

impl Client {
    pub fn new(repo: &Repo) -> Self {
        Self {
            metadata: TempDir::new().unwrap(),
            targets: TempDir::new().unwrap(),
            metadata_url: repo.metadata_url(),
            targets_url: repo.targets_url(),
        }
    }

    /// `tuf-agent --metadata-dir DIR <args>`.
    pub fn run(&self, args: &[&str]) -> Outcome {
        agent(
            &[
                &["--metadata-dir", self.metadata.path().to_str().unwrap()],
                args,
            ]
            .concat(),
        )
    }

    pub fn refresh(&self) -> Outcome {
        self.run(&["--metadata-url", &self.metadata_url, "refresh"])
    }

    pub fn download(&self, names: &[&str]) -> Outcome {
        let mut args = vec!["--metadata-url", &self.metadata_url];
        for n in names {
            args.extend(["--target-name", n]);
        }
        args.extend([
            "--target-dir",
            self.targets.path().to_str().unwrap(),
            "--target-base-url",
            &self.targets_url,
            "download",
        ]);
        self.run(&args)
    }

    /// A trusted metadata file, or `None`.
    pub fn trusted(&self, name: &str) -> Option<Vec<u8>> {
        std::fs::read(self.metadata.path().join(name)).ok()
    }

    /// The `signed.version` of a trusted metadata file.
    pub fn version(&self, name: &str) -> Option<u64> {
        let bytes = self.trusted(name)?;
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        v["signed"]["version"].as_u64()
    }

    pub fn target(&self, local_name: &str) -> Option<Vec<u8>> {
        std::fs::read(self.targets.path().join(local_name)).ok()
    }

    /// Files in the target directory.
    pub fn target_files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.targets.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

/// Runs the real binary.
pub fn agent(args: &[&str]) -> Outcome {
    let out = Command::new(env!("CARGO_BIN_EXE_tuf-agent"))
        .args(args)
        .output()
        .unwrap();
    Outcome {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[derive(Debug)]
pub struct Outcome {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    pub fn success(&self) -> &Self {
        assert_eq!(self.code, Some(0), "expected success: {self:?}");
        self
    }

    /// Exit status exactly 1, with an error line mentioning `needle`.
    pub fn failure(&self, needle: &str) -> &Self {
        assert_eq!(self.code, Some(1), "expected exit 1: {self:?}");
        assert!(
            self.stderr.contains(needle),
            "stderr should mention {needle:?}: {self:?}"
        );
        self
    }
}

/// A static file server on 127.0.0.1 that records request paths. Paths are mapped to files
/// verbatim (no percent-decoding), so `1.role%2Fx.json` is served from a file of that name.
pub struct Server {
    pub url: String,
    requests: Arc<Mutex<Vec<String>>>,
    endless: Arc<Mutex<HashSet<String>>>,
    forbidden: Arc<Mutex<HashSet<String>>>,
}

impl Server {
    pub fn start(root: &Path) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let endless = Arc::new(Mutex::new(HashSet::new()));
        let forbidden = Arc::new(Mutex::new(HashSet::new()));
        let (root, reqs, endl, forb) = (
            root.to_owned(),
            requests.clone(),
            endless.clone(),
            forbidden.clone(),
        );
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (root, reqs, endl, forb) =
                    (root.clone(), reqs.clone(), endl.clone(), forb.clone());
                thread::spawn(move || serve(stream, &root, &reqs, &endl, &forb));
            }
        });
        Self {
            url,
            requests,
            endless,
            forbidden,
        }
    }

    /// Request paths since the last call.
    pub fn take_requests(&self) -> Vec<String> {
        std::mem::take(&mut *self.requests.lock().unwrap())
    }

    /// From now on `path` answers with an endless body.
    pub fn make_endless(&self, path: &str) {
        self.endless.lock().unwrap().insert(path.to_owned());
    }

    /// From now on `path` answers 403 Forbidden (as S3 and friends do for a missing key).
    pub fn make_forbidden(&self, path: &str) {
        self.forbidden.lock().unwrap().insert(path.to_owned());
    }
}

fn serve(
    stream: TcpStream,
    root: &Path,
    requests: &Mutex<Vec<String>>,
    endless: &Mutex<HashSet<String>>,
    forbidden: &Mutex<HashSet<String>>,
) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    loop {
        let mut header = String::new();
        match reader.read_line(&mut header) {
            Ok(0) | Err(_) => return,
            Ok(_) if header == "\r\n" => break,
            Ok(_) => {}
        }
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    requests.lock().unwrap().push(path.clone());
    let mut stream = stream;
    if forbidden.lock().unwrap().contains(&path) {
        let _ = stream
            .write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    }
    if endless.lock().unwrap().contains(&path) {
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
        let chunk = vec![b'A'; 64 * 1024];
        while stream.write_all(&chunk).is_ok() {}
        return;
    }
    let file = root.join(path.trim_start_matches('/'));
    // Only a whole `..` segment climbs out; `1....json` (role "..") is a plain file name.
    let safe = !path.split('/').any(|seg| seg == "..");
    match std::fs::read(&file) {
        Ok(body) if safe && file.is_file() => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
        _ => {
            let _ = stream.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    }
}
