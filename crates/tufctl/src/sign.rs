//! `tufctl sign REQUEST.json -k CREDS.tgz --out RESPONSE.json`: signing on an air-gapped
//! machine. No server settings, no network (this module cannot reach the server client): the
//! request is verified on its own by `tuf_ceremony::offline`, starting from the root the
//! credentials file already trusts (`tufrepo/roles/root.json`), shown to the key holder, and
//! signed only after they confirm. The credentials file is only read.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use time::OffsetDateTime;
use tuf_ceremony::format::{Request, Response};
use tuf_ceremony::{keyring, offline, review};

use crate::creds::CredsFile;
use crate::document;
use crate::render;
use crate::settings::Settings;

pub struct SignArgs {
    pub request: PathBuf,
    pub creds: PathBuf,
    pub out: PathBuf,
    pub yes: bool,
    pub qr: Option<PathBuf>,
}

pub fn sign(s: &Settings, a: &SignArgs) -> Result<()> {
    let req = document::read_request(&a.request)?;
    let file = CredsFile::open(s, &a.creds)?;
    let (review, response) = check_and_sign(&req, &file, a)?;
    let Some(response) = response else {
        bail!(
            "{} holds no key this request needs (root keys of the current or new root, or \
             offline targets keys of the production root); nothing was signed",
            a.creds.display()
        );
    };
    // With --json the review still reaches the person confirming, on standard error.
    if s.json() {
        crate::output::diagnostic(&format!("review: {}", review.trim_end()));
    } else {
        out!("{review}");
    }
    confirm(a.yes)?;
    let out = response.to_bytes()?;
    document::write_file(&a.out, &out, "signing response")?;
    if !s.json() {
        outln!("Wrote the signed response to {}.", a.out.display());
    }
    if let Some(qr) = &a.qr {
        write_qr(&response, &out, qr, a, s.json())?;
    }
    if s.json() {
        crate::output::json(&serde_json::json!({"response": a.out, "qr": a.qr}));
    }
    Ok(())
}

/// Verifies `req` from the file's trusted root; returns the review and the response (`None`
/// when the file holds no key the request needs). Nothing is signed unless it verifies.
fn check_and_sign(
    req: &Request,
    file: &CredsFile,
    a: &SignArgs,
) -> Result<(String, Option<Response>)> {
    let anchor = file.stored_root()?.ok_or_else(|| {
        anyhow!(
            "{} has no tufrepo/roles/root.json, the root this machine trusts; a request can only \
             be verified from a root the file already holds (see docs/SIGNING-REQUESTS.md)",
            a.creds.display()
        )
    })?;
    let factory = &file.creds.config().factory;
    let now = OffsetDateTime::now_utc();
    let refused = |e: tuf_ceremony::Refusal| {
        anyhow!(e).context(format!(
            "refusing to sign {}: it does not verify, nothing was signed and {} was not touched",
            a.request.display(),
            a.creds.display()
        ))
    };
    Ok(match req {
        Request::RootUpdate(r) => {
            let current = offline::check_root_update(r, &anchor, factory, now).map_err(refused)?;
            let review = review::root_update(r, &current);
            (review, keyring::sign_root_update(r, &current, file)?)
        }
        Request::Wave(w) => {
            let prod_root = offline::check_wave(w, &anchor, factory, now).map_err(refused)?;
            let review = review::wave(w);
            (review, keyring::sign_wave(w, &prod_root.signed, file)?)
        }
    })
}

/// Writes the response as a QR code. A wave's targets can be long: its QR code carries the
/// signatures and the hash of the targets only, and `waves import --request` joins them to
/// the request.
fn write_qr(
    response: &Response,
    out: &[u8],
    qr: &std::path::Path,
    a: &SignArgs,
    json: bool,
) -> Result<()> {
    let (payload, said) = match response {
        Response::Wave(w) => (
            w.compact().to_bytes()?,
            "the signatures, naming the targets by hash: import it with `tufctl waves import \
             QR-TEXT --request REQUEST.json`",
        ),
        _ => (out.to_vec(), "the same JSON text"),
    };
    let text = std::str::from_utf8(&payload).context("the response is not UTF-8")?;
    let png = render::qr_png(text).with_context(|| {
        format!(
            "{} was written, but its {} bytes do not fit in one QR code; carry the file instead",
            a.out.display(),
            payload.len()
        )
    })?;
    document::write_file(qr, &png, "QR code")?;
    if json {
        return Ok(());
    }
    outln!(
        "Wrote the response as a QR code to {} (its payload is {said}).",
        qr.display()
    );
    Ok(())
}

/// Asks on the terminal; `--yes` answers for scripts. Without either, nothing is signed.
fn confirm(yes: bool) -> Result<()> {
    if yes {
        return Ok(());
    }
    let answer = crate::output::ask(
        "Sign this? Type yes to sign: ",
        "nothing was signed: confirmation is needed and standard input is not a terminal; \
         review the request and pass --yes to sign it from a script",
    )?;
    if answer != "yes" {
        bail!("not confirmed; nothing was signed");
    }
    Ok(())
}
