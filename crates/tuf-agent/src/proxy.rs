//! Proxies from the standard environment variables: `HTTPS_PROXY`/`https_proxy` for https
//! URLs, `HTTP_PROXY`/`http_proxy` for http URLs, `ALL_PROXY`/`all_proxy` for either when
//! the scheme's own is unset; `NO_PROXY`/`no_proxy` lists hosts reached directly. Proxies are
//! HTTP proxies (`http://[user:password@]host:port`) that tunnel with CONNECT.

use ureq::Proxy;

use crate::Error;

/// The proxies of one process.
#[derive(Clone, Debug, Default)]
pub struct Proxies {
    http: Option<Proxy>,
    https: Option<Proxy>,
    no_proxy: Vec<String>,
}

impl Proxies {
    /// From the environment; a variable that is set but is no proxy URL is an error naming it.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// From `lookup` (an environment).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let first = |names: &[&'static str]| -> Option<(&'static str, String)> {
            names
                .iter()
                .find_map(|&n| lookup(n).filter(|v| !v.trim().is_empty()).map(|v| (n, v)))
        };
        let all = ["ALL_PROXY", "all_proxy"];
        let parse = |found: Option<(&str, String)>| -> Result<Option<Proxy>, Error> {
            let Some((name, value)) = found.or_else(|| first(&all)) else {
                return Ok(None);
            };
            Proxy::new(value.trim())
                .map(Some)
                .map_err(|e| Error::Config(format!("{name}={value:?} is not a proxy URL: {e}")))
        };
        let no_proxy = first(&["NO_PROXY", "no_proxy"])
            .map(|(_, v)| {
                v.split(',')
                    .map(|e| e.trim().to_ascii_lowercase())
                    .filter(|e| !e.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            https: parse(first(&["HTTPS_PROXY", "https_proxy"]))?,
            http: parse(first(&["http_proxy", "HTTP_PROXY"]))?,
            no_proxy,
        })
    }

    /// The proxy for `url`, or `None` to connect directly.
    pub fn for_url(&self, url: &str) -> Option<&Proxy> {
        let (scheme, rest) = url.split_once("://")?;
        let proxy = match scheme.to_ascii_lowercase().as_str() {
            "https" => self.https.as_ref()?,
            "http" => self.http.as_ref()?,
            _ => return None,
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
        let (host, port) = split_host_port(authority);
        let bypass = self
            .no_proxy
            .iter()
            .any(|e| no_proxy_matches(e, &host, port));
        (!bypass).then_some(proxy)
    }
}

/// Host (lower case, without IPv6 brackets) and port of an authority.
fn split_host_port(authority: &str) -> (String, Option<&str>) {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']').unwrap_or((rest, ""));
        let port = after.strip_prefix(':');
        return (host.to_ascii_lowercase(), port);
    }
    if authority.matches(':').count() > 1 {
        // An IPv6 address without brackets (as NO_PROXY lists them): no port.
        return (authority.to_ascii_lowercase(), None);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => (host.to_ascii_lowercase(), Some(port)),
        None => (authority.to_ascii_lowercase(), None),
    }
}

/// curl's rules: `*` matches every host; `example.com` and `.example.com` match that host and
/// its subdomains; an entry with `:port` matches that port only.
fn no_proxy_matches(entry: &str, host: &str, port: Option<&str>) -> bool {
    if entry == "*" {
        return true;
    }
    let (entry_host, entry_port) = split_host_port(entry);
    if entry_port.is_some() && entry_port != port {
        return false;
    }
    let domain = entry_host.trim_start_matches('.');
    !domain.is_empty() && (host == domain || host.ends_with(&format!(".{domain}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(env: &[(&str, &str)]) -> Result<Proxies, Error> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Proxies::from_lookup(|name| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    fn host_of(p: Option<&Proxy>) -> Option<String> {
        p.map(|p| format!("{}:{}", p.host(), p.port()))
    }

    #[test]
    fn each_scheme_has_its_variable_and_all_proxy_fills_in() {
        let p = proxies(&[
            ("HTTPS_PROXY", "http://secure:3128"),
            ("http_proxy", "http://plain:8080"),
        ])
        .unwrap();
        assert_eq!(
            host_of(p.for_url("https://h/x")).as_deref(),
            Some("secure:3128")
        );
        assert_eq!(
            host_of(p.for_url("http://h/x")).as_deref(),
            Some("plain:8080")
        );
        let p = proxies(&[("ALL_PROXY", "http://all:1"), ("https_proxy", "http://s:2")]).unwrap();
        assert_eq!(host_of(p.for_url("https://h/")).as_deref(), Some("s:2"));
        assert_eq!(host_of(p.for_url("http://h/")).as_deref(), Some("all:1"));
        assert!(proxies(&[]).unwrap().for_url("https://h/").is_none());
    }

    #[test]
    fn no_proxy_follows_curl() {
        let p = proxies(&[
            ("HTTPS_PROXY", "http://proxy:3128"),
            ("NO_PROXY", "localhost, .internal,example.com,10.0.0.1:8443"),
        ])
        .unwrap();
        for direct in [
            "https://localhost/x",
            "https://a.internal/",
            "https://internal/",
            "https://example.com:443/",
            "https://cdn.Example.com/",
            "https://user@example.com/",
            "https://10.0.0.1:8443/",
        ] {
            assert!(p.for_url(direct).is_none(), "{direct}");
        }
        for proxied in [
            "https://notexample.com/",
            "https://example.com.evil/",
            "https://10.0.0.1:9443/",
            "https://127.0.0.1/",
        ] {
            assert!(p.for_url(proxied).is_some(), "{proxied}");
        }
        let all = proxies(&[("HTTPS_PROXY", "http://p:1"), ("no_proxy", "*")]).unwrap();
        assert!(all.for_url("https://anything/").is_none());
        let v6 = proxies(&[("HTTPS_PROXY", "http://p:1"), ("NO_PROXY", "::1")]).unwrap();
        assert!(v6.for_url("https://[::1]:8443/").is_none());
    }

    #[test]
    fn a_bad_proxy_url_names_the_variable() {
        let err = proxies(&[("HTTPS_PROXY", "http://[bad")]).unwrap_err();
        assert!(err.to_string().contains("HTTPS_PROXY"), "{err}");
    }
}
