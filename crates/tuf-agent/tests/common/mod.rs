//! Shared test harness: python-tuf repositories, a loopback HTTP server that records what the
//! client asks for, and the real `tuf-agent` binary.

#![allow(dead_code)]

pub mod tls;

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
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

/// Proxy variables the agent reads: removed unless a test sets them, so the tests do not
/// depend on the environment they run in.
const PROXY_VARIABLES: [&str; 8] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// Runs the real binary.
pub fn agent(args: &[&str]) -> Outcome {
    agent_with_env(args, &[])
}

/// Runs the real binary with these environment variables (and no other proxy variables).
pub fn agent_with_env(args: &[&str], env: &[(&str, &str)]) -> Outcome {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tuf-agent"));
    for v in PROXY_VARIABLES {
        cmd.env_remove(v);
    }
    let out = cmd.args(args).envs(env.iter().copied()).output().unwrap();
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
/// `Range: bytes=N-` is served (206) unless turned off; a path can be given scripted replies.
pub struct Server {
    pub url: String,
    state: Arc<ServerState>,
}

#[derive(Default)]
struct ServerState {
    requests: Mutex<Vec<String>>,
    ranges: Mutex<Vec<(String, Option<String>)>>,
    endless: Mutex<HashSet<String>>,
    forbidden: Mutex<HashSet<String>>,
    replies: Mutex<HashMap<String, VecDeque<Reply>>>,
    ignore_ranges: AtomicBool,
}

/// A scripted reply for one request of a path.
#[derive(Clone, Debug)]
pub enum Reply {
    /// What the server answers without a script.
    Normal,
    /// This status, empty body.
    Status(u16),
    /// 200 with `bytes` (whatever the `Range`); with `cut`, the connection closes after that
    /// many bytes of the body although Content-Length promised all of them.
    Body { bytes: Vec<u8>, cut: Option<usize> },
    /// 200 with the file, but only its first `after` bytes are sent, then nothing for a minute
    /// (a download the client has to be killed in).
    Stall { after: usize },
}

impl Server {
    pub fn start(root: &Path) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(ServerState::default());
        let (root, st) = (root.to_owned(), state.clone());
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (root, st) = (root.clone(), st.clone());
                thread::spawn(move || serve(stream, &root, &st));
            }
        });
        Self { url, state }
    }

    /// Request paths since the last call.
    pub fn take_requests(&self) -> Vec<String> {
        std::mem::take(&mut *self.state.requests.lock().unwrap())
    }

    /// (path, `Range` header) of every request since the last call.
    pub fn take_ranges(&self) -> Vec<(String, Option<String>)> {
        std::mem::take(&mut *self.state.ranges.lock().unwrap())
    }

    /// From now on `path` answers with an endless body.
    pub fn make_endless(&self, path: &str) {
        self.state.endless.lock().unwrap().insert(path.to_owned());
    }

    /// From now on `path` answers 403 Forbidden (as S3 and friends do for a missing key).
    pub fn make_forbidden(&self, path: &str) {
        self.state.forbidden.lock().unwrap().insert(path.to_owned());
    }

    /// The next requests of `path` get these replies, in order; then the usual one again.
    pub fn script(&self, path: &str, replies: Vec<Reply>) {
        let mut all = self.state.replies.lock().unwrap();
        all.entry(path.to_owned()).or_default().extend(replies);
    }

    /// Whether `Range` headers are ignored (whole files, 200), as some servers do.
    pub fn ignore_ranges(&self, ignore: bool) {
        self.state.ignore_ranges.store(ignore, Ordering::SeqCst);
    }
}

/// The request line's path and the `Range` header, or `None` when the request is cut short.
fn read_request(reader: &mut impl BufRead) -> Option<(String, Option<String>)> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut range = None;
    loop {
        let mut header = String::new();
        match reader.read_line(&mut header) {
            Ok(0) | Err(_) => return None,
            Ok(_) if header == "\r\n" => break,
            Ok(_) => {}
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("range") {
                range = Some(value.trim().to_owned());
            }
        }
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    Some((path, range))
}

fn serve(stream: TcpStream, root: &Path, state: &ServerState) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let Some((path, range)) = read_request(&mut reader) else {
        return;
    };
    state.requests.lock().unwrap().push(path.clone());
    state
        .ranges
        .lock()
        .unwrap()
        .push((path.clone(), range.clone()));
    let mut stream = stream;
    let reply = state
        .replies
        .lock()
        .unwrap()
        .get_mut(&path)
        .and_then(VecDeque::pop_front)
        .unwrap_or(Reply::Normal);
    if state.forbidden.lock().unwrap().contains(&path) {
        let _ = stream
            .write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    }
    if state.endless.lock().unwrap().contains(&path) {
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
        let chunk = vec![b'A'; 64 * 1024];
        while stream.write_all(&chunk).is_ok() {}
        return;
    }
    let file = root.join(path.trim_start_matches('/'));
    // Only a whole `..` segment climbs out; `1....json` (role "..") is a plain file name.
    let safe = !path.split('/').any(|seg| seg == "..");
    let body = match std::fs::read(&file) {
        Ok(body) if safe && file.is_file() => Some(body),
        _ => None,
    };
    let range = range.filter(|_| !state.ignore_ranges.load(Ordering::SeqCst));
    match (reply, body) {
        (Reply::Status(code), _) => status(&mut stream, code),
        (Reply::Body { bytes, cut }, _) => send(&mut stream, "200 OK", &[], &bytes, cut),
        (Reply::Stall { after }, Some(body)) => {
            send(&mut stream, "200 OK", &[], &body, Some(after));
            thread::sleep(std::time::Duration::from_secs(60));
        }
        (Reply::Normal, Some(body)) => match range.as_deref().and_then(range_start) {
            Some(from) if from < body.len() => {
                let header = format!(
                    "Content-Range: bytes {from}-{}/{}\r\n",
                    body.len() - 1,
                    body.len()
                );
                send(
                    &mut stream,
                    "206 Partial Content",
                    header.as_bytes(),
                    &body[from..],
                    None,
                )
            }
            Some(_) => status(&mut stream, 416),
            None => send(&mut stream, "200 OK", &[], &body, None),
        },
        (_, None) => status(&mut stream, 404),
    }
}

/// `N` of `bytes=N-`.
fn range_start(range: &str) -> Option<usize> {
    range
        .strip_prefix("bytes=")?
        .strip_suffix('-')?
        .parse()
        .ok()
}

fn status(stream: &mut TcpStream, code: u16) {
    let head =
        format!("HTTP/1.1 {code} Scripted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    let _ = stream.write_all(head.as_bytes());
}

/// Content-Length is always the whole `body`; with `cut`, fewer bytes follow.
fn send(stream: &mut TcpStream, status: &str, extra: &[u8], body: &[u8], cut: Option<usize>) {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(extra);
    let _ = stream.write_all(b"\r\n");
    let _ = stream.write_all(&body[..cut.unwrap_or(body.len()).min(body.len())]);
    let _ = stream.flush();
}
