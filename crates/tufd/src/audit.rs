//! The audit log: every change to keys, roots, targets and waves, written in the same
//! transaction as the change itself.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::Row;

use crate::auth::{authenticate, Scope};
use crate::db::{require_factory, Tx};
use crate::error::{ApiError, ApiResult};
use crate::input::{Path, Query};
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

/// One page of a newest-first listing: `limit` entries (default [`PAGE`], at most
/// [`MAX_PAGE`]) before the cursor `before` (none: from the newest).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Page<C> {
    pub before: Option<C>,
    pub limit: Option<u32>,
}

/// Entries of a page when the caller does not say.
pub const PAGE: u32 = 100;
/// The most entries one page may ask for.
pub const MAX_PAGE: u32 = 1000;

impl<C> Page<C> {
    /// The page size, or 400 naming the bounds.
    pub fn size(&self) -> ApiResult<u32> {
        match self.limit.unwrap_or(PAGE) {
            n @ 1..=MAX_PAGE => Ok(n),
            n => Err(ApiError::bad_request(
                "invalid query",
                format!("limit is {n}; give between 1 and {MAX_PAGE}"),
            )),
        }
    }
}

/// `GET /ota/factories/{f}/audit[?before=ID&limit=N]` (owner): newest first, each entry with
/// its `id`; when older entries remain, a `Link: <...?before=ID&limit=N>; rel="next"` header
/// names the next page (the `id` of this page's last entry as `before`).
pub async fn list(
    State(state): State<Shared>,
    Path(factory): Path<String>,
    Query(page): Query<Page<i64>>,
    headers: HeaderMap,
) -> ApiResult<(HeaderMap, Json<Value>)> {
    let caller = authenticate(&state, &headers).await?;
    caller.require(&factory, &[Scope::Owner])?;
    require_factory(&state.db, &factory).await?;
    let size = page.size()?;
    // One more than the page: whether a next page exists, without counting.
    let rows = sqlx::query(
        "SELECT id, at, actor, action, detail FROM audit WHERE factory = $1 AND id < $2 \
         ORDER BY id DESC LIMIT $3",
    )
    .bind(&factory)
    .bind(page.before.unwrap_or(i64::MAX))
    .bind(i64::from(size) + 1)
    .fetch_all(state.db.pool())
    .await?;
    let more = rows.len() > size as usize;
    let mut out = Vec::with_capacity(rows.len());
    let mut last = None;
    for r in rows.into_iter().take(size as usize) {
        let id: i64 = r.try_get(0)?;
        let at: i64 = r.try_get(1)?;
        let detail: String = r.try_get(4)?;
        out.push(json!({
            "id": id,
            "at": crate::format_time(at),
            "actor": r.try_get::<String, _>(2)?,
            "action": r.try_get::<String, _>(3)?,
            "detail": serde_json::from_str::<Value>(&detail).unwrap_or(Value::String(detail)),
        }));
        last = Some(id);
    }
    let mut answer = HeaderMap::new();
    if let (true, Some(last)) = (more, last) {
        let link =
            format!("</ota/factories/{factory}/audit?before={last}&limit={size}>; rel=\"next\"");
        if let Ok(v) = HeaderValue::from_str(&link) {
            answer.insert(header::LINK, v);
        }
    }
    Ok((answer, Json(Value::Array(out))))
}
