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

use crate::creds::CredsFile;
use crate::export::{active_keys, ActiveKey};
use crate::rotation;
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
    let mut todo: Vec<(KeyRole, ActiveKey)> = Vec::new();
    let roots = active_keys(s, &file, Role::Root)?;
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
        let t = active_keys(s, &file, Role::Targets)?;
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
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&a.out)
        .with_context(|| format!("creating {}", a.out.display()))?;
    let mut report = Vec::new();
    for (role, k) in &todo {
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
            role: *role,
            threshold: a.threshold,
            count: a.shares,
            key_id: k.id.as_str().to_owned(),
            factory: factory.clone(),
        };
        let list = shares::split(&header, &secret).map_err(|e| anyhow!(e))?;
        let mut files = Vec::new();
        for sh in &list {
            files.extend(write_share(&a.out, sh, &k.public.keytype)?);
        }
        report.push(json!({
            "role": role.name(), "keyid": k.id.as_str(), "backup_id": header.backup_id_hex(),
            "files": files,
        }));
        if !s.json() {
            println!(
                "{} key {}: {} shares, any {} of them restore it (backup {}).",
                role.name(),
                k.id,
                a.shares,
                a.threshold,
                header.backup_id_hex()
            );
        }
    }
    if s.json() {
        println!("{}", json!({ "dir": a.out, "keys": report }));
    } else {
        println!(
            "Wrote the share sheets to {}. Print each .html (or .png) sheet, put the sheets in \
             different safes, and delete the files from this machine: together, {} of them ARE \
             the private key.",
            a.out.display(),
            a.threshold
        );
    }
    Ok(())
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
    let png = qr_png(&payload)?;
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
    let mut txt = Zeroizing::new(String::new());
    txt.push_str(&title);
    txt.push_str("\n\n");
    txt.push_str(&info);
    txt.push_str(
        "\nRestore: tufctl keys restore SHARE-FILES... --out CREDS.tgz (type the groups below \
         into a text file; case, spaces and dashes do not matter).\n\n",
    );
    txt.push_str(&text);
    let b64 = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(&*png));
    let mut html = Zeroizing::new(String::new());
    html.push_str(&format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title>\n<style>body{{font-family:sans-serif;margin:2em}}pre{{font-family:monospace;font-size:14pt}}.share{{font-size:16pt;line-height:1.6}}</style></head><body>\n<h1>{}</h1>\n<p><b>SECRET.</b> This sheet is one share of a private key. Keep it in a safe; together, {} shares ARE the key.</p>\n<pre>{}</pre>\n<img alt=\"QR code of the share\" src=\"data:image/png;base64,",
        esc(&title),
        esc(&title),
        h.threshold,
        esc(&info)
    ));
    html.push_str(&b64);
    html.push_str("\">\n<pre class=\"share\">\n");
    html.push_str(&esc(&text));
    html.push_str("</pre>\n<p>Restore: <code>tufctl keys restore SHARE-FILES... --out CREDS.tgz</code>. A share typed into a text file works too (case, spaces and dashes do not matter). Each share carries a checksum, so a mistyped one is refused.</p>\n</body></html>\n");
    // The PNG is the whole sheet (what the text file says, then the QR code), so a printed
    // PNG alone is enough to restore from.
    let secret = format!(
        "SECRET: one share of a private key. Keep it in a safe; together, {} shares ARE the key.",
        h.threshold
    );
    let mut sheet_lines: Vec<&str> = vec![&secret, ""];
    for line in txt.lines() {
        sheet_lines.extend(wrap(line, 88));
    }
    let sheet = sheet_png(&sheet_lines, &payload)?;
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

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The QR code of `payload` as a grayscale PNG: 6 pixels a module, 4 modules of quiet zone.
pub fn qr_png(payload: &str) -> Result<Zeroizing<Vec<u8>>> {
    let (side, pixels) = qr_pixels(payload)?;
    encode_gray(side, side, &pixels, "the QR code PNG")
}

/// Modules drawn this many pixels wide, with this many modules of quiet zone around.
const QR_SCALE: usize = 6;
const QR_QUIET: usize = 4;

/// The QR code of `payload` as a square grayscale bitmap: `(side, pixels)`.
fn qr_pixels(payload: &str) -> Result<(usize, Zeroizing<Vec<u8>>)> {
    let code = qrcode::QrCode::with_error_correction_level(payload, qrcode::EcLevel::M)
        .map_err(|e| anyhow!("the data does not fit in a QR code: {e}"))?;
    let w = code.width();
    let colors = code.to_colors();
    let side = (w + 2 * QR_QUIET) * QR_SCALE;
    let mut pixels = Zeroizing::new(vec![255u8; side * side]);
    for (i, c) in colors.iter().enumerate() {
        if *c == qrcode::Color::Dark {
            let (mx, my) = (i % w + QR_QUIET, i / w + QR_QUIET);
            for dy in 0..QR_SCALE {
                let row = (my * QR_SCALE + dy) * side;
                pixels[row + mx * QR_SCALE..row + mx * QR_SCALE + QR_SCALE].fill(0);
            }
        }
    }
    Ok((side, pixels))
}

/// Text glyphs: 8x8 cells drawn this many times larger, lines this far apart, this margin.
const TEXT_SCALE: usize = 2;
const LINE_HEIGHT: usize = 8 * TEXT_SCALE + 6;
const SHEET_MARGIN: usize = 24;

/// A whole share sheet as one image, for holders who print PNGs: `lines` of text above the
/// QR code of `payload`. Characters outside ASCII are drawn as `?`.
pub fn sheet_png(lines: &[&str], payload: &str) -> Result<Zeroizing<Vec<u8>>> {
    let (qr_side, qr) = qr_pixels(payload)?;
    let columns = lines.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let width = (columns * 8 * TEXT_SCALE + 2 * SHEET_MARGIN).max(qr_side);
    let text_height = SHEET_MARGIN + lines.len() * LINE_HEIGHT;
    let height = text_height + qr_side;
    let mut pixels = Zeroizing::new(vec![255u8; width * height]);
    let glyphs = &font8x8::legacy::BASIC_LEGACY;
    for (n, line) in lines.iter().enumerate() {
        let top = SHEET_MARGIN + n * LINE_HEIGHT;
        for (i, c) in line.chars().enumerate() {
            let code = if c.is_ascii() {
                c as usize
            } else {
                '?' as usize
            };
            let glyph = glyphs.get(code).copied().unwrap_or([0; 8]);
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..8 {
                    if (bits >> col) & 1 == 0 {
                        continue;
                    }
                    let x = SHEET_MARGIN + (i * 8 + col) * TEXT_SCALE;
                    let y = top + row * TEXT_SCALE;
                    for dy in 0..TEXT_SCALE {
                        let at = (y + dy) * width + x;
                        pixels[at..at + TEXT_SCALE].fill(0);
                    }
                }
            }
        }
    }
    let left = (width - qr_side) / 2;
    for y in 0..qr_side {
        let at = (text_height + y) * width + left;
        pixels[at..at + qr_side].copy_from_slice(&qr[y * qr_side..(y + 1) * qr_side]);
    }
    encode_gray(width, height, &pixels, "the share sheet PNG")
}

/// `line` cut at spaces into pieces of at most `width` characters (a longer word stays whole).
fn wrap(line: &str, width: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = line;
    while rest.chars().count() > width {
        let spaces = || {
            rest.char_indices()
                .filter(|(_, c)| *c == ' ')
                .map(|(i, _)| i)
        };
        let cut = spaces()
            .take_while(|i| *i <= width)
            .last()
            .or_else(|| spaces().next());
        let Some(cut) = cut.filter(|c| *c > 0) else {
            break;
        };
        out.push(&rest[..cut]);
        rest = rest[cut..].trim_start();
    }
    out.push(rest);
    out
}

fn encode_gray(
    width: usize,
    height: usize,
    pixels: &[u8],
    what: &str,
) -> Result<Zeroizing<Vec<u8>>> {
    let w = u32::try_from(width).map_err(|_| anyhow!("{what} is too large"))?;
    let h = u32::try_from(height).map_err(|_| anyhow!("{what} is too large"))?;
    let mut out = Zeroizing::new(Vec::new());
    {
        let mut enc = png::Encoder::new(&mut *out, w, h);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc
            .write_header()
            .with_context(|| format!("encoding {what}"))?;
        writer
            .write_image_data(pixels)
            .with_context(|| format!("encoding {what}"))?;
    }
    Ok(out)
}

pub struct RestoreArgs {
    pub shares: Vec<String>,
    pub out: PathBuf,
    pub factory_check: bool,
    /// Encrypt a new output file with a passphrase.
    pub encrypt: bool,
}

pub fn restore(s: &Settings, a: &RestoreArgs) -> Result<()> {
    if a.shares.is_empty() {
        bail!("no shares given");
    }
    let mut parsed: Vec<(String, Share)> = Vec::new();
    for (i, arg) in a.shares.iter().enumerate() {
        let label = format!("share {} ({arg})", i + 1);
        let text: Zeroizing<String> = if Path::new(arg).exists() {
            let bytes =
                Zeroizing::new(std::fs::read(arg).with_context(|| format!("reading {label}"))?);
            if bytes.len() > MAX_SHARE_FILE {
                bail!("{label} is larger than a share file can be");
            }
            Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned())
        } else if arg.starts_with(shares::QR_PREFIX) {
            Zeroizing::new(arg.clone())
        } else {
            bail!(
                "{label}: no such file, and not a scanned share payload (those start with {})",
                shares::QR_PREFIX
            );
        };
        let label = if arg.starts_with(shares::QR_PREFIX) {
            format!("share {} (the payload given on the command line)", i + 1)
        } else {
            label
        };
        let sh = Share::parse_text(&text).map_err(|e| anyhow!("{label} is refused: {e}"))?;
        parsed.push((label, sh));
    }
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
    for (label, sh) in &parsed {
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
    let refs: Vec<&Share> = parsed.iter().map(|(_, s)| s).collect();
    let secret = shares::combine(&refs).map_err(|e| anyhow!(e))?;
    let secret = Secret::decode(&secret)
        .map_err(|e| anyhow!("the shares do not recombine to a key ({e})"))?;
    let key = PrivateKey::from_pkcs8_der(&secret.keytype, &secret.scheme, &secret.pkcs8)
        .map_err(|e| anyhow!("the shares do not recombine to a usable key ({e})"))?;

    // Which tarball, and which Factory root to check against.
    let existing = if a.out.symlink_metadata().is_ok() {
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
        Some(f)
    } else {
        None
    };
    let api = existing
        .as_ref()
        .map(|f| f.creds.config().api.clone())
        .or_else(|| s.api_url(None).ok())
        .unwrap_or_default();
    let cfg = Config {
        api,
        factory: h.factory.clone(),
    };
    let role = match h.role {
        KeyRole::Root => Role::Root,
        KeyRole::Targets => Role::Targets,
    };
    let server: Result<(Vec<u8>, Signed<Root>)> = s.api(Some(&cfg)).and_then(|api| {
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
    let computed = key.public_key().key_id();
    let mut checked = Vec::new();
    let recorded = tuf_core::KeyId::new(h.key_id.clone())?;
    let mut server_root = None;
    match server {
        Ok((bytes, root)) => {
            let listed = root.signed.role_keys(role);
            match listed.get(&recorded) {
                Some(p) if tuf_credentials::same_key(p, key.public_key()) => checked.push(format!(
                    "it is {} key {} in the Factory's current root (version {})",
                    h.role.name(),
                    recorded,
                    root.signed.version
                )),
                Some(_) => bail!(
                    "the recombined key is not the key {} lists as {} in the Factory's \
                     current root; the shares are damaged or forged",
                    recorded,
                    h.role.name()
                ),
                None => {
                    if a.factory_check {
                        bail!(
                            "{} key {} is not in the Factory's current root (version {}): it \
                             is an old key (--factory-check requires a current one)",
                            h.role.name(),
                            recorded,
                            root.signed.version
                        );
                    }
                    check_recorded(&computed, &recorded)?;
                    eprintln!(
                        "warning: {} key {} is not in the Factory's current root (version {}); \
                         it is an old key",
                        h.role.name(),
                        recorded,
                        root.signed.version
                    );
                    checked.push("it matches the key ID recorded in the shares".to_owned());
                }
            }
            server_root = Some(bytes);
        }
        Err(e) => {
            if a.factory_check {
                return Err(e.context(
                    "--factory-check: cannot fetch the Factory's current root to check the key",
                ));
            }
            check_recorded(&computed, &recorded)?;
            eprintln!(
                "note: could not reach the server ({e:#}); checked the key against the key ID \
                 recorded in the shares only"
            );
            checked.push("it matches the key ID recorded in the shares (offline)".to_owned());
        }
    }

    let name = rotation::key_name(h.role.name(), &recorded);
    let name = if tuf_credentials::Credentials::new(cfg.clone())
        .add_key(&name, &key)
        .is_ok()
    {
        name
    } else {
        rotation::key_name(h.role.name(), &computed)
    };
    match existing {
        Some(mut f) => {
            if a.encrypt && !f.is_encrypted() {
                bail!(
                    "{} exists in plain text; --encrypt only makes a new file. Nothing was \
                     written: run `tufctl keys encrypt {}` first, or restore into a new file",
                    a.out.display(),
                    a.out.display()
                );
            }
            let already = f.creds.find_signer(key.public_key())?.is_some();
            if !already {
                f.creds.add_key(&name, &key)?;
                f.save()?;
            }
            checked.push(if already {
                format!("{} already held it; left unchanged", a.out.display())
            } else {
                format!("added to {} as {name}", a.out.display())
            });
        }
        None => {
            let mut c = Credentials::new(cfg);
            if let Some(bytes) = &server_root {
                c.set_root_json(bytes)?;
            }
            c.add_key(&name, &key)?;
            let bytes = if a.encrypt {
                // Never on disk in plain text: encrypted before the first write.
                let pass = crate::creds::new_passphrase(s)?;
                Zeroizing::new(c.to_encrypted_bytes(&pass)?)
            } else {
                c.to_bytes()?
            };
            tuf_credentials::save_new(&a.out, &bytes)
                .with_context(|| format!("writing {}", a.out.display()))?;
            checked.push(if a.encrypt {
                format!(
                    "written to the new file {} as {name}, encrypted with the passphrase",
                    a.out.display()
                )
            } else {
                format!(
                    "written to the new file {} as {name} (plain text: use --encrypt, or \
                     `tufctl keys encrypt {}` now)",
                    a.out.display(),
                    a.out.display()
                )
            });
        }
    }
    if s.json() {
        println!(
            "{}",
            json!({"file": a.out, "role": h.role.name(), "keyid": recorded.as_str(), "checked": checked})
        );
    } else {
        println!("Restored {} key {}.", h.role.name(), recorded);
        for c in checked {
            println!("  - {c}");
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(png_bytes: &[u8]) -> (usize, usize, Vec<u8>) {
        let mut reader = png::Decoder::new(png_bytes).read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.color_type, png::ColorType::Grayscale);
        buf.truncate(info.buffer_size());
        (info.width as usize, info.height as usize, buf)
    }

    #[test]
    fn the_sheet_png_draws_the_text_above_the_qr_code() {
        let payload = "TUFSHARE1:ABCDEFGH";
        let (qr_side, _) = qr_pixels(payload).unwrap();
        let lines = ["AB", "", "share 1 of 5 - 3 needed"];
        let (w, h, px) = decode(&sheet_png(&lines, payload).unwrap());
        let text_height = SHEET_MARGIN + lines.len() * LINE_HEIGHT;
        assert_eq!(h, text_height + qr_side);
        assert!(w >= qr_side && w >= 23 * 16 + 2 * SHEET_MARGIN);
        // 'A' and 'B' are drawn exactly as their glyphs, pixel for pixel.
        for (i, c) in ['A', 'B'].into_iter().enumerate() {
            let glyph = font8x8::legacy::BASIC_LEGACY[c as usize];
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..8 {
                    let x = SHEET_MARGIN + (i * 8 + col) * TEXT_SCALE;
                    let y = SHEET_MARGIN + row * TEXT_SCALE;
                    let dark = (bits >> col) & 1 == 1;
                    assert_eq!(px[y * w + x] == 0, dark, "{c} row {row} col {col}");
                }
            }
        }
        // The empty line stays blank.
        let blank = SHEET_MARGIN + LINE_HEIGHT;
        assert!(px[blank * w..(blank + LINE_HEIGHT) * w]
            .iter()
            .all(|p| *p == 255));
        // The QR code's top-left finder pattern starts dark right after its quiet zone.
        let left = (w - qr_side) / 2;
        let corner = (text_height + QR_QUIET * QR_SCALE) * w + left + QR_QUIET * QR_SCALE;
        assert_eq!(px[corner], 0);
        assert_eq!(px[corner - 1], 255, "quiet zone");
    }

    #[test]
    fn long_lines_wrap_at_spaces() {
        assert_eq!(wrap("aaa bbb ccc", 7), vec!["aaa bbb", "ccc"]);
        assert_eq!(wrap("short", 80), vec!["short"]);
        assert_eq!(wrap("", 80), vec![""]);
        assert_eq!(
            wrap("averyverylongword x", 5),
            vec!["averyverylongword", "x"]
        );
    }

    #[test]
    fn non_ascii_text_is_drawn_as_a_question_mark() {
        let (w, _, a) = decode(&sheet_png(&["\u{e9}"], "X").unwrap());
        let (_, _, b) = decode(&sheet_png(&["?"], "X").unwrap());
        assert_eq!(a[..SHEET_MARGIN * 2 * w], b[..SHEET_MARGIN * 2 * w]);
        assert_eq!(a, b);
    }
}
