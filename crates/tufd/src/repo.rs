//! The Factory's TUF repositories as stored rows: metadata versions (exact signed bytes),
//! the current head of each role and flavour, the online keys, and the signing steps that
//! publish new targets, snapshot and timestamp versions inside a caller's transaction.

use std::collections::BTreeMap;

use sqlx::{Any, Executor, Row};
use time::OffsetDateTime;
use tuf_core::{
    Expires, KeyId, MetaFile, Metadata, PrivateKey, Role, Root, Signed, Signer, Snapshot, Targets,
    Timestamp,
};
use zeroize::Zeroizing;

use crate::db::Tx;
use crate::error::{ApiError, ApiResult};
use crate::vault::Vault;

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
    let row = sqlx::query(
        "SELECT m.version, m.body, m.sha256, m.expires, h.issued FROM heads h \
         JOIN metadata m ON m.factory = h.factory AND m.flavour = h.flavour \
         AND m.role = h.role AND m.version = h.version \
         WHERE h.factory = $1 AND h.flavour = $2 AND h.role = $3",
    )
    .bind(factory)
    .bind(flavour.as_str())
    .bind(role.as_str())
    .fetch_optional(ex)
    .await?;
    row.map(|r| {
        Ok(StoredMeta {
            version: r.try_get(0)?,
            body: r.try_get(1)?,
            sha256: r.try_get(2)?,
            expires: r.try_get(3)?,
            issued: r.try_get(4)?,
        })
    })
    .transpose()
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
    let row = sqlx::query(
        "SELECT body, sha256 FROM metadata \
         WHERE factory = $1 AND flavour = $2 AND role = $3 AND version = $4",
    )
    .bind(factory)
    .bind(flavour.as_str())
    .bind(role.as_str())
    .bind(version)
    .fetch_optional(ex)
    .await?;
    row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).transpose()
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
    let version =
        i64::try_from(env.signed.version()).map_err(|_| ApiError::internal("version overflow"))?;
    let expires = env.signed.expires().unix();
    let sha = tuf_core::hash::sha256_hex(&body);
    sqlx::query(
        "INSERT INTO metadata (factory, flavour, role, version, body, sha256, expires, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(factory)
    .bind(flavour.as_str())
    .bind(role.as_str())
    .bind(version)
    .bind(&body)
    .bind(&sha)
    .bind(expires)
    .bind(now)
    .execute(&mut **tx)
    .await?;
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
        // Old versions of the online roles are only needed by a client between its timestamp
        // and its last targets fetch; without pruning, every CI build would keep a copy of a
        // targets.json that can be megabytes. Roots are the chain of trust: never pruned.
        sqlx::query(
            "DELETE FROM metadata WHERE factory = $1 AND flavour = $2 AND role = $3 \
             AND version <= $4",
        )
        .bind(factory)
        .bind(flavour.as_str())
        .bind(role.as_str())
        .bind(version.saturating_sub(KEEP_VERSIONS))
        .execute(&mut **tx)
        .await?;
    }
    Ok((body, sha))
}

/// How many versions of targets, snapshot and timestamp stay downloadable (`N.targets.json`):
/// the newest and the 63 before it. A client that read a timestamp needs the versions it
/// names for as long as its update takes; 64 further publications in that time only make it
/// start over.
pub const KEEP_VERSIONS: i64 = 64;

/// The online private keys the server holds for one Factory, decrypted for the duration of a
/// request. `PrivateKey` zeroizes its PKCS#8 bytes on drop.
pub struct OnlineKeys {
    keys: BTreeMap<KeyId, (String, PrivateKey)>,
}

/// What an online key is for: `root` (the bootstrap root key), `targets`, `snapshot`,
/// `timestamp`.
pub type Purpose = Role;

impl OnlineKeys {
    pub async fn load(tx: &mut Tx, vault: &Vault, factory: &str) -> ApiResult<Self> {
        let rows = sqlx::query(
            "SELECT keyid, purpose, keytype, scheme, sealed FROM online_keys WHERE factory = $1",
        )
        .bind(factory)
        .fetch_all(&mut **tx)
        .await?;
        let mut keys = BTreeMap::new();
        for r in rows {
            let keyid: String = r.try_get(0)?;
            let purpose: String = r.try_get(1)?;
            let keytype: String = r.try_get(2)?;
            let scheme: String = r.try_get(3)?;
            let sealed: Vec<u8> = r.try_get(4)?;
            let der = vault.open(&key_aad(factory, &keyid), &sealed)?;
            let key = PrivateKey::from_pkcs8_der(&keytype, &scheme, &der)?;
            keys.insert(key.key_id().clone(), (purpose, key));
        }
        Ok(Self { keys })
    }

    /// The held keys of `purpose` that `root` lists for `role`.
    pub fn signers(&self, root: &Root, role: Role) -> Vec<&PrivateKey> {
        root.role(role)
            .keyids
            .iter()
            .filter_map(|id| self.keys.get(id))
            .filter(|(purpose, _)| purpose == role.as_str())
            .map(|(_, k)| k)
            .collect()
    }

    /// Like [`OnlineKeys::signers`], but also the keys generated for `role` by an open
    /// online-key rotation (purpose `pending-<role>`): what the apply checks may count on.
    pub fn candidates(&self, root: &Root, role: Role) -> Vec<&PrivateKey> {
        let pending = pending_purpose(role);
        root.role(role)
            .keyids
            .iter()
            .filter_map(|id| self.keys.get(id))
            .filter(|(purpose, _)| purpose == role.as_str() || *purpose == pending)
            .map(|(_, k)| k)
            .collect()
    }

    /// Key IDs of `role`'s online keys, active and (with `pending`) newly generated ones.
    pub fn ids_of(&self, role: Role, pending: bool) -> Vec<&KeyId> {
        let p = pending_purpose(role);
        self.keys
            .iter()
            .filter(|(_, (purpose, _))| purpose == role.as_str() || (pending && *purpose == p))
            .map(|(id, _)| id)
            .collect()
    }

    /// Keys held for tests, as `(purpose, key)`.
    #[cfg(test)]
    pub fn from_keys(keys: Vec<(&str, PrivateKey)>) -> Self {
        Self {
            keys: keys
                .into_iter()
                .map(|(p, k)| (k.key_id().clone(), (p.to_owned(), k)))
                .collect(),
        }
    }

    /// The public parts of every key held, with their purposes: what the ceremony rules
    /// need to know about the server.
    pub fn server_keys(&self) -> tuf_ceremony::ServerKeys {
        tuf_ceremony::ServerKeys::new(self.keys.values().map(|(purpose, k)| {
            tuf_ceremony::HeldKey {
                purpose: purpose.clone(),
                key: k.public_key().clone(),
            }
        }))
    }

    /// Whether an online-key rotation left new keys that are not active yet.
    pub fn has_pending(&self) -> bool {
        self.keys.values().any(|(p, _)| p.starts_with(PENDING))
    }

    pub fn of_purpose(&self, purpose: Purpose) -> impl Iterator<Item = &PrivateKey> {
        self.keys
            .values()
            .filter(move |(p, _)| p == purpose.as_str())
            .map(|(_, k)| k)
    }
}

/// Purpose prefix of online keys generated by an open online-key rotation; `apply` makes
/// them active, `cancel` deletes them.
pub const PENDING: &str = "pending-";

pub fn pending_purpose(role: Role) -> String {
    format!("{PENDING}{}", role.as_str())
}

/// Inserts a newly generated online key, sealed with the server key.
pub async fn insert_online_key(
    tx: &mut Tx,
    vault: &Vault,
    factory: &str,
    purpose: Purpose,
    key: &PrivateKey,
    now: i64,
) -> ApiResult<()> {
    insert_online_key_as(tx, vault, factory, purpose.as_str(), key, now).await
}

/// Inserts a newly generated online key with a purpose label (`targets`, or
/// `pending-targets` for a key of an open online-key rotation, ...).
pub async fn insert_online_key_as(
    tx: &mut Tx,
    vault: &Vault,
    factory: &str,
    purpose: &str,
    key: &PrivateKey,
    now: i64,
) -> ApiResult<()> {
    let keyid = key.key_id().as_str();
    let sealed = vault.seal(&key_aad(factory, keyid), key.pkcs8_der())?;
    let public = tuf_core::Signer::public_key(key);
    sqlx::query(
        "INSERT INTO online_keys (factory, keyid, purpose, keytype, scheme, sealed, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(factory)
    .bind(keyid)
    .bind(purpose)
    .bind(&public.keytype)
    .bind(&public.scheme)
    .bind(sealed)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn key_aad(factory: &str, keyid: &str) -> String {
    format!("online-key/{factory}/{keyid}")
}

/// Signs `env` with every given key; an empty list is an error (the server would publish
/// metadata no client accepts).
pub fn sign_all<T: Metadata>(
    env: &mut Signed<T>,
    signers: &[&PrivateKey],
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
        Ok(Expires::after(self.now, self.periods.of(role))?)
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
        let mut env = Signed::new(targets)?;
        sign_all(
            &mut env,
            &self.keys.signers(root, Role::Targets),
            Role::Targets,
        )?;
        let (_, sha) = store_signed(
            tx,
            self.factory,
            flavour,
            Role::Targets,
            &env,
            self.now_unix(),
        )
        .await?;
        Ok((env, sha))
    }

    /// Publishes a new snapshot (naming the current targets version) and a new timestamp.
    pub async fn refresh_snapshot(
        &self,
        tx: &mut Tx,
        flavour: Flavour,
        root: &Root,
    ) -> ApiResult<()> {
        let targets = require_head(tx, self.factory, flavour, Role::Targets).await?;
        let snapshot = require_head(tx, self.factory, flavour, Role::Snapshot).await?;
        let mut meta = BTreeMap::new();
        meta.insert(
            "targets.json".to_owned(),
            MetaFile::new(positive(targets.version)?),
        );
        let next = positive(snapshot.version)? + 1;
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
        self.publish_timestamp(tx, flavour, root, next, &body).await
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
    ) -> ApiResult<()> {
        let current = require_head(tx, self.factory, flavour, Role::Timestamp).await?;
        let ts = Timestamp::new(
            positive(current.version)? + 1,
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

/// The current root of `flavour`, parsed.
pub async fn current_root(tx: &mut Tx, factory: &str, flavour: Flavour) -> ApiResult<Signed<Root>> {
    require_head(tx, factory, flavour, Role::Root)
        .await?
        .parse()
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
