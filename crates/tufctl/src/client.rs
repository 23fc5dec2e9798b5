//! A small blocking HTTP client for the tufd API (docs/API.md).
//!
//! Secrets never cross the network in clear and never reach another server: a request that
//! carries the token (or a one-time credentials URL, whose path is the secret) is refused over
//! plain `http://` to a host that is not loopback unless `--allow-insecure-http` was given,
//! and the token goes only to the origin (scheme, host, port) of `--api`. Redirects never
//! carry it (ureq drops `Authorization` on every redirect). `--ca-file` replaces the system's
//! CA certificates with the operator's own (a private CA).

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use ureq::http::Uri;
use ureq::tls::{Certificate, RootCerts, TlsConfig};
use ureq::Agent;

/// How tufctl talks to servers, from the global flags; set once at start by [`configure`].
#[derive(Clone, Debug, Default)]
pub struct Transport {
    /// PEM file of the CA certificate(s) to trust instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// Allow secrets over plain http to hosts that are not loopback.
    pub allow_insecure_http: bool,
}

/// Sets the transport every [`Api`] of this process uses. A process-wide setting, because
/// every command that talks to a server must honour it, however it builds its client.
pub fn configure(transport: Transport) -> Result<()> {
    let roots = match &transport.ca_file {
        Some(path) => Some(read_ca_file(path)?),
        None => None,
    };
    // A second call (tests of the settings) keeps the first value; commands call this once.
    let _ = TRANSPORT.set((transport, roots));
    Ok(())
}

static TRANSPORT: OnceLock<(Transport, Option<Vec<Certificate<'static>>>)> = OnceLock::new();

/// A non-2xx answer from the server, with its JSON error if it sent one.
#[derive(Debug)]
pub struct ApiError {
    pub method: &'static str,
    pub url: String,
    pub status: u16,
    pub error: String,
    pub detail: Value,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} answered {}: {}",
            self.method, self.url, self.status, self.error
        )?;
        match &self.detail {
            Value::Null => Ok(()),
            Value::String(s) => write!(f, " ({s})"),
            other => write!(f, " ({other})"),
        }
    }
}

impl std::error::Error for ApiError {}

/// The status of an [`ApiError`] anywhere in an error chain.
pub fn status_of(e: &anyhow::Error) -> Option<u16> {
    e.chain()
        .find_map(|c| c.downcast_ref::<ApiError>())
        .map(|a| a.status)
}

/// A request body: bytes in memory, or a stream of known length (an artifact) read in chunks
/// while it is sent.
pub enum Payload {
    Bytes(Vec<u8>),
    Stream {
        length: u64,
        reader: Box<dyn Read + Send>,
    },
}

pub struct Api {
    base: String,
    token: Option<String>,
    agent: Agent,
}

impl Api {
    pub fn new(base: &str, token: Option<String>) -> Result<Self> {
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(anyhow!(
                "server URL {base:?} must start with http:// or https://"
            ));
        }
        let mut config = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)));
        if let Some((_, Some(roots))) = TRANSPORT.get() {
            let tls = TlsConfig::builder()
                .root_certs(RootCerts::new_with_certs(roots))
                .build();
            config = config.tls_config(tls);
        }
        let agent: Agent = config.build().into();
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            token,
            agent,
        })
    }

    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else if path.starts_with('/') {
            format!("{}{path}", self.base)
        } else {
            format!("{}/{path}", self.base)
        }
    }

    /// GET `path` (or an absolute URL); the body of a 2xx answer.
    pub fn get(&self, path: &str) -> Result<Vec<u8>> {
        self.request("GET", path, None, None)
    }

    /// GET and parse JSON.
    pub fn get_json(&self, path: &str) -> Result<Value> {
        parse_json(&self.get(path)?, path)
    }

    /// GET; `None` on 404.
    pub fn get_opt(&self, path: &str) -> Result<Option<Vec<u8>>> {
        match self.get(path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if status_of(&e) == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn post_json(&self, path: &str, body: &Value) -> Result<Value> {
        let bytes = serde_json::to_vec(body)?;
        let out = self.request(
            "POST",
            path,
            Some(("application/json", Payload::Bytes(bytes))),
            None,
        )?;
        parse_json(&out, path)
    }

    /// POST and return the raw answer body.
    pub fn post_raw(&self, path: &str, content_type: &str, body: Vec<u8>) -> Result<Vec<u8>> {
        self.request(
            "POST",
            path,
            Some((content_type, Payload::Bytes(body))),
            None,
        )
    }

    /// POST a body of `length` bytes read from `reader` while it is sent (never whole in
    /// memory); the raw answer body.
    pub fn post_stream(
        &self,
        path: &str,
        content_type: &str,
        length: u64,
        reader: Box<dyn Read + Send>,
    ) -> Result<Vec<u8>> {
        let body = Payload::Stream { length, reader };
        self.request("POST", path, Some((content_type, body)), None)
    }

    pub fn put_json(&self, path: &str, body: &Value) -> Result<Value> {
        let bytes = serde_json::to_vec(body)?;
        let out = self.request(
            "PUT",
            path,
            Some(("application/json", Payload::Bytes(bytes))),
            None,
        )?;
        parse_json(&out, path)
    }

    pub fn delete_json(&self, path: &str) -> Result<Value> {
        let out = self.request("DELETE", path, None, None)?;
        parse_json(&out, path)
    }

    /// GET without the token (for the one-time credentials URL, whose secret is the URL).
    pub fn get_anonymous(&self, url: &str, limit: u64) -> Result<Vec<u8>> {
        self.request("GET", url, None, Some(limit))
    }

    fn request(
        &self,
        method: &'static str,
        path: &str,
        body: Option<(&str, Payload)>,
        anonymous_limit: Option<u64>,
    ) -> Result<Vec<u8>> {
        let url = self.url(path);
        let auth = if anonymous_limit.is_none() {
            self.token.as_ref().map(|t| format!("Bearer {t}"))
        } else {
            None
        };
        if auth.is_some() {
            same_origin(&self.base, &url)?;
        }
        if auth.is_some() || url.contains("/credentials/") {
            let what = if auth.is_some() {
                "the API token"
            } else {
                "the one-time credentials URL (its path is the secret)"
            };
            refuse_clear_text(&url, what)?;
        }
        let result = match (method, body) {
            ("GET", _) => {
                let mut r = self.agent.get(&url);
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                r.call()
            }
            (_, body) => {
                let mut r = match method {
                    "PUT" => self.agent.put(&url),
                    "DELETE" => self.agent.delete(&url).force_send_body(),
                    _ => self.agent.post(&url),
                };
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                send(r, body)
            }
        };
        let mut resp = result.map_err(|e| {
            anyhow!(
                "cannot reach the server at {}: {e} (is tufd running, and is --api right?)",
                self.base
            )
        })?;
        let status = resp.status().as_u16();
        let limit = anonymous_limit.unwrap_or(MAX_BODY);
        let bytes = read_body(resp.body_mut(), limit)
            .with_context(|| format!("reading the answer of {method} {url}"))?;
        if (200..300).contains(&status) {
            return Ok(bytes);
        }
        let (error, detail) = match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(mut o)) => (
                o.remove("error")
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_else(|| format!("HTTP {status}")),
                o.remove("detail").unwrap_or(Value::Null),
            ),
            _ => (
                format!("HTTP {status}"),
                Value::String(String::from_utf8_lossy(&bytes).chars().take(300).collect()),
            ),
        };
        Err(ApiError {
            method,
            url: redact(&url),
            status,
            error,
            detail,
        }
        .into())
    }
}

/// Sends a request with `body` (none, bytes, or a stream).
fn send(
    r: ureq::RequestBuilder<ureq::typestate::WithBody>,
    body: Option<(&str, Payload)>,
) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
    match body {
        Some((ct, Payload::Bytes(bytes))) => r.header("Content-Type", ct).send(&bytes[..]),
        // An upload may take longer than any fixed limit: no overall timeout, but the server
        // must answer within minutes once the body is sent. `Expect: 100-continue`: a server
        // that refuses the upload (too large, wrong token) says so before a byte of it is
        // sent, and that answer is what the user reads, not a broken pipe.
        Some((ct, Payload::Stream { length, reader })) => r
            .header("Content-Type", ct)
            .header("Content-Length", length.to_string())
            .header("Expect", "100-continue")
            .config()
            .timeout_global(None)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_await_100(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(600)))
            .build()
            .send(ureq::SendBody::from_owned_reader(reader)),
        None => r.send_empty(),
    }
}

/// Reads an answer body of at most `limit` bytes, with a progress bar when it is large.
fn read_body(body: &mut ureq::Body, limit: u64) -> Result<Vec<u8>> {
    let length = body.content_length().filter(|n| *n >= PROGRESS_FROM);
    let Some(length) = length else {
        return Ok(body.with_config().limit(limit).read_to_vec()?);
    };
    let bar = crate::progress::bytes(length, "downloading");
    let mut out = Vec::with_capacity(usize::try_from(length.min(limit)).unwrap_or(0));
    bar.reader(body.with_config().limit(limit).reader())
        .read_to_end(&mut out)?;
    Ok(out)
}

/// Refuses `url` when it is plain http to a host that is not loopback, unless
/// `--allow-insecure-http` was given: `what` would cross the network readable by anyone on it.
fn refuse_clear_text(url: &str, what: &str) -> Result<()> {
    let allowed = TRANSPORT.get().is_some_and(|(t, _)| t.allow_insecure_http);
    let uri = parse(url)?;
    if uri.scheme_str() != Some("http") || allowed {
        return Ok(());
    }
    let host = uri.host().unwrap_or_default();
    if is_loopback(host) {
        return Ok(());
    }
    bail!(
        "refusing to send {what} over plain http to {host} (anyone on the network between could          read it and use it): use https:// (with --ca-file CA.pem for a private CA), or pass          --allow-insecure-http if that network is trusted"
    )
}

/// The token goes only where `--api` points: an absolute URL to another origin (scheme, host
/// or port) is refused rather than sent the token.
fn same_origin(base: &str, url: &str) -> Result<()> {
    let (b, u) = (parse(base)?, parse(url)?);
    let origin = |x: &Uri| {
        let scheme = x.scheme_str().unwrap_or_default().to_ascii_lowercase();
        let default = if scheme == "https" { 443 } else { 80 };
        (
            scheme,
            x.host().unwrap_or_default().to_ascii_lowercase(),
            x.port_u16().unwrap_or(default),
        )
    };
    if origin(&b) != origin(&u) {
        bail!(
            "refusing to send the API token to {}: it goes only to the server of --api ({}). \
             Fetch other servers' URLs without tufctl's token (e.g. with curl)",
            redact(&strip_path(url)),
            strip_path(base)
        );
    }
    Ok(())
}

fn parse(url: &str) -> Result<Uri> {
    url.parse::<Uri>()
        .map_err(|e| anyhow!("{:?} is not a valid URL: {e}", redact(url)))
}

fn strip_path(url: &str) -> String {
    match parse(url) {
        Ok(u) => format!(
            "{}://{}",
            u.scheme_str().unwrap_or_default(),
            u.authority().map(|a| a.as_str()).unwrap_or_default()
        ),
        Err(_) => redact(url),
    }
}

/// `localhost`, 127.0.0.0/8 and ::1, decided from the URL alone (no name lookup).
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

fn read_ca_file(path: &Path) -> Result<Vec<Certificate<'static>>> {
    let pem =
        std::fs::read(path).with_context(|| format!("reading --ca-file {}", path.display()))?;
    let certs = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(Ok(c)),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        })
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("--ca-file {} is not valid PEM", path.display()))?;
    if certs.is_empty() {
        bail!("--ca-file {} holds no PEM certificate", path.display());
    }
    Ok(certs)
}

/// The one-time credentials URL is a secret: never print its last path segment.
fn redact(url: &str) -> String {
    if let Some(i) = url.find("/credentials/") {
        return format!("{}/credentials/<secret>", &url[..i]);
    }
    url.to_owned()
}

fn parse_json(bytes: &[u8], path: &str) -> Result<Value> {
    serde_json::from_slice(bytes).with_context(|| format!("the answer of {path} is not JSON"))
}

const MAX_BODY: u64 = 64 << 20;

/// Answers from this size on get a progress bar (on a terminal).
const PROGRESS_FROM: u64 = 1 << 20;
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for h in [
            "localhost",
            "LOCALHOST",
            "127.0.0.1",
            "127.8.9.10",
            "[::1]",
            "::1",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in [
            "example.com",
            "10.0.0.1",
            "192.0.2.1",
            "[2001:db8::1]",
            "localhost.evil",
        ] {
            assert!(!is_loopback(h), "{h}");
        }
    }

    #[test]
    fn origins() {
        let base = "http://127.0.0.1:8080";
        assert!(same_origin(base, "http://127.0.0.1:8080/ota/x").is_ok());
        assert!(same_origin("https://tuf.example", "https://TUF.example:443/a").is_ok());
        for other in [
            "http://127.0.0.1:8081/ota/x",
            "https://127.0.0.1:8080/ota/x",
            "http://otherhost:8080/ota/x",
            "http://127.0.0.1:8080@otherhost/ota/x",
        ] {
            let e = same_origin(base, other).unwrap_err().to_string();
            assert!(
                e.starts_with("refusing to send the API token"),
                "{other}: {e}"
            );
        }
    }

    #[test]
    fn clear_text_refused_off_loopback() {
        let e = refuse_clear_text("http://192.0.2.1:8080/ota/factories", "the API token")
            .unwrap_err()
            .to_string();
        assert!(e.contains("--allow-insecure-http"), "{e}");
        assert!(refuse_clear_text("http://127.0.0.1:8080/x", "t").is_ok());
        assert!(refuse_clear_text("https://192.0.2.1/x", "t").is_ok());
    }
}
