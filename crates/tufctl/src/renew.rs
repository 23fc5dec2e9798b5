//! `keys resign-root`: renews the roots before they expire (version + 1 and a new expiry,
//! nothing else changed), signed here with the file's root key(s) or exported for signing on
//! an offline machine.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde_json::json;
use time::OffsetDateTime;
use tuf_ceremony::tx::edit_root;
use tuf_ceremony::{keyring, Roots, Tx};
use tuf_core::{Expires, Role, Root};

use crate::creds::CredsFile;
use crate::document;
use crate::server::{check_tx, Factory};
use crate::settings::Settings;

/// How `keys resign-root` runs.
pub struct Renewal<'a> {
    pub expires_days: u32,
    pub export: Option<&'a Path>,
    pub cancel_open: bool,
}

/// `keys resign-root CREDS.tgz [--expires-days N] [--export REQUEST.json]`.
pub fn resign_root(s: &Settings, path: &Path, r: &Renewal) -> Result<()> {
    let mut file = CredsFile::open(s, path)?;
    let f = Factory::of_file(s, &file)?;
    let expires = Expires::after(
        OffsetDateTime::now_utc(),
        i64::from(r.expires_days) * 86_400,
    )?;
    let message = format!("renew the root: expires {expires}");
    if let Some(out) = r.export {
        // Exporting signs nothing here: keys (and tokens, which ask for a PIN) stay closed.
        let current = f
            .roots()
            .context("fetching the Factory's current roots (nothing was changed)")?;
        let tx = renewal_tx(&f, &current, &message, expires, r.cancel_open)?;
        return export(s.json(), &f, &tx, &current, out, expires);
    }
    // Signing here: the root key signs the current roots again, so they must be the ones the
    // chain from this file's stored root leads to, not whatever the server says they are.
    let current = f
        .verified_roots(&mut file)
        .context("fetching the Factory's current roots (nothing was changed)")?;
    if keyring::role_signers(&file, &current.ci.signed, Role::Root)?.is_empty() {
        bail!(
            "{} holds none of the current root keys, so it cannot sign the renewed root; \
             nothing was changed. Use the file with the root key, or --export REQUEST.json to \
             have it signed on the offline machine",
            path.display()
        );
    }
    let mut tx = renewal_tx(&f, &current, &message, expires, r.cancel_open)?;
    check_tx(&tx, &current)?;
    keyring::sign_roots(&mut tx, &file, &current)?;
    if !f.stage_and_apply(&tx, &current)?.report(s.json(), &tx.txid) {
        return Ok(());
    }
    f.store_root(&mut file);
    if s.json() {
        outln!(
            "{}",
            json!({"version": tx.ci_root.signed.version, "expires": expires})
        );
    } else {
        outln!(
            "Renewed the root: version {}, expires {expires}.",
            tx.ci_root.signed.version
        );
    }
    Ok(())
}

/// The renewal transaction: the server's draft (the current roots with version + 1) with
/// the new expiry and nothing else changed.
fn renewal_tx(
    f: &Factory,
    current: &Roots,
    message: &str,
    expires: Expires,
    cancel_open: bool,
) -> Result<Tx> {
    let mut tx = f.begin(message, cancel_open, |tx| tx.message == message)?;
    for (env, cur) in [
        (&mut tx.ci_root, &current.ci.signed),
        (&mut tx.prod_root, &current.prod.signed),
    ] {
        if !unchanged_but_version(&env.signed, cur) {
            bail!(
                "the open transaction {} changes more than the version; it is not a renewal. \
                 Cancel it (`tufctl keys tuf updates cancel`) and run this again",
                tx.txid
            );
        }
        *env = edit_root(env, |r: &mut Root| {
            r.expires = expires;
            Ok(())
        })?;
    }
    tx.stage_prod_targets = false;
    Ok(tx)
}

fn export(
    json: bool,
    f: &Factory,
    tx: &Tx,
    current: &Roots,
    out: &Path,
    expires: Expires,
) -> Result<()> {
    let staged = f.stage(tx)?;
    let req = f.root_update_request(&staged, current)?;
    document::write_file(out, &req.to_bytes()?, "signing request")?;
    if json {
        crate::output::json(&json!({
            "txid": tx.txid, "version": tx.ci_root.signed.version, "expires": expires,
            "request": out,
        }));
        return Ok(());
    }
    outln!(
        "Staged the renewal (root version {}, expires {expires}) as transaction {} and wrote \
         its signing request to {}. Sign it offline with `tufctl sign {} -k CREDS.tgz --out \
         RESPONSE.json`, then `tufctl keys tuf updates import RESPONSE.json` and `apply`.",
        tx.ci_root.signed.version,
        tx.txid,
        out.display(),
        out.display()
    );
    Ok(())
}

/// Whether `new` is `cur` with version + 1, whatever its expiry and changelog.
fn unchanged_but_version(new: &Root, cur: &Root) -> bool {
    let mut a = new.clone();
    let mut b = cur.clone();
    a.expires = b.expires;
    a.version = b.version;
    for r in [&mut a, &mut b] {
        r.extra.remove("x-changelog");
    }
    new.version == cur.version.saturating_add(1) && a == b
}
