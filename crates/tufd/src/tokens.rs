//! A Factory's tokens (owner): `POST /ota/factories/{f}/tokens` creates one (e.g. `read`
//! tokens for dashboards or extra `ci` tokens; the secret is shown once, only its hash is
//! stored), `GET` lists them without secrets, `DELETE .../tokens/{id}` revokes one and
//! `POST .../tokens/revoke-all` revokes all of them at once.
//!
//! A token's ID is the first 12 hex digits of its SHA-256 hash, the same label the audit log
//! records as the actor (`owner:<id>`). Revocation deletes the row; every request looks its
//! token up in the database (no in-process cache), so a revoked token fails at once on every
//! replica.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::Row;

use crate::audit::Page;
use crate::auth::{authenticate, insert_token, token_id, Caller, Scope};
use crate::db::{begin_locked, now, require_factory};
use crate::error::{ApiError, ApiResult};
use crate::input::{JsonBody, Path, Query};
use crate::repo::random_hex;
use crate::{audit, Shared};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    scope: String,
}

pub async fn create(
    State(state): State<Shared>,
    Path(factory): Path<String>,
    headers: HeaderMap,
    body: JsonBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let caller = authenticate(&state, &headers).await?;
    caller.require(&factory, &[Scope::Owner])?;
    let req: NewToken = body.parse()?;
    let scope = match Scope::parse(&req.scope) {
        Some(s @ (Scope::Owner | Scope::Ci | Scope::Read)) => s,
        _ => {
            return Err(ApiError::bad_request(
                "invalid scope",
                "scope is one of owner, ci, read",
            ))
        }
    };
    let token = random_hex(32)?;
    let mut tx = begin_locked(&state.db, &factory).await?;
    insert_token(&mut tx, &token, Some(&factory), scope).await?;
    audit::record(
        &mut tx,
        &factory,
        now(),
        &caller.actor,
        "token.create",
        json!({"scope": scope.as_str(), "id": token_id(&crate::auth::token_hash(&token)),
               "token": format!("{}:{}", scope.as_str(), token_id(&crate::auth::token_hash(&token)))}),
    )
    .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"token": token.as_str(), "scope": scope.as_str(),
                    "id": token_id(&crate::auth::token_hash(&token))})),
    ))
}

/// Where a page of tokens starts: after the token created at `created_at` with `id`
/// (`"{created_at}.{id}"`, as `next` gives it).
pub struct Cursor {
    created_at: i64,
    id: String,
}

impl<'de> Deserialize<'de> for Cursor {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let bad = || serde::de::Error::custom("before is CREATED_AT.ID, as `next` gives it");
        let (at, id) = text.split_once('.').ok_or_else(bad)?;
        let created_at = at.parse().map_err(|_| bad())?;
        if id.len() != ID_LEN || !id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(bad());
        }
        Ok(Self {
            created_at,
            id: id.to_owned(),
        })
    }
}

/// `GET /ota/factories/{f}/tokens[?before=CURSOR&limit=N]` (owner): `{"tokens": [{"id",
/// "scope", "created_at", "current"}], "next", "current"}`, newest first; `next` is the
/// cursor of the following page (null on the last), `current` the caller's own token
/// wherever it is listed (null for the admin). Never a secret (the server has none).
pub async fn list(
    State(state): State<Shared>,
    Path(factory): Path<String>,
    Query(page): Query<Page<Cursor>>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let caller = authenticate(&state, &headers).await?;
    caller.require(&factory, &[Scope::Owner])?;
    require_factory(&state.db, &factory).await?;
    let size = page.size()?;
    // A hash below the cursor's ID sorts after the cursor's token (its hash starts with
    // the ID and is longer), so the cursor's token itself is never listed twice.
    let (at, id) = page
        .before
        .map_or((i64::MAX, String::new()), |c| (c.created_at, c.id));
    let rows = sqlx::query(
        "SELECT hash, scope, created_at FROM tokens WHERE factory = $1 \
         AND (created_at < $2 OR (created_at = $2 AND ($3 = '' OR hash < $3))) \
         ORDER BY created_at DESC, hash DESC LIMIT $4",
    )
    .bind(&factory)
    .bind(at)
    .bind(&id)
    .bind(i64::from(size) + 1)
    .fetch_all(state.db.pool())
    .await?;
    let more = rows.len() > size as usize;
    let mut tokens = Vec::with_capacity(rows.len());
    let mut next = Value::Null;
    for r in rows.into_iter().take(size as usize) {
        let hash: String = r.try_get(0)?;
        let scope: String = r.try_get(1)?;
        let created: i64 = r.try_get(2)?;
        next = json!(format!("{created}.{}", token_id(&hash)));
        tokens.push(json!({
            "id": token_id(&hash),
            "scope": scope,
            "created_at": crate::format_time(created),
            "current": caller.hash == hash,
        }));
    }
    if !more {
        next = Value::Null;
    }
    let current = match caller.factory.as_deref() == Some(factory.as_str()) {
        true => json!({"id": token_id(&caller.hash), "scope": caller.scope.as_str()}),
        false => Value::Null,
    };
    Ok(Json(
        json!({ "tokens": tokens, "next": next, "current": current }),
    ))
}

/// `DELETE /ota/factories/{f}/tokens/{id}` (owner): revokes one token.
pub async fn revoke(
    State(state): State<Shared>,
    Path((factory, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let caller = authenticate(&state, &headers).await?;
    caller.require(&factory, &[Scope::Owner])?;
    if id.len() != ID_LEN || !id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(ApiError::bad_request(
            "invalid token id",
            "a token id is 12 lowercase hex digits, as `GET .../tokens` lists them",
        ));
    }
    let mut tx = begin_locked(&state.db, &factory).await?;
    let rows = sqlx::query("SELECT hash, scope FROM tokens WHERE factory = $1")
        .bind(&factory)
        .fetch_all(&mut *tx)
        .await?;
    let mut matching = Vec::new();
    for r in rows {
        let hash: String = r.try_get(0)?;
        let scope: String = r.try_get(1)?;
        if token_id(&hash) == id {
            matching.push((hash, scope));
        }
    }
    let (hash, scope) = match matching.len() {
        0 => return Err(ApiError::not_found(format!("token {id}"))),
        1 => matching.swap_remove(0),
        _ => {
            return Err(ApiError::conflict(
                "ambiguous token id",
                "several tokens share this id; revoke them with `revoke-all`",
            ))
        }
    };
    sqlx::query("DELETE FROM tokens WHERE factory = $1 AND hash = $2")
        .bind(&factory)
        .bind(&hash)
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut tx,
        &factory,
        now(),
        &caller.actor,
        "token.revoke",
        json!({"id": id, "scope": scope, "own_token": caller.hash == hash}),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(json!({"revoked": [id], "scope": scope})))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RevokeAll {
    /// Keep the token making this request (it is revoked too by default: after a leak the
    /// caller's token may be the leaked one).
    #[serde(default)]
    keep_current: bool,
}

/// `POST /ota/factories/{f}/tokens/revoke-all` `{"keep_current": false}` (owner): revokes
/// every token of the Factory in one transaction. With the caller's own token revoked, the
/// server admin creates a new owner token (`POST .../tokens` with the admin token).
pub async fn revoke_all(
    State(state): State<Shared>,
    Path(factory): Path<String>,
    headers: HeaderMap,
    body: JsonBody,
) -> ApiResult<Json<Value>> {
    let caller = authenticate(&state, &headers).await?;
    caller.require(&factory, &[Scope::Owner])?;
    let req: RevokeAll = body.parse_or_default()?;
    let mut tx = begin_locked(&state.db, &factory).await?;
    let keep = revoke_all_except(&mut tx, &factory, &caller, req.keep_current).await?;
    tx.commit().await?;
    Ok(Json(json!({"revoked": keep.0, "kept": keep.1})))
}

/// Deletes the Factory's tokens (all, or all but the caller's) and records it; returns the
/// revoked IDs and the kept one.
async fn revoke_all_except(
    tx: &mut crate::db::Tx,
    factory: &str,
    caller: &Caller,
    keep_current: bool,
) -> ApiResult<(Vec<String>, Option<String>)> {
    let rows = sqlx::query("SELECT hash FROM tokens WHERE factory = $1 ORDER BY created_at, hash")
        .bind(factory)
        .fetch_all(&mut **tx)
        .await?;
    let kept =
        (keep_current && caller.factory.as_deref() == Some(factory)).then(|| caller.hash.clone());
    let mut revoked = Vec::new();
    for r in rows {
        let hash: String = r.try_get(0)?;
        if kept.as_deref() != Some(hash.as_str()) {
            revoked.push(token_id(&hash));
        }
    }
    match &kept {
        Some(h) => {
            sqlx::query("DELETE FROM tokens WHERE factory = $1 AND hash <> $2")
                .bind(factory)
                .bind(h)
                .execute(&mut **tx)
                .await?
        }
        None => {
            sqlx::query("DELETE FROM tokens WHERE factory = $1")
                .bind(factory)
                .execute(&mut **tx)
                .await?
        }
    };
    let kept_id = kept.as_deref().map(token_id);
    audit::record(
        tx,
        factory,
        now(),
        &caller.actor,
        "token.revoke_all",
        json!({"revoked": revoked, "kept": kept_id}),
    )
    .await?;
    Ok((revoked, kept_id))
}

/// Length of a token ID (hex digits of the hash).
const ID_LEN: usize = 12;
