//! Content-addressed artifact storage behind a small trait: files under the data directory
//! (embedded default), or chunk rows in PostgreSQL so every replica serves every artifact.
//! Both stores take an upload from a file and serve any byte range as a stream, a chunk at a
//! time: the memory an upload or a download costs is a chunk, never the artifact.

use std::future::Future;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use axum::body::Bytes;
use futures_util::Stream;
use sqlx::Row;
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};

use crate::db::Db;
use crate::error::ApiError;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An artifact's bytes (or a range of them), read as they are sent.
pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

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

    /// The stored artifact's length, or `None` when it is not stored.
    fn length<'a>(&'a self, sha256: &'a str) -> BoxFuture<'a, Result<Option<u64>, StoreError>>;

    /// The bytes `range` of a stored artifact (within its length), streamed. A store that
    /// changes under the stream (an artifact file cut short) ends it with an error, so the
    /// client sees a broken transfer, never a short file that looks complete.
    fn read<'a>(
        &'a self,
        sha256: &'a str,
        range: Range<u64>,
    ) -> BoxFuture<'a, Result<ByteStream, StoreError>>;
}

/// How many bytes are read from disk at a time while serving a file.
const READ_CHUNK: u64 = 256 * 1024;

/// How large a chunk row is (the last one of an artifact is shorter).
const DB_CHUNK: u64 = 1024 * 1024;

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

    fn length<'a>(&'a self, sha256: &'a str) -> BoxFuture<'a, Result<Option<u64>, StoreError>> {
        Box::pin(async move {
            match tokio::fs::metadata(self.path(sha256)).await {
                Ok(m) => Ok(Some(m.len())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e.into()),
            }
        })
    }

    fn read<'a>(
        &'a self,
        sha256: &'a str,
        range: Range<u64>,
    ) -> BoxFuture<'a, Result<ByteStream, StoreError>> {
        Box::pin(async move {
            let mut file = tokio::fs::File::open(self.path(sha256)).await?;
            file.seek(std::io::SeekFrom::Start(range.start)).await?;
            let left = range.end.saturating_sub(range.start);
            let stream =
                futures_util::stream::try_unfold((file, left), |(mut file, left)| async move {
                    if left == 0 {
                        return Ok(None);
                    }
                    let mut buf = vec![0; usize::try_from(left.min(READ_CHUNK)).unwrap_or(0)];
                    file.read_exact(&mut buf).await?;
                    let n = buf.len() as u64;
                    Ok(Some((Bytes::from(buf), (file, left - n))))
                });
            Ok(Box::pin(stream) as ByteStream)
        })
    }
}

/// Artifacts as chunk rows in PostgreSQL (`artifact_chunks`, [`DB_CHUNK`] bytes each), listed
/// in `artifacts` once every chunk is in, in the same transaction.
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
            if self.length(sha256).await?.is_some() {
                return Ok(());
            }
            let mut file = tokio::fs::File::open(upload).await?;
            let length = file.metadata().await?.len();
            let mut tx = self.db.pool().begin().await?;
            let mut buf = Vec::new();
            for seq in 0..length.div_ceil(DB_CHUNK) {
                buf.clear();
                (&mut file).take(DB_CHUNK).read_to_end(&mut buf).await?;
                sqlx::query(
                    "INSERT INTO artifact_chunks (sha256, seq, data) VALUES ($1, $2, $3) \
                     ON CONFLICT (sha256, seq) DO NOTHING",
                )
                .bind(sha256)
                .bind(i64::try_from(seq).unwrap_or(i64::MAX))
                .bind(&buf[..])
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query(
                "INSERT INTO artifacts (sha256, length, data, chunk_size) \
                 VALUES ($1, $2, NULL, $3) ON CONFLICT (sha256) DO NOTHING",
            )
            .bind(sha256)
            .bind(i64::try_from(length).unwrap_or(i64::MAX))
            .bind(DB_CHUNK as i64)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn length<'a>(&'a self, sha256: &'a str) -> BoxFuture<'a, Result<Option<u64>, StoreError>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT length FROM artifacts WHERE sha256 = $1")
                .bind(sha256)
                .fetch_optional(self.db.pool())
                .await?;
            Ok(row
                .map(|r| r.try_get::<i64, _>(0))
                .transpose()?
                .map(|l| u64::try_from(l).unwrap_or(0)))
        })
    }

    fn read<'a>(
        &'a self,
        sha256: &'a str,
        range: Range<u64>,
    ) -> BoxFuture<'a, Result<ByteStream, StoreError>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT chunk_size FROM artifacts WHERE sha256 = $1")
                .bind(sha256)
                .fetch_one(self.db.pool())
                .await?;
            let chunk_size = row.try_get::<Option<i64>, _>(0)?;
            let cursor = DbCursor {
                db: self.db.clone(),
                sha256: sha256.to_owned(),
                // Rows of an older tufd hold the whole artifact: served in slices of it.
                chunk_size: chunk_size.and_then(|c| u64::try_from(c).ok()),
                pos: range.start,
                end: range.end,
            };
            let stream = futures_util::stream::try_unfold(cursor, |mut c| async move {
                if c.pos >= c.end {
                    return Ok(None);
                }
                let bytes = c.next_piece().await.map_err(std::io::Error::other)?;
                Ok(Some((bytes, c)))
            });
            Ok(Box::pin(stream) as ByteStream)
        })
    }
}

/// Where a streamed read of chunk rows stands.
struct DbCursor {
    db: Db,
    sha256: String,
    chunk_size: Option<u64>,
    pos: u64,
    end: u64,
}

impl DbCursor {
    /// The bytes from `pos` to the end of its chunk (or of the range), one query each.
    async fn next_piece(&mut self) -> Result<Bytes, StoreError> {
        let bytes = match self.chunk_size {
            Some(size) if size > 0 => {
                let (seq, offset) = (self.pos / size, self.pos % size);
                let row =
                    sqlx::query("SELECT data FROM artifact_chunks WHERE sha256 = $1 AND seq = $2")
                        .bind(&self.sha256)
                        .bind(i64::try_from(seq).unwrap_or(i64::MAX))
                        .fetch_one(self.db.pool())
                        .await?;
                let data: Vec<u8> = row.try_get(0)?;
                let from = usize::try_from(offset)
                    .unwrap_or(usize::MAX)
                    .min(data.len());
                let want = usize::try_from(self.end - self.pos).unwrap_or(usize::MAX);
                let to = data.len().min(from.saturating_add(want));
                Bytes::from(data).slice(from..to)
            }
            _ => {
                let len = (self.end - self.pos).min(DB_CHUNK);
                // substring() counts from 1; legacy rows are at most 1 GiB (the old upload
                // limit), so offsets fit an INTEGER.
                let row = sqlx::query(
                    "SELECT substring(data FROM $2 FOR $3) FROM artifacts WHERE sha256 = $1",
                )
                .bind(&self.sha256)
                .bind(i32::try_from(self.pos + 1).unwrap_or(i32::MAX))
                .bind(i32::try_from(len).unwrap_or(i32::MAX))
                .fetch_one(self.db.pool())
                .await?;
                Bytes::from(row.try_get::<Vec<u8>, _>(0)?)
            }
        };
        if bytes.is_empty() {
            return Err(StoreError::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the stored artifact is shorter than its length",
            )));
        }
        self.pos += bytes.len() as u64;
        Ok(bytes)
    }
}
