//! The web console in a real browser: headless Chromium driven over WebDriver
//! (`chromedriver`), against a `tufd` whose Factory went through the README walkthrough with
//! the real `tufctl` (credentials, rotate-root, rotate-targets, copy-targets, a CI target, a
//! wave). Signs in through the form, opens every page, checks what it shows, saves a
//! screenshot of each under `target/console-screenshots/`, and checks that an owner label
//! written as HTML stays text (no element made of it, no script run). Needs the Debian
//! packages `chromium` and `chromium-driver` (`scripts/test` installs them).

mod support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use support::e2e::add_build;
use support::*;

const EVIL_OWNER: &str = "<img src=x onerror=alert(1)>";

#[test]
fn console_in_a_browser() {
    let Some((browser, driver)) = browser_tools() else {
        return;
    };
    let server = Server::start();
    let f = walkthrough(&server);
    let d = Driver::start(&driver, &browser);
    let shots = screenshot_dir();
    let url = |path: &str| format!("{}/ui/{path}", server.url);

    // Sign in through the form: the token is typed into a password field and posted.
    d.goto(&url(""));
    assert!(d.url().ends_with("/ui/sign-in"), "{}", d.url());
    let field = d.find("input[name=token]");
    assert_eq!(d.attribute(&field, "type"), "password");
    d.type_into("input[name=token]", &f.token);
    d.click("main form button[type=submit]");
    d.wait_for_url("/ui/f/acme/");
    assert!(!d.url().contains(&f.token), "the token is never in a URL");

    keys_page(&d, &shots);
    for (path, name, expected) in PAGES {
        d.goto(&url(&format!("f/acme/{path}")));
        let text = d.body_text();
        for e in expected {
            assert!(text.contains(e), "{path}: {e:?} missing from:\n{text}");
        }
        if path == "roots" {
            assert!(
                text.contains(EVIL_OWNER),
                "the owner signed root versions:\n{text}"
            );
        }
        assert!(
            d.find_all("img").is_empty(),
            "{path}: an img element was made"
        );
        d.screenshot(&shots, name);
    }
    // The expiry axis is an SVG with one bar per role of both flavours.
    d.goto(&url("f/acme/expiry"));
    assert_eq!(d.find_all("svg.expiry g.bar").len(), 8);
    // Filtering by a hardware ID no target has leaves no wave.
    d.goto(&url("f/acme/waves?hardware_id=board-z"));
    assert!(d.body_text().contains("No wave matches."));

    // Sign out: back to the form, and the pages are closed again.
    d.goto(&url("f/acme/"));
    d.click("form.signout button");
    d.wait_for_url("/ui/sign-in");
    d.goto(&url("f/acme/audit"));
    assert!(d.url().ends_with("/ui/sign-in"), "{}", d.url());
    d.screenshot(&shots, "signed-out");
}

/// The other pages of the Factory: (path, screenshot name, text each must show).
const PAGES: [(&str, &str, &[&str]); 4] = [
    (
        "roots",
        "root-chain",
        &[
            "Version 3",
            "Version 2",
            "Version 1",
            "+ targets key",
            "targets threshold 1 → 2",
        ],
    ),
    (
        "expiry",
        "expiry",
        &["ci timestamp", "prod root", "renewed by the server"],
    ),
    (
        "waves",
        "waves",
        &["Wave w1", "complete", "app-1", "board-a", "CI targets"],
    ),
    (
        "audit",
        "audit-log",
        &[
            "wave.complete",
            "wave.create",
            "root.update.apply",
            "target.add",
        ],
    ),
];

/// Keys and roots: both roots after the walkthrough; the owner label is text, not an
/// element, and no script ran.
fn keys_page(d: &Driver, shots: &Path) {
    let text = d.body_text();
    for expected in [
        "CI root v3",
        "Production root v3",
        EVIL_OWNER,
        "release-eng@example",
        "What a production release needs",
        "No root-update transaction is open.",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
    assert!(d.find_all("img").is_empty(), "an img element was made");
    assert!(d.alert_open().is_none(), "a script ran");
    let owners: Vec<String> = d.find_all("td.owner").iter().map(|e| d.text(e)).collect();
    assert!(owners.iter().any(|o| o == EVIL_OWNER), "{owners:?}");
    d.screenshot(shots, "keys-and-roots");
}

/// The README's first steps, with an owner label that is HTML: credentials, rotate-root,
/// rotate-targets, copy-targets, a CI build and a wave in production.
fn walkthrough(server: &Server) -> Factory {
    let f = create_factory(server, "acme");
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("acme-creds.tgz");
    let only = dir.path().join("targets-only.tgz");
    let (c, o) = (creds.to_str().unwrap(), only.to_str().unwrap());
    let ctl = |args: &[&str]| ok(&server.tufctl_as(&f.token, &f.name, args, &[]));
    ctl(&["keys", "download", &f.credentials_url, c]);
    ctl(&["keys", "rotate-root", "--owner", EVIL_OWNER, c]);
    ctl(&[
        "keys",
        "rotate-targets",
        "--owner",
        "release-eng@example",
        c,
    ]);
    ctl(&["keys", "copy-targets", c, o]);
    add_build(server, &f, dir.path(), "1");
    ctl(&["waves", "init", "-k", o, "w1", "1", "production"]);
    ctl(&["waves", "complete", "w1"]);
    f
}

/// Chromium and chromedriver, or None (the test skips; a failure under CI=true).
fn browser_tools() -> Option<(PathBuf, PathBuf)> {
    let browser = ["/usr/lib/chromium/chromium", "/usr/bin/chromium"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    let driver = Some(PathBuf::from("/usr/bin/chromedriver")).filter(|p| p.exists());
    match (browser, driver) {
        (Some(b), Some(d)) => Some((b, d)),
        _ => {
            skip(
                "chromium and chromedriver (Debian packages chromium, chromium-driver)",
                "the console browser test (chromium or chromedriver missing)",
            );
            None
        }
    }
}

/// `target/console-screenshots/`, next to the built binaries.
fn screenshot_dir() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_tufctl"));
    let target = bin.parent().and_then(Path::parent).unwrap();
    let dir = target.join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A WebDriver session on a fresh headless Chromium profile.
struct Driver {
    child: Child,
    base: String,
    session: String,
    profile: tempfile::TempDir,
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Driver {
    fn start(driver: &Path, browser: &Path) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver.display()));
        let profile = tempfile::tempdir().unwrap();
        let mut d = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            session: String::new(),
            profile,
        };
        d.wait_ready();
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,1400",
            &format!("--user-data-dir={}", d.profile.path().display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": browser.to_str().unwrap(), "args": args},
        }}});
        let (status, v) = d.call("POST", "/session", Some(caps));
        assert_eq!(status, 200, "new session: {v}");
        d.session = v["sessionId"].as_str().unwrap().to_owned();
        d
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = ureq::get(&format!("{}/status", self.base))
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_to_string().ok())
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .is_some_and(|v| v["value"]["ready"] == true);
            if ready {
                return;
            }
            assert!(Instant::now() < deadline, "chromedriver did not get ready");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// One WebDriver command: (HTTP status, the answer's `value`).
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let answer = match method {
            "GET" => agent.get(&url).call(),
            "DELETE" => agent.delete(&url).call(),
            _ => agent
                .post(&url)
                .header("Content-Type", "application/json")
                .send(body.unwrap_or(json!({})).to_string()),
        };
        let mut resp = answer.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .unwrap();
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        (status, v["value"].clone())
    }

    fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, v) = self.call(method, &format!("/session/{}{path}", self.session), body);
        assert_eq!(status, 200, "{method} {path}: {v}");
        v
    }

    fn goto(&self, url: &str) {
        self.ok("POST", "/url", Some(json!({"url": url})));
    }

    fn url(&self) -> String {
        self.ok("GET", "/url", None).as_str().unwrap().to_owned()
    }

    /// Waits until the page's URL ends with `suffix` (a click on a submit button may return
    /// before the navigation it started is done).
    fn wait_for_url(&self, suffix: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let url = self.url();
            if url.ends_with(suffix) {
                return;
            }
            assert!(Instant::now() < deadline, "still at {url}, not …{suffix}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn find(&self, css: &str) -> String {
        let v = self.ok(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        v[ELEMENT].as_str().unwrap().to_owned()
    }

    fn find_all(&self, css: &str) -> Vec<String> {
        let v = self.ok(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        );
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| e[ELEMENT].as_str().unwrap().to_owned())
            .collect()
    }

    fn text(&self, element: &str) -> String {
        let v = self.ok("GET", &format!("/element/{element}/text"), None);
        v.as_str().unwrap().to_owned()
    }

    fn attribute(&self, element: &str, name: &str) -> String {
        let v = self.ok("GET", &format!("/element/{element}/attribute/{name}"), None);
        v.as_str().unwrap_or_default().to_owned()
    }

    fn body_text(&self) -> String {
        self.text(&self.find("body"))
    }

    fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.ok(
            "POST",
            &format!("/element/{e}/value"),
            Some(json!({"text": text})),
        );
    }

    fn click(&self, css: &str) {
        let e = self.find(css);
        self.ok("POST", &format!("/element/{e}/click"), Some(json!({})));
    }

    /// The text of an open alert dialog, if a script opened one.
    fn alert_open(&self) -> Option<String> {
        let (status, v) = self.call(
            "GET",
            &format!("/session/{}/alert/text", self.session),
            None,
        );
        (status == 200).then(|| v.as_str().unwrap_or_default().to_owned())
    }

    fn screenshot(&self, dir: &Path, name: &str) {
        let v = self.ok("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{name}: not a PNG");
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.call("DELETE", &format!("/session/{}", self.session), None);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
