//! Content-addressed artifact storage behind a small trait: files under the data directory
//! (embedded default), or a table in PostgreSQL so every replica serves every artifact.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use sqlx::Row;

use crate::db::Db;
use crate::error::ApiError;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("artifact storage I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("artifact storage database: {0}")]
    Db(#[from] sqlx::Error),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "artifact storage");
        ApiError::internal("artifact storage failed")
    }
}

pub trait ArtifactStore: Send + Sync {
    /// Stores the file at `upload` (already hashed by the caller) under `sha256`. Storing
    /// the same hash twice is a no-op.
    fn put<'a>(
        &'a self,
        sha256: &'a str,
        upload: &'a Path,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    fn get<'a>(&'a self, sha256: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>>;

    /// Where the artifact lies as a local file, when the store keeps files: it is then served
    /// streamed (and in ranges) instead of read into memory.
    fn local_path(&self, _sha256: &str) -> Option<PathBuf> {
        None
    }
}

/// `<data-dir>/artifacts/<first two hex>/<sha256>`.
pub struct FileStore {
    dir: PathBuf,
}

impl FileStore {
    pub fn new(dir: PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(&sha256[..2]).join(sha256)
    }
}

impl ArtifactStore for FileStore {
    fn put<'a>(
        &'a self,
        sha256: &'a str,
        upload: &'a Path,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let dest = self.path(sha256);
            if tokio::fs::try_exists(&dest).await? {
                return Ok(());
            }
            if let Some(parent) = dest.parent() {
                tokio::fs::create_dir_all(parent).await?;
            }
            // The upload was fsynced by the caller; rename is atomic on one filesystem.
            tokio::fs::rename(upload, &dest).await?;
            Ok(())
        })
    }

    fn local_path(&self, sha256: &str) -> Option<PathBuf> {
        Some(self.path(sha256))
    }

    fn get<'a>(&'a self, sha256: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        Box::pin(async move {
            match tokio::fs::read(self.path(sha256)).await {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e.into()),
            }
        })
    }
}

/// Artifacts as rows of the `artifacts` table (PostgreSQL `bytea`).
pub struct DbStore {
    db: Db,
}

impl DbStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

impl ArtifactStore for DbStore {
    fn put<'a>(
        &'a self,
        sha256: &'a str,
        upload: &'a Path,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let data = tokio::fs::read(upload).await?;
            let len = i64::try_from(data.len()).unwrap_or(i64::MAX);
            sqlx::query(
                "INSERT INTO artifacts (sha256, length, data) VALUES ($1, $2, $3) \
                 ON CONFLICT (sha256) DO NOTHING",
            )
            .bind(sha256)
            .bind(len)
            .bind(data)
            .execute(self.db.pool())
            .await?;
            Ok(())
        })
    }

    fn get<'a>(&'a self, sha256: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT data FROM artifacts WHERE sha256 = $1")
                .bind(sha256)
                .fetch_optional(self.db.pool())
                .await?;
            Ok(row.map(|r| r.try_get::<Vec<u8>, _>(0)).transpose()?)
        })
    }
}
