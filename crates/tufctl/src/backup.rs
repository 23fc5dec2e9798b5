//! `keys backup` / `keys restore`: paper backups of offline keys with Shamir's secret sharing
//! (format: docs/BACKUP-FORMAT.md). Each share is written as a printable HTML sheet, a PNG
//! QR code and a .txt file; `restore` reads any of them, typed text, or a scanned payload.

use std::collections::BTreeSet;
use std::fs::DirBuilder;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine as _;
use serde_json::json;
use tuf_core::{PrivateKey, Role, Root, Signed, Signer};
use tuf_credentials::{Config, Credentials};
use zeroize::Zeroizing;

use crate::active::{active_keys, ActiveKey};
use crate::creds::CredsFile;
use crate::render;
use crate::settings::Settings;
use crate::shares::{self, Header, KeyRole, Secret, Share};

pub struct BackupArgs {
    pub creds: PathBuf,
    pub shares: u8,
    pub threshold: u8,
    pub out: PathBuf,
    pub include_targets: bool,
}

pub fn backup(s: &Settings, a: &BackupArgs) -> Result<()> {
    if a.threshold < 2 || a.threshold > a.shares {
        bail!(
            "--threshold must be at least 2 and at most --shares ({}); got {}",
            a.shares,
            a.threshold
        );
    }
    let file = CredsFile::open(s, &a.creds)?;
    let factory = file.creds.config().factory.clone();
    let todo = keys_to_back_up(s, &file, a)?;
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&a.out)
        .with_context(|| format!("creating {}", a.out.display()))?;
    let mut report = Vec::new();
    for (role, k) in &todo {
        report.push(back_up_key(s, &file, a, &factory, *role, k)?);
    }
    if s.json() {
        outln!("{}", json!({ "dir": a.out, "keys": report }));
    } else {
        outln!(
            "Wrote the share sheets to {}. Print each .html (or .png) sheet, put the sheets in \
             different safes, and delete the files from this machine: together, {} of them ARE \
             the private key.",
            a.out.display(),
            a.threshold
        );
    }
    Ok(())
}

/// The active root keys of the file (and with `--include-targets` its offline targets keys).
fn keys_to_back_up(
    s: &Settings,
    file: &CredsFile,
    a: &BackupArgs,
) -> Result<Vec<(KeyRole, ActiveKey)>> {
    let mut todo: Vec<(KeyRole, ActiveKey)> = Vec::new();
    let roots = active_keys(s, file, Role::Root)?;
    roots.explain_token_keys(&a.creds)?;
    if roots.keys.is_empty() {
        bail!(
            "{} holds no private key of the active root role (checked against {})",
            a.creds.display(),
            roots.source
        );
    }
    todo.extend(roots.keys.into_iter().map(|k| (KeyRole::Root, k)));
    if a.include_targets {
        let t = active_keys(s, file, Role::Targets)?;
        t.explain_token_keys(&a.creds)?;
        if t.keys.is_empty() {
            bail!(
                "{} holds no active offline targets key (checked against {}); leave out \
                 --include-targets or run `tufctl keys rotate-targets` first",
                a.creds.display(),
                t.source
            );
        }
        todo.extend(t.keys.into_iter().map(|k| (KeyRole::Targets, k)));
    }
    Ok(todo)
}

/// Splits one key into shares and writes their sheets; returns the JSON report line.
fn back_up_key(
    s: &Settings,
    file: &CredsFile,
    a: &BackupArgs,
    factory: &str,
    role: KeyRole,
    k: &ActiveKey,
) -> Result<serde_json::Value> {
    {
        let key = file.creds.private_key(&k.name)?;
        let secret = Secret {
            keytype: k.public.keytype.clone(),
            scheme: k.public.scheme.clone(),
            pkcs8: Zeroizing::new(key.pkcs8_der().to_vec()),
        }
        .encode()
        .map_err(|e| anyhow!("encoding key {}: {e}", k.id))?;
        let header = Header {
            backup_id: shares::random_bytes::<8>().map_err(|e| anyhow!(e))?,
            role,
            threshold: a.threshold,
            count: a.shares,
            key_id: k.id.as_str().to_owned(),
            factory: factory.to_owned(),
        };
        let list = shares::split(&header, &secret).map_err(|e| anyhow!(e))?;
        let mut files = Vec::new();
        for sh in &list {
            files.extend(write_share(&a.out, sh, &k.public.keytype)?);
        }
        if !s.json() {
            outln!(
                "{} key {}: {} shares, any {} of them restore it (backup {}).",
                role.name(),
                k.id,
                a.shares,
                a.threshold,
                header.backup_id_hex()
            );
        }
        Ok(json!({
            "role": role.name(), "keyid": k.id.as_str(), "backup_id": header.backup_id_hex(),
            "files": files,
        }))
    }
}

fn write_share(dir: &Path, sh: &Share, keytype: &str) -> Result<Vec<PathBuf>> {
    let h = &sh.header;
    let short: String = h.key_id.chars().take(12).collect();
    let short: String = short
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let stem = format!(
        "{}-{}-{}-share-{}-of-{}",
        h.factory,
        h.role.name(),
        short,
        sh.index,
        h.count
    );
    let text = sh.to_text().map_err(|e| anyhow!(e))?;
    let payload = sh.qr_payload().map_err(|e| anyhow!(e))?;
    let png = render::qr_png(&payload)?;
    let (title, info) = sheet_heading(sh, keytype);
    let mut txt = Zeroizing::new(String::new());
    txt.push_str(&title);
    txt.push_str("\n\n");
    txt.push_str(&info);
    txt.push_str(
        "\nRestore: tufctl keys restore SHARE-FILES... --out CREDS.tgz (type the groups below \
         into a text file; case, spaces and dashes do not matter).\n\n",
    );
    txt.push_str(&text);
    let html = sheet_html(&title, &info, h.threshold, &png, &text);
    // The PNG is the whole sheet (what the text file says, then the QR code), so a printed
    // PNG alone is enough to restore from.
    let secret = format!(
        "SECRET: one share of a private key. Keep it in a safe; together, {} shares ARE the key.",
        h.threshold
    );
    let mut sheet_lines: Vec<&str> = vec![&secret, ""];
    for line in txt.lines() {
        sheet_lines.extend(render::wrap(line, 88));
    }
    let sheet = render::sheet_png(&sheet_lines, &payload)?;
    let mut written = Vec::new();
    for (ext, bytes) in [
        ("html", html.as_bytes()),
        ("png", sheet.as_slice()),
        ("txt", txt.as_bytes()),
    ] {
        let p = dir.join(format!("{stem}.{ext}"));
        tuf_credentials::save_new(&p, bytes)
            .with_context(|| format!("writing {} (nothing was overwritten)", p.display()))?;
        written.push(p);
    }
    Ok(written)
}

/// A share sheet's title and the lines that say what it is.
fn sheet_heading(sh: &Share, keytype: &str) -> (String, String) {
    let h = &sh.header;
    let title = format!(
        "Factory {} - {} key - share {} of {}, {} needed",
        h.factory,
        h.role.name(),
        sh.index,
        h.count,
        h.threshold
    );
    let info = format!(
        "Factory:    {}\nKey role:   {}\nKey ID:     {}\nKey type:   {}\nBackup ID:  {}\nShare:      {} of {}, {} needed to restore\nFormat:     tuf-factory key share, version {} (docs/BACKUP-FORMAT.md)\n",
        h.factory,
        h.role.name(),
        h.key_id,
        keytype,
        h.backup_id_hex(),
        sh.index,
        h.count,
        h.threshold,
        shares::VERSION
    );
    (title, info)
}

/// The printable HTML sheet: heading, the QR code inline, the share's text groups.
fn sheet_html(title: &str, info: &str, threshold: u8, png: &[u8], text: &str) -> Zeroizing<String> {
    let b64 = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(png));
    let mut html = Zeroizing::new(String::new());
    html.push_str(&format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title>\n<style>body{{font-family:sans-serif;margin:2em}}pre{{font-family:monospace;font-size:14pt}}.share{{font-size:16pt;line-height:1.6}}</style></head><body>\n<h1>{}</h1>\n<p><b>SECRET.</b> This sheet is one share of a private key. Keep it in a safe; together, {} shares ARE the key.</p>\n<pre>{}</pre>\n<img alt=\"QR code of the share\" src=\"data:image/png;base64,",
        esc(title),
        esc(title),
        threshold,
        esc(info)
    ));
    html.push_str(&b64);
    html.push_str("\">\n<pre class=\"share\">\n");
    html.push_str(&esc(text));
    html.push_str("</pre>\n<p>Restore: <code>tufctl keys restore SHARE-FILES... --out CREDS.tgz</code>. A share typed into a text file works too (case, spaces and dashes do not matter). Each share carries a checksum, so a mistyped one is refused.</p>\n</body></html>\n");
    html
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub struct RestoreArgs {
    pub shares: Vec<String>,
    pub out: PathBuf,
    pub factory_check: bool,
    /// Encrypt a new output file with a passphrase.
    pub encrypt: bool,
}

pub fn restore(s: &Settings, a: &RestoreArgs) -> Result<()> {
    let parsed = read_shares(&a.shares)?;
    let h = one_backup(&parsed)?;
    let refs: Vec<&Share> = parsed.iter().map(|(_, s)| s).collect();
    let secret = shares::combine(&refs).map_err(|e| anyhow!(e))?;
    let secret = Secret::decode(&secret)
        .map_err(|e| anyhow!("the shares do not recombine to a key ({e})"))?;
    let key = PrivateKey::from_pkcs8_der(&secret.keytype, &secret.scheme, &secret.pkcs8)
        .map_err(|e| anyhow!("the shares do not recombine to a usable key ({e})"))?;
    // Which tarball, and which Factory root to check against.
    let existing = existing_file(s, a, &h)?;
    let api = existing
        .as_ref()
        .map(|f| f.creds.config().api.clone())
        .or_else(|| s.api_url(None).ok())
        .unwrap_or_default();
    let cfg = Config {
        api,
        factory: h.factory.clone(),
    };
    let recorded = tuf_core::KeyId::new(h.key_id.clone())?;
    let (mut checked, server_root) = check_key(s, a, &h, &cfg, &key, &recorded)?;
    let computed = key.public_key().key_id();
    let name = crate::creds::key_name(h.role.name(), &recorded);
    let name = if Credentials::new(cfg.clone()).add_key(&name, &key).is_ok() {
        name
    } else {
        crate::creds::key_name(h.role.name(), &computed)
    };
    checked.push(match existing {
        Some(f) => add_to_existing(f, a, &name, &key)?,
        None => write_new(s, a, cfg, server_root.as_deref(), &name, &key)?,
    });
    if s.json() {
        outln!(
            "{}",
            json!({"file": a.out, "role": h.role.name(), "keyid": recorded.as_str(), "checked": checked})
        );
    } else {
        outln!("Restored {} key {}.", h.role.name(), recorded);
        for c in checked {
            outln!("  - {c}");
        }
    }
    Ok(())
}

/// Each argument as a share: a share file (or typed text file), or a scanned QR payload.
fn read_shares(args: &[String]) -> Result<Vec<(String, Share)>> {
    if args.is_empty() {
        bail!("no shares given");
    }
    let mut parsed = Vec::new();
    for (i, arg) in args.iter().enumerate() {
        let label = format!("share {} ({arg})", i + 1);
        let (text, label): (Zeroizing<String>, String) = if Path::new(arg).exists() {
            let bytes =
                Zeroizing::new(std::fs::read(arg).with_context(|| format!("reading {label}"))?);
            if bytes.len() > MAX_SHARE_FILE {
                bail!("{label} is larger than a share file can be");
            }
            (
                Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned()),
                label,
            )
        } else if arg.starts_with(shares::QR_PREFIX) {
            let label = format!("share {} (the payload given on the command line)", i + 1);
            (Zeroizing::new(arg.clone()), label)
        } else {
            bail!(
                "{label}: no such file, and not a scanned share payload (those start with {})",
                shares::QR_PREFIX
            );
        };
        let sh = Share::parse_text(&text).map_err(|e| anyhow!("{label} is refused: {e}"))?;
        parsed.push((label, sh));
    }
    Ok(parsed)
}

/// The shares are of one backup, each once, and enough of them: their common header.
fn one_backup(parsed: &[(String, Share)]) -> Result<Header> {
    let (first_label, first) = &parsed[0];
    let h = first.header.clone();
    for (label, sh) in &parsed[1..] {
        if sh.header != h {
            bail!(
                "the shares are from different backups: {first_label} is from backup {} of {} \
                 key {}, {label} from backup {} of {} key {}; give shares of one backup only",
                h.backup_id_hex(),
                h.role.name(),
                h.key_id,
                sh.header.backup_id_hex(),
                sh.header.role.name(),
                sh.header.key_id
            );
        }
    }
    let mut seen = BTreeSet::new();
    for (label, sh) in parsed {
        if !seen.insert(sh.index) {
            bail!(
                "{label} is share {} of {}, which was given twice",
                sh.index,
                h.count
            );
        }
    }
    if parsed.len() < usize::from(h.threshold) {
        bail!(
            "{} shares given, {} needed: this backup of {} key {} needs any {} of its {} shares",
            parsed.len(),
            h.threshold,
            h.role.name(),
            h.key_id,
            h.threshold,
            h.count
        );
    }
    Ok(h)
}

/// The `--out` file when it exists: it must be the same Factory's.
fn existing_file(s: &Settings, a: &RestoreArgs, h: &Header) -> Result<Option<CredsFile>> {
    if a.out.symlink_metadata().is_err() {
        return Ok(None);
    }
    let f = CredsFile::open(s, &a.out)?;
    if f.creds.config().factory != h.factory {
        bail!(
            "{} is the credentials file of Factory {:?}, not of {:?} whose key the shares \
             hold; refusing to add the key to an unrelated file (choose another --out)",
            a.out.display(),
            f.creds.config().factory,
            h.factory
        );
    }
    Ok(Some(f))
}

/// Checks the recombined key against the Factory's current root (or, offline, the key ID
/// the shares record); returns what was checked and the root's bytes when fetched.
fn check_key(
    s: &Settings,
    a: &RestoreArgs,
    h: &Header,
    cfg: &Config,
    key: &PrivateKey,
    recorded: &tuf_core::KeyId,
) -> Result<(Vec<String>, Option<Vec<u8>>)> {
    let role = match h.role {
        KeyRole::Root => Role::Root,
        KeyRole::Targets => Role::Targets,
    };
    let computed = key.public_key().key_id();
    let server: Result<(Vec<u8>, Signed<Root>)> = s.api(Some(cfg)).and_then(|api| {
        let q = if role == Role::Targets {
            "?production=1"
        } else {
            ""
        };
        let bytes = api.get(&format!(
            "/ota/repo/{}/api/v1/user_repo/root.json{q}",
            cfg.factory
        ))?;
        let root = Signed::<Root>::from_slice(&bytes)?;
        Ok((bytes, root))
    });
    let (bytes, root) = match server {
        Ok(x) => x,
        Err(e) => {
            if a.factory_check {
                return Err(e.context(
                    "--factory-check: cannot fetch the Factory's current root to check the key",
                ));
            }
            check_recorded(&computed, recorded)?;
            let e = crate::outcome::paragraph(&e);
            errln!(
                "note: could not reach the server ({e:#}); checked the key against the key ID \
                 recorded in the shares only"
            );
            let said = "it matches the key ID recorded in the shares (offline)".to_owned();
            return Ok((vec![said], None));
        }
    };
    let v = root.signed.version;
    let said = match root.signed.role_keys(role).get(recorded) {
        Some(p) if tuf_credentials::same_key(p, key.public_key()) => format!(
            "it is {} key {recorded} in the Factory's current root (version {v})",
            h.role.name()
        ),
        Some(_) => bail!(
            "the recombined key is not the key {recorded} lists as {} in the Factory's current \
             root; the shares are damaged or forged",
            h.role.name()
        ),
        None if a.factory_check => bail!(
            "{} key {recorded} is not in the Factory's current root (version {v}): it is an old \
             key (--factory-check requires a current one)",
            h.role.name()
        ),
        None => {
            check_recorded(&computed, recorded)?;
            errln!(
                "warning: {} key {recorded} is not in the Factory's current root (version {v}); \
                 it is an old key",
                h.role.name()
            );
            "it matches the key ID recorded in the shares".to_owned()
        }
    };
    Ok((vec![said], Some(bytes)))
}

/// Adds the key to an existing file of the same Factory (unless it holds it already).
fn add_to_existing(
    mut f: CredsFile,
    a: &RestoreArgs,
    name: &str,
    key: &PrivateKey,
) -> Result<String> {
    if a.encrypt && !f.is_encrypted() {
        bail!(
            "{} exists in plain text; --encrypt only makes a new file. Nothing was written: run \
             `tufctl keys encrypt {}` first, or restore into a new file",
            a.out.display(),
            a.out.display()
        );
    }
    if f.creds.find_signer(key.public_key())?.is_some() {
        return Ok(format!(
            "{} already held it; left unchanged",
            a.out.display()
        ));
    }
    f.creds.add_key(name, key)?;
    f.save()?;
    Ok(format!("added to {} as {name}", a.out.display()))
}

/// Writes a new credentials file holding the key (and the root it was checked against).
fn write_new(
    s: &Settings,
    a: &RestoreArgs,
    cfg: Config,
    server_root: Option<&[u8]>,
    name: &str,
    key: &PrivateKey,
) -> Result<String> {
    let mut c = Credentials::new(cfg);
    if let Some(bytes) = server_root {
        c.set_root_json(bytes)?;
    }
    c.add_key(name, key)?;
    let bytes = if a.encrypt {
        // Never on disk in plain text: encrypted before the first write.
        let pass = crate::creds::new_passphrase(s)?;
        Zeroizing::new(c.to_encrypted_bytes(&pass)?)
    } else {
        c.to_bytes()?
    };
    tuf_credentials::save_new(&a.out, &bytes)
        .with_context(|| format!("writing {}", a.out.display()))?;
    Ok(if a.encrypt {
        format!(
            "written to the new file {} as {name}, encrypted with the passphrase",
            a.out.display()
        )
    } else {
        format!(
            "written to the new file {} as {name} (plain text: use --encrypt, or `tufctl keys \
             encrypt {}` now)",
            a.out.display(),
            a.out.display()
        )
    })
}

fn check_recorded(computed: &tuf_core::KeyId, recorded: &tuf_core::KeyId) -> Result<()> {
    if computed != recorded {
        bail!(
            "the recombined key has key ID {computed}, not {recorded} as the shares record; \
             the shares are damaged or forged"
        );
    }
    Ok(())
}

const MAX_SHARE_FILE: usize = 1 << 20;
