//! Blocking HTTP downloads with hard size caps.
//!
//! Every read stops one byte past its cap, so an endless or oversized response costs at most
//! that much memory and bandwidth before it is refused.

use std::io::{Read, Write};
use std::time::Duration;

use ureq::Agent;

use crate::Error;

/// An HTTP client for one update cycle.
pub struct Fetcher {
    agent: Agent,
}

/// The outcome of a request whose absence is meaningful (the next root version).
pub enum Fetched {
    Found(Vec<u8>),
    /// 403 or 404 (the status): there is no such file.
    Missing(u16),
}

impl Fetcher {
    pub fn new() -> Self {
        let agent = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_global(Some(GLOBAL_TIMEOUT))
            .build()
            .into();
        Self { agent }
    }

    /// Fetches `url`, at most `limit` bytes; 403 and 404 are [`Fetched::Missing`].
    pub fn fetch_optional(&self, url: &str, limit: u64) -> Result<Fetched, Error> {
        let mut response = self.agent.get(url).call().map_err(|e| http(url, e))?;
        let status = response.status().as_u16();
        if status == 403 || status == 404 {
            return Ok(Fetched::Missing(status));
        }
        if status != 200 {
            return Err(Error::Status {
                url: url.to_owned(),
                status,
            });
        }
        // Sized from Content-Length (never beyond the cap) so a large file is read into one
        // allocation instead of a doubling series that briefly holds up to 3x its size.
        let hint = response
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map_or(0, |n| n.min(limit));
        let mut body = Vec::with_capacity(usize::try_from(hint).unwrap_or(0));
        let reader = response.body_mut().with_config().limit(u64::MAX).reader();
        let read = reader
            .take(limit.saturating_add(1))
            .read_to_end(&mut body)
            .map_err(|e| http(url, e))?;
        if read as u64 > limit {
            return Err(Error::TooLarge {
                what: url.to_owned(),
                limit,
            });
        }
        Ok(Fetched::Found(body))
    }

    /// Fetches `url`, at most `limit` bytes; any status but 200 is an error.
    pub fn fetch(&self, url: &str, limit: u64) -> Result<Vec<u8>, Error> {
        match self.fetch_optional(url, limit)? {
            Fetched::Found(body) => Ok(body),
            Fetched::Missing(status) => Err(Error::Status {
                url: url.to_owned(),
                status,
            }),
        }
    }

    /// Streams `url` into `out`, at most `limit` bytes, handing each chunk to `inspect` (for
    /// hashing) before it is written. Returns the number of bytes; more than `limit` is an
    /// error and stops the download.
    pub fn stream(
        &self,
        url: &str,
        limit: u64,
        out: &mut dyn Write,
        inspect: &mut dyn FnMut(&[u8]),
    ) -> Result<u64, Error> {
        let mut response = self.agent.get(url).call().map_err(|e| http(url, e))?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(Error::Status {
                url: url.to_owned(),
                status,
            });
        }
        let mut reader = response
            .body_mut()
            .with_config()
            .limit(u64::MAX)
            .reader()
            .take(limit.saturating_add(1));
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        loop {
            let n = reader.read(&mut buf).map_err(|e| http(url, e))?;
            if n == 0 {
                break;
            }
            total += n as u64;
            if total > limit {
                return Err(Error::TooLarge {
                    what: url.to_owned(),
                    limit,
                });
            }
            let chunk = &buf[..n];
            inspect(chunk);
            out.write_all(chunk)
                .map_err(|e| Error::Config(format!("writing download of {url}: {e}")))?;
        }
        Ok(total)
    }
}

impl Default for Fetcher {
    fn default() -> Self {
        Self::new()
    }
}

fn http(url: &str, e: impl std::fmt::Display) -> Error {
    Error::Http {
        url: url.to_owned(),
        reason: e.to_string(),
    }
}

/// Bounds a stalled server; size caps bound a fast one.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const GLOBAL_TIMEOUT: Duration = Duration::from_secs(600);
