//! Root-update transactions: open (`POST`), read (`GET`), stage signed envelopes (`PUT`),
//! `apply` and `cancel`. One open transaction per Factory. `apply` runs every check of
//! DESIGN.md section 4 and commits the CI root, the production root and any staged
//! production targets together with re-signed snapshot/timestamp in ONE database
//! transaction; a rejection changes nothing and names the failed check.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::Row;
use time::OffsetDateTime;
use tuf_ceremony::root_update::{self, RootUpdate};
use tuf_ceremony::{Check, Findings, Refusal};
use tuf_core::{
    canonical, KeyId, KeyType, PublicKey, Role, Root, Signed, SignedRef, Targets, TargetsHead,
};

use crate::auth::{authenticate, Caller, Scope};
use crate::db::{begin_locked, Tx};
use crate::error::{ApiError, ApiResult};
use crate::input::{JsonBody, Path, SIGNED_TARGETS_LIMIT};
use crate::repo::{
    current_root, destroy_online_key, destroy_pending_keys, finish_destruction, new_online_key,
    pending_purpose, random_hex, require_head, store_signed, Flavour, OnlineKeys, Signing, PENDING,
};
use crate::{audit, Shared};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenRequest {
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageRequest {
    txid: String,
    ci_root: Value,
    prod_root: Value,
    #[serde(default)]
    prod_targets: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TxidRequest {
    txid: String,
}

/// A staged transaction: canonical JSON envelopes as the owner sent them.
struct Staged {
    txid: String,
    message: String,
    ci_root: Vec<u8>,
    prod_root: Vec<u8>,
    prod_targets: Vec<u8>,
}

#[derive(Default)]
struct Report {
    /// Every failed check, named as in docs/API.md (tuf-ceremony's rules).
    errors: Findings,
    warnings: Vec<String>,
    ci_root: Option<Signed<Root>>,
    prod_root: Option<Signed<Root>>,
    /// The staged production targets with the server's signature, when they will be
    /// published.
    prod_targets: Option<Signed<Targets>>,
    /// The keys the server holds (public parts), for offline signers.
    server_keys: Vec<tuf_ceremony::HeldKey>,
    /// The current production targets, same signed bytes, with the online signature replaced
    /// by the new online targets key's (an online-key rotation): replaces the stored version
    /// in place, so the offline signature stays valid.
    prod_targets_resigned: Option<Signed<Targets>>,
}

/// The state the checks compare against, read inside the caller's transaction.
struct Current {
    ci: Signed<Root>,
    prod: Signed<Root>,
    prod_targets: Signed<Targets>,
    keys: OnlineKeys,
}

impl Current {
    async fn load(state: &Shared, tx: &mut Tx, factory: &str) -> ApiResult<Self> {
        Ok(Self {
            ci: current_root(tx, factory, Flavour::Ci).await?,
            prod: current_root(tx, factory, Flavour::Prod).await?,
            prod_targets: require_head(tx, factory, Flavour::Prod, Role::Targets)
                .await?
                .parse()?,
            keys: OnlineKeys::load(tx, state, factory).await?,
        })
    }
}

/// `POST .../root/updates` (owner): opens a transaction.
pub async fn open(
    State(state): State<Shared>,
    Path(factory): Path<String>,
    headers: HeaderMap,
    body: JsonBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let caller = authenticate(&state, &headers).await?;
    caller.require(&factory, &[Scope::Owner])?;
    let req: OpenRequest = body.parse()?;
    if req.message.len() > 4096 {
        return Err(ApiError::bad_request(
            "invalid message",
            "at most 4096 bytes",
        ));
    }
    let now = OffsetDateTime::now_utc();
    let mut tx = begin_locked(&state.db, &factory).await?;
    if load_staged(&mut tx, &factory).await?.is_some() {
        return Err(ApiError::conflict(
            "root update open",
            "a root-update transaction is already open for this factory; apply or cancel it",
        ));
    }
    let current = Current::load(&state, &mut tx, &factory).await?;
    let expires = tuf_core::Expires::after(now, state.periods.root)?;
    let at = crate::format_time(now.unix_timestamp());
    let txid = random_hex(16)?.to_string();
    // The transaction ID in the changelog ties the roots to this transaction: roots signed
    // in a cancelled one are refused (check `transaction`).
    let next_root = |r: &Signed<Root>| -> ApiResult<Vec<u8>> {
        let mut root = r.signed.clone();
        root.version += 1;
        root.expires = expires;
        root.extra.insert(
            "x-changelog".to_owned(),
            json!({"version": root.version, "author": caller.actor, "message": req.message,
                   "at": at, "txid": txid}),
        );
        Ok(Signed::new(root)?.to_bytes())
    };
    let mut targets = current.prod_targets.signed.clone();
    targets.version += 1;
    targets.expires = tuf_core::Expires::after(now, state.periods.targets)?;
    let staged = Staged {
        txid: txid.clone(),
        message: req.message.clone(),
        ci_root: next_root(&current.ci)?,
        prod_root: next_root(&current.prod)?,
        prod_targets: Signed::new(targets)?.to_bytes(),
    };
    sqlx::query(
        "INSERT INTO root_updates (factory, txid, message, ci_root, prod_root, prod_targets, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&factory)
    .bind(&staged.txid)
    .bind(&staged.message)
    .bind(&staged.ci_root)
    .bind(&staged.prod_root)
    .bind(&staged.prod_targets)
    .bind(now.unix_timestamp())
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        &factory,
        now.unix_timestamp(),
        &caller.actor,
        "root.update.open",
        json!({"txid": staged.txid, "message": staged.message}),
    )
    .await?;
    let report = check(&current, &staged, now);
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(transaction_json(&staged, &report)?),
    ))
}

/// `GET .../root/updates` (owner): the open transaction and its check results.
pub async fn show(
    State(state): State<Shared>,
    Path(factory): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let caller = authenticate(&state, &headers).await?;
    caller.require(&factory, &[Scope::Owner])?;
    let mut tx = state.db.pool().begin().await?;
    let staged = load_staged(&mut tx, &factory)
        .await?
        .ok_or_else(|| ApiError::not_found("open root-update transaction"))?;
    let current = Current::load(&state, &mut tx, &factory).await?;
    let report = check(&current, &staged, OffsetDateTime::now_utc());
    tx.rollback().await?;
    Ok(Json(transaction_json(&staged, &report)?))
}

/// `PUT .../root/updates` (owner): stages edited envelopes.
pub async fn stage(
    State(state): State<Shared>,
    Path(factory): Path<String>,
    headers: HeaderMap,
    body: JsonBody<SIGNED_TARGETS_LIMIT>,
) -> ApiResult<Json<Value>> {
    let caller = authenticate(&state, &headers).await?;
    caller.require(&factory, &[Scope::Owner])?;
    let req: StageRequest = body.parse()?;
    let now = OffsetDateTime::now_utc();
    let mut tx = begin_locked(&state.db, &factory).await?;
    let mut staged = open_transaction(&mut tx, &factory, &req.txid).await?;
    let current = Current::load(&state, &mut tx, &factory).await?;
    let ci_root = root_bytes("ci_root", req.ci_root)?;
    let prod_root = root_bytes("prod_root", req.prod_root)?;
    let prod_targets = match req.prod_targets {
        Some(v) => envelope_bytes("prod_targets", v)?,
        None => staged.prod_targets.clone(),
    };
    // Signatures that verify with no key of the old or new root are dropped: they were made
    // over an earlier edit of `signed`.
    let ci_keys = known_keys(&current.ci.signed.keys, &ci_root);
    let prod_keys = known_keys(&current.prod.signed.keys, &prod_root);
    staged.ci_root = drop_stale_signatures(&ci_root, &ci_keys)?;
    staged.prod_root = drop_stale_signatures(&prod_root, &prod_keys)?;
    staged.prod_targets = drop_stale_signatures(&prod_targets, &prod_keys)?;
    sqlx::query(
        "UPDATE root_updates SET ci_root = $1, prod_root = $2, prod_targets = $3 WHERE factory = $4",
    )
    .bind(&staged.ci_root)
    .bind(&staged.prod_root)
    .bind(&staged.prod_targets)
    .bind(&factory)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        &factory,
        now.unix_timestamp(),
        &caller.actor,
        "root.update.stage",
        json!({"txid": staged.txid}),
    )
    .await?;
    let report = check(&current, &staged, now);
    tx.commit().await?;
    Ok(Json(transaction_json(&staged, &report)?))
}

/// `POST .../root/updates/apply` (owner).
pub async fn apply(
    State(state): State<Shared>,
    Path(factory): Path<String>,
    headers: HeaderMap,
    body: JsonBody,
) -> ApiResult<Json<Value>> {
    let caller = authenticate(&state, &headers).await?;
    caller.require(&factory, &[Scope::Owner])?;
    let req: TxidRequest = body.parse()?;
    let now = OffsetDateTime::now_utc();
    let mut tx = begin_locked(&state.db, &factory).await?;
    let staged = open_transaction(&mut tx, &factory, &req.txid).await?;
    let mut current = Current::load(&state, &mut tx, &factory).await?;
    if current.keys.has_pending() {
        crate::waves::refuse_if_active(&mut tx, &factory, "before rotating the online keys")
            .await?;
    }
    let report = check(&current, &staged, now);
    if let Some(first) = report.errors.first() {
        tx.rollback().await?;
        return Err(ApiError::unprocessable(
            "root update rejected",
            json!({"check": first.check.name(), "reason": first.reason,
                   "errors": error_strings(&report.errors)}),
        ));
    }
    let (Some(ci_root), Some(prod_root)) = (report.ci_root, report.prod_root) else {
        return Err(ApiError::internal("checked roots missing"));
    };
    if switch_online_keys(&state, &mut tx, &factory, &caller, &ci_root.signed, now).await? {
        current.keys = OnlineKeys::load(&mut tx, &state, &factory).await?;
    }
    if let Some(env) = &report.prod_targets_resigned {
        replace_prod_targets(&mut tx, &factory, env).await?;
    }
    commit_roots(
        &state,
        &mut tx,
        &factory,
        &caller,
        &current,
        &ci_root,
        &prod_root,
        report.prod_targets,
        now,
    )
    .await?;
    sqlx::query("DELETE FROM root_updates WHERE factory = $1")
        .bind(&factory)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    crate::announce::published(&state, &factory).await;
    finish_destruction(&state).await;
    tracing::info!(factory = %factory, version = ci_root.signed.version, "root updated");
    Ok(Json(
        json!({"applied": true, "ci_version": ci_root.signed.version,
                   "prod_version": prod_root.signed.version}),
    ))
}

/// `POST .../root/updates/cancel` (owner).
pub async fn cancel(
    State(state): State<Shared>,
    Path(factory): Path<String>,
    headers: HeaderMap,
    body: JsonBody,
) -> ApiResult<Json<Value>> {
    let caller = authenticate(&state, &headers).await?;
    caller.require(&factory, &[Scope::Owner])?;
    let req: TxidRequest = body.parse()?;
    let mut tx = begin_locked(&state.db, &factory).await?;
    open_transaction(&mut tx, &factory, &req.txid).await?;
    sqlx::query("DELETE FROM root_updates WHERE factory = $1")
        .bind(&factory)
        .execute(&mut *tx)
        .await?;
    destroy_pending_keys(&mut tx, &state, &factory).await?;
    audit::record(
        &mut tx,
        &factory,
        crate::db::now(),
        &caller.actor,
        "root.update.cancel",
        json!({"txid": req.txid}),
    )
    .await?;
    tx.commit().await?;
    finish_destruction(&state).await;
    Ok(Json(json!({"cancelled": true, "txid": req.txid})))
}

/// Publishes the checked roots and everything that must follow them.
#[allow(clippy::too_many_arguments)]
async fn commit_roots(
    state: &Shared,
    tx: &mut Tx,
    factory: &str,
    caller: &Caller,
    current: &Current,
    ci_root: &Signed<Root>,
    prod_root: &Signed<Root>,
    prod_targets: Option<Signed<Targets>>,
    now: OffsetDateTime,
) -> ApiResult<()> {
    let now_unix = now.unix_timestamp();
    store_signed(tx, factory, Flavour::Ci, Role::Root, ci_root, now_unix).await?;
    store_signed(tx, factory, Flavour::Prod, Role::Root, prod_root, now_unix).await?;
    let signing = Signing {
        factory,
        keys: &current.keys,
        periods: &state.periods,
        now,
    };
    // CI targets are re-signed when the new root would not accept the current ones (new
    // online targets key or threshold).
    let stored = require_head(tx, factory, Flavour::Ci, Role::Targets).await?;
    let r = &ci_root.signed;
    let accepted = SignedRef::<TargetsHead>::from_slice(&stored.body)?
        .verify_role("targets", r.role(Role::Targets), &r.keys)
        .is_met();
    let mut resigned_ci = false;
    if !accepted {
        // From the stored bytes, as an add does: no tree of a large role. Publishes the CI
        // snapshot and timestamp too.
        signing
            .renew_targets(tx, Flavour::Ci, r, stored.body)
            .await?;
        resigned_ci = true;
    }
    let published_prod = match &prod_targets {
        Some(env) => {
            store_signed(tx, factory, Flavour::Prod, Role::Targets, env, now_unix).await?;
            Some(env.signed.version)
        }
        None => None,
    };
    if !resigned_ci {
        signing.refresh_snapshot(tx, Flavour::Ci, r).await?;
    }
    signing
        .refresh_snapshot(tx, Flavour::Prod, &prod_root.signed)
        .await?;
    destroy_bootstrap_keys(tx, state, factory, caller, current, [ci_root, prod_root]).await?;
    audit::record(
        tx,
        factory,
        now_unix,
        &caller.actor,
        "root.update.apply",
        json!({"ci_version": ci_root.signed.version, "prod_version": prod_root.signed.version,
               "ci_roles": role_summary(&ci_root.signed),
               "prod_targets_threshold": prod_root.signed.role(Role::Targets).threshold.get(),
               "ci_targets_resigned": resigned_ci, "prod_targets_version": published_prod}),
    )
    .await?;
    Ok(())
}

/// The bootstrap root key is destroyed once neither root lists it any more: from then on the
/// only copies of root keys are offline.
async fn destroy_bootstrap_keys(
    tx: &mut Tx,
    state: &Shared,
    factory: &str,
    caller: &Caller,
    current: &Current,
    roots: [&Signed<Root>; 2],
) -> ApiResult<()> {
    let listed = |id: &KeyId| {
        roots
            .iter()
            .any(|root| root.signed.role(Role::Root).keyids.contains(id))
    };
    let gone: Vec<KeyId> = current
        .keys
        .ids_of_purpose(Role::Root)
        .filter(|id| !listed(id))
        .cloned()
        .collect();
    for id in gone {
        destroy_online_key(tx, state, factory, id.as_str()).await?;
        audit::record(
            tx,
            factory,
            crate::db::now(),
            &caller.actor,
            "key.destroy",
            json!({"keyid": id, "purpose": "root", "reason": "no longer in the root role"}),
        )
        .await?;
    }
    Ok(())
}

/// Each role's key IDs and threshold, for the audit log.
fn role_summary(root: &Root) -> Value {
    Role::ALL
        .iter()
        .map(|role| {
            let rk = root.role(*role);
            (
                role.as_str().to_owned(),
                json!({"keyids": rk.keyids, "threshold": rk.threshold.get()}),
            )
        })
        .collect::<serde_json::Map<String, Value>>()
        .into()
}

/// Every apply check, in tuf-ceremony's order (structural ones first, so a rejection names
/// the real problem rather than the signatures that the problem invalidates), then the
/// production targets the update publishes.
fn check(current: &Current, staged: &Staged, now: OffsetDateTime) -> Report {
    let mut report = Report {
        server_keys: current.keys.server_keys().held(),
        ..Report::default()
    };
    let ci = parse_staged(root_update::CI, &staged.ci_root, &mut report);
    let prod = parse_staged(root_update::PROD, &staged.prod_root, &mut report);
    let (Some(ci), Some(prod)) = (ci, prod) else {
        return report;
    };
    let server = current.keys.server_keys();
    let update = RootUpdate {
        current_ci: &current.ci.signed,
        current_prod: &current.prod.signed,
        ci: &ci,
        prod: &prod,
        server: &server,
        now,
        txid: Some(&staged.txid),
    };
    report.errors.extend(update.all());
    check_prod_targets(current, staged, &prod.signed, now, &mut report);
    report.ci_root = Some(ci);
    report.prod_root = Some(prod);
    report
}

/// A staged root from its stored bytes, or the checks that refuse it.
fn parse_staged(label: &str, bytes: &[u8], report: &mut Report) -> Option<Signed<Root>> {
    let value = match canonical::parse(bytes) {
        Ok(v) => v,
        Err(e) => {
            report.errors.fail(Check::Format, format!("{label}: {e}"));
            return None;
        }
    };
    match root_update::parse_staged(label, value) {
        Ok(env) => Some(env),
        Err(f) => {
            report.errors.extend(f);
            None
        }
    }
}

/// `prod_targets_signatures`: when the new production root would not accept the current
/// production targets, the staged ones must be the current ones with version + 1 and a new
/// expiry (nothing else: a root update never changes what devices install), signed by its
/// offline targets key(s). Signed staged targets are published even when not needed.
fn check_prod_targets(
    current: &Current,
    staged: &Staged,
    p: &Root,
    now: OffsetDateTime,
    report: &mut Report,
) {
    let still_valid = current
        .prod_targets
        .verify_role("targets", p.role(Role::Targets), &p.keys)
        .is_met();
    let env = match Signed::<Targets>::from_slice(&staged.prod_targets) {
        Ok(e) if !still_valid && e.signatures.is_empty() => {
            // Nothing signed offline was staged: an online-key rotation keeps the current
            // production targets and only replaces the online signature.
            if let Some(resigned) = resign_online(current, p) {
                report.prod_targets_resigned = Some(resigned);
                return;
            }
            e
        }
        Ok(e) => e,
        Err(e) => {
            let r = Refusal::new(Check::ProdTargetsSignatures, format!("prod_targets: {e}"));
            refuse_or_warn(report, still_valid, Findings::from(r));
            return;
        }
    };
    if still_valid && env.signatures.is_empty() {
        return;
    }
    let mut problems =
        root_update::prod_targets_unchanged(&env.signed, &current.prod_targets.signed, now);
    if problems.is_empty() {
        match countersigned(current, p, env) {
            Ok(signed) => {
                report.prod_targets = Some(signed);
                return;
            }
            Err(r) => problems.note(Err(r)),
        }
    }
    refuse_or_warn(report, still_valid, problems);
}

/// Staged production targets with the server's online signature, if they then verify.
fn countersigned(
    current: &Current,
    p: &Root,
    mut env: Signed<Targets>,
) -> Result<Signed<Targets>, Refusal> {
    for k in current.keys.candidates(p, Role::Targets) {
        env.sign(k).map_err(|_| {
            Refusal::new(
                Check::ProdTargetsSignatures,
                "signing prod_targets with the online key failed",
            )
        })?;
    }
    root_update::prod_targets_signatures(&env, p)?;
    Ok(env)
}

/// Problems with staged production targets refuse the update when it needs them, and are
/// warnings (the targets are not published) when the current ones stay valid.
fn refuse_or_warn(report: &mut Report, still_valid: bool, problems: Findings) {
    if !still_valid {
        report.errors.extend(problems);
        return;
    }
    for r in problems {
        report.warnings.push(format!(
            "{r}; the staged production targets will not be published"
        ));
    }
}

fn error_strings(errors: &Findings) -> Vec<String> {
    errors.iter().map(ToString::to_string).collect()
}

fn transaction_json(staged: &Staged, report: &Report) -> ApiResult<Value> {
    let parse = |b: &[u8]| canonical::parse(b).unwrap_or(Value::Null);
    Ok(json!({
        "txid": staged.txid,
        "message": staged.message,
        "ci_root": parse(&staged.ci_root),
        "prod_root": parse(&staged.prod_root),
        "prod_targets": parse(&staged.prod_targets),
        "errors": error_strings(&report.errors),
        "warnings": report.warnings,
        "server_keys": report.server_keys,
    }))
}

async fn load_staged(tx: &mut Tx, factory: &str) -> ApiResult<Option<Staged>> {
    let row = sqlx::query(
        "SELECT txid, message, ci_root, prod_root, prod_targets FROM root_updates WHERE factory = $1",
    )
    .bind(factory)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(match row {
        None => None,
        Some(r) => Some(Staged {
            txid: r.try_get(0)?,
            message: r.try_get(1)?,
            ci_root: r.try_get(2)?,
            prod_root: r.try_get(3)?,
            prod_targets: r.try_get(4)?,
        }),
    })
}

async fn open_transaction(tx: &mut Tx, factory: &str, txid: &str) -> ApiResult<Staged> {
    let staged = load_staged(tx, factory)
        .await?
        .ok_or_else(|| ApiError::not_found("open root-update transaction"))?;
    if staged.txid != txid {
        return Err(ApiError::conflict(
            "wrong txid",
            "the open root-update transaction has another txid",
        ));
    }
    Ok(staged)
}

/// The canonical bytes of an envelope received inside a request, with control characters
/// escaped (as `Signed::to_bytes` writes them): a PEM public key (ecdsa, rsa) holds newlines,
/// and raw ones would make the stored envelope unparseable JSON.
fn envelope_bytes(field: &str, value: Value) -> ApiResult<Vec<u8>> {
    let ok = value.get("signed").is_some_and(Value::is_object)
        && value.get("signatures").is_some_and(Value::is_array);
    if !ok {
        return Err(ApiError::bad_request(
            format!("invalid {field}"),
            "an envelope is {\"signed\": {...}, \"signatures\": [...]}",
        ));
    }
    canonical::to_vec(&value)
        .map(canonical::escape_controls)
        .map_err(|e| ApiError::bad_request(format!("invalid {field}"), e.to_string()))
}

/// [`envelope_bytes`] of a staged root, refused (413) past `MAX_ROOT_BYTES`.
fn root_bytes(field: &str, value: Value) -> ApiResult<Vec<u8>> {
    let bytes = envelope_bytes(field, value)?;
    let limit = tuf_ceremony::limits::MAX_ROOT_BYTES;
    if bytes.len() as u64 > limit {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "root too large",
            json!({"field": field, "limit": limit, "size": bytes.len(),
                   "reason": format!("{field} is {} bytes; devices read at most {limit} bytes \
                                      of a root", bytes.len())}),
        ));
    }
    Ok(bytes)
}

/// Keys of the current root plus whatever keys the staged root lists (read leniently).
fn known_keys(current: &BTreeMap<KeyId, PublicKey>, staged: &[u8]) -> BTreeMap<KeyId, PublicKey> {
    let mut keys = current.clone();
    if let Ok(v) = canonical::parse(staged) {
        if let Ok(more) =
            serde_json::from_value::<BTreeMap<KeyId, PublicKey>>(v["signed"]["keys"].clone())
        {
            keys.extend(more);
        }
    }
    keys
}

fn drop_stale_signatures(envelope: &[u8], keys: &BTreeMap<KeyId, PublicKey>) -> ApiResult<Vec<u8>> {
    let mut v = canonical::parse(envelope)
        .map_err(|e| ApiError::bad_request("invalid envelope", e.to_string()))?;
    let signed = canonical::to_vec(&v["signed"])
        .map_err(|e| ApiError::bad_request("invalid envelope", e.to_string()))?;
    if let Some(sigs) = v.get_mut("signatures").and_then(Value::as_array_mut) {
        sigs.retain(|s| {
            let key = s["keyid"]
                .as_str()
                .and_then(|id| KeyId::new(id).ok())
                .and_then(|id| keys.get(&id));
            let sig = s["sig"].as_str().and_then(|h| hex::decode(h).ok());
            matches!((key, sig), (Some(k), Some(sig)) if k.verify(&signed, &sig).is_ok())
        });
    }
    canonical::to_vec(&v)
        .map(canonical::escape_controls)
        .map_err(|e| ApiError::bad_request("invalid envelope", e.to_string()))
}

/// The current production targets with every online targets signature replaced by the
/// signatures of the online targets keys `p` lists, if `p` then accepts them (same signed
/// bytes: the offline signatures stay valid).
fn resign_online(current: &Current, p: &Root) -> Option<Signed<Targets>> {
    let online = current.keys.ids_of(Role::Targets, true);
    let mut env = current.prod_targets.clone();
    env.signatures.retain(|sig| !online.contains(&&sig.keyid));
    let signers = current.keys.candidates(p, Role::Targets);
    if signers.is_empty() {
        return None;
    }
    for k in signers {
        env.sign(k).ok()?;
    }
    env.verify_role("targets", p.role(Role::Targets), &p.keys)
        .is_met()
        .then_some(env)
}

/// Replaces the stored bytes of the current production targets version (an online-key
/// rotation changed only its online signature).
async fn replace_prod_targets(tx: &mut Tx, factory: &str, env: &Signed<Targets>) -> ApiResult<()> {
    let body = env.to_bytes();
    let sha = tuf_core::hash::sha256_hex(&body);
    let version =
        i64::try_from(env.signed.version).map_err(|_| ApiError::internal("version overflow"))?;
    let key = (factory, Flavour::Prod, Role::Targets, version);
    crate::repo::replace_body(tx, key, &body, &sha).await?;
    sqlx::query(
        "UPDATE heads SET sha256 = $1 WHERE factory = $2 AND flavour = 'prod' AND role = 'targets' \
         AND version = $3",
    )
    .bind(&sha)
    .bind(factory)
    .bind(version)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// At apply: pending online keys the new root lists become active, the others are deleted;
/// active online targets/snapshot/timestamp keys the new root no longer lists are destroyed.
/// Returns whether anything changed.
async fn switch_online_keys(
    state: &Shared,
    tx: &mut Tx,
    factory: &str,
    caller: &Caller,
    root: &Root,
    now: OffsetDateTime,
) -> ApiResult<bool> {
    let rows = sqlx::query("SELECT keyid, purpose FROM online_keys WHERE factory = $1")
        .bind(factory)
        .fetch_all(&mut **tx)
        .await?;
    let mut changed = false;
    for r in rows {
        let keyid: String = r.try_get(0)?;
        let purpose: String = r.try_get(1)?;
        let (role, pending) = match purpose.strip_prefix(PENDING) {
            Some(rest) => (rest.to_owned(), true),
            None => (purpose.clone(), false),
        };
        let Some(role) = [Role::Targets, Role::Snapshot, Role::Timestamp]
            .into_iter()
            .find(|r| r.as_str() == role)
        else {
            continue;
        };
        let listed = root.role(role).keyids.iter().any(|id| id.as_str() == keyid);
        if listed && pending {
            sqlx::query("UPDATE online_keys SET purpose = $1 WHERE factory = $2 AND keyid = $3")
                .bind(role.as_str())
                .bind(factory)
                .bind(&keyid)
                .execute(&mut **tx)
                .await?;
            audit::record(
                tx,
                factory,
                now.unix_timestamp(),
                &caller.actor,
                "key.activate",
                json!({"keyid": keyid, "purpose": role.as_str()}),
            )
            .await?;
            changed = true;
        } else if !listed {
            destroy_online_key(tx, state, factory, &keyid).await?;
            audit::record(
                tx,
                factory,
                now.unix_timestamp(),
                &caller.actor,
                "key.destroy",
                json!({"keyid": keyid, "purpose": purpose, "reason": "no longer in the root"}),
            )
            .await?;
            changed = true;
        }
    }
    Ok(changed)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnlineKeysRequest {
    txid: String,
    roles: Vec<String>,
    #[serde(default)]
    key_type: Option<String>,
}

impl OnlineKeysRequest {
    /// The roles (targets, snapshot, timestamp; at least one, each once) and key type.
    fn parse(&self) -> ApiResult<(Vec<Role>, KeyType)> {
        let mut roles = Vec::new();
        for r in &self.roles {
            let role = match r.as_str() {
                "targets" => Role::Targets,
                "snapshot" => Role::Snapshot,
                "timestamp" => Role::Timestamp,
                _ => {
                    return Err(ApiError::bad_request(
                        "invalid roles",
                        "roles are targets, snapshot and timestamp",
                    ))
                }
            };
            if !roles.contains(&role) {
                roles.push(role);
            }
        }
        if roles.is_empty() {
            return Err(ApiError::bad_request(
                "invalid roles",
                "name at least one role",
            ));
        }
        let kind: KeyType = match self.key_type.as_deref() {
            None => KeyType::Ed25519,
            Some(k) => k.parse().map_err(|e: tuf_core::Error| {
                ApiError::bad_request("invalid key_type", e.to_string())
            })?,
        };
        Ok((roles, kind))
    }
}

/// `POST .../root/updates/online-keys` `{"txid", "roles": ["targets", "snapshot",
/// "timestamp"], "key_type": "ed25519"}` (owner): generates new online keys for `roles`
/// (kept sealed on the server as pending keys, never sent out) and puts their public keys
/// into the open transaction's staged roots in place of the current online keys of those
/// roles (thresholds unchanged). The staged roots lose their signatures; the root key
/// holders sign them as for any root update, and `apply` activates the new keys.
pub async fn online_keys(
    State(state): State<Shared>,
    Path(factory): Path<String>,
    headers: HeaderMap,
    body: JsonBody,
) -> ApiResult<Json<Value>> {
    let caller = authenticate(&state, &headers).await?;
    caller.require(&factory, &[Scope::Owner])?;
    let req: OnlineKeysRequest = body.parse()?;
    let (roles, kind) = req.parse()?;
    let now = OffsetDateTime::now_utc();
    let mut tx = begin_locked(&state.db, &factory).await?;
    // An active wave was countersigned with the current online targets key: rotating that
    // key under it would leave the wave unpublishable.
    crate::waves::refuse_if_active(&mut tx, &factory, "before rotating the online keys").await?;
    let mut staged = open_transaction(&mut tx, &factory, &req.txid).await?;
    // A repeated call replaces the keys of an earlier one.
    destroy_pending_keys(&mut tx, &state, &factory).await?;
    let current = Current::load(&state, &mut tx, &factory).await?;
    let parse = |label: &str, bytes: &[u8]| -> ApiResult<Root> {
        Ok(Signed::<Root>::from_slice(bytes)
            .map_err(|e| {
                ApiError::unprocessable("staged root does not parse", format!("{label}: {e}"))
            })?
            .signed)
    };
    let mut ci = parse("ci_root", &staged.ci_root)?;
    let mut prod = parse("prod_root", &staged.prod_root)?;
    let mut new_ids = serde_json::Map::new();
    for role in &roles {
        let key = new_online_key(
            &mut tx,
            &state,
            &factory,
            &pending_purpose(*role),
            kind,
            now.unix_timestamp(),
        )
        .await?;
        let old: Vec<KeyId> = current
            .keys
            .ids_of(*role, false)
            .into_iter()
            .cloned()
            .collect();
        for root in [&mut ci, &mut prod] {
            replace_online_key(root, *role, &old, &key)?;
        }
        new_ids.insert(role.as_str().to_owned(), json!(key.key_id().as_str()));
    }
    staged.ci_root = Signed::new(ci)?.to_bytes();
    staged.prod_root = Signed::new(prod)?.to_bytes();
    sqlx::query("UPDATE root_updates SET ci_root = $1, prod_root = $2 WHERE factory = $3")
        .bind(&staged.ci_root)
        .bind(&staged.prod_root)
        .bind(&factory)
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut tx,
        &factory,
        now.unix_timestamp(),
        &caller.actor,
        "root.update.online_keys",
        json!({"txid": staged.txid, "new_keys": new_ids}),
    )
    .await?;
    let current = Current::load(&state, &mut tx, &factory).await?;
    let report = check(&current, &staged, now);
    tx.commit().await?;
    finish_destruction(&state).await;
    let mut out = transaction_json(&staged, &report)?;
    out["new_online_keys"] = Value::Object(new_ids);
    Ok(Json(out))
}

/// In `root`'s `role`, the online keys `old` give way to `key` (listed first); the threshold
/// stays; the key is recorded as the server's in `x-key-owners`.
fn replace_online_key(
    root: &mut Root,
    role: Role,
    old: &[KeyId],
    key: &PublicKey,
) -> ApiResult<()> {
    let id = key.key_id();
    root.keys.insert(id.clone(), key.clone());
    let rk = root.role_mut(role)?;
    let mut ids = vec![id.clone()];
    ids.extend(rk.keyids.iter().filter(|k| !old.contains(k)).cloned());
    rk.keyids = ids;
    root.prune_keys();
    let keys: Vec<String> = root.keys.keys().map(|k| k.to_string()).collect();
    if let Some(owners) = root
        .extra
        .entry("x-key-owners".to_owned())
        .or_insert_with(|| json!({}))
        .as_object_mut()
    {
        owners.insert(id.to_string(), json!("tufd"));
        owners.retain(|k, _| keys.contains(k));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
