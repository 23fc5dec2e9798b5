//! Factory bootstrap (`POST /ota/factories`) and the one-time credentials download.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::Row;
use time::OffsetDateTime;
use tuf_core::{
    Expires, KeyType, PrivateKey, PublicKey, Role, RoleKeys, Root, Signed, Signer, Targets,
    Threshold,
};

use crate::auth::{authenticate, insert_token, Scope};
use crate::db::Tx;
use crate::error::{ApiError, ApiResult};
use crate::input::{check_factory_name, JsonBody, Path};
use crate::repo::{
    finish_destruction, insert_online_key, insert_public_key, new_online_key, random_hex,
    store_signed, Flavour, OnlineKeys, Signing,
};
use crate::{audit, Shared};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateFactory {
    name: String,
}

/// `POST /ota/factories` (admin).
pub async fn create(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: JsonBody,
) -> ApiResult<Response> {
    let caller = authenticate(&state, &headers).await?;
    if caller.scope != Scope::Admin {
        return Err(ApiError::forbidden(
            "creating a factory needs an admin token",
        ));
    }
    let req: CreateFactory = body.parse()?;
    check_factory_name(&req.name)?;
    let name = req.name;
    let now = OffsetDateTime::now_utc();
    let now_unix = now.unix_timestamp();
    let owner_token = random_hex(32)?;
    let ci_token = random_hex(32)?;
    let once = random_hex(32)?;

    let mut tx = state.db.begin_write().await?;
    let inserted = sqlx::query(
        "INSERT INTO factories (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
    )
    .bind(&name)
    .bind(now_unix)
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(ApiError::conflict(
            "factory exists",
            format!("a factory named {name:?} already exists"),
        ));
    }
    let Bootstrap {
        public,
        root_env,
        tarball: (tarball_key, sealed_tarball),
    } = bootstrap_keys(&mut tx, &state, &name, now).await?;
    for flavour in Flavour::BOTH {
        store_signed(&mut tx, &name, flavour, Role::Root, &root_env, now_unix).await?;
    }
    let keys = OnlineKeys::load(&mut tx, &state, &name).await?;
    let signing = Signing {
        factory: &name,
        keys: &keys,
        periods: &state.periods,
        now,
    };
    for flavour in Flavour::BOTH {
        bootstrap_flavour(&mut tx, &signing, flavour, &root_env.signed).await?;
    }
    insert_token(&mut tx, &owner_token, Some(&name), Scope::Owner).await?;
    insert_token(&mut tx, &ci_token, Some(&name), Scope::Ci).await?;
    sqlx::query(
        "INSERT INTO credentials (once_hash, factory, body, created_at, data_key) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(crate::auth::token_hash(&once))
    .bind(&name)
    .bind(sealed_tarball)
    .bind(now_unix)
    .bind(tarball_key)
    .execute(&mut *tx)
    .await?;
    let key_ids: BTreeMap<&str, String> = public
        .iter()
        .map(|(r, k)| (r.as_str(), k.key_id().to_string()))
        .collect();
    audit::record(
        &mut tx,
        &name,
        now_unix,
        &caller.actor,
        "factory.create",
        json!({"keys": key_ids, "root_version": 1}),
    )
    .await?;
    tx.commit().await?;
    crate::announce::published(&state, &name).await;
    tracing::info!(factory = %name, "factory created");

    let body = json!({
        "factory": name,
        "token": owner_token.as_str(),
        "ci_token": ci_token.as_str(),
        "credentials_url": format!("{}/ota/factories/{}/credentials/{}", state.public_url, name, once.as_str()),
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// What bootstrap makes before the metadata: the four keys, root v1, the sealed tarball.
struct Bootstrap {
    public: Vec<(Role, PublicKey)>,
    root_env: Signed<Root>,
    /// The tarball's data key and the tarball sealed under it.
    tarball: (String, Vec<u8>),
}

/// The Factory's keys and root v1, and the one-time credentials tarball sealed in `tx`. The
/// bootstrap root key is made in memory whatever holds the other keys: it must reach the
/// owner, in the tarball. The online keys are made where they will live (the token under
/// `--pkcs11`, where the server then keeps no copy of the root key at all).
async fn bootstrap_keys(
    tx: &mut Tx,
    state: &Shared,
    name: &str,
    now: OffsetDateTime,
) -> ApiResult<Bootstrap> {
    let now_unix = now.unix_timestamp();
    let root_key = PrivateKey::generate(KeyType::Ed25519)?;
    let mut public = vec![(Role::Root, root_key.public_key().clone())];
    for role in [Role::Targets, Role::Snapshot, Role::Timestamp] {
        let key =
            new_online_key(tx, state, name, role.as_str(), KeyType::Ed25519, now_unix).await?;
        public.push((role, key));
    }
    let root_env = bootstrap_root(&public, &root_key, now, state.periods.root)?;
    let tarball = {
        let mut creds = tuf_credentials::Credentials::new(tuf_credentials::Config {
            api: state.public_url.clone(),
            factory: name.to_owned(),
        });
        creds
            .set_root_json(&root_env.to_bytes())
            .and_then(|()| creds.add_key("offline-root", &root_key))
            .and_then(|()| creds.to_bytes())
            .map_err(|e| ApiError::internal(&format!("building the credentials tarball: {e}")))?
    };
    let sealed = state
        .keyring
        .seal(tx, &state.vault, &credentials_aad(name), &tarball)
        .await?;
    if state.token.is_some() {
        insert_public_key(tx, name, Role::Root, root_key.public_key(), now_unix).await?;
    } else {
        insert_online_key(tx, state, name, Role::Root, &root_key, now_unix).await?;
    }
    Ok(Bootstrap {
        public,
        root_env,
        tarball: sealed,
    })
}

/// Root v1: every role threshold 1, the four fresh keys, who made them and why; signed by
/// the bootstrap root key.
fn bootstrap_root(
    keys: &[(Role, PublicKey)],
    root_key: &PrivateKey,
    now: OffsetDateTime,
    period: i64,
) -> ApiResult<Signed<Root>> {
    let one = Threshold::new(1)?;
    let mut public = BTreeMap::new();
    let mut roles = BTreeMap::new();
    let mut owners = serde_json::Map::new();
    for (role, key) in keys {
        let id = key.key_id();
        public.insert(id.clone(), key.clone());
        roles.insert(*role, RoleKeys::new(vec![id.clone()], one));
        owners.insert(id.to_string(), json!("tufd"));
    }
    let mut root = Root::new(1, Expires::after(now, period)?, public, roles);
    root.extra
        .insert("x-key-owners".to_owned(), Value::Object(owners));
    root.extra.insert(
        "x-changelog".to_owned(),
        json!({"version": 1, "author": "tufd", "message": "factory created",
               "at": crate::format_time(now.unix_timestamp())}),
    );
    let mut env = Signed::new(root)?;
    env.sign(root_key)?;
    Ok(env)
}

/// Targets v1 (empty), snapshot v1 and timestamp v1 of one flavour.
async fn bootstrap_flavour(
    tx: &mut Tx,
    signing: &Signing<'_>,
    flavour: Flavour,
    root: &Root,
) -> ApiResult<()> {
    let targets = Targets::new(1, signing.expires(Role::Targets)?);
    let (targets, _) = signing.publish_targets(tx, flavour, root, targets).await?;
    // Snapshot and timestamp v1: `refresh_snapshot` expects heads, so seed version 0 here
    // through the first-version path.
    let mut meta = BTreeMap::new();
    meta.insert(
        "targets.json".to_owned(),
        crate::repo::targets_meta(1, targets.to_bytes().len()),
    );
    let mut snapshot = Signed::new(tuf_core::Snapshot::new(
        1,
        signing.expires(Role::Snapshot)?,
        meta,
    ))?;
    crate::repo::sign_all(
        &mut snapshot,
        &signing.keys.signers(root, Role::Snapshot),
        Role::Snapshot,
    )?;
    let (snapshot_body, _) = store_signed(
        tx,
        signing.factory,
        flavour,
        Role::Snapshot,
        &snapshot,
        signing.now_unix(),
    )
    .await?;
    let mut timestamp = Signed::new(tuf_core::Timestamp::new(
        1,
        signing.expires(Role::Timestamp)?,
        tuf_core::MetaFile::describing(1, &snapshot_body),
    ))?;
    crate::repo::sign_all(
        &mut timestamp,
        &signing.keys.signers(root, Role::Timestamp),
        Role::Timestamp,
    )?;
    store_signed(
        tx,
        signing.factory,
        flavour,
        Role::Timestamp,
        &timestamp,
        signing.now_unix(),
    )
    .await?;
    Ok(())
}

/// `GET /ota/factories/{f}/credentials/{once}`: the tarball, exactly once across replicas.
pub async fn download(
    State(state): State<Shared>,
    Path((factory, once)): Path<(String, String)>,
) -> ApiResult<Response> {
    let hash = crate::auth::token_hash(&once);
    let now = crate::db::now();
    let mut tx = state.db.begin_write().await?;
    // Claiming the row first makes the download single-use: on PostgreSQL the UPDATE locks
    // the row and a concurrent claim sees `fetched_at` set; on SQLite the transaction holds
    // the write lock.
    let claimed = sqlx::query(
        "UPDATE credentials SET fetched_at = $1 \
         WHERE once_hash = $2 AND factory = $3 AND fetched_at IS NULL",
    )
    .bind(now)
    .bind(&hash)
    .bind(&factory)
    .execute(&mut *tx)
    .await?;
    if claimed.rows_affected() == 0 {
        let known = sqlx::query("SELECT 1 FROM credentials WHERE once_hash = $1 AND factory = $2")
            .bind(&hash)
            .bind(&factory)
            .fetch_optional(&mut *tx)
            .await?;
        tx.rollback().await?;
        return Err(match known {
            Some(_) => gone(),
            None => ApiError::not_found("credentials"),
        });
    }
    let row = sqlx::query("SELECT body, data_key FROM credentials WHERE once_hash = $1")
        .bind(&hash)
        .fetch_one(&mut *tx)
        .await?;
    let sealed: Option<Vec<u8>> = row.try_get(0)?;
    let data_key: Option<String> = row.try_get(1)?;
    let sealed = sealed.ok_or_else(|| ApiError::internal("credentials body missing"))?;
    let aad = credentials_aad(&factory);
    let tarball = match &data_key {
        Some(id) => {
            let t = state
                .keyring
                .open_secret(&mut tx, &state.vault, id, &aad, &sealed)
                .await?;
            state.keyring.destroy(&mut tx, id).await?;
            t
        }
        None => state.vault.open(&aad, &sealed)?,
    };
    sqlx::query("UPDATE credentials SET body = NULL WHERE once_hash = $1")
        .bind(&hash)
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut tx,
        &factory,
        now,
        "credentials-url",
        "credentials.download",
        json!({}),
    )
    .await?;
    tx.commit().await?;
    // The tarball's data key goes now: no copy of the database can open it after this.
    finish_destruction(&state).await;
    Ok((CREDENTIALS_HEADERS, tarball.to_vec()).into_response())
}

/// `HEAD /ota/factories/{f}/credentials/{once}`: whether the download is still there, without
/// using it up. A link checker or a proxy that probes the URL must not take the owner's only
/// copy of the bootstrap root key; only a successful `GET` consumes it.
pub async fn probe(
    State(state): State<Shared>,
    Path((factory, once)): Path<(String, String)>,
) -> ApiResult<Response> {
    let row =
        sqlx::query("SELECT fetched_at FROM credentials WHERE once_hash = $1 AND factory = $2")
            .bind(crate::auth::token_hash(&once))
            .bind(&factory)
            .fetch_optional(state.db.pool())
            .await?;
    let Some(row) = row else {
        return Err(ApiError::not_found("credentials"));
    };
    let fetched: Option<i64> = row.try_get(0)?;
    if fetched.is_some() {
        return Err(gone());
    }
    Ok((CREDENTIALS_HEADERS, ()).into_response())
}

fn gone() -> ApiError {
    ApiError::new(
        StatusCode::GONE,
        "gone",
        json!("these credentials were already downloaded and deleted from the server"),
    )
}

const CREDENTIALS_HEADERS: [(header::HeaderName, &str); 3] = [
    (header::CONTENT_TYPE, "application/gzip"),
    (header::CACHE_CONTROL, "no-store"),
    (
        header::CONTENT_DISPOSITION,
        "attachment; filename=\"credentials.tgz\"",
    ),
];

fn credentials_aad(factory: &str) -> String {
    format!("credentials/{factory}")
}
