//! tufd as an operator runs it: the access log (`--log-format text|json`), the `--config`
//! file and its precedence, and a start that fails before it writes anything.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::*;
use serde_json::Value;

/// The JSON log holds exactly one access event per request, with method, route template,
/// status, bytes, duration and Factory, and no token or one-time credentials path anywhere.
#[test]
fn json_access_log_has_one_event_per_request_and_no_secret() {
    let work = tempfile::tempdir().unwrap();
    let log = work.path().join("tufd.log");
    let mut s = Server::start_logged_with(&["--log-format", "json"], "info", &log);
    let f = create_factory(&s, "acme");
    let (once_status, _) = get(&s, &path_of(&f.credentials_url), None);
    assert_eq!(once_status, StatusCode::OK);
    let root_path = format!("/repo/{}/ci/metadata/1.root.json", f.name);
    let (st, root) = get(&s, &root_path, None);
    assert_eq!(st, StatusCode::OK);
    let (st, _) = get(&s, "/no/such/route", Some(&f.owner));
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = get(&s, "/healthz", None);
    assert_eq!(st, StatusCode::OK);
    s.terminate();

    let text = std::fs::read_to_string(&log).unwrap();
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let access: Vec<&Value> = events
        .iter()
        .filter(|e| e["target"] == "tufd::access")
        .collect();
    assert_eq!(access.len(), 5, "one event per request: {access:#?}");
    let one = |route: &str| -> &Value {
        let found: Vec<_> = access.iter().filter(|e| e["route"] == route).collect();
        assert_eq!(found.len(), 1, "{route}: {access:#?}");
        found[0]
    };
    let created = one("/ota/factories");
    assert_eq!(created["method"], "POST");
    assert_eq!(created["status"], 201);
    let download = one("/ota/factories/{f}/credentials/{once}");
    assert_eq!(download["factory"], f.name.as_str());
    assert_eq!(download["status"], 200);
    let meta = one("/repo/{f}/{flavour}/metadata/{file}");
    assert_eq!(meta["method"], "GET");
    assert_eq!(meta["factory"], f.name.as_str());
    assert_eq!(meta["bytes"], root.len() as u64);
    assert!(
        meta["duration_ms"].as_f64().is_some_and(|d| d >= 0.0),
        "{meta}"
    );
    assert_eq!(meta["complete"], true);
    assert_eq!(one("(none)")["status"], 404);
    assert_eq!(one("/healthz")["status"], 200);

    let once = f.credentials_url.rsplit('/').next().unwrap();
    for secret in [s.admin.as_str(), &f.owner, &f.ci, once] {
        assert!(!text.contains(secret), "a secret is in the log:\n{text}");
    }
    assert!(!text.to_ascii_lowercase().contains("bearer"), "{text}");
}

/// Text logs written to a file carry no ANSI colour codes, and the access event is there.
#[test]
fn text_log_to_a_file_has_no_colour() {
    let work = tempfile::tempdir().unwrap();
    let log = work.path().join("tufd.log");
    let mut s = Server::start_logged_with(&["--log-format", "text"], "info", &log);
    assert_eq!(get(&s, "/healthz", None).0, StatusCode::OK);
    s.terminate();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains('\x1b'), "ANSI escape in a log file:\n{text}");
    let access: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("tufd::access"))
        .collect();
    assert_eq!(access.len(), 1, "{text}");
    assert!(access[0].contains("route=\"/healthz\""), "{text}");
    assert!(access[0].contains("status=200"), "{text}");
}

/// On a terminal (`script` gives one) text logs are coloured, unless NO_COLOR is set: the
/// colour follows the terminal, not a fixed choice.
#[test]
fn text_log_on_a_terminal_is_coloured() {
    if Command::new("script").arg("--version").output().is_err() {
        test_skip::skip("script (util-linux) is missing: colour on a terminal unchecked");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (no_color, coloured) in [(false, true), (true, false)] {
        let data = dir.path().join(format!("data-{no_color}"));
        let typescript = dir.path().join(format!("typescript-{no_color}"));
        // Stopped by SIGTERM after a second: it has logged its start by then.
        let line = format!(
            "{}RUST_LOG=info TUFD_ADMIN_TOKEN=test-admin-token-0123456789abcdef timeout 1 {} \
             --data-dir {} --listen 127.0.0.1:0",
            if no_color { "NO_COLOR=1 " } else { "" },
            env!("CARGO_BIN_EXE_tufd"),
            data.display()
        );
        let _ = Command::new("script")
            .args(["-qefc", &line, typescript.to_str().unwrap()])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let seen = std::fs::read_to_string(&typescript).unwrap_or_default();
        assert!(seen.contains("serving"), "{seen}");
        assert_eq!(
            seen.contains('\x1b'),
            coloured,
            "NO_COLOR={no_color}: {seen:?}"
        );
    }
}

/// An unknown log format is refused by clap, naming the values it takes.
#[test]
fn unknown_log_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = tufd(&["--log-format", "xml", "--data-dir", data.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("'xml'") && err.contains("json"), "{err}");
    assert!(!data.exists());
}

/// The config file sets what neither the environment nor the command line sets; the
/// environment wins over the file, the command line over both.
#[test]
fn config_file_then_environment_then_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("from-file-data");
    let config = dir.path().join("tufd.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = {:?}\npublic_url = \"http://file.example\"\n\
             max_connections = 64\nlog_format = \"json\"\n",
            data.to_str().unwrap()
        ),
    )
    .unwrap();
    let c = config.to_str().unwrap();
    let from_file = public_url_of(tufd(&["--config", c]));
    assert_eq!(from_file, "http://file.example");
    assert!(data.join("tufd.sqlite").exists(), "data_dir from the file");
    let mut env = tufd(&["--config", c]);
    env.env("TUFD_PUBLIC_URL", "http://env.example");
    assert_eq!(public_url_of(env), "http://env.example");
    let mut flag = tufd(&["--config", c, "--public-url", "http://flag.example"]);
    flag.env("TUFD_PUBLIC_URL", "http://env.example");
    assert_eq!(public_url_of(flag), "http://flag.example");
    let mut named_by_env = tufd(&[]);
    named_by_env.env("TUFD_CONFIG", c);
    assert_eq!(public_url_of(named_by_env), "http://file.example");
}

/// A key the file may not hold is refused by name, listing the keys it may; a value is
/// checked by its option's parser; nothing is created.
#[test]
fn config_file_refusals_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for (text, says) in [
        ("listne = \"127.0.0.1:0\"\n", "unknown key `listne`"),
        ("data-dir = \"x\"\n", "unknown key `data-dir`"),
        (
            "max_connections = \"many\"\n",
            "`max_connections` = \"many\"",
        ),
        ("log_format = \"xml\"\n", "`log_format` = \"xml\""),
        (
            "listen = [1]\n",
            "`listen` must be a string or an integer, not a array",
        ),
        ("listen = \n", "is not valid TOML"),
    ] {
        let config = dir.path().join("tufd.toml");
        std::fs::write(&config, text).unwrap();
        let out = tufd(&[
            "--config",
            config.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
        ])
        .output()
        .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{text}: {err}");
        assert!(err.contains(says), "{text}: expected {says:?} in {err}");
        if says.starts_with("unknown key") {
            assert!(err.contains("listen, data_dir"), "lists the keys: {err}");
        }
        assert!(!data.exists(), "{text}: created {}", data.display());
    }
}

/// `--help` states the order settings are taken in.
#[test]
fn help_states_the_precedence() {
    let out = tufd(&["--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("the command line, then the TUFD_* environment, then the --config file"),
        "{help}"
    );
}

/// Each check that can fail runs before tufd writes: with the port taken, TLS files missing,
/// a PKCS#11 module that does not load or a bad admin token, the start fails naming the cause
/// and the data directory stays absent (or, when it existed, empty): no server key, no admin
/// token, no database.
#[test]
fn a_start_that_fails_writes_nothing() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().to_string();
    let work = tempfile::tempdir().unwrap();
    let missing = work.path().join("missing.pem");
    let missing = missing.to_str().unwrap();
    let pin = work.path().join("pin");
    std::fs::write(&pin, "1234\n").unwrap();
    let pin = pin.to_str().unwrap();
    let cases: [FailedStart; 4] = [
        (&["--listen", &port], &[], &format!("binding {port}")),
        (
            &["--tls-cert", missing, "--tls-key", missing],
            &[],
            "missing.pem",
        ),
        (
            &[
                "--pkcs11",
                "/nonexistent/libpkcs11.so",
                "--slot",
                "0",
                "--pin-file",
                pin,
            ],
            &[],
            "/nonexistent/libpkcs11.so",
        ),
        (
            &[],
            &[("TUFD_ADMIN_TOKEN", "short")],
            "TUFD_ADMIN_TOKEN must be",
        ),
    ];
    for (i, (args, env, says)) in cases.iter().enumerate() {
        for existing in [false, true] {
            let data = work.path().join(format!("data-{i}-{existing}"));
            if existing {
                std::fs::create_dir(&data).unwrap();
            }
            let mut cmd = tufd(&["--data-dir", data.to_str().unwrap()]);
            if !args.contains(&"--listen") {
                cmd.args(["--listen", "127.0.0.1:0"]);
            }
            cmd.args(*args).envs(env.iter().copied());
            let out = cmd.output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
            assert!(err.contains(says), "{args:?}: expected {says:?} in {err}");
            if existing {
                assert_eq!(entries(&data), Vec::<String>::new(), "{args:?}: {err}");
            } else {
                assert!(!data.exists(), "{args:?} created {}", data.display());
            }
        }
    }
    drop(taken);
}

/// An existing store is only read by a start that fails: with the port taken, or with a
/// server key that is not the store's, every file of the data directory is as it was.
#[test]
fn a_failed_start_on_an_existing_store_changes_no_file() {
    let mut s = Server::sqlite();
    create_factory(&s, "acme");
    s.terminate();
    let data = s.dir.path().to_owned();
    let before = contents(&data);
    assert!(
        before.iter().any(|(name, _)| name == "tufd.sqlite"),
        "{before:?}"
    );
    // A graceful stop checkpoints the write-ahead log (`contents` lists a WAL only when it
    // holds data): one consistent database file.
    assert!(
        !before.iter().any(|(name, _)| name.ends_with("-wal")),
        "{before:?}"
    );
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().to_string();
    let other_key = "ff".repeat(32);
    let cases: [FailedStart; 2] = [
        (&["--listen", &port], &[], "binding"),
        (
            &["--listen", "127.0.0.1:0"],
            &[("TUFD_SERVER_KEY", &other_key)],
            "does not match",
        ),
    ];
    for (args, env, says) in cases {
        let out = tufd(&["--data-dir", data.to_str().unwrap()])
            .args(args)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: expected {says:?} in {err}");
        assert_eq!(
            contents(&data),
            before,
            "{args:?} changed the data directory"
        );
    }
}

/// Every file under `dir` with the SHA-256 of its bytes, sorted by path, without SQLite's
/// `-shm` index and an empty `-wal` (files any reader creates or removes, holding no data).
fn contents(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let name = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                let bytes = std::fs::read(&p).unwrap();
                // SQLite's `-shm` index and an empty `-wal` hold no data: any reader may
                // create or remove them.
                if name.ends_with("-shm") || (name.ends_with("-wal") && bytes.is_empty()) {
                    continue;
                }
                out.push((name, tuf_core::hash::sha256_hex(&bytes)));
            }
        }
    }
    out.sort();
    out
}

/// Arguments, environment, and what the error names.
type FailedStart<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);

/// `tufd` with a clean TUFD_* environment (the tester's own never takes part).
fn tufd(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tufd"));
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("TUFD_") {
            cmd.env_remove(k);
        }
    }
    cmd.args(args)
        .env("TUFD_ADMIN_TOKEN", "test-admin-token-0123456789abcdef")
        .env("RUST_LOG", "warn");
    cmd
}

/// Starts `cmd`, reads the `listening on` line, creates a Factory and returns the base of its
/// credentials URL (the server's public URL); the server is stopped.
fn public_url_of(mut cmd: Command) -> String {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let base = listening(&mut child);
    let r = client()
        .post(format!("{base}/ota/factories"))
        .bearer_auth("test-admin-token-0123456789abcdef")
        .json(&serde_json::json!({"name": format!("f{}", random_hex(4))}))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let url = v["credentials_url"].as_str().unwrap();
    url[..url.find("/ota/").unwrap()].to_owned()
}

fn listening(child: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    if line.is_empty() {
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        panic!("tufd did not start: {err}");
    }
    line.trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned()
}

fn path_of(url: &str) -> String {
    let rest = url.split_once("://").unwrap().1;
    rest[rest.find('/').unwrap()..].to_owned()
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// `tufd rotate-server-key` interrupted before its transaction committed, or after it and
/// before the new key replaced `server-key`: tufd refuses to start while `server-key.new`
/// exists, and running the rotation again finishes it; the store then signs under the new
/// key.
#[test]
fn an_interrupted_server_key_rotation_is_finished_by_running_it_again() {
    let mut s = Server::sqlite();
    let f = create_factory(&s, "acme");
    s.terminate();
    let data = s.dir.path().to_owned();
    let d = data.to_str().unwrap();
    let pending = data.join("server-key.new");
    let work = tempfile::tempdir().unwrap();
    // 1: the new key written, the transaction not run. 2: the transaction committed (the
    // rotation run with --new-key-file), the rename not done.
    for committed in [false, true] {
        let new_key = if committed {
            let file = work.path().join("next-key");
            let f = file.to_str().unwrap();
            let out = tufd(&["rotate-server-key", "--data-dir", d, "--new-key-file", f])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::fs::read_to_string(&file).unwrap()
        } else {
            format!("{}\n", "ab".repeat(32))
        };
        std::fs::write(&pending, &new_key).unwrap();
        let before = contents(&data);
        let out = tufd(&["--data-dir", d, "--listen", "127.0.0.1:0"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains("a server key rotation was interrupted"),
            "{err}"
        );
        assert_eq!(contents(&data), before);
        let out = tufd(&["rotate-server-key", "--data-dir", d])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!pending.exists());
        assert_eq!(
            std::fs::read_to_string(data.join("server-key")).unwrap(),
            new_key
        );
    }
    let dir = std::mem::replace(&mut s.dir, tempfile::tempdir().unwrap());
    drop(s);
    let s = Server::start_in(dir, None, &[]);
    let (status, body) = add_target(&s, &f, "app", "2");
    assert_eq!(status, StatusCode::CREATED, "{body}");
}
