//! Factory creation, `get`, and the simple key commands: download, copy-targets, show-root.

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use tuf_core::{Role, Root, Signed};
use tuf_credentials::Credentials;

use tuf_ceremony::keyring;

use crate::client::{status_of, Api};
use crate::creds::CredsFile;
use crate::settings::Settings;

/// `factory create NAME [--out FILE]`: the tokens and the one-time URL go into a new 0600
/// file, never on the screen. With `--json` the server's answer is printed (and written to
/// `--out` when given).
pub fn factory_create(s: &Settings, name: &str, out: Option<&Path>) -> Result<()> {
    let default = std::path::PathBuf::from(format!("{name}.json"));
    let target = match (out, s.json()) {
        (Some(p), _) => Some(p),
        (None, true) => None,
        (None, false) => Some(default.as_path()),
    };
    // Checked first: the answer holds secrets the server shows only once.
    if let Some(p) = target.filter(|p| p.symlink_metadata().is_ok()) {
        bail!(
            "{} already exists; refusing to overwrite it (nothing was created). Choose another \
             file with --out FILE",
            p.display()
        );
    }
    let api = s.api_with_token(None, "an admin")?;
    let body = api
        .post_raw(
            "/ota/factories",
            "application/json",
            serde_json::to_vec(&json!({ "name": name }))?,
        )
        .map_err(|e| match status_of(&e) {
            Some(409) => e.context(format!("a Factory named {name:?} already exists; pick another name")),
            Some(401 | 403) => e.context("the token is not an admin token (tufd writes the admin token to <data-dir>/admin-token)"),
            _ => e.context(format!("creating Factory {name:?}")),
        })?;
    let v: Value = serde_json::from_slice(&body).context("the server's answer is not JSON")?;
    if s.json() {
        crate::output::json(&v);
    }
    if let Some(p) = target {
        save_answer(p, &body, s.json())?;
    }
    if s.json() {
        return Ok(());
    }
    let field = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("?").to_owned();
    let file = target.unwrap_or(&default).display().to_string();
    outln!("Created Factory {}.", field("factory"));
    outln!(
        "Its owner token, CI token and one-time credentials URL are in {file} (mode 0600; \
         nothing secret was printed). Next:"
    );
    outln!(
        "  jq -r .token {file} | tufctl login --factory {}",
        field("factory")
    );
    outln!(
        "  tufctl keys download \"$(jq -r .credentials_url {file})\" {}.tgz   # works ONCE",
        field("factory")
    );
    Ok(())
}

/// Writes the answer of `factory create` (0600, never overwriting). When that fails the
/// answer is printed instead, so its secrets are not lost.
fn save_answer(path: &Path, body: &[u8], json: bool) -> Result<()> {
    let Err(e) = tuf_credentials::save_new(path, body) else {
        return Ok(());
    };
    if !json {
        crate::output::write_bytes(body);
        outln!();
    }
    Err(anyhow!(e).context(format!(
        "the Factory was created, but its tokens could not be written to {}; the server's \
         answer was printed instead: store it safely now (the server shows it only once)",
        path.display()
    )))
}

pub fn get(s: &Settings, path: &str) -> Result<()> {
    let api = s.api(None)?;
    let body = api.get(path).with_context(|| format!("GET {path}"))?;
    crate::output::write_bytes(&body);
    if !body.ends_with(b"\n") {
        outln!();
    }
    Ok(())
}

pub fn show_root(s: &Settings, prod: bool) -> Result<()> {
    let api = s.api(None)?;
    let repo = s.repo_path(None)?;
    let q = if prod { "?production=1" } else { "" };
    let body = api.get(&format!("{repo}/root.json{q}"))?;
    if s.json() {
        crate::output::write_bytes(&body);
        outln!();
        return Ok(());
    }
    let v: Value = serde_json::from_slice(&body).context("root.json is not JSON")?;
    outln!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}

/// Fetches the one-time credentials, saves them (0600, never overwriting), then checks them.
pub fn download(s: &Settings, url: &str, out: &Path, encrypt: bool) -> Result<()> {
    // Check first: the download works only once, so never fetch into a path we cannot use.
    if out.symlink_metadata().is_ok() {
        bail!(
            "{} already exists; refusing to overwrite it (the credentials can be downloaded only \
             once, so nothing was fetched). Choose another output file",
            out.display()
        );
    }
    let base = url
        .find("/ota/")
        .map(|i| &url[..i])
        .ok_or_else(|| anyhow!("{url:?} does not look like a credentials URL (…/ota/factories/<f>/credentials/<secret>)"))?;
    // Ask for the passphrase before fetching: the download works only once.
    let pass = if encrypt {
        Some(crate::creds::new_passphrase(s)?)
    } else {
        None
    };
    let bytes = fetch_once(base, url)?;
    // Save before checking: this is the only copy there will ever be. With --encrypt only the
    // encrypted form is ever written.
    let on_disk = match &pass {
        Some(p) => zeroize::Zeroizing::new(
            tuf_credentials::encrypt_bytes(&bytes, p)
                .context("encrypting the downloaded credentials (nothing was written)")?,
        ),
        None => bytes.clone(),
    };
    tuf_credentials::save_new(out, &on_disk)
        .with_context(|| format!("saving the downloaded credentials to {}", out.display()))?;
    drop(on_disk);
    let creds = Credentials::read(&bytes).with_context(|| {
        format!(
            "the downloaded file was saved to {} but is not a complete credentials tarball",
            out.display()
        )
    })?;
    let file = CredsFile::in_memory(s, out, creds);
    let mut checked = vec![format!("{} opens", out.display())];
    if pass.is_some() {
        checked.push("it was written encrypted with the passphrase (age format)".to_owned());
    }
    checked.extend(check_download(s, &file)?);
    if s.json() {
        outln!("{}", json!({"file": out, "checked": checked}));
    } else {
        outln!("Saved the credentials to {} (mode 0600).", out.display());
        for c in checked {
            outln!("  - {c}");
        }
        outln!(
            "Next: `tufctl keys rotate-root {}`, then back the file up.",
            out.display()
        );
    }
    Ok(())
}

/// The one-time download itself, without the token: the URL is the secret.
fn fetch_once(base: &str, url: &str) -> Result<zeroize::Zeroizing<Vec<u8>>> {
    let bytes = Api::new(base, None)?
        .get_anonymous(url, MAX_DOWNLOAD)
        .map_err(|e| match status_of(&e) {
            Some(410) => e.context(
                "these credentials were already downloaded (the URL works only once); use the \
                 file from the first download, or its backup",
            ),
            _ => e.context("downloading the credentials"),
        })?;
    Ok(zeroize::Zeroizing::new(bytes))
}

/// What a saved download is checked for: its root, a private root key, and (when the server
/// can be asked) that key in the Factory's current root.
fn check_download(s: &Settings, file: &CredsFile) -> Result<Vec<String>> {
    let out = &file.path;
    let creds = &file.creds;
    let root_bytes = creds.root_json().ok_or_else(|| {
        anyhow!(
            "{} has no roles/root.json: the download is incomplete",
            out.display()
        )
    })?;
    let root: Signed<Root> = Signed::from_slice(root_bytes)
        .with_context(|| format!("roles/root.json in {} is not a valid root", out.display()))?;
    let mut checked = vec!["it has config.json and roles/root.json".to_owned()];
    let signers = keyring::role_signers(file, &root.signed, Role::Root)?;
    let Some(first) = signers.first() else {
        bail!(
            "{} holds no private key of the root role listed in its roles/root.json; the file \
             was saved but cannot rotate the root",
            out.display()
        );
    };
    checked.push(format!(
        "it holds the private key of root key {}",
        first.public_key().key_id()
    ));
    let cfg = creds.config().clone();
    s.check_file_config(&cfg).with_context(|| {
        format!(
            "{} was saved, but it was not compared with the server",
            out.display()
        )
    })?;
    let server = s.api(Some(&cfg)).and_then(|api| {
        let repo = s.repo_path(Some(&cfg))?;
        if !api.has_token() {
            bail!("no token given");
        }
        Ok(Signed::<Root>::from_slice(
            &api.get(&format!("{repo}/root.json"))?,
        )?)
    });
    match server {
        Ok(current) => {
            if keyring::role_signers(file, &current.signed, Role::Root)?.is_empty() {
                bail!(
                    "{} was saved, but its root key is not in the Factory's current root \
                     (version {}): these credentials are stale",
                    out.display(),
                    current.signed.version
                );
            }
            checked.push(format!(
                "its root key is in the Factory's current root (version {})",
                current.signed.version
            ));
        }
        Err(e) => checked.push(format!(
            "not compared with the server's current root ({})",
            crate::outcome::paragraph(&e)
        )),
    }
    Ok(checked)
}

/// Writes a tarball with only the active offline targets key(s) and config.json.
pub fn copy_targets(s: &Settings, creds_path: &Path, out: &Path) -> Result<()> {
    if out.symlink_metadata().is_ok() {
        bail!("{} already exists; refusing to overwrite it", out.display());
    }
    let file = CredsFile::open(s, creds_path)?;
    let cfg = file.creds.config().clone();
    let server_root = s.api(Some(&cfg)).and_then(|api| {
        let repo = s.repo_path(Some(&cfg))?;
        Ok(Signed::<Root>::from_slice(
            &api.get(&format!("{repo}/root.json?production=1"))?,
        )?)
    });
    let root = match server_root {
        Ok(r) => r,
        Err(e) => {
            let e = crate::outcome::paragraph(&e);
            errln!(
                "note: could not fetch the production root from the server ({e:#}); using \
                 roles/root.json stored in {} to decide which targets keys are active",
                creds_path.display()
            );
            file.stored_root()?.ok_or_else(|| {
                anyhow!(
                    "{} has no roles/root.json and the server is unreachable",
                    creds_path.display()
                )
            })?
        }
    };
    let root = &root.signed;
    let root_keys = root.role_keys(Role::Root);
    let mut names = Vec::new();
    for k in file.creds.keys()? {
        // A token key is copied as its reference: the holder of the copy needs the token too.
        if !k.can_sign() {
            continue;
        }
        let in_targets = root
            .role_keys(Role::Targets)
            .values()
            .any(|p| tuf_credentials::same_key(p, &k.public));
        let in_root = root_keys
            .values()
            .any(|p| tuf_credentials::same_key(p, &k.public));
        if in_targets && !in_root {
            names.push(k.name);
        }
    }
    if names.is_empty() {
        bail!(
            "{} holds no active offline targets key; create one with `tufctl keys rotate-targets {}`",
            creds_path.display(),
            creds_path.display()
        );
    }
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let subset = file.creds.subset(&refs)?;
    // An encrypted source gives an encrypted copy (same passphrase): the keys never land on
    // disk in plain text by accident. Re-key it with `keys decrypt` + `keys encrypt`.
    let bytes = file.encode(&subset)?;
    tuf_credentials::save_new(out, &bytes).with_context(|| format!("writing {}", out.display()))?;
    if s.json() {
        outln!("{}", json!({"file": out, "keys": names}));
    } else {
        outln!(
            "Wrote {} with config.json and the offline targets key(s) {} (no root key){}.",
            out.display(),
            names.join(", "),
            if file.is_encrypted() {
                ", encrypted with the same passphrase as the source"
            } else {
                ""
            }
        );
    }
    Ok(())
}

const MAX_DOWNLOAD: u64 = 4 << 20;
