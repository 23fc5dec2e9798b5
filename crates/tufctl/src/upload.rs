//! `targets add`: a target in the CI targets, by hash and length, or by uploading the file.
//! The upload is streamed (the file is read in chunks while it is sent, never whole in
//! memory), with a progress bar on a terminal.

use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::cli::AddArgs;
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
            let (ct, length, body) = multipart(&meta, file)?;
            api.post_stream(&path, &ct, length, body)
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

/// A `multipart/form-data` body with a `metadata` JSON part and a `file` part streamed from
/// `file`: its content type, length and reader.
fn multipart(meta: &Value, file: &Path) -> Result<(String, u64, Box<dyn Read + Send>)> {
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
        .chain(bar.track(f.take(size)))
        .chain(std::io::Cursor::new(tail));
    Ok((
        format!("multipart/form-data; boundary={boundary}"),
        length,
        Box::new(body),
    ))
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("artifact")
        .replace(['"', '\r', '\n'], "_")
}
