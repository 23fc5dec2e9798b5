//! Secrets never cross the network in clear and never reach another server: tufctl over
//! https with a private CA (`--ca-file`), the token refused over plain http off loopback
//! (`--allow-insecure-http` to override), and never sent to a host other than `--api`'s, not
//! even through a redirect. Checks about hosts that are not loopback run tufctl inside
//! `unshare -n`, so nothing leaves the machine.

#[path = "../../tufd/tests/common/pki.rs"]
mod pki;
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;

use support::e2e::{stderr, stdout, Device};
use support::*;

fn tls_server(a: &pki::Authority) -> Server {
    Server::start_with_args(&[
        "--tls-cert",
        a.server_cert.to_str().unwrap(),
        "--tls-key",
        a.server_key.to_str().unwrap(),
    ])
}

/// The fleet over mTLS: tufd serves TLS with a private CA's certificate and requires a client
/// certificate of that CA on the device repositories (`--client-ca`); tufctl (with
/// `--ca-file`) creates a Factory and uploads a build; a `tuf-agent` device with the CA and its
/// client certificate installs it. A device without a client certificate, with one of another
/// CA, or trusting another CA gets nothing.
#[test]
fn a_device_over_mtls_with_a_private_ca() {
    let work = tempfile::tempdir().unwrap();
    let pki = pki::Pki::new(work.path());
    let (main, other) = (&pki.main, &pki.other);
    let server = Server::start_with_args(&[
        "--tls-cert",
        main.server_cert.to_str().unwrap(),
        "--tls-key",
        main.server_key.to_str().unwrap(),
        "--client-ca",
        main.ca.to_str().unwrap(),
    ]);
    let ca = main.ca.to_str().unwrap();
    let with_ca = [("TUFCTL_CA_FILE", ca)];
    let created = json(&ok(&tufctl_env(
        &[
            "--json",
            "factory",
            "create",
            "fleet",
            "--token",
            &server.admin,
        ],
        &[("TUFCTL_API", server.url.as_str()), ("TUFCTL_CA_FILE", ca)],
    )));
    let (owner, ci) = (
        created["token"].as_str().unwrap(),
        created["ci_token"].as_str().unwrap(),
    );
    let image = work.path().join("app-42.img");
    std::fs::write(&image, b"app image, version 42").unwrap();
    let add = [
        "targets",
        "add",
        "--name",
        "app",
        "--version",
        "42",
        "--hardware-id",
        "board-a",
        "--file",
        image.to_str().unwrap(),
    ];
    ok(&server.tufctl_as(ci, "fleet", &add, &with_ca));
    let root = ok(&server.tufctl_as(
        owner,
        "fleet",
        &["get", "/ota/repo/fleet/api/v1/user_repo/1.root.json"],
        &with_ca,
    ));
    let base = format!("{}/repo/fleet/ci", server.url);
    let device = Device::new(root.trim().as_bytes(), &base);
    let targets = device.dir.path().join("targets");
    let installed = device.installed_path();
    let install = format!("sh -c 'cp \"$0\" {}'", installed.to_str().unwrap());
    let update = |tls: &[&str]| {
        let mut args = tls.to_vec();
        args.extend([
            "--target-dir",
            targets.to_str().unwrap(),
            "--target-base-url",
            &device.target_base_url,
            "--hardware-id",
            "board-a",
            "--install-cmd",
            &install,
            "update",
        ]);
        device.agent(&args)
    };
    let path = |p: &std::path::Path| p.to_str().unwrap().to_owned();
    let (client, client_key) = (path(&main.client_cert), path(&main.client_key));
    // Refused first, so nothing is installed yet when they fail.
    let no_cert = update(&["--ca-file", ca]);
    let err = stderr(&no_cert);
    assert!(!no_cert.status.success(), "{err}");
    assert!(
        err.contains("403") && err.contains("client certificate required"),
        "{err}"
    );
    let foreign = update(&[
        "--ca-file",
        ca,
        "--client-cert",
        other.client_cert.to_str().unwrap(),
        "--client-key",
        other.client_key.to_str().unwrap(),
    ]);
    assert!(!foreign.status.success(), "{}", stderr(&foreign));
    let wrong_ca = update(&[
        "--ca-file",
        other.ca.to_str().unwrap(),
        "--client-cert",
        &client,
        "--client-key",
        &client_key,
    ]);
    let err = stderr(&wrong_ca);
    assert!(!wrong_ca.status.success(), "{err}");
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    assert!(!installed.exists(), "a refused device installed something");
    let good = update(&[
        "--ca-file",
        ca,
        "--client-cert",
        &client,
        "--client-key",
        &client_key,
    ]);
    assert!(good.status.success(), "{}", stderr(&good));
    assert!(
        stdout(&good).contains("installed app-42"),
        "{}",
        stdout(&good)
    );
    assert_eq!(std::fs::read(&installed).unwrap(), b"app image, version 42");
}

/// Over https with the CA given by `--ca-file` (or TUFCTL_CA_FILE): create a Factory, fetch
/// the one-time credentials, read the root. Without the CA, or with another CA, nothing is
/// sent: the handshake fails and tufctl says so.
#[test]
fn tufctl_over_https_with_a_private_ca() {
    let work = tempfile::tempdir().unwrap();
    let pki = pki::Pki::new(work.path());
    let server = tls_server(&pki.main);
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let ca = pki.main.ca.to_str().unwrap();
    let out = ok(&server.tufctl(&[
        "--json",
        "factory",
        "create",
        "secure",
        "--token",
        &server.admin,
        "--ca-file",
        ca,
    ]));
    let created = json(&out);
    let url = created["credentials_url"].as_str().unwrap();
    assert!(url.starts_with("https://"), "{url}");
    let tgz = work.path().join("creds.tgz");
    let out = tufctl_env(
        &["keys", "download", url, tgz.to_str().unwrap()],
        &[("TUFCTL_CA_FILE", ca)],
    );
    ok(&out);
    assert!(tgz.exists());
    let owner = created["token"].as_str().unwrap();
    let root_path = "/ota/repo/secure/api/v1/user_repo/root.json";
    let out = server.tufctl_as(owner, "secure", &["get", root_path, "--ca-file", ca], &[]);
    assert!(ok(&out).contains("\"_type\":\"root\""));

    for (label, extra) in [
        ("system CAs", vec![]),
        (
            "another CA",
            vec!["--ca-file", pki.other.ca.to_str().unwrap()],
        ),
    ] {
        let mut args = vec!["get", root_path];
        args.extend(extra);
        let err = fails(&server.tufctl_as(owner, "secure", &args, &[]));
        assert!(err.contains("cannot reach the server"), "{label}: {err}");
        assert!(err.to_lowercase().contains("certificate"), "{label}: {err}");
    }
    let not_pem = work.path().join("not.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    let err = fails(&server.tufctl_as(
        owner,
        "secure",
        &["get", root_path, "--ca-file", not_pem.to_str().unwrap()],
        &[],
    ));
    assert!(err.contains("holds no PEM certificate"), "{err}");
}

/// Off loopback, plain http with a token (or a one-time credentials URL) is refused before
/// any connection; `--allow-insecure-http` lets it try (and, in a network namespace without
/// interfaces, fail to connect).
#[test]
fn no_token_in_clear_text_off_loopback() {
    if !unshare_works() {
        return;
    }
    let api = "http://192.0.2.10:8080";
    let out = isolated(&[
        "--api",
        api,
        "--token",
        "secret-token",
        "factory",
        "create",
        "x",
    ]);
    let err = fails(&out);
    assert!(
        err.contains("refusing to send the API token over plain http to 192.0.2.10"),
        "{err}"
    );
    assert!(err.contains("--allow-insecure-http"), "{err}");
    let tgz = tempfile::tempdir().unwrap();
    let out_file = tgz.path().join("c.tgz");
    let url = format!("{api}/ota/factories/f/credentials/00112233");
    let err = fails(&isolated(&[
        "keys",
        "download",
        &url,
        out_file.to_str().unwrap(),
    ]));
    assert!(
        err.contains("refusing to send the one-time credentials URL"),
        "{err}"
    );
    assert!(!out_file.exists());
    // With the override it is sent: here that means a connection attempt that fails.
    let out = isolated(&[
        "--api",
        api,
        "--token",
        "secret-token",
        "--allow-insecure-http",
        "factory",
        "create",
        "x",
    ]);
    let err = fails(&out);
    assert!(err.contains("cannot reach the server"), "{err}");
    assert!(!err.contains("refusing"), "{err}");
    // Loopback needs no override (nothing listens in the namespace: it fails to connect).
    let err = fails(&isolated(&[
        "--api",
        "http://127.0.0.1:9",
        "--token",
        "t",
        "factory",
        "create",
        "x",
    ]));
    assert!(err.contains("cannot reach the server"), "{err}");
}

/// The token goes only to the origin of `--api`: `tufctl get` of another host's (or port's)
/// URL is refused before any connection, and a redirect from the API server to another
/// origin is followed without the token.
#[test]
fn token_goes_only_to_the_api_host() {
    let server = Server::start();
    let (other, seen) = recorder();
    let err = fails(&server.tufctl_as(
        "secret-token",
        "f",
        &[
            "get",
            &format!("{other}/ota/repo/f/api/v1/user_repo/root.json"),
        ],
        &[],
    ));
    assert!(
        err.contains(&format!("refusing to send the API token to {other}")),
        "{err}"
    );
    assert!(seen.try_recv().is_err(), "the other server was contacted");
    if unshare_works() {
        let err = fails(&isolated(&[
            "--api",
            "http://127.0.0.1:8080",
            "--token",
            "t",
            "get",
            "http://otherhost/ota/factories",
        ]));
        assert!(
            err.contains("refusing to send the API token to http://otherhost"),
            "{err}"
        );
    }
    // A redirect to the other server: followed, but without the token.
    let redirector = redirect_to(&format!("{other}/landing"));
    let _ = server.tufctl_as(
        "secret-token",
        "f",
        &["--api", &redirector, "get", "/start"],
        &[],
    );
    let head = seen
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("the redirect was followed");
    assert!(head.starts_with("GET /landing"), "{head}");
    assert!(!head.to_lowercase().contains("authorization"), "{head}");
    assert!(!head.contains("secret-token"), "{head}");
}

/// tufctl in a network namespace without interfaces and with an empty environment.
fn isolated(args: &[&str]) -> Output {
    Command::new("unshare")
        .arg("-n")
        .arg(env!("CARGO_BIN_EXE_tufctl"))
        .args(args)
        .env_clear()
        .output()
        .unwrap()
}

fn unshare_works() -> bool {
    let works = Command::new("unshare")
        .args(["-n", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !works {
        skip(
            "`unshare -n` must work",
            "checks of hosts that are not loopback (they need `unshare -n`)",
        );
    }
    works
}

/// A server that records the request head of every connection and answers 404.
fn recorder() -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let head = read_head(&mut conn);
            let _ = conn.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
            if tx.send(head).is_err() {
                return;
            }
        }
    });
    (base, rx)
}

/// A server that answers every request with a redirect to `location`.
fn redirect_to(location: &str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let answer = format!(
        "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            read_head(&mut conn);
            let _ = conn.write_all(answer.as_bytes());
        }
    });
    base
}

fn read_head(conn: &mut impl Read) -> String {
    let mut reader = BufReader::new(conn);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            return head;
        }
        head.push_str(&line);
    }
}
