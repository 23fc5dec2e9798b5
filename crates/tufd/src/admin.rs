//! Server-wide tokens: `admin` (everything) and `metrics` (reads `/metrics` only).
//!
//! `POST /ota/tokens` creates one, `GET /ota/tokens` lists them, `DELETE /ota/tokens/{id}`
//! retires one (never the last admin token: nobody could create Factories or tokens any
//! more). An admin token is rotated by creating a new one, switching to it, and retiring the
//! old one with the new. The admin token given in `TUFD_ADMIN_TOKEN` is recorded as such: a
//! start with a different value retires the previous one, so changing the variable and
//! restarting is a rotation too.

use std::path::Path;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::Row;
use zeroize::Zeroizing;

use crate::auth::{authenticate, token_hash, token_id, Caller, Scope};
use crate::db::{now, Db};
use crate::error::{ApiError, ApiResult};
use crate::input::{JsonBody, Path as UrlPath};
use crate::repo::random_hex;
use crate::Shared;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    scope: String,
}

/// `POST /ota/tokens` `{"scope": "admin"|"metrics"}` (admin) → `201 {"token", "scope", "id"}`.
pub async fn create(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: JsonBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let caller = require_admin(&state, &headers).await?;
    let req: NewToken = body.parse()?;
    let scope = match Scope::parse(&req.scope) {
        Some(s @ (Scope::Admin | Scope::Metrics)) => s,
        _ => {
            return Err(ApiError::bad_request(
                "invalid scope",
                "a server-wide token is admin or metrics (Factory tokens: POST /ota/factories/{f}/tokens)",
            ))
        }
    };
    let token = random_hex(32)?;
    let hash = token_hash(&token);
    sqlx::query("INSERT INTO tokens (hash, factory, scope, created_at) VALUES ($1, NULL, $2, $3)")
        .bind(&hash)
        .bind(scope.as_str())
        .bind(now())
        .execute(state.db.pool())
        .await?;
    tracing::info!(id = %token_id(&hash), scope = scope.as_str(), by = %caller.actor, "server token created");
    Ok((
        StatusCode::CREATED,
        Json(json!({"token": token.as_str(), "scope": scope.as_str(), "id": token_id(&hash)})),
    ))
}

/// `GET /ota/tokens` (admin) → `{"tokens": [{"id", "scope", "created_at", "current"}]}`.
pub async fn list(State(state): State<Shared>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    let caller = require_admin(&state, &headers).await?;
    let rows = sqlx::query(
        "SELECT hash, scope, created_at FROM tokens WHERE factory IS NULL \
         ORDER BY created_at, hash",
    )
    .fetch_all(state.db.pool())
    .await?;
    let mut tokens = Vec::with_capacity(rows.len());
    for r in rows {
        let hash: String = r.try_get(0)?;
        let scope: String = r.try_get(1)?;
        let created: i64 = r.try_get(2)?;
        tokens.push(json!({
            "id": token_id(&hash),
            "scope": scope,
            "created_at": crate::format_time(created),
            "current": caller.hash == hash,
        }));
    }
    Ok(Json(json!({ "tokens": tokens })))
}

/// `DELETE /ota/tokens/{id}` (admin): retires a server-wide token. The last admin token is
/// refused (`409 last admin token`).
pub async fn retire(
    State(state): State<Shared>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let caller = require_admin(&state, &headers).await?;
    let mut tx = state.db.begin_write().await?;
    let rows = sqlx::query("SELECT hash, scope FROM tokens WHERE factory IS NULL")
        .fetch_all(&mut *tx)
        .await?;
    let mut admins = 0;
    let mut matching = Vec::new();
    for r in rows {
        let hash: String = r.try_get(0)?;
        let scope: String = r.try_get(1)?;
        admins += usize::from(scope == Scope::Admin.as_str());
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
                "several server tokens share this id",
            ))
        }
    };
    if scope == Scope::Admin.as_str() && admins <= 1 {
        return Err(ApiError::conflict(
            "last admin token",
            "create another admin token first (POST /ota/tokens {\"scope\": \"admin\"}): \
             without one nobody could create Factories or tokens",
        ));
    }
    sqlx::query("DELETE FROM tokens WHERE factory IS NULL AND hash = $1")
        .bind(&hash)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    tracing::info!(id = %id, scope = %scope, by = %caller.actor, "server token retired");
    Ok(Json(
        json!({"retired": [id], "scope": scope, "own_token": caller.hash == hash}),
    ))
}

async fn require_admin(state: &Shared, headers: &HeaderMap) -> ApiResult<Caller> {
    let caller = authenticate(state, headers).await?;
    if caller.scope != Scope::Admin {
        return Err(ApiError::forbidden("server tokens need an admin token"));
    }
    Ok(caller)
}

/// The admin token given in `TUFD_ADMIN_TOKEN`, if any, checked (at start, before anything is
/// written).
pub fn check_env_token() -> anyhow::Result<Option<Zeroizing<String>>> {
    let Ok(token) = std::env::var("TUFD_ADMIN_TOKEN") else {
        return Ok(None);
    };
    let token = Zeroizing::new(token);
    anyhow::ensure!(
        token.len() >= 16 && token.len() <= 256 && !token.contains(char::is_whitespace),
        "TUFD_ADMIN_TOKEN must be 16 to 256 characters without spaces"
    );
    Ok(Some(token))
}

/// At start: the admin token from `TUFD_ADMIN_TOKEN` (retiring the one an earlier start was
/// given there), else on first start a new one written to `<data-dir>/admin-token`.
pub async fn ensure_admin_token(db: &Db, data_dir: &Path) -> anyhow::Result<()> {
    if let Some(token) = check_env_token()? {
        return env_admin_token(db, &token_hash(&token)).await;
    }
    let existing = sqlx::query("SELECT 1 FROM tokens WHERE scope = 'admin'")
        .fetch_optional(db.pool())
        .await?;
    if existing.is_some() {
        return Ok(());
    }
    // Replicas starting together on an empty PostgreSQL race here. The claim row makes the
    // first one the only creator: a second INSERT waits for its commit, then does nothing.
    let mut tx = db.pool().begin().await?;
    let claimed = sqlx::query(
        "INSERT INTO settings (name, value) VALUES ('admin-token-created', $1) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(now().to_string())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if claimed == 0 {
        tx.rollback().await?;
        tracing::info!(
            "another replica created the admin token; it is in that replica's data directory"
        );
        return Ok(());
    }
    let token = random_hex(32).map_err(|e| anyhow::anyhow!(e.error))?;
    sqlx::query(
        "INSERT INTO tokens (hash, factory, scope, created_at) VALUES ($1, NULL, 'admin', $2)",
    )
    .bind(token_hash(&token))
    .bind(now())
    .execute(&mut *tx)
    .await?;
    // The file first: a committed token always has its file. A failed commit leaves a file
    // naming a token that does not exist, which the next start replaces.
    let path = data_dir.join("admin-token");
    crate::files::write_secret(&path, &token)?;
    tx.commit().await?;
    tracing::info!(path = %path.display(), "created the admin token; it is in this file");
    Ok(())
}

/// Records `hash` as the admin token given in the environment; the one an earlier start was
/// given there (if different) is retired in the same transaction.
async fn env_admin_token(db: &Db, hash: &str) -> anyhow::Result<()> {
    let mut tx = db.begin_write().await?;
    let previous = sqlx::query("SELECT value FROM settings WHERE name = $1")
        .bind(ENV_TOKEN_SETTING)
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| r.try_get::<String, _>(0))
        .transpose()?;
    sqlx::query(
        "INSERT INTO tokens (hash, factory, scope, created_at) VALUES ($1, NULL, 'admin', $2) \
         ON CONFLICT (hash) DO NOTHING",
    )
    .bind(hash)
    .bind(now())
    .execute(&mut *tx)
    .await?;
    if let Some(old) = previous.filter(|old| old != hash) {
        sqlx::query("DELETE FROM tokens WHERE hash = $1 AND factory IS NULL")
            .bind(&old)
            .execute(&mut *tx)
            .await?;
        tracing::info!(id = %token_id(&old), "retired the admin token an earlier TUFD_ADMIN_TOKEN gave");
    }
    sqlx::query(
        "INSERT INTO settings (name, value) VALUES ($1, $2) \
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    )
    .bind(ENV_TOKEN_SETTING)
    .bind(hash)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The setting naming (by hash) the admin token `TUFD_ADMIN_TOKEN` last gave.
const ENV_TOKEN_SETTING: &str = "admin-token-env";
