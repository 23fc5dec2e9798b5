//! The per-user files: the config file (`$XDG_CONFIG_HOME/tufctl/config.toml`, else
//! `~/.config/tufctl/config.toml`, or `--config FILE`), the tokens `tufctl login` keeps in
//! `logins.toml` beside it (0600), and token files (`--token-file`).
//!
//! The config file is TOML with the keys `api`, `factory`, `token_file` and `ca_file`;
//! any other key is refused by name, and a token itself never belongs there.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The directory of the per-user files, when the environment names one.
pub fn dir() -> Option<PathBuf> {
    let from = |var: &str| {
        std::env::var_os(var)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    // XDG: a relative XDG_CONFIG_HOME is invalid and ignored.
    match from("XDG_CONFIG_HOME").filter(|p| p.is_absolute()) {
        Some(base) => Some(base.join("tufctl")),
        None => from("HOME").map(|h| h.join(".config").join("tufctl")),
    }
}

/// The config file's settings as `key -> value`. An explicit `--config FILE` must exist; the
/// per-user file is optional.
pub fn read(explicit: Option<&Path>) -> Result<BTreeMap<String, String>> {
    let path = match explicit {
        Some(p) => p.to_owned(),
        None => match dir().map(|d| d.join(CONFIG)) {
            Some(p) if p.exists() => p,
            _ => return Ok(BTreeMap::new()),
        },
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading the config file {}", path.display()))?;
    parse(&text, &path)
}

/// The keys a config file may hold.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Server base URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api: Option<String>,
    /// Factory name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub factory: Option<String>,
    /// A file holding the token (relative paths from the config file's directory).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// CA certificate(s) to trust for https.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

fn parse(text: &str, path: &Path) -> Result<BTreeMap<String, String>> {
    let table: toml::Table = toml::from_str(text)
        .map_err(|e| anyhow!("{}: {}", path.display(), e.message()))
        .context("the config file is not valid TOML")?;
    if table.contains_key("token") {
        bail!(
            "{} holds a `token`: a token does not belong in the config file. Store it with \
             `tufctl login`, or put it in a file of its own (mode 0600) and name that file with \
             `token_file = \"PATH\"`",
            path.display()
        );
    }
    let file: ConfigFile = toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| {
            anyhow!(
                "{}: {} (the keys are api, factory, token_file and ca_file)",
                path.display(),
                e.message()
            )
        })?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut out = BTreeMap::new();
    out.extend(file.api.map(|v| ("api".to_owned(), v)));
    out.extend(file.factory.map(|v| ("factory".to_owned(), v)));
    for (key, p) in [("token_file", file.token_file), ("ca_file", file.ca_file)] {
        if let Some(p) = p {
            out.insert(key.to_owned(), base.join(p).to_string_lossy().into_owned());
        }
    }
    Ok(out)
}

/// Creates the per-user config file with `api` and `factory` when there is none yet (mode
/// 0600). Returns the path when it was written.
pub fn create_default(api: &str, factory: &str) -> Result<Option<PathBuf>> {
    let Some(dir) = dir() else { return Ok(None) };
    let path = dir.join(CONFIG);
    if path.exists() {
        return Ok(None);
    }
    let file = ConfigFile {
        api: Some(api.to_owned()),
        factory: Some(factory.to_owned()),
        ..ConfigFile::default()
    };
    let text = format!(
        "# tufctl settings (docs/CLI.md); flags and TUFCTL_* variables override them.\n{}",
        toml::to_string(&file)?
    );
    private_dir(&dir)?;
    tuf_credentials::save_new(&path, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(Some(path))
}

/// Reads a token from a file (`-`: standard input): its one line, trimmed.
pub fn read_token_file(path: &Path) -> Result<Zeroizing<String>> {
    let mut raw = Zeroizing::new(String::new());
    let what = || format!("reading the token file {}", path.display());
    if path == Path::new("-") {
        std::io::stdin()
            .take(MAX_TOKEN_FILE)
            .read_to_string(&mut raw)
            .with_context(what)?;
    } else {
        let f = std::fs::File::open(path).with_context(what)?;
        let meta = f.metadata().with_context(what)?;
        let loose = meta.is_file() && meta.permissions().mode() & 0o077 != 0;
        // Said once per run, however often the token is read.
        if loose && !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
            errln!(
                "warning: the token file {} can be read by other users (mode {:o}); `chmod 600 \
                 {}`",
                path.display(),
                meta.permissions().mode() & 0o777,
                path.display()
            );
        }
        f.take(MAX_TOKEN_FILE)
            .read_to_string(&mut raw)
            .with_context(what)?;
    }
    let token = raw.trim();
    if token.is_empty() || token.contains(char::is_whitespace) {
        bail!(
            "{} must hold one token on one line (it holds {})",
            path.display(),
            if token.is_empty() {
                "nothing"
            } else {
                "more than one word"
            }
        );
    }
    Ok(Zeroizing::new(token.to_owned()))
}

/// One token stored by `tufctl login`: for one Factory on one server.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Login {
    api: String,
    factory: String,
    token: String,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Logins {
    #[serde(default)]
    login: Vec<Login>,
}

/// The token `tufctl login` stored for `factory` on the server `api`.
pub fn stored_token(api: &str, factory: &str) -> Result<Option<Zeroizing<String>>> {
    let Some(path) = logins_path() else {
        return Ok(None);
    };
    let logins = read_logins(&path)?;
    Ok(logins
        .login
        .into_iter()
        .find(|l| same_server(&l.api, api) && l.factory == factory)
        .map(|l| Zeroizing::new(l.token)))
}

/// Stores `token` for `factory` on `api` (replacing an earlier one), in `logins.toml` (0600,
/// written atomically). Returns the file's path.
pub fn store_token(api: &str, factory: &str, token: &str) -> Result<PathBuf> {
    let dir = dir().ok_or_else(|| {
        anyhow!("neither XDG_CONFIG_HOME nor HOME is set: there is nowhere to keep the token")
    })?;
    private_dir(&dir)?;
    let path = dir.join(LOGINS);
    let mut logins = read_logins(&path)?;
    logins
        .login
        .retain(|l| !(same_server(&l.api, api) && l.factory == factory));
    logins.login.push(Login {
        api: api.to_owned(),
        factory: factory.to_owned(),
        token: token.to_owned(),
    });
    let text = Zeroizing::new(format!(
        "# Tokens stored by `tufctl login` (mode 0600). Revoke a token on the server with \
         `tufctl tokens revoke ID`.\n{}",
        toml::to_string(&logins)?
    ));
    tuf_credentials::save_atomic(&path, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

fn logins_path() -> Option<PathBuf> {
    dir().map(|d| d.join(LOGINS))
}

fn read_logins(path: &Path) -> Result<Logins> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => Zeroizing::new(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Logins::default()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let mode = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        bail!(
            "{} can be read by other users (mode {:o}), so its tokens may be known to them: \
             `chmod 600 {}`, and revoke the tokens (`tufctl tokens revoke ID`) if others could \
             have read them",
            path.display(),
            mode & 0o777,
            path.display()
        );
    }
    toml::from_str(&text).map_err(|e| anyhow!("{} is not valid: {}", path.display(), e.message()))
}

/// Two spellings of one server URL (a trailing `/`, upper-case scheme or host).
pub fn same_server(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.trim_end_matches('/').to_ascii_lowercase();
    norm(a) == norm(b)
}

fn private_dir(dir: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))
}

static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

const CONFIG: &str = "config.toml";
const LOGINS: &str = "logins.toml";
const MAX_TOKEN_FILE: u64 = 4096;

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Result<BTreeMap<String, String>> {
        parse(text, Path::new("/etc/x/config.toml"))
    }

    #[test]
    fn known_keys_and_relative_paths() {
        let m = parsed("api = \"http://x\"\nfactory = \"acme\"\ntoken_file = \"t\"\n").unwrap();
        assert_eq!(m["api"], "http://x");
        assert_eq!(m["factory"], "acme");
        assert_eq!(m["token_file"], "/etc/x/t");
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let e = format!("{:#}", parsed("tokn = \"abc\"\n").unwrap_err());
        assert!(e.contains("tokn"), "{e}");
        let e = format!("{:#}", parsed("token = \"abc\"\n").unwrap_err());
        assert!(e.contains("does not belong"), "{e}");
        assert!(!e.contains("abc"), "the token is never repeated: {e}");
        let e = format!("{:#}", parsed("api = 3\n").unwrap_err());
        assert!(e.contains("config.toml"), "{e}");
        assert!(parsed("api = http://x\n").is_err(), "not TOML");
    }

    #[test]
    fn servers_compare_loosely() {
        assert!(same_server("http://X:8080/", "http://x:8080"));
        assert!(!same_server("http://x:8080", "http://x:8081"));
    }
}
