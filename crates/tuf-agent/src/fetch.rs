//! Blocking HTTP downloads with hard size caps.
//!
//! Every read stops one byte past its cap, so an endless or oversized response costs at most
//! that much memory and bandwidth before it is refused.

use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ureq::config::Config;
use ureq::http::Uri;
use ureq::typestate::WithoutBody;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};
use ureq::{Agent, RequestBuilder};

use crate::proxy::Proxies;
use crate::tls::TlsOptions;
use crate::Error;

/// An HTTP client for one update cycle.
pub struct Fetcher {
    agent: Agent,
    proxies: Proxies,
}

/// The outcome of a request whose absence is meaningful (the next root version).
pub enum Fetched {
    /// The file's bytes.
    Found(Vec<u8>),
    /// 403 or 404 (the status): there is no such file.
    Missing(u16),
}

impl Fetcher {
    /// A client trusting and showing what `tls` says, through the proxies the environment
    /// names (see [`crate::proxy`]).
    pub fn new(tls: &TlsOptions) -> Result<Self, Error> {
        let config = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_global(Some(GLOBAL_TIMEOUT))
            // ureq's default buffers are 128 KiB each per connection; metadata requests and
            // their answers' headers are small, and the body is read into the caller's buffer.
            .input_buffer_size(IO_BUFFER)
            .output_buffer_size(IO_BUFFER)
            .max_response_header_size(IO_BUFFER)
            .tls_config(crate::tls::config(tls)?)
            // Chosen per request, by scheme and NO_PROXY.
            .proxy(None)
            .build();
        Ok(Self {
            agent: Agent::with_parts(config, DefaultConnector::new(), AddressResolver::default()),
            proxies: Proxies::from_env()?,
        })
    }

    fn get(&self, url: &str) -> RequestBuilder<WithoutBody> {
        self.agent
            .get(url)
            .config()
            .proxy(self.proxies.for_url(url).cloned())
            .build()
    }

    /// Fetches `url`, at most `limit` bytes; 403 and 404 are [`Fetched::Missing`].
    pub fn fetch_optional(&self, url: &str, limit: u64) -> Result<Fetched, Error> {
        let mut response = self.get(url).call().map_err(|e| http(url, e))?;
        let status = response.status().as_u16();
        if status == 403 || status == 404 {
            return Ok(Fetched::Missing(status));
        }
        if status != 200 {
            return Err(refused(url, status, response.body_mut()));
        }
        read_limited(url, &mut response, limit).map(Fetched::Found)
    }

    /// Fetches `url`, at most `limit` bytes; any status but 200 is an error naming the
    /// server's reason when it gave one.
    pub fn fetch(&self, url: &str, limit: u64) -> Result<Vec<u8>, Error> {
        let mut response = self.get(url).call().map_err(|e| http(url, e))?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(refused(url, status, response.body_mut()));
        }
        read_limited(url, &mut response, limit)
    }

    /// Opens `url` from byte `offset` on: a `Range` request when `offset` is not 0. A server
    /// that honours it answers 206 and the body starts at `offset`; one that ignores it
    /// answers 200 with the whole file, and the body starts at 0 ([`Body::start`] says
    /// which). A range the server cannot serve (416), or other bytes than asked for, is
    /// [`Error::Range`]; any other status [`Error::Status`].
    pub fn open_from(&self, url: &str, offset: u64) -> Result<Body, Error> {
        let mut request = self.get(url);
        // Byte ranges of an encoded body would be ranges of something else.
        request = request.header("accept-encoding", "identity");
        if offset > 0 {
            request = request.header("range", format!("bytes={offset}-"));
        }
        let mut response = request.call().map_err(|e| http(url, e))?;
        let status = response.status().as_u16();
        let start = match status {
            200 => 0,
            206 if offset > 0 => {
                let range = response
                    .headers()
                    .get("content-range")
                    .and_then(|v| v.to_str().ok());
                match range.and_then(content_range_start) {
                    Some(start) if start == offset => start,
                    _ => {
                        return Err(Error::Range {
                            url: url.to_owned(),
                            reason: format!(
                                "asked for bytes {offset}-, got 206 with Content-Range {range:?}"
                            ),
                        })
                    }
                }
            }
            416 => {
                return Err(Error::Range {
                    url: url.to_owned(),
                    reason: format!("416: the file is not longer than {offset} bytes"),
                })
            }
            _ => return Err(refused(url, status, response.body_mut())),
        };
        let reader = response
            .into_body()
            .into_with_config()
            .limit(u64::MAX)
            .reader();
        Ok(Body {
            start,
            url: url.to_owned(),
            reader,
        })
    }
}

/// An open response body (see [`Fetcher::open_from`]).
pub struct Body {
    /// Where in the file the body starts.
    pub start: u64,
    url: String,
    reader: ureq::BodyReader<'static>,
}

impl Body {
    /// Reads the next bytes; 0 is the end of the body.
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        loop {
            match self.reader.read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(http(&self.url, e)),
            }
        }
    }
}

/// The first byte of `Content-Range: bytes FIRST-LAST/LENGTH`.
fn content_range_start(value: &str) -> Option<u64> {
    let range = value.trim().strip_prefix("bytes ")?;
    let (first, _) = range.split_once('-')?;
    first.trim().parse().ok()
}

fn http(url: &str, e: impl std::fmt::Display) -> Error {
    let mut reason = e.to_string();
    if let Some(hint) = tls_hint(&reason) {
        reason.push_str(" (");
        reason.push_str(hint);
        reason.push(')');
    }
    Error::Http {
        url: url.to_owned(),
        reason,
    }
}

/// What a device owner can do about the TLS failures they will meet.
fn tls_hint(reason: &str) -> Option<&'static str> {
    const HINTS: [(&str, &str); 5] = [
        (
            "UnknownIssuer",
            "the server's certificate is not issued by a CA this device trusts: give the CA \
             with --ca-file",
        ),
        (
            "NotValidForName",
            "the server's certificate does not name the host of the URL",
        ),
        (
            "Expired",
            "a certificate has expired, or this device's clock is wrong",
        ),
        (
            "CertificateRequired",
            "the server wants a client certificate: give --client-cert and --client-key",
        ),
        (
            "alert: BadCertificate",
            "the server refused the client certificate: is it issued by the CA the server \
             trusts, and is --client-key its key?",
        ),
    ];
    HINTS
        .iter()
        .find(|(needle, _)| reason.contains(needle))
        .map(|(_, hint)| *hint)
}

/// ureq's resolver looks each host up on a thread of its own when a timeout is set (so that a
/// hung lookup can be abandoned): a thread per request, whose stack and malloc arena cost a
/// device about 250 KiB. A host that is an IP address needs no lookup and cannot hang, so it
/// is answered here, on the caller's thread; names go to ureq's resolver as before.
#[derive(Debug, Default)]
struct AddressResolver {
    names: DefaultResolver,
}

impl Resolver for AddressResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let Some(addr) = ip_address(uri) else {
            return self.names.resolve(uri, config, timeout);
        };
        let mut found = self.empty();
        for addr in config.ip_family().keep_wanted(std::iter::once(addr)) {
            found.push(addr);
        }
        if found.is_empty() {
            // An IPv6 address with IPv4 only (or the reverse): ureq's own refusal.
            return Err(ureq::Error::HostNotFound);
        }
        Ok(found)
    }
}

/// The socket address of `uri` when its host is an IP address (`127.0.0.1`, `[::1]`) and its
/// port is given or implied by `http`/`https`.
fn ip_address(uri: &Uri) -> Option<SocketAddr> {
    let authority = uri.authority()?;
    let host = authority.host();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let ip: IpAddr = host.parse().ok()?;
    let port = match (authority.port_u16(), uri.scheme_str()?) {
        (Some(port), _) => port,
        (None, "http") => 80,
        (None, "https") => 443,
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// ureq's input and output buffers, and the largest response header accepted.
const IO_BUFFER: usize = 32 * 1024;

/// Bounds a stalled server; size caps bound a fast one.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const GLOBAL_TIMEOUT: Duration = Duration::from_secs(600);

/// The body of a 200 answer, at most `limit` bytes. Sized from Content-Length (never beyond
/// the cap) so a large file is read into one allocation instead of a doubling series that
/// briefly holds up to 3x its size.
fn read_limited(
    url: &str,
    response: &mut ureq::http::Response<ureq::Body>,
    limit: u64,
) -> Result<Vec<u8>, Error> {
    let hint = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(0, |n| n.min(limit));
    let mut body = Vec::with_capacity(usize::try_from(hint).unwrap_or(0));
    let reader = response.body_mut().with_config().limit(u64::MAX).reader();
    let read = reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut body)
        .map_err(|e| http(url, e))?;
    if read as u64 > limit {
        return Err(Error::TooLarge {
            what: url.to_owned(),
            limit,
        });
    }
    Ok(body)
}

/// A status other than the one asked for, with the server's reason when its body is our JSON
/// error (`{"error": ...}`): read at most a few KiB, so an endless body costs nothing.
fn refused(url: &str, status: u16, body: &mut ureq::Body) -> Error {
    let mut bytes = Vec::new();
    let reader = body.with_config().limit(u64::MAX).reader();
    let read = reader.take(REASON_CAP).read_to_end(&mut bytes);
    let said = read
        .ok()
        .and_then(|_| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
        .map(|e| e.chars().filter(|c| !c.is_control()).take(200).collect())
        .unwrap_or_default();
    Error::Status {
        url: url.to_owned(),
        status,
        said,
    }
}

/// How much of a refusal's body is read for its reason.
const REASON_CAP: u64 = 4096;

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> Uri {
        s.parse().expect("test URI")
    }

    #[test]
    fn ip_hosts_are_answered_without_a_lookup() {
        let cases = [
            ("http://127.0.0.1:8080/m/", "127.0.0.1:8080"),
            ("http://127.0.0.1/m/", "127.0.0.1:80"),
            ("https://10.1.2.3/m/", "10.1.2.3:443"),
            ("https://[::1]:8443/m/", "[::1]:8443"),
            ("http://[fe80::1]/", "[fe80::1]:80"),
        ];
        for (u, want) in cases {
            let want: SocketAddr = want.parse().expect("test address");
            assert_eq!(ip_address(&uri(u)), Some(want), "{u}");
        }
    }

    #[test]
    fn names_and_unknown_schemes_go_to_the_resolver() {
        for u in [
            "http://localhost:8080/",
            "https://tuf.example.com/m/",
            "http://127.0.0.1.example.com/",
            // No default port known here: ureq's resolver decides.
            "socks5://127.0.0.1/",
        ] {
            assert_eq!(ip_address(&uri(u)), None, "{u}");
        }
    }

    #[test]
    fn an_ip_host_of_the_wrong_family_is_refused_like_a_name() {
        let config = Agent::config_builder()
            .ip_family(ureq::config::IpFamily::Ipv4Only)
            .build();
        let r = AddressResolver::default().resolve(
            &uri("http://[::1]:8080/"),
            &config,
            NextTimeout::default(),
        );
        assert!(matches!(r, Err(ureq::Error::HostNotFound)), "{r:?}");
        let r = AddressResolver::default()
            .resolve(
                &uri("http://127.0.0.1:8080/"),
                &config,
                NextTimeout::default(),
            )
            .expect("an IPv4 address with IPv4 only");
        let want: SocketAddr = "127.0.0.1:8080".parse().expect("address");
        assert_eq!(&r[..], [want]);
    }
}
