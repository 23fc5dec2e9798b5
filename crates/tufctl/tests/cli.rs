//! tufctl as a command-line tool, against a real `tufd`: the per-user config file, `login`
//! and token files, `factory create`'s secrets file, the credentials file deciding its
//! Factory, JSON errors and exit codes, a closed pipe, progress bars only on a terminal,
//! completions and manual pages.

mod support;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;
use support::e2e::*;
use support::*;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// tufctl with only `env` (and the server's URL when given), its config in `home`.
fn ctl(home: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut all = vec![("XDG_CONFIG_HOME", home.to_str().unwrap())];
    all.extend_from_slice(env);
    tufctl_env(args, &all)
}

/// `factory create --out` writes the secrets 0600 and prints none; `login` stores the owner
/// token 0600 and writes a config file; later commands need no token; `--token-file` for the
/// CI token; the config file refuses unknown keys and tokens by name.
#[test]
fn login_token_files_and_the_config_file() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("config");
    let admin = dir.path().join("admin-token");
    std::fs::write(&admin, format!("{}\n", server.admin)).unwrap();
    std::fs::set_permissions(&admin, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out_file = dir.path().join("acme.json");
    let api = [("TUFCTL_API", server.url.as_str())];
    let (admin_s, out_s) = (admin.to_str().unwrap(), out_file.to_str().unwrap());

    let said = ok(&ctl(
        &home,
        &[
            "factory",
            "create",
            "acme",
            "--token-file",
            admin_s,
            "--out",
            out_s,
        ],
        &api,
    ));
    assert_eq!(mode(&out_file), 0o600);
    let secrets = json(&std::fs::read_to_string(&out_file).unwrap());
    let owner = secrets["token"].as_str().unwrap();
    let ci = secrets["ci_token"].as_str().unwrap();
    for secret in [owner, ci, secrets["credentials_url"].as_str().unwrap()] {
        assert!(!said.contains(secret), "a secret was printed: {said}");
    }
    // Never over an existing file, and then nothing is created on the server.
    let err = fails(&ctl(
        &home,
        &[
            "factory",
            "create",
            "beta",
            "--token-file",
            admin_s,
            "--out",
            out_s,
        ],
        &api,
    ));
    assert!(err.contains("already exists"), "{err}");
    let err = fails(&server.tufctl(&[
        "get",
        "/ota/repo/beta/api/v1/user_repo/root.json",
        "--token",
        &server.admin,
    ]));
    assert!(err.contains("404"), "{err}");

    // Without a token: a clear refusal saying how to give one.
    let err = fails(&ctl(&home, &["tokens", "list", "--factory", "acme"], &api));
    assert!(
        err.contains("tufctl login") && err.contains("--token-file"),
        "{err}"
    );

    // login from standard input; the token lands 0600, the config gets api and factory.
    let mut child = Command::new(env!("CARGO_BIN_EXE_tufctl"))
        .args(["login", "--factory", "acme"])
        .env_clear()
        .env("XDG_CONFIG_HOME", &home)
        .env("TUFCTL_API", &server.url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{owner}").unwrap();
    let said = ok(&child.wait_with_output().unwrap());
    assert!(
        said.contains("Logged in to Factory acme") && said.contains("owner token"),
        "{said}"
    );
    let logins = home.join("tufctl/logins.toml");
    assert_eq!(mode(&logins), 0o600);
    assert_eq!(mode(&home.join("tufctl")), 0o700);
    let config = std::fs::read_to_string(home.join("tufctl/config.toml")).unwrap();
    assert!(
        config.contains(&server.url) && config.contains("acme"),
        "{config}"
    );
    assert!(
        !config.contains(owner),
        "the token is not in the config file"
    );

    // Later commands need neither server, Factory nor token.
    let listed = json(&ok(&ctl(&home, &["--json", "tokens", "list"], &[])));
    assert!(listed["tokens"].as_array().unwrap().len() >= 2, "{listed}");

    // The CI token from a file: the CI scope, not the stored owner token.
    let ci_file = dir.path().join("ci-token");
    std::fs::write(&ci_file, ci).unwrap();
    std::fs::set_permissions(&ci_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let err = fails(&ctl(
        &home,
        &["tokens", "list", "--token-file", ci_file.to_str().unwrap()],
        &[],
    ));
    assert!(err.contains("403"), "{err}");
    // A token file others can read works, with a warning.
    std::fs::set_permissions(&ci_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = ctl(
        &home,
        &["targets", "list", "--token-file", ci_file.to_str().unwrap()],
        &[],
    );
    ok(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("can be read by other users"));

    // A login file others can read is refused, naming the fix.
    std::fs::set_permissions(&logins, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = fails(&ctl(&home, &["tokens", "list"], &[]));
    assert!(err.contains("chmod 600"), "{err}");
    std::fs::set_permissions(&logins, std::fs::Permissions::from_mode(0o600)).unwrap();

    // Unknown keys and tokens in the config file are refused by name; nothing runs.
    let conf = home.join("tufctl/config.toml");
    std::fs::write(&conf, format!("api = \"{}\"\ntokn = \"x\"\n", server.url)).unwrap();
    let err = fails(&ctl(&home, &["tokens", "list"], &[]));
    assert!(err.contains("tokn") && err.contains("config.toml"), "{err}");
    std::fs::write(
        &conf,
        format!("api = \"{}\"\ntoken = \"{owner}\"\n", server.url),
    )
    .unwrap();
    let err = fails(&ctl(&home, &["tokens", "list"], &[]));
    assert!(
        err.contains("does not belong") && !err.contains(owner),
        "{err}"
    );
}

/// The credentials file decides its Factory: TUFCTL_FACTORY naming another is an error
/// naming both, for a fresh download too (which is saved all the same).
#[test]
fn the_credentials_file_decides_its_factory() {
    let server = Server::start();
    let acme = create_factory(&server, "acme");
    let beta = create_factory(&server, "beta");
    let dir = tempfile::tempdir().unwrap();
    let tgz = dir.path().join("beta.tgz");
    let tgz_s = tgz.to_str().unwrap();
    let err = fails(&server.tufctl_as(
        &acme.token,
        "acme",
        &["keys", "download", &beta.credentials_url, tgz_s],
        &[],
    ));
    assert!(
        err.contains("\"beta\"") && err.contains("\"acme\""),
        "{err}"
    );
    assert!(!err.contains("stale"), "{err}");
    assert!(err.contains("was saved"), "{err}");
    assert!(tgz.exists());
    let err = fails(&server.tufctl_as(&acme.token, "acme", &["keys", "status", tgz_s], &[]));
    assert!(
        err.contains("\"beta\"") && err.contains("\"acme\""),
        "{err}"
    );
    // Without the disagreeing setting, the file's Factory is used.
    let st = json(&ok(&server.tufctl_as(
        &beta.token,
        "beta",
        &["--json", "keys", "status", tgz_s],
        &[],
    )));
    assert_eq!(st["compared_with"], "the server");
    let st = json(&ok(&tufctl_env(
        &["--json", "keys", "status", tgz_s],
        &[("TUFCTL_TOKEN", &beta.token)],
    )));
    assert_eq!(st["holds_active_root_key"], true);
}

/// Exit codes by kind, JSON errors on stderr, usage errors as JSON, and `keys status --check`.
#[test]
fn exit_codes_and_json_errors() {
    let server = Server::start();
    let x = Offline::setup(&server, "acme", "creds.tgz");
    let c = x.creds.to_str().unwrap();
    let code = |o: &std::process::Output| o.status.code().unwrap();

    // Usage: 2, as clap says it, or as JSON.
    let out = x.ctl(&["keys", "frob"]);
    assert_eq!(code(&out), 2);
    let out = x.ctl(&["--json", "keys", "frob"]);
    assert_eq!(code(&out), 2);
    let e = json(&String::from_utf8_lossy(&out.stderr));
    assert_eq!(e["detail"]["kind"], "usage");
    assert!(e["error"].as_str().unwrap().contains("frob"), "{e}");
    assert!(out.stdout.is_empty());

    // Error: 1, each cause once, with what to do next; as JSON with --json.
    let out = x.ctl(&["keys", "status", "/nonexistent/nope.tgz"]);
    assert_eq!(code(&out), 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    assert!(err.contains("next: check the path"), "{err}");
    let out = x.ctl(&["--json", "keys", "status", "/nonexistent/nope.tgz"]);
    let e = json(&String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        (
            e["detail"]["kind"].as_str(),
            e["detail"]["exit_code"].as_u64()
        ),
        (Some("error"), Some(1))
    );
    assert!(e["error"].as_str().unwrap().contains("nope.tgz"));

    // A server error keeps the server's answer in the detail.
    let out = x.ctl(&["--json", "waves", "complete", "no-such-wave"]);
    assert_eq!(code(&out), 1);
    let e = json(&String::from_utf8_lossy(&out.stderr));
    assert_eq!(e["detail"]["server"]["status"], 404);

    // Verification refused: 3 (a wave response signed by a key the production root does not
    // list is refused by the `signatures` check... here: a request from another Factory).
    refused_is_3(&x);

    // Expiring: the roots expire in a year; --within 400 says so with 4, --within 30 with 0.
    let out = x.ctl(&["keys", "status", c, "--check", "--within", "400"]);
    assert_eq!(code(&out), 4, "{}", String::from_utf8_lossy(&out.stderr));
    let out = x.ctl(&["--json", "keys", "status", c, "--check", "--within", "400"]);
    assert_eq!(code(&out), 4);
    let report = json(&String::from_utf8_lossy(&out.stdout));
    assert!(!report["warnings"].as_array().unwrap().is_empty());
    // Standard error stays JSON lines: the warnings, then the error.
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(json)
        .collect();
    assert!(
        lines[0]["diagnostic"]
            .as_str()
            .unwrap()
            .starts_with("warning: "),
        "{lines:?}"
    );
    let e = lines.last().unwrap();
    assert_eq!(e["detail"]["kind"], "expiring");
    let out = x.ctl(&["keys", "status", c, "--check", "--within", "30"]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let out = x.ctl(&["keys", "status", c, "--check", "--within", "0"]);
    assert_eq!(code(&out), 2, "a window of 0 days is a usage error");
}

/// `tufctl sign` of a request whose chain does not verify from the file's root: exit 3,
/// the check named in the JSON error.
fn refused_is_3(x: &Offline) {
    let dir = tempfile::tempdir().unwrap();
    let req = dir.path().join("request.json");
    ok(&x.ctl(&["keys", "tuf", "updates", "init", "-m", "renew"]));
    ok(&x.ctl(&["keys", "tuf", "updates", "export", req.to_str().unwrap()]));
    ok(&x.ctl(&["keys", "tuf", "updates", "cancel"]));
    // Another Factory's file: the request is not for it.
    let other = Offline::setup(x.server, "other", "other.tgz");
    let out = tufctl_env(
        &[
            "--json",
            "sign",
            req.to_str().unwrap(),
            "-k",
            other.creds.to_str().unwrap(),
            "--out",
            dir.path().join("r.json").to_str().unwrap(),
            "--yes",
        ],
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let e = json(String::from_utf8_lossy(&out.stderr).lines().last().unwrap());
    assert_eq!(e["detail"]["kind"], "refused");
    assert_eq!(e["detail"]["check"], "factory");
}

/// `keys show-root | head -1`: the reader goes away, tufctl neither panics nor complains.
#[test]
fn a_closed_pipe_is_not_a_panic() {
    let server = Server::start();
    let f = create_factory(&server, "acme");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tufctl"))
        .args([
            "keys",
            "show-root",
            "--api",
            &server.url,
            "--factory",
            "acme",
            "--token",
            &f.token,
        ])
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away before tufctl writes (it is still asking the server): every
    // write then finds the pipe closed, as with `| head` on a longer output.
    drop(child.stdout.take());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe"),
        "{err}"
    );
    assert!(status.success(), "{status:?}: {err}");
}

/// Progress bars: never on a pipe (nor with --json); on a terminal (`script` gives one), the
/// upload shows one.
#[test]
fn progress_bars_only_on_a_terminal() {
    let server = Server::start();
    let f = create_factory(&server, "acme");
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("big.img");
    std::fs::write(&img, vec![7u8; 3 << 20]).unwrap();
    let add = |version: &str| {
        vec![
            "targets".to_owned(),
            "add".into(),
            "--name".into(),
            "big".into(),
            "--version".into(),
            version.into(),
            "--hardware-id".into(),
            "board-a".into(),
            "--file".into(),
            img.to_str().unwrap().into(),
        ]
    };
    let env = [
        ("TUFCTL_TOKEN", f.ci_token.as_str()),
        ("TUFCTL_FACTORY", "acme"),
    ];
    let args = add("1");
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = server.tufctl_as(&f.ci_token, "acme", &refs, &env);
    ok(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains('\r') && !err.contains('\u{1b}') && !err.contains("uploading"),
        "{err:?}"
    );

    if Command::new("script").arg("--version").output().is_err() {
        skip(
            "script (util-linux) is not installed",
            "progress bar on a terminal",
        );
        return;
    }
    let mut line = format!(
        "{} --api {} --factory acme",
        env!("CARGO_BIN_EXE_tufctl"),
        server.url
    );
    for a in add("2") {
        line.push(' ');
        line.push_str(&a);
    }
    let typescript = dir.path().join("typescript");
    let out = Command::new("script")
        .args(["-qefc", &line, typescript.to_str().unwrap()])
        .env("TUFCTL_TOKEN", &f.ci_token)
        .env("XDG_CONFIG_HOME", dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let seen = std::fs::read_to_string(&typescript).unwrap_or_default();
    assert!(out.status.success(), "{seen}");
    assert!(seen.contains("uploading big.img"), "{seen:?}");
    assert!(seen.contains("Added target big-2"), "{seen:?}");
}

/// Completions for three shells and manual pages, from the clap definitions.
#[test]
fn completions_and_manual_pages() {
    for shell in ["bash", "zsh", "fish"] {
        let script = ok(&tufctl_env(&["completions", shell], &[]));
        assert!(
            script.contains("rotate-root") && script.contains("prune"),
            "{shell}"
        );
    }
    let err = fails(&tufctl_env(&["completions", "tcsh"], &[]));
    assert!(err.contains("tcsh"), "{err}");
    let page = ok(&tufctl_env(&["man"], &[]));
    assert!(
        page.starts_with(".ie") && page.contains(".SH NAME"),
        "{page}"
    );
    let page = ok(&tufctl_env(&["man", "targets", "prune"], &[]));
    assert!(
        page.contains("tufctl\\-targets\\-prune") && page.contains("keep\\-last"),
        "{page}"
    );
    let err = fails(&tufctl_env(&["man", "targets", "frob"], &[]));
    assert!(err.contains("frob"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    ok(&tufctl_env(
        &["man", "--out-dir", dir.path().to_str().unwrap()],
        &[],
    ));
    assert!(dir.path().join("tufctl-waves-show.1").exists());
    let v: Value = json(&ok(&tufctl_env(&["--json", "completions", "fish"], &[])));
    assert_eq!(v["shell"], "fish");
}

/// With --json every command prints exactly one JSON document on standard output (and
/// nothing else there), whatever it is.
#[test]
fn every_command_speaks_json() {
    let server = Server::start();
    let x = Offline::setup(&server, "acme", "creds.tgz");
    let d = x.dir.path();
    let p = |name: &str| d.join(name).to_str().unwrap().to_owned();
    let (c, o) = (x.creds.to_str().unwrap(), x.only.to_str().unwrap());
    std::fs::write(d.join("a.img"), "a").unwrap();
    let (img, sec, req, copy) = (p("a.img"), p("root.sec"), p("request.json"), p("copy.tgz"));
    let commands: Vec<Vec<&str>> = vec![
        vec!["keys", "status", c],
        vec!["keys", "show-root"],
        vec!["keys", "copy-targets", c, &copy],
        vec!["keys", "export-root", c, "--out", &sec],
        vec![
            "targets",
            "add",
            "--name",
            "a",
            "--version",
            "1",
            "--hardware-id",
            "hw",
            "--file",
            &img,
        ],
        vec!["targets", "list"],
        vec!["targets", "show", "a-1"],
        vec!["targets", "tag", "a-1", "--tag", "x"],
        vec!["targets", "prune", "--name", "a", "--dry-run"],
        vec!["waves", "init", "-k", o, "w1", "1", "x"],
        vec!["waves", "list"],
        vec!["waves", "show", "w1"],
        vec!["waves", "complete", "w1"],
        vec!["keys", "tuf", "updates", "init", "-m", "m"],
        vec!["keys", "tuf", "updates", "review"],
        vec!["keys", "tuf", "updates", "export", &req],
        vec!["keys", "tuf", "updates", "cancel"],
        vec!["tokens", "list"],
        vec!["get", "/healthz"],
        vec!["completions", "bash"],
        vec!["man", "waves"],
    ];
    for args in commands {
        let mut all = vec!["--json"];
        all.extend_from_slice(&args);
        let out = ok(&x.ctl(&all));
        let v: Result<Value, _> = serde_json::from_str(out.trim());
        assert!(
            v.is_ok(),
            "{args:?} printed more than one JSON document:\n{out}"
        );
        assert_eq!(out.trim().lines().count(), 1, "{args:?}: {out}");
    }
}
