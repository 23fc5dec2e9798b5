//! HTTPS against a real TLS peer: a private CA (`--ca-file`), client certificates (mTLS,
//! `--client-cert`/`--client-key`) and CONNECT proxies from the environment, for every key
//! type, in whichever crypto build runs the tests.

mod common;

use common::tls::{connect_proxy, https_server, Peer, Pki};
use common::{agent_with_env, python, Client, Outcome, Repo};
use serde_json::json;

/// A repository with target `fw`, its PKI (keys of `key_type`) and an HTTPS server for it.
fn setup(key_type: &str, require_client_cert: bool) -> Option<(Repo, Pki, Peer)> {
    let py = python()?;
    let repo = Repo::new(json!({}))?;
    repo.ops(json!([["add_target", {"path": "fw", "data": "firmware"}], ["publish", {}]]));
    let pki = Pki::new(&py, key_type);
    let server = https_server(&py, repo.dir.path(), &pki, require_client_cert);
    Some((repo, pki, server))
}

/// `tuf-agent ... download fw` from `server` with `tls` flags and `env`.
fn download(client: &Client, server: &Peer, tls: &[&str], env: &[(&str, &str)]) -> Outcome {
    let metadata = format!("{}/metadata/", server.url);
    let targets = format!("{}/targets/", server.url);
    let mut args = vec![
        "--metadata-dir",
        client.metadata.path().to_str().unwrap(),
        "--metadata-url",
        &metadata,
        "--target-name",
        "fw",
        "--target-dir",
        client.targets.path().to_str().unwrap(),
        "--target-base-url",
        &targets,
    ];
    args.extend(tls);
    args.push("download");
    agent_with_env(&args, env)
}

fn mtls_with(key_type: &str) {
    let Some((repo, pki, server)) = setup(key_type, true) else {
        return;
    };
    let client = repo.client();
    let (ca, cert, key) = (
        pki.file_str("ca.pem"),
        pki.file_str("client.pem"),
        pki.file_str("client.key"),
    );
    let tls = [
        "--ca-file",
        &ca,
        "--client-cert",
        &cert,
        "--client-key",
        &key,
    ];
    download(&client, &server, &tls, &[]).success();
    assert_eq!(client.target("fw").unwrap(), b"firmware");
    let lines = server.take_lines();
    assert!(
        !lines.is_empty() && lines.iter().all(|l| l.ends_with(" device-1")),
        "every request showed the client certificate: {lines:?}"
    );
}

#[test]
fn private_ca_and_client_certificate_ecdsa() {
    mtls_with("ecdsa");
}

#[test]
fn private_ca_and_client_certificate_rsa() {
    mtls_with("rsa");
}

#[test]
fn private_ca_and_client_certificate_ed25519() {
    mtls_with("ed25519");
}

#[test]
fn a_server_certificate_of_another_ca_is_refused() {
    let Some((repo, pki, server)) = setup("ecdsa", false) else {
        return;
    };
    let client = repo.client();
    let other = pki.file_str("other-ca.pem");
    download(&client, &server, &["--ca-file", &other], &[])
        .failure("UnknownIssuer")
        .failure("not issued by a CA this device trusts: give the CA with --ca-file");
    // Without --ca-file only the bundled web PKI roots are trusted: refused too.
    download(&client, &server, &[], &[]).failure("UnknownIssuer");
    assert!(client.trusted("timestamp.json").is_none());
    assert!(client.target_files().is_empty());
    assert!(server.take_lines().is_empty(), "no request got through");
    // The right CA works.
    let ca = pki.file_str("ca.pem");
    download(&client, &server, &["--ca-file", &ca], &[]).success();
}

#[test]
fn a_server_that_requires_a_client_certificate_refuses_none_or_another_cas() {
    let Some((repo, pki, server)) = setup("ecdsa", true) else {
        return;
    };
    let client = repo.client();
    let ca = pki.file_str("ca.pem");
    // The handshake is refused; the client sees the server's alert.
    download(&client, &server, &["--ca-file", &ca], &[])
        .failure("CertificateRequired")
        .failure("give --client-cert and --client-key");
    let (cert, key) = (
        pki.file_str("other-client.pem"),
        pki.file_str("other-client.key"),
    );
    let tls = [
        "--ca-file",
        &ca,
        "--client-cert",
        &cert,
        "--client-key",
        &key,
    ];
    download(&client, &server, &tls, &[]).failure("alert");
    assert!(client.trusted("timestamp.json").is_none());
    assert!(client.target_files().is_empty());
    assert!(server.take_lines().is_empty(), "no request got through");
}

#[test]
fn bad_tls_files_are_refused_before_any_request() {
    let Some((repo, pki, server)) = setup("ecdsa", true) else {
        return;
    };
    let client = repo.client();
    let ca = pki.file_str("ca.pem");
    let empty = client.targets.path().join("empty.pem");
    std::fs::write(&empty, "no certificate here\n").unwrap();
    download(
        &client,
        &server,
        &["--ca-file", empty.to_str().unwrap()],
        &[],
    )
    .failure("empty.pem: no certificate");
    download(&client, &server, &["--ca-file", "/nonexistent/ca.pem"], &[])
        .failure("/nonexistent/ca.pem");
    let cert = pki.file_str("client.pem");
    download(
        &client,
        &server,
        &["--ca-file", &ca, "--client-cert", &cert],
        &[],
    )
    .failure("--client-key");
    // A key that is not the certificate's: refused by rustls up front when the crypto
    // provider can tell (aws-lc-rs), by the server's handshake otherwise.
    let other_key = pki.file_str("other-client.key");
    let tls = [
        "--ca-file",
        &ca,
        "--client-cert",
        &cert,
        "--client-key",
        &other_key,
    ];
    let out = download(&client, &server, &tls, &[]);
    if cfg!(feature = "pure-rust") {
        out.failure("tuf-agent:");
    } else {
        out.failure("cannot be used with the certificate");
    }
    assert!(client.trusted("timestamp.json").is_none());
    assert!(server.take_lines().is_empty(), "no request got through");
}

#[test]
fn https_proxy_tunnels_and_no_proxy_bypasses() {
    let Some((repo, pki, server)) = setup("ecdsa", false) else {
        return;
    };
    let py = python().unwrap();
    let proxy = connect_proxy(&py);
    let authority = server.url.trim_start_matches("https://").to_owned();
    let ca = pki.file_str("ca.pem");
    let client = repo.client();
    download(
        &client,
        &server,
        &["--ca-file", &ca],
        &[("HTTPS_PROXY", &proxy.url)],
    )
    .success();
    let tunnels = proxy.take_lines();
    assert!(!tunnels.is_empty(), "the proxy was not used");
    assert!(
        tunnels.iter().all(|l| *l == format!("CONNECT {authority}")),
        "{tunnels:?}"
    );
    assert_eq!(client.target("fw").unwrap(), b"firmware");

    // NO_PROXY names the host: straight to the server. An http proxy variable does not
    // apply to https URLs.
    let client = repo.client();
    let env = [
        ("https_proxy", proxy.url.as_str()),
        ("NO_PROXY", "localhost,127.0.0.1"),
        ("HTTP_PROXY", "http://127.0.0.1:9"),
    ];
    download(&client, &server, &["--ca-file", &ca], &env).success();
    assert!(proxy.take_lines().is_empty());
    assert!(!server.take_lines().is_empty());

    // A proxy that is not there: the download fails, naming the URL.
    let client = repo.client();
    download(
        &client,
        &server,
        &["--ca-file", &ca],
        &[("HTTPS_PROXY", "http://127.0.0.1:9")],
    )
    .failure(&format!("fetching {}/metadata/2.root.json", server.url));
}

#[test]
fn http_proxy_applies_to_http_urls() {
    let Some(py) = python() else { return };
    let Some(repo) = Repo::new(json!({})) else {
        return;
    };
    let proxy = connect_proxy(&py);
    let client = repo.client();
    let url = repo.metadata_url();
    let dir = client.metadata.path().to_str().unwrap().to_owned();
    let args = ["--metadata-dir", &dir, "--metadata-url", &url, "refresh"];
    agent_with_env(&args, &[("http_proxy", &proxy.url)]).success();
    let authority = repo.server.url.trim_start_matches("http://").to_owned();
    let tunnels = proxy.take_lines();
    assert!(!tunnels.is_empty(), "the proxy was not used");
    assert!(
        tunnels.iter().all(|l| *l == format!("CONNECT {authority}")),
        "{tunnels:?}"
    );
    assert_eq!(client.version("timestamp.json"), Some(1));
}
