//! Signing requests and responses on disk: read with a size cap (or from standard input),
//! written atomically. Their formats are `tuf_ceremony::format`.

use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context, Result};
use tuf_ceremony::format::{Request, Response};

/// Reads a request or response file (capped), or standard input for `-`.
pub fn read_file(path: &Path, what: &str) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let result = if path == Path::new("-") {
        std::io::stdin().take(MAX_FILE + 1).read_to_end(&mut bytes)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(MAX_FILE + 1).read_to_end(&mut bytes))
    };
    result.with_context(|| format!("cannot read the {what} {}", path.display()))?;
    if bytes.len() as u64 > MAX_FILE {
        bail!(
            "the {what} {} is larger than {} MiB; it is not one of ours",
            path.display(),
            MAX_FILE >> 20
        );
    }
    Ok(bytes)
}

/// Writes `bytes` to `path` atomically (temporary file, fsync, rename, fsync of the directory).
pub fn write_file(path: &Path, bytes: &[u8], what: &str) -> Result<()> {
    tuf_credentials::save_atomic(path, bytes)
        .with_context(|| format!("cannot write the {what} {}", path.display()))?;
    Ok(())
}

/// Reads a signing request file.
pub fn read_request(path: &Path) -> Result<Request> {
    Request::from_slice(&read_file(path, "signing request")?)
        .with_context(|| format!("{} is not a signing request", path.display()))
}

/// Reads a response given as a file path, `-` (standard input), or the QR payload text itself.
pub fn read_response(arg: &str) -> Result<Response> {
    let trimmed = arg.trim_start();
    let bytes = if trimmed.starts_with('{') && !Path::new(arg).exists() {
        trimmed.as_bytes().to_vec()
    } else {
        read_file(Path::new(arg), "signing response")?
    };
    Response::from_slice(&bytes).with_context(|| format!("{arg} is not a signing response"))
}

/// The largest request: a wave's carries three targets documents (CI, current and proposed
/// production targets), each at most `MAX_TARGETS_BYTES`, and two root chains.
const MAX_FILE: u64 = 3 * tuf_ceremony::limits::MAX_TARGETS_BYTES + (32 << 20);
