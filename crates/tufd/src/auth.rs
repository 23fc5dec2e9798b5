//! Bearer tokens: stored as SHA-256 hashes, each with a scope and (except `admin`) a Factory.

use axum::http::HeaderMap;
use sqlx::Row;

use crate::db::{now, Tx};
use crate::error::{ApiError, ApiResult};
use crate::AppState;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Server-wide: creates Factories, may do everything.
    Admin,
    /// Everything of one Factory.
    Owner,
    /// Adds CI targets and reads metadata of one Factory.
    Ci,
    /// Reads metadata of one Factory.
    Read,
    /// Server-wide, reads `/metrics` and nothing else.
    Metrics,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Admin => "admin",
            Scope::Owner => "owner",
            Scope::Ci => "ci",
            Scope::Read => "read",
            Scope::Metrics => "metrics",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Self::Admin),
            "owner" => Some(Self::Owner),
            "ci" => Some(Self::Ci),
            "read" => Some(Self::Read),
            "metrics" => Some(Self::Metrics),
            _ => None,
        }
    }
}

/// Who is calling, after the token was found.
#[derive(Clone, Debug)]
pub struct Caller {
    pub scope: Scope,
    pub factory: Option<String>,
    /// A non-secret label for the audit log: the scope and the token ID.
    pub actor: String,
    /// SHA-256 of the caller's token (not secret: the token has 256 random bits).
    pub hash: String,
}

impl Caller {
    /// Allows the call when the caller is admin, or belongs to `factory` with one of
    /// `scopes`. A token of another Factory gets 404, as if the Factory did not exist.
    pub fn require(&self, factory: &str, scopes: &[Scope]) -> ApiResult<()> {
        if self.scope == Scope::Admin {
            return Ok(());
        }
        if self.factory.as_deref() != Some(factory) {
            return Err(ApiError::factory_not_found(factory));
        }
        if !scopes.contains(&self.scope) {
            return Err(ApiError::forbidden(format!(
                "a {} token may not do this; needs {}",
                self.scope.as_str(),
                scopes
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(" or ")
            )));
        }
        Ok(())
    }
}

/// Finds the caller of a request from its `Authorization: Bearer` header.
pub async fn authenticate(state: &AppState, headers: &HeaderMap) -> ApiResult<Caller> {
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Err(ApiError::unauthorized(
            "missing Authorization: Bearer <token>",
        ));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= 256)
        .ok_or_else(|| ApiError::unauthorized("malformed Authorization header"))?;
    caller_of(state, token_hash(token))
        .await?
        .ok_or_else(|| ApiError::unauthorized("unknown token"))
}

/// The caller whose token hashes to `hash`, if that token exists (the bearer header and the
/// console's sessions both end here, so both get the same scopes and Factory).
pub async fn caller_of(state: &AppState, hash: String) -> ApiResult<Option<Caller>> {
    let row = sqlx::query("SELECT scope, factory FROM tokens WHERE hash = $1")
        .bind(&hash)
        .fetch_optional(state.db.pool())
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let scope: String = row.try_get(0)?;
    let factory: Option<String> = row.try_get(1)?;
    let scope = Scope::parse(&scope).ok_or_else(|| ApiError::internal("stored token scope"))?;
    Ok(Some(Caller {
        scope,
        factory,
        actor: format!("{}:{}", scope.as_str(), token_id(&hash)),
        hash,
    }))
}

/// The non-secret ID of a token: the first 12 hex digits of its hash.
pub fn token_id(hash: &str) -> String {
    hash.get(..12).unwrap_or(hash).to_owned()
}

pub fn token_hash(token: &str) -> String {
    tuf_core::hash::sha256_hex(token.as_bytes())
}

/// Stores the hash of a new token.
pub async fn insert_token(
    tx: &mut Tx,
    token: &str,
    factory: Option<&str>,
    scope: Scope,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO tokens (hash, factory, scope, created_at) VALUES ($1, $2, $3, $4)")
        .bind(token_hash(token))
        .bind(factory)
        .bind(scope.as_str())
        .bind(now())
        .execute(&mut **tx)
        .await?;
    Ok(())
}
