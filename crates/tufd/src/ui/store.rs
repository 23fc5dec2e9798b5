//! What the console reads from the store. Every read is bounded (a page size, or one row per
//! role); nothing here writes.

use sqlx::Row;
use tuf_core::{Role, Root, Signed, Targets};

use super::UiResult;
use crate::error::ApiError;
use crate::repo::{self, Flavour, OnlineKeys};
use crate::AppState;

/// The current root of `flavour`.
pub async fn root(state: &AppState, factory: &str, flavour: Flavour) -> UiResult<Signed<Root>> {
    head(state, factory, flavour, Role::Root).await
}

/// The current targets of `flavour`.
pub async fn targets(
    state: &AppState,
    factory: &str,
    flavour: Flavour,
) -> UiResult<Signed<Targets>> {
    head(state, factory, flavour, Role::Targets).await
}

async fn head<T: tuf_core::Metadata>(
    state: &AppState,
    factory: &str,
    flavour: Flavour,
    role: Role,
) -> UiResult<Signed<T>> {
    let meta = repo::head(state.db.pool(), factory, flavour, role)
        .await?
        .ok_or_else(|| ApiError::internal("factory metadata is incomplete"))?;
    Ok(meta.parse()?)
}

/// The keys the server holds for the Factory (to tell which keys of a root are online).
pub async fn online_keys(state: &AppState, factory: &str) -> UiResult<OnlineKeys> {
    let mut tx = state.db.pool().begin().await?;
    let keys = OnlineKeys::load(&mut tx, state, factory).await?;
    tx.rollback().await?;
    Ok(keys)
}

/// An open root-update transaction as stored: the envelopes as staged so far.
pub struct StagedUpdate {
    pub txid: String,
    pub message: String,
    pub created_at: i64,
    pub ci_root: Vec<u8>,
    pub prod_root: Vec<u8>,
    pub prod_targets: Vec<u8>,
}

pub async fn staged_update(state: &AppState, factory: &str) -> UiResult<Option<StagedUpdate>> {
    let row = sqlx::query(
        "SELECT txid, message, created_at, ci_root, prod_root, prod_targets FROM root_updates \
         WHERE factory = $1",
    )
    .bind(factory)
    .fetch_optional(state.db.pool())
    .await?;
    let Some(r) = row else {
        return Ok(None);
    };
    Ok(Some(StagedUpdate {
        txid: r.try_get(0)?,
        message: r.try_get(1)?,
        created_at: r.try_get(2)?,
        ci_root: r.try_get(3)?,
        prod_root: r.try_get(4)?,
        prod_targets: r.try_get(5)?,
    }))
}

/// One stored root version and when the server published it.
pub struct RootVersion {
    pub version: i64,
    pub published: i64,
    pub root: Signed<Root>,
}

/// Root versions of `flavour` below `before` (all when `None`), newest first, at most
/// `limit`.
pub async fn root_versions(
    state: &AppState,
    factory: &str,
    flavour: Flavour,
    before: Option<i64>,
    limit: i64,
) -> UiResult<Vec<RootVersion>> {
    let rows = sqlx::query(
        "SELECT version, created_at, body, length FROM metadata WHERE factory = $1 \
         AND flavour = $2 \
         AND role = 'root' AND version < $3 ORDER BY version DESC LIMIT $4",
    )
    .bind(factory)
    .bind(flavour.as_str())
    .bind(before.unwrap_or(i64::MAX))
    .bind(limit)
    .fetch_all(state.db.pool())
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let version: i64 = r.try_get(0)?;
        let mut body: Vec<u8> = r.try_get(2)?;
        let length: Option<i64> = r.try_get(3)?;
        if length.is_some_and(|l| l != body.len() as i64) {
            // Stored in chunks (repo::BODY_CHUNK): read whole.
            body = repo::version(state.db.pool(), factory, flavour, Role::Root, version)
                .await?
                .map(|(b, _)| b)
                .unwrap_or_default();
        }
        out.push(RootVersion {
            version,
            published: r.try_get(1)?,
            root: Signed::from_slice(&body)?,
        });
    }
    Ok(out)
}

/// The current version of one role of one flavour.
pub struct Head {
    pub flavour: Flavour,
    pub role: Role,
    pub version: i64,
    pub expires: i64,
}

pub async fn heads(state: &AppState, factory: &str) -> UiResult<Vec<Head>> {
    let rows = sqlx::query(
        "SELECT flavour, role, version, expires FROM heads WHERE factory = $1 \
         ORDER BY flavour, role",
    )
    .bind(factory)
    .fetch_all(state.db.pool())
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let flavour: String = r.try_get(0)?;
        let role: String = r.try_get(1)?;
        let (Some(flavour), Some(role)) = (
            Flavour::parse(&flavour),
            Role::ALL.into_iter().find(|x| x.as_str() == role),
        ) else {
            continue;
        };
        out.push(Head {
            flavour,
            role,
            version: r.try_get(2)?,
            expires: r.try_get(3)?,
        });
    }
    Ok(out)
}

/// A wave as stored, with the production targets it proposed (or published).
pub struct WaveRow {
    pub name: String,
    pub version: String,
    pub tag: String,
    pub status: String,
    pub targets_version: i64,
    pub created_at: i64,
    pub targets: Signed<Targets>,
}

/// The newest `limit` waves, newest first.
pub async fn waves(state: &AppState, factory: &str, limit: i64) -> UiResult<Vec<WaveRow>> {
    let rows = sqlx::query(
        "SELECT name, version, tag, status, targets_version, created_at, body FROM waves \
         WHERE factory = $1 ORDER BY created_at DESC, name DESC LIMIT $2",
    )
    .bind(factory)
    .bind(limit)
    .fetch_all(state.db.pool())
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let body: Vec<u8> = r.try_get(6)?;
        out.push(WaveRow {
            name: r.try_get(0)?,
            version: r.try_get(1)?,
            tag: r.try_get(2)?,
            status: r.try_get(3)?,
            targets_version: r.try_get(4)?,
            created_at: r.try_get(5)?,
            targets: Signed::from_slice(&body)?,
        });
    }
    Ok(out)
}

/// One audit record.
pub struct AuditRow {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub detail: String,
}

/// Audit records older than `before` (the newest when `None`), newest first, at most
/// `limit`.
pub async fn audit(
    state: &AppState,
    factory: &str,
    before: Option<i64>,
    limit: i64,
) -> UiResult<Vec<AuditRow>> {
    let rows = sqlx::query(
        "SELECT id, at, actor, action, detail FROM audit WHERE factory = $1 AND id < $2 \
         ORDER BY id DESC LIMIT $3",
    )
    .bind(factory)
    .bind(before.unwrap_or(i64::MAX))
    .bind(limit)
    .fetch_all(state.db.pool())
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(AuditRow {
            id: r.try_get(0)?,
            at: r.try_get(1)?,
            actor: r.try_get(2)?,
            action: r.try_get(3)?,
            detail: r.try_get(4)?,
        });
    }
    Ok(out)
}

/// A Factory in the admin's list.
pub struct FactoryRow {
    pub name: String,
    pub created_at: i64,
    pub root_version: Option<i64>,
    /// The soonest expiry among the metadata only offline keys renew.
    pub offline_expires: Option<i64>,
}

/// Factories named after `after` (from the first when `None`), by name, at most `limit`.
pub async fn factories(
    state: &AppState,
    after: Option<&str>,
    limit: i64,
) -> UiResult<Vec<FactoryRow>> {
    // The role condition is `upkeep::renewed_offline`, in SQL.
    let rows = sqlx::query(
        "SELECT f.name, f.created_at, \
         (SELECT version FROM heads h WHERE h.factory = f.name AND h.flavour = 'ci' \
          AND h.role = 'root'), \
         (SELECT MIN(expires) FROM heads h WHERE h.factory = f.name \
          AND (h.role = 'root' OR (h.role = 'targets' AND h.flavour = 'prod'))) \
         FROM factories f WHERE f.name > $1 ORDER BY f.name LIMIT $2",
    )
    .bind(after.unwrap_or(""))
    .bind(limit)
    .fetch_all(state.db.pool())
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(FactoryRow {
            name: r.try_get(0)?,
            created_at: r.try_get(1)?,
            root_version: r.try_get(2)?,
            offline_expires: r.try_get(3)?,
        });
    }
    Ok(out)
}
