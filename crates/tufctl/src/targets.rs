//! `targets add`: a target in the CI targets, by hash and length or by uploading the file.

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
            let data = std::fs::read(file)
                .with_context(|| format!("reading artifact {}", file.display()))?;
            let (ct, body) = multipart(&meta, &file_name(file), &data)?;
            api.post_raw(&path, &ct, body)
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
    if s.json() {
        println!("{}", String::from_utf8_lossy(&answer));
    } else {
        let v: Value = serde_json::from_slice(&answer).unwrap_or(Value::Null);
        println!(
            "Added target {} (CI targets version {}).",
            v["target"].as_str().unwrap_or("?"),
            v["targets_version"]
        );
    }
    Ok(())
}

fn file_name(p: &std::path::Path) -> String {
    p.file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("artifact")
        .replace(['"', '\r', '\n'], "_")
}

/// A `multipart/form-data` body with a `metadata` JSON part and a `file` part.
fn multipart(meta: &Value, name: &str, data: &[u8]) -> Result<(String, Vec<u8>)> {
    let boundary = format!(
        "tufctl-{:x}-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
        std::process::id()
    );
    let mut body = Vec::with_capacity(data.len() + 1024);
    body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"metadata\"\r\nContent-Type: application/json\r\n\r\n").as_bytes());
    body.extend_from_slice(&serde_json::to_vec(meta)?);
    body.extend_from_slice(format!("\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes());
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    Ok((format!("multipart/form-data; boundary={boundary}"), body))
}
