//! The Factory's TUF repositories as stored rows: metadata versions (exact signed bytes),
//! the current head of each role and flavour, the online keys, and the signing steps that
//! publish new targets, snapshot and timestamp versions inside a caller's transaction.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use sqlx::{Any, Executor, Row};
use time::OffsetDateTime;
use tuf_core::{
    Expires, KeyId, KeyType, MetaFile, Metadata, PrivateKey, PublicKey, Role, Root, Signed, Signer,
    Snapshot, TargetChanges, Targets, TargetsBytes, TargetsHead, Timestamp,
};

use zeroize::Zeroizing;

use crate::db::Tx;
use crate::error::{ApiError, ApiResult};
use crate::keyring::WrappedKey;
use crate::AppState;

/// CI devices trust the CI root, production devices the production root.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Flavour {
    Ci,
    Prod,
}

impl Flavour {
    pub const BOTH: [Flavour; 2] = [Flavour::Ci, Flavour::Prod];

    pub fn as_str(self) -> &'static str {
        match self {
            Flavour::Ci => "ci",
            Flavour::Prod => "prod",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ci" => Some(Self::Ci),
            "prod" => Some(Self::Prod),
            _ => None,
        }
    }
}

/// Validity periods (seconds) of newly signed metadata.
#[derive(Clone, Copy, Debug)]
pub struct Periods {
    pub root: i64,
    pub targets: i64,
    pub snapshot: i64,
    pub timestamp: i64,
}

impl Periods {
    pub fn of(&self, role: Role) -> i64 {
        match role {
            Role::Root => self.root,
            Role::Targets => self.targets,
            Role::Snapshot => self.snapshot,
            Role::Timestamp => self.timestamp,
        }
    }

    /// When `role` signed at `now` expires.
    pub fn expires(&self, role: Role, now: OffsetDateTime) -> ApiResult<Expires> {
        Ok(Expires::after(now, self.of(role))?)
    }
}

/// What [`edit_targets`] made.
pub enum Edited {
    /// The edit changes nothing: the stored bytes, still the head.
    Unchanged(Bytes),
    /// The next version, not signed yet.
    Next(Box<Signed<TargetsHead>>),
}

/// Reads a targets role from its stored bytes, asks `edit` what to change (`None`: nothing,
/// no new version; an empty change: a new version all the same, as a renewal makes) and
/// makes the next version expiring at `expires`. Made in the stored bytes' own buffer when
/// nothing else holds them (`TargetsBytes::plan`: one version in memory at a time), else
/// in a new one; never through a tree of the targets.
pub fn edit_targets(
    stored: Bytes,
    expires: Expires,
    edit: impl FnOnce(&TargetsBytes) -> ApiResult<Option<TargetChanges>>,
) -> ApiResult<Edited> {
    let current = TargetsBytes::from_envelope(&stored)?;
    let Some(changes) = edit(&current)? else {
        drop(current);
        return Ok(Edited::Unchanged(stored));
    };
    let version = current
        .head()
        .version
        .checked_add(1)
        .ok_or_else(|| ApiError::internal("targets version overflow"))?;
    let Some(plan) = current.plan(version, expires, &changes)? else {
        return Ok(Edited::Next(Box::new(
            current.next(version, expires, &changes)?,
        )));
    };
    drop(current);
    // Unique unless a response still sends these bytes: then they are copied first.
    let buffer = if stored.is_unique() {
        Vec::from(stored)
    } else {
        stored.to_vec()
    };
    Ok(Edited::Next(Box::new(plan.apply(buffer)?)))
}

/// One stored metadata version.
#[derive(Clone, Debug)]
pub struct StoredMeta {
    pub version: i64,
    pub body: Vec<u8>,
    pub sha256: String,
    pub expires: i64,
    pub issued: i64,
}

impl StoredMeta {
    pub fn parse<T: Metadata>(&self) -> ApiResult<Signed<T>> {
        Ok(Signed::<T>::from_slice(&self.body)?)
    }
}

/// The current version of `role` in `flavour`.
pub async fn head<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    factory: &str,
    flavour: Flavour,
    role: Role,
) -> Result<Option<StoredMeta>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT m.version, m.sha256, m.expires, h.issued, m.length, m.body, c.data FROM heads h \
         JOIN metadata m ON m.factory = h.factory AND m.flavour = h.flavour \
         AND m.role = h.role AND m.version = h.version \
         LEFT JOIN metadata_chunks c ON c.factory = m.factory AND c.flavour = m.flavour \
         AND c.role = m.role AND c.version = m.version \
         WHERE h.factory = $1 AND h.flavour = $2 AND h.role = $3 ORDER BY c.seq",
    )
    .bind(factory)
    .bind(flavour.as_str())
    .bind(role.as_str())
    .fetch(ex);
    let Some((first, body)) = read_body(rows, 4).await? else {
        return Ok(None);
    };
    Ok(Some(StoredMeta {
        version: first.try_get(0)?,
        body,
        sha256: first.try_get(1)?,
        expires: first.try_get(2)?,
        issued: first.try_get(3)?,
    }))
}

/// Bodies larger than this are stored in chunks of this size (migration 0008): what the
/// store copies of a body while writing or reading it is one chunk, not a 20 MB role.
pub const BODY_CHUNK: usize = 1024 * 1024;

/// Most of a body [`read_body`] allocates before it has read it (the largest targets.json a
/// server is configured for is far smaller); a larger one grows as its chunks arrive.
const MAX_PREALLOCATED_BODY: usize = 256 * 1024 * 1024;

/// Reads a body from the rows of a query that selects, from column `at` on, `m.length`,
/// `m.body` and the data of its chunks (`LEFT JOIN metadata_chunks`, ordered by `seq`): an
/// inline body is one row with no chunk. Returns the first row (for the other columns) and
/// the body, assembled in one buffer of its final size.
async fn read_body<'e>(
    mut rows: futures_util::stream::BoxStream<'e, Result<sqlx::any::AnyRow, sqlx::Error>>,
    at: usize,
) -> Result<Option<(sqlx::any::AnyRow, Vec<u8>)>, sqlx::Error> {
    use futures_util::TryStreamExt as _;
    let Some(first) = rows.try_next().await? else {
        return Ok(None);
    };
    let chunk: Option<Vec<u8>> = first.try_get(at + 2)?;
    let Some(chunk) = chunk else {
        let body = first.try_get(at + 1)?;
        return Ok(Some((first, body)));
    };
    let length: Option<i64> = first.try_get(at)?;
    // Sized from the stored length, within reason: a damaged row cannot ask for more.
    let length = length.and_then(|l| usize::try_from(l).ok()).unwrap_or(0);
    let mut body = Vec::with_capacity(length.min(MAX_PREALLOCATED_BODY));
    body.extend_from_slice(&chunk);
    drop(chunk);
    while let Some(row) = rows.try_next().await? {
        let chunk: Vec<u8> = row.try_get(at + 2)?;
        body.extend_from_slice(&chunk);
    }
    Ok(Some((first, body)))
}

/// Stores the chunks of `body` for a metadata row that exists in `tx` with an empty inline
/// `body` (see [`BODY_CHUNK`]).
async fn insert_chunks(
    tx: &mut Tx,
    (factory, flavour, role, version): (&str, Flavour, Role, i64),
    body: &[u8],
) -> Result<(), sqlx::Error> {
    for (seq, chunk) in body.chunks(BODY_CHUNK).enumerate() {
        sqlx::query(
            "INSERT INTO metadata_chunks (factory, flavour, role, version, seq, data) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(factory)
        .bind(flavour.as_str())
        .bind(role.as_str())
        .bind(version)
        .bind(i64::try_from(seq).unwrap_or(i64::MAX))
        .bind(chunk)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Replaces the body of a stored version in place (an online-key rotation re-signs the
/// current production targets without a new version): body, hash and chunks together.
pub async fn replace_body(
    tx: &mut Tx,
    (factory, flavour, role, version): (&str, Flavour, Role, i64),
    body: &[u8],
    sha256: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE metadata SET body = $1, sha256 = $2, length = $3 \
         WHERE factory = $4 AND flavour = $5 AND role = $6 AND version = $7",
    )
    .bind(inline(body))
    .bind(sha256)
    .bind(i64::try_from(body.len()).unwrap_or(i64::MAX))
    .bind(factory)
    .bind(flavour.as_str())
    .bind(role.as_str())
    .bind(version)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "DELETE FROM metadata_chunks WHERE factory = $1 AND flavour = $2 AND role = $3 \
         AND version = $4",
    )
    .bind(factory)
    .bind(flavour.as_str())
    .bind(role.as_str())
    .bind(version)
    .execute(&mut **tx)
    .await?;
    if body.len() > BODY_CHUNK {
        insert_chunks(tx, (factory, flavour, role, version), body).await?;
    }
    Ok(())
}

/// What the inline `body` column of a row holds: the body, or nothing when it is chunked.
pub fn inline(body: &[u8]) -> &[u8] {
    if body.len() <= BODY_CHUNK {
        body
    } else {
        &[]
    }
}

/// The current version of `role` in `flavour` and the SHA-256 of its bytes, without the body.
pub async fn head_info(
    tx: &mut Tx,
    factory: &str,
    flavour: Flavour,
    role: Role,
) -> ApiResult<(i64, String)> {
    let row = sqlx::query(
        "SELECT version, sha256 FROM heads WHERE factory = $1 AND flavour = $2 AND role = $3",
    )
    .bind(factory)
    .bind(flavour.as_str())
    .bind(role.as_str())
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| ApiError::internal("factory metadata is incomplete"))?;
    Ok((row.try_get(0)?, row.try_get(1)?))
}

/// Version `version` of `role` in `flavour`: `(body, sha256)`.
pub async fn version<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    factory: &str,
    flavour: Flavour,
    role: Role,
    version: i64,
) -> Result<Option<(Vec<u8>, String)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT m.sha256, m.length, m.body, c.data FROM metadata m \
         LEFT JOIN metadata_chunks c ON c.factory = m.factory AND c.flavour = m.flavour \
         AND c.role = m.role AND c.version = m.version \
         WHERE m.factory = $1 AND m.flavour = $2 AND m.role = $3 AND m.version = $4 \
         ORDER BY c.seq",
    )
    .bind(factory)
    .bind(flavour.as_str())
    .bind(role.as_str())
    .bind(version)
    .fetch(ex);
    let Some((first, body)) = read_body(rows, 1).await? else {
        return Ok(None);
    };
    Ok(Some((body, first.try_get(0)?)))
}

/// The current head, which every bootstrapped Factory has for every role and flavour.
pub async fn require_head(
    tx: &mut Tx,
    factory: &str,
    flavour: Flavour,
    role: Role,
) -> ApiResult<StoredMeta> {
    head(&mut **tx, factory, flavour, role)
        .await?
        .ok_or_else(|| ApiError::internal("factory metadata is incomplete"))
}

/// Stores signed metadata as a new version and makes it the head. The primary key refuses
/// a reused version, so a lost race can never overwrite published bytes.
pub async fn store_signed<T: Metadata>(
    tx: &mut Tx,
    factory: &str,
    flavour: Flavour,
    role: Role,
    env: &Signed<T>,
    now: i64,
) -> ApiResult<(Vec<u8>, String)> {
    let body = env.to_bytes();
    let described = (env.signed.version(), env.signed.expires().unix());
    let sha = store_body(tx, (factory, flavour, role), described, &body, now).await?;
    Ok((body, sha))
}

/// [`store_signed`] with the envelope's bytes already made, so a large targets role is
/// serialised once per commit; `(version, expires)` are what `body` says. Returns the
/// SHA-256 of `body`.
pub async fn store_body(
    tx: &mut Tx,
    (factory, flavour, role): (&str, Flavour, Role),
    (version, expires): (u64, i64),
    body: &[u8],
    now: i64,
) -> ApiResult<String> {
    let version = i64::try_from(version).map_err(|_| ApiError::internal("version overflow"))?;
    let sha = tuf_core::hash::sha256_hex(body);
    sqlx::query(
        "INSERT INTO metadata \
         (factory, flavour, role, version, body, sha256, expires, created_at, length) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(factory)
    .bind(flavour.as_str())
    .bind(role.as_str())
    .bind(version)
    .bind(inline(body))
    .bind(&sha)
    .bind(expires)
    .bind(now)
    .bind(i64::try_from(body.len()).unwrap_or(i64::MAX))
    .execute(&mut **tx)
    .await?;
    if body.len() > BODY_CHUNK {
        insert_chunks(tx, (factory, flavour, role, version), body).await?;
    }
    sqlx::query(
        "INSERT INTO heads (factory, flavour, role, version, sha256, expires, issued) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (factory, flavour, role) DO UPDATE SET version = excluded.version, \
         sha256 = excluded.sha256, expires = excluded.expires, issued = excluded.issued",
    )
    .bind(factory)
    .bind(flavour.as_str())
    .bind(role.as_str())
    .bind(version)
    .bind(&sha)
    .bind(expires)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    if role != Role::Root {
        // Roots are the chain of trust: never pruned.
        prune_old_versions(tx, (factory, flavour, role), (version, body.len(), now)).await?;
    }
    Ok(sha)
}

/// The retention of old versions of targets, snapshot and timestamp (`N.targets.json`).
/// A device needs an old version only between reading a timestamp and fetching what it
/// names; after that, a missing version only makes it start over from the new timestamp.
/// So besides the newest, the server keeps the previous version always, and older ones
/// while all of these hold: superseded less than [`RETAIN_SECS`] ago, at most
/// [`KEEP_VERSIONS`] of them, and together at most [`RETAIN_FACTOR`] times the size of the
/// newest. Disk per role is thereby bounded by about `RETAIN_FACTOR + 2` copies of the
/// newest (a CI pipeline adding a target a second to a 20 MB targets.json keeps about five
/// copies, not 64).
pub const KEEP_VERSIONS: i64 = 64;
/// See [`KEEP_VERSIONS`]: how long a superseded version stays downloadable at most.
pub const RETAIN_SECS: i64 = 600;
/// See [`KEEP_VERSIONS`]: the byte budget of old versions, in sizes of the newest.
pub const RETAIN_FACTOR: u64 = 4;

/// An old version as retention sees it: version, size in bytes, when it was published.
#[derive(Clone, Copy, Debug)]
pub struct OldVersion {
    pub version: i64,
    pub size: u64,
    pub published: i64,
}

/// The newest old version to delete (and every older one with it), or None to keep all.
/// `olds` is newest first; `newest` is the (size, publication time) of the new version.
pub fn retention_cutoff(newest: (u64, i64), olds: &[OldVersion]) -> Option<i64> {
    let (size, now) = newest;
    let budget = size.saturating_mul(RETAIN_FACTOR);
    let mut spent = 0u64;
    // A version is superseded when the next one is published.
    let mut superseded = now;
    for (kept, old) in olds.iter().enumerate() {
        spent = spent.saturating_add(old.size);
        let keep = kept == 0
            || (now - superseded < RETAIN_SECS
                && (kept as i64) < KEEP_VERSIONS - 1
                && spent <= budget);
        if !keep {
            return Some(old.version);
        }
        superseded = old.published;
    }
    None
}

/// Applies [`retention_cutoff`] to the old versions of one role after `new` was stored.
async fn prune_old_versions(
    tx: &mut Tx,
    (factory, flavour, role): (&str, Flavour, Role),
    (version, size, now): (i64, usize, i64),
) -> ApiResult<()> {
    let rows = sqlx::query(
        "SELECT version, COALESCE(length, CAST(LENGTH(body) AS BIGINT)), created_at \
         FROM metadata \
         WHERE factory = $1 AND flavour = $2 AND role = $3 AND version < $4 \
         ORDER BY version DESC LIMIT $5",
    )
    .bind(factory)
    .bind(flavour.as_str())
    .bind(role.as_str())
    .bind(version)
    .bind(KEEP_VERSIONS + 1)
    .fetch_all(&mut **tx)
    .await?;
    let mut olds = Vec::with_capacity(rows.len());
    for r in rows {
        olds.push(OldVersion {
            version: r.try_get(0)?,
            size: u64::try_from(r.try_get::<i64, _>(1)?).unwrap_or(0),
            published: r.try_get(2)?,
        });
    }
    if let Some(cutoff) = retention_cutoff((size as u64, now), &olds) {
        sqlx::query(
            "DELETE FROM metadata WHERE factory = $1 AND flavour = $2 AND role = $3 \
             AND version <= $4",
        )
        .bind(factory)
        .bind(flavour.as_str())
        .bind(role.as_str())
        .bind(cutoff)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// The online keys the server holds for one Factory, opened for the duration of a request:
/// software keys unsealed (`PrivateKey` zeroizes its PKCS#8 bytes on drop), token keys as
/// handles on the token. A key whose private part the server does not keep (the bootstrap
/// root key under `--pkcs11`) is known by its public key only: it counts as the server's in
/// [`OnlineKeys::server_keys`] and signs nothing.
pub struct OnlineKeys {
    keys: BTreeMap<KeyId, Held>,
}

struct Held {
    purpose: String,
    public: PublicKey,
    signer: Option<Arc<dyn Signer>>,
}

/// What an online key is for: `root` (the bootstrap root key), `targets`, `snapshot`,
/// `timestamp`.
pub type Purpose = Role;

impl OnlineKeys {
    pub async fn load(tx: &mut Tx, state: &AppState, factory: &str) -> ApiResult<Self> {
        state.keyring.share(tx).await?;
        let rows = sqlx::query(
            "SELECT o.keyid, o.purpose, o.keytype, o.scheme, o.sealed, o.data_key, o.token_ref, \
             o.public_key, d.epoch, d.wrapped FROM online_keys o \
             LEFT JOIN data_keys d ON d.id = o.data_key AND d.destroyed_at IS NULL \
             WHERE o.factory = $1",
        )
        .bind(factory)
        .fetch_all(&mut **tx)
        .await?;
        let mut keys = BTreeMap::new();
        for r in rows {
            let keyid: String = r.try_get(0)?;
            let purpose: String = r.try_get(1)?;
            let data_key: Option<String> = r.try_get(5)?;
            let epoch: Option<i64> = r.try_get(8)?;
            let wrapped: Option<Vec<u8>> = r.try_get(9)?;
            let stored = StoredKey {
                keytype: r.try_get(2)?,
                scheme: r.try_get(3)?,
                sealed: r.try_get(4)?,
                data_key: match (data_key, epoch, wrapped) {
                    (Some(id), Some(epoch), Some(wrapped)) => {
                        Some(WrappedKey { id, epoch, wrapped })
                    }
                    (Some(_), _, _) => {
                        return Err(ApiError::internal("an online key's data key is missing"))
                    }
                    _ => None,
                },
                token_ref: r.try_get(6)?,
                public_key: r.try_get(7)?,
            };
            let held = stored.open(state, factory, &keyid, purpose)?;
            keys.insert(held.public.key_id(), held);
        }
        Ok(Self { keys })
    }

    /// The held keys of `purpose` that `root` lists for `role`.
    pub fn signers(&self, root: &Root, role: Role) -> Vec<&dyn Signer> {
        self.listed(root, role, |p| p == role.as_str())
    }

    /// Like [`OnlineKeys::signers`], but also the keys generated for `role` by an open
    /// online-key rotation (purpose `pending-<role>`): what the apply checks may count on.
    pub fn candidates(&self, root: &Root, role: Role) -> Vec<&dyn Signer> {
        let pending = pending_purpose(role);
        self.listed(root, role, |p| p == role.as_str() || p == pending)
    }

    fn listed(&self, root: &Root, role: Role, purpose: impl Fn(&str) -> bool) -> Vec<&dyn Signer> {
        root.role(role)
            .keyids
            .iter()
            .filter_map(|id| self.keys.get(id))
            .filter(|h| purpose(&h.purpose))
            .filter_map(|h| h.signer.as_deref())
            .collect()
    }

    /// Key IDs of `role`'s online keys, active and (with `pending`) newly generated ones.
    pub fn ids_of(&self, role: Role, pending: bool) -> Vec<&KeyId> {
        let p = pending_purpose(role);
        self.keys
            .iter()
            .filter(|(_, h)| h.purpose == role.as_str() || (pending && h.purpose == p))
            .map(|(id, _)| id)
            .collect()
    }

    /// Keys held for tests, as `(purpose, key)`.
    #[cfg(test)]
    pub fn from_keys(keys: Vec<(&str, PrivateKey)>) -> Self {
        Self {
            keys: keys
                .into_iter()
                .map(|(p, k)| {
                    let held = Held {
                        purpose: p.to_owned(),
                        public: Signer::public_key(&k).clone(),
                        signer: Some(Arc::new(k)),
                    };
                    (held.public.key_id(), held)
                })
                .collect(),
        }
    }

    /// The public parts of every key held, with their purposes: what the ceremony rules
    /// need to know about the server.
    pub fn server_keys(&self) -> tuf_ceremony::ServerKeys {
        tuf_ceremony::ServerKeys::new(self.keys.values().map(|h| tuf_ceremony::HeldKey {
            purpose: h.purpose.clone(),
            key: h.public.clone(),
        }))
    }

    /// Whether an online-key rotation left new keys that are not active yet.
    pub fn has_pending(&self) -> bool {
        self.keys.values().any(|h| h.purpose.starts_with(PENDING))
    }

    /// IDs of the keys of `purpose`.
    pub fn ids_of_purpose(&self, purpose: Purpose) -> impl Iterator<Item = &KeyId> {
        self.keys
            .iter()
            .filter(move |(_, h)| h.purpose == purpose.as_str())
            .map(|(id, _)| id)
    }
}

/// An `online_keys` row as stored: sealed in software (with its data key, or by an older tufd
/// with the server key alone), on the token, or public only.
struct StoredKey {
    keytype: String,
    scheme: String,
    sealed: Vec<u8>,
    data_key: Option<WrappedKey>,
    token_ref: Option<String>,
    public_key: Option<String>,
}

impl StoredKey {
    fn open(
        self,
        state: &AppState,
        factory: &str,
        keyid: &str,
        purpose: String,
    ) -> ApiResult<Held> {
        let aad = key_aad(factory, keyid);
        let signer: Arc<dyn Signer> = if let Some(token_ref) = &self.token_ref {
            let token = state.token.as_ref().ok_or_else(|| {
                ApiError::internal(
                    "a key of this Factory is on a PKCS#11 token: start tufd with --pkcs11",
                )
            })?;
            token.signer(token_ref)?
        } else if let Some(key) = &self.data_key {
            let der = state
                .keyring
                .open_with(&state.vault, key, &aad, &self.sealed)?;
            Arc::new(PrivateKey::from_pkcs8_der(
                &self.keytype,
                &self.scheme,
                &der,
            )?)
        } else if let Some(public) = &self.public_key {
            let public: PublicKey = serde_json::from_str(public)
                .map_err(|_| ApiError::internal("a stored public key does not parse"))?;
            return Ok(Held {
                purpose,
                public,
                signer: None,
            });
        } else {
            let der = state.vault.open(&aad, &self.sealed)?;
            Arc::new(PrivateKey::from_pkcs8_der(
                &self.keytype,
                &self.scheme,
                &der,
            )?)
        };
        Ok(Held {
            purpose,
            public: signer.public_key().clone(),
            signer: Some(signer),
        })
    }
}

/// Purpose prefix of online keys generated by an open online-key rotation; `apply` makes
/// them active, `cancel` deletes them.
pub const PENDING: &str = "pending-";

pub fn pending_purpose(role: Role) -> String {
    format!("{PENDING}{}", role.as_str())
}

/// Inserts an online key made in software (the bootstrap keys without a token), sealed under
/// a data key of its own.
pub async fn insert_online_key(
    tx: &mut Tx,
    state: &AppState,
    factory: &str,
    purpose: Purpose,
    key: &PrivateKey,
    now: i64,
) -> ApiResult<()> {
    insert_sealed(tx, state, factory, purpose.as_str(), key, now).await
}

async fn insert_sealed(
    tx: &mut Tx,
    state: &AppState,
    factory: &str,
    purpose: &str,
    key: &PrivateKey,
    now: i64,
) -> ApiResult<()> {
    let keyid = key.key_id().as_str();
    let (data_key, sealed) = state
        .keyring
        .seal(tx, &state.vault, &key_aad(factory, keyid), key.pkcs8_der())
        .await?;
    let public = Signer::public_key(key);
    sqlx::query(
        "INSERT INTO online_keys (factory, keyid, purpose, keytype, scheme, sealed, created_at, \
         data_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(factory)
    .bind(keyid)
    .bind(purpose)
    .bind(&public.keytype)
    .bind(&public.scheme)
    .bind(sealed)
    .bind(now)
    .bind(data_key)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Inserts a key the server knows by its public key only (the bootstrap root key under
/// `--pkcs11`: it goes to the owner in the credentials tarball and nowhere else).
pub async fn insert_public_key(
    tx: &mut Tx,
    factory: &str,
    purpose: Purpose,
    public: &PublicKey,
    now: i64,
) -> ApiResult<()> {
    insert_reference(tx, factory, purpose.as_str(), public, None, now).await
}

/// Generates a new online key for `purpose` (`targets`, or `pending-targets` for a key of an
/// open online-key rotation, ...): on the token under `--pkcs11`, else in software, sealed.
/// Returns its public key.
pub async fn new_online_key(
    tx: &mut Tx,
    state: &AppState,
    factory: &str,
    purpose: &str,
    kind: KeyType,
    now: i64,
) -> ApiResult<PublicKey> {
    if let Some(token) = &state.token {
        if !matches!(kind, KeyType::Ed25519 | KeyType::EcdsaP256) {
            return Err(ApiError::bad_request(
                "invalid key_type",
                "online keys on the PKCS#11 token are ed25519 or ecdsa (P-256)",
            ));
        }
        let label = format!("tufd {factory} {purpose}");
        let (key_ref, public) = token.generate(kind, &label)?;
        insert_reference(tx, factory, purpose, &public, Some(&key_ref), now).await?;
        return Ok(public);
    }
    let key = PrivateKey::generate(kind)?;
    insert_sealed(tx, state, factory, purpose, &key, now).await?;
    Ok(Signer::public_key(&key).clone())
}

/// At start: secrets an older tufd sealed with the server key alone are sealed again under
/// data keys of their own, so destroying them shreds them too. (Their old form may remain in
/// copies of the database made before; those also need the server key.)
pub async fn reseal_legacy(state: &AppState) -> anyhow::Result<()> {
    let mut tx = state.db.begin_write().await?;
    let rows = sqlx::query(
        "SELECT factory, keyid, sealed FROM online_keys \
         WHERE data_key IS NULL AND token_ref IS NULL AND public_key IS NULL",
    )
    .fetch_all(&mut *tx)
    .await?;
    for r in &rows {
        let (factory, keyid, sealed): (String, String, Vec<u8>) =
            (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
        let aad = key_aad(&factory, &keyid);
        let der = state.vault.open(&aad, &sealed)?;
        let (id, again) = state
            .keyring
            .seal(&mut tx, &state.vault, &aad, &der)
            .await?;
        sqlx::query(
            "UPDATE online_keys SET sealed = $1, data_key = $2 WHERE factory = $3 AND keyid = $4",
        )
        .bind(again)
        .bind(id)
        .bind(&factory)
        .bind(&keyid)
        .execute(&mut *tx)
        .await?;
    }
    let creds = sqlx::query(
        "SELECT once_hash, factory, body FROM credentials \
         WHERE body IS NOT NULL AND data_key IS NULL",
    )
    .fetch_all(&mut *tx)
    .await?;
    for r in &creds {
        let (hash, factory, sealed): (String, String, Vec<u8>) =
            (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
        let aad = format!("credentials/{factory}");
        let tarball = state.vault.open(&aad, &sealed)?;
        let (id, again) = state
            .keyring
            .seal(&mut tx, &state.vault, &aad, &tarball)
            .await?;
        sqlx::query("UPDATE credentials SET body = $1, data_key = $2 WHERE once_hash = $3")
            .bind(again)
            .bind(id)
            .bind(&hash)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    if !rows.is_empty() || !creds.is_empty() {
        tracing::info!(
            keys = rows.len(),
            tarballs = creds.len(),
            "sealed secrets of an older tufd under data keys of their own"
        );
    }
    Ok(())
}

/// A row whose private part is not sealed here: on the token (`token_ref`) or nowhere.
async fn insert_reference(
    tx: &mut Tx,
    factory: &str,
    purpose: &str,
    public: &PublicKey,
    token_ref: Option<&str>,
    now: i64,
) -> ApiResult<()> {
    let json = serde_json::to_string(public).map_err(|_| ApiError::internal("public key"))?;
    sqlx::query(
        "INSERT INTO online_keys (factory, keyid, purpose, keytype, scheme, sealed, created_at, \
         token_ref, public_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(factory)
    .bind(public.key_id().as_str())
    .bind(purpose)
    .bind(&public.keytype)
    .bind(&public.scheme)
    .bind(Vec::<u8>::new())
    .bind(now)
    .bind(token_ref)
    .bind(json)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Destroys an online key in `tx`: the row goes, its data key is marked for shredding, a
/// token key is queued for C_DestroyObject. [`finish_destruction`] completes both once `tx`
/// has committed.
pub async fn destroy_online_key(
    tx: &mut Tx,
    state: &AppState,
    factory: &str,
    keyid: &str,
) -> ApiResult<()> {
    let row = sqlx::query(
        "SELECT data_key, token_ref FROM online_keys WHERE factory = $1 AND keyid = $2",
    )
    .bind(factory)
    .bind(keyid)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = row else {
        return Ok(());
    };
    let data_key: Option<String> = row.try_get(0)?;
    let token_ref: Option<String> = row.try_get(1)?;
    if let Some(id) = data_key {
        state.keyring.destroy(tx, &id).await?;
    }
    if let Some(r) = token_ref {
        sqlx::query(
            "INSERT INTO token_objects_to_destroy (key_ref, queued_at) VALUES ($1, $2) \
             ON CONFLICT (key_ref) DO NOTHING",
        )
        .bind(r)
        .bind(crate::db::now())
        .execute(&mut **tx)
        .await?;
    }
    sqlx::query("DELETE FROM online_keys WHERE factory = $1 AND keyid = $2")
        .bind(factory)
        .bind(keyid)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Destroys the keys of an open online-key rotation (cancelled, or replaced by a new call).
pub async fn destroy_pending_keys(tx: &mut Tx, state: &AppState, factory: &str) -> ApiResult<()> {
    let rows = sqlx::query(
        "SELECT keyid FROM online_keys WHERE factory = $1 AND purpose LIKE 'pending-%'",
    )
    .bind(factory)
    .fetch_all(&mut **tx)
    .await?;
    for r in rows {
        let keyid: String = r.try_get(0)?;
        destroy_online_key(tx, state, factory, &keyid).await?;
    }
    Ok(())
}

/// After a transaction that destroyed secrets has committed: the keyring moves to a new epoch
/// (destroyed data keys are left behind) and queued token objects are destroyed. Failures are
/// logged, not returned: the destruction is committed, and upkeep retries until it is done.
pub async fn finish_destruction(state: &AppState) {
    if let Err(e) = state.keyring.shred(&state.db, &state.vault).await {
        tracing::error!(
            error = format!("{e:#}"),
            "shredding destroyed data keys; will retry"
        );
    }
    if let Some(token) = &state.token {
        if let Err(e) = destroy_token_objects(state, token).await {
            tracing::error!(error = %e.error, "destroying token objects; will retry");
        }
    }
}

async fn destroy_token_objects(state: &AppState, token: &crate::token::Token) -> ApiResult<()> {
    let rows = sqlx::query("SELECT key_ref FROM token_objects_to_destroy")
        .fetch_all(state.db.pool())
        .await?;
    for r in rows {
        let key_ref: String = r.try_get(0)?;
        token.destroy(&key_ref)?;
        sqlx::query("DELETE FROM token_objects_to_destroy WHERE key_ref = $1")
            .bind(&key_ref)
            .execute(state.db.pool())
            .await?;
    }
    Ok(())
}

fn key_aad(factory: &str, keyid: &str) -> String {
    format!("online-key/{factory}/{keyid}")
}

/// Signs `env` with every given key; an empty list is an error (the server would publish
/// metadata no client accepts).
pub fn sign_all<T: Metadata>(
    env: &mut Signed<T>,
    signers: &[&dyn Signer],
    role: Role,
) -> ApiResult<()> {
    if signers.is_empty() {
        return Err(ApiError::internal(&format!(
            "the server holds no online key for the {role} role"
        )));
    }
    for k in signers {
        env.sign(*k)?;
    }
    Ok(())
}

/// What a signing step needs: the Factory, its keys, the clock and the validity periods.
pub struct Signing<'a> {
    pub factory: &'a str,
    pub keys: &'a OnlineKeys,
    pub periods: &'a Periods,
    pub now: OffsetDateTime,
}

impl Signing<'_> {
    pub fn expires(&self, role: Role) -> ApiResult<Expires> {
        self.periods.expires(role, self.now)
    }

    pub fn now_unix(&self) -> i64 {
        self.now.unix_timestamp()
    }

    /// Signs `targets` (its version and expiry already set) with the online targets key(s)
    /// of `root` and stores it. Returns the envelope and the SHA-256 of its stored bytes.
    pub async fn publish_targets(
        &self,
        tx: &mut Tx,
        flavour: Flavour,
        root: &Root,
        targets: Targets,
    ) -> ApiResult<(Signed<Targets>, String)> {
        let env = self.sign_targets(root, targets)?;
        let sha = self.store_targets(tx, flavour, &env).await?;
        Ok((env, sha))
    }

    /// `targets` signed with the online targets key(s) of `root`, not stored yet.
    pub fn sign_targets(&self, root: &Root, targets: Targets) -> ApiResult<Signed<Targets>> {
        let mut env = Signed::new(targets)?;
        sign_all(
            &mut env,
            &self.keys.signers(root, Role::Targets),
            Role::Targets,
        )?;
        Ok(env)
    }

    /// Stores signed targets as the flavour's new head; returns the SHA-256 of the bytes.
    pub async fn store_targets(
        &self,
        tx: &mut Tx,
        flavour: Flavour,
        env: &Signed<Targets>,
    ) -> ApiResult<String> {
        let key = (self.factory, flavour, Role::Targets);
        let described = (env.signed.version, env.signed.expires.unix());
        store_body(tx, key, described, &env.to_bytes(), self.now_unix()).await
    }

    /// `next` (from [`edit_targets`]) signed with the online targets key(s) of `root`, as
    /// the bytes to store.
    pub fn sign_next_targets(
        &self,
        root: &Root,
        next: Box<Signed<TargetsHead>>,
    ) -> ApiResult<NextTargets> {
        let mut next = *next;
        sign_all(
            &mut next,
            &self.keys.signers(root, Role::Targets),
            Role::Targets,
        )?;
        Ok(NextTargets {
            version: next.signed.version,
            expires: next.signed.expires.unix(),
            body: next.into_bytes(),
        })
    }

    /// Publishes the next version of the targets whose stored bytes are `stored`, changing
    /// nothing but version and expiry (a renewal, or a re-signature under new online keys),
    /// with snapshot and timestamp.
    pub async fn renew_targets(
        &self,
        tx: &mut Tx,
        flavour: Flavour,
        root: &Root,
        stored: Vec<u8>,
    ) -> ApiResult<()> {
        let expires = self.expires(Role::Targets)?;
        let renewal = |_: &TargetsBytes| Ok(Some(TargetChanges::new()));
        let Edited::Next(next) = edit_targets(Bytes::from(stored), expires, renewal)? else {
            return Err(ApiError::internal("a renewal made no new targets version"));
        };
        let next = self.sign_next_targets(root, next)?;
        self.publish_next_targets(tx, flavour, root, &next).await?;
        Ok(())
    }

    /// Stores `next` as the flavour's targets head and publishes a snapshot and timestamp
    /// naming it. Returns the SHA-256 of its bytes.
    pub async fn publish_next_targets(
        &self,
        tx: &mut Tx,
        flavour: Flavour,
        root: &Root,
        next: &NextTargets,
    ) -> ApiResult<String> {
        let key = (self.factory, flavour, Role::Targets);
        let described = (next.version, next.expires);
        let sha = store_body(tx, key, described, &next.body, self.now_unix()).await?;
        self.snapshot_naming(tx, flavour, root, (next.version, next.body.len()))
            .await?;
        Ok(sha)
    }

    /// Publishes a new snapshot (naming the current targets version) and a new timestamp.
    pub async fn refresh_snapshot(
        &self,
        tx: &mut Tx,
        flavour: Flavour,
        root: &Root,
    ) -> ApiResult<()> {
        self.publish_snapshot(tx, flavour, root, 1).await
    }

    /// [`Signing::refresh_snapshot`] with snapshot and timestamp `step` versions past their
    /// heads (after a restore, past any version the lost server may have published).
    pub async fn publish_snapshot(
        &self,
        tx: &mut Tx,
        flavour: Flavour,
        root: &Root,
        step: u64,
    ) -> ApiResult<()> {
        let targets = require_head(tx, self.factory, flavour, Role::Targets).await?;
        let described = (positive(targets.version)?, targets.body.len());
        self.publish_snapshot_naming(tx, flavour, root, described, step)
            .await
    }

    /// [`Signing::refresh_snapshot`] for a targets version just stored in `tx`, given as
    /// its `(version, length in bytes)`: spares reading a large targets role back.
    async fn snapshot_naming(
        &self,
        tx: &mut Tx,
        flavour: Flavour,
        root: &Root,
        targets: (u64, usize),
    ) -> ApiResult<()> {
        self.publish_snapshot_naming(tx, flavour, root, targets, 1)
            .await
    }

    async fn publish_snapshot_naming(
        &self,
        tx: &mut Tx,
        flavour: Flavour,
        root: &Root,
        (targets_version, targets_len): (u64, usize),
        step: u64,
    ) -> ApiResult<()> {
        let snapshot = require_head(tx, self.factory, flavour, Role::Snapshot).await?;
        let mut meta = BTreeMap::new();
        meta.insert(
            "targets.json".to_owned(),
            targets_meta(targets_version, targets_len),
        );
        let next = after(snapshot.version, step)?;
        let mut env = Signed::new(Snapshot::new(next, self.expires(Role::Snapshot)?, meta))?;
        sign_all(
            &mut env,
            &self.keys.signers(root, Role::Snapshot),
            Role::Snapshot,
        )?;
        let (body, _) = store_signed(
            tx,
            self.factory,
            flavour,
            Role::Snapshot,
            &env,
            self.now_unix(),
        )
        .await?;
        self.publish_timestamp(tx, flavour, root, next, &body, step)
            .await
    }

    /// Publishes a new timestamp describing the current snapshot.
    pub async fn refresh_timestamp(
        &self,
        tx: &mut Tx,
        flavour: Flavour,
        root: &Root,
    ) -> ApiResult<()> {
        let snapshot = require_head(tx, self.factory, flavour, Role::Snapshot).await?;
        self.publish_timestamp(
            tx,
            flavour,
            root,
            positive(snapshot.version)?,
            &snapshot.body,
            1,
        )
        .await
    }

    async fn publish_timestamp(
        &self,
        tx: &mut Tx,
        flavour: Flavour,
        root: &Root,
        snapshot_version: u64,
        snapshot_body: &[u8],
        step: u64,
    ) -> ApiResult<()> {
        let current = require_head(tx, self.factory, flavour, Role::Timestamp).await?;
        let ts = Timestamp::new(
            after(current.version, step)?,
            self.expires(Role::Timestamp)?,
            MetaFile::describing(snapshot_version, snapshot_body),
        );
        let mut env = Signed::new(ts)?;
        sign_all(
            &mut env,
            &self.keys.signers(root, Role::Timestamp),
            Role::Timestamp,
        )?;
        store_signed(
            tx,
            self.factory,
            flavour,
            Role::Timestamp,
            &env,
            self.now_unix(),
        )
        .await?;
        Ok(())
    }
}

/// A signed targets version made by [`Signing::sign_next_targets`], not stored yet.
pub struct NextTargets {
    pub version: u64,
    /// Its expiry, in seconds since the epoch.
    pub expires: i64,
    /// The envelope as stored and served.
    pub body: Vec<u8>,
}

/// The snapshot's entry for `targets.json`: its version and length. python-tuf reads at
/// most 5,000,000 bytes of a targets role whose length the snapshot does not list, so the
/// length is always listed (and a device reads exactly that many bytes).
pub fn targets_meta(version: u64, length: usize) -> MetaFile {
    let mut m = MetaFile::new(version);
    m.length = Some(length as u64);
    m
}

/// The current root of `flavour`, parsed.
pub async fn current_root(tx: &mut Tx, factory: &str, flavour: Flavour) -> ApiResult<Signed<Root>> {
    require_head(tx, factory, flavour, Role::Root)
        .await?
        .parse()
}

/// The version `step` after `version`.
pub fn after(version: i64, step: u64) -> ApiResult<u64> {
    positive(version)?
        .checked_add(step)
        .ok_or_else(|| ApiError::internal("version overflow"))
}

pub fn positive(v: i64) -> ApiResult<u64> {
    u64::try_from(v).map_err(|_| ApiError::internal("stored version is negative"))
}

/// A random 32-byte secret, hex encoded (tokens, one-time URLs).
pub fn random_hex(bytes: usize) -> ApiResult<Zeroizing<String>> {
    use aws_lc_rs::rand::SecureRandom as _;
    let mut raw = Zeroizing::new(vec![0u8; bytes]);
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut raw)
        .map_err(|_| ApiError::internal("random number generator failed"))?;
    Ok(Zeroizing::new(hex::encode(raw.as_slice())))
}

#[cfg(test)]
mod retention_tests {
    use super::*;

    /// `n` old versions, newest first, below version `top`, each `size` bytes, published
    /// `every` seconds apart up to `now`.
    fn olds(top: i64, n: i64, size: u64, now: i64, every: i64) -> Vec<OldVersion> {
        (1..=n)
            .map(|i| OldVersion {
                version: top - i,
                size,
                published: now - i * every,
            })
            .collect()
    }

    #[test]
    fn the_previous_version_is_always_kept() {
        // Superseded long ago and larger than any budget: still kept.
        let one = [OldVersion {
            version: 9,
            size: 1 << 30,
            published: 0,
        }];
        assert_eq!(retention_cutoff((10, 1_000_000), &one), None);
        // The one before it goes.
        let two = [
            one[0],
            OldVersion {
                version: 8,
                ..one[0]
            },
        ];
        assert_eq!(retention_cutoff((10, 1_000_000), &two), Some(8));
    }

    #[test]
    fn old_versions_together_stay_within_the_byte_budget() {
        // Fast CI on a large file: 1,000-byte versions, one a second.
        let o = olds(100, 64, 1000, 10_000, 1);
        // The previous, then 3 more fit in 4 × 1000 (the 5th would pass it).
        assert_eq!(retention_cutoff((1000, 10_000), &o), Some(95));
    }

    #[test]
    fn versions_superseded_longer_ago_than_the_window_go() {
        // Tiny versions, one a minute: kept while superseded less than 600 s ago.
        let o = olds(100, 64, 1, 10_000, 60);
        // Version 99 was superseded now, 98 at 10_000 - 60, ... 89 at 10_000 - 600.
        assert_eq!(retention_cutoff((1000, 10_000), &o), Some(89));
    }

    #[test]
    fn at_most_keep_versions_in_all() {
        // Tiny versions, all within a second: the count bound decides.
        let o = olds(200, 70, 1, 10_000, 0);
        assert_eq!(
            retention_cutoff((1000, 10_000), &o),
            Some(200 - KEEP_VERSIONS)
        );
    }
}

#[cfg(test)]
mod body_tests {
    use super::*;

    async fn store() -> (tempfile::TempDir, crate::db::Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::Db::open_sqlite(&dir.path().join("t.sqlite"))
            .await
            .unwrap();
        db.migrate().await.unwrap();
        sqlx::query("INSERT INTO factories (name, created_at) VALUES ('f', 0)")
            .execute(db.pool())
            .await
            .unwrap();
        (dir, db)
    }

    fn bytes(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    async fn count(db: &crate::db::Db, sql: &str) -> i64 {
        sqlx::query(sql)
            .fetch_one(db.pool())
            .await
            .unwrap()
            .try_get(0)
            .unwrap()
    }

    const KEY: (&str, Flavour, Role) = ("f", Flavour::Ci, Role::Targets);
    const CHUNKS: &str = "SELECT COUNT(*) FROM metadata_chunks WHERE version = 2";

    #[tokio::test]
    async fn large_bodies_are_stored_in_chunks_and_read_back_whole() {
        let (_dir, db) = store().await;
        let small = bytes(1000, 1);
        let big = bytes(2 * BODY_CHUNK + 12_345, 2);
        let mut tx = db.begin_write().await.unwrap();
        store_body(&mut tx, KEY, (1, 100), &small, 10)
            .await
            .unwrap();
        store_body(&mut tx, KEY, (2, 100), &big, 11).await.unwrap();
        tx.commit().await.unwrap();

        let h = head(db.pool(), "f", Flavour::Ci, Role::Targets)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((h.version, h.body.len()), (2, big.len()));
        assert!(h.body == big, "the chunks in order");
        assert_eq!(h.sha256, tuf_core::hash::sha256_hex(&big));
        let (v1, _) = version(db.pool(), "f", Flavour::Ci, Role::Targets, 1)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(v1, small, "a small body stays inline");
        let (v2, _) = version(db.pool(), "f", Flavour::Ci, Role::Targets, 2)
            .await
            .unwrap()
            .unwrap();
        assert!(v2 == big);
        assert_eq!(count(&db, CHUNKS).await, 3);
        let inline = "SELECT LENGTH(body) FROM metadata WHERE version = 2";
        assert_eq!(count(&db, inline).await, 0);
        assert_eq!(count(&db, "SELECT COUNT(*) FROM metadata_chunks").await, 3);

        // Replaced in place: the chunks follow the body, both ways.
        let key = ("f", Flavour::Ci, Role::Targets, 2);
        let mut tx = db.begin_write().await.unwrap();
        replace_body(&mut tx, key, &small, "s").await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(count(&db, CHUNKS).await, 0);
        let (read, sha) = version(db.pool(), "f", Flavour::Ci, Role::Targets, 2)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((read, sha.as_str()), (small.clone(), "s"));
        let bigger = bytes(BODY_CHUNK + 1, 3);
        let mut tx = db.begin_write().await.unwrap();
        replace_body(&mut tx, key, &bigger, "b").await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(count(&db, CHUNKS).await, 2);
        let (read, _) = version(db.pool(), "f", Flavour::Ci, Role::Targets, 2)
            .await
            .unwrap()
            .unwrap();
        assert!(read == bigger);

        // Deleting a version (retention) deletes its chunks.
        sqlx::query("DELETE FROM metadata WHERE version = 2")
            .execute(db.pool())
            .await
            .unwrap();
        assert_eq!(count(&db, "SELECT COUNT(*) FROM metadata_chunks").await, 0);
    }

    #[tokio::test]
    async fn retention_counts_a_chunked_body_by_its_length() {
        let (_dir, db) = store().await;
        let big = bytes(BODY_CHUNK + 10, 4);
        let mut tx = db.begin_write().await.unwrap();
        // Six big versions within RETAIN_SECS: the budget (RETAIN_FACTOR times the newest)
        // prunes by the true sizes; counted by the empty inline column, all would stay.
        for v in 1..=6 {
            store_body(&mut tx, KEY, (v, 100), &big, 10 + v as i64)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        let kept = count(&db, "SELECT COUNT(*) FROM metadata").await;
        assert_eq!(
            kept,
            1 + RETAIN_FACTOR as i64,
            "the newest and the budget's worth"
        );
    }
}
