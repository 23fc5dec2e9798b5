//! `targets add`: a target in the CI targets, by hash and length, or by uploading the file.
//! The upload is streamed (the file is read in chunks while it is sent, never whole in
//! memory), with a progress bar on a terminal; a server that accepts smaller artifacts says so
//! before the file is sent.

use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::cli::AddArgs;
use crate::client::{status_of, ApiError};
use crate::settings::Settings;

pub fn add(s: &Settings, a: &AddArgs) -> Result<()> {
    let api = s.api_with_token(None, "a CI or owner")?;
    let path = format!("/ota/factories/{}/targets", s.factory(None)?);
    let mut meta = json!({
        "name": a.name,
        "version": a.version,
        "hardware_ids": a.hardware_ids,
        "tags": a.tags,
    });
    let answer = match (&a.file, &a.sha256, a.length) {
        (Some(file), _, _) => {
            let (ct, length, size, body) = multipart(&meta, file)?;
            api.post_stream(&path, &ct, length, body)
                .map_err(|e| explain_refusal(e, size))
        }
        (None, Some(hash), Some(len)) => {
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                bail!("--sha256 must be 64 hex characters");
            }
            meta["length"] = json!(len);
            meta["hashes"] = json!({"sha256": hash.to_ascii_lowercase()});
            api.post_raw(&path, "application/json", serde_json::to_vec(&meta)?)
        }
        _ => bail!("give either --file PATH, or --sha256 HASH and --length BYTES"),
    }
    .with_context(|| format!("adding target {}-{}", a.name, a.version))?;
    let v: Value = serde_json::from_slice(&answer).context("the server's answer is not JSON")?;
    if s.json() {
        crate::output::json(&v);
    } else {
        outln!(
            "Added target {} (CI targets version {}).",
            v["target"].as_str().unwrap_or("?"),
            v["targets_version"]
        );
    }
    Ok(())
}

/// A refused upload in the user's terms: the server's `413 artifact too large` carries its
/// limit, and the user reads the artifact's size against it.
fn explain_refusal(e: anyhow::Error, size: u64) -> anyhow::Error {
    if status_of(&e) != Some(413) {
        return e;
    }
    let limit = e
        .chain()
        .find_map(|c| c.downcast_ref::<ApiError>())
        .filter(|a| a.error == "artifact too large")
        .and_then(|a| a.detail["limit"].as_u64());
    match limit {
        Some(limit) => anyhow::anyhow!(
            "the artifact is {size} bytes; this server accepts at most {limit} (tufd \
             --max-artifact-bytes). Nothing was uploaded"
        ),
        None => e,
    }
}

/// A `multipart/form-data` body with a `metadata` JSON part and a `file` part streamed from
/// `file`: its content type, length, the file's size and the reader.
fn multipart(meta: &Value, file: &Path) -> Result<(String, u64, u64, Box<dyn Read + Send>)> {
    let reading = || format!("reading artifact {}", file.display());
    let f = std::fs::File::open(file).with_context(reading)?;
    let size = f.metadata().with_context(reading)?.len();
    let boundary = format!(
        "tufctl-{:x}-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
        std::process::id()
    );
    let mut head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"metadata\"\r\nContent-Type: \
         application/json\r\n\r\n"
    )
    .into_bytes();
    head.extend_from_slice(&serde_json::to_vec(meta)?);
    head.extend_from_slice(
        format!(
            "\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; \
             filename=\"{}\"\r\nContent-Type: application/octet-stream\r\n\r\n",
            file_name(file)
        )
        .as_bytes(),
    );
    let tail = format!("\r\n--{boundary}--\r\n").into_bytes();
    let length = head.len() as u64 + size + tail.len() as u64;
    let bar = crate::progress::bytes(size, &format!("uploading {}", file_name(file)));
    let body = std::io::Cursor::new(head)
        .chain(bar.track(Exactly::new(f, size)))
        .chain(std::io::Cursor::new(tail));
    Ok((
        format!("multipart/form-data; boundary={boundary}"),
        length,
        size,
        Box::new(body),
    ))
}

/// Exactly `left` bytes of a file that must not shrink while it is sent (the announced
/// length would be a lie, and the server would wait for bytes that never come).
struct Exactly<R> {
    inner: std::io::Take<R>,
}

impl<R: Read> Exactly<R> {
    fn new(inner: R, left: u64) -> Self {
        Self {
            inner: inner.take(left),
        }
    }
}

impl<R: Read> Read for Exactly<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() && self.inner.limit() > 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the artifact file got shorter while it was being uploaded",
            ));
        }
        Ok(n)
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("artifact")
        .replace(['"', '\r', '\n'], "_")
}
