//! `tufd backup`: one file holding everything an embedded (SQLite) store needs to come back,
//! taken while tufd runs.
//!
//! The archive is a gzip'd tar, mode 0600: `tufd-backup/manifest.json` first (format, time,
//! schema version, keyring epoch, and the length and SHA-256 of every other entry, in order),
//! then `keyring`, `server-key` (when the key is the data directory's file), `admin-token`
//! (when present), `tufd.sqlite` and the artifacts the database refers to
//! (`artifacts/<2 hex>/<sha256>`).
//!
//! Consistency while tufd writes: the keyring file is read first, then the database is copied
//! by `VACUUM INTO` (one read transaction: a consistent snapshot, without the free pages that
//! may still hold destroyed secrets), then the keyring is moved forward to the snapshot's epoch
//! and checked against it (tufd only ever moves the file after the database, so the file read
//! first is never ahead). Artifacts are written before the transaction that refers to them
//! commits and are never changed, so every artifact the snapshot names is on disk; each is
//! checked against its name (its SHA-256) while it is copied.
//!
//! The archive holds the server key and the keyring epoch key: it opens every secret alive at
//! the time of the backup, including those destroyed later. Backups must be destroyed on the
//! same schedule as the secrets (docs/ARCHITECTURE.md, Destruction).

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::db::{Backend, Db};
use crate::{db, files, keyring, server_key};

/// `tufd backup`.
#[derive(clap::Args, Debug)]
pub struct BackupArgs {
    /// The data directory of the SQLite store (tufd may be running on it).
    #[arg(long, env = "TUFD_DATA_DIR", default_value = "./tufd-data")]
    data_dir: PathBuf,
    /// The backup file to write (mode 0600; replaced atomically if it exists).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// The server key's file, when it is not `<data-dir>/server-key` (env TUFD_SERVER_KEY,
    /// hex, wins). Such a key is checked, not copied into the backup: keep it where you keep
    /// it.
    #[arg(long, env = "TUFD_SERVER_KEY_FILE")]
    server_key_file: Option<PathBuf>,
}

/// The first entry of a backup: what follows and how to check it.
#[derive(Serialize, Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub created: String,
    pub tufd_version: String,
    /// The newest database migration applied (a newer tufd's backup is refused by an older one).
    pub migration: i64,
    pub keyring_epoch: i64,
    pub files: Vec<FileEntry>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Relative to the data directory.
    pub path: String,
    pub length: u64,
    pub sha256: String,
}

/// Writes the backup of `args.data_dir` to `args.out`.
pub async fn run(args: &BackupArgs) -> anyhow::Result<()> {
    files::restrict_umask();
    let live = args.data_dir.join(db::SQLITE_FILE);
    if !live.exists() {
        bail!(
            "no SQLite store in {}: a PostgreSQL store is backed up with pg_dump plus the \
             keyring file and the server key (docs/OPERATIONS.md, Backup and restore)",
            args.data_dir.display()
        );
    }
    let work = WorkDir::beside(&args.out)?;
    let keyring_path = args.data_dir.join(keyring::FILE);
    anyhow::ensure!(
        keyring_path.exists(),
        "{} is missing: without it nothing sealed in the store opens",
        keyring_path.display()
    );
    let snapshot = work.path.join(db::SQLITE_FILE);
    vacuum_into(&live, &snapshot).await?;
    let db = Db::connect(&format!("sqlite://{}?mode=rw", snapshot.display())).await?;
    let mut contents = Contents::read(args, &db).await?;
    // Read only: everything is in the main file once the connections are closed.
    db.pool().close().await;
    contents.set_database(&snapshot)?;
    let tmp = args.out.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let written = write_archive(&tmp, &args.data_dir, &snapshot, &contents)
        .with_context(|| format!("writing {}", tmp.display()));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, &args.out).with_context(|| format!("writing {}", args.out.display()))?;
    files::sync_dir(&args.out)?;
    println!(
        "backed up {} (keyring epoch {}, {} artifacts{}) to {}",
        args.data_dir.display(),
        contents.manifest.keyring_epoch,
        contents.artifacts,
        if contents.server_key.is_some() {
            ", server key included"
        } else {
            "; the server key is NOT included: keep it where you keep it"
        },
        args.out.display()
    );
    Ok(())
}

/// A consistent copy of the live database (one read transaction), compacted.
async fn vacuum_into(live: &Path, copy: &Path) -> anyhow::Result<()> {
    let db = Db::connect(&format!("sqlite://{}?mode=rw", live.display())).await?;
    let copy_name = copy
        .to_str()
        .context("the backup's directory has a name that is not UTF-8")?;
    sqlx::query("VACUUM INTO $1")
        .bind(copy_name)
        .execute(db.pool())
        .await
        .with_context(|| format!("copying {}", live.display()))?;
    db.pool().close().await;
    Ok(())
}

/// What goes into the archive besides the database file, checked against the snapshot.
struct Contents {
    manifest: Manifest,
    keyring: zeroize::Zeroizing<String>,
    server_key: Option<zeroize::Zeroizing<Vec<u8>>>,
    admin_token: Option<zeroize::Zeroizing<Vec<u8>>>,
    artifacts: usize,
}

impl Contents {
    /// The database entry of the manifest, from the snapshot file.
    fn set_database(&mut self, snapshot: &Path) -> anyhow::Result<()> {
        let slot = self
            .manifest
            .files
            .iter_mut()
            .find(|f| f.path == db::SQLITE_FILE)
            .context("manifest without the database")?;
        *slot = file_entry(db::SQLITE_FILE, snapshot)?;
        Ok(())
    }

    async fn read(args: &BackupArgs, db: &Db) -> anyhow::Result<Self> {
        let keyring = keyring::file_for(&args.data_dir.join(keyring::FILE), db).await?;
        let loaded = server_key::load(
            args.server_key_file.as_deref(),
            &args.data_dir,
            Backend::Sqlite,
        )?;
        server_key::check_existing(db, &loaded).await?;
        let external =
            std::env::var_os("TUFD_SERVER_KEY").is_some() || args.server_key_file.is_some();
        let server_key = (!external)
            .then(|| read_secret(&args.data_dir.join(server_key::FILE)))
            .transpose()?;
        let token_path = args.data_dir.join("admin-token");
        let admin_token = token_path
            .exists()
            .then(|| read_secret(&token_path))
            .transpose()?;
        let mut files = vec![entry("keyring", keyring.as_bytes())];
        if let Some(k) = &server_key {
            files.push(entry(server_key::FILE, k));
        }
        if let Some(t) = &admin_token {
            files.push(entry("admin-token", t));
        }
        files.push(FileEntry {
            path: db::SQLITE_FILE.to_owned(),
            length: 0,
            sha256: String::new(),
        });
        let artifacts = artifact_entries(db, &args.data_dir).await?;
        let count = artifacts.len();
        files.extend(artifacts);
        let manifest = Manifest {
            format: FORMAT.to_owned(),
            created: crate::format_time(crate::db::now()),
            tufd_version: env!("CARGO_PKG_VERSION").to_owned(),
            migration: migration(db).await?,
            keyring_epoch: keyring_epoch(db).await?,
            files,
        };
        Ok(Self {
            manifest,
            keyring,
            server_key,
            admin_token,
            artifacts: count,
        })
    }
}

/// The artifacts the snapshot refers to, each present in the data directory.
async fn artifact_entries(db: &Db, data_dir: &Path) -> anyhow::Result<Vec<FileEntry>> {
    let rows = sqlx::query("SELECT DISTINCT sha256 FROM factory_artifacts ORDER BY sha256")
        .fetch_all(db.pool())
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let sha: String = r.try_get(0)?;
        let path = artifact_path(&sha).with_context(|| {
            format!("the database names an artifact {sha:?} that is not a SHA-256")
        })?;
        let meta = std::fs::metadata(data_dir.join(&path)).with_context(|| {
            format!(
                "artifact {sha} is in the database but not in {}",
                data_dir.join("artifacts").display()
            )
        })?;
        out.push(FileEntry {
            path,
            length: meta.len(),
            sha256: sha,
        });
    }
    Ok(out)
}

/// `artifacts/<first two hex>/<sha256>`, for a lowercase hex SHA-256 only.
pub fn artifact_path(sha256: &str) -> Option<String> {
    let hex = sha256.len() == 64
        && sha256
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    hex.then(|| format!("artifacts/{}/{sha256}", &sha256[..2]))
}

async fn migration(db: &Db) -> anyhow::Result<i64> {
    let v: Option<i64> = sqlx::query("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
        .fetch_one(db.pool())
        .await?
        .try_get(0)?;
    v.context("the database has no migrations applied")
}

async fn keyring_epoch(db: &Db) -> anyhow::Result<i64> {
    Ok(sqlx::query("SELECT epoch FROM keyring WHERE id = 1")
        .fetch_one(db.pool())
        .await?
        .try_get(0)?)
}

fn write_archive(
    out: &Path,
    data_dir: &Path,
    snapshot: &Path,
    contents: &Contents,
) -> anyhow::Result<()> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(out)?;
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let manifest = serde_json::to_vec_pretty(&contents.manifest)?;
    append(&mut tar, MANIFEST, &manifest)?;
    for f in &contents.manifest.files {
        match f.path.as_str() {
            "keyring" => append(&mut tar, &f.path, contents.keyring.as_bytes())?,
            server_key::FILE => append(&mut tar, &f.path, secret(&contents.server_key)?)?,
            "admin-token" => append(&mut tar, &f.path, secret(&contents.admin_token)?)?,
            db::SQLITE_FILE => append_file(&mut tar, f, snapshot)?,
            _ => append_file(&mut tar, f, &data_dir.join(&f.path))?,
        }
    }
    let gz = tar.into_inner()?;
    let file = gz.finish()?;
    file.sync_all()?;
    Ok(())
}

fn secret(v: &Option<zeroize::Zeroizing<Vec<u8>>>) -> anyhow::Result<&[u8]> {
    v.as_deref()
        .map(Vec::as_slice)
        .context("a secret listed in the manifest is missing")
}

fn append<W: std::io::Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    data: &[u8],
) -> anyhow::Result<()> {
    let mut header = header(data.len() as u64);
    tar.append_data(&mut header, format!("{PREFIX}{path}"), data)?;
    Ok(())
}

/// Appends the file at `from` as `f`, checking its length and SHA-256 while it is read.
fn append_file<W: std::io::Write>(
    tar: &mut tar::Builder<W>,
    f: &FileEntry,
    from: &Path,
) -> anyhow::Result<()> {
    let file = std::fs::File::open(from).with_context(|| format!("reading {}", from.display()))?;
    let mut reader = Hashing::new(file.take(f.length));
    let mut header = header(f.length);
    tar.append_data(&mut header, format!("{PREFIX}{}", f.path), &mut reader)?;
    let (read, sha) = reader.finish();
    anyhow::ensure!(
        read == f.length && sha == f.sha256,
        "{} changed or is damaged: {read} bytes with SHA-256 {sha}, expected {} bytes with {}",
        from.display(),
        f.length,
        f.sha256
    );
    Ok(())
}

fn header(len: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_size(len);
    h.set_mode(0o600);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h
}

fn entry(path: &str, data: &[u8]) -> FileEntry {
    FileEntry {
        path: path.to_owned(),
        length: data.len() as u64,
        sha256: tuf_core::hash::sha256_hex(data),
    }
}

fn file_entry(path: &str, file: &Path) -> anyhow::Result<FileEntry> {
    let mut reader = Hashing::new(std::fs::File::open(file)?);
    std::io::copy(&mut reader, &mut std::io::sink())?;
    let (length, sha256) = reader.finish();
    Ok(FileEntry {
        path: path.to_owned(),
        length,
        sha256,
    })
}

fn read_secret(path: &Path) -> anyhow::Result<zeroize::Zeroizing<Vec<u8>>> {
    Ok(zeroize::Zeroizing::new(
        std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
    ))
}

/// A reader that counts and hashes (SHA-256) what passes through it.
pub struct Hashing<R> {
    inner: R,
    ctx: aws_lc_rs::digest::Context,
    read: u64,
}

impl<R: Read> Hashing<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            ctx: aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256),
            read: 0,
        }
    }

    /// Bytes read and their SHA-256 (lowercase hex).
    pub fn finish(self) -> (u64, String) {
        (self.read, hex::encode(self.ctx.finish().as_ref()))
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.ctx.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

/// A private directory beside the backup file for the database snapshot, removed on drop.
struct WorkDir {
    path: PathBuf,
}

impl WorkDir {
    fn beside(out: &Path) -> anyhow::Result<Self> {
        let parent = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let path = parent.join(format!(".tufd-backup-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        files::create_private_dir(&path)?;
        Ok(Self { path })
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The first entry.
pub const MANIFEST: &str = "manifest.json";
/// Every entry's name starts with this directory.
pub const PREFIX: &str = "tufd-backup/";
/// `Manifest::format` of this version.
pub const FORMAT: &str = "tufd-backup 1";
