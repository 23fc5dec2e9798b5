//! Waves: production releases. The owner proposes production targets signed offline; the
//! server verifies them against the production root, adds its online signature and keeps
//! the wave `active`; `complete` publishes it as the production targets and re-signs the
//! production snapshot and timestamp in one transaction.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use sqlx::Row;
use time::OffsetDateTime;
use tuf_ceremony::wave::{self, Retire, Wave};
use tuf_ceremony::Refusal;
use tuf_core::{Role, Root, Signed, TargetFile, Targets};

use crate::auth::{authenticate, Scope};
use crate::db::{begin_locked, require_factory, Tx};
use crate::error::{ApiError, ApiResult};
use crate::input::{check_label, JsonBody, Path, Query, SIGNED_TARGETS_LIMIT};
use crate::repo::{current_root, require_head, store_signed, Flavour, OnlineKeys, Signing};
use crate::{audit, Shared};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateWave<'a> {
    name: String,
    version: String,
    tag: String,
    /// The signed production targets, as received (parsed by `Signed::from_slice`).
    #[serde(borrow)]
    targets: &'a RawValue,
    /// The production targets the wave retires (what it drops from the current ones).
    #[serde(default)]
    retire: Retire,
}

impl CreateWave<'_> {
    /// Labels of bounded length, at most [`MAX_RETIREMENTS`] retirement rules.
    fn check(&self) -> ApiResult<()> {
        check_label("wave name", &self.name, 64)?;
        check_label("version", &self.version, 64)?;
        check_label("tag", &self.tag, 64)?;
        let r = &self.retire;
        if r.versions.len() + r.targets.len() > MAX_RETIREMENTS {
            return Err(ApiError::bad_request(
                "invalid retire",
                format!("at most {MAX_RETIREMENTS} versions and targets to retire"),
            ));
        }
        for v in &r.versions {
            check_label("retire.versions", v, 64)?;
        }
        for t in &r.targets {
            check_label("retire.targets", t, 200)?;
        }
        Ok(())
    }
}

/// How many versions and target paths one wave may retire by name.
const MAX_RETIREMENTS: usize = 1000;

/// `POST /ota/factories/{f}/waves` (owner).
pub async fn create(
    State(state): State<Shared>,
    Path(factory): Path<String>,
    headers: HeaderMap,
    body: JsonBody<SIGNED_TARGETS_LIMIT>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let caller = authenticate(&state, &headers).await?;
    caller.require(&factory, &[Scope::Owner])?;
    let req: CreateWave = body.parse_borrowed()?;
    req.check()?;
    let proposed = parse_targets(req.targets)?;
    let now = OffsetDateTime::now_utc();
    let mut tx = begin_locked(&state.db, &factory).await?;
    if wave_status(&mut tx, &factory, &req.name).await?.is_some() {
        return Err(ApiError::conflict(
            "wave exists",
            format!("a wave named {:?} already exists", req.name),
        ));
    }
    refuse_if_active(&mut tx, &factory, "first").await?;
    let root = current_root(&mut tx, &factory, Flavour::Prod).await?;
    let keys = OnlineKeys::load(&mut tx, &state, &factory).await?;
    let ci_root = current_root(&mut tx, &factory, Flavour::Ci).await?;
    let ci_targets: Signed<Targets> = require_head(&mut tx, &factory, Flavour::Ci, Role::Targets)
        .await?
        .parse()?;
    let current: Signed<Targets> = require_head(&mut tx, &factory, Flavour::Prod, Role::Targets)
        .await?
        .parse()?;
    Wave {
        version: &req.version,
        tag: &req.tag,
        ci_root: &ci_root.signed,
        prod_root: &root.signed,
        ci_targets: &ci_targets,
        current: &current,
        proposed: &proposed.signed,
        retire: &req.retire,
        now,
    }
    .check()
    .into_result()
    .map_err(|r| rejected("wave rejected", r))?;
    let signed = countersign(&root.signed, &keys, proposed)?;
    crate::targets::check_targets_size(&signed, "production", state.caps.targets_bytes)?;
    let changes = changes(&current.signed, &signed.signed);
    let version = signed.signed.version;
    insert_wave(
        &mut tx,
        &factory,
        &caller.actor,
        &req,
        &signed,
        changes,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(
            json!({"name": req.name, "version": req.version, "tag": req.tag,
                    "status": "active", "targets_version": version,
                    "created_at": crate::format_time(now.unix_timestamp())}),
        ),
    ))
}

/// Stores a countersigned wave as `active`, with its audit record.
async fn insert_wave(
    tx: &mut Tx,
    factory: &str,
    actor: &str,
    req: &CreateWave<'_>,
    signed: &Signed<Targets>,
    (changed, retired): (Vec<String>, Vec<String>),
    now: OffsetDateTime,
) -> ApiResult<()> {
    let version = signed.signed.version;
    sqlx::query(
        "INSERT INTO waves (factory, name, version, tag, status, targets_version, body, created_at) \
         VALUES ($1, $2, $3, $4, 'active', $5, $6, $7)",
    )
    .bind(factory)
    .bind(&req.name)
    .bind(&req.version)
    .bind(&req.tag)
    .bind(i64::try_from(version).unwrap_or(i64::MAX))
    .bind(signed.to_bytes())
    .bind(now.unix_timestamp())
    .execute(&mut **tx)
    .await?;
    audit::record(
        tx,
        factory,
        now.unix_timestamp(),
        actor,
        "wave.create",
        json!({"wave": req.name, "version": req.version, "tag": req.tag,
               "targets_version": version, "targets": changed, "retired": retired,
               "retire": req.retire}),
    )
    .await?;
    Ok(())
}

/// What a wave changes: the paths it adds or updates, and the paths it retires (what the
/// audit records: not the whole list, which may hold 100,000 targets).
fn changes(cur: &Targets, new: &Targets) -> (Vec<String>, Vec<String>) {
    let changed = new
        .targets
        .iter()
        .filter(|(p, t)| cur.targets.get(*p) != Some(*t))
        .map(|(p, _)| p.clone())
        .collect();
    let retired = cur
        .targets
        .keys()
        .filter(|p| !new.targets.contains_key(*p))
        .cloned()
        .collect();
    (changed, retired)
}

/// Adds the server's online signature to proposed production targets that carry a valid
/// signature of an offline targets key (`signatures`), and checks they then meet the
/// production threshold.
fn countersign(
    root: &Root,
    keys: &OnlineKeys,
    mut proposed: Signed<Targets>,
) -> ApiResult<Signed<Targets>> {
    wave::offline_signature(&proposed, root, &keys.server_keys())
        .map_err(|r| rejected("wave rejected", r))?;
    for k in keys.signers(root, Role::Targets) {
        proposed.sign(k)?;
    }
    let role = root.role(Role::Targets);
    let v = proposed.verify_role("targets", role, &root.keys);
    if !v.is_met() {
        return Err(ApiError::unprocessable(
            "wave rejected",
            json!({"check": "signatures", "reason": format!(
                "{} of {} required targets signatures with the online one added",
                v.distinct_valid, v.threshold)}),
        ));
    }
    Ok(proposed)
}

/// A refused proposal: 422 naming the check.
fn rejected(error: &str, r: Refusal) -> ApiError {
    ApiError::unprocessable(error, json!({"check": r.check.name(), "reason": r.reason}))
}

/// `POST /ota/factories/{f}/waves/{w}/complete` (owner).
pub async fn complete(
    State(state): State<Shared>,
    Path((factory, wave)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let caller = authenticate(&state, &headers).await?;
    caller.require(&factory, &[Scope::Owner])?;
    let now = OffsetDateTime::now_utc();
    let mut tx = begin_locked(&state.db, &factory).await?;
    require_active(&mut tx, &factory, &wave).await?;
    let row = sqlx::query("SELECT body FROM waves WHERE factory = $1 AND name = $2")
        .bind(&factory)
        .bind(&wave)
        .fetch_one(&mut *tx)
        .await?;
    let body: Vec<u8> = row.try_get(0)?;
    let env = Signed::<Targets>::from_slice(&body)?;
    // The production root or targets may have moved since the wave was created (a root
    // update); publish only what the current root still accepts as the next version.
    let root = current_root(&mut tx, &factory, Flavour::Prod).await?;
    let head = require_head(&mut tx, &factory, Flavour::Prod, Role::Targets).await?;
    let r = &root.signed;
    if env.signed.version != u64::try_from(head.version).unwrap_or(0) + 1
        || !env
            .verify_role("targets", r.role(Role::Targets), &r.keys)
            .is_met()
    {
        return Err(ApiError::conflict(
            "wave stale",
            "production targets or root changed since this wave was created; cancel it and create a new one",
        ));
    }
    let keys = OnlineKeys::load(&mut tx, &state, &factory).await?;
    publish_production(&mut tx, &state, &factory, r, &keys, &env, now).await?;
    set_status(&mut tx, &factory, &wave, "complete").await?;
    audit::record(
        &mut tx,
        &factory,
        now.unix_timestamp(),
        &caller.actor,
        "wave.complete",
        json!({"wave": wave, "targets_version": env.signed.version}),
    )
    .await?;
    tx.commit().await?;
    crate::announce::published(&state, &factory).await;
    Ok(Json(
        json!({"name": wave, "status": "complete", "targets_version": env.signed.version}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResignWave<'a> {
    #[serde(borrow)]
    targets: &'a RawValue,
}

/// `POST /ota/factories/{f}/waves/{w}/resign` (owner): renews the production targets of the
/// wave in production. The proposal must be the current production targets with version + 1
/// and a new expiry, nothing else changed, signed by an offline targets key; the server
/// countersigns it, publishes it and re-signs production snapshot and timestamp.
pub async fn resign(
    State(state): State<Shared>,
    Path((factory, wave)): Path<(String, String)>,
    headers: HeaderMap,
    body: JsonBody<SIGNED_TARGETS_LIMIT>,
) -> ApiResult<Json<Value>> {
    let caller = authenticate(&state, &headers).await?;
    caller.require(&factory, &[Scope::Owner])?;
    let req: ResignWave = body.parse_borrowed()?;
    let proposed = parse_targets(req.targets)?;
    let now = OffsetDateTime::now_utc();
    let mut tx = begin_locked(&state.db, &factory).await?;
    match wave_status(&mut tx, &factory, &wave).await?.as_deref() {
        None => return Err(ApiError::not_found(format!("wave {wave:?}"))),
        Some("complete") => {}
        Some(other) => {
            return Err(ApiError::conflict(
                "wave not in production",
                format!("wave {wave:?} is {other}; only a completed wave can be re-signed"),
            ))
        }
    }
    refuse_if_active(&mut tx, &factory, "first").await?;
    // The wave in production is the last one completed, and the production targets still
    // list what it published (a root update may have re-signed them, never changed them).
    let latest = sqlx::query(
        "SELECT name, body FROM waves WHERE factory = $1 AND status = 'complete' \
         ORDER BY targets_version DESC, created_at DESC LIMIT 1",
    )
    .bind(&factory)
    .fetch_one(&mut *tx)
    .await?;
    let latest_name: String = latest.try_get(0)?;
    let published: Vec<u8> = latest.try_get(1)?;
    let head = require_head(&mut tx, &factory, Flavour::Prod, Role::Targets).await?;
    let current: Signed<Targets> = head.parse()?;
    let wave_targets = Signed::<Targets>::from_slice(&published)?;
    if latest_name != wave || wave_targets.signed.targets != current.signed.targets {
        return Err(ApiError::conflict(
            "wave not in production",
            format!(
                "wave {wave:?} is not the one in production (the last completed wave is \
                 {latest_name:?})"
            ),
        ));
    }
    // Nothing but version and expiry may change.
    wave::renewal(&proposed, &current.signed, now)
        .into_result()
        .map_err(|r| rejected("resign rejected", r))?;
    let root = current_root(&mut tx, &factory, Flavour::Prod).await?;
    let keys = OnlineKeys::load(&mut tx, &state, &factory).await?;
    let signed = countersign(&root.signed, &keys, proposed)?;
    publish_production(&mut tx, &state, &factory, &root.signed, &keys, &signed, now).await?;
    let version = signed.signed.version;
    sqlx::query(
        "UPDATE waves SET targets_version = $1, body = $2 WHERE factory = $3 AND name = $4",
    )
    .bind(i64::try_from(version).unwrap_or(i64::MAX))
    .bind(signed.to_bytes())
    .bind(&factory)
    .bind(&wave)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        &factory,
        now.unix_timestamp(),
        &caller.actor,
        "wave.resign",
        json!({"wave": wave, "targets_version": version,
               "expires": signed.signed.expires.to_string()}),
    )
    .await?;
    tx.commit().await?;
    crate::announce::published(&state, &factory).await;
    Ok(Json(
        json!({"name": wave, "status": "complete", "targets_version": version,
                   "expires": signed.signed.expires.to_string()}),
    ))
}

/// `POST /ota/factories/{f}/waves/{w}/cancel` (owner).
pub async fn cancel(
    State(state): State<Shared>,
    Path((factory, wave)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let caller = authenticate(&state, &headers).await?;
    caller.require(&factory, &[Scope::Owner])?;
    let mut tx = begin_locked(&state.db, &factory).await?;
    require_active(&mut tx, &factory, &wave).await?;
    set_status(&mut tx, &factory, &wave, "cancelled").await?;
    audit::record(
        &mut tx,
        &factory,
        crate::db::now(),
        &caller.actor,
        "wave.cancel",
        json!({"wave": wave}),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(json!({"name": wave, "status": "cancelled"})))
}

/// `GET /ota/factories/{f}/waves` (owner).
pub async fn list(
    State(state): State<Shared>,
    Path(factory): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let caller = authenticate(&state, &headers).await?;
    caller.require(&factory, &[Scope::Owner])?;
    require_factory(&state.db, &factory).await?;
    let rows = sqlx::query(
        "SELECT name, version, tag, status, targets_version, created_at FROM waves \
         WHERE factory = $1 ORDER BY created_at, name",
    )
    .bind(&factory)
    .fetch_all(state.db.pool())
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(json!({
            "name": r.try_get::<String, _>(0)?,
            "version": r.try_get::<String, _>(1)?,
            "tag": r.try_get::<String, _>(2)?,
            "status": r.try_get::<String, _>(3)?,
            "targets_version": r.try_get::<i64, _>(4)?,
            "created_at": crate::format_time(r.try_get::<i64, _>(5)?),
        }));
    }
    Ok(Json(Value::Array(out)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaveFilter {
    hardware_id: Option<String>,
    tag: Option<String>,
}

/// `GET /ota/factories/{f}/waves/{w}[?hardware_id=H&tag=T]` (owner): one wave with its
/// production targets (only those with hardware ID `H` and tag `T` when given) and `new`, the
/// targets it adds or changes compared with the last wave completed before it.
pub async fn show(
    State(state): State<Shared>,
    Path((factory, wave)): Path<(String, String)>,
    Query(filter): Query<WaveFilter>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let caller = authenticate(&state, &headers).await?;
    caller.require(&factory, &[Scope::Owner])?;
    require_factory(&state.db, &factory).await?;
    for (field, v) in [("hardware_id", &filter.hardware_id), ("tag", &filter.tag)] {
        if let Some(v) = v {
            check_label(field, v, 128)?;
        }
    }
    let row = sqlx::query(
        "SELECT name, version, tag, status, targets_version, created_at, body FROM waves \
         WHERE factory = $1 AND name = $2",
    )
    .bind(&factory)
    .bind(&wave)
    .fetch_optional(state.db.pool())
    .await?
    .ok_or_else(|| ApiError::not_found(format!("wave {wave:?}")))?;
    let created_at: i64 = row.try_get(5)?;
    let body: Vec<u8> = row.try_get(6)?;
    let env = Signed::<Targets>::from_slice(&body)?;
    let before = previous_complete(&state, &factory, &wave, created_at).await?;
    let (targets, new) = wave_targets(&env.signed, before.as_ref(), &filter);
    Ok(Json(json!({
        "name": row.try_get::<String, _>(0)?,
        "version": row.try_get::<String, _>(1)?,
        "tag": row.try_get::<String, _>(2)?,
        "status": row.try_get::<String, _>(3)?,
        "targets_version": row.try_get::<i64, _>(4)?,
        "created_at": crate::format_time(created_at),
        "expires": env.signed.expires.to_string(),
        "total": env.signed.targets.len(),
        "targets": targets,
        "new": new,
    })))
}

/// The production targets of the last wave completed before the one created at `created_at`.
async fn previous_complete(
    state: &Shared,
    factory: &str,
    wave: &str,
    created_at: i64,
) -> ApiResult<Option<Targets>> {
    let row = sqlx::query(
        "SELECT body FROM waves WHERE factory = $1 AND status = 'complete' AND name <> $2 \
         AND created_at <= $3 ORDER BY created_at DESC, targets_version DESC LIMIT 1",
    )
    .bind(factory)
    .bind(wave)
    .bind(created_at)
    .fetch_optional(state.db.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let body: Vec<u8> = row.try_get(0)?;
    Ok(Some(Signed::<Targets>::from_slice(&body)?.signed))
}

/// The wave's targets that pass `filter`, and the paths among them that `before` did not
/// list with the same entry.
fn wave_targets(
    wave: &Targets,
    before: Option<&Targets>,
    filter: &WaveFilter,
) -> (serde_json::Map<String, Value>, Vec<String>) {
    let listed = |t: &TargetFile, field: &str, want: &Option<String>| {
        want.as_ref().is_none_or(|w| {
            t.custom
                .as_ref()
                .and_then(|c| c.get(field))
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|v| v.as_str() == Some(w)))
        })
    };
    let mut targets = serde_json::Map::new();
    let mut new = Vec::new();
    for (path, t) in &wave.targets {
        if !listed(t, "hardware_ids", &filter.hardware_id) || !listed(t, "tags", &filter.tag) {
            continue;
        }
        if before.is_none_or(|b| b.targets.get(path) != Some(t)) {
            new.push(path.clone());
        }
        targets.insert(path.clone(), json!(t));
    }
    (targets, new)
}

/// The proposed targets of a request, parsed once here.
fn parse_targets(targets: &RawValue) -> ApiResult<Signed<Targets>> {
    Signed::<Targets>::from_slice(targets.get().as_bytes())
        .map_err(|e| ApiError::bad_request("invalid targets", e.to_string()))
}

/// One wave at a time: refused while another wave is active.
pub async fn refuse_if_active(tx: &mut Tx, factory: &str, before: &str) -> ApiResult<()> {
    let active = sqlx::query("SELECT name FROM waves WHERE factory = $1 AND status = 'active'")
        .bind(factory)
        .fetch_optional(&mut **tx)
        .await?;
    if let Some(r) = active {
        let name: String = r.try_get(0)?;
        return Err(ApiError::conflict(
            "wave active",
            format!("wave {name:?} is in progress; complete or cancel it {before}"),
        ));
    }
    Ok(())
}

/// Publishes `targets` (checked and countersigned under `root`) as the production targets
/// and re-signs production snapshot and timestamp, in the caller's transaction.
async fn publish_production(
    tx: &mut Tx,
    state: &Shared,
    factory: &str,
    root: &Root,
    keys: &OnlineKeys,
    targets: &Signed<Targets>,
    now: OffsetDateTime,
) -> ApiResult<()> {
    store_signed(
        tx,
        factory,
        Flavour::Prod,
        Role::Targets,
        targets,
        now.unix_timestamp(),
    )
    .await?;
    let signing = Signing {
        factory,
        keys,
        periods: &state.periods,
        now,
    };
    signing.refresh_snapshot(tx, Flavour::Prod, root).await
}

async fn wave_status(tx: &mut Tx, factory: &str, wave: &str) -> ApiResult<Option<String>> {
    let row = sqlx::query("SELECT status FROM waves WHERE factory = $1 AND name = $2")
        .bind(factory)
        .bind(wave)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.map(|r| r.try_get(0)).transpose()?)
}

async fn require_active(tx: &mut Tx, factory: &str, wave: &str) -> ApiResult<()> {
    match wave_status(tx, factory, wave).await?.as_deref() {
        None => Err(ApiError::not_found(format!("wave {wave:?}"))),
        Some("active") => Ok(()),
        Some(other) => Err(ApiError::conflict(
            "wave not active",
            format!("wave {wave:?} is {other}"),
        )),
    }
}

async fn set_status(tx: &mut Tx, factory: &str, wave: &str, status: &str) -> ApiResult<()> {
    sqlx::query("UPDATE waves SET status = $1 WHERE factory = $2 AND name = $3")
        .bind(status)
        .bind(factory)
        .bind(wave)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
