//! `POST /ota/factories/{f}/tokens` (owner): more tokens for a Factory, e.g. `read` tokens
//! for dashboards or extra `ci` tokens. The token is shown once; only its hash is stored.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::{authenticate, insert_token, Scope};
use crate::db::{lock_factory, now};
use crate::error::{ApiError, ApiResult};
use crate::input::JsonBody;
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
    let mut tx = state.db.begin_write().await?;
    if !lock_factory(&mut tx, &factory).await? {
        return Err(ApiError::factory_not_found(&factory));
    }
    insert_token(&mut tx, &token, Some(&factory), scope).await?;
    audit::record(
        &mut tx,
        &factory,
        now(),
        &caller.actor,
        "token.create",
        json!({"scope": scope.as_str(), "token": format!("{}:{}", scope.as_str(), &crate::auth::token_hash(&token)[..12])}),
    )
    .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"token": token.as_str(), "scope": scope.as_str()})),
    ))
}
