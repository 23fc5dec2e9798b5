//! CI targets: `POST /ota/factories/{f}/targets`. The artifact (multipart) is stored
//! content-addressed first; then one transaction locks the Factory, adds the target and
//! publishes CI targets, snapshot and timestamp signed with the online keys.

use std::collections::BTreeMap;
use std::path::PathBuf;

use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use time::OffsetDateTime;
use tokio::io::AsyncWriteExt;
use tuf_core::{Role, TargetFile};

use crate::auth::{authenticate, Scope};
use crate::db::begin_locked;
use crate::error::{ApiError, ApiResult};
use crate::input::{check_label, from_object, parse_json, read_limited, Path, JSON_LIMIT};
use crate::repo::{current_root, head_info, positive, require_head, Flavour, OnlineKeys, Signing};
use crate::{audit, Shared};

/// Largest multipart upload (artifact and metadata).
pub const UPLOAD_LIMIT: usize = 1024 * 1024 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetRequest {
    name: String,
    version: String,
    hardware_ids: Vec<String>,
    #[serde(default)]
    tags: Vec<String>,
    length: Option<u64>,
    hashes: Option<BTreeMap<String, String>>,
    custom: Option<Map<String, Value>>,
}

/// A validated target, ready to be signed.
struct NewTarget {
    path: String,
    file: TargetFile,
}

impl TargetRequest {
    fn validate(self, uploaded: Option<(u64, String)>) -> ApiResult<NewTarget> {
        check_label("name", &self.name, 128)?;
        check_label("version", &self.version, 64)?;
        if self.hardware_ids.is_empty() || self.hardware_ids.len() > 64 {
            return Err(ApiError::bad_request(
                "invalid hardware_ids",
                "give between 1 and 64 hardware IDs",
            ));
        }
        for hw in &self.hardware_ids {
            check_label("hardware_ids", hw, 128)?;
        }
        if self.tags.len() > 64 {
            return Err(ApiError::bad_request("invalid tags", "at most 64 tags"));
        }
        for t in &self.tags {
            check_label("tags", t, 128)?;
        }
        let (length, sha256) = match uploaded {
            Some(u) => {
                if self.length.is_some() || self.hashes.is_some() {
                    return Err(ApiError::bad_request(
                        "invalid request",
                        "with an uploaded file, length and hashes come from the file",
                    ));
                }
                u
            }
            None => {
                let length = self.length.ok_or_else(|| {
                    ApiError::bad_request("invalid request", "length is required")
                })?;
                let sha = self
                    .hashes
                    .as_ref()
                    .and_then(|h| h.get("sha256"))
                    .ok_or_else(|| {
                        ApiError::bad_request("invalid request", "hashes.sha256 is required")
                    })?;
                if sha.len() != 64
                    || !sha
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                {
                    return Err(ApiError::bad_request(
                        "invalid hashes",
                        "hashes.sha256 must be 64 lowercase hex characters",
                    ));
                }
                if let Some(h) = &self.hashes {
                    if h.keys().any(|k| k != "sha256" && k != "sha512") {
                        return Err(ApiError::bad_request(
                            "invalid hashes",
                            "only sha256 and sha512 are accepted",
                        ));
                    }
                }
                (length, sha.clone())
            }
        };
        let mut hashes = self.hashes.unwrap_or_default();
        hashes.insert("sha256".to_owned(), sha256);
        // The fixed fields win over same-named user fields, so `custom` cannot lie about
        // which target this is.
        let mut custom = self.custom.unwrap_or_default();
        custom.insert("name".to_owned(), json!(self.name));
        custom.insert("version".to_owned(), json!(self.version));
        custom.insert("hardware_ids".to_owned(), json!(self.hardware_ids));
        custom.insert("tags".to_owned(), json!(self.tags));
        Ok(NewTarget {
            path: format!("{}-{}", self.name, self.version),
            file: TargetFile {
                length,
                hashes,
                custom: Some(Value::Object(custom)),
                extra: BTreeMap::new(),
            },
        })
    }
}

/// `POST /ota/factories/{f}/targets` (ci, owner). Besides one target (JSON or multipart),
/// a JSON array of targets adds them all in one targets version.
pub async fn add(
    State(state): State<Shared>,
    Path(factory): Path<String>,
    headers: HeaderMap,
    req: Request,
) -> ApiResult<Response> {
    let caller = authenticate(&state, &headers).await?;
    caller.require(&factory, &[Scope::Owner, Scope::Ci])?;
    let is_multipart = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let mut upload = None;
    let mut batch = false;
    let new_targets = if is_multipart {
        let (meta, file) = read_multipart(&state, req).await?;
        let t = meta.validate(Some((file.length, file.sha256.clone())))?;
        upload = Some(file);
        vec![t]
    } else {
        let bytes = read_limited(req, JSON_LIMIT).await?;
        match parse_json::<Value>(&bytes)? {
            Value::Array(items) => {
                batch = true;
                if items.is_empty() {
                    return Err(ApiError::bad_request("invalid request", "no targets given"));
                }
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(from_object::<TargetRequest>(item)?.validate(None)?);
                }
                out
            }
            v => vec![from_object::<TargetRequest>(v)?.validate(None)?],
        }
    };
    let mut seen = std::collections::BTreeSet::new();
    for t in &new_targets {
        if !seen.insert(t.path.as_str()) {
            return Err(ApiError::bad_request(
                "invalid request",
                format!("{} is given twice", t.path),
            ));
        }
    }
    if let Some(u) = &upload {
        state.store.put(&u.sha256, &u.temp.path).await?;
    }

    let now = OffsetDateTime::now_utc();
    let mut tx = begin_locked(&state.db, &factory).await?;
    let root = current_root(&mut tx, &factory, Flavour::Ci).await?;
    let (head_version, head_sha) = head_info(&mut tx, &factory, Flavour::Ci, Role::Targets).await?;
    let current = match state.cache.take_targets(&factory, Flavour::Ci, &head_sha) {
        Some(env) => env,
        None => require_head(&mut tx, &factory, Flavour::Ci, Role::Targets)
            .await?
            .parse()?,
    };
    let mut fresh = Vec::new();
    for t in new_targets {
        match current.signed.targets.get(&t.path) {
            // A CI retry of the same build changes nothing.
            Some(existing)
                if existing.length == t.file.length && existing.hashes == t.file.hashes => {}
            Some(_) => {
                return Err(ApiError::conflict(
                    "target exists",
                    format!("{} already exists with different content", t.path),
                ))
            }
            None => fresh.push(t),
        }
    }
    let names: Vec<String> = fresh.iter().map(|t| t.path.clone()).collect();
    if fresh.is_empty() {
        state
            .cache
            .keep_targets(&factory, Flavour::Ci, head_sha, current);
        return Ok((StatusCode::OK, Json(answer(batch, &names, head_version))).into_response());
    }
    let keys = OnlineKeys::load(&mut tx, &state, &factory).await?;
    let signing = Signing {
        factory: &factory,
        keys: &keys,
        periods: &state.periods,
        now,
    };
    let mut next = current.signed;
    next.version = positive(head_version)? + 1;
    next.expires = signing.expires(Role::Targets)?;
    let mut added = Vec::with_capacity(fresh.len());
    for t in fresh {
        let sha256 = t.file.hashes.get("sha256").cloned().unwrap_or_default();
        added.push(json!({"target": t.path, "sha256": sha256, "length": t.file.length}));
        next.targets.insert(t.path, t.file);
    }
    let (env, sha) = signing
        .publish_targets(&mut tx, Flavour::Ci, &root.signed, next)
        .await?;
    let version = env.signed.version;
    signing
        .refresh_snapshot(&mut tx, Flavour::Ci, &root.signed)
        .await?;
    if let Some(u) = &upload {
        sqlx::query(
            "INSERT INTO factory_artifacts (factory, sha256, length) VALUES ($1, $2, $3) \
             ON CONFLICT (factory, sha256) DO NOTHING",
        )
        .bind(&factory)
        .bind(&u.sha256)
        .bind(i64::try_from(u.length).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?;
    }
    audit::record(
        &mut tx,
        &factory,
        signing.now_unix(),
        &caller.actor,
        "target.add",
        json!({"targets": added, "targets_version": version, "uploaded": upload.is_some()}),
    )
    .await?;
    tx.commit().await?;
    state.cache.published();
    // Keyed by the stored bytes' hash: if another writer publishes first, the next add
    // misses and re-reads.
    state.cache.keep_targets(&factory, Flavour::Ci, sha, env);
    tracing::info!(factory = %factory, targets = ?names, version, "targets added");
    Ok((
        StatusCode::CREATED,
        Json(answer(batch, &names, version as i64)),
    )
        .into_response())
}

fn answer(batch: bool, names: &[String], version: i64) -> Value {
    if batch {
        json!({"targets": names, "targets_version": version})
    } else {
        json!({"target": names.first(), "targets_version": version})
    }
}

struct Upload {
    temp: TempFile,
    length: u64,
    sha256: String,
}

/// Removes an upload that never reached the store.
struct TempFile {
    path: PathBuf,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        // After a successful `put` the file was renamed away and this fails harmlessly.
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn read_multipart(state: &Shared, req: Request) -> ApiResult<(TargetRequest, Upload)> {
    let bad = |detail: String| ApiError::bad_request("invalid multipart body", detail);
    let mut multipart = Multipart::from_request(req, &())
        .await
        .map_err(|e| bad(e.body_text()))?;
    let mut meta: Option<TargetRequest> = None;
    let mut upload: Option<Upload> = None;
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        match field.name() {
            Some("metadata") => {
                if meta.is_some() {
                    return Err(bad("more than one metadata part".into()));
                }
                let mut buf = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                    if buf.len() + chunk.len() > JSON_LIMIT {
                        return Err(bad("the metadata part is larger than 1 MiB".into()));
                    }
                    buf.extend_from_slice(&chunk);
                }
                let value = tuf_core::canonical::parse(&buf)
                    .map_err(|e| ApiError::bad_request("malformed JSON", e.to_string()))?;
                meta = Some(from_object(value)?);
            }
            Some("file") => {
                if upload.is_some() {
                    return Err(bad("more than one file part".into()));
                }
                let name = crate::repo::random_hex(16)?;
                let temp = TempFile {
                    path: state.tmp_dir.join(format!("upload-{}", name.as_str())),
                };
                let mut out = tokio::fs::File::create(&temp.path)
                    .await
                    .map_err(|_| ApiError::internal("cannot create upload file"))?;
                let mut hasher = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
                let mut length: u64 = 0;
                while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                    hasher.update(&chunk);
                    length += chunk.len() as u64;
                    out.write_all(&chunk)
                        .await
                        .map_err(|_| ApiError::internal("writing the upload failed"))?;
                }
                out.sync_all()
                    .await
                    .map_err(|_| ApiError::internal("writing the upload failed"))?;
                upload = Some(Upload {
                    temp,
                    length,
                    sha256: hex::encode(hasher.finish().as_ref()),
                });
            }
            other => {
                return Err(bad(format!(
                    "unexpected part {:?}: send `metadata` and `file`",
                    other.unwrap_or("")
                )))
            }
        }
    }
    match (meta, upload) {
        (Some(m), Some(u)) => Ok((m, u)),
        _ => Err(bad(
            "both a `metadata` and a `file` part are required".into()
        )),
    }
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    let status = e.status();
    ApiError::new(status, "invalid multipart body", json!(e.body_text()))
}
