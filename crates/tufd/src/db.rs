//! The store: one `sqlx::AnyPool` over SQLite (embedded default) or PostgreSQL (replicas).
//!
//! Queries are runtime-checked and written in the SQL both backends accept (`$N`
//! parameters, `ON CONFLICT`, `RETURNING`); only the migrations differ, one directory per
//! backend. Every write that matters runs in one transaction that starts by locking the
//! Factory row ([`lock_factory`]), so concurrent writers on any replica serialise per Factory.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, Row, Transaction};

use crate::error::{ApiError, ApiResult};

pub type Tx = Transaction<'static, Any>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of_url(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else {
            anyhow::bail!("unsupported database URL scheme: use postgres:// or sqlite://")
        }
    }
}

#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

impl Db {
    /// Opens (creating if needed) the SQLite file `path`.
    pub async fn open_sqlite(path: &Path) -> anyhow::Result<Self> {
        let url = format!("sqlite://{}?mode=rwc", path.display());
        Self::connect(&url).await
    }

    /// Connects to `url` (`sqlite://...` or `postgres://...`).
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url)?;
        let options = AnyConnectOptions::from_str(url).context("parsing the database URL")?;
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 8 } else { 16 })
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the one writer; the busy timeout makes
                        // writers queue instead of failing. secure_delete zeroes what a
                        // delete frees (defence in depth: destroyed secrets are shredded by
                        // the keyring, not by SQLite forgetting them).
                        for pragma in [
                            "PRAGMA journal_mode = WAL",
                            "PRAGMA busy_timeout = 30000",
                            "PRAGMA foreign_keys = ON",
                            "PRAGMA secure_delete = ON",
                        ] {
                            sqlx::query(pragma).execute(&mut *conn).await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .context("connecting to the database")?;
        Ok(Self { pool, backend })
    }

    pub async fn migrate(&self) -> anyhow::Result<()> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator
            .run(&self.pool)
            .await
            .context("running database migrations")?;
        Ok(())
    }

    /// The newest migration this tufd has for its backend: a database migrated further was
    /// upgraded by a newer tufd.
    pub fn newest_migration(&self) -> i64 {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.iter().map(|m| m.version).max().unwrap_or(0)
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A transaction that will write. On SQLite it takes the write lock at `BEGIN`, so a
    /// read-then-write never fails on lock upgrade; on PostgreSQL the Factory row lock does
    /// the same job.
    pub async fn begin_write(&self) -> Result<Tx, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    pub async fn setting(&self, name: &str) -> Result<Option<String>, sqlx::Error> {
        let row = sqlx::query("SELECT value FROM settings WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| r.try_get::<String, _>(0)).transpose()
    }

    /// Inserts a setting unless one exists; returns the stored value (first writer wins
    /// across replicas).
    pub async fn setting_or_insert(&self, name: &str, value: &str) -> Result<String, sqlx::Error> {
        sqlx::query(
            "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(self.setting(name).await?.unwrap_or_default())
    }
}

/// Locks the Factory row for the rest of `tx` (an `UPDATE`, so it is a row lock on
/// PostgreSQL and the write lock on SQLite). Returns false when the Factory does not exist.
pub async fn lock_factory(tx: &mut Tx, factory: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE factories SET lock_seq = lock_seq + 1 WHERE name = $1")
        .bind(factory)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn factory_exists(pool: &AnyPool, factory: &str) -> Result<bool, sqlx::Error> {
    let row = sqlx::query("SELECT 1 FROM factories WHERE name = $1")
        .bind(factory)
        .fetch_optional(pool)
        .await?;
    Ok(row.is_some())
}

/// The prologue of every handler that writes to one Factory: begins the write
/// transaction and locks the Factory row, so the handler's reads and writes are serialised
/// with every other writer; a missing Factory is the handler's 404.
pub async fn begin_locked(db: &Db, factory: &str) -> ApiResult<Tx> {
    let mut tx = db.begin_write().await?;
    if !lock_factory(&mut tx, factory).await? {
        return Err(ApiError::factory_not_found(factory));
    }
    Ok(tx)
}

/// The read-side counterpart of [`begin_locked`]: a 404 for a missing Factory, rather than
/// an empty list that would look like a Factory with nothing in it.
pub async fn require_factory(db: &Db, factory: &str) -> ApiResult<()> {
    if !factory_exists(db.pool(), factory).await? {
        return Err(ApiError::factory_not_found(factory));
    }
    Ok(())
}

pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The embedded store's file in the data directory.
pub const SQLITE_FILE: &str = "tufd.sqlite";
