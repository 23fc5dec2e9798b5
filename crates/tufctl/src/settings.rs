//! Where the server, token and Factory come from. A credentials file's `config.json` decides
//! its Factory and server (an explicit `--factory`/`--api` that disagrees is an error naming
//! both); otherwise flags and `TUFCTL_*` variables, then the config file (`config`). The token:
//! `--token-file`, `--token`, the config file's `token_file`, then what `tufctl login` stored
//! for that server and Factory.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Result};
use tuf_credentials::Config;
use zeroize::Zeroizing;

use crate::cli::Global;
use crate::client::Api;
use crate::config;

pub struct Settings {
    pub global: Global,
    file: BTreeMap<String, String>,
}

impl Settings {
    pub fn new(global: Global) -> Result<Self> {
        let file = config::read(global.config.as_deref())?;
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

    /// Settings that read no config file: for `tufctl sign` on the offline machine.
    pub fn offline(global: Global) -> Self {
        Self {
            global,
            file: BTreeMap::new(),
        }
    }

    pub fn json(&self) -> bool {
        self.global.json
    }

    fn pick(&self, flag: &Option<String>, key: &str) -> Option<String> {
        flag.clone()
            .filter(|s| !s.is_empty())
            .or_else(|| self.file.get(key).cloned())
    }

    /// The token for the server and Factory of `creds` (or of the settings).
    pub fn token(&self, creds: Option<&Config>) -> Result<Option<Zeroizing<String>>> {
        if let Some(path) = &self.global.token_file {
            return config::read_token_file(path).map(Some);
        }
        if let Some(t) = self.global.token.clone().filter(|t| !t.is_empty()) {
            return Ok(Some(Zeroizing::new(t)));
        }
        if let Some(path) = self.file.get("token_file") {
            return config::read_token_file(path.as_ref()).map(Some);
        }
        match (self.api_url(creds), self.factory(creds)) {
            (Ok(api), Ok(factory)) => config::stored_token(&api, &factory),
            _ => Ok(None),
        }
    }

    /// The server URL: an explicit `--api`, else a credentials file's, else the config
    /// file's.
    pub fn api_url(&self, creds: Option<&Config>) -> Result<String> {
        self.global
            .api
            .clone()
            .filter(|a| !a.is_empty())
            .or_else(|| creds.map(|c| c.api.clone()))
            .or_else(|| self.file.get("api").cloned())
            .map(|s| s.trim_end_matches('/').to_owned())
            .ok_or_else(|| {
                anyhow!("no server URL: pass --api URL, set TUFCTL_API, or put `api = \"URL\"` in the config file (docs/CLI.md)")
            })
    }

    /// The Factory: a credentials file's, else `--factory`, else the config file.
    pub fn factory(&self, creds: Option<&Config>) -> Result<String> {
        let f = creds
            .map(|c| c.factory.clone())
            .or_else(|| self.pick(&self.global.factory, "factory"))
            .ok_or_else(|| {
                anyhow!("no Factory name: pass --factory NAME, set TUFCTL_FACTORY, or put `factory = \"NAME\"` in the config file (docs/CLI.md)")
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

    /// A credentials file decides its Factory: an explicit `--factory` (flag or
    /// `TUFCTL_FACTORY`) naming another is an error naming both. Its server is the default
    /// too; an explicit `--api` naming another address is used (the same server may be
    /// reached through a proxy or a tunnel), and a note names both. The config file's values
    /// give way silently.
    pub fn check_file_config(&self, cfg: &Config) -> Result<()> {
        if let Some(f) = self.global.factory.as_deref().filter(|f| !f.is_empty()) {
            if f != cfg.factory {
                bail!(
                    "the credentials file is for Factory {:?} (its config.json), but --factory or \
                     TUFCTL_FACTORY says {f:?}: unset TUFCTL_FACTORY (or drop --factory), or use \
                     the credentials file of Factory {f:?}",
                    cfg.factory
                );
            }
        }
        if let Some(a) = self.explicit_api(cfg) {
            errln!(
                "note: using the server {a} (--api or TUFCTL_API) for the credentials file of \
                 Factory {} on {}",
                cfg.factory,
                cfg.api
            );
        }
        Ok(())
    }

    /// An explicit `--api` that names another address than the credentials file's.
    fn explicit_api(&self, cfg: &Config) -> Option<&str> {
        self.global
            .api
            .as_deref()
            .filter(|a| !a.is_empty() && !config::same_server(a, &cfg.api))
    }

    /// A client for the server, with the token if one is configured.
    pub fn api(&self, creds: Option<&Config>) -> Result<Api> {
        let token = self.token(creds)?.map(|t| t.as_str().to_owned());
        Api::new(&self.api_url(creds)?, token)
    }

    /// Like [`Settings::api`], but a token is required for what the user is doing.
    pub fn api_with_token(&self, creds: Option<&Config>, scope: &str) -> Result<Api> {
        let Some(token) = self.token(creds)? else {
            bail!("this command needs {scope} token: store it with `tufctl login`, or pass --token-file FILE (a file holding just the token)");
        };
        Api::new(&self.api_url(creds)?, Some(token.as_str().to_owned()))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(global: Global) -> Settings {
        Settings {
            global,
            file: BTreeMap::new(),
        }
    }

    #[test]
    fn flags_win_over_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("config.toml");
        let token = dir.path().join("token");
        std::fs::write(&token, "t0ken\n").unwrap();
        std::fs::write(
            &conf,
            "# comment\napi = \"http://y/\"\nfactory = \"f\"\ntoken_file = \"token\"\n",
        )
        .unwrap();
        let g = Global {
            config: Some(conf.clone()),
            ..Default::default()
        };
        let s = Settings::new(g).unwrap();
        assert_eq!(s.api_url(None).unwrap(), "http://y");
        assert_eq!(s.factory(None).unwrap(), "f");
        assert_eq!(s.token(None).unwrap().unwrap().as_str(), "t0ken");
        let g = Global {
            config: Some(conf),
            factory: Some("flag".into()),
            token: Some("other".into()),
            ..Default::default()
        };
        let s = Settings::new(g).unwrap();
        assert_eq!(s.factory(None).unwrap(), "flag");
        assert_eq!(s.token(None).unwrap().unwrap().as_str(), "other");
    }

    #[test]
    fn the_credentials_file_decides_its_factory_and_server() {
        let c = Config {
            api: "http://z".into(),
            factory: "beta".into(),
        };
        let s = settings(Global::default());
        assert!(s.api_url(None).is_err());
        assert_eq!(s.api_url(Some(&c)).unwrap(), "http://z");
        assert_eq!(
            s.repo_path(Some(&c)).unwrap(),
            "/ota/repo/beta/api/v1/user_repo"
        );
        s.check_file_config(&c).unwrap();
        // A config file's Factory gives way to the credentials file's.
        let mut s = settings(Global::default());
        s.file.insert("factory".into(), "acme".into());
        s.check_file_config(&c).unwrap();
        assert_eq!(s.factory(Some(&c)).unwrap(), "beta");
        // An explicit one that disagrees is an error naming both.
        let s = settings(Global {
            factory: Some("acme".into()),
            ..Default::default()
        });
        let e = s.check_file_config(&c).unwrap_err().to_string();
        assert!(e.contains("\"acme\"") && e.contains("\"beta\""), "{e}");
        // The config file's server gives way to the file's; an explicit one is used.
        let mut s = settings(Global::default());
        s.file.insert("api".into(), "http://config".into());
        assert_eq!(s.api_url(Some(&c)).unwrap(), "http://z");
        let s = settings(Global {
            api: Some("http://proxy".into()),
            ..Default::default()
        });
        s.check_file_config(&c).unwrap();
        assert_eq!(s.api_url(Some(&c)).unwrap(), "http://proxy");
        let s = settings(Global {
            api: Some("http://Z/".into()),
            factory: Some("beta".into()),
            ..Default::default()
        });
        s.check_file_config(&c).unwrap();
    }
}
