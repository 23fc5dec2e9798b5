//! Starting the server in two steps. [`check`] runs everything that can fail for a reason the
//! operator can fix (settings, TLS files, the token's PIN, the port, the server key, an
//! existing store's schema, server key and keyring) and writes nothing; [`start`] then creates
//! what a first start creates (the data directory, the server key file, the database, the
//! keyring file, the admin token). So a start that fails leaves the data directory exactly as
//! it was, or absent if it was.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use sqlx::Row;
use tokio::net::TcpListener;

use crate::db::{Backend, Db};
use crate::metrics::Metrics;
use crate::repo::Periods;
use crate::storage::{ArtifactStore, DbStore, FileStore};
use crate::{
    admin, cache, files, group, input, keyring, listener, repo, restore, server_key, tls, token,
};
use crate::{AppState, Args, Shared, DAY};

/// What [`check`] found ready: nothing of it has written to the data directory.
pub struct Checked {
    tls: Option<Arc<tls::Tls>>,
    token: Option<token::Token>,
    listener: TcpListener,
    server_key: server_key::Loaded,
    backend: Backend,
    /// The store, when it exists already (checked); a new one is created by [`start`].
    db: Option<Db>,
}

/// Every check that can fail, before anything is written.
pub async fn check(args: &Args) -> anyhow::Result<Checked> {
    check_periods(args)?;
    limits(args)?;
    caps(args)?;
    check_data_dir(&args.data_dir)?;
    admin::check_env_token()?;
    let tls = load_tls(args)?;
    let backend = match &args.database_url {
        Some(url) => Backend::of_url(url)?,
        None => Backend::Sqlite,
    };
    let server_key = server_key::load(args.server_key_file.as_deref(), &args.data_dir, backend)?;
    let token = match (&args.pkcs11, &args.slot, &args.pin_file) {
        (Some(module), Some(slot), Some(pin_file)) => {
            Some(token::Token::open(module, slot, pin_file)?)
        }
        _ => None,
    };
    let listener = TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let db = open_existing(args).await?;
    if let Some(db) = &db {
        check_store(db, &server_key, &args.data_dir).await?;
    }
    Ok(Checked {
        tls,
        token,
        listener,
        server_key,
        backend,
        db,
    })
}

/// Creates what is missing (data directory, server key file, database, keyring, admin
/// token), migrates the database and builds the server's state.
pub async fn start(args: &Args, c: Checked) -> anyhow::Result<(Shared, TcpListener)> {
    files::create_private_dir(&args.data_dir)?;
    files::tighten(&args.data_dir)?;
    let tmp_dir = args.data_dir.join("tmp");
    files::create_private_dir(&tmp_dir)?;
    remove_leftover_uploads(&tmp_dir)?;
    let vault = c.server_key.into_vault()?;
    let db = match (c.db, &args.database_url) {
        (Some(db), _) => db,
        (None, Some(url)) => Db::connect(url).await?,
        (None, None) => Db::open_sqlite(&args.data_dir.join(crate::db::SQLITE_FILE)).await?,
    };
    db.migrate().await?;
    server_key::check(&db, &vault).await?;
    let keyring = keyring::Keyring::open(&args.data_dir, &db).await?;
    admin::ensure_admin_token(&db, &args.data_dir).await?;
    let store: Box<dyn ArtifactStore> = match c.backend {
        Backend::Postgres => Box::new(DbStore::new(db.clone())),
        Backend::Sqlite => Box::new(
            FileStore::new(args.data_dir.join("artifacts")).context("creating artifact dir")?,
        ),
    };
    let scheme = if c.tls.is_some() { "https" } else { "http" };
    let addr = c.listener.local_addr()?;
    let public_url = args
        .public_url
        .clone()
        .unwrap_or_else(|| format!("{scheme}://{addr}"))
        .trim_end_matches('/')
        .to_owned();
    let state: Shared = Arc::new(AppState {
        groups: group::Groups::default(),
        cache: cache::Cache::new(match (c.backend, args.replica_head_cache_ms) {
            (Backend::Sqlite, _) => cache::Heads::Owned,
            (Backend::Postgres, 0) => cache::Heads::Uncached,
            (Backend::Postgres, ms) => cache::Heads::Shared(std::time::Duration::from_millis(ms)),
        }),
        db,
        vault,
        store,
        periods: Periods {
            root: args.root_expiry_secs,
            targets: args.targets_expiry_secs,
            snapshot: args.snapshot_expiry_secs,
            timestamp: args.timestamp_expiry_secs,
        },
        public_url,
        tmp_dir,
        metrics: Metrics::default(),
        tls: c.tls,
        keyring,
        token: c.token,
        caps: caps(args)?,
    });
    repo::reseal_legacy(&state).await?;
    restore::catch_up(&state).await?;
    repo::finish_destruction(&state).await;
    Ok((state, c.listener))
}

/// The connection limits of the listener, checked.
pub fn limits(args: &Args) -> anyhow::Result<listener::Limits> {
    anyhow::ensure!(
        (1..=1_000_000).contains(&args.max_connections),
        "--max-connections must be between 1 and 1000000"
    );
    for (name, v) in [
        ("header", args.header_timeout_secs),
        ("idle", args.idle_timeout_secs),
    ] {
        anyhow::ensure!(
            (1..=3600).contains(&v),
            "--{name}-timeout-secs must be between 1 and 3600"
        );
    }
    Ok(listener::Limits {
        max_connections: args.max_connections,
        header_timeout: std::time::Duration::from_secs(args.header_timeout_secs),
        idle_timeout: std::time::Duration::from_secs(args.idle_timeout_secs),
    })
}

/// Leftover upload files of an earlier run (killed mid-upload) are removed, and said.
fn remove_leftover_uploads(tmp_dir: &Path) -> anyhow::Result<()> {
    let (files, bytes) = files::remove_leftover_uploads(tmp_dir)?;
    if files > 0 {
        tracing::warn!(
            files,
            bytes,
            dir = %tmp_dir.display(),
            "removed upload temporary files an earlier run left behind"
        );
    }
    Ok(())
}

/// The body caps, checked.
fn caps(args: &Args) -> anyhow::Result<input::Caps> {
    let most = tuf_ceremony::limits::MAX_TARGETS_BYTES;
    anyhow::ensure!(
        (64 * 1024..=most).contains(&args.max_targets_bytes),
        "--max-targets-bytes must be between 65536 and {most} (devices refuse larger targets \
         metadata)"
    );
    anyhow::ensure!(
        args.max_artifact_bytes >= 1,
        "--max-artifact-bytes must be at least 1"
    );
    Ok(input::Caps {
        artifact_bytes: args.max_artifact_bytes,
        targets_bytes: args.max_targets_bytes,
    })
}

fn check_periods(args: &Args) -> anyhow::Result<()> {
    for (name, v) in [
        ("root", args.root_expiry_secs),
        ("targets", args.targets_expiry_secs),
        ("snapshot", args.snapshot_expiry_secs),
        ("timestamp", args.timestamp_expiry_secs),
    ] {
        anyhow::ensure!(
            (1..=10 * 365 * DAY).contains(&v),
            "--{name}-expiry-secs must be between 1 second and 10 years"
        );
    }
    Ok(())
}

/// The data directory is a directory tufd may write (or can be created), and no restore or
/// server key rotation was interrupted in it.
fn check_data_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        let parent = existing_ancestor(dir);
        anyhow::ensure!(
            writable(&parent),
            "cannot create the data directory {}: {} is not writable",
            dir.display(),
            parent.display()
        );
        return Ok(());
    }
    anyhow::ensure!(
        dir.is_dir(),
        "the data directory {} is not a directory",
        dir.display()
    );
    anyhow::ensure!(
        writable(dir),
        "the data directory {} is not writable by this user",
        dir.display()
    );
    restore::check_not_interrupted(dir)?;
    server_key::check_not_interrupted(dir)
}

fn existing_ancestor(dir: &Path) -> std::path::PathBuf {
    let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
    let mut at = absolute.as_path();
    while !at.exists() {
        match at.parent() {
            Some(p) => at = p,
            None => break,
        }
    }
    at.to_owned()
}

fn writable(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt as _;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: access(2) reads the NUL-terminated path and nothing else.
    unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
}

fn load_tls(args: &Args) -> anyhow::Result<Option<Arc<tls::Tls>>> {
    let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) else {
        return Ok(None);
    };
    Ok(Some(Arc::new(tls::Tls::load(tls::TlsFiles {
        cert: cert.clone(),
        key: key.clone(),
        client_ca: args.client_ca.clone(),
    })?)))
}

/// The store, when it exists: PostgreSQL (connecting writes nothing) or the SQLite file in the
/// data directory (opened without creating it).
async fn open_existing(args: &Args) -> anyhow::Result<Option<Db>> {
    if let Some(url) = &args.database_url {
        return Ok(Some(Db::connect(url).await?));
    }
    let path = args.data_dir.join(crate::db::SQLITE_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let url = format!("sqlite://{}?mode=rw", path.display());
    Ok(Some(
        Db::connect(&url)
            .await
            .with_context(|| format!("opening {}", path.display()))?,
    ))
}

/// What [`start`] would refuse in an existing store, found by reading: a schema from a newer
/// tufd, another server key, a keyring file that is missing, foreign or ahead.
async fn check_store(db: &Db, key: &server_key::Loaded, data_dir: &Path) -> anyhow::Result<()> {
    if has_table(db, "_sqlx_migrations").await? {
        let applied: Option<i64> =
            sqlx::query("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(db.pool())
                .await?
                .try_get(0)?;
        let known = db.newest_migration();
        if let Some(applied) = applied.filter(|a| *a > known) {
            bail!(
                "the database was migrated by a newer tufd (migration {applied}; this tufd \
                 knows up to {known}): run that version, or restore a backup taken before the \
                 upgrade (docs/OPERATIONS.md, Upgrade)"
            );
        }
    }
    if has_table(db, "settings").await? {
        server_key::check_existing(db, key).await?;
    }
    if has_table(db, "keyring").await? {
        keyring::check(data_dir, db).await?;
    }
    Ok(())
}

async fn has_table(db: &Db, name: &str) -> anyhow::Result<bool> {
    let q = match db.backend() {
        Backend::Sqlite => "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = $1",
        Backend::Postgres => {
            "SELECT 1 FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name = $1"
        }
    };
    Ok(sqlx::query(q)
        .bind(name)
        .fetch_optional(db.pool())
        .await?
        .is_some())
}
