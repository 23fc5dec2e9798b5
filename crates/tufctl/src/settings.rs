//! Where the server, token and Factory come from: flags and environment first, then the
//! config file, then the credentials tarball's `config.json` (for commands that take one).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use tuf_credentials::Config;

use crate::cli::Global;
use crate::client::Api;

pub struct Settings {
    pub global: Global,
    file: BTreeMap<String, String>,
}

impl Settings {
    pub fn new(global: Global) -> Result<Self> {
        let file = match &global.config {
            Some(path) => read_config_file(path)?,
            None => BTreeMap::new(),
        };
        let ca_file = global
            .ca_file
            .clone()
            .or_else(|| file.get("ca_file").map(Into::into));
        crate::client::configure(crate::client::Transport {
            ca_file,
            allow_insecure_http: global.allow_insecure_http,
        })?;
        Ok(Self { global, file })
    }

    pub fn json(&self) -> bool {
        self.global.json
    }

    fn pick(&self, flag: &Option<String>, key: &str) -> Option<String> {
        flag.clone()
            .filter(|s| !s.is_empty())
            .or_else(|| self.file.get(key).cloned())
    }

    pub fn token(&self) -> Option<String> {
        self.pick(&self.global.token, "token")
    }

    /// The server URL: `--api`, the config file, else the tarball's config.json.
    pub fn api_url(&self, creds: Option<&Config>) -> Result<String> {
        self.pick(&self.global.api, "api")
            .or_else(|| creds.map(|c| c.api.clone()))
            .map(|s| s.trim_end_matches('/').to_owned())
            .ok_or_else(|| {
                anyhow!("no server URL: pass --api URL, set TUFCTL_API, or put `api = URL` in the config file")
            })
    }

    pub fn factory(&self, creds: Option<&Config>) -> Result<String> {
        let f = self
            .pick(&self.global.factory, "factory")
            .or_else(|| creds.map(|c| c.factory.clone()))
            .ok_or_else(|| {
                anyhow!("no Factory name: pass --factory NAME, set TUFCTL_FACTORY, or put `factory = NAME` in the config file")
            })?;
        // It goes into URL paths: only the names the server allows.
        let ok = f.len() <= 63
            && f.bytes()
                .next()
                .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && f.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            bail!("{f:?} is not a valid Factory name (lowercase letters, digits and '-')");
        }
        Ok(f)
    }

    /// A client for the server, with the token if one is configured.
    pub fn api(&self, creds: Option<&Config>) -> Result<Api> {
        Api::new(&self.api_url(creds)?, self.token())
    }

    /// Like [`Settings::api`], but a token is required for what the user is doing.
    pub fn api_with_token(&self, creds: Option<&Config>, scope: &str) -> Result<Api> {
        if self.token().is_none() {
            bail!("this command needs {scope} token: pass --token T or set TUFCTL_TOKEN (the token printed by `tufctl factory create`)");
        }
        self.api(creds)
    }

    /// `/ota/repo/<factory>/api/v1/user_repo`
    pub fn repo_path(&self, creds: Option<&Config>) -> Result<String> {
        Ok(format!(
            "/ota/repo/{}/api/v1/user_repo",
            self.factory(creds)?
        ))
    }
}

/// `$USER@hostname`: the owner recorded for a new key unless `--owner` says otherwise.
pub fn default_owner() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".to_owned());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{user}@{host}")
}

/// One paragraph from an error chain: "what we were doing: why: the root cause".
pub fn paragraph(e: &anyhow::Error) -> String {
    format!("{e:#}").replace('\n', " ")
}

/// Reads a JSON object or `key = value` lines (`#` comments allowed).
fn read_config_file(path: &Path) -> Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    let trimmed = text.trim_start();
    let mut out = BTreeMap::new();
    if trimmed.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(trimmed)
            .with_context(|| format!("config file {} is not valid JSON", path.display()))?;
        let obj = v
            .as_object()
            .ok_or_else(|| anyhow!("config file {} is not a JSON object", path.display()))?;
        for (k, v) in obj {
            if let Some(s) = v.as_str() {
                out.insert(k.clone(), s.to_owned());
            }
        }
        return Ok(out);
    }
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line.split_once('=').ok_or_else(|| {
            anyhow!(
                "config file {} line {}: expected `key = value`",
                path.display(),
                i + 1
            )
        })?;
        let v = v.trim().trim_matches('"');
        out.insert(k.trim().to_owned(), v.to_owned());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_file_forms() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.json");
        std::fs::write(&a, r#"{"api": "http://x", "factory": "f"}"#).unwrap();
        let b = dir.path().join("b.conf");
        std::fs::write(&b, "# comment\napi = http://y/\ntoken = \"t\"\n").unwrap();
        let ga = Global {
            config: Some(a),
            ..Default::default()
        };
        let sa = Settings::new(ga).unwrap();
        assert_eq!(sa.api_url(None).unwrap(), "http://x");
        assert_eq!(sa.factory(None).unwrap(), "f");
        let gb = Global {
            config: Some(b),
            factory: Some("flag".into()),
            ..Default::default()
        };
        let sb = Settings::new(gb).unwrap();
        assert_eq!(sb.api_url(None).unwrap(), "http://y");
        assert_eq!(sb.token().as_deref(), Some("t"));
        assert_eq!(sb.factory(None).unwrap(), "flag");
    }

    #[test]
    fn tarball_config_is_the_fallback() {
        let s = Settings::new(Global::default()).unwrap();
        assert!(s.api_url(None).is_err());
        let c = Config {
            api: "http://z".into(),
            factory: "acme".into(),
        };
        assert_eq!(s.api_url(Some(&c)).unwrap(), "http://z");
        assert_eq!(
            s.repo_path(Some(&c)).unwrap(),
            "/ota/repo/acme/api/v1/user_repo"
        );
    }
}
