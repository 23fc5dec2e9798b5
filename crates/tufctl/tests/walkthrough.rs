//! The README walkthrough, command by command, against a real `tufd`, with the human output
//! of every `tufctl` command kept as a snapshot (`snapshots/walkthrough__*.snap`): a change
//! of wording is a diff to review (`cargo insta review`, or `INSTA_UPDATE=always` and read
//! the diff). What varies between runs is masked: the server's port, temporary paths, key
//! IDs, hashes and tokens, times, the owner label. Also checks the files the walkthrough
//! leaves: every secret 0600, and no token on a command line.

mod support;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use support::*;

/// The shell of the walkthrough: its directory, config home and environment, and the
/// transcript of what tufctl printed.
struct Shell {
    dir: tempfile::TempDir,
    url: String,
    transcript: String,
}

impl Shell {
    fn config_home(&self) -> PathBuf {
        self.dir.path().join("config")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `tufctl ARGS` (stdin from `input`) as the README's shell does, and records it.
    fn run(&mut self, args: &[&str], input: Option<&str>) -> std::process::Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tufctl"));
        cmd.args(args)
            .current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.config_home())
            .env("TUFCTL_API", &self.url)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        if let Some(text) = input {
            writeln!(child.stdin.take().unwrap(), "{text}").unwrap();
        }
        let out = child.wait_with_output().unwrap();
        self.transcript
            .push_str(&format!("$ tufctl {}\n", args.join(" ")));
        self.transcript
            .push_str(&String::from_utf8_lossy(&out.stdout));
        for line in String::from_utf8_lossy(&out.stderr).lines() {
            self.transcript.push_str(&format!("2> {line}\n"));
        }
        if let Some(code) = out.status.code().filter(|c| *c != 0) {
            self.transcript.push_str(&format!("[exit {code}]\n"));
        }
        self.transcript.push('\n');
        out
    }

    /// Like [`Shell::run`], and it must succeed.
    fn ok(&mut self, args: &[&str]) -> String {
        let out = self.run(args, None);
        ok(&out)
    }

    /// The transcript so far, masked, as one snapshot; starts a new transcript.
    fn snapshot(&mut self, name: &str) {
        let text = std::mem::take(&mut self.transcript)
            .replace(self.dir.path().to_str().unwrap(), "[DIR]")
            .replace(&owner_label(), "[OWNER]");
        insta::with_settings!({
            filters => vec![
                (r"http://127\.0\.0\.1:\d+", "[API]"),
                (r"\b[0-9a-f]{64}\b", "[HEX64]"),
                (r"\b[0-9a-f]{16,63}\b", "[HEX]"),
                (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "[TIME]"),
                (r"in \d+ day\(s\)", "in [N] day(s)"),
            ],
            prepend_module_to_snapshot => true,
            omit_expression => true,
        }, {
            insta::assert_snapshot!(name, text);
        });
    }
}

/// The owner tufctl records for new keys: `$USER@hostname` (here USER is unset).
fn owner_label() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".to_owned());
    format!("unknown@{host}")
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn the_readme_walkthrough() {
    let server = Server::start();
    let mut sh = Shell {
        dir: tempfile::tempdir().unwrap(),
        url: server.url.clone(),
        transcript: String::new(),
    };
    // tufd wrote its admin token 0600 into its data directory; the README reads it there.
    let admin = sh.path("admin-token");
    std::fs::write(&admin, &server.admin).unwrap();
    std::fs::set_permissions(&admin, std::fs::Permissions::from_mode(0o600)).unwrap();

    bootstrap(&mut sh);
    sh.snapshot("1_offline_keys");
    release(&mut sh);
    sh.snapshot("2_first_wave");
    mistakes(&mut sh);
    sh.snapshot("3_mistakes");

    // What the walkthrough leaves on disk: every secret 0600, no plain-text key left.
    for f in [
        "acme.json",
        "example.tgz",
        "targets-only.tgz",
        "config/tufctl/logins.toml",
    ] {
        assert_eq!(mode(&sh.path(f)), 0o600, "{f}");
    }
    assert!(!sh.path("root-key.sec").exists());
}

/// Steps 2 to 8: the Factory, login, the credentials, both rotations, the targets-only copy,
/// the backups.
fn bootstrap(sh: &mut Shell) {
    sh.ok(&[
        "factory",
        "create",
        "acme",
        "--token-file",
        "admin-token",
        "--out",
        "acme.json",
    ]);
    let secrets = json(&std::fs::read_to_string(sh.path("acme.json")).unwrap());
    let field = |k: &str| secrets[k].as_str().unwrap().to_owned();
    let out = sh.run(&["login", "--factory", "acme"], Some(&field("token")));
    ok(&out);
    let ci = sh.path("ci-token");
    std::fs::write(&ci, field("ci_token")).unwrap();
    std::fs::set_permissions(&ci, std::fs::Permissions::from_mode(0o600)).unwrap();
    let url = field("credentials_url");
    sh.ok(&["keys", "download", &url, "example.tgz"]);
    fails(&sh.run(&["keys", "download", &url, "again.tgz"], None));
    sh.ok(&["keys", "rotate-root", "example.tgz"]);
    sh.ok(&["keys", "rotate-targets", "example.tgz"]);
    sh.ok(&["keys", "copy-targets", "example.tgz", "targets-only.tgz"]);
    sh.ok(&["keys", "status", "example.tgz"]);
    sh.ok(&[
        "keys",
        "export-root",
        "example.tgz",
        "--out",
        "root-key.sec",
    ]);
    assert_eq!(mode(&sh.path("root-key.sec")), 0o600);
    std::fs::remove_file(sh.path("root-key.sec")).unwrap();
}

/// Steps 9 to 14: a CI build, the targets, the first Wave, status for cron, pruning.
fn release(sh: &mut Shell) {
    std::fs::write(sh.path("app-42.img"), "app image, version 42\n").unwrap();
    sh.ok(&[
        "targets",
        "add",
        "--token-file",
        "ci-token",
        "--name",
        "app",
        "--version",
        "42",
        "--hardware-id",
        "board-a",
        "--file",
        "app-42.img",
    ]);
    sh.ok(&["targets", "list", "--hardware-id", "board-a"]);
    sh.ok(&["targets", "show", "app-42"]);
    sh.ok(&[
        "waves",
        "init",
        "-k",
        "targets-only.tgz",
        "wave-42",
        "42",
        "production",
    ]);
    sh.ok(&["waves", "list"]);
    sh.ok(&["waves", "show", "wave-42"]);
    sh.ok(&["waves", "complete", "wave-42"]);
    sh.ok(&["targets", "show", "app-42"]);
    sh.ok(&[
        "keys",
        "status",
        "targets-only.tgz",
        "--check",
        "--within",
        "30",
    ]);
    sh.ok(&[
        "targets",
        "prune",
        "--name",
        "app",
        "--keep-last",
        "10",
        "--dry-run",
    ]);
}

/// What a user gets wrong, and what tufctl says then.
fn mistakes(sh: &mut Shell) {
    fails(&sh.run(&["keys", "status", "nope.tgz"], None));
    fails(&sh.run(
        &["keys", "status", "example.tgz", "--factory", "beta"],
        None,
    ));
    fails(&sh.run(&["targets", "prune", "app-41"], None));
    fails(&sh.run(&["targets", "prune", "app-42"], None));
    fails(&sh.run(&["waves", "complete", "wave-42"], None));
    fails(&sh.run(&["tokens", "list", "--token-file", "ci-token"], None));
    fails(&sh.run(
        &[
            "keys",
            "status",
            "targets-only.tgz",
            "--check",
            "--within",
            "400",
        ],
        None,
    ));
}
