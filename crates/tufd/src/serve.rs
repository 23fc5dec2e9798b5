//! Read paths: metadata for operators (`/ota/repo/{f}/api/v1/user_repo/...`) and for devices
//! (`/repo/{f}/{ci|prod}/metadata/...`, `/repo/{f}/{ci|prod}/targets/...`). Bodies are the
//! stored signed bytes, never re-serialised.

use std::ops::Range;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tuf_core::Role;

use crate::auth::{authenticate, Scope};
use crate::cache::FileKey;
use crate::error::{ApiError, ApiResult};
use crate::input::{check_label, Path, Query};
use crate::repo::{self, Flavour};
use crate::Shared;

/// A metadata file name: `root.json`, `N.root.json`, `N.snapshot.json`, ...
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetaName {
    pub role: Role,
    pub version: Option<i64>,
}

impl MetaName {
    pub fn parse(file: &str) -> Option<Self> {
        let stem = file.strip_suffix(".json")?;
        let (version, role) = match stem.split_once('.') {
            Some((n, role)) => {
                if n.is_empty() || n.len() > 18 || !n.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                let v: i64 = n.parse().ok()?;
                if v < 1 {
                    return None;
                }
                (Some(v), role)
            }
            None => (None, stem),
        };
        let role = Role::ALL.into_iter().find(|r| r.as_str() == role)?;
        Some(Self { role, version })
    }
}

#[derive(Deserialize)]
pub struct ProductionQuery {
    production: Option<String>,
}

/// `GET /ota/repo/{f}/api/v1/user_repo/{file}[?production=1]` (read, ci, owner).
pub async fn user_repo(
    State(state): State<Shared>,
    Path((factory, file)): Path<(String, String)>,
    Query(q): Query<ProductionQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let caller = authenticate(&state, &headers).await?;
    caller.require(&factory, &[Scope::Owner, Scope::Ci, Scope::Read])?;
    let flavour = match q.production.as_deref() {
        None | Some("0") | Some("false") => Flavour::Ci,
        Some("1") | Some("true") => Flavour::Prod,
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid query",
                "production must be 0 or 1",
            ))
        }
    };
    let name = MetaName::parse(&file).ok_or_else(|| ApiError::not_found(file.clone()))?;
    metadata_response(&state, &factory, flavour, name, &headers, "no-store").await
}

/// `GET /repo/{f}/{ci|prod}/metadata/{file}` (public).
pub async fn device_metadata(
    State(state): State<Shared>,
    Path((factory, flavour, file)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let flavour = Flavour::parse(&flavour).ok_or_else(|| ApiError::not_found(flavour.clone()))?;
    let name = MetaName::parse(&file).ok_or_else(|| ApiError::not_found(file.clone()))?;
    // Versioned files never change, except production targets, whose online signature an
    // online-key rotation replaces; the others must be revalidated each time (ETag).
    let fixed = name.version.is_some() && !(name.role == Role::Targets && flavour == Flavour::Prod);
    let cache = if fixed {
        "public, max-age=31536000, immutable"
    } else {
        "public, no-cache"
    };
    metadata_response(&state, &factory, flavour, name, &headers, cache).await
}

async fn metadata_response(
    state: &Shared,
    factory: &str,
    flavour: Flavour,
    name: MetaName,
    headers: &HeaderMap,
    cache_control: &'static str,
) -> ApiResult<Response> {
    let key = FileKey {
        factory: factory.to_owned(),
        flavour,
        role: name.role,
        version: name.version,
    };
    let (body, etag) = match state.cache.get(&key) {
        Some(hit) => hit,
        None => {
            let generation = state.cache.generation(factory);
            let found = match name.version {
                Some(v) => repo::version(state.db.pool(), factory, flavour, name.role, v).await?,
                None => repo::head(state.db.pool(), factory, flavour, name.role)
                    .await?
                    .map(|m| (m.body, m.sha256)),
            };
            let Some((body, sha)) = found else {
                return Err(ApiError::not_found(format!(
                    "{} metadata {}{}.json of factory {factory:?}",
                    flavour.as_str(),
                    name.version.map(|v| format!("{v}.")).unwrap_or_default(),
                    name.role
                )));
            };
            let etag = HeaderValue::from_str(&format!("\"{sha}\""))
                .map_err(|_| ApiError::internal("etag"))?;
            let body = Bytes::from(body);
            state.cache.put(key, body.clone(), etag.clone(), generation);
            (body, etag)
        }
    };
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().as_bytes() == etag.as_bytes() || t.trim() == "*")
        });
    let cc = HeaderValue::from_static(cache_control);
    if matches {
        return Ok((
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, etag), (header::CACHE_CONTROL, cc)],
        )
            .into_response());
    }
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::ETAG, etag),
            (header::CACHE_CONTROL, cc),
        ],
        body,
    )
        .into_response())
}

/// `GET /repo/{f}/{ci|prod}/targets/{sha256}.{name}` (public): an artifact this Factory
/// uploaded, by hash. The name part is checked for shape only: the TUF client verifies that
/// the bytes match the target it asked for. Streamed from the store, never whole in memory;
/// a `Range` lets a device resume a large image over a poor link (it verifies length and
/// hashes at the end anyway).
pub async fn artifact(
    State(state): State<Shared>,
    Path((factory, flavour, file)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    Flavour::parse(&flavour).ok_or_else(|| ApiError::not_found(flavour.clone()))?;
    let not_found = || ApiError::not_found(file.clone());
    let (sha, name) = file.split_once('.').ok_or_else(not_found)?;
    if sha.len() != 64
        || !sha
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(not_found());
    }
    check_label("target name", name, 200).map_err(|_| not_found())?;
    let owned = sqlx::query("SELECT 1 FROM factory_artifacts WHERE factory = $1 AND sha256 = $2")
        .bind(&factory)
        .bind(sha)
        .fetch_optional(state.db.pool())
        .await?;
    if owned.is_none() {
        return Err(not_found());
    }
    let Some(length) = state.store.length(sha).await? else {
        return Err(not_found());
    };
    let range = match headers
        .get(header::RANGE)
        .map(|v| byte_range(v.as_bytes(), length))
    {
        Some(Some(Ok(r))) => Some(r),
        Some(Some(Err(()))) => return Err(unsatisfiable(length)),
        // No Range, or one we do not serve (several ranges, another unit): the whole file.
        None | Some(None) => None,
    };
    let span = range.clone().unwrap_or(0..length);
    let body = axum::body::Body::from_stream(state.store.read(sha, span.clone()).await?);
    let mut resp = body.into_response();
    if let Some(r) = &range {
        *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
        let value = format!("bytes {}-{}/{length}", r.start, r.end - 1);
        resp.headers_mut().insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&value).map_err(|_| ApiError::internal("content-range"))?,
        );
    }
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_LENGTH,
        HeaderValue::from(span.end - span.start),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    Ok(resp)
}

/// One byte range of a `Range` header (`bytes=A-B`, `bytes=A-`, `bytes=-N`) within
/// `length`: `None` when the header is not one range in bytes (served whole, as RFC 9110
/// allows), `Err` when it asks for nothing the file has (416).
fn byte_range(value: &[u8], length: u64) -> Option<Result<Range<u64>, ()>> {
    let spec = std::str::from_utf8(value)
        .ok()?
        .trim()
        .strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    let number = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let r = match (a.is_empty(), b.is_empty()) {
        (true, false) => {
            let n = number(b)?;
            if n == 0 || length == 0 {
                return Some(Err(()));
            }
            length.saturating_sub(n)..length
        }
        (false, _) => {
            let start = number(a)?;
            let last = if b.is_empty() { u64::MAX } else { number(b)? };
            if last < start {
                return None;
            }
            if start >= length {
                return Some(Err(()));
            }
            start..last.min(length - 1) + 1
        }
        (true, true) => return None,
    };
    Some(Ok(r))
}

/// 416 with the length, as our JSON error.
fn unsatisfiable(length: u64) -> ApiError {
    let mut e = ApiError::new(
        StatusCode::RANGE_NOT_SATISFIABLE,
        "range not satisfiable",
        serde_json::json!(format!("the artifact is {length} bytes")),
    );
    e.content_range = Some(length);
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_names() {
        assert_eq!(
            MetaName::parse("root.json"),
            Some(MetaName {
                role: Role::Root,
                version: None
            })
        );
        assert_eq!(
            MetaName::parse("12.snapshot.json"),
            Some(MetaName {
                role: Role::Snapshot,
                version: Some(12)
            })
        );
        for bad in [
            "0.root.json",
            "x.root.json",
            "root",
            ".root.json",
            "1.other.json",
            "-1.root.json",
            "99999999999999999999.root.json",
        ] {
            assert_eq!(MetaName::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn byte_ranges() {
        let r = |v: &str, len| byte_range(v.as_bytes(), len);
        assert_eq!(r("bytes=0-9", 100), Some(Ok(0..10)));
        assert_eq!(r("bytes=6-", 10), Some(Ok(6..10)));
        assert_eq!(r("bytes=5-500", 10), Some(Ok(5..10)));
        assert_eq!(r("bytes=-3", 10), Some(Ok(7..10)));
        assert_eq!(r("bytes=-30", 10), Some(Ok(0..10)));
        assert_eq!(r("bytes=10-", 10), Some(Err(())));
        assert_eq!(r("bytes=-0", 10), Some(Err(())));
        assert_eq!(r("bytes=0-", 0), Some(Err(())));
        for ignored in [
            "bytes=0-1,3-4",
            "items=0-1",
            "bytes=5-1",
            "bytes=a-b",
            "bytes=-",
            "bytes=+1-2",
        ] {
            assert_eq!(r(ignored, 10), None, "{ignored}");
        }
    }
}
