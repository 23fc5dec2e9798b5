//! CI targets: `POST /ota/factories/{f}/targets`. The artifact (multipart) is streamed to a
//! temporary file while hashed, within `--max-artifact-bytes`, and stored content-addressed
//! first; then one transaction locks the Factory, adds the target and publishes CI targets,
//! snapshot and timestamp signed with the online keys, within `--max-targets-bytes`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use time::OffsetDateTime;
use tokio::io::AsyncWriteExt;
use tuf_core::{Role, Signed, TargetChanges, TargetFile, Targets};

use crate::auth::{authenticate, Scope};
use crate::db::begin_locked;
use crate::error::{ApiError, ApiResult};
use crate::group::Pending;
use crate::input::{
    check_label, declared_length, from_object, parse_json, read_limited, refuse_body, Path,
    JSON_LIMIT,
};
use crate::repo::{
    current_root, edit_targets, head_info, require_head, Edited, Flavour, OnlineKeys, Signing,
    BODY_CHUNK,
};
use crate::{audit, Shared};

/// Largest `custom` object of one target, as canonical JSON: room for what builds record
/// (source URIs, container digests), not for bloating the targets metadata every CI device
/// downloads.
pub const CUSTOM_LIMIT: usize = 16 * 1024;

/// What a multipart body may carry besides the artifact: the metadata part (at most
/// [`JSON_LIMIT`]) and the part headers and boundaries.
pub const MULTIPART_ALLOWANCE: u64 = JSON_LIMIT as u64 + 64 * 1024;

/// The hash algorithms a target may list, with the length of their lowercase hex digest.
const HASHES: [(&str, usize); 2] = [("sha256", 64), ("sha512", 128)];

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
#[derive(Clone)]
struct NewTarget {
    path: String,
    file: TargetFile,
}

impl TargetRequest {
    fn validate(mut self, uploaded: Option<(u64, String)>) -> ApiResult<NewTarget> {
        self.check_labels()?;
        let hashes = match uploaded {
            Some((length, sha256)) => {
                if self.length.is_some() || self.hashes.is_some() {
                    return Err(ApiError::bad_request(
                        "invalid request",
                        "with an uploaded file, length and hashes come from the file",
                    ));
                }
                (length, BTreeMap::from([("sha256".to_owned(), sha256)]))
            }
            None => {
                let length = self.length.ok_or_else(|| {
                    ApiError::bad_request("invalid request", "length is required")
                })?;
                (
                    length,
                    check_hashes(self.hashes.take().unwrap_or_default())?,
                )
            }
        };
        let custom = check_custom(self.custom.take().unwrap_or_default())?;
        Ok(self.target(hashes, custom))
    }

    /// Name, version, hardware IDs and tags: labels of bounded length and number.
    fn check_labels(&self) -> ApiResult<()> {
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
        Ok(())
    }

    fn target(
        self,
        (length, hashes): (u64, BTreeMap<String, String>),
        mut custom: Map<String, Value>,
    ) -> NewTarget {
        // The fixed fields win over same-named user fields, so `custom` cannot lie about
        // which target this is.
        custom.insert("name".to_owned(), json!(self.name));
        custom.insert("version".to_owned(), json!(self.version));
        custom.insert("hardware_ids".to_owned(), json!(self.hardware_ids));
        custom.insert("tags".to_owned(), json!(self.tags));
        NewTarget {
            path: format!("{}-{}", self.name, self.version),
            file: TargetFile {
                length,
                hashes,
                custom: Some(Value::Object(custom)),
                extra: BTreeMap::new(),
            },
        }
    }
}

/// `hashes` of a target given by hash: `sha256` required, `sha512` allowed, each the
/// lowercase hex digest of its algorithm's length. Anything else would be signed into
/// metadata no client can check a file against.
fn check_hashes(hashes: BTreeMap<String, String>) -> ApiResult<BTreeMap<String, String>> {
    if !hashes.contains_key("sha256") {
        return Err(ApiError::bad_request(
            "invalid request",
            "hashes.sha256 is required",
        ));
    }
    for (alg, digest) in &hashes {
        let Some((_, len)) = HASHES.iter().find(|(name, _)| name == alg) else {
            return Err(ApiError::bad_request(
                "invalid hashes",
                "only sha256 and sha512 are accepted",
            ));
        };
        let hex = digest
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if digest.len() != *len || !hex {
            return Err(ApiError::bad_request(
                "invalid hashes",
                json!({"field": format!("hashes.{alg}"),
                       "reason": format!("must be {len} lowercase hex characters")}),
            ));
        }
    }
    Ok(hashes)
}

/// A target's own `custom` fields, at most [`CUSTOM_LIMIT`] bytes of canonical JSON.
fn check_custom(custom: Map<String, Value>) -> ApiResult<Map<String, Value>> {
    let value = Value::Object(custom);
    let size = tuf_core::canonical::to_vec(&value)
        .map_err(|e| ApiError::bad_request("invalid custom", e.to_string()))?
        .len();
    if size > CUSTOM_LIMIT {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "custom too large",
            json!({"field": "custom", "limit": CUSTOM_LIMIT, "size": size,
                   "reason": format!("custom is {size} bytes of canonical JSON; at most \
                                      {CUSTOM_LIMIT} are accepted")}),
        ));
    }
    let Value::Object(custom) = value else {
        return Err(ApiError::internal("custom changed shape"));
    };
    Ok(custom)
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
    let incoming = if is_multipart {
        // Before the body is read: a client that sent `Expect: 100-continue` hears the
        // refusal before it sends a byte of an artifact that is too large.
        let req = match refuse_oversized_upload(&state, &headers) {
            Ok(()) => req,
            Err(e) => return Err(refuse_body(&headers, req.into_body(), e).await),
        };
        let (meta, file) = read_multipart(&state, req).await?;
        let t = meta.validate(Some((file.length, file.sha256.clone())))?;
        Incoming {
            targets: vec![t],
            upload: Some(file),
            batch: false,
        }
    } else {
        read_json_targets(req).await?
    };
    let mut seen = BTreeSet::new();
    if let Some(t) = incoming.targets.iter().find(|t| !seen.insert(&t.path)) {
        return Err(ApiError::bad_request(
            "invalid request",
            format!("{} is given twice", t.path),
        ));
    }
    if let Some(u) = &incoming.upload {
        state.store.put(&u.sha256, &u.temp.path).await?;
    }
    let job = Job {
        actor: caller.actor.clone(),
        targets: incoming.targets,
        // The artifact is stored: what is left of the upload is its address.
        upload: incoming.upload.map(|u| (u.sha256.clone(), u.length)),
        batch: incoming.batch,
    };
    let (s, f) = (state.clone(), factory.clone());
    state
        .groups
        .run(&factory, job, move |jobs| commit_group(s, f, jobs))
        .await
}

/// One add request, waiting for the group commit of its Factory.
#[derive(Clone)]
pub struct Job {
    actor: String,
    targets: Vec<NewTarget>,
    /// The stored artifact's SHA-256 and length, for an upload.
    upload: Option<(String, u64)>,
    /// A JSON array (answered with the list of targets).
    batch: bool,
}

/// Commits the jobs queued for one Factory: together when they can be; when the group as a
/// whole fails (its targets would pass the size cap, the store refuses), each alone, so one
/// request's failure stays its own. The Factory's lock is taken before the queue: adds that
/// arrive while another replica commits to the Factory join this group instead of the next.
async fn commit_group(state: Shared, factory: String, pending: Pending<Job, Response>) {
    let tx = begin_locked(&state.db, &factory).await;
    let entries = pending.take();
    if entries.is_empty() {
        return;
    }
    let (jobs, replies): (Vec<Job>, Vec<_>) = entries.into_iter().unzip();
    let many = jobs.iter().map(|j| j.targets.len()).sum::<usize>() >= MANY_TARGETS;
    let answers = match tx {
        Ok(tx) if jobs.len() == 1 => vec![only(publish(&state, &factory, tx, jobs).await)],
        Ok(tx) => match publish(&state, &factory, tx, jobs.clone()).await {
            Ok(answers) => answers,
            Err(_) => alone(&state, &factory, jobs).await,
        },
        Err(_) => alone(&state, &factory, jobs).await,
    };
    for (reply, answer) in replies.into_iter().zip(answers) {
        // A caller that went away no longer waits for its answer.
        let _ = reply.send(answer);
    }
    if many {
        // Off the async workers: it takes every heap's lock in turn.
        tokio::task::spawn_blocking(crate::memory::release_free_pages);
    }
}

/// A group adding this many targets or more hands the memory it used back to the system
/// when done (`memory::release_free_pages`): a batch of thousands of targets allocates
/// tens of megabytes in small pieces.
const MANY_TARGETS: usize = 256;

/// Each job in a transaction of its own.
async fn alone(state: &Shared, factory: &str, jobs: Vec<Job>) -> Vec<ApiResult<Response>> {
    let mut answers = Vec::with_capacity(jobs.len());
    for job in jobs {
        answers.push(match begin_locked(&state.db, factory).await {
            Ok(tx) => only(publish(state, factory, tx, vec![job]).await),
            Err(e) => Err(e),
        });
    }
    answers
}

/// The answer of a one-job commit.
fn only(result: ApiResult<Vec<ApiResult<Response>>>) -> ApiResult<Response> {
    result?
        .pop()
        .unwrap_or_else(|| Err(ApiError::internal("no answer")))
}

/// What one request adds.
pub struct Incoming {
    targets: Vec<NewTarget>,
    upload: Option<Upload>,
    /// A JSON array (answered with the list of targets).
    batch: bool,
}

/// One target object, or an array of them, as JSON.
async fn read_json_targets(req: Request) -> ApiResult<Incoming> {
    let bytes = read_limited(req, JSON_LIMIT).await?;
    let (items, batch) = match parse_json::<Value>(&bytes)? {
        Value::Array(items) if items.is_empty() => {
            return Err(ApiError::bad_request("invalid request", "no targets given"))
        }
        Value::Array(items) => (items, true),
        v => (vec![v], false),
    };
    let mut targets = Vec::with_capacity(items.len());
    for item in items {
        targets.push(from_object::<TargetRequest>(item)?.validate(None)?);
    }
    Ok(Incoming {
        targets,
        upload: None,
        batch,
    })
}

/// Adds the targets of `jobs` not already there to the CI targets, in `tx` (which holds the
/// Factory's lock) and one new targets version. Each job gets its own answer (a conflicting target refuses its
/// request only); an `Err` means the transaction as a whole failed and nothing changed.
async fn publish(
    state: &Shared,
    factory: &str,
    mut tx: crate::db::Tx,
    jobs: Vec<Job>,
) -> ApiResult<Vec<ApiResult<Response>>> {
    let now = OffsetDateTime::now_utc();
    let root = current_root(&mut tx, factory, Flavour::Ci).await?;
    let (head_version, head_sha, stored) = stored_ci_targets(state, &mut tx, factory).await?;
    // When the server signed it first: what `targets prune --older-than` goes by.
    let created_at = json!(crate::format_time(now.unix_timestamp()));
    let expires = state.periods.expires(Role::Targets, now)?;
    let mut plans = Vec::with_capacity(jobs.len());
    let edited = edit_targets(stored, expires, |current| {
        // Each job's fresh targets, against what is there and what earlier jobs add.
        let mut adding: BTreeMap<String, TargetFile> = BTreeMap::new();
        for job in jobs {
            let fresh = fresh_targets(
                |p| match adding.get(p) {
                    Some(file) => Ok(Some(file.clone())),
                    None => Ok(current.get(p)?),
                },
                job.targets.clone(),
            );
            if let Ok(fresh) = &fresh {
                adding.extend(fresh.iter().map(|t| (t.path.clone(), t.file.clone())));
            }
            plans.push((job, fresh));
        }
        if adding.is_empty() {
            return Ok(None);
        }
        let mut changes = TargetChanges::new();
        for (_, fresh) in &mut plans {
            for t in fresh.iter_mut().flatten() {
                // Set here, like the other fixed fields, so `custom` cannot backdate a build.
                if let Some(Value::Object(custom)) = &mut t.file.custom {
                    custom.insert("created_at".to_owned(), created_at.clone());
                }
                changes.insert(t.path.clone(), Some(t.file.clone()));
            }
        }
        Ok(Some(changes))
    })?;
    let next = match edited {
        Edited::Next(next) => next,
        Edited::Unchanged(stored) => {
            keep_unchanged_ci_targets(state, factory, head_sha, stored);
            return Ok(answers(plans, head_version, StatusCode::OK));
        }
    };
    let keys = OnlineKeys::load(&mut tx, state, factory).await?;
    let signing = Signing {
        factory,
        keys: &keys,
        periods: &state.periods,
        now,
    };
    let next = signing.sign_next_targets(&root.signed, next)?;
    check_targets_len(next.body.len(), "CI", state.caps.targets_bytes)?;
    let sha = signing
        .publish_next_targets(&mut tx, Flavour::Ci, &root.signed, &next)
        .await?;
    let version = next.version;
    for (job, fresh) in &plans {
        if let Ok(fresh) = fresh {
            record_job(&mut tx, factory, signing.now_unix(), job, fresh, version).await?;
        }
    }
    // Read under the Factory's lock, which the commit gives up.
    let generation = state.cache.generation(factory).after_commit();
    tx.commit().await?;
    crate::announce::published(state, factory).await;
    // Keyed by the stored bytes' hash: if another writer publishes first, the next add
    // misses and re-reads.
    state.cache.published_targets(
        factory,
        Flavour::Ci,
        (sha, Bytes::from(next.body)),
        generation,
    );
    tracing::info!(factory = %factory, requests = plans.len(), version, "targets added");
    Ok(answers(plans, version as i64, StatusCode::CREATED))
}

/// The CI targets head of `factory` (in `tx`, which holds the Factory's lock): its version,
/// the SHA-256 of its bytes, and the bytes, kept from the last commit when they are still
/// the head (`Cache::published_targets`), else read from the store.
pub async fn stored_ci_targets(
    state: &Shared,
    tx: &mut crate::db::Tx,
    factory: &str,
) -> ApiResult<(i64, String, Bytes)> {
    let (version, sha) = head_info(tx, factory, Flavour::Ci, Role::Targets).await?;
    let stored = match state.cache.take_targets(factory, Flavour::Ci, &sha) {
        Some(bytes) => bytes,
        None => Bytes::from(
            require_head(tx, factory, Flavour::Ci, Role::Targets)
                .await?
                .body,
        ),
    };
    if stored.len() > BODY_CHUNK {
        // Not served from these bytes during the commit, so that the next version can be
        // made in their buffer (`repo::edit_targets`); a read meanwhile comes from the store.
        state.cache.forget_head(factory, Flavour::Ci, Role::Targets);
    }
    Ok((version, sha, stored))
}

/// The CI targets read by [`stored_ci_targets`] stay the head (the edit changed nothing):
/// kept, and served, as they were. Called with the Factory's lock still held, so the
/// generation as it is now is the one they belong to.
pub fn keep_unchanged_ci_targets(state: &Shared, factory: &str, sha: String, stored: Bytes) {
    let generation = state.cache.generation(factory);
    state
        .cache
        .published_targets(factory, Flavour::Ci, (sha, stored), generation);
}

/// What one job of a commit leaves in the store besides the targets: its artifact's
/// Factory row and its audit record.
async fn record_job(
    tx: &mut crate::db::Tx,
    factory: &str,
    now: i64,
    job: &Job,
    fresh: &[NewTarget],
    version: u64,
) -> ApiResult<()> {
    if let Some((sha256, length)) = &job.upload {
        sqlx::query(
            "INSERT INTO factory_artifacts (factory, sha256, length) VALUES ($1, $2, $3) \
             ON CONFLICT (factory, sha256) DO NOTHING",
        )
        .bind(factory)
        .bind(sha256)
        .bind(i64::try_from(*length).unwrap_or(i64::MAX))
        .execute(&mut **tx)
        .await?;
    }
    if fresh.is_empty() {
        return Ok(());
    }
    let added: Vec<Value> = fresh
        .iter()
        .map(|t| {
            let sha256 = t.file.hashes.get("sha256").cloned().unwrap_or_default();
            json!({"target": t.path, "sha256": sha256, "length": t.file.length})
        })
        .collect();
    audit::record(
        tx,
        factory,
        now,
        &job.actor,
        "target.add",
        json!({"targets": added, "targets_version": version,
               "uploaded": job.upload.is_some()}),
    )
    .await?;
    Ok(())
}

/// Each job's answer: its refusal, or the targets it added (`status` when it added some,
/// 200 when all were there already) and the targets version that has them.
fn answers(
    plans: Vec<(Job, ApiResult<Vec<NewTarget>>)>,
    version: i64,
    status: StatusCode,
) -> Vec<ApiResult<Response>> {
    plans
        .into_iter()
        .map(|(job, fresh)| {
            let fresh = fresh?;
            let names: Vec<String> = fresh.iter().map(|t| t.path.clone()).collect();
            let status = if fresh.is_empty() {
                StatusCode::OK
            } else {
                status
            };
            Ok((status, Json(answer(job.batch, &names, version))).into_response())
        })
        .collect()
}

/// The targets that are not in `current` yet. A CI retry of the same build (same length
/// and hashes) changes nothing; the same path with other content is a conflict.
fn fresh_targets(
    existing: impl Fn(&str) -> ApiResult<Option<TargetFile>>,
    new: Vec<NewTarget>,
) -> ApiResult<Vec<NewTarget>> {
    let mut fresh = Vec::new();
    for t in new {
        match existing(&t.path)? {
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
    Ok(fresh)
}

/// 413 when a signed targets envelope would pass the `limit` (`--max-targets-bytes`):
/// devices would refuse it, and every device of the flavour would stop updating.
pub fn check_targets_size(env: &Signed<Targets>, flavour: &str, limit: u64) -> ApiResult<()> {
    check_targets_len(env.to_bytes().len(), flavour, limit)
}

/// [`check_targets_size`] for an envelope already serialised to `len` bytes.
pub fn check_targets_len(len: usize, flavour: &str, limit: u64) -> ApiResult<()> {
    let size = len as u64;
    tuf_ceremony::limits::targets_size(flavour, size, limit).map_err(|reason| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "targets metadata too large",
            json!({"limit": limit, "size": size, "reason": reason}),
        )
    })
}

fn answer(batch: bool, names: &[String], version: i64) -> Value {
    if batch {
        json!({"targets": names, "targets_version": version})
    } else {
        json!({"target": names.first(), "targets_version": version})
    }
}

/// 413 before reading a multipart body whose `Content-Length` says it carries more than
/// `--max-artifact-bytes` of artifact.
fn refuse_oversized_upload(state: &Shared, headers: &HeaderMap) -> ApiResult<()> {
    let limit = state.caps.artifact_bytes;
    match declared_length(headers) {
        Some(len) if len > limit.saturating_add(MULTIPART_ALLOWANCE) => Err(artifact_too_large(
            limit,
            format!(
                "the upload is {len} bytes; this server accepts artifacts of at most {limit} bytes"
            ),
        )),
        _ => Ok(()),
    }
}

/// `413 artifact too large`, with the server's limit for clients to report.
fn artifact_too_large(limit: u64, reason: String) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "artifact too large",
        json!({"limit": limit, "reason": reason}),
    )
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
    while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
        match field.name() {
            Some("metadata") if meta.is_none() => meta = Some(read_metadata_part(field).await?),
            Some("file") if upload.is_none() => upload = Some(read_file_part(state, field).await?),
            Some(name @ ("metadata" | "file")) => {
                return Err(bad(format!("more than one {name} part")))
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

/// The `metadata` part: a JSON object of at most [`JSON_LIMIT`] bytes.
async fn read_metadata_part(
    mut field: axum::extract::multipart::Field<'_>,
) -> ApiResult<TargetRequest> {
    let mut buf = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        if buf.len() + chunk.len() > JSON_LIMIT {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid multipart body",
                json!(format!(
                    "the metadata part is larger than {JSON_LIMIT} bytes"
                )),
            ));
        }
        buf.extend_from_slice(&chunk);
    }
    from_object(parse_json(&buf)?)
}

/// The `file` part, streamed to a temporary file while hashed; refused once it passes
/// `--max-artifact-bytes`.
async fn read_file_part(
    state: &Shared,
    mut field: axum::extract::multipart::Field<'_>,
) -> ApiResult<Upload> {
    let limit = state.caps.artifact_bytes;
    let name = crate::repo::random_hex(16)?;
    let temp = TempFile {
        path: state
            .tmp_dir
            .join(format!("{}{}", crate::files::UPLOAD_PREFIX, name.as_str())),
    };
    let failed = |_| ApiError::internal("writing the upload failed");
    let mut out = tokio::fs::File::create(&temp.path).await.map_err(failed)?;
    let mut hasher = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut length: u64 = 0;
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        length += chunk.len() as u64;
        if length > limit {
            // Read what the client still sends (up to a bound), so it reads the answer.
            let mut more: u64 = 0;
            while let Ok(Some(c)) = field.chunk().await {
                more += c.len() as u64;
                if more > 64 * 1024 * 1024 {
                    break;
                }
            }
            return Err(artifact_too_large(
                limit,
                format!(
                    "the artifact is more than {limit} bytes; this server accepts at most {limit}"
                ),
            ));
        }
        hasher.update(&chunk);
        out.write_all(&chunk).await.map_err(failed)?;
    }
    out.sync_all().await.map_err(failed)?;
    Ok(Upload {
        temp,
        length,
        sha256: hex::encode(hasher.finish().as_ref()),
    })
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    let status = e.status();
    ApiError::new(status, "invalid multipart body", json!(e.body_text()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_of_known_algorithms_have_their_length_in_lowercase_hex() {
        let ok = |h: &[(&str, String)]| {
            check_hashes(h.iter().map(|(a, d)| (a.to_string(), d.clone())).collect())
        };
        ok(&[("sha256", "ab".repeat(32))]).unwrap();
        ok(&[("sha256", "ab".repeat(32)), ("sha512", "cd".repeat(64))]).unwrap();
        for bad in [
            vec![("sha512", "cd".repeat(64))],
            vec![("sha256", "AB".repeat(32))],
            vec![("sha256", "ab".repeat(31))],
            vec![("sha256", "ab".repeat(32)), ("sha512", "zz".into())],
            vec![("sha256", "ab".repeat(32)), ("sha512", String::new())],
            vec![("sha256", "ab".repeat(32)), ("sha512", "cd".repeat(32))],
            vec![("sha256", "ab".repeat(32)), ("md5", "cd".repeat(16))],
        ] {
            assert!(ok(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn custom_fields_are_capped() {
        let fits = Map::from_iter([("k".to_owned(), json!("x".repeat(CUSTOM_LIMIT - 10)))]);
        check_custom(fits).unwrap();
        let big = Map::from_iter([("k".to_owned(), json!("x".repeat(CUSTOM_LIMIT)))]);
        let e = check_custom(big).unwrap_err();
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(e.detail["limit"], CUSTOM_LIMIT);
    }
}
