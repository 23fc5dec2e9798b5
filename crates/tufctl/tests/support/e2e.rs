//! End-to-end helpers shared by the scenario tests: a device running the real `tuf-agent`,
//! a Factory after the page's first steps (`Offline`), builds, and a tampering proxy.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use tuf_credentials::Credentials;

use super::*;

pub struct Device {
    pub dir: tempfile::TempDir,
    pub metadata_url: String,
    pub target_base_url: String,
}

impl Device {
    /// A new device trusting `root` (a root.json), following `base` (`.../{ci|prod}`).
    pub fn new(root: &[u8], base: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root_file = dir.path().join("trusted-root.json");
        std::fs::write(&root_file, root).unwrap();
        let d = Self {
            dir,
            metadata_url: format!("{base}/metadata/"),
            target_base_url: format!("{base}/targets/"),
        };
        let out = d.agent(&["init", root_file.to_str().unwrap()]);
        assert!(out.status.success(), "init: {}", stderr(&out));
        d
    }

    pub fn agent(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(tuf_agent_path());
        cmd.arg("--metadata-dir")
            .arg(self.dir.path().join("metadata"))
            .args(["--metadata-url", &self.metadata_url]);
        cmd.args(args).output().unwrap()
    }

    /// `tuf-agent refresh`, which must succeed.
    pub fn refreshes(&self) {
        let out = self.agent(&["refresh"]);
        assert!(out.status.success(), "{}", stderr(&out));
    }

    /// The installed image: what the install command copied last.
    pub fn installed_path(&self) -> PathBuf {
        self.dir.path().join("installed.img")
    }

    /// `tuf-agent update` for hardware id board-a, installing by copying the verified file.
    pub fn update(&self) -> Output {
        let install = format!(
            "sh -c 'cp \"$0\" {}'",
            self.installed_path().to_str().unwrap()
        );
        self.agent(&[
            "--target-dir",
            self.dir.path().join("targets").to_str().unwrap(),
            "--target-base-url",
            &self.target_base_url,
            "--hardware-id",
            "board-a",
            "--install-cmd",
            &install,
            "update",
        ])
    }

    /// Updates and checks that `path` with content `bytes` is what is installed now.
    pub fn installs(&self, path: &str, bytes: &[u8]) {
        self.updates_to(&format!("installed {path}"), "be installed", path, bytes);
    }

    /// Updates and checks that `path` stays installed.
    pub fn stays_on(&self, path: &str, bytes: &[u8]) {
        self.updates_to(
            &format!("up to date: {path}"),
            "stay installed",
            path,
            bytes,
        );
    }

    /// Updates, expects `said` in the output (`path` is to `what`), and `bytes` installed.
    fn updates_to(&self, said_line: &str, what: &str, path: &str, bytes: &[u8]) {
        let out = self.update();
        let said = stdout(&out);
        assert!(
            out.status.success(),
            "update failed: {}\n{said}",
            stderr(&out)
        );
        assert!(
            said.contains(said_line),
            "expected {path} to {what}: {said}"
        );
        assert_eq!(std::fs::read(self.installed_path()).unwrap(), bytes);
    }
}

/// `bytes` (a JSON document) with spaces after it up to `len`: a forgery served at exactly
/// the length the snapshot lists, so a device refuses it for its signatures and not for its
/// length (which a forger who kept the listed length would pass).
pub fn padded(mut bytes: Vec<u8>, len: u64) -> Vec<u8> {
    let len = usize::try_from(len).unwrap();
    assert!(bytes.len() <= len, "{} bytes, more than {len}", bytes.len());
    bytes.resize(len, b' ');
    bytes
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Version 1 of the root under `base` (`.../{ci|prod}`), as a new device trusts it.
pub fn root_v1(base: &str) -> Vec<u8> {
    let (status, bytes) = http_get(&format!("{base}/metadata/1.root.json"));
    assert_eq!(status, 200, "{base}/metadata/1.root.json");
    bytes
}

pub fn http_get(url: &str) -> (u16, Vec<u8>) {
    let mut resp = ureq::get(url)
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = resp.status().as_u16();
    (status, resp.body_mut().read_to_vec().unwrap())
}

/// A minimal HTTP proxy in front of `upstream` that answers `path` with `body` instead (when
/// given) and passes everything else through (method, body, `Authorization` and
/// `Content-Type`), as a server that alters what it serves would. Returns its base URL.
pub fn proxy(upstream: String, replace: Option<(String, Vec<u8>)>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let Ok(read_half) = stream.try_clone() else {
                continue;
            };
            let mut reader = BufReader::new(read_half);
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            let mut forwarded = Vec::new();
            let mut length = 0;
            loop {
                let mut header = String::new();
                match reader.read_line(&mut header) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if header == "\r\n" || header == "\n" => break,
                    Ok(_) => {}
                }
                let Some((name, value)) = header.split_once(':') else {
                    continue;
                };
                let (name, value) = (name.trim().to_ascii_lowercase(), value.trim().to_owned());
                match name.as_str() {
                    "content-length" => length = value.parse().unwrap_or(0),
                    "authorization" | "content-type" => forwarded.push((name, value)),
                    _ => {}
                }
            }
            let mut body = vec![0; length];
            if std::io::Read::read_exact(&mut reader, &mut body).is_err() {
                continue;
            }
            let mut parts = request.split_whitespace();
            let method = parts.next().unwrap_or("GET").to_owned();
            let path = parts.next().unwrap_or("/").to_owned();
            let (status, body) = match &replace {
                Some((p, b)) if *p == path => (200, b.clone()),
                _ => forward(&method, &format!("{upstream}{path}"), &forwarded, body),
            };
            let head = format!(
                "HTTP/1.1 {status} Proxied\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    format!("http://{addr}")
}

/// `method` on `url` with `headers` and `body`; the status and body of the answer, whatever
/// the status.
fn forward(method: &str, url: &str, headers: &[(String, String)], body: Vec<u8>) -> (u16, Vec<u8>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut request = ureq::http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    // Without a body, none is sent: ureq refuses a body on GET.
    let answer = if body.is_empty() {
        agent.run(request.body(()).unwrap())
    } else {
        agent.run(request.body(body).unwrap())
    };
    let mut resp = answer.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = resp.status().as_u16();
    (status, resp.body_mut().read_to_vec().unwrap())
}

pub fn add_build(server: &Server, f: &Factory, dir: &Path, version: &str) -> Vec<u8> {
    let bytes = format!("app image, version {version}").into_bytes();
    let file = dir.join(format!("app-{version}.img"));
    std::fs::write(&file, &bytes).unwrap();
    ok(&server.tufctl(&[
        "targets",
        "add",
        "--name",
        "app",
        "--version",
        version,
        "--hardware-id",
        "board-a",
        "--file",
        file.to_str().unwrap(),
        "--factory",
        &f.name,
        "--token",
        &f.ci_token,
    ]));
    bytes
}

/// The offline targets key id held by a targets-only tarball.
pub fn offline_targets_id(only: &Path) -> String {
    sole_key_id(only, "targets")
}

/// The id of the one key a tarball holds, a `role` key (named `tufctl-{role}-{keyid}`).
pub fn sole_key_id(file: &Path, role: &str) -> String {
    let c = Credentials::read(&std::fs::read(file).unwrap()).unwrap();
    let names: Vec<String> = c.keys().unwrap().into_iter().map(|k| k.name).collect();
    assert_eq!(names.len(), 1, "{names:?}");
    names[0]
        .strip_prefix(&format!("tufctl-{role}-"))
        .unwrap_or_else(|| panic!("unexpected key name {}", names[0]))
        .to_owned()
}

/// A Factory whose owner has done the page's first steps: credentials downloaded to
/// `creds`, root rotated offline, an offline targets key, and a targets-only copy in `only`.
pub struct Offline<'a> {
    pub server: &'a Server,
    pub f: Factory,
    pub dir: tempfile::TempDir,
    pub creds: std::path::PathBuf,
    pub only: std::path::PathBuf,
    pub api: String,
    pub ci_base: String,
    pub prod_base: String,
    pub offline_id: String,
}

impl<'a> Offline<'a> {
    pub fn setup(server: &'a Server, factory: &str, creds_name: &str) -> Self {
        let f = create_factory(server, factory);
        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join(creds_name);
        let only = dir.path().join("targets-only.tgz");
        let mut x = Offline {
            server,
            api: format!("/ota/repo/{}/api/v1/user_repo", f.name),
            ci_base: format!("{}/repo/{}/ci", server.url, f.name),
            prod_base: format!("{}/repo/{}/prod", server.url, f.name),
            f,
            dir,
            creds,
            only,
            offline_id: String::new(),
        };
        let (c, o) = (x.creds.to_str().unwrap(), x.only.to_str().unwrap());
        ok(&x.ctl(&["keys", "download", &x.f.credentials_url, c]));
        ok(&x.ctl(&["keys", "rotate-root", c]));
        ok(&x.ctl(&["keys", "rotate-targets", c]));
        ok(&x.ctl(&["keys", "copy-targets", c, o]));
        x.offline_id = offline_targets_id(&x.only);
        x
    }

    /// Runs tufctl as the Factory's owner.
    pub fn ctl(&self, args: &[&str]) -> Output {
        self.ctl_env(args, &[])
    }

    /// Runs tufctl as the Factory's owner, with `more` in its environment.
    pub fn ctl_env(&self, args: &[&str], more: &[(&str, &str)]) -> Output {
        self.server
            .tufctl_as(&self.f.token, &self.f.name, args, more)
    }

    /// A production Wave of build `version`, signed with the targets-only file `only`, put
    /// in production.
    pub fn ship_wave(&self, only: &str, name: &str, version: &str) {
        ok(&self.ctl(&["waves", "init", "-k", only, name, version, "production"]));
        ok(&self.ctl(&["waves", "complete", name]));
    }

    /// GET `path` (e.g. `root.json?production=1`) of the Factory's repository API, as JSON.
    pub fn get(&self, path: &str) -> Value {
        get_json(self.server, &self.f, &format!("{}/{path}", self.api))
    }

    /// `tufctl keys tuf updates ARGS` as the Factory's owner.
    pub fn updates(&self, args: &[&str]) -> Output {
        self.ctl(&updates_args(args))
    }
}

/// The arguments of `tufctl keys tuf updates ARGS`.
pub fn updates_args<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["keys", "tuf", "updates"];
    v.extend_from_slice(args);
    v
}

/// The key IDs that `root` (a root.json envelope) lists for `role`.
pub fn role_ids(root: &Value, role: &str) -> Vec<String> {
    root["signed"]["roles"][role]["keyids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// The key IDs of the signatures on `env`.
pub fn signer_ids(env: &Value) -> Vec<String> {
    env["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["keyid"].as_str().unwrap().to_owned())
        .collect()
}
