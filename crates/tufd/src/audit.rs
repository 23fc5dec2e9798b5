//! The audit log: every change to keys, roots, targets and waves, written in the same
//! transaction as the change itself.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde_json::{json, Value};
use sqlx::Row;

use crate::auth::{authenticate, Scope};
use crate::db::{require_factory, Tx};
use crate::error::ApiResult;
use crate::input::Path;
use crate::Shared;

pub async fn record(
    tx: &mut Tx,
    factory: &str,
    at: i64,
    actor: &str,
    action: &str,
    detail: Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit (factory, at, actor, action, detail) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(factory)
    .bind(at)
    .bind(actor)
    .bind(action)
    .bind(detail.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// `GET /ota/factories/{f}/audit` (owner): oldest first.
pub async fn list(
    State(state): State<Shared>,
    Path(factory): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let caller = authenticate(&state, &headers).await?;
    caller.require(&factory, &[Scope::Owner])?;
    require_factory(&state.db, &factory).await?;
    let rows = sqlx::query(
        "SELECT at, actor, action, detail FROM audit WHERE factory = $1 ORDER BY id LIMIT 10000",
    )
    .bind(&factory)
    .fetch_all(state.db.pool())
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let at: i64 = r.try_get(0)?;
        let detail: String = r.try_get(3)?;
        out.push(json!({
            "at": crate::format_time(at),
            "actor": r.try_get::<String, _>(1)?,
            "action": r.try_get::<String, _>(2)?,
            "detail": serde_json::from_str::<Value>(&detail).unwrap_or(Value::String(detail)),
        }));
    }
    Ok(Json(Value::Array(out)))
}
