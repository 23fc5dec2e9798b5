//! Crash safety of `keys rotate-root` and `keys rotate-targets`: a proxy between `tufctl` and
//! a real `tufd` holds one request (or its answer) forever, `tufctl` is killed with SIGKILL
//! while it waits, and then the tarball must still hold every key the server trusts plus at
//! most the one pending key, and a plain re-run must finish with that same key.

mod support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use serde_json::Value;
use support::*;
use tuf_core::PublicKey;
use tuf_credentials::Credentials;

// --- the proxy ---------------------------------------------------------------------------------

/// What to do with the request the rule matches.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Hang {
    /// Accept the request and never forward or answer it.
    Request,
    /// Forward it, read the server's whole answer, and never pass the answer on.
    Response,
}

#[derive(Clone, Copy, Debug)]
struct Rule {
    method: &'static str,
    /// The request path (without query) ends with this.
    path_suffix: &'static str,
    /// 1-based: the Nth request matching method and path.
    nth: usize,
    hang: Hang,
}

#[derive(Default)]
struct State {
    /// "METHOD target" of every request received, in order.
    log: Vec<String>,
    matched: usize,
    /// The held request, and for [`Hang::Response`] the status line the server answered.
    hung: Option<(String, Option<String>)>,
    /// Client connections held open so the client keeps waiting.
    held: Vec<TcpStream>,
    /// Errors of connection threads (a test failure, not a hang).
    errors: Vec<String>,
}

struct Proxy {
    url: String,
    shared: Arc<(Mutex<State>, Condvar)>,
}

impl Proxy {
    fn start(upstream: &str, rule: Rule) -> Self {
        let upstream = upstream
            .strip_prefix("http://")
            .unwrap_or_else(|| panic!("upstream {upstream} is not http://"))
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new((Mutex::new(State::default()), Condvar::new()));
        let s = shared.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { break };
                let (s, upstream) = (s.clone(), upstream.clone());
                std::thread::spawn(move || {
                    if let Err(e) = serve(conn, &upstream, rule, &s) {
                        let (m, cv) = &*s;
                        m.lock().unwrap().errors.push(e);
                        cv.notify_all();
                    }
                });
            }
        });
        Self { url, shared }
    }

    /// Waits until the rule's request is held, checking `child` has not exited meanwhile.
    /// Bounded by a number of wake-ups, not by a duration anyone asserts on.
    fn wait_hung(&self, child: &mut std::process::Child) -> (String, Option<String>) {
        let (m, cv) = &*self.shared;
        let mut st = m.lock().unwrap();
        for _ in 0..MAX_POLLS {
            assert!(st.errors.is_empty(), "proxy errors: {:?}", st.errors);
            if let Some(h) = &st.hung {
                return h.clone();
            }
            if child.try_wait().unwrap().is_some() {
                let log = st.log.clone();
                drop(st);
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                panic!("tufctl exited before the proxy held the request; seen {log:?}\n{err}");
            }
            st = cv.wait_timeout(st, POLL).unwrap().0;
        }
        panic!("the proxy never saw the request to hold; seen {:?}", st.log);
    }

    fn log(&self) -> Vec<String> {
        self.shared.0.lock().unwrap().log.clone()
    }
}

const MAX_POLLS: usize = 3000;
const POLL: Duration = Duration::from_millis(100);

/// One request per client connection (answered with `Connection: close`).
fn serve(
    client: TcpStream,
    upstream: &str,
    rule: Rule,
    shared: &(Mutex<State>, Condvar),
) -> Result<(), String> {
    let mut reader = BufReader::new(client.try_clone().map_err(|e| e.to_string())?);
    let mut request_line = String::new();
    if reader
        .read_line(&mut request_line)
        .map_err(|e| e.to_string())?
        == 0
    {
        return Ok(());
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().ok_or("empty request line")?.to_owned();
    let target = parts.next().ok_or("no request target")?.to_owned();
    let mut headers = Vec::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).map_err(|e| e.to_string())?;
        let line = line.trim_end_matches(['\r', '\n']).to_owned();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').ok_or("bad header")?;
        let lower = name.trim().to_ascii_lowercase();
        if lower == "transfer-encoding" {
            return Err(format!(
                "{method} {target}: chunked bodies are not supported"
            ));
        }
        if lower == "content-length" {
            length = value.trim().parse().map_err(|_| "bad content-length")?;
        }
        if lower != "connection" && lower != "keep-alive" {
            headers.push(line);
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).map_err(|e| e.to_string())?;

    let path = target.split('?').next().unwrap_or_default();
    let entry = format!("{method} {target}");
    let hang = {
        let (m, _) = shared;
        let mut st = m.lock().unwrap();
        st.log.push(entry.clone());
        if method == rule.method && path.ends_with(rule.path_suffix) {
            st.matched += 1;
            st.matched == rule.nth
        } else {
            false
        }
    };
    let hold = |client: TcpStream, answered: Option<String>| {
        let (m, cv) = shared;
        let mut st = m.lock().unwrap();
        st.hung = Some((entry.clone(), answered));
        st.held.push(client);
        cv.notify_all();
    };
    if hang && rule.hang == Hang::Request {
        hold(client, None);
        return Ok(());
    }

    let mut up = TcpStream::connect(upstream).map_err(|e| e.to_string())?;
    let mut head = format!("{method} {target} HTTP/1.1\r\n");
    for h in &headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("Connection: close\r\n\r\n");
    up.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
    up.write_all(&body).map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    up.read_to_end(&mut answer).map_err(|e| e.to_string())?;

    if hang {
        let status = String::from_utf8_lossy(&answer)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned();
        hold(client, Some(status));
        return Ok(());
    }
    let mut client = client;
    client.write_all(&answer).map_err(|e| e.to_string())?;
    let _ = client.shutdown(Shutdown::Both);
    Ok(())
}

// --- the scenarios -----------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Debug)]
enum Rotate {
    Root,
    Targets,
}

impl Rotate {
    fn command(self) -> &'static str {
        match self {
            Rotate::Root => "rotate-root",
            Rotate::Targets => "rotate-targets",
        }
    }

    fn role(self) -> &'static str {
        match self {
            Rotate::Root => "root",
            Rotate::Targets => "targets",
        }
    }
}

struct Setup {
    server: Server,
    f: Factory,
    dir: tempfile::TempDir,
    creds: PathBuf,
}

fn setup(name: &str) -> Setup {
    let server = Server::start();
    let f = create_factory(&server, name);
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("creds.tgz");
    ok(&server.tufctl(&[
        "keys",
        "download",
        &f.credentials_url,
        creds.to_str().unwrap(),
    ]));
    Setup {
        server,
        f,
        dir,
        creds,
    }
}

/// The server's current CI or production root envelope.
fn server_root(s: &Setup, prod: bool) -> Value {
    let q = if prod { "?production=1" } else { "" };
    get_json(
        &s.server,
        &s.f,
        &format!("/ota/repo/{}/api/v1/user_repo/root.json{q}", s.f.name),
    )
}

fn read_creds(path: &Path) -> Credentials {
    let bytes = std::fs::read(path).unwrap();
    Credentials::read(&bytes).unwrap_or_else(|e| panic!("{} no longer opens: {e}", path.display()))
}

/// Key IDs taken from the names of `tufctl-<role>-<keyid>` entries holding a private key.
fn tufctl_key_ids(c: &Credentials, role: &str) -> BTreeSet<String> {
    let prefix = format!("tufctl-{role}-");
    c.keys()
        .unwrap()
        .into_iter()
        .filter(|k| k.has_private)
        .filter_map(|k| k.name.strip_prefix(&prefix).map(str::to_owned))
        .collect()
}

fn keyids(root: &Value, role: &str) -> Vec<String> {
    root["signed"]["roles"][role]["keyids"]
        .as_array()
        .unwrap_or_else(|| panic!("root has no {role} role: {root}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

fn public_key(root: &Value, id: &str) -> PublicKey {
    serde_json::from_value(root["signed"]["keys"][id].clone())
        .unwrap_or_else(|e| panic!("key {id} of the root does not parse: {e}"))
}

/// The tarball holds the private key of every root key of both roots, and of every targets
/// key the server does not hold itself (the offline targets key, once there is one).
fn assert_holds_trusted_keys(s: &Setup, when: &str) {
    let c = read_creds(&s.creds);
    for prod in [false, true] {
        let root = server_root(s, prod);
        let mut needed: Vec<String> = keyids(&root, "root");
        needed.extend(
            keyids(&root, "targets")
                .into_iter()
                .filter(|id| root["signed"]["x-key-owners"][id].as_str() != Some("tufd")),
        );
        for id in needed {
            let pk = public_key(&root, &id);
            assert!(
                c.find_signer(&pk).unwrap().is_some(),
                "{when}: the tarball lacks the private key of {id}, trusted by the server's \
                 {} root",
                if prod { "production" } else { "CI" }
            );
        }
    }
}

/// Every `tufctl-*-<keyid>` entry is named after its key's ID, and a key the server's root
/// lists is the same key material under that ID.
fn assert_names_match_key_ids(s: &Setup) {
    let c = read_creds(&s.creds);
    let root = server_root(s, false);
    for k in c.keys().unwrap() {
        let Some(rest) = k.name.strip_prefix("tufctl-") else {
            continue;
        };
        let (_, id) = rest.split_once('-').unwrap();
        assert_eq!(id, k.key_id().as_str(), "{} is misnamed", k.name);
        if !root["signed"]["keys"][id].is_null() {
            assert!(
                k.matches(&public_key(&root, id)),
                "{} differs from root key {id}",
                k.name
            );
        }
    }
}

fn version(root: &Value) -> u64 {
    root["signed"]["version"].as_u64().unwrap()
}

/// Leftover temporary files beside the tarball.
fn leftovers(s: &Setup) -> Vec<String> {
    std::fs::read_dir(s.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "creds.tgz")
        .collect()
}

/// Runs `tufctl keys <rotate>` through a proxy applying `rule`, kills it once the proxy
/// holds the request, checks the tarball, re-runs directly against tufd and checks the end
/// state. With `torn_save`, a half-written temporary file of the tarball is also left beside
/// it, as a kill in the middle of a save would. Returns the re-run's stderr.
fn crash_then_rerun(name: &str, rotate: Rotate, rule: Rule) -> String {
    crash_then_rerun_with(name, rotate, rule, false)
}

fn crash_then_rerun_with(name: &str, rotate: Rotate, rule: Rule, torn_save: bool) -> String {
    let s = setup(name);
    let role = rotate.role();
    let creds = s.creds.to_str().unwrap().to_owned();
    let before_ids = tufctl_key_ids(&read_creds(&s.creds), role);
    let before_version = version(&server_root(&s, false));

    let proxy = Proxy::start(&s.server.url, rule);
    let mut child = Command::new(env!("CARGO_BIN_EXE_tufctl"))
        .args(["keys", rotate.command(), &creds, "--token", &s.f.token])
        .env_remove("TUFCTL_TOKEN")
        .env_remove("TUFCTL_FACTORY")
        .env_remove("TUFCTL_CONFIG")
        .env_remove("TUFCTL_PASSPHRASE")
        .env("TUFCTL_API", &proxy.url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (held, answered) = proxy.wait_hung(&mut child);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        held.starts_with(&format!("{} ", rule.method)) && held.contains(rule.path_suffix),
        "held {held:?}"
    );
    let log = proxy.log();

    // Right after the crash.
    let c = read_creds(&s.creds);
    let pending: Vec<String> = tufctl_key_ids(&c, role)
        .difference(&before_ids)
        .cloned()
        .collect();
    let first_request = log.len() == 1;
    if first_request {
        assert!(pending.is_empty(), "a key before contacting the server");
    } else {
        assert_eq!(pending.len(), 1, "expected one pending key: {pending:?}");
    }
    assert_holds_trusted_keys(&s, "after the crash");
    let applied = version(&server_root(&s, false));
    match answered {
        Some(status) if rule.path_suffix.ends_with("/apply") => {
            assert!(status.contains(" 200 "), "apply answered {status}");
            assert_eq!(applied, before_version + 1, "apply was forwarded");
        }
        _ => assert_eq!(applied, before_version, "nothing was applied"),
    }

    // No leftover temporary file blocks the next command; if there is one, it is explained.
    let torn = s.dir.path().join(".creds.tgz.tmp-4242-0-0");
    if torn_save {
        let bytes = std::fs::read(&s.creds).unwrap();
        std::fs::write(&torn, &bytes[..bytes.len() / 2]).unwrap();
    }
    let left = leftovers(&s);
    let out = s
        .server
        .tufctl(&["keys", rotate.command(), &creds, "--token", &s.f.token]);
    ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !left.is_empty() {
        assert!(stderr.contains("temporary file"), "{left:?}: {stderr}");
    }

    // Exactly one new key compared with before the killed run: the pending one, if any.
    let c = read_creds(&s.creds);
    let added: Vec<String> = tufctl_key_ids(&c, role)
        .difference(&before_ids)
        .cloned()
        .collect();
    assert_eq!(added.len(), 1, "keys added by the two runs: {added:?}");
    if !pending.is_empty() {
        assert_eq!(added, pending, "the re-run did not reuse the pending key");
        assert!(
            stderr.contains("pending") || stderr.contains("already"),
            "the re-run does not say it reused the pending key: {stderr}"
        );
    }
    let new_id = &added[0];
    for prod in [false, true] {
        let root = server_root(&s, prod);
        assert_eq!(version(&root), before_version + 1, "{root}");
        match rotate {
            Rotate::Root => assert_eq!(keyids(&root, "root"), vec![new_id.clone()]),
            Rotate::Targets => {
                assert!(keyids(&root, "targets").contains(new_id), "{root}");
                let threshold = root["signed"]["roles"]["targets"]["threshold"].as_u64();
                assert_eq!(threshold, Some(if prod { 2 } else { 1 }));
            }
        }
    }
    assert_holds_trusted_keys(&s, "after the re-run");
    assert_names_match_key_ids(&s);
    // A leftover is explained, never deleted or used: it might be the only copy of a key.
    assert_eq!(leftovers(&s), left, "temporary files changed");
    if !torn_save {
        assert!(left.is_empty(), "the killed run left {left:?}");
    }
    stderr
}

const FIRST: Rule = Rule {
    method: "GET",
    path_suffix: "/root.json",
    nth: 1,
    hang: Hang::Request,
};
const INIT: Rule = Rule {
    method: "POST",
    path_suffix: "/root/updates",
    nth: 1,
    hang: Hang::Request,
};
const STAGE: Rule = Rule {
    method: "PUT",
    path_suffix: "/root/updates",
    nth: 1,
    hang: Hang::Request,
};
const APPLY: Rule = Rule {
    method: "POST",
    path_suffix: "/root/updates/apply",
    nth: 1,
    hang: Hang::Request,
};

fn answer_lost(rule: Rule) -> Rule {
    Rule {
        hang: Hang::Response,
        ..rule
    }
}

#[test]
fn rotate_root_killed_fetching_the_current_root() {
    crash_then_rerun("crash-root-a", Rotate::Root, FIRST);
}

#[test]
fn rotate_root_killed_opening_the_transaction() {
    crash_then_rerun("crash-root-b", Rotate::Root, INIT);
}

#[test]
fn rotate_root_killed_after_the_server_opened_the_transaction() {
    crash_then_rerun("crash-root-b2", Rotate::Root, answer_lost(INIT));
}

#[test]
fn rotate_root_killed_staging() {
    crash_then_rerun("crash-root-c", Rotate::Root, STAGE);
}

#[test]
fn rotate_root_killed_after_the_server_staged() {
    crash_then_rerun("crash-root-c2", Rotate::Root, answer_lost(STAGE));
}

#[test]
fn rotate_root_killed_applying() {
    crash_then_rerun("crash-root-d", Rotate::Root, APPLY);
}

#[test]
fn rotate_root_killed_after_the_server_applied() {
    let err = crash_then_rerun("crash-root-d2", Rotate::Root, answer_lost(APPLY));
    assert!(err.contains("already"), "{err}");
}

#[test]
fn rotate_targets_killed_fetching_the_current_root() {
    crash_then_rerun("crash-targets-a", Rotate::Targets, FIRST);
}

#[test]
fn rotate_targets_killed_opening_the_transaction() {
    crash_then_rerun("crash-targets-b", Rotate::Targets, INIT);
}

#[test]
fn rotate_targets_killed_after_the_server_opened_the_transaction() {
    crash_then_rerun("crash-targets-b2", Rotate::Targets, answer_lost(INIT));
}

#[test]
fn rotate_targets_killed_staging() {
    crash_then_rerun("crash-targets-c", Rotate::Targets, STAGE);
}

#[test]
fn rotate_targets_killed_after_the_server_staged() {
    crash_then_rerun("crash-targets-c2", Rotate::Targets, answer_lost(STAGE));
}

#[test]
fn rotate_targets_killed_applying() {
    crash_then_rerun("crash-targets-d", Rotate::Targets, APPLY);
}

#[test]
fn rotate_targets_killed_after_the_server_applied() {
    let err = crash_then_rerun("crash-targets-d2", Rotate::Targets, answer_lost(APPLY));
    assert!(err.contains("already"), "{err}");
}

#[test]
fn rotate_root_rerun_explains_a_torn_temporary_file_and_proceeds() {
    let err = crash_then_rerun_with("crash-root-torn", Rotate::Root, STAGE, true);
    assert!(err.contains(".creds.tgz.tmp-4242-0-0"), "{err}");
}

#[test]
fn rotate_targets_rerun_explains_a_torn_temporary_file_after_the_server_applied() {
    let err = crash_then_rerun_with(
        "crash-targets-torn",
        Rotate::Targets,
        answer_lost(APPLY),
        true,
    );
    assert!(err.contains(".creds.tgz.tmp-4242-0-0"), "{err}");
    assert!(err.contains("already"), "{err}");
}
