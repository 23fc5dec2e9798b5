//! Crypto-shredding: destroyed secrets stay destroyed without the database forgetting them.
//!
//! Each destroyable secret (an online private key, the one-time credentials tarball) is sealed
//! (AES-256-GCM) under a **data key** of its own. Data keys are stored in the `data_keys`
//! table wrapped twice: under the key of the current **epoch** and then under the server key
//! ([`Vault`]). Epoch keys form a one-way chain, `K(e+1) = HMAC-SHA256(K(e), "ratchet")`:
//! from `K(e)` every later key follows, no earlier one. Each tufd keeps the current epoch key
//! in `<data-dir>/keyring` (0600), outside the database.
//!
//! Destroying a secret marks its data key (in the transaction that removes the secret). Right
//! after that commits, [`Keyring::shred`] opens the next epoch: in one transaction every live
//! data key is re-wrapped under `K(e+1)`, the marked ones are left behind, and the epoch
//! number moves on; then the local file is replaced by `K(e+1)` and the old file's bytes are
//! overwritten. Every copy of the database that ever held the destroyed secret (dead tuples,
//! WAL, a base backup) holds it only under `K(e)`, which no longer exists once every tufd
//! sharing the database has moved past `e` (each does on its next use of a data key, and every
//! upkeep interval).
//!
//! On PostgreSQL a transaction that touches data keys takes the keyring row `FOR SHARE` first
//! and [`Keyring::shred`] takes it `FOR UPDATE`, so no data key is wrapped under an epoch that
//! is being left, and nothing reads a half re-wrapped table. SQLite has one writer at a time.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{bail, Context as _};
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use sqlx::Row;
use zeroize::Zeroizing;

use crate::db::{Backend, Db, Tx};
use crate::error::{ApiError, ApiResult};
use crate::vault::Vault;

/// The keyring of this tufd: the current epoch and its key, mirrored in `<data-dir>/keyring`.
pub struct Keyring {
    path: PathBuf,
    backend: Backend,
    chain: Mutex<Chain>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keyring(..)")
    }
}

impl Keyring {
    /// Opens the keyring of `db`: creates it on a new store, follows the database's epoch
    /// when this file is behind, refuses a file that belongs to another store or is ahead of
    /// the database (a database restored from an older backup).
    pub async fn open(data_dir: &Path, db: &Db) -> anyhow::Result<Self> {
        let path = data_dir.join(FILE);
        let local = Chain::read(&path)?;
        let row = sqlx::query("SELECT epoch, check_value FROM keyring WHERE id = 1")
            .fetch_optional(db.pool())
            .await?;
        let chain = match (row, local) {
            (None, local) => create(db, &path, local).await?,
            (Some(_), None) => return Err(missing(&path)),
            (Some(row), Some(local)) => {
                let epoch: i64 = row.try_get(0)?;
                let check: Vec<u8> = row.try_get(1)?;
                follow(&path, local, epoch, &check)?
            }
        };
        Ok(Self {
            path,
            backend: db.backend(),
            chain: Mutex::new(chain),
        })
    }

    /// Seals `plaintext` under a new data key, stored (wrapped) in `tx`. Returns the data
    /// key's ID (kept with the secret) and the sealed bytes.
    pub async fn seal(
        &self,
        tx: &mut Tx,
        vault: &Vault,
        aad: &str,
        plaintext: &[u8],
    ) -> ApiResult<(String, Vec<u8>)> {
        let epoch = self.share(tx).await?;
        let id = random_id()?;
        let mut dk = Zeroizing::new([0u8; 32]);
        fill(dk.as_mut())?;
        let wrapped = self.wrap(vault, &id, epoch, dk.as_ref())?;
        sqlx::query(
            "INSERT INTO data_keys (id, epoch, wrapped, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&id)
        .bind(epoch)
        .bind(wrapped)
        .bind(crate::db::now())
        .execute(&mut **tx)
        .await?;
        let sealed = aead_seal(dk.as_ref(), aad, plaintext)?;
        Ok((id, sealed))
    }

    /// Opens a secret sealed by [`Keyring::seal`] under data key `id`.
    pub async fn open_secret(
        &self,
        tx: &mut Tx,
        vault: &Vault,
        id: &str,
        aad: &str,
        sealed: &[u8],
    ) -> ApiResult<Zeroizing<Vec<u8>>> {
        self.share(tx).await?;
        let row = sqlx::query(
            "SELECT epoch, wrapped FROM data_keys WHERE id = $1 AND destroyed_at IS NULL",
        )
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| ApiError::internal("a sealed secret's data key is missing"))?;
        let key = WrappedKey {
            id: id.to_owned(),
            epoch: row.try_get(0)?,
            wrapped: row.try_get(1)?,
        };
        self.open_with(vault, &key, aad, sealed)
    }

    /// Opens a secret whose data key the caller read (joined to the secret's row) after
    /// [`Keyring::share`] in the same transaction: one query for many secrets.
    pub fn open_with(
        &self,
        vault: &Vault,
        key: &WrappedKey,
        aad: &str,
        sealed: &[u8],
    ) -> ApiResult<Zeroizing<Vec<u8>>> {
        let dk = self.unwrap(vault, &key.id, key.epoch, &key.wrapped)?;
        aead_open(&dk, aad, sealed)
            .map_err(|_| ApiError::internal("a sealed secret does not open with its data key"))
    }

    /// Marks data key `id` destroyed in `tx`; [`Keyring::shred`] makes that final once `tx`
    /// has committed.
    pub async fn destroy(&self, tx: &mut Tx, id: &str) -> ApiResult<()> {
        self.share(tx).await?;
        sqlx::query("UPDATE data_keys SET destroyed_at = $1 WHERE id = $2")
            .bind(crate::db::now())
            .bind(id)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Opens the next epoch if any data key was destroyed since the last one: live data keys
    /// re-wrapped, destroyed ones dropped, the local epoch key replaced. Returns whether it
    /// did. Also moves this tufd to the database's epoch when another replica has advanced.
    pub async fn shred(&self, db: &Db, vault: &Vault) -> anyhow::Result<bool> {
        // Most calls (every upkeep tick) find nothing to do: look without the lock first, so
        // writers are not held up for nothing.
        let pending = sqlx::query("SELECT 1 FROM data_keys WHERE destroyed_at IS NOT NULL")
            .fetch_optional(db.pool())
            .await?
            .is_some();
        if !pending {
            let epoch: i64 = sqlx::query("SELECT epoch FROM keyring WHERE id = 1")
                .fetch_one(db.pool())
                .await?
                .try_get(0)?;
            self.forward(epoch)?;
            return Ok(false);
        }
        let mut tx = db.begin_write().await?;
        let lock = match self.backend {
            Backend::Postgres => "SELECT epoch FROM keyring WHERE id = 1 FOR UPDATE",
            Backend::Sqlite => "SELECT epoch FROM keyring WHERE id = 1",
        };
        let epoch: i64 = sqlx::query(lock).fetch_one(&mut *tx).await?.try_get(0)?;
        let destroyed = sqlx::query("SELECT 1 FROM data_keys WHERE destroyed_at IS NOT NULL")
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !destroyed {
            tx.rollback().await?;
            self.forward(epoch)?;
            return Ok(false);
        }
        let next = self.rewrap_all(&mut tx, vault, epoch).await?;
        sqlx::query("DELETE FROM data_keys WHERE destroyed_at IS NOT NULL")
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE keyring SET epoch = $1, check_value = $2 WHERE id = 1")
            .bind(next.epoch)
            .bind(next.check())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        // Only after the commit: a file ahead of the database could open nothing.
        self.replace(next)?;
        if self.backend == Backend::Sqlite {
            // Defence in depth (the shredding does not depend on it): the WAL's old frames
            // go now, not at some later checkpoint.
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(db.pool())
                .await?;
        }
        Ok(true)
    }

    /// Re-wraps every live data key under the epoch after `epoch`; returns that epoch.
    async fn rewrap_all(&self, tx: &mut Tx, vault: &Vault, epoch: i64) -> anyhow::Result<Chain> {
        let current = self.at(epoch)?;
        let next = current.next();
        let rows =
            sqlx::query("SELECT id, epoch, wrapped FROM data_keys WHERE destroyed_at IS NULL")
                .fetch_all(&mut **tx)
                .await?;
        for r in rows {
            let (id, e, wrapped): (String, i64, Vec<u8>) =
                (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
            anyhow::ensure!(
                e == epoch,
                "data key {id} is of epoch {e}, not the current {epoch}"
            );
            let dk = unwrap_with(&current, vault, &id, &wrapped)
                .map_err(|e| anyhow::anyhow!("data key {id}: {}", e.error))?;
            let again = wrap_with(&next, vault, &id, &dk)
                .map_err(|e| anyhow::anyhow!("data key {id}: {}", e.error))?;
            sqlx::query("UPDATE data_keys SET epoch = $1, wrapped = $2 WHERE id = $3")
                .bind(next.epoch)
                .bind(again)
                .bind(&id)
                .execute(&mut **tx)
                .await?;
        }
        Ok(next)
    }

    /// The current epoch, read under a share lock (PostgreSQL) that [`Keyring::shred`] waits
    /// for, so the epoch cannot move while `tx` uses data keys. Taken before `tx` reads or
    /// writes any data key.
    pub async fn share(&self, tx: &mut Tx) -> ApiResult<i64> {
        let q = match self.backend {
            Backend::Postgres => "SELECT epoch FROM keyring WHERE id = 1 FOR SHARE",
            Backend::Sqlite => "SELECT epoch FROM keyring WHERE id = 1",
        };
        Ok(sqlx::query(q).fetch_one(&mut **tx).await?.try_get(0)?)
    }

    fn wrap(&self, vault: &Vault, id: &str, epoch: i64, dk: &[u8]) -> ApiResult<Vec<u8>> {
        let chain = self.at(epoch).map_err(keyring_error)?;
        wrap_with(&chain, vault, id, dk)
    }

    fn unwrap(
        &self,
        vault: &Vault,
        id: &str,
        epoch: i64,
        wrapped: &[u8],
    ) -> ApiResult<Zeroizing<Vec<u8>>> {
        let chain = self.at(epoch).map_err(keyring_error)?;
        unwrap_with(&chain, vault, id, wrapped)
    }

    /// The chain at `epoch`, moving this tufd forward to it first when it is behind.
    fn at(&self, epoch: i64) -> anyhow::Result<Chain> {
        self.forward(epoch)?;
        let chain = self.chain.lock().unwrap_or_else(|p| p.into_inner());
        if chain.epoch != epoch {
            bail!(
                "keyring epoch {epoch} was shredded here already (this tufd is at {})",
                chain.epoch
            );
        }
        Ok(chain.clone())
    }

    /// Moves the local chain forward to `epoch` (no-op when it is there or beyond).
    fn forward(&self, epoch: i64) -> anyhow::Result<()> {
        let mut chain = self.chain.lock().unwrap_or_else(|p| p.into_inner());
        if chain.epoch >= epoch {
            return Ok(());
        }
        let mut next = chain.clone();
        while next.epoch < epoch {
            next = next.next();
        }
        next.write(&self.path)?;
        *chain = next;
        Ok(())
    }

    fn replace(&self, next: Chain) -> anyhow::Result<()> {
        let mut chain = self.chain.lock().unwrap_or_else(|p| p.into_inner());
        if chain.epoch < next.epoch {
            next.write(&self.path)?;
            *chain = next;
        }
        Ok(())
    }
}

/// What [`Keyring::open`] would refuse (a missing, foreign or newer keyring file), found
/// without writing anything.
pub async fn check(data_dir: &Path, db: &Db) -> anyhow::Result<()> {
    let path = data_dir.join(FILE);
    let local = Chain::read(&path)?;
    let Some((epoch, check)) = row(db).await? else {
        return Ok(());
    };
    let local = local.ok_or_else(|| missing(&path))?;
    advance(&path, local, epoch, &check)?;
    Ok(())
}

/// The keyring file at `path` moved forward to `db`'s epoch and checked against it, as the
/// bytes of a keyring file (nothing is written): what a backup of `db` holds. A backup
/// then holds no key of an epoch older than its database's.
pub async fn file_for(path: &Path, db: &Db) -> anyhow::Result<Zeroizing<String>> {
    let local = Chain::read(path)?.ok_or_else(|| missing(path))?;
    let (epoch, check) = row(db)
        .await?
        .context("the database has no keyring (start this tufd on it once first)")?;
    Ok(advance(path, local, epoch, &check)?.text())
}

/// Replaces the server key layer of every data key (`old` opened, `new` sealed) in `tx`;
/// the epoch layer inside is untouched. Returns how many data keys there were.
pub async fn rewrap_server_layer(tx: &mut Tx, old: &Vault, new: &Vault) -> anyhow::Result<usize> {
    let rows = sqlx::query("SELECT id, epoch, wrapped FROM data_keys")
        .fetch_all(&mut **tx)
        .await?;
    for r in &rows {
        let (id, epoch, wrapped): (String, i64, Vec<u8>) =
            (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
        let aad = data_key_aad(&id, epoch);
        let inner = old
            .open(&aad, &wrapped)
            .with_context(|| format!("data key {id} does not open with the current server key"))?;
        sqlx::query("UPDATE data_keys SET wrapped = $1 WHERE id = $2")
            .bind(new.seal(&aad, &inner)?)
            .bind(&id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(rows.len())
}

async fn row(db: &Db) -> anyhow::Result<Option<(i64, Vec<u8>)>> {
    let row = sqlx::query("SELECT epoch, check_value FROM keyring WHERE id = 1")
        .fetch_optional(db.pool())
        .await?;
    Ok(row
        .map(|r| Ok::<_, sqlx::Error>((r.try_get(0)?, r.try_get(1)?)))
        .transpose()?)
}

fn missing(path: &Path) -> anyhow::Error {
    anyhow::anyhow!(
        "this database's keyring epoch key is not in {} (it never is in the database): \
         copy the file `keyring` from the data directory of a tufd that shares this \
         database (mode 0600), or the one of the backup the database comes from, then start \
         again",
        path.display()
    )
}

/// A data key as stored: its ID, epoch and wrapped bytes.
pub struct WrappedKey {
    pub id: String,
    pub epoch: i64,
    pub wrapped: Vec<u8>,
}

/// One link of the chain: an epoch and its key.
#[derive(Clone)]
struct Chain {
    epoch: i64,
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Chain(epoch {})", self.epoch)
    }
}

impl Chain {
    fn derive(&self, label: &[u8]) -> Zeroizing<[u8; 32]> {
        let k = hmac::Key::new(hmac::HMAC_SHA256, self.key.as_ref());
        let tag = hmac::sign(&k, label);
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(tag.as_ref());
        out
    }

    fn next(&self) -> Chain {
        Chain {
            epoch: self.epoch + 1,
            key: self.derive(b"tufd keyring ratchet v1"),
        }
    }

    fn check(&self) -> Vec<u8> {
        self.derive(b"tufd keyring check v1").to_vec()
    }

    fn wrapping_key(&self) -> Zeroizing<[u8; 32]> {
        self.derive(b"tufd keyring wrap v1")
    }

    /// The keyring file's contents for this link.
    fn text(&self) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "{MAGIC}\n{}\n{}\n",
            self.epoch,
            hex::encode(self.key.as_ref())
        ))
    }

    fn read(path: &Path) -> anyhow::Result<Option<Chain>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => Zeroizing::new(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let bad = || anyhow::anyhow!("{} is not a tufd keyring file", path.display());
        let mut lines = text.lines();
        if lines.next() != Some(MAGIC) {
            return Err(bad());
        }
        let epoch: i64 = lines.next().and_then(|l| l.parse().ok()).ok_or_else(bad)?;
        let hex_key = lines.next().ok_or_else(bad)?;
        let raw = Zeroizing::new(hex::decode(hex_key).map_err(|_| bad())?);
        if raw.len() != 32 || epoch < 0 {
            return Err(bad());
        }
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&raw);
        Ok(Some(Chain { epoch, key }))
    }

    /// Replaces the file with this link; the old file's bytes are overwritten afterwards,
    /// through a handle opened before the replacement (its name is then already gone). What a
    /// file system keeps of overwritten blocks (copy-on-write, journals, SSD remapping) is
    /// beyond reach: docs/ARCHITECTURE.md says what that means.
    fn write(&self, path: &Path) -> anyhow::Result<()> {
        let old = std::fs::OpenOptions::new().write(true).open(path).ok();
        let old_len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        crate::files::write_atomic(path, self.text().as_bytes())?;
        if let Some(mut f) = old {
            use std::io::Write as _;
            let zeros = vec![0u8; usize::try_from(old_len).unwrap_or(0)];
            f.write_all(&zeros)
                .and_then(|()| f.sync_all())
                .with_context(|| format!("overwriting the previous {}", path.display()))?;
        }
        Ok(())
    }
}

/// A new store: the keyring file the operator provided, or (none) a new one at epoch 0 (the
/// file first, then the row; a replica that loses the race to a new file removes its own and
/// asks for the winner's).
async fn create(db: &Db, path: &Path, local: Option<Chain>) -> anyhow::Result<Chain> {
    let fresh = local.is_none();
    let chain = match local {
        Some(c) => c,
        None => {
            let mut key = Zeroizing::new([0u8; 32]);
            fill(key.as_mut()).map_err(|e| anyhow::anyhow!(e.error))?;
            let c = Chain { epoch: 0, key };
            c.write(path)?;
            c
        }
    };
    let inserted = sqlx::query(
        "INSERT INTO keyring (id, epoch, check_value) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING",
    )
    .bind(chain.epoch)
    .bind(chain.check())
    .execute(db.pool())
    .await?
    .rows_affected();
    if inserted == 0 {
        if fresh {
            let _ = std::fs::remove_file(path);
            bail!(
                "another tufd created this database's keyring at the same time: copy the file \
                 `keyring` from its data directory to {} and start again",
                path.display()
            );
        }
        // Replicas given copies of one keyring file, starting together: the first inserted
        // it; the others check that theirs is the same.
        let row = sqlx::query("SELECT epoch, check_value FROM keyring WHERE id = 1")
            .fetch_one(db.pool())
            .await?;
        return follow(path, chain, row.try_get(0)?, &row.try_get::<Vec<u8>, _>(1)?);
    }
    Ok(chain)
}

/// The local chain moved to the database's `epoch`, checked against its check value, and
/// written to `path`.
fn follow(path: &Path, local: Chain, epoch: i64, check: &[u8]) -> anyhow::Result<Chain> {
    let chain = advance(path, local, epoch, check)?;
    chain.write(path)?;
    Ok(chain)
}

/// The local chain (read from `path`) moved to the database's `epoch` and checked against its
/// check value; nothing is written.
fn advance(path: &Path, local: Chain, epoch: i64, check: &[u8]) -> anyhow::Result<Chain> {
    if local.epoch > epoch {
        bail!(
            "{} is at keyring epoch {}, ahead of the database (epoch {epoch}): the database \
             was restored from a backup older than this file. Restore the keyring file of the \
             same backup, or start from the database the file belongs to",
            path.display(),
            local.epoch
        );
    }
    let mut chain = local;
    while chain.epoch < epoch {
        chain = chain.next();
    }
    if chain.check() != check {
        bail!(
            "{} does not belong to this database (its key does not match the database's \
             keyring): copy the file `keyring` of a tufd that shares this database",
            path.display()
        );
    }
    Ok(chain)
}

/// The associated data of a data key's two layers: its ID and epoch.
fn data_key_aad(id: &str, epoch: i64) -> String {
    format!("data-key/{id}/{epoch}")
}

fn wrap_with(chain: &Chain, vault: &Vault, id: &str, dk: &[u8]) -> ApiResult<Vec<u8>> {
    let aad = data_key_aad(id, chain.epoch);
    let inner = aead_seal(chain.wrapping_key().as_ref(), &aad, dk)?;
    Ok(vault.seal(&aad, &inner)?)
}

fn unwrap_with(
    chain: &Chain,
    vault: &Vault,
    id: &str,
    wrapped: &[u8],
) -> ApiResult<Zeroizing<Vec<u8>>> {
    let aad = data_key_aad(id, chain.epoch);
    let inner = vault.open(&aad, wrapped)?;
    aead_open(chain.wrapping_key().as_ref(), &aad, &inner)
        .map_err(|_| ApiError::internal("a data key does not open with the keyring"))
}

/// `nonce || ciphertext || tag` under `key` (32 bytes).
fn aead_seal(key: &[u8], aad: &str, plaintext: &[u8]) -> ApiResult<Vec<u8>> {
    let k = aead_key(key)?;
    let mut nonce = [0u8; NONCE_LEN];
    fill(&mut nonce)?;
    let mut buf = plaintext.to_vec();
    k.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad.as_bytes()),
        &mut buf,
    )
    .map_err(|_| ApiError::internal("encryption failed"))?;
    let mut out = Vec::with_capacity(NONCE_LEN + buf.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&buf);
    Ok(out)
}

fn aead_open(key: &[u8], aad: &str, sealed: &[u8]) -> ApiResult<Zeroizing<Vec<u8>>> {
    let k = aead_key(key)?;
    let short = || ApiError::internal("sealed data is truncated");
    if sealed.len() < NONCE_LEN + AES_256_GCM.tag_len() {
        return Err(short());
    }
    let (nonce, ct) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| short())?;
    let mut buf = Zeroizing::new(ct.to_vec());
    let len = k
        .open_in_place(nonce, Aad::from(aad.as_bytes()), buf.as_mut_slice())
        .map_err(|_| ApiError::internal("sealed data does not open"))?
        .len();
    buf.truncate(len);
    Ok(buf)
}

fn aead_key(key: &[u8]) -> ApiResult<LessSafeKey> {
    let k = UnboundKey::new(&AES_256_GCM, key).map_err(|_| ApiError::internal("AES key"))?;
    Ok(LessSafeKey::new(k))
}

fn random_id() -> ApiResult<String> {
    let mut raw = [0u8; 16];
    fill(&mut raw)?;
    Ok(hex::encode(raw))
}

fn fill(buf: &mut [u8]) -> ApiResult<()> {
    SystemRandom::new()
        .fill(buf)
        .map_err(|_| ApiError::internal("random number generator failed"))
}

fn keyring_error(e: anyhow::Error) -> ApiError {
    tracing::error!(error = format!("{e:#}"), "keyring");
    ApiError::internal("the keyring cannot open this data key")
}

/// The keyring file's name in the data directory.
pub const FILE: &str = "keyring";

const MAGIC: &str = "tufd-keyring 1";

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(epoch: i64) -> Chain {
        Chain {
            epoch,
            key: Zeroizing::new([7u8; 32]),
        }
    }

    #[test]
    fn the_chain_goes_one_way_and_each_epoch_wraps_differently() {
        let c0 = chain(0);
        let c1 = c0.next();
        assert_eq!(c1.epoch, 1);
        assert_ne!(c1.key.as_ref(), c0.key.as_ref());
        assert_ne!(c1.wrapping_key().as_ref(), c0.wrapping_key().as_ref());
        assert_ne!(c1.check(), c0.check());
        // Deterministic: every replica computes the same next key.
        assert_eq!(c0.next().key.as_ref(), c1.key.as_ref());
    }

    #[test]
    fn a_wrapped_key_opens_only_in_its_epoch() {
        let vault = Vault::from_hex(&Vault::generate_hex().unwrap()).unwrap();
        let c0 = chain(0);
        let w = wrap_with(&c0, &vault, "id", b"0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!(
            unwrap_with(&c0, &vault, "id", &w).unwrap().as_slice(),
            b"0123456789abcdef0123456789abcdef"
        );
        assert!(unwrap_with(&c0.next(), &vault, "id", &w).is_err());
        assert!(unwrap_with(&c0, &vault, "other", &w).is_err());
    }

    #[test]
    fn the_file_round_trips_and_the_old_one_is_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        assert!(Chain::read(&path).unwrap().is_none());
        let c0 = chain(3);
        c0.write(&path).unwrap();
        let back = Chain::read(&path).unwrap().unwrap();
        assert_eq!(back.epoch, 3);
        assert_eq!(back.key.as_ref(), c0.key.as_ref());
        let old = std::fs::File::open(&path).unwrap();
        c0.next().write(&path).unwrap();
        let mut left = Vec::new();
        std::io::Read::read_to_end(&mut &old, &mut left).unwrap();
        assert!(left.iter().all(|b| *b == 0), "old bytes remain");
        assert_eq!(Chain::read(&path).unwrap().unwrap().epoch, 4);
        std::fs::write(&path, "junk").unwrap();
        assert!(Chain::read(&path).is_err());
    }

    #[test]
    fn follow_refuses_a_file_ahead_or_foreign() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        let c0 = chain(0);
        let c2 = c0.next().next();
        let followed = follow(&path, c0.clone(), 2, &c2.check()).unwrap();
        assert_eq!(followed.key.as_ref(), c2.key.as_ref());
        assert!(follow(&path, c2.clone(), 1, &c0.next().check())
            .unwrap_err()
            .to_string()
            .contains("ahead of the database"));
        let foreign = Chain {
            epoch: 0,
            key: Zeroizing::new([9u8; 32]),
        };
        assert!(follow(&path, foreign, 2, &c2.check())
            .unwrap_err()
            .to_string()
            .contains("does not belong"));
    }
}
